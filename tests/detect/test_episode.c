/* test_episode.c: the anomaly tracker of src/detect (detect_tracker in
 * detect.h): when a metric turns anomalous, is noticed and calms down; how
 * metrics that turn anomalous together are grouped into one episode (order,
 * peaks, reasons); when episodes close; the bounds (members, episodes,
 * pending notes); bad input; the explanation carried with each peak (band,
 * departure, relative change) and the first mover; and a random run that
 * checks the invariants after every tick. Scores are given directly: no detector involved. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detect/detect.h"

#define T0 1700000000000LL /* a wall-clock time in ms */
#define S(n) (T0 + (int64_t)(n) * 1000)

static detect_tracker *make(double thr, int64_t for_ms, int64_t keep_ms, int64_t window_ms)
{
    detect_track_config c = {thr, for_ms, keep_ms, window_ms};
    detect_tracker *t = detect_tracker_new(&c);
    assert_non_null(t);
    return t;
}

static void feed(detect_tracker *t, int id, int64_t ts, double score, detect_reason why, double value)
{
    detect_result r = {score, why, 10.0, 9.0, 11.0};
    assert_int_equal(detect_tracker_update(t, id, ts, &r, value), 0);
}

/* Drains the notes into out (kind per note, and ids) and returns how many. */
static int drain(detect_tracker *t, detect_note *out, int max)
{
    int n = 0;
    detect_note nt;
    while (detect_tracker_next_note(t, &nt)) {
        if (n < max)
            out[n] = nt;
        n++;
    }
    return n;
}

