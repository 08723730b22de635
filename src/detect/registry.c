/* registry.c: ippocd's anomaly detection at run time (see detect.h, "the registry").
 *
 * Each tick, on the loop thread, after mem_tick: the tick's values come back
 * out of memory's RAM window (mem_tick_values), each watched series' value
 * goes through its own detector (detect_feed, O(1)), every result into one
 * detect_tracker, whose notes become `anomaly` and `anomaly.episode` events.
 * Then an immutable snapshot (scores, anomalous metrics, episodes, with
 * pointers to the store's name strings, which live until mem_close) replaces
 * the previous one under a mutex; the API threads format it into JSON or
 * Prometheus text without touching the loop's state. The detectors' bytes
 * are saved through memory's writer thread every save_interval and at a
 * clean stop, and loaded at start.
 *
 * Series are identified by their memory id; per-id arrays grow with the
 * store. Which series are watched is decided once per id (include/exclude
 * globs) and again after a reload. */
#include "detect/detect.h"

#include <errno.h>
#include <fnmatch.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { W_UNKNOWN = 0, W_YES, W_NO, W_FULL };

#define EVENTS_PER_TICK 64           /* `anomaly` events at most per tick (the rest: in the episode) */
#define IDLE_DROP_MS (2 * 3600000LL) /* a detector unfed this long is freed (a process gone, say) */
#define SWEEP_EVERY_MS 60000

typedef struct snap_metric {
    int id;
    const char *name, *labels, *unit;
    double score, value, expected;
    double lo, hi;
    detect_reason reason;
    bool anomalous;
    int64_t since_ms, last_ms;
    double peak, peak_value, peak_expected;
    double peak_lo, peak_hi, peak_departure, peak_change;
    detect_reason peak_reason;
    uint64_t count, episode;
} snap_metric;

typedef struct snap_episode {
    detect_episode e;
    const char *name[DETECT_EPISODE_MEMBERS], *labels[DETECT_EPISODE_MEMBERS], *unit[DETECT_EPISODE_MEMBERS];
    const char *first_name, *first_labels; /* the first mover (listed or not) */
} snap_episode;

typedef struct registry_snap {
    int refs; /* under anomaly.lock */
    bool enabled;
    int64_t ts;
    detect_track_config track;
    int max_metrics, unwatched_full;
    uint64_t episodes_total;
    size_t n;
    snap_metric *m; /* by id */
    int nep;
    snap_episode ep[DETECT_EPISODES_KEEP]; /* newest first */
} registry_snap;

struct detect_registry {
    mem_t *mem;
    detect_registry_config cfg;
    detect_tracker *trk;
    int cap;                 /* length of the per-id arrays */
    detect_state **det;      /* by id, NULL: no detector */
    const char **name, **labels, **unit; /* by id, owned by the store; NULL: unknown */
    uint8_t *watch;          /* by id: W_* */
    int ndet, nfull;
    float *vals;
    int capvals;
    int known_series;        /* mem_series_count at the last name refresh */
    int names_next;          /* series ids below it have had their names learnt */
    int64_t last_save_ms;
    int64_t last_ts;
    int64_t started_ms, last_sweep_ms;
    int64_t last_event_warn;
    int events_tick;         /* `anomaly` events written this tick */
    int events_skipped;      /* ... and not written */
    bool warned_full, warned_save;
    pthread_mutex_t lock;
    registry_snap *snap;
};

/* ---- per-id tables ------------------------------------------------------------ */

static int grow(detect_registry *a, int need)
{
    if (need <= a->cap)
        return 0;
    int cap = a->cap ? a->cap : 256;
    while (cap < need)
        cap *= 2;
    void *p;
#define GROW(field)                                                     \
    do {                                                                \
        p = realloc(a->field, (size_t)cap * sizeof *a->field);          \
        if (!p)                                                         \
            return -ENOMEM;                                             \
        a->field = p;                                                   \
        memset(a->field + a->cap, 0, (size_t)(cap - a->cap) * sizeof *a->field); \
    } while (0)
    GROW(det);
    GROW(name);
    GROW(labels);
    GROW(unit);
    GROW(watch);
#undef GROW
    a->cap = cap;
    return 0;
}

/* Learns the names of series registered since the last call. */
static void refresh_names(detect_registry *a)
{
    int n = mem_series_count(a->mem);
    if (n == a->known_series)
        return;
    mem_series_info *s = NULL;
    size_t k = 0;
    int next = 0;
    if (mem_series_since(a->mem, a->names_next, &s, &k, &next) < 0) /* the new ones only */
        return;
    for (size_t i = 0; i < k; i++) {
        if (s[i].id < 0 || grow(a, s[i].id + 1))
            continue;
        a->name[s[i].id] = s[i].name;
        a->labels[s[i].id] = s[i].labels ? s[i].labels : "";
        a->unit[s[i].id] = s[i].unit ? s[i].unit : "";
    }
    free(s);
    a->names_next = next;
    a->known_series = n;
}

