/* llm_http.c: the language-model client's HTTP transfers (blocking libcurl
 * easy transfers on the caller's thread, libcurl loaded at run time: see
 * core/curl_dl.h) and the incremental text/event-stream parser its
 * streamed answers go through. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/curl_dl.h"
#include "llm/llm_int.h"

#define BODY_MAX (16u << 20) /* an answer larger than this is cut: no model says that much */

typedef struct xfer {
    const llm_http_req *q;
    llm_http_res *res;
    CURL *h;
    size_t cap;
    int status_known; /* 0 unknown, 1 stream to on_data, -1 not */
} xfer;

bool llm_grow(char **buf, size_t *cap, size_t need, size_t first)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : first;
    while (c < need)
        c *= 2;
    char *b = realloc(*buf, c);
    if (!b)
        return false;
    *buf = b;
    *cap = c;
    return true;
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
    xfer *x = ud;
    size_t n = sz * nm;
    if (!x->status_known) {
        long st = 0;
        curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &st);
        x->status_known = (st >= 200 && st < 300 && x->q->on_data) ? 1 : -1;
    }
    if (x->status_known == 1)
        x->q->on_data(x->q->ud, p, n);
    llm_http_res *r = x->res;
    if (r->len + n + 1 > BODY_MAX)
        return n; /* keep reading, stop keeping */
    if (!llm_grow(&r->body, &x->cap, r->len + n + 1, 4096))
        return 0; /* aborts the transfer */
    memcpy(r->body + r->len, p, n);
    r->len += n;
    r->body[r->len] = 0;
    return n;
}

/* Retry-After: SECONDS (the HTTP-date form is treated as long). */
static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
    xfer *x = ud;
    size_t n = sz * nm;
    static const char name[] = "retry-after:";
    if (n > sizeof name && !strncasecmp(p, name, sizeof name - 1)) {
        const char *v = p + sizeof name - 1;
        while (*v == ' ' || *v == '\t')
            v++;
        char *end;
        double s = strtod(v, &end);
        x->res->retry_after_ms = (end != v && s >= 0 && s < 1e6) ? (int64_t)(s * 1000) : 3600000;
    }
    return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    const xfer *x = ud;
    return x->q->cancel && atomic_load(x->q->cancel) ? 1 : 0;
}

static void classify(CURLcode rc, llm_http_res *res, const char *errbuf)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT: res->net = LLM_NET_REFUSED; break;
    case CURLE_OPERATION_TIMEDOUT: res->net = LLM_NET_TIMEOUT; break;
    case CURLE_ABORTED_BY_CALLBACK: res->net = LLM_NET_CANCELED; break;
    default: res->net = LLM_NET_ERROR; break;
    }
    snprintf(res->err, sizeof res->err, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
}

int llm_http_post(const llm_http_req *q, llm_http_res *res)
{
    memset(res, 0, sizeof *res);
    res->retry_after_ms = -1;
    int rc = core_curl_ready(res->err, sizeof res->err);
    if (rc) {
        res->net = LLM_NET_ERROR;
        return rc;
    }
    CURL *h = curl_easy_init();
    if (!h) {
        res->net = LLM_NET_ERROR;
        snprintf(res->err, sizeof res->err, "curl_easy_init failed");
        return -ENOMEM;
    }
    xfer x = {.q = q, .res = res, .h = h};
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
    for (const char *const *p = q->headers; p && *p; p++)
        hl = curl_slist_append(hl, *p);
    hl = curl_slist_append(hl, "Expect:");
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, q->url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body ? q->body : "");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)q->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)q->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "ippoc/" IPPOC_VERSION);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hl);
    if (cc == CURLE_OK)
        return 0;
    classify(cc, res, errbuf);
    if (res->net == LLM_NET_TIMEOUT || res->net == LLM_NET_CANCELED)
        res->status = 0; /* an answer cut short is no answer */
    return res->status ? 0 : -EIO;
}

void llm_http_res_free(llm_http_res *res)
{
    free(res->body);
    res->body = NULL;
    res->len = 0;
}

/* ---- text/event-stream ------------------------------------------------------- */

void llm_sse_init(llm_sse *s, void (*on_event)(void *ud, const char *event, const char *data), void *ud)
{
    memset(s, 0, sizeof *s);
    s->on_event = on_event;
    s->ud = ud;
}

static void dispatch(llm_sse *s)
{
    if (s->has_data) {
        s->data[s->dlen] = 0;
        if (!strcmp(s->data, "[DONE]"))
            s->done = true;
        else if (s->on_event)
            s->on_event(s->ud, s->event[0] ? s->event : "message", s->data);
    }
    s->dlen = 0;
    s->has_data = false;
    s->event[0] = 0;
}

static void field(llm_sse *s, char *line, size_t n)
{
    if (n == 0) {
        dispatch(s);
        return;
    }
    if (line[0] == ':')
        return; /* a comment: keep-alive */
    char *colon = memchr(line, ':', n);
    size_t nlen = colon ? (size_t)(colon - line) : n;
    const char *val = colon ? colon + 1 : line + n;
    if (colon && *val == ' ')
        val++;
    size_t vlen = (size_t)(line + n - val);
    if (nlen == 4 && !memcmp(line, "data", 4)) {
        if (!llm_grow(&s->data, &s->dcap, s->dlen + vlen + 2, 256)) {
            s->error = -ENOMEM;
            return;
        }
        if (s->has_data)
            s->data[s->dlen++] = '\n';
        memcpy(s->data + s->dlen, val, vlen);
        s->dlen += vlen;
        s->data[s->dlen] = 0;
        s->has_data = true;
    } else if (nlen == 5 && !memcmp(line, "event", 5))
        snprintf(s->event, sizeof s->event, "%.*s", (int)vlen, val);
}

void llm_sse_feed(llm_sse *s, const char *buf, size_t n)
{
    for (size_t i = 0; i < n && !s->error; i++) {
        char c = buf[i];
        if (c == '\n') {
            size_t len = s->llen;
            if (len && s->line[len - 1] == '\r')
                len--;
            field(s, s->line ? s->line : (char *)"", len);
            s->llen = 0;
            continue;
        }
        if (!llm_grow(&s->line, &s->lcap, s->llen + 2, 256)) {
            s->error = -ENOMEM;
            return;
        }
        s->line[s->llen++] = c;
        s->line[s->llen] = 0;
    }
}

void llm_sse_finish(llm_sse *s)
{
    if (s->llen)
        llm_sse_feed(s, "\n", 1);
    dispatch(s);
}

void llm_sse_free(llm_sse *s)
{
    free(s->line);
    free(s->data);
    memset(s, 0, sizeof *s);
}
