/* test_session.c: the mesh's secure channel (src/mesh/session.c) with two
 * and three sessions wired together in memory: every datagram one yields is
 * handed to the one it names, on a virtual clock. Handshakes (XX, IK, the
 * fallback), certificates refused, replay window, forged packets, rekey,
 * lost packets, give-up, simultaneous initiation, cookies, sizes, fuzz,
 * (rejoin) a forgotten session brought back by the peer's next packet and
 * (certcache) IK handshakes naming certificates the peer holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/session.h"
#include "mesh/session_int.h"

#define WALL 1800000000LL
#define MAXN 3
#define CAP 64

typedef struct {
    struct mesh_session *s;
    char addr[32];
    mesh_identity_key key;
    mesh_identity_cert cert;
    int ups, downs, rejects, datas;
    char up_id[MESH_ID_NODE_ID_MAX + 1];
    char reason[400], down_reason[400];
    uint8_t last[MESH_SESSION_MTU];
    size_t last_len;
    uint32_t seen[4096]; /* payload sequence numbers received */
    size_t nseen;
} node;

typedef struct {
    node n[MAXN];
    int count;
    mesh_identity_key fleet;
    int64_t wall;
    uint64_t now;
    /* loss: drop the next drop_n datagrams of type drop_type (0: none); drop_all_to: index or -1 */
    int drop_type, drop_n, drop_all_to;
    /* capture of every datagram delivered */
    mesh_session_out cap[CAP];
    int ncap;
    int sent_types[8];
} net;

static int64_t wall_fn(void *ctx)
{
    return *(int64_t *)ctx;
}

static void on_event(void *ctx, const mesh_session_event *ev)
{
    node *n = ctx;
    switch (ev->kind) {
    case MESH_SESSION_UP:
        n->ups++;
        snprintf(n->up_id, sizeof n->up_id, "%s", ev->node_id);
        assert_non_null(ev->pk);
        break;
    case MESH_SESSION_DOWN:
        n->downs++;
        snprintf(n->down_reason, sizeof n->down_reason, "%s", ev->reason);
        break;
    case MESH_SESSION_REJECT:
        n->rejects++;
        snprintf(n->reason, sizeof n->reason, "%s", ev->reason);
        break;
    case MESH_SESSION_DATA:
        n->datas++;
        assert_true(ev->len <= MESH_SESSION_MAX_PAYLOAD);
        memcpy(n->last, ev->data, ev->len);
        n->last_len = ev->len;
        if (ev->len >= 4 && n->nseen < 4096)
            memcpy(&n->seen[n->nseen++], ev->data, 4);
        break;
    }
}

static void new_key(mesh_identity_key *k, int kind)
{
    k->kind = kind;
    crypto_sign_keypair(k->pk, k->sk);
}

/* A certificate for key k signed by fleet f, valid [nb, na]. */
static mesh_identity_cert make_cert(const mesh_identity_key *f, const uint8_t *pk, const char *id, int64_t nb,
                                    int64_t na)
{
    mesh_identity_cert c = {.roles = MESH_ROLE_ALL, .not_before = nb, .not_after = na};
    memcpy(c.node_pk, pk, 32);
    snprintf(c.node_id, sizeof c.node_id, "%s", id);
    char err[256];
    assert_int_equal(mesh_identity_cert_sign(&c, f, err, sizeof err), 0);
    return c;
}

static void node_start(net *w, int i, const mesh_identity_cert *cert, const mesh_session_config *base,
                       const mesh_identity_revlist *rl)
{
    node *n = &w->n[i];
    mesh_session_config c = base ? *base : (mesh_session_config){0};
    c.node = &n->key;
    c.cert = cert ? cert : &n->cert;
    c.fleet_pk = w->fleet.pk;
    c.revoked = rl;
    c.wall_clock = wall_fn;
    c.clock_ctx = &w->wall;
    char err[256];
    assert_int_equal(mesh_session_new(&c, &n->s, err, sizeof err), 0);
    mesh_session_on_event(n->s, on_event, n);
}

static void net_init(net *w, int count, const mesh_session_config *base)
{
    memset(w, 0, sizeof *w);
    w->count = count;
    w->wall = WALL;
    w->now = 1000;
    w->drop_all_to = -1;
    new_key(&w->fleet, MESH_KEY_FLEET);
    for (int i = 0; i < count; i++) {
        node *n = &w->n[i];
        snprintf(n->addr, sizeof n->addr, "10.0.0.%d:7947", i + 1);
        new_key(&n->key, MESH_KEY_NODE);
        char id[16];
        snprintf(id, sizeof id, "cell-%d", i);
        n->cert = make_cert(&w->fleet, n->key.pk, id, WALL - 3600, WALL + 86400);
        node_start(w, i, NULL, base, NULL);
    }
}

static void net_free(net *w)
{
    for (int i = 0; i < w->count; i++)
        mesh_session_free(w->n[i].s);
}

static int node_of(net *w, const char *addr)
{
    for (int i = 0; i < w->count; i++)
        if (strcmp(w->n[i].addr, addr) == 0)
            return i;
    return -1;
}

/* Hands everything node i has to send to its receivers (one hop). */
static int flush_from(net *w, int i)
{
    mesh_session_out o;
    int moved = 0;
    while (mesh_session_next_out(w->n[i].s, &o)) {
        assert_true(o.len >= 1 && o.len <= MESH_SESSION_MTU);
        moved++;
        w->sent_types[o.data[0] & 7]++;
        if (w->ncap < CAP)
            w->cap[w->ncap++] = o;
        int to = node_of(w, o.addr);
        assert_true(to >= 0);
        if (to == w->drop_all_to)
            continue;
        if (w->drop_n > 0 && o.data[0] == w->drop_type) {
            w->drop_n--;
            continue;
        }
        snprintf(o.addr, sizeof o.addr, "%s", w->n[i].addr);
        mesh_session_receive(w->n[to].s, w->now, o.addr, o.data, o.len);
    }
    return moved;
}

static void deliver(net *w)
{
    for (int moved = 1; moved;) {
        moved = 0;
        for (int i = 0; i < w->count; i++)
            moved += flush_from(w, i);
    }
}

/* Advances the virtual clock to t, firing every deadline on the way. */
static void run_until(net *w, uint64_t t)
{
    for (;;) {
        uint64_t d = UINT64_MAX;
        for (int i = 0; i < w->count; i++) {
            uint64_t x = mesh_session_next_deadline(w->n[i].s);
            d = x < d ? x : d;
        }
        if (d > t)
            break;
        w->now = d > w->now ? d : w->now;
        for (int i = 0; i < w->count; i++)
            mesh_session_tick(w->n[i].s, w->now);
        deliver(w);
    }
    w->now = t;
    for (int i = 0; i < w->count; i++)
        mesh_session_tick(w->n[i].s, w->now);
    deliver(w);
}

static int send_seq(net *w, int from, int to, uint32_t seq, size_t len)
{
    uint8_t buf[MESH_SESSION_MAX_PAYLOAD];
    memset(buf, (int)(seq & 0xff), sizeof buf);
    memcpy(buf, &seq, 4);
    char err[256];
    return mesh_session_send(w->n[from].s, w->now, w->n[to].addr, buf, len < 4 ? 4 : len, err, sizeof err);
}

static mesh_session_stats stats(net *w, int i)
{
    mesh_session_stats st;
    mesh_session_get_stats(w->n[i].s, &st);
    return st;
}

/* ---- tests -------------------------------------------------------------------- */
static void test_xx_then_data(void **state)
{
    (void)state;
    net w;
    net_init(&w, 2, NULL);
    assert_int_equal(send_seq(&w, 0, 1, 7, 100), 0);
    deliver(&w);
    assert_int_equal(w.sent_types[SESS_T_INIT_XX], 1);
    assert_int_equal(w.sent_types[SESS_T_INIT_IK], 0);
    assert_int_equal(w.n[0].ups, 1);
    assert_int_equal(w.n[1].ups, 1);
    assert_string_equal(w.n[0].up_id, "cell-1");
    assert_string_equal(w.n[1].up_id, "cell-0");
    assert_int_equal(w.n[1].datas, 1);
    assert_int_equal(w.n[1].seen[0], 7);
    assert_int_equal(w.n[1].last_len, 100);
    assert_int_equal(send_seq(&w, 1, 0, 8, 1000), 0);
    deliver(&w);
    assert_int_equal(w.n[0].datas, 1);
    assert_int_equal(w.n[0].seen[0], 8);
    mesh_session_stats a = stats(&w, 0), b = stats(&w, 1);
    assert_int_equal(a.handshakes_ok, 1);
    assert_int_equal(b.handshakes_ok, 1);
    assert_int_equal(a.sessions, 1);
    assert_int_equal(b.sessions, 1);
    assert_int_equal(w.n[0].rejects + w.n[1].rejects, 0);
    net_free(&w);
}

