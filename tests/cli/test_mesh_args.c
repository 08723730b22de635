/* test_mesh_args.c: unit tests of the argument parsing of `ippoc mesh
 * invite` and `ippoc mesh revoke` (src/cli/mesh_args.c): defaults, every
 * option in both spellings, and a message naming the argument and the
 * reason for each kind of bad input; plus the state dir the local commands
 * pick (cli_state_dir). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/cli.h"
#include "mesh/identity.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NOW 1800000000LL
#define PK "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define ARGC(a) ((int)(sizeof(a) / sizeof(a)[0]) - 1)

static void test_invite_ok(void **state)
{
    (void)state;
    cli_mesh_invite o;
    char err[512];
    char *a1[] = {"invite", PK, "--id", "web-1", NULL};
    assert_int_equal(cli_mesh_parse_invite(ARGC(a1), a1, NOW, &o, err, sizeof err), 0);
    assert_string_equal(o.node_pk, PK);
    assert_string_equal(o.id, "web-1");
    assert_int_equal(o.roles, MESH_ROLE_ALL);
    assert_int_equal(o.days, 365);
    assert_int_equal(o.from, NOW);
    assert_int_equal(o.nseeds, 0);
    assert_false(o.help);

    char *a2[] = {"invite", "--roles=reasoning,tool", "--days", "30", "--seed", "10.0.0.1:7947",
                  "--seed=[::1]:7947", "--from", "2d", "--id=db.2", PK, NULL};
    assert_int_equal(cli_mesh_parse_invite(ARGC(a2), a2, NOW, &o, err, sizeof err), 0);
    assert_int_equal(o.roles, MESH_ROLE_REASONING | MESH_ROLE_TOOL);
    assert_int_equal(o.days, 30);
    assert_int_equal(o.from, NOW - 2 * 86400);
    assert_int_equal(o.nseeds, 2);
    assert_string_equal(o.seeds[0], "10.0.0.1:7947");
    assert_string_equal(o.seeds[1], "[::1]:7947");
    assert_string_equal(o.id, "db.2");

    char *a3[] = {"invite", "--from", "1700000000", "--id", "x", "--", PK, NULL};
    assert_int_equal(cli_mesh_parse_invite(ARGC(a3), a3, NOW, &o, err, sizeof err), 0);
    assert_int_equal(o.from, 1700000000);
    assert_string_equal(o.node_pk, PK);

    char *a4[] = {"invite", "--help", NULL};
    assert_int_equal(cli_mesh_parse_invite(ARGC(a4), a4, NOW, &o, err, sizeof err), 0);
    assert_true(o.help);
}

/* argv fails with -EINVAL and a message containing want. */
static void invite_fails(char **argv, int argc, const char *want)
{
    cli_mesh_invite o;
    char err[512];
    assert_int_equal(cli_mesh_parse_invite(argc, argv, NOW, &o, err, sizeof err), -EINVAL);
    if (!strstr(err, want))
        fail_msg("message '%s' lacks '%s'", err, want);
}

static void test_invite_bad(void **state)
{
    (void)state;
    char *a1[] = {"invite", "--id", "x", NULL};
    invite_fails(a1, ARGC(a1), "missing NODE_PK");
    char *a2[] = {"invite", PK, NULL};
    invite_fails(a2, ARGC(a2), "missing --id NAME");
    char *a3[] = {"invite", PK, "--id", "bad id", NULL};
    invite_fails(a3, ARGC(a3), "--id: node id: character 4");
    char *a4[] = {"invite", PK, "--id", "x", "--days", "0", NULL};
    invite_fails(a4, ARGC(a4), "--days: bad number '0'");
    char *a5[] = {"invite", PK, "--id", "x", "--days", "3651", NULL};
    invite_fails(a5, ARGC(a5), "from 1 to 3650");
    char *a6[] = {"invite", PK, "--id", "x", "--days", "7x", NULL};
    invite_fails(a6, ARGC(a6), "--days: bad number '7x'");
    char *a7[] = {"invite", PK, "--id", "x", "--roles", "reasoning,cook", NULL};
    invite_fails(a7, ARGC(a7), "--roles: ");
    invite_fails(a7, ARGC(a7), "cook");
    char *a8[] = {"invite", PK, "--id", "x", "--seed", "nohost", NULL};
    invite_fails(a8, ARGC(a8), "--seed: seed address 'nohost'");
    char *a9[] = {"invite", PK, "--id", "x", "--from", "yesterday", NULL};
    invite_fails(a9, ARGC(a9), "--from: bad time 'yesterday'");
    char *a10[] = {"invite", PK, "--id", "x", "--bogus", NULL};
    invite_fails(a10, ARGC(a10), "unknown option '--bogus'");
    char *a11[] = {"invite", PK, "extra", "--id", "x", NULL};
    invite_fails(a11, ARGC(a11), "unexpected argument 'extra'");
    char *a12[] = {"invite", PK, "--id", NULL};
    invite_fails(a12, ARGC(a12), "--id: missing value");
    char *a13[] = {"invite", PK, "--id", "x", "--seed", "a:1", "--seed", "a:2", "--seed", "a:3", "--seed", "a:4",
                   "--seed", "a:5", "--seed", "a:6", "--seed", "a:7", "--seed", "a:8", "--seed", "a:9", NULL};
    invite_fails(a13, ARGC(a13), "--seed: more than 8 seeds ('a:9')");
}

