/* digest.c: the daily digest, built from memory only (events and series,
 * no model): what happened (incidents by service, anomalies by metric, new
 * error-level log templates, restarts), what was healed (actions and their
 * outcomes, mean time to mitigate), what is drifting (drift detections, a
 * filesystem filling up over the day with its time to full) and what it
 * proposes (pending approvals, services failing repeatedly, refusals and
 * rejections that keep blocking). Deterministic: the same memory gives the
 * same digest. See docs/brain.md "Dreaming". */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "brain/brain_int.h"

#define DIGEST_LIST_MAX 20     /* entries kept in a list (templates, pending, ...) */
#define DIGEST_REPEAT 2        /* a failure or refusal this often "keeps" happening */
#define DIGEST_FULL_SOON_MS (90LL * 86400000) /* a filesystem full within this is drifting */

/* ---- days ------------------------------------------------------------------- */

void brain_day_of(int64_t ms, char out[11])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    snprintf(out, 11, "%04d-%02d-%02d", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100, tm.tm_mday % 100);
}

int brain_day_bounds(const char *day, int64_t *from_ms, int64_t *to_ms)
{
    int y, mo, d;
    char tail;
    if (!day || strlen(day) != 10 || sscanf(day, "%4d-%2d-%2d%c", &y, &mo, &d, &tail) != 3 || day[4] != '-' ||
        day[7] != '-' || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31)
        return -EINVAL;
    struct tm a = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_isdst = -1};
    struct tm b = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d + 1, .tm_isdst = -1};
    time_t ta = core_mktime(&a);
    if (ta == (time_t)-1 || a.tm_mday != d || a.tm_mon != mo - 1) /* 2026-02-31 */
        return -EINVAL;
    time_t tb = core_mktime(&b);
    *from_ms = (int64_t)ta * 1000;
    *to_ms = (int64_t)tb * 1000 - 1;
    return 0;
}

/* ---- counting helpers ---------------------------------------------------------- */

static void bump(json_t *obj, const char *key, const char *field)
{
    json_t *o = json_object_get(obj, key);
    if (!o) {
        o = json_object();
        json_object_set_new(obj, key, o);
    }
    json_object_set_new(o, field, json_integer(json_integer_value(json_object_get(o, field)) + 1));
}

static void count(json_t *obj, const char *key)
{
    json_object_set_new(obj, key, json_integer(json_integer_value(json_object_get(obj, key)) + 1));
}

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

typedef struct digest_acc {
    int opened, resolved, failed, episodes, restarts_n, actions_ok, actions_failed, mitigated;
    double mttm_sum;
    json_t *by_service;   /* {svc: {opened, resolved, failed}} */
    json_t *anomalies;    /* {metric: n} */
    json_t *episodes_by;  /* {first mover's metric: n} */
    json_t *templates;    /* [{source, template}] */
    json_t *restarts;     /* {svc: n} */
    json_t *exits;        /* {svc: n} */
    json_t *actions;      /* {"svc\x1faction": {service, action, ok, failed}} */
    json_t *drifts;       /* {"metric{labels}": {metric, labels, count}} */
    json_t *pending;      /* [{pending_id, service, action, why}] */
    json_t *blocking;     /* {"svc\x1fwhat": {service, what, count}} */
} digest_acc;

static void add_action(digest_acc *a, const json_t *p, const char *svc)
{
    const char *outcome = str(p, "outcome");
    bool ok = !strcmp(outcome, "ok");
    if (!ok && strcmp(outcome, "failed") != 0)
        return; /* recorded (dry run) or would: nothing was done */
    char key[400];
    snprintf(key, sizeof key, "%s\x1f%s", svc, str(p, "action"));
    json_t *o = json_object_get(a->actions, key);
    if (!o) {
        o = json_pack("{s:s, s:s, s:i, s:i}", "service", svc, "action", str(p, "action"), "ok", 0, "failed", 0);
        json_object_set_new(a->actions, key, o);
    }
    const char *f = ok ? "ok" : "failed";
    json_object_set_new(o, f, json_integer(json_integer_value(json_object_get(o, f)) + 1));
    *(ok ? &a->actions_ok : &a->actions_failed) += 1;
    /* an approval decides a pending action: "approved #N" */
    const char *r = strstr(str(p, "reason"), "approved #");
    if (r) {
        long long id = atoll(r + 10);
        size_t i;
        json_t *v;
        json_array_foreach(a->pending, i, v)
            if (json_integer_value(json_object_get(v, "pending_id")) == id) {
                json_array_remove(a->pending, i);
                break;
            }
    }
}

