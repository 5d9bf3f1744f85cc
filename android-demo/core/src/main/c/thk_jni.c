/* JNI over native/include/thk.h: the code stream (headers, decoder, encoder) and the receiver-side
 * motion, for org.talkinghead.core.NativeCore. Needs nothing but the JNI function table and
 * memcpy: it builds freestanding for Android (android-demo/build-here.sh android-so).
 *
 * Every state is a direct ByteBuffer the Kotlin side allocates (thk_struct_size bytes, 8-byte
 * aligned): nothing here allocates. Arrays are checked against the sizes the call needs before
 * the core sees them; a call that cannot be made returns THK_E_ARGUMENT, never crashes. */
#include <jni.h>

#include <string.h>

#include "thk.h"
#include "thk_jni_common.h"

/* Whether `array` has at least `need` elements (a NULL array passes when `optional`). Checked for
 * every array of a call before any is pinned: no other JNI call may happen while one is. */
static int fits(JNIEnv *env, jarray array, jsize need, int optional) {
    return array ? (*env)->GetArrayLength(env, array) >= need : optional;
}

static void *pin(JNIEnv *env, jarray array, int *ok) {
    if (!array) return NULL;
    void *pinned = (*env)->GetPrimitiveArrayCritical(env, array, NULL);
    if (!pinned) *ok = 0;  /* out of memory: the call fails, the others are released */
    return pinned;
}

static void unpin(JNIEnv *env, jarray array, void *pinned, int write) {
    if (array && pinned) (*env)->ReleasePrimitiveArrayCritical(env, array, pinned, write ? 0 : JNI_ABORT);
}

/* ---- sizes and names ----------------------------------------------------------------------------- */
JNIEXPORT jint FN(structSize)(JNIEnv *env, jclass cls, jint which) {
    (void)env; (void)cls;
    return (jint)thk_struct_size(which);
}

JNIEXPORT jstring FN(statusName)(JNIEnv *env, jclass cls, jint status) {
    (void)cls;
    return (*env)->NewStringUTF(env, thk_status_name(status));
}

/* ---- stream header ------------------------------------------------------------------------------- */
/* fields: kind, reference, resolution, fps_millihertz, keyframe_interval, hysteresis256, num_kp,
 * extra_dims, jacobians, kp_step, jac_step, extra_step, expression_dims, pose_steps[6],
 * expression_step, code values (read only): HeaderField in Kotlin. */
#define HEADER_FIELDS 21

JNIEXPORT jint FN(headerParse)(JNIEnv *env, jclass cls, jobject header_buffer, jbyteArray data, jint offset,
                               jint length) {
    (void)cls;
    thk_header *header = state(env, header_buffer, sizeof(thk_header));
    if (!header || offset < 0 || length < 0 || length_of(env, data) < (jlong)offset + length) return THK_E_ARGUMENT;
    int ok = 1;
    jbyte *bytes = pin(env, data, &ok);
    int status = ok ? thk_header_parse(header, (const uint8_t *)bytes + offset, (size_t)length) : THK_E_ARGUMENT;
    unpin(env, data, bytes, 0);
    return status;
}

JNIEXPORT jint FN(headerFields)(JNIEnv *env, jclass cls, jobject header_buffer, jlongArray out) {
    (void)cls;
    const thk_header *h = state(env, header_buffer, sizeof(thk_header));
    if (!h || length_of(env, out) < HEADER_FIELDS) return THK_E_ARGUMENT;
    jlong f[HEADER_FIELDS] = {h->kind, h->reference, h->resolution, h->fps_millihertz, h->keyframe_interval,
                              h->hysteresis256, h->num_kp, h->extra_dims, h->jacobians, h->kp_step, h->jac_step,
                              h->extra_step, h->expression_dims, h->pose_steps[0], h->pose_steps[1], h->pose_steps[2],
                              h->pose_steps[3], h->pose_steps[4], h->pose_steps[5], h->expression_step,
                              thk_code_values(h)};
    (*env)->SetLongArrayRegion(env, out, 0, HEADER_FIELDS, f);
    return THK_OK;
}

