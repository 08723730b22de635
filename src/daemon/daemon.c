/* daemon.c: the cell's life: lock the state dir, open memory, sensors,
 * anomaly detection and the API, then run the libuv loop that ticks once per
 * wall-clock second (sense -> memory -> logs -> detect -> heal), reloads on SIGHUP
 * and stops cleanly on SIGTERM (supervised services are stopped before the
 * loop ends; the detectors' state is saved before memory closes).
 *
 * The loop thread owns sensors and the producer side of memory. The API
 * threads read memory through its thread-safe readers and the status through
 * a snapshot this file publishes under a mutex after every tick. */
#include "daemon/daemon.h"
#include "detect/detect.h"
#include "daemon/loopcall.h"
#include "api/api.h"
#include "heal/heal.h"
#include "logs/logs.h"
#include "brain/brain.h"
#include "evolve/evolve.h"
#include "llm/llm.h"
#include "memory/memory.h"
#include "mesh/mesh.h"
#include "sense/sense.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define DEFAULT_CONFIG "/etc/ippoc/ippoc.conf"
#define MAX_COLLECTORS 32
#define CPU_WINDOW 10 /* ticks over which own CPU% is averaged */

typedef struct status_snap {
    sense_collector_info collectors[MAX_COLLECTORS];
    int ncollectors;
    sense_source_info source;
    double cpu_percent; /* own CPU over the last CPU_WINDOW ticks */
    int64_t last_tick_ms;
    double last_tick_cost_us;
} status_snap;

typedef struct cell {
    const daemon_opts *opts;
    core_config cfg;
    char config_desc[CORE_PATH_MAX];
    mem_t *mem;
    sense_t *sense;
    sense_nx *nx;            /* node_exporter-named /metrics families */
    api_t *api;
    heal_engine *heal;
    brain *brain;                  /* after heal, freed before it (snap_lock for the API) */
    llm *llm;                      /* the language-model client: with the brain, freed after it */
    mem_know *know;                /* knowledge store (NULL when it cannot open): freed after the brain */
    brain_learn *learn;            /* documents and feeds into know (set under snap_lock, freed after the API) */
    detect_registry *an;           /* from open_cell to close_cell (outlives the API) */
    logs_watch *logs;              /* the log watch: loop thread; set and cleared under snap_lock */
    loopcall lc;                   /* API threads run approve/reject on the loop */
    mesh_cell *mesh;               /* the Telepathy mesh: from open_cell until after the API stops (NULL: no node key) */
    evolve_cell *evolve;           /* the genome and evolution: after the brain, freed after the API,
                                      before the llm and memory it uses (NULL: unavailable, see evolve_err) */
    char evolve_err[512];
    char audit_path[CORE_PATH_MAX + 16];
    bool stopping;
    uv_loop_t loop;
    uv_timer_t tick;
    uv_signal_t sig_hup, sig_term, sig_int;
    int lock_fd;
    int64_t started_ms;
    int64_t last_tick_ts;
    char host[256];
    char state_dir[CORE_PATH_MAX]; /* fixed at start; read by API threads */
    char url[300];
    char socket_path[CORE_PATH_MAX + 16]; /* <state_dir>/ippocd.sock: the owner's way in */
    /* own CPU ring: cpu time (us) at each of the last ticks */
    int64_t cpu_us[CPU_WINDOW];
    int64_t cpu_at_ms[CPU_WINDOW];
    unsigned cpu_n;
    pthread_mutex_t snap_lock;
    status_snap snap;
    int exit_code;
    int64_t store_failing_since; /* loop thread: the store's write state last seen */
    uint64_t store_dropped_at;   /* dropped tick batches when it began */
} cell;

/* ---- configuration ------------------------------------------------------------ */

int daemon_load_config(const daemon_opts *o, core_config *c, char *err, size_t errlen)
{
    core_config_defaults(c);
    const char *path = o->config_path ? o->config_path : DEFAULT_CONFIG;
    int rc = core_config_load(c, path, o->config_required, err, errlen);
    if (rc)
        return rc;
    if (o->state_dir && core_sncpy(c->state_dir, sizeof c->state_dir, o->state_dir)) {
        snprintf(err, errlen, "--state-dir: path too long");
        return -EINVAL;
    }
    if (o->listen) {
        char host[256];
        int port;
        if (core_split_hostport(o->listen, host, sizeof host, &port)) {
            snprintf(err, errlen, "--listen: bad address '%s' (expected HOST:PORT)", o->listen);
            return -EINVAL;
        }
        core_sncpy(c->api_listen, sizeof c->api_listen, o->listen);
    }
    if (o->log_level) {
        int l = core_log_level_parse(o->log_level);
        if (l < 0) {
            snprintf(err, errlen, "--log-level: unknown level '%s' (expected error, warning, info or debug)", o->log_level);
            return -EINVAL;
        }
        c->log_level = l;
    }
    if (o->log_syslog_set)
        c->log_syslog = o->log_syslog;
    /* later raw keys win, so this overrides any [heal] dry_run in the files */
    if (o->dry_run && core_config_add_raw(c, "heal", "dry_run", "yes", "--dry-run", 0)) {
        snprintf(err, errlen, "--dry-run: out of memory");
        return -ENOMEM;
    }
    rc = core_config_validate(c, err, errlen);
    if (!rc)
        rc = detect_registry_config_check(c, err, errlen);
    if (!rc)
        rc = logs_config_check(c, err, errlen);
    if (!rc)
        rc = heal_config_check(c, err, errlen);
    if (!rc)
        rc = llm_config_check(c, err, errlen);
    if (!rc)
        rc = brain_learn_config_check(c, err, errlen);
    if (!rc)
        rc = mesh_config_check(c, err, errlen);
    return rc ? rc : brain_config_check(c, err, errlen);
}

/* The name shown in status: [daemon] hostname, else gethostname(). API
 * threads read c->host under snap_lock. */
static void set_host(cell *c)
{
    char h[256] = "";
    if (c->cfg.hostname[0])
        core_sncpy(h, sizeof h, c->cfg.hostname);
    else
        gethostname(h, sizeof h - 1);
    pthread_mutex_lock(&c->snap_lock);
    memcpy(c->host, h, sizeof h);
    pthread_mutex_unlock(&c->snap_lock);
}

/* ---- state dir lock --------------------------------------------------------- */

/* The state dir cannot be created or written (read-only filesystem, wrong
 * owner, full disk): a runtime failure (exit 1), with what to do. */
static int state_dir_unusable(cell *c, const char *what, int e, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: %s: the state dir %s must be a writable directory: make it writable by "
             "this user (uid %d), remount it read-write, or choose another with --state-dir or "
             "[daemon] state_dir", what, strerror(e), c->cfg.state_dir, (int)getuid());
    return 1;
}

