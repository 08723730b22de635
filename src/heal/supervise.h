/* supervise.h: services and their supervision (internal header of src/heal).
 *
 * A service is one of:
 *  - SUPERVISED: ippocd starts the command itself (uv_spawn, no shell, in its
 *    own session and process group), captures stdout/stderr into a rotating,
 *    timestamped log <state_dir>/services/<name>.log (.1 ... .N), and learns
 *    of its exit at once through libuv's child callback. A crash is healed in
 *    that same callback: the first restart has no delay, repeated quick
 *    failures back off exponentially (initial, 2x, 4x ... capped at max), and
 *    the backoff resets once the service has stayed up `healthy_after`.
 *    When the main process exits, whatever is left of its process group is
 *    killed (like systemd's KillMode=control-group, by process group).
 *    Its pid and start time are recorded in <state_dir>/services/<name>.pid
 *    while it runs, and its stdout/stderr go through FIFOs there
 *    (<name>.out, <name>.err, opened read-write by the child too), so that
 *    it survives ippocd's sudden death (kill -9: no SIGPIPE; up to 1 MiB of
 *    output waits per stream, then its writes block until ippocd is back).
 *    On start a recorded pid whose /proc start time still matches is
 *    ADOPTED instead of started again: watched by pidfd (else polled every
 *    `interval`), its FIFOs reattached; its exit status is unknown.
 *  - EXTERNAL: started by someone else or by configured start/stop/restart
 *    commands (argv, no shell, run with uv_spawn and a timeout, output into
 *    the service log). Its pid comes from a pidfile (checked to exist and,
 *    with `match`, to have that comm) or from a /proc scan for comm ==
 *    match (the oldest such process). Death is learnt through pidfd_open +
 *    uv_poll (Linux >= 5.3), falling back to polling every `interval`.
 *    A start command that daemonizes should detach its stdout/stderr (most
 *    do); if it does not, its output keeps going to the service log.
 *  - SYSTEMD: a unit, only when systemd is PID 1: `systemctl start|stop|
 *    restart|kill -s SIG UNIT`, state from `systemctl show -p
 *    ActiveState,MainPID UNIT` polled every `interval`.
 *
 * Dependencies (`depends`): a service starts only once all of its
 * dependencies are RUNNING and ready (see the ready hook; starting one
 * starts its dependencies first);
 * heal_supervisor_stop_all stops dependents before their dependencies; an
 * explicit heal_service_restart restarts the running dependents after the
 * service is RUNNING again (or hands them to the dependent hook) (an automatic crash restart does not, so a crash
 * loop cannot cascade). Unknown dependencies and cycles are errors naming the
 * services.
 *
 * Threads: everything here runs on the thread of the uv_loop_t the caller
 * owns and passes to heal_supervisor_new; no function may be called from any
 * other thread. The state callback runs on that thread too; it may call
 * heal_service_start/stop/restart/signal, but not heal_supervisor_free. */
#ifndef IPPOC_HEAL_SUPERVISE_H
#define IPPOC_HEAL_SUPERVISE_H

#include "core/core.h"
#include "heal/action.h"

#include <uv.h>

typedef enum heal_service_type {
    HEAL_SVC_SUPERVISED = 0,
    HEAL_SVC_EXTERNAL,
    HEAL_SVC_SYSTEMD,
} heal_service_type;

typedef enum heal_service_state {
    HEAL_SVC_STOPPED = 0,
    HEAL_SVC_STARTING, /* waiting for dependencies, or a start command / systemctl runs */
    HEAL_SVC_RUNNING,
    HEAL_SVC_BACKOFF,  /* exited; a restart is scheduled after `delay_ms` */
    HEAL_SVC_STOPPING, /* stop signal sent (or stop command running); KILL after the timeout */
    HEAL_SVC_FAILED,   /* could not start (spawn error, start command failed) and no retry */
} heal_service_state;

#define HEAL_SVC_MAX_ENV 32
#define HEAL_SVC_MAX_DEPS 16

