/* The code stream of docs/bitstream.md: arithmetic coder (section 3), group coding (section 5),
 * headers (sections 2, 11.2, 13.2), packets, prediction and quantization (sections 4, 6, 11.3-11.4,
 * 13.3). The hybrid kind is the semantic part then the learned part through the same helpers.
 * Integer-only except the encoder's quantization, which follows the Python's float64 steps. */
#include "thk.h"

#include <math.h>
#include <string.h>

/* ---- status names ------------------------------------------------------------------------------ */
const char *thk_status_name(int status) {
    switch (status) {
    case THK_OK: return "ok";
    case THK_E_ARGUMENT: return "argument";
    case THK_E_BUFFER: return "buffer";
    case THK_E_HEADER_LENGTH: return "header_length";
    case THK_E_HEADER_MAGIC: return "header_magic";
    case THK_E_HEADER_VERSION: return "header_version";
    case THK_E_HEADER_KIND: return "header_kind";
    case THK_E_HEADER_CRC: return "header_crc";
    case THK_E_HEADER_FIELD: return "header_field";
    case THK_E_WRONG_KIND: return "wrong_kind";
    case THK_E_PRIOR_MISMATCH: return "prior_mismatch";
    case THK_E_MALFORMED: return "malformed";
    case THK_E_MISSING_REFERENCE: return "missing_reference";
    case THK_E_STALE: return "stale";
    case THK_E_NOT_FINITE: return "not_finite";
    case THK_E_TIMESTAMP: return "timestamp";
    case THK_E_KEY_LENGTH: return "key_length";
    case THK_E_TRUNCATED: return "truncated";
    case THK_E_GARBAGE: return "garbage";
    case THK_E_FORGED: return "forged";
    case THK_E_DUPLICATE: return "duplicate";
    case THK_E_TOO_OLD: return "too_old";
    case THK_E_OTHER_SESSION: return "other_session";
    case THK_E_FRAME_MALFORMED: return "frame_malformed";
    case THK_E_OVERSIZED: return "oversized";
    case THK_E_CRYPTO_INIT: return "crypto_init";
    case THK_E_SINGULAR: return "singular";
    case THK_E_DEGENERATE_HULL: return "degenerate_hull";
    default: return "unknown";
    }
}

size_t thk_struct_size(int which) {
    switch (which) {
    case THK_SIZE_HEADER: return sizeof(thk_header);
    case THK_SIZE_FRAME: return sizeof(thk_frame);
    case THK_SIZE_DECODER: return sizeof(thk_decoder);
    case THK_SIZE_ENCODER: return sizeof(thk_encoder);
    case THK_SIZE_JITTER: return sizeof(thk_jitter);
    case THK_SIZE_FRAME_RECEIVER: return sizeof(thk_frame_receiver);
    default: return 0;
    }
}

/* ---- the frozen tables (bitstream.md section 5; sdk/codec/tables.py) --------------------------- */
#define TOTAL 32768u
#define ESCAPE 16
#define MAX_SHIFT 24
#define MAX_ESCAPE_BITS 24
#define HALVE_AT 32
static const uint16_t CUMULATIVE[13][18] = {
    {0, 31786, 32740, 32754, 32755, 32756, 32757, 32758, 32759, 32760, 32761, 32762, 32763, 32764, 32765, 32766, 32767, 32768},
    {0, 31313, 32722, 32754, 32755, 32756, 32757, 32758, 32759, 32760, 32761, 32762, 32763, 32764, 32765, 32766, 32767, 32768},
    {0, 30618, 32683, 32753, 32755, 32756, 32757, 32758, 32759, 32760, 32761, 32762, 32763, 32764, 32765, 32766, 32767, 32768},
    {0, 29605, 32596, 32747, 32755, 32756, 32757, 32758, 32759, 32760, 32761, 32762, 32763, 32764, 32765, 32766, 32767, 32768},
    {0, 28156, 32409, 32730, 32754, 32756, 32757, 32758, 32759, 32760, 32761, 32762, 32763, 32764, 32765, 32766, 32767, 32768},
    {0, 26133, 32013, 32674, 32748, 32756, 32757, 32758, 32759, 32760, 32761, 32762, 32763, 32764, 32765, 32766, 32767, 32768},
    {0, 23420, 31206, 32500, 32715, 32751, 32757, 32758, 32759, 32760, 32761, 32762, 32763, 32764, 32765, 32766, 32767, 32768},
    {0, 20017, 29684, 32017, 32580, 32716, 32749, 32757, 32759, 32760, 32761, 32762, 32763, 32764, 32765, 32766, 32767, 32768},
    {0, 16133, 27108, 30839, 32108, 32539, 32686, 32736, 32753, 32759, 32761, 32762, 32763, 32764, 32765, 32766, 32767, 32768},
    {0, 12226, 23390, 28486, 30812, 31874, 32359, 32580, 32681, 32727, 32748, 32758, 32762, 32764, 32765, 32766, 32767, 32768},
    {0, 8789, 18933, 24785, 28162, 30110, 31234, 31883, 32257, 32473, 32598, 32670, 32711, 32735, 32749, 32757, 32762, 32768},
    {0, 6095, 14463, 20205, 24146, 26851, 28707, 29981, 30855, 31455, 31867, 32150, 32344, 32477, 32568, 32631, 32674, 32768},
    {0, 4142, 10569, 15552, 19416, 22413, 24737, 26540, 27938, 29022, 29863, 30515, 31021, 31413, 31717, 31953, 32136, 32768},
};
/* the 12 table bounds, then 4 above any of them so that a binary search over 16 finds the table */
static const uint16_t BOUNDS[16] = {9, 14, 21, 32, 48, 71, 107, 161, 241, 362, 542, 814, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF};

/* ---- arithmetic coder (section 3) ---------------------------------------------------------------- */
#define TOP 0xFFFFFFFFull
#define HALF 0x80000000ull
#define QUARTER 0x40000000ull

typedef struct {
    uint64_t low, high, pending, bits;
    uint8_t *out;
    size_t capacity;
    int overflow;
} arith_encoder;

typedef struct {
    const uint8_t *data;
    size_t length;
    uint64_t position, low, high, value;
} arith_decoder;

static void enc_init(arith_encoder *e, uint8_t *out, size_t capacity) {
    e->low = 0; e->high = TOP; e->pending = 0; e->bits = 0;
    e->out = out; e->capacity = capacity; e->overflow = 0;
}

static void enc_put(arith_encoder *e, int bit) {
    size_t index = (size_t)(e->bits >> 3);
    if (index >= e->capacity) { e->overflow = 1; e->bits++; return; }
    if ((e->bits & 7) == 0) e->out[index] = 0;
    if (bit) e->out[index] |= (uint8_t)(0x80u >> (e->bits & 7));
    e->bits++;
}

static void enc_emit(arith_encoder *e, int bit) {
    enc_put(e, bit);
    for (; e->pending; e->pending--) enc_put(e, !bit);
}