static int lock_state_dir(cell *c, char *err, size_t errlen)
{
    int rc = core_mkdir_p(c->cfg.state_dir, 0750);
    if (rc)
        return state_dir_unusable(c, c->cfg.state_dir, -rc, err, errlen);
    char path[CORE_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/ippocd.lock", c->cfg.state_dir);
    c->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (c->lock_fd < 0)
        return state_dir_unusable(c, path, errno, err, errlen);
    if (flock(c->lock_fd, LOCK_EX | LOCK_NB)) {
        char pid[32] = "?";
        ssize_t n = pread(c->lock_fd, pid, sizeof pid - 1, 0);
        if (n > 0)
            pid[strcspn(pid, "\n")] = 0, pid[n < 31 ? n : 31] = 0;
        snprintf(err, errlen, "another ippocd (pid %s) already runs on state dir %s", pid, c->cfg.state_dir);
        close(c->lock_fd);
        c->lock_fd = -1;
        return 3;
    }
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
    if (ftruncate(c->lock_fd, 0) == 0 && pwrite(c->lock_fd, buf, (size_t)len, 0) != len)
        log_warn("daemon: cannot write pid to %s", path);
    return 0;
}

static void write_url_file(cell *c)
{
    char path[CORE_PATH_MAX + 32], tmp[CORE_PATH_MAX + 40];
    snprintf(path, sizeof path, "%s/ippocd.url", c->cfg.state_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%s\n", c->url) < 0 || fclose(f) || rename(tmp, path))
        log_warn("daemon: cannot write %s: %s", path, strerror(errno));
}

/* ---- status snapshot (read by the API threads) ----------------------------- */

static int64_t own_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

static double sample_own_cpu(cell *c, int64_t now_ms)
{
    unsigned slot = c->cpu_n % CPU_WINDOW;
    unsigned oldest = c->cpu_n >= CPU_WINDOW ? (c->cpu_n + 1) % CPU_WINDOW : 0;
    c->cpu_us[slot] = own_cpu_us();
    c->cpu_at_ms[slot] = now_ms;
    c->cpu_n++;
    if (c->cpu_n < 2)
        return 0;
    int64_t dt = now_ms - c->cpu_at_ms[oldest];
    return dt > 0 ? 100.0 * (double)(c->cpu_us[slot] - c->cpu_us[oldest]) / 1000.0 / (double)dt : 0;
}

static long own_rss_bytes(void)
{
    char buf[128];
    long pages = 0, rss = 0;
    if (core_read_file("/proc/self/statm", buf, sizeof buf) > 0 && sscanf(buf, "%ld %ld", &pages, &rss) == 2)
        return rss * sysconf(_SC_PAGESIZE);
    return 0;
}

static char *status_json(void *ud)
{
    cell *c = ud;
    status_snap s;
    char host[sizeof c->host];
    pthread_mutex_lock(&c->snap_lock);
    s = c->snap;
    memcpy(host, c->host, sizeof host);
    pthread_mutex_unlock(&c->snap_lock);
    mem_stats ms;
    mem_get_stats(c->mem, &ms);

    json_t *cols = json_array();
    for (int i = 0; i < s.ncollectors; i++) {
        const sense_collector_info *ci = &s.collectors[i];
        json_array_append_new(cols, json_pack("{s:s, s:b, s:b, s:s, s:I, s:i, s:f}",
            "name", ci->name, "enabled", ci->enabled, "available", ci->available, "note", ci->note,
            "interval_ms", (json_int_t)ci->interval_ms, "nseries", ci->nseries,
            "last_cost_us", ci->last_cost_us));
    }
    int64_t now = core_now_ms();
    pthread_mutex_lock(&c->snap_lock); /* c->heal is set and cleared under it */
    char *svc_text = c->heal ? heal_engine_services_json(c->heal) : NULL;
    pthread_mutex_unlock(&c->snap_lock);
    json_t *services = svc_text ? json_loads(svc_text, 0, NULL) : NULL;
    free(svc_text);
    json_t *o = json_pack("{s:s, s:s, s:i, s:I, s:I, s:s, s:s, s:s, s:o, s:{s:f, s:I, s:I}, s:{s:i, s:I, s:I, s:I, s:I, s:i, s:I}, s:I, s:f}",
        "name", "ippocd", "version", IPPOC_VERSION, "pid", (int)getpid(),
        "started_at", (json_int_t)c->started_ms, "uptime_s", (json_int_t)((now - c->started_ms) / 1000),
        "host", host, "state_dir", c->state_dir, "config", c->config_desc,
        "collectors", cols,
        "self", "cpu_percent", s.cpu_percent, "rss_bytes", (json_int_t)own_rss_bytes(),
                "cpu_seconds", (json_int_t)(own_cpu_us() / 1000000),
        "memory", "nseries", ms.nseries, "samples", (json_int_t)ms.samples,
                  "rows_written", (json_int_t)ms.rows_written, "dropped_batches", (json_int_t)ms.dropped_batches,
                  "db_bytes", (json_int_t)ms.db_bytes, "queue_depth", ms.queue_depth,
                  "oldest_ram_ts", (json_int_t)ms.oldest_ram_ts,
        "last_tick_ms", (json_int_t)s.last_tick_ms, "last_tick_cost_us", s.last_tick_cost_us);
    if (o) { /* the store refusing writes (disk full, read-only): since when and why */
        json_t *mo = json_object_get(o, "memory");
        json_object_set_new(mo, "write_failing_since", json_integer((json_int_t)ms.write_failing_since));
        json_object_set_new(mo, "write_error", ms.write_failing_since ? json_string(ms.write_error) : json_null());
    }
    if (o) { /* "services": the list; "heal": the rest (mode, pending, open incidents) */
        json_t *list = json_object_get(services, "services");
        json_object_set_new(o, "services", list ? json_incref(list) : json_array());
        if (services)
            json_object_del(services, "services");
        json_object_set_new(o, "heal", services ? services : json_object());
    } else {
        json_decref(services);
    }
    if (o) { /* where cpu/load/memory/processes come from ([sense] source) */
        const sense_source_info *si = &s.source;
        char line[512];
        if (!strcmp(si->source, "kernel"))
            snprintf(line, sizeof line, "kernel (%s, schema %d%s%s)", si->device, si->schema,
                     si->last_failed ? "; last read failed, procfs used: " : "",
                     si->last_failed ? si->reason : "");
        else
            snprintf(line, sizeof line, "procfs%s%s%s", si->reason[0] ? " (" : "", si->reason,
                     si->reason[0] ? ")" : "");
        json_object_set_new(o, "sense_source", json_string(line));
        json_object_set_new(o, "sensor", json_pack("{s:s, s:s, s:s, s:i, s:s, s:I, s:b}",
            "source", si->source, "mode", si->mode, "device", si->device, "schema", si->schema,
            "reason", si->reason, "fallbacks", (json_int_t)si->fallbacks, "last_failed", si->last_failed));
    }
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

static void publish_snapshot(cell *c, int64_t ts, double cost_us, double cpu)
{
    sense_collector_info cols[MAX_COLLECTORS];
    int n = sense_collectors(c->sense, cols, MAX_COLLECTORS);
    if (n > MAX_COLLECTORS)
        n = MAX_COLLECTORS;
    sense_source_info src;
    sense_source(c->sense, &src);
    if (c->heal) /* renice goes through the device while the sensors use it */
        heal_engine_set_nice_device(c->heal, sense_kernel_device(c->sense));
    pthread_mutex_lock(&c->snap_lock);
    c->snap.source = src;
    memcpy(c->snap.collectors, cols, sizeof cols[0] * (size_t)n);
    c->snap.ncollectors = n;
    c->snap.cpu_percent = cpu;
    c->snap.last_tick_ms = ts;
    c->snap.last_tick_cost_us = cost_us;
    pthread_mutex_unlock(&c->snap_lock);
}

/* ---- the tick --------------------------------------------------------------- */

static void schedule_tick(cell *c);
static void record_event(cell *c, const char *type, const char *sev, json_t *payload);

/* The store entering or leaving the state where it cannot write (disk full,
 * read-only, I/O error): a log line and an event each way. */
static void watch_store(cell *c)
{
    char why[96];
    uint64_t dropped;
    int64_t since = mem_write_failing(c->mem, why, sizeof why, &dropped);
    if (!since == !c->store_failing_since)
        return;
    if (since) {
        c->store_dropped_at = dropped;
        log_err("daemon: the store in %s cannot write: %s: new samples live only in RAM (the RAM window) "
                "until it can; free space there or make it writable", c->state_dir, why);
        record_event(c, "memory.write_failed", "error", json_pack("{s:s, s:s, s:I}", "reason", why,
                     "state_dir", c->state_dir, "since", (json_int_t)since));
    } else {
        int64_t for_ms = core_now_ms() - c->store_failing_since;
        uint64_t lost = dropped - c->store_dropped_at;
        log_info("daemon: the store in %s writes again after %lld s (%llu tick batches were not stored)",
                 c->state_dir, (long long)(for_ms / 1000), (unsigned long long)lost);
        record_event(c, "memory.write_resumed", "info", json_pack("{s:I, s:I}", "failed_for_ms", (json_int_t)for_ms,
                     "dropped_batches", (json_int_t)lost));
    }
    c->store_failing_since = since;
}

static void on_tick(uv_timer_t *t)
{
    cell *c = t->data;
    int64_t now = core_now_ms();
    int64_t ts = now / 1000 * 1000;
    if (ts <= c->last_tick_ts) { /* woke early, or the clock stepped back */
        schedule_tick(c);
        return;
    }
    int64_t t0 = core_mono_ns();
    sense_collect(c->sense, ts);
    mem_tick(c->mem, ts);
    logs_watch_tick(c->logs, now); /* its series go into the next tick */
    watch_store(c);
    detect_registry_tick(c->an, ts);
    if (c->heal)
        heal_engine_tick(c->heal, now);
    if (c->brain)
        brain_tick(c->brain, now);
    double cost_us = (double)(core_mono_ns() - t0) / 1000.0;
    c->last_tick_ts = ts;
    publish_snapshot(c, ts, cost_us, sample_own_cpu(c, now));
    schedule_tick(c);
}

static void schedule_tick(cell *c)
{
    int64_t now = core_now_ms();
    uint64_t delay = (uint64_t)(1000 - now % 1000) + 2; /* just past the second */
    uv_update_time(&c->loop);
    uv_timer_start(&c->tick, on_tick, delay, 0);
}

/* ---- heal readers and decisions for the API threads ------------------------ */

static char *heal_read(cell *c, char *(*fn)(heal_engine *))
{
    pthread_mutex_lock(&c->snap_lock); /* c->heal is set and cleared under it */
    char *t = c->heal ? fn(c->heal) : NULL;
    pthread_mutex_unlock(&c->snap_lock);
    return t;
}

static char *hk_services(void *ud) { return heal_read(ud, heal_engine_services_json); }
static char *hk_incidents(void *ud) { return heal_read(ud, heal_engine_incidents_json); }
static char *hk_pending(void *ud) { return heal_read(ud, heal_engine_pending_json); }

static char *hk_incident(void *ud, uint64_t id)
{
    cell *c = ud;
    pthread_mutex_lock(&c->snap_lock);
    char *t = c->heal ? heal_engine_incident_json(c->heal, id) : NULL;
    pthread_mutex_unlock(&c->snap_lock);
    return t;
}

/* The engine may be freed while the API still runs: hand out our own copy. */
static const char *hk_audit_path(void *ud) { return ((cell *)ud)->audit_path; }

/* Runs run(k) on the loop thread for an API thread (5 s at most; each run
 * puts its own result in k and returns 0): 0 when it ran, else -EBUSY
 * (the loop did not take it) or -ECANCELED, with the reason in err. Serves
 * approve/reject, approve-with-edit, diagnose and dream. */
static int on_loop(cell *c, int (*run)(void *), void *k, char *err, size_t errlen)
{
    int rc = loopcall_run(&c->lc, run, k, 5000);
    if (rc == -ETIMEDOUT) {
        snprintf(err, errlen, "the daemon's loop did not answer within 5 s; nothing was done");
        return -EBUSY;
    }
    if (rc == -ECANCELED) {
        snprintf(err, errlen, "the daemon is starting or stopping");
        return -ECANCELED;
    }
    return rc;
}

typedef struct heal_call {
    cell *c;
    uint64_t id;
    const char *who;
    char *err;
    size_t errlen;
    bool approve;
    int rc;
} heal_call;

/* Loop thread. The engine's own result goes in k->rc, so its -ETIMEDOUT
 * (expired) is not mistaken for the loop not answering. */
static int heal_call_run(void *arg)
{
    heal_call *k = arg;
    if (!k->c->heal) {
        snprintf(k->err, k->errlen, "healing is stopping");
        k->rc = -ECANCELED;
        return 0;
    }
    k->rc = k->approve ? heal_engine_approve(k->c->heal, k->id, k->who, k->err, k->errlen)
                       : heal_engine_reject(k->c->heal, k->id, k->who, k->err, k->errlen);
    return 0;
}

static int heal_decide(cell *c, uint64_t id, const char *who, char *err, size_t errlen, bool approve)
{
    heal_call k = {c, id, who, err, errlen, approve, 0};
    int rc = on_loop(c, heal_call_run, &k, err, errlen);
    return rc ? rc : k.rc;
}

static int hk_approve(void *ud, uint64_t id, const char *who, char *e, size_t n)
{
    return heal_decide(ud, id, who, e, n, true);
}

static int hk_reject(void *ud, uint64_t id, const char *who, char *e, size_t n)
{
    return heal_decide(ud, id, who, e, n, false);
}

/* ---- anomaly readers for the API threads (snapshots: no lock of ours) ---- */

static char *hk_anomalies(void *ud, bool all) { return detect_registry_json(((cell *)ud)->an, all); }
/* The registry's scores in the API's own struct (the API does not read src/detect). */
static int hk_anomaly_scores(void *ud, api_anomaly_score **out)
{
    detect_score *d = NULL;
    int n = detect_registry_scores(((cell *)ud)->an, &d);
    *out = NULL;
    if (n > 0 && !(*out = malloc((size_t)n * sizeof **out)))
        n = -ENOMEM;
    for (int i = 0; i < n; i++)
        (*out)[i] = (api_anomaly_score){d[i].name, d[i].labels, d[i].score, d[i].anomalous};
    free(d);
    return n;
}
/* The log watch for GET /v1/logs (c->logs is set and cleared under snap_lock). */
static char *hk_logs(void *ud, const char *source)
{
    cell *c = ud;
    pthread_mutex_lock(&c->snap_lock);
    char *t = c->logs ? logs_watch_json(c->logs, source) : NULL;
    pthread_mutex_unlock(&c->snap_lock);
    return t;
}

static int hk_node_metrics(void *ud, void (*emit)(void *, const char *, size_t), void *eud)
{
    return sense_nx_render(((cell *)ud)->nx, emit, eud);
}

/* ---- the brain's readers and questions for the API threads ------------------ */

static char *hk_diagnosis(void *ud, uint64_t id)
{
    cell *c = ud;
    pthread_mutex_lock(&c->snap_lock); /* c->brain is set and cleared under it */
    char *t = c->brain ? brain_diagnosis_json(c->brain, id) : NULL;
    pthread_mutex_unlock(&c->snap_lock);
    return t;
}

/* A reader of the brain for the API threads, run under snap_lock (c->brain is
 * set and cleared under it); NULL while the brain is not running. Serves
 * GET /v1/brain and GET /v1/prefs. */
static char *brain_read(cell *c, char *(*read)(brain *))
{
    pthread_mutex_lock(&c->snap_lock);
    char *t = c->brain ? read(c->brain) : NULL;
    pthread_mutex_unlock(&c->snap_lock);
    return t;
}

static char *hk_brain(void *ud) { return brain_read(ud, brain_status_json); }

typedef struct brain_call {
    cell *c;
    const char *service;
    uint64_t id;
    char *err;
    size_t errlen;
    int rc;
} brain_call;

static int brain_call_run(void *arg)
{
    brain_call *k = arg;
    if (!k->c->brain) {
        snprintf(k->err, k->errlen, "the brain is not running");
        k->rc = -ENOTSUP;
        return 0;
    }
    k->rc = brain_diagnose_service(k->c->brain, k->service, &k->id, k->err, k->errlen);
    return 0;
}

static int hk_diagnose(void *ud, const char *service, uint64_t *id, char *err, size_t errlen)
{
    brain_call k = {ud, service, 0, err, errlen, 0};
    int rc = on_loop(ud, brain_call_run, &k, err, errlen);
    if (rc)
        return rc;
    *id = k.id;
    return k.rc;
}

/* ---- the language model and the knowledge store ------------------------------ */

/* Every request body that leaves for a model, after redaction (any thread). */
static void on_llm_sent(void *ud, const char *provider, const char *body)
{
    cell *c = ud;
    json_t *p = json_pack("{s:s, s:I}", "provider", provider, "bytes", (json_int_t)strlen(body));
    char *text = p ? json_dumps(p, JSON_COMPACT) : NULL;
    if (text)
        mem_event_add(c->mem, 0, "llm.sent", "info", "llm", text);
    free(text);
    json_decref(p);
}

static int know_embed(void *ud, const char *const *texts, size_t n, float *out, int dims, char *err, size_t errlen)
{
    return llm_embed(ud, texts, n, out, dims, err, errlen);
}

/* A peer's reasoning request: this cell's own local model only (mesh hook). */
static int reason_local(void *ud, const char *body, int timeout_ms, char **answer, char *err, size_t errlen)
{
    return llm_complete_local_body(ud, body, timeout_ms, answer, err, errlen);
}

/* The cell works without either: a failure is logged, not fatal. */
static void start_thinking(cell *c)
{
    char err[1024], path[CORE_PATH_MAX + 32];
    llm *l = NULL;
    if (llm_new(&c->cfg, c->cfg.state_dir, on_llm_sent, c, &l, err, sizeof err))
        log_err("ippocd: llm: %s (thinking without a model)", err);
    pthread_mutex_lock(&c->snap_lock); /* GET /v1/llm may already be asking (hk_llm) */
    c->llm = l;
    pthread_mutex_unlock(&c->snap_lock);
    if (c->mesh && l) { /* the mesh: a reasoning peer for us, our local model for the fleet */
        mesh_cell_set_reasoner(c->mesh, reason_local, l);
        llm_set_remote(l, mesh_cell_reason, mesh_cell_reason_available, c->mesh);
    }
    snprintf(path, sizeof path, "%s/knowledge.db", c->cfg.state_dir);
    if (mem_know_open(path, &c->know, err, sizeof err)) {
        log_warn("ippocd: knowledge: %s (running without it)", err);
        c->know = NULL;
    } else if (llm_embed_dims(c->llm) > 0)
        mem_know_set_embedder(c->know, know_embed, c->llm, llm_embed_dims(c->llm));
}

/* ---- ask: POST /v1/ask (an HTTP thread; may block on the model) ---------------- */

/* Asks in flight: the stop path waits for them before it frees the brain
 * (under snap_lock, like c->brain; one daemon per process). */
static pthread_cond_t ask_done = PTHREAD_COND_INITIALIZER;
static int asking;

static char *hk_ask(void *ud, const char *question, int64_t at_ms, int *status, char *err, size_t errlen)
{
    cell *c = ud;
    pthread_mutex_lock(&c->snap_lock);
    brain *b = c->brain;
    if (b)
        asking++;
    pthread_mutex_unlock(&c->snap_lock);
    if (!b) {
        *status = 503;
        snprintf(err, errlen, "the brain is not running");
        return NULL;
    }
    char *t = brain_ask_at_json(b, question, at_ms, core_now_ms(), status, err, errlen);
    pthread_mutex_lock(&c->snap_lock);
    if (--asking == 0)
        pthread_cond_broadcast(&ask_done);
    pthread_mutex_unlock(&c->snap_lock);
    return t;
}

/* ---- preferences (GET /v1/prefs, forget, approve with an edit) ---- */

static char *hk_prefs(void *ud) { return brain_read(ud, brain_prefs_json); }

/* The stop path, after c->brain is cleared: the asks still reading it end first. */
static void wait_asks(cell *c)
{
    pthread_mutex_lock(&c->snap_lock);
    while (asking > 0)
        pthread_cond_wait(&ask_done, &c->snap_lock);
    pthread_mutex_unlock(&c->snap_lock);
}

/* GET /v1/llm: the language-model client's status (any thread). */
static char *hk_llm(void *ud)
{
    cell *c = ud;
    pthread_mutex_lock(&c->snap_lock); /* published by start_thinking, freed after the API stops */
    llm *l = c->llm;
    pthread_mutex_unlock(&c->snap_lock);
    return llm_status_json(l);
}

/* Dreaming: the digest (any thread), a pass now (on the loop), and what
 * refreshes the detectors' baselines during a pass (the loop). */
static char *hk_digest(void *ud, const char *day, char *err, size_t errlen)
{
    cell *c = ud;
    pthread_mutex_lock(&c->snap_lock);
    bool thinking = c->brain != NULL;
    pthread_mutex_unlock(&c->snap_lock);
    if (!thinking) {
        snprintf(err, errlen, "the brain is not running");
        return NULL;
    }
    /* from memory only (it outlives the API): the loop never waits on it */
    return brain_digest_mem_json(c->mem, day, err, errlen);
}

typedef struct dream_call {
    cell *c;
    uint64_t pass;
    char *err;
    size_t errlen;
    int rc;
} dream_call;

static int dream_call_run(void *arg)
{
    dream_call *k = arg;
    k->rc = brain_dream_start(k->c->brain, &k->pass, k->err, k->errlen);
    return 0;
}

static int hk_dream(void *ud, uint64_t *pass, char *err, size_t errlen)
{
    dream_call k = {ud, 0, err, errlen, 0};
    int rc = on_loop(ud, dream_call_run, &k, err, errlen);
    if (rc)
        return rc;
    *pass = k.pass;
    return k.rc;
}

static int dream_baselines(void *ud, int64_t now_ms)
{
    cell *c = ud;
    return c->an ? detect_registry_save(c->an, now_ms) : 0;
}

/* ---- learn: documents and feeds into the knowledge store -------------------- */

static void start_learning(cell *c)
{
    char err[1024];
    brain_learn *l = NULL;
    if (brain_learn_new(&c->cfg, c->know, &l, err, sizeof err))
        log_err("ippocd: knowledge: %s (not reading documents)", err);
    pthread_mutex_lock(&c->snap_lock);
    c->learn = l;
    pthread_mutex_unlock(&c->snap_lock);
}

/* The learner (fixed once set; freed only after the API stopped). */
static brain_learn *learner(cell *c)
{
    pthread_mutex_lock(&c->snap_lock);
    brain_learn *l = c->learn;
    pthread_mutex_unlock(&c->snap_lock);
    return l;
}

/* The learner for a request that needs it: NULL with 503 and the reason when
 * there is none (POST /v1/learn, GET /v1/knowledge/search). */
static brain_learn *learner_for(void *ud, int *status, char *err, size_t errlen)
{
    brain_learn *l = learner(ud);
    if (!l) {
        *status = 503;
        snprintf(err, errlen, "the knowledge store is not running");
    }
    return l;
}

static char *hk_learn(void *ud, const char *body, size_t len, int *status, char *err, size_t errlen)
{
    brain_learn *l = learner_for(ud, status, err, errlen);
    return l ? brain_learn_json(l, body, len, status, err, errlen) : NULL;
}

static char *hk_knowledge(void *ud, int limit)
{
    brain_learn *l = learner(ud);
    return l ? brain_knowledge_json(l, limit) : NULL;
}

static char *hk_knowledge_search(void *ud, const char *q, const char *mode, int limit, int *status, char *err,
                                 size_t errlen)
{
    brain_learn *l = learner_for(ud, status, err, errlen);
    return l ? brain_knowledge_search_json(l, q, mode, limit, status, err, errlen) : NULL;
}

static char *hk_links(void *ud, const char *node, int depth)
{
    brain_learn *l = learner(ud);
    return l ? brain_knowledge_links_json(l, node, depth) : NULL;
}

static char *hk_feeds(void *ud)
{
    brain_learn *l = learner(ud);
    return l ? brain_learn_feeds_json(l) : NULL;
}

static int hk_prefs_forget(void *ud, const char *id, char *err, size_t errlen)
{
    cell *c = ud;
    pthread_mutex_lock(&c->snap_lock);
    int rc = brain_prefs_forget(c->brain, id, err, errlen);
    pthread_mutex_unlock(&c->snap_lock);
    return rc;
}

typedef struct edit_call {
    cell *c;
    uint64_t id;
    const char *who, *edit;
    char *err;
    size_t errlen;
    int rc;
} edit_call;

static int edit_call_run(void *arg)
{
    edit_call *k = arg;
    if (!k->c->heal) {
        snprintf(k->err, k->errlen, "healing is stopping");
        k->rc = -ECANCELED;
        return 0;
    }
    k->rc = heal_engine_approve_edit(k->c->heal, k->id, k->who, k->edit, k->err, k->errlen);
    return 0;
}

static int hk_approve_edit(void *ud, uint64_t id, const char *who, const char *edit, char *err, size_t errlen)
{
    edit_call k = {ud, id, who, edit, err, errlen, 0};
    int rc = on_loop(ud, edit_call_run, &k, err, errlen);
    return rc ? rc : k.rc;
}

/* ---- proposals from outside (POST /v1/actions) ---------------------------------- */

#define PROPOSE_PENDING_MAX 64
#define PROPOSE_PATHS_MAX 32

/* A [service.NAME] of the running configuration: its allowlist (the last
 * allow line, as heal reads it; "" = the default) and config_path entries.
 * false when there is no such service. Loop thread (c->cfg). */
static bool service_policy(const cell *c, const char *name, const char **allow, const char **paths, int *npaths)
{
    bool found = false;
    *allow = "";
    *npaths = 0;
    for (int i = 0; i < c->cfg.nraw; i++) {
        const core_kv *kv = &c->cfg.raw[i];
        if (strncmp(kv->section, "service.", 8) || strcmp(kv->section + 8, name))
            continue;
        found = true;
        if (!strcmp(kv->key, "allow"))
            *allow = kv->value;
        else if (!strcmp(kv->key, "config_path") && *npaths < PROPOSE_PATHS_MAX)
            paths[(*npaths)++] = kv->value;
    }
    return found;
}

typedef struct propose_call {
    cell *c;
    const char *service, *action, *who, *why;
    int status;
    char *err;
    size_t errlen;
    char *answer; /* malloc'd JSON */
} propose_call;

/* Refuses the proposal with status and the reason; returns -1. */
static int propose_fail(propose_call *k, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int propose_fail(propose_call *k, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->err, k->errlen, fmt, ap);
    va_end(ap);
    k->status = status;
    log_info("ippocd: a proposal by %s is refused (%d): %s", k->who, status, k->err);
    return -1;
}

/* The static checks before anything is opened: the action's text, never a
 * genome change, a configured service, its allowlist and targets. */
static int propose_check(propose_call *k, heal_action *a)
{
    char why[512];
    size_t lead = strspn(k->action, " \t");
    bool genome = !strncmp(k->action + lead, "genome", 6) && strchr(" \t", k->action[lead + 6]);
    if (!genome && heal_action_parse_text(k->action, k->service, a, why, sizeof why) != 0)
        return propose_fail(k, 400, "action: %s", why);
    if (genome || a->kind == HEAL_ACT_GENOME)
        return propose_fail(k, 403, "action: '%s' is a genome change: only the cell makes those (ippoc rollback, "
                                    "ippoc evolve)", k->action);
    const char *allow, *paths[PROPOSE_PATHS_MAX];
    int np;
    if (!service_policy(k->c, k->service, &allow, paths, &np))
        return propose_fail(k, 404, "service: no service '%s' is configured (see `ippoc services`)", k->service);
    if (heal_action_check(a, allow, paths, np, why, sizeof why) != 0)
        return propose_fail(k, 403, "refused by the safety policy: %s", why);
    return 0;
}

/* The ids in after[] that are not in before[]. */
static json_t *new_ids(const uint64_t *before, size_t nb, const uint64_t *after, size_t na)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < na; i++) {
        bool old = false;
        for (size_t j = 0; j < nb && !old; j++)
            old = before[j] == after[i];
        if (!old)
            json_array_append_new(arr, json_integer((json_int_t)after[i]));
    }
    return arr;
}

/* The ids of pending entries for service whose action reads text (the
 * policy keeps one offer per action: a second proposal of it is "already
 * pending" under the first one's id), from the engine's snapshot. */
static void pending_like(cell *c, const char *service, const char *text, json_t *ids)
{
    char *t = heal_engine_pending_json(c->heal);
    json_t *o = t ? json_loads(t, 0, NULL) : NULL, *v;
    size_t i;
    free(t);
    json_array_foreach(json_object_get(o, "pending"), i, v) {
        if (!strcmp(json_string_value(json_object_get(v, "service")) ?: "", service) &&
            !strcmp(json_string_value(json_object_get(v, "action")) ?: "", text))
            json_array_append(ids, json_object_get(v, "id"));
    }
    json_decref(o);
}

/* The incident's last action result (its outcome and message), from the
 * engine's snapshot; "" when none (the action runs: a dry run). */
static void last_result(cell *c, uint64_t id, char *outcome, size_t on, char *msg, size_t mn)
{
    char *t = heal_engine_incident_json(c->heal, id);
    json_t *o = t ? json_loads(t, 0, NULL) : NULL, *acts = json_object_get(o, "actions");
    json_t *r = json_array_get(acts, json_array_size(acts) ? json_array_size(acts) - 1 : 0);
    free(t);
    snprintf(outcome, on, "%s", json_string_value(json_object_get(r, "outcome")) ?: "");
    snprintf(msg, mn, "%s", json_string_value(json_object_get(r, "message")) ?: "");
    json_decref(o);
}

/* The answer {"incident","service","action","who","verdict","pending","reason"}
 * after the proposal went through heal_engine_propose_ask. */
static void propose_answer(propose_call *k, uint64_t id, const heal_action *a, json_t *pending)
{
    char text[HEAL_ARG_MAX + 64], outcome[32], msg[512], reason[700];
    heal_action_format(a, text, sizeof text);
    last_result(k->c, id, outcome, sizeof outcome, msg, sizeof msg);
    if (!json_array_size(pending) && !strcmp(outcome, "queued"))
        pending_like(k->c, k->service, text, pending);
    const char *verdict = json_array_size(pending) ? "queue" : !strcmp(outcome, "refused") ? "refuse"
                                                              : !strcmp(outcome, "recorded") ? "record" : "execute";
    if (json_array_size(pending)) {
        json_int_t p = json_integer_value(json_array_get(pending, 0));
        snprintf(reason, sizeof reason, "pending #%lld: approve with `ippoc approve %lld`%s%s", (long long)p,
                 (long long)p, msg[0] ? " (" : "", msg[0] ? msg : "");
        if (msg[0])
            strncat(reason, ")", sizeof reason - strlen(reason) - 1);
    } else {
        snprintf(reason, sizeof reason, "%s", msg[0] ? msg : "running (dry run: simulated)");
    }
    if (!strcmp(verdict, "refuse")) { /* the policy's live part said no: rate, flapping, ... */
        json_decref(pending);
        k->status = 403;
        snprintf(k->err, k->errlen, "refused by the safety policy (incident %llu): %s", (unsigned long long)id,
                 reason);
        return;
    }
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:s}", "incident", (json_int_t)id, "service", k->service,
                          "action", text, "who", k->who, "verdict", verdict, "pending", pending, "reason", reason);
    k->answer = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!k->answer) {
        k->status = 503;
        snprintf(k->err, k->errlen, "out of memory");
    }
}

