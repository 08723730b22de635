/* engine_rules.c: evaluating the rules: one probe per "failed" rule (its
 * results arrive in on_probe), resource rules measured once a second on the
 * tick, anomalous(METRIC) rules asked of the daemon's detection through a
 * hook on the tick, restart counts in a sliding window; a rule whose
 * condition held long enough opens an incident and starts its actions. */
#include "heal/engine_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* ---- firing ----------------------------------------------------------------------- */

bool eng_svc_busy(heal_engine *e, const char *service)
{
    for (incident *inc = e->incidents; inc; inc = inc->next_inc)
        if ((inc->state == INC_ACTING || inc->state == INC_VERIFYING) && !strcmp(inc->service, service))
            return true;
    return false;
}

static bool svc_ready(heal_engine *e, eng_svc *s, int64_t grace_ms)
{
    heal_supervisor *sup = eng_sup_of(e, s->cfg.sc.name);
    heal_service_info in;
    if (!sup || heal_service_info_get(sup, s->cfg.sc.name, &in))
        return false;
    return in.state == HEAL_SVC_RUNNING && in.uptime_ms >= grace_ms;
}

static void fire(eng_rule *r, int64_t since_ms, json_t *detail)
{
    heal_engine *e = r->e;
    const char *svc = r->svc ? r->svc->cfg.sc.name : "";
    char text[HEAL_RULE_LINE_MAX + 64], where[300];
    if (heal_rule_format(&r->r, text, sizeof text))
        snprintf(text, sizeof text, "(rule)");
    eng_metric_what(text, sizeof text, detail); /* a METRIC rule names its series */
    snprintf(where, sizeof where, "%s:%d", r->r.file, r->r.line);
    heal_action acts[HEAL_RULE_ACTIONS_MAX];
    bool wants_running = false;
    for (int i = 0; i < r->r.nactions; i++) {
        acts[i] = r->r.actions[i];
        if (!acts[i].service[0])
            snprintf(acts[i].service, sizeof acts[i].service, "%s", svc);
        wants_running |= acts[i].kind == HEAL_ACT_RESTART || acts[i].kind == HEAL_ACT_START;
    }
    json_t *ev = r->svc ? eng_svc_evidence(e, r->svc) : json_object();
    json_object_set_new(ev, "condition", detail);
    incident *inc = eng_incident_open(e, svc, text, where, acts, r->r.nactions, since_ms, ev);
    if (!inc)
        return;
    inc->wants_running = wants_running;
    r->incident_id = inc->id;
    r->hits = 0;
    r->since_ms = 0;
    r->latched = r->r.cond.kind == HEAL_COND_RESOURCE || r->r.cond.kind == HEAL_COND_ANOMALOUS;
    eng_act_next(inc);
}

/* ---- probes ------------------------------------------------------------------------- */

static pid_t rule_pid(void *ud)
{
    eng_rule *r = ud;
    heal_supervisor *sup = r->svc ? eng_sup_of(r->e, r->svc->cfg.sc.name) : NULL;
    heal_service_info in;
    if (!sup || heal_service_info_get(sup, r->svc->cfg.sc.name, &in))
        return 0;
    return in.pid;
}

static void on_probe(heal_probe *p, const heal_probe_result *res, void *ud)
{
    (void)p;
    eng_rule *r = ud;
    heal_engine *e = r->e;
    r->probe_ok = res->ok;
    r->probe_seq = res->seq;
    snprintf(r->last_msg, sizeof r->last_msg, "%s", res->message ? res->message : "");
    if (res->ok) {
        r->since_ms = 0;
        eng_deps_check(e);
        return;
    }
    if (!r->since_ms)
        r->since_ms = res->ts_ms - (int64_t)res->latency_ms;
    const char *svc = r->svc ? r->svc->cfg.sc.name : "";
    int64_t iv = heal_probe_get_config(r->probe)->interval_ms;
    if (e->stopping || eng_svc_busy(e, svc) || (r->svc && !svc_ready(e, r->svc, iv)))
        return;
    bool held = r->r.for_ms ? res->ts_ms - r->since_ms >= r->r.for_ms : res->consecutive_failures >= r->r.for_checks;
    if (!held)
        return;
    fire(r, r->since_ms, json_pack("{s:s, s:s, s:b, s:i, s:f, s:i}", "probe", heal_probe_kind_name(r->r.cond.probe.kind),
                                   "message", r->last_msg, "timed_out", res->timed_out, "code", res->code,
                                   "latency_ms", res->latency_ms, "failures", res->consecutive_failures));
}

