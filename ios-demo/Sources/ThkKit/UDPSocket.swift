#if canImport(Glibc)
import Glibc
private let datagramType = Int32(SOCK_DGRAM.rawValue)
private func systemClose(_ descriptor: Int32) { _ = Glibc.close(descriptor) }
#elseif canImport(Darwin)
import Darwin
private let datagramType = SOCK_DGRAM
private func systemClose(_ descriptor: Int32) { _ = Darwin.close(descriptor) }
#endif

/// Why a socket call failed (errno and the call), or a monotonic-clock failure.
public struct SocketError: Error, CustomStringConvertible {
    public let call: String
    public let code: Int32
    public var description: String { "\(call): \(String(cString: strerror(code))) (errno \(code))" }
}

/// An IPv4 address and port.
public struct SocketAddress: Equatable, CustomStringConvertible {
    var raw: sockaddr_in

    /// A dotted-quad IPv4 address ("127.0.0.1") and a port; nil for anything else.
    public init?(host: String, port: UInt16) {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { return nil }
        raw = address
    }

    init(raw: sockaddr_in) { self.raw = raw }

    public var port: UInt16 { UInt16(bigEndian: raw.sin_port) }
    public var host: String {
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        var address = raw.sin_addr
        _ = inet_ntop(AF_INET, &address, &text, socklen_t(text.count))
        return String(cString: text)
    }
    public var description: String { "\(host):\(port)" }

    public static func == (a: SocketAddress, b: SocketAddress) -> Bool {
        a.raw.sin_port == b.raw.sin_port && a.raw.sin_addr.s_addr == b.raw.sin_addr.s_addr
    }
}

/// A UDP socket (IPv4) with a receive timeout: what the receiver listens on and the sender sends from.
public final class UDPSocket {
    private var descriptor: Int32
    private var buffer = [UInt8](repeating: 0, count: 65536)

    /// Bound to `address` (port 0: a free one, see `localAddress`).
    public init(bindingTo address: SocketAddress) throws {
        descriptor = socket(AF_INET, datagramType, 0)
        guard descriptor >= 0 else { throw SocketError(call: "socket", code: errno) }
        var raw = address.raw
        let bound = withUnsafePointer(to: &raw) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if bound != 0 {
            let code = errno
            systemClose(descriptor)
            throw SocketError(call: "bind \(address)", code: code)
        }
    }

    deinit { close() }

    public var localAddress: SocketAddress {
        var raw = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &raw) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return SocketAddress(raw: raw)
    }

    public func send(_ data: [UInt8], to address: SocketAddress) throws {
        var raw = address.raw
        let sent = data.withUnsafeBytes { bytes in
            withUnsafePointer(to: &raw) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(descriptor, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        if sent < 0 { throw SocketError(call: "sendto \(address)", code: errno) }
    }

    /// The next datagram and its sender, or nil when none arrives within `timeoutS` (0: poll once).
    public func receive(timeoutS: Double) throws -> (data: [UInt8], from: SocketAddress)? {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, Int32((max(0, min(timeoutS, 3600)) * 1000).rounded(.up)))
        if ready < 0 {
            if errno == EINTR { return nil }
            throw SocketError(call: "poll", code: errno)
        }
        if ready == 0 { return nil }
        var raw = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let count = buffer.withUnsafeMutableBytes { bytes in
            withUnsafeMutablePointer(to: &raw) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(descriptor, bytes.baseAddress, bytes.count, 0, $0, &length)
                }
            }
        }
        if count < 0 { throw SocketError(call: "recvfrom", code: errno) }
        return (Array(buffer.prefix(count)), SocketAddress(raw: raw))
    }

    public func close() {
        if descriptor >= 0 {
            systemClose(descriptor)
            descriptor = -1
        }
    }
}

/// Seconds on a monotonic clock (the jitter buffer's and the pacer's time).
public func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
}
