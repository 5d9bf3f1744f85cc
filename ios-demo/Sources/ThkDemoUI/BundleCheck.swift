#if canImport(SwiftUI) && canImport(AVFoundation) && canImport(Vision) && canImport(CoreML)
import CoreML
import Foundation
import ThkKit

/// Loads every graph of the app bundle on Core ML (all compute units, CPU fallback reported), runs
/// the sender's keypoint encoder and the receiver's source encoder + generator once on the bundle's
/// portrait at zero motion, and says where Core ML placed each graph and how long one run took.
public func checkBundle() async throws -> String {
    guard let folder = DemoSession.bundleFolder() else { throw AppBundle.BundleError.notABundle("no talking_head folder") }
    let bundle = try AppBundle.load(from: folder)
    var lines = ["bundle: \(bundle.modelId) (\(bundle.modelSha256.prefix(16))), \(bundle.resolution)² -> \(bundle.outputSize)²"]
    var graphs: [String: CoreMLGraph] = [:]
    for name in bundle.graphs.keys.sorted() {
        let graph = try await CoreMLGraph(name: name, package: bundle.graphURL(name, in: folder))
        graphs[name] = graph
        lines.append("\(name): \(graph.placement)")
    }
    guard let portrait = DemoSession.portrait(folder, size: bundle.resolution) else {
        lines.append("no portrait.jpg with a face beside bundle.json: graphs loaded, not run")
        return lines.joined(separator: "\n")
    }
    let image = try Tensors.image(portrait)
    func timed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
        let start = monotonicSeconds()
        let value = try body()
        return (value, 1000 * (monotonicSeconds() - start))
    }
    if let keypointEncoder = graphs["keypoint_encoder"] {
        let (outputs, ms) = try timed { try keypointEncoder.predict(["image": image]) }
        lines.append("keypoint_encoder: \(outputs["keypoints"].map { Tensors.floats($0).count / 2 } ?? 0) keypoints in \(ms) ms")
    }
    if let sourceEncoder = graphs["source_encoder"], let generator = graphs["generator"] {
        var inputs = try sourceEncoder.predict(["image": image])
        inputs["source_image"] = image
        inputs["driving_keypoints"] = inputs["source_keypoints"]
        inputs["driving_jacobians"] = inputs["source_jacobians"]
        let names = Set(generator.inputNames)
        let (outputs, ms) = try timed { try generator.predict(inputs.filter { names.contains($0.key) }) }
        let frame = outputs["image"].map(Tensors.floats) ?? []
        lines.append("generator: \(frame.count / 3) pixels, mean \(frame.reduce(0, +) / Float(max(1, frame.count))) in \(ms) ms")
    }
    return lines.joined(separator: "\n")
}
#endif
