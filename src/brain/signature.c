/* signature.c: brain_signature_build: gathers every piece of evidence about
 * one incident or anomaly episode (probes and how they failed, exits and
 * signals, anomalous series in onset order, new and bursting log templates,
 * kernel messages, pressure, the service's resources and filesystems, recent
 * changes, ports, dependencies, the top CPU users) into the contract's JSON,
 * with value-free `features` tokens for case-based reasoning. Runs on a
 * worker thread: only thread-safe readers, and a deadline (slow parts are
 * skipped and named in "notes"). See docs/brain-signature.md. */
#include "brain/signature.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* logs_watch_json comes with the logs module's watch (branch follow); until
 * every binary that links this library links it too, a missing one is NULL. */
#pragma weak logs_watch_json

#define MAX_PIDS 32
#define FS_FULL_PERCENT 95.0
#define FD_NEAR_LIMIT 0.9
#define CPU_HOG_PERCENT 80.0
#define EXIT_EARLY_MS 5000
#define PSI_CPU 40.0
#define PSI_MEMORY 20.0
#define PSI_IO 30.0

typedef struct sig {
    const brain_sig_ctx *ctx;
    const char *service;
    int64_t from, to, deadline, started;
    json_t *o, *notes, *feat;
    json_t *svcs;       /* heal's services JSON, parsed (NULL: none) */
    const json_t *svc;  /* the service's entry in it */
    const json_t *inc;  /* the incident (NULL: none) */
    const json_t *ev;   /* its evidence */
    int pid;            /* the service's running main pid, 0 when none */
    int pids[MAX_PIDS]; /* pids known to be (or have been) the service's */
    int npids;
    char comm[32];      /* the service process's comm, "" when unknown */
} sig;

#define note(s, ...) brain_sig_note((s)->notes, __VA_ARGS__)

static void feature(sig *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void feature(sig *s, const char *fmt, ...)
{
    char buf[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    for (char *p = buf; *p; p++) /* one word */
        *p = *p == ' ' ? '_' : *p;
    size_t i;
    json_t *v;
    json_array_foreach(s->feat, i, v) if (!strcmp(json_string_value(v), buf)) return;
    json_array_append_new(s->feat, json_string(buf));
}

/* Whether the deadline has passed; notes the skipped part once. */
static bool late(sig *s, const char *part)
{
    if (brain_sig_mono_ms() < s->deadline)
        return false;
    note(s, "%s: skipped, the %d ms deadline was reached", part,
         s->ctx->deadline_ms > 0 ? s->ctx->deadline_ms : BRAIN_SIG_DEADLINE_MS);
    return true;
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static double jnum(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static json_t *num_or_null(double v)
{
    return isnan(v) || isinf(v) ? json_null() : json_real(v);
}

static void add_pid(sig *s, int pid)
{
    if (pid <= 0)
        return;
    for (int i = 0; i < s->npids; i++)
        if (s->pids[i] == pid)
            return;
    if (s->npids < MAX_PIDS)
        s->pids[s->npids++] = pid;
}

static bool ours_pid(const sig *s, int pid)
{
    for (int i = 0; pid > 0 && i < s->npids; i++)
        if (s->pids[i] == pid)
            return true;
    return false;
}

/* A kernel comm (at most 15 characters) naming the service. */
static bool ours_comm(const sig *s, const char *comm)
{
    if (!comm || !comm[0])
        return false;
    if (s->comm[0] && !strcmp(comm, s->comm))
        return true;
    return !strncmp(comm, s->service, 15) && strlen(comm) == (strlen(s->service) > 15 ? 15 : strlen(s->service));
}

static int read_small(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    size_t got = fread(buf, 1, n - 1, f);
    fclose(f);
    buf[got] = 0;
    return (int)got;
}

/* Events of one type (exact, or a prefix ending in '*') in [from, to], oldest first. */
static int events(sig *s, const char *type, int64_t from, int64_t to, mem_event **ev, size_t *n)
{
    *ev = NULL;
    *n = 0;
    if (!s->ctx->mem)
        return -EINVAL;
    char err[256] = "";
    /* the newest 2000 (a log storm must not hide the last events), then oldest first */
    mem_event_query q = {.from = from, .to = to, .type = type, .limit = 2000, .ascending = false};
    int rc = mem_events_query(s->ctx->mem, &q, ev, n, err, sizeof err);
    if (rc < 0) {
        note(s, "events %s: %s", type, err[0] ? err : strerror(-rc));
        return rc;
    }
    for (size_t i = 0; i < *n / 2; i++) {
        mem_event t = (*ev)[i];
        (*ev)[i] = (*ev)[*n - 1 - i];
        (*ev)[*n - 1 - i] = t;
    }
    if (*n == 2000)
        note(s, "events %s: more than 2000 in the window, the newest 2000 read", type);
    return rc;
}

/* ---- incident and services --------------------------------------------------------------------- */

static void load_services(sig *s)
{
    char *text = NULL;
    const char *src = s->ctx->services_json;
    if (!src && s->ctx->heal)
        src = text = heal_engine_services_json(s->ctx->heal);
    if (!src)
        return;
    json_error_t je;
    s->svcs = json_loads(src, 0, &je);
    if (!json_is_object(s->svcs)) {
        note(s, "services: heal's JSON does not parse: %s (line %d)", je.text, je.line);
        json_decref(s->svcs);
        s->svcs = NULL;
    }
    free(text);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(s->svcs, "services"), i, v) if (!strcmp(jstr(v, "name"), s->service))
        s->svc = v;
    if (s->svc && !strcmp(jstr(s->svc, "state"), "running"))
        s->pid = (int)json_integer_value(json_object_get(s->svc, "pid"));
    add_pid(s, s->pid);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", s->pid);
    if (s->pid > 0 && read_small(path, s->comm, sizeof s->comm) > 0)
        s->comm[strcspn(s->comm, "\n")] = 0;
}

/* ---- probes -------------------------------------------------------------------------------------- */

static bool has(const char *t, const char *needle)
{
    return strcasestr(t, needle) != NULL;
}

/* How a probe failed, from the message texts heal's probes write (probe*.c). */
static const char *probe_how(const char *kind, const char *msg)
{
    if (has(msg, "resolve") || has(msg, "unknown node or service") || has(msg, "name resolution") ||
        has(msg, "name or service not known") || has(msg, "temporary failure in name"))
        return "dns";
    if (has(msg, "timeout after") || has(msg, "timed out"))
        return "timeout";
    if (has(msg, "refused"))
        return "refused";
    if (has(msg, "reset") || has(msg, "recv failure") || has(msg, "empty reply") ||
        has(msg, "failure when receiving") || has(msg, "broken pipe"))
        return "reset";
    if (has(msg, "over max"))
        return "latency";
    if (has(msg, "body does not match") || has(msg, "body regex"))
        return "body";
    if (!strncmp(msg, "HTTP ", 5))
        return "status";
    if (!strcmp(kind, "exec"))
        return "exec";
    if (!strcmp(kind, "file") || !strcmp(kind, "fs"))
        return "file";
    if (!strcmp(kind, "process"))
        return "process";
    if (!strcmp(kind, "metric"))
        return "status";
    return "other";
}

/* The probe's target: the word after "failed " in the rule text, when it is of this kind. */
static void probe_target(const char *what, const char *kind, char *out, size_t n)
{
    snprintf(out, n, "%s", kind);
    const char *f = strstr(what, "failed ");
    if (!f)
        return;
    f += 7;
    size_t kl = strlen(kind);
    bool url = !strcmp(kind, "http") ? !strncmp(f, "http", 4) : !strncmp(f, kind, kl);
    if (!url)
        return;
    size_t l = strcspn(f, " ");
    snprintf(out, n, "%.*s", (int)l, f);
}

static void probe_add(sig *s, const char *kind, const char *msg, bool timed_out)
{
    json_t *arr = json_object_get(s->o, "probes");
    if (json_array_size(arr) >= BRAIN_SIG_LIST_MAX)
        return;
    char target[300];
    probe_target(jstr(s->inc, "what"), kind, target, sizeof target);
    const char *how = timed_out ? "timeout" : probe_how(kind, msg);
    json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}", "probe", target, "kind", kind, "how", how,
                                         "message", msg));
    feature(s, "probe:%s:%s", kind[0] ? kind : "unknown", how);
}

