/* supervise.c: the service supervisor (see supervise.h): the state machine
 * of each service, spawning and reaping supervised children, restarts with
 * backoff, dependency order, external services (pidfile / comm match,
 * pidfd death watch, start/stop/restart commands) and systemd units through
 * systemctl.
 *
 * Everything runs on the caller's libuv loop. Handles are counted in
 * sup->nopen; heal_supervisor_free closes them all and the last close
 * callback releases the memory. */
#include "heal/supervise.h"
#include "heal/uvclose.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define LINEBUF 4096
#define DISCOVER_EVERY_MS 20 /* pid discovery after a start command */

typedef struct svc svc;
typedef struct heal_supervisor heal_supervisor;

/* One spawned process (a supervised service's instance or a command) with
 * its two output pipes, logged line by line into the service log. */
typedef struct child {
    uv_process_t proc;
    uv_pipe_t pipe[2]; /* stdout, stderr */
    uv_timer_t timer;  /* commands: timeout */
    heal_supervisor *sup;
    svc *s;
    struct child *prev, *next;
    int open;        /* handles not closed yet */
    bool is_cmd;
    bool no_proc; /* output of an adopted process: pipes only */
    bool fifo;    /* output through the service's FIFOs (closed when its process ends) */
    bool exited, timed_out, done_called, capture;
    int eofs;
    pid_t pid;
    int64_t status;
    int term_signal;
    void (*done)(struct child *c);
    char line[2][LINEBUF];
    size_t linelen[2];
    char cap[4096]; /* capture mode: stdout text */
    size_t caplen;
} child;

typedef enum { T_NONE = 0, T_BACKOFF, T_STOP, T_DISCOVER } timer_kind;

typedef struct pidwatch {
    uv_poll_t h;
    int fd;
    svc *s;
    pid_t pid;
} pidwatch;

struct svc {
    heal_service_config cfg;
    heal_supervisor *sup;
    char **argv;
    char **envp;
    char *envbuf;
    uid_t uid;
    gid_t gid;
    unsigned spawn_flags;
    int deps[HEAL_SVC_MAX_DEPS];
    int ndeps;
    heal_service_state state;
    int64_t since_ms;
    pid_t pid;
    child *run; /* supervised: the current instance */
    child *cmd; /* external/systemd: the action command in flight */
    child *show; /* systemd: the status query in flight */
    int64_t started_mono;
    unsigned restarts;
    int fails;
    bool has_exited;
    int last_status, last_signal;
    int64_t last_exit_ms;
    bool want_up;
    bool waiting_deps;
    bool restart_pending;
    bool restart_dependents;
    bool automatic; /* the start under way is an automatic restart */
    bool visiting;  /* dependency walks */
    int cmd_purpose;
    timer_kind tk;
    int64_t deadline_mono;
    uv_timer_t timer;
    uv_timer_t poll;
    pidwatch *pw;
    bool adopted; /* s->pid was left running by an earlier ippocd: no uv_process_t */
    struct child *adopt_out; /* its output, read again from its FIFOs */
    heal_svc_log log;
    char error[256];
};

struct heal_supervisor {
    uv_loop_t *loop;
    char state_dir[CORE_PATH_MAX];
    char log_dir[CORE_PATH_MAX];
    svc **svcs;
    int n, cap;
    heal_service_cb cb;
    void *ud;
    heal_dependent_cb dep_cb; /* NULL: dependents are restarted here */
    void *dep_ud;
    heal_ready_cb ready_cb;   /* NULL: RUNNING is ready */
    void *ready_ud;
    child *children; /* every live child, for free */
    int nopen;
    bool freeing;
    bool systemd_pid1;
    char systemctl[256];
    /* stop_all */
    bool stopping_all, stop_scope_all;
    void (*stop_done)(void *);
    void *stop_ud;
    bool in_progress, again;
};

enum { CMD_START = 1, CMD_STOP, CMD_RESTART };

static void svc_kick(svc *s);
static void start_now(svc *s);
static void stop_all_progress(heal_supervisor *sup);
static void ext_watch(svc *s);
static void ext_unwatch(svc *s);
static void sd_query(svc *s);
static void on_exit_supervised(svc *s, pid_t pid, int64_t status, int sig);
static void adopted_gone(svc *s);
static int stop_now(svc *s, char *err, size_t errlen);

/* ---- small helpers ------------------------------------------------------- */

static svc *find(heal_supervisor *sup, const char *name)
{
    for (int i = 0; i < sup->n; i++)
        if (!strcmp(sup->svcs[i]->cfg.name, name))
            return sup->svcs[i];
    return NULL;
}

static const char *sig_name(int sig)
{
    const char *a = sigabbrev_np(sig);
    return a ? a : "?";
}

static void describe_exit(char *buf, size_t n, int64_t status, int sig)
{
    if (sig)
        snprintf(buf, n, "killed by SIG%s", sig_name(sig));
    else if (status < 0)
        snprintf(buf, n, "exited");
    else
        snprintf(buf, n, "exited with status %d", (int)status);
}

/* Never kill(0) or kill(-1): a pid of 0 or 1 here is a bug, not a target. */
static void kill_pid(pid_t pid, int sig)
{
    if (pid > 1)
        kill(pid, sig);
}

static void kill_group(pid_t pgid, int sig)
{
    if (pgid > 1)
        kill(-pgid, sig);
}

static bool is_down(const svc *s)
{
    return s->state == HEAL_SVC_STOPPED || s->state == HEAL_SVC_FAILED;
}

static void handle_opened(heal_supervisor *sup)
{
    sup->nopen++;
}

static void maybe_release(heal_supervisor *sup);

static void handle_closed(uv_handle_t *h)
{
    heal_supervisor *sup = h->data;
    sup->nopen--;
    maybe_release(sup);
}

static void emit(svc *s, heal_service_state old, pid_t pid, int exit_status, int sig, int64_t delay,
                 const char *reason)
{
    heal_supervisor *sup = s->sup;
    if (sup->cb && !sup->freeing) {
        heal_service_event ev = {
            .name = s->cfg.name,
            .type = s->cfg.type,
            .old_state = old,
            .new_state = s->state,
            .pid = pid,
            .exit_status = exit_status,
            .term_signal = sig,
            .delay_ms = delay,
            .restarts = s->restarts,
            .reason = reason,
        };
        sup->cb(&ev, sup->ud);
    }
}

static void set_state_full(svc *s, heal_service_state st, pid_t pid, int exit_status, int sig, int64_t delay,
                           const char *reason)
{
    heal_service_state old = s->state;
    s->state = st;
    s->since_ms = core_now_ms();
    log_debug("service %s: %s -> %s (%s)", s->cfg.name, heal_service_state_name(old),
              heal_service_state_name(st), reason);
    emit(s, old, pid, exit_status, sig, delay, reason);
    heal_supervisor *sup = s->sup;
    if (sup->freeing)
        return;
    if (s->state == HEAL_SVC_RUNNING && st == HEAL_SVC_RUNNING) {
        /* wake services waiting for this one */
        for (int i = 0; i < sup->n; i++) {
            svc *t = sup->svcs[i];
            if (!t->waiting_deps)
                continue;
            for (int k = 0; k < t->ndeps; k++)
                if (sup->svcs[t->deps[k]] == s) {
                    svc_kick(t);
                    break;
                }
        }
        if (s->restart_dependents) {
            s->restart_dependents = false;
            for (int i = 0; i < sup->n; i++) {
                svc *t = sup->svcs[i];
                for (int k = 0; k < t->ndeps; k++)
                    if (sup->svcs[t->deps[k]] == s && t->state == HEAL_SVC_RUNNING) {
                        if (sup->dep_cb)
                            sup->dep_cb(s->cfg.name, t->cfg.name, sup->dep_ud);
                        else
                            heal_service_restart(sup, t->cfg.name, NULL, 0);
                        break;
                    }
            }
        }
    }
    if (st == HEAL_SVC_FAILED && s->state == HEAL_SVC_FAILED) {
        /* dependents waiting for this one cannot start */
        for (int i = 0; i < sup->n; i++) {
            svc *t = sup->svcs[i];
            if (!t->waiting_deps)
                continue;
            for (int k = 0; k < t->ndeps; k++)
                if (sup->svcs[t->deps[k]] == s) {
                    t->waiting_deps = false;
                    snprintf(t->error, sizeof t->error, "dependency '%s' failed", s->cfg.name);
                    set_state_full(t, HEAL_SVC_FAILED, 0, 0, 0, 0, t->error);
                    break;
                }
        }
    }
    if (sup->stopping_all)
        stop_all_progress(sup);
}

static void set_state(svc *s, heal_service_state st, pid_t pid, const char *reason)
{
    set_state_full(s, st, pid, 0, 0, 0, reason);
}

static int64_t backoff_delay(const svc *s, int fails)
{
    if (fails <= 0)
        return 0;
    int64_t d = s->cfg.backoff_initial_ms;
    for (int i = 1; i < fails && d < s->cfg.backoff_max_ms; i++)
        d *= 2;
    if (d > s->cfg.backoff_max_ms)
        d = s->cfg.backoff_max_ms;
    return d;
}

