/* libFuzzer target: arbitrary bytes through the header parser, the packet decoder (both kinds, both
 * references, with a stream of packets so that deltas meet held references), the FRAME payload
 * parser, the datagram parser and the receiver's per-frame path.
 * Input: byte 0 picks a header; then packets, each as a length byte followed by that many bytes. */
#include "thk.h"

#include <string.h>

#define HEADERS 16  /* header 0 is the largest stream (K = 255 with Jacobians, D = 255): slow, so 1 in 16 */
static thk_header headers[HEADERS];
static int ready;
static thk_decoder decoder;
static thk_frame frame;
static thk_frame_receiver receiver;

static void setup(void) {
    thk_crypto_init();
    for (int i = 0; i < HEADERS; i++) {
        thk_header *h = &headers[i];
        int big = i == 0 || i == 1;
        memset(h, 0, sizeof *h);
        h->kind = i % 2 == 0 ? THK_KIND_LEARNED : THK_KIND_SEMANTIC;
        h->reference = (i / 2) % 2 ? THK_REF_KEYFRAME : THK_REF_PREVIOUS;
        h->resolution = 128; h->fps_millihertz = i % 3 ? 25000 : 1; h->keyframe_interval = 1 + (uint32_t)(i * 9) % 127;
        h->hysteresis256 = 64; h->model_id_length = 1; h->model_id[0] = 'm';
        h->num_kp = big ? 255 : 1 + (uint32_t)i; h->jacobians = i % 4 != 2; h->extra_dims = big ? 255 : (uint32_t)i % 3;
        h->kp_step = big ? 1 : 1024; h->jac_step = big ? 1 : 2048; h->extra_step = big ? 1 : 65535;
        h->expression_dims = big ? 255 : (uint32_t)i;
        for (int p = 0; p < 6; p++) h->pose_steps[p] = big ? 1 : 40960;
        h->expression_step = big ? 1 : 5120;
    }
    ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!ready) setup();
    thk_header parsed;
    thk_header_parse(&parsed, data, size);
    if (size == 0) return 0;
    if (thk_decoder_init(&decoder, &headers[data[0] % HEADERS]) != THK_OK) __builtin_trap();
    size_t offset = 1;
    while (offset < size) {
        size_t length = data[offset++];
        if (length > size - offset) length = size - offset;
        if (thk_decoder_decode(&decoder, data + offset, length, &frame) == THK_OK) {
            float kp[2 * THK_MAX_KP], jac[4 * THK_MAX_KP], extra[THK_MAX_EXTRA];
            double pose[6], expression[THK_MAX_EXPRESSION];
            if (decoder.header.kind == THK_KIND_LEARNED)
                thk_frame_dequantize_learned(&decoder.header, &frame, kp, jac, extra);
            else
                thk_frame_dequantize_semantic(&decoder.header, &frame, pose, expression);
        }
        offset += length;
    }
    thk_frame_payload payload;
    thk_frame_payload_parse(&payload, data, size);
    thk_datagram datagram;
    thk_datagram_parse(&datagram, data, size);
    static const uint8_t key[32];
    thk_frame_receiver_init(&receiver, key, 0, 0.06, 16);
    thk_frame_receiver_handle(&receiver, data, size, 0.0);
    return 0;
}
