import Foundation
import XCTest
@testable import ThkKit

/// What the app reads of `python -m export --bundle ios` (export/bundle.py), and the face crop's framing.
final class AppBundleTests: XCTestCase {
    func sample(format: String = "talking-head-app-bundle", version: Int = 1) throws -> Data {
        let streams = try loadJSON("codec_learned_v1.json")["streams"] as! [[String: Any]]
        let header = streams[0]["header"] as! String
        return Data("""
        {"format": "\(format)", "version": \(version), "platform": "ios", "model_id": "dagan++-mobile",
         "model_sha256": "\(String(repeating: "0123456789abcdef", count: 4))", "resolution": 256, "output_size": 256,
         "graph_format": "coreml", "precision": "fp16", "sender": ["keypoint_encoder"],
         "receiver": ["source_encoder", "generator"],
         "graphs": {"generator": {"file": "generator.mlpackage", "sha256": "ab", "bytes": 1, "metadata": {}}},
         "face_prior": null, "streams": [{"kind": "keypoints", "fields": {}, "header_hex": "\(header)"}]}
        """.utf8)
    }

    func testReadsTheBundle() throws {
        let bundle = try AppBundle.decode(try sample())
        XCTAssertEqual(bundle.modelShaPrefix, [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef])
        let header = try bundle.streamHeader()
        XCTAssertEqual(header.kind, .learned)
        XCTAssertEqual(header.modelShaPrefix, bundle.modelShaPrefix)
        XCTAssertEqual(try bundle.graphURL("generator", in: URL(fileURLWithPath: "/b")).path, "/b/generator.mlpackage")
        XCTAssertThrowsError(try bundle.graphURL("keypoint_encoder", in: URL(fileURLWithPath: "/b"))) {
            XCTAssertEqual($0 as? AppBundle.BundleError, .missingGraph("keypoint_encoder"))
        }
        XCTAssertThrowsError(try bundle.streamHeader(kind: "semantic")) {
            XCTAssertEqual($0 as? AppBundle.BundleError, .noStream("semantic"))
        }
        XCTAssertThrowsError(try AppBundle.decode(try sample(format: "other"))) {
            XCTAssertEqual($0 as? AppBundle.BundleError, .notABundle("format other"))
        }
        XCTAssertThrowsError(try AppBundle.decode(try sample(version: 2)))
    }

    func testFaceCropFramesLikeTheSdk() {
        // sdk.face.crop.box_from_landmarks([[10, 20], [30, 60], [25, 40]]) == SquareBox(20.0, 36.0, 72.0)
        XCTAssertEqual(FaceCrop.around(points: [(10, 20), (30, 60), (25, 40)]), FaceCrop(centerX: 20, centerY: 36, side: 72))
        XCTAssertNil(FaceCrop.around(points: [(1, 1), (1, 1)]))
        XCTAssertNil(FaceCrop.around(points: []))
    }
}
