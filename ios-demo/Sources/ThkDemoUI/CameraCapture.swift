#if canImport(SwiftUI) && canImport(AVFoundation) && canImport(Vision) && canImport(CoreML)
import AVFoundation

enum CameraError: Error, CustomStringConvertible {
    case noCamera, notAllowed, unusable(String)
    var description: String {
        switch self {
        case .noCamera: return "no camera"
        case .notAllowed: return "camera access was denied (Settings > Privacy > Camera)"
        case .unusable(let what): return "the camera's \(what) cannot be used"
        }
    }
}

/// Front-camera frames (BGRA `CVPixelBuffer`s) delivered upright and mirrored like a selfie
/// preview: rotation and mirroring are set on the capture connection, so no frame is rotated on
/// the CPU and the sender's keypoints move the way the user sees themself. Late frames are
/// dropped by AVFoundation (latency first) and counted in `dropped`.
final class CameraCapture: NSObject, AVCaptureVideoDataOutputSampleBufferDelegate {
    let session = AVCaptureSession()
    private let queue = DispatchQueue(label: "thk.camera")
    private(set) var delivered = 0, dropped = 0
    var onFrame: ((CVPixelBuffer, Double) -> Void)?

    func start() async throws {
        guard await AVCaptureDevice.requestAccess(for: .video) else { throw CameraError.notAllowed }
        session.beginConfiguration()
        defer { session.commitConfiguration() }
        if session.canSetSessionPreset(.vga640x480) { session.sessionPreset = .vga640x480 }
        guard let device = AVCaptureDevice.default(.builtInWideAngleCamera, for: .video, position: .front)
            ?? AVCaptureDevice.default(for: .video) else { throw CameraError.noCamera }
        let input = try AVCaptureDeviceInput(device: device)
        guard session.canAddInput(input) else { throw CameraError.unusable("input") }
        session.addInput(input)
        let output = AVCaptureVideoDataOutput()
        output.videoSettings = [kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_32BGRA]
        output.alwaysDiscardsLateVideoFrames = true
        output.setSampleBufferDelegate(self, queue: queue)
        guard session.canAddOutput(output) else { throw CameraError.unusable("output") }
        session.addOutput(output)
        if let connection = output.connection(with: .video) {
            #if os(iOS)
            if #available(iOS 17, *) {
                if connection.isVideoRotationAngleSupported(90) { connection.videoRotationAngle = 90 }  // portrait
            } else if connection.isVideoOrientationSupported {
                connection.videoOrientation = .portrait
            }
            #endif
            if connection.isVideoMirroringSupported {
                connection.automaticallyAdjustsVideoMirroring = false
                connection.isVideoMirrored = device.position == .front
            }
        }
        queue.async { [session] in session.startRunning() }
    }

    func stop() { queue.async { [session] in session.stopRunning() } }

    func captureOutput(_ output: AVCaptureOutput, didOutput sampleBuffer: CMSampleBuffer, from connection: AVCaptureConnection) {
        guard let buffer = CMSampleBufferGetImageBuffer(sampleBuffer) else { return }
        delivered += 1
        onFrame?(buffer, CMSampleBufferGetPresentationTimeStamp(sampleBuffer).seconds)
    }

    func captureOutput(_ output: AVCaptureOutput, didDrop sampleBuffer: CMSampleBuffer, from connection: AVCaptureConnection) {
        dropped += 1
    }
}
#endif