/* heal_probe_spec (the rule's words) -> heal_probe_config (the probe's). */
static int probe_config(eng_rule *r, heal_probe_config *pc, char ***argv, char *err, size_t errlen)
{
    const heal_probe_spec *ps = &r->r.cond.probe;
    int64_t iv, to;
    int rc = heal_probe_timing(ps, r->svc ? r->svc->cfg.probe_interval_ms : 0, &iv, &to, err, errlen);
    if (rc)
        return rc;
    if (to >= iv) /* the probe wants the timeout strictly inside the interval */
        to = iv - 1;
    memset(pc, 0, sizeof *pc);
    pc->name = r->svc ? r->svc->cfg.sc.name : "heal";
    pc->interval_ms = iv;
    pc->timeout_ms = to;
    pc->threshold = r->r.for_ms ? 1 : r->r.for_checks;
    switch (ps->kind) {
    case HEAL_PROBE_HTTP:
    case HEAL_PROBE_HTTPS:
        pc->type = HEAL_PT_HTTP;
        pc->http.url = ps->url;
        pc->http.status_min = ps->status_min;
        pc->http.status_max = ps->status_max;
        pc->http.body_regex = ps->body[0] ? ps->body : NULL;
        pc->http.max_latency_ms = ps->max_latency_ms;
        break;
    case HEAL_PROBE_TCP:
        pc->type = HEAL_PT_TCP;
        pc->tcp.host = ps->host;
        pc->tcp.port = ps->port;
        pc->tcp.max_latency_ms = ps->max_latency_ms;
        break;
    case HEAL_PROBE_PROCESS:
        pc->type = HEAL_PT_PROCESS;
        pc->process.pid_fn = rule_pid;
        pc->process.pid_ud = r;
        break;
    case HEAL_PROBE_EXEC:
        pc->type = HEAL_PT_EXEC;
        rc = heal_svc_split_argv(ps->program, argv, err, errlen);
        if (rc < 0)
            return rc;
        pc->exec.argv = (const char *const *)*argv;
        break;
    case HEAL_PROBE_FILE:
        pc->type = HEAL_PT_FILE;
        pc->file.path = ps->path;
        if (ps->file_check == HEAL_FILE_AGE)
            pc->file.max_age_ms = ps->file_age_ms;
        else if (ps->file_check == HEAL_FILE_SIZE)
            pc->file.max_size = ps->file_size;
        else if (ps->file_check == HEAL_FILE_CHECKSUM)
            pc->file.sha256 = ps->sha256;
        break;
    default:
        snprintf(err, errlen, "probe kind %d not supported", (int)ps->kind);
        return -EINVAL;
    }
    return 0;
}

int eng_rules_start(heal_engine *e, eng_svc *s, eng_rule *rules, int n, char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        eng_rule *r = &rules[i];
        r->metric.nseries = -1;
        r->last_value = NAN;
        if (r->r.cond.kind != HEAL_COND_PROBE_FAILED)
            continue;
        heal_probe_config pc;
        char **argv = NULL, why[512];
        int rc = probe_config(r, &pc, &argv, why, sizeof why);
        if (!rc)
            rc = heal_probe_new(e->loop, &pc, on_probe, r, &r->probe, why, sizeof why);
        free(argv);
        if (rc) {
            snprintf(err, errlen, "%s:%d: %s", r->r.file, r->r.line, why);
            return rc;
        }
        heal_probe_start(r->probe);
    }
    (void)s;
    return 0;
}

void eng_rules_stop(eng_rule *rules, int n)
{
    for (int i = 0; i < n; i++) {
        heal_probe_free(rules[i].probe);
        rules[i].probe = NULL;
        eng_metric_set_free(&rules[i].metric);
    }
}

void eng_probes_mark(eng_svc *s)
{
    for (int i = 0; i < s->nrules; i++)
        s->rules[i].verify_seq = s->rules[i].probe_seq;
}

void eng_probes_run_now(eng_svc *s)
{
    for (int i = 0; i < s->nrules; i++)
        if (s->rules[i].probe && (s->rules[i].probe_seq == s->rules[i].verify_seq || !s->rules[i].probe_ok))
            heal_probe_run_now(s->rules[i].probe);
}

bool eng_probes_ok(eng_svc *s)
{
    for (int i = 0; i < s->nrules; i++) {
        const eng_rule *r = &s->rules[i];
        if (r->probe && (r->probe_seq <= r->verify_seq || !r->probe_ok))
            return false;
    }
    return true;
}

/* ---- resources ------------------------------------------------------------------------- */

