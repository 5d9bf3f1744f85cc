#if canImport(SwiftUI) && canImport(AVFoundation) && canImport(Vision) && canImport(CoreML)
import CoreImage
import ThkKit
import Vision

/// The face's square crop (sdk/face/crop.py framing, `FaceCrop`) from Vision's face landmarks,
/// resampled to the model's resolution. Vision's 76 landmarks stop at the brows where MediaPipe's
/// mesh reaches the forehead, so `extentPerLandmarkSide` rescales their extent; 1.25 is a first
/// guess to be measured on a Mac against the SDK's crops of the same clip (not measured yet).
final class FaceCropper {
    let size: Int
    let extentPerLandmarkSide: Double
    private let context = CIContext()
    private var pool: CVPixelBufferPool?
    private(set) var framesWithoutFace = 0

    init(size: Int, extentPerLandmarkSide: Double = 1.25) {
        self.size = size
        self.extentPerLandmarkSide = extentPerLandmarkSide
        let attributes: [String: Any] = [kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_32BGRA,
                                         kCVPixelBufferWidthKey as String: size, kCVPixelBufferHeightKey as String: size]
        CVPixelBufferPoolCreate(nil, nil, attributes as CFDictionary, &pool)
    }

    /// The crop, or nil when Vision finds no face (counted in `framesWithoutFace`).
    func crop(_ frame: CVPixelBuffer) throws -> CVPixelBuffer? {
        let request = VNDetectFaceLandmarksRequest()
        try VNImageRequestHandler(cvPixelBuffer: frame, options: [:]).perform([request])
        let width = Double(CVPixelBufferGetWidth(frame)), height = Double(CVPixelBufferGetHeight(frame))
        guard let face = request.results?.first,
              let points = face.landmarks?.allPoints?.pointsInImage(imageSize: CGSize(width: width, height: height)),
              let box = FaceCrop.around(points: points.map { (x: Double($0.x), y: height - Double($0.y)) },  // y down
                                        scale: 1.8 * extentPerLandmarkSide) else {
            framesWithoutFace += 1
            return nil
        }
        guard let pool else { return nil }
        var out: CVPixelBuffer?
        CVPixelBufferPoolCreatePixelBuffer(nil, pool, &out)
        guard let out else { return nil }
        // Core Image's y axis points up: the box's top-left corner in pixels (y down) -> its bottom-left
        let scale = Double(size) / box.side
        let origin = CGPoint(x: box.centerX - box.side / 2, y: height - (box.centerY + box.side / 2))
        let image = CIImage(cvPixelBuffer: frame).clampedToExtent()
            .transformed(by: CGAffineTransform(translationX: -origin.x, y: -origin.y).concatenating(.init(scaleX: scale, y: scale)))
            .cropped(to: CGRect(x: 0, y: 0, width: size, height: size))
        context.render(image, to: out)
        return out
    }
}
#endif
