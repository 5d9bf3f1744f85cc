package org.talkinghead.core.tools

import org.talkinghead.core.CoreException
import org.talkinghead.core.Decoder
import org.talkinghead.core.Encoder
import org.talkinghead.core.NativeCore
import org.talkinghead.core.RelativeMotion
import org.talkinghead.core.StreamHeader
import org.talkinghead.core.StreamKind

/**
 * The line driver of native/tests/vectors.c on the JVM binding, for the property cases the
 * Python tests generate (tests/test_android_jvm.py): the same commands give the same lines.
 *   H <hex>                      stream header -> "0" or the error code (a new encoder and decoder)
 *   F                            the next frame is a keyframe (no output)
 *   E <timestamp> <v0> <v1> ...  encode -> packet hex, or "error <code>"
 *   D <hex>                      decode -> "<status> <sequence> <timestamp> <keyframe> <levels...>" or "<status>"
 * and one more, for docs/motion.md:
 *   M <k> <use_jacobian> <adapt> <2k driving> <4k driving_jac> <2k anchor> <4k anchor_jac> <2k source> <4k source_jac>
 *                                -> "0 <source area> <anchor area> <value> <jacobian>" (float32 bit patterns) or "<code>"
 */
object ConformanceDriver {
    @JvmStatic
    fun main(args: Array<String>) {
        val out = System.out.bufferedWriter()
        var encoder: Encoder? = null
        var decoder: Decoder? = null
        var packet = ByteArray(0)
        var levels = IntArray(0)
        val input = System.`in`.bufferedReader()
        while (true) {
            val line = input.readLine() ?: break
            if (line.isEmpty()) continue
            val parts = line.trim().split(' ')
            when (line[0]) {
                'H' -> {
                    try {
                        val header = StreamHeader.parse(unhex(parts.getOrElse(1) { "" }))
                        encoder = Encoder(header)
                        decoder = Decoder(header)
                        packet = encoder.packetBuffer()
                        levels = IntArray(header.codeValues)
                        out.write("0\n")
                    } catch (refused: CoreException) {
                        out.write("${refused.status.code}\n")
                    }
                }
                'F' -> encoder!!.forceKeyframe()
                'E' -> {
                    val coder = encoder!!
                    val header = coder.header
                    val timestamp = parts[1].toLong()
                    try {
                        val k = header.numKp
                        val jac = if (header.hasJacobians) 4 * k else 0
                        val n = when (header.kind) {
                            StreamKind.LEARNED -> {
                                val values = FloatArray(header.codeValues) { parts[2 + it].toDouble().toFloat() }
                                coder.encodeLearned(values.copyOfRange(0, 2 * k),
                                                    if (jac > 0) values.copyOfRange(2 * k, 2 * k + jac) else null,
                                                    if (header.extraDims > 0) values.copyOfRange(2 * k + jac, values.size) else null,
                                                    timestamp, packet)
                            }
                            StreamKind.SEMANTIC -> {
                                val values = DoubleArray(header.codeValues) { parts[2 + it].toDouble() }
                                coder.encodeSemantic(values.copyOfRange(0, 6), values.copyOfRange(6, values.size),
                                                     timestamp, packet)
                            }
                            StreamKind.HYBRID -> {
                                // the semantic part float64, the learned part float32 of it (as vectors.c)
                                val values = DoubleArray(header.codeValues) { parts[2 + it].toDouble() }
                                val learned = 6 + header.expressionDims
                                val floats = FloatArray(values.size - learned) { values[learned + it].toFloat() }
                                coder.encodeHybrid(values.copyOfRange(0, 6), values.copyOfRange(6, learned),
                                                   floats.copyOfRange(0, 2 * k),
                                                   if (jac > 0) floats.copyOfRange(2 * k, 2 * k + jac) else null,
                                                   timestamp, packet)
                            }
                        }
                        out.write(hex(packet, n))
                        out.write("\n")
                    } catch (refused: CoreException) {
                        out.write("error ${refused.status.code}\n")
                    }
                }
                'D' -> {
                    val coder = decoder!!
                    val bytes = unhex(parts.getOrElse(1) { "" })
                    val status = coder.decode(bytes)
                    if (status.isError) {
                        out.write("${status.code}\n")
                    } else {
                        val frame = coder.frame
                        frame.levels(levels)
                        out.write("0 ${frame.sequence} ${frame.timestampMs} ${if (frame.keyframe) 1 else 0}")
                        for (level in levels) out.write(" $level")
                        out.write("\n")
                    }
                }
                'M' -> out.write(motion(parts) + "\n")
            }
            out.flush()
        }
    }

    private fun motion(parts: List<String>): String {
        val k = parts[1].toInt()
        val useJacobian = parts[2] == "1"
        val adapt = parts[3] == "1"
        var cursor = 4
        fun take(n: Int) = FloatArray(n) { parts[cursor + it].toDouble().toFloat() }.also { cursor += n }
        val driving = take(2 * k)
        val drivingJac = take(4 * k)
        val anchor = take(2 * k)
        val anchorJac = take(4 * k)
        val source = take(2 * k)
        val sourceJac = take(4 * k)
        return try {
            val sourceArea = RelativeMotion.hullArea(source, k)
            val anchorArea = RelativeMotion.hullArea(anchor, k)
            val motion = RelativeMotion(k, source, sourceJac, useJacobian, adapt)
            val value = FloatArray(2 * k)
            val jacobian = FloatArray(4 * k)
            motion.setAnchor(anchor, anchorJac).also { if (it.isError) return "${it.code}" }
            val status = motion.apply(driving, drivingJac, value, jacobian)
            if (status.isError) "${status.code}"
            else "0 ${floatBits(floatArrayOf(sourceArea.toFloat(), anchorArea.toFloat()))} ${floatBits(value)} " +
                floatBits(jacobian)
        } catch (refused: CoreException) {
            "${refused.status.code}"
        }
    }

    init {
        NativeCore.structSize(0)  // load the library before reading input
    }
}
