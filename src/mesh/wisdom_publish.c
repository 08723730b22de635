/* wisdom_publish.c: the cell's own detector baselines (aggregates of a few
 * standard series in its memory, and its services' restarts) and tuned knob
 * sets (Evolve's accepted candidates) as wisdom records, each through the
 * redaction rule. The cell's gossip signs and publishes them (cell_publish.c). */
#include "mesh/wisdom_publish.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* ---- statistics ----------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double quantile(const double *v, size_t n, double q)
{
    double at = q * (double)(n - 1);
    size_t i = (size_t)at;
    if (i + 1 >= n)
        return v[n - 1];
    return v[i] + (at - (double)i) * (v[i + 1] - v[i]);
}

void mesh_pub_stats(double *v, size_t n, double *mean, double *stddev, double *p05, double *p50, double *p95)
{
    qsort(v, n, sizeof *v, cmp_double);
    double s = 0, ss = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    *mean = s / (double)n;
    for (size_t i = 0; i < n; i++)
        ss += (v[i] - *mean) * (v[i] - *mean);
    *stddev = sqrt(ss / (double)n);
    *p05 = quantile(v, n, 0.05);
    *p50 = quantile(v, n, 0.50);
    *p95 = quantile(v, n, 0.95);
}

/* ---- the emit walk ------------------------------------------------------------------- */

typedef struct walk {
    const mesh_wisdom_host *host;
    const mesh_wisdom_local *loc;
    mesh_wisdom_emit emit;
    void *eud;
    int emitted, *refused;
    char *err;
    size_t errlen;
} walk;

/* Counts a refusal; keeps the first reason. */
static void refuse(walk *w, const char *what, const char *why)
{
    if (w->refused && (*w->refused)++ == 0)
        snprintf(w->err, w->errlen, "%s: %s", what, why);
    else if (!w->refused && !w->err[0])
        snprintf(w->err, w->errlen, "%s: %s", what, why);
}

/* Sets h to the walk's host with the service kind svc; false (counted) when
 * svc does not fit. */
static bool host_for(walk *w, const char *svc, mesh_wisdom_host *h)
{
    *h = *w->host;
    if (strlen(svc) >= sizeof h->service) {
        refuse(w, "host.service", "a service kind longer than 31 characters");
        return false;
    }
    snprintf(h->service, sizeof h->service, "%s", svc);
    return true;
}

/* Builds one baseline of v[0..n) and emits it: 0, or emit's non-zero return. */
static int emit_baseline(walk *w, const char *svc, const char *metric, double *v, size_t n)
{
    if (n < MESH_WISDOM_MIN_SAMPLES)
        return 0;
    mesh_wisdom_host h;
    if (!host_for(w, svc, &h))
        return 0;
    double mean, sd, p05, p50, p95;
    mesh_pub_stats(v, n, &mean, &sd, &p05, &p50, &p95);
    mesh_wisdom_rec r;
    char e[512];
    uint32_t count = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
    if (mesh_wisdom_build_baseline(metric, count, mean, sd, p05, p50, p95, &h, w->loc, &r, e, sizeof e)) {
        refuse(w, metric, e);
        return 0;
    }
    int rc = w->emit(w->eud, &r);
    if (!rc)
        w->emitted++;
    return rc;
}

/* ---- series baselines ------------------------------------------------------------------ */

/* What is shared of the machine: a series (name, exact labels) as a metric. */
static const struct {
    const char *series, *labels, *metric;
} machine_metrics[] = {
    {"cpu.usage_percent", "cpu=\"total\",state=\"user\"", "cpu.user_percent"},
    {"cpu.usage_percent", "cpu=\"total\",state=\"system\"", "cpu.system_percent"},
    {"cpu.usage_percent", "cpu=\"total\",state=\"iowait\"", "cpu.iowait_percent"},
    {"memory.used_percent", "", "memory.used_percent"},
    {"psi.some_avg60_percent", "resource=\"cpu\"", "psi.cpu.some_avg60_percent"},
    {"psi.some_avg60_percent", "resource=\"memory\"", "psi.memory.some_avg60_percent"},
    {"psi.some_avg60_percent", "resource=\"io\"", "psi.io.some_avg60_percent"},
};