/* The rule's condition (heal's evidence "condition"): the probe that fired
 * first among the probes; a resource, restart or anomaly rule as a feature. */
static void probes(sig *s)
{
    const json_t *cond = json_object_get(s->ev, "condition");
    const char *ckind = jstr(cond, "probe"), *cmsg = jstr(cond, "message");
    if (ckind[0])
        probe_add(s, ckind, cmsg, json_is_true(json_object_get(cond, "timed_out")));
    else if (jstr(cond, "resource")[0])
        feature(s, "rule:resource:%s", jstr(cond, "resource"));
    else if (json_object_get(cond, "restarts"))
        feature(s, "rule:restarts");
    else if (json_object_get(cond, "anomalous"))
        feature(s, "rule:anomalous");
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(s->ev, "probes"), i, p)
    {
        if (!json_is_object(p)) {
            note(s, "probes: evidence entry %zu is not an object", i);
            continue;
        }
        const char *kind = jstr(p, "probe"), *msg = jstr(p, "message");
        if (json_is_true(json_object_get(p, "ok")) || (ckind[0] && !strcmp(kind, ckind) && !strcmp(msg, cmsg)))
            continue;
        probe_add(s, kind, msg, false);
    }
}

/* ---- exits ---------------------------------------------------------------------------------------- */

static void exit_features(sig *s, int code, int sig_no, int64_t uptime)
{
    if (sig_no > 0) {
        const char *nm = sigabbrev_np(sig_no);
        if (nm)
            feature(s, "exit:signal:%s", nm);
        else
            feature(s, "exit:signal:%d", sig_no);
    } else {
        feature(s, "exit:code:%d", code);
    }
    if (uptime >= 0 && uptime < EXIT_EARLY_MS)
        feature(s, "exit:early");
}

/* When heal's supervisor started pid, from its line in the captured output
 * ("2026-12-04T21:21:28.380Z ippocd: started pid N: ..."); 0 when not there. */
static int64_t started_from_log(const sig *s, int pid)
{
    const char *t = jstr(s->ev, "log");
    char needle[48];
    snprintf(needle, sizeof needle, " ippocd: started pid %d:", pid);
    const char *hit = pid > 0 ? strstr(t, needle) : NULL;
    if (!hit)
        return 0;
    const char *line = hit;
    while (line > t && line[-1] != '\n')
        line--;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(line, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest || rest > hit)
        return 0;
    int ms = rest[0] == '.' ? atoi(rest + 1) : 0;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

static void exits(sig *s)
{
    json_t *arr = json_object_get(s->o, "exits");
    mem_event *ev;
    size_t n;
    int64_t started = 0; /* the last service.restart / service.adopted seen */
    events(s, "service.*", s->from - BRAIN_SIG_BACK_EVENTS_MS, s->to, &ev, &n);
    json_t *all = json_array();
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ev[i].source, s->service))
            continue;
        if (!strcmp(ev[i].type, "service.restart") || !strcmp(ev[i].type, "service.adopted")) {
            started = ev[i].ts;
            continue;
        }
        if (strcmp(ev[i].type, "service.exit"))
            continue;
        json_t *p = json_loads(ev[i].payload, 0, NULL);
        if (!json_is_integer(json_object_get(p, "status")) && !json_is_integer(json_object_get(p, "signal"))) {
            note(s, "exits: service.exit event %lld has no status or signal", (long long)ev[i].id);
            json_decref(p);
            continue;
        }
        int code = (int)json_integer_value(json_object_get(p, "status"));
        int sg = (int)json_integer_value(json_object_get(p, "signal"));
        int pid = (int)json_integer_value(json_object_get(p, "pid"));
        double up = jnum(p, "uptime_ms");
        int64_t uptime = -1;
        if (!isnan(up))
            uptime = (int64_t)up;
        else if (started)
            uptime = ev[i].ts - started;
        else if ((started = started_from_log(s, pid)) && started <= ev[i].ts)
            uptime = ev[i].ts - started;
        json_array_append_new(all, json_pack("{s:I, s:i, s:i, s:i, s:o}", "ts", (json_int_t)ev[i].ts, "code", code,
                                             "signal", sg, "pid", pid, "uptime_ms",
                                             uptime >= 0 ? json_integer(uptime) : json_null()));
        add_pid(s, pid);
        started = 0;
        json_decref(p);
    }
    mem_events_free(ev, n);
    json_t *x = json_object_get(s->ev, "exit");
    int xpid = (int)json_integer_value(json_object_get(x, "pid"));
    bool seen = false;
    size_t i;
    json_t *v;
    json_array_foreach(all, i, v) seen |= xpid > 0 && json_integer_value(json_object_get(v, "pid")) == xpid;
    if (json_is_object(x) && !seen) { /* the incident's own exit, when its event is not (yet) readable */
        double det = jnum(s->inc, "detected_ms");
        json_array_append_new(all, json_pack("{s:I, s:i, s:i, s:i, s:n}", "ts", (json_int_t)(isnan(det) ? 0 : det),
                                             "code", (int)json_integer_value(json_object_get(x, "status")), "signal",
                                             (int)json_integer_value(json_object_get(x, "signal")), "pid", xpid,
                                             "uptime_ms"));
        add_pid(s, xpid);
    }
    /* newest first, at most BRAIN_SIG_LIST_MAX */
    for (size_t k = json_array_size(all); k-- > 0 && json_array_size(arr) < BRAIN_SIG_LIST_MAX;) {
        json_t *e = json_array_get(all, k);
        json_array_append(arr, e);
        json_t *u = json_object_get(e, "uptime_ms");
        exit_features(s, (int)json_integer_value(json_object_get(e, "code")),
                      (int)json_integer_value(json_object_get(e, "signal")),
                      json_is_integer(u) ? json_integer_value(u) : -1);
    }
    if (json_array_size(all) >= 3)
        feature(s, "exit:repeated");
    json_decref(all);
}

/* ---- ports, dependencies ------------------------------------------------------------------------- */

static void ports(sig *s)
{
    json_t *pc = json_object_get(s->ev, "port_conflict");
    if (!json_is_object(pc))
        return;
    json_array_append_new(json_object_get(s->o, "ports"),
                          json_pack("{s:I, s:I, s:s}", "port", json_integer_value(json_object_get(pc, "port")), "pid",
                                    json_integer_value(json_object_get(pc, "pid")), "command", jstr(pc, "command")));
    feature(s, "port:held");
}

