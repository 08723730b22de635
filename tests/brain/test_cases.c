/* test_cases.c: the case store. Cases recorded through a real memory store
 * (a SQLite file in a temporary state dir) come back after closing and
 * reopening it (the daemon's restart), with their attempts and outcomes;
 * recall ranks by weighted Jaccard similarity, rarer features weighing
 * more; and what is shown in a diagnosis comes from the recall. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "brain/brain_int.h"
#include "brain_test_util.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct fx {
    char dir[64];
    core_config cfg;
    mem_t *m;
} fx;

static void open_mem(fx *x)
{
    x->m = btu_mem_open(&x->cfg);
}

static int setup(void **st)
{
    fx *x = calloc(1, sizeof *x);
    btu_tmpdir(x->dir, sizeof x->dir, "brain-cases");
    btu_config(&x->cfg, NULL, x->dir);
    open_mem(x);
    *st = x;
    return 0;
}

static int teardown(void **st)
{
    fx *x = *st;
    btu_close(x->m, &x->cfg, x->dir);
    free(x);
    return 0;
}

static json_t *feats(const char *a, const char *b, const char *c, const char *d)
{
    json_t *f = json_array();
    const char *v[] = {a, b, c, d};
    for (int i = 0; i < 4; i++)
        if (v[i])
            json_array_append_new(f, json_string(v[i]));
    return f;
}

static void test_restart_keeps_cases(void **st)
{
    fx *x = *st;
    brain_cases c;
    char err[512] = "";
    assert_int_equal(brain_cases_open(&c, x->m, err, sizeof err), 0);
    assert_int_equal(brain_cases_count(&c), 0);
    json_t *f1 = feats("trigger:crash", "exit:code:1", "log:new:error", "change:file");
    int64_t id = brain_cases_add(&c, 4, "web", "service", "config_error", f1);
    assert_true(id > 0);
    json_t *acts = json_pack("[ss]", "restore /etc/web.conf", "restart");
    json_t *first = json_pack("[s]", "restart");
    assert_int_equal(brain_cases_outcome(&c, id, first, false, 0), 0);
    json_decref(first);
    assert_int_equal(brain_cases_outcome(&c, id, acts, true, 4200), 0);
    json_t *f2 = feats("trigger:probe", "probe:http:timeout", "cpu:hog", NULL);
    int64_t id2 = brain_cases_add(&c, 9, "api", "service", "cpu_starvation", f2);
    assert_true(id2 > id);
    assert_int_equal(brain_cases_outcome(&c, 999, acts, true, 1), -ENOENT);
    brain_cases_close(&c);

    /* the daemon stops and starts again: a new memory on the same file */
    assert_int_equal(mem_flush(x->m, 5000), 0);
    mem_close(x->m);
    x->m = NULL;
    open_mem(x);
    assert_int_equal(brain_cases_open(&c, x->m, err, sizeof err), 0);
    assert_int_equal(brain_cases_count(&c), 2);
    json_t *k = brain_case_json(&c, id);
    assert_non_null(k);
    assert_string_equal(json_string_value(json_object_get(k, "fault_type")), "config_error");
    assert_string_equal(json_string_value(json_object_get(k, "component")), "web");
    assert_int_equal(json_integer_value(json_object_get(k, "incident")), 4);
    assert_int_equal(json_integer_value(json_object_get(k, "fixed")), 1);
    assert_int_equal(json_integer_value(json_object_get(k, "tried")), 2);
    assert_int_equal(json_integer_value(json_object_get(k, "mitigate_ms")), 4200);
    assert_true(json_equal(json_object_get(k, "features"), f1));
    json_decref(k);

    /* recall after the restart: the same fault finds it, with its fix */
    brain_case_hit h[BRAIN_CASE_HITS];
    int n = brain_cases_recall(&c, f1, h, BRAIN_CASE_HITS);
    assert_true(n >= 1);
    assert_int_equal(h[0].id, id);
    assert_true(h[0].similarity > 0.999);
    assert_string_equal(h[0].fault_type, "config_error");
    assert_true(json_equal(h[0].fixed_by, acts));
    assert_int_equal(h[0].fixed, 1);
    assert_int_equal(h[0].tried, 2);
    brain_case_hits_free(h, n);

    /* new ids continue after the stored ones */
    int64_t id3 = brain_cases_add(&c, 1, "web", "service", "crash", f1);
    assert_true(id3 > id2);
    brain_cases_close(&c);
    json_decref(acts);
    json_decref(f1);
    json_decref(f2);
}

static void test_unreadable_row_is_skipped(void **st)
{
    fx *x = *st;
    assert_int_equal(mem_case_save(x->m, 5, 0, "{\"fault_type\":\"bogus\",\"features\":[]}"), 0);
    assert_int_equal(mem_case_save(x->m, 6, 0, "not json"), 0);
    assert_int_equal(mem_case_save(x->m, 0, 0, "{}"), -EINVAL);
    assert_int_equal(mem_flush(x->m, 5000), 0);
    brain_cases c;
    char err[512] = "";
    assert_int_equal(brain_cases_open(&c, x->m, err, sizeof err), 0);
    assert_int_equal(brain_cases_count(&c), 0);
    brain_cases_close(&c);
}

