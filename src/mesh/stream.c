/* stream.c: the mesh's TCP path for full-state sync (stream.h): Noise XX/IK
 * over a byte stream with 2-byte big-endian length frames, certificates
 * checked as on the datagram path (sess_cert_check), then in-order transport
 * messages. A pure state machine; the caller owns the socket. The
 * revocation list is copied when the stream is made (a snapshot: the cell's
 * own list may grow on another thread while this stream handshakes). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "mesh/noise.h"
#include "mesh/session_int.h"
#include "mesh/stream.h"

#define FRAME_MAX 65535u
#define OUT_LIMIT (4u << 20) /* bytes waiting to be written before send says -ENOBUFS */

struct mesh_stream {
    uint8_t cert_buf[MESH_ID_CERT_MAX];
    size_t cert_len;
    uint8_t fleet_pk[MESH_ID_PK_BYTES];
    mesh_identity_revlist rl; /* a snapshot of cfg->revoked */
    int64_t (*wall_clock)(void *ctx);
    void *clock_ctx;
    uint8_t xsk[32], xpk[32];
    uint8_t prologue[sizeof SESS_PROLOGUE_LABEL - 1 + MESH_ID_PK_BYTES];
    bool initiator, ik, hs_live, established;
    bool await_cert;  /* XX initiator after message 3: the responder's certificate is the next frame */
    uint8_t rs[32];   /* its static key, for that certificate */
    mesh_noise_handshake hs;
    mesh_noise_cipher tx, rx;
    mesh_identity_cert peer;
    int failed;
    char err[320];
    uint8_t in[2 + FRAME_MAX];
    size_t in_len;
    uint8_t *out;
    size_t out_len, out_cap, out_off;
    mesh_stream_msg_fn fn;
    void *ctx;
};

static int st_fail(struct mesh_stream *st, int rc, const char *fmt, ...)
{
    if (st->failed)
        return st->failed;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->err, sizeof st->err, fmt, ap);
    va_end(ap);
    st->failed = rc;
    if (st->hs_live)
        mesh_noise_handshake_wipe(&st->hs);
    st->hs_live = false;
    mesh_noise_cipher_wipe(&st->tx);
    mesh_noise_cipher_wipe(&st->rx);
    st->established = st->await_cert = false;
    return rc;
}

/* Appends one frame: the length, an optional prefix byte, then body. */
static int put_frame(struct mesh_stream *st, int prefix, const uint8_t *body, size_t len)
{
    size_t flen = len + (prefix >= 0), need = st->out_len + 2 + flen;
    if (flen > FRAME_MAX)
        return -EMSGSIZE;
    if (need - st->out_off > OUT_LIMIT)
        return -ENOBUFS;
    if (need > st->out_cap) {
        size_t cap = st->out_cap ? st->out_cap : 4096;
        while (cap < need)
            cap *= 2;
        uint8_t *o = realloc(st->out, cap);
        if (!o)
            return -ENOMEM;
        st->out = o, st->out_cap = cap;
    }
    uint8_t *p = st->out + st->out_len;
    p[0] = (uint8_t)(flen >> 8), p[1] = (uint8_t)flen;
    if (prefix >= 0)
        p[2] = (uint8_t)prefix;
    memcpy(p + 2 + (prefix >= 0), body, len);
    st->out_len = need;
    return 0;
}

static int hs_setup(struct mesh_stream *st, bool ik, const uint8_t *rs)
{
    mesh_noise_config c = {.protocol = ik ? "Noise_IK_25519_ChaChaPoly_SHA256" : "Noise_XX_25519_ChaChaPoly_SHA256",
                           .initiator = st->initiator,
                           .prologue = st->prologue,
                           .prologue_len = sizeof st->prologue,
                           .s_priv = st->xsk,
                           .s_pub = st->xpk,
                           .rs = rs};
    st->ik = ik;
    if (mesh_noise_handshake_init(&st->hs, &c, NULL, 0))
        return -EPROTO;
    st->hs_live = true;
    return 0;
}

