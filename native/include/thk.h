/* thk.h: the portable native core of the talking-head SDK (C11, one header).
 *
 * - Code stream (docs/bitstream.md): stream headers of the three kinds (version 1 learned
 *   keypoints, version 2 kind 1 semantic code, version 2 kind 2 hybrid: semantic code then learned
 *   keypoints), packet decoder and encoder, bit-exact with sdk.codec.
 * - Transport (docs/transport.md): key derivation, ChaCha20-Poly1305 sealing and opening of
 *   datagrams, FRAME plaintext framing, the replay window, the jitter buffer's ordering rules and
 *   the receiver's per-frame path (window, open, redundancy, jitter buffer).
 * - Receiver-side motion (docs/motion.md): relative keypoints, Jacobian transfer,
 *   movement-scale adaptation.
 *
 * Nothing here allocates: every state is a caller-owned struct (static, stack or one heap block),
 * and per-frame calls only write into caller-provided buffers. Every function that can fail
 * returns a thk_status (0 = THK_OK, negative = an error code below); bad input never crashes.
 */
#ifndef THK_H
#define THK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ----------------------------------------------------------------------------------- */
typedef enum {
    THK_OK = 0,
    THK_E_ARGUMENT = -1,          /* a NULL pointer, a size out of range: misuse by the caller */
    THK_E_BUFFER = -2,            /* the output buffer is too small */
    /* stream header */
    THK_E_HEADER_LENGTH = -10,    /* shorter than its fixed part, or not exactly its length */
    THK_E_HEADER_MAGIC = -11,
    THK_E_HEADER_VERSION = -12,   /* a version other than 1 and 2 */
    THK_E_HEADER_KIND = -13,      /* a version-2 header of a kind other than 1 and 2 */
    THK_E_HEADER_CRC = -14,
    THK_E_HEADER_FIELD = -15,     /* flags, K, E, steps, resolution, frame rate, interval, model id (UTF-8);
                                     a hybrid header with extra_dims != 0 */
    THK_E_WRONG_KIND = -16,       /* a call for one kind given a header of another */
    THK_E_PRIOR_MISMATCH = -17,   /* the stream's face prior is not the receiver's (or has fewer coefficients) */
    /* packets (the three classes of docs/bitstream.md section 7) */
    THK_E_MALFORMED = -20,
    THK_E_MISSING_REFERENCE = -21,
    THK_E_STALE = -22,
    /* encoder input */
    THK_E_NOT_FINITE = -30,       /* NaN or infinity in a code */
    THK_E_TIMESTAMP = -31,        /* a timestamp >= 2^63 */
    /* transport */
    THK_E_KEY_LENGTH = -40,       /* a pre-shared secret that is not 32 bytes */
    THK_E_TRUNCATED = -41,        /* a datagram shorter than its clear prefix plus the tag */
    THK_E_GARBAGE = -42,          /* an unknown packet type, or one this end never receives */
    THK_E_FORGED = -43,           /* failed authentication */
    THK_E_DUPLICATE = -44,        /* a number already seen in the replay window */
    THK_E_TOO_OLD = -45,          /* a number below the replay window */
    THK_E_OTHER_SESSION = -46,
    THK_E_FRAME_MALFORMED = -47,  /* an authentic FRAME whose plaintext is inconsistent */
    THK_E_OVERSIZED = -48,        /* a frame packet larger than a jitter-buffer slot */
    THK_E_CRYPTO_INIT = -49,      /* the crypto library could not start */
    /* motion */
    THK_E_SINGULAR = -60,         /* an anchor Jacobian with determinant 0 */
    THK_E_DEGENERATE_HULL = -61   /* fewer than 3 keypoints or all on one line (area 0) */
} thk_status;

const char *thk_status_name(int status);

