/* engine_act.c: the action pipeline. For each action of an incident, in
 * order: the policy decides; the decision (or, for an action that will run,
 * the intent) is appended to the audit log on the thread pool BEFORE
 * anything happens; the action runs (service actions through the
 * supervisor, renice/cgroup/sysctl through engine_sys.c, cleaning on the
 * pool, a playbook as a child process with a timeout, alerts through
 * engine_alert.c); its result is appended to the audit log; then the next
 * action, and finally the incident's verify step. Nothing here runs a shell. */
#include "heal/engine_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { J_DECISION = 0, J_INTENT, J_RESULT } job_stage;

typedef struct job {
    uv_work_t w;
    heal_engine *e;
    uint64_t inc_id; /* 0: an approved pending action */
    heal_action a;
    heal_decision d;
    char why[HEAL_RULE_LINE_MAX + 64];
    heal_audit_kind rec_kind; /* J_DECISION: decision / approval / rejection */
    job_stage stage;
    uint64_t intent_seq;
    int audit_rc;
    char audit_err[256];
    int rc;
    char msg[512];
    int64_t t0;
    /* clean */
    int removed;
    uint64_t bytes;
    /* playbook */
    uv_process_t proc;
    uv_timer_t timer;
    int open;
    bool exited;
    int64_t status;
    int term_signal;
    struct job *pb_next; /* e->playbooks list */
    char edit_of[256];   /* heal_engine_approve_edit: the pending action it replaced */
} job;

static void run_action(job *j);

/* Keeps the value a key had before the engine first changed it. */
static void remember_sysctl(heal_engine *e, const char *key, const char *old)
{
    for (int i = 0; i < e->nundo; i++)
        if (!strcmp(e->undo[i].key, key))
            return;
    struct eng_undo *n = realloc(e->undo, (size_t)(e->nundo + 1) * sizeof *n);
    if (!n) {
        log_warn("heal: sysctl %s: cannot remember its old value '%s': out of memory", key, old);
        return;
    }
    e->undo = n;
    core_sncpy(e->undo[e->nundo].key, sizeof e->undo[0].key, key);
    core_sncpy(e->undo[e->nundo].old, sizeof e->undo[0].old, old);
    e->nundo++;
}

/* Synchronous on purpose: it runs once, at stop, and must finish before
 * the daemon exits. Intent before, result after, as for every action. */
void eng_sysctl_revert_all(heal_engine *e)
{
    for (int i = 0; i < e->nundo; i++) {
        heal_action a = {.kind = HEAL_ACT_SYSCTL};
        core_sncpy(a.key, sizeof a.key, e->undo[i].key);
        core_sncpy(a.value, sizeof a.value, e->undo[i].old);
        char err[256] = "", msg[512] = "", old[256] = "";
        uint64_t seq = 0;
        heal_audit_rec r = {.kind = HEAL_AUDIT_INTENT, .action = &a, .reason = "revert at stop",
                            .mode = heal_mode_name(e->cfg.pol.mode)};
        if (!e->audit || heal_audit_append(e->audit, &r, &seq, err, sizeof err)) {
            log_err("heal: sysctl %s not put back to '%s': audit log: %s", a.key, a.value, err);
            continue;
        }
        int64_t t0 = core_mono_ms();
        int rc = eng_sys_sysctl(a.key, a.value, old, sizeof old, msg, sizeof msg);
        heal_audit_rec res = {.kind = HEAL_AUDIT_RESULT, .action = &a, .reason = "revert at stop",
                              .mode = r.mode, .intent_seq = seq,
                              .outcome = rc ? HEAL_OUTCOME_FAILED : HEAL_OUTCOME_OK,
                              .message = rc ? msg : "put back", .duration_ms = core_mono_ms() - t0};
        if (heal_audit_append(e->audit, &res, NULL, err, sizeof err))
            log_err("heal: audit log: %s", err);
        eng_event(e, "heal.revert", rc ? "error" : "info", "heal",
                  json_pack("{s:s, s:s, s:s, s:b}", "key", a.key, "value", a.value, "from", old, "ok", rc == 0));
        log_info("heal: sysctl %s put back to '%s'%s%s", a.key, a.value, rc ? ": " : "", rc ? msg : "");
    }
    free(e->undo);
    e->undo = NULL;
    e->nundo = 0;
}
static void action_done(job *j);

