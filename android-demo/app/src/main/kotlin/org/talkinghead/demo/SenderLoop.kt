package org.talkinghead.demo

import android.graphics.Bitmap
import org.talkinghead.core.Encoder
import org.talkinghead.core.SessionKey
import org.talkinghead.core.StreamHeader
import org.talkinghead.core.UdpSender
import org.talkinghead.demo.logic.BoxSmoother
import org.talkinghead.demo.logic.FaceBox
import org.talkinghead.demo.logic.Pixels
import java.io.ByteArrayOutputStream
import java.net.InetSocketAddress

/**
 * The sender half (`sdk.live.sender.CodeSender`): camera frame -> face landmarks -> crop box
 * (smoothed as the SDK's tracker does) -> sender graph -> core encoder -> UDP. A frame without a
 * face sends the last code again, so the receiver holds the avatar still; the session starts at
 * the first face, with that face's crop as the portrait the receiver animates.
 */
class SenderLoop(
    private val host: String,
    private val port: Int,
    private val key: SessionKey,
    private val bundle: AppBundle,
    private val camera: FrameSource,
    private val landmarks: FaceLandmarks,
    private val graph: SenderGraph,
    private val status: (String) -> Unit,
) {
    private val header = StreamHeader.parse(bundle.header ?: throw IllegalStateException("the bundle has no stream header"))
    private val encoder = Encoder(header)
    private val packet = encoder.packetBuffer()
    private val smoother = BoxSmoother()
    private val r = bundle.resolution
    private val crop = FloatArray(3 * r * r)
    private val keypoints = FloatArray(2 * header.numKp)
    private val jacobians = FloatArray(4 * header.numKp)
    private var sender: UdpSender? = null
    private var haveCode = false
    private var epochNs = 0L
    private var sent = 0L
    private var noFace = 0L

    fun start() = camera.start(::onFrame)

    fun stop() {
        camera.stop()
        sender?.close()
        landmarks.close()
        graph.close()
    }

    private fun onFrame(frame: CameraFrame) {
        val mesh = landmarks.detect(frame)
        val box = mesh?.let { FaceBox.fromLandmarks(it) }
        if (box != null) {
            val smoothed = smoother.smooth(box, frame.timestampNs / 1e9)
            Pixels.cropToTensor(frame.argb, frame.width, frame.height, smoothed, r, crop)
            graph.encode(crop, keypoints, jacobians)
            haveCode = true
            if (sender == null) connect(frame, smoothed)
        } else {
            noFace++
            if (!haveCode) return  // no code yet: nothing to send (counted)
        }
        val link = sender ?: return
        val timestampMs = (frame.timestampNs - epochNs) / 1_000_000
        val n = encoder.encodeLearned(keypoints, if (header.hasJacobians) jacobians else null, null, timestampMs, packet)
        link.send(packet, n)
        sent++
        status("sending to $host:$port: $sent frames, $noFace without a face\n${graph.report}")
    }

    /** The session start, with the first face crop at the output size as the portrait (PNG). */
    private fun connect(frame: CameraFrame, box: FaceBox) {
        val side = bundle.outputSize
        val tensor = FloatArray(3 * side * side)
        Pixels.cropToTensor(frame.argb, frame.width, frame.height, box, side, tensor)
        val argb = IntArray(side * side).also { Pixels.tensorToArgb(tensor, side, it) }
        val png = ByteArrayOutputStream().also {
            Bitmap.createBitmap(argb, side, side, Bitmap.Config.ARGB_8888).compress(Bitmap.CompressFormat.PNG, 100, it)
        }.toByteArray()
        status("starting a session with $host:$port")
        sender = UdpSender(InetSocketAddress(host, port), key).also { it.startSession(header.toBytes(), png, 10.0) }
        epochNs = frame.timestampNs
        status("session started")
    }
}
