/* mask.c: the template miner's masks. Built-in: a hand-written scanner that
 * says whether one token holds a variable (numbers, hex, IPs, paths, UUIDs,
 * URLs, identifiers with digits...), fast enough to run on every token of
 * every line. Extra: per-source PCRE2 patterns (JIT-compiled), each match
 * replaced by "<*>" before tokenising, as Loghub's pre-processing regexes. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "logs/miner_int.h"

#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- built-in scanner --------------------------------------------------------- */

static bool mask_isdigit(unsigned char c) { return c >= '0' && c <= '9'; }
static bool mask_ishex(unsigned char c)
{
    return mask_isdigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static bool mask_isalpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }

/* Punctuation that wraps a variable and stays literal: "(1.16", "[42]", "5,". */
static bool mask_open(unsigned char c) { return c == '(' || c == '[' || c == '{' || c == '\'' || c == '"'; }
static bool mask_close(unsigned char c)
{
    return c == ')' || c == ']' || c == '}' || c == ',' || c == ';' || c == ':' || c == '.' ||
           c == '\'' || c == '"' || c == '!' || c == '?';
}

/* [+-]digits[.digits...][e[+-]digits] */
static bool mask_number(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    size_t d0 = i;
    while (i < n && (mask_isdigit((unsigned char)s[i]) || s[i] == '.' || s[i] == ','))
        i++;
    if (i == d0 || !mask_isdigit((unsigned char)s[d0]))
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < n && (s[j] == '-' || s[j] == '+'))
            j++;
        size_t e0 = j;
        while (j < n && mask_isdigit((unsigned char)s[j]))
            j++;
        if (j > e0)
            i = j;
    }
    return i == n;
}

static bool mask_hex(const char *s, size_t n)
{
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        for (size_t i = 2; i < n; i++)
            if (!mask_ishex((unsigned char)s[i]))
                return false;
        return true;
    }
    if (n < 8)
        return false;
    bool digit = false;
    for (size_t i = 0; i < n; i++) {
        if (!mask_ishex((unsigned char)s[i]))
            return false;
        digit |= mask_isdigit((unsigned char)s[i]);
    }
    return digit;
}

/* d.d.d.d with an optional :port */
static bool mask_ipv4(const char *s, size_t n)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        size_t d0 = i;
        while (i < n && mask_isdigit((unsigned char)s[i]) && i - d0 < 3)
            i++;
        if (i == d0)
            return false;
        if (part < 3) {
            if (i >= n || s[i] != '.')
                return false;
            i++;
        }
    }
    if (i < n && s[i] == ':') {
        size_t p0 = ++i;
        while (i < n && mask_isdigit((unsigned char)s[i]))
            i++;
        if (i == p0)
            return false;
    }
    return i == n;
}

/* 8-4-4-4-12 hex digits */
static bool mask_uuid(const char *s, size_t n)
{
    static const int groups[5] = {8, 4, 4, 4, 12};
    if (n != 36)
        return false;
    size_t i = 0;
    for (int g = 0; g < 5; g++) {
        for (int k = 0; k < groups[g]; k++, i++)
            if (!mask_ishex((unsigned char)s[i]))
                return false;
        if (g < 4 && s[i++] != '-')
            return false;
    }
    return true;
}

static bool mask_path(const char *s, size_t n)
{
    if (n >= 2 && s[0] == '/' && s[1] != '/')
        return true;
    if (n >= 3 && (s[0] == '.' || s[0] == '~') && s[1] == '/')
        return true;
    if (n >= 3 && mask_isalpha((unsigned char)s[0]) && s[1] == ':' && s[2] == '\\')
        return true;
    return false;
}

static bool mask_has(const char *s, size_t n, const char *what)
{
    size_t w = strlen(what);
    for (size_t i = 0; i + w <= n; i++)
        if (!memcmp(s + i, what, w))
            return true;
    return false;
}

/* The narrow kinds: what plain Drain masks. */
static bool mask_narrow(const char *s, size_t n)
{
    return mask_number(s, n) || mask_hex(s, n) || mask_ipv4(s, n) || mask_uuid(s, n) || mask_path(s, n);
}

/* Hex groups joined by ':' (MAC, IPv6): at least 3 groups of 1-4 hex digits,
 * at least one digit. */
static bool mask_hexgroups(const char *s, size_t n)
{
    int groups = 0, run = 0;
    bool digit = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ':') {
            if (run > 4)
                return false;
            groups += run > 0;
            run = 0;
        } else if (mask_ishex(c)) {
            run++;
            digit |= mask_isdigit(c);
        } else {
            return false;
        }
    }
    groups += run > 0 && run <= 4;
    return digit && groups >= 3;
}

static bool mask_hasdigit(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (mask_isdigit((unsigned char)s[i]))
            return true;
    return false;
}

/* The broad kinds: anything with a digit (numbers with units, durations,
 * sizes, ids, dates, versions, IPs with ports, hex), paths, URLs, masked
 * parts, hex-only runs; but a name with one digit glued on (eth0,
 * IPv6, SOCKS5) is a name. */
