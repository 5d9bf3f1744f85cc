package org.talkinghead.core.tools

import org.talkinghead.core.Decoder
import org.talkinghead.core.RelativeMotion
import org.talkinghead.core.SessionKey
import org.talkinghead.core.SessionTimeoutException
import org.talkinghead.core.StreamHeader
import org.talkinghead.core.StreamKind
import org.talkinghead.core.UdpReceiver
import org.talkinghead.core.Wire
import java.io.File
import java.net.InetSocketAddress
import java.nio.ByteBuffer
import java.nio.ByteOrder

/**
 * The JVM receiver of the interop test (tests/test_interop.py), in the output format of
 * native/tests/udp_receive.c: one UDP session from a Python sender, through the JVM binding.
 *
 *   receive --key HEX [--port 0] [--source FILE] [--timeout S]
 *
 * Lines: "port <n>", "session <id> <header hex> <portrait bytes>", then per frame packet either
 * "frame <sequence> <timestamp> <keyframe> <values>[ <motion value> <motion jacobian>]" (float32
 * bit patterns; motion with --source: the avatar's 2K keypoints and 4K Jacobians, float32 LE) or
 * "error <status>", and at the end "counts <name>=<value> ...".
 */
object ReceiveTool {
    @JvmStatic
    fun main(args: Array<String>) {
        val options = args.toList().chunked(2).associate { it[0] to it.getOrElse(1) { "" } }
        val key = SessionKey.fromHex(options["--key"] ?: error("--key HEX is required"))
        val timeoutS = (options["--timeout"] ?: "20").toDouble()
        UdpReceiver(InetSocketAddress("127.0.0.1", (options["--port"] ?: "0").toInt()), key).use { receiver ->
            println("port ${receiver.localPort}")
            System.out.flush()
            val start = try {
                receiver.waitSession(timeoutS)
            } catch (late: SessionTimeoutException) {
                println("error ${late.message}")
                return
            }
            println("session ${start.sessionId.toLong() and 0xFFFFFFFFL} ${hex(start.header)} ${start.portrait?.size ?: -1}")
            val header = StreamHeader.parse(start.header)
            check(header.kind == StreamKind.LEARNED) { "this tool renders learned-keypoint streams" }
            val decoder = Decoder(header)
            val k = header.numKp
            val keypoints = FloatArray(2 * k)
            val jacobians = if (header.hasJacobians) FloatArray(4 * k) else null
            val extra = FloatArray(header.extraDims)
            val values = FloatArray(6 * k + header.extraDims)
            val motion = options["--source"]?.let { path ->
                val source = ByteBuffer.wrap(File(path).readBytes()).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer()
                val all = FloatArray(6 * k).also { source.get(it) }
                RelativeMotion(k, all.copyOfRange(0, 2 * k), all.copyOfRange(2 * k, 6 * k))
            }
            val value = FloatArray(2 * k)
            val jacobian = FloatArray(4 * k)
            val packet = ByteArray(Wire.MAX_FRAME_PACKET)
            var idleS = 0.0
            while (idleS < timeoutS) {
                val n = receiver.receive(if (receiver.peerClosed) 0.1 else 0.05, packet)
                if (n < 0) {
                    if (receiver.peerClosed) break
                    idleS += 0.05
                    continue
                }
                idleS = 0.0
                val status = decoder.decode(packet, 0, n)
                if (status.isError) {
                    println("error ${status.code}")
                    continue
                }
                val frame = decoder.frame
                frame.dequantizeLearned(keypoints, jacobians, extra)
                System.arraycopy(keypoints, 0, values, 0, 2 * k)
                var used = 2 * k
                if (jacobians != null) System.arraycopy(jacobians, 0, values, used, 4 * k).also { used += 4 * k }
                System.arraycopy(extra, 0, values, used, extra.size).also { used += extra.size }
                val line = StringBuilder("frame ${frame.sequence} ${frame.timestampMs} ${if (frame.keyframe) 1 else 0} ")
                line.append(floatBits(values, used))
                if (motion != null) {
                    val moved = motion.apply(keypoints, jacobians, value, jacobian)
                    line.append(if (moved.isError) " motion-error ${moved.code}" else " ${floatBits(value)} ${floatBits(jacobian)}")
                }
                println(line)
            }
            val counts = receiver.counts
            println("counts received=${counts.received} delivered=${counts.delivered} lost=${counts.lost} " +
                        "forged=${counts.forged} duplicates=${counts.duplicates} handshakes=${counts.handshakes} " +
                        "sessions=${counts.sessions} decoded=${decoder.stats.decoded}")
        }
    }
}
