package org.talkinghead.core

import java.nio.ByteBuffer

/** A stream of another model than the receiver's generator (its codes would drive it wrongly). */
class ModelMismatchException(message: String) : RuntimeException(message)

/** The three kinds of code stream (docs/bitstream.md): thk_header.kind (learned: version 1; semantic and
 * hybrid: version 2, kind bytes 1 and 2). */
enum class StreamKind(val code: Int) { LEARNED(1), SEMANTIC(2), HYBRID(3) }

/** What a delta frame is predicted from. */
enum class Reference { KEYFRAME, PREVIOUS }

/**
 * The quantization and keyframe settings of a learned-keypoint stream (`sdk.codec.CodecConfig`),
 * steps in units of 2^-16; the defaults are the SDK's.
 */
data class LearnedCodecConfig(
    val keypointStep: Int = 1024,
    val jacobians: Boolean = true,
    val jacobianStep: Int = 2048,
    val extraStep: Int = 1024,
    val keyframeInterval: Int = 25,
    val reference: Reference = Reference.PREVIOUS,
    val hysteresis256: Int = 64,
)

/**
 * A parsed and checked stream header of any kind (docs/bitstream.md sections 2, 11.2 and 13.2).
 * [parse] reads one a sender sent; [learned] builds one (through the core's one header writer).
 */
class StreamHeader private constructor(internal val native: ByteBuffer) {
    private val fields = LongArray(FIELD_COUNT).also { checked(NativeCore.headerFields(native, it), "header fields") }

    val kind: StreamKind get() = StreamKind.values().first { it.code.toLong() == fields[0] }
    val reference: Reference get() = if (fields[1] == 0L) Reference.KEYFRAME else Reference.PREVIOUS
    val resolution: Int get() = fields[2].toInt()
    val fpsMillihertz: Long get() = fields[3]
    val keyframeInterval: Int get() = fields[4].toInt()
    val hysteresis256: Int get() = fields[5].toInt()
    /** K keypoints (learned and hybrid kinds). */
    val numKp: Int get() = fields[6].toInt()
    val extraDims: Int get() = fields[7].toInt()
    val hasJacobians: Boolean get() = fields[8] != 0L
    val keypointStep: Int get() = fields[9].toInt()
    val jacobianStep: Int get() = fields[10].toInt()
    val extraStep: Int get() = fields[11].toInt()
    /** E expression coefficients (semantic and hybrid kinds). */
    val expressionDims: Int get() = fields[12].toInt()
    val poseSteps: IntArray get() = IntArray(6) { fields[13 + it].toInt() }
    val expressionStep: Int get() = fields[19].toInt()
    /** Integer levels per frame: 6K + D (learned), 6 + E (semantic) or 6 + E + 2K [+ 4K] (hybrid). */
    val codeValues: Int get() = fields[20].toInt()

    val modelId: String get() = String(bytes(0), Charsets.UTF_8)
    val modelShaPrefix: ByteArray get() = bytes(1)
    val priorShaPrefix: ByteArray get() = bytes(2)

    /** An upper bound of one packet's size in this stream (the encoder's output buffer). */
    val maxPacketBytes: Int get() = checked(NativeCore.maxPacketBytes(native), "max packet bytes")

    private fun bytes(which: Int): ByteArray {
        val out = ByteArray(MAX_MODEL_ID)
        return out.copyOf(checked(NativeCore.headerBytes(native, which, out), "header bytes"))
    }

    fun toBytes(): ByteArray {
        val out = ByteArray(MAX_HEADER_BYTES)
        return out.copyOf(checked(NativeCore.headerWrite(native, out), "header write"))
    }

    /** Throws PRIOR_MISMATCH unless a semantic or hybrid stream's codes are in this receiver's face prior. */
    fun checkPrior(priorSha256Prefix: ByteArray, components: Int) {
        checked(NativeCore.headerCheckPrior(native, priorSha256Prefix, components), "face prior")
    }

    /**
     * Throws [ModelMismatchException] unless this stream's codes are of the model this receiver
     * runs (`sdk.live.stream.parse_and_check_header`): same model id, weights hash, K and resolution.
     */
    fun requireModel(modelId: String, modelShaPrefix: ByteArray, numKp: Int, resolution: Int) {
        if (this.modelId != modelId || !this.modelShaPrefix.contentEquals(modelShaPrefix) || this.numKp != numKp ||
            this.resolution != resolution) {
            throw ModelMismatchException(
                "the sender encodes codes of model '${this.modelId}' (K=${this.numKp}, ${this.resolution}px) but this " +
                    "receiver runs '$modelId' (K=$numKp, ${resolution}px): load the same model on both ends")
        }
    }

    override fun toString(): String {
        val code = when (kind) {
            StreamKind.LEARNED -> "K=$numKp"
            StreamKind.SEMANTIC -> "E=$expressionDims"
            StreamKind.HYBRID -> "E=$expressionDims, K=$numKp"
        }
        return "StreamHeader($kind, model=$modelId, $code, ${resolution}px, ${fpsMillihertz / 1000.0} fps)"
    }

    companion object {
        private const val FIELD_COUNT = 21
        private const val MAX_MODEL_ID = 255
        private const val MAX_HEADER_BYTES = 70 + MAX_MODEL_ID  // THK_MAX_HEADER_BYTES: the hybrid kind's

        /** Parse and check a header; a CoreException (HEADER_*) names what is wrong. */
        fun parse(bytes: ByteArray, offset: Int = 0, length: Int = bytes.size - offset): StreamHeader {
            val native = NativeCore.state(NativeCore.SIZE_HEADER)
            checked(NativeCore.headerParse(native, bytes, offset, length), "stream header")
            return StreamHeader(native)
        }

        /**
         * The header of a learned-keypoint stream (`sdk.live.stream.stream_header`): [modelShaPrefix]
         * is the first 8 bytes of the model's sha256 (`sdk.runtime.model_sha256`).
         */
        fun learned(modelId: String, modelShaPrefix: ByteArray, numKp: Int, resolution: Int, fpsMillihertz: Long,
                    config: LearnedCodecConfig = LearnedCodecConfig(), extraDims: Int = 0): StreamHeader {
            val fields = LongArray(FIELD_COUNT - 1)
            fields[0] = StreamKind.LEARNED.code.toLong()
            fields[1] = if (config.reference == Reference.KEYFRAME) 0 else 1
            fields[2] = resolution.toLong()
            fields[3] = fpsMillihertz
            fields[4] = config.keyframeInterval.toLong()
            fields[5] = config.hysteresis256.toLong()
            fields[6] = numKp.toLong()
            fields[7] = extraDims.toLong()
            fields[8] = if (config.jacobians) 1 else 0
            fields[9] = config.keypointStep.toLong()
            fields[10] = config.jacobianStep.toLong()
            fields[11] = config.extraStep.toLong()
            val native = NativeCore.state(NativeCore.SIZE_HEADER)
            val id = modelId.toByteArray(Charsets.UTF_8)
            checked(NativeCore.headerSet(native, fields, id, modelShaPrefix, null), "stream header fields")
            val built = StreamHeader(native)
            return parse(built.toBytes())  // the writer validates; parsing back gives the canonical header
        }
    }
}
