/* cmd_metrics.c: `ippoc metrics [PATTERN]` — the series the daemon keeps,
 * one per line with its last value in human units. PATTERN is a glob sent
 * as match=; one without glob characters is a prefix ("cpu" -> "cpu*").
 * Reads GET /v1/metrics. */
#include "cli/cli.h"

#include <math.h>
#include <string.h>

/* Turns PATTERN into the glob sent to the API. */
static void make_glob(const char *pattern, char *out, size_t n)
{
    if (strpbrk(pattern, "*?["))
        snprintf(out, n, "%s", pattern);
    else
        snprintf(out, n, "%s*", pattern);
}

static void metric_row(cli_table *t, const json_t *m)
{
    char key[1024], val[64];
    const json_t *last = json_object_get(m, "last");
    double v = json_is_number(last) ? json_number_value(last) : NAN;
    cli_fmt_key(m, key, sizeof key);
    cli_fmt_value(v, cli_jstr(m, "unit", ""), val, sizeof val);
    const char *cells[] = {key, val};
    cli_table_row(t, cells);
}

static void print_metrics(const json_t *ans, const char *glob)
{
    static const char *const hdr[] = {"SERIES", "VALUE"};
    const json_t *list = json_object_get(ans, "metrics");
    size_t i;
    json_t *m;
    cli_table t;
    if (!json_is_array(list) || json_array_size(list) == 0) {
        if (glob)
            printf("no series match '%s'\n", glob);
        else
            printf("no series yet\n");
        return;
    }
    cli_table_init(&t, 2, hdr);
    json_array_foreach(list, i, m)
        metric_row(&t, m);
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

int cmd_metrics(const cli_ctx *ctx0, int argc, char **argv)
{
    cli_ctx ctx = *ctx0;
    cli_args a;
    const char *pattern = NULL;
    char glob[1024];
    cli_url u;
    json_t *ans;
    cli_args_init(&a, "metrics", argc, argv);
    while (cli_args_next(&a)) {
        if (cli_args_is_help(&a))
            return cli_args_help(&a);
        if (cli_args_flag(&a, "--json"))
            ctx.json = true;
        else if (cli_args_positional(&a) && !pattern)
            pattern = a.argv[a.i];
        else
            return cli_args_bad(&a);
    }
    cli_url_init(&u, "/v1/metrics");
    if (pattern) {
        make_glob(pattern, glob, sizeof glob);
        cli_url_param(&u, "match", glob);
    }
    if (u.overflow) {
        fprintf(stderr, "ippoc: metrics: PATTERN is too long\n");
        return CLI_EXIT_USAGE;
    }
    int rc = cli_http_get_json(&ctx, u.buf, &ans, NULL);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx.json)
        cli_print_json(ans);
    else
        print_metrics(ans, pattern ? glob : NULL);
    json_decref(ans);
    return CLI_EXIT_OK;
}