/* Loop thread: the whole proposal. */
static int propose_run(void *arg)
{
    propose_call *k = arg;
    heal_engine *e = k->c->heal;
    heal_action a;
    if (!e || k->c->stopping) {
        propose_fail(k, 503, "healing is stopping");
        return 0;
    }
    if (propose_check(k, &a) != 0)
        return 0;
    uint64_t before[PROPOSE_PENDING_MAX], after[PROPOSE_PENDING_MAX], id = 0;
    size_t nb = heal_engine_pending_ids(e, before, PROPOSE_PENDING_MAX);
    char what[HEAL_ARG_MAX + 1200], err[512] = "";
    snprintf(what, sizeof what, "proposed by %s: %s", k->who, k->why);
    json_t *evd = json_pack("{s:s, s:s, s:s}", "proposed_by", k->who, "action", k->action, "reason", k->why);
    int rc = heal_engine_incident_new(e, k->service, what, evd, &id, err, sizeof err);
    if (!rc)
        rc = heal_engine_propose_ask(e, id, &a, 1, k->who, k->why, err, sizeof err);
    if (rc) {
        if (id)
            heal_engine_incident_close(e, id, false, err);
        propose_fail(k, rc == -ENOENT ? 404 : rc == -EINVAL ? 400 : 503, "%s", err);
        return 0;
    }
    size_t na = heal_engine_pending_ids(e, after, PROPOSE_PENDING_MAX);
    log_info("ippocd: incident %llu: %s proposes '%s' for %s: %s", (unsigned long long)id, k->who, k->action,
             k->service, k->why);
    propose_answer(k, id, &a, new_ids(before, nb < PROPOSE_PENDING_MAX ? nb : PROPOSE_PENDING_MAX, after,
                                      na < PROPOSE_PENDING_MAX ? na : PROPOSE_PENDING_MAX));
    return 0;
}

