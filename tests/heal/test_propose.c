/* test_propose.c: the brain's hands on a real heal engine (a libuv loop, a
 * real memory store and audit log in a temporary state dir, real
 * supervised processes): incidents opened for a diagnosis and keys attached
 * to them, proposed actions run through the policy and the audit log
 * (executed, refused and not run, queued in suggest mode), a closed incident
 * reopened, -EBUSY while its actions run, and the pid-targeted actions:
 * pid 1, ippocd itself (this test process) and its parent are refused, a
 * real child is signalled and reniced, its command named in the audit log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "heal_fx.h"

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef heal_fx fx;

/* %s: the state dir, which holds the config paths too */
static const char *conf = "[heal]\nverify = 5s\n"
                          "[service.web]\ncommand = /bin/sleep 600\nallow = default, signal-process, renice-process\n"
                          "healthy_after = 300ms\nconfig_path = %s/web.conf\nconfig_path = %s/data/\n"
                          "[service.quiet]\ncommand = /bin/sleep 600\nmode = suggest\nconfig_path = %s/quiet.conf\n";

static void put_file(const char *dir, const char *name, const char *text, mode_t mode)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    assert_int_equal(chmod(p, mode), 0);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    heal_fx_tmpdir(f, "propose");
    char text[2048];
    put_file(f->dir, "web.conf", "# web\nlisten = 8080\nworkers = 4\n", 0644);
    put_file(f->dir, "quiet.conf", "x\n", 0644);
    snprintf(text, sizeof text, "%s/data", f->dir);
    assert_int_equal(mkdir(text, 0750), 0);
    snprintf(text, sizeof text, conf, f->dir, f->dir, f->dir);
    heal_fx_start(f, text);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    heal_fx_stop(*state);
    free(*state);
    return 0;
}

/* Runs the loop (and the engine's tick) until pred holds or ms pass. */
static bool run_until(fx *f, bool (*pred)(fx *f, void *ud), void *ud, int ms)
{
    int64_t end = core_mono_ms() + ms, tick = 0;
    while (core_mono_ms() < end) {
        if (pred(f, ud))
            return true;
        uv_run(&f->loop, UV_RUN_ONCE);
        if (core_mono_ms() - tick >= 200) {
            tick = core_mono_ms();
            heal_engine_tick(f->e, core_now_ms());
        }
    }
    return pred(f, ud);
}

static json_t *inc_json(fx *f, uint64_t id)
{
    char *t = heal_engine_incident_json(f->e, id);
    json_t *o = t ? json_loads(t, 0, NULL) : NULL;
    free(t);
    return o;
}

static const char *state_of(json_t *o)
{
    return json_string_value(json_object_get(o, "state")) ?: "";
}

static bool closed(fx *f, void *ud)
{
    json_t *o = inc_json(f, *(uint64_t *)ud);
    const char *s = state_of(o);
    bool done = !strcmp(s, "resolved") || !strcmp(s, "failed");
    json_decref(o);
    return done;
}

static int svc_pid(fx *f, const char *name)
{
    char *t = heal_engine_services_json(f->e);
    json_t *o = t ? json_loads(t, 0, NULL) : NULL, *v;
    free(t);
    size_t i;
    int pid = 0;
    json_array_foreach(json_object_get(o, "services"), i, v) {
        if (!strcmp(json_string_value(json_object_get(v, "name")), name) &&
            !strcmp(json_string_value(json_object_get(v, "state")), "running"))
            pid = (int)json_integer_value(json_object_get(v, "pid"));
    }
    json_decref(o);
    return pid;
}

static bool running(fx *f, void *ud)
{
    return svc_pid(f, ud) > 0;
}

static heal_action parse(const char *text, const char *svc)
{
    heal_action a;
    char err[256];
    if (heal_action_parse_text(text, svc, &a, err, sizeof err))
        fail_msg("%s", err);
    return a;
}

