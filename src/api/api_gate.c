/* api_gate.c: the gate in front of libmicrohttpd. One thread per listening
 * socket accepts connections and holds each one (a descriptor in a poll set,
 * no thread, no MHD slot) until its whole request head - and a small body -
 * has arrived, within API_HEAD_TIMEOUT_MS in all (not per byte). A request
 * that is complete and well-formed (api_head_check) is handed to MHD with
 * MHD_add_connection; a malformed one is answered here with the API's JSON
 * error, a late one with 408, and one over the connection limits (overall,
 * per client address) with 503: each then closed at once. So a client that
 * trickles bytes holds nothing for more than a few seconds, and MHD never
 * answers with its own HTML error pages for a bad head.
 *
 * The gate only peeks (MSG_PEEK): the bytes stay in the socket for MHD. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <unistd.h>

#include "api/api_int.h"

#define GATE_LINGER_MS 500  /* after an error answer: drain, then close */
#define GATE_RECHECK_MS 10  /* a partial request is peeked again at most this often */
#define GATE_ACCEPT_PAUSE_MS 100 /* out of descriptors: accept again after this */
#define GATE_HANDOFF_MS 1000 /* a hand-off MHD has not started by then failed there */
#define GATE_PEEK_MAX (API_MAX_URI + API_HEAD_MAX + API_CHUNKED_WIRE_MAX + 2048)

typedef struct gate_conn {
    int fd;
    int64_t since;      /* monotonic ms, accepted */
    int64_t deadline;   /* head due / linger over */
    int64_t next_check; /* not peeked again before */
    bool closing;       /* answered here: draining until EOF or deadline */
    bool continued;     /* sent "100 Continue" (the client asked for it) */
    struct sockaddr_storage addr;
    socklen_t alen;
} gate_conn;

typedef struct ip_count {
    unsigned char key[17]; /* family, then the address bytes */
    unsigned n;
} ip_count;

/* A connection handed to MHD that MHD has not started yet. */
typedef struct handed {
    int fd;
    int64_t at; /* monotonic ms, handed off */
    unsigned char key[17];
} handed;

struct api_gate {
    int fd, wake[2];
    struct MHD_Daemon *mhd;
    unsigned max_active, per_ip;
    int head_timeout_ms;
    pthread_mutex_t lock; /* active, ips: MHD's threads call api_gate_notify */
    unsigned active;
    ip_count *ips;
    unsigned nips;
    handed inflight[API_PENDING_MAX]; /* counted against the limits too */
    unsigned ninflight;
    gate_conn pend[API_PENDING_MAX];
    int npend;
    int64_t accept_after;
    pthread_t thread;
    bool started;
    struct pollfd pfd[2 + API_PENDING_MAX];
    int idx[API_PENDING_MAX];
    char peek[GATE_PEEK_MAX];
};

static char counted; /* marks an MHD connection counted in active */