static void drop_detector(detect_registry *a, int id, int64_t now)
{
    if (a->det[id]) {
        detect_free(a->det[id]);
        a->det[id] = NULL;
        a->ndet--;
    }
    detect_tracker_forget(a->trk, id, now);
}

/* The detector of series id, created on first use; NULL when not watched. */
static detect_state *detector_for(detect_registry *a, int id)
{
    if (a->watch[id] == W_UNKNOWN) {
        if (!a->name[id])
            return NULL; /* registered after the last refresh: next tick */
        a->watch[id] = detect_registry_config_match(&a->cfg, a->name[id], a->labels[id]) ? W_YES : W_NO;
    }
    if (a->watch[id] != W_YES)
        return NULL;
    if (!a->det[id]) {
        if (a->ndet >= a->cfg.max_metrics) {
            a->watch[id] = W_FULL;
            a->nfull++;
            if (!a->warned_full)
                log_warn("detect: max_metrics = %d reached: %s and later series are not watched "
                         "(raise [detect] max_metrics or narrow include)", a->cfg.max_metrics, a->name[id]);
            a->warned_full = true;
            return NULL;
        }
        a->det[id] = detect_new();
        if (!a->det[id])
            return NULL;
        a->ndet++;
    }
    return a->det[id];
}

/* ---- saved state ---------------------------------------------------------------- */

typedef struct load_ctx {
    detect_registry *a;
    int loaded, failed;
    char why[160];
} load_ctx;

static int load_one(void *ud, int id, const void *data, size_t len)
{
    load_ctx *l = ud;
    detect_registry *a = l->a;
    if (id >= a->cap || !a->name[id])
        return 0; /* a series the store no longer has */
    detect_state *d = detector_for(a, id);
    if (!d)
        return 0;
    char err[160];
    if (detect_load(d, data, len, err, sizeof err) == 0) {
        l->loaded++;
    } else {
        l->failed++;
        snprintf(l->why, sizeof l->why, "%s", err);
    }
    return 0;
}

static void load_states(detect_registry *a)
{
    load_ctx l = {.a = a};
    char err[256];
    refresh_names(a);
    int rc = mem_detector_load(a->mem, load_one, &l, err, sizeof err);
    if (rc)
        log_warn("detect: cannot load the saved detector state (starting from scratch): %s", err);
    if (l.failed)
        log_info("detect: %d saved detector state(s) could not be used and start afresh (%s)", l.failed, l.why);
    if (l.loaded)
        log_info("detect: %d detector(s) restored from the store", l.loaded);
}

int detect_registry_save(detect_registry *a, int64_t now_ms)
{
    if (!a || !a->ndet)
        return 0;
    size_t one = detect_state_size() + 64;
    mem_blob *b = malloc((size_t)a->ndet * sizeof *b);
    char *buf = malloc((size_t)a->ndet * one);
    if (!b || !buf) {
        free(b);
        free(buf);
        return -ENOMEM;
    }
    size_t n = 0;
    for (int id = 0; id < a->cap && n < (size_t)a->ndet; id++) {
        if (!a->det[id] || detect_count(a->det[id]) == 0)
            continue;
        size_t len = detect_save(a->det[id], buf + n * one, one);
        if (!len)
            continue;
        b[n] = (mem_blob){id, buf + n * one, len};
        n++;
    }
    int rc = mem_detector_save(a->mem, b, n, now_ms);
    free(b);
    free(buf);
    if (rc && !a->warned_save)
        log_warn("detect: cannot save the detectors' state now: %s (the disk is slow or full; will retry)",
                 strerror(-rc));
    a->warned_save = rc != 0;
    return rc;
}

/* ---- events ------------------------------------------------------------------------ */

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static void key_of(const char *name, const char *labels, char *buf, size_t n)
{
    snprintf(buf, n, "%s%s%s%s", name ? name : "?", labels && labels[0] ? "{" : "", labels ? labels : "",
             labels && labels[0] ? "}" : "");
}

static json_t *series_json(const char *name, const char *labels)
{
    char key[DETECT_KEY_MAX];
    key_of(name, labels, key, sizeof key);
    return json_pack("{s:s, s:o, s:s}", "metric", name ? name : "?", "labels", mem_labels_json(labels), "key", key);
}