static const char *mode_of(const heal_decision *d)
{
    return heal_mode_name(d->mode);
}

/* ---- audit on the thread pool ---------------------------------------------------------- */

static void audit_work(uv_work_t *w)
{
    job *j = w->data;
    heal_audit_rec r = {
        .action = &j->a,
        .reason = j->why,
        .mode = mode_of(&j->d),
        .dry_run = j->d.dry_run,
    };
    switch (j->stage) {
    case J_DECISION:
        r.kind = j->rec_kind;
        r.verdict = heal_verdict_name(j->d.verdict);
        r.detail = j->d.reason;
        r.pending_id = j->d.pending_id;
        break;
    case J_INTENT:
        r.kind = HEAL_AUDIT_INTENT;
        r.verdict = heal_verdict_name(j->d.verdict);
        r.pending_id = j->d.pending_id;
        break;
    case J_RESULT:
        r.kind = HEAL_AUDIT_RESULT;
        r.intent_seq = j->intent_seq;
        r.outcome = j->rc ? HEAL_OUTCOME_FAILED : HEAL_OUTCOME_OK;
        r.message = j->msg;
        r.duration_ms = core_mono_ms() - j->t0;
        break;
    }
    uint64_t seq = 0;
    j->audit_rc = j->e->audit ? heal_audit_append(j->e->audit, &r, &seq, j->audit_err, sizeof j->audit_err) : -EBADF;
    if (j->stage == J_INTENT)
        j->intent_seq = seq;
}

static void audit_after(uv_work_t *w, int status)
{
    job *j = w->data;
    heal_engine *e = j->e;
    if (j->audit_rc)
        log_err("heal: audit log: %s", j->audit_err[0] ? j->audit_err : strerror(-j->audit_rc));
    if (e->freed || status == UV_ECANCELED) {
        free(j);
        eng_job_done(e);
        return;
    }
    job_stage st = j->stage;
    if (st == J_INTENT) {
        if (j->audit_rc) { /* never act without the record */
            j->rc = -EIO;
            snprintf(j->msg, sizeof j->msg, "not run: the audit log refused the intent record");
            action_done(j);
        } else {
            run_action(j);
        }
        return; /* the job lives on */
    }
    if (st == J_RESULT) {
        incident *inc = eng_incident_find(e, j->inc_id);
        if (inc && inc->state == INC_ACTING)
            eng_act_next(inc);
    }
    free(j);
    eng_job_done(e);
}

static void audit_queue(job *j, job_stage st)
{
    j->stage = st;
    j->w.data = j;
    int rc = uv_queue_work(j->e->loop, &j->w, audit_work, audit_after);
    if (rc) { /* cannot happen with a live loop; do it here rather than skip it */
        audit_work(&j->w);
        audit_after(&j->w, 0);
    }
}

static job *job_new(heal_engine *e, incident *inc, const heal_action *a, const heal_decision *d, const char *why)
{
    job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->e = e;
    j->inc_id = inc ? inc->id : 0;
    j->a = *a;
    j->d = *d;
    snprintf(j->why, sizeof j->why, "%s", why ? why : "");
    j->t0 = core_mono_ms();
    e->jobs++;
    return j;
}

void eng_audit_decision(heal_engine *e, const heal_action *a, const heal_decision *d, const char *why,
                        heal_audit_kind kind)
{
    job *j = job_new(e, NULL, a, d, why);
    if (!j)
        return;
    j->rec_kind = kind;
    audit_queue(j, J_DECISION);
}

/* ---- events --------------------------------------------------------------------------- */

static json_t *action_payload(const heal_action *a, const heal_decision *d, uint64_t inc_id, const char *why)
{
    char text[256];
    heal_action_format(a, text, sizeof text);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:I, s:s, s:s}", "service", a->service, "action", text, "kind",
                     heal_action_name(a->kind), "verdict", heal_verdict_name(d->verdict), "mode", heal_mode_name(d->mode),
                     "dry_run", d->dry_run, "incident", (json_int_t)inc_id, "reason", d->reason, "why", why ? why : "");
}

