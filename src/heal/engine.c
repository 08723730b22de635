/* engine.c: the heal engine's life: building it from the configuration,
 * supervisor groups (services tied by dependencies share one supervisor),
 * the supervisor's state callback (a crash becomes an incident whose restart
 * goes through the policy and the audit log), reloads, shutdown, and the
 * snapshots other threads read. */
#include "heal/engine_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- lookups and small helpers ------------------------------------------------ */

eng_svc *eng_find_svc(heal_engine *e, const char *name)
{
    for (int i = 0; i < e->nsvcs; i++)
        if (!strcmp(e->svcs[i]->cfg.sc.name, name))
            return e->svcs[i];
    return NULL;
}

heal_supervisor *eng_sup_of(heal_engine *e, const char *name)
{
    eng_svc *s = eng_find_svc(e, name);
    return s && s->g && s->g->phase != G_RETIRING ? s->g->sup : NULL;
}

void eng_event(heal_engine *e, const char *type, const char *sev, const char *source, json_t *payload)
{
    char *text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
    json_decref(payload);
    int64_t id = mem_event_add(e->mem, 0, type, sev, source && *source ? source : "heal", text ? text : "{}");
    if (id < 0)
        log_warn("heal: cannot record event %s: %s", type, strerror((int)-id));
    free(text);
}

/* ---- crash handling ------------------------------------------------------------- */

static int64_t backoff_ms(const eng_svc *s)
{
    if (s->fails <= 0)
        return 0;
    int64_t d = s->cfg.sc.backoff_initial_ms;
    for (int i = 1; i < s->fails && d < s->cfg.sc.backoff_max_ms; i++)
        d *= 2;
    return d > s->cfg.sc.backoff_max_ms ? s->cfg.sc.backoff_max_ms : d;
}

static void on_restart_timer(uv_timer_t *t)
{
    eng_svc *s = t->data;
    incident *inc = eng_incident_find(s->e, s->crash_incident);
    if (inc && inc->state == INC_ACTING)
        eng_act_next(inc);
}

/* Runs inc (s's crash incident from now on) after the backoff delay. */
static void restart_after(eng_svc *s, incident *inc, int64_t delay)
{
    if (!inc)
        return;
    inc->wants_running = true;
    s->crash_incident = inc->id;
    if (delay == 0 || !s->timer_open)
        eng_act_next(inc);
    else
        uv_timer_start(&s->restart_timer, on_restart_timer, (uint64_t)delay, 0);
}

/* The main process ended while RUNNING: record it and restart through the
 * policy after the backoff delay. */
static void on_crash(heal_engine *e, eng_svc *s, const heal_service_event *ev)
{
    int64_t now = core_now_ms();
    eng_event(e, "service.exit", "warning", s->cfg.sc.name,
              json_pack("{s:s, s:i, s:i, s:i, s:s}", "service", s->cfg.sc.name, "pid", (int)ev->pid, "status",
                        ev->exit_status, "signal", ev->term_signal, "reason", ev->reason ? ev->reason : ""));
    if (!s->cfg.sc.autorestart || e->stopping || s->stopping)
        return;
    if (s->started_mono && core_mono_ms() - s->started_mono >= s->cfg.sc.healthy_after_ms)
        s->fails = 0;
    int64_t delay = backoff_ms(s);
    s->fails++;
    incident *old = eng_incident_find(e, s->crash_incident);
    if (old && (old->state == INC_ACTING || old->state == INC_VERIFYING))
        eng_incident_close(old, false, "the service exited again before it was healthy");
    heal_action a = {.kind = HEAL_ACT_RESTART};
    snprintf(a.service, sizeof a.service, "%s", s->cfg.sc.name);
    char what[800], held[600];
    json_t *conflict = eng_port_conflict(s, ev->pid, held, sizeof held);
    snprintf(what, sizeof what, "process exited: %s%s%s", ev->reason ? ev->reason : "?", conflict ? "; " : "", held);
    json_t *evd = eng_svc_evidence(e, s);
    if (conflict)
        json_object_set_new(evd, "port_conflict", conflict);
    json_object_set_new(evd, "exit", json_pack("{s:i, s:i, s:i, s:I}", "pid", (int)ev->pid, "status",
                                               ev->exit_status, "signal", ev->term_signal, "backoff_ms",
                                               (json_int_t)delay));
    restart_after(s, eng_incident_open(e, s->cfg.sc.name, what, "supervisor", &a, 1, now, evd), delay);
}

