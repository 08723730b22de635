/* probe_http.c: the HTTP(S) probe on libcurl's multi interface, driven by
 * the caller's libuv loop: CURLMOPT_SOCKETFUNCTION maps curl's sockets onto
 * uv_poll handles and CURLMOPT_TIMERFUNCTION onto one uv_timer. One CURLM is
 * shared by every HTTP probe of a loop (reference-counted, found in a small
 * registry keyed by the loop). Each check is one easy handle: a fresh
 * connection (no reuse, so a dead listener is noticed), no signals, no proxy,
 * redirects only when configured, the body kept up to 64 KiB for the regex.
 * Names are resolved by libcurl's threaded resolver (AsynchDNS). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include "core/curl_dl.h"

#include "heal/probe_int.h"

struct probe_http_multi {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    int refs;
    bool dead;
    probe_http_multi *next;
};

typedef struct http_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    probe_http_multi *hm;
} http_sock;

typedef struct http_attempt {
    probe_attempt base;
    probe_http_multi *hm;
    CURL *easy;
    char *body;
    size_t blen;
    bool truncated;
    char errbuf[CURL_ERROR_SIZE];
} http_attempt;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static probe_http_multi *registry;

int heal_curl_ready(char *err, size_t errlen)
{
    return core_curl_ready(err, errlen); /* dlopen and global init: see core/curl_dl.h */
}

/* ---- the shared multi handle and its libuv glue ------------------------------------ */

static void check_done(probe_http_multi *hm);

static void on_sock_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    http_sock *s = h->data;
    probe_http_multi *hm = s->hm;
    int flags = 0, running;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    curl_multi_socket_action(hm->multi, s->fd, flags, &running);
    check_done(hm);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    probe_http_multi *hm = userp;
    http_sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(hm->multi, fd, NULL);
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, on_sock_closed);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return -1;
        s->fd = fd;
        s->hm = hm;
        if (uv_poll_init_socket(hm->loop, &s->poll, fd) < 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        curl_multi_assign(hm->multi, fd, s);
    }
    int ev = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        ev |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

