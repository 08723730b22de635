/* session.c: the mesh's secure channel (session.h): peers, Noise XX/IK
 * handshakes with certificates, keypairs (current, previous, next), rekey,
 * expiry, the retry timer and the outgoing datagram queue. The replay window
 * is in session_replay.c, cookies and MACs in session_cookie.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "mesh/session.h"
#include "mesh/session_int.h"

#define PROTO_XX "Noise_XX_25519_ChaChaPoly_SHA256"
#define PROTO_IK "Noise_IK_25519_ChaChaPoly_SHA256"
#define PROLOGUE_LABEL SESS_PROLOGUE_LABEL
#define OUT_MAX 8192                              /* datagrams waiting for next_out */
#define REJECT_MSGS (UINT64_MAX - (1ull << 13)) /* a keypair never sends past this counter */

typedef struct {
    bool live, initiator, confirmed;
    uint32_t local, remote;
    mesh_noise_cipher send, recv;
    uint64_t send_ctr, born_ms;
    sess_replay win;
} sess_keypair;

/* HS_CERT: an XX initiator that sent message 3 and waits for the
 * responder's certificate (its first transport packet) before it trusts the
 * new keys (kept in pend) with anything. */
enum { HS_NONE, HS_INIT, HS_RESP, HS_CERT };

typedef struct {
    uint8_t *data;
    size_t len;
} sess_qitem;

typedef struct {
    bool used, up, has_pk, has_cert, ik_failed;
    uint32_t slot;
    char addr[MESH_SESSION_ADDR_MAX + 1];
    uint8_t pk[MESH_ID_PK_BYTES], xpk[32];
    mesh_identity_cert cert;
    sess_keypair cur, prev, next;
    sess_keypair pend;  /* HS_CERT: the XX initiator's keys until the responder's certificate */
    uint8_t pend_rs[32]; /* HS_CERT: the responder's static key, for that certificate */
    int hs_state;
    bool hs_ik;
    mesh_noise_handshake hs;
    uint32_t hs_local, hs_remote;
    int tries;
    uint64_t hs_deadline;
    uint8_t last_mac1[SESS_MAC_LEN];
    uint64_t last_stamp;                    /* the newest IK initiation stamp seen from stamp_pk */
    uint8_t stamp_pk[MESH_ID_PK_BYTES];
    bool has_cookie;
    uint8_t cookie[SESS_COOKIE_LEN];
    uint64_t cookie_ms;
    sess_qitem *q;
    size_t qhead, qlen;
    /* -- rejoin: a handshake started by a transport packet for keys we no
     * longer hold (one try, no retries unless payloads wait for it) */
    bool unprompted;
    uint64_t unprompted_next; /* no unprompted initiation to this address before */
    /* -- certcache: the peer's certificate as it sent it, its reference; it
     * holds ours (a handshake completed), we must send ours in full next
     * (it said it does not hold it), our current IK initiation named its */
    uint8_t cert_raw[MESH_ID_CERT_MAX];
    size_t cert_raw_len;
    uint8_t ref[SESS_REF_LEN];
    bool holds_mine, full_next, hs_theirs_ref;
} sess_peer;

struct mesh_session {
    mesh_identity_key node;
    mesh_identity_cert cert;
    uint8_t cert_buf[MESH_ID_CERT_MAX];
    size_t cert_len;
    uint8_t my_ref[SESS_REF_LEN]; /* -- certcache: the reference of our certificate */
    uint8_t fleet_pk[MESH_ID_PK_BYTES];
    const mesh_identity_revlist *revoked;
    int64_t (*wall_clock)(void *ctx);
    void *clock_ctx;
    uint32_t rekey_ms, reject_ms, retry_ms, load;
    uint64_t rekey_msgs;
    size_t max_peers, max_queued;
    uint8_t xsk[32], xpk[32];
    uint8_t prologue[sizeof PROLOGUE_LABEL - 1 + MESH_ID_PK_BYTES];
    uint8_t mac1_xx[32], mac1_mine[32], ckey_xx[32], ckey_mine[32];
    uint8_t secret[32];
    uint64_t secret_ms;
    bool secret_set;
    uint64_t load_sec;
    uint64_t stamp; /* the last IK initiation stamp we sent */
    uint32_t load_count;
    uint64_t unp_sec; /* -- rejoin: the second unp_count counts unprompted initiations in */
    uint32_t unp_count;
    sess_peer **peers;
    size_t npeers;
    mesh_session_out *outq;
    size_t out_head, out_len, out_cap;
    mesh_session_event_fn fn;
    void *ctx;
    mesh_session_stats st;
};

/* ---- small helpers ---------------------------------------------------------- */
static int fail(int rc, char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
    return rc;
}

static int64_t wall_now(const struct mesh_session *s)
{
    return s->wall_clock ? s->wall_clock(s->clock_ctx) : (int64_t)time(NULL);
}

static bool addr_ok(const char *addr)
{
    if (!addr || !*addr)
        return false;
    size_t n = strnlen(addr, MESH_SESSION_ADDR_MAX + 1);
    if (n > MESH_SESSION_ADDR_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)addr[i] < 0x21 || addr[i] == 0x7f)
            return false;
    return true;
}

static void emit(struct mesh_session *s, enum mesh_session_event_kind kind, const sess_peer *p, const char *addr,
                 const uint8_t *data, size_t len, const char *reason)
{
    if (!s->fn)
        return;
    bool known = p && p->has_cert && kind != MESH_SESSION_REJECT;
    mesh_session_event ev = {.kind = kind,
                             .addr = p ? p->addr : addr,
                             .node_id = known ? p->cert.node_id : "",
                             .pk = known ? p->pk : NULL,
                             .roles = known ? p->cert.roles : 0,
                             .cert = known && kind == MESH_SESSION_UP ? &p->cert : NULL,
                             .data = data,
                             .len = len,
                             .reason = reason};
    s->fn(s->ctx, &ev);
}

static void reject(struct mesh_session *s, const sess_peer *p, const char *addr, const char *reason)
{
    emit(s, MESH_SESSION_REJECT, p, addr, NULL, 0, reason);
}

static int out_push(struct mesh_session *s, const char *addr, const uint8_t *data, size_t len)
{
    if (s->out_len == OUT_MAX)
        return -ENOBUFS;
    if (s->out_len == s->out_cap) { /* grow and unwrap the ring */
        size_t cap = s->out_cap ? 2 * s->out_cap : 16;
        mesh_session_out *q = malloc(cap * sizeof *q);
        if (!q)
            return -ENOMEM;
        for (size_t i = 0; i < s->out_len; i++)
            q[i] = s->outq[(s->out_head + i) % s->out_cap];
        free(s->outq);
        s->outq = q, s->out_cap = cap, s->out_head = 0;
    }
    mesh_session_out *o = &s->outq[(s->out_head + s->out_len++) % s->out_cap];
    snprintf(o->addr, sizeof o->addr, "%s", addr);
    memcpy(o->data, data, len);
    o->len = len;
    s->st.packets_out++;
    s->st.bytes_out += len;
    return 0;
}

/* ---- keypairs ------------------------------------------------------------------ */
static void kp_wipe(sess_keypair *kp)
{
    sodium_memzero(kp, sizeof *kp);
}

static bool kp_alive(const struct mesh_session *s, const sess_keypair *kp, uint64_t now)
{
    return kp->live && now - kp->born_ms < s->reject_ms;
}

static bool kp_can_send(const struct mesh_session *s, const sess_keypair *kp, uint64_t now)
{
    return kp_alive(s, kp, now) && kp->send_ctr < REJECT_MSGS;
}

