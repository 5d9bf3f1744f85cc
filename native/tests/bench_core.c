#define _POSIX_C_SOURCE 199309L
/* Per-frame cost of the receiver's native path: decode one packet + dequantize + relative motion
 * (K = 15 keypoints with Jacobians, the default learned-keypoint stream; and the semantic kind's
 * decode at E = 16). Prints a table and one JSON line. Usage: bench_core [frames] */
#include "thk.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define K 15
static double now_s(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

static int compare(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

int main(int argc, char **argv) {
    int frames = argc > 1 ? atoi(argv[1]) : 20000;
    static thk_encoder enc;
    static thk_decoder dec;
    static thk_frame frame;
    thk_header h;
    memset(&h, 0, sizeof h);
    h.kind = THK_KIND_LEARNED; h.reference = THK_REF_PREVIOUS; h.resolution = 256; h.fps_millihertz = 25000;
    h.keyframe_interval = 25; h.hysteresis256 = 64; h.model_id_length = 1; h.model_id[0] = 'm';
    h.num_kp = K; h.jacobians = 1; h.kp_step = 1024; h.jac_step = 2048; h.extra_step = 1024;
    thk_encoder_init(&enc, &h);
    thk_decoder_init(&dec, &h);
    uint8_t (*packets)[128] = malloc((size_t)frames * 128);
    size_t *lengths = malloc((size_t)frames * sizeof *lengths);
    double *times = malloc((size_t)frames * sizeof *times);
    float kp[2 * K], jac[4 * K], source[2 * K], source_jac[4 * K], anchor[2 * K], anchor_jac[4 * K];
    srand(1);
    for (int i = 0; i < 2 * K; i++) kp[i] = source[i] = (float)(rand() % 1000) / 1000.0f - 0.5f;
    for (int i = 0; i < 4 * K; i++) jac[i] = source_jac[i] = (i % 4 == 0 || i % 4 == 3) ? 1.0f : 0.0f;
    for (int f = 0; f < frames; f++) {  /* a head-like walk: a shared drift plus jitter */
        float drift = 0.01f * sinf(f * 0.05f);
        for (int i = 0; i < 2 * K; i++) kp[i] += drift * 0.1f + 0.004f * ((float)(rand() % 1000) / 1000.0f - 0.5f);
        for (int i = 0; i < 4 * K; i++) jac[i] += 0.01f * ((float)(rand() % 1000) / 1000.0f - 0.5f);
        thk_encoder_encode_learned(&enc, kp, jac, NULL, (uint64_t)f * 40, packets[f], 128, &lengths[f]);
    }
    float value[2 * K], jacobian[4 * K];
    double source_area, anchor_area;
    float scale = 1;
    thk_hull_area(source, K, &source_area);
    for (int f = 0; f < frames; f++) {
        double start = now_s();
        if (thk_decoder_decode(&dec, packets[f], lengths[f], &frame) != THK_OK) return 1;
        thk_frame_dequantize_learned(&h, &frame, kp, jac, NULL);
        if (f == 0) {  /* the anchor: the first frame (its hull area once, as the Python does) */
            memcpy(anchor, kp, sizeof anchor);
            memcpy(anchor_jac, jac, sizeof anchor_jac);
            thk_hull_area(anchor, K, &anchor_area);
            thk_movement_scale(source_area, anchor_area, &scale);
        }
        thk_relative_motion(K, kp, jac, anchor, anchor_jac, source, source_jac, scale, 1, value, jacobian);
        times[f] = now_s() - start;
    }
    qsort(times, (size_t)frames, sizeof *times, compare);
    double total = 0;
    for (int f = 0; f < frames; f++) total += times[f];
    printf("| path | frames | mean us | p50 us | p99 us | bytes/frame |\n| --- | --- | --- | --- | --- | --- |\n");
    printf("| learned K=%d decode + dequantize + relative motion | %d | %.2f | %.2f | %.2f | %.1f |\n", K, frames,
           1e6 * total / frames, 1e6 * times[frames / 2], 1e6 * times[frames * 99 / 100],
           (double)enc.stats.bytes / frames);
    printf("{\"bench\": \"native_core\", \"k\": %d, \"frames\": %d, \"mean_us\": %.3f, \"p50_us\": %.3f, \"p99_us\": %.3f}\n",
           K, frames, 1e6 * total / frames, 1e6 * times[frames / 2], 1e6 * times[frames * 99 / 100]);
    free(packets); free(lengths); free(times);
    return 0;
}
