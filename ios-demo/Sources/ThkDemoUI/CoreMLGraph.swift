#if canImport(SwiftUI) && canImport(AVFoundation) && canImport(Vision) && canImport(CoreML)
import CoreML
import CoreVideo

/// One exported graph (.mlpackage of the app bundle) on Core ML. Asks for every compute unit
/// (`.all`: the Neural Engine where Core ML can place the ops); when that configuration cannot
/// load, it falls back to the CPU and says so in `placement` instead of silently going slow. On
/// iOS 17.4 / macOS 14.4 and later `placement` also counts the ops Core ML prefers on each device.
final class CoreMLGraph {
    let name: String
    let model: MLModel
    private(set) var placement: String

    init(name: String, package: URL) async throws {
        self.name = name
        let compiled = try await MLModel.compileModel(at: package)
        let configuration = MLModelConfiguration()
        configuration.computeUnits = .all
        do {
            model = try MLModel(contentsOf: compiled, configuration: configuration)
            placement = "all compute units"
        } catch {
            configuration.computeUnits = .cpuOnly
            model = try MLModel(contentsOf: compiled, configuration: configuration)
            placement = "CPU only (all compute units failed: \(error.localizedDescription))"
        }
        if #available(iOS 17.4, macOS 14.4, *) {
            placement += "; " + (await CoreMLGraph.opsPerDevice(compiled, configuration) ?? "no compute plan")
        }
    }

    @available(iOS 17.4, macOS 14.4, *)
    private static func opsPerDevice(_ compiled: URL, _ configuration: MLModelConfiguration) async -> String? {
        guard let plan = try? await MLComputePlan.load(contentsOf: compiled, configuration: configuration),
              case .program(let program) = plan.modelStructure, let main = program.functions["main"] else { return nil }
        var counts: [String: Int] = [:]
        for operation in main.block.operations {
            switch plan.deviceUsage(for: operation)?.preferred {
            case .neuralEngine?: counts["Neural Engine", default: 0] += 1
            case .gpu?: counts["GPU", default: 0] += 1
            case .cpu?: counts["CPU", default: 0] += 1
            default: counts["unplaced", default: 0] += 1
            }
        }
        return counts.sorted { $0.key < $1.key }.map { "\($0.value) ops on \($0.key)" }.joined(separator: ", ")
    }

    /// Inputs by name -> outputs by name.
    func predict(_ inputs: [String: MLMultiArray]) throws -> [String: MLMultiArray] {
        let provider = try MLDictionaryFeatureProvider(dictionary: inputs.mapValues { MLFeatureValue(multiArray: $0) })
        let result = try model.prediction(from: provider)
        var outputs: [String: MLMultiArray] = [:]
        for name in result.featureNames { outputs[name] = result.featureValue(for: name)?.multiArrayValue }
        return outputs
    }

    var inputNames: [String] { Array(model.modelDescription.inputDescriptionsByName.keys) }
}

/// Conversions between the graphs' tensors and the app's buffers (docs: sdk/runtime/graphs.py
/// TensorSpec meanings: images RGB float32 in [0, 1], NCHW; keypoints (1, K, 2); Jacobians (1, K, 2, 2)).
enum Tensors {
    static func array(_ values: [Float], shape: [Int]) throws -> MLMultiArray {
        let array = try MLMultiArray(shape: shape.map { NSNumber(value: $0) }, dataType: .float32)
        let pointer = array.dataPointer.bindMemory(to: Float.self, capacity: values.count)
        for (index, value) in values.enumerated() { pointer[index] = value }  // a new array is contiguous
        return array
    }

    /// The values in logical order, whatever the strides and the element type (fp16 graphs).
    static func floats(_ array: MLMultiArray) -> [Float] {
        (0..<array.count).map { array[$0].floatValue }
    }

    /// BGRA pixels -> (1, 3, H, W) RGB in [0, 1].
    static func image(_ buffer: CVPixelBuffer) throws -> MLMultiArray {
        let width = CVPixelBufferGetWidth(buffer), height = CVPixelBufferGetHeight(buffer)
        let array = try MLMultiArray(shape: [1, 3, NSNumber(value: height), NSNumber(value: width)], dataType: .float32)
        CVPixelBufferLockBaseAddress(buffer, .readOnly)
        defer { CVPixelBufferUnlockBaseAddress(buffer, .readOnly) }
        let rowBytes = CVPixelBufferGetBytesPerRow(buffer)
        let pixels = CVPixelBufferGetBaseAddress(buffer)!.assumingMemoryBound(to: UInt8.self)
        let out = array.dataPointer.bindMemory(to: Float.self, capacity: 3 * width * height)
        let plane = width * height
        for y in 0..<height {
            for x in 0..<width {
                let pixel = pixels + y * rowBytes + 4 * x  // B, G, R, A
                out[y * width + x] = Float(pixel[2]) / 255
                out[plane + y * width + x] = Float(pixel[1]) / 255
                out[2 * plane + y * width + x] = Float(pixel[0]) / 255
            }
        }
        return array
    }

    /// (1, 3, S, S) RGB in [0, 1] -> a BGRA pixel buffer for the view.
    static func pixelBuffer(_ array: MLMultiArray) -> CVPixelBuffer? {
        let side = array.shape[3].intValue, values = floats(array), plane = side * side
        var buffer: CVPixelBuffer?
        CVPixelBufferCreate(nil, side, side, kCVPixelFormatType_32BGRA, nil, &buffer)
        guard let buffer else { return nil }
        CVPixelBufferLockBaseAddress(buffer, [])
        defer { CVPixelBufferUnlockBaseAddress(buffer, []) }
        let rowBytes = CVPixelBufferGetBytesPerRow(buffer)
        let pixels = CVPixelBufferGetBaseAddress(buffer)!.assumingMemoryBound(to: UInt8.self)
        func byte(_ value: Float) -> UInt8 { UInt8(max(0, min(255, (value * 255).rounded()))) }
        for y in 0..<side {
            for x in 0..<side {
                let pixel = pixels + y * rowBytes + 4 * x
                pixel[0] = byte(values[2 * plane + y * side + x])
                pixel[1] = byte(values[plane + y * side + x])
                pixel[2] = byte(values[y * side + x])
                pixel[3] = 255
            }
        }
        return buffer
    }
}
#endif
