/* What both JNI files of org.talkinghead.core.NativeCore share: the function-name macro and the
 * checks of a direct-buffer state and of an array's length. No libc beyond the JNI table, so the
 * freestanding build (thk_jni.c alone) can include it. */
#ifndef THK_JNI_COMMON_H
#define THK_JNI_COMMON_H

#include <jni.h>
#include <stddef.h>

#define FN(name) JNICALL Java_org_talkinghead_core_NativeCore_##name

/* The struct behind a direct buffer, or NULL when it is missing, too small or misaligned. */
static inline void *state(JNIEnv *env, jobject buffer, size_t size) {
    if (!buffer) return NULL;
    void *address = (*env)->GetDirectBufferAddress(env, buffer);
    jlong capacity = (*env)->GetDirectBufferCapacity(env, buffer);
    if (!address || capacity < (jlong)size || ((size_t)address & 7)) return NULL;
    return address;
}

static inline jsize length_of(JNIEnv *env, jarray array) { return array ? (*env)->GetArrayLength(env, array) : -1; }

#endif
