package org.talkinghead.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test

/** Every golden vector of tests/golden/ (written by the Python SDK) through the JVM binding. */
class GoldenVectorsTest {
    @Test
    fun learnedStreamsEncodeAndDecodeAsThePythonDid() {
        var frames = 0
        for (stream in Json.golden("codec_learned_v1.json")["streams"].list().map { it.obj() }) {
            val header = StreamHeader.parse(hexBytes(stream["header"] as String))
            assertEquals(StreamKind.LEARNED, header.kind)
            assertEquals(stream["header"], header.toBytes().hex())
            val encoder = Encoder(header)
            val decoder = Decoder(header)
            val packet = encoder.packetBuffer()
            val k = header.numKp
            val keypoints = FloatArray(2 * k)
            val jacobians = FloatArray(4 * k)
            val extra = FloatArray(header.extraDims)
            for (record in stream["frames"].list().map { it.obj() }) {
                if (record["force_keyframe"] == true) encoder.forceKeyframe()
                val n = encoder.encodeLearned(record["keypoints"].floats(), record["jacobians"].floats(),
                                              if (header.extraDims > 0) record["extra"].floats() else null,
                                              record["timestamp_ms"].num().toLong(), packet)
                assertEquals(record["packet"], packet.hex(n))
                assertEquals(CoreStatus.OK, decoder.decode(packet, 0, n))
                val decoded = record["decoded"].obj()
                val frame = decoder.frame
                assertEquals(decoded["sequence"].num().toLong(), frame.sequence)
                assertEquals(decoded["timestamp_ms"].num().toLong(), frame.timestampMs)
                assertEquals(decoded["keyframe"], frame.keyframe)
                frame.dequantizeLearned(keypoints, if (header.hasJacobians) jacobians else null, extra)
                val values = keypoints.toList() + (if (header.hasJacobians) jacobians.toList() else emptyList()) +
                    extra.toList()
                assertArrayEquals(decoded["values"].floats(), values.toFloatArray(), 0f)
                frames++
            }
            assertEquals(stream["clamped"].num().toLong(), encoder.stats.clampedValues)
        }
        assertTrue(frames > 50)
    }

    @Test
    fun semanticStreamsEncodeAndDecodeAsThePythonDid() {
        for (stream in Json.golden("codec_semantic_v2.json")["streams"].list().map { it.obj() }) {
            val header = StreamHeader.parse(hexBytes(stream["header"] as String))
            assertEquals(StreamKind.SEMANTIC, header.kind)
            val encoder = Encoder(header)
            val decoder = Decoder(header)
            val packet = encoder.packetBuffer()
            val pose = DoubleArray(6)
            val expression = DoubleArray(header.expressionDims)
            for (record in stream["frames"].list().map { it.obj() }) {
                if (record["force_keyframe"] == true) encoder.forceKeyframe()
                val n = encoder.encodeSemantic(record["pose"].flat().toDoubleArray(),
                                               record["expression"].flat().toDoubleArray(),
                                               record["timestamp_ms"].num().toLong(), packet)
                assertEquals(record["packet"], packet.hex(n))
                val stored = hexBytes(record["packet"] as String)
                assertEquals(CoreStatus.OK, decoder.decode(stored))
                val decoded = record["decoded"].obj()
                assertEquals(decoded["sequence"].num().toLong(), decoder.frame.sequence)
                assertEquals(decoded["timestamp_ms"].num().toLong(), decoder.frame.timestampMs)
                assertEquals(decoded["keyframe"], decoder.frame.keyframe)
                decoder.frame.dequantizeSemantic(pose, expression)
                assertArrayEquals(decoded["pose"].flat().toDoubleArray(), pose, 0.0)
                assertArrayEquals(decoded["expression"].flat().toDoubleArray(), expression, 0.0)
            }
        }
    }

    @Test
    fun hybridStreamsEncodeAndDecodeAsThePythonDid() {
        var frames = 0
        for (stream in Json.golden("codec_hybrid_v2.json")["streams"].list().map { it.obj() }) {
            val header = StreamHeader.parse(hexBytes(stream["header"] as String))
            assertEquals(StreamKind.HYBRID, header.kind)
            assertEquals(stream["num_kp"].num().toInt(), header.numKp)
            assertEquals(stream["jacobians"], header.hasJacobians)
            val encoder = Encoder(header)
            val decoder = Decoder(header)
            val packet = encoder.packetBuffer()
            val e = header.expressionDims
            val pose = DoubleArray(6)
            val expression = DoubleArray(e)
            val keypoints = FloatArray(2 * header.numKp)
            val jacobians = FloatArray(4 * header.numKp)
            for (record in stream["frames"].list().map { it.obj() }) {
                if (record["force_keyframe"] == true) encoder.forceKeyframe()
                val n = encoder.encodeHybrid(record["pose"].flat().toDoubleArray(),
                                             record["expression"].flat().toDoubleArray().copyOfRange(0, e),
                                             record["keypoints"].floats(),
                                             if (header.hasJacobians) record["jacobians"].floats() else null,
                                             record["timestamp_ms"].num().toLong(), packet)
                assertEquals(record["packet"], packet.hex(n))
                assertEquals(CoreStatus.OK, decoder.decode(hexBytes(record["packet"] as String)))
                val decoded = record["decoded"].obj()
                assertEquals(decoded["sequence"].num().toLong(), decoder.frame.sequence)
                assertEquals(decoded["timestamp_ms"].num().toLong(), decoder.frame.timestampMs)
                assertEquals(decoded["keyframe"], decoder.frame.keyframe)
                decoder.frame.dequantizeHybrid(pose, expression, keypoints, if (header.hasJacobians) jacobians else null)
                assertArrayEquals(decoded["pose"].flat().toDoubleArray(), pose, 0.0)
                assertArrayEquals(decoded["expression"].flat().toDoubleArray(), expression, 0.0)
                assertArrayEquals(decoded["keypoints"].floats(), keypoints, 0f)
                if (header.hasJacobians) assertArrayEquals(decoded["jacobians"].floats(), jacobians, 0f)
                frames++
            }
        }
        assertTrue(frames > 20)
    }

