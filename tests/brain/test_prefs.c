/* test_prefs.c: the preferences' decision logic. A rejection removes the
 * action from the next proposal for that signature (and only that one), an
 * edit replaces it, rejections across signatures make a service
 * untouchable, [prefs] never and maintenance windows hold proposals, the
 * window grammar and its membership (past midnight too), learned windows,
 * bad [prefs] values give FILE:LINE errors, and what was learned survives
 * closing and reopening a real memory store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "brain/brain_int.h"
#include "brain_test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Sat 2026-12-05 12:00 UTC (TZ=UTC in main) */
#define SAT_NOON 1796472000000LL
#define HOUR 3600000LL

static brain_prefs *new_prefs(const char *conf)
{
    core_config cfg;
    core_config_defaults(&cfg);
    char err[512] = "";
    if (conf && core_config_load_string(&cfg, conf, "test.conf", err, sizeof err))
        fail_msg("config: %s", err);
    brain_prefs *p = NULL;
    if (brain_prefs_new(NULL, &cfg, &p, err, sizeof err))
        fail_msg("brain_prefs_new: %s", err);
    core_config_free(&cfg);
    return p;
}

static json_t *diag(const char *fault, const char *comp, const char *a1, const char *a2)
{
    json_t *acts = json_array();
    json_array_append_new(acts, json_pack("{s:s, s:s, s:s}", "action", a1, "service", comp, "why", "the rule says"));
    if (a2)
        json_array_append_new(acts, json_pack("{s:s, s:s, s:s}", "action", a2, "service", comp, "why", "then"));
    return json_pack("{s:s, s:s, s:o}", "fault_type", fault, "component", comp, "proposed_actions", acts);
}

static const char *action_at(const json_t *d, size_t i)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(d, "proposed_actions"), i), "action"));
}

static size_t nactions(const json_t *d)
{
    return json_array_size(json_object_get(d, "proposed_actions"));
}

static const char *pref_kind(const json_t *d, size_t i)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(d, "preferences"), i), "kind"));
}

static void test_nothing_learned_changes_nothing(void **st)
{
    (void)st;
    brain_prefs *p = new_prefs(NULL);
    json_t *d = diag("crash", "web", "restart", NULL);
    bool ask = true;
    json_t *out = brain_prefs_apply(p, d, SAT_NOON, &ask);
    assert_false(ask);
    assert_true(json_equal(out, d));
    assert_null(json_object_get(out, "preferences"));
    json_decref(out);
    json_decref(d);
    brain_prefs_free(p);
}

static void test_rejection_removes(void **st)
{
    (void)st;
    brain_prefs *p = new_prefs(NULL);
    assert_int_equal(brain_prefs_learn(p, "crash web", "web", "restart", BRAIN_PREF_REJECT, NULL, "alice", SAT_NOON),
                     0);
    json_t *d = diag("crash", "web", "restart", "alert");
    bool ask;
    json_t *out = brain_prefs_apply(p, d, SAT_NOON + HOUR, &ask);
    assert_int_equal(nactions(out), 1);
    assert_string_equal(action_at(out, 0), "alert");
    assert_string_equal(pref_kind(out, 0), "reject");
    const char *why = json_string_value(json_object_get(json_array_get(json_object_get(out, "proposed_actions"), 0),
                                                        "why"));
    assert_non_null(strstr(why, "preference 1"));
    json_decref(out);
    /* another signature of the same service still gets its restart */
    json_t *d2 = diag("oom_kill", "web", "restart", NULL);
    out = brain_prefs_apply(p, d2, SAT_NOON + HOUR, &ask);
    assert_int_equal(nactions(out), 1);
    assert_string_equal(action_at(out, 0), "restart");
    json_decref(out);
    /* an approval after the rejection brings it back */
    brain_prefs_learn(p, "crash web", "web", "restart", BRAIN_PREF_APPROVE, NULL, "bob", SAT_NOON + 2 * HOUR);
    out = brain_prefs_apply(p, d, SAT_NOON + 3 * HOUR, &ask);
    assert_int_equal(nactions(out), 2);
    json_decref(out);
    json_decref(d);
    json_decref(d2);
    brain_prefs_free(p);
}

