/* The transport of docs/transport.md: keys (section 1), datagrams (section 2), the replay window,
 * redundancy and the jitter buffer (section 4), with libsodium's ChaCha20-Poly1305 (IETF) and
 * HMAC-SHA256 (HKDF, RFC 5869, is built on it: libsodium 1.0.18 has no HKDF of its own). */
#include "thk.h"

#include <sodium.h>
#include <string.h>

static const char LABEL[] = "talking-head-sdk transport v1 ";

int thk_crypto_init(void) { return sodium_init() < 0 ? THK_E_CRYPTO_INIT : THK_OK; }

/* HKDF-SHA256 with a 32-byte output: one expand block. */
static void hkdf32(const uint8_t *secret, const uint8_t *salt, size_t salt_length, const char *purpose,
                   uint8_t out[32]) {
    uint8_t prk[32], one = 1;
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init(&state, salt, salt_length);
    crypto_auth_hmacsha256_update(&state, secret, THK_KEY_BYTES);
    crypto_auth_hmacsha256_final(&state, prk);
    crypto_auth_hmacsha256_init(&state, prk, sizeof prk);
    crypto_auth_hmacsha256_update(&state, (const uint8_t *)LABEL, sizeof LABEL - 1);
    crypto_auth_hmacsha256_update(&state, (const uint8_t *)purpose, strlen(purpose));
    crypto_auth_hmacsha256_update(&state, &one, 1);
    crypto_auth_hmacsha256_final(&state, out);
    sodium_memzero(prk, sizeof prk);
    sodium_memzero(&state, sizeof state);
}

int thk_derive_hello_key(const uint8_t *secret, size_t secret_length, const uint8_t sender_salt[16], uint8_t key[32]) {
    if (!secret || !sender_salt || !key) return THK_E_ARGUMENT;
    if (secret_length != THK_KEY_BYTES) return THK_E_KEY_LENGTH;
    hkdf32(secret, sender_salt, THK_SALT_BYTES, "hello", key);
    return THK_OK;
}

int thk_derive_session_keys(const uint8_t *secret, size_t secret_length, const uint8_t sender_salt[16],
                            const uint8_t receiver_salt[16], uint8_t forward[32], uint8_t backward[32]) {
    if (!secret || !sender_salt || !receiver_salt || !forward || !backward) return THK_E_ARGUMENT;
    if (secret_length != THK_KEY_BYTES) return THK_E_KEY_LENGTH;
    uint8_t salt[2 * THK_SALT_BYTES];
    memcpy(salt, sender_salt, THK_SALT_BYTES);
    memcpy(salt + THK_SALT_BYTES, receiver_salt, THK_SALT_BYTES);
    hkdf32(secret, salt, sizeof salt, "sender to receiver", forward);
    hkdf32(secret, salt, sizeof salt, "receiver to sender", backward);
    return THK_OK;
}

static void make_nonce(uint8_t nonce[12], int type, uint64_t number) {
    memset(nonce, 0, 12);
    nonce[0] = (uint8_t)type;
    for (int i = 0; i < 8; i++) nonce[4 + i] = (uint8_t)(number >> (8 * i));
}

static int has_salt(int type) { return type == THK_HELLO || type == THK_CHALLENGE; }

int thk_datagram_parse(thk_datagram *dg, const uint8_t *data, size_t length) {
    if (!dg || (!data && length)) return THK_E_ARGUMENT;
    memset(dg, 0, sizeof *dg);
    if (length < THK_PREFIX_BYTES) return THK_E_TRUNCATED;
    if (data[0] < THK_HELLO || data[0] > THK_BYE) return THK_E_GARBAGE;
    dg->type = data[0];
    dg->session_id = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16 | (uint32_t)data[4] << 24;
    dg->number = (uint32_t)data[5] | (uint32_t)data[6] << 8 | (uint32_t)data[7] << 16 | (uint32_t)data[8] << 24;
    dg->aad_length = THK_PREFIX_BYTES + (has_salt(dg->type) ? THK_SALT_BYTES : 0);
    if (length < dg->aad_length) return THK_E_TRUNCATED;
    dg->salt = has_salt(dg->type) ? data + THK_PREFIX_BYTES : NULL;
    dg->sealed = data + dg->aad_length;
    dg->sealed_length = length - dg->aad_length;
    return THK_OK;
}