static void test_config(void **state)
{
    (void)state;
    detect_track_config c;
    char err[128];
    detect_track_config_default(&c);
    assert_true(c.threshold == DETECT_THRESHOLD_DEFAULT);
    assert_int_equal(c.for_ms, 120000);
    assert_int_equal(c.keep_ms, 30000);
    assert_int_equal(c.window_ms, 10000);
    assert_int_equal(detect_track_config_check(&c, err, sizeof err), 0);
    detect_track_config bad[] = {{0, 0, 0, 0}, {1.5, 0, 0, 0}, {NAN, 0, 0, 0}, {-0.1, 0, 0, 0},
                                 {0.5, -1, 0, 0}, {0.5, 0, -1, 0}, {0.5, 0, 0, -1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(detect_track_config_check(&bad[i], err, sizeof err), -EINVAL);
        assert_true(err[0] != 0);
        assert_null(detect_tracker_new(&bad[i]));
    }
    detect_track_config one = {1.0, 0, 0, 0};
    assert_int_equal(detect_track_config_check(&one, NULL, 0), 0);
    detect_tracker *t = detect_tracker_new(&c);
    assert_int_equal(detect_tracker_configure(t, &bad[1]), -EINVAL);
    assert_true(detect_tracker_config(t)->threshold == DETECT_THRESHOLD_DEFAULT);
    detect_tracker_free(t);
    detect_tracker_free(NULL);
}

/* One metric: calm samples, a hit, noticed at once (for 0), calm again after
 * keep, the episode closed after window. */
static void test_one_metric(void **state)
{
    (void)state;
    detect_tracker *t = make(0.5, 0, 3000, 5000);
    detect_note n[16];
    for (int s = 1; s <= 5; s++) {
        feed(t, 7, S(s), 0.1, DETECT_REASON_NONE, 100);
        detect_tracker_tick(t, S(s));
    }
    assert_int_equal(drain(t, n, 16), 0);
    const detect_metric *m = detect_tracker_metric(t, 7);
    assert_non_null(m);
    assert_int_equal(m->since_ms, 0);
    assert_true(m->score == 0.1);
    assert_int_equal(m->last_ms, S(5));
    assert_null(detect_tracker_metric(t, 6));

    feed(t, 7, S(6), 0.8, DETECT_REASON_SPIKE, 500);
    detect_tracker_tick(t, S(6));
    assert_int_equal(drain(t, n, 16), 2);
    assert_int_equal(n[0].kind, DETECT_NOTE_EPISODE_OPEN);
    assert_int_equal(n[0].id, 7);
    assert_int_equal(n[0].episode, 1);
    assert_int_equal(n[1].kind, DETECT_NOTE_ANOMALY);
    assert_int_equal(n[1].id, 7);
    assert_int_equal(n[1].episode, 1);
    assert_int_equal(n[1].ts_ms, S(6));
    int na;
    const int *ids = detect_tracker_anomalous(t, &na);
    assert_int_equal(na, 1);
    assert_int_equal(ids[0], 7);
    m = detect_tracker_metric(t, 7);
    assert_int_equal(m->since_ms, S(6));
    assert_true(m->noticed);
    assert_int_equal(m->episode, 1);
    assert_true(m->peak == 0.8);
    assert_int_equal(m->peak_reason, DETECT_REASON_SPIKE);

    /* a higher hit a second later raises the peak of the run and the member */
    feed(t, 7, S(7), 0.95, DETECT_REASON_LEVEL_UP, 900);
    detect_tracker_tick(t, S(7));
    assert_int_equal(drain(t, n, 16), 0);
    const detect_episode *e = detect_tracker_episode(t, 1);
    assert_non_null(e);
    assert_int_equal(e->nmembers, 1);
    assert_true(e->members[0].peak == 0.95);
    assert_int_equal(e->members[0].reason, DETECT_REASON_LEVEL_UP);
    assert_true(e->members[0].value == 900);
    assert_true(e->members[0].expected == 10.0);
    assert_int_equal(e->members[0].since_ms, S(6));
    assert_true(e->peak == 0.95);
    assert_int_equal(e->anomalous, 1);

    /* silence, back in the band: still anomalous 2 s after the last hit, calm at 3 s */
    for (int s = 8; s <= 9; s++) {
        feed(t, 7, S(s), 0.05, DETECT_REASON_NONE, 10);
        detect_tracker_tick(t, S(s));
    }
    assert_int_equal(drain(t, n, 16), 0);
    feed(t, 7, S(10), 0.05, DETECT_REASON_NONE, 10);
    detect_tracker_tick(t, S(10));
    assert_int_equal(drain(t, n, 16), 1);
    assert_int_equal(n[0].kind, DETECT_NOTE_CALM);
    assert_int_equal(n[0].id, 7);
    assert_int_equal(n[0].episode, 1);
    ids = detect_tracker_anomalous(t, &na);
    assert_int_equal(na, 0);
    assert_int_equal(detect_tracker_metric(t, 7)->since_ms, 0);
    assert_int_equal(e->members[0].calm_ms, S(10));
    assert_int_equal(e->calm_ms, S(10));
    assert_int_equal(e->closed_ms, 0);

    /* the episode closes once everything was calm for the window (5 s) */
    detect_tracker_tick(t, S(14));
    assert_int_equal(drain(t, n, 16), 0);
    detect_tracker_tick(t, S(15));
    assert_int_equal(drain(t, n, 16), 1);
    assert_int_equal(n[0].kind, DETECT_NOTE_EPISODE_CLOSE);
    assert_int_equal(n[0].episode, 1);
    assert_int_equal(e->closed_ms, S(15));
    assert_int_equal(detect_tracker_episodes_total(t), 1);
    detect_tracker_free(t);
}

/* for: a blip shorter than for is never noticed; a run that keeps hitting is,
 * for after its onset. */
static void test_for(void **state)
{
    (void)state;
    detect_tracker *t = make(0.5, 5000, 2000, 10000);
    detect_note n[16];
    feed(t, 1, S(1), 0.9, DETECT_REASON_SPIKE, 1);
    for (int s = 1; s <= 8; s++)
        detect_tracker_tick(t, S(s));
    assert_int_equal(drain(t, n, 16), 0); /* calm at 3 s, before 5 s */
    assert_int_equal(detect_tracker_metric(t, 1)->since_ms, 0);

    for (int s = 10; s <= 20; s++) {
        feed(t, 1, S(s), 0.7, DETECT_REASON_LEVEL_UP, 2);
        detect_tracker_tick(t, S(s));
        int k = drain(t, n, 16);
        if (s < 15) {
            assert_int_equal(k, 0);
        } else if (s == 15) {
            assert_int_equal(k, 2);
            assert_int_equal(n[1].kind, DETECT_NOTE_ANOMALY);
            assert_int_equal(detect_tracker_episode(t, 1)->members[0].since_ms, S(10));
            assert_int_equal(detect_tracker_episode(t, 1)->members[0].noticed_ms, S(15));
        } else {
            assert_int_equal(k, 0);
        }
    }
    detect_tracker_free(t);
}

/* Metrics turning anomalous within the window of the newest member join one
 * episode, in onset order; a later one opens a new episode. */
/* A departure that lasts keeps the run (and so reaches `for`); one that
 * decays to less than half its size, or returns to the band, does not; a
 * flat line lasts while its value does not move. */
static void test_sustained(void **state)
{
    (void)state;
    detect_note n[16];
    detect_tracker *t = make(0.8, 60000, 3000, 10000);
    /* a hog: one hit at 100, then the value stays there for 2 minutes */
    feed(t, 1, S(0), 0.9, DETECT_REASON_LEVEL_UP, 100);
    detect_tracker_tick(t, S(0));
    for (int s = 1; s <= 120; s++) {
        feed(t, 1, S(s), 0.1, DETECT_REASON_NONE, 100);
        detect_tracker_tick(t, S(s));
    }
    assert_int_equal(drain(t, n, 16), 2); /* episode open + anomaly, at 60 s */
    assert_int_equal(n[1].kind, DETECT_NOTE_ANOMALY);
    assert_int_equal(n[1].ts_ms, S(60));
    assert_non_null(detect_tracker_metric(t, 1));
    assert_true(detect_tracker_metric(t, 1)->since_ms == S(0));
    /* a spike that decays: 100, then 60, 40 (less than half of 90 away
     * from the expected 10): calm keep_ms later, never noticed */
    feed(t, 2, S(200), 0.9, DETECT_REASON_SPIKE, 100);
    detect_tracker_tick(t, S(200));
    feed(t, 2, S(201), 0.1, DETECT_REASON_NONE, 60);
    detect_tracker_tick(t, S(201));
    for (int s = 202; s <= 204; s++) {
        feed(t, 2, S(s), 0.1, DETECT_REASON_NONE, 40);
        detect_tracker_tick(t, S(s));
    }
    assert_int_equal(detect_tracker_metric(t, 2)->since_ms, 0);
    /* a burst: hits every 2 s for 3 minutes, back in the band between
     * them: anomalous all along, never noticed (the departure breaks) */
    for (int s = 220; s <= 400; s++) {
        bool hit = s % 2 == 0;
        feed(t, 4, S(s), hit ? 0.9 : 0.1, hit ? DETECT_REASON_SPIKE : DETECT_REASON_NONE, hit ? 100 : 10);
        detect_tracker_tick(t, S(s));
    }
    assert_true(detect_tracker_metric(t, 4)->since_ms == S(220));
    assert_false(detect_tracker_metric(t, 4)->noticed);
    /* a flat line: lasts while the value is the one it stopped at */
    feed(t, 3, S(300), 0.9, DETECT_REASON_FLATLINE, 10);
    detect_tracker_tick(t, S(300));
    for (int s = 301; s <= 370; s++) {
        feed(t, 3, S(s), 0.1, DETECT_REASON_NONE, 10);
        detect_tracker_tick(t, S(s));
    }
    assert_true(detect_tracker_metric(t, 3)->noticed);
    feed(t, 3, S(371), 0.1, DETECT_REASON_NONE, 10.5); /* it moves: over */
    for (int s = 371; s <= 375; s++)
        detect_tracker_tick(t, S(s));
    assert_int_equal(detect_tracker_metric(t, 3)->since_ms, 0);
    drain(t, n, 16);
    detect_tracker_free(t);
}

static void test_grouping(void **state)
{
    (void)state;
    detect_tracker *t = make(0.5, 0, 60000, 10000);
    detect_note n[32];
    feed(t, 3, S(0), 0.6, DETECT_REASON_SPIKE, 1); /* A */
    detect_tracker_tick(t, S(0));
    feed(t, 9, S(4), 0.9, DETECT_REASON_LEVEL_UP, 2); /* B: 4 s after A */
    feed(t, 5, S(4), 0.7, DETECT_REASON_DIP, 3);      /* C: same second, lower id, fed after */
    detect_tracker_tick(t, S(4));
    feed(t, 2, S(13), 0.55, DETECT_REASON_VARIANCE, 4); /* D: 9 s after B, 13 s after A */
    detect_tracker_tick(t, S(13));
    feed(t, 4, S(30), 0.99, DETECT_REASON_FLATLINE, 5); /* E: 17 s after D: new episode */
    detect_tracker_tick(t, S(30));
    int k = drain(t, n, 32);
    assert_int_equal(k, 7); /* open, A, B, C, D, open, E */
    assert_int_equal(n[0].kind, DETECT_NOTE_EPISODE_OPEN);
    assert_int_equal(n[5].kind, DETECT_NOTE_EPISODE_OPEN);
    assert_int_equal(n[5].episode, 2);
    assert_int_equal(n[6].id, 4);
    const detect_episode *e = detect_tracker_episode(t, 1);
    assert_int_equal(e->nmembers, 4);
    int want[] = {3, 9, 5, 2};
    for (int i = 0; i < 4; i++)
        assert_int_equal(e->members[i].id, want[i]);
    assert_true(e->peak == 0.9);
    assert_int_equal(e->first_onset_ms, S(0));
    assert_int_equal(e->last_onset_ms, S(13));
    assert_int_equal(e->anomalous, 4);
    assert_int_equal(detect_tracker_episode(t, 2)->nmembers, 1);
    const detect_episode *list[4];
    assert_int_equal(detect_tracker_episodes(t, list, 4), 2);
    assert_int_equal(list[0]->id, 2);
    assert_int_equal(list[1]->id, 1);
    assert_int_equal(detect_tracker_episodes(t, list, 1), 1);
    assert_int_equal(list[0]->id, 2);

    /* an episode stays open while any member is anomalous: A keeps hitting
     * until 59 s; B and C calm at 64 s, D at 73 s, E at 90 s, A at 119 s */
    for (int s = 31; s <= 100; s++) {
        if (s < 60)
            feed(t, 3, S(s), 0.8, DETECT_REASON_SPIKE, 1);
        detect_tracker_tick(t, S(s));
    }
    assert_int_equal(e->closed_ms, 0);
    assert_int_equal(e->anomalous, 1);
    assert_int_equal(e->members[1].calm_ms, S(64));
    assert_int_equal(e->members[3].calm_ms, S(73));
    assert_int_equal(detect_tracker_episode(t, 2)->closed_ms, S(100));
    detect_tracker_tick(t, S(119));
    assert_int_equal(e->anomalous, 0);
    detect_tracker_tick(t, S(128));
    assert_int_equal(e->closed_ms, 0);
    detect_tracker_tick(t, S(129));
    assert_int_equal(e->closed_ms, S(129));
    assert_true(e->members[0].peak == 0.8); /* A's later, higher hits */
    assert_int_equal(drain(t, n, 32), 7); /* 5 calms, 2 closes */
    detect_tracker_free(t);
}

/* A result with its own expected value and band. */
static void feed_band(detect_tracker *t, int id, int64_t ts, double score, detect_reason why, double value,
                      double expected, double lo, double hi)
{
    detect_result r = {score, why, expected, lo, hi};
    assert_int_equal(detect_tracker_update(t, id, ts, &r, value), 0);
}

/* detect_departure and detect_change on known answers. */
static void test_explain_figures(void **state)
{
    (void)state;
    /* band 8..12: half-width 2 */
    assert_true(detect_departure(10, 8, 12) == 0);
    assert_true(detect_departure(12, 8, 12) == 0);  /* on the edge: inside */
    assert_true(detect_departure(16, 8, 12) == 2);  /* 4 above hi: two half-widths */
    assert_true(detect_departure(7, 8, 12) == -0.5);
    assert_true(detect_departure(16, 12, 8) == 2);  /* lo and hi the wrong way round */
    assert_true(isnan(detect_departure(16, NAN, 12)));
    assert_true(isnan(detect_departure(NAN, 8, 12)));
    double flat = detect_departure(5.001, 5, 5); /* a band of width 0: finite, large, above */
    assert_true(isfinite(flat) && flat > 1e3);
    assert_true(detect_departure(4, 5, 5) < -1e3);
    assert_true(detect_change(15, 10) == 0.5);
    assert_true(detect_change(5, 10) == -0.5);
    assert_true(detect_change(-15, -10) == -0.5); /* further below a negative level */
    assert_true(isnan(detect_change(3, 0)));
    assert_true(isnan(detect_change(3, NAN)));
}

/* The band at the peak travels with the metric and its member; a later,
 * lower hit does not replace it, a higher one does; the departure's sign
 * says above or below. */
static void test_band_carried(void **state)
{
    (void)state;
    detect_tracker *t = make(0.5, 0, 30000, 10000);
    feed_band(t, 1, S(0), 0.3, DETECT_REASON_NONE, 11, 10, 8, 12); /* calm: the last band only */
    const detect_metric *m = detect_tracker_metric(t, 1);
    assert_true(m->lo == 8 && m->hi == 12);
    assert_true(isnan(m->peak_departure) && isnan(m->peak_lo));
    feed_band(t, 1, S(1), 0.7, DETECT_REASON_SPIKE, 20, 10, 8, 12); /* 8 above hi */
    feed_band(t, 2, S(1), 0.9, DETECT_REASON_DIP, 1, 10, 6, 14);    /* 5 below lo */
    detect_tracker_tick(t, S(1));
    assert_true(m->peak_lo == 8 && m->peak_hi == 12 && m->peak_expected == 10 && m->peak_value == 20);
    assert_true(m->peak_departure == 4 && m->peak_change == 1);
    const detect_episode *e = detect_tracker_episode(t, 1);
    assert_non_null(e);
    assert_int_equal(e->nmembers, 2);
    const detect_member *up = &e->members[0], *down = &e->members[1];
    assert_int_equal(up->id, 1);
    assert_int_equal(down->id, 2);
    assert_true(up->lo == 8 && up->hi == 12 && up->departure == 4 && up->change == 1);
    assert_int_equal(up->reason, DETECT_REASON_SPIKE);
    assert_true(down->lo == 6 && down->hi == 14 && down->departure == -1.25 && down->change == -0.9);
    assert_true(down->departure < 0 && up->departure > 0);

    feed_band(t, 1, S(2), 0.6, DETECT_REASON_SPIKE, 30, 10, 0, 20); /* lower score: the peak stays */
    detect_tracker_tick(t, S(2));
    assert_true(up->lo == 8 && up->hi == 12 && up->value == 20);
    feed_band(t, 1, S(3), 0.95, DETECT_REASON_LEVEL_UP, 30, 12, 9, 15); /* higher: a new peak, new band */
    detect_tracker_tick(t, S(3));
    assert_true(up->lo == 9 && up->hi == 15 && up->expected == 12 && up->value == 30);
    assert_true(up->departure == 5 && up->change == 1.5);
    assert_int_equal(up->reason, DETECT_REASON_LEVEL_UP);
    assert_true(m->peak_lo == 9 && m->peak_hi == 15);
    /* a hit inside its band (a variance change): departure 0 */
    feed_band(t, 3, S(3), 0.8, DETECT_REASON_VARIANCE, 10.5, 10, 8, 12);
    detect_tracker_tick(t, S(3));
    assert_true(detect_tracker_metric(t, 3)->peak_departure == 0);
    /* calm again: the run's figures are cleared */
    detect_tracker_tick(t, S(40));
    assert_true(isnan(m->peak_lo) && isnan(m->peak_departure) && isnan(m->peak_change));
    assert_true(up->lo == 9); /* the episode keeps its record */
    detect_tracker_free(t);
}

/* The first mover: the earliest onset, ties broken by the order of notice
 * (feed order within a tick); members within window_ms of its onset moved
 * together, later ones chained in by the window did not. */
static void test_first_mover(void **state)
{
    (void)state;
    detect_tracker *t = make(0.5, 2000, 60000, 10000);
    /* B (id 7) and A (id 4) both turn anomalous at S(0), B fed first */
    feed(t, 7, S(0), 0.6, DETECT_REASON_LEVEL_UP, 1);
    feed(t, 4, S(0), 0.9, DETECT_REASON_SPIKE, 1);
    detect_tracker_tick(t, S(0));
    assert_null(detect_tracker_episode(t, 1)); /* for 2 s: not noticed yet */
    feed(t, 9, S(1), 0.7, DETECT_REASON_DIP, 1);
    for (int s = 1; s <= 3; s++)
        detect_tracker_tick(t, S(s));
    const detect_episode *e = detect_tracker_episode(t, 1);
    assert_non_null(e);
    assert_int_equal(e->first, 7); /* tie at S(0): B was noticed first, not the higher peak */
    assert_int_equal(e->members[0].id, 7);
    assert_int_equal(e->members[1].id, 4);
    assert_int_equal(e->members[2].id, 9);
    /* D at S(9) (within 10 s of everyone), E at S(18): chained in by D, 18 s after the first */
    feed(t, 2, S(9), 0.8, DETECT_REASON_VARIANCE, 1);
    for (int s = 4; s <= 12; s++)
        detect_tracker_tick(t, S(s));
    feed(t, 3, S(18), 0.8, DETECT_REASON_SPIKE, 1);
    for (int s = 13; s <= 21; s++)
        detect_tracker_tick(t, S(s));
    assert_int_equal(e->nmembers, 5);
    assert_int_equal(e->first, 7);
    assert_int_equal(e->first_onset_ms, S(0));
    bool want[] = {true, true, true, true, false};
    int ids[] = {7, 4, 9, 2, 3};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(e->members[i].id, ids[i]);
        assert_int_equal(e->members[i].together, want[i]);
    }
    /* a new episode's first mover is its own opener */
    feed(t, 5, S(100), 0.8, DETECT_REASON_DIP, 1);
    for (int s = 100; s <= 102; s++)
        detect_tracker_tick(t, S(s));
    const detect_episode *e2 = detect_tracker_episode(t, 2);
    assert_non_null(e2);
    assert_int_equal(e2->first, 5);
    assert_true(e2->members[0].together);
    detect_tracker_free(t);
}

