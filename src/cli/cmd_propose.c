/* cmd_propose.c: `ippoc propose SERVICE ACTION... [--reason TEXT]`: proposes
 * one typed action (rule-language text such as "restart" or "signal HUP")
 * for a service through POST /v1/actions, as cli:$USER. The daemon opens an
 * incident and sends the action through heal's policy; whatever it would
 * run is queued for approval, never run by itself: this prints the
 * incident, the verdict and how to approve it. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#define PROPOSE_ACTION_MAX 480 /* the API's limit on "action" */
#define PROPOSE_DEFAULT_REASON "proposed by hand with `ippoc propose`"

static void print_proposal(const json_t *ans)
{
    const json_t *pend = json_object_get(ans, "pending");
    const char *verdict = cli_jstr(ans, "verdict", "?");
    printf("incident %.0f: %s %s: %s\n", cli_jnum(ans, "incident", 0), cli_jstr(ans, "action", "?"),
           cli_jstr(ans, "service", "?"), !strcmp(verdict, "queue") ? "queued for approval" : verdict);
    if (json_array_size(pend)) {
        size_t i;
        json_t *v;
        json_array_foreach(pend, i, v)
            printf("approve with `ippoc approve %lld` (reject with `ippoc reject %lld`)\n",
                   (long long)json_integer_value(v), (long long)json_integer_value(v));
    } else {
        printf("%s\n", cli_jstr(ans, "reason", ""));
    }
}

/* Joins the ACTION words with blanks into buf; false when too long. */
static bool add_word(char *buf, size_t n, const char *w)
{
    size_t len = strlen(buf);
    int k = snprintf(buf + len, n - len, "%s%s", len ? " " : "", w);
    return k >= 0 && (size_t)k < n - len;
}

int cmd_propose(const cli_ctx *ctx0, int argc, char **argv)
{
    cli_ctx ctx = *ctx0;
    cli_args a;
    const char *service = NULL, *reason = PROPOSE_DEFAULT_REASON;
    char action[PROPOSE_ACTION_MAX + 2] = "", who[64];
    int rc = CLI_EXIT_OK;
    cli_args_init(&a, "propose", argc, argv);
    while (rc == CLI_EXIT_OK && cli_args_next(&a)) { /* SERVICE ACTION... [--reason TEXT] [--json] */
        if (cli_args_is_help(&a))
            return cli_args_help(&a);
        int e = cli_args_value(&a, "--reason", &reason);
        if (e < 0)
            rc = CLI_EXIT_USAGE;
        else if (e > 0)
            continue;
        else if (cli_args_flag(&a, "--json"))
            ctx.json = true;
        else if (!cli_args_positional(&a))
            rc = cli_args_bad(&a);
        else if (!service)
            service = a.argv[a.i];
        else if (!add_word(action, sizeof action, a.argv[a.i])) {
            fprintf(stderr, "ippoc: propose: ACTION is longer than %d bytes\n", PROPOSE_ACTION_MAX);
            rc = CLI_EXIT_USAGE;
        }
    }
    if (rc != CLI_EXIT_OK)
        return rc;
    if (!service || !action[0]) {
        fprintf(stderr, "ippoc: propose: missing %s (see 'ippoc help propose')\n", service ? "ACTION" : "SERVICE");
        return CLI_EXIT_USAGE;
    }
    cli_who_am_i(who, sizeof who);
    json_t *ans = NULL;
    rc = cli_http_post_obj(&ctx, "/v1/actions",
                           json_pack("{s:s, s:s, s:s, s:s}", "service", service, "action", action, "reason", reason,
                                     "who", who),
                           &ans);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx.json)
        cli_print_json(ans);
    else
        print_proposal(ans);
    json_decref(ans);
    return CLI_EXIT_OK;
}
