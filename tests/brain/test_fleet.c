/* test_fleet.c: fleet wisdom in the brain (fleet.c, issue 15) with a fake
 * hook in place of the mesh cell. The ranking: a candidate at least
 * [brain] wisdom_threshold heavy is proposed first when no close case of the
 * cell's own healed the incident, lighter ones are evidence only, the
 * threshold is configurable, the cell's own memory of the same action (healed
 * or failed) and its own fix beat the fleet's word, what is no action the
 * fleet may propose (a pid, a program, an alert) never is; every candidate is
 * an evidence line of kind "wisdom" after the rules' and the cases'. Then a
 * real brain and heal engine: a user's question asks the hook on the worker
 * with the signature's features and the service's kind and shows the answer
 * in the diagnosis; a fleet-proposed restart runs through heal's policy and
 * audit log, heals, and the outcome hook hears it once, worked; an action
 * heal's policy refuses (never run) tells the fleet nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "brain/brain_int.h"
#include "brain_test_util.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fake hook ---------------------------------------------------------------- */

typedef struct fake {
    pthread_mutex_t lock;
    brain_wisdom_cand c[BRAIN_WISDOM_MAX];
    int n;           /* what it answers (negative: an error) */
    int asked;
    char kind[64];   /* the service kind it was last asked about */
    json_t *features;
    int outcomes;
    char last_action[128];
    bool last_worked;
    json_t *last_features;
} fake;

static brain_wisdom_cand cand(const char *action, double w, unsigned k, unsigned n, int origins)
{
    brain_wisdom_cand c;
    memset(&c, 0, sizeof c);
    snprintf(c.action, sizeof c.action, "%s", action);
    c.weight = w;
    c.k = k;
    c.n = n;
    c.origins = origins;
    return c;
}

static int fake_ask(void *ud, const json_t *features, const char *service_kind, brain_wisdom_cand *out, int max)
{
    fake *f = ud;
    pthread_mutex_lock(&f->lock);
    f->asked++;
    snprintf(f->kind, sizeof f->kind, "%s", service_kind);
    json_decref(f->features);
    f->features = json_deep_copy(features);
    int n = f->n < max ? f->n : max;
    for (int i = 0; i < n; i++)
        out[i] = f->c[i];
    pthread_mutex_unlock(&f->lock);
    return n;
}

static void fake_outcome(void *ud, const char *action, const json_t *features, bool worked)
{
    fake *f = ud;
    pthread_mutex_lock(&f->lock);
    f->outcomes++;
    snprintf(f->last_action, sizeof f->last_action, "%s", action);
    f->last_worked = worked;
    json_decref(f->last_features);
    f->last_features = json_deep_copy(features);
    pthread_mutex_unlock(&f->lock);
}

static void fake_init(fake *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->lock, NULL);
}

static void fake_free(fake *f)
{
    json_decref(f->features);
    json_decref(f->last_features);
    pthread_mutex_destroy(&f->lock);
}

/* ---- helpers ------------------------------------------------------------------------ */

static const json_t *cand_of(const json_t *diag, const char *action)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(diag, "wisdom"), "candidates"), i, c) {
        if (!strcmp(json_string_value(json_object_get(c, "action")), action))
            return c;
    }
    return NULL;
}

static const char *use_of(const json_t *diag, const char *action)
{
    const json_t *c = cand_of(diag, action);
    return c ? json_string_value(json_object_get(c, "use")) : "(absent)";
}

static const json_t *proposal(const json_t *diag, size_t i)
{
    return json_array_get(json_object_get(diag, "proposed_actions"), i);
}

static const char *proposal_text(const json_t *diag, size_t i)
{
    const char *t = json_string_value(json_object_get(proposal(diag, i), "action"));
    return t ? t : "(none)";
}

static const char *proposal_by(const json_t *diag, size_t i)
{
    const char *t = json_string_value(json_object_get(proposal(diag, i), "by"));
    return t ? t : "";
}

static int wisdom_lines(const json_t *diag, int *first_at)
{
    int n = 0;
    *first_at = -1;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(diag, "evidence"), i, e) {
        if (!strcmp(json_string_value(json_object_get(e, "kind")), "wisdom")) {
            if (*first_at < 0)
                *first_at = (int)i;
            n++;
        } else if (*first_at >= 0) {
            fail_msg("evidence line %zu (%s) comes after the fleet's", i, json_string_value(json_object_get(e, "kind")));
        }
    }
    return n;
}