/* The trouble that got s stopped for flapping still holds: it should run
 * and is down, or a probe of one of its restarting rules fails. */
static bool flap_trouble(heal_engine *e, eng_svc *s, bool *down)
{
    heal_supervisor *sup = eng_sup_of(e, s->cfg.sc.name);
    heal_service_info in;
    if (!sup || heal_service_info_get(sup, s->cfg.sc.name, &in))
        return false;
    *down = in.state == HEAL_SVC_FAILED || in.state == HEAL_SVC_STOPPED;
    if (*down && s->cfg.sc.autorestart)
        return true;
    for (int i = 0; i < s->nrules; i++) {
        const eng_rule *r = &s->rules[i];
        if (!r->probe || r->probe_ok || !r->probe_seq)
            continue;
        for (int k = 0; k < r->r.nactions; k++)
            if (r->r.actions[k].kind == HEAL_ACT_RESTART || r->r.actions[k].kind == HEAL_ACT_START)
                return true;
    }
    return false;
}

void eng_flap_retry(heal_engine *e)
{
    int64_t mono = core_mono_ms();
    for (int i = 0; i < e->nsvcs && !e->stopping; i++) {
        eng_svc *s = e->svcs[i];
        if (!s->flap_stopped || s->stopping || eng_svc_busy(e, s->cfg.sc.name))
            continue;
        heal_policy_svc_state ps;
        heal_policy_service_state(e->policy, s->cfg.sc.name, mono, &ps);
        if (ps.flapping)
            continue;
        bool down = false;
        if (!flap_trouble(e, s, &down)) {
            if (!down)
                s->flap_stopped = false; /* it runs and is healthy: nothing to retry */
            continue;
        }
        s->flap_stopped = false;
        int64_t delay = backoff_ms(s);
        s->fails++;
        heal_action a = {.kind = down ? HEAL_ACT_START : HEAL_ACT_RESTART};
        snprintf(a.service, sizeof a.service, "%s", s->cfg.sc.name);
        json_t *evd = eng_svc_evidence(e, s);
        json_object_set_new(evd, "backoff_ms", json_integer(delay));
        log_info("heal: %s: flap cool-down over, trying again in %lld ms", s->cfg.sc.name, (long long)delay);
        restart_after(s, eng_incident_open(e, s->cfg.sc.name, "retry after the flap cool-down", "flap protection", &a,
                                           1, core_now_ms(), evd), delay);
    }
}

static void on_svc_event(const heal_service_event *ev, void *ud)
{
    eng_group *g = ud;
    heal_engine *e = g->e;
    if (g->phase == G_RETIRING)
        return;
    eng_svc *s = eng_find_svc(e, ev->name);
    if (!s)
        return;
    if (ev->new_state == HEAL_SVC_RUNNING && ev->old_state != HEAL_SVC_RUNNING) {
        s->started_mono = core_mono_ms();
        s->ready_deadline_mono = core_mono_ms() + e->cfg.verify_ms;
        for (int i = 0; i < s->nrules; i++) /* no failure counted until the first scheduled check */
            if (s->rules[i].probe) {
                s->rules[i].start_seq = s->rules[i].probe_seq;
                heal_probe_grace(s->rules[i].probe, heal_probe_get_config(s->rules[i].probe)->interval_ms);
            }
        eng_svc_sample(s, ev->pid, core_now_ms());
        if (ev->reason && !strcmp(ev->reason, "adopted"))
            eng_event(e, "service.adopted", "info", s->cfg.sc.name,
                      json_pack("{s:s, s:i}", "service", s->cfg.sc.name, "pid", (int)ev->pid));
        if (s->restarting) {
            s->restarting = false;
            eng_event(e, "service.restart", "info", s->cfg.sc.name,
                      json_pack("{s:s, s:i, s:i}", "service", s->cfg.sc.name, "pid", (int)ev->pid, "restarts",
                                (int)s->restarts));
        }
    }
    bool ended = ev->old_state == HEAL_SVC_RUNNING &&
                 (ev->new_state == HEAL_SVC_FAILED || ev->new_state == HEAL_SVC_STOPPED ||
                  ev->new_state == HEAL_SVC_BACKOFF);
    if (ended)
        on_crash(e, s, ev);
    eng_publish(e);
}

/* ---- dependents of a restarted service ------------------------------------------- */

