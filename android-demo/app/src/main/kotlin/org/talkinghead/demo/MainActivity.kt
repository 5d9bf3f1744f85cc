package org.talkinghead.demo

import android.Manifest
import android.app.Activity
import android.content.pm.PackageManager
import android.os.Bundle
import android.text.InputType
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.TextView
import org.talkinghead.core.CoreException
import org.talkinghead.core.SessionKey

/**
 * One screen: the pre-shared key (64 hex digits, as `python -m sdk live` writes it), the peer, and
 * Receive / Send / Self-test; the avatar below, the counters and the delegate report above it.
 * Platform API only (android.app.Activity): it builds without AndroidX.
 */
class MainActivity : Activity() {
    private lateinit var status: TextView
    private lateinit var avatar: AvatarView
    private lateinit var keyField: EditText
    private lateinit var peerField: EditText
    private val components = Components.load()
    private var receiver: ReceiverLoop? = null
    private var sender: SenderLoop? = null

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        keyField = EditText(this).apply { hint = "session key (64 hex digits)"; inputType = InputType.TYPE_CLASS_TEXT }
        peerField = EditText(this).apply { hint = "receive: port / send: host:port"; setText("47000") }
        status = TextView(this).apply { text = components.missing ?: "ready" }
        avatar = AvatarView(this)
        val buttons = LinearLayout(this).apply {
            orientation = LinearLayout.HORIZONTAL
            addView(button("Receive") { receive() })
            addView(button("Send") { send() })
            addView(button("Self-test") { say(SelfTest.run(assets)) })
            addView(button("Stop") { stopAll() })
        }
        setContentView(LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            addView(keyField)
            addView(peerField)
            addView(buttons)
            addView(status)
            addView(avatar, LinearLayout.LayoutParams(LinearLayout.LayoutParams.MATCH_PARENT, 0, 1f))
        })
    }

    private fun button(label: String, action: () -> Unit) = Button(this).apply {
        text = label
        setOnClickListener { action() }
    }

    private fun say(text: String) = runOnUiThread { status.text = text }

    private fun key(): SessionKey? = try {
        SessionKey.fromHex(keyField.text.toString())
    } catch (bad: CoreException) {
        say("session key: ${bad.message}")
        null
    }

    private fun receive() {
        stopAll()
        val key = key() ?: return
        val port = peerField.text.toString().substringAfterLast(':').toIntOrNull() ?: return say("port: a number")
        val bundle = AppBundle.load(assets)
        val graphs = bundle?.let { components.receiverGraphs(this, it) }
        receiver = ReceiverLoop(port, key, bundle, graphs, avatar, ::say).also { it.start() }
    }

    private fun send() {
        stopAll()
        val key = key() ?: return
        val bundle = AppBundle.load(assets) ?: return say("no model bundle in this APK (python -m export --bundle android)")
        if (checkSelfPermission(Manifest.permission.CAMERA) != PackageManager.PERMISSION_GRANTED) {
            requestPermissions(arrayOf(Manifest.permission.CAMERA), CAMERA_REQUEST)
            return
        }
        val peer = peerField.text.toString()
        val host = peer.substringBeforeLast(':', "")
        val port = peer.substringAfterLast(':').toIntOrNull()
        if (host.isEmpty() || port == null) return say("send: host:port of the receiver")
        val camera = components.camera(this) ?: return say(components.missing ?: "no camera")
        val landmarks = components.landmarks(this) ?: return say(components.missing ?: "no face landmarks")
        val graph = components.senderGraph(this, bundle) ?: return say(components.missing ?: "no sender graph")
        sender = SenderLoop(host, port, key, bundle, camera, landmarks, graph, ::say).also { it.start() }
    }

    override fun onRequestPermissionsResult(requestCode: Int, permissions: Array<out String>, grantResults: IntArray) {
        if (requestCode == CAMERA_REQUEST && grantResults.firstOrNull() == PackageManager.PERMISSION_GRANTED) send()
        else say("the camera permission is needed to send")
    }

    private fun stopAll() {
        receiver?.stop()
        sender?.stop()
        receiver = null
        sender = null
    }

    override fun onPause() {
        super.onPause()
        stopAll()
    }

    companion object {
        private const val CAMERA_REQUEST = 1
    }
}
