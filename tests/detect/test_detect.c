/* test_detect.c: the detector ensemble on synthetic series with known
 * answers (noise only, step, spike, dip, drift, seasonality, flat line,
 * recurring bursts to a known level, a new extreme right after a detection,
 * noise and a random walk at 1-second steps over two days), and
 * its state: size bound, save/load round trip, corrupted bytes refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/detect.h"

#define T0_MS 1700000000000LL /* a fixed start time */
#define STEP_MS 300000LL      /* 5-minute samples, like NAB */

#include "test_rng.h"

/* What happened over a range of samples: detections are scores at or above
 * DETECT_THRESHOLD_NAB, alarms at or above DETECT_THRESHOLD_DEFAULT (the
 * daemon's "anomalous"). */
typedef struct span {
    int alarms;          /* samples at or above the daemon's threshold */
    int first;           /* index of the first detection, -1 if none */
    detect_reason why;   /* reason at the first detection */
    int detections;
    double max;          /* highest score */
} span;

typedef double (*series_fn)(int i);

/* Feed samples [0, n) of f; collect alarms over [from, n). */
static span run(detect_state *st, series_fn f, int n, int from, int64_t step_ms)
{
    span s = { 0, -1, DETECT_REASON_NONE, 0, 0 };
    for (int i = 0; i < n; i++) {
        detect_result r = detect_feed(st, T0_MS + i * step_ms, f(i));
        assert_true(r.score >= 0 && r.score <= 1);
        if (i < from) continue;
        if (r.score > s.max) s.max = r.score;
        if (r.score >= DETECT_THRESHOLD_NAB) {
            if (s.first < 0) { s.first = i; s.why = r.reason; }
            s.detections++;
        }
        if (r.score >= DETECT_THRESHOLD_DEFAULT) s.alarms++;
    }
    return s;
}

static double f_noise(int i) { (void)i; return 50 + 2 * gauss(); }
static double f_step(int i) { return (i < 2000 ? 50 : 80) + 2 * gauss(); }
static double f_spike(int i) { return (i == 2000 ? 90 : 50) + 2 * gauss(); }
static double f_dip(int i) { return (i == 2000 ? 10 : 50) + 2 * gauss(); }
static double f_drift(int i) { return 50 + (i < 2000 ? 0 : (i - 2000) * 0.5) + 2 * gauss(); }
static double f_flat(int i) { return i < 2000 ? 50 + 2 * gauss() : 50.0; }

/* A daily square wave (5-minute samples: 288 a day): high from 08:00 to
 * 20:00; on day 8 the rise does not come (the NAB "nojump" case). */
static double f_daily(int i)
{
    int day = i / 288, slot = i % 288;
    int high = slot >= 96 && slot < 240;
    if (day == 8) high = 0;
    return (high ? 80 : 20) + gauss();
}
static double f_daily_normal(int i)
{
    int slot = i % 288;
    return (slot >= 96 && slot < 240 ? 80 : 20) + gauss();
}

static void test_noise_only_no_alarm(void **state)
{
    (void)state;
    rng_state = 1;
    detect_state *st = detect_new();
    span s = run(st, f_noise, 10000, 200, STEP_MS);
    assert_int_equal(s.alarms, 0);
    detect_free(st);
}

static void test_step(void **state)
{
    (void)state;
    rng_state = 2;
    detect_state *st = detect_new();
    span s = run(st, f_step, 2300, 2000, STEP_MS);
    assert_int_equal(s.first, 2000);
    assert_true(s.why == DETECT_REASON_SPIKE || s.why == DETECT_REASON_LEVEL_UP);
    assert_true(s.alarms >= 1);
    assert_true(s.detections <= 3); /* one event, not an alarm per sample */
    detect_free(st);
}

static void test_spike_and_dip(void **state)
{
    (void)state;
    rng_state = 3;
    detect_state *st = detect_new();
    span s = run(st, f_spike, 2500, 2000, STEP_MS);
    assert_int_equal(s.first, 2000);
    assert_int_equal(s.why, DETECT_REASON_SPIKE);
    assert_int_equal(s.alarms, 1);
    detect_reset(st);
    rng_state = 3;
    s = run(st, f_dip, 2500, 2000, STEP_MS);
    assert_int_equal(s.first, 2000);
    assert_int_equal(s.why, DETECT_REASON_DIP);
    assert_int_equal(s.alarms, 1);
    detect_free(st);
}

static void test_drift(void **state)
{
    (void)state;
    rng_state = 4;
    detect_state *st = detect_new();
    span s = run(st, f_drift, 2600, 2000, STEP_MS);
    assert_true(s.first >= 2000 && s.first < 2100);
    assert_true(s.why == DETECT_REASON_LEVEL_UP || s.why == DETECT_REASON_SPIKE);
    detect_free(st);
}