static const json_t *svc_named(const sig *s, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(s->svcs, "services"), i, v) if (!strcmp(jstr(v, "name"), name)) return v;
    return NULL;
}

static void dep_add(sig *s, const char *name)
{
    json_t *arr = json_object_get(s->o, "dependencies");
    size_t i;
    json_t *v;
    if (!name || !name[0] || json_array_size(arr) >= BRAIN_SIG_LIST_MAX)
        return;
    json_array_foreach(arr, i, v) if (!strcmp(jstr(v, "service"), name)) return;
    const json_t *d = svc_named(s, name);
    const char *state = d ? jstr(d, "state") : "unknown";
    bool healthy = d && !strcmp(state, "running") && !json_is_true(json_object_get(d, "flapping"));
    json_t *evd = json_object_get(s->ev, "dependency");
    if (!d && json_is_object(evd) && !strcmp(jstr(evd, "service"), name))
        healthy = json_is_true(json_object_get(evd, "healthy"));
    json_array_append_new(arr, json_pack("{s:s, s:s, s:b}", "service", name, "state", state, "healthy", healthy));
    if (!healthy)
        feature(s, "dep:down");
}

static void dependencies(sig *s)
{
    for (int i = 0; i < s->ctx->ndepends && s->ctx->depends; i++)
        dep_add(s, s->ctx->depends[i]);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(s->svc, "depends"), i, v) dep_add(s, json_string_value(v));
    dep_add(s, jstr(json_object_get(s->ev, "dependency"), "service"));
}

/* ---- logs ---------------------------------------------------------------------------------------- */

typedef struct hint {
    const char *name;
    const char *words[6];
} hint;

/* Words in log lines that name a cause (case-insensitive). */
static const hint hints[] = {
    {"permission", {"permission denied", "operation not permitted", "eacces", NULL}},
    {"no_such_file", {"no such file or directory", "enoent", NULL}},
    {"addr_in_use", {"address already in use", "eaddrinuse", NULL}},
    {"too_many_files", {"too many open files", "emfile", NULL}},
    {"dns", {"name or service not known", "temporary failure in name resolution", "could not resolve",
             "nxdomain", "no address associated", NULL}},
    {"conn_refused", {"connection refused", "econnrefused", NULL}},
    {"credential", {"expired", "revoked", "unauthorized", "authentication fail", "invalid credential", NULL}},
    {"no_space", {"no space left on device", "enospc", "disk full", NULL}},
    {"oom", {"out of memory", "cannot allocate memory", "memoryerror", "bad_alloc", NULL}},
    {"config", {"syntax error", "parse error", "invalid config", "configuration error", "unknown directive",
                "invalid value"}},
    {"env", {"environment variable", "is not set", "must be set", NULL}},
    {"timeout", {"timed out", "timeout", NULL}},
    {"segfault", {"segmentation fault", "segfault", "core dumped", NULL}},
    {"read_only", {"read-only file system", "erofs", NULL}},
    {"io_error", {"input/output error", "i/o error", NULL}},
    {"clock", {"clock skew", "time went backwards", "clock jump", NULL}},
};

static void log_hints(sig *s, const char *text)
{
    for (size_t i = 0; text && i < sizeof hints / sizeof hints[0]; i++)
        for (int k = 0; k < 6 && hints[i].words[k]; k++)
            if (has(text, hints[i].words[k])) {
                feature(s, "log:hint:%s", hints[i].name);
                break;
            }
}

static int level_rank(const char *lv)
{
    return !strcmp(lv, "error") ? 0 : !strcmp(lv, "warning") ? 1 : 2;
}

/* Merges one log.template.new / log.burst payload into the list (by template id). */
static void log_merge(sig *s, json_t *all, const json_t *p, bool burst, int64_t ts)
{
    const char *id = jstr(p, "template_id");
    char idbuf[32];
    json_t *idv = json_object_get(p, "template_id");
    if (json_is_integer(idv)) {
        snprintf(idbuf, sizeof idbuf, "%lld", (long long)json_integer_value(idv));
        id = idbuf;
    }
    json_t *e = NULL, *v;
    size_t i;
    json_array_foreach(all, i, v) if (!strcmp(jstr(v, "template_id"), id)) e = v;
    if (!e) {
        e = json_pack("{s:s, s:s, s:b, s:b, s:s, s:I, s:s, s:I}", "template", jstr(p, "template"), "template_id", id,
                      "new", false, "burst", false, "level", jstr(p, "level")[0] ? jstr(p, "level") : "info",
                      "count", json_integer_value(json_object_get(p, "count")), "sample", jstr(p, "sample"),
                      "ts", (json_int_t)ts);
        if (!e)
            return;
        json_array_append_new(all, e);
    }
    json_object_set_new(e, burst ? "burst" : "new", json_true());
    json_int_t c = json_integer_value(json_object_get(p, "count"));
    if (c > json_integer_value(json_object_get(e, "count")))
        json_object_set_new(e, "count", json_integer(c));
    if (!jstr(e, "sample")[0] && jstr(p, "sample")[0])
        json_object_set_new(e, "sample", json_string(jstr(p, "sample")));
}

/* Counts from the logs watch (the live numbers) for the templates listed. */
static void log_counts(sig *s, json_t *all)
{
    if (!s->ctx->logs || !logs_watch_json || !json_array_size(all))
        return;
    char *text = logs_watch_json(s->ctx->logs, s->service);
    json_t *w = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    size_t i, j, k;
    json_t *src, *t, *e;
    json_array_foreach(json_object_get(w, "sources"), i, src) json_array_foreach(json_object_get(src, "templates"), j,
                                                                                 t)
    {
        char id[32];
        snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_object_get(t, "id")));
        json_array_foreach(all, k, e) if (!strcmp(jstr(e, "template_id"), id) &&
                                          json_is_integer(json_object_get(t, "count")))
            json_object_set(e, "count", json_object_get(t, "count"));
    }
    json_decref(w);
}

static int log_cmp(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int lx = level_rank(jstr(x, "level")), ly = level_rank(jstr(y, "level"));
    if (lx != ly)
        return lx - ly;
    json_int_t tx = json_integer_value(json_object_get(x, "ts")), ty = json_integer_value(json_object_get(y, "ts"));
    return tx < ty ? -1 : tx > ty;
}

