/* api_head.c: checks the head of an HTTP request (request line, header
 * lines, Host, Content-Length, Transfer-Encoding) before libmicrohttpd sees
 * it, so that every malformed request is answered with the API's JSON error
 * instead of MHD's built-in HTML pages, and says when the whole request
 * (head and body) has arrived. Pure: bytes in, a verdict out. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/api_int.h"

#define API_HEAD_MAX_LINES 64

static int bad(api_head *h, unsigned status, const char *code, const char *msg)
{
    h->status = status;
    h->code = code;
    snprintf(h->msg, sizeof h->msg, "%s", msg);
    return API_HEAD_BAD;
}

/* RFC 9110 token characters (method and header names). */
static bool tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The end of the line starting at p (the '\n'), or NULL. */
static const char *line_end(const char *p, const char *end)
{
    return memchr(p, '\n', (size_t)(end - p));
}

/* Length of the line [p, nl) without a trailing '\r'. */
static size_t line_len(const char *p, const char *nl)
{
    size_t n = (size_t)(nl - p);
    return n && p[n - 1] == '\r' ? n - 1 : n;
}

/* What can be said of a request line that has not ended yet. */
static int partial_request_line(const char *p, size_t n, api_head *h)
{
    size_t i = 0;
    while (i < n && tchar((unsigned char)p[i]))
        i++;
    if (i < n && p[i] != ' ')
        return bad(h, 400, "bad_request", "malformed request line (expected METHOD /path HTTP/1.1)");
    if (i > 32)
        return bad(h, 400, "bad_request", "method longer than 32 characters");
    if (n > API_MAX_URI + 48)
        return bad(h, 414, "too_large", "request target longer than " API_STR(API_MAX_URI) " bytes");
    return API_HEAD_MORE;
}

static int request_line(const char *p, size_t n, api_head *h)
{
    const char *sp1 = memchr(p, ' ', n);
    if (!sp1 || sp1 == p || sp1 - p > 32)
        return bad(h, 400, "bad_request", "malformed request line (expected METHOD /path HTTP/1.1)");
    for (const char *q = p; q < sp1; q++)
        if (!tchar((unsigned char)*q))
            return bad(h, 400, "bad_request", "bad character in the method");
    const char *t = sp1 + 1, *end = p + n;
    const char *sp2 = memchr(t, ' ', (size_t)(end - t));
    if (!sp2)
        return bad(h, 400, "bad_request", "malformed request line (expected METHOD /path HTTP/1.1)");
    if (sp2 - t > API_MAX_URI)
        return bad(h, 414, "too_large", "request target longer than " API_STR(API_MAX_URI) " bytes");
    if (sp2 == t || *t != '/')
        return bad(h, 400, "bad_request", "the request target must be a path starting with '/'");
    for (const char *q = t; q < sp2; q++)
        if ((unsigned char)*q < 0x21 || *q == 0x7f)
            return bad(h, 400, "bad_request", "control byte in the request target");
    const char *v = sp2 + 1;
    size_t vn = (size_t)(end - v);
    if (vn != 8 || strncmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' || v[7] < '0' ||
        v[7] > '9')
        return bad(h, 400, "bad_request", "malformed request line (expected METHOD /path HTTP/1.1)");
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return bad(h, 505, "bad_request", "HTTP version not supported (use HTTP/1.1 or HTTP/1.0)");
    h->http11 = v[7] == '1';
    /* a document (learn), a space file or a tool's source (evolve): read by MHD, each route caps its own */
    bool post = sp1 - p == 4 && !strncmp(p, "POST", 4);
    size_t tn = (size_t)(sp2 - t);
    h->big = post && ((tn == 9 && !strncmp(t, "/v1/learn", 9)) || (tn > 10 && !strncmp(t, "/v1/evolve", 10)) ||
                      (tn > 9 && !strncmp(t, "/v1/tools", 9)) || (tn > 10 && !strncmp(t, "/v1/genome", 10)));
    return API_HEAD_OK;
}

