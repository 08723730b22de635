/* http.c: the only file that talks to ippocd. One libcurl easy handle per
 * request: a GET or POST answered by JSON (cli_http_get_json,
 * cli_http_post_json), or a long-lived GET
 * whose body is fed to a callback as it arrives (cli_http_stream, for
 * server-sent events). Failures are turned into the CLI's exit codes:
 * transport -> CLI_EXIT_UNREACH, 401/403 -> CLI_EXIT_AUTH (but 403 with code
 * "forbidden", the safety policy's refusal, is CLI_EXIT_API), any other error
 * status or a body that is not JSON -> CLI_EXIT_API. Also builds escaped
 * request paths (cli_url_*). */
#include "cli/cli.h"

#include "core/core.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BODY_MAX (256u << 20) /* refuse answers over 256 MiB */

typedef struct body {
    char *p;
    size_t len, cap;
    bool too_big;
} body;

static int body_add(body *b, const char *data, size_t n)
{
    if (b->len + n + 1 > BODY_MAX) {
        b->too_big = true;
        return -1;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 8192;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    size_t n = size * nmemb;
    return body_add(ud, data, n) < 0 ? 0 : n;
}

/* ---- request set-up --------------------------------------------------------- */

static struct curl_slist *make_headers(const cli_ctx *ctx, const char *accept, const char *last_id)
{
    char line[512];
    struct curl_slist *h = NULL, *t;
    snprintf(line, sizeof line, "Accept: %s", accept);
    h = curl_slist_append(h, line);
    if (h && ctx->token) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", ctx->token);
        t = curl_slist_append(h, line);
        h = t ? t : h;
    }
    if (h && last_id && *last_id) {
        snprintf(line, sizeof line, "Last-Event-ID: %s", last_id);
        t = curl_slist_append(h, line);
        h = t ? t : h;
    }
    return h;
}

static CURL *make_easy(const cli_ctx *ctx, const char *path, struct curl_slist *hdrs, char *errbuf)
{
    char url[CLI_URL_MAX + 4096];
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    snprintf(url, sizeof url, "%s%s", ctx->url, path);
    errbuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "ippoc/" IPPOC_VERSION);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)ctx->timeout_ms);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    if (ctx->socket[0]) /* the daemon's own socket: no other client can crowd us out */
        curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, ctx->socket);
    return c;
}

/* ---- error reporting --------------------------------------------------------- */

static void transport_reason(CURL *c, CURLcode rc, const char *errbuf, int64_t timeout_ms,
                             char *out, size_t n)
{
    long oserr = 0;
    curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &oserr);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        char d[32];
        cli_fmt_duration(timeout_ms, d, sizeof d);
        snprintf(out, n, "no answer within %s", d);
    } else if (oserr != 0) {
        snprintf(out, n, "%s", strerror((int)oserr));
    } else if (errbuf[0]) {
        snprintf(out, n, "%s", errbuf);
    } else {
        snprintf(out, n, "%s", curl_easy_strerror(rc));
    }
}

static int report_unreachable(const cli_ctx *ctx, CURLcode rc, const char *reason)
{
    bool down = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST;
    fprintf(stderr, "ippoc: cannot reach ippocd at %s%s%s: %s%s\n", ctx->url,
            ctx->socket[0] ? " through " : "", ctx->socket, reason, down ? " (is it running? `make run`)" : "");
    return CLI_EXIT_UNREACH;
}

/* An error answer's {"error":{"code","message"}}: *code and *msg (NULL when
 * absent) point into *j, which the caller frees; true when it is about the
 * token (401, or a 403 that is not the policy's "forbidden"). */
static bool http_error_parts(long status, const char *text, size_t len, json_t **j, const char **code,
                             const char **msg)
{
    *j = text ? json_loadb(text, len, 0, NULL) : NULL;
    json_t *e = json_object_get(*j, "error");
    *code = cli_jstr(e, "code", NULL);
    *msg = cli_jstr(e, "message", NULL);
    if (!*msg && json_is_string(e))
        *msg = json_string_value(e);
    /* 403 "forbidden" is the policy refusing an action, not the token */
    return status == 401 || (status == 403 && (!*code || strcmp(*code, "forbidden") != 0));
}

