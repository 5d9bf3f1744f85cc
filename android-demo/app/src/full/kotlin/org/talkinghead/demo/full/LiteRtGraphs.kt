package org.talkinghead.demo.full

import android.content.Context
import org.talkinghead.demo.AppBundle
import org.talkinghead.demo.DelegateReport
import org.talkinghead.demo.ReceiverGraphs
import org.talkinghead.demo.SenderGraph
import org.talkinghead.demo.SourceState
import org.tensorflow.lite.Delegate
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.gpu.CompatibilityList
import org.tensorflow.lite.gpu.GpuDelegate
import org.tensorflow.lite.nnapi.NnApiDelegate
import java.io.FileInputStream
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.FloatBuffer
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel

/**
 * One exported graph in a LiteRT interpreter, run through its `serving_default` signature with the
 * names of its metadata. Delegates are tried in order, GPU, then NNAPI, then the CPU (XNNPACK); each
 * failure is kept in the [report] (shown on screen), and so is the first run's time, since a
 * delegate that takes only part of the graph is the usual way a "GPU" app silently goes slow.
 */
class LiteRtGraph(context: Context, bundle: AppBundle, val name: String, threads: Int = 2) : AutoCloseable {
    private val model: MappedByteBuffer = context.assets.openFd(bundle.graphFile(name)).use { fd ->
        FileInputStream(fd.fileDescriptor).channel.map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
    }
    private var delegate: Delegate? = null
    val interpreter: Interpreter
    val report: DelegateReport
    private val inputs = bundle.inputs(name)
    private val outputs = bundle.outputs(name)
    private val inputBuffers = inputs.associate { it.name to direct(it.size) }
    val outputBuffers = outputs.associate { it.name to direct(it.size) }

    init {
        val failures = ArrayList<String>()
        var chosen: Pair<Interpreter, String>? = null
        for (kind in listOf("GPU", "NNAPI", "CPU")) {
            try {
                val options = Interpreter.Options().setNumThreads(threads)
                val made: Delegate? = when (kind) {
                    "GPU" -> if (CompatibilityList().isDelegateSupportedOnThisDevice) GpuDelegate()
                             else throw IllegalStateException("not supported on this device")
                    "NNAPI" -> NnApiDelegate()
                    else -> null.also { options.setUseXNNPACK(true) }
                }
                made?.let { options.addDelegate(it) }
                chosen = Interpreter(model, options) to kind
                delegate = made
                break
            } catch (failure: Exception) {
                failures.add("$kind: ${failure.message}")
            }
        }
        val (made, kind) = chosen ?: throw IllegalStateException("$name: no LiteRT interpreter: $failures")
        interpreter = made
        val started = System.nanoTime()
        run()  // the first run: delegates compile here
        report = DelegateReport(name, "GPU", if (kind == "CPU") "CPU (XNNPACK)" else kind,
                                failures.joinToString("; ").ifEmpty { null }, (System.nanoTime() - started) / 1e6)
    }

    fun input(name: String): FloatBuffer = inputBuffers.getValue(name).apply { rewind() }
    fun output(name: String): FloatBuffer = outputBuffers.getValue(name).apply { rewind() }
    val inputNames: List<String> get() = inputs.map { it.name }

    fun run() {
        inputBuffers.values.forEach { it.rewind() }
        outputBuffers.values.forEach { it.rewind() }
        interpreter.runSignature(inputBuffers, outputBuffers, "serving_default")
    }

    override fun close() {
        interpreter.close()
        (delegate as? AutoCloseable)?.close()
    }

    private fun direct(floats: Int): FloatBuffer =
        ByteBuffer.allocateDirect(4 * floats).order(ByteOrder.nativeOrder()).asFloatBuffer()
}

/** The keypoint encoder: image (1, 3, R, R) -> keypoints (1, K, 2), jacobians (1, K, 2, 2). */
class LiteRtSenderGraph(context: Context, bundle: AppBundle) : SenderGraph {
    private val graph = LiteRtGraph(context, bundle, "keypoint_encoder")
    override val report: DelegateReport get() = graph.report

    override fun encode(image: FloatArray, keypoints: FloatArray, jacobians: FloatArray) {
        graph.input("image").put(image)
        graph.run()
        graph.output("keypoints").get(keypoints)
        graph.output("jacobians").get(jacobians)
    }

    override fun close() = graph.close()
}

/**
 * The source encoder (once per avatar) and the generator (per frame), fed as
 * `sdk.runtime.graph_backend.GraphBackend` feeds them: the generator's per-avatar inputs are the
 * source encoder's outputs, `source_image` (the portrait at R) and `portrait` (at S) by name.
 */
class LiteRtReceiverGraphs(context: Context, private val bundle: AppBundle) : ReceiverGraphs {
    private val source = LiteRtGraph(context, bundle, "source_encoder")
    private val generator = LiteRtGraph(context, bundle, "generator")
    override val reports: List<DelegateReport> get() = listOf(source.report, generator.report)

    override fun prepareSource(portrait: FloatArray): SourceState {
        val r = bundle.resolution
        val small = averageDown(portrait, bundle.outputSize, r)
        source.input("image").put(small)
        source.run()
        val available = HashMap<String, FloatArray>()
        for ((name, buffer) in source.outputBuffers) available[name] = FloatArray(buffer.capacity()).also { buffer.rewind(); buffer.get(it) }
        available["source_image"] = small
        available["portrait"] = portrait
        val feeds = generator.inputNames.filterNot { it.startsWith("driving_") }.associateWith { available.getValue(it) }
        return SourceState(available.getValue("source_keypoints"), available.getValue("source_jacobians"), feeds)
    }

    override fun render(state: SourceState, keypoints: FloatArray, jacobians: FloatArray, out: FloatArray) {
        for ((name, values) in state.feeds) generator.input(name).put(values)
        generator.input("driving_keypoints").put(keypoints)
        generator.input("driving_jacobians").put(jacobians)
        generator.run()
        generator.output("image").get(out)
    }

    override fun close() {
        source.close()
        generator.close()
    }

    /** The portrait at S averaged down to R (`sdk.models.talking_head.to_internal`: S is a multiple of R). */
    private fun averageDown(image: FloatArray, side: Int, r: Int): FloatArray {
        val f = side / r
        val out = FloatArray(3 * r * r)
        for (c in 0 until 3) for (y in 0 until r) for (x in 0 until r) {
            var sum = 0f
            for (dy in 0 until f) for (dx in 0 until f) sum += image[c * side * side + (y * f + dy) * side + x * f + dx]
            out[c * r * r + y * r + x] = sum / (f * f)
        }
        return out
    }
}
