/* test_dream.c: dreaming on a real memory store (a SQLite file in a
 * temporary state dir). A pass over seeded duplicate cases and a seeded
 * day of events merges the cases (the older id kept, attempts and counts
 * summed, the merge surviving a restart), writes a digest whose fields
 * count what was seeded, and is idempotent (a second pass merges nothing,
 * the digest is the same). Idleness is read from seeded series values: a
 * busy machine gets no pass from the schedule, an idle one does. */
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
#include <unistd.h>

typedef struct fx {
    char dir[64];
    core_config cfg;
    mem_t *m;
} fx;

static int setup(void **st)
{
    fx *x = calloc(1, sizeof *x);
    btu_tmpdir(x->dir, sizeof x->dir, "brain-dream");
    btu_config(&x->cfg, "[dream]\nidle_for = 0s\nevery = 1h\n", x->dir);
    x->m = btu_mem_open(&x->cfg);
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

static json_t *feats(const char *a, const char *b, const char *c)
{
    return json_pack("[sss]", a, b, c);
}

static void ev(fx *x, int64_t ts, const char *type, const char *sev, const char *src, json_t *p)
{
    char *t = json_dumps(p, JSON_COMPACT);
    assert_true(mem_event_add(x->m, ts, type, sev, src, t) > 0);
    free(t);
    json_decref(p);
}

/* A day of events: 2 incidents of web opened, 1 resolved in 4 s, 2 failed;
 * 2 restarts; an anomaly episode; a drift; a new error template; a restart
 * that healed and one that failed; a pending action; a refusal twice. */
static void seed_day(fx *x, int64_t from)
{
    int64_t h = 3600000;
    ev(x, from + 1 * h, "incident.open", "warning", "web", json_pack("{s:I}", "id", 1));
    ev(x, from + 1 * h + 10, "service.exit", "warning", "web", json_pack("{s:i}", "code", 1));
    ev(x, from + 1 * h + 20, "heal.action", "info", "web",
      json_pack("{s:s, s:s, s:s}", "action", "restart", "outcome", "ok", "reason", "policy"));
    ev(x, from + 1 * h + 30, "service.restart", "info", "web", json_pack("{s:s}", "service", "web"));
    ev(x, from + 1 * h + 40, "incident.resolved", "info", "web", json_pack("{s:I}", "time_to_heal_ms", 4000));
    ev(x, from + 2 * h, "incident.open", "warning", "web", json_pack("{s:I}", "id", 2));
    ev(x, from + 2 * h + 10, "heal.action", "error", "web",
      json_pack("{s:s, s:s, s:s}", "action", "restart", "outcome", "failed", "reason", "policy"));
    ev(x, from + 2 * h + 20, "service.restart", "info", "web", json_pack("{s:s}", "service", "web"));
    ev(x, from + 2 * h + 30, "incident.failed", "error", "web", json_pack("{s:I}", "id", 2));
    ev(x, from + 3 * h, "incident.failed", "error", "web", json_pack("{s:I}", "id", 1));
    ev(x, from + 4 * h, "anomaly.episode", "warning", "detect",
      json_pack("{s:i, s:s, s:{s:s}}", "episode", 1, "state", "open", "first", "metric", "cpu.usage_percent"));
    ev(x, from + 4 * h + 1, "anomaly", "warning", "detect",
      json_pack("{s:s, s:{}, s:s, s:s}", "metric", "fs.used_bytes", "labels", "key", "fs.used_bytes", "reason",
                "drift"));
    ev(x, from + 5 * h, "log.template.new", "warning", "web",
      json_pack("{s:s, s:s, s:s}", "source", "web", "template", "ERROR cannot open <*>", "level", "error"));
    ev(x, from + 5 * h + 1, "log.template.new", "info", "web",
      json_pack("{s:s, s:s, s:s}", "source", "web", "template", "GET <*> 200", "level", "info"));
    ev(x, from + 6 * h, "heal.pending", "info", "db",
      json_pack("{s:i, s:s, s:s}", "pending_id", 7, "action", "restart", "why", "probe failed"));
    for (int i = 0; i < 2; i++)
        ev(x, from + 7 * h + i, "heal.refused", "warning", "cache",
          json_pack("{s:s, s:s}", "action", "restart", "refusal", "flapping"));
    /* /var fills: 1 MB a minute from 08:00 to 10:00, 100 MB left at the end */
    const char *lab = "device=\"/dev/sda2\",mountpoint=\"/var\"";
    int used = mem_series(x->m, "fs.used_bytes", lab, "bytes", "", MEM_GAUGE);
    int avail = mem_series(x->m, "fs.avail_bytes", lab, "bytes", "", MEM_GAUGE);
    assert_true(used >= 0 && avail >= 0);
    for (int s = 0; s <= 7200; s += 10) {
        mem_put(x->m, used, 5e9 + s / 60.0 * 1e6);
        mem_put(x->m, avail, 100e6 + (7200 - s) / 60.0 * 1e6);
        assert_int_equal(mem_tick(x->m, from + 8 * h + (int64_t)s * 1000), 0);
    }
    assert_int_equal(mem_flush(x->m, 5000), 0);
}

static json_int_t at(const json_t *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *v = o;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
        v = json_object_get(v, k);
    if (!v)
        fail_msg("no %s in the digest", path);
    return json_integer_value(v);
}

static json_t *last_event(fx *x, const char *type)
{
    mem_event_query q = {.type = type, .limit = 1};
    mem_event *e = NULL;
    size_t n = 0;
    char err[256];
    assert_int_equal(mem_flush(x->m, 5000), 0);
    assert_int_equal(mem_events_query(x->m, &q, &e, &n, err, sizeof err), 0);
    json_t *p = n ? json_loads(e[0].payload, 0, NULL) : NULL;
    mem_events_free(e, n);
    return p;
}

static void test_pass_merges_and_digests(void **st)
{
    fx *x = *st;
    brain_cases c;
    char err[512] = "";
    assert_int_equal(brain_cases_open(&c, x->m, err, sizeof err), 0);
    /* three identical cases of web, one of another fault, one of another
     * component, one of web with many more features (not alike enough) */
    json_t *f = feats("trigger:crash", "exit:code:1", "log:new:error");
    json_t *f3 = json_pack("[ssssssssss]", "trigger:crash", "exit:code:1", "log:new:error", "a", "b", "c", "d", "e",
                           "f", "g");
    int64_t id1 = brain_cases_add(&c, 1, "web", "service", "crash", f);
    int64_t id2 = brain_cases_add(&c, 2, "web", "service", "crash", f);
    int64_t id3 = brain_cases_add(&c, 3, "web", "service", "crash", f);
    int64_t other = brain_cases_add(&c, 4, "web", "service", "config_error", f);
    int64_t elsewhere = brain_cases_add(&c, 5, "db", "service", "crash", f);
    int64_t far = brain_cases_add(&c, 6, "web", "service", "crash", f3);
    json_t *r = json_pack("[s]", "restart");
    assert_int_equal(brain_cases_outcome(&c, id1, r, true, 5000), 0);
    assert_int_equal(brain_cases_outcome(&c, id2, r, false, 0), 0);
    assert_int_equal(brain_cases_outcome(&c, id3, r, true, 3000), 0);
    json_decref(r);

    char day[11];
    int64_t from, to;
    brain_day_of(core_now_ms() - 86400000, day);
    assert_int_equal(brain_day_bounds(day, &from, &to), 0);
    seed_day(x, from);

    brain_dream_cfg cfg;
    brain_dream_cfg_defaults(&cfg);
    brain_mind m = {.mem = x->m, .cases = &c};
    /* just recorded: still being acted on, left alone */
    json_t *rep = brain_dream_pass(&m, &cfg, core_now_ms(), NULL, NULL);
    assert_int_equal(at(json_object_get(json_object_get(rep, "steps"), "cases"), "merged"), 0);
    assert_int_equal(brain_cases_count(&c), 6);
    json_decref(rep);
    /* an hour later they have settled */
    int64_t later = core_now_ms() + 3600000;
    rep = brain_dream_pass(&m, &cfg, later, day, NULL);
    assert_non_null(rep);
    json_t *cs = json_object_get(json_object_get(rep, "steps"), "cases");
    assert_int_equal(at(cs, "before"), 6);
    assert_int_equal(at(cs, "merged"), 2);
    assert_int_equal(at(cs, "after"), 4);
    json_t *mg = json_array_get(json_object_get(cs, "merges"), 0);
    assert_int_equal(at(mg, "kept"), id1);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(mg, "merged"), 0)), id2);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(mg, "merged"), 1)), id3);
    json_t *k = brain_case_json(&c, id1);
    assert_int_equal(at(k, "tried"), 3);
    assert_int_equal(at(k, "fixed"), 2);
    assert_int_equal(at(k, "mitigate_ms"), 3000);
    assert_int_equal(json_array_size(json_object_get(k, "attempts")), 3);
    json_decref(k);
    assert_null(brain_case_json(&c, id2));
    assert_null(brain_case_json(&c, id3));
    assert_non_null(k = brain_case_json(&c, other));
    json_decref(k);
    assert_non_null(k = brain_case_json(&c, elsewhere));
    json_decref(k);
    assert_non_null(k = brain_case_json(&c, far));
    json_decref(k);
    /* no knowledge store: skipped, not an error */
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(rep, "steps"), "know_decay"), "skipped")),
                        "no knowledge store");
    json_t *dg = json_object_get(json_object_get(rep, "steps"), "digest");
    assert_string_equal(json_string_value(json_object_get(dg, "day")), day);
    assert_true(json_is_true(json_object_get(dg, "complete")));
    json_decref(rep);

    /* the digest as recorded */
    json_t *d = last_event(x, "brain.digest");
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(d, "day")), day);
    assert_int_equal(at(d, "happened.incidents.opened"), 2);
    assert_int_equal(at(d, "happened.incidents.resolved"), 1);
    assert_int_equal(at(d, "happened.incidents.failed"), 2);
    assert_int_equal(at(d, "happened.incidents.by_service.web.failed"), 2);
    assert_int_equal(at(d, "happened.restarts_total"), 2);
    assert_int_equal(at(d, "happened.restarts.web"), 2);
    assert_int_equal(at(d, "happened.exits.web"), 1);
    assert_int_equal(at(d, "happened.anomaly_episodes"), 1);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(d, "happened"), "episodes_by_first_metric"),
                         "cpu.usage_percent")), 1);
    assert_int_equal(json_array_size(json_object_get(json_object_get(d, "happened"), "error_templates")), 1);
    assert_int_equal(at(d, "healed.actions_ok"), 1);
    assert_int_equal(at(d, "healed.actions_failed"), 1);
    assert_int_equal(at(d, "healed.mean_time_to_mitigate_ms"), 4000);
    json_t *act = json_array_get(json_object_get(json_object_get(d, "healed"), "actions"), 0);
    assert_string_equal(json_string_value(json_object_get(act, "action")), "restart");
    assert_int_equal(at(act, "ok"), 1);
    assert_int_equal(at(act, "failed"), 1);
    json_t *drift = json_array_get(json_object_get(json_object_get(d, "drifting"), "drifts"), 0);
    assert_non_null(drift);
    assert_string_equal(json_string_value(json_object_get(drift, "metric")), "fs.used_bytes");
    json_t *pr = json_object_get(d, "proposes");
    assert_int_equal(json_array_size(json_object_get(pr, "pending")), 1);
    assert_int_equal(at(json_array_get(json_object_get(pr, "pending"), 0), "pending_id"), 7);
    json_t *fl = json_array_get(json_object_get(pr, "failing_services"), 0);
    assert_string_equal(json_string_value(json_object_get(fl, "service")), "web");
    json_t *bl = json_array_get(json_object_get(pr, "blocking"), 0);
    assert_string_equal(json_string_value(json_object_get(bl, "service")), "cache");
    assert_int_equal(at(bl, "count"), 2);
    json_t *fs = json_array_get(json_object_get(json_object_get(d, "drifting"), "filesystems"), 0);
    assert_non_null(fs);
    assert_string_equal(json_string_value(json_object_get(json_object_get(fs, "labels"), "mountpoint")), "/var");
    double rate = json_number_value(json_object_get(fs, "bytes_per_hour"));
    assert_true(rate > 50e6 && rate < 70e6); /* 60 MB/h, give or take the buckets */
    json_int_t full = json_integer_value(json_object_get(fs, "full_in_ms"));
    assert_true(full > 80 * 60000 && full < 120 * 60000); /* 100 MB at 60 MB/h: 100 min */
    const char *text = json_string_value(json_object_get(d, "text"));
    assert_non_null(strstr(text, "restarts: 2 (web 2)"));
    assert_non_null(strstr(text, "mean time to mitigate: 4.0 s"));
    assert_non_null(strstr(text, "decide pending action #7: db restart"));
    assert_non_null(strstr(text, "filesystem /var grows"));

    /* idempotent: nothing more to merge, the same digest */
    rep = brain_dream_pass(&m, &cfg, later, day, NULL);
    cs = json_object_get(json_object_get(rep, "steps"), "cases");
    assert_int_equal(at(cs, "merged"), 0);
    assert_int_equal(at(cs, "after"), 4);
    json_decref(rep);
    json_t *d2 = last_event(x, "brain.digest");
    assert_true(json_equal(d, d2));
    json_decref(d2);
    json_decref(d);

    /* a stopped pass does no more than its first step */
    atomic_bool stop = true;
    rep = brain_dream_pass(&m, &cfg, later, day, &stop);
    assert_true(json_is_true(json_object_get(rep, "stopped")));
    assert_null(json_object_get(json_object_get(rep, "steps"), "digest"));
    json_decref(rep);

    /* the merge survives a restart: the merged rows stay gone */
    json_decref(f);
    json_decref(f3);
    assert_int_equal(mem_flush(x->m, 5000), 0);
    brain_cases_close(&c);
    mem_close(x->m);
    x->m = NULL;
    assert_int_equal(mem_open(&x->m, &x->cfg, err, sizeof err), 0);
    assert_int_equal(brain_cases_open(&c, x->m, err, sizeof err), 0);
    assert_int_equal(brain_cases_count(&c), 4);
    assert_null(brain_case_json(&c, id2));
    k = brain_case_json(&c, id1);
    assert_int_equal(at(k, "tried"), 3);
    json_decref(k);
    /* a new case never reuses a merged id */
    assert_true(brain_cases_add(&c, 9, "web", "service", "crash", NULL) > far);
    brain_cases_close(&c);
}