static uint64_t open_incident(fx *f, const char *svc)
{
    uint64_t id = 0;
    char err[256] = "";
    json_t *ev = json_pack("{s:s}", "trigger", "anomaly");
    assert_int_equal(heal_engine_incident_new(f->e, svc, "diagnosis: anomaly in web", ev, &id, err, sizeof err), 0);
    assert_true(id > 0);
    return id;
}

/* ---- the audit log ---- */

typedef heal_fx_find find;

static int audit_count(fx *f, find *q)
{
    return heal_fx_audit_count(f, q);
}

/* ---- tests ---- */

static void test_new_and_attach(void **state)
{
    fx *f = *state;
    char err[256] = "";
    uint64_t id = 0, bad = 0;
    assert_int_equal(heal_engine_incident_new(f->e, "nope", "x", json_object(), &bad, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "no service 'nope'"));
    id = open_incident(f, "web");
    json_t *o = inc_json(f, id);
    assert_non_null(o);
    assert_string_equal(state_of(o), "diagnosing");
    assert_string_equal(json_string_value(json_object_get(o, "what")), "diagnosis: anomaly in web");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "evidence"), "trigger")), "anomaly");
    assert_int_equal(json_array_size(json_object_get(o, "actions")), 0);
    json_decref(o);
    char *svcs = heal_engine_services_json(f->e);
    assert_non_null(strstr(svcs, "\"incidents_open\":1"));
    free(svcs);

    assert_int_equal(heal_engine_incident_attach(f->e, id, "signature", json_pack("{s:[s]}", "features", "probe:tcp:refused")), 0);
    assert_int_equal(heal_engine_incident_attach(f->e, id, "diagnosis", json_pack("{s:s}", "fault_type", "crash")), 0);
    assert_int_equal(heal_engine_incident_attach(f->e, id, "diagnosis", json_pack("{s:s}", "fault_type", "config_error")), 0);
    assert_int_equal(heal_engine_incident_attach(f->e, id, "state", json_string("x")), -EINVAL);
    assert_int_equal(heal_engine_incident_attach(f->e, id, "actions", json_array()), -EINVAL);
    assert_int_equal(heal_engine_incident_attach(f->e, id, "x", NULL), -EINVAL);
    assert_int_equal(heal_engine_incident_attach(f->e, 999, "x", json_true()), -ENOENT);
    o = inc_json(f, id);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "diagnosis"), "fault_type")), "config_error");
    assert_string_equal(json_string_value(json_array_get(json_object_get(json_object_get(o, "signature"), "features"), 0)),
                        "probe:tcp:refused");
    assert_string_equal(state_of(o), "diagnosing");
    json_decref(o);

    /* the incident.open event says "diagnosing" */
    mem_event *ev = NULL;
    size_t n = 0;
    mem_event_query q = {.type = "incident.open", .limit = 10};
    assert_int_equal(mem_events_query(f->m, &q, &ev, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(ev[0].source, "web");
    assert_non_null(strstr(ev[0].payload, "\"state\":\"diagnosing\""));
    mem_events_free(ev, n);

    /* closed by hand: not an open incident any more */
    assert_int_equal(heal_engine_incident_close(f->e, id, true, "nothing wrong"), 0);
    o = inc_json(f, id);
    assert_string_equal(state_of(o), "resolved");
    assert_string_equal(json_string_value(json_object_get(o, "reason")), "nothing wrong");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "diagnosis"), "fault_type")), "config_error");
    json_decref(o);
    assert_int_equal(heal_engine_incident_close(f->e, 999, true, "x"), -ENOENT);
}

