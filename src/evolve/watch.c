/* watch.c: applying the genome to the machine, then probation.
 *
 * evolve_watch_apply(rev) (heal's executor of an approved "apply" change,
 * on its pool): every file the genome keeps under files/ whose content at
 * rev differs from the machine's is written to its absolute path
 * (temporary file + rename, mode and owner kept); the apply commands of the
 * spaces (spaces/NAME.space) with a knob in those files run (argv split on
 * blanks, no shell, 60 s each); a changed ippoc.conf goes to
 * hooks.config_changed. Then rev is on probation for opts.probation_ms on
 * its own thread: memory's events are watched for regressions (an incident
 * opened, a service that exited, an anomaly; only about the services a
 * space names in `[space] watch = A, B` when one does). More of them than
 * in the same length of time before the apply is a regression: a "revert"
 * commit undoes rev, the revert is applied through the policy (same path,
 * no probation for a revert) and a genome.reverted event says why; a clean
 * probation is a genome.kept event. A sysctl or restore that heal ran (a
 * heal.action event with outcome ok) is committed as kind "config": the
 * new value as files/proc/sys/KEY, the restored file as files/PATH.
 *   GET /v1/evolve/watch   {"changes":[...]} newest first */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evolve/evolve_int.h"
#include "memory/memory.h"

#define WATCH_KEEP 100          /* outcomes remembered */
#define WATCH_MAX_WATCH 8
#define APPLY_CMD_TIMEOUT_MS 60000
#define CONFIG_PATH "ippoc.conf"

typedef struct probation {
    struct evolve_watch *w;
    pthread_t th;
    char rev[41];
    json_t *entry;              /* in w->log (a reference of its own); changed under w->lock */
    int64_t start_ms, until_ms;
    int64_t after_id;           /* memory's last event id before the apply */
    char watch[WATCH_MAX_WATCH][64];
    int nwatch;
    int base;                   /* regressions in the same length of time before the apply */
    json_t *before;             /* {abs path: its text before the apply, or null when it did not exist} */
    bool done;
    struct probation *next;
} probation;

typedef struct evolve_watch evolve_watch;
struct evolve_watch {
    evolve_cell *c;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    pthread_t follow;           /* approved sysctl / restore actions become "config" commits */
    bool following;
    int64_t follow_after;       /* memory's last event id when the cell started */
    json_t *log;                /* entries, oldest first */
    probation *list;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- files ---------------------------------------------------------------------- */

/* A kernel tunable (/proc/sys/...) is written in place, as sysctl does. */
static int write_proc(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    int rc = fd < 0 ? -errno : 0;
    if (!rc && write(fd, data, len) != (ssize_t)len)
        rc = -errno ? -errno : -EIO;
    if (fd >= 0)
        close(fd);
    if (rc)
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(-rc));
    return rc;
}

/* Writes path atomically, keeping its mode and owner (0644 when new). */
static int write_file(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
    if (!strncmp(path, "/proc/sys/", 10))
        return write_proc(path, data, len, err, errlen);
    return core_write_atomic(path, data, len, err, errlen);
}

/* Every path the genome ever held (from its history), as a JSON array. */
static json_t *genome_paths(evolve_cell *c, char *err, size_t errlen)
{
    json_t *h = evolve_genome_history(c->g, NULL, 10000, err, errlen);
    if (!h)
        return NULL;
    json_t *paths = json_array(), *commit, *f;
    size_t i, k;
    json_array_foreach(h, i, commit) {
        json_array_foreach(json_object_get(commit, "files"), k, f) {
            bool seen = false;
            size_t j;
            json_t *p;
            json_array_foreach(paths, j, p) seen = seen || json_equal(p, f);
            if (!seen && json_is_string(f))
                json_array_append(paths, f);
        }
    }
    json_decref(h);
    return paths;
}

