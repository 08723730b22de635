/* engine_propose.c: the brain's hands on the heal engine: incidents opened
 * for a diagnosis (state "diagnosing"), keys attached to an incident's JSON
 * (signature, diagnosis), proposed typed actions run through the same
 * pipeline as a rule's (policy, audit, execute, verify), and the checks of
 * an action's target that the pure policy cannot make: pid-targeted actions
 * never touch pid 1, ippocd, its ancestors or kernel threads; a restore
 * only touches the service's own config_path with a known-good copy. */
#include "heal/engine_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PF_KTHREAD_FLAG 0x00200000u /* linux/sched.h PF_KTHREAD */

/* ---- pid targets -------------------------------------------------------------------- */

typedef struct proc_stat {
    int ppid;
    unsigned flags;
    uint64_t start;
} proc_stat;

/* /proc/PID/stat: ppid (4), flags (9), starttime (22). */
static int read_stat(int pid, proc_stat *ps)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -ESRCH;
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command may hold blanks and ')' */
    if (!p)
        return -EINVAL;
    p++;
    char *save = NULL;
    int field = 2;
    memset(ps, 0, sizeof *ps);
    for (char *t = strtok_r(p, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        field++;
        if (field == 4)
            ps->ppid = atoi(t);
        else if (field == 9)
            ps->flags = (unsigned)strtoul(t, NULL, 10);
        else if (field == 22) {
            ps->start = strtoull(t, NULL, 10);
            return 0;
        }
    }
    return -EINVAL;
}

/* The command line (arguments joined by blanks), or [comm] for a process
 * without one. */
static void read_cmd(int pid, char *out, size_t n)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    out[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t r = fd >= 0 ? read(fd, out, n - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (r > 0) {
        out[r] = 0;
        for (ssize_t i = 0; i < r; i++)
            if (!out[i] || (unsigned char)out[i] < 0x20)
                out[i] = ' ';
        for (ssize_t i = r - 1; i >= 0 && out[i] == ' '; i--)
            out[i] = 0;
        if (out[0])
            return;
    }
    snprintf(path, sizeof path, "/proc/%d/comm", pid);
    char comm[64] = "";
    fd = open(path, O_RDONLY | O_CLOEXEC);
    r = fd >= 0 ? read(fd, comm, sizeof comm - 1) : -1;
    if (fd >= 0)
        close(fd);
    comm[r > 0 ? r : 0] = 0;
    comm[strcspn(comm, "\n")] = 0;
    snprintf(out, n, "[%s]", comm);
}

/* Why pid may not be a target, or NULL. */
static const char *pid_protected(int pid, const proc_stat *ps, char *buf, size_t n)
{
    if (pid <= 1)
        return "pid 1 (init) is never a target";
    if (pid == (int)getpid())
        return "it is ippocd itself";
    if (pid == 2 || ps->ppid == 2 || (ps->flags & PF_KTHREAD_FLAG))
        return "it is a kernel thread";
    for (int p = (int)getppid(), depth = 0; p > 1 && depth < 64; depth++) {
        if (p == pid) {
            snprintf(buf, n, "it is an ancestor of ippocd");
            return buf;
        }
        proc_stat up;
        if (read_stat(p, &up))
            break;
        p = up.ppid;
    }
    return NULL;
}

static bool refuse_target(heal_decision *d, const char *fmt, const char *a, const char *b)
{
    heal_mode mode = d->mode;
    bool dry = d->dry_run;
    memset(d, 0, sizeof *d);
    d->mode = mode;
    d->dry_run = dry;
    d->verdict = HEAL_VERDICT_REFUSE;
    d->refusal = HEAL_REFUSE_TARGET;
    snprintf(d->reason, sizeof d->reason, fmt, a, b);
    return true;
}

static bool pid_refused(heal_action *a, heal_decision *d)
{
    char what[32], buf[128];
    snprintf(what, sizeof what, "pid %d", a->pid);
    proc_stat ps = {0};
    int rc = a->pid > 1 ? read_stat(a->pid, &ps) : 0;
    const char *why = pid_protected(a->pid, &ps, buf, sizeof buf);
    if (why)
        return refuse_target(d, "%s: %s", what, why);
    if (rc)
        return refuse_target(d, "%s: %s", what, rc == -ENOENT ? "no such process" : strerror(-rc));
    char cmd[sizeof a->comm];
    read_cmd(a->pid, cmd, sizeof cmd);
    if (a->pid_start && a->pid_start != ps.start) /* decided on before (a queued action): pid reused since */
        return refuse_target(d, "%s: %s", what, "it is no longer the process it was when the action was proposed");
    a->pid_start = ps.start;
    memcpy(a->comm, cmd, sizeof a->comm);
    return false;
}

bool eng_target_refused(heal_engine *e, heal_action *a, heal_decision *d)
{
    char msg[200];
    eng_svc *s = eng_find_svc(e, a->service); /* the mode in force, for the record */
    d->mode = s && s->cfg.ps.mode != HEAL_MODE_INHERIT ? s->cfg.ps.mode : e->cfg.pol.mode;
    d->dry_run = e->cfg.pol.dry_run;
    switch (a->kind) {
    case HEAL_ACT_SIGNAL_PID:
    case HEAL_ACT_RENICE_PID:
        return pid_refused(a, d);
    case HEAL_ACT_GENOME:
        if (strcmp(a->service, HEAL_CELL_TARGET))
            return refuse_target(d, "genome changes are for target '%s', not service '%s'", HEAL_CELL_TARGET,
                                 a->service);
        return false;
    case HEAL_ACT_RESTORE:
        if (eng_files_can_restore(e, a->service, a->path, msg, sizeof msg))
            return refuse_target(d, "restore %s: %s", a->path, msg);
        return false;
    default:
        return false;
    }
}

int eng_pid_still(const heal_action *a, char *msg, size_t n)
{
    proc_stat ps;
    char buf[128];
    if (read_stat(a->pid, &ps) || ps.start != a->pid_start || pid_protected(a->pid, &ps, buf, sizeof buf)) {
        snprintf(msg, n, "pid %d (%s) is gone or is another process now", a->pid, a->comm);
        return -ESRCH;
    }
    return 0;
}

/* ---- incidents for the brain ------------------------------------------------------------ */

static int say(char *err, size_t errlen, int rc, const char *fmt, const char *a)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, a);
    return rc;
}