/* A store of schema version 2 (before the cases) is migrated in place. */
static void test_migrate_v2(void **st)
{
    fx *x = *st;
    assert_int_equal(mem_case_save(x->m, 1, 0, "{}"), 0);
    assert_int_equal(mem_flush(x->m, 5000), 0);
    mem_close(x->m);
    x->m = NULL;
    char path[256];
    snprintf(path, sizeof path, "%s/ippoc.db", x->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "DROP TABLE cases; PRAGMA user_version = 2", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    open_mem(x);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT (SELECT user_version FROM pragma_user_version),"
                                            " (SELECT count(*) FROM cases)", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 4); /* cases (3), then prefs (4) */
    assert_int_equal(sqlite3_column_int(q, 1), 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
}

static void test_similarity_ranking(void **st)
{
    (void)st;
    brain_cases c;
    char err[64];
    assert_int_equal(brain_cases_open(&c, NULL, err, sizeof err), 0);
    /* "trigger:crash" and "exit:code:1" are common; "port:taken" is rare */
    json_t *common = feats("trigger:crash", "exit:code:1", NULL, NULL);
    for (int i = 0; i < 6; i++)
        brain_cases_add(&c, (uint64_t)i + 1, "web", "service", "crash", common);
    json_t *port = feats("trigger:crash", "exit:code:1", "port:taken", "log:new:error");
    int64_t pid = brain_cases_add(&c, 50, "web", "service", "port_in_use", port);
    json_t *oom = feats("trigger:crash", "exit:signal:KILL", "kernel:oom_kill", NULL);
    int64_t oid = brain_cases_add(&c, 51, "web", "service", "oom_kill", oom);

    /* a query sharing only the rare feature with the port case still ranks it
     * above the many cases sharing the two common ones */
    json_t *q = feats("trigger:crash", "exit:code:2", "port:taken", "log:new:error");
    brain_case_hit h[BRAIN_CASE_HITS];
    int n = brain_cases_recall(&c, q, h, BRAIN_CASE_HITS);
    assert_int_equal(n, 3);
    assert_int_equal(h[0].id, pid);
    assert_true(h[0].similarity > h[1].similarity);
    assert_true(h[1].similarity >= h[2].similarity);
    brain_case_hits_free(h, n);

    /* the weights: identical sets 1, disjoint 0, symmetric */
    assert_true(brain_cases_similarity(&c, port, port) > 0.999);
    json_t *none = feats("x:y", NULL, NULL, NULL);
    assert_true(brain_cases_similarity(&c, port, none) == 0);
    double ab = brain_cases_similarity(&c, port, oom), ba = brain_cases_similarity(&c, oom, port);
    assert_true(ab > 0 && ab < 1 && ab == ba);
    /* sharing a rare feature counts more than sharing a common one */
    json_t *rare = feats("kernel:oom_kill", "a:1", NULL, NULL), *com = feats("trigger:crash", "a:1", NULL, NULL);
    assert_true(brain_cases_similarity(&c, rare, oom) > brain_cases_similarity(&c, com, oom));
    n = brain_cases_recall(&c, none, h, BRAIN_CASE_HITS);
    assert_int_equal(n, 0);
    (void)oid;
    json_decref(rare);
    json_decref(com);
    json_decref(none);
    json_decref(q);
    json_decref(common);
    json_decref(port);
    json_decref(oom);
    brain_cases_close(&c);
}

/* The case recalled is the one the diagnosis lists, with its fix first. */
static void test_recall_feeds_diagnosis(void **st)
{
    (void)st;
    brain_cases c;
    char err[64];
    assert_int_equal(brain_cases_open(&c, NULL, err, sizeof err), 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/brain/fixtures/port_in_use.json", getenv("IPPOC_SRC"));
    json_t *sig = json_load_file(path, 0, NULL);
    assert_non_null(sig);
    int64_t id = brain_cases_add(&c, 3, "web", "service", "port_in_use", json_object_get(sig, "features"));
    json_t *acts = json_pack("[ss]", "signal TERM pid 6060", "restart");
    brain_cases_outcome(&c, id, acts, true, 3000);
    brain_case_hit h[BRAIN_CASE_HITS];
    int n = brain_cases_recall(&c, json_object_get(sig, "features"), h, BRAIN_CASE_HITS);
    json_t *d = brain_diagnose(sig, h, n);
    brain_case_hits_free(h, n);
    assert_string_equal(json_string_value(json_object_get(d, "source")), "rules+cases");
    json_t *c0 = json_array_get(json_object_get(d, "cases"), 0);
    assert_int_equal(json_integer_value(json_object_get(c0, "incident")), 3);
    assert_true(json_equal(json_object_get(c0, "fixed_by"), acts));
    json_decref(d);
    json_decref(acts);
    json_decref(sig);
    brain_cases_close(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_restart_keeps_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_row_is_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v2, setup, teardown),
        cmocka_unit_test(test_similarity_ranking),
        cmocka_unit_test(test_recall_feeds_diagnosis),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
