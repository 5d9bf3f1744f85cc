package org.talkinghead.demo

import android.content.res.AssetManager
import org.json.JSONObject
import org.talkinghead.core.StreamHeader
import java.io.FileNotFoundException

/** A graph's tensor as its metadata declares it (`GraphMetadata` inputs / outputs). */
class TensorSpec(val name: String, val shape: IntArray) {
    val size: Int get() = shape.fold(1) { a, b -> a * b }
}

/**
 * What `python -m export --bundle android` put under assets/talking_head/ (export/bundle.py):
 * the model's id and hash, its sizes, the graph files with their inputs and outputs, and the
 * stream header both ends use. The platform-only APK built by build-here.sh has no bundle.
 */
class AppBundle(json: JSONObject) {
    val modelId: String = json.getString("model_id")
    /** The first 8 bytes of the model's sha256: what a stream header carries. */
    val modelShaPrefix: ByteArray = json.getString("model_sha256").let { hex -> ByteArray(8) { hex.substring(2 * it, 2 * it + 2).toInt(16).toByte() } }
    val resolution: Int = json.getInt("resolution")
    val outputSize: Int = json.getInt("output_size")
    val senderGraphs: List<String> = json.getJSONArray("sender").let { a -> List(a.length()) { a.getString(it) } }
    val receiverGraphs: List<String> = json.getJSONArray("receiver").let { a -> List(a.length()) { a.getString(it) } }
    /** The learned-keypoint stream header at the bundle's nominal rate, or null (a model without one). */
    val header: ByteArray? = json.optJSONArray("streams")?.optJSONObject(0)?.getString("header_hex")?.let { hex ->
        ByteArray(hex.length / 2) { hex.substring(2 * it, 2 * it + 2).toInt(16).toByte() }
    }
    val numKp: Int = header?.let { StreamHeader.parse(it).numKp } ?: 0
    private val graphs = json.getJSONObject("graphs")

    /** The asset path of a graph's file. */
    fun graphFile(graph: String): String = "$FOLDER/" + graphs.getJSONObject(graph).getString("file")

    fun inputs(graph: String): List<TensorSpec> = tensors(graph, "inputs")
    fun outputs(graph: String): List<TensorSpec> = tensors(graph, "outputs")

    private fun tensors(graph: String, side: String): List<TensorSpec> {
        val list = graphs.getJSONObject(graph).getJSONObject("metadata").getJSONArray(side)
        return List(list.length()) {
            val tensor = list.getJSONObject(it)
            val shape = tensor.getJSONArray("shape")
            TensorSpec(tensor.getString("name"), IntArray(shape.length()) { d -> shape.getInt(d) })
        }
    }

    companion object {
        const val FOLDER = "talking_head"

        fun load(assets: AssetManager): AppBundle? = try {
            AppBundle(JSONObject(assets.open("$FOLDER/bundle.json").bufferedReader().readText()))
        } catch (absent: FileNotFoundException) {
            null
        }
    }
}