/* Whether `name`'s dependents may start: every probe of it passed since it
 * last started, or the verify deadline went by. Probes it is waiting for are
 * run now (failures during the start grace are not counted). */
static bool on_ready(const char *name, void *ud)
{
    eng_group *g = ud;
    eng_svc *s = eng_find_svc(g->e, name);
    if (!s || core_mono_ms() >= s->ready_deadline_mono)
        return true;
    bool ready = true;
    for (int i = 0; i < s->nrules; i++) {
        eng_rule *r = &s->rules[i];
        if (r->probe && (r->probe_seq <= r->start_seq || !r->probe_ok)) {
            ready = false;
            heal_probe_run_now(r->probe);
        }
    }
    return ready;
}

/* The supervisor restarted `dep` explicitly and `dependent` runs on it:
 * wait for dep's probes, then restart dependent like any other action. */
static void on_dependent(const char *dep, const char *dependent, void *ud)
{
    eng_group *g = ud;
    heal_engine *e = g->e;
    eng_svc *d = eng_find_svc(e, dep), *s = eng_find_svc(e, dependent);
    if (g->phase == G_RETIRING || !d || !s || e->stopping || s->stopping)
        return;
    s->dep_wait = true;
    snprintf(s->dep_on, sizeof s->dep_on, "%s", dep);
    s->dep_deadline_mono = core_mono_ms() + e->cfg.verify_ms;
    eng_probes_mark(d);
    eng_deps_check(e);
}

void eng_deps_check(heal_engine *e)
{
    if (e->stopping)
        return;
    for (eng_group *g = e->groups; g; g = g->next) /* services waiting for a dependency to be ready */
        if (g->phase == G_ACTIVE && g->n > 1)
            heal_supervisor_recheck(g->sup);
    for (int i = 0; i < e->nsvcs; i++) {
        eng_svc *s = e->svcs[i];
        if (!s->dep_wait)
            continue;
        eng_svc *d = eng_find_svc(e, s->dep_on);
        heal_supervisor *sup = d ? eng_sup_of(e, s->dep_on) : NULL;
        heal_service_info in;
        bool up = sup && !heal_service_info_get(sup, s->dep_on, &in) && in.state == HEAL_SVC_RUNNING;
        bool late = core_mono_ms() >= s->dep_deadline_mono;
        if (!late && !(up && eng_probes_ok(d)))
            continue;
        s->dep_wait = false;
        char what[HEAL_NAME_MAX + 96];
        snprintf(what, sizeof what, "dependency %s restarted%s", s->dep_on,
                 up && !late ? "" : " (not healthy by the deadline)");
        heal_action a = {.kind = HEAL_ACT_RESTART};
        snprintf(a.service, sizeof a.service, "%s", s->cfg.sc.name);
        json_t *evd = eng_svc_evidence(e, s);
        json_object_set_new(evd, "dependency", json_pack("{s:s, s:b}", "service", s->dep_on, "healthy", up && !late));
        incident *inc = eng_incident_open(e, s->cfg.sc.name, what, "dependency", &a, 1, core_now_ms(), evd);
        if (!inc)
            continue;
        inc->wants_running = true;
        eng_act_next(inc);
    }
}

/* ---- groups ---------------------------------------------------------------------- */

static int find_idx(const eng_cfg *c, const char *name)
{
    for (int i = 0; i < c->nsvcs; i++)
        if (!strcmp(c->svcs[i].sc.name, name))
            return i;
    return -1;
}

/* Component number of each service over dependency edges. */
static void components(const eng_cfg *c, int *comp)
{
    for (int i = 0; i < c->nsvcs; i++)
        comp[i] = i;
    bool changed = true;
    while (changed) {
        changed = false;
        for (int i = 0; i < c->nsvcs; i++)
            for (int k = 0; k < c->svcs[i].sc.ndepends; k++) {
                int j = find_idx(c, c->svcs[i].sc.depends[k]);
                if (j < 0 || comp[i] == comp[j])
                    continue;
                int lo = comp[i] < comp[j] ? comp[i] : comp[j];
                comp[i] = comp[j] = lo;
                changed = true;
            }
    }
}

static void group_free(eng_group *g)
{
    heal_supervisor_free(g->sup);
    free(g->names);
    free(g);
}

static void group_unlink(heal_engine *e, eng_group *g)
{
    for (eng_group **pp = &e->groups; *pp; pp = &(*pp)->next)
        if (*pp == g) {
            *pp = g->next;
            return;
        }
}

