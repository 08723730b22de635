/* test_cell_wisdom.c: the fleet's wisdom for the brain (part fixpass), on two
 * real cells in one process over loopback UDP: a's memory holds a case
 * healed by a restart; once its fix record reached b, b's candidates for an
 * incident with those features on a service of that kind name the restart
 * with a behind it; its outcome moves a's trust as b sees it (up when it
 * worked, down when it failed) and nothing else's; other kinds, other
 * features, a stopped cell or an action never proposed give nothing. A case
 * a learns later reaches b within [mesh] publish_interval_ms. Several
 * threads ask at once while the loop reports (TSan watches the lock). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cellfix.h"

#include "mesh/identity.h"
#include "mesh/mesh.h"

#define DEADLINE_MS CELLFIX_DEADLINE_MS

/* a's trust as b's peer view shows it. */
static double trust_of(mesh_cell *m, const char *id)
{
    json_t *j = cellfix_view(mesh_cell_peers_json(m)), *p;
    size_t i;
    double t = NAN;
    json_array_foreach(json_object_get(j, "peers"), i, p)
        if (!strcmp(json_string_value(json_object_get(p, "node_id")), id))
            t = json_real_value(json_object_get(p, "trust"));
    json_decref(j);
    return t;
}

static int ask(mesh_cell *m, const char *f1, const char *f2, const char *kind, mesh_cell_wisdom_cand *out, int max)
{
    char err[512] = "";
    json_t *f = json_pack("[s, s]", f1, f2);
    int n = mesh_cell_wisdom_candidates(m, f, kind, out, max, err, sizeof err);
    json_decref(f);
    if (n < 0)
        fail_msg("candidates: %s", err);
    return n;
}

/* Polls until b's candidates for (f1, f2, kind) name action. */
static bool wait_candidate(mesh_cell *m, const char *f1, const char *f2, const char *kind, const char *action,
                           mesh_cell_wisdom_cand *out)
{
    for (int t = 0; t < DEADLINE_MS; t += 50) {
        mesh_cell_wisdom_cand c[8];
        int n = ask(m, f1, f2, kind, c, 8);
        for (int i = 0; i < n; i++)
            if (!strcmp(c[i].action, action)) {
                *out = c[i];
                return true;
            }
        usleep(50000);
    }
    return false;
}

static void *asker(void *ud)
{
    mesh_cell *m = ud;
    for (int i = 0; i < 40; i++) {
        mesh_cell_wisdom_cand c[4];
        if (ask(m, "exit:signal:KILL", "probe:http:refused", "nginx", c, 4) != 1)
            return (void *)1;
    }
    return NULL;
}

static void save_case(mem_t *mem, int64_t id, const char *f1, const char *f2, const char *action)
{
    char text[512];
    snprintf(text, sizeof text,
             "{\"id\":%lld,\"component\":\"nginx\",\"kind\":\"service\",\"fault_type\":\"crash\","
             "\"features\":[\"%s\",\"%s\"],\"attempts\":[{\"actions\":[\"%s\"],\"healed\":true},"
             "{\"actions\":[\"%s\"],\"healed\":true}]}",
             (long long)id, f1, f2, action, action);
    assert_int_equal(mem_case_save(mem, id, 0, text), 0);
    assert_int_equal(mem_flush(mem, 5000), 0);
}

