/* prometheus.c: GET /metrics in the Prometheus text exposition format 0.0.4,
 * IPPOC's own part (ippoc_*), following Prometheus' naming rules so that
 * `promtool check metrics` has nothing to say.
 *
 * Host metrics are node_exporter's families (rendered elsewhere), so the
 * sensed series are not all re-exported: prom_table below lists the families
 * exported, under which name and type; every family not listed (cpu, memory,
 * disk, net, ...: node_exporter has them) and every rate or percentage
 * (kind MEM_RATE, unit "percent": they stay in the JSON API and the CLI) is
 * left out. Each exported family gets # HELP and # TYPE lines, then one
 * sample per series holding its last value (NaN: left out), sorted by name
 * then labels, built into one growing buffer (no allocation per line).
 * Then ippocd's self metrics (api_prom_render, api_prom_self), the heal
 * counters (api_prom_render_services) and the anomaly scores of the series
 * anomalous now (api_prom_render_anomaly). The handler is in api_metrics.c. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

static bool prom_ok(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' && c <= '9');
}

void api_prom_name(const char *family, char *out, size_t n)
{
    static const char prefix[] = "ippoc_";
    if (n == 0)
        return;
    size_t o = 0;
    for (size_t i = 0; prefix[i] && o + 1 < n; i++)
        out[o++] = prefix[i];
    for (size_t i = 0; family && family[i] && o + 1 < n; i++)
        out[o++] = prom_ok(family[i], false) ? family[i] : '_';
    out[o] = 0;
}

void api_prom_label_name(const char *in, char *out, size_t n)
{
    if (n == 0)
        return;
    size_t o = 0;
    if (!prom_ok(in[0], true) && o + 1 < n)
        out[o++] = '_';
    for (size_t i = 0; in[i] && o + 1 < n; i++)
        out[o++] = prom_ok(in[i], false) ? in[i] : '_';
    out[o] = 0;
}

void api_prom_value(double v, char *buf, size_t n)
{
    if (isnan(v)) {
        snprintf(buf, n, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, n, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    /* Shortest of %.15g / %.17g that reads back exactly. */
    snprintf(buf, n, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, n, "%.17g", v);
}

/* ---- what is exported ------------------------------------------------------ */
/* family -> exported name and type; name NULL: not exported (a rate or a
 * percentage). Families absent from the table are not exported either. */
typedef struct prom_map {
    const char *family, *name, *type;
} prom_map;

static const prom_map prom_table[] = {
    /* watched processes ([sense.process] watch) */
    {"process.rss_bytes", "ippoc_process_resident_memory_bytes", "gauge"},
    {"process.vsize_bytes", "ippoc_process_virtual_memory_bytes", "gauge"},
    {"process.threads", "ippoc_process_threads", "gauge"},
    {"process.fds", "ippoc_process_open_fds", "gauge"},
    {"process.state", "ippoc_process_state", "gauge"},
    {"process.count", "ippoc_process_matching", "gauge"},
    {"process.cpu_percent", NULL, NULL},
    {"process.io_read_bytes_per_second", NULL, NULL},
    {"process.io_write_bytes_per_second", NULL, NULL},
    {"process.minor_faults_per_second", NULL, NULL},
    {"process.major_faults_per_second", NULL, NULL},
    /* applications ([sense.apps]) */
    {"apps.memory_rss_bytes", "ippoc_app_resident_memory_bytes", "gauge"},
    {"apps.processes", "ippoc_app_processes", "gauge"},
    {"apps.threads", "ippoc_app_threads", "gauge"},
    {"apps.fds", "ippoc_app_open_fds", "gauge"},
    {"apps.cpu_percent", NULL, NULL},
    {"apps.cpu_user_percent", NULL, NULL},
    {"apps.cpu_system_percent", NULL, NULL},
    {"apps.minor_faults_per_second", NULL, NULL},
    {"apps.major_faults_per_second", NULL, NULL},
    {"apps.read_bytes_per_second", NULL, NULL},
    {"apps.write_bytes_per_second", NULL, NULL},
    /* watched cgroups ([sense.cgroup]) */
    {"cgroup.memory_current_bytes", "ippoc_cgroup_memory_bytes", "gauge"},
    {"cgroup.memory_max_bytes", "ippoc_cgroup_memory_max_bytes", "gauge"},
    {"cgroup.memory_anon_bytes", "ippoc_cgroup_memory_anon_bytes", "gauge"},
    {"cgroup.memory_file_bytes", "ippoc_cgroup_memory_file_bytes", "gauge"},
    {"cgroup.pids_current", "ippoc_cgroup_tasks", "gauge"},
    {"cgroup.cpu_percent", NULL, NULL},
    {"cgroup.cpu_throttled_percent", NULL, NULL},
    {"cgroup.cpu_throttled_periods_per_second", NULL, NULL},
    {"cgroup.io_read_bytes_per_second", NULL, NULL},
    {"cgroup.io_write_bytes_per_second", NULL, NULL},
    {"cgroup.pressure_some_avg10_percent", NULL, NULL},
    /* ippocd itself ([sense.self]) */
    {"self.rss_bytes", "ippoc_self_resident_memory_bytes", "gauge"},
    {"self.threads", "ippoc_self_threads", "gauge"},
    {"self.fds", "ippoc_self_open_fds", "gauge"},
    {"self.cpu_percent", NULL, NULL}, /* ippoc_self_cpu_seconds_total instead (api_metrics.c) */
};