static eng_group *group_new(heal_engine *e, const eng_cfg *c, const int *comp, int root, char *err, size_t errlen)
{
    eng_group *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->e = e;
    g->phase = G_WAITING;
    for (int i = 0; i < c->nsvcs; i++)
        g->n += comp[i] == root;
    g->names = calloc((size_t)g->n, sizeof *g->names);
    if (!g->names || heal_supervisor_new(e->loop, e->state_dir, &g->sup, err, errlen)) {
        free(g->names);
        free(g);
        return NULL;
    }
    heal_supervisor_set_callback(g->sup, on_svc_event, g);
    heal_supervisor_set_dependent_hook(g->sup, on_dependent, g);
    heal_supervisor_set_ready_hook(g->sup, on_ready, g);
    int k = 0;
    for (int i = 0; i < c->nsvcs; i++) {
        if (comp[i] != root)
            continue;
        snprintf(g->names[k++], HEAL_NAME_MAX, "%s", c->svcs[i].sc.name);
        heal_service_config sc = c->svcs[i].sc;
        sc.autorestart = false; /* the engine restarts, through the policy */
        char why[512];
        if (heal_supervisor_add(g->sup, &sc, why, sizeof why)) {
            snprintf(err, errlen, "%s:%d: [service.%s]: %s", c->svcs[i].file, c->svcs[i].line, sc.name, why);
            group_free(g);
            return NULL;
        }
    }
    char why[512];
    if (heal_supervisor_check(g->sup, why, sizeof why)) {
        snprintf(err, errlen, "%s", why);
        group_free(g);
        return NULL;
    }
    return g;
}

static bool group_has(const eng_group *g, const char *name)
{
    for (int k = 0; k < g->n; k++)
        if (!strcmp(g->names[k], name))
            return true;
    return false;
}

/* True when group g runs exactly what the new config asks of it. */
static bool group_same(heal_engine *e, const eng_group *g, const eng_cfg *c, const int *comp)
{
    int root = -1, n = 0;
    for (int k = 0; k < g->n; k++) {
        int i = find_idx(c, g->names[k]);
        eng_svc *s = eng_find_svc(e, g->names[k]);
        if (i < 0 || !s || !eng_svc_cfg_same(&s->cfg.sc, &c->svcs[i].sc) || (root >= 0 && comp[i] != root))
            return false;
        root = comp[i];
    }
    for (int i = 0; i < c->nsvcs; i++)
        n += comp[i] == root;
    return n == g->n;
}

static eng_group *group_of(heal_engine *e, const char *name)
{
    for (eng_group *g = e->groups; g; g = g->next)
        if (g->phase != G_RETIRING && group_has(g, name))
            return g;
    return NULL;
}

static void start_waiting_groups(heal_engine *e)
{
    for (eng_group *g = e->groups; g; g = g->next)
        if (g->phase == G_WAITING) {
            g->phase = G_ACTIVE;
            char err[512];
            if (heal_supervisor_start_all(g->sup, err, sizeof err))
                log_err("heal: %s", err);
        }
}

/* ---- services ------------------------------------------------------------------- */

static void svc_closed(uv_handle_t *h)
{
    free(h->data);
}

static void svc_release(eng_svc *s)
{
    eng_files_free(s);
    eng_rules_stop(s->rules, s->nrules);
    free(s->rules);
    s->rules = NULL;
    s->nrules = 0;
    uv_close((uv_handle_t *)&s->restart_timer, svc_closed);
}

static eng_svc *svc_new(heal_engine *e, const eng_svc_cfg *c)
{
    eng_svc *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->e = e;
    s->cfg = *c;
    uv_timer_init(e->loop, &s->restart_timer);
    s->restart_timer.data = s;
    s->timer_open = true;
    return s;
}

static void rules_unbind(heal_engine *e)
{
    for (int i = 0; i < e->nsvcs; i++) {
        eng_rules_stop(e->svcs[i]->rules, e->svcs[i]->nrules);
        free(e->svcs[i]->rules);
        e->svcs[i]->rules = NULL;
        e->svcs[i]->nrules = 0;
    }
    eng_rules_stop(e->mrules, e->nmrules);
    free(e->mrules);
    e->mrules = NULL;
    e->nmrules = 0;
}

