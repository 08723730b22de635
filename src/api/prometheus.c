/* prometheus.c: GET /metrics in the Prometheus text exposition format 0.0.4.
 *
 * Each series family becomes `ippoc_<family>` (characters Prometheus does not
 * allow mapped to '_'), with # HELP and # TYPE lines, then one sample line per
 * series holding its last value; series without a value (NaN) are left out.
 * Output is sorted by metric name then labels and built into one growing
 * buffer: no allocation per line. A few ippocd self metrics follow, then
 * (api_prom_render_anomaly) the anomaly score of every watched series.
 * The handler that feeds it from the store is in api_metrics.c. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

#define PROM_NAME_MAX 256

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

/* ---- exposition ------------------------------------------------------------ */
typedef struct prom_row {
    const mem_series_info *s;
    char name[PROM_NAME_MAX];
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

static void put_escaped(api_buf *b, const char *s, bool quote)
{
    /* Copy runs without specials in one go. */
    const char *run = s;
    for (; *s; s++) {
        const char *rep = NULL;
        if (*s == '\\')
            rep = "\\\\";
        else if (*s == '\n')
            rep = "\\n";
        else if (quote && *s == '"')
            rep = "\\\"";
        if (!rep)
            continue;
        api_buf_add(b, run, (size_t)(s - run));
        api_buf_add(b, rep, 2);
        run = s + 1;
    }
    api_buf_add(b, run, (size_t)(s - run));
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
        put_escaped(b, l[i].value, true);
        api_buf_add(b, "\"", 1);
    }
    api_buf_add(b, "}", 1);
}

static void put_family_head(api_buf *b, const char *name, const char *help, const char *type)
{
    api_buf_puts(b, "# HELP ");
    api_buf_puts(b, name);
    api_buf_add(b, " ", 1);
    put_escaped(b, help && help[0] ? help : "(no help)", false);
    api_buf_puts(b, "\n# TYPE ");
    api_buf_puts(b, name);
    api_buf_add(b, " ", 1);
    api_buf_puts(b, type);
    api_buf_add(b, "\n", 1);
}

static bool has_family(const prom_row *rows, size_t n, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(rows[mid].name, name);
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static void put_self(api_buf *b, const prom_row *rows, size_t n, const char *name, const char *type,
                     const char *help, const char *labels, double v)
{
    if (has_family(rows, n, name)) /* a sensed family already uses the name */
        return;
    char val[40];
    api_prom_value(v, val, sizeof val);
    put_family_head(b, name, help, type);
    api_buf_printf(b, "%s%s %s\n", name, labels, val);
}

int api_prom_render(api_buf *b, const mem_series_info *s, size_t n, const mem_stats *st)
{
    prom_row *rows = n ? malloc(n * sizeof *rows) : NULL;
    api_label *l = malloc(API_MAX_LABELS * sizeof *l);
    if ((n && !rows) || !l) {
        free(rows);
        free(l);
        b->oom = true;
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        rows[i].s = &s[i];
        api_prom_name(s[i].name, rows[i].name, sizeof rows[i].name);
    }
    if (n)
        qsort(rows, n, sizeof *rows, row_cmp);
    api_buf_reserve(b, n * 96 + 1024);

    const char *head = NULL; /* family whose HELP/TYPE is out */
    const prom_row *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        const prom_row *r = &rows[i];
        if (isnan(r->s->last))
            continue;
        if (prev && same_series(prev, r) == 0)
            continue; /* two families mapped onto one name with the same labels */
        if (!head || strcmp(head, r->name) != 0) {
            put_family_head(b, r->name, r->s->help, "gauge");
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
        put_self(b, rows, n, "ippoc_build_info", "gauge", "ippocd build information", lab, 1);
        put_self(b, rows, n, "ippoc_memory_series", "gauge", "Series held by the memory store", "",
                 st->nseries);
        put_self(b, rows, n, "ippoc_memory_samples_total", "counter", "Samples put into memory", "",
                 (double)st->samples);
        put_self(b, rows, n, "ippoc_memory_rows_written_total", "counter",
                 "Rows committed by the memory writer", "", (double)st->rows_written);
        put_self(b, rows, n, "ippoc_memory_dropped_batches_total", "counter",
                 "Writer batches dropped because the disk was too slow", "", (double)st->dropped_batches);
        put_self(b, rows, n, "ippoc_memory_queue_depth", "gauge", "Batches waiting for the writer", "",
                 st->queue_depth);
        put_self(b, rows, n, "ippoc_memory_db_bytes", "gauge", "Size of the memory database", "",
                 (double)st->db_bytes);
    }
    free(rows);
    free(l);
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
    if (n == 0)
        return 0;
    api_anomaly_score *sorted = malloc(n * sizeof *sorted);
    api_label *l = malloc(API_MAX_LABELS * sizeof *l);
    if (!sorted || !l) {
        free(sorted);
        free(l);
        b->oom = true;
        return -ENOMEM;
    }
    memcpy(sorted, s, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, score_cmp);
    api_buf_reserve(b, n * 120 + 256);
    put_family_head(b, "ippoc_anomaly_score",
                    "Anomaly score of the series named by metric with the same labels: 0 usual .. 1 most "
                    "unusual; at or above the [detect] threshold it is anomalous", "gauge");
    for (size_t i = 0; i < n; i++) {
        const api_anomaly_score *r = &sorted[i];
        char err[64], val[40];
        int nl = r->labels && r->labels[0] ? api_labels_parse(r->labels, l, API_MAX_LABELS, err, sizeof err) : 0;
        api_buf_puts(b, "ippoc_anomaly_score{metric=\"");
        put_escaped(b, r->name ? r->name : "", true);
        api_buf_add(b, "\"", 1);
        for (int k = 0; k < nl; k++) {
            char ln[API_LABEL_MAX + 16];
            api_prom_label_name(l[k].name, ln, sizeof ln);
            api_buf_puts(b, !strcmp(ln, "metric") ? ",exported_" : ",");
            api_buf_puts(b, ln);
            api_buf_add(b, "=\"", 2);
            put_escaped(b, l[k].value, true);
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