static void test_propose_restart_and_refused(void **state)
{
    fx *f = *state;
    char err[256] = "";
    assert_true(run_until(f, running, "web", 10000));
    int pid = svc_pid(f, "web");
    uint64_t id = open_incident(f, "web");
    heal_action acts[2] = {parse("restart", "web")};
    assert_int_equal(heal_engine_propose(f->e, 777, acts, 1, "brain", "x", err, sizeof err), -ENOENT);
    assert_int_equal(heal_engine_propose(f->e, id, acts, 0, "brain", "x", err, sizeof err), -EINVAL);
    assert_int_equal(heal_engine_propose(f->e, id, acts, 1, "brain", "web exits: crash", err, sizeof err), 0);
    assert_int_equal(heal_engine_propose(f->e, id, acts, 1, "brain", "again", err, sizeof err), -EBUSY);
    assert_non_null(strstr(err, "running"));
    assert_true(run_until(f, closed, &id, 15000));
    json_t *o = inc_json(f, id);
    assert_string_equal(state_of(o), "resolved");
    assert_string_equal(json_string_value(json_object_get(o, "by")), "brain");
    assert_string_equal(json_string_value(json_object_get(o, "why")), "web exits: crash");
    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "proposed"), 0)), "restart");
    json_t *r0 = json_array_get(json_object_get(o, "actions"), 0);
    assert_string_equal(json_string_value(json_object_get(r0, "action")), "restart");
    assert_string_equal(json_string_value(json_object_get(r0, "outcome")), "ok");
    assert_string_equal(json_string_value(json_object_get(r0, "by")), "brain");
    json_decref(o);
    assert_true(run_until(f, running, "web", 10000));
    assert_int_not_equal(svc_pid(f, "web"), pid); /* restarted for real */

    /* the outcome event carries who */
    mem_event *ev = NULL;
    size_t n = 0;
    mem_event_query q = {.type = "incident.resolved", .limit = 10};
    assert_int_equal(mem_events_query(f->m, &q, &ev, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_non_null(strstr(ev[0].payload, "\"by\":\"brain\""));
    mem_events_free(ev, n);
    /* intent and result in the audit log, naming the brain */
    find qi = {.kind = "intent", .text = "restart", .reason_has = "proposed by brain: web exits: crash"};
    assert_int_equal(audit_count(f, &qi), 1);
    json_decref(qi.rec);
    find qr = {.kind = "result", .text = "restart", .reason_has = "proposed by brain"};
    assert_int_equal(audit_count(f, &qr), 1);
    json_decref(qr.rec);

    /* reopened for a second attempt: sysctl is not on the allowlist, so it
     * is refused, audited as refused, never run; the first results stay */
    pid = svc_pid(f, "web");
    acts[0] = parse("sysctl vm.swappiness = 10", "web");
    acts[1] = parse("restart", "web");
    assert_int_equal(heal_engine_propose(f->e, id, acts, 1, "brain", "try sysctl", err, sizeof err), 0);
    assert_true(run_until(f, closed, &id, 15000));
    o = inc_json(f, id);
    assert_string_equal(state_of(o), "failed");
    assert_int_equal(json_array_size(json_object_get(o, "actions")), 2);
    json_t *r1 = json_array_get(json_object_get(o, "actions"), 1);
    assert_string_equal(json_string_value(json_object_get(r1, "outcome")), "refused");
    assert_non_null(strstr(json_string_value(json_object_get(r1, "message")), "not allowed"));
    json_decref(o);
    find qd = {.kind = "decision", .text = "sysctl vm.swappiness = 10", .verdict = "refuse",
               .reason_has = "proposed by brain: try sysctl"};
    assert_int_equal(audit_count(f, &qd), 1);
    json_decref(qd.rec);
    find qx = {.kind = "intent", .text = "sysctl vm.swappiness = 10"};
    assert_int_equal(audit_count(f, &qx), 0);
    assert_int_equal(svc_pid(f, "web"), pid);
}

/* Proposes a restart of svc (running, pid into *pid) for a new incident, with
 * heal_engine_propose_ask when ask, and checks that it was queued for a
 * person. Serves the suggest and ask tests. */
static void propose_queued(fx *f, const char *svc, bool ask, const char *reason, int *pid)
{
    char err[256] = "";
    assert_true(run_until(f, running, (void *)svc, 10000));
    *pid = svc_pid(f, svc);
    uint64_t id = open_incident(f, svc);
    heal_action a = parse("restart", svc);
    int rc = ask ? heal_engine_propose_ask(f->e, id, &a, 1, "brain", reason, err, sizeof err)
                 : heal_engine_propose(f->e, id, &a, 1, "brain", reason, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_true(run_until(f, closed, &id, 10000));
    json_t *o = inc_json(f, id);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(o, "actions"), 0), "outcome")),
                        "queued");
    json_decref(o);
}