/* which: 0 the model id (UTF-8), 1 the model hash prefix, 2 the prior hash prefix; returns the length. */
JNIEXPORT jint FN(headerBytes)(JNIEnv *env, jclass cls, jobject header_buffer, jint which, jbyteArray out) {
    (void)cls;
    const thk_header *h = state(env, header_buffer, sizeof(thk_header));
    if (!h || which < 0 || which > 2) return THK_E_ARGUMENT;
    const uint8_t *bytes = which == 0 ? (const uint8_t *)h->model_id : which == 1 ? h->model_sha_prefix
                                                                                  : h->prior_sha_prefix;
    jint n = which == 0 ? (jint)h->model_id_length : 8;
    if (length_of(env, out) < n) return THK_E_BUFFER;
    (*env)->SetByteArrayRegion(env, out, 0, n, (const jbyte *)bytes);
    return n;
}

/* Set every field of a header from Kotlin (validated by headerWrite). */
JNIEXPORT jint FN(headerSet)(JNIEnv *env, jclass cls, jobject header_buffer, jlongArray fields, jbyteArray model_id,
                             jbyteArray model_sha8, jbyteArray prior_sha8) {
    (void)cls;
    thk_header *h = state(env, header_buffer, sizeof(thk_header));
    jsize id_length = length_of(env, model_id);
    if (!h || length_of(env, fields) < HEADER_FIELDS - 1 || id_length < 0 || id_length > THK_MAX_MODEL_ID ||
        length_of(env, model_sha8) != 8 || (prior_sha8 && length_of(env, prior_sha8) != 8)) return THK_E_ARGUMENT;
    jlong f[HEADER_FIELDS - 1];
    (*env)->GetLongArrayRegion(env, fields, 0, HEADER_FIELDS - 1, f);
    for (int i = 0; i < HEADER_FIELDS - 1; i++) if (f[i] < 0 || f[i] > 0xFFFFFFFFLL) return THK_E_ARGUMENT;
    memset(h, 0, sizeof *h);
    h->kind = (int)f[0]; h->reference = (int)f[1]; h->resolution = (uint32_t)f[2]; h->fps_millihertz = (uint32_t)f[3];
    h->keyframe_interval = (uint32_t)f[4]; h->hysteresis256 = (uint32_t)f[5]; h->num_kp = (uint32_t)f[6];
    h->extra_dims = (uint32_t)f[7]; h->jacobians = (int)f[8]; h->kp_step = (uint32_t)f[9]; h->jac_step = (uint32_t)f[10];
    h->extra_step = (uint32_t)f[11]; h->expression_dims = (uint32_t)f[12];
    for (int i = 0; i < 6; i++) h->pose_steps[i] = (uint32_t)f[13 + i];
    h->expression_step = (uint32_t)f[19];
    h->model_id_length = (uint32_t)id_length;
    (*env)->GetByteArrayRegion(env, model_id, 0, id_length, (jbyte *)h->model_id);
    h->model_id[id_length] = 0;
    (*env)->GetByteArrayRegion(env, model_sha8, 0, 8, (jbyte *)h->model_sha_prefix);
    if (prior_sha8) (*env)->GetByteArrayRegion(env, prior_sha8, 0, 8, (jbyte *)h->prior_sha_prefix);
    return THK_OK;
}

/* The header's bytes into out; returns their number or an error. */
JNIEXPORT jint FN(headerWrite)(JNIEnv *env, jclass cls, jobject header_buffer, jbyteArray out) {
    (void)cls;
    const thk_header *h = state(env, header_buffer, sizeof(thk_header));
    if (!h || !out) return THK_E_ARGUMENT;
    uint8_t bytes[THK_MAX_HEADER_BYTES];
    size_t written = 0;
    int status = thk_header_write(h, bytes, sizeof bytes, &written);
    if (status) return status;
    if (length_of(env, out) < (jsize)written) return THK_E_BUFFER;
    (*env)->SetByteArrayRegion(env, out, 0, (jsize)written, (const jbyte *)bytes);
    return (jint)written;
}

JNIEXPORT jint FN(headerCheckPrior)(JNIEnv *env, jclass cls, jobject header_buffer, jbyteArray sha8, jint components) {
    (void)cls;
    const thk_header *h = state(env, header_buffer, sizeof(thk_header));
    if (!h || length_of(env, sha8) != 8 || components < 0) return THK_E_ARGUMENT;
    uint8_t prefix[8];
    (*env)->GetByteArrayRegion(env, sha8, 0, 8, (jbyte *)prefix);
    return thk_header_check_prior(h, prefix, (uint32_t)components);
}

