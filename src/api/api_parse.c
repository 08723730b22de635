/* api_parse.c: pure parsing and validation for the API: the raw request
 * target, the bearer token, query parameters, time ranges and steps, and
 * Prometheus-style label sets (parse, canonicalise, split a series key).
 * Nothing here touches MHD or the store, so all of it is unit-tested. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api_int.h"

/* ---- request target ------------------------------------------------------- */
static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int api_uri_check(const char *uri)
{
    size_t len = strnlen(uri, API_MAX_URI + 1);
    if (len > API_MAX_URI)
        return -E2BIG;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)uri[i];
        if (ch < 0x20 || ch == 0x7f)
            return -EINVAL;
        if (ch != '%')
            continue;
        int h = i + 1 < len ? hexval(uri[i + 1]) : -1;
        int l = i + 2 < len ? hexval(uri[i + 2]) : -1;
        if (h < 0 || l < 0)
            return -EINVAL;
        if (h * 16 + l < 0x20 || h * 16 + l == 0x7f) /* %00, %0A, ... */
            return -EINVAL;
        i += 2;
    }
    return 0;
}

bool api_token_ok(const char *authorization, const char *token)
{
    if (!token || !token[0])
        return true;
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
        return false;
    const char *p = authorization + 7;
    while (*p == ' ')
        p++;
    size_t lp = strlen(p), lt = strlen(token);
    /* Time depends on the token's length only, never on where they differ. */
    unsigned char d = (unsigned char)(lp != lt);
    for (size_t i = 0; i < lt; i++)
        d |= (unsigned char)token[i] ^ (unsigned char)(i < lp ? p[i] : 0);
    return d == 0;
}

/* ---- query parameters ------------------------------------------------------ */
static void clean_copy(char *dst, size_t n, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i + 1 < n; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[i] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
    }
    dst[i] = 0;
}

