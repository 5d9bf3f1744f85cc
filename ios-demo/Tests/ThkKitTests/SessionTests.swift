import Foundation
import XCTest
@testable import ThkKit

/// The state machines without sockets (sender <-> receiver through an impaired in-memory link),
/// then over real UDP on loopback inside this process; the pacer; the anchored motion.
final class SessionTests: XCTestCase {
    let secret = [UInt8](100..<132)

    func header() throws -> StreamHeader {
        let streams = try loadJSON("codec_learned_v1.json")["streams"] as! [[String: Any]]
        return try StreamHeader(bytes: bytes(hex: streams[0]["header"] as! String))
    }

    /// Runs a session through a link that loses, duplicates and reorders datagrams both ways.
    func testHandshakeStartAndFramesThroughAnImpairedLink() throws {
        var random = SplitMix64(seed: 5)
        let sender = try SenderSession(secret: secret, redundancy: 2, retransmitS: 0.05)
        let receiver = try ReceiverSession<String>(secret: secret, jitter: JitterConfig(gapWaitS: 0.06, capacity: 16))
        let portrait = (0..<5000).map { UInt8($0 % 251) }  // five START chunks
        let headerBytes = try header().bytes()
        var now = 0.0
        var toReceiver: [(Double, [UInt8])] = [], toSender: [(Double, [UInt8])] = []
        func impaired(_ datagrams: [[UInt8]], into queue: inout [(Double, [UInt8])]) {
            for datagram in datagrams {
                let roll = random.unit()
                if roll < 0.1 { continue }                                         // lost
                let delay = 0.001 + 0.02 * random.unit()                           // reordered by the delays
                queue.append((now + delay, datagram))
                if roll > 0.95 { queue.append((now + delay + 0.003, datagram)) }   // duplicated
            }
        }
        func deliver() {
            toReceiver.sort { $0.0 < $1.0 }
            while let first = toReceiver.first, first.0 <= now {
                toReceiver.removeFirst()
                impaired(receiver.handle(first.1, from: "sender", now: now).map(\.data), into: &toSender)
            }
            toSender.sort { $0.0 < $1.0 }
            while let first = toSender.first, first.0 <= now {
                toSender.removeFirst()
                impaired((try? sender.handle(first.1, now: now)) ?? [], into: &toReceiver)
            }
        }
        impaired(try sender.start(header: headerBytes, portrait: portrait, now: now), into: &toReceiver)
        while sender.state != .streaming && now < 10 {
            now += 0.001
            deliver()
            impaired(try sender.poll(now: now), into: &toReceiver)
        }
        XCTAssertEqual(sender.state, .streaming)
        let start = try XCTUnwrap(receiver.takeSessionStart())
        XCTAssertEqual(start.header, headerBytes)
        XCTAssertEqual(start.portrait, portrait)
        XCTAssertEqual(receiver.state, .active(sessionId: sender.sessionId))
        var sent: [[UInt8]] = [], got: [[UInt8]] = []
        for index in 0..<400 {
            let packet = [UInt8(index & 0xFF), UInt8(index >> 8)] + [UInt8](repeating: 9, count: index % 7)
            sent.append(packet)
            impaired([try sender.frame(packet)], into: &toReceiver)
            for _ in 0..<40 {  // 40 ms per frame
                now += 0.001
                deliver()
                while let packet = receiver.pop(now: now) { got.append(packet) }
            }
        }
        impaired(try sender.close(), into: &toReceiver)
        for _ in 0..<200 {
            now += 0.001
            deliver()
            while let packet = receiver.pop(now: now) { got.append(packet) }
        }
        let stats = receiver.stats
        XCTAssertEqual(receiver.state, .closed(sessionId: sender.sessionId))
        XCTAssertEqual(stats.sessions, 1)
        XCTAssertGreaterThan(stats.recovered, 0)                       // redundancy covered lost datagrams
        XCTAssertEqual(stats.delivered + stats.lost, UInt64(sent.count)) // every frame delivered or counted lost
        XCTAssertEqual(UInt64(got.count), stats.delivered)
        var cursor = sent.makeIterator()                                // in order, none altered
        for packet in got { while let next = cursor.next(), next != packet {} }
        XCTAssertLessThan(stats.lost, 5)
        XCTAssertEqual(stats.forged + stats.truncated + stats.garbage + stats.malformed, 0)
    }

