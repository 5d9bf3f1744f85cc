package org.talkinghead.core.tools

/** Hex of bytes, and of float32 bit patterns: the tools' exact, language-neutral output. */
internal fun hex(bytes: ByteArray, length: Int = bytes.size): String {
    val out = StringBuilder(2 * length)
    for (i in 0 until length) {
        val v = bytes[i].toInt() and 0xFF
        out.append(DIGITS[v shr 4]).append(DIGITS[v and 15])
    }
    return out.toString()
}

internal fun unhex(text: String): ByteArray = ByteArray(text.length / 2) {
    (Character.digit(text[2 * it], 16) shl 4 or Character.digit(text[2 * it + 1], 16)).toByte()
}

internal fun floatBits(values: FloatArray, count: Int = values.size): String =
    (0 until count).joinToString(",") { String.format("%08x", java.lang.Float.floatToRawIntBits(values[it])) }

private val DIGITS = "0123456789abcdef".toCharArray()
