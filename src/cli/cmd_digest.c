/* cmd_digest.c: dreaming's commands. `ippoc digest [--day YYYY-MM-DD]`
 * prints a day's digest (GET /v1/digest): what happened, what was healed,
 * what is drifting, what it proposes; `ippoc dream` starts a dreaming pass
 * now (POST /v1/dream) and prints what each step did once its brain.dream
 * event is there. */
#include "cli/cli.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>

#define DREAM_WAIT_MS 60000

int cmd_digest(const cli_ctx *ctx0, int argc, char **argv)
{
    cli_ctx ctx = *ctx0;
    cli_args a;
    const char *day = NULL;
    cli_args_init(&a, "digest", argc, argv);
    while (cli_args_next(&a)) {
        int r;
        if (cli_args_is_help(&a))
            return cli_args_help(&a);
        if (cli_args_flag(&a, "--json"))
            ctx.json = true;
        else if ((r = cli_args_value(&a, "--day", &day)) != 0) {
            if (r < 0)
                return CLI_EXIT_USAGE;
        } else
            return cli_args_bad(&a);
    }
    if (day && (strlen(day) != 10 || strspn(day, "0123456789-") != 10 || day[4] != '-' || day[7] != '-')) {
        fprintf(stderr, "ippoc: --day: bad day '%s' (expected YYYY-MM-DD)\n", day);
        return CLI_EXIT_USAGE;
    }
    char path[64];
    snprintf(path, sizeof path, "/v1/digest%s%s", day ? "?day=" : "", day ? day : "");
    json_t *ans;
    int rc = cli_http_get_json(&ctx, path, &ans, NULL);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx.json)
        cli_print_json(ans);
    else
        fputs(cli_jstr(ans, "text", "(no text)\n"), stdout);
    json_decref(ans);
    return CLI_EXIT_OK;
}

static void nap(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The brain.dream event of pass, NULL while it is not there. */
static json_t *dream_event(const cli_ctx *ctx, uint64_t pass, int *rc)
{
    json_t *ans = NULL;
    *rc = cli_http_get_json(ctx, "/v1/events?type=brain.dream&limit=20", &ans, NULL);
    if (*rc != CLI_EXIT_OK)
        return NULL;
    const json_t *evs = json_is_array(ans) ? ans : json_object_get(ans, "events");
    json_t *found = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(evs, i, e) {
        json_t *p = json_object_get(e, "payload");
        if (json_is_object(p) && (uint64_t)json_integer_value(json_object_get(p, "pass")) == pass) {
            found = json_incref(p);
            break;
        }
    }
    json_decref(ans);
    return found;
}

static void print_step(const char *name, const json_t *s)
{
    printf("  %-11s", name);
    if (!s) {
        printf(" not run\n");
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v) {
        if (json_is_integer(v))
            printf(" %s %lld", k, (long long)json_integer_value(v));
        else if (json_is_string(v))
            printf(" %s: %s", k, json_string_value(v));
        else if (json_is_boolean(v))
            printf(" %s %s", k, json_is_true(v) ? "yes" : "no");
    }
    printf("\n");
}

int cmd_dream(const cli_ctx *ctx0, int argc, char **argv)
{
    cli_ctx ctx = *ctx0;
    cli_args a = {.argc = argc, .argv = argv};
    cli_args_init(&a, "dream", argc, argv);
    int rc = cli_args_simple(&a, &ctx, NULL, NULL);
    if (rc < 0)
        return cli_args_help(&a);
    if (rc != CLI_EXIT_OK)
        return rc;
    json_t *ans = NULL;
    if ((rc = cli_http_post_json(&ctx, "/v1/dream", NULL, &ans)) != CLI_EXIT_OK)
        return rc;
    uint64_t pass = (uint64_t)json_integer_value(json_object_get(ans, "pass"));
    json_decref(ans);
    for (int waited = 0; waited <= DREAM_WAIT_MS; waited += 200) {
        json_t *p = dream_event(&ctx, pass, &rc);
        if (rc != CLI_EXIT_OK)
            return rc;
        if (p) {
            if (ctx.json) {
                cli_print_json(p);
            } else {
                const json_t *st = json_object_get(p, "steps");
                printf("dreaming pass %" PRIu64 "%s, %lld ms\n", pass,
                       json_is_true(json_object_get(p, "stopped")) ? " (stopped early)" : "",
                       (long long)json_integer_value(json_object_get(p, "took_ms")));
                print_step("cases", json_object_get(st, "cases"));
                print_step("know_dedup", json_object_get(st, "know_dedup"));
                print_step("know_decay", json_object_get(st, "know_decay"));
                print_step("baselines", json_object_get(st, "baselines"));
                print_step("digest", json_object_get(st, "digest"));
            }
            json_decref(p);
            return CLI_EXIT_OK;
        }
        nap(200);
    }
    fprintf(stderr, "ippoc: dreaming pass %" PRIu64 " did not end within %d s: see 'ippoc events --type brain.dream'\n",
            pass, DREAM_WAIT_MS / 1000);
    return CLI_EXIT_API;
}