static void test_propose_suggest_queues(void **state)
{
    fx *f = *state;
    int pid;
    propose_queued(f, "quiet", false, "suggest me", &pid);
    char *p = heal_engine_pending_json(f->e);
    assert_non_null(strstr(p, "\"action\":\"restart\""));
    assert_non_null(strstr(p, "\"service\":\"quiet\""));
    free(p);
    find qd = {.kind = "decision", .text = "restart", .verdict = "queue", .reason_has = "proposed by brain"};
    assert_int_equal(audit_count(f, &qd), 1);
    json_decref(qd.rec);
    assert_int_equal(svc_pid(f, "quiet"), pid); /* not run */
}

static bool stopped(fx *f, void *ud)
{
    return svc_pid(f, ud) == 0;
}

/* heal_engine_propose_ask: what heal mode would run waits for a person;
 * heal_engine_approve_edit: the edit runs instead, if the policy allows it. */
static void test_propose_ask_and_edit(void **state)
{
    fx *f = *state;
    char err[256] = "";
    int pid;
    propose_queued(f, "web", true, "outside the window", &pid);
    assert_int_equal(svc_pid(f, "web"), pid); /* not run */
    char *t = heal_engine_pending_json(f->e);
    json_t *pj = json_loads(t, 0, NULL);
    free(t);
    json_t *p0 = json_array_get(json_object_get(pj, "pending"), 0);
    assert_string_equal(json_string_value(json_object_get(p0, "action")), "restart");
    uint64_t pid_q = (uint64_t)json_integer_value(json_object_get(p0, "id"));
    json_decref(pj);
    find qd = {.kind = "decision", .text = "restart", .verdict = "queue", .reason_has = "brain: outside the window"};
    assert_int_equal(audit_count(f, &qd), 1);
    json_decref(qd.rec);

    /* edits: no action, not allowed (kept pending), unknown id, then one that runs */
    assert_int_equal(heal_engine_approve_edit(f->e, pid_q, "alice", "explode web", err, sizeof err), -EINVAL);
    assert_int_equal(heal_engine_approve_edit(f->e, pid_q, "alice", "sysctl vm.swappiness = 10", err, sizeof err),
                     -EPERM);
    assert_non_null(strstr(err, "refused"));
    assert_int_equal(heal_engine_approve_edit(f->e, 9999, "alice", "stop", err, sizeof err), -ENOENT);
    assert_int_equal(heal_engine_approve_edit(f->e, pid_q, "alice", "stop", err, sizeof err), 0);
    assert_true(run_until(f, stopped, "web", 10000));
    t = heal_engine_pending_json(f->e);
    assert_null(strstr(t, "\"action\":\"restart\"")); /* replaced by the edit */
    free(t);
    find qa = {.kind = "approval", .text = "stop", .reason_has = "approved by alice (edit of #"};
    assert_int_equal(audit_count(f, &qa), 1);
    json_decref(qa.rec);
    mem_event *ev = NULL;
    size_t n = 0;
    assert_int_equal(mem_flush(f->m, 5000), 0);
    mem_event_query q = {.type = "heal.action", .limit = 20};
    assert_int_equal(mem_events_query(f->m, &q, &ev, &n, err, sizeof err), 0);
    bool edited = false;
    for (size_t i = 0; i < n; i++)
        edited |= strstr(ev[i].payload, "\"edit_of\":\"restart\"") != NULL;
    mem_events_free(ev, n);
    assert_true(edited);
}