static const prom_map *prom_lookup(const char *family)
{
    for (size_t i = 0; family && i < sizeof prom_table / sizeof prom_table[0]; i++)
        if (!strcmp(prom_table[i].family, family))
            return &prom_table[i];
    return NULL;
}

const char *api_prom_export_name(const char *family, int kind, const char *unit, const char **type)
{
    const prom_map *m = prom_lookup(family);
    if (!m || !m->name || kind == MEM_RATE || (unit && !strcmp(unit, "percent")))
        return NULL;
    if (type)
        *type = m->type;
    return m->name;
}

/* ---- exposition ------------------------------------------------------------ */
typedef struct prom_row {
    const mem_series_info *s;
    const char *name, *type;
} prom_row;

static int same_series(const prom_row *a, const prom_row *b)
{
    int c = strcmp(a->name, b->name);
    return c ? c : strcmp(a->s->labels ? a->s->labels : "", b->s->labels ? b->s->labels : "");
}

static int row_cmp(const void *x, const void *y)
{
    const prom_row *a = x, *b = y;
    int c = same_series(a, b);
    return c ? c : (a->s->id > b->s->id) - (a->s->id < b->s->id); /* deterministic ties */
}

static void buf_put(void *ud, const char *s, size_t n)
{
    api_buf_add(ud, s, n);
}

void api_prom_escape(api_buf *b, const char *s, bool quote)
{
    core_prom_escape(s, quote, buf_put, b);
}

static void put_labels(api_buf *b, const char *labels, api_label *l)
{
    char err[64];
    int n = labels && labels[0] ? api_labels_parse(labels, l, API_MAX_LABELS, err, sizeof err) : 0;
    if (n <= 0)
        return;
    api_buf_add(b, "{", 1);
    for (int i = 0; i < n; i++) {
        char ln[API_LABEL_MAX + 2];
        api_prom_label_name(l[i].name, ln, sizeof ln);
        if (i)
            api_buf_add(b, ",", 1);
        api_buf_puts(b, ln);
        api_buf_add(b, "=\"", 2);
        api_prom_escape(b, l[i].value, true);
        api_buf_add(b, "\"", 1);
    }
    api_buf_add(b, "}", 1);
}

static void put_family_head(api_buf *b, const char *name, const char *help, const char *type)
{
    api_buf_puts(b, "# HELP ");
    api_buf_puts(b, name);
    api_buf_add(b, " ", 1);
    api_prom_escape(b, help && help[0] ? help : "(no help)", false);
    api_buf_puts(b, "\n# TYPE ");
    api_buf_puts(b, name);
    api_buf_add(b, " ", 1);
    api_buf_puts(b, type);
    api_buf_add(b, "\n", 1);
}

