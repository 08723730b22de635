/* test_opts.c: unit tests of how `ippoc` reads its command line and finds
 * the daemon (src/cli/opts.c, src/cli/args.c, URL building in http.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void clear_env(void)
{
    unsetenv("IPPOC_URL");
    unsetenv("IPPOC_TOKEN");
    unsetenv("IPPOC_STATE_DIR");
}

static void test_global(void **state)
{
    char *argv[] = {"ippoc", "--json", "--url", "http://h:1/", "--token=t", "--timeout", "0.5",
                    "show", "--json", NULL};
    cli_global g = {0};
    cli_ctx ctx;
    clear_env();
    assert_int_equal(cli_parse_global(9, argv, &g), 7);
    assert_true(g.json);
    assert_int_equal(cli_resolve(&g, &ctx), CLI_EXIT_OK);
    assert_string_equal(ctx.url, "http://h:1"); /* trailing '/' dropped */
    assert_string_equal(ctx.token, "t");
    assert_int_equal(ctx.timeout_ms, 500);
}

static void test_global_errors(void **state)
{
    char *a1[] = {"ippoc", "--bogus", "status", NULL};
    char *a2[] = {"ippoc", "--url", NULL};
    char *a3[] = {"ippoc", "--timeout", "soon", "status", NULL};
    cli_global g = {0};
    cli_ctx ctx;
    clear_env();
    assert_int_equal(cli_parse_global(3, a1, &g), -1);
    assert_int_equal(cli_parse_global(2, a2, &g), -1);
    memset(&g, 0, sizeof g);
    assert_int_equal(cli_parse_global(4, a3, &g), 3);
    assert_int_equal(cli_resolve(&g, &ctx), CLI_EXIT_USAGE);
    g.timeout = NULL;
    g.url = "ftp://x";
    assert_int_equal(cli_resolve(&g, &ctx), CLI_EXIT_USAGE);
}

static void test_url_sources(void **state)
{
    char dir[] = "/tmp/ippoc-cli-test-XXXXXX", path[256], cwd[4096];
    cli_global g = {0};
    cli_ctx ctx;
    FILE *f;
    clear_env();
    assert_non_null(mkdtemp(dir));
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(cli_resolve(&g, &ctx), CLI_EXIT_OK);
    assert_string_equal(ctx.url, CLI_DEFAULT_URL);
    assert_null(ctx.token);

    assert_int_equal(mkdir(".ippoc", 0700), 0);
    assert_non_null(f = fopen(".ippoc/ippocd.url", "w"));
    fputs("  http://127.0.0.1:4242\n", f);
    fclose(f);
    assert_int_equal(cli_resolve(&g, &ctx), CLI_EXIT_OK);
    assert_string_equal(ctx.url, "http://127.0.0.1:4242");

    assert_string_equal(ctx.socket, ""); /* no ippocd.sock beside it: TCP */
    /* a socket beside the URL file: used instead of TCP; a plain file is not */
    int sfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un su = {.sun_family = AF_UNIX};
    snprintf(su.sun_path, sizeof su.sun_path, ".ippoc/ippocd.sock");
    assert_int_equal(bind(sfd, (struct sockaddr *)&su, sizeof su), 0);
    assert_int_equal(cli_resolve(&g, &ctx), CLI_EXIT_OK);
    assert_string_equal(ctx.socket, ".ippoc/ippocd.sock");
    close(sfd);
    unlink(".ippoc/ippocd.sock");
    assert_non_null(f = fopen(".ippoc/ippocd.sock", "w"));
    fclose(f);
    assert_int_equal(cli_resolve(&g, &ctx), CLI_EXIT_OK);
    assert_string_equal(ctx.socket, "");
    unlink(".ippoc/ippocd.sock");

    snprintf(path, sizeof path, "%s/.ippoc", dir);
    setenv("IPPOC_STATE_DIR", "/nonexistent-ippoc", 1);
    assert_int_equal(cli_resolve(&g, &ctx), CLI_EXIT_UNREACH); /* named dir must hold the file */
    g.state_dir = path;
    assert_int_equal(cli_resolve(&g, &ctx), CLI_EXIT_OK);
    assert_string_equal(ctx.url, "http://127.0.0.1:4242");

    setenv("IPPOC_URL", "http://env:1", 1);
    setenv("IPPOC_TOKEN", "envtok", 1);
    assert_int_equal(cli_resolve(&g, &ctx), CLI_EXIT_OK);
    assert_string_equal(ctx.url, "http://env:1");
    assert_string_equal(ctx.socket, ""); /* an explicit URL: always TCP */
    assert_string_equal(ctx.token, "envtok");
    g.url = "https://flag:2";
    assert_int_equal(cli_resolve(&g, &ctx), CLI_EXIT_OK);
    assert_string_equal(ctx.url, "https://flag:2");

    unlink(".ippoc/ippocd.url");
    rmdir(".ippoc");
    assert_int_equal(chdir(cwd), 0);
    rmdir(dir);
    clear_env();
}

