import CThk

/// Receiver-side motion (docs/motion.md): the core's `thk_hull_area`, `thk_movement_scale`,
/// `thk_relative_motion`, in float32 as the Python computes them.
public enum Motion {
    /// Area of the convex hull of K points (2K floats, x first), float64. Throws `.degenerateHull`
    /// for fewer than 3 points or all on one line.
    public static func hullArea(_ points: [Float]) throws -> Double {
        guard points.count % 2 == 0 else { throw ThkError.argument }
        var area = 0.0
        try ThkError.check(thk_hull_area(points, UInt32(points.count / 2), &area))
        return area
    }

    /// sqrt(float32(source) / float32(anchor)) in float32; an anchor area of 0 throws `.degenerateHull`.
    public static func movementScale(sourceArea: Double, anchorArea: Double) throws -> Float {
        var scale: Float = 1
        try ThkError.check(thk_movement_scale(sourceArea, anchorArea, &scale))
        return scale
    }

    /// value = s + (d - a) * scale; jacobian = (Jd inv(Ja)) Js with `useJacobian`, else Js. Buffers of
    /// 2K / 4K floats; nil driving or anchor Jacobians are the identity. A singular anchor Jacobian
    /// throws `.singular`. No allocation.
    public static func relative(k: Int, driving: UnsafePointer<Float>, drivingJacobians: UnsafePointer<Float>?,
                                anchor: UnsafePointer<Float>, anchorJacobians: UnsafePointer<Float>?,
                                source: UnsafePointer<Float>, sourceJacobians: UnsafePointer<Float>, scale: Float,
                                useJacobian: Bool, value: UnsafeMutablePointer<Float>,
                                jacobian: UnsafeMutablePointer<Float>) throws {
        try ThkError.check(thk_relative_motion(UInt32(k), driving, drivingJacobians, anchor, anchorJacobians, source,
                                               sourceJacobians, scale, useJacobian ? 1 : 0, value, jacobian))
    }
}

/// `MotionConfig` of sdk/pipeline.py.
public struct MotionConfig: Equatable {
    public enum Mode { case relative, absolute }
    public var mode: Mode
    public var useJacobian: Bool
    public var adaptMovementScale: Bool
    public init(mode: Mode = .relative, useJacobian: Bool = true, adaptMovementScale: Bool = true) {
        self.mode = mode
        self.useJacobian = useJacobian
        self.adaptMovementScale = adaptMovementScale
    }
}

/// The generator's driving input for one decoded code: keypoints (2K) and Jacobians (4K).
public struct DrivingMotion: Equatable {
    public var keypoints: [Float]
    public var jacobians: [Float]
}

/// Motion against an anchor (docs/motion.md section 3): the first code driven after `init` or
/// `reanchor()` becomes the anchor (zero motion: the avatar at its own pose); areas are computed
/// once per avatar and once per anchor, as the Python does.
public final class AnchoredMotion {
    public let config: MotionConfig
    public let numKeypoints: Int
    public private(set) var reanchors = 0
    private var source: [Float], sourceJacobians: [Float], sourceArea: Double
    private var anchor: [Float]?, anchorJacobians: [Float]?
    private var scale: Float = 1
    private var value: [Float], jacobian: [Float]

    /// `source`: the avatar portrait's keypoints (2K) and Jacobians (4K) from the source encoder.
    public init(sourceKeypoints: [Float], sourceJacobians: [Float], config: MotionConfig = MotionConfig()) throws {
        guard sourceKeypoints.count % 2 == 0, sourceJacobians.count == 2 * sourceKeypoints.count else {
            throw ThkError.argument
        }
        self.config = config
        numKeypoints = sourceKeypoints.count / 2
        source = sourceKeypoints
        self.sourceJacobians = sourceJacobians
        sourceArea = config.adaptMovementScale && config.mode == .relative ? try Motion.hullArea(sourceKeypoints) : 0
        value = [Float](repeating: 0, count: 2 * numKeypoints)
        jacobian = [Float](repeating: 0, count: 4 * numKeypoints)
    }

    /// A new avatar keeps the anchor; its hull area and the scale are recomputed.
    public func setSource(keypoints: [Float], jacobians: [Float]) throws {
        guard keypoints.count == 2 * numKeypoints, jacobians.count == 4 * numKeypoints else { throw ThkError.argument }
        let area = config.adaptMovementScale && config.mode == .relative ? try Motion.hullArea(keypoints) : 0
        source = keypoints
        sourceJacobians = jacobians
        sourceArea = area
        if let anchor { scale = try anchorScale(anchor) }
    }

    /// The next driven code becomes the anchor (the user asked to re-anchor, or after warm-up).
    public func reanchor() {
        anchor = nil
        anchorJacobians = nil
        reanchors += 1
    }

    /// The generator's driving keypoints and Jacobians for a decoded code (`jacobians` nil: identity).
    public func drive(_ code: LearnedCode) throws -> DrivingMotion {
        let k = numKeypoints
        guard code.keypoints.count == 2 * k, code.jacobians == nil || code.jacobians!.count == 4 * k else {
            throw ThkError.argument
        }
        let driving = code.jacobians ?? AnchoredMotion.identity(k)
        if config.mode == .absolute { return DrivingMotion(keypoints: code.keypoints, jacobians: driving) }
        if anchor == nil {
            scale = try anchorScale(code.keypoints)
            anchor = code.keypoints
            anchorJacobians = driving
        }
        try Motion.relative(k: k, driving: code.keypoints, drivingJacobians: driving, anchor: anchor!,
                            anchorJacobians: anchorJacobians!, source: source, sourceJacobians: sourceJacobians,
                            scale: scale, useJacobian: config.useJacobian, value: &value, jacobian: &jacobian)
        return DrivingMotion(keypoints: value, jacobians: jacobian)
    }

    private func anchorScale(_ anchor: [Float]) throws -> Float {
        guard config.adaptMovementScale else { return 1 }
        return try Motion.movementScale(sourceArea: sourceArea, anchorArea: try Motion.hullArea(anchor))
    }

    static func identity(_ k: Int) -> [Float] { (0..<4 * k).map { $0 % 4 == 0 || $0 % 4 == 3 ? 1 : 0 } }
}