static void on_multi_timer(uv_timer_t *t)
{
    probe_http_multi *hm = t->data;
    int running;
    curl_multi_socket_action(hm->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(hm);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    probe_http_multi *hm = userp;
    if (hm->dead)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&hm->timer);
    else /* 0 too: run from the loop, never from inside curl */
        uv_timer_start(&hm->timer, on_multi_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static probe_http_multi *multi_get(uv_loop_t *loop)
{
    pthread_mutex_lock(&registry_lock);
    probe_http_multi *hm = registry;
    while (hm && hm->loop != loop)
        hm = hm->next;
    if (hm) {
        hm->refs++;
        pthread_mutex_unlock(&registry_lock);
        return hm;
    }
    hm = calloc(1, sizeof *hm);
    if (hm && !(hm->multi = curl_multi_init())) {
        free(hm);
        hm = NULL;
    }
    if (hm) {
        hm->loop = loop;
        hm->refs = 1;
        uv_timer_init(loop, &hm->timer);
        hm->timer.data = hm;
        curl_multi_setopt(hm->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
        curl_multi_setopt(hm->multi, CURLMOPT_SOCKETDATA, hm);
        curl_multi_setopt(hm->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
        curl_multi_setopt(hm->multi, CURLMOPT_TIMERDATA, hm);
        hm->next = registry;
        registry = hm;
    }
    pthread_mutex_unlock(&registry_lock);
    return hm;
}

static void on_multi_closed(uv_handle_t *h)
{
    probe_http_multi *hm = h->data;
    /* Every easy handle is gone; cleanup may still report sockets removed. */
    curl_multi_cleanup(hm->multi);
    free(hm);
}

static void multi_put(probe_http_multi *hm)
{
    pthread_mutex_lock(&registry_lock);
    bool last = --hm->refs == 0;
    if (last) {
        probe_http_multi **pp = &registry;
        while (*pp != hm)
            pp = &(*pp)->next;
        *pp = hm->next;
    }
    pthread_mutex_unlock(&registry_lock);
    if (!last)
        return;
    hm->dead = true;
    curl_multi_setopt(hm->multi, CURLMOPT_TIMERFUNCTION, NULL);
    uv_close((uv_handle_t *)&hm->timer, on_multi_closed);
}

/* ---- one check ---------------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    http_attempt *a = ud;
    size_t n = size * nmemb, room = HEAL_PROBE_BODY_MAX - a->blen;
    if (n > room) {
        a->truncated = true;
    }
    size_t take = n < room ? n : room;
    if (take) {
        memcpy(a->body + a->blen, data, take);
        a->blen += take;
        a->body[a->blen] = 0;
    }
    return n; /* keep reading (and discarding) so the status is complete */
}

static void http_release(http_attempt *a)
{
    if (a->easy) {
        curl_multi_remove_handle(a->hm->multi, a->easy);
        curl_easy_cleanup(a->easy);
    }
    probe_http_multi *hm = a->hm;
    free(a->body);
    free(a);
    if (hm)
        multi_put(hm);
}

static void http_abort(probe_attempt *base)
{
    http_release((http_attempt *)base);
}

static void http_judge(http_attempt *a, CURLcode cc, probe_outcome *o)
{
    heal_probe *p = a->base.probe;
    const heal_probe_config *c = &p->cfg;
    long status = 0;
    curl_off_t total_us = 0;
    curl_easy_getinfo(a->easy, CURLINFO_RESPONSE_CODE, &status);
    if (curl_easy_getinfo(a->easy, CURLINFO_TOTAL_TIME_T, &total_us) == CURLE_OK && total_us > 0)
        o->latency_ms = (double)total_us / 1000.0;
    else
        o->latency_ms = probe_elapsed_ms(p);
    o->output = a->body;
    o->output_len = a->blen < HEAL_PROBE_OUTPUT_MAX ? a->blen : HEAL_PROBE_OUTPUT_MAX;
    o->code = (int)status;

    if (cc != CURLE_OK) {
        long oserr = 0;
        curl_easy_getinfo(a->easy, CURLINFO_OS_ERRNO, &oserr);
        o->output = NULL;
        o->output_len = 0;
        o->code = oserr ? -(int)oserr : -EIO;
        if (cc == CURLE_OPERATION_TIMEDOUT) {
            o->timed_out = true;
            o->code = -ETIMEDOUT;
            snprintf(o->msg, sizeof o->msg, "timeout after %lld ms", (long long)c->timeout_ms);
        } else if (cc == CURLE_COULDNT_CONNECT && oserr) {
            snprintf(o->msg, sizeof o->msg, "connect: %s", strerror((int)oserr));
        } else {
            snprintf(o->msg, sizeof o->msg, "%s: %s", curl_easy_strerror(cc),
                     a->errbuf[0] ? a->errbuf : "no detail");
        }
        return;
    }
    /* "after 12 ms", or "after 0.4 ms" below 10 ms */
    char ms[32];
    snprintf(ms, sizeof ms, o->latency_ms < 10 ? "%.1f" : "%.0f", o->latency_ms);
    bool status_ok = c->http.status_min ? status >= c->http.status_min && status <= c->http.status_max
                     : c->http.expect_code ? status == c->http.expect_code
                                           : status / 100 == (c->http.expect_class ? c->http.expect_class : 2);
    if (!status_ok) {
        snprintf(o->msg, sizeof o->msg, "HTTP %ld after %s ms", status, ms);
        return;
    }
    if (p->re) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->re, NULL);
        int rc = md ? pcre2_match(p->re, (PCRE2_SPTR)(a->body ? a->body : ""), a->blen, 0, 0, md, NULL)
                    : PCRE2_ERROR_NOMEMORY;
        pcre2_match_data_free(md);
        if (rc < 0) {
            if (rc == PCRE2_ERROR_NOMATCH)
                snprintf(o->msg, sizeof o->msg, "HTTP %ld after %s ms: body does not match /%s/%s",
                         status, ms, c->http.body_regex, a->truncated ? " (first 64 KiB)" : "");
            else {
                PCRE2_UCHAR e[128];
                pcre2_get_error_message(rc, e, sizeof e);
                snprintf(o->msg, sizeof o->msg, "HTTP %ld after %s ms: body regex: %s", status, ms,
                         (char *)e);
            }
            return;
        }
    }
    if (c->http.max_latency_ms > 0 && o->latency_ms > (double)c->http.max_latency_ms) {
        snprintf(o->msg, sizeof o->msg, "HTTP %ld after %s ms, over max %lld ms", status, ms,
                 (long long)c->http.max_latency_ms);
        return;
    }
    o->ok = true;
    snprintf(o->msg, sizeof o->msg, "HTTP %ld after %s ms", status, ms);
}

static void check_done(probe_http_multi *hm)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(hm->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode cc = msg->data.result;
        http_attempt *a = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&a);
        if (!a)
            continue;
        probe_outcome o = {.latency_ms = -1};
        if (a->base.probe)
            http_judge(a, cc, &o);
        /* Report before release: o points into a->body. The attempt holds
         * its own reference on hm, so hm outlives the callback. */
        probe_attempt_report(&a->base, &o);
        http_release(a);
    }
}

static void fail_now(heal_probe *p, int code, const char *fmt, const char *detail)
{
    probe_outcome o = {.code = code, .latency_ms = -1};
    snprintf(o.msg, sizeof o.msg, fmt, detail);
    probe_complete(p, &o);
}

