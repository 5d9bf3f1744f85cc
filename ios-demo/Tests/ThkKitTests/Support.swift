import Foundation
import XCTest

/// The repository this package sits in (ios-demo/Tests/ThkKitTests/ -> the root).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()
let goldenFolder = repositoryRoot.appendingPathComponent("tests/golden")

func bytes(hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        out.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return out
}

func hexString(_ data: [UInt8]) -> String { data.map { String(format: "%02x", $0) }.joined() }

func loadJSON(_ name: String) throws -> [String: Any] {
    try parseJSON(Data(contentsOf: goldenFolder.appendingPathComponent(name)))
}

/// JSON with every number kept as its text (then read by `numbers` / `integer`): Foundation's
/// parser on Linux rounds some 17-digit decimals to a neighbouring double, Swift's Double(String)
/// does not, and the comparisons with the Python are exact.
func parseJSON(_ data: Data) throws -> [String: Any] {
    var quoted: [UInt8] = []
    quoted.reserveCapacity(data.count + data.count / 4)
    var inString = false, escaped = false, inNumber = false
    for byte in data {
        if inString {
            if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            quoted.append(byte)
            continue
        }
        let numberByte = (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || [UInt8(ascii: "-"), UInt8(ascii: "+"),
            UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(byte)
        let starts = !inNumber && ((UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-"))
        if inNumber && !numberByte {
            quoted.append(UInt8(ascii: "\""))
            inNumber = false
        }
        if starts {
            quoted.append(UInt8(ascii: "\""))
            inNumber = true
        }
        if byte == UInt8(ascii: "\"") { inString = true }
        quoted.append(byte)
    }
    if inNumber { quoted.append(UInt8(ascii: "\"")) }
    return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(quoted)) as? [String: Any])
}

/// A JSON number or nested list of numbers, flattened in order.
func numbers(_ value: Any?) -> [Double] {
    switch value {
    case let list as [Any]: return list.flatMap { numbers($0) }
    case let text as String: return [Double(text)!]
    case let number as NSNumber: return [number.doubleValue]
    case let number as Double: return [number]
    case let number as Int: return [Double(number)]
    default: return []
    }
}

func integer(_ value: Any?) -> UInt64 {
    if let text = value as? String, let exact = UInt64(text) { return exact }
    return UInt64(numbers(value)[0])
}
