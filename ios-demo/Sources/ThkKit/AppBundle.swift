import Foundation

/// `bundle.json` of `python -m export --bundle ios` (export/bundle.py): which graphs each side runs,
/// their files, the model, and the stream header the two ends exchange. Fields not read here are
/// ignored.
public struct AppBundle: Decodable {
    public static let format = "talking-head-app-bundle"
    public static let version = 1
    public static let folderName = "talking_head"
    public static let fileName = "bundle.json"

    public struct Graph: Decodable {
        public let file: String
        public let sha256: String
    }

    public struct Stream: Decodable {
        public let kind: String       // "keypoints", "semantic" or "hybrid"
        public let bytes: String      // the stream header, hex

        enum CodingKeys: String, CodingKey {
            case kind, bytes = "header_hex"  // as export/bundle.py writes it
        }
    }

    public let format: String
    public let version: Int
    public let modelId: String
    public let modelSha256: String
    public let resolution: Int
    public let outputSize: Int
    public let sender: [String]
    public let receiver: [String]
    public let graphs: [String: Graph]
    public let streams: [Stream]

    enum CodingKeys: String, CodingKey {
        case format, version, sender, receiver, graphs, streams, resolution
        case modelId = "model_id", modelSha256 = "model_sha256", outputSize = "output_size"
    }

    public enum BundleError: Error, Equatable, CustomStringConvertible {
        case notABundle(String), noStream(String), missingGraph(String)
        public var description: String {
            switch self {
            case .notABundle(let why): return "not an app bundle: \(why)"
            case .noStream(let kind): return "the bundle has no \(kind) stream header"
            case .missingGraph(let name): return "the bundle has no \(name) graph"
            }
        }
    }

    /// Reads and checks `folder/bundle.json`.
    public static func load(from folder: URL) throws -> AppBundle {
        let data = try Data(contentsOf: folder.appendingPathComponent(fileName))
        return try decode(data)
    }

    public static func decode(_ data: Data) throws -> AppBundle {
        let bundle = try JSONDecoder().decode(AppBundle.self, from: data)
        guard bundle.format == format else { throw BundleError.notABundle("format \(bundle.format)") }
        guard bundle.version == version else { throw BundleError.notABundle("version \(bundle.version), this app reads \(version)") }
        return bundle
    }

    /// The first 8 bytes of the model's SHA-256: what a stream header's model field must carry.
    public var modelShaPrefix: [UInt8] {
        stride(from: 0, to: 16, by: 2).compactMap { offset -> UInt8? in
            let start = modelSha256.index(modelSha256.startIndex, offsetBy: offset)
            return UInt8(modelSha256[start..<modelSha256.index(start, offsetBy: 2)], radix: 16)
        }
    }

    /// The stream header of `kind` the sender sends (at the bundle's nominal rate).
    public func streamHeader(kind: String = "keypoints") throws -> StreamHeader {
        guard let stream = streams.first(where: { $0.kind == kind }) else { throw BundleError.noStream(kind) }
        var bytes: [UInt8] = []
        var index = stream.bytes.startIndex
        while index < stream.bytes.endIndex, let next = stream.bytes.index(index, offsetBy: 2, limitedBy: stream.bytes.endIndex) {
            guard let byte = UInt8(stream.bytes[index..<next], radix: 16) else { throw BundleError.noStream(kind) }
            bytes.append(byte)
            index = next
        }
        return try StreamHeader(bytes: bytes)
    }

    /// The file of graph `name` inside `folder`.
    public func graphURL(_ name: String, in folder: URL) throws -> URL {
        guard let graph = graphs[name] else { throw BundleError.missingGraph(name) }
        return folder.appendingPathComponent(graph.file)
    }
}

/// The square face crop of sdk/face/crop.py (`box_from_landmarks`): side `scale` x the larger side
/// of the landmarks' bounding box, centre `shiftUp` x that side above theirs. Pixels, y down.
public struct FaceCrop: Equatable {
    public var centerX: Double, centerY: Double, side: Double

    public static func around(points: [(x: Double, y: Double)], scale: Double = 1.8, shiftUp: Double = 0.1) -> FaceCrop? {
        guard let minX = points.map(\.x).min(), let maxX = points.map(\.x).max(),
              let minY = points.map(\.y).min(), let maxY = points.map(\.y).max() else { return nil }
        let extent = max(maxX - minX, maxY - minY)
        guard extent > 0, extent.isFinite else { return nil }
        return FaceCrop(centerX: (minX + maxX) / 2, centerY: (minY + maxY) / 2 - shiftUp * extent, side: scale * extent)
    }
}
