package org.talkinghead.core

/**
 * The receiver-side motion of docs/motion.md (`TalkingHeadPipeline.driving_keypoints`): each
 * decoded code moves the avatar relative to the anchor, the first code after [reset] (or the one
 * given to [setAnchor]), with the Jacobian transfer and movement-scale adaptation.
 *
 * [source] / [sourceJacobian]: the avatar's keypoints (2K) and Jacobians (4K) from the source
 * encoder graph, once per avatar. Nothing is allocated per frame.
 */
class RelativeMotion(
    val numKp: Int,
    source: FloatArray,
    sourceJacobian: FloatArray,
    val useJacobian: Boolean = true,
    val adaptMovementScale: Boolean = true,
) {
    private val source = source.copyOf()
    private val sourceJacobian = sourceJacobian.copyOf()
    private val anchor = FloatArray(2 * numKp)
    private val anchorJacobian = FloatArray(4 * numKp)
    private var hasAnchor = false
    private val area = DoubleArray(1)
    private val scaleOut = FloatArray(1)
    private var sourceArea = Double.NaN

    /** The movement scale of the current anchor (1 without adaptation; NaN before the first frame). */
    var scale: Float = Float.NaN
        private set

    init {
        require(source.size >= 2 * numKp && sourceJacobian.size >= 4 * numKp) { "source: need 2K keypoints, 4K Jacobians" }
    }

    /** The next frame becomes the anchor. */
    fun reset() {
        hasAnchor = false
    }

    /** Make [keypoints] / [jacobians] the anchor (the driver's neutral pose). */
    fun setAnchor(keypoints: FloatArray, jacobians: FloatArray?): CoreStatus {
        System.arraycopy(keypoints, 0, anchor, 0, 2 * numKp)
        if (jacobians != null) System.arraycopy(jacobians, 0, anchorJacobian, 0, 4 * numKp) else identity(anchorJacobian)
        hasAnchor = true
        scale = 1f
        if (!adaptMovementScale) return CoreStatus.OK
        if (sourceArea.isNaN()) {
            val status = CoreStatus.of(NativeCore.hullArea(source, numKp, area))
            if (status.isError) return status.also { hasAnchor = false }
            sourceArea = area[0]
        }
        var status = CoreStatus.of(NativeCore.hullArea(anchor, numKp, area))
        if (!status.isError) status = CoreStatus.of(NativeCore.movementScale(sourceArea, area[0], scaleOut))
        if (status.isError) hasAnchor = false else scale = scaleOut[0]
        return status
    }

    /**
     * The generator's driving keypoints (2K) and Jacobians (4K) for one decoded code; [jacobians]
     * null: a stream without Jacobians (identity). SINGULAR / DEGENERATE_HULL when the anchor
     * cannot serve (the outputs are then unchanged).
     */
    fun apply(keypoints: FloatArray, jacobians: FloatArray?, value: FloatArray, jacobian: FloatArray): CoreStatus {
        if (!hasAnchor) {
            val status = setAnchor(keypoints, jacobians)
            if (status.isError) return status
        }
        return CoreStatus.of(NativeCore.relativeMotion(numKp, keypoints, jacobians, anchor, anchorJacobian, source,
                                                       sourceJacobian, scale, useJacobian, value, jacobian))
    }

    private fun identity(out: FloatArray) {
        for (k in 0 until numKp) {
            out[4 * k] = 1f; out[4 * k + 1] = 0f; out[4 * k + 2] = 0f; out[4 * k + 3] = 1f
        }
    }

    companion object {
        /** Convex-hull area of K points (2K floats) in float64; CoreException(DEGENERATE_HULL) for K < 3 or a line. */
        fun hullArea(points: FloatArray, k: Int): Double {
            val out = DoubleArray(1)
            checked(NativeCore.hullArea(points, k, out), "hull area")
            return out[0]
        }

        /** sqrt(float32(source) / float32(anchor)) in float32. */
        fun movementScale(sourceArea: Double, anchorArea: Double): Float {
            val out = FloatArray(1)
            checked(NativeCore.movementScale(sourceArea, anchorArea, out), "movement scale")
            return out[0]
        }
    }
}
