/* test_diagnose.c: every rule of the diagnosis catalogue against its
 * signature fixture (tests/brain/fixtures/FAULT.json, the contract's
 * signature shape): fault type, component, the key evidence, the root cause
 * naming the specific file/port/pid/template, and the proposed actions in
 * order; a healthy signature gives "none" with nothing proposed; remembered
 * cases raise the confidence and put their fix first; attempts split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "brain/brain_int.h"
#include "brain_test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct expect {
    const char *fixture, *fault, *component;
    const char *evidence_kind; /* an evidence entry of this kind */
    const char *root_has;      /* the root cause names this */
    const char *actions[3];    /* the proposed actions, in order (NULL-ended) */
    double min_conf;
} expect;

static const expect cases[] = {
    {"crash", "crash", "web", "kernel", "signal 11", {"restart"}, 0.6},
    {"bad_environment", "bad_environment", "web", "change", "/etc/default/web", {"restore /etc/default/web", "restart"}, 0.9},
    {"config_error", "config_error", "web", "log", "/etc/web.conf", {"restore /etc/web.conf", "restart"}, 0.9},
    {"oom_kill", "oom_kill", "web", "kernel", "OOM killer killed web (pid 4242", {"restart"}, 0.9},
    {"memory_leak", "memory_leak", "web", "anomaly", "leaks memory", {"restart"}, 0.8},
    {"cpu_starvation", "cpu_starvation", "web", "pressure", "pid 5151 (burn)", {"renice 19 pid 5151", "signal TERM pid 5151"}, 0.85},
    {"disk_full", "disk_full", "web", "fs", "/srv/web", {"clean /srv/web larger than 1MB"}, 0.85},
    {"inode_exhaustion", "inode_exhaustion", "web", "fs", "no inodes left", {"clean /srv/web"}, 0.85},
    {"fd_exhaustion", "fd_exhaustion", "web", "resource", "1020 of 1024", {"restart"}, 0.85},
    {"port_in_use", "port_in_use", "web", "port", "port 8080: it is held by pid 6060", {"signal TERM pid 6060", "restart"}, 0.9},
    {"dependency_down", "dependency_down", "db", "dependency", "db is down", {"restart"}, 0.85},
    {"dns_failure", "dns_failure", "web", "change", "/etc/resolv.conf", {"restore /etc/resolv.conf"}, 0.9},
    {"credential_revoked", "credential_revoked", "web", "change", "/etc/web/token.secret", {"restore /etc/web/token.secret", "restart"}, 0.9},
    {"permission_denied", "permission_denied", "web", "change", "/srv/web/data", {"restore /srv/web/data", "restart"}, 0.9},
    {"io_error", "io_error", "web", "kernel", "I/O error", {"alert"}, 0.85},
    {"clock_jump", "clock_jump", "web", "kernel", "clock jumped", {"alert"}, 0.8},
    {"error_storm", "error_storm", "web", "log", "payment <*> failed", {"alert"}, 0.7},
    {"unknown", "unknown", "web", NULL, "no rule", {"alert"}, 0.0},
};

static bool has_evidence(const json_t *d, const char *kind)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(d, "evidence"), i, e) {
        if (!strcmp(json_string_value(json_object_get(e, "kind")), kind))
            return true;
    }
    return false;
}

static void check_one(const expect *x)
{
    json_t *sig = btu_fixture(x->fixture);
    json_t *d = brain_diagnose(sig, NULL, 0);
    assert_non_null(d);
    char *dump = json_dumps(d, JSON_INDENT(1));
    const char *fault = json_string_value(json_object_get(d, "fault_type"));
    if (strcmp(fault, x->fault) != 0)
        fail_msg("%s: fault %s, wanted %s\n%s", x->fixture, fault, x->fault, dump);
    assert_string_equal(json_string_value(json_object_get(d, "component")), x->component);
    assert_true(brain_fault_type_valid(fault));
    if (x->evidence_kind && !has_evidence(d, x->evidence_kind))
        fail_msg("%s: no %s evidence\n%s", x->fixture, x->evidence_kind, dump);
    const char *root = json_string_value(json_object_get(d, "root_cause"));
    if (!strstr(root, x->root_has))
        fail_msg("%s: root cause '%s' does not name '%s'", x->fixture, root, x->root_has);
    double conf = json_number_value(json_object_get(d, "confidence"));
    if (conf < x->min_conf || conf > 1)
        fail_msg("%s: confidence %.2f < %.2f", x->fixture, conf, x->min_conf);
    json_t *acts = json_object_get(d, "proposed_actions");
    for (int i = 0; x->actions[i]; i++) {
        const char *a = json_string_value(json_object_get(json_array_get(acts, (size_t)i), "action"));
        if (!a || strcmp(a, x->actions[i]) != 0)
            fail_msg("%s: action %d is '%s', wanted '%s'\n%s", x->fixture, i, a ? a : "(none)", x->actions[i], dump);
        const char *why = json_string_value(json_object_get(json_array_get(acts, (size_t)i), "why"));
        assert_true(why && *why);
    }
    assert_string_equal(json_string_value(json_object_get(d, "source")), "rules");
    assert_int_equal(json_integer_value(json_object_get(d, "incident")), 12);
    free(dump);
    json_decref(d);
    json_decref(sig);
}