static void enc_encode(arith_encoder *e, uint32_t low, uint32_t high, uint32_t total) {
    uint64_t span = e->high - e->low + 1;
    e->high = e->low + span * high / total - 1;
    e->low = e->low + span * low / total;
    for (;;) {
        if (e->high < HALF) {
            enc_emit(e, 0);
        } else if (e->low >= HALF) {
            enc_emit(e, 1); e->low -= HALF; e->high -= HALF;
        } else if (e->low >= QUARTER && e->high < HALF + QUARTER) {
            e->pending++; e->low -= QUARTER; e->high -= QUARTER;
        } else {
            break;
        }
        e->low = 2 * e->low; e->high = 2 * e->high + 1;
    }
}

static void enc_bits(arith_encoder *e, uint64_t value, int count) {
    for (int shift = count - 1; shift >= 0; shift--) {
        uint32_t bit = (uint32_t)(value >> shift & 1);
        enc_encode(e, bit, bit + 1, 2);
    }
}

/* Bytes of payload after finishing: padded to a byte, trailing zero bytes dropped. */
static size_t enc_finish(arith_encoder *e) {
    e->pending++;
    enc_emit(e, e->low < QUARTER ? 0 : 1);
    size_t n = (size_t)((e->bits + 7) >> 3);
    if (n > e->capacity) { e->overflow = 1; return 0; }
    while (n && e->out[n - 1] == 0) n--;
    return n;
}

/* The decoder's per-symbol helpers are forced inline into decode_values, which holds the coder's state
 * in a local: registers, no load or store (and, in the fuzz build, no sanitizer check) per bit. */
#define HOT_INLINE static inline __attribute__((always_inline))

/* Leading zeros of x < 2^32 as a 32-bit number (32 for 0: the bit below x stops the count). */
HOT_INLINE unsigned leading_zeros32(uint64_t x) { return (unsigned)__builtin_clzll(x << 32 | 1ull << 31); }

/* The next `count` (<= 32) bits of the payload, zeros past its end. */
HOT_INLINE uint64_t dec_take(arith_decoder *d, unsigned count) {
    uint64_t position = d->position, end = 8 * (uint64_t)d->length, bits = 0;
    d->position = position + count;
    if (position >= end) return 0;  /* the common case of a short packet's last symbols */
    while (count) {
        if (position >= end) return bits << count;
        unsigned offset = (unsigned)(position & 7), n = 8 - offset < count ? 8 - offset : count;
        bits = bits << n | (uint64_t)(d->data[position >> 3] >> (8 - offset - n) & ((1u << n) - 1));
        position += n;
        count -= n;
    }
    return bits;
}

static void dec_init(arith_decoder *d, const uint8_t *data, size_t length) {
    d->data = data; d->length = length; d->position = 0; d->low = 0; d->high = TOP;
    d->value = dec_take(d, 32);
}

HOT_INLINE uint32_t dec_target(const arith_decoder *d, uint32_t total) {
    uint64_t low = d->low, span = d->high - low + 1;
    return (uint32_t)(((d->value - low + 1) * total - 1) / span);
}

/* Section 3's renormalization, its steps taken at once (the same bits, far fewer branches): first
 * every leading bit low and high share (a step doubles both, dropping that bit), then every underflow
 * step (low 01..., high 10...: a step keeps the first bit and drops the second). No underflow step
 * can be followed by a shared bit, so the bit-by-bit loop does exactly these two runs. */
HOT_INLINE void dec_consume(arith_decoder *d, uint32_t low, uint32_t high, uint32_t total) {
    uint64_t base = d->low, span = d->high - base + 1, value = d->value;
    uint64_t lo = base + span * low / total, hi = base + span * high / total - 1;
    unsigned shared = leading_zeros32(lo ^ hi);
    if (shared) {
        lo = lo << shared & TOP;
        hi = (hi << shared | ((1ull << shared) - 1)) & TOP;
        value = (value << shared | dec_take(d, shared)) & TOP;
    }
    unsigned underflow = leading_zeros32((~lo | hi) & (HALF - 1)) - 1;
    if (underflow) {
        lo = (lo & HALF) | (lo << underflow & (HALF - 1));
        hi = (hi & HALF) | (hi << underflow & (HALF - 1)) | ((1ull << underflow) - 1);
        value = (value & HALF) | (value << underflow & (HALF - 1)) | dec_take(d, underflow);
    }
    d->low = lo; d->high = hi; d->value = value;
}

HOT_INLINE uint64_t dec_bits(arith_decoder *d, int count) {
    uint64_t value = 0;
    for (int i = 0; i < count; i++) {
        uint32_t bit = dec_target(d, 2) >= 1;
        dec_consume(d, bit, bit + 1, 2);
        value = value << 1 | bit;
    }
    return value;
}

/* ---- group coding (section 5) -------------------------------------------------------------------- */
typedef struct { int64_t sum16, count; } group_state;

static group_state group_prior(int64_t mean16) { group_state s = {2 * mean16, 2}; return s; }

HOT_INLINE void group_model(const group_state *s, int *shift_out, int *table_out) {
    int64_t sum16 = s->sum16, count = s->count;
    /* the smallest shift (at most MAX_SHIFT) with sum16 < (64 count) << shift: the bit length of
     * sum16 // (64 count), since sum16 >= (64 count) << shift <=> sum16 // (64 count) >= 2^shift */
    uint64_t quotient = (uint64_t)(sum16 / (64 * count));
    int shift = quotient ? 64 - __builtin_clzll(quotient) : 0;
    if (shift > MAX_SHIFT) shift = MAX_SHIFT;
    /* mean256 = sum16 * 16 // (count << shift) >= B  <=>  sum16 >= ceil(B * (count << shift) / 16),
     * which keeps every product inside 64 bits for any magnitude a packet can hold */
    int64_t denominator = count << shift;
    int table = 0;  /* how many bounds sum16 reaches (they increase): at most 4 steps, then at most 12 */
    for (int step = 8; step; step /= 2)
        if (sum16 >= ((int64_t)BOUNDS[table + step - 1] * denominator + 15) / 16) table += step;
    if (table > 12) table = 12;
    *shift_out = shift;
    *table_out = table;
}

HOT_INLINE void group_update(group_state *s, int64_t magnitude) {
    s->sum16 += 16 * magnitude;
    s->count += 1;
    if (s->count >= HALVE_AT) { s->sum16 /= 2; s->count /= 2; }
}

static int encode_values(arith_encoder *e, const int64_t *values, uint32_t count, group_state state) {
    for (uint32_t i = 0; i < count; i++) {
        int64_t value = values[i];
        uint64_t magnitude = value < 0 ? (uint64_t)0 - (uint64_t)value : (uint64_t)value;
        int shift, table;
        group_model(&state, &shift, &table);
        uint64_t high = magnitude >> shift;
        int symbol = high < ESCAPE ? (int)high : ESCAPE;
        enc_encode(e, CUMULATIVE[table][symbol], CUMULATIVE[table][symbol + 1], TOTAL);
        if (symbol == ESCAPE) {
            uint64_t x = high - ESCAPE + 1;
            int length = 0;
            while ((x >> (length + 1)) != 0) length++;
            if (length > MAX_ESCAPE_BITS) return THK_E_ARGUMENT;
            enc_bits(e, (1ull << (length + 1)) - 2, length + 1);
            enc_bits(e, x & ((1ull << length) - 1), length);
        }
        if (shift) enc_bits(e, magnitude & ((1ull << shift) - 1), shift);
        if (magnitude) enc_bits(e, value < 0 ? 1 : 0, 1);
        group_update(&state, (int64_t)magnitude);
    }
    return THK_OK;
}

