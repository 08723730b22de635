/* logwatch.c: the log watch: sources, their templates and statistics, and
 * what the rest of the cell learns from them.
 *
 * Sources: each configured service (its captured output
 * <state_dir>/services/NAME.log, time stamp stripped, ippocd's own "ippocd: "
 * notes left out, plus its [service.X] log_file files), each [logs] file NAME,
 * and the journal grouped by unit (the service whose unit = names it, else
 * the unit without ".service"). One template miner per source.
 *
 * Per template: count, rate (decaying average over TAU_SHORT_S), a baseline
 * (slow decaying average, not fed while a burst lasts), first and last seen,
 * the most severe level seen and a sample line. Once a second (tick):
 *  - log.template.new for templates created since the last tick, once the
 *    source is past new_template_grace (a new source learns silently first);
 *  - log.burst when a template's rate goes over `burst` times its baseline
 *    (and over MIN_BURST_RATE, so a handful of lines is not a burst); the
 *    burst ends when the rate falls under half of that;
 *  - the series log.lines, log.errors, log.templates, log.new_templates.
 * Events are rate-limited per source (a token bucket), so an error storm
 * gives a handful of events and a count of the suppressed ones.
 *
 * Threads: everything runs on the loop thread except logs_watch_json, which
 * any thread may call; the sources are guarded by one mutex. */
#include "logs/logs.h"
#include "logs/watch_int.h"
#include "memory/memory.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define MAX_TEMPLATES 2000      /* per source: the miner forgets the least recently seen past this */
#define MAX_IDS 50000           /* template ids a source may hand out; lines of later ones are only counted */
#define MAX_JOURNAL_SOURCES 64  /* units with a source of their own; the rest go to "journal" */
#define SAMPLE_MAX 512
#define TAU_SHORT_S 10.0
#define TAU_LONG_S 600.0
#define MIN_BURST_RATE 2.0      /* lines/s (about 20 lines within TAU_SHORT_S) */
#define BASELINE_FLOOR (1.0 / 60)
#define LEARN_MAX_MS 60000      /* a new source's baseline learning, at most (and at most its grace) */
#define EVENT_TOKENS 5.0        /* per source: at most this many events at once... */
#define EVENT_REFILL_S 12.0     /* ...and one more each this long */

enum { LV_INFO = 0, LV_WARNING, LV_ERROR };
enum { SRC_SERVICE = 0, SRC_FILE, SRC_JOURNAL };
static const char *const level_names[] = {"info", "warning", "error"};
static const char *const kind_names[] = {"service", "file", "journal"};

typedef struct lw_tpl {
    int64_t count;
    int64_t first_seen, last_seen; /* wall ms */
    double rate, baseline;         /* lines/s */
    uint32_t tick_n;               /* lines since the last tick */
    int level;
    bool pending_new;
    bool bursting;
    char *sample;
} lw_tpl;

typedef struct lw_source {
    char name[LOGS_NAME_MAX];
    int kind;
    char captured[CORE_PATH_MAX + 32]; /* services: the captured output's path */
    char *paths;                       /* the followed paths, '\n'-joined (reload compares it) */
    bool seen;                         /* reconfigure's mark */
    logs_miner *miner;
    lw_tpl *tpl;
    int ntpl;
    int64_t started_ms;
    uint64_t lines, errors, cut, over_cap;
    uint32_t tick_lines, tick_errors, tick_new;
    int s_lines, s_errors, s_templates, s_new; /* series ids, -1 before the first tick */
    double tokens;
    int64_t tokens_ms;
    uint64_t suppressed;
    struct lw_source *next;
} lw_source;

struct logs_watch {
    uv_loop_t *loop;
    mem_t *mem;
    logs_conf conf;
    logs_follow *follow;
    logs_journal *journal;
    bool journal_reported;
    int64_t journal_since;      /* when the journal was opened: its units' sources start then */
    pthread_mutex_t lock;
    lw_source *sources;
    int njournal_sources;
    int64_t last_tick_ms;
};

/* ---- sources ------------------------------------------------------------------------- */

static lw_source *find_source(logs_watch *w, const char *name)
{
    for (lw_source *s = w->sources; s; s = s->next)
        if (!strcmp(s->name, name))
            return s;
    return NULL;
}

static void source_free(lw_source *s)
{
    for (int i = 0; i < s->ntpl; i++)
        free(s->tpl[i].sample);
    free(s->tpl);
    free(s->paths);
    logs_miner_free(s->miner);
    free(s);
}

