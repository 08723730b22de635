/* cmd_show.c: `ippoc show METRIC` — a terminal sparkline per series of a
 * family (or of one exact key) over a time range, with min/mean/max/last in
 * human units, the range, step and the store tier that answered.
 * Reads GET /v1/metrics/{METRIC}?from&to&step. When --step is not given the
 * step is chosen so that one point fills one column of the sparkline. */
#include "cli/cli.h"

#include "core/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WIDTH_MAX 1000

typedef struct show_opts {
    const char *metric;
    const char *since, *until, *step;
    int64_t from_ms, to_ms, step_ms; /* step_ms 0: not given */
    int width;
    bool ascii;
} show_opts;

/* ---- sparkline ------------------------------------------------------------------ */

static const char *const blocks[8] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
static const char ascii_levels[8] = {'_', '.', '-', ':', '=', '+', '*', '#'};

/* Count-weighted mean of the points in each column; NaN where none. */
static void column_means(const cli_point *pts, size_t n, int64_t from, int64_t to, int width,
                         double *col)
{
    double *w = calloc((size_t)width, sizeof *w);
    for (int c = 0; c < width; c++)
        col[c] = 0;
    for (size_t i = 0; w && i < n; i++) {
        if (isnan(pts[i].mean))
            continue;
        int64_t c = (pts[i].ts - from) * width / (to - from);
        c = c < 0 ? 0 : c >= width ? width - 1 : c;
        double k = pts[i].count > 0 ? pts[i].count : 1;
        col[c] += pts[i].mean * k;
        w[c] += k;
    }
    for (int c = 0; c < width; c++)
        col[c] = (w && w[c] > 0) ? col[c] / w[c] : NAN;
    free(w);
}

static int level_of(double v, double lo, double hi)
{
    if (!(hi > lo))
        return v == 0 ? 0 : 3; /* flat line: bottom when zero, else middle */
    int l = (int)floor((v - lo) / (hi - lo) * 8.0);
    return l < 0 ? 0 : l > 7 ? 7 : l;
}

static void auto_scale(const double *col, int width, double *lo, double *hi)
{
    double a = INFINITY, b = -INFINITY;
    for (int c = 0; c < width; c++)
        if (!isnan(col[c])) {
            a = col[c] < a ? col[c] : a;
            b = col[c] > b ? col[c] : b;
        }
    if (isnan(*lo))
        *lo = a;
    if (isnan(*hi))
        *hi = b;
}

int cli_sparkline(const cli_point *pts, size_t n, int64_t from_ms, int64_t to_ms, int width,
                  double lo, double hi, bool ascii, char *buf, size_t bufsz)
{
    size_t len = 0;
    if (bufsz == 0)
        return 0;
    buf[0] = '\0';
    if (width <= 0 || to_ms <= from_ms)
        return 0;
    double *col = malloc((size_t)width * sizeof *col);
    if (!col)
        return 0;
    column_means(pts, n, from_ms, to_ms, width, col);
    auto_scale(col, width, &lo, &hi);
    int c;
    for (c = 0; c < width; c++) {
        const char *s = " ";
        char a[2] = {0};
        if (!isnan(col[c])) {
            int l = level_of(col[c], lo, hi);
            a[0] = ascii_levels[l];
            s = ascii ? a : blocks[l];
        }
        size_t sl = strlen(s);
        if (len + sl + 1 > bufsz)
            break;
        memcpy(buf + len, s, sl + 1);
        len += sl;
    }
    while (len > 0 && buf[len - 1] == ' ') /* no trailing blanks */
        buf[--len] = '\0';
    free(col);
    return c;
}

/* ---- reading the answer ----------------------------------------------------------- */

