import CThk

/// Datagram types of docs/transport.md section 2.
public enum PacketType: UInt8 {
    case hello = 1, challenge = 2, start = 3, startAck = 4, frame = 5, bye = 6
}

public enum TransportConstants {
    public static let keyBytes = Int(THK_KEY_BYTES)
    public static let saltBytes = Int(THK_SALT_BYTES)
    public static let tagBytes = Int(THK_TAG_BYTES)
    public static let maxRedundancy = Int(THK_MAX_REDUNDANCY)
    public static let maxFramePacketBytes = Int(THK_JITTER_SLOT_BYTES)
    /// Room for any datagram of the session start (THK_SESSION_DATAGRAM_BYTES, a macro Swift cannot import).
    static let sessionDatagramBytes = Int(THK_PREFIX_BYTES) + Int(THK_SALT_BYTES) + 8 + Int(THK_CHUNK_BYTES) + Int(THK_TAG_BYTES)
}

/// Key derivation (docs/transport.md section 1); a secret that is not 32 bytes throws `.keyLength`.
public enum SessionKeys {
    public static func helloKey(secret: [UInt8], senderSalt: [UInt8]) throws -> [UInt8] {
        try Crypto.start()
        guard senderSalt.count == TransportConstants.saltBytes else { throw ThkError.argument }
        var key = [UInt8](repeating: 0, count: 32)
        try ThkError.check(thk_derive_hello_key(secret, secret.count, senderSalt, &key))
        return key
    }

    /// (sender -> receiver, receiver -> sender) keys of one session.
    public static func sessionKeys(secret: [UInt8], senderSalt: [UInt8], receiverSalt: [UInt8]) throws
        -> (forward: [UInt8], backward: [UInt8]) {
        try Crypto.start()
        guard senderSalt.count == TransportConstants.saltBytes, receiverSalt.count == TransportConstants.saltBytes else {
            throw ThkError.argument
        }
        var forward = [UInt8](repeating: 0, count: 32), backward = [UInt8](repeating: 0, count: 32)
        try ThkError.check(thk_derive_session_keys(secret, secret.count, senderSalt, receiverSalt, &forward, &backward))
        return (forward, backward)
    }

    /// 16 random bytes (the system's CSPRNG: getrandom on Linux, arc4random on Apple platforms).
    public static func randomSalt() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<TransportConstants.saltBytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }
}

/// A parsed, not yet authenticated datagram (`thk_datagram`); it keeps its bytes.
public struct Datagram {
    public let bytes: [UInt8]
    public let type: PacketType
    public let sessionId: UInt32
    public let number: UInt32
    public let salt: [UInt8]?      // HELLO and CHALLENGE
    public let sealedLength: Int

    /// Splits `bytes`: throws `.truncated` (shorter than its clear prefix) or `.garbage` (unknown type).
    public init(_ bytes: [UInt8]) throws {
        var parsed = thk_datagram()
        try ThkError.check(bytes.withUnsafeBufferPointer { thk_datagram_parse(&parsed, $0.baseAddress, $0.count) })
        self.bytes = bytes
        type = PacketType(rawValue: UInt8(parsed.type))!
        sessionId = parsed.session_id
        number = parsed.number
        salt = parsed.salt == nil ? nil : Array(bytes[Int(THK_PREFIX_BYTES)..<Int(THK_PREFIX_BYTES) + TransportConstants.saltBytes])
        sealedLength = parsed.sealed_length
    }

    /// Authenticates and decrypts: throws `.truncated` (no room for a tag) or `.forged`.
    public func open(key: [UInt8]) throws -> [UInt8] {
        try Crypto.start()
        guard key.count == TransportConstants.keyBytes else { throw ThkError.keyLength }
        var plaintext = [UInt8](repeating: 0, count: max(1, sealedLength - TransportConstants.tagBytes))
        var length = 0
        try bytes.withUnsafeBufferPointer { data in
            var parsed = thk_datagram()
            try ThkError.check(thk_datagram_parse(&parsed, data.baseAddress, data.count))
            try ThkError.check(plaintext.withUnsafeMutableBufferPointer {
                thk_datagram_open(key, data.baseAddress, &parsed, $0.baseAddress, $0.count, &length)
            })
        }
        return Array(plaintext.prefix(length))
    }