/* sizeof of the public structs, so a binding (ctypes, JNI, Swift) can check its mirror of them. */
enum { THK_SIZE_HEADER, THK_SIZE_FRAME, THK_SIZE_DECODER, THK_SIZE_ENCODER, THK_SIZE_JITTER, THK_SIZE_FRAME_RECEIVER };
size_t thk_struct_size(int which);

/* ---- limits ----------------------------------------------------------------------------------- */
#define THK_MAX_KP 255
#define THK_MAX_EXTRA 255
#define THK_MAX_EXPRESSION 255
/* integer levels of one frame's code: the hybrid kind's 6 + E + 6K is the largest (learned: 6K + D) */
#define THK_MAX_VALUES (6 + THK_MAX_EXPRESSION + 6 * THK_MAX_KP)
#define THK_MAX_MODEL_ID 255
#define THK_MAX_HEADER_BYTES (70 + THK_MAX_MODEL_ID)   /* the hybrid kind's, the longest */
#define THK_KEYFRAME_MARKER 0x80

/* ---- stream header ---------------------------------------------------------------------------- */
/* learned: version 1; semantic: version 2, kind byte 1; hybrid: version 2, kind byte 2 */
enum { THK_KIND_LEARNED = 1, THK_KIND_SEMANTIC = 2, THK_KIND_HYBRID = 3 };
enum { THK_REF_KEYFRAME = 0, THK_REF_PREVIOUS = 1 };

typedef struct {
    int kind;                 /* THK_KIND_LEARNED, THK_KIND_SEMANTIC or THK_KIND_HYBRID */
    int reference;            /* THK_REF_PREVIOUS or THK_REF_KEYFRAME */
    uint32_t resolution;      /* 1..65535 */
    uint32_t fps_millihertz;  /* > 0 */
    uint32_t keyframe_interval;  /* 1..127 */
    uint32_t hysteresis256;   /* 0..255 */
    uint32_t model_id_length;
    char model_id[THK_MAX_MODEL_ID + 1];  /* UTF-8, NUL-terminated */
    uint8_t model_sha_prefix[8];
    /* learned keypoints (version 1; the hybrid kind's keypoint part: D = 0, extra_step unused) */
    uint32_t num_kp;          /* K, 1..255 */
    uint32_t extra_dims;      /* D, 0..255 */
    int jacobians;            /* flag bit1 (version 1 and kind 2 alike) */
    uint32_t kp_step, jac_step, extra_step;  /* units of 2^-16, 1..65535 */
    /* semantic code (version 2, kind 1; the hybrid kind's semantic part) */
    uint32_t expression_dims; /* E, 0..255 */
    uint32_t pose_steps[6];   /* yaw, pitch, roll, tx, ty, log_scale; units of 2^-16 */
    uint32_t expression_step;
    uint8_t prior_sha_prefix[8];
} thk_header;

/* Parse and check a header of any kind (every rule of bitstream.md sections 2, 11.2 and 13.2). */
int thk_header_parse(thk_header *header, const uint8_t *data, size_t length);
/* Serialize a header (its fields as set by the caller, validated as the parser does); writes
 * *written bytes (at most THK_MAX_HEADER_BYTES). */
int thk_header_write(const thk_header *header, uint8_t *out, size_t capacity, size_t *written);
/* THK_E_PRIOR_MISMATCH unless the receiver's prior (its sha256's first 8 bytes, its number of
 * coefficients) is the one a semantic or hybrid stream's codes are in (bitstream.md section 11.5). */
int thk_header_check_prior(const thk_header *header, const uint8_t prior_sha_prefix[8], uint32_t components);
/* Integer levels per frame: 6K + D (learned, K*2 keypoints then K*4 Jacobians when present, then D),
 * 6 + E (semantic: pose then expression) or 6 + E + 2K [+ 4K] (hybrid: the semantic part, then the
 * learned part without extra dims). */
uint32_t thk_code_values(const thk_header *header);