static void test_ik_second_contact_and_learned(void **state)
{
    (void)state;
    net w;
    net_init(&w, 3, NULL);
    assert_int_equal(send_seq(&w, 0, 1, 1, 10), 0);
    deliver(&w);
    assert_int_equal(w.n[1].datas, 1);
    mesh_session_forget(w.n[0].s, w.n[1].addr);
    mesh_session_forget(w.n[1].s, w.n[0].addr);
    assert_int_equal(stats(&w, 0).sessions, 0);
    memset(w.sent_types, 0, sizeof w.sent_types);
    assert_int_equal(send_seq(&w, 0, 1, 2, 10), 0);
    deliver(&w);
    assert_int_equal(w.sent_types[SESS_T_INIT_IK], 1);
    assert_int_equal(w.sent_types[SESS_T_INIT_XX], 0);
    assert_int_equal(w.sent_types[SESS_T_FINAL], 0);
    assert_int_equal(w.n[1].datas, 2);
    assert_int_equal(w.n[1].seen[1], 2);
    /* a replayed IK initiation (its stamp is not newer) is refused, no answer */
    const mesh_session_out *ik = NULL;
    for (int i = 0; i < w.ncap; i++)
        if (w.cap[i].data[0] == SESS_T_INIT_IK)
            ik = &w.cap[i];
    assert_non_null(ik);
    mesh_session_out none;
    assert_int_equal(mesh_session_receive(w.n[1].s, w.now, w.n[0].addr, ik->data, ik->len), -EALREADY);
    assert_false(mesh_session_next_out(w.n[1].s, &none));
    assert_int_equal(stats(&w, 1).rejected_replay, 1);
    assert_non_null(strstr(w.n[1].reason, "replayed handshake"));
    /* the responder sends only once its IK keys are confirmed: both ways work */
    assert_int_equal(send_seq(&w, 1, 0, 3, 10), 0);
    deliver(&w);
    assert_int_equal(w.n[0].datas, 1);
    /* a key learned from elsewhere: first contact already IK */
    memset(w.sent_types, 0, sizeof w.sent_types);
    mesh_session_learn_key(w.n[2].s, w.n[1].addr, w.n[1].key.pk);
    assert_int_equal(send_seq(&w, 2, 1, 4, 10), 0);
    deliver(&w);
    assert_int_equal(w.sent_types[SESS_T_INIT_IK], 1);
    assert_int_equal(w.sent_types[SESS_T_INIT_XX], 0);
    assert_int_equal(w.n[1].datas, 3);
    assert_string_equal(w.n[2].up_id, "cell-1");
    net_free(&w);
}

/* The responder got a new node key: IK to the old one fails, XX follows. */
static void test_ik_fallback_to_xx(void **state)
{
    (void)state;
    net w;
    net_init(&w, 2, NULL);
    mesh_identity_key old;
    new_key(&old, MESH_KEY_NODE);
    mesh_session_learn_key(w.n[0].s, w.n[1].addr, old.pk);
    assert_int_equal(send_seq(&w, 0, 1, 1, 10), 0);
    deliver(&w);
    /* its mac1 is keyed by the old key: dropped silently, before any DH */
    assert_int_equal(stats(&w, 1).dropped_mac1, 1);
    assert_int_equal(w.n[1].datas, 0);
    run_until(&w, w.now + 6000);
    assert_int_equal(w.sent_types[SESS_T_INIT_XX], 1);
    assert_int_equal(w.n[1].datas, 1);
    assert_int_equal(w.n[0].ups, 1);
    net_free(&w);
}

typedef enum { BAD_FLEET, BAD_EXPIRED, BAD_NOT_YET, BAD_SERIAL, BAD_KEY, BAD_BINDING } bad_kind;

/* Node 1 (responder when bad_is_responder, else node 0 the initiator) has a
 * bad certificate; the other refuses it with the reason, nothing flows. */
static void check_bad_cert(bad_kind kind, bool bad_is_responder, const char *want)
{
    net w;
    net_init(&w, 2, NULL);
    int bad = bad_is_responder ? 1 : 0, good = 1 - bad;
    node *b = &w.n[bad];
    mesh_identity_cert c = b->cert;
    mesh_identity_revlist rl;
    assert_int_equal(mesh_identity_revlist_init(&rl, w.fleet.pk, 0), 0);
    if (kind == BAD_FLEET) {
        mesh_identity_key other;
        new_key(&other, MESH_KEY_FLEET);
        c = make_cert(&other, b->key.pk, "cell-x", WALL - 3600, WALL + 86400);
    } else if (kind == BAD_EXPIRED) {
        c = make_cert(&w.fleet, b->key.pk, "cell-x", WALL - 86400, WALL - 3600);
    } else if (kind == BAD_NOT_YET) {
        c = make_cert(&w.fleet, b->key.pk, "cell-x", WALL + 3600, WALL + 86400);
    } else if (kind == BAD_BINDING) {
        mesh_identity_key k2;
        new_key(&k2, MESH_KEY_NODE); /* a valid certificate, of another key */
        c = make_cert(&w.fleet, k2.pk, "cell-x", WALL - 3600, WALL + 86400);
    } else {
        mesh_identity_revocation r = {.kind = kind == BAD_SERIAL ? MESH_REVOKE_SERIAL : MESH_REVOKE_KEY,
                                      .reason = MESH_REASON_KEY_COMPROMISE,
                                      .serial = c.serial,
                                      .time = WALL - 10,
                                      .until = c.not_after};
        memcpy(r.node_pk, c.node_pk, 32);
        char err[256];
        assert_int_equal(mesh_identity_revocation_sign(&r, &w.fleet, err, sizeof err), 0);
        assert_int_equal(mesh_identity_revlist_add(&rl, &r, WALL, err, sizeof err), 1);
    }
    mesh_session_free(w.n[good].s);
    node_start(&w, good, NULL, NULL, &rl);
    mesh_session_free(b->s);
    node_start(&w, bad, &c, NULL, NULL);
    assert_int_equal(send_seq(&w, 0, 1, 1, 10), 0);
    deliver(&w);
    assert_int_equal(w.n[good].rejects, 1);
    assert_non_null(strstr(w.n[good].reason, want));
    assert_int_equal(w.n[0].datas + w.n[1].datas, 0);
    assert_int_equal(w.n[good].ups, 0);
    assert_int_equal(stats(&w, good).sessions, 0);
    mesh_session_stats st = stats(&w, good);
    assert_int_equal(st.rejected_cert + st.rejected_revoked, 1);
    assert_int_equal(st.rejected_revoked, kind == BAD_SERIAL || kind == BAD_KEY);
    assert_int_equal(st.handshakes_failed, 1);
    mesh_identity_revlist_free(&rl);
    net_free(&w);
}

static void test_bad_certs(void **state)
{
    (void)state;
    for (int side = 0; side < 2; side++) {
        check_bad_cert(BAD_FLEET, side, "signed by fleet");
        check_bad_cert(BAD_EXPIRED, side, "expired");
        check_bad_cert(BAD_NOT_YET, side, "not valid for another");
        check_bad_cert(BAD_SERIAL, side, "revoked by serial");
        check_bad_cert(BAD_KEY, side, "revoked by node key");
        check_bad_cert(BAD_BINDING, side, "binds another key");
    }
}

/* A cell of another fleet cannot even complete a handshake (prologue). */
static void test_other_fleet_prologue(void **state)
{
    (void)state;
    net w;
    net_init(&w, 2, NULL);
    mesh_identity_key other;
    new_key(&other, MESH_KEY_FLEET);
    mesh_identity_cert c = make_cert(&other, w.n[1].key.pk, "cell-1", WALL - 3600, WALL + 86400);
    mesh_session_free(w.n[1].s);
    mesh_session_config cfg = {.node = &w.n[1].key, .cert = &c, .fleet_pk = other.pk};
    char err[256];
    assert_int_equal(mesh_session_new(&cfg, &w.n[1].s, err, sizeof err), 0);
    mesh_session_on_event(w.n[1].s, on_event, &w.n[1]);
    assert_int_equal(send_seq(&w, 0, 1, 1, 10), 0);
    deliver(&w);
    /* its mac1 is keyed by another fleet: dropped silently */
    assert_int_equal(stats(&w, 1).dropped_mac1, 1);
    assert_int_equal(w.n[0].ups + w.n[1].ups, 0);
    net_free(&w);
}

static void established(net *w)
{
    assert_int_equal(send_seq(w, 0, 1, 0, 8), 0);
    deliver(w);
    assert_int_equal(w->n[1].datas, 1);
    w->n[1].datas = 0;
    w->n[1].nseen = 0;
    w->ncap = 0;
}