/* ---- finishing an action ------------------------------------------------------------------ */

static void action_done(job *j)
{
    heal_engine *e = j->e;
    char text[256];
    heal_action_format(&j->a, text, sizeof text);
    if (j->rc)
        log_warn("heal: %s %s failed: %s", j->a.service, text, j->msg);
    else
        log_info("heal: %s%s%s: %s", j->a.service, j->a.service[0] ? " " : "", text, j->msg);
    heal_policy_record_result(e->policy, &j->a, j->rc == 0, core_mono_ms());
    json_t *p = action_payload(&j->a, &j->d, j->inc_id, j->why);
    json_object_set_new(p, "would", json_false());
    json_object_set_new(p, "outcome", json_string(j->rc ? "failed" : "ok"));
    json_object_set_new(p, "message", json_string(j->msg));
    if (j->edit_of[0])
        json_object_set_new(p, "edit_of", json_string(j->edit_of));
    eng_event(e, "heal.action", j->rc ? "error" : "info", j->a.service, p);
    incident *inc = eng_incident_find(e, j->inc_id);
    if (inc)
        eng_incident_action_done(inc, &j->a, j->rc ? "failed" : "ok", j->msg, j->rc == 0, j->rc != 0);
    audit_queue(j, J_RESULT);
}

/* ---- the actuators ------------------------------------------------------------------------- */

static pid_t svc_pid(heal_engine *e, const char *name)
{
    heal_supervisor *sup = eng_sup_of(e, name);
    heal_service_info in;
    if (!sup || heal_service_info_get(sup, name, &in))
        return 0;
    return in.pid;
}

static void clean_work(uv_work_t *w)
{
    job *j = w->data;
    j->rc = eng_sys_clean(j->a.path, j->a.older_than_ms, j->a.larger_than, core_now_ms(), &j->removed, &j->bytes,
                          j->msg, sizeof j->msg);
}

/* A pool job whose engine was freed, or that was cancelled, is dropped
 * here (true); otherwise the caller finishes it. */
static bool pool_job_dropped(job *j, int status)
{
    if (!j->e->freed && status != UV_ECANCELED)
        return false;
    heal_engine *e = j->e;
    free(j);
    eng_job_done(e);
    return true;
}

static void clean_after(uv_work_t *w, int status)
{
    job *j = w->data;
    if (pool_job_dropped(j, status))
        return;
    action_done(j);
}

/* restore: the copy is written on the pool (up to 1 MiB, fsync'd) */
static void restore_work(uv_work_t *w)
{
    job *j = w->data;
    j->rc = eng_files_restore(j->e, &j->a, j->msg, sizeof j->msg);
}

static void restore_after(uv_work_t *w, int status)
{
    job *j = w->data;
    if (pool_job_dropped(j, status))
        return;
    eng_files_restored(j->e, &j->a, j->rc, j->msg);
    action_done(j);
}

static void pb_closed(uv_handle_t *h)
{
    job *j = h->data;
    if (--j->open == 0) {
        if (j->e->freed) {
            heal_engine *e = j->e;
            free(j);
            eng_job_done(e);
            return;
        }
        if (j->term_signal)
            j->rc = -ETIMEDOUT;
        else if (j->status)
            j->rc = -EIO;
        action_done(j);
    }
}

static void pb_unlink(job *j)
{
    for (job **pp = (job **)&j->e->playbooks; *pp; pp = &(*pp)->pb_next)
        if (*pp == j) {
            *pp = j->pb_next;
            return;
        }
}

void eng_act_shutdown(heal_engine *e)
{
    for (job *j = e->playbooks; j; j = j->pb_next)
        if (!j->exited)
            uv_process_kill(&j->proc, SIGKILL);
}

static void pb_exit(uv_process_t *p, int64_t status, int sig)
{
    job *j = p->data;
    pb_unlink(j);
    j->exited = true;
    j->status = status;
    j->term_signal = sig;
    if (sig)
        snprintf(j->msg, sizeof j->msg, "playbook killed by signal %d (timeout %lld ms?)", sig, (long long)j->a.timeout_ms);
    else
        snprintf(j->msg, sizeof j->msg, "playbook exited with status %lld", (long long)status);
    uv_close((uv_handle_t *)&j->proc, pb_closed);
    uv_close((uv_handle_t *)&j->timer, pb_closed);
}