/* ---- per-address counts ------------------------------------------------------ */
static void ip_key(const struct sockaddr *sa, unsigned char key[17])
{
    memset(key, 0, 17);
    if (!sa)
        return;
    key[0] = (unsigned char)sa->sa_family;
    if (sa->sa_family == AF_INET)
        memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    else if (sa->sa_family == AF_INET6)
        memcpy(key + 1, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
}

/* The count of an address (created at 0 when absent and room is left). */
static ip_count *ip_slot(api_gate *g, const struct sockaddr *sa, bool create)
{
    unsigned char key[17];
    ip_key(sa, key);
    ip_count *free_slot = NULL;
    for (unsigned i = 0; i < g->nips; i++) {
        if (!memcmp(g->ips[i].key, key, sizeof key))
            return &g->ips[i];
        if (!free_slot && g->ips[i].n == 0)
            free_slot = &g->ips[i];
    }
    if (!create)
        return NULL;
    if (!free_slot && g->nips < g->max_active + 8)
        free_slot = &g->ips[g->nips++];
    if (free_slot)
        memcpy(free_slot->key, key, sizeof key);
    return free_slot;
}

/* MHD_add_connection only queues a connection: MHD starts it (and so calls
 * api_gate_notify) later, on its own thread. Until then the gate counts it
 * itself, or a burst handed off in one go would pass the limits. One MHD
 * never starts (it failed there) is forgotten after GATE_HANDOFF_MS. These
 * run with the lock held. */
static void inflight_drop(api_gate *g, int fd)
{
    for (unsigned i = 0; i < g->ninflight; i++)
        if (g->inflight[i].fd == fd) {
            g->inflight[i] = g->inflight[--g->ninflight];
            return;
        }
}

static void inflight_expire(api_gate *g, int64_t now)
{
    for (unsigned i = 0; i < g->ninflight;) {
        if (now - g->inflight[i].at >= GATE_HANDOFF_MS)
            g->inflight[i] = g->inflight[--g->ninflight];
        else
            i++;
    }
}

static unsigned inflight_from(const api_gate *g, const unsigned char key[17])
{
    unsigned n = 0;
    for (unsigned i = 0; i < g->ninflight; i++)
        n += !memcmp(g->inflight[i].key, key, 17);
    return n;
}

void api_gate_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                     enum MHD_ConnectionNotificationCode code)
{
    api_gate *g = cls;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    pthread_mutex_lock(&g->lock);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fi = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (fi)
            inflight_drop(g, fi->connect_fd);
        g->active++;
        ip_count *ip = ip_slot(g, sa, true);
        if (ip)
            ip->n++;
        *socket_context = &counted;
    } else if (*socket_context == &counted) {
        g->active--;
        ip_count *ip = ip_slot(g, sa, false);
        if (ip && ip->n)
            ip->n--;
        *socket_context = NULL;
    }
    pthread_mutex_unlock(&g->lock);
}

