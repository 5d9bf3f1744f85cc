package org.talkinghead.demo.logic

import kotlin.math.PI
import kotlin.math.abs
import kotlin.math.max
import kotlin.math.min

/**
 * The square face crop of the SDK's tracker (`sdk.face.crop.box_from_landmarks`): centred on the
 * landmarks' bounding box, shifted up by [shiftUp] of its larger side, [scale] times that side.
 * Pure Kotlin (no Android API): unit-tested on the JVM.
 */
data class FaceBox(val centreX: Double, val centreY: Double, val side: Double) {
    companion object {
        const val SCALE = 1.8
        const val SHIFT_UP = 0.1

        /** [landmarks]: x, y pairs in frame pixels (MediaPipe's 478-point mesh); null when they are degenerate. */
        fun fromLandmarks(landmarks: FloatArray, count: Int = landmarks.size / 2, scale: Double = SCALE,
                          shiftUp: Double = SHIFT_UP): FaceBox? {
            if (count < 2) return null
            var lowX = Double.POSITIVE_INFINITY; var lowY = Double.POSITIVE_INFINITY
            var highX = Double.NEGATIVE_INFINITY; var highY = Double.NEGATIVE_INFINITY
            for (i in 0 until count) {
                val x = landmarks[2 * i].toDouble()
                val y = landmarks[2 * i + 1].toDouble()
                if (!x.isFinite() || !y.isFinite()) return null
                lowX = min(lowX, x); highX = max(highX, x); lowY = min(lowY, y); highY = max(highY, y)
            }
            val extent = max(highX - lowX, highY - lowY)
            if (extent <= 0) return null
            return FaceBox((lowX + highX) / 2, (lowY + highY) / 2 - shiftUp * extent, scale * extent)
        }
    }
}

/**
 * The tracker's smoothing of the crop box (`sdk.face.tracker.FaceTracker.update` with
 * `sdk.face.filters.OneEuroFilter` and the `TrackerConfig` defaults): (centre x, centre y, side) in
 * units of the side at first sight, One-Euro filtered, so a still face gives a still crop.
 */
class BoxSmoother(private val minCutoff: Double = 0.5, private val beta: Double = 2.0,
                  private val dCutoff: Double = 1.0) {
    private var unit = 0.0
    private var x: DoubleArray? = null
    private var dx = DoubleArray(3)
    private var lastS = 0.0

    /** Forget the face (the next box is taken as it is and sets the unit again). */
    fun reset() {
        x = null
    }

    /** [timeS] must increase from call to call (an equal or earlier one restarts the filter). */
    fun smooth(box: FaceBox, timeS: Double): FaceBox {
        val previous = x
        if (previous == null || timeS <= lastS) {
            unit = box.side
            x = doubleArrayOf(box.centreX / unit, box.centreY / unit, box.side / unit)
            dx = DoubleArray(3)
            lastS = timeS
            return box
        }
        val value = doubleArrayOf(box.centreX / unit, box.centreY / unit, box.side / unit)
        val dt = timeS - lastS
        lastS = timeS
        val out = DoubleArray(3)
        for (i in 0 until 3) {
            dx[i] += factor(dCutoff, dt) * ((value[i] - previous[i]) / dt - dx[i])
            out[i] = previous[i] + factor(minCutoff + beta * abs(dx[i]), dt) * (value[i] - previous[i])
        }
        x = out
        return FaceBox(out[0] * unit, out[1] * unit, out[2] * unit)
    }

    private fun factor(cutoffHz: Double, dt: Double): Double = 1.0 / (1.0 + 1.0 / (2.0 * PI * cutoffHz) / dt)
}
