/* session_stub.c: TEMPORARY stand-in for the secure channel (session.h) so
 * the cell builds and runs before branch `session` lands. PLAINTEXT: it
 * checks certificates (fleet, signature, validity, revocation) exchanged in a
 * hello, but nothing is encrypted or authenticated after it. Deleted when
 * the real session.c is merged.
 *
 * Wire: type(1) then  1 HELLO cert | 2 HELLO_ACK cert | 3 DATA payload. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mesh/session.h"

enum { T_HELLO = 1, T_ACK = 2, T_DATA = 3 };

typedef struct stub_q {
    struct stub_q *next;
    size_t len;
    uint8_t data[];
} stub_q;

typedef struct stub_peer {
    char addr[MESH_SESSION_ADDR_MAX + 1];
    bool up;
    mesh_identity_cert cert;
    uint64_t next_hello;
    int tries;
    stub_q *qh, *qt;
    size_t nq;
} stub_peer;

typedef struct stub_out {
    struct stub_out *next;
    mesh_session_out o;
} stub_out;

struct mesh_session {
    mesh_identity_key node;
    mesh_identity_cert cert;
    uint8_t fleet_pk[MESH_ID_PK_BYTES];
    const mesh_identity_revlist *revoked;
    int64_t (*wall_clock)(void *ctx);
    void *clock_ctx;
    uint32_t retry_ms;
    size_t max_peers, max_queued;
    stub_peer *peers;
    size_t npeers;
    stub_out *oh, *ot;
    mesh_session_event_fn fn;
    void *fn_ctx;
    mesh_session_stats st;
};

int mesh_session_new(const mesh_session_config *cfg, struct mesh_session **out, char *err, size_t errlen)
{
    if (!cfg || !cfg->node || !cfg->cert || !cfg->fleet_pk) {
        snprintf(err, errlen, "session: node, cert and fleet_pk are required");
        return -EINVAL;
    }
    struct mesh_session *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->node = *cfg->node;
    s->cert = *cfg->cert;
    memcpy(s->fleet_pk, cfg->fleet_pk, MESH_ID_PK_BYTES);
    s->revoked = cfg->revoked;
    s->wall_clock = cfg->wall_clock;
    s->clock_ctx = cfg->clock_ctx;
    s->retry_ms = cfg->handshake_retry_ms ? cfg->handshake_retry_ms : 5000;
    s->max_peers = cfg->max_peers ? cfg->max_peers : 16384;
    s->max_queued = cfg->max_queued ? cfg->max_queued : 64;
    *out = s;
    return 0;
}

static void drop_queue(stub_peer *p)
{
    while (p->qh) {
        stub_q *q = p->qh;
        p->qh = q->next;
        free(q);
    }
    p->qt = NULL;
    p->nq = 0;
}

void mesh_session_free(struct mesh_session *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->npeers; i++)
        drop_queue(&s->peers[i]);
    free(s->peers);
    while (s->oh) {
        stub_out *o = s->oh;
        s->oh = o->next;
        free(o);
    }
    mesh_identity_key_wipe(&s->node);
    free(s);
}

void mesh_session_on_event(struct mesh_session *s, mesh_session_event_fn fn, void *ctx)
{
    s->fn = fn;
    s->fn_ctx = ctx;
}

void mesh_session_learn_key(struct mesh_session *s, const char *addr, const uint8_t pk[MESH_ID_PK_BYTES])
{
    (void)s, (void)addr, (void)pk; /* the stub has no IK */
}

static stub_peer *find(struct mesh_session *s, const char *addr)
{
    for (size_t i = 0; i < s->npeers; i++)
        if (!strcmp(s->peers[i].addr, addr))
            return &s->peers[i];
    return NULL;
}

