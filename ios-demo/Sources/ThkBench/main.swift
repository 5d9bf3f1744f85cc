// Per-frame cost of the receiver's path in Swift: decode one packet + dequantize + relative
// motion, K = 15 keypoints with Jacobians (the stream of native/tests/bench_core.c), three ways:
//   core        the C calls made directly from Swift (the baseline, as bench_core.c times them)
//   ThkKit      CodeDecoder.decode + dequantizeLearned + Motion.relative into preallocated buffers
//   ThkKit api  CodeDecoder.decode + learnedCode() + AnchoredMotion.drive (arrays per frame)
// Prints a table and one JSON line.   swift run -c release ThkBench [frames]
import CThk
import Foundation
import ThkKit

let frames = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 20000 : 20000
let k = 15

var raw = thk_header()
raw.kind = Int32(THK_KIND_LEARNED); raw.reference = Int32(THK_REF_PREVIOUS); raw.resolution = 256
raw.fps_millihertz = 25000; raw.keyframe_interval = 25; raw.hysteresis256 = 64; raw.model_id_length = 1
raw.model_id.0 = CChar(UInt8(ascii: "m")); raw.num_kp = UInt32(k); raw.jacobians = 1
raw.kp_step = 1024; raw.jac_step = 2048; raw.extra_step = 1024
var headerBytes = [UInt8](repeating: 0, count: 400)
var headerLength = 0
precondition(thk_header_write(&raw, &headerBytes, headerBytes.count, &headerLength) == 0)
let header = try StreamHeader(bytes: Array(headerBytes.prefix(headerLength)))

// a head-like walk: a shared drift plus jitter (a fixed generator: the same packets every run)
var seed: UInt64 = 1
func uniform() -> Float {
    seed = seed &* 6364136223846793005 &+ 1442695040888963407
    return Float(seed >> 40) / Float(1 << 24) - 0.5
}
let encoder = try CodeEncoder(header: header)
var keypoints = (0..<2 * k).map { _ in uniform() }
var jacobians = (0..<4 * k).map { $0 % 4 == 0 || $0 % 4 == 3 ? Float(1) : 0 }
let source = keypoints, sourceJacobians = jacobians
var packets: [[UInt8]] = []
for f in 0..<frames {
    let drift = 0.01 * Float(sin(Double(f) * 0.05))
    for i in 0..<2 * k { keypoints[i] += drift * 0.1 + 0.008 * uniform() }
    for i in 0..<4 * k { jacobians[i] += 0.02 * uniform() }
    packets.append(try encoder.encodeLearned(keypoints: keypoints, jacobians: jacobians, extra: nil, timestampMs: UInt64(f * 40)))
}

func percentile(_ sorted: [Double], _ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }

struct Row { let name: String; let times: [Double] }

func timeCore() -> Row {
    let decoder = UnsafeMutablePointer<thk_decoder>.allocate(capacity: 1)
    let frame = UnsafeMutablePointer<thk_frame>.allocate(capacity: 1)
    defer { decoder.deallocate(); frame.deallocate() }
    var h = header.rawHeader
    precondition(thk_decoder_init(decoder, &h) == 0)
    var kp = [Float](repeating: 0, count: 2 * k), jac = [Float](repeating: 0, count: 4 * k)
    var anchor = kp, anchorJac = jac, value = kp, jacobian = jac
    var sourceArea = 0.0, anchorArea = 0.0, scale: Float = 1
    precondition(thk_hull_area(source, UInt32(k), &sourceArea) == 0)
    var times = [Double](repeating: 0, count: frames)
    for f in 0..<frames {
        let start = monotonicSeconds()
        let status = packets[f].withUnsafeBufferPointer { thk_decoder_decode(decoder, $0.baseAddress, $0.count, frame) }
        precondition(status == 0)
        thk_frame_dequantize_learned(&h, frame, &kp, &jac, nil)
        if f == 0 {
            anchor = kp; anchorJac = jac
            thk_hull_area(anchor, UInt32(k), &anchorArea)
            thk_movement_scale(sourceArea, anchorArea, &scale)
        }
        thk_relative_motion(UInt32(k), kp, jac, anchor, anchorJac, source, sourceJacobians, scale, 1, &value, &jacobian)
        times[f] = monotonicSeconds() - start
    }
    return Row(name: "core (C calls from Swift; baseline)", times: times)
}

func timeKit() throws -> Row {
    let decoder = try CodeDecoder(header: header)
    var kp = [Float](repeating: 0, count: 2 * k), jac = [Float](repeating: 0, count: 4 * k)
    var anchor = kp, anchorJac = jac, value = kp, jacobian = jac
    let sourceArea = try Motion.hullArea(source)
    var scale: Float = 1
    var times = [Double](repeating: 0, count: frames)
    for f in 0..<frames {
        let start = monotonicSeconds()
        try packets[f].withUnsafeBytes { _ = try decoder.decode($0) }
        try decoder.dequantizeLearned(keypoints: &kp, jacobians: &jac, extra: nil)
        if f == 0 {
            anchor = kp; anchorJac = jac
            scale = try Motion.movementScale(sourceArea: sourceArea, anchorArea: try Motion.hullArea(anchor))
        }
        try Motion.relative(k: k, driving: kp, drivingJacobians: jac, anchor: anchor, anchorJacobians: anchorJac,
                            source: source, sourceJacobians: sourceJacobians, scale: scale, useJacobian: true,
                            value: &value, jacobian: &jacobian)
        times[f] = monotonicSeconds() - start
    }
    return Row(name: "ThkKit, preallocated buffers", times: times)
}

func timeKitApi() throws -> Row {
    let decoder = try CodeDecoder(header: header)
    let motion = try AnchoredMotion(sourceKeypoints: source, sourceJacobians: sourceJacobians)
    var times = [Double](repeating: 0, count: frames)
    for f in 0..<frames {
        let start = monotonicSeconds()
        try decoder.decode(packets[f])
        _ = try motion.drive(try decoder.learnedCode())
        times[f] = monotonicSeconds() - start
    }
    return Row(name: "ThkKit, arrays (learnedCode + AnchoredMotion)", times: times)
}

let rows = [timeCore(), try timeKit(), try timeKitApi()]
let baseline = rows[0].times.reduce(0, +) / Double(frames)
print("| path | frames | mean us | p50 us | p99 us | mean / baseline |")
print("| --- | --- | --- | --- | --- | --- |")
var json: [String] = []
for row in rows {
    let sorted = row.times.sorted(), mean = row.times.reduce(0, +) / Double(frames)
    let cells = [mean, percentile(sorted, 0.5), percentile(sorted, 0.99)].map { 1e6 * $0 }
    let fmt = { (x: Double) in String(Int((x * 100).rounded())).paddedCents }
    print("| \(row.name) | \(frames) | \(fmt(cells[0])) | \(fmt(cells[1])) | \(fmt(cells[2])) | \(fmt(mean / baseline)) |")
    json.append("{\"path\": \"\(row.name)\", \"mean_us\": \(cells[0]), \"p50_us\": \(cells[1]), \"p99_us\": \(cells[2])}")
}
print("{\"bench\": \"swift_core\", \"k\": \(k), \"frames\": \(frames), \"bytes_per_frame\": \(Double(encoder.stats.bytes) / Double(frames)), \"rows\": [\(json.joined(separator: ", "))]}")

extension String {
    /// "1234" (hundredths) -> "12.34"
    var paddedCents: String {
        let digits = count < 3 ? String(repeating: "0", count: 3 - count) + self : self
        return "\(digits.dropLast(2)).\(digits.suffix(2))"
    }
}