/* A crash of web (the rules propose restart) with the fleet's candidates merged. */
static json_t *diag_with(const brain_case_hit *hits, int nhits, const brain_wisdom_cand *c, int nc, double threshold)
{
    json_t *sig = btu_fixture("crash");
    json_t *d = brain_diagnose(sig, hits, nhits);
    assert_non_null(d);
    brain_fleet_merge(d, json_object_get(sig, "features"), "web", hits, nhits, c, nc, threshold);
    json_decref(sig);
    return d;
}

/* ---- the ranking (pure) ------------------------------------------------------------- */

static void test_weights_and_threshold(void **state)
{
    (void)state;
    brain_wisdom_cand c[] = {
        cand("clean /var/tmp older than 1d", 0.2, 3, 4, 1), cand("limit memory 512MB", 0.7, 5, 6, 2),
        cand("signal TERM pid 42", 0.9, 9, 9, 3),            cand("run /usr/local/bin/fix", 0.9, 9, 9, 3),
        cand("alert", 0.9, 9, 9, 3),                          cand("no such action", 0.9, 1, 1, 1),
    };
    json_t *d = diag_with(NULL, 0, c, 6, BRAIN_WISDOM_THRESHOLD);
    /* the heavy one is proposed first, the rules' restart follows */
    assert_string_equal(use_of(d, "limit memory 512MB"), "proposed");
    assert_string_equal(proposal_text(d, 0), "limit memory 512MB");
    assert_string_equal(proposal_by(d, 0), "wisdom");
    assert_non_null(strstr(json_string_value(json_object_get(proposal(d, 0), "why")), "5 of 6"));
    assert_non_null(strstr(json_string_value(json_object_get(proposal(d, 0), "why")), "2 other cells"));
    assert_string_equal(proposal_text(d, 1), "restart");
    assert_string_equal(proposal_by(d, 1), "");
    /* the light one, and what the fleet may not propose, are evidence only */
    assert_string_equal(use_of(d, "clean /var/tmp older than 1d"), "below_threshold");
    assert_string_equal(use_of(d, "signal TERM pid 42"), "not_an_action");
    assert_string_equal(use_of(d, "run /usr/local/bin/fix"), "not_an_action");
    assert_string_equal(use_of(d, "alert"), "not_an_action");
    assert_string_equal(use_of(d, "no such action"), "not_an_action");
    assert_int_equal(json_array_size(json_object_get(d, "proposed_actions")), 2);
    /* every candidate is an evidence line, after the rules' */
    int first;
    assert_int_equal(wisdom_lines(d, &first), 6);
    assert_true(first > 0);
    const json_t *e = json_array_get(json_object_get(d, "evidence"), (size_t)first);
    assert_non_null(strstr(json_string_value(json_object_get(e, "text")), "fixed 3 of 4 similar incidents on 1 other cell"));
    assert_int_equal(json_integer_value(json_object_get(e, "cells")), 1);
    assert_true(fabs(json_real_value(json_object_get(e, "weight")) - 0.2) < 1e-9);
    /* the question is in the diagnosis */
    const json_t *w = json_object_get(d, "wisdom");
    assert_string_equal(json_string_value(json_object_get(w, "service_kind")), "web");
    assert_true(json_array_size(json_object_get(w, "features")) > 0);
    assert_true(fabs(json_real_value(json_object_get(w, "threshold")) - 0.3) < 1e-9);
    json_decref(d);

    /* a lower threshold: the light one too; preparing actions first */
    d = diag_with(NULL, 0, c, 6, 0.1);
    assert_string_equal(use_of(d, "clean /var/tmp older than 1d"), "proposed");
    assert_string_equal(proposal_text(d, 0), "clean /var/tmp older than 1d");
    assert_string_equal(proposal_text(d, 1), "limit memory 512MB");
    assert_string_equal(proposal_text(d, 2), "restart");
    json_decref(d);

    /* a higher one: nothing of the fleet's is proposed */
    d = diag_with(NULL, 0, c, 6, 0.8);
    assert_string_equal(use_of(d, "limit memory 512MB"), "below_threshold");
    assert_string_equal(proposal_text(d, 0), "restart");
    assert_int_equal(json_array_size(json_object_get(d, "proposed_actions")), 1);
    json_decref(d);

    /* the rules' own action proposed by the fleet moves first, once */
    brain_wisdom_cand r = cand("restart", 1.7, 4, 4, 2); /* a weight above 1 counts as 1 */
    d = diag_with(NULL, 0, &r, 1, BRAIN_WISDOM_THRESHOLD);
    assert_int_equal(json_array_size(json_object_get(d, "proposed_actions")), 1);
    assert_string_equal(proposal_by(d, 0), "wisdom");
    assert_true(fabs(json_real_value(json_object_get(cand_of(d, "restart"), "weight")) - 1.0) < 1e-9);
    json_decref(d);

    /* a weight that is no number is left out */
    brain_wisdom_cand nan_c = cand("restart", NAN, 1, 1, 1);
    d = diag_with(NULL, 0, &nan_c, 1, BRAIN_WISDOM_THRESHOLD);
    assert_int_equal(json_array_size(json_object_get(json_object_get(d, "wisdom"), "candidates")), 0);
    assert_string_equal(proposal_by(d, 0), "");
    json_decref(d);
}