static void fix_passes(void **state)
{
    (void)state;
    char fleet[] = "/tmp/ippoc-wis-f-XXXXXX", da[] = "/tmp/ippoc-wis-a-XXXXXX", db[] = "/tmp/ippoc-wis-b-XXXXXX";
    char err[1024] = "";
    cellfix_pair(fleet, da, db);

    core_config ca, cb;
    cellfix_config(&ca, da, NULL, "publish_interval_ms = 300\n");
    mem_t *mem = NULL;
    if (mem_open(&mem, &ca, err, sizeof err))
        fail_msg("mem_open: %s", err);
    save_case(mem, 1, "exit:signal:KILL", "probe:http:refused", "restart");

    mesh_cell *a = NULL, *b = NULL;
    mesh_cell_opts oa = {.state_dir = da, .mem = mem}, ob = {.state_dir = db};
    if (mesh_cell_new(&oa, &a, err, sizeof err) || mesh_cell_configure(a, &ca, err, sizeof err))
        fail_msg("cell a: %s", err);
    char seed[80];
    cellfix_listen(a, seed, sizeof seed);

    /* a cell not running knows no wisdom; bad arguments are refused */
    if (mesh_cell_new(&ob, &b, err, sizeof err))
        fail_msg("cell b: %s", err);
    mesh_cell_wisdom_cand c[8];
    assert_int_equal(ask(b, "exit:signal:KILL", "probe:http:refused", "nginx", c, 8), 0);
    json_t *notarray = json_string("x");
    assert_int_equal(mesh_cell_wisdom_candidates(b, notarray, "nginx", c, 8, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "features"));
    json_decref(notarray);

    cellfix_config(&cb, db, seed, "publish_interval_ms = 300\n");
    if (mesh_cell_configure(b, &cb, err, sizeof err))
        fail_msg("cell b: %s", err);
    assert_true(cellfix_wait_state(b, "cell-a", "alive"));

    /* a's fix record reaches b and becomes a candidate there, a behind it */
    mesh_cell_wisdom_cand got;
    assert_true(wait_candidate(b, "exit:signal:KILL", "probe:http:refused", "nginx", "restart", &got));
    assert_int_equal(got.k, 2);
    assert_int_equal(got.n, 2);
    assert_int_equal(got.origins, 1);
    assert_true(got.weight > 0 && got.weight <= 1);
    /* another kind of service, or features less than half alike, give nothing */
    assert_int_equal(ask(b, "exit:signal:KILL", "log:new", "nginx", c, 8), 0);
    assert_int_equal(ask(b, "exit:signal:KILL", "probe:http:refused", "postgres", c, 8), 0);
    assert_int_equal(ask(b, "disk:full", "log:new", "nginx", c, 8), 0);
    /* a's own record is its memory's, not the fleet's: its outcome moves nothing */
    json_t *f = json_pack("[s, s]", "exit:signal:KILL", "probe:http:refused");
    assert_int_equal(ask(a, "exit:signal:KILL", "probe:http:refused", "nginx", c, 8), 1);
    assert_int_equal(mesh_cell_wisdom_outcome(a, "restart", f, true), 0);

    /* several workers ask at once while the loop reports */
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, asker, b), 0);

    /* it worked here: a's trust as b sees it rises; an action never proposed
     * for these features moves nothing */
    assert_true(cellfix_wait_state(b, "cell-a", "alive"));
    double t0 = trust_of(b, "cell-a");
    assert_false(isnan(t0));
    assert_int_equal(mesh_cell_wisdom_outcome(b, "stop", f, true), 0);
    assert_int_equal(mesh_cell_wisdom_outcome(b, "restart", f, true), 1);
    double t1 = trust_of(b, "cell-a");
    assert_true(t1 > t0 + 0.5);
    /* it failed here: a's trust falls, below where it started (a failure weighs double) */
    assert_int_equal(mesh_cell_wisdom_outcome(b, "restart", f, false), 1);
    double t2 = trust_of(b, "cell-a");
    assert_true(t2 < t0);
    for (int i = 0; i < 3; i++) {
        void *r = NULL;
        assert_int_equal(pthread_join(th[i], &r), 0);
        assert_null(r);
    }
    json_decref(f);

    /* a case a learns later reaches b within publish_interval_ms (300 here) */
    save_case(mem, 2, "exit:code:3", "log:hint:dns", "restart");
    assert_true(wait_candidate(b, "exit:code:3", "log:hint:dns", "nginx", "restart", &got));
    assert_int_equal(got.origins, 1);

    /* the trust b learned is saved with its store: it is there after a restart of b */
    mesh_cell_free(b);
    b = NULL;
    if (mesh_cell_new(&ob, &b, err, sizeof err) || mesh_cell_configure(b, &cb, err, sizeof err))
        fail_msg("cell b again: %s", err);
    assert_true(cellfix_wait_state(b, "cell-a", "alive"));
    double t3 = trust_of(b, "cell-a");
    assert_true(t3 < t0 + 0.05);

    mesh_cell_free(b);
    mesh_cell_free(a);
    mem_close(mem);
    core_config_free(&ca);
    core_config_free(&cb);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s'", fleet, da, db);
    if (system(cmd)) {
    }
}

/* [mesh] publish_interval_ms: its default, a value, and bad ones named with their place. */
static void publish_interval(void **state)
{
    (void)state;
    core_config c;
    mesh_config mc;
    char err[512];
    core_config_defaults(&c);
    assert_int_equal(mesh_config_parse(&c, &mc, err, sizeof err), 0);
    assert_int_equal(mc.publish_interval_ms, 60000);
    core_config_free(&c);
    const char *bad[] = {"100", "3600001", "-5", "soon", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128];
        core_config_defaults(&c);
        snprintf(text, sizeof text, "[mesh]\npublish_interval_ms = %s\n", bad[i]);
        if (core_config_load_string(&c, text, "cell.conf", err, sizeof err) == 0) {
            assert_int_equal(mesh_config_parse(&c, &mc, err, sizeof err), -EINVAL);
            assert_non_null(strstr(err, "cell.conf:2"));
            assert_non_null(strstr(err, "publish_interval_ms"));
        }
        core_config_free(&c);
    }
    core_config_defaults(&c);
    assert_int_equal(core_config_load_string(&c, "[mesh]\npublish_interval_ms = 500\n", "cell.conf", err, sizeof err), 0);
    assert_int_equal(mesh_config_parse(&c, &mc, err, sizeof err), 0);
    assert_int_equal(mc.publish_interval_ms, 500);
    core_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(publish_interval),
        cmocka_unit_test(fix_passes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