static void pb_timeout(uv_timer_t *t)
{
    job *j = t->data;
    if (!j->exited)
        uv_process_kill(&j->proc, SIGKILL);
}

static int run_playbook(job *j)
{
    char **argv = NULL;
    int rc = heal_svc_split_argv(j->a.program, &argv, j->msg, sizeof j->msg);
    if (rc < 0)
        return rc;
    uv_stdio_container_t io[3] = {{.flags = UV_IGNORE}, {.flags = UV_IGNORE}, {.flags = UV_IGNORE}};
    uv_process_options_t o = {.exit_cb = pb_exit, .file = argv[0], .args = argv, .stdio = io, .stdio_count = 3};
    j->proc.data = j;
    rc = uv_spawn(j->e->loop, &j->proc, &o);
    free(argv);
    if (rc) { /* the handle still needs a close; pb_closed finishes the action */
        snprintf(j->msg, sizeof j->msg, "cannot run %s: %s", j->a.program, uv_strerror(rc));
        j->status = 127;
        j->open = 1;
        uv_close((uv_handle_t *)&j->proc, pb_closed);
        return 0;
    }
    uv_timer_init(j->e->loop, &j->timer);
    j->timer.data = j;
    j->open = 2;
    j->pb_next = j->e->playbooks;
    j->e->playbooks = j;
    uv_timer_start(&j->timer, pb_timeout, (uint64_t)(j->a.timeout_ms > 0 ? j->a.timeout_ms : HEAL_RUN_TIMEOUT_MS), 0);
    return 0;
}

static void alert_done(void *ud, int rc, const char *msg)
{
    job *j = ud;
    if (j->e->freed) {
        heal_engine *e = j->e;
        free(j);
        eng_job_done(e);
        return;
    }
    j->rc = rc;
    snprintf(j->msg, sizeof j->msg, "%s", msg);
    action_done(j);
}

static void run_alert(job *j)
{
    heal_engine *e = j->e;
    incident *inc = eng_incident_find(e, j->inc_id);
    json_t *body = json_pack("{s:s, s:s, s:I, s:I}", "source", "ippocd", "service", j->a.service, "incident",
                             (json_int_t)j->inc_id, "ts", (json_int_t)core_now_ms());
    if (inc) {
        json_object_set_new(body, "what", json_string(inc->what));
        json_object_set_new(body, "where", json_string(inc->where));
        json_object_set_new(body, "reason", json_string(inc->reason));
    } else {
        json_object_set_new(body, "what", json_string(j->why));
    }
    eng_event(e, "alert", "critical", j->a.service, json_deep_copy(body));
    eng_alert_send(e, &j->a, body, alert_done, j);
}

/* genome: the cell's executor runs on the pool (writes files, runs apply
 * commands) like a playbook would */
static void genome_work(uv_work_t *w)
{
    job *j = w->data;
    j->rc = j->e->genome_fn(j->e->genome_ud, j->a.key, j->a.value, j->msg, sizeof j->msg);
    if (!j->rc && !j->msg[0])
        snprintf(j->msg, sizeof j->msg, "done");
}

static void genome_after(uv_work_t *w, int status)
{
    job *j = w->data;
    if (pool_job_dropped(j, status))
        return;
    action_done(j);
}

void heal_engine_set_genome(heal_engine *e, heal_genome_fn fn, void *ud)
{
    e->genome_fn = fn;
    e->genome_ud = ud;
}

void heal_engine_set_nice_device(heal_engine *e, const char *path)
{
    core_sncpy(e->nice_device, sizeof e->nice_device, path ? path : "");
}

/* Runs the action (its intent is on disk). Finishes through action_done,
 * now or from a callback. */