/* A metric that calms and comes back within the window joins the same
 * episode once (renewed, not listed twice). */
static void test_rejoin(void **state)
{
    (void)state;
    detect_tracker *t = make(0.5, 0, 2000, 10000);
    detect_note n[32];
    feed(t, 1, S(0), 0.6, DETECT_REASON_SPIKE, 1);
    feed(t, 2, S(0), 0.6, DETECT_REASON_SPIKE, 1);
    detect_tracker_tick(t, S(0));
    for (int s = 1; s <= 3; s++) {
        feed(t, 2, S(s), 0.6, DETECT_REASON_SPIKE, 1);
        detect_tracker_tick(t, S(s));
    }
    /* 1 calm at 2 s; back at 4 s (4 s after the newest onset, inside 10 s) */
    feed(t, 1, S(4), 0.9, DETECT_REASON_DIP, 7);
    detect_tracker_tick(t, S(4));
    drain(t, n, 32);
    const detect_episode *e = detect_tracker_episode(t, 1);
    assert_int_equal(e->nmembers, 2);
    assert_int_equal(e->anomalous, 2);
    assert_int_equal(e->members[0].calm_ms, 0);
    assert_true(e->members[0].peak == 0.9);
    assert_int_equal(e->members[0].reason, DETECT_REASON_DIP);
    assert_int_equal(detect_tracker_episodes_total(t), 1);
    detect_tracker_free(t);
}

