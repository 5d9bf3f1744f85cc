package org.talkinghead.demo

import android.graphics.BitmapFactory
import org.talkinghead.core.Decoder
import org.talkinghead.core.RelativeMotion
import org.talkinghead.core.SessionKey
import org.talkinghead.core.SessionTimeoutException
import org.talkinghead.core.StreamHeader
import org.talkinghead.core.StreamKind
import org.talkinghead.core.UdpReceiver
import org.talkinghead.core.Wire
import org.talkinghead.demo.logic.FaceBox
import org.talkinghead.demo.logic.LatestSlot
import org.talkinghead.demo.logic.Pixels
import java.net.InetSocketAddress

/**
 * The receiver half (`sdk.live.receiver`): UDP -> core (session, jitter buffer, decoder, relative
 * motion) on a network thread; the newest driving keypoints -> generator -> [AvatarView] on a render
 * thread. Without the generator (the platform-only build) the decoded keypoints are drawn.
 */
class ReceiverLoop(
    private val port: Int,
    private val key: SessionKey,
    private val bundle: AppBundle?,
    private val graphs: ReceiverGraphs?,
    private val view: AvatarView,
    private val status: (String) -> Unit,
) {
    private class Driving(val keypoints: FloatArray, val jacobians: FloatArray, val sequence: Long)

    @Volatile private var running = false
    private val slot = LatestSlot<Driving>()
    private var threads = emptyList<Thread>()
    @Volatile private var state: SourceState? = null
    @Volatile private var rendered = 0L

    fun start() {
        running = true
        threads = listOf(Thread(::network, "thk-network"), Thread(::render, "thk-render"))
        threads.forEach { it.start() }
    }

    fun stop() {
        running = false
        slot.close()
        threads.forEach { it.join(2000) }
    }

    private fun network() = try {
        UdpReceiver(InetSocketAddress(port), key).use { receiver ->
            status("listening on UDP $port")
            var start = null as org.talkinghead.core.SessionStart?
            while (running && start == null) {
                start = try { receiver.waitSession(0.5) } catch (idle: SessionTimeoutException) { null }
            }
            if (start == null) return
            val header = StreamHeader.parse(start.header)
            if (header.kind != StreamKind.LEARNED) throw IllegalStateException("this demo renders learned-keypoint streams")
            bundle?.let { header.requireModel(it.modelId, it.modelShaPrefix, it.numKp, it.resolution) }
            val k = header.numKp
            val motion = graphs?.let { graphs -> prepare(graphs, start.portrait, header) }
            val decoder = Decoder(header)
            val keypoints = FloatArray(2 * k)
            val jacobians = if (header.hasJacobians) FloatArray(4 * k) else null
            val extra = FloatArray(header.extraDims)
            val packet = ByteArray(Wire.MAX_FRAME_PACKET)
            val tickS = 1000.0 / header.fpsMillihertz
            while (running && !receiver.peerClosed) {
                val n = receiver.receive(tickS, packet)
                if (n < 0) continue
                if (decoder.decode(packet, 0, n).isError) continue  // counted in decoder.stats; a keyframe resyncs
                decoder.frame.dequantizeLearned(keypoints, jacobians, extra)
                if (motion == null) {
                    view.drawKeypoints(keypoints, k)
                } else {
                    val value = FloatArray(2 * k)
                    val jacobian = FloatArray(4 * k)
                    if (!motion.apply(keypoints, jacobians, value, jacobian).isError) {
                        slot.put(Driving(value, jacobian, decoder.frame.sequence))
                    }
                }
                val c = receiver.counts
                status("session ${header.modelId}: ${c.delivered} frames, ${c.lost} lost, ${c.recovered} recovered, " +
                           "${decoder.stats.decoded} decoded, $rendered rendered, ${slot.dropped} behind" +
                           (graphs?.reports?.joinToString("\n", "\n") ?: ""))
            }
            status("sender closed the session")
        }
    } catch (failure: Exception) {
        status("receiver stopped: ${failure.message}")
    } finally {
        slot.close()
    }

    /** The avatar from the sender's portrait (its first face crop): source encoder once, then relative motion. */
    private fun prepare(graphs: ReceiverGraphs, portrait: ByteArray?, header: StreamHeader): RelativeMotion {
        val image = portrait?.let { BitmapFactory.decodeByteArray(it, 0, it.size) }
            ?: throw IllegalStateException("the sender sent no portrait to animate")
        val side = bundle!!.outputSize
        val argb = IntArray(image.width * image.height).also { image.getPixels(it, 0, image.width, 0, 0, image.width, image.height) }
        val tensor = FloatArray(3 * side * side)
        val whole = FaceBox(image.width / 2.0, image.height / 2.0, minOf(image.width, image.height).toDouble())
        Pixels.cropToTensor(argb, image.width, image.height, whole, side, tensor)
        val prepared = graphs.prepareSource(tensor)
        state = prepared
        return RelativeMotion(header.numKp, prepared.keypoints, prepared.jacobians)
    }

    private fun render() {
        val side = bundle?.outputSize ?: return
        val out = FloatArray(3 * side * side)
        val argb = IntArray(side * side)
        while (running) {
            val driving = slot.take(100) ?: continue
            val source = state ?: continue
            graphs?.render(source, driving.keypoints, driving.jacobians, out) ?: return
            Pixels.tensorToArgb(out, side, argb)
            view.drawFrame(argb, side)
            rendered++
        }
    }
}
