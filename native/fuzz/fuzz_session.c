/* libFuzzer harness of the session start (thk_session.c): each input is split into datagram
 * bodies; the first half go in raw (unauthenticated bytes), the rest as plaintexts sealed with the
 * keys of a real handshake (so the authenticated START / HELLO parsing is reached), into one
 * receiver; the sender gets the receiver's replies and raw bytes too. No crash, leak or UB.
 *   make fuzz-session && build/fuzz_session -max_total_time=60 */
#include "thk_session.h"

#include <string.h>

static thk_receiver receiver;
static thk_sender sender;
static uint8_t blob[1 << 16];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint8_t secret[32] = {1, 2, 3};
    static const uint8_t start_blob[] = {3, 0, 0, 0, 'h', 'd', 'r', 0};
    static const uint8_t salt[16] = {9};
    static int ready = 0;
    if (!ready) { thk_crypto_init(); ready = 1; }
    thk_receiver_init(&receiver, secret, 32, blob, sizeof blob, 0.06, 16);
    thk_sender_init(&sender, secret, 32, 2, 0.1);
    uint32_t id = 7;
    thk_sender_start(&sender, start_blob, sizeof start_blob, &id, salt, 0.0);
    uint8_t out[THK_SESSION_DATAGRAM_BYTES + 64], reply[THK_SESSION_DATAGRAM_BYTES];
    size_t n = 0, reply_length = 0;
    /* a real handshake first: HELLO -> CHALLENGE, so the session's keys exist on both ends */
    if (thk_sender_poll(&sender, 0.0, out, sizeof out, &n) == 1 &&
        thk_receiver_handle(&receiver, out, n, 0.0, reply, sizeof reply, &reply_length) == THK_OK && reply_length)
        thk_sender_handle(&sender, reply, reply_length);
    const thk_handshake *h = &receiver.pending[0];
    size_t offset = 0;
    int index = 0;
    while (offset < size) {
        size_t length = data[offset++];
        if (length > size - offset) length = size - offset;
        const uint8_t *body = data + offset;
        offset += length;
        uint8_t sealed[THK_SESSION_DATAGRAM_BYTES + 300];
        size_t sealed_length = 0;
        int kind = index++ % 4;
        if (kind == 0) {  /* raw bytes to both ends */
            thk_receiver_handle(&receiver, body, length, 0.01 * index, reply, sizeof reply, &reply_length);
            thk_sender_handle(&sender, body, length);
        } else if (kind == 1 && h->used) {  /* an authentic START of the session with this plaintext */
            if (thk_datagram_seal(h->forward, THK_START, id, (uint32_t)index, NULL, body, length, sealed, sizeof sealed,
                                  &sealed_length) == THK_OK)
                thk_receiver_handle(&receiver, sealed, sealed_length, 0.01 * index, reply, sizeof reply, &reply_length);
        } else if (kind == 2 && h->used) {  /* an authentic START_ACK / CHALLENGE to the sender */
            int type = length % 2 ? THK_START_ACK : THK_CHALLENGE;
            if (thk_datagram_seal(h->backward, type, id, (uint32_t)index, h->receiver_salt, body, length, sealed,
                                  sizeof sealed, &sealed_length) == THK_OK)
                thk_sender_handle(&sender, sealed, sealed_length);
        } else {  /* the sender's own datagrams, and frames once it is active */
            while (thk_sender_poll(&sender, 0.2 * index, out, sizeof out, &n) == 1)
                if (thk_receiver_handle(&receiver, out, n, 0.2 * index, reply, sizeof reply, &reply_length) >= 0 &&
                    reply_length)
                    thk_sender_handle(&sender, reply, reply_length);
            if (thk_sender_frame(&sender, body, length, sealed, sizeof sealed, &sealed_length) == THK_OK)
                thk_receiver_handle(&receiver, sealed, sealed_length, 0.2 * index, reply, sizeof reply, &reply_length);
        }
        uint8_t packet[THK_JITTER_SLOT_BYTES];
        while (thk_receiver_pop(&receiver, 0.5 * index, packet, sizeof packet, &n) == 1) {}
        thk_session_start start;
        thk_receiver_started(&receiver, &start);
        thk_receiver_counts counts;
        thk_receiver_counts_get(&receiver, &counts);
    }
    return 0;
}