int thk_datagram_seal(const uint8_t key[32], int type, uint32_t session_id, uint32_t number, const uint8_t *salt,
                      const uint8_t *plaintext, size_t plaintext_length, uint8_t *out, size_t capacity,
                      size_t *written) {
    if (!key || !out || !written || (!plaintext && plaintext_length) || type < THK_HELLO || type > THK_BYE ||
        (has_salt(type) && !salt)) return THK_E_ARGUMENT;
    size_t aad = THK_PREFIX_BYTES + (has_salt(type) ? THK_SALT_BYTES : 0);
    if (capacity < aad + plaintext_length + THK_TAG_BYTES) return THK_E_BUFFER;
    out[0] = (uint8_t)type;
    for (int i = 0; i < 4; i++) {
        out[1 + i] = (uint8_t)(session_id >> (8 * i));
        out[5 + i] = (uint8_t)(number >> (8 * i));
    }
    if (has_salt(type)) memcpy(out + THK_PREFIX_BYTES, salt, THK_SALT_BYTES);
    uint8_t nonce[12];
    make_nonce(nonce, type, number);
    unsigned long long sealed = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(out + aad, &sealed, plaintext, plaintext_length, out, aad, NULL, nonce,
                                              key);
    *written = aad + (size_t)sealed;
    return THK_OK;
}

int thk_datagram_open(const uint8_t key[32], const uint8_t *data, const thk_datagram *dg, uint8_t *plaintext,
                      size_t capacity, size_t *plaintext_length) {
    if (!key || !data || !dg || !plaintext_length || (!plaintext && capacity)) return THK_E_ARGUMENT;
    if (dg->sealed_length < THK_TAG_BYTES) return THK_E_TRUNCATED;
    if (capacity < dg->sealed_length - THK_TAG_BYTES) return THK_E_BUFFER;
    uint8_t nonce[12];
    make_nonce(nonce, dg->type, dg->number);
    unsigned long long opened = 0;
    if (crypto_aead_chacha20poly1305_ietf_decrypt(plaintext, &opened, NULL, dg->sealed, dg->sealed_length, data,
                                                  dg->aad_length, nonce, key) != 0) return THK_E_FORGED;
    *plaintext_length = (size_t)opened;
    return THK_OK;
}

int thk_frame_payload_parse(thk_frame_payload *p, const uint8_t *plaintext, size_t length) {
    if (!p || (!plaintext && length)) return THK_E_ARGUMENT;
    memset(p, 0, sizeof *p);
    if (length == 0 || plaintext[0] > THK_MAX_REDUNDANCY) return THK_E_FRAME_MALFORMED;
    size_t offset = 1;
    p->copies = plaintext[0];
    for (int i = 0; i < p->copies; i++) {
        if (offset + 2 > length) return THK_E_FRAME_MALFORMED;
        size_t n = (size_t)plaintext[offset] | (size_t)plaintext[offset + 1] << 8;
        if (offset + 2 + n > length) return THK_E_FRAME_MALFORMED;
        p->copy[i] = plaintext + offset + 2;
        p->copy_length[i] = n;
        offset += 2 + n;
    }
    p->packet = plaintext + offset;
    p->packet_length = length - offset;
    return THK_OK;
}