static void test_replay_window(void **state)
{
    (void)state;
    net w;
    net_init(&w, 2, NULL);
    established(&w);
    /* 100 packets delivered in reverse: all accepted */
    mesh_session_out o[100];
    for (uint32_t i = 0; i < 100; i++) {
        assert_int_equal(send_seq(&w, 0, 1, i + 1, 20), 0);
        assert_true(mesh_session_next_out(w.n[0].s, &o[i]));
    }
    for (int i = 99; i >= 0; i--)
        assert_int_equal(mesh_session_receive(w.n[1].s, w.now, w.n[0].addr, o[i].data, o[i].len), 0);
    assert_int_equal(w.n[1].datas, 100);
    assert_int_equal(w.n[1].seen[0], 100);
    assert_int_equal(w.n[1].seen[99], 1);
    /* a replay, and a packet inside the window twice */
    assert_int_equal(mesh_session_receive(w.n[1].s, w.now, w.n[0].addr, o[99].data, o[99].len), -EALREADY);
    assert_int_equal(mesh_session_receive(w.n[1].s, w.now, w.n[0].addr, o[50].data, o[50].len), -EALREADY);
    assert_int_equal(w.n[1].datas, 100);
    assert_int_equal(stats(&w, 1).rejected_replay, 2);
    assert_non_null(strstr(w.n[1].reason, "replayed"));
    /* out of the window: 2,100 newer packets first */
    mesh_session_out first, x;
    assert_int_equal(send_seq(&w, 0, 1, 1000, 20), 0);
    assert_true(mesh_session_next_out(w.n[0].s, &first));
    for (uint32_t i = 0; i < 2100; i++) {
        assert_int_equal(send_seq(&w, 0, 1, 2000 + i, 20), 0);
        assert_true(mesh_session_next_out(w.n[0].s, &x));
        assert_int_equal(mesh_session_receive(w.n[1].s, w.now, w.n[0].addr, x.data, x.len), 0);
    }
    assert_int_equal(mesh_session_receive(w.n[1].s, w.now, w.n[0].addr, first.data, first.len), -EALREADY);
    assert_int_equal(w.n[1].datas, 2200);
    net_free(&w);
}

static void test_bitflip(void **state)
{
    (void)state;
    net w;
    net_init(&w, 2, NULL);
    established(&w);
    mesh_session_out o;
    assert_int_equal(send_seq(&w, 0, 1, 42, 40), 0);
    assert_true(mesh_session_next_out(w.n[0].s, &o));
    mesh_session_stats before = stats(&w, 1);
    for (size_t bit = 0; bit < o.len * 8; bit++) {
        mesh_session_out f = o;
        f.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_true(mesh_session_receive(w.n[1].s, w.now, w.n[0].addr, f.data, f.len) < 0);
    }
    assert_int_equal(w.n[1].datas, 0);
    mesh_session_stats after = stats(&w, 1);
    assert_int_equal(after.packets_in, before.packets_in);
    assert_int_equal(after.sessions, before.sessions);
    assert_true(after.rejected_forged > before.rejected_forged);
    assert_int_equal(mesh_session_receive(w.n[1].s, w.now, w.n[0].addr, o.data, o.len), 0);
    assert_int_equal(w.n[1].datas, 1);
    assert_int_equal(w.n[1].seen[0], 42);
    net_free(&w);
}

static void test_rekey_by_time(void **state)
{
    (void)state;
    mesh_session_config cfg = {.rekey_after_ms = 1000, .reject_after_ms = 3000, .handshake_retry_ms = 200};
    net w;
    net_init(&w, 2, &cfg);
    uint32_t seq = 0;
    for (int step = 0; step < 100; step++) { /* 10 s, a packet each way every 100 ms */
        assert_int_equal(send_seq(&w, 0, 1, seq, 100), 0);
        assert_int_equal(send_seq(&w, 1, 0, seq, 100), 0);
        seq++;
        deliver(&w);
        run_until(&w, w.now + 100);
    }
    assert_int_equal(w.n[1].datas, 100);
    assert_int_equal(w.n[0].datas, 100);
    assert_int_equal(w.n[0].downs + w.n[1].downs, 0);
    assert_int_equal(w.n[0].ups, 1);
    assert_true(stats(&w, 0).rekeys >= 5);
    assert_true(stats(&w, 1).rekeys >= 5);
    /* idle past reject_after: the session is dropped */
    run_until(&w, w.now + 3500);
    assert_int_equal(w.n[0].downs, 1);
    assert_int_equal(w.n[1].downs, 1);
    assert_non_null(strstr(w.n[0].down_reason, "expired"));
    assert_int_equal(stats(&w, 0).sessions, 0);
    net_free(&w);
}

static void test_rekey_by_count(void **state)
{
    (void)state;
    mesh_session_config cfg = {.rekey_after_messages = 50};
    net w;
    net_init(&w, 2, &cfg);
    for (uint32_t i = 0; i < 500; i++) {
        assert_int_equal(send_seq(&w, 0, 1, i, 60), 0);
        if (i % 7 == 0)
            deliver(&w);
    }
    deliver(&w);
    assert_int_equal(w.n[1].datas, 500);
    for (uint32_t i = 0; i < 500; i++)
        assert_int_equal(w.n[1].seen[i], i);
    assert_true(stats(&w, 0).rekeys >= 8);
    net_free(&w);
}

static void check_lost(int type)
{
    mesh_session_config cfg = {.handshake_retry_ms = 1000};
    net w;
    net_init(&w, 2, &cfg);
    w.drop_type = type;
    w.drop_n = 1;
    assert_int_equal(send_seq(&w, 0, 1, 1, 10), 0);
    deliver(&w);
    run_until(&w, w.now + 2500);
    assert_int_equal(w.drop_n, 0);
    assert_int_equal(w.n[0].ups, 1);
    assert_int_equal(w.n[1].ups, 1);
    assert_int_equal(send_seq(&w, 0, 1, 2, 10), 0);
    assert_int_equal(send_seq(&w, 1, 0, 3, 10), 0);
    deliver(&w);
    assert_int_equal(w.n[1].seen[w.n[1].nseen - 1], 2);
    assert_int_equal(w.n[0].seen[0], 3);
    /* the first payload waited in the queue (after a lost message 3 too: the
     * initiator sends nothing before the responder's certificate) */
    assert_int_equal(w.n[1].seen[0], 1);
    /* a retry (XX again after a lost message 3: no certificate, no key learned) */
    assert_true(w.sent_types[SESS_T_INIT_XX] + w.sent_types[SESS_T_INIT_IK] >= 2);
    net_free(&w);
}

static void test_lost_handshake_packets(void **state)
{
    (void)state;
    check_lost(SESS_T_INIT_XX);
    check_lost(SESS_T_RESP);
    check_lost(SESS_T_FINAL);
}

static void test_give_up(void **state)
{
    (void)state;
    net w;
    net_init(&w, 2, NULL);
    w.drop_all_to = 1;
    assert_int_equal(send_seq(&w, 0, 1, 1, 10), 0);
    run_until(&w, w.now + 200000);
    assert_int_equal(w.sent_types[SESS_T_INIT_XX], 18);
    assert_int_equal(w.n[0].downs, 1);
    assert_non_null(strstr(w.n[0].down_reason, "gave up after 18 tries"));
    assert_int_equal(mesh_session_next_deadline(w.n[0].s), UINT64_MAX);
    net_free(&w);
}

static void test_simultaneous(void **state)
{
    (void)state;
    net w;
    net_init(&w, 2, NULL);
    assert_int_equal(send_seq(&w, 0, 1, 1, 10), 0);
    assert_int_equal(send_seq(&w, 1, 0, 2, 10), 0);
    deliver(&w);
    assert_int_equal(w.sent_types[SESS_T_INIT_XX], 2);
    assert_int_equal(w.n[0].datas, 1);
    assert_int_equal(w.n[1].datas, 1);
    assert_int_equal(stats(&w, 0).handshakes_ok, 1);
    assert_int_equal(stats(&w, 1).handshakes_ok, 1);
    assert_int_equal(stats(&w, 0).sessions, 1);
    run_until(&w, w.now + 30000); /* nothing retries: one session settled */
    assert_int_equal(w.sent_types[SESS_T_INIT_XX], 2);
    assert_int_equal(send_seq(&w, 1, 0, 3, 10), 0);
    deliver(&w);
    assert_int_equal(w.n[0].datas, 2);
    /* again with both keys known: two IK initiations, one session */
    mesh_session_forget(w.n[0].s, w.n[1].addr);
    mesh_session_forget(w.n[1].s, w.n[0].addr);
    memset(w.sent_types, 0, sizeof w.sent_types);
    assert_int_equal(send_seq(&w, 0, 1, 4, 10), 0);
    assert_int_equal(send_seq(&w, 1, 0, 5, 10), 0);
    deliver(&w);
    assert_int_equal(w.sent_types[SESS_T_INIT_IK], 2);
    assert_int_equal(w.n[1].seen[w.n[1].nseen - 1], 4);
    assert_int_equal(w.n[0].seen[w.n[0].nseen - 1], 5);
    assert_int_equal(stats(&w, 0).handshakes_ok + stats(&w, 1).handshakes_ok, 4);
    run_until(&w, w.now + 30000);
    assert_int_equal(w.sent_types[SESS_T_INIT_IK], 2);
    net_free(&w);
}

