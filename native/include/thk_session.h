/* thk_session.h: the session start of docs/transport.md section 3 (the HELLO / CHALLENGE handshake
 * and the reliable START blob), for both ends, on top of thk.h. Needs the transport (libsodium).
 *
 * No I/O and no clock here: the caller moves datagrams (UDP, a test harness) and passes the time
 * in seconds (any monotonic origin). Nothing allocates: states are caller-owned structs, the
 * session-start blob lives in a caller buffer.
 *
 *   receiver: thk_receiver_init(&rx, secret, 32, blob, sizeof blob, 0.06, 16);
 *             per datagram:  status = thk_receiver_handle(&rx, data, n, now, reply, sizeof reply, &reply_n);
 *                            if (reply_n) send reply back to the datagram's source address;
 *                            if (status == THK_STARTED) thk_receiver_started(&rx, &start);   (copy what you need)
 *             per tick:      thk_receiver_pop(&rx, now, packet, sizeof packet, &packet_n) == 1 -> a frame packet
 *   sender:   thk_start_blob_write(header, hn, portrait, pn, blob, cap, &blob_n);
 *             thk_sender_init(&tx, secret, 32, 2, 0.1);  thk_sender_start(&tx, blob, blob_n, NULL, NULL, now);
 *             loop: while (thk_sender_poll(&tx, now, out, sizeof out, &n) == 1) send out;
 *                   per inbound datagram: thk_sender_handle(&tx, data, n, now) (THK_STARTED once acknowledged)
 *             per frame: thk_sender_frame(&tx, packet, n, out, sizeof out, &out_n); send out
 */
#ifndef THK_SESSION_H
#define THK_SESSION_H

#include "thk.h"