static void logs(sig *s)
{
    mem_event *ev;
    size_t n;
    events(s, "log.*", s->from - BRAIN_SIG_BACK_EVENTS_MS, s->to, &ev, &n);
    json_t *all = json_array();
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        bool burst = !strcmp(ev[i].type, "log.burst");
        if ((!burst && strcmp(ev[i].type, "log.template.new")) || strcmp(ev[i].source, s->service))
            continue;
        json_t *p = json_loads(ev[i].payload, 0, NULL);
        json_t *tid = json_object_get(p, "template_id");
        if (json_is_string(json_object_get(p, "template")) && (json_is_string(tid) || json_is_integer(tid)))
            log_merge(s, all, p, burst, ev[i].ts);
        else
            bad++;
        json_decref(p);
    }
    mem_events_free(ev, n);
    if (bad)
        note(s, "logs: %d log event(s) without a template or template_id skipped", bad);
    log_counts(s, all);
    size_t m = json_array_size(all);
    json_t **v = calloc(m ? m : 1, sizeof *v);
    for (size_t i = 0; v && i < m; i++)
        v[i] = json_array_get(all, i);
    if (v)
        qsort(v, m, sizeof *v, log_cmp);
    json_t *arr = json_object_get(s->o, "logs");
    for (size_t i = 0; v && i < m && i < BRAIN_SIG_LIST_MAX; i++) {
        const char *lv = jstr(v[i], "level");
        if (level_rank(lv) < 2) { /* info lines are listed, not features: every start prints new ones */
            if (json_is_true(json_object_get(v[i], "new")))
                feature(s, "log:new:%s", lv);
            if (json_is_true(json_object_get(v[i], "burst")))
                feature(s, "log:burst:%s", lv);
            log_hints(s, jstr(v[i], "template"));
            log_hints(s, jstr(v[i], "sample"));
        }
        json_object_del(v[i], "ts");
        json_array_append(arr, v[i]);
    }
    free(v);
    json_decref(all);
}

/* The last lines of the service's captured output (heal's evidence "log"). */
static void log_tail(sig *s)
{
    const char *t = jstr(s->ev, "log");
    json_t *arr = json_array();
    json_object_set_new(s->o, "log_tail", arr);
    if (!t[0])
        return;
    log_hints(s, t);
    const char *lines[BRAIN_SIG_LIST_MAX];
    size_t lens[BRAIN_SIG_LIST_MAX];
    int n = 0;
    for (const char *p = t; *p;) { /* the last 10 non-empty lines, 300 bytes each at most */
        size_t l = strcspn(p, "\n");
        if (l) {
            if (n == 10) {
                memmove(lines, lines + 1, sizeof lines[0] * 9);
                memmove(lens, lens + 1, sizeof lens[0] * 9);
                n--;
            }
            lines[n] = p;
            lens[n++] = l > 300 ? 300 : l;
        }
        p += l + (p[l] == '\n');
    }
    for (int i = 0; i < n; i++) {
        json_t *v = json_stringn(lines[i], lens[i]);
        if (!v) { /* not UTF-8: keep the ASCII */
            char buf[301];
            for (size_t k = 0; k < lens[i]; k++)
                buf[k] = (unsigned char)lines[i][k] < 128 ? lines[i][k] : '?';
            v = json_stringn(buf, lens[i]);
        }
        json_array_append_new(arr, v);
    }
}

/* ---- anomalies ------------------------------------------------------------------------------------ */

static bool ours_labels(const sig *s, const json_t *labels)
{
    static const char *const keys[] = {"name", "app", "service", "source", "unit", "comm"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = jstr(labels, keys[i]);
        if (v[0] && (!strcmp(v, s->service) || (s->comm[0] && !strcmp(v, s->comm))))
            return true;
    }
    return false;
}

static void anomaly_add(sig *s, json_t *all, const json_t *p, double onset, double score)
{
    const char *key = jstr(p, "key"), *metric = jstr(p, "metric");
    if (!key[0])
        return;
    json_t *e = NULL, *v;
    size_t i;
    json_array_foreach(all, i, v) if (!strcmp(jstr(v, "series"), key)) e = v;
    if (!e) {
        e = json_pack("{s:s, s:s, s:o, s:o, s:s, s:o, s:o, s:b}", "series", key, "metric", metric[0] ? metric : key,
                      "onset", num_or_null(onset), "score", num_or_null(score), "reason", jstr(p, "reason"),
                      "value", num_or_null(jnum(p, "value")), "expected", num_or_null(jnum(p, "expected")),
                      "service", ours_labels(s, json_object_get(p, "labels")));
        if (e)
            json_array_append_new(all, e);
        return;
    }
    double o = jnum(e, "onset"), sc = jnum(e, "score");
    if (!isnan(onset) && (isnan(o) || onset < o))
        json_object_set_new(e, "onset", json_integer((json_int_t)onset));
    if (!isnan(score) && (isnan(sc) || score > sc)) {
        json_object_set_new(e, "score", json_real(score));
        if (jstr(p, "reason")[0])
            json_object_set_new(e, "reason", json_string(jstr(p, "reason")));
    }
}

static int anomaly_cmp(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int ox = json_is_true(json_object_get(x, "service")), oy = json_is_true(json_object_get(y, "service"));
    if (ox != oy)
        return oy - ox;
    double tx = jnum(x, "onset"), ty = jnum(y, "onset");
    tx = isnan(tx) ? INFINITY : tx;
    ty = isnan(ty) ? INFINITY : ty;
    return tx < ty ? -1 : tx > ty;
}

static void anomalies(sig *s)
{
    mem_event *ev;
    size_t n;
    events(s, "anomaly*", s->from - BRAIN_SIG_BACK_ANOMALY_MS, s->to, &ev, &n);
    json_t *all = json_array();
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_loads(ev[i].payload, 0, NULL);
        bool member_list = json_is_array(json_object_get(p, "members")) || json_is_object(json_object_get(p, "first"));
        if (!strcmp(ev[i].type, "anomaly") ? !json_is_string(json_object_get(p, "key"))
                                            : !strcmp(ev[i].type, "anomaly.episode") && !member_list) {
            bad++;
        } else if (!strcmp(ev[i].type, "anomaly")) {
            anomaly_add(s, all, p, jnum(p, "since_ms"), jnum(p, "score"));
        } else if (!strcmp(ev[i].type, "anomaly.episode")) {
            size_t k;
            json_t *mb;
            json_array_foreach(json_object_get(p, "members"), k, mb) anomaly_add(s, all, mb, jnum(mb, "since_ms"),
                                                                                  jnum(mb, "peak"));
            json_t *first = json_object_get(p, "first");
            if (json_is_object(first))
                anomaly_add(s, all, first, jnum(p, "opened_ms"), NAN);
        }
        json_decref(p);
    }
    mem_events_free(ev, n);
    if (bad)
        note(s, "anomalies: %d event(s) without a series key skipped", bad);
    size_t m = json_array_size(all);
    json_t **v = calloc(m ? m : 1, sizeof *v);
    for (size_t i = 0; v && i < m; i++)
        v[i] = json_array_get(all, i);
    if (v)
        qsort(v, m, sizeof *v, anomaly_cmp);
    json_t *arr = json_object_get(s->o, "anomalies");
    for (size_t i = 0; v && i < m && i < BRAIN_SIG_LIST_MAX; i++) {
        if (i < 4)
            feature(s, "anomaly:%s:%s", jstr(v[i], "metric"), jstr(v[i], "reason")[0] ? jstr(v[i], "reason") : "unknown");
        json_object_del(v[i], "metric");
        json_array_append(arr, v[i]);
    }
    free(v);
    json_decref(all);
}

/* ---- kernel --------------------------------------------------------------------------------------- */