static void test_args(void **state)
{
    char *argv[] = {"show", "cpu", "--since", "5m", "--width=30", "--", "--weird", NULL};
    const char *since = NULL, *width = NULL, *pos[2] = {0};
    int npos = 0;
    cli_args a;
    cli_args_init(&a, "show", 7, argv);
    while (cli_args_next(&a)) {
        if (cli_args_value(&a, "--since", &since) == 1 || cli_args_value(&a, "--width", &width) == 1)
            continue;
        assert_true(cli_args_positional(&a));
        pos[npos++] = a.argv[a.i];
    }
    assert_string_equal(since, "5m");
    assert_string_equal(width, "30");
    assert_int_equal(npos, 2);
    assert_string_equal(pos[0], "cpu");
    assert_string_equal(pos[1], "--weird");

    char *bad[] = {"show", "--since", NULL};
    cli_args_init(&a, "show", 2, bad);
    assert_non_null(cli_args_next(&a));
    assert_int_equal(cli_args_value(&a, "--since", &since), -1);
}

static void test_checks(void **state)
{
    int64_t ms;
    long v;
    assert_int_equal(cli_check_duration("--step", "10s", &ms), CLI_EXIT_OK);
    assert_int_equal(ms, 10000);
    assert_int_equal(cli_check_duration("--step", "abc", &ms), CLI_EXIT_USAGE);
    assert_int_equal(cli_check_duration("--step", "0", &ms), CLI_EXIT_USAGE);
    assert_int_equal(cli_check_time("--since", "15m", 1000000000, &ms), CLI_EXIT_OK);
    assert_int_equal(ms, 1000000000 - 900000);
    assert_int_equal(cli_check_time("--since", "abc", 0, &ms), CLI_EXIT_USAGE);
    assert_int_equal(cli_check_int("--limit", "12", 1, 100, &v), CLI_EXIT_OK);
    assert_int_equal(v, 12);
    assert_int_equal(cli_check_int("--limit", "0", 1, 100, &v), CLI_EXIT_USAGE);
    assert_int_equal(cli_check_int("--limit", "3x", 1, 100, &v), CLI_EXIT_USAGE);
}

static void test_url_building(void **state)
{
    cli_url u;
    cli_url_init(&u, "/v1/metrics/");
    cli_url_append_escaped(&u, "cpu.usage_percent{cpu=\"cpu0\"}");
    cli_url_param(&u, "from", "15m");
    cli_url_param(&u, "skip", NULL);
    cli_url_param(&u, "match", "a b*&");
    assert_false(u.overflow);
    assert_string_equal(u.buf, "/v1/metrics/cpu.usage_percent%7Bcpu%3D%22cpu0%22%7D?from=15m&match=a%20b%2A%26");
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cli_url_param(&u, "k", big);
    assert_true(u.overflow);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_global),  cmocka_unit_test(test_global_errors),
        cmocka_unit_test(test_url_sources), cmocka_unit_test(test_args),
        cmocka_unit_test(test_checks),  cmocka_unit_test(test_url_building),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