static json_t *step_of(const json_t *rep, const char *name)
{
    return json_object_get(json_object_get(rep, "steps"), name);
}

/* With a knowledge store that works: duplicates merged, old unused
 * knowledge forgotten (pinned kept), the digest stored as a document. A
 * store that cannot yet is skipped, not an error. */
static void test_pass_with_knowledge(void **st)
{
    fx *x = *st;
    char path[160], err[512] = "", day[11];
    snprintf(path, sizeof path, "%s/knowledge.db", x->dir);
    int64_t now = core_now_ms();
    brain_day_of(now, day);
    ev(x, now, "service.restart", "info", "web", json_pack("{s:s}", "service", "web"));
    assert_int_equal(mem_flush(x->m, 5000), 0);
    brain_dream_cfg cfg;
    brain_dream_cfg_defaults(&cfg);
    mem_know *k = NULL;
    if (mem_know_open(path, &k, err, sizeof err) != 0) {
        print_message("no knowledge store here (%s): the pass must skip it\n", err);
        brain_mind m = {.mem = x->m};
        json_t *rep = brain_dream_pass(&m, &cfg, now, day, NULL);
        assert_non_null(json_object_get(step_of(rep, "know_decay"), "skipped"));
        json_decref(rep);
        return;
    }
    const char *text = "When nginx exits at start with an invalid listen value in its config file, put back "
                       "the last known-good copy of the file and restart the service.";
    mem_doc a = {.source = "a.md", .title = "a", .kind = "markdown", .text = text};
    mem_doc b = {.source = "b.md", .title = "b", .kind = "markdown", .text = text};
    mem_doc pin = {.source = "runbook.md", .title = "runbook", .kind = "runbook", .pinned = true,
                   .text = "Disk full on /var: remove rotated logs older than a week, then restart the writer."};
    assert_int_equal(mem_know_add(k, &a, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(mem_know_add(k, &b, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(mem_know_add(k, &pin, NULL, NULL, err, sizeof err), 0);
    brain_mind m = {.mem = x->m, .know = k};
    /* 400 days later, nothing used since: under the floor at a 90-day half-life */
    json_t *rep = brain_dream_pass(&m, &cfg, now + 400 * 86400000LL, day, NULL);
    json_t *dd = step_of(rep, "know_dedup"), *dc = step_of(rep, "know_decay"), *dg = step_of(rep, "digest");
    if (!json_object_get(dd, "skipped"))
        assert_true(json_integer_value(json_object_get(dd, "merged")) >= 1);
    if (!json_object_get(dc, "skipped"))
        assert_true(json_integer_value(json_object_get(dc, "forgotten")) >= 1);
    assert_null(json_object_get(dd, "error"));
    assert_null(json_object_get(dc, "error"));
    assert_string_equal(json_string_value(json_object_get(dg, "knowledge")), "stored");
    char *docs = mem_know_docs_json(k, 100);
    assert_non_null(docs);
    char want[32];
    snprintf(want, sizeof want, "digest:%s", day);
    assert_non_null(strstr(docs, want));
    assert_non_null(strstr(docs, "runbook.md"));
    if (!json_object_get(dc, "skipped"))
        assert_null(strstr(docs, "\"a.md\""));
    free(docs);
    json_decref(rep);
    mem_know_close(k);
}

static void test_digest_errors(void **st)
{
    fx *x = *st;
    char err[256] = "";
    assert_null(brain_digest_build(x->m, "2026-13-01", err, sizeof err));
    assert_non_null(strstr(err, "not a day"));
    assert_null(brain_digest_build(x->m, "2026-02-30", err, sizeof err));
    assert_null(brain_digest_build(x->m, "yesterday", err, sizeof err));
    assert_null(brain_digest_build(x->m, "1999-01-01", err, sizeof err));
    assert_non_null(strstr(err, "no events on 1999-01-01"));
}

/* Puts the four idleness series at ts. */
static void put_load(fx *x, int64_t ts, double idle, double psi_cpu, double psi_io)
{
    int a = mem_series(x->m, "cpu.usage_percent", "cpu=\"total\",state=\"idle\"", "percent", "", MEM_RATE);
    int b = mem_series(x->m, "cpu.usage_percent", "cpu=\"total\",state=\"iowait\"", "percent", "", MEM_RATE);
    int p = mem_series(x->m, "psi.some_avg10_percent", "resource=\"cpu\"", "percent", "", MEM_GAUGE);
    int q = mem_series(x->m, "psi.some_avg10_percent", "resource=\"io\"", "percent", "", MEM_GAUGE);
    assert_true(a >= 0 && b >= 0 && p >= 0 && q >= 0);
    mem_put(x->m, a, idle);
    mem_put(x->m, b, 1);
    mem_put(x->m, p, psi_cpu);
    mem_put(x->m, q, psi_io);
    assert_int_equal(mem_tick(x->m, ts), 0);
}

static void test_idle_from_series(void **st)
{
    fx *x = *st;
    brain_dream_cfg c;
    brain_dream_cfg_defaults(&c);
    int64_t now = core_now_ms() / 1000 * 1000;
    assert_false(brain_dream_idle_now(x->m, &c, now)); /* nothing known: not idle */
    put_load(x, now, 95, 1, 1);
    assert_true(brain_dream_idle_now(x->m, &c, now));
    put_load(x, now + 1000, 50, 1, 1); /* 49 % busy */
    assert_false(brain_dream_idle_now(x->m, &c, now + 1000));
    put_load(x, now + 2000, 95, 1, 12); /* waiting on io */
    assert_false(brain_dream_idle_now(x->m, &c, now + 2000));
    put_load(x, now + 3000, 95, 8, 1); /* waiting on cpu */
    assert_false(brain_dream_idle_now(x->m, &c, now + 3000));
    put_load(x, now + 4000, 95, 1, 1);
    assert_true(brain_dream_idle_now(x->m, &c, now + 4000));
    /* stale values do not count */
    assert_false(brain_dream_idle_now(x->m, &c, now + 4000 + 600000));
}

static void on_wake(uv_timer_t *t) { (void)t; }

/* Runs the loop until a brain.dream event of trigger is there. */
static json_t *wait_dream(fx *x, uv_loop_t *loop, const char *trigger)
{
    int64_t end = core_mono_ms() + 20000;
    while (core_mono_ms() < end) {
        uv_run(loop, UV_RUN_ONCE);
        json_t *p = last_event(x, "brain.dream");
        if (p && !strcmp(json_string_value(json_object_get(p, "trigger")), trigger))
            return p;
        json_decref(p);
    }
    return NULL;
}

static int saves;
static int count_save(void *ud, int64_t now_ms)
{
    (void)ud, (void)now_ms;
    saves++;
    return 0;
}

/* Pins the local clock to HOUR:xx whatever the hour in UTC (a POSIX TZ with
 * the right offset): from noon on, the schedule writes yesterday's digest
 * even on a busy machine, which a test must meet or avoid by design, not by
 * the time of day. */
static void tz_at(int hour)
{
    time_t t = time(NULL);
    struct tm u;
    gmtime_r(&t, &u);
    int off = ((u.tm_hour - hour) % 24 + 24) % 24; /* local = UTC - off */
    if (off > 12)
        off -= 24;
    char tz[16];
    snprintf(tz, sizeof tz, "TST%d", off);
    setenv("TZ", tz, 1);
    tzset();
}

static void tz_morning(void)
{
    tz_at(6);
}

/* After noon on a busy machine: a cell whose memory holds nothing from before
 * today writes no digest of a yesterday it did not live; with one event of
 * yesterday, the noon digest runs. */
static void test_noon_digest_only_for_a_lived_day(void **st)
{
    fx *x = *st;
    tz_at(14);
    uv_loop_t loop;
    uv_timer_t wake;
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &wake);
    uv_timer_start(&wake, on_wake, 10, 10);
    char err[512] = "";
    uint64_t pass = 0;
    int64_t now = core_now_ms() / 1000 * 1000;
    put_load(x, now, 20, 1, 1);
    brain *b = NULL;
    if (brain_new(&loop, &x->cfg, x->m, NULL, NULL, &b, err, sizeof err))
        fail_msg("brain_new: %s", err);
    brain_tick(b, now);
    assert_int_equal(brain_dream_start(b, &pass, err, sizeof err), 0); /* nothing was started by the tick */
    json_t *p = wait_dream(x, &loop, "api");
    assert_non_null(p);
    json_decref(p);
    brain_free(b);

    ev(x, now - 86400000, "service.restart", "info", "heal", json_pack("{s:s}", "service", "web"));
    b = NULL;
    if (brain_new(&loop, &x->cfg, x->m, NULL, NULL, &b, err, sizeof err))
        fail_msg("brain_new: %s", err);
    brain_tick(b, now + 1000);
    assert_int_equal(brain_dream_start(b, &pass, err, sizeof err), -EBUSY);
    p = wait_dream(x, &loop, "noon");
    assert_non_null(p);
    json_decref(p);
    brain_free(b);
    uv_close((uv_handle_t *)&wake, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    unsetenv("TZ");
    tzset();
}

static void test_schedule_busy_then_idle(void **st)
{
    fx *x = *st;
    tz_morning();
    uv_loop_t loop;
    uv_timer_t wake;
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &wake);
    uv_timer_start(&wake, on_wake, 10, 10);
    brain *b = NULL;
    char err[512] = "";
    if (brain_new(&loop, &x->cfg, x->m, NULL, NULL, &b, err, sizeof err))
        fail_msg("brain_new: %s", err);
    brain_set_dream_hook(b, count_save, NULL);
    uint64_t pass = 0;

    /* busy: the tick starts nothing, so a pass asked for now may start */
    int64_t now = core_now_ms() / 1000 * 1000;
    put_load(x, now, 20, 1, 1);
    brain_tick(b, now);
    assert_int_equal(brain_dream_start(b, &pass, err, sizeof err), 0);
    assert_int_equal(brain_dream_start(b, &pass, err, sizeof err), -EBUSY); /* one at a time */
    json_t *p = wait_dream(x, &loop, "api");
    assert_non_null(p);
    assert_int_equal(json_integer_value(json_object_get(p, "pass")), 1);
    assert_true(json_is_true(json_object_get(json_object_get(json_object_get(p, "steps"), "baselines"), "saved")));
    assert_int_equal(saves, 1);
    json_decref(p);

    /* idle (idle_for = 0s): the tick starts a pass of its own */
    now += 1000;
    put_load(x, now, 96, 0.5, 0.5);
    brain_tick(b, now);
    assert_int_equal(brain_dream_start(b, &pass, err, sizeof err), -EBUSY);
    p = wait_dream(x, &loop, "idle");
    assert_non_null(p);
    assert_int_equal(json_integer_value(json_object_get(p, "pass")), 2);
    assert_int_equal(saves, 2);
    json_decref(p);
    /* at most once per [dream] every */
    now += 1000;
    put_load(x, now, 96, 0.5, 0.5);
    brain_tick(b, now);
    assert_int_equal(brain_dream_start(b, &pass, err, sizeof err), 0);
    assert_int_equal(pass, 3);
    p = wait_dream(x, &loop, "api");
    json_decref(p);

    brain_free(b);
    uv_close((uv_handle_t *)&wake, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    unsetenv("TZ");
    tzset();
}

static void test_config_errors(void **st)
{
    (void)st;
    const char *bad[] = {"[dream]\nidle_cpu = 120\n", "[dream]\nevery = 5s\n", "[dream]\ndigest_at = 25:00\n",
                         "[dream]\nmerge_similarity = 2\n", "[dream]\nhalf_life = soon\n", "[dream]\nnap = yes\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        core_config cfg;
        core_config_defaults(&cfg);
        char err[512] = "";
        assert_int_equal(core_config_load_string(&cfg, bad[i], "d.conf", err, sizeof err), 0);
        assert_int_equal(brain_config_check(&cfg, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "d.conf:2"));
        core_config_free(&cfg);
    }
    core_config cfg;
    core_config_defaults(&cfg);
    char err[512] = "";
    assert_int_equal(core_config_load_string(&cfg, "[dream]\ndigest_at = 06:30\nhalf_life = 30d\n", "d.conf", err,
                                             sizeof err), 0);
    brain_dream_cfg c;
    assert_int_equal(brain_dream_cfg_parse(&cfg, &c, err, sizeof err), 0);
    assert_int_equal(c.digest_at_min, 390);
    assert_int_equal(c.half_life_ms, 30 * 86400000LL);
    core_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pass_merges_and_digests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pass_with_knowledge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digest_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_from_series, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schedule_busy_then_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noon_digest_only_for_a_lived_day, setup, teardown),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
