package org.talkinghead.core.tools

import org.talkinghead.core.CoreStatus
import org.talkinghead.core.Decoder
import org.talkinghead.core.Encoder
import org.talkinghead.core.RelativeMotion
import org.talkinghead.core.StreamHeader

/**
 * The receiver's per-frame path through the JVM binding, as native/tests/bench_core.c times it in C:
 * decode one packet + dequantize + relative motion (K = 15 with Jacobians, the default learned
 * stream), after a JIT warm-up of the same frames. One JSON line: frames, mean / p50 / p99 in µs.
 * bench/android_jvm.py runs it beside the C bench.   usage: JvmBench [frames]
 */
object JvmBench {
    private const val K = 15

    @JvmStatic
    fun main(args: Array<String>) {
        val frames = args.getOrNull(0)?.toInt() ?: 20000
        val header = StreamHeader.learned("m", ByteArray(8), K, 256, 25000)
        val encoder = Encoder(header)
        val random = java.util.Random(1)
        val kp = FloatArray(2 * K) { random.nextInt(1000) / 1000f - 0.5f }
        val jac = FloatArray(4 * K) { if (it % 4 == 0 || it % 4 == 3) 1f else 0f }
        val source = kp.copyOf()
        val sourceJac = jac.copyOf()
        val packets = ArrayList<ByteArray>(frames)
        val buffer = encoder.packetBuffer()
        for (f in 0 until frames) {  // a head-like walk: a shared drift plus jitter
            val drift = 0.01f * Math.sin(f * 0.05).toFloat()
            for (i in kp.indices) kp[i] += drift * 0.1f + 0.004f * (random.nextInt(1000) / 1000f - 0.5f)
            for (i in jac.indices) jac[i] += 0.01f * (random.nextInt(1000) / 1000f - 0.5f)
            packets.add(buffer.copyOf(encoder.encodeLearned(kp, jac, null, f * 40L, buffer)))
        }
        val times = DoubleArray(frames)
        val value = FloatArray(2 * K)
        val jacobian = FloatArray(4 * K)
        for (round in 0 until 2) {  // round 0 warms the JIT up; round 1 is timed
            val decoder = Decoder(header)
            val motion = RelativeMotion(K, source, sourceJac)
            for (f in 0 until frames) {
                val start = System.nanoTime()
                val packet = packets[f]
                check(decoder.decode(packet) == CoreStatus.OK)
                decoder.frame.dequantizeLearned(kp, jac)
                check(motion.apply(kp, jac, value, jacobian) == CoreStatus.OK)
                times[f] = (System.nanoTime() - start) / 1e3
            }
        }
        val sorted = times.sorted()
        println("{\"bench\": \"jvm_binding\", \"k\": $K, \"frames\": $frames, \"mean_us\": %.3f, \"p50_us\": %.3f, \"p99_us\": %.3f}"
                    .format(times.average(), sorted[frames / 2], sorted[frames * 99 / 100]))
    }
}
