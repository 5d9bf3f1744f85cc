package org.talkinghead.core

import java.io.Closeable
import java.net.DatagramPacket
import java.net.DatagramSocket
import java.net.InetSocketAddress
import java.net.SocketAddress
import java.net.SocketTimeoutException

/** Seconds on the monotonic clock every session call here uses. */
internal fun nowS(): Double = System.nanoTime() / 1e9

/** A session did not start in time (the other end is absent, or holds another key). */
class SessionTimeoutException(message: String) : RuntimeException(message)

/**
 * A [SessionReceiver] on a UDP socket (`sdk.transport.UdpReceiver`): [waitSession] for a sender's
 * session start, then [receive] once per frame tick. Replies go back to each datagram's source.
 * One thread uses it; it works only when called (no background thread).
 */
class UdpReceiver(address: InetSocketAddress, key: SessionKey, gapWaitS: Double = 0.06, capacity: Int = 16,
                  blobCapacity: Int = Wire.MAX_BLOB_BYTES) : Closeable {
    private val socket = DatagramSocket(address)
    private val session = SessionReceiver(key, gapWaitS, capacity, blobCapacity)
    private val inbound = ByteArray(65535)
    private val datagram = DatagramPacket(inbound, inbound.size)

    /** The bound address (port 0 picks a free one). */
    val localPort: Int get() = socket.localPort
    val counts: ReceiverCounts get() = session.counts
    val peerClosed: Boolean get() = session.peerClosed

    /** Block until a session start completes; it becomes the active one. */
    fun waitSession(timeoutS: Double): SessionStart {
        val deadline = nowS() + timeoutS
        while (true) {
            if (session.sessionWaiting) {
                val start = session.started()
                session.activateWaiting()
                return start
            }
            val remaining = deadline - nowS()
            if (remaining <= 0) throw SessionTimeoutException("waitSession: no session started within $timeoutS s")
            if (handleNext(remaining) == CoreStatus.STARTED) {
                val start = session.started()
                if (!start.active) session.activateWaiting()
                return start
            }
        }
    }

    /** The next frame packet in order into [out] (its length), or -1 when none is due within [timeoutS]. */
    fun receive(timeoutS: Double, out: ByteArray): Int {
        val deadline = nowS() + timeoutS
        while (true) {
            val n = session.pop(nowS(), out)
            if (n >= 0) return n
            if (handleNext(0.0) != null) continue  // what already arrived first, without waiting
            val now = nowS()
            if (now >= deadline) return -1
            val gap = session.gapDeadline()
            handleNext(((if (gap.isNaN()) deadline else minOf(deadline, gap)) - now).coerceAtLeast(0.0))
        }
    }

    /** Handle one datagram arriving within [timeoutS]; null when none did. */
    private fun handleNext(timeoutS: Double): CoreStatus? {
        socket.soTimeout = maxOf(1, Math.ceil(timeoutS * 1000).toInt())  // 0 would block forever
        try {
            datagram.setData(inbound)
            socket.receive(datagram)
        } catch (idle: SocketTimeoutException) {
            return null
        }
        val status = session.handle(inbound, datagram.length, nowS())
        if (session.replyLength > 0) {
            socket.send(DatagramPacket(session.reply, session.replyLength, datagram.socketAddress))
        }
        return status
    }

    override fun close() = socket.close()
}

/**
 * A [SessionSender] on a UDP socket connected to a receiver (`sdk.transport.UdpSender`):
 * [startSession] blocks until the receiver acknowledged the whole session start; then [send] per
 * frame; [close] says BYE.
 */
class UdpSender(address: SocketAddress, key: SessionKey, redundancy: Int = 2, retransmitS: Double = 0.1) : Closeable {
    private val socket = DatagramSocket().apply { connect(address) }
    private val session = SessionSender(key, redundancy, retransmitS)
    private val outbound = ByteArray(Wire.MAX_DATAGRAM)
    private val inbound = ByteArray(65535)
    private val datagram = DatagramPacket(inbound, inbound.size)

    val counts: SenderCounts get() = session.counts

    fun startSession(header: ByteArray, portrait: ByteArray?, timeoutS: Double = 10.0) {
        val deadline = nowS() + timeoutS
        session.start(header, portrait, nowS())
        while (true) {
            var n = session.poll(nowS(), outbound)
            while (n > 0) {
                socket.send(DatagramPacket(outbound, n))
                n = session.poll(nowS(), outbound)
            }
            val now = nowS()
            if (now >= deadline) throw SessionTimeoutException("startSession: the receiver did not answer in time " +
                                                                   "(is it listening, with the same key?)")
            val next = session.deadline()
            socket.soTimeout = maxOf(1, Math.ceil((minOf(deadline, if (next.isNaN()) deadline else next) - now) * 1000).toInt())
            try {
                datagram.setData(inbound)
                socket.receive(datagram)
            } catch (idle: SocketTimeoutException) {
                continue
            } catch (refused: java.net.PortUnreachableException) {
                continue  // nobody listens yet: the HELLO is retransmitted
            }
            if (session.handle(inbound, datagram.length) == CoreStatus.STARTED) return
        }
    }

    /** One codec packet, unreliably. */
    fun send(packet: ByteArray, length: Int = packet.size) {
        socket.send(DatagramPacket(outbound, session.frame(packet, length, outbound)))
    }

    override fun close() {
        if (session.active) {
            repeat(3) { socket.send(DatagramPacket(outbound, session.bye(outbound))) }
        }
        socket.close()
    }
}