typedef struct heal_service_config {
    char name[HEAL_NAME_MAX]; /* [A-Za-z0-9_.@-]+ */
    heal_service_type type;
    /* supervised */
    char command[HEAL_ARG_MAX]; /* argv text: split on blanks, "double quotes" group, \" and \\ inside quotes; no shell */
    char cwd[HEAL_ARG_MAX];     /* "" = ippocd's */
    char env[HEAL_SVC_MAX_ENV][HEAL_ARG_MAX]; /* KEY=VAL, added to (or replacing in) ippocd's environment */
    int nenv;
    char user[64];  /* setuid (needs root); "" = ippocd's user */
    char group[64]; /* setgid (needs root); "" = the user's primary group */
    /* external */
    char pidfile[HEAL_ARG_MAX];
    char match[64];                  /* comm name (/proc/PID/comm, 15 chars max) */
    char start_cmd[HEAL_ARG_MAX];    /* argv text, no shell */
    char stop_cmd[HEAL_ARG_MAX];     /* "" = send stop_signal to the pid */
    char restart_cmd[HEAL_ARG_MAX];  /* "" = stop then start */
    int64_t command_timeout_ms;      /* external commands and systemctl; default 30 s */
    int64_t interval_ms;             /* external (no pidfd) and systemd polling; default 1 s */
    /* systemd */
    char unit[128];
    /* all */
    char depends[HEAL_SVC_MAX_DEPS][HEAL_NAME_MAX];
    int ndepends;
    bool autorestart;           /* default yes for supervised and external, no for systemd (it has Restart=) */
    int64_t backoff_initial_ms; /* default 100 ms: the delay of the 2nd quick restart in a row (the 1st has none) */
    int64_t backoff_max_ms;     /* default 30 s */
    int64_t healthy_after_ms;   /* default 10 s: up this long resets the backoff */
    int stop_signal;            /* default SIGTERM */
    int64_t stop_timeout_ms;    /* default 10 s, then SIGKILL to the process group */
    uint64_t log_max_bytes;     /* default 1 MiB per file */
    int log_keep;               /* default 3 rotated files (name.log.1 ... .3) */
} heal_service_config;

/* Defaults for a service of this type (name may be NULL). */
void heal_service_config_init(heal_service_config *c, const char *name, heal_service_type type);
/* Sets one INI key of a service section: type, command, cwd, env (appends;
 * several KEY=VAL separated by blanks), user, group, pidfile, match, start,
 * stop, restart, timeout, interval, unit, depends (names separated by blanks
 * or commas; appends), autorestart, backoff, backoff_max, healthy_after,
 * stop_signal (TERM, SIGTERM or a number), stop_timeout, log_max, log_keep.
 * Returns 0, -ENOENT for a key that is not one of these (so a caller can try
 * probe/rule keys), or -EINVAL with the reason in err. */
int heal_service_config_set(heal_service_config *c, const char *key, const char *value, char *err, size_t errlen);

/* What changed; the pointers are valid only during the callback. */
typedef struct heal_service_event {
    const char *name;
    heal_service_type type;
    heal_service_state old_state, new_state;
    pid_t pid;          /* the new pid on RUNNING; the exited pid on an exit */
    int exit_status;    /* on an exit: status, or -1 if killed by a signal / unknown */
    int term_signal;    /* on an exit: the signal that killed it, or 0 */
    int64_t delay_ms;   /* BACKOFF: the delay before the next start */
    unsigned restarts;  /* restarts so far (automatic and explicit) */
    const char *reason; /* short human text: "exited with status 1", "killed by SIGKILL", "started", ... */
} heal_service_event;

typedef void (*heal_service_cb)(const heal_service_event *ev, void *ud);

