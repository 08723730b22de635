/* test_cell_sync.c: full-state sync over the mesh's TCP path (cell_sync.c)
 * with real cells in one process on loopback: a join's and the periodic
 * push-pull's STATE go over TCP (the status counters), a simulated member
 * that brings 300 entries (far more than one UDP packet) over its own sync
 * connection is passed on whole to a cell that joins later, a cell whose TCP
 * port is taken (no listener) is still synced by UDP (the fallback
 * counters) and a cell without TCP either that joins through it converges
 * by UDP alone, and a sync
 * request with a forged sender, or with a revocation list that does not
 * verify (revsync), is refused. Runs in every tree. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cellfix.h"

#include "mesh/identity.h"
#include "mesh/mesh.h"
#include "mesh/stream.h"

#define DEADLINE_MS CELLFIX_DEADLINE_MS
#define SIM_ENTRIES 300
/* A simulated member fails its probes: a cell that probed it holds it as
 * suspect, and a suspect it does not know is not adopted by a cell that
 * joins later (memberlist's rule). Slow probing keeps that to a few. */
#define SIM_MIN (SIM_ENTRIES - 10)

/* Members the cell knows in any state, itself included. */
static json_int_t known(mesh_cell *m)
{
    json_t *j = cellfix_view(mesh_cell_status_json(m)), *ms = json_object_get(j, "members");
    json_int_t n = json_integer_value(json_object_get(ms, "alive")) + json_integer_value(json_object_get(ms, "suspect")) +
                   json_integer_value(json_object_get(ms, "dead")) + json_integer_value(json_object_get(ms, "left"));
    json_decref(j);
    return n;
}

typedef struct {
    mesh_cell *m;
    json_int_t at_least;
} knowing;

static bool knows(void *arg)
{
    knowing *k = arg;
    return known(k->m) >= k->at_least;
}

static bool wait_known(mesh_cell *m, json_int_t at_least)
{
    knowing k = {m, at_least};
    if (cellfix_wait(knows, &k))
        return true;
    char *st = mesh_cell_status_json(m);
    print_message("the cell knows %lld members, not %lld: %s\n", (long long)known(m), (long long)at_least, st);
    free(st);
    return false;
}

static void config(core_config *c, const char *state, const char *listen, const char *seed, int pushpull_ms)
{
    char text[1024];
    snprintf(text, sizeof text,
             "[mesh]\nenabled = yes\nlisten = %s\nprobe_interval_ms = 5000\nprobe_timeout_ms = 1000\n"
             "gossip_interval_ms = 50\nsuspicion_mult = 2\npushpull_interval_ms = %d\n%s%s%s",
             listen, pushpull_ms, seed ? "seeds = " : "", seed ? seed : "", seed ? "\n" : "");
    cellfix_config_text(c, state, text);
}

static mesh_cell *start(const char *state, const char *listen, const char *seed, int pushpull_ms, core_config *c)
{
    char err[1024];
    mesh_cell *m = NULL;
    mesh_cell_opts o = {.state_dir = state};
    config(c, state, listen, seed, pushpull_ms);
    if (mesh_cell_new(&o, &m, err, sizeof err) || mesh_cell_configure(m, c, err, sizeof err))
        fail_msg("cell %s: %s", state, err);
    return m;
}

static void listen_addr(mesh_cell *m, char *out, size_t n)
{
    json_t *j = cellfix_view(mesh_cell_status_json(m));
    snprintf(out, n, "%s", json_string_value(json_object_get(j, "listen")));
    json_decref(j);
    assert_non_null(strstr(out, "127.0.0.1:"));
}

/* A TCP socket bound (not listening) on a port whose UDP twin is free: the
 * cell started there cannot serve TCP and its peers are refused. */