/* The Ippoc-Kind of commit oid ("" when not found in the recent history). */
static void commit_kind(evolve_cell *c, const char *oid, char *kind, size_t n)
{
    char err[256];
    kind[0] = 0;
    json_t *h = evolve_genome_history(c->g, NULL, 200, err, sizeof err), *commit;
    size_t i;
    json_array_foreach(h, i, commit) {
        if (!strcmp(json_string_value(json_object_get(commit, "id")) ?: "", oid)) {
            snprintf(kind, n, "%s", json_string_value(json_object_get(commit, "kind")) ?: "");
            break;
        }
    }
    json_decref(h);
}

/* ---- spaces: apply commands and the watched services -------------------------------- */

/* `watch = A, B` of the [space] section (other keys are the space parser's). */
static void space_watch(const char *text, probation *p)
{
    bool in_space = false;
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n'), *end = nl ? nl : line + strlen(line);
        while (line < end && (*line == ' ' || *line == '\t'))
            line++;
        if (*line == '[')
            in_space = !strncmp(line, "[space]", 7);
        else if (in_space && !strncmp(line, "watch", 5)) {
            const char *v = line + 5;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            if (v < end && *v == '=') {
                for (v++; v < end && p->nwatch < WATCH_MAX_WATCH;) {
                    v += strspn(v, " \t,");
                    size_t len = strcspn(v, " \t,\n\r");
                    if (v + len > end)
                        len = (size_t)(end - v);
                    if (len && len < sizeof p->watch[0])
                        snprintf(p->watch[p->nwatch++], sizeof p->watch[0], "%.*s", (int)len, v);
                    v += len ? len : 1;
                }
            }
        }
        line = nl ? nl + 1 : end;
    }
}

/* Runs cmd (split on blanks, no shell) and waits up to a minute. */
static int run_command(const char *cmd, char *err, size_t errlen)
{
    char buf[EVOLVE_TEXT], *argv[64];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", cmd);
    for (char *save = NULL, *t = strtok_r(buf, " \t", &save); t && argc < 63; t = strtok_r(NULL, " \t", &save))
        argv[argc++] = t;
    argv[argc] = NULL;
    if (!argc)
        return 0;
    /* no pipes: a service it starts may keep them open; only its exit is waited for */
    evolve_exec_opts o = {.argv = (const char *const *)argv, .timeout_ms = APPLY_CMD_TIMEOUT_MS};
    evolve_exec_res r;
    int rc = evolve_exec(&o, &r);
    if (rc < 0) {
        snprintf(err, errlen, "%s: cannot start: %s", cmd, strerror(-rc));
        return rc;
    }
    if (r.timed_out) {
        snprintf(err, errlen, "%s: still running after %d s: killed", cmd, APPLY_CMD_TIMEOUT_MS / 1000);
        return -ETIMEDOUT;
    }
    int st = r.status;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    snprintf(err, errlen, "%s: %s %d", cmd, WIFEXITED(st) ? "exited with" : "killed by signal",
             WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    return -EIO;
}

static bool in_list(json_t *list, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) if (!strcmp(json_string_value(v) ?: "", s)) return true;
    return false;
}

/* The apply commands of the spaces at rev with a knob in one of written
 * (absolute paths); their watch lists go to p. */
static int run_space_commands(evolve_cell *c, const char *rev, json_t *paths, json_t *written, json_t *ran,
                              probation *p, char *err, size_t errlen)
{
    size_t i;
    json_t *v;
    json_array_foreach(paths, i, v) {
        const char *path = json_string_value(v);
        size_t n = strlen(path);
        if (strncmp(path, "spaces/", 7) || n < 6 || strcmp(path + n - 6, ".space"))
            continue;
        char *text = NULL, why[512];
        size_t len;
        if (evolve_genome_read(c->g, rev, path, &text, &len, why, sizeof why))
            continue; /* not in this commit */
        evolve_space *s = calloc(1, sizeof *s);
        int rc = s ? evolve_space_parse(text, path, s, why, sizeof why) : -ENOMEM;
        if (!rc) {
            bool any = false;
            for (int k = 0; k < s->nknobs; k++) {
                if (!in_list(written, s->knobs[k].file))
                    continue;
                any = true;
                if (s->knobs[k].apply[0] && !in_list(ran, s->knobs[k].apply)) {
                    json_array_append_new(ran, json_string(s->knobs[k].apply));
                    if ((rc = run_command(s->knobs[k].apply, err, errlen)))
                        break;
                }
            }
            if (!rc && any && s->apply[0] && !in_list(ran, s->apply)) {
                json_array_append_new(ran, json_string(s->apply));
                rc = run_command(s->apply, err, errlen);
            }
            if (any && p)
                space_watch(text, p);
        } else {
            log_warn("evolve: %s at %.7s does not parse, its commands do not run: %s", path, rev, why);
            rc = 0;
        }
        free(s);
        free(text);
        if (rc)
            return rc;
    }
    return 0;
}

