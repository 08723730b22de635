/* api_web_parse.c: the pure parts of serving the dashboard's files (no MHD,
 * so unit tests call them): which file a path names, whether the client
 * takes gzip (Accept-Encoding with its q values), whether its cached copy is
 * current (If-None-Match). */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "api/api_int.h"

/* A plain relative name: segments of at least one byte, none "." or "..",
 * no backslash (so nothing that could climb out of web/ even if a name
 * were ever used as a path). */
static bool plain_name(const char *s)
{
    if (!*s || strchr(s, '\\'))
        return false;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        if (!e)
            break;
        s = e + 1;
        if (!*s) /* a trailing '/' */
            return false;
    }
    return true;
}

const char *api_web_name(const char *url)
{
    if (!url)
        return NULL;
    if (!strcmp(url, "/") || !strcmp(url, "/index.html"))
        return "index.html";
    if (strncmp(url, "/assets/", 8) != 0 || !plain_name(url + 8))
        return NULL;
    return url + 8;
}

static const char *skip_ows(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* The q of one Accept-Encoding element's parameters (p..end, after the
 * coding): 1 without a q; 0 for a zero or malformed one; else 1. Only
 * "more than zero or not" matters here. */
static int element_q(const char *p, const char *end)
{
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        if (!semi)
            return 1;
        p = skip_ows(semi + 1, end);
        if (end - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            const char *v = p + 2;
            if (v >= end || (*v != '0' && *v != '1'))
                return 0;
            int nonzero = *v == '1';
            for (v++; v < end && *v != ';' && *v != ' ' && *v != '\t'; v++) {
                if (*v >= '1' && *v <= '9')
                    nonzero = 1;
                else if (*v != '0' && *v != '.')
                    return 0;
            }
            return nonzero;
        }
    }
    return 1;
}

static bool coding_is(const char *p, size_t n, const char *name)
{
    return n == strlen(name) && strncasecmp(p, name, n) == 0;
}

bool api_web_accepts_gzip(const char *ae)
{
    if (!ae)
        return false;
    int gz = -1, star = -1; /* -1: not named */
    const char *p = ae, *all_end = ae + strlen(ae);
    while (p < all_end) {
        const char *comma = memchr(p, ',', (size_t)(all_end - p));
        const char *end = comma ? comma : all_end;
        const char *c = skip_ows(p, end), *ce = c;
        while (ce < end && *ce != ';' && *ce != ' ' && *ce != '\t')
            ce++;
        size_t n = (size_t)(ce - c);
        if (coding_is(c, n, "gzip") || coding_is(c, n, "x-gzip"))
            gz = gz == 1 ? 1 : element_q(ce, end);
        else if (coding_is(c, n, "*"))
            star = element_q(ce, end);
        p = comma ? comma + 1 : all_end;
    }
    return gz == 1 || (gz == -1 && star == 1);
}

/* Whether the opaque tag t (n bytes, quotes included) is etag or etag with
 * "-gz" before its closing quote. */
static bool tag_is(const char *t, size_t n, const char *etag)
{
    size_t el = strlen(etag);
    if (n == el && !memcmp(t, etag, n))
        return true;
    return el >= 2 && n == el + 3 && !memcmp(t, etag, el - 1) && !memcmp(t + el - 1, "-gz\"", 4);
}

bool api_web_etag_match(const char *inm, const char *etag)
{
    if (!inm || !etag)
        return false;
    const char *p = inm, *end = inm + strlen(inm);
    while (p < end) {
        p = skip_ows(p, end);
        if (p < end && *p == '*')
            return true;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/')
            p += 2;
        if (p < end && *p == '"') {
            const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
            if (!q)
                return false;
            if (tag_is(p, (size_t)(q - p + 1), etag))
                return true;
            p = q + 1;
        }
        const char *comma = memchr(p, ',', (size_t)(end - p));
        if (!comma)
            break;
        p = comma + 1;
    }
    return false;
}