static char *hk_propose(void *ud, const char *service, const char *action, const char *who, const char *why,
                        int *status, char *err, size_t errlen)
{
    propose_call k = {ud, service, action, who, why, 0, err, errlen, NULL};
    int rc = on_loop(ud, propose_run, &k, err, errlen);
    if (rc) {
        free(k.answer);
        *status = 503;
        return NULL;
    }
    *status = k.answer ? 200 : k.status;
    return k.answer;
}

/* ---- evolution: the genome, its changes through heal, the tools' host ---------- */

#define EMBEDDED_DEFAULTS "embedded defaults"

static void reload(cell *c);

/* The cell's evolution as the API threads see it (set once, at start). */
static evolve_cell *evolve_of(cell *c)
{
    pthread_mutex_lock(&c->snap_lock);
    evolve_cell *e = c->evolve;
    pthread_mutex_unlock(&c->snap_lock);
    return e;
}

/* The config file's text (malloc'd), or "" for the embedded defaults; NULL
 * when it cannot be read. */
static char *config_text(cell *c)
{
    if (!strcmp(c->config_desc, EMBEDDED_DEFAULTS))
        return strdup("");
    return core_slurp(c->config_desc, NULL);
}

/* [evolve] probation (checked by heal_config_check), default 10 minutes. */
static int64_t evolve_probation_ms(const core_config *cfg)
{
    int64_t ms = 10 * 60 * 1000, v;
    for (int i = 0; i < cfg->nraw; i++)
        if (!strcmp(cfg->raw[i].section, "evolve") && !strcmp(cfg->raw[i].key, "probation") &&
            core_parse_duration(cfg->raw[i].value, &v) == 0 && v > 0)
            ms = v;
    return ms;
}

