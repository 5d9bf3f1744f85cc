/* The C receiver of the interop test (tests/test_interop.py): one UDP session from a Python
 * sender on 127.0.0.1, through the core alone (thk_receiver, thk_decoder, thk_relative_motion).
 * The JVM's twin is android-demo/core/src/tools/.../ReceiveTool.kt; both print the same lines:
 *   port <n>
 *   session <id> <header hex> <portrait bytes, -1 without>
 *   frame <sequence> <timestamp> <keyframe> <values>[ <motion value> <motion jacobian>]   (float32 bits, hex)
 *   error <status>                                                                           (a packet that did not decode)
 *   counts received=.. delivered=.. lost=.. forged=.. duplicates=.. handshakes=.. sessions=.. decoded=..
 * usage: udp_receive KEY_HEX [SOURCE_FILE|-] [TIMEOUT_S]
 *   SOURCE_FILE: the avatar's 2K keypoints then 4K Jacobians, float32 little-endian (motion on) */
#define _POSIX_C_SOURCE 200809L
#include "thk_session.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static thk_receiver receiver;
static thk_decoder decoder;
static thk_frame frame;
static thk_header header;
static uint8_t blob[THK_MAX_BLOB_BYTES];

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void print_floats(const float *values, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &values[i], 4);
        printf(i ? ",%08x" : "%08x", bits);
    }
}

/* Wait up to timeout_s for one datagram and hand it to the receiver; its status, or 2 when none came. */
static int handle_next(int sock, double timeout_s) {
    struct pollfd wait = {sock, POLLIN, 0};
    int ms = timeout_s > 0 ? (int)(timeout_s * 1000) + 1 : 0;
    if (poll(&wait, 1, ms) <= 0) return 2;
    static uint8_t data[65536], reply[THK_SESSION_DATAGRAM_BYTES];
    struct sockaddr_in peer;
    socklen_t peer_length = sizeof peer;
    ssize_t n = recvfrom(sock, data, sizeof data, 0, (struct sockaddr *)&peer, &peer_length);
    if (n < 0) return 2;
    size_t reply_length = 0;
    int status = thk_receiver_handle(&receiver, data, (size_t)n, now_s(), reply, sizeof reply, &reply_length);
    if (reply_length) sendto(sock, reply, reply_length, 0, (struct sockaddr *)&peer, peer_length);
    return status;
}

