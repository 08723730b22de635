/* test_registry.c: the per-series detector registry (src/detect/registry.c)
 * over a real memory store (a SQLite file in a temporary dir): only the
 * series its globs watch get a detector; a flat series that jumps is
 * anomalous in the scores (the flag /metrics reads), the anomalous() rule
 * check, the JSON and an `anomaly` event, and calm again once
 * keep_firing_for has passed; the learned state is saved and restored; a
 * reload turning detection off empties the scores. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "detect/detect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEEP_MS 5000

static core_config cfg; /* large: off the stack */
static char dir[64];

static void load_config(const char *text)
{
    char err[512];
    core_config_free(&cfg);
    core_config_defaults(&cfg);
    if (core_config_load_string(&cfg, text, "t.conf", err, sizeof err) != 0)
        fail_msg("config: %s", err);
    core_sncpy(cfg.state_dir, sizeof cfg.state_dir, dir);
}

/* One tick: the watched series (level, or a jump), the unwatched one. */
static void tick(mem_t *m, detect_registry *r, int ida, int idb, int64_t ts, double a)
{
    mem_put(m, ida, a);
    mem_put(m, idb, 1);
    assert_int_equal(mem_tick(m, ts), 0);
    detect_registry_tick(r, ts);
}

static double level(int i) { return 50 + 0.5 * (i * 7 % 5); }

/* The score entry of family name, or NULL; *n the entries' count. */
static const detect_score *score_of(const detect_score *s, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s[i].name, name))
            return &s[i];
    return NULL;
}

