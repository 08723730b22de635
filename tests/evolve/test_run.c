/* test_run.c: the experiment loop (src/evolve/run.c) through its routes,
 * without the daemon: a real fitness process (fitness.py) whose output
 * depends on a knob in a temporary file. A better value is accepted and
 * becomes the incumbent; noise alone accepts nothing; a failing candidate
 * is recorded as killed; the knob file gets the incumbent back; a stopped
 * cell leaves its run "interrupted" for the next one, and after a crash
 * the next one restores the knob files. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "evolve/evolve_int.h"
#include "evolve_test_util.h"

static char dir[64];
static evolve_cell cell;

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test-run-XXXXXX");
    assert_non_null(mkdtemp(dir));
    memset(&cell, 0, sizeof cell);
    snprintf(cell.evolve_dir, sizeof cell.evolve_dir, "%s/evolve", dir);
    cell.o.shim = getenv("IPPOCD"); /* ippocd has the sandbox's shim (--sandbox-exec) */
    char err[512] = "";
    if (evolve_runs_new(&cell, &cell.runs, err, sizeof err))
        fail_msg("evolve_runs_new: %s", err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    evolve_runs_free(cell.runs);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static char *http(const char *method, const char *path, const char *body, int *status)
{
    return evolve_runs_http(&cell, method, path, NULL, body, body ? strlen(body) : 0, status);
}

/* Starts a run of the one-knob space in mode (knob_extra: more lines in
 * its [knob] section); returns its id. */
static void start_knob(const char *mode, const char *extra, const char *knob_extra, char *id, size_t idlen)
{
    char conf[128], space[2048], body[4096], fit[512];
    snprintf(conf, sizeof conf, "%s/app.conf", dir);
    etu_write(conf, "# the app\nthreads = 8\nother = 1\n");
    snprintf(space, sizeof space,
             "[space]\nname = app\n[knob threads]\nfile = %s\ntype = int\nmin = 16\nmax = 16\n%s", conf,
             knob_extra ? knob_extra : "");
    snprintf(fit, sizeof fit, "python3 %s/tests/evolve/fitness.py %s threads %s", getenv("IPPOC_SRC"), conf, mode);
    json_t *b = json_pack("{s:s,s:s,s:s,s:i,s:i}", "space_text", space, "space_path", "app.space", "fitness", fit,
                          "budget_s", 60, "repeats", 6);
    if (extra) {
        json_t *e = json_loads(extra, 0, NULL);
        assert_non_null(e);
        json_object_update(b, e);
        json_decref(e);
    }
    char *s = json_dumps(b, 0);
    snprintf(body, sizeof body, "%s", s);
    free(s);
    json_decref(b);
    int status = 0;
    char *ans = http("POST", "/v1/evolve/runs", body, &status);
    if (status != 202)
        fail_msg("POST: %d %s", status, ans);
    json_t *j = json_loads(ans, 0, NULL);
    snprintf(id, idlen, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    free(ans);
}

static void start(const char *mode, const char *extra, char *id, size_t idlen)
{
    start_knob(mode, extra, NULL, id, idlen);
}

/* Polls the run until it is no longer running (30 s at most). */
static json_t *wait_done(const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/evolve/runs/%s", id);
    for (int i = 0; i < 600; i++) {
        int status;
        char *ans = http("GET", path, NULL, &status);
        assert_int_equal(status, 200);
        json_t *j = json_loads(ans, 0, NULL);
        free(ans);
        if (strcmp(json_string_value(json_object_get(j, "status")), "running"))
            return j;
        json_decref(j);
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fail_msg("run %s still running after 30 s", id);
    return NULL;
}

static void test_accepts_better(void **state)
{
    (void)state;
    char id[32];
    start("knob", NULL, id, sizeof id);
    json_t *run = wait_done(id);
    json_t *t = json_array_get(json_object_get(run, "trials"), 0);
    assert_non_null(t);
    if (strcmp(json_string_value(json_object_get(t, "decision")), "accepted"))
        fail_msg("trial 1: %s", json_dumps(t, 0));
    assert_string_equal(json_string_value(json_object_get(json_object_get(t, "values"), "threads")), "16");
    assert_true(json_real_value(json_object_get(t, "median")) > 120);
    assert_true(json_real_value(json_object_get(t, "gain")) > 0.2);
    assert_int_equal(json_array_size(json_object_get(run, "accepted")), 1);
    assert_string_equal(json_string_value(json_object_get(run, "status")), "done");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_object_get(run, "incumbent"), "values"), "threads")),
        "16");
    /* 2 screening + race up to 6 + 5 confirmation pairs */
    assert_int_equal(json_array_size(json_object_get(t, "fitness")), 11);
    char conf[128];
    snprintf(conf, sizeof conf, "%s/app.conf", dir);
    assert_string_equal(etu_read(conf), "# the app\nthreads = 16\nother = 1\n");
    char orig[160];
    snprintf(orig, sizeof orig, "%s/evolve/runs/%s.orig.0", dir, id);
    assert_int_equal(access(orig, F_OK), -1); /* the original's copy goes with a finished run */
    json_decref(run);
}

static void test_rejects_noise(void **state)
{
    (void)state;
    char id[32];
    start("noise", NULL, id, sizeof id);
    json_t *run = wait_done(id);
    json_t *t = json_array_get(json_object_get(run, "trials"), 0);
    assert_non_null(t);
    assert_string_equal(json_string_value(json_object_get(t, "decision")), "rejected");
    assert_int_equal(json_array_size(json_object_get(run, "accepted")), 0);
    char conf[128];
    snprintf(conf, sizeof conf, "%s/app.conf", dir);
    assert_string_equal(etu_read(conf), "# the app\nthreads = 8\nother = 1\n"); /* restored byte for byte */
    json_decref(run);
}