static void test_cookie_under_load(void **state)
{
    (void)state;
    mesh_session_config cfg = {.load_handshakes_per_s = 1, .handshake_retry_ms = 100};
    net w;
    net_init(&w, 3, &cfg);
    /* node 2 then node 0 initiate to node 1 within one second */
    assert_int_equal(send_seq(&w, 2, 1, 1, 10), 0);
    assert_int_equal(send_seq(&w, 0, 1, 2, 10), 0);
    flush_from(&w, 2);
    flush_from(&w, 0);
    assert_int_equal(stats(&w, 1).cookies_sent, 1);
    deliver(&w);
    assert_int_equal(w.n[1].datas, 1);
    assert_int_equal(w.n[1].seen[0], 1);
    assert_int_equal(w.sent_types[SESS_T_COOKIE], 1);
    /* the retry, still in the loaded second, carries mac2 and is served */
    run_until(&w, w.now + 150);
    assert_int_equal(stats(&w, 1).cookies_sent, 1);
    assert_int_equal(w.n[1].datas, 2);
    assert_int_equal(w.n[0].ups, 1);
    net_free(&w);
}

static void test_bad_mac1(void **state)
{
    (void)state;
    net w;
    net_init(&w, 2, NULL);
    assert_int_equal(send_seq(&w, 0, 1, 1, 10), 0);
    mesh_session_out o, x;
    assert_true(mesh_session_next_out(w.n[0].s, &o));
    o.data[o.len - 20] ^= 1;
    assert_int_equal(mesh_session_receive(w.n[1].s, w.now, w.n[0].addr, o.data, o.len), -EBADMSG);
    assert_false(mesh_session_next_out(w.n[1].s, &x));
    assert_int_equal(stats(&w, 1).dropped_mac1, 1);
    assert_int_equal(w.n[1].rejects, 0);
    net_free(&w);
}

static void test_sizes(void **state)
{
    (void)state;
    net w;
    net_init(&w, 2, NULL);
    uint8_t big[MESH_SESSION_MAX_PAYLOAD + 1] = {0};
    char err[256];
    assert_int_equal(mesh_session_send(w.n[0].s, w.now, w.n[1].addr, big, sizeof big, err, sizeof err), -EMSGSIZE);
    assert_non_null(strstr(err, "limit"));
    assert_int_equal(mesh_session_send(w.n[0].s, w.now, "", big, 1, err, sizeof err), -EINVAL);
    assert_int_equal(mesh_session_send(w.n[0].s, w.now, w.n[1].addr, big, MESH_SESSION_MAX_PAYLOAD, err, sizeof err),
                     0);
    deliver(&w);
    assert_int_equal(w.n[1].last_len, MESH_SESSION_MAX_PAYLOAD);
    bool full = false;
    for (int i = 0; i < w.ncap; i++)
        full |= w.cap[i].len == MESH_SESSION_MTU - 3; /* 1,368 + 29 */
    assert_true(full);
    mesh_session_config bad = {0};
    assert_int_equal(mesh_session_new(&bad, &w.n[0].s, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "node"));
    net_free(&w);
}

static void test_three_cells(void **state)
{
    (void)state;
    net w;
    net_init(&w, 3, NULL);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            if (i != j)
                assert_int_equal(send_seq(&w, i, j, (uint32_t)(10 * i + j), 30), 0);
    deliver(&w);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(w.n[i].datas, 2);
        assert_int_equal(stats(&w, i).sessions, 2);
        for (size_t k = 0; k < w.n[i].nseen; k++)
            assert_int_equal(w.n[i].seen[k] % 10, (uint32_t)i);
    }
    net_free(&w);
}

/* Random and mutated datagrams into an established responder: nothing delivered, nothing set up. */
static void test_fuzz(void **state)
{
    (void)state;
    net w;
    net_init(&w, 2, NULL);
    established(&w);
    w.ncap = 0;
    mesh_session_forget(w.n[0].s, w.n[1].addr);
    mesh_session_forget(w.n[1].s, w.n[0].addr);
    assert_int_equal(send_seq(&w, 0, 1, 1, 50), 0); /* captures IK init, response, data */
    deliver(&w);
    int ncap = w.ncap;
    assert_true(ncap >= 3);
    mesh_session_stats b0 = stats(&w, 1);
    int datas = w.n[1].datas, ups = w.n[1].ups;
    uint8_t buf[MESH_SESSION_MTU + 1];
    for (int i = 0; i < 20000; i++) {
        size_t len;
        if (i % 2) {
            len = randombytes_uniform(MESH_SESSION_MTU + 2);
            randombytes_buf(buf, len);
            if (len)
                buf[0] = (uint8_t)randombytes_uniform(8);
        } else {
            const mesh_session_out *o = &w.cap[randombytes_uniform((uint32_t)ncap)];
            len = o->len;
            memcpy(buf, o->data, len);
            for (int m = 1 + (int)randombytes_uniform(4); m > 0; m--)
                buf[randombytes_uniform((uint32_t)len)] ^= (uint8_t)(1 + randombytes_uniform(255));
            if (!memcmp(buf, o->data, len)) /* the flips cancelled: still the genuine datagram */
                buf[0] ^= 0x80;
        }
        mesh_session_receive(w.n[1].s, w.now, w.n[0].addr, buf, len);
        mesh_session_out drop;
        while (mesh_session_next_out(w.n[1].s, &drop))
            ;
    }
    assert_int_equal(w.n[1].datas, datas);
    assert_int_equal(w.n[1].ups, ups);
    mesh_session_stats b1 = stats(&w, 1);
    assert_int_equal(b1.sessions, b0.sessions);
    assert_int_equal(b1.handshakes_ok, b0.handshakes_ok);
    assert_true(b1.rejected_forged + b1.rejected_malformed + b1.dropped_mac1 > 10000);
    assert_int_equal(send_seq(&w, 0, 1, 99, 50), 0);
    deliver(&w);
    assert_int_equal(w.n[1].seen[w.n[1].nseen - 1], 99);
    net_free(&w);
}

/* ---- a refused cell learns nothing (XX: the responder's certificate comes after message 3) ---- */

/* A hand-driven XX initiator: its own Noise state, so the test reads exactly
 * what the responder let it decrypt. */
typedef struct {
    mesh_noise_handshake hs;
    mesh_noise_cipher send, recv;
    uint32_t local, remote;
    uint8_t seen[4 * MESH_SESSION_MTU]; /* every plaintext it could decrypt, concatenated */
    size_t seen_len;
    int certs; /* type-7 packets it received */
} hand;

static void hand_saw(hand *h, const uint8_t *p, size_t n)
{
    assert_true(h->seen_len + n <= sizeof h->seen);
    memcpy(h->seen + h->seen_len, p, n);
    h->seen_len += n;
}

static bool contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
    for (size_t i = 0; m && i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return true;
    return false;
}

/* Messages 1 and 3 from the hand to node 1 (the responder) with certificate c;
 * returns the responder's rc for message 3. */
