import CThk
import XCTest
@testable import ThkKit

/// Bad input of every kind the issue lists: defined errors and counters, never a crash.
final class BadInputTests: XCTestCase {
    let secret = [UInt8](0..<32)

    func learnedHeader(modelSha: String = String(repeating: "0123456789abcdef", count: 4)) throws -> StreamHeader {
        // the golden file's first stream: default preset, K = 10, D = 3
        let streams = try loadJSON("codec_learned_v1.json")["streams"] as! [[String: Any]]
        return try StreamHeader(bytes: bytes(hex: streams[0]["header"] as! String))
    }

    func testErrorNamesAreTheCores() {
        for error in ThkError.allCases { XCTAssertEqual(error.name, String(cString: thk_status_name(error.rawValue))) }
        let known = Set(ThkError.allCases.map(\.rawValue))
        for code in Int32(-100)...(-1) where !known.contains(code) {
            XCTAssertEqual(String(cString: thk_status_name(code)), "unknown", "code \(code) is missing from ThkError")
        }
        XCTAssertEqual(ThkError.missingReference.description, "missing_reference (-21)")
    }

    func testForeignHeaders() throws {
        var data = try learnedHeader().bytes()
        XCTAssertThrowsError(try StreamHeader(bytes: Array(data.prefix(10)))) { XCTAssertEqual($0 as? ThkError, .headerLength) }
        var magic = data
        magic[0] ^= 0xFF
        XCTAssertThrowsError(try StreamHeader(bytes: magic)) { XCTAssertEqual($0 as? ThkError, .headerMagic) }
        data[4] = 3  // a version this core does not know
        XCTAssertThrowsError(try StreamHeader(bytes: data)) { XCTAssertEqual($0 as? ThkError, .headerVersion) }
        var crc = try learnedHeader().bytes()
        crc[crc.count - 1] ^= 1
        XCTAssertThrowsError(try StreamHeader(bytes: crc)) { XCTAssertEqual($0 as? ThkError, .headerCRC) }
        let learned = try learnedHeader()
        XCTAssertThrowsError(try learned.checkPrior(shaPrefix: [UInt8](repeating: 0, count: 8), components: 10)) {
            XCTAssertEqual($0 as? ThkError, .wrongKind)
        }
        let semantic = try StreamHeader(bytes: bytes(hex: (try loadJSON("codec_semantic_v2.json")["streams"] as! [[String: Any]])[0]["header"] as! String))
        XCTAssertThrowsError(try semantic.checkPrior(shaPrefix: [UInt8](repeating: 0, count: 8), components: 50)) {
            XCTAssertEqual($0 as? ThkError, .priorMismatch)
        }
        XCTAssertNoThrow(try semantic.checkPrior(shaPrefix: semantic.priorShaPrefix, components: 50))
        XCTAssertThrowsError(try CodeEncoder(header: learned).encodeSemantic(pose: [0, 0, 0, 0, 0, 0], expression: [], timestampMs: 0)) {
            XCTAssertEqual($0 as? ThkError, .wrongKind)
        }
        XCTAssertThrowsError(try CodeEncoder(header: learned).encodeLearned(keypoints: [1], jacobians: nil, extra: nil, timestampMs: 0)) {
            XCTAssertEqual($0 as? ThkError, .argument)
        }
        // a hybrid stream: its own calls only; forged and cut headers refused
        let hybridBytes = bytes(hex: (try loadJSON("codec_hybrid_v2.json")["streams"] as! [[String: Any]])[0]["header"] as! String)
        let hybrid = try StreamHeader(bytes: hybridBytes)
        XCTAssertEqual(hybrid.kind, .hybrid)
        XCTAssertThrowsError(try hybrid.checkPrior(shaPrefix: [UInt8](repeating: 0, count: 8), components: 50)) {
            XCTAssertEqual($0 as? ThkError, .priorMismatch)
        }
        XCTAssertThrowsError(try CodeEncoder(header: hybrid).encodeSemantic(pose: [0, 0, 0, 0, 0, 0],
                                                                            expression: [Double](repeating: 0, count: hybrid.expressionDims),
                                                                            timestampMs: 0)) {
            XCTAssertEqual($0 as? ThkError, .wrongKind)
        }
        XCTAssertThrowsError(try CodeEncoder(header: semantic).encodeHybrid(pose: [0, 0, 0, 0, 0, 0], expression: [], keypoints: [],
                                                                            jacobians: nil, timestampMs: 0)) {
            XCTAssertEqual($0 as? ThkError, .wrongKind)
        }
        let k = hybrid.numKeypoints
        XCTAssertThrowsError(try CodeEncoder(header: hybrid).encodeHybrid(
            pose: [0, 0, 0, 0, 0, 0], expression: [Double](repeating: 0, count: hybrid.expressionDims),
            keypoints: [Float](repeating: .nan, count: 2 * k), jacobians: [Float](repeating: 0, count: 4 * k), timestampMs: 0)) {
            XCTAssertEqual($0 as? ThkError, .notFinite)
        }
        XCTAssertThrowsError(try StreamHeader(bytes: Array(hybridBytes.dropLast()))) { XCTAssertEqual($0 as? ThkError, .headerLength) }
        var kind = hybridBytes
        kind[5] = 3
        XCTAssertThrowsError(try StreamHeader(bytes: kind)) { XCTAssertEqual($0 as? ThkError, .headerKind) }
        let hybridDecoder = try CodeDecoder(header: hybrid)
        XCTAssertThrowsError(try hybridDecoder.decode([0x80, 0])) { XCTAssertEqual($0 as? ThkError, .malformed) }
        XCTAssertThrowsError(try hybridDecoder.hybridCode()) { XCTAssertEqual($0 as? ThkError, .argument) }
        XCTAssertEqual(hybridDecoder.stats.malformed, 1)
        let nan = [Float](repeating: .nan, count: 20)
        XCTAssertThrowsError(try CodeEncoder(header: learned).encodeLearned(
            keypoints: nan, jacobians: [Float](repeating: 0, count: 40), extra: [0, 0, 0], timestampMs: 0)) {
            XCTAssertEqual($0 as? ThkError, .notFinite)
        }
    }

