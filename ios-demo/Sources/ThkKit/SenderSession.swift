import CThk

/// The sending end's state machine (PacketSender of sdk/transport/endpoints.py): the core's
/// `thk_sender` (native/include/thk_session.h), without I/O: HELLO (retransmitted, backing off,
/// until a CHALLENGE authenticates) -> START chunks (retransmitted until all are acknowledged) ->
/// FRAME per packet -> BYE. Each call returns the datagrams to send.
public final class SenderSession {
    public enum State: Equatable { case idle, handshaking, starting, streaming, closed }

    public struct Stats: Equatable {
        public var framesSent: UInt64, frameBytes: UInt64, wireBytes: UInt64, hellosSent: UInt64
        public var startChunksSent: UInt64, startRetransmits: UInt64, sessionsStarted: UInt64
        public var dropped: UInt64  // inbound datagrams that did not authenticate or did not fit
    }

    private let core = CBox<thk_sender>()
    private var blob: [UInt8] = []  // the core reads it until the start is acknowledged
    private var out = [UInt8](repeating: 0, count: TransportConstants.sessionDatagramBytes + 4 * TransportConstants.maxFramePacketBytes)

    /// `redundancy`: earlier frame packets each FRAME repeats (0...3); a secret that is not 32
    /// bytes throws `.keyLength`.
    public init(secret: [UInt8], redundancy: Int = 2, retransmitS: Double = 0.1) throws {
        try Crypto.start()
        try ThkError.check(thk_sender_init(core.pointer, secret, secret.count, Int32(redundancy), retransmitS))
    }

    public var state: State {
        switch Int(core.pointer.pointee.state) {
        case Int(THK_SENDER_HELLO): return .handshaking
        case Int(THK_SENDER_START): return .starting
        case Int(THK_SENDER_ACTIVE): return .streaming
        case Int(THK_SENDER_CLOSED): return .closed
        default: return .idle
        }
    }

    public var sessionId: UInt32 { core.pointer.pointee.session_id }

    public var stats: Stats {
        let s = core.pointer.pointee.stats
        return Stats(framesSent: s.frames_sent, frameBytes: s.frame_bytes, wireBytes: s.wire_bytes, hellosSent: s.hellos_sent,
                     startChunksSent: s.start_chunks_sent, startRetransmits: s.start_retransmits,
                     sessionsStarted: s.sessions_started, dropped: s.dropped)
    }

    /// Starts a new session delivering `header` (+ `portrait`): the datagrams due now (the first HELLO).
    public func start(header: [UInt8], portrait: [UInt8]?, now: Double) throws -> [[UInt8]] {
        var written = 0
        blob = [UInt8](repeating: 0, count: header.count + (portrait?.count ?? 0) + 5)
        try ThkError.check(blob.withUnsafeMutableBufferPointer { buffer in
            thk_start_blob_write(header, header.count, portrait, portrait?.count ?? 0, buffer.baseAddress, buffer.count, &written)
        })
        try ThkError.check(blob.withUnsafeBufferPointer { thk_sender_start(core.pointer, $0.baseAddress, written, nil, nil, now) })
        return try poll(now: now)
    }

    /// When `poll` has datagrams to send next (nil once the start is acknowledged).
    public var nextDeadline: Double? {
        var deadline = 0.0
        return thk_sender_deadline(core.pointer, &deadline) == 1 ? deadline : nil
    }

    /// Datagrams due at `now`: the HELLO again, or the START chunks not yet acknowledged.
    public func poll(now: Double) throws -> [[UInt8]] {
        var datagrams: [[UInt8]] = []
        while true {
            var length = 0
            let due = try ThkError.check(out.withUnsafeMutableBufferPointer {
                thk_sender_poll(core.pointer, now, $0.baseAddress, $0.count, &length)
            })
            if due != 1 { return datagrams }
            datagrams.append(Array(out.prefix(length)))
        }
    }

    /// One inbound datagram (a CHALLENGE moves on to the session start, START_ACKs to streaming;
    /// anything else is counted in `stats.dropped`); then the datagrams due at `now`.
    public func handle(_ data: [UInt8], now: Double) throws -> [[UInt8]] {
        _ = data.withUnsafeBufferPointer { thk_sender_handle(core.pointer, $0.baseAddress, $0.count) }
        return try poll(now: now)
    }

    /// The FRAME datagram of one codec packet (with copies of the previous `redundancy` packets).
    public func frame(_ packet: [UInt8]) throws -> [UInt8] {
        guard state == .streaming else { throw SessionError.notConnected }
        var length = 0
        try ThkError.check(packet.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { thk_sender_frame(core.pointer, p.baseAddress, p.count, $0.baseAddress, $0.count, &length) }
        })
        return Array(out.prefix(length))
    }

    /// BYE, three times (it may be lost); the session is over.
    public func close() throws -> [[UInt8]] {
        guard state == .streaming else { return [] }
        return try (0..<3).map { _ in
            var length = 0
            try ThkError.check(out.withUnsafeMutableBufferPointer { thk_sender_bye(core.pointer, $0.baseAddress, $0.count, &length) })
            return Array(out.prefix(length))
        }
    }
}

/// `SenderSession` over a UDP socket to a receiver (UdpSender of sdk/transport/udp.py).
public final class UDPSender {
    public let session: SenderSession
    private let socket: UDPSocket
    private let receiver: SocketAddress

    public init(host: String, port: UInt16, secret: [UInt8], redundancy: Int = 2, retransmitS: Double = 0.1) throws {
        guard let receiver = SocketAddress(host: host, port: port), let any = SocketAddress(host: "0.0.0.0", port: 0) else {
            throw ThkError.argument
        }
        session = try SenderSession(secret: secret, redundancy: redundancy, retransmitS: retransmitS)
        socket = try UDPSocket(bindingTo: any)
        self.receiver = receiver
    }

    /// Handshake and deliver `header` (+ `portrait`) reliably; blocks until acknowledged or
    /// throws `SessionError.timeout`.
    public func startSession(header: [UInt8], portrait: [UInt8]? = nil, timeoutS: Double = 10) throws {
        let deadline = monotonicSeconds() + timeoutS
        try sendAll(session.start(header: header, portrait: portrait, now: monotonicSeconds()))
        while session.state != .streaming {
            let now = monotonicSeconds()
            if now >= deadline { throw SessionError.timeout("no receiver acknowledged the session start in \(timeoutS) s") }
            try sendAll(session.poll(now: now))
            let until = min(deadline, session.nextDeadline ?? deadline)
            if let (data, _) = try socket.receive(timeoutS: max(0, until - monotonicSeconds())) {
                try sendAll(session.handle(data, now: monotonicSeconds()))
            }
        }
    }

    /// One frame packet, unreliably (late acknowledgements that arrive meanwhile are read and dropped).
    public func send(_ packet: [UInt8]) throws {
        try socket.send(session.frame(packet), to: receiver)
        while let (data, _) = try socket.receive(timeoutS: 0) { _ = try session.handle(data, now: monotonicSeconds()) }
    }

    public func close() throws {
        try sendAll(session.close())
        socket.close()
    }

    private func sendAll(_ datagrams: [[UInt8]]) throws {
        for datagram in datagrams { try socket.send(datagram, to: receiver) }
    }
}
