/* cmd_pending.c: actions waiting for a person (healing mode `suggest`):
 * `ippoc pending` lists them (id, service, action, why, when the offer
 * expires), `ippoc approve ID` and `ippoc reject ID` decide one. Reads
 * GET /v1/pending; POSTs /v1/pending/{id}/approve|reject with
 * {"who":"cli:$USER"} so the audit log names who decided. */
#include "cli/cli.h"

#include "core/core.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WHY_COLS 60

static void pending_row(cli_table *t, const json_t *p, int64_t now)
{
    char id[32], why[WHY_COLS * 4 + 8], exp[48];
    snprintf(id, sizeof id, "%.0f", cli_jnum(p, "id", 0));
    cli_fmt_cut(cli_jstr(p, "why", ""), WHY_COLS, why, sizeof why);
    cli_fmt_expires(p, now, exp, sizeof exp);
    const char *cells[] = {id, cli_jstr(p, "service", "-"), cli_jstr(p, "action", "?"), why, exp};
    cli_table_row(t, cells);
}

static void print_pending(const json_t *ans)
{
    static const char *const hdr[] = {"ID", "SERVICE", "ACTION", "WHY", "EXPIRES"};
    const json_t *list = json_object_get(ans, "pending");
    int64_t now = core_now_ms();
    size_t i;
    json_t *p;
    cli_table t;
    if (json_array_size(list) == 0) {
        printf("nothing waiting for approval\n");
        return;
    }
    cli_table_init(&t, 5, hdr);
    t.right[0] = true;
    json_array_foreach(list, i, p)
        pending_row(&t, p, now);
    cli_table_print(&t, stdout);
    cli_table_free(&t);
    printf("approve with 'ippoc approve ID', refuse with 'ippoc reject ID'\n");
}

static void print_pending_cb(const cli_ctx *ctx, const json_t *ans)
{
    (void)ctx;
    print_pending(ans);
}

int cmd_pending(const cli_ctx *ctx, int argc, char **argv)
{
    return cli_run_get(ctx, "pending", argc, argv, "/v1/pending", print_pending_cb);
}

/* ---- approve / reject ------------------------------------------------------------------ */

static void print_decided(const json_t *ans, uint64_t id, bool approve)
{
    const char *act = cli_jstr(ans, "action", NULL), *svc = cli_jstr(ans, "service", NULL);
    if (cli_jstr(ans, "edit", NULL))
        act = cli_jstr(ans, "edit", NULL), printf("(edited) ");
    printf("%s %" PRIu64, approve ? "approved" : "rejected", id);
    if (act)
        printf(": %s%s%s", act, svc && *svc ? " " : "", svc ? svc : "");
    putchar('\n');
}

static int decide(const cli_ctx *ctx0, int argc, char **argv, bool approve)
{
    const char *cmd = approve ? "approve" : "reject";
    cli_ctx ctx = *ctx0;
    cli_args a;
    const char *ids = NULL;
    uint64_t id;
    char path[96], who[64];
    const char *edit = NULL;
    json_t *ans;
    cli_args_init(&a, cmd, argc, argv);
    int rc = CLI_EXIT_OK;
    while (rc == CLI_EXIT_OK && cli_args_next(&a)) { /* ID [--edit ACTION] [--json] */
        int e = approve ? cli_args_value(&a, "--edit", &edit) : 0;
        if (cli_args_is_help(&a))
            return cli_args_help(&a);
        if (e < 0)
            rc = CLI_EXIT_USAGE;
        else if (e == 0 && cli_args_flag(&a, "--json"))
            ctx.json = true;
        else if (e == 0 && !ids && cli_args_positional(&a))
            ids = a.argv[a.i];
        else if (e == 0)
            rc = cli_args_bad(&a);
    }
    if (rc == CLI_EXIT_OK && !ids) {
        fprintf(stderr, "ippoc: %s: missing ID (see 'ippoc help %s')\n", cmd, cmd);
        rc = CLI_EXIT_USAGE;
    }
    if (rc != CLI_EXIT_OK || (rc = cli_check_id(cmd, ids, &id)) != CLI_EXIT_OK)
        return rc;
    snprintf(path, sizeof path, "/v1/pending/%" PRIu64 "/%s", id, cmd);
    cli_who_am_i(who, sizeof who);
    json_t *bo = edit ? json_pack("{s:s, s:s}", "who", who, "edit", edit) : json_pack("{s:s}", "who", who);
    char *body = bo ? json_dumps(bo, JSON_COMPACT) : NULL;
    json_decref(bo);
    rc = body ? cli_http_post_json(&ctx, path, body, &ans) : CLI_EXIT_API;
    free(body);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx.json)
        cli_print_json(ans);
    else
        print_decided(ans, id, approve);
    json_decref(ans);
    return CLI_EXIT_OK;
}

int cmd_approve(const cli_ctx *ctx, int argc, char **argv)
{
    return decide(ctx, argc, argv, true);
}

int cmd_reject(const cli_ctx *ctx, int argc, char **argv)
{
    return decide(ctx, argc, argv, false);
}