    func testWrongKeyLengths() {
        for length in [0, 16, 31, 33] {
            let key = [UInt8](repeating: 7, count: length)
            XCTAssertThrowsError(try ReceiverSession<Int>(secret: key)) { XCTAssertEqual($0 as? ThkError, .keyLength) }
            XCTAssertThrowsError(try SenderSession(secret: key)) { XCTAssertEqual($0 as? ThkError, .keyLength) }
            XCTAssertThrowsError(try FrameReceiver(forwardKey: key, sessionId: 1)) { XCTAssertEqual($0 as? ThkError, .keyLength) }
            XCTAssertThrowsError(try SessionKeys.sessionKeys(secret: key, senderSalt: [UInt8](repeating: 0, count: 16),
                                                             receiverSalt: [UInt8](repeating: 0, count: 16))) {
                XCTAssertEqual($0 as? ThkError, .keyLength)
            }
            XCTAssertThrowsError(try Datagram.seal(key: key, type: .frame, sessionId: 1, number: 0, plaintext: [])) {
                XCTAssertEqual($0 as? ThkError, .keyLength)
            }
        }
        XCTAssertThrowsError(try FrameReceiver(forwardKey: secret, sessionId: 1, jitter: JitterConfig(gapWaitS: -1))) {
            XCTAssertEqual($0 as? ThkError, .argument)
        }
        XCTAssertThrowsError(try FrameReceiver(forwardKey: secret, sessionId: 1, jitter: JitterConfig(capacity: 65))) {
            XCTAssertEqual($0 as? ThkError, .argument)
        }
    }

    /// FRAME datagrams of one session, sealed as the Python sender seals them.
    func frames(_ packets: [[UInt8]], key: [UInt8], session: UInt32 = 9) throws -> [[UInt8]] {
        try packets.enumerated().map { number, packet in
            try Datagram.seal(key: key, type: .frame, sessionId: session, number: UInt32(number),
                              plaintext: FramePayload.pack(packet: packet, earlier: []))
        }
    }

