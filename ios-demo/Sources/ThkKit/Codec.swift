import CThk

/// What a decoded packet says about its frame.
public struct FrameInfo: Equatable {
    public let sequence: UInt64
    public let timestampMs: UInt64
    public let keyframe: Bool
    public let keyframeId: UInt8
}

/// A learned-keypoint frame's code, dequantized (float32 as the Python decoder gives it).
public struct LearnedCode: Equatable {
    public var keypoints: [Float]     // 2K: x then y per keypoint
    public var jacobians: [Float]?    // 4K (keypoint, row, column); nil when the stream has none (identity)
    public var extra: [Float]         // D
}

/// A semantic frame's code, dequantized (float64, exact).
public struct SemanticCode: Equatable {
    public var pose: [Double]         // yaw, pitch, roll, tx, ty, log_scale
    public var expression: [Double]   // E
}

/// A hybrid frame's code, dequantized: the semantic part (float64) and the learned keypoints (float32).
public struct HybridCode: Equatable {
    public var pose: [Double]         // yaw, pitch, roll, tx, ty, log_scale
    public var expression: [Double]   // E
    public var keypoints: [Float]     // 2K: x then y per keypoint
    public var jacobians: [Float]?    // 4K; nil when the stream has none
}

public struct DecoderStats: Equatable {
    public var decoded: UInt64, keyframes: UInt64, missingReference: UInt64, stale: UInt64, malformed: UInt64
}

/// The packet decoder of any stream kind (`thk_decoder`): one per stream, state allocated once.
public final class CodeDecoder {
    public let header: StreamHeader
    private let state = CBox<thk_decoder>()
    private let frame = CBox<thk_frame>()
    private var hasFrame = false

    public init(header: StreamHeader) throws {
        self.header = header
        try ThkError.check(withUnsafePointer(to: header.raw) { thk_decoder_init(state.pointer, $0) })
    }

    /// Decodes one packet (no allocation). Throws `.malformed`, `.missingReference` or `.stale`
    /// (counted in `stats`; the decoder's state is then unchanged and the last frame is gone).
    @discardableResult
    public func decode(_ packet: UnsafeRawBufferPointer) throws -> FrameInfo {
        hasFrame = false
        let bytes = packet.bindMemory(to: UInt8.self)
        try ThkError.check(thk_decoder_decode(state.pointer, bytes.baseAddress, bytes.count, frame.pointer))
        hasFrame = true
        return info
    }

    @discardableResult
    public func decode(_ packet: [UInt8]) throws -> FrameInfo {
        try packet.withUnsafeBytes { try decode($0) }
    }

    /// The last decoded frame's header fields.
    public var info: FrameInfo {
        let f = frame.pointer.pointee
        return FrameInfo(sequence: f.sequence, timestampMs: f.timestamp_ms, keyframe: f.keyframe != 0,
                         keyframeId: f.keyframe_id)
    }

    /// The last decoded frame's integer levels (`header.codeValues` of them).
    public var levels: [Int32] {
        withUnsafeBytes(of: &frame.pointer.pointee.code) { Array($0.bindMemory(to: Int32.self).prefix(header.codeValues)) }
    }

    /// The last decoded frame dequantized into caller buffers (2K, 4K and D floats; no allocation).
    /// `jacobians` / `extra` may be nil; throws `.wrongKind` for a stream of another kind.
    public func dequantizeLearned(keypoints: UnsafeMutablePointer<Float>, jacobians: UnsafeMutablePointer<Float>?,
                                  extra: UnsafeMutablePointer<Float>?) throws {
        guard hasFrame else { throw ThkError.argument }
        try ThkError.check(withUnsafePointer(to: header.raw) {
            thk_frame_dequantize_learned($0, frame.pointer, keypoints, jacobians, extra)
        })
    }

    public func learnedCode() throws -> LearnedCode {
        let k = header.numKeypoints
        var keypoints = [Float](repeating: 0, count: 2 * k)
        var jacobians = [Float](repeating: 0, count: 4 * k)
        var extra = [Float](repeating: 0, count: max(1, header.extraDims))
        try keypoints.withUnsafeMutableBufferPointer { kp in
            try jacobians.withUnsafeMutableBufferPointer { jac in
                try extra.withUnsafeMutableBufferPointer { ext in
                    try dequantizeLearned(keypoints: kp.baseAddress!, jacobians: jac.baseAddress, extra: ext.baseAddress)
                }
            }
        }
        return LearnedCode(keypoints: keypoints, jacobians: header.hasJacobians ? jacobians : nil,
                           extra: Array(extra.prefix(header.extraDims)))
    }

    public func semanticCode() throws -> SemanticCode {
        guard hasFrame else { throw ThkError.argument }
        var pose = [Double](repeating: 0, count: 6)
        var expression = [Double](repeating: 0, count: max(1, header.expressionDims))
        try ThkError.check(withUnsafePointer(to: header.raw) {
            thk_frame_dequantize_semantic($0, frame.pointer, &pose, &expression)
        })
        return SemanticCode(pose: pose, expression: Array(expression.prefix(header.expressionDims)))
    }

