/* rules_format.c: the canonical text of a parsed rule (heal_rule_format),
 * which heal_rule_parse reads back to the same struct, and the small name
 * tables and helpers the parser and the rule engine share. */
#include "heal/rules.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- names and helpers ----------------------------------------------------------- */

static const char *const cmp_names[HEAL_CMP_COUNT] = {">", ">=", "<", "<=", "==", "!="};
static const char *const res_names[HEAL_RES_COUNT] = {"cpu", "memory", "threads", "fds",
                                                      "space", "inodes", "metric"};
static const char *const probe_names[HEAL_PROBE_COUNT] = {"http", "https", "tcp", "process",
                                                          "exec", "file"};

const char *heal_cmp_name(heal_cmp op) { return (unsigned)op < HEAL_CMP_COUNT ? cmp_names[op] : NULL; }
const char *heal_resource_name(heal_resource_kind k) { return (unsigned)k < HEAL_RES_COUNT ? res_names[k] : NULL; }
const char *heal_probe_kind_name(heal_probe_kind k) { return (unsigned)k < HEAL_PROBE_COUNT ? probe_names[k] : NULL; }

bool heal_cmp_eval(heal_cmp op, double v, double t)
{
    switch (op) {
    case HEAL_CMP_GT: return v > t;
    case HEAL_CMP_GE: return v >= t;
    case HEAL_CMP_LT: return v < t;
    case HEAL_CMP_LE: return v <= t;
    case HEAL_CMP_EQ: return v == t;
    case HEAL_CMP_NE: return v != t;
    default: return false;
    }
}