static int decode_values(arith_decoder *decoder, int64_t *values, uint32_t count, group_state state) {
    arith_decoder local = *decoder, *d = &local;  /* on an error the caller drops the coder */
    for (uint32_t i = 0; i < count; i++) {
        int shift, table;
        group_model(&state, &shift, &table);
        const uint16_t *cumulative = CUMULATIVE[table];
        uint32_t target = dec_target(d, TOTAL);
        int symbol = 0;
        while (cumulative[symbol + 1] <= target) symbol++;
        dec_consume(d, cumulative[symbol], cumulative[symbol + 1], TOTAL);
        uint64_t high = (uint64_t)symbol;
        if (symbol == ESCAPE) {
            int length = 0;
            while (dec_bits(d, 1)) {
                if (++length > MAX_ESCAPE_BITS) return THK_E_MALFORMED;
            }
            high = ESCAPE + ((1ull << length) | dec_bits(d, length)) - 1;
        }
        uint64_t magnitude = high << shift | (shift ? dec_bits(d, shift) : 0);
        int negative = magnitude ? (int)dec_bits(d, 1) : 0;
        values[i] = negative ? -(int64_t)magnitude : (int64_t)magnitude;
        group_update(&state, (int64_t)magnitude);
    }
    *decoder = local;
    return THK_OK;
}

/* ---- varints ------------------------------------------------------------------------------------- */
static size_t put_varint(uint8_t *out, uint64_t value) {
    size_t n = 0;
    for (;;) {
        uint8_t byte = value & 0x7F;
        value >>= 7;
        if (value) { out[n++] = byte | 0x80; } else { out[n++] = byte; return n; }
    }
}

static int get_varint(const uint8_t *data, size_t length, size_t *offset, uint64_t *value) {
    uint64_t result = 0;
    for (size_t index = 0; index < 9; index++) {
        if (*offset + index >= length) return THK_E_MALFORMED;
        uint8_t byte = data[*offset + index];
        result |= (uint64_t)(byte & 0x7F) << (7 * index);
        if (!(byte & 0x80)) { *offset += index + 1; *value = result; return THK_OK; }
    }
    return THK_E_MALFORMED;
}

/* ---- headers (sections 2, 11.2) ------------------------------------------------------------------ */
static uint32_t crc32_ieee(const uint8_t *data, size_t length) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < length; i++) {
        crc ^= data[i];
        for (int bit = 0; bit < 8; bit++) crc = crc >> 1 ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | rd16(p + 2) << 16; }
static void wr16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, v & 0xFFFF); wr16(p + 2, v >> 16); }

/* Strict UTF-8 as Python decodes it: no overlong forms, no surrogates, nothing above U+10FFFF. */
static int valid_utf8(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t extra;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) extra = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            extra = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            extra = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else return 0;
        if (i + extra >= n) return 0;
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t k = 2; k <= extra; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
        i += extra + 1;
    }
    return 1;
}

#define V1_FIXED 22
#define V2_FIXED 52
#define HYBRID_FIXED 57
static const uint32_t POSE_LIMITS[6] = {180, 180, 180, 4, 4, 4};
#define EXPRESSION_LIMIT 16

static int check_fields(const thk_header *h) {
    if (h->resolution < 1 || h->resolution > 0xFFFF || h->fps_millihertz == 0) return THK_E_HEADER_FIELD;
    if (h->keyframe_interval < 1 || h->keyframe_interval > 127 || h->hysteresis256 > 255) return THK_E_HEADER_FIELD;
    if (h->model_id_length > THK_MAX_MODEL_ID || !valid_utf8((const uint8_t *)h->model_id, h->model_id_length))
        return THK_E_HEADER_FIELD;
    if (h->reference != THK_REF_PREVIOUS && h->reference != THK_REF_KEYFRAME) return THK_E_HEADER_FIELD;
    if (h->kind != THK_KIND_LEARNED && h->kind != THK_KIND_SEMANTIC && h->kind != THK_KIND_HYBRID)
        return THK_E_ARGUMENT;
    if (h->kind != THK_KIND_SEMANTIC) {  /* the learned part (a hybrid stream's has no extra dims) */
        if (h->num_kp < 1 || h->num_kp > THK_MAX_KP || h->extra_dims > THK_MAX_EXTRA) return THK_E_HEADER_FIELD;
        if (h->kp_step < 1 || h->kp_step > 0xFFFF || h->jac_step < 1 || h->jac_step > 0xFFFF) return THK_E_HEADER_FIELD;
        if (h->kind == THK_KIND_LEARNED ? h->extra_step < 1 || h->extra_step > 0xFFFF : h->extra_dims != 0)
            return THK_E_HEADER_FIELD;
    }
    if (h->kind != THK_KIND_LEARNED) {  /* the semantic part */
        if (h->expression_dims > THK_MAX_EXPRESSION) return THK_E_HEADER_FIELD;
        for (int i = 0; i < 6; i++)
            if (h->pose_steps[i] < 1 || h->pose_steps[i] > POSE_LIMITS[i] * 65536u) return THK_E_HEADER_FIELD;
        if (h->expression_step < 1 || h->expression_step > EXPRESSION_LIMIT * 65536u) return THK_E_HEADER_FIELD;
    }
    return THK_OK;
}