/* Finds or creates (under the lock) the source name. NULL when out of memory. */
static lw_source *get_source(logs_watch *w, const char *name, int kind)
{
    lw_source *s = find_source(w, name);
    if (s)
        return s;
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    logs_miner_opts o = {.max_templates = MAX_TEMPLATES};
    char err[256];
    if (logs_miner_new(&o, &s->miner, err, sizeof err)) {
        log_warn("logs: %s: %s", name, err);
        free(s);
        return NULL;
    }
    core_sncpy(s->name, sizeof s->name, name);
    s->kind = kind;
    s->started_ms = kind == SRC_JOURNAL && w->journal_since ? w->journal_since : core_now_ms();
    s->s_lines = s->s_errors = s->s_templates = s->s_new = -1;
    s->tokens = EVENT_TOKENS;
    s->tokens_ms = s->started_ms;
    lw_source **tail = &w->sources;
    while (*tail)
        tail = &(*tail)->next;
    *tail = s;
    if (kind == SRC_JOURNAL)
        w->njournal_sources++;
    return s;
}

static int level_of(const char *name)
{
    return !strcmp(name, "error") ? LV_ERROR : !strcmp(name, "warning") ? LV_WARNING : LV_INFO;
}

/* One line of source s (under the lock). priority: the journal's, or -1. */
static void add_line(lw_source *s, const char *line, size_t len, int priority, bool cut)
{
    bool is_new = false;
    int id = logs_miner_add(s->miner, line, len, &is_new);
    int lv = level_of(priority >= 0 ? logs_priority_level(priority) : logs_line_level(line, len));
    int64_t now = core_now_ms();
    s->lines++;
    s->tick_lines++;
    s->cut += cut;
    if (lv == LV_ERROR) {
        s->errors++;
        s->tick_errors++;
    }
    if (id < 0)
        return;
    if (id >= MAX_IDS) {
        s->over_cap++;
        return;
    }
    if (id >= s->ntpl) {
        int n = id + 1 > s->ntpl * 2 ? id + 1 : s->ntpl * 2;
        if (n > MAX_IDS)
            n = MAX_IDS;
        lw_tpl *t = realloc(s->tpl, (size_t)n * sizeof *t);
        if (!t)
            return;
        memset(t + s->ntpl, 0, (size_t)(n - s->ntpl) * sizeof *t);
        s->tpl = t;
        s->ntpl = n;
    }
    lw_tpl *t = &s->tpl[id];
    if (t->count == 0) {
        t->first_seen = now;
        t->pending_new = true;
        s->tick_new++;
        size_t sl = len < SAMPLE_MAX ? len : SAMPLE_MAX;
        if ((t->sample = malloc(sl + 1))) {
            memcpy(t->sample, line, sl);
            t->sample[sl] = 0;
        }
    }
    (void)is_new;
    t->count++;
    t->tick_n++;
    t->last_seen = now;
    if (lv > t->level)
        t->level = lv;
}

/* "2024-05-01T12:00:00.123Z " as heal's supervisor stamps captured output. */
static bool stamped(const char *l, size_t n)
{
    return n >= 25 && l[4] == '-' && l[7] == '-' && l[10] == 'T' && l[13] == ':' && l[19] == '.' && l[23] == 'Z' &&
           l[24] == ' ';
}

static void on_file_line(void *ud, void *owner, const char *path, const char *line, size_t len, bool cut)
{
    logs_watch *w = ud;
    lw_source *s = owner;
    if (s->captured[0] && !strcmp(path, s->captured)) {
        if (stamped(line, len))
            line += 25, len -= 25;
        if (len >= 8 && !memcmp(line, "ippocd: ", 8))
            return; /* ippocd's own notes, not the service's */
    }
    pthread_mutex_lock(&w->lock);
    add_line(s, line, len, -1, cut);
    pthread_mutex_unlock(&w->lock);
}

/* The source of a journal unit: the service whose unit = names it, else the
 * unit without ".service"; entries without a unit go to "journal". */
static void journal_source_name(const logs_watch *w, const char *unit, char *out, size_t n)
{
    if (!unit || !*unit) {
        core_sncpy(out, n, "journal");
        return;
    }
    size_t ul = strlen(unit);
    for (int i = 0; i < w->conf.nsvcs; i++) {
        const char *u = w->conf.svcs[i].unit;
        size_t l = strlen(u);
        if (l && (!strcmp(u, unit) || (ul == l + 8 && !strncmp(unit, u, l) && !strcmp(unit + l, ".service")))) {
            core_sncpy(out, n, w->conf.svcs[i].name);
            return;
        }
    }
    if (ul > 8 && !strcmp(unit + ul - 8, ".service"))
        ul -= 8;
    if (ul >= n || ul >= LOGS_NAME_MAX)
        ul = (n < LOGS_NAME_MAX ? n : LOGS_NAME_MAX) - 1;
    memcpy(out, unit, ul);
    out[ul] = 0;
}