static void add_block(digest_acc *a, const char *svc, const char *what)
{
    char key[400];
    snprintf(key, sizeof key, "%s\x1f%s", svc, what);
    json_t *o = json_object_get(a->blocking, key);
    if (!o) {
        o = json_pack("{s:s, s:s, s:i}", "service", svc, "what", what, "count", 0);
        json_object_set_new(a->blocking, key, o);
    }
    json_object_set_new(o, "count", json_integer(json_integer_value(json_object_get(o, "count")) + 1));
}

/* A rejection decides the pending action of the same service and text. */
static void reject_pending(digest_acc *a, const char *svc, const char *action)
{
    size_t i;
    json_t *v;
    json_array_foreach(a->pending, i, v)
        if (!strcmp(str(v, "service"), svc) && !strcmp(str(v, "action"), action)) {
            json_array_remove(a->pending, i);
            return;
        }
}

static void take(digest_acc *a, const mem_event *ev)
{
    const char *t = ev->type, *svc = ev->source;
    json_t *p = json_loads(ev->payload, 0, NULL);
    if (!p)
        return;
    if (!strcmp(t, "incident.open")) {
        a->opened++;
        bump(a->by_service, svc, "opened");
    } else if (!strcmp(t, "incident.resolved")) {
        a->resolved++;
        bump(a->by_service, svc, "resolved");
        json_int_t ms = json_integer_value(json_object_get(p, "time_to_heal_ms"));
        if (ms > 0) {
            a->mttm_sum += (double)ms;
            a->mitigated++;
        }
    } else if (!strcmp(t, "incident.failed")) {
        a->failed++;
        bump(a->by_service, svc, "failed");
    } else if (!strcmp(t, "anomaly.episode")) {
        if (!strcmp(str(p, "state"), "open")) {
            a->episodes++;
            const char *first = str(json_object_get(p, "first"), "metric");
            count(a->episodes_by, *first ? first : "?");
        }
    } else if (!strcmp(t, "anomaly")) {
        count(a->anomalies, str(p, "metric"));
        if (!strcmp(str(p, "reason"), "drift")) {
            const char *key = *str(p, "key") ? str(p, "key") : str(p, "metric");
            json_t *o = json_object_get(a->drifts, key);
            if (!o) {
                o = json_pack("{s:s, s:O?, s:i, s:s}", "metric", key, "labels",
                              json_object_get(p, "labels"), "count", 0, "summary", str(p, "summary"));
                json_object_set_new(a->drifts, key, o);
            }
            json_object_set_new(o, "count", json_integer(json_integer_value(json_object_get(o, "count")) + 1));
        }
    } else if (!strcmp(t, "log.template.new")) {
        const char *lv = str(p, "level");
        if ((!strcmp(lv, "error") || !strcmp(lv, "critical")) && json_array_size(a->templates) < DIGEST_LIST_MAX)
            json_array_append_new(a->templates,
                                  json_pack("{s:s, s:s}", "source", str(p, "source"), "template", str(p, "template")));
    } else if (!strcmp(t, "service.restart")) {
        a->restarts_n++;
        count(a->restarts, svc);
    } else if (!strcmp(t, "service.exit")) {
        count(a->exits, svc);
    } else if (!strcmp(t, "heal.action")) {
        add_action(a, p, svc);
    } else if (!strcmp(t, "heal.pending")) {
        if (json_array_size(a->pending) < DIGEST_LIST_MAX)
            json_array_append_new(a->pending, json_pack("{s:O?, s:s, s:s, s:s}", "pending_id",
                                                        json_object_get(p, "pending_id"), "service", svc, "action",
                                                        str(p, "action"), "why", str(p, "why")));
    } else if (!strcmp(t, "heal.rejected")) {
        reject_pending(a, svc, str(p, "action"));
        char what[300];
        snprintf(what, sizeof what, "rejected: %s", str(p, "action"));
        add_block(a, svc, what);
    } else if (!strcmp(t, "heal.refused")) {
        char what[300];
        snprintf(what, sizeof what, "refused (%s): %s", str(p, "refusal"), str(p, "action"));
        add_block(a, svc, what);
    }
    json_decref(p);
}

/* ---- slow trends: filesystems filling up -------------------------------------------- */