/* ---- one frame -------------------------------------------------------------------------------- */
typedef struct {
    uint64_t sequence;
    uint64_t timestamp_ms;
    int keyframe;
    uint8_t keyframe_id;
    /* integer levels: learned: keypoints (2K, x then y per keypoint), then Jacobians (4K: k, row,
     * column) when the stream has them, then extra (D); semantic: pose (6), then expression (E);
     * hybrid: pose (6), expression (E), keypoints (2K), [Jacobians (4K)] */
    int32_t code[THK_MAX_VALUES];
} thk_frame;

/* Learned kind: float32(q * step / 65536); jacobians / extra may be NULL when absent. */
int thk_frame_dequantize_learned(const thk_header *header, const thk_frame *frame, float *keypoints,
                                 float *jacobians, float *extra);
/* Semantic kind: the float64 q * step / 65536 (exact); expression holds E values. */
int thk_frame_dequantize_semantic(const thk_header *header, const thk_frame *frame, double pose[6],
                                  double *expression);
/* Hybrid kind: pose and expression (E) as the semantic kind, keypoints (2K) and Jacobians (4K; may
 * be NULL, and is ignored without Jacobians) as the learned kind. */
int thk_frame_dequantize_hybrid(const thk_header *header, const thk_frame *frame, double pose[6], double *expression,
                                float *keypoints, float *jacobians);

/* ---- decoder ---------------------------------------------------------------------------------- */
typedef struct {
    uint64_t decoded, keyframes, missing_reference, stale, malformed;
} thk_decoder_stats;

typedef struct {
    thk_header header;
    thk_decoder_stats stats;
    int has_keyframe, has_last;
    thk_frame keyframe, last;
} thk_decoder;

int thk_decoder_init(thk_decoder *decoder, const thk_header *header);
/* One packet -> *frame. On error the decoder's state is unchanged and the error is counted in
 * stats (THK_E_MALFORMED, THK_E_MISSING_REFERENCE, THK_E_STALE). */
int thk_decoder_decode(thk_decoder *decoder, const uint8_t *packet, size_t length, thk_frame *frame);

/* ---- encoder ---------------------------------------------------------------------------------- */
typedef struct {
    uint64_t frames, keyframes, bytes, keyframe_bytes, clamped_values;
} thk_encoder_stats;

typedef struct {
    thk_header header;
    thk_encoder_stats stats;
    int force_keyframe;
    int has_keyframe;
    thk_frame keyframe;            /* its code, id, sequence, timestamp */
    int32_t previous[THK_MAX_VALUES];
} thk_encoder;

/* A packet is at most this many bytes for `header` (a bound for the output buffer). */
size_t thk_max_packet_bytes(const thk_header *header);
int thk_encoder_init(thk_encoder *encoder, const thk_header *header);
void thk_encoder_force_keyframe(thk_encoder *encoder);
/* Learned kind: keypoints (2K), jacobians (4K; ignored, may be NULL, without Jacobians), extra
 * (D; NULL when D = 0), float32 as the Python encoder sees them. */
int thk_encoder_encode_learned(thk_encoder *encoder, const float *keypoints, const float *jacobians,
                               const float *extra, uint64_t timestamp_ms, uint8_t *out, size_t capacity,
                               size_t *written);
/* Semantic kind: pose (6) and the first E expression coefficients, float64. */
int thk_encoder_encode_semantic(thk_encoder *encoder, const double pose[6], const double *expression,
                                uint64_t timestamp_ms, uint8_t *out, size_t capacity, size_t *written);
/* Hybrid kind: pose and expression as the semantic kind, keypoints (2K) and jacobians (4K; ignored,
 * may be NULL, without Jacobians) float32 as the learned kind. */
int thk_encoder_encode_hybrid(thk_encoder *encoder, const double pose[6], const double *expression,
                              const float *keypoints, const float *jacobians, uint64_t timestamp_ms, uint8_t *out,
                              size_t capacity, size_t *written);

