/* cell_sync.c: full-state sync over the mesh's TCP path (issue 15 item 2).
 * When swim emits STATE packets (a push-pull or a join), pump() hands them
 * here instead of the UDP session: the packets of one pump to one member
 * become one job, and the sync thread sends the job as ONE stream message
 * over a Noise stream (stream.h, certificates checked) to the member's
 * address (the TCP port has the UDP port's number, cell_reason.c listens).
 * The answer comes back on the same connection and is fed to swim under the
 * cell's lock. When the connect or the handshake fails within
 * CELL_SYNC_CONNECT_MS, the packets go by UDP as before (logged once per
 * peer until TCP works again).
 *
 * Wire (after the stream's handshake; kind 1 is a reasoning request):
 *   request = kind(1) = 2 | revs | (len u16 big-endian | swim packet)*
 *   answer  = status(1): 0 then revs | (len u16 | swim packet)*, 1 then an error text
 *   revs    = rlen u16 | the sender's revocation list (identity.h's wire form,
 *             as gossiped on channel 2), rlen 0 when it is empty
 * (-- revsync) The receiver merges revs (every record checked, all or nothing,
 * as cell_gossip.c does) BEFORE any swim packet of the message reaches swim,
 * so membership never arrives without the fleet's revocations; a list that
 * does not verify refuses the whole message (no packet is fed). rlen is at
 * most CELL_SYNC_REV_MAX; a list longer than that is not synced over TCP
 * (its packets go by UDP, where channel 2 goes first, cell.c).
 * A message is at most MESH_STREAM_MAX_MSG bytes; packets that do not fit go
 * by UDP. Every packet's sender must be the certificate's node id.
 *
 * Threads: the sync thread does the connecting and the I/O without the lock;
 * swim and the session are only touched under m->mu (as the cell thread
 * does). The serving side runs on cell_reason.c's connection workers (at
 * most CELL_REASON_WORKERS at once). */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mesh/cell_int.h"
#include "mesh/stream.h"

#define CELL_SYNC_JOBS 16          /* exchanges waiting; more go by UDP */
#define CELL_SYNC_CONNECT_MS 1000  /* connect and handshake, at most */
#define CELL_SYNC_IO_MS 5000       /* the whole exchange, at most */
#define CELL_SYNC_LOGGED_MAX 64    /* peers whose fallback was logged */
#define SWIM_T_STATE 8             /* swim.h's wire format: the STATE message type */
#define CELL_SYNC_REV_MAX 32768    /* -- revsync: bytes of the revocation section, at most */

enum { ANS_OK = 0, ANS_ERROR = 1 };

typedef struct sync_job {
    char id[MESH_SWIM_ID_MAX + 1];
    char addr[MESH_SWIM_ADDR_MAX + 1];
    uint8_t *buf; /* the request: kind byte, revocation section, then framed packets */
    size_t len;
    size_t packets; /* -- revsync: where the framed packets start in buf */
    bool sealed; /* its pump is over: ready to go */
} sync_job;

struct cell_sync {
    sync_job jobs[CELL_SYNC_JOBS];
    size_t njobs;
    pthread_t th;
    bool th_started;
    pthread_cond_t cv;
    atomic_bool stop;
    const char *cap_addr; /* a served exchange collects the answers to this address */
    uint8_t *cap;
    size_t cap_len;
    char logged[CELL_SYNC_LOGGED_MAX][MESH_SWIM_ADDR_MAX + 1];
    size_t nlogged;
};

static uint64_t mono(void)
{
    return (uint64_t)core_mono_ms();
}

/* ---- recognising and framing ------------------------------------------------------------ */

/* The packet's sender id and addr (views into p); false when not a swim packet. */
static bool packet_sender(const uint8_t *p, size_t n, const uint8_t **id, size_t *idlen, const uint8_t **addr,
                          size_t *addrlen)
{
    if (n < 4 || p[0] != 0xA7 || p[1] != 0x01)
        return false;
    size_t o = 2;
    *idlen = p[o++];
    if (o + *idlen + 1 > n)
        return false;
    *id = p + o;
    o += *idlen;
    *addrlen = p[o++];
    if (o + *addrlen > n)
        return false;
    *addr = p + o;
    return true;
}

