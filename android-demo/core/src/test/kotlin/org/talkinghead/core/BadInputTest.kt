package org.talkinghead.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import java.util.Random

/**
 * The bad input of issue 15 through the JVM binding: truncated, forged, replayed, oversized and
 * reordered datagrams, stream headers of another version, kind or model, keys of the wrong
 * length. Each gives its defined status (or CoreException) and a counter, never a crash.
 */
class BadInputTest {
    private val golden = Json.golden("transport_v1.json")
    private val forward = hexBytes(golden["forward_key"] as String)
    private val session = golden["session_id"].num().toLong().toInt()
    private val learnedHeader = hexBytes(
        Json.golden("codec_learned_v1.json")["streams"].list()[0].obj()["header"] as String)

    private fun frame(number: Int, packet: ByteArray, key: ByteArray = forward, id: Int = session): ByteArray =
        Keys.seal(key, Wire.FRAME, id, number, null, byteArrayOf(0) + packet)

    private fun refused(status: CoreStatus, block: () -> Unit) {
        try {
            block()
            fail("expected $status")
        } catch (refusal: CoreException) {
            assertEquals(status, refusal.status)
        }
    }

    @Test
    fun datagramsOfEveryKindOfDamage() {
        val receiver = FrameReceiver(forward, session, gapWaitS = 0.06, capacity = 16)
        val packet = byteArrayOf(0x80.toByte(), 0, 0, 0, 0x21, 0xE5.toByte())
        val good = frame(0, packet)
        assertEquals(CoreStatus.OK, receiver.handle(good, nowS = 0.0))
        assertEquals(CoreStatus.DUPLICATE, receiver.handle(good, nowS = 0.0))                      // replayed
        assertEquals(CoreStatus.TRUNCATED, receiver.handle(good.copyOf(5), nowS = 0.0))           // shorter than its prefix
        assertEquals(CoreStatus.TRUNCATED, receiver.handle(good.copyOf(9 + 15), nowS = 0.0))      // no room for a tag
        val flipped = frame(1, packet).also { it[12] = (it[12].toInt() xor 1).toByte() }
        assertEquals(CoreStatus.FORGED, receiver.handle(flipped, nowS = 0.0))                     // corrupted
        assertEquals(CoreStatus.FORGED, receiver.handle(frame(1, packet, key = ByteArray(32)), nowS = 0.0))  // another key
        assertEquals(CoreStatus.OTHER_SESSION, receiver.handle(frame(1, packet, id = session + 1), nowS = 0.0))
        val garbage = good.copyOf().also { it[0] = 9 }
        assertEquals(CoreStatus.GARBAGE, receiver.handle(garbage, nowS = 0.0))
        // oversized: a datagram too large for the receiver to hold, and a packet over a jitter slot
        // (that datagram is authentic and received, but its frame is refused there and counted)
        assertEquals(CoreStatus.OVERSIZED, receiver.handle(frame(1, ByteArray(10000)), nowS = 0.0))
        assertEquals(CoreStatus.OVERSIZED, receiver.handle(frame(1, ByteArray(Wire.MAX_FRAME_PACKET + 1)), nowS = 0.0))
        val inconsistent = Keys.seal(forward, Wire.FRAME, session, 2, null, byteArrayOf(3, 9, 9))  // R = 3, no room
        assertEquals(CoreStatus.FRAME_MALFORMED, receiver.handle(inconsistent, nowS = 0.0))
        // reordered: 4 before 3, both delivered in order; too old: below the 256-number window
        assertEquals(CoreStatus.OK, receiver.handle(frame(4, byteArrayOf(4)), nowS = 0.0))  // 4 before 3
        assertEquals(CoreStatus.OK, receiver.handle(frame(3, byteArrayOf(3)), nowS = 0.0))
        assertEquals(CoreStatus.OK, receiver.handle(frame(400, byteArrayOf(1)), nowS = 0.0))
        assertEquals(CoreStatus.TOO_OLD, receiver.handle(frame(5, byteArrayOf(5)), nowS = 0.0))
        val stats = receiver.stats
        assertEquals(1L, stats.duplicates)
        assertEquals(2L, stats.truncated)
        assertEquals(2L, stats.forged)
        assertEquals(1L, stats.otherSession)
        assertEquals(1L, stats.garbage)
        assertEquals(2L, stats.malformed)  // the oversized one (too big to hold) and the inconsistent one
        assertEquals(1L, stats.tooOld)
        assertEquals(1L, stats.reordered)
        assertEquals(1L, stats.oversized)
        val out = ByteArray(Wire.MAX_FRAME_PACKET)
        assertEquals(6, receiver.pop(0.0, out))   // frame 0
        assertEquals(-1, receiver.pop(0.0, out))  // 1 (refused) and 2 missing: waiting
        assertEquals(1, receiver.pop(1.0, out))   // the gap given up: 3, then 4
        assertEquals(3, out[0].toInt())
    }

