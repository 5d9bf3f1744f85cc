package org.talkinghead.demo.full

import android.app.Activity
import android.content.Context
import org.talkinghead.demo.AppBundle
import org.talkinghead.demo.Components
import org.talkinghead.demo.FaceLandmarks
import org.talkinghead.demo.FrameSource
import org.talkinghead.demo.ReceiverGraphs
import org.talkinghead.demo.SenderGraph

/**
 * The Gradle build's parts (Google's Maven libraries): CameraX capture, MediaPipe Tasks face
 * landmarks, LiteRT graphs. Found by name by `Components.load()`; absent from the platform-only APK.
 */
class FullComponents : Components {
    override val missing: String? = null
    override fun camera(activity: Activity): FrameSource = CameraXSource(activity)
    override fun landmarks(context: Context): FaceLandmarks = MediaPipeLandmarks(context)
    override fun senderGraph(context: Context, bundle: AppBundle): SenderGraph = LiteRtSenderGraph(context, bundle)
    override fun receiverGraphs(context: Context, bundle: AppBundle): ReceiverGraphs = LiteRtReceiverGraphs(context, bundle)
}
