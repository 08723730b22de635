/* engine_int.h: internal structures of the heal engine (engine*.c only):
 * the parsed configuration, services with their rules and probes, the
 * supervisor groups, incidents and the action pipeline. */
#ifndef IPPOC_HEAL_ENGINE_INT_H
#define IPPOC_HEAL_ENGINE_INT_H

#include "heal/heal.h"
#include "heal/audit.h"
#include "heal/probe.h"
#include "heal/rules.h"
#include "heal/supervise.h"
#include "heal/policy.h"

#include <jansson.h>
#include <pthread.h>

#define ENG_VERIFY_MS 30000    /* default deadline of the verify step */
#define ENG_INCIDENTS_KEEP 100 /* closed incidents kept in the engine */
#define ENG_RESTARTS_KEEP 1000 /* restart times per service (the rule maximum) */
#define ENG_LOG_LINES 20
#define ENG_CONFIG_PATHS_MAX 32 /* config_path entries per service */

/* ---- configuration (engine_config.c) ---- */
typedef struct eng_alert_cfg {
    char name[HEAL_NAME_MAX];
    char url[HEAL_ARG_MAX];
    int64_t timeout_ms;
} eng_alert_cfg;

typedef struct eng_svc_cfg {
    heal_service_config sc; /* as written; the supervisor gets autorestart = no */
    heal_policy_service ps;
    int64_t probe_interval_ms;
    heal_rule *rules;
    int nrules;
    char (*config_paths)[HEAL_ARG_MAX]; /* config_path: absolute, normalised */
    int nconfig_paths;
    char file[256];
    int line;
} eng_svc_cfg;

typedef struct eng_cfg {
    heal_policy_config pol;
    heal_policy_service machine; /* service "": the machine-wide rules */
    heal_policy_service cell;    /* service "cell": genome changes ([evolve] changes) */
    heal_rule *rules;            /* machine-wide */
    int nrules;
    eng_svc_cfg *svcs;
    int nsvcs;
    eng_alert_cfg *alerts;
    int nalerts;
    int64_t verify_ms;
} eng_cfg;

int eng_cfg_build(const core_config *cfg, eng_cfg *out, char *err, size_t errlen);
void eng_cfg_free(eng_cfg *c);
/* Two services' supervisor settings are the same (a reload keeps it running). */
bool eng_svc_cfg_same(const heal_service_config *a, const heal_service_config *b);

/* ---- runtime ---- */
typedef struct heal_engine heal_engine;
typedef struct eng_svc eng_svc;
typedef struct incident incident;

/* A group of services tied by dependencies shares one supervisor. */
typedef enum { G_WAITING = 0, G_ACTIVE, G_RETIRING } eng_group_phase;
typedef struct eng_group {
    heal_supervisor *sup;
    char (*names)[HEAL_NAME_MAX];
    int n;
    heal_engine *e;
    eng_group_phase phase; /* WAITING: new, starts once the retiring ones are down */
    struct eng_group *next;
} eng_group;

/* A METRIC condition's series (engine_metric.c): those of the rule's family
 * whose labels include the rule's; when the store's series count changes,
 * the series added since (ids from next_id on) are looked at and the
 * matching ones added (series are never removed while the store is open). */
typedef struct eng_metric_set {
    int *ids;            /* matching series, sorted by labels */
    const char **labels; /* their canonical labels (the store's strings) */
    int n, cap;
    int nseries;         /* mem_series_count when last looked; -1: not yet */
    int next_id;         /* series ids below it have been looked at */
} eng_metric_set;

/* The series that decides a METRIC condition: the largest value for > and
 * >=, the smallest for < and <=, the first (by labels) equal to the
 * threshold for ==, the first different from it for !=; when none holds,
 * the first with a value. So the condition holds when any series holds. */
typedef struct eng_metric_hit {
    int id;              /* -1: no matching series has a value */
    const char *labels;
    double value;        /* NaN when id < 0 */
    int matched;         /* series in the set */
} eng_metric_hit;

