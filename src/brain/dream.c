/* dream.c: consolidation while the machine is idle ("dreaming").
 *
 * The machine is idle when its CPU use (100 - idle - iowait of cpu="total")
 * and PSI "some avg10" of cpu and io, read from memory's last values, stay
 * under [dream] idle_cpu and idle_psi for idle_for. Then, at most once per
 * [dream] every and never while a deliberation runs, a pass runs on the
 * libuv thread pool:
 *   1. re-clusters the cases: near-identical ones of one fault type and
 *      component merge into the older (brain_cases_recluster);
 *   2. re-embeds the knowledge with what the embedding has learned since
 *      (mem_know_reembed: stored vectors were made with older statistics),
 *      then merges duplicates (mem_know_dedup) and
 *   3. decays what is unused (mem_know_decay) when a store is set;
 *   4. refreshes the detectors' baselines through the daemon's hook (on the
 *      loop thread, once the worker is done: detect state is the loop's);
 *   5. writes a digest (digest.c) as a brain.digest event and a knowledge
 *      doc "digest:YYYY-MM-DD".
 * Each step's counts go into one brain.dream event. A scheduled pass stops
 * between steps when the machine stops being idle or a deliberation starts,
 * any pass on brain_free.
 * The digest of a day is written at the first idle moment after midnight,
 * or at [dream] digest_at, and at the latest at noon even when never idle.
 *
 *   [dream]
 *   enabled = yes|no          (default yes)
 *   idle_cpu = PERCENT        (default 30)
 *   idle_psi = PERCENT        (default 5)
 *   idle_for = DURATION       (default 10m)
 *   every = DURATION          (default 6h)
 *   digest_at = HH:MM         (local time; default: the first idle moment)
 *   merge_similarity = X      (cases, default 0.9)
 *   know_similarity = X       (knowledge chunks, default 0.95)
 *   half_life = DURATION      (default 90d)
 *   floor = X                 (forgotten under this confidence, default 0.05) */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brain/brain_int.h"

#define DREAM_STALE_MS 120000 /* a last value older than this does not count */
#define DREAM_SETTLED_MS (15 * 60000) /* a case tried this lately is left alone (heal may report on it) */

/* ---- configuration ---------------------------------------------------------- */

void brain_dream_cfg_defaults(brain_dream_cfg *c)
{
    *c = (brain_dream_cfg){.enabled = true, .idle_cpu = 30, .idle_psi = 5, .idle_for_ms = 600000,
                           .every_ms = 6 * 3600000LL, .digest_at_min = -1, .merge_similarity = 0.9,
                           .know_similarity = 0.95, .half_life_ms = 90 * 86400000LL, .floor = 0.05};
}

static int parse_number(const core_kv *kv, double lo, double hi, double *out, char *err, size_t errlen)
{
    char *end;
    double x = strtod(kv->value, &end);
    if (*end || end == kv->value || !(x >= lo && x <= hi))
        return core_kv_error(err, errlen, kv, "[dream] %s: '%s' is not a number from %g to %g", kv->key, kv->value,
                             lo, hi);
    *out = x;
    return 0;
}

static int parse_dur(const core_kv *kv, int64_t lo, int64_t *out, char *err, size_t errlen)
{
    int64_t ms;
    if (core_parse_duration(kv->value, &ms) || ms < lo || ms > 3650 * 86400000LL)
        return core_kv_error(err, errlen, kv, "[dream] %s: '%s' is not a duration from %llds to 10y", kv->key,
                             kv->value, (long long)(lo / 1000));
    *out = ms;
    return 0;
}

