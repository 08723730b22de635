/* ask_answer.c: the structured answer of each kind of question, made from
 * templates over the records gathered for it (always available: no model).
 * Each sentence ends with the refs of the records it rests on. */
#include "brain/ask_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL

static const char *jstr(const json_t *o, const char *k, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s && *s ? s : dflt;
}

static json_t *refs1(const char *r)
{
    return json_pack("[s]", r);
}

static void add_ref(json_t *refs, const char *r)
{
    json_array_append_new(refs, json_string(r));
}

/* The words naming the window asked about, for "nothing found" sentences. */
static void window_words(const ask_ctx *c, char *buf, size_t n)
{
    if (c->q.time_text[0])
        snprintf(buf, n, " %s", c->q.time_text);
    else
        buf[0] = 0;
}

/* The question's window: [from, to], from its moment (+- pad) or span, else
 * the last `dflt` ms. */
static void window(const ask_ctx *c, int64_t pad, int64_t dflt, int64_t *from, int64_t *to)
{
    if (c->q.at_ms) {
        *from = c->q.at_ms - pad, *to = c->q.at_ms + pad;
    } else if (c->q.from_ms) {
        *from = c->q.from_ms, *to = c->q.to_ms ? c->q.to_ms : c->now_ms;
    } else {
        *from = c->now_ms - dflt, *to = c->now_ms;
    }
}

/* The heal incident of service closest to ts (within [ts - 5 s, ts + 2 min]); NULL when none. */
static const json_t *incident_near(const ask_ctx *c, const char *service, int64_t ts)
{
    const json_t *best = NULL;
    int64_t bestd = 0;
    size_t i;
    json_t *inc;
    json_array_foreach(c->incidents, i, inc) {
        if (service && *service && strcmp(jstr(inc, "service", ""), service))
            continue;
        int64_t d = json_integer_value(json_object_get(inc, "detected_ms")) - ts;
        if (d < -5000 || d > 2 * MIN_MS)
            continue;
        if (!best || llabs(d) < bestd)
            best = inc, bestd = llabs(d);
    }
    return best;
}

/* ---- why did X restart / fail / stop ------------------------------------------------------ */

static const mem_event *nearest(const mem_event *ev, size_t n, int64_t at)
{
    const mem_event *best = NULL;
    for (size_t i = 0; i < n; i++) /* newest first: without a moment, the newest */
        if (!best || (at && llabs(ev[i].ts - at) < llabs(best->ts - at)))
            best = &ev[i];
    return best;
}

static void say_diagnosis(ask_ctx *c, json_t *parts, const json_t *inc)
{
    json_t *d = ask_incident_diagnosis(c, inc);
    if (!d)
        return;
    const char *r = ask_incident_rec(c, inc);
    json_t *refs = refs1(r);
    ask_say(parts, refs, "The diagnosis was %s (confidence %.2f): %s.", jstr(d, "fault_type", "unknown"),
            json_number_value(json_object_get(d, "confidence")), jstr(d, "root_cause", "no root cause named"));
    json_decref(refs);
    json_decref(d);
}

static void say_heal_after(ask_ctx *c, json_t *parts, const char *svc, int64_t ts)
{
    mem_event *ev;
    size_t n;
    if (ask_events(c, "heal.action", svc, ts, ts + 10 * MIN_MS, 5, &ev, &n) < 0 || !n) {
        mem_events_free(ev, n);
        return;
    }
    json_t *refs = json_array();
    char acts[512] = "";
    for (size_t i = n; i-- > 0;) { /* oldest first */
        json_t *p = json_loads(ev[i].payload, 0, NULL);
        size_t l = strlen(acts);
        if (l < sizeof acts - 64)
            snprintf(acts + l, sizeof acts - l, "%s%s (%s)", l ? ", " : "", jstr(p, "action", "?"),
                     jstr(p, "outcome", jstr(p, "verdict", "?")));
        json_decref(p);
        add_ref(refs, ask_event_rec(c, &ev[i]));
    }
    ask_say(parts, refs, "Heal then acted on %s: %s.", svc, acts);
    json_decref(refs);
    mem_events_free(ev, n);
}

static void say_changes_before(ask_ctx *c, json_t *parts, const char *svc, int64_t ts)
{
    static const char *const types[] = {"file.changed", "config.reload"};
    json_t *refs = json_array();
    char list[1024] = "";
    int k = 0;
    for (int t = 0; t < 2; t++) {
        mem_event *ev;
        size_t n;
        if (ask_events(c, types[t], t ? NULL : svc, ts - HOUR_MS, ts, 3, &ev, &n) == 0)
            for (size_t i = 0; i < n; i++, k++) {
                add_ref(refs, ask_event_rec(c, &ev[i]));
                json_t *p = json_loads(ev[i].payload, 0, NULL);
                char when[64];
                ask_fmt_time(ev[i].ts, c->now_ms, when, sizeof when);
                size_t l = strlen(list);
                if (l < sizeof list - 300)
                    snprintf(list + l, sizeof list - l, "%s%s %s at %s", l ? "; " : "",
                             t ? "the configuration" : jstr(p, "path", "a file"), t ? "was reloaded" : "changed", when);
                json_decref(p);
            }
        mem_events_free(ev, n);
    }
    if (k)
        ask_say(parts, refs, "In the hour before: %s.", list);
    json_decref(refs);
}