typedef struct heal_service_info {
    char name[HEAL_NAME_MAX];
    heal_service_type type;
    heal_service_state state;
    pid_t pid;                /* 0 when not running */
    int64_t since_ms;         /* wall clock of the last state change */
    int64_t uptime_ms;        /* since the current process started; 0 unless RUNNING */
    unsigned restarts;
    int quick_failures;       /* consecutive exits before healthy_after (drives the backoff) */
    int64_t next_delay_ms;    /* delay the next automatic restart would have */
    bool has_exited;          /* last_* below are meaningful */
    int last_exit_status;     /* -1 if killed by a signal */
    int last_signal;
    int64_t last_exit_ms;     /* wall clock */
    char error[256];          /* the last error (spawn, command, systemctl), "" if none */
    char log_path[CORE_PATH_MAX];
} heal_service_info;

typedef struct heal_supervisor heal_supervisor;

/* Creates a supervisor on `loop` (owned by the caller). Service logs go to
 * <state_dir>/services/. Returns 0 or -errno with err set. */
int heal_supervisor_new(uv_loop_t *loop, const char *state_dir, heal_supervisor **out, char *err, size_t errlen);
void heal_supervisor_set_callback(heal_supervisor *sup, heal_service_cb cb, void *ud);
/* After an explicit restart of `dep`, each running service that depends on
 * it is restarted too. With a hook set, the supervisor does not restart
 * them itself: it calls hook(dep, dependent, ud) once per dependent when
 * `dep` is RUNNING again, and the caller decides (the engine waits for
 * dep's probes and restarts through the policy and the audit log). */
typedef void (*heal_dependent_cb)(const char *dep, const char *dependent, void *ud);
void heal_supervisor_set_dependent_hook(heal_supervisor *sup, heal_dependent_cb cb, void *ud);
/* With a ready hook, a dependency must be RUNNING and ready(name) true
 * before its dependents are started (the engine: its probes passed since it
 * started, or a deadline went by). The hook's answer may change at any
 * time: call heal_supervisor_recheck then, to start what waited for it. */
typedef bool (*heal_ready_cb)(const char *name, void *ud);
void heal_supervisor_set_ready_hook(heal_supervisor *sup, heal_ready_cb cb, void *ud);
void heal_supervisor_recheck(heal_supervisor *sup);
/* Validates and copies the config (bad command text, unknown user or group,
 * user without root, external without pidfile/match, systemd not PID 1, a
 * duplicate name). Dependencies are checked by heal_supervisor_check /
 * start_all, so services may be added in any order. */
int heal_supervisor_add(heal_supervisor *sup, const heal_service_config *cfg, char *err, size_t errlen);
/* Unknown dependencies and dependency cycles: -EINVAL with the names, e.g.
 * "service 'a': dependency cycle a -> b -> a". */
int heal_supervisor_check(heal_supervisor *sup, char *err, size_t errlen);
/* Checks, then starts every service in dependency order (a service is
 * spawned once its dependencies are RUNNING). External services found
 * running are adopted, not started again. */
int heal_supervisor_start_all(heal_supervisor *sup, char *err, size_t errlen);
/* Stops services in reverse dependency order (dependents first); `all`
 * false stops only SUPERVISED ones (external services and units outlive
 * ippocd). done(ud) runs once everything asked is STOPPED/FAILED (possibly
 * before this returns); it may call heal_supervisor_free (the daemon's
 * shutdown: stop_all, then free in done, then let the loop drain). */
void heal_supervisor_stop_all(heal_supervisor *sup, bool all, void (*done)(void *ud), void *ud);
/* Kills what is still running of SUPERVISED children: stop signal to the
 * group, waits up to its stop timeout (blocking the loop thread), then
 * SIGKILL; leaves no process behind. Closes every handle; memory is released
 * by the close callbacks, so the caller must run the loop again (e.g. until
 * uv_run returns) before uv_loop_close. NULL is fine. */
void heal_supervisor_free(heal_supervisor *sup);

/* Actions. Each returns 0 (done, or under way: watch the callback) or
 * -errno with err: -ENOENT unknown service, -EALREADY (start of a running
 * service, stop of a stopped one), -ESRCH (signal of a service with no
 * process), -EBUSY (a command for it is still running), ... */
