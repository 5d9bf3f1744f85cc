package org.talkinghead.demo

import android.app.Activity
import android.content.Context
import org.talkinghead.core.NativeCore

/** A camera frame, upright and (front camera) mirrored: ARGB pixels. */
class CameraFrame(val width: Int, val height: Int, val argb: IntArray, val timestampNs: Long)

interface FrameSource {
    fun start(onFrame: (CameraFrame) -> Unit)
    fun stop()
}

/** Face landmarks (MediaPipe's 478-point mesh) as x, y pairs in frame pixels; null without a face. */
interface FaceLandmarks : AutoCloseable {
    fun detect(frame: CameraFrame): FloatArray?
}

/**
 * Where a graph runs: what was asked for, what it got, why it fell back, and its first run's time,
 * shown on screen. A GPU or NNAPI delegate that fails falls back to the CPU visibly, never silently.
 */
data class DelegateReport(val graph: String, val requested: String, val running: String, val reason: String?,
                          val warmupMs: Double) {
    override fun toString(): String =
        "$graph: $running" + (if (running != requested) " (asked for $requested: ${reason ?: "unavailable"})" else "") +
            ", first run %.0f ms".format(warmupMs)
}

/** The sender graph (keypoint encoder): a face crop (1, 3, R, R) -> keypoints (2K) and Jacobians (4K). */
interface SenderGraph : AutoCloseable {
    val report: DelegateReport
    fun encode(image: FloatArray, keypoints: FloatArray, jacobians: FloatArray)
}

/** The avatar's per-portrait state: its keypoints for the relative motion, the generator's per-avatar inputs. */
class SourceState(val keypoints: FloatArray, val jacobians: FloatArray, val feeds: Map<String, FloatArray>)

/** The receiver graphs: source encoder once per avatar, generator per frame ((1, 3, S, S) out). */
interface ReceiverGraphs : AutoCloseable {
    val reports: List<DelegateReport>
    fun prepareSource(portrait: FloatArray): SourceState
    fun render(state: SourceState, keypoints: FloatArray, jacobians: FloatArray, out: FloatArray)
}

/**
 * The parts that need Google's Maven libraries (CameraX, MediaPipe Tasks, LiteRT), present in the
 * Gradle build (src/full) and absent from the platform-only APK (android-demo/build-here.sh apk).
 */
interface Components {
    /** What this build lacks, or null. */
    val missing: String?
    fun camera(activity: Activity): FrameSource?
    fun landmarks(context: Context): FaceLandmarks?
    fun senderGraph(context: Context, bundle: AppBundle): SenderGraph?
    fun receiverGraphs(context: Context, bundle: AppBundle): ReceiverGraphs?

    companion object {
        fun load(): Components = try {
            Class.forName("org.talkinghead.demo.full.FullComponents").getDeclaredConstructor().newInstance() as Components
        } catch (absent: ClassNotFoundException) {
            PlatformOnly
        }
    }
}

/**
 * The platform-only build: no camera, no landmarks, no graphs; receiving draws the decoded keypoints
 * where the core has its transport (the freestanding codec-only core of build-here.sh has none).
 */
object PlatformOnly : Components {
    override val missing: String
        get() = "built without CameraX, MediaPipe and LiteRT (platform API only): " +
            if (NativeCore.hasTransport) "Receive draws the decoded keypoints" else
                "its core is codec + motion only (no libsodium): Self-test runs the golden streams on this device"
    override fun camera(activity: Activity): FrameSource? = null
    override fun landmarks(context: Context): FaceLandmarks? = null
    override fun senderGraph(context: Context, bundle: AppBundle): SenderGraph? = null
    override fun receiverGraphs(context: Context, bundle: AppBundle): ReceiverGraphs? = null
}