/* The value of a header line with blanks trimmed, as [*v, *v + *vn). */
static void header_value(const char *colon, const char *end, const char **v, size_t *vn)
{
    const char *s = colon + 1;
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    const char *e = end;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *v = s;
    *vn = (size_t)(e - s);
}

static bool name_is(const char *p, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

/* Content-Length: digits only; a repeated one must agree. */
static int content_length(const char *v, size_t vn, api_head *h)
{
    if (vn == 0 || vn > 18)
        return bad(h, vn ? 413 : 400, vn ? "too_large" : "bad_request",
                   vn ? "the body is longer than " API_STR(API_BODY_MAX) " bytes" : "empty Content-Length");
    long long n = 0;
    for (size_t i = 0; i < vn; i++) {
        if (v[i] < '0' || v[i] > '9')
            return bad(h, 400, "bad_request", "Content-Length is not a number");
        n = n * 10 + (v[i] - '0');
    }
    if (h->content_length >= 0 && h->content_length != n)
        return bad(h, 400, "bad_request", "two different Content-Length headers");
    h->content_length = n;
    return API_HEAD_OK;
}

static int header_line(const char *p, size_t n, api_head *h)
{
    if (*p == ' ' || *p == '\t')
        return bad(h, 400, "bad_request", "folded header line (obsolete line folding is not accepted)");
    const char *colon = memchr(p, ':', n);
    if (!colon || colon == p)
        return bad(h, 400, "bad_request", "malformed header line (expected Name: value)");
    for (const char *q = p; q < colon; q++)
        if (!tchar((unsigned char)*q))
            return bad(h, 400, "bad_request", "bad character in a header name");
    const char *end = p + n, *v;
    size_t vn, nn = (size_t)(colon - p);
    for (const char *q = colon + 1; q < end; q++)
        if (((unsigned char)*q < 0x20 && *q != '\t') || *q == 0x7f)
            return bad(h, 400, "bad_request", "control byte in a header value");
    header_value(colon, end, &v, &vn);
    if (name_is(p, nn, "Host") && h->hosts++)
        return bad(h, 400, "bad_request", "more than one Host header");
    if (name_is(p, nn, "Content-Length"))
        return content_length(v, vn, h);
    if (name_is(p, nn, "Transfer-Encoding")) {
        if (!name_is(v, vn, "chunked") || h->chunked)
            return bad(h, 400, "bad_request", "Transfer-Encoding other than one 'chunked' is not accepted");
        h->chunked = true;
    }
    if (name_is(p, nn, "Expect") && name_is(v, vn, "100-continue"))
        h->expect_continue = true;
    return API_HEAD_OK;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A chunked body from p: API_HEAD_OK when it has ended (h->need set),
 * API_HEAD_MORE, or API_HEAD_BAD (malformed: 400; longer than API_BODY_MAX
 * once decoded, or its wire form than API_CHUNKED_WIRE_MAX: 413). */
static int chunked_body(const char *start, const char *end, api_head *h)
{
    const char *p = start;
    size_t total = 0;
    for (;;) {
        if ((size_t)(p - start) > API_CHUNKED_WIRE_MAX)
            return bad(h, 413, "too_large", "the body is longer than " API_STR(API_BODY_MAX) " bytes");
        const char *nl = line_end(p, end);
        if (!nl)
            return (size_t)(end - p) > 256 ? bad(h, 400, "bad_request", "malformed chunk size line")
                                           : API_HEAD_MORE;
        size_t n = line_len(p, nl), i = 0, size = 0;
        for (; i < n && hexval(p[i]) >= 0; i++) {
            size = size * 16 + (size_t)hexval(p[i]);
            if (size > API_BODY_MAX)
                return bad(h, 413, "too_large", "the body is longer than " API_STR(API_BODY_MAX) " bytes");
        }
        if (i == 0 || (i < n && p[i] != ';' && p[i] != ' ' && p[i] != '\t'))
            return bad(h, 400, "bad_request", "malformed chunk size line");
        for (size_t k = i; k < n; k++)
            if ((unsigned char)p[k] < 0x20 && p[k] != '\t')
                return bad(h, 400, "bad_request", "control byte in a chunk extension");
        p = nl + 1;
        if (size == 0)
            break;
        total += size;
        if (total > API_BODY_MAX)
            return bad(h, 413, "too_large", "the body is longer than " API_STR(API_BODY_MAX) " bytes");
        if ((size_t)(end - p) < size + 2)
            return (size_t)(end - p) >= size + 1 && p[size] != '\r' && p[size] != '\n'
                       ? bad(h, 400, "bad_request", "chunk data longer than its size")
                       : API_HEAD_MORE;
        p += size;
        if (p[0] == '\r' && p[1] == '\n')
            p += 2;
        else if (p[0] == '\n')
            p += 1;
        else
            return bad(h, 400, "bad_request", "chunk data longer than its size");
    }
    for (int lines = 0;; lines++) { /* trailer lines, then an empty one */
        const char *nl = line_end(p, end);
        if (!nl)
            return (size_t)(end - p) > 1024 ? bad(h, 431, "too_large", "trailer lines too long") : API_HEAD_MORE;
        size_t n = line_len(p, nl);
        if (n == 0) {
            h->need = h->head_len + (size_t)(nl + 1 - start);
            return API_HEAD_OK;
        }
        if (lines >= 16)
            return bad(h, 431, "too_large", "more than 16 trailer lines");
        int rc = header_line(p, n, h);
        if (rc != API_HEAD_OK)
            return rc;
        p = nl + 1;
    }
}

/* Checks the head once it ended at head_len bytes: the rules that need
 * every header. */
static int whole_head(api_head *h, const char *buf, size_t head_len, size_t len)
{
    if (h->http11 && !h->hosts)
        return bad(h, 400, "bad_request", "an HTTP/1.1 request needs a Host header");
    if (h->chunked && h->content_length >= 0)
        return bad(h, 400, "bad_request", "both Content-Length and Transfer-Encoding");
    if (h->big && !h->chunked && h->content_length <= API_LEARN_BODY_MAX) {
        h->head_len = h->need = head_len; /* a document: MHD reads the body (learn) */
        return API_HEAD_OK;
    }
    if (h->big && h->content_length > API_LEARN_BODY_MAX)
        return bad(h, 413, "too_large", "the document is longer than " API_STR(API_LEARN_BODY_MAX) " bytes");
    if (h->content_length > API_BODY_MAX)
        return bad(h, 413, "too_large", "the body is longer than " API_STR(API_BODY_MAX) " bytes");
    h->head_len = head_len;
    if (h->chunked)
        return chunked_body(buf + head_len, buf + len, h);
    h->need = head_len + (size_t)(h->content_length > 0 ? h->content_length : 0);
    return len >= h->need ? API_HEAD_OK : API_HEAD_MORE;
}

int api_head_check(const char *buf, size_t len, api_head *h)
{
    memset(h, 0, sizeof *h);
    h->content_length = -1;
    const char *p = buf, *end = buf + len;
    while (p < end && (*p == '\r' || *p == '\n') && p - buf < 8) /* empty lines before it */
        p++;
    const char *nl = line_end(p, end);
    if (!nl)
        return partial_request_line(p, (size_t)(end - p), h);
    int rc = request_line(p, line_len(p, nl), h);
    if (rc != API_HEAD_OK)
        return rc;
    const char *head_start = nl + 1;
    for (int lines = 0;; lines++) {
        p = nl + 1;
        nl = line_end(p, end);
        size_t upto = (size_t)((nl ? nl : end) - head_start);
        if (upto > API_HEAD_MAX)
            return bad(h, 431, "too_large", "request headers longer than " API_STR(API_HEAD_MAX) " bytes");
        if (!nl)
            return API_HEAD_MORE;
        size_t n = line_len(p, nl);
        if (n == 0)
            return whole_head(h, buf, (size_t)(nl + 1 - buf), len);
        if (lines >= API_HEAD_MAX_LINES)
            return bad(h, 431, "too_large", "more than " API_STR(API_HEAD_MAX_LINES) " header lines");
        rc = header_line(p, n, h);
        if (rc != API_HEAD_OK)
            return rc;
    }
}