static stub_peer *get(struct mesh_session *s, const char *addr)
{
    stub_peer *p = find(s, addr);
    if (p || s->npeers >= s->max_peers || strlen(addr) > MESH_SESSION_ADDR_MAX || !addr[0])
        return p;
    stub_peer *v = realloc(s->peers, (s->npeers + 1) * sizeof *v);
    if (!v)
        return NULL;
    s->peers = v;
    p = &v[s->npeers++];
    memset(p, 0, sizeof *p);
    snprintf(p->addr, sizeof p->addr, "%s", addr);
    return p;
}

static void emit_out(struct mesh_session *s, const char *addr, uint8_t type, const uint8_t *d, size_t n)
{
    stub_out *o = calloc(1, sizeof *o);
    if (!o || n + 1 > MESH_SESSION_MTU) {
        free(o);
        return;
    }
    snprintf(o->o.addr, sizeof o->o.addr, "%s", addr);
    o->o.data[0] = type;
    if (n)
        memcpy(o->o.data + 1, d, n);
    o->o.len = n + 1;
    if (s->ot)
        s->ot->next = o;
    else
        s->oh = o;
    s->ot = o;
    s->st.packets_out++;
    s->st.bytes_out += o->o.len;
}

static void send_cert(struct mesh_session *s, const char *addr, uint8_t type)
{
    uint8_t buf[MESH_ID_CERT_MAX];
    char err[128];
    int n = mesh_identity_cert_encode(&s->cert, buf, sizeof buf, err, sizeof err);
    if (n > 0)
        emit_out(s, addr, type, buf, (size_t)n);
}

static void event(struct mesh_session *s, enum mesh_session_event_kind k, const stub_peer *p, const char *addr,
                  const uint8_t *d, size_t n, const char *reason)
{
    if (!s->fn)
        return;
    mesh_session_event ev = {.kind = k, .addr = addr, .node_id = p && p->up ? p->cert.node_id : "",
                             .pk = p && p->up ? p->cert.node_pk : NULL, .roles = p && p->up ? p->cert.roles : 0,
                             .data = d, .len = n, .reason = reason};
    s->fn(s->fn_ctx, &ev);
}

static void flush(struct mesh_session *s, stub_peer *p)
{
    while (p->qh) {
        stub_q *q = p->qh;
        p->qh = q->next;
        emit_out(s, p->addr, T_DATA, q->data, q->len);
        free(q);
    }
    p->qt = NULL;
    p->nq = 0;
}

int mesh_session_send(struct mesh_session *s, uint64_t now_ms, const char *addr, const uint8_t *data, size_t len,
                      char *err, size_t errlen)
{
    if (len > MESH_SESSION_MAX_PAYLOAD) {
        snprintf(err, errlen, "payload of %zu bytes over %d", len, MESH_SESSION_MAX_PAYLOAD);
        return -EMSGSIZE;
    }
    stub_peer *p = get(s, addr);
    if (!p) {
        snprintf(err, errlen, "bad address or too many peers: '%.64s'", addr);
        return -EINVAL;
    }
    if (p->up) {
        emit_out(s, addr, T_DATA, data, len);
        return 0;
    }
    if (p->nq >= s->max_queued) {
        snprintf(err, errlen, "queue for %s full", addr);
        return -ENOBUFS;
    }
    stub_q *q = malloc(sizeof *q + len);
    if (!q)
        return -ENOMEM;
    q->next = NULL;
    q->len = len;
    memcpy(q->data, data, len);
    if (p->qt)
        p->qt->next = q;
    else
        p->qh = q;
    p->qt = q;
    p->nq++;
    if (!p->tries) {
        p->tries = 1;
        p->next_hello = now_ms + s->retry_ms;
        send_cert(s, addr, T_HELLO);
    }
    return 0;
}

static int check_cert(struct mesh_session *s, const uint8_t *d, size_t n, mesh_identity_cert *c,
                      const char **reason)
{
    char err[256];
    if (mesh_identity_cert_decode(d, n, c, err, sizeof err) < 0) {
        s->st.rejected_malformed++;
        *reason = "malformed";
        return -EBADMSG;
    }
    int64_t now = s->wall_clock ? s->wall_clock(s->clock_ctx) : (int64_t)time(NULL);
    int rc = mesh_identity_cert_verify(c, s->fleet_pk, s->revoked, now, MESH_ID_SKEW_S, err, sizeof err);
    if (rc == -EKEYREVOKED) {
        s->st.rejected_revoked++;
        *reason = "revoked";
    } else if (rc < 0) {
        s->st.rejected_cert++;
        *reason = "certificate";
    }
    return rc;
}