int api_parse_flag(const char *v, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes"}, *const no[] = {"0", "false", "no"};
    for (size_t i = 0; v && i < 3; i++) {
        if (!strcasecmp(v, yes[i])) {
            *out = true;
            return 0;
        }
        if (!strcasecmp(v, no[i])) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

int api_params_check(const char *const *keys, const char *const *values, size_t n,
                     const char *const *allowed, const char **vals, char *err, size_t errlen)
{
    size_t na = 0;
    while (allowed[na])
        vals[na++] = NULL;
    for (size_t i = 0; i < n; i++) {
        char shown[72];
        clean_copy(shown, sizeof shown, keys[i]);
        size_t j = 0;
        while (j < na && strcmp(allowed[j], keys[i]) != 0)
            j++;
        if (j == na) {
            snprintf(err, errlen, "unknown query parameter '%s'", shown);
            return -EINVAL;
        }
        if (vals[j]) {
            snprintf(err, errlen, "query parameter '%s' given twice", shown);
            return -EINVAL;
        }
        if (!values[i] || !values[i][0]) {
            snprintf(err, errlen, "query parameter '%s' needs a value", shown);
            return -EINVAL;
        }
        vals[j] = values[i];
    }
    return 0;
}

/* ---- time ranges --------------------------------------------------------- */
int api_parse_range(const char *from, const char *to, const char *step, int64_t now_ms,
                    int64_t *from_ms, int64_t *to_ms, int64_t *step_ms, char *err, size_t errlen)
{
    char shown[72];
    *from_ms = now_ms - 15 * 60 * 1000;
    *to_ms = now_ms;
    *step_ms = 0;
    if (from && core_parse_time(from, now_ms, from_ms) != 0) {
        clean_copy(shown, sizeof shown, from);
        snprintf(err, errlen, "from: cannot parse '%s' (epoch seconds, now, now-15m or 15m)", shown);
        return API_RANGE_BAD;
    }
    if (to && core_parse_time(to, now_ms, to_ms) != 0) {
        clean_copy(shown, sizeof shown, to);
        snprintf(err, errlen, "to: cannot parse '%s' (epoch seconds, now, now-15m or 15m)", shown);
        return API_RANGE_BAD;
    }
    if (*from_ms < 0 || *from_ms > API_TIME_MAX_MS || *to_ms < 0 || *to_ms > API_TIME_MAX_MS) {
        snprintf(err, errlen, "from/to must lie between 1970 and 3000");
        return API_RANGE_BAD;
    }
    if (*to_ms < *from_ms) {
        snprintf(err, errlen, "to is before from");
        return API_RANGE_BAD;
    }
    if (step) {
        int64_t ms = 0;
        clean_copy(shown, sizeof shown, step);
        if (core_parse_duration(step, &ms) != 0) {
            snprintf(err, errlen, "step: cannot parse '%s' (10s, 1m, or seconds)", shown);
            return API_STEP_BAD;
        }
        if (ms <= 0 || ms % 1000 != 0) {
            snprintf(err, errlen, "step: '%s' must be a positive whole number of seconds", shown);
            return API_STEP_BAD;
        }
        *step_ms = ms;
    }
    return API_RANGE_OK;
}

int64_t api_points_for(int64_t from_ms, int64_t to_ms, int64_t step_ms)
{
    if (step_ms <= 0 || to_ms < from_ms)
        return 0;
    return (to_ms - from_ms) / step_ms + 1;
}

int64_t api_effective_step(int64_t step_ms, int src)
{
    static const int64_t res[] = {1000, 10000, 60000, 3600000}; /* ram, 10s, 1m, 1h */
    int64_t r = src >= 0 && src < 4 ? res[src] : 1000;
    return (step_ms + r - 1) / r * r;
}

int64_t api_auto_step(const struct api *a, int64_t from_ms, int64_t to_ms, int64_t now_ms)
{
    int64_t res = 1000;
    if (from_ms < now_ms - a->ram_window_ms)
        res = 10000;
    if (from_ms < now_ms - a->ret10s_ms)
        res = 60000;
    if (from_ms < now_ms - a->ret1m_ms)
        res = 3600000;
    int64_t maxp = a->max_points > 1 ? a->max_points - 1 : 1;
    int64_t step = (to_ms - from_ms + maxp - 1) / maxp; /* ceil */
    if (step < res)
        step = res;
    return (step + res - 1) / res * res; /* a multiple of the tier's resolution */
}

/* ---- labels ---------------------------------------------------------------- */
static const char *skip_sp(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && ((c >= '0' && c <= '9') || c == '.' || c == '-'));
}

int api_labels_parse(const char *s, api_label *out, int max, char *err, size_t errlen)
{
    int n = 0;
    const char *p = skip_sp(s);
    while (*p) {
        if (n == max) {
            snprintf(err, errlen, "more than %d labels", max);
            return -EINVAL;
        }
        api_label *l = &out[n];
        size_t k = 0;
        if (!name_char(*p, true)) {
            snprintf(err, errlen, "label %d: name expected", n + 1);
            return -EINVAL;
        }
        while (name_char(*p, k == 0)) {
            if (k + 1 >= sizeof l->name) {
                snprintf(err, errlen, "label %d: name too long", n + 1);
                return -EINVAL;
            }
            l->name[k++] = *p++;
        }
        l->name[k] = 0;
        p = skip_sp(p);
        if (*p++ != '=') {
            snprintf(err, errlen, "label '%s': '=' expected", l->name);
            return -EINVAL;
        }
        p = skip_sp(p);
        if (*p++ != '"') {
            snprintf(err, errlen, "label '%s': '\"' expected", l->name);
            return -EINVAL;
        }
        k = 0;
        while (*p && *p != '"') {
            char c = *p++;
            if (c == '\\') {
                c = *p++;
                if (c == 'n')
                    c = '\n';
                else if (c != '\\' && c != '"') {
                    snprintf(err, errlen, "label '%s': bad escape", l->name);
                    return -EINVAL;
                }
            }
            if (k + 1 >= sizeof l->value) {
                snprintf(err, errlen, "label '%s': value too long", l->name);
                return -EINVAL;
            }
            l->value[k++] = c;
        }
        if (*p++ != '"') {
            snprintf(err, errlen, "label '%s': unterminated value", l->name);
            return -EINVAL;
        }
        l->value[k] = 0;
        n++;
        p = skip_sp(p);
        if (*p == ',')
            p = skip_sp(p + 1);
        else if (*p) {
            snprintf(err, errlen, "label '%s': ',' expected", l->name);
            return -EINVAL;
        }
    }
    return n;
}

static int label_cmp(const void *x, const void *y)
{
    return strcmp(((const api_label *)x)->name, ((const api_label *)y)->name);
}

int api_labels_format(api_label *l, int n, char *out, size_t outlen)
{
    qsort(l, (size_t)n, sizeof *l, label_cmp);
    size_t o = 0;
    if (outlen == 0)
        return -ENAMETOOLONG;
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && strcmp(l[i - 1].name, l[i].name) == 0)
            return -EINVAL;
        char tmp[2 * API_LABEL_MAX + 8];
        size_t t = 0;
        for (const char *v = l[i].value; *v; v++) {
            if (*v == '\\' || *v == '"')
                tmp[t++] = '\\', tmp[t++] = *v;
            else if (*v == '\n')
                tmp[t++] = '\\', tmp[t++] = 'n';
            else
                tmp[t++] = *v;
        }
        tmp[t] = 0;
        int w = snprintf(out + o, outlen - o, "%s%s=\"%s\"", i ? "," : "", l[i].name, tmp);
        if (w < 0 || (size_t)w >= outlen - o)
            return -ENAMETOOLONG;
        o += (size_t)w;
    }
    return 0;
}

int api_labels_canon(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
    api_label *l = malloc(sizeof *l * API_MAX_LABELS);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int n = api_labels_parse(in, l, API_MAX_LABELS, err, errlen);
    int rc = n;
    if (n >= 0) {
        rc = api_labels_format(l, n, out, outlen);
        if (rc == -EINVAL)
            snprintf(err, errlen, "label given twice");
        else if (rc < 0)
            snprintf(err, errlen, "labels too long");
    }
    free(l);
    return rc < 0 ? rc : 0;
}

int api_split_key(const char *key, char *name, size_t nn, char *labels, size_t ln)
{
    const char *b = strchr(key, '{');
    size_t klen = strlen(key);
    if (!b) {
        if (strchr(key, '}'))
            return -EINVAL;
        if (core_sncpy(name, nn, key) != 0)
            return -EINVAL;
        labels[0] = 0;
        return 0;
    }
    if (b == key || key[klen - 1] != '}')
        return -EINVAL;
    size_t nlen = (size_t)(b - key), llen = klen - nlen - 2;
    if (nlen >= nn || llen >= ln)
        return -EINVAL;
    memcpy(name, key, nlen);
    name[nlen] = 0;
    memcpy(labels, b + 1, llen);
    labels[llen] = 0;
    return 0;
}
