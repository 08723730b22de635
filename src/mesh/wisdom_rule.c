/* wisdom_rule.c: the redaction rule that decides what may leave a cell as
 * wisdom (and what a received record must obey: a peer may be malicious),
 * the builders that make records from local data and refuse what the rule
 * forbids, and this machine's coarse host class. The rule as the docs state
 * it is in docs/mesh/wisdom.md; in short: no hostnames, IP or MAC
 * addresses, user names, paths outside a small allowlist, log lines or raw
 * metric values; only value-free tokens, typed actions and aggregates. */
#include "core/core.h"
#include "mesh/wisdom.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "heal/action.h"

/* ---- this machine's names ---- */

/* Hostnames that name no machine in particular (and would refuse every
 * "debian12" or "localhost" in a record). */
static const char *const generic_names[] = {"localhost", "localdomain", "debian", "ubuntu", "linux", "fedora",
                                            "centos", "alpine", "rocky", "alma", "arch", "host", "server"};

void mesh_wisdom_local_add(mesh_wisdom_local *loc, const char *name)
{
    if (!name || strlen(name) < 3 || loc->nnames >= MESH_WISDOM_LOCAL_NAMES) /* "vm", "db": too short to tell */
        return;
    for (size_t i = 0; i < sizeof generic_names / sizeof generic_names[0]; i++)
        if (!strcasecmp(name, generic_names[i]))
            return;
    for (int i = 0; i < loc->nnames; i++)
        if (!strcasecmp(loc->names[i], name))
            return;
    snprintf(loc->names[loc->nnames++], sizeof loc->names[0], "%s", name);
}

void mesh_wisdom_local_init(mesh_wisdom_local *loc)
{
    memset(loc, 0, sizeof *loc);
    char host[256] = "";
    if (!gethostname(host, sizeof host - 1)) {
        mesh_wisdom_local_add(loc, host);
        host[strcspn(host, ".")] = 0; /* its first label alone too */
        mesh_wisdom_local_add(loc, host);
    }
    struct passwd pw, *res = NULL;
    char buf[4096];
    setpwent();
    while (!getpwent_r(&pw, buf, sizeof buf, &res) && res)
        if (pw.pw_uid >= 1000 && pw.pw_uid < 65534)
            mesh_wisdom_local_add(loc, pw.pw_name);
    endpwent();
}

/* ---- generic text checks ---- */

/* Top-level domains whose last label makes a dotted word a hostname. Two-letter
 * ones that are common words in metric or knob names (io, in, it, no, at, ...) are left out. */
static const char *const tlds[] = {"com", "net", "org", "info", "biz", "edu", "gov", "mil", "int", "arpa",
                                   "local", "lan", "internal", "localdomain", "home", "corp", "cloud", "dev",
                                   "uk", "de", "fr", "nl", "eu", "ca", "au", "jp", "cn", "ru", "br", "pl", "dk",
                                   "ie", "nz", "ch", "us"};

static bool is_tld(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof tlds / sizeof tlds[0]; i++)
        if (strlen(tlds[i]) == n && !strncasecmp(s, tlds[i], n))
            return true;
    return false;
}

/* Four dot-separated groups of 1-3 digits. */
static bool has_ipv4(const char *s)
{
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p) || (p > s && isdigit((unsigned char)p[-1])))
            continue;
        const char *q = p;
        int groups = 0;
        while (groups < 4) {
            int d = 0;
            while (isdigit((unsigned char)*q) && d < 4)
                q++, d++;
            if (d < 1 || d > 3)
                break;
            groups++;
            if (groups < 4 && *q == '.' && isdigit((unsigned char)q[1]))
                q++;
            else
                break;
        }
        if (groups == 4)
            return true;
    }
    return false;
}

/* A run of hex digits and colons with 2+ colons and 3+ groups of 0-4 hex
 * digits (IPv6, MAC addresses). */