/* Bounds: members beyond DETECT_EPISODE_MEMBERS are only counted; at most
 * DETECT_EPISODES_KEEP episodes are kept. */
static void test_bounds(void **state)
{
    (void)state;
    detect_tracker *t = make(0.5, 0, 1000, 0);
    detect_note n[256];
    for (int id = 0; id < DETECT_EPISODE_MEMBERS + 8; id++)
        feed(t, id, S(0), 0.6 + id * 0.001, DETECT_REASON_SPIKE, id);
    detect_tracker_tick(t, S(0));
    assert_int_equal(drain(t, n, 256), DETECT_EPISODE_MEMBERS + 9);
    const detect_episode *e = detect_tracker_episode(t, 1);
    assert_int_equal(e->nmembers, DETECT_EPISODE_MEMBERS);
    assert_int_equal(e->more, 8);
    assert_int_equal(e->anomalous, DETECT_EPISODE_MEMBERS + 8);
    detect_tracker_tick(t, S(1)); /* all calm; window 0: closes now */
    assert_int_equal(e->closed_ms, S(1));
    drain(t, n, 256);

    /* 20 more episodes, one at a time (each closes before the next) */
    for (int k = 0; k < 20; k++) {
        feed(t, 1000 + k, S(10 + 10 * k), 0.9, DETECT_REASON_SPIKE, 1);
        detect_tracker_tick(t, S(10 + 10 * k));
        detect_tracker_tick(t, S(11 + 10 * k));
    }
    drain(t, n, 256);
    const detect_episode *list[DETECT_EPISODES_KEEP + 4];
    int ne = detect_tracker_episodes(t, list, DETECT_EPISODES_KEEP + 4);
    assert_int_equal(ne, DETECT_EPISODES_KEEP);
    assert_int_equal(list[0]->id, 21);
    assert_int_equal(list[ne - 1]->id, 21 - DETECT_EPISODES_KEEP + 1);
    assert_null(detect_tracker_episode(t, 1));

    /* every kept episode open: a new one closes the oldest open one */
    detect_tracker_free(t);
    t = make(0.5, 0, 100000, 0);
    for (int k = 0; k <= DETECT_EPISODES_KEEP; k++) {
        feed(t, k, S(k), 0.9, DETECT_REASON_SPIKE, 1);
        detect_tracker_tick(t, S(k));
    }
    int k = drain(t, n, 256);
    assert_int_equal(k, 2 * (DETECT_EPISODES_KEEP + 1) + 1);
    assert_int_equal(n[2 * DETECT_EPISODES_KEEP].kind, DETECT_NOTE_EPISODE_CLOSE);
    assert_int_equal(n[2 * DETECT_EPISODES_KEEP].episode, 1);
    assert_null(detect_tracker_episode(t, 1));
    /* metric 0 (of the forgotten episode) calms without trouble */
    for (int s = 0; s < 3; s++)
        detect_tracker_tick(t, S(200 + s));
    k = drain(t, n, 256);
    assert_int_equal(k, DETECT_EPISODES_KEEP + 1 + DETECT_EPISODES_KEEP); /* calms, then closes */
    detect_tracker_free(t);
}

