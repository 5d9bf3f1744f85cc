/* The stream headers the fuzz targets decode with (fuzz_decoder.c) and write seeds for (fuzz_seeds.c):
 * the three kinds in turn, both references, with and without Jacobians, several intervals and
 * frame rates. Headers 0-2 are each kind's largest stream (K = 255 with Jacobians, D = 255,
 * E = 255; steps of 1): slow, so 3 in 16. */
#ifndef FUZZ_HEADERS_H
#define FUZZ_HEADERS_H

#include "thk.h"

#include <string.h>

#define FUZZ_HEADERS 16

static void fuzz_header(int i, thk_header *h) {
    static const int kinds[3] = {THK_KIND_LEARNED, THK_KIND_SEMANTIC, THK_KIND_HYBRID};
    int big = i < 3;
    memset(h, 0, sizeof *h);
    h->kind = kinds[i % 3];
    h->reference = (i / 2) % 2 ? THK_REF_KEYFRAME : THK_REF_PREVIOUS;
    h->resolution = 128; h->fps_millihertz = i % 3 ? 25000 : 1; h->keyframe_interval = 1 + (uint32_t)(i * 9) % 127;
    h->hysteresis256 = 64; h->model_id_length = 1; h->model_id[0] = 'm';
    h->num_kp = big ? 255 : 1 + (uint32_t)i; h->jacobians = i % 4 != 2;
    h->extra_dims = h->kind != THK_KIND_LEARNED ? 0 : big ? 255 : (uint32_t)i % 3;  /* a hybrid stream has none */
    h->kp_step = big ? 1 : 1024; h->jac_step = big ? 1 : 2048; h->extra_step = big ? 1 : 65535;
    h->expression_dims = big ? 255 : (uint32_t)i;
    for (int p = 0; p < 6; p++) h->pose_steps[p] = big ? 1 : 40960;
    h->expression_step = big ? 1 : 5120;
}

#endif
