/* cmd_anomalies.c: `ippoc anomalies [--all] [--json]` — what ippocd's
 * detectors find unusual now: a summary line, one row per anomalous series
 * (score now, peak of its anomalous stretch, the component that fired, value
 * and what was expected at the peak, the expected band, how far the value
 * left it, since when), then the recent episodes (their first mover, and the
 * metrics that turned anomalous together in onset order, with their peaks
 * and lags). --all adds every watched
 * series with its score and how many samples its detector learned from.
 * Reads GET /v1/anomalies[?all=1]; tolerates missing and extra fields. */
#include "cli/cli.h"

#include "core/core.h"

#include <math.h>
#include <string.h>

#define KEY_COLS 60
#define MEMBERS_COLS 100

static void num_cell(double v, const char *fmt, char *buf, size_t n)
{
    if (isnan(v))
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, fmt, v);
}

static void ago(int64_t ms, int64_t now, char *buf, size_t n)
{
    char d[32];
    if (ms <= 0) {
        snprintf(buf, n, "-");
        return;
    }
    cli_fmt_duration(now > ms ? (now - ms) / 1000 * 1000 : 0, d, sizeof d);
    snprintf(buf, n, "%s ago", d);
}

static void summary(const json_t *ans)
{
    double watched = cli_jnum(ans, "watched", 0), anom = cli_jnum(ans, "anomalous", 0);
    double over = cli_jnum(ans, "not_watched_over_max", 0), total = cli_jnum(ans, "episodes_total", 0);
    printf("%.0f anomalous of %.0f watched series (threshold %g), %.0f episode%s so far", anom, watched,
           cli_jnum(ans, "threshold", NAN), total, total == 1 ? "" : "s");
    if (over > 0)
        printf("; %.0f series not watched (max_metrics reached)", over);
    putchar('\n');
}

/* "3.0 .. 21.0" (with the unit), "-" when unknown. */
static void band_cell(double lo, double hi, const char *unit, char *buf, size_t n)
{
    char l[48], h[48];
    if (isnan(lo) || isnan(hi)) {
        snprintf(buf, n, "-");
        return;
    }
    cli_fmt_value(fabs(lo) < 1e-9 ? 0 : lo, unit, l, sizeof l); /* not "-0.0%" */
    cli_fmt_value(fabs(hi) < 1e-9 ? 0 : hi, unit, h, sizeof h);
    snprintf(buf, n, "%s .. %s", l, h);
}

/* "+8.5 (+710%)": band half-widths outside it, and the change vs expected;
 * "far above" past 1000 half-widths (a band of almost no width). */
static void departure_cell(double dep, double change, char *buf, size_t n)
{
    if (isnan(dep)) {
        snprintf(buf, n, "-");
        return;
    }
    if (fabs(dep) >= 1000) /* a band of (almost) no width */
        snprintf(buf, n, "far %s", dep > 0 ? "above" : "below");
    else if (isnan(change))
        snprintf(buf, n, "%+.1f", dep);
    else
        snprintf(buf, n, "%+.1f (%+.0f%%)", dep, change * 100);
}

static void anomaly_row(cli_table *t, const json_t *m, int64_t now)
{
    char key[KEY_COLS * 4 + 8], full[1024], score[16], peak[16], val[48], exp[48], since[48], band[112], dep[48];
    const char *unit = cli_jstr(m, "unit", "");
    cli_fmt_key(m, full, sizeof full);
    cli_fmt_cut(full, KEY_COLS, key, sizeof key);
    num_cell(cli_jnum(m, "score", NAN), "%.2f", score, sizeof score);
    num_cell(cli_jnum(m, "peak", NAN), "%.2f", peak, sizeof peak);
    cli_fmt_value(cli_jnum(m, "peak_value", NAN), unit, val, sizeof val);
    cli_fmt_value(cli_jnum(m, "peak_expected", NAN), unit, exp, sizeof exp);
    band_cell(cli_jnum(m, "peak_lo", NAN), cli_jnum(m, "peak_hi", NAN), unit, band, sizeof band);
    departure_cell(cli_jnum(m, "peak_departure", NAN), cli_jnum(m, "peak_change", NAN), dep, sizeof dep);
    ago(cli_json_time_ms(json_object_get(m, "since_ms")), now, since, sizeof since);
    const char *cells[] = {key, score, peak, cli_jstr(m, "peak_reason", "?"), val, exp, band, dep, since};
    cli_table_row(t, cells);
}

/* "memory.used_bytes (level_up 0.93), cpu... (spike 0.71 +3s), x (dip 0.8 +14s later), +3 more":
 * in onset order, each with its lag behind the first mover, "later" when it
 * did not move together with it (its onset beyond the episode window). */
static void members_text(const json_t *ep, char *buf, size_t n)
{
    const json_t *list = json_object_get(ep, "members");
    size_t i, used = 0;
    json_t *m;
    buf[0] = '\0';
    json_array_foreach(list, i, m) {
        char key[1024], lag[48] = "";
        cli_fmt_key(m, key, sizeof key);
        double ms = cli_jnum(m, "lag_ms", NAN);
        if (ms >= 1000) {
            char d[32];
            cli_fmt_duration((int64_t)ms / 1000 * 1000, d, sizeof d);
            snprintf(lag, sizeof lag, " +%s%s", d, cli_jbool(m, "together", true) ? "" : " later");
        }
        int k = snprintf(buf + used, n - used, "%s%s (%s %.2f%s)", i ? ", " : "", key, cli_jstr(m, "reason", "?"),
                         cli_jnum(m, "peak", 0), lag);
        if (k < 0 || (size_t)k >= n - used)
            break;
        used += (size_t)k;
    }
    double more = cli_jnum(ep, "more", 0);
    if (more > 0 && used < n)
        snprintf(buf + used, n - used, ", +%.0f more", more);
}