#ifdef __cplusplus
extern "C" {
#endif

#define THK_CHUNK_BYTES 1024                 /* blob bytes per START chunk */
#define THK_MAX_BLOB_BYTES (8u << 20)        /* header + portrait at most 8 MiB */
#define THK_MAX_CHUNKS (THK_MAX_BLOB_BYTES / THK_CHUNK_BYTES)
#define THK_MAX_PENDING_HANDSHAKES 8
#define THK_PROTOCOL_VERSION 1
/* Room for any datagram either end of the session start writes (a START_ACK of 8192 chunks, a START chunk). */
#define THK_SESSION_DATAGRAM_BYTES (THK_PREFIX_BYTES + THK_SALT_BYTES + 8 + THK_CHUNK_BYTES + THK_TAG_BYTES)

enum { THK_STARTED = 1 };  /* a session start completed (handle's return value) */
enum { THK_SIZE_RECEIVER = 100, THK_SIZE_SENDER = 101 };  /* thk_session_struct_size */
size_t thk_session_struct_size(int which);

/* The session-start blob: header length (u32) | header | has portrait (u8) | portrait. */
int thk_start_blob_write(const uint8_t *header, size_t header_length, const uint8_t *portrait,
                         size_t portrait_length, uint8_t *out, size_t capacity, size_t *written);
/* header / portrait point into `blob`; portrait is NULL (length 0) when the flag is 0. */
int thk_start_blob_parse(const uint8_t *blob, size_t length, const uint8_t **header, size_t *header_length,
                         const uint8_t **portrait, size_t *portrait_length);

/* ---- receiver ------------------------------------------------------------------------------------ */
/* PacketReceiver.stats (ReceiverStats) in its order, all sessions together, plus `oversized`
 * (frame packets over THK_JITTER_SLOT_BYTES and session starts over the blob buffer). */
typedef struct {
    uint64_t received, recovered, delivered, lost, reordered, late, overflow, duplicates, too_old, forged,
        truncated, garbage, other_session, malformed, handshakes, sessions, oversized;
} thk_receiver_counts;

typedef struct {
    int used, complete;
    uint32_t session_id;
    uint64_t age;                     /* order of arrival: the oldest of 8 pending handshakes is forgotten */
    uint8_t receiver_salt[THK_SALT_BYTES];
    uint8_t forward[THK_KEY_BYTES], backward[THK_KEY_BYTES];
    uint32_t challenges, ack_number;
    uint32_t chunk_count, blob_length;  /* 0 until its first START chunk */
} thk_handshake;

typedef struct {
    uint32_t session_id;
    const uint8_t *header;            /* into the caller's blob buffer */
    size_t header_length;
    const uint8_t *portrait;          /* NULL without a portrait */
    size_t portrait_length;
    int active;                       /* 0: it waits for thk_receiver_activate_waiting */
} thk_session_start;

typedef struct {
    uint8_t secret[THK_KEY_BYTES];
    double gap_wait_s;
    int capacity;
    uint64_t next_age;
    thk_handshake pending[THK_MAX_PENDING_HANDSHAKES];
    thk_handshake active, waiting;    /* used = 0 when none */
    /* the one session start being assembled (or the last completed one) in the caller's buffer */
    uint8_t *blob;
    size_t blob_capacity;
    uint32_t blob_session;
    int blob_owned, blob_complete;
    uint32_t blob_chunks_held;
    uint8_t blob_have[THK_MAX_CHUNKS / 8];
    thk_receiver_counts totals;       /* the handshake's counters and those of earlier sessions */
    thk_frame_receiver frames;        /* the active session's FRAME path */
    uint8_t scratch[THK_CHUNK_BYTES + 64];
} thk_receiver;

/* blob: where session starts are assembled (THK_MAX_BLOB_BYTES for any sender; a start that does
 * not fit is counted `oversized`). gap_wait_s, capacity: the jitter buffer's (JitterConfig). */
int thk_receiver_init(thk_receiver *receiver, const uint8_t *secret, size_t secret_length, uint8_t *blob,
                      size_t blob_capacity, double gap_wait_s, int capacity);
/* One inbound datagram: THK_OK, THK_STARTED (a session start just completed: see
 * thk_receiver_started) or the reason it was dropped (also counted). *reply_length > 0: send
 * `reply` back to where the datagram came from (a CHALLENGE or a START_ACK). */
int thk_receiver_handle(thk_receiver *receiver, const uint8_t *data, size_t length, double now, uint8_t *reply,
                        size_t reply_capacity, size_t *reply_length);
/* The session start completed last (valid until the next START chunk of another session). */
int thk_receiver_started(const thk_receiver *receiver, thk_session_start *start);
/* Make the waiting session (a second sender started while one was active) the active one. */
int thk_receiver_activate_waiting(thk_receiver *receiver);
/* The active session's next frame packet in order if due (1), else 0 (THK_E_ARGUMENT without a session). */
int thk_receiver_pop(thk_receiver *receiver, double now, uint8_t *out, size_t capacity, size_t *length);
/* 1 and *deadline when a gap wait will end (call pop then), else 0. */
int thk_receiver_gap_deadline(const thk_receiver *receiver, double *deadline);
int thk_receiver_has_session(const thk_receiver *receiver);   /* an active session */
int thk_receiver_peer_closed(const thk_receiver *receiver);   /* its sender said BYE */
void thk_receiver_counts_get(const thk_receiver *receiver, thk_receiver_counts *counts);

/* ---- sender -------------------------------------------------------------------------------------- */
typedef struct {
    uint64_t frames_sent, frame_bytes, wire_bytes, hellos_sent, start_chunks_sent, start_retransmits,
        sessions_started, dropped;
} thk_sender_stats;

enum { THK_SENDER_IDLE, THK_SENDER_HELLO, THK_SENDER_START, THK_SENDER_ACTIVE, THK_SENDER_CLOSED };

typedef struct {
    uint8_t secret[THK_KEY_BYTES];
    int redundancy;
    double retransmit_s;
    thk_sender_stats stats;
    int state;
    uint32_t session_id;
    uint8_t salt[THK_SALT_BYTES];
    uint8_t hello_key[THK_KEY_BYTES], forward[THK_KEY_BYTES], backward[THK_KEY_BYTES];
    uint32_t hello_number, start_number, frame_number, bye_number;
    double wait_s, next_s;             /* HELLO back-off; when the next HELLO / START round is due */
    const uint8_t *blob;               /* the caller's, kept alive until the start is acknowledged */
    size_t blob_length;
    uint32_t chunk_count, chunks_missing, cursor;
    int first_round;
    uint8_t missing[THK_MAX_CHUNKS / 8];
    int copies;
    uint16_t copy_length[THK_MAX_REDUNDANCY];
    uint8_t copy[THK_MAX_REDUNDANCY][THK_JITTER_SLOT_BYTES];   /* most recent first */
    uint8_t scratch[THK_MAX_REDUNDANCY * (2 + THK_JITTER_SLOT_BYTES) + 1 + THK_JITTER_SLOT_BYTES];
} thk_sender;

/* redundancy: earlier packets repeated in each FRAME (0..3); retransmit_s: HELLO / START retry interval. */
int thk_sender_init(thk_sender *sender, const uint8_t *secret, size_t secret_length, int redundancy,
                    double retransmit_s);
/* Begin a session (a new one each call). session_id / salt: NULL draws them at random. */
int thk_sender_start(thk_sender *sender, const uint8_t *blob, size_t blob_length, const uint32_t *session_id,
                     const uint8_t *salt, double now);
/* The next handshake datagram due at `now` (1), or 0 when none is due. */
int thk_sender_poll(thk_sender *sender, double now, uint8_t *out, size_t capacity, size_t *length);
/* When poll has something next (1 and *deadline), 0 once the start is acknowledged. */
int thk_sender_deadline(const thk_sender *sender, double *deadline);
/* One inbound datagram: THK_STARTED when it completed the start, THK_OK, or why it was dropped (counted). */
int thk_sender_handle(thk_sender *sender, const uint8_t *data, size_t length);
/* One FRAME datagram carrying `packet` (<= THK_JITTER_SLOT_BYTES) and the previous `redundancy` ones. */
int thk_sender_frame(thk_sender *sender, const uint8_t *packet, size_t packet_length, uint8_t *out,
                     size_t capacity, size_t *length);
/* A BYE datagram (send it a few times: it may be lost); the sender is closed afterwards. */
int thk_sender_bye(thk_sender *sender, uint8_t *out, size_t capacity, size_t *length);

#ifdef __cplusplus
}
#endif
#endif