/* Prints the API's {"error":{"code","message"}} (or what we can) for status. */
static int report_http_error(long status, const char *text, size_t len)
{
    json_t *j;
    const char *code, *msg;
    bool auth = http_error_parts(status, text, len, &j, &code, &msg);
    if (auth)
        fprintf(stderr, "ippoc: unauthorized: %s (pass --token TOKEN or set IPPOC_TOKEN)\n",
                msg ? msg : "the daemon wants a bearer token");
    else if (msg)
        fprintf(stderr, "ippoc: %s: %s\n", code ? code : "error", msg);
    else
        fprintf(stderr, "ippoc: ippocd answered HTTP %ld without an error message\n", status);
    json_decref(j);
    return auth ? CLI_EXIT_AUTH : CLI_EXIT_API;
}

/* ---- plain GET returning JSON -------------------------------------------------- */

static int parse_answer(const body *b, json_t **out)
{
    json_error_t jerr;
    *out = json_loadb(b->p ? b->p : "", b->len, 0, &jerr);
    if (!*out) {
        fprintf(stderr, "ippoc: ippocd sent a bad answer (not JSON: %s)\n", jerr.text);
        return CLI_EXIT_API;
    }
    return CLI_EXIT_OK;
}

static int finish_get(const cli_ctx *ctx, CURL *c, CURLcode rc, const char *errbuf, body *b,
                      json_t **out)
{
    char reason[512];
    long status = 0;
    if (b->too_big) {
        fprintf(stderr, "ippoc: ippocd's answer is larger than %u MiB\n", BODY_MAX >> 20);
        return CLI_EXIT_API;
    }
    if (rc != CURLE_OK) {
        transport_reason(c, rc, errbuf, ctx->timeout_ms, reason, sizeof reason);
        return report_unreachable(ctx, rc, reason);
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299)
        return report_http_error(status, b->p, b->len);
    return parse_answer(b, out);
}

/* One request answered by JSON: a GET, or a POST of post_body when set. */
/* A request for path accepting accept (a JSON body when post_body), its
 * answer collected in *b; NULL (said on stderr) when out of memory. The
 * caller frees *h and the handle. */
static CURL *start_request(const cli_ctx *ctx, const char *path, const char *accept, const char *post_body,
                           char *errbuf, body *b, struct curl_slist **h)
{
    *h = make_headers(ctx, accept, NULL);
    if (*h && post_body) {
        struct curl_slist *t = curl_slist_append(*h, "Content-Type: application/json");
        *h = t ? t : *h;
    }
    CURL *c = make_easy(ctx, path, *h, errbuf);
    if (!c || !*h) {
        fprintf(stderr, "ippoc: out of memory\n");
        curl_slist_free_all(*h);
        *h = NULL;
        curl_easy_cleanup(c);
        return NULL;
    }
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)ctx->timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    if (post_body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post_body);
    return c;
}

static int request_json(const cli_ctx *ctx, const char *path, const char *post_body, json_t **out,
                        char **raw)
{
    char errbuf[CURL_ERROR_SIZE];
    body b = {0};
    struct curl_slist *h;
    *out = NULL;
    CURL *c = start_request(ctx, path, "application/json", post_body, errbuf, &b, &h);
    if (!c)
        return CLI_EXIT_API;
    CURLcode rc = curl_easy_perform(c);
    int code = finish_get(ctx, c, rc, errbuf, &b, out);
    if (code == CLI_EXIT_OK && raw) {
        *raw = b.p;
        b.p = NULL;
    }
    free(b.p);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return code;
}

int cli_http_get_json(const cli_ctx *ctx, const char *path, json_t **out, char **raw)
{
    return request_json(ctx, path, NULL, out, raw);
}

int cli_http_post_json(const cli_ctx *ctx, const char *path, const char *body_text, json_t **out)
{
    return request_json(ctx, path, body_text ? body_text : "", out, NULL);
}

int cli_http_post_obj(const cli_ctx *ctx, const char *path, json_t *obj, json_t **out)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text) {
        fprintf(stderr, "ippoc: out of memory\n");
        return CLI_EXIT_API;
    }
    int rc = cli_http_post_json(ctx, path, text, out);
    free(text);
    return rc;
}