    func testTruncatedForgedReplayedReorderedOversized() throws {
        let key = [UInt8](repeating: 3, count: 32)
        let receiver = try FrameReceiver(forwardKey: key, sessionId: 9, jitter: JitterConfig(gapWaitS: 0.06, capacity: 16))
        let sealed = try frames((0..<6).map { [UInt8($0), 1, 2] }, key: key)
        func expect(_ data: [UInt8], _ error: ThkError, line: UInt = #line) {
            XCTAssertThrowsError(try receiver.handle(data, now: 0), line: line) { XCTAssertEqual($0 as? ThkError, error, line: line) }
        }
        expect(Array(sealed[0].prefix(5)), .truncated)            // shorter than the prefix
        expect(Array(sealed[0].prefix(20)), .truncated)           // no room for the tag
        var forged = sealed[0]
        forged[forged.count - 1] ^= 0x40
        expect(forged, .forged)
        expect(try Datagram.seal(key: [UInt8](repeating: 4, count: 32), type: .frame, sessionId: 9, number: 0,
                                 plaintext: [0, 1]), .forged)     // another key
        expect([9] + Array(sealed[0].dropFirst()), .garbage)      // an unknown type
        expect(try Datagram.seal(key: key, type: .frame, sessionId: 8, number: 0, plaintext: [0, 1]), .otherSession)
        expect(try Datagram.seal(key: key, type: .frame, sessionId: 9, number: 7, plaintext: [5]), .frameMalformed)  // R = 5
        try receiver.handle(sealed[0], now: 0)
        expect(sealed[0], .duplicate)                             // replayed
        try receiver.handle(sealed[2], now: 0)                    // reordered: 2 before 1
        try receiver.handle(sealed[1], now: 0.01)
        XCTAssertEqual((0..<3).compactMap { _ in receiver.pop(now: 0.01) }, [[0, 1, 2], [1, 1, 2], [2, 1, 2]])
        let big = try Datagram.seal(key: key, type: .frame, sessionId: 9, number: 3,
                                    plaintext: FramePayload.pack(packet: [UInt8](repeating: 1, count: 3000), earlier: []))
        expect(big, .oversized)                                   // over a jitter slot: received, refused there, counted
        let huge = try Datagram.seal(key: key, type: .frame, sessionId: 9, number: 4,
                                     plaintext: FramePayload.pack(packet: [UInt8](repeating: 1, count: 20000), earlier: []))
        expect(huge, .oversized)                                  // larger than the receiver's scratch
        for number in 300..<302 {                                 // far ahead: number 0..44 fall out of the window
            try receiver.handle(try Datagram.seal(key: key, type: .frame, sessionId: 9, number: UInt32(number),
                                                  plaintext: FramePayload.pack(packet: [7], earlier: [])), now: 0.03)
        }
        expect(sealed[5], .tooOld)
        let stats = receiver.stats
        XCTAssertEqual(stats.truncated, 2)
        XCTAssertEqual(stats.forged, 2)
        XCTAssertEqual(stats.garbage, 1)
        XCTAssertEqual(stats.otherSession, 1)
        XCTAssertEqual(stats.malformed, 2)   // R = 5, and the datagram too large to hold
        XCTAssertEqual(stats.duplicates, 1)
        XCTAssertEqual(stats.reordered, 1)
        XCTAssertEqual(stats.oversized, 1)
        XCTAssertEqual(stats.tooOld, 1)
        XCTAssertEqual(stats.received, 6)
    }

    func testRandomBytesEverywhereAreCounted() throws {
        var random = SplitMix64(seed: 19)
        let decoder = try CodeDecoder(header: try learnedHeader())
        let session = try ReceiverSession<Int>(secret: secret)
        for index in 0..<3000 {
            var data = (0..<random.below(120)).map { _ in UInt8(random.below(256)) }
            if index % 2 == 0 && data.count > 9 { data.replaceSubrange(0..<1, with: [UInt8(1 + random.below(6))]) }
            XCTAssertTrue(session.handle(data, from: 0, now: 0).isEmpty)
            if let error = Result(catching: { try decoder.decode(data) }).failure {
                XCTAssertTrue([.malformed, .missingReference, .stale].contains(error as? ThkError))
            }
            if let error = Result(catching: { try StreamHeader(bytes: data) }).failure {
                XCTAssertTrue((-15...(-10)).contains((error as! ThkError).rawValue))
            }
        }
        let d = decoder.stats
        XCTAssertEqual(d.decoded + d.malformed + d.missingReference + d.stale, 3000)
        let s = session.stats
        XCTAssertEqual(s.truncated + s.garbage + s.forged + s.otherSession + s.malformed, 3000)
        XCTAssertEqual(session.state, .listening)
    }
}

extension Result {
    var failure: Failure? { if case .failure(let error) = self { return error }; return nil }
}

/// A small seeded generator, so every run makes the same cases.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