    public func hybridCode() throws -> HybridCode {
        guard hasFrame else { throw ThkError.argument }
        let k = header.numKeypoints
        var pose = [Double](repeating: 0, count: 6)
        var expression = [Double](repeating: 0, count: max(1, header.expressionDims))
        var keypoints = [Float](repeating: 0, count: max(1, 2 * k))
        var jacobians = [Float](repeating: 0, count: max(1, 4 * k))
        try ThkError.check(withUnsafePointer(to: header.raw) {
            thk_frame_dequantize_hybrid($0, frame.pointer, &pose, &expression, &keypoints, &jacobians)
        })
        return HybridCode(pose: pose, expression: Array(expression.prefix(header.expressionDims)),
                          keypoints: Array(keypoints.prefix(2 * k)), jacobians: header.hasJacobians ? jacobians : nil)
    }

    public var stats: DecoderStats {
        let s = state.pointer.pointee.stats
        return DecoderStats(decoded: s.decoded, keyframes: s.keyframes, missingReference: s.missing_reference,
                            stale: s.stale, malformed: s.malformed)
    }
}

public struct EncoderStats: Equatable {
    public var frames: UInt64, keyframes: UInt64, bytes: UInt64, keyframeBytes: UInt64, clampedValues: UInt64
}

/// The packet encoder of any stream kind (`thk_encoder`), bit-exact with the Python's.
public final class CodeEncoder {
    public let header: StreamHeader
    private let state = CBox<thk_encoder>()
    private var out: [UInt8]

    public init(header: StreamHeader) throws {
        self.header = header
        out = [UInt8](repeating: 0, count: header.maxPacketBytes)
        try ThkError.check(withUnsafePointer(to: header.raw) { thk_encoder_init(state.pointer, $0) })
    }

    public func forceKeyframe() { thk_encoder_force_keyframe(state.pointer) }

    /// Learned kind: keypoints (2K), jacobians (4K; required when the stream has them, ignored
    /// otherwise), extra (D). Throws `.argument` for wrong lengths, `.notFinite`, `.timestamp`.
    public func encodeLearned(keypoints: [Float], jacobians: [Float]?, extra: [Float]?, timestampMs: UInt64) throws -> [UInt8] {
        let k = header.numKeypoints
        guard header.kind == .learned else { throw ThkError.wrongKind }
        guard keypoints.count == 2 * k, !header.hasJacobians || jacobians?.count == 4 * k,
              (extra?.count ?? 0) == header.extraDims else { throw ThkError.argument }
        var written = 0
        let status = out.withUnsafeMutableBufferPointer { buffer in
            thk_encoder_encode_learned(state.pointer, keypoints, header.hasJacobians ? jacobians : nil,
                                       header.extraDims > 0 ? extra : nil, timestampMs, buffer.baseAddress,
                                       buffer.count, &written)
        }
        try ThkError.check(status)
        return Array(out.prefix(written))
    }

    /// Semantic kind: pose (6) and expression (E), float64.
    public func encodeSemantic(pose: [Double], expression: [Double], timestampMs: UInt64) throws -> [UInt8] {
        guard header.kind == .semantic else { throw ThkError.wrongKind }
        guard pose.count == 6, expression.count == header.expressionDims else { throw ThkError.argument }
        var written = 0
        let padded = expression.isEmpty ? [0] : expression
        let status = out.withUnsafeMutableBufferPointer { buffer in
            thk_encoder_encode_semantic(state.pointer, pose, padded, timestampMs, buffer.baseAddress, buffer.count, &written)
        }
        try ThkError.check(status)
        return Array(out.prefix(written))
    }

    /// Hybrid kind: pose (6) and expression (E) float64, keypoints (2K) and jacobians (4K; required
    /// when the stream has them, ignored otherwise) float32.
    public func encodeHybrid(pose: [Double], expression: [Double], keypoints: [Float], jacobians: [Float]?,
                             timestampMs: UInt64) throws -> [UInt8] {
        let k = header.numKeypoints
        guard header.kind == .hybrid else { throw ThkError.wrongKind }
        guard pose.count == 6, expression.count == header.expressionDims, keypoints.count == 2 * k,
              !header.hasJacobians || jacobians?.count == 4 * k else { throw ThkError.argument }
        var written = 0
        let padded = expression.isEmpty ? [0] : expression
        let status = out.withUnsafeMutableBufferPointer { buffer in
            thk_encoder_encode_hybrid(state.pointer, pose, padded, keypoints, header.hasJacobians ? jacobians : nil,
                                      timestampMs, buffer.baseAddress, buffer.count, &written)
        }
        try ThkError.check(status)
        return Array(out.prefix(written))
    }

    public var stats: EncoderStats {
        let s = state.pointer.pointee.stats
        return EncoderStats(frames: s.frames, keyframes: s.keyframes, bytes: s.bytes, keyframeBytes: s.keyframe_bytes,
                            clampedValues: s.clamped_values)
    }
}
