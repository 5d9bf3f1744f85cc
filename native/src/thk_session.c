/* The session start of docs/transport.md section 3, both ends, as sdk/transport/endpoints.py runs
 * it (PacketSender._handshake / _deliver_start, PacketReceiver._on_hello / _on_start), without
 * I/O: datagrams in, datagrams out. Frames go through thk_frame_receiver (thk_transport.c). */
#include "thk_session.h"

#include <sodium.h>
#include <string.h>

#define CHUNK_HEADER 8  /* index (u16) | count (u16) | blob length (u32) */

static uint32_t u32le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void put_u32le(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint32_t chunks_for(uint32_t length) { return length ? (length + THK_CHUNK_BYTES - 1) / THK_CHUNK_BYTES : 1; }

size_t thk_session_struct_size(int which) {
    switch (which) {
    case THK_SIZE_RECEIVER: return sizeof(thk_receiver);
    case THK_SIZE_SENDER: return sizeof(thk_sender);
    default: return 0;
    }
}

int thk_start_blob_write(const uint8_t *header, size_t header_length, const uint8_t *portrait, size_t portrait_length,
                         uint8_t *out, size_t capacity, size_t *written) {
    if (!out || !written || (!header && header_length) || (!portrait && portrait_length)) return THK_E_ARGUMENT;
    size_t total = 4 + header_length + 1 + portrait_length;
    if (total > THK_MAX_BLOB_BYTES) return THK_E_OVERSIZED;
    if (capacity < total) return THK_E_BUFFER;
    put_u32le(out, (uint32_t)header_length);
    if (header_length) memcpy(out + 4, header, header_length);
    out[4 + header_length] = portrait ? 1 : 0;
    if (portrait_length) memcpy(out + 5 + header_length, portrait, portrait_length);
    *written = total;
    return THK_OK;
}

int thk_start_blob_parse(const uint8_t *blob, size_t length, const uint8_t **header, size_t *header_length,
                         const uint8_t **portrait, size_t *portrait_length) {
    if (!blob || !header || !header_length || !portrait || !portrait_length) return THK_E_ARGUMENT;
    if (length < 5) return THK_E_FRAME_MALFORMED;
    size_t n = u32le(blob);
    if (n > length - 5) return THK_E_FRAME_MALFORMED;
    uint8_t flag = blob[4 + n];
    size_t rest = length - 5 - n;
    if (!(flag == 1 || (flag == 0 && rest == 0))) return THK_E_FRAME_MALFORMED;
    *header = blob + 4;
    *header_length = n;
    *portrait = flag ? blob + 5 + n : NULL;
    *portrait_length = flag ? rest : 0;
    return THK_OK;
}

/* ---- receiver ------------------------------------------------------------------------------------ */
int thk_receiver_init(thk_receiver *r, const uint8_t *secret, size_t secret_length, uint8_t *blob,
                      size_t blob_capacity, double gap_wait_s, int capacity) {
    if (!r || !secret || !blob || blob_capacity < 5) return THK_E_ARGUMENT;
    if (secret_length != THK_KEY_BYTES) return THK_E_KEY_LENGTH;
    if (!(gap_wait_s >= 0) || capacity < 1 || capacity > THK_JITTER_MAX_CAPACITY) return THK_E_ARGUMENT;
    memset(r, 0, sizeof *r);
    memcpy(r->secret, secret, THK_KEY_BYTES);
    r->blob = blob;
    r->blob_capacity = blob_capacity;
    r->gap_wait_s = gap_wait_s;
    r->capacity = capacity;
    return THK_OK;
}

static thk_handshake *find_session(thk_receiver *r, uint32_t session_id) {
    if (r->active.used && r->active.session_id == session_id) return &r->active;
    if (r->waiting.used && r->waiting.session_id == session_id) return &r->waiting;
    for (int i = 0; i < THK_MAX_PENDING_HANDSHAKES; i++)
        if (r->pending[i].used && r->pending[i].session_id == session_id) return &r->pending[i];
    return NULL;
}

static int seal_reply(const uint8_t *key, int type, uint32_t session_id, uint32_t number, const uint8_t *salt,
                      const uint8_t *plaintext, size_t n, uint8_t *reply, size_t capacity, size_t *reply_length) {
    return thk_datagram_seal(key, type, session_id, number, salt, plaintext, n, reply, capacity, reply_length);
}

static int on_hello(thk_receiver *r, const uint8_t *data, const thk_datagram *dg, uint8_t *reply, size_t capacity,
                    size_t *reply_length) {
    uint8_t key[THK_KEY_BYTES], *plaintext = r->scratch;
    size_t n = 0;
    thk_derive_hello_key(r->secret, THK_KEY_BYTES, dg->salt, key);
    int status = dg->sealed_length - THK_TAG_BYTES > sizeof r->scratch ? THK_E_FORGED  /* no HELLO is this long */
                 : thk_datagram_open(key, data, dg, plaintext, sizeof r->scratch, &n);
    sodium_memzero(key, sizeof key);
    if (status) { r->totals.forged++; return THK_E_FORGED; }
    if (n != 1 || plaintext[0] != THK_PROTOCOL_VERSION) { r->totals.malformed++; return THK_E_FRAME_MALFORMED; }
    thk_handshake *h = find_session(r, dg->session_id);
    if (!h) {
        h = NULL;
        for (int i = 0; i < THK_MAX_PENDING_HANDSHAKES && !h; i++) if (!r->pending[i].used) h = &r->pending[i];
        if (!h) {  /* forget the oldest pending handshake */
            h = &r->pending[0];
            for (int i = 1; i < THK_MAX_PENDING_HANDSHAKES; i++) if (r->pending[i].age < h->age) h = &r->pending[i];
        }
        memset(h, 0, sizeof *h);
        h->used = 1;
        h->session_id = dg->session_id;
        h->age = r->next_age++;
        randombytes_buf(h->receiver_salt, THK_SALT_BYTES);
        thk_derive_session_keys(r->secret, THK_KEY_BYTES, dg->salt, h->receiver_salt, h->forward, h->backward);
        r->totals.handshakes++;
    }
    status = seal_reply(h->backward, THK_CHALLENGE, h->session_id, h->challenges, h->receiver_salt, NULL, 0, reply,
                        capacity, reply_length);
    if (status) return status;
    h->challenges++;
    return THK_OK;
}

static void blob_claim(thk_receiver *r, const thk_handshake *h) {
    r->blob_owned = 1;
    r->blob_complete = 0;
    r->blob_session = h->session_id;
    r->blob_chunks_held = 0;
    memset(r->blob_have, 0, sizeof r->blob_have);
}

static void start_frames(thk_receiver *r) {
    thk_frame_receiver_init(&r->frames, r->active.forward, r->active.session_id, r->gap_wait_s, r->capacity);
}

/* Add a session's frame counters (its thk_frame_receiver) to `totals`. */
static void add_frame_counts(thk_receiver_counts *t, const thk_frame_receiver *f) {
    const thk_receiver_stats *s = &f->stats;
    const thk_jitter_counts *j = &f->jitter.counts;
    t->received += s->received; t->recovered += s->recovered; t->delivered += s->delivered;
    t->duplicates += s->duplicates + j->duplicates; t->too_old += s->too_old; t->forged += s->forged;
    t->truncated += s->truncated; t->garbage += s->garbage; t->other_session += s->other_session;
    t->malformed += s->malformed; t->lost += j->lost; t->reordered += j->reordered; t->late += j->late;
    t->overflow += j->overflow; t->oversized += j->oversized;
}

static int on_start(thk_receiver *r, const uint8_t *data, const thk_datagram *dg, uint8_t *reply, size_t capacity,
                    size_t *reply_length) {
    thk_handshake *h = find_session(r, dg->session_id);
    if (!h) { r->totals.other_session++; return THK_E_OTHER_SESSION; }
    size_t n = 0;
    if (dg->sealed_length - THK_TAG_BYTES > sizeof r->scratch ||
        thk_datagram_open(h->forward, data, dg, r->scratch, sizeof r->scratch, &n)) {
        r->totals.forged++;
        return THK_E_FORGED;
    }
    /* parse_chunk: index < count, length <= 8 MiB, count = ceil(length / 1024), the chunk's exact size */
    if (n < CHUNK_HEADER) { r->totals.malformed++; return THK_E_FRAME_MALFORMED; }
    uint32_t index = (uint32_t)r->scratch[0] | (uint32_t)r->scratch[1] << 8;
    uint32_t count = (uint32_t)r->scratch[2] | (uint32_t)r->scratch[3] << 8;
    uint32_t length = u32le(r->scratch + 4);
    size_t size = n - CHUNK_HEADER;
    if (!(index < count && length <= THK_MAX_BLOB_BYTES && count == chunks_for(length)) ||
        size != (length - index * THK_CHUNK_BYTES < THK_CHUNK_BYTES ? length - index * THK_CHUNK_BYTES : THK_CHUNK_BYTES) ||
        (h->chunk_count && (h->chunk_count != count || h->blob_length != length))) {
        r->totals.malformed++;
        return THK_E_FRAME_MALFORMED;
    }
    if (length > r->blob_capacity) { r->totals.oversized++; return THK_E_OVERSIZED; }
    h->chunk_count = count;
    h->blob_length = length;
    int started = 0;
    if (!h->complete) {
        if (!r->blob_owned || r->blob_session != h->session_id || r->blob_complete) blob_claim(r, h);
        if (!(r->blob_have[index / 8] >> (index % 8) & 1)) {
            r->blob_have[index / 8] |= (uint8_t)(1u << (index % 8));
            r->blob_chunks_held++;
            if (size) memcpy(r->blob + (size_t)index * THK_CHUNK_BYTES, r->scratch + CHUNK_HEADER, size);
        }
        if (r->blob_chunks_held == count) {
            const uint8_t *header, *portrait;
            size_t header_length, portrait_length;
            if (thk_start_blob_parse(r->blob, length, &header, &header_length, &portrait, &portrait_length)) {
                r->totals.malformed++;
                r->blob_owned = 0;
                return THK_E_FRAME_MALFORMED;  /* no acknowledgement: the sender sends it all again */
            }
            h->complete = 1;
            r->blob_complete = 1;
            r->totals.sessions++;
            started = 1;
            if (h != &r->active) {
                thk_handshake done = *h;
                h->used = 0;
                if (!r->active.used) {
                    r->active = done;
                    start_frames(r);
                    h = &r->active;
                } else {
                    r->waiting = done;
                    h = &r->waiting;
                }
            }
        }
    }
    /* START_ACK: chunk count (u16) | bitmap of the chunks held */
    uint8_t *ack = r->scratch;
    size_t bitmap = (count + 7) / 8;
    ack[0] = (uint8_t)count;
    ack[1] = (uint8_t)(count >> 8);
    for (size_t i = 0; i < bitmap; i++) {
        uint8_t bits = h->complete ? 0xFF : r->blob_have[i];
        if (i == bitmap - 1 && count % 8) bits &= (uint8_t)((1u << (count % 8)) - 1);
        ack[2 + i] = bits;
    }
    int status = seal_reply(h->backward, THK_START_ACK, h->session_id, h->ack_number, NULL, ack, 2 + bitmap, reply,
                            capacity, reply_length);
    if (status) return status;
    h->ack_number++;
    return started ? THK_STARTED : THK_OK;
}

int thk_receiver_handle(thk_receiver *r, const uint8_t *data, size_t length, double now, uint8_t *reply,
                        size_t reply_capacity, size_t *reply_length) {
    if (!r || (!data && length) || !reply || !reply_length) return THK_E_ARGUMENT;
    *reply_length = 0;
    thk_datagram dg;
    int status = thk_datagram_parse(&dg, data, length);
    if (status == THK_E_TRUNCATED) { r->totals.truncated++; return status; }
    if (status == THK_E_GARBAGE) { r->totals.garbage++; return status; }
    if (status) return status;
    if (dg.sealed_length < THK_TAG_BYTES) { r->totals.truncated++; return THK_E_TRUNCATED; }
    switch (dg.type) {
    case THK_HELLO: return on_hello(r, data, &dg, reply, reply_capacity, reply_length);
    case THK_START: return on_start(r, data, &dg, reply, reply_capacity, reply_length);
    case THK_FRAME:
    case THK_BYE:
        if (!r->active.used) { r->totals.other_session++; return THK_E_OTHER_SESSION; }
        return thk_frame_receiver_handle(&r->frames, data, length, now);
    default: r->totals.garbage++; return THK_E_GARBAGE;
    }
}

int thk_receiver_started(const thk_receiver *r, thk_session_start *start) {
    if (!r || !start) return THK_E_ARGUMENT;
    const thk_handshake *h = r->waiting.used && r->waiting.session_id == r->blob_session ? &r->waiting : &r->active;
    if (!r->blob_complete || !h->used || h->session_id != r->blob_session) return THK_E_ARGUMENT;
    memset(start, 0, sizeof *start);
    start->session_id = h->session_id;
    start->active = h == &r->active;
    return thk_start_blob_parse(r->blob, h->blob_length, &start->header, &start->header_length, &start->portrait,
                                &start->portrait_length);
}

int thk_receiver_activate_waiting(thk_receiver *r) {
    if (!r || !r->waiting.used) return THK_E_ARGUMENT;
    add_frame_counts(&r->totals, &r->frames);  /* the old session's counters stay in the totals */
    r->active = r->waiting;
    r->waiting.used = 0;
    start_frames(r);
    return THK_OK;
}

int thk_receiver_pop(thk_receiver *r, double now, uint8_t *out, size_t capacity, size_t *length) {
    if (!r || !r->active.used) return THK_E_ARGUMENT;
    return thk_frame_receiver_pop(&r->frames, now, out, capacity, length);
}

int thk_receiver_gap_deadline(const thk_receiver *r, double *deadline) {
    if (!r || !deadline) return THK_E_ARGUMENT;
    return r->active.used ? thk_jitter_gap_deadline(&r->frames.jitter, deadline) : 0;
}

int thk_receiver_has_session(const thk_receiver *r) { return r && r->active.used; }
int thk_receiver_peer_closed(const thk_receiver *r) { return r && r->active.used && r->frames.bye; }

void thk_receiver_counts_get(const thk_receiver *r, thk_receiver_counts *counts) {
    if (!r || !counts) return;
    *counts = r->totals;
    if (r->active.used) add_frame_counts(counts, &r->frames);
}

/* ---- sender -------------------------------------------------------------------------------------- */
int thk_sender_init(thk_sender *s, const uint8_t *secret, size_t secret_length, int redundancy, double retransmit_s) {
    if (!s || !secret || redundancy < 0 || redundancy > THK_MAX_REDUNDANCY || !(retransmit_s > 0)) return THK_E_ARGUMENT;
    if (secret_length != THK_KEY_BYTES) return THK_E_KEY_LENGTH;
    memset(s, 0, sizeof *s);
    memcpy(s->secret, secret, THK_KEY_BYTES);
    s->redundancy = redundancy;
    s->retransmit_s = retransmit_s;
    return THK_OK;
}

int thk_sender_start(thk_sender *s, const uint8_t *blob, size_t blob_length, const uint32_t *session_id,
                     const uint8_t *salt, double now) {
    if (!s || !blob || blob_length < 5) return THK_E_ARGUMENT;
    if (blob_length > THK_MAX_BLOB_BYTES) return THK_E_OVERSIZED;
    if (s->state == THK_SENDER_CLOSED) return THK_E_ARGUMENT;
    s->state = THK_SENDER_HELLO;
    if (session_id) s->session_id = *session_id;
    else randombytes_buf(&s->session_id, sizeof s->session_id);
    if (salt) memcpy(s->salt, salt, THK_SALT_BYTES);
    else randombytes_buf(s->salt, THK_SALT_BYTES);
    thk_derive_hello_key(s->secret, THK_KEY_BYTES, s->salt, s->hello_key);
    s->hello_number = s->start_number = s->frame_number = s->bye_number = 0;
    s->wait_s = s->retransmit_s;
    s->next_s = now;
    s->blob = blob;
    s->blob_length = blob_length;
    s->chunk_count = chunks_for((uint32_t)blob_length);
    s->chunks_missing = s->chunk_count;
    memset(s->missing, 0, sizeof s->missing);
    for (uint32_t i = 0; i < s->chunk_count; i++) s->missing[i / 8] |= (uint8_t)(1u << (i % 8));
    s->cursor = 0;
    s->first_round = 1;
    s->copies = 0;
    return THK_OK;
}

static int sender_seal(thk_sender *s, const uint8_t *key, int type, uint32_t number, const uint8_t *salt,
                       const uint8_t *plaintext, size_t n, uint8_t *out, size_t capacity, size_t *length) {
    int status = thk_datagram_seal(key, type, s->session_id, number, salt, plaintext, n, out, capacity, length);
    if (!status) s->stats.wire_bytes += *length;
    return status;
}

/* The first chunk at or after `from` not yet acknowledged (chunk_count when none). */
static uint32_t next_missing(const thk_sender *s, uint32_t from) {
    while (from < s->chunk_count && !(s->missing[from / 8] >> (from % 8) & 1)) from++;
    return from;
}

int thk_sender_poll(thk_sender *s, double now, uint8_t *out, size_t capacity, size_t *length) {
    if (!s || !out || !length) return THK_E_ARGUMENT;
    *length = 0;
    if (s->state == THK_SENDER_HELLO) {
        if (now < s->next_s) return 0;
        uint8_t version = THK_PROTOCOL_VERSION;
        int status = sender_seal(s, s->hello_key, THK_HELLO, s->hello_number, s->salt, &version, 1, out, capacity,
                                 length);
        if (status) return status;
        s->hello_number++;
        s->stats.hellos_sent++;
        s->next_s = now + s->wait_s;
        s->wait_s = s->wait_s * 1.5 < 1.0 ? s->wait_s * 1.5 : 1.0;
        return 1;
    }
    if (s->state != THK_SENDER_START) return 0;
    if (s->cursor >= s->chunk_count) {  /* a round is done: the missing ones again after retransmit_s */
        if (now < s->next_s || !s->chunks_missing) return 0;
        s->cursor = next_missing(s, 0);
        s->first_round = 0;
    }
    uint32_t index = s->cursor;
    size_t offset = (size_t)index * THK_CHUNK_BYTES;
    size_t size = s->blob_length - offset < THK_CHUNK_BYTES ? s->blob_length - offset : THK_CHUNK_BYTES;
    uint8_t *chunk = s->scratch;
    chunk[0] = (uint8_t)index; chunk[1] = (uint8_t)(index >> 8);
    chunk[2] = (uint8_t)s->chunk_count; chunk[3] = (uint8_t)(s->chunk_count >> 8);
    put_u32le(chunk + 4, (uint32_t)s->blob_length);
    memcpy(chunk + CHUNK_HEADER, s->blob + offset, size);
    int status = sender_seal(s, s->forward, THK_START, s->start_number, NULL, chunk, CHUNK_HEADER + size, out,
                             capacity, length);
    if (status) return status;
    s->start_number++;
    s->stats.start_chunks_sent++;
    if (!s->first_round) s->stats.start_retransmits++;
    s->cursor = next_missing(s, index + 1);
    if (s->cursor >= s->chunk_count) s->next_s = now + s->retransmit_s;
    return 1;
}

int thk_sender_deadline(const thk_sender *s, double *deadline) {
    if (!s || !deadline) return THK_E_ARGUMENT;
    if (s->state == THK_SENDER_HELLO) { *deadline = s->next_s; return 1; }
    if (s->state != THK_SENDER_START) return 0;
    *deadline = s->cursor < s->chunk_count ? 0.0 : s->next_s;  /* a round under way: at once */
    return 1;
}

int thk_sender_handle(thk_sender *s, const uint8_t *data, size_t length) {
    if (!s || (!data && length)) return THK_E_ARGUMENT;
    thk_datagram dg;
    int status = thk_datagram_parse(&dg, data, length);
    if (status) { s->stats.dropped++; return status; }
    if (dg.session_id != s->session_id || (dg.type != THK_CHALLENGE && dg.type != THK_START_ACK)) {
        s->stats.dropped++;
        return dg.session_id != s->session_id ? THK_E_OTHER_SESSION : THK_E_GARBAGE;
    }
    uint8_t *plaintext = s->scratch;
    size_t n = 0;
    if (dg.type == THK_CHALLENGE) {
        if (s->state != THK_SENDER_HELLO) return THK_OK;  /* a repeated CHALLENGE is expected, not counted */
        uint8_t forward[THK_KEY_BYTES], backward[THK_KEY_BYTES];
        thk_derive_session_keys(s->secret, THK_KEY_BYTES, s->salt, dg.salt, forward, backward);
        status = thk_datagram_open(backward, data, &dg, plaintext, sizeof s->scratch, &n);
        if (status) {
            sodium_memzero(forward, sizeof forward);
            sodium_memzero(backward, sizeof backward);
            s->stats.dropped++;
            return status == THK_E_BUFFER ? THK_E_FORGED : status;
        }
        memcpy(s->forward, forward, THK_KEY_BYTES);
        memcpy(s->backward, backward, THK_KEY_BYTES);
        s->state = THK_SENDER_START;
        s->cursor = 0;
        return THK_OK;
    }
    if (s->state == THK_SENDER_HELLO) { s->stats.dropped++; return THK_E_GARBAGE; }  /* no START sent yet */
    if (s->state != THK_SENDER_START) return THK_OK;  /* a late acknowledgement after the start */
    status = thk_datagram_open(s->backward, data, &dg, plaintext, sizeof s->scratch, &n);
    size_t bitmap = (s->chunk_count + 7) / 8;
    if (status || n != 2 + bitmap || ((uint32_t)plaintext[0] | (uint32_t)plaintext[1] << 8) != s->chunk_count) {
        s->stats.dropped++;
        return status ? THK_E_FORGED : THK_E_FRAME_MALFORMED;
    }
    for (uint32_t i = 0; i < s->chunk_count; i++) {
        if ((plaintext[2 + i / 8] >> (i % 8) & 1) && (s->missing[i / 8] >> (i % 8) & 1)) {
            s->missing[i / 8] &= (uint8_t)~(1u << (i % 8));
            s->chunks_missing--;
        }
    }
    if (s->chunks_missing) return THK_OK;
    s->state = THK_SENDER_ACTIVE;
    s->blob = NULL;
    s->stats.sessions_started++;
    return THK_STARTED;
}

int thk_sender_frame(thk_sender *s, const uint8_t *packet, size_t packet_length, uint8_t *out, size_t capacity,
                     size_t *length) {
    if (!s || (!packet && packet_length) || !out || !length || s->state != THK_SENDER_ACTIVE) return THK_E_ARGUMENT;
    if (packet_length > THK_JITTER_SLOT_BYTES) return THK_E_OVERSIZED;
    const uint8_t *copy[THK_MAX_REDUNDANCY];
    size_t copy_length[THK_MAX_REDUNDANCY];
    for (int i = 0; i < s->copies; i++) { copy[i] = s->copy[i]; copy_length[i] = s->copy_length[i]; }
    size_t n = 0;
    int status = thk_frame_payload_write(packet, packet_length, s->copies, copy, copy_length, s->scratch,
                                         sizeof s->scratch, &n);
    if (!status) status = sender_seal(s, s->forward, THK_FRAME, s->frame_number, NULL, s->scratch, n, out, capacity,
                                      length);
    if (status) return status;
    if (s->redundancy) {  /* this packet becomes the most recent copy */
        int keep = s->copies < s->redundancy ? s->copies + 1 : s->redundancy;
        for (int i = keep - 1; i > 0; i--) {
            memcpy(s->copy[i], s->copy[i - 1], s->copy_length[i - 1]);
            s->copy_length[i] = s->copy_length[i - 1];
        }
        if (packet_length) memcpy(s->copy[0], packet, packet_length);
        s->copy_length[0] = (uint16_t)packet_length;
        s->copies = keep;
    }
    s->frame_number++;
    s->stats.frames_sent++;
    s->stats.frame_bytes += packet_length;
    return THK_OK;
}

int thk_sender_bye(thk_sender *s, uint8_t *out, size_t capacity, size_t *length) {
    if (!s || !out || !length || (s->state != THK_SENDER_ACTIVE && s->state != THK_SENDER_CLOSED)) return THK_E_ARGUMENT;
    int status = sender_seal(s, s->forward, THK_BYE, s->bye_number, NULL, NULL, 0, out, capacity, length);
    if (status) return status;
    s->bye_number++;
    s->state = THK_SENDER_CLOSED;
    return THK_OK;
}