/* ---- peers ----------------------------------------------------------------------- */
static sess_peer *peer_find(struct mesh_session *s, const char *addr)
{
    for (size_t i = 0; i < s->npeers; i++)
        if (s->peers[i]->used && strcmp(s->peers[i]->addr, addr) == 0)
            return s->peers[i];
    return NULL;
}

static sess_peer *peer_by_index(struct mesh_session *s, uint32_t idx)
{
    uint32_t slot = idx & (SESS_MAX_PEERS - 1);
    return slot < s->npeers && s->peers[slot]->used ? s->peers[slot] : NULL;
}

static sess_peer *peer_new(struct mesh_session *s, const char *addr)
{
    sess_peer *p = NULL;
    for (size_t i = 0; i < s->npeers && !p; i++)
        if (!s->peers[i]->used)
            p = s->peers[i];
    if (!p) {
        if (s->npeers == s->max_peers)
            return NULL;
        sess_peer **v = realloc(s->peers, (s->npeers + 1) * sizeof *v);
        if (!v)
            return NULL;
        s->peers = v;
        if (!(p = calloc(1, sizeof *p)))
            return NULL;
        p->slot = (uint32_t)s->npeers;
        s->peers[s->npeers++] = p;
    }
    uint32_t slot = p->slot;
    memset(p, 0, sizeof *p);
    p->slot = slot;
    p->used = true;
    snprintf(p->addr, sizeof p->addr, "%s", addr);
    return p;
}

static uint32_t new_index(const sess_peer *p)
{
    for (;;) {
        uint32_t idx = randombytes_uniform(1u << (32 - SESS_PEER_BITS)) << SESS_PEER_BITS | p->slot;
        if ((!p->cur.live || p->cur.local != idx) && (!p->prev.live || p->prev.local != idx) &&
            (!p->next.live || p->next.local != idx) && (p->hs_state == HS_NONE || p->hs_local != idx))
            return idx;
    }
}

/* The payloads waiting for a session: a ring of max_queued, allocated on first use. */
static void queue_clear(const struct mesh_session *s, sess_peer *p)
{
    for (size_t i = 0; i < p->qlen; i++) {
        sess_qitem *it = &p->q[(p->qhead + i) % s->max_queued];
        sodium_memzero(it->data, it->len);
        free(it->data);
    }
    free(p->q);
    p->q = NULL;
    p->qhead = p->qlen = 0;
}

static int queue_push(const struct mesh_session *s, sess_peer *p, const uint8_t *data, size_t len)
{
    if (p->qlen == s->max_queued)
        return -ENOBUFS;
    if (!p->q && !(p->q = calloc(s->max_queued, sizeof *p->q)))
        return -ENOMEM;
    uint8_t *d = malloc(len ? len : 1);
    if (!d)
        return -ENOMEM;
    if (len)
        memcpy(d, data, len);
    p->q[(p->qhead + p->qlen++) % s->max_queued] = (sess_qitem){d, len};
    return 0;
}

static void hs_drop(sess_peer *p)
{
    if (p->hs_state == HS_CERT) {
        kp_wipe(&p->pend);
        sodium_memzero(p->pend_rs, sizeof p->pend_rs);
    } else if (p->hs_state != HS_NONE) {
        mesh_noise_handshake_wipe(&p->hs);
    }
    p->hs_state = HS_NONE;
}

static void peer_reset(const struct mesh_session *s, sess_peer *p)
{
    hs_drop(p);
    kp_wipe(&p->cur);
    kp_wipe(&p->prev);
    kp_wipe(&p->next);
    queue_clear(s, p);
    p->up = false;
    p->tries = 0;
    p->has_cookie = false;
    p->unprompted = false;
}

/* ---- certificates ----------------------------------------------------------------- */
/* The peer's certificate from its handshake payload, checked against the
 * fleet, the clock, the revocation list and the handshake's static key rs. */
int sess_cert_check(const uint8_t fleet_pk[MESH_ID_PK_BYTES], const mesh_identity_revlist *rl, int64_t now,
                    const uint8_t *buf, size_t len, const uint8_t *rs, mesh_identity_cert *c, char *why,
                    size_t whylen)
{
    char err[256];
    int rc = mesh_identity_cert_decode(buf, len, c, err, sizeof err);
    if (rc == 0)
        rc = mesh_identity_cert_verify(c, fleet_pk, rl, now, MESH_ID_SKEW_S, err, sizeof err);
    uint8_t x[32];
    if (rc == 0 && (mesh_identity_x25519_pk(c->node_pk, x) || !rs || sodium_memcmp(x, rs, 32))) {
        snprintf(err, sizeof err, "certificate of '%s' binds another key than the handshake's static key",
                 c->node_id);
        rc = -EKEYREJECTED;
    }
    if (rc)
        snprintf(why, whylen, "%s", err);
    return rc;
}

static int cert_check(struct mesh_session *s, const uint8_t *buf, size_t len, const uint8_t *rs,
                      mesh_identity_cert *c, char *why, size_t whylen)
{
    int rc = sess_cert_check(s->fleet_pk, s->revoked, wall_now(s), buf, len, rs, c, why, whylen);
    if (rc == 0)
        return 0;
    if (rc == -EKEYREVOKED)
        s->st.rejected_revoked++;
    else
        s->st.rejected_cert++;
    s->st.handshakes_failed++;
    return rc;
}

/* -- certcache: the short reference of an encoded certificate. */
static void cert_ref(uint64_t serial, const uint8_t *raw, size_t len, uint8_t out[SESS_REF_LEN])
{
    uint8_t h[16];
    crypto_generichash(h, sizeof h, raw, len, NULL, 0);
    sess_put64(out, serial);
    memcpy(out + 8, h, SESS_REF_LEN - 8);
}

/* ---- handshakes ------------------------------------------------------------------------ */
static int hs_init(const struct mesh_session *s, mesh_noise_handshake *hs, bool ik, bool initiator,
                   const uint8_t *rs)
{
    mesh_noise_config c = {.protocol = ik ? PROTO_IK : PROTO_XX,
                           .initiator = initiator,
                           .prologue = s->prologue,
                           .prologue_len = sizeof s->prologue,
                           .s_priv = s->xsk,
                           .s_pub = s->xpk,
                           .rs = rs};
    return mesh_noise_handshake_init(hs, &c, NULL, 0);
}

/* An IK initiation carries a stamp (WireGuard's TAI64N, simplified): wall
 * seconds << 20 plus a count, strictly increasing from one sender, so a
 * replayed initiation is refused. */
static void next_stamp(struct mesh_session *s, uint8_t out[8])
{
    int64_t w = wall_now(s);
    uint64_t base = w > 0 ? (uint64_t)w << 20 : 0;
    s->stamp = base > s->stamp ? base : s->stamp + 1;
    sess_put64(out, s->stamp);
}

/* true when the IK initiation stamped st from the key pk is not newer than the last. */
static bool stamp_replayed(const sess_peer *p, const uint8_t *pk, uint64_t st)
{
    return p && p->last_stamp && sodium_memcmp(p->stamp_pk, pk, MESH_ID_PK_BYTES) == 0 && st <= p->last_stamp;
}

/* The IK initiation's payload: stamp | flags | [the reference of the
 * responder's certificate we hold] | our certificate, or its reference when
 * the responder holds it (a handshake with it completed, and it has not
 * asked for it since). Its length. */