int thk_frame_payload_write(const uint8_t *packet, size_t packet_length, int copies, const uint8_t *const *copy,
                            const size_t *copy_length, uint8_t *out, size_t capacity, size_t *written) {
    if (!out || !written || (!packet && packet_length) || copies < 0 || copies > THK_MAX_REDUNDANCY ||
        (copies && (!copy || !copy_length)) || packet_length > 0xFFFF) return THK_E_ARGUMENT;
    size_t total = 1 + packet_length;
    for (int i = 0; i < copies; i++) {
        if (copy_length[i] > 0xFFFF || (!copy[i] && copy_length[i])) return THK_E_ARGUMENT;
        total += 2 + copy_length[i];
    }
    if (capacity < total) return THK_E_BUFFER;
    size_t offset = 1;
    out[0] = (uint8_t)copies;
    for (int i = 0; i < copies; i++) {
        out[offset] = (uint8_t)copy_length[i];
        out[offset + 1] = (uint8_t)(copy_length[i] >> 8);
        if (copy_length[i]) memcpy(out + offset + 2, copy[i], copy_length[i]);
        offset += 2 + copy_length[i];
    }
    if (packet_length) memcpy(out + offset, packet, packet_length);
    *written = total;
    return THK_OK;
}

/* ---- replay window ------------------------------------------------------------------------------- */
#define WINDOW 256

void thk_replay_init(thk_replay_window *w) { if (w) { w->highest = -1; memset(w->seen, 0, sizeof w->seen); } }

static int window_bit(const thk_replay_window *w, uint64_t offset) { return (int)(w->seen[offset / 64] >> (offset % 64) & 1); }

int thk_replay_check(const thk_replay_window *w, uint64_t number) {
    if ((int64_t)number > w->highest) return THK_OK;
    uint64_t offset = (uint64_t)(w->highest - (int64_t)number);
    if (offset >= WINDOW) return THK_E_TOO_OLD;
    return window_bit(w, offset) ? THK_E_DUPLICATE : THK_OK;
}

void thk_replay_commit(thk_replay_window *w, uint64_t number) {
    if ((int64_t)number > w->highest) {
        uint64_t shift = (uint64_t)((int64_t)number - w->highest);
        if (shift >= WINDOW) {
            memset(w->seen, 0, sizeof w->seen);
        } else {
            unsigned words = (unsigned)(shift / 64), bits = (unsigned)(shift % 64);
            for (int i = 3; i >= 0; i--) {
                uint64_t v = 0;
                int from = i - (int)words;
                if (from >= 0) {
                    v = w->seen[from] << bits;
                    if (bits && from >= 1) v |= w->seen[from - 1] >> (64 - bits);
                }
                w->seen[i] = v;
            }
        }
        w->seen[0] |= 1;
        w->highest = (int64_t)number;
    } else {
        uint64_t offset = (uint64_t)(w->highest - (int64_t)number);
        w->seen[offset / 64] |= 1ull << (offset % 64);
    }
}

/* ---- jitter buffer ------------------------------------------------------------------------------- */
int thk_jitter_init(thk_jitter *j, double gap_wait_s, int capacity) {
    if (!j || !(gap_wait_s >= 0) || capacity < 1 || capacity > THK_JITTER_MAX_CAPACITY) return THK_E_ARGUMENT;
    memset(j, 0, sizeof *j);
    j->gap_wait_s = gap_wait_s;
    j->capacity = capacity;
    j->highest = -1;
    return THK_OK;
}

static int find_slot(const thk_jitter *j, uint64_t number) {
    for (int i = 0; i <= THK_JITTER_MAX_CAPACITY; i++)
        if (j->slot[i].used && j->slot[i].number == number) return i;
    return -1;
}

static int oldest_slot(const thk_jitter *j) {
    int best = -1;
    for (int i = 0; i <= THK_JITTER_MAX_CAPACITY; i++)
        if (j->slot[i].used && (best < 0 || j->slot[i].number < j->slot[best].number)) best = i;
    return best;
}

int thk_jitter_holds(const thk_jitter *j, uint64_t number) { return j && find_slot(j, number) >= 0; }

