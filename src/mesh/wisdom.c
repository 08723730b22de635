/* wisdom.c: the wisdom record's canonical binary encoding, its Ed25519
 * signature (libsodium, crypto_sign_detached over every byte before the
 * signature) and its JSON view. The decoder accepts only the one encoding a
 * record has: lists sorted and unique, no trailing bytes, finite numbers
 * without negative zero, printable ASCII strings within their bounds; so
 * encode(decode(b)) == b and the signed bytes are the record. Layout (all
 * integers big-endian; STR is a length byte and that many bytes):
 *
 *   "IPW1" kind:u8 origin:32 seq:u64 ts:i64
 *   cpu_log2:u8 mem_log2:u8 kernel_major:u8 kernel_minor:u8 os:STR service:STR
 *   FIX:      nfeatures:u8 feature:STR... action:STR k:u32 n:u32
 *   BASELINE: metric:STR count:u32 mean stddev p05 p50 p95 (IEEE 754 binary64)
 *   KNOBS:    objective:STR nknobs:u8 (name:STR value:STR)... gain lo hi:f64 runs:u32
 *   signature:64 */
#include "core/core.h"
#include "mesh/wisdom.h"

#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "IPW1"

const char *mesh_wisdom_kind_name(int kind)
{
    switch (kind) {
    case MESH_WISDOM_FIX: return "fix";
    case MESH_WISDOM_BASELINE: return "baseline";
    case MESH_WISDOM_KNOBS: return "knobs";
    default: return NULL;
    }
}

const char *mesh_wisdom_verdict_name(mesh_wisdom_verdict v)
{
    static const char *const names[MESH_WISDOM_VERDICTS] = {"ok", "malformed", "unsigned", "bad_signature",
                                                             "forbidden"};
    return (unsigned)v < MESH_WISDOM_VERDICTS ? names[v] : "unknown";
}

/* ---- writer ---- */

typedef struct wbuf {
    uint8_t *p;
    size_t cap, len;
    bool over;
} wbuf;

static void put(wbuf *w, const void *b, size_t n)
{
    if (w->over || w->len + n > w->cap) {
        w->over = true;
        return;
    }
    memcpy(w->p + w->len, b, n);
    w->len += n;
}

static void put_u(wbuf *w, uint64_t v, int bytes)
{
    uint8_t b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    put(w, b, (size_t)bytes);
}

static void put_f(wbuf *w, double d)
{
    uint64_t u;
    if (d == 0)
        d = 0.0; /* no negative zero */
    memcpy(&u, &d, sizeof u);
    put_u(w, u, 8);
}

static void put_s(wbuf *w, const char *s)
{
    size_t n = strlen(s);
    if (n > 255) {
        w->over = true;
        return;
    }
    put_u(w, n, 1);
    put(w, s, n);
}

static int cmp_str(const void *a, const void *b) { return strcmp(a, b); }
static int cmp_knob(const void *a, const void *b)
{
    return strcmp(((const mesh_wisdom_knob *)a)->name, ((const mesh_wisdom_knob *)b)->name);
}

/* Sorts r's lists into their canonical order. */
static void canonical(mesh_wisdom_rec *r)
{
    if (r->kind == MESH_WISDOM_FIX && r->fix.nfeatures > 0 && r->fix.nfeatures <= MESH_WISDOM_FEATURES_MAX)
        qsort(r->fix.features, (size_t)r->fix.nfeatures, sizeof r->fix.features[0], cmp_str);
    if (r->kind == MESH_WISDOM_KNOBS && r->knobs.nknobs > 0 && r->knobs.nknobs <= MESH_WISDOM_KNOBS_MAX)
        qsort(r->knobs.knobs, (size_t)r->knobs.nknobs, sizeof r->knobs.knobs[0], cmp_knob);
}