static void on_journal_entry(void *ud, const char *unit, const char *ident, const char *msg, size_t len, int priority,
                             int64_t ts_ms)
{
    logs_watch *w = ud;
    char name[LOGS_NAME_MAX];
    journal_source_name(w, unit, name, sizeof name);
    bool cut = len > LOGS_LINE_MAX;
    if (cut)
        len = LOGS_LINE_MAX;
    pthread_mutex_lock(&w->lock);
    lw_source *s = find_source(w, name);
    if (!s && w->njournal_sources >= MAX_JOURNAL_SOURCES)
        s = get_source(w, "journal", SRC_JOURNAL);
    else if (!s)
        s = get_source(w, name, SRC_JOURNAL);
    if (s)
        add_line(s, msg, len, priority, cut);
    pthread_mutex_unlock(&w->lock);
}

int logs_watch_feed(logs_watch *w, const char *source, const char *line, size_t len, int priority)
{
    pthread_mutex_lock(&w->lock);
    lw_source *s = get_source(w, source, SRC_FILE);
    if (s)
        add_line(s, line, len, priority, false);
    pthread_mutex_unlock(&w->lock);
    return s ? 0 : -ENOMEM;
}

/* ---- events and series --------------------------------------------------------------- */

static bool take_token(lw_source *s, int64_t now)
{
    s->tokens += (double)(now - s->tokens_ms) / 1000.0 / EVENT_REFILL_S;
    if (s->tokens > EVENT_TOKENS)
        s->tokens = EVENT_TOKENS;
    s->tokens_ms = now;
    if (s->tokens < 1.0) {
        s->suppressed++;
        return false;
    }
    s->tokens -= 1.0;
    return true;
}

static void emit_event(logs_watch *w, lw_source *s, const char *type, const char *sev, json_t *o)
{
    if (s->suppressed) {
        json_object_set_new(o, "suppressed", json_integer((json_int_t)s->suppressed));
        log_info("logs: %s: %llu events were not recorded (rate limit)", s->name, (unsigned long long)s->suppressed);
        s->suppressed = 0;
    }
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text && w->mem) {
        int64_t id = mem_event_add(w->mem, 0, type, sev, s->name, text);
        if (id < 0)
            log_warn("logs: cannot record %s: %s", type, strerror((int)-id));
    }
    free(text);
}

static void new_template_event(logs_watch *w, lw_source *s, int id, int64_t now)
{
    lw_tpl *t = &s->tpl[id];
    t->pending_new = false;
    if (now - s->started_ms < w->conf.grace_ms || !take_token(s, now))
        return;
    json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:I}", "source", s->name, "template_id", "", "id", id,
                          "template", logs_miner_template(s->miner, id), "level", level_names[t->level],
                          "sample", t->sample ? t->sample : "", "count", (json_int_t)t->count);
    if (!o)
        return;
    char tid[32];
    snprintf(tid, sizeof tid, "%d", id);
    json_object_set_new(o, "template_id", json_string(tid));
    emit_event(w, s, "log.template.new", t->level == LV_ERROR ? "warning" : "info", o);
}

static void burst_event(logs_watch *w, lw_source *s, int id, int64_t now)
{
    lw_tpl *t = &s->tpl[id];
    if (!take_token(s, now))
        return;
    char tid[32];
    snprintf(tid, sizeof tid, "%d", id);
    json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s, s:f, s:f, s:I, s:s}", "source", s->name, "template_id", tid,
                          "id", id, "template", logs_miner_template(s->miner, id), "level", level_names[t->level],
                          "rate", t->rate, "baseline", t->baseline, "count", (json_int_t)t->count,
                          "sample", t->sample ? t->sample : "");
    if (o)
        emit_event(w, s, "log.burst", t->level == LV_ERROR ? "warning" : "info", o);
}

/* The miner merged template id into an earlier one (r >= 0), or forgot it
 * (r < 0): its statistics go with it. */
