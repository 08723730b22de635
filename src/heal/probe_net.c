/* probe_net.c: the TCP connect probe. Names are resolved with
 * uv_getaddrinfo (thread pool), numeric hosts are used as they are; each
 * address is tried in turn with uv_tcp_connect until one connects; the
 * socket is closed at once. The probe's timeout timer bounds the whole. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heal/probe_int.h"
#include "heal/uvclose.h"

typedef struct tcp_attempt {
    probe_attempt base;
    uv_loop_t *loop;
    uv_getaddrinfo_t gai;
    uv_tcp_t tcp;
    uv_connect_t conn;
    struct addrinfo *ai_list, *ai_next; /* from getaddrinfo */
    struct sockaddr_storage numeric;
    int refs;          /* pending request/handle callbacks */
    bool gai_pending, tcp_open;
    int last_err;
} tcp_attempt;

static void tcp_connect_next(tcp_attempt *a);

static void tcp_unref(tcp_attempt *a)
{
    if (--a->refs > 0)
        return;
    if (a->ai_list)
        uv_freeaddrinfo(a->ai_list);
    free(a);
}

static void tcp_fail(tcp_attempt *a, int uverr, const char *what)
{
    probe_outcome o = {.ok = false, .code = uverr, .latency_ms = -1};
    snprintf(o.msg, sizeof o.msg, "%s: %s", what, probe_uv_err(uverr));
    probe_attempt_report(&a->base, &o);
}

static void on_tcp_closed(uv_handle_t *h)
{
    tcp_attempt *a = h->data;
    a->tcp_open = false;
    /* Another address to try, and still wanted? */
    if (a->base.probe && a->ai_next)
        tcp_connect_next(a);
    else if (a->base.probe)
        tcp_fail(a, a->last_err, "connect");
    tcp_unref(a);
}

static void on_connect(uv_connect_t *req, int status)
{
    tcp_attempt *a = req->data;
    if (status == 0 && a->base.probe) {
        heal_probe *p = a->base.probe;
        double ms = probe_elapsed_ms(p);
        probe_outcome o = {.ok = true, .latency_ms = ms};
        snprintf(o.msg, sizeof o.msg, "connected to %s:%d in %.1f ms", p->cfg.tcp.host,
                 p->cfg.tcp.port, ms);
        if (p->cfg.tcp.max_latency_ms > 0 && ms > (double)p->cfg.tcp.max_latency_ms) {
            o.ok = false;
            snprintf(o.msg, sizeof o.msg, "connected to %s:%d in %.1f ms, over max %lld ms",
                     p->cfg.tcp.host, p->cfg.tcp.port, ms, (long long)p->cfg.tcp.max_latency_ms);
        }
        a->ai_next = NULL;
        probe_attempt_report(&a->base, &o);
    } else if (status < 0) {
        a->last_err = status;
    }
    if (!uv_is_closing((uv_handle_t *)&a->tcp))
        heal_uv_close((uv_handle_t *)&a->tcp, on_tcp_closed);
    tcp_unref(a); /* the connect request */
}

/* Connects to a->ai_next (or the numeric address when there is no list). */
static void tcp_connect_next(tcp_attempt *a)
{
    const struct sockaddr *sa;
    if (a->ai_list) {
        sa = a->ai_next->ai_addr;
        a->ai_next = a->ai_next->ai_next;
    } else {
        sa = (const struct sockaddr *)&a->numeric;
    }
    int rc = uv_tcp_init(a->loop, &a->tcp);
    if (rc < 0) {
        tcp_fail(a, rc, "socket");
        return;
    }
    a->tcp.data = a;
    a->tcp_open = true;
    a->refs++; /* the handle */
    a->conn.data = a;
    rc = uv_tcp_connect(&a->conn, &a->tcp, sa, on_connect);
    if (rc < 0) {
        /* Failed at once (e.g. address family not supported): next address. */
        a->last_err = rc;
        heal_uv_close((uv_handle_t *)&a->tcp, on_tcp_closed);
        return;
    }
    a->refs++; /* the request */
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    tcp_attempt *a = req->data;
    a->gai_pending = false;
    a->ai_list = a->ai_next = res;
    if (a->base.probe) {
        if (status < 0)
            tcp_fail(a, status, "resolve");
        else if (!res)
            tcp_fail(a, UV_EAI_NONAME, "resolve");
        else
            tcp_connect_next(a);
    }
    tcp_unref(a);
}

static void tcp_abort(probe_attempt *base)
{
    tcp_attempt *a = (tcp_attempt *)base;
    a->refs++; /* hold while aborting */
    if (a->gai_pending)
        uv_cancel((uv_req_t *)&a->gai); /* its callback still comes */
    if (a->tcp_open && !uv_is_closing((uv_handle_t *)&a->tcp))
        heal_uv_close((uv_handle_t *)&a->tcp, on_tcp_closed); /* connect gets ECANCELED */
    tcp_unref(a);
}

static int parse_numeric(const char *host, int port, struct sockaddr_storage *ss)
{
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
        return 0;
    char h[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof h) {
        memcpy(h, host + 1, n - 2);
        h[n - 2] = 0;
        host = h;
    }
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    return -1;
}

int probe_tcp_init(heal_probe *p, char *err, size_t errlen)
{
    if (!p->cfg.tcp.host || !p->cfg.tcp.host[0]) {
        snprintf(err, errlen, "tcp probe: no host");
        return -EINVAL;
    }
    if (p->cfg.tcp.port < 1 || p->cfg.tcp.port > 65535) {
        snprintf(err, errlen, "tcp probe: port %d out of range 1..65535", p->cfg.tcp.port);
        return -EINVAL;
    }
    if (p->cfg.tcp.max_latency_ms < 0) {
        snprintf(err, errlen, "tcp probe: max latency must be >= 0");
        return -EINVAL;
    }
    return 0;
}

void probe_tcp_start(heal_probe *p)
{
    tcp_attempt *a = calloc(1, sizeof *a);
    if (!a) {
        probe_outcome o = {.code = -ENOMEM, .latency_ms = -1};
        snprintf(o.msg, sizeof o.msg, "out of memory");
        probe_complete(p, &o);
        return;
    }
    a->base.probe = p;
    a->base.abort = tcp_abort;
    a->loop = p->loop;
    a->refs = 1; /* the start itself, dropped below */
    a->last_err = UV_ECONNREFUSED;
    p->cur = &a->base;
    if (parse_numeric(p->cfg.tcp.host, p->cfg.tcp.port, &a->numeric) == 0) {
        tcp_connect_next(a);
    } else {
        char port[8];
        snprintf(port, sizeof port, "%d", p->cfg.tcp.port);
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_ADDRCONFIG};
        a->gai.data = a;
        int rc = uv_getaddrinfo(p->loop, &a->gai, on_resolved, p->cfg.tcp.host, port, &hints);
        if (rc < 0) {
            tcp_fail(a, rc, "resolve");
        } else {
            a->gai_pending = true;
            a->refs++;
        }
    }
    tcp_unref(a);
}