static int rules_bind_one(heal_engine *e, eng_svc *s, const heal_rule *rules, int n, eng_rule **out, int *nout,
                          char *err, size_t errlen)
{
    *out = calloc((size_t)(n ? n : 1), sizeof **out);
    if (!*out)
        return -ENOMEM;
    *nout = n;
    for (int i = 0; i < n; i++) {
        (*out)[i].r = rules[i];
        (*out)[i].e = e;
        (*out)[i].svc = s;
    }
    return eng_rules_start(e, s, *out, n, err, errlen);
}

static int rules_bind(heal_engine *e, char *err, size_t errlen)
{
    int rc = 0;
    for (int i = 0; i < e->nsvcs && !rc; i++)
        rc = rules_bind_one(e, e->svcs[i], e->cfg.svcs[i].rules, e->cfg.svcs[i].nrules, &e->svcs[i]->rules,
                            &e->svcs[i]->nrules, err, errlen);
    if (!rc)
        rc = rules_bind_one(e, NULL, e->cfg.rules, e->cfg.nrules, &e->mrules, &e->nmrules, err, errlen);
    return rc;
}

static void policy_apply(heal_engine *e, const eng_cfg *c)
{
    char why[256];
    if (heal_policy_configure(e->policy, &c->pol, why, sizeof why))
        log_warn("heal: policy: %s", why);
    if (heal_policy_set_service(e->policy, &c->machine, why, sizeof why))
        log_warn("heal: policy: %s", why);
    if (heal_policy_set_service(e->policy, &c->cell, why, sizeof why))
        log_warn("heal: policy: %s: %s", HEAL_CELL_TARGET, why);
    for (int i = 0; i < c->nsvcs; i++)
        if (heal_policy_set_service(e->policy, &c->svcs[i].ps, why, sizeof why))
            log_warn("heal: policy: service %s: %s", c->svcs[i].sc.name, why);
}

/* Creates the groups c needs that do not exist yet (WAITING), then binds
 * one eng_svc per service: an old one whose group is kept, else a new one.
 * olds[] entries taken are set to NULL. */
static int build_services(heal_engine *e, const eng_cfg *c, eng_svc **olds, int nolds, char *err, size_t errlen)
{
    int *comp = calloc((size_t)c->nsvcs + 1, sizeof *comp);
    eng_svc **svcs = calloc((size_t)c->nsvcs + 1, sizeof *svcs);
    int rc = comp && svcs ? 0 : -ENOMEM;
    if (!rc)
        components(c, comp);
    for (int i = 0; i < c->nsvcs && !rc; i++) {
        if (comp[i] != i || group_of(e, c->svcs[i].sc.name))
            continue;
        eng_group *g = group_new(e, c, comp, i, err, errlen);
        if (!g) {
            rc = -EINVAL;
            break;
        }
        g->next = e->groups;
        e->groups = g;
    }
    for (int i = 0; i < c->nsvcs && !rc; i++) {
        eng_group *g = group_of(e, c->svcs[i].sc.name);
        for (int k = 0; k < nolds && !svcs[i]; k++)
            if (olds[k] && olds[k]->g == g && !strcmp(olds[k]->cfg.sc.name, c->svcs[i].sc.name)) {
                svcs[i] = olds[k];
                olds[k] = NULL;
            }
        if (!svcs[i] && !(svcs[i] = svc_new(e, &c->svcs[i])))
            rc = -ENOMEM;
        else {
            svcs[i]->cfg = c->svcs[i];
            svcs[i]->g = g;
            svcs[i]->stopping = false;
        }
    }
    free(comp);
    if (rc) {
        for (int i = 0; i < c->nsvcs; i++)
            if (svcs && svcs[i])
                svc_release(svcs[i]);
        free(svcs);
        return rc;
    }
    e->svcs = svcs;
    e->nsvcs = c->nsvcs;
    return 0;
}

