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

#include "mesh/identity.h"
#include "mesh/mesh.h"

#define DEADLINE_MS 30000

static json_t *view(char *text);

static void make_token(const char *fleet_dir, const char *state, const char *node_id)
{
    char path[512], err[512];
    mesh_identity_key fk, nk;
    snprintf(path, sizeof path, "%s/%s", fleet_dir, MESH_ID_FLEET_KEY_FILE);
    if (mesh_identity_key_load(path, MESH_KEY_FLEET, &fk, err, sizeof err) &&
        mesh_identity_key_create(path, MESH_KEY_FLEET, &fk, err, sizeof err))
        fail_msg("fleet key: %s", err);
    if (mesh_identity_node_key(state, &nk, NULL, err, sizeof err))
        fail_msg("node key: %s", err);
    mesh_identity_token t;
    memset(&t, 0, sizeof t);
    memcpy(t.cert.node_pk, nk.pk, MESH_ID_PK_BYTES);
    snprintf(t.cert.node_id, sizeof t.cert.node_id, "%s", node_id);
    t.cert.roles = MESH_ROLE_TOOL | MESH_ROLE_RELAY;
    t.cert.not_before = (int64_t)time(NULL) - 60;
    t.cert.not_after = (int64_t)time(NULL) + 3600;
    if (mesh_identity_cert_sign(&t.cert, &fk, err, sizeof err) || mesh_identity_member_save(state, &t, err, sizeof err))
        fail_msg("token: %s", err);
}

/* Writes into state a revocation list naming a key no cell uses (cell-z's). */
static void revoke_other(const char *fleet_dir, const char *state)
{
    char path[512], err[512];
    mesh_identity_key fk, zk;
    snprintf(path, sizeof path, "%s/%s", fleet_dir, MESH_ID_FLEET_KEY_FILE);
    if (mesh_identity_key_load(path, MESH_KEY_FLEET, &fk, err, sizeof err))
        fail_msg("fleet key: %s", err);
    snprintf(path, sizeof path, "%s/z.key", fleet_dir);
    if (mesh_identity_key_create(path, MESH_KEY_NODE, &zk, err, sizeof err))
        fail_msg("z key: %s", err);
    mesh_identity_revocation r;
    memset(&r, 0, sizeof r);
    r.kind = MESH_REVOKE_KEY;
    r.reason = MESH_REASON_RETIRED;
    memcpy(r.node_pk, zk.pk, MESH_ID_PK_BYTES);
    r.time = (int64_t)time(NULL);
    r.until = r.time + 3600;
    mesh_identity_revlist rl;
    assert_int_equal(mesh_identity_revlist_init(&rl, fk.pk, 0), 0);
    if (mesh_identity_revocation_sign(&r, &fk, err, sizeof err) ||
        mesh_identity_revlist_add(&rl, &r, r.time, err, sizeof err) != 1 ||
        mesh_identity_revlist_save(&rl, state, err, sizeof err))
        fail_msg("revocation: %s", err);
    mesh_identity_revlist_free(&rl);
}

static json_int_t status_int(mesh_cell *m, const char *key)
{
    json_t *j = view(mesh_cell_status_json(m));
    json_int_t v = json_integer_value(json_object_get(j, key));
    json_decref(j);
    return v;
}

static void config(core_config *c, const char *state, const char *seed)
{
    char text[1024], err[512];
    core_config_defaults(c);
    snprintf(c->state_dir, sizeof c->state_dir, "%s", state);
    snprintf(text, sizeof text,
             "[mesh]\nenabled = yes\nlisten = 127.0.0.1:0\nprobe_interval_ms = 200\nprobe_timeout_ms = 100\n"
             "gossip_interval_ms = 50\nsuspicion_mult = 2\n%s%s%s",
             seed ? "seeds = " : "", seed ? seed : "", seed ? "\n" : "");
    if (core_config_load_string(c, text, "cell.conf", err, sizeof err))
        fail_msg("config: %s", err);
}

static json_t *view(char *text)
{
    assert_non_null(text);
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(j);
    return j;
}