static void test_flatline(void **state)
{
    (void)state;
    rng_state = 5;
    detect_state *st = detect_new();
    span s = run(st, f_flat, 2300, 2000, STEP_MS);
    assert_true(s.first >= 2000 && s.first < 2100);
    assert_int_equal(s.why, DETECT_REASON_FLATLINE);
    detect_free(st);
}

static void test_seasonal(void **state)
{
    (void)state;
    /* a regular daily pattern: its daily jumps are not anomalies */
    rng_state = 6;
    detect_state *st = detect_new();
    span s = run(st, f_daily_normal, 288 * 10, 288 * 2, STEP_MS);
    assert_int_equal(s.alarms, 0);
    assert_true(s.detections <= 2); /* noise's own tail, at most */
    /* the same pattern with a missing rise on day 8 */
    detect_reset(st);
    rng_state = 6;
    s = run(st, f_daily, 288 * 9, 288 * 8, STEP_MS);
    assert_true(s.first >= 288 * 8 + 96 && s.first < 288 * 8 + 106);
    detect_free(st);
}

static void test_bad_values_ignored(void **state)
{
    (void)state;
    rng_state = 7;
    detect_state *st = detect_new();
    run(st, f_noise, 500, 0, STEP_MS);
    uint64_t n = detect_count(st);
    detect_result r = detect_feed(st, T0_MS + 501 * STEP_MS, NAN);
    assert_true(r.score == 0 && r.reason == DETECT_REASON_NONE);
    r = detect_feed(st, T0_MS + 502 * STEP_MS, INFINITY);
    assert_true(r.score == 0);
    assert_int_equal(detect_count(st), n);
    /* time going backwards is scored, not fatal */
    r = detect_feed(st, T0_MS, 50);
    assert_true(r.score >= 0 && r.score <= 1);
    /* huge and tiny values stay finite */
    for (int i = 0; i < 100; i++) {
        r = detect_feed(st, T0_MS + (600 + i) * STEP_MS, i % 2 ? 1e300 : -1e300);
        assert_true(isfinite(r.score) && r.score >= 0 && r.score <= 1);
    }
    detect_free(st);
}

static void test_state_bound(void **state)
{
    (void)state;
    assert_true(detect_state_size() <= DETECT_STATE_MAX);
    assert_string_equal(detect_reason_name(DETECT_REASON_LEVEL_UP), "level_up");
    assert_string_equal(detect_reason_name(DETECT_REASON_COUNT), "unknown");
}

static void test_save_load(void **state)
{
    (void)state;
    rng_state = 8;
    detect_state *a = detect_new(), *b = detect_new();
    run(a, f_daily_normal, 288 * 3, 0, STEP_MS);
    size_t cap = detect_state_size() + 64;
    unsigned char *buf = malloc(cap);
    assert_int_equal(detect_save(a, buf, 16), 0); /* too small */
    size_t len = detect_save(a, buf, cap);
    assert_true(len > 0);
    char err[128];
    assert_int_equal(detect_load(b, buf, len, err, sizeof err), 0);
    assert_int_equal(detect_count(b), detect_count(a));
    /* both go on identically */
    for (int i = 0; i < 500; i++) {
        double v = f_daily(288 * 7 + i);
        detect_result ra = detect_feed(a, T0_MS + (288 * 3 + i) * STEP_MS, v);
        detect_result rb = detect_feed(b, T0_MS + (288 * 3 + i) * STEP_MS, v);
        assert_true(ra.score == rb.score && ra.reason == rb.reason);
    }
    /* corrupted bytes, wrong length and garbage are refused; state reset */
    len = detect_save(a, buf, cap);
    buf[len / 2] ^= 0x40;
    assert_int_equal(detect_load(b, buf, len, err, sizeof err), -1);
    assert_non_null(strstr(err, "checksum"));
    assert_int_equal(detect_count(b), 0);
    buf[len / 2] ^= 0x40;
    assert_int_equal(detect_load(b, buf, len - 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "size"));
    memset(buf, 0xff, len);
    assert_int_equal(detect_load(b, buf, len, err, sizeof err), -1);
    free(buf);
    detect_free(a);
    detect_free(b);
}

/* A bursty series: idle near 0.1, a burst to about 90 every 97 samples (not
 * tied to the time of day, heights in [88, 92)); the value at i = 3600 is a
 * burst to 300. */
static double f_bursts(int i)
{
    if (i == 3600) return 300;
    return i % 97 == 50 ? 88 + 4 * urand() : 0.1 + 0.01 * gauss();
}

/* Feeds samples [from, to) of f; the indexes of the detections into hits
 * (at most max), returns how many there were. */