    /// A whole datagram: clear prefix (+ salt for HELLO / CHALLENGE), ciphertext and tag.
    public static func seal(key: [UInt8], type: PacketType, sessionId: UInt32, number: UInt32, salt: [UInt8]? = nil,
                            plaintext: [UInt8]) throws -> [UInt8] {
        try Crypto.start()
        guard key.count == TransportConstants.keyBytes else { throw ThkError.keyLength }
        guard salt == nil || salt!.count == TransportConstants.saltBytes else { throw ThkError.argument }
        var out = [UInt8](repeating: 0, count: 25 + plaintext.count + TransportConstants.tagBytes)
        var written = 0
        let status = out.withUnsafeMutableBufferPointer { buffer in
            plaintext.withUnsafeBufferPointer { clear in
                thk_datagram_seal(key, Int32(type.rawValue), sessionId, number, salt, clear.baseAddress, clear.count,
                                  buffer.baseAddress, buffer.count, &written)
            }
        }
        try ThkError.check(status)
        return Array(out.prefix(written))
    }
}

/// A FRAME's plaintext: this frame's packet after copies of the previous ones (most recent first).
public enum FramePayload {
    public static func pack(packet: [UInt8], earlier: [[UInt8]]) throws -> [UInt8] {
        guard earlier.count <= TransportConstants.maxRedundancy else { throw ThkError.argument }
        var out = [UInt8](repeating: 0, count: 1 + packet.count + earlier.reduce(0) { $0 + 2 + $1.count })
        var written = 0
        let lengths = earlier.map { $0.count }
        let status = withPointers(earlier) { copies in
            out.withUnsafeMutableBufferPointer { buffer in
                packet.withUnsafeBufferPointer { p in
                    thk_frame_payload_write(p.baseAddress, p.count, Int32(earlier.count), copies, lengths,
                                            buffer.baseAddress, buffer.count, &written)
                }
            }
        }
        try ThkError.check(status)
        return Array(out.prefix(written))
    }

    /// Base addresses of `arrays`, valid inside `body`.
    private static func withPointers<R>(_ arrays: [[UInt8]], _ body: ([UnsafePointer<UInt8>?]) -> R) -> R {
        var pointers: [UnsafePointer<UInt8>?] = []
        func nest(_ index: Int) -> R {
            if index == arrays.count { return body(pointers) }
            return arrays[index].withUnsafeBufferPointer { buffer in
                pointers.append(buffer.baseAddress)
                return nest(index + 1)
            }
        }
        return nest(0)
    }
}

/// The jitter buffer's settings (sdk.transport.JitterConfig).
public struct JitterConfig: Equatable {
    public var gapWaitS: Double
    public var capacity: Int
    public init(gapWaitS: Double = 0.06, capacity: Int = 16) {
        self.gapWaitS = gapWaitS
        self.capacity = capacity
    }
}

/// The receiver's counters (docs/transport.md section 5, `ReceiverStats`), plus `oversized`: frame
/// packets over a jitter slot (2048 bytes), which the Python would hold.
public struct ReceiverStats: Equatable {
    public var received: UInt64 = 0, recovered: UInt64 = 0, delivered: UInt64 = 0, lost: UInt64 = 0
    public var reordered: UInt64 = 0, late: UInt64 = 0, overflow: UInt64 = 0, duplicates: UInt64 = 0
    public var tooOld: UInt64 = 0, forged: UInt64 = 0, truncated: UInt64 = 0, garbage: UInt64 = 0
    public var otherSession: UInt64 = 0, malformed: UInt64 = 0, oversized: UInt64 = 0
    public var handshakes: UInt64 = 0, sessions: UInt64 = 0
    public init() {}