/* One rule bound to its service (NULL svc: machine-wide). */
typedef struct eng_rule {
    heal_rule r;
    heal_engine *e;
    eng_svc *svc;
    heal_probe *probe;
    char *argv_buf;        /* exec probe argv (one allocation) */
    int hits;              /* consecutive true evaluations */
    int64_t since_ms;      /* wall clock the condition first held; 0 = not holding */
    uint64_t incident_id;  /* open incident of this rule, 0 if none */
    bool probe_ok;         /* last probe check passed */
    uint64_t probe_seq;    /* last probe result seq */
    uint64_t verify_seq;   /* probe_seq when the verify step began */
    uint64_t start_seq;    /* probe_seq when the service last started (readiness) */
    eng_metric_set metric; /* METRIC: the series it watches */
    eng_metric_hit hit;    /* METRIC: the series that decided the last evaluation */
    char last_msg[HEAL_PROBE_MSG_MAX];
    double last_value;     /* resource: last measured value */
    bool latched;          /* resource: fired; fires again only once the condition was false */
} eng_rule;

/* engine_files.c: one config_path of a service */
typedef struct eng_fmeta {
    bool exists, dir;
    uint32_t mode, uid, gid; /* mode: permission bits (07777) */
    uint64_t size;
    char sha256[65];         /* "" for a directory or a file over 1 MiB */
} eng_fmeta;

typedef struct eng_fsig { /* the cheap stat compared each tick */
    bool exists, dir;
    uint64_t ino, dev;
    uint32_t mode, uid, gid;
    int64_t size, mtime_ns;
} eng_fsig;

typedef struct eng_file {
    char path[HEAL_ARG_MAX];
    bool ready;              /* baseline taken (first tick) */
    eng_fsig sig;            /* last stat */
    eng_fmeta seen;          /* last looked at */
    char *text;              /* its content when a small text file (for diffs) */
    size_t textlen;
    int64_t changed_mono;    /* last change seen; 0: none since ippocd started */
    bool has_good, snapping;
    bool restoring;          /* our restore is being written (pool): no file.changed for it */
    eng_fmeta good;          /* the known-good copy's */
    int64_t good_ms;         /* when it was taken (wall) */
    int64_t snap_failed_mono;
} eng_file;

struct eng_svc {
    eng_svc_cfg cfg;
    heal_engine *e;
    eng_group *g;
    eng_rule *rules;
    int nrules;
    /* crash restarts, driven by the engine (backoff as the supervisor's) */
    int fails;
    int64_t started_mono;
    uv_timer_t restart_timer;
    bool timer_open;
    uint64_t crash_incident;
    unsigned restarts;
    int64_t restart_ts[ENG_RESTARTS_KEEP]; /* ring of restart times (wall ms) */
    int nrestart_ts, restart_head;
    /* resources */
    pid_t cpu_pid;
    uint64_t cpu_ticks;
    int64_t cpu_at_ms;
    double cpu_percent, rss_bytes, threads, fds; /* the whole process tree */
    int nprocs;
    bool stopping; /* a reload or shutdown is stopping it */
    bool restarting; /* the engine restarted it: say so when RUNNING */
    /* a dependency was restarted: this one is restarted (through the
     * policy) once that dependency's probes pass, or at the deadline */
    bool frozen;       /* a freeze action froze its cgroup: thawed before a stop/restart/signal */
    bool flap_stopped; /* a start/restart was refused for flapping: retried after the cool-down */
    int64_t ready_deadline_mono; /* its dependents start once its probes pass, or at this */
    bool dep_wait;
    char dep_on[HEAL_NAME_MAX];
    int64_t dep_deadline_mono;
    /* config_path (engine_files.c) */
    eng_file *files;
    int nfiles;
    int64_t healthy_since_mono; /* running with every probe passing since; 0: not healthy */
};