static size_t ik_payload(struct mesh_session *s, sess_peer *p, uint8_t *pl)
{
    next_stamp(s, pl);
    size_t off = 9;
    pl[8] = 0;
    p->hs_theirs_ref = p->has_cert && p->cert_raw_len;
    if (p->hs_theirs_ref) {
        pl[8] |= SESS_IK_THEIRS_REF;
        memcpy(pl + off, p->ref, SESS_REF_LEN);
        off += SESS_REF_LEN;
    }
    if (p->holds_mine && !p->full_next) {
        pl[8] |= SESS_IK_MINE_REF;
        memcpy(pl + off, s->my_ref, SESS_REF_LEN);
        s->st.certs_omitted++;
        return off + SESS_REF_LEN;
    }
    memcpy(pl + off, s->cert_buf, s->cert_len);
    return off + s->cert_len;
}

/* Writes a fresh initiation (new ephemeral, IK when the key is known and IK
 * has not just failed) with mac1 and, holding a fresh cookie, mac2. */
static int hs_start(struct mesh_session *s, sess_peer *p, uint64_t now)
{
    hs_drop(p);
    bool ik = p->has_pk && !p->ik_failed;
    if (hs_init(s, &p->hs, ik, true, ik ? p->xpk : NULL))
        return -EPROTO;
    p->hs_state = HS_INIT;
    p->hs_ik = ik;
    p->hs_local = new_index(p);
    uint8_t pkt[MESH_SESSION_MTU];
    size_t n = 0;
    pkt[0] = ik ? SESS_T_INIT_IK : SESS_T_INIT_XX;
    sess_put32(pkt + 1, p->hs_local);
    uint8_t pl[9 + 2 * SESS_REF_LEN + MESH_ID_CERT_MAX];
    size_t plen = ik ? ik_payload(s, p, pl) : 0;
    if (mesh_noise_write_message(&p->hs, ik ? pl : NULL, plen, pkt + 5,
                                 sizeof pkt - 5 - 2 * SESS_MAC_LEN, &n, NULL, 0)) {
        hs_drop(p);
        return -EPROTO;
    }
    n += 5;
    uint8_t key[32];
    if (ik)
        sess_mac_key("mac1----", p->xpk, key);
    else
        memcpy(key, s->mac1_xx, 32);
    sess_mac(key, 32, pkt, n, pkt + n);
    memcpy(p->last_mac1, pkt + n, SESS_MAC_LEN);
    n += SESS_MAC_LEN;
    if (p->has_cookie && now - p->cookie_ms < SESS_COOKIE_SECRET_MS - s->retry_ms)
        sess_mac(p->cookie, SESS_COOKIE_LEN, pkt, n, pkt + n);
    else
        memset(pkt + n, 0, SESS_MAC_LEN);
    n += SESS_MAC_LEN;
    p->tries++;
    p->hs_deadline = now + s->retry_ms;
    return out_push(s, p->addr, pkt, n);
}

static void hs_begin(struct mesh_session *s, sess_peer *p, uint64_t now)
{
    if (p->hs_state != HS_NONE)
        return;
    p->tries = 0;
    p->unprompted = false;
    hs_start(s, p, now);
}

/* ---- transport ------------------------------------------------------------------------------ */
static int send_typed(struct mesh_session *s, sess_peer *p, sess_keypair *kp, uint8_t type, const uint8_t *data,
                      size_t len)
{
    uint8_t pkt[MESH_SESSION_MTU];
    size_t clen = 0;
    pkt[0] = type;
    sess_put32(pkt + 1, kp->remote);
    sess_put64(pkt + 5, kp->send_ctr);
    mesh_noise_cipher_set_nonce(&kp->send, kp->send_ctr);
    if (mesh_noise_cipher_encrypt(&kp->send, pkt, SESS_DATA_HDR, data, len, pkt + SESS_DATA_HDR,
                                  sizeof pkt - SESS_DATA_HDR, &clen, NULL, 0))
        return -EOVERFLOW;
    kp->send_ctr++;
    return out_push(s, p->addr, pkt, SESS_DATA_HDR + clen);
}

static int send_data(struct mesh_session *s, sess_peer *p, sess_keypair *kp, const uint8_t *data, size_t len)
{
    return send_typed(s, p, kp, SESS_T_DATA, data, len);
}

/* Starts a rekey when the current keys are old or worn (the side that
 * initiated them first; the other a retry period later). */
static void maybe_rekey(struct mesh_session *s, sess_peer *p, uint64_t now)
{
    sess_keypair *kp = &p->cur;
    if (p->hs_state != HS_NONE || !kp->live)
        return;
    uint64_t age = now - kp->born_ms, limit = s->rekey_ms + (kp->initiator ? 0 : s->retry_ms);
    if (age >= limit || kp->send_ctr >= s->rekey_msgs)
        hs_begin(s, p, now);
}

/* Sends what waits, once the current keys can send; true when it sent anything. */
static bool queue_flush(struct mesh_session *s, sess_peer *p, uint64_t now)
{
    bool sent = false;
    while (p->qlen && kp_can_send(s, &p->cur, now)) {
        sess_qitem it = p->q[p->qhead];
        p->qhead = (p->qhead + 1) % s->max_queued;
        p->qlen--;
        send_data(s, p, &p->cur, it.data, it.len);
        sodium_memzero(it.data, it.len);
        free(it.data);
        sent = true;
    }
    return sent;
}

/* New keys from a completed handshake become the current ones; the old
 * current ones still receive (in flight) until they expire. */
static void install(sess_peer *p, sess_keypair *kp)
{
    kp_wipe(&p->prev);
    p->prev = p->cur;
    p->cur = *kp;
    sodium_memzero(kp, sizeof *kp);
}

static void learn_cert(sess_peer *p, const mesh_identity_cert *c, const uint8_t *rs, const uint8_t *raw,
                       size_t rawlen)
{
    if (rawlen > sizeof p->cert_raw)
        rawlen = 0; /* cannot happen: it decoded */
    memmove(p->cert_raw, raw, rawlen); /* raw may be p->cert_raw itself (a held certificate) */
    p->cert_raw_len = rawlen;
    cert_ref(c->serial, p->cert_raw, rawlen, p->ref);
    p->cert = *c;
    p->has_cert = true;
    memcpy(p->pk, c->node_pk, MESH_ID_PK_BYTES);
    memcpy(p->xpk, rs, 32);
    p->has_pk = true;
    p->ik_failed = false;
}

/* A handshake completed on this side: counts it, reports UP on the first. */
static void completed(struct mesh_session *s, sess_peer *p)
{
    s->st.handshakes_ok++;
    p->tries = 0;
    p->holds_mine = true; /* -- certcache: it checked ours */
    p->full_next = false;
    p->unprompted = false;
    if (p->up) {
        s->st.rekeys++;
        return;
    }
    p->up = true;
    emit(s, MESH_SESSION_UP, p, NULL, NULL, 0, NULL);
}

static int split_into(mesh_noise_handshake *hs, sess_keypair *kp, bool initiator)
{
    mesh_noise_cipher c1, c2;
    if (mesh_noise_split(hs, &c1, &c2, NULL, 0))
        return -EPROTO;
    kp->send = initiator ? c1 : c2;
    kp->recv = initiator ? c2 : c1;
    sodium_memzero(&c1, sizeof c1);
    sodium_memzero(&c2, sizeof c2);
    kp->live = true;
    kp->initiator = initiator;
    sess_replay_init(&kp->win);
    return 0;
}

/* ---- receiving handshakes ------------------------------------------------------------- */
static void cookie_secret(struct mesh_session *s, uint64_t now)
{
    if (!s->secret_set || now - s->secret_ms >= SESS_COOKIE_SECRET_MS) {
        randombytes_buf(s->secret, sizeof s->secret);
        s->secret_ms = now;
        s->secret_set = true;
    }
}

/* Under load, an initiation without a valid mac2 gets a cookie reply
 * instead of DH work: true when it was answered that way. */