    @Test
    fun randomBytesNeverCrashAndAreCounted() {
        val random = Random(19)
        val receiver = FrameReceiver(ByteArray(32), 7)
        val sessionReceiver = SessionReceiver(SessionKey(ByteArray(32)))
        val decoder = Decoder(StreamHeader.parse(learnedHeader))
        val allowed = setOf(CoreStatus.TRUNCATED, CoreStatus.GARBAGE, CoreStatus.FORGED, CoreStatus.OTHER_SESSION)
        repeat(3000) {
            val data = ByteArray(random.nextInt(120)).also { random.nextBytes(it) }
            if (random.nextBoolean() && data.size > 9) data[0] = (1 + random.nextInt(6)).toByte()
            assertTrue(receiver.handle(data, nowS = 0.0) in allowed)
            assertTrue(sessionReceiver.handle(data, nowS = 0.0) in allowed)
            assertTrue(decoder.decode(data) in setOf(CoreStatus.OK, CoreStatus.MALFORMED, CoreStatus.MISSING_REFERENCE,
                                                     CoreStatus.STALE))
        }
        val stats = decoder.stats
        assertEquals(3000L, stats.decoded + stats.malformed + stats.missingReference + stats.stale)
        val counts = sessionReceiver.counts
        assertEquals(3000L, counts.truncated + counts.garbage + counts.forged + counts.otherSession)
    }

    @Test
    fun headersOfAnotherVersionKindOrShape() {
        refused(CoreStatus.HEADER_LENGTH) { StreamHeader.parse(learnedHeader.copyOf(10)) }
        refused(CoreStatus.HEADER_LENGTH) { StreamHeader.parse(learnedHeader + byteArrayOf(0)) }
        refused(CoreStatus.HEADER_MAGIC) { StreamHeader.parse(learnedHeader.copyOf().also { it[0] = 'X'.code.toByte() }) }
        refused(CoreStatus.HEADER_VERSION) { StreamHeader.parse(learnedHeader.copyOf().also { it[4] = 3 }) }
        refused(CoreStatus.HEADER_CRC) { StreamHeader.parse(learnedHeader.copyOf().also { it[8] = 7 }) }
        val semantic = hexBytes(Json.golden("codec_semantic_v2.json")["streams"].list()[0].obj()["header"] as String)
        val header = StreamHeader.parse(semantic)
        refused(CoreStatus.PRIOR_MISMATCH) { header.checkPrior(ByteArray(8), 100) }
        refused(CoreStatus.WRONG_KIND) { Decoder(header).frame.dequantizeLearned(FloatArray(20), null) }
        // a hybrid stream: its own calls only, the other kinds' refused (and its calls refuse theirs)
        val hybridBytes = hexBytes(Json.golden("codec_hybrid_v2.json")["streams"].list()[0].obj()["header"] as String)
        val hybrid = StreamHeader.parse(hybridBytes)
        assertEquals(StreamKind.HYBRID, hybrid.kind)
        refused(CoreStatus.PRIOR_MISMATCH) { hybrid.checkPrior(ByteArray(8), 100) }
        val hybridEncoder = Encoder(hybrid)
        val out = hybridEncoder.packetBuffer()
        val k = hybrid.numKp
        refused(CoreStatus.WRONG_KIND) { hybridEncoder.encodeSemantic(DoubleArray(6), DoubleArray(hybrid.expressionDims), 0, out) }
        refused(CoreStatus.WRONG_KIND) { hybridEncoder.encodeLearned(FloatArray(2 * k), FloatArray(4 * k), null, 0, out) }
        refused(CoreStatus.WRONG_KIND) { Decoder(hybrid).frame.dequantizeSemantic(DoubleArray(6), DoubleArray(hybrid.expressionDims)) }
        refused(CoreStatus.WRONG_KIND) {
            Encoder(header).encodeHybrid(DoubleArray(6), DoubleArray(header.expressionDims), FloatArray(2), null, 0, out)
        }
        refused(CoreStatus.NOT_FINITE) {
            hybridEncoder.encodeHybrid(DoubleArray(6), DoubleArray(hybrid.expressionDims),
                                       FloatArray(2 * k) { Float.NaN }, FloatArray(4 * k), 0, out)
        }
        refused(CoreStatus.ARGUMENT) {  // a keypoint array too short for K
            hybridEncoder.encodeHybrid(DoubleArray(6), DoubleArray(hybrid.expressionDims), FloatArray(1), FloatArray(4 * k), 0, out)
        }
        refused(CoreStatus.HEADER_LENGTH) { StreamHeader.parse(hybridBytes.copyOf(hybridBytes.size - 1)) }
        refused(CoreStatus.HEADER_KIND) { StreamHeader.parse(hybridBytes.copyOf().also { it[5] = 3 }) }
        refused(CoreStatus.HEADER_CRC) { StreamHeader.parse(hybridBytes.copyOf().also { it[42] = 0 }) }
        val hybridDecoder = Decoder(hybrid)
        assertEquals(CoreStatus.MISSING_REFERENCE, hybridDecoder.decode(byteArrayOf(1, 0, 0x24, 0x66)))
        assertEquals(CoreStatus.MALFORMED, hybridDecoder.decode(byteArrayOf(0x80.toByte(), 0)))
        assertEquals(1L, hybridDecoder.stats.malformed)
        // another model: the header parses, the app's check refuses it (sdk.live.stream.parse_and_check_header)
        val mine = StreamHeader.parse(learnedHeader)
        val other = StreamHeader.learned("another-model", ByteArray(8) { 1 }, mine.numKp, mine.resolution, 25000)
        try {
            other.requireModel(mine.modelId, mine.modelShaPrefix, mine.numKp, mine.resolution)
            fail("another model's stream was accepted")
        } catch (mismatch: ModelMismatchException) {
            assertTrue(mismatch.message!!.contains("another-model"))
        }
        mine.requireModel(mine.modelId, mine.modelShaPrefix, mine.numKp, mine.resolution)
    }

