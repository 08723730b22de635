/* cmd_audit.c: `ippoc audit` — the append-only audit log of every action
 * IPPOC took, would take, queued or was refused (SEQ TIME KIND SERVICE
 * ACTION VERDICT/OUTCOME, oldest first), and `ippoc audit --verify`, which
 * asks the daemon to check the log's hash chain: exit 0 when intact, 1 when
 * tampered. Reads GET /v1/audit?last&since&service and GET /v1/audit/verify. */
#include "cli/cli.h"

#include <string.h>

typedef struct audit_opts {
    const char *last, *since, *service;
    bool verify;
} audit_opts;

static void record_row(cli_table *t, const json_t *r)
{
    char seq[32], ts[64], act[96], out[300];
    const json_t *a = json_object_get(r, "action");
    const char *svc = cli_jstr(r, "service", "");
    snprintf(seq, sizeof seq, "%.0f", cli_jnum(r, "seq", 0));
    cli_fmt_time(cli_json_time_ms(json_object_get(r, "ts")), ts, sizeof ts);
    cli_fmt_cut(cli_jstr(a, "text", cli_jstr(a, "kind", "-")), 40, act, sizeof act);
    cli_fmt_audit_outcome(r, out, sizeof out);
    const char *cells[] = {seq, ts, cli_jstr(r, "kind", "?"), *svc ? svc : "-", act, out};
    cli_table_row(t, cells);
}

static void print_records(const json_t *ans)
{
    static const char *const hdr[] = {"SEQ", "TIME", "KIND", "SERVICE", "ACTION", "VERDICT/OUTCOME"};
    const json_t *list = json_object_get(ans, "records");
    size_t i;
    json_t *r;
    cli_table t;
    if (json_array_size(list) == 0) {
        printf("no audit records\n");
        return;
    }
    cli_table_init(&t, 6, hdr);
    t.right[0] = true;
    json_array_foreach(list, i, r)
        record_row(&t, r);
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

static int parse_opt(cli_args *a, audit_opts *o, cli_ctx *ctx)
{
    long v;
    int r;
    if (cli_args_flag(a, "--json"))
        ctx->json = true;
    else if (cli_args_flag(a, "--verify"))
        o->verify = true;
    else if ((r = cli_args_value(a, "--last", &o->last)) != 0)
        return r < 0 || cli_check_int("--last", o->last, 1, 10000, &v) ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    else if ((r = cli_args_value(a, "--since", &o->since)) != 0)
        return r < 0 || cli_check_int("--since", o->since, 0, INT64_MAX, &v) ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    else if ((r = cli_args_value(a, "--service", &o->service)) != 0)
        return r < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    else
        return cli_args_bad(a);
    return CLI_EXIT_OK;
}

static int parse_audit(cli_args *a, audit_opts *o, cli_ctx *ctx)
{
    while (cli_args_next(a)) {
        if (cli_args_is_help(a))
            return -1;
        int rc = parse_opt(a, o, ctx);
        if (rc != CLI_EXIT_OK)
            return rc;
    }
    if (o->verify && (o->last || o->since || o->service)) {
        fprintf(stderr, "ippoc: audit: --verify checks the whole log; it takes no --last, --since or --service\n");
        return CLI_EXIT_USAGE;
    }
    if (o->service && !*o->service) {
        fprintf(stderr, "ippoc: audit: --service: empty name\n");
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

static int verify(const cli_ctx *ctx)
{
    json_t *ans;
    char line[600];
    int rc = cli_http_get_json(ctx, "/v1/audit/verify", &ans, NULL);
    if (rc != CLI_EXIT_OK)
        return rc;
    bool ok = cli_fmt_verify(ans, line, sizeof line);
    if (ctx->json)
        cli_print_json(ans);
    else
        printf("%s\n", line);
    json_decref(ans);
    return ok ? CLI_EXIT_OK : CLI_EXIT_API;
}

int cmd_audit(const cli_ctx *ctx0, int argc, char **argv)
{
    cli_ctx ctx = *ctx0;
    audit_opts o = {0};
    cli_args a;
    cli_url u;
    json_t *ans;
    cli_args_init(&a, "audit", argc, argv);
    int rc = parse_audit(&a, &o, &ctx);
    if (rc < 0)
        return cli_args_help(&a);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (o.verify)
        return verify(&ctx);
    cli_url_init(&u, "/v1/audit");
    cli_url_param(&u, "last", o.last);
    cli_url_param(&u, "since", o.since);
    cli_url_param(&u, "service", o.service);
    if (u.overflow) {
        fprintf(stderr, "ippoc: audit: --service is too long\n");
        return CLI_EXIT_USAGE;
    }
    if ((rc = cli_http_get_json(&ctx, u.buf, &ans, NULL)) != CLI_EXIT_OK)
        return rc;
    if (ctx.json)
        cli_print_json(ans);
    else
        print_records(ans);
    json_decref(ans);
    return CLI_EXIT_OK;
}
