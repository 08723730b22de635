/* cmd_genome.c: the genome's commands (the cell's git repository of its
 * config, tuned files and tools; docs/evolve.md):
 *   ippoc history [PATH] [--limit N]    GET /v1/genome
 *   ippoc diff REV                      GET /v1/genome/diff
 *   ippoc rollback REV [--reason TEXT]  POST /v1/genome/rollback (through the policy)
 *   ippoc genome check | show PATH [--rev REV]
 *   ippoc evolve watch                  GET /v1/evolve/watch (cmd_evolve_watch) */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REASON_COLS 60

/* ---- history -------------------------------------------------------------------------- */

static void print_history(const json_t *ans, const char *path)
{
    static const char *const hdr[] = {"COMMIT", "TIME", "KIND", "AUTHOR", "REASON", "FITNESS"};
    const json_t *commits = json_object_get(ans, "commits");
    if (!json_array_size(commits)) {
        printf("no commits%s%s yet\n", path ? " touching " : "", path ? path : "");
        return;
    }
    cli_table t;
    cli_table_init(&t, 6, hdr);
    size_t i;
    json_t *c;
    json_array_foreach(commits, i, c) {
        char when[48], reason[REASON_COLS * 4 + 8];
        cli_fmt_time(cli_json_time_ms(json_object_get(c, "time")), when, sizeof when);
        cli_fmt_cut(cli_jstr(c, "reason", ""), REASON_COLS, reason, sizeof reason);
        const char *cells[] = {cli_jstr(c, "short", "?"), when, cli_jstr(c, "kind", "-"), cli_jstr(c, "author", "-"),
                               reason, cli_jstr(c, "fitness", "-")};
        cli_table_row(&t, cells);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

int cmd_history(const cli_ctx *ctx0, int argc, char **argv)
{
    cli_ctx ctx = *ctx0;
    cli_args a;
    const char *path = NULL, *limit = NULL;
    cli_args_init(&a, "history", argc, argv);
    int rc = cli_args_opt(&a, &ctx, "--limit", &limit, &path, NULL);
    if (rc < 0)
        return cli_args_help(&a);
    long n;
    if (rc != CLI_EXIT_OK || (limit && cli_check_int("--limit", limit, 1, 10000, &n) != CLI_EXIT_OK))
        return CLI_EXIT_USAGE;
    cli_url u;
    cli_url_init(&u, "/v1/genome");
    cli_url_param(&u, "path", path);
    cli_url_param(&u, "limit", limit);
    json_t *ans;
    rc = cli_http_get_json(&ctx, u.buf, &ans, NULL);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx.json)
        cli_print_json(ans);
    else
        print_history(ans, path);
    json_decref(ans);
    return CLI_EXIT_OK;
}

/* ---- diff, show ------------------------------------------------------------------------ */

static int get_text(const cli_ctx *ctx, const char *path)
{
    char *text = NULL;
    int rc = cli_http_get_text(ctx, path, &text);
    if (rc == CLI_EXIT_OK)
        fputs(text, stdout);
    free(text);
    return rc;
}

int cmd_diff(const cli_ctx *ctx0, int argc, char **argv)
{
    cli_ctx ctx = *ctx0;
    cli_args a;
    const char *rev = NULL;
    cli_args_init(&a, "diff", argc, argv);
    int rc = cli_args_simple(&a, &ctx, &rev, "REV");
    if (rc < 0)
        return cli_args_help(&a);
    if (rc != CLI_EXIT_OK)
        return rc;
    cli_url u;
    cli_url_init(&u, "/v1/genome/diff");
    cli_url_param(&u, "rev", rev);
    return get_text(&ctx, u.buf);
}

/* ---- rollback -------------------------------------------------------------------------- */


static void print_rollback(const json_t *ans)
{
    char shortid[8];
    snprintf(shortid, sizeof shortid, "%.7s", cli_jstr(ans, "commit", "?"));
    const char *verdict = cli_jstr(ans, "verdict", "?"), *msg = cli_jstr(ans, "message", "");
    if (!strcmp(verdict, "none")) {
        printf("nothing to roll back: %s\n", msg);
        return;
    }
    printf("commit %s: rollback to %s\n", shortid, cli_jstr(ans, "rev", "?"));
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(ans, "changed"), i, f) printf("  changed %s\n", json_string_value(f) ?: "?");
    if (!strcmp(verdict, "queue"))
        printf("queued: approve with ippoc approve %.0f\n", cli_jnum(ans, "pending", 0));
    else if (!strcmp(verdict, "execute"))
        printf("executing: %s\n", msg[0] ? msg : "the machine follows the genome");
    else
        printf("%s: %s\n", verdict, msg);
}

