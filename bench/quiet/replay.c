/* replay.c: quiet-replay, bench/quiet's replay of a recorded machine through
 * ippocd's own detection path, as fast as it goes.
 *
 * The recording is a wide CSV (bench/quiet/export.py): `ts_ms,KEY,...` then
 * one row per recorded second, an empty cell where a series had no sample.
 * It does what ippocd's loop does each second (src/daemon/daemon.c, on_tick),
 * minus the sensing: a temporary memory store (mem_open) with every column
 * registered as a series, the detect registry built from the default
 * configuration (or --config's [detect]), and per row mem_put of each value,
 * mem_tick(ts) and detect_registry_tick(ts) with the recorded timestamp. The
 * `anomaly` and `anomaly.episode` events the registry records are read back
 * from the store's event ring every second; episodes opened after the
 * warm-up are counted and set against the recording's length in
 * machine-days. Prints a markdown table; --episodes writes every episode as
 * one JSON line (bench/quiet/inject.py reads them). */
#include "core/core.h"
#include "detect/detect.h"
#include "memory/memory.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DAY_MS 86400000.0

typedef struct opts {
    const char *path, *name, *episodes, *config;
    int64_t warmup_ms;
    int top;
} opts;

typedef struct episode {
    uint64_t id;
    int64_t opened_ms, closed_ms;
    char first[DETECT_KEY_MAX];
    char reason[24];
    json_t *members; /* array of {key, reason, since_ms, score, noticed_ms}, from the events */
} episode;

typedef struct replay {
    opts o;
    mem_t *mem;
    detect_registry *reg;
    char dir[256];
    int ncols;
    int *ids;              /* by column: series id, -1 = column skipped */
    char **keys;           /* by column */
    episode *ep;
    size_t nep, capep;
    int64_t last_event;
    int64_t first_ts, last_ts;
    uint64_t rows, samples;
} replay;

/* ---- CSV ------------------------------------------------------------------ */

/* Splits one CSV line in place (RFC 4180 quoting) into at most max fields;
 * returns the count, or -1 when a quote is not closed. */
static int csv_split(char *s, char **f, int max)
{
    int n = 0;
    while (n < max) {
        char *out = s;
        f[n++] = s;
        if (*s == '"') {
            char *r = s + 1;
            for (;;) {
                if (!*r)
                    return -1;
                if (*r == '"' && r[1] == '"') {
                    *out++ = '"';
                    r += 2;
                } else if (*r == '"') {
                    r++;
                    break;
                } else {
                    *out++ = *r++;
                }
            }
            s = r;
        } else {
            while (*s && *s != ',')
                *out++ = *s++;
        }
        char c = *s;
        *out = 0;
        if (c != ',')
            return n;
        s++;
    }
    return n;
}

static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = 0;
}

/* KEY = name or name{labels}: registers the series, returns its id or -errno. */
static int register_key(replay *r, const char *key, char *err, size_t errlen)
{
    char name[DETECT_KEY_MAX];
    if (snprintf(name, sizeof name, "%s", key) >= (int)sizeof name) {
        snprintf(err, errlen, "series key longer than %d bytes", DETECT_KEY_MAX - 1);
        return -EINVAL;
    }
    const char *labels = "";
    char *brace = strchr(name, '{');
    if (brace) {
        size_t n = strlen(brace);
        if (brace[n - 1] != '}') {
            snprintf(err, errlen, "'%s': a key with labels ends with '}'", key);
            return -EINVAL;
        }
        brace[n - 1] = 0;
        *brace = 0;
        labels = brace + 1;
    }
    int id = mem_series(r->mem, name, labels, "", "", MEM_GAUGE);
    if (id < 0)
        snprintf(err, errlen, "'%s': not a valid series (%s)", key, strerror(-id));
    return id;
}