/* Writes our next handshake message (with our certificate when it is encrypted). */
static int hs_write(struct mesh_stream *st, int prefix, bool with_cert)
{
    uint8_t msg[1024];
    size_t n = 0;
    char e[200];
    int rc = mesh_noise_write_message(&st->hs, with_cert ? st->cert_buf : NULL, with_cert ? st->cert_len : 0, msg,
                                      sizeof msg, &n, e, sizeof e);
    if (rc == 0)
        rc = put_frame(st, prefix, msg, n);
    return rc ? st_fail(st, rc, "stream handshake: %s", rc == -ENOBUFS ? "output full" : e) : 0;
}

/* Splits the keys; established unless an XX initiator still waits for the
 * responder's certificate. */
static int hs_finish(struct mesh_stream *st)
{
    mesh_noise_cipher c1, c2;
    if (mesh_noise_split(&st->hs, &c1, &c2, NULL, 0))
        return st_fail(st, -EPROTO, "stream handshake: split failed");
    st->tx = st->initiator ? c1 : c2;
    st->rx = st->initiator ? c2 : c1;
    sodium_memzero(&c1, sizeof c1);
    sodium_memzero(&c2, sizeof c2);
    st->await_cert = st->initiator && !st->ik;
    if (st->await_cert)
        memcpy(st->rs, mesh_noise_remote_static(&st->hs), 32);
    mesh_noise_handshake_wipe(&st->hs);
    st->hs_live = false;
    st->established = !st->await_cert;
    return 0;
}

static int64_t st_now(const struct mesh_stream *st)
{
    return st->wall_clock ? st->wall_clock(st->clock_ctx) : (int64_t)time(NULL);
}

/* Reads the peer's handshake message; when it carries the certificate,
 * checks it, else it must carry nothing (XX message 2). */
static int hs_read(struct mesh_stream *st, const uint8_t *msg, size_t len, bool with_cert)
{
    uint8_t pl[FRAME_MAX];
    size_t plen = 0;
    char e[320];
    if (mesh_noise_read_message(&st->hs, msg, len, pl, sizeof pl, &plen, e, sizeof e))
        return st_fail(st, -EBADMSG, "stream handshake: %s (another fleet, another key, or forged)", e);
    if (!with_cert)
        return plen ? st_fail(st, -EBADMSG, "stream handshake: XX message 2 carries a payload (older protocol?)") : 0;
    int rc = sess_cert_check(st->fleet_pk, &st->rl, st_now(st), pl, plen, mesh_noise_remote_static(&st->hs),
                             &st->peer, e, sizeof e);
    sodium_memzero(pl, plen);
    return rc ? st_fail(st, rc, "stream handshake: %s", e) : 0;
}

/* The XX responder's certificate, its first transport message: checked
 * against the handshake's static key; only then is the stream established. */
static int read_cert(struct mesh_stream *st, const uint8_t *f, size_t len)
{
    uint8_t pt[MESH_ID_CERT_MAX + 1];
    size_t plen = 0;
    char e[320];
    if (mesh_noise_cipher_decrypt(&st->rx, NULL, 0, f, len, pt, sizeof pt, &plen, e, sizeof e))
        return st_fail(st, -EBADMSG, "stream: the responder's certificate: %s", e);
    int rc = sess_cert_check(st->fleet_pk, &st->rl, st_now(st), pt, plen, st->rs, &st->peer, e, sizeof e);
    sodium_memzero(pt, sizeof pt);
    if (rc)
        return st_fail(st, rc, "stream handshake: %s", e);
    st->await_cert = false;
    st->established = true;
    return 0;
}

/* The XX responder, once the initiator's certificate is good: its own. */
static int send_cert(struct mesh_stream *st)
{
    uint8_t ct[MESH_ID_CERT_MAX + MESH_NOISE_TAGLEN];
    size_t clen = 0;
    if (mesh_noise_cipher_encrypt(&st->tx, NULL, 0, st->cert_buf, st->cert_len, ct, sizeof ct, &clen, NULL, 0) ||
        put_frame(st, -1, ct, clen))
        return st_fail(st, -EPROTO, "stream: cannot send our certificate");
    return 0;
}

