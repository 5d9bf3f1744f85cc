/* Writes a starting corpus for fuzz_decoder: per header of fuzz_headers.h, a file of its selector byte
 * then a valid stream (a keyframe and delta frames, each as a length byte and its packet) of a
 * slowly moving code. Usage: fuzz_seeds <folder>. */
#include "fuzz_headers.h"

#include <math.h>
#include <stdio.h>

static thk_encoder encoder;

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: fuzz_seeds <folder>\n"); return 2; }
    static double pose[6], expression[THK_MAX_EXPRESSION];
    static float keypoints[2 * THK_MAX_KP], jacobians[4 * THK_MAX_KP], extra[THK_MAX_EXTRA];
    for (int i = 0; i < FUZZ_HEADERS; i++) {
        thk_header header;
        fuzz_header(i, &header);
        if (thk_encoder_init(&encoder, &header) != THK_OK) return 1;
        uint8_t input[1024], packet[1 << 15];
        size_t length = 0, written;
        input[length++] = (uint8_t)i;
        for (int t = 0; t < 8; t++) {
            double phase = 0.3 * t;
            for (int v = 0; v < 6; v++) pose[v] = (v < 3 ? 10.0 : 0.1) * sin(phase + v);
            for (int v = 0; v < THK_MAX_EXPRESSION; v++) expression[v] = sin(phase + 0.1 * v);
            for (int v = 0; v < 2 * THK_MAX_KP; v++) keypoints[v] = (float)(0.5 * sin(phase + 0.2 * v));
            for (int v = 0; v < 4 * THK_MAX_KP; v++) jacobians[v] = (float)((v % 4 == 0 || v % 4 == 3) + 0.1 * sin(phase + v));
            for (int v = 0; v < THK_MAX_EXTRA; v++) extra[v] = (float)sin(phase - v);
            uint64_t timestamp = 40 * (uint64_t)t;
            int status = header.kind == THK_KIND_LEARNED
                ? thk_encoder_encode_learned(&encoder, keypoints, jacobians, extra, timestamp, packet, sizeof packet, &written)
                : header.kind == THK_KIND_SEMANTIC
                ? thk_encoder_encode_semantic(&encoder, pose, expression, timestamp, packet, sizeof packet, &written)
                : thk_encoder_encode_hybrid(&encoder, pose, expression, keypoints, jacobians, timestamp, packet,
                                            sizeof packet, &written);
            if (status != THK_OK) return 1;
            if (written > 255 || length + 1 + written > sizeof input) break;  /* a seed holds whole packets */
            input[length++] = (uint8_t)written;
            memcpy(input + length, packet, written);
            length += written;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/seed-%02d", argv[1], i);
        FILE *file = fopen(path, "wb");
        if (!file || fwrite(input, 1, length, file) != length || fclose(file)) return 1;
    }
    return 0;
}