    func testASecondSenderWaitsAndOldFramesAreOtherSession() throws {
        let receiver = try ReceiverSession<Int>(secret: secret)
        func connect(_ sender: SenderSession, peer: Int) throws {
            var pending = try sender.start(header: try header().bytes(), portrait: nil, now: 0)
            while !pending.isEmpty {
                let replies = pending.flatMap { receiver.handle($0, from: peer, now: 0).map(\.data) }
                pending = try replies.flatMap { try sender.handle($0, now: 0) }
            }
            XCTAssertEqual(sender.state, .streaming)
        }
        let first = try SenderSession(secret: secret), second = try SenderSession(secret: secret)
        try connect(first, peer: 1)
        XCTAssertNotNil(receiver.takeSessionStart())
        try connect(second, peer: 2)
        XCTAssertTrue(receiver.sessionWaiting)
        _ = receiver.handle(try second.frame([1, 2]), from: 2, now: 0)   // not yet active
        _ = receiver.handle(try first.frame([3, 4]), from: 1, now: 0)
        XCTAssertEqual(receiver.pop(now: 0), [3, 4])
        XCTAssertEqual(receiver.takeSessionStart()?.sessionId, second.sessionId)
        _ = receiver.handle(try first.frame([5]), from: 1, now: 0)      // the old session's
        _ = receiver.handle(try second.frame([6]), from: 2, now: 0)
        XCTAssertEqual(receiver.pop(now: 0), [1, 2])  // the frame sent before activation, from the copy in the next
        XCTAssertEqual(receiver.pop(now: 0), [6])
        XCTAssertEqual(receiver.stats.otherSession, 2)
        XCTAssertEqual(receiver.stats.sessions, 2)
        XCTAssertEqual(receiver.stats.handshakes, 2)
        XCTAssertEqual(receiver.stats.delivered, 3)
        XCTAssertEqual(receiver.stats.recovered, 1)
        // a HELLO under another secret is forged; a CHALLENGE sent to a receiver is garbage
        let stranger = try SenderSession(secret: [UInt8](repeating: 1, count: 32))
        let hello = try stranger.start(header: [1], portrait: nil, now: 0)
        XCTAssertTrue(receiver.handle(hello[0], from: 3, now: 0).isEmpty)
        XCTAssertEqual(receiver.stats.forged, 1)
        let challenge = try Datagram.seal(key: secret, type: .challenge, sessionId: 1, number: 0,
                                          salt: [UInt8](repeating: 0, count: 16), plaintext: [])
        XCTAssertTrue(receiver.handle(challenge, from: 3, now: 0).isEmpty)
        XCTAssertEqual(receiver.stats.garbage, 1)
    }

    func testPacerRendersTheNewestAndCountsRepeatsAndSkips() {
        var pacer = FramePacer(framesPerSecond: 25, start: 10)
        pacer.decoded()
        pacer.decoded()
        XCTAssertTrue(pacer.tick(now: 10))            // two codes in one tick: the newer is rendered
        XCTAssertFalse(pacer.tick(now: 10.04))        // nothing came: the last again
        XCTAssertEqual(pacer.nextTick, 10.08, accuracy: 1e-9)
        pacer.decoded()
        XCTAssertTrue(pacer.tick(now: 10.2))          // late by three ticks: they are skipped
        XCTAssertEqual(pacer.nextTick, 10.24, accuracy: 1e-9)
        XCTAssertEqual(pacer.counts, FramePacer.Counts(ticks: 3, fresh: 2, repeated: 1, superseded: 1, skipped: 3))
    }

    func testAnchoredMotionStartsAtTheSourceAndReanchors() throws {
        let source: [Float] = [-0.5, -0.4, 0.5, -0.3, 0.1, 0.6]
        let sourceJacobians: [Float] = [1, 0, 0, 1, 0.9, 0.1, 0, 1.1, 1, 0.2, -0.1, 1]
        let motion = try AnchoredMotion(sourceKeypoints: source, sourceJacobians: sourceJacobians)
        let anchor = LearnedCode(keypoints: [-0.25, -0.2, 0.25, -0.15, 0.05, 0.3], jacobians: nil, extra: [])
        let first = try motion.drive(anchor)
        XCTAssertEqual(first.keypoints, source)       // zero motion at the anchor
        XCTAssertEqual(first.jacobians, sourceJacobians)
        let moved = LearnedCode(keypoints: anchor.keypoints.map { $0 + 0.1 }, jacobians: nil, extra: [])
        let second = try motion.drive(moved)
        for (value, base) in zip(second.keypoints, source) {
            XCTAssertEqual(value - base, 0.2, accuracy: 1e-6)  // the source's hull is 4x the anchor's: scale 2
        }
        motion.reanchor()
        XCTAssertEqual(try motion.drive(moved).keypoints, source)
        XCTAssertEqual(motion.reanchors, 1)
        motion.reanchor()
        let singular = LearnedCode(keypoints: anchor.keypoints, jacobians: [Float](repeating: 0, count: 12), extra: [])
        XCTAssertThrowsError(try motion.drive(singular)) { XCTAssertEqual($0 as? ThkError, .singular) }
        XCTAssertThrowsError(try AnchoredMotion(sourceKeypoints: [0, 0, 1, 1], sourceJacobians: [Float](repeating: 1, count: 8))) {
            XCTAssertEqual($0 as? ThkError, .degenerateHull)
        }
        let absolute = try AnchoredMotion(sourceKeypoints: source, sourceJacobians: sourceJacobians,
                                          config: MotionConfig(mode: .absolute))
        XCTAssertEqual(try absolute.drive(moved).keypoints, moved.keypoints)
    }