typedef struct change_call {
    cell *c;
    heal_action a;
    const char *who, *why;
    char *verdict;
    size_t vlen;
    char *err;
    size_t errlen;
    int rc;
} change_call;

static int change_call_run(void *arg)
{
    change_call *k = arg;
    if (!k->c->heal || k->c->stopping) {
        snprintf(k->err, k->errlen, "healing is stopping: nothing was changed");
        k->rc = -ECANCELED;
        return 0;
    }
    k->rc = heal_engine_change(k->c->heal, &k->a, k->who, k->why, k->verdict, k->vlen, k->err, k->errlen);
    return 0;
}

/* Any thread: one action through heal's policy and audit log, on the loop. */
static int change_on_loop(cell *c, const heal_action *a, const char *who, const char *why, char *verdict,
                          size_t vlen, char *err, size_t errlen)
{
    change_call k = {c, *a, who, why, verdict, vlen, err, errlen, 0};
    if (vlen)
        verdict[0] = 0;
    int rc = on_loop(c, change_call_run, &k, err, errlen);
    return rc ? rc : k.rc;
}

static int ev_change(void *ud, const char *op, const char *arg, const char *why, char *verdict, size_t vlen,
                     char *err, size_t errlen)
{
    heal_action a = {.kind = HEAL_ACT_GENOME};
    core_sncpy(a.service, sizeof a.service, HEAL_CELL_TARGET);
    if (core_sncpy(a.key, sizeof a.key, op) || core_sncpy(a.value, sizeof a.value, arg)) {
        snprintf(err, errlen, "genome change: '%s %s' is too long", op, arg);
        return -EINVAL;
    }
    return change_on_loop(ud, &a, "genome", why, verdict, vlen, err, errlen);
}