static bool trend(mem_t *mem, int id, int64_t from, int64_t to, double *first, double *last, double *hours)
{
    mem_point *pt = NULL;
    size_t n = 0;
    int src;
    char err[128];
    if (mem_query(mem, id, from, to, 0, 48, &pt, &n, &src, err, sizeof err) != 0 || n < 2) {
        free(pt);
        return false;
    }
    *first = pt[0].mean;
    *last = pt[n - 1].mean;
    *hours = (double)(pt[n - 1].ts - pt[0].ts) / 3600000.0;
    free(pt);
    return *hours >= 0.5 && isfinite(*first) && isfinite(*last);
}

static json_t *filling(mem_t *mem, int64_t from, int64_t to)
{
    json_t *out = json_array();
    mem_series_info *s = NULL;
    size_t n = 0;
    if (mem_series_snapshot(mem, &s, &n) != 0)
        return out;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s[i].name, "fs.used_bytes") != 0)
            continue;
        double a, b, h;
        if (!trend(mem, s[i].id, from, to, &a, &b, &h) || b <= a)
            continue;
        double rate = (b - a) / h; /* bytes per hour */
        int av = mem_series_find(mem, "fs.avail_bytes", s[i].labels);
        double avail = NAN;
        int64_t ts;
        if (av >= 0)
            mem_series_last(mem, av, &avail, &ts);
        if (!isfinite(avail) || avail <= 0)
            continue;
        double full_ms = avail / rate * 3600000.0;
        if (full_ms > (double)DIGEST_FULL_SOON_MS)
            continue;
        json_array_append_new(out, json_pack("{s:o, s:f, s:f, s:f, s:I}", "labels", mem_labels_json(s[i].labels),
                                             "grew_bytes", b - a, "bytes_per_hour", rate, "avail_bytes", avail,
                                             "full_in_ms", (json_int_t)full_ms));
    }
    free(s);
    return out;
}

/* ---- the digest's text ------------------------------------------------------------ */