int thk_header_parse(thk_header *h, const uint8_t *data, size_t length) {
    if (!h || (!data && length)) return THK_E_ARGUMENT;
    memset(h, 0, sizeof *h);
    if (length < 5) return THK_E_HEADER_LENGTH;
    if (memcmp(data, "THKC", 4) != 0) return THK_E_HEADER_MAGIC;
    if (data[4] != 1 && data[4] != 2) return THK_E_HEADER_VERSION;
    if (data[4] == 2 && length > 5 && data[5] != 1 && data[5] != 2) return THK_E_HEADER_KIND;
    int kind = data[4] == 1 ? THK_KIND_LEARNED : length > 5 && data[5] == 2 ? THK_KIND_HYBRID : THK_KIND_SEMANTIC;
    size_t fixed = kind == THK_KIND_LEARNED ? V1_FIXED : kind == THK_KIND_SEMANTIC ? V2_FIXED : HYBRID_FIXED;
    if (length < fixed + 1) return THK_E_HEADER_LENGTH;
    size_t id_length = data[fixed];
    size_t expected = fixed + 1 + id_length + 8 + 4;
    if (length != expected) return THK_E_HEADER_LENGTH;
    if (rd32(data + expected - 4) != crc32_ieee(data, expected - 4)) return THK_E_HEADER_CRC;
    if (!valid_utf8(data + fixed + 1, id_length)) return THK_E_HEADER_FIELD;
    h->model_id_length = (uint32_t)id_length;
    memcpy(h->model_id, data + fixed + 1, id_length);
    h->model_id[id_length] = 0;
    memcpy(h->model_sha_prefix, data + expected - 12, 8);
    h->resolution = rd16(data + 8);
    h->fps_millihertz = rd32(data + 10);
    if (data[4] == 1) {
        uint8_t flags = data[5];
        h->kind = THK_KIND_LEARNED;
        if ((flags & ~0x0F) || !(flags & 0x01)) return THK_E_HEADER_FIELD;
        h->jacobians = (flags & 0x02) != 0;
        h->reference = (flags & 0x08) ? THK_REF_PREVIOUS : THK_REF_KEYFRAME;
        h->num_kp = data[6];
        h->extra_dims = data[7];
        if (((flags & 0x04) != 0) != (h->extra_dims != 0)) return THK_E_HEADER_FIELD;
        h->kp_step = rd16(data + 14);
        h->jac_step = rd16(data + 16);
        h->extra_step = rd16(data + 18);
        h->keyframe_interval = data[20];
        h->hysteresis256 = data[21];
    } else {  /* version 2: the semantic fields, then (hybrid) the learned part's */
        uint8_t flags = data[6];
        size_t tail = kind == THK_KIND_SEMANTIC ? 42 : 47;  /* keyframe interval, hysteresis, prior prefix */
        h->kind = kind;
        if (flags & ~(kind == THK_KIND_SEMANTIC ? 0x01 : 0x03)) return THK_E_HEADER_FIELD;
        h->reference = (flags & 0x01) ? THK_REF_PREVIOUS : THK_REF_KEYFRAME;
        h->expression_dims = data[7];
        for (int i = 0; i < 6; i++) h->pose_steps[i] = rd32(data + 14 + 4 * i);
        h->expression_step = rd32(data + 38);
        if (kind == THK_KIND_HYBRID) {
            h->jacobians = (flags & 0x02) != 0;
            h->num_kp = data[42];
            h->kp_step = rd16(data + 43);
            h->jac_step = rd16(data + 45);
        }
        h->keyframe_interval = data[tail];
        h->hysteresis256 = data[tail + 1];
        memcpy(h->prior_sha_prefix, data + tail + 2, 8);
    }
    return check_fields(h);
}

int thk_header_write(const thk_header *h, uint8_t *out, size_t capacity, size_t *written) {
    if (!h || !out || !written) return THK_E_ARGUMENT;
    int status = check_fields(h);
    if (status) return status;
    size_t fixed = h->kind == THK_KIND_LEARNED ? V1_FIXED : h->kind == THK_KIND_SEMANTIC ? V2_FIXED : HYBRID_FIXED;
    size_t total = fixed + 1 + h->model_id_length + 12;
    if (capacity < total) return THK_E_BUFFER;
    memset(out, 0, total);
    memcpy(out, "THKC", 4);
    wr16(out + 8, h->resolution);
    wr32(out + 10, h->fps_millihertz);
    if (h->kind == THK_KIND_LEARNED) {
        out[4] = 1;
        out[5] = (uint8_t)(0x01 | (h->jacobians ? 0x02 : 0) | (h->extra_dims ? 0x04 : 0) |
                           (h->reference == THK_REF_PREVIOUS ? 0x08 : 0));
        out[6] = (uint8_t)h->num_kp;
        out[7] = (uint8_t)h->extra_dims;
        wr16(out + 14, h->kp_step);
        wr16(out + 16, h->jac_step);
        wr16(out + 18, h->extra_step);
        out[20] = (uint8_t)h->keyframe_interval;
        out[21] = (uint8_t)h->hysteresis256;
    } else {
        int hybrid = h->kind == THK_KIND_HYBRID;
        size_t tail = hybrid ? 47 : 42;
        out[4] = 2;
        out[5] = hybrid ? 2 : 1;
        out[6] = (uint8_t)((h->reference == THK_REF_PREVIOUS ? 0x01 : 0) | (hybrid && h->jacobians ? 0x02 : 0));
        out[7] = (uint8_t)h->expression_dims;
        for (int i = 0; i < 6; i++) wr32(out + 14 + 4 * i, h->pose_steps[i]);
        wr32(out + 38, h->expression_step);
        if (hybrid) {
            out[42] = (uint8_t)h->num_kp;
            wr16(out + 43, h->kp_step);
            wr16(out + 45, h->jac_step);
        }
        out[tail] = (uint8_t)h->keyframe_interval;
        out[tail + 1] = (uint8_t)h->hysteresis256;
        memcpy(out + tail + 2, h->prior_sha_prefix, 8);
    }
    out[fixed] = (uint8_t)h->model_id_length;
    memcpy(out + fixed + 1, h->model_id, h->model_id_length);
    memcpy(out + fixed + 1 + h->model_id_length, h->model_sha_prefix, 8);
    wr32(out + total - 4, crc32_ieee(out, total - 4));
    *written = total;
    return THK_OK;
}

int thk_header_check_prior(const thk_header *h, const uint8_t prior_sha_prefix[8], uint32_t components) {
    if (!h || !prior_sha_prefix) return THK_E_ARGUMENT;
    if (h->kind == THK_KIND_LEARNED) return THK_E_WRONG_KIND;
    if (memcmp(h->prior_sha_prefix, prior_sha_prefix, 8) != 0 || h->expression_dims > components)
        return THK_E_PRIOR_MISMATCH;
    return THK_OK;
}

/* Where the learned part starts in a frame's code: after the semantic part in a hybrid stream. */
static uint32_t learned_offset(const thk_header *h) { return h->kind == THK_KIND_HYBRID ? 6 + h->expression_dims : 0; }

uint32_t thk_code_values(const thk_header *h) {
    uint32_t semantic = h->kind == THK_KIND_LEARNED ? 0 : 6 + h->expression_dims;
    uint32_t learned = h->kind == THK_KIND_SEMANTIC ? 0 : h->num_kp * (h->jacobians ? 6u : 2u) + h->extra_dims;
    return semantic + learned;
}

/* ---- layouts: limits, predictions, priors (sections 6, 11.4) ------------------------------------ */
static int64_t learned_limit_kp(const thk_header *h) { return 65536 / h->kp_step; }
static int64_t learned_limit_jac(const thk_header *h) { return 8 * 65536 / h->jac_step; }
static int64_t learned_limit_extra(const thk_header *h) { return 16 * 65536 / h->extra_step; }
static int64_t identity_level(const thk_header *h) { return (65536 + h->jac_step / 2) / h->jac_step; }
static int64_t learned_mean16(int64_t mean, uint32_t step) { return (16 * mean + step / 2) / step; }
static int64_t semantic_limit(const thk_header *h, uint32_t i) {
    return i < 6 ? (int64_t)POSE_LIMITS[i] * 65536 / h->pose_steps[i] : (int64_t)EXPRESSION_LIMIT * 65536 / h->expression_step;
}
static uint32_t semantic_step(const thk_header *h, uint32_t i) { return i < 6 ? h->pose_steps[i] : h->expression_step; }