typedef struct reaped {
    pid_t pid;
    int status;
} reaped;

static bool child_gone(fx *f, void *ud)
{
    (void)f;
    reaped *r = ud;
    return waitpid(r->pid, &r->status, WNOHANG) == r->pid;
}

/* A kernel thread's pid (PF_KTHREAD in /proc/PID/stat's flags), other than
 * kthreadd itself; 0 when none is visible. */
static int kernel_thread(void)
{
    for (int pid = 3; pid < 400; pid++) {
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        FILE *fp = fopen(path, "r");
        size_t n = fp ? fread(buf, 1, sizeof buf - 1, fp) : 0;
        if (fp)
            fclose(fp);
        buf[n] = 0;
        char *p = strrchr(buf, ')');
        unsigned flags = 0;
        if (p && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %u", &flags) == 1 && (flags & 0x00200000u))
            return pid;
    }
    return 0;
}

static void test_pid_targets(void **state)
{
    fx *f = *state;
    char err[256] = "", text[64];
    assert_true(run_until(f, running, "web", 10000));
    uint64_t id = open_incident(f, "web");
    /* pid 1, this process (ippocd's engine lives here) and its parent */
    int pids[3] = {1, (int)getpid(), (int)getppid()};
    const char *want[3] = {"pid 1 (init) is never a target", "it is ippocd itself", "an ancestor of ippocd"};
    heal_action acts[3];
    for (int i = 0; i < 3; i++) {
        snprintf(text, sizeof text, "signal KILL pid %d", pids[i]);
        acts[i] = parse(text, "web");
    }
    assert_int_equal(heal_engine_propose(f->e, id, acts, 3, "brain", "hog", err, sizeof err), 0);
    assert_true(run_until(f, closed, &id, 10000));
    json_t *o = inc_json(f, id);
    assert_string_equal(state_of(o), "failed");
    for (int i = 0; i < 3; i++) {
        json_t *r = json_array_get(json_object_get(o, "actions"), (size_t)i);
        assert_string_equal(json_string_value(json_object_get(r, "outcome")), "refused");
        const char *m = json_string_value(json_object_get(r, "message"));
        if (!strstr(m, want[i]))
            fail_msg("pid %d: '%s' lacks '%s'", pids[i], m, want[i]);
        snprintf(text, sizeof text, "signal KILL pid %d", pids[i]);
        find qd = {.kind = "decision", .text = text, .verdict = "refuse"};
        assert_int_equal(audit_count(f, &qd), 1);
        json_decref(qd.rec);
    }
    json_decref(o);

    /* a kernel thread (when this machine shows one: not in every container) */
    int kthread = kernel_thread();
    if (kthread > 0) {
        snprintf(text, sizeof text, "signal KILL pid %d", kthread);
        acts[0] = parse(text, "web");
        assert_int_equal(heal_engine_propose(f->e, id, acts, 1, "brain", "hog", err, sizeof err), 0);
        assert_true(run_until(f, closed, &id, 10000));
        o = inc_json(f, id);
        json_t *r = json_array_get(json_object_get(o, "actions"), 3);
        assert_non_null(strstr(json_string_value(json_object_get(r, "message")), "it is a kernel thread"));
        json_decref(o);
    } else {
        print_message("no kernel thread visible here: that refusal is not tested\n");
    }
    int base = kthread > 0 ? 4 : 3; /* results so far */

    /* a real process that is not the service: reniced, then signalled */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        execl("/bin/sleep", "sleep", "300", (char *)NULL);
        _exit(127);
    }
    char cmd[64];
    for (int i = 0; i < 200; i++) { /* until the exec is done: its command line is sleep's */
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int)child);
        FILE *fp = fopen(path, "r");
        size_t n = fp ? fread(cmd, 1, sizeof cmd - 1, fp) : 0;
        if (fp)
            fclose(fp);
        cmd[n] = 0;
        if (!strcmp(cmd, "sleep"))
            break;
        usleep(5000);
    }
    snprintf(text, sizeof text, "renice 7 pid %d", (int)child);
    acts[0] = parse(text, "web");
    snprintf(text, sizeof text, "signal TERM pid %d", (int)child);
    acts[1] = parse(text, "web");
    /* on a service whose allowlist does not name signal-process: refused */
    uint64_t qid = open_incident(f, "quiet");
    acts[2] = parse(text, "quiet");
    assert_int_equal(heal_engine_propose(f->e, qid, &acts[2], 1, "brain", "hog", err, sizeof err), 0);
    assert_true(run_until(f, closed, &qid, 10000));
    o = inc_json(f, qid);
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(json_object_get(o, "actions"), 0), "message")),
                           "signal-process is not allowed for service quiet"));
    json_decref(o);
    assert_int_equal(kill(child, 0), 0); /* still alive */

    assert_int_equal(heal_engine_propose(f->e, id, acts, 2, "brain", "cpu hog", err, sizeof err), 0);
    reaped r = {.pid = child};
    assert_true(run_until(f, child_gone, &r, 10000));
    assert_true(WIFSIGNALED(r.status));
    assert_int_equal(WTERMSIG(r.status), SIGTERM);
    assert_true(run_until(f, closed, &id, 10000));
    o = inc_json(f, id);
    assert_int_equal(json_array_size(json_object_get(o, "actions")), (size_t)base + 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(o, "actions"), (size_t)base), "outcome")), "ok");
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(o, "actions"), (size_t)base + 1), "outcome")), "ok");
    json_decref(o);
    /* the audit log names the pid and its command */
    find qi = {.kind = "intent", .text = text, .reason_has = "proposed by brain: cpu hog"};
    assert_int_equal(audit_count(f, &qi), 1);
    json_t *act = json_object_get(qi.rec, "action");
    assert_int_equal(json_integer_value(json_object_get(act, "pid")), child);
    assert_string_equal(json_string_value(json_object_get(act, "command")), "sleep 300");
    json_decref(qi.rec);
    snprintf(text, sizeof text, "renice 7 pid %d", (int)child);
    find qn = {.kind = "result", .text = text};
    assert_int_equal(audit_count(f, &qn), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(qn.rec, "outcome"), "status")), "ok");
    json_decref(qn.rec);

    /* the process is gone now: refused, not run */
    acts[0] = acts[1];
    assert_int_equal(heal_engine_propose(f->e, id, acts, 1, "brain", "again", err, sizeof err), 0);
    assert_true(run_until(f, closed, &id, 10000));
    o = inc_json(f, id);
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(json_object_get(o, "actions"), (size_t)base + 2), "message")),
                           "no such process"));
    json_decref(o);
}

