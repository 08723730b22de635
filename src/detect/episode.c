/* episode.c: anomaly tracking across metrics (detect_tracker, detect.h).
 *
 * Per metric: the last result and the current anomalous run (onset, last
 * hit, peak). Anomalous metrics are kept in a small list in the order they
 * turned anomalous, so a tick costs O(anomalous metrics + kept episodes),
 * not O(metrics). Episodes live in a fixed array of DETECT_EPISODES_KEEP
 * slots; notes wait in a growing queue (at most NOTES_MAX) until drained.
 * Nothing here knows what a metric is: ids in, ids out. */
#include "detect/detect.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOTES_MAX 65536

typedef struct trk_metric {
    detect_metric pub;
    bool seen;
    double onset_lo, onset_hi; /* the band expected when the run began */
    double onset_exp, peak_d;  /* the value expected then; the largest |value - it| at a hit */
    double flat;               /* the value of a flat line (peak reason flatline) */
    int64_t out_ms;            /* last sample of the run outside that band */
    int64_t dep_since;         /* first sample of the unbroken departure up to now, 0: none */
} trk_metric;

/* A run stays anomalous while the value stays outside the band expected at
 * its onset, for at most this long without a hit (then it must be hit again). */
#define SUSTAIN_MAX_MS (30 * 60000LL)

struct detect_tracker {
    detect_track_config cfg;
    trk_metric *m;          /* by id */
    int cap;
    int *active;            /* ids of the anomalous metrics, by onset */
    int nactive, capactive;
    detect_episode ep[DETECT_EPISODES_KEEP]; /* id 0 = empty slot */
    uint64_t next_episode;
    detect_note *notes;     /* pending: [rd, wr) */
    size_t rd, wr, capnotes;
    uint64_t notes_dropped;
};

void detect_track_config_default(detect_track_config *c)
{
    c->threshold = DETECT_THRESHOLD_DEFAULT;
    c->for_ms = 120000;
    c->keep_ms = 30000;
    c->window_ms = 10000;
}

int detect_track_config_check(const detect_track_config *c, char *err, size_t errlen)
{
    const char *why = NULL;
    if (!c)
        why = "no configuration";
    else if (!isfinite(c->threshold) || c->threshold <= 0 || c->threshold > 1)
        why = "threshold must be above 0 and at most 1";
    else if (c->for_ms < 0 || c->keep_ms < 0 || c->window_ms < 0)
        why = "durations must not be negative";
    if (!why)
        return 0;
    if (err && errlen)
        snprintf(err, errlen, "%s", why);
    return -EINVAL;
}

detect_tracker *detect_tracker_new(const detect_track_config *cfg)
{
    if (detect_track_config_check(cfg, NULL, 0))
        return NULL;
    detect_tracker *t = calloc(1, sizeof *t);
    if (t)
        t->cfg = *cfg;
    return t;
}

void detect_tracker_free(detect_tracker *t)
{
    if (!t)
        return;
    free(t->m);
    free(t->active);
    free(t->notes);
    free(t);
}

int detect_tracker_configure(detect_tracker *t, const detect_track_config *cfg)
{
    if (!t || detect_track_config_check(cfg, NULL, 0))
        return -EINVAL;
    t->cfg = *cfg;
    return 0;
}

const detect_track_config *detect_tracker_config(const detect_tracker *t)
{
    return &t->cfg;
}

/* ---- explanation figures ---------------------------------------------------- */

double detect_departure(double value, double lo, double hi)
{
    if (isnan(value) || isnan(lo) || isnan(hi))
        return NAN;
    if (lo > hi) {
        double x = lo;
        lo = hi;
        hi = x;
    }
    double half = (hi - lo) / 2, tiny = 1e-9 * fmax(1, fmax(fabs(lo), fabs(hi)));
    if (!(half >= tiny)) /* a band of width 0 (or inf - inf) */
        half = tiny;
    double d = value > hi ? (value - hi) / half : value < lo ? (value - lo) / half : 0;
    return isfinite(d) ? d : NAN;
}

double detect_change(double value, double expected)
{
    if (isnan(value) || isnan(expected) || expected == 0)
        return NAN;
    double c = (value - expected) / fabs(expected);
    return isfinite(c) ? c : NAN;
}

/* ---- notes ------------------------------------------------------------------ */

