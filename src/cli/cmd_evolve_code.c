/* cmd_evolve_code.c: `ippoc evolve code` (POST /v1/evolve/code, then follow
 * the job: one line per state and per candidate until it ends) and `ippoc
 * evolve accept ID` (POST /v1/evolve/code/ID/accept: merge the best kept
 * branch on a clean tree and build it; the answer says what to restart).
 * Called by `ippoc evolve`'s subcommand table (cmd_evolve.c) with argv[0]
 * the subcommand's name. */
#include "cli/cli.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CODE_ACCEPT_TIMEOUT_MS (30 * 60 * 1000) /* how long accept waits for the merged tree to build */

typedef struct code_opts {
    const char *repo, *target, *bench, *build, *test, *goal;
    long candidates, repeats;
    bool detach;
} code_opts;

static int code_args(cli_args *a, cli_ctx *ctx, code_opts *o)
{
    const char *v;
    while (cli_args_next(a)) {
        int r;
        if (cli_args_is_help(a))
            return -1;
        if (cli_args_flag(a, "--json")) {
            ctx->json = true;
            continue;
        }
        if (cli_args_flag(a, "--detach")) {
            o->detach = true;
            continue;
        }
        const char *names[] = {"--repo", "--target", "--bench", "--build", "--test", "--goal"};
        const char **dst[] = {&o->repo, &o->target, &o->bench, &o->build, &o->test, &o->goal};
        bool took = false;
        for (size_t i = 0; i < sizeof names / sizeof names[0] && !took; i++) {
            if ((r = cli_args_value(a, names[i], dst[i])) < 0)
                return CLI_EXIT_USAGE;
            took = r == 1;
        }
        if (took)
            continue;
        if ((r = cli_args_value(a, "--candidates", &v)) != 0) {
            if (r < 0 || cli_check_int("--candidates", v, 1, 20, &o->candidates))
                return CLI_EXIT_USAGE;
            continue;
        }
        if ((r = cli_args_value(a, "--repeats", &v)) != 0) {
            if (r < 0 || cli_check_int("--repeats", v, 4, 100, &o->repeats))
                return CLI_EXIT_USAGE;
            continue;
        }
        return cli_args_bad(a);
    }
    if (!o->target || !o->bench) {
        fprintf(stderr, "ippoc: evolve code: --target FILE and --bench CMD are required (see 'ippoc help evolve code')\n");
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

static json_t *code_body(const code_opts *o, const char *repo)
{
    json_t *b = json_pack("{s:s, s:s, s:s}", "repo", repo, "target", o->target, "bench", o->bench);
    if (o->build)
        json_object_set_new(b, "build", json_string(o->build));
    if (o->test)
        json_object_set_new(b, "test", json_string(o->test));
    if (o->goal)
        json_object_set_new(b, "goal", json_string(o->goal));
    if (o->candidates)
        json_object_set_new(b, "candidates", json_integer(o->candidates));
    if (o->repeats)
        json_object_set_new(b, "repeats", json_integer(o->repeats));
    return b;
}

static void print_result(const json_t *r)
{
    const char *fit = cli_jstr(r, "fitness", NULL), *br = cli_jstr(r, "branch", NULL);
    printf("candidate %.0f: %s: %s%s%s%s%s\n", cli_jnum(r, "n", 0), cli_jstr(r, "status", "?"),
           cli_jstr(r, "reason", ""), fit && strcmp(cli_jstr(r, "reason", ""), "faster") == 0 ? " " : "",
           fit && strcmp(cli_jstr(r, "reason", ""), "faster") == 0 ? fit : "", br ? " -> " : "", br ? br : "");
}

static bool finished(const char *st)
{
    return !strcmp(st, "done") || !strcmp(st, "failed") || !strcmp(st, "stopped") || !strcmp(st, "interrupted");
}

/* Polls the job once a second, printing what changed, until it ends. */
static int follow(const cli_ctx *ctx, const char *id)
{
    char path[256], last[128] = "";
    size_t shown = 0;
    snprintf(path, sizeof path, "/v1/evolve/code/%s", id);
    for (;;) {
        json_t *doc = NULL;
        int rc = cli_http_get_json(ctx, path, &doc, NULL);
        if (rc != CLI_EXIT_OK)
            return rc;
        const char *st = cli_jstr(doc, "state", "?");
        const json_t *res = json_object_get(doc, "results");
        for (; shown < json_array_size(res); shown++)
            print_result(json_array_get(res, shown));
        if (strcmp(st, last) && !finished(st))
            printf("%s\n", st);
        snprintf(last, sizeof last, "%s", st);
        fflush(stdout);
        if (finished(st)) {
            const char *best = cli_jstr(doc, "best", NULL);
            if (!strcmp(st, "done"))
                printf("job %s done: %s%s%s\n", id, best ? "best branch " : "no candidate was faster",
                       best ? best : "", best ? " (ippoc evolve accept to merge it)" : "");
            else
                printf("job %s %s%s%s\n", id, st, json_object_get(doc, "error") ? ": " : "",
                       cli_jstr(doc, "error", ""));
            rc = strcmp(st, "done") ? CLI_EXIT_API : CLI_EXIT_OK;
            json_decref(doc);
            return rc;
        }
        json_decref(doc);
        sleep(1); /* the job's progress is polled; there is no stream for it */
    }
}

int cmd_evolve_code(const cli_ctx *ctx0, int argc, char **argv)
{
    cli_ctx ctx = *ctx0;
    cli_args a;
    code_opts o = {0};
    cli_args_init(&a, "evolve code", argc, argv);
    int rc = code_args(&a, &ctx, &o);
    if (rc < 0)
        return cli_args_help(&a);
    if (rc != CLI_EXIT_OK)
        return rc;
    char repo[PATH_MAX];
    if (!realpath(o.repo ? o.repo : ".", repo)) {
        fprintf(stderr, "ippoc: evolve code: --repo: cannot resolve '%s'\n", o.repo ? o.repo : ".");
        return CLI_EXIT_USAGE;
    }
    json_t *ans = NULL;
    rc = cli_http_post_obj(&ctx, "/v1/evolve/code", code_body(&o, repo), &ans);
    if (rc != CLI_EXIT_OK)
        return rc;
    const char *id = cli_jstr(ans, "id", "?");
    if (ctx.json && o.detach) {
        char *s = json_dumps(ans, JSON_COMPACT);
        printf("%s\n", s ? s : "{}");
        free(s);
    } else {
        printf(o.detach ? "%s\n" : "self-code job %s started\n", id);
    }
    fflush(stdout);
    if (!o.detach)
        rc = follow(&ctx, id);
    json_decref(ans);
    return rc;
}

/* Polls the job until its accept of branch ends; *acc: the outcome. */
static int wait_accept(const cli_ctx *ctx, const char *id, const char *branch, json_t **acc)
{
    cli_url u;
    cli_url_init(&u, "/v1/evolve/code/");
    cli_url_append_escaped(&u, id);
    for (int64_t waited = 0;; waited += 1000) {
        json_t *doc = NULL;
        int rc = cli_http_get_json(ctx, u.buf, &doc, NULL);
        if (rc != CLI_EXIT_OK)
            return rc;
        json_t *a = json_object_get(doc, "accept");
        const char *st = cli_jstr(a, "state", "running");
        if (strcmp(st, "running") && !strcmp(cli_jstr(a, "branch", ""), branch)) {
            *acc = json_incref(a);
            json_decref(doc);
            return CLI_EXIT_OK;
        }
        json_decref(doc);
        if (!a && waited > 60000) {
            fprintf(stderr, "ippoc: evolve accept: the policy let the merge run, but it has not started after a "
                            "minute; see 'ippoc audit'\n");
            return CLI_EXIT_API;
        }
        if (waited > CODE_ACCEPT_TIMEOUT_MS) {
            fprintf(stderr, "ippoc: evolve accept: still merging and building after %d minutes; see 'ippoc evolve code' "
                            "(GET /v1/evolve/code/%s)\n", CODE_ACCEPT_TIMEOUT_MS / 60000, id);
            return CLI_EXIT_API;
        }
        sleep(1); /* the accept's progress is polled; there is no stream for it */
    }
}

int cmd_evolve_accept(const cli_ctx *ctx0, int argc, char **argv)
{
    cli_ctx ctx = *ctx0;
    cli_args a;
    const char *id = NULL, *branch = NULL;
    cli_args_init(&a, "evolve accept", argc, argv);
    int rc = cli_args_opt(&a, &ctx, "--branch", &branch, &id, NULL);
    if (rc < 0)
        return cli_args_help(&a);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (!id) {
        fprintf(stderr, "ippoc: evolve accept: missing ID (see 'ippoc help evolve accept')\n");
        return CLI_EXIT_USAGE;
    }
    cli_url u;
    cli_url_init(&u, "/v1/evolve/code/");
    cli_url_append_escaped(&u, id);
    snprintf(u.buf + u.len, sizeof u.buf - u.len, "/accept");
    json_t *b = branch ? json_pack("{s:s}", "branch", branch) : json_object();
    json_t *ans = NULL;
    rc = cli_http_post_obj(&ctx, u.buf, b, &ans);
    if (rc != CLI_EXIT_OK)
        return rc;
    const char *verdict = cli_jstr(ans, "verdict", "?");
    if (strcmp(verdict, "execute")) { /* queued for approval, or recorded only */
        printf("%s: %s\n", verdict, cli_jstr(ans, "message", ""));
        json_decref(ans);
        return CLI_EXIT_OK;
    }
    json_t *acc = NULL;
    rc = wait_accept(&ctx, id, cli_jstr(ans, "branch", ""), &acc);
    json_decref(ans);
    if (rc != CLI_EXIT_OK)
        return rc;
    ans = acc;
    if (ctx.json) {
        char *s = json_dumps(ans, JSON_COMPACT);
        printf("%s\n", s ? s : "{}");
        free(s);
    } else if (json_object_get(ans, "merge")) {
        printf("merged %s into %s (%s)\n%s\n", cli_jstr(ans, "branch", "?"), cli_jstr(ans, "repo", "?"),
               cli_jstr(ans, "merge", "?"), cli_jstr(ans, "restart", ""));
    }
    if (!ctx.json && !json_is_true(json_object_get(ans, "built")))
        fprintf(stderr, "ippoc: evolve accept: %s%s\n", json_object_get(ans, "merge") ? "the build failed:\n" : "",
                cli_jstr(ans, "error", "?"));
    rc = json_is_true(json_object_get(ans, "built")) ? CLI_EXIT_OK : CLI_EXIT_API;
    json_decref(ans);
    return rc;
}