int cmd_rollback(const cli_ctx *ctx0, int argc, char **argv)
{
    cli_ctx ctx = *ctx0;
    cli_args a;
    const char *rev = NULL, *reason = NULL;
    cli_args_init(&a, "rollback", argc, argv);
    int rc = cli_args_opt(&a, &ctx, "--reason", &reason, &rev, NULL);
    if (rc < 0)
        return cli_args_help(&a);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (!rev) {
        fprintf(stderr, "ippoc: rollback: missing REV (see 'ippoc history')\n");
        return CLI_EXIT_USAGE;
    }
    char who[64];
    cli_who_am_i(who, sizeof who);
    json_t *body = json_pack("{s:s, s:s, s:s}", "rev", rev, "reason", reason ? reason : "", "who", who);
    json_t *ans;
    rc = cli_http_post_obj(&ctx, "/v1/genome/rollback", body, &ans);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx.json)
        cli_print_json(ans);
    else
        print_rollback(ans);
    json_decref(ans);
    return CLI_EXIT_OK;
}

/* ---- genome check | show ------------------------------------------------------------------- */

static int genome_check(const cli_ctx *ctx0, cli_args *a)
{
    cli_ctx ctx = *ctx0;
    int rc = cli_args_simple(a, &ctx, NULL, NULL);
    if (rc < 0)
        return cli_args_help(a);
    json_t *ans;
    if (rc != CLI_EXIT_OK || (rc = cli_http_get_json(&ctx, "/v1/genome/check", &ans, NULL)) != CLI_EXIT_OK)
        return rc;
    bool ok = cli_jbool(ans, "ok", false);
    if (ctx.json)
        cli_print_json(ans);
    else if (ok)
        printf("genome %s: ok (working tree matches HEAD)\n", cli_jstr(ans, "dir", "?"));
    else
        printf("genome %s: %s: %s\n", cli_jstr(ans, "dir", "?"), cli_jstr(ans, "status", "error"),
               cli_jstr(ans, "error", "?"));
    json_decref(ans);
    return ok ? CLI_EXIT_OK : CLI_EXIT_API;
}

static int genome_show(const cli_ctx *ctx0, cli_args *a)
{
    cli_ctx ctx = *ctx0;
    const char *path = NULL, *rev = NULL;
    while (cli_args_next(a)) {
        int v;
        if (cli_args_is_help(a))
            return cli_args_help(a);
        if ((v = cli_args_value(a, "--rev", &rev)) != 0) {
            if (v < 0)
                return CLI_EXIT_USAGE;
        } else if (!path && cli_args_positional(a))
            path = a->argv[a->i];
        else
            return cli_args_bad(a);
    }
    if (!path) {
        fprintf(stderr, "ippoc: genome show: missing PATH (e.g. ippoc.conf)\n");
        return CLI_EXIT_USAGE;
    }
    cli_url u;
    cli_url_init(&u, "/v1/genome/show");
    cli_url_param(&u, "path", path);
    cli_url_param(&u, "rev", rev);
    return get_text(&ctx, u.buf);
}

int cmd_genome(const cli_ctx *ctx, int argc, char **argv)
{
    cli_args a;
    if (argc >= 2 && !strcmp(argv[1], "check")) {
        cli_args_init(&a, "genome", argc - 1, argv + 1);
        return genome_check(ctx, &a);
    }
    if (argc >= 2 && !strcmp(argv[1], "show")) {
        cli_args_init(&a, "genome", argc - 1, argv + 1);
        return genome_show(ctx, &a);
    }
    cli_args_init(&a, "genome", argc, argv);
    if (argc >= 2 && cli_args_next(&a) && cli_args_is_help(&a))
        return cli_args_help(&a);
    fprintf(stderr, "ippoc: genome: expected 'check' or 'show PATH' (see 'ippoc help genome')\n");
    return CLI_EXIT_USAGE;
}

/* ---- evolve watch ------------------------------------------------------------------------- */

static void print_watch(const cli_ctx *ctx, const json_t *ans)
{
    (void)ctx;
    static const char *const hdr[] = {"COMMIT", "KIND", "STATE", "STARTED", "UNTIL", "REASON"};
    const json_t *changes = json_object_get(ans, "changes");
    if (!json_array_size(changes)) {
        printf("no genome change applied since ippocd started\n");
        return;
    }
    cli_table t;
    cli_table_init(&t, 6, hdr);
    size_t i;
    json_t *c;
    json_array_foreach(changes, i, c) {
        char started[48], until[48] = "-", reason[REASON_COLS * 4 + 8];
        cli_fmt_time((int64_t)cli_jnum(c, "started", 0), started, sizeof started);
        double u = cli_jnum(c, "ended", cli_jnum(c, "until", 0));
        if (u > 0)
            cli_fmt_time((int64_t)u, until, sizeof until);
        cli_fmt_cut(cli_jstr(c, "reason", ""), REASON_COLS, reason, sizeof reason);
        const char *cells[] = {cli_jstr(c, "short", "?"), cli_jstr(c, "kind", "-"), cli_jstr(c, "state", "?"),
                               started, until, reason};
        cli_table_row(&t, cells);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

int cmd_evolve_watch(const cli_ctx *ctx, int argc, char **argv)
{
    return cli_run_get(ctx, "evolve watch", argc, argv, "/v1/evolve/watch", print_watch);
}
