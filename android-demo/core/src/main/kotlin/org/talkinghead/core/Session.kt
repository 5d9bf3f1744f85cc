package org.talkinghead.core

import java.nio.ByteBuffer

/** Datagram types and sizes of docs/transport.md. */
object Wire {
    const val HELLO = 1
    const val CHALLENGE = 2
    const val START = 3
    const val START_ACK = 4
    const val FRAME = 5
    const val BYE = 6
    const val KEY_BYTES = 32
    const val SALT_BYTES = 16
    const val MAX_BLOB_BYTES = 8 shl 20
    /** The largest frame packet the receivers hold (`THK_JITTER_SLOT_BYTES`). */
    const val MAX_FRAME_PACKET = 2048
    /** Room for any datagram of a session (a FRAME with three copies, a START_ACK of 8192 chunks). */
    const val MAX_DATAGRAM = 9 + 16 + 1 + 3 * (2 + MAX_FRAME_PACKET) + MAX_FRAME_PACKET
}

/** A 32-byte pre-shared secret (`sdk.transport.SessionKey`); never printed. */
class SessionKey(secret: ByteArray) {
    internal val secret: ByteArray = secret.copyOf()

    init {
        if (secret.size != Wire.KEY_BYTES) {
            throw CoreException(CoreStatus.KEY_LENGTH, "a session key is ${Wire.KEY_BYTES} bytes, got ${secret.size}")
        }
    }

    override fun toString(): String = "SessionKey(<secret>)"

    companion object {
        /** From 64 hex digits (the SDK's key file). */
        fun fromHex(text: String): SessionKey {
            val clean = text.trim()
            if (clean.length % 2 != 0 || !clean.all { Character.digit(it, 16) >= 0 }) {
                throw CoreException(CoreStatus.KEY_LENGTH, "session key: not a hex string")
            }
            return SessionKey(ByteArray(clean.length / 2) { clean.substring(2 * it, 2 * it + 2).toInt(16).toByte() })
        }
    }
}

/** What a sender delivered reliably before its first frame: the stream header and its portrait (or null). */
class SessionStart(val sessionId: Int, val header: ByteArray, val portrait: ByteArray?, val active: Boolean)

/** The receiver's counters (`sdk.transport.ReceiverStats`, in its order), plus `oversized`. */
data class ReceiverCounts(
    val received: Long, val recovered: Long, val delivered: Long, val lost: Long, val reordered: Long, val late: Long,
    val overflow: Long, val duplicates: Long, val tooOld: Long, val forged: Long, val truncated: Long,
    val garbage: Long, val otherSession: Long, val malformed: Long, val handshakes: Long, val sessions: Long,
    val oversized: Long,
) {
    companion object {
        internal const val SIZE = 17
        internal fun of(v: LongArray) = ReceiverCounts(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9],
                                                       v[10], v[11], v[12], v[13], v[14], v[15], v[16])
    }
}

/** The sender's counters (`sdk.transport.SenderStats`). */
data class SenderCounts(
    val framesSent: Long, val frameBytes: Long, val wireBytes: Long, val hellosSent: Long, val startChunksSent: Long,
    val startRetransmits: Long, val sessionsStarted: Long, val dropped: Long,
)

/**
 * The receiving end of sessions, without I/O (`thk_receiver`): the handshake, the reliable session
 * start, then the active session's frames through the replay window, redundancy and the jitter
 * buffer. Feed it every datagram ([handle]); send [reply] back to the datagram's source when
 * [replyLength] > 0; take frame packets in order with [pop]. Times are seconds on one monotonic
 * clock. Bad datagrams are counted in [counts] and returned as their status, never thrown.
 */
