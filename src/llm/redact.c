/* redact.c: removes secrets and personal data from text before it leaves the
 * machine (PCRE2). Each rule replaces what it matches with a typed
 * placeholder, in this order:
 *   PEM private keys                        -> <private-key>
 *   Authorization: Basic ..., Bearer ...    -> Bearer <secret>
 *   JWTs (eyJ...x.y.z)                      -> <secret>
 *   API keys: sk-..., AKIA/ASIA..., ghp_/gho_/ghs_/ghu_/ghr_..., github_pat_...,
 *             xoxb-/xoxp-/...-, AIza...     -> <secret>
 *   password=, passwd:, secret=, token=, api_key=, access_key: ... values
 *             (quoted or not, in KEY=V, KEY: V and "KEY": "V")
 *                                            -> KEY=<secret>
 *   e-mail addresses (redact_emails)        -> <email>
 *   IPv6 and IPv4 addresses (redact_ips)    -> <ip>
 *   the configured host names (redact_hosts, whole names, any case)
 *                                            -> <host>
 * The default rules are compiled once; a redactor adds the host rule. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/llm.h"
#include "llm/llm_int.h"

enum { K_SECRET, K_EMAIL, K_IP };

typedef struct rule {
    int kind;
    const char *pattern;
    const char *replacement;
    pcre2_code *code;
} rule;

static rule rules[] = {
    {K_SECRET,
     "-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\\s\\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\\z)",
     "<private-key>", NULL},
    {K_SECRET, "(?i)(authorization\\s*:\\s*basic\\s+)[A-Za-z0-9+/=._-]+", "${1}<secret>", NULL},
    {K_SECRET, "(?i)\\b(bearer\\s+)(?!<)[A-Za-z0-9._~+/=-]{8,}", "${1}<secret>", NULL},
    {K_SECRET, "\\beyJ[A-Za-z0-9_-]{4,}\\.[A-Za-z0-9_-]{4,}\\.[A-Za-z0-9_-]{4,}", "<secret>", NULL},
    {K_SECRET,
     "\\b(?:sk-[A-Za-z0-9_-]{16,}|(?:AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{20,}|"
     "github_pat_[A-Za-z0-9_]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{30,})",
     "<secret>", NULL},
    {K_SECRET,
     "(?i)((?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)"
     "[A-Za-z0-9_]*[\"']?\\s*[=:]\\s*)(?!<)(\"[^\"\\n]*\"|'[^'\\n]*'|[^\\s,;&\"'<]+)",
     "${1}<secret>", NULL},
    {K_EMAIL, "\\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}\\b", "<email>", NULL},
    {K_IP,
     "(?i)(?<![0-9a-z:.])(?:(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}|(?:[0-9a-f]{1,4}:){1,6}:(?:[0-9a-f]{1,4}:){0,5}"
     "[0-9a-f]{1,4}|::(?:[0-9a-f]{1,4}:){0,6}[0-9a-f]{1,4}|(?:[0-9a-f]{1,4}:){1,7}:)(?![0-9a-z:])",
     "<ip>", NULL},
    {K_IP, "(?<![0-9.])(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}"
           "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?![0-9]|\\.[0-9])",
     "<ip>", NULL},
};
#define NRULES (sizeof rules / sizeof rules[0])

struct llm_redactor {
    pcre2_code *hosts; /* NULL: none */
    bool emails, ips;
};

static pthread_once_t compile_once = PTHREAD_ONCE_INIT;
static int compile_rc;