static void test_catalogue(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_one(&cases[i]);
}

/* Every fault type of the contract but none has a fixture with a rule. */
static void test_every_fault_type_covered(void **st)
{
    (void)st;
    int n = brain_fault_type_count();
    assert_int_equal(n, 19);
    for (int i = 0; i < n; i++) {
        const char *f = brain_fault_types[i];
        bool found = !strcmp(f, "none");
        for (size_t k = 0; k < sizeof cases / sizeof cases[0] && !found; k++)
            found = !strcmp(cases[k].fault, f);
        if (!found)
            fail_msg("fault type %s has no fixture", f);
    }
    assert_false(brain_fault_type_valid("bogus"));
}

static void test_healthy_is_none(void **st)
{
    (void)st;
    json_t *sig = btu_fixture("none");
    json_t *d = brain_diagnose(sig, NULL, 0);
    assert_string_equal(json_string_value(json_object_get(d, "fault_type")), "none");
    assert_int_equal(json_array_size(json_object_get(d, "proposed_actions")), 0);
    json_decref(d);
    /* a change alone is no fault, nor is an info-level new template */
    json_array_append_new(json_object_get(sig, "logs"),
                          json_pack("{s:s, s:s, s:b, s:s}", "template", "started", "sample", "started", "new", 1,
                                    "level", "info"));
    d = brain_diagnose(sig, NULL, 0);
    assert_string_equal(json_string_value(json_object_get(d, "fault_type")), "none");
    json_decref(d);
    json_decref(sig);
}

/* Without its supporting change, a config error cannot be repaired: alert. */
static void test_config_error_without_change(void **st)
{
    (void)st;
    json_t *sig = btu_fixture("config_error");
    json_array_clear(json_object_get(sig, "changes"));
    json_t *d = brain_diagnose(sig, NULL, 0);
    assert_string_equal(json_string_value(json_object_get(d, "fault_type")), "config_error");
    json_t *a0 = json_array_get(json_object_get(d, "proposed_actions"), 0);
    assert_string_equal(json_string_value(json_object_get(a0, "action")), "alert");
    assert_true(json_number_value(json_object_get(d, "confidence")) < 0.9);
    json_decref(d);
    json_decref(sig);
}

/* The signature's other places for the same evidence: the captured output's
 * last lines when the log watch saw nothing, and a full filesystem that is
 * not the service's (no disk_full without ENOSPC in its logs). */
static void test_other_evidence_places(void **st)
{
    (void)st;
    json_t *sig = btu_fixture("config_error");
    json_array_clear(json_object_get(sig, "logs"));
    json_object_set_new(sig, "log_tail", json_pack("[s, s]", "2026-12-04T21:00:00Z ippocd: started pid 7: /usr/bin/web",
                                                   "error: /etc/web.conf: line 3: invalid value for listen"));
    json_t *d = brain_diagnose(sig, NULL, 0);
    assert_string_equal(json_string_value(json_object_get(d, "fault_type")), "config_error");
    assert_true(json_number_value(json_object_get(d, "confidence")) >= 0.9);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(d, "proposed_actions"), 0),
                                                          "action")), "restore /etc/web.conf");
    json_decref(d);
    json_decref(sig);

    sig = btu_fixture("unknown");
    json_array_append_new(json_object_get(sig, "filesystems"),
                          json_pack("{s:s, s:s, s:f, s:f, s:b}", "path", "/mnt/backup", "mountpoint", "/mnt/backup",
                                    "used_percent", 99.0, "inodes_percent", 1.0, "service", 0));
    d = brain_diagnose(sig, NULL, 0);
    assert_string_not_equal(json_string_value(json_object_get(d, "fault_type")), "disk_full");
    json_decref(d);
    json_decref(sig);
}