static void run_action(job *j)
{
    heal_engine *e = j->e;
    heal_action *a = &j->a;
    if (j->d.simulated) { /* approved under --dry-run */
        snprintf(j->msg, sizeof j->msg, "dry run: not executed");
        action_done(j);
        return;
    }
    pid_t pid;
    switch (a->kind) {
    case HEAL_ACT_START:
    case HEAL_ACT_STOP:
    case HEAL_ACT_RESTART:
    case HEAL_ACT_SIGNAL: {
        heal_supervisor *sup = eng_sup_of(e, a->service);
        if (!sup) {
            j->rc = -ENOENT;
            snprintf(j->msg, sizeof j->msg, "no running service '%s'", a->service);
            break;
        }
        eng_svc *s = eng_find_svc(e, a->service);
        bool up = a->kind == HEAL_ACT_RESTART || a->kind == HEAL_ACT_START;
        if (s && s->frozen && a->kind != HEAL_ACT_START) { /* a frozen process would not see the signal */
            char dir[CORE_PATH_MAX], m[256];
            pid = svc_pid(e, a->service);
            if (pid > 0 && eng_sys_freeze(pid, false, dir, sizeof dir, m, sizeof m) == 0)
                log_info("heal: %s: %s before %s", a->service, m, heal_action_name(a->kind));
            s->frozen = false;
        }
        if (s && up)
            s->restarting = true; /* RUNNING may come inside heal_service_act */
        j->rc = heal_service_act(sup, a, j->msg, sizeof j->msg);
        if (s && up && j->rc)
            s->restarting = false;
        if (!j->rc) {
            snprintf(j->msg, sizeof j->msg, "done");
            if (s && up)
                eng_note_restart(s, core_now_ms());
            if (s && a->kind == HEAL_ACT_STOP)
                s->flap_stopped = false; /* stopped on purpose: no retry after the cool-down */
        }
        break;
    }
    case HEAL_ACT_RENICE:
        pid = svc_pid(e, a->service);
        j->rc = pid > 0 ? eng_sys_renice(pid, a->nice, e->nice_device[0] ? e->nice_device : NULL,
                                             j->msg, sizeof j->msg) : -ESRCH;
        if (pid <= 0)
            snprintf(j->msg, sizeof j->msg, "service '%s' has no process", a->service);
        break;
    case HEAL_ACT_SIGNAL_PID:
        if ((j->rc = eng_pid_still(a, j->msg, sizeof j->msg)))
            break;
        j->rc = kill(a->pid, a->signum) ? -errno : 0;
        snprintf(j->msg, sizeof j->msg, "%s pid %d (%s)%s%s", j->rc ? "cannot signal" : "signalled", a->pid, a->comm,
                 j->rc ? ": " : "", j->rc ? strerror(-j->rc) : "");
        break;
    case HEAL_ACT_RENICE_PID:
        if ((j->rc = eng_pid_still(a, j->msg, sizeof j->msg)))
            break;
        j->rc = eng_sys_renice(a->pid, a->nice, e->nice_device[0] ? e->nice_device : NULL, j->msg, sizeof j->msg);
        break;
    case HEAL_ACT_RESTORE:
        j->w.data = j;
        eng_files_restoring(e, a, true);
        if (uv_queue_work(e->loop, &j->w, restore_work, restore_after) == 0)
            return;
        eng_files_restoring(e, a, false);
        j->rc = -EIO;
        snprintf(j->msg, sizeof j->msg, "cannot queue the restore");
        break;
    case HEAL_ACT_LIMIT_MEMORY:
    case HEAL_ACT_LIMIT_CPU:
        pid = svc_pid(e, a->service);
        j->rc = pid > 0 ? eng_sys_limit(a->service, pid, a->kind == HEAL_ACT_LIMIT_MEMORY, a->bytes, a->cpu_percent,
                                        j->msg, sizeof j->msg)
                        : -ESRCH;
        if (pid <= 0)
            snprintf(j->msg, sizeof j->msg, "service '%s' has no process", a->service);
        break;
    case HEAL_ACT_FREEZE:
    case HEAL_ACT_THAW: {
        char dir[CORE_PATH_MAX];
        pid = svc_pid(e, a->service);
        j->rc = pid > 0 ? eng_sys_freeze(pid, a->kind == HEAL_ACT_FREEZE, dir, sizeof dir, j->msg, sizeof j->msg)
                        : -ESRCH;
        if (pid <= 0)
            snprintf(j->msg, sizeof j->msg, "service '%s' has no process", a->service);
        eng_svc *s = eng_find_svc(e, a->service);
        if (s && j->rc == 0)
            s->frozen = a->kind == HEAL_ACT_FREEZE;
        break;
    }
    case HEAL_ACT_SYSCTL: {
        char old[256] = "";
        j->rc = eng_sys_sysctl(a->key, a->value, old, sizeof old, j->msg, sizeof j->msg);
        if (j->rc == 0 && old[0])
            remember_sysctl(e, a->key, old);
        break;
    }
    case HEAL_ACT_CLEAN:
        j->w.data = j;
        if (uv_queue_work(e->loop, &j->w, clean_work, clean_after) == 0)
            return;
        j->rc = -EIO;
        snprintf(j->msg, sizeof j->msg, "cannot queue the cleaning");
        break;
    case HEAL_ACT_PLAYBOOK:
        j->rc = run_playbook(j);
        if (!j->rc)
            return;
        break;
    case HEAL_ACT_ALERT:
        run_alert(j);
        return;
    case HEAL_ACT_GENOME:
        if (!e->genome_fn) {
            j->rc = -ENOSYS;
            snprintf(j->msg, sizeof j->msg, "genome changes are unavailable (evolution is not running)");
            break;
        }
        j->w.data = j;
        if (uv_queue_work(e->loop, &j->w, genome_work, genome_after) == 0)
            return;
        j->rc = -EIO;
        snprintf(j->msg, sizeof j->msg, "cannot queue the genome change");
        break;
    default:
        j->rc = -EINVAL;
        snprintf(j->msg, sizeof j->msg, "unknown action");
    }
    action_done(j);
}