/* And of each watched process kind (labels name="KIND",pid="N": every pid's
 * points pooled): the family itself. */
static const char *const process_metrics[] = {"process.cpu_percent", "process.rss_bytes"};

typedef struct vec {
    double *v;
    size_t n, cap;
} vec;

static int vec_add(vec *a, double x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 256;
        double *v = realloc(a->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

/* Appends the bucket means of series id over [from, to] by step. */
static int points(mem_t *m, int id, int64_t from, int64_t to, int64_t step, vec *out)
{
    mem_point *p = NULL;
    size_t n = 0;
    int src = 0;
    char e[256];
    int rc = mem_query(m, id, from, to, step, (to - from) / step + 2, &p, &n, &src, e, sizeof e);
    if (rc)
        return rc == -ENOMEM ? rc : 0; /* an unknown or empty series: no points */
    for (size_t i = 0; i < n && !rc; i++)
        if (p[i].count && isfinite(p[i].mean))
            rc = vec_add(out, p[i].mean);
    free(p);
    return rc;
}

/* The points of the series ids[0..n): the day's minutes, or the RAM
 * window's 10-second means when the day holds too few. */
static int gather(mem_t *m, const int *ids, size_t nids, int64_t now, int64_t ram_from, vec *out)
{
    int rc = 0;
    out->n = 0;
    for (size_t i = 0; i < nids && !rc; i++)
        rc = points(m, ids[i], now - MESH_PUB_DAY_MS, now, 60000, out);
    if (rc || out->n >= MESH_WISDOM_MIN_SAMPLES || ram_from <= 0 || ram_from >= now)
        return rc;
    out->n = 0;
    for (size_t i = 0; i < nids && !rc; i++)
        rc = points(m, ids[i], ram_from, now, 10000, out);
    return rc;
}

/* The value of label key in canonical labels, "" when absent or escaped. */
static void label_value(const char *labels, const char *key, char *out, size_t n)
{
    size_t kl = strlen(key);
    out[0] = 0;
    for (const char *s = labels; s && *s;) {
        const char *end = mem_labels_pair_end(s);
        if (!strncmp(s, key, kl) && s[kl] == '=' && s[kl + 1] == '"') {
            const char *v = s + kl + 2, *q = strchr(v, '"');
            if (q && q < end && !memchr(v, '\\', (size_t)(q - v)) && (size_t)(q - v) < n) {
                memcpy(out, v, (size_t)(q - v));
                out[q - v] = 0;
            }
            return;
        }
        s = *end == ',' ? end + 1 : end;
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every process kind (the name label of process.* series), sorted, unique. */
static int process_kinds(const mem_series_info *s, size_t n, char ***out, size_t *nout)
{
    char **k = NULL;
    size_t nk = 0;
    for (size_t i = 0; i < n; i++) {
        char v[128];
        if (strcmp(s[i].name, process_metrics[0]))
            continue;
        label_value(s[i].labels, "name", v, sizeof v);
        bool dup = !v[0];
        for (size_t j = 0; j < nk && !dup; j++)
            dup = !strcmp(k[j], v);
        if (dup)
            continue;
        char **nk2 = realloc(k, (nk + 1) * sizeof *k);
        if (!nk2 || !(nk2[nk] = strdup(v))) {
            k = nk2 ? nk2 : k;
            for (size_t j = 0; j < nk; j++)
                free(k[j]);
            free(k);
            return -ENOMEM;
        }
        k = nk2;
        nk++;
    }
    if (nk)
        qsort(k, nk, sizeof *k, cmp_str);
    *out = k;
    *nout = nk;
    return 0;
}

static int machine_baselines(walk *w, mem_t *m, int64_t now, int64_t ram_from, vec *pts)
{
    int rc = 0;
    for (size_t i = 0; i < sizeof machine_metrics / sizeof *machine_metrics && !rc; i++) {
        int id = mem_series_find(m, machine_metrics[i].series, machine_metrics[i].labels);
        if (id < 0)
            continue;
        if (!(rc = gather(m, &id, 1, now, ram_from, pts)))
            rc = emit_baseline(w, "", machine_metrics[i].metric, pts->v, pts->n);
    }
    return rc;
}

static int process_baselines(walk *w, mem_t *m, const mem_series_info *s, size_t ns, int64_t now, int64_t ram_from,
                             vec *pts)
{
    char **kinds = NULL;
    size_t nk = 0;
    int rc = process_kinds(s, ns, &kinds, &nk);
    int *ids = rc ? NULL : malloc((ns ? ns : 1) * sizeof *ids);
    if (!rc && !ids)
        rc = -ENOMEM;
    for (size_t k = 0; k < nk && !rc; k++) {
        for (size_t f = 0; f < sizeof process_metrics / sizeof *process_metrics && !rc; f++) {
            size_t nids = 0;
            for (size_t i = 0; i < ns; i++) {
                char v[128];
                if (strcmp(s[i].name, process_metrics[f]))
                    continue;
                label_value(s[i].labels, "name", v, sizeof v);
                if (!strcmp(v, kinds[k]))
                    ids[nids++] = s[i].id;
            }
            if (nids && !(rc = gather(m, ids, nids, now, ram_from, pts)))
                rc = emit_baseline(w, kinds[k], process_metrics[f], pts->v, pts->n);
        }
    }
    free(ids);
    for (size_t k = 0; k < nk; k++)
        free(kinds[k]);
    free(kinds);
    return rc;
}

/* ---- restarts ------------------------------------------------------------------------ */

typedef struct svc_hist {
    char name[128];
    int64_t first;   /* its first service.* event in the window */
    int64_t *restarts;
    size_t n, cap;
} svc_hist;

static svc_hist *svc_find(svc_hist **v, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*v)[i].name, name))
            return &(*v)[i];
    svc_hist *nv = realloc(*v, (*n + 1) * sizeof **v);
    if (!nv)
        return NULL;
    *v = nv;
    svc_hist *h = &nv[(*n)++];
    memset(h, 0, sizeof *h);
    snprintf(h->name, sizeof h->name, "%s", name);
    return h;
}

/* Per service with at least MESH_WISDOM_MIN_SAMPLES whole hours of history in
 * the last MESH_PUB_RESTART_DAYS days: its restarts per hour. */
static int restart_baselines(walk *w, mem_t *m, int64_t now, vec *pts)
{
    mem_event_query q = {.from = now - MESH_PUB_RESTART_DAYS * MESH_PUB_DAY_MS, .to = now, .type = "service.*",
                         .limit = 10000, .ascending = true};
    mem_event *ev = NULL;
    size_t nev = 0;
    char e[256];
    int rc = mem_events_query(m, &q, &ev, &nev, e, sizeof e);
    if (rc)
        return rc == -ENOMEM ? rc : 0;
    svc_hist *h = NULL;
    size_t nh = 0;
    for (size_t i = 0; i < nev && !rc; i++) {
        svc_hist *s = ev[i].source[0] ? svc_find(&h, &nh, ev[i].source) : NULL;
        if (ev[i].source[0] && !s)
            rc = -ENOMEM;
        if (!s)
            continue;
        if (!s->first || ev[i].ts < s->first)
            s->first = ev[i].ts;
        if (strcmp(ev[i].type, "service.restart"))
            continue;
        if (s->n == s->cap) {
            size_t cap = s->cap ? 2 * s->cap : 16;
            int64_t *r = realloc(s->restarts, cap * sizeof *r);
            if (!r) {
                rc = -ENOMEM;
                break;
            }
            s->restarts = r;
            s->cap = cap;
        }
        s->restarts[s->n++] = ev[i].ts;
    }
    mem_events_free(ev, nev);
    for (size_t i = 0; i < nh && !rc; i++) {
        int64_t hours = (now - h[i].first) / 3600000;
        if (hours < MESH_WISDOM_MIN_SAMPLES)
            continue;
        pts->n = 0;
        for (int64_t k = 0; k < hours && !rc; k++)
            rc = vec_add(pts, 0);
        for (size_t k = 0; k < h[i].n && !rc; k++) {
            int64_t at = (h[i].restarts[k] - h[i].first) / 3600000;
            if (at >= 0 && at < hours)
                pts->v[at] += 1;
        }
        if (!rc)
            rc = emit_baseline(w, h[i].name, "service.restarts_per_hour", pts->v, pts->n);
    }
    for (size_t i = 0; i < nh; i++)
        free(h[i].restarts);
    free(h);
    return rc;
}

int mesh_wisdom_baselines_from_memory(mem_t *m, const mesh_wisdom_host *host, int64_t now_ms,
                                      const mesh_wisdom_local *loc, mesh_wisdom_emit emit, void *eud, int *refused,
                                      char *err, size_t errlen)
{
    walk w = {host, loc, emit, eud, 0, refused, err, errlen};
    if (errlen)
        err[0] = 0;
    if (refused)
        *refused = 0;
    mem_stats st;
    mem_get_stats(m, &st);
    mem_series_info *s = NULL;
    size_t ns = 0;
    vec pts = {0};
    int rc = mem_series_snapshot(m, &s, &ns);
    if (rc) {
        snprintf(err, errlen, "series: %s", strerror(-rc));
        return rc;
    }
    rc = machine_baselines(&w, m, now_ms, st.oldest_ram_ts, &pts);
    if (!rc)
        rc = process_baselines(&w, m, s, ns, now_ms, st.oldest_ram_ts, &pts);
    if (!rc)
        rc = restart_baselines(&w, m, now_ms, &pts);
    free(s);
    free(pts.v);
    if (rc == -ENOMEM)
        snprintf(err, errlen, "baselines: out of memory");
    return rc ? rc : w.emitted;
}

/* ---- knob sets from Evolve's runs ----------------------------------------------------- */

static bool service_kind(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n < sizeof((mesh_wisdom_host *)0)->service && s[0] >= 'a' && s[0] <= 'z' &&
           strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* The trial numbered n of a run's record. */
static json_t *trial_of(json_t *doc, json_int_t n)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(doc, "trials"), i, t) if (json_integer_value(json_object_get(t, "n")) == n)
        return t;
    return NULL;
}