JNIEXPORT jint FN(maxPacketBytes)(JNIEnv *env, jclass cls, jobject header_buffer) {
    (void)cls;
    const thk_header *h = state(env, header_buffer, sizeof(thk_header));
    return h ? (jint)thk_max_packet_bytes(h) : THK_E_ARGUMENT;
}

/* ---- decoder ------------------------------------------------------------------------------------- */
JNIEXPORT jint FN(decoderInit)(JNIEnv *env, jclass cls, jobject decoder_buffer, jobject header_buffer) {
    (void)cls;
    thk_decoder *d = state(env, decoder_buffer, sizeof(thk_decoder));
    const thk_header *h = state(env, header_buffer, sizeof(thk_header));
    return d && h ? thk_decoder_init(d, h) : THK_E_ARGUMENT;
}

JNIEXPORT jint FN(decoderDecode)(JNIEnv *env, jclass cls, jobject decoder_buffer, jbyteArray packet, jint offset,
                                 jint length, jobject frame_buffer) {
    (void)cls;
    thk_decoder *d = state(env, decoder_buffer, sizeof(thk_decoder));
    thk_frame *frame = state(env, frame_buffer, sizeof(thk_frame));
    if (!d || !frame || offset < 0 || length < 0 || length_of(env, packet) < (jlong)offset + length)
        return THK_E_ARGUMENT;
    int ok = 1;
    jbyte *bytes = pin(env, packet, &ok);
    int status = ok ? thk_decoder_decode(d, (const uint8_t *)bytes + offset, (size_t)length, frame) : THK_E_ARGUMENT;
    unpin(env, packet, bytes, 0);
    return status;
}

/* decoded, keyframes, missing_reference, stale, malformed */
JNIEXPORT jint FN(decoderStats)(JNIEnv *env, jclass cls, jobject decoder_buffer, jlongArray out) {
    (void)cls;
    const thk_decoder *d = state(env, decoder_buffer, sizeof(thk_decoder));
    if (!d || length_of(env, out) < 5) return THK_E_ARGUMENT;
    jlong v[5] = {(jlong)d->stats.decoded, (jlong)d->stats.keyframes, (jlong)d->stats.missing_reference,
                  (jlong)d->stats.stale, (jlong)d->stats.malformed};
    (*env)->SetLongArrayRegion(env, out, 0, 5, v);
    return THK_OK;
}

/* sequence, timestamp_ms, keyframe, keyframe_id */
JNIEXPORT jint FN(frameInfo)(JNIEnv *env, jclass cls, jobject frame_buffer, jlongArray out) {
    (void)cls;
    const thk_frame *f = state(env, frame_buffer, sizeof(thk_frame));
    if (!f || length_of(env, out) < 4) return THK_E_ARGUMENT;
    jlong v[4] = {(jlong)f->sequence, (jlong)f->timestamp_ms, f->keyframe, f->keyframe_id};
    (*env)->SetLongArrayRegion(env, out, 0, 4, v);
    return THK_OK;
}

JNIEXPORT jint FN(frameLevels)(JNIEnv *env, jclass cls, jobject frame_buffer, jintArray out, jint count) {
    (void)cls;
    const thk_frame *f = state(env, frame_buffer, sizeof(thk_frame));
    if (!f || count < 0 || count > THK_MAX_VALUES || length_of(env, out) < count) return THK_E_ARGUMENT;
    (*env)->SetIntArrayRegion(env, out, 0, count, (const jint *)f->code);
    return THK_OK;
}