static void test_revoke(void **state)
{
    (void)state;
    cli_mesh_revoke o;
    char err[512];
    char *a1[] = {"revoke", "--serial", "18446744073709551615", "--reason", "key-compromise", NULL};
    assert_int_equal(cli_mesh_parse_revoke(ARGC(a1), a1, &o, err, sizeof err), 0);
    assert_true(o.serial == UINT64_MAX);
    assert_null(o.key);
    assert_int_equal(o.reason, MESH_REASON_KEY_COMPROMISE);
    char *a2[] = {"revoke", "--key=" PK, NULL};
    assert_int_equal(cli_mesh_parse_revoke(ARGC(a2), a2, &o, err, sizeof err), 0);
    assert_string_equal(o.key, PK);
    assert_int_equal(o.serial, 0);
    assert_int_equal(o.reason, MESH_REASON_UNSPECIFIED);
    char *a3[] = {"revoke", "--serial", "0xbc267e94140144fc", NULL};
    assert_int_equal(cli_mesh_parse_revoke(ARGC(a3), a3, &o, err, sizeof err), 0);
    assert_true(o.serial == 0xbc267e94140144fcULL);
    char *a4[] = {"revoke", "--list", NULL};
    assert_int_equal(cli_mesh_parse_revoke(ARGC(a4), a4, &o, err, sizeof err), 0);
    assert_true(o.list);

    struct {
        char *argv[6];
        const char *want;
    } bad[] = {
        {{"revoke", NULL}, "missing --serial N or --key NODE_PK"},
        {{"revoke", "--serial", "0", NULL}, "--serial: bad serial '0'"},
        {{"revoke", "--serial", "-1", NULL}, "--serial: bad serial '-1'"},
        {{"revoke", "--serial", "18446744073709551616", NULL}, "--serial: bad serial"},
        {{"revoke", "--serial", "0xzz", NULL}, "--serial: bad serial '0xzz'"},
        {{"revoke", "--key", "abc", NULL}, "--key: public key: 3 characters"},
        {{"revoke", "--serial", "5", "--reason", "bored", NULL}, "--reason: unknown reason 'bored'"},
        {{"revoke", "--serial", "5", "--key", PK, NULL}, "only one"},
        {{"revoke", "--list", "--serial", "5", NULL}, "--list: "},
        {{"revoke", "5", NULL}, "unexpected argument '5'"},
        {{"revoke", "--serial", NULL}, "--serial: missing value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int argc = 0;
        while (bad[i].argv[argc])
            argc++;
        assert_int_equal(cli_mesh_parse_revoke(argc, bad[i].argv, &o, err, sizeof err), -EINVAL);
        if (!strstr(err, bad[i].want))
            fail_msg("case %zu: message '%s' lacks '%s'", i, err, bad[i].want);
    }
}

static void test_reason(void **state)
{
    (void)state;
    assert_int_equal(cli_mesh_reason("unspecified"), MESH_REASON_UNSPECIFIED);
    assert_int_equal(cli_mesh_reason("retired"), MESH_REASON_RETIRED);
    assert_int_equal(cli_mesh_reason("superseded"), MESH_REASON_SUPERSEDED);
    assert_int_equal(cli_mesh_reason("Retired"), -1);
    assert_int_equal(cli_mesh_reason(""), -1);
}

static void test_state_dir(void **state)
{
    (void)state;
    char buf[CLI_PATH_MAX];
    cli_global g = {0};
    setenv("IPPOC_STATE_DIR", "/tmp/env-state", 1);
    cli_state_dir(&g, buf, sizeof buf);
    assert_string_equal(buf, "/tmp/env-state");
    g.state_dir = "/tmp/flag-state";
    cli_state_dir(&g, buf, sizeof buf);
    assert_string_equal(buf, "/tmp/flag-state");
    unsetenv("IPPOC_STATE_DIR");
    g.state_dir = NULL;
    char tmp[] = "/tmp/ippoc-mesh-args.XXXXXX", old[CLI_PATH_MAX];
    assert_non_null(getcwd(old, sizeof old));
    assert_non_null(mkdtemp(tmp));
    assert_int_equal(chdir(tmp), 0);
    cli_state_dir(&g, buf, sizeof buf); /* no ./.ippoc/ippocd.url */
    assert_string_equal(buf, CLI_DEFAULT_STATE_DIR);
    assert_int_equal(mkdir(".ippoc", 0700), 0);
    FILE *f = fopen(".ippoc/ippocd.url", "w");
    assert_non_null(f);
    fputs("http://127.0.0.1:1\n", f);
    fclose(f);
    cli_state_dir(&g, buf, sizeof buf); /* a dev tree's ./.ippoc */
    assert_string_equal(buf, ".ippoc");
    assert_int_equal(unlink(".ippoc/ippocd.url"), 0);
    assert_int_equal(rmdir(".ippoc"), 0);
    assert_int_equal(chdir(old), 0);
    assert_int_equal(rmdir(tmp), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invite_ok), cmocka_unit_test(test_invite_bad), cmocka_unit_test(test_revoke),
        cmocka_unit_test(test_reason),    cmocka_unit_test(test_state_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