/* Error logs and anomalies of svc in the minutes before ts. */
static void say_signals_before(ask_ctx *c, json_t *parts, const char *svc, int64_t ts)
{
    json_t *refs = json_array();
    mem_event *ev;
    size_t n;
    int logs = 0, anomalies = 0;
    if (ask_events(c, "log.*", svc, ts - 5 * MIN_MS, ts + 2000, 3, &ev, &n) == 0)
        for (size_t i = 0; i < n; i++)
            if (mem_severity_rank(ev[i].severity) >= mem_severity_rank("warning")) {
                add_ref(refs, ask_event_rec(c, &ev[i]));
                logs++;
            }
    mem_events_free(ev, n);
    char quoted[80];
    snprintf(quoted, sizeof quoted, "\"%s\"", svc);
    if (ask_events(c, "anomaly.episode", NULL, ts - 10 * MIN_MS, ts, 200, &ev, &n) == 0)
        for (size_t i = 0; i < n && anomalies < 3; i++)
            if (ev[i].payload && strstr(ev[i].payload, quoted)) {
                add_ref(refs, ask_event_rec(c, &ev[i]));
                anomalies++;
            }
    mem_events_free(ev, n);
    if (logs || anomalies)
        ask_say(parts, refs, "Before it: %d error log signal(s) and %d anomaly episode(s) about %s.", logs, anomalies, svc);
    json_decref(refs);
}

/* The component's process metrics (the process group's name="svc" series)
 * at their peak in the 10 minutes before ts. */
static void say_metrics_before(ask_ctx *c, json_t *parts, const char *svc, int64_t ts)
{
    static const char *const fam[] = {"process.rss_bytes", "process.cpu_percent"};
    json_t *refs = json_array();
    char text[2][96] = {"", ""};
    char want[96];
    snprintf(want, sizeof want, "name=\"%s\"", svc);
    for (int f = 0; f < 2; f++) {
        size_t n = 0;
        mem_series_info *s = ask_series(c, fam[f], &n);
        double best = NAN;
        int64_t best_ts = 0;
        const mem_series_info *bs = NULL;
        for (size_t i = 0; s && i < n; i++) {
            if (!mem_labels_subset(s[i].labels, want))
                continue;
            mem_point *pt = NULL;
            size_t np = 0;
            int src;
            char err[128];
            if (mem_query(c->m->mem, s[i].id, ts - 10 * MIN_MS, ts, 0, 64, &pt, &np, &src, err, sizeof err) < 0)
                continue;
            for (size_t k = 0; k < np; k++)
                if (pt[k].count && (isnan(best) || pt[k].max > best))
                    best = pt[k].max, best_ts = pt[k].ts, bs = &s[i];
            free(pt);
        }
        if (bs) {
            char sid[600], v[48];
            snprintf(sid, sizeof sid, "%s{%s}@%lld", bs->name, bs->labels, (long long)(best_ts / 1000));
            if (f == 0)
                ask_fmt_bytes(best, v, sizeof v);
            else
                snprintf(v, sizeof v, "%.0f%%", best);
            add_ref(refs, ask_rec(c, "metric", 0, sid, best_ts, "%s of %s peaked at %s in the 10 minutes before", bs->name,
                                  svc, v));
            snprintf(text[f], sizeof text[f], "%s %s", f ? (text[0][0] ? "its CPU at" : "its CPU peaked at") : "its memory (RSS) peaked at", v);
        }
        free(s);
    }
    if (text[0][0] || text[1][0])
        ask_say(parts, refs, "In the 10 minutes before, %s%s%s.", text[0], text[0][0] && text[1][0] ? " and " : "",
                text[1]);
    json_decref(refs);
}

