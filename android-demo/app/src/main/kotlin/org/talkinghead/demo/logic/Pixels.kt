package org.talkinghead.demo.logic

import kotlin.math.ceil
import kotlin.math.floor

/**
 * Pixel conversions between camera frames (ARGB ints, as Android's Bitmap holds them) and the graphs'
 * tensors (float32 RGB in [0, 1], NCHW: `GraphMetadata`'s image layout). No Android API.
 */
object Pixels {
    /**
     * The square [box] of an ARGB frame resampled to [side]² into [out] (3 * side * side, NCHW),
     * each output pixel the mean of ss x ss bilinear samples (ss ~ the downscale factor), so a
     * large face is averaged down rather than aliased; outside the frame is black.
     */
    fun cropToTensor(argb: IntArray, width: Int, height: Int, box: FaceBox, side: Int, out: FloatArray) {
        require(out.size >= 3 * side * side) { "out: need 3 x $side x $side floats" }
        val step = box.side / side
        val ss = maxOf(1, minOf(8, ceil(step).toInt()))
        val left = box.centreX - box.side / 2
        val top = box.centreY - box.side / 2
        val plane = side * side
        for (row in 0 until side) {
            for (column in 0 until side) {
                var r = 0.0; var g = 0.0; var b = 0.0
                for (sy in 0 until ss) {
                    val y = top + (row + (sy + 0.5) / ss) * step - 0.5
                    for (sx in 0 until ss) {
                        val x = left + (column + (sx + 0.5) / ss) * step - 0.5
                        val p = bilinear(argb, width, height, x, y)
                        r += p[0]; g += p[1]; b += p[2]
                    }
                }
                val n = 255.0 * ss * ss
                val at = row * side + column
                out[at] = (r / n).toFloat(); out[plane + at] = (g / n).toFloat(); out[2 * plane + at] = (b / n).toFloat()
            }
        }
    }

    private val sample = DoubleArray(3)

    private fun bilinear(argb: IntArray, width: Int, height: Int, x: Double, y: Double): DoubleArray {
        val x0 = floor(x).toInt(); val y0 = floor(y).toInt()
        val fx = x - x0; val fy = y - y0
        sample.fill(0.0)
        for ((dy, wy) in arrayOf(0 to 1 - fy, 1 to fy)) {
            for ((dx, wx) in arrayOf(0 to 1 - fx, 1 to fx)) {
                val px = x0 + dx; val py = y0 + dy
                if (px < 0 || py < 0 || px >= width || py >= height) continue
                val c = argb[py * width + px]
                val w = wx * wy
                sample[0] += w * (c shr 16 and 0xFF); sample[1] += w * (c shr 8 and 0xFF); sample[2] += w * (c and 0xFF)
            }
        }
        return sample
    }

    /** A rendered frame (NCHW float in [0, 1], side²) -> opaque ARGB ints, rounded as `sdk.media.to_image`. */
    fun tensorToArgb(tensor: FloatArray, side: Int, out: IntArray) {
        val plane = side * side
        for (i in 0 until plane) {
            out[i] = (0xFF shl 24) or (level(tensor[i]) shl 16) or (level(tensor[plane + i]) shl 8) or level(tensor[2 * plane + i])
        }
    }

    private fun level(value: Float): Int = Math.rint((value.coerceIn(0f, 1f) * 255f).toDouble()).toInt()  // half to even, as torch
}

/**
 * The newest item between two threads, older ones replaced and counted (`sdk.live.queues.DropOldestQueue`
 * with capacity 1): the renderer always takes the latest code, latency stays bounded.
 */
class LatestSlot<T : Any> {
    private val lock = Object()
    private var item: T? = null
    var dropped = 0L
        private set
    var closed = false
        private set

    fun put(value: T) = synchronized(lock) {
        if (item != null) dropped++
        item = value
        lock.notifyAll()
    }

    /** The item, waiting up to [timeoutMs]; null on timeout or once closed and empty. */
    fun take(timeoutMs: Long): T? = synchronized(lock) {
        if (item == null && !closed) lock.wait(timeoutMs)
        val value = item
        item = null
        value
    }

    fun close() = synchronized(lock) {
        closed = true
        lock.notifyAll()
    }
}
