import Foundation
import XCTest
@testable import ThkKit

/// Random cases made by the Python SDK (`python tests/test_swift.py --write-cases PATH`, which
/// tests/test_swift.py runs before `swift test`): random headers of the three kinds, random codes
/// through the encoder (the Python's bytes and clamp counts), impaired packets through the decoder
/// (the Python's outcome, frame and counters), random motion cases. THK_SWIFT_CASES names the file.
final class PropertyTests: XCTestCase {
    func testSwiftMatchesPythonOnRandomCases() throws {
        guard let path = ProcessInfo.processInfo.environment["THK_SWIFT_CASES"] else {
            throw XCTSkip("THK_SWIFT_CASES is not set: tests/test_swift.py writes the Python's random cases and sets it")
        }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var streams = 0, encodes = 0, decodes = 0, decodedOk = 0, motions = 0
        for line in text.split(separator: "\n") {
            let item = try parseJSON(Data(line.utf8))
            if let motion = item["motion"] as? [String: Any] {
                try checkMotionCase(motion)
                motions += 1
                continue
            }
            let header = try StreamHeader(bytes: bytes(hex: item["header"] as! String))
            let encoder = try CodeEncoder(header: header), decoder = try CodeDecoder(header: header)
            let k = header.numKeypoints, jac = header.hasJacobians ? 4 * k : 0
            for frame in item["frames"] as! [[String: Any]] {
                if frame["force"] as! Bool { encoder.forceKeyframe() }
                let values = numbers(frame["values"]), timestamp = integer(frame["timestamp"])
                let packet: [UInt8]
                if header.kind == .semantic {
                    packet = try encoder.encodeSemantic(pose: Array(values[..<6]), expression: Array(values[6...]), timestampMs: timestamp)
                } else if header.kind == .hybrid {
                    let learned = 6 + header.expressionDims
                    let floats = values[learned...].map { Float($0) }
                    packet = try encoder.encodeHybrid(pose: Array(values[..<6]), expression: Array(values[6..<learned]),
                                                      keypoints: Array(floats[..<(2 * k)]),
                                                      jacobians: jac > 0 ? Array(floats[(2 * k)..<(2 * k + jac)]) : nil,
                                                      timestampMs: timestamp)
                } else {
                    let floats = values.map { Float($0) }
                    packet = try encoder.encodeLearned(keypoints: Array(floats[..<(2 * k)]),
                                                       jacobians: jac > 0 ? Array(floats[(2 * k)..<(2 * k + jac)]) : nil,
                                                       extra: header.extraDims > 0 ? Array(floats[(2 * k + jac)...]) : nil,
                                                       timestampMs: timestamp)
                }
                XCTAssertEqual(hexString(packet), frame["packet"] as! String)
                encodes += 1
            }
            XCTAssertEqual(encoder.stats.clampedValues, integer(item["clamped"]))
            XCTAssertEqual(encoder.stats.bytes, integer(item["bytes"]))
            for expected in item["decodes"] as! [[String: Any]] {
                let packet = bytes(hex: expected["packet"] as! String)
                let status = Int32(numbers(expected["status"])[0])
                do {
                    let info = try decoder.decode(packet)
                    XCTAssertEqual(status, 0, "\(item["header"]!) \(expected["packet"]!)")
                    XCTAssertEqual(info.sequence, integer(expected["sequence"]))
                    XCTAssertEqual(info.timestampMs, integer(expected["timestamp"]))
                    XCTAssertEqual(info.keyframe, expected["keyframe"] as? Bool)
                    let got: [Double]
                    if header.kind == .semantic {
                        let code = try decoder.semanticCode()
                        got = code.pose + code.expression
                    } else if header.kind == .hybrid {
                        let code = try decoder.hybridCode()
                        got = code.pose + code.expression + (code.keypoints + (code.jacobians ?? [])).map { Double($0) }
                    } else {
                        let code = try decoder.learnedCode()
                        got = (code.keypoints + (code.jacobians ?? []) + code.extra).map { Double($0) }
                    }
                    XCTAssertEqual(got, numbers(expected["values"]))
                    decodedOk += 1
                } catch let error as ThkError {
                    XCTAssertEqual(error.rawValue, status, "\(item["header"]!) \(expected["packet"]!)")
                }
                decodes += 1
            }
            let stats = item["decoder_stats"] as! [String: Any]
            XCTAssertEqual(decoder.stats, DecoderStats(decoded: integer(stats["decoded"]), keyframes: integer(stats["keyframes"]),
                                                       missingReference: integer(stats["missing_reference"]),
                                                       stale: integer(stats["stale"]), malformed: integer(stats["malformed"])))
            streams += 1
        }
        // tests/test_swift.py reads this line
        print("property cases: \(streams) streams, \(encodes) encodes, \(decodes) decodes (\(decodedOk) ok), \(motions) motion")
        XCTAssertGreaterThanOrEqual(decodes, 10_000)
        XCTAssertGreaterThan(decodedOk, decodes / 3)
    }
}
