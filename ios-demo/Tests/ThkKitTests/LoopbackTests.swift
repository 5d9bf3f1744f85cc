import Foundation
import XCTest
@testable import ThkKit

/// Real UDP on loopback against the Python SDK's transport (run by tests/test_swift.py, which sets
/// THK_LOOPBACK_DIR): the Python sender streams a clip, encrypted, to this receiver; every decoded
/// code must equal the Python receiver's (`expected.jsonl`). Then this end sends the packets it
/// received to a Python receiver (`python_port`), which tests/test_swift.py checks.
final class LoopbackTests: XCTestCase {
    func testPythonSenderToSwiftReceiverAndBack() throws {
        guard let folder = ProcessInfo.processInfo.environment["THK_LOOPBACK_DIR"].map({ URL(fileURLWithPath: $0) }) else {
            throw XCTSkip("THK_LOOPBACK_DIR is not set: tests/test_swift.py starts the Python sender and sets it")
        }
        func read(_ name: String) throws -> String {
            try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let secret = bytes(hex: try read("secret"))
        let expected = try read("expected.jsonl").split(separator: "\n").map {
            try parseJSON(Data($0.utf8))
        }
        let receiver = try UDPReceiver(host: "127.0.0.1", port: 0, secret: secret)
        try "\(receiver.address.port)\n".write(to: folder.appendingPathComponent("swift_port"), atomically: true, encoding: .utf8)
        let start = try receiver.waitSession(timeoutS: 120)
        let header = try StreamHeader(bytes: start.header)
        let decoder = try CodeDecoder(header: header)
        var packets: [[UInt8]] = [], decoded: [String] = []
        var quietSince = monotonicSeconds()
        while monotonicSeconds() - quietSince < 5 {
            guard let packet = try receiver.receive(timeoutS: 0.1) else {
                if receiver.peerClosed && receiver.session.gapDeadline == nil { break }
                continue
            }
            quietSince = monotonicSeconds()
            packets.append(packet)
            let info = try decoder.decode(packet)
            let code = try decoder.learnedCode()
            let values = (code.keypoints + (code.jacobians ?? []) + code.extra).map { Double($0) }
            XCTAssertLessThan(Int(info.sequence), expected.count)
            if Int(info.sequence) < expected.count {
                let want = expected[Int(info.sequence)]
                XCTAssertEqual(info.timestampMs, integer(want["timestamp_ms"]))
                XCTAssertEqual(info.keyframe, want["keyframe"] as? Bool)
                XCTAssertEqual(values, numbers(want["values"]), "frame \(info.sequence)")
            }
            decoded.append("{\"sequence\": \(info.sequence), \"timestamp_ms\": \(info.timestampMs), \"keyframe\": \(info.keyframe), "
                           + "\"values\": [\(values.map { "\($0)" }.joined(separator: ", "))]}")
        }
        let stats = receiver.stats
        try (decoded.joined(separator: "\n") + "\n").write(to: folder.appendingPathComponent("swift_decoded.jsonl"),
                                                           atomically: true, encoding: .utf8)
        try ("{\"received\": \(stats.received), \"delivered\": \(stats.delivered), \"lost\": \(stats.lost), "
             + "\"forged\": \(stats.forged), \"sessions\": \(stats.sessions)}\n")
            .write(to: folder.appendingPathComponent("swift_stats.json"), atomically: true, encoding: .utf8)
        XCTAssertEqual(decoded.count, expected.count, "every frame of the clip decoded")
        XCTAssertTrue(receiver.peerClosed)
        XCTAssertEqual(decoder.stats.decoded, UInt64(expected.count))
        receiver.close()

        // back: this end's sender to the Python receiver, the same packets
        var port = 0
        let deadline = monotonicSeconds() + 60
        while port == 0 && monotonicSeconds() < deadline {
            port = Int((try? read("python_port")) ?? "") ?? 0
            if port == 0 { Thread.sleep(forTimeInterval: 0.05) }
        }
        let sender = try UDPSender(host: "127.0.0.1", port: UInt16(try XCTUnwrap(port == 0 ? nil : port)), secret: secret)
        try sender.startSession(header: start.header, timeoutS: 30)
        for packet in packets {
            try sender.send(packet)
            Thread.sleep(forTimeInterval: 0.002)
        }
        try sender.close()
        XCTAssertEqual(sender.session.stats.framesSent, UInt64(packets.count))
    }
}