static bool has_ipv6_or_mac(const char *s)
{
    const char *p = s;
    while (*p) {
        size_t n = strspn(p, "0123456789abcdefABCDEF:");
        if (!n) {
            p++;
            continue;
        }
        int colons = 0, hexrun = 0, maxrun = 0, digits = 0;
        for (size_t i = 0; i < n; i++) {
            if (p[i] == ':') {
                colons++;
                hexrun = 0;
            } else {
                digits++;
                if (++hexrun > maxrun)
                    maxrun = hexrun;
            }
        }
        if (colons >= 2 && maxrun <= 4 && digits >= 2)
            return true;
        p += n;
    }
    return false;
}

/* A dotted word (letters, digits, '-', '.') whose last label is a TLD, or a
 * word equal to one of loc's names, or holding the hostname. */
static const char *host_like(const char *s, const mesh_wisdom_local *loc, char *word, size_t wlen)
{
    const char *p = s;
    while (*p) {
        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._");
        if (!n) {
            p++;
            continue;
        }
        snprintf(word, wlen, "%.*s", (int)n, p);
        size_t m = n; /* without the trailing dots of a fully qualified name */
        while (m && p[m - 1] == '.')
            m--;
        const char *dot = m ? memrchr(p, '.', m) : NULL;
        if (dot && dot > p && (size_t)(p + m - dot - 1) >= 2 && is_tld(dot + 1, (size_t)(p + m - dot - 1)))
            return "a hostname";
        for (int i = 0; loc && i < loc->nnames; i++) {
            size_t ln = strlen(loc->names[i]);
            /* the word, or one of its labels / '_'/'-' parts, is the name; a long name anywhere in it */
            for (const char *q = p; q < p + n;) {
                size_t part = strcspn(q, ".-_/");
                if (part > n - (size_t)(q - p))
                    part = n - (size_t)(q - p);
                if (part == ln && !strncasecmp(q, loc->names[i], ln))
                    return "a name of this machine (host or user)";
                q += part + 1;
            }
            if (ln >= 5 && strcasestr(word, loc->names[i]))
                return "a name of this machine (host or user)";
        }
        p += n;
    }
    return NULL;
}