static int hand_handshake(net *w, hand *h, const mesh_identity_key *key, const mesh_identity_cert *c)
{
    const char *me = w->n[0].addr;
    node *r = &w->n[1];
    uint8_t xsk[32], xpk[32], prologue[sizeof SESS_PROLOGUE_LABEL - 1 + 32];
    assert_int_equal(mesh_identity_x25519(key, xsk, xpk), 0);
    memcpy(prologue, SESS_PROLOGUE_LABEL, sizeof SESS_PROLOGUE_LABEL - 1);
    memcpy(prologue + sizeof SESS_PROLOGUE_LABEL - 1, w->fleet.pk, 32);
    mesh_noise_config nc = {.protocol = "Noise_XX_25519_ChaChaPoly_SHA256", .initiator = true, .prologue = prologue,
                            .prologue_len = sizeof prologue, .s_priv = xsk, .s_pub = xpk};
    assert_int_equal(mesh_noise_handshake_init(&h->hs, &nc, NULL, 0), 0);
    uint8_t pkt[MESH_SESSION_MTU], key1[32], pl[MESH_SESSION_MTU];
    size_t n = 0, plen = 0;
    h->local = 0x1234u;
    pkt[0] = SESS_T_INIT_XX;
    sess_put32(pkt + 1, h->local);
    assert_int_equal(mesh_noise_write_message(&h->hs, NULL, 0, pkt + 5, sizeof pkt - 37, &n, NULL, 0), 0);
    n += 5;
    sess_mac_key("mac1----", w->fleet.pk, key1);
    sess_mac(key1, 32, pkt, n, pkt + n);
    memset(pkt + n + SESS_MAC_LEN, 0, SESS_MAC_LEN);
    n += 2 * SESS_MAC_LEN;
    assert_int_equal(mesh_session_receive(r->s, w->now, me, pkt, n), 0);
    mesh_session_out o;
    assert_true(mesh_session_next_out(r->s, &o));
    assert_int_equal(o.data[0], SESS_T_RESP);
    h->remote = sess_get32(o.data + 1);
    assert_int_equal(mesh_noise_read_message(&h->hs, o.data + 9, o.len - 9, pl, sizeof pl, &plen, NULL, 0), 0);
    assert_int_equal(plen, 0); /* message 2: no certificate, nothing at all */
    hand_saw(h, pl, plen);
    uint8_t cb[MESH_ID_CERT_MAX];
    char err[256];
    int cl = mesh_identity_cert_encode(c, cb, sizeof cb, err, sizeof err);
    assert_true(cl > 0);
    pkt[0] = SESS_T_FINAL;
    sess_put32(pkt + 1, h->local);
    sess_put32(pkt + 5, h->remote);
    assert_int_equal(mesh_noise_write_message(&h->hs, cb, (size_t)cl, pkt + 9, sizeof pkt - 9, &n, NULL, 0), 0);
    mesh_noise_cipher c1, c2;
    assert_int_equal(mesh_noise_split(&h->hs, &c1, &c2, NULL, 0), 0);
    h->send = c1, h->recv = c2;
    mesh_noise_handshake_wipe(&h->hs);
    return mesh_session_receive(r->s, w->now, me, pkt, 9 + n);
}

/* Everything node 1 sends to the hand over the next minute, decrypted where it can be. */
static void hand_drain(net *w, hand *h)
{
    for (uint64_t end = w->now + 60000; w->now < end; w->now += 500) {
        mesh_session_tick(w->n[1].s, w->now);
        mesh_session_out o;
        while (mesh_session_next_out(w->n[1].s, &o)) {
            hand_saw(h, o.data, o.len); /* the raw datagram too */
            if ((o.data[0] != SESS_T_DATA && o.data[0] != SESS_T_CERT) || o.len < SESS_DATA_HDR + 16)
                continue;
            h->certs += o.data[0] == SESS_T_CERT;
            uint8_t pl[MESH_SESSION_MTU];
            size_t plen = 0;
            mesh_noise_cipher c = h->recv;
            mesh_noise_cipher_set_nonce(&c, sess_get64(o.data + 5));
            if (mesh_noise_cipher_decrypt(&c, o.data, SESS_DATA_HDR, o.data + SESS_DATA_HDR, o.len - SESS_DATA_HDR,
                                          pl, sizeof pl, &plen, NULL, 0) == 0)
                hand_saw(h, pl, plen);
        }
    }
}

typedef enum { HAND_VALID, HAND_EXPIRED, HAND_REVOKED, HAND_WRONG_KEY, HAND_OTHER_FLEET } hand_kind;

static void check_hand(hand_kind kind)
{
    net w;
    net_init(&w, 2, NULL);
    mesh_identity_revlist rl;
    assert_int_equal(mesh_identity_revlist_init(&rl, w.fleet.pk, 0), 0);
    mesh_identity_cert c = w.n[0].cert;
    char err[256];
    if (kind == HAND_EXPIRED)
        c = make_cert(&w.fleet, w.n[0].key.pk, "cell-0", WALL - 86400, WALL - 3600);
    if (kind == HAND_WRONG_KEY) {
        mesh_identity_key k2;
        new_key(&k2, MESH_KEY_NODE);
        c = make_cert(&w.fleet, k2.pk, "cell-0", WALL - 3600, WALL + 86400);
    }
    if (kind == HAND_OTHER_FLEET) {
        mesh_identity_key f2;
        new_key(&f2, MESH_KEY_FLEET);
        c = make_cert(&f2, w.n[0].key.pk, "cell-0", WALL - 3600, WALL + 86400);
    }
    if (kind == HAND_REVOKED) {
        mesh_identity_revocation r = {.kind = MESH_REVOKE_SERIAL, .reason = MESH_REASON_KEY_COMPROMISE,
                                      .serial = c.serial, .time = WALL - 10, .until = c.not_after};
        assert_int_equal(mesh_identity_revocation_sign(&r, &w.fleet, err, sizeof err), 0);
        assert_int_equal(mesh_identity_revlist_add(&rl, &r, WALL, err, sizeof err), 1);
    }
    mesh_session_free(w.n[1].s);
    node_start(&w, 1, NULL, NULL, &rl);
    hand h = {0};
    int rc = hand_handshake(&w, &h, &w.n[0].key, &c);
    /* then the responder has data for the hand's address: it may only go over a session */
    assert_int_equal(send_seq(&w, 1, 0, 9, 100), 0);
    hand_drain(&w, &h);
    uint8_t cb[MESH_ID_CERT_MAX];
    int cl = mesh_identity_cert_encode(&w.n[1].cert, cb, sizeof cb, err, sizeof err);
    assert_true(cl > 0);
    bool learned = contains(h.seen, h.seen_len, (const uint8_t *)"cell-1", 6) ||
                   contains(h.seen, h.seen_len, cb, (size_t)cl) ||
                   contains(h.seen, h.seen_len, w.n[1].key.pk, 32);
    if (kind == HAND_VALID) { /* the control: the same hand with a good certificate learns it all */
        assert_int_equal(rc, 0);
        assert_int_equal(h.certs, 1);
        assert_true(learned);
        assert_int_equal(w.n[1].ups, 1);
        assert_int_equal(w.n[1].rejects, 0);
    } else {
        assert_true(rc < 0);
        assert_int_equal(h.certs, 0);
        assert_false(learned);
        assert_int_equal(w.n[1].ups, 0);
        assert_int_equal(w.n[1].rejects, 1);
        assert_int_equal(stats(&w, 1).sessions, 0);
    }
    mesh_noise_cipher_wipe(&h.send);
    mesh_noise_cipher_wipe(&h.recv);
    mesh_identity_revlist_free(&rl);
    net_free(&w);
}

static void test_refused_learns_nothing(void **state)
{
    (void)state;
    check_hand(HAND_VALID);
    check_hand(HAND_EXPIRED);
    check_hand(HAND_REVOKED);
    check_hand(HAND_WRONG_KEY);
    check_hand(HAND_OTHER_FLEET);
}

/* Both session ends: a refused XX initiator gets no UP, no node id, no data;
 * it gives up with a reason naming the missing certificate. */
static void test_refused_initiator_events(void **state)
{
    (void)state;
    net w;
    net_init(&w, 2, NULL);
    mesh_identity_cert c = make_cert(&w.fleet, w.n[0].key.pk, "cell-x", WALL - 86400, WALL - 3600);
    mesh_session_free(w.n[0].s);
    node_start(&w, 0, &c, NULL, NULL);
    assert_int_equal(send_seq(&w, 0, 1, 1, 10), 0);
    run_until(&w, w.now + 200000);
    assert_int_equal(w.n[0].ups, 0);
    assert_string_equal(w.n[0].up_id, "");
    assert_int_equal(w.n[0].datas + w.n[1].datas, 0);
    assert_int_equal(w.n[1].ups, 0);
    assert_int_equal(w.sent_types[SESS_T_CERT], 0);
    assert_int_equal(w.n[0].downs, 1);
    assert_non_null(strstr(w.n[0].down_reason, "no certificate from the responder"));
    net_free(&w);
}

/* A transport packet on the keys of a handshake whose certificate has not come is refused. */
static void test_data_before_cert(void **state)
{
    (void)state;
    net w;
    net_init(&w, 2, NULL);
    w.drop_type = SESS_T_CERT;
    w.drop_n = 1;
    assert_int_equal(send_seq(&w, 0, 1, 1, 10), 0);
    deliver(&w);
    assert_int_equal(w.drop_n, 0);
    assert_int_equal(w.n[1].ups, 1);
    assert_int_equal(send_seq(&w, 1, 0, 2, 10), 0); /* on the responder's new keys */
    deliver(&w);
    assert_int_equal(w.n[0].ups, 0);
    assert_int_equal(w.n[0].datas, 0);
    assert_int_equal(w.n[0].rejects, 1);
    assert_non_null(strstr(w.n[0].reason, "before the responder's certificate"));
    run_until(&w, w.now + 6000); /* the wait ends: a new handshake, and this time it all flows */
    assert_int_equal(w.n[0].ups, 1);
    assert_string_equal(w.n[0].up_id, "cell-1");
    assert_int_equal(w.n[1].datas, 1);
    net_free(&w);
}