static void test_own_memory_first(void **state)
{
    (void)state;
    brain_wisdom_cand c[] = {cand("restart", 0.9, 9, 10, 3), cand("limit memory 512MB", 0.8, 4, 5, 2)};
    json_t *sig = btu_fixture("crash");
    const json_t *feat = json_object_get(sig, "features");
    /* a close case of the cell's own healed by restart */
    brain_case_hit h = {.id = 1, .incident = 7, .similarity = 0.95, .fixed = 1, .tried = 1};
    snprintf(h.fault_type, sizeof h.fault_type, "crash");
    snprintf(h.component, sizeof h.component, "web");
    h.fixed_by = json_pack("[s]", "restart");
    h.failed_by = json_pack("[s]", "limit memory 512MB");
    json_t *d = brain_diagnose(sig, &h, 1);
    brain_fleet_merge(d, feat, "web", &h, 1, c, 2, BRAIN_WISDOM_THRESHOLD);
    assert_string_equal(use_of(d, "restart"), "own_memory");
    assert_string_equal(use_of(d, "limit memory 512MB"), "failed_here");
    assert_string_equal(proposal_text(d, 0), "restart");
    assert_string_equal(proposal_by(d, 0), ""); /* the cell's own fix, not the fleet's */
    assert_int_equal(json_array_size(json_object_get(d, "proposed_actions")), 1);
    int first;
    assert_int_equal(wisdom_lines(d, &first), 2);
    json_decref(d);

    /* healed by another fix: that one decides */
    json_decref(h.fixed_by);
    h.fixed_by = json_pack("[s]", "freeze");
    json_decref(h.failed_by);
    h.failed_by = json_array();
    d = brain_diagnose(sig, &h, 1);
    brain_fleet_merge(d, feat, "web", &h, 1, c, 2, BRAIN_WISDOM_THRESHOLD);
    assert_string_equal(use_of(d, "restart"), "own_fix");
    assert_string_equal(use_of(d, "limit memory 512MB"), "own_fix");
    assert_string_equal(proposal_text(d, 0), "freeze");
    json_decref(d);

    /* a case too far away is no own experience: the fleet proposes */
    h.similarity = 0.3;
    d = brain_diagnose(sig, &h, 1);
    brain_fleet_merge(d, feat, "web", &h, 1, c, 2, BRAIN_WISDOM_THRESHOLD);
    assert_string_equal(use_of(d, "restart"), "proposed");
    assert_string_equal(proposal_text(d, 0), "restart");
    assert_string_equal(proposal_by(d, 0), "wisdom");
    json_decref(d);
    brain_case_hits_free(&h, 1);

    /* a healthy service: evidence, nothing to repair */
    json_t *none = btu_fixture("none");
    d = brain_diagnose(none, NULL, 0);
    brain_fleet_merge(d, json_object_get(none, "features"), "web", NULL, 0, c, 2, BRAIN_WISDOM_THRESHOLD);
    assert_string_equal(use_of(d, "restart"), "evidence");
    assert_int_equal(json_array_size(json_object_get(d, "proposed_actions")), 0);
    json_decref(d);
    json_decref(none);

    /* the hook failed: said, nothing else changes */
    d = brain_diagnose(sig, NULL, 0);
    json_t *before = json_deep_copy(d);
    brain_fleet_merge(d, feat, "web", NULL, 0, NULL, -5, BRAIN_WISDOM_THRESHOLD);
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(d, "wisdom"), "error")), "-5"));
    assert_true(json_equal(json_object_get(d, "evidence"), json_object_get(before, "evidence")));
    assert_true(json_equal(json_object_get(d, "proposed_actions"), json_object_get(before, "proposed_actions")));
    json_decref(before);
    json_decref(d);
    json_decref(sig);
}

