/*
 * A closed-loop client in C99 for `neurogrs serve`, written from docs/protocol.md alone:
 * libzmq for the sockets, msgpack-c for the bodies.
 *
 *   1. SUB on the prediction endpoint: pred.<S>, error.<S>, end.<S> and hello; wait for the
 *      service's hello (it carries n_inputs; from then on nothing is missed).
 *   2. XPUB on the frame endpoint: wait for the service's subscription, then publish one
 *      frame per period (float32 data; every K-th frame NaN with -b K, as a glitching rig).
 *   3. Between frames, act on each prediction (label 1 in time -> "stimulate"; late ones
 *      are ignored) and count errors; after the last frame send end.<S> and read until the
 *      service forwards it.
 *   4. Print a JSON summary: answered + skipped + reported must equal sent (exit 0), else
 *      exit 1. Exit 2 on a usage or transport error.
 *
 * Build: make (pkg-config libzmq and msgpack-c / msgpack). Run:
 *   ./closed_loop -f tcp://127.0.0.1:5555 -p tcp://127.0.0.1:5556 -s rig1 -n 300 -r 100
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define PROTOCOL_VERSION 1
#define MAX_SESSION 64
#define MAX_TOPIC (MAX_SESSION + 8)
#define MAX_BODY (1 << 20)

typedef struct {
    const char *frames, *predictions, *session;
    long count, bad_every;
    double rate_hz, timeout_s;
} options_t;

typedef struct {
    long sent, answered, skipped, reported, late, stimulated;
    int ended;
    double *latency_ms; /* one per prediction, for the percentiles */
} ledger_t;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double monotonic_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    fprintf(stderr, "closed_loop: %s (%s)\n", what, zmq_strerror(zmq_errno()));
    exit(2);
}

/* ------------------------------------------------------------------ msgpack helpers */
static void pack_str(msgpack_packer *pk, const char *s) {
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* The value of `key` in a msgpack map, or NULL. */
static const msgpack_object *map_get(const msgpack_object *map, const char *key) {
    size_t n = strlen(key);
    if (map->type != MSGPACK_OBJECT_MAP) return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
            memcmp(k->via.str.ptr, key, n) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

static int64_t get_int(const msgpack_object *map, const char *key, int64_t missing) {
    const msgpack_object *v = map_get(map, key);
    if (v == NULL) return missing;
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) return (int64_t)v->via.u64;
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) return v->via.i64;
    return missing;
}

static int get_bool(const msgpack_object *map, const char *key) {
    const msgpack_object *v = map_get(map, key);
    return v != NULL && v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
}

/* ------------------------------------------------------------------ sockets */
/* Receive a two-part message (topic, body); 0 on success, -1 if none or malformed. */
static int recv_two(void *sock, char *topic, size_t topic_cap, char *body, size_t *body_len) {
    int n = zmq_recv(sock, topic, topic_cap - 1, 0);
    if (n < 0) return -1;
    topic[n < (int)topic_cap - 1 ? n : (int)topic_cap - 1] = '\0';
    int more = 0;
    size_t more_size = sizeof more;
    zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &more_size);
    if (!more) return -1;
    n = zmq_recv(sock, body, MAX_BODY, 0);
    zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &more_size);
    while (more) { /* a third part: not protocol v1; drain it */
        char scratch[64];
        zmq_recv(sock, scratch, sizeof scratch, 0);
        zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &more_size);
        n = -1;
    }
    if (n < 0 || n > MAX_BODY) return -1;
    *body_len = (size_t)n;
    return 0;
}

static int wait_readable(void *sock, double timeout_s) {
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
    long ms = timeout_s <= 0 ? 0 : (long)(timeout_s * 1000.0 + 0.5);
    return zmq_poll(&item, 1, ms) > 0;
}

