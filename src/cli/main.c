/* main.c: entry point of `ippoc`, the command-line front end of ippocd.
 * Parses the global options, resolves the daemon's URL and token, and
 * dispatches to the command; the command's return value is the exit code
 * (see `ippoc --help`). The only place the process decides how to end. */
#include "cli/cli.h"

#include <curl/curl.h>
#include <string.h>

typedef int (*cmd_fn)(const cli_ctx *ctx, int argc, char **argv);

static const struct {
    const char *name;
    cmd_fn fn;
} commands[] = {
    {"status", cmd_status},
    {"metrics", cmd_metrics},
    {"show", cmd_show},
    {"events", cmd_events},
    {"services", cmd_services},
    {"incidents", cmd_incidents},
    {"incident", cmd_incident},
    {"pending", cmd_pending},
    {"approve", cmd_approve},
    {"reject", cmd_reject},
    {"audit", cmd_audit},
    {"anomalies", cmd_anomalies},
    {"detect", cmd_detect},
    {"logs", cmd_logs},
    {"why", cmd_why},
    {"diagnose", cmd_diagnose},
    {"ask", cmd_ask},
    {"llm", cmd_llm},
    {"digest", cmd_digest}, {"dream", cmd_dream},
    {"learn", cmd_learn},
    {"prefs", cmd_prefs},
    {"evolve", cmd_evolve},
    {"history", cmd_history}, {"diff", cmd_diff}, {"rollback", cmd_rollback}, {"genome", cmd_genome},
    {"tool", cmd_tool},
    {"review", cmd_review},
    {"propose", cmd_propose},
    {"mcp", cmd_mcp},
};

static cmd_fn find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(commands[i].name, name))
            return commands[i].fn;
    return NULL;
}

/* `ippoc help [COMMAND]` */
static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        cli_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (argc > 2) {
        fprintf(stderr, "ippoc: help: unexpected argument '%s'\n", argv[2]);
        return CLI_EXIT_USAGE;
    }
    if (!cli_help_command(argv[1], stdout)) {
        fprintf(stderr, "ippoc: help: unknown command '%s' (see 'ippoc --help')\n", argv[1]);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

static int run(int argc, char **argv)
{
    cli_global g = {0};
    cli_ctx ctx;
    int ci = cli_parse_global(argc, argv, &g);
    if (ci < 0)
        return CLI_EXIT_USAGE;
    if (g.version) {
        printf("ippoc %s\n", IPPOC_VERSION);
        return CLI_EXIT_OK;
    }
    if (g.help) { /* "ippoc --help show" is "ippoc help show" */
        if (ci >= argc || !cli_help_command(argv[ci], stdout))
            cli_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (ci < argc && !strcmp(argv[ci], "help"))
        return cmd_help(argc - ci, argv + ci);
    if (ci >= argc) {
        cli_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[ci], "logs") && ci + 1 < argc && !strcmp(argv[ci + 1], "templates")) /* offline */
        return cmd_logs_templates(&(cli_ctx){0}, argc - ci - 1, argv + ci + 1);
    if (!strcmp(argv[ci], "mesh")) /* key files in the state dir, or the daemon's mesh routes */
        return cmd_mesh(&g, argc - ci, argv + ci);
    cmd_fn fn = find_command(argv[ci]);
    if (!fn) {
        fprintf(stderr, "ippoc: unknown command '%s' (see 'ippoc --help')\n", argv[ci]);
        return CLI_EXIT_USAGE;
    }
    if (fn == cmd_detect || fn == cmd_review) /* works on files: no daemon, no URL to resolve */
        return fn(&(cli_ctx){0}, argc - ci, argv + ci);
    int rc = cli_resolve(&g, &ctx);
    return rc != CLI_EXIT_OK ? rc : fn(&ctx, argc - ci, argv + ci);
}

int main(int argc, char **argv)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "ippoc: cannot initialise libcurl\n");
        return CLI_EXIT_UNREACH;
    }
    int rc = run(argc, argv);
    fflush(stdout);
    curl_global_cleanup();
    return rc;
}
