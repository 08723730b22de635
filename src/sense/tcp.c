/* tcp.c: the `tcp` group: TCP connections by state, and socket totals from
 * /proc/net/sockstat (tcp in use / orphans / time-wait / allocated / memory,
 * udp in use). A state adds a series the first time some connection is in
 * it.
 *
 * Counting by state: reading /proc/net/tcp walks the kernel's whole
 * established hash once per file, and that table is sized by RAM (1.2 ms per
 * file on a 24 GB machine, whatever the number of sockets). So on the live
 * system (proc_root "/proc") the states are counted with one sock_diag
 * netlink dump (the compat TCPDIAG_GETSOCK request dumps IPv4 and IPv6 in a
 * single walk: ~0.2 ms there). When that is refused (seccomp, no inet_diag)
 * or proc_root is a test tree, the st column of <proc>/net/tcp and tcp6 is
 * parsed instead, streamed in 64 KiB chunks. A missing tcp6 (IPv6 disabled)
 * is noted once; IPv4 is then counted alone.
 *
 * Either way the kernel walks its whole established hash (262,144 buckets
 * on a 24 GB machine: about 1 ms a walk, most of ippocd's tick), so on the
 * live system the states are counted once every TCP_COUNT_MS (10 s) and
 * the last counts are put on the runs in between; the socket totals of
 * sockstat (time-wait included) are read on every run. A test tree is
 * counted on every run. */
#include "sense/sense_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* On the live system: states counted this often (a run within half a
 * second of it counts again). */
#define TCP_COUNT_MS 10000

static const char *const tcp_states[16] = {
    NULL, "established", "syn_sent", "syn_recv", "fin_wait1", "fin_wait2", "time_wait",
    "close", "close_wait", "last_ack", "listen", "closing", "new_syn_recv",
};

enum { SK_INUSE, SK_ORPHAN, SK_TW, SK_ALLOC, SK_MEM, SK_UDP, SK_N };
static const struct {
    const char *name, *unit, *help;
} skdefs[SK_N] = {
    {"tcp.sockets_inuse", "", "TCP sockets in use"},
    {"tcp.sockets_orphan", "", "TCP sockets no longer attached to a process"},
    {"tcp.sockets_time_wait", "", "TCP sockets in TIME_WAIT"},
    {"tcp.sockets_alloc", "", "TCP sockets allocated"},
    {"tcp.memory_bytes", "bytes", "memory used by TCP buffers"},
    {"tcp.udp_sockets_inuse", "", "UDP sockets in use"},
};

typedef struct tcp_priv {
    sn_file f[2];
    sn_file sockstat;
    bool v6_missing, sockstat_missing;
    bool use_diag;   /* netlink sock_diag (live system) */
    bool live;       /* proc_root is "/proc": count every TCP_COUNT_MS */
    bool counted;    /* last[] holds a count */
    int64_t count_ms;
    uint64_t last[16];
    int nl;          /* its socket, -1 while closed */
    uint32_t seq;
    bool seen[16];
    int ids[16];
    int skids[SK_N];
} tcp_priv;

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

size_t sn_tcp_count(const char *p, size_t n, bool skip_header, uint64_t *counts)
{
    const char *q = p, *e = p + n;
    if (skip_header) {
        const char *nl = memchr(q, '\n', n);
        if (!nl)
            return 0;
        q = nl + 1;
    }
    while (q < e) {
        const char *nl = memchr(q, '\n', (size_t)(e - q));
        if (!nl)
            break; /* partial line: the caller keeps it for the next chunk */
        const char *x = q;
        for (int t = 0; t < 3; t++) { /* sl, local_address, rem_address */
            x = sn_skip_ws(x, nl);
            x = sn_skip_tok(x, nl);
        }
        x = sn_skip_ws(x, nl);
        if (x + 2 <= nl) {
            int hi = hexval(x[0]), lo = hexval(x[1]);
            if (hi >= 0 && lo >= 0 && hi == 0)
                counts[lo]++;
        }
        q = nl + 1;
    }
    return (size_t)(q - p);
}