/* ---- deciding ------------------------------------------------------------------------------ */

static void flap_alert(incident *inc, const heal_decision *d)
{
    snprintf(inc->reason, sizeof inc->reason, "%s", d->reason);
    if (inc->nactions >= HEAL_RULE_ACTIONS_MAX)
        return;
    heal_action *al = &inc->actions[inc->nactions++];
    memset(al, 0, sizeof *al);
    al->kind = HEAL_ACT_ALERT;
    snprintf(al->service, sizeof al->service, "%s", inc->service);
}

/* Records an action that does not run now (recorded, queued, refused). */
static void not_run(heal_engine *e, incident *inc, const heal_action *a, const heal_decision *d, const char *why)
{
    eng_audit_decision(e, a, d, why, HEAL_AUDIT_DECISION);
    json_t *p = action_payload(a, d, inc ? inc->id : 0, why);
    const char *type, *outcome;
    switch (d->verdict) {
    case HEAL_VERDICT_RECORD_ONLY:
        type = "heal.action", outcome = "recorded";
        json_object_set_new(p, "would", json_true());
        break;
    case HEAL_VERDICT_QUEUE:
        type = "heal.pending", outcome = "queued";
        json_object_set_new(p, "pending_id", json_integer((json_int_t)d->pending_id));
        break;
    default:
        type = "heal.refused", outcome = "refused";
        json_object_set_new(p, "refusal", json_string(heal_refusal_name(d->refusal)));
        if (d->refusal == HEAL_REFUSE_FLAPPING && (a->kind == HEAL_ACT_RESTART || a->kind == HEAL_ACT_START)) {
            eng_svc *s = eng_find_svc(e, a->service);
            if (s)
                s->flap_stopped = true;
            if (inc)
                inc->flap_refused = true;
        }
        break;
    }
    eng_event(e, type, d->verdict == HEAL_VERDICT_REFUSE ? "warning" : "info", a->service, p);
    log_info("heal: %s %s: %s", a->service, outcome, d->reason);
    if (inc)
        eng_incident_action_done(inc, a, outcome, d->reason, false, false);
}