/* ---- rejoin: a transport packet for forgotten keys brings the session back ---- */

/* Node f forgot node o (a false death); o still has its session and sends:
 * f starts an IK handshake to o at once, o accepts it over its old session,
 * and data flows both ways again. */
static void check_rejoin(int f, int o)
{
    mesh_session_config cfg = {.handshake_retry_ms = 1000};
    net w;
    net_init(&w, 2, &cfg);
    established(&w);
    mesh_session_forget(w.n[f].s, w.n[o].addr);
    assert_int_equal(stats(&w, f).sessions, 0);
    assert_int_equal(stats(&w, o).sessions, 1);
    memset(w.sent_types, 0, sizeof w.sent_types);
    int ups_f = w.n[f].ups, ups_o = w.n[o].ups, datas_f = w.n[f].datas;
    uint64_t ok_o = stats(&w, o).handshakes_ok, t0 = w.now;
    assert_int_equal(send_seq(&w, o, f, 100, 20), 0);
    deliver(&w); /* no clock advance: the handshake starts on the packet */
    assert_int_equal(w.now, t0);
    mesh_session_stats sf = stats(&w, f);
    assert_int_equal(sf.unknown_index, 1);
    assert_int_equal(sf.handshakes_unprompted, 1);
    assert_int_equal(w.sent_types[SESS_T_INIT_IK], 1);
    assert_int_equal(w.sent_types[SESS_T_INIT_XX], 0);
    assert_int_equal(w.n[f].datas, datas_f); /* nothing delivered from the unknown-index packet */
    assert_int_equal(sf.sessions, 1);
    assert_int_equal(w.n[f].ups, ups_f + 1);
    assert_string_equal(w.n[f].up_id, f == 0 ? "cell-1" : "cell-0");
    assert_int_equal(w.n[o].ups, ups_o); /* o's session was replaced, not lost: no second UP */
    assert_int_equal(stats(&w, o).handshakes_ok, ok_o + 1);
    assert_int_equal(w.n[f].downs + w.n[o].downs, 0);
    assert_int_equal(send_seq(&w, o, f, 101, 20), 0);
    assert_int_equal(send_seq(&w, f, o, 102, 20), 0);
    deliver(&w);
    assert_int_equal(w.n[f].seen[w.n[f].nseen - 1], 101);
    assert_int_equal(w.n[o].seen[w.n[o].nseen - 1], 102);
    /* nothing more: no retries, no further initiations, still both ways */
    run_until(&w, w.now + 20000);
    assert_int_equal(w.sent_types[SESS_T_INIT_IK] + w.sent_types[SESS_T_INIT_XX], 1);
    assert_int_equal(stats(&w, f).handshakes_unprompted, 1);
    assert_int_equal(send_seq(&w, o, f, 103, 20), 0);
    deliver(&w);
    assert_int_equal(w.n[f].seen[w.n[f].nseen - 1], 103);
    assert_int_equal(w.n[f].rejects + w.n[o].rejects, 0);
    net_free(&w);
}

static void test_rejoin_after_forget(void **state)
{
    (void)state;
    check_rejoin(0, 1); /* the XX initiator forgot */
    check_rejoin(1, 0); /* the XX responder forgot */
}

/* The unprompted initiation is lost: one try, no retry and no DOWN; the
 * sender's next packet, a retry period later, asks again and succeeds. */
static void test_rejoin_lost_initiation(void **state)
{
    (void)state;
    mesh_session_config cfg = {.handshake_retry_ms = 1000};
    net w;
    net_init(&w, 2, &cfg);
    established(&w);
    mesh_session_forget(w.n[0].s, w.n[1].addr);
    memset(w.sent_types, 0, sizeof w.sent_types);
    w.drop_type = SESS_T_INIT_IK;
    w.drop_n = 1;
    assert_int_equal(send_seq(&w, 1, 0, 1, 20), 0);
    deliver(&w);
    assert_int_equal(w.sent_types[SESS_T_INIT_IK], 1);
    assert_int_equal(send_seq(&w, 1, 0, 2, 20), 0); /* pending: no second one */
    deliver(&w);
    assert_int_equal(w.sent_types[SESS_T_INIT_IK], 1);
    run_until(&w, w.now + 5000);
    assert_int_equal(w.sent_types[SESS_T_INIT_IK] + w.sent_types[SESS_T_INIT_XX], 1);
    assert_int_equal(w.n[0].downs, 0);
    assert_int_equal(stats(&w, 0).sessions, 0);
    assert_int_equal(send_seq(&w, 1, 0, 3, 20), 0);
    deliver(&w);
    assert_int_equal(w.sent_types[SESS_T_INIT_IK], 2);
    assert_int_equal(stats(&w, 0).handshakes_unprompted, 2);
    assert_int_equal(stats(&w, 0).sessions, 1);
    assert_int_equal(send_seq(&w, 1, 0, 4, 20), 0);
    deliver(&w);
    assert_int_equal(w.n[0].seen[w.n[0].nseen - 1], 4);
    net_free(&w);
}

/* A partition: A found B dead, forgot it and began a handshake to it at
 * once (gossip to the dead), but the initiation was lost. When the path
 * works again, B's next packet makes A send its retry at once instead of at
 * the retry timer; A's waiting payload then reaches B. */
static void test_rejoin_pending_handshake(void **state)
{
    (void)state;
    net w;
    net_init(&w, 2, NULL); /* handshake_retry_ms 5000 */
    established(&w);
    uint64_t t0 = w.now;
    w.drop_all_to = 1; /* partition: nothing from A reaches B */
    mesh_session_forget(w.n[0].s, w.n[1].addr);
    memset(w.sent_types, 0, sizeof w.sent_types);
    assert_int_equal(send_seq(&w, 0, 1, 1, 20), 0); /* waits; its IK initiation is lost */
    deliver(&w);
    assert_int_equal(w.sent_types[SESS_T_INIT_IK], 1);
    /* B's packet inside the first quarter of the retry period: no early retry */
    w.now = t0 + 1000;
    w.drop_all_to = -1;
    w.drop_type = SESS_T_INIT_IK; /* ... and if it sent one, lose it */
    w.drop_n = 1;
    assert_int_equal(send_seq(&w, 1, 0, 2, 20), 0);
    deliver(&w);
    assert_int_equal(w.sent_types[SESS_T_INIT_IK] + w.sent_types[SESS_T_INIT_XX], 1);
    assert_int_equal(stats(&w, 0).handshakes_unprompted, 0);
    w.drop_n = 0;
    w.now = t0 + 3000; /* the partition is over, 2 s before A's retry timer */
    assert_int_equal(send_seq(&w, 1, 0, 3, 20), 0);
    deliver(&w);
    assert_int_equal(w.now, t0 + 3000);
    assert_int_equal(w.sent_types[SESS_T_INIT_IK], 2);
    assert_int_equal(stats(&w, 0).handshakes_unprompted, 1);
    assert_int_equal(stats(&w, 0).sessions, 1);
    assert_int_equal(w.n[1].seen[w.n[1].nseen - 1], 1); /* A's waiting payload */
    assert_int_equal(send_seq(&w, 1, 0, 4, 20), 0);
    deliver(&w);
    assert_int_equal(w.n[0].seen[w.n[0].nseen - 1], 4);
    run_until(&w, w.now + 20000); /* the old retry timer fires nothing */
    assert_int_equal(w.sent_types[SESS_T_INIT_IK] + w.sent_types[SESS_T_INIT_XX], 2);
    assert_int_equal(w.n[0].downs + w.n[1].downs, 0);
    net_free(&w);
}

/* A peer forgotten because it was revoked gets no unprompted initiation
 * (nothing of ours, not even our certificate in IK message 1). */
static void test_rejoin_not_revoked(void **state)
{
    (void)state;
    net w;
    net_init(&w, 2, NULL);
    mesh_identity_revlist rl;
    assert_int_equal(mesh_identity_revlist_init(&rl, w.fleet.pk, 0), 0);
    mesh_session_free(w.n[0].s);
    node_start(&w, 0, NULL, NULL, &rl);
    established(&w);
    const mesh_identity_cert *c = &w.n[1].cert;
    mesh_identity_revocation r = {.kind = MESH_REVOKE_SERIAL,
                                  .reason = MESH_REASON_KEY_COMPROMISE,
                                  .serial = c->serial,
                                  .time = WALL - 10,
                                  .until = c->not_after};
    memcpy(r.node_pk, c->node_pk, 32);
    char err[256];
    assert_int_equal(mesh_identity_revocation_sign(&r, &w.fleet, err, sizeof err), 0);
    assert_int_equal(mesh_identity_revlist_add(&rl, &r, WALL, err, sizeof err), 1);
    mesh_session_forget(w.n[0].s, w.n[1].addr);
    memset(w.sent_types, 0, sizeof w.sent_types);
    for (uint32_t i = 0; i < 5; i++) {
        assert_int_equal(send_seq(&w, 1, 0, i, 20), 0);
        deliver(&w);
        run_until(&w, w.now + 6000);
    }
    assert_int_equal(stats(&w, 0).unknown_index, 5);
    assert_int_equal(stats(&w, 0).handshakes_unprompted, 0);
    assert_int_equal(w.sent_types[SESS_T_INIT_IK] + w.sent_types[SESS_T_INIT_XX], 0);
    assert_int_equal(stats(&w, 0).sessions, 0);
    net_free(&w);
    mesh_identity_revlist_free(&rl);
}