static void episode_row(cli_table *t, const json_t *ep)
{
    char id[32], started[64], dur[32], peak[16], all[4096], members[MEMBERS_COLS * 4 + 8], count[16];
    char firstkey[1024] = "-", first[KEY_COLS * 4 + 8];
    const json_t *fm = json_object_get(ep, "first");
    if (json_is_object(fm))
        cli_fmt_key(fm, firstkey, sizeof firstkey);
    cli_fmt_cut(firstkey, KEY_COLS, first, sizeof first);
    snprintf(id, sizeof id, "%.0f", cli_jnum(ep, "episode", 0));
    cli_fmt_time(cli_json_time_ms(json_object_get(ep, "first_onset_ms")), started, sizeof started);
    cli_fmt_duration((int64_t)cli_jnum(ep, "duration_ms", 0) / 1000 * 1000, dur, sizeof dur);
    num_cell(cli_jnum(ep, "peak", NAN), "%.2f", peak, sizeof peak);
    snprintf(count, sizeof count, "%.0f", cli_jnum(ep, "nmembers", 0));
    members_text(ep, all, sizeof all);
    cli_fmt_cut(all, MEMBERS_COLS, members, sizeof members);
    const char *cells[] = {id, cli_jstr(ep, "state", "?"), started, dur, peak, count, first, members};
    cli_table_row(t, cells);
}

static void print_all(const json_t *list)
{
    static const char *const hdr[] = {"METRIC", "SCORE", "REASON", "SAMPLES", "VALUE", "ANOMALOUS"};
    size_t i;
    json_t *m;
    cli_table t;
    cli_table_init(&t, 6, hdr);
    t.right[1] = t.right[3] = true;
    json_array_foreach(list, i, m) {
        char key[KEY_COLS * 4 + 8], full[1024], score[16], samples[32], val[48];
        cli_fmt_key(m, full, sizeof full);
        cli_fmt_cut(full, KEY_COLS, key, sizeof key);
        num_cell(cli_jnum(m, "score", NAN), "%.2f", score, sizeof score);
        snprintf(samples, sizeof samples, "%.0f", cli_jnum(m, "samples", 0));
        cli_fmt_value(cli_jnum(m, "value", NAN), cli_jstr(m, "unit", ""), val, sizeof val);
        const char *cells[] = {key, score, cli_jstr(m, "reason", "-"), samples, val,
                               cli_jbool(m, "anomalous", false) ? "yes" : "no"};
        cli_table_row(&t, cells);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

static void print_anomalies(const json_t *ans, bool all)
{
    static const char *const ahdr[] = {"METRIC", "SCORE", "PEAK", "COMPONENT", "VALUE", "EXPECTED", "BAND",
                                       "DEPARTURE", "SINCE"};
    static const char *const ehdr[] = {"EPISODE", "STATE", "STARTED", "DURATION", "PEAK", "N", "FIRST MOVER",
                                       "METRICS (IN ONSET ORDER)"};
    int64_t now = cli_json_time_ms(json_object_get(ans, "ts"));
    if (now <= 0)
        now = core_now_ms();
    if (!cli_jbool(ans, "enabled", true)) {
        printf("anomaly detection is off ([detect] enabled = no)\n");
        return;
    }
    summary(ans);
    const json_t *list = json_object_get(ans, "anomalies"), *eps = json_object_get(ans, "episodes");
    size_t i;
    json_t *o;
    cli_table t;
    if (json_array_size(list) > 0) {
        cli_table_init(&t, 9, ahdr);
        t.right[1] = t.right[2] = true;
        json_array_foreach(list, i, o)
            anomaly_row(&t, o, now);
        putchar('\n');
        cli_table_print(&t, stdout);
        cli_table_free(&t);
    }
    putchar('\n');
    if (json_array_size(eps) == 0) {
        printf("no episodes yet\n");
    } else {
        cli_table_init(&t, 8, ehdr);
        t.right[0] = t.right[4] = t.right[5] = true;
        json_array_foreach(eps, i, o)
            episode_row(&t, o);
        cli_table_print(&t, stdout);
        cli_table_free(&t);
    }
    if (all) {
        putchar('\n');
        print_all(json_object_get(ans, "metrics"));
    }
}

int cmd_anomalies(const cli_ctx *ctx0, int argc, char **argv)
{
    cli_ctx ctx = *ctx0;
    cli_args a;
    bool all = false;
    json_t *ans;
    cli_args_init(&a, "anomalies", argc, argv);
    while (cli_args_next(&a)) {
        if (cli_args_is_help(&a))
            return cli_args_help(&a);
        if (cli_args_flag(&a, "--json"))
            ctx.json = true;
        else if (cli_args_flag(&a, "--all") || cli_args_flag(&a, "-a"))
            all = true;
        else
            return cli_args_bad(&a);
    }
    int rc = cli_http_get_json(&ctx, all ? "/v1/anomalies?all=1" : "/v1/anomalies", &ans, NULL);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx.json)
        cli_print_json(ans);
    else
        print_anomalies(ans, all);
    json_decref(ans);
    return CLI_EXIT_OK;
}
