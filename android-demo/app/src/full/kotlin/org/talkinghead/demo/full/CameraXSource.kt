package org.talkinghead.demo.full

import android.app.Activity
import android.graphics.Bitmap
import android.graphics.Matrix
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.lifecycle.Lifecycle
import androidx.lifecycle.LifecycleOwner
import androidx.lifecycle.LifecycleRegistry
import org.talkinghead.demo.CameraFrame
import org.talkinghead.demo.FrameSource
import java.util.concurrent.Executors

/**
 * The front camera through CameraX's ImageAnalysis (RGBA, the newest frame only: a slow sender
 * drops frames instead of queueing them), each frame rotated upright by its rotationDegrees and
 * mirrored, so the driver sees (and sends) themselves as in a mirror, as the SDK's webcam capture does.
 */
class CameraXSource(private val activity: Activity) : FrameSource {
    /** CameraX binds to a lifecycle; the platform Activity has none, so this one follows start / stop. */
    private class Owner : LifecycleOwner {
        val registry = LifecycleRegistry(this)
        override val lifecycle: Lifecycle get() = registry
    }

    private val owner = Owner()
    private val executor = Executors.newSingleThreadExecutor()
    private var provider: ProcessCameraProvider? = null

    override fun start(onFrame: (CameraFrame) -> Unit) {
        val future = ProcessCameraProvider.getInstance(activity)
        future.addListener({
            val cameras = future.get()
            provider = cameras
            val analysis = ImageAnalysis.Builder()
                .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                .build()
            analysis.setAnalyzer(executor) { image -> image.use { onFrame(upright(it)) } }
            owner.registry.currentState = Lifecycle.State.RESUMED
            cameras.unbindAll()
            cameras.bindToLifecycle(owner, CameraSelector.DEFAULT_FRONT_CAMERA, analysis)
        }, { task -> activity.runOnUiThread(task) })  // the main thread (Context.getMainExecutor needs API 28)
    }

    private fun upright(image: ImageProxy): CameraFrame {
        val matrix = Matrix().apply {
            postRotate(image.imageInfo.rotationDegrees.toFloat())
            postScale(-1f, 1f)  // front camera: mirrored
        }
        val raw = image.toBitmap()
        val bitmap = Bitmap.createBitmap(raw, 0, 0, raw.width, raw.height, matrix, true)
        val argb = IntArray(bitmap.width * bitmap.height)
        bitmap.getPixels(argb, 0, bitmap.width, 0, 0, bitmap.width, bitmap.height)
        return CameraFrame(bitmap.width, bitmap.height, argb, image.imageInfo.timestamp)
    }

    override fun stop() {
        activity.runOnUiThread {
            provider?.unbindAll()
            owner.registry.currentState = Lifecycle.State.CREATED
        }
        executor.shutdown()
    }
}