static void test_forget(void **state)
{
    (void)state;
    detect_tracker *t = make(0.5, 0, 10000, 0);
    detect_note n[8];
    feed(t, 4, S(0), 0.9, DETECT_REASON_SPIKE, 1);
    feed(t, 5, S(0), 0.9, DETECT_REASON_SPIKE, 1);
    detect_tracker_tick(t, S(0));
    drain(t, n, 8);
    detect_tracker_forget(t, 4, S(1));
    assert_int_equal(drain(t, n, 8), 1);
    assert_int_equal(n[0].kind, DETECT_NOTE_CALM);
    assert_int_equal(n[0].id, 4);
    assert_null(detect_tracker_metric(t, 4));
    int na;
    const int *ids = detect_tracker_anomalous(t, &na);
    assert_int_equal(na, 1);
    assert_int_equal(ids[0], 5);
    assert_int_equal(detect_tracker_episode(t, 1)->anomalous, 1);
    detect_tracker_forget(t, 99, S(1)); /* never seen: nothing */
    detect_tracker_forget(t, -1, S(1));
    assert_int_equal(drain(t, n, 8), 0);
    detect_tracker_free(t);
}

static void test_bad_input(void **state)
{
    (void)state;
    detect_tracker *t = make(0.5, 0, 1000, 1000);
    detect_result r = {0.9, DETECT_REASON_SPIKE, 1, 0, 2};
    assert_int_equal(detect_tracker_update(t, -1, S(0), &r, 1), -EINVAL);
    assert_int_equal(detect_tracker_update(t, DETECT_TRACK_IDS_MAX, S(0), &r, 1), -EINVAL);
    assert_int_equal(detect_tracker_update(t, 1, 0, &r, 1), -EINVAL);
    assert_int_equal(detect_tracker_update(t, 1, S(0), NULL, 1), -EINVAL);
    assert_int_equal(detect_tracker_update(NULL, 1, S(0), &r, 1), -EINVAL);
    detect_result nan = {NAN, DETECT_REASON_NONE, NAN, NAN, NAN};
    assert_int_equal(detect_tracker_update(t, 1, S(0), &nan, NAN), 0);
    detect_tracker_tick(t, S(0));
    detect_note nt;
    assert_int_equal(detect_tracker_next_note(t, &nt), 0);
    assert_int_equal(detect_tracker_metric(t, 1)->since_ms, 0);
    assert_int_equal(detect_tracker_next_note(NULL, &nt), 0);
    detect_tracker_tick(NULL, S(0));
    assert_null(detect_tracker_metric(NULL, 1));
    assert_null(detect_tracker_metric(t, 1 << 22));
    /* a large id works */
    assert_int_equal(detect_tracker_update(t, 100000, S(1), &r, 1), 0);
    detect_tracker_tick(t, S(1));
    assert_int_equal(detect_tracker_next_note(t, &nt), 1);
    detect_tracker_free(t);
}