static bool mask_broad(const char *s, size_t n)
{
    size_t al = 0;
    while (al < n && mask_isalpha((unsigned char)s[al]))
        al++;
    if (al >= 2 && n - al == 1) {
        bool digits = true;
        for (size_t i = al; i < n; i++)
            digits &= mask_isdigit((unsigned char)s[i]);
        if (digits)
            return false;
    }
    if (mask_hasdigit(s, n))
        return true;
    if (mask_path(s, n) || mask_has(s, n, "://") || mask_has(s, n, LOGS_WILD))
        return true;
    return mask_hex(s, n) || mask_uuid(s, n);
}

/* Length of a key before a separator that keeps it: "uid=", "path:",
 * "chdir(", "threshold....", "node-", "core.", "fn@"; 0 if none. *always:
 * the value is a variable whatever it holds (key=value). */
static size_t mask_key(const char *s, size_t n, bool *always)
{
    *always = false;
    const char *eq = memchr(s, '=', n);
    if (eq && eq > s) {
        *always = true;
        return (size_t)(eq - s) + 1;
    }
    size_t k = 0;
    while (k < n && (mask_isalpha((unsigned char)s[k]) || s[k] == '_' || (k > 0 && s[k] == '-' &&
                     k + 1 < n && mask_isalpha((unsigned char)s[k + 1]))))
        k++;
    if (k == 0 || k >= n)
        return 0;
    if (s[k] == '.' && k + 1 < n && s[k + 1] == '.') { /* "threshold.........0" */
        while (k < n && s[k] == '.')
            k++;
        return k;
    }
    if (s[k] == '.') { /* "core.42" keeps "core.", a host name "news.4399.com:80" does not */
        for (size_t j = k + 1; j < n; j++)
            if (!mask_isdigit((unsigned char)s[j]))
                return 0;
        if (k + 1 >= n)
            return 0;
    }
    if (s[k] == ':' || s[k] == '(' || s[k] == '.' || s[k] == '@' || s[k] == '#')
        return k + 1;
    return 0;
}

/* true/false: a flag's value tells templates apart ("expand=true"). */
static bool mask_bool(const char *s, size_t n)
{
    return (n == 4 && (!memcmp(s, "true", 4) || !memcmp(s, "True", 4) || !memcmp(s, "TRUE", 4))) ||
           (n == 5 && (!memcmp(s, "false", 5) || !memcmp(s, "False", 5) || !memcmp(s, "FALSE", 5)));
}

/* A token of punctuation only holding an empty quoted string ("''",
 * "(\"\"),"): an empty value, masked like a quoted one ('<*>'). */
static bool mask_empty_quotes(const char *s, size_t n, size_t *pre, size_t *suf)
{
    for (size_t i = 0; i + 1 < n; i++)
        if ((s[i] == '"' || s[i] == '\'') && s[i + 1] == s[i]) {
            *pre = i + 1;
            *suf = n - i - 1;
            return true;
        }
    return false;
}

bool logs_mask_token(const char *s, size_t len, bool broad, size_t *pre, size_t *suf)
{
    if (broad) { /* fast path: a word with none of these holds no variable */
        bool maybe = false;
        for (size_t i = 0; i < len && !maybe; i++) {
            unsigned char c = (unsigned char)s[i];
            maybe = (c >= '0' && c <= '9') || c == '=' || c == '/' || c == '<' || c == '"' || c == '\'' || c == '\\';
        }
        if (!maybe)
            return false;
    }
    size_t a = 0, b = len;
    while (a < b && mask_open((unsigned char)s[a]))
        a++;
    while (b > a && mask_close((unsigned char)s[b - 1]))
        b--;
    if (a == b)
        return broad && mask_empty_quotes(s, len, pre, suf);
    *pre = a;
    *suf = len - b;
    if (!broad)
        return mask_narrow(s + a, b - a);
    /* a quoted string: 'X3', "View Lock" */
    if (a > 0 && b < len && (s[a - 1] == '"' || s[a - 1] == '\'') && s[b] == s[a - 1])
        return true;
    if (mask_has(s + a, b - a, "://") || mask_path(s + a, b - a) || mask_hexgroups(s + a, b - a) ||
        mask_ipv4(s + a, b - a))
        return true;
    bool always;
    size_t k = mask_key(s + a, b - a, &always);
    if (k > 0 && !always && mask_has(s + a, k, LOGS_WILD))
        k = 0;
    if (k > 0) {
        size_t v = a + k;
        while (v < b && mask_open((unsigned char)s[v]))
            v++;
        if (v >= b) { /* "uid=", "tag=''": an empty value is a value */
            if (!always)
                return false;
            size_t q = a + k;
            while (q + 1 < len && !((s[q] == '"' || s[q] == '\'') && s[q + 1] == s[q]))
                q++;
            *pre = q + 1 < len ? q + 1 : a + k;
            *suf = len - *pre;
            return true;
        }
        if ((always && !mask_bool(s + v, b - v)) || mask_broad(s + v, b - v) || mask_hexgroups(s + v, b - v)) {
            *pre = v;
            return true;
        }
        return false;
    }
    return mask_broad(s + a, b - a);
}

