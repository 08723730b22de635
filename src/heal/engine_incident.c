/* engine_incident.c: incidents: opened when a rule fires or a service
 * crashes, they carry the evidence, the actions and their outcomes, and the
 * verify step (probe again until healthy or a deadline); each change is an
 * event in memory (incident.open / .resolved / .failed). The engine keeps
 * the open ones and the last ENG_INCIDENTS_KEEP closed ones, newest first. */
#include "heal/engine_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VERIFY_POLL_MS 100

incident *eng_incident_find(heal_engine *e, uint64_t id)
{
    for (incident *inc = e->incidents; inc && id; inc = inc->next_inc)
        if (inc->id == id)
            return inc;
    return NULL;
}

json_t *eng_incident_json(const incident *inc)
{
    static const char *names[] = {"acting", "verifying", "resolved", "failed", "diagnosing"};
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:O, s:O, s:s}", "id", (json_int_t)inc->id,
                          "service", inc->service, "state", names[inc->state], "what", inc->what, "where",
                          inc->where, "failing_since_ms", (json_int_t)inc->failing_since_ms, "detected_ms",
                          (json_int_t)inc->detected_ms, "evidence", inc->evidence, "actions", inc->results,
                          "reason", inc->reason);
    if (!o)
        return json_object();
    json_object_set_new(o, "time_to_detect_ms", json_integer(inc->detected_ms - inc->failing_since_ms));
    const char *key;
    json_t *v;
    json_object_foreach(inc->extra, key, v) json_object_set(o, key, v);
    if (inc->by[0]) {
        json_object_set_new(o, "by", json_string(inc->by));
        json_object_set_new(o, "why", json_string(inc->why));
        json_object_set(o, "proposed", inc->proposed);
    }
    if (inc->closed_ms) {
        json_object_set_new(o, "closed_ms", json_integer(inc->closed_ms));
        json_object_set_new(o, "time_to_heal_ms", json_integer(inc->closed_ms - inc->detected_ms));
    }
    return o;
}

void eng_incident_release(incident *inc)
{
    json_decref(inc->evidence);
    json_decref(inc->results);
    json_decref(inc->extra);
    json_decref(inc->proposed);
    free(inc);
}

static void trim_closed(heal_engine *e)
{
    int closed = 0;
    for (incident **pp = &e->incidents; *pp;) {
        incident *inc = *pp;
        bool done = inc->state == INC_RESOLVED || inc->state == INC_FAILED;
        if (done && ++closed > ENG_INCIDENTS_KEEP && !inc->verify_timer) {
            *pp = inc->next_inc;
            eng_incident_release(inc);
            e->nincidents--;
            continue;
        }
        pp = &inc->next_inc;
    }
}

incident *eng_incident_open(heal_engine *e, const char *service, const char *what, const char *where,
                            const heal_action *acts, int nacts, int64_t failing_since_ms, json_t *evidence)
{
    return eng_incident_open_as(e, INC_ACTING, service, what, where, acts, nacts, failing_since_ms, evidence);
}

incident *eng_incident_open_as(heal_engine *e, inc_state state, const char *service, const char *what,
                               const char *where, const heal_action *acts, int nacts, int64_t failing_since_ms,
                               json_t *evidence)
{
    incident *inc = calloc(1, sizeof *inc);
    if (!inc) {
        json_decref(evidence);
        return NULL;
    }
    inc->id = e->next_incident++;
    inc->e = e;
    inc->state = state;
    snprintf(inc->service, sizeof inc->service, "%s", service);
    snprintf(inc->what, sizeof inc->what, "%s", what);
    snprintf(inc->where, sizeof inc->where, "%s", where);
    inc->nactions = nacts < HEAL_RULE_ACTIONS_MAX ? nacts : HEAL_RULE_ACTIONS_MAX;
    if (inc->nactions > 0) /* a diagnosis' incident has none (acts may be NULL) */
        memcpy(inc->actions, acts, sizeof *acts * (size_t)inc->nactions);
    inc->evidence = evidence ? evidence : json_object();
    inc->results = json_array();
    inc->detected_ms = core_now_ms();
    inc->failing_since_ms = failing_since_ms && failing_since_ms <= inc->detected_ms ? failing_since_ms : inc->detected_ms;
    inc->next_inc = e->incidents;
    e->incidents = inc;
    e->nincidents++;
    e->incidents_dirty = true;
    json_t *o = eng_incident_json(inc);
    eng_event(e, "incident.open", "warning", service, o);
    trim_closed(e);
    return inc;
}

void eng_incident_action_done(incident *inc, const heal_action *a, const char *outcome, const char *msg,
                              bool executed, bool failed)
{
    char text[256];
    heal_action_format(a, text, sizeof text);
    json_t *r = json_pack("{s:s, s:s, s:s, s:I}", "action", text, "outcome", outcome, "message", msg ? msg : "", "ts",
                          (json_int_t)core_now_ms());
    if (r && inc->by[0])
        json_object_set_new(r, "by", json_string(inc->by));
    json_array_append_new(inc->results, r);
    inc->e->incidents_dirty = true;
    inc->executed += executed;
    inc->failed += failed;
    inc->skipped += !executed && !failed;
}

