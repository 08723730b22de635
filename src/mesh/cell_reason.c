/* cell_reason.c: the reasoning path of the mesh (issue 15 item 5): a cell
 * without a model asks a reasoning peer to run a chat request through the
 * peer's own local model, over the mesh's TCP stream (stream.h: Noise XX
 * with certificates, 2-byte frames) on the UDP listen port's number.
 *
 * One request per connection; its first byte says what it is (kind 2 is a
 * full-state sync, served by cell_sync.c):
 *   request = kind(1) = 1 | timeout_ms u32 big-endian | OpenAI chat body (JSON text)
 *   answer  = status(1): 0 then the OpenAI answer body, 1 then an error message
 * The serving side is an accept thread and a thread per connection (at most
 * CELL_REASON_WORKERS at once): fleet members only (the stream's
 * certificate and revocation checks), a
 * request of at most CELL_REASON_MAX_REQ bytes, at most CELL_REASON_PER_MIN
 * requests a minute from one peer, and runs the body through the hook the
 * daemon set (its local model only). */
#include <errno.h>
#include <fcntl.h>
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

#define CELL_REASON_MAX_REQ (60 * 1024) /* bytes of a request's body */
#define CELL_REASON_PER_MIN 30          /* requests a minute from one peer (burst: as many) */
#define CELL_REASON_IO_MS 10000         /* a peer's handshake and request, at most */
#define CELL_REASON_WORKERS 4           /* connections served at once; more wait in the backlog */
#define CELL_REASON_PEERS_MAX 256
#define CELL_REASON_TRIES 3
#define CELL_REASON_CANDIDATES 64

enum { REQ_CHAT = 1 };
enum { ANS_OK = 0, ANS_ERROR = 1 };

struct cell_reason_peer {
    char id[MESH_ID_NODE_ID_MAX + 1];
    uint32_t fails;  /* consecutive failures asking it */
    double tokens;   /* its rate bucket when it asks us */
    uint64_t at_ms;
};

/* Small frames go out at once (Nagle and delayed ACKs cost 40 ms a request). */
static void nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static uint64_t mono(void)
{
    return (uint64_t)core_mono_ms();
}

