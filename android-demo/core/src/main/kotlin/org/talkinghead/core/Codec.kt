package org.talkinghead.core

import java.nio.ByteBuffer

/** Counters of a [Decoder] (`sdk.codec.DecoderStats`). */
data class DecoderStats(val decoded: Long, val keyframes: Long, val missingReference: Long, val stale: Long,
                        val malformed: Long)

/** Counters of an [Encoder] (`sdk.codec.EncoderStats`). */
data class EncoderStats(val frames: Long, val keyframes: Long, val bytes: Long, val keyframeBytes: Long,
                        val clampedValues: Long)

/**
 * One decoded frame, reused from packet to packet (no allocation per frame): its sequence number,
 * timestamp, keyframe flag, integer levels and their dequantized values.
 */
class DecodedFrame internal constructor(val header: StreamHeader) {
    internal val native: ByteBuffer = NativeCore.state(NativeCore.SIZE_FRAME)
    private val info = LongArray(4)

    /** Refreshes the fields after a decode (called by [Decoder.decode]). */
    internal fun refresh() {
        NativeCore.frameInfo(native, info)
    }

    val sequence: Long get() = info[0]
    val timestampMs: Long get() = info[1]
    val keyframe: Boolean get() = info[2] != 0L
    val keyframeId: Int get() = info[3].toInt()

    /** The integer levels (`header.codeValues` of them) into [out]. */
    fun levels(out: IntArray) {
        checked(NativeCore.frameLevels(native, out, header.codeValues), "frame levels")
    }

    /**
     * Learned kind: keypoints (2K, x then y), Jacobians (4K, row-major 2x2 per keypoint; needed only
     * when the stream has them) and extra (D; needed when D > 0), float32 as the Python decoder's.
     */
    fun dequantizeLearned(keypoints: FloatArray, jacobians: FloatArray?, extra: FloatArray? = null) {
        checked(NativeCore.frameDequantizeLearned(header.native, native, keypoints, jacobians, extra), "dequantize")
    }

    /** Semantic kind: pose (6: yaw, pitch, roll, tx, ty, log scale) and E expression coefficients. */
    fun dequantizeSemantic(pose: DoubleArray, expression: DoubleArray?) {
        checked(NativeCore.frameDequantizeSemantic(header.native, native, pose, expression), "dequantize")
    }

    /**
     * Hybrid kind: pose (6) and E expression coefficients as [dequantizeSemantic], keypoints (2K)
     * and Jacobians (4K; needed only when the stream has them) as [dequantizeLearned].
     */
    fun dequantizeHybrid(pose: DoubleArray, expression: DoubleArray?, keypoints: FloatArray, jacobians: FloatArray?) {
        checked(NativeCore.frameDequantizeHybrid(header.native, native, pose, expression, keypoints, jacobians),
                "dequantize")
    }
}

/**
 * The code-stream decoder of any kind. [decode] returns the packet's outcome: OK (then [frame]
 * holds it), MALFORMED, MISSING_REFERENCE or STALE (docs/bitstream.md section 7; counted in
 * [stats], the decoder's state unchanged: the next keyframe resynchronizes).
 */
class Decoder(val header: StreamHeader) {
    private val native: ByteBuffer = NativeCore.state(NativeCore.SIZE_DECODER)
    private val counters = LongArray(5)
    val frame = DecodedFrame(header)

    init {
        checked(NativeCore.decoderInit(native, header.native), "decoder")
    }

    fun decode(packet: ByteArray, offset: Int = 0, length: Int = packet.size - offset): CoreStatus {
        val status = NativeCore.decoderDecode(native, packet, offset, length, frame.native)
        if (status == 0) frame.refresh()
        if (status == CoreStatus.ARGUMENT.code) throw CoreException(CoreStatus.ARGUMENT, "decode: offset or length")
        return CoreStatus.of(status)
    }

    val stats: DecoderStats
        get() {
            NativeCore.decoderStats(native, counters)
            return DecoderStats(counters[0], counters[1], counters[2], counters[3], counters[4])
        }
}

/** The code-stream encoder of any kind; packets are written into a caller buffer. */
class Encoder(val header: StreamHeader) {
    private val native: ByteBuffer = NativeCore.state(NativeCore.SIZE_ENCODER)
    private val counters = LongArray(5)

    /** A buffer large enough for any packet of this stream. */
    fun packetBuffer(): ByteArray = ByteArray(header.maxPacketBytes)

    init {
        checked(NativeCore.encoderInit(native, header.native), "encoder")
    }

    fun forceKeyframe() {
        NativeCore.encoderForceKeyframe(native)
    }

    /**
     * Learned kind: one frame's keypoints (2K), Jacobians (4K, ignored without them) and extra (D)
     * -> the packet in [out]; returns its length. NaN or infinity: CoreException(NOT_FINITE).
     */
    fun encodeLearned(keypoints: FloatArray, jacobians: FloatArray?, extra: FloatArray?, timestampMs: Long,
                      out: ByteArray): Int =
        checked(NativeCore.encoderEncodeLearned(native, keypoints, jacobians, extra, timestampMs, out), "encode")

    /** Semantic kind: pose (6) and the first E expression coefficients -> the packet; returns its length. */
    fun encodeSemantic(pose: DoubleArray, expression: DoubleArray?, timestampMs: Long, out: ByteArray): Int =
        checked(NativeCore.encoderEncodeSemantic(native, pose, expression, timestampMs, out), "encode")

    /**
     * Hybrid kind: pose (6), the first E expression coefficients, keypoints (2K) and Jacobians (4K,
     * ignored without them) -> the packet; returns its length.
     */
    fun encodeHybrid(pose: DoubleArray, expression: DoubleArray?, keypoints: FloatArray, jacobians: FloatArray?,
                     timestampMs: Long, out: ByteArray): Int =
        checked(NativeCore.encoderEncodeHybrid(native, pose, expression, keypoints, jacobians, timestampMs, out),
                "encode")

    val stats: EncoderStats
        get() {
            NativeCore.encoderStats(native, counters)
            return EncoderStats(counters[0], counters[1], counters[2], counters[3], counters[4])
        }
}