/* Writes what differs between rev and the machine. */
static int write_files(evolve_cell *c, const char *rev, json_t *paths, json_t *written, json_t *before,
                       bool *config, char *err, size_t errlen)
{
    size_t i;
    json_t *v;
    json_array_foreach(paths, i, v) {
        const char *path = json_string_value(v);
        bool conf = !strcmp(path, CONFIG_PATH);
        if (!conf && strncmp(path, EVOLVE_GENOME_FILES, strlen(EVOLVE_GENOME_FILES)))
            continue;
        char *want = NULL, why[512];
        size_t wlen = 0, hlen = 0;
        int rc = evolve_genome_read(c->g, rev, path, &want, &wlen, why, sizeof why);
        if (rc == -ENOENT)
            continue; /* not at rev: the machine's file is left alone */
        if (rc) {
            snprintf(err, errlen, "%s at %.7s: %s", path, rev, why);
            return rc;
        }
        char abs[EVOLVE_TEXT];
        if (conf && !c->config_path) { /* embedded defaults: nothing on disk to compare or write */
            free(want);
            continue;
        }
        if (conf)
            snprintf(abs, sizeof abs, "%s", c->config_path ? c->config_path : "");
        else
            snprintf(abs, sizeof abs, "/%s", path + strlen(EVOLVE_GENOME_FILES));
        char *have = abs[0] ? core_slurp(abs, &hlen) : NULL;
        bool same = have && hlen == wlen && !memcmp(have, want, wlen);
        if (!same && !conf && before) /* what a revert puts back when the genome never had it */
            json_object_set_new(before, abs, have ? json_stringn(have, hlen) : json_null());
        free(have);
        if (!same && conf) {
            *config = true;
            rc = c->h.config_changed ? c->h.config_changed(c->h.ud, want, err, errlen) : -ENOSYS;
            if (rc == -ENOSYS)
                snprintf(err, errlen, "ippoc.conf changed but nothing can reload it here");
        } else if (!same) {
            rc = write_file(abs, want, wlen, err, errlen);
            if (!rc)
                json_array_append_new(written, json_string(abs));
        }
        free(want);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- probation ----------------------------------------------------------------------- */

static void record(evolve_cell *c, const char *type, const char *sev, json_t *payload)
{
    char *text = json_dumps(payload, JSON_COMPACT);
    json_decref(payload);
    if (c->o.mem)
        mem_event_add(c->o.mem, 0, type, sev, "evolve", text ? text : "{}");
    free(text);
}

/* Whether e is a regression that p watches for; what gets its words. */
static bool regression(const probation *p, const mem_event *e, char *what, size_t n)
{
    bool kind = !strcmp(e->type, "incident.open") || !strcmp(e->type, "service.exit") ||
                !strcmp(e->type, "anomaly");
    if (!kind)
        return false;
    if (p->nwatch) {
        bool ours = false;
        for (int i = 0; i < p->nwatch && !ours; i++)
            ours = !strcmp(e->source, p->watch[i]) || (!strcmp(e->type, "anomaly") && strstr(e->payload, p->watch[i]));
        if (!ours)
            return false;
    }
    json_t *o = json_loads(e->payload, 0, NULL);
    const char *detail = json_string_value(json_object_get(o, "what")) ?: json_string_value(json_object_get(o, "reason"))
                                                                              ?: json_string_value(json_object_get(o, "metric"));
    snprintf(what, n, "%s %s%s%s", e->type, e->source, detail ? ": " : "", detail ? detail : "");
    json_decref(o);
    return true;
}

/* Regressions in [from, to] before the apply. */
static int baseline(evolve_cell *c, const probation *p, int64_t from, int64_t to)
{
    mem_event_query q = {.from = from, .to = to, .limit = 10000, .ascending = true};
    mem_event *ev = NULL;
    size_t n = 0;
    char err[256], what[256];
    int count = 0;
    if (mem_events_query(c->o.mem, &q, &ev, &n, err, sizeof err))
        return 0;
    for (size_t i = 0; i < n; i++)
        count += regression(p, &ev[i], what, sizeof what);
    mem_events_free(ev, n);
    return count;
}

static void set_outcome(probation *p, const char *state, const char *reason, const char *revert)
{
    evolve_watch *w = p->w;
    pthread_mutex_lock(&w->lock);
    json_object_set_new(p->entry, "state", json_string(state));
    json_object_set_new(p->entry, "ended", json_integer(now_ms()));
    if (reason)
        json_object_set_new(p->entry, "reason", json_string(reason));
    if (revert)
        json_object_set_new(p->entry, "revert", json_string(revert));
    pthread_mutex_unlock(&w->lock);
}

static int apply_rev(evolve_cell *c, const char *oid, bool probation_on, char *err, size_t errlen);

/* The regression: a revert commit, applied through the policy. */
static void revert(probation *p, const char *seen)
{
    evolve_cell *c = p->w->c;
    char reason[600], oid[41] = "", err[1024] = "", verdict[32] = "";
    snprintf(reason, sizeof reason, "regression after merge: %s", seen);
    evolve_trailer t = {.kind = "revert", .author = "ippoc", .reason = reason};
    int rc = evolve_genome_revert(c->g, p->rev, &t, oid, NULL, err, sizeof err);
    if (rc < 0) {
        log_err("evolve: %.7s regressed (%s) but cannot be reverted: %s", p->rev, seen, err);
        set_outcome(p, "regressed", reason, NULL);
        record(c, "genome.revert_failed", "error",
               json_pack("{s:s, s:s, s:s}", "rev", p->rev, "reason", reason, "error", err));
        return;
    }
    /* a file the genome first learned from this change is put back as it was */
    const char *abs;
    json_t *old;
    json_object_foreach(p->before, abs, old) {
        char path[EVOLVE_TEXT + 8], *data = NULL, werr[256];
        size_t len;
        snprintf(path, sizeof path, "%s%s", EVOLVE_GENOME_FILES, abs + 1);
        if (!json_is_string(old) || rc < 0 ||
            evolve_genome_read(c->g, oid, path, &data, &len, werr, sizeof werr) != -ENOENT) {
            free(data);
            continue;
        }
        evolve_trailer t2 = {.kind = "revert", .author = "ippoc", .reason = reason};
        if (evolve_genome_write(c->g, path, json_string_value(old), json_string_length(old), &t2, oid, werr,
                                sizeof werr) >= 0)
            rc = 0;
        else
            log_warn("evolve: %s cannot be put back in the genome: %s", path, werr);
    }
    if (rc == 0) {
        if (c->h.change)
            rc = c->h.change(c->h.ud, "apply", oid, reason, verdict, sizeof verdict, err, sizeof err);
        else
            rc = apply_rev(c, oid, false, err, sizeof err);
    }
    log_warn("evolve: %.7s reverted by %.7s: %s (%s%s%s)", p->rev, oid, reason, verdict[0] ? verdict : "applied",
             err[0] ? ": " : "", err);
    set_outcome(p, "reverted", reason, oid);
    record(c, "genome.reverted", "warning",
           json_pack("{s:s, s:s, s:s, s:s, s:s}", "rev", p->rev, "revert", oid, "reason", reason, "verdict",
                     verdict[0] ? verdict : (rc ? "failed" : "execute"), "message", err));
}

static void *probation_main(void *arg)
{
    probation *p = arg;
    evolve_watch *w = p->w;
    evolve_cell *c = w->c;
    int base = p->base;
    int seen = 0;
    char what[256] = "", first[256] = "";
    int64_t after = p->after_id;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        bool stop = w->stop;
        pthread_mutex_unlock(&w->lock);
        int64_t left = p->until_ms - now_ms();
        if (stop || left <= 0)
            break;
        mem_event *ev = NULL;
        size_t n = 0;
        int got = mem_events_wait(c->o.mem, after, (int)(left < 500 ? left : 500), &ev, &n);
        for (int i = 0; got > 0 && (size_t)i < n; i++) {
            if (ev[i].id > after)
                after = ev[i].id;
            if (regression(p, &ev[i], what, sizeof what) && !seen++)
                snprintf(first, sizeof first, "%s", what);
        }
        mem_events_free(ev, n);
        if (seen > base)
            break;
    }
    pthread_mutex_lock(&w->lock);
    bool stopped = w->stop;
    pthread_mutex_unlock(&w->lock);
    if (seen > base) {
        char desc[400];
        snprintf(desc, sizeof desc, "%s (%d regression event%s, %d in the same time before)", first, seen,
                 seen == 1 ? "" : "s", base);
        revert(p, desc);
    } else if (stopped) {
        set_outcome(p, "interrupted", "ippocd stopped during the probation", NULL);
    } else {
        set_outcome(p, "kept", NULL, NULL);
        record(c, "genome.kept", "info",
               json_pack("{s:s, s:I, s:i}", "rev", p->rev, "probation_ms", (json_int_t)(p->until_ms - p->start_ms),
                         "regressions", seen));
    }
    pthread_mutex_lock(&w->lock);
    p->done = true;
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* ---- apply ----------------------------------------------------------------------------- */

static json_t *new_entry(evolve_watch *w, const char *oid, const char *kind)
{
    json_t *e = json_pack("{s:s, s:s, s:s, s:I, s:s}", "rev", oid, "short", "", "kind", kind, "started",
                          (json_int_t)now_ms(), "state", "applying");
    char s[8];
    snprintf(s, sizeof s, "%.7s", oid);
    json_object_set_new(e, "short", json_string(s));
    pthread_mutex_lock(&w->lock);
    json_array_append(w->log, e);
    while (json_array_size(w->log) > WATCH_KEEP)
        json_array_remove(w->log, 0);
    pthread_mutex_unlock(&w->lock);
    return e; /* our reference */
}

static int apply_rev(evolve_cell *c, const char *oid, bool probation_on, char *err, size_t errlen)
{
    evolve_watch *w = c->watch;
    char kind[32];
    commit_kind(c, oid, kind, sizeof kind);
    if (!strcmp(kind, "revert"))
        probation_on = false; /* a revert is what probation falls back to */
    json_t *paths = genome_paths(c, err, errlen);
    if (!paths)
        return -EIO;
    probation *p = calloc(1, sizeof *p);
    if (!p) {
        json_decref(paths);
        return -ENOMEM;
    }
    p->w = w;
    snprintf(p->rev, sizeof p->rev, "%s", oid);
    p->after_id = c->o.mem ? mem_last_event_id(c->o.mem) : 0;
    p->start_ms = now_ms();
    json_t *written = json_array(), *ran = json_array();
    bool config = false;
    p->entry = new_entry(w, oid, kind);
    p->before = json_object();
    int rc = write_files(c, oid, paths, written, p->before, &config, err, errlen);
    if (!rc)
        rc = run_space_commands(c, oid, paths, written, ran, p, err, errlen);
    json_decref(paths);
    pthread_mutex_lock(&w->lock);
    json_object_set(p->entry, "files", written);
    json_object_set(p->entry, "commands", ran);
    json_object_set_new(p->entry, "config", json_boolean(config));
    pthread_mutex_unlock(&w->lock);
    size_t nfiles = json_array_size(written), ncmds = json_array_size(ran);
    json_decref(written);
    json_decref(ran);
    if (rc) {
        set_outcome(p, "failed", err, NULL);
        json_decref(p->entry);
        json_decref(p->before);
        free(p);
        return rc;
    }
    char msg[256];
    snprintf(msg, sizeof msg, "applied %.7s: %zu file(s) written%s, %zu command(s) run", oid, nfiles,
             config ? ", ippoc.conf reloaded" : "", ncmds);
    if (!probation_on || !c->o.mem || c->o.probation_ms <= 0) {
        set_outcome(p, "applied", NULL, NULL);
        json_decref(p->entry);
        json_decref(p->before);
        free(p);
        snprintf(err, errlen, "%s", msg);
        return 0;
    }
    p->until_ms = p->start_ms + c->o.probation_ms;
    p->base = baseline(c, p, p->start_ms - c->o.probation_ms, p->start_ms); /* before anything can happen */
    pthread_mutex_lock(&w->lock);
    json_object_set_new(p->entry, "state", json_string("probation"));
    json_object_set_new(p->entry, "until", json_integer(p->until_ms));
    if (p->nwatch) {
        json_t *ws = json_array();
        for (int i = 0; i < p->nwatch; i++)
            json_array_append_new(ws, json_string(p->watch[i]));
        json_object_set_new(p->entry, "watch", ws);
    }
    rc = w->stop ? -ECANCELED : pthread_create(&p->th, NULL, probation_main, p);
    if (rc == 0) {
        p->next = w->list;
        w->list = p;
    }
    pthread_mutex_unlock(&w->lock);
    if (rc) {
        set_outcome(p, "applied", "no probation: the watch could not start", NULL);
        json_decref(p->entry);
        json_decref(p->before);
        free(p);
    }
    char secs[32];
    snprintf(secs, sizeof secs, "%lld s", (long long)(c->o.probation_ms / 1000));
    snprintf(err, errlen, "%s; on probation for %s", msg, secs);
    return 0;
}

int evolve_watch_apply(evolve_cell *c, const char *rev, char *err, size_t errlen)
{
    char oid[41];
    if (!c || !c->g || !c->watch) {
        snprintf(err, errlen, "watch: the genome is not open");
        return -ENOSYS;
    }
    int rc = evolve_genome_resolve(c->g, rev, oid, err, errlen);
    if (rc)
        return rc;
    return apply_rev(c, oid, true, err, errlen);
}

/* ---- approved actions that change config are commits too ---------------------------------- */

/* "restore /etc/a b.conf" or "restore \"/etc/a b.conf\"" -> the path. */
static void unquote(const char *s, char *out, size_t n)
{
    size_t w = 0;
    bool q = *s == '"';
    for (s += q; *s && w + 1 < n; s++) {
        if (q && *s == '\\' && s[1])
            s++;
        else if (q && *s == '"')
            break;
        out[w++] = *s;
    }
    out[w] = 0;
}

/* One heal.action event: a sysctl or restore that ran ok is committed. */
static void follow_action(evolve_cell *c, const mem_event *e)
{
    json_t *o = json_loads(e->payload, 0, NULL);
    const char *kind = json_string_value(json_object_get(o, "kind")) ?: "";
    const char *text = json_string_value(json_object_get(o, "action")) ?: "";
    const char *why = json_string_value(json_object_get(o, "why")) ?: "";
    const char *outcome = json_string_value(json_object_get(o, "outcome")) ?: "";
    if (strcmp(outcome, "ok") || json_is_true(json_object_get(o, "dry_run")) ||
        (strcmp(kind, "sysctl") && strcmp(kind, "restore"))) {
        json_decref(o);
        return;
    }
    char path[EVOLVE_TEXT] = "", abs[EVOLVE_TEXT] = "", author[80] = "ippoc", err[512], oid[41];
    char *data = NULL;
    size_t len = 0;
    char key[128], value[256];
    if (!strcmp(kind, "sysctl") && sscanf(text, "sysctl %127s = %255[^\n]", key, value) == 2) {
        for (char *k = key; *k; k++)
            *k = *k == '.' ? '/' : *k;
        snprintf(abs, sizeof abs, "/proc/sys/%s", key);
        size_t vl = strlen(value);
        data = malloc(vl + 2);
        if (data)
            len = (size_t)snprintf(data, vl + 2, "%s\n", value);
    } else if (!strcmp(kind, "restore") && !strncmp(text, "restore ", 8)) {
        unquote(text + 8, abs, sizeof abs);
        data = abs[0] == '/' ? core_slurp(abs, &len) : NULL;
    }
    const char *by = strstr(why, "approved by ");
    if (by)
        sscanf(by + 12, "%79[^: ]", author);
    if (data && abs[0] == '/') {
        snprintf(path, sizeof path, "%s%s", EVOLVE_GENOME_FILES, abs + 1);
        evolve_trailer t = {.kind = "config", .author = author, .reason = why[0] ? why : text};
        if (evolve_genome_write(c->g, path, data, len, &t, oid, err, sizeof err) < 0)
            log_warn("evolve: %s: not committed to the genome: %s", text, err);
    }
    free(data);
    json_decref(o);
}

static void *follow_main(void *arg)
{
    evolve_watch *w = arg;
    evolve_cell *c = w->c;
    int64_t after = w->follow_after;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        bool stop = w->stop;
        pthread_mutex_unlock(&w->lock);
        if (stop)
            break;
        mem_event *ev = NULL;
        size_t n = 0;
        int got = mem_events_wait(c->o.mem, after, 500, &ev, &n);
        for (size_t i = 0; got > 0 && i < n; i++) {
            if (ev[i].id > after)
                after = ev[i].id;
            if (!strcmp(ev[i].type, "heal.action"))
                follow_action(c, &ev[i]);
        }
        mem_events_free(ev, n);
    }
    return NULL;
}

/* ---- life and the route ---------------------------------------------------------------- */

int evolve_watch_new(evolve_cell *c, struct evolve_watch **out, char *err, size_t errlen)
{
    evolve_watch *w = calloc(1, sizeof *w);
    if (!w || !(w->log = json_array())) {
        free(w);
        snprintf(err, errlen, "watch: out of memory");
        return -ENOMEM;
    }
    w->c = c;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->follow_after = c->o.mem ? mem_last_event_id(c->o.mem) : 0; /* before the thread: nothing missed */
    if (c->o.mem && c->g)
        w->following = pthread_create(&w->follow, NULL, follow_main, w) == 0;
    *out = w;
    return 0;
}

void evolve_watch_free(struct evolve_watch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_broadcast(&w->cond);
    probation *list = w->list;
    w->list = NULL;
    pthread_mutex_unlock(&w->lock);
    if (w->following)
        pthread_join(w->follow, NULL);
    while (list) { /* each wakes within half a second (its event wait) */
        probation *next = list->next;
        pthread_join(list->th, NULL);
        json_decref(list->entry);
        json_decref(list->before);
        free(list);
        list = next;
    }
    json_decref(w->log);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

char *evolve_watch_http(evolve_cell *c, const char *method, const char *path, const char *query, const char *body,
                        size_t len, int *status)
{
    (void)body, (void)len, (void)query;
    if (strcmp(path, "/v1/evolve/watch"))
        return evolve_error(404, status, "no such resource: %s", path);
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return evolve_error(405, status, "%s takes GET", path);
    evolve_watch *w = c->watch;
    json_t *out = json_array();
    pthread_mutex_lock(&w->lock);
    for (size_t i = json_array_size(w->log); i-- > 0;)
        json_array_append_new(out, json_deep_copy(json_array_get(w->log, i)));
    pthread_mutex_unlock(&w->lock);
    return evolve_reply(json_pack("{s:o, s:I}", "changes", out, "probation_ms", (json_int_t)c->o.probation_ms), 200,
                        status);
}