int heal_engine_incident_new(heal_engine *e, const char *service, const char *what, json_t *evidence,
                             uint64_t *id, char *err, size_t errlen)
{
    service = service ? service : "";
    if (service[0] && !eng_find_svc(e, service)) {
        json_decref(evidence);
        return say(err, errlen, -ENOENT, "no service '%s'", service);
    }
    if (evidence && !json_is_object(evidence)) {
        json_decref(evidence);
        return say(err, errlen, -EINVAL, "%s", "the evidence must be a JSON object");
    }
    incident *inc = eng_incident_open_as(e, INC_DIAGNOSING, service, what && *what ? what : "diagnosis", "brain",
                                         NULL, 0, core_now_ms(), evidence);
    if (!inc)
        return say(err, errlen, -ENOMEM, "%s", "out of memory");
    *id = inc->id;
    eng_publish(e);
    return 0;
}

static bool reserved_key(const char *key)
{
    static const char *const keys[] = {"id", "service", "state", "what", "where", "failing_since_ms", "detected_ms",
                                       "evidence", "actions", "reason", "time_to_detect_ms", "closed_ms",
                                       "time_to_heal_ms", "by", "why", "proposed", NULL};
    for (int i = 0; keys[i]; i++)
        if (!strcmp(key, keys[i]))
            return true;
    return false;
}

int heal_engine_incident_attach(heal_engine *e, uint64_t id, const char *key, json_t *value)
{
    incident *inc = eng_incident_find(e, id);
    int rc = !inc ? -ENOENT : !value || !key || !*key || reserved_key(key) ? -EINVAL : 0;
    if (rc) {
        json_decref(value);
        return rc;
    }
    if (!inc->extra && !(inc->extra = json_object())) {
        json_decref(value);
        return -ENOMEM;
    }
    if (json_object_set_new(inc->extra, key, value))
        return -ENOMEM;
    e->incidents_dirty = true;
    eng_publish(e);
    return 0;
}