static void record(detect_registry *a, int64_t ts, const char *type, const char *sev, json_t *payload)
{
    char *text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
    json_decref(payload);
    int64_t id = text ? mem_event_add(a->mem, ts, type, sev, "detect", text) : -ENOMEM;
    int64_t now = core_mono_ms();
    if (id < 0 && (!a->last_event_warn || now - a->last_event_warn >= 60000)) { /* once a minute */
        a->last_event_warn = now;
        log_warn("detect: cannot record event %s: %s", type, strerror((int)-id));
    }
    free(text);
}

/* "97.1", "1.5G", "0.00312": short, for the summary line. */
static void short_num(double v, char *buf, size_t n)
{
    static const char *const si[] = {"k", "M", "G", "T", "P", "E"};
    double a = fabs(v);
    if (isnan(v)) {
        snprintf(buf, n, "?");
    } else if (a >= 1e5 && isfinite(v)) {
        int k = -1;
        while (a >= 1000 && k < 5) {
            a /= 1000;
            v /= 1000;
            k++;
        }
        snprintf(buf, n, "%.1f%s", v, si[k]);
    } else if (a < 1e-9) { /* a band around 0 printed as 3e-12 says nothing */
        snprintf(buf, n, "0.0");
    } else if (a < 0.1) {
        snprintf(buf, n, "%.3g", v);
    } else {
        snprintf(buf, n, "%.1f", v);
    }
}

/* The one-line explanation of an anomaly:
 * "KEY: 97.1 vs expected 12.0 (band 3.0-21.0, +8.5 half-bands out), level_up since 03:12:05"
 * (the time is local, of since_ms; a date too when it is not the day of now;
 * "far above it" past 1000 half-bands, as from a band of almost no width). */