typedef enum { INC_ACTING = 0, INC_VERIFYING, INC_RESOLVED, INC_FAILED, INC_DIAGNOSING } inc_state;

struct incident {
    uint64_t id;
    heal_engine *e;
    char service[HEAL_NAME_MAX];
    char what[HEAL_RULE_LINE_MAX + 64]; /* rule text or "crash" */
    char where[300];                    /* file:line */
    heal_action actions[HEAL_RULE_ACTIONS_MAX];
    int nactions, next;
    int executed, failed, skipped;
    bool wants_running;                 /* verify: the service must be RUNNING */
    bool flap_refused;                  /* its start/restart was refused for flapping: no verify */
    bool ask;                           /* heal_engine_propose_ask: queue what would run */
    json_t *evidence;                   /* object */
    json_t *results;                    /* array */
    inc_state state;
    int64_t failing_since_ms, detected_ms, closed_ms, verify_deadline_mono;
    char reason[256];
    uv_timer_t *verify_timer;           /* the verify step's (own allocation: freed when closed,
                                           so the incident may go or verify again meanwhile) */
    json_t *extra;                      /* keys attached by heal_engine_incident_attach (object) */
    char by[32];                        /* heal_engine_propose: who proposed the actions ("" = a rule) */
    char why[256];                      /* ... and why */
    json_t *proposed;                   /* ... their text (array), NULL when never proposed */
    incident *next_inc;
};

struct heal_engine {
    uv_loop_t *loop;
    mem_t *mem;
    char state_dir[CORE_PATH_MAX];
    char audit_path[CORE_PATH_MAX + 16];
    char nice_device[CORE_PATH_MAX]; /* "": renice by setpriority() only */
    heal_audit *audit;
    heal_policy *policy;
    eng_cfg cfg;
    eng_svc **svcs;
    int nsvcs;
    eng_rule *mrules; /* machine-wide */
    int nmrules;
    eng_group *groups;
    int pending_group_stops; /* reload: old groups still stopping */
    incident *incidents;     /* newest first */
    int nincidents;
    uint64_t next_incident;
    int jobs;                /* actions in flight (thread pool or children) */
    bool freed;              /* heal_engine_free ran; the last job releases */
    void *playbooks;         /* running playbook jobs (engine_act.c) */
    heal_anomaly_fn anomaly_fn; /* anomalous(METRIC) rules ask it (NULL: never true) */
    heal_genome_fn genome_fn;   /* runs "genome" actions on the pool (NULL: they fail) */
    void *genome_ud;
    void *anomaly_ud;
    bool stopping;
    void (*stop_done)(void *);
    void *stop_ud;
    int stop_waiting;
    /* snapshots for other threads */
    pthread_mutex_t snap_lock;
    char *snap_services, *snap_incidents, *snap_pending;
    bool incidents_dirty; /* the incidents snapshot needs rebuilding */
    int64_t last_tick_ms;
    /* sysctls this engine changed, with the value before its first change:
     * put back when the engine stops (engine_act.c) */
    struct eng_undo {
        char key[128];
        char old[256];
    } *undo;
    int nundo;
};

/* engine_act.c: puts back every sysctl the engine changed (at stop), each
 * through the audit log like any other action. */
void eng_sysctl_revert_all(heal_engine *e);

/* engine.c */
eng_svc *eng_find_svc(heal_engine *e, const char *name);
heal_supervisor *eng_sup_of(heal_engine *e, const char *name);
void eng_event(heal_engine *e, const char *type, const char *sev, const char *source, json_t *payload);
void eng_publish(heal_engine *e);
void eng_job_done(heal_engine *e);
/* Restarts the dependents whose restarted dependency is healthy again (or
 * whose wait ran out): each through an incident, the policy and the audit
 * log. Called on probe results and on the tick. */
