#if canImport(SwiftUI) && canImport(AVFoundation) && canImport(Vision) && canImport(CoreML)
import CoreImage
import CoreML
import Foundation
import ThkKit

/// The app's two roles on ThkKit and the exported graphs (the app bundle of
/// `python -m export --bundle ios`, found as the `talking_head` folder in the app's resources or
/// at $THK_APP_BUNDLE, with the avatar as `portrait.jpg` beside bundle.json):
///   receive: UDP -> session -> decoder -> motion against the anchor -> generator -> view
///   send:    camera -> Vision face crop -> keypoint encoder -> encoder -> UDP
/// The network and the graphs run on one background thread per role; the view gets frames and
/// counters on the main thread (`publish`).
final class DemoSession: ObservableObject {
    enum Role: String, CaseIterable { case receive = "Receive", send = "Send" }

    @Published var status = "idle"
    @Published var frame: CVPixelBuffer?
    @Published var counters = ""
    @Published var placement = ""
    private var worker: Thread?
    private var live: LiveReceiver?
    private var camera: CameraCapture?
    private let stopping = StopFlag()

    static func bundleFolder() -> URL? {
        if let path = ProcessInfo.processInfo.environment["THK_APP_BUNDLE"] { return URL(fileURLWithPath: path) }
        return Bundle.main.url(forResource: AppBundle.folderName, withExtension: nil)
    }

    func start(role: Role, host: String, port: UInt16, keyHex: String) {
        stopping.set(false)
        Task {
            do {
                guard let folder = DemoSession.bundleFolder() else { throw AppBundle.BundleError.notABundle("no talking_head folder") }
                let bundle = try AppBundle.load(from: folder)
                let secret = try DemoSession.secret(hex: keyHex)
                switch role {
                case .receive: try await startReceiver(bundle, folder, port: port, secret: secret)
                case .send: try await startSender(bundle, folder, host: host, port: port, secret: secret)
                }
            } catch {
                publish { $0.status = "error: \(error)" }
            }
        }
    }

    /// Published values change on the main thread only.
    private func publish(_ change: @escaping (DemoSession) -> Void) {
        DispatchQueue.main.async { [weak self] in if let self { change(self) } }
    }

    func stop() {
        stopping.set(true)
        camera?.stop()
    }

    func reanchor() { live?.reanchor() }

    private static func secret(hex: String) throws -> [UInt8] {
        let digits = Array(hex.trimmingCharacters(in: .whitespacesAndNewlines))
        guard digits.count == 64 else { throw ThkError.keyLength }  // the SDK's key file: 64 hex digits
        return try stride(from: 0, to: 64, by: 2).map {
            guard let byte = UInt8(String(digits[$0...$0 + 1]), radix: 16) else { throw ThkError.keyLength }
            return byte
        }
    }

    // MARK: receive

    private func startReceiver(_ bundle: AppBundle, _ folder: URL, port: UInt16, secret: [UInt8]) async throws {
        publish { $0.status = "loading graphs" }
        let sourceEncoder = try await CoreMLGraph(name: "source_encoder", package: bundle.graphURL("source_encoder", in: folder))
        let generator = try await CoreMLGraph(name: "generator", package: bundle.graphURL("generator", in: folder))
        let placement = "source encoder: \(sourceEncoder.placement)\ngenerator: \(generator.placement)"
        publish { $0.placement = placement }
        guard let portrait = DemoSession.portrait(folder, size: bundle.resolution) else {
            throw AppBundle.BundleError.notABundle("no portrait.jpg beside bundle.json")
        }
        let sourceImage = try Tensors.image(portrait)
        let source = try sourceEncoder.predict(["image": sourceImage])
        guard let keypoints = source["source_keypoints"], let jacobians = source["source_jacobians"] else {
            throw AppBundle.BundleError.missingGraph("source_encoder with source_keypoints (a learned-keypoint model)")
        }
        let receiver = try UDPReceiver(host: "0.0.0.0", port: port, secret: secret)
        let live = LiveReceiver(receiver: receiver, expectedModelShaPrefix: bundle.modelShaPrefix,
                                sourceKeypoints: Tensors.floats(keypoints), sourceJacobians: Tensors.floats(jacobians))
        self.live = live
        publish { $0.status = "listening on UDP port \(port)" }
        let k = Tensors.floats(keypoints).count / 2
        let stopping = self.stopping
        worker = Thread { [weak self] in
            do {
                try live.connect(timeoutS: 600)
                self?.publish { $0.status = "streaming" }
                while live.state == .streaming, !stopping.isSet {
                    guard let tick = try live.nextTick() else { continue }
                    var inputs = source
                    inputs["source_image"] = sourceImage
                    inputs["driving_keypoints"] = try Tensors.array(tick.motion.keypoints, shape: [1, k, 2])
                    inputs["driving_jacobians"] = try Tensors.array(tick.motion.jacobians, shape: [1, k, 2, 2])
                    let names = Set(generator.inputNames)
                    let image = try generator.predict(inputs.filter { names.contains($0.key) })["image"]
                    let frame = image.flatMap(Tensors.pixelBuffer)
                    let stats = live.stats
                    self?.publish {
                        $0.frame = frame
                        $0.counters = DemoSession.describe(stats)
                    }
                }
                let end = live.state
                self?.publish { $0.status = "\(end)" }
            } catch {
                self?.publish { $0.status = "error: \(error)" }
            }
            receiver.close()
        }
        worker?.start()
    }