static int take_tcp_port(int *port)
{
    for (int tries = 0; tries < 50; tries++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof a;
        int t = socket(AF_INET, SOCK_STREAM, 0), u = socket(AF_INET, SOCK_DGRAM, 0);
        assert_true(t >= 0 && u >= 0);
        assert_int_equal(bind(t, (struct sockaddr *)&a, sizeof a), 0);
        assert_int_equal(getsockname(t, (struct sockaddr *)&a, &l), 0);
        int ok = bind(u, (struct sockaddr *)&a, sizeof a) == 0;
        close(u);
        if (ok) {
            *port = ntohs(a.sin_port);
            return t;
        }
        close(t);
    }
    fail_msg("no free port pair");
    return -1;
}

/* ---- a simulated member speaking the sync protocol by hand ------------------------ */

typedef struct sim {
    int fd;
    struct mesh_stream *st;
    uint8_t *msg;
    size_t len;
} sim;

static void sim_msg(void *ctx, const uint8_t *d, size_t n)
{
    sim *s = ctx;
    if (s->msg)
        return;
    s->msg = malloc(n + 1);
    memcpy(s->msg, d, n);
    s->len = n;
}

static bool sim_pump(sim *s, bool (*done)(const sim *))
{
    uint8_t buf[16384];
    for (int t = 0; t < DEADLINE_MS / 10; t++) {
        const uint8_t *p;
        size_t n;
        while ((n = mesh_stream_pending(s->st, &p)) > 0) {
            ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL);
            if (w <= 0)
                return false;
            mesh_stream_consume(s->st, (size_t)w);
        }
        if (done(s))
            return true;
        struct pollfd pf = {.fd = s->fd, .events = POLLIN};
        if (poll(&pf, 1, 10) <= 0)
            continue;
        ssize_t r = recv(s->fd, buf, sizeof buf, 0);
        if (r <= 0 || mesh_stream_feed(s->st, buf, (size_t)r) < 0)
            return false;
    }
    return false;
}

static bool sim_up(const sim *s)
{
    return mesh_stream_established(s->st);
}

static bool sim_answered(const sim *s)
{
    return s->msg != NULL;
}

static size_t put_str(uint8_t *p, const char *s)
{
    size_t n = strlen(s);
    p[0] = (uint8_t)n;
    memcpy(p + 1, s, n);
    return n + 1;
}

