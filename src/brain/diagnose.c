/* diagnose.c: the diagnosis rule catalogue. A signature (the contract's
 * JSON) in, a diagnosis out: each rule of the table looks for the evidence of
 * one single-host fault, scores its confidence, names the root cause in a
 * sentence and proposes heal's typed actions (rule-language text) in the
 * order they are likely to heal. The best-scoring rule wins; remembered cases
 * that healed raise its confidence and put their fix first, or, when a very
 * close case disagrees with weak rules, decide. Pure: no I/O, any thread.
 * docs/brain.md documents every rule. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "brain/brain_int.h"

const char *const brain_fault_types[] = {
    "none", "crash", "bad_environment", "config_error", "oom_kill", "memory_leak", "cpu_starvation",
    "disk_full", "inode_exhaustion", "fd_exhaustion", "port_in_use", "dependency_down", "dns_failure",
    "credential_revoked", "permission_denied", "io_error", "clock_jump", "error_storm", "unknown", NULL,
};

int brain_fault_type_count(void)
{
    int n = 0;
    while (brain_fault_types[n])
        n++;
    return n;
}

bool brain_fault_type_valid(const char *s)
{
    for (int i = 0; s && brain_fault_types[i]; i++)
        if (!strcmp(s, brain_fault_types[i]))
            return true;
    return false;
}

/* ---- reading the signature ------------------------------------------------------ */

static const char *js(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static double jnum(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : 0;
}

static const json_t *list(const json_t *sig, const char *k)
{
    json_t *a = json_object_get(sig, k);
    return json_is_array(a) ? a : NULL;
}

static bool foreign_kernel(const json_t *k);

/* Case-insensitive: does text hold any of the words (NULL-terminated)? */
static const char *has_any(const char *text, const char *const *words)
{
    for (int i = 0; words[i]; i++)
        if (strcasestr(text, words[i]))
            return words[i];
    return NULL;
}

static const char *const W_ENV[] = {"environment variable", "env var", "is not set", "not set", "missing required",
                                    "unset variable", "invalid argument", "unknown option", "unrecognized option",
                                    "usage:", "bad argument", "environment", NULL};
static const char *const W_CONFIG[] = {"config", "parse error", "syntax error", "invalid value", "unknown directive",
                                       "unexpected token", "invalid line", "bad line", "invalid setting",
                                       "unknown key", "yaml", "toml", NULL};
static const char *const W_OOM[] = {"out of memory", "cannot allocate memory", "memoryerror", "enomem", NULL};
static const char *const W_NOSPC[] = {"no space left on device", "enospc", "disk full", "disk quota exceeded", NULL};
static const char *const W_EMFILE[] = {"too many open files", "emfile", "enfile", NULL};
static const char *const W_INUSE[] = {"address already in use", "eaddrinuse", "address in use", NULL};
static const char *const W_DNS[] = {"name resolution", "name or service not known", "could not resolve",
                                    "nxdomain", "getaddrinfo", "no address associated", "unknown host",
                                    "resolve host", "dns", NULL};
static const char *const W_AUTH[] = {"authentication failed", "auth failed", "unauthorized", "invalid credentials",
                                     "invalid token", "token expired", "expired", "revoked", "access denied",
                                     "forbidden", "invalid password", "login failed", "invalid api key",
                                     "credential", "401", "403", NULL};
static const char *const W_PERM[] = {"permission denied", "eacces", "operation not permitted", "eperm", NULL};
static const char *const W_IO[] = {"input/output error", "i/o error", "eio", NULL};
static const char *const W_REFUSED[] = {"connection refused", "econnrefused", "could not connect",
                                        "connection reset", "unavailable", NULL};

/* The first log entry whose sample or template holds one of words, else
 * the first line of the service's captured output (log_tail, strings) that
 * does (ippocd's own supervisor lines left out). */
static const json_t *log_with(const json_t *sig, const char *const *words)
{
    size_t i;
    json_t *e;
    json_array_foreach(list(sig, "logs"), i, e) {
        if (has_any(js(e, "sample"), words) || has_any(js(e, "template"), words))
            return e;
    }
    json_array_foreach(list(sig, "log_tail"), i, e) {
        const char *t = json_string_value(e);
        if (t && !strstr(t, " ippocd: ") && has_any(t, words))
            return e;
    }
    return NULL;
}

static const char *log_text(const json_t *e)
{
    if (json_is_string(e))
        return json_string_value(e);
    const char *s = js(e, "sample");
    return *s ? s : js(e, "template");
}

static bool has_feature(const json_t *sig, const char *tok)
{
    size_t i;
    json_t *v;
    json_array_foreach(list(sig, "features"), i, v) {
        if (json_string_value(v) && !strcmp(json_string_value(v), tok))
            return true;
    }
    return false;
}

/* What a changed file is for, from its path. */
enum { F_CONFIG, F_ENV, F_CRED, F_RESOLV };

static int file_class(const char *p)
{
    const char *base = strrchr(p, '/');
    base = base ? base + 1 : p;
    if (strstr(p, "resolv.conf") || strstr(p, "nsswitch") || !strcmp(base, "hosts"))
        return F_RESOLV;
    if (strcasestr(base, "env") || strstr(p, "/etc/default/") || strstr(p, "/sysconfig/"))
        return F_ENV;
    static const char *const cred[] = {"cred", "secret", "token", "passw", ".pem", ".key", "htpasswd", "auth",
                                       "apikey", "api_key", NULL};
    if (has_any(base, cred))
        return F_CRED;
    return F_CONFIG;
}

/* The newest file change of class cls (-1: any class). */
static const json_t *change_of(const json_t *sig, int cls)
{
    const json_t *a = list(sig, "changes");
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e) {
        if (strcmp(js(e, "kind"), "file") != 0)
            continue;
        if (cls < 0 || file_class(js(e, "what")) == cls)
            return e;
    }
    return NULL;
}

