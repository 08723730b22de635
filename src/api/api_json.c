/* api_json.c: building and sending API answers: the growing text buffer,
 * JSON shapes shared by handlers (labels, series keys, events, SSE frames),
 * the JSON error body, and the MHD response helpers every answer goes
 * through (Content-Type, Cache-Control, error codes). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "api/api_int.h"

/* ---- growing buffer ---------------------------------------------------- */
void api_buf_free(api_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

bool api_buf_reserve(api_buf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void api_buf_add(api_buf *b, const char *s, size_t n)
{
    if (!api_buf_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void api_buf_puts(api_buf *b, const char *s)
{
    api_buf_add(b, s, strlen(s));
}

void api_buf_printf(api_buf *b, const char *fmt, ...)
{
    va_list ap;
    if (!api_buf_reserve(b, 64))
        return;
    va_start(ap, fmt);
    int w = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (w < 0) {
        b->oom = true;
        return;
    }
    if ((size_t)w >= b->cap - b->len) {
        if (!api_buf_reserve(b, (size_t)w))
            return;
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)w;
}

/* ---- JSON shapes ------------------------------------------------------------ */
json_t *api_real_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

json_t *api_labels_json(const char *labels)
{
    json_t *o = json_object();
    api_label *l = malloc(sizeof *l * API_MAX_LABELS);
    char err[128];
    int n = l ? api_labels_parse(labels ? labels : "", l, API_MAX_LABELS, err, sizeof err) : -1;
    for (int i = 0; i < n; i++)
        json_object_set_new(o, l[i].name, json_string(l[i].value));
    free(l);
    return o;
}

char *api_series_key(const char *name, const char *labels)
{
    size_t nl = strlen(name), ll = labels ? strlen(labels) : 0;
    char *k = malloc(nl + ll + 3);
    if (!k)
        return NULL;
    if (ll)
        sprintf(k, "%s{%s}", name, labels);
    else
        memcpy(k, name, nl + 1);
    return k;
}

json_t *api_event_json(const mem_event *e)
{
    json_error_t jerr;
    json_t *payload = json_loads(e->payload ? e->payload : "{}", JSON_DECODE_ANY, &jerr);
    if (!payload) /* not JSON after all: keep it, as a string */
        payload = json_string(e->payload);
    return json_pack("{sI sI ss ss ss so*}", "id", (json_int_t)e->id, "ts", (json_int_t)e->ts,
                     "type", e->type, "severity", e->severity, "source", e->source,
                     "payload", payload);
}

void api_sse_frame(api_buf *b, const mem_event *e)
{
    json_t *o = api_event_json(e);
    char *data = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    char type[sizeof e->type];
    size_t i = 0;
    for (; e->type[i] && i + 1 < sizeof type; i++)
        type[i] = (e->type[i] == '\n' || e->type[i] == '\r') ? '_' : e->type[i];
    type[i] = 0;
    api_buf_printf(b, "id: %lld\nevent: %s\ndata: %s\n\n", (long long)e->id,
                   type[0] ? type : "message", data ? data : "{}");
    free(data);
}

char *api_error_body(const char *code, const char *message)
{
    char clean[512];
    size_t i = 0;
    for (; message && message[i] && i + 1 < sizeof clean; i++) {
        unsigned char ch = (unsigned char)message[i];
        clean[i] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
    }
    clean[i] = 0;
    json_t *o = json_pack("{s{ssss}}", "error", "code", code, "message", clean);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

/* ---- responses ------------------------------------------------------------------ */
#define API_GZIP_MIN 1024 /* smaller answers gain less than gzip's header costs */

/* body gzip'd into a malloc'd buffer (*outlen), or NULL (out of memory, or
 * no smaller). zlib level 5: JSON shrinks 5-10x for little CPU. */
static char *gzip_body(const char *body, size_t len, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 5, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&z, (uLong)len);
    char *out = malloc(cap);
    if (out) {
        z.next_in = (Bytef *)body;
        z.avail_in = (uInt)len;
        z.next_out = (Bytef *)out;
        z.avail_out = (uInt)cap;
        if (deflate(&z, Z_FINISH) != Z_STREAM_END || z.total_out >= len) {
            free(out);
            out = NULL;
        } else
            *outlen = z.total_out;
    }
    deflateEnd(&z);
    return out;
}

/* Gzips body in place (*body, *len) when the client accepts it and it is
 * worth it; true when it did. */
static bool maybe_gzip(struct MHD_Connection *c, char **body, size_t *len)
{
    if (*len < API_GZIP_MIN || *len > UINT32_MAX ||
        !api_web_accepts_gzip(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING)))
        return false;
    size_t zl = 0;
    char *z = gzip_body(*body, *len, &zl);
    if (!z)
        return false;
    free(*body);
    *body = z;
    *len = zl;
    return true;
}

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status, char *body, size_t len,
                                const char *ctype, const char *allow)
{
    bool gz = maybe_gzip(c, &body, &len);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
    if (gz)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    /* one request per connection: each passes the gate (api_gate.c) */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow ? allow : "GET, HEAD");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"ippoc\"");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result api_send_buf(struct MHD_Connection *c, unsigned status, char *body, size_t len,
                             const char *ctype)
{
    return send_buf(c, status, body, len, ctype, NULL);
}

enum MHD_Result api_send_json(struct MHD_Connection *c, unsigned status, json_t *obj)
{
    char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!s)
        return api_send_error(c, 500, "internal", "cannot build the answer");
    return api_send_buf(c, status, s, strlen(s), "application/json");
}

enum MHD_Result api_send_error(struct MHD_Connection *c, unsigned status, const char *code,
                               const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *s = api_error_body(code, msg);
    if (!s) {
        static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        s = strdup(oom);
        if (!s)
            return MHD_NO;
    }
    return api_send_buf(c, status, s, strlen(s), "application/json");
}

enum MHD_Result api_send_not_allowed(struct MHD_Connection *c, const char *method, const char *allow)
{
    char msg[128];
    snprintf(msg, sizeof msg, "%.32s is not allowed here: use %s", method, allow);
    char *s = api_error_body("method_not_allowed", msg);
    if (!s)
        return MHD_NO;
    return send_buf(c, MHD_HTTP_METHOD_NOT_ALLOWED, s, strlen(s), "application/json", allow);
}

/* ---- query parameters ------------------------------------------------------------- */
typedef struct param_list {
    const char *keys[API_MAX_PARAMS];
    const char *values[API_MAX_PARAMS];
    size_t n;
    bool overflow;
} param_list;

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    param_list *pl = cls;
    (void)kind;
    if (pl->n == API_MAX_PARAMS) {
        pl->overflow = true;
        return MHD_NO;
    }
    pl->keys[pl->n] = key ? key : "";
    pl->values[pl->n] = value;
    pl->n++;
    return MHD_YES;
}

bool api_get_params(struct MHD_Connection *c, const char *const *allowed, const char **vals,
                    enum MHD_Result *ret)
{
    param_list pl = {.n = 0};
    char err[160];
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_param, &pl);
    if (pl.overflow) {
        *ret = api_send_error(c, 400, "bad_request", "more than %d query parameters", API_MAX_PARAMS);
        return false;
    }
    if (api_params_check(pl.keys, pl.values, pl.n, allowed, vals, err, sizeof err) != 0) {
        *ret = api_send_error(c, 400, "bad_request", "%s", err);
        return false;
    }
    return true;
}

bool api_no_params(struct MHD_Connection *c, enum MHD_Result *ret)
{
    static const char *const allowed[] = {NULL};
    const char *vals[1];
    return api_get_params(c, allowed, vals, ret);
}