/* The case store's recall says which actions did not heal (failed_by), and
 * the fleet's word for one of them is not proposed. */
static void test_recall_failed_by(void **state)
{
    (void)state;
    brain_cases cs;
    char err[256];
    assert_int_equal(brain_cases_open(&cs, NULL, err, sizeof err), 0);
    json_t *sig = btu_fixture("crash");
    const json_t *feat = json_object_get(sig, "features");
    int64_t id = brain_cases_add(&cs, 3, "web", "service", "crash", feat);
    assert_true(id > 0);
    json_t *bad = json_pack("[s, s]", "limit memory 512MB", "restart");
    json_t *good = json_pack("[s]", "freeze");
    assert_int_equal(brain_cases_outcome(&cs, id, bad, false, 0), 0);
    assert_int_equal(brain_cases_outcome(&cs, id, good, true, 900), 0);
    brain_case_hit h[BRAIN_CASE_HITS];
    int n = brain_cases_recall(&cs, feat, h, BRAIN_CASE_HITS);
    assert_int_equal(n, 1);
    assert_true(json_equal(h[0].failed_by, bad));
    assert_true(json_equal(h[0].fixed_by, good));
    brain_wisdom_cand c = cand("limit memory 512MB", 0.9, 9, 9, 4);
    json_t *d = brain_diagnose(sig, h, n);
    brain_fleet_merge(d, feat, "web", h, n, &c, 1, BRAIN_WISDOM_THRESHOLD);
    assert_string_equal(use_of(d, "limit memory 512MB"), "failed_here");
    assert_string_equal(proposal_text(d, 0), "freeze");
    json_decref(d);
    brain_case_hits_free(h, n);
    json_decref(bad);
    json_decref(good);
    json_decref(sig);
    brain_cases_close(&cs);
}

static void test_outcome_once(void **state)
{
    (void)state;
    fake f;
    fake_init(&f);
    brain_wisdom_cand c[] = {cand("clean /var/tmp older than 1d", 0.6, 3, 3, 1), cand("limit memory 512MB", 0.1, 1, 3, 1)};
    json_t *d = diag_with(NULL, 0, c, 2, BRAIN_WISDOM_THRESHOLD);
    /* the attempt [clean, restart]: only the fleet's clean is reported */
    json_t *attempt = json_pack("[s, s, s]", "clean /var/tmp older than 1d", "restart", "clean /var/tmp older than 1d");
    assert_int_equal(brain_fleet_outcome(d, attempt, false, fake_outcome, &f), 1);
    assert_int_equal(f.outcomes, 1);
    assert_string_equal(f.last_action, "clean /var/tmp older than 1d");
    assert_false(f.last_worked);
    assert_true(json_equal(f.last_features, json_object_get(json_object_get(d, "wisdom"), "features")));
    /* an action below the threshold was never the fleet's proposal */
    json_t *light = json_pack("[s]", "limit memory 512MB");
    assert_int_equal(brain_fleet_outcome(d, light, true, fake_outcome, &f), 0);
    /* a diagnosis without the fleet */
    json_t *sig = btu_fixture("crash");
    json_t *plain = brain_diagnose(sig, NULL, 0);
    assert_int_equal(brain_fleet_outcome(plain, attempt, true, fake_outcome, &f), 0);
    assert_int_equal(f.outcomes, 1);
    json_decref(plain);
    json_decref(sig);
    json_decref(light);
    json_decref(attempt);
    json_decref(d);
    fake_free(&f);
}

/* [brain] wisdom_threshold: a number from 0 to 1, or a clear error. */
static void test_threshold_config(void **state)
{
    (void)state;
    static const char *const bad[] = {"2", "-0.1", "x", "0.3x", "nan"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128], dir[64], err[256] = "";
        snprintf(text, sizeof text, "[brain]\nwisdom_threshold = %s\n", bad[i]);
        btu_tmpdir(dir, sizeof dir, "brainfleetcfg");
        core_config cfg;
        btu_config(&cfg, text, dir);
        assert_int_equal(brain_config_check(&cfg, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "wisdom_threshold"));
        assert_non_null(strstr(err, "from 0 to 1"));
        btu_close(NULL, &cfg, dir);
    }
    char dir[64], err[256] = "";
    btu_tmpdir(dir, sizeof dir, "brainfleetcfg");
    core_config cfg;
    btu_config(&cfg, "[brain]\nwisdom_threshold = 0.75\n", dir);
    assert_int_equal(brain_config_check(&cfg, err, sizeof err), 0);
    btu_close(NULL, &cfg, dir);
}