/* ---- answers from the gate ------------------------------------------------------- */
static const char *reason_phrase(unsigned status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

/* Writes the JSON error (best effort: a few hundred bytes into an empty send
 * buffer), ends our side, and lets the connection drain. */
static void answer(gate_conn *c, unsigned status, const char *code, const char *msg)
{
    char *body = api_error_body(code, msg);
    char head[512];
    size_t blen = body ? strlen(body) : 0;
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
                      "Connection: close\r\nContent-Length: %zu\r\n\r\n",
                      status, reason_phrase(status), blen);
    struct iovec iov[2] = {{head, (size_t)hl}, {body, blen}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = body ? 2 : 1};
    if (sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        log_debug("api: gate: cannot answer %u: %s", status, strerror(errno));
    free(body);
    shutdown(c->fd, SHUT_WR);
    c->closing = true;
    c->deadline = core_mono_ms() + GATE_LINGER_MS;
}

static void drop(gate_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* ---- hand-off -------------------------------------------------------------------- */
static void hand_off(api_gate *g, gate_conn *c, int64_t now)
{
    char msg[128];
    const struct sockaddr *sa = (struct sockaddr *)&c->addr;
    unsigned char key[17];
    ip_key(sa, key);
    pthread_mutex_lock(&g->lock);
    inflight_expire(g, now);
    ip_count *ip = ip_slot(g, sa, false);
    bool full = g->active + g->ninflight >= g->max_active || g->ninflight == API_PENDING_MAX;
    bool ip_full = g->per_ip && (ip ? ip->n : 0) + inflight_from(g, key) >= g->per_ip;
    if (!full && !ip_full) {
        handed *h = &g->inflight[g->ninflight++];
        h->fd = c->fd;
        h->at = now;
        memcpy(h->key, key, sizeof key);
    }
    pthread_mutex_unlock(&g->lock);
    if (full || ip_full) {
        snprintf(msg, sizeof msg, full ? "too many connections (%u): try again shortly"
                                       : "too many connections from this address (%u): try again shortly",
                 full ? g->max_active : g->per_ip);
        answer(c, 503, "busy", msg);
        return;
    }
    int fd = c->fd;
    c->fd = -1; /* MHD owns it now, even on failure */
    if (MHD_add_connection(g->mhd, fd, sa, c->alen) != MHD_YES) {
        log_debug("api: gate: MHD refused a connection: %s", strerror(errno));
        pthread_mutex_lock(&g->lock);
        inflight_drop(g, fd);
        pthread_mutex_unlock(&g->lock);
    }
}

/* The request is not whole yet. A client that asked for it is invited to
 * send its body (MHD may invite it once more: clients take any number of
 * 1xx answers). */
static void wait_more(gate_conn *c, const api_head *h, int64_t now)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (h->head_len && h->expect_continue && h->http11 && !c->continued) {
        c->continued = true;
        if (send(c->fd, cont, sizeof cont - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
            log_debug("api: gate: cannot send 100 Continue: %s", strerror(errno));
    }
    c->next_check = now + GATE_RECHECK_MS;
}

/* A pending connection is readable (or hung up). */
static void on_ready(api_gate *g, gate_conn *c, short revents, int64_t now)
{
    if (c->closing) {
        ssize_t n = recv(c->fd, g->peek, sizeof g->peek, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            drop(c);
        return;
    }
    ssize_t n = recv(c->fd, g->peek, sizeof g->peek, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        drop(c); /* gone before sending a request */
        return;
    }
    if (n < 0)
        return;
    api_head h;
    int rc = api_head_check(g->peek, (size_t)n, &h);
    if (rc == API_HEAD_BAD)
        answer(c, h.status, h.code, h.msg);
    else if (rc == API_HEAD_OK)
        hand_off(g, c, now);
    else if (revents & (POLLRDHUP | POLLHUP | POLLERR))
        answer(c, 400, "bad_request", "the request ended early (the client closed its side)");
    else if ((size_t)n == sizeof g->peek)
        answer(c, 431, "too_large", "the request head is too long");
    else
        wait_more(c, &h, now);
}

/* Deadlines: a head that is late gets 408; a drained answer is closed. */
static void expire(api_gate *g, int64_t now)
{
    char msg[128];
    for (int i = 0; i < g->npend; i++) {
        gate_conn *c = &g->pend[i];
        if (c->fd < 0 || now < c->deadline)
            continue;
        if (c->closing) {
            drop(c);
            continue;
        }
        snprintf(msg, sizeof msg, "the request did not arrive within %d ms", g->head_timeout_ms);
        answer(c, 408, "timeout", msg);
    }
}

static void compact(api_gate *g)
{
    int j = 0;
    for (int i = 0; i < g->npend; i++)
        if (g->pend[i].fd >= 0)
            g->pend[j++] = g->pend[i];
    g->npend = j;
}

/* Room for one more: the oldest waiting connection makes way (503). */
static void evict_oldest(api_gate *g)
{
    int old = 0;
    for (int i = 1; i < g->npend; i++)
        if (g->pend[i].since < g->pend[old].since)
            old = i;
    gate_conn *c = &g->pend[old];
    if (!c->closing)
        answer(c, 503, "busy", "too many connections waiting to send a request");
    drop(c);
    g->pend[old] = g->pend[--g->npend];
}

static void accept_all(api_gate *g, int64_t now)
{
    for (int k = 0; k < 64; k++) {
        gate_conn c = {.alen = sizeof c.addr};
        c.fd = accept4(g->fd, (struct sockaddr *)&c.addr, &c.alen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c.fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                log_warn("api: gate: cannot accept: %s", strerror(errno));
                g->accept_after = now + GATE_ACCEPT_PAUSE_MS;
            }
            return;
        }
        if (g->npend == API_PENDING_MAX)
            evict_oldest(g);
        c.since = now;
        c.deadline = now + g->head_timeout_ms;
        g->pend[g->npend++] = c;
    }
}

static void *gate_main(void *arg)
{
    api_gate *g = arg;
    struct pollfd *pfd = g->pfd;
    int *idx = g->idx;
    for (;;) {
        int64_t now = core_mono_ms();
        expire(g, now);
        compact(g);
        int n = 0, wait = -1; /* nothing pending: sleep until a connection or the stop */
        pfd[n++] = (struct pollfd){.fd = g->wake[0], .events = POLLIN};
        bool listening = now >= g->accept_after;
        pfd[n++] = (struct pollfd){.fd = listening ? g->fd : -1, .events = POLLIN};
        if (!listening)
            wait = (int)(g->accept_after - now);
        for (int i = 0; i < g->npend; i++) {
            gate_conn *c = &g->pend[i];
            int64_t due = c->deadline;
            if (!c->closing && c->next_check > now) {
                due = c->next_check < due ? c->next_check : due;
            } else {
                idx[n - 2] = i;
                pfd[n++] = (struct pollfd){.fd = c->fd, .events = POLLIN | POLLRDHUP};
            }
            if (wait < 0 || due - now < wait)
                wait = (int)(due - now < 0 ? 0 : due - now);
        }
        int r = poll(pfd, (nfds_t)n, wait);
        if (r < 0 && errno != EINTR) {
            log_err("api: gate: poll: %s", strerror(errno));
            break;
        }
        if (r <= 0)
            continue;
        if (pfd[0].revents)
            break;
        now = core_mono_ms();
        for (int k = 2; k < n; k++)
            if (pfd[k].revents)
                on_ready(g, &g->pend[idx[k - 2]], pfd[k].revents, now);
        compact(g);
        if (pfd[1].revents & POLLIN)
            accept_all(g, now);
    }
    return NULL;
}

/* ---- life ------------------------------------------------------------------------- */
int api_gate_new(api_gate **out, int fd, unsigned max_active, unsigned per_ip, char *err, size_t errlen)
{
    api_gate *g = calloc(1, sizeof *g);
    if (g)
        g->ips = calloc(max_active + 8, sizeof *g->ips);
    if (!g || !g->ips) {
        if (g)
            free(g);
        snprintf(err, errlen, "api: out of memory");
        return -ENOMEM;
    }
    if (pipe2(g->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        int e = errno;
        free(g->ips);
        free(g);
        snprintf(err, errlen, "api: pipe: %s", strerror(e));
        return -e;
    }
    g->fd = fd;
    g->max_active = max_active;
    g->per_ip = per_ip;
    g->head_timeout_ms = API_HEAD_TIMEOUT_MS;
    pthread_mutex_init(&g->lock, NULL);
    *out = g;
    return 0;
}

int api_gate_run(api_gate *g, struct MHD_Daemon *mhd, char *err, size_t errlen)
{
    g->mhd = mhd;
    int rc = pthread_create(&g->thread, NULL, gate_main, g);
    if (rc) {
        snprintf(err, errlen, "api: cannot start a thread: %s", strerror(rc));
        return -rc;
    }
    g->started = true;
    return 0;
}

void api_gate_stop(api_gate *g)
{
    if (!g || g->fd < 0)
        return;
    if (g->started) {
        char b = 1;
        if (write(g->wake[1], &b, 1) < 0)
            log_warn("api: gate: cannot wake its thread: %s", strerror(errno));
        pthread_join(g->thread, NULL);
        g->started = false;
    }
    for (int i = 0; i < g->npend; i++)
        drop(&g->pend[i]);
    g->npend = 0;
    close(g->fd);
    g->fd = -1;
}

void api_gate_free(api_gate *g)
{
    if (!g)
        return;
    api_gate_stop(g);
    close(g->wake[0]);
    close(g->wake[1]);
    pthread_mutex_destroy(&g->lock);
    free(g->ips);
    free(g);
}