static double num_at(const json_t *a, size_t i)
{
    const json_t *v = json_array_get(a, i);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* A point as [ts_ms, mean, min, max, count] or {"ts","mean","min","max","count"}. */
static bool parse_point(const json_t *p, cli_point *out)
{
    if (json_is_array(p)) {
        out->ts = (int64_t)num_at(p, 0);
        out->mean = num_at(p, 1);
        out->min = num_at(p, 2);
        out->max = num_at(p, 3);
        out->count = num_at(p, 4);
    } else if (json_is_object(p)) {
        out->ts = cli_json_time_ms(json_object_get(p, "ts"));
        out->mean = cli_jnum(p, "mean", NAN);
        out->min = cli_jnum(p, "min", NAN);
        out->max = cli_jnum(p, "max", NAN);
        out->count = cli_jnum(p, "count", NAN);
    } else {
        return false;
    }
    if (isnan(out->min))
        out->min = out->mean;
    if (isnan(out->max))
        out->max = out->mean;
    return !isnan(out->mean);
}

static cli_point *parse_points(const json_t *series, size_t *n)
{
    const json_t *arr = json_object_get(series, "points");
    size_t cap = json_array_size(arr), i;
    json_t *p;
    cli_point *pts = calloc(cap ? cap : 1, sizeof *pts);
    *n = 0;
    if (!pts)
        return NULL;
    json_array_foreach(arr, i, p)
        if (parse_point(p, &pts[*n]))
            (*n)++;
    return pts;
}

typedef struct stats {
    double min, max, mean, last;
} stats;

static stats compute_stats(const cli_point *pts, size_t n)
{
    stats s = {INFINITY, -INFINITY, NAN, NAN};
    double sum = 0, w = 0;
    for (size_t i = 0; i < n; i++) {
        double k = pts[i].count > 0 ? pts[i].count : 1;
        s.min = pts[i].min < s.min ? pts[i].min : s.min;
        s.max = pts[i].max > s.max ? pts[i].max : s.max;
        sum += pts[i].mean * k;
        w += k;
        s.last = pts[i].mean;
    }
    if (n == 0)
        s.min = s.max = NAN;
    else
        s.mean = sum / w;
    return s;
}

/* ---- printing ---------------------------------------------------------------------- */

/* Smallest spacing of consecutive points: a coarser store tier than the step
 * asked for gives sparser points, and one column per point reads better. */
static int64_t min_gap_ms(const cli_point *pts, size_t n)
{
    int64_t gap = 0;
    for (size_t i = 1; i < n; i++) {
        int64_t d = pts[i].ts - pts[i - 1].ts;
        if (d > 0 && (gap == 0 || d < gap))
            gap = d;
    }
    return gap;
}

/* Columns for a range: at most `width`, at most one per step. */
static int fit_width(int width, int64_t from, int64_t to, int64_t step)
{
    if (step > 0 && (to - from + step - 1) / step < width)
        width = (int)((to - from + step - 1) / step);
    return width < 1 ? 1 : width;
}

static void print_series(const json_t *series, const char *dflt_unit, const show_opts *o,
                         int64_t from, int64_t to, int width)
{
    char key[1024], line[WIDTH_MAX * 4 + 1], v[4][64];
    size_t n;
    const char *unit = cli_jstr(series, "unit", dflt_unit);
    cli_point *pts = parse_points(series, &n);
    cli_fmt_key(series, key, sizeof key);
    printf("\n%s\n", key);
    if (!pts || n == 0) {
        printf("  (no data in this range)\n");
        free(pts);
        return;
    }
    int64_t gap = min_gap_ms(pts, n);
    width = fit_width(width, from, to, gap > o->step_ms ? gap : o->step_ms);
    cli_sparkline(pts, n, from, to, width, NAN, NAN, o->ascii, line, sizeof line);
    stats s = compute_stats(pts, n);
    cli_fmt_value(s.min, unit, v[0], sizeof v[0]);
    cli_fmt_value(s.mean, unit, v[1], sizeof v[1]);
    cli_fmt_value(s.max, unit, v[2], sizeof v[2]);
    cli_fmt_value(s.last, unit, v[3], sizeof v[3]);
    printf("  %s\n", line);
    printf("  min %s  mean %s  max %s  last %s  (%zu points)\n", v[0], v[1], v[2], v[3], n);
    free(pts);
}

/* The answer's step, in ms (the API gives ms; seconds are accepted too). */
static int64_t answer_step_ms(const json_t *ans, int64_t dflt)
{
    double st = cli_jnum(ans, "step", NAN);
    double from = cli_jnum(ans, "from", NAN);
    if (isnan(st) || st <= 0)
        return dflt;
    return (!isnan(from) && from < 1e11) ? (int64_t)(st * 1000) : (int64_t)st;
}

static void print_header(const json_t *ans, const show_opts *o, int64_t from, int64_t to,
                         int64_t step, size_t nseries)
{
    char a[64], b[64], span[32], st[32];
    cli_fmt_time(from, a, sizeof a);
    cli_fmt_time(to, b, sizeof b);
    cli_fmt_duration(to - from, span, sizeof span);
    cli_fmt_duration(step, st, sizeof st);
    printf("%s: %zu series, %s to %s (%s), step %s, source %s\n",
           cli_jstr(ans, "name", o->metric), nseries, a, b, span, st,
           cli_jstr(ans, "source", "?"));
}

static void print_show(const json_t *ans, const show_opts *o)
{
    int64_t from = cli_json_time_ms(json_object_get(ans, "from"));
    int64_t to = cli_json_time_ms(json_object_get(ans, "to"));
    const json_t *list = json_object_get(ans, "series");
    size_t i;
    json_t *s;
    if (from <= 0 || to <= from) {
        from = o->from_ms;
        to = o->to_ms;
    }
    show_opts eff = *o;
    eff.step_ms = answer_step_ms(ans, o->step_ms);
    print_header(ans, o, from, to, eff.step_ms, json_array_size(list));
    json_array_foreach(list, i, s)
        print_series(s, cli_jstr(ans, "unit", ""), &eff, from, to, o->width);
}

/* ---- options --------------------------------------------------------------------- */

static int default_width(void)
{
    int w = cli_term_width();
    if (w <= 0)
        return 60;
    w -= 2; /* indent */
    return w < 10 ? 10 : w > WIDTH_MAX ? WIDTH_MAX : w;
}

static int parse_opt(cli_args *a, show_opts *o, cli_ctx *ctx)
{
    const char *w = NULL;
    int r;
    if (cli_args_flag(a, "--json"))
        ctx->json = true;
    else if (cli_args_flag(a, "--ascii"))
        o->ascii = true;
    else if ((r = cli_args_value(a, "--since", &o->since)) != 0 ||
             (r = cli_args_value(a, "--until", &o->until)) != 0 ||
             (r = cli_args_value(a, "--step", &o->step)) != 0)
        return r < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    else if ((r = cli_args_value(a, "--width", &w)) != 0) {
        long v;
        if (r < 0 || cli_check_int("--width", w, 1, WIDTH_MAX, &v) != CLI_EXIT_OK)
            return CLI_EXIT_USAGE;
        o->width = (int)v;
    } else if (cli_args_positional(a) && !o->metric)
        o->metric = a->argv[a->i];
    else
        return cli_args_bad(a);
    return CLI_EXIT_OK;
}

static int check_opts(show_opts *o)
{
    int64_t now = core_now_ms();
    if (!o->metric) {
        fprintf(stderr, "ippoc: show: missing METRIC (see 'ippoc help show')\n");
        return CLI_EXIT_USAGE;
    }
    if (cli_check_time("--since", o->since, now, &o->from_ms) != CLI_EXIT_OK ||
        cli_check_time("--until", o->until, now, &o->to_ms) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    if (o->step && cli_check_duration("--step", o->step, &o->step_ms) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    if (o->step_ms % 1000 != 0) {
        fprintf(stderr, "ippoc: --step: bad step '%s' (expected whole seconds, e.g. 10s, 1m)\n",
                o->step);
        return CLI_EXIT_USAGE;
    }
    if (o->from_ms >= o->to_ms) {
        fprintf(stderr, "ippoc: --since: '%s' is not before --until '%s'\n", o->since, o->until);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

static int parse_show(cli_args *a, show_opts *o, cli_ctx *ctx)
{
    while (cli_args_next(a)) {
        if (cli_args_is_help(a))
            return -1;
        int rc = parse_opt(a, o, ctx);
        if (rc != CLI_EXIT_OK)
            return rc;
    }
    return check_opts(o);
}

/* One step per sparkline column, whole seconds, at least 1 s. */
static void auto_step(show_opts *o, char *buf, size_t n)
{
    int64_t span = o->to_ms - o->from_ms;
    int64_t s = (span / o->width + 999) / 1000;
    o->step_ms = (s < 1 ? 1 : s) * 1000;
    snprintf(buf, n, "%llds", (long long)(o->step_ms / 1000));
}

int cmd_show(const cli_ctx *ctx0, int argc, char **argv)
{
    cli_ctx ctx = *ctx0;
    show_opts o = {.since = "10m", .until = "now", .ascii = !cli_locale_utf8()};
    cli_args a;
    char step[32];
    cli_url u;
    json_t *ans;
    cli_args_init(&a, "show", argc, argv);
    int rc = parse_show(&a, &o, &ctx);
    if (rc < 0)
        return cli_args_help(&a);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (o.width == 0)
        o.width = default_width();
    if (!o.step)
        auto_step(&o, step, sizeof step);
    cli_url_init(&u, "/v1/metrics/");
    cli_url_append_escaped(&u, o.metric);
    cli_url_param(&u, "from", o.since);
    cli_url_param(&u, "to", o.until);
    cli_url_param(&u, "step", o.step ? o.step : step);
    if (u.overflow) {
        fprintf(stderr, "ippoc: show: METRIC is too long\n");
        return CLI_EXIT_USAGE;
    }
    if ((rc = cli_http_get_json(&ctx, u.buf, &ans, NULL)) != CLI_EXIT_OK)
        return rc;
    if (ctx.json)
        cli_print_json(ans);
    else
        print_show(ans, &o);
    json_decref(ans);
    return CLI_EXIT_OK;
}
