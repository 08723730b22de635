/* test_cell_config.c: the [mesh] section: defaults, every key, and bad
 * values answered with FILE:LINE and the reason; the capability record. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cellfix.h"

#include "mesh/cell_int.h"
#include "mesh/mesh.h"

static void defaults(void **state)
{
    (void)state;
    mesh_config mc;
    char err[512] = "";
    assert_int_equal(cellfix_parse("[daemon]\nlog_level = info\n", &mc, err, sizeof err), 0);
    assert_false(mc.enabled);
    assert_string_equal(mc.listen, "127.0.0.1:7947");
    assert_int_equal(mc.nseeds, 0);
    assert_int_equal(mc.roles, 0);
    assert_int_equal(mc.probe_interval_ms, 500); /* mesh_swim_config_default (swim.h) */
    assert_int_equal(mc.probe_timeout_ms, 250);
    assert_int_equal(mc.gossip_interval_ms, 200);
    assert_int_equal(mc.suspicion_mult, 2);
    assert_int_equal(mc.pushpull_interval_ms, 30000);
}

static void every_key(void **state)
{
    (void)state;
    mesh_config mc;
    char err[512] = "";
    assert_int_equal(cellfix_parse("[mesh]\nenabled = yes\nlisten = [::1]:0\nseeds = 127.0.0.1:7001, 127.0.0.1:7002\n"
                           "roles = reasoning, tool\nprobe_interval_ms = 200\nprobe_timeout_ms = 100\n"
                           "gossip_interval_ms = 50\nsuspicion_mult = 2\npushpull_interval_ms = 2000\n",
                           &mc, err, sizeof err),
                     0);
    assert_true(mc.enabled);
    assert_string_equal(mc.listen, "[::1]:0");
    assert_int_equal(mc.nseeds, 2);
    assert_string_equal(mc.seeds[1], "127.0.0.1:7002");
    assert_int_equal(mc.roles, MESH_ROLE_REASONING | MESH_ROLE_TOOL);
    assert_int_equal(mc.probe_interval_ms, 200);
    assert_int_equal(mc.probe_timeout_ms, 100);
    assert_int_equal(mc.gossip_interval_ms, 50);
    assert_int_equal(mc.suspicion_mult, 2);
    assert_int_equal(mc.pushpull_interval_ms, 2000);
}

static void expect_error(const char *text, const char *place, const char *reason)
{
    mesh_config mc;
    char err[512] = "";
    int rc = cellfix_parse(text, &mc, err, sizeof err);
    if (rc != -EINVAL)
        fail_msg("'%s' gave %d", text, rc);
    if (!strstr(err, place) || !strstr(err, reason))
        fail_msg("'%s' lacks '%s' or '%s'", err, place, reason);
}

static void bad_values(void **state)
{
    (void)state;
    expect_error("[mesh]\nenabled = maybe\n", "t.conf:2:", "not yes or no");
    expect_error("[mesh]\nenabled = yes\nlisten = nowhere\n", "t.conf:3:", "HOST:PORT");
    expect_error("[mesh]\nlisten = 127.0.0.1:99999\n", "t.conf:2:", "HOST:PORT");
    expect_error("[mesh]\nlisten = example.org:7947\n", "t.conf:2:", "not an IP address");
    expect_error("[mesh]\nlisten = 0.0.0.0:7947\n", "t.conf:2:", "wildcard");
    expect_error("[mesh]\nseeds = 127.0.0.1:1,,127.0.0.1:2\n", "t.conf:2:", "empty entry");
    expect_error("[mesh]\nseeds = 127.0.0.1\n", "t.conf:2:", "seeds");
    expect_error("[mesh]\nroles = reasoning, wizard\n", "t.conf:2:", "wizard");
    expect_error("[mesh]\nprobe_interval_ms = fast\n", "t.conf:2:", "not a whole number");
    expect_error("[mesh]\nprobe_interval_ms = -5\n", "t.conf:2:", "not a whole number");
    expect_error("[mesh]\nsuspicion_mult = 0\n", "t.conf:2:", "1..100");
    expect_error("[mesh]\npushpull_interval_ms = 50\n", "t.conf:2:", "100..3600000");
    expect_error("[mesh]\nprobe_interval_ms = 300\nprobe_timeout_ms = 300\n", "t.conf:3:",
                 "must be under probe_interval_ms");
    expect_error("[mesh]\nprobe_interval_ms = 200\n", "t.conf:2:", "must be under probe_interval_ms"); /* default timeout 250 */
    expect_error("[mesh]\nlisten_on = 1\n", "t.conf:2:", "unknown key 'listen_on'");
}

static void caps_round_trip(void **state)
{
    (void)state;
    cell_caps a = {.roles = MESH_ROLE_TOOL | MESH_ROLE_RELAY, .cpus = 16, .memory_mb = 131072, .disk_gb = 900,
                   .gpu = true, .llm = false},
              b;
    uint8_t buf[CELL_CAPS_BYTES];
    assert_int_equal(cell_caps_encode(&a, buf), CELL_CAPS_BYTES);
    assert_int_equal(cell_caps_decode(buf, sizeof buf, &b), 0);
    assert_int_equal(b.roles, a.roles);
    assert_int_equal(b.cpus, 16);
    assert_int_equal(b.memory_mb, 131072);
    assert_int_equal(b.disk_gb, 900);
    assert_true(b.gpu);
    assert_false(b.llm);
    assert_int_equal(cell_caps_decode(buf, 5, &b), -EBADMSG);
    buf[0] = 9;
    assert_int_equal(cell_caps_decode(buf, sizeof buf, &b), -EBADMSG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(every_key),
        cmocka_unit_test(bad_values),
        cmocka_unit_test(caps_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