    @Test
    fun keysOfTheWrongLength() {
        for (size in intArrayOf(0, 31, 33)) {
            refused(CoreStatus.KEY_LENGTH) { SessionKey(ByteArray(size)) }
            // the core's own check, under the binding's
            assertEquals(CoreStatus.KEY_LENGTH.code, NativeCore.deriveSessionKeys(ByteArray(size), ByteArray(16),
                                                                                   ByteArray(16), ByteArray(32),
                                                                                   ByteArray(32)))
            assertEquals(CoreStatus.KEY_LENGTH.code, NativeCore.receiverInit(NativeCore.state(NativeCore.SIZE_RECEIVER),
                                                                              ByteArray(size),
                                                                              java.nio.ByteBuffer.allocateDirect(64),
                                                                              0.06, 16))
        }
        refused(CoreStatus.KEY_LENGTH) { FrameReceiver(ByteArray(16), 1) }
        refused(CoreStatus.KEY_LENGTH) { SessionKey.fromHex("abcd") }
    }

    @Test
    fun encoderInputsAndMisuse() {
        val header = StreamHeader.parse(learnedHeader)
        val encoder = Encoder(header)
        val k = header.numKp
        val out = encoder.packetBuffer()
        val keypoints = FloatArray(2 * k).also { it[3] = Float.NaN }
        refused(CoreStatus.NOT_FINITE) { encoder.encodeLearned(keypoints, FloatArray(4 * k), FloatArray(3), 0, out) }
        refused(CoreStatus.TIMESTAMP) { encoder.encodeLearned(FloatArray(2 * k), FloatArray(4 * k), FloatArray(3), -1, out) }
        refused(CoreStatus.ARGUMENT) { encoder.encodeLearned(FloatArray(2 * k - 1), FloatArray(4 * k), FloatArray(3), 0, out) }
        refused(CoreStatus.BUFFER) { encoder.encodeLearned(FloatArray(2 * k), FloatArray(4 * k), FloatArray(3), 0, ByteArray(2)) }
        refused(CoreStatus.ARGUMENT) { Decoder(header).decode(ByteArray(4), 2, 5) }
        refused(CoreStatus.DEGENERATE_HULL) { RelativeMotion.hullArea(floatArrayOf(0f, 0f, 1f, 1f, 2f, 2f), 3) }
        val motion = RelativeMotion(1, FloatArray(2), floatArrayOf(1f, 0f, 0f, 1f), adaptMovementScale = false)
        assertEquals(CoreStatus.SINGULAR, motion.apply(FloatArray(2), FloatArray(4), FloatArray(2), FloatArray(4)))
    }

    @Test
    fun everyStatusIsTheCoresName() {
        for (status in CoreStatus.values()) {
            if (status == CoreStatus.UNKNOWN || status == CoreStatus.STARTED) continue
            assertEquals(status.name.lowercase(), NativeCore.statusName(status.code))
        }
    }
}