class SessionReceiver(
    key: SessionKey,
    gapWaitS: Double = 0.06,
    capacity: Int = 16,
    blobCapacity: Int = Wire.MAX_BLOB_BYTES,
) {
    private val native: ByteBuffer
    private val blob: ByteBuffer = ByteBuffer.allocateDirect(blobCapacity)
    private val length = IntArray(1)
    private val deadline = DoubleArray(1)
    private val counters = LongArray(ReceiverCounts.SIZE)
    private val started = LongArray(6)

    /** The reply to the last handled datagram (a CHALLENGE or a START_ACK), [replyLength] bytes. */
    val reply = ByteArray(Wire.MAX_DATAGRAM)
    var replyLength = 0
        private set

    init {
        NativeCore.requireTransport()
        native = NativeCore.state(NativeCore.SIZE_RECEIVER)
        checked(NativeCore.receiverInit(native, key.secret, blob, gapWaitS, capacity), "receiver")
    }

    /** One inbound datagram: OK, STARTED (then see [started]) or why it was dropped. */
    fun handle(datagram: ByteArray, length: Int = datagram.size, nowS: Double): CoreStatus {
        val status = NativeCore.receiverHandle(native, datagram, 0, length, nowS, reply, this.length)
        replyLength = this.length[0]
        if (status == CoreStatus.ARGUMENT.code) throw CoreException(CoreStatus.ARGUMENT, "receiver: datagram length")
        return if (status == CoreStatus.STARTED.code) CoreStatus.STARTED else CoreStatus.of(status)
    }

    /** The session start completed last: copy it before the next session's START arrives. */
    fun started(): SessionStart {
        checked(NativeCore.receiverStarted(native, started), "no session start")
        val header = ByteArray(started[2].toInt())
        blob.duplicate().apply { position(started[1].toInt()) }.get(header)
        val portrait = if (started[3] < 0) null else ByteArray(started[4].toInt()).also {
            blob.duplicate().apply { position(started[3].toInt()) }.get(it)
        }
        return SessionStart(started[0].toInt(), header, portrait, started[5] != 0L)
    }

    /** Switch to the session that started while another was active (its frames were dropped until now). */
    fun activateWaiting() {
        checked(NativeCore.receiverActivateWaiting(native), "no waiting session")
    }

    /** The next frame packet in order into [out]: its length, or -1 when none is due (or no session). */
    fun pop(nowS: Double, out: ByteArray): Int {
        val status = NativeCore.receiverPop(native, nowS, out, length)
        if (status == CoreStatus.BUFFER.code) throw CoreException(CoreStatus.BUFFER, "pop: out is too small")
        return if (status == 1) length[0] else -1
    }

    /** When a gap wait ends (call [pop] then), or NaN when nothing waits on a gap. */
    fun gapDeadline(): Double = if (NativeCore.receiverGapDeadline(native, deadline) == 1) deadline[0] else Double.NaN

    val hasSession: Boolean get() = NativeCore.receiverState(native) and 1 != 0
    val peerClosed: Boolean get() = NativeCore.receiverState(native) and 2 != 0
    val sessionWaiting: Boolean get() = NativeCore.receiverState(native) and 4 != 0

    val counts: ReceiverCounts
        get() {
            NativeCore.receiverCounts(native, counters)
            return ReceiverCounts.of(counters)
        }
}

/**
 * The sending end of a session, without I/O (`thk_sender`): [start] a session, send what [poll]
 * gives until [handle] returns STARTED (HELLO retransmitted with back-off, START chunks until all
 * are acknowledged), then one [frame] datagram per codec packet, [bye] at the end.
 */
class SessionSender(key: SessionKey, val redundancy: Int = 2, val retransmitS: Double = 0.1) {
    private val native: ByteBuffer
    private var blob: ByteBuffer = ByteBuffer.allocateDirect(0)
    private val length = IntArray(1)
    private val deadline = DoubleArray(1)
    private val counters = LongArray(9)

    init {
        NativeCore.requireTransport()
        native = NativeCore.state(NativeCore.SIZE_SENDER)
        checked(NativeCore.senderInit(native, key.secret, redundancy, retransmitS), "sender")
    }

    /** Begin a session carrying [header] and [portrait]; [sessionId] / [salt] null: random. */
    fun start(header: ByteArray, portrait: ByteArray?, nowS: Double, sessionId: Long = -1, salt: ByteArray? = null) {
        val size = 5 + header.size + (portrait?.size ?: 0)
        if (size > Wire.MAX_BLOB_BYTES) throw CoreException(CoreStatus.OVERSIZED, "header + portrait are $size bytes")
        blob = ByteBuffer.allocateDirect(size)  // kept until acknowledged: the START chunks are read from it
        val n = checked(NativeCore.startBlobWrite(header, portrait, blob), "session start blob")
        checked(NativeCore.senderStart(native, blob, n, sessionId, salt, nowS), "session start")
    }

    /** The next handshake datagram due at [nowS] into [out]: its length, or 0 when none is due. */
    fun poll(nowS: Double, out: ByteArray): Int =
        if (checked(NativeCore.senderPoll(native, nowS, out, length), "poll") == 1) length[0] else 0

