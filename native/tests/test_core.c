/* C tests of the native core: the worked examples of docs/bitstream.md sections 9, 12 and 13.5, and bad
 * input of every kind (defined error codes and counters, no crash). The bit-exactness against the
 * Python SDK (golden vectors, random property cases) is tests/test_native_core.py. */
#include "thk.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int failures, checks;
#define CHECK(cond) do { checks++; if (!(cond)) { failures++; fprintf(stderr, "%s:%d: CHECK(%s)\n", __FILE__, __LINE__, #cond); } } while (0)
#define EQ(a, b) do { long long _a = (long long)(a), _b = (long long)(b); checks++; \
    if (_a != _b) { failures++; fprintf(stderr, "%s:%d: %s = %lld, expected %lld\n", __FILE__, __LINE__, #a, _a, _b); } } while (0)

static size_t unhex(const char *text, uint8_t *out) {
    size_t n = 0;
    unsigned value;
    while (*text) {
        if (*text == ' ') { text++; continue; }
        sscanf(text, "%2x", &value);
        out[n++] = (uint8_t)value;
        text += 2;
    }
    return n;
}

static thk_header header_v1_example(void) {
    thk_header h;
    memset(&h, 0, sizeof h);
    h.kind = THK_KIND_LEARNED; h.reference = THK_REF_PREVIOUS; h.resolution = 128; h.fps_millihertz = 25000;
    h.keyframe_interval = 25; h.hysteresis256 = 64; h.model_id_length = 4; strcpy(h.model_id, "demo");
    unhex("0011223344556677", h.model_sha_prefix);
    h.num_kp = 2; h.jacobians = 1; h.kp_step = 1024; h.jac_step = 2048; h.extra_step = 1024;
    return h;
}

static void test_learned_worked_example(void) {
    uint8_t expected[64], bytes[400], packet[256];
    size_t n = unhex("54 48 4b 43 01 0b 02 00 80 00 a8 61 00 00 00 04 00 08 00 04 19 40 04 64 65 6d 6f "
                     "00 11 22 33 44 55 66 77 3b c9 d6 26", expected), written;
    thk_header h = header_v1_example(), parsed;
    EQ(thk_header_write(&h, bytes, sizeof bytes, &written), THK_OK);
    EQ(written, n);
    CHECK(memcmp(bytes, expected, n) == 0);
    EQ(thk_header_parse(&parsed, expected, n), THK_OK);
    EQ(parsed.num_kp, 2);
    static thk_encoder enc;
    static thk_decoder dec;
    static thk_frame frame;
    EQ(thk_encoder_init(&enc, &parsed), THK_OK);
    EQ(thk_decoder_init(&dec, &parsed), THK_OK);
    const float kp0[4] = {-0.25f, 0.125f, 0.3f, -0.1f}, jac0[8] = {1, 0, 0, 1, 0.9f, 0.05f, -0.1f, 1.1f};
    const float kp1[4] = {-0.23f, 0.13f, 0.33f, -0.09f}, jac1[8] = {1.0f, 0.02f, 0, 0.95f, 0.9f, 0.05f, -0.1f, 1.1f};
    EQ(thk_encoder_encode_learned(&enc, kp0, jac0, NULL, 0, packet, sizeof packet, &written), THK_OK);
    n = unhex("80 00 00 00 21 e5 f3 84 42 49 f2 e0", expected);
    EQ(written, n);
    CHECK(memcmp(packet, expected, n) == 0);
    EQ(thk_decoder_decode(&dec, packet, written, &frame), THK_OK);
    const int32_t code0[12] = {-16, 8, 19, -6, 32, 0, 0, 32, 29, 2, -3, 35};
    CHECK(memcmp(frame.code, code0, sizeof code0) == 0);
    EQ(thk_encoder_encode_learned(&enc, kp1, jac1, NULL, 41, packet, sizeof packet, &written), THK_OK);
    n = unhex("01 00 8a 4e 40 98", expected);
    EQ(written, n);
    CHECK(memcmp(packet, expected, n) == 0);
    EQ(thk_decoder_decode(&dec, packet, written, &frame), THK_OK);
    EQ(frame.sequence, 1);
    EQ(frame.timestamp_ms, 41);
    float keypoints[4], jacobians[8];
    EQ(thk_frame_dequantize_learned(&parsed, &frame, keypoints, jacobians, NULL), THK_OK);
    CHECK(keypoints[0] == -15.0f / 64 && keypoints[2] == 21.0f / 64 && jacobians[3] == 30.0f / 32);
    /* the same packet again: stale; a delta of another keyframe: missing reference */
    EQ(thk_decoder_decode(&dec, packet, written, &frame), THK_E_STALE);
    packet[1] = 7;
    EQ(thk_decoder_decode(&dec, packet, written, &frame), THK_E_MISSING_REFERENCE);
    EQ(dec.stats.decoded, 2);
    EQ(dec.stats.stale, 1);
    EQ(dec.stats.missing_reference, 1);
}

static void test_semantic_worked_example(void) {
    uint8_t expected[128], packet[256];
    size_t n = unhex("54 48 4b 43 02 01 01 02 80 00 a8 61 00 00 00 00 01 00 00 00 01 00 00 40 00 00 80 00 00 00 "
                     "80 00 00 00 00 02 00 00 00 20 00 00 19 40 55 46 10 6d 57 48 43 21 04 64 65 6d 6f 00 11 22 "
                     "33 44 55 66 77 ed 71 2d 48", expected), written;
    thk_header h;
    EQ(thk_header_parse(&h, expected, n), THK_OK);
    EQ(h.kind, THK_KIND_SEMANTIC);
    EQ(h.expression_dims, 2);
    uint8_t prior[8];
    unhex("5546106d57484321", prior);
    EQ(thk_header_check_prior(&h, prior, 32), THK_OK);
    EQ(thk_header_check_prior(&h, prior, 1), THK_E_PRIOR_MISMATCH);
    prior[0] ^= 1;
    EQ(thk_header_check_prior(&h, prior, 32), THK_E_PRIOR_MISMATCH);
    static thk_encoder enc;
    static thk_decoder dec;
    static thk_frame frame;
    EQ(thk_encoder_init(&enc, &h), THK_OK);
    EQ(thk_decoder_init(&dec, &h), THK_OK);
    const double pose0[6] = {10.2, -4.9, 1.1, 0.05, -0.1, -0.4}, expr0[2] = {0.7, -0.3};
    const double pose1[6] = {10.9, -5.1, 1.0, 0.053, -0.1, -0.41}, expr1[2] = {0.85, -0.3};
    EQ(thk_encoder_encode_semantic(&enc, pose0, expr0, 0, packet, sizeof packet, &written), THK_OK);
    n = unhex("80 00 00 00 59 7d 8b 31 22 3c 60", expected);
    EQ(written, n);
    CHECK(memcmp(packet, expected, n) == 0);
    EQ(thk_decoder_decode(&dec, packet, written, &frame), THK_OK);
    EQ(thk_encoder_encode_semantic(&enc, pose1, expr1, 40, packet, sizeof packet, &written), THK_OK);
    n = unhex("01 00 24 e6", expected);
    EQ(written, n);
    CHECK(memcmp(packet, expected, n) == 0);
    EQ(thk_decoder_decode(&dec, packet, written, &frame), THK_OK);
    double pose[6], expression[2];
    EQ(thk_frame_dequantize_semantic(&h, &frame, pose, expression), THK_OK);
    CHECK(pose[0] == 11.0 && pose[3] == 27.0 / 512 && pose[5] == -52.0 / 128 && expression[0] == 7.0 / 8);
    /* the learned kind's calls refuse a semantic header */
    float kp[2];
    EQ(thk_encoder_encode_learned(&enc, kp, NULL, NULL, 80, packet, sizeof packet, &written), THK_E_WRONG_KIND);
    EQ(thk_frame_dequantize_learned(&h, &frame, kp, NULL, NULL), THK_E_WRONG_KIND);
}

static void test_hybrid_worked_example(void) {
    uint8_t expected[128], packet[256], bytes[128];
    size_t n = unhex("54 48 4b 43 02 02 03 02 80 00 a8 61 00 00 00 00 01 00 00 00 01 00 00 40 00 00 80 00 00 00 "
                     "80 00 00 00 00 02 00 00 00 20 00 00 02 00 04 00 08 19 40 55 46 10 6d 57 48 43 21 04 64 65 "
                     "6d 6f 00 11 22 33 44 55 66 77 bf 17 af 5d", expected), written;
    thk_header h, parsed;
    EQ(thk_header_parse(&h, expected, n), THK_OK);
    EQ(h.kind, THK_KIND_HYBRID);
    EQ(h.reference, THK_REF_PREVIOUS);
    CHECK(h.jacobians && h.expression_dims == 2 && h.num_kp == 2 && h.kp_step == 1024 && h.jac_step == 2048);
    CHECK(h.keyframe_interval == 25 && h.hysteresis256 == 64 && h.pose_steps[2] == 0x4000 && h.expression_step == 0x2000);
    EQ(thk_code_values(&h), 6 + 2 + 2 * 2 + 4 * 2);
    EQ(thk_header_write(&h, bytes, sizeof bytes, &written), THK_OK);
    CHECK(written == n && memcmp(bytes, expected, n) == 0);
    uint8_t prior[8];
    unhex("5546106d57484321", prior);
    EQ(thk_header_check_prior(&h, prior, 2), THK_OK);
    EQ(thk_header_check_prior(&h, prior, 1), THK_E_PRIOR_MISMATCH);
    static thk_encoder enc;
    static thk_decoder dec;
    static thk_frame frame;
    EQ(thk_encoder_init(&enc, &h), THK_OK);
    EQ(thk_decoder_init(&dec, &h), THK_OK);
    const double pose0[6] = {10.2, -4.9, 1.1, 0.05, -0.1, -0.4}, expr0[2] = {0.7, -0.3};
    const double pose1[6] = {10.9, -5.1, 1.0, 0.053, -0.1, -0.41}, expr1[2] = {0.85, -0.3};
    const float kp0[4] = {-0.25f, 0.125f, 0.3f, -0.1f}, jac0[8] = {1, 0, 0, 1, 0.9f, 0.05f, -0.1f, 1.1f};
    const float kp1[4] = {-0.23f, 0.13f, 0.33f, -0.09f}, jac1[8] = {1.0f, 0.02f, 0, 0.95f, 0.9f, 0.05f, -0.1f, 1.1f};
    EQ(thk_encoder_encode_hybrid(&enc, pose0, expr0, kp0, jac0, 0, packet, sizeof packet, &written), THK_OK);
    n = unhex("80 00 00 00 59 7d 8b 31 22 3c 5c 7b 6e 8b 36 0c e0 28", expected);
    EQ(written, n);
    CHECK(memcmp(packet, expected, n) == 0);
    EQ(thk_decoder_decode(&dec, packet, written, &frame), THK_OK);
    EQ(thk_encoder_encode_hybrid(&enc, pose1, expr1, kp1, jac1, 40, packet, sizeof packet, &written), THK_OK);
    n = unhex("01 00 24 e6 5d d5 2e 40", expected);
    EQ(written, n);
    CHECK(memcmp(packet, expected, n) == 0);
    EQ(thk_decoder_decode(&dec, packet, written, &frame), THK_OK);
    double pose[6], expression[2];
    float kp[4], jac[8];
    EQ(thk_frame_dequantize_hybrid(&h, &frame, pose, expression, kp, jac), THK_OK);
    CHECK(pose[0] == 11.0 && pose[3] == 27.0 / 512 && pose[5] == -52.0 / 128 && expression[0] == 7.0 / 8);
    CHECK(kp[0] == -15.0f / 64 && kp[1] == 8.0f / 64 && kp[2] == 21.0f / 64 && kp[3] == -6.0f / 64);
    CHECK(jac[0] == 1.0f && jac[3] == 30.0f / 32 && jac[4] == 29.0f / 32 && jac[7] == 35.0f / 32);
    /* a replayed packet (cut short): refused, counted, the state kept */
    EQ(thk_decoder_decode(&dec, packet, 3, &frame), THK_E_STALE);
    EQ(dec.stats.decoded, 2);
    /* the other kinds' calls refuse a hybrid header, and the hybrid calls refuse theirs */
    EQ(thk_encoder_encode_learned(&enc, kp, jac, NULL, 80, packet, sizeof packet, &written), THK_E_WRONG_KIND);
    EQ(thk_encoder_encode_semantic(&enc, pose, expression, 80, packet, sizeof packet, &written), THK_E_WRONG_KIND);
    EQ(thk_frame_dequantize_learned(&h, &frame, kp, jac, NULL), THK_E_WRONG_KIND);
    EQ(thk_frame_dequantize_semantic(&h, &frame, pose, expression), THK_E_WRONG_KIND);
    thk_header learned = header_v1_example();
    EQ(thk_frame_dequantize_hybrid(&learned, &frame, pose, expression, kp, jac), THK_E_WRONG_KIND);
    EQ(thk_header_check_prior(&learned, prior, 2), THK_E_WRONG_KIND);
    static thk_encoder other;
    EQ(thk_encoder_init(&other, &learned), THK_OK);
    EQ(thk_encoder_encode_hybrid(&other, pose, expression, kp, jac, 0, packet, sizeof packet, &written),
       THK_E_WRONG_KIND);
    /* missing arrays, NaN, an output buffer too small */
    EQ(thk_encoder_encode_hybrid(&enc, pose0, expr0, kp0, NULL, 80, packet, sizeof packet, &written), THK_E_ARGUMENT);
    EQ(thk_encoder_encode_hybrid(&enc, pose0, NULL, kp0, jac0, 80, packet, sizeof packet, &written), THK_E_ARGUMENT);
    const float nan_kp[4] = {NAN, 0, 0, 0};
    EQ(thk_encoder_encode_hybrid(&enc, pose0, expr0, nan_kp, jac0, 80, packet, sizeof packet, &written),
       THK_E_NOT_FINITE);
    EQ(thk_encoder_encode_hybrid(&enc, pose0, expr0, kp0, jac0, 80, packet, 1, &written), THK_E_BUFFER);
    /* forged headers: each rule of section 13.2 */
    unhex("54 48 4b 43 02 02 03 02 80 00 a8 61 00 00 00 00 01 00 00 00 01 00 00 40 00 00 80 00 00 00 "
          "80 00 00 00 00 02 00 00 00 20 00 00 02 00 04 00 08 19 40 55 46 10 6d 57 48 43 21 04 64 65 "
          "6d 6f 00 11 22 33 44 55 66 77 bf 17 af 5d", bytes);
    n = 74;
    EQ(thk_header_parse(&parsed, bytes, n - 1), THK_E_HEADER_LENGTH);
    EQ(thk_header_parse(&parsed, bytes, 57), THK_E_HEADER_LENGTH);
    bytes[70] ^= 1; EQ(thk_header_parse(&parsed, bytes, n), THK_E_HEADER_CRC); bytes[70] ^= 1;
    bytes[5] = 3; EQ(thk_header_parse(&parsed, bytes, n), THK_E_HEADER_KIND); bytes[5] = 2;
    thk_header forged = h;
    forged.num_kp = 0; EQ(thk_header_write(&forged, bytes, sizeof bytes, &written), THK_E_HEADER_FIELD);
    forged = h; forged.kp_step = 0; EQ(thk_header_write(&forged, bytes, sizeof bytes, &written), THK_E_HEADER_FIELD);
    forged = h; forged.jac_step = 0x10000; EQ(thk_header_write(&forged, bytes, sizeof bytes, &written), THK_E_HEADER_FIELD);
    forged = h; forged.extra_dims = 1; EQ(thk_header_write(&forged, bytes, sizeof bytes, &written), THK_E_HEADER_FIELD);
    forged = h; forged.pose_steps[0] = 0; EQ(thk_header_write(&forged, bytes, sizeof bytes, &written), THK_E_HEADER_FIELD);
    forged = h; forged.expression_step = 16 * 65536 + 1;
    EQ(thk_header_write(&forged, bytes, sizeof bytes, &written), THK_E_HEADER_FIELD);
    /* a forged field with a valid CRC: flag bit2, K = 0, a keypoint step of 0, a Jacobian step of 0 */
    static const size_t offsets[4] = {6, 42, 43, 45};
    static const uint8_t values[4] = {0x07, 0, 0, 0};
    for (int i = 0; i < 4; i++) {
        EQ(thk_header_write(&h, bytes, sizeof bytes, &written), THK_OK);
        bytes[offsets[i]] = values[i];
        if (offsets[i] == 43 || offsets[i] == 45) bytes[offsets[i] + 1] = 0;
        uint32_t crc = 0xFFFFFFFFu;  /* CRC-32 (IEEE) of all but the last 4 bytes */
        for (size_t b = 0; b < written - 4; b++) {
            crc ^= bytes[b];
            for (int bit = 0; bit < 8; bit++) crc = crc >> 1 ^ (0xEDB88320u & (0u - (crc & 1)));
        }
        crc = ~crc;
        for (int b = 0; b < 4; b++) bytes[written - 4 + b] = (uint8_t)(crc >> (8 * b));
        EQ(thk_header_parse(&parsed, bytes, written), THK_E_HEADER_FIELD);
    }
}

static void test_bad_headers_and_packets(void) {
    uint8_t bytes[400];
    size_t n;
    thk_header h = header_v1_example(), parsed;
    thk_header_write(&h, bytes, sizeof bytes, &n);
    EQ(thk_header_parse(&parsed, bytes, 3), THK_E_HEADER_LENGTH);
    EQ(thk_header_parse(&parsed, bytes, n - 1), THK_E_HEADER_LENGTH);
    bytes[0] ^= 1; EQ(thk_header_parse(&parsed, bytes, n), THK_E_HEADER_MAGIC); bytes[0] ^= 1;
    bytes[4] = 3; EQ(thk_header_parse(&parsed, bytes, n), THK_E_HEADER_VERSION); bytes[4] = 1;
    bytes[30] ^= 0x10; EQ(thk_header_parse(&parsed, bytes, n), THK_E_HEADER_CRC); bytes[30] ^= 0x10;
    uint8_t v2[8] = {'T', 'H', 'K', 'C', 2, 9, 0, 0};
    EQ(thk_header_parse(&parsed, v2, sizeof v2), THK_E_HEADER_KIND);
    h.num_kp = 0; EQ(thk_header_write(&h, bytes, sizeof bytes, &n), THK_E_HEADER_FIELD); h.num_kp = 2;
    h.keyframe_interval = 128; EQ(thk_header_write(&h, bytes, sizeof bytes, &n), THK_E_HEADER_FIELD);
    h.keyframe_interval = 25;
    h.model_id[0] = (char)0xC0; EQ(thk_header_write(&h, bytes, sizeof bytes, &n), THK_E_HEADER_FIELD);  /* not UTF-8 */
    strcpy(h.model_id, "demo");
    EQ(thk_header_write(&h, bytes, 10, &n), THK_E_BUFFER);

    static thk_decoder dec;
    static thk_frame frame;
    thk_decoder_init(&dec, &h);
    uint8_t short_packet[1] = {0x80}, bad_marker[4] = {0x81, 0, 0, 0}, distance_too_far[3] = {25, 0, 0};
    uint8_t bad_varint[12] = {0x80, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0};
    uint8_t trailing[40] = {0x80, 0, 0, 0};
    EQ(thk_decoder_decode(&dec, short_packet, 1, &frame), THK_E_MALFORMED);
    EQ(thk_decoder_decode(&dec, bad_marker, 4, &frame), THK_E_MALFORMED);
    EQ(thk_decoder_decode(&dec, distance_too_far, 3, &frame), THK_E_MALFORMED);
    EQ(thk_decoder_decode(&dec, bad_varint, sizeof bad_varint, &frame), THK_E_MALFORMED);
    trailing[39] = 1;  /* a keyframe whose payload is mostly zeros followed by a late byte */
    EQ(thk_decoder_decode(&dec, trailing, sizeof trailing, &frame), THK_E_MALFORMED);
    uint8_t delta[4] = {1, 0, 0, 0};
    EQ(thk_decoder_decode(&dec, delta, 4, &frame), THK_E_MISSING_REFERENCE);
    EQ(dec.stats.malformed, 5);
    EQ(dec.stats.missing_reference, 1);
    EQ(thk_decoder_decode(NULL, delta, 4, &frame), THK_E_ARGUMENT);
    /* encoder input */
    static thk_encoder enc;
    thk_encoder_init(&enc, &h);
    float kp[4] = {0, NAN, 0, 0}, jac[8] = {1, 0, 0, 1, 1, 0, 0, 1};
    uint8_t packet[64];
    EQ(thk_encoder_encode_learned(&enc, kp, jac, NULL, 0, packet, sizeof packet, &n), THK_E_NOT_FINITE);
    kp[1] = 0;
    EQ(thk_encoder_encode_learned(&enc, kp, jac, NULL, 1ull << 63, packet, sizeof packet, &n), THK_E_TIMESTAMP);
    EQ(thk_encoder_encode_learned(&enc, kp, jac, NULL, 0, packet, 3, &n), THK_E_BUFFER);
    EQ(enc.stats.frames, 0);  /* nothing was sent: the state is unchanged */
    EQ(thk_encoder_encode_learned(&enc, kp, jac, NULL, 0, packet, sizeof packet, &n), THK_OK);
    CHECK(n <= thk_max_packet_bytes(&h));
}

static void test_motion(void) {
    const float square[8] = {-0.5f, -0.5f, 0.5f, -0.5f, 0.5f, 0.5f, -0.5f, 0.5f}, inner[2] = {0, 0};
    float points[10];
    memcpy(points, square, sizeof square);
    memcpy(points + 8, inner, sizeof inner);
    double area;
    EQ(thk_hull_area(points, 5, &area), THK_OK);
    CHECK(area == 1.0);
    const float line[6] = {0, 0, 1, 1, 2, 2};
    EQ(thk_hull_area(line, 3, &area), THK_E_DEGENERATE_HULL);
    EQ(thk_hull_area(line, 2, &area), THK_E_DEGENERATE_HULL);
    float scale;
    EQ(thk_movement_scale(1.0, 4.0, &scale), THK_OK);
    CHECK(scale == 0.5f);
    EQ(thk_movement_scale(1.0, 0.0, &scale), THK_E_DEGENERATE_HULL);
    const float d[2] = {0.3f, 0.1f}, a[2] = {0.1f, 0.1f}, s[2] = {0, 0};
    const float jd[4] = {2, 0, 0, 2}, ja[4] = {1, 0, 0, 1}, js[4] = {1, 1, 0, 1}, singular[4] = {0, 0, 0, 0};
    float value[2], jacobian[4];
    EQ(thk_relative_motion(1, d, jd, a, ja, s, js, 0.5f, 1, value, jacobian), THK_OK);
    CHECK(value[0] == (0.3f - 0.1f) * 0.5f && value[1] == 0);
    CHECK(jacobian[0] == 2 && jacobian[1] == 2 && jacobian[2] == 0 && jacobian[3] == 2);
    EQ(thk_relative_motion(1, d, jd, a, singular, s, js, 0.5f, 1, value, jacobian), THK_E_SINGULAR);
    EQ(thk_relative_motion(1, d, jd, a, singular, s, js, 0.5f, 0, value, jacobian), THK_OK);
    CHECK(memcmp(jacobian, js, sizeof js) == 0);
}

#ifndef THK_NO_TRANSPORT
static void test_transport(void) {
    EQ(thk_crypto_init(), THK_OK);
    uint8_t secret[32] = {1}, salt_s[16] = {2}, salt_r[16] = {3}, forward[32], backward[32], hello[32];
    EQ(thk_derive_session_keys(secret, 31, salt_s, salt_r, forward, backward), THK_E_KEY_LENGTH);
    EQ(thk_derive_hello_key(secret, 33, salt_s, hello), THK_E_KEY_LENGTH);
    EQ(thk_derive_session_keys(secret, 32, salt_s, salt_r, forward, backward), THK_OK);
    CHECK(memcmp(forward, backward, 32) != 0);
    static thk_frame_receiver r;
    EQ(thk_frame_receiver_init(&r, forward, 77, 0.06, 16), THK_OK);
    uint8_t datagram[256], plaintext[128], out[2048];
    size_t n, length;
    const uint8_t *copies[1];
    size_t copy_lengths[1];
    uint8_t packets[4][3] = {{0x80, 0, 0}, {1, 0, 1}, {2, 0, 2}, {3, 0, 3}};
    /* frame 0, then frame 2 carrying a copy of frame 1 (frame 1's own datagram lost) */
    EQ(thk_frame_payload_write(packets[0], 3, 0, NULL, NULL, plaintext, sizeof plaintext, &length), THK_OK);
    EQ(thk_datagram_seal(forward, THK_FRAME, 77, 0, NULL, plaintext, length, datagram, sizeof datagram, &n), THK_OK);
    EQ(thk_frame_receiver_handle(&r, datagram, n, 0.0), THK_OK);
    EQ(thk_frame_receiver_handle(&r, datagram, n, 0.0), THK_E_DUPLICATE);  /* replayed */
    copies[0] = packets[1]; copy_lengths[0] = 3;
    thk_frame_payload_write(packets[2], 3, 1, copies, copy_lengths, plaintext, sizeof plaintext, &length);
    thk_datagram_seal(forward, THK_FRAME, 77, 2, NULL, plaintext, length, datagram, sizeof datagram, &n);
    datagram[n - 1] ^= 1;
    EQ(thk_frame_receiver_handle(&r, datagram, n, 0.01), THK_E_FORGED);
    datagram[n - 1] ^= 1;
    EQ(thk_frame_receiver_handle(&r, datagram, 8, 0.01), THK_E_TRUNCATED);
    EQ(thk_frame_receiver_handle(&r, datagram, 20, 0.01), THK_E_TRUNCATED);  /* no room for a tag */
    datagram[1] ^= 1;
    EQ(thk_frame_receiver_handle(&r, datagram, n, 0.01), THK_E_OTHER_SESSION);
    datagram[1] ^= 1;
    datagram[0] = 9;
    EQ(thk_frame_receiver_handle(&r, datagram, n, 0.01), THK_E_GARBAGE);
    datagram[0] = THK_FRAME;
    EQ(thk_frame_receiver_handle(&r, datagram, n, 0.01), THK_OK);
    for (int expected = 0; expected < 3; expected++) {
        EQ(thk_frame_receiver_pop(&r, 0.02, out, sizeof out, &length), 1);
        EQ(out[2], expected);
    }
    EQ(thk_frame_receiver_pop(&r, 0.02, out, sizeof out, &length), 0);
    EQ(r.stats.recovered, 1);
    EQ(r.stats.delivered, 3);
    EQ(r.stats.duplicates, 1);
    EQ(r.stats.forged, 1);
    EQ(r.stats.truncated, 2);
    EQ(r.stats.other_session, 1);
    EQ(r.stats.garbage, 1);
    /* an authentic FRAME with an inconsistent plaintext */
    uint8_t broken[3] = {2, 9, 0};
    thk_datagram_seal(forward, THK_FRAME, 77, 3, NULL, broken, 3, datagram, sizeof datagram, &n);
    EQ(thk_frame_receiver_handle(&r, datagram, n, 0.03), THK_E_FRAME_MALFORMED);
    EQ(r.stats.malformed, 1);
    /* far ahead, then one below the window: too old */
    thk_frame_payload_write(packets[3], 3, 0, NULL, NULL, plaintext, sizeof plaintext, &length);
    thk_datagram_seal(forward, THK_FRAME, 77, 1000, NULL, plaintext, length, datagram, sizeof datagram, &n);
    EQ(thk_frame_receiver_handle(&r, datagram, n, 0.04), THK_OK);
    thk_datagram_seal(forward, THK_FRAME, 77, 700, NULL, plaintext, length, datagram, sizeof datagram, &n);
    EQ(thk_frame_receiver_handle(&r, datagram, n, 0.04), THK_E_TOO_OLD);
    /* an authentic FRAME whose packet is over a jitter slot: received, refused there, said so */
    static uint8_t big_packet[THK_JITTER_SLOT_BYTES + 1], big_plaintext[THK_JITTER_SLOT_BYTES + 2],
        big_datagram[THK_JITTER_SLOT_BYTES + 64];
    EQ(thk_frame_payload_write(big_packet, sizeof big_packet, 0, NULL, NULL, big_plaintext, sizeof big_plaintext,
                               &length), THK_OK);
    EQ(thk_datagram_seal(forward, THK_FRAME, 77, 1001, NULL, big_plaintext, length, big_datagram,
                         sizeof big_datagram, &n), THK_OK);
    uint64_t received = r.stats.received;
    EQ(thk_frame_receiver_handle(&r, big_datagram, n, 0.04), THK_E_OVERSIZED);
    EQ(r.stats.received, received + 1);
    EQ(r.jitter.counts.oversized, 1);
    EQ(thk_frame_receiver_handle(&r, big_datagram, n, 0.04), THK_E_DUPLICATE);  /* in the replay window */
    /* the gap before 1000 is given up after the gap wait */
    EQ(thk_frame_receiver_pop(&r, 0.05, out, sizeof out, &length), 0);
    EQ(thk_frame_receiver_pop(&r, 0.11, out, sizeof out, &length), 1);
    EQ(r.jitter.counts.lost, 997);

    /* the jitter buffer alone: reordering, late, overflow */
    static thk_jitter j;
    EQ(thk_jitter_init(&j, 0.06, 2), THK_OK);
    EQ(thk_jitter_init(&j, 0.06, THK_JITTER_MAX_CAPACITY + 1), THK_E_ARGUMENT);
    thk_jitter_init(&j, 0.06, 2);
    uint8_t p = 0;
    thk_jitter_push(&j, 1, &p, 1, 0);
    thk_jitter_push(&j, 0, &p, 1, 0);
    EQ(j.counts.reordered, 1);
    thk_jitter_push(&j, 2, &p, 1, 0);   /* over capacity, no gap: the oldest is dropped */
    EQ(j.counts.overflow, 1);
    EQ(j.next_number, 1);
    thk_jitter_push(&j, 0, &p, 1, 0);
    EQ(j.counts.late, 1);
    static uint8_t huge[THK_JITTER_SLOT_BYTES + 1];
    EQ(thk_jitter_push(&j, 5, huge, sizeof huge, 0), THK_E_OVERSIZED);
    EQ(j.counts.oversized, 1);
}
#endif

int main(void) {
    test_learned_worked_example();
    test_semantic_worked_example();
    test_hybrid_worked_example();
    test_bad_headers_and_packets();
    test_motion();
#ifndef THK_NO_TRANSPORT
    test_transport();
#endif
    printf("%d checks, %d failures\n", checks, failures);
    return failures != 0;
}
