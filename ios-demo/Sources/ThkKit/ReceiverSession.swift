import CThk

/// The session start (docs/transport.md section 3) and the receiving end's state machine: the
/// core's `thk_receiver` (native/include/thk_session.h), which does no I/O: it is given datagrams
/// and the time, and answers with the datagram to send back, so the same machine runs over UDP
/// (`UDPReceiver`) and in tests.

/// What the sender delivered reliably before the first frame.
public struct SessionStart: Equatable {
    public let sessionId: UInt32
    public let header: [UInt8]
    public let portrait: [UInt8]?
}

/// Errors of the session layer (the core's own refusals are `ThkError`s).
public enum SessionError: Error, Equatable, CustomStringConvertible {
    case timeout(String)
    /// The stream is of another model than the receiver's graphs (model SHA-256 prefixes, hex).
    case otherModel(expected: String, got: String)
    case otherKind(expected: StreamKind, got: StreamKind)
    case notConnected

    public var description: String {
        switch self {
        case .timeout(let what): return "timed out: \(what)"
        case .otherModel(let expected, let got): return "the stream is of model \(got), the receiver's graphs of \(expected)"
        case .otherKind(let expected, let got): return "the stream is of kind \(got), the receiver renders \(expected)"
        case .notConnected: return "no session: connect first"
        }
    }
}

/// The receiver (PacketReceiver of sdk/transport/endpoints.py): listening -> (HELLO: CHALLENGE)
/// -> (START chunks: START_ACK) -> a `SessionStart` waits -> `takeSessionStart()` -> FRAMEs ->
/// `pop(now:)` per frame tick. A receiver in a session keeps it: a new sender's completed start
/// waits (`sessionWaiting`) until `takeSessionStart()` is called again; its frames count as
/// `otherSession` meanwhile. Nothing the network delivers throws: it is counted in `stats`.
public final class ReceiverSession<Peer> {
    public enum State: Equatable {
        case listening                 // no session yet
        case active(sessionId: UInt32)
        case closed(sessionId: UInt32) // the sender said BYE
    }

    public let jitter: JitterConfig
    private let core = CBox<thk_receiver>()
    private let blob: UnsafeMutablePointer<UInt8>    // where session starts are assembled (8 MiB)
    private var reply = [UInt8](repeating: 0, count: TransportConstants.sessionDatagramBytes)
    private var out = [UInt8](repeating: 0, count: TransportConstants.maxFramePacketBytes)
    private var completed: SessionStart?             // the last start, until taken

    /// `secret`: the 32-byte pre-shared key (anything else throws `.keyLength`).
    public init(secret: [UInt8], jitter: JitterConfig = JitterConfig()) throws {
        try Crypto.start()
        self.jitter = jitter
        blob = UnsafeMutablePointer<UInt8>.allocate(capacity: Int(THK_MAX_BLOB_BYTES))
        try ThkError.check(thk_receiver_init(core.pointer, secret, secret.count, blob, Int(THK_MAX_BLOB_BYTES),
                                             jitter.gapWaitS, Int32(jitter.capacity)))  // on error, deinit frees blob
    }

    deinit { blob.deallocate() }

    public var state: State {
        guard thk_receiver_has_session(core.pointer) != 0 else { return .listening }
        let id = core.pointer.pointee.active.session_id
        return thk_receiver_peer_closed(core.pointer) != 0 ? .closed(sessionId: id) : .active(sessionId: id)
    }

    /// A completed session start waits for `takeSessionStart()`.
    public var sessionWaiting: Bool { completed != nil }
    public var peerClosed: Bool { thk_receiver_peer_closed(core.pointer) != 0 }

    /// Counters over every session so far.
    public var stats: ReceiverStats {
        var c = thk_receiver_counts()
        thk_receiver_counts_get(core.pointer, &c)
        var s = ReceiverStats()
        s.received = c.received; s.recovered = c.recovered; s.delivered = c.delivered; s.lost = c.lost
        s.reordered = c.reordered; s.late = c.late; s.overflow = c.overflow; s.duplicates = c.duplicates
        s.tooOld = c.too_old; s.forged = c.forged; s.truncated = c.truncated; s.garbage = c.garbage
        s.otherSession = c.other_session; s.malformed = c.malformed; s.oversized = c.oversized
        s.handshakes = c.handshakes; s.sessions = c.sessions
        return s
    }

    /// The waiting session start, which becomes the active session (its frames are accepted from now).
    public func takeSessionStart() -> SessionStart? {
        guard let start = completed else { return nil }
        completed = nil
        if core.pointer.pointee.waiting.used != 0 && core.pointer.pointee.waiting.session_id == start.sessionId {
            _ = thk_receiver_activate_waiting(core.pointer)  // it waits, so this cannot fail
        }
        return start
    }

    /// Handles one inbound datagram; returns the datagram to send back (CHALLENGE, START_ACK), if any.
    public func handle(_ data: [UInt8], from peer: Peer, now: Double) -> [(data: [UInt8], to: Peer)] {
        var length = 0
        let status = data.withUnsafeBufferPointer { bytes in
            reply.withUnsafeMutableBufferPointer {
                thk_receiver_handle(core.pointer, bytes.baseAddress, bytes.count, now, $0.baseAddress, $0.count, &length)
            }
        }
        if status == Int32(THK_STARTED) {
            var start = thk_session_start()
            if thk_receiver_started(core.pointer, &start) == 0 {
                completed = SessionStart(sessionId: start.session_id,
                                         header: Array(UnsafeBufferPointer(start: start.header, count: start.header_length)),
                                         portrait: start.portrait.map { Array(UnsafeBufferPointer(start: $0, count: start.portrait_length)) })
            }
        }
        return length > 0 ? [(Array(reply.prefix(length)), peer)] : []
    }

    /// The next frame packet in order when one is due at `now`.
    public func pop(now: Double) -> [UInt8]? {
        var length = 0
        let due = out.withUnsafeMutableBufferPointer { thk_receiver_pop(core.pointer, now, $0.baseAddress, $0.count, &length) }
        return due == 1 ? Array(out.prefix(length)) : nil
    }

    /// When the jitter buffer gives up the gap it waits on (nil: none pending).
    public var gapDeadline: Double? {
        var deadline = 0.0
        return thk_receiver_gap_deadline(core.pointer, &deadline) == 1 ? deadline : nil
    }
}