    static func describe(_ stats: LiveReceiver.Stats) -> String {
        let t = stats.transport, p = stats.pacing
        return "frames \(t.delivered) (recovered \(t.recovered), lost \(t.lost), late \(t.late)); "
            + "dropped: forged \(t.forged), duplicates \(t.duplicates), other session \(t.otherSession); "
            + "ticks \(p.ticks): new \(p.fresh), repeated \(p.repeated), skipped \(p.skipped); re-anchors \(stats.reanchors)"
    }

    /// portrait.jpg beside bundle.json, cropped around its face at the model's resolution.
    static func portrait(_ folder: URL, size: Int) -> CVPixelBuffer? {
        guard let image = CIImage(contentsOf: folder.appendingPathComponent("portrait.jpg")) else { return nil }
        var buffer: CVPixelBuffer?
        CVPixelBufferCreate(nil, Int(image.extent.width), Int(image.extent.height), kCVPixelFormatType_32BGRA, nil, &buffer)
        guard let buffer else { return nil }
        CIContext().render(image, to: buffer)
        return try? FaceCropper(size: size).crop(buffer)
    }

    // MARK: send

    private func startSender(_ bundle: AppBundle, _ folder: URL, host: String, port: UInt16, secret: [UInt8]) async throws {
        publish { $0.status = "loading graphs" }
        let keypointEncoder = try await CoreMLGraph(name: "keypoint_encoder", package: bundle.graphURL("keypoint_encoder", in: folder))
        let placement = "keypoint encoder: \(keypointEncoder.placement)"
        publish { $0.placement = placement }
        let header = try bundle.streamHeader(kind: "keypoints")
        let encoder = try CodeEncoder(header: header)
        let sender = try UDPSender(host: host, port: port, secret: secret)
        publish { $0.status = "connecting to \(host):\(port)" }
        try await Task.detached { try sender.startSession(header: try header.bytes(), timeoutS: 30) }.value
        publish { $0.status = "sending" }
        let cropper = FaceCropper(size: bundle.resolution)
        let camera = CameraCapture()
        self.camera = camera
        let start = monotonicSeconds()
        var sent = 0
        camera.onFrame = { [weak self] buffer, _ in  // on the camera's queue
            do {
                guard let crop = try cropper.crop(buffer) else { return }
                let outputs = try keypointEncoder.predict(["image": try Tensors.image(crop)])
                guard let keypoints = outputs["keypoints"], let jacobians = outputs["jacobians"] else { return }
                let packet = try encoder.encodeLearned(keypoints: Tensors.floats(keypoints), jacobians: Tensors.floats(jacobians),
                                                       extra: nil, timestampMs: UInt64((monotonicSeconds() - start) * 1000))
                try sender.send(packet)
                sent += 1
                let text = "sent \(sent) frames (\(encoder.stats.bytes) bytes of code); no face in \(cropper.framesWithoutFace); "
                    + "camera dropped \(camera.dropped)"
                self?.publish {
                    $0.frame = crop
                    $0.counters = text
                }
            } catch {
                self?.publish { $0.status = "error: \(error)" }
            }
        }
        try await camera.start()
    }
}

/// A flag set on the main thread and read by the worker thread.
final class StopFlag {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set(_ newValue: Bool) { lock.lock(); value = newValue; lock.unlock() }
}
#endif