/* Under mu: the entry of node id (added), NULL when the table is full. */
static struct cell_reason_peer *rpeer(struct mesh_cell *m, const char *id)
{
    for (size_t i = 0; i < m->nrpeers; i++)
        if (!strcmp(m->rpeers[i].id, id))
            return &m->rpeers[i];
    if (m->nrpeers >= CELL_REASON_PEERS_MAX)
        return NULL;
    struct cell_reason_peer *p = realloc(m->rpeers, (m->nrpeers + 1) * sizeof *p);
    if (!p)
        return NULL;
    m->rpeers = p;
    p = &m->rpeers[m->nrpeers++];
    memset(p, 0, sizeof *p);
    core_sncpy(p->id, sizeof p->id, id);
    p->tokens = CELL_REASON_PER_MIN;
    p->at_ms = mono();
    return p;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- one stream over one socket ------------------------------------------------------ */

typedef struct conn {
    struct mesh_cell *m;
    int fd;
    struct mesh_stream *st;
    uint8_t *msg; /* the first message received (owned) */
    size_t msg_len;
    bool got;
} conn;

static void on_msg(void *ctx, const uint8_t *data, size_t len)
{
    conn *c = ctx;
    if (c->got)
        return;
    c->msg = malloc(len + 1);
    if (!c->msg)
        return;
    memcpy(c->msg, data, len);
    c->msg[len] = 0;
    c->msg_len = len;
    c->got = true;
}

/* The stream's session config; under mu (the revocation list is the cell's). */
static int conn_open(conn *c, bool initiator, char *err, size_t errlen)
{
    struct mesh_cell *m = c->m;
    pthread_mutex_lock(&m->mu);
    int rc = -ESHUTDOWN;
    if (m->running) {
        mesh_session_config sc = {.node = &m->node, .cert = &m->tok.cert, .fleet_pk = m->tok.cert.fleet_pk,
                                  .revoked = &m->rl};
        rc = mesh_stream_new(&sc, initiator, NULL, &c->st, err, errlen);
    } else
        snprintf(err, errlen, "the mesh is not running");
    pthread_mutex_unlock(&m->mu);
    if (!rc)
        mesh_stream_on_message(c->st, on_msg, c);
    return rc;
}

static void conn_close(conn *c)
{
    mesh_stream_free(c->st);
    free(c->msg);
    if (c->fd >= 0)
        close(c->fd);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

/* Writes what the stream has pending without blocking: 0, or -errno. */
static int conn_flush(conn *c)
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

/* Moves bytes both ways until want(c) or the deadline: 0, -ETIMEDOUT,
 * -ECONNRESET (the peer hung up), -EPROTO (the stream failed), -ESHUTDOWN. */
static int conn_until(conn *c, bool (*want)(const conn *), uint64_t deadline, const atomic_bool *stop, char *err,
                      size_t errlen)
{
    uint8_t buf[16384];
    for (;;) {
        int rc = conn_flush(c);
        if (rc) {
            snprintf(err, errlen, "send: %s", strerror(-rc));
            return -ECONNRESET;
        }
        if (want(c))
            return 0;
        uint64_t now = mono();
        if (now >= deadline) {
            snprintf(err, errlen, "no answer in time");
            return -ETIMEDOUT;
        }
        if (stop && atomic_load(stop)) {
            snprintf(err, errlen, "the mesh is stopping");
            return -ESHUTDOWN;
        }
        const uint8_t *p;
        struct pollfd pf = {.fd = c->fd, .events = POLLIN | (mesh_stream_pending(c->st, &p) ? POLLOUT : 0)};
        uint64_t wait = deadline - now;
        if (poll(&pf, 1, wait > 200 ? 200 : (int)wait) <= 0)
            continue;
        if (!(pf.revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t r = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r <= 0) {
            snprintf(err, errlen, "the connection closed%s%s", r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
            return -ECONNRESET;
        }
        pthread_mutex_lock(&c->m->mu); /* the stream reads the cell's revocation list */
        bool running = c->m->running;
        rc = running ? mesh_stream_feed(c->st, buf, (size_t)r) : -ESHUTDOWN;
        pthread_mutex_unlock(&c->m->mu);
        if (rc == -ESHUTDOWN && !running) {
            snprintf(err, errlen, "the mesh stopped");
            return rc;
        }
        if (rc < 0) {
            snprintf(err, errlen, "%s", mesh_stream_error(c->st));
            return -EPROTO;
        }
    }
}

static bool is_established(const conn *c)
{
    return mesh_stream_established(c->st);
}

static bool has_message(const conn *c)
{
    return c->got;
}

static bool all_written(const conn *c)
{
    const uint8_t *p;
    return mesh_stream_pending(c->st, &p) == 0;
}

/* ---- serving ---------------------------------------------------------------------------- */

/* Under mu: whether peer id may ask once more now (a bucket of PER_MIN a minute). */
static bool rate_ok(struct mesh_cell *m, const char *id)
{
    struct cell_reason_peer *p = rpeer(m, id);
    if (!p)
        return false;
    uint64_t now = mono();
    p->tokens += (double)(now - p->at_ms) * CELL_REASON_PER_MIN / 60000.0;
    if (p->tokens > CELL_REASON_PER_MIN)
        p->tokens = CELL_REASON_PER_MIN;
    p->at_ms = now;
    if (p->tokens < 1)
        return false;
    p->tokens -= 1;
    return true;
}

static void answer(conn *c, uint8_t status, const char *text)
{
    size_t n = strlen(text);
    uint8_t *b = malloc(n + 1);
    if (!b)
        return;
    b[0] = status;
    memcpy(b + 1, text, n);
    if (mesh_stream_send(c->st, b, n + 1) == 0) {
        char err[64];
        conn_until(c, all_written, mono() + 5000, &c->m->reason_stop, err, sizeof err);
    }
    free(b);
}

/* The request's checks: NULL when it may run, else the refusal. */
static const char *refusal(struct mesh_cell *m, const conn *c, const mesh_identity_cert *peer, char *why,
                           size_t n)
{
    if (c->msg_len < 5 || c->msg[0] != REQ_CHAT)
        return "not a reasoning request";
    if (c->msg_len - 5 > CELL_REASON_MAX_REQ) {
        snprintf(why, n, "the request (%zu bytes) is over this peer's limit of %d bytes", c->msg_len - 5,
                 CELL_REASON_MAX_REQ);
        return why;
    }
    pthread_mutex_lock(&m->mu);
    bool serves = m->reasoner && (m->roles & MESH_ROLE_REASONING);
    bool revoked = cell_revoked_pk(m, peer->node_pk);
    bool rate = !revoked && serves && rate_ok(m, peer->node_id);
    pthread_mutex_unlock(&m->mu);
    if (revoked)
        return "revoked";
    if (!serves)
        return "this cell does not serve reasoning (no local model or no reasoning role)";
    if (!rate) {
        snprintf(why, n, "rate limited: at most %d requests a minute from one peer", CELL_REASON_PER_MIN);
        return why;
    }
    return NULL;
}

static void serve(struct mesh_cell *m, int fd)
{
    conn c = {.m = m, .fd = fd};
    char err[512], why[160];
    int rc = conn_open(&c, false, err, sizeof err);
    uint64_t deadline = mono() + CELL_REASON_IO_MS;
    if (!rc)
        rc = conn_until(&c, is_established, deadline, &m->reason_stop, err, sizeof err);
    if (!rc)
        rc = conn_until(&c, has_message, deadline, &m->reason_stop, err, sizeof err);
    if (rc) { /* not a member, or it said nothing in time: no answer */
        log_debug("mesh: reasoning connection refused: %s", err);
        conn_close(&c);
        return;
    }
    if (c.msg_len >= 1 && c.msg[0] == CELL_TCP_SYNC) { /* -- pushpull: a full-state sync (cell_sync.c) */
        cell_sync_serve(m, c.fd, c.st, c.msg, c.msg_len);
        conn_close(&c);
        return;
    }
    const mesh_identity_cert *peer = mesh_stream_peer(c.st);
    const char *no = refusal(m, &c, peer, why, sizeof why);
    char *ans = NULL;
    if (!no) {
        pthread_mutex_lock(&m->mu);
        mesh_reason_fn fn = m->reasoner;
        void *ud = m->reasoner_ud;
        pthread_mutex_unlock(&m->mu);
        err[0] = 0;
        rc = fn(ud, (const char *)c.msg + 5, (int)get_u32(c.msg + 1), &ans, err, sizeof err);
        if (rc || !ans)
            no = err[0] ? err : "the local model failed";
        else if (strlen(ans) + 1 > MESH_STREAM_MAX_MSG)
            no = "the answer is over the mesh's message limit";
    }
    log_info("mesh: reasoning request from %s: %s", peer->node_id, no ? no : "answered");
    atomic_fetch_add(&m->reason_n[no ? CELL_REASON_SERVED_ERR : CELL_REASON_SERVED_OK], 1);
    answer(&c, no ? ANS_ERROR : ANS_OK, no ? no : ans);
    free(ans);
    conn_close(&c);
}

/* A connection being served on its own thread (the accept thread joins it). */
typedef struct worker {
    struct mesh_cell *m;
    int fd;
    pthread_t th;
    bool used;
    atomic_bool done;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    serve(w->m, w->fd);
    atomic_store(&w->done, true);
    return NULL;
}

/* Joins the workers that are done (all: every one); the number still busy. */
static int reap(worker *ws, bool all)
{
    int busy = 0;
    for (int i = 0; i < CELL_REASON_WORKERS; i++) {
        if (ws[i].used && (all || atomic_load(&ws[i].done))) {
            pthread_join(ws[i].th, NULL);
            ws[i].used = false;
        }
        busy += ws[i].used;
    }
    return busy;
}

static void *reason_thread(void *arg)
{
    struct mesh_cell *m = arg;
    worker ws[CELL_REASON_WORKERS];
    memset(ws, 0, sizeof ws);
    while (!atomic_load(&m->reason_stop)) {
        bool full = reap(ws, false) == CELL_REASON_WORKERS; /* then the next waits in the backlog */
        struct pollfd pf[2] = {{.fd = m->reason_wake[0], .events = POLLIN}, {.fd = m->tcp_fd, .events = POLLIN}};
        if (poll(pf, full ? 1 : 2, full ? 20 : 1000) <= 0 || full || !(pf[1].revents & POLLIN))
            continue;
        int fd = accept4(m->tcp_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        nodelay(fd);
        worker *w = NULL;
        for (int i = 0; i < CELL_REASON_WORKERS && !w; i++)
            if (!ws[i].used)
                w = &ws[i];
        if (!w) { /* not full a moment ago: cannot happen, but never a NULL */
            close(fd);
            continue;
        }
        w->m = m;
        w->fd = fd;
        atomic_store(&w->done, false);
        if (pthread_create(&w->th, NULL, worker_main, w)) {
            log_warn("mesh: reasoning: cannot start a thread for a connection; closed");
            close(fd);
            continue;
        }
        w->used = true;
    }
    reap(ws, true);
    return NULL;
}

/* A numeric "ip:port" / "[ip6]:port" into a socket address. */
static int addr_numeric(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[128], port[16];
    int p;
    if (core_split_hostport(s, host, sizeof host, &p))
        return -EINVAL;
    snprintf(port, sizeof port, "%d", p);
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) || !res)
        return -EINVAL;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* Closes the listener and the wake pipe (those open) and marks them closed. */
static void close_fds(struct mesh_cell *m)
{
    for (int i = 0; i < 2; i++)
        if (m->reason_wake[i] >= 0)
            close(m->reason_wake[i]);
    if (m->tcp_fd >= 0)
        close(m->tcp_fd);
    m->tcp_fd = m->reason_wake[0] = m->reason_wake[1] = -1;
}

void cell_reason_start(struct mesh_cell *m)
{
    struct sockaddr_storage ss;
    socklen_t len;
    m->tcp_fd = m->reason_wake[0] = m->reason_wake[1] = -1;
    if (addr_numeric(m->listen, &ss, &len)) {
        log_warn("mesh: reasoning: %s is not an address; serving nobody", m->listen);
        return;
    }
    int one = 1;
    m->tcp_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (m->tcp_fd < 0 || setsockopt(m->tcp_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(m->tcp_fd, (struct sockaddr *)&ss, len) || listen(m->tcp_fd, 16) ||
        pipe2(m->reason_wake, O_NONBLOCK | O_CLOEXEC)) {
        log_warn("mesh: reasoning: cannot listen on TCP %s: %s; serving nobody", m->listen, strerror(errno));
        goto fail;
    }
    atomic_store(&m->reason_stop, false);
    int rc = pthread_create(&m->reason_th, NULL, reason_thread, m);
    if (rc) {
        log_warn("mesh: reasoning: cannot start its thread: %s", strerror(rc));
        goto fail;
    }
    m->reason_th_started = true;
    return;
fail:
    close_fds(m);
}

void cell_reason_stop(struct mesh_cell *m)
{
    pthread_mutex_lock(&m->mu);
    bool th = m->reason_th_started;
    pthread_mutex_unlock(&m->mu);
    if (th) {
        atomic_store(&m->reason_stop, true);
        ssize_t w = write(m->reason_wake[1], "x", 1);
        (void)w;
        pthread_join(m->reason_th, NULL);
    }
    pthread_mutex_lock(&m->mu);
    m->reason_th_started = false;
    close_fds(m);
    free(m->rpeers);
    m->rpeers = NULL;
    m->nrpeers = 0;
    pthread_mutex_unlock(&m->mu);
}

void mesh_cell_set_reasoner(mesh_cell *m, mesh_reason_fn fn, void *ud)
{
    pthread_mutex_lock(&m->mu);
    m->reasoner = fn;
    m->reasoner_ud = ud;
    pthread_mutex_unlock(&m->mu);
}

/* ---- asking ------------------------------------------------------------------------------- */

typedef struct cand {
    char id[MESH_ID_NODE_ID_MAX + 1];
    char addr[MESH_SESSION_ADDR_MAX + 1];
    uint32_t fails;
} cand;

typedef struct cands {
    cand c[CELL_REASON_CANDIDATES];
    size_t n;
} cands;

static void cand_one(void *ctx, const struct mesh_swim_member_info *mi)
{
    cands *cs = ctx;
    cell_caps caps;
    if (mi->self || mi->state != MESH_SWIM_ALIVE || !mi->addr[0] || cs->n >= CELL_REASON_CANDIDATES ||
        cell_caps_decode(mi->meta, mi->meta_len, &caps) || !(caps.roles & MESH_ROLE_REASONING) || !caps.llm)
        return;
    cand *c = &cs->c[cs->n++];
    core_sncpy(c->id, sizeof c->id, mi->id);
    core_sncpy(c->addr, sizeof c->addr, mi->addr);
    c->fails = 0;
}

/* Under mu: the alive reasoning peers with their failure counts. */
static void candidates(struct mesh_cell *m, cands *cs)
{
    cs->n = 0;
    if (!m->running || !m->sw)
        return;
    mesh_swim_members(m->sw, cand_one, cs);
    for (size_t i = 0; i < cs->n; i++)
        for (size_t j = 0; j < m->nrpeers; j++)
            if (!strcmp(m->rpeers[j].id, cs->c[i].id))
                cs->c[i].fails = m->rpeers[j].fails;
}

/* Under mu: the next peer to ask (fewest failures, round-robin among
 * equals), not one of the tried; false when none. */
static bool pick(struct mesh_cell *m, char tried[][MESH_ID_NODE_ID_MAX + 1], int ntried, cand *out)
{
    cands cs;
    candidates(m, &cs);
    uint32_t best = UINT32_MAX;
    size_t neq = 0;
    for (size_t i = 0; i < cs.n; i++) {
        bool skip = false;
        for (int t = 0; t < ntried; t++)
            skip |= !strcmp(tried[t], cs.c[i].id);
        if (skip)
            cs.c[i].fails = UINT32_MAX; /* never chosen */
        else if (cs.c[i].fails < best)
            best = cs.c[i].fails, neq = 1;
        else if (cs.c[i].fails == best)
            neq++;
    }
    if (!neq)
        return false;
    size_t k = (size_t)(m->reason_rr++ % neq);
    for (size_t i = 0; i < cs.n; i++)
        if (cs.c[i].fails == best && k-- == 0) {
            *out = cs.c[i];
            return true;
        }
    return false;
}

static void note_outcome(struct mesh_cell *m, const char *id, bool ok)
{
    pthread_mutex_lock(&m->mu);
    struct cell_reason_peer *p = rpeer(m, id);
    if (p)
        p->fails = ok ? 0 : p->fails + 1;
    pthread_mutex_unlock(&m->mu);
}

bool mesh_cell_reason_available(void *cell)
{
    struct mesh_cell *m = cell;
    if (!m)
        return false;
    cands cs;
    pthread_mutex_lock(&m->mu);
    candidates(m, &cs);
    pthread_mutex_unlock(&m->mu);
    return cs.n > 0;
}

/* Connects a non-blocking TCP socket (TCP_NODELAY) to the numeric addr
 * before the deadline (core_mono_ms): 0, or -errno with err; *fd is set
 * whenever a socket was made, for the caller to close. The reasoning and
 * sync paths both dial with it. */
int cell_dial(const char *addr, uint64_t deadline, int *fd, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (addr_numeric(addr, &ss, &len)) {
        snprintf(err, errlen, "%s is not an address", addr);
        return -EINVAL;
    }
    *fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (*fd < 0) {
        int e = errno;
        snprintf(err, errlen, "socket: %s", strerror(e));
        return -e;
    }
    nodelay(*fd);
    if (connect(*fd, (struct sockaddr *)&ss, len) && errno != EINPROGRESS) {
        int e = errno;
        snprintf(err, errlen, "connect: %s", strerror(e));
        return -e;
    }
    struct pollfd pf = {.fd = *fd, .events = POLLOUT};
    uint64_t now = mono();
    if (now >= deadline || poll(&pf, 1, (int)(deadline - now)) <= 0) {
        snprintf(err, errlen, "connect: no answer in time");
        return -ETIMEDOUT;
    }
    int e = 0;
    socklen_t el = sizeof e;
    getsockopt(*fd, SOL_SOCKET, SO_ERROR, &e, &el);
    if (e) {
        snprintf(err, errlen, "connect: %s", strerror(e));
        return -e;
    }
    return 0;
}

/* One peer: connect, handshake, check its certificate, ask, read the answer. */
static int ask_peer(struct mesh_cell *m, const cand *p, const char *body, uint64_t deadline, char **ans, char *err,
                    size_t errlen)
{
    conn c = {.m = m, .fd = -1};
    char e[400] = "";
    size_t blen = strlen(body);
    int rc = cell_dial(p->addr, deadline, &c.fd, e, sizeof e);
    if (!rc)
        rc = conn_open(&c, true, e, sizeof e);
    if (!rc)
        rc = conn_until(&c, is_established, deadline, NULL, e, sizeof e);
    const mesh_identity_cert *cert = rc ? NULL : mesh_stream_peer(c.st);
    if (cert && strcmp(cert->node_id, p->id)) {
        snprintf(e, sizeof e, "the cell there is %s", cert->node_id);
        rc = -EPROTO;
    } else if (cert && !(cert->roles & MESH_ROLE_REASONING)) {
        snprintf(e, sizeof e, "its certificate does not grant the reasoning role");
        rc = -EPROTO;
    }
    uint8_t *req = rc ? NULL : malloc(blen + 5);
    if (!rc && !req)
        rc = -ENOMEM;
    if (!rc) {
        uint64_t left = deadline - mono();
        req[0] = REQ_CHAT;
        put_u32(req + 1, (uint32_t)(left > 1000 ? left - 500 : left)); /* the peer answers before we give up */
        memcpy(req + 5, body, blen);
        rc = mesh_stream_send(c.st, req, blen + 5);
        if (rc)
            snprintf(e, sizeof e, "send: %s", strerror(-rc));
        free(req);
    }
    if (!rc)
        rc = conn_until(&c, has_message, deadline, NULL, e, sizeof e);
    if (!rc && (c.msg_len < 1 || c.msg[0] != ANS_OK)) {
        snprintf(e, sizeof e, "refused: %.300s", c.msg_len > 1 ? (const char *)c.msg + 1 : "(no reason)");
        rc = -EIO;
    }
    if (!rc) {
        *ans = strdup((const char *)c.msg + 1);
        rc = *ans ? 0 : -ENOMEM;
    }
    if (rc)
        snprintf(err, errlen, "reasoning peer %s (%s): %s", p->id, p->addr, e[0] ? e : strerror(-rc));
    conn_close(&c);
    return rc;
}

int mesh_cell_reason(void *cell, const char *body_json, int timeout_ms, char **answer_json, char *err,
                     size_t errlen)
{
    struct mesh_cell *m = cell;
    *answer_json = NULL;
    size_t blen = body_json ? strlen(body_json) : 0;
    if (!m || !blen) {
        snprintf(err, errlen, "no mesh or no request");
        return -EINVAL;
    }
    if (blen > CELL_REASON_MAX_REQ) {
        snprintf(err, errlen, "the request (%zu bytes) is over the mesh's limit of %d bytes", blen,
                 CELL_REASON_MAX_REQ);
        atomic_fetch_add(&m->reason_n[CELL_REASON_ASKED_ERR], 1);
        return -EMSGSIZE;
    }
    uint64_t deadline = mono() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 60000);
    char tried[CELL_REASON_TRIES][MESH_ID_NODE_ID_MAX + 1];
    int ntried = 0, rc = -EHOSTUNREACH;
    snprintf(err, errlen, "no reasoning peer of the mesh is reachable");
    while (ntried < CELL_REASON_TRIES && mono() < deadline) {
        cand p;
        pthread_mutex_lock(&m->mu);
        bool have = pick(m, tried, ntried, &p);
        pthread_mutex_unlock(&m->mu);
        if (!have)
            break;
        core_sncpy(tried[ntried], sizeof tried[ntried], p.id);
        ntried++;
        rc = ask_peer(m, &p, body_json, deadline, answer_json, err, errlen);
        note_outcome(m, p.id, rc == 0);
        if (!rc)
            break;
        log_info("mesh: %s", err);
    }
    atomic_fetch_add(&m->reason_n[rc ? CELL_REASON_ASKED_ERR : CELL_REASON_ASKED_OK], 1);
    return rc;
}

/* ---- views ------------------------------------------------------------------------------------ */

json_t *cell_reason_json(const struct mesh_cell *m)
{
    unsigned long long ao = atomic_load(&m->reason_n[CELL_REASON_ASKED_OK]),
                       ae = atomic_load(&m->reason_n[CELL_REASON_ASKED_ERR]),
                       so = atomic_load(&m->reason_n[CELL_REASON_SERVED_OK]),
                       se = atomic_load(&m->reason_n[CELL_REASON_SERVED_ERR]);
    return json_pack("{s:I, s:I, s:I, s:b}", "asked", (json_int_t)(ao + ae), "served", (json_int_t)(so + se), "failed",
                     (json_int_t)(ae + se), "serving", m->reason_th_started && m->reasoner != NULL);
}

void cell_reason_prometheus(const struct mesh_cell *m, char *out, size_t n)
{
    static const char *const lbl[4][2] = {{"asked", "ok"}, {"asked", "error"}, {"served", "ok"}, {"served", "error"}};
    int w = snprintf(out, n,
                     "# HELP ippoc_mesh_reasoning_requests_total Reasoning requests this cell asked peers and "
                     "served for them, by outcome\n# TYPE ippoc_mesh_reasoning_requests_total counter\n");
    for (int i = 0; i < 4 && w >= 0 && (size_t)w < n; i++)
        w += snprintf(out + w, n - (size_t)w, "ippoc_mesh_reasoning_requests_total{role=\"%s\",outcome=\"%s\"} %llu\n",
                      lbl[i][0], lbl[i][1], (unsigned long long)atomic_load(&m->reason_n[i]));
}