int mesh_session_receive(struct mesh_session *s, uint64_t now_ms, const char *addr, const uint8_t *pkt, size_t len)
{
    s->st.packets_in++;
    s->st.bytes_in += len;
    if (len < 1 || len > MESH_SESSION_MTU || pkt[0] < T_HELLO || pkt[0] > T_DATA) {
        s->st.rejected_malformed++;
        return -EBADMSG;
    }
    if (pkt[0] == T_DATA) {
        stub_peer *p = find(s, addr);
        if (!p || !p->up) { /* a peer that still thinks it has a session: say hello again */
            s->st.rejected_forged++;
            stub_peer *q = get(s, addr);
            if (q && !q->tries) {
                q->tries = 1;
                q->next_hello = now_ms + s->retry_ms;
                send_cert(s, addr, T_HELLO);
            }
            return -EPERM;
        }
        event(s, MESH_SESSION_DATA, p, addr, pkt + 1, len - 1, NULL);
        return 0;
    }
    mesh_identity_cert c;
    const char *reason = "";
    int rc = check_cert(s, pkt + 1, len - 1, &c, &reason);
    if (rc < 0) {
        event(s, MESH_SESSION_REJECT, NULL, addr, NULL, 0, reason);
        return rc;
    }
    stub_peer *p = get(s, addr);
    if (!p)
        return -ENOMEM;
    bool was_up = p->up;
    p->cert = c;
    p->up = true;
    p->tries = 0;
    if (pkt[0] == T_HELLO)
        send_cert(s, addr, T_ACK);
    if (!was_up) {
        s->st.handshakes_ok++;
        event(s, MESH_SESSION_UP, p, addr, NULL, 0, NULL);
    }
    flush(s, p);
    return 0;
}

void mesh_session_tick(struct mesh_session *s, uint64_t now_ms)
{
    for (size_t i = 0; i < s->npeers; i++) {
        stub_peer *p = &s->peers[i];
        if (p->up || !p->tries || now_ms < p->next_hello)
            continue;
        if (p->tries >= 18) {
            p->tries = 0;
            drop_queue(p);
            s->st.handshakes_failed++;
            event(s, MESH_SESSION_DOWN, p, p->addr, NULL, 0, "handshake gave up");
            continue;
        }
        p->tries++;
        p->next_hello = now_ms + s->retry_ms;
        send_cert(s, p->addr, T_HELLO);
    }
}

uint64_t mesh_session_next_deadline(const struct mesh_session *s)
{
    uint64_t d = UINT64_MAX;
    for (size_t i = 0; i < s->npeers; i++)
        if (!s->peers[i].up && s->peers[i].tries && s->peers[i].next_hello < d)
            d = s->peers[i].next_hello;
    return d;
}

bool mesh_session_next_out(struct mesh_session *s, mesh_session_out *out)
{
    stub_out *o = s->oh;
    if (!o)
        return false;
    s->oh = o->next;
    if (!s->oh)
        s->ot = NULL;
    *out = o->o;
    free(o);
    return true;
}

void mesh_session_forget(struct mesh_session *s, const char *addr)
{
    stub_peer *p = find(s, addr);
    if (!p)
        return;
    drop_queue(p);
    size_t i = (size_t)(p - s->peers);
    s->peers[i] = s->peers[--s->npeers];
}

void mesh_session_get_stats(const struct mesh_session *s, mesh_session_stats *st)
{
    *st = s->st;
    st->sessions = 0;
    for (size_t i = 0; i < s->npeers; i++)
        st->sessions += s->peers[i].up;
}