static bool under_load_cookie(struct mesh_session *s, uint64_t now, const char *addr, const uint8_t *pkt,
                              size_t len, bool ik)
{
    if (now / 1000 != s->load_sec)
        s->load_sec = now / 1000, s->load_count = 0;
    if (++s->load_count <= s->load)
        return false;
    cookie_secret(s, now);
    uint8_t cookie[SESS_COOKIE_LEN], mac2[SESS_MAC_LEN];
    sess_cookie_of(s->secret, addr, cookie);
    sess_mac(cookie, sizeof cookie, pkt, len - SESS_MAC_LEN, mac2);
    if (sodium_memcmp(mac2, pkt + len - SESS_MAC_LEN, SESS_MAC_LEN) == 0)
        return false;
    uint8_t reply[SESS_COOKIE_PKT];
    sess_cookie_seal(ik ? s->ckey_mine : s->ckey_xx, sess_get32(pkt + 1), pkt + len - 2 * SESS_MAC_LEN, cookie,
                     reply);
    if (out_push(s, addr, reply, sizeof reply) == 0)
        s->st.cookies_sent++;
    return true;
}

/* Simultaneous initiation: both first messages show their ephemeral key in
 * clear, so both sides agree that the larger one stays the initiator. True
 * when we keep ours and ignore theirs (when theirs wins, ours is dropped
 * only once theirs has been read: what waits goes over its session). */
static bool tie_keep_ours(const sess_peer *p, const uint8_t *their_e)
{
    return p && p->hs_state == HS_INIT && memcmp(p->hs.e.pub, their_e, 32) > 0;
}

/* -- certcache: the initiator's certificate from an IK payload (stamp, flags,
 * ...): in full, or by reference to the one we hold for that address (then
 * checked again exactly as a fresh one: fleet, clock, revocation, static
 * key). 1 when it names one we do not hold (ask for it), -EBADMSG when
 * malformed, else cert_check's result. *mine_held: it holds ours. */
static int ik_init_cert(struct mesh_session *s, sess_peer *p, const uint8_t *pl, size_t plen, const uint8_t *rs,
                        mesh_identity_cert *c, const uint8_t **raw, size_t *rawlen, bool *mine_held, char *why,
                        size_t whylen)
{
    unsigned flags = pl[8];
    size_t off = 9;
    *mine_held = false;
    if (flags & ~(SESS_IK_MINE_REF | SESS_IK_THEIRS_REF))
        return -EBADMSG;
    if (flags & SESS_IK_THEIRS_REF) {
        if (plen < off + SESS_REF_LEN)
            return -EBADMSG;
        *mine_held = sodium_memcmp(pl + off, s->my_ref, SESS_REF_LEN) == 0;
        off += SESS_REF_LEN;
    }
    if (flags & SESS_IK_MINE_REF) {
        if (plen != off + SESS_REF_LEN)
            return -EBADMSG;
        if (!p || !p->has_cert || !p->cert_raw_len || sodium_memcmp(p->ref, pl + off, SESS_REF_LEN))
            return 1; /* not held, or another one: never taken as valid */
        *raw = p->cert_raw;
        *rawlen = p->cert_raw_len;
    } else {
        *raw = pl + off;
        *rawlen = plen - off;
    }
    return cert_check(s, *raw, *rawlen, rs, c, why, whylen);
}

/* -- certcache: "certificate needed", to an IK initiation whose reference we
 * cannot resolve: bound to its sender index and mac1. */
static void ask_cert(struct mesh_session *s, const char *addr, const uint8_t *pkt, size_t len)
{
    uint8_t out[SESS_NEED_PKT];
    out[0] = SESS_T_NEED;
    memcpy(out + 1, pkt + 1, 4);
    memcpy(out + 5, pkt + len - 2 * SESS_MAC_LEN, SESS_MAC_LEN);
    s->st.certs_asked++;
    out_push(s, addr, out, sizeof out);
}

static int recv_init(struct mesh_session *s, uint64_t now, const char *addr, const uint8_t *pkt, size_t len)
{
    bool ik = pkt[0] == SESS_T_INIT_IK;
    size_t min = 5 + 32 + 2 * SESS_MAC_LEN + (ik ? 48 + 16 : 0);
    if (len < min || (!ik && len != min)) {
        s->st.rejected_malformed++;
        return -EBADMSG;
    }
    uint8_t mac1[SESS_MAC_LEN];
    sess_mac(ik ? s->mac1_mine : s->mac1_xx, 32, pkt, len - 2 * SESS_MAC_LEN, mac1);
    if (sodium_memcmp(mac1, pkt + len - 2 * SESS_MAC_LEN, SESS_MAC_LEN)) {
        s->st.dropped_mac1++; /* silently */
        return -EBADMSG;
    }
    if (under_load_cookie(s, now, addr, pkt, len, ik))
        return 0;
    sess_peer *p = peer_find(s, addr);
    if (tie_keep_ours(p, pkt + 5))
        return 0;
    mesh_noise_handshake hs;
    uint8_t pl[MESH_SESSION_MTU], out[MESH_SESSION_MTU];
    size_t plen = 0, olen = 0;
    mesh_identity_cert c;
    char why[300];
    int rc = hs_init(s, &hs, ik, false, NULL);
    if (rc == 0 && mesh_noise_read_message(&hs, pkt + 5, len - 5 - 2 * SESS_MAC_LEN, pl, sizeof pl, &plen, NULL, 0)) {
        s->st.rejected_forged++;
        s->st.handshakes_failed++;
        reject(s, p, addr, "handshake initiation does not authenticate (for another key or fleet, or forged)");
        rc = -EBADMSG;
    }
    const uint8_t *rs = rc == 0 && ik ? mesh_noise_remote_static(&hs) : NULL;
    const uint8_t *raw = NULL;
    size_t rawlen = 0;
    bool mine_held = false;
    if (rc == 0 && ik && plen < 9) {
        s->st.rejected_malformed++;
        rc = -EBADMSG;
    }
    if (rc == 0 && ik) {
        rc = ik_init_cert(s, p, pl, plen, rs, &c, &raw, &rawlen, &mine_held, why, sizeof why);
        if (rc == 1) { /* a reference we cannot resolve: ask, no REJECT */
            ask_cert(s, addr, pkt, len);
            mesh_noise_handshake_wipe(&hs);
            sodium_memzero(pl, sizeof pl);
            return 0;
        }
        if (rc == -EBADMSG) {
            s->st.rejected_malformed++;
            reject(s, p, addr, "IK initiation payload malformed (bad certificate reference)");
        } else if (rc < 0) {
            reject(s, p, addr, why);
        }
    }
    if (rc == 0 && ik && stamp_replayed(p, c.node_pk, sess_get64(pl))) {
        s->st.rejected_replay++;
        reject(s, p, addr, "replayed handshake initiation (stamp not newer than the last)");
        rc = -EALREADY;
    }
    if (rc == 0 && !p && !(p = peer_new(s, addr)))
        rc = -ENOBUFS;
    out[0] = SESS_T_RESP;
    uint32_t local = rc == 0 ? new_index(p) : 0;
    sess_put32(out + 1, local);
    sess_put32(out + 5, sess_get32(pkt + 1));
    /* IK: the initiator's certificate was checked above, ours may go now; XX:
     * nothing of ours until its certificate (message 3) has been checked */
    uint8_t rp[1 + MESH_ID_CERT_MAX]; /* IK msg2 payload: flag | our certificate unless it holds it */
    rp[0] = mine_held ? SESS_IK2_OMITTED : 0;
    memcpy(rp + 1, s->cert_buf, s->cert_len);
    if (rc == 0 && mesh_noise_write_message(&hs, ik ? rp : NULL, ik ? (mine_held ? 1 : 1 + s->cert_len) : 0,
                                            out + 9, sizeof out - 9, &olen, NULL, 0))
        rc = -EPROTO;
    if (rc == 0 && ik && mine_held)
        s->st.certs_omitted++;
    if (rc == 0 && !ik) { /* XX: wait for message 3 */
        hs_drop(p);
        p->hs = hs;
        p->hs_state = HS_RESP;
        p->hs_local = local;
        p->hs_remote = sess_get32(pkt + 1);
        p->hs_deadline = now + s->retry_ms;
    } else if (rc == 0) { /* IK: keys now, used to send once the initiator confirms them */
        sess_keypair kp = {.local = local, .remote = sess_get32(pkt + 1), .born_ms = now};
        if (split_into(&hs, &kp, false) == 0) {
            if (p->hs_state == HS_INIT)
                hs_drop(p); /* theirs won the tie */
            kp_wipe(&p->next);
            p->next = kp;
            learn_cert(p, &c, rs, raw, rawlen);
            p->last_stamp = sess_get64(pl);
            memcpy(p->stamp_pk, c.node_pk, MESH_ID_PK_BYTES);
        }
        sodium_memzero(&kp, sizeof kp);
    }
    if (rc == 0)
        out_push(s, addr, out, 9 + olen);
    mesh_noise_handshake_wipe(&hs); /* XX kept a copy in p */
    sodium_memzero(pl, sizeof pl);
    return rc;
}