static bool has_copy(fx *f, void *ud)
{
    char *t = heal_engine_services_json(f->e);
    json_t *o = t ? json_loads(t, 0, NULL) : NULL, *v, *p;
    free(t);
    size_t i, k;
    bool yes = false;
    json_array_foreach(json_object_get(o, "services"), i, v) {
        json_array_foreach(json_object_get(v, "config_paths"), k, p) {
            if (strstr(json_string_value(json_object_get(p, "path")), ud) && json_object_get(p, "known_good_ms") &&
                !json_is_true(json_object_get(p, "differs")))
                yes = true;
        }
    }
    json_decref(o);
    return yes;
}

typedef struct evq {
    const char *type, *has;
    char *payload; /* the newest match */
} evq;

static bool has_event(fx *f, void *ud)
{
    evq *q = ud;
    mem_event *ev = NULL;
    size_t n = 0;
    char err[256];
    mem_event_query mq = {.type = q->type, .limit = 100};
    if (mem_events_query(f->m, &mq, &ev, &n, err, sizeof err))
        return false;
    for (size_t i = 0; i < n && !q->payload; i++)
        if (strstr(ev[i].payload, q->has))
            q->payload = strdup(ev[i].payload);
    mem_events_free(ev, n);
    return q->payload != NULL;
}

