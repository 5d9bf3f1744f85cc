package org.talkinghead.core.tools

import org.talkinghead.core.SessionKey
import org.talkinghead.core.UdpSender
import java.net.InetSocketAddress

/**
 * The JVM binding's sender for the interop test: one session to a receiver on 127.0.0.1 carrying
 * a stream header and portrait, then one FRAME per packet, then BYE.
 *   send --key HEX --port N --header HEX [--portrait FILE]   (stdin: one packet per line, hex)
 * Prints "sent <frames> <wire bytes> <hellos> <start chunks>".
 */
object SendTool {
    @JvmStatic
    fun main(args: Array<String>) {
        val options = args.toList().chunked(2).associate { it[0] to it.getOrElse(1) { "" } }
        val key = SessionKey.fromHex(options.getValue("--key"))
        val packets = System.`in`.bufferedReader().readLines().filter { it.isNotBlank() }.map { unhex(it.trim()) }
        val sender = UdpSender(InetSocketAddress("127.0.0.1", options.getValue("--port").toInt()), key, retransmitS = 0.05)
        sender.use {
            it.startSession(unhex(options.getValue("--header")), options["--portrait"]?.let { java.io.File(it).readBytes() }, timeoutS = 30.0)
            for (packet in packets) {
                it.send(packet)
                Thread.sleep(2)
            }
            val counts = it.counts
            println("sent ${counts.framesSent} ${counts.wireBytes} ${counts.hellosSent} ${counts.startChunksSent}")
        }
    }
}
