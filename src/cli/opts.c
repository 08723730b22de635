/* opts.c: the global options of `ippoc` (--url, --token, --timeout,
 * --state-dir, --json, --help, --version) and how the daemon's URL is found:
 *
 *   --url URL  >  $IPPOC_URL  >  <state-dir>/ippocd.url (--state-dir DIR or
 *   $IPPOC_STATE_DIR)  >  ./.ippoc/ippocd.url if it exists  >  the default
 *   http://127.0.0.1:7070.
 *
 * When the URL comes from a state dir's ippocd.url (or is the default and the
 * default state dir /var/lib/ippoc has one), the daemon's Unix socket
 * ippocd.sock beside it is used instead of TCP if this user may open it: no
 * other local client can crowd the owner out of it.
 *
 * The token comes from --token, else $IPPOC_TOKEN. */
#include "cli/cli.h"

#include "core/core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Matches "--name VALUE" or "--name=VALUE" at argv[*i]. */
static int take_value(int argc, char **argv, int *i, const char *name, const char **val)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "ippoc: %s: missing value\n", name);
        return -1;
    }
    *val = argv[++*i];
    return 1;
}

static int global_flag(const char *a, cli_global *g)
{
    if (!strcmp(a, "--json"))
        g->json = true;
    else if (!strcmp(a, "-h") || !strcmp(a, "--help"))
        g->help = true;
    else if (!strcmp(a, "--version") || !strcmp(a, "-V"))
        g->version = true;
    else
        return 0;
    return 1;
}

int cli_parse_global(int argc, char **argv, cli_global *g)
{
    static const char *const names[] = {"--url", "--token", "--timeout", "--state-dir"};
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--"))
            return i + 1;
        if (a[0] != '-' || a[1] == '\0')
            return i; /* the command */
        if (global_flag(a, g))
            continue;
        const char **dst[] = {&g->url, &g->token, &g->timeout, &g->state_dir};
        int r = 0;
        for (size_t k = 0; k < sizeof names / sizeof names[0] && r == 0; k++)
            if ((r = take_value(argc, argv, &i, names[k], dst[k])) < 0)
                return -1;
        if (r == 0) {
            fprintf(stderr, "ippoc: unknown option '%s' (see 'ippoc --help')\n", a);
            return -1;
        }
    }
    return i;
}

/* First line of an ippocd.url file, trimmed, into out. 0 or -errno
 * (-ENODATA when the file is empty). */
static int load_url(const char *path, char *out, size_t n)
{
    char buf[CLI_URL_MAX];
    ssize_t r = core_read_file(path, buf, sizeof buf);
    if (r < 0)
        return (int)r;
    buf[strcspn(buf, "\r\n")] = '\0';
    char *u = core_trim(buf);
    if (!*u)
        return -ENODATA;
    core_sncpy(out, n, u);
    return 0;
}

/* Sets ctx->socket to DIR/ippocd.sock, DIR being the directory of file,
 * when that is a socket this user may connect to. */
static void find_socket(const char *file, cli_ctx *ctx)
{
    const char *slash = strrchr(file, '/');
    char path[CLI_PATH_MAX];
    int n = slash ? snprintf(path, sizeof path, "%.*s/ippocd.sock", (int)(slash - file), file)
                  : snprintf(path, sizeof path, "ippocd.sock");
    struct stat st;
    if (n > 0 && (size_t)n < sizeof path && stat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
        access(path, R_OK | W_OK) == 0)
        core_sncpy(ctx->socket, sizeof ctx->socket, path);
}

/* Reads the URL file into ctx; 1 if it is missing and need not exist. */
static int read_url_file(const char *path, cli_ctx *ctx, bool must_exist)
{
    int r = load_url(path, ctx->url, sizeof ctx->url);
    if (r == -ENOENT && !must_exist)
        return 1;
    if (r == -ENODATA)
        fprintf(stderr, "ippoc: cannot reach ippocd: %s is empty\n", path);
    else if (r < 0)
        fprintf(stderr, "ippoc: cannot reach ippocd: cannot read %s: %s (is ippocd running with that state dir?)\n",
                path, strerror(-r));
    if (r == 0) {
        core_sncpy(ctx->url_file, sizeof ctx->url_file, path);
        find_socket(path, ctx);
    }
    return r < 0 ? -1 : 0;
}

static int url_from_files(const cli_global *g, cli_ctx *ctx)
{
    const char *dir = g->state_dir ? g->state_dir : getenv("IPPOC_STATE_DIR");
    char path[CLI_PATH_MAX];
    if (dir && *dir) {
        snprintf(path, sizeof path, "%s/ippocd.url", dir);
        return read_url_file(path, ctx, true);
    }
    int r = read_url_file(".ippoc/ippocd.url", ctx, false);
    if (r == 1) {
        core_sncpy(ctx->url, sizeof ctx->url, CLI_DEFAULT_URL);
        find_socket(CLI_DEFAULT_STATE_DIR "/ippocd.url", ctx);
    }
    return r < 0 ? -1 : 0;
}

static void strip_slashes(char *url)
{
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        url[--n] = '\0';
}

static bool url_scheme_ok(const char *url)
{
    return !strncmp(url, "http://", 7) || !strncmp(url, "https://", 8);
}

int cli_reload_url(cli_ctx *ctx)
{
    char url[CLI_URL_MAX];
    if (!ctx->url_file[0] || load_url(ctx->url_file, url, sizeof url) < 0)
        return 0;
    strip_slashes(url);
    if (!url_scheme_ok(url) || !strcmp(url, ctx->url))
        return 0;
    core_sncpy(ctx->url, sizeof ctx->url, url);
    return 1;
}

static int check_url(cli_ctx *ctx, const char *origin)
{
    strip_slashes(ctx->url);
    if (!url_scheme_ok(ctx->url)) {
        fprintf(stderr, "ippoc: %s: bad URL '%s' (expected e.g. http://127.0.0.1:7070)\n",
                origin, ctx->url);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

static int resolve_url(const cli_global *g, cli_ctx *ctx)
{
    const char *env = getenv("IPPOC_URL");
    const char *origin = "--url";
    if (g->url) {
        core_sncpy(ctx->url, sizeof ctx->url, g->url);
    } else if (env && *env) {
        core_sncpy(ctx->url, sizeof ctx->url, env);
        origin = "IPPOC_URL";
    } else {
        if (url_from_files(g, ctx) < 0)
            return CLI_EXIT_UNREACH;
        origin = "ippocd.url";
    }
    return check_url(ctx, origin);
}

int cli_resolve(const cli_global *g, cli_ctx *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->json = g->json;
    ctx->timeout_ms = 5000;
    if (g->timeout) {
        int64_t ms;
        if (core_parse_duration(g->timeout, &ms) < 0 || ms <= 0) {
            fprintf(stderr, "ippoc: --timeout: bad duration '%s' (expected seconds, e.g. 5, 0.5, 30s)\n",
                    g->timeout);
            return CLI_EXIT_USAGE;
        }
        ctx->timeout_ms = ms;
    }
    const char *tok = g->token ? g->token : getenv("IPPOC_TOKEN");
    ctx->token = (tok && *tok) ? tok : NULL;
    return resolve_url(g, ctx);
}