static char *wait_event(fx *f, const char *type, const char *has)
{
    evq q = {.type = type, .has = has};
    if (!run_until(f, has_event, &q, 5000))
        fail_msg("no %s event with %s", type, has);
    return q.payload;
}

static void read_text(const char *dir, const char *name, char *out, size_t n, struct stat *st)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    size_t r = fread(out, 1, n - 1, fp);
    out[r] = 0;
    fclose(fp);
    assert_int_equal(stat(p, st), 0);
}

/* propose one action on a new incident of service; runs it to the end */
static json_t *propose_one(fx *f, const char *service, const char *text)
{
    char err[256] = "";
    uint64_t id = open_incident(f, service);
    heal_action a = parse(text, service);
    assert_int_equal(heal_engine_propose(f->e, id, &a, 1, "brain", "config broken", err, sizeof err), 0);
    assert_true(run_until(f, closed, &id, 10000));
    json_t *o = inc_json(f, id);
    json_t *r = json_deep_copy(json_array_get(json_object_get(o, "actions"), 0));
    json_decref(o);
    assert_non_null(r);
    return r;
}

static const char *outcome(json_t *r)
{
    return json_string_value(json_object_get(r, "outcome")) ?: "";
}

static const char *message(json_t *r)
{
    return json_string_value(json_object_get(r, "message")) ?: "";
}