/* ------------------------------------------------------------------ the loop */
static void on_message(ledger_t *led, const char *session, const char *topic,
                       const char *body, size_t len, int64_t received_ns) {
    char expect[MAX_TOPIC];
    msgpack_unpacked msg;
    size_t off = 0;
    msgpack_unpacked_init(&msg);
    if (msgpack_unpack_next(&msg, body, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        msg.data.type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy(&msg);
        return; /* undecodable: not ours to count */
    }
    const msgpack_object *m = &msg.data;
    /* subscriptions match prefixes (pred.rig1 also delivers pred.rig10): compare exactly */
    snprintf(expect, sizeof expect, "pred.%s", session);
    if (strcmp(topic, expect) == 0) {
        led->latency_ms[led->answered] = (received_ns - get_int(m, "t_src_ns", received_ns)) / 1e6;
        led->answered++;
        led->skipped += get_int(m, "skipped", 0); /* absent means 0 */
        if (get_bool(m, "late"))
            led->late++; /* describes the past: never acted on */
        else if (get_int(m, "label", -1) == 1)
            led->stimulated++; /* a real rig would trigger its stimulus here */
    }
    snprintf(expect, sizeof expect, "error.%s", session);
    if (strcmp(topic, expect) == 0) led->reported++;
    snprintf(expect, sizeof expect, "end.%s", session);
    if (strcmp(topic, expect) == 0) led->ended = 1;
    msgpack_unpacked_destroy(&msg);
}

/* Read messages for up to `seconds` (until the end-of-stream if `until_end`). */
static void drain(void *sub, ledger_t *led, const char *session, double seconds, int until_end,
                  char *body) {
    char topic[MAX_TOPIC + 8];
    size_t len;
    double end = monotonic_s() + seconds;
    for (;;) {
        double left = end - monotonic_s();
        if (left <= 0 || (until_end && led->ended)) return;
        if (!wait_readable(sub, left)) return;
        if (recv_two(sub, topic, sizeof topic, body, &len) == 0) {
            if (until_end) end = monotonic_s() + seconds; /* timeout = silence, not total */
            on_message(led, session, topic, body, len, now_ns());
        }
    }
}

static size_t encode_frame(msgpack_sbuffer *buf, const char *session, uint64_t seq,
                           const float *x, uint32_t n) {
    msgpack_packer pk;
    msgpack_sbuffer_clear(buf);
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 7);
    pack_str(&pk, "v");        msgpack_pack_uint8(&pk, PROTOCOL_VERSION);
    pack_str(&pk, "session");  pack_str(&pk, session);
    pack_str(&pk, "seq");      msgpack_pack_uint64(&pk, seq);
    pack_str(&pk, "t_src_ns"); msgpack_pack_uint64(&pk, (uint64_t)now_ns());
    pack_str(&pk, "dtype");    pack_str(&pk, "<f4");
    pack_str(&pk, "shape");    msgpack_pack_array(&pk, 1); msgpack_pack_uint32(&pk, n);
    pack_str(&pk, "data");     msgpack_pack_bin(&pk, (size_t)n * 4);
    for (uint32_t i = 0; i < n; i++) { /* little-endian float32, whatever the host order */
        uint32_t bits;
        unsigned char le[4];
        memcpy(&bits, &x[i], 4);
        for (int b = 0; b < 4; b++) le[b] = (unsigned char)(bits >> (8 * b));
        msgpack_pack_bin_body(&pk, le, 4);
    }
    return buf->size;
}

static size_t encode_end(msgpack_sbuffer *buf, const char *session, uint64_t seq, uint64_t frames) {
    msgpack_packer pk;
    msgpack_sbuffer_clear(buf);
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    pack_str(&pk, "v");        msgpack_pack_uint8(&pk, PROTOCOL_VERSION);
    pack_str(&pk, "session");  pack_str(&pk, session);
    pack_str(&pk, "seq");      msgpack_pack_uint64(&pk, seq);
    pack_str(&pk, "t_src_ns"); msgpack_pack_uint64(&pk, (uint64_t)now_ns());
    pack_str(&pk, "frames");   msgpack_pack_uint64(&pk, frames);
    return buf->size;
}

static void send_two(void *sock, const char *topic, const char *body, size_t len) {
    if (zmq_send(sock, topic, strlen(topic), ZMQ_SNDMORE) < 0 || zmq_send(sock, body, len, 0) < 0)
        die("send failed");
}

/* Wait for the hello; returns n_inputs. */
static uint32_t wait_hello(void *sub, double timeout_s, char *body) {
    char topic[MAX_TOPIC + 8];
    size_t len;
    double end = monotonic_s() + timeout_s;
    while (monotonic_s() < end) {
        if (!wait_readable(sub, end - monotonic_s())) break;
        if (recv_two(sub, topic, sizeof topic, body, &len) != 0 || strcmp(topic, "hello") != 0)
            continue;
        msgpack_unpacked msg;
        size_t off = 0;
        int64_t n = -1;
        msgpack_unpacked_init(&msg);
        if (msgpack_unpack_next(&msg, body, len, &off) == MSGPACK_UNPACK_SUCCESS)
            n = get_int(&msg.data, "n_inputs", -1);
        msgpack_unpacked_destroy(&msg);
        if (n > 0 && n <= 262144) return (uint32_t)n;
    }
    fprintf(stderr, "closed_loop: no hello from the service within %g s\n", timeout_s);
    exit(2);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *v, long n, double q) {
    if (n == 0) return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    long i = (long)(q * (double)(n - 1) + 0.5);
    return v[i];
}

static const char USAGE[] =
    "usage: closed_loop [-f FRAMES_ENDPOINT] [-p PREDICTIONS_ENDPOINT] [-s SESSION]\n"
    "                   [-n COUNT] [-r RATE_HZ] [-b BAD_EVERY] [-t TIMEOUT_S]\n"
    "  -f  the service's frame endpoint (default tcp://127.0.0.1:5555)\n"
    "  -p  the service's prediction endpoint (default tcp://127.0.0.1:5556)\n"
    "  -s  session name, the topic (default rig1)\n"
    "  -n  frames to send (default 300)\n"
    "  -r  frames per second (default 10)\n"
    "  -b  make every K-th frame NaN, as a glitching rig would (default 0: never)\n"
    "  -t  seconds to wait for the service: greeting, subscription, the end (default 10)\n";

static void usage(void) { /* bad usage: exit 2 */
    fputs(USAGE, stderr);
    exit(2);
}