static int tcp_init(sense_t *s, sn_col *c)
{
    tcp_priv *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    c->priv = p;
    sn_file_init(&p->f[0]);
    sn_file_init(&p->f[1]);
    sn_file_init(&p->sockstat);
    for (int i = 0; i < 16; i++)
        p->ids[i] = -1;
    for (int i = 0; i < SK_N; i++)
        p->skids[i] = -1;
    p->nl = -1;
    p->use_diag = p->live = !strcmp(s->proc, "/proc");
    if (sn_file_set(&p->f[0], "%s/net/tcp", s->proc) < 0 ||
        sn_file_set(&p->f[1], "%s/net/tcp6", s->proc) < 0 ||
        sn_file_set(&p->sockstat, "%s/net/sockstat", s->proc) < 0)
        return -ENOMEM;
    sn_available(c, p->use_diag ? "netlink sock_diag + procfs" : "procfs");
    return 0;
}

static void tcp_fini(sense_t *s, sn_col *c)
{
    tcp_priv *p = c->priv;
    if (!p)
        return;
    for (int i = 0; i < 2; i++) {
        sn_file_close(&p->f[i]);
        free(p->f[i].path);
    }
    sn_file_close(&p->sockstat);
    free(p->sockstat.path);
    if (p->nl >= 0)
        close(p->nl);
    free(p);
}

/* One compat inet_diag dump of every TCP socket, both families. */
static int diag_count(sense_t *s, tcp_priv *p, uint64_t *counts)
{
    if (p->nl < 0) {
        p->nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_INET_DIAG);
        if (p->nl < 0)
            return -errno;
        struct timeval tv = {0, 200000}; /* never hang the loop on a lost reply */
        setsockopt(p->nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    struct {
        struct nlmsghdr h;
        struct inet_diag_req r;
    } req;
    memset(&req, 0, sizeof req);
    req.h.nlmsg_len = sizeof req;
    req.h.nlmsg_type = TCPDIAG_GETSOCK;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.h.nlmsg_seq = ++p->seq;
    req.r.idiag_family = AF_INET;
    req.r.idiag_states = 0xfff;
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    if (sendto(p->nl, &req, sizeof req, 0, (struct sockaddr *)&sa, sizeof sa) < 0)
        goto fail;
    if (sn_buf_reserve(&s->buf, 65536) < 0)
        return -ENOMEM;
    for (;;) {
        ssize_t r = recv(p->nl, s->buf.p, s->buf.cap, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        if (r == 0)
            goto fail;
        for (struct nlmsghdr *h = (struct nlmsghdr *)s->buf.p; NLMSG_OK(h, (size_t)r);
             h = NLMSG_NEXT(h, r)) {
            if (h->nlmsg_seq != p->seq)
                continue; /* a late answer to an earlier request */
            if (h->nlmsg_type == NLMSG_DONE)
                return 0;
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *e = NLMSG_DATA(h);
                errno = e->error ? -e->error : EPROTO;
                goto fail;
            }
            if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
                struct inet_diag_msg *m = NLMSG_DATA(h);
                counts[m->idiag_state & 15]++;
            }
        }
    }
fail: {
    int e = errno ? errno : EIO;
    close(p->nl);
    p->nl = -1;
    return -e;
}
}

/* Streams one table through the shared buffer in chunks. */
static int count_file(sense_t *s, sn_file *f, uint64_t *counts)
{
    if (f->fd < 0) {
        f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
        if (f->fd < 0)
            return -errno;
    }
    if (sn_buf_reserve(&s->buf, 65536) < 0)
        return -ENOMEM;
    size_t carry = 0;
    off_t off = 0;
    bool first = true;
    for (;;) {
        ssize_t r = pread(f->fd, s->buf.p + carry, s->buf.cap - 1 - carry, off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            sn_file_close(f);
            return -e;
        }
        if (r == 0)
            break;
        off += r;
        size_t have = carry + (size_t)r;
        size_t used = sn_tcp_count(s->buf.p, have, first, counts);
        if (first && used == 0 && have + 1 < s->buf.cap) {
            carry = have; /* header not complete yet */
            continue;
        }
        first = false;
        carry = have - used;
        if (carry)
            memmove(s->buf.p, s->buf.p + used, carry);
        if (carry + 1 >= s->buf.cap && sn_buf_reserve(&s->buf, s->buf.cap * 2) < 0)
            return -ENOMEM;
    }
    return 0;
}

