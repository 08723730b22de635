/* test_genome.c: the "genome" action (the cell's changes, src/evolve) on a
 * real heal engine (libuv loop, memory store and audit log in a temporary
 * state dir): its name and text, refused in rules and in a service's
 * allowlist check, the [evolve] changes key, and heal_engine_change with
 * changes = execute (the executor runs on the pool, intent and result in
 * the audit log), approve (queued, then `approve` runs it) and refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "heal_fx.h"
#include "heal/rules.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OID "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"

typedef struct fx {
    heal_fx h;               /* the engine */
    int calls;               /* the executor's */
    char op[32], arg[64];
    int rc;                  /* what it answers */
} fx;

/* the executor: the pool thread writes, the loop thread reads after the
 * job's after-callback (libuv orders them) */
static int executor(void *ud, const char *op, const char *arg, char *err, size_t errlen)
{
    fx *f = ud;
    snprintf(f->op, sizeof f->op, "%s", op);
    snprintf(f->arg, sizeof f->arg, "%s", arg);
    if (f->rc)
        snprintf(err, errlen, "genome: cannot apply %s", arg);
    else
        snprintf(err, errlen, "applied %s", arg);
    f->calls++;
    return f->rc;
}

static fx *fx_new(const char *changes)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    heal_fx_tmpdir(&f->h, "genome");
    char text[256];
    snprintf(text, sizeof text, "[heal]\nverify = 5s\n%s%s%s", changes ? "[evolve]\nchanges = " : "",
             changes ? changes : "", changes ? "\n" : "");
    heal_fx_start(&f->h, text);
    heal_engine_set_genome(f->h.e, executor, f);
    return f;
}

static void fx_free(fx *f)
{
    heal_fx_stop(&f->h);
    free(f);
}

typedef heal_fx_find find;

/* How many genome actions' audit records match q (heal_fx_audit_count). */
static int audit_count(fx *f, find *q)
{
    q->action = "genome";
    return heal_fx_audit_count(&f->h, q);
}

static heal_action genome(const char *op, const char *arg)
{
    heal_action a = {.kind = HEAL_ACT_GENOME};
    snprintf(a.key, sizeof a.key, "%s", op);
    snprintf(a.value, sizeof a.value, "%s", arg);
    return a;
}

/* ---- tests ---- */

static void test_kind(void **state)
{
    (void)state;
    char text[256], err[512];
    assert_string_equal(heal_action_name(HEAL_ACT_GENOME), "genome");
    assert_int_equal(heal_action_kind_parse("genome"), HEAL_ACT_GENOME);
    heal_action a = genome("apply", OID);
    assert_int_equal(heal_action_format(&a, text, sizeof text), 0);
    assert_string_equal(text, "genome apply 1a2b3c4");
    a = genome("tool", "draft-3");
    assert_int_equal(heal_action_format(&a, text, sizeof text), 0);
    assert_string_equal(text, "genome tool draft-3");
    /* never from a rule, nor from a model's proposal text */
    heal_action b;
    assert_int_equal(heal_action_parse_text("genome apply " OID, "web", &b, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "not an action a rule may take"));
    heal_rule r;
    assert_int_equal(heal_rule_parse("if cpu > 90% then genome apply abc", "r.conf", 3, &r, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "r.conf:3:"));
    assert_non_null(strstr(err, "genome"));
    /* nor on a service's allowlist, not even "all" */
    snprintf(a.service, sizeof a.service, "web");
    assert_int_equal(heal_action_check(&a, "all", NULL, 0, err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "never a service's"));
}