JNIEXPORT jint FN(frameDequantizeLearned)(JNIEnv *env, jclass cls, jobject header_buffer, jobject frame_buffer,
                                          jfloatArray keypoints, jfloatArray jacobians, jfloatArray extra) {
    (void)cls;
    const thk_header *h = state(env, header_buffer, sizeof(thk_header));
    const thk_frame *f = state(env, frame_buffer, sizeof(thk_frame));
    if (!h || !f) return THK_E_ARGUMENT;  /* a header of the other kind: the core says THK_E_WRONG_KIND */
    jsize k = (jsize)h->num_kp;
    /* Jacobians / extra are written only when the stream has them; a missing array is then an error */
    if (!(fits(env, keypoints, 2 * k, 0) && fits(env, jacobians, 4 * k, !h->jacobians) &&
          fits(env, extra, (jsize)h->extra_dims, h->extra_dims == 0))) return THK_E_ARGUMENT;
    int ok = 1;
    float *kp = pin(env, keypoints, &ok), *jac = pin(env, jacobians, &ok), *ext = pin(env, extra, &ok);
    int status = ok ? thk_frame_dequantize_learned(h, f, kp, h->jacobians ? jac : NULL, h->extra_dims ? ext : NULL)
                    : THK_E_ARGUMENT;
    unpin(env, extra, ext, ok);
    unpin(env, jacobians, jac, ok);
    unpin(env, keypoints, kp, ok);
    return status;
}

JNIEXPORT jint FN(frameDequantizeSemantic)(JNIEnv *env, jclass cls, jobject header_buffer, jobject frame_buffer,
                                           jdoubleArray pose, jdoubleArray expression) {
    (void)cls;
    const thk_header *h = state(env, header_buffer, sizeof(thk_header));
    const thk_frame *f = state(env, frame_buffer, sizeof(thk_frame));
    if (!h || !f) return THK_E_ARGUMENT;
    if (!(fits(env, pose, 6, 0) && fits(env, expression, (jsize)h->expression_dims, h->expression_dims == 0)))
        return THK_E_ARGUMENT;
    int ok = 1;
    double *p = pin(env, pose, &ok), *e = pin(env, expression, &ok);
    static double none[1];
    int status = ok ? thk_frame_dequantize_semantic(h, f, p, e ? e : none) : THK_E_ARGUMENT;
    unpin(env, expression, e, ok);
    unpin(env, pose, p, ok);
    return status;
}

JNIEXPORT jint FN(frameDequantizeHybrid)(JNIEnv *env, jclass cls, jobject header_buffer, jobject frame_buffer,
                                         jdoubleArray pose, jdoubleArray expression, jfloatArray keypoints,
                                         jfloatArray jacobians) {
    (void)cls;
    const thk_header *h = state(env, header_buffer, sizeof(thk_header));
    const thk_frame *f = state(env, frame_buffer, sizeof(thk_frame));
    if (!h || !f) return THK_E_ARGUMENT;
    jsize k = (jsize)h->num_kp;
    if (!(fits(env, pose, 6, 0) && fits(env, expression, (jsize)h->expression_dims, h->expression_dims == 0) &&
          fits(env, keypoints, 2 * k, 0) && fits(env, jacobians, 4 * k, !h->jacobians))) return THK_E_ARGUMENT;
    int ok = 1;
    double *p = pin(env, pose, &ok), *e = pin(env, expression, &ok);
    float *kp = pin(env, keypoints, &ok), *jac = pin(env, jacobians, &ok);
    static double none[1];
    int status = ok ? thk_frame_dequantize_hybrid(h, f, p, e ? e : none, kp, h->jacobians ? jac : NULL)
                    : THK_E_ARGUMENT;
    unpin(env, jacobians, jac, ok);
    unpin(env, keypoints, kp, ok);
    unpin(env, expression, e, ok);
    unpin(env, pose, p, ok);
    return status;
}

/* ---- encoder ------------------------------------------------------------------------------------- */
JNIEXPORT jint FN(encoderInit)(JNIEnv *env, jclass cls, jobject encoder_buffer, jobject header_buffer) {
    (void)cls;
    thk_encoder *e = state(env, encoder_buffer, sizeof(thk_encoder));
    const thk_header *h = state(env, header_buffer, sizeof(thk_header));
    return e && h ? thk_encoder_init(e, h) : THK_E_ARGUMENT;
}

JNIEXPORT jint FN(encoderForceKeyframe)(JNIEnv *env, jclass cls, jobject encoder_buffer) {
    (void)cls;
    thk_encoder *e = state(env, encoder_buffer, sizeof(thk_encoder));
    if (!e) return THK_E_ARGUMENT;
    thk_encoder_force_keyframe(e);
    return THK_OK;
}