void eng_act_next(incident *inc)
{
    heal_engine *e = inc->e;
    char why[HEAL_RULE_LINE_MAX + 400];
    if (inc->by[0])
        snprintf(why, sizeof why, "incident %llu: proposed by %s: %s (%s)", (unsigned long long)inc->id, inc->by,
                 inc->why, inc->what);
    else
        snprintf(why, sizeof why, "incident %llu: %s (%s)", (unsigned long long)inc->id, inc->what, inc->where);
    while (inc->next < inc->nactions) {
        heal_action *a = &inc->actions[inc->next++];
        heal_decision d;
        if (!eng_target_refused(e, a, &d))
            heal_policy_decide(e->policy, a, why, core_mono_ms(), &d);
        if (d.verdict == HEAL_VERDICT_EXECUTE && inc->ask && !d.simulated)
            heal_policy_queue(e->policy, a, why, core_mono_ms(), &d); /* a preference: a person decides */
        if (d.verdict == HEAL_VERDICT_EXECUTE) {
            job *j = job_new(e, inc, a, &d, why);
            if (j) {
                audit_queue(j, J_INTENT);
                return; /* continues from the result's audit_after */
            }
            eng_incident_action_done(inc, a, "failed", "out of memory", false, true);
            continue;
        }
        not_run(e, inc, a, &d, why);
        if (d.raise_alert)
            flap_alert(inc, &d);
    }
    eng_incident_actions_finished(inc);
}

/* ---- approval ----------------------------------------------------------------------------------- */

int heal_engine_approve(heal_engine *e, uint64_t id, const char *who, char *err, size_t errlen)
{
    heal_pending p;
    heal_decision d;
    int rc = heal_policy_approve(e->policy, id, core_mono_ms(), &p, &d, err, errlen);
    if (rc)
        return rc;
    char why[400];
    snprintf(why, sizeof why, "approved by %s: %s", who ? who : "?", p.why);
    d.pending_id = id;
    heal_decision td;
    if (eng_target_refused(e, &p.action, &td)) { /* the pid is another process now, the copy is gone, ... */
        td.pending_id = id;
        eng_audit_decision(e, &p.action, &td, why, HEAL_AUDIT_DECISION);
        snprintf(err, errlen, "refused: %s", td.reason);
        eng_publish(e);
        return -EPERM;
    }
    eng_audit_decision(e, &p.action, &d, why, HEAL_AUDIT_APPROVAL);
    job *j = job_new(e, NULL, &p.action, &d, why);
    if (!j)
        return -ENOMEM;
    audit_queue(j, J_INTENT);
    eng_publish(e);
    return 0;
}

int heal_engine_reject(heal_engine *e, uint64_t id, const char *who, char *err, size_t errlen)
{
    heal_pending p;
    int rc = heal_policy_reject(e->policy, id, core_mono_ms(), &p, err, errlen);
    if (rc)
        return rc;
    heal_decision d = {.verdict = HEAL_VERDICT_REFUSE, .mode = HEAL_MODE_SUGGEST, .pending_id = id};
    snprintf(d.reason, sizeof d.reason, "rejected by %s", who ? who : "?");
    eng_audit_decision(e, &p.action, &d, p.why, HEAL_AUDIT_REJECTION);
    eng_event(e, "heal.rejected", "info", p.action.service, action_payload(&p.action, &d, 0, p.why));
    eng_publish(e);
    return 0;
}

/* ---- approval with an edit ------------------------------------------------------------------ */

static int pending_find(heal_engine *e, uint64_t id, heal_pending *out)
{
    size_t n = heal_policy_pending_list(e->policy, core_mono_ms(), NULL, 0);
    heal_pending *v = n ? calloc(n, sizeof *v) : NULL;
    int rc = -ENOENT;
    if (v) {
        n = heal_policy_pending_list(e->policy, core_mono_ms(), v, n);
        for (size_t i = 0; i < n && rc; i++)
            if (v[i].id == id) {
                *out = v[i];
                rc = 0;
            }
    }
    free(v);
    return rc;
}

