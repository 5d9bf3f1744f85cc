package org.talkinghead.demo.full

import android.content.Context
import android.graphics.Bitmap
import com.google.mediapipe.framework.image.BitmapImageBuilder
import com.google.mediapipe.tasks.core.BaseOptions
import com.google.mediapipe.tasks.vision.core.RunningMode
import com.google.mediapipe.tasks.vision.facelandmarker.FaceLandmarker
import org.talkinghead.demo.CameraFrame
import org.talkinghead.demo.FaceLandmarks

/**
 * MediaPipe Tasks' face landmarker (the 478-point mesh the SDK's tracker uses) in video mode on
 * each frame; the model file `face_landmarker.task` is in the app's assets (the workflow fetches it).
 */
class MediaPipeLandmarks(context: Context) : FaceLandmarks {
    private val landmarker = FaceLandmarker.createFromOptions(
        context,
        FaceLandmarker.FaceLandmarkerOptions.builder()
            .setBaseOptions(BaseOptions.builder().setModelAssetPath(MODEL).build())
            .setRunningMode(RunningMode.VIDEO)
            .setNumFaces(1)
            .build())
    private var lastMs = -1L

    override fun detect(frame: CameraFrame): FloatArray? {
        val bitmap = Bitmap.createBitmap(frame.argb, frame.width, frame.height, Bitmap.Config.ARGB_8888)
        val timeMs = maxOf(lastMs + 1, frame.timestampNs / 1_000_000)  // video mode needs increasing times
        lastMs = timeMs
        val faces = landmarker.detectForVideo(BitmapImageBuilder(bitmap).build(), timeMs).faceLandmarks()
        val mesh = faces.firstOrNull() ?: return null
        val out = FloatArray(2 * mesh.size)
        for ((i, point) in mesh.withIndex()) {
            out[2 * i] = point.x() * frame.width
            out[2 * i + 1] = point.y() * frame.height
        }
        return out
    }

    override fun close() = landmarker.close()

    companion object {
        const val MODEL = "face_landmarker.task"
    }
}