static void line_add(char **buf, size_t *len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void line_add(char **buf, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    char *nb = realloc(*buf, *len + (size_t)n + 1);
    if (nb) {
        memcpy(nb + *len, s, (size_t)n + 1);
        *buf = nb;
        *len += (size_t)n;
    }
    free(s);
}

static void human_ms(double ms, char *out, size_t n)
{
    if (ms < 1000)
        snprintf(out, n, "%.0f ms", ms);
    else if (ms < 60000)
        snprintf(out, n, "%.1f s", ms / 1000);
    else if (ms < 3600000)
        snprintf(out, n, "%.0f min", ms / 60000);
    else if (ms < 2 * 86400000.0)
        snprintf(out, n, "%.1f h", ms / 3600000);
    else
        snprintf(out, n, "%.1f days", ms / 86400000);
}

/* "web 2, db 1" from {name: n} or {name: {field: n}}. */
static void list_counts(char **buf, size_t *len, const json_t *obj, const char *field)
{
    const char *k;
    json_t *v;
    bool first = true;
    json_object_foreach((json_t *)obj, k, v) {
        json_int_t n = field ? json_integer_value(json_object_get(v, field)) : json_integer_value(v);
        if (n <= 0)
            continue;
        line_add(buf, len, "%s%s %lld", first ? " (" : ", ", *k ? k : "machine", (long long)n);
        first = false;
    }
    if (!first)
        line_add(buf, len, ")");
}

static char *digest_text(const json_t *d)
{
    char *b = NULL;
    size_t n = 0;
    const json_t *h = json_object_get(d, "happened"), *he = json_object_get(d, "healed"),
                 *dr = json_object_get(d, "drifting"), *pr = json_object_get(d, "proposes");
    const json_t *inc = json_object_get(h, "incidents"), *bs = json_object_get(inc, "by_service");
    line_add(&b, &n, "Digest of %s\n", str(d, "day"));
    line_add(&b, &n, "What happened\n  incidents: %lld opened",
             (long long)json_integer_value(json_object_get(inc, "opened")));
    list_counts(&b, &n, bs, "opened");
    line_add(&b, &n, ", %lld resolved, %lld failed",
             (long long)json_integer_value(json_object_get(inc, "resolved")),
             (long long)json_integer_value(json_object_get(inc, "failed")));
    list_counts(&b, &n, bs, "failed");
    line_add(&b, &n, "\n  restarts: %lld", (long long)json_integer_value(json_object_get(h, "restarts_total")));
    list_counts(&b, &n, json_object_get(h, "restarts"), NULL);
    line_add(&b, &n, "\n  anomaly episodes: %lld", (long long)json_integer_value(json_object_get(h, "anomaly_episodes")));
    list_counts(&b, &n, json_object_get(h, "episodes_by_first_metric"), NULL);
    if (json_object_size(json_object_get(h, "anomalies_by_metric"))) {
        line_add(&b, &n, "; anomalous series by metric");
        list_counts(&b, &n, json_object_get(h, "anomalies_by_metric"), NULL);
    }
    line_add(&b, &n, "\n  new error log templates: %zu\n", json_array_size(json_object_get(h, "error_templates")));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(h, "error_templates"), i, v)
        line_add(&b, &n, "    %s: %.160s\n", str(v, "source"), str(v, "template"));

    const json_t *acts = json_object_get(he, "actions");
    line_add(&b, &n, "What was healed\n%s", json_array_size(acts) ? "" : "  nothing was done\n");
    json_array_foreach(acts, i, v)
        line_add(&b, &n, "  %s %s: %lld ok, %lld failed\n", str(v, "service"), str(v, "action"),
                 (long long)json_integer_value(json_object_get(v, "ok")),
                 (long long)json_integer_value(json_object_get(v, "failed")));
    json_t *mt = json_object_get(he, "mean_time_to_mitigate_ms");
    if (json_is_number(mt)) {
        char t[32];
        human_ms(json_number_value(mt), t, sizeof t);
        line_add(&b, &n, "  mean time to mitigate: %s over %lld incident(s)\n", t,
                 (long long)json_integer_value(json_object_get(he, "mitigated")));
    }

    const json_t *drs = json_object_get(dr, "drifts"), *fs = json_object_get(dr, "filesystems");
    line_add(&b, &n, "What is drifting\n%s", json_array_size(drs) || json_array_size(fs) ? "" : "  nothing\n");
    json_array_foreach(drs, i, v)
        line_add(&b, &n, "  drift in %s (%lld detection(s))\n", str(v, "metric"),
                 (long long)json_integer_value(json_object_get(v, "count")));
    json_array_foreach(fs, i, v) {
        char t[32];
        human_ms((double)json_integer_value(json_object_get(v, "full_in_ms")), t, sizeof t);
        const char *mp = str(json_object_get(v, "labels"), "mountpoint");
        line_add(&b, &n, "  filesystem %s grows %.1f MB/h: full in %s\n", *mp ? mp : "?",
                 json_number_value(json_object_get(v, "bytes_per_hour")) / 1e6, t);
    }

    const json_t *pend = json_object_get(pr, "pending"), *fail = json_object_get(pr, "failing_services"),
                 *blk = json_object_get(pr, "blocking");
    line_add(&b, &n, "What it proposes\n%s",
             json_array_size(pend) || json_array_size(fail) || json_array_size(blk) ? "" : "  nothing\n");
    json_array_foreach(pend, i, v)
        line_add(&b, &n, "  decide pending action #%lld: %s %s\n",
                 (long long)json_integer_value(json_object_get(v, "pending_id")), str(v, "service"),
                 str(v, "action"));
    json_array_foreach(fail, i, v)
        line_add(&b, &n, "  look at %s: it failed to heal %lld times\n", str(v, "service"),
                 (long long)json_integer_value(json_object_get(v, "failed")));
    json_array_foreach(blk, i, v)
        line_add(&b, &n, "  %s keeps being %s (%lld times): review the preference or policy\n", str(v, "service"),
                 str(v, "what"), (long long)json_integer_value(json_object_get(v, "count")));
    return b;
}

/* ---- building ------------------------------------------------------------------------ */

static json_t *values_of(json_t *obj, const char *min_field, int min)
{
    json_t *a = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
        if (!min_field || json_integer_value(json_object_get(v, min_field)) >= min)
            json_array_append(a, v);
    return a;
}

static json_t *failing(json_t *by_service)
{
    json_t *a = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(by_service, k, v) {
        json_int_t f = json_integer_value(json_object_get(v, "failed"));
        if (f >= DIGEST_REPEAT)
            json_array_append_new(a, json_pack("{s:s, s:I}", "service", k, "failed", f));
    }
    return a;
}