    /// A Swift sender thread and the live receiver over real UDP on loopback.
    func testLiveReceiverOverUDP() throws {
        let header = try self.header()
        let receiver = try UDPReceiver(secret: secret)
        let port = receiver.address.port
        let k = header.numKeypoints
        let source = (0..<2 * k).map { Float(($0 * 37) % 19) / 19 - 0.5 }
        let live = LiveReceiver(receiver: receiver, expectedModelShaPrefix: header.modelShaPrefix, sourceKeypoints: source,
                                sourceJacobians: AnchoredMotion.identity(k), idleTimeoutS: 2)
        XCTAssertThrowsError(try live.nextTick()) { XCTAssertEqual($0 as? SessionError, .notConnected) }
        let frames = 30
        let done = expectation(description: "sender finished")
        let secret = self.secret
        Thread.detachNewThread {
            defer { done.fulfill() }
            do {
                let sender = try UDPSender(host: "127.0.0.1", port: port, secret: secret)
                try sender.startSession(header: try header.bytes(), timeoutS: 10)
                let encoder = try CodeEncoder(header: header)
                for index in 0..<frames {
                    let keypoints = source.map { $0 * 0.5 + Float(index) * 0.002 }
                    let jacobians = (0..<4 * k).map { $0 % 4 == 0 || $0 % 4 == 3 ? Float(1) : Float(0.01) }
                    try sender.send(try encoder.encodeLearned(keypoints: keypoints, jacobians: jacobians, extra: [0, 0, 0],
                                                              timestampMs: UInt64(40 * index)))
                    Thread.sleep(forTimeInterval: 0.01)
                }
                try sender.close()
            } catch {
                XCTFail("sender: \(error)")
            }
        }
        try live.connect(timeoutS: 10)
        var fresh = 0, ticks = 0
        while live.state == .streaming && ticks < 400 {
            if let tick = try live.nextTick() {
                fresh += tick.fresh ? 1 : 0
                if tick.frame.sequence >= 10 && live.stats.reanchors == 0 { live.reanchor() }
            }
            ticks += 1
        }
        wait(for: [done], timeout: 20)
        XCTAssertEqual(live.state, .ended("sender closed"))
        let stats = live.stats
        XCTAssertEqual(stats.decoder?.decoded, UInt64(frames))
        XCTAssertEqual(stats.transport.delivered, UInt64(frames))
        XCTAssertEqual(stats.pacing.fresh + stats.pacing.repeated, stats.pacing.ticks)
        XCTAssertEqual(stats.pacing.fresh + stats.pacing.superseded, UInt64(frames))  // every code rendered or counted
        XCTAssertEqual(UInt64(fresh), stats.pacing.fresh)
        XCTAssertEqual(stats.reanchors, 1)
        receiver.close()
    }

    func testLiveReceiverRefusesAnotherModel() throws {
        let header = try self.header()
        let receiver = try UDPReceiver(secret: secret)
        let port = receiver.address.port
        let live = LiveReceiver(receiver: receiver, expectedModelShaPrefix: [UInt8](repeating: 0xEE, count: 8),
                                sourceKeypoints: [Float](repeating: 0, count: 20), sourceJacobians: [Float](repeating: 0, count: 40))
        let secret = self.secret
        Thread.detachNewThread {
            let sender = try? UDPSender(host: "127.0.0.1", port: port, secret: secret)
            try? sender?.startSession(header: try header.bytes(), timeoutS: 5)
        }
        XCTAssertThrowsError(try live.connect(timeoutS: 10)) {
            XCTAssertEqual($0 as? SessionError, .otherModel(expected: "eeeeeeeeeeeeeeee", got: hexString(header.modelShaPrefix)))
        }
        XCTAssertThrowsError(try UDPReceiver(secret: secret).waitSession(timeoutS: 0.05)) {
            XCTAssertEqual($0 as? SessionError, .timeout("no session started within 0.05 s"))
        }
    }
}