/* The handshake a response or message 3 continues, by receiver index. */
static sess_peer *pending(struct mesh_session *s, const uint8_t *pkt, int state)
{
    sess_peer *p = peer_by_index(s, sess_get32(pkt + 5));
    return p && p->hs_state == state && p->hs_local == sess_get32(pkt + 5) ? p : NULL;
}

/* Reads a handshake message into a copy of the pending state (a forged one
 * leaves it as it was) and checks the certificate it carries (with_cert), or
 * that it carries nothing (XX message 2). */
/* -- certcache: IK message 2's payload: flag | certificate, or flag alone when
 * it omitted its certificate because our initiation named it (then the one
 * we hold is checked again as a fresh one). Sets raw and rawlen. */
static int ik_resp_cert(struct mesh_session *s, sess_peer *p, const uint8_t *pl, size_t plen, const uint8_t *rs,
                        mesh_identity_cert *c, uint8_t *raw, size_t *rawlen, char *why, size_t whylen)
{
    if (plen == 1 && pl[0] == SESS_IK2_OMITTED && p->hs_theirs_ref && p->cert_raw_len) {
        memcpy(raw, p->cert_raw, p->cert_raw_len);
        *rawlen = p->cert_raw_len;
    } else if (plen > 1 && pl[0] == 0 && plen - 1 <= MESH_ID_CERT_MAX) {
        memcpy(raw, pl + 1, plen - 1);
        *rawlen = plen - 1;
    } else {
        s->st.rejected_malformed++;
        s->st.handshakes_failed++;
        snprintf(why, whylen, "IK response omits a certificate we did not name, or is malformed");
        return -EBADMSG;
    }
    return cert_check(s, raw, *rawlen, rs, c, why, whylen);
}

static int read_checked(struct mesh_session *s, sess_peer *p, const uint8_t *msg, size_t len,
                        mesh_noise_handshake *tmp, mesh_identity_cert *c, bool with_cert, uint8_t *raw,
                        size_t *rawlen)
{
    uint8_t pl[MESH_SESSION_MTU];
    size_t plen = 0;
    char why[300];
    *tmp = p->hs;
    int rc = 0;
    if (mesh_noise_read_message(tmp, msg, len, pl, sizeof pl, &plen, NULL, 0)) {
        s->st.rejected_forged++;
        s->st.handshakes_failed++;
        reject(s, p, NULL, "handshake message does not authenticate (another fleet, or forged)");
        rc = -EBADMSG;
    } else if (!with_cert && plen) {
        s->st.rejected_malformed++;
        s->st.handshakes_failed++;
        reject(s, p, NULL, "XX message 2 carries a payload (an older protocol version?)");
        rc = -EBADMSG;
    } else if (with_cert && p->hs_state == HS_INIT && p->hs_ik) {
        if ((rc = ik_resp_cert(s, p, pl, plen, mesh_noise_remote_static(tmp), c, raw, rawlen, why, sizeof why)) < 0)
            reject(s, p, NULL, why);
    } else if (with_cert && (rc = cert_check(s, pl, plen, mesh_noise_remote_static(tmp), c, why, sizeof why)) < 0) {
        reject(s, p, NULL, why);
    } else if (with_cert) {
        memcpy(raw, pl, plen); /* decoded, so at most MESH_ID_CERT_MAX */
        *rawlen = plen;
    }
    if (rc)
        mesh_noise_handshake_wipe(tmp);
    sodium_memzero(pl, sizeof pl);
    return rc;
}

/* The XX initiator after message 3: the new keys wait in pend until the
 * responder's certificate arrives on them (recv_cert), at most a retry period. */
static void await_cert(struct mesh_session *s, sess_peer *p, mesh_noise_handshake *tmp, sess_keypair *kp,
                       uint64_t now)
{
    memcpy(p->pend_rs, mesh_noise_remote_static(tmp), 32);
    mesh_noise_handshake_wipe(tmp);
    uint32_t local = p->hs_local;
    hs_drop(p);
    p->pend = *kp;
    sodium_memzero(kp, sizeof *kp);
    p->hs_state = HS_CERT;
    p->hs_local = local;
    p->hs_deadline = now + s->retry_ms;
}

static int recv_resp(struct mesh_session *s, uint64_t now, const uint8_t *pkt, size_t len)
{
    sess_peer *p = len >= 9 + 32 + 16 ? pending(s, pkt, HS_INIT) : NULL;
    if (!p) {
        s->st.rejected_malformed++;
        return -ENOENT;
    }
    mesh_noise_handshake tmp;
    mesh_identity_cert c;
    uint8_t raw[MESH_ID_CERT_MAX];
    size_t rawlen = 0;
    bool xx = !p->hs_ik;
    int rc = read_checked(s, p, pkt + 9, len - 9, &tmp, &c, !xx, raw, &rawlen);
    if (rc)
        return rc;
    uint8_t out[MESH_SESSION_MTU];
    size_t olen = 0;
    out[0] = SESS_T_FINAL;
    sess_put32(out + 1, p->hs_local);
    sess_put32(out + 5, sess_get32(pkt + 1));
    sess_keypair kp = {.local = p->hs_local, .remote = sess_get32(pkt + 1), .born_ms = now, .confirmed = !xx};
    if ((xx && mesh_noise_write_message(&tmp, s->cert_buf, s->cert_len, out + 9, sizeof out - 9, &olen, NULL, 0)) ||
        split_into(&tmp, &kp, true)) {
        mesh_noise_handshake_wipe(&tmp);
        sodium_memzero(&kp, sizeof kp);
        return -EPROTO;
    }
    if (xx) {
        await_cert(s, p, &tmp, &kp, now);
        return out_push(s, p->addr, out, 9 + olen);
    }
    learn_cert(p, &c, mesh_noise_remote_static(&tmp), raw, rawlen);
    mesh_noise_handshake_wipe(&tmp);
    hs_drop(p);
    install(p, &kp);
    completed(s, p);
    if (!queue_flush(s, p, now) && kp_can_send(s, &p->cur, now))
        send_data(s, p, &p->cur, NULL, 0); /* a keepalive confirms the IK responder's keys */
    return 0;
}