static void timer_arm(svc *s, timer_kind k, uv_timer_cb cb, int64_t ms, int64_t repeat)
{
    s->tk = k;
    uv_update_time(s->sup->loop); /* the cached loop time may be stale */
    uv_timer_start(&s->timer, cb, (uint64_t)(ms < 0 ? 0 : ms), (uint64_t)repeat);
}

static void timer_disarm(svc *s)
{
    s->tk = T_NONE;
    uv_timer_stop(&s->timer);
}

/* ---- children: spawn, read output, reap --------------------------------------- */

static void child_release(child *c)
{
    heal_supervisor *sup = c->sup;
    if (c->s && c->s->adopt_out == c)
        c->s->adopt_out = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        sup->children = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
    sup->nopen--;
    maybe_release(sup);
}

static void child_handle_closed(uv_handle_t *h)
{
    child *c = h->data;
    if (--c->open == 0)
        child_release(c);
}

static void child_close(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        heal_uv_close(h, child_handle_closed);
}

static void child_flush(child *c, int k)
{
    if (c->linelen[k] && c->s)
        heal_svc_log_line(&c->s->log, c->is_cmd ? "cmd" : NULL, c->line[k], c->linelen[k]);
    c->linelen[k] = 0;
}

static void child_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char slab[65536]; /* loop thread only; consumed before the next read */
    (void)h;
    (void)hint;
    buf->base = slab;
    buf->len = sizeof slab;
}

static void cmd_maybe_done(child *c);

static void child_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    child *c = st->data;
    int k = st == (uv_stream_t *)&c->pipe[0] ? 0 : 1;
    if (nread < 0) {
        child_flush(c, k);
        uv_read_stop(st);
        child_close((uv_handle_t *)st);
        c->eofs++;
        if (c->is_cmd)
            cmd_maybe_done(c);
        return;
    }
    if (c->capture && k == 0) {
        size_t room = sizeof c->cap - 1 - c->caplen;
        size_t take = (size_t)nread < room ? (size_t)nread : room;
        memcpy(c->cap + c->caplen, buf->base, take);
        c->caplen += take;
        c->cap[c->caplen] = 0;
        return;
    }
    for (ssize_t i = 0; i < nread; i++) {
        char ch = buf->base[i];
        if (ch == '\n') {
            if (c->s)
                heal_svc_log_line(&c->s->log, c->is_cmd ? "cmd" : NULL, c->line[k], c->linelen[k]);
            c->linelen[k] = 0;
            continue;
        }
        c->line[k][c->linelen[k]++] = ch;
        if (c->linelen[k] == LINEBUF)
            child_flush(c, k);
    }
}

static void child_exit(uv_process_t *p, int64_t status, int sig);

/* A FIFO keeps no end of its own: once the process that wrote into it is
 * gone, what it wrote is read now and the reader closed, before another
 * instance opens the same FIFO (which would keep this reader from its EOF). */
static void child_drain_close(child *c)
{
    static char buf[65536];
    for (int k = 0; k < 2; k++) {
        uv_handle_t *h = (uv_handle_t *)&c->pipe[k];
        if (uv_is_closing(h))
            continue;
        uv_os_fd_t fd;
        if (uv_fileno(h, &fd) == 0) {
            /* what the FIFO holds (1 MiB at most, see fifos_open), no more: a
             * process of another group still writing would keep this loop,
             * and the loop thread, going for ever */
            for (int i = 0; i <= (1 << 20) / (int)sizeof buf; i++) {
                ssize_t n = read(fd, buf, sizeof buf);
                if (n <= 0)
                    break;
                uv_buf_t b = uv_buf_init(buf, (unsigned)n);
                child_read((uv_stream_t *)&c->pipe[k], n, &b);
            }
        }
        child_flush(c, k);
        uv_read_stop((uv_stream_t *)&c->pipe[k]);
        child_close(h);
        c->eofs++;
    }
}

/* ---- what survives ippocd: output FIFOs and the pid record ---------------------- */

static void svc_path(const svc *s, const char *ext, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s.%s", s->sup->log_dir, s->cfg.name, ext);
}

/* Opens the service's stdout and stderr FIFOs: wfd for the child (read-write,
 * so its writes never meet a FIFO without reader), rfd for ippocd. */