static void note(detect_tracker *t, detect_note_kind kind, int id, uint64_t episode, int64_t ts)
{
    if (t->wr - t->rd >= NOTES_MAX) {
        t->notes_dropped++;
        return;
    }
    if (t->wr == t->capnotes) {
        if (t->rd > 0) { /* slide the pending ones down first */
            memmove(t->notes, t->notes + t->rd, (t->wr - t->rd) * sizeof *t->notes);
            t->wr -= t->rd;
            t->rd = 0;
        }
        if (t->wr == t->capnotes) {
            size_t cap = t->capnotes ? t->capnotes * 2 : 64;
            detect_note *n = realloc(t->notes, cap * sizeof *n);
            if (!n) {
                t->notes_dropped++;
                return;
            }
            t->notes = n;
            t->capnotes = cap;
        }
    }
    t->notes[t->wr++] = (detect_note){kind, id, episode, ts};
}

int detect_tracker_next_note(detect_tracker *t, detect_note *out)
{
    if (!t || t->rd == t->wr)
        return 0;
    *out = t->notes[t->rd++];
    if (t->rd == t->wr)
        t->rd = t->wr = 0;
    return 1;
}

uint64_t detect_tracker_notes_dropped(const detect_tracker *t)
{
    return t ? t->notes_dropped : 0;
}

/* ---- episodes ---------------------------------------------------------------- */

static detect_episode *find_episode(detect_tracker *t, uint64_t id)
{
    for (int i = 0; id && i < DETECT_EPISODES_KEEP; i++)
        if (t->ep[i].id == id)
            return &t->ep[i];
    return NULL;
}

static detect_member *find_member(detect_episode *e, int id)
{
    for (int i = 0; i < e->nmembers; i++)
        if (e->members[i].id == id)
            return &e->members[i];
    return NULL;
}

static void close_episode(detect_tracker *t, detect_episode *e, int64_t now)
{
    e->closed_ms = now;
    note(t, DETECT_NOTE_EPISODE_CLOSE, -1, e->id, now);
}

/* A slot for a new episode: an empty one, else the oldest closed one, else
 * the oldest open one (closed first). */
static detect_episode *episode_slot(detect_tracker *t, int64_t now)
{
    detect_episode *closed = NULL, *open = NULL;
    for (int i = 0; i < DETECT_EPISODES_KEEP; i++) {
        detect_episode *e = &t->ep[i];
        if (!e->id)
            return e;
        if (e->closed_ms && (!closed || e->id < closed->id))
            closed = e;
        if (!e->closed_ms && (!open || e->id < open->id))
            open = e;
    }
    if (closed)
        return closed;
    close_episode(t, open, now);
    return open;
}

/* The newest open episode this onset joins, or NULL. */
static detect_episode *joinable(detect_tracker *t, int64_t onset)
{
    detect_episode *best = NULL;
    for (int i = 0; i < DETECT_EPISODES_KEEP; i++) {
        detect_episode *e = &t->ep[i];
        if (!e->id || e->closed_ms)
            continue;
        int64_t d = onset > e->last_onset_ms ? onset - e->last_onset_ms : e->last_onset_ms - onset;
        if (d <= t->cfg.window_ms && (!best || e->id > best->id))
            best = e;
    }
    return best;
}

static void member_peak(detect_member *mb, const detect_metric *p)
{
    mb->peak = p->peak;
    mb->reason = p->peak_reason;
    mb->value = p->peak_value;
    mb->expected = p->peak_expected;
    mb->lo = p->peak_lo;
    mb->hi = p->peak_hi;
    mb->departure = p->peak_departure;
    mb->change = p->peak_change;
}

/* Which members moved together with the first mover (onsets within window). */
static void mark_together(detect_episode *e, int64_t window)
{
    for (int i = 0; i < e->nmembers; i++)
        e->members[i].together = e->members[i].since_ms - e->first_onset_ms <= window;
}

/* Adds (or, for a metric already listed, renews) a member; keeps onset
 * order; an earlier onset than any so far makes it the first mover. */
static void join(detect_episode *e, int id, const detect_metric *p, int64_t now, int64_t window)
{
    e->anomalous++;
    e->calm_ms = 0;
    if (p->since_ms > e->last_onset_ms)
        e->last_onset_ms = p->since_ms;
    if (p->since_ms < e->first_onset_ms) {
        e->first_onset_ms = p->since_ms;
        e->first = id;
    }
    if (p->peak > e->peak)
        e->peak = p->peak;
    detect_member *mb = find_member(e, id);
    if (mb) {
        mb->calm_ms = 0;
        if (p->peak > mb->peak)
            member_peak(mb, p);
        mark_together(e, window);
        return;
    }
    if (e->nmembers == DETECT_EPISODE_MEMBERS) {
        e->more++;
        mark_together(e, window);
        return;
    }
    int at = e->nmembers;
    while (at > 0 && e->members[at - 1].since_ms > p->since_ms)
        at--;
    memmove(&e->members[at + 1], &e->members[at], (size_t)(e->nmembers - at) * sizeof e->members[0]);
    e->nmembers++;
    mb = &e->members[at];
    *mb = (detect_member){.id = id, .since_ms = p->since_ms, .noticed_ms = now};
    member_peak(mb, p);
    mark_together(e, window);
}

