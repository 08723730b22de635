/* test_stream.c: the mesh's TCP path (src/mesh/stream.c) over real loopback
 * TCP connections and in memory: XX and IK handshakes with certificates,
 * refused certificates and keys, a refused initiator that learns nothing of
 * the responder, framing split at every byte, a corrupted frame, sizes,
 * random / mutated byte streams into a responder, and handshakes while
 * another thread grows the revocation list (a TSan build shows a race). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mesh/stream.h"

#define WALL 1800000000LL

typedef struct {
    mesh_identity_key key;
    mesh_identity_cert cert;
    struct mesh_stream *st;
    int fd;
    int msgs;
    size_t last_len;
    uint8_t last[MESH_STREAM_MAX_MSG];
} end;

static mesh_identity_key fleet;
static int64_t wall = WALL;

static int64_t wall_fn(void *ctx)
{
    return *(int64_t *)ctx;
}

static void on_msg(void *ctx, const uint8_t *data, size_t len)
{
    end *e = ctx;
    e->msgs++;
    e->last_len = len;
    memcpy(e->last, data, len);
}

static void make_end(end *e, const char *id, int64_t nb, int64_t na)
{
    memset(e, 0, sizeof *e);
    e->key.kind = MESH_KEY_NODE;
    crypto_sign_keypair(e->key.pk, e->key.sk);
    e->cert = (mesh_identity_cert){.roles = MESH_ROLE_ALL, .not_before = nb, .not_after = na};
    memcpy(e->cert.node_pk, e->key.pk, 32);
    snprintf(e->cert.node_id, sizeof e->cert.node_id, "%s", id);
    char err[256];
    assert_int_equal(mesh_identity_cert_sign(&e->cert, &fleet, err, sizeof err), 0);
    e->fd = -1;
}

static void start(end *e, bool initiator, const uint8_t *peer_pk, const mesh_identity_revlist *rl)
{
    mesh_session_config c = {.node = &e->key, .cert = &e->cert, .fleet_pk = fleet.pk, .revoked = rl,
                             .wall_clock = wall_fn, .clock_ctx = &wall};
    char err[256];
    assert_int_equal(mesh_stream_new(&c, initiator, peer_pk, &e->st, err, sizeof err), 0);
    mesh_stream_on_message(e->st, on_msg, e);
}

static void stop(end *e)
{
    mesh_stream_free(e->st);
    e->st = NULL;
    if (e->fd >= 0)
        close(e->fd);
    e->fd = -1;
}

/* A real TCP connection over loopback: a connects, b accepts; both non-blocking. */
static void tcp_pair(end *a, end *b)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
    a->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(a->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    b->fd = accept(l, NULL, NULL);
    assert_true(b->fd >= 0);
    close(l);
    fcntl(a->fd, F_SETFL, O_NONBLOCK);
    fcntl(b->fd, F_SETFL, O_NONBLOCK);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes what one side has pending, reads what arrived; false on EOF. */
static bool io(end *e)
{
    const uint8_t *p;
    size_t n = mesh_stream_pending(e->st, &p);
    if (n) {
        ssize_t w = send(e->fd, p, n, MSG_NOSIGNAL);
        if (w > 0)
            mesh_stream_consume(e->st, (size_t)w);
    }
    uint8_t buf[8192];
    ssize_t r = recv(e->fd, buf, sizeof buf, 0);
    if (r > 0)
        mesh_stream_feed(e->st, buf, (size_t)r);
    return r != 0;
}

/* Moves bytes both ways until done(a, b) or 5 s; a failed side closes its socket. */
static void pump(end *a, end *b, bool (*done)(end *, end *))
{
    double deadline = now_s() + 5;
    while (!done(a, b) && now_s() < deadline) {
        end *s[2] = {a, b};
        struct pollfd pf[2];
        int np = 0;
        for (int i = 0; i < 2; i++) {
            if (s[i]->fd < 0)
                continue;
            if (!io(s[i]) || mesh_stream_feed(s[i]->st, NULL, 0)) {
                close(s[i]->fd); /* a failed stream is closed, as the caller must */
                s[i]->fd = -1;
                continue;
            }
            const uint8_t *p;
            pf[np++] = (struct pollfd){.fd = s[i]->fd,
                                       .events = POLLIN | (mesh_stream_pending(s[i]->st, &p) ? POLLOUT : 0)};
        }
        if (np == 0)
            break;
        poll(pf, (nfds_t)np, 20);
    }
}

static bool both_up(end *a, end *b)
{
    return mesh_stream_established(a->st) && mesh_stream_established(b->st);
}

static bool one_closed(end *a, end *b)
{
    return a->fd < 0 || b->fd < 0;
}

static bool a_has3_b_has1(end *a, end *b)
{
    return b->msgs >= 3 && a->msgs >= 1;
}

static void test_xx_and_ik_over_tcp(void **state)
{
    (void)state;
    for (int ik = 0; ik < 2; ik++) {
        end a, b;
        make_end(&a, "cell-a", WALL - 60, WALL + 3600);
        make_end(&b, "cell-b", WALL - 60, WALL + 3600);
        start(&a, true, ik ? b.key.pk : NULL, NULL);
        start(&b, false, NULL, NULL);
        const uint8_t *p;
        assert_true(mesh_stream_pending(a.st, &p) > 3);
        assert_int_equal(p[2], ik ? 2 : 1); /* the pattern byte */
        assert_int_equal(mesh_stream_send(a.st, (const uint8_t *)"x", 1), -ENOTCONN);
        tcp_pair(&a, &b);
        pump(&a, &b, both_up);
        assert_true(both_up(&a, &b));
        assert_string_equal(mesh_stream_peer(a.st)->node_id, "cell-b");
        assert_string_equal(mesh_stream_peer(b.st)->node_id, "cell-a");
        static uint8_t big[60000];
        randombytes_buf(big, sizeof big);
        assert_int_equal(mesh_stream_send(a.st, (const uint8_t *)"one", 3), 0);
        assert_int_equal(mesh_stream_send(a.st, NULL, 0), 0);
        assert_int_equal(mesh_stream_send(a.st, big, sizeof big), 0);
        assert_int_equal(mesh_stream_send(b.st, (const uint8_t *)"back", 4), 0);
        pump(&a, &b, a_has3_b_has1);
        assert_int_equal(b.msgs, 3);
        assert_int_equal(b.last_len, sizeof big);
        assert_memory_equal(b.last, big, sizeof big);
        assert_int_equal(a.msgs, 1);
        assert_memory_equal(a.last, "back", 4);
        stop(&a);
        stop(&b);
    }
}

/* The responder's certificate is refused by the initiator (and the other way). */
static void test_refused_over_tcp(void **state)
{
    (void)state;
    /* expired responder certificate: the responder has the valid initiator's
     * certificate (message 3) and sends its own, which the initiator refuses
     * before it sends anything */
    end a, b;
    make_end(&a, "cell-a", WALL - 60, WALL + 3600);
    make_end(&b, "cell-b", WALL - 7200, WALL - 3600);
    start(&a, true, NULL, NULL);
    start(&b, false, NULL, NULL);
    tcp_pair(&a, &b);
    pump(&a, &b, one_closed);
    assert_false(mesh_stream_established(a.st));
    assert_null(mesh_stream_peer(a.st));
    assert_non_null(strstr(mesh_stream_error(a.st), "expired"));
    assert_int_equal(mesh_stream_send(a.st, (const uint8_t *)"x", 1), -EKEYEXPIRED);
    assert_int_equal(b.msgs, 0);
    stop(&a);
    stop(&b);
    /* the initiator revoked by key on the responder's list */
    make_end(&a, "cell-a", WALL - 60, WALL + 3600);
    make_end(&b, "cell-b", WALL - 60, WALL + 3600);
    mesh_identity_revlist rl;
    assert_int_equal(mesh_identity_revlist_init(&rl, fleet.pk, 0), 0);
    mesh_identity_revocation r = {.kind = MESH_REVOKE_KEY, .reason = MESH_REASON_RETIRED, .time = WALL - 1,
                                  .until = a.cert.not_after};
    memcpy(r.node_pk, a.key.pk, 32);
    char err[256];
    assert_int_equal(mesh_identity_revocation_sign(&r, &fleet, err, sizeof err), 0);
    assert_int_equal(mesh_identity_revlist_add(&rl, &r, WALL, err, sizeof err), 1);
    start(&a, true, NULL, NULL);
    start(&b, false, NULL, &rl);
    tcp_pair(&a, &b);
    pump(&a, &b, one_closed);
    assert_false(mesh_stream_established(b.st));
    assert_non_null(strstr(mesh_stream_error(b.st), "revoked by node key"));
    assert_int_equal(b.msgs, 0);
    stop(&a);
    stop(&b);
    mesh_identity_revlist_free(&rl);
    /* IK to a key the responder no longer has */
    make_end(&a, "cell-a", WALL - 60, WALL + 3600);
    make_end(&b, "cell-b", WALL - 60, WALL + 3600);
    end old;
    make_end(&old, "cell-b", WALL - 60, WALL + 3600);
    start(&a, true, old.key.pk, NULL);
    start(&b, false, NULL, NULL);
    tcp_pair(&a, &b);
    pump(&a, &b, one_closed);
    assert_true(b.fd < 0);
    assert_non_null(strstr(mesh_stream_error(b.st), "another key"));
    assert_false(mesh_stream_established(a.st));
    stop(&a);
    stop(&b);
}

/* In memory, every byte fed on its own: frames cut at every position. */
static void move_bytes(end *from, end *to, size_t chunk)
{
    const uint8_t *p;
    size_t n;
    while ((n = mesh_stream_pending(from->st, &p)) > 0) {
        size_t k = n < chunk ? n : chunk;
        uint8_t tmp[64];
        memcpy(tmp, p, k);
        mesh_stream_consume(from->st, k);
        mesh_stream_feed(to->st, tmp, k);
    }
}

static void test_byte_by_byte_and_corruption(void **state)
{
    (void)state;
    end a, b;
    make_end(&a, "cell-a", WALL - 60, WALL + 3600);
    make_end(&b, "cell-b", WALL - 60, WALL + 3600);
    start(&a, true, NULL, NULL);
    start(&b, false, NULL, NULL);
    for (int i = 0; i < 3; i++) {
        move_bytes(&a, &b, 1);
        move_bytes(&b, &a, 1);
    }
    assert_true(both_up(&a, &b));
    assert_int_equal(mesh_stream_send(a.st, (const uint8_t *)"hello", 5), 0);
    move_bytes(&a, &b, 1);
    assert_int_equal(b.msgs, 1);
    assert_memory_equal(b.last, "hello", 5);
    /* sizes */
    static uint8_t big[MESH_STREAM_MAX_MSG + 1];
    assert_int_equal(mesh_stream_send(a.st, big, MESH_STREAM_MAX_MSG + 1), -EMSGSIZE);
    assert_int_equal(mesh_stream_send(a.st, big, MESH_STREAM_MAX_MSG), 0);
    move_bytes(&a, &b, 64);
    assert_int_equal(b.msgs, 2);
    assert_int_equal(b.last_len, MESH_STREAM_MAX_MSG);
    /* a corrupted transport frame: refused, the stream stays failed */
    assert_int_equal(mesh_stream_send(a.st, (const uint8_t *)"again", 5), 0);
    const uint8_t *p;
    size_t n = mesh_stream_pending(a.st, &p);
    uint8_t copy[64];
    memcpy(copy, p, n);
    mesh_stream_consume(a.st, n);
    copy[n - 3] ^= 0x20;
    assert_int_equal(mesh_stream_feed(b.st, copy, n), -EBADMSG);
    assert_int_equal(b.msgs, 2);
    assert_false(mesh_stream_established(b.st));
    assert_int_equal(mesh_stream_send(b.st, (const uint8_t *)"x", 1), -EBADMSG);
    assert_non_null(strstr(mesh_stream_error(b.st), "authentication failed"));
    stop(&a);
    stop(&b);
    /* an empty frame and a first frame without a pattern byte */
    start(&b, false, NULL, NULL);
    assert_int_equal(mesh_stream_feed(b.st, (const uint8_t *)"\0\0", 2), -EBADMSG);
    stop(&b);
    start(&b, false, NULL, NULL);
    assert_int_equal(mesh_stream_feed(b.st, (const uint8_t *)"\0\1\7", 3), -EBADMSG);
    assert_non_null(strstr(mesh_stream_error(b.st), "pattern byte"));
    stop(&b);
    char err[256];
    assert_int_equal(mesh_stream_new(NULL, true, NULL, &b.st, err, sizeof err), -EINVAL);
}

/* Random and mutated byte streams into a responder: never established, no message. */
static void test_fuzz(void **state)
{
    (void)state;
    end a, b;
    make_end(&a, "cell-a", WALL - 60, WALL + 3600);
    make_end(&b, "cell-b", WALL - 60, WALL + 3600);
    uint8_t first[1024];
    size_t flen;
    for (int ik = 0; ik < 2; ik++) {
        start(&a, true, ik ? b.key.pk : NULL, NULL);
        const uint8_t *p;
        flen = mesh_stream_pending(a.st, &p);
        memcpy(first, p, flen);
        mesh_stream_free(a.st);
        for (int i = 0; i < 1500; i++) {
            start(&b, false, NULL, NULL);
            uint8_t buf[1024];
            size_t len;
            if (i % 2) {
                len = randombytes_uniform(sizeof buf);
                randombytes_buf(buf, len);
            } else {
                memcpy(buf, first, flen);
                len = flen;
                for (int m = 1 + (int)randombytes_uniform(3); m > 0; m--)
                    buf[2 + randombytes_uniform((uint32_t)(len - 2))] ^= (uint8_t)(1 + randombytes_uniform(255));
                if (!memcmp(buf, first, len)) /* two flips of one byte cancelled: still the genuine frame */
                    buf[2] ^= 0x80;
            }
            mesh_stream_feed(b.st, buf, len);
            assert_false(mesh_stream_established(b.st)); /* XX waits for message 3 */
            assert_int_equal(b.msgs, 0);
            mesh_stream_free(b.st);
        }
    }
    b.st = NULL;
}

/* In memory, recording every byte the responder b writes to a. */
static size_t move_recorded(end *from, end *to, uint8_t *rec, size_t cap, size_t used)
{
    const uint8_t *p;
    size_t n;
    while ((n = mesh_stream_pending(from->st, &p)) > 0) {
        assert_true(used + n <= cap);
        memcpy(rec + used, p, n);
        used += n;
        uint8_t tmp[4096];
        size_t k = n < sizeof tmp ? n : sizeof tmp;
        memcpy(tmp, p, k);
        mesh_stream_consume(from->st, k);
        mesh_stream_feed(to->st, tmp, k);
    }
    return used;
}

static bool has(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return true;
    return false;
}

/* A cell whose certificate is expired, revoked or for another key completes
 * every Noise message it can and still gets not one byte of the responder's
 * certificate: message 2 carries nothing (the initiator's stream checks that
 * it decrypts to nothing), the responder's certificate never comes. */
static void test_refused_learns_nothing(void **state)
{
    (void)state;
    for (int kind = 0; kind < 4; kind++) { /* 0 valid (the control), 1 expired, 2 revoked, 3 another key */
        end a, b, other;
        make_end(&a, "cell-a", kind == 1 ? WALL - 7200 : WALL - 60, kind == 1 ? WALL - 3600 : WALL + 3600);
        make_end(&b, "cell-b", WALL - 60, WALL + 3600);
        if (kind == 3) { /* a's certificate binds another node key */
            make_end(&other, "cell-a", WALL - 60, WALL + 3600);
            a.cert = other.cert;
        }
        mesh_identity_revlist rl;
        assert_int_equal(mesh_identity_revlist_init(&rl, fleet.pk, 0), 0);
        if (kind == 2) {
            mesh_identity_revocation r = {.kind = MESH_REVOKE_SERIAL, .reason = MESH_REASON_KEY_COMPROMISE,
                                          .serial = a.cert.serial, .time = WALL - 1, .until = a.cert.not_after};
            char err[256];
            assert_int_equal(mesh_identity_revocation_sign(&r, &fleet, err, sizeof err), 0);
            assert_int_equal(mesh_identity_revlist_add(&rl, &r, WALL, err, sizeof err), 1);
        }
        start(&a, true, NULL, NULL);
        start(&b, false, NULL, &rl);
        static uint8_t rec[1 << 16];
        size_t used = 0;
        for (int i = 0; i < 4; i++) {
            move_bytes(&a, &b, 64);
            used = move_recorded(&b, &a, rec, sizeof rec, used);
        }
        if (kind == 0) {
            assert_true(both_up(&a, &b));
            assert_string_equal(mesh_stream_peer(a.st)->node_id, "cell-b");
            assert_true(used > 2 + 96);
        } else {
            assert_false(mesh_stream_established(a.st));
            assert_false(mesh_stream_established(b.st));
            assert_null(mesh_stream_peer(a.st));
            assert_true(mesh_stream_feed(b.st, NULL, 0) < 0);
            assert_int_equal(used, 2 + 32 + 48 + 16); /* one frame: message 2 (e, s, an empty payload) */
            assert_false(has(rec, used, "cell-b", 6));
            assert_false(has(rec, used, b.key.pk, 32));
            assert_false(has(rec, used, b.cert.sig, sizeof b.cert.sig));
            assert_int_equal(mesh_stream_feed(a.st, NULL, 0), 0); /* a only waits: it saw nothing wrong */
        }
        mesh_identity_revlist_free(&rl);
        stop(&a);
        stop(&b);
    }
}

/* The cell's way: a revocation list grows under a lock on one thread while
 * streams are made (under the lock) and handshake (without it) on another.
 * The stream copies the list when it is made, so a TSan build sees no race
 * (when the stream kept the caller's pointer, TSan reported the handshake's
 * read against the merge's realloc); a revocation made before a stream is
 * judged by it. */
typedef struct {
    pthread_mutex_t mu;
    mesh_identity_revlist rl;
    mesh_identity_revocation recs[48];
    int added;
} shared_list;

static void *grow_list(void *arg)
{
    shared_list *sh = arg;
    for (int i = 0; i < 48; i++) {
        char err[256];
        pthread_mutex_lock(&sh->mu);
        int rc = mesh_identity_revlist_add(&sh->rl, &sh->recs[i], WALL, err, sizeof err);
        sh->added += rc == 1;
        pthread_mutex_unlock(&sh->mu);
        struct timespec ts = {0, 200000}; /* spread the merges over the handshakes */
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void test_revlist_grows_during_handshakes(void **state)
{
    (void)state;
    static shared_list sh;
    pthread_mutex_init(&sh.mu, NULL);
    assert_int_equal(mesh_identity_revlist_init(&sh.rl, fleet.pk, 0), 0);
    for (int i = 0; i < 48; i++) {
        mesh_identity_revocation *r = &sh.recs[i];
        *r = (mesh_identity_revocation){.kind = MESH_REVOKE_KEY, .reason = MESH_REASON_RETIRED, .time = WALL - 1,
                                        .until = WALL + 3600};
        randombytes_buf(r->node_pk, 32);
        char err[256];
        assert_int_equal(mesh_identity_revocation_sign(r, &fleet, err, sizeof err), 0);
    }
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, grow_list, &sh), 0);
    int ok = 0;
    for (int i = 0; i < 60; i++) {
        end a, b;
        make_end(&a, "cell-a", WALL - 60, WALL + 3600);
        make_end(&b, "cell-b", WALL - 60, WALL + 3600);
        pthread_mutex_lock(&sh.mu);
        start(&a, true, NULL, &sh.rl);
        start(&b, false, NULL, &sh.rl);
        pthread_mutex_unlock(&sh.mu);
        for (int k = 0; k < 3; k++) {
            move_bytes(&a, &b, 64);
            move_bytes(&b, &a, 64);
        }
        ok += both_up(&a, &b);
        stop(&a);
        stop(&b);
    }
    pthread_join(th, NULL);
    assert_int_equal(ok, 60);
    assert_int_equal(sh.added, 48);
    /* a key revoked in the shared list is refused by a stream made after it */
    end a, b;
    make_end(&a, "cell-a", WALL - 60, WALL + 3600);
    make_end(&b, "cell-b", WALL - 60, WALL + 3600);
    mesh_identity_revocation r = {.kind = MESH_REVOKE_KEY, .reason = MESH_REASON_RETIRED, .time = WALL - 1,
                                  .until = WALL + 3600};
    memcpy(r.node_pk, a.key.pk, 32);
    char err[256];
    assert_int_equal(mesh_identity_revocation_sign(&r, &fleet, err, sizeof err), 0);
    assert_int_equal(mesh_identity_revlist_add(&sh.rl, &r, WALL, err, sizeof err), 1);
    start(&a, true, NULL, NULL);
    start(&b, false, NULL, &sh.rl);
    mesh_identity_revlist_free(&sh.rl); /* the stream has its own copy */
    for (int k = 0; k < 3; k++) {
        move_bytes(&a, &b, 64);
        move_bytes(&b, &a, 64);
    }
    assert_false(mesh_stream_established(b.st));
    assert_non_null(strstr(mesh_stream_error(b.st), "revoked by node key"));
    stop(&a);
    stop(&b);
    pthread_mutex_destroy(&sh.mu);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    fleet.kind = MESH_KEY_FLEET;
    crypto_sign_keypair(fleet.pk, fleet.sk);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xx_and_ik_over_tcp),
        cmocka_unit_test(test_refused_over_tcp),
        cmocka_unit_test(test_byte_by_byte_and_corruption),
        cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_refused_learns_nothing),
        cmocka_unit_test(test_revlist_grows_during_handshakes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
