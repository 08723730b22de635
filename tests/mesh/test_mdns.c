/* test_mdns.c: the mDNS discovery's own logic (cell_mdns.c): the fleet key's
 * short fingerprint, the one TXT string and what matches it, the [mesh]
 * discover key, and a cell with discover = mdns whose D-Bus has no
 * avahi-daemon: it says why in its status and runs on its seeds. The real
 * Avahi run is tests/integration/test_mesh_mdns.py. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cellfix.h"
#include <jansson.h>

#include "mesh/cell_int.h"
#include "mesh/mesh.h"

static void fingerprint(void **state)
{
    (void)state;
    uint8_t a[MESH_ID_PK_BYTES] = {1, 2, 3}, b[MESH_ID_PK_BYTES] = {1, 2, 4};
    char fa[CELL_MDNS_FP_HEX + 1], fa2[CELL_MDNS_FP_HEX + 1], fb[CELL_MDNS_FP_HEX + 1];
    memset(fa, 'x', sizeof fa);
    cell_mdns_fingerprint(a, fa);
    cell_mdns_fingerprint(a, fa2);
    cell_mdns_fingerprint(b, fb);
    assert_int_equal(strlen(fa), CELL_MDNS_FP_HEX);
    assert_int_equal(strspn(fa, "0123456789abcdef"), CELL_MDNS_FP_HEX);
    assert_string_equal(fa, fa2);      /* the same fleet: the same fingerprint */
    assert_string_not_equal(fa, fb);   /* one bit of key: another */
    char hex[2 * MESH_ID_PK_BYTES + 1]; /* a hash, not the key's first bytes */
    mesh_identity_pk_hex(a, hex);
    assert_memory_not_equal(hex, fa, CELL_MDNS_FP_HEX);
}

static void txt(void **state)
{
    (void)state;
    const char *fp = "0123456789abcdef";
    char t[64];
    size_t n = cell_mdns_txt(fp, t, sizeof t);
    assert_string_equal(t, "fleet=0123456789abcdef");
    assert_int_equal(n, strlen(t));
    assert_true(cell_mdns_txt_matches((const uint8_t *)t, n, fp));
    /* TXT strings are bytes with a length, not terminated */
    char padded[80];
    snprintf(padded, sizeof padded, "%sGARBAGE", t);
    assert_true(cell_mdns_txt_matches((const uint8_t *)padded, n, fp));
    assert_false(cell_mdns_txt_matches((const uint8_t *)padded, strlen(padded), fp));
    assert_false(cell_mdns_txt_matches((const uint8_t *)t, n - 1, fp));
    assert_false(cell_mdns_txt_matches((const uint8_t *)"fleet=0123456789abcdee", n, fp));
    assert_false(cell_mdns_txt_matches((const uint8_t *)"fleat=0123456789abcdef", n, fp));
    assert_false(cell_mdns_txt_matches((const uint8_t *)"", 0, fp));
    assert_false(cell_mdns_txt_matches(NULL, 0, fp));
}

static void config_key(void **state)
{
    (void)state;
    mesh_config mc;
    char err[512] = "";
    assert_int_equal(cellfix_parse("[mesh]\nenabled = yes\n", &mc, err, sizeof err), 0);
    assert_int_equal(mc.discover, MESH_DISCOVER_SEEDS);
    assert_int_equal(cellfix_parse("[mesh]\ndiscover = mdns\n", &mc, err, sizeof err), 0);
    assert_int_equal(mc.discover, MESH_DISCOVER_MDNS);
    assert_int_equal(cellfix_parse("[mesh]\ndiscover = seeds\n", &mc, err, sizeof err), 0);
    assert_int_equal(mc.discover, MESH_DISCOVER_SEEDS);
    assert_int_equal(cellfix_parse("[mesh]\nenabled = yes\ndiscover = bonjour\n", &mc, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "t.conf:3"));
    assert_non_null(strstr(err, "[mesh] discover: 'bonjour' is not seeds or mdns"));
    assert_int_equal(cellfix_parse("[mesh]\ndiscovery = mdns\n", &mc, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "discover)")); /* the unknown key's answer lists it */
}

/* No avahi-daemon on the bus (a socket path nobody listens on): the cell
 * starts, says why discovery is off, and a reconfigure to seeds drops it. */
static void no_daemon(void **state)
{
    (void)state;
    char fleet[] = "/tmp/ippoc-mdns-f-XXXXXX", dir[] = "/tmp/ippoc-mdns-a-XXXXXX", err[1024] = "";
    assert_non_null(mkdtemp(fleet));
    assert_non_null(mkdtemp(dir));
    char bus[128];
    snprintf(bus, sizeof bus, "unix:path=%s/no-bus", dir);
    setenv("DBUS_SYSTEM_BUS_ADDRESS", bus, 1);
    core_log_setup(CORE_LOG_ERR, 0);
    cellfix_token(fleet, dir, "cell-m", MESH_ROLE_TOOL);
    mesh_cell *m = NULL;
    mesh_cell_opts o = {.state_dir = dir};
    core_config c;
    core_config_defaults(&c);
    snprintf(c.state_dir, sizeof c.state_dir, "%s", dir);
    if (core_config_load_string(&c, "[mesh]\nenabled = yes\nlisten = 127.0.0.1:0\ndiscover = mdns\n", "m.conf", err,
                                sizeof err))
        fail_msg("config: %s", err);
    if (mesh_cell_new(&o, &m, err, sizeof err) || mesh_cell_configure(m, &c, err, sizeof err))
        fail_msg("cell: %s", err);
    json_t *st = cellfix_view(mesh_cell_status_json(m)), *d = json_object_get(st, "discovery");
    assert_true(json_is_true(json_object_get(st, "joined")));
    assert_string_equal(json_string_value(json_object_get(d, "mode")), "mdns");
    assert_true(json_is_false(json_object_get(d, "active")));
    const char *why = json_string_value(json_object_get(d, "reason"));
    assert_non_null(why);
    assert_true(strstr(why, "avahi-daemon is not reachable") || strstr(why, "cannot load"));
    assert_int_equal(strlen(json_string_value(json_object_get(d, "fleet_fp"))), CELL_MDNS_FP_HEX);
    json_decref(st);
    core_config_free(&c);

    core_config_defaults(&c);
    snprintf(c.state_dir, sizeof c.state_dir, "%s", dir);
    if (core_config_load_string(&c, "[mesh]\nenabled = yes\nlisten = 127.0.0.1:0\n", "m.conf", err, sizeof err) ||
        mesh_cell_configure(m, &c, err, sizeof err))
        fail_msg("reconfigure: %s", err);
    st = cellfix_view(mesh_cell_status_json(m));
    d = json_object_get(st, "discovery");
    assert_true(json_is_true(json_object_get(st, "joined")));
    assert_string_equal(json_string_value(json_object_get(d, "mode")), "seeds");
    assert_null(json_object_get(d, "active"));
    json_decref(st);
    core_config_free(&c);
    mesh_cell_free(m);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", fleet, dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fingerprint),
        cmocka_unit_test(txt),
        cmocka_unit_test(config_key),
        cmocka_unit_test(no_daemon),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