static void notice(detect_tracker *t, int id, int64_t now)
{
    detect_metric *p = &t->m[id].pub;
    p->noticed = true;
    detect_episode *e = joinable(t, p->since_ms);
    if (!e) {
        e = episode_slot(t, now);
        *e = (detect_episode){.id = ++t->next_episode, .opened_ms = now, .first_onset_ms = p->since_ms,
                              .last_onset_ms = p->since_ms, .first = id};
        note(t, DETECT_NOTE_EPISODE_OPEN, id, e->id, now);
    }
    join(e, id, p, now, t->cfg.window_ms);
    p->episode = e->id;
    note(t, DETECT_NOTE_ANOMALY, id, e->id, now);
}

/* Ends metric id's run (the caller takes it off the anomalous list). */
static void calm(detect_tracker *t, int id, int64_t now)
{
    detect_metric *p = &t->m[id].pub;
    if (p->noticed) {
        detect_episode *e = find_episode(t, p->episode);
        if (e && !e->closed_ms) {
            detect_member *mb = find_member(e, id);
            if (mb)
                mb->calm_ms = now;
            if (e->anomalous > 0 && --e->anomalous == 0)
                e->calm_ms = now;
        }
        note(t, DETECT_NOTE_CALM, id, p->episode, now);
    }
    p->since_ms = p->last_hit_ms = 0;
    p->peak = p->peak_value = p->peak_expected = 0;
    p->peak_lo = p->peak_hi = p->peak_departure = p->peak_change = NAN;
    p->peak_reason = DETECT_REASON_NONE;
    p->noticed = false;
    p->episode = 0;
}

/* ---- feeding ------------------------------------------------------------------ */

static int grow(detect_tracker *t, int need)
{
    if (need <= t->cap)
        return 0;
    int cap = t->cap ? t->cap : 64;
    while (cap < need)
        cap *= 2;
    trk_metric *m = realloc(t->m, (size_t)cap * sizeof *m);
    if (!m)
        return -ENOMEM;
    memset(m + t->cap, 0, (size_t)(cap - t->cap) * sizeof *m);
    t->m = m;
    t->cap = cap;
    return 0;
}

static int push_active(detect_tracker *t, int id)
{
    if (t->nactive == t->capactive) {
        int cap = t->capactive ? t->capactive * 2 : 16;
        int *a = realloc(t->active, (size_t)cap * sizeof *a);
        if (!a)
            return -ENOMEM;
        t->active = a;
        t->capactive = cap;
    }
    t->active[t->nactive++] = id;
    return 0;
}

/* Whether a run's departure lasts at value: a flat line that has not moved,
 * or a value still outside the band expected at the onset and still at least
 * half as far from what was expected as at its farthest hit (a spike that
 * decays, a load average relaxing, is over). */
static bool sustained(const trk_metric *m, double value)
{
    if (m->pub.peak_reason == DETECT_REASON_FLATLINE)
        return value == m->flat;
    return (value < m->onset_lo || value > m->onset_hi) && fabs(value - m->onset_exp) >= 0.5 * m->peak_d;
}

/* Keeps the start of the unbroken departure up to ts_ms. */
static void departing(trk_metric *m, int64_t ts_ms, bool dep)
{
    if (!dep)
        m->dep_since = 0;
    else if (!m->dep_since)
        m->dep_since = ts_ms;
}