static int reload_run(void *arg)
{
    cell *c = arg;
    if (!c->stopping)
        reload(c);
    return 0;
}

/* The genome's ippoc.conf changed (a rollback): checked like a reload
 * would, written in place of the running file, then the same reload as
 * SIGHUP on the loop. Refused when ippocd runs on its embedded defaults. */
static int ev_config_changed(void *ud, const char *text, char *err, size_t errlen)
{
    cell *c = ud;
    if (!strcmp(c->config_desc, EMBEDDED_DEFAULTS)) {
        snprintf(err, errlen, "ippocd runs on its embedded defaults (no configuration file): the genome's "
                              "ippoc.conf is not written anywhere; start ippocd with --config FILE");
        return -EPERM;
    }
    char tmp[CORE_PATH_MAX + 32];
    int rc = core_write_temp(c->config_desc, text, strlen(text), tmp, sizeof tmp, err, errlen);
    if (rc)
        return rc;
    daemon_opts o = *c->opts; /* the same checks as a reload, on the new text */
    o.config_path = tmp;
    o.config_required = true;
    core_config next;
    char why[1024];
    rc = daemon_load_config(&o, &next, why, sizeof why);
    core_config_free(&next);
    if (rc) {
        unlink(tmp);
        snprintf(err, errlen, "the genome's ippoc.conf is not a valid configuration, %s is unchanged: %s",
                 c->config_desc, why);
        return -EINVAL;
    }
    if (rename(tmp, c->config_desc)) {
        rc = -errno;
        unlink(tmp);
        snprintf(err, errlen, "%s: cannot replace it: %s", c->config_desc, strerror(-rc));
        return rc;
    }
    log_info("daemon: %s written from the genome; reloading", c->config_desc);
    rc = on_loop(c, reload_run, c, err, errlen);
    if (rc == -ECANCELED)
        return rc;
    return 0;
}

/* The tools' host: the newest value of a series from memory. */
static int ev_metric(void *ud, const char *name, const char *labels, double *value)
{
    cell *c = ud;
    int id = mem_series_find(c->mem, name, labels ? labels : "");
    int64_t ts;
    if (id < 0 || mem_series_last(c->mem, id, value, &ts) || ts == 0)
        return -ENOENT;
    return 0;
}

static char *ev_incidents(void *ud, int n)
{
    char *t = heal_read(ud, heal_engine_incidents_json);
    json_t *o = t ? json_loads(t, 0, NULL) : NULL;
    free(t);
    json_t *all = json_object_get(o, "incidents");
    if (!json_is_array(all)) {
        json_decref(o);
        return NULL;
    }
    while (n >= 0 && json_array_size(all) > (size_t)n)
        json_array_remove(all, json_array_size(all) - 1); /* newest first: keep the first n */
    char *s = json_dumps(all, JSON_COMPACT);
    json_decref(o);
    return s;
}

static int ev_propose(void *ud, const char *service, const char *action, const char *why, char *out,
                      size_t outlen)
{
    heal_action a;
    char err[512] = "", verdict[32] = "";
    int rc = heal_action_parse_text(action, service ? service : "", &a, err, sizeof err);
    if (rc) {
        snprintf(out, outlen, "refuse: %s", err);
        return rc;
    }
    rc = change_on_loop(ud, &a, "tool", why, verdict, sizeof verdict, err, sizeof err);
    snprintf(out, outlen, "%s: %s", verdict[0] ? verdict : "refuse", err);
    return rc;
}

/* heal's executor of approved genome changes (on its pool). */
static int ev_execute(void *ud, const char *op, const char *arg, char *err, size_t errlen)
{
    cell *c = ud;
    evolve_cell *e = evolve_of(c);
    if (!e) {
        snprintf(err, errlen, "evolution is unavailable");
        return -ENOSYS;
    }
    return evolve_execute(e, op, arg, err, errlen);
}

static char *hk_evolve(void *ud, const char *method, const char *path, const char *query, const char *body,
                       size_t len, int *status)
{
    cell *c = ud;
    char why[sizeof c->evolve_err];
    pthread_mutex_lock(&c->snap_lock);
    evolve_cell *e = c->evolve;
    snprintf(why, sizeof why, "%s", c->evolve_err[0] ? c->evolve_err : "evolution is starting");
    pthread_mutex_unlock(&c->snap_lock);
    if (!e) {
        *status = 503;
        json_t *o = json_pack("{s:s}", "error", why);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        return s;
    }
    return evolve_http(e, method, path, query, body, len, status);
}

/* After the brain (the model and knowledge it may use). A genome that does
 * not open is logged and recorded (genome.corrupt); the cell runs without
 * evolution, and its routes answer 503 with the reason. */
static void start_evolving(cell *c)
{
    char err[1024] = "";
    char *text = config_text(c);
    evolve_cell_opts o = {.state_dir = c->cfg.state_dir,
                          .config_path = strcmp(c->config_desc, EMBEDDED_DEFAULTS) ? c->config_desc : NULL,
                          .config_text = text, .llm = c->llm, .mem = c->mem, .know = c->know,
                          .probation_ms = evolve_probation_ms(&c->cfg)};
    evolve_hooks h = {.change = ev_change, .config_changed = ev_config_changed,
                      .tools = {.metric = ev_metric, .incidents = ev_incidents, .propose = ev_propose, .ud = c},
                      .ud = c};
    evolve_cell *e = NULL;
    int rc = evolve_cell_new(&o, &h, &e, err, sizeof err);
    free(text);
    if (!rc && (rc = evolve_genome_check(evolve_cell_genome(e), err, sizeof err)) != -EIO) {
        if (rc) /* a working tree edited by hand: `ippoc genome check` names it */
            log_warn("ippocd: genome: %s", err);
        rc = 0;
    } else if (rc) { /* HEAD or objects unreadable: no evolution on a genome that lies */
        evolve_cell_free(e);
        e = NULL;
    }
    if (rc) {
        pthread_mutex_lock(&c->snap_lock);
        snprintf(c->evolve_err, sizeof c->evolve_err, "evolution is unavailable: %s", err);
        pthread_mutex_unlock(&c->snap_lock);
        log_err("ippocd: evolution is unavailable: %s", err);
        record_event(c, "genome.corrupt", "error", json_pack("{s:s, s:i}", "reason", err, "errno", -rc));
        return;
    }
    pthread_mutex_lock(&c->snap_lock);
    c->evolve = e;
    pthread_mutex_unlock(&c->snap_lock);
    if (c->heal)
        heal_engine_set_genome(c->heal, ev_execute, c);
}

/* ---- the mesh ------------------------------------------------------------------ */

/* Whether [llm] names a model (advertised in the cell's capabilities). */
static bool llm_configured(const core_config *cfg)
{
    for (int i = 0; i < cfg->nraw; i++)
        if (!strcmp(cfg->raw[i].section, "llm") &&
            (!strcmp(cfg->raw[i].key, "local") || !strcmp(cfg->raw[i].key, "cloud")) && cfg->raw[i].value[0] &&
            strcmp(cfg->raw[i].value, "none") && strcmp(cfg->raw[i].value, "off"))
            return true;
    return false;
}

/* Before the API (its routes read it); a failure leaves the cell without a mesh. */
static void start_mesh(cell *c)
{
    char err[1024];
    mesh_cell_opts o = {.state_dir = c->cfg.state_dir, .mem = c->mem, .llm = llm_configured(&c->cfg)};
    if (mesh_cell_new(&o, &c->mesh, err, sizeof err)) {
        log_err("ippocd: mesh: %s (running without the mesh)", err);
        c->mesh = NULL;
        return;
    }
    if (mesh_cell_configure(c->mesh, &c->cfg, err, sizeof err))
        log_err("ippocd: %s", err);
}

/* GET /v1/mesh/... and the /metrics families (any thread; c->mesh is fixed while the API runs). */
static char *hk_mesh(void *ud, int what, int limit)
{
    cell *c = ud;
    if (!c->mesh)
        return NULL;
    if (what == API_MESH_STATUS)
        return mesh_cell_status_json(c->mesh);
    if (what == API_MESH_PEERS)
        return mesh_cell_peers_json(c->mesh);
    return mesh_cell_wisdom_json(c->mesh, limit);
}