/* 10,000 random-index transport packets from 1,000 spoofed addresses (half
 * with a learned key, none with a session) over 2 s: at most
 * SESS_UNPROMPTED_PER_S initiations a second, at most one per address, only
 * IK and only to learned addresses; the real session is untouched. */
#define FLOOD_ADDRS 1000
#define FLOOD_PKTS 10000
static void test_rejoin_flood(void **state)
{
    (void)state;
    net w;
    net_init(&w, 2, NULL);
    established(&w);
    struct mesh_session *a = w.n[1].s; /* the responder of the real session is flooded */
    char addrs[FLOOD_ADDRS][32];
    for (int i = 0; i < FLOOD_ADDRS; i++) {
        snprintf(addrs[i], sizeof addrs[i], "192.0.2.%d:%d", i % 250 + 1, 7000 + i);
        if (i % 2 == 0) {
            mesh_identity_key k;
            new_key(&k, MESH_KEY_NODE);
            mesh_session_learn_key(a, addrs[i], k.pk);
        }
    }
    static int per_addr[FLOOD_ADDRS];
    memset(per_addr, 0, sizeof per_addr);
    int inits = 0, xx = 0, to_unlearned = 0;
    uint64_t t0 = w.now;
    uint8_t pkt[64];
    for (int i = 0; i < FLOOD_PKTS; i++) {
        uint64_t now = t0 + (uint64_t)i / 5; /* 5 a millisecond: 2 s in all */
        size_t len = SESS_DATA_HDR + 16 + randombytes_uniform(sizeof pkt - SESS_DATA_HDR - 16 + 1);
        randombytes_buf(pkt, len);
        pkt[0] = SESS_T_DATA;
        mesh_session_receive(a, now, addrs[(i * 7) % FLOOD_ADDRS], pkt, len);
        mesh_session_tick(a, now);
        mesh_session_out o;
        while (mesh_session_next_out(a, &o)) {
            if (o.data[0] != SESS_T_INIT_IK && o.data[0] != SESS_T_INIT_XX)
                continue;
            inits++;
            xx += o.data[0] == SESS_T_INIT_XX;
            int k = -1;
            for (int j = 0; j < FLOOD_ADDRS && k < 0; j++)
                if (strcmp(addrs[j], o.addr) == 0)
                    k = j;
            assert_true(k >= 0);
            per_addr[k]++;
            to_unlearned += k % 2;
        }
    }
    mesh_session_stats st;
    mesh_session_get_stats(a, &st);
    printf("flood: %d packets from %d addresses in 2 s -> %d initiations (bound %d)\n", FLOOD_PKTS, FLOOD_ADDRS,
           inits, 3 * SESS_UNPROMPTED_PER_S);
    assert_true(inits > 0);
    assert_true(inits <= 3 * SESS_UNPROMPTED_PER_S); /* the 2 s touch at most 3 one-second windows */
    assert_int_equal(xx, 0);
    assert_int_equal(to_unlearned, 0);
    for (int k = 0; k < FLOOD_ADDRS; k++)
        assert_true(per_addr[k] <= 1);
    assert_int_equal((int)st.handshakes_unprompted, inits);
    assert_int_equal(st.unknown_index + st.rejected_forged, FLOOD_PKTS);
    assert_int_equal(st.sessions, 1);
    assert_int_equal(w.n[1].datas, 0);
    w.now = t0 + 2000;
    assert_int_equal(send_seq(&w, 0, 1, 5, 20), 0);
    assert_int_equal(send_seq(&w, 1, 0, 6, 20), 0);
    deliver(&w);
    assert_int_equal(w.n[1].seen[w.n[1].nseen - 1], 5);
    assert_int_equal(w.n[0].seen[w.n[0].nseen - 1], 6);
    net_free(&w);
}

/* ---- certcache: IK handshakes name certificates the peer already holds ---------- */
#define CC_CERT 166 /* "cell-N"'s encoded certificate */
#define CC_IK1_SHORT (1 + 4 + 32 + 48 + 8 + 1 + 16 + 16 + 16 + 2 * 16)
#define CC_IK2_SHORT (1 + 4 + 4 + 32 + 1 + 16)
#define CC_IK1_FULL_REF (1 + 4 + 32 + 48 + 8 + 1 + 16 + CC_CERT + 16 + 2 * 16)
#define CC_IK1_FULL (1 + 4 + 32 + 48 + 8 + 1 + CC_CERT + 16 + 2 * 16)
#define CC_IK2_FULL (1 + 4 + 4 + 32 + 1 + CC_CERT + 16)

/* The length of the n-th (0-based) captured datagram of type ty, 0 if none. */
static size_t cap_len(const net *w, int ty, int n)
{
    for (int i = 0; i < w->ncap; i++)
        if (w->cap[i].data[0] == ty && n-- == 0)
            return w->cap[i].len;
    return 0;
}

static int cap_count(const net *w, int ty)
{
    int c = 0;
    for (int i = 0; i < w->ncap; i++)
        c += w->cap[i].data[0] == ty;
    return c;
}

/* A rekey and a re-contact after the keys expired: both IK messages carry
 * references, not certificates; the session comes up, data flows. */
static void test_certcache_short(void **state)
{
    (void)state;
    net w;
    net_init(&w, 3, NULL);
    established(&w);
    /* a first IK to a learned key carries the full certificates */
    mesh_session_learn_key(w.n[2].s, w.n[1].addr, w.n[1].key.pk);
    assert_int_equal(send_seq(&w, 2, 1, 9, 10), 0);
    deliver(&w);
    assert_int_equal(cap_len(&w, SESS_T_INIT_IK, 0), CC_IK1_FULL);
    assert_int_equal(cap_len(&w, SESS_T_RESP, 0), CC_IK2_FULL);
    /* rekey by time */
    w.ncap = 0;
    w.now += 121000;
    assert_int_equal(send_seq(&w, 0, 1, 1, 10), 0);
    deliver(&w);
    assert_int_equal(cap_count(&w, SESS_T_INIT_IK), 1);
    assert_int_equal(cap_len(&w, SESS_T_INIT_IK, 0), CC_IK1_SHORT);
    assert_int_equal(cap_len(&w, SESS_T_RESP, 0), CC_IK2_SHORT);
    assert_true(CC_IK1_SHORT + CC_IK2_SHORT < 307 + 223);
    assert_int_equal(stats(&w, 0).rekeys, 1);
    assert_int_equal(stats(&w, 0).certs_omitted, 1);
    assert_int_equal(stats(&w, 1).certs_omitted, 1);
    assert_int_equal(w.n[1].seen[w.n[1].nseen - 1], 1);
    assert_int_equal(send_seq(&w, 1, 0, 2, 10), 0);
    deliver(&w);
    assert_int_equal(w.n[0].seen[w.n[0].nseen - 1], 2);
    /* idle past reject_after: DOWN; the next contact is short too */
    run_until(&w, w.now + 200000);
    assert_int_equal(w.n[0].downs, 1);
    assert_int_equal(stats(&w, 0).sessions, 0);
    w.ncap = 0;
    int ups = w.n[1].ups;
    assert_int_equal(send_seq(&w, 0, 1, 3, 10), 0);
    deliver(&w);
    assert_int_equal(cap_len(&w, SESS_T_INIT_IK, 0), CC_IK1_SHORT);
    assert_int_equal(cap_len(&w, SESS_T_RESP, 0), CC_IK2_SHORT);
    assert_int_equal(w.n[1].ups, ups + 1);
    assert_string_equal(w.n[1].up_id, "cell-0");
    assert_int_equal(w.n[1].seen[w.n[1].nseen - 1], 3);
    assert_int_equal(send_seq(&w, 1, 0, 4, 10), 0);
    deliver(&w);
    assert_int_equal(w.n[0].seen[w.n[0].nseen - 1], 4);
    assert_int_equal(w.n[0].rejects + w.n[1].rejects, 0);
    net_free(&w);
}

/* The responder restarted (holds nothing): "certificate needed", then the
 * full initiation at once, which succeeds; no REJECT. */
