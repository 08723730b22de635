/* test_cell.c: two mesh cells in one process over real loopback UDP (their
 * own threads, the real session, swim and wisdom store): they join, see each
 * other alive with their capabilities, a fix record from the first cell's
 * memory reaches the second through wisdom gossip, a SIGHUP-style
 * reconfigure with nothing changed keeps the cell running, and a cell that
 * stops is seen to leave. Runs in every tree (the sanitizers watch the
 * thread, the lock and the frees). */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cellfix.h"

#include "mesh/identity.h"
#include "mesh/mesh.h"

#define DEADLINE_MS CELLFIX_DEADLINE_MS

static bool has_wisdom_from(mesh_cell *m, const char *from, const char *text)
{
    json_t *j = cellfix_view(mesh_cell_wisdom_json(m, 10)), *r;
    size_t i;
    bool found = false;
    json_array_foreach(json_object_get(j, "records"), i, r)
        found |= !strcmp(json_string_value(json_object_get(r, "from")), from) &&
                 strstr(json_string_value(json_object_get(r, "summary")), text) != NULL;
    json_decref(j);
    return found;
}

static void two_cells(void **state)
{
    (void)state;
    char fleet[] = "/tmp/ippoc-cell-f-XXXXXX", da[] = "/tmp/ippoc-cell-a-XXXXXX", db[] = "/tmp/ippoc-cell-b-XXXXXX";
    char err[1024] = "";
    cellfix_pair(fleet, da, db);
    cellfix_revoke_new_key(fleet, da, "z.key"); /* a knows a revocation b does not: gossip brings it */

    /* a's memory remembers a case healed by a restart: its fix record */
    core_config ca, cb;
    cellfix_config(&ca, da, NULL, NULL);
    mem_t *mem = NULL;
    if (mem_open(&mem, &ca, err, sizeof err))
        fail_msg("mem_open: %s", err);
    assert_int_equal(mem_case_save(mem, 1, 0,
                                   "{\"id\":1,\"component\":\"nginx\",\"kind\":\"service\",\"fault_type\":\"crash\","
                                   "\"features\":[\"exit:signal:KILL\",\"probe:http:refused\"],\"attempts\":["
                                   "{\"actions\":[\"restart\"],\"healed\":true},"
                                   "{\"actions\":[\"restart\"],\"healed\":true}]}"),
                     0);
    assert_int_equal(mem_flush(mem, 5000), 0);

    mesh_cell *a = NULL, *b = NULL;
    mesh_cell_opts oa = {.state_dir = da, .mem = mem, .llm = true}, ob = {.state_dir = db};
    if (mesh_cell_new(&oa, &a, err, sizeof err) || mesh_cell_configure(a, &ca, err, sizeof err))
        fail_msg("cell a: %s", err);
    json_t *st = cellfix_view(mesh_cell_status_json(a));
    assert_true(json_is_true(json_object_get(st, "joined")));
    char seed[80];
    snprintf(seed, sizeof seed, "%s", json_string_value(json_object_get(st, "listen")));
    assert_non_null(strstr(seed, "127.0.0.1:"));
    assert_string_not_equal(seed, "127.0.0.1:0");
    json_decref(st);

    cellfix_config(&cb, db, seed, NULL);
    if (mesh_cell_new(&ob, &b, err, sizeof err) || mesh_cell_configure(b, &cb, err, sizeof err))
        fail_msg("cell b: %s", err);
    assert_true(cellfix_wait_state(a, "cell-b", "alive"));
    assert_true(cellfix_wait_state(b, "cell-a", "alive"));

    /* b sees a's capabilities and roles as a's certificate grants them; the
     * UDP session comes with the first probe or gossip (the join's full state
     * went over TCP: part pushpull) */
    json_t *j = NULL, *p;
    size_t i;
    bool seen = false, up = false;
    for (int t = 0; t < DEADLINE_MS && !up; t += 20) {
        json_decref(j);
        j = cellfix_view(mesh_cell_peers_json(b));
        json_array_foreach(json_object_get(j, "peers"), i, p)
            up |= !strcmp(json_string_value(json_object_get(p, "node_id")), "cell-a") &&
                  json_is_true(json_object_get(p, "session"));
        if (!up)
            usleep(20000);
    }
    json_array_foreach(json_object_get(j, "peers"), i, p) {
        if (strcmp(json_string_value(json_object_get(p, "node_id")), "cell-a"))
            continue;
        seen = true;
        json_t *caps = json_object_get(p, "caps");
        assert_true(json_integer_value(json_object_get(caps, "cpus")) >= 1);
        assert_true(json_is_true(json_object_get(caps, "llm")));
        assert_int_equal(json_array_size(json_object_get(p, "roles")), 2);
        assert_true(json_is_true(json_object_get(p, "session")));
    }
    assert_true(seen);
    json_decref(j);

    /* a's fix record reaches b by wisdom gossip */
    bool got = false;
    for (int t = 0; t < DEADLINE_MS && !got; t += 50) {
        got = has_wisdom_from(b, "cell-a", "restart fixed");
        if (!got)
            usleep(50000);
    }
    assert_true(got);
    assert_true(has_wisdom_from(a, "cell-a", "restart fixed"));
    char *prom = mesh_cell_prometheus(b);
    assert_non_null(prom);
    assert_non_null(strstr(prom, "ippoc_mesh_wisdom_records 1\n"));
    assert_non_null(strstr(prom, "ippoc_mesh_members{state=\"alive\"} 2\n"));
    free(prom);

    /* the revocation list reaches b (it drops its sessions then and they come back) */
    bool revoked = false;
    for (int t = 0; t < DEADLINE_MS && !revoked; t += 50) {
        revoked = cellfix_status_int(b, NULL, "revocations") == 1;
        if (!revoked)
            usleep(50000);
    }
    assert_true(revoked);
    char rpath[512];
    snprintf(rpath, sizeof rpath, "%s/%s", db, MESH_ID_REVLIST_FILE);
    assert_int_equal(access(rpath, F_OK), 0);
    assert_true(cellfix_wait_state(b, "cell-a", "alive"));

    /* a reload with nothing changed keeps the cell and its members */
    assert_int_equal(mesh_cell_configure(b, &cb, err, sizeof err), 0);
    char s[16];
    cellfix_member_state(b, "cell-a", s, sizeof s);
    assert_string_equal(s, "alive");

    /* b leaves: a marks it left, not dead */
    mesh_cell_free(b);
    assert_true(cellfix_wait_state(a, "cell-b", "left"));

    /* a disabled by a reload: not joined, no peers */
    core_config off;
    core_config_defaults(&off);
    snprintf(off.state_dir, sizeof off.state_dir, "%s", da);
    assert_int_equal(mesh_cell_configure(a, &off, err, sizeof err), 0);
    st = cellfix_view(mesh_cell_status_json(a));
    assert_false(json_is_true(json_object_get(st, "enabled")));
    assert_false(json_is_true(json_object_get(st, "joined")));
    assert_true(json_is_null(json_object_get(st, "node_id")));
    json_decref(st);
    j = cellfix_view(mesh_cell_peers_json(a));
    assert_int_equal(json_array_size(json_object_get(j, "peers")), 0);
    json_decref(j);
    mesh_cell_free(a);
    mem_close(mem);
    core_config_free(&ca);
    core_config_free(&cb);
    core_config_free(&off);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s'", fleet, da, db);
    if (system(cmd)) {
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_cells),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
