package org.talkinghead.demo

import android.content.res.AssetManager
import org.json.JSONArray
import org.json.JSONObject
import org.talkinghead.core.CoreStatus
import org.talkinghead.core.Decoder
import org.talkinghead.core.Encoder
import org.talkinghead.core.NativeCore
import org.talkinghead.core.StreamHeader

/**
 * The core's conformance on this device: the golden streams of tests/golden (packed into the
 * APK's assets) encoded and decoded through JNI, compared with what the Python SDK wrote.
 */
object SelfTest {
    fun run(assets: AssetManager): String {
        val golden = JSONObject(assets.open("codec_learned_v1.json").bufferedReader().readText())
        val streams = golden.getJSONArray("streams")
        var frames = 0
        var equal = 0
        for (s in 0 until streams.length()) {
            val stream = streams.getJSONObject(s)
            val header = StreamHeader.parse(hex(stream.getString("header")))
            val encoder = Encoder(header)
            val decoder = Decoder(header)
            val packet = encoder.packetBuffer()
            val k = header.numKp
            val keypoints = FloatArray(2 * k)
            val jacobians = FloatArray(4 * k)
            val extra = FloatArray(header.extraDims)
            val records = stream.getJSONArray("frames")
            for (f in 0 until records.length()) {
                val record = records.getJSONObject(f)
                if (record.getBoolean("force_keyframe")) encoder.forceKeyframe()
                val n = encoder.encodeLearned(floats(record.getJSONArray("keypoints")), floats(record.getJSONArray("jacobians")),
                                              if (header.extraDims > 0) floats(record.getJSONArray("extra")) else null,
                                              record.getLong("timestamp_ms"), packet)
                var same = hexOf(packet, n) == record.getString("packet") && decoder.decode(packet, 0, n) == CoreStatus.OK
                if (same) {
                    decoder.frame.dequantizeLearned(keypoints, if (header.hasJacobians) jacobians else null, extra)
                    val values = keypoints.toList() + (if (header.hasJacobians) jacobians.toList() else emptyList()) + extra.toList()
                    same = values == floats(record.getJSONObject("decoded").getJSONArray("values")).toList()
                }
                frames++
                if (same) equal++
            }
        }
        return "self-test: $equal of $frames golden frames equal to the Python SDK's " +
            "(transport ${if (NativeCore.hasTransport) "present" else "absent: a codec-only libthkjni"})"
    }

    private fun floats(array: JSONArray): FloatArray {
        val out = ArrayList<Float>()
        fun walk(a: JSONArray) {
            for (i in 0 until a.length()) {
                val v = a.get(i)
                if (v is JSONArray) walk(v) else out.add((v as Number).toDouble().toFloat())
            }
        }
        walk(array)
        return out.toFloatArray()
    }

    private fun hex(text: String) = ByteArray(text.length / 2) { text.substring(2 * it, 2 * it + 2).toInt(16).toByte() }
    private fun hexOf(bytes: ByteArray, n: Int) = (0 until n).joinToString("") { "%02x".format(bytes[it]) }
}