int main(int argc, char **argv) {
    if (argc < 2 || strlen(argv[1]) != 64) {
        fprintf(stderr, "usage: udp_receive KEY_HEX [SOURCE_FILE|-] [TIMEOUT_S]\n");
        return 2;
    }
    uint8_t secret[32];
    for (int i = 0; i < 32; i++) {
        unsigned v;
        sscanf(argv[1] + 2 * i, "%2x", &v);
        secret[i] = (uint8_t)v;
    }
    const char *source_path = argc > 2 && strcmp(argv[2], "-") ? argv[2] : NULL;
    double timeout_s = argc > 3 ? atof(argv[3]) : 20.0;
    if (thk_crypto_init() || thk_receiver_init(&receiver, secret, 32, blob, sizeof blob, 0.06, 16)) return 1;

    int sock = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t address_length = sizeof address;
    if (sock < 0 || bind(sock, (struct sockaddr *)&address, sizeof address) ||
        getsockname(sock, (struct sockaddr *)&address, &address_length)) return 1;
    printf("port %d\n", ntohs(address.sin_port));
    fflush(stdout);

    double deadline = now_s() + timeout_s;
    while (handle_next(sock, 0.05) != THK_STARTED) {
        if (now_s() > deadline) { printf("error no session\n"); return 1; }
    }
    thk_session_start start;
    thk_receiver_started(&receiver, &start);
    printf("session %u ", start.session_id);
    for (size_t i = 0; i < start.header_length; i++) printf("%02x", start.header[i]);
    printf(" %ld\n", start.portrait ? (long)start.portrait_length : -1L);
    if (thk_header_parse(&header, start.header, start.header_length) || header.kind != THK_KIND_LEARNED ||
        thk_decoder_init(&decoder, &header)) { printf("error header\n"); return 1; }

    uint32_t k = header.num_kp;
    static float source[6 * THK_MAX_KP], anchor[6 * THK_MAX_KP], values[6 * THK_MAX_KP + THK_MAX_EXTRA];
    static float value[2 * THK_MAX_KP], jacobian[4 * THK_MAX_KP];
    int motion = 0, anchored = 0;
    float scale = 1;
    double source_area = 0;
    if (source_path) {
        FILE *file = fopen(source_path, "rb");
        motion = file && fread(source, sizeof(float), 6 * k, file) == 6 * k;
        if (file) fclose(file);
        if (!motion || thk_hull_area(source, k, &source_area)) { printf("error source\n"); return 1; }
    }

    double idle_since = now_s();
    for (;;) {
        static uint8_t packet[THK_JITTER_SLOT_BYTES];
        size_t n = 0;
        if (thk_receiver_pop(&receiver, now_s(), packet, sizeof packet, &n) == 1) {
            idle_since = now_s();
            int status = thk_decoder_decode(&decoder, packet, n, &frame);
            if (status) { printf("error %d\n", status); continue; }
            uint32_t jac = header.jacobians ? 4 * k : 0, count = 2 * k + jac + header.extra_dims;
            thk_frame_dequantize_learned(&header, &frame, values, header.jacobians ? values + 2 * k : NULL,
                                         values + 2 * k + jac);
            printf("frame %llu %llu %d ", (unsigned long long)frame.sequence, (unsigned long long)frame.timestamp_ms,
                   frame.keyframe);
            print_floats(values, count);
            if (motion) {
                /* the anchor is the first frame (docs/motion.md section 3); identity without Jacobians */
                const float *driving_jac = header.jacobians ? values + 2 * k : NULL;
                if (!anchored) {
                    memcpy(anchor, values, 2 * k * sizeof(float));
                    for (uint32_t i = 0; i < k; i++) {
                        float *j = anchor + 2 * k + 4 * i;
                        if (driving_jac) memcpy(j, driving_jac + 4 * i, 4 * sizeof(float));
                        else { j[0] = 1; j[1] = 0; j[2] = 0; j[3] = 1; }
                    }
                    double anchor_area = 0;
                    if (thk_hull_area(anchor, k, &anchor_area) || thk_movement_scale(source_area, anchor_area, &scale)) {
                        printf(" motion-error\n");
                        continue;
                    }
                    anchored = 1;
                }
                status = thk_relative_motion(k, values, driving_jac, anchor, anchor + 2 * k, source, source + 2 * k,
                                             scale, 1, value, jacobian);
                if (status) printf(" motion-error %d", status);
                else { printf(" "); print_floats(value, 2 * k); printf(" "); print_floats(jacobian, 4 * k); }
            }
            printf("\n");
            continue;
        }
        int closed = thk_receiver_peer_closed(&receiver);
        if (now_s() - idle_since > (closed ? 0.2 : timeout_s)) break;  /* after BYE: drain the gap wait */
        double gap;
        double wait = thk_receiver_gap_deadline(&receiver, &gap) == 1 ? gap - now_s() : 0.05;
        handle_next(sock, wait < 0.05 ? (wait > 0 ? wait : 0) : 0.05);
    }
    thk_receiver_counts c;
    thk_receiver_counts_get(&receiver, &c);
    printf("counts received=%llu delivered=%llu lost=%llu forged=%llu duplicates=%llu handshakes=%llu sessions=%llu "
           "decoded=%llu\n", (unsigned long long)c.received, (unsigned long long)c.delivered,
           (unsigned long long)c.lost, (unsigned long long)c.forged, (unsigned long long)c.duplicates,
           (unsigned long long)c.handshakes, (unsigned long long)c.sessions, (unsigned long long)decoder.stats.decoded);
    return 0;
}