/* One run's record: its last accepted candidate as a knob record. */
static int run_knobs(walk *w, const char *path)
{
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    if (!doc)
        return 0; /* a record being written, or not one: evolve's own to report */
    json_t *acc = json_object_get(doc, "accepted");
    json_t *last = json_array_size(acc) ? json_array_get(acc, json_array_size(acc) - 1) : NULL;
    json_t *trial = last ? trial_of(doc, json_integer_value(json_object_get(last, "trial"))) : NULL;
    json_t *conf = trial ? json_object_get(trial, "confirmation") : NULL;
    json_t *values = last ? json_object_get(last, "values") : NULL;
    const char *space = json_string_value(json_object_get(doc, "space"));
    const char *goal = json_string_value(json_object_get(doc, "goal"));
    int rc = 0;
    if (conf && json_is_object(values) && space) {
        const char *names[MESH_WISDOM_KNOBS_MAX], *vals[MESH_WISDOM_KNOBS_MAX];
        int n = 0;
        const char *k;
        json_t *v;
        bool fits = json_object_size(values) <= MESH_WISDOM_KNOBS_MAX;
        json_object_foreach(values, k, v) if (fits && json_is_string(v)) {
            int at = n++; /* sorted by name, as the record holds them */
            for (; at > 0 && strcmp(names[at - 1], k) > 0; at--) {
                names[at] = names[at - 1];
                vals[at] = vals[at - 1];
            }
            names[at] = k;
            vals[at] = json_string_value(v);
        }
        char objective[MESH_WISDOM_TOKEN_MAX + 1], what[600];
        snprintf(objective, sizeof objective, "%s.%s", space, goal && !strcmp(goal, "min") ? "fitness_min" : "fitness");
        snprintf(what, sizeof what, "evolve run %s", path);
        mesh_wisdom_host h;
        mesh_wisdom_rec r;
        char e[512];
        json_int_t runs = json_integer_value(json_object_get(conf, "n_cand"));
        if (!fits)
            refuse(w, what, "more than 8 knobs");
        else if (host_for(w, service_kind(space) ? space : "", &h)) {
            if (mesh_wisdom_build_knobs(objective, n, names, vals, json_real_value(json_object_get(conf, "gain")),
                                        json_real_value(json_object_get(conf, "lo")),
                                        json_real_value(json_object_get(conf, "hi")),
                                        runs > 0 && runs < UINT32_MAX ? (uint32_t)runs : 0, &h, w->loc, &r, e,
                                        sizeof e))
                refuse(w, what, e);
            else if (!(rc = w->emit(w->eud, &r)))
                w->emitted++;
        }
    }
    json_decref(doc);
    return rc;
}