static int detections(detect_state *st, series_fn f, int from, int to, int *hits, int max)
{
    int n = 0;
    for (int i = from; i < to; i++) {
        double v = f(i);
        detect_result r = detect_feed(st, T0_MS + i * STEP_MS, v);
        if (r.score < DETECT_THRESHOLD_NAB) continue;
        if (n < max) hits[n] = i;
        n++;
    }
    return n;
}

/* Recurring bursts to the same level stop alarming once the level is known
 * (value levels); a burst far above anything seen still does (a new extreme). */
static void test_recurring_bursts(void **state)
{
    (void)state;
    rng_state = 11;
    detect_state *st = detect_new();
    int hits[8];
    assert_true(detections(st, f_bursts, 0, 200, hits, 8) >= 1);
    assert_int_equal(hits[0], 147); /* the first burst after the warm-up */
    detections(st, f_bursts, 200, 1000, hits, 8);
    assert_int_equal(detections(st, f_bursts, 1000, 3600, hits, 8), 0);
    assert_true(detections(st, f_bursts, 3600, 3601, hits, 8) == 1);
    detect_free(st);
}

/* A level step, then 20 samples later a value far beyond every value seen:
 * the second event is not held back by the first one's suppression. */
static double f_step_then_extreme(int i)
{
    return (i >= 2020 && i < 2022 ? 60 : i >= 2000 ? 20 : 10) + gauss();
}

static void test_new_extreme_not_held(void **state)
{
    (void)state;
    rng_state = 12;
    detect_state *st = detect_new();
    int hits[8];
    detections(st, f_step_then_extreme, 0, 2000, hits, 8); /* learning */
    assert_true(detections(st, f_step_then_extreme, 2000, 2010, hits, 8) >= 1);
    assert_int_equal(hits[0], 2000);
    detections(st, f_step_then_extreme, 2010, 2020, hits, 8);
    assert_true(detections(st, f_step_then_extreme, 2020, 2021, hits, 8) == 1);
    detect_free(st);
}

/* The daemon's case: 1-second samples over two days (the daily profile
 * starts after the first). Neither noise nor a random walk ever reaches
 * the daemon's threshold. */
static double walk_v;
static double f_walk(int i)
{
    (void)i;
    return walk_v += gauss();
}

static void test_one_second_quiet(void **state)
{
    (void)state;
    for (uint64_t seed = 21; seed <= 23; seed++) {
        rng_state = seed;
        detect_state *st = detect_new();
        span s = run(st, f_noise, 2 * 86400, 200, 1000);
        assert_int_equal(s.alarms, 0);
        detect_free(st);
        rng_state = seed;
        walk_v = 100;
        st = detect_new();
        s = run(st, f_walk, 2 * 86400, 200, 1000);
        assert_int_equal(s.alarms, 0);
        detect_free(st);
    }
}

/* A busy process's 1-second CPU (small integers, changing most seconds,
 * with quiet spells of up to 30 s) that stops: a flat-line alarm (the
 * daemon's threshold) within 8 times its longest spell (the calibrated
 * flat-line score alone never gets there: the stopped-source rule does);
 * a series that changes once in a while and then sits still: never. */
static double busy_v;
static int busy_hold;
static double f_busy_then_hung(int i)
{
    if (i >= 3000) return 0;
    if (busy_hold > 0) { busy_hold--; return busy_v; } /* now and then a quiet spell, as a real one has */
    if (urand() > 0.4) busy_v = (double)(int)(4 * urand());
    if (urand() < 0.01) busy_v = 5 + (int)(15 * urand());
    if (urand() < 0.02) busy_hold = 20 + (int)(10 * urand());
    return busy_v;
}
static double f_rare_then_still(int i) { return i < 3000 && i % 200 == 0 ? (double)(i / 200 % 3) : 7; }

static void test_stopped_source(void **state)
{
    (void)state;
    rng_state = 31;
    busy_v = 1;
    busy_hold = 0;
    detect_state *st = detect_new();
    span s = run(st, f_busy_then_hung, 4000, 3000, 1000);
    assert_true(s.alarms >= 1);
    assert_true(s.first >= 3000 && s.first < 3300); /* 8 times its longest quiet spell (<= 30 s) */
    assert_int_equal(s.why, DETECT_REASON_FLATLINE);
    detect_free(st);
    st = detect_new();
    s = run(st, f_rare_then_still, 8000, 3000, 1000);
    assert_int_equal(s.alarms, 0);
    detect_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_noise_only_no_alarm),
        cmocka_unit_test(test_step),
        cmocka_unit_test(test_spike_and_dip),
        cmocka_unit_test(test_drift),
        cmocka_unit_test(test_flatline),
        cmocka_unit_test(test_seasonal),
        cmocka_unit_test(test_bad_values_ignored),
        cmocka_unit_test(test_state_bound),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_recurring_bursts),
        cmocka_unit_test(test_new_extreme_not_held),
        cmocka_unit_test(test_one_second_quiet),
        cmocka_unit_test(test_stopped_source),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