static void timer_freed(uv_handle_t *h)
{
    free(h);
}

static void verify_stop(incident *inc)
{
    if (inc->verify_timer)
        uv_close((uv_handle_t *)inc->verify_timer, timer_freed);
    inc->verify_timer = NULL;
}

void eng_incident_close(incident *inc, bool resolved, const char *reason)
{
    if (inc->state == INC_RESOLVED || inc->state == INC_FAILED)
        return;
    heal_engine *e = inc->e;
    inc->state = resolved ? INC_RESOLVED : INC_FAILED;
    e->incidents_dirty = true;
    inc->closed_ms = core_now_ms();
    snprintf(inc->reason, sizeof inc->reason, "%s", reason);
    verify_stop(inc);
    /* the rule that opened it may fire again */
    for (int i = 0; i < e->nsvcs; i++)
        for (int k = 0; k < e->svcs[i]->nrules; k++)
            if (e->svcs[i]->rules[k].incident_id == inc->id)
                e->svcs[i]->rules[k].incident_id = 0;
    for (int k = 0; k < e->nmrules; k++)
        if (e->mrules[k].incident_id == inc->id)
            e->mrules[k].incident_id = 0;
    eng_event(e, resolved ? "incident.resolved" : "incident.failed", resolved ? "info" : "error", inc->service,
              eng_incident_json(inc));
    log_info("heal: incident %llu (%s) %s: %s", (unsigned long long)inc->id, inc->service,
             resolved ? "resolved" : "failed", reason);
    eng_publish(e);
}

/* ---- verify ------------------------------------------------------------------------- */

static void on_verify(uv_timer_t *t)
{
    incident *inc = t->data;
    heal_engine *e = inc->e;
    eng_svc *s = eng_find_svc(e, inc->service);
    heal_supervisor *sup = s ? eng_sup_of(e, inc->service) : NULL;
    heal_service_info in = {0};
    bool running = !inc->wants_running || (sup && !heal_service_info_get(sup, inc->service, &in) &&
                                           in.state == HEAL_SVC_RUNNING);
    if (running && (!s || eng_probes_ok(s))) {
        eng_incident_close(inc, true, "healthy again");
        return;
    }
    if (core_mono_ms() >= inc->verify_deadline_mono) {
        char why[300];
        snprintf(why, sizeof why, "still unhealthy at the verify deadline%s%s", in.error[0] ? ": " : "", in.error);
        eng_incident_close(inc, false, why);
        return;
    }
    if (running && s)
        eng_probes_run_now(s);
}

/* Every action has run: verify, or close at once when nothing ran. */
void eng_incident_actions_finished(incident *inc)
{
    heal_engine *e = inc->e;
    if (inc->failed) {
        char why[300];
        json_t *last = json_array_get(inc->results, json_array_size(inc->results) - 1);
        snprintf(why, sizeof why, "%d action(s) failed: %s", inc->failed,
                 json_string_value(json_object_get(last, "message")) ? json_string_value(json_object_get(last, "message")) : "");
        for (size_t i = 0; i < json_array_size(inc->results); i++) {
            json_t *r = json_array_get(inc->results, i);
            if (!strcmp(json_string_value(json_object_get(r, "outcome")) ?: "", "failed")) {
                snprintf(why, sizeof why, "%s failed: %s", json_string_value(json_object_get(r, "action")),
                         json_string_value(json_object_get(r, "message")));
                break;
            }
        }
        eng_incident_close(inc, false, why);
        return;
    }
    if (inc->flap_refused) {
        eng_incident_close(inc, false, inc->reason[0] ? inc->reason : "flapping: restart refused");
        return;
    }
    if (!inc->executed) {
        eng_incident_close(inc, false, "no action ran (see the actions' outcomes)");
        return;
    }
    if (e->stopping) {
        eng_incident_close(inc, false, "ippocd is stopping");
        return;
    }
    inc->state = INC_VERIFYING;
    e->incidents_dirty = true;
    inc->verify_deadline_mono = core_mono_ms() + e->cfg.verify_ms;
    eng_svc *s = eng_find_svc(e, inc->service);
    if (s)
        eng_probes_mark(s);
    inc->verify_timer = malloc(sizeof *inc->verify_timer);
    if (!inc->verify_timer) {
        eng_incident_close(inc, false, "out of memory");
        return;
    }
    uv_timer_init(e->loop, inc->verify_timer);
    inc->verify_timer->data = inc;
    uv_timer_start(inc->verify_timer, on_verify, 0, VERIFY_POLL_MS);
}

void eng_incidents_free(heal_engine *e)
{
    incident *inc = e->incidents;
    e->incidents = NULL;
    while (inc) {
        incident *nx = inc->next_inc;
        verify_stop(inc);
        eng_incident_release(inc);
        inc = nx;
    }
}
