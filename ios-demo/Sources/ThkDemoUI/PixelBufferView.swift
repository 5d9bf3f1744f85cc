#if canImport(SwiftUI) && canImport(AVFoundation) && canImport(Vision) && canImport(CoreML)
import CoreVideo
import SwiftUI
import VideoToolbox

/// Shows a `CVPixelBuffer` (the generator's frame, or the camera's crop) as it is.
struct PixelBufferView: View {
    let buffer: CVPixelBuffer?

    var body: some View {
        if let buffer, let image = PixelBufferView.cgImage(buffer) {
            Image(decorative: image, scale: 1).resizable().aspectRatio(contentMode: .fit)
        } else {
            Rectangle().fill(.black).aspectRatio(1, contentMode: .fit)
        }
    }

    static func cgImage(_ buffer: CVPixelBuffer) -> CGImage? {
        var image: CGImage?
        VTCreateCGImageFromCVPixelBuffer(buffer, options: nil, imageOut: &image)
        return image
    }
}
#endif