/* Whether the packet's first message is a STATE (a full state, or part of it). */
static bool is_state(const uint8_t *p, size_t n)
{
    const uint8_t *id, *addr;
    size_t idlen, addrlen;
    if (!packet_sender(p, n, &id, &idlen, &addr, &addrlen))
        return false;
    size_t o = (size_t)(addr - p) + addrlen;
    return o < n && p[o] == SWIM_T_STATE;
}

static bool append(uint8_t **buf, size_t *len, const uint8_t *p, size_t n)
{
    if (*len + 2 + n > MESH_STREAM_MAX_MSG)
        return false;
    uint8_t *b = realloc(*buf, *len + 2 + n);
    if (!b)
        return false;
    b[*len] = (uint8_t)(n >> 8);
    b[*len + 1] = (uint8_t)n;
    memcpy(b + *len + 2, p, n);
    *buf = b;
    *len += 2 + n;
    return true;
}

/* Calls fn for each framed packet of p[0..n); -EBADMSG when the framing is bad. */
static int each_packet(const uint8_t *p, size_t n, int (*fn)(void *ctx, const uint8_t *pk, size_t len), void *ctx)
{
    size_t o = 0;
    while (o < n) {
        if (n - o < 2)
            return -EBADMSG;
        size_t len = (size_t)p[o] << 8 | p[o + 1];
        o += 2;
        if (len == 0 || len > n - o)
            return -EBADMSG;
        int rc = fn(ctx, p + o, len);
        if (rc)
            return rc;
        o += len;
    }
    return 0;
}

/* -- revsync: under mu, a new message: first (kind or status) then the cell's
 * revocation section; -E2BIG when the list is over CELL_SYNC_REV_MAX. */
static int rev_head(struct mesh_cell *m, uint8_t first, uint8_t **buf, size_t *len)
{
    uint8_t *rl = NULL;
    size_t rn = 0;
    if (m->rl.n && mesh_identity_revlist_encode(&m->rl, &rl, &rn))
        return -ENOMEM;
    if (rn > CELL_SYNC_REV_MAX) {
        free(rl);
        return -E2BIG;
    }
    uint8_t *b = malloc(3 + rn);
    if (!b) {
        free(rl);
        return -ENOMEM;
    }
    b[0] = first;
    b[1] = (uint8_t)(rn >> 8);
    b[2] = (uint8_t)rn;
    if (rn)
        memcpy(b + 3, rl, rn);
    free(rl);
    *buf = b;
    *len = 3 + rn;
    return 0;
}

/* -- revsync: under mu, p[0..n) starts with a revocation section: merged into
 * the cell's list (cell_revoke_receive: checked, saved, sessions of revoked
 * members dropped); *used is its size. -EBADMSG when it does not fit, the
 * merge's error when it does not verify. */
static int rev_take(struct mesh_cell *m, const char *from, const uint8_t *p, size_t n, size_t *used)
{
    if (n < 2)
        return -EBADMSG;
    size_t rn = (size_t)p[0] << 8 | p[1];
    if (rn > CELL_SYNC_REV_MAX || rn > n - 2)
        return -EBADMSG;
    *used = 2 + rn;
    if (!rn)
        return 0;
    char label[MESH_ID_NODE_ID_MAX + 32];
    snprintf(label, sizeof label, "%s (TCP sync)", from);
    int rc = cell_revoke_receive(m, core_mono_ms(), label, p + 2, rn);
    return rc > 0 ? -EBADMSG : rc;
}

/* ---- the cell thread's side (under mu) ------------------------------------------------------ */

bool cell_sync_divert(struct mesh_cell *m, const struct mesh_swim_out *o)
{
    struct cell_sync *s = m->sync;
    if (!s || !o->addr[0] || !is_state(o->data, o->len))
        return false;
    if (s->cap_addr && !strcmp(s->cap_addr, o->addr) && append(&s->cap, &s->cap_len, o->data, o->len))
        return true;
    sync_job *j = NULL;
    for (size_t i = 0; i < s->njobs && !j; i++)
        if (!s->jobs[i].sealed && !strcmp(s->jobs[i].addr, o->addr))
            j = &s->jobs[i];
    if (!j) {
        if (s->njobs >= CELL_SYNC_JOBS) {
            m->sync_n[CELL_SYNC_UDP]++;
            return false;
        }
        j = &s->jobs[s->njobs++];
        memset(j, 0, sizeof *j);
        core_sncpy(j->id, sizeof j->id, o->id);
        core_sncpy(j->addr, sizeof j->addr, o->addr);
        if (rev_head(m, CELL_TCP_SYNC, &j->buf, &j->len)) { /* -- revsync */
            s->njobs--;
            return false;
        }
        j->packets = j->len;
    }
    return append(&j->buf, &j->len, o->data, o->len); /* full: this one by UDP */
}

