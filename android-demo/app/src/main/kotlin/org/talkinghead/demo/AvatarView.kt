package org.talkinghead.demo

import android.content.Context
import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.graphics.Rect
import android.view.SurfaceHolder
import android.view.SurfaceView

/** The receiver's output: rendered avatar frames, or the decoded keypoints where no generator runs. */
class AvatarView(context: Context) : SurfaceView(context), SurfaceHolder.Callback {
    @Volatile private var ready = false
    private var bitmap: Bitmap? = null
    private val target = Rect()
    private val dot = Paint().apply { color = Color.GREEN; isAntiAlias = true }

    init {
        holder.addCallback(this)
    }

    override fun surfaceCreated(holder: SurfaceHolder) { ready = true }
    override fun surfaceChanged(holder: SurfaceHolder, format: Int, width: Int, height: Int) {}
    override fun surfaceDestroyed(holder: SurfaceHolder) { ready = false }

    /** One frame, ARGB side x side, scaled to fit (called from the render thread). */
    fun drawFrame(argb: IntArray, side: Int) {
        val frame = bitmap?.takeIf { it.width == side } ?: Bitmap.createBitmap(side, side, Bitmap.Config.ARGB_8888)
            .also { bitmap = it }
        frame.setPixels(argb, 0, side, 0, 0, side, side)
        draw { canvas ->
            val fit = minOf(canvas.width, canvas.height)
            target.set((canvas.width - fit) / 2, (canvas.height - fit) / 2, (canvas.width + fit) / 2, (canvas.height + fit) / 2)
            canvas.drawColor(Color.BLACK)
            canvas.drawBitmap(frame, null, target, null)
        }
    }

    /** Keypoints in [-1, 1] (x, y pairs), as dots. */
    fun drawKeypoints(keypoints: FloatArray, count: Int) = draw { canvas ->
        val fit = minOf(canvas.width, canvas.height) / 2f
        canvas.drawColor(Color.BLACK)
        for (k in 0 until count) {
            canvas.drawCircle(canvas.width / 2f + keypoints[2 * k] * fit, canvas.height / 2f + keypoints[2 * k + 1] * fit,
                              6f, dot)
        }
    }

    private inline fun draw(paint: (Canvas) -> Unit) {
        if (!ready) return
        val canvas = holder.lockCanvas() ?: return
        try {
            paint(canvas)
        } finally {
            holder.unlockCanvasAndPost(canvas)
        }
    }
}