static char *hk_mesh_metrics(void *ud)
{
    cell *c = ud;
    return c->mesh ? mesh_cell_prometheus(c->mesh) : NULL;
}

/* ---- API start/stop --------------------------------------------------------- */

static int start_api(cell *c, char *err, size_t errlen)
{
    api_hooks hooks = {.ud = c, .status_json = status_json, .services_json = hk_services,
                       .incidents_json = hk_incidents, .incident_json = hk_incident,
                       .pending_json = hk_pending, .audit_path = hk_audit_path,
                       .approve = hk_approve, .reject = hk_reject,
                       .anomalies_json = hk_anomalies, .anomaly_scores = hk_anomaly_scores,
                       .node_metrics = hk_node_metrics,
                       .logs_json = hk_logs,
                       .diagnosis_json = hk_diagnosis, .brain_json = hk_brain, .diagnose = hk_diagnose,
                       .socket_path = c->socket_path,
                       .llm_json = hk_llm,
                       .digest_json = hk_digest, .dream = hk_dream, /* dreaming */
                       .learn = hk_learn, .knowledge_json = hk_knowledge, .knowledge_search = hk_knowledge_search,
                       .feeds_json = hk_feeds, .links_json = hk_links,
                       .ask_json = hk_ask,
                       .prefs_json = hk_prefs, .prefs_forget = hk_prefs_forget, .approve_edit = hk_approve_edit,
                       .evolve_http = hk_evolve,
                       .propose = hk_propose,
                       .mesh_json = hk_mesh, .mesh_metrics = hk_mesh_metrics};
    int rc = api_start(&c->api, &c->cfg, c->mem, &hooks, err, errlen);
    if (rc)
        return rc;
    char host[256];
    int port;
    core_split_hostport(c->cfg.api_listen, host, sizeof host, &port);
    bool v6 = strchr(host, ':') != NULL;
    snprintf(c->url, sizeof c->url, "http://%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", api_port(c->api));
    write_url_file(c);
    log_info("daemon: API at %s", c->url);
    return 0;
}

static bool api_settings_changed(const core_config *a, const core_config *b)
{
    return strcmp(a->api_listen, b->api_listen) || strcmp(a->api_token, b->api_token) ||
           a->api_max_connections != b->api_max_connections || a->api_max_points != b->api_max_points ||
           strcmp(a->api_prometheus_listen, b->api_prometheus_listen);
}

/* ---- reload and stop ---------------------------------------------------------- */

/* Moves the API to the new settings; if it cannot listen there, goes back to
 * the old ones so the cell stays reachable. */
static void restart_api(cell *c, const core_config *old)
{
    char err[1024];
    api_stop(c->api);
    c->api = NULL;
    if (start_api(c, err, sizeof err) == 0)
        return;
    log_err("daemon: API cannot move to the new settings, keeping the old ones: %s", err);
    core_sncpy(c->cfg.api_listen, sizeof c->cfg.api_listen, old->api_listen);
    core_sncpy(c->cfg.api_token, sizeof c->cfg.api_token, old->api_token);
    c->cfg.api_max_connections = old->api_max_connections;
    c->cfg.api_max_points = old->api_max_points;
    core_sncpy(c->cfg.api_prometheus_listen, sizeof c->cfg.api_prometheus_listen, old->api_prometheus_listen);
    if (start_api(c, err, sizeof err))
        log_err("daemon: API is down: %s", err);
}

static void record_event(cell *c, const char *type, const char *sev, json_t *payload)
{
    char *text = json_dumps(payload, JSON_COMPACT);
    json_decref(payload);
    int64_t id = mem_event_add(c->mem, 0, type, sev, "daemon", text ? text : "{}");
    if (id < 0)
        log_warn("daemon: cannot record event %s: %s", type, strerror((int)-id));
    free(text);
}

static void reload(cell *c)
{
    core_config next;
    char err[1024];
    log_info("daemon: SIGHUP: reloading configuration");
    if (daemon_load_config(c->opts, &next, err, sizeof err)) {
        core_config_free(&next);
        log_err("daemon: configuration rejected, keeping the running one: %s", err);
        record_event(c, "config.rejected", "error", json_pack("{s:s}", "reason", err));
        return;
    }
    if (strcmp(next.state_dir, c->cfg.state_dir)) {
        log_warn("daemon: state_dir changed to %s: takes effect only after a restart", next.state_dir);
        core_sncpy(next.state_dir, sizeof next.state_dir, c->cfg.state_dir);
    }
    if (sense_reconfigure(c->sense, &next, err, sizeof err)) {
        core_config_free(&next);
        log_err("daemon: configuration rejected by the sensors, keeping the running one: %s", err);
        record_event(c, "config.rejected", "error", json_pack("{s:s}", "reason", err));
        return;
    }
    sense_nx_reconfigure(c->nx, &next);
    /* checked above: out of memory only */
    if (c->an && detect_registry_reconfigure(c->an, &next, err, sizeof err)) {
        log_err("daemon: anomaly detection keeps its settings: %s", err);
        record_event(c, "config.rejected", "error", json_pack("{s:s}", "reason", err));
    }
    if (c->heal && heal_engine_reconfigure(c->heal, &next, err, sizeof err)) {
        log_err("daemon: services: %s", err); /* the rest of the new configuration still applies */
        record_event(c, "config.rejected", "error", json_pack("{s:s}", "reason", err));
    }
    if (c->logs && logs_watch_reconfigure(c->logs, &next, err, sizeof err)) { /* checked: out of memory only */
        log_err("daemon: logs: %s", err);
        record_event(c, "config.rejected", "error", json_pack("{s:s}", "reason", err));
    }
    if (c->llm && llm_reconfigure(c->llm, &next, err, sizeof err)) {
        log_err("daemon: the language model keeps its settings: %s", err);
        record_event(c, "config.rejected", "error", json_pack("{s:s}", "reason", err));
    }
    if (c->learn && brain_learn_reconfigure(c->learn, &next, err, sizeof err)) /* checked: out of memory only */
        log_err("daemon: knowledge: %s", err);
    if (c->mesh && mesh_cell_configure(c->mesh, &next, err, sizeof err)) { /* a join takes effect here */
        log_err("daemon: %s", err);
        record_event(c, "config.rejected", "error", json_pack("{s:s}", "reason", err));
    }
    if (c->brain && brain_reconfigure(c->brain, &next, err, sizeof err)) {
        log_err("daemon: the brain keeps its settings: %s", err);
        record_event(c, "config.rejected", "error", json_pack("{s:s}", "reason", err));
    }
    mem_reconfigure(c->mem, &next);
    bool api_changed = api_settings_changed(&c->cfg, &next);
    core_config old = c->cfg;
    c->cfg = next;
    core_log_setup(c->cfg.log_level, c->cfg.log_syslog);
    set_host(c);
    if (api_changed)
        restart_api(c, &old);
    else /* new sense intervals: how stale a series may be on /metrics */
        api_reconfigure(c->api, &c->cfg);
    core_config_free(&old);
    log_info("daemon: configuration reloaded");
    record_event(c, "config.reload", "info", json_pack("{s:s, s:b}", "config", c->config_desc, "api_restarted", api_changed));
    if (c->evolve) { /* a changed file is an "import" commit in the genome */
        char *text = config_text(c);
        evolve_cell_config_loaded(c->evolve, text);
        free(text);
    }
}

/* Closes the daemon's own handles; the loop ends once the heal engine's
 * are closed too. */
static void close_own_handles(cell *c)
{
    loopcall_close(&c->lc); /* idempotent; waiting approvals get -ECANCELED */
    uv_handle_t *own[] = {(uv_handle_t *)&c->tick, (uv_handle_t *)&c->sig_hup, (uv_handle_t *)&c->sig_term,
                          (uv_handle_t *)&c->sig_int};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (!uv_is_closing(own[i]))
            uv_close(own[i], NULL);
}

/* Starts the log watch on the loop; without it the cell runs on. */
static void start_logs(cell *c)
{
    char err[1024];
    logs_watch *w = NULL;
    if (logs_watch_new(&c->loop, &c->cfg, c->mem, &w, err, sizeof err)) {
        log_err("daemon: logs: %s: running without the log watch", err);
        return;
    }
    pthread_mutex_lock(&c->snap_lock);
    c->logs = w;
    pthread_mutex_unlock(&c->snap_lock);
}

/* Before the loop ends: the watch's handles close with the others. */
static void stop_logs(cell *c)
{
    pthread_mutex_lock(&c->snap_lock);
    logs_watch *w = c->logs;
    c->logs = NULL;
    pthread_mutex_unlock(&c->snap_lock);
    logs_watch_free(w);
}