/* ---- a real brain and heal engine ---------------------------------------------------- */

typedef struct fx {
    char dir[64];
    core_config cfg;
    mem_t *m;
    uv_loop_t loop;
    uv_timer_t wake;
    heal_engine *e;
    brain *b;
    bool stopped;
    fake f;
} fx;

static const char *conf = "[heal]\nverify = 1s\n[brain]\nwindow = 0s\nwisdom_threshold = 0.5\n"
                          "[service.web]\ncommand = /bin/sleep 600\nallow = default\n";

static void on_wake(uv_timer_t *t) { (void)t; }

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fake_init(&f->f);
    btu_tmpdir(f->dir, sizeof f->dir, "brainfleet");
    btu_config(&f->cfg, conf, f->dir);
    char err[1024] = "";
    f->m = btu_mem_open(&f->cfg);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->wake);
    uv_timer_start(&f->wake, on_wake, 10, 10);
    if (heal_engine_new(&f->loop, &f->cfg, f->m, &f->e, err, sizeof err))
        fail_msg("heal_engine_new: %s", err);
    if (brain_new(&f->loop, &f->cfg, f->m, f->e, NULL, &f->b, err, sizeof err))
        fail_msg("brain_new: %s", err);
    brain_set_wisdom(f->b, fake_ask, fake_outcome, &f->f);
    *state = f;
    return 0;
}

static void on_stopped(void *ud) { ((fx *)ud)->stopped = true; }

