/* api_metrics.c: GET /v1/metrics (the list of series, ?match=GLOB on the
 * family name) and GET /v1/metrics/{name} (points of a family, or of one
 * series given as its full key name{labels}, over ?from&to&step), and
 * GET /metrics, which renders IPPOC's own families through prometheus.c
 * (exported sensed series, self metrics, heal counters from services_json,
 * and the anomalous series' scores through api_anomaly.c). */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "api/api_int.h"

static json_t *series_head(const mem_series_info *s)
{
    json_t *o = json_object();
    char *key = api_series_key(s->name, s->labels);
    json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "labels", api_labels_json(s->labels));
    if (key)
        json_object_set_new(o, "key", json_string(key));
    free(key);
    json_object_set_new(o, "unit", json_string(s->unit ? s->unit : ""));
    return o;
}

enum MHD_Result api_h_metrics_list(struct api *a, struct MHD_Connection *c)
{
    static const char *const allowed[] = {"match", NULL};
    const char *vals[2];
    enum MHD_Result ret;
    if (!api_get_params(c, allowed, vals, &ret))
        return ret;
    mem_series_info *s = NULL;
    size_t n = 0;
    int rc = mem_series_snapshot(a->mem, &s, &n);
    if (rc < 0)
        return api_send_error(c, 500, "internal", "cannot read series: %s", strerror(-rc));
    json_t *arr = json_array();
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (vals[0] && fnmatch(vals[0], s[i].name, 0) != 0)
            continue;
        json_t *o = series_head(&s[i]);
        json_object_set_new(o, "help", json_string(s[i].help ? s[i].help : ""));
        json_object_set_new(o, "kind", json_string(s[i].kind == MEM_RATE ? "rate" : "gauge"));
        json_object_set_new(o, "last", api_real_or_null(s[i].last));
        json_object_set_new(o, "last_ts", json_integer(s[i].last_ts));
        json_array_append_new(arr, o);
        count++;
    }
    free(s);
    return api_send_json(c, 200, json_pack("{sosI}", "metrics", arr, "count", (json_int_t)count));
}

/* Series of the request: every series of a family, or the one of a key. */
static int select_series(struct api *a, const char *name, mem_series_info *s, size_t n,
                         size_t **out, size_t *nout, char *err, size_t errlen)
{
    size_t *sel = malloc((n ? n : 1) * sizeof *sel), k = 0;
    if (!sel)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s[i].name, name) == 0)
            sel[k++] = i;
    if (k == 0 && strchr(name, '{')) {
        char fam[512], labels[2048], canon[2048];
        if (api_split_key(name, fam, sizeof fam, labels, sizeof labels) != 0) {
            snprintf(err, errlen, "malformed series key");
            free(sel);
            return -EINVAL;
        }
        if (api_labels_canon(labels, canon, sizeof canon, err, errlen) != 0) {
            free(sel);
            return -EINVAL;
        }
        int id = mem_series_find(a->mem, fam, canon);
        for (size_t i = 0; id >= 0 && i < n; i++)
            if (s[i].id == id)
                sel[k++] = i;
        /* A store that kept labels in the order they were given: compare
         * canonical forms. */
        for (size_t i = 0; k == 0 && i < n; i++) {
            char other[2048], e2[64];
            if (strcmp(s[i].name, fam) == 0 &&
                api_labels_canon(s[i].labels, other, sizeof other, e2, sizeof e2) == 0 &&
                strcmp(other, canon) == 0)
                sel[k++] = i;
        }
    }
    *out = sel;
    *nout = k;
    return 0;
}

static json_t *points_json(const mem_point *p, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *row = json_array();
        json_array_append_new(row, json_integer((json_int_t)p[i].ts));
        json_array_append_new(row, api_real_or_null(p[i].mean));
        json_array_append_new(row, api_real_or_null(p[i].min));
        json_array_append_new(row, api_real_or_null(p[i].max));
        json_array_append_new(row, json_integer((json_int_t)p[i].count));
        json_array_append_new(arr, row);
    }
    return arr;
}

/* How many times max_points all series of one answer may hold together. */
#define API_FAMILY_POINTS_FACTOR 20

enum MHD_Result api_h_metric(struct api *a, struct MHD_Connection *c, const char *name)
{
    static const char *const allowed[] = {"from", "to", "step", NULL};
    const char *vals[4];
    enum MHD_Result ret;
    char err[256];
    if (!api_get_params(c, allowed, vals, &ret))
        return ret;
    int64_t now = core_now_ms(), from, to, step;
    int rr = api_parse_range(vals[0], vals[1], vals[2], now, &from, &to, &step, err, sizeof err);
    if (rr == API_STEP_BAD)
        return api_send_error(c, 400, "bad_step", "%s", err);
    if (rr != API_RANGE_OK)
        return api_send_error(c, 400, "bad_range", "%s", err);
    if (step && api_points_for(from, to, step) > a->max_points)
        return api_send_error(c, 400, "too_large",
                              "%lld points asked, at most %lld: use a larger step or a shorter range",
                              (long long)api_points_for(from, to, step), (long long)a->max_points);
    if (!step)
        step = api_auto_step(a, from, to, now);

