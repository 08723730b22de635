/* cmd_services.c: `ippoc services` — the services ippocd watches, one row
 * each: name, type, state, pid, restarts, uptime and the last exit, under a
 * line with the healing mode and what waits for a person. Reads
 * GET /v1/services; tolerates missing and extra fields. */
#include "cli/cli.h"

#include "core/core.h"

#include <math.h>
#include <string.h>

static void summary(const json_t *ans)
{
    double pend = cli_jnum(ans, "pending", NAN), open = cli_jnum(ans, "incidents_open", NAN);
    printf("mode %s%s", cli_jstr(ans, "mode", "?"), cli_jbool(ans, "dry_run", false) ? " (dry run)" : "");
    if (!isnan(pend))
        printf(", %.0f pending", pend);
    if (!isnan(open))
        printf(", %.0f open incident%s", open, open == 1 ? "" : "s");
    putchar('\n');
}

static void service_row(cli_table *t, const json_t *s, int64_t now)
{
    char pid[32] = "-", rs[32] = "-", up[32] = "-", ex[96], state[64];
    double p = cli_jnum(s, "pid", 0), r = cli_jnum(s, "restarts", NAN), u = cli_jnum(s, "uptime_ms", 0);
    const char *st = cli_jstr(s, "state", "?");
    if (p > 0)
        snprintf(pid, sizeof pid, "%.0f", p);
    if (!isnan(r))
        snprintf(rs, sizeof rs, "%.0f", r);
    if (u > 0 && p > 0)
        cli_fmt_duration((int64_t)u / 1000 * 1000, up, sizeof up);
    snprintf(state, sizeof state, "%s%s", st, cli_jbool(s, "flapping", false) ? " (flapping)" : "");
    cli_fmt_exit(json_object_get(s, "last_exit"), now, ex, sizeof ex);
    const char *cells[] = {cli_jstr(s, "name", "?"), cli_jstr(s, "type", "?"), state, pid, rs, up, ex};
    cli_table_row(t, cells);
}

static void print_services(const json_t *ans)
{
    static const char *const hdr[] = {"NAME", "TYPE", "STATE", "PID", "RESTARTS", "UPTIME", "LAST-EXIT"};
    const json_t *list = json_object_get(ans, "services");
    int64_t now = core_now_ms();
    size_t i;
    json_t *s;
    cli_table t;
    summary(ans);
    if (json_array_size(list) == 0) {
        printf("no services configured (add [service.NAME] sections to conf.d/*.conf)\n");
        return;
    }
    cli_table_init(&t, 7, hdr);
    t.right[3] = t.right[4] = true;
    json_array_foreach(list, i, s)
        service_row(&t, s, now);
    cli_table_print(&t, stdout);
    cli_table_free(&t);
    json_array_foreach(list, i, s) { /* why a service is not well, below the table */
        const char *err = cli_jstr(s, "error", "");
        if (*err)
            printf("%s: %s\n", cli_jstr(s, "name", "?"), err);
    }
}

static void print_services_cb(const cli_ctx *ctx, const json_t *ans)
{
    (void)ctx;
    print_services(ans);
}

int cmd_services(const cli_ctx *ctx, int argc, char **argv)
{
    return cli_run_get(ctx, "services", argc, argv, "/v1/services", print_services_cb);
}