static void acc_free(digest_acc *a)
{
    json_decref(a->by_service);
    json_decref(a->anomalies);
    json_decref(a->episodes_by);
    json_decref(a->templates);
    json_decref(a->restarts);
    json_decref(a->exits);
    json_decref(a->actions);
    json_decref(a->drifts);
    json_decref(a->pending);
    json_decref(a->blocking);
}

/* Reads the day's events in id order; the count of events read, or -errno. */
static int scan(mem_t *mem, int64_t from, int64_t to, digest_acc *a, char *err, size_t errlen)
{
    int total = 0;
    int64_t after = 0;
    for (;;) {
        mem_event_query q = {.from = from, .to = to, .after_id = after, .limit = 5000, .ascending = true};
        mem_event *ev = NULL;
        size_t n = 0;
        int rc = mem_events_query(mem, &q, &ev, &n, err, errlen);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < n; i++) {
            after = ev[i].id;
            if (!strncmp(ev[i].type, "brain.d", 7)) /* its own digests and dreams */
                continue;
            total++;
            take(a, &ev[i]);
        }
        mem_events_free(ev, n);
        if (n < 5000)
            return total;
    }
}

json_t *brain_digest_build(mem_t *mem, const char *day, char *err, size_t errlen)
{
    int64_t from, to;
    if (brain_day_bounds(day, &from, &to) != 0) {
        snprintf(err, errlen, "'%.32s' is not a day (expected YYYY-MM-DD)", day ? day : "");
        return NULL;
    }
    if (!mem) {
        snprintf(err, errlen, "no memory to build the digest from");
        return NULL;
    }
    digest_acc a = {.by_service = json_object(), .anomalies = json_object(), .episodes_by = json_object(),
                    .templates = json_array(),
                    .restarts = json_object(), .exits = json_object(), .actions = json_object(),
                    .drifts = json_object(), .pending = json_array(), .blocking = json_object()};
    int nev = scan(mem, from, to, &a, err, errlen);
    if (nev <= 0) {
        if (nev == 0)
            snprintf(err, errlen, "no events on %s", day);
        acc_free(&a);
        return NULL;
    }
    json_t *inc = json_pack("{s:i, s:i, s:i, s:O}", "opened", a.opened, "resolved", a.resolved, "failed", a.failed,
                            "by_service", a.by_service);
    json_t *happened = json_pack("{s:o, s:i, s:O, s:O, s:O, s:i, s:O, s:O}", "incidents", inc, "anomaly_episodes",
                                 a.episodes, "episodes_by_first_metric", a.episodes_by, "anomalies_by_metric",
                                 a.anomalies, "error_templates", a.templates,
                                 "restarts_total", a.restarts_n, "restarts", a.restarts, "exits", a.exits);
    json_t *healed = json_pack("{s:o, s:i, s:i, s:i}", "actions", values_of(a.actions, NULL, 0), "actions_ok",
                               a.actions_ok, "actions_failed", a.actions_failed, "mitigated", a.mitigated);
    json_object_set_new(healed, "mean_time_to_mitigate_ms",
                        a.mitigated ? json_integer((json_int_t)llround(a.mttm_sum / a.mitigated)) : json_null());
    json_t *drifting = json_pack("{s:o, s:o}", "drifts", values_of(a.drifts, NULL, 0), "filesystems",
                                 filling(mem, from, to));
    json_t *proposes = json_pack("{s:O, s:o, s:o}", "pending", a.pending, "failing_services", failing(a.by_service),
                                 "blocking", values_of(a.blocking, "count", DIGEST_REPEAT));
    json_t *d = json_pack("{s:s, s:I, s:I, s:i, s:o, s:o, s:o, s:o}", "day", day, "from_ms", (json_int_t)from,
                          "to_ms", (json_int_t)to, "events", nev, "happened", happened, "healed", healed, "drifting",
                          drifting, "proposes", proposes);
    acc_free(&a);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    char *text = digest_text(d);
    json_object_set_new(d, "text", json_string(text ? text : ""));
    free(text);
    return d;
}

char *brain_digest_mem_json(mem_t *mem, const char *day, char *err, size_t errlen)
{
    char today[11];
    if (!day || !*day) {
        brain_day_of(core_now_ms(), today);
        day = today;
    }
    json_t *d = brain_digest_build(mem, day, err, errlen);
    char *t = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    return t;
}

char *brain_digest_json(brain *b, const char *day, char *err, size_t errlen)
{
    return brain_digest_mem_json(b ? brain_mind_of(b)->mem : NULL, day, err, errlen);
}