/* The prediction of a keyframe: 0 everywhere but the Jacobians' identity diagonal. */
static void keyframe_prediction(const thk_header *h, int32_t *p) {
    uint32_t n = thk_code_values(h);
    memset(p, 0, n * sizeof *p);
    if (h->kind != THK_KIND_SEMANTIC && h->jacobians) {
        int32_t diagonal = (int32_t)identity_level(h);
        int32_t *jacobians = p + learned_offset(h) + 2 * h->num_kp;
        for (uint32_t k = 0; k < h->num_kp; k++) {
            jacobians[4 * k] = diagonal;
            jacobians[4 * k + 3] = diagonal;
        }
    }
}

enum { KP_SHIFT_KEY = 6554, KP_SHIFT_DELTA = 164, KP_KEY = 16384, KP_DELTA = 328, JAC_KEY = 7864, JAC_DELTA = 328,
       EXTRA_KEY = 32768, EXTRA_DELTA = 3277 };
#define TIMESTAMP_MEAN16 16

/* Decode the learned part's groups (section 6) into code (from prediction p; both at the part). */
static int read_learned(const thk_header *h, arith_decoder *d, const int32_t *p, int keyframe, int32_t *code) {
    int64_t values[4 * THK_MAX_KP];
    int status;
    uint32_t k = h->num_kp;
    int64_t shift[2];
    if ((status = decode_values(d, shift, 2, group_prior(learned_mean16(keyframe ? KP_SHIFT_KEY : KP_SHIFT_DELTA,
                                                                        h->kp_step))))) return status;
    if ((status = decode_values(d, values, 2 * k, group_prior(learned_mean16(keyframe ? KP_KEY : KP_DELTA,
                                                                             h->kp_step))))) return status;
    int64_t limit = learned_limit_kp(h);
    for (uint32_t i = 0; i < 2 * k; i++) {
        int64_t q = p[i] + values[i] + shift[i & 1];
        if (q > limit || q < -limit) return THK_E_MALFORMED;
        code[i] = (int32_t)q;
    }
    uint32_t offset = 2 * k;
    if (h->jacobians) {
        if ((status = decode_values(d, values, 4 * k, group_prior(learned_mean16(keyframe ? JAC_KEY : JAC_DELTA,
                                                                                 h->jac_step))))) return status;
        limit = learned_limit_jac(h);
        for (uint32_t i = 0; i < 4 * k; i++) {
            int64_t q = p[offset + i] + values[i];
            if (q > limit || q < -limit) return THK_E_MALFORMED;
            code[offset + i] = (int32_t)q;
        }
        offset += 4 * k;
    }
    if (h->extra_dims) {
        if ((status = decode_values(d, values, h->extra_dims,
                                    group_prior(learned_mean16(keyframe ? EXTRA_KEY : EXTRA_DELTA,
                                                               h->extra_step))))) return status;
        limit = learned_limit_extra(h);
        for (uint32_t i = 0; i < h->extra_dims; i++) {
            int64_t q = p[offset + i] + values[i];
            if (q > limit || q < -limit) return THK_E_MALFORMED;
            code[offset + i] = (int32_t)q;
        }
    }
    return THK_OK;
}

/* Decode the semantic part's groups (section 11.4) into code (from prediction p). */
static int read_semantic(const thk_header *h, arith_decoder *d, const int32_t *p, int keyframe, int32_t *code) {
    int64_t values[6 + THK_MAX_EXPRESSION];
    int status;
    if ((status = decode_values(d, values, 3, group_prior(keyframe ? 256 : 16)))) return status;
    if ((status = decode_values(d, values + 3, 3, group_prior(keyframe ? 1024 : 16)))) return status;
    if (h->expression_dims &&
        (status = decode_values(d, values + 6, h->expression_dims, group_prior(keyframe ? 32 : 8)))) return status;
    for (uint32_t i = 0; i < 6 + h->expression_dims; i++) {
        int64_t q = p[i] + values[i], limit = semantic_limit(h, i);
        if (q > limit || q < -limit) return THK_E_MALFORMED;
        code[i] = (int32_t)q;
    }
    return THK_OK;
}

/* Decode the payload groups after the timestamp into code (from prediction p): the semantic part,
 * then the learned part (section 13.3), each as its kind has it. */
static int read_code(const thk_header *h, arith_decoder *d, const int32_t *p, int keyframe, int32_t *code) {
    int status;
    if (h->kind != THK_KIND_LEARNED && (status = read_semantic(h, d, p, keyframe, code))) return status;
    uint32_t offset = learned_offset(h);
    if (h->kind != THK_KIND_SEMANTIC) return read_learned(h, d, p + offset, keyframe, code + offset);
    return THK_OK;
}

/* Floor of the rounded-half-to-even median of n integers (numpy's np.rint(np.median(x))). */
static int64_t rounded_median(int64_t *x, uint32_t n) {
    for (uint32_t i = 1; i < n; i++) {  /* insertion sort: n <= 255, once per packet */
        int64_t v = x[i];
        uint32_t j = i;
        while (j > 0 && x[j - 1] > v) { x[j] = x[j - 1]; j--; }
        x[j] = v;
    }
    if (n & 1) return x[n / 2];
    int64_t sum = x[n / 2 - 1] + x[n / 2];
    int64_t half = sum >= 0 ? sum / 2 : -((-sum + 1) / 2);   /* floor(sum / 2) */
    if (sum - 2 * half == 0) return half;
    return (half & 1) ? half + 1 : half;                     /* x.5: to the even neighbour */
}

/* Code the learned part's groups (section 6) of code from prediction p (both at the part). */
static int write_learned(const thk_header *h, arith_encoder *e, const int32_t *code, const int32_t *p, int keyframe) {
    int64_t values[4 * THK_MAX_KP];
    int status;
    uint32_t k = h->num_kp;
    int64_t axis[THK_MAX_KP], shift[2];
    for (int a = 0; a < 2; a++) {
        for (uint32_t i = 0; i < k; i++) axis[i] = (int64_t)code[2 * i + a] - p[2 * i + a];
        shift[a] = rounded_median(axis, k);
    }
    if ((status = encode_values(e, shift, 2, group_prior(learned_mean16(keyframe ? KP_SHIFT_KEY : KP_SHIFT_DELTA,
                                                                        h->kp_step))))) return status;
    for (uint32_t i = 0; i < 2 * k; i++) values[i] = (int64_t)code[i] - p[i] - shift[i & 1];
    if ((status = encode_values(e, values, 2 * k, group_prior(learned_mean16(keyframe ? KP_KEY : KP_DELTA,
                                                                             h->kp_step))))) return status;
    uint32_t offset = 2 * k;
    if (h->jacobians) {
        for (uint32_t i = 0; i < 4 * k; i++) values[i] = (int64_t)code[offset + i] - p[offset + i];
        if ((status = encode_values(e, values, 4 * k, group_prior(learned_mean16(keyframe ? JAC_KEY : JAC_DELTA,
                                                                                 h->jac_step))))) return status;
        offset += 4 * k;
    }
    if (h->extra_dims) {
        for (uint32_t i = 0; i < h->extra_dims; i++) values[i] = (int64_t)code[offset + i] - p[offset + i];
        if ((status = encode_values(e, values, h->extra_dims,
                                    group_prior(learned_mean16(keyframe ? EXTRA_KEY : EXTRA_DELTA,
                                                               h->extra_step))))) return status;
    }
    return THK_OK;
}

