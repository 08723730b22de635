/* cmd_tool.c: `ippoc tool`: ToolSmith's tools (docs/tools.md) through the
 * daemon's API: list (GET /v1/tools), run NAME [KEY=VALUE...] (POST
 * /v1/tools/NAME/run), test NAME (POST /v1/tools/NAME/test), draft NAME
 * "description" (the model writes one: POST /v1/tools/draft) and add FILE
 * (a person's tool, posted as a draft: the same tests and policy). */
#include "cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TOOL_FILE_MAX (256 * 1024)

static bool name_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", *s))
            return false;
    return true;
}

static void print_list(const cli_ctx *ctx, const json_t *ans)
{
    (void)ctx;
    static const char *const hdr[] = {"NAME", "KIND", "TESTS", "LAST RUN", "DESCRIPTION"};
    const json_t *tools = json_object_get(ans, "tools"), *drafts = json_object_get(ans, "drafts");
    if (!json_array_size(tools))
        printf("no tools in the genome yet: 'ippoc tool add FILE' or 'ippoc tool draft NAME \"what it does\"'\n");
    cli_table t;
    cli_table_init(&t, 5, hdr);
    size_t i;
    json_t *e;
    json_array_foreach(tools, i, e) {
        char tests[16] = "-", last[80] = "never", desc[256];
        if (json_is_number(json_object_get(e, "tests")))
            snprintf(tests, sizeof tests, "%.0f", cli_jnum(e, "tests", 0));
        const json_t *lr = json_object_get(e, "last_run");
        if (json_is_object(lr)) {
            char when[48];
            cli_fmt_time((int64_t)cli_jnum(lr, "at", 0) * 1000, when, sizeof when);
            snprintf(last, sizeof last, "%s %s", when, json_is_true(json_object_get(lr, "ok")) ? "ok" : "failed");
        }
        cli_fmt_cut(cli_jstr(e, "error", cli_jstr(e, "description", "")), 60, desc, sizeof desc);
        const char *cells[] = {cli_jstr(e, "name", "?"), cli_jstr(e, "kind", "?"), tests, last, desc};
        cli_table_row(&t, cells);
    }
    if (json_array_size(tools))
        cli_table_print(&t, stdout);
    cli_table_free(&t);
    if (!json_array_size(drafts))
        return;
    static const char *const dh[] = {"DRAFT", "NAME", "STATUS"};
    cli_table_init(&t, 3, dh);
    json_array_foreach(drafts, i, e) {
        const char *cells[] = {cli_jstr(e, "id", "?"), cli_jstr(e, "name", "?"), cli_jstr(e, "status", "?")};
        cli_table_row(&t, cells);
    }
    printf("\n");
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

/* Prints a run's or a test's result; exit 1 when it failed. */
static int print_result(const cli_ctx *ctx, const json_t *ans)
{
    bool ok = json_is_true(json_object_get(ans, "ok"));
    if (ctx->json) {
        cli_print_json(ans);
        return ok ? CLI_EXIT_OK : CLI_EXIT_API;
    }
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(ans, "log"), i, e) printf("log: %s\n", json_string_value(e));
    json_array_foreach(json_object_get(ans, "tests"), i, e) {
        printf("%-4s %s%s%s\n", json_is_true(json_object_get(e, "ok")) ? "ok" : "FAIL", cli_jstr(e, "name", "?"),
               json_object_get(e, "error") ? ": " : "", cli_jstr(e, "error", ""));
    }
    const json_t *v = json_object_get(ans, "value");
    if (!json_object_get(ans, "tests") && v && !json_is_null(v)) {
        if (json_is_string(v))
            printf("%s%s", json_string_value(v),
                   *json_string_value(v) && json_string_value(v)[strlen(json_string_value(v)) - 1] == '\n' ? ""
                                                                                                      : "\n");
        else
            cli_print_json(v);
    }
    if (!ok)
        fprintf(stderr, "ippoc: tool %s: %s\n", cli_jstr(ans, "name", "?"), cli_jstr(ans, "error", "failed"));
    const char *sbx = cli_jstr(ans, "sandbox", "");
    if (!strncmp(sbx, "none", 4)) /* "none (why)" or "none" with "sandbox_why" */
        fprintf(stderr, "ippoc: note: ran without the sandbox%s%s\n", sbx[4] ? sbx + 4 : "",
                json_object_get(ans, "sandbox_why") ? cli_jstr(ans, "sandbox_why", "") : "");
    return ok ? CLI_EXIT_OK : CLI_EXIT_API;
}