static void answer_why(ask_ctx *c, json_t *parts)
{
    const char *svc = c->q.component[0] ? c->q.component : NULL;
    int64_t from, to;
    window(c, 10 * MIN_MS, 7 * DAY_MS, &from, &to);
    if (c->q.at_ms && c->q.time_text[0] && !strchr(c->q.time_text, ':'))
        window(c, HOUR_MS, 0, &from, &to); /* "2 hours ago": looser than a clock time */
    mem_event *ev;
    size_t n;
    char when[64], ww[80];
    window_words(c, ww, sizeof ww);
    ask_events(c, "service.exit", svc, from, to, 50, &ev, &n);
    const mem_event *x = nearest(ev, n, c->q.at_ms);
    if (x) {
        json_t *p = json_loads(x->payload, 0, NULL);
        int sig = (int)json_integer_value(json_object_get(p, "signal"));
        int st = (int)json_integer_value(json_object_get(p, "status"));
        const char *r = ask_event_rec(c, x);
        ask_fmt_time(x->ts, c->now_ms, when, sizeof when);
        json_t *refs = refs1(r);
        const json_t *inc = incident_near(c, x->source, x->ts);
        if (inc)
            add_ref(refs, ask_incident_rec(c, inc));
        char why[160];
        if (sig > 0)
            snprintf(why, sizeof why, "it was killed by signal %d (%s)", sig, sig == 9 ? "SIGKILL" : sig == 15 ? "SIGTERM" : sig == 11 ? "SIGSEGV" : sig == 6 ? "SIGABRT" : "see the record");
        else
            snprintf(why, sizeof why, "it exited with status %d", st);
        const char *reason = jstr(p, "reason", "");
        bool say_reason = *reason && !strstr(reason, "killed by") && !strstr(reason, "exited with");
        const char *did = !strcmp(c->q.event, "crash") ? "crashed" : !strcmp(c->q.event, "fail") ? "failed"
                          : !strcmp(c->q.event, "stop")                                ? "stopped"
                                                                                       : "restarted";
        ask_say(parts, refs, "%s %s at %s because %s%s%s.", x->source, did, when, why,
                say_reason ? ": " : "", say_reason ? reason : "");
        json_decref(refs);
        json_decref(p);
        if (inc)
            say_diagnosis(c, parts, inc);
        json_t *tr = json_array();
        if (ask_templates(c, x->source, x->ts - 5 * MIN_MS, x->ts + MIN_MS, tr))
            ask_say(parts, tr, "Its log had errors just before.");
        json_decref(tr);
        say_signals_before(c, parts, x->source, x->ts);
        say_metrics_before(c, parts, x->source, x->ts);
        say_changes_before(c, parts, x->source, x->ts);
        say_heal_after(c, parts, x->source, x->ts);
        if (n > 1)
            ask_say(parts, NULL, "%s exited %zu times in the window asked about; this is the %s one.", x->source, n,
                    c->q.at_ms ? "closest" : "latest");
        mem_events_free(ev, n);
        return;
    }
    mem_events_free(ev, n);
    /* no exit: an incident (a failed probe, a rule, a diagnosis) */
    const json_t *best = NULL;
    size_t i;
    json_t *inc;
    json_array_foreach(c->incidents, i, inc) {
        int64_t t = json_integer_value(json_object_get(inc, "detected_ms"));
        if ((svc && strcmp(jstr(inc, "service", ""), svc)) || t < from || t > to)
            continue;
        if (!best || (c->q.at_ms && llabs(t - c->q.at_ms) <
                                        llabs(json_integer_value(json_object_get(best, "detected_ms")) - c->q.at_ms)))
            best = inc;
    }
    if (best) {
        ask_fmt_time(json_integer_value(json_object_get(best, "detected_ms")), c->now_ms, when, sizeof when);
        json_t *refs = refs1(ask_incident_rec(c, best));
        ask_say(parts, refs, "%s had an incident at %s: %s (now %s).", jstr(best, "service", "?"), when,
                jstr(best, "what", "?"), jstr(best, "state", "?"));
        json_decref(refs);
        say_diagnosis(c, parts, best);
        return;
    }
    ask_say(parts, NULL, "I found no record of %s %s%s%s.", svc ? svc : "any service",
            !strcmp(c->q.event, "restart") || !c->q.event[0] ? "restarting or failing" : "failing or stopping", ww,
            c->q.at_ms || c->q.from_ms ? "" : " in the last 7 days");
    /* the latest one outside the window helps */
    if (ask_events(c, "service.exit", svc, 0, c->now_ms, 1, &ev, &n) == 0 && n) {
        ask_fmt_time(ev[0].ts, c->now_ms, when, sizeof when);
        json_t *refs = refs1(ask_event_rec(c, &ev[0]));
        ask_say(parts, refs, "The last recorded exit of %s was at %s.", ev[0].source, when);
        json_decref(refs);
    }
    mem_events_free(ev, n);
}

/* ---- what changed --------------------------------------------------------------------------- */

/* When the component last failed (exit or incident) before `before`: 0 when never. */
static int64_t last_failure(ask_ctx *c, const char *svc, int64_t before, json_t *refs)
{
    mem_event *ev;
    size_t n;
    int64_t t = 0;
    if (ask_events(c, "service.exit", svc, before - 30 * DAY_MS, before, 1, &ev, &n) == 0 && n) {
        t = ev[0].ts;
        add_ref(refs, ask_event_rec(c, &ev[0]));
    }
    mem_events_free(ev, n);
    size_t i;
    json_t *inc;
    json_array_foreach(c->incidents, i, inc) {
        int64_t d = json_integer_value(json_object_get(inc, "detected_ms"));
        if (!strcmp(jstr(inc, "service", ""), svc) && d <= before && d > t + 2 * MIN_MS) {
            json_array_clear(refs);
            add_ref(refs, ask_incident_rec(c, inc));
            t = d;
            break;
        }
    }
    return t;
}