static bool kernel_dup(json_t *arr, const json_t *k)
{
    size_t i;
    json_t *v;
    json_int_t pid = json_integer_value(json_object_get(k, "pid"));
    json_int_t ts = json_integer_value(json_object_get(k, "ts"));
    json_array_foreach(arr, i, v)
    {
        json_int_t t2 = json_integer_value(json_object_get(v, "ts"));
        if (pid > 0 && !strcmp(jstr(v, "kind"), jstr(k, "kind")) && json_integer_value(json_object_get(v, "pid")) == pid &&
            llabs((long long)(t2 - ts)) < 10000) {
            if (!jstr(v, "comm")[0] && jstr(k, "comm")[0])
                json_object_set(v, "comm", json_object_get(k, "comm"));
            return true;
        }
    }
    return false;
}

static void kernel(sig *s)
{
    const char *path = s->ctx->kmsg_path ? s->ctx->kmsg_path : "/dev/kmsg";
    json_t *raw = json_array();
    int bad = 0;
    bool cut = false;
    char err[300];
    if (brain_kmsg_read(path, s->from - BRAIN_SIG_BACK_EVENTS_MS, s->to, s->deadline, raw, &bad, &cut, err,
                        sizeof err) < 0)
        note(s, "kernel: %s", err);
    if (cut)
        note(s, "kernel: the deadline was reached while reading %s: later records not read", path);
    if (bad)
        note(s, "kernel: %d record(s) of %s that do not parse skipped", bad, path);
    json_t *ours = json_array(), *others = json_array();
    for (size_t i = json_array_size(raw); i-- > 0;) { /* newest first, BRAIN_SIG_LIST_MAX of each */
        json_t *k = json_array_get(raw, i);
        bool mine = ours_pid(s, (int)json_integer_value(json_object_get(k, "pid"))) || ours_comm(s, jstr(k, "comm"));
        json_t *dst = mine ? ours : others;
        json_object_set_new(k, "service", json_boolean(mine));
        if (json_array_size(dst) < BRAIN_SIG_LIST_MAX && !kernel_dup(dst, k))
            json_array_insert(dst, 0, k);
    }
    size_t i;
    json_t *k;
    json_t *arr = json_object_get(s->o, "kernel");
    json_array_extend(ours, others);
    json_array_foreach(ours, i, k)
    {
        if (i >= BRAIN_SIG_LIST_MAX)
            break;
        json_array_append(arr, k);
        const char *kind = jstr(k, "kind");
        bool per_process = !strcmp(kind, "oom_kill") || !strcmp(kind, "segfault") || !strcmp(kind, "hung_task");
        if (json_is_true(json_object_get(k, "service")) || !per_process)
            feature(s, "kernel:%s", kind);
        else
            feature(s, "kernel:%s:other", kind);
    }
    json_decref(ours);
    json_decref(others);
    json_decref(raw);
}

/* ---- series helpers ------------------------------------------------------------------------------- */

/* Max of one series over [from, to], else its last value; NaN when none. */
static double series_max(sig *s, int id, int64_t from, int64_t to)
{
    mem_point *pt = NULL;
    size_t n = 0;
    int src;
    char err[128];
    double mx = NAN;
    if (mem_query(s->ctx->mem, id, from, to, 0, 600, &pt, &n, &src, err, sizeof err) == 0)
        for (size_t i = 0; i < n; i++)
            if (!isnan(pt[i].max) && (isnan(mx) || pt[i].max > mx))
                mx = pt[i].max;
    free(pt);
    if (isnan(mx)) {
        double v;
        int64_t ts;
        if (mem_series_last(s->ctx->mem, id, &v, &ts) == 0 && ts >= from - 60000 && ts <= to + 60000)
            mx = v;
    }
    return mx;
}

/* Least-squares slope (units per second) of one series over [from, to]; *rise
 * gets last - first fitted, *r2 the fit. NaN with fewer than 3 points. */
static double series_slope(sig *s, int id, int64_t from, int64_t to, double *first, double *rise, double *r2)
{
    mem_point *pt = NULL;
    size_t n = 0;
    int src;
    char err[128];
    *first = *rise = *r2 = NAN;
    if (mem_query(s->ctx->mem, id, from, to, 0, 600, &pt, &n, &src, err, sizeof err) || n < 3) {
        free(pt);
        return NAN;
    }
    double sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0;
    double x0 = (double)pt[0].ts;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(pt[i].mean))
            continue;
        double x = ((double)pt[i].ts - x0) / 1000.0, y = pt[i].mean;
        sx += x, sy += y, sxx += x * x, sxy += x * y, syy += y * y;
        k++;
    }
    double span = ((double)pt[n - 1].ts - x0) / 1000.0;
    free(pt);
    if (k < 3)
        return NAN;
    double d = (double)k * sxx - sx * sx;
    if (d <= 0)
        return NAN;
    double b = ((double)k * sxy - sx * sy) / d, a = (sy - b * sx) / (double)k;
    double vy = (double)k * syy - sy * sy;
    *r2 = vy > 0 ? (b * ((double)k * sxy - sx * sy)) / vy : 0;
    *first = a;
    *rise = b * span;
    return b;
}

/* ---- resources ------------------------------------------------------------------------------------ */

static double proc_fds(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    if (!d)
        return NAN;
    int n = 0;
    for (struct dirent *de; (de = readdir(d));)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static double proc_fd_limit(int pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/limits", pid);
    if (read_small(path, buf, sizeof buf) <= 0)
        return NAN;
    char *l = strstr(buf, "Max open files");
    if (!l)
        return NAN;
    char *p = l + strlen("Max open files");
    while (*p == ' ')
        p++;
    if (!strncmp(p, "unlimited", 9))
        return INFINITY;
    return strtod(p, NULL);
}

/* /proc/PID/stat: threads (field 20) and rss pages (field 24). */
static void proc_stat(int pid, double *threads, double *rss)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (read_small(path, buf, sizeof buf) <= 0)
        return;
    char *p = strrchr(buf, ')');
    if (!p)
        return;
    p += 2; /* field 3 on */
    long long f[24] = {0};
    int i = 3;
    for (char *save = NULL, *t = strtok_r(p, " ", &save); t && i <= 24; t = strtok_r(NULL, " ", &save), i++)
        f[i - 1] = strtoll(t, NULL, 10);
    if (isnan(*threads))
        *threads = (double)f[19];
    if (isnan(*rss))
        *rss = (double)f[23] * (double)sysconf(_SC_PAGESIZE);
}

/* The memory series of the service: process.rss_bytes{name=...} or apps.memory_rss_bytes{app=...}. */
static int rss_series(sig *s)
{
    mem_series_info *all;
    size_t n;
    if (!s->ctx->mem || mem_series_snapshot(s->ctx->mem, &all, &n))
        return -1;
    int best = -1;
    int64_t best_ts = -1;
    for (size_t i = 0; i < n; i++) {
        bool proc = !strcmp(all[i].name, "process.rss_bytes"), app = !strcmp(all[i].name, "apps.memory_rss_bytes");
        if (!proc && !app)
            continue;
        json_t *lab = mem_labels_json(all[i].labels);
        bool mine = ours_labels(s, lab);
        json_decref(lab);
        if (mine && (all[i].last_ts > best_ts || (proc && best >= 0 && all[i].last_ts == best_ts))) {
            best = all[i].id;
            best_ts = all[i].last_ts;
        }
    }
    free(all);
    return best;
}