static int tool_list(const cli_ctx *ctx, int argc, char **argv)
{
    return cli_run_get(ctx, "tool", argc, argv, "/v1/tools", print_list);
}

/* run NAME [KEY=VALUE...]: values that parse as JSON (numbers, true) are sent as such */
static int tool_run(cli_ctx *ctx, cli_args *a)
{
    const char *name = NULL, *arg;
    json_t *args = json_object();
    while ((arg = cli_args_next(a))) {
        if (cli_args_is_help(a)) {
            json_decref(args);
            return cli_args_help(a);
        }
        if (cli_args_flag(a, "--json")) {
            ctx->json = true;
            continue;
        }
        if (!cli_args_positional(a)) {
            json_decref(args);
            return cli_args_bad(a);
        }
        if (!name) {
            name = arg;
            continue;
        }
        const char *eq = strchr(arg, '=');
        if (!eq || eq == arg) {
            fprintf(stderr, "ippoc: tool run: '%s': expected KEY=VALUE\n", arg);
            json_decref(args);
            return CLI_EXIT_USAGE;
        }
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)(eq - arg), arg);
        json_t *v = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
        if (!v || json_is_object(v) || json_is_array(v)) {
            json_decref(v);
            v = json_string(eq + 1);
        }
        json_object_set_new(args, key, v);
    }
    if (!name_ok(name)) {
        fprintf(stderr, "ippoc: tool run: %s\n", name ? "NAME: letters, digits, '_' or '-'" : "missing NAME");
        json_decref(args);
        return CLI_EXIT_USAGE;
    }
    json_t *body = json_pack("{s:o}", "args", args);
    char path[128];
    snprintf(path, sizeof path, "/v1/tools/%s/run", name);
    json_t *ans;
    int rc = cli_http_post_obj(ctx, path, body, &ans);
    if (rc != CLI_EXIT_OK)
        return rc;
    rc = print_result(ctx, ans);
    json_decref(ans);
    return rc;
}

static int tool_test(cli_ctx *ctx, cli_args *a)
{
    const char *name = NULL;
    int rc = cli_args_simple(a, ctx, &name, "NAME");
    if (rc < 0)
        return cli_args_help(a);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (!name_ok(name)) {
        fprintf(stderr, "ippoc: tool test: NAME: letters, digits, '_' or '-'\n");
        return CLI_EXIT_USAGE;
    }
    char path[128];
    snprintf(path, sizeof path, "/v1/tools/%s/test", name);
    json_t *ans;
    if (ctx->timeout_ms < 60000)
        ctx->timeout_ms = 60000;
    if ((rc = cli_http_post_json(ctx, path, "{}", &ans)) != CLI_EXIT_OK)
        return rc;
    rc = print_result(ctx, ans);
    json_decref(ans);
    return rc;
}

static int post_draft(cli_ctx *ctx, json_t *body)
{
    if (ctx->timeout_ms < 180000)
        ctx->timeout_ms = 180000; /* the model writes, then the tests run */
    json_t *ans;
    int rc = cli_http_post_obj(ctx, "/v1/tools/draft", body, &ans);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx->json)
        cli_print_json(ans);
    else
        printf("draft %s (%s): %s%s%s\n", cli_jstr(ans, "id", "?"), cli_jstr(ans, "name", "?"),
               cli_jstr(ans, "status", "?"), json_is_string(json_object_get(ans, "commit")) ? ", commit " : "",
               cli_jstr(ans, "commit", ""));
    json_decref(ans);
    return CLI_EXIT_OK;
}

