package org.talkinghead.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test
import java.net.InetSocketAddress
import java.util.Random

/** Both ends of the session start in memory (with loss) and over UDP on loopback. */
class SessionTest {
    private val key = SessionKey(ByteArray(32) { it.toByte() })

    /** Datagrams from one end to the other, each lost with probability [loss]. */
    private class Link(private val loss: Double, seed: Long) {
        private val random = Random(seed)
        val queue = ArrayDeque<ByteArray>()
        fun send(data: ByteArray, n: Int) {
            if (random.nextDouble() >= loss) queue.addLast(data.copyOf(n))
        }
    }

    @Test
    fun aSessionStartsThroughLossAndFramesArriveInOrder() {
        for (seed in 0L until 20L) {
            val sender = SessionSender(key, redundancy = 2, retransmitS = 0.1)
            val receiver = SessionReceiver(key, gapWaitS = 0.06, capacity = 16, blobCapacity = 1 shl 16)
            val forward = Link(0.3, seed)
            val backward = Link(0.3, seed + 100)
            val header = ByteArray(50) { (it * 7).toByte() }
            val portrait = ByteArray(5000) { (it * 13).toByte() }  // five START chunks
            var now = 0.0
            sender.start(header, portrait, now)
            val out = ByteArray(Wire.MAX_DATAGRAM)
            var started = false
            var receiverStarted: SessionStart? = null
            while (!started && now < 30.0) {
                var n = sender.poll(now, out)
                while (n > 0) { forward.send(out, n); n = sender.poll(now, out) }
                while (forward.queue.isNotEmpty()) {
                    val datagram = forward.queue.removeFirst()
                    if (receiver.handle(datagram, nowS = now) == CoreStatus.STARTED) receiverStarted = receiver.started()
                    if (receiver.replyLength > 0) backward.send(receiver.reply, receiver.replyLength)
                }
                while (backward.queue.isNotEmpty()) {
                    if (sender.handle(backward.queue.removeFirst()) == CoreStatus.STARTED) started = true
                }
                now += 0.02
            }
            assertTrue("seed $seed: not started", started)
            val start = receiverStarted!!
            assertArrayEquals(header, start.header)
            assertArrayEquals(portrait, start.portrait)
            assertTrue(start.active && receiver.hasSession)
            // frames with 30 % loss: redundancy 2 recovers most, the rest are counted lost
            val packet = ByteArray(Wire.MAX_FRAME_PACKET)
            val delivered = ArrayList<Int>()
            for (frame in 0 until 200) {
                val n = sender.frame(byteArrayOf(frame.toByte(), (frame shr 8).toByte()), 2, out)
                forward.send(out, n)
                while (forward.queue.isNotEmpty()) receiver.handle(forward.queue.removeFirst(), nowS = now)
                var got = receiver.pop(now, packet)
                while (got >= 0) {
                    delivered.add((packet[0].toInt() and 0xFF) or (packet[1].toInt() and 0xFF shl 8))
                    got = receiver.pop(now, packet)
                }
                now += 0.04
            }
            assertEquals(delivered.sorted(), delivered)
            val counts = receiver.counts
            assertEquals(counts.delivered, delivered.size.toLong())
            assertTrue(delivered.size > 170)
            assertEquals(1L, counts.sessions)
            assertEquals(200L, sender.counts.framesSent)
            val bye = sender.bye(out)
            receiver.handle(out, bye, now)
            assertTrue(receiver.peerClosed)
        }
    }

    @Test
    fun aSecondSenderWaitsUntilActivated() {
        val receiver = SessionReceiver(key, blobCapacity = 1 shl 16)
        val out = ByteArray(Wire.MAX_DATAGRAM)
        fun connect(sender: SessionSender, id: Long): CoreStatus {
            sender.start(byteArrayOf(id.toByte()), null, 0.0, sessionId = id)
            var last = CoreStatus.OK
            repeat(10) {
                var n = sender.poll(it.toDouble(), out)
                while (n > 0) {
                    val status = receiver.handle(out, n, 0.0)
                    if (status == CoreStatus.STARTED) last = status
                    if (receiver.replyLength > 0) sender.handle(receiver.reply, receiver.replyLength)
                    n = sender.poll(it.toDouble(), out)
                }
            }
            return last
        }
        val first = SessionSender(key)
        val second = SessionSender(key)
        assertEquals(CoreStatus.STARTED, connect(first, 1))
        assertEquals(CoreStatus.STARTED, connect(second, 2))
        assertTrue(receiver.sessionWaiting)
        assertFalse(receiver.started().active)
        val n = second.frame(byteArrayOf(9), 1, out)
        assertEquals(CoreStatus.OTHER_SESSION, receiver.handle(out, n, 0.0))
        receiver.activateWaiting()
        assertEquals(CoreStatus.OK, receiver.handle(second.frame(byteArrayOf(8), 1, out).let { out.copyOf(it) }, nowS = 0.0))
        val packet = ByteArray(16)
        assertEquals(1, receiver.pop(0.0, packet))
        assertEquals(9, packet[0].toInt())  // frame 0, dropped before, recovered from frame 1's copy
        assertEquals(1, receiver.pop(0.0, packet))
        assertEquals(8, packet[0].toInt())
        assertEquals(2L, receiver.counts.sessions)
        assertEquals(1L, receiver.counts.otherSession)
    }

    @Test
    fun udpOnLoopback() {
        UdpReceiver(InetSocketAddress("127.0.0.1", 0), key).use { receiver ->
            val thread = Thread {
                UdpSender(InetSocketAddress("127.0.0.1", receiver.localPort), key).use { sender ->
                    sender.startSession(byteArrayOf(1, 2, 3), null, timeoutS = 10.0)
                    for (i in 0 until 50) sender.send(byteArrayOf(i.toByte()))
                }
            }
            thread.start()
            val start = receiver.waitSession(10.0)
            assertArrayEquals(byteArrayOf(1, 2, 3), start.header)
            val packet = ByteArray(Wire.MAX_FRAME_PACKET)
            val got = ArrayList<Int>()
            while (got.size < 50) {
                val n = receiver.receive(2.0, packet)
                if (n < 0) break
                got.add(packet[0].toInt())
            }
            thread.join()
            assertEquals((0 until 50).toList(), got)
        }
    }
}
