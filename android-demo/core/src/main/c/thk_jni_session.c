/* JNI over the core's transport (thk.h: keys, datagrams, the FRAME path) and session start
 * (thk_session.h: both ends of the handshake), for org.talkinghead.core.NativeCore. Needs
 * libsodium; thk_jni.c has the rest. States are direct ByteBuffers owned by the Kotlin side. */
#include <jni.h>

#include <string.h>

#include "thk_session.h"
#include "thk_jni_common.h"

/* A byte range of a Java array copied in (at most `capacity` bytes): 0 when it does not exist. */
static int copy_in(JNIEnv *env, jbyteArray array, jint offset, jint length, uint8_t *out, size_t capacity) {
    if (!array || offset < 0 || length < 0 || (size_t)length > capacity ||
        (jlong)length_of(env, array) < (jlong)offset + length) return 0;
    (*env)->GetByteArrayRegion(env, array, offset, length, (jbyte *)out);
    return 1;
}

static int copy_key(JNIEnv *env, jbyteArray array, uint8_t key[32]) {
    return length_of(env, array) == THK_KEY_BYTES && copy_in(env, array, 0, THK_KEY_BYTES, key, THK_KEY_BYTES);
}

/* The datagram's bytes into `out` and its length into out_length[0]; THK_OK or an error. */
static int copy_out(JNIEnv *env, const uint8_t *bytes, size_t n, jbyteArray out, jintArray out_length) {
    if (length_of(env, out) < (jsize)n) return THK_E_BUFFER;
    if (n) (*env)->SetByteArrayRegion(env, out, 0, (jsize)n, (const jbyte *)bytes);
    jint value = (jint)n;
    (*env)->SetIntArrayRegion(env, out_length, 0, 1, &value);
    return THK_OK;
}

/* Room for one datagram on the C side: a FRAME with three copies, or any session-start datagram. */
#define DATAGRAM_BYTES (THK_PREFIX_BYTES + THK_TAG_BYTES + 1 + THK_MAX_REDUNDANCY * (2 + THK_JITTER_SLOT_BYTES) + \
                        THK_JITTER_SLOT_BYTES)

JNIEXPORT jboolean FN(hasTransport)(JNIEnv *env, jclass cls) { (void)env; (void)cls; return JNI_TRUE; }

JNIEXPORT jint FN(sessionStructSize)(JNIEnv *env, jclass cls, jint which) {
    (void)env; (void)cls;
    return (jint)thk_session_struct_size(which);
}

JNIEXPORT jint FN(cryptoInit)(JNIEnv *env, jclass cls) { (void)env; (void)cls; return thk_crypto_init(); }

/* ---- keys and datagrams -------------------------------------------------------------------------- */
JNIEXPORT jint FN(deriveSessionKeys)(JNIEnv *env, jclass cls, jbyteArray secret, jbyteArray sender_salt,
                                     jbyteArray receiver_salt, jbyteArray forward, jbyteArray backward) {
    (void)cls;
    jsize n = length_of(env, secret);
    uint8_t key[64], salt_s[16], salt_r[16], f[32], b[32];
    if (n < 0 || n > (jsize)sizeof key || length_of(env, sender_salt) != 16 || length_of(env, receiver_salt) != 16 ||
        length_of(env, forward) != 32 || length_of(env, backward) != 32) return THK_E_ARGUMENT;
    copy_in(env, secret, 0, n, key, sizeof key);
    copy_in(env, sender_salt, 0, 16, salt_s, 16);
    copy_in(env, receiver_salt, 0, 16, salt_r, 16);
    int status = thk_derive_session_keys(key, (size_t)n, salt_s, salt_r, f, b);
    if (status == THK_OK) {
        (*env)->SetByteArrayRegion(env, forward, 0, 32, (const jbyte *)f);
        (*env)->SetByteArrayRegion(env, backward, 0, 32, (const jbyte *)b);
    }
    return status;
}

