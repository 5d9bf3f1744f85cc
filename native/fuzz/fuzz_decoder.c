/* libFuzzer target: arbitrary bytes through the header parser, the packet decoder (the three kinds,
 * both references, with a stream of packets so that deltas meet held references), the FRAME payload
 * parser, the datagram parser and the receiver's per-frame path.
 * Input: byte 0 picks a header (fuzz_headers.h); then packets, each as a length byte followed by that
 * many bytes. fuzz_seeds.c writes a starting corpus of valid streams of every header. */
#include "fuzz_headers.h"

static thk_header headers[FUZZ_HEADERS];
static int ready;
static thk_decoder decoder;
static thk_frame frame;
static thk_frame_receiver receiver;

static void setup(void) {
    thk_crypto_init();
    for (int i = 0; i < FUZZ_HEADERS; i++) fuzz_header(i, &headers[i]);
    ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!ready) setup();
    thk_header parsed;
    thk_header_parse(&parsed, data, size);
    if (size == 0) return 0;
    if (thk_decoder_init(&decoder, &headers[data[0] % FUZZ_HEADERS]) != THK_OK) __builtin_trap();
    size_t offset = 1;
    while (offset < size) {
        size_t length = data[offset++];
        if (length > size - offset) length = size - offset;
        if (thk_decoder_decode(&decoder, data + offset, length, &frame) == THK_OK) {
            float kp[2 * THK_MAX_KP], jac[4 * THK_MAX_KP], extra[THK_MAX_EXTRA];
            double pose[6], expression[THK_MAX_EXPRESSION];
            if (decoder.header.kind == THK_KIND_LEARNED)
                thk_frame_dequantize_learned(&decoder.header, &frame, kp, jac, extra);
            else if (decoder.header.kind == THK_KIND_SEMANTIC)
                thk_frame_dequantize_semantic(&decoder.header, &frame, pose, expression);
            else
                thk_frame_dequantize_hybrid(&decoder.header, &frame, pose, expression, kp, jac);
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