static void test_certcache_forgot(void **state)
{
    (void)state;
    net w;
    net_init(&w, 2, NULL);
    established(&w);
    mesh_session_free(w.n[1].s);
    node_start(&w, 1, NULL, NULL, NULL);
    mesh_session_forget(w.n[0].s, w.n[1].addr);
    w.ncap = 0;
    int ups = w.n[1].ups;
    assert_int_equal(send_seq(&w, 0, 1, 5, 10), 0);
    deliver(&w);
    assert_int_equal(cap_count(&w, SESS_T_INIT_IK), 2);
    assert_int_equal(cap_len(&w, SESS_T_INIT_IK, 0), CC_IK1_SHORT);
    assert_int_equal(cap_len(&w, SESS_T_NEED, 0), SESS_NEED_PKT);
    /* ours in full; its certificate is still the one we name: omitted */
    assert_int_equal(cap_len(&w, SESS_T_INIT_IK, 1), CC_IK1_FULL_REF);
    assert_int_equal(cap_len(&w, SESS_T_RESP, 0), CC_IK2_SHORT);
    assert_int_equal(stats(&w, 1).certs_asked, 1);
    assert_int_equal(stats(&w, 0).certs_needed, 1);
    assert_int_equal(stats(&w, 0).handshakes_ok, 2);
    assert_int_equal(w.n[1].ups, ups + 1);
    assert_int_equal(w.n[1].seen[w.n[1].nseen - 1], 5);
    assert_int_equal(w.n[0].rejects + w.n[1].rejects, 0);
    /* a stray "certificate needed" (nothing pending) is refused */
    mesh_session_out o = w.cap[0];
    for (int i = 0; i < w.ncap; i++)
        if (w.cap[i].data[0] == SESS_T_NEED)
            o = w.cap[i];
    assert_int_equal(mesh_session_receive(w.n[0].s, w.now, w.n[1].addr, o.data, o.len), -ENOENT);
    /* the next rekey is short again */
    w.ncap = 0;
    w.now += 121000;
    assert_int_equal(send_seq(&w, 0, 1, 6, 10), 0);
    deliver(&w);
    assert_int_equal(cap_len(&w, SESS_T_INIT_IK, 0), CC_IK1_SHORT);
    assert_int_equal(cap_count(&w, SESS_T_NEED), 0);
    net_free(&w);
}

/* A held certificate revoked, or expired, since: refused on the short
 * handshake exactly as a fresh one. */
static void check_certcache_refused(bool revoke)
{
    net w;
    net_init(&w, 2, NULL);
    mesh_identity_revlist rl;
    assert_int_equal(mesh_identity_revlist_init(&rl, w.fleet.pk, 0), 0);
    mesh_session_free(w.n[1].s);
    node_start(&w, 1, NULL, NULL, &rl);
    if (!revoke) { /* cell-0's certificate ends in 2 hours */
        w.n[0].cert = make_cert(&w.fleet, w.n[0].key.pk, "cell-0", WALL - 3600, WALL + 7200);
        mesh_session_free(w.n[0].s);
        node_start(&w, 0, NULL, NULL, NULL);
    }
    established(&w);
    const mesh_identity_cert *c = &w.n[0].cert;
    if (revoke) {
        mesh_identity_revocation r = {.kind = MESH_REVOKE_SERIAL,
                                      .reason = MESH_REASON_KEY_COMPROMISE,
                                      .serial = c->serial,
                                      .time = WALL - 10,
                                      .until = c->not_after};
        memcpy(r.node_pk, c->node_pk, 32);
        char err[256];
        assert_int_equal(mesh_identity_revocation_sign(&r, &w.fleet, err, sizeof err), 0);
        assert_int_equal(mesh_identity_revlist_add(&rl, &r, WALL, err, sizeof err), 1);
    } else {
        w.wall += 7200 + 3600;
    }
    mesh_session_forget(w.n[0].s, w.n[1].addr);
    mesh_session_forget(w.n[1].s, w.n[0].addr);
    w.ncap = 0;
    assert_int_equal(send_seq(&w, 0, 1, 7, 10), 0);
    deliver(&w);
    assert_int_equal(cap_len(&w, SESS_T_INIT_IK, 0), CC_IK1_SHORT);
    assert_int_equal(cap_count(&w, SESS_T_RESP) + cap_count(&w, SESS_T_NEED), 0);
    assert_int_equal(w.n[1].rejects, 1);
    assert_non_null(strstr(w.n[1].reason, revoke ? "revoked" : "expired"));
    mesh_session_stats st = stats(&w, 1);
    assert_int_equal(revoke ? st.rejected_revoked : st.rejected_cert, 1);
    assert_int_equal(st.sessions, 0);
    assert_int_equal(w.n[1].datas, 0);
    net_free(&w);
    mesh_identity_revlist_free(&rl);
}

static void test_certcache_revoked_expired(void **state)
{
    (void)state;
    check_certcache_refused(true);
    check_certcache_refused(false);
}

/* The responder holds another certificate of the initiator's key (a renewed
 * one) than the one named: unknown, so asked for in full, never taken. */
static void test_certcache_other_cert(void **state)
{
    (void)state;
    net w;
    net_init(&w, 2, NULL);
    established(&w);
    struct mesh_session *old = w.n[0].s; /* holds_mine for cell-1, with the first certificate */
    mesh_identity_cert renewed = make_cert(&w.fleet, w.n[0].key.pk, "cell-0", WALL - 60, WALL + 86400);
    node_start(&w, 0, &renewed, NULL, NULL);
    assert_int_equal(send_seq(&w, 0, 1, 8, 10), 0); /* XX: cell-1 now holds the renewed one */
    deliver(&w);
    assert_int_equal(w.n[1].seen[w.n[1].nseen - 1], 8);
    mesh_session_free(w.n[0].s);
    w.n[0].s = old;
    mesh_session_forget(old, w.n[1].addr);
    w.ncap = 0;
    assert_int_equal(send_seq(&w, 0, 1, 9, 10), 0);
    deliver(&w);
    assert_int_equal(cap_len(&w, SESS_T_INIT_IK, 0), CC_IK1_SHORT);
    assert_int_equal(cap_count(&w, SESS_T_NEED), 1);
    assert_int_equal(stats(&w, 1).certs_asked, 1);
    assert_int_equal(cap_len(&w, SESS_T_INIT_IK, 1), CC_IK1_FULL_REF);
    assert_int_equal(w.n[1].seen[w.n[1].nseen - 1], 9);
    assert_int_equal(w.n[0].rejects + w.n[1].rejects, 0);
    net_free(&w);
}

static void test_replay_unit(void **state)
{
    (void)state;
    sess_replay r;
    sess_replay_init(&r);
    assert_true(sess_replay_check(&r, 0, true));
    assert_false(sess_replay_check(&r, 0, true));
    assert_true(sess_replay_check(&r, 5000, false)); /* judged, not recorded */
    assert_true(sess_replay_check(&r, 5000, true));
    assert_false(sess_replay_check(&r, 5000, true));
    assert_true(sess_replay_check(&r, 5000 - SESS_REPLAY_WINDOW, true));
    assert_false(sess_replay_check(&r, 5000 - SESS_REPLAY_WINDOW - 1, true));
    assert_true(sess_replay_check(&r, 4999, true));
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xx_then_data),
        cmocka_unit_test(test_ik_second_contact_and_learned),
        cmocka_unit_test(test_ik_fallback_to_xx),
        cmocka_unit_test(test_bad_certs),
        cmocka_unit_test(test_other_fleet_prologue),
        cmocka_unit_test(test_replay_window),
        cmocka_unit_test(test_bitflip),
        cmocka_unit_test(test_rekey_by_time),
        cmocka_unit_test(test_rekey_by_count),
        cmocka_unit_test(test_lost_handshake_packets),
        cmocka_unit_test(test_give_up),
        cmocka_unit_test(test_simultaneous),
        cmocka_unit_test(test_cookie_under_load),
        cmocka_unit_test(test_bad_mac1),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_three_cells),
        cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_replay_unit),
        cmocka_unit_test(test_refused_learns_nothing),
        cmocka_unit_test(test_refused_initiator_events),
        cmocka_unit_test(test_data_before_cert),
        cmocka_unit_test(test_rejoin_after_forget),
        cmocka_unit_test(test_rejoin_lost_initiation),
        cmocka_unit_test(test_rejoin_pending_handshake),
        cmocka_unit_test(test_rejoin_not_revoked),
        cmocka_unit_test(test_rejoin_flood),
        cmocka_unit_test(test_certcache_short),
        cmocka_unit_test(test_certcache_forgot),
        cmocka_unit_test(test_certcache_revoked_expired),
        cmocka_unit_test(test_certcache_other_cert),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
