/* ask_gather.c: the records an answer is made from, each with the ref it is
 * cited by: events ("event:ID"), heal's incidents with their diagnoses
 * ("incident:N"), remembered cases ("case:N"), metrics
 * ("metric:NAME{LABELS}@TS"), packages from dpkg's log ("package:NAME@TS"),
 * log templates ("template:SOURCE#ID"), directories measured now
 * ("path:/DIR") and knowledge chunks ("chunk:N"). Every reader here is safe
 * from any thread (memory's readers, heal's snapshots, the case store's
 * lock, the log watch's JSON, the knowledge store's mutex). */
#include "brain/ask_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "logs/logs.h"

/* logs_watch_json comes with the log module, which the brain does not link
 * (the daemon does): see signature.c. */
#pragma weak logs_watch_json

/* ---- text ------------------------------------------------------------------------- */

void ask_fmt_time(int64_t ms, int64_t now_ms, char *buf, size_t n)
{
    time_t s = (time_t)(ms / 1000), ns = (time_t)(now_ms / 1000);
    struct tm tm, tn;
    localtime_r(&s, &tm);
    localtime_r(&ns, &tn);
    if (tm.tm_year == tn.tm_year && tm.tm_yday == tn.tm_yday)
        strftime(buf, n, "%H:%M:%S", &tm);
    else
        strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm);
}