int thk_jitter_push(thk_jitter *j, uint64_t number, const uint8_t *payload, size_t length, double now) {
    if (!j || (!payload && length)) return THK_E_ARGUMENT;
    if (number < j->next_number) { j->counts.late++; return THK_OK; }
    if (find_slot(j, number) >= 0) { j->counts.duplicates++; return THK_OK; }
    if (length > THK_JITTER_SLOT_BYTES) { j->counts.oversized++; return THK_E_OVERSIZED; }
    if ((int64_t)number < j->highest) j->counts.reordered++;
    if ((int64_t)number > j->highest) j->highest = (int64_t)number;
    int free_slot = 0;
    while (j->slot[free_slot].used) free_slot++;  /* held <= capacity < slots, so one is free */
    j->slot[free_slot].used = 1;
    j->slot[free_slot].number = number;
    j->slot[free_slot].arrival = now;
    j->slot[free_slot].length = (uint16_t)length;
    if (length) memcpy(j->slot[free_slot].data, payload, length);
    j->held++;
    if (j->held > j->capacity) {
        int oldest = oldest_slot(j);
        uint64_t first = j->slot[oldest].number;
        if (first != j->next_number) {          /* a gap holds the frames up: give it up, drop nothing */
            j->counts.lost += first - j->next_number;
        } else {                                 /* the reader is behind: drop its oldest frame */
            j->slot[oldest].used = 0;
            j->held--;
            j->counts.overflow++;
            first++;
        }
        j->next_number = first;
    }
    return THK_OK;
}

int thk_jitter_gap_deadline(const thk_jitter *j, double *deadline) {
    if (!j || !deadline) return THK_E_ARGUMENT;
    if (!j->held || find_slot(j, j->next_number) >= 0) return 0;
    double earliest = 0;
    int any = 0;
    for (int i = 0; i <= THK_JITTER_MAX_CAPACITY; i++)
        if (j->slot[i].used && (!any || j->slot[i].arrival < earliest)) { earliest = j->slot[i].arrival; any = 1; }
    *deadline = earliest + j->gap_wait_s;
    return 1;
}

int thk_jitter_pop(thk_jitter *j, double now, uint8_t *out, size_t capacity, size_t *length) {
    if (!j || !out || !length) return THK_E_ARGUMENT;
    if (!j->held) return 0;
    int index = find_slot(j, j->next_number);
    if (index < 0) {
        double deadline;
        thk_jitter_gap_deadline(j, &deadline);
        if (now < deadline) return 0;
        index = oldest_slot(j);
        j->counts.lost += j->slot[index].number - j->next_number;
        j->next_number = j->slot[index].number;
    }
    if (capacity < j->slot[index].length) return THK_E_BUFFER;
    memcpy(out, j->slot[index].data, j->slot[index].length);
    *length = j->slot[index].length;
    j->slot[index].used = 0;
    j->held--;
    j->next_number++;
    return 1;
}

/* ---- the receiver's per-frame path ---------------------------------------------------------------- */
int thk_frame_receiver_init(thk_frame_receiver *r, const uint8_t forward_key[32], uint32_t session_id,
                            double gap_wait_s, int capacity) {
    if (!r || !forward_key) return THK_E_ARGUMENT;
    memset(r, 0, sizeof *r);
    int status = thk_jitter_init(&r->jitter, gap_wait_s, capacity);
    if (status) return status;
    memcpy(r->forward_key, forward_key, 32);
    r->session_id = session_id;
    thk_replay_init(&r->window);
    return THK_OK;
}

static int recovered_index(const thk_frame_receiver *r, uint64_t number) {
    for (int i = 0; i < r->recovered_count; i++) if (r->recovered[i] == number) return i;
    return -1;
}

static void recovered_remove(thk_frame_receiver *r, int index) { r->recovered[index] = r->recovered[--r->recovered_count]; }

static void recovered_add(thk_frame_receiver *r, uint64_t number) {
    if (r->recovered_count == THK_RECOVERED_SLOTS) {  /* never reached (pruned above 128); keep the newest */
        int oldest = 0;
        for (int i = 1; i < r->recovered_count; i++) if (r->recovered[i] < r->recovered[oldest]) oldest = i;
        recovered_remove(r, oldest);
    }
    r->recovered[r->recovered_count++] = number;
}