/* ---- extra masks (PCRE2) -------------------------------------------------------- */

struct logs_masks {
    int n;
    pcre2_code **re;
    bool *jit; /* JIT-compiled: pcre2_jit_match, which skips the checks */
    pcre2_match_data *md;
    char *tmp; /* ping-pong buffer */
    size_t tmpcap;
};

int logs_masks_count(const logs_masks *ms) { return ms ? ms->n : 0; }

int logs_masks_add(logs_masks **msp, const char *pattern, char *err, size_t errlen)
{
    int code;
    PCRE2_SIZE at;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0,
                                   &code, &at, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        snprintf(err, errlen, "mask '%s': at offset %zu: %s", pattern, (size_t)at, (const char *)msg);
        return -EINVAL;
    }
    bool jit = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0; /* else the interpreter */
    logs_masks *ms = *msp;
    if (!ms) {
        ms = calloc(1, sizeof *ms);
        if (!ms) {
            pcre2_code_free(re);
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        *msp = ms;
    }
    pcre2_code **nre = realloc(ms->re, (size_t)(ms->n + 1) * sizeof *nre);
    if (!nre) {
        pcre2_code_free(re);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    ms->re = nre;
    bool *nj = realloc(ms->jit, (size_t)(ms->n + 1) * sizeof *nj);
    if (!nj) {
        pcre2_code_free(re);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    ms->jit = nj;
    ms->jit[ms->n] = jit;
    ms->re[ms->n++] = re;
    pcre2_match_data_free(ms->md);
    ms->md = pcre2_match_data_create(4, NULL);
    if (!ms->md) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static int masks_reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 256;
    while (nc < need)
        nc *= 2;
    char *nb = realloc(*buf, nc);
    if (!nb)
        return -ENOMEM;
    *buf = nb;
    *cap = nc;
    return 0;
}

/* One pattern over in -> out; returns the new length or -errno. */
static long masks_one(pcre2_code *re, bool jit, pcre2_match_data *md, const char *in, size_t len, char **out,
                      size_t *cap)
{
    size_t o = 0, pos = 0;
    while (pos <= len) {
        int rc = jit ? pcre2_jit_match(re, (PCRE2_SPTR)in, len, pos, 0, md, NULL)
                     : pcre2_match(re, (PCRE2_SPTR)in, len, pos, 0, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0)
            return -EINVAL;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t s = ov[0], e = ov[1];
        if (masks_reserve(out, cap, o + (s - pos) + LOGS_WILD_LEN + 1) < 0)
            return -ENOMEM;
        memcpy(*out + o, in + pos, s - pos);
        o += s - pos;
        memcpy(*out + o, LOGS_WILD, LOGS_WILD_LEN);
        o += LOGS_WILD_LEN;
        if (e == s) { /* empty match: like Python's re.sub, copy one char and go on */
            if (s >= len)
                break;
            if (masks_reserve(out, cap, o + 2) < 0)
                return -ENOMEM;
            (*out)[o++] = in[s];
            pos = s + 1;
        } else {
            pos = e;
        }
    }
    if (pos < len) {
        if (masks_reserve(out, cap, o + (len - pos) + 1) < 0)
            return -ENOMEM;
        memcpy(*out + o, in + pos, len - pos);
        o += len - pos;
    }
    if (masks_reserve(out, cap, o + 1) < 0)
        return -ENOMEM;
    (*out)[o] = '\0';
    return (long)o;
}

long logs_masks_apply(const logs_masks *cms, const char *in, size_t len, char **buf, size_t *cap)
{
    logs_masks *ms = (logs_masks *)cms; /* scratch buffers only */
    if (!ms || ms->n == 0) {
        if (masks_reserve(buf, cap, len + 1) < 0)
            return -ENOMEM;
        memcpy(*buf, in, len);
        (*buf)[len] = '\0';
        return (long)len;
    }
    /* ping-pong between ms->tmp and *buf so the last result lands in *buf */
    const char *src = in;
    size_t slen = len;
    for (int i = 0; i < ms->n; i++) {
        bool last_in_buf = ((ms->n - 1 - i) % 2) == 0;
        char **dst = last_in_buf ? buf : &ms->tmp;
        size_t *dcap = last_in_buf ? cap : &ms->tmpcap;
        long r = masks_one(ms->re[i], ms->jit[i], ms->md, src, slen, dst, dcap);
        if (r < 0)
            return r;
        src = *dst;
        slen = (size_t)r;
    }
    return (long)slen;
}

void logs_masks_free(logs_masks *ms)
{
    if (!ms)
        return;
    for (int i = 0; i < ms->n; i++)
        pcre2_code_free(ms->re[i]);
    free(ms->re);
    free(ms->jit);
    pcre2_match_data_free(ms->md);
    free(ms->tmp);
    free(ms);
}