void ask_fmt_bytes(double b, char *buf, size_t n)
{
    static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int i = 0;
    while (fabs(b) >= 1024 && i < 5)
        b /= 1024, i++;
    snprintf(buf, n, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

void ask_say(json_t *parts, const json_t *refs, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    int l = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    size_t at = l < 0 ? 0 : (size_t)l < sizeof buf ? (size_t)l : sizeof buf - 1;
    size_t i;
    json_t *r;
    json_array_foreach(refs, i, r) {
        int k = snprintf(buf + at, sizeof buf - at, "%s%s", i ? ", " : " [", json_string_value(r));
        if (k < 0 || (size_t)k >= sizeof buf - at)
            break;
        at += (size_t)k;
    }
    if (json_array_size(refs) && at + 2 < sizeof buf)
        buf[at++] = ']', buf[at] = 0;
    json_array_append_new(parts, json_string(buf));
}

/* ---- records ------------------------------------------------------------------------ */

const char *ask_rec(ask_ctx *c, const char *type, int64_t id, const char *sid, int64_t ts, const char *fmt, ...)
{
    char ref[512], summary[1024];
    if (sid)
        snprintf(ref, sizeof ref, "%s:%s", type, sid);
    else
        snprintf(ref, sizeof ref, "%s:%" PRId64, type, id);
    size_t i;
    json_t *r;
    json_array_foreach(c->records, i, r)
        if (!strcmp(json_string_value(json_object_get(r, "ref")), ref))
            return json_string_value(json_object_get(r, "ref"));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(summary, sizeof summary, fmt, ap);
    va_end(ap);
    json_t *o = json_pack("{s:s, s:s, s:o, s:I, s:s}", "ref", ref, "type", type, "id",
                          sid ? json_string(sid) : json_integer(id), "ts", (json_int_t)ts, "summary", summary);
    if (!o || json_array_append_new(c->records, o))
        return "?";
    return json_string_value(json_object_get(o, "ref"));
}

int ask_events(ask_ctx *c, const char *type, const char *source, int64_t from, int64_t to, int limit,
               mem_event **out, size_t *n)
{
    char err[256] = "";
    mem_event_query q = {.from = from, .to = to, .type = type, .limit = source ? 2000 : limit};
    *out = NULL, *n = 0;
    if (!c->m->mem)
        return 0;
    int rc = mem_events_query(c->m->mem, &q, out, n, err, sizeof err);
    if (rc < 0) {
        json_array_append_new(c->notes, json_sprintf("events %s: %s", type ? type : "(any)", err[0] ? err : strerror(-rc)));
        *out = NULL, *n = 0;
        return rc;
    }
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        if ((!source || !strcmp((*out)[i].source, source)) && (int)k < limit)
            (*out)[k++] = (*out)[i];
        else
            free((*out)[i].payload);
    }
    *n = k;
    return 0;
}

static const char *jstr(const json_t *o, const char *k, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s && *s ? s : dflt;
}

static const char *signame(int sig)
{
    static const char *const names[] = {"?",       "SIGHUP",  "SIGINT",  "SIGQUIT", "SIGILL",  "SIGTRAP",
                                        "SIGABRT", "SIGBUS",  "SIGFPE",  "SIGKILL", "SIGUSR1", "SIGSEGV",
                                        "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM"};
    return sig > 0 && sig < (int)(sizeof names / sizeof names[0]) ? names[sig] : "a signal";
}

/* What an event says, in a few words. */
static void event_text(const mem_event *e, const json_t *p, char *buf, size_t n)
{
    if (!strcmp(e->type, "service.exit")) {
        int sig = (int)json_integer_value(json_object_get(p, "signal"));
        if (sig > 0)
            snprintf(buf, n, "%s exited: killed by signal %d (%s)", e->source, sig, signame(sig));
        else
            snprintf(buf, n, "%s exited with status %d", e->source, (int)json_integer_value(json_object_get(p, "status")));
    } else if (!strcmp(e->type, "file.changed")) {
        const json_t *now = json_object_get(p, "now");
        bool gone = json_is_object(now) && json_is_false(json_object_get(now, "exists"));
        snprintf(buf, n, "%s: %s %s%s", e->source, jstr(p, "path", "?"), gone ? "deleted" : "changed",
                 json_is_true(json_object_get(p, "known_good")) ? " (back to its known-good copy)" : "");
    } else if (!strcmp(e->type, "file.restored")) {
        snprintf(buf, n, "%s: %s restored by heal", e->source, jstr(p, "path", "?"));
    } else if (!strcmp(e->type, "config.reload")) {
        snprintf(buf, n, "configuration reloaded (%s)", jstr(p, "config", "?"));
    } else if (!strcmp(e->type, "heal.action")) {
        snprintf(buf, n, "heal: %s %s: %s (%s)", e->source, jstr(p, "action", "?"), jstr(p, "outcome", jstr(p, "verdict", "?")),
                 jstr(p, "why", jstr(p, "reason", "")));
    } else if (!strncmp(e->type, "incident.", 9)) {
        snprintf(buf, n, "%s %s: incident %" PRId64 ": %s", e->type, e->source,
                 (int64_t)json_integer_value(json_object_get(p, "id")), jstr(p, "what", jstr(p, "reason", "")));
    } else if (!strcmp(e->type, "brain.diagnosis")) {
        snprintf(buf, n, "diagnosis of %s: %s (%.2f): %s", jstr(p, "component", e->source), jstr(p, "fault_type", "?"),
                 json_number_value(json_object_get(p, "confidence")), jstr(p, "root_cause", ""));
    } else if (!strcmp(e->type, "log.template.new") || !strcmp(e->type, "log.burst")) {
        snprintf(buf, n, "%s of %s (%s): %.200s", e->type[4] == 't' ? "new log template" : "log burst", e->source,
                 jstr(p, "level", "?"), jstr(p, "template", "?"));
    } else if (!strcmp(e->type, "anomaly.episode")) {
        snprintf(buf, n, "anomaly in %s%s%s", jstr(p, "metric", jstr(p, "series", e->source)),
                 json_is_string(json_object_get(p, "state")) ? ": " : "", jstr(p, "state", ""));
    } else {
        char *t = json_dumps(p, JSON_COMPACT);
        snprintf(buf, n, "%s %s %.160s", e->type, e->source, t ? t : "");
        free(t);
    }
}

const char *ask_event_rec(ask_ctx *c, const mem_event *e)
{
    json_t *p = json_loads(e->payload ? e->payload : "{}", 0, NULL);
    char text[600];
    event_text(e, p, text, sizeof text);
    json_decref(p);
    return ask_rec(c, "event", e->id, NULL, e->ts, "%s", text);
}

json_t *ask_incident_diagnosis(ask_ctx *c, const json_t *inc)
{
    json_t *d = json_object_get(inc, "diagnosis");
    if (!json_is_object(d))
        d = json_object_get(json_object_get(inc, "evidence"), "diagnosis");
    if (json_is_object(d))
        return json_incref(d);
    char *t = c->b ? brain_diagnosis_json(c->b, (uint64_t)json_integer_value(json_object_get(inc, "id"))) : NULL;
    d = t ? json_loads(t, 0, NULL) : NULL;
    free(t);
    return d;
}

const char *ask_incident_rec(ask_ctx *c, const json_t *inc)
{
    json_t *d = ask_incident_diagnosis(c, inc);
    char dg[400] = "";
    if (d)
        snprintf(dg, sizeof dg, "; diagnosis %s (%.2f)", jstr(d, "fault_type", "?"),
                 json_number_value(json_object_get(d, "confidence")));
    json_decref(d);
    return ask_rec(c, "incident", json_integer_value(json_object_get(inc, "id")), NULL,
                   json_integer_value(json_object_get(inc, "detected_ms")), "%s: %s (%s)%s", jstr(inc, "service", "?"),
                   jstr(inc, "what", "?"), jstr(inc, "state", "?"), dg);
}

/* ---- knowledge, logs, packages, metrics -------------------------------------------- */

int ask_chunks(ask_ctx *c, const char *query, int limit, json_t *refs)
{
    if (!c->m->know || !query || !*query)
        return 0;
    mem_hit *h = NULL;
    size_t n = 0;
    char err[256] = "";
    int rc = mem_know_search(c->m->know, query, MEM_KNOW_HYBRID, limit, &h, &n, err, sizeof err);
    if (rc < 0) {
        if (rc != -ENOSYS)
            json_array_append_new(c->notes, json_sprintf("knowledge: %s", err[0] ? err : strerror(-rc)));
        return 0;
    }
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        if (h[i].rank_bm25 == 0) /* a chunk sharing no word with the question is not about it */
            continue;
        const char *r = ask_rec(c, "chunk", h[i].chunk, NULL, h[i].ts_ms, "%s (%s): %.200s", h[i].title ? h[i].title : "?",
                                h[i].source ? h[i].source : "?", h[i].text ? h[i].text : "");
        json_array_append_new(refs, json_string(r));
        k++;
    }
    mem_know_hits_free(h, n);
    return k;
}