static void job_free(struct cell_sync *s, size_t i)
{
    free(s->jobs[i].buf);
    memmove(&s->jobs[i], &s->jobs[i + 1], (s->njobs - i - 1) * sizeof s->jobs[0]);
    s->njobs--;
}

void cell_sync_seal(struct mesh_cell *m)
{
    struct cell_sync *s = m->sync;
    if (!s)
        return;
    bool any = false;
    for (size_t i = 0; i < s->njobs; i++) {
        if (s->jobs[i].sealed)
            continue;
        for (size_t k = 0; k < i; k++) /* a waiting exchange with the same member is superseded */
            if (s->jobs[k].sealed && !strcmp(s->jobs[k].addr, s->jobs[i].addr)) {
                job_free(s, k);
                i--;
                break;
            }
        s->jobs[i].sealed = any = true;
    }
    if (any)
        pthread_cond_signal(&s->cv);
}

/* ---- one connection -------------------------------------------------------------------------- */

typedef struct sconn {
    struct mesh_cell *m;
    int fd;
    struct mesh_stream *st;
    uint8_t *msg;
    size_t msg_len;
} sconn;

static void on_msg(void *ctx, const uint8_t *data, size_t len)
{
    sconn *c = ctx;
    if (c->msg)
        return;
    c->msg = malloc(len ? len : 1);
    if (!c->msg)
        return;
    memcpy(c->msg, data, len);
    c->msg_len = len;
}

