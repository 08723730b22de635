/* cmd_prefs.c: `ippoc prefs` lists the preferences that change the brain's
 * proposals (GET /v1/prefs): the configured ones ([prefs] maintenance,
 * never) and the learned ones (per signature and action: approvals,
 * rejections, edits; services not to touch; learned windows), each with its
 * rule and what it changed; `ippoc prefs forget ID` drops a learned one
 * (POST /v1/prefs/{id}/forget). */
#include "cli/cli.h"

#include <inttypes.h>
#include <string.h>

#define RULE_COLS 70

static void pref_row(cli_table *t, const json_t *p, bool configured)
{
    char changed[64] = "-", rule[RULE_COLS * 4 + 8];
    double n = cli_jnum(p, "changed", 0), ms = cli_jnum(p, "changed_ms", 0);
    if (n > 0) {
        char when[48];
        cli_fmt_time((int64_t)ms, when, sizeof when);
        snprintf(changed, sizeof changed, "%.0f, last %s", n, when);
    }
    cli_fmt_cut(cli_jstr(p, "rule", ""), RULE_COLS, rule, sizeof rule);
    const char *force = configured ? "yes" : json_is_true(json_object_get(p, "in_force")) ? "yes" : "no";
    const char *cells[] = {cli_jstr(p, "id", "?"), cli_jstr(p, "kind", "?"), force, changed, rule};
    cli_table_row(t, cells);
}

static void print_prefs(const cli_ctx *ctx, const json_t *ans)
{
    (void)ctx;
    static const char *const hdr[] = {"ID", "KIND", "IN FORCE", "CHANGED", "RULE"};
    const json_t *conf = json_object_get(ans, "configured"), *learned = json_object_get(ans, "learned");
    if (!json_array_size(conf) && !json_array_size(learned)) {
        printf("no preferences yet: approving, rejecting or editing proposals teaches them\n");
        return;
    }
    cli_table t;
    cli_table_init(&t, 5, hdr);
    size_t i;
    json_t *p;
    json_array_foreach(conf, i, p)
        pref_row(&t, p, true);
    json_array_foreach(learned, i, p)
        pref_row(&t, p, false);
    cli_table_print(&t, stdout);
    cli_table_free(&t);
    printf("forget a learned one with 'ippoc prefs forget ID'\n");
}

/* ippoc prefs forget ID [--json]: a is the arguments after "prefs". */
static int forget(const cli_ctx *ctx0, cli_args *a)
{
    cli_ctx ctx = *ctx0;
    const char *id = NULL;
    int rc = cli_args_simple(a, &ctx, &id, "ID");
    if (rc < 0)
        return cli_args_help(a);
    if (rc != CLI_EXIT_OK)
        return rc;
    char path[256];
    for (const char *c = id; *c; c++)
        if (*c == '/' || *c == '?' || *c == '#' || *c == '%' || (unsigned char)*c <= ' ') {
            fprintf(stderr, "ippoc: prefs forget: '%s' is not a preference id (see 'ippoc prefs')\n", id);
            return CLI_EXIT_USAGE;
        }
    snprintf(path, sizeof path, "/v1/prefs/%.96s/forget", id);
    char done[512];
    snprintf(done, sizeof done, "forgotten %s", id);
    return cli_http_post_done(&ctx, path, done);
}

int cmd_prefs(const cli_ctx *ctx, int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "forget")) {
        cli_args a;
        cli_args_init(&a, "prefs", argc - 1, argv + 1);
        return forget(ctx, &a);
    }
    return cli_run_get(ctx, "prefs", argc, argv, "/v1/prefs", print_prefs);
}