static void encode_body(const mesh_wisdom_rec *r, wbuf *w)
{
    put(w, MAGIC, 4);
    put_u(w, (uint64_t)r->kind, 1);
    put(w, r->origin, sizeof r->origin);
    put_u(w, r->seq, 8);
    put_u(w, (uint64_t)r->ts_ms, 8);
    put_u(w, r->host.cpu_log2, 1);
    put_u(w, r->host.mem_log2, 1);
    put_u(w, r->host.kernel_major, 1);
    put_u(w, r->host.kernel_minor, 1);
    put_s(w, r->host.os);
    put_s(w, r->host.service);
    if (r->kind == MESH_WISDOM_FIX) {
        put_u(w, (uint64_t)r->fix.nfeatures, 1);
        for (int i = 0; i < r->fix.nfeatures && i < MESH_WISDOM_FEATURES_MAX; i++)
            put_s(w, r->fix.features[i]);
        put_s(w, r->fix.action);
        put_u(w, r->fix.k, 4);
        put_u(w, r->fix.n, 4);
    } else if (r->kind == MESH_WISDOM_BASELINE) {
        put_s(w, r->base.metric);
        put_u(w, r->base.count, 4);
        put_f(w, r->base.mean);
        put_f(w, r->base.stddev);
        put_f(w, r->base.p05);
        put_f(w, r->base.p50);
        put_f(w, r->base.p95);
    } else {
        put_s(w, r->knobs.objective);
        put_u(w, (uint64_t)r->knobs.nknobs, 1);
        for (int i = 0; i < r->knobs.nknobs && i < MESH_WISDOM_KNOBS_MAX; i++) {
            put_s(w, r->knobs.knobs[i].name);
            put_s(w, r->knobs.knobs[i].value);
        }
        put_f(w, r->knobs.gain);
        put_f(w, r->knobs.lo);
        put_f(w, r->knobs.hi);
        put_u(w, r->knobs.runs, 4);
    }
}

int mesh_wisdom_sign(mesh_wisdom_rec *r, const uint8_t sk[64], uint64_t seq, int64_t ts_ms,
                     const mesh_wisdom_local *loc, uint8_t *buf, size_t cap, size_t *len, char *err, size_t errlen)
{
    if (sodium_init() < 0)
        return core_err(err, errlen, -EIO, "libsodium cannot start");
    if (!mesh_wisdom_kind_name(r->kind))
        return core_err(err, errlen, -EINVAL, "kind: %d is not a wisdom kind", (int)r->kind);
    if (seq == 0)
        return core_err(err, errlen, -EINVAL, "seq: sequence numbers start at 1");
    memcpy(r->origin, sk + 32, MESH_WISDOM_ID_BYTES); /* libsodium's secret key ends with the public key */
    r->seq = seq;
    r->ts_ms = ts_ms;
    canonical(r);
    int rc = mesh_wisdom_check(r, loc, err, errlen);
    if (rc)
        return rc;
    wbuf w = {buf, cap < MESH_WISDOM_MAX_BYTES ? cap : MESH_WISDOM_MAX_BYTES, 0, false};
    encode_body(r, &w);
    if (w.over || w.len + MESH_WISDOM_SIG_BYTES > w.cap)
        return core_err(err, errlen, -EMSGSIZE, "record: over %zu bytes encoded", w.cap);
    crypto_sign_detached(r->sig, NULL, buf, w.len, sk);
    put(&w, r->sig, sizeof r->sig);
    *len = w.len;
    return 0;
}

/* ---- reader ---- */

typedef struct rbuf {
    const uint8_t *p;
    size_t len, off;
    char *err;
    size_t errlen;
    int rc;
} rbuf;

static bool bad(rbuf *r, const char *what)
{
    if (!r->rc)
        r->rc = core_err(r->err, r->errlen, -EBADMSG, "byte %zu: %s", r->off, what);
    return false;
}

static bool get(rbuf *r, void *b, size_t n, const char *what)
{
    if (r->rc)
        return false;
    if (r->len - r->off < n)
        return bad(r, what);
    memcpy(b, r->p + r->off, n);
    r->off += n;
    return true;
}

static uint64_t get_u(rbuf *r, int bytes, const char *what)
{
    uint8_t b[8] = {0};
    uint64_t v = 0;
    if (!get(r, b, (size_t)bytes, what))
        return 0;
    for (int i = 0; i < bytes; i++)
        v = v << 8 | b[i];
    return v;
}

static double get_f(rbuf *r, const char *what)
{
    size_t at = r->off;
    uint64_t u = get_u(r, 8, what);
    double d;
    memcpy(&d, &u, sizeof d);
    if (!r->rc && (!isfinite(d) || (d == 0 && signbit(d)))) {
        r->off = at;
        bad(r, what);
        return 0;
    }
    return d;
}

/* A string of at most max bytes, printable ASCII (space allowed only when
 * spaces is set), into out (max + 1 bytes). */
static void get_s(rbuf *r, char *out, size_t max, bool spaces, bool empty_ok, const char *what)
{
    out[0] = 0;
    size_t at = r->off;
    size_t n = (size_t)get_u(r, 1, what);
    if (r->rc)
        return;
    if (n > max || (!n && !empty_ok)) {
        r->off = at;
        bad(r, what);
        return;
    }
    if (!get(r, out, n, what))
        return;
    out[n] = 0;
    for (size_t i = 0; i < n; i++)
        if (out[i] < 0x20 || out[i] > 0x7e || (out[i] == ' ' && !spaces)) {
            r->off = at + 1 + i;
            bad(r, what);
            return;
        }
}