static void resources(sig *s)
{
    double rss = jnum(s->ev, "rss_bytes"), cpu = jnum(s->ev, "cpu_percent"), fds = jnum(s->ev, "fds");
    double threads = jnum(s->ev, "threads"), limit = NAN;
    if (rss == 0) /* heal sampled a zombie (the process had exited): nothing known */
        rss = cpu = fds = threads = NAN;
    bool gone = jnum(s->svc, "rss_bytes") == 0; /* the same in heal's services JSON */
    if (isnan(rss) && !gone)
        rss = jnum(s->svc, "rss_bytes");
    if (isnan(cpu) && !gone)
        cpu = jnum(s->svc, "cpu_percent");
    if (s->pid > 0) {
        if (isnan(fds))
            fds = proc_fds(s->pid);
        proc_stat(s->pid, &threads, &rss);
        limit = proc_fd_limit(s->pid);
    }
    json_t *r = json_object_get(s->o, "resources");
    json_object_set_new(r, "rss_bytes", num_or_null(rss));
    json_object_set_new(r, "cpu_percent", num_or_null(cpu));
    json_object_set_new(r, "fds", num_or_null(fds));
    json_object_set_new(r, "fd_limit", num_or_null(limit));
    json_object_set_new(r, "threads", num_or_null(threads));
    if (!isnan(fds) && !isnan(limit) && !isinf(limit) && limit > 0 && fds >= FD_NEAR_LIMIT * limit)
        feature(s, "res:fds_near_limit");
    if (!isnan(cpu) && cpu >= 90.0)
        feature(s, "res:cpu_high");
    int id = rss_series(s);
    double first, rise, r2;
    double w = id >= 0 ? series_slope(s, id, s->from, s->to, &first, &rise, &r2) : NAN;
    double m10 = id >= 0 ? series_slope(s, id, s->to - 600000, s->to, &first, &rise, &r2) : NAN;
    json_object_set_new(r, "rss_slope_bps", num_or_null(w));
    json_object_set_new(r, "rss_slope_10m_bps", num_or_null(m10));
    /* a leak: a steady rise over the last 10 minutes, at least 5 % and 4 MiB */
    if (!isnan(m10) && m10 > 0 && r2 >= 0.7 && rise >= 4.0 * 1048576 && first > 0 && rise >= 0.05 * first)
        feature(s, "res:rss_rising");
}

/* ---- pressure ------------------------------------------------------------------------------------- */

static double psi_now(const char *res)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/pressure/%s", res);
    if (read_small(path, buf, sizeof buf) <= 0)
        return NAN;
    char *p = strstr(buf, "some avg10=");
    return p ? strtod(p + 11, NULL) : NAN;
}

static void pressure(sig *s)
{
    static const char *const res[3] = {"cpu", "memory", "io"};
    static const double limit[3] = {PSI_CPU, PSI_MEMORY, PSI_IO};
    json_t *p = json_object_get(s->o, "pressure");
    for (int i = 0; i < 3; i++) {
        char lab[64];
        snprintf(lab, sizeof lab, "resource=\"%s\"", res[i]);
        int id = s->ctx->mem ? mem_series_find(s->ctx->mem, "psi.some_avg10_percent", lab) : -ENOENT;
        double v = id >= 0 ? series_max(s, id, s->from - 60000, s->to) : NAN;
        if (isnan(v) && id < 0) /* no series (sensing off): the kernel's figure now */
            v = psi_now(res[i]);
        json_object_set_new(p, res[i], num_or_null(v));
        if (!isnan(v) && v >= limit[i])
            feature(s, "pressure:%s", res[i]);
    }
}

/* ---- filesystems ---------------------------------------------------------------------------------- */

typedef struct fsent {
    char mount[512];
    int used_id, inodes_id;
} fsent;

/* The fs.* series by mountpoint. */
static fsent *fs_series(sig *s, int *nout)
{
    mem_series_info *all;
    size_t n;
    *nout = 0;
    if (!s->ctx->mem || mem_series_snapshot(s->ctx->mem, &all, &n))
        return NULL;
    fsent *fs = calloc(n ? n : 1, sizeof *fs);
    int m = 0;
    for (size_t i = 0; fs && i < n; i++) {
        bool used = !strcmp(all[i].name, "fs.used_percent"), ino = !strcmp(all[i].name, "fs.inodes_used_percent");
        if (!used && !ino)
            continue;
        json_t *lab = mem_labels_json(all[i].labels);
        const char *mp = jstr(lab, "mountpoint");
        int k = 0;
        while (k < m && strcmp(fs[k].mount, mp))
            k++;
        if (k == m && mp[0]) {
            snprintf(fs[m].mount, sizeof fs[m].mount, "%s", mp);
            fs[m].used_id = fs[m].inodes_id = -1;
            m++;
        }
        if (k < m)
            *(used ? &fs[k].used_id : &fs[k].inodes_id) = all[i].id;
        json_decref(lab);
    }
    free(all);
    *nout = m;
    return fs;
}

static bool under(const char *path, const char *mount)
{
    size_t l = strlen(mount);
    if (!strcmp(mount, "/"))
        return path[0] == '/';
    return !strncmp(path, mount, l) && (path[l] == 0 || path[l] == '/');
}

static void fs_add(sig *s, const char *path, const char *mount, double used, double ino, bool mine)
{
    json_t *arr = json_object_get(s->o, "filesystems");
    size_t i;
    json_t *v;
    const char *key = mount ? mount : path; /* NULL mount: statvfs of the path, its mountpoint unknown */
    json_array_foreach(arr, i, v) if (!strcmp(jstr(v, "mountpoint")[0] ? jstr(v, "mountpoint") : jstr(v, "path"), key)) return;
    if (json_array_size(arr) >= BRAIN_SIG_LIST_MAX)
        return;
    json_array_append_new(arr, json_pack("{s:s, s:o, s:o, s:o, s:b}", "path", path, "mountpoint",
                                         mount ? json_string(mount) : json_null(),
                                         "used_percent", num_or_null(used), "inodes_percent", num_or_null(ino),
                                         "service", mine));
    const char *other = mine ? "" : ":other";
    if (!isnan(used) && used >= FS_FULL_PERCENT)
        feature(s, "fs:full%s", other);
    if (!isnan(ino) && ino >= FS_FULL_PERCENT)
        feature(s, "fs:inodes_full%s", other);
}

/* statvfs of path (or the nearest existing parent): used and inode percent, as df shows. */
static void fs_stat(const char *path, double *used, double *ino)
{
    char p[1024];
    snprintf(p, sizeof p, "%s", path);
    struct statvfs v;
    while (statvfs(p, &v)) {
        char *sl = strrchr(p, '/');
        if (!sl || sl == p) {
            if (statvfs("/", &v))
                return;
            break;
        }
        *sl = 0;
    }
    double u = (double)(v.f_blocks - v.f_bfree), a = (double)v.f_bavail;
    *used = u + a > 0 ? 100.0 * u / (u + a) : NAN;
    *ino = v.f_files ? 100.0 * (double)(v.f_files - v.f_ffree) / (double)v.f_files : NAN;
}