static int read_header(replay *r, char *line, char *err, size_t errlen)
{
    chomp(line);
    int max = 1;
    for (const char *p = line; *p; p++)
        max += *p == ',';
    char **f = malloc((size_t)max * sizeof *f);
    if (!f)
        return -ENOMEM;
    int n = csv_split(line, f, max);
    if (n < 2 || strcmp(f[0], "ts_ms")) {
        snprintf(err, errlen, "line 1: the header is ts_ms,KEY,... (got '%.40s')", n > 0 ? f[0] : "");
        free(f);
        return -EINVAL;
    }
    r->ncols = n - 1;
    r->ids = calloc((size_t)r->ncols, sizeof *r->ids);
    r->keys = calloc((size_t)r->ncols, sizeof *r->keys);
    if (!r->ids || !r->keys) {
        free(f);
        return -ENOMEM;
    }
    for (int c = 0; c < r->ncols; c++) {
        char why[256];
        r->keys[c] = strdup(f[c + 1]);
        int id = r->keys[c] ? register_key(r, f[c + 1], why, sizeof why) : -ENOMEM;
        if (id < 0) {
            snprintf(err, errlen, "line 1, column %d: %s", c + 2, id == -ENOMEM ? "out of memory" : why);
            free(f);
            return id;
        }
        r->ids[c] = id;
    }
    free(f);
    return 0;
}

/* One data row: ts_ms, then ncols cells, empty or a number. */
static int read_row(replay *r, char *line, unsigned long lineno, int64_t *ts, char *err, size_t errlen)
{
    chomp(line);
    char *p = line, *end;
    errno = 0;
    long long t = strtoll(p, &end, 10);
    if (end == p || errno || (*end != ',' && *end) || t <= 0) {
        snprintf(err, errlen, "line %lu: '%.30s' is not a timestamp in ms", lineno, line);
        return -EINVAL;
    }
    p = end;
    int c = 0;
    while (*p == ',') {
        p++;
        if (c >= r->ncols) {
            snprintf(err, errlen, "line %lu: more than the header's %d columns", lineno, r->ncols + 1);
            return -EINVAL;
        }
        if (*p != ',' && *p) {
            double v = strtod(p, &end);
            if (end == p || (*end != ',' && *end)) {
                snprintf(err, errlen, "line %lu, column %d (%s): '%.30s' is not a number", lineno, c + 2,
                         r->keys[c], p);
                return -EINVAL;
            }
            mem_put(r->mem, r->ids[c], v);
            r->samples++;
            p = end;
        }
        c++;
    }
    if (c != r->ncols) {
        snprintf(err, errlen, "line %lu: %d columns, the header has %d", lineno, c + 1, r->ncols + 1);
        return -EINVAL;
    }
    *ts = t;
    return 0;
}

/* ---- episodes from the registry's events ---------------------------------- */

