package org.talkinghead.core

import java.nio.ByteBuffer
import java.nio.ByteOrder

/**
 * The JNI functions of libthkjni (android-demo/core/src/main/c): thin, allocation-free calls
 * over native/include/thk.h and thk_session.h. States live in direct ByteBuffers allocated here
 * ([state]); the wrappers ([Decoder], [Encoder], [SessionReceiver], ...) are the API to use.
 *
 * A build of the library without the transport (the freestanding Android `.so`: codec and motion
 * only) lacks the session functions; [hasTransport] says which one is loaded.
 */
object NativeCore {
    init {
        System.loadLibrary("thkjni")
    }

    /** Struct sizes, as `thk_struct_size` / `thk_session_struct_size` number them. */
    internal const val SIZE_HEADER = 0
    internal const val SIZE_FRAME = 1
    internal const val SIZE_DECODER = 2
    internal const val SIZE_ENCODER = 3
    internal const val SIZE_FRAME_RECEIVER = 5
    internal const val SIZE_RECEIVER = 100
    internal const val SIZE_SENDER = 101

    /** A zeroed, native-order direct buffer for a core struct of [which]. */
    internal fun state(which: Int): ByteBuffer {
        val size = if (which >= SIZE_RECEIVER) sessionStructSize(which) else structSize(which)
        check(size > 0) { "the loaded libthkjni does not know struct $which" }
        return ByteBuffer.allocateDirect(size).order(ByteOrder.nativeOrder())
    }

    /** True when the loaded library has the transport and the session start (libsodium). */
    val hasTransport: Boolean by lazy {
        try {
            hasTransport() && cryptoInit() == 0
        } catch (missing: UnsatisfiedLinkError) {
            false
        }
    }

    internal fun requireTransport() {
        if (!hasTransport) {
            throw CoreException(CoreStatus.CRYPTO_INIT, "this libthkjni has no transport (a codec-only build)")
        }
    }

    // -- codec and motion (thk_jni.c) --------------------------------------------------------------
    @JvmStatic external fun structSize(which: Int): Int
    @JvmStatic external fun statusName(status: Int): String
    @JvmStatic external fun headerParse(header: ByteBuffer, data: ByteArray, offset: Int, length: Int): Int
    @JvmStatic external fun headerFields(header: ByteBuffer, out: LongArray): Int
    @JvmStatic external fun headerBytes(header: ByteBuffer, which: Int, out: ByteArray): Int
    @JvmStatic external fun headerSet(header: ByteBuffer, fields: LongArray, modelId: ByteArray, modelSha8: ByteArray,
                                      priorSha8: ByteArray?): Int
    @JvmStatic external fun headerWrite(header: ByteBuffer, out: ByteArray): Int
    @JvmStatic external fun headerCheckPrior(header: ByteBuffer, sha8: ByteArray, components: Int): Int
    @JvmStatic external fun maxPacketBytes(header: ByteBuffer): Int
    @JvmStatic external fun decoderInit(decoder: ByteBuffer, header: ByteBuffer): Int
    @JvmStatic external fun decoderDecode(decoder: ByteBuffer, packet: ByteArray, offset: Int, length: Int,
                                          frame: ByteBuffer): Int
    @JvmStatic external fun decoderStats(decoder: ByteBuffer, out: LongArray): Int
    @JvmStatic external fun frameInfo(frame: ByteBuffer, out: LongArray): Int
    @JvmStatic external fun frameLevels(frame: ByteBuffer, out: IntArray, count: Int): Int
    @JvmStatic external fun frameDequantizeLearned(header: ByteBuffer, frame: ByteBuffer, keypoints: FloatArray,
                                                   jacobians: FloatArray?, extra: FloatArray?): Int
    @JvmStatic external fun frameDequantizeSemantic(header: ByteBuffer, frame: ByteBuffer, pose: DoubleArray,
                                                    expression: DoubleArray?): Int
    @JvmStatic external fun frameDequantizeHybrid(header: ByteBuffer, frame: ByteBuffer, pose: DoubleArray,
                                                  expression: DoubleArray?, keypoints: FloatArray,
                                                  jacobians: FloatArray?): Int
    @JvmStatic external fun encoderInit(encoder: ByteBuffer, header: ByteBuffer): Int
    @JvmStatic external fun encoderForceKeyframe(encoder: ByteBuffer): Int
    @JvmStatic external fun encoderEncodeLearned(encoder: ByteBuffer, keypoints: FloatArray, jacobians: FloatArray?,
                                                 extra: FloatArray?, timestampMs: Long, out: ByteArray): Int
    @JvmStatic external fun encoderEncodeSemantic(encoder: ByteBuffer, pose: DoubleArray, expression: DoubleArray?,
                                                  timestampMs: Long, out: ByteArray): Int
    @JvmStatic external fun encoderEncodeHybrid(encoder: ByteBuffer, pose: DoubleArray, expression: DoubleArray?,
                                                keypoints: FloatArray, jacobians: FloatArray?, timestampMs: Long,
                                                out: ByteArray): Int
    @JvmStatic external fun encoderStats(encoder: ByteBuffer, out: LongArray): Int
    @JvmStatic external fun hullArea(points: FloatArray, k: Int, out: DoubleArray): Int
    @JvmStatic external fun movementScale(sourceArea: Double, anchorArea: Double, out: FloatArray): Int
    @JvmStatic external fun relativeMotion(k: Int, driving: FloatArray, drivingJacobian: FloatArray?, anchor: FloatArray,
                                           anchorJacobian: FloatArray?, source: FloatArray, sourceJacobian: FloatArray,
                                           scale: Float, useJacobian: Boolean, value: FloatArray,
                                           jacobian: FloatArray): Int

