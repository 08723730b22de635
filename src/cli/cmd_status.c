/* cmd_status.c: `ippoc status` — what the daemon is and how it is doing:
 * version, host, pid, uptime, its own CPU and RSS, the collectors (state,
 * interval, series, cost of the last run, note) and a memory summary.
 * Reads GET /v1/status; tolerates missing and extra fields. */
#include "cli/cli.h"

#include "core/core.h"

#include <math.h>
#include <string.h>

static void line(const char *label, const char *value)
{
    if (value && *value)
        printf("%-10s %s\n", label, value);
}

static void print_uptime(const json_t *st)
{
    char up[64] = "", since[64] = "", out[160];
    double s = cli_jnum(st, "uptime_s", NAN);
    const json_t *started = json_object_get(st, "started_at");
    int64_t started_ms = cli_json_time_ms(started);
    if (!isnan(s))
        cli_fmt_duration((int64_t)(s * 1000.0), up, sizeof up);
    if (started_ms > 0)
        cli_fmt_time(started_ms, since, sizeof since);
    else if (json_is_string(started))
        snprintf(since, sizeof since, "%s", json_string_value(started));
    if (*up && *since)
        snprintf(out, sizeof out, "%s (since %s)", up, since);
    else
        snprintf(out, sizeof out, "%s%s", up, since);
    line("uptime", out);
}

static void print_self(const json_t *self)
{
    char cpu[32] = "", rss[32] = "", out[96];
    double c = cli_jnum(self, "cpu_percent", NAN);
    double r = cli_jnum(self, "rss_bytes", NAN);
    if (!isnan(c))
        snprintf(cpu, sizeof cpu, "cpu %.1f%%", c);
    if (!isnan(r)) {
        snprintf(rss, sizeof rss, "rss ");
        cli_fmt_bytes(r, rss + 4, sizeof rss - 4);
    }
    snprintf(out, sizeof out, "%s%s%s", cpu, *cpu && *rss ? ", " : "", rss);
    line("self", out);
}

static void print_memory(const json_t *mem)
{
    char out[256] = "", b[32];
    size_t len = 0;
    double ns = cli_jnum(mem, "nseries", NAN);
    double db = cli_jnum(mem, "db_bytes", NAN);
    double dr = cli_jnum(mem, "dropped_batches", NAN);
    if (!isnan(ns))
        len += (size_t)snprintf(out + len, sizeof out - len, "%.0f series", ns);
    if (!isnan(db)) {
        cli_fmt_bytes(db, b, sizeof b);
        len += (size_t)snprintf(out + len, sizeof out - len, "%sdb %s", len ? ", " : "", b);
    }
    if (!isnan(dr))
        len += (size_t)snprintf(out + len, sizeof out - len, "%s%.0f dropped batches", len ? ", " : "", dr);
    const char *werr = cli_jstr(mem, "write_error", NULL);
    if (werr && len < sizeof out) /* the store refuses writes: say so, and since when */
        snprintf(out + len, sizeof out - len, "%sCANNOT WRITE: %s (for %.0f s)", len ? ", " : "", werr,
                 (double)(core_now_ms() - (int64_t)cli_jnum(mem, "write_failing_since", 0)) / 1000.0);
    line("memory", out);
}

static const char *collector_state(const json_t *c)
{
    if (!cli_jbool(c, "enabled", true))
        return "disabled";
    return cli_jbool(c, "available", true) ? "available" : "unavailable";
}

static void collector_row(cli_table *t, const json_t *c)
{
    char iv[32] = "-", ns[32] = "-", cost[32] = "-";
    const char *state = collector_state(c);
    const char *note = cli_jstr(c, "note", "");
    double ms = cli_jnum(c, "interval_ms", NAN);
    double n = cli_jnum(c, "nseries", NAN);
    double us = cli_jnum(c, "last_cost_us", NAN);
    if (!isnan(ms))
        cli_fmt_duration((int64_t)ms, iv, sizeof iv);
    if (!isnan(n))
        snprintf(ns, sizeof ns, "%.0f", n);
    if (!isnan(us) && !strcmp(state, "available"))
        cli_fmt_micros(us, cost, sizeof cost);
    const char *cells[] = {cli_jstr(c, "name", "?"), state, iv, ns, cost, *note ? note : "-"};
    cli_table_row(t, cells);
}

static void print_collectors(const json_t *list)
{
    static const char *const hdr[] = {"COLLECTOR", "STATE", "INTERVAL", "SERIES", "COST", "NOTE"};
    size_t i;
    json_t *c;
    cli_table t;
    if (!json_is_array(list) || json_array_size(list) == 0) {
        printf("\nno collectors\n");
        return;
    }
    cli_table_init(&t, 6, hdr);
    t.right[3] = t.right[4] = true;
    json_array_foreach(list, i, c)
        collector_row(&t, c);
    putchar('\n');
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

static void print_status(const cli_ctx *ctx, const json_t *st)
{
    char pid[32] = "";
    double p = cli_jnum(st, "pid", NAN);
    printf("ippocd %s at %s\n", cli_jstr(st, "version", "?"), ctx->url);
    line("host", cli_jstr(st, "host", NULL));
    if (!isnan(p))
        snprintf(pid, sizeof pid, "%.0f", p);
    line("pid", pid);
    print_uptime(st);
    line("state dir", cli_jstr(st, "state_dir", NULL));
    line("config", cli_jstr(st, "config", NULL));
    line("sense", cli_jstr(st, "sense_source", NULL));
    print_self(json_object_get(st, "self"));
    print_memory(json_object_get(st, "memory"));
    print_collectors(json_object_get(st, "collectors"));
}

int cmd_status(const cli_ctx *ctx, int argc, char **argv)
{
    return cli_run_get(ctx, "status", argc, argv, "/v1/status", print_status);
}