void api_prom_self(api_buf *b, const char *name, const char *type, const char *help, const char *labels,
                   double v)
{
    char val[40];
    api_prom_value(v, val, sizeof val);
    put_family_head(b, name, help, type);
    api_buf_printf(b, "%s%s %s\n", name, labels, val);
}

int64_t api_prom_stale_ms(const core_config *cfg)
{
    int64_t longest = cfg->sense_interval_ms;
    for (int i = 0; i < cfg->ngroups && i < CORE_SENSE_GROUPS; i++)
        if (cfg->groups[i].enabled && cfg->groups[i].interval_ms > longest)
            longest = cfg->groups[i].interval_ms;
    return longest * 3 > 10000 ? longest * 3 : 10000;
}

int api_prom_render(api_buf *b, const mem_series_info *s, size_t n, const mem_stats *st,
                    int64_t stale_before_ms)
{
    prom_row *rows = n ? malloc(n * sizeof *rows) : NULL;
    api_label *l = malloc(API_MAX_LABELS * sizeof *l);
    if ((n && !rows) || !l) {
        free(rows);
        free(l);
        b->oom = true;
        return -ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *type = NULL;
        const char *name = api_prom_export_name(s[i].name, s[i].kind, s[i].unit, &type);
        if (name && !isnan(s[i].last) && s[i].last_ts >= stale_before_ms)
            rows[k++] = (prom_row){&s[i], name, type};
    }
    if (k)
        qsort(rows, k, sizeof *rows, row_cmp);
    api_buf_reserve(b, k * 96 + 2048);

    const char *head = NULL; /* family whose HELP/TYPE is out */
    const prom_row *prev = NULL;
    for (size_t i = 0; i < k; i++) {
        const prom_row *r = &rows[i];
        if (prev && same_series(prev, r) == 0)
            continue; /* the same series twice (cannot happen: one id per name and labels) */
        if (!head || strcmp(head, r->name) != 0) {
            put_family_head(b, r->name, r->s->help, r->type);
            head = r->name;
        }
        char val[40];
        api_prom_value(r->s->last, val, sizeof val);
        api_buf_puts(b, r->name);
        put_labels(b, r->s->labels, l);
        api_buf_add(b, " ", 1);
        api_buf_puts(b, val);
        api_buf_add(b, "\n", 1);
        prev = r;
    }
    if (st) {
        char lab[96];
        snprintf(lab, sizeof lab, "{version=\"%s\"}", IPPOC_VERSION);
        api_prom_self(b, "ippoc_build_info", "gauge", "ippocd build information (always 1)", lab, 1);
        api_prom_self(b, "ippoc_memory_series", "gauge", "Series held by the memory store", "", st->nseries);
        api_prom_self(b, "ippoc_memory_samples_total", "counter", "Samples put into memory", "",
                      (double)st->samples);
        api_prom_self(b, "ippoc_memory_rows_written_total", "counter", "Rows committed by the memory writer", "",
                      (double)st->rows_written);
        api_prom_self(b, "ippoc_memory_dropped_batches_total", "counter",
                      "Writer batches dropped because the disk was too slow", "", (double)st->dropped_batches);
        api_prom_self(b, "ippoc_memory_queue_batches", "gauge", "Batches waiting for the writer", "",
                      st->queue_depth);
        api_prom_self(b, "ippoc_memory_db_bytes", "gauge", "Size of the memory database", "",
                      (double)st->db_bytes);
    }
    free(rows);
    free(l);
    return b->oom ? -ENOMEM : 0;
}

/* ---- heal ------------------------------------------------------------------ */
/* One family over the services of a services_json answer: restarts (a
 * counter) or up (state "running"). */