static int teardown(void **state)
{
    fx *f = *state;
    brain_free(f->b);
    heal_engine_stop(f->e, on_stopped, f);
    int64_t end = core_mono_ms() + 10000;
    while (!f->stopped && core_mono_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    heal_engine_free(f->e);
    uv_close((uv_handle_t *)&f->wake, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    btu_close(f->m, &f->cfg, f->dir);
    fake_free(&f->f);
    free(f);
    return 0;
}

static json_int_t stat_of(fx *f, const char *key)
{
    char *t = brain_status_json(f->b);
    json_t *o = t ? json_loads(t, 0, NULL) : NULL;
    free(t);
    assert_non_null(o);
    json_int_t v = json_integer_value(json_object_get(o, key));
    json_decref(o);
    return v;
}

static void tick(fx *f, int64_t *last)
{
    uv_run(&f->loop, UV_RUN_ONCE);
    if (core_mono_ms() - *last >= 100) {
        *last = core_mono_ms();
        heal_engine_tick(f->e, core_now_ms());
        brain_tick(f->b, core_now_ms());
    }
}

static bool run_until(fx *f, const char *key, json_int_t want, int ms)
{
    int64_t end = core_mono_ms() + ms, last = 0;
    while (core_mono_ms() < end && stat_of(f, key) < want)
        tick(f, &last);
    return stat_of(f, key) >= want;
}

static void wait_running(fx *f)
{
    int64_t end = core_mono_ms() + 5000, last = 0;
    bool ok = false;
    while (!ok && core_mono_ms() < end) {
        char *t = heal_engine_services_json(f->e);
        ok = t && strstr(t, "\"running\"");
        free(t);
        if (!ok)
            tick(f, &last);
    }
    assert_true(ok);
}

static bool audit_has(fx *f, const char *a, const char *b)
{
    char path[128], line[4096];
    snprintf(path, sizeof path, "%s/audit.log", f->dir);
    FILE *fp = fopen(path, "r");
    bool found = false;
    while (fp && !found && fgets(line, sizeof line, fp))
        found = strstr(line, a) && strstr(line, b);
    if (fp)
        fclose(fp);
    return found;
}

/* The audit log is written on the thread pool: polled for, with a deadline. */
static bool audit_wait(fx *f, const char *a, const char *b, int ms)
{
    int64_t end = core_mono_ms() + ms, last = 0;
    while (!audit_has(f, a, b) && core_mono_ms() < end)
        tick(f, &last);
    return audit_has(f, a, b);
}

static uint64_t new_incident(fx *f)
{
    uint64_t id = 0;
    char err[256];
    if (heal_engine_incident_new(f->e, "web", "test", NULL, &id, err, sizeof err))
        fail_msg("incident_new: %s", err);
    return id;
}

static int outcomes(fx *f)
{
    pthread_mutex_lock(&f->f.lock);
    int n = f->f.outcomes;
    pthread_mutex_unlock(&f->f.lock);
    return n;
}

/* A user's question: the hook is asked on the worker, its answer is in the
 * diagnosis (a healthy service: evidence only). */
static void test_asked_in_deliberation(void **state)
{
    fx *f = *state;
    wait_running(f);
    pthread_mutex_lock(&f->f.lock);
    f->f.c[0] = cand("restart", 0.9, 7, 8, 2);
    f->f.n = 1;
    pthread_mutex_unlock(&f->f.lock);
    uint64_t id = 0;
    char err[256];
    assert_int_equal(brain_diagnose_service(f->b, "web", &id, err, sizeof err), 0);
    assert_true(run_until(f, "done", 1, 15000));
    pthread_mutex_lock(&f->f.lock);
    assert_int_equal(f->f.asked, 1);
    assert_string_equal(f->f.kind, "web");
    assert_true(json_is_array(f->f.features));
    pthread_mutex_unlock(&f->f.lock);
    char *t = brain_diagnosis_json(f->b, id);
    assert_non_null(t);
    json_t *d = json_loads(t, 0, NULL);
    free(t);
    assert_non_null(d);
    bool healthy = !strcmp(json_string_value(json_object_get(d, "fault_type")), "none");
    assert_string_equal(use_of(d, "restart"), healthy ? "evidence" : "proposed");
    int first;
    assert_int_equal(wisdom_lines(d, &first), 1);
    json_decref(d);
    /* the incident carries it too (what the timeline shows) */
    t = heal_engine_incident_json(f->e, id);
    assert_non_null(t);
    assert_non_null(strstr(t, "fleet wisdom: 'restart' fixed 7 of 8"));
    free(t);
}

/* A fleet-proposed restart goes through heal's policy and audit log, heals,
 * and the outcome hook hears it once, worked. */
static void test_fleet_fix_heals(void **state)
{
    fx *f = *state;
    wait_running(f);
    json_t *d = json_pack("{s:s, s:s, s:[{s:s, s:s, s:s}], s:[]}", "fault_type", "unknown", "component", "web",
                          "proposed_actions", "action", "alert", "service", "web", "why", "a person must look",
                          "evidence");
    json_t *feat = json_pack("[s, s]", "trigger:probe", "probe:http:body");
    brain_wisdom_cand c = cand("restart", 0.8, 4, 5, 2);
    brain_fleet_merge(d, feat, "web", NULL, 0, &c, 1, 0.5);
    assert_string_equal(proposal_text(d, 0), "restart");
    brain_act(f->b, new_incident(f), 0, d, core_now_ms());
    json_decref(d);
    assert_true(run_until(f, "healed", 1, 15000));
    assert_true(audit_wait(f, "restart", "fleet wisdom", 10000));
    assert_int_equal(outcomes(f), 1);
    pthread_mutex_lock(&f->f.lock);
    assert_string_equal(f->f.last_action, "restart");
    assert_true(f->f.last_worked);
    assert_true(json_equal(f->f.last_features, feat));
    pthread_mutex_unlock(&f->f.lock);
    json_decref(feat);
}

/* An action heal's policy refuses never ran: the fleet hears nothing. */
static void test_refused_tells_nothing(void **state)
{
    fx *f = *state;
    wait_running(f);
    json_t *d = json_pack("{s:s, s:s, s:[], s:[]}", "fault_type", "unknown", "component", "web", "proposed_actions",
                          "evidence");
    json_t *feat = json_pack("[s]", "trigger:probe");
    /* sysctl is not in the default allowlist */
    brain_wisdom_cand c = cand("sysctl vm.swappiness = 10", 0.9, 5, 5, 3);
    brain_fleet_merge(d, feat, "web", NULL, 0, &c, 1, 0.5);
    assert_string_equal(proposal_text(d, 0), "sysctl vm.swappiness = 10");
    brain_act(f->b, new_incident(f), 0, d, core_now_ms());
    json_decref(d);
    json_decref(feat);
    assert_true(run_until(f, "not_healed", 1, 15000));
    assert_true(audit_wait(f, "refuse", "vm.swappiness", 10000));
    assert_int_equal(outcomes(f), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weights_and_threshold),
        cmocka_unit_test(test_own_memory_first),
        cmocka_unit_test(test_recall_failed_by),
        cmocka_unit_test(test_outcome_once),
        cmocka_unit_test(test_threshold_config),
        cmocka_unit_test_setup_teardown(test_asked_in_deliberation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fleet_fix_heals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_tells_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