/* Returns the packet's length (written to out) or an error. */
JNIEXPORT jint FN(encoderEncodeLearned)(JNIEnv *env, jclass cls, jobject encoder_buffer, jfloatArray keypoints,
                                        jfloatArray jacobians, jfloatArray extra, jlong timestamp_ms,
                                        jbyteArray out) {
    (void)cls;
    thk_encoder *e = state(env, encoder_buffer, sizeof(thk_encoder));
    if (!e || !out) return THK_E_ARGUMENT;  /* the other kind: THK_E_WRONG_KIND from the core */
    const thk_header *h = &e->header;
    jsize k = (jsize)h->num_kp, capacity = length_of(env, out);
    if (!(fits(env, keypoints, 2 * k, 0) && fits(env, jacobians, 4 * k, !h->jacobians) &&
          fits(env, extra, (jsize)h->extra_dims, h->extra_dims == 0))) return THK_E_ARGUMENT;
    int ok = 1;
    float *kp = pin(env, keypoints, &ok), *jac = pin(env, jacobians, &ok), *ext = pin(env, extra, &ok);
    jbyte *bytes = pin(env, out, &ok);
    size_t written = 0;
    int status = ok ? thk_encoder_encode_learned(e, kp, h->jacobians ? jac : NULL, h->extra_dims ? ext : NULL,
                                                 (uint64_t)timestamp_ms, (uint8_t *)bytes, (size_t)capacity, &written)
                    : THK_E_ARGUMENT;
    unpin(env, out, bytes, status == THK_OK);
    unpin(env, extra, ext, 0);
    unpin(env, jacobians, jac, 0);
    unpin(env, keypoints, kp, 0);
    return status ? status : (jint)written;
}

JNIEXPORT jint FN(encoderEncodeSemantic)(JNIEnv *env, jclass cls, jobject encoder_buffer, jdoubleArray pose,
                                         jdoubleArray expression, jlong timestamp_ms, jbyteArray out) {
    (void)cls;
    thk_encoder *e = state(env, encoder_buffer, sizeof(thk_encoder));
    if (!e || !out) return THK_E_ARGUMENT;
    jsize capacity = length_of(env, out);
    if (!(fits(env, pose, 6, 0) && fits(env, expression, (jsize)e->header.expression_dims,
                                        e->header.expression_dims == 0))) return THK_E_ARGUMENT;
    int ok = 1;
    double *p = pin(env, pose, &ok), *x = pin(env, expression, &ok);
    jbyte *bytes = pin(env, out, &ok);
    static const double none[1];
    size_t written = 0;
    int status = ok ? thk_encoder_encode_semantic(e, p, x ? x : none, (uint64_t)timestamp_ms, (uint8_t *)bytes,
                                                  (size_t)capacity, &written)
                    : THK_E_ARGUMENT;
    unpin(env, out, bytes, status == THK_OK);
    unpin(env, expression, x, 0);
    unpin(env, pose, p, 0);
    return status ? status : (jint)written;
}

JNIEXPORT jint FN(encoderEncodeHybrid)(JNIEnv *env, jclass cls, jobject encoder_buffer, jdoubleArray pose,
                                       jdoubleArray expression, jfloatArray keypoints, jfloatArray jacobians,
                                       jlong timestamp_ms, jbyteArray out) {
    (void)cls;
    thk_encoder *e = state(env, encoder_buffer, sizeof(thk_encoder));
    if (!e || !out) return THK_E_ARGUMENT;  /* the other kinds: THK_E_WRONG_KIND from the core */
    const thk_header *h = &e->header;
    jsize k = (jsize)h->num_kp, capacity = length_of(env, out);
    if (!(fits(env, pose, 6, 0) && fits(env, expression, (jsize)h->expression_dims, h->expression_dims == 0) &&
          fits(env, keypoints, 2 * k, 0) && fits(env, jacobians, 4 * k, !h->jacobians))) return THK_E_ARGUMENT;
    int ok = 1;
    double *p = pin(env, pose, &ok), *x = pin(env, expression, &ok);
    float *kp = pin(env, keypoints, &ok), *jac = pin(env, jacobians, &ok);
    jbyte *bytes = pin(env, out, &ok);
    static const double none[1];
    size_t written = 0;
    int status = ok ? thk_encoder_encode_hybrid(e, p, x ? x : none, kp, h->jacobians ? jac : NULL,
                                                (uint64_t)timestamp_ms, (uint8_t *)bytes, (size_t)capacity, &written)
                    : THK_E_ARGUMENT;
    unpin(env, out, bytes, status == THK_OK);
    unpin(env, jacobians, jac, 0);
    unpin(env, keypoints, kp, 0);
    unpin(env, expression, x, 0);
    unpin(env, pose, p, 0);
    return status ? status : (jint)written;
}