JNIEXPORT jint FN(deriveHelloKey)(JNIEnv *env, jclass cls, jbyteArray secret, jbyteArray sender_salt, jbyteArray out) {
    (void)cls;
    jsize n = length_of(env, secret);
    uint8_t key[64], salt[16], hello[32];
    if (n < 0 || n > (jsize)sizeof key || length_of(env, sender_salt) != 16 || length_of(env, out) != 32)
        return THK_E_ARGUMENT;
    copy_in(env, secret, 0, n, key, sizeof key);
    copy_in(env, sender_salt, 0, 16, salt, 16);
    int status = thk_derive_hello_key(key, (size_t)n, salt, hello);
    if (status == THK_OK) (*env)->SetByteArrayRegion(env, out, 0, 32, (const jbyte *)hello);
    return status;
}

/* A whole datagram into out; returns its length or an error. salt: HELLO and CHALLENGE only. */
JNIEXPORT jint FN(datagramSeal)(JNIEnv *env, jclass cls, jbyteArray key, jint type, jint session_id, jint number,
                                jbyteArray salt, jbyteArray plaintext, jint length, jbyteArray out) {
    (void)cls;
    uint8_t k[32], s[16];
    if (!copy_key(env, key, k) || (salt && (length_of(env, salt) != 16 || !copy_in(env, salt, 0, 16, s, 16))) ||
        length < 0 || length_of(env, plaintext) < length || !out) return THK_E_ARGUMENT;
    jsize capacity = length_of(env, out);
    jbyte *text = (*env)->GetPrimitiveArrayCritical(env, plaintext, NULL);
    jbyte *sealed = text ? (*env)->GetPrimitiveArrayCritical(env, out, NULL) : NULL;
    size_t written = 0;
    int status = !sealed ? THK_E_ARGUMENT
                 : thk_datagram_seal(k, type, (uint32_t)session_id, (uint32_t)number, salt ? s : NULL,
                                     (const uint8_t *)text, (size_t)length, (uint8_t *)sealed, (size_t)capacity,
                                     &written);
    if (sealed) (*env)->ReleasePrimitiveArrayCritical(env, out, sealed, status == THK_OK ? 0 : JNI_ABORT);
    if (text) (*env)->ReleasePrimitiveArrayCritical(env, plaintext, text, JNI_ABORT);
    return status ? status : (jint)written;
}

/* ---- the FRAME path of one session (thk_frame_receiver) ------------------------------------------ */
JNIEXPORT jint FN(frameReceiverInit)(JNIEnv *env, jclass cls, jobject buffer, jbyteArray forward_key, jint session_id,
                                     jdouble gap_wait_s, jint capacity) {
    (void)cls;
    thk_frame_receiver *r = state(env, buffer, sizeof(thk_frame_receiver));
    uint8_t key[32];
    if (!r) return THK_E_ARGUMENT;
    if (!copy_key(env, forward_key, key)) return THK_E_KEY_LENGTH;
    return thk_frame_receiver_init(r, key, (uint32_t)session_id, gap_wait_s, capacity);
}

JNIEXPORT jint FN(frameReceiverHandle)(JNIEnv *env, jclass cls, jobject buffer, jbyteArray data, jint offset,
                                       jint length, jdouble now) {
    (void)cls;
    thk_frame_receiver *r = state(env, buffer, sizeof(thk_frame_receiver));
    static uint8_t unused;
    if (!r || !data || offset < 0 || length < 0 || (jlong)length_of(env, data) < (jlong)offset + length)
        return THK_E_ARGUMENT;
    jbyte *bytes = (*env)->GetPrimitiveArrayCritical(env, data, NULL);
    if (!bytes) return THK_E_ARGUMENT;
    int status = thk_frame_receiver_handle(r, length ? (const uint8_t *)bytes + offset : &unused, (size_t)length, now);
    (*env)->ReleasePrimitiveArrayCritical(env, data, bytes, JNI_ABORT);
    return status;
}