static void compile_rules(void)
{
    for (size_t i = 0; i < NRULES; i++) {
        int ec;
        PCRE2_SIZE off;
        rules[i].code = pcre2_compile((PCRE2_SPTR)rules[i].pattern, PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
        if (!rules[i].code) {
            compile_rc = -EINVAL; /* a bug in the table above: the unit tests catch it */
            return;
        }
    }
}

/* One rule over *text (replaced when it matched); -1 when out of memory. */
static int apply(pcre2_code *code, const char *replacement, char **text)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    if (!md)
        return -1;
    size_t len = strlen(*text);
    PCRE2_SIZE outlen = len + len / 2 + 64;
    char *out = malloc(outlen);
    int n = -1;
    for (int tries = 0; out && tries < 2; tries++) {
        PCRE2_SIZE cap = outlen;
        n = pcre2_substitute(code, (PCRE2_SPTR)*text, len, 0,
                             PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH, md, NULL,
                             (PCRE2_SPTR)replacement, PCRE2_ZERO_TERMINATED, (PCRE2_UCHAR *)out, &cap);
        if (n != PCRE2_ERROR_NOMEMORY)
            break;
        outlen = cap + 1;
        char *grown = realloc(out, outlen);
        if (!grown) {
            n = -1;
            break;
        }
        out = grown;
    }
    pcre2_match_data_free(md);
    if (n > 0) {
        free(*text);
        *text = out;
        return n;
    }
    free(out);
    return n == 0 ? 0 : -1;
}

char *llm_redact_with(const llm_redactor *r, const char *text, int *count)
{
    pthread_once(&compile_once, compile_rules);
    if (count)
        *count = 0;
    char *s = strdup(text ? text : "");
    if (!s || compile_rc)
        return s;
    bool emails = r ? r->emails : true, ips = r ? r->ips : true;
    int total = 0;
    for (size_t i = 0; i < NRULES; i++) {
        if ((rules[i].kind == K_EMAIL && !emails) || (rules[i].kind == K_IP && !ips))
            continue;
        int n = apply(rules[i].code, rules[i].replacement, &s);
        if (n < 0) {
            free(s);
            return NULL;
        }
        total += n;
    }
    if (r && r->hosts) {
        int n = apply(r->hosts, "<host>", &s);
        if (n < 0) {
            free(s);
            return NULL;
        }
        total += n;
    }
    if (count)
        *count = total;
    return s;
}

/* "a, b.example.com" -> (?i)(?<![\w.-])(?:a|b\.example\.com)(?![\w-]) */
static char *host_pattern(const char *hosts, int *nnames)
{
    size_t cap = strlen(hosts) * 2 + 64;
    char *p = malloc(cap), *o = p;
    if (!p)
        return NULL;
    o += sprintf(o, "(?i)(?<![A-Za-z0-9_.-])(?:");
    *nnames = 0;
    for (const char *s = hosts; *s;) {
        while (*s == ',' || *s == ' ' || *s == '\t')
            s++;
        const char *e = s;
        while (*e && *e != ',' && *e != ' ' && *e != '\t')
            e++;
        if (e > s) {
            if (*nnames)
                *o++ = '|';
            for (const char *c = s; c < e; c++) {
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
                    *o++ = '\\';
                *o++ = *c;
            }
            (*nnames)++;
        }
        s = e;
    }
    strcpy(o, ")(?![A-Za-z0-9_-])");
    return p;
}

int llm_redactor_new(const char *hosts, bool emails, bool ips, llm_redactor **out, char *err, size_t errlen)
{
    llm_redactor *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->emails = emails;
    r->ips = ips;
    int nnames = 0;
    char *pat = hosts ? host_pattern(hosts, &nnames) : NULL;
    if (hosts && !pat) {
        free(r);
        return -ENOMEM;
    }
    if (nnames) {
        int ec;
        PCRE2_SIZE off;
        r->hosts = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
        if (!r->hosts) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(ec, msg, sizeof msg);
            snprintf(err, errlen, "redact_hosts: %s", (char *)msg);
            free(pat);
            free(r);
            return -EINVAL;
        }
    }
    free(pat);
    *out = r;
    return 0;
}

void llm_redactor_free(llm_redactor *r)
{
    if (!r)
        return;
    pcre2_code_free(r->hosts);
    free(r);
}