static int recv_final(struct mesh_session *s, uint64_t now, const uint8_t *pkt, size_t len)
{
    sess_peer *p = len >= 9 + 48 + 16 ? pending(s, pkt, HS_RESP) : NULL;
    if (!p) {
        s->st.rejected_malformed++;
        return -ENOENT;
    }
    mesh_noise_handshake tmp;
    mesh_identity_cert c;
    uint8_t raw[MESH_ID_CERT_MAX];
    size_t rawlen = 0;
    int rc = read_checked(s, p, pkt + 9, len - 9, &tmp, &c, true, raw, &rawlen);
    if (rc)
        return rc;
    sess_keypair kp = {.local = p->hs_local, .remote = p->hs_remote, .born_ms = now, .confirmed = true};
    if (split_into(&tmp, &kp, false)) {
        mesh_noise_handshake_wipe(&tmp);
        return -EPROTO;
    }
    learn_cert(p, &c, mesh_noise_remote_static(&tmp), raw, rawlen);
    mesh_noise_handshake_wipe(&tmp);
    hs_drop(p);
    install(p, &kp);
    completed(s, p);
    /* the initiator's certificate is good: ours goes first on the new keys
     * (it also confirms them to the initiator), then what waits */
    send_typed(s, p, &p->cur, SESS_T_CERT, s->cert_buf, s->cert_len);
    queue_flush(s, p, now);
    return 0;
}

/* The XX responder's certificate, its first transport packet: checked
 * against the static key of the handshake; only then are the keys used. A
 * refused one leaves the keys dropped until the retry deadline. */
static int recv_cert(struct mesh_session *s, uint64_t now, const uint8_t *pkt, size_t len)
{
    uint32_t idx = len >= SESS_DATA_HDR + MESH_NOISE_TAGLEN ? sess_get32(pkt + 1) : 0;
    sess_peer *p = idx ? peer_by_index(s, idx) : NULL;
    if (!p || p->hs_state != HS_CERT || !p->pend.live || p->pend.local != idx) {
        s->st.rejected_malformed++;
        return -ENOENT;
    }
    uint64_t ctr = sess_get64(pkt + 5);
    uint8_t pl[MESH_SESSION_MTU];
    size_t plen = 0;
    mesh_noise_cipher c = p->pend.recv;
    mesh_noise_cipher_set_nonce(&c, ctr);
    int rc = mesh_noise_cipher_decrypt(&c, pkt, SESS_DATA_HDR, pkt + SESS_DATA_HDR, len - SESS_DATA_HDR, pl,
                                       sizeof pl, &plen, NULL, 0);
    sodium_memzero(&c, sizeof c);
    if (rc) {
        s->st.rejected_forged++;
        reject(s, p, NULL, "forged or corrupted certificate packet");
        return -EBADMSG;
    }
    if (!sess_replay_check(&p->pend.win, ctr, true)) {
        s->st.rejected_replay++;
        reject(s, p, NULL, "replayed certificate packet");
        return -EALREADY;
    }
    mesh_identity_cert cert;
    char why[300];
    rc = cert_check(s, pl, plen, p->pend_rs, &cert, why, sizeof why);
    if (rc) {
        sodium_memzero(pl, sizeof pl);
        reject(s, p, NULL, why);
        kp_wipe(&p->pend); /* stays HS_CERT: retried at the deadline */
        return rc;
    }
    learn_cert(p, &cert, p->pend_rs, pl, plen);
    sodium_memzero(pl, sizeof pl);
    p->pend.confirmed = true;
    sess_keypair kp = p->pend;
    hs_drop(p);
    install(p, &kp);
    completed(s, p);
    queue_flush(s, p, now);
    return 0;
}

/* -- certcache: "certificate needed" for our pending IK initiation (same
 * index and mac1): the responder does not hold our certificate; the full
 * initiation goes at once. Counted, no REJECT. */
static int recv_need(struct mesh_session *s, uint64_t now, const uint8_t *pkt, size_t len)
{
    sess_peer *p = len == SESS_NEED_PKT ? peer_by_index(s, sess_get32(pkt + 1)) : NULL;
    if (!p || p->hs_state != HS_INIT || !p->hs_ik || p->hs_local != sess_get32(pkt + 1) || p->full_next ||
        !p->holds_mine || sodium_memcmp(p->last_mac1, pkt + 5, SESS_MAC_LEN)) {
        s->st.rejected_malformed++;
        return -ENOENT;
    }
    s->st.certs_needed++;
    p->holds_mine = false;
    p->full_next = true;
    int tries = p->tries;
    hs_start(s, p, now);
    p->tries = tries; /* not a retry: the same try, in full */
    return 0;
}

static int recv_cookie(struct mesh_session *s, uint64_t now, const uint8_t *pkt, size_t len)
{
    sess_peer *p = len == SESS_COOKIE_PKT ? peer_by_index(s, sess_get32(pkt + 1)) : NULL;
    if (!p || p->hs_state != HS_INIT || p->hs_local != sess_get32(pkt + 1)) {
        s->st.rejected_malformed++;
        return -ENOENT;
    }
    uint8_t key[32], cookie[SESS_COOKIE_LEN];
    if (p->hs_ik)
        sess_mac_key("cookie--", p->xpk, key);
    else
        memcpy(key, s->ckey_xx, 32);
    if (sess_cookie_open(key, p->last_mac1, pkt, len, cookie)) {
        s->st.rejected_forged++;
        return -EBADMSG;
    }
    memcpy(p->cookie, cookie, sizeof cookie);
    p->cookie_ms = now;
    p->has_cookie = true;
    return 0;
}

/* The keypair a transport packet names, or NULL. */
static sess_keypair *keypair_of(sess_peer *p, uint32_t idx)
{
    sess_keypair *k[3] = {&p->cur, &p->prev, &p->next};
    for (int i = 0; i < 3; i++)
        if (k[i]->live && k[i]->local == idx)
            return k[i];
    return NULL;
}

/* The IK responder's new keys are confirmed by the first packet on them. */
static void promote(struct mesh_session *s, sess_peer *p, uint64_t now)
{
    kp_wipe(&p->prev);
    p->prev = p->cur;
    p->cur = p->next;
    memset(&p->next, 0, sizeof p->next);
    completed(s, p);
    queue_flush(s, p, now);
}

/* -- rejoin: a transport packet for keys we do not hold, from addr: the
 * sender still has a session we dropped (mesh_session_forget after a false
 * death, or our keys expired first). As WireGuard does, start a handshake to
 * that address, so the session comes back at once instead of at the next
 * contact or retry. Two cases:
 *  - no handshake pending: only IK (its key known, as after a forget; an XX
 *    here would show our certificate to whoever sent one packet), tried once
 *    (the sender's next packet asks again) unless payloads wait for it;
 *  - a handshake pending for a quarter of a retry period or more (its
 *    initiations were lost while the path was down, as in a partition): the
 *    packet says the path works again, so its retry goes now, not at its
 *    timer (same pattern and try count as that retry).
 * Never with live keys, never to a revoked peer (forgotten because revoked,
 * it gets nothing of ours), at most once per handshake_retry_ms per address
 * and SESS_UNPROMPTED_PER_S in all, so a spoofed flood costs a small fixed
 * rate of initiations; it creates no peer. Nothing of the packet is used. */
static bool peer_revoked(const struct mesh_session *s, const sess_peer *p)
{
    const mesh_identity_revlist *rl = s->revoked;
    if (!rl)
        return false;
    if (p->has_cert)
        return mesh_identity_revlist_find(rl, &p->cert) != NULL;
    for (size_t i = 0; i < rl->n; i++)
        if (rl->recs[i].kind == MESH_REVOKE_KEY && sodium_memcmp(rl->recs[i].node_pk, p->pk, MESH_ID_PK_BYTES) == 0)
            return true;
    return false;
}