/* 1 and the packet in out (its length in out_length[0]) when one is due, 0 when none, or an error. */
JNIEXPORT jint FN(frameReceiverPop)(JNIEnv *env, jclass cls, jobject buffer, jdouble now, jbyteArray out,
                                    jintArray out_length) {
    (void)cls;
    thk_frame_receiver *r = state(env, buffer, sizeof(thk_frame_receiver));
    uint8_t packet[THK_JITTER_SLOT_BYTES];
    size_t n = 0;
    if (!r || !out || length_of(env, out_length) < 1) return THK_E_ARGUMENT;
    int status = thk_frame_receiver_pop(r, now, packet, sizeof packet, &n);
    if (status != 1) return status;
    int copied = copy_out(env, packet, n, out, out_length);
    return copied ? copied : 1;
}

/* received, recovered, delivered, duplicates, too_old, forged, truncated, garbage, other_session,
 * malformed, then the jitter buffer's lost, reordered, late, overflow, duplicates, oversized */
JNIEXPORT jint FN(frameReceiverStats)(JNIEnv *env, jclass cls, jobject buffer, jlongArray out) {
    (void)cls;
    const thk_frame_receiver *r = state(env, buffer, sizeof(thk_frame_receiver));
    if (!r || length_of(env, out) < 16) return THK_E_ARGUMENT;
    const thk_receiver_stats *s = &r->stats;
    const thk_jitter_counts *j = &r->jitter.counts;
    jlong v[16] = {(jlong)s->received, (jlong)s->recovered, (jlong)s->delivered, (jlong)s->duplicates,
                   (jlong)s->too_old, (jlong)s->forged, (jlong)s->truncated, (jlong)s->garbage,
                   (jlong)s->other_session, (jlong)s->malformed, (jlong)j->lost, (jlong)j->reordered,
                   (jlong)j->late, (jlong)j->overflow, (jlong)j->duplicates, (jlong)j->oversized};
    (*env)->SetLongArrayRegion(env, out, 0, 16, v);
    return THK_OK;
}

/* ---- receiver: handshake, session start, frames (thk_receiver) ----------------------------------- */
JNIEXPORT jint FN(receiverInit)(JNIEnv *env, jclass cls, jobject buffer, jbyteArray secret, jobject blob,
                                jdouble gap_wait_s, jint capacity) {
    (void)cls;
    thk_receiver *r = state(env, buffer, sizeof(thk_receiver));
    uint8_t *bytes = blob ? (*env)->GetDirectBufferAddress(env, blob) : NULL;
    jlong blob_capacity = blob ? (*env)->GetDirectBufferCapacity(env, blob) : -1;
    jsize n = length_of(env, secret);
    uint8_t key[64];
    if (!r || !bytes || blob_capacity < 5 || n < 0 || n > (jsize)sizeof key) return THK_E_ARGUMENT;
    copy_in(env, secret, 0, n, key, sizeof key);
    return thk_receiver_init(r, key, (size_t)n, bytes, (size_t)blob_capacity, gap_wait_s, capacity);
}

/* THK_OK, THK_STARTED or why the datagram was dropped; a reply to send back goes to `reply`, its
 * length to reply_length[0] (0: none). */
JNIEXPORT jint FN(receiverHandle)(JNIEnv *env, jclass cls, jobject buffer, jbyteArray data, jint offset, jint length,
                                  jdouble now, jbyteArray reply, jintArray reply_length) {
    (void)cls;
    thk_receiver *r = state(env, buffer, sizeof(thk_receiver));
    static uint8_t unused;
    if (!r || !data || offset < 0 || length < 0 || (jlong)length_of(env, data) < (jlong)offset + length ||
        length_of(env, reply) < THK_SESSION_DATAGRAM_BYTES || length_of(env, reply_length) < 1) return THK_E_ARGUMENT;
    uint8_t out[THK_SESSION_DATAGRAM_BYTES];
    size_t n = 0;
    jbyte *bytes = (*env)->GetPrimitiveArrayCritical(env, data, NULL);
    if (!bytes) return THK_E_ARGUMENT;
    int status = thk_receiver_handle(r, length ? (const uint8_t *)bytes + offset : &unused, (size_t)length, now, out,
                                     sizeof out, &n);
    (*env)->ReleasePrimitiveArrayCritical(env, data, bytes, JNI_ABORT);
    int copied = copy_out(env, out, n, reply, reply_length);
    return copied ? copied : status;
}

