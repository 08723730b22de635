/* rules.c: the parser of the heal rule language (grammar in rules.h).
 *
 * A small scanner that keeps byte offsets (for "file:line:column" messages),
 * a recursive-descent parser that fills a heal_rule, and the checks that make
 * a parsed rule safe to run (ranges, paths, regexes). Nothing is allocated
 * except PCRE2's scratch while a body regex is validated. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "heal/rules.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- scanner --------------------------------------------------------------- */

enum { T_END, T_WORD, T_STR, T_OP, T_COMMA };

typedef struct tok {
    int type;
    size_t off;                        /* offset of the first byte in the rule */
    size_t len;                        /* raw length in the rule */
    char text[HEAL_RULE_LINE_MAX + 1]; /* unescaped text */
} tok;

typedef struct px {
    const char *s;
    size_t pos;
    const char *file;
    int line;
    char *err;
    size_t errlen;
    bool one_action; /* heal_action_parse_text: "action:COL: ..." messages, pid targets allowed */
} px;

static int fail(px *p, size_t off, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(px *p, size_t off, const char *fmt, ...)
{
    if (!p->err || !p->errlen)
        return -EINVAL;
    int w = p->one_action ? snprintf(p->err, p->errlen, "action '%.60s%s', column %zu: ", p->s,
                                     strlen(p->s) > 60 ? "..." : "", off + 1)
                          : snprintf(p->err, p->errlen, "%s:%d:%zu: ", p->file && *p->file ? p->file : "<rule>",
                                     p->line, off + 1);
    if (w >= 0 && (size_t)w < p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + w, p->errlen - (size_t)w, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static bool is_blank(char c) { return c == ' ' || c == '\t'; }
static bool is_opch(char c) { return c == '<' || c == '>' || c == '=' || c == '!'; }

static void skip_blanks(px *p)
{
    while (is_blank(p->s[p->pos]))
        p->pos++;
}

/* Escapes: \" \\ \; ; any other backslash stays as written. */
static bool is_escape(const char *s) { return s[0] == '\\' && (s[1] == '"' || s[1] == '\\' || s[1] == ';'); }

static int scan_string(px *p, tok *t)
{
    size_t i = p->pos + 1, k = 0;
    while (p->s[i] != '"') {
        if (!p->s[i])
            return fail(p, p->pos, "unterminated string: expected a closing '\"'");
        if (is_escape(p->s + i))
            i++;
        t->text[k++] = p->s[i++];
    }
    t->text[k] = 0;
    t->type = T_STR;
    t->off = p->pos;
    t->len = i + 1 - p->pos;
    p->pos = i + 1;
    return 0;
}

static void take(px *p, tok *t, int type, size_t end)
{
    t->type = type;
    t->off = p->pos;
    t->len = end - p->pos;
    memcpy(t->text, p->s + p->pos, t->len);
    t->text[t->len] = 0;
    p->pos = end;
}

/* Starts a token: blanks skipped; handles end of line, strings and commas.
 * Returns 1 when the token is complete. */
static int scan_start(px *p, tok *t, int *rc)
{
    skip_blanks(p);
    *rc = 0;
    const char c = p->s[p->pos];
    if (!c) {
        take(p, t, T_END, p->pos);
        return 1;
    }
    if (c == '"') {
        *rc = scan_string(p, t);
        return 1;
    }
    if (c == ',') {
        take(p, t, T_COMMA, p->pos + 1);
        return 1;
    }
    return 0;
}

/* Keywords, numbers and operators. */
static int next(px *p, tok *t)
{
    int rc;
    if (scan_start(p, t, &rc))
        return rc;
    size_t e = p->pos;
    if (is_opch(p->s[e])) {
        e += 1 + (p->s[e + 1] == '=');
        take(p, t, T_OP, e);
        return 0;
    }
    while (p->s[e] && !is_blank(p->s[e]) && p->s[e] != ',' && p->s[e] != '"' && !is_opch(p->s[e]))
        e++;
    take(p, t, T_WORD, e);
    return 0;
}

/* Values: a string, or a bare word up to a blank (or a comma when asked). */
static int next_arg(px *p, tok *t, bool stop_at_comma)
{
    int rc;
    if (scan_start(p, t, &rc))
        return rc;
    size_t e = p->pos;
    while (p->s[e] && !is_blank(p->s[e]) && p->s[e] != '"' && !(stop_at_comma && p->s[e] == ','))
        e++;
    take(p, t, T_WORD, e);
    return 0;
}

static int peek(px *p, tok *t)
{
    size_t save = p->pos;
    int rc = next(p, t);
    p->pos = save;
    return rc;
}

static bool is_value(const tok *t) { return t->type == T_WORD || t->type == T_STR; }

static bool is_kw(const tok *t, const char *kw) { return t->type == T_WORD && !strcasecmp(t->text, kw); }

/* The offset in the rule of byte k of t's unescaped text. */
static size_t src_off(const px *p, const tok *t, size_t k)
{
    if (t->type != T_STR)
        return t->off + k;
    size_t i = t->off + 1;
    for (size_t j = 0; j < k && p->s[i] && p->s[i] != '"'; j++)
        i += is_escape(p->s + i) ? 2 : 1;
    return i;
}

/* "'restrt'" or "end of line", for messages. */
static const char *shown(const px *p, const tok *t, char *buf, size_t n)
{
    if (t->type == T_END)
        return "end of line";
    int len = (int)(t->len > 40 ? 40 : t->len);
    snprintf(buf, n, "'%.*s%s'", len, p->s + t->off, t->len > 40 ? "..." : "");
    return buf;
}

/* ---- "did you mean" ------------------------------------------------------------ */

/* Optimal string alignment distance, case-insensitive; 99 for long words. */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 31 || lb > 31)
        return 99;
    int d[32][32];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            int cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == tolower((unsigned char)b[j - 1]) && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

/* The candidate closest to word, if close enough to be a typo; NULL-ended list. */
static const char *suggest(const tok *t, const char *const *cands)
{
    if (t->type != T_WORD || !t->text[0])
        return NULL;
    int best = 99, limit = strlen(t->text) <= 4 ? 1 : 2;
    const char *pick = NULL;
    for (; *cands; cands++) {
        int d = edit_distance(t->text, *cands);
        if (d < best) {
            best = d;
            pick = *cands;
        }
    }
    return best > 0 && best <= limit ? pick : NULL;
}

/* "expected WHAT, found 'X' (did you mean 'Y'?)" */
static int expected(px *p, const tok *t, const char *what, const char *const *cands)
{
    char buf[64];
    const char *hint = cands ? suggest(t, cands) : NULL;
    return fail(p, t->off, "expected %s, found %s%s%s%s", what, shown(p, t, buf, sizeof buf),
                hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
}

static int expect_kw(px *p, const char *kw, const char *what)
{
    tok t;
    int rc = next(p, &t);
    if (rc)
        return rc;
    if (is_kw(&t, kw))
        return 0;
    const char *const cands[] = {kw, NULL};
    return expected(p, &t, what, cands);
}

/* ---- numbers, durations, sizes ----------------------------------------------------- */

/* A decimal number ([-]digits[.digits][e[+-]digits]) at the start of s. */
static bool scan_number(const char *s, bool sign, double *v, const char **rest)
{
    const char *q = s;
    if (sign && *q == '-')
        q++;
    if (!isdigit((unsigned char)*q))
        return false;
    while (isdigit((unsigned char)*q))
        q++;
    if (*q == '.' && isdigit((unsigned char)q[1]))
        for (q++; isdigit((unsigned char)*q); q++) {}
    if ((*q == 'e' || *q == 'E') &&
        (isdigit((unsigned char)q[1]) || ((q[1] == '-' || q[1] == '+') && isdigit((unsigned char)q[2]))))
        for (q += 2; isdigit((unsigned char)*q); q++) {}
    char buf[64];
    if ((size_t)(q - s) >= sizeof buf)
        return false;
    memcpy(buf, s, (size_t)(q - s));
    buf[q - s] = 0;
    *v = strtod(buf, NULL);
    if (*v == 0)
        *v = 0; /* no -0: it would print as 0 */
    *rest = q;
    return isfinite(*v);
}

static int get_int(px *p, const tok *t, long lo, long hi, const char *what, long *out)
{
    char *end;
    errno = 0;
    long v = t->type == T_WORD ? strtol(t->text, &end, 10) : 0;
    if (t->type != T_WORD || !isdigit((unsigned char)t->text[t->text[0] == '-']) || *end || errno)
    {
        char buf[64];
        return fail(p, t->off, "expected %s %s (an integer from %ld to %ld), found %s",
                    strchr("aeiou", what[0]) ? "an" : "a", what, lo, hi, shown(p, t, buf, sizeof buf));
    }
    if (v < lo || v > hi)
        return fail(p, t->off, "%s %ld is out of range (expected %ld to %ld)", what, v, lo, hi);
    *out = v;
    return 0;
}

static bool has_unit(const tok *t) { return t->len && isalpha((unsigned char)t->text[strlen(t->text) - 1]); }

/* A duration with a unit, in [lo, hi] ms. */
static int get_duration(px *p, const tok *t, const char *what, int64_t lo, int64_t hi, int64_t *ms)
{
    char buf[64], a[32], b[32];
    if (t->type != T_WORD || !has_unit(t) || core_parse_duration(t->text, ms))
        return fail(p, t->off, "expected a duration (e.g. 500ms, 30s, 5m, 2h, 7d) %s, found %s", what,
                    shown(p, t, buf, sizeof buf));
    if (*ms < lo || *ms > hi) {
        heal_rule_format_duration(lo, a, sizeof a);
        heal_rule_format_duration(hi, b, sizeof b);
        return fail(p, t->off, "duration %s %s is out of range (expected %s to %s)", t->text, what, a, b);
    }
    return 0;
}

/* A size with a unit, at least lo bytes. */
static int get_size(px *p, const tok *t, const char *what, uint64_t lo, uint64_t *bytes)
{
    char buf[64], a[32];
    if (t->type != T_WORD || !has_unit(t) || core_parse_size(t->text, bytes))
        return fail(p, t->off, "expected a size (e.g. 512MB, 64KiB, 2GB) %s, found %s", what,
                    shown(p, t, buf, sizeof buf));
    if (*bytes < lo) {
        heal_rule_format_size(lo, a, sizeof a);
        return fail(p, t->off, "size %s %s is below %s", t->text, what, a);
    }
    return 0;
}

static int get_percent(px *p, const tok *t, const char *what, double lo, double hi, double *v)
{
    char buf[64];
    const char *rest;
    if (t->type != T_WORD || !scan_number(t->text, false, v, &rest) || strcmp(rest, "%"))
        return fail(p, t->off, "expected a percentage (e.g. 90%%) %s, found %s", what,
                    shown(p, t, buf, sizeof buf));
    if (*v < lo || *v > hi)
        return fail(p, t->off, "percentage %s %s is out of range (expected %g%% to %g%%)", t->text, what, lo, hi);
    return 0;
}

static int get_cmp(px *p, const char *after, heal_cmp *op)
{
    tok t;
    int rc = next(p, &t);
    if (rc)
        return rc;
    for (int i = 0; i < HEAL_CMP_COUNT; i++) {
        if (t.type == T_OP && !strcmp(t.text, heal_cmp_name((heal_cmp)i))) {
            *op = (heal_cmp)i;
            return 0;
        }
    }
    char what[96];
    snprintf(what, sizeof what, "a comparison (>, >=, <, <=, ==, !=) after %s", after);
    return expected(p, &t, what, NULL);
}

/* Copies a value into a fixed field, or names the limit. */
static int store(px *p, const tok *t, char *dst, size_t n, const char *what)
{
    if (core_sncpy(dst, n, t->text))
        return fail(p, t->off, "%s is longer than %zu characters", what, n - 1);
    return 0;
}

static int get_abs_path(px *p, tok *t, const char *after, bool stop_at_comma, char *dst, size_t n)
{
    int rc = next_arg(p, t, stop_at_comma);
    if (rc)
        return rc;
    if (!is_value(t) || t->text[0] != '/') {
        char what[96];
        snprintf(what, sizeof what, "an absolute path after '%s'", after);
        return expected(p, t, what, NULL);
    }
    return store(p, t, dst, n, "the path");
}

/* ---- probes ------------------------------------------------------------------------- */

enum { O_STATUS = 1, O_BODY = 2, O_LATENCY = 4, O_TIMEOUT = 8, O_EVERY = 16, O_CHECK = 32 };

static const unsigned probe_opts[HEAL_PROBE_COUNT] = {
    [HEAL_PROBE_HTTP] = O_STATUS | O_BODY | O_LATENCY | O_TIMEOUT | O_EVERY,
    [HEAL_PROBE_HTTPS] = O_STATUS | O_BODY | O_LATENCY | O_TIMEOUT | O_EVERY,
    [HEAL_PROBE_TCP] = O_LATENCY | O_TIMEOUT | O_EVERY,
    [HEAL_PROBE_PROCESS] = O_EVERY,
    [HEAL_PROBE_EXEC] = O_TIMEOUT | O_EVERY,
    [HEAL_PROBE_FILE] = O_CHECK | O_EVERY,
};

static const struct { const char *word; unsigned bit; } option_words[] = {
    {"status", O_STATUS}, {"body", O_BODY}, {"latency", O_LATENCY}, {"timeout", O_TIMEOUT},
    {"every", O_EVERY}, {"exists", O_CHECK}, {"age", O_CHECK}, {"size", O_CHECK},
    {"checksum", O_CHECK}, {"changed", O_CHECK},
};

static unsigned option_bit(const tok *t)
{
    for (size_t i = 0; i < sizeof option_words / sizeof option_words[0]; i++)
        if (is_kw(t, option_words[i].word))
            return option_words[i].bit;
    return 0;
}

static bool valid_host_char(char c) { return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_'; }

/* host[:port] or [v6][:port] starting at text[i]; returns the index after it. */
static int parse_authority(px *p, const tok *t, size_t i, heal_probe_spec *ps, size_t *end)
{
    const char *u = t->text;
    size_t h0 = i, h1;
    if (u[i] == '[') {
        for (h0 = ++i; isxdigit((unsigned char)u[i]) || u[i] == ':' || u[i] == '.'; i++) {}
        if (u[i] != ']')
            return fail(p, src_off(p, t, i), "expected ']' to close the IPv6 address in the URL");
        h1 = i++;
    } else {
        while (valid_host_char(u[i]))
            i++;
        h1 = i;
    }
    if (u[i] == '@')
        return fail(p, src_off(p, t, i), "user names and passwords in probe URLs are not supported");
    if (h1 == h0)
        return fail(p, src_off(p, t, i), "expected a host name or address in the URL");
    if (h1 - h0 >= sizeof ps->host)
        return fail(p, src_off(p, t, h0), "host name is longer than %zu characters", sizeof ps->host - 1);
    memcpy(ps->host, u + h0, h1 - h0);
    ps->host[h1 - h0] = 0;
    if (u[i] == ':') {
        size_t p0 = ++i;
        long port = 0;
        while (isdigit((unsigned char)u[i]) && port <= 65535)
            port = port * 10 + (u[i++] - '0');
        if (i == p0 || port < 1 || port > 65535 || isdigit((unsigned char)u[i]) ||
            (u[i] && u[i] != '/' && u[i] != '?'))
            return fail(p, src_off(p, t, p0), "bad port in URL (expected a number from 1 to 65535)");
        ps->port = (int)port;
    }
    *end = i;
    return 0;
}

static int parse_url(px *p, const tok *t, heal_probe_spec *ps)
{
    const char *u = t->text, *sep = strstr(u, "://");
    size_t slen = (size_t)(sep - u);
    if (slen == 4 && !strncasecmp(u, "http", 4))
        ps->kind = HEAL_PROBE_HTTP, ps->port = 80;
    else if (slen == 5 && !strncasecmp(u, "https", 5))
        ps->kind = HEAL_PROBE_HTTPS, ps->port = 443;
    else if (slen == 3 && !strncasecmp(u, "tcp", 3))
        ps->kind = HEAL_PROBE_TCP;
    else
        return fail(p, t->off, "unsupported URL scheme '%.*s' (expected http, https or tcp)",
                    (int)(slen > 20 ? 20 : slen), u);
    for (size_t i = 0; u[i]; i++)
        if (is_blank(u[i]) || u[i] == '"')
            return fail(p, src_off(p, t, i), "blank or '\"' in the URL");
    size_t end = 0;
    int rc = parse_authority(p, t, slen + 3, ps, &end);
    if (rc)
        return rc;
    if (ps->kind == HEAL_PROBE_TCP && !ps->port)
        return fail(p, src_off(p, t, end), "expected ':PORT' after the host of a tcp:// URL");
    if (ps->kind == HEAL_PROBE_TCP && u[end])
        return fail(p, src_off(p, t, end), "a tcp:// URL ends after the port");
    if (u[end] && u[end] != '/' && u[end] != '?')
        return fail(p, src_off(p, t, end), "expected '/', '?' or ':PORT' after the host in the URL");
    if ((rc = store(p, t, ps->url, sizeof ps->url, "the URL")))
        return rc;
    for (size_t i = 0; i < slen; i++) /* the scheme in lower case, for the probe engine */
        ps->url[i] = (char)tolower((unsigned char)ps->url[i]);
    return 0;
}

static int opt_status(px *p, heal_probe_spec *ps)
{
    tok t;
    int rc = next(p, &t);
    if (rc)
        return rc;
    const char *s = t.text;
    char *end;
    if (t.type == T_WORD && s[0] >= '1' && s[0] <= '5' && !strcasecmp(s + 1, "xx")) {
        ps->status_min = (s[0] - '0') * 100;
        ps->status_max = ps->status_min + 99;
        return 0;
    }
    long a = t.type == T_WORD && isdigit((unsigned char)s[0]) ? strtol(s, &end, 10) : 0, b = a;
    if (a && *end == '-' && isdigit((unsigned char)end[1]))
        b = strtol(end + 1, &end, 10);
    if (!a || *end || a < 100 || b > 599 || a > b)
        return expected(p, &t, "an HTTP status after 'status' (a class like 2xx, a code like 200 "
                               "or a range like 200-399)", NULL);
    ps->status_min = (int)a;
    ps->status_max = (int)b;
    return 0;
}

/* Validates the regex with PCRE2 (the probe engine compiles its own copy). */
static int opt_body(px *p, heal_probe_spec *ps)
{
    tok t;
    int rc = next_arg(p, &t, false);
    if (rc)
        return rc;
    if (!is_value(&t) || !t.text[0])
        return expected(p, &t, "a regular expression after 'body'", NULL);
    int code;
    PCRE2_SIZE at;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)t.text, PCRE2_ZERO_TERMINATED, 0, &code, &at, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return fail(p, src_off(p, &t, at), "bad regular expression after 'body': %s", (const char *)msg);
    }
    pcre2_code_free(re);
    return store(p, &t, ps->body, sizeof ps->body, "the body pattern");
}

static int opt_latency(px *p, heal_probe_spec *ps)
{
    tok t;
    int rc = next(p, &t);
    if (rc)
        return rc;
    if (t.type != T_OP || strcmp(t.text, "<"))
        return expected(p, &t, "'<' after 'latency'", NULL);
    if ((rc = next(p, &t)))
        return rc;
    return get_duration(p, &t, "after 'latency <'", 1, 3600000, &ps->max_latency_ms);
}

static int opt_file_check(px *p, const tok *w, heal_probe_spec *ps)
{
    tok t;
    int rc = 0;
    if (is_kw(w, "exists"))
        ps->file_check = HEAL_FILE_EXISTS;
    else if (is_kw(w, "changed"))
        ps->file_check = HEAL_FILE_CHANGED;
    else if (is_kw(w, "age")) {
        ps->file_check = HEAL_FILE_AGE;
        if (!(rc = get_cmp(p, "'age'", &ps->file_cmp)) && !(rc = next(p, &t)))
            rc = get_duration(p, &t, "after 'age'", 0, INT64_C(3153600000000), &ps->file_age_ms);
    } else if (is_kw(w, "size")) {
        ps->file_check = HEAL_FILE_SIZE;
        if (!(rc = get_cmp(p, "'size'", &ps->file_cmp)) && !(rc = next(p, &t)))
            rc = get_size(p, &t, "after 'size'", 0, &ps->file_size);
    } else {
        ps->file_check = HEAL_FILE_CHECKSUM;
        if (!(rc = expect_kw(p, "sha256", "'sha256' after 'checksum' (the supported hash)")) &&
            !(rc = next(p, &t))) {
            if (t.type != T_WORD || strlen(t.text) != 64 || strspn(t.text, "0123456789abcdefABCDEF") != 64)
                return expected(p, &t, "64 hex digits after 'checksum sha256'", NULL);
            for (int i = 0; i < 65; i++)
                ps->sha256[i] = (char)tolower((unsigned char)t.text[i]);
        }
    }
    return rc;
}

/* One option word w (already consumed) of a probe. */
static int probe_option(px *p, const tok *w, heal_probe_spec *ps, size_t *timeout_off)
{
    tok t;
    int rc;
    if (is_kw(w, "status"))
        return opt_status(p, ps);
    if (is_kw(w, "body"))
        return opt_body(p, ps);
    if (is_kw(w, "latency"))
        return opt_latency(p, ps);
    if (is_kw(w, "timeout") || is_kw(w, "every")) {
        if ((rc = next(p, &t)))
            return rc;
        if (is_kw(w, "every"))
            return get_duration(p, &t, "after 'every'", HEAL_PROBE_INTERVAL_MIN_MS, 86400000, &ps->interval_ms);
        *timeout_off = t.off;
        return get_duration(p, &t, "after 'timeout'", 1, 3600000, &ps->timeout_ms);
    }
    return opt_file_check(p, w, ps);
}

/* Cross-checks of the options, once all are read. */
static int probe_check(px *p, const heal_probe_spec *ps, size_t timeout_off, size_t latency_off)
{
    char a[32], b[32];
    if (ps->timeout_ms && ps->interval_ms && ps->timeout_ms > ps->interval_ms) {
        heal_rule_format_duration(ps->timeout_ms, a, sizeof a);
        heal_rule_format_duration(ps->interval_ms, b, sizeof b);
        return fail(p, timeout_off, "timeout %s is longer than the probe interval %s ('every')", a, b);
    }
    int64_t timeout = ps->timeout_ms ? ps->timeout_ms : HEAL_PROBE_TIMEOUT_MS;
    if (!ps->timeout_ms && ps->interval_ms && ps->interval_ms < timeout)
        timeout = ps->interval_ms;
    if (ps->max_latency_ms && ps->max_latency_ms >= timeout) {
        heal_rule_format_duration(ps->max_latency_ms, a, sizeof a);
        heal_rule_format_duration(timeout, b, sizeof b);
        return fail(p, latency_off, "latency limit %s is not below the probe timeout %s", a, b);
    }
    return 0;
}

static int probe_options(px *p, heal_probe_spec *ps)
{
    unsigned seen = 0;
    size_t timeout_off = 0, latency_off = 0;
    for (;;) {
        tok t;
        int rc = peek(p, &t);
        unsigned bit = rc ? 0 : option_bit(&t);
        if (rc || !bit)
            return rc ? rc : probe_check(p, ps, timeout_off, latency_off);
        if (!(probe_opts[ps->kind] & bit))
            return fail(p, t.off, "'%s' does not apply to a %s probe", t.text, heal_probe_kind_name(ps->kind));
        if (seen & bit)
            return fail(p, t.off, bit == O_CHECK ? "only one file check per rule, found another: '%s'"
                                                 : "'%s' is given twice", t.text);
        seen |= bit;
        next(p, &t);
        if (bit == O_LATENCY)
            latency_off = t.off;
        if ((rc = probe_option(p, &t, ps, &timeout_off)))
            return rc;
    }
}

static int probe_program(px *p, heal_probe_spec *ps)
{
    tok t;
    int rc = next_arg(p, &t, false);
    if (rc)
        return rc;
    if (!is_value(&t) || !t.text[strspn(t.text, " \t")])
        return expected(p, &t, "a program to run after 'exec' (e.g. \"/usr/bin/check --quick\")", NULL);
    return store(p, &t, ps->program, sizeof ps->program, "the program");
}

static int parse_probe(px *p, heal_condition *c)
{
    static const char *const kinds[] = {"process", "exec", "file", NULL};
    heal_probe_spec *ps = &c->probe;
    tok t;
    int rc = next_arg(p, &t, false);
    if (rc)
        return rc;
    c->kind = HEAL_COND_PROBE_FAILED;
    ps->status_min = 200;
    ps->status_max = 399;
    if (is_value(&t) && strstr(t.text, "://"))
        rc = parse_url(p, &t, ps);
    else if (is_kw(&t, "process"))
        ps->kind = HEAL_PROBE_PROCESS;
    else if (is_kw(&t, "exec")) {
        ps->kind = HEAL_PROBE_EXEC;
        rc = probe_program(p, ps);
    } else if (is_kw(&t, "file")) {
        ps->kind = HEAL_PROBE_FILE;
        rc = get_abs_path(p, &t, "file", false, ps->path, sizeof ps->path);
    } else
        return expected(p, &t, "a probe after 'failed' (an http://, https:// or tcp:// URL, 'process', "
                               "'exec' or 'file')", kinds);
    return rc ? rc : probe_options(p, ps);
}

/* ---- resources and restart counts ---------------------------------------------------- */

static bool label_key_char(char c, bool first)
{
    return isalpha((unsigned char)c) || c == '_' || (!first && isdigit((unsigned char)c));
}

typedef struct label { char key[64]; char val[128]; } label;

/* A "value" with \\ \" \n escapes at u[*i] (on the quote). */
static int label_value(px *p, const tok *t, size_t *i, char *out, size_t n)
{
    const char *u = t->text;
    size_t k = 0, st = *i;
    if (u[*i] != '"')
        return fail(p, src_off(p, t, *i), "expected '\"' to start a label value");
    for ((*i)++; u[*i] != '"'; (*i)++) {
        if (!u[*i])
            return fail(p, src_off(p, t, st), "unterminated label value: expected a closing '\"'");
        char c = u[*i];
        if (c == '\\' && u[*i + 1]) {
            c = u[++*i];
            c = c == 'n' ? '\n' : c;
        }
        if (k + 1 >= n)
            return fail(p, src_off(p, t, st), "label value is longer than %zu characters", n - 1);
        out[k++] = c;
    }
    out[k] = 0;
    (*i)++;
    return 0;
}

static int label_pair(px *p, const tok *t, size_t *i, label *l)
{
    const char *u = t->text;
    size_t k0 = *i;
    while (label_key_char(u[*i], *i == k0))
        (*i)++;
    if (*i == k0 || *i - k0 >= sizeof l->key)
        return fail(p, src_off(p, t, k0), "expected a label name (letters, digits, '_') in the metric's {labels}");
    memcpy(l->key, u + k0, *i - k0);
    l->key[*i - k0] = 0;
    while (is_blank(u[*i]))
        (*i)++;
    if (u[*i] != '=')
        return fail(p, src_off(p, t, *i), "expected '=' after the label name '%s'", l->key);
    for ((*i)++; is_blank(u[*i]); (*i)++) {}
    return label_value(p, t, i, l->val, sizeof l->val);
}

static int label_cmp(const void *a, const void *b) { return strcmp(((const label *)a)->key, ((const label *)b)->key); }

/* Canonical text (as memory.h and the sensors write it): sorted, escaped. */
static int labels_canonical(px *p, const tok *t, label *ls, int n, char *out, size_t cap)
{
    qsort(ls, (size_t)n, sizeof *ls, label_cmp);
    size_t pos = 0;
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        if (i && !strcmp(ls[i].key, ls[i - 1].key))
            return fail(p, t->off, "label '%s' is given twice in the metric", ls[i].key);
        pos += (size_t)snprintf(out + pos, pos < cap ? cap - pos : 0, "%s%s=\"", i ? "," : "", ls[i].key);
        for (const char *v = ls[i].val; *v && pos < cap; v++) {
            const char *esc = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;
            pos += (size_t)snprintf(out + pos, cap - pos, esc ? "%s" : "%.1s", esc ? esc : v);
        }
        pos += (size_t)snprintf(out + pos, pos < cap ? cap - pos : 0, "\"");
    }
    if (pos >= cap)
        return fail(p, t->off, "the metric's labels are longer than %zu characters", cap - 1);
    return 0;
}

static int parse_labels(px *p, const tok *t, size_t i, heal_resource *r)
{
    const char *u = t->text;
    label ls[8];
    int n = 0;
    for (i++; is_blank(u[i]); i++) {}
    while (u[i] != '}') {
        if (n == 8)
            return fail(p, src_off(p, t, i), "a metric has at most 8 labels");
        int rc = label_pair(p, t, &i, &ls[n++]);
        if (rc)
            return rc;
        for (; is_blank(u[i]); i++) {}
        if (u[i] == ',')
            for (i++; is_blank(u[i]); i++) {}
        else if (u[i] != '}')
            return fail(p, src_off(p, t, i), "expected ',' or '}' after a label");
    }
    if (u[i + 1])
        return fail(p, src_off(p, t, i + 1), "unexpected text after the metric's labels");
    return labels_canonical(p, t, ls, n, r->labels, sizeof r->labels);
}

/* A bare metric runs to a blank outside {"..."} (or to a ')' inside
 * anomalous(...)); returns its end. */
static size_t metric_end(const char *s, size_t i, bool paren)
{
    bool quoted = false;
    int depth = 0;
    for (; s[i]; i++) {
        if (quoted && s[i] == '\\' && s[i + 1])
            i++;
        else if (s[i] == '"' && depth)
            quoted = !quoted;
        else if (!quoted && s[i] == '{')
            depth++;
        else if (!quoted && s[i] == '}')
            depth--;
        else if (!quoted && !depth && (is_blank(s[i]) || is_opch(s[i]) || (paren && s[i] == ')')))
            break;
    }
    return i;
}

/* METRIC after "metric", or inside "anomalous(...)" (anom: the name may
 * hold '*' and '?', and ends at a ')'). */
static int parse_metric(px *p, heal_resource *r, bool anom)
{
    tok t;
    skip_blanks(p);
    int rc = 0;
    const char *what = anom ? "a metric name after 'anomalous(' (e.g. memory.used_bytes)"
                            : "a metric name after 'metric' (e.g. load.load1)";
    if (p->s[p->pos] == '"')
        rc = scan_string(p, &t);
    else
        take(p, &t, p->s[p->pos] ? T_WORD : T_END, metric_end(p->s, p->pos, anom));
    if (rc)
        return rc;
    if (anom && t.type == T_WORD && !t.len) { /* "anomalous()": name what stands there */
        tok u;
        if ((rc = peek(p, &u)))
            return rc;
        return expected(p, &u, what, NULL);
    }
    const char *u = t.text;
    size_t i = 0;
    while (label_key_char(u[i], i == 0) || (i && (u[i] == '.' || u[i] == ':' || u[i] == '-')) ||
           (anom && (u[i] == '*' || u[i] == '?')))
        i++;
    if (t.type == T_WORD && (is_kw(&t, "then") || is_kw(&t, "for")))
        return expected(p, &t, what, NULL);
    if (!i || (u[i] && u[i] != '{'))
        return i ? fail(p, src_off(p, &t, i), "bad character '%c' in the metric name", u[i])
                 : expected(p, &t, what, NULL);
    if (i >= sizeof r->metric)
        return fail(p, t.off, "metric name is longer than %zu characters", sizeof r->metric - 1);
    memcpy(r->metric, u, i);
    r->metric[i] = 0;
    return u[i] == '{' ? parse_labels(p, &t, i, r) : 0;
}

/* A number with an optional size unit (metric thresholds); a '%' is allowed
 * and changes nothing. */
static int get_metric_value(px *p, const tok *t, double *v)
{
    const char *rest;
    if (t->type != T_WORD || !scan_number(t->text, true, v, &rest))
        return expected(p, t, "a number after the comparison", NULL);
    if (!*rest || !strcmp(rest, "%"))
        return 0;
    char unit[40];
    uint64_t mult;
    if (!isalpha((unsigned char)*rest) || snprintf(unit, sizeof unit, "1%s", rest) >= (int)sizeof unit ||
        core_parse_size(unit, &mult))
        return fail(p, t->off + (size_t)(rest - t->text),
                    "expected a size unit (B, KB, MB, GB, TB) or nothing after the number, found '%s'", rest);
    *v *= (double)mult;
    if (!isfinite(*v))
        return fail(p, t->off, "number %s is too large", t->text);
    return 0;
}

static const struct { const char *name; heal_resource_kind kind; } resources[] = {
    {"cpu", HEAL_RES_CPU}, {"memory", HEAL_RES_MEMORY}, {"threads", HEAL_RES_THREADS},
    {"fds", HEAL_RES_FDS}, {"space", HEAL_RES_SPACE}, {"inodes", HEAL_RES_INODES},
    {"metric", HEAL_RES_METRIC},
};

static int resource_value(px *p, const tok *t, heal_resource *r)
{
    char what[48];
    long n;
    uint64_t b;
    int rc;
    snprintf(what, sizeof what, "for '%s'", heal_resource_name(r->kind));
    switch (r->kind) {
    case HEAL_RES_CPU: return get_percent(p, t, what, 0, 100000, &r->threshold);
    case HEAL_RES_SPACE:
    case HEAL_RES_INODES: return get_percent(p, t, what, 0, 100, &r->threshold);
    case HEAL_RES_MEMORY:
        if ((rc = get_size(p, t, what, 0, &b)))
            return rc;
        r->threshold = (double)b;
        return 0;
    case HEAL_RES_THREADS:
    case HEAL_RES_FDS:
        snprintf(what, sizeof what, "count for '%s'", heal_resource_name(r->kind));
        if ((rc = get_int(p, t, 0, 1000000000, what, &n)))
            return rc;
        r->threshold = (double)n;
        return 0;
    default: return get_metric_value(p, t, &r->threshold);
    }
}

static int parse_resource(px *p, heal_resource_kind kind, heal_condition *c)
{
    heal_resource *r = &c->res;
    tok t;
    int rc = 0;
    char after[48];
    c->kind = HEAL_COND_RESOURCE;
    r->kind = kind;
    if (r->kind == HEAL_RES_SPACE || r->kind == HEAL_RES_INODES)
        rc = get_abs_path(p, &t, heal_resource_name(r->kind), false, r->path, sizeof r->path);
    else if (r->kind == HEAL_RES_METRIC)
        rc = parse_metric(p, r, false);
    if (r->kind == HEAL_RES_SPACE || r->kind == HEAL_RES_INODES)
        snprintf(after, sizeof after, "the path");
    else if (r->kind == HEAL_RES_METRIC)
        snprintf(after, sizeof after, "the metric");
    else
        snprintf(after, sizeof after, "'%s'", heal_resource_name(r->kind));
    if (rc || (rc = get_cmp(p, after, &r->op)) || (rc = next(p, &t)))
        return rc;
    return resource_value(p, &t, r);
}

static int parse_restarts(px *p, const tok *w, heal_condition *c)
{
    long n;
    tok t;
    int rc = get_int(p, w, 1, 1000, "restart count", &n);
    if (rc || (rc = next(p, &t)))
        return rc;
    if (!is_kw(&t, "restarts") && !is_kw(&t, "restart")) {
        static const char *const cands[] = {"restarts", NULL};
        return expected(p, &t, "'restarts' after the count", cands);
    }
    if ((rc = expect_kw(p, "within", "'within' after 'restarts'")) || (rc = next(p, &t)))
        return rc;
    c->kind = HEAL_COND_RESTARTS;
    c->restarts = (int)n;
    return get_duration(p, &t, "after 'within'", 1000, 7 * 86400000LL, &c->within_ms);
}

/* "anomalous" "(" METRIC ")", p just past the keyword. */
static int parse_anomalous(px *p, heal_condition *c)
{
    tok t;
    int rc;
    skip_blanks(p);
    if (p->s[p->pos] != '(') {
        if ((rc = peek(p, &t)))
            return rc;
        return expected(p, &t, "'(' after 'anomalous' (e.g. anomalous(memory.used_bytes))", NULL);
    }
    p->pos++;
    c->kind = HEAL_COND_ANOMALOUS;
    if ((rc = parse_metric(p, &c->res, true)))
        return rc;
    skip_blanks(p);
    if (p->s[p->pos] != ')') {
        if ((rc = peek(p, &t)))
            return rc;
        return expected(p, &t, "')' after the metric of 'anomalous('", NULL);
    }
    p->pos++;
    return 0;
}

/* A bare dotted series name where a condition starts ("gpu.temperature > 85",
 * "gpu.temperature{gpu="0"} > 85") is an implied "metric": a NAME holding a
 * '.', ended by a blank, a comparison, '{' or the end. No condition word
 * holds a '.', and a number or a URL does not end that way, so nothing else
 * reads as one. */
static bool implied_metric(const char *s)
{
    size_t i = 0;
    bool dot = false;
    while (label_key_char(s[i], i == 0) || (i && (s[i] == '.' || s[i] == ':' || s[i] == '-')))
        dot |= s[i++] == '.';
    return dot && (!s[i] || is_blank(s[i]) || is_opch(s[i]) || s[i] == '{');
}

/* The condition table: add a kind here. */
static int parse_condition(px *p, heal_condition *c)
{
    static const char *const words[] = {"failed", "cpu", "memory", "threads", "fds", "space",
                                        "inodes", "metric", "anomalous", NULL};
    tok t;
    int rc = next(p, &t);
    if (rc)
        return rc;
    if (is_kw(&t, "failed"))
        return parse_probe(p, c);
    for (size_t i = 0; i < sizeof resources / sizeof resources[0]; i++)
        if (is_kw(&t, resources[i].name))
            return parse_resource(p, resources[i].kind, c);
    if (t.type == T_WORD && isdigit((unsigned char)t.text[0]))
        return parse_restarts(p, &t, c);
    if (t.type == T_WORD && !strncasecmp(t.text, "anomalous", 9) && (!t.text[9] || t.text[9] == '(')) {
        p->pos = t.off + 9;
        return parse_anomalous(p, c);
    }
    if (t.type == T_WORD && implied_metric(p->s + t.off)) {
        p->pos = t.off; /* the name again, with its {labels} */
        return parse_resource(p, HEAL_RES_METRIC, c);
    }
    return expected(p, &t, "a condition after 'if' ('failed', 'cpu', 'memory', 'threads', 'fds', "
                           "'space', 'inodes', 'metric', 'anomalous(METRIC)', 'N restarts within "
                           "DURATION' or a dotted series name such as gpu.temperature)", words);
}

static int parse_for(px *p, heal_rule *r)
{
    tok t, u;
    long n;
    int rc = next(p, &t);
    if (rc || (rc = peek(p, &u)))
        return rc;
    if (t.type == T_WORD && t.text[0] && strspn(t.text, "0123456789") == strlen(t.text)) {
        if (!is_kw(&u, "checks") && !is_kw(&u, "check")) {
            static const char *const cands[] = {"checks", NULL};
            return expected(p, &u, "'checks' after the count (or a unit: 'for 30s')", cands);
        }
        next(p, &u);
        rc = get_int(p, &t, 1, HEAL_FOR_CHECKS_MAX, "check count", &n);
        r->for_checks = (int)n;
        return rc;
    }
    return get_duration(p, &t, "after 'for'", 1, 7 * 86400000LL, &r->for_ms);
}

/* ---- actions -------------------------------------------------------------------------- */

static int act_signal(px *p, heal_action *a)
{
    static const char *const common[] = {"HUP", "INT", "QUIT", "KILL", "USR1", "USR2", "TERM",
                                         "CONT", "STOP", "WINCH", "ALRM", NULL};
    tok t;
    int rc = next(p, &t);
    if (rc)
        return rc;
    const char *name = t.text + (strncasecmp(t.text, "SIG", 3) ? 0 : 3);
    for (int s = 1; t.type == T_WORD && s < 32; s++) {
        const char *ab = sigabbrev_np(s);
        if (ab && !strcasecmp(ab, name)) {
            a->signum = s;
            return 0;
        }
    }
    if (t.type == T_WORD) {
        tok bare = t;
        memmove(bare.text, name, strlen(name) + 1);
        const char *hint = suggest(&bare, common);
        return fail(p, t.off, "unknown signal '%s' (%s%s%s)", t.text,
                    hint ? "did you mean '" : "expected e.g. HUP, TERM, USR1", hint ? hint : "", hint ? "'?" : "");
    }
    return expected(p, &t, "a signal name after 'signal' (e.g. HUP, TERM, USR1)", NULL);
}

static int act_limit(px *p, heal_action *a)
{
    static const char *const what[] = {"memory", "cpu", NULL};
    tok t;
    int rc = next(p, &t);
    if (rc)
        return rc;
    if (!is_kw(&t, "memory") && !is_kw(&t, "cpu"))
        return expected(p, &t, "'memory' or 'cpu' after 'limit'", what);
    bool mem = is_kw(&t, "memory");
    a->kind = mem ? HEAL_ACT_LIMIT_MEMORY : HEAL_ACT_LIMIT_CPU;
    if ((rc = next(p, &t)))
        return rc;
    if (mem)
        return get_size(p, &t, "for 'limit memory'", 1 << 20, &a->bytes);
    return get_percent(p, &t, "for 'limit cpu'", 1, 100000, &a->cpu_percent);
}

static int sysctl_key(px *p, heal_action *a)
{
    skip_blanks(p);
    size_t e = p->pos;
    while (p->s[e] && !is_blank(p->s[e]) && p->s[e] != '=' && p->s[e] != ',' && p->s[e] != '"')
        e++;
    tok t;
    take(p, &t, e > p->pos ? T_WORD : T_END, e);
    if (t.type == T_END)
        return expected(p, &t, "a sysctl key after 'sysctl' (e.g. vm.swappiness)", NULL);
    for (size_t i = 0; t.text[i]; i++) {
        char c = t.text[i];
        if (c == '/')
            return fail(p, t.off + i, "sysctl keys use '.', not '/' (e.g. vm.swappiness)");
        if (c == '.' && (i == 0 || t.text[i + 1] == '.' || !t.text[i + 1]))
            return fail(p, t.off + i, "empty part in sysctl key '%s' (no leading, trailing or double '.')", t.text);
        if (!isalnum((unsigned char)c) && c != '_' && c != '-' && c != '.')
            return fail(p, t.off + i, "bad character '%c' in sysctl key (letters, digits, '_', '-', '.')", c);
    }
    return store(p, &t, a->key, sizeof a->key, "the sysctl key");
}

static int act_sysctl(px *p, heal_action *a)
{
    tok t;
    int rc = sysctl_key(p, a);
    if (rc || (rc = next(p, &t)))
        return rc;
    if (t.type != T_OP || strcmp(t.text, "="))
        return expected(p, &t, "'=' after the sysctl key", NULL);
    if ((rc = next_arg(p, &t, true)))
        return rc;
    if (!is_value(&t) || !t.text[0])
        return expected(p, &t, "a value after 'sysctl KEY ='", NULL);
    return store(p, &t, a->value, sizeof a->value, "the sysctl value");
}

/* Normalises an absolute path ("//a/./b/" is refused for "." and ".."). */
static int clean_path(px *p, const tok *t, char *out, size_t n)
{
    static const char *const system[] = {"/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32",
                                         "/lib64", "/proc", "/root", "/run", "/sbin", "/sys", "/usr",
                                         "/var", NULL};
    const char *s = t->text;
    size_t k = 0;
    for (size_t i = 0; s[i];) {
        while (s[i] == '/')
            i++;
        size_t len = strcspn(s + i, "/");
        if ((len == 1 && s[i] == '.') || (len == 2 && s[i] == '.' && s[i + 1] == '.'))
            return fail(p, src_off(p, t, i), "'.' and '..' are not allowed in the path to clean");
        if (len && k + len + 1 < n) {
            out[k++] = '/';
            memcpy(out + k, s + i, len);
            k += len;
        } else if (len)
            return fail(p, t->off, "the path is longer than %zu characters", n - 1);
        i += len;
    }
    out[k] = 0;
    if (!k)
        return fail(p, t->off, "refusing to clean '/' (the root directory)");
    for (int i = 0; system[i]; i++)
        if (!strcmp(out, system[i]))
            return fail(p, t->off, "refusing to clean the system directory '%s' (name a directory below it)", out);
    return 0;
}

static int clean_option(px *p, const tok *w, heal_action *a)
{
    tok t;
    bool older = is_kw(w, "older");
    int rc = expect_kw(p, "than", older ? "'than' after 'older'" : "'than' after 'larger'");
    if (rc || (rc = next(p, &t)))
        return rc;
    if (older)
        return get_duration(p, &t, "after 'older than'", 1, INT64_C(3153600000000), &a->older_than_ms);
    return get_size(p, &t, "after 'larger than'", 1, &a->larger_than);
}

static int act_clean(px *p, heal_action *a)
{
    tok t;
    int rc = next_arg(p, &t, true);
    if (rc)
        return rc;
    if (!is_value(&t) || t.text[0] != '/')
        return expected(p, &t, "an absolute path after 'clean'", NULL);
    if ((rc = clean_path(p, &t, a->path, sizeof a->path)))
        return rc;
    for (unsigned seen = 0;;) {
        if ((rc = peek(p, &t)))
            return rc;
        unsigned bit = is_kw(&t, "older") ? 1 : is_kw(&t, "larger") ? 2 : 0;
        if (!bit)
            return 0;
        if (seen & bit)
            return fail(p, t.off, "'%s than' is given twice", t.text);
        seen |= bit;
        next(p, &t);
        if ((rc = clean_option(p, &t, a)))
            return rc;
    }
}

static int act_run(px *p, heal_action *a)
{
    tok t;
    int rc = next_arg(p, &t, true);
    if (rc)
        return rc;
    if (!is_value(&t) || !t.text[strspn(t.text, " \t")])
        return expected(p, &t, "a program after 'run' (e.g. \"/usr/local/bin/fix --now\")", NULL);
    if ((rc = store(p, &t, a->program, sizeof a->program, "the program")) || (rc = peek(p, &t)))
        return rc;
    a->timeout_ms = HEAL_RUN_TIMEOUT_MS;
    if (!is_kw(&t, "timeout"))
        return 0;
    next(p, &t);
    if ((rc = next(p, &t)))
        return rc;
    return get_duration(p, &t, "after 'timeout'", 1, 3600000, &a->timeout_ms);
}

static int act_alert(px *p, heal_action *a)
{
    tok t;
    int rc = peek(p, &t);
    if (rc || t.type == T_END || t.type == T_COMMA)
        return rc;
    if ((rc = next_arg(p, &t, true)))
        return rc;
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
    size_t len = strlen(t.text);
    if (!len || len >= sizeof a->target || strspn(t.text, ok) != len)
        return fail(p, t.off, "bad alert name '%.*s' (1-63 letters, digits, '_', '.', '-')",
                    (int)(t.len > 40 ? 40 : t.len), p->s + t.off);
    memcpy(a->target, t.text, len + 1);
    return 0;
}

/* "pid N" after a signal or renice action: a process that is not the
 * service (heal_action_parse_text only: a rule cannot know a pid). */
static int pid_target(px *p, heal_action *a, heal_action_kind kind)
{
    tok t;
    long pid;
    int rc = peek(p, &t);
    if (rc || !is_kw(&t, "pid"))
        return rc;
    if (!p->one_action)
        return fail(p, t.off, "a rule cannot name a pid (pids change): '%s ... pid N' is for proposed actions only",
                    heal_action_name(a->kind));
    next(p, &t);
    if ((rc = next(p, &t)) || (rc = get_int(p, &t, 1, 4194304, "pid", &pid)))
        return rc;
    a->kind = kind;
    a->pid = (int)pid;
    return 0;
}

/* restore PATH: absolute, no "." or ".." parts, no trailing '/' (but "/"). */
static int act_restore(px *p, heal_action *a)
{
    tok t;
    int rc = get_abs_path(p, &t, "restore", true, a->path, sizeof a->path);
    if (rc)
        return rc;
    for (const char *c = a->path; *c; c++) {
        if (c[0] != '/')
            continue;
        size_t len = strcspn(c + 1, "/");
        if (len == 0 && c[1] == '/')
            return fail(p, src_off(p, &t, (size_t)(c - a->path)), "empty part '//' in the path to restore");
        if ((len == 1 && c[1] == '.') || (len == 2 && c[1] == '.' && c[2] == '.'))
            return fail(p, src_off(p, &t, (size_t)(c - a->path)), "'.' and '..' are not allowed in the path to restore");
    }
    size_t n = strlen(a->path);
    if (n > 1 && a->path[n - 1] == '/')
        a->path[n - 1] = 0;
    return 0;
}

static const struct { const char *word; heal_action_kind kind; } action_words[] = {
    {"start", HEAL_ACT_START}, {"stop", HEAL_ACT_STOP}, {"restart", HEAL_ACT_RESTART},
    {"signal", HEAL_ACT_SIGNAL}, {"renice", HEAL_ACT_RENICE}, {"limit", HEAL_ACT_LIMIT_MEMORY},
    {"sysctl", HEAL_ACT_SYSCTL}, {"clean", HEAL_ACT_CLEAN}, {"run", HEAL_ACT_PLAYBOOK},
    {"alert", HEAL_ACT_ALERT}, {"freeze", HEAL_ACT_FREEZE}, {"thaw", HEAL_ACT_THAW},
    {"restore", HEAL_ACT_RESTORE},
};

static int parse_action(px *p, heal_action *a, const char *after)
{
    static const char *const words[] = {"start", "stop", "restart", "signal", "renice", "limit",
                                        "sysctl", "clean", "run", "alert", "freeze", "thaw", "restore", NULL};
    tok t;
    long nice;
    int rc = next(p, &t), k = -1;
    if (rc)
        return rc;
    for (size_t i = 0; i < sizeof action_words / sizeof action_words[0]; i++)
        if (is_kw(&t, action_words[i].word))
            k = (int)action_words[i].kind;
    if (k < 0 && is_kw(&t, "genome"))
        return fail(p, t.off, "'genome' is not an action a rule may take: genome changes come from the cell "
                              "(ippoc rollback, ippoc evolve) and go through [evolve] changes");
    if (k < 0) {
        char what[160];
        if (after)
            snprintf(what, sizeof what, "an action after '%s'", after);
        else
            snprintf(what, sizeof what, "an action (start, stop, restart, signal, renice, limit, sysctl, clean, "
                                        "run, alert, freeze, thaw, restore)");
        return expected(p, &t, what, words);
    }
    a->kind = (heal_action_kind)k;
    switch (a->kind) {
    case HEAL_ACT_SIGNAL:
        if ((rc = act_signal(p, a)))
            return rc;
        return pid_target(p, a, HEAL_ACT_SIGNAL_PID);
    case HEAL_ACT_RENICE:
        if ((rc = next(p, &t)) || (rc = get_int(p, &t, -20, 19, "nice value", &nice)))
            return rc;
        a->nice = (int)nice;
        return pid_target(p, a, HEAL_ACT_RENICE_PID);
    case HEAL_ACT_RESTORE: return act_restore(p, a);
    case HEAL_ACT_LIMIT_MEMORY: return act_limit(p, a);
    case HEAL_ACT_SYSCTL: return act_sysctl(p, a);
    case HEAL_ACT_CLEAN: return act_clean(p, a);
    case HEAL_ACT_PLAYBOOK: return act_run(p, a);
    case HEAL_ACT_ALERT: return act_alert(p, a);
    default: return 0;
    }
}

static int parse_actions(px *p, heal_rule *r)
{
    const char *after = "then";
    for (;;) {
        tok t;
        if (r->nactions == HEAL_RULE_ACTIONS_MAX) {
            peek(p, &t);
            return fail(p, t.off, "too many actions (at most %d)", HEAL_RULE_ACTIONS_MAX);
        }
        int rc = parse_action(p, &r->actions[r->nactions++], after);
        if (rc || (rc = next(p, &t)))
            return rc;
        if (t.type == T_END)
            return 0;
        if (t.type != T_COMMA)
            return expected(p, &t, "',' or end of line after the action", NULL);
        after = ",";
    }
}

/* ---- the rule ----------------------------------------------------------------------------- */

static int check_text(px *p)
{
    size_t n = strnlen(p->s, HEAL_RULE_LINE_MAX + 1);
    if (n > HEAL_RULE_LINE_MAX)
        return fail(p, HEAL_RULE_LINE_MAX, "rule is longer than %d characters", HEAL_RULE_LINE_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p->s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return fail(p, i, "unexpected control character 0x%02x", c);
    }
    return 0;
}

/* After the condition: "for", then "then" (probe options were read already). */
static int parse_then(px *p, heal_rule *r)
{
    static const char *const then[] = {"then", "for", NULL};
    tok t;
    bool had_for = false;
    int rc = peek(p, &t);
    if (!rc && is_kw(&t, "for")) {
        if (r->cond.kind == HEAL_COND_RESTARTS)
            return fail(p, t.off, "'for' does not apply to a restart count (the window is 'within')");
        next(p, &t);
        rc = parse_for(p, r);
        had_for = true;
    }
    if (rc || (rc = next(p, &t)))
        return rc;
    if (is_kw(&t, "then"))
        return 0;
    if (r->cond.kind == HEAL_COND_PROBE_FAILED && option_bit(&t) && had_for)
        return fail(p, t.off, "expected 'then' after the condition, found '%s' (probe options come before 'for')",
                    t.text);
    return expected(p, &t, "'then' after the condition", then);
}

int heal_rule_parse(const char *line, const char *file, int lineno, heal_rule *out,
                    char *err, size_t errlen)
{
    px p = {.s = line ? line : "", .file = file, .line = lineno, .err = err, .errlen = errlen};
    memset(out, 0, sizeof *out);
    if (err && errlen)
        err[0] = 0;
    out->for_checks = 1;
    int rc = check_text(&p);
    if (!rc)
        rc = expect_kw(&p, "if", "'if' at the start of the rule");
    if (!rc)
        rc = parse_condition(&p, &out->cond);
    if (!rc)
        rc = parse_then(&p, out);
    if (!rc)
        rc = parse_actions(&p, out);
    if (rc) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    core_sncpy(out->file, sizeof out->file, file ? file : "");
    out->line = lineno;
    return 0;
}

int heal_action_parse_text(const char *text, const char *service, heal_action *out, char *err, size_t errlen)
{
    px p = {.s = text ? text : "", .err = err, .errlen = errlen, .one_action = true};
    memset(out, 0, sizeof *out);
    if (err && errlen)
        err[0] = 0;
    if (service && core_sncpy(out->service, sizeof out->service, service)) {
        memset(out, 0, sizeof *out);
        if (err && errlen)
            snprintf(err, errlen, "service name '%.40s...' is too long", service);
        return -EINVAL;
    }
    tok t;
    int rc = check_text(&p);
    if (!rc)
        rc = parse_action(&p, out, NULL);
    if (!rc && !(rc = next(&p, &t)) && t.type != T_END)
        rc = t.type == T_COMMA ? fail(&p, t.off, "one action only (found ',')")
                               : expected(&p, &t, "end of the action", NULL);
    if (rc) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    return 0;
}

void heal_rule_free(heal_rule *r)
{
    (void)r; /* fixed-size fields only, today */
}

int heal_probe_timing(const heal_probe_spec *ps, int64_t service_interval_ms,
                      int64_t *interval_ms, int64_t *timeout_ms, char *err, size_t errlen)
{
    int64_t iv = ps->interval_ms ? ps->interval_ms
                 : service_interval_ms > 0 ? service_interval_ms : HEAL_PROBE_INTERVAL_MS;
    int64_t to = ps->timeout_ms ? ps->timeout_ms : HEAL_PROBE_TIMEOUT_MS;
    if (!ps->timeout_ms && to > iv)
        to = iv;
    if (to > iv) {
        char a[32], b[32];
        heal_rule_format_duration(to, a, sizeof a);
        heal_rule_format_duration(iv, b, sizeof b);
        if (err && errlen)
            snprintf(err, errlen, "probe timeout %s is longer than the probe interval %s", a, b);
        return -EINVAL;
    }
    *interval_ms = iv;
    *timeout_ms = to;
    return 0;
}
