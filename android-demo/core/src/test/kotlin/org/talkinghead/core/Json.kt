package org.talkinghead.core

import java.io.File

/** A small JSON reader for the golden files (objects -> Map, arrays -> List, numbers -> Double). */
internal class Json private constructor(private val text: String) {
    private var at = 0

    private fun value(): Any? {
        space()
        return when (val c = text[at]) {
            '{' -> obj()
            '[' -> array()
            '"' -> string()
            't' -> literal("true", true)
            'f' -> literal("false", false)
            'n' -> literal("null", null)
            else -> if (c == '-' || c.isDigit()) number() else error("JSON: unexpected '$c' at $at")
        }
    }

    private fun obj(): Map<String, Any?> {
        val out = LinkedHashMap<String, Any?>()
        at++
        space()
        if (text[at] == '}') return out.also { at++ }
        while (true) {
            space()
            val key = string()
            space(); expect(':')
            out[key] = value()
            space()
            if (text[at++] == '}') return out
        }
    }

    private fun array(): List<Any?> {
        val out = ArrayList<Any?>()
        at++
        space()
        if (text[at] == ']') return out.also { at++ }
        while (true) {
            out.add(value())
            space()
            if (text[at++] == ']') return out
        }
    }

    private fun string(): String {
        expect('"')
        val out = StringBuilder()
        while (true) {
            val c = text[at++]
            when (c) {
                '"' -> return out.toString()
                '\\' -> {
                    when (val e = text[at++]) {
                        'n' -> out.append('\n'); 't' -> out.append('\t'); 'r' -> out.append('\r')
                        'b' -> out.append('\b'); 'f' -> out.append('\u000c')
                        'u' -> out.append(text.substring(at, at + 4).toInt(16).toChar()).also { at += 4 }
                        else -> out.append(e)
                    }
                }
                else -> out.append(c)
            }
        }
    }

    private fun number(): Double {
        val start = at
        while (at < text.length && (text[at].isDigit() || text[at] in "+-.eE")) at++
        return text.substring(start, at).toDouble()
    }

    private fun literal(word: String, result: Any?): Any? {
        check(text.startsWith(word, at)) { "JSON: bad literal at $at" }
        at += word.length
        return result
    }

    private fun expect(c: Char) {
        check(text[at] == c) { "JSON: expected '$c' at $at" }
        at++
    }

    private fun space() {
        while (at < text.length && text[at].isWhitespace()) at++
    }

    companion object {
        fun parse(text: String): Any? = Json(text).value()

        /** tests/golden/NAME (THK_GOLDEN, set by build-here.sh). */
        @Suppress("UNCHECKED_CAST")
        fun golden(name: String): Map<String, Any?> {
            val directory = System.getenv("THK_GOLDEN") ?: error("THK_GOLDEN: the tests/golden folder")
            return parse(File(directory, name).readText()) as Map<String, Any?>
        }
    }
}

@Suppress("UNCHECKED_CAST")
internal fun Any?.list(): List<Any?> = this as List<Any?>

@Suppress("UNCHECKED_CAST")
internal fun Any?.obj(): Map<String, Any?> = this as Map<String, Any?>

internal fun Any?.num(): Double = this as Double

/** A nested list of numbers, flattened. */
internal fun Any?.flat(): List<Double> = when (this) {
    is List<*> -> this.flatMap { it.flat() }
    else -> listOf(this.num())
}

internal fun Any?.floats(): FloatArray = flat().map { it.toFloat() }.toFloatArray()

internal fun hexBytes(text: String): ByteArray = ByteArray(text.length / 2) { text.substring(2 * it, 2 * it + 2).toInt(16).toByte() }

internal fun ByteArray.hex(length: Int = size): String = (0 until length).joinToString("") { "%02x".format(this[it]) }