static void fold_template(lw_source *s, int id, int r)
{
    lw_tpl *t = &s->tpl[id];
    if (r >= 0 && r < s->ntpl) {
        lw_tpl *k = &s->tpl[r];
        if (!k->count || t->first_seen < k->first_seen)
            k->first_seen = t->first_seen;
        if (t->last_seen > k->last_seen)
            k->last_seen = t->last_seen;
        if (!k->sample) {
            k->sample = t->sample;
            t->sample = NULL;
        }
        k->count += t->count;
        k->tick_n += t->tick_n;
        k->rate += t->rate;
        k->baseline += t->baseline;
        if (t->level > k->level)
            k->level = t->level;
    }
    free(t->sample);
    memset(t, 0, sizeof *t);
}

static void tick_template(logs_watch *w, lw_source *s, int id, double dt, int64_t now)
{
    lw_tpl *t = &s->tpl[id];
    if (t->count == 0)
        return;
    int r = logs_miner_resolve(s->miner, id);
    if (r != id) {
        fold_template(s, id, r);
        return;
    }
    if (t->pending_new)
        new_template_event(w, s, id, now);
    double inst = t->tick_n / dt;
    t->tick_n = 0;
    t->rate += (1.0 - exp(-dt / TAU_SHORT_S)) * (inst - t->rate);
    int64_t learn = w->conf.grace_ms < LEARN_MAX_MS ? w->conf.grace_ms : LEARN_MAX_MS;
    if (now - s->started_ms < learn) { /* what the source does from the start is its normal */
        if (t->rate > t->baseline)
            t->baseline = t->rate;
        return;
    }
    if (!t->bursting)
        t->baseline += (1.0 - exp(-dt / TAU_LONG_S)) * (inst - t->baseline);
    double base = t->baseline > BASELINE_FLOOR ? t->baseline : BASELINE_FLOOR;
    double over = w->conf.burst * base > MIN_BURST_RATE ? w->conf.burst * base : MIN_BURST_RATE;
    if (!t->bursting && t->rate > over) {
        t->bursting = true;
        burst_event(w, s, id, now);
    } else if (t->bursting && t->rate < over / 2) {
        t->bursting = false;
    }
}

static void label_of(const char *name, char *out, size_t n)
{
    size_t k = 0;
    k += (size_t)snprintf(out, n, "source=\"");
    for (const char *p = name; *p && k + 3 < n; p++) {
        if (*p == '"' || *p == '\\')
            out[k++] = '\\';
        out[k++] = *p;
    }
    if (k + 2 <= n) {
        out[k++] = '"';
        out[k] = 0;
    }
}

static void tick_series(logs_watch *w, lw_source *s, double dt)
{
    if (!w->mem)
        return;
    if (s->s_lines < 0) {
        char lb[LOGS_NAME_MAX * 2 + 16];
        label_of(s->name, lb, sizeof lb);
        s->s_lines = mem_series(w->mem, "log.lines", lb, "1/s", "log lines per second of a source", MEM_GAUGE);
        s->s_errors = mem_series(w->mem, "log.errors", lb, "1/s", "error-level log lines per second of a source",
                                 MEM_GAUGE);
        s->s_templates = mem_series(w->mem, "log.templates", lb, "", "distinct log templates of a source", MEM_GAUGE);
        s->s_new = mem_series(w->mem, "log.new_templates", lb, "1/s", "new log templates per second of a source",
                              MEM_GAUGE);
    }
    if (s->s_lines >= 0)
        mem_put(w->mem, s->s_lines, s->tick_lines / dt);
    if (s->s_errors >= 0)
        mem_put(w->mem, s->s_errors, s->tick_errors / dt);
    if (s->s_templates >= 0)
        mem_put(w->mem, s->s_templates, logs_miner_count(s->miner));
    if (s->s_new >= 0)
        mem_put(w->mem, s->s_new, s->tick_new / dt);
}

void logs_watch_tick(logs_watch *w, int64_t now_ms)
{
    if (!w)
        return;
    if (w->follow)
        logs_follow_poll(w->follow); /* what inotify could not tell */
    if (w->journal)
        logs_journal_pump(w->journal);
    double dt = w->last_tick_ms ? (double)(now_ms - w->last_tick_ms) / 1000.0 : 1.0;
    if (dt < 0.2)
        dt = 0.2;
    if (dt > 60)
        dt = 60;
    w->last_tick_ms = now_ms;
    pthread_mutex_lock(&w->lock);
    for (lw_source *s = w->sources; s; s = s->next) {
        for (int i = s->ntpl - 1; i >= 0; i--) /* merges go to earlier ids: fold them first */
            tick_template(w, s, i, dt, now_ms);
        tick_series(w, s, dt);
        s->tick_lines = s->tick_errors = s->tick_new = 0;
    }
    pthread_mutex_unlock(&w->lock);
}