/* session id, header offset and length in the blob buffer, portrait offset (-1: none) and length, active */
JNIEXPORT jint FN(receiverStarted)(JNIEnv *env, jclass cls, jobject buffer, jlongArray out) {
    (void)cls;
    const thk_receiver *r = state(env, buffer, sizeof(thk_receiver));
    if (!r || length_of(env, out) < 6) return THK_E_ARGUMENT;
    thk_session_start start;
    int status = thk_receiver_started(r, &start);
    if (status) return status;
    jlong v[6] = {(jlong)start.session_id, (jlong)(start.header - r->blob), (jlong)start.header_length,
                  start.portrait ? (jlong)(start.portrait - r->blob) : -1, (jlong)start.portrait_length, start.active};
    (*env)->SetLongArrayRegion(env, out, 0, 6, v);
    return THK_OK;
}

JNIEXPORT jint FN(receiverActivateWaiting)(JNIEnv *env, jclass cls, jobject buffer) {
    (void)cls;
    thk_receiver *r = state(env, buffer, sizeof(thk_receiver));
    return r ? thk_receiver_activate_waiting(r) : THK_E_ARGUMENT;
}

JNIEXPORT jint FN(receiverPop)(JNIEnv *env, jclass cls, jobject buffer, jdouble now, jbyteArray out,
                               jintArray out_length) {
    (void)cls;
    thk_receiver *r = state(env, buffer, sizeof(thk_receiver));
    uint8_t packet[THK_JITTER_SLOT_BYTES];
    size_t n = 0;
    if (!r || !out || length_of(env, out_length) < 1) return THK_E_ARGUMENT;
    int status = thk_receiver_pop(r, now, packet, sizeof packet, &n);
    if (status != 1) return status;
    int copied = copy_out(env, packet, n, out, out_length);
    return copied ? copied : 1;
}

/* 1 and out[0] = when the current gap wait ends, 0 when nothing waits on a gap */
JNIEXPORT jint FN(receiverGapDeadline)(JNIEnv *env, jclass cls, jobject buffer, jdoubleArray out) {
    (void)cls;
    const thk_receiver *r = state(env, buffer, sizeof(thk_receiver));
    if (!r || length_of(env, out) < 1) return THK_E_ARGUMENT;
    double deadline = 0;
    int status = thk_receiver_gap_deadline(r, &deadline);
    if (status == 1) (*env)->SetDoubleArrayRegion(env, out, 0, 1, &deadline);
    return status;
}

/* bit 0: an active session, bit 1: its sender said BYE, bit 2: a session waits */
JNIEXPORT jint FN(receiverState)(JNIEnv *env, jclass cls, jobject buffer) {
    (void)cls;
    const thk_receiver *r = state(env, buffer, sizeof(thk_receiver));
    if (!r) return THK_E_ARGUMENT;
    return thk_receiver_has_session(r) | thk_receiver_peer_closed(r) << 1 | (r->waiting.used ? 4 : 0);
}

/* thk_receiver_counts in its order (17 values) */
JNIEXPORT jint FN(receiverCounts)(JNIEnv *env, jclass cls, jobject buffer, jlongArray out) {
    (void)cls;
    const thk_receiver *r = state(env, buffer, sizeof(thk_receiver));
    enum { N = sizeof(thk_receiver_counts) / sizeof(uint64_t) };
    if (!r || length_of(env, out) < N) return THK_E_ARGUMENT;
    thk_receiver_counts counts;
    thk_receiver_counts_get(r, &counts);
    const uint64_t *c = &counts.received;
    jlong v[N];
    for (int i = 0; i < N; i++) v[i] = (jlong)c[i];
    (*env)->SetLongArrayRegion(env, out, 0, N, v);
    return THK_OK;
}

