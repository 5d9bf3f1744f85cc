package org.talkinghead.demo.logic

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Test

/** The app's platform-neutral logic on the JVM, against values the Python SDK computes. */
class LogicTest {
    @Test
    fun theCropBoxIsTheTrackers() {
        // sdk.face.crop.box_from_landmarks of these five points
        val points = floatArrayOf(120.5f, 80.25f, 300f, 95f, 210f, 330.75f, 150f, 200f, 280f, 260f)
        val box = FaceBox.fromLandmarks(points)!!
        assertEquals(210.25, box.centreX, 1e-9)
        assertEquals(180.45, box.centreY, 1e-9)
        assertEquals(450.9, box.side, 1e-9)
        assertNull(FaceBox.fromLandmarks(floatArrayOf(1f, 1f, 1f, 1f)))
        assertNull(FaceBox.fromLandmarks(floatArrayOf(1f, Float.NaN, 2f, 3f)))
    }

    @Test
    fun theBoxIsSmoothedAsTheTrackerDoes() {
        // sdk.face.filters.OneEuroFilter(0.5, 2.0, 1.0) on (cx, cy, side) / first side, at 30 fps
        val smoother = BoxSmoother()
        val boxes = listOf(FaceBox(200.0, 210.0, 180.0), FaceBox(203.0, 208.0, 182.0), FaceBox(210.0, 205.0, 190.0),
                           FaceBox(211.0, 205.0, 189.0))
        val expected = listOf(doubleArrayOf(200.0, 210.0, 180.0),
                              doubleArrayOf(200.37070103725648, 209.77163775546572, 180.2283622445343),
                              doubleArrayOf(202.30347044208432, 209.03555632696538, 182.13769844807334),
                              doubleArrayOf(204.4657126345143, 208.31398436272661, 183.7289691593991))
        for ((index, box) in boxes.withIndex()) {
            val out = smoother.smooth(box, index / 30.0)
            assertArrayEquals(expected[index], doubleArrayOf(out.centreX, out.centreY, out.side), 1e-9)
        }
    }

    @Test
    fun pixelsRoundTrip() {
        val side = 8
        val argb = IntArray(side * side) { (0xFF shl 24) or ((it * 3) shl 16) or ((it * 2) shl 8) or it }
        val tensor = FloatArray(3 * side * side)
        Pixels.cropToTensor(argb, side, side, FaceBox(side / 2.0, side / 2.0, side.toDouble()), side, tensor)
        val back = IntArray(side * side)
        Pixels.tensorToArgb(tensor, side, back)
        assertArrayEquals(argb, back)  // a crop of the whole frame at its own size is the frame
        assertEquals(1f, tensor[2 * side * side - 1] * 255f / 126f, 1e-6f)  // green of the last pixel, NCHW
    }

    @Test
    fun theLatestSlotKeepsTheNewestAndCountsTheRest() {
        val slot = LatestSlot<Int>()
        slot.put(1); slot.put(2); slot.put(3)
        assertEquals(3, slot.take(0))
        assertEquals(2L, slot.dropped)
        assertNull(slot.take(1))
        slot.close()
        assertNull(slot.take(1000))
    }
}