/* ---- transport -------------------------------------------------------------------------------- */
enum { THK_HELLO = 1, THK_CHALLENGE = 2, THK_START = 3, THK_START_ACK = 4, THK_FRAME = 5, THK_BYE = 6 };
#define THK_KEY_BYTES 32
#define THK_SALT_BYTES 16
#define THK_TAG_BYTES 16
#define THK_PREFIX_BYTES 9
#define THK_MAX_REDUNDANCY 3
#define THK_JITTER_MAX_CAPACITY 64
#define THK_JITTER_SLOT_BYTES 2048   /* a frame packet larger than this is refused (THK_E_OVERSIZED) */

int thk_crypto_init(void);  /* once per process before any call below (thread-safe) */
/* HELLO key: HKDF-SHA256(secret, salt_s, "talking-head-sdk transport v1 hello"). */
int thk_derive_hello_key(const uint8_t *secret, size_t secret_length, const uint8_t sender_salt[16],
                         uint8_t key[32]);
/* Session keys from both salts: sender->receiver and receiver->sender. */
int thk_derive_session_keys(const uint8_t *secret, size_t secret_length, const uint8_t sender_salt[16],
                            const uint8_t receiver_salt[16], uint8_t forward[32], uint8_t backward[32]);

typedef struct {
    int type;
    uint32_t session_id;
    uint32_t number;
    const uint8_t *salt;      /* HELLO and CHALLENGE: 16 bytes in the datagram; else NULL */
    size_t aad_length;        /* the clear prefix (9, or 25 with a salt) */
    const uint8_t *sealed;    /* ciphertext + tag, pointing into the datagram */
    size_t sealed_length;
} thk_datagram;

/* Split a datagram (no authentication): THK_E_TRUNCATED or THK_E_GARBAGE as the Python counts them. */
int thk_datagram_parse(thk_datagram *datagram, const uint8_t *data, size_t length);
/* A whole datagram: prefix (+ salt for HELLO/CHALLENGE) then the ChaCha20-Poly1305 ciphertext and tag. */
int thk_datagram_seal(const uint8_t key[32], int type, uint32_t session_id, uint32_t number,
                      const uint8_t *salt, const uint8_t *plaintext, size_t plaintext_length,
                      uint8_t *out, size_t capacity, size_t *written);
/* Authenticate and decrypt a parsed datagram into `plaintext` (capacity >= sealed_length - 16). */
int thk_datagram_open(const uint8_t key[32], const uint8_t *data, const thk_datagram *datagram,
                      uint8_t *plaintext, size_t capacity, size_t *plaintext_length);

/* FRAME plaintext: R (0..3) | R x (u16 length | packet of frame number-1-i) | this frame's packet. */
typedef struct {
    const uint8_t *packet;
    size_t packet_length;
    int copies;
    const uint8_t *copy[THK_MAX_REDUNDANCY];   /* most recent first */
    size_t copy_length[THK_MAX_REDUNDANCY];
} thk_frame_payload;

int thk_frame_payload_parse(thk_frame_payload *payload, const uint8_t *plaintext, size_t length);
int thk_frame_payload_write(const uint8_t *packet, size_t packet_length, int copies,
                            const uint8_t *const *copy, const size_t *copy_length,
                            uint8_t *out, size_t capacity, size_t *written);

/* The replay window: the newest 256 numbers (transport.md section 4). */
typedef struct {
    int64_t highest;
    uint64_t seen[4];   /* bit i (word i / 64): number highest - i was accepted */
} thk_replay_window;

void thk_replay_init(thk_replay_window *window);
int thk_replay_check(const thk_replay_window *window, uint64_t number);  /* OK, E_DUPLICATE, E_TOO_OLD */
void thk_replay_commit(thk_replay_window *window, uint64_t number);

/* The jitter buffer (sdk/transport/jitter.py): frames out in number order; a gap is given up
 * gap_wait_s after the oldest held frame arrived; at most `capacity` (<= 64) frames held. */