int heal_engine_new(uv_loop_t *loop, const core_config *cfg, mem_t *mem, heal_engine **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    heal_engine *e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    e->loop = loop;
    e->mem = mem;
    e->next_incident = 1;
    pthread_mutex_init(&e->snap_lock, NULL);
    snprintf(e->state_dir, sizeof e->state_dir, "%s", cfg->state_dir);
    snprintf(e->audit_path, sizeof e->audit_path, "%s/audit.log", cfg->state_dir);
    int rc = eng_cfg_build(cfg, &e->cfg, err, errlen);
    if (!rc)
        rc = heal_policy_new(&e->cfg.pol, &e->policy, err, errlen);
    if (!rc)
        rc = heal_audit_open(e->audit_path, &e->audit, err, errlen);
    if (!rc) {
        policy_apply(e, &e->cfg);
        rc = build_services(e, &e->cfg, NULL, 0, err, errlen);
    }
    if (!rc)
        rc = rules_bind(e, err, errlen);
    if (rc) {
        heal_engine_free(e);
        return rc;
    }
    start_waiting_groups(e);
    eng_publish(e);
    log_info("heal: %d service(s), %d machine-wide rule(s), mode %s%s", e->nsvcs, e->nmrules,
             heal_mode_name(e->cfg.pol.mode), e->cfg.pol.dry_run ? " (dry run)" : "");
    *out = e;
    return 0;
}

static void check_stop_done(heal_engine *e)
{
    if (e->stopping && e->stop_done && e->stop_waiting == 0) {
        void (*done)(void *) = e->stop_done;
        e->stop_done = NULL;
        done(e->stop_ud);
    }
}

/* stop_all's done of a group retired by a reload (may run inside
 * heal_supervisor_stop_all or a supervisor callback: free is allowed). */
static void retired_stopped(void *ud)
{
    eng_group *g = ud;
    heal_engine *e = g->e;
    group_unlink(e, g);
    group_free(g);
    if (--e->pending_group_stops == 0 && !e->stopping)
        start_waiting_groups(e);
    if (e->stopping) {
        e->stop_waiting--;
        check_stop_done(e);
    }
}

/* What heal_supervisor_add would refuse (unknown user, ...), found before
 * anything running is touched. */
static int trial_services(heal_engine *e, const eng_cfg *c, char *err, size_t errlen)
{
    heal_supervisor *sup;
    int rc = heal_supervisor_new(e->loop, e->state_dir, &sup, err, errlen);
    for (int i = 0; i < c->nsvcs && !rc; i++) {
        heal_service_config sc = c->svcs[i].sc;
        sc.autorestart = false;
        char why[512];
        rc = heal_supervisor_add(sup, &sc, why, sizeof why);
        if (rc)
            snprintf(err, errlen, "%s:%d: [service.%s]: %s", c->svcs[i].file, c->svcs[i].line, sc.name, why);
    }
    if (sup)
        heal_supervisor_free(sup);
    return rc;
}

int heal_engine_reconfigure(heal_engine *e, const core_config *cfg, char *err, size_t errlen)
{
    if (e->stopping)
        return 0;
    eng_cfg next;
    int rc = eng_cfg_build(cfg, &next, err, errlen);
    if (rc)
        return rc;
    heal_policy *trial = NULL;
    rc = heal_policy_new(&next.pol, &trial, err, errlen);
    heal_policy_free(trial);
    if (!rc)
        rc = trial_services(e, &next, err, errlen);
    int *comp = rc ? NULL : calloc((size_t)next.nsvcs + 1, sizeof *comp);
    if (rc || !comp) {
        eng_cfg_free(&next);
        return rc ? rc : -ENOMEM;
    }
    components(&next, comp);
    rules_unbind(e);
    int nretire = 0;
    for (eng_group *g = e->groups; g; g = g->next)
        if (g->phase != G_RETIRING && !group_same(e, g, &next, comp)) {
            g->phase = G_RETIRING;
            nretire++;
        }
    free(comp);
    eng_svc **olds = e->svcs;
    int nolds = e->nsvcs;
    e->svcs = NULL;
    e->nsvcs = 0;
    policy_apply(e, &next);
    eng_cfg_free(&e->cfg);
    e->cfg = next;
    rc = build_services(e, &e->cfg, olds, nolds, err, errlen);
    for (int k = 0; k < nolds; k++)
        if (olds[k])
            svc_release(olds[k]); /* removed, or its group is retired */
    free(olds);
    if (!rc)
        rc = rules_bind(e, err, errlen);
    if (rc)
        log_err("heal: reload: %s", err);
    /* stop the retired groups; the new ones start once they are down */
    eng_group **ret = calloc((size_t)nretire + 1, sizeof *ret);
    int n = 0;
    for (eng_group *g = e->groups; g && ret; g = g->next)
        if (g->phase == G_RETIRING && n < nretire)
            ret[n++] = g;
    e->pending_group_stops += n;
    for (int k = 0; k < n; k++)
        heal_supervisor_stop_all(ret[k]->sup, false, retired_stopped, ret[k]);
    free(ret);
    if (e->pending_group_stops == 0)
        start_waiting_groups(e);
    log_info("heal: reloaded: %d service(s), %d group(s) restarted", e->nsvcs, n);
    eng_publish(e);
    return rc;
}