/* The checks every text field gets. */
static int text_ok(const char *field, const char *s, const mesh_wisdom_local *loc, char *err, size_t errlen)
{
    char word[256];
    const char *why;
    for (const char *p = s; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            return core_err(err, errlen, -EPERM, "%s: byte %zu is not printable ASCII", field, (size_t)(p - s));
    if (strchr(s, '@') || strchr(s, '~'))
        return core_err(err, errlen, -EPERM, "%s: '%s' names a user or a home ('@', '~')", field, s);
    if (has_ipv4(s))
        return core_err(err, errlen, -EPERM, "%s: '%s' holds an IPv4 address", field, s);
    if (has_ipv6_or_mac(s))
        return core_err(err, errlen, -EPERM, "%s: '%s' holds an IPv6 or MAC address", field, s);
    if ((why = host_like(s, loc, word, sizeof word)))
        return core_err(err, errlen, -EPERM, "%s: '%s' is %s", field, word, why);
    return 0;
}

/* s is 1..max characters of set (and, when first is given, starts with one of it). */
static int grammar(const char *field, const char *s, size_t max, const char *set, const char *first, char *err,
                   size_t errlen)
{
    size_t n = strlen(s);
    if (!n || n > max)
        return core_err(err, errlen, -EPERM, "%s: length %zu not in 1..%zu", field, n, max);
    size_t bad = strspn(s, set);
    if (bad < n)
        return core_err(err, errlen, -EPERM, "%s: '%s' has a character not allowed here ('%c' at %zu)", field, s,
                      s[bad], bad);
    if (first && !strchr(first, s[0]))
        return core_err(err, errlen, -EPERM, "%s: '%s' must start with a letter", field, s);
    return 0;
}

#define LOWER "abcdefghijklmnopqrstuvwxyz"
#define DIGIT "0123456789"
#define UPPER "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define TOKEN_SET LOWER UPPER DIGIT "_:.-" /* signal names are upper case: exit:signal:KILL */
#define NAME_SET LOWER DIGIT "_."
#define SERVICE_SET LOWER DIGIT "_-"
#define VALUE_SET LOWER UPPER DIGIT "_.+-"

/* The signature's feature vocabulary (docs/brain-signature.md "Features"),
 * segment by segment between ':': alternatives split by '|', '#' a small
 * integer, '$S' a signal name, '$F' a series family. A token of no pattern
 * here is refused (a new feature family of the brain must be added). */
static const char *const feature_vocab[] = {
    "exit:code:#", "exit:signal:$S", "exit:early", "exit:repeated",
    "probe:http|tcp|process|exec|file|fs|metric|unknown:dns|timeout|refused|reset|latency|body|status|exec|file|"
    "process|other",
    "rule:resource:cpu|memory|threads|fds|space|inodes|metric", "rule:restarts", "rule:anomalous",
    "kernel:oom_kill|io_error|fs_error|segfault|hung_task|clock", "kernel:oom_kill|io_error|fs_error|segfault|hung_task|clock:other",
    "log:hint:permission|no_such_file|addr_in_use|too_many_files|dns|conn_refused|credential|no_space|oom|config|env|"
    "timeout|segfault|read_only|io_error|clock",
    "log:new|burst:error|warning|critical|fatal|info|notice|debug",
    "port:held", "dep:down",
    "change:file|config_reload|audit|package", "change:file:content|mode|owner|created|deleted",
    "fs:full|inodes_full", "fs:full|inodes_full:other",
    "res:fds_near_limit|rss_rising|cpu_high", "pressure:cpu|memory|io", "cpu:hog",
    "anomaly:$F:spike|dip|level_up|level_down|seasonal|flatline|variance|drift|unknown",
};

/* One segment (len n) against one pattern segment (len pn). */
static bool seg_match(const char *t, size_t n, const char *pat, size_t pn)
{
    if (pn == 1 && pat[0] == '#') {
        size_t i = n && t[0] == '-';
        return n > i && n - i <= 4 && strspn(t + i, DIGIT) >= n - i;
    }
    if (pn == 2 && !strncmp(pat, "$S", 2))
        return n >= 1 && n <= 10 && strspn(t, UPPER DIGIT "+") >= n;
    if (pn == 2 && !strncmp(pat, "$F", 2))
        return n >= 1 && n <= 48 && islower((unsigned char)t[0]) && strspn(t, NAME_SET) >= n;
    for (const char *a = pat; a < pat + pn;) {
        size_t an = strcspn(a, "|");
        if (an > (size_t)(pat + pn - a))
            an = (size_t)(pat + pn - a);
        if (an == n && !strncmp(a, t, n))
            return true;
        a += an + 1;
    }
    return false;
}

static bool vocab_match(const char *tok, const char *pat)
{
    for (;;) {
        size_t n = strcspn(tok, ":"), pn = strcspn(pat, ":");
        if (!seg_match(tok, n, pat, pn))
            return false;
        if (!tok[n] || !pat[pn])
            return !tok[n] && !pat[pn];
        tok += n + 1;
        pat += pn + 1;
    }
}

static int feature_ok(const char *field, const char *f, const mesh_wisdom_local *loc, char *err, size_t errlen)
{
    int rc = grammar(field, f, MESH_WISDOM_TOKEN_MAX, TOKEN_SET, NULL, err, errlen);
    if (rc)
        return rc;
    bool known = false;
    for (size_t i = 0; i < sizeof feature_vocab / sizeof feature_vocab[0] && !known; i++)
        known = vocab_match(f, feature_vocab[i]);
    if (!known)
        return core_err(err, errlen, -EPERM, "%s: '%s' is not in the signature's feature vocabulary", field, f);
    return text_ok(field, f, loc, err, errlen);
}

/* Paths an action may name: directories any Debian host has. */
static const char *const path_allow[] = {"/tmp/", "/var/tmp/", "/var/log/", "/var/cache/", "/etc/"};

static int path_ok(const char *field, const char *path, const mesh_wisdom_local *loc, char *err, size_t errlen)
{
    bool ok = false;
    for (size_t i = 0; i < sizeof path_allow / sizeof path_allow[0] && !ok; i++)
        ok = !strncmp(path, path_allow[i], strlen(path_allow[i]));
    if (!ok || strstr(path, "/.."))
        return core_err(err, errlen, -EPERM, "%s: path '%s' outside the allowlist (/tmp, /var/tmp, /var/log, /var/cache, /etc)",
                      field, path);
    return text_ok(field, path, loc, err, errlen);
}

static int action_ok(const char *field, const char *text, const mesh_wisdom_local *loc, char *err, size_t errlen)
{
    heal_action a;
    char perr[256], again[HEAL_ARG_MAX + 64];
    if (heal_action_parse_text(text, "svc", &a, perr, sizeof perr))
        return core_err(err, errlen, -EPERM, "%s: not a heal action: %s", field, perr);
    switch (a.kind) {
    case HEAL_ACT_PLAYBOOK:
        return core_err(err, errlen, -EPERM, "%s: '%s' runs a local program (playbooks stay local)", field, text);
    case HEAL_ACT_ALERT:
        return core_err(err, errlen, -EPERM, "%s: '%s' names a local webhook (alerts stay local)", field, text);
    case HEAL_ACT_SIGNAL_PID:
    case HEAL_ACT_RENICE_PID:
        return core_err(err, errlen, -EPERM, "%s: '%s' names a local process id", field, text);
    case HEAL_ACT_GENOME:
        return core_err(err, errlen, -EPERM, "%s: '%s' names a local genome commit", field, text);
    default: break;
    }
    if (heal_action_format(&a, again, sizeof again) || strcmp(again, text))
        return core_err(err, errlen, -EPERM, "%s: '%s' is not heal's own text of it ('%s')", field, text, again);
    if ((a.kind == HEAL_ACT_CLEAN || a.kind == HEAL_ACT_RESTORE) && path_ok(field, a.path, loc, err, errlen))
        return -EPERM;
    if (a.kind == HEAL_ACT_SYSCTL && (grammar(field, a.key, MESH_WISDOM_TOKEN_MAX, NAME_SET, NULL, err, errlen) ||
                                      grammar(field, a.value, MESH_WISDOM_VALUE_MAX, VALUE_SET " ", NULL, err, errlen)))
        return -EPERM;
    return text_ok(field, text, loc, err, errlen);
}

static int host_ok(const mesh_wisdom_host *h, const mesh_wisdom_local *loc, char *err, size_t errlen)
{
    if (h->cpu_log2 > 16 || h->mem_log2 > 24)
        return core_err(err, errlen, -EPERM, "host: cpu_log2 %u / mem_log2 %u out of range", h->cpu_log2, h->mem_log2);
    int rc = grammar("host.os", h->os, sizeof h->os - 1, LOWER DIGIT ".", LOWER, err, errlen);
    if (!rc && h->service[0])
        rc = grammar("host.service", h->service, sizeof h->service - 1, SERVICE_SET, LOWER, err, errlen);
    if (!rc)
        rc = text_ok("host.os", h->os, loc, err, errlen);
    if (!rc)
        rc = text_ok("host.service", h->service, loc, err, errlen);
    return rc;
}

static int fix_ok(const mesh_wisdom_fix *f, const mesh_wisdom_local *loc, char *err, size_t errlen)
{
    char field[48];
    if (f->nfeatures < 1 || f->nfeatures > MESH_WISDOM_FEATURES_MAX)
        return core_err(err, errlen, -EPERM, "fix.features: %d features, not 1..16", f->nfeatures);
    for (int i = 0; i < f->nfeatures; i++) {
        snprintf(field, sizeof field, "fix.features[%d]", i);
        int rc = feature_ok(field, f->features[i], loc, err, errlen);
        if (rc)
            return rc;
    }
    if (f->n < 1 || f->k > f->n || f->n > 1000000)
        return core_err(err, errlen, -EPERM, "fix.k/n: %u of %u is not a count of tries (1 <= n <= 1e6, k <= n)", f->k,
                      f->n);
    return action_ok("fix.action", f->action, loc, err, errlen);
}

static int base_ok(const mesh_wisdom_baseline *b, const mesh_wisdom_local *loc, char *err, size_t errlen)
{
    int rc = grammar("baseline.metric", b->metric, MESH_WISDOM_TOKEN_MAX, NAME_SET, LOWER, err, errlen);
    if (rc || (rc = text_ok("baseline.metric", b->metric, loc, err, errlen)))
        return rc;
    if (b->count < MESH_WISDOM_MIN_SAMPLES)
        return core_err(err, errlen, -EPERM, "baseline.count: %u samples is too few to be an aggregate (at least %d)",
                      b->count, MESH_WISDOM_MIN_SAMPLES);
    double v[] = {b->mean, b->stddev, b->p05, b->p50, b->p95};
    for (size_t i = 0; i < 5; i++)
        if (!isfinite(v[i]))
            return core_err(err, errlen, -EPERM, "baseline: a statistic is not finite");
    if (b->stddev < 0 || b->p05 > b->p50 || b->p50 > b->p95)
        return core_err(err, errlen, -EPERM, "baseline: stddev < 0 or quantiles out of order (p05 <= p50 <= p95)");
    return 0;
}

static int knobs_ok(const mesh_wisdom_knobs *k, const mesh_wisdom_local *loc, char *err, size_t errlen)
{
    char field[48];
    int rc = grammar("knobs.objective", k->objective, MESH_WISDOM_TOKEN_MAX, NAME_SET, LOWER, err, errlen);
    if (rc || (rc = text_ok("knobs.objective", k->objective, loc, err, errlen)))
        return rc;
    if (k->nknobs < 1 || k->nknobs > MESH_WISDOM_KNOBS_MAX)
        return core_err(err, errlen, -EPERM, "knobs.knobs: %d knobs, not 1..8", k->nknobs);
    for (int i = 0; i < k->nknobs; i++) {
        snprintf(field, sizeof field, "knobs.knobs[%d].name", i);
        if ((rc = grammar(field, k->knobs[i].name, MESH_WISDOM_TOKEN_MAX, NAME_SET, LOWER, err, errlen)) ||
            (rc = text_ok(field, k->knobs[i].name, loc, err, errlen)))
            return rc;
        snprintf(field, sizeof field, "knobs.knobs[%d].value", i);
        if ((rc = grammar(field, k->knobs[i].value, MESH_WISDOM_VALUE_MAX, VALUE_SET, NULL, err, errlen)) ||
            (rc = text_ok(field, k->knobs[i].value, loc, err, errlen)))
            return rc;
    }
    if (!isfinite(k->gain) || !isfinite(k->lo) || !isfinite(k->hi) || k->lo > k->gain || k->gain > k->hi ||
        fabs(k->gain) > 100)
        return core_err(err, errlen, -EPERM, "knobs.gain: %g in [%g, %g] is not a gain within its interval", k->gain,
                      k->lo, k->hi);
    if (k->runs < MESH_WISDOM_MIN_RUNS)
        return core_err(err, errlen, -EPERM, "knobs.runs: %u runs, at least %d measure a gain", k->runs,
                      MESH_WISDOM_MIN_RUNS);
    return 0;
}

int mesh_wisdom_check(const mesh_wisdom_rec *r, const mesh_wisdom_local *loc, char *err, size_t errlen)
{
    int rc = host_ok(&r->host, loc, err, errlen);
    if (rc)
        return rc;
    switch (r->kind) {
    case MESH_WISDOM_FIX: return fix_ok(&r->fix, loc, err, errlen);
    case MESH_WISDOM_BASELINE: return base_ok(&r->base, loc, err, errlen);
    case MESH_WISDOM_KNOBS: return knobs_ok(&r->knobs, loc, err, errlen);
    default: return core_err(err, errlen, -EPERM, "kind: %d is not a wisdom kind", (int)r->kind);
    }
}

/* ---- builders ---- */

/* Copies s into out (cap bytes) or refuses naming field: too long. */
static int copy_field(const char *field, const char *s, char *out, size_t cap, char *err, size_t errlen)
{
    if (!s || strlen(s) >= cap)
        return core_err(err, errlen, -EPERM, "%s: %s", field, s ? "too long" : "missing");
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

static bool attempt_used(const json_t *attempt, const char *action)
{
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(attempt, "actions"), i, a) {
        const char *t = json_is_string(a) ? json_string_value(a) : json_string_value(json_object_get(a, "action"));
        if (t && !strcmp(t, action))
            return true;
    }
    return false;
}

/* Drops repeated features, keeping the order (field names in errors are the case's indexes
 * less the repeats before them; the signer sorts). */
static void dedup_features(mesh_wisdom_fix *f)
{
    int o = 0;
    for (int i = 0; i < f->nfeatures; i++) {
        bool seen = false;
        for (int j = 0; j < o && !seen; j++)
            seen = !strcmp(f->features[j], f->features[i]);
        if (!seen)
            memmove(f->features[o++], f->features[i], sizeof f->features[0]);
    }
    f->nfeatures = o;
}

int mesh_wisdom_build_fix(const json_t *case_json, const char *action, const mesh_wisdom_host *host,
                          const mesh_wisdom_local *loc, mesh_wisdom_rec *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->kind = MESH_WISDOM_FIX;
    out->host = *host;
    json_t *feats = json_object_get(case_json, "features"), *atts = json_object_get(case_json, "attempts"), *v;
    if (!json_is_array(feats) || !json_is_array(atts))
        return core_err(err, errlen, -EINVAL, "case: no features or attempts array");
    size_t i;
    json_array_foreach(feats, i, v) {
        char field[48];
        snprintf(field, sizeof field, "fix.features[%zu]", i);
        if (!json_is_string(v))
            return core_err(err, errlen, -EINVAL, "%s: not a string", field);
        if (out->fix.nfeatures >= MESH_WISDOM_FEATURES_MAX)
            break; /* the signature keeps 16: the most relevant first */
        int rc = copy_field(field, json_string_value(v), out->fix.features[out->fix.nfeatures],
                            sizeof out->fix.features[0], err, errlen);
        if (rc)
            return rc;
        out->fix.nfeatures++;
    }
    /* heal's own text of the action (checked again below) */
    heal_action a;
    char perr[256];
    if (heal_action_parse_text(action, "svc", &a, perr, sizeof perr))
        return core_err(err, errlen, -EPERM, "fix.action: not a heal action: %s", perr);
    if (heal_action_format(&a, out->fix.action, sizeof out->fix.action))
        return core_err(err, errlen, -EPERM, "fix.action: '%s' is longer than %d bytes", action, MESH_WISDOM_ACTION_MAX);
    json_array_foreach(atts, i, v) {
        if (!attempt_used(v, action))
            continue;
        out->fix.n++;
        out->fix.k += json_is_true(json_object_get(v, "healed"));
    }
    if (!out->fix.n)
        return core_err(err, errlen, -ENOENT, "case: no attempt used '%s'", action);
    dedup_features(&out->fix);
    return mesh_wisdom_check(out, loc, err, errlen);
}

int mesh_wisdom_build_baseline(const char *metric, uint32_t count, double mean, double stddev, double p05,
                               double p50, double p95, const mesh_wisdom_host *host, const mesh_wisdom_local *loc,
                               mesh_wisdom_rec *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->kind = MESH_WISDOM_BASELINE;
    out->host = *host;
    int rc = copy_field("baseline.metric", metric, out->base.metric, sizeof out->base.metric, err, errlen);
    if (rc)
        return rc;
    out->base = (mesh_wisdom_baseline){.count = count, .mean = mean, .stddev = stddev, .p05 = p05, .p50 = p50,
                                       .p95 = p95};
    memcpy(out->base.metric, metric, strlen(metric) + 1);
    return mesh_wisdom_check(out, loc, err, errlen);
}

int mesh_wisdom_build_knobs(const char *objective, int nknobs, const char *const *names, const char *const *values,
                            double gain, double lo, double hi, uint32_t runs, const mesh_wisdom_host *host,
                            const mesh_wisdom_local *loc, mesh_wisdom_rec *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->kind = MESH_WISDOM_KNOBS;
    out->host = *host;
    if (nknobs < 1 || nknobs > MESH_WISDOM_KNOBS_MAX)
        return core_err(err, errlen, -EPERM, "knobs.knobs: %d knobs, not 1..8", nknobs);
    int rc = copy_field("knobs.objective", objective, out->knobs.objective, sizeof out->knobs.objective, err, errlen);
    for (int i = 0; i < nknobs && !rc; i++) {
        char field[48];
        snprintf(field, sizeof field, "knobs.knobs[%d].name", i);
        rc = copy_field(field, names[i], out->knobs.knobs[i].name, sizeof out->knobs.knobs[i].name, err, errlen);
        snprintf(field, sizeof field, "knobs.knobs[%d].value", i);
        if (!rc)
            rc = copy_field(field, values[i], out->knobs.knobs[i].value, sizeof out->knobs.knobs[i].value, err,
                            errlen);
    }
    if (rc)
        return rc;
    out->knobs.nknobs = nknobs;
    out->knobs.gain = gain;
    out->knobs.lo = lo;
    out->knobs.hi = hi;
    out->knobs.runs = runs;
    return mesh_wisdom_check(out, loc, err, errlen);
}

/* ---- the host class ---- */

static int floor_log2(uint64_t v)
{
    int l = 0;
    while (v > 1)
        v >>= 1, l++;
    return l;
}

/* ID and VERSION_ID of os-release, lower case, joined: "debian12". */
static void os_id(char *out, size_t cap)
{
    char id[32] = "linux", ver[32] = "", line[256];
    FILE *f = fopen("/etc/os-release", "re");
    if (!f)
        f = fopen("/usr/lib/os-release", "re");
    while (f && fgets(line, sizeof line, f)) {
        char *v = strchr(line, '=');
        if (!v)
            continue;
        *v++ = 0;
        v[strcspn(v, "\r\n")] = 0;
        if (*v == '"')
            v++, v[strcspn(v, "\"")] = 0;
        if (!strcmp(line, "ID"))
            snprintf(id, sizeof id, "%s", v);
        else if (!strcmp(line, "VERSION_ID"))
            snprintf(ver, sizeof ver, "%s", v);
    }
    if (f)
        fclose(f);
    size_t o = 0;
    for (const char *p = id; *p && o + 1 < cap; p++)
        if (isalnum((unsigned char)*p))
            out[o++] = (char)tolower((unsigned char)*p);
    for (const char *p = ver; *p && o + 1 < cap; p++)
        if (isalnum((unsigned char)*p) || *p == '.')
            out[o++] = (char)tolower((unsigned char)*p);
    out[o] = 0;
}

int mesh_wisdom_host_local(const char *service_kind, mesh_wisdom_host *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN), pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    out->cpu_log2 = (uint8_t)floor_log2(cpus > 0 ? (uint64_t)cpus : 1);
    uint64_t gib = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz >> 30 : 1;
    out->mem_log2 = (uint8_t)floor_log2(gib ? gib : 1);
    struct utsname u;
    unsigned maj = 0, min = 0;
    if (!uname(&u))
        sscanf(u.release, "%u.%u", &maj, &min);
    out->kernel_major = (uint8_t)(maj > 255 ? 255 : maj);
    out->kernel_minor = (uint8_t)(min > 255 ? 255 : min);
    os_id(out->os, sizeof out->os);
    if (!out->os[0])
        snprintf(out->os, sizeof out->os, "linux");
    if (copy_field("host.service", service_kind ? service_kind : "", out->service, sizeof out->service, err, errlen))
        return -EINVAL;
    return 0;
}