int cli_http_post_done(const cli_ctx *ctx, const char *path, const char *done)
{
    json_t *ans;
    int rc = cli_http_post_json(ctx, path, "{}", &ans);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx->json)
        cli_print_json(ans);
    else
        printf("%s\n", done);
    json_decref(ans);
    return CLI_EXIT_OK;
}

int cli_http_get_text(const cli_ctx *ctx, const char *path, char **text)
{
    char errbuf[CURL_ERROR_SIZE], reason[512];
    body b = {0};
    struct curl_slist *h;
    *text = NULL;
    CURL *c = start_request(ctx, path, "text/plain, text/x-diff, application/json", NULL, errbuf, &b, &h);
    if (!c)
        return CLI_EXIT_API;
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    int code = CLI_EXIT_OK;
    if (b.too_big) {
        fprintf(stderr, "ippoc: ippocd's answer is larger than %u MiB\n", BODY_MAX >> 20);
        code = CLI_EXIT_API;
    } else if (rc != CURLE_OK) {
        transport_reason(c, rc, errbuf, ctx->timeout_ms, reason, sizeof reason);
        code = report_unreachable(ctx, rc, reason);
    } else if (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status), status < 200 || status > 299) {
        code = report_http_error(status, b.p, b.len);
    } else {
        *text = b.p ? b.p : strdup("");
        b.p = NULL;
    }
    free(b.p);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return code;
}

/* ---- streaming GET --------------------------------------------------------------- */

typedef struct stream {
    CURL *c;
    long status;          /* 0 until the first body bytes */
    body err;             /* body of an error answer */
    cli_stream_fn fn;
    void *ud;
    volatile sig_atomic_t *stop;
    bool cb_stopped;
} stream;

static size_t on_stream(char *data, size_t size, size_t nmemb, void *ud)
{
    stream *s = ud;
    size_t n = size * nmemb;
    if (s->status == 0)
        curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &s->status);
    if (s->status != 200)
        return body_add(&s->err, data, n) < 0 ? 0 : n;
    if (s->fn(data, n, s->ud) != 0) {
        s->cb_stopped = true;
        return 0;
    }
    return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    stream *s = ud;
    return *s->stop ? 1 : 0;
}

static int finish_stream(const cli_ctx *ctx, stream *s, CURLcode rc, const char *errbuf,
                         cli_stream_result *res)
{
    if (s->status == 0)
        curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &s->status);
    res->connected = s->status == 200;
    res->stopped = *s->stop || s->cb_stopped;
    if (res->stopped)
        return CLI_EXIT_OK;
    if (s->status >= 500) { /* e.g. shutting down: worth retrying */
        snprintf(res->reason, sizeof res->reason, "ippocd answered HTTP %ld", s->status);
        return CLI_EXIT_UNREACH;
    }
    if (s->status != 0 && s->status != 200)
        return report_http_error(s->status, s->err.p, s->err.len);
    if (rc == CURLE_OK) {
        snprintf(res->reason, sizeof res->reason, "the daemon closed the stream");
        return CLI_EXIT_OK;
    }
    transport_reason(s->c, rc, errbuf, ctx->timeout_ms, res->reason, sizeof res->reason);
    return CLI_EXIT_UNREACH;
}