/* A new threshold applies to the next samples; the runs are kept. */
static void test_configure_keeps_state(void **state)
{
    (void)state;
    detect_tracker *t = make(0.5, 0, 5000, 1000);
    feed(t, 1, S(0), 0.6, DETECT_REASON_SPIKE, 1);
    detect_tracker_tick(t, S(0));
    detect_track_config c = {0.9, 0, 5000, 1000};
    assert_int_equal(detect_tracker_configure(t, &c), 0);
    assert_int_equal(detect_tracker_metric(t, 1)->since_ms, S(0));
    feed(t, 2, S(1), 0.6, DETECT_REASON_SPIKE, 1); /* not a hit any more */
    detect_tracker_tick(t, S(1));
    assert_int_equal(detect_tracker_metric(t, 2)->since_ms, 0);
    assert_int_equal(detect_tracker_episode(t, 1)->nmembers, 1);
    detect_tracker_free(t);
}

/* Pending notes are bounded: beyond 65536 they are dropped and counted. */
static void test_note_overflow(void **state)
{
    (void)state;
    detect_tracker *t = make(0.5, 0, 1000, 0);
    int many = 70000;
    for (int id = 0; id < many; id++)
        feed(t, id, S(0), 0.9, DETECT_REASON_SPIKE, 1);
    detect_tracker_tick(t, S(0)); /* 1 open + 70000 anomalies */
    assert_int_equal(detect_tracker_notes_dropped(t), (uint64_t)(many + 1 - 65536));
    detect_note nt;
    int k = 0;
    while (detect_tracker_next_note(t, &nt))
        k++;
    assert_int_equal(k, 65536);
    /* the queue works again after a drain */
    detect_tracker_tick(t, S(1));
    assert_int_equal(detect_tracker_next_note(t, &nt), 1);
    assert_int_equal(nt.kind, DETECT_NOTE_CALM);
    detect_tracker_free(t);
}