static void answer_changes(ask_ctx *c, json_t *parts)
{
    const char *svc = c->q.component[0] ? c->q.component : NULL;
    int64_t from, to;
    char a[64], b[64];
    json_t *anchor = json_array();
    if (c->q.from_ms) {
        from = c->q.from_ms, to = c->q.to_ms ? c->q.to_ms : c->now_ms;
    } else if (c->q.at_ms) {
        from = c->q.at_ms - 6 * HOUR_MS, to = c->q.at_ms;
    } else if (svc && c->q.before) {
        to = last_failure(c, svc, c->now_ms, anchor);
        if (!to)
            to = c->now_ms;
        from = to - 6 * HOUR_MS;
    } else {
        from = c->now_ms - DAY_MS, to = c->now_ms;
    }
    ask_fmt_time(from, c->now_ms, a, sizeof a);
    ask_fmt_time(to, c->now_ms, b, sizeof b);
    if (json_array_size(anchor))
        ask_say(parts, anchor, "%s last failed at %s; looking at the 6 hours before.", svc, b);
    json_decref(anchor);
    static const char *const types[] = {"file.changed", "file.restored", "config.reload", "heal.action"};
    static const char *const what[] = {"file change(s)", "file restore(s) by heal", "configuration reload(s)",
                                       "heal action(s)"};
    int total = 0;
    for (int t = 0; t < 4; t++) {
        mem_event *ev;
        size_t n;
        const char *src = t == 2 ? NULL : svc;
        if (ask_events(c, types[t], src, from, to, 10, &ev, &n) < 0 || !n) {
            mem_events_free(ev, n);
            continue;
        }
        json_t *refs = json_array();
        char list[1024] = "";
        for (size_t i = 0; i < n; i++) {
            add_ref(refs, ask_event_rec(c, &ev[i]));
            json_t *p = json_loads(ev[i].payload, 0, NULL);
            char when[64];
            ask_fmt_time(ev[i].ts, c->now_ms, when, sizeof when);
            size_t l = strlen(list);
            if (l < sizeof list - 200 && i < 5)
                snprintf(list + l, sizeof list - l, "%s%s at %s", l ? "; " : "",
                         t < 2 ? jstr(p, "path", "?") : t == 2 ? jstr(p, "config", "the configuration") : jstr(p, "action", "?"),
                         when);
            json_decref(p);
        }
        ask_say(parts, refs, "%zu %s: %s%s.", n, what[t], list, n > 5 ? "; ..." : "");
        total += (int)n;
        json_decref(refs);
        mem_events_free(ev, n);
    }
    json_t *refs = json_array(), *texts = json_array();
    int np = ask_packages(c, from, to, refs, texts);
    if (np) {
        char list[1024] = "";
        size_t i;
        json_t *x;
        json_array_foreach(texts, i, x) {
            size_t l = strlen(list);
            if (l < sizeof list - 200 && i < 5)
                snprintf(list + l, sizeof list - l, "%s%s", l ? "; " : "", json_string_value(x));
        }
        ask_say(parts, refs, "%d package change(s): %s%s.", np, list, np > 5 ? "; ..." : "");
    }
    total += np;
    json_decref(refs);
    json_decref(texts);
    if (!total)
        ask_say(parts, NULL,
                "Nothing changed that I know of between %s and %s%s%s (I watch the configured services' files, "
                "configuration reloads, heal's actions and dpkg's log).",
                a, b, svc ? " for " : "", svc ? svc : "");
    else
        json_array_insert_new(parts, 0, json_sprintf("Between %s and %s%s%s, %d change(s) were recorded.", a, b,
                                                     svc ? " for " : "", svc ? svc : "", total));
}

/* ---- what is using the disk ------------------------------------------------------------------ */

static int by_value_desc(const void *x, const void *y)
{
    double a = ((const mem_series_info *)x)->last, b = ((const mem_series_info *)y)->last;
    a = isnan(a) ? -1 : a, b = isnan(b) ? -1 : b;
    return a < b ? 1 : a > b ? -1 : 0;
}

static void metric_sid(const mem_series_info *s, char *buf, size_t n)
{
    snprintf(buf, n, "%s{%s}@%" PRId64, s->name, s->labels, s->last_ts / 1000);
}

/* A label's value out of canonical labels. */
static void label(const char *labels, const char *key, char *out, size_t n)
{
    json_t *o = mem_labels_json(labels);
    snprintf(out, n, "%s", jstr(o, key, ""));
    json_decref(o);
}