static void test_killed(void **state)
{
    (void)state;
    char id[32];
    start("fail", NULL, id, sizeof id);
    json_t *run = wait_done(id);
    json_t *t = json_array_get(json_object_get(run, "trials"), 0);
    assert_string_equal(json_string_value(json_object_get(t, "decision")), "killed");
    assert_string_equal(json_string_value(json_object_get(t, "verdict")), "failed");
    json_decref(run);
}

/* An apply command that fails for the candidate's values: the candidate is
 * killed, the run goes on (the incumbent's apply succeeds). */
static void test_apply_fails(void **state)
{
    (void)state;
    char id[32], extra[512];
    snprintf(extra, sizeof extra, "apply = sh -c \"! grep -q 'threads = 16' %s/app.conf\"\n", dir);
    start_knob("knob", NULL, extra, id, sizeof id);
    json_t *run = wait_done(id);
    json_t *t = json_array_get(json_object_get(run, "trials"), 0);
    assert_string_equal(json_string_value(json_object_get(run, "status")), "done");
    assert_string_equal(json_string_value(json_object_get(t, "decision")), "killed");
    const char *detail = json_string_value(json_object_get(t, "detail"));
    if (!detail || !strstr(detail, "apply 'sh -c"))
        fail_msg("detail: %s", detail ? detail : "(none)");
    json_decref(run);
}

static void test_bad_requests(void **state)
{
    (void)state;
    int status;
    char *ans = http("POST", "/v1/evolve/runs",
                     "{\"space_text\":\"[space]\\nname = x\\n[knob a]\\nfile = rel\\n\",\"space_path\":\"x.space\","
                     "\"fitness\":\"true\"}",
                     &status);
    assert_int_equal(status, 400);
    assert_non_null(strstr(ans, "x.space:4: file 'rel' is not an absolute path"));
    free(ans);
    ans = http("POST", "/v1/evolve/runs", "{\"space\":\"/nonexistent.space\"}", &status);
    assert_int_equal(status, 400);
    assert_non_null(strstr(ans, "/nonexistent.space"));
    free(ans);
    ans = http("POST", "/v1/evolve/runs", "{\"space_text\":\"\",\"repeats\":\"many\"}", &status);
    assert_int_equal(status, 400);
    assert_non_null(strstr(ans, "repeats"));
    free(ans);
    ans = http("GET", "/v1/evolve/runs/999", NULL, &status);
    assert_int_equal(status, 404);
    free(ans);
    ans = http("POST", "/v1/evolve/runs/999/stop", NULL, &status);
    assert_int_equal(status, 404);
    free(ans);
}

/* A cell freed during a run: the next one shows it "interrupted". */
static void test_interrupted(void **state)
{
    (void)state;
    char id[32];
    start("noise", "{\"repeats\": 50, \"min_gain\": 0}", id, sizeof id);
    evolve_runs_free(cell.runs);
    char err[256];
    assert_int_equal(evolve_runs_new(&cell, &cell.runs, err, sizeof err), 0);
    int status;
    char path[64];
    snprintf(path, sizeof path, "/v1/evolve/runs/%s", id);
    char *ans = http("GET", path, NULL, &status);
    assert_int_equal(status, 200);
    assert_non_null(strstr(ans, "\"status\":\"interrupted\""));
    free(ans);
    ans = http("GET", "/v1/evolve", NULL, &status);
    assert_int_equal(status, 200);
    assert_non_null(strstr(ans, "\"runs\":[{"));
    free(ans);
    char conf[128];
    snprintf(conf, sizeof conf, "%s/app.conf", dir);
    assert_string_equal(etu_read(conf), "# the app\nthreads = 8\nother = 1\n");
}

/* A daemon that died during a run: the next one restores the knob files
 * from the originals kept beside the record. */
static void test_crash_restores(void **state)
{
    (void)state;
    char conf[128], saved[192], rec[192], doc[1024], gone[128];
    snprintf(conf, sizeof conf, "%s/app.conf", dir);
    snprintf(gone, sizeof gone, "%s/new.conf", dir);
    snprintf(saved, sizeof saved, "%s/evolve/runs/7.orig.0", dir);
    snprintf(rec, sizeof rec, "%s/evolve/runs/7.json", dir);
    etu_write(conf, "threads = 16\n");  /* a candidate's value, left by the crash */
    etu_write(gone, "threads = 16\n"); /* a knob file the run created */
    etu_write(saved, "# the app\nthreads = 8\n");
    snprintf(doc, sizeof doc,
             "{\"id\":\"7\",\"status\":\"running\",\"trials\":[],\"accepted\":[],"
             "\"originals\":[{\"file\":\"%s\",\"saved\":\"%s\"},{\"file\":\"%s\",\"saved\":null}]}",
             conf, saved, gone);
    etu_write(rec, doc);
    evolve_runs_free(cell.runs);
    char err[256];
    assert_int_equal(evolve_runs_new(&cell, &cell.runs, err, sizeof err), 0);
    assert_string_equal(etu_read(conf), "# the app\nthreads = 8\n");
    assert_int_equal(access(gone, F_OK), -1);
    assert_int_equal(access(saved, F_OK), -1);
    int status;
    char *ans = http("GET", "/v1/evolve/runs/7", NULL, &status);
    assert_int_equal(status, 200);
    assert_non_null(strstr(ans, "\"status\":\"interrupted\""));
    assert_non_null(strstr(ans, "\"outcome\":\"restored\""));
    free(ans);
    /* the next run's id follows */
    char id[32];
    start("noise", NULL, id, sizeof id);
    assert_string_equal(id, "8");
    json_decref(wait_done(id));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accepts_better, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejects_noise, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_restores, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