/* draft NAME "description": the words after NAME are joined */
static int tool_draft(cli_ctx *ctx, cli_args *a)
{
    const char *name = NULL, *arg;
    char desc[2048] = "";
    while ((arg = cli_args_next(a))) {
        if (cli_args_is_help(a))
            return cli_args_help(a);
        if (cli_args_flag(a, "--json")) {
            ctx->json = true;
            continue;
        }
        if (!cli_args_positional(a))
            return cli_args_bad(a);
        if (!name)
            name = arg;
        else
            snprintf(desc + strlen(desc), sizeof desc - strlen(desc), "%s%s", desc[0] ? " " : "", arg);
    }
    if (!name_ok(name) || !desc[0]) {
        fprintf(stderr, "ippoc: tool draft: usage: ippoc tool draft NAME \"what it does\"\n");
        return CLI_EXIT_USAGE;
    }
    return post_draft(ctx, json_pack("{s:s,s:s}", "name", name, "description", desc));
}

/* add FILE: NAME from the file's name (NAME.lua) */
static int tool_add(cli_ctx *ctx, cli_args *a)
{
    const char *file = NULL;
    int rc = cli_args_simple(a, ctx, &file, "FILE");
    if (rc < 0)
        return cli_args_help(a);
    if (rc != CLI_EXIT_OK)
        return rc;
    const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
    char name[80];
    size_t bl = strlen(base);
    if (bl < 5 || bl - 4 >= sizeof name || strcmp(base + bl - 4, ".lua")) {
        fprintf(stderr, "ippoc: tool add: %s: expected NAME.lua\n", file);
        return CLI_EXIT_USAGE;
    }
    snprintf(name, sizeof name, "%.*s", (int)(bl - 4), base);
    if (!name_ok(name)) {
        fprintf(stderr, "ippoc: tool add: %s: the name '%s' may hold letters, digits, '_' or '-'\n", file, name);
        return CLI_EXIT_USAGE;
    }
    FILE *f = fopen(file, "rb");
    if (!f) {
        fprintf(stderr, "ippoc: tool add: %s: %s\n", file, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    char *buf = malloc(TOOL_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, TOOL_FILE_MAX + 1, f) : 0;
    fclose(f);
    if (!buf || n > TOOL_FILE_MAX) {
        fprintf(stderr, "ippoc: tool add: %s: %s\n", file, buf ? "larger than 256 KiB" : "out of memory");
        free(buf);
        return CLI_EXIT_USAGE;
    }
    buf[n] = 0;
    json_t *body = json_pack("{s:s,s:s}", "name", name, "source", buf);
    free(buf);
    if (!body) {
        fprintf(stderr, "ippoc: tool add: %s: not UTF-8 text\n", file);
        return CLI_EXIT_USAGE;
    }
    return post_draft(ctx, body);
}

int cmd_tool(const cli_ctx *ctx0, int argc, char **argv)
{
    cli_ctx ctx = *ctx0;
    const char *sub = argc >= 2 ? argv[1] : "list";
    if (argc < 2 || !strcmp(sub, "list"))
        return tool_list(&ctx, argc < 2 ? argc : argc - 1, argc < 2 ? argv : argv + 1);
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) {
        cli_help_command("tool", stdout);
        return CLI_EXIT_OK;
    }
    cli_args a;
    cli_args_init(&a, "tool", argc - 1, argv + 1);
    if (!strcmp(sub, "run"))
        return tool_run(&ctx, &a);
    if (!strcmp(sub, "test"))
        return tool_test(&ctx, &a);
    if (!strcmp(sub, "draft"))
        return tool_draft(&ctx, &a);
    if (!strcmp(sub, "add"))
        return tool_add(&ctx, &a);
    if (!strcmp(sub, "--json"))
        return tool_list(&ctx, argc, argv);
    fprintf(stderr, "ippoc: tool: unknown subcommand '%s' (list, run, test, draft, add)\n", sub);
    return CLI_EXIT_USAGE;
}