static int by_bytes_desc(const void *x, const void *y)
{
    json_int_t a = json_integer_value(json_object_get(*(json_t *const *)x, "bytes"));
    json_int_t b = json_integer_value(json_object_get(*(json_t *const *)y, "bytes"));
    return a < b ? 1 : a > b ? -1 : 0;
}

static void say_dirs(ask_ctx *c, json_t *parts, const char *const *dirs, int ndirs, const char *mount)
{
    json_t *all = json_array();
    for (int i = 0; i < ndirs; i++)
        ask_dir_sizes(c, dirs[i], all);
    size_t n = json_array_size(all);
    if (!n) {
        json_decref(all);
        return;
    }
    json_t **v = malloc(n * sizeof *v);
    for (size_t i = 0; v && i < n; i++)
        v[i] = json_array_get(all, i);
    if (v)
        qsort(v, n, sizeof *v, by_bytes_desc);
    json_t *refs = json_array();
    char list[1024] = "";
    bool partial = false;
    for (size_t i = 0; v && i < n && i < 5; i++) {
        char sz[32];
        const char *path = jstr(v[i], "path", "?");
        ask_fmt_bytes((double)json_integer_value(json_object_get(v[i], "bytes")), sz, sizeof sz);
        bool part = json_is_true(json_object_get(v[i], "partial"));
        partial |= part;
        add_ref(refs, ask_rec(c, "path", 0, path, c->now_ms, "%s: %s%s (measured now)", path, sz, part ? " or more" : ""));
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s (%s%s)", l ? ", " : "", path, sz, part ? "+" : "");
    }
    ask_say(parts, refs, "The largest under %s%s: %s%s.", mount, ndirs > 1 ? "'s data directories" : "", list,
            partial ? " (the walk stopped at its time limit: sizes marked + are at least that)" : "");
    json_decref(refs);
    free(v);
    json_decref(all);
}

static void answer_disk_space(ask_ctx *c, json_t *parts)
{
    size_t n = 0;
    mem_series_info *s = ask_series(c, "fs.used_percent", &n);
    char fullest[256] = "";
    if (s && n) {
        qsort(s, n, sizeof *s, by_value_desc);
        json_t *refs = json_array();
        char list[1024] = "";
        for (size_t i = 0; i < n && i < 5; i++) {
            if (isnan(s[i].last) || (i > 0 && s[i].last < 1)) /* empty tmpfs and the like: not worth a line */
                continue;
            char mp[256], sid[600];
            label(s[i].labels, "mountpoint", mp, sizeof mp);
            metric_sid(&s[i], sid, sizeof sid);
            add_ref(refs, ask_rec(c, "metric", 0, sid, s[i].last_ts, "%s is %.1f%% full", mp, s[i].last));
            size_t l = strlen(list);
            snprintf(list + l, sizeof list - l, "%s%s %.1f%%", l ? ", " : "", mp, s[i].last);
            if (!fullest[0])
                snprintf(fullest, sizeof fullest, "%s", mp);
        }
        if (json_array_size(refs))
            ask_say(parts, refs, "Filesystems by use: %s.", list);
        json_decref(refs);
    }
    free(s);
    if (c->q.path[0]) {
        struct statvfs v;
        if (statvfs(c->q.path, &v) == 0 && v.f_blocks) {
            double used = (double)(v.f_blocks - v.f_bfree) * (double)v.f_frsize;
            double pct = 100.0 * (double)(v.f_blocks - v.f_bfree) / (double)(v.f_blocks - v.f_bfree + v.f_bavail);
            char sz[32];
            ask_fmt_bytes(used, sz, sizeof sz);
            json_t *refs = refs1(ask_rec(c, "statfs", 0, c->q.path, c->now_ms, "the filesystem of %s: %s used, %.1f%% full",
                                         c->q.path, sz, pct));
            ask_say(parts, refs, "The filesystem holding %s is %.1f%% full (%s used).", c->q.path, pct, sz);
            json_decref(refs);
        }
        const char *d[] = {c->q.path};
        say_dirs(c, parts, d, 1, c->q.path);
        if (!json_array_size(parts))
            ask_say(parts, NULL, "I cannot read %s.", c->q.path);
        return;
    }
    static const char *const common[] = {"/var/log", "/var/lib", "/var/cache", "/var/tmp", "/tmp", "/home",
                                         "/srv", "/opt", "/var/spool", "/var/www", "/root"};
    const char *dirs[16];
    int nd = 0;
    struct stat mst, dst;
    if (!fullest[0])
        snprintf(fullest, sizeof fullest, "/");
    if (stat(fullest, &mst) == 0)
        for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
            if (stat(common[i], &dst) == 0 && dst.st_dev == mst.st_dev)
                dirs[nd++] = common[i];
    if (nd)
        say_dirs(c, parts, dirs, nd, fullest);
    if (!json_array_size(parts))
        ask_say(parts, NULL, "I have no filesystem metrics and could not measure any directory.");
}