void eng_svc_sample(eng_svc *s, pid_t pid, int64_t now_ms)
{
    uint64_t ticks;
    double rss, threads, fds;
    if (pid <= 0 || eng_sys_tree(pid, &ticks, &rss, &threads, &fds, &s->nprocs)) {
        s->cpu_pid = 0;
        s->cpu_percent = s->rss_bytes = s->threads = s->fds = NAN;
        return;
    }
    if (pid == s->cpu_pid && now_ms > s->cpu_at_ms && ticks < s->cpu_ticks) {
        s->cpu_percent = NAN; /* a child ended and took its ticks: no rate this time */
    } else if (pid == s->cpu_pid && now_ms > s->cpu_at_ms) {
        double hz = (double)sysconf(_SC_CLK_TCK);
        s->cpu_percent = 100.0 * ((double)(ticks - s->cpu_ticks) / hz) / ((double)(now_ms - s->cpu_at_ms) / 1000.0);
    } else if (pid != s->cpu_pid) {
        s->cpu_percent = NAN; /* a new process: no rate yet */
    }
    s->cpu_pid = pid;
    s->cpu_ticks = ticks;
    s->cpu_at_ms = now_ms;
    s->rss_bytes = rss;
    s->threads = threads;
    s->fds = fds;
}

static double fs_used(const char *path, bool inodes)
{
    struct statvfs v;
    if (statvfs(path, &v))
        return NAN;
    if (inodes)
        return v.f_files ? 100.0 * (double)(v.f_files - v.f_ffree) / (double)v.f_files : NAN;
    double used = (double)(v.f_blocks - v.f_bfree), avail = (double)v.f_bavail;
    return used + avail > 0 ? 100.0 * used / (used + avail) : NAN;
}

static double measure(heal_engine *e, eng_rule *r)
{
    const heal_resource *res = &r->r.cond.res;
    eng_svc *s = r->svc;
    switch (res->kind) {
    case HEAL_RES_CPU: return s ? s->cpu_percent : NAN;
    case HEAL_RES_MEMORY: return s ? s->rss_bytes : NAN;
    case HEAL_RES_THREADS: return s ? s->threads : NAN;
    case HEAL_RES_FDS: return s ? s->fds : NAN;
    case HEAL_RES_SPACE: return fs_used(res->path, false);
    case HEAL_RES_INODES: return fs_used(res->path, true);
    case HEAL_RES_METRIC: /* every series of the family holding the rule's labels */
        return eng_metric_eval(e->mem, &r->metric, res, &r->hit) ? NAN : r->hit.value;
    default: return NAN;
    }
}

/* A condition rule's bookkeeping: a false evaluation ends the stretch; a
 * true one counts, and the rule may fire once the condition has held for N
 * checks or a duration and its service is ready. Once per stretch (renice or
 * limit does not end it). */
static void cond_clear(eng_rule *r)
{
    r->hits = 0;
    r->since_ms = 0;
    r->latched = false;
}

static bool cond_held(heal_engine *e, eng_rule *r, int64_t now_ms)
{
    if (r->latched)
        return false;
    r->hits++;
    if (!r->since_ms)
        r->since_ms = now_ms;
    bool held = r->r.for_ms ? now_ms - r->since_ms >= r->r.for_ms : r->hits >= r->r.for_checks;
    const char *svc = r->svc ? r->svc->cfg.sc.name : "";
    return held && !eng_svc_busy(e, svc) && !(r->svc && !svc_ready(e, r->svc, 0));
}

static void eval_resource(heal_engine *e, eng_rule *r, int64_t now_ms)
{
    double v = measure(e, r);
    r->last_value = v;
    const heal_resource *res = &r->r.cond.res;
    if (isnan(v) || !heal_cmp_eval(res->op, v, res->threshold)) {
        cond_clear(r);
        return;
    }
    if (!cond_held(e, r, now_ms))
        return;
    json_t *detail = json_pack("{s:s, s:f, s:s, s:f, s:i}", "resource", heal_resource_name(res->kind), "value", v,
                               "op", heal_cmp_name(res->op), "threshold", res->threshold, "checks", r->hits);
    if (res->kind == HEAL_RES_METRIC)
        eng_metric_detail(detail, res->metric, &r->hit);
    fire(r, r->since_ms, detail);
}

void heal_engine_set_anomaly(heal_engine *e, heal_anomaly_fn fn, void *ud)
{
    e->anomaly_fn = fn;
    e->anomaly_ud = ud;
}

/* anomalous(METRIC): like a resource, held for N checks or a duration,
 * fired once per anomalous stretch. */