static bool busy(const incident *inc)
{
    return inc->state == INC_ACTING || inc->state == INC_VERIFYING;
}

int heal_engine_propose(heal_engine *e, uint64_t id, const heal_action *acts, int n, const char *who,
                        const char *why, char *err, size_t errlen)
{
    char num[32];
    snprintf(num, sizeof num, "%llu", (unsigned long long)id);
    incident *inc = eng_incident_find(e, id);
    if (!inc)
        return say(err, errlen, -ENOENT, "no incident %s", num);
    if (n < 1 || n > HEAL_RULE_ACTIONS_MAX || !acts)
        return say(err, errlen, -EINVAL, "%s", "propose 1 to 8 actions");
    if (e->stopping)
        return say(err, errlen, -EBUSY, "%s", "ippocd is stopping");
    if (busy(inc))
        return say(err, errlen, -EBUSY, "incident %s: its actions are running (or being verified)", num);
    for (int i = 0; i < n; i++)
        if (!heal_action_name(acts[i].kind) || !memchr(acts[i].service, 0, sizeof acts[i].service))
            return say(err, errlen, -EINVAL, "%s", "an invalid action");
    bool reopened = inc->state != INC_DIAGNOSING;
    json_t *texts = json_array();
    if (!texts)
        return say(err, errlen, -ENOMEM, "%s", "out of memory");
    inc->nactions = n;
    inc->next = 0;
    inc->executed = inc->failed = inc->skipped = 0;
    inc->flap_refused = false;
    for (int i = 0; i < n; i++) {
        char text[HEAL_ARG_MAX + 64];
        inc->actions[i] = acts[i];
        inc->actions[i].comm[0] = 0; /* filled by the engine when it decides */
        inc->actions[i].pid_start = 0;
        inc->wants_running |= acts[i].kind == HEAL_ACT_RESTART || acts[i].kind == HEAL_ACT_START;
        heal_action_format(&acts[i], text, sizeof text);
        json_array_append_new(texts, json_string(text));
    }
    json_decref(inc->proposed);
    inc->proposed = texts;
    snprintf(inc->by, sizeof inc->by, "%s", who && *who ? who : "?");
    snprintf(inc->why, sizeof inc->why, "%s", why ? why : "");
    inc->state = INC_ACTING;
    inc->closed_ms = 0;
    inc->reason[0] = 0;
    e->incidents_dirty = true;
    log_info("heal: incident %llu (%s): %s proposes %d action(s)%s: %s", (unsigned long long)id, inc->service,
             inc->by, n, reopened ? " (reopened)" : "", inc->why);
    eng_act_next(inc);
    eng_publish(e);
    return 0;
}

int heal_engine_propose_ask(heal_engine *e, uint64_t id, const heal_action *acts, int n, const char *who,
                            const char *why, char *err, size_t errlen)
{
    incident *inc = eng_incident_find(e, id);
    if (inc)
        inc->ask = true; /* nothing runs: each decision is taken at once inside propose */
    int rc = heal_engine_propose(e, id, acts, n, who, why, err, errlen);
    if (inc)
        inc->ask = false;
    return rc;
}

int heal_engine_incident_close(heal_engine *e, uint64_t id, bool resolved, const char *reason)
{
    incident *inc = eng_incident_find(e, id);
    if (!inc)
        return -ENOENT;
    if (inc->state == INC_RESOLVED || inc->state == INC_FAILED)
        return 0;
    if (busy(inc))
        return -EBUSY;
    eng_incident_close(inc, resolved, reason && *reason ? reason : resolved ? "closed" : "closed: no action");
    return 0;
}

size_t heal_engine_pending_ids(heal_engine *e, uint64_t *ids, size_t max)
{
    int64_t now = core_mono_ms();
    size_t n = heal_policy_pending_list(e->policy, now, NULL, 0);
    heal_pending *v = n ? calloc(n, sizeof *v) : NULL;
    if (!v)
        return 0;
    n = heal_policy_pending_list(e->policy, now, v, n);
    for (size_t i = 0; i < n && i < max; i++)
        ids[i] = v[i].id;
    free(v);
    return n;
}