static void put_services(api_buf *b, json_t *arr, bool restarts)
{
    size_t i;
    json_t *sv;
    bool head = false;
    json_array_foreach(arr, i, sv) {
        const char *name = json_string_value(json_object_get(sv, "name"));
        const char *state = json_string_value(json_object_get(sv, "state"));
        json_t *r = json_object_get(sv, "restarts");
        if (!name || (restarts && !json_is_integer(r)))
            continue;
        if (!head)
            put_family_head(b, restarts ? "ippoc_service_restarts_total" : "ippoc_service_up",
                            restarts ? "Restarts of the service by ippocd since it started"
                                     : "1 when the service is running, else 0",
                            restarts ? "counter" : "gauge");
        head = true;
        api_buf_puts(b, restarts ? "ippoc_service_restarts_total{service=\"" : "ippoc_service_up{service=\"");
        api_prom_escape(b, name, true);
        if (restarts)
            api_buf_printf(b, "\"} %lld\n", (long long)json_integer_value(r));
        else
            api_buf_printf(b, "\"} %d\n", state && !strcmp(state, "running"));
    }
}

int api_prom_render_services(api_buf *b, const char *services_json)
{
    json_t *o = services_json ? json_loads(services_json, 0, NULL) : NULL;
    json_t *arr = json_object_get(o, "services");
    if (json_is_array(arr) && json_array_size(arr)) {
        put_services(b, arr, true);
        put_services(b, arr, false);
    }
    json_decref(o);
    return b->oom ? -ENOMEM : 0;
}

/* ---- anomaly scores ------------------------------------------------------------ */
static int score_cmp(const void *x, const void *y)
{
    const api_anomaly_score *a = x, *b = y;
    int c = strcmp(a->name ? a->name : "", b->name ? b->name : "");
    return c ? c : strcmp(a->labels ? a->labels : "", b->labels ? b->labels : "");
}

int api_prom_render_anomaly(api_buf *b, const api_anomaly_score *s, size_t n)
{
    size_t na = 0;
    for (size_t i = 0; i < n; i++)
        na += s[i].anomalous;
    api_prom_self(b, "ippoc_anomalous_series", "gauge",
                  "Series anomalous now: from their first sample at or above the threshold until "
                  "keep_firing_for after the last", "", (double)na);
    if (na == 0)
        return b->oom ? -ENOMEM : 0;
    api_anomaly_score *sorted = malloc(na * sizeof *sorted);
    api_label *l = malloc(API_MAX_LABELS * sizeof *l);
    if (!sorted || !l) {
        free(sorted);
        free(l);
        b->oom = true;
        return -ENOMEM;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i].anomalous)
            sorted[m++] = s[i];
    qsort(sorted, na, sizeof *sorted, score_cmp);
    api_buf_reserve(b, na * 120 + 256);
    put_family_head(b, "ippoc_anomaly_score",
                    "Anomaly score of the series named by metric with the same labels, while it is anomalous "
                    "(0 usual .. 1 most unusual); only series anomalous now are listed", "gauge");
    for (size_t i = 0; i < na; i++) {
        const api_anomaly_score *r = &sorted[i];
        char err[64], val[40];
        int nl = r->labels && r->labels[0] ? api_labels_parse(r->labels, l, API_MAX_LABELS, err, sizeof err) : 0;
        api_buf_puts(b, "ippoc_anomaly_score{metric=\"");
        api_prom_escape(b, r->name ? r->name : "", true);
        api_buf_add(b, "\"", 1);
        for (int k = 0; k < nl; k++) {
            char ln[API_LABEL_MAX + 16];
            api_prom_label_name(l[k].name, ln, sizeof ln);
            api_buf_puts(b, !strcmp(ln, "metric") ? ",exported_" : ",");
            api_buf_puts(b, ln);
            api_buf_add(b, "=\"", 2);
            api_prom_escape(b, l[k].value, true);
            api_buf_add(b, "\"", 1);
        }
        api_prom_value(r->score, val, sizeof val);
        api_buf_puts(b, "} ");
        api_buf_puts(b, val);
        api_buf_add(b, "\n", 1);
    }
    free(sorted);
    free(l);
    return b->oom ? -ENOMEM : 0;
}