static void summary_text(char *buf, size_t n, const char *key, double value, double expected, double lo, double hi,
                         double departure, detect_reason reason, int64_t since_ms, int64_t now)
{
    char v[32], e[32], l[32], h[32], when[48] = "?";
    short_num(value, v, sizeof v);
    short_num(expected, e, sizeof e);
    short_num(lo, l, sizeof l);
    short_num(hi, h, sizeof h);
    time_t ts = (time_t)(since_ms / 1000), tn = (time_t)(now / 1000);
    struct tm tm, tmn;
    if (since_ms > 0 && localtime_r(&ts, &tm) && localtime_r(&tn, &tmn))
        strftime(when, sizeof when,
                 tm.tm_yday == tmn.tm_yday && tm.tm_year == tmn.tm_year ? "%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &tm);
    const char *r = detect_reason_name(reason);
    if (isnan(expected)) {
        snprintf(buf, n, "%s: %s (no baseline yet), %s since %s", key, v, r, when);
    } else if (isnan(lo) || isnan(hi)) {
        snprintf(buf, n, "%s: %s vs expected %s, %s since %s", key, v, e, r, when);
    } else {
        char dep[48] = "";
        if (fabs(departure) >= 1000) /* a band of (almost) no width: the number says nothing more */
            snprintf(dep, sizeof dep, ", far %s it", departure > 0 ? "above" : "below");
        else if (isfinite(departure) && departure != 0)
            snprintf(dep, sizeof dep, ", %+.1f half-bands out", departure);
        snprintf(buf, n, "%s: %s vs expected %s (band %s%s%s%s), %s since %s", key, v, e, l,
                 l[0] == '-' || h[0] == '-' ? " to " : "-", h, dep, r, when);
    }
}

/* The band and how far the value left it: lo, hi, departure, change. */
static void explain_json(json_t *o, double lo, double hi, double departure, double change)
{
    json_object_set_new(o, "lo", num(lo));
    json_object_set_new(o, "hi", num(hi));
    json_object_set_new(o, "departure", num(departure));
    json_object_set_new(o, "change", num(change));
}

static json_t *member_json(const detect_member *mb, int order, const char *name, const char *labels,
                           int64_t first_onset)
{
    json_t *o = series_json(name, labels);
    json_object_set_new(o, "order", json_integer(order));
    json_object_set_new(o, "since_ms", json_integer(mb->since_ms));
    json_object_set_new(o, "noticed_ms", json_integer(mb->noticed_ms));
    json_object_set_new(o, "calm_ms", mb->calm_ms ? json_integer(mb->calm_ms) : json_null());
    json_object_set_new(o, "peak", num(mb->peak));
    json_object_set_new(o, "reason", json_string(detect_reason_name(mb->reason)));
    json_object_set_new(o, "value", num(mb->value));
    json_object_set_new(o, "expected", num(mb->expected));
    explain_json(o, mb->lo, mb->hi, mb->departure, mb->change);
    json_object_set_new(o, "lag_ms", json_integer(mb->since_ms - first_onset));
    json_object_set_new(o, "together", json_boolean(mb->together));
    return o;
}

/* The episode's first mover: its series, and its explanation when listed. */
static json_t *first_json(const detect_episode *e, const char *name, const char *labels, int64_t now)
{
    json_t *o = series_json(name, labels);
    for (int i = 0; i < e->nmembers; i++) {
        const detect_member *mb = &e->members[i];
        if (mb->id != e->first)
            continue;
        char key[DETECT_KEY_MAX], text[DETECT_KEY_MAX + 256];
        key_of(name, labels, key, sizeof key);
        summary_text(text, sizeof text, key, mb->value, mb->expected, mb->lo, mb->hi, mb->departure, mb->reason,
                     mb->since_ms, now);
        json_object_set_new(o, "since_ms", json_integer(mb->since_ms));
        json_object_set_new(o, "reason", json_string(detect_reason_name(mb->reason)));
        json_object_set_new(o, "value", num(mb->value));
        json_object_set_new(o, "expected", num(mb->expected));
        explain_json(o, mb->lo, mb->hi, mb->departure, mb->change);
        json_object_set_new(o, "summary", json_string(text));
    }
    return o;
}

/* The JSON of an episode; names[i]/labels[i] name member i, first_* its
 * first mover. */
static json_t *episode_json(const detect_episode *e, const char *const *names, const char *const *labels,
                            const char *first_name, const char *first_labels, int64_t now)
{
    json_t *members = json_array();
    int together = 0;
    for (int i = 0; i < e->nmembers; i++) {
        json_array_append_new(members, member_json(&e->members[i], i + 1, names[i], labels[i], e->first_onset_ms));
        together += e->members[i].together && e->members[i].id != e->first; /* the others */
    }
    int64_t end = e->closed_ms ? e->closed_ms : now;
    json_t *first = first_json(e, first_name, first_labels, now);
    char text[DETECT_KEY_MAX + 384];
    const char *ft = json_string_value(json_object_get(first, "summary"));
    snprintf(text, sizeof text, "episode %llu: %d series (%d moved together with the first), first mover %s",
             (unsigned long long)e->id, e->nmembers + e->more, together,
             ft ? ft : json_string_value(json_object_get(first, "key")));
    json_t *o = json_pack("{s:I, s:s, s:I, s:I, s:o, s:I, s:f, s:i, s:i, s:o, s:i}", "episode", (json_int_t)e->id,
                     "state", e->closed_ms ? "closed" : "open", "opened_ms", (json_int_t)e->opened_ms,
                     "first_onset_ms", (json_int_t)e->first_onset_ms,
                     "closed_ms", e->closed_ms ? json_integer(e->closed_ms) : json_null(),
                     "duration_ms", (json_int_t)(end > e->first_onset_ms ? end - e->first_onset_ms : 0),
                     "peak", e->peak, "anomalous", e->anomalous, "nmembers", e->nmembers + e->more,
                     "members", members, "more", e->more);
    if (o) {
        json_object_set_new(o, "first", first);
        json_object_set_new(o, "summary", json_string(text));
    } else {
        json_decref(first);
    }
    return o;
}

static json_t *episode_event(detect_registry *a, const detect_episode *e, int64_t now)
{
    const char *names[DETECT_EPISODE_MEMBERS], *labels[DETECT_EPISODE_MEMBERS];
    for (int i = 0; i < e->nmembers; i++) {
        int id = e->members[i].id;
        names[i] = id < a->cap ? a->name[id] : NULL;
        labels[i] = id < a->cap ? a->labels[id] : NULL;
    }
    bool known = e->first >= 0 && e->first < a->cap;
    return episode_json(e, names, labels, known ? a->name[e->first] : NULL, known ? a->labels[e->first] : NULL,
                        now);
}

static void on_note(detect_registry *a, const detect_note *n)
{
    if (n->kind == DETECT_NOTE_ANOMALY) {
        const detect_metric *m = detect_tracker_metric(a->trk, n->id);
        if (!m || n->id >= a->cap)
            return;
        if (a->events_tick >= EVENTS_PER_TICK) { /* a storm: the episode lists them */
            a->events_skipped++;
            return;
        }
        a->events_tick++;
        json_t *o = series_json(a->name[n->id], a->labels[n->id]);
        json_object_set_new(o, "score", num(m->peak));
        json_object_set_new(o, "reason", json_string(detect_reason_name(m->peak_reason)));
        json_object_set_new(o, "value", num(m->peak_value));
        json_object_set_new(o, "expected", num(m->peak_expected));
        json_object_set_new(o, "since_ms", json_integer(m->since_ms));
        json_object_set_new(o, "episode", json_integer((json_int_t)n->episode));
        json_object_set_new(o, "threshold", json_real(a->cfg.track.threshold));
        explain_json(o, m->peak_lo, m->peak_hi, m->peak_departure, m->peak_change);
        char key[DETECT_KEY_MAX], text[DETECT_KEY_MAX + 256];
        key_of(a->name[n->id], a->labels[n->id], key, sizeof key);
        summary_text(text, sizeof text, key, m->peak_value, m->peak_expected, m->peak_lo, m->peak_hi,
                     m->peak_departure, m->peak_reason, m->since_ms, n->ts_ms);
        json_object_set_new(o, "summary", json_string(text));
        record(a, n->ts_ms, "anomaly", "warning", o);
        log_info("detect: anomalous: %s (score %.2f, episode %llu)", text, m->peak, (unsigned long long)n->episode);
    } else if (n->kind == DETECT_NOTE_EPISODE_OPEN || n->kind == DETECT_NOTE_EPISODE_CLOSE) {
        const detect_episode *e = detect_tracker_episode(a->trk, n->episode);
        if (!e)
            return;
        bool open = n->kind == DETECT_NOTE_EPISODE_OPEN;
        if (open) { /* the opening member joins right after this note: name it */
            json_t *o = json_pack("{s:I, s:s, s:I}", "episode", (json_int_t)e->id, "state", "open", "opened_ms",
                                  (json_int_t)e->opened_ms);
            int id = e->first >= 0 && e->first < a->cap ? e->first : n->id;
            if (o && id >= 0 && id < a->cap) {
                json_t *first = first_json(e, a->name[id], a->labels[id], n->ts_ms);
                const char *ft = json_string_value(json_object_get(first, "summary"));
                char text[DETECT_KEY_MAX + 320];
                snprintf(text, sizeof text, "episode %llu opened, first mover %s", (unsigned long long)e->id,
                         ft ? ft : json_string_value(json_object_get(first, "key")));
                json_object_set_new(o, "first", first);
                json_object_set_new(o, "summary", json_string(text));
            }
            record(a, n->ts_ms, "anomaly.episode", "warning", o);
        } else {
            record(a, n->ts_ms, "anomaly.episode", "info", episode_event(a, e, n->ts_ms));
            log_info("detect: episode %llu closed: %d metric(s), peak %.2f", (unsigned long long)e->id,
                     e->nmembers + e->more, e->peak);
        }
    }
}

/* ---- snapshot ------------------------------------------------------------------------ */

static void snap_put(detect_registry *a, registry_snap *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&a->lock);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&a->lock);
    if (last) {
        free(s->m);
        free(s);
    }
}