    // -- transport and session start (thk_jni_session.c; absent from a codec-only build) ----------
    @JvmStatic external fun hasTransport(): Boolean
    @JvmStatic external fun sessionStructSize(which: Int): Int
    @JvmStatic external fun cryptoInit(): Int
    @JvmStatic external fun deriveHelloKey(secret: ByteArray, senderSalt: ByteArray, out: ByteArray): Int
    @JvmStatic external fun deriveSessionKeys(secret: ByteArray, senderSalt: ByteArray, receiverSalt: ByteArray,
                                              forward: ByteArray, backward: ByteArray): Int
    @JvmStatic external fun datagramSeal(key: ByteArray, type: Int, sessionId: Int, number: Int, salt: ByteArray?,
                                         plaintext: ByteArray, length: Int, out: ByteArray): Int
    @JvmStatic external fun frameReceiverInit(receiver: ByteBuffer, forwardKey: ByteArray, sessionId: Int,
                                              gapWaitS: Double, capacity: Int): Int
    @JvmStatic external fun frameReceiverHandle(receiver: ByteBuffer, data: ByteArray, offset: Int, length: Int,
                                                nowS: Double): Int
    @JvmStatic external fun frameReceiverPop(receiver: ByteBuffer, nowS: Double, out: ByteArray, length: IntArray): Int
    @JvmStatic external fun frameReceiverStats(receiver: ByteBuffer, out: LongArray): Int
    @JvmStatic external fun receiverInit(receiver: ByteBuffer, secret: ByteArray, blob: ByteBuffer, gapWaitS: Double,
                                         capacity: Int): Int
    @JvmStatic external fun receiverHandle(receiver: ByteBuffer, data: ByteArray, offset: Int, length: Int, nowS: Double,
                                           reply: ByteArray, replyLength: IntArray): Int
    @JvmStatic external fun receiverStarted(receiver: ByteBuffer, out: LongArray): Int
    @JvmStatic external fun receiverActivateWaiting(receiver: ByteBuffer): Int
    @JvmStatic external fun receiverPop(receiver: ByteBuffer, nowS: Double, out: ByteArray, length: IntArray): Int
    @JvmStatic external fun receiverGapDeadline(receiver: ByteBuffer, out: DoubleArray): Int
    @JvmStatic external fun receiverState(receiver: ByteBuffer): Int
    @JvmStatic external fun receiverCounts(receiver: ByteBuffer, out: LongArray): Int
    @JvmStatic external fun startBlobWrite(header: ByteArray, portrait: ByteArray?, blob: ByteBuffer): Int
    @JvmStatic external fun senderInit(sender: ByteBuffer, secret: ByteArray, redundancy: Int, retransmitS: Double): Int
    @JvmStatic external fun senderStart(sender: ByteBuffer, blob: ByteBuffer, blobLength: Int, sessionId: Long,
                                        salt: ByteArray?, nowS: Double): Int
    @JvmStatic external fun senderPoll(sender: ByteBuffer, nowS: Double, out: ByteArray, length: IntArray): Int
    @JvmStatic external fun senderDeadline(sender: ByteBuffer, out: DoubleArray): Int
    @JvmStatic external fun senderHandle(sender: ByteBuffer, data: ByteArray, offset: Int, length: Int): Int
    @JvmStatic external fun senderFrame(sender: ByteBuffer, packet: ByteArray, offset: Int, length: Int,
                                        out: ByteArray): Int
    @JvmStatic external fun senderBye(sender: ByteBuffer, out: ByteArray): Int
    @JvmStatic external fun senderStats(sender: ByteBuffer, out: LongArray): Int
}