int ask_templates(ask_ctx *c, const char *source, int64_t from, int64_t to, json_t *refs)
{
    if (!c->logs || !logs_watch_json || !source || !*source)
        return 0;
    char *t = logs_watch_json(c->logs, source);
    json_t *o = t ? json_loads(t, 0, NULL) : NULL;
    free(t);
    int k = 0;
    size_t i, j;
    json_t *s, *tp;
    json_array_foreach(json_object_get(o, "sources"), i, s) {
        json_array_foreach(json_object_get(s, "templates"), j, tp) {
            int64_t last = json_integer_value(json_object_get(tp, "last_seen"));
            if (strcmp(jstr(tp, "level", ""), "error") || last < from || last > to || k >= 3)
                continue;
            char sid[160];
            snprintf(sid, sizeof sid, "%s#%" PRId64, jstr(s, "source", source),
                     (int64_t)json_integer_value(json_object_get(tp, "id")));
            json_array_append_new(refs, json_string(ask_rec(c, "template", 0, sid, last, "%s log (%" PRId64 " times): %.200s",
                                                            jstr(s, "source", source),
                                                            (int64_t)json_integer_value(json_object_get(tp, "count")),
                                                            jstr(tp, "template", "?"))));
            k++;
        }
    }
    json_decref(o);
    return k;
}

int ask_packages(ask_ctx *c, int64_t from, int64_t to, json_t *refs, json_t *texts)
{
    if (!c->dpkg_log[0])
        return 0;
    json_t *out = json_array(), *notes = json_array();
    brain_changes_dpkg(c->dpkg_log, from, to, brain_sig_mono_ms() + 2000, out, notes);
    int k = 0;
    size_t i;
    json_t *x;
    json_array_foreach(out, i, x) {
        const json_t *d = json_object_get(x, "detail");
        const char *pkg = jstr(x, "what", "?");
        int64_t ts = json_integer_value(json_object_get(x, "ts"));
        char sid[256], line[512];
        snprintf(sid, sizeof sid, "%s@%" PRId64, pkg, ts / 1000);
        snprintf(line, sizeof line, "%s %s%s%s%s%s", jstr(d, "action", "changed"), pkg, json_is_string(json_object_get(d, "old")) ? " " : "",
                 jstr(d, "old", ""), json_is_string(json_object_get(d, "new")) ? " -> " : "", jstr(d, "new", ""));
        json_array_append_new(refs, json_string(ask_rec(c, "package", 0, sid, ts, "package %s", line)));
        if (texts)
            json_array_append_new(texts, json_string(line));
        k++;
    }
    json_decref(out);
    json_decref(notes);
    return k;
}

mem_series_info *ask_series(ask_ctx *c, const char *name, size_t *n)
{
    mem_series_info *all = NULL, *out;
    size_t m = 0, k = 0;
    *n = 0;
    if (!c->m->mem || mem_series_snapshot(c->m->mem, &all, &m) < 0)
        return NULL;
    out = calloc(m ? m : 1, sizeof *out);
    for (size_t i = 0; out && i < m; i++)
        if (!strcmp(all[i].name, name))
            out[k++] = all[i];
    free(all);
    *n = k;
    return out;
}

/* ---- directory sizes ------------------------------------------------------------------- */

/* Bytes used under dirfd (not crossing dev), stopping at the deadline. */
static int64_t du_at(int fd0, dev_t dev, int64_t deadline, bool *partial, int depth)
{
    DIR *d = fdopendir(fd0);
    if (!d) {
        close(fd0);
        return 0;
    }
    int64_t sum = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (brain_sig_mono_ms() > deadline) {
            *partial = true;
            break;
        }
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) || st.st_dev != dev)
            continue;
        sum += (int64_t)st.st_blocks * 512;
        if (S_ISDIR(st.st_mode) && depth < 64) {
            int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0)
                sum += du_at(fd, dev, deadline, partial, depth + 1);
        }
    }
    closedir(d);
    return sum;
}

void ask_dir_sizes(ask_ctx *c, const char *dir, json_t *out)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat top;
    if (fd < 0 || fstat(fd, &top)) {
        if (fd >= 0)
            close(fd);
        return;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) || st.st_dev != top.st_dev)
            continue;
        bool partial = brain_sig_mono_ms() > c->deadline_mono;
        int64_t bytes = (int64_t)st.st_blocks * 512;
        if (S_ISDIR(st.st_mode) && !partial) {
            int cfd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (cfd >= 0)
                bytes += du_at(cfd, top.st_dev, c->deadline_mono, &partial, 0);
        }
        char path[4096];
        snprintf(path, sizeof path, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", e->d_name);
        json_array_append_new(out, json_pack("{s:s, s:I, s:b, s:b}", "path", path, "bytes", (json_int_t)bytes,
                                             "partial", partial, "dir", S_ISDIR(st.st_mode)));
    }
    closedir(d);
}