static int fifos_open(const svc *s, int wfd[2], int rfd[2], bool create)
{
    static const char *const ext[2] = {"out", "err"};
    wfd[0] = wfd[1] = rfd[0] = rfd[1] = -1;
    for (int k = 0; k < 2; k++) {
        char path[CORE_PATH_MAX + 80];
        svc_path(s, ext[k], path, sizeof path);
        struct stat st;
        if (create && (lstat(path, &st) || !S_ISFIFO(st.st_mode))) {
            unlink(path);
            if (mkfifo(path, 0600))
                goto bad;
        }
        if (create && (wfd[k] = open(path, O_RDWR | O_CLOEXEC)) < 0)
            goto bad;
        if (create)
            fcntl(wfd[k], F_SETPIPE_SZ, 1 << 20); /* best effort: more room while ippocd is away */
        if ((rfd[k] = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
            goto bad;
    }
    return 0;
bad:;
    int rc = -errno;
    for (int k = 0; k < 2; k++) {
        if (wfd[k] >= 0)
            close(wfd[k]);
        if (rfd[k] >= 0)
            close(rfd[k]);
        wfd[k] = rfd[k] = -1;
    }
    return rc;
}

static void record_write(const svc *s, pid_t pid)
{
    uint64_t start;
    if (heal_svc_pid_starttime(pid, &start))
        return;
    char path[CORE_PATH_MAX + 80], tmp[CORE_PATH_MAX + 96], text[HEAL_ARG_MAX + 64];
    svc_path(s, "pid", path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int n = snprintf(text, sizeof text, "%d %llu\n%s\n", (int)pid, (unsigned long long)start, s->cfg.command);
    if (n >= (int)sizeof text)
        n = (int)sizeof text - 1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    bool ok = write(fd, text, (size_t)n) == n;
    close(fd);
    if (!ok || rename(tmp, path))
        unlink(tmp);
}

static void record_remove(const svc *s)
{
    char path[CORE_PATH_MAX + 80];
    svc_path(s, "pid", path, sizeof path);
    unlink(path);
}

/* The recorded pid if it is still the process recorded (same start time,
 * in *start); *same_cmd: it was started with the command configured now. */
static pid_t record_live_pid(const svc *s, bool *same_cmd, uint64_t *start_out)
{
    char path[CORE_PATH_MAX + 80], text[HEAL_ARG_MAX + 64];
    svc_path(s, "pid", path, sizeof path);
    if (core_read_file(path, text, sizeof text) <= 0)
        return 0;
    char *cmd = strchr(text, '\n');
    cmd = cmd ? cmd + 1 : text + strlen(text);
    cmd[strcspn(cmd, "\n")] = 0;
    *same_cmd = !strcmp(cmd, s->cfg.command);
    int pid = 0;
    unsigned long long start = 0;
    uint64_t now_start;
    if (sscanf(text, "%d %llu", &pid, &start) != 2 || pid <= 1 ||
        heal_svc_pid_starttime((pid_t)pid, &now_start) || now_start != start) {
        record_remove(s);
        return 0;
    }
    *start_out = now_start;
    return (pid_t)pid;
}

/* Spawns argv (detached: own session and process group) with stdout and
 * stderr into pipes. On failure the child is already being closed. */
static int child_spawn(heal_supervisor *sup, svc *s, char **argv, bool is_cmd, child **out, char *err,
                       size_t errlen)
{
    child *c = calloc(1, sizeof *c);
    if (!c)
        return core_err(err, errlen, -ENOMEM, "out of memory");
    c->sup = sup;
    c->s = s;
    c->is_cmd = is_cmd;
    c->next = sup->children;
    if (c->next)
        c->next->prev = c;
    sup->children = c;
    sup->nopen++; /* the child struct itself; released with its last handle */
    for (int k = 0; k < 2; k++) {
        uv_pipe_init(sup->loop, &c->pipe[k], 0);
        c->pipe[k].data = c;
        c->open++;
    }
    uv_timer_init(sup->loop, &c->timer);
    c->timer.data = c;
    c->open++;
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    int wfd[2] = {-1, -1}, rfd[2] = {-1, -1};
    bool fifo = s && !is_cmd && fifos_open(s, wfd, rfd, true) == 0; /* else plain pipes */
    for (int k = 0; k < 2; k++) {
        if (fifo) {
            stdio[k + 1].flags = UV_INHERIT_FD;
            stdio[k + 1].data.fd = wfd[k];
        } else {
            stdio[k + 1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
            stdio[k + 1].data.stream = (uv_stream_t *)&c->pipe[k];
        }
    }
    uv_process_options_t o;
    memset(&o, 0, sizeof o);
    o.file = argv[0];
    o.args = argv;
    o.exit_cb = child_exit;
    o.stdio = stdio;
    o.stdio_count = 3;
    o.flags = UV_PROCESS_DETACHED;
    if (s && !is_cmd) {
        o.env = s->envp;
        o.cwd = s->cfg.cwd[0] ? s->cfg.cwd : NULL;
        o.flags |= s->spawn_flags;
        o.uid = s->uid;
        o.gid = s->gid;
    }
    c->proc.data = c;
    c->open++;
    int rc = uv_spawn(sup->loop, &c->proc, &o);
    bool unread[2] = {false, false}; /* a FIFO ippocd could not read: its output is lost */
    for (int k = 0; k < 2 && fifo; k++) {
        close(wfd[k]);
        if (rc || (unread[k] = uv_pipe_open(&c->pipe[k], rfd[k]) != 0))
            close(rfd[k]);
    }
    if (rc) {
        c->exited = true; /* nothing to kill or reap */
        child_close((uv_handle_t *)&c->proc);
        for (int k = 0; k < 2; k++)
            child_close((uv_handle_t *)&c->pipe[k]);
        child_close((uv_handle_t *)&c->timer);
        return core_err(err, errlen, rc, "cannot start '%s': %s", argv[0], uv_strerror(rc));
    }
    c->pid = c->proc.pid;
    c->fifo = fifo;
    for (int k = 0; k < 2; k++) {
        if (unread[k]) {
            c->eofs++;
            child_close((uv_handle_t *)&c->pipe[k]);
            continue;
        }
        uv_read_start((uv_stream_t *)&c->pipe[k], child_alloc, child_read);
    }
    *out = c;
    return 0;
}

/* ---- supervised services ------------------------------------------------- */

static void on_exit_supervised(svc *s, pid_t pid, int64_t status, int sig);
static void on_exit_external(svc *s, pid_t pid, const char *why);

static void child_exit(uv_process_t *p, int64_t status, int sig)
{
    child *c = p->data;
    c->exited = true;
    c->status = status;
    c->term_signal = sig;
    uv_timer_stop(&c->timer);
    child_close((uv_handle_t *)p);
    if (c->is_cmd) {
        cmd_maybe_done(c);
        return;
    }
    /* the main process is gone: so goes the rest of its process group */
    kill_group(c->pid, SIGKILL);
    if (c->fifo)
        child_drain_close(c);
    svc *s = c->s;
    if (s && s->run == c)
        on_exit_supervised(s, c->pid, status, sig);
}

/* Spawns the supervised command; RUNNING on success. */
static int spawn_supervised(svc *s, char *err, size_t errlen)
{
    child *c;
    int rc = child_spawn(s->sup, s, s->argv, false, &c, err, errlen);
    if (rc) {
        snprintf(s->error, sizeof s->error, "%s", err ? err : "spawn failed");
        heal_svc_log_printf(&s->log, "%s", s->error);
        return rc;
    }
    s->run = c;
    s->pid = c->pid;
    s->started_mono = core_mono_ms();
    s->error[0] = 0;
    record_write(s, c->pid);
    heal_svc_log_printf(&s->log, "started pid %d: %s", (int)c->pid, s->cfg.command);
    set_state(s, HEAL_SVC_RUNNING, c->pid, s->automatic ? "restarted" : "started");
    return 0;
}

static void on_backoff_timer(uv_timer_t *t);

/* An unexpected end (exit, death, failed start): restart after the backoff
 * delay, or settle in STOPPED/FAILED. */
static void after_failure(svc *s, pid_t pid, int exit_status, int sig, const char *why, bool start_failed)
{
    int64_t up = s->started_mono ? core_mono_ms() - s->started_mono : 0;
    if (!start_failed && up >= s->cfg.healthy_after_ms)
        s->fails = 0;
    bool can_start = s->cfg.type != HEAL_SVC_EXTERNAL || s->cfg.start_cmd[0];
    if (!s->cfg.autorestart || !s->want_up || !can_start) {
        bool clean = !start_failed && !sig && exit_status == 0;
        set_state_full(s, clean ? HEAL_SVC_STOPPED : HEAL_SVC_FAILED, pid, exit_status, sig, 0, why);
        return;
    }
    int64_t delay = backoff_delay(s, s->fails);
    if (start_failed && delay == 0)
        delay = s->cfg.backoff_initial_ms; /* never a hot loop on a spawn error */
    s->fails++;
    set_state_full(s, HEAL_SVC_BACKOFF, pid, exit_status, sig, delay, why);
    if (s->state != HEAL_SVC_BACKOFF || s->sup->freeing)
        return; /* the callback decided otherwise */
    if (delay == 0) {
        s->automatic = true;
        s->restarts++;
        start_now(s);
    } else {
        timer_arm(s, T_BACKOFF, on_backoff_timer, delay, 0);
    }
}

static void on_backoff_timer(uv_timer_t *t)
{
    svc *s = t->data;
    s->tk = T_NONE;
    if (s->state != HEAL_SVC_BACKOFF)
        return;
    s->automatic = true;
    s->restarts++;
    start_now(s);
}

static void on_exit_supervised(svc *s, pid_t pid, int64_t status, int sig)
{
    char why[96];
    describe_exit(why, sizeof why, status, sig);
    if (s->adopted)
        snprintf(why, sizeof why, "exited (adopted: status unknown)");
    s->adopted = false;
    record_remove(s);
    s->run = NULL;
    s->pid = 0;
    s->has_exited = true;
    s->last_status = sig ? -1 : (int)status;
    s->last_signal = sig;
    s->last_exit_ms = core_now_ms();
    heal_svc_log_printf(&s->log, "pid %d %s", (int)pid, why);
    if (s->state == HEAL_SVC_STOPPING) {
        timer_disarm(s);
        if (s->restart_pending) {
            s->restart_pending = false;
            set_state_full(s, HEAL_SVC_STOPPED, pid, s->last_status, sig, 0, why);
            if (s->state == HEAL_SVC_STOPPED) {
                s->want_up = true;
                s->restarts++;
                s->automatic = true;
                start_now(s);
            }
        } else {
            set_state_full(s, HEAL_SVC_STOPPED, pid, s->last_status, sig, 0, why);
        }
        return;
    }
    after_failure(s, pid, s->last_status, sig, why, false);
}

/* ---- adopted supervised services (left running by an earlier ippocd) ----------- */

/* Reads an adopted process's output FIFOs again, into the service log. */
static void adopt_output(svc *s)
{
    int wfd[2], rfd[2];
    if (fifos_open(s, wfd, rfd, false))
        return; /* not there (pipes then): its output is lost */
    heal_supervisor *sup = s->sup;
    child *c = calloc(1, sizeof *c);
    if (!c) {
        close(rfd[0]);
        close(rfd[1]);
        return;
    }
    c->sup = sup;
    c->s = s;
    c->no_proc = true;
    c->fifo = true;
    s->adopt_out = c;
    c->exited = true; /* nothing to reap: the process is watched by its pidfd */
    c->pid = s->pid;
    c->next = sup->children;
    if (c->next)
        c->next->prev = c;
    sup->children = c;
    sup->nopen++;
    for (int k = 0; k < 2; k++) {
        uv_pipe_init(sup->loop, &c->pipe[k], 0);
        c->pipe[k].data = c;
        c->open++;
        if (uv_pipe_open(&c->pipe[k], rfd[k])) {
            close(rfd[k]);
            child_close((uv_handle_t *)&c->pipe[k]);
            continue;
        }
        uv_read_start((uv_stream_t *)&c->pipe[k], child_alloc, child_read);
    }
}

static void adopted_gone(svc *s)
{
    pid_t pid = s->pid;
    ext_unwatch(s);
    uv_timer_stop(&s->poll);
    kill_group(pid, SIGKILL); /* what is left of its group, as for a child */
    if (s->adopt_out)
        child_drain_close(s->adopt_out);
    s->adopt_out = NULL;
    on_exit_supervised(s, pid, -1, 0);
}

static void on_adopt_poll(uv_timer_t *t)
{
    svc *s = t->data;
    if (s->adopted && !heal_svc_pid_alive(s->pid))
        adopted_gone(s);
}

/* A recorded child still running: watch it instead of starting another. */
static bool try_adopt(svc *s)
{
    bool same_cmd = true;
    uint64_t start = 0;
    pid_t pid = record_live_pid(s, &same_cmd, &start);
    if (!pid)
        return false;
    char up[64] = "0";
    if (core_read_file("/proc/uptime", up, sizeof up) > 0) {
        int64_t age = (int64_t)(strtod(up, NULL) * 1000) - (int64_t)(start * 1000 / (uint64_t)sysconf(_SC_CLK_TCK));
        s->started_mono = core_mono_ms() - (age > 0 ? age : 0);
    } else {
        s->started_mono = core_mono_ms();
    }
    s->pid = pid;
    s->adopted = true;
    s->run = NULL;
    s->error[0] = 0;
    adopt_output(s);
    ext_watch(s);
    if (!s->pw)
        uv_timer_start(&s->poll, on_adopt_poll, (uint64_t)s->cfg.interval_ms, (uint64_t)s->cfg.interval_ms);
    heal_svc_log_printf(&s->log, "adopted pid %d, left running by an earlier ippocd", (int)pid);
    set_state(s, HEAL_SVC_RUNNING, pid, "adopted");
    if (!same_cmd && s->state == HEAL_SVC_RUNNING && s->pid == pid) {
        /* the configuration changed while ippocd was away: as a reload would */
        heal_svc_log_printf(&s->log, "pid %d runs an older command: restarting it with '%s'", (int)pid,
                            s->cfg.command);
        if (stop_now(s, NULL, 0) == 0) {
            s->want_up = true;
            s->restart_pending = true;
        }
    }
    return true;
}

/* ---- external services ------------------------------------------------------- */

static void cmd_timeout(uv_timer_t *t)
{
    child *c = t->data;
    c->timed_out = true;
    kill_group(c->pid, SIGKILL);
}

/* Runs an argv text for service s; done(c) runs once it exited (and, when
 * capturing, its output ended). */
static int run_cmd(svc *s, const char *text, bool capture, void (*done)(child *), child **out, char *err,
                   size_t errlen)
{
    char **argv;
    char e2[256];
    int rc = heal_svc_split_argv(text, &argv, e2, sizeof e2);
    if (rc < 0)
        return core_err(err, errlen, rc, "service '%s': command: %s", s->cfg.name, e2);
    child *c;
    heal_svc_log_printf(&s->log, "running: %s", text);
    rc = child_spawn(s->sup, s, argv, true, &c, err, errlen);
    free(argv);
    if (rc) {
        snprintf(s->error, sizeof s->error, "%s", err ? err : "spawn failed");
        heal_svc_log_printf(&s->log, "%s", s->error);
        return rc;
    }
    c->capture = capture;
    c->done = done;
    uv_timer_start(&c->timer, cmd_timeout, (uint64_t)s->cfg.command_timeout_ms, 0);
    *out = c;
    return 0;
}

static void cmd_maybe_done(child *c)
{
    if (c->done_called || !c->exited || (c->capture && c->eofs < 2))
        return;
    c->done_called = true;
    if (c->s && !c->sup->freeing && c->done)
        c->done(c);
}

static bool cmd_ok(child *c, char *why, size_t n)
{
    if (c->timed_out)
        snprintf(why, n, "timed out after %lldms", (long long)c->s->cfg.command_timeout_ms);
    else
        describe_exit(why, n, c->status, c->term_signal);
    return !c->timed_out && !c->term_signal && c->status == 0;
}

static void ext_running(svc *s, pid_t pid, const char *why)
{
    s->pid = pid;
    s->started_mono = core_mono_ms();
    s->error[0] = 0;
    heal_svc_log_printf(&s->log, "running as pid %d (%s)", (int)pid, why);
    ext_watch(s);
    set_state(s, HEAL_SVC_RUNNING, pid, why);
}

static void ext_start_failed(svc *s, const char *why)
{
    snprintf(s->error, sizeof s->error, "%s", why);
    heal_svc_log_printf(&s->log, "start failed: %s", why);
    if (s->automatic)
        after_failure(s, 0, -1, 0, why, true);
    else
        set_state(s, HEAL_SVC_FAILED, 0, why);
}

static void on_discover(uv_timer_t *t)
{
    svc *s = t->data;
    if (s->state != HEAL_SVC_STARTING) {
        timer_disarm(s);
        return;
    }
    pid_t pid = heal_svc_find_pid(s->cfg.pidfile, s->cfg.match);
    if (pid) {
        timer_disarm(s);
        ext_running(s, pid, s->automatic ? "restarted" : "started");
    } else if (core_mono_ms() >= s->deadline_mono) {
        timer_disarm(s);
        char why[256];
        snprintf(why, sizeof why, "no process found (%s%s) within %lldms of the command",
                 s->cfg.pidfile[0] ? "pidfile " : "comm ", s->cfg.pidfile[0] ? s->cfg.pidfile : s->cfg.match,
                 (long long)s->cfg.command_timeout_ms);
        ext_start_failed(s, why);
    }
}

static void ext_cmd_done(child *c)
{
    svc *s = c->s;
    if (s->cmd != c)
        return;
    s->cmd = NULL;
    char why[128];
    bool ok = cmd_ok(c, why, sizeof why);
    heal_svc_log_printf(&s->log, "command %s", why);
    if (s->cmd_purpose == CMD_START || s->cmd_purpose == CMD_RESTART) {
        if (s->state != HEAL_SVC_STARTING)
            return;
        if (!ok) {
            char w2[200];
            snprintf(w2, sizeof w2, "%s command %s", s->cmd_purpose == CMD_START ? "start" : "restart", why);
            ext_start_failed(s, w2);
            return;
        }
        s->deadline_mono = core_mono_ms() + s->cfg.command_timeout_ms;
        on_discover(&s->timer);
        if (s->state == HEAL_SVC_STARTING)
            timer_arm(s, T_DISCOVER, on_discover, DISCOVER_EVERY_MS, DISCOVER_EVERY_MS);
    } else if (s->cmd_purpose == CMD_STOP) {
        if (!ok) {
            snprintf(s->error, sizeof s->error, "stop command %s", why);
            /* the stop timeout (armed) falls back to SIGKILL */
        }
        if (s->state == HEAL_SVC_STOPPING && !heal_svc_pid_alive(s->pid))
            on_exit_external(s, s->pid, "stopped");
    }
}

static void ext_start(svc *s)
{
    pid_t pid = heal_svc_find_pid(s->cfg.pidfile, s->cfg.match);
    if (pid) {
        ext_running(s, pid, "found running");
        return;
    }
    if (!s->cfg.start_cmd[0]) {
        ext_start_failed(s, "not running and no start command");
        return;
    }
    char err[256];
    s->cmd_purpose = CMD_START;
    set_state(s, HEAL_SVC_STARTING, 0, "start command");
    if (s->state != HEAL_SVC_STARTING)
        return;
    if (run_cmd(s, s->cfg.start_cmd, false, ext_cmd_done, &s->cmd, err, sizeof err))
        ext_start_failed(s, err);
}

/* The watched pid is gone. */
static void on_exit_external(svc *s, pid_t pid, const char *why)
{
    ext_unwatch(s);
    s->pid = 0;
    s->has_exited = true;
    s->last_status = -1;
    s->last_signal = 0;
    s->last_exit_ms = core_now_ms();
    heal_svc_log_printf(&s->log, "pid %d gone", (int)pid);
    if (s->state == HEAL_SVC_STOPPING) {
        timer_disarm(s);
        set_state_full(s, HEAL_SVC_STOPPED, pid, -1, 0, 0, why);
        if (s->restart_pending && s->state == HEAL_SVC_STOPPED) {
            s->restart_pending = false;
            s->want_up = true;
            s->restarts++;
            s->automatic = true;
            start_now(s);
        }
        return;
    }
    if (s->state != HEAL_SVC_RUNNING)
        return;
    after_failure(s, pid, -1, 0, why, false);
}

static void pidwatch_closed(uv_handle_t *h)
{
    pidwatch *w = (pidwatch *)h;
    heal_supervisor *sup = w->s->sup;
    close(w->fd);
    free(w);
    sup->nopen--;
    maybe_release(sup);
}

static void on_pidfd(uv_poll_t *h, int status, int events)
{
    pidwatch *w = (pidwatch *)h;
    svc *s = w->s;
    (void)status;
    (void)events;
    if (s->pw != w || s->pid != w->pid)
        return;
    if (s->adopted)
        adopted_gone(s);
    else
        on_exit_external(s, w->pid, "process gone");
}

static void ext_watch(svc *s)
{
    ext_unwatch(s);
#ifdef SYS_pidfd_open
    int fd = (int)syscall(SYS_pidfd_open, s->pid, 0);
    if (fd < 0)
        return; /* the poll timer checks instead */
    pidwatch *w = calloc(1, sizeof *w);
    if (!w) {
        close(fd);
        return;
    }
    w->fd = fd;
    w->s = s;
    w->pid = s->pid;
    if (uv_poll_init(s->sup->loop, &w->h, fd)) {
        close(fd);
        free(w);
        return;
    }
    w->h.data = w;
    handle_opened(s->sup);
    uv_poll_start(&w->h, UV_READABLE, on_pidfd);
    s->pw = w;
#endif
}

static void ext_unwatch(svc *s)
{
    if (!s->pw)
        return;
    uv_poll_stop(&s->pw->h);
    uv_close((uv_handle_t *)&s->pw->h, pidwatch_closed);
    s->pw = NULL;
}

/* Every interval: liveness without pidfd, and adoption of a process that
 * appeared (started by hand) while the service was down. */
static void on_ext_poll(uv_timer_t *t)
{
    svc *s = t->data;
    if (s->state == HEAL_SVC_RUNNING && !s->pw && !heal_svc_pid_alive(s->pid))
        on_exit_external(s, s->pid, "process gone");
    else if (s->state == HEAL_SVC_STOPPING && !s->cmd && !heal_svc_pid_alive(s->pid))
        on_exit_external(s, s->pid, "stopped");
    else if (is_down(s) && !s->waiting_deps) {
        pid_t pid = heal_svc_find_pid(s->cfg.pidfile, s->cfg.match);
        if (pid) {
            s->want_up = true;
            ext_running(s, pid, "found running");
        }
    }
}

/* ---- systemd units ------------------------------------------------------------ */

static int sd_cmd(svc *s, const char *verb, const char *extra, bool capture, void (*done)(child *), child **out,
                  char *err, size_t errlen)
{
    char text[HEAL_ARG_MAX + 512];
    snprintf(text, sizeof text, "\"%s\" %s %s\"%s\"", s->sup->systemctl, verb, extra ? extra : "", s->cfg.unit);
    return run_cmd(s, text, capture, done, out, err, errlen);
}

static void sd_show_done(child *c)
{
    svc *s = c->s;
    if (s->show == c)
        s->show = NULL;
    char why[128];
    if (!cmd_ok(c, why, sizeof why)) {
        snprintf(s->error, sizeof s->error, "systemctl show %s", why);
        return;
    }
    heal_service_state st;
    pid_t pid;
    if (heal_svc_parse_systemctl_show(c->cap, &st, &pid)) {
        snprintf(s->error, sizeof s->error, "systemctl show: unexpected output");
        return;
    }
    if (s->cmd)
        return; /* an action is under way; its end queries again */
    if (st == s->state && pid == s->pid)
        return;
    heal_service_state old = s->state;
    pid_t oldpid = s->pid;
    s->pid = st == HEAL_SVC_RUNNING ? pid : 0;
    if (st == HEAL_SVC_RUNNING && old != HEAL_SVC_RUNNING)
        s->started_mono = core_mono_ms();
    if (old == HEAL_SVC_RUNNING && (st == HEAL_SVC_FAILED || st == HEAL_SVC_STOPPED)) {
        s->has_exited = true;
        s->last_status = -1;
        s->last_signal = 0;
        s->last_exit_ms = core_now_ms();
        if (s->want_up && s->cfg.autorestart) {
            after_failure(s, oldpid, -1, 0, "unit stopped", false);
            return;
        }
    }
    set_state(s, st, s->pid, "unit state");
}

static void sd_query(svc *s)
{
    if (s->show || s->sup->freeing)
        return;
    char err[256];
    if (sd_cmd(s, "show", "-p ActiveState,MainPID ", true, sd_show_done, &s->show, err, sizeof err))
        snprintf(s->error, sizeof s->error, "%s", err);
}

static void sd_cmd_done(child *c)
{
    svc *s = c->s;
    if (s->cmd != c)
        return;
    s->cmd = NULL;
    char why[128];
    if (!cmd_ok(c, why, sizeof why)) {
        snprintf(s->error, sizeof s->error, "systemctl %s",  why);
        heal_svc_log_printf(&s->log, "%s", s->error);
        if (s->cmd_purpose == CMD_START || s->cmd_purpose == CMD_RESTART) {
            ext_start_failed(s, s->error);
            return;
        }
    }
    sd_query(s);
}

static void sd_kill_done(child *c)
{
    char why[128];
    if (!cmd_ok(c, why, sizeof why))
        snprintf(c->s->error, sizeof c->s->error, "systemctl kill %s", why);
}

static void on_sd_poll(uv_timer_t *t)
{
    sd_query(t->data);
}

static int sd_action(svc *s, int purpose, const char *verb, const char *extra, char *err, size_t errlen)
{
    if (s->cmd)
        return core_err(err, errlen, -EBUSY, "service '%s': a systemctl command is still running", s->cfg.name);
    s->cmd_purpose = purpose;
    return sd_cmd(s, verb, extra, false, sd_cmd_done, &s->cmd, err, errlen);
}

/* ---- start / stop ------------------------------------------------------------ */

static void start_now(svc *s)
{
    char err[256];
    s->waiting_deps = false;
    timer_disarm(s);
    switch (s->cfg.type) {
    case HEAL_SVC_SUPERVISED:
        if (try_adopt(s))
            break;
        if (spawn_supervised(s, err, sizeof err))
            after_failure(s, 0, -1, 0, s->error, true);
        break;
    case HEAL_SVC_EXTERNAL:
        ext_start(s);
        break;
    case HEAL_SVC_SYSTEMD:
        set_state(s, HEAL_SVC_STARTING, 0, "systemctl start");
        if (s->state == HEAL_SVC_STARTING && sd_action(s, CMD_START, "start", NULL, err, sizeof err))
            ext_start_failed(s, err);
        break;
    }
}

/* A dependency is ready once it runs and, with a ready hook, the hook says so. */
static bool dep_ready(svc *d)
{
    heal_supervisor *sup = d->sup;
    return d->state == HEAL_SVC_RUNNING && (!sup->ready_cb || sup->ready_cb(d->cfg.name, sup->ready_ud));
}

void heal_supervisor_set_ready_hook(heal_supervisor *sup, heal_ready_cb cb, void *ud)
{
    sup->ready_cb = cb;
    sup->ready_ud = ud;
}

void heal_supervisor_recheck(heal_supervisor *sup)
{
    if (sup->freeing)
        return;
    for (int i = 0; i < sup->n; i++)
        if (sup->svcs[i]->waiting_deps)
            svc_kick(sup->svcs[i]);
}

/* Starts s once its dependencies run (starting those first). */
static void svc_kick(svc *s)
{
    if (!s->want_up || s->visiting || !(is_down(s) || s->waiting_deps))
        return;
    s->visiting = true;
    bool ready = true;
    for (int k = 0; k < s->ndeps; k++) {
        svc *d = s->sup->svcs[s->deps[k]];
        if (dep_ready(d))
            continue;
        ready = false;
        d->want_up = true; /* starting a service starts its dependencies */
        svc_kick(d);
    }
    s->visiting = false;
    if (!s->want_up || !(is_down(s) || s->waiting_deps))
        return; /* started meanwhile (a dependency's callback) */
    for (int k = 0; k < s->ndeps && !ready; k++)
        if (!dep_ready(s->sup->svcs[s->deps[k]]))
            goto wait;
    s->automatic = false;
    start_now(s);
    return;
wait:
    if (!s->waiting_deps) {
        s->waiting_deps = true;
        set_state(s, HEAL_SVC_STARTING, 0, "waiting for dependencies");
    }
}

static void on_stop_timeout(uv_timer_t *t)
{
    svc *s = t->data;
    s->tk = T_NONE;
    if (s->state != HEAL_SVC_STOPPING || !s->pid)
        return;
    heal_svc_log_printf(&s->log, "pid %d still running %lldms after SIG%s: SIGKILL", (int)s->pid,
                        (long long)s->cfg.stop_timeout_ms, sig_name(s->cfg.stop_signal));
    if (s->cfg.type == HEAL_SVC_SUPERVISED)
        kill_group(s->pid, SIGKILL);
    else
        kill_pid(s->pid, SIGKILL);
    if (s->cfg.type == HEAL_SVC_EXTERNAL && !s->pw) {
        /* no pidfd: check soon rather than at the next interval */
        timer_arm(s, T_STOP, on_stop_timeout, 50, 0);
        if (!heal_svc_pid_alive(s->pid))
            on_exit_external(s, s->pid, "killed after the stop timeout");
    }
}

/* Stops s (any type); the process end moves it to STOPPED. */
static int stop_now(svc *s, char *err, size_t errlen)
{
    s->want_up = false;
    if (s->waiting_deps || s->state == HEAL_SVC_BACKOFF ||
        (s->state == HEAL_SVC_STARTING && s->cfg.type == HEAL_SVC_EXTERNAL && !s->cmd)) {
        s->waiting_deps = false;
        timer_disarm(s);
        set_state(s, HEAL_SVC_STOPPED, 0, "stopped");
        return 0;
    }
    if (s->state == HEAL_SVC_STOPPING)
        return 0;
    if (is_down(s))
        return core_err(err, errlen, -EALREADY, "service '%s' is already %s", s->cfg.name,
                    heal_service_state_name(s->state));
    switch (s->cfg.type) {
    case HEAL_SVC_SUPERVISED:
        if (!s->pid)
            return core_err(err, errlen, -ESRCH, "service '%s' has no process", s->cfg.name);
        set_state(s, HEAL_SVC_STOPPING, s->pid, "stopping");
        if (s->state != HEAL_SVC_STOPPING || !s->pid)
            return 0;
        heal_svc_log_printf(&s->log, "stopping pid %d with SIG%s", (int)s->pid, sig_name(s->cfg.stop_signal));
        kill_group(s->pid, s->cfg.stop_signal);
        kill_group(s->pid, SIGCONT); /* a stopped (hung) process must see it */
        timer_arm(s, T_STOP, on_stop_timeout, s->cfg.stop_timeout_ms, 0);
        return 0;
    case HEAL_SVC_EXTERNAL: {
        if (s->cmd)
            return core_err(err, errlen, -EBUSY, "service '%s': a command is still running", s->cfg.name);
        pid_t pid = s->pid;
        set_state(s, HEAL_SVC_STOPPING, pid, "stopping");
        if (s->state != HEAL_SVC_STOPPING)
            return 0;
        timer_arm(s, T_STOP, on_stop_timeout, s->cfg.stop_timeout_ms, 0);
        if (s->cfg.stop_cmd[0]) {
            s->cmd_purpose = CMD_STOP;
            if (run_cmd(s, s->cfg.stop_cmd, false, ext_cmd_done, &s->cmd, err, errlen) == 0)
                return 0;
        }
        if (pid) {
            kill_pid(pid, s->cfg.stop_signal);
            kill_pid(pid, SIGCONT);
        }
        return 0;
    }
    case HEAL_SVC_SYSTEMD: {
        int rc = sd_action(s, CMD_STOP, "stop", NULL, err, errlen);
        if (rc == 0)
            set_state(s, HEAL_SVC_STOPPING, s->pid, "systemctl stop");
        return rc;
    }
    }
    return -EINVAL;
}

/* ---- dependencies -------------------------------------------------------------- */

/* DFS for a cycle through s; on finding one writes "a -> b -> a" into path. */
static bool find_cycle(heal_supervisor *sup, int i, int *color, int *stack, int depth, char *err, size_t errlen)
{
    color[i] = 1;
    stack[depth] = i;
    svc *s = sup->svcs[i];
    for (int k = 0; k < s->ndeps; k++) {
        int j = s->deps[k];
        if (color[j] == 1) {
            char path[1024] = "";
            size_t off = 0;
            int from = 0;
            while (stack[from] != j)
                from++;
            for (int m = from; m <= depth; m++)
                off += (size_t)snprintf(path + off, off < sizeof path ? sizeof path - off : 0, "%s -> ",
                                        sup->svcs[stack[m]]->cfg.name);
            snprintf(path + (off < sizeof path ? off : sizeof path - 1),
                     off < sizeof path ? sizeof path - off : 1, "%s", sup->svcs[j]->cfg.name);
            core_err(err, errlen, -EINVAL, "service '%s': dependency cycle %s", sup->svcs[j]->cfg.name, path);
            return true;
        }
        if (color[j] == 0 && find_cycle(sup, j, color, stack, depth + 1, err, errlen))
            return true;
    }
    color[i] = 2;
    return false;
}

int heal_supervisor_check(heal_supervisor *sup, char *err, size_t errlen)
{
    for (int i = 0; i < sup->n; i++) {
        svc *s = sup->svcs[i];
        s->ndeps = 0;
        for (int k = 0; k < s->cfg.ndepends; k++) {
            svc *d = find(sup, s->cfg.depends[k]);
            if (!d)
                return core_err(err, errlen, -EINVAL, "service '%s': depends on unknown service '%s'", s->cfg.name,
                            s->cfg.depends[k]);
            if (d == s)
                return core_err(err, errlen, -EINVAL, "service '%s': depends on itself", s->cfg.name);
            int j = 0;
            while (sup->svcs[j] != d)
                j++;
            s->deps[s->ndeps++] = j;
        }
    }
    int *color = calloc((size_t)sup->n + 1, sizeof(int));
    int *stack = calloc((size_t)sup->n + 1, sizeof(int));
    int rc = 0;
    if (!color || !stack)
        rc = core_err(err, errlen, -ENOMEM, "out of memory");
    for (int i = 0; !rc && i < sup->n; i++)
        if (color[i] == 0 && find_cycle(sup, i, color, stack, 0, err, errlen))
            rc = -EINVAL;
    free(color);
    free(stack);
    return rc;
}

/* ---- public: lifecycle ----------------------------------------------------------- */

int heal_supervisor_new(uv_loop_t *loop, const char *state_dir, heal_supervisor **out, char *err, size_t errlen)
{
    *out = NULL;
    heal_supervisor *sup = calloc(1, sizeof *sup);
    if (!sup)
        return core_err(err, errlen, -ENOMEM, "out of memory");
    sup->loop = loop;
    if (core_sncpy(sup->state_dir, sizeof sup->state_dir, state_dir) ||
        snprintf(sup->log_dir, sizeof sup->log_dir, "%s/services", state_dir) >= (int)sizeof sup->log_dir) {
        free(sup);
        return core_err(err, errlen, -ENAMETOOLONG, "state dir path too long");
    }
    int rc = core_mkdir_p(sup->log_dir, 0750);
    if (rc) {
        core_err(err, errlen, rc, "cannot create %s: %s", sup->log_dir, strerror(-rc));
        free(sup);
        return rc;
    }
    char comm[64];
    sup->systemd_pid1 = heal_svc_pid_comm(1, comm, sizeof comm) == 0 && !strcmp(comm, "systemd");
    snprintf(sup->systemctl, sizeof sup->systemctl, "systemctl");
    *out = sup;
    return 0;
}

void heal_supervisor_set_callback(heal_supervisor *sup, heal_service_cb cb, void *ud)
{
    sup->cb = cb;
    sup->ud = ud;
}

void heal_supervisor_set_dependent_hook(heal_supervisor *sup, heal_dependent_cb cb, void *ud)
{
    sup->dep_cb = cb;
    sup->dep_ud = ud;
}

void heal_supervisor_set_systemctl(heal_supervisor *sup, const char *path, bool force_pid1)
{
    core_sncpy(sup->systemctl, sizeof sup->systemctl, path);
    if (force_pid1)
        sup->systemd_pid1 = true;
}

/* environ with the service's KEY=VAL on top (and USER/LOGNAME/HOME for a user). */
static int build_env(svc *s, const struct passwd *pw)
{
    char extra[3][HEAL_ARG_MAX];
    int nextra = 0;
    if (pw) {
        snprintf(extra[nextra++], HEAL_ARG_MAX, "USER=%s", pw->pw_name);
        snprintf(extra[nextra++], HEAL_ARG_MAX, "LOGNAME=%s", pw->pw_name);
        snprintf(extra[nextra++], HEAL_ARG_MAX, "HOME=%s", pw->pw_dir);
    }
    size_t nenv = 0, bytes = 0;
    for (char **e = environ; *e; e++) {
        nenv++;
        bytes += strlen(*e) + 1;
    }
    nenv += (size_t)s->cfg.nenv + (size_t)nextra;
    bytes += (size_t)(s->cfg.nenv + nextra) * HEAL_ARG_MAX;
    s->envp = calloc(nenv + 1, sizeof(char *));
    s->envbuf = malloc(bytes + 1);
    if (!s->envp || !s->envbuf)
        return -ENOMEM;
    size_t n = 0, off = 0;
    const char *add[HEAL_SVC_MAX_ENV + 3];
    int nadd = 0;
    for (int i = 0; i < nextra; i++)
        add[nadd++] = extra[i];
    for (int i = 0; i < s->cfg.nenv; i++)
        add[nadd++] = s->cfg.env[i];
    for (char **e = environ; *e; e++) {
        size_t klen = strcspn(*e, "=");
        bool over = false;
        for (int i = 0; i < nadd && !over; i++)
            over = !strncmp(add[i], *e, klen) && add[i][klen] == '=';
        if (over)
            continue;
        s->envp[n++] = strcpy(s->envbuf + off, *e);
        off += strlen(*e) + 1;
    }
    for (int i = 0; i < nadd; i++) {
        bool later = false; /* a later entry with the same key wins */
        size_t klen = strcspn(add[i], "=");
        for (int j = i + 1; j < nadd && !later; j++)
            later = !strncmp(add[j], add[i], klen) && add[j][klen] == '=';
        if (later)
            continue;
        s->envp[n++] = strcpy(s->envbuf + off, add[i]);
        off += strlen(add[i]) + 1;
    }
    s->envp[n] = NULL;
    return 0;
}

static void svc_free_mem(svc *s)
{
    heal_svc_log_close(&s->log);
    free(s->argv);
    free(s->envp);
    free(s->envbuf);
    free(s);
}

int heal_supervisor_add(heal_supervisor *sup, const heal_service_config *cfg, char *err, size_t errlen)
{
    const char *name = cfg->name;
    if (!heal_svc_valid_name(name))
        return core_err(err, errlen, -EINVAL, "service '%s': bad name (use letters, digits, _ . @ -)", name);
    if (find(sup, name))
        return core_err(err, errlen, -EEXIST, "service '%s': defined twice", name);
    if (cfg->stop_signal < 1 || cfg->stop_signal >= NSIG)
        return core_err(err, errlen, -EINVAL, "service '%s': bad stop signal %d", name, cfg->stop_signal);
    if (cfg->backoff_max_ms < cfg->backoff_initial_ms)
        return core_err(err, errlen, -EINVAL, "service '%s': backoff_max is below backoff", name);
    if (cfg->ndepends < 0 || cfg->ndepends > HEAL_SVC_MAX_DEPS || cfg->nenv < 0 || cfg->nenv > HEAL_SVC_MAX_ENV)
        return core_err(err, errlen, -EINVAL, "service '%s': bad depends/env count", name);
    svc *s = calloc(1, sizeof *s);
    if (!s)
        return core_err(err, errlen, -ENOMEM, "out of memory");
    s->cfg = *cfg;
    s->sup = sup;
    s->log.fd = -1;
    if (s->cfg.command_timeout_ms <= 0)
        s->cfg.command_timeout_ms = 30000;
    if (s->cfg.interval_ms <= 0)
        s->cfg.interval_ms = 1000;
    char e2[256];
    int rc = 0;
    struct passwd *pw = NULL;
    switch (cfg->type) {
    case HEAL_SVC_SUPERVISED:
        if (!cfg->command[0]) {
            rc = core_err(err, errlen, -EINVAL, "service '%s': supervised service needs a command", name);
            goto bad;
        }
        if ((rc = heal_svc_split_argv(cfg->command, &s->argv, e2, sizeof e2)) < 0) {
            core_err(err, errlen, rc, "service '%s': command: %s", name, e2);
            goto bad;
        }
        if (cfg->user[0]) {
            errno = 0;
            pw = getpwnam(cfg->user);
            if (!pw) {
                rc = core_err(err, errlen, -EINVAL, "service '%s': unknown user '%s'", name, cfg->user);
                goto bad;
            }
            if (geteuid() != 0) {
                rc = core_err(err, errlen, -EPERM, "service '%s': user=%s needs ippocd to run as root", name,
                          cfg->user);
                goto bad;
            }
            s->uid = pw->pw_uid;
            s->gid = pw->pw_gid;
            s->spawn_flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
        }
        if (cfg->group[0]) {
            struct group *gr = getgrnam(cfg->group);
            if (!gr) {
                rc = core_err(err, errlen, -EINVAL, "service '%s': unknown group '%s'", name, cfg->group);
                goto bad;
            }
            if (geteuid() != 0) {
                rc = core_err(err, errlen, -EPERM, "service '%s': group=%s needs ippocd to run as root", name,
                          cfg->group);
                goto bad;
            }
            s->gid = gr->gr_gid;
            s->spawn_flags |= UV_PROCESS_SETGID;
        }
        if (cfg->cwd[0]) {
            struct stat st;
            if (stat(cfg->cwd, &st) || !S_ISDIR(st.st_mode)) {
                rc = core_err(err, errlen, -ENOTDIR, "service '%s': cwd '%s' is not a directory", name, cfg->cwd);
                goto bad;
            }
        }
        if ((rc = build_env(s, pw))) {
            core_err(err, errlen, rc, "out of memory");
            goto bad;
        }
        break;
    case HEAL_SVC_EXTERNAL:
        if (!cfg->pidfile[0] && !cfg->match[0]) {
            rc = core_err(err, errlen, -EINVAL, "service '%s': external service needs a pidfile or a match", name);
            goto bad;
        }
        {
            const char *cmds[3] = {cfg->start_cmd, cfg->stop_cmd, cfg->restart_cmd};
            const char *keys[3] = {"start", "stop", "restart"};
            for (int i = 0; i < 3; i++) {
                char **v;
                if (!cmds[i][0])
                    continue;
                if ((rc = heal_svc_split_argv(cmds[i], &v, e2, sizeof e2)) < 0) {
                    core_err(err, errlen, rc, "service '%s': %s: %s", name, keys[i], e2);
                    goto bad;
                }
                free(v);
            }
        }
        break;
    case HEAL_SVC_SYSTEMD:
        if (!sup->systemd_pid1) {
            char comm[64] = "?";
            heal_svc_pid_comm(1, comm, sizeof comm);
            rc = core_err(err, errlen, -EOPNOTSUPP,
                      "service '%s': type systemd needs systemd as PID 1 (PID 1 here is '%s'); use a supervised "
                      "or external service", name, comm);
            goto bad;
        }
        if (!cfg->unit[0]) {
            rc = core_err(err, errlen, -EINVAL, "service '%s': systemd service needs a unit", name);
            goto bad;
        }
        break;
    default:
        rc = core_err(err, errlen, -EINVAL, "service '%s': unknown type %d", name, (int)cfg->type);
        goto bad;
    }
    char path[CORE_PATH_MAX + 80];
    snprintf(path, sizeof path, "%s/%s.log", sup->log_dir, name);
    if ((rc = heal_svc_log_open(&s->log, path, cfg->log_max_bytes, cfg->log_keep))) {
        core_err(err, errlen, rc, "service '%s': cannot open %s: %s", name, path, strerror(-rc));
        goto bad;
    }
    if (sup->n == sup->cap) {
        int nc = sup->cap ? sup->cap * 2 : 8;
        svc **v = realloc(sup->svcs, (size_t)nc * sizeof *v);
        if (!v) {
            rc = core_err(err, errlen, -ENOMEM, "out of memory");
            goto bad;
        }
        sup->svcs = v;
        sup->cap = nc;
    }
    uv_timer_init(sup->loop, &s->timer);
    uv_timer_init(sup->loop, &s->poll);
    s->timer.data = s;
    s->poll.data = s;
    sup->nopen += 2;
    s->since_ms = core_now_ms();
    sup->svcs[sup->n++] = s;
    if (cfg->type == HEAL_SVC_EXTERNAL)
        uv_timer_start(&s->poll, on_ext_poll, (uint64_t)cfg->interval_ms, (uint64_t)cfg->interval_ms);
    else if (cfg->type == HEAL_SVC_SYSTEMD)
        uv_timer_start(&s->poll, on_sd_poll, 0, (uint64_t)cfg->interval_ms);
    return 0;
bad:
    svc_free_mem(s);
    return rc < 0 ? rc : -EINVAL;
}

int heal_supervisor_start_all(heal_supervisor *sup, char *err, size_t errlen)
{
    int rc = heal_supervisor_check(sup, err, errlen);
    if (rc)
        return rc;
    for (int i = 0; i < sup->n; i++)
        sup->svcs[i]->want_up = true;
    for (int i = 0; i < sup->n; i++)
        svc_kick(sup->svcs[i]);
    return 0;
}

static bool in_scope(heal_supervisor *sup, svc *s)
{
    return sup->stop_scope_all || s->cfg.type == HEAL_SVC_SUPERVISED;
}

static void stop_all_progress(heal_supervisor *sup)
{
    if (sup->in_progress) {
        sup->again = true;
        return;
    }
    sup->in_progress = true;
    do {
        sup->again = false;
        bool all_down = true;
        for (int i = 0; i < sup->n && sup->stopping_all; i++) {
            svc *s = sup->svcs[i];
            if (!in_scope(sup, s) || is_down(s))
                continue;
            all_down = false;
            if (s->state == HEAL_SVC_STOPPING)
                continue;
            bool dependents_up = false;
            for (int j = 0; j < sup->n && !dependents_up; j++) {
                svc *t = sup->svcs[j];
                if (!in_scope(sup, t) || is_down(t))
                    continue;
                for (int k = 0; k < t->ndeps; k++)
                    if (sup->svcs[t->deps[k]] == s)
                        dependents_up = true;
            }
            if (!dependents_up)
                stop_now(s, NULL, 0);
        }
        if (all_down && sup->stopping_all) {
            sup->stopping_all = false;
            if (sup->stop_done)
                sup->stop_done(sup->stop_ud);
        }
    } while (sup->again);
    sup->in_progress = false;
}

void heal_supervisor_stop_all(heal_supervisor *sup, bool all, void (*done)(void *ud), void *ud)
{
    sup->stopping_all = true;
    sup->stop_scope_all = all;
    sup->stop_done = done;
    sup->stop_ud = ud;
    heal_supervisor_check(sup, NULL, 0); /* resolves deps even without start_all */
    for (int i = 0; i < sup->n; i++)
        if (in_scope(sup, sup->svcs[i]))
            sup->svcs[i]->want_up = false;
    stop_all_progress(sup);
}

static void maybe_release(heal_supervisor *sup)
{
    if (!sup->freeing || sup->nopen > 0)
        return;
    for (int i = 0; i < sup->n; i++)
        svc_free_mem(sup->svcs[i]);
    free(sup->svcs);
    free(sup);
}

/* Reaps pid within ms, polling; true if it is gone. */
static bool reap_within(pid_t pid, int64_t ms)
{
    if (pid <= 1)
        return true;
    int64_t end = core_mono_ms() + ms;
    for (;;) {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return true;
        if (core_mono_ms() >= end)
            return false;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void heal_supervisor_free(heal_supervisor *sup)
{
    if (!sup)
        return;
    /* 1. supervised children: stop signal, wait, SIGKILL, reap */
    for (child *c = sup->children; c; c = c->next) {
        if (c->exited)
            continue;
        int sig = c->is_cmd || !c->s ? SIGKILL : c->s->cfg.stop_signal;
        if (!c->is_cmd) {
            kill_group(c->pid, sig);
            kill_group(c->pid, SIGCONT);
        } else {
            kill_pid(c->pid, SIGKILL); /* not the group: a daemon it started lives there */
        }
    }
    int64_t start = core_mono_ms();
    for (child *c = sup->children; c; c = c->next) {
        if (c->exited)
            continue;
        int64_t budget = c->is_cmd || !c->s ? 1000 : c->s->cfg.stop_timeout_ms;
        int64_t left = start + budget - core_mono_ms();
        if (!reap_within(c->pid, left > 0 ? left : 0)) {
            if (c->s)
                heal_svc_log_printf(&c->s->log, "pid %d still running at shutdown: SIGKILL", (int)c->pid);
            if (c->is_cmd)
                kill_pid(c->pid, SIGKILL);
            else
                kill_group(c->pid, SIGKILL);
            if (c->pid > 1)
                waitpid(c->pid, NULL, 0);
        } else if (c->s && !c->is_cmd) {
            heal_svc_log_printf(&c->s->log, "pid %d stopped at shutdown", (int)c->pid);
        }
        if (!c->is_cmd)
            kill_group(c->pid, SIGKILL); /* leftovers of its group */
        if (!c->is_cmd && c->s)
            record_remove(c->s);
        c->exited = true;
    }
    /* adopted processes still running: the same, without waitpid */
    for (int i = 0; i < sup->n; i++) {
        svc *s = sup->svcs[i];
        if (!s->adopted || s->pid <= 1)
            continue;
        kill_group(s->pid, s->cfg.stop_signal);
        kill_group(s->pid, SIGCONT);
        int64_t end = core_mono_ms() + s->cfg.stop_timeout_ms;
        while (heal_svc_pid_alive(s->pid) && core_mono_ms() < end) {
            struct timespec ts = {0, 2 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        kill_group(s->pid, SIGKILL);
        heal_svc_log_printf(&s->log, "adopted pid %d stopped at shutdown", (int)s->pid);
        record_remove(s);
        s->adopted = false;
    }
    sup->freeing = true;
    /* 2. close every handle; the last close callback frees the memory */
    sup->nopen++; /* hold until everything below is queued */
    for (child *c = sup->children; c; c = c->next) {
        if (!c->no_proc)
            child_close((uv_handle_t *)&c->proc);
        for (int k = 0; k < 2; k++) {
            child_flush(c, k);
            child_close((uv_handle_t *)&c->pipe[k]);
        }
        if (!c->no_proc)
            child_close((uv_handle_t *)&c->timer);
    }
    for (int i = 0; i < sup->n; i++) {
        svc *s = sup->svcs[i];
        s->timer.data = sup;
        s->poll.data = sup;
        uv_close((uv_handle_t *)&s->timer, handle_closed);
        uv_close((uv_handle_t *)&s->poll, handle_closed);
        ext_unwatch(s);
    }
    sup->nopen--;
    maybe_release(sup);
}

/* ---- public: actions ------------------------------------------------------------ */

int heal_service_start(heal_supervisor *sup, const char *name, char *err, size_t errlen)
{
    svc *s = find(sup, name);
    if (!s)
        return core_err(err, errlen, -ENOENT, "no service '%s'", name);
    int rc = heal_supervisor_check(sup, err, errlen);
    if (rc)
        return rc;
    s->want_up = true;
    switch (s->state) {
    case HEAL_SVC_RUNNING:
        return core_err(err, errlen, -EALREADY, "service '%s' is already running (pid %d)", name, (int)s->pid);
    case HEAL_SVC_STARTING:
        return 0;
    case HEAL_SVC_STOPPING:
        s->restart_pending = true;
        return 0;
    case HEAL_SVC_BACKOFF:
        timer_disarm(s);
        s->automatic = true;
        s->restarts++;
        start_now(s);
        break;
    case HEAL_SVC_STOPPED:
    case HEAL_SVC_FAILED:
        s->fails = 0;
        s->error[0] = 0;
        svc_kick(s);
        break;
    }
    if (s->state != HEAL_SVC_RUNNING && s->state != HEAL_SVC_STARTING && s->error[0])
        return core_err(err, errlen, -EIO, "service '%s': %s", name, s->error);
    return 0;
}

int heal_service_stop(heal_supervisor *sup, const char *name, char *err, size_t errlen)
{
    svc *s = find(sup, name);
    if (!s)
        return core_err(err, errlen, -ENOENT, "no service '%s'", name);
    s->restart_pending = false;
    return stop_now(s, err, errlen);
}

int heal_service_restart(heal_supervisor *sup, const char *name, char *err, size_t errlen)
{
    svc *s = find(sup, name);
    if (!s)
        return core_err(err, errlen, -ENOENT, "no service '%s'", name);
    int rc = heal_supervisor_check(sup, err, errlen);
    if (rc)
        return rc;
    s->restart_dependents = true;
    switch (s->state) {
    case HEAL_SVC_STOPPED:
    case HEAL_SVC_FAILED:
        return heal_service_start(sup, name, err, errlen);
    case HEAL_SVC_STARTING:
        return 0;
    case HEAL_SVC_STOPPING:
        s->restart_pending = true;
        return 0;
    case HEAL_SVC_BACKOFF:
        s->want_up = true;
        s->restarts++;
        s->automatic = true;
        start_now(s);
        return 0;
    case HEAL_SVC_RUNNING:
        break;
    }
    s->want_up = true;
    if (s->cfg.type == HEAL_SVC_SYSTEMD) {
        rc = sd_action(s, CMD_RESTART, "restart", NULL, err, errlen);
        if (rc == 0) {
            s->restarts++;
            set_state(s, HEAL_SVC_STARTING, s->pid, "systemctl restart");
        }
        return rc;
    }
    if (s->cfg.type == HEAL_SVC_EXTERNAL && s->cfg.restart_cmd[0]) {
        if (s->cmd)
            return core_err(err, errlen, -EBUSY, "service '%s': a command is still running", name);
        ext_unwatch(s);
        s->restarts++;
        s->automatic = true;
        s->cmd_purpose = CMD_RESTART;
        set_state(s, HEAL_SVC_STARTING, s->pid, "restart command");
        s->pid = 0;
        if (s->state == HEAL_SVC_STARTING &&
            run_cmd(s, s->cfg.restart_cmd, false, ext_cmd_done, &s->cmd, err, errlen)) {
            ext_start_failed(s, err);
            return -EIO;
        }
        return 0;
    }
    rc = stop_now(s, err, errlen);
    s->want_up = true;
    if (rc == 0)
        s->restart_pending = true;
    return rc;
}

int heal_service_signal(heal_supervisor *sup, const char *name, int signum, char *err, size_t errlen)
{
    svc *s = find(sup, name);
    if (!s)
        return core_err(err, errlen, -ENOENT, "no service '%s'", name);
    if (signum < 1 || signum >= NSIG)
        return core_err(err, errlen, -EINVAL, "bad signal %d", signum);
    if (s->cfg.type == HEAL_SVC_SYSTEMD) {
        char extra[64];
        snprintf(extra, sizeof extra, "-s %s ", sig_name(signum));
        child *c; /* runs beside any other command; its end only logs */
        return sd_cmd(s, "kill", extra, false, sd_kill_done, &c, err, errlen);
    }
    if (!s->pid)
        return core_err(err, errlen, -ESRCH, "service '%s' has no process (%s)", name, heal_service_state_name(s->state));
    heal_svc_log_printf(&s->log, "sending SIG%s to pid %d", sig_name(signum), (int)s->pid);
    if (s->pid <= 1)
        return core_err(err, errlen, -ESRCH, "service '%s': no valid pid", name);
    if (kill(s->cfg.type == HEAL_SVC_SUPERVISED ? -s->pid : s->pid, signum))
        return core_err(err, errlen, -errno, "service '%s': kill pid %d: %s", name, (int)s->pid, strerror(errno));
    return 0;
}

int heal_service_act(heal_supervisor *sup, const heal_action *a, char *err, size_t errlen)
{
    switch (a->kind) {
    case HEAL_ACT_START: return heal_service_start(sup, a->service, err, errlen);
    case HEAL_ACT_STOP: return heal_service_stop(sup, a->service, err, errlen);
    case HEAL_ACT_RESTART: return heal_service_restart(sup, a->service, err, errlen);
    case HEAL_ACT_SIGNAL: return heal_service_signal(sup, a->service, a->signum, err, errlen);
    default:
        return core_err(err, errlen, -EOPNOTSUPP, "action %s is not a service action",
                    heal_action_name(a->kind) ? heal_action_name(a->kind) : "?");
    }
}

/* ---- public: information ------------------------------------------------------------ */

static void fill_info(svc *s, heal_service_info *o)
{
    memset(o, 0, sizeof *o);
    core_sncpy(o->name, sizeof o->name, s->cfg.name);
    o->type = s->cfg.type;
    o->state = s->state;
    o->pid = s->pid;
    o->since_ms = s->since_ms;
    int64_t up = s->started_mono ? core_mono_ms() - s->started_mono : 0;
    o->uptime_ms = s->state == HEAL_SVC_RUNNING ? up : 0;
    o->restarts = s->restarts;
    o->quick_failures = s->state == HEAL_SVC_RUNNING && up >= s->cfg.healthy_after_ms ? 0 : s->fails;
    o->next_delay_ms = backoff_delay(s, o->quick_failures);
    o->has_exited = s->has_exited;
    o->last_exit_status = s->last_status;
    o->last_signal = s->last_signal;
    o->last_exit_ms = s->last_exit_ms;
    core_sncpy(o->error, sizeof o->error, s->error);
    core_sncpy(o->log_path, sizeof o->log_path, s->log.path);
}

int heal_service_info_get(heal_supervisor *sup, const char *name, heal_service_info *out)
{
    svc *s = find(sup, name);
    if (!s)
        return -ENOENT;
    fill_info(s, out);
    return 0;
}

int heal_supervisor_count(const heal_supervisor *sup)
{
    return sup->n;
}

int heal_supervisor_info_at(heal_supervisor *sup, int i, heal_service_info *out)
{
    if (i < 0 || i >= sup->n)
        return -ENOENT;
    fill_info(sup->svcs[i], out);
    return 0;
}

ssize_t heal_service_log_tail(heal_supervisor *sup, const char *name, int nlines, char *buf, size_t n)
{
    svc *s = find(sup, name);
    if (!s)
        return -ENOENT;
    return heal_svc_log_tail(s->log.path, s->cfg.log_keep, nlines, buf, n);
}