int detect_tracker_update(detect_tracker *t, int id, int64_t ts_ms, const detect_result *r, double value)
{
    if (!t || !r || id < 0 || id >= DETECT_TRACK_IDS_MAX || ts_ms <= 0)
        return -EINVAL;
    if (grow(t, id + 1))
        return -ENOMEM;
    trk_metric *m = &t->m[id];
    if (!m->seen) {
        memset(m, 0, sizeof *m);
        m->seen = true;
        m->pub.peak_lo = m->pub.peak_hi = m->pub.peak_departure = m->pub.peak_change = NAN;
    }
    detect_metric *p = &m->pub;
    p->last_ms = ts_ms;
    p->score = r->score;
    p->reason = r->reason;
    p->value = value;
    p->expected = r->expected;
    p->lo = r->lo;
    p->hi = r->hi;
    if (!(r->score >= t->cfg.threshold)) { /* NaN too */
        /* a departure that lasts: still outside the band of its onset */
        if (p->since_ms) {
            bool dep = ts_ms - p->last_hit_ms < SUSTAIN_MAX_MS && sustained(m, value);
            if (dep)
                m->out_ms = ts_ms;
            departing(m, ts_ms, dep);
        }
        return 0;
    }
    if (!p->since_ms) {
        if (push_active(t, id))
            return -ENOMEM;
        p->since_ms = ts_ms;
        p->peak = -1;
        m->onset_lo = r->lo;
        m->onset_hi = r->hi;
        m->out_ms = 0;
        m->dep_since = 0;
        m->onset_exp = isnan(r->expected) ? value : r->expected;
        m->peak_d = 0;
    }
    p->last_hit_ms = ts_ms;
    if (r->reason == DETECT_REASON_FLATLINE)
        m->flat = value;
    if (fabs(value - m->onset_exp) > m->peak_d)
        m->peak_d = fabs(value - m->onset_exp);
    if (r->score > p->peak) {
        p->peak = r->score;
        p->peak_reason = r->reason;
        p->peak_value = value;
        p->peak_expected = r->expected;
        p->peak_lo = r->lo;
        p->peak_hi = r->hi;
        p->peak_departure = detect_departure(value, r->lo, r->hi);
        p->peak_change = detect_change(value, r->expected);
    }
    departing(m, ts_ms, sustained(m, value));
    if (p->noticed) { /* keep the episode's record of it up to date */
        detect_episode *e = find_episode(t, p->episode);
        detect_member *mb = e && !e->closed_ms ? find_member(e, id) : NULL;
        if (mb && r->score > mb->peak)
            member_peak(mb, p);
        if (e && !e->closed_ms && r->score > e->peak)
            e->peak = r->score;
    }
    return 0;
}

void detect_tracker_tick(detect_tracker *t, int64_t now)
{
    if (!t)
        return;
    int64_t keep = t->cfg.keep_ms > 0 ? t->cfg.keep_ms : 1;
    int w = 0;
    for (int i = 0; i < t->nactive; i++) {
        int id = t->active[i];
        detect_metric *p = &t->m[id].pub;
        int64_t last = t->m[id].out_ms > p->last_hit_ms ? t->m[id].out_ms : p->last_hit_ms;
        if (now - last >= keep) {
            calm(t, id, now);
            continue;
        }
        /* noticed once anomalous for `for`, the departure unbroken over
         * the last `for` (a burst of spikes that comes and goes is not) */
        int64_t dep = t->m[id].dep_since;
        if (!p->noticed && now - p->since_ms >= t->cfg.for_ms &&
            (t->cfg.for_ms == 0 || (dep && now - dep >= t->cfg.for_ms)))
            notice(t, id, now);
        t->active[w++] = id;
    }
    t->nactive = w;
    for (int i = 0; i < DETECT_EPISODES_KEEP; i++) {
        detect_episode *e = &t->ep[i];
        if (e->id && !e->closed_ms && e->anomalous == 0 && e->calm_ms && now - e->calm_ms >= t->cfg.window_ms)
            close_episode(t, e, now);
    }
}

void detect_tracker_forget(detect_tracker *t, int id, int64_t now)
{
    if (!t || id < 0 || id >= t->cap || !t->m[id].seen)
        return;
    for (int i = 0; i < t->nactive; i++)
        if (t->active[i] == id) {
            calm(t, id, now);
            memmove(&t->active[i], &t->active[i + 1], (size_t)(t->nactive - i - 1) * sizeof *t->active);
            t->nactive--;
            break;
        }
    memset(&t->m[id], 0, sizeof t->m[id]);
}

/* ---- reading ------------------------------------------------------------------- */

const detect_metric *detect_tracker_metric(const detect_tracker *t, int id)
{
    if (!t || id < 0 || id >= t->cap || !t->m[id].seen)
        return NULL;
    return &t->m[id].pub;
}

const int *detect_tracker_anomalous(const detect_tracker *t, int *n)
{
    *n = t ? t->nactive : 0;
    return t ? t->active : NULL;
}

int detect_tracker_episodes(const detect_tracker *t, const detect_episode **out, int max)
{
    int n = 0;
    for (int i = 0; t && i < DETECT_EPISODES_KEEP; i++) {
        const detect_episode *e = &t->ep[i];
        if (!e->id)
            continue;
        /* insertion by id, newest first; at most max kept */
        int at = n < max ? n : max;
        while (at > 0 && out[at - 1]->id < e->id)
            at--;
        if (at >= max)
            continue;
        int last = n < max ? n : max - 1;
        memmove(&out[at + 1], &out[at], (size_t)(last - at) * sizeof *out);
        out[at] = e;
        if (n < max)
            n++;
    }
    return n;
}

const detect_episode *detect_tracker_episode(const detect_tracker *t, uint64_t id)
{
    return t ? find_episode((detect_tracker *)t, id) : NULL;
}

uint64_t detect_tracker_episodes_total(const detect_tracker *t)
{
    return t ? t->next_episode : 0;
}