/* One complete frame. */
static int on_frame(struct mesh_stream *st, const uint8_t *f, size_t len)
{
    if (st->await_cert)
        return read_cert(st, f, len);
    if (st->established) {
        uint8_t pt[FRAME_MAX];
        size_t plen = 0;
        char e[200];
        if (mesh_noise_cipher_decrypt(&st->rx, NULL, 0, f, len, pt, sizeof pt, &plen, e, sizeof e))
            return st_fail(st, -EBADMSG, "stream: %s", e);
        if (st->fn)
            st->fn(st->ctx, pt, plen);
        sodium_memzero(pt, plen);
        return 0;
    }
    if (!st->initiator && !st->hs_live) { /* the first frame: pattern byte, message 1 */
        if (len < 1 || (f[0] != 1 && f[0] != 2))
            return st_fail(st, -EBADMSG, "stream: first frame has no pattern byte (1 XX, 2 IK)");
        if (hs_setup(st, f[0] == 2, NULL))
            return st_fail(st, -EPROTO, "stream: handshake setup failed");
        int rc = hs_read(st, f + 1, len - 1, st->ik);
        if (rc == 0) /* IK: the initiator's certificate is checked, ours may go; XX: not yet */
            rc = hs_write(st, -1, st->ik);
        return rc == 0 && st->ik ? hs_finish(st) : rc;
    }
    if (st->initiator) { /* message 2: IK with the responder's certificate, XX with nothing */
        int rc = hs_read(st, f, len, st->ik);
        if (rc == 0 && !st->ik)
            rc = hs_write(st, -1, true);
        return rc ? rc : hs_finish(st);
    }
    int rc = hs_read(st, f, len, true); /* XX message 3 */
    if (rc == 0)
        rc = hs_finish(st);
    return rc ? rc : send_cert(st);
}

int mesh_stream_new(const mesh_session_config *cfg, bool initiator, const uint8_t *peer_pk,
                    struct mesh_stream **out, char *err, size_t errlen)
{
    if (!cfg || !cfg->node || !cfg->cert || !cfg->fleet_pk || (!initiator && peer_pk)) {
        snprintf(err, errlen, "stream: %s", !cfg ? "config missing"
                                            : !initiator && peer_pk ? "peer_pk: only an initiator knows it"
                                                                    : "config: node, cert and fleet_pk are required");
        return -EINVAL;
    }
    if (sodium_init() < 0)
        return snprintf(err, errlen, "stream: libsodium failed to initialise"), -ENOSYS;
    struct mesh_stream *st = calloc(1, sizeof *st);
    if (!st)
        return snprintf(err, errlen, "stream: out of memory"), -ENOMEM;
    char e[256];
    int n = mesh_identity_cert_encode(cfg->cert, st->cert_buf, sizeof st->cert_buf, e, sizeof e);
    uint8_t rs[32];
    if (n < 0 || mesh_identity_x25519(cfg->node, st->xsk, st->xpk) ||
        (peer_pk && mesh_identity_x25519_pk(peer_pk, rs))) {
        snprintf(err, errlen, "stream: %s", n < 0 ? e : "node key or peer key cannot be used");
        mesh_stream_free(st);
        return -EINVAL;
    }
    st->cert_len = (size_t)n;
    memcpy(st->fleet_pk, cfg->fleet_pk, MESH_ID_PK_BYTES);
    if (mesh_identity_revlist_init(&st->rl, st->fleet_pk, 0) ||
        (cfg->revoked && cfg->revoked->n && !(st->rl.recs = malloc(cfg->revoked->n * sizeof *st->rl.recs)))) {
        snprintf(err, errlen, "stream: out of memory");
        mesh_stream_free(st);
        return -ENOMEM;
    }
    if (cfg->revoked && cfg->revoked->n) {
        memcpy(st->rl.recs, cfg->revoked->recs, cfg->revoked->n * sizeof *st->rl.recs);
        memcpy(st->rl.fleet_pk, cfg->revoked->fleet_pk, MESH_ID_PK_BYTES);
        st->rl.n = cfg->revoked->n;
        st->rl.max = cfg->revoked->max;
    }
    st->wall_clock = cfg->wall_clock;
    st->clock_ctx = cfg->clock_ctx;
    st->initiator = initiator;
    memcpy(st->prologue, SESS_PROLOGUE_LABEL, sizeof SESS_PROLOGUE_LABEL - 1);
    memcpy(st->prologue + sizeof SESS_PROLOGUE_LABEL - 1, st->fleet_pk, MESH_ID_PK_BYTES);
    if (initiator && (hs_setup(st, peer_pk != NULL, peer_pk ? rs : NULL) || hs_write(st, peer_pk ? 2 : 1, peer_pk))) {
        snprintf(err, errlen, "stream: %s", st->err[0] ? st->err : "handshake setup failed");
        mesh_stream_free(st);
        return -EPROTO;
    }
    *out = st;
    return 0;
}