/* Code the semantic part's groups (section 11.4) of code from prediction p. */
static int write_semantic(const thk_header *h, arith_encoder *e, const int32_t *code, const int32_t *p, int keyframe) {
    int64_t values[6 + THK_MAX_EXPRESSION];
    int status;
    for (uint32_t i = 0; i < 6 + h->expression_dims; i++) values[i] = (int64_t)code[i] - p[i];
    if ((status = encode_values(e, values, 3, group_prior(keyframe ? 256 : 16)))) return status;
    if ((status = encode_values(e, values + 3, 3, group_prior(keyframe ? 1024 : 16)))) return status;
    if (h->expression_dims &&
        (status = encode_values(e, values + 6, h->expression_dims, group_prior(keyframe ? 32 : 8)))) return status;
    return THK_OK;
}

/* The payload groups after the timestamp, in read_code's order. */
static int write_code(const thk_header *h, arith_encoder *e, const int32_t *code, const int32_t *p, int keyframe) {
    int status;
    if (h->kind != THK_KIND_LEARNED && (status = write_semantic(h, e, code, p, keyframe))) return status;
    uint32_t offset = learned_offset(h);
    if (h->kind != THK_KIND_SEMANTIC) return write_learned(h, e, code + offset, p + offset, keyframe);
    return THK_OK;
}

/* Keyframe time plus `distance` nominal frame periods, in whole ms. */
static uint64_t predicted_timestamp(const thk_header *h, uint64_t keyframe_timestamp, uint32_t distance) {
    uint64_t fps = h->fps_millihertz;
    return keyframe_timestamp + ((uint64_t)distance * 1000000u + fps / 2) / fps;
}

/* ---- decoder (sections 4, 7) --------------------------------------------------------------------- */
#define WINDOW_SLACK_BITS 23

int thk_decoder_init(thk_decoder *decoder, const thk_header *header) {
    if (!decoder || !header) return THK_E_ARGUMENT;
    int status = check_fields(header);
    if (status) return status;
    memset(decoder, 0, sizeof *decoder);
    decoder->header = *header;
    return THK_OK;
}

static int trailing_ok(const arith_decoder *d, size_t payload_bytes) {
    return !(8 * (uint64_t)payload_bytes + WINDOW_SLACK_BITS > d->position);
}

static int decode_packet(thk_decoder *dec, const uint8_t *data, size_t length, thk_frame *frame) {
    const thk_header *h = &dec->header;
    if (length < 2) return THK_E_MALFORMED;
    uint8_t marker = data[0], key_id = data[1];
    int32_t prediction[THK_MAX_VALUES];
    arith_decoder d;
    int status;
    if (marker == THK_KEYFRAME_MARKER) {
        size_t offset = 2;
        uint64_t sequence, timestamp;
        if ((status = get_varint(data, length, &offset, &sequence))) return status;
        if ((status = get_varint(data, length, &offset, &timestamp))) return status;
        dec_init(&d, data + offset, length - offset);
        keyframe_prediction(h, prediction);
        if ((status = read_code(h, &d, prediction, 1, frame->code))) return status;
        if (dec->has_last && sequence <= dec->last.sequence) return THK_E_STALE;
        if (!trailing_ok(&d, length - offset)) return THK_E_MALFORMED;
        frame->sequence = sequence;
        frame->timestamp_ms = timestamp;
        frame->keyframe = 1;
        frame->keyframe_id = key_id;
        return THK_OK;
    }
    uint32_t interval = h->keyframe_interval < THK_KEYFRAME_MARKER ? h->keyframe_interval : THK_KEYFRAME_MARKER;
    if (marker < 1 || marker >= interval) return THK_E_MALFORMED;
    const thk_frame *key = &dec->keyframe;
    if (!dec->has_keyframe || key->keyframe_id != key_id) return THK_E_MISSING_REFERENCE;
    uint64_t sequence = key->sequence + marker;
    if (dec->has_last && sequence <= dec->last.sequence) return THK_E_STALE;
    const int32_t *reference = key->code;
    if (h->reference == THK_REF_PREVIOUS) {
        if (!dec->has_last || dec->last.sequence != sequence - 1) return THK_E_MISSING_REFERENCE;
        reference = dec->last.code;
    }
    dec_init(&d, data + 2, length - 2);
    int64_t residual;
    if ((status = decode_values(&d, &residual, 1, group_prior(TIMESTAMP_MEAN16)))) return status;
    uint64_t base = predicted_timestamp(h, key->timestamp_ms, marker), timestamp;
    if (residual < 0) {
        if ((uint64_t)(-residual) > base) return THK_E_MALFORMED;  /* negative timestamp */
        timestamp = base - (uint64_t)(-residual);
    } else {
        timestamp = base + (uint64_t)residual;
    }
    if ((status = read_code(h, &d, reference, 0, frame->code))) return status;
    if (!trailing_ok(&d, length - 2)) return THK_E_MALFORMED;
    frame->sequence = sequence;
    frame->timestamp_ms = timestamp;
    frame->keyframe = 0;
    frame->keyframe_id = key_id;
    return THK_OK;
}

int thk_decoder_decode(thk_decoder *dec, const uint8_t *packet, size_t length, thk_frame *frame) {
    if (!dec || !frame || (!packet && length)) return THK_E_ARGUMENT;
    int status = decode_packet(dec, packet, length, frame);
    if (status == THK_E_MISSING_REFERENCE) dec->stats.missing_reference++;
    else if (status == THK_E_STALE) dec->stats.stale++;
    else if (status) dec->stats.malformed++;
    if (status) return status;
    uint32_t n = thk_code_values(&dec->header);
    if (frame->keyframe) {
        dec->keyframe.sequence = frame->sequence;
        dec->keyframe.timestamp_ms = frame->timestamp_ms;
        dec->keyframe.keyframe = 1;
        dec->keyframe.keyframe_id = frame->keyframe_id;
        memcpy(dec->keyframe.code, frame->code, n * sizeof frame->code[0]);
        dec->has_keyframe = 1;
        dec->stats.keyframes++;
    }
    dec->last.sequence = frame->sequence;
    dec->last.timestamp_ms = frame->timestamp_ms;
    dec->last.keyframe = frame->keyframe;
    dec->last.keyframe_id = frame->keyframe_id;
    memcpy(dec->last.code, frame->code, n * sizeof frame->code[0]);
    dec->has_last = 1;
    dec->stats.decoded++;
    return THK_OK;
}