static int flush(sconn *c)
{
    const uint8_t *p;
    size_t n;
    while ((n = mesh_stream_pending(c->st, &p)) > 0) {
        ssize_t w = send(c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
        mesh_stream_consume(c->st, (size_t)w);
    }
    return 0;
}

enum { WANT_ESTABLISHED, WANT_MESSAGE, WANT_WRITTEN };

static bool wanted(const sconn *c, int want)
{
    const uint8_t *p;
    if (want == WANT_ESTABLISHED)
        return mesh_stream_established(c->st);
    if (want == WANT_MESSAGE)
        return c->msg != NULL;
    return mesh_stream_pending(c->st, &p) == 0;
}

/* Moves bytes both ways until want or the deadline: 0 or -errno with err. */
static int until(sconn *c, int want, uint64_t deadline, const atomic_bool *stop, char *err, size_t errlen)
{
    uint8_t buf[16384];
    for (;;) {
        int rc = flush(c);
        if (rc) {
            snprintf(err, errlen, "send: %s", strerror(-rc));
            return -ECONNRESET;
        }
        if (wanted(c, want))
            return 0;
        uint64_t now = mono();
        if (now >= deadline || atomic_load(stop)) {
            snprintf(err, errlen, now >= deadline ? "no answer in time" : "the mesh is stopping");
            return -ETIMEDOUT;
        }
        const uint8_t *p;
        struct pollfd pf = {.fd = c->fd, .events = POLLIN | (mesh_stream_pending(c->st, &p) ? POLLOUT : 0)};
        uint64_t wait = deadline - now;
        if (poll(&pf, 1, wait > 200 ? 200 : (int)wait) <= 0 || !(pf.revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t r = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r <= 0) {
            snprintf(err, errlen, "the connection closed");
            return -ECONNRESET;
        }
        pthread_mutex_lock(&c->m->mu); /* the stream reads the cell's revocation list */
        rc = c->m->running ? mesh_stream_feed(c->st, buf, (size_t)r) : -ESHUTDOWN;
        pthread_mutex_unlock(&c->m->mu);
        if (rc < 0) {
            snprintf(err, errlen, "%s", rc == -ESHUTDOWN ? "the mesh stopped" : mesh_stream_error(c->st));
            return -EPROTO;
        }
    }
}

static void sconn_close(sconn *c)
{
    mesh_stream_free(c->st);
    free(c->msg);
    if (c->fd >= 0)
        close(c->fd);
    c->st = NULL, c->msg = NULL, c->fd = -1;
}

/* ---- feeding received packets (under mu) -------------------------------------------------- */

typedef struct feed {
    struct mesh_cell *m;
    const char *node_id;
    int bad;
} feed;

static int feed_one(void *ctx, const uint8_t *p, size_t n)
{
    feed *f = ctx;
    const uint8_t *id, *addr;
    size_t idlen, addrlen;
    char err[256];
    if (!packet_sender(p, n, &id, &idlen, &addr, &addrlen) || idlen != strlen(f->node_id) ||
        memcmp(id, f->node_id, idlen)) {
        f->m->forged++;
        f->bad++;
        return 0;
    }
    if (mesh_swim_receive(f->m->sw, f->m->now, p, n, err, sizeof err)) {
        f->m->malformed++;
        f->bad++;
        log_debug("mesh: sync packet from %s: %s", f->node_id, err);
    }
    return 0;
}

/* Under mu: the framed packets into swim, then the cell's pump; the cell
 * thread is woken to recompute its deadline. */
static int feed_all(struct mesh_cell *m, const char *node_id, const uint8_t *p, size_t n)
{
    feed f = {m, node_id, 0};
    if (!m->running || !m->sw)
        return -ESHUTDOWN;
    m->now = mono();
    int rc = each_packet(p, n, feed_one, &f);
    cell_pump(m, m->now);
    ssize_t w = write(m->wake[1], "s", 1);
    (void)w;
    return rc ? rc : f.bad ? -EBADMSG : 0;
}

/* ---- asking (the sync thread) ---------------------------------------------------------------- */

static void note_fallback(struct mesh_cell *m, const char *addr, const char *why)
{
    struct cell_sync *s = m->sync;
    for (size_t i = 0; i < s->nlogged; i++)
        if (!strcmp(s->logged[i], addr))
            return;
    if (s->nlogged < CELL_SYNC_LOGGED_MAX)
        core_sncpy(s->logged[s->nlogged++], sizeof s->logged[0], addr);
    log_info("mesh: full-state sync with %s over TCP failed (%s): sending it by UDP", addr, why);
}

static void note_tcp_ok(struct mesh_cell *m, const char *addr)
{
    struct cell_sync *s = m->sync;
    for (size_t i = 0; i < s->nlogged; i++)
        if (!strcmp(s->logged[i], addr)) {
            memmove(s->logged[i], s->logged[i + 1], (s->nlogged - i - 1) * sizeof s->logged[0]);
            s->nlogged--;
            return;
        }
}

typedef struct udp_ctx {
    struct mesh_cell *m;
    const char *addr;
} udp_ctx;

static int udp_one(void *ctx, const uint8_t *p, size_t n)
{
    udp_ctx *u = ctx;
    cell_send(u->m, u->m->now, u->addr, CELL_CH_SWIM, p, n);
    return 0;
}

/* Under mu: the job's packets by UDP. */
static void send_udp(struct mesh_cell *m, const sync_job *j)
{
    if (!m->running)
        return;
    udp_ctx u = {m, j->addr};
    m->now = mono();
    each_packet(j->buf + j->packets, j->len - j->packets, udp_one, &u);
    cell_pump(m, m->now);
}

/* One exchange: 0 done over TCP; -ENOTCONN no connection or handshake; other: failed after. */
static int exchange(struct mesh_cell *m, const sync_job *j, char *err, size_t errlen)
{
    sconn c = {.m = m, .fd = -1};
    uint64_t t0 = mono();
    int rc = cell_dial(j->addr, t0 + CELL_SYNC_CONNECT_MS, &c.fd, err, errlen);
    if (!rc) {
        pthread_mutex_lock(&m->mu);
        mesh_session_config sc = {.node = &m->node, .cert = &m->tok.cert, .fleet_pk = m->tok.cert.fleet_pk,
                                  .revoked = &m->rl};
        rc = m->running ? mesh_stream_new(&sc, true, NULL, &c.st, err, errlen) : -ESHUTDOWN;
        pthread_mutex_unlock(&m->mu);
    }
    if (!rc) {
        mesh_stream_on_message(c.st, on_msg, &c);
        rc = until(&c, WANT_ESTABLISHED, t0 + CELL_SYNC_CONNECT_MS, &m->sync->stop, err, errlen);
    }
    if (rc) {
        sconn_close(&c);
        return -ENOTCONN;
    }
    const mesh_identity_cert *cert = mesh_stream_peer(c.st);
    char peer[MESH_ID_NODE_ID_MAX + 1];
    core_sncpy(peer, sizeof peer, cert->node_id);
    if (j->id[0] && strcmp(peer, j->id)) {
        snprintf(err, errlen, "the cell there is %s, not %s", peer, j->id);
        rc = -EPROTO;
    }
    if (!rc && (rc = mesh_stream_send(c.st, j->buf, j->len)))
        snprintf(err, errlen, "send: %s", strerror(-rc));
    if (!rc)
        rc = until(&c, WANT_MESSAGE, t0 + CELL_SYNC_IO_MS, &m->sync->stop, err, errlen);
    if (!rc && (c.msg_len < 1 || c.msg[0] != ANS_OK)) {
        snprintf(err, errlen, "refused: %.200s", c.msg_len > 1 ? (const char *)c.msg + 1 : "(no reason)");
        rc = -EIO;
    }
    if (!rc) {
        size_t used = 0;
        pthread_mutex_lock(&m->mu); /* -- revsync: its revocations first, then its members */
        rc = !m->running ? -ESHUTDOWN : rev_take(m, peer, c.msg + 1, c.msg_len - 1, &used);
        if (!rc)
            rc = feed_all(m, peer, c.msg + 1 + used, c.msg_len - 1 - used);
        pthread_mutex_unlock(&m->mu);
        if (rc)
            snprintf(err, errlen, "its answer: %s", strerror(-rc));
        log_debug("mesh: full-state sync with %s (%s) over TCP: %zu bytes sent, %zu answered in %llu ms", peer,
                  j->addr, j->len, c.msg_len, (unsigned long long)(mono() - t0));
    }
    sconn_close(&c);
    return rc == -ENOTCONN ? -EIO : rc;
}

static void *sync_thread(void *arg)
{
    struct mesh_cell *m = arg;
    struct cell_sync *s = m->sync;
    pthread_mutex_lock(&m->mu);
    while (!atomic_load(&s->stop)) {
        size_t i = 0;
        while (i < s->njobs && !s->jobs[i].sealed)
            i++;
        if (i == s->njobs) {
            pthread_cond_wait(&s->cv, &m->mu);
            continue;
        }
        sync_job j = s->jobs[i]; /* taken off the queue: the buffer is ours */
        memmove(&s->jobs[i], &s->jobs[i + 1], (s->njobs - i - 1) * sizeof s->jobs[0]);
        s->njobs--;
        pthread_mutex_unlock(&m->mu);
        char err[256] = "";
        int rc = exchange(m, &j, err, sizeof err);
        pthread_mutex_lock(&m->mu);
        if (!rc) {
            m->sync_n[CELL_SYNC_TCP]++;
            note_tcp_ok(m, j.addr);
        } else if (!atomic_load(&s->stop)) {
            m->sync_n[rc == -ENOTCONN ? CELL_SYNC_UDP : CELL_SYNC_FAILED]++;
            if (rc == -ENOTCONN)
                note_fallback(m, j.addr, err);
            else
                log_info("mesh: full-state sync with %s failed: %s; sending it by UDP", j.addr, err);
            send_udp(m, &j);
        }
        free(j.buf);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

/* ---- serving (a cell_reason.c worker) ---------------------------------------------------------- */

static void serve_answer(struct mesh_cell *m, sconn *c, const uint8_t *ans, size_t n)
{
    char err[128];
    if (mesh_stream_send(c->st, ans, n) == 0)
        until(c, WANT_WRITTEN, mono() + CELL_SYNC_IO_MS, &m->reason_stop, err, sizeof err);
}

void cell_sync_serve(struct mesh_cell *m, int fd, struct mesh_stream *st, const uint8_t *msg, size_t len)
{
    sconn c = {.m = m, .fd = fd, .st = st};
    const mesh_identity_cert *cert = mesh_stream_peer(st);
    const uint8_t *id, *addr;
    size_t idlen, addrlen;
    const char *why = NULL;
    char peer_addr[MESH_SWIM_ADDR_MAX + 1];
    uint8_t *ans = NULL;
    size_t ans_len = 0;
    size_t pk0 = len >= 3 ? 3 + ((size_t)msg[1] << 8 | msg[2]) : len; /* -- revsync: the packets start here */
    if (pk0 + 3 > len || !packet_sender(msg + pk0 + 2, len - pk0 - 2, &id, &idlen, &addr, &addrlen))
        why = "not a sync request";
    pthread_mutex_lock(&m->mu);
    if (!why && (!m->sync || !m->running || m->sync->cap_addr))
        why = !m->sync || !m->running ? "the mesh is not running" : "busy";
    size_t used = 0; /* -- revsync: the sender's revocations before anything else */
    if (!why && rev_take(m, cert->node_id, msg + 1, len - 1, &used))
        why = "a revocation list that does not verify";
    if (!why && cell_revoked_pk(m, cert->node_pk))
        why = "revoked";
    if (!why) { /* the answers swim makes to the sender's address come back on this connection */
        snprintf(peer_addr, sizeof peer_addr, "%.*s", (int)addrlen, (const char *)addr);
        m->sync->cap_addr = peer_addr;
        m->sync->cap = NULL;
        m->sync->cap_len = 0;
        if (rev_head(m, ANS_OK, &m->sync->cap, &m->sync->cap_len) ||
            feed_all(m, cert->node_id, msg + 1 + used, len - 1 - used))
            why = "a malformed or forged packet";
        ans = m->sync->cap, ans_len = m->sync->cap_len;
        m->sync->cap_addr = NULL, m->sync->cap = NULL, m->sync->cap_len = 0;
        m->sync_n[why ? CELL_SYNC_FAILED : CELL_SYNC_SERVED]++;
    }
    pthread_mutex_unlock(&m->mu);
    if (why) {
        log_info("mesh: full-state sync from %s refused: %s", cert->node_id, why);
        uint8_t b[128];
        size_t n = strlen(why);
        b[0] = ANS_ERROR;
        memcpy(b + 1, why, n);
        serve_answer(m, &c, b, n + 1);
    } else {
        ans[0] = ANS_OK;
        serve_answer(m, &c, ans, ans_len);
    }
    free(ans);
}

/* ---- life and views ------------------------------------------------------------------------------- */

void cell_sync_start(struct mesh_cell *m)
{
    struct cell_sync *s = calloc(1, sizeof *s);
    if (!s) {
        log_warn("mesh: full-state sync over TCP: out of memory; UDP only");
        return;
    }
    pthread_cond_init(&s->cv, NULL);
    m->sync = s;
    if (pthread_create(&s->th, NULL, sync_thread, m)) {
        log_warn("mesh: full-state sync over TCP: cannot start its thread; UDP only");
        pthread_cond_destroy(&s->cv);
        free(s);
        m->sync = NULL;
        return;
    }
    s->th_started = true;
}

void cell_sync_stop(struct mesh_cell *m)
{
    pthread_mutex_lock(&m->mu);
    struct cell_sync *s = m->sync;
    if (s) {
        atomic_store(&s->stop, true);
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&m->mu);
    if (!s)
        return;
    if (s->th_started)
        pthread_join(s->th, NULL);
    pthread_mutex_lock(&m->mu);
    while (s->njobs)
        job_free(s, 0);
    m->sync = NULL;
    pthread_mutex_unlock(&m->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

json_t *cell_sync_json(const struct mesh_cell *m)
{
    return json_pack("{s:I, s:I, s:I, s:I}", "tcp", (json_int_t)m->sync_n[CELL_SYNC_TCP], "udp_fallback",
                     (json_int_t)m->sync_n[CELL_SYNC_UDP], "failed", (json_int_t)m->sync_n[CELL_SYNC_FAILED],
                     "served", (json_int_t)m->sync_n[CELL_SYNC_SERVED]);
}

void cell_sync_prometheus(const struct mesh_cell *m, char *out, size_t n)
{
    snprintf(out, n,
             "# HELP ippoc_mesh_sync_total Full-state sync exchanges this cell started, by the path they took\n"
             "# TYPE ippoc_mesh_sync_total counter\n"
             "ippoc_mesh_sync_total{path=\"tcp\"} %llu\nippoc_mesh_sync_total{path=\"udp_fallback\"} %llu\n"
             "ippoc_mesh_sync_total{path=\"failed\"} %llu\n"
             "# HELP ippoc_mesh_sync_served_total Full-state sync exchanges peers started with this cell over TCP\n"
             "# TYPE ippoc_mesh_sync_served_total counter\nippoc_mesh_sync_served_total %llu\n",
             (unsigned long long)m->sync_n[CELL_SYNC_TCP], (unsigned long long)m->sync_n[CELL_SYNC_UDP],
             (unsigned long long)m->sync_n[CELL_SYNC_FAILED], (unsigned long long)m->sync_n[CELL_SYNC_SERVED]);
}