static void decode_fix(rbuf *b, mesh_wisdom_fix *f)
{
    size_t at = b->off;
    f->nfeatures = (int)get_u(b, 1, "fix: feature count");
    if (!b->rc && (f->nfeatures < 1 || f->nfeatures > MESH_WISDOM_FEATURES_MAX)) {
        b->off = at;
        bad(b, "fix: feature count not in 1..16");
    }
    for (int i = 0; i < f->nfeatures && !b->rc; i++) {
        at = b->off;
        get_s(b, f->features[i], MESH_WISDOM_TOKEN_MAX, false, false, "fix: a feature");
        if (!b->rc && i && strcmp(f->features[i - 1], f->features[i]) >= 0) {
            b->off = at;
            bad(b, "fix: features not sorted and unique");
        }
    }
    get_s(b, f->action, MESH_WISDOM_ACTION_MAX, true, false, "fix: the action");
    f->k = (uint32_t)get_u(b, 4, "fix: k");
    f->n = (uint32_t)get_u(b, 4, "fix: n");
}

static void decode_base(rbuf *b, mesh_wisdom_baseline *s)
{
    get_s(b, s->metric, MESH_WISDOM_TOKEN_MAX, false, false, "baseline: the metric");
    s->count = (uint32_t)get_u(b, 4, "baseline: count");
    s->mean = get_f(b, "baseline: mean");
    s->stddev = get_f(b, "baseline: stddev");
    s->p05 = get_f(b, "baseline: p05");
    s->p50 = get_f(b, "baseline: p50");
    s->p95 = get_f(b, "baseline: p95");
}

static void decode_knobs(rbuf *b, mesh_wisdom_knobs *k)
{
    get_s(b, k->objective, MESH_WISDOM_TOKEN_MAX, false, false, "knobs: the objective");
    size_t at = b->off;
    k->nknobs = (int)get_u(b, 1, "knobs: knob count");
    if (!b->rc && (k->nknobs < 1 || k->nknobs > MESH_WISDOM_KNOBS_MAX)) {
        b->off = at;
        bad(b, "knobs: knob count not in 1..8");
    }
    for (int i = 0; i < k->nknobs && !b->rc; i++) {
        at = b->off;
        get_s(b, k->knobs[i].name, MESH_WISDOM_TOKEN_MAX, false, false, "knobs: a name");
        if (!b->rc && i && strcmp(k->knobs[i - 1].name, k->knobs[i].name) >= 0) {
            b->off = at;
            bad(b, "knobs: names not sorted and unique");
        }
        get_s(b, k->knobs[i].value, MESH_WISDOM_VALUE_MAX, false, false, "knobs: a value");
    }
    k->gain = get_f(b, "knobs: gain");
    k->lo = get_f(b, "knobs: lo");
    k->hi = get_f(b, "knobs: hi");
    k->runs = (uint32_t)get_u(b, 4, "knobs: runs");
}

int mesh_wisdom_decode(const uint8_t *buf, size_t len, mesh_wisdom_rec *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len > MESH_WISDOM_MAX_BYTES)
        return core_err(err, errlen, -EBADMSG, "byte %d: record longer than %d bytes", MESH_WISDOM_MAX_BYTES,
                    MESH_WISDOM_MAX_BYTES);
    rbuf b = {buf, len, 0, err, errlen, 0};
    char magic[4];
    if (get(&b, magic, 4, "record shorter than its header") && memcmp(magic, MAGIC, 4)) {
        b.off = 0;
        bad(&b, "not a wisdom record (magic)");
    }
    size_t at = b.off;
    out->kind = (mesh_wisdom_kind)get_u(&b, 1, "kind");
    if (!b.rc && !mesh_wisdom_kind_name(out->kind)) {
        b.off = at;
        bad(&b, "unknown kind");
    }
    get(&b, out->origin, sizeof out->origin, "origin");
    at = b.off;
    out->seq = get_u(&b, 8, "seq");
    if (!b.rc && !out->seq) {
        b.off = at;
        bad(&b, "seq 0");
    }
    out->ts_ms = (int64_t)get_u(&b, 8, "time");
    out->host.cpu_log2 = (uint8_t)get_u(&b, 1, "host: cpu");
    out->host.mem_log2 = (uint8_t)get_u(&b, 1, "host: memory");
    out->host.kernel_major = (uint8_t)get_u(&b, 1, "host: kernel major");
    out->host.kernel_minor = (uint8_t)get_u(&b, 1, "host: kernel minor");
    get_s(&b, out->host.os, sizeof out->host.os - 1, false, false, "host: os");
    get_s(&b, out->host.service, sizeof out->host.service - 1, false, true, "host: service");
    if (!b.rc && out->kind == MESH_WISDOM_FIX)
        decode_fix(&b, &out->fix);
    else if (!b.rc && out->kind == MESH_WISDOM_BASELINE)
        decode_base(&b, &out->base);
    else if (!b.rc)
        decode_knobs(&b, &out->knobs);
    get(&b, out->sig, sizeof out->sig, "signature");
    if (!b.rc && b.off != len)
        bad(&b, "trailing bytes after the signature");
    return b.rc;
}