int thk_frame_receiver_handle(thk_frame_receiver *r, const uint8_t *data, size_t length, double now) {
    if (!r || (!data && length)) return THK_E_ARGUMENT;
    thk_datagram dg;
    int status = thk_datagram_parse(&dg, data, length);
    if (status == THK_E_TRUNCATED) { r->stats.truncated++; return status; }
    if (status == THK_E_GARBAGE) { r->stats.garbage++; return status; }
    if (status) return status;
    if (dg.sealed_length < THK_TAG_BYTES) { r->stats.truncated++; return THK_E_TRUNCATED; }
    if (dg.type != THK_FRAME && dg.type != THK_BYE) { r->stats.garbage++; return THK_E_GARBAGE; }  /* handshake: not here */
    if (dg.session_id != r->session_id) { r->stats.other_session++; return THK_E_OTHER_SESSION; }
    size_t plaintext_length;
    if (dg.type == THK_BYE) {
        status = thk_datagram_open(r->forward_key, data, &dg, r->scratch, sizeof r->scratch, &plaintext_length);
        if (status == THK_E_BUFFER || status == THK_E_FORGED) { r->stats.forged++; return THK_E_FORGED; }
        r->bye = 1;
        return THK_OK;
    }
    status = thk_replay_check(&r->window, dg.number);
    if (status == THK_E_DUPLICATE) { r->stats.duplicates++; return status; }
    if (status == THK_E_TOO_OLD) { r->stats.too_old++; return status; }
    status = thk_datagram_open(r->forward_key, data, &dg, r->scratch, sizeof r->scratch, &plaintext_length);
    if (status == THK_E_BUFFER) { r->stats.malformed++; return THK_E_OVERSIZED; }  /* authentic or not, too big to hold */
    if (status) { r->stats.forged++; return THK_E_FORGED; }
    thk_frame_payload payload;
    if (thk_frame_payload_parse(&payload, r->scratch, plaintext_length)) {
        r->stats.malformed++;
        return THK_E_FRAME_MALFORMED;
    }
    thk_replay_commit(&r->window, dg.number);
    r->stats.received++;
    /* copies of earlier frames first (oldest first), so a recovered frame is not "reordered" */
    for (int distance = payload.copies; distance > 0; distance--) {
        if ((uint64_t)distance > dg.number) continue;
        uint64_t number = dg.number - (uint64_t)distance;
        if (number >= r->jitter.next_number && thk_replay_check(&r->window, number) == THK_OK &&
            recovered_index(r, number) < 0 && !thk_jitter_holds(&r->jitter, number)) {
            if (thk_jitter_push(&r->jitter, number, payload.copy[distance - 1], payload.copy_length[distance - 1],
                                now) == THK_OK) {
                recovered_add(r, number);
                r->stats.recovered++;
            }
        }
    }
    /* a packet over a jitter slot is refused there (counted oversized, where the Python holds it): the
     * datagram is authentic and received, its copies kept, but its frame is dropped, so say so */
    int index = recovered_index(r, dg.number);
    status = THK_OK;
    if (index >= 0) recovered_remove(r, index);  /* its copy was already used */
    else status = thk_jitter_push(&r->jitter, dg.number, payload.packet, payload.packet_length, now);
    if (r->recovered_count > 2 * THK_RECOVERED_MEMORY) {
        uint64_t floor = r->jitter.next_number >= THK_RECOVERED_MEMORY ? r->jitter.next_number - THK_RECOVERED_MEMORY : 0;
        for (int i = r->recovered_count - 1; i >= 0; i--)
            if (r->recovered[i] < floor) recovered_remove(r, i);
    }
    return status;
}

int thk_frame_receiver_pop(thk_frame_receiver *r, double now, uint8_t *out, size_t capacity, size_t *length) {
    if (!r) return THK_E_ARGUMENT;
    int status = thk_jitter_pop(&r->jitter, now, out, capacity, length);
    if (status == 1) r->stats.delivered++;
    return status;
}
