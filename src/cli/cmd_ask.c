/* cmd_ask.c: `ippoc ask [--at TIME] [--json] QUESTION...` asks the daemon a
 * question (POST /v1/ask) and prints the answer, then the records it cites
 * as a table (REF TIME SUMMARY) and whether a model wrote the prose. The
 * words of QUESTION are joined with spaces, so quoting is optional. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#define ASK_TIMEOUT_MS 120000 /* a model may think a while: unless --timeout says otherwise */
#define ASK_MAX 1024

/* Prints text wrapped at width columns. */
static void wrap(const char *text, int width)
{
    int col = 0;
    const char *p = text;
    while (*p) {
        size_t w = strcspn(p, " ");
        if (col && col + 1 + (int)w > width) {
            putchar('\n');
            col = 0;
        } else if (col) {
            putchar(' ');
            col++;
        }
        fwrite(p, 1, w, stdout);
        col += (int)w;
        p += w;
        while (*p == ' ')
            p++;
    }
    putchar('\n');
}

static void print_answer(const json_t *ans)
{
    int width = cli_term_width();
    if (width < 40) /* not a terminal, or a narrow one */
        width = 80;
    if (width > 100)
        width = 100;
    wrap(cli_jstr(ans, "answer", ""), width);
    const json_t *m = json_object_get(ans, "model");
    const json_t *recs = json_object_get(ans, "records");
    if (json_array_size(recs)) {
        static const char *const hdr[] = {"REF", "TIME", "SUMMARY"};
        cli_table t;
        cli_table_init(&t, 3, hdr);
        size_t i;
        json_t *r;
        json_array_foreach(recs, i, r) {
            char when[64], sum[200];
            cli_fmt_time((int64_t)cli_jnum(r, "ts", 0), when, sizeof when);
            cli_fmt_cut(cli_jstr(r, "summary", ""), (size_t)(width > 60 ? width - 40 : 40), sum, sizeof sum);
            const char *cells[] = {cli_jstr(r, "ref", "?"), when, sum};
            cli_table_row(&t, cells);
        }
        printf("\n");
        cli_table_print(&t, stdout);
        cli_table_free(&t);
    }
    if (cli_jbool(m, "used", false))
        printf("\n(written by the model %s (%s) from these records)\n", cli_jstr(m, "model", "?"),
               cli_jstr(m, "provider", "?"));
    else if (json_is_object(m))
        printf("\n(no model: %s)\n", cli_jstr(m, "why", "?"));
}

int cmd_ask(const cli_ctx *ctx0, int argc, char **argv)
{
    cli_ctx ctx = *ctx0;
    cli_args a;
    cli_args_init(&a, "ask", argc, argv);
    const char *at = NULL, *arg;
    char question[ASK_MAX + 1] = "";
    size_t len = 0;
    while ((arg = cli_args_next(&a))) {
        int rc;
        if (cli_args_is_help(&a))
            return cli_args_help(&a);
        if (cli_args_flag(&a, "--json")) {
            ctx.json = true;
        } else if ((rc = cli_args_value(&a, "--at", &at)) != 0) {
            if (rc < 0)
                return CLI_EXIT_USAGE;
        } else if (cli_args_positional(&a)) {
            size_t l = strlen(arg);
            if (len + l + 1 > ASK_MAX) {
                fprintf(stderr, "ippoc: ask: the question is longer than %d bytes\n", ASK_MAX);
                return CLI_EXIT_USAGE;
            }
            len += (size_t)snprintf(question + len, sizeof question - len, "%s%s", len ? " " : "", arg);
        } else {
            return cli_args_bad(&a);
        }
    }
    if (!len) {
        fprintf(stderr, "ippoc: ask: what is the question? (e.g. ippoc ask why did nginx restart at 03:12)\n");
        return CLI_EXIT_USAGE;
    }
    if (ctx.timeout_ms == 5000) /* the default: a model may need longer */
        ctx.timeout_ms = ASK_TIMEOUT_MS;
    json_t *body = json_pack("{s:s}", "question", question), *ans = NULL;
    if (at)
        json_object_set_new(body, "at", json_string(at));
    int rc = cli_http_post_obj(&ctx, "/v1/ask", body, &ans);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx.json)
        cli_print_json(ans);
    else
        print_answer(ans);
    json_decref(ans);
    return CLI_EXIT_OK;
}