/* The learned part at `code`: float32(q * step / 65536); jacobians / extra may be NULL. */
static void dequantize_learned(const thk_header *h, const int32_t *code, float *keypoints, float *jacobians,
                               float *extra) {
    uint32_t k = h->num_kp, offset = 2 * k;
    for (uint32_t i = 0; i < 2 * k; i++) keypoints[i] = (float)((double)((int64_t)code[i] * h->kp_step) / 65536.0);
    if (h->jacobians) {
        if (jacobians)
            for (uint32_t i = 0; i < 4 * k; i++)
                jacobians[i] = (float)((double)((int64_t)code[offset + i] * h->jac_step) / 65536.0);
        offset += 4 * k;
    }
    if (h->extra_dims && extra)
        for (uint32_t i = 0; i < h->extra_dims; i++)
            extra[i] = (float)((double)((int64_t)code[offset + i] * h->extra_step) / 65536.0);
}

/* The semantic part: the float64 q * step / 65536. */
static void dequantize_semantic(const thk_header *h, const int32_t *code, double pose[6], double *expression) {
    for (uint32_t i = 0; i < 6 + h->expression_dims; i++) {
        double v = (double)((int64_t)code[i] * semantic_step(h, i)) / 65536.0;
        if (i < 6) pose[i] = v; else expression[i - 6] = v;
    }
}

int thk_frame_dequantize_learned(const thk_header *h, const thk_frame *frame, float *keypoints, float *jacobians,
                                 float *extra) {
    if (!h || !frame || !keypoints) return THK_E_ARGUMENT;
    if (h->kind != THK_KIND_LEARNED) return THK_E_WRONG_KIND;
    dequantize_learned(h, frame->code, keypoints, jacobians, extra);
    return THK_OK;
}

int thk_frame_dequantize_semantic(const thk_header *h, const thk_frame *frame, double pose[6], double *expression) {
    if (!h || !frame || !pose) return THK_E_ARGUMENT;
    if (h->kind != THK_KIND_SEMANTIC) return THK_E_WRONG_KIND;
    if (h->expression_dims && !expression) return THK_E_ARGUMENT;
    dequantize_semantic(h, frame->code, pose, expression);
    return THK_OK;
}

int thk_frame_dequantize_hybrid(const thk_header *h, const thk_frame *frame, double pose[6], double *expression,
                                float *keypoints, float *jacobians) {
    if (!h || !frame || !pose || !keypoints) return THK_E_ARGUMENT;
    if (h->kind != THK_KIND_HYBRID) return THK_E_WRONG_KIND;
    if (h->expression_dims && !expression) return THK_E_ARGUMENT;
    dequantize_semantic(h, frame->code, pose, expression);
    dequantize_learned(h, frame->code + learned_offset(h), keypoints, jacobians, NULL);
    return THK_OK;
}

/* ---- encoder (sections 4, 6, 11.1) --------------------------------------------------------------- */
#define MAX_TIMESTAMP_RESIDUAL (1u << 20)

size_t thk_max_packet_bytes(const thk_header *h) {
    /* 2 + two varints, then per value at most: a 15-bit symbol, a 49-bit escape, 24 low bits and a
     * sign (bits of a binary symbol cost 1 each), plus the timestamp and the coder's last bits */
    return 2 + 18 + (size_t)(thk_code_values(h) + 3) * 12 + 16;
}

int thk_encoder_init(thk_encoder *encoder, const thk_header *header) {
    if (!encoder || !header) return THK_E_ARGUMENT;
    int status = check_fields(header);
    if (status) return status;
    memset(encoder, 0, sizeof *encoder);
    encoder->header = *header;
    return THK_OK;
}

void thk_encoder_force_keyframe(thk_encoder *encoder) { if (encoder) encoder->force_keyframe = 1; }

/* np.rint(x) clamped to +-limit, then hysteresis: keep `held` while |x - held| < keep. */
static int32_t quantize_one(double x, int64_t limit, const int32_t *held, double keep, uint64_t *clamped) {
    double r = nearbyint(x);
    int64_t q;
    if (r > (double)limit) { q = limit; ++*clamped; }
    else if (r < -(double)limit) { q = -limit; ++*clamped; }
    else q = (int64_t)r;
    if (held && fabs(x - (double)*held) < keep) q = *held;
    return (int32_t)q;
}

static int encode_frame(thk_encoder *enc, const int32_t *code, uint64_t clamped, uint64_t timestamp, int keyframe,
                        uint32_t distance, int64_t residual, uint8_t *out, size_t capacity, size_t *written) {
    const thk_header *h = &enc->header;
    uint32_t n = thk_code_values(h);
    uint8_t prefix[20];
    size_t prefix_length;
    int32_t prediction[THK_MAX_VALUES];
    const int32_t *reference = prediction;
    uint8_t key_id = (uint8_t)(enc->stats.keyframes % 256);
    if (keyframe) {
        prefix[0] = THK_KEYFRAME_MARKER;
        prefix[1] = key_id;
        prefix_length = 2 + put_varint(prefix + 2, enc->stats.frames);
        prefix_length += put_varint(prefix + prefix_length, timestamp);
        keyframe_prediction(h, prediction);
    } else {
        prefix[0] = (uint8_t)distance;
        prefix[1] = enc->keyframe.keyframe_id;
        prefix_length = 2;
        reference = h->reference == THK_REF_PREVIOUS ? enc->previous : enc->keyframe.code;
    }
    if (capacity < prefix_length) return THK_E_BUFFER;
    memcpy(out, prefix, prefix_length);
    arith_encoder e;
    enc_init(&e, out + prefix_length, capacity - prefix_length);
    int status;
    if (!keyframe && (status = encode_values(&e, &residual, 1, group_prior(TIMESTAMP_MEAN16)))) return status;
    if ((status = write_code(h, &e, code, reference, keyframe))) return status;
    size_t payload = enc_finish(&e);
    if (e.overflow) return THK_E_BUFFER;
    *written = prefix_length + payload;
    if (keyframe) {
        enc->keyframe.keyframe_id = key_id;
        enc->keyframe.sequence = enc->stats.frames;
        enc->keyframe.timestamp_ms = timestamp;
        memcpy(enc->keyframe.code, code, n * sizeof *code);
        enc->has_keyframe = 1;
        enc->force_keyframe = 0;
        enc->stats.keyframes++;
        enc->stats.keyframe_bytes += *written;
    }
    memcpy(enc->previous, code, n * sizeof *code);
    enc->stats.frames++;
    enc->stats.bytes += *written;
    enc->stats.clamped_values += clamped;
    return THK_OK;
}