/* frames, keyframes, bytes, keyframe_bytes, clamped_values */
JNIEXPORT jint FN(encoderStats)(JNIEnv *env, jclass cls, jobject encoder_buffer, jlongArray out) {
    (void)cls;
    const thk_encoder *e = state(env, encoder_buffer, sizeof(thk_encoder));
    if (!e || length_of(env, out) < 5) return THK_E_ARGUMENT;
    jlong v[5] = {(jlong)e->stats.frames, (jlong)e->stats.keyframes, (jlong)e->stats.bytes,
                  (jlong)e->stats.keyframe_bytes, (jlong)e->stats.clamped_values};
    (*env)->SetLongArrayRegion(env, out, 0, 5, v);
    return THK_OK;
}

/* ---- motion -------------------------------------------------------------------------------------- */
JNIEXPORT jint FN(hullArea)(JNIEnv *env, jclass cls, jfloatArray points, jint k, jdoubleArray out) {
    (void)cls;
    if (k < 0 || k > THK_MAX_KP || length_of(env, out) < 1 || !fits(env, points, 2 * k, 0)) return THK_E_ARGUMENT;
    int ok = 1;
    float *p = pin(env, points, &ok);
    double area = 0;
    int status = ok ? thk_hull_area(p, (uint32_t)k, &area) : THK_E_ARGUMENT;
    unpin(env, points, p, 0);
    if (status == THK_OK) (*env)->SetDoubleArrayRegion(env, out, 0, 1, &area);
    return status;
}

JNIEXPORT jint FN(movementScale)(JNIEnv *env, jclass cls, jdouble source_area, jdouble anchor_area, jfloatArray out) {
    (void)cls;
    if (length_of(env, out) < 1) return THK_E_ARGUMENT;
    float scale = 0;
    int status = thk_movement_scale(source_area, anchor_area, &scale);
    if (status == THK_OK) (*env)->SetFloatArrayRegion(env, out, 0, 1, &scale);
    return status;
}

JNIEXPORT jint FN(relativeMotion)(JNIEnv *env, jclass cls, jint k, jfloatArray driving, jfloatArray driving_jac,
                                  jfloatArray anchor, jfloatArray anchor_jac, jfloatArray source,
                                  jfloatArray source_jac, jfloat scale, jboolean use_jacobian, jfloatArray value,
                                  jfloatArray jacobian) {
    (void)cls;
    if (k < 0 || k > THK_MAX_KP ||
        !(fits(env, driving, 2 * k, 0) && fits(env, driving_jac, 4 * k, 1) && fits(env, anchor, 2 * k, 0) &&
          fits(env, anchor_jac, 4 * k, 1) && fits(env, source, 2 * k, 0) && fits(env, source_jac, 4 * k, 0) &&
          fits(env, value, 2 * k, 0) && fits(env, jacobian, 4 * k, 0))) return THK_E_ARGUMENT;
    int ok = 1;
    float *d = pin(env, driving, &ok), *dj = pin(env, driving_jac, &ok), *a = pin(env, anchor, &ok);
    float *aj = pin(env, anchor_jac, &ok), *s = pin(env, source, &ok), *sj = pin(env, source_jac, &ok);
    float *v = pin(env, value, &ok), *j = pin(env, jacobian, &ok);
    int status = ok ? thk_relative_motion((uint32_t)k, d, dj, a, aj, s, sj, scale, use_jacobian, v, j)
                    : THK_E_ARGUMENT;
    int wrote = status == THK_OK;
    unpin(env, jacobian, j, wrote); unpin(env, value, v, wrote);
    unpin(env, source_jac, sj, 0); unpin(env, source, s, 0);
    unpin(env, anchor_jac, aj, 0); unpin(env, anchor, a, 0);
    unpin(env, driving_jac, dj, 0); unpin(env, driving, d, 0);
    return status;
}