static void usage_ok(void) { /* -h */
    fputs(USAGE, stdout);
    exit(0);
}

static options_t parse_options(int argc, char **argv) {
    options_t o = {"tcp://127.0.0.1:5555", "tcp://127.0.0.1:5556", "rig1", 300, 0, 10.0, 10.0};
    int c;
    while ((c = getopt(argc, argv, "f:p:s:n:r:b:t:h")) != -1) {
        switch (c) {
        case 'f': o.frames = optarg; break;
        case 'p': o.predictions = optarg; break;
        case 's': o.session = optarg; break;
        case 'n': o.count = strtol(optarg, NULL, 10); break;
        case 'r': o.rate_hz = strtod(optarg, NULL); break;
        case 'b': o.bad_every = strtol(optarg, NULL, 10); break;
        case 't': o.timeout_s = strtod(optarg, NULL); break;
        case 'h': usage_ok(); break;
        default: usage();
        }
    }
    size_t len = strlen(o.session);
    if (o.count < 1 || o.rate_hz <= 0 || o.bad_every < 0 || o.timeout_s <= 0 || len == 0 ||
        len > MAX_SESSION || strchr(o.session, '.') != NULL)
        usage();
    return o;
}

int main(int argc, char **argv) {
    options_t o = parse_options(argc, argv);
    ledger_t led = {0};
    char topic[MAX_TOPIC];
    char *body = malloc(MAX_BODY + 1);
    led.latency_ms = calloc((size_t)o.count, sizeof *led.latency_ms);
    if (body == NULL || led.latency_ms == NULL) { fprintf(stderr, "closed_loop: out of memory\n"); return 2; }

    void *ctx = zmq_ctx_new();
    int zero = 0, one = 1;
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    zmq_setsockopt(sub, ZMQ_LINGER, &zero, sizeof zero);
    const char *kinds[] = {"pred.", "error.", "end."};
    for (int i = 0; i < 3; i++) {
        snprintf(topic, sizeof topic, "%s%s", kinds[i], o.session);
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, topic, strlen(topic));
    }
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "hello", 5);
    if (zmq_connect(sub, o.predictions) != 0) die("cannot connect to the prediction endpoint");
    uint32_t n = wait_hello(sub, o.timeout_s, body);

    void *pub = zmq_socket(ctx, ZMQ_XPUB);
    zmq_setsockopt(pub, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(pub, ZMQ_XPUB_NODROP, &one, sizeof one); /* wait at the HWM, never drop */
    if (zmq_connect(pub, o.frames) != 0) die("cannot connect to the frame endpoint");
    if (!wait_readable(pub, o.timeout_s)) {
        fprintf(stderr, "closed_loop: the service never subscribed on %s\n", o.frames);
        return 2;
    }
    zmq_recv(pub, body, MAX_BODY, 0); /* the service's subscription: frames now arrive */

    float *x = malloc(n * sizeof *x);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    uint32_t rng = 12345u;
    double period = 1.0 / o.rate_hz, next_send = monotonic_s();
    snprintf(topic, sizeof topic, "frame.%s", o.session);
    for (long seq = 0; seq < o.count; seq++) {
        for (uint32_t i = 0; i < n; i++) { /* xorshift32: deterministic stand-in traces */
            rng ^= rng << 13; rng ^= rng >> 17; rng ^= rng << 5;
            x[i] = (float)(rng % 2000u) / 1000.0f - 1.0f;
        }
        if (o.bad_every && seq % o.bad_every == o.bad_every - 1) x[0] = NAN;
        send_two(pub, topic, buf.data, encode_frame(&buf, o.session, (uint64_t)seq, x, n));
        led.sent++;
        next_send += period;
        drain(sub, &led, o.session, next_send - monotonic_s(), 0, body);
    }
    snprintf(topic, sizeof topic, "end.%s", o.session);
    send_two(pub, topic, buf.data, encode_end(&buf, o.session, (uint64_t)o.count, (uint64_t)o.count));
    drain(sub, &led, o.session, o.timeout_s, 1, body);

    int accounted = led.answered + led.skipped + led.reported == led.sent;
    double p50 = percentile(led.latency_ms, led.answered, 0.50);
    double p99 = percentile(led.latency_ms, led.answered, 0.99);
    printf("{\"client\": \"c\", \"n_inputs\": %u, \"sent\": %ld, \"answered\": %ld, "
           "\"skipped\": %ld, \"reported\": %ld, \"accounted\": %s, \"end_of_stream\": %s, "
           "\"late\": %ld, \"stimulated\": %ld, \"latency_ms_p50\": %.3f, "
           "\"latency_ms_p99\": %.3f}\n",
           n, led.sent, led.answered, led.skipped, led.reported, accounted ? "true" : "false",
           led.ended ? "true" : "false", led.late, led.stimulated,
           led.answered ? p50 : -1.0, led.answered ? p99 : -1.0);

    msgpack_sbuffer_destroy(&buf);
    free(x);
    free(body);
    free(led.latency_ms);
    zmq_close(pub);
    zmq_close(sub);
    zmq_ctx_term(ctx);
    return accounted && led.ended ? 0 : 1;
}