/* Sums read + write rates per entity label of two families into refs/list. */
static void io_top(ask_ctx *c, json_t *parts, const char *rd, const char *wr, const char *key, const char *what)
{
    size_t nr = 0, nw = 0;
    mem_series_info *r = ask_series(c, rd, &nr), *w = ask_series(c, wr, &nw);
    if (!r || !nr) {
        free(r), free(w);
        return;
    }
    for (size_t i = 0; i < nr; i++) {
        double sum = isnan(r[i].last) ? 0 : r[i].last;
        for (size_t j = 0; w && j < nw; j++)
            if (!strcmp(w[j].labels, r[i].labels) && !isnan(w[j].last))
                sum += w[j].last;
        r[i].last = sum;
    }
    qsort(r, nr, sizeof *r, by_value_desc);
    json_t *refs = json_array();
    char list[1024] = "";
    for (size_t i = 0; i < nr && i < 5 && r[i].last > 0; i++) {
        char name[256], sz[32], sid[600];
        label(r[i].labels, key, name, sizeof name);
        ask_fmt_bytes(r[i].last, sz, sizeof sz);
        metric_sid(&r[i], sid, sizeof sid);
        add_ref(refs, ask_rec(c, "metric", 0, sid, r[i].last_ts, "%s %s: %s/s read + write", what, name, sz));
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s %s/s", l ? ", " : "", name, sz);
    }
    if (json_array_size(refs))
        ask_say(parts, refs, "%ss by disk reads + writes now: %s.", what, list);
    else
        ask_say(parts, NULL, "No watched %s reads or writes the disk now.", what);
    json_decref(refs);
    free(r), free(w);
}

static void answer_disk_io(ask_ctx *c, json_t *parts)
{
    io_top(c, parts, "process.io_read_bytes_per_second", "process.io_write_bytes_per_second", "name", "process");
    io_top(c, parts, "cgroup.io_read_bytes_per_second", "cgroup.io_write_bytes_per_second", "cgroup", "cgroup");
    size_t n = 0;
    mem_series_info *s = ask_series(c, "disk.busy_percent", &n);
    if (s && n) {
        qsort(s, n, sizeof *s, by_value_desc);
        char dev[128], sid[600];
        label(s[0].labels, "device", dev, sizeof dev);
        metric_sid(&s[0], sid, sizeof sid);
        json_t *refs = refs1(ask_rec(c, "metric", 0, sid, s[0].last_ts, "disk %s %.1f%% busy", dev, s[0].last));
        ask_say(parts, refs, "The busiest disk is %s at %.1f%% busy.", dev, s[0].last);
        json_decref(refs);
    }
    free(s);
    if (!json_array_size(parts))
        ask_say(parts, NULL, "I have no disk I/O metrics (the process, cgroup and disk sensors are off).");
}

/* ---- has this happened before ---------------------------------------------------------------- */

static void say_hits(ask_ctx *c, json_t *parts, const brain_case_hit *h, int n, const char *intro)
{
    json_t *refs = json_array();
    char list[1024] = "";
    for (int i = 0; i < n; i++) {
        char when[64], fixed[256] = "";
        ask_fmt_time(h[i].ts, c->now_ms, when, sizeof when);
        size_t k;
        json_t *a;
        json_array_foreach(h[i].fixed_by, k, a) {
            size_t l = strlen(fixed);
            snprintf(fixed + l, sizeof fixed - l, "%s%s", l ? ", " : "", json_string_value(a));
        }
        add_ref(refs, ask_rec(c, "case", h[i].id, NULL, h[i].ts, "%s on %s at %s, %.0f%% similar, fixed %d of %d tries%s%s",
                              h[i].fault_type, h[i].component, when, h[i].similarity * 100, h[i].fixed, h[i].tried,
                              *fixed ? " by " : "", fixed));
        size_t l = strlen(list);
        if (l < sizeof list - 200)
            snprintf(list + l, sizeof list - l, "%s%s on %s at %s (%.0f%% similar%s%s)", l ? "; " : "", h[i].fault_type,
                     h[i].component, when, h[i].similarity * 100, *fixed ? ", fixed by " : "", fixed);
    }
    ask_say(parts, refs, "%s: %s.", intro, list);
    json_decref(refs);
}

/* The case of incident id, else the newest case (of svc when given): its
 * features (a copy) and id; NULL when the store has none. */
