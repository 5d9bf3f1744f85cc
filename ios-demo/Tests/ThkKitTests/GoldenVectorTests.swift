import CThk
import XCTest
@testable import ThkKit

/// Every golden vector of tests/golden/ (written by the Python SDK): both directions of the codec,
/// the transport's keys and datagrams, the receiver's frame path, the motion maths.
final class GoldenVectorTests: XCTestCase {
    func testStructSizesMatchTheCore() {
        XCTAssertEqual(thk_struct_size(Int32(THK_SIZE_HEADER)), MemoryLayout<thk_header>.size)
        XCTAssertEqual(thk_struct_size(Int32(THK_SIZE_DECODER)), MemoryLayout<thk_decoder>.size)
        XCTAssertEqual(thk_struct_size(Int32(THK_SIZE_ENCODER)), MemoryLayout<thk_encoder>.size)
        XCTAssertEqual(thk_struct_size(Int32(THK_SIZE_FRAME_RECEIVER)), MemoryLayout<thk_frame_receiver>.size)
        XCTAssertEqual(thk_session_struct_size(Int32(THK_SIZE_RECEIVER)), MemoryLayout<thk_receiver>.size)
        XCTAssertEqual(thk_session_struct_size(Int32(THK_SIZE_SENDER)), MemoryLayout<thk_sender>.size)
    }

    func testLearnedStreams() throws {
        let streams = try XCTUnwrap(try loadJSON("codec_learned_v1.json")["streams"] as? [[String: Any]])
        XCTAssertEqual(streams.count, 5)
        var frames = 0
        for stream in streams {
            let headerBytes = bytes(hex: stream["header"] as! String)
            let header = try StreamHeader(bytes: headerBytes)
            XCTAssertEqual(try header.bytes(), headerBytes)
            XCTAssertEqual(header.kind, .learned)
            XCTAssertEqual(header.numKeypoints, Int(integer(stream["num_kp"])))
            let encoder = try CodeEncoder(header: header), decoder = try CodeDecoder(header: header)
            for record in stream["frames"] as! [[String: Any]] {
                if record["force_keyframe"] as! Bool { encoder.forceKeyframe() }
                let packet = try encoder.encodeLearned(
                    keypoints: numbers(record["keypoints"]).map { Float($0) },
                    jacobians: header.hasJacobians ? numbers(record["jacobians"]).map { Float($0) } : nil,
                    extra: header.extraDims > 0 ? numbers(record["extra"]).map { Float($0) } : nil,
                    timestampMs: integer(record["timestamp_ms"]))
                XCTAssertEqual(hexString(packet), record["packet"] as! String)
                let decoded = record["decoded"] as! [String: Any]
                let info = try decoder.decode(packet)
                XCTAssertEqual(info.sequence, integer(decoded["sequence"]))
                XCTAssertEqual(info.timestampMs, integer(decoded["timestamp_ms"]))
                XCTAssertEqual(info.keyframe, decoded["keyframe"] as! Bool)
                let code = try decoder.learnedCode()
                let values = code.keypoints + (code.jacobians ?? []) + code.extra
                XCTAssertEqual(values.map { Double($0) }, numbers(decoded["values"]))
                frames += 1
            }
            XCTAssertEqual(encoder.stats.clampedValues, integer(stream["clamped"]))
        }
        XCTAssertEqual(frames, 80)
    }