/* Random scores over many ticks; after each tick the episodes' counts agree
 * with the metrics, members are in onset order, notes pair up. */
static void test_random_invariants(void **state)
{
    (void)state;
    enum { NM = 60, TICKS = 3000 };
    srand(4242);
    detect_tracker *t = make(0.5, 2000, 4000, 5000);
    int open_runs[NM] = {0}; /* 1 between ANOMALY and CALM */
    for (int s = 1; s <= TICKS; s++) {
        for (int id = 0; id < NM; id++) {
            if (rand() % 3 == 0)
                continue; /* not fed this tick */
            double sc = (rand() % 1000) / 1000.0;
            sc = sc > 0.997 ? sc : sc * 0.5;
            feed(t, id, S(s), sc, sc >= 0.5 ? DETECT_REASON_SPIKE : DETECT_REASON_NONE, id);
        }
        if (s % 500 == 0)
            detect_tracker_forget(t, s % NM, S(s));
        detect_tracker_tick(t, S(s));
        detect_note nt;
        while (detect_tracker_next_note(t, &nt)) {
            if (nt.kind == DETECT_NOTE_ANOMALY) {
                assert_int_equal(open_runs[nt.id], 0);
                open_runs[nt.id] = 1;
            } else if (nt.kind == DETECT_NOTE_CALM) {
                assert_int_equal(open_runs[nt.id], 1);
                open_runs[nt.id] = 0;
            }
        }
        const detect_episode *list[DETECT_EPISODES_KEEP];
        int ne = detect_tracker_episodes(t, list, DETECT_EPISODES_KEEP);
        for (int i = 0; i < ne; i++) {
            const detect_episode *e = list[i];
            assert_true(e->nmembers <= DETECT_EPISODE_MEMBERS);
            for (int k = 1; k < e->nmembers; k++)
                assert_true(e->members[k - 1].since_ms <= e->members[k].since_ms);
            if (!e->more) { /* every member listed: the first mover leads the list */
                assert_int_equal(e->first, e->members[0].id);
                assert_int_equal(e->first_onset_ms, e->members[0].since_ms);
            }
            for (int k = 0; k < e->nmembers; k++)
                assert_int_equal(e->members[k].together, e->members[k].since_ms - e->first_onset_ms <= 5000);
            if (e->closed_ms)
                continue;
            int cnt = 0;
            for (int id = 0; id < NM; id++) {
                const detect_metric *m = detect_tracker_metric(t, id);
                cnt += m && m->since_ms && m->noticed && m->episode == e->id;
            }
            assert_int_equal(cnt, e->anomalous);
            if (i > 0)
                assert_true(list[i - 1]->id > e->id);
        }
        for (int id = 0; id < NM; id++) {
            const detect_metric *m = detect_tracker_metric(t, id);
            assert_int_equal(open_runs[id], m && m->since_ms && m->noticed);
        }
    }
    assert_true(detect_tracker_episodes_total(t) > 10);
    detect_tracker_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),        cmocka_unit_test(test_one_metric),
        cmocka_unit_test(test_for),           cmocka_unit_test(test_grouping),
        cmocka_unit_test(test_rejoin),        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_forget),        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_configure_keeps_state), cmocka_unit_test(test_note_overflow),
        cmocka_unit_test(test_random_invariants),
        cmocka_unit_test(test_explain_figures), cmocka_unit_test(test_band_carried),
        cmocka_unit_test(test_first_mover),   cmocka_unit_test(test_sustained),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
