/* A line-based driver of the codec for conformance runs on other architectures (arm64 under qemu):
 * reads commands from stdin, writes one line per command to stdout.
 *   H <hex>                      stream header -> "0" or the error code (a new encoder and decoder)
 *   F                            the encoder's next frame is a keyframe (no output)
 *   E <timestamp> <v0> <v1> ...  encode the code's values (learned: 2K keypoints, 4K Jacobians when
 *                                present, D extra; semantic: 6 pose, E expression; hybrid: 6 pose,
 *                                E expression, 2K keypoints, 4K Jacobians when present) -> packet hex
 *   D <hex>                      decode -> "<status> <sequence> <timestamp> <keyframe> <levels...>" */
#include "thk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char line[1 << 16];
static uint8_t bytes[1 << 15];
static thk_header header;
static thk_encoder encoder;
static thk_decoder decoder;
static thk_frame frame;

static size_t unhex(const char *text) {
    size_t n = 0;
    while (text[0] && text[1] && text[0] != '\n' && n < sizeof bytes) {
        unsigned value;
        if (sscanf(text, "%2x", &value) != 1) break;
        bytes[n++] = (uint8_t)value;
        text += 2;
    }
    return n;
}

int main(void) {
    while (fgets(line, sizeof line, stdin)) {
        if (line[0] == 'H') {
            int status = thk_header_parse(&header, bytes, unhex(line + 2));
            if (!status) status = thk_encoder_init(&encoder, &header);
            if (!status) status = thk_decoder_init(&decoder, &header);
            printf("%d\n", status);
        } else if (line[0] == 'F') {
            thk_encoder_force_keyframe(&encoder);
        } else if (line[0] == 'E') {
            char *cursor = line + 2;
            unsigned long long timestamp = strtoull(cursor, &cursor, 10);
            static double values[THK_MAX_VALUES];
            static float floats[THK_MAX_VALUES];
            uint32_t n = thk_code_values(&header);
            for (uint32_t i = 0; i < n; i++) floats[i] = (float)(values[i] = strtod(cursor, &cursor));
            size_t written = 0;
            int status;
            if (header.kind == THK_KIND_LEARNED) {
                uint32_t k = header.num_kp, jac = header.jacobians ? 4 * k : 0;
                status = thk_encoder_encode_learned(&encoder, floats, floats + 2 * k, floats + 2 * k + jac, timestamp,
                                                    bytes, sizeof bytes, &written);
            } else if (header.kind == THK_KIND_SEMANTIC) {
                status = thk_encoder_encode_semantic(&encoder, values, values + 6, timestamp, bytes, sizeof bytes,
                                                     &written);
            } else {
                uint32_t learned = 6 + header.expression_dims;
                status = thk_encoder_encode_hybrid(&encoder, values, values + 6, floats + learned,
                                                   floats + learned + 2 * header.num_kp, timestamp, bytes, sizeof bytes,
                                                   &written);
            }
            if (status) { printf("error %d\n", status); continue; }
            for (size_t i = 0; i < written; i++) printf("%02x", bytes[i]);
            printf("\n");
        } else if (line[0] == 'D') {
            int status = thk_decoder_decode(&decoder, bytes, unhex(line + 2), &frame);
            if (status) { printf("%d\n", status); continue; }
            printf("0 %llu %llu %d", (unsigned long long)frame.sequence, (unsigned long long)frame.timestamp_ms,
                   frame.keyframe);
            for (uint32_t i = 0; i < thk_code_values(&header); i++) printf(" %d", frame.code[i]);
            printf("\n");
        }
        fflush(stdout);
    }
    return 0;
}