void eng_deps_check(heal_engine *e);
/* Services stopped by flap protection whose cool-down is over and whose
 * trouble still holds (a crash with autorestart, or a failing probe of a
 * rule that restarts): restarted again, after the backoff delay. Tick. */
void eng_flap_retry(heal_engine *e);

/* engine_rules.c: probes, resources, firing */
int eng_rules_start(heal_engine *e, eng_svc *s, eng_rule *rules, int n, char *err, size_t errlen);
void eng_rules_stop(eng_rule *rules, int n);
void eng_rules_tick(heal_engine *e, int64_t now_ms);
void eng_svc_sample(eng_svc *s, pid_t pid, int64_t now_ms);
void eng_note_restart(eng_svc *s, int64_t now_ms);
json_t *eng_svc_evidence(heal_engine *e, eng_svc *s);
/* Verify: marks where the probes are, runs them now; ok once every probe
 * of the service passed a check begun after the mark. */
void eng_probes_mark(eng_svc *s);
void eng_probes_run_now(eng_svc *s);
bool eng_probes_ok(eng_svc *s);
bool eng_svc_busy(heal_engine *e, const char *service);

/* engine_metric.c: METRIC conditions over a family of series */
/* Finds (or refreshes) set, then the series that decides res (see
 * eng_metric_hit). 0, or -errno (the store could not be read). */
int eng_metric_eval(mem_t *m, eng_metric_set *set, const heal_resource *res, eng_metric_hit *hit);
void eng_metric_set_free(eng_metric_set *set);
/* Adds "series" (name{labels}), "labels" (object) and "matched" to a
 * condition's detail. */
void eng_metric_detail(json_t *detail, const char *metric, const eng_metric_hit *hit);
/* Appends " [name{labels} = value]" of detail's "series" and "value" to the
 * rule text an incident shows (and the audit log's reason quotes). */
void eng_metric_what(char *text, size_t n, const json_t *detail);

/* engine_incident.c */
incident *eng_incident_open(heal_engine *e, const char *service, const char *what, const char *where,
                            const heal_action *acts, int nacts, int64_t failing_since_ms, json_t *evidence);
/* The same, opened in state (e.g. INC_DIAGNOSING: no actions yet). */
incident *eng_incident_open_as(heal_engine *e, inc_state state, const char *service, const char *what,
                               const char *where, const heal_action *acts, int nacts, int64_t failing_since_ms,
                               json_t *evidence);
incident *eng_incident_find(heal_engine *e, uint64_t id);
void eng_incident_release(incident *inc); /* frees its JSON and itself */
void eng_incident_action_done(incident *inc, const heal_action *a, const char *outcome, const char *msg,
                              bool executed, bool failed);
void eng_incident_close(incident *inc, bool resolved, const char *reason);
void eng_incident_actions_finished(incident *inc);
void eng_incidents_free(heal_engine *e);
json_t *eng_incident_json(const incident *inc);

/* engine_propose.c: checks of an action's target the pure policy cannot
 * make (a pid: protected processes, and filling a->comm / a->pid_start; a
 * restore: one of the service's config_path with a known-good copy). true:
 * refused, d filled (REFUSE, HEAL_REFUSE_TARGET, the reason). */
bool eng_target_refused(heal_engine *e, heal_action *a, heal_decision *d);
/* Right before a pid-targeted action runs: pid is still the process decided
 * on (same start time). 0, or -ESRCH with msg. */
int eng_pid_still(const heal_action *a, char *msg, size_t n);

/* engine_files.c: config_path known-good copies, file.changed, restore */
/* Thread pool: puts a->path back to the known-good copy of a->service
 * (content through a temp file + rename, then mode/uid/gid). 0 or -errno
 * with msg. */
int eng_files_restore(heal_engine *e, const heal_action *a, char *msg, size_t n);
/* Marks a restore of a->path as being written (on: loop thread, before
 * queuing it; off: it could not be queued): the file watch skips the file
 * until eng_files_restored. */