int mesh_wisdom_verify(const uint8_t *buf, size_t len, const mesh_wisdom_rec *r, char *err, size_t errlen)
{
    static const uint8_t zero[MESH_WISDOM_SIG_BYTES];
    if (sodium_init() < 0)
        return core_err(err, errlen, -EIO, "libsodium cannot start");
    if (len < MESH_WISDOM_SIG_BYTES)
        return core_err(err, errlen, -EBADMSG, "record shorter than a signature");
    if (!memcmp(r->sig, zero, sizeof zero))
        return core_err(err, errlen, -ENOKEY, "signature: unsigned (all zero)");
    if (crypto_sign_verify_detached(r->sig, buf, len - MESH_WISDOM_SIG_BYTES, r->origin))
        return core_err(err, errlen, -EKEYREJECTED, "signature: does not verify with the origin's key");
    return 0;
}

mesh_wisdom_verdict mesh_wisdom_accept(const uint8_t *buf, size_t len, mesh_wisdom_rec *out, char *err,
                                       size_t errlen)
{
    if (mesh_wisdom_decode(buf, len, out, err, errlen))
        return MESH_WISDOM_MALFORMED;
    int rc = mesh_wisdom_verify(buf, len, out, err, errlen);
    if (rc == -ENOKEY)
        return MESH_WISDOM_UNSIGNED;
    if (rc)
        return MESH_WISDOM_BAD_SIG;
    if (mesh_wisdom_check(out, NULL, err, errlen))
        return MESH_WISDOM_FORBIDDEN;
    return MESH_WISDOM_OK;
}

/* ---- JSON view ---- */

static json_t *body_json(const mesh_wisdom_rec *r)
{
    if (r->kind == MESH_WISDOM_FIX) {
        json_t *f = json_array();
        for (int i = 0; i < r->fix.nfeatures && i < MESH_WISDOM_FEATURES_MAX; i++)
            json_array_append_new(f, json_string(r->fix.features[i]));
        return json_pack("{s:o, s:s, s:I, s:I}", "features", f, "action", r->fix.action, "k", (json_int_t)r->fix.k,
                         "n", (json_int_t)r->fix.n);
    }
    if (r->kind == MESH_WISDOM_BASELINE)
        return json_pack("{s:s, s:I, s:f, s:f, s:f, s:f, s:f}", "metric", r->base.metric, "count",
                         (json_int_t)r->base.count, "mean", r->base.mean, "stddev", r->base.stddev, "p05", r->base.p05,
                         "p50", r->base.p50, "p95", r->base.p95);
    json_t *k = json_object();
    for (int i = 0; i < r->knobs.nknobs && i < MESH_WISDOM_KNOBS_MAX; i++)
        json_object_set_new(k, r->knobs.knobs[i].name, json_string(r->knobs.knobs[i].value));
    return json_pack("{s:s, s:o, s:f, s:f, s:f, s:I}", "objective", r->knobs.objective, "knobs", k, "gain",
                     r->knobs.gain, "lo", r->knobs.lo, "hi", r->knobs.hi, "runs", (json_int_t)r->knobs.runs);
}

json_t *mesh_wisdom_to_json(const mesh_wisdom_rec *r)
{
    char hex[2 * MESH_WISDOM_ID_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, r->origin, sizeof r->origin);
    const char *kind = mesh_wisdom_kind_name(r->kind);
    char kv[16];
    snprintf(kv, sizeof kv, "%u.%u", r->host.kernel_major, r->host.kernel_minor);
    json_t *host = json_pack("{s:i, s:i, s:s, s:s, s:s}", "cpu_log2", r->host.cpu_log2, "mem_log2",
                             r->host.mem_log2, "kernel", kv, "os", r->host.os, "service", r->host.service);
    return json_pack("{s:s, s:s, s:I, s:I, s:o*, s:o*}", "kind", kind ? kind : "unknown", "origin", hex, "seq",
                     (json_int_t)r->seq, "ts", (json_int_t)r->ts_ms, "host", host, "body", body_json(r));
}