    func testSemanticStreams() throws {
        let streams = try XCTUnwrap(try loadJSON("codec_semantic_v2.json")["streams"] as? [[String: Any]])
        XCTAssertFalse(streams.isEmpty)
        for stream in streams {
            let header = try StreamHeader(bytes: bytes(hex: stream["header"] as! String))
            XCTAssertEqual(header.kind, .semantic)
            XCTAssertEqual(header.expressionDims, Int(integer(stream["expression_dims"])))
            let encoder = try CodeEncoder(header: header), decoder = try CodeDecoder(header: header)
            for record in stream["frames"] as! [[String: Any]] {
                if record["force_keyframe"] as! Bool { encoder.forceKeyframe() }
                let packet = try encoder.encodeSemantic(pose: numbers(record["pose"]), expression: numbers(record["expression"]),
                                                        timestampMs: integer(record["timestamp_ms"]))
                XCTAssertEqual(hexString(packet), record["packet"] as! String)
                let decoded = record["decoded"] as! [String: Any]
                let info = try decoder.decode(bytes(hex: record["packet"] as! String))
                XCTAssertEqual(info, FrameInfo(sequence: integer(decoded["sequence"]), timestampMs: integer(decoded["timestamp_ms"]),
                                               keyframe: decoded["keyframe"] as! Bool, keyframeId: info.keyframeId))
                let code = try decoder.semanticCode()
                XCTAssertEqual(code.pose, numbers(decoded["pose"]))
                XCTAssertEqual(code.expression, numbers(decoded["expression"]))
            }
        }
    }

    func testHybridStreams() throws {
        let streams = try XCTUnwrap(try loadJSON("codec_hybrid_v2.json")["streams"] as? [[String: Any]])
        XCTAssertEqual(streams.count, 3)
        for stream in streams {
            let header = try StreamHeader(bytes: bytes(hex: stream["header"] as! String))
            XCTAssertEqual(header.kind, .hybrid)
            XCTAssertEqual(header.numKeypoints, Int(integer(stream["num_kp"])))
            XCTAssertEqual(header.hasJacobians, stream["jacobians"] as! Bool)
            let e = header.expressionDims
            XCTAssertEqual(e, Int(integer(stream["expression_dims"])))
            let encoder = try CodeEncoder(header: header), decoder = try CodeDecoder(header: header)
            for record in stream["frames"] as! [[String: Any]] {
                if record["force_keyframe"] as! Bool { encoder.forceKeyframe() }
                let packet = try encoder.encodeHybrid(pose: numbers(record["pose"]), expression: Array(numbers(record["expression"]).prefix(e)),
                                                      keypoints: numbers(record["keypoints"]).map { Float($0) },
                                                      jacobians: header.hasJacobians ? numbers(record["jacobians"]).map { Float($0) } : nil,
                                                      timestampMs: integer(record["timestamp_ms"]))
                XCTAssertEqual(hexString(packet), record["packet"] as! String)
                let decoded = record["decoded"] as! [String: Any]
                let info = try decoder.decode(bytes(hex: record["packet"] as! String))
                XCTAssertEqual(info, FrameInfo(sequence: integer(decoded["sequence"]), timestampMs: integer(decoded["timestamp_ms"]),
                                               keyframe: decoded["keyframe"] as! Bool, keyframeId: info.keyframeId))
                let code = try decoder.hybridCode()
                XCTAssertEqual(code.pose, numbers(decoded["pose"]))
                XCTAssertEqual(code.expression, numbers(decoded["expression"]))
                XCTAssertEqual(code.keypoints, numbers(decoded["keypoints"]).map { Float($0) })
                XCTAssertEqual(code.jacobians, header.hasJacobians ? numbers(decoded["jacobians"]).map { Float($0) } : nil)
            }
        }
    }