int heal_engine_approve_edit(heal_engine *e, uint64_t id, const char *who, const char *edit, char *err,
                             size_t errlen)
{
    heal_pending p;
    if (pending_find(e, id, &p) != 0) {
        snprintf(err, errlen, "cannot approve #%llu: no such pending action (see `ippoc pending`)",
                 (unsigned long long)id);
        return -ENOENT;
    }
    heal_action ed;
    char perr[256], orig[256], text[256], why[HEAL_RULE_LINE_MAX + 64];
    if (!edit || heal_action_parse_text(edit, p.action.service, &ed, perr, sizeof perr) != 0) {
        snprintf(err, errlen, "the edit is not an action: %s", edit ? perr : "none given");
        return -EINVAL;
    }
    heal_action_format(&p.action, orig, sizeof orig);
    heal_action_format(&ed, text, sizeof text);
    snprintf(why, sizeof why, "approved by %s (edit of #%llu '%s' -> '%s'): %s", who ? who : "?",
             (unsigned long long)id, orig, text, p.why);
    /* the edited action passes the policy like any other: decided, and
     * when that queues it, approved at once (rate and flap checks) */
    heal_decision d;
    int64_t now = core_mono_ms();
    heal_policy_decide(e->policy, &ed, why, now, &d);
    if (d.verdict == HEAL_VERDICT_QUEUE) {
        heal_pending q;
        uint64_t qid = d.pending_id;
        int rc = heal_policy_approve(e->policy, qid, now, &q, &d, err, errlen);
        if (rc) {
            if (qid != id)
                heal_policy_reject(e->policy, qid, now, NULL, perr, sizeof perr);
            eng_publish(e);
            return rc;
        }
    }
    if (d.verdict == HEAL_VERDICT_REFUSE) {
        eng_audit_decision(e, &ed, &d, why, HEAL_AUDIT_DECISION);
        snprintf(err, errlen, "the edit '%s' is refused: %s", text, d.reason);
        eng_publish(e);
        return -EPERM;
    }
    heal_policy_reject(e->policy, id, now, NULL, perr, sizeof perr); /* replaced by the edit */
    d.pending_id = id;
    heal_decision td;
    if (eng_target_refused(e, &ed, &td)) {
        td.pending_id = id;
        eng_audit_decision(e, &ed, &td, why, HEAL_AUDIT_DECISION);
        snprintf(err, errlen, "refused: %s", td.reason);
        eng_publish(e);
        return -EPERM;
    }
    eng_audit_decision(e, &ed, &d, why, HEAL_AUDIT_APPROVAL);
    job *j = job_new(e, NULL, &ed, &d, why);
    if (!j)
        return -ENOMEM;
    snprintf(j->edit_of, sizeof j->edit_of, "%s", orig);
    audit_queue(j, J_INTENT);
    eng_publish(e);
    return 0;
}

/* ---- changes not tied to an incident ------------------------------------------------------ */

int heal_engine_change(heal_engine *e, const heal_action *act, const char *who, const char *why, char *verdict,
                       size_t vlen, char *err, size_t errlen)
{
    if (vlen)
        verdict[0] = 0;
    if (!act || !heal_action_name(act->kind)) {
        snprintf(err, errlen, "change: not an action");
        return -EINVAL;
    }
    heal_action a = *act;
    if (a.kind == HEAL_ACT_GENOME && !a.service[0])
        core_sncpy(a.service, sizeof a.service, HEAL_CELL_TARGET);
    char reason[HEAL_RULE_LINE_MAX + 64];
    snprintf(reason, sizeof reason, "%s: %s", who && *who ? who : "?", why && *why ? why : "(no reason given)");
    heal_decision d;
    if (!eng_target_refused(e, &a, &d))
        heal_policy_decide(e->policy, &a, reason, core_mono_ms(), &d);
    snprintf(verdict, vlen, "%s", heal_verdict_name(d.verdict));
    int rc = 0;
    if (d.verdict == HEAL_VERDICT_EXECUTE) {
        job *j = job_new(e, NULL, &a, &d, reason);
        if (!j) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        audit_queue(j, J_INTENT);
        snprintf(err, errlen, "%s", d.reason[0] ? d.reason : "running");
    } else {
        not_run(e, NULL, &a, &d, reason);
        if (d.verdict == HEAL_VERDICT_QUEUE)
            snprintf(err, errlen, "pending #%llu: approve with `ippoc approve %llu`", (unsigned long long)d.pending_id,
                     (unsigned long long)d.pending_id);
        else
            snprintf(err, errlen, "%s", d.reason);
        if (d.verdict == HEAL_VERDICT_REFUSE)
            rc = -EPERM;
    }
    eng_publish(e);
    return rc;
}