static void unknown_index(struct mesh_session *s, uint64_t now, const char *addr)
{
    s->st.unknown_index++;
    sess_peer *p = peer_find(s, addr);
    if (!p || kp_alive(s, &p->cur, now) || kp_alive(s, &p->next, now) || now < p->unprompted_next)
        return;
    bool fresh = p->hs_state == HS_NONE && p->has_pk && !p->ik_failed;
    bool early = p->hs_state == HS_INIT && now + s->retry_ms >= p->hs_deadline + s->retry_ms / 4;
    if ((!fresh && !early) || peer_revoked(s, p))
        return;
    if (now / 1000 != s->unp_sec)
        s->unp_sec = now / 1000, s->unp_count = 0;
    if (s->unp_count >= SESS_UNPROMPTED_PER_S)
        return;
    s->unp_count++;
    p->unprompted_next = now + s->retry_ms;
    if (fresh)
        p->tries = 0;
    if (hs_start(s, p, now) == 0) {
        p->unprompted = fresh;
        s->st.handshakes_unprompted++;
    }
}

static int recv_data(struct mesh_session *s, uint64_t now, const char *addr, const uint8_t *pkt, size_t len)
{
    sess_peer *p = len >= SESS_DATA_HDR + MESH_NOISE_TAGLEN ? peer_by_index(s, sess_get32(pkt + 1)) : NULL;
    sess_keypair *kp = p ? keypair_of(p, sess_get32(pkt + 1)) : NULL;
    if (!kp && p && p->hs_state == HS_CERT && p->hs_local == sess_get32(pkt + 1)) {
        s->st.rejected_malformed++;
        reject(s, p, NULL, "transport packet before the responder's certificate");
        return -EPROTO;
    }
    if (!kp) {
        s->st.rejected_malformed++;
        if (len >= SESS_DATA_HDR + MESH_NOISE_TAGLEN)
            unknown_index(s, now, addr);
        return -ENOENT;
    }
    if (!kp_alive(s, kp, now)) {
        s->st.rejected_stale++;
        return -ESTALE;
    }
    uint64_t ctr = sess_get64(pkt + 5);
    uint8_t pl[MESH_SESSION_MTU];
    size_t plen = 0;
    mesh_noise_cipher c = kp->recv;
    mesh_noise_cipher_set_nonce(&c, ctr);
    int rc = mesh_noise_cipher_decrypt(&c, pkt, SESS_DATA_HDR, pkt + SESS_DATA_HDR, len - SESS_DATA_HDR, pl,
                                       sizeof pl, &plen, NULL, 0);
    sodium_memzero(&c, sizeof c);
    if (rc) {
        s->st.rejected_forged++;
        reject(s, p, NULL, "forged or corrupted transport packet");
        return -EBADMSG;
    }
    if (!sess_replay_check(&kp->win, ctr, true)) {
        char why[96];
        snprintf(why, sizeof why, "replayed or too old transport packet (counter %llu)", (unsigned long long)ctr);
        s->st.rejected_replay++;
        reject(s, p, NULL, why);
        return -EALREADY;
    }
    kp->confirmed = true;
    if (kp == &p->next)
        promote(s, p, now);
    if (plen)
        emit(s, MESH_SESSION_DATA, p, NULL, pl, plen, NULL);
    sodium_memzero(pl, plen);
    return 0;
}

/* ---- the API ---------------------------------------------------------------------------- */
static int config_check(const mesh_session_config *cfg, char *err, size_t errlen)
{
    if (!cfg)
        return fail(-EINVAL, err, errlen, "session config: missing");
    if (!cfg->node || cfg->node->kind != MESH_KEY_NODE)
        return fail(-EINVAL, err, errlen, "session config: node: missing or not a node key");
    if (!cfg->cert)
        return fail(-EINVAL, err, errlen, "session config: cert: missing");
    if (!cfg->fleet_pk)
        return fail(-EINVAL, err, errlen, "session config: fleet_pk: missing");
    if (cfg->max_peers > SESS_MAX_PEERS)
        return fail(-EINVAL, err, errlen, "session config: max_peers: at most 16384");
    uint32_t rekey = cfg->rekey_after_ms ? cfg->rekey_after_ms : 120000;
    uint32_t reject = cfg->reject_after_ms ? cfg->reject_after_ms : 180000;
    if (reject <= rekey)
        return fail(-EINVAL, err, errlen, "session config: reject_after_ms: must be greater than rekey_after_ms");
    if (cfg->handshake_retry_ms > 60000)
        return fail(-EINVAL, err, errlen, "session config: handshake_retry_ms: at most 60000");
    if (cfg->max_queued > 4096)
        return fail(-EINVAL, err, errlen, "session config: max_queued: at most 4096");
    return 0;
}

int mesh_session_new(const mesh_session_config *cfg, struct mesh_session **out, char *err, size_t errlen)
{
    int rc = config_check(cfg, err, errlen);
    if (rc)
        return rc;
    if (sodium_init() < 0)
        return fail(-ENOSYS, err, errlen, "session: libsodium failed to initialise");
    struct mesh_session *s = calloc(1, sizeof *s);
    if (!s)
        return fail(-ENOMEM, err, errlen, "session: out of memory");
    s->node = *cfg->node;
    s->cert = *cfg->cert;
    memcpy(s->fleet_pk, cfg->fleet_pk, MESH_ID_PK_BYTES);
    s->revoked = cfg->revoked;
    s->wall_clock = cfg->wall_clock;
    s->clock_ctx = cfg->clock_ctx;
    s->rekey_ms = cfg->rekey_after_ms ? cfg->rekey_after_ms : 120000;
    s->rekey_msgs = cfg->rekey_after_messages ? cfg->rekey_after_messages : 1ull << 40;
    s->reject_ms = cfg->reject_after_ms ? cfg->reject_after_ms : 180000;
    s->retry_ms = cfg->handshake_retry_ms ? cfg->handshake_retry_ms : 5000;
    s->load = cfg->load_handshakes_per_s ? cfg->load_handshakes_per_s : 1000;
    s->max_peers = cfg->max_peers ? cfg->max_peers : SESS_MAX_PEERS;
    s->max_queued = cfg->max_queued ? cfg->max_queued : 64;
    char e2[256];
    int n = mesh_identity_cert_encode(&s->cert, s->cert_buf, sizeof s->cert_buf, e2, sizeof e2);
    if (n < 0 || mesh_identity_x25519(&s->node, s->xsk, s->xpk)) {
        mesh_session_free(s);
        return fail(n < 0 ? n : -EINVAL, err, errlen, "session config: cert or node key cannot be used");
    }
    s->cert_len = (size_t)n;
    cert_ref(s->cert.serial, s->cert_buf, s->cert_len, s->my_ref);
    memcpy(s->prologue, PROLOGUE_LABEL, sizeof PROLOGUE_LABEL - 1);
    memcpy(s->prologue + sizeof PROLOGUE_LABEL - 1, s->fleet_pk, MESH_ID_PK_BYTES);
    sess_mac_key("mac1----", s->fleet_pk, s->mac1_xx);
    sess_mac_key("mac1----", s->xpk, s->mac1_mine);
    sess_mac_key("cookie--", s->fleet_pk, s->ckey_xx);
    sess_mac_key("cookie--", s->xpk, s->ckey_mine);
    *out = s;
    return 0;
}

void mesh_session_free(struct mesh_session *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->npeers; i++) {
        peer_reset(s, s->peers[i]);
        sodium_memzero(s->peers[i], sizeof *s->peers[i]);
        free(s->peers[i]);
    }
    free(s->peers);
    if (s->outq)
        sodium_memzero(s->outq, s->out_cap * sizeof *s->outq);
    free(s->outq);
    mesh_identity_key_wipe(&s->node);
    sodium_memzero(s, sizeof *s);
    free(s);
}