static registry_snap *snap_get(detect_registry *a)
{
    pthread_mutex_lock(&a->lock);
    registry_snap *s = a->snap;
    if (s)
        s->refs++;
    pthread_mutex_unlock(&a->lock);
    return s;
}

static void publish(detect_registry *a, int64_t ts)
{
    registry_snap *s = calloc(1, sizeof *s);
    if (!s)
        return;
    s->refs = 1;
    s->enabled = a->cfg.enabled;
    s->ts = ts;
    s->track = a->cfg.track;
    s->max_metrics = a->cfg.max_metrics;
    s->unwatched_full = a->nfull;
    s->episodes_total = detect_tracker_episodes_total(a->trk);
    s->m = a->ndet ? malloc((size_t)a->ndet * sizeof *s->m) : NULL;
    if (a->ndet && !s->m) {
        free(s);
        return;
    }
    for (int id = 0; id < a->cap && s->n < (size_t)a->ndet; id++) {
        if (!a->det[id])
            continue;
        snap_metric *m = &s->m[s->n++];
        const detect_metric *t = detect_tracker_metric(a->trk, id);
        *m = (snap_metric){.id = id, .name = a->name[id], .labels = a->labels[id], .unit = a->unit[id],
                           .score = t ? t->score : 0, .value = t ? t->value : NAN,
                           .expected = t ? t->expected : NAN, .lo = t ? t->lo : NAN, .hi = t ? t->hi : NAN,
                           .reason = t ? t->reason : DETECT_REASON_NONE,
                           .anomalous = t && t->since_ms, .since_ms = t ? t->since_ms : 0,
                           .last_ms = t ? t->last_ms : 0, .peak = t ? t->peak : 0,
                           .peak_value = t ? t->peak_value : NAN, .peak_expected = t ? t->peak_expected : NAN,
                           .peak_lo = t ? t->peak_lo : NAN, .peak_hi = t ? t->peak_hi : NAN,
                           .peak_departure = t ? t->peak_departure : NAN, .peak_change = t ? t->peak_change : NAN,
                           .peak_reason = t ? t->peak_reason : DETECT_REASON_NONE,
                           .count = detect_count(a->det[id]), .episode = t ? t->episode : 0};
    }
    const detect_episode *list[DETECT_EPISODES_KEEP];
    s->nep = detect_tracker_episodes(a->trk, list, DETECT_EPISODES_KEEP);
    for (int i = 0; i < s->nep; i++) {
        snap_episode *se = &s->ep[i];
        se->e = *list[i];
        for (int k = 0; k < se->e.nmembers; k++) {
            int id = se->e.members[k].id;
            se->name[k] = id < a->cap ? a->name[id] : NULL;
            se->labels[k] = id < a->cap ? a->labels[id] : NULL;
            se->unit[k] = id < a->cap ? a->unit[id] : NULL;
        }
        bool known = se->e.first >= 0 && se->e.first < a->cap;
        se->first_name = known ? a->name[se->e.first] : NULL;
        se->first_labels = known ? a->labels[se->e.first] : NULL;
    }
    pthread_mutex_lock(&a->lock);
    registry_snap *old = a->snap;
    a->snap = s;
    pthread_mutex_unlock(&a->lock);
    snap_put(a, old);
}