    static func + (a: ReceiverStats, b: ReceiverStats) -> ReceiverStats {
        var s = ReceiverStats()
        s.received = a.received + b.received; s.recovered = a.recovered + b.recovered
        s.delivered = a.delivered + b.delivered; s.lost = a.lost + b.lost; s.reordered = a.reordered + b.reordered
        s.late = a.late + b.late; s.overflow = a.overflow + b.overflow; s.duplicates = a.duplicates + b.duplicates
        s.tooOld = a.tooOld + b.tooOld; s.forged = a.forged + b.forged; s.truncated = a.truncated + b.truncated
        s.garbage = a.garbage + b.garbage; s.otherSession = a.otherSession + b.otherSession
        s.malformed = a.malformed + b.malformed; s.oversized = a.oversized + b.oversized
        s.handshakes = a.handshakes + b.handshakes; s.sessions = a.sessions + b.sessions
        return s
    }
}

/// One active session's per-frame path (`thk_frame_receiver`): FRAME and BYE datagrams through
/// the replay window, authentication, redundant copies and the jitter buffer.
public final class FrameReceiver {
    public let sessionId: UInt32
    private let state = CBox<thk_frame_receiver>()
    private var out = [UInt8](repeating: 0, count: TransportConstants.maxFramePacketBytes)

    public init(forwardKey: [UInt8], sessionId: UInt32, jitter: JitterConfig = JitterConfig()) throws {
        try Crypto.start()
        guard forwardKey.count == TransportConstants.keyBytes else { throw ThkError.keyLength }
        self.sessionId = sessionId
        try ThkError.check(thk_frame_receiver_init(state.pointer, forwardKey, sessionId, jitter.gapWaitS,
                                                   Int32(jitter.capacity)))
    }

    /// One inbound datagram at `now` (seconds, monotonic). Throws why it was dropped (also counted):
    /// `.truncated`, `.garbage`, `.otherSession`, `.duplicate`, `.tooOld`, `.forged`,
    /// `.frameMalformed`, `.oversized`.
    public func handle(_ datagram: UnsafeRawBufferPointer, now: Double) throws {
        let bytes = datagram.bindMemory(to: UInt8.self)
        try ThkError.check(thk_frame_receiver_handle(state.pointer, bytes.baseAddress, bytes.count, now))
    }

    public func handle(_ datagram: [UInt8], now: Double) throws {
        try datagram.withUnsafeBytes { try handle($0, now: now) }
    }

    /// The next frame packet in order when one is due at `now`, else nil.
    public func pop(now: Double) -> [UInt8]? {
        var length = 0
        let due = out.withUnsafeMutableBufferPointer { thk_frame_receiver_pop(state.pointer, now, $0.baseAddress, $0.count, &length) }
        return due == 1 ? Array(out.prefix(length)) : nil
    }

    /// When the gap the jitter buffer waits on will be given up; nil when none is pending.
    public var gapDeadline: Double? {
        var deadline = 0.0
        return thk_jitter_gap_deadline(&state.pointer.pointee.jitter, &deadline) == 1 ? deadline : nil
    }

    /// The sender said BYE (authentically).
    public var peerClosed: Bool { state.pointer.pointee.bye != 0 }

    public var stats: ReceiverStats {
        let r = state.pointer.pointee.stats, j = state.pointer.pointee.jitter.counts
        var s = ReceiverStats()
        s.received = r.received; s.recovered = r.recovered; s.delivered = r.delivered; s.duplicates = r.duplicates + j.duplicates
        s.tooOld = r.too_old; s.forged = r.forged; s.truncated = r.truncated; s.garbage = r.garbage
        s.otherSession = r.other_session; s.malformed = r.malformed
        s.lost = j.lost; s.reordered = j.reordered; s.late = j.late; s.overflow = j.overflow; s.oversized = j.oversized
        return s
    }
}