void mesh_session_on_event(struct mesh_session *s, mesh_session_event_fn fn, void *ctx)
{
    s->fn = fn;
    s->ctx = ctx;
}

void mesh_session_learn_key(struct mesh_session *s, const char *addr, const uint8_t pk[MESH_ID_PK_BYTES])
{
    uint8_t x[32];
    if (!addr_ok(addr) || mesh_identity_x25519_pk(pk, x))
        return;
    sess_peer *p = peer_find(s, addr);
    if (!p && !(p = peer_new(s, addr)))
        return;
    memcpy(p->pk, pk, MESH_ID_PK_BYTES);
    memcpy(p->xpk, x, 32);
    p->has_pk = true;
    p->ik_failed = false;
}

int mesh_session_send(struct mesh_session *s, uint64_t now_ms, const char *addr, const uint8_t *data, size_t len,
                      char *err, size_t errlen)
{
    if (!addr_ok(addr))
        return fail(-EINVAL, err, errlen, "session send: bad address (1-64 printable characters, no spaces)");
    if (len > MESH_SESSION_MAX_PAYLOAD || (len && !data)) {
        if (err && errlen)
            snprintf(err, errlen, "session send to %s: %zu bytes is over the %d-byte payload limit", addr, len,
                     MESH_SESSION_MAX_PAYLOAD);
        return len ? -EMSGSIZE : -EINVAL;
    }
    sess_peer *p = peer_find(s, addr);
    if (!p && !(p = peer_new(s, addr)))
        return fail(-ENOBUFS, err, errlen, "session send: max_peers reached");
    int rc;
    if (kp_can_send(s, &p->cur, now_ms)) {
        queue_flush(s, p, now_ms); /* what waits goes first */
        rc = send_data(s, p, &p->cur, data, len);
        maybe_rekey(s, p, now_ms);
    } else {
        rc = queue_push(s, p, data, len);
        if (rc == 0 && !kp_alive(s, &p->cur, now_ms))
            hs_begin(s, p, now_ms);
    }
    if (rc == -ENOBUFS)
        return fail(rc, err, errlen, "session send: queue full (peer's handshake pending, or output not drained)");
    if (rc)
        return fail(rc, err, errlen, "session send: failed");
    return 0;
}

int mesh_session_receive(struct mesh_session *s, uint64_t now_ms, const char *addr, const uint8_t *pkt, size_t len)
{
    if (!addr_ok(addr) || !pkt || len < 1 || len > MESH_SESSION_MTU) {
        s->st.rejected_malformed++;
        return -EBADMSG;
    }
    int rc;
    switch (pkt[0]) {
    case SESS_T_INIT_XX:
    case SESS_T_INIT_IK: rc = recv_init(s, now_ms, addr, pkt, len); break;
    case SESS_T_RESP: rc = recv_resp(s, now_ms, pkt, len); break;
    case SESS_T_FINAL: rc = recv_final(s, now_ms, pkt, len); break;
    case SESS_T_COOKIE: rc = recv_cookie(s, now_ms, pkt, len); break;
    case SESS_T_DATA: rc = recv_data(s, now_ms, addr, pkt, len); break;
    case SESS_T_CERT: rc = recv_cert(s, now_ms, pkt, len); break;
    case SESS_T_NEED: rc = recv_need(s, now_ms, pkt, len); break;
    default: s->st.rejected_malformed++; return -EBADMSG;
    }
    if (rc == 0) {
        s->st.packets_in++;
        s->st.bytes_in += len;
    }
    return rc;
}

/* A peer's timers: handshake retry and give-up, the responder's wait for
 * message 3, unconfirmed keys, expiry. */
static void peer_tick(struct mesh_session *s, sess_peer *p, uint64_t now)
{
    if ((p->hs_state == HS_INIT || p->hs_state == HS_CERT) && now >= p->hs_deadline) {
        if (p->unprompted && !p->qlen) { /* -- rejoin: one try; no one waits, no DOWN */
            hs_drop(p);
            p->unprompted = false;
        } else if (p->tries >= SESS_MAX_TRIES) {
            char why[200];
            snprintf(why, sizeof why, "handshake with %s gave up after %d tries%s", p->addr, SESS_MAX_TRIES,
                     p->hs_state == HS_CERT ? ": no certificate from the responder (ours refused?)" : "");
            peer_reset(s, p); /* the learned key stays */
            emit(s, MESH_SESSION_DOWN, p, NULL, NULL, 0, why);
            return;
        } else {
            if (p->hs_ik)
                p->ik_failed = true; /* the responder may have changed keys: XX next */
            p->unprompted = false;   /* payloads wait now: the usual retries */
            hs_start(s, p, now);
        }
    } else if (p->hs_state == HS_RESP && now >= p->hs_deadline) {
        hs_drop(p);
    }
    sess_keypair *k[3] = {&p->cur, &p->prev, &p->next};
    for (int i = 0; i < 3; i++)
        if (k[i]->live && !kp_alive(s, k[i], now))
            kp_wipe(k[i]);
    if (p->up && !p->cur.live && !p->next.live) {
        p->up = false;
        emit(s, MESH_SESSION_DOWN, p, NULL, NULL, 0, "session expired (no new keys within reject_after_ms)");
        return;
    }
    if (p->hs_state == HS_NONE && p->cur.live && p->cur.initiator && !p->cur.confirmed &&
        now >= p->cur.born_ms + s->retry_ms)
        hs_begin(s, p, now); /* message 3 was probably lost */
    else if (p->hs_state == HS_NONE && p->qlen && !p->cur.live)
        hs_begin(s, p, now);
}

void mesh_session_tick(struct mesh_session *s, uint64_t now_ms)
{
    for (size_t i = 0; i < s->npeers; i++)
        if (s->peers[i]->used)
            peer_tick(s, s->peers[i], now_ms);
}

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

uint64_t mesh_session_next_deadline(const struct mesh_session *s)
{
    uint64_t d = UINT64_MAX;
    for (size_t i = 0; i < s->npeers; i++) {
        const sess_peer *p = s->peers[i];
        if (!p->used)
            continue;
        if (p->hs_state != HS_NONE)
            d = min64(d, p->hs_deadline);
        const sess_keypair *k[3] = {&p->cur, &p->prev, &p->next};
        for (int j = 0; j < 3; j++)
            if (k[j]->live)
                d = min64(d, k[j]->born_ms + s->reject_ms);
        if (p->hs_state == HS_NONE && p->cur.live && p->cur.initiator && !p->cur.confirmed)
            d = min64(d, p->cur.born_ms + s->retry_ms);
    }
    return d;
}

bool mesh_session_next_out(struct mesh_session *s, mesh_session_out *out)
{
    if (!s->out_len)
        return false;
    mesh_session_out *o = &s->outq[s->out_head];
    memcpy(out->addr, o->addr, sizeof out->addr);
    out->len = o->len;
    memcpy(out->data, o->data, o->len);
    sodium_memzero(o, sizeof *o);
    s->out_head = (s->out_head + 1) % s->out_cap;
    s->out_len--;
    return true;
}

void mesh_session_forget(struct mesh_session *s, const char *addr)
{
    sess_peer *p = addr_ok(addr) ? peer_find(s, addr) : NULL;
    if (!p)
        return;
    peer_reset(s, p);
    p->ik_failed = false; /* the learned key stays: the next contact is IK */
}

void mesh_session_get_stats(const struct mesh_session *s, mesh_session_stats *st)
{
    *st = s->st;
    st->sessions = 0;
    for (size_t i = 0; i < s->npeers; i++)
        if (s->peers[i]->used && s->peers[i]->cur.live)
            st->sessions++;
}