static int parse_key(brain_dream_cfg *c, const core_kv *kv, char *err, size_t errlen)
{
    const char *k = kv->key, *v = kv->value;
    if (!strcmp(k, "enabled")) {
        if (core_parse_bool(v, &c->enabled))
            return core_kv_error(err, errlen, kv, "[dream] enabled: '%s' is not yes or no", v);
        return 0;
    }
    if (!strcmp(k, "idle_cpu"))
        return parse_number(kv, 0, 100, &c->idle_cpu, err, errlen);
    if (!strcmp(k, "idle_psi"))
        return parse_number(kv, 0, 100, &c->idle_psi, err, errlen);
    if (!strcmp(k, "merge_similarity"))
        return parse_number(kv, 0.5, 1, &c->merge_similarity, err, errlen);
    if (!strcmp(k, "know_similarity"))
        return parse_number(kv, 0.5, 1, &c->know_similarity, err, errlen);
    if (!strcmp(k, "floor"))
        return parse_number(kv, 0, 1, &c->floor, err, errlen);
    if (!strcmp(k, "idle_for"))
        return parse_dur(kv, 0, &c->idle_for_ms, err, errlen);
    if (!strcmp(k, "every"))
        return parse_dur(kv, 60000, &c->every_ms, err, errlen);
    if (!strcmp(k, "half_life"))
        return parse_dur(kv, 3600000, &c->half_life_ms, err, errlen);
    if (!strcmp(k, "digest_at")) {
        int h, m;
        char tail;
        if (strlen(v) != 5 || sscanf(v, "%2d:%2d%c", &h, &m, &tail) != 2 || v[2] != ':' || h < 0 || h > 23 ||
            m < 0 || m > 59)
            return core_kv_error(err, errlen, kv, "[dream] digest_at: '%s' is not a local time HH:MM", v);
        c->digest_at_min = h * 60 + m;
        return 0;
    }
    return core_kv_error(err, errlen, kv, "[dream] unknown key '%s'", k);
}