/* ---- life cycle ------------------------------------------------------------------------ */

int detect_registry_new(detect_registry **out, mem_t *mem, const core_config *cfg, char *err, size_t errlen)
{
    *out = NULL;
    detect_registry *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "detect: out of memory");
        return -ENOMEM;
    }
    a->mem = mem;
    pthread_mutex_init(&a->lock, NULL);
    int rc = detect_registry_config_parse(cfg, &a->cfg, err, errlen);
    if (!rc && !(a->trk = detect_tracker_new(&a->cfg.track))) {
        snprintf(err, errlen, "detect: out of memory");
        rc = -ENOMEM;
    }
    if (rc) {
        detect_registry_free(a);
        return rc;
    }
    if (a->cfg.enabled)
        load_states(a);
    a->last_save_ms = a->started_ms = a->last_sweep_ms = core_now_ms();
    publish(a, 0);
    log_info("detect: %s (threshold %.2f, %d detector(s) restored)", a->cfg.enabled ? "on" : "off",
             a->cfg.track.threshold, a->ndet);
    *out = a;
    return 0;
}

int detect_registry_reconfigure(detect_registry *a, const core_config *cfg, char *err, size_t errlen)
{
    detect_registry_config *c = malloc(sizeof *c);
    if (!c) {
        snprintf(err, errlen, "detect: out of memory");
        return -ENOMEM;
    }
    int rc = detect_registry_config_parse(cfg, c, err, errlen);
    if (!rc && detect_tracker_configure(a->trk, &c->track)) {
        snprintf(err, errlen, "[detect]: invalid settings");
        rc = -EINVAL;
    }
    if (rc) {
        free(c);
        return rc;
    }
    int64_t now = core_now_ms();
    bool was = a->cfg.enabled;
    if (was && !c->enabled)
        detect_registry_save(a, now); /* what was learned stays in the store */
    a->cfg = *c;
    free(c);
    /* watched again from the globs; detectors of series still watched stay */
    a->nfull = 0;
    a->warned_full = false;
    for (int id = 0; id < a->cap; id++) {
        a->watch[id] = W_UNKNOWN;
        if (!a->det[id])
            continue;
        bool keep = a->cfg.enabled && a->name[id] && detect_registry_config_match(&a->cfg, a->name[id], a->labels[id]);
        if (keep)
            a->watch[id] = W_YES;
        else
            drop_detector(a, id, now);
    }
    for (int id = 0; id < a->cap && a->ndet > a->cfg.max_metrics; id++)
        if (a->det[id])
            drop_detector(a, id, now);
    if (!was && a->cfg.enabled)
        load_states(a);
    publish(a, a->last_ts);
    return 0;
}

/* Frees the detectors of series no longer fed (a process that went away
 * leaves its pid-labelled series behind), so max_metrics is not used up by
 * the dead; their saved state stays in the store. */
static void sweep(detect_registry *a, int64_t now)
{
    int before = a->ndet;
    a->last_sweep_ms = now;
    for (int id = 0; id < a->cap; id++) {
        if (!a->det[id])
            continue;
        const detect_metric *m = detect_tracker_metric(a->trk, id);
        int64_t last = m && m->last_ms ? m->last_ms : a->started_ms;
        if (now - last >= IDLE_DROP_MS && !(m && m->since_ms)) {
            drop_detector(a, id, now);
            a->watch[id] = W_UNKNOWN; /* it gets a new detector if it comes back */
        }
    }
    if (a->ndet < before && a->nfull) { /* room again for the series turned away */
        for (int id = 0; id < a->cap; id++)
            if (a->watch[id] == W_FULL)
                a->watch[id] = W_UNKNOWN;
        a->nfull = 0;
        a->warned_full = false;
    }
}