static void filesystems(sig *s)
{
    const char *paths[BRAIN_SIG_LIST_MAX + 1];
    int np = 0;
    for (int i = 0; i < s->ctx->nconfig_paths && s->ctx->config_paths && np < BRAIN_SIG_LIST_MAX; i++)
        paths[np++] = s->ctx->config_paths[i];
    size_t ci;
    json_t *cp;
    json_array_foreach(json_object_get(s->svc, "config_paths"), ci, cp) /* heal's list too */
    {
        const char *p = jstr(cp, "path");
        bool dup = !p[0];
        for (int i = 0; i < np && !dup; i++)
            dup = !strcmp(paths[i], p);
        if (!dup && np < BRAIN_SIG_LIST_MAX)
            paths[np++] = p;
    }
    char cwd[1024] = "", link[64];
    snprintf(link, sizeof link, "/proc/%d/cwd", s->pid);
    ssize_t l = s->pid > 0 ? readlink(link, cwd, sizeof cwd - 1) : -1;
    if (l > 0) {
        cwd[l] = 0;
        paths[np++] = cwd;
    }
    int nfs;
    fsent *fs = fs_series(s, &nfs);
    int64_t from = s->from - 60000;
    for (int i = 0; i < np; i++) {
        int best = -1;
        for (int k = 0; k < nfs; k++)
            if (under(paths[i], fs[k].mount) && (best < 0 || strlen(fs[k].mount) > strlen(fs[best].mount)))
                best = k;
        double used = NAN, ino = NAN;
        if (best >= 0) {
            used = fs[best].used_id >= 0 ? series_max(s, fs[best].used_id, from, s->to) : NAN;
            ino = fs[best].inodes_id >= 0 ? series_max(s, fs[best].inodes_id, from, s->to) : NAN;
        }
        if (best < 0 || (isnan(used) && isnan(ino))) {
            fs_stat(paths[i], &used, &ino);
            fs_add(s, paths[i], best >= 0 ? fs[best].mount : NULL, used, ino, true);
        } else {
            fs_add(s, paths[i], fs[best].mount, used, ino, true);
        }
    }
    for (int k = 0; k < nfs; k++) { /* any nearly full filesystem */
        double used = fs[k].used_id >= 0 ? series_max(s, fs[k].used_id, from, s->to) : NAN;
        double ino = fs[k].inodes_id >= 0 ? series_max(s, fs[k].inodes_id, from, s->to) : NAN;
        if ((!isnan(used) && used >= FS_FULL_PERCENT) || (!isnan(ino) && ino >= FS_FULL_PERCENT))
            fs_add(s, fs[k].mount, fs[k].mount, used, ino, false);
    }
    free(fs);
}

/* ---- changes -------------------------------------------------------------------------------------- */

/* Whether member k is the same in a and b (both absent counts as the same:
 * a directory has no sha256). */
static bool same(const json_t *a, const json_t *b, const char *k)
{
    const json_t *x = json_object_get(a, k), *y = json_object_get(b, k);
    return (!x && !y) || (x && y && json_equal(x, y));
}

static void change_features(sig *s, const json_t *c)
{
    const char *kind = jstr(c, "kind");
    feature(s, "change:%s", kind);
    if (strcmp(kind, "file"))
        return;
    const json_t *d = json_object_get(c, "detail"), *was = json_object_get(d, "was"), *now = json_object_get(d, "now");
    if (!json_is_object(now)) {
        feature(s, "change:file:deleted");
        return;
    }
    if (!json_is_object(was)) {
        feature(s, "change:file:created");
        return;
    }
    if (!same(was, now, "mode"))
        feature(s, "change:file:mode");
    if (!same(was, now, "uid") || !same(was, now, "gid"))
        feature(s, "change:file:owner");
    if (!same(was, now, "sha256") || !same(was, now, "type"))
        feature(s, "change:file:content");
}

/* Newest first; file changes before the other kinds of the list. */
static void changes_take(sig *s, json_t *list)
{
    json_t *arr = json_object_get(s->o, "changes");
    for (int pass = 0; pass < 2; pass++)
        for (size_t k = json_array_size(list); k-- > 0 && json_array_size(arr) < BRAIN_SIG_LIST_MAX;) {
            json_t *c = json_array_get(list, k);
            if ((pass == 0) != !strcmp(jstr(c, "kind"), "file"))
                continue;
            json_array_append(arr, c);
            change_features(s, c);
        }
}

static void changes(sig *s)
{
    int64_t back = s->from - BRAIN_SIG_BACK_CHANGES_MS;
    json_t *files = json_array(), *audit = json_array(), *pk = json_array();
    if (s->ctx->mem)
        brain_changes_events(s->ctx->mem, s->service, back, s->to, files, s->notes);
    changes_take(s, files);
    const char *ap = s->ctx->audit_path;
    if (!ap && s->ctx->heal)
        ap = heal_engine_audit_path(s->ctx->heal);
    if (ap && !late(s, "audit")) /* heal's own actions before the incident (not its reflex to it) */
        brain_changes_audit(ap, s->service, back, s->from - 1, s->deadline, audit, s->notes);
    changes_take(s, audit);
    if (!late(s, "packages"))
        brain_changes_dpkg(s->ctx->dpkg_log_path ? s->ctx->dpkg_log_path : "/var/log/dpkg.log",
                           s->from - BRAIN_SIG_BACK_PACKAGES_MS, s->to, s->deadline, pk, s->notes);
    changes_take(s, pk);
    json_decref(files);
    json_decref(audit);
    json_decref(pk);
}

/* ---- cpu_top -------------------------------------------------------------------------------------- */

typedef struct psample {
    int pid;
    unsigned long long ticks;
    char comm[32];
} psample;

static int sample_procs(psample **out)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -errno;
    int n = 0, cap = 256;
    psample *v = malloc(sizeof *v * (size_t)cap);
    for (struct dirent *de; v && (de = readdir(d));) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        char path[64], buf[1024];
        snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
        if (read_small(path, buf, sizeof buf) <= 0)
            continue;
        char *o = strchr(buf, '('), *c = strrchr(buf, ')');
        if (!o || !c || c < o)
            continue;
        unsigned long long ut = 0, st = 0;
        if (sscanf(c + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
            continue;
        if (n == cap) {
            psample *nv = realloc(v, sizeof *v * (size_t)(cap *= 2));
            if (!nv)
                break;
            v = nv;
        }
        v[n].pid = atoi(de->d_name);
        v[n].ticks = ut + st;
        snprintf(v[n].comm, sizeof v[n].comm, "%.*s", (int)(c - o - 1), o + 1);
        n++;
    }
    closedir(d);
    *out = v;
    return v ? n : -ENOMEM;
}

/* The top 3 applications by the apps.cpu_percent series (sensed in the last
 * 10 s): no pids, but no waiting. false when there are none. */