/* ---- stop / free ----------------------------------------------------------------- */

static void group_stopped(void *ud)
{
    eng_group *g = ud;
    g->e->stop_waiting--;
    check_stop_done(g->e);
}

void heal_engine_stop(heal_engine *e, void (*done)(void *ud), void *ud)
{
    if (e->stopping)
        return;
    e->stopping = true;
    e->stop_done = done;
    e->stop_ud = ud;
    rules_unbind(e);
    eng_sysctl_revert_all(e);
    for (int i = 0; i < e->nsvcs; i++)
        uv_timer_stop(&e->svcs[i]->restart_timer);
    e->stop_waiting = 1; /* held while the groups are asked */
    for (eng_group *g = e->groups; g; g = g->next)
        if (g->phase == G_RETIRING)
            e->stop_waiting++; /* retired_stopped counts it */
    eng_group **all = NULL;
    int n = 0;
    for (eng_group *g = e->groups; g; g = g->next)
        n += g->phase != G_RETIRING;
    all = calloc((size_t)n + 1, sizeof *all);
    n = 0;
    for (eng_group *g = e->groups; g && all; g = g->next)
        if (g->phase != G_RETIRING)
            all[n++] = g;
    e->stop_waiting += n;
    for (int k = 0; k < n; k++) {
        heal_supervisor_stop_all(all[k]->sup, false, group_stopped, all[k]);
    }
    free(all);
    e->stop_waiting--;
    check_stop_done(e);
}

static void engine_release(heal_engine *e)
{
    pthread_mutex_destroy(&e->snap_lock);
    free(e->snap_services);
    free(e->snap_incidents);
    free(e->snap_pending);
    free(e);
}

void heal_engine_free(heal_engine *e)
{
    if (!e)
        return;
    e->stopping = true;
    rules_unbind(e);
    eng_incidents_free(e);
    for (int i = 0; i < e->nsvcs; i++)
        svc_release(e->svcs[i]);
    free(e->svcs);
    e->svcs = NULL;
    e->nsvcs = 0;
    while (e->groups) {
        eng_group *g = e->groups;
        e->groups = g->next;
        group_free(g);
    }
    heal_policy_free(e->policy);
    e->policy = NULL;
    eng_cfg_free(&e->cfg);
    eng_act_shutdown(e);
    free(e->undo); /* normally emptied by the revert at stop */
    e->undo = NULL;
    e->nundo = 0;
    e->freed = true;
    if (e->jobs == 0) {
        heal_audit_close(e->audit);
        engine_release(e);
    }
}

/* The last job of a freed engine releases it (engine_act.c). */
void eng_job_done(heal_engine *e)
{
    if (--e->jobs == 0 && e->freed) {
        heal_audit_close(e->audit);
        engine_release(e);
    }
}

/* ---- tick and snapshots ------------------------------------------------------------- */

void heal_engine_tick(heal_engine *e, int64_t now_ms)
{
    if (e->stopping)
        return;
    e->last_tick_ms = now_ms;
    eng_rules_tick(e, now_ms);
    eng_files_tick(e, now_ms);
    eng_deps_check(e);
    eng_flap_retry(e);
    eng_publish(e);
}

static json_t *real_or_null(double v)
{
    return isnan(v) ? json_null() : json_real(v);
}

