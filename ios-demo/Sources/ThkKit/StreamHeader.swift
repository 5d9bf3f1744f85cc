import CThk

/// The three stream kinds of docs/bitstream.md (`thk_header.kind`).
public enum StreamKind: Int32 {
    case learned = 1   // version 1: learned keypoints (+ Jacobians, + extra)
    case semantic = 2  // version 2, kind 1: pose + expression in a face prior
    case hybrid = 3    // version 2, kind 2: pose + expression, then learned keypoints (+ Jacobians)
}

/// A parsed, checked stream header (docs/bitstream.md sections 2, 11.2 and 13.2).
public struct StreamHeader {
    var raw: thk_header

    /// The core's struct, for code that calls the C core directly (the benchmark's baseline).
    public var rawHeader: thk_header { raw }

    /// Parses and checks `bytes`: throws `.headerLength`, `.headerMagic`, `.headerVersion`,
    /// `.headerKind`, `.headerCRC` or `.headerField`.
    public init(bytes: [UInt8]) throws {
        var header = thk_header()
        try ThkError.check(bytes.withUnsafeBufferPointer { thk_header_parse(&header, $0.baseAddress, $0.count) })
        raw = header
    }

    public var kind: StreamKind { StreamKind(rawValue: raw.kind)! }  // the parser admits only these three
    public var numKeypoints: Int { Int(raw.num_kp) }
    public var hasJacobians: Bool { raw.jacobians != 0 }
    public var extraDims: Int { Int(raw.extra_dims) }
    public var expressionDims: Int { Int(raw.expression_dims) }
    public var resolution: Int { Int(raw.resolution) }
    public var framesPerSecond: Double { Double(raw.fps_millihertz) / 1000 }
    public var keyframeInterval: Int { Int(raw.keyframe_interval) }
    /// Integer levels per frame: 6K + D (learned; 2K without Jacobians) or 6 + E (semantic).
    public var codeValues: Int { withUnsafePointer(to: raw) { Int(thk_code_values($0)) } }
    /// A bound on one packet's size for this stream.
    public var maxPacketBytes: Int { withUnsafePointer(to: raw) { thk_max_packet_bytes($0) } }

    public var modelId: String {
        withUnsafeBytes(of: raw.model_id) { String(decoding: $0.prefix(Int(raw.model_id_length)), as: UTF8.self) }
    }
    /// The first 8 bytes of the model's SHA-256: the receiver's graphs must be of this model.
    public var modelShaPrefix: [UInt8] { withUnsafeBytes(of: raw.model_sha_prefix) { Array($0) } }
    /// Semantic streams: the first 8 bytes of the face prior's SHA-256.
    public var priorShaPrefix: [UInt8] { withUnsafeBytes(of: raw.prior_sha_prefix) { Array($0) } }

    /// The header serialized again (byte for byte what was parsed).
    public func bytes() throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(THK_MAX_HEADER_BYTES))
        var written = 0
        try ThkError.check(withUnsafePointer(to: raw) { header in
            out.withUnsafeMutableBufferPointer { thk_header_write(header, $0.baseAddress, $0.count, &written) }
        })
        return Array(out.prefix(written))
    }

    /// Semantic and hybrid streams: throws `.priorMismatch` unless the receiver's prior (its SHA-256's first 8
    /// bytes, its number of coefficients) is the stream's (`.wrongKind` for a learned stream).
    public func checkPrior(shaPrefix: [UInt8], components: Int) throws {
        guard shaPrefix.count == 8, components >= 0 else { throw ThkError.argument }
        try ThkError.check(withUnsafePointer(to: raw) { thk_header_check_prior($0, shaPrefix, UInt32(components)) })
    }
}