    /** When [poll] has something next, or NaN once the start is acknowledged. */
    fun deadline(): Double = if (NativeCore.senderDeadline(native, deadline) == 1) deadline[0] else Double.NaN

    /** One inbound datagram: STARTED when it completed the start, OK, or why it was dropped (counted). */
    fun handle(datagram: ByteArray, length: Int = datagram.size): CoreStatus {
        val status = NativeCore.senderHandle(native, datagram, 0, length)
        return if (status == CoreStatus.STARTED.code) CoreStatus.STARTED else CoreStatus.of(status)
    }

    /** The FRAME datagram carrying one codec packet into [out]; returns its length. */
    fun frame(packet: ByteArray, length: Int, out: ByteArray): Int =
        checked(NativeCore.senderFrame(native, packet, 0, length, out), "frame")

    /** A BYE datagram into [out] (send it a few times); returns its length. */
    fun bye(out: ByteArray): Int = checked(NativeCore.senderBye(native, out), "bye")

    val active: Boolean get() = counters().let { it[8] == 3L }

    val counts: SenderCounts
        get() {
            val v = counters()
            return SenderCounts(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7])
        }

    private fun counters(): LongArray {
        NativeCore.senderStats(native, counters)
        return counters
    }
}

/** The counters of one session's FRAME path (`thk_frame_receiver`): its stats, then its jitter buffer's. */
data class FrameReceiverStats(
    val received: Long, val recovered: Long, val delivered: Long, val duplicates: Long, val tooOld: Long,
    val forged: Long, val truncated: Long, val garbage: Long, val otherSession: Long, val malformed: Long,
    val lost: Long, val reordered: Long, val late: Long, val overflow: Long, val jitterDuplicates: Long,
    val oversized: Long,
)

/**
 * The FRAME path of one session whose keys are known (`thk_frame_receiver`): datagrams in, frame
 * packets out in order. [SessionReceiver] runs one per session after its handshake.
 */
class FrameReceiver(forwardKey: ByteArray, sessionId: Int, gapWaitS: Double = 0.06, capacity: Int = 16) {
    private val native: ByteBuffer
    private val length = IntArray(1)
    private val counters = LongArray(16)

    init {
        NativeCore.requireTransport()
        native = NativeCore.state(NativeCore.SIZE_FRAME_RECEIVER)
        checked(NativeCore.frameReceiverInit(native, forwardKey, sessionId, gapWaitS, capacity), "frame receiver")
    }

    fun handle(datagram: ByteArray, length: Int = datagram.size, nowS: Double): CoreStatus =
        CoreStatus.of(NativeCore.frameReceiverHandle(native, datagram, 0, length, nowS))

    /** The next packet in order into [out]: its length, or -1 when none is due. */
    fun pop(nowS: Double, out: ByteArray): Int =
        if (checked(NativeCore.frameReceiverPop(native, nowS, out, length), "pop") == 1) length[0] else -1

    val stats: FrameReceiverStats
        get() {
            val v = counters.also { NativeCore.frameReceiverStats(native, it) }
            return FrameReceiverStats(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11],
                                      v[12], v[13], v[14], v[15])
        }
}

/** Key derivation and sealing of docs/transport.md section 1, for tests and tools. */
object Keys {
    init {
        NativeCore.requireTransport()
    }

    fun hello(key: SessionKey, senderSalt: ByteArray): ByteArray =
        ByteArray(Wire.KEY_BYTES).also { checked(NativeCore.deriveHelloKey(key.secret, senderSalt, it), "hello key") }

    /** (sender to receiver, receiver to sender) keys of one session. */
    fun session(key: SessionKey, senderSalt: ByteArray, receiverSalt: ByteArray): Pair<ByteArray, ByteArray> {
        val forward = ByteArray(Wire.KEY_BYTES)
        val backward = ByteArray(Wire.KEY_BYTES)
        checked(NativeCore.deriveSessionKeys(key.secret, senderSalt, receiverSalt, forward, backward), "session keys")
        return forward to backward
    }

    /** A whole datagram: clear prefix (+ salt for HELLO / CHALLENGE), ciphertext and tag. */
    fun seal(key: ByteArray, type: Int, sessionId: Int, number: Int, salt: ByteArray?, plaintext: ByteArray): ByteArray {
        val out = ByteArray(9 + Wire.SALT_BYTES + plaintext.size + 16)
        return out.copyOf(checked(NativeCore.datagramSeal(key, type, sessionId, number, salt, plaintext,
                                                          plaintext.size, out), "seal"))
    }
}