int brain_dream_cfg_parse(const core_config *cfg, brain_dream_cfg *c, char *err, size_t errlen)
{
    brain_dream_cfg_defaults(c);
    for (int i = 0; i < cfg->nraw; i++) {
        if (strcmp(cfg->raw[i].section, "dream") != 0)
            continue;
        int rc = parse_key(c, &cfg->raw[i], err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- idleness ------------------------------------------------------------------ */

/* The last value of name{labels} when fresh, else NaN. */
static double fresh(mem_t *mem, const char *name, const char *labels, int64_t now_ms)
{
    int id = mem_series_find(mem, name, labels);
    double v = NAN;
    int64_t ts = 0;
    if (id < 0 || mem_series_last(mem, id, &v, &ts) != 0 || now_ms - ts > DREAM_STALE_MS)
        return NAN;
    return v;
}

bool brain_dream_idle_now(mem_t *mem, const brain_dream_cfg *c, int64_t now_ms)
{
    if (!mem)
        return false;
    double idle = fresh(mem, "cpu.usage_percent", "cpu=\"total\",state=\"idle\"", now_ms);
    double iowait = fresh(mem, "cpu.usage_percent", "cpu=\"total\",state=\"iowait\"", now_ms);
    if (!isfinite(idle)) { /* read through the kernel bridge */
        idle = fresh(mem, "cpu.usage_percent", "cpu=\"total\",source=\"kernel\",state=\"idle\"", now_ms);
        iowait = fresh(mem, "cpu.usage_percent", "cpu=\"total\",source=\"kernel\",state=\"iowait\"", now_ms);
    }
    double pcpu = fresh(mem, "psi.some_avg10_percent", "resource=\"cpu\"", now_ms);
    double pio = fresh(mem, "psi.some_avg10_percent", "resource=\"io\"", now_ms);
    bool seen = false;
    if (isfinite(idle)) {
        double busy = 100 - idle - (isfinite(iowait) ? iowait : 0);
        if (busy >= c->idle_cpu)
            return false;
        seen = true;
    }
    if (isfinite(pcpu)) {
        if (pcpu >= c->idle_psi)
            return false;
        seen = true;
    }
    if (isfinite(pio)) {
        if (pio >= c->idle_psi)
            return false;
        seen = true;
    }
    return seen;
}

/* ---- the pass (a worker thread) -------------------------------------------------- */

static json_t *know_result(int rc, json_t *counts)
{
    if (rc == -ENOSYS) {
        json_decref(counts);
        return json_pack("{s:s}", "skipped", "the knowledge store cannot do this yet");
    }
    if (rc < 0) {
        json_decref(counts);
        return json_pack("{s:s}", "error", strerror(-rc));
    }
    return counts;
}

static json_t *step_digest(const brain_mind *m, const char *day, int64_t now_ms)
{
    char err[256], today[11];
    json_t *d = brain_digest_build(m->mem, day, err, sizeof err);
    if (!d)
        return json_pack("{s:s, s:s}", "day", day, "error", err);
    brain_day_of(now_ms, today);
    bool complete = strcmp(day, today) < 0;
    json_object_set_new(d, "complete", json_boolean(complete));
    json_t *r = json_pack("{s:s, s:O, s:b}", "day", day, "events", json_object_get(d, "events"), "complete",
                          complete);
    char *text = json_dumps(d, JSON_COMPACT);
    if (text)
        mem_event_add(m->mem, 0, "brain.digest", "info", "brain", text);
    free(text);
    if (!m->know) {
        json_object_set_new(r, "knowledge", json_string("skipped: no knowledge store"));
    } else {
        char source[32], title[48];
        snprintf(source, sizeof source, "digest:%s", day);
        snprintf(title, sizeof title, "Digest of %s", day);
        mem_doc doc = {.source = source, .title = title, .kind = "digest",
                       .text = json_string_value(json_object_get(d, "text")),
                       .ts_ms = json_integer_value(json_object_get(d, "from_ms")), .confidence = 1.0};
        int rc = mem_know_add(m->know, &doc, NULL, NULL, err, sizeof err);
        json_object_set_new(r, "knowledge", json_string(rc == 0 ? "stored" : rc == -ENOSYS ? "skipped: the store cannot add yet" : err));
    }
    json_decref(d);
    return r;
}

json_t *brain_dream_pass(const brain_mind *m, const brain_dream_cfg *c, int64_t now_ms, const char *day,
                         const atomic_bool *stop)
{
    json_t *steps = json_object();
    json_t *report = json_pack("{s:o, s:b}", "steps", steps, "stopped", false);
    if (!report)
        return NULL;
    /* 1. cases */
    if (m->cases) {
        int before = brain_cases_count(m->cases);
        json_t *merges = json_array();
        int merged = brain_cases_recluster(m->cases, c->merge_similarity, now_ms - DREAM_SETTLED_MS, merges);
        json_object_set_new(steps, "cases",
                            json_pack("{s:i, s:i, s:i, s:o}", "before", before, "after", brain_cases_count(m->cases),
                                      "merged", merged, "merges", merges));
    }
    /* 2. duplicate knowledge, 3. decay */
    if (!(stop && atomic_load(stop))) {
        if (!m->know) {
            json_object_set_new(steps, "know_dedup", json_pack("{s:s}", "skipped", "no knowledge store"));
        } else {
            int merged = 0, reembedded = 0;
            int rc = mem_know_reembed(m->know, &reembedded);
            json_object_set_new(steps, "know_reembed", know_result(rc, json_pack("{s:i}", "chunks", reembedded)));
            rc = mem_know_dedup(m->know, c->know_similarity, &merged);
            json_object_set_new(steps, "know_dedup", know_result(rc, json_pack("{s:i}", "merged", merged)));
        }
    }
    if (!(stop && atomic_load(stop))) {
        if (!m->know) {
            json_object_set_new(steps, "know_decay", json_pack("{s:s}", "skipped", "no knowledge store"));
        } else {
            int decayed = 0, forgotten = 0;
            int rc = mem_know_decay(m->know, now_ms, c->half_life_ms, c->floor, &decayed, &forgotten);
            json_object_set_new(steps, "know_decay",
                                know_result(rc, json_pack("{s:i, s:i}", "decayed", decayed, "forgotten", forgotten)));
        }
    }
    /* 5. the digest (4, the baselines, is the loop's: see dream_after) */
    if (!(stop && atomic_load(stop)) && day)
        json_object_set_new(steps, "digest", step_digest(m, day, now_ms));
    if (stop && atomic_load(stop))
        json_object_set_new(report, "stopped", json_true());
    return report;
}

/* ---- the schedule (loop thread) ---------------------------------------------------- */

typedef struct dream_job {
    uv_work_t req;
    brain_dream *d;
    brain_dream_cfg cfg;
    brain_mind mind;
    char day[11];          /* the digest's day, "" none */
    char due[11];          /* the complete day this pass settles ("" none) */
    char fallback[11];     /* the digest's day when day has no events ("" none) */
    char trigger[16];      /* idle, noon, digest_at, api */
    bool forced;           /* not stopped when the machine gets busy */
    uint64_t pass;
    int64_t started_ms, started_mono;
    atomic_bool stop; /* set by the loop thread (idle gone, shutdown), read by the pass between steps */
    bool work_done, orphan; /* (d->lock) */
    json_t *report;
} dream_job;

struct brain_dream {
    brain *b;
    uv_loop_t *loop;
    brain_dream_cfg cfg;
    int64_t idle_since_ms;    /* 0: not idle */
    int64_t last_pass_ms;
    char digest_day[11];      /* the last complete day whose digest was written */
    uint64_t passes;
    dream_job *job;           /* the pass running, NULL when none */
    brain_dream_hook hook;
    void *hook_ud;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

static bool day_has_events(mem_t *mem, const char *day)
{
    int64_t from, to;
    mem_event_query q = {.limit = 1};
    mem_event *ev = NULL;
    size_t n = 0;
    char err[128];
    if (brain_day_bounds(day, &from, &to) != 0)
        return false;
    q.from = from, q.to = to;
    if (mem_events_query(mem, &q, &ev, &n, err, sizeof err) != 0)
        return false;
    mem_events_free(ev, n);
    return n > 0;
}

static void dream_work(uv_work_t *req)
{
    dream_job *j = req->data;
    if (j->fallback[0] && !day_has_events(j->mind.mem, j->day))
        snprintf(j->day, sizeof j->day, "%s", j->fallback);
    j->report = brain_dream_pass(&j->mind, &j->cfg, j->started_ms, j->day[0] ? j->day : NULL, &j->stop);
    pthread_mutex_lock(&j->d->lock);
    j->work_done = true;
    pthread_cond_broadcast(&j->d->cond);
    pthread_mutex_unlock(&j->d->lock);
}

static void job_free(dream_job *j)
{
    json_decref(j->report);
    free(j);
}

static void dream_after(uv_work_t *req, int status)
{
    dream_job *j = req->data;
    if (j->orphan) {
        job_free(j);
        return;
    }
    brain_dream *d = j->d;
    d->job = NULL;
    json_t *r = j->report ? j->report : json_pack("{s:o, s:b}", "steps", json_object(), "stopped", true);
    json_t *steps = json_object_get(r, "steps");
    bool stopped = status != 0 || json_is_true(json_object_get(r, "stopped"));
    /* 4. the detectors' baselines, from the loop thread that owns them */
    if (stopped) {
        json_object_set_new(steps, "baselines", json_pack("{s:s}", "skipped", "the pass stopped"));
    } else if (!d->hook) {
        json_object_set_new(steps, "baselines", json_pack("{s:s}", "skipped", "no detectors"));
    } else {
        int rc = d->hook(d->hook_ud, core_now_ms());
        json_object_set_new(steps, "baselines", rc >= 0 ? json_pack("{s:b}", "saved", true)
                                                        : json_pack("{s:b, s:s}", "saved", false, "error",
                                                                    strerror(-rc)));
    }
    json_object_set_new(r, "stopped", json_boolean(stopped));
    json_object_set_new(r, "pass", json_integer((json_int_t)j->pass));
    json_object_set_new(r, "trigger", json_string(j->trigger));
    json_object_set_new(r, "started_ms", json_integer(j->started_ms));
    json_object_set_new(r, "took_ms", json_integer(core_mono_ms() - j->started_mono));
    char *text = json_dumps(r, JSON_COMPACT);
    if (text)
        mem_event_add(brain_mind_of(d->b)->mem, 0, "brain.dream", "info", "brain", text);
    free(text);
    if (!stopped) {
        if (strcmp(j->trigger, "api") != 0) /* one asked for is extra: [dream] every spaces the others */
            d->last_pass_ms = j->started_ms;
        if (j->due[0] && strcmp(j->due, d->digest_day) > 0)
            snprintf(d->digest_day, sizeof d->digest_day, "%s", j->due);
    }
    json_t *c = json_object_get(steps, "cases");
    log_info("brain: dream pass %llu (%s)%s: %lld case(s) merged, digest %s, %lld ms", (unsigned long long)j->pass,
             j->trigger, stopped ? " stopped early" : "", (long long)json_integer_value(json_object_get(c, "merged")),
             j->day[0] ? j->day : "none", (long long)(core_mono_ms() - j->started_mono));
    if (!j->report)
        json_decref(r);
    job_free(j);
}

/* Starts a pass writing the digest of day (NULL: none), or of fallback when
 * day has no events; due: the complete day it settles. */
static int start(brain_dream *d, const char *trigger, const char *day, const char *due, const char *fallback,
                 bool forced)
{
    dream_job *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    j->d = d;
    j->cfg = d->cfg;
    j->mind = *brain_mind_of(d->b);
    snprintf(j->day, sizeof j->day, "%s", day ? day : "");
    snprintf(j->due, sizeof j->due, "%s", due ? due : "");
    snprintf(j->fallback, sizeof j->fallback, "%s", fallback ? fallback : "");
    snprintf(j->trigger, sizeof j->trigger, "%s", trigger);
    j->forced = forced;
    j->pass = ++d->passes;
    j->started_ms = core_now_ms();
    j->started_mono = core_mono_ms();
    j->req.data = j;
    int rc = uv_queue_work(d->loop, &j->req, dream_work, dream_after);
    if (rc != 0) {
        free(j);
        return -EAGAIN;
    }
    d->job = j;
    return 0;
}

/* The last complete day whose digest memory holds. */
static void last_digest_day(mem_t *mem, char out[11])
{
    out[0] = 0;
    mem_event_query q = {.type = "brain.digest", .limit = 50};
    mem_event *ev = NULL;
    size_t n = 0;
    char err[128];
    if (!mem || mem_events_query(mem, &q, &ev, &n, err, sizeof err) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_loads(ev[i].payload, 0, NULL);
        const char *day = json_string_value(json_object_get(p, "day"));
        if (day && json_is_true(json_object_get(p, "complete")) && strlen(day) == 10 && strcmp(day, out) > 0)
            snprintf(out, 11, "%s", day);
        json_decref(p);
    }
    mem_events_free(ev, n);
}

/* A cell whose memory holds nothing from before today (a new one) has no
 * yesterday to digest: out becomes yesterday, as though it were written. */
static void born_today(mem_t *mem, char out[11])
{
    char today[11], yesterday[11];
    int64_t from, to;
    brain_day_of(core_now_ms(), today);
    if (!mem || brain_day_bounds(today, &from, &to) != 0)
        return;
    brain_day_of(from - 1, yesterday);
    mem_event_query q = {.to = from - 1, .limit = 1};
    mem_event *ev = NULL;
    size_t n = 0;
    char err[128];
    if (mem_events_query(mem, &q, &ev, &n, err, sizeof err) != 0)
        return;
    if (n == 0)
        snprintf(out, 11, "%s", yesterday);
    mem_events_free(ev, n);
}

int brain_dream_new(brain *b, uv_loop_t *loop, const brain_dream_cfg *cfg, brain_dream **out)
{
    brain_dream *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->b = b;
    d->loop = loop;
    d->cfg = *cfg;
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->cond, NULL);
    last_digest_day(brain_mind_of(b)->mem, d->digest_day);
    if (!d->digest_day[0])
        born_today(brain_mind_of(b)->mem, d->digest_day);
    *out = d;
    return 0;
}

void brain_dream_reconfigure(brain_dream *d, const brain_dream_cfg *cfg)
{
    if (d)
        d->cfg = *cfg;
}

/* Minutes since local midnight, and the local days of now and of yesterday. */
static int local_clock(int64_t now_ms, char today[11], char yesterday[11])
{
    brain_day_of(now_ms, today);
    int64_t from, to;
    if (brain_day_bounds(today, &from, &to) != 0)
        from = now_ms;
    brain_day_of(from - 1, yesterday);
    return (int)((now_ms - from) / 60000);
}

void brain_dream_tick(brain_dream *d, int64_t now_ms, bool deliberating)
{
    if (!d || !d->cfg.enabled)
        return;
    mem_t *mem = brain_mind_of(d->b)->mem;
    bool idle = brain_dream_idle_now(mem, &d->cfg, now_ms);
    if (!idle)
        d->idle_since_ms = 0;
    else if (!d->idle_since_ms)
        d->idle_since_ms = now_ms;
    if (d->job) {
        if ((!idle || deliberating) && !d->job->forced)
            atomic_store(&d->job->stop, true); /* the machine, or the brain, has work to do */
        return;
    }
    if (deliberating)
        return;
    bool idle_long = d->idle_since_ms && now_ms - d->idle_since_ms >= d->cfg.idle_for_ms;
    char today[11], yesterday[11];
    int mins = local_clock(now_ms, today, yesterday);
    if (strcmp(d->digest_day, yesterday) < 0) {
        bool at = d->cfg.digest_at_min >= 0 && mins >= d->cfg.digest_at_min;
        bool noon = d->cfg.digest_at_min < 0 && mins >= 12 * 60;
        bool first_idle = d->cfg.digest_at_min < 0 && idle_long;
        if (at || noon || first_idle) {
            if (start(d, first_idle ? "idle" : at ? "digest_at" : "noon", yesterday, yesterday, NULL, !first_idle) != 0)
                snprintf(d->digest_day, sizeof d->digest_day, "%s", yesterday); /* no retry storm */
            return;
        }
    }
    if (idle_long && (!d->last_pass_ms || now_ms - d->last_pass_ms >= d->cfg.every_ms))
        start(d, "idle", today, NULL, NULL, false);
}

int brain_dream_start(brain *b, uint64_t *pass, char *err, size_t errlen)
{
    brain_dream *d = b ? brain_dream_of(b) : NULL;
    if (!d) {
        snprintf(err, errlen, "the brain is not running");
        return -ENOTSUP;
    }
    if (d->job) {
        snprintf(err, errlen, "a dreaming pass is running (pass %llu)", (unsigned long long)d->job->pass);
        return -EBUSY;
    }
    if (brain_deliberating(b)) {
        snprintf(err, errlen, "the brain is deliberating: dream later");
        return -EBUSY;
    }
    char today[11], yesterday[11];
    local_clock(core_now_ms(), today, yesterday);
    /* yesterday's digest when it is still due and has events, else today's so far */
    bool due = strcmp(d->digest_day, yesterday) < 0;
    int rc = due ? start(d, "api", yesterday, yesterday, today, true) : start(d, "api", today, NULL, NULL, true);
    if (rc) {
        snprintf(err, errlen, "cannot start a pass: %s", strerror(-rc));
        return rc;
    }
    *pass = d->passes;
    return 0;
}

void brain_set_dream_hook(brain *b, brain_dream_hook fn, void *ud)
{
    brain_dream *d = b ? brain_dream_of(b) : NULL;
    if (!d)
        return;
    d->hook = fn;
    d->hook_ud = ud;
}

void brain_dream_free(brain_dream *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    if (d->job) {
        atomic_store(&d->job->stop, true);
        while (!d->job->work_done)
            pthread_cond_wait(&d->cond, &d->lock);
        d->job->orphan = true; /* its after-work callback frees it */
    }
    pthread_mutex_unlock(&d->lock);
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->cond);
    free(d);
}