static void test_reject_after_n(void **st)
{
    (void)st;
    brain_prefs *p = new_prefs("[prefs]\nreject_after = 2\n");
    json_t *d = diag("crash", "web", "restart", NULL);
    bool ask;
    brain_prefs_learn(p, "crash web", "web", "restart", BRAIN_PREF_REJECT, NULL, "alice", SAT_NOON);
    json_t *out = brain_prefs_apply(p, d, SAT_NOON, &ask);
    assert_int_equal(nactions(out), 1); /* once is not enough */
    json_decref(out);
    brain_prefs_learn(p, "crash web", "web", "restart", BRAIN_PREF_REJECT, NULL, "alice", SAT_NOON + 1);
    out = brain_prefs_apply(p, d, SAT_NOON, &ask);
    assert_int_equal(nactions(out), 0);
    json_decref(out);
    json_decref(d);
    brain_prefs_free(p);
}

static void test_edit_replaces(void **st)
{
    (void)st;
    brain_prefs *p = new_prefs(NULL);
    assert_int_equal(brain_prefs_learn(p, "crash web", "web", "restart", BRAIN_PREF_EDIT, "stop", "alice", SAT_NOON),
                     0);
    json_t *d = diag("crash", "web", "restart", NULL);
    bool ask;
    json_t *out = brain_prefs_apply(p, d, SAT_NOON, &ask);
    assert_int_equal(nactions(out), 1);
    assert_string_equal(action_at(out, 0), "stop");
    assert_string_equal(pref_kind(out, 0), "edit");
    json_decref(out);
    char *j = brain_prefs_dump(p);
    json_t *o = json_loads(j, 0, NULL);
    json_t *l = json_array_get(json_object_get(o, "learned"), 0);
    assert_string_equal(json_string_value(json_object_get(l, "kind")), "edit");
    assert_int_equal(json_integer_value(json_object_get(l, "changed")), 1);
    json_decref(o);
    free(j);
    json_decref(d);
    brain_prefs_free(p);
}

static void test_untouchable(void **st)
{
    (void)st;
    brain_prefs *p = new_prefs(NULL); /* untouchable_after = 3 */
    const char *sigs[] = {"crash web", "oom_kill web", "config_error web"};
    bool ask;
    json_t *d = diag("memory_leak", "web", "restart", "alert");
    for (int i = 0; i < 3; i++) {
        json_t *out = brain_prefs_apply(p, d, SAT_NOON, &ask);
        assert_int_equal(nactions(out), 2); /* fewer than 3 signatures: still proposed */
        json_decref(out);
        brain_prefs_learn(p, sigs[i], "web", "restart", BRAIN_PREF_REJECT, NULL, "alice", SAT_NOON + i);
    }
    json_t *out = brain_prefs_apply(p, d, SAT_NOON, &ask);
    assert_int_equal(nactions(out), 0);
    assert_string_equal(pref_kind(out, 0), "untouchable");
    assert_string_equal(json_string_value(json_object_get(out, "fault_type")), "memory_leak"); /* still diagnosed */
    json_decref(out);
    char err[256];
    assert_int_equal(brain_prefs_drop(p, "untouchable:web", err, sizeof err), 0);
    out = brain_prefs_apply(p, d, SAT_NOON, &ask);
    assert_int_equal(nactions(out), 2);
    json_decref(out);
    json_decref(d);
    brain_prefs_free(p);
}