/* ---- sender (thk_sender) ------------------------------------------------------------------------- */
/* The session-start blob into a direct buffer; returns its length or an error. */
JNIEXPORT jint FN(startBlobWrite)(JNIEnv *env, jclass cls, jbyteArray header, jbyteArray portrait, jobject blob) {
    (void)cls;
    uint8_t *out = blob ? (*env)->GetDirectBufferAddress(env, blob) : NULL;
    jlong capacity = blob ? (*env)->GetDirectBufferCapacity(env, blob) : -1;
    jsize header_length = length_of(env, header), portrait_length = portrait ? length_of(env, portrait) : 0;
    if (!out || header_length < 0 || capacity < 0) return THK_E_ARGUMENT;
    jbyte *h = (*env)->GetPrimitiveArrayCritical(env, header, NULL);
    jbyte *p = portrait ? (*env)->GetPrimitiveArrayCritical(env, portrait, NULL) : NULL;
    size_t written = 0;
    int status = !h || (portrait && !p) ? THK_E_ARGUMENT
                 : thk_start_blob_write((const uint8_t *)h, (size_t)header_length, (const uint8_t *)p,
                                        (size_t)portrait_length, out, (size_t)capacity, &written);
    if (p) (*env)->ReleasePrimitiveArrayCritical(env, portrait, p, JNI_ABORT);
    if (h) (*env)->ReleasePrimitiveArrayCritical(env, header, h, JNI_ABORT);
    return status ? status : (jint)written;
}

JNIEXPORT jint FN(senderInit)(JNIEnv *env, jclass cls, jobject buffer, jbyteArray secret, jint redundancy,
                              jdouble retransmit_s) {
    (void)cls;
    thk_sender *s = state(env, buffer, sizeof(thk_sender));
    jsize n = length_of(env, secret);
    uint8_t key[64];
    if (!s || n < 0 || n > (jsize)sizeof key) return THK_E_ARGUMENT;
    copy_in(env, secret, 0, n, key, sizeof key);
    return thk_sender_init(s, key, (size_t)n, redundancy, retransmit_s);
}

/* session_id < 0 / salt NULL: drawn at random */
JNIEXPORT jint FN(senderStart)(JNIEnv *env, jclass cls, jobject buffer, jobject blob, jint blob_length,
                               jlong session_id, jbyteArray salt, jdouble now) {
    (void)cls;
    thk_sender *s = state(env, buffer, sizeof(thk_sender));
    const uint8_t *bytes = blob ? (*env)->GetDirectBufferAddress(env, blob) : NULL;
    jlong capacity = blob ? (*env)->GetDirectBufferCapacity(env, blob) : -1;
    uint8_t salt_bytes[16];
    if (!s || !bytes || blob_length < 0 || blob_length > capacity || session_id > 0xFFFFFFFFLL ||
        (salt && (length_of(env, salt) != 16 || !copy_in(env, salt, 0, 16, salt_bytes, 16)))) return THK_E_ARGUMENT;
    uint32_t id = (uint32_t)session_id;
    return thk_sender_start(s, bytes, (size_t)blob_length, session_id >= 0 ? &id : NULL, salt ? salt_bytes : NULL, now);
}

JNIEXPORT jint FN(senderPoll)(JNIEnv *env, jclass cls, jobject buffer, jdouble now, jbyteArray out,
                              jintArray out_length) {
    (void)cls;
    thk_sender *s = state(env, buffer, sizeof(thk_sender));
    uint8_t datagram[THK_SESSION_DATAGRAM_BYTES];
    size_t n = 0;
    if (!s || !out || length_of(env, out_length) < 1) return THK_E_ARGUMENT;
    int status = thk_sender_poll(s, now, datagram, sizeof datagram, &n);
    if (status != 1) return status;
    int copied = copy_out(env, datagram, n, out, out_length);
    return copied ? copied : 1;
}