typedef struct {
    uint64_t lost, reordered, late, overflow, duplicates, oversized;
} thk_jitter_counts;

typedef struct {
    double gap_wait_s;
    int capacity;
    thk_jitter_counts counts;
    uint64_t next_number;
    int64_t highest;
    int held;
    struct {
        int used;
        uint64_t number;
        double arrival;
        uint16_t length;
        uint8_t data[THK_JITTER_SLOT_BYTES];
    } slot[THK_JITTER_MAX_CAPACITY + 1];  /* one more: a push inserts before it enforces the capacity */
} thk_jitter;

int thk_jitter_init(thk_jitter *jitter, double gap_wait_s, int capacity);
int thk_jitter_push(thk_jitter *jitter, uint64_t number, const uint8_t *payload, size_t length, double now);
int thk_jitter_holds(const thk_jitter *jitter, uint64_t number);
/* 1 and the next packet copied to out when one is due, 0 when none, negative on error. */
int thk_jitter_pop(thk_jitter *jitter, double now, uint8_t *out, size_t capacity, size_t *length);
/* When the current gap will be given up; 0 and *deadline unset when nothing waits on a gap. */
int thk_jitter_gap_deadline(const thk_jitter *jitter, double *deadline);

/* The receiver's per-frame path of one active session (PacketReceiver._on_frame): FRAME and
 * BYE datagrams of the session through the replay window, authentication, redundant copies
 * and the jitter buffer. Counters as ReceiverStats. */
typedef struct {
    uint64_t received, recovered, delivered, duplicates, too_old, forged, truncated, garbage,
        other_session, malformed;
} thk_receiver_stats;

#define THK_RECOVERED_MEMORY 64
#define THK_RECOVERED_SLOTS 256
typedef struct {
    uint8_t forward_key[32];
    uint32_t session_id;
    thk_receiver_stats stats;
    thk_replay_window window;
    thk_jitter jitter;
    int bye;
    int recovered_count;
    uint64_t recovered[THK_RECOVERED_SLOTS];  /* frame numbers taken from copies (a set) */
    uint8_t scratch[THK_MAX_REDUNDANCY * (2 + THK_JITTER_SLOT_BYTES) + 1 + THK_JITTER_SLOT_BYTES + 64];
} thk_frame_receiver;

int thk_frame_receiver_init(thk_frame_receiver *receiver, const uint8_t forward_key[32], uint32_t session_id,
                            double gap_wait_s, int capacity);
/* Handle one inbound datagram at time `now` (seconds); returns THK_OK or the reason it was
 * dropped (also counted). THK_E_OVERSIZED for an authentic frame whose packet is over a jitter slot
 * is counted received (its number enters the replay window) and oversized in jitter.counts. */
int thk_frame_receiver_handle(thk_frame_receiver *receiver, const uint8_t *data, size_t length, double now);
/* The next frame packet in order if due (1), else 0. */
int thk_frame_receiver_pop(thk_frame_receiver *receiver, double now, uint8_t *out, size_t capacity, size_t *length);

/* ---- receiver-side motion (docs/motion.md) ----------------------------------------------------- */
/* Area of the convex hull of K points (2K floats, x first), in float64. */
int thk_hull_area(const float *points, uint32_t k, double *area);
/* scale = sqrt(float32(source_area) / float32(anchor_area)) in float32. */
int thk_movement_scale(double source_area, double anchor_area, float *scale);
/* value = s + (d - a) * scale; jacobian = (Jd inv(Ja)) Js when use_jacobian, else Js.
 * Jacobian arrays are 4K floats (NULL driving/anchor Jacobians: identity). */
int thk_relative_motion(uint32_t k, const float *driving, const float *driving_jac, const float *anchor,
                        const float *anchor_jac, const float *source, const float *source_jac, float scale,
                        int use_jacobian, float *value, float *jacobian);

#ifdef __cplusplus
}
#endif
#endif