static void test_registry(void **state)
{
    (void)state;
    char err[512];
    snprintf(dir, sizeof dir, "/tmp/ippoc-registry-XXXXXX");
    assert_non_null(mkdtemp(dir));
    load_config("[detect]\ninclude = app.*\nfor = 0s\nkeep_firing_for = 5s\nsave_interval = 10s\n");
    mem_t *m = NULL;
    if (mem_open(&m, &cfg, err, sizeof err) != 0)
        fail_msg("mem_open: %s", err);
    int ida = mem_series(m, "app.level", "name=\"web\"", "", "a level", MEM_GAUGE);
    int idb = mem_series(m, "other.x", "", "", "not watched", MEM_GAUGE);
    assert_true(ida >= 0 && idb >= 0);
    detect_registry *r = NULL;
    if (detect_registry_new(&r, m, &cfg, err, sizeof err) != 0)
        fail_msg("detect_registry_new: %s", err);

    int64_t t0 = core_now_ms() / 1000 * 1000, ts = t0;
    for (int i = 0; i < 300; i++, ts += 1000)
        tick(m, r, ida, idb, ts, level(i));
    detect_score *s = NULL;
    int n = detect_registry_scores(r, &s);
    assert_int_equal(n, 1); /* other.x is not watched */
    assert_string_equal(s[0].name, "app.level");
    assert_string_equal(s[0].labels, "name=\"web\"");
    assert_false(s[0].anomalous);
    free(s);
    char key[DETECT_KEY_MAX];
    double sc = 0;
    assert_int_equal(detect_registry_rule_check(r, "app.*", "", key, sizeof key, &sc), 0);

    /* the jump: anomalous now, in every reader */
    tick(m, r, ida, idb, ts, 500);
    ts += 1000;
    n = detect_registry_scores(r, &s);
    const detect_score *a = score_of(s, n, "app.level");
    assert_non_null(a);
    assert_true(a->anomalous);
    assert_true(a->score >= DETECT_THRESHOLD_DEFAULT);
    free(s);
    assert_int_equal(detect_registry_rule_check(r, "app.*", "name=\"web\"", key, sizeof key, &sc), 1);
    assert_string_equal(key, "app.level{name=\"web\"}");
    assert_true(sc >= DETECT_THRESHOLD_DEFAULT);
    assert_int_equal(detect_registry_rule_check(r, "app.*", "name=\"db\"", key, sizeof key, &sc), 0);
    char *js = detect_registry_json(r, false);
    assert_non_null(js);
    assert_non_null(strstr(js, "\"anomalous\":1"));
    free(js);

    /* back to its level: still anomalous within keep_firing_for, then calm */
    int64_t jump = ts - 1000;
    int back = 0;
    for (int i = 0; i < 20; i++, ts += 1000) {
        tick(m, r, ida, idb, ts, level(i));
        n = detect_registry_scores(r, &s);
        a = score_of(s, n, "app.level");
        assert_non_null(a);
        if (!a->anomalous && !back)
            back = (int)(ts - jump);
        free(s);
    }
    assert_true(back >= KEEP_MS);
    assert_int_equal(detect_registry_rule_check(r, "app.*", "", key, sizeof key, &sc), 0);

    /* the event, through the store */
    assert_int_equal(mem_flush(m, 10000), 0);
    mem_event *ev = NULL;
    size_t nev = 0;
    assert_int_equal(mem_events_query(m, &(mem_event_query){.type = "anomaly", .limit = 100}, &ev, &nev, err,
                                      sizeof err), 0);
    assert_true(nev >= 1);
    assert_non_null(strstr(ev[0].payload, "app.level"));
    /* explained: the band, how far it left it, a summary line naming the series and the value */
    assert_non_null(strstr(ev[0].payload, "\"lo\":"));
    assert_non_null(strstr(ev[0].payload, "\"hi\":"));
    assert_null(strstr(ev[0].payload, "\"departure\":null"));
    assert_non_null(strstr(ev[0].payload, "\"departure\":"));
    assert_non_null(strstr(ev[0].payload, "\"summary\":\"app.level{name=\\\"web\\\"}: 500.0 vs expected "));
    mem_events_free(ev, nev);
    /* its episode, opened and closed: both name it as the first mover */
    assert_int_equal(mem_events_query(m, &(mem_event_query){.type = "anomaly.episode", .limit = 100}, &ev, &nev,
                                      err, sizeof err), 0);
    int closed = 0;
    for (size_t i = 0; i < nev; i++) {
        assert_non_null(strstr(ev[i].payload, "\"first\":{\"metric\":\"app.level\""));
        assert_non_null(strstr(ev[i].payload, "\"summary\":\"episode 1"));
        closed += strstr(ev[i].payload, "\"state\":\"closed\"") != NULL;
    }
    assert_int_equal(nev, 2);
    assert_int_equal(closed, 1);
    mem_events_free(ev, nev);

    /* saved, then restored by a new registry on the same store */
    assert_int_equal(detect_registry_save(r, ts), 0);
    assert_int_equal(mem_flush(m, 10000), 0);
    detect_registry_free(r);
    r = NULL;
    if (detect_registry_new(&r, m, &cfg, err, sizeof err) != 0)
        fail_msg("detect_registry_new again: %s", err);
    js = detect_registry_json(r, true);
    assert_non_null(js);
    assert_non_null(strstr(js, "\"watched\":1"));
    assert_null(strstr(js, "\"samples\":0")); /* what it learned came back */
    free(js);

    /* a reload turning detection off: no scores, rules told it is off */
    load_config("[detect]\nenabled = no\n");
    assert_int_equal(detect_registry_reconfigure(r, &cfg, err, sizeof err), 0);
    tick(m, r, ida, idb, ts, level(0));
    n = detect_registry_scores(r, &s);
    assert_int_equal(n, 0);
    free(s);
    assert_int_equal(detect_registry_rule_check(r, "app.*", "", key, sizeof key, &sc), -ENOENT);
    /* and a bad [detect] is refused with the place, nothing changed */
    load_config("[detect]\nthreshold = 2\n");
    assert_int_equal(detect_registry_reconfigure(r, &cfg, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "t.conf:2"));

    detect_registry_free(r);
    mem_close(m);
    core_config_free(&cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