/* The state of member id in the cell's peer view, "" when not listed. */
static void member_state(mesh_cell *m, const char *id, char *out, size_t n)
{
    json_t *j = view(mesh_cell_peers_json(m)), *p;
    size_t i;
    out[0] = 0;
    json_array_foreach(json_object_get(j, "peers"), i, p)
        if (!strcmp(json_string_value(json_object_get(p, "node_id")), id))
            snprintf(out, n, "%s", json_string_value(json_object_get(p, "state")));
    json_decref(j);
}

static bool wait_state(mesh_cell *m, const char *id, const char *want)
{
    char st[16];
    for (int t = 0; t < DEADLINE_MS; t += 20) {
        member_state(m, id, st, sizeof st);
        if (!strcmp(st, want))
            return true;
        usleep(20000);
    }
    return false;
}

static bool has_wisdom_from(mesh_cell *m, const char *from, const char *text)
{
    json_t *j = view(mesh_cell_wisdom_json(m, 10)), *r;
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
    assert_non_null(mkdtemp(fleet));
    assert_non_null(mkdtemp(da));
    assert_non_null(mkdtemp(db));
    core_log_setup(CORE_LOG_ERR, 0);
    make_token(fleet, da, "cell-a");
    make_token(fleet, db, "cell-b");
    revoke_other(fleet, da); /* a knows a revocation b does not: gossip brings it */

    /* a's memory remembers a case healed by a restart: its fix record */
    core_config ca, cb;
    config(&ca, da, NULL);
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
    json_t *st = view(mesh_cell_status_json(a));
    assert_true(json_is_true(json_object_get(st, "joined")));
    char seed[80];
    snprintf(seed, sizeof seed, "%s", json_string_value(json_object_get(st, "listen")));
    assert_non_null(strstr(seed, "127.0.0.1:"));
    assert_string_not_equal(seed, "127.0.0.1:0");
    json_decref(st);

    config(&cb, db, seed);
    if (mesh_cell_new(&ob, &b, err, sizeof err) || mesh_cell_configure(b, &cb, err, sizeof err))
        fail_msg("cell b: %s", err);
    assert_true(wait_state(a, "cell-b", "alive"));
    assert_true(wait_state(b, "cell-a", "alive"));

    /* b sees a's capabilities and roles as a's certificate grants them; the
     * UDP session comes with the first probe or gossip (the join's full state
     * went over TCP: part pushpull) */
    json_t *j = NULL, *p;
    size_t i;
    bool seen = false, up = false;
    for (int t = 0; t < DEADLINE_MS && !up; t += 20) {
        json_decref(j);
        j = view(mesh_cell_peers_json(b));
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
        revoked = status_int(b, "revocations") == 1;
        if (!revoked)
            usleep(50000);
    }
    assert_true(revoked);
    char rpath[512];
    snprintf(rpath, sizeof rpath, "%s/%s", db, MESH_ID_REVLIST_FILE);
    assert_int_equal(access(rpath, F_OK), 0);
    assert_true(wait_state(b, "cell-a", "alive"));

    /* a reload with nothing changed keeps the cell and its members */
    assert_int_equal(mesh_cell_configure(b, &cb, err, sizeof err), 0);
    char s[16];
    member_state(b, "cell-a", s, sizeof s);
    assert_string_equal(s, "alive");

    /* b leaves: a marks it left, not dead */
    mesh_cell_free(b);
    assert_true(wait_state(a, "cell-b", "left"));

    /* a disabled by a reload: not joined, no peers */
    core_config off;
    core_config_defaults(&off);
    snprintf(off.state_dir, sizeof off.state_dir, "%s", da);
    assert_int_equal(mesh_cell_configure(a, &off, err, sizeof err), 0);
    st = view(mesh_cell_status_json(a));
    assert_false(json_is_true(json_object_get(st, "enabled")));
    assert_false(json_is_true(json_object_get(st, "joined")));
    assert_true(json_is_null(json_object_get(st, "node_id")));
    json_decref(st);
    j = view(mesh_cell_peers_json(a));
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