    func testTransportKeysDatagramsAndFramePath() throws {
        let golden = try loadJSON("transport_v1.json")
        let secret = bytes(hex: golden["secret"] as! String)
        let senderSalt = bytes(hex: golden["sender_salt"] as! String), receiverSalt = bytes(hex: golden["receiver_salt"] as! String)
        let session = UInt32(integer(golden["session_id"]))
        let hello = try SessionKeys.helloKey(secret: secret, senderSalt: senderSalt)
        let (forward, backward) = try SessionKeys.sessionKeys(secret: secret, senderSalt: senderSalt, receiverSalt: receiverSalt)
        XCTAssertEqual(hexString(hello), golden["hello_key"] as! String)
        XCTAssertEqual(hexString(forward), golden["forward_key"] as! String)
        XCTAssertEqual(hexString(backward), golden["backward_key"] as! String)
        let keys: [PacketType: [UInt8]] = [.hello: hello, .challenge: backward, .frame: forward, .bye: forward]
        var frames: [[UInt8]] = [], plaintexts: [[UInt8]] = []
        for item in golden["datagrams"] as! [[String: Any]] {
            let type = PacketType(rawValue: UInt8(integer(item["type"])))!
            let plaintext = bytes(hex: item["plaintext"] as! String)
            let salt: [UInt8]? = type == .hello ? senderSalt : type == .challenge ? receiverSalt : nil
            let sealed = try Datagram.seal(key: keys[type]!, type: type, sessionId: session, number: UInt32(integer(item["number"])),
                                           salt: salt, plaintext: plaintext)
            XCTAssertEqual(hexString(sealed), item["datagram"] as! String)
            let parsed = try Datagram(sealed)
            XCTAssertEqual(parsed.type, type)
            XCTAssertEqual(parsed.salt, salt)
            XCTAssertEqual(try parsed.open(key: keys[type]!), plaintext)
            if type == .frame {
                frames.append(sealed)
                plaintexts.append(plaintext)
            }
        }
        // the receiver's path: in order, one lost (its copy delivers it), one replayed
        let receiver = try FrameReceiver(forwardKey: forward, sessionId: session)
        try receiver.handle(frames[0], now: 0)
        try receiver.handle(frames[2], now: 0)
        XCTAssertThrowsError(try receiver.handle(frames[2], now: 0)) { XCTAssertEqual($0 as? ThkError, .duplicate) }
        try receiver.handle(frames[3], now: 0)
        var delivered: [[UInt8]] = []
        while let packet = receiver.pop(now: 0) { delivered.append(packet) }
        XCTAssertEqual(delivered, [Array(plaintexts[0].dropFirst()), [1, 0, 0x8A, 0x4E], [2, 0, 0x40], [3, 0]])
        XCTAssertEqual(receiver.stats.recovered, 1)
        XCTAssertEqual(receiver.stats.duplicates, 1)
        XCTAssertEqual(receiver.stats.delivered, 4)
    }

    func testMotion() throws {
        let cases = try XCTUnwrap(try loadJSON("motion_v1.json")["cases"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 12)
        for item in cases { try checkMotionCase(item) }
    }
}

/// One motion case against the Python's outputs (docs/motion.md section 6: areas equal after
/// rounding to float32; value and Jacobian within relative 5e-7 or absolute 1e-6).
func checkMotionCase(_ item: [String: Any], file: StaticString = #filePath, line: UInt = #line) throws {
    let k = Int(integer(item["k"]))
    func floats(_ name: String) -> [Float] { numbers(item[name]).map { Float($0) } }
    let sourceArea = try Motion.hullArea(floats("source")), anchorArea = try Motion.hullArea(floats("anchor"))
    XCTAssertEqual(Float(sourceArea), Float(numbers(item["source_area"])[0]), file: file, line: line)
    XCTAssertEqual(Float(anchorArea), Float(numbers(item["anchor_area"])[0]), file: file, line: line)
    let scale = item["adapt_movement_scale"] as! Bool ? try Motion.movementScale(sourceArea: sourceArea, anchorArea: anchorArea) : 1
    var value = [Float](repeating: 0, count: 2 * k), jacobian = [Float](repeating: 0, count: 4 * k)
    try Motion.relative(k: k, driving: floats("driving"), drivingJacobians: floats("driving_jacobian"), anchor: floats("anchor"),
                        anchorJacobians: floats("anchor_jacobian"), source: floats("source"),
                        sourceJacobians: floats("source_jacobian"), scale: scale, useJacobian: item["use_jacobian"] as! Bool,
                        value: &value, jacobian: &jacobian)
    for (got, want) in zip(value + jacobian, floats("value") + floats("jacobian")) {
        XCTAssertLessThanOrEqual(abs(got - want), max(1e-6, 5e-7 * abs(want)), file: file, line: line)
    }
}