static void eval_anomalous(heal_engine *e, eng_rule *r, int64_t now_ms)
{
    const heal_resource *res = &r->r.cond.res;
    char key[768] = "";
    double score = NAN;
    int a = e->anomaly_fn ? e->anomaly_fn(e->anomaly_ud, res->metric, res->labels, key, sizeof key, &score) : -1;
    r->last_value = a > 0 ? score : NAN;
    if (a <= 0) {
        cond_clear(r);
        return;
    }
    if (!cond_held(e, r, now_ms))
        return;
    fire(r, r->since_ms, json_pack("{s:s, s:s, s:f, s:i}", "anomalous", key, "metric", res->metric, "score",
                                   isfinite(score) ? score : 0.0, "checks", r->hits));
}

static int restarts_within(eng_svc *s, int64_t within, int64_t now_ms)
{
    int n = 0;
    for (int i = 0; i < s->nrestart_ts; i++)
        n += now_ms - s->restart_ts[i] <= within;
    return n;
}

void eng_note_restart(eng_svc *s, int64_t now_ms)
{
    s->restarts++;
    s->restart_ts[s->restart_head] = now_ms;
    s->restart_head = (s->restart_head + 1) % ENG_RESTARTS_KEEP;
    if (s->nrestart_ts < ENG_RESTARTS_KEEP)
        s->nrestart_ts++;
}

static void eval_restarts(heal_engine *e, eng_rule *r, int64_t now_ms)
{
    eng_svc *s = r->svc;
    int n = restarts_within(s, r->r.cond.within_ms, now_ms);
    if (n < r->r.cond.restarts || eng_svc_busy(e, s->cfg.sc.name))
        return;
    s->nrestart_ts = s->restart_head = 0; /* consumed: the next firing needs new restarts */
    fire(r, now_ms, json_pack("{s:i, s:I}", "restarts", n, "within_ms", (json_int_t)r->r.cond.within_ms));
}

static void eval_rules(heal_engine *e, eng_rule *rules, int n, int64_t now_ms)
{
    for (int i = 0; i < n; i++) {
        if (rules[i].r.cond.kind == HEAL_COND_RESOURCE)
            eval_resource(e, &rules[i], now_ms);
        else if (rules[i].r.cond.kind == HEAL_COND_ANOMALOUS)
            eval_anomalous(e, &rules[i], now_ms);
        else if (rules[i].r.cond.kind == HEAL_COND_RESTARTS && rules[i].svc)
            eval_restarts(e, &rules[i], now_ms);
    }
}

void eng_rules_tick(heal_engine *e, int64_t now_ms)
{
    for (int i = 0; i < e->nsvcs; i++) {
        eng_svc *s = e->svcs[i];
        heal_supervisor *sup = eng_sup_of(e, s->cfg.sc.name);
        heal_service_info in;
        pid_t pid = sup && !heal_service_info_get(sup, s->cfg.sc.name, &in) && in.state == HEAL_SVC_RUNNING ? in.pid : 0;
        eng_svc_sample(s, pid, now_ms);
        eval_rules(e, s->rules, s->nrules, now_ms);
    }
    eval_rules(e, e->mrules, e->nmrules, now_ms);
}

/* ---- evidence -------------------------------------------------------------------------- */

static json_t *num(double v)
{
    return isnan(v) ? json_null() : json_real(v);
}

json_t *eng_svc_evidence(heal_engine *e, eng_svc *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "service", json_string(s->cfg.sc.name));
    json_object_set_new(o, "cpu_percent", num(s->cpu_percent));
    json_object_set_new(o, "rss_bytes", num(s->rss_bytes));
    json_object_set_new(o, "threads", num(s->threads));
    json_object_set_new(o, "fds", num(s->fds));
    json_object_set_new(o, "processes", json_integer(s->nprocs));
    json_object_set_new(o, "restarts", json_integer(s->restarts));
    json_t *probes = json_array();
    for (int i = 0; i < s->nrules; i++)
        if (s->rules[i].probe)
            json_array_append_new(probes, json_pack("{s:s, s:b, s:s, s:I}", "probe",
                                                    heal_probe_kind_name(s->rules[i].r.cond.probe.kind), "ok",
                                                    s->rules[i].probe_ok, "message", s->rules[i].last_msg, "seq",
                                                    (json_int_t)s->rules[i].probe_seq));
    json_object_set_new(o, "probes", probes);
    heal_supervisor *sup = eng_sup_of(e, s->cfg.sc.name);
    char buf[8192];
    if (sup && heal_service_log_tail(sup, s->cfg.sc.name, ENG_LOG_LINES, buf, sizeof buf) >= 0)
        json_object_set_new(o, "log", json_string(buf));
    return o;
}