static json_t *svc_json(heal_engine *e, eng_svc *s)
{
    heal_service_info in;
    memset(&in, 0, sizeof in);
    heal_supervisor *sup = eng_sup_of(e, s->cfg.sc.name);
    if (sup)
        heal_service_info_get(sup, s->cfg.sc.name, &in);
    heal_policy_svc_state ps;
    heal_policy_service_state(e->policy, s->cfg.sc.name, core_mono_ms(), &ps);
    json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:i, s:I, s:s, s:o, s:o, s:b, s:i, s:s}", "name", s->cfg.sc.name,
                          "type", heal_service_type_name(s->cfg.sc.type),
                          "state", s->g && s->g->phase == G_WAITING ? "starting" : heal_service_state_name(in.state),
                          "pid", (int)in.pid, "restarts", (int)s->restarts, "uptime_ms", (json_int_t)in.uptime_ms,
                          "error", in.error, "cpu_percent", real_or_null(s->cpu_percent), "rss_bytes", real_or_null(s->rss_bytes), "flapping",
                          ps.flapping, "rules", s->nrules, "mode",
                          heal_mode_name(s->cfg.ps.mode == HEAL_MODE_INHERIT ? e->cfg.pol.mode : s->cfg.ps.mode));
    if (o && s->nfiles)
        json_object_set_new(o, "config_paths", eng_files_json(s));
    if (o && in.has_exited)
        json_object_set_new(o, "last_exit", json_pack("{s:i, s:i, s:I}", "status", in.last_exit_status, "signal",
                                                      in.last_signal, "ts", (json_int_t)in.last_exit_ms));
    return o;
}

static char *dump(json_t *o)
{
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return t;
}

void eng_publish(heal_engine *e)
{
    if (e->freed)
        return;
    int64_t mono = core_mono_ms();
    json_t *arr = json_array();
    for (int i = 0; i < e->nsvcs; i++)
        json_array_append_new(arr, svc_json(e, e->svcs[i]));
    heal_pending pend[64];
    size_t np = heal_policy_pending_list(e->policy, mono, pend, 64);
    json_t *parr = json_array();
    for (size_t i = 0; i < np && i < 64; i++) {
        char text[256];
        heal_action_format(&pend[i].action, text, sizeof text);
        json_array_append_new(parr, json_pack("{s:I, s:s, s:s, s:s, s:I}", "id", (json_int_t)pend[i].id, "service",
                                              pend[i].action.service, "action", text, "why", pend[i].why,
                                              "expires_in_ms", (json_int_t)(pend[i].expires_ms - mono)));
    }
    int open = 0;
    json_t *incs = e->incidents_dirty || !e->snap_incidents ? json_array() : NULL;
    for (incident *inc = e->incidents; inc; inc = inc->next_inc) {
        open += inc->state == INC_ACTING || inc->state == INC_VERIFYING || inc->state == INC_DIAGNOSING;
        if (incs)
            json_array_append_new(incs, eng_incident_json(inc));
    }
    e->incidents_dirty = false;
    char *svc = dump(json_pack("{s:o, s:i, s:s, s:b, s:i}", "services", arr, "pending", (int)np, "mode",
                               heal_mode_name(e->cfg.pol.mode), "dry_run", e->cfg.pol.dry_run, "incidents_open", open));
    char *inc = incs ? dump(json_pack("{s:o}", "incidents", incs)) : NULL;
    char *pen = dump(json_pack("{s:o}", "pending", parr));
    pthread_mutex_lock(&e->snap_lock);
    char *o1 = e->snap_services, *o2 = inc ? e->snap_incidents : NULL, *o3 = e->snap_pending;
    e->snap_services = svc;
    if (inc)
        e->snap_incidents = inc;
    e->snap_pending = pen;
    pthread_mutex_unlock(&e->snap_lock);
    free(o1), free(o2), free(o3);
}

static char *snap_copy(heal_engine *e, char **field)
{
    pthread_mutex_lock(&e->snap_lock);
    char *t = *field ? strdup(*field) : NULL;
    pthread_mutex_unlock(&e->snap_lock);
    return t;
}

char *heal_engine_services_json(heal_engine *e)
{
    return snap_copy(e, &e->snap_services);
}

char *heal_engine_incidents_json(heal_engine *e)
{
    return snap_copy(e, &e->snap_incidents);
}

char *heal_engine_pending_json(heal_engine *e)
{
    return snap_copy(e, &e->snap_pending);
}

char *heal_engine_incident_json(heal_engine *e, uint64_t id)
{
    char *all = heal_engine_incidents_json(e);
    json_t *o = all ? json_loads(all, 0, NULL) : NULL;
    free(all);
    json_t *arr = json_object_get(o, "incidents"), *v;
    size_t i;
    char *t = NULL;
    json_array_foreach(arr, i, v) {
        if ((uint64_t)json_integer_value(json_object_get(v, "id")) == id) {
            t = json_dumps(v, JSON_COMPACT);
            break;
        }
    }
    json_decref(o);
    return t;
}

const char *heal_engine_audit_path(heal_engine *e)
{
    return e->audit_path;
}