static size_t put_var(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    do {
        p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* A swim packet from `from` carrying one STATE message with entries
 * sim-first..sim-(first+count-1) alive at unused loopback addresses. */
static size_t state_packet(uint8_t *out, const char *from, int first, int count)
{
    uint8_t body[1400];
    size_t b = 0, o = 0;
    body[b++] = 0; /* flags: no reply */
    b += put_var(body + b, (uint64_t)count);
    for (int i = first; i < first + count; i++) {
        char id[32], addr[32];
        snprintf(id, sizeof id, "sim-%03d", i);
        snprintf(addr, sizeof addr, "127.0.0.2:%d", 20000 + i);
        body[b++] = 0; /* alive */
        b += put_var(body + b, 1);
        b += put_str(body + b, id);
        b += put_str(body + b, addr);
        body[b++] = 0; /* no meta */
    }
    out[o++] = 0xA7;
    out[o++] = 0x01;
    o += put_str(out + o, from);
    o += put_str(out + o, "127.0.0.2:19999");
    out[o++] = 8; /* STATE */
    o += put_var(out + o, b);
    memcpy(out + o, body, b);
    return o + b;
}

/* Connects to the cell at addr as `dir`'s member, sends one sync request
 * whose packets name `sender`; the answer's status byte, -1 on failure. */
static bool sim_bad_revs; /* -- revsync: the next request's revocation list does not verify */

static int sim_sync(const char *dir, const char *addr, const char *sender)
{
    char err[512];
    mesh_identity_key nk;
    mesh_identity_token tok;
    if (mesh_identity_node_key(dir, &nk, NULL, err, sizeof err) ||
        mesh_identity_member_load(dir, &tok, err, sizeof err))
        fail_msg("sim: %s", err);
    mesh_session_config sc = {.node = &nk, .cert = &tok.cert, .fleet_pk = tok.cert.fleet_pk};
    sim s = {.fd = socket(AF_INET, SOCK_STREAM, 0)};
    assert_true(s.fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    const char *colon = strrchr(addr, ':');
    assert_non_null(colon);
    a.sin_port = htons((uint16_t)atoi(colon + 1));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(s.fd, (struct sockaddr *)&a, sizeof a), 0);
    if (mesh_stream_new(&sc, true, NULL, &s.st, err, sizeof err))
        fail_msg("sim stream: %s", err);
    mesh_stream_on_message(s.st, sim_msg, &s);
    int status = -1;
    if (sim_pump(&s, sim_up)) {
        static uint8_t req[MESH_STREAM_MAX_MSG];
        size_t n = 0;
        req[n++] = 2; /* a sync request */
        req[n++] = 0; /* -- revsync: its revocation section, an empty list (or 4 bytes that do not verify) */
        req[n++] = sim_bad_revs ? 4 : 0;
        if (sim_bad_revs) {
            memcpy(req + n, "junk", 4);
            n += 4;
        }
        for (int i = 0; i < SIM_ENTRIES; i += 30) {
            uint8_t pk[1400];
            size_t l = state_packet(pk, sender, i, 30);
            req[n++] = (uint8_t)(l >> 8);
            req[n++] = (uint8_t)l;
            memcpy(req + n, pk, l);
            n += l;
        }
        assert_int_equal(mesh_stream_send(s.st, req, n), 0);
        if (sim_pump(&s, sim_answered) && s.len >= 1)
            status = s.msg[0];
    }
    mesh_stream_free(s.st);
    free(s.msg);
    close(s.fd);
    mesh_identity_key_wipe(&nk);
    return status;
}

/* ---- the test ------------------------------------------------------------------------------- */

static void sync_paths(void **state)
{
    (void)state;
    char fleet[] = "/tmp/ippoc-sync-f-XXXXXX", da[] = "/tmp/ippoc-sync-a-XXXXXX", db[] = "/tmp/ippoc-sync-b-XXXXXX",
         dc[] = "/tmp/ippoc-sync-c-XXXXXX", dd[] = "/tmp/ippoc-sync-d-XXXXXX", ds[] = "/tmp/ippoc-sync-s-XXXXXX";
    char *dirs[] = {fleet, da, db, dc, dd, ds};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        assert_non_null(mkdtemp(dirs[i]));
    core_log_setup(getenv("SYNC_LOG") ? atoi(getenv("SYNC_LOG")) : CORE_LOG_ERR, 0); /* 2 info, 3 debug */
    cellfix_token(fleet, da, "cell-a", CELLFIX_ROLES);
    cellfix_token(fleet, db, "cell-b", CELLFIX_ROLES);
    cellfix_token(fleet, dc, "cell-c", CELLFIX_ROLES);
    cellfix_token(fleet, dd, "cell-d", CELLFIX_ROLES);
    cellfix_token(fleet, ds, "sim", CELLFIX_ROLES);

    /* a, and b that joins it: the join and then b's periodic push-pulls go over TCP */
    core_config ca, cb, cc, cd;
    mesh_cell *a = start(da, "127.0.0.1:0", NULL, 300, &ca);
    char aaddr[80], baddr[80], cport[40];
    listen_addr(a, aaddr, sizeof aaddr);
    mesh_cell *b = start(db, "127.0.0.1:0", aaddr, 300, &cb);
    listen_addr(b, baddr, sizeof baddr);
    assert_true(wait_known(a, 2));
    assert_true(wait_known(b, 2));
    assert_true(cellfix_wait_status(b, "sync", "tcp", 3)); /* the join, then push-pulls every 300 ms */
    assert_true(cellfix_wait_status(a, "sync", "tcp", 2)); /* a's own push-pulls with b */
    assert_true(cellfix_status_int(a, "sync", "served") >= 2);
    assert_int_equal(cellfix_status_int(a, "sync", "udp_fallback"), 0);
    assert_int_equal(cellfix_status_int(b, "sync", "udp_fallback"), 0);
    char *prom = mesh_cell_prometheus(b);
    assert_non_null(prom);
    assert_non_null(strstr(prom, "ippoc_mesh_sync_total{path=\"tcp\"} "));
    assert_non_null(strstr(prom, "ippoc_mesh_sync_total{path=\"udp_fallback\"} 0\n"));
    free(prom);

    /* a sync request whose packets name another member is refused */
    assert_int_equal(sim_sync(ds, aaddr, "cell-z"), 1);
    assert_true(known(a) < 10);
    /* -- revsync: one whose revocation list does not verify is refused before any packet is fed */
    sim_bad_revs = true;
    assert_int_equal(sim_sync(ds, aaddr, "sim"), 1);
    sim_bad_revs = false;
    assert_true(known(a) < 10);

    /* a simulated member brings 300 entries in one sync request (10 STATE packets) */
    assert_int_equal(sim_sync(ds, aaddr, "sim"), 0);
    assert_true(known(a) >= 2 + SIM_ENTRIES);

    /* c joins a over TCP and gets the whole state (8 KB: 7 STATE packets in one message);
     * its TCP port is taken, so a's and the others' syncs with c fall back to UDP */
    int cp = 0, blocker = take_tcp_port(&cp);
    snprintf(cport, sizeof cport, "127.0.0.1:%d", cp);
    uint64_t t0 = core_mono_ms();
    mesh_cell *c = start(dc, cport, aaddr, 30000, &cc);
    assert_true(wait_known(c, 3 + SIM_MIN));
    print_message("c (TCP join) knows %lld members after %llu ms\n", (long long)known(c),
                  (unsigned long long)(core_mono_ms() - t0));
    assert_true(cellfix_wait_status(c, "sync", "tcp", 1)); /* counted just after its packets are applied */
    assert_true(cellfix_wait_status(a, "sync", "udp_fallback", 1)); /* a's push-pull that picked c (or a sim member) */

    /* d, without a TCP listener either, joins through c only: d's join and
     * c's answer (the whole state) fall back to UDP, and d converges */
    int dp = 0, dblocker = take_tcp_port(&dp);
    char dport[40];
    snprintf(dport, sizeof dport, "127.0.0.1:%d", dp);
    json_int_t c_fallbacks = cellfix_status_int(c, "sync", "udp_fallback");
    t0 = core_mono_ms();
    mesh_cell *d = start(dd, dport, cport, 30000, &cd);
    assert_true(wait_known(d, 4 + SIM_MIN));
    print_message("d (UDP fallback join) knows %lld members after %llu ms\n", (long long)known(d),
                  (unsigned long long)(core_mono_ms() - t0));
    assert_true(cellfix_status_int(d, "sync", "udp_fallback") >= 1);
    assert_true(cellfix_wait_status(c, "sync", "udp_fallback", c_fallbacks + 1));
    assert_int_equal(cellfix_status_int(d, "sync", "served"), 0);
    prom = mesh_cell_prometheus(d);
    assert_non_null(prom);
    assert_null(strstr(prom, "ippoc_mesh_sync_total{path=\"udp_fallback\"} 0\n"));
    free(prom);

    mesh_cell_free(d);
    mesh_cell_free(c);
    close(blocker);
    close(dblocker);
    mesh_cell_free(b);
    mesh_cell_free(a);
    core_config *cfgs[] = {&ca, &cb, &cc, &cd};
    for (size_t i = 0; i < 4; i++)
        core_config_free(cfgs[i]);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s' '%s' '%s' '%s'", fleet, da, db, dc, dd, ds);
    if (system(cmd)) {
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sync_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