static void test_never_and_maintenance(void **st)
{
    (void)st;
    brain_prefs *p = new_prefs("[prefs]\nnever = db, cache\nmaintenance = Sat 02:00-04:00, Sun 02:00-04:00\n");
    bool ask;
    json_t *d = diag("crash", "db", "restart", NULL);
    json_t *out = brain_prefs_apply(p, d, SAT_NOON, &ask);
    assert_int_equal(nactions(out), 0);
    assert_string_equal(pref_kind(out, 0), "never");
    json_decref(out);
    json_decref(d);
    d = diag("crash", "web", "restart", "alert");
    out = brain_prefs_apply(p, d, SAT_NOON, &ask); /* Saturday noon: outside */
    assert_true(ask);
    assert_int_equal(nactions(out), 2);
    assert_string_equal(pref_kind(out, 0), "maintenance");
    json_decref(out);
    out = brain_prefs_apply(p, d, SAT_NOON - 9 * HOUR, &ask); /* Saturday 03:00: inside */
    assert_false(ask);
    assert_null(json_object_get(out, "preferences"));
    json_decref(out);
    json_decref(d);
    d = diag("disk_full", "web", "alert", NULL); /* not disruptive: never held */
    out = brain_prefs_apply(p, d, SAT_NOON, &ask);
    assert_false(ask);
    json_decref(out);
    json_decref(d);
    char err[256];
    assert_int_equal(brain_prefs_drop(p, "maintenance", err, sizeof err), -EPERM);
    assert_int_equal(brain_prefs_drop(p, "42", err, sizeof err), -ENOENT);
    brain_prefs_free(p);
}

static void test_window_parse(void **st)
{
    (void)st;
    brain_window w[8];
    int n;
    char err[256];
    assert_int_equal(brain_window_parse("Sat 02:00-04:00, Mon-Fri 22:00-01:30, 12:00-13:00", w, 8, &n, err,
                                        sizeof err),
                     0);
    assert_int_equal(n, 3);
    assert_int_equal(w[0].days, 1 << 6);
    assert_int_equal(w[0].from_min, 120);
    assert_int_equal(w[0].to_min, 240);
    assert_int_equal(w[1].days, 0x3e);
    assert_int_equal(w[2].days, 0x7f);
    assert_true(brain_window_has(w, n, 6, 150));   /* Sat 02:30 */
    assert_false(brain_window_has(w, n, 6, 240));  /* Sat 04:00: the end is out */
    assert_false(brain_window_has(w, n, 0, 150));  /* Sun 02:30 */
    assert_true(brain_window_has(w, n, 5, 23 * 60)); /* Fri 23:00 */
    assert_true(brain_window_has(w, n, 6, 60));    /* Sat 01:00: Friday's runs past midnight */
    assert_false(brain_window_has(w, n, 1, 60));   /* Mon 01:00: Sunday has none */
    assert_true(brain_window_has(w, n, 0, 12 * 60 + 30)); /* daily */
    assert_int_equal(brain_window_parse("Sat+Sun 02:00-04:00", w, 8, &n, err, sizeof err), 0);
    assert_int_equal(w[0].days, (1 << 6) | 1);
    char buf[64];
    brain_window_format(&w[0], buf, sizeof buf);
    assert_string_equal(buf, "Sun+Sat 02:00-04:00");
    const char *bad[] = {"Sat", "Sat 2:00-04:00", "Xyz 02:00-04:00", "Sat 02:00-02:00", "Sat 25:00-26:00",
                         "Sat 02:00-04:00x", "", "Sat 02:00 04:00"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        assert_int_equal(brain_window_parse(bad[i], w, 8, &n, err, sizeof err), -EINVAL);
        assert_true(err[0] != 0);
    }
}