static void on_heal_stopped(void *ud)
{
    cell *c = ud;
    pthread_mutex_lock(&c->snap_lock);
    heal_engine *h = c->heal;
    c->heal = NULL;
    pthread_mutex_unlock(&c->snap_lock);
    heal_engine_free(h);
    close_own_handles(c);
}

static void on_signal(uv_signal_t *s, int signum)
{
    cell *c = s->data;
    if (signum == SIGHUP) {
        if (!c->stopping)
            reload(c);
        return;
    }
    if (c->stopping)
        return;
    c->stopping = true;
    loopcall_close(&c->lc);
    log_info("daemon: %s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    uv_timer_stop(&c->tick);
    pthread_mutex_lock(&c->snap_lock);
    brain *b = c->brain; /* before heal: it waits for its deliberations, which read heal */
    c->brain = NULL;
    pthread_mutex_unlock(&c->snap_lock);
    wait_asks(c);
    brain_free(b);
    stop_logs(c);
    if (c->heal)
        heal_engine_stop(c->heal, on_heal_stopped, c);
    else
        close_own_handles(c);
}

/* ---- fleet wisdom for the brain (issue 15, part fixpass) ------------------------ */

/* brain_wisdom_fn on the mesh cell (a worker thread; the cell locks its store). */
static int fleet_wisdom(void *ud, const json_t *features, const char *service_kind, brain_wisdom_cand *out, int max)
{
    mesh_cell_wisdom_cand c[16];
    char err[512];
    int n = mesh_cell_wisdom_candidates(ud, features, service_kind, c, max < 16 ? max : 16, err, sizeof err);
    if (n < 0)
        log_warn("ippocd: fleet wisdom: %s", err);
    for (int i = 0; i < n; i++) {
        snprintf(out[i].action, sizeof out[i].action, "%s", c[i].action);
        out[i].weight = c[i].weight;
        out[i].k = c[i].k;
        out[i].n = c[i].n;
        out[i].origins = c[i].origins;
    }
    return n;
}

/* brain_wisdom_outcome_fn: the origins' trust moves (the loop thread). */
static void fleet_wisdom_outcome(void *ud, const char *action, const json_t *features, bool worked)
{
    mesh_cell_wisdom_outcome(ud, action, features, worked);
}

/* ---- run --------------------------------------------------------------------- */

static void describe_config(cell *c)
{
    const char *path = c->opts->config_path ? c->opts->config_path : DEFAULT_CONFIG;
    if (access(path, R_OK) == 0)
        snprintf(c->config_desc, sizeof c->config_desc, "%s", path);
    else
        snprintf(c->config_desc, sizeof c->config_desc, "embedded defaults");
}

static int open_cell(cell *c, char *err, size_t errlen)
{
    int rc = mem_open(&c->mem, &c->cfg, err, errlen);
    if (rc)
        return rc;
    rc = sense_open(&c->sense, &c->cfg, c->mem, err, errlen);
    if (!rc)
        rc = sense_nx_open(&c->nx, &c->cfg, err, errlen);
    if (!rc)
        rc = detect_registry_new(&c->an, c->mem, &c->cfg, err, errlen);
    if (rc)
        return rc;
    start_mesh(c);
    return start_api(c, err, errlen);
}

static void close_cell(cell *c)
{
    brain_learn_stop(c->learn); /* a document being fetched does not hold the API's threads */
    if (c->api)
        api_stop(c->api);
    llm_set_remote(c->llm, NULL, NULL, NULL); /* waits for asks in flight through the mesh */
    mesh_cell_free(c->mesh); /* leaves the mesh; before memory, which it records into */
    c->mesh = NULL;
    brain_learn_free(c->learn); /* its feed thread stops before the store closes */
    c->learn = NULL;
    pthread_mutex_lock(&c->snap_lock);
    evolve_cell *ev = c->evolve;
    c->evolve = NULL;
    pthread_mutex_unlock(&c->snap_lock);
    evolve_cell_free(ev); /* the API is gone; before the llm, knowledge and memory it uses */
    mem_know_close(c->know); /* the brain that read them is gone, and so is the API */
    c->know = NULL;
    llm_free(c->llm);
    c->llm = NULL;
    if (c->sense)
        sense_close(c->sense);
    sense_nx_close(c->nx); /* the API that called it has stopped */
    c->nx = NULL;
    if (c->an) { /* what the detectors learned goes to the store with the rest */
        detect_registry_save(c->an, core_now_ms());
        detect_registry_free(c->an);
        c->an = NULL;
    }
    if (c->mem) {
        record_event(c, "daemon.stop", "info", json_pack("{s:i}", "pid", (int)getpid()));
        mem_close(c->mem);
    }
    char path[CORE_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/ippocd.url", c->cfg.state_dir);
    if (c->url[0])
        unlink(path);
    if (c->lock_fd >= 0)
        close(c->lock_fd);
}

int daemon_run(const daemon_opts *o, core_config *cfg)
{
    static cell c; /* large; one per process */
    memset(&c, 0, sizeof c);
    c.opts = o;
    c.cfg = *cfg;
    memset(cfg, 0, sizeof *cfg); /* ownership of the watch lists moves */
    c.lock_fd = -1;
    c.started_ms = core_now_ms();
    pthread_mutex_init(&c.snap_lock, NULL);
    core_log_setup(c.cfg.log_level, c.cfg.log_syslog);
    core_sncpy(c.state_dir, sizeof c.state_dir, c.cfg.state_dir);
    snprintf(c.audit_path, sizeof c.audit_path, "%s/audit.log", c.state_dir);
    snprintf(c.socket_path, sizeof c.socket_path, "%s/ippocd.sock", c.state_dir);
    signal(SIGPIPE, SIG_IGN);
    set_host(&c);
    describe_config(&c);

    char err[1024];
    int rc = lock_state_dir(&c, err, sizeof err);
    if (rc) {
        log_err("ippocd: %s", err);
        core_config_free(&c.cfg);
        return rc;
    }
    if (open_cell(&c, err, sizeof err)) {
        log_err("ippocd: %s", err);
        close_cell(&c);
        core_config_free(&c.cfg);
        return 1;
    }
    log_info("ippocd %s started: pid %d, state dir %s, config %s, %d series remembered",
             IPPOC_VERSION, (int)getpid(), c.cfg.state_dir, c.config_desc, mem_series_count(c.mem));
    record_event(&c, "daemon.start", "info", json_pack("{s:s, s:i, s:s, s:s}", "version", IPPOC_VERSION,
                 "pid", (int)getpid(), "config", c.config_desc, "api", c.url));

    uv_loop_init(&c.loop);
    loopcall_init(&c.lc, &c.loop);
    uv_timer_init(&c.loop, &c.tick);
    c.tick.data = &c;
    uv_signal_t *sigs[] = {&c.sig_hup, &c.sig_term, &c.sig_int};
    int signums[] = {SIGHUP, SIGTERM, SIGINT};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(&c.loop, sigs[i]);
        sigs[i]->data = &c;
        uv_signal_start(sigs[i], on_signal, signums[i]);
    }
    heal_engine *h = NULL;
    int hrc = heal_engine_new(&c.loop, &c.cfg, c.mem, &h, err, sizeof err);
    if (h)
        heal_engine_set_anomaly(h, detect_registry_rule_check, c.an);
    pthread_mutex_lock(&c.snap_lock);
    c.heal = h;
    pthread_mutex_unlock(&c.snap_lock);
    if (hrc) {
        log_err("ippocd: heal: %s", err);
        c.exit_code = 1;
        close_own_handles(&c);
    } else {
        start_logs(&c); /* after memory and heal (the services' logs) */
        brain *b = NULL;
        if (brain_new(&c.loop, &c.cfg, c.mem, h, c.logs, &b, err, sizeof err))
            log_err("ippocd: brain: %s (running without it)", err);
        start_thinking(&c);
        start_learning(&c);
        brain_set_thinking(b, c.llm, c.know);
        brain_set_dream_hook(b, dream_baselines, &c);
        if (c.mesh) /* part fixpass: what the fleet learned, one more source of evidence */
            brain_set_wisdom(b, fleet_wisdom, fleet_wisdom_outcome, c.mesh);
        pthread_mutex_lock(&c.snap_lock);
        c.brain = b;
        pthread_mutex_unlock(&c.snap_lock);
        start_evolving(&c);
        schedule_tick(&c);
    }
    uv_run(&c.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&c.loop))
        log_warn("daemon: handles still open at exit");

    close_cell(&c);
    log_info("ippocd: stopped");
    core_config_free(&c.cfg);
    pthread_mutex_destroy(&c.snap_lock);
    return c.exit_code;
}