void heal_rule_format_duration(int64_t ms, char *buf, size_t n)
{
    static const struct { const char *unit; int64_t ms; } units[] = {
        {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000},
    };
    for (size_t i = 0; ms > 0 && i < sizeof units / sizeof units[0]; i++) {
        if (ms % units[i].ms == 0) {
            snprintf(buf, n, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
            return;
        }
    }
    snprintf(buf, n, "%lldms", (long long)ms);
}

void heal_rule_format_size(uint64_t b, char *buf, size_t n)
{
    static const char *const units[] = {"B", "KB", "MB", "GB", "TB"};
    int u = 0;
    while (u < 4 && b >= 1024 && b % 1024 == 0) {
        b /= 1024;
        u++;
    }
    snprintf(buf, n, "%llu%s", (unsigned long long)b, units[u]);
}

/* ---- an appending buffer ------------------------------------------------------------ */

typedef struct sbuf {
    char *b;
    size_t n, pos;
} sbuf;

static void put(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(sbuf *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(s->b + (s->pos < s->n ? s->pos : s->n), s->pos < s->n ? s->n - s->pos : 0, fmt, ap);
    va_end(ap);
    if (w > 0)
        s->pos += (size_t)w;
}

static void put_quoted(sbuf *s, const char *str)
{
    put(s, "\"");
    for (; *str; str++) {
        if (*str == '"' || *str == '\\' || *str == ';')
            put(s, "\\%c", *str);
        else
            put(s, "%c", *str);
    }
    put(s, "\"");
}

/* A value bare when the scanner reads it back whole, else quoted. */
static void put_arg(sbuf *s, const char *str)
{
    bool bare = *str != 0;
    for (const char *c = str; *c && bare; c++)
        bare = *c != ' ' && *c != '\t' && *c != ',' && *c != '"' && *c != '\\' && *c != ';';
    if (bare)
        put(s, "%s", str);
    else
        put_quoted(s, str);
}

/* Integers as such, else the shortest %g text strtod reads back exactly. */
static void put_number(sbuf *s, double v)
{
    char buf[64];
    if (v == (double)(long long)v && v > -1e15 && v < 1e15) {
        put(s, "%lld", (long long)v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    put(s, "%s", buf);
}

static void put_duration(sbuf *s, const char *before, int64_t ms)
{
    char buf[32];
    heal_rule_format_duration(ms, buf, sizeof buf);
    put(s, "%s%s", before, buf);
}

static void put_size(sbuf *s, const char *before, uint64_t b)
{
    char buf[32];
    heal_rule_format_size(b, buf, sizeof buf);
    put(s, "%s%s", before, buf);
}

/* ---- conditions ---------------------------------------------------------------------- */

static void put_status(sbuf *s, const heal_probe_spec *p)
{
    if (p->status_min == 200 && p->status_max == 399)
        return;
    if (p->status_min == p->status_max)
        put(s, " status %d", p->status_min);
    else if (p->status_min % 100 == 0 && p->status_max == p->status_min + 99)
        put(s, " status %dxx", p->status_min / 100);
    else
        put(s, " status %d-%d", p->status_min, p->status_max);
}

static void put_file_check(sbuf *s, const heal_probe_spec *p)
{
    const char *op = heal_cmp_name(p->file_cmp) ? heal_cmp_name(p->file_cmp) : "?";
    switch (p->file_check) {
    case HEAL_FILE_AGE: put(s, " age %s", op), put_duration(s, " ", p->file_age_ms); break;
    case HEAL_FILE_SIZE: put(s, " size %s", op), put_size(s, " ", p->file_size); break;
    case HEAL_FILE_CHECKSUM: put(s, " checksum sha256 %s", p->sha256); break;
    case HEAL_FILE_CHANGED: put(s, " changed"); break;
    default: break;
    }
}

static int put_probe(sbuf *s, const heal_probe_spec *p)
{
    if (!heal_probe_kind_name(p->kind))
        return -EINVAL;
    put(s, "failed ");
    switch (p->kind) {
    case HEAL_PROBE_PROCESS: put(s, "process"); break;
    case HEAL_PROBE_EXEC: put(s, "exec "), put_quoted(s, p->program); break;
    case HEAL_PROBE_FILE: put(s, "file "), put_arg(s, p->path); put_file_check(s, p); break;
    default: put(s, "%s", p->url); break;
    }
    if (p->kind == HEAL_PROBE_HTTP || p->kind == HEAL_PROBE_HTTPS) {
        put_status(s, p);
        if (p->body[0])
            put(s, " body "), put_quoted(s, p->body);
    }
    if (p->max_latency_ms)
        put_duration(s, " latency < ", p->max_latency_ms);
    if (p->timeout_ms)
        put_duration(s, " timeout ", p->timeout_ms);
    if (p->interval_ms)
        put_duration(s, " every ", p->interval_ms);
    return 0;
}

static int put_resource(sbuf *s, const heal_resource *r)
{
    if (!heal_resource_name(r->kind) || !heal_cmp_name(r->op))
        return -EINVAL;
    put(s, "%s", heal_resource_name(r->kind));
    if (r->kind == HEAL_RES_SPACE || r->kind == HEAL_RES_INODES)
        put(s, " "), put_arg(s, r->path);
    if (r->kind == HEAL_RES_METRIC)
        put(s, " %s%s%s%s", r->metric, r->labels[0] ? "{" : "", r->labels, r->labels[0] ? "}" : "");
    put(s, " %s ", heal_cmp_name(r->op));
    switch (r->kind) {
    case HEAL_RES_MEMORY: put_size(s, "", (uint64_t)r->threshold); break;
    case HEAL_RES_CPU:
    case HEAL_RES_SPACE:
    case HEAL_RES_INODES: put_number(s, r->threshold), put(s, "%%"); break;
    default: put_number(s, r->threshold); break;
    }
    return 0;
}

static int put_condition(sbuf *s, const heal_condition *c)
{
    switch (c->kind) {
    case HEAL_COND_PROBE_FAILED: return put_probe(s, &c->probe);
    case HEAL_COND_RESOURCE: return put_resource(s, &c->res);
    case HEAL_COND_RESTARTS:
        put(s, "%d restarts", c->restarts);
        put_duration(s, " within ", c->within_ms);
        return 0;
    case HEAL_COND_ANOMALOUS:
        if (!c->res.metric[0])
            return -EINVAL;
        put(s, "anomalous(%s%s%s%s)", c->res.metric, c->res.labels[0] ? "{" : "", c->res.labels,
            c->res.labels[0] ? "}" : "");
        return 0;
    default: return -EINVAL;
    }
}

/* ---- actions --------------------------------------------------------------------------- */

static int put_action(sbuf *s, const heal_action *a)
{
    switch (a->kind) {
    case HEAL_ACT_SIGNAL:
        if (!sigabbrev_np(a->signum))
            return -EINVAL;
        put(s, "signal %s", sigabbrev_np(a->signum));
        break;
    case HEAL_ACT_RENICE: put(s, "renice %d", a->nice); break;
    case HEAL_ACT_SIGNAL_PID:
        if (!sigabbrev_np(a->signum) || a->pid <= 0)
            return -EINVAL;
        put(s, "signal %s pid %d", sigabbrev_np(a->signum), a->pid);
        break;
    case HEAL_ACT_RENICE_PID:
        if (a->pid <= 0)
            return -EINVAL;
        put(s, "renice %d pid %d", a->nice, a->pid);
        break;
    case HEAL_ACT_RESTORE: put(s, "restore "), put_arg(s, a->path); break;
    case HEAL_ACT_LIMIT_MEMORY: put_size(s, "limit memory ", a->bytes); break;
    case HEAL_ACT_LIMIT_CPU: put(s, "limit cpu "), put_number(s, a->cpu_percent), put(s, "%%"); break;
    case HEAL_ACT_SYSCTL: put(s, "sysctl %s = ", a->key), put_arg(s, a->value); break;
    case HEAL_ACT_CLEAN:
        put(s, "clean "), put_arg(s, a->path);
        if (a->older_than_ms)
            put_duration(s, " older than ", a->older_than_ms);
        if (a->larger_than)
            put_size(s, " larger than ", a->larger_than);
        break;
    case HEAL_ACT_PLAYBOOK:
        put(s, "run "), put_quoted(s, a->program);
        if (a->timeout_ms)
            put_duration(s, " timeout ", a->timeout_ms);
        break;
    case HEAL_ACT_ALERT: put(s, "alert%s%s", a->target[0] ? " " : "", a->target); break;
    default:
        if (!heal_action_name(a->kind))
            return -EINVAL;
        put(s, "%s", heal_action_name(a->kind));
        break;
    }
    return 0;
}

int heal_rule_format(const heal_rule *r, char *buf, size_t n)
{
    sbuf s = {.b = buf, .n = n};
    if (n)
        buf[0] = 0;
    put(&s, "if ");
    int rc = put_condition(&s, &r->cond);
    if (rc)
        return rc;
    if (r->for_ms)
        put_duration(&s, " for ", r->for_ms);
    else if (r->for_checks > 1)
        put(&s, " for %d checks", r->for_checks);
    put(&s, " then ");
    if (r->nactions < 1 || r->nactions > HEAL_RULE_ACTIONS_MAX)
        return -EINVAL;
    for (int i = 0; i < r->nactions; i++) {
        if (i)
            put(&s, ", ");
        if ((rc = put_action(&s, &r->actions[i])))
            return rc;
    }
    return s.pos < n ? 0 : -ENAMETOOLONG;
}