int cli_http_stream(const cli_ctx *ctx, const char *path, const char *last_event_id,
                    cli_stream_fn fn, void *ud, volatile sig_atomic_t *stop,
                    cli_stream_result *res)
{
    char errbuf[CURL_ERROR_SIZE];
    stream s = {.fn = fn, .ud = ud, .stop = stop};
    struct curl_slist *h = make_headers(ctx, "text/event-stream", last_event_id);
    memset(res, 0, sizeof *res);
    s.c = make_easy(ctx, path, h, errbuf);
    if (!s.c || !h) {
        curl_slist_free_all(h);
        curl_easy_cleanup(s.c);
        snprintf(res->reason, sizeof res->reason, "out of memory");
        return CLI_EXIT_UNREACH;
    }
    curl_easy_setopt(s.c, CURLOPT_ACCEPT_ENCODING, NULL); /* no buffering decoders */
    curl_easy_setopt(s.c, CURLOPT_WRITEFUNCTION, on_stream);
    curl_easy_setopt(s.c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(s.c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(s.c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(s.c, CURLOPT_XFERINFODATA, &s);
    /* a silent connection (no data, no keepalive) for 60 s counts as dropped */
    curl_easy_setopt(s.c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(s.c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(s.c, CURLOPT_TCP_KEEPALIVE, 1L);
    CURLcode rc = curl_easy_perform(s.c);
    int code = finish_stream(ctx, &s, rc, errbuf, res);
    free(s.err.p);
    curl_slist_free_all(h);
    curl_easy_cleanup(s.c);
    return code;
}

/* ---- building paths ---------------------------------------------------------------- */

static void url_put(cli_url *u, const char *s)
{
    size_t n = strlen(s);
    if (u->overflow || u->len + n + 1 > sizeof u->buf) {
        u->overflow = true;
        return;
    }
    memcpy(u->buf + u->len, s, n + 1);
    u->len += n;
}

/* RFC 3986 unreserved characters pass, everything else is %XX. */
static void url_put_escaped(cli_url *u, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char enc[4];
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            enc[0] = (char)ch;
            enc[1] = '\0';
        } else {
            enc[0] = '%';
            enc[1] = hex[ch >> 4];
            enc[2] = hex[ch & 15];
            enc[3] = '\0';
        }
        url_put(u, enc);
    }
}

void cli_url_init(cli_url *u, const char *path)
{
    u->len = 0;
    u->overflow = false;
    u->has_query = false;
    u->buf[0] = '\0';
    url_put(u, path);
}

void cli_url_append_escaped(cli_url *u, const char *segment)
{
    url_put_escaped(u, segment);
}

void cli_url_param(cli_url *u, const char *key, const char *value)
{
    if (!value)
        return;
    url_put(u, u->has_query ? "&" : "?");
    u->has_query = true;
    url_put_escaped(u, key);
    url_put(u, "=");
    url_put_escaped(u, value);
}

/* ---- a request that reports instead of printing (ippoc mcp) ------------------------ */

/* The API's {"error":{"code","message"}} of an error answer as one line. */
static void http_error_text(long status, const char *text, size_t len, char *err, size_t n)
{
    json_t *j;
    const char *code, *msg;
    if (http_error_parts(status, text, len, &j, &code, &msg))
        snprintf(err, n, "unauthorized (HTTP %ld): %s (give `ippoc mcp` --token TOKEN or IPPOC_TOKEN)", status,
                 msg ? msg : "the daemon wants a bearer token");
    else if (msg)
        snprintf(err, n, "%s (HTTP %ld): %s", code ? code : "error", status, msg);
    else
        snprintf(err, n, "ippocd answered HTTP %ld without an error message", status);
    json_decref(j);
}

int cli_http_call(const cli_ctx *ctx, const char *path, const char *post_body, json_t **out, long *status,
                  char *err, size_t errn)
{
    char errbuf[CURL_ERROR_SIZE], reason[512];
    body b = {0};
    struct curl_slist *h;
    json_error_t jerr;
    int code = CLI_EXIT_OK;
    *out = NULL;
    *status = 0;
    err[0] = '\0';
    CURL *c = start_request(ctx, path, "application/json", post_body, errbuf, &b, &h);
    if (!c) {
        snprintf(err, errn, "out of memory");
        return CLI_EXIT_API;
    }
    CURLcode rc = curl_easy_perform(c);
    if (b.too_big) {
        snprintf(err, errn, "ippocd's answer is larger than %u MiB", BODY_MAX >> 20);
        code = CLI_EXIT_API;
    } else if (rc != CURLE_OK) {
        bool down = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST;
        transport_reason(c, rc, errbuf, ctx->timeout_ms, reason, sizeof reason);
        snprintf(err, errn, "cannot reach ippocd at %s%s%s: %s%s", ctx->url, ctx->socket[0] ? " through " : "",
                 ctx->socket, reason, down ? " (is it running?)" : "");
        code = CLI_EXIT_UNREACH;
    } else if (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status), *status < 200 || *status > 299) {
        http_error_text(*status, b.p, b.len, err, errn);
        code = *status == 401 ? CLI_EXIT_AUTH : CLI_EXIT_API;
    } else if (!(*out = json_loadb(b.p ? b.p : "", b.len, 0, &jerr))) {
        snprintf(err, errn, "ippocd sent a bad answer (not JSON: %s)", jerr.text);
        code = CLI_EXIT_API;
    }
    free(b.p);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return code;
}