    mem_series_info *s = NULL;
    size_t n = 0, *sel = NULL, nsel = 0;
    int rc = mem_series_snapshot(a->mem, &s, &n);
    if (rc < 0)
        return api_send_error(c, 500, "internal", "cannot read series: %s", strerror(-rc));
    rc = select_series(a, name, s, n, &sel, &nsel, err, sizeof err);
    if (rc < 0 || nsel == 0) {
        free(s);
        free(sel);
        if (rc == -ENOMEM)
            return api_send_error(c, 500, "internal", "out of memory");
        if (rc < 0)
            return api_send_error(c, 400, "bad_request", "series key: %s", err);
        return api_send_error(c, 404, "unknown_metric", "no metric named '%.200s'", name);
    }

    /* A family may hold many series: bound the whole answer too. */
    int64_t total = (int64_t)nsel * api_points_for(from, to, step);
    if (total > API_FAMILY_POINTS_FACTOR * a->max_points) {
        free(s);
        free(sel);
        return api_send_error(c, 400, "too_large",
                              "%zu series x %lld points is more than %lld in one answer: ask for one "
                              "series (name{labels}), a larger step or a shorter range",
                              nsel, (long long)api_points_for(from, to, step),
                              (long long)(API_FAMILY_POINTS_FACTOR * a->max_points));
    }

    json_t *series = json_array();
    int src = MEM_SRC_RAM;
    unsigned status = 200;
    const char *code = NULL;
    for (size_t i = 0; i < nsel && !code; i++) {
        const mem_series_info *si = &s[sel[i]];
        mem_point *p = NULL;
        size_t np = 0;
        err[0] = 0;
        rc = mem_query(a->mem, si->id, from, to, step, a->max_points, &p, &np, &src, err, sizeof err);
        if (rc < 0) {
            status = rc == -E2BIG ? 400 : rc == -EINVAL ? 400 : rc == -ENOENT ? 404 : 500;
            code = rc == -E2BIG ? "too_large" : rc == -EINVAL ? "bad_range"
                 : rc == -ENOENT ? "unknown_metric" : "internal";
            if (!err[0])
                snprintf(err, sizeof err, "query failed: %s", strerror(-rc));
            break;
        }
        json_t *o = series_head(si);
        json_object_set_new(o, "points", points_json(p, np));
        json_array_append_new(series, o);
        free(p);
    }
    free(s);
    free(sel);
    if (code) {
        json_decref(series);
        return api_send_error(c, status, code, "%s", err);
    }
    return api_send_json(c, 200,
                         json_pack("{sssIsIsIssso}", "name", name, "from", (json_int_t)from,
                                   "to", (json_int_t)to, "step", (json_int_t)api_effective_step(step, src),
                                   "source", mem_source_name(src), "series", series));
}

static void emit_node(void *ud, const char *text, size_t len)
{
    api_buf_add(ud, text, len);
}

/* ippocd's own CPU time: a counter Prometheus can rate(). */
static void prom_self_cpu(api_buf *b)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return;
    double sec = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                 ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
    api_prom_self(b, "ippoc_self_cpu_seconds_total", "counter", "CPU time used by ippocd (user and system)", "",
                  sec);
}

enum MHD_Result api_h_prometheus(struct api *a, struct MHD_Connection *c)
{
    enum MHD_Result ret;
    if (!api_no_params(c, &ret))
        return ret;
    mem_series_info *s = NULL;
    size_t n = 0;
    int rc = mem_series_snapshot(a->mem, &s, &n);
    if (rc < 0)
        return api_send_error(c, 500, "internal", "cannot read series: %s", strerror(-rc));
    mem_stats st;
    memset(&st, 0, sizeof st);
    mem_get_stats(a->mem, &st);
    api_buf b = {0};
    if (a->hooks.node_metrics && a->hooks.node_metrics(a->hooks.ud, emit_node, &b) < 0)
        b.oom = true;
    int64_t newest = 0; /* the last tick: staleness does not depend on the wall clock */
    for (size_t i = 0; i < n; i++)
        newest = s[i].last_ts > newest ? s[i].last_ts : newest;
    int64_t stale_ms = atomic_load(&a->prom_stale_ms);
    rc = api_prom_render(&b, s, n, &st, newest > stale_ms ? newest - stale_ms : 0);
    rc = rc ? rc : api_prom_gpu(&b, s, n);
    free(s);
    if (rc == 0)
        prom_self_cpu(&b);
    if (rc == 0 && a->hooks.services_json) {
        char *svc = a->hooks.services_json(a->hooks.ud);
        api_prom_render_services(&b, svc);
        free(svc);
    }
    if (rc == 0)
        api_prom_anomaly(a, &b);
    if (rc == 0 && a->hooks.mesh_metrics) { /* the mesh's families (api_mesh.c's hook) */
        char *mt = a->hooks.mesh_metrics(a->hooks.ud);
        if (mt)
            api_buf_puts(&b, mt);
        free(mt);
    }
    rc = rc ? rc : b.oom ? -ENOMEM : 0;
    if (rc < 0) {
        api_buf_free(&b);
        return api_send_error(c, 500, "internal", "out of memory");
    }
    if (!b.p) { /* nothing at all: still a valid (empty) exposition */
        b.p = strdup("");
        if (!b.p)
            return api_send_error(c, 500, "internal", "out of memory");
    }
    return api_send_buf(c, 200, b.p, b.len, "text/plain; version=0.0.4; charset=utf-8");
}