JNIEXPORT jint FN(senderDeadline)(JNIEnv *env, jclass cls, jobject buffer, jdoubleArray out) {
    (void)cls;
    const thk_sender *s = state(env, buffer, sizeof(thk_sender));
    if (!s || length_of(env, out) < 1) return THK_E_ARGUMENT;
    double deadline = 0;
    int status = thk_sender_deadline(s, &deadline);
    if (status == 1) (*env)->SetDoubleArrayRegion(env, out, 0, 1, &deadline);
    return status;
}

JNIEXPORT jint FN(senderHandle)(JNIEnv *env, jclass cls, jobject buffer, jbyteArray data, jint offset, jint length) {
    (void)cls;
    thk_sender *s = state(env, buffer, sizeof(thk_sender));
    static uint8_t unused;
    if (!s || !data || offset < 0 || length < 0 || (jlong)length_of(env, data) < (jlong)offset + length)
        return THK_E_ARGUMENT;
    jbyte *bytes = (*env)->GetPrimitiveArrayCritical(env, data, NULL);
    if (!bytes) return THK_E_ARGUMENT;
    int status = thk_sender_handle(s, length ? (const uint8_t *)bytes + offset : &unused, (size_t)length);
    (*env)->ReleasePrimitiveArrayCritical(env, data, bytes, JNI_ABORT);
    return status;
}

/* The FRAME datagram for one codec packet into out; returns its length or an error. */
JNIEXPORT jint FN(senderFrame)(JNIEnv *env, jclass cls, jobject buffer, jbyteArray packet, jint offset, jint length,
                               jbyteArray out) {
    (void)cls;
    thk_sender *s = state(env, buffer, sizeof(thk_sender));
    uint8_t bytes[THK_JITTER_SLOT_BYTES], datagram[DATAGRAM_BYTES];
    if (!s) return THK_E_ARGUMENT;
    if (length > THK_JITTER_SLOT_BYTES) return THK_E_OVERSIZED;
    if (!copy_in(env, packet, offset, length, bytes, sizeof bytes)) return THK_E_ARGUMENT;
    size_t n = 0;
    int status = thk_sender_frame(s, bytes, (size_t)length, datagram, sizeof datagram, &n);
    if (status) return status;
    if (length_of(env, out) < (jsize)n) return THK_E_BUFFER;
    (*env)->SetByteArrayRegion(env, out, 0, (jsize)n, (const jbyte *)datagram);
    return (jint)n;
}

JNIEXPORT jint FN(senderBye)(JNIEnv *env, jclass cls, jobject buffer, jbyteArray out) {
    (void)cls;
    thk_sender *s = state(env, buffer, sizeof(thk_sender));
    uint8_t datagram[64];
    size_t n = 0;
    if (!s) return THK_E_ARGUMENT;
    int status = thk_sender_bye(s, datagram, sizeof datagram, &n);
    if (status) return status;
    if (length_of(env, out) < (jsize)n) return THK_E_BUFFER;
    (*env)->SetByteArrayRegion(env, out, 0, (jsize)n, (const jbyte *)datagram);
    return (jint)n;
}

/* frames_sent, frame_bytes, wire_bytes, hellos_sent, start_chunks_sent, start_retransmits,
 * sessions_started, dropped, then the state (THK_SENDER_*) */
JNIEXPORT jint FN(senderStats)(JNIEnv *env, jclass cls, jobject buffer, jlongArray out) {
    (void)cls;
    const thk_sender *s = state(env, buffer, sizeof(thk_sender));
    if (!s || length_of(env, out) < 9) return THK_E_ARGUMENT;
    const thk_sender_stats *t = &s->stats;
    jlong v[9] = {(jlong)t->frames_sent, (jlong)t->frame_bytes, (jlong)t->wire_bytes, (jlong)t->hellos_sent,
                  (jlong)t->start_chunks_sent, (jlong)t->start_retransmits, (jlong)t->sessions_started,
                  (jlong)t->dropped, s->state};
    (*env)->SetLongArrayRegion(env, out, 0, 9, v);
    return THK_OK;
}