static void test_cases_raise_and_reorder(void **st)
{
    (void)st;
    json_t *sig = btu_fixture("cpu_starvation");
    brain_case_hit h = {.id = 3, .incident = 7, .similarity = 0.9, .fixed = 2, .tried = 2};
    snprintf(h.fault_type, sizeof h.fault_type, "cpu_starvation");
    snprintf(h.component, sizeof h.component, "web");
    h.fixed_by = json_pack("[s]", "signal TERM pid 5151");
    json_t *plain = brain_diagnose(sig, NULL, 0);
    json_t *d = brain_diagnose(sig, &h, 1);
    assert_string_equal(json_string_value(json_object_get(d, "source")), "rules+cases");
    assert_true(json_number_value(json_object_get(d, "confidence")) >
                json_number_value(json_object_get(plain, "confidence")));
    json_t *acts = json_object_get(d, "proposed_actions");
    assert_int_equal(json_array_size(acts), 2); /* moved, not repeated */
    assert_string_equal(json_string_value(json_object_get(json_array_get(acts, 0), "action")), "signal TERM pid 5151");
    json_t *c0 = json_array_get(json_object_get(d, "cases"), 0);
    assert_int_equal(json_integer_value(json_object_get(c0, "incident")), 7);
    assert_int_equal(json_integer_value(json_object_get(c0, "fixed")), 2);
    json_decref(d);
    /* a remembered pid is the past's: the same action against the process
     * today's evidence names goes first, the old pid is never proposed */
    json_decref(h.fixed_by);
    h.fixed_by = json_pack("[s]", "signal TERM pid 1953");
    d = brain_diagnose(sig, &h, 1);
    acts = json_object_get(d, "proposed_actions");
    assert_string_equal(json_string_value(json_object_get(json_array_get(acts, 0), "action")), "signal TERM pid 5151");
    char *text = json_dumps(acts, 0);
    assert_null(strstr(text, "1953"));
    free(text);
    json_decref(d);
    /* a far case changes nothing but is still listed */
    h.similarity = 0.3;
    d = brain_diagnose(sig, &h, 1);
    assert_string_equal(json_string_value(json_object_get(d, "source")), "rules");
    assert_int_equal(json_array_size(json_object_get(d, "cases")), 1);
    json_decref(d);
    json_decref(plain);
    /* a very close case outweighs weak rules */
    json_t *weak = btu_fixture("unknown");
    h.similarity = 0.95;
    d = brain_diagnose(weak, &h, 1);
    assert_string_equal(json_string_value(json_object_get(d, "fault_type")), "cpu_starvation");
    assert_string_equal(json_string_value(json_object_get(d, "source")), "cases");
    text = json_dumps(json_object_get(d, "proposed_actions"), 0);
    assert_null(strstr(text, " pid ")); /* no process of today's evidence to act on */
    free(text);
    json_decref(d);
    json_decref(weak);
    json_decref(h.fixed_by);
    json_decref(sig);
}

/* An OOM kill of a pid the service had, minutes before this incident (an
 * earlier fault, already healed), does not make a leak or a full disk an
 * OOM kill. */
static void test_stale_oom_kill_ignored(void **st)
{
    (void)st;
    static const char *const which[][2] = {{"memory_leak", "memory_leak"}, {"disk_full", "disk_full"}};
    for (size_t i = 0; i < sizeof which / sizeof which[0]; i++) {
        json_t *sig = btu_fixture(which[i][0]);
        json_int_t from = json_integer_value(json_object_get(sig, "from"));
        json_t *k = json_object_get(sig, "kernel");
        if (!json_is_array(k)) {
            k = json_array();
            json_object_set_new(sig, "kernel", k);
        }
        json_array_append_new(k, json_pack("{s:s, s:i, s:s, s:s, s:I, s:b}", "kind", "oom_kill", "pid", 4242, "comm",
                                           "web", "text", "Out of memory: Killed process 4242 (web)", "ts",
                                           from - 120000, "service", 1));
        json_t *d = brain_diagnose(sig, NULL, 0);
        assert_non_null(d);
        assert_string_equal(json_string_value(json_object_get(d, "fault_type")), which[i][1]);
        json_decref(d);
        json_decref(sig);
    }
}

static void test_attempts(void **st)
{
    (void)st;
    json_t *p = json_pack("[{s:s},{s:s},{s:s},{s:s},{s:s}]", "action", "restore /etc/x", "action", "restart",
                          "action", "renice 19 pid 3", "action", "signal TERM pid 3", "action", "alert");
    int first[8];
    int n = brain_attempts(p, first, 8);
    assert_int_equal(n, 3);
    assert_int_equal(first[0], 0); /* restore + restart */
    assert_int_equal(first[1], 2); /* renice */
    assert_int_equal(first[2], 3); /* signal pid + alert */
    json_decref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalogue),
        cmocka_unit_test(test_every_fault_type_covered),
        cmocka_unit_test(test_healthy_is_none),
        cmocka_unit_test(test_config_error_without_change),
        cmocka_unit_test(test_other_evidence_places),
        cmocka_unit_test(test_cases_raise_and_reorder),
        cmocka_unit_test(test_attempts),
        cmocka_unit_test(test_stale_oom_kill_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