/* Keyframe or delta, and the reference the hysteresis holds to (NULL for a keyframe). */
static const int32_t *plan_frame(thk_encoder *enc, uint64_t timestamp, int *keyframe, uint32_t *distance,
                                 int64_t *residual) {
    const thk_header *h = &enc->header;
    *distance = enc->has_keyframe ? (uint32_t)(enc->stats.frames - enc->keyframe.sequence) : 0;
    *residual = 0;
    *keyframe = !enc->has_keyframe || enc->force_keyframe || *distance >= h->keyframe_interval;
    if (!*keyframe) {
        uint64_t predicted = predicted_timestamp(h, enc->keyframe.timestamp_ms, *distance);
        uint64_t gap = timestamp >= predicted ? timestamp - predicted : predicted - timestamp;
        if (gap > MAX_TIMESTAMP_RESIDUAL) *keyframe = 1;
        else *residual = timestamp >= predicted ? (int64_t)gap : -(int64_t)gap;
    }
    if (*keyframe) return NULL;
    return h->reference == THK_REF_PREVIOUS ? enc->previous : enc->keyframe.code;
}

/* THK_E_NOT_FINITE unless every value of the learned part (jacobians only with Jacobians) is finite. */
static int check_learned(const thk_header *h, const float *keypoints, const float *jacobians, const float *extra) {
    for (uint32_t i = 0; i < 2 * h->num_kp; i++) if (!isfinite(keypoints[i])) return THK_E_NOT_FINITE;
    if (h->jacobians) for (uint32_t i = 0; i < 4 * h->num_kp; i++) if (!isfinite(jacobians[i])) return THK_E_NOT_FINITE;
    for (uint32_t i = 0; i < h->extra_dims; i++) if (!isfinite(extra[i])) return THK_E_NOT_FINITE;
    return THK_OK;
}

static int check_semantic(const thk_header *h, const double pose[6], const double *expression) {
    for (uint32_t i = 0; i < 6 + h->expression_dims; i++)
        if (!isfinite(i < 6 ? pose[i] : expression[i - 6])) return THK_E_NOT_FINITE;
    return THK_OK;
}

/* The learned part's levels into code (held: the hysteresis reference at the part, or NULL). */
static void quantize_learned(const thk_header *h, const float *keypoints, const float *jacobians, const float *extra,
                             const int32_t *held, double keep, int32_t *code, uint64_t *clamped) {
    uint32_t k = h->num_kp;
    double scale = 65536.0 / h->kp_step;
    int64_t limit = learned_limit_kp(h);
    for (uint32_t i = 0; i < 2 * k; i++)
        code[i] = quantize_one((double)keypoints[i] * scale, limit, held ? held + i : NULL, keep, clamped);
    uint32_t offset = 2 * k;
    if (h->jacobians) {
        scale = 65536.0 / h->jac_step;
        limit = learned_limit_jac(h);
        for (uint32_t i = 0; i < 4 * k; i++)
            code[offset + i] = quantize_one((double)jacobians[i] * scale, limit, held ? held + offset + i : NULL, keep,
                                            clamped);
        offset += 4 * k;
    }
    if (!h->extra_dims) return;
    scale = 65536.0 / h->extra_step;
    limit = learned_limit_extra(h);
    for (uint32_t i = 0; i < h->extra_dims; i++)
        code[offset + i] = quantize_one((double)extra[i] * scale, limit, held ? held + offset + i : NULL, keep,
                                        clamped);
}

static void quantize_semantic(const thk_header *h, const double pose[6], const double *expression,
                              const int32_t *held, double keep, int32_t *code, uint64_t *clamped) {
    for (uint32_t i = 0; i < 6 + h->expression_dims; i++) {
        double v = i < 6 ? pose[i] : expression[i - 6];
        code[i] = quantize_one(v * (65536.0 / semantic_step(h, i)), semantic_limit(h, i), held ? held + i : NULL, keep,
                               clamped);
    }
}

/* Quantize one frame of any kind (the parts it has; NULL for the others) and code it. */
static int encode_code(thk_encoder *enc, const double *pose, const double *expression, const float *keypoints,
                       const float *jacobians, const float *extra, uint64_t timestamp_ms, uint8_t *out,
                       size_t capacity, size_t *written) {
    const thk_header *h = &enc->header;
    if (timestamp_ms >> 63) return THK_E_TIMESTAMP;
    int keyframe;
    uint32_t distance;
    int64_t residual;
    const int32_t *held = plan_frame(enc, timestamp_ms, &keyframe, &distance, &residual);
    double keep = 0.5 + h->hysteresis256 / 256.0;
    int32_t code[THK_MAX_VALUES];
    uint64_t clamped = 0;
    uint32_t offset = learned_offset(h);
    if (h->kind != THK_KIND_LEARNED) quantize_semantic(h, pose, expression, held, keep, code, &clamped);
    if (h->kind != THK_KIND_SEMANTIC)
        quantize_learned(h, keypoints, jacobians, extra, held ? held + offset : NULL, keep, code + offset, &clamped);
    return encode_frame(enc, code, clamped, timestamp_ms, keyframe, distance, residual, out, capacity, written);
}

int thk_encoder_encode_learned(thk_encoder *enc, const float *keypoints, const float *jacobians, const float *extra,
                               uint64_t timestamp_ms, uint8_t *out, size_t capacity, size_t *written) {
    if (!enc || !keypoints || !out || !written) return THK_E_ARGUMENT;
    const thk_header *h = &enc->header;
    if (h->kind != THK_KIND_LEARNED) return THK_E_WRONG_KIND;
    if ((h->jacobians && !jacobians) || (h->extra_dims && !extra)) return THK_E_ARGUMENT;
    int status = check_learned(h, keypoints, jacobians, extra);
    if (status) return status;
    return encode_code(enc, NULL, NULL, keypoints, jacobians, extra, timestamp_ms, out, capacity, written);
}

int thk_encoder_encode_semantic(thk_encoder *enc, const double pose[6], const double *expression,
                                uint64_t timestamp_ms, uint8_t *out, size_t capacity, size_t *written) {
    if (!enc || !pose || !out || !written) return THK_E_ARGUMENT;
    const thk_header *h = &enc->header;
    if (h->kind != THK_KIND_SEMANTIC) return THK_E_WRONG_KIND;
    if (h->expression_dims && !expression) return THK_E_ARGUMENT;
    int status = check_semantic(h, pose, expression);
    if (status) return status;
    return encode_code(enc, pose, expression, NULL, NULL, NULL, timestamp_ms, out, capacity, written);
}

int thk_encoder_encode_hybrid(thk_encoder *enc, const double pose[6], const double *expression, const float *keypoints,
                              const float *jacobians, uint64_t timestamp_ms, uint8_t *out, size_t capacity,
                              size_t *written) {
    if (!enc || !pose || !keypoints || !out || !written) return THK_E_ARGUMENT;
    const thk_header *h = &enc->header;
    if (h->kind != THK_KIND_HYBRID) return THK_E_WRONG_KIND;
    if ((h->expression_dims && !expression) || (h->jacobians && !jacobians)) return THK_E_ARGUMENT;
    int status = check_semantic(h, pose, expression);
    if (!status) status = check_learned(h, keypoints, jacobians, NULL);
    if (status) return status;
    return encode_code(enc, pose, expression, keypoints, jacobians, NULL, timestamp_ms, out, capacity, written);
}