void detect_registry_tick(detect_registry *a, int64_t ts)
{
    if (!a)
        return;
    a->last_ts = ts;
    detect_note n;
    if (!a->cfg.enabled) { /* runs ended by a reload still close their episodes */
        detect_tracker_tick(a->trk, ts);
        while (detect_tracker_next_note(a->trk, &n))
            on_note(a, &n);
        publish(a, ts);
        return;
    }
    int total = mem_tick_values(a->mem, ts, a->vals, a->capvals);
    if (total > a->capvals) {
        int cap = total + 256;
        float *v = realloc(a->vals, (size_t)cap * sizeof *v);
        if (!v)
            return;
        a->vals = v;
        a->capvals = cap;
        total = mem_tick_values(a->mem, ts, a->vals, a->capvals);
    }
    if (total < 0 || grow(a, total))
        return;
    refresh_names(a);
    for (int id = 0; id < total; id++) {
        double v = a->vals[id];
        if (isnan(v))
            continue;
        detect_state *d = detector_for(a, id);
        if (!d)
            continue;
        detect_result r = detect_feed(d, ts, v);
        detect_tracker_update(a->trk, id, ts, &r, v);
    }
    detect_tracker_tick(a->trk, ts);
    a->events_tick = a->events_skipped = 0;
    while (detect_tracker_next_note(a->trk, &n))
        on_note(a, &n);
    if (a->events_skipped)
        log_info("detect: %d more series turned anomalous this second: not one event each, see their episode",
                 a->events_skipped);
    if (ts - a->last_sweep_ms >= SWEEP_EVERY_MS)
        sweep(a, ts);
    if (ts - a->last_save_ms >= a->cfg.save_interval_ms) {
        detect_registry_save(a, ts);
        a->last_save_ms = ts; /* refused: the next interval tries again */
    }
    publish(a, ts);
}

void detect_registry_free(detect_registry *a)
{
    if (!a)
        return;
    for (int id = 0; id < a->cap; id++)
        detect_free(a->det[id]);
    free(a->det);
    free(a->name);
    free(a->labels);
    free(a->unit);
    free(a->watch);
    free(a->vals);
    detect_tracker_free(a->trk);
    registry_snap *s = a->snap;
    a->snap = NULL;
    if (s && --s->refs == 0) { /* the API is stopped: no reader is left */
        free(s->m);
        free(s);
    }
    pthread_mutex_destroy(&a->lock);
    free(a);
}

/* ---- readers (any thread) ---------------------------------------------------------------- */

static int by_key(const void *x, const void *y)
{
    const snap_metric *a = *(const snap_metric *const *)x, *b = *(const snap_metric *const *)y;
    int c = strcmp(a->name ? a->name : "", b->name ? b->name : "");
    return c ? c : strcmp(a->labels ? a->labels : "", b->labels ? b->labels : "");
}

static int by_onset(const void *x, const void *y)
{
    const snap_metric *a = *(const snap_metric *const *)x, *b = *(const snap_metric *const *)y;
    if (a->since_ms != b->since_ms)
        return a->since_ms < b->since_ms ? -1 : 1;
    return (a->peak < b->peak) - (a->peak > b->peak);
}

static json_t *metric_json(const snap_metric *m, int64_t now, bool brief)
{
    json_t *o = series_json(m->name, m->labels);
    json_object_set_new(o, "unit", json_string(m->unit ? m->unit : ""));
    json_object_set_new(o, "score", num(m->score));
    json_object_set_new(o, "reason", json_string(detect_reason_name(m->reason)));
    json_object_set_new(o, "value", num(m->value));
    json_object_set_new(o, "expected", num(m->expected));
    json_object_set_new(o, "lo", num(m->lo));
    json_object_set_new(o, "hi", num(m->hi));
    json_object_set_new(o, "anomalous", json_boolean(m->anomalous));
    if (brief) {
        json_object_set_new(o, "samples", json_integer((json_int_t)m->count));
        return o;
    }
    json_object_set_new(o, "since_ms", json_integer(m->since_ms));
    json_object_set_new(o, "for_ms", json_integer(now > m->since_ms ? now - m->since_ms : 0));
    json_object_set_new(o, "peak", num(m->peak));
    json_object_set_new(o, "peak_reason", json_string(detect_reason_name(m->peak_reason)));
    json_object_set_new(o, "peak_value", num(m->peak_value));
    json_object_set_new(o, "peak_expected", num(m->peak_expected));
    json_object_set_new(o, "departure", num(detect_departure(m->value, m->lo, m->hi)));
    json_object_set_new(o, "peak_lo", num(m->peak_lo));
    json_object_set_new(o, "peak_hi", num(m->peak_hi));
    json_object_set_new(o, "peak_departure", num(m->peak_departure));
    json_object_set_new(o, "peak_change", num(m->peak_change));
    char key[DETECT_KEY_MAX], text[DETECT_KEY_MAX + 256];
    key_of(m->name, m->labels, key, sizeof key);
    summary_text(text, sizeof text, key, m->peak_value, m->peak_expected, m->peak_lo, m->peak_hi, m->peak_departure,
                 m->peak_reason, m->since_ms, now);
    json_object_set_new(o, "summary", json_string(text));
    json_object_set_new(o, "episode", m->episode ? json_integer((json_int_t)m->episode) : json_null());
    json_object_set_new(o, "samples", json_integer((json_int_t)m->count));
    return o;
}