static json_t *case_features(brain_cases *cs, uint64_t id, const char *svc, brain_case_hit *out)
{
    json_t *f = NULL;
    const brain_case *k = NULL;
    pthread_mutex_lock(&cs->lock);
    for (int i = cs->n; id && i-- > 0;)
        if (cs->v[i].incident == id) {
            k = &cs->v[i];
            break;
        }
    for (int i = cs->n; !k && i-- > 0;)
        if (!svc || !strcmp(cs->v[i].component, svc))
            k = &cs->v[i];
    if (k) {
        f = json_deep_copy(k->features);
        memset(out, 0, sizeof *out);
        out->id = k->id, out->incident = k->incident, out->ts = k->ts, out->similarity = 1;
        snprintf(out->fault_type, sizeof out->fault_type, "%s", k->fault_type);
        snprintf(out->component, sizeof out->component, "%s", k->component);
        out->fixed = k->fixed, out->tried = k->tried;
    }
    pthread_mutex_unlock(&cs->lock);
    return f;
}

static void answer_history(ask_ctx *c, json_t *parts)
{
    const char *svc = c->q.component[0] ? c->q.component : NULL;
    brain_cases *cs = c->m->cases;
    const json_t *latest = NULL;
    size_t i;
    json_t *inc;
    json_array_foreach(c->incidents, i, inc) { /* newest first */
        if (svc && strcmp(jstr(inc, "service", ""), svc))
            continue;
        latest = inc;
        break;
    }
    uint64_t latest_id = latest ? (uint64_t)json_integer_value(json_object_get(latest, "id")) : 0;
    if (latest) {
        char when[64];
        ask_fmt_time(json_integer_value(json_object_get(latest, "detected_ms")), c->now_ms, when, sizeof when);
        json_t *refs = refs1(ask_incident_rec(c, latest));
        ask_say(parts, refs, "The latest incident was %s's, at %s: %s.", jstr(latest, "service", "?"), when,
                jstr(latest, "what", "?"));
        json_decref(refs);
    }
    brain_case_hit self = {0};
    json_t *features = cs ? case_features(cs, latest_id, svc, &self) : NULL;
    if (features) {
        char when[64];
        ask_fmt_time(self.ts, c->now_ms, when, sizeof when);
        json_t *refs = refs1(ask_rec(c, "case", self.id, NULL, self.ts, "%s on %s at %s (incident %llu), fixed %d of %d tries",
                                     self.fault_type, self.component, when, (unsigned long long)self.incident,
                                     self.fixed, self.tried));
        if (self.incident == latest_id)
            ask_say(parts, refs, "The brain remembers it as a %s case.", self.fault_type);
        else
            ask_say(parts, refs, "The newest case the brain remembers%s%s is a %s on %s at %s (incident %llu).",
                    svc ? " of " : "", svc ? svc : "", self.fault_type, self.component, when,
                    (unsigned long long)self.incident);
        json_decref(refs);
        brain_case_hit all[9], hits[5];
        int na = brain_cases_recall(cs, features, all, 9), nh = 0;
        for (int k = 0; k < na; k++) {
            if (all[k].id == self.id || nh >= 5)
                brain_case_hits_free(&all[k], 1);
            else
                hits[nh++] = all[k];
        }
        if (nh)
            say_hits(c, parts, hits, nh, "The nearest earlier cases");
        else
            ask_say(parts, NULL, "I remember no other case like it.");
        brain_case_hits_free(hits, nh);
        json_decref(features);
    }
    if (svc) {
        mem_event *ev;
        size_t n;
        int64_t from, to;
        window(c, DAY_MS, 90 * DAY_MS, &from, &to);
        if (ask_events(c, "service.exit", svc, from, to, 200, &ev, &n) == 0 && n) {
            json_t *refs = json_array();
            char first[64], last[64];
            ask_fmt_time(ev[n - 1].ts, c->now_ms, first, sizeof first);
            ask_fmt_time(ev[0].ts, c->now_ms, last, sizeof last);
            for (size_t k = 0; k < n && k < 5; k++)
                add_ref(refs, ask_event_rec(c, &ev[k]));
            ask_say(parts, refs, "%s exited %zu time(s) between %s and %s%s.", svc, n, first, last,
                    n >= 200 ? " (or more)" : "");
            json_decref(refs);
        } else if (!json_array_size(parts)) {
            ask_say(parts, NULL, "I have no record of %s failing before.", svc);
        }
        mem_events_free(ev, n);
    }
    if (!json_array_size(parts))
        ask_say(parts, NULL, "There is no incident to compare, and no remembered case.");
}

/* ---- what is wrong now ------------------------------------------------------------------------- */