void eng_files_restoring(heal_engine *e, const heal_action *a, bool on);
/* Loop thread, after a restore: the file.restored event, the new state noted. */
void eng_files_restored(heal_engine *e, const heal_action *a, int rc, const char *msg);
/* Whether path is one of service's config_path and has a known-good copy:
 * 0, or -ENOENT / -EPERM with the reason in msg. Loop thread. */
int eng_files_can_restore(heal_engine *e, const char *service, const char *path, char *msg, size_t n);
/* Each tick: health, change checks, known-good copies. */
void eng_files_tick(heal_engine *e, int64_t now_ms);
void eng_files_free(eng_svc *s);
/* [{path, exists, known_good_ms, differs}] for the services JSON. */
json_t *eng_files_json(eng_svc *s);

/* engine_act.c: the action pipeline */
void eng_act_next(incident *inc);
/* Kills running playbooks (engine free): their handles then close. */
void eng_act_shutdown(heal_engine *e);
void eng_audit_decision(heal_engine *e, const heal_action *a, const heal_decision *d, const char *why,
                        heal_audit_kind kind);

/* engine_sys.c: the machine-side actuators (return 0 or -errno with msg) */
/* device (may be NULL): the kernel bridge, tried first (see engine_sys.c). */
int eng_sys_renice(pid_t pid, int nice, const char *device, char *msg, size_t n);
int eng_sys_limit(const char *service, pid_t pid, bool memory, uint64_t bytes, double cpu_percent,
                  char *msg, size_t n);
int eng_sys_sysctl(const char *key, const char *value, char *old, size_t oldn, char *msg, size_t n);
/* Deletes regular files directly in dir (never below, never through a
 * symlink) older than older_ms (0: any) and larger than larger (0: any).
 * Thread-safe. *removed / *bytes count what went. */
int eng_sys_clean(const char *dir, int64_t older_ms, uint64_t larger, int64_t now_ms, int *removed,
                  uint64_t *bytes, char *msg, size_t n);
/* Reads /proc/PID/stat: utime+stime ticks, threads; statm RSS; fd count. */
int eng_sys_proc(pid_t pid, uint64_t *ticks, double *rss, double *threads, double *fds);

/* engine_proc.c */
/* Resources of pid and all its descendants (the service's process tree):
 * ticks, RSS and fds summed; -ESRCH when pid itself is gone. */
int eng_sys_tree(pid_t pid, uint64_t *ticks, double *rss, double *threads, double *fds, int *nprocs);
/* Who holds TCP port `port` (any address, v4 or v6), leaving out process
 * group skip_pgid: 0 with pid and its command line, -ENOENT when the port
 * is free, -ESRCH when bound by no process visible here, -ETIMEDOUT when
 * looking through every process's fds took longer than its budget (50 ms). */
int eng_sys_port_holder(int port, pid_t skip_pgid, pid_t *pid, char *cmd, size_t n);
/* The first port of s's probes that another process holds: its evidence
 * {port, pid, command} and text "port P is held by pid N (CMD)"; NULL if none. */
json_t *eng_port_conflict(eng_svc *s, pid_t exited_pgid, char *text, size_t n);

/* The service's own cgroup v2 (that of pid, when it is neither the root
 * nor one holding ippocd) gets cgroup.freeze = 1 (freeze) or 0 (thaw);
 * dir gets its path. -ENOENT when the service has no cgroup of its own,
 * -ENOTSUP without the cgroup v2 freezer, -EXDEV when its cgroup lies
 * outside ippocd's cgroup namespace (a ".." path); the reason in msg. */
int eng_sys_freeze(pid_t pid, bool freeze, char *dir, size_t dn, char *msg, size_t n);

/* engine_alert.c */
void eng_alert_send(heal_engine *e, const heal_action *a, json_t *body, void (*done)(void *ud, int rc, const char *msg),
                    void *ud);

#endif