static void test_bad_config(void **st)
{
    (void)st;
    const struct {
        const char *conf, *want;
    } cases[] = {
        {"[prefs]\nreject_after = 0\n", "test.conf:2: [prefs] reject_after"},
        {"[prefs]\n\nuntouchable_after = many\n", "test.conf:3: [prefs] untouchable_after"},
        {"[prefs]\nmaintenance = Sat 02:00\n", "test.conf:2: [prefs] maintenance"},
        {"[prefs]\nnever = web, d/b\n", "test.conf:2: [prefs] never: 'd/b'"},
        {"[prefs]\nsometimes = web\n", "test.conf:2: [prefs] unknown key 'sometimes'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        core_config cfg;
        core_config_defaults(&cfg);
        char err[512] = "";
        assert_int_equal(core_config_load_string(&cfg, cases[i].conf, "test.conf", err, sizeof err), 0);
        brain_prefs_cfg c;
        assert_int_equal(brain_prefs_cfg_parse(&cfg, &c, err, sizeof err), -EINVAL);
        if (!strstr(err, cases[i].want))
            fail_msg("'%s': got '%s'", cases[i].want, err);
        brain_prefs *p = NULL;
        assert_int_equal(brain_prefs_new(NULL, &cfg, &p, err, sizeof err), -EINVAL);
        assert_null(p);
        core_config_free(&cfg);
    }
}

static void test_learned_window(void **st)
{
    (void)st;
    brain_prefs *p = new_prefs(NULL); /* window_after = 3 */
    /* restarts approved on Saturdays 02:xx-03:xx */
    for (int i = 0; i < 3; i++)
        brain_prefs_learn(p, i == 2 ? "oom_kill web" : "crash web", "web", "restart", BRAIN_PREF_APPROVE, NULL,
                          "alice", SAT_NOON - 10 * HOUR + i * HOUR / 2 - 7 * 24 * HOUR * i);
    json_t *d = diag("crash", "web", "restart", NULL);
    bool ask;
    json_t *out = brain_prefs_apply(p, d, SAT_NOON, &ask);
    assert_true(ask);
    assert_string_equal(pref_kind(out, 0), "window");
    json_decref(out);
    out = brain_prefs_apply(p, d, SAT_NOON - 9 * HOUR, &ask); /* Sat 03:00 */
    assert_false(ask);
    json_decref(out);
    char err[256];
    assert_int_equal(brain_prefs_drop(p, "window:web", err, sizeof err), 0);
    out = brain_prefs_apply(p, d, SAT_NOON, &ask);
    assert_false(ask);
    json_decref(out);
    json_decref(d);
    brain_prefs_free(p);
}

static void test_survives_restart(void **st)
{
    (void)st;
    char dir[64];
    btu_tmpdir(dir, sizeof dir, "prefs");
    core_config cfg;
    btu_config(&cfg, NULL, dir);
    char err[512] = "";
    for (int round = 0; round < 2; round++) {
        mem_t *m = NULL;
        m = btu_mem_open(&cfg);
        brain_prefs *p = NULL;
        assert_int_equal(brain_prefs_new(m, &cfg, &p, err, sizeof err), 0);
        if (round == 0) {
            brain_prefs_learn(p, "crash web", "web", "restart", BRAIN_PREF_REJECT, NULL, "alice", SAT_NOON);
            brain_prefs_learn(p, "crash api", "api", "restart", BRAIN_PREF_EDIT, "stop", "bob", SAT_NOON);
            brain_prefs_learn(p, "crash db", "db", "restart", BRAIN_PREF_REJECT, NULL, "bob", SAT_NOON);
            assert_int_equal(brain_prefs_drop(p, "3", err, sizeof err), 0);
        } else {
            json_t *d = diag("crash", "web", "restart", NULL), *d2 = diag("crash", "api", "restart", NULL);
            json_t *d3 = diag("crash", "db", "restart", NULL);
            bool ask;
            json_t *o1 = brain_prefs_apply(p, d, SAT_NOON, &ask), *o2 = brain_prefs_apply(p, d2, SAT_NOON, &ask);
            json_t *o3 = brain_prefs_apply(p, d3, SAT_NOON, &ask);
            assert_int_equal(nactions(o1), 0);
            assert_string_equal(action_at(o2, 0), "stop");
            assert_int_equal(nactions(o3), 1); /* forgotten before the restart */
            json_decref(o1), json_decref(o2), json_decref(o3);
            json_decref(d), json_decref(d2), json_decref(d3);
        }
        brain_prefs_free(p);
        assert_int_equal(mem_flush(m, 5000), 0);
        mem_close(m);
    }
    btu_close(NULL, &cfg, dir);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    core_log_setup(CORE_LOG_ERR, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_learned_changes_nothing),
        cmocka_unit_test(test_rejection_removes),
        cmocka_unit_test(test_reject_after_n),
        cmocka_unit_test(test_edit_replaces),
        cmocka_unit_test(test_untouchable),
        cmocka_unit_test(test_never_and_maintenance),
        cmocka_unit_test(test_window_parse),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_learned_window),
        cmocka_unit_test(test_survives_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