/* A change that altered the file's mode or owner. */
static const json_t *mode_change(const json_t *sig)
{
    const json_t *a = list(sig, "changes");
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e) {
        json_t *d = json_object_get(e, "detail");
        json_t *was = json_object_get(d, "was"), *now = json_object_get(d, "now");
        if (!json_is_object(was) || !json_is_object(now))
            continue;
        static const char *const keys[] = {"mode", "uid", "gid"};
        for (int k = 0; k < 3; k++)
            if (!json_equal(json_object_get(was, keys[k]), json_object_get(now, keys[k])))
                return e;
    }
    return NULL;
}

/* The first added line of a change's diff ("" when none). */
static void change_line(const json_t *c, char *buf, size_t n)
{
    buf[0] = 0;
    const json_t *d = json_object_get(json_object_get(c, "detail"), "diff");
    size_t i;
    json_t *l;
    json_array_foreach(d, i, l) {
        const char *s = json_string_value(l);
        if (s && s[0] == '+') {
            snprintf(buf, n, " (now '%.120s')", s + 1);
            return;
        }
    }
}

/* ---- the deliberation's scratch ------------------------------------------------- */
typedef struct facts {
    const char *svc;
    int nexits;
    int code, signal;
    int64_t uptime_ms, exit_ts;
    bool at_start;        /* exited within 10 s of starting */
    int nprobes_failed;
    const json_t *probe;  /* the first failed probe */
    bool probe_slow;      /* timeout or latency */
    double psi_cpu, psi_mem, psi_io;
    bool error_logs;
} facts;

/* Control characters (a command line's newlines) become blanks. */
static void flatten(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20)
            *s = ' ';
}

typedef struct dctx {
    const json_t *sig;
    const facts *f;
    const char *fault;
    char component[64];
    char root[600];
    double conf;
    json_t *evidence;
    json_t *actions;
} dctx;