void probe_http_start(heal_probe *p)
{
    const heal_probe_config *c = &p->cfg;
    http_attempt *a = calloc(1, sizeof *a);
    if (a)
        a->body = malloc(HEAL_PROBE_BODY_MAX + 1);
    if (a && a->body)
        a->easy = curl_easy_init();
    if (!a || !a->body || !a->easy) {
        if (a) {
            free(a->body);
            free(a);
        }
        fail_now(p, -ENOMEM, "%s", "out of memory");
        return;
    }
    a->body[0] = 0;
    a->hm = p->hm;
    pthread_mutex_lock(&registry_lock);
    a->hm->refs++;
    pthread_mutex_unlock(&registry_lock);
    CURL *e = a->easy;
    curl_easy_setopt(e, CURLOPT_URL, c->http.url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)a);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, a->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    /* The probe's own timer is authoritative; curl's is a backstop. */
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(c->timeout_ms + 100));
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
#if LIBCURL_VERSION_NUM >= 0x075700
    /* Abandoning a check mid-resolve must not join the resolver thread
     * (which would block the loop until getaddrinfo returns). */
    curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
#endif
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "ippoc-probe/" IPPOC_VERSION);
    if (c->http.max_redirects > 0) {
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)c->http.max_redirects);
    }
    if (c->http.tls_insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    a->base.probe = p;
    a->base.abort = http_abort;
    p->cur = &a->base;
    CURLMcode mc = curl_multi_add_handle(a->hm->multi, e);
    if (mc != CURLM_OK) {
        p->cur = NULL;
        a->base.probe = NULL;
        curl_easy_cleanup(e);
        a->easy = NULL;
        http_release(a);
        fail_now(p, -EIO, "curl: %s", curl_multi_strerror(mc));
    }
}

/* ---- set-up ------------------------------------------------------------------------------ */

int probe_http_init(heal_probe *p, char *err, size_t errlen)
{
    const heal_probe_config *c = &p->cfg;
    if (!c->http.url || !c->http.url[0]) {
        snprintf(err, errlen, "http probe: no url");
        return -EINVAL;
    }
    if (c->http.expect_code && (c->http.expect_code < 100 || c->http.expect_code > 599)) {
        snprintf(err, errlen, "http probe: expected status %d out of range 100..599", c->http.expect_code);
        return -EINVAL;
    }
    if (c->http.expect_class < 0 || c->http.expect_class > 5) {
        snprintf(err, errlen, "http probe: expected status class %d out of range 1..5", c->http.expect_class);
        return -EINVAL;
    }
    if (c->http.status_min && (c->http.status_min < 100 || c->http.status_max > 599 ||
                               c->http.status_max < c->http.status_min)) {
        snprintf(err, errlen, "http probe: status range %d..%d not within 100..599", c->http.status_min,
                 c->http.status_max);
        return -EINVAL;
    }
    if (c->http.max_latency_ms < 0 || c->http.max_redirects < 0) {
        snprintf(err, errlen, "http probe: max latency and redirects must be >= 0");
        return -EINVAL;
    }
    if (heal_curl_ready(err, errlen))
        return -EIO;
    /* The URL: http or https, with a host; a non-numeric host needs an
     * asynchronous resolver so the loop never waits on DNS. */
    CURLU *u = curl_url();
    if (!u) {
        snprintf(err, errlen, "http probe: out of memory");
        return -ENOMEM;
    }
    char *scheme = NULL, *host = NULL;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, c->http.url, 0);
    if (uc == CURLUE_OK)
        uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    if (uc == CURLUE_OK)
        uc = curl_url_get(u, CURLUPART_HOST, &host, 0);
    int rc = 0;
    if (uc != CURLUE_OK) {
        snprintf(err, errlen, "http probe: bad url '%s': %s", c->http.url, curl_url_strerror(uc));
        rc = -EINVAL;
    } else if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        snprintf(err, errlen, "http probe: url '%s': only http:// and https:// are probed", c->http.url);
        rc = -EINVAL;
    } else if (!(curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_ASYNCHDNS)) {
        unsigned char buf[16];
        char h[64];
        size_t n = strlen(host);
        core_sncpy(h, sizeof h, host[0] == '[' && n > 2 ? host + 1 : host);
        if (h[0] && h[strlen(h) - 1] == ']')
            h[strlen(h) - 1] = 0;
        if (inet_pton(AF_INET, h, buf) != 1 && inet_pton(AF_INET6, h, buf) != 1) {
            snprintf(err, errlen, "http probe: url '%s': this libcurl resolves names by blocking; "
                     "use a numeric host", c->http.url);
            rc = -EINVAL;
        }
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    if (rc < 0)
        return rc;

    if (c->http.body_regex && c->http.body_regex[0]) {
        int ec;
        PCRE2_SIZE off;
        p->re = pcre2_compile((PCRE2_SPTR)c->http.body_regex, PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
        if (!p->re) {
            PCRE2_UCHAR m[256];
            pcre2_get_error_message(ec, m, sizeof m);
            snprintf(err, errlen, "http probe: body regex /%s/ at offset %zu: %s", c->http.body_regex,
                     (size_t)off, (char *)m);
            return -EINVAL;
        }
    }
    p->hm = multi_get(p->loop);
    if (!p->hm) {
        snprintf(err, errlen, "http probe: out of memory");
        return -ENOMEM;
    }
    return 0;
}

void probe_http_fini(heal_probe *p)
{
    if (p->hm) {
        multi_put(p->hm);
        p->hm = NULL;
    }
}