char *detect_registry_json(detect_registry *a, bool all)
{
    registry_snap *s = a ? snap_get(a) : NULL;
    if (!s)
        return NULL;
    const snap_metric **p = s->n ? malloc(s->n * sizeof *p) : NULL;
    json_t *o = json_object();
    if ((s->n && !p) || !o) {
        free(p);
        json_decref(o);
        snap_put(a, s);
        return NULL;
    }
    size_t na = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->m[i].anomalous)
            p[na++] = &s->m[i];
    if (na > 1)
        qsort(p, na, sizeof *p, by_onset);
    json_t *anom = json_array();
    for (size_t i = 0; i < na; i++)
        json_array_append_new(anom, metric_json(p[i], s->ts, false));
    json_t *eps = json_array();
    for (int i = 0; i < s->nep; i++)
        json_array_append_new(eps, episode_json(&s->ep[i].e, s->ep[i].name, s->ep[i].labels, s->ep[i].first_name,
                                                s->ep[i].first_labels, s->ts));
    json_object_set_new(o, "enabled", json_boolean(s->enabled));
    json_object_set_new(o, "ts", json_integer(s->ts));
    json_object_set_new(o, "threshold", json_real(s->track.threshold));
    json_object_set_new(o, "for_ms", json_integer(s->track.for_ms));
    json_object_set_new(o, "keep_firing_for_ms", json_integer(s->track.keep_ms));
    json_object_set_new(o, "episode_window_ms", json_integer(s->track.window_ms));
    json_object_set_new(o, "watched", json_integer((json_int_t)s->n));
    json_object_set_new(o, "max_metrics", json_integer(s->max_metrics));
    json_object_set_new(o, "not_watched_over_max", json_integer(s->unwatched_full));
    json_object_set_new(o, "anomalous", json_integer((json_int_t)na));
    json_object_set_new(o, "episodes_total", json_integer((json_int_t)s->episodes_total));
    json_object_set_new(o, "anomalies", anom);
    json_object_set_new(o, "episodes", eps);
    if (all) {
        for (size_t i = 0; i < s->n; i++)
            p[i] = &s->m[i];
        if (s->n > 1)
            qsort(p, s->n, sizeof *p, by_key);
        json_t *arr = json_array();
        for (size_t i = 0; i < s->n; i++)
            json_array_append_new(arr, metric_json(p[i], s->ts, true));
        json_object_set_new(o, "metrics", arr);
    }
    free(p);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    snap_put(a, s);
    return text;
}

int detect_registry_scores(detect_registry *a, detect_score **out)
{
    *out = NULL;
    registry_snap *s = a ? snap_get(a) : NULL;
    if (!s)
        return 0;
    int n = 0;
    detect_score *v = s->n ? malloc(s->n * sizeof *v) : NULL;
    if (s->n && !v) {
        snap_put(a, s);
        return -ENOMEM;
    }
    for (size_t i = 0; i < s->n; i++)
        if (s->m[i].name && s->m[i].last_ms)
            v[n++] = (detect_score){s->m[i].name, s->m[i].labels ? s->m[i].labels : "",
                                    isfinite(s->m[i].score) ? s->m[i].score : 0, s->m[i].anomalous};
    snap_put(a, s);
    *out = v;
    return n;
}

/* ---- rules (loop thread) ------------------------------------------------------------------ */

int detect_registry_rule_check(void *ud, const char *metric, const char *labels, char *key, size_t keylen,
                               double *score)
{
    detect_registry *a = ud;
    if (!a || !a->cfg.enabled)
        return -ENOENT;
    int n;
    const int *ids = detect_tracker_anomalous(a->trk, &n);
    int best = -1;
    double peak = -1;
    for (int i = 0; i < n; i++) {
        int id = ids[i];
        if (id >= a->cap || !a->name[id] || fnmatch(metric, a->name[id], 0) ||
            !mem_labels_subset(a->labels[id], labels ? labels : ""))
            continue;
        const detect_metric *m = detect_tracker_metric(a->trk, id);
        if (m && m->peak > peak) {
            peak = m->peak;
            best = id;
        }
    }
    if (best < 0)
        return 0;
    if (key && keylen)
        key_of(a->name[best], a->labels[best], key, keylen);
    if (score)
        *score = peak;
    return 1;
}