static void sockstat(sense_t *s, sn_col *c, tcp_priv *p)
{
    ssize_t n = sn_file_read(&p->sockstat, &s->buf);
    if (n < 0) {
        sn_note_once(&p->sockstat_missing, "tcp: no socket totals: %s: %s", p->sockstat.path,
                     strerror((int)-n));
        return;
    }
    const char *q = s->buf.p, *e = q + n;
    while (q < e) {
        const char *le = sn_eol(q, e);
        bool tcp = le - q > 5 && !memcmp(q, "TCP: ", 5);
        bool udp = le - q > 5 && !memcmp(q, "UDP: ", 5);
        if (tcp || udp) {
            const char *x = q + 5;
            while (x < le) {
                char key[16];
                sn_tok(&x, le, key, sizeof key);
                bool ok;
                uint64_t v = sn_u64(&x, le, &ok);
                if (!ok)
                    break;
                int k = -1;
                if (udp)
                    k = !strcmp(key, "inuse") ? SK_UDP : -1;
                else if (!strcmp(key, "inuse"))
                    k = SK_INUSE;
                else if (!strcmp(key, "orphan"))
                    k = SK_ORPHAN;
                else if (!strcmp(key, "tw"))
                    k = SK_TW;
                else if (!strcmp(key, "alloc"))
                    k = SK_ALLOC;
                else if (!strcmp(key, "mem"))
                    k = SK_MEM;
                if (k < 0)
                    continue;
                double val = k == SK_MEM ? (double)v * (double)s->page_size : (double)v;
                sn_put_lazy(s, c, &p->skids[k], skdefs[k].name, "", skdefs[k].unit,
                            skdefs[k].help, MEM_GAUGE, val);
            }
        }
        q = le;
    }
}

static int tcp_collect(sense_t *s, sn_col *c, int64_t now_ms)
{
    tcp_priv *p = c->priv;
    uint64_t counts[16] = {0};
    int r;
    if (p->live && p->counted && now_ms - p->count_ms < TCP_COUNT_MS - 500) {
        memcpy(counts, p->last, sizeof counts);
        goto put;
    }
    if (p->use_diag) {
        r = diag_count(s, p, counts);
        if (r >= 0)
            goto counted;
        log_info("sense: tcp: netlink sock_diag refused (%s); reading /proc/net/tcp instead",
                 strerror(-r));
        p->use_diag = false;
        core_sncpy(c->src, sizeof c->src, "procfs");
        core_sncpy(c->note, sizeof c->note, "procfs");
        memset(counts, 0, sizeof counts);
    }
    r = count_file(s, &p->f[0], counts);
    if (r < 0) {
        sn_unavailable(s, c, "%s: %s", p->f[0].path, strerror(-r));
        return r;
    }
    if (!p->v6_missing) {
        r = count_file(s, &p->f[1], counts);
        if (r == -ENOENT) {
            sn_note_once(&p->v6_missing, "tcp: no IPv6 table: %s: %s", p->f[1].path, strerror(-r));
            snprintf(c->note, sizeof c->note, "procfs (no %s)", p->f[1].path);
            core_sncpy(c->src, sizeof c->src, c->note);
        }
    }
counted:
    memcpy(p->last, counts, sizeof counts);
    p->counted = true;
    p->count_ms = now_ms;
put:
    for (int i = 1; i < 13; i++) {
        if (counts[i])
            p->seen[i] = true;
        if (!p->seen[i])
            continue;
        if (p->ids[i] < 0) {
            char lab[64];
            sn_labels(lab, sizeof lab, 1, "state", tcp_states[i]);
            p->ids[i] = sn_series(s, "tcp.connections", lab, "", "TCP connections in this state",
                                  MEM_GAUGE);
        }
        sn_put(s, c, p->ids[i], (double)counts[i]);
    }
    sockstat(s, c, p);
    return 0;
}

const sn_module sn_mod_tcp = {
    .name = "tcp", .init = tcp_init, .collect = tcp_collect, .fini = tcp_fini,
};
