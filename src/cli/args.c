/* args.c: scanning a command's own arguments (options may come before or
 * after positional ones, "--opt VALUE" or "--opt=VALUE", "--" ends options)
 * and validating option values with messages that name the option, the bad
 * value and what was expected. */
#include "cli/cli.h"

#include "core/core.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv)
{
    a->argc = argc;
    a->argv = argv;
    a->i = 0; /* argv[0] is the command name */
    a->cmd = cmd;
    a->only_pos = false;
}

const char *cli_args_next(cli_args *a)
{
    a->i++;
    if (a->i >= a->argc)
        return NULL;
    if (!a->only_pos && !strcmp(a->argv[a->i], "--")) {
        a->only_pos = true;
        return cli_args_next(a);
    }
    return a->argv[a->i];
}

bool cli_args_positional(const cli_args *a)
{
    const char *s = a->argv[a->i];
    return a->only_pos || s[0] != '-' || s[1] == '\0';
}

bool cli_args_flag(cli_args *a, const char *name)
{
    return !a->only_pos && !strcmp(a->argv[a->i], name);
}

int cli_args_value(cli_args *a, const char *name, const char **val)
{
    const char *s = a->argv[a->i];
    size_t n = strlen(name);
    if (a->only_pos || strncmp(s, name, n) != 0)
        return 0;
    if (s[n] == '=') {
        *val = s + n + 1;
        return 1;
    }
    if (s[n] != '\0')
        return 0;
    if (a->i + 1 >= a->argc) {
        fprintf(stderr, "ippoc: %s: missing value (see 'ippoc help %s')\n", name, a->cmd);
        return -1;
    }
    *val = a->argv[++a->i];
    return 1;
}

bool cli_args_is_help(const cli_args *a)
{
    const char *s = a->argv[a->i];
    return !a->only_pos && (!strcmp(s, "-h") || !strcmp(s, "--help"));
}

int cli_args_help(const cli_args *a)
{
    cli_help_command(a->cmd, stdout);
    return CLI_EXIT_OK;
}

static bool is_global_option(const char *s)
{
    static const char *const globals[] = {"--url", "--token", "--timeout", "--state-dir"};
    for (size_t i = 0; i < sizeof globals / sizeof globals[0]; i++) {
        size_t n = strlen(globals[i]);
        if (!strncmp(s, globals[i], n) && (s[n] == '\0' || s[n] == '='))
            return true;
    }
    return false;
}

int cli_args_bad(const cli_args *a)
{
    const char *s = a->argv[a->i];
    if (!a->only_pos && is_global_option(s))
        fprintf(stderr, "ippoc: %s: %s is a global option, put it before the command (ippoc %s ... %s)\n",
                a->cmd, s, s, a->cmd);
    else if (cli_args_positional(a))
        fprintf(stderr, "ippoc: %s: unexpected argument '%s' (see 'ippoc help %s')\n",
                a->cmd, s, a->cmd);
    else
        fprintf(stderr, "ippoc: %s: unknown option '%s' (see 'ippoc help %s')\n",
                a->cmd, s, a->cmd);
    return CLI_EXIT_USAGE;
}

int cli_check_duration(const char *opt, const char *val, int64_t *ms)
{
    if (!*val || core_parse_duration(val, ms) < 0 || *ms <= 0) {
        fprintf(stderr, "ippoc: %s: bad duration '%s' (expected e.g. 30s, 15m, 2h)\n", opt, val);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

int cli_check_time(const char *opt, const char *val, int64_t now_ms, int64_t *ms)
{
    if (!*val || core_parse_time(val, now_ms, ms) < 0) {
        fprintf(stderr, "ippoc: %s: bad duration '%s' (expected e.g. 30s, 15m, 2h, now or epoch seconds)\n",
                opt, val);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

int cli_check_int(const char *opt, const char *val, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (end == val || *end != '\0' || errno != 0 || v < lo || v > hi) {
        fprintf(stderr, "ippoc: %s: bad number '%s' (expected an integer from %ld to %ld)\n",
                opt, val, lo, hi);
        return CLI_EXIT_USAGE;
    }
    *out = v;
    return CLI_EXIT_OK;
}

int cli_args_simple(cli_args *a, cli_ctx *ctx, const char **pos, const char *posname)
{
    return cli_args_opt(a, ctx, NULL, NULL, pos, posname);
}

int cli_args_opt(cli_args *a, cli_ctx *ctx, const char *opt, const char **val, const char **pos, const char *posname)
{
    while (cli_args_next(a)) {
        int r = 0;
        if (cli_args_is_help(a))
            return -1;
        if (cli_args_flag(a, "--json"))
            ctx->json = true;
        else if (opt && (r = cli_args_value(a, opt, val)) != 0) {
            if (r < 0)
                return CLI_EXIT_USAGE;
        } else if (pos && !*pos && cli_args_positional(a))
            *pos = a->argv[a->i];
        else
            return cli_args_bad(a);
    }
    if (pos && posname && !*pos) {
        fprintf(stderr, "ippoc: %s: missing %s (see 'ippoc help %s')\n", a->cmd, posname, a->cmd);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

int cli_run_get(const cli_ctx *ctx0, const char *cmd, int argc, char **argv, const char *path,
                void (*print)(const cli_ctx *ctx, const json_t *ans))
{
    cli_ctx ctx = *ctx0;
    cli_args a;
    json_t *ans;
    cli_args_init(&a, cmd, argc, argv);
    int rc = cli_args_simple(&a, &ctx, NULL, NULL);
    if (rc < 0)
        return cli_args_help(&a);
    if (rc != CLI_EXIT_OK || (rc = cli_http_get_json(&ctx, path, &ans, NULL)) != CLI_EXIT_OK)
        return rc;
    if (ctx.json)
        cli_print_json(ans);
    else
        print(&ctx, ans);
    json_decref(ans);
    return CLI_EXIT_OK;
}

/* "cli:alice": the login name, only [A-Za-z0-9._-], at most 48 of them. */
void cli_who_am_i(char *buf, size_t n)
{
    const char *u = getenv("USER");
    struct passwd *pw = (!u || !*u) ? getpwuid(geteuid()) : NULL;
    size_t len = (size_t)snprintf(buf, n, "cli");
    if (pw)
        u = pw->pw_name;
    if (!u || !*u)
        return;
    if (len + 1 < n)
        buf[len++] = ':';
    for (size_t i = 0; u[i] && i < 48 && len + 1 < n; i++) {
        char c = u[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        buf[len++] = ok ? c : '_';
    }
    buf[len] = '\0';
}
