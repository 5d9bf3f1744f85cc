package org.talkinghead.core

/**
 * The native core's status codes (`thk_status` in native/include/thk.h), one to one.
 *
 * Per-packet and per-datagram outcomes (a stale packet, a forged datagram) are returned as a
 * [CoreStatus]: they are what a network does, counted, never thrown. Misuse and bad
 * configuration (a malformed stream header, a key of the wrong length, NaN in a code) throw a
 * [CoreException] carrying the status.
 */
enum class CoreStatus(val code: Int) {
    OK(0),
    /** Not an error: a session start completed ([SessionReceiver.handle], [SessionSender.handle]). */
    STARTED(1),
    ARGUMENT(-1), BUFFER(-2),
    HEADER_LENGTH(-10), HEADER_MAGIC(-11), HEADER_VERSION(-12), HEADER_KIND(-13), HEADER_CRC(-14),
    HEADER_FIELD(-15), WRONG_KIND(-16), PRIOR_MISMATCH(-17),
    MALFORMED(-20), MISSING_REFERENCE(-21), STALE(-22),
    NOT_FINITE(-30), TIMESTAMP(-31),
    KEY_LENGTH(-40), TRUNCATED(-41), GARBAGE(-42), FORGED(-43), DUPLICATE(-44), TOO_OLD(-45),
    OTHER_SESSION(-46), FRAME_MALFORMED(-47), OVERSIZED(-48), CRYPTO_INIT(-49),
    SINGULAR(-60), DEGENERATE_HULL(-61),
    /** A code this binding does not know (a newer core): a bug to report, never silently OK. */
    UNKNOWN(Int.MIN_VALUE);

    val isError: Boolean get() = code < 0

    companion object {
        private val byCode: Map<Int, CoreStatus> = values().associateBy { it.code }

        /** The status of a native return value; values >= 0 other than 1 are lengths or counts: OK. */
        fun of(code: Int): CoreStatus = if (code >= 0 && code != 1) OK else byCode[code] ?: UNKNOWN
    }
}

/** A call the core refused: misuse or configuration, with the core's [status]. */
class CoreException(val status: CoreStatus, message: String) : RuntimeException("$message (${status.name})")

/** [code] when it is not an error, else a [CoreException] saying [what] failed. */
internal fun checked(code: Int, what: String): Int {
    if (code < 0) throw CoreException(CoreStatus.of(code), what)
    return code
}