static void test_config_path_restore(void **state)
{
    fx *f = *state;
    char path[256], text[512];
    struct stat st;
    assert_true(run_until(f, running, "web", 10000));
    /* healthy for its healthy_after (300ms): copies taken */
    assert_true(run_until(f, has_copy, "/web.conf", 10000));
    assert_true(run_until(f, has_copy, "/data", 10000));
    /* the copy is on disk, private */
    snprintf(path, sizeof path, "%s/known-good/web", f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    /* broken: content and mode; one file.changed with the diff */
    put_file(f->dir, "web.conf", "# web\nlisten = 80800\nworkers = 4\n", 0600);
    char *p = wait_event(f, "file.changed", "web.conf");
    json_t *o = json_loads(p, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "was"), "mode")), "0644");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "now"), "mode")), "0600");
    assert_int_equal(json_string_length(json_object_get(json_object_get(o, "now"), "sha256")), 64);
    json_t *diff = json_object_get(o, "diff");
    assert_int_equal(json_array_size(diff), 2);
    assert_string_equal(json_string_value(json_array_get(diff, 0)), "-listen = 8080");
    assert_string_equal(json_string_value(json_array_get(diff, 1)), "+listen = 80800");
    assert_false(json_is_true(json_object_get(o, "known_good")));
    json_decref(o);
    free(p);
    /* once per change: no second event for the same change */
    for (int i = 0; i < 3; i++)
        heal_engine_tick(f->e, core_now_ms());
    mem_event *ev = NULL;
    size_t n = 0;
    char err[256];
    mem_event_query mq = {.type = "file.changed", .limit = 100};
    assert_int_equal(mem_events_query(f->m, &mq, &ev, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    mem_events_free(ev, n);

    /* the copy is not refreshed from a change the running service never loaded */
    int64_t until = core_mono_ms() + 800;
    while (core_mono_ms() < until) {
        uv_run(&f->loop, UV_RUN_ONCE);
        heal_engine_tick(f->e, core_now_ms());
    }
    assert_false(has_copy(f, "/web.conf"));

    /* restore: content and mode back, file.restored */
    snprintf(text, sizeof text, "restore %s/web.conf", f->dir);
    json_t *r = propose_one(f, "web", text);
    if (strcmp(outcome(r), "ok"))
        fail_msg("restore: %s: %s", outcome(r), message(r));
    assert_non_null(strstr(message(r), "restored from the known-good copy"));
    json_decref(r);
    char now[256];
    read_text(f->dir, "web.conf", now, sizeof now, &st);
    assert_string_equal(now, "# web\nlisten = 8080\nworkers = 4\n");
    assert_int_equal(st.st_mode & 07777, 0644);
    p = wait_event(f, "file.restored", "web.conf");
    assert_non_null(strstr(p, "\"ok\":true"));
    free(p);
    find qi = {.kind = "intent", .text = text, .reason_has = "proposed by brain"};
    assert_int_equal(audit_count(f, &qi), 1);
    json_decref(qi.rec);
    /* no file.changed for our own write */
    for (int i = 0; i < 3; i++)
        heal_engine_tick(f->e, core_now_ms());
    assert_int_equal(mem_events_query(f->m, &mq, &ev, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    mem_events_free(ev, n);

    /* deleted: file.changed with now = null; restore puts it back */
    snprintf(path, sizeof path, "%s/web.conf", f->dir);
    assert_int_equal(unlink(path), 0);
    p = wait_event(f, "file.changed", "\"now\":null");
    free(p);
    r = propose_one(f, "web", text);
    assert_string_equal(outcome(r), "ok");
    json_decref(r);
    read_text(f->dir, "web.conf", now, sizeof now, &st);
    assert_string_equal(now, "# web\nlisten = 8080\nworkers = 4\n");

    /* a change the service loads (a restart, then healthy): the copy follows it */
    put_file(f->dir, "web.conf", "# web\nlisten = 8081\nworkers = 4\n", 0640);
    p = wait_event(f, "file.changed", "+listen = 8081");
    free(p);
    assert_false(has_copy(f, "/web.conf"));
    r = propose_one(f, "web", "restart");
    assert_string_equal(outcome(r), "ok");
    json_decref(r);
    assert_true(run_until(f, has_copy, "/web.conf", 10000));
    snprintf(text, sizeof text, "restore %s/web.conf", f->dir);
    put_file(f->dir, "web.conf", "garbage\n", 0600);
    r = propose_one(f, "web", text);
    assert_string_equal(outcome(r), "ok");
    json_decref(r);
    read_text(f->dir, "web.conf", now, sizeof now, &st);
    assert_string_equal(now, "# web\nlisten = 8081\nworkers = 4\n");
    assert_int_equal(st.st_mode & 07777, 0640);

    /* a directory: mode back */
    snprintf(path, sizeof path, "%s/data", f->dir);
    assert_int_equal(chmod(path, 0), 0);
    p = wait_event(f, "file.changed", "\"mode\":\"0000\"");
    assert_non_null(strstr(p, "\"type\":\"directory\""));
    free(p);
    snprintf(text, sizeof text, "restore %s/data", f->dir);
    r = propose_one(f, "web", text);
    assert_string_equal(outcome(r), "ok");
    json_decref(r);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0750);

    /* refused: not a config_path of the service; no copy yet (quiet's
     * healthy_after is the default 10 s); never run, audited as refused */
    snprintf(text, sizeof text, "restore %s/quiet.conf", f->dir);
    r = propose_one(f, "web", text);
    assert_string_equal(outcome(r), "refused");
    assert_non_null(strstr(message(r), "not one of the config_path of service 'web'"));
    json_decref(r);
    find qd = {.kind = "decision", .text = text, .verdict = "refuse"};
    assert_int_equal(audit_count(f, &qd), 1);
    json_decref(qd.rec);
    heal_action a = parse(text, "quiet");
    heal_decision d;
    assert_true(eng_target_refused(f->e, &a, &d));
    assert_int_equal(d.refusal, HEAL_REFUSE_TARGET);
    assert_non_null(strstr(d.reason, "no known-good copy yet"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_and_attach, setup, teardown),
        cmocka_unit_test_setup_teardown(test_propose_restart_and_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_propose_suggest_queues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_propose_ask_and_edit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pid_targets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_path_restore, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