int mesh_wisdom_knobs_from_runs(const char *runs_dir, const mesh_wisdom_host *host, const mesh_wisdom_local *loc,
                                mesh_wisdom_emit emit, void *eud, int *refused, char *err, size_t errlen)
{
    walk w = {host, loc, emit, eud, 0, refused, err, errlen};
    if (errlen)
        err[0] = 0;
    if (refused)
        *refused = 0;
    DIR *d = opendir(runs_dir);
    if (!d)
        return 0;
    struct dirent *de;
    int rc = 0;
    while (!rc && (de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".json") || de->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", runs_dir, de->d_name);
        rc = run_knobs(&w, path);
    }
    closedir(d);
    return rc ? rc : w.emitted;
}

/* ---- what changed ---------------------------------------------------------------------- */

static double two_digits(double x)
{
    if (x == 0 || !isfinite(x))
        return x;
    double mag = pow(10, floor(log10(fabs(x))) - 1);
    return round(x / mag) * mag;
}

uint64_t mesh_pub_hash(const mesh_wisdom_rec *r, char *key, size_t keylen)
{
    crypto_generichash_state st;
    uint64_t h = 0;
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const uint8_t *)&r->kind, sizeof r->kind);
    crypto_generichash_update(&st, (const uint8_t *)r->host.service, strlen(r->host.service) + 1);
    if (r->kind == MESH_WISDOM_BASELINE) {
        snprintf(key, keylen, "baseline/%s/%s", r->host.service, r->base.metric);
        crypto_generichash_update(&st, (const uint8_t *)r->base.metric, strlen(r->base.metric) + 1);
        double v[6] = {floor(log2((double)r->base.count)), two_digits(r->base.mean), two_digits(r->base.stddev),
                       two_digits(r->base.p05), two_digits(r->base.p50), two_digits(r->base.p95)};
        crypto_generichash_update(&st, (const uint8_t *)v, sizeof v);
    } else if (r->kind == MESH_WISDOM_KNOBS) {
        snprintf(key, keylen, "knobs/%s/%s", r->host.service, r->knobs.objective);
        crypto_generichash_update(&st, (const uint8_t *)r->knobs.objective, strlen(r->knobs.objective) + 1);
        for (int i = 0; i < r->knobs.nknobs; i++) {
            crypto_generichash_update(&st, (const uint8_t *)r->knobs.knobs[i].name,
                                      strlen(r->knobs.knobs[i].name) + 1);
            crypto_generichash_update(&st, (const uint8_t *)r->knobs.knobs[i].value,
                                      strlen(r->knobs.knobs[i].value) + 1);
        }
        double v[3] = {r->knobs.gain, r->knobs.lo, r->knobs.hi};
        crypto_generichash_update(&st, (const uint8_t *)v, sizeof v);
        crypto_generichash_update(&st, (const uint8_t *)&r->knobs.runs, sizeof r->knobs.runs);
    } else {
        snprintf(key, keylen, "%d", (int)r->kind);
    }
    crypto_generichash_final(&st, (uint8_t *)&h, sizeof h);
    return h;
}
