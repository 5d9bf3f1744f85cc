/// `ReceiverSession` over a UDP socket (UdpReceiver of sdk/transport/udp.py): the work happens
/// inside `waitSession` and `receive`, on the caller's thread; no background thread.
public final class UDPReceiver {
    public let session: ReceiverSession<SocketAddress>
    private let socket: UDPSocket

    /// Listens on `host`:`port` (port 0: a free one, see `address`).
    public init(host: String = "127.0.0.1", port: UInt16 = 0, secret: [UInt8], jitter: JitterConfig = JitterConfig()) throws {
        guard let address = SocketAddress(host: host, port: port) else { throw ThkError.argument }
        session = try ReceiverSession(secret: secret, jitter: jitter)
        socket = try UDPSocket(bindingTo: address)
    }

    public var address: SocketAddress { socket.localAddress }
    public var stats: ReceiverStats { session.stats }
    public var peerClosed: Bool { session.peerClosed }

    /// Blocks until a session start is complete; it becomes the active session.
    public func waitSession(timeoutS: Double) throws -> SessionStart {
        let deadline = monotonicSeconds() + timeoutS
        while true {
            if let start = session.takeSessionStart() { return start }
            let remaining = deadline - monotonicSeconds()
            if remaining <= 0 { throw SessionError.timeout("no session started within \(timeoutS) s") }
            try handleNext(timeoutS: remaining)
        }
    }

    /// The next frame packet in order, or nil when none is due within `timeoutS`: a renderer calls
    /// it once per frame tick and renders from the last good code on nil.
    public func receive(timeoutS: Double) throws -> [UInt8]? {
        let deadline = monotonicSeconds() + timeoutS
        while true {
            if let packet = session.pop(now: monotonicSeconds()) { return packet }
            if try handleNext(timeoutS: 0) { continue }  // what already arrived first, without waiting
            let now = monotonicSeconds()
            if now >= deadline { return nil }
            try handleNext(timeoutS: max(0, min(deadline, session.gapDeadline ?? deadline) - now))
        }
    }

    /// One datagram if one arrives within `timeoutS`; false when none did.
    @discardableResult
    private func handleNext(timeoutS: Double) throws -> Bool {
        guard let (data, peer) = try socket.receive(timeoutS: timeoutS) else { return false }
        for reply in session.handle(data, from: peer, now: monotonicSeconds()) {
            try socket.send(reply.data, to: reply.to)
        }
        return true
    }

    public func close() { socket.close() }
}
