/* cmd_logs.c: `ippoc logs [SOURCE] [--json]` — the live log templates
 * ippocd's log watch mined from each source (a service's output and log
 * files, a [logs] file, a journal unit): per source a summary line, then one
 * row per template, most frequent first: id, count, rate, level, first seen
 * and the template. Without SOURCE each source shows its top templates.
 * Reads GET /v1/logs[?source=S]; tolerates missing and extra fields.
 * (`ippoc logs templates FILE` is the offline miner, cmd_logs_templates.c,
 * dispatched by main.c before the daemon is looked for.) */
#include "cli/cli.h"

#include "core/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOP_PER_SOURCE 10 /* rows per source when all are shown */
#define TEMPLATE_COLS 100

static int by_count(const void *a, const void *b)
{
    double x = cli_jnum(*(json_t *const *)a, "count", 0), y = cli_jnum(*(json_t *const *)b, "count", 0);
    return x < y ? 1 : x > y ? -1 : 0;
}

static void template_row(cli_table *t, const json_t *o)
{
    char id[24], count[32], rate[32], first[64], tpl[TEMPLATE_COLS * 4 + 8];
    snprintf(id, sizeof id, "%.0f", cli_jnum(o, "id", 0));
    snprintf(count, sizeof count, "%.0f", cli_jnum(o, "count", 0));
    double r = cli_jnum(o, "rate", NAN);
    if (isnan(r))
        snprintf(rate, sizeof rate, "-");
    else
        snprintf(rate, sizeof rate, r >= 10 ? "%.0f" : r >= 0.01 ? "%.2f" : "%.3f", r);
    cli_fmt_time(cli_json_time_ms(json_object_get(o, "first_seen")), first, sizeof first);
    cli_fmt_cut(cli_jstr(o, "template", ""), TEMPLATE_COLS, tpl, sizeof tpl);
    const char *level = cli_jstr(o, "level", "-");
    if (cli_jbool(o, "burst", false))
        level = !strcmp(level, "error") ? "error!" : "burst!";
    const char *cells[] = {id, count, rate, level, first, tpl};
    cli_table_row(t, cells);
}

static void print_source(const json_t *s, size_t top)
{
    static const char *const hdr[] = {"ID", "COUNT", "RATE/S", "LEVEL", "FIRST SEEN", "TEMPLATE"};
    const json_t *list = json_object_get(s, "templates");
    size_t n = json_array_size(list);
    printf("%s (%s): %.0f lines, %.0f errors, %zu templates", cli_jstr(s, "source", "?"), cli_jstr(s, "kind", "?"),
           cli_jnum(s, "lines", 0), cli_jnum(s, "errors", 0), n);
    if (cli_jnum(s, "cut", 0) > 0)
        printf(", %.0f long lines cut", cli_jnum(s, "cut", 0));
    putchar('\n');
    if (n == 0)
        return;
    json_t **rows = malloc(n * sizeof *rows);
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++)
        rows[i] = json_array_get(list, i);
    qsort(rows, n, sizeof *rows, by_count);
    cli_table t;
    cli_table_init(&t, 6, hdr);
    t.right[0] = t.right[1] = t.right[2] = true;
    size_t shown = top && n > top ? top : n;
    for (size_t i = 0; i < shown; i++)
        template_row(&t, rows[i]);
    cli_table_print(&t, stdout);
    cli_table_free(&t);
    if (shown < n)
        printf("  ... %zu more (ippoc logs %s)\n", n - shown, cli_jstr(s, "source", "SOURCE"));
    free(rows);
}

static void print_logs(const json_t *ans, bool one)
{
    if (!cli_jbool(ans, "enabled", true)) {
        printf("the log watch is off ([logs] enabled = no)\n");
        return;
    }
    const json_t *sources = json_object_get(ans, "sources");
    if (json_array_size(sources) == 0) {
        printf("no log sources (configure services, [logs] file or the journal)\n");
        return;
    }
    size_t i;
    json_t *s;
    json_array_foreach(sources, i, s) {
        if (i)
            putchar('\n');
        print_source(s, one ? 0 : TOP_PER_SOURCE);
    }
}

int cmd_logs(const cli_ctx *ctx0, int argc, char **argv)
{
    cli_ctx ctx = *ctx0;
    cli_args a;
    const char *source = NULL;
    json_t *ans;
    cli_args_init(&a, "logs", argc, argv);
    int rc = cli_args_simple(&a, &ctx, &source, NULL);
    if (rc < 0)
        return cli_args_help(&a);
    if (rc != CLI_EXIT_OK)
        return rc;
    cli_url u;
    cli_url_init(&u, "/v1/logs");
    cli_url_param(&u, "source", source);
    if (u.overflow) {
        fprintf(stderr, "ippoc: logs: source name too long\n");
        return CLI_EXIT_USAGE;
    }
    rc = cli_http_get_json(&ctx, u.buf, &ans, NULL);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx.json)
        cli_print_json(ans);
    else
        print_logs(ans, source != NULL);
    json_decref(ans);
    return CLI_EXIT_OK;
}