static void answer_status(ask_ctx *c, json_t *parts)
{
    const char *svc = c->q.component[0] ? c->q.component : NULL;
    size_t i;
    json_t *s, *inc;
    int running = 0, total = 0;
    char list[1024] = "";
    json_array_foreach(c->services, i, s) {
        if (svc && strcmp(jstr(s, "name", ""), svc))
            continue;
        total++;
        if (!strcmp(jstr(s, "state", ""), "running")) {
            running++;
            continue;
        }
        size_t l = strlen(list);
        if (l < sizeof list - 100)
            snprintf(list + l, sizeof list - l, "%s%s is %s", l ? ", " : "", jstr(s, "name", "?"), jstr(s, "state", "?"));
    }
    if (list[0])
        ask_say(parts, NULL, "Not running: %s.", list);
    else if (total)
        ask_say(parts, NULL, "%d of %d service(s) running.", running, total);
    json_t *refs = json_array();
    list[0] = 0;
    json_array_foreach(c->incidents, i, inc) {
        const char *st = jstr(inc, "state", "");
        if (!strcmp(st, "resolved") || !strcmp(st, "failed") || (svc && strcmp(jstr(inc, "service", ""), svc)))
            continue;
        add_ref(refs, ask_incident_rec(c, inc));
        size_t l = strlen(list);
        if (l < sizeof list - 200)
            snprintf(list + l, sizeof list - l, "%s%s: %s (%s)", l ? "; " : "", jstr(inc, "service", "?"), jstr(inc, "what", "?"), st);
    }
    if (json_array_size(refs))
        ask_say(parts, refs, "Open incidents: %s.", list);
    json_array_clear(refs);
    mem_event *ev;
    size_t n;
    int64_t from, to;
    window(c, 15 * MIN_MS, 15 * MIN_MS, &from, &to);
    if (ask_events(c, NULL, svc, from, to, 200, &ev, &n) == 0) {
        int warn = 0;
        for (size_t k = 0; k < n; k++) {
            if (mem_severity_rank(ev[k].severity) < mem_severity_rank("warning") ||
                !strcmp(ev[k].type, "brain.diagnosis") || !strcmp(ev[k].type, "llm.sent"))
                continue;
            if (warn++ < 8)
                add_ref(refs, ask_event_rec(c, &ev[k]));
        }
        if (warn)
            ask_say(parts, refs, "%d warning or error event(s) in the last 15 minutes; the newest are cited.", warn);
    }
    mem_events_free(ev, n);
    json_decref(refs);
    size_t nf = 0;
    mem_series_info *fs = ask_series(c, "fs.used_percent", &nf);
    for (size_t k = 0; fs && k < nf; k++)
        if (!isnan(fs[k].last) && fs[k].last >= 90) {
            char mp[256], sid[600];
            label(fs[k].labels, "mountpoint", mp, sizeof mp);
            metric_sid(&fs[k], sid, sizeof sid);
            json_t *r = refs1(ask_rec(c, "metric", 0, sid, fs[k].last_ts, "%s is %.1f%% full", mp, fs[k].last));
            ask_say(parts, r, "%s is %.1f%% full.", mp, fs[k].last);
            json_decref(r);
        }
    free(fs);
    if (!json_array_size(parts) || (json_array_size(parts) == 1 && !list[0] && running == total))
        json_array_append_new(parts, json_string("Nothing looks wrong now: no open incident, no warning in the last 15 minutes."));
}

/* ---- anything else ------------------------------------------------------------------------------ */

static void answer_generic(ask_ctx *c, json_t *parts)
{
    const char *svc = c->q.component[0] ? c->q.component : NULL;
    if (svc) {
        mem_event *ev;
        size_t n;
        int64_t from, to;
        window(c, HOUR_MS, 7 * DAY_MS, &from, &to);
        if (ask_events(c, NULL, svc, from, to, 5, &ev, &n) == 0 && n) {
            json_t *refs = json_array();
            for (size_t k = 0; k < n; k++)
                add_ref(refs, ask_event_rec(c, &ev[k]));
            ask_say(parts, refs, "The latest records about %s are cited.", svc);
            json_decref(refs);
        }
        mem_events_free(ev, n);
    }
}

void ask_answer(ask_ctx *c, json_t *parts)
{
    switch (c->q.kind) {
    case ASK_WHY: answer_why(c, parts); break;
    case ASK_CHANGES: answer_changes(c, parts); break;
    case ASK_DISK: c->q.io ? answer_disk_io(c, parts) : answer_disk_space(c, parts); break;
    case ASK_HISTORY: answer_history(c, parts); break;
    case ASK_STATUS: answer_status(c, parts); break;
    default: answer_generic(c, parts); break;
    }
    if (c->q.kind == ASK_WHY || c->q.kind == ASK_GENERIC || c->q.kind == ASK_HISTORY) {
        json_t *refs = json_array();
        if (ask_chunks(c, c->question, 3, refs))
            ask_say(parts, refs, "Related knowledge is cited.");
        json_decref(refs);
    }
    if (!json_array_size(parts))
        ask_say(parts, NULL,
                "I found nothing in memory about that. I can answer: why did SERVICE restart (or fail, or stop) "
                "(at a time); what changed before SERVICE failed, or since TIME; what is using the disk (space or "
                "I/O); has this happened before; what is wrong now.");
}