static bool cpu_top_series(sig *s)
{
    mem_series_info *all;
    size_t n;
    if (!s->ctx->mem || mem_series_snapshot(s->ctx->mem, &all, &n))
        return false;
    int64_t now = core_now_ms();
    int top[3] = {-1, -1, -1};
    for (size_t i = 0; i < n; i++) {
        if (strcmp(all[i].name, "apps.cpu_percent") || isnan(all[i].last) || all[i].last_ts < now - 10000)
            continue;
        for (int k = 0; k < 3; k++)
            if (top[k] < 0 || all[i].last > all[top[k]].last) {
                memmove(top + k + 1, top + k, sizeof top[0] * (size_t)(2 - k));
                top[k] = (int)i;
                break;
            }
    }
    json_t *arr = json_object_get(s->o, "cpu_top");
    for (int k = 0; k < 3 && top[k] >= 0; k++) {
        json_t *lab = mem_labels_json(all[top[k]].labels);
        const char *app = jstr(lab, "app");
        bool mine = ours_comm(s, app) || !strcmp(app, s->service);
        double pct = all[top[k]].last;
        json_array_append_new(arr, json_pack("{s:i, s:s, s:f, s:b}", "pid", 0, "comm", app, "cpu_percent",
                                             round(pct * 10) / 10, "service", mine));
        if (!mine && pct >= CPU_HOG_PERCENT && strcmp(app, "kernel"))
            feature(s, "cpu:hog");
        json_decref(lab);
    }
    free(all);
    return top[0] >= 0;
}

static void cpu_top(sig *s)
{
    if (s->deadline - brain_sig_mono_ms() < 130) {
        if (cpu_top_series(s))
            note(s, "cpu_top: from the apps.cpu_percent series (no time left for two /proc samples)");
        else
            note(s, "cpu_top: skipped, not enough time left before the deadline for two samples");
        return;
    }
    psample *a = NULL, *b = NULL;
    int64_t t00 = brain_sig_mono_ms();
    int na = sample_procs(&a);
    int64_t t0 = brain_sig_mono_ms();
    if (s->deadline - t0 < 100 + (t0 - t00) + 5) { /* the second sample would end past the deadline */
        note(s, "cpu_top: skipped, reading /proc took %lld ms, too long for the deadline", (long long)(t0 - t00));
        free(a);
        return;
    }
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
    int nb = sample_procs(&b);
    double secs = (double)(brain_sig_mono_ms() - t0) / 1000.0, hz = (double)sysconf(_SC_CLK_TCK);
    int top[3] = {-1, -1, -1};
    double pct[3] = {0, 0, 0};
    for (int i = 0; i < nb && na > 0 && secs > 0; i++) {
        int lo = 0, hi = na - 1, j = -1; /* /proc lists pids in order */
        while (lo <= hi) {
            int mid = (lo + hi) / 2;
            if (a[mid].pid == b[i].pid) {
                j = mid;
                break;
            }
            if (a[mid].pid < b[i].pid)
                lo = mid + 1;
            else
                hi = mid - 1;
        }
        if (j < 0 || b[i].ticks < a[j].ticks)
            continue;
        double p = 100.0 * (double)(b[i].ticks - a[j].ticks) / hz / secs;
        for (int k = 0; k < 3; k++)
            if (p > pct[k] && p > 0) {
                memmove(top + k + 1, top + k, sizeof top[0] * (size_t)(2 - k));
                memmove(pct + k + 1, pct + k, sizeof pct[0] * (size_t)(2 - k));
                top[k] = i;
                pct[k] = p;
                break;
            }
    }
    json_t *arr = json_object_get(s->o, "cpu_top");
    for (int k = 0; k < 3 && top[k] >= 0; k++) {
        bool mine = ours_pid(s, b[top[k]].pid) || ours_comm(s, b[top[k]].comm);
        json_array_append_new(arr, json_pack("{s:i, s:s, s:f, s:b}", "pid", b[top[k]].pid, "comm", b[top[k]].comm,
                                             "cpu_percent", round(pct[k] * 10) / 10, "service", mine));
        if (!mine && pct[k] >= CPU_HOG_PERCENT && b[top[k]].pid != getpid())
            feature(s, "cpu:hog");
    }
    free(a);
    free(b);
}

/* ---- features order ------------------------------------------------------------------------------- */

static int feat_rank(const char *f)
{
    static const char *const order[] = {"exit:", "probe:", "rule:", "kernel:", "log:hint:", "port:", "dep:", "change:file",
                                        "fs:", "res:", "log:", "change:", "pressure:", "cpu:", "anomaly:"};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (!strncmp(f, order[i], strlen(order[i])))
            return (int)i;
    return 99;
}

static void order_features(sig *s)
{
    size_t n = json_array_size(s->feat);
    json_t *out = json_array();
    for (int r = 0; r <= 99; r++)
        for (size_t i = 0; i < n; i++) {
            json_t *f = json_array_get(s->feat, i);
            if (feat_rank(json_string_value(f)) == r && json_array_size(out) < BRAIN_SIG_LIST_MAX)
                json_array_append(out, f);
        }
    if (n > BRAIN_SIG_LIST_MAX)
        note(s, "features: %zu found, the %d most relevant kept", n, BRAIN_SIG_LIST_MAX);
    json_object_set_new(s->o, "features", out);
}

/* ---- the whole ------------------------------------------------------------------------------------ */

static json_t *skeleton(const char *service, const char *trigger, const json_t *inc, int64_t from, int64_t to)
{
    json_t *id = json_object_get(inc, "id");
    return json_pack("{s:s, s:o, s:I, s:I, s:s, s:[], s:[], s:[], s:[], s:[], s:{}, s:{}, s:[], s:[], s:[], s:[], "
                     "s:[], s:[], s:[]}",
                     "service", service, "incident", json_is_integer(id) ? json_integer(json_integer_value(id)) : json_null(),
                     "from", (json_int_t)from, "to", (json_int_t)to, "trigger", trigger && trigger[0] ? trigger : "user",
                     "probes", "exits", "anomalies", "logs", "kernel", "pressure", "resources", "filesystems",
                     "changes", "ports", "dependencies", "cpu_top", "features", "notes");
}

json_t *brain_signature_build(const brain_sig_ctx *ctx, const char *service, const char *trigger,
                              const json_t *incident_json, int64_t from_ms, int64_t to_ms)
{
    if (!ctx || !service)
        return NULL;
    sig s = {.ctx = ctx, .service = service, .from = from_ms, .to = to_ms >= from_ms ? to_ms : from_ms};
    s.started = brain_sig_mono_ms();
    s.deadline = s.started + (ctx->deadline_ms > 0 ? ctx->deadline_ms : BRAIN_SIG_DEADLINE_MS);
    s.o = skeleton(service, trigger, incident_json, from_ms, s.to);
    if (!s.o)
        return NULL;
    s.notes = json_object_get(s.o, "notes");
    s.feat = json_array();
    s.inc = json_is_object(incident_json) ? incident_json : NULL;
    s.ev = json_object_get(s.inc, "evidence");
    if (s.inc && !json_is_object(s.ev))
        note(&s, "incident: no evidence object");
    load_services(&s);
    exits(&s);
    probes(&s);
    ports(&s);
    log_tail(&s);
    if (!late(&s, "logs"))
        logs(&s);
    if (!late(&s, "anomalies"))
        anomalies(&s);
    if (!late(&s, "resources"))
        resources(&s);
    dependencies(&s);
    if (!late(&s, "pressure"))
        pressure(&s);
    if (!late(&s, "filesystems"))
        filesystems(&s);
    if (!late(&s, "changes"))
        changes(&s);
    if (!late(&s, "kernel"))
        kernel(&s);
    if (!late(&s, "cpu_top"))
        cpu_top(&s);
    order_features(&s);
    json_decref(s.feat);
    json_decref(s.svcs);
    json_object_set_new(s.o, "took_ms", json_integer(brain_sig_mono_ms() - s.started));
    return s.o;
}