    @Test
    fun transportKeysDatagramsAndTheFramePath() {
        val golden = Json.golden("transport_v1.json")
        val key = SessionKey(hexBytes(golden["secret"] as String))
        val senderSalt = hexBytes(golden["sender_salt"] as String)
        val receiverSalt = hexBytes(golden["receiver_salt"] as String)
        val session = golden["session_id"].num().toLong().toInt()
        val hello = Keys.hello(key, senderSalt)
        val (forward, backward) = Keys.session(key, senderSalt, receiverSalt)
        assertEquals(golden["hello_key"], hello.hex())
        assertEquals(golden["forward_key"], forward.hex())
        assertEquals(golden["backward_key"], backward.hex())
        val keys = mapOf(Wire.HELLO to hello, Wire.CHALLENGE to backward, Wire.FRAME to forward, Wire.BYE to forward)
        val salts = mapOf(Wire.HELLO to senderSalt, Wire.CHALLENGE to receiverSalt)
        val datagrams = golden["datagrams"].list().map { it.obj() }
        for (item in datagrams) {
            val type = item["type"].num().toInt()
            val sealed = Keys.seal(keys.getValue(type), type, session, item["number"].num().toInt(), salts[type],
                                   hexBytes(item["plaintext"] as String))
            assertEquals(item["datagram"], sealed.hex())
        }
        // the receiver's path: the FRAME datagrams in order, one lost (its copy delivers it), one replayed
        val frames = datagrams.filter { it["type"].num().toInt() == Wire.FRAME }.map { hexBytes(it["datagram"] as String) }
        val receiver = FrameReceiver(forward, session)
        val statuses = listOf(frames[0], frames[2], frames[2], frames[3]).map { receiver.handle(it, nowS = 0.0) }
        assertEquals(listOf(CoreStatus.OK, CoreStatus.OK, CoreStatus.DUPLICATE, CoreStatus.OK), statuses)
        val out = ByteArray(Wire.MAX_FRAME_PACKET)
        val delivered = generateSequence { receiver.pop(0.0, out).takeIf { it >= 0 }?.let { out.hex(it) } }.toList()
        assertEquals(listOf("8000000021e5", "01008a4e", "020040", "0300"), delivered)
        assertEquals(1L, receiver.stats.recovered)
        assertEquals(1L, receiver.stats.duplicates)
    }

    @Test
    fun motionWithinTheDocumentedTolerance() {
        var worst = 0.0
        for (case in Json.golden("motion_v1.json")["cases"].list().map { it.obj() }) {
            val k = case["k"].num().toInt()
            val source = case["source"].floats()
            val anchor = case["anchor"].floats()
            assertEquals(case["source_area"].num().toFloat(), RelativeMotion.hullArea(source, k).toFloat())
            assertEquals(case["anchor_area"].num().toFloat(), RelativeMotion.hullArea(anchor, k).toFloat())
            val motion = RelativeMotion(k, source, case["source_jacobian"].floats(), case["use_jacobian"] == true,
                                        case["adapt_movement_scale"] == true)
            assertEquals(CoreStatus.OK, motion.setAnchor(anchor, case["anchor_jacobian"].floats()))
            val value = FloatArray(2 * k)
            val jacobian = FloatArray(4 * k)
            assertEquals(CoreStatus.OK, motion.apply(case["driving"].floats(), case["driving_jacobian"].floats(), value,
                                                     jacobian))
            // docs/motion.md section 6: relative 5e-7 or absolute 1e-6 (torch's float32 sqrt is not correctly rounded)
            for ((expected, got) in case["value"].floats().zip(value) + case["jacobian"].floats().zip(jacobian)) {
                val error = Math.abs(expected.toDouble() - got)
                assertTrue("$expected vs $got", error <= 1e-6 + 5e-7 * Math.abs(expected.toDouble()))
                worst = maxOf(worst, error)
            }
        }
        println("largest motion difference from the Python: $worst")
    }
}