void mesh_stream_free(struct mesh_stream *st)
{
    if (!st)
        return;
    if (st->hs_live)
        mesh_noise_handshake_wipe(&st->hs);
    if (st->out)
        sodium_memzero(st->out, st->out_cap);
    free(st->out);
    mesh_identity_revlist_free(&st->rl);
    sodium_memzero(st, sizeof *st);
    free(st);
}

void mesh_stream_on_message(struct mesh_stream *st, mesh_stream_msg_fn fn, void *ctx)
{
    st->fn = fn;
    st->ctx = ctx;
}

int mesh_stream_feed(struct mesh_stream *st, const uint8_t *data, size_t len)
{
    while (len && !st->failed) {
        size_t need = st->in_len < 2 ? 2 : 2 + ((size_t)st->in[0] << 8 | st->in[1]);
        size_t take = need - st->in_len < len ? need - st->in_len : len;
        memcpy(st->in + st->in_len, data, take);
        st->in_len += take, data += take, len -= take;
        if (st->in_len == 2 && need == 2 && !(st->in[0] | st->in[1]))
            return st_fail(st, -EBADMSG, "stream: empty frame");
        if (st->in_len == need && need > 2) {
            st->in_len = 0;
            on_frame(st, st->in + 2, need - 2);
        }
    }
    return st->failed;
}

size_t mesh_stream_pending(const struct mesh_stream *st, const uint8_t **data)
{
    *data = st->out ? st->out + st->out_off : NULL;
    return st->out_len - st->out_off;
}

void mesh_stream_consume(struct mesh_stream *st, size_t n)
{
    size_t left = st->out_len - st->out_off;
    st->out_off += n < left ? n : left;
    if (st->out_off == st->out_len)
        st->out_off = st->out_len = 0;
}

int mesh_stream_send(struct mesh_stream *st, const uint8_t *data, size_t len)
{
    if (st->failed)
        return st->failed;
    if (!st->established)
        return -ENOTCONN;
    if (len > MESH_STREAM_MAX_MSG || (len && !data))
        return len ? -EMSGSIZE : -EINVAL;
    if (st->out_len - st->out_off + 2 + len + MESH_NOISE_TAGLEN > OUT_LIMIT)
        return -ENOBUFS; /* before the nonce moves */
    uint8_t ct[FRAME_MAX];
    size_t clen = 0;
    if (mesh_noise_cipher_encrypt(&st->tx, NULL, 0, data, len, ct, sizeof ct, &clen, NULL, 0))
        return st_fail(st, -EOVERFLOW, "stream: nonce exhausted");
    return put_frame(st, -1, ct, clen);
}

bool mesh_stream_established(const struct mesh_stream *st)
{
    return st->established;
}

const mesh_identity_cert *mesh_stream_peer(const struct mesh_stream *st)
{
    return st->established ? &st->peer : NULL;
}

const char *mesh_stream_error(const struct mesh_stream *st)
{
    return st->err;
}
