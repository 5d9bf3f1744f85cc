#define _POSIX_C_SOURCE 199309L
/* Per-frame cost of the receiver's native path: decode one packet + dequantize + relative motion of
 * the learned keypoints, for the default learned-keypoint stream (K = 15 with Jacobians) and the
 * default hybrid stream of a hybrid model (E = 16 coefficients, then K = 5 learned keypoints with
 * Jacobians; the semantic part's mesh is the app's, not the core's). Codec and motion only: it
 * builds for any target. Prints a table row and one JSON line per stream, the learned one last
 * (bench/android_jvm.py reads it). Usage: bench_core [frames] */
#include "thk.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_K 15
#define PACKET_BYTES 256
static double now_s(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

static int compare(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

static float jitter(float size) { return size * ((float)(rand() % 1000) / 1000.0f - 0.5f); }

static thk_header stream_header(int kind) {
    thk_header h;
    memset(&h, 0, sizeof h);
    h.kind = kind; h.reference = THK_REF_PREVIOUS; h.resolution = 256; h.fps_millihertz = 25000;
    h.model_id_length = 1; h.model_id[0] = 'm';
    h.jacobians = 1; h.kp_step = 1024; h.jac_step = 2048; h.extra_step = 1024;
    if (kind == THK_KIND_LEARNED) {  /* CodecConfig() */
        h.num_kp = 15; h.keyframe_interval = 25; h.hysteresis256 = 64;
    } else {  /* HybridCodecConfig.preset("default"): the semantic default's steps, N and hysteresis */
        static const uint32_t pose[6] = {81920, 81920, 32768, 256, 256, 640};
        h.num_kp = 5; h.keyframe_interval = 50; h.hysteresis256 = 96; h.expression_dims = 16;
        memcpy(h.pose_steps, pose, sizeof pose);
        h.expression_step = 10240;
    }
    return h;
}

static int bench(int kind, int frames) {
    static thk_encoder enc;
    static thk_decoder dec;
    static thk_frame frame;
    thk_header h = stream_header(kind);
    if (thk_encoder_init(&enc, &h) || thk_decoder_init(&dec, &h)) return 1;
    uint32_t k = h.num_kp;
    uint8_t (*packets)[PACKET_BYTES] = malloc((size_t)frames * PACKET_BYTES);
    size_t *lengths = malloc((size_t)frames * sizeof *lengths);
    double *times = malloc((size_t)frames * sizeof *times);
    float kp[2 * MAX_K], jac[4 * MAX_K], source[2 * MAX_K], source_jac[4 * MAX_K], anchor[2 * MAX_K], anchor_jac[4 * MAX_K];
    double pose[6] = {0}, expression[THK_MAX_EXPRESSION] = {0};
    srand(1);
    for (uint32_t i = 0; i < 2 * k; i++) kp[i] = source[i] = jitter(1.0f);
    for (uint32_t i = 0; i < 4 * k; i++) jac[i] = source_jac[i] = (i % 4 == 0 || i % 4 == 3) ? 1.0f : 0.0f;
    for (int f = 0; f < frames; f++) {  /* a head-like walk: a shared drift plus jitter */
        float drift = 0.01f * sinf(f * 0.05f);
        for (uint32_t i = 0; i < 2 * k; i++) kp[i] += drift * 0.1f + jitter(0.004f);
        for (uint32_t i = 0; i < 4 * k; i++) jac[i] += jitter(0.01f);
        for (int i = 0; i < 6; i++) pose[i] = (i < 3 ? 10.0 : 0.05) * sin(f * 0.05 + i) + jitter(i < 3 ? 0.5f : 0.002f);
        for (uint32_t i = 0; i < h.expression_dims; i++) expression[i] = 0.5 * sin(f * 0.1 + i) + jitter(0.05f);
        int status = kind == THK_KIND_LEARNED
            ? thk_encoder_encode_learned(&enc, kp, jac, NULL, (uint64_t)f * 40, packets[f], PACKET_BYTES, &lengths[f])
            : thk_encoder_encode_hybrid(&enc, pose, expression, kp, jac, (uint64_t)f * 40, packets[f], PACKET_BYTES,
                                        &lengths[f]);
        if (status) return 1;
    }
    float value[2 * MAX_K], jacobian[4 * MAX_K];
    double source_area, anchor_area;
    float scale = 1;
    thk_hull_area(source, k, &source_area);
    for (int f = 0; f < frames; f++) {
        double start = now_s();
        if (thk_decoder_decode(&dec, packets[f], lengths[f], &frame) != THK_OK) return 1;
        if (kind == THK_KIND_LEARNED) thk_frame_dequantize_learned(&h, &frame, kp, jac, NULL);
        else thk_frame_dequantize_hybrid(&h, &frame, pose, expression, kp, jac);
        if (f == 0) {  /* the anchor: the first frame (its hull area once, as the Python does) */
            memcpy(anchor, kp, sizeof anchor);
            memcpy(anchor_jac, jac, sizeof anchor_jac);
            thk_hull_area(anchor, k, &anchor_area);
            thk_movement_scale(source_area, anchor_area, &scale);
        }
        thk_relative_motion(k, kp, jac, anchor, anchor_jac, source, source_jac, scale, 1, value, jacobian);
        times[f] = now_s() - start;
    }
    qsort(times, (size_t)frames, sizeof *times, compare);
    double total = 0;
    for (int f = 0; f < frames; f++) total += times[f];
    const char *name = kind == THK_KIND_LEARNED ? "learned" : "hybrid";
    printf("| %s K=%u E=%u decode + dequantize + relative motion | %d | %.2f | %.2f | %.2f | %.1f |\n", name, k,
           h.expression_dims, frames, 1e6 * total / frames, 1e6 * times[frames / 2], 1e6 * times[frames * 99 / 100],
           (double)enc.stats.bytes / frames);
    printf("{\"bench\": \"native_core\", \"kind\": \"%s\", \"k\": %u, \"e\": %u, \"frames\": %d, "
            "\"mean_us\": %.3f, \"p50_us\": %.3f, \"p99_us\": %.3f}\n", name, k, h.expression_dims, frames,
            1e6 * total / frames, 1e6 * times[frames / 2], 1e6 * times[frames * 99 / 100]);
    free(packets); free(lengths); free(times);
    return 0;
}

int main(int argc, char **argv) {
    int frames = argc > 1 ? atoi(argv[1]) : 20000;
    if (frames < 1) return 2;
    printf("| path | frames | mean us | p50 us | p99 us | bytes/frame |\n| --- | --- | --- | --- | --- | --- |\n");
    return bench(THK_KIND_HYBRID, frames) || bench(THK_KIND_LEARNED, frames);
}