static void ev(dctx *d, const char *kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void ev(dctx *d, const char *kind, const char *fmt, ...)
{
    char buf[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    flatten(buf);
    json_array_append_new(d->evidence, json_pack("{s:s, s:s}", "kind", kind, "text", buf));
}

static void act(dctx *d, const char *service, const char *why, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void act(dctx *d, const char *service, const char *why, const char *fmt, ...)
{
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    json_array_append_new(d->actions, json_pack("{s:s, s:s, s:s}", "action", buf, "service", service, "why", why));
}

static void root(dctx *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void root(dctx *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->root, sizeof d->root, fmt, ap);
    va_end(ap);
    flatten(d->root);
}

static void ev_exit(dctx *d)
{
    const facts *f = d->f;
    if (!f->nexits)
        return;
    if (f->signal)
        ev(d, "exit", "%s was killed by signal %d after %lld ms (%d exit%s)", f->svc, f->signal,
           (long long)f->uptime_ms, f->nexits, f->nexits > 1 ? "s" : "");
    else
        ev(d, "exit", "%s exited with code %d after %lld ms (%d exit%s)", f->svc, f->code, (long long)f->uptime_ms,
           f->nexits, f->nexits > 1 ? "s" : "");
}

static void ev_log(dctx *d, const json_t *l)
{
    if (l)
        ev(d, "log", "%s log: '%.240s'%s", d->f->svc, log_text(l),
           json_is_true(json_object_get(l, "new")) ? " (a new template)" : json_is_string(l) ? " (its output)" : "");
}

static void ev_change(dctx *d, const json_t *c)
{
    char line[160];
    change_line(c, line, sizeof line);
    ev(d, "change", "%s changed%s", js(c, "what"), line);
}

/* "restart" when the service is down (it exited), so the fix takes effect. */
static void act_restart(dctx *d, const char *why)
{
    act(d, d->f->svc, why, "restart");
}

static void act_alert(dctx *d, const char *why)
{
    act(d, d->f->svc, why, "alert");
}

static const char *exit_phrase(const facts *f, char *buf, size_t n)
{
    if (!f->nexits)
        snprintf(buf, n, "%s fails its probe", f->svc);
    else if (f->signal)
        snprintf(buf, n, "%s is killed by signal %d%s", f->svc, f->signal, f->at_start ? " at start" : "");
    else
        snprintf(buf, n, "%s exits %d%s", f->svc, f->code, f->at_start ? " at start" : "");
    return buf;
}

static void ago(const facts *f, const json_t *c, char *buf, size_t n)
{
    int64_t ts = (int64_t)jnum(c, "ts");
    if (ts && f->exit_ts && f->exit_ts >= ts)
        snprintf(buf, n, " %lld s before", (long long)((f->exit_ts - ts + 500) / 1000));
    else
        buf[0] = 0;
}

/* ---- the rules --------------------------------------------------------------------- */

/* An OOM kill belongs to this incident only when it is close to it: just
 * before the exit it explains, or, without an exit, inside the window. An
 * older kill of a pid the service had (an earlier incident, already healed)
 * says nothing about this one. */
#define OOM_NEAR_EXIT_MS 10000
static bool oom_recent(const dctx *d, const json_t *k)
{
    int64_t ts = (int64_t)jnum(k, "ts");
    if (d->f->nexits && d->f->exit_ts)
        return ts <= d->f->exit_ts + 1000 && ts >= d->f->exit_ts - OOM_NEAR_EXIT_MS;
    return ts >= (int64_t)jnum(d->sig, "from") - OOM_NEAR_EXIT_MS;
}

static double r_oom(dctx *d)
{
    const facts *f = d->f;
    const json_t *a = list(d->sig, "kernel");
    size_t i;
    json_t *k;
    json_array_foreach(a, i, k) {
        if (strcmp(js(k, "kind"), "oom_kill") != 0 || !oom_recent(d, k))
            continue;
        const char *comm = js(k, "comm");
        bool ours = json_is_true(json_object_get(k, "service")) ||
                    (*comm && (!strncmp(comm, f->svc, 15) || strstr(f->svc, comm)));
        if (!ours && (f->signal != 9 || json_is_false(json_object_get(k, "service"))))
            continue; /* another process's OOM kill says nothing about this service */
        ev(d, "kernel", "kernel: %.200s", *js(k, "text") ? js(k, "text") : "OOM kill");
        ev_exit(d);
        root(d, "the kernel's OOM killer killed %s (pid %lld, %s)%s", ours ? f->svc : comm,
             (long long)jnum(k, "pid"), *comm ? comm : "?", f->psi_mem > 0 ? "" : "");
        act_restart(d, "bring the service back after the kill");
        return ours || f->signal == 9 ? 0.95 : 0.75;
    }
    if (f->signal == 9 && f->psi_mem >= 10) {
        ev_exit(d);
        ev(d, "pressure", "memory pressure %.1f%%", f->psi_mem);
        root(d, "%s was killed by SIGKILL under memory pressure (%.0f%%): most likely the OOM killer", f->svc,
             f->psi_mem);
        act_restart(d, "bring the service back after the kill");
        return 0.7;
    }
    const json_t *l = log_with(d->sig, W_OOM);
    if (l && f->nexits) {
        ev_log(d, l);
        ev_exit(d);
        root(d, "%s ran out of memory: '%.160s'", f->svc, log_text(l));
        act_restart(d, "bring the service back");
        return 0.6;
    }
    return 0;
}

static double r_leak(dctx *d)
{
    const facts *f = d->f;
    json_t *res = json_object_get(d->sig, "resources");
    double slope = jnum(res, "rss_slope_10m_bps"), rss = jnum(res, "rss_bytes");
    if (slope <= 0)
        slope = jnum(res, "rss_slope_bps");
    bool rising = has_feature(d->sig, "res:rss_rising");
    const json_t *hit = NULL;
    size_t i;
    json_t *an;
    json_array_foreach(list(d->sig, "anomalies"), i, an) {
        const char *s = js(an, "series"), *why = js(an, "reason");
        if (json_is_false(json_object_get(an, "service")) || (!strstr(s, "rss") && !strstr(s, "memory")))
            continue;
        if (!strcmp(why, "dip") || !strcmp(why, "level_down") || !strcmp(why, "flatline"))
            continue; /* memory going down is no leak */
        hit = an;
        break;
    }
    if (!hit && !rising && !(slope > 100 * 1024 && rss > 0))
        return 0;
    if (hit)
        ev(d, "anomaly", "%s: %s (score %.2f, value %.0f, expected %.0f)", js(hit, "series"), js(hit, "reason"),
           jnum(hit, "score"), jnum(hit, "value"), jnum(hit, "expected"));
    if (slope > 0)
        ev(d, "resource", "rss %.1f MiB, rising %.1f KiB/s", rss / 1048576, slope / 1024);
    ev_exit(d);
    root(d, "%s leaks memory: its resident memory rises steadily (%.1f MiB/min, now %.0f MiB)", f->svc,
         slope * 60 / 1048576, rss / 1048576);
    act_restart(d, "a restart returns the leaked memory");
    if (hit && (rising || slope > 0))
        return 0.88;
    return hit || rising ? 0.8 : 0.6;
}

static double r_cpu(dctx *d)
{
    const facts *f = d->f;
    const json_t *hog = NULL;
    size_t i;
    json_t *t;
    json_array_foreach(list(d->sig, "cpu_top"), i, t) {
        const char *comm = js(t, "comm");
        json_t *own = json_object_get(t, "service");
        bool other = json_is_boolean(own) ? json_is_false(own) : strncmp(comm, f->svc, 15) != 0;
        if (jnum(t, "cpu_percent") >= 50 && other) {
            hog = t;
            break;
        }
    }
    if (!hog || (!f->probe_slow && f->psi_cpu < 10))
        return 0;
    if (f->probe)
        ev(d, "probe", "%s: %s %.200s", js(f->probe, "probe"), js(f->probe, "how"), js(f->probe, "message"));
    if (f->psi_cpu > 0)
        ev(d, "pressure", "cpu pressure %.1f%%", f->psi_cpu);
    long long pid = (long long)jnum(hog, "pid");
    ev(d, "resource", "pid %lld (%s) uses %.0f%% CPU", pid, js(hog, "comm"), jnum(hog, "cpu_percent"));
    root(d, "%s is starved of CPU: pid %lld (%s) uses %.0f%% CPU%s", f->svc, pid, js(hog, "comm"),
         jnum(hog, "cpu_percent"), f->probe_slow ? " and the service's probe is slow" : "");
    act(d, f->svc, "lowest priority for the CPU hog", "renice 19 pid %lld", pid);
    act(d, f->svc, "stop the CPU hog when lowering its priority is not enough", "signal TERM pid %lld", pid);
    return f->probe_slow ? (f->psi_cpu >= 10 ? 0.9 : 0.85) : 0.6;
}

static double fs_rule(dctx *d, bool inodes)
{
    const facts *f = d->f;
    const json_t *full = NULL;
    size_t i;
    json_t *fs;
    const json_t *l = log_with(d->sig, W_NOSPC);
    json_array_foreach(list(d->sig, "filesystems"), i, fs) {
        /* the service's own filesystems; another full one only with ENOSPC in its logs */
        if (jnum(fs, inodes ? "inodes_percent" : "used_percent") >= 95 &&
            (!json_is_false(json_object_get(fs, "service")) || l)) {
            full = fs;
            break;
        }
    }
    if (!full)
        return 0;
    const char *path = js(full, "path");
    if (json_is_false(json_object_get(full, "service")) && *js(full, "mountpoint"))
        path = js(full, "mountpoint");
    ev(d, "fs", "%s: %.1f%% of its %s used", path, jnum(full, inodes ? "inodes_percent" : "used_percent"),
       inodes ? "inodes" : "space");
    ev_log(d, l);
    ev_exit(d);
    root(d, "the filesystem of %s has no %s left (%.1f%% used)%s%s%s", path, inodes ? "inodes" : "space",
         jnum(full, inodes ? "inodes_percent" : "used_percent"), l ? ": " : "", l ? f->svc : "",
         l ? " fails to write" : "");
    if (!strcmp(path, "/") || !*path) {
        act_alert(d, "no directory of the service to clean on the root filesystem");
    } else {
        if (inodes)
            act(d, f->svc, "remove the files that use up the inodes", "clean %s", path);
        else
            act(d, f->svc, "remove the large files that fill the filesystem", "clean %s larger than 1MB", path);
        if (f->nexits)
            act_restart(d, "start the service again once there is room");
    }
    return l ? 0.9 : 0.7;
}

static double r_disk(dctx *d) { return fs_rule(d, false); }
static double r_inode(dctx *d) { return fs_rule(d, true); }

static double r_fd(dctx *d)
{
    const facts *f = d->f;
    json_t *res = json_object_get(d->sig, "resources");
    double fds = jnum(res, "fds"), lim = jnum(res, "fd_limit");
    bool near = lim > 0 && fds >= 0.9 * lim;
    const json_t *l = log_with(d->sig, W_EMFILE);
    if (!l && !near)
        return 0;
    ev_log(d, l);
    if (lim > 0)
        ev(d, "resource", "%s has %.0f open files of %.0f allowed", f->svc, fds, lim);
    root(d, "%s ran out of file descriptors (%.0f of %.0f open)%s", f->svc, fds, lim,
         l ? ": 'Too many open files'" : "");
    act_restart(d, "a restart closes the leaked descriptors");
    return l && near ? 0.9 : l ? 0.75 : 0.6;
}

static double r_port(dctx *d)
{
    const facts *f = d->f;
    const json_t *l = log_with(d->sig, W_INUSE);
    const json_t *holder = NULL;
    size_t i;
    json_t *p;
    json_array_foreach(list(d->sig, "ports"), i, p) {
        if (jnum(p, "pid") > 0) {
            holder = p;
            break;
        }
    }
    if (!l && !(holder && f->nexits))
        return 0;
    ev_log(d, l);
    ev_exit(d);
    if (holder) {
        long long pid = (long long)jnum(holder, "pid");
        ev(d, "port", "port %lld is held by pid %lld (%s)", (long long)jnum(holder, "port"), pid,
           js(holder, "command"));
        root(d, "%s cannot bind port %lld: it is held by pid %lld (%.80s)", f->svc, (long long)jnum(holder, "port"),
             pid, js(holder, "command"));
        act(d, f->svc, "free the port from the process holding it", "signal TERM pid %lld", pid);
        act_restart(d, "start the service on the freed port");
        return l ? 0.95 : 0.7;
    }
    root(d, "%s cannot bind its port: 'Address already in use'", f->svc);
    act_restart(d, "try again once the port is free");
    return 0.75;
}

static double r_dep(dctx *d)
{
    const facts *f = d->f;
    size_t i;
    json_t *dep;
    json_array_foreach(list(d->sig, "dependencies"), i, dep) {
        const char *st = js(dep, "state");
        if (!json_is_false(json_object_get(dep, "healthy")) && strcmp(st, "failed") != 0 && strcmp(st, "stopped"))
            continue;
        const char *name = js(dep, "service");
        ev(d, "dependency", "%s depends on %s, which is %s", f->svc, name, *st ? st : "unhealthy");
        const json_t *l = log_with(d->sig, W_REFUSED);
        ev_log(d, l);
        snprintf(d->component, sizeof d->component, "%s", name);
        root(d, "%s is down (%s), and %s depends on it", name, *st ? st : "unhealthy", f->svc);
        act(d, name, "bring the dependency back", "restart");
        return l || f->nprobes_failed ? 0.9 : 0.85;
    }
    return 0;
}

/* A log line of words and a changed file of class cls: restore the file. */
static double change_rule(dctx *d, const char *const *words, int cls, const char *what, double both,
                          double log_only, double change_only)
{
    const facts *f = d->f;
    const json_t *l = log_with(d->sig, words);
    const json_t *c = change_of(d->sig, cls);
    bool failing = f->nexits || f->nprobes_failed || f->error_logs;
    if (!failing || (!l && !c) || (!l && !change_only))
        return 0;
    ev_exit(d);
    ev_log(d, l);
    char ph[160], line[160], when[40];
    exit_phrase(f, ph, sizeof ph);
    if (c) {
        ev_change(d, c);
        change_line(c, line, sizeof line);
        ago(f, c, when, sizeof when);
        root(d, "%s: its %s %s changed%s%s", ph, what, js(c, "what"), when, line);
        act(d, f->svc, "put back the last known-good copy", "restore %s", js(c, "what"));
        if (f->nexits || cls != F_RESOLV)
            act_restart(d, "start the service with the restored file");
        return l ? both : change_only;
    }
    root(d, "%s: '%.200s' (no changed %s was seen to restore)", ph, log_text(l), what);
    act_alert(d, "no known-good file to restore: a person must fix it");
    return log_only;
}

static double r_env(dctx *d)
{
    const facts *f = d->f;
    if (!f->nexits)
        return 0;
    double s = change_rule(d, W_ENV, F_ENV, "environment file", 0.93, f->at_start ? 0.8 : 0.6, 0.75);
    return s;
}

static double r_config(dctx *d)
{
    return change_rule(d, W_CONFIG, F_CONFIG, "config", 0.92, d->f->nexits ? 0.7 : 0.5, 0.8);
}

static double r_dns(dctx *d)
{
    const facts *f = d->f;
    bool probe_dns = f->probe && !strcmp(js(f->probe, "how"), "dns");
    const json_t *l = log_with(d->sig, W_DNS);
    if (!l && !probe_dns)
        return 0;
    if (probe_dns)
        ev(d, "probe", "%s: dns %.200s", js(f->probe, "probe"), js(f->probe, "message"));
    ev_log(d, l);
    const json_t *c = change_of(d->sig, F_RESOLV);
    if (c) {
        ev_change(d, c);
        char line[160];
        change_line(c, line, sizeof line);
        root(d, "%s cannot resolve names: %s changed%s", f->svc, js(c, "what"), line);
        act(d, f->svc, "put back the working resolver configuration", "restore %s", js(c, "what"));
        if (f->nexits)
            act_restart(d, "start the service again");
        return 0.92;
    }
    root(d, "%s cannot resolve names: '%.200s'", f->svc, l ? log_text(l) : js(f->probe, "message"));
    act_alert(d, "the resolver fails and nothing on this host changed: a person must look");
    return 0.75;
}

static double r_cred(dctx *d)
{
    const facts *f = d->f;
    const json_t *l = log_with(d->sig, W_AUTH);
    if (!l)
        return 0;
    const json_t *c = change_of(d->sig, F_CRED);
    double s = 0.92;
    if (!c) {
        c = change_of(d->sig, -1);
        s = 0.85;
        if (c && file_class(js(c, "what")) == F_RESOLV)
            c = NULL;
    }
    ev_log(d, l);
    ev_exit(d);
    if (c) {
        ev_change(d, c);
        root(d, "%s's credentials were revoked or changed: %s changed, and it logs '%.160s'", f->svc, js(c, "what"),
             log_text(l));
        act(d, f->svc, "put back the last working credentials", "restore %s", js(c, "what"));
        act_restart(d, "reload the restored credentials");
        return s;
    }
    root(d, "%s's credentials are refused: '%.200s'", f->svc, log_text(l));
    act_alert(d, "the credentials must be renewed by a person");
    return 0.7;
}

static double r_perm(dctx *d)
{
    const facts *f = d->f;
    const json_t *l = log_with(d->sig, W_PERM);
    const json_t *c = mode_change(d->sig);
    if (!l && !(c && (f->nexits || f->nprobes_failed)))
        return 0;
    ev_log(d, l);
    ev_exit(d);
    if (c) {
        json_t *det = json_object_get(c, "detail");
        ev(d, "change", "%s: mode %s -> %s", js(c, "what"), js(json_object_get(det, "was"), "mode"),
           js(json_object_get(det, "now"), "mode"));
        root(d, "%s is denied access: the mode or owner of %s changed", f->svc, js(c, "what"));
        act(d, f->svc, "put back the known-good mode and owner", "restore %s", js(c, "what"));
        act_restart(d, "start the service with its access back");
        return l ? 0.93 : 0.7;
    }
    root(d, "%s is denied access: '%.200s'", f->svc, log_text(l));
    act_alert(d, "no changed permission was seen to restore");
    return 0.7;
}

static double kernel_rule(dctx *d, const char *kind1, const char *kind2, const char *what, double s)
{
    size_t i;
    json_t *k;
    json_array_foreach(list(d->sig, "kernel"), i, k) {
        const char *kind = js(k, "kind");
        if (strcmp(kind, kind1) != 0 && (!kind2 || strcmp(kind, kind2) != 0))
            continue;
        ev(d, "kernel", "kernel: %.240s", js(k, "text"));
        root(d, "%s: '%.200s'", what, js(k, "text"));
        act_alert(d, "nothing IPPOC may do repairs this: a person must look");
        return s;
    }
    return 0;
}

static double r_io(dctx *d)
{
    double s = kernel_rule(d, "io_error", "fs_error", "the kernel reports I/O errors", 0.85);
    if (s > 0 && log_with(d->sig, W_IO)) {
        ev_log(d, log_with(d->sig, W_IO));
        s = 0.9;
    }
    return s;
}

static double r_clock(dctx *d)
{
    double s = kernel_rule(d, "clock", NULL, "the system clock jumped", 0.8);
    if (s > 0)
        return s;
    size_t i;
    json_t *c;
    json_array_foreach(list(d->sig, "changes"), i, c) {
        if (!strcmp(js(c, "kind"), "clock")) {
            ev(d, "change", "clock: %.200s", js(c, "what"));
            root(d, "the system clock jumped: %.200s", js(c, "what"));
            act_alert(d, "a clock jump needs a person to check time sync");
            return 0.8;
        }
    }
    return 0;
}

static double r_storm(dctx *d)
{
    const facts *f = d->f;
    if (f->nexits || f->nprobes_failed)
        return 0;
    size_t i;
    json_t *l;
    json_array_foreach(list(d->sig, "logs"), i, l) {
        if (strcmp(js(l, "level"), "error") != 0 || !json_is_true(json_object_get(l, "burst")))
            continue;
        ev(d, "log", "error burst: '%.200s' (%lld lines)", log_text(l), (long long)jnum(l, "count"));
        root(d, "%s logs a storm of errors (template '%.160s', %lld lines) while its probes pass", f->svc,
             *js(l, "template") ? js(l, "template") : log_text(l), (long long)jnum(l, "count"));
        act_alert(d, "the service still works: a person should look at the errors");
        return 0.75;
    }
    return 0;
}

static double r_crash(dctx *d)
{
    const facts *f = d->f;
    if (!f->nexits)
        return 0;
    ev_exit(d);
    size_t i;
    json_t *k;
    double s = 0.5;
    json_array_foreach(list(d->sig, "kernel"), i, k) {
        if (!strcmp(js(k, "kind"), "segfault") && !foreign_kernel(k)) {
            ev(d, "kernel", "kernel: %.200s", js(k, "text"));
            s = 0.7;
            break;
        }
    }
    json_array_foreach(list(d->sig, "logs"), i, k) {
        if (!strcmp(js(k, "level"), "error")) {
            ev_log(d, k);
            break;
        }
    }
    char ph[160];
    root(d, "%s%s", exit_phrase(f, ph, sizeof ph), s > 0.5 ? " (segmentation fault)" : "");
    act_restart(d, "bring the service back");
    return s;
}

typedef struct rule {
    const char *fault;
    double (*fn)(dctx *d);
} rule;

/* Order breaks ties: the more specific first. */
static const rule rules[] = {
    {"port_in_use", r_port},
    {"oom_kill", r_oom},
    {"permission_denied", r_perm},
    {"credential_revoked", r_cred},
    {"bad_environment", r_env},
    {"config_error", r_config},
    {"dns_failure", r_dns},
    {"inode_exhaustion", r_inode},
    {"disk_full", r_disk},
    {"fd_exhaustion", r_fd},
    {"cpu_starvation", r_cpu},
    {"memory_leak", r_leak},
    {"dependency_down", r_dep},
    {"io_error", r_io},
    {"clock_jump", r_clock},
    {"error_storm", r_storm},
    {"crash", r_crash},
};
#define NRULES ((int)(sizeof rules / sizeof rules[0]))

static void read_facts(const json_t *sig, facts *f)
{
    memset(f, 0, sizeof *f);
    f->svc = js(sig, "service");
    const json_t *ex = list(sig, "exits");
    f->nexits = ex ? (int)json_array_size(ex) : 0;
    if (f->nexits) {
        json_t *e = json_array_get(ex, 0);
        f->code = (int)jnum(e, "code");
        f->signal = (int)jnum(e, "signal");
        f->uptime_ms = (int64_t)jnum(e, "uptime_ms");
        f->exit_ts = (int64_t)jnum(e, "ts");
        f->at_start = f->uptime_ms < 10000 || f->nexits >= 3;
    }
    size_t i;
    json_t *p;
    json_array_foreach(list(sig, "probes"), i, p) {
        if (!f->probe)
            f->probe = p;
        f->nprobes_failed++;
        const char *how = js(p, "how");
        if (!strcmp(how, "timeout") || !strcmp(how, "latency"))
            f->probe_slow = true;
    }
    json_t *psi = json_object_get(sig, "pressure");
    f->psi_cpu = jnum(psi, "cpu");
    f->psi_mem = jnum(psi, "memory");
    f->psi_io = jnum(psi, "io");
    json_array_foreach(list(sig, "logs"), i, p) {
        if (!strcmp(js(p, "level"), "error"))
            f->error_logs = true;
    }
}

/* A kernel message about another process (an OOM kill, a segfault, a hung
 * task the signature says is not the service's): no evidence here. I/O,
 * filesystem and clock messages concern every service. */
static bool foreign_kernel(const json_t *k)
{
    const char *kind = js(k, "kind");
    bool machine = !strcmp(kind, "io_error") || !strcmp(kind, "fs_error") || !strcmp(kind, "clock");
    return !machine && json_is_false(json_object_get(k, "service"));
}

/* Nothing abnormal at all: the "none" diagnosis. */
static bool healthy(const json_t *sig, const facts *f)
{
    if (f->nexits || f->nprobes_failed || f->error_logs)
        return false;
    static const char *const keys[] = {"anomalies", "dependencies"};
    for (int k = 0; k < 2; k++) {
        const json_t *a = list(sig, keys[k]);
        if (a && json_array_size(a))
            return false;
    }
    size_t i;
    json_t *fs;
    json_array_foreach(list(sig, "kernel"), i, fs) {
        if (!foreign_kernel(fs))
            return false;
    }
    json_array_foreach(list(sig, "filesystems"), i, fs) {
        if ((jnum(fs, "used_percent") >= 95 || jnum(fs, "inodes_percent") >= 95) &&
            !json_is_false(json_object_get(fs, "service")))
            return false; /* another full filesystem is no fault of this service */
    }
    return true;
}

static void dctx_init(dctx *d, const json_t *sig, const facts *f)
{
    memset(d, 0, sizeof *d);
    d->sig = sig;
    d->f = f;
    snprintf(d->component, sizeof d->component, "%s", f->svc);
    d->evidence = json_array();
    d->actions = json_array();
}

static void dctx_free(dctx *d)
{
    json_decref(d->evidence);
    json_decref(d->actions);
}

/* Puts a remembered fix first (dropping the same texts later on). */
static void fix_first(json_t *actions, const brain_case_hit *h, const char *service)
{
    size_t n = json_array_size(h->fixed_by);
    for (size_t k = n; k-- > 0;) {
        const char *t = json_string_value(json_array_get(h->fixed_by, k));
        if (!t)
            continue;
        for (size_t i = 0; i < json_array_size(actions); i++)
            if (!strcmp(js(json_array_get(actions, i), "action"), t)) {
                json_array_remove(actions, i);
                break;
            }
        char why[160];
        snprintf(why, sizeof why, "fixed a similar incident before (%d of %d)", h->fixed, h->tried);
        json_array_insert_new(actions, 0, json_pack("{s:s, s:s, s:s}", "action", t, "service", service, "why", why));
    }
}

static json_t *cases_json(const brain_case_hit *hits, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) {
        const brain_case_hit *h = &hits[i];
        json_array_append_new(a, json_pack("{s:I, s:I, s:f, s:s, s:s, s:O, s:i, s:i, s:I, s:I}", "case",
                                           (json_int_t)h->id, "incident", (json_int_t)h->incident, "similarity",
                                           round(h->similarity * 1000) / 1000, "fault_type", h->fault_type,
                                           "component", h->component, "fixed_by",
                                           h->fixed_by ? h->fixed_by : json_array(), "fixed", h->fixed, "tried",
                                           h->tried, "ts", (json_int_t)h->ts, "mitigate_ms",
                                           (json_int_t)h->mitigate_ms));
    }
    return a;
}

json_t *brain_diagnose(const json_t *sig, const brain_case_hit *hits, int nhits)
{
    int64_t t0 = core_mono_ms();
    facts f;
    read_facts(sig, &f);
    dctx best;
    dctx_init(&best, sig, &f);
    best.fault = "unknown";
    best.conf = 0.3;
    const char *source = "rules";
    if (healthy(sig, &f)) {
        best.fault = "none";
        best.conf = 0.9;
        root(&best, "no evidence of a fault: %s looks healthy", *f.svc ? f.svc : "the machine");
    } else {
        for (int i = 0; i < NRULES; i++) {
            dctx d;
            dctx_init(&d, sig, &f);
            d.fault = rules[i].fault;
            d.conf = rules[i].fn(&d);
            if (d.conf > best.conf) {
                dctx_free(&best);
                best = d;
            } else {
                dctx_free(&d);
            }
        }
        if (!strcmp(best.fault, "unknown")) {
            root(&best, "%s shows trouble no rule of the catalogue explains", *f.svc ? f.svc : "the machine");
            ev_exit(&best);
            act_alert(&best, "no rule knows this fault: a person must look");
        }
    }
    /* remembered cases: the nearest one that healed */
    const brain_case_hit *h = NULL;
    for (int i = 0; i < nhits && !h; i++)
        if (hits[i].fixed > 0)
            h = &hits[i];
    if (h && h->similarity >= BRAIN_CASE_CLOSE && strcmp(best.fault, "none") != 0) {
        if (!strcmp(h->fault_type, best.fault)) {
            best.conf = 1 - (1 - best.conf) * (1 - 0.5 * h->similarity);
            source = "rules+cases";
        } else if (h->similarity * 0.9 > best.conf) {
            best.fault = strcmp(h->fault_type, "none") ? h->fault_type : "unknown";
            best.conf = h->similarity * 0.9;
            root(&best, "like case %lld (incident %llu, similarity %.2f): %s", (long long)h->id,
                 (unsigned long long)h->incident, h->similarity, h->fault_type);
            source = "cases";
        }
        if (strcmp(source, "rules") != 0)
            fix_first(best.actions, h, best.component);
        ev(&best, "case", "a similar incident (%llu, similarity %.2f) was %s healed by %d of %d attempts",
           (unsigned long long)h->incident, h->similarity, h->fault_type, h->fixed, h->tried);
    }
    if (best.conf > 0.99)
        best.conf = 0.99;
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:f, s:s, s:O, s:O, s:o, s:I}", "incident",
                          (json_int_t)jnum(sig, "incident"), "fault_type", best.fault, "component", best.component,
                          "root_cause", best.root, "confidence", round(best.conf * 100) / 100, "source", source,
                          "evidence", best.evidence, "proposed_actions", best.actions, "cases",
                          cases_json(hits, nhits), "ts", (json_int_t)core_now_ms());
    dctx_free(&best);
    if (o)
        json_object_set_new(o, "took_ms", json_integer(core_mono_ms() - t0));
    return o;
}

/* Actions that prepare the one that follows them in the same attempt. */
static bool preparatory(const char *a)
{
    return !strncmp(a, "restore ", 8) || !strncmp(a, "clean ", 6) || !strncmp(a, "sysctl ", 7) ||
           (!strncmp(a, "signal ", 7) && strstr(a, " pid "));
}

int brain_attempts(const json_t *proposed, int *first, int max)
{
    int n = 0;
    size_t total = json_array_size(proposed);
    for (size_t i = 0; i < total && n < max;) {
        first[n++] = (int)i;
        while (i < total && preparatory(js(json_array_get(proposed, i), "action")))
            i++;
        if (i < total)
            i++; /* the action the preparation was for */
    }
    return n;
}