static episode *find_episode(replay *r, uint64_t id)
{
    for (size_t i = r->nep; i-- > 0;)
        if (r->ep[i].id == id)
            return &r->ep[i];
    return NULL;
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static void on_episode_open(replay *r, const mem_event *ev, json_t *p)
{
    if (r->nep == r->capep) {
        size_t cap = r->capep ? r->capep * 2 : 64;
        episode *e = realloc(r->ep, cap * sizeof *e);
        if (!e)
            return;
        r->ep = e;
        r->capep = cap;
    }
    episode *e = &r->ep[r->nep++];
    memset(e, 0, sizeof *e);
    e->id = (uint64_t)json_integer_value(json_object_get(p, "episode"));
    e->opened_ms = ev->ts;
    snprintf(e->first, sizeof e->first, "%s", jstr(json_object_get(p, "first"), "key"));
    e->members = json_array();
}

static json_t *member(const char *key, const char *reason, json_t *since, json_t *score, json_t *noticed)
{
    return json_pack("{s:s, s:s, s:O, s:O, s:O}", "key", key, "reason", reason, "since_ms",
                     since ? since : json_null(), "score", score ? score : json_null(), "noticed_ms",
                     noticed ? noticed : json_null());
}

static void on_event(replay *r, const mem_event *ev)
{
    bool ep = !strcmp(ev->type, "anomaly.episode"), an = !strcmp(ev->type, "anomaly");
    if (!ep && !an)
        return;
    json_t *p = json_loads(ev->payload, 0, NULL);
    if (!p)
        return;
    episode *e = find_episode(r, (uint64_t)json_integer_value(json_object_get(p, "episode")));
    if (ep && !strcmp(jstr(p, "state"), "open")) {
        on_episode_open(r, ev, p);
    } else if (ep && e) { /* closed: the full member list */
        e->closed_ms = ev->ts;
        json_t *list = json_array(), *m;
        size_t i;
        json_array_foreach(json_object_get(p, "members"), i, m)
            json_array_append_new(list, member(jstr(m, "key"), jstr(m, "reason"), json_object_get(m, "since_ms"),
                                               json_object_get(m, "peak"), json_object_get(m, "noticed_ms")));
        json_decref(e->members);
        e->members = list;
    } else if (an && e) {
        const char *key = jstr(p, "key");
        if (!e->reason[0] && !strcmp(key, e->first))
            snprintf(e->reason, sizeof e->reason, "%s", jstr(p, "reason"));
        if (!e->closed_ms) {
            json_t *told = json_integer(ev->ts); /* an `anomaly` event is written at the notice */
            json_array_append_new(e->members, member(key, jstr(p, "reason"), json_object_get(p, "since_ms"),
                                                     json_object_get(p, "score"), told));
            json_decref(told);
        }
    }
    json_decref(p);
}

static void drain_events(replay *r)
{
    while (mem_last_event_id(r->mem) > r->last_event) {
        mem_event *ev = NULL;
        size_t n = 0;
        if (mem_events_wait(r->mem, r->last_event, 0, &ev, &n) < 0 || !n)
            return;
        for (size_t i = 0; i < n; i++) {
            on_event(r, &ev[i]);
            r->last_event = ev[i].id;
        }
        mem_events_free(ev, n);
    }
}

/* ---- the run ------------------------------------------------------------------ */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static FILE *open_input(const char *path, bool *piped)
{
    *piped = false;
    if (!strcmp(path, "-"))
        return stdin;
    size_t n = strlen(path);
    if (n > 3 && !strcmp(path + n - 3, ".xz")) {
        if (access(path, R_OK))
            return NULL;
        char cmd[4200];
        char *q = cmd + snprintf(cmd, sizeof cmd, "xz -dc -- '");
        for (const char *s = path; *s && q < cmd + sizeof cmd - 8; s++) { /* single-quoted for the shell */
            if (*s == '\'') {
                memcpy(q, "'\\''", 4);
                q += 4;
            } else {
                *q++ = *s;
            }
        }
        snprintf(q, (size_t)(cmd + sizeof cmd - q), "'");
        *piped = true;
        return popen(cmd, "r");
    }
    return fopen(path, "r");
}

static int load_config(replay *r, core_config *cfg, char *err, size_t errlen)
{
    core_config_defaults(cfg);
    if (r->o.config) {
        int rc = core_config_load(cfg, r->o.config, true, err, errlen);
        if (rc)
            return rc;
    }
    const char *tmp = access("/dev/shm", W_OK) ? (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp") : "/dev/shm";
    snprintf(r->dir, sizeof r->dir, "%s/quiet-replay.XXXXXX", tmp);
    if (!mkdtemp(r->dir)) {
        snprintf(err, errlen, "%s: cannot create a temporary directory: %s", r->dir, strerror(errno));
        r->dir[0] = 0;
        return -errno;
    }
    snprintf(cfg->state_dir, sizeof cfg->state_dir, "%s", r->dir);
    return 0;
}

static int run(replay *r, char *err, size_t errlen)
{
    core_config cfg;
    int rc = load_config(r, &cfg, err, errlen);
    if (!rc)
        rc = mem_open(&r->mem, &cfg, err, errlen);
    if (!rc)
        rc = detect_registry_new(&r->reg, r->mem, &cfg, err, errlen);
    core_config_free(&cfg);
    if (rc)
        return rc;
    bool piped;
    FILE *in = open_input(r->o.path, &piped);
    if (!in) {
        snprintf(err, errlen, "%s: %s", r->o.path, strerror(errno));
        return -errno;
    }
    char *line = NULL;
    size_t cap = 0;
    unsigned long lineno = 1;
    char why[512];
    if (getline(&line, &cap, in) < 0) {
        snprintf(why, sizeof why, "empty (no header)");
        rc = -EINVAL;
    } else {
        rc = read_header(r, line, why, sizeof why);
    }
    while (!rc && getline(&line, &cap, in) >= 0) {
        lineno++;
        int64_t ts;
        if (line[0] == '\n' || line[0] == 0)
            continue;
        rc = read_row(r, line, lineno, &ts, why, sizeof why);
        if (rc)
            break;
        if (r->rows && ts / 1000 <= r->last_ts / 1000) {
            snprintf(why, sizeof why, "line %lu: time %lld is not after the previous row's", lineno, (long long)ts);
            rc = -EINVAL;
            break;
        }
        mem_tick(r->mem, ts);
        detect_registry_tick(r->reg, ts);
        drain_events(r);
        if (!r->rows)
            r->first_ts = ts;
        r->last_ts = ts;
        r->rows++;
    }
    free(line);
    int st = piped ? pclose(in) : in == stdin ? 0 : fclose(in);
    if (!rc && piped && st) {
        snprintf(why, sizeof why, "xz -dc failed (status %d)", st);
        rc = -EIO;
    }
    if (!rc && !r->rows) {
        snprintf(why, sizeof why, "no data rows");
        rc = -EINVAL;
    }
    if (rc)
        snprintf(err, errlen, "%s: %s", r->o.path, why);
    return rc;
}

/* ---- report -------------------------------------------------------------------- */

typedef struct tally {
    const char *key, *reason;
    int keylen; /* key[0..keylen) is what is counted (the whole key, or its family) */
    int n;
} tally;

static int by_count(const void *a, const void *b)
{
    const tally *x = a, *y = b;
    if (x->n != y->n)
        return y->n - x->n;
    int c = strncmp(x->key, y->key, (size_t)(x->keylen < y->keylen ? x->keylen : y->keylen));
    return c ? c : x->keylen - y->keylen;
}

static void tally_add(tally *t, int *nt, const char *key, int keylen, const char *reason)
{
    int k = 0;
    while (k < *nt && (t[k].keylen != keylen || strncmp(t[k].key, key, (size_t)keylen) || strcmp(t[k].reason, reason)))
        k++;
    if (k == *nt)
        t[(*nt)++] = (tally){key, reason, keylen, 0};
    t[k].n++;
}

static void tally_print(tally *t, int nt, int top, const char *title, const char *what)
{
    if (!nt)
        return;
    qsort(t, (size_t)nt, sizeof *t, by_count);
    printf("%s\n\n| %s | reason | episodes |\n|---|---|---|\n", title, what);
    for (int k = 0; k < nt && k < top; k++)
        printf("| `%.*s` | %s | %d |\n", t[k].keylen, t[k].key, t[k].reason, t[k].n);
    if (nt > top)
        printf("| (%d more) | | |\n", nt - top);
    printf("\n");
}

static bool counted(const replay *r, const episode *e)
{
    return e->opened_ms >= r->first_ts + r->o.warmup_ms;
}

static void report(replay *r, double secs)
{
    double span_ms = (double)(r->last_ts - r->first_ts) + 1000;
    double counted_ms = span_ms - (double)r->o.warmup_ms;
    int n = 0, before = 0;
    tally *t = calloc(r->nep + 1, sizeof *t), *f = calloc(r->nep + 1, sizeof *f);
    int nt = 0, nf = 0;
    for (size_t i = 0; i < r->nep; i++) {
        episode *e = &r->ep[i];
        if (!counted(r, e)) {
            before++;
            continue;
        }
        n++;
        const char *reason = e->reason[0] ? e->reason : "?";
        if (t && f) {
            tally_add(t, &nt, e->first, (int)strlen(e->first), reason);
            tally_add(f, &nf, e->first, (int)strcspn(e->first, "{"), reason);
        }
    }
    double per_day = counted_ms > 0 ? n / (counted_ms / DAY_MS) : NAN;
    mem_stats ms;
    mem_get_stats(r->mem, &ms);
    printf("### %s\n\n", r->o.name);
    printf("| recording | hours replayed | series | samples | warm-up | episodes in warm-up | episodes after | "
           "machine-days counted | episodes / machine-day | target | replay speed |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    char rate[32];
    snprintf(rate, sizeof rate, counted_ms > 0 ? "**%.1f**" : "-", per_day);
    printf("| %s | %.2f | %d | %llu | %lld min | %d | %d | %.3f | %s | <= 2: %s | %.0fx real time (%.1f s) |\n\n",
           r->o.name, span_ms / 3600000.0, r->ncols, (unsigned long long)r->samples,
           (long long)(r->o.warmup_ms / 60000), before, n, counted_ms > 0 ? counted_ms / DAY_MS : 0, rate,
           counted_ms <= 0 ? "-" : per_day <= 2 ? "met" : "**not met**", secs > 0 ? span_ms / 1000.0 / secs : 0, secs);
    if (counted_ms <= 0)
        printf("The recording is not longer than the warm-up: nothing was counted.\n\n");
    tally_print(t, nt, r->o.top, "Series that opened the episodes after the warm-up (first mover, its reason):",
                "series");
    tally_print(f, nf, r->o.top, "The same by family:", "family");
    int hours = (int)(span_ms / 3600000.0) + 1;
    if (hours <= 48) { /* does the rate fall as the detectors learn? */
        printf("Episodes opened per hour of the recording (warm-up included):");
        for (int h = 0; h < hours; h++) {
            int k = 0;
            for (size_t i = 0; i < r->nep; i++)
                k += (r->ep[i].opened_ms - r->first_ts) / 3600000 == h;
            printf("%s %d", h ? "," : "", k);
        }
        printf("\n\n");
    }
    if (ms.dropped_batches)
        printf("(the temporary store dropped %llu tick batches: its disk writer fell behind the replay; detection "
               "reads the RAM window and is not affected)\n\n", (unsigned long long)ms.dropped_batches);
    free(t);
    free(f);
}

static int write_episodes(replay *r, char *err, size_t errlen)
{
    FILE *f = fopen(r->o.episodes, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", r->o.episodes, strerror(errno));
        return -errno;
    }
    for (size_t i = 0; i < r->nep; i++) {
        episode *e = &r->ep[i];
        json_t *o = json_pack("{s:I, s:I, s:o, s:s, s:s, s:b, s:O}", "episode", (json_int_t)e->id,
                              "opened_ms", (json_int_t)e->opened_ms,
                              "closed_ms", e->closed_ms ? json_integer(e->closed_ms) : json_null(), "first", e->first,
                              "reason", e->reason, "counted", counted(r, e), "members", e->members);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (s)
            fprintf(f, "%s\n", s);
        free(s);
        json_decref(o);
    }
    json_t *meta = json_pack("{s:s, s:I, s:I, s:I, s:i}", "recording", r->o.name, "first_ts", (json_int_t)r->first_ts,
                             "last_ts", (json_int_t)r->last_ts, "warmup_ms", (json_int_t)r->o.warmup_ms, "series",
                             r->ncols);
    char *s = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
    if (s)
        fprintf(f, "%s\n", s);
    free(s);
    json_decref(meta);
    if (fclose(f)) {
        snprintf(err, errlen, "%s: %s", r->o.episodes, strerror(errno));
        return -EIO;
    }
    return 0;
}

static void cleanup(replay *r)
{
    detect_registry_free(r->reg);
    mem_close(r->mem);
    if (r->dir[0])
        nftw(r->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    for (int c = 0; c < r->ncols; c++)
        free(r->keys ? r->keys[c] : NULL);
    free(r->keys);
    free(r->ids);
    for (size_t i = 0; i < r->nep; i++)
        json_decref(r->ep[i].members);
    free(r->ep);
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: quiet-replay [OPTIONS] RECORDING\n"
            "Replays a recording (bench/quiet/export.py's wide CSV, .csv or .csv.xz, or - for stdin)\n"
            "through ippocd's detection path (memory store + detect registry, default [detect]\n"
            "settings), as fast as it goes, and prints the anomaly episodes per machine-day.\n"
            "  --name NAME       the recording's name in the table (default: the file name)\n"
            "  --warmup DUR      episodes opened in the first DUR are not counted (default 10m)\n"
            "  --episodes FILE   every episode as one JSON line, then one line about the run\n"
            "  --config FILE     an ippocd configuration whose [detect] section replaces the defaults\n"
            "  --top N           rows of the first-mover table (default 10)\n"
            "  -v, --verbose     the registry's log (each anomaly) on stderr\n"
            "  -h, --help\n");
}

/* The file name without its directory and .csv / .csv.xz. */
static const char *base_name(const char *p, char *buf, size_t n)
{
    const char *s = strrchr(p, '/');
    snprintf(buf, n, "%s", s ? s + 1 : p);
    char *dot = strstr(buf, ".csv");
    if (dot && dot != buf && (!strcmp(dot, ".csv") || !strcmp(dot, ".csv.xz")))
        *dot = 0;
    return buf;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"name", required_argument, 0, 'n'},     {"warmup", required_argument, 0, 'w'},
        {"episodes", required_argument, 0, 'e'}, {"config", required_argument, 0, 'c'},
        {"top", required_argument, 0, 't'},      {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0},
    };
    replay r = {.o = {.warmup_ms = 600000, .top = 10}};
    int level = CORE_LOG_ERR, c;
    while ((c = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
        switch (c) {
        case 'n': r.o.name = optarg; break;
        case 'e': r.o.episodes = optarg; break;
        case 'c': r.o.config = optarg; break;
        case 'v': level = CORE_LOG_INFO; break;
        case 't':
            r.o.top = atoi(optarg);
            if (r.o.top < 1) {
                fprintf(stderr, "quiet-replay: --top: '%s' is not a positive count\n", optarg);
                return 2;
            }
            break;
        case 'w':
            if (core_parse_duration(optarg, &r.o.warmup_ms) || r.o.warmup_ms < 0) {
                fprintf(stderr, "quiet-replay: --warmup: '%s' is not a duration (e.g. 10m, 90s)\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    r.o.path = argv[optind];
    char namebuf[256];
    if (!r.o.name)
        r.o.name = base_name(r.o.path, namebuf, sizeof namebuf);
    core_log_setup(level, 0);
    char err[1024] = "";
    int64_t t0 = core_mono_ns();
    int rc = run(&r, err, sizeof err);
    double secs = (double)(core_mono_ns() - t0) / 1e9;
    if (!rc) {
        report(&r, secs);
        if (r.o.episodes)
            rc = write_episodes(&r, err, sizeof err);
    }
    if (rc)
        fprintf(stderr, "quiet-replay: %s\n", err);
    cleanup(&r);
    return rc ? 1 : 0;
}