int heal_service_start(heal_supervisor *sup, const char *name, char *err, size_t errlen);
int heal_service_stop(heal_supervisor *sup, const char *name, char *err, size_t errlen);
int heal_service_restart(heal_supervisor *sup, const char *name, char *err, size_t errlen);
/* Sends signum to the service's process group (supervised), its pid
 * (external) or its unit (systemctl kill). */
int heal_service_signal(heal_supervisor *sup, const char *name, int signum, char *err, size_t errlen);
/* Runs a typed action whose kind is START, STOP, RESTART or SIGNAL on
 * a->service; -EOPNOTSUPP for other kinds. */
int heal_service_act(heal_supervisor *sup, const heal_action *a, char *err, size_t errlen);

int heal_service_info_get(heal_supervisor *sup, const char *name, heal_service_info *out);
int heal_supervisor_count(const heal_supervisor *sup);
/* Info of the i-th service (add order), 0 <= i < count; -ENOENT past the end. */
int heal_supervisor_info_at(heal_supervisor *sup, int i, heal_service_info *out);
/* The last nlines lines of the service's log (across rotated files), NUL
 * terminated; returns the bytes written (>= 0) or -errno. */
ssize_t heal_service_log_tail(heal_supervisor *sup, const char *name, int nlines, char *buf, size_t n);

const char *heal_service_state_name(heal_service_state s); /* "stopped", "running", ... */
const char *heal_service_type_name(heal_service_type t);   /* "supervised", "external", "systemd" */

/* ---- helpers, exposed for tests ------------------------------------------ */
/* Splits argv text (see `command`); *argv is one allocation (free(*argv)),
 * NULL-terminated. Returns argc (> 0) or -EINVAL (empty, unterminated quote). */
int heal_svc_split_argv(const char *text, char ***argv, char *err, size_t errlen);
/* Parses `systemctl show -p ActiveState,MainPID` output into a state and pid. */
int heal_svc_parse_systemctl_show(const char *text, heal_service_state *state, pid_t *pid);
/* Signal by name ("TERM", "SIGKILL", "9"); -1 if unknown. */
int heal_svc_signal_parse(const char *s);
/* Test hooks: use `systemctl` at this path and pretend systemd is PID 1. */
void heal_supervisor_set_systemctl(heal_supervisor *sup, const char *path, bool force_pid1);

/* ---- internal to supervise*.c ------------------------------------------ */
/* A rotating, timestamped log file (supervise_log.c). */
typedef struct heal_svc_log {
    char path[CORE_PATH_MAX];
    int fd;
    uint64_t size, max;
    int keep;
} heal_svc_log;

int heal_svc_log_open(heal_svc_log *l, const char *path, uint64_t max, int keep);
/* Writes one line (no newline in it; cut at 4 KiB), prefixed by an RFC 3339
 * UTC timestamp with ms and, if tag is not NULL, "tag: ". Rotates first if
 * the line would pass max. */
void heal_svc_log_line(heal_svc_log *l, const char *tag, const char *line, size_t len);
void heal_svc_log_printf(heal_svc_log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void heal_svc_log_close(heal_svc_log *l);
ssize_t heal_svc_log_tail(const char *path, int keep, int nlines, char *buf, size_t n);

bool heal_svc_valid_name(const char *s); /* [A-Za-z0-9_.@-]+ (supervise_conf.c) */

/* Process lookup (supervise_proc.c). */
bool heal_svc_pid_alive(pid_t pid);                   /* exists and is not a zombie */
int heal_svc_pid_comm(pid_t pid, char *buf, size_t n); /* /proc/PID/comm */
pid_t heal_svc_find_pid(const char *pidfile, const char *match); /* 0 if none */
/* Field 22 of /proc/PID/stat (clock ticks after boot); -ESRCH if gone or a zombie. */
int heal_svc_pid_starttime(pid_t pid, uint64_t *start);

#endif