/* ---- JSON (any thread) ------------------------------------------------------------- */

static json_t *source_json(lw_source *s)
{
    json_t *list = json_array();
    for (int i = 0; list && i < s->ntpl; i++) {
        lw_tpl *t = &s->tpl[i];
        if (!t->count || logs_miner_resolve(s->miner, i) != i) /* merged or forgotten since the tick */
            continue;
        json_array_append_new(list, json_pack("{s:i, s:s, s:s, s:I, s:f, s:I, s:I, s:b, s:s}", "id", i,
            "template", logs_miner_template(s->miner, i), "level", level_names[t->level], "count", (json_int_t)t->count,
            "rate", t->rate, "first_seen", (json_int_t)t->first_seen, "last_seen", (json_int_t)t->last_seen,
            "burst", t->bursting, "sample", t->sample ? t->sample : ""));
    }
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:i, s:I, s:o}", "source", s->name, "kind", kind_names[s->kind],
                     "lines", (json_int_t)s->lines, "errors", (json_int_t)s->errors, "cut", (json_int_t)s->cut,
                     "over_cap", (json_int_t)s->over_cap, "ntemplates", logs_miner_count(s->miner),
                     "started", (json_int_t)s->started_ms, "templates", list ? list : json_array());
}

char *logs_watch_json(logs_watch *w, const char *source)
{
    json_t *arr = json_array();
    bool found = false;
    pthread_mutex_lock(&w->lock);
    bool enabled = w->conf.enabled;
    for (lw_source *s = w->sources; arr && s; s = s->next)
        if (!source || !strcmp(source, s->name)) {
            json_array_append_new(arr, source_json(s));
            found = true;
        }
    pthread_mutex_unlock(&w->lock);
    if (source && !found) {
        json_decref(arr);
        return NULL;
    }
    json_t *o = json_pack("{s:o, s:b}", "sources", arr ? arr : json_array(), "enabled", enabled);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

/* ---- configuration ----------------------------------------------------------------- */

/* The paths source name follows under conf: '\n'-joined, malloc'd. */
static char *paths_of(const logs_conf *c, const char *name, bool service)
{
    size_t n = 1;
    for (int i = 0; i < c->nfiles; i++)
        if (!strcmp(c->files[i].name, name))
            n += strlen(c->files[i].path) + 1;
    if (service)
        n += strlen(c->state_dir) + strlen(name) + 32;
    char *out = malloc(n), *p = out;
    if (!out)
        return NULL;
    if (service)
        p += sprintf(p, "%s/services/%s.log\n", c->state_dir, name);
    for (int i = 0; i < c->nfiles; i++)
        if (!strcmp(c->files[i].name, name))
            p += sprintf(p, "%s\n", c->files[i].path);
    *p = 0;
    return out;
}

/* Follows (again) what source s should follow under paths. */
static void follow_source(logs_watch *w, lw_source *s, char *paths)
{
    logs_follow_remove(w->follow, s);
    free(s->paths);
    s->paths = paths;
    for (char *p = paths, *nl; p && *p; p = nl + 1) {
        nl = strchr(p, '\n');
        *nl = 0;
        char err[256];
        if (logs_follow_add(w->follow, p, s, false, err, sizeof err))
            log_warn("logs: %s: %s", s->name, err);
        *nl = '\n';
    }
}

static void want_source(logs_watch *w, const char *name, int kind)
{
    char *paths = paths_of(&w->conf, name, kind == SRC_SERVICE);
    pthread_mutex_lock(&w->lock);
    lw_source *s = get_source(w, name, kind);
    if (s) {
        s->seen = true;
        if (s->kind == SRC_JOURNAL && kind != SRC_JOURNAL)
            w->njournal_sources--;
        s->kind = kind;
        if (kind == SRC_SERVICE)
            snprintf(s->captured, sizeof s->captured, "%s/services/%s.log", w->conf.state_dir, name);
        else
            s->captured[0] = 0;
    }
    pthread_mutex_unlock(&w->lock);
    if (!s || !paths) {
        free(paths);
        return;
    }
    if (s->paths && !strcmp(s->paths, paths)) /* unchanged: keep reading where it is */
        free(paths);
    else
        follow_source(w, s, paths); /* outside the lock: reading calls on_file_line */
}

static void apply_sources(logs_watch *w)
{
    pthread_mutex_lock(&w->lock);
    for (lw_source *s = w->sources; s; s = s->next)
        s->seen = s->kind == SRC_JOURNAL && w->journal;
    pthread_mutex_unlock(&w->lock);
    if (w->conf.enabled) {
        for (int i = 0; i < w->conf.nsvcs; i++)
            want_source(w, w->conf.svcs[i].name, SRC_SERVICE);
        for (int i = 0; i < w->conf.nfiles; i++) {
            lw_source *s = find_source(w, w->conf.files[i].name); /* the loop thread is the only writer */
            if (!s || !s->seen) /* a service's own log_file files were taken with it */
                want_source(w, w->conf.files[i].name, SRC_FILE);
        }
    }
    for (lw_source **pp = &w->sources; *pp;) {
        lw_source *s = *pp;
        if (s->seen) {
            pp = &s->next;
            continue;
        }
        logs_follow_remove(w->follow, s);
        pthread_mutex_lock(&w->lock);
        *pp = s->next;
        if (s->kind == SRC_JOURNAL)
            w->njournal_sources--;
        pthread_mutex_unlock(&w->lock);
        source_free(s);
    }
}

static void report_no_journal(logs_watch *w, int rc, const char *why)
{
    if (w->journal_reported)
        return;
    w->journal_reported = true;
    bool wanted = w->conf.journal == LOGS_JOURNAL_YES;
    if (wanted)
        log_warn("logs: journal = yes but %s: carrying on without it", why);
    else
        log_info("logs: no systemd journal to follow (%s)", why);
    if (w->mem) {
        json_t *o = json_pack("{s:b, s:s, s:s}", "available", false, "reason", why, "journal",
                              wanted ? "yes" : "auto");
        char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (text)
            mem_event_add(w->mem, 0, "log.journal", wanted ? "warning" : "info", "logs", text);
        free(text);
    }
    (void)rc;
}

static void open_journal(logs_watch *w)
{
    if (w->journal || !w->conf.enabled || w->conf.journal == LOGS_JOURNAL_NO)
        return;
    char err[512];
    int rc = logs_journal_open(w->loop, w->conf.journal_dir[0] ? w->conf.journal_dir : NULL, false, on_journal_entry,
                               w, &w->journal, err, sizeof err);
    if (rc)
        report_no_journal(w, rc, err);
    else
        w->journal_since = core_now_ms();
    if (!rc)
        log_info("logs: following the journal%s%s", w->conf.journal_dir[0] ? " in " : "", w->conf.journal_dir);
}

static void close_journal(logs_watch *w)
{
    logs_journal_close(w->journal);
    w->journal = NULL;
}

int logs_watch_reconfigure(logs_watch *w, const core_config *cfg, char *err, size_t errlen)
{
    logs_conf nc;
    int rc = logs_conf_parse(cfg, &nc, err, errlen);
    if (rc)
        return rc;
    bool journal_changed = nc.enabled != w->conf.enabled || nc.journal != w->conf.journal ||
                           strcmp(nc.journal_dir, w->conf.journal_dir);
    pthread_mutex_lock(&w->lock); /* on_journal_entry reads conf.svcs; logs_watch_json conf.enabled */
    logs_conf old = w->conf;
    w->conf = nc;
    pthread_mutex_unlock(&w->lock);
    logs_conf_free(&old);
    if (journal_changed) {
        close_journal(w);
        w->journal_reported = false;
    }
    apply_sources(w);
    open_journal(w);
    return 0;
}

int logs_watch_new(uv_loop_t *loop, const core_config *cfg, mem_t *mem, logs_watch **out, char *err, size_t errlen)
{
    *out = NULL;
    logs_watch *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = logs_conf_parse(cfg, &w->conf, err, errlen);
    if (rc) {
        free(w);
        return rc;
    }
    w->loop = loop;
    w->mem = mem;
    pthread_mutex_init(&w->lock, NULL);
    rc = logs_follow_new(loop, on_file_line, w, &w->follow, err, errlen);
    if (rc) {
        logs_conf_free(&w->conf);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return rc;
    }
    apply_sources(w);
    open_journal(w);
    *out = w;
    return 0;
}

void logs_watch_free(logs_watch *w)
{
    if (!w)
        return;
    logs_follow_free(w->follow);
    close_journal(w);
    while (w->sources) {
        lw_source *s = w->sources;
        w->sources = s->next;
        source_free(s);
    }
    logs_conf_free(&w->conf);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