static void test_config(void **state)
{
    (void)state;
    const char *bad[][2] = {
        {"[evolve]\nchanges = sometimes\n", "changes: 'sometimes' is not execute, approve or refuse"},
        {"[evolve]\nprobation = soon\n", "probation: 'soon' is not a duration"},
        {"[evolve]\nspeed = 3\n", "unknown key 'speed' in [evolve]"},
        {"[service.cell]\ncommand = /bin/true\n", "reserved for the cell"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        core_config c;
        char err[1024] = "";
        core_config_defaults(&c);
        assert_int_equal(core_config_load_string(&c, bad[i][0], "e.conf", err, sizeof err), 0);
        assert_int_equal(heal_config_check(&c, err, sizeof err), -EINVAL);
        if (!strstr(err, bad[i][1]) || !strstr(err, "e.conf:"))
            fail_msg("'%s': got '%s'", bad[i][0], err);
        core_config_free(&c);
    }
    core_config c;
    char err[1024] = "";
    core_config_defaults(&c);
    assert_int_equal(core_config_load_string(&c, "[evolve]\nchanges = execute\nprobation = 20s\n", "ok.conf", err,
                                             sizeof err), 0);
    assert_int_equal(heal_config_check(&c, err, sizeof err), 0);
    core_config_free(&c);
}

static void test_change_execute(void **state)
{
    (void)state;
    fx *f = fx_new("execute");
    char verdict[32], err[512];
    heal_action a = genome("apply", OID);
    assert_int_equal(heal_engine_change(f->h.e, &a, "operator", "rollback to the morning", verdict, sizeof verdict,
                                        err, sizeof err), 0);
    assert_string_equal(verdict, "execute");
    find q = {.kind = "result"};
    assert_int_equal(audit_count(f, &q), 1);
    assert_int_equal(f->calls, 1);
    assert_string_equal(f->op, "apply");
    assert_string_equal(f->arg, OID);
    assert_string_equal(json_string_value(json_object_get(json_object_get(q.rec, "outcome"), "status")) ?: "?", "ok");
    json_decref(q.rec);
    find in = {.kind = "intent"};
    assert_int_equal(audit_count(f, &in), 1);
    json_t *act = json_object_get(in.rec, "action");
    assert_string_equal(json_string_value(json_object_get(act, "op")), "apply");
    assert_string_equal(json_string_value(json_object_get(act, "arg")), OID);
    assert_string_equal(json_string_value(json_object_get(in.rec, "service")), "cell");
    assert_non_null(strstr(json_string_value(json_object_get(in.rec, "reason")), "operator: rollback to the morning"));
    json_decref(in.rec);
    /* a failing executor: the result says so */
    f->rc = -EIO;
    a = genome("apply", "deadbeef");
    assert_int_equal(heal_engine_change(f->h.e, &a, "ippoc", "revert", verdict, sizeof verdict, err, sizeof err), 0);
    find q2 = {.kind = "result"};
    int64_t end = core_mono_ms() + 2000;
    while (audit_count(f, &q2) < 2 && core_mono_ms() < end)
        uv_run(&f->h.loop, UV_RUN_ONCE);
    assert_int_equal(q2.found, 2);
    assert_string_equal(json_string_value(json_object_get(json_object_get(q2.rec, "outcome"), "status")) ?: "?",
                        "failed");
    json_decref(q2.rec);
    fx_free(f);
}

static void test_change_approve(void **state)
{
    (void)state;
    fx *f = fx_new(NULL); /* the default: approve */
    char verdict[32], err[512];
    heal_action a = genome("apply", OID);
    assert_int_equal(heal_engine_change(f->h.e, &a, "operator", "rollback", verdict, sizeof verdict, err, sizeof err), 0);
    assert_string_equal(verdict, "queue");
    unsigned long long id = 0;
    assert_int_equal(sscanf(err, "pending #%llu", &id), 1);
    find q = {.kind = "decision", .verdict = "queue"};
    assert_int_equal(audit_count(f, &q), 1);
    json_decref(q.rec);
    assert_int_equal(f->calls, 0);
    char *pending = heal_engine_pending_json(f->h.e);
    assert_non_null(strstr(pending, "genome apply 1a2b3c4"));
    free(pending);
    assert_int_equal(heal_engine_approve(f->h.e, id, "alice", err, sizeof err), 0);
    find r = {.kind = "result"};
    assert_int_equal(audit_count(f, &r), 1);
    json_decref(r.rec);
    assert_int_equal(f->calls, 1);
    assert_string_equal(f->arg, OID);
    fx_free(f);
}

static void test_change_refuse(void **state)
{
    (void)state;
    fx *f = fx_new("refuse");
    char verdict[32], err[512];
    heal_action a = genome("apply", OID);
    assert_int_equal(heal_engine_change(f->h.e, &a, "tool", "try", verdict, sizeof verdict, err, sizeof err), -EPERM);
    assert_string_equal(verdict, "refuse");
    assert_true(err[0] != 0);
    find q = {.kind = "decision", .verdict = "refuse"};
    assert_int_equal(audit_count(f, &q), 1);
    json_decref(q.rec);
    /* a genome action aimed at a service is refused whatever the setting */
    snprintf(a.service, sizeof a.service, "web");
    assert_int_equal(heal_engine_change(f->h.e, &a, "tool", "try", verdict, sizeof verdict, err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "not service 'web'"));
    assert_int_equal(f->calls, 0);
    /* any other action goes through the same door (a tool's proposal): a
     * machine-wide sysctl is not on the default allowlist */
    heal_action s;
    assert_int_equal(heal_action_parse_text("sysctl vm.swappiness = 10", "", &s, err, sizeof err), 0);
    assert_int_equal(heal_engine_change(f->h.e, &s, "tool", "swap less", verdict, sizeof verdict, err, sizeof err),
                     -EPERM);
    assert_string_equal(verdict, "refuse");
    assert_non_null(strstr(err, "sysctl"));
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_change_execute),
        cmocka_unit_test(test_change_approve),
        cmocka_unit_test(test_change_refuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
