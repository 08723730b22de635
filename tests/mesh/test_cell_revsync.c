/* test_cell_revsync.c: revocations travel with the membership (cell_sync.c's
 * revocation section, cell.c's channel 2 ahead of the first membership).
 * Real cells in one process on loopback: a, b and c form a fleet, c is
 * revoked on a (as `ippoc mesh revoke` then SIGHUP does) and b learns it by
 * gossip; then d joins through a. Every status snapshot of d that lists a
 * member besides itself already holds the revocation (the list comes before
 * or with the first member list), and c never gets a session with d nor
 * learns it. Runs in every tree. */
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

#define DEADLINE_MS 30000
#define WATCH_MS 3000 /* how long d and c are watched once d knows the fleet */

/* Writes into state (the revoking cell's) a list revoking victim's node key. */
static void revoke_node(const char *fleet_dir, const char *victim_state, const char *state)
{
    char err[512];
    mesh_identity_key vk;
    if (mesh_identity_node_key(victim_state, &vk, NULL, err, sizeof err))
        fail_msg("victim key: %s", err);
    cellfix_revoke_pk(fleet_dir, state, vk.pk);
    mesh_identity_key_wipe(&vk);
}

/* One status snapshot: members known in any state (itself included), revocations, TCP syncs. */
typedef struct snap {
    json_int_t known, revocations, tcp;
} snap;

static snap snapshot(mesh_cell *m)
{
    json_t *j = cellfix_view(mesh_cell_status_json(m)), *ms = json_object_get(j, "members");
    snap s = {0};
    const char *st[] = {"alive", "suspect", "dead", "left"};
    for (size_t i = 0; i < 4; i++)
        s.known += json_integer_value(json_object_get(ms, st[i]));
    s.revocations = json_integer_value(json_object_get(j, "revocations"));
    s.tcp = json_integer_value(json_object_get(json_object_get(j, "sync"), "tcp"));
    json_decref(j);
    return s;
}

/* From the peers view: 0 not listed, 1 listed without a session, 2 with one; alive into *alive. */
static int peer(mesh_cell *m, const char *node_id, bool *alive)
{
    json_t *j = cellfix_view(mesh_cell_peers_json(m)), *p;
    size_t i;
    int r = 0;
    json_array_foreach(json_object_get(j, "peers"), i, p)
    {
        if (strcmp(json_string_value(json_object_get(p, "node_id")), node_id))
            continue;
        r = json_is_true(json_object_get(p, "session")) ? 2 : 1;
        if (alive)
            *alive = !strcmp(json_string_value(json_object_get(p, "state")), "alive");
    }
    json_decref(j);
    return r;
}

static bool wait_alive(mesh_cell *m, const char *node_id)
{
    for (int t = 0; t < DEADLINE_MS; t += 20) {
        bool alive = false;
        if (peer(m, node_id, &alive) && alive)
            return true;
        usleep(20000);
    }
    print_message("%s never became alive\n", node_id);
    return false;
}

static bool wait_revocations(mesh_cell *m, json_int_t n)
{
    for (int t = 0; t < DEADLINE_MS; t += 20) {
        if (snapshot(m).revocations >= n)
            return true;
        usleep(20000);
    }
    return false;
}

static mesh_cell *start(const char *state, const char *seed, core_config *c)
{
    char text[1024], err[1024];
    core_config_defaults(c);
    snprintf(c->state_dir, sizeof c->state_dir, "%s", state);
    snprintf(text, sizeof text,
             "[mesh]\nenabled = yes\nlisten = 127.0.0.1:0\nprobe_interval_ms = 300\nprobe_timeout_ms = 150\n"
             "gossip_interval_ms = 50\nsuspicion_mult = 2\npushpull_interval_ms = 300\n%s%s%s",
             seed ? "seeds = " : "", seed ? seed : "", seed ? "\n" : "");
    if (core_config_load_string(c, text, "cell.conf", err, sizeof err))
        fail_msg("config: %s", err);
    mesh_cell *m = NULL;
    mesh_cell_opts o = {.state_dir = state};
    if (mesh_cell_new(&o, &m, err, sizeof err) || mesh_cell_configure(m, c, err, sizeof err))
        fail_msg("cell %s: %s", state, err);
    return m;
}

static void listen_addr(mesh_cell *m, char *out, size_t n)
{
    json_t *j = cellfix_view(mesh_cell_status_json(m));
    snprintf(out, n, "%s", json_string_value(json_object_get(j, "listen")));
    json_decref(j);
    assert_non_null(strstr(out, "127.0.0.1:"));
}

static void revoked_member_and_a_late_join(void **state)
{
    (void)state;
    char fleet[] = "/tmp/ippoc-revsync-f-XXXXXX", da[] = "/tmp/ippoc-revsync-a-XXXXXX",
         db[] = "/tmp/ippoc-revsync-b-XXXXXX", dc[] = "/tmp/ippoc-revsync-c-XXXXXX", dd[] = "/tmp/ippoc-revsync-d-XXXXXX";
    char *dirs[] = {fleet, da, db, dc, dd};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        assert_non_null(mkdtemp(dirs[i]));
    core_log_setup(getenv("SYNC_LOG") ? atoi(getenv("SYNC_LOG")) : CORE_LOG_ERR, 0);
    cellfix_token(fleet, da, "cell-a", MESH_ROLE_TOOL | MESH_ROLE_RELAY);
    cellfix_token(fleet, db, "cell-b", MESH_ROLE_TOOL | MESH_ROLE_RELAY);
    cellfix_token(fleet, dc, "cell-c", MESH_ROLE_TOOL | MESH_ROLE_RELAY);
    cellfix_token(fleet, dd, "cell-d", MESH_ROLE_TOOL | MESH_ROLE_RELAY);

    core_config ca, cb, cc, cd;
    char err[512], aaddr[80];
    mesh_cell *a = start(da, NULL, &ca);
    listen_addr(a, aaddr, sizeof aaddr);
    mesh_cell *b = start(db, aaddr, &cb);
    mesh_cell *c = start(dc, aaddr, &cc);
    assert_true(wait_alive(a, "cell-b") && wait_alive(a, "cell-c"));
    assert_true(wait_alive(b, "cell-c") && wait_alive(c, "cell-b"));

    /* c is revoked on a (the list file, then a reconfigure: SIGHUP's path); b learns it by gossip */
    for (int t = 0; peer(a, "cell-b", NULL) != 2 && t < DEADLINE_MS; t += 20)
        usleep(20000);
    assert_int_equal(peer(a, "cell-b", NULL), 2);
    revoke_node(fleet, dc, da);
    if (mesh_cell_configure(a, &ca, err, sizeof err))
        fail_msg("reconfigure a: %s", err);
    assert_true(wait_revocations(a, 1));
    /* only the revoked member's session went: b's stayed (it used to be dropped with every merge) */
    assert_int_equal(peer(a, "cell-b", NULL), 2);
    assert_int_not_equal(peer(a, "cell-c", NULL), 2);
    assert_true(wait_revocations(b, 1));
    assert_int_equal(snapshot(c).revocations, 0); /* nobody tells the revoked one */

    /* d joins through a: no snapshot lists a member before the revocation is there */
    mesh_cell *d = start(dd, aaddr, &cd);
    uint64_t t0 = core_mono_ms(), known_at = 0, first_members = 0;
    for (;;) {
        uint64_t now = core_mono_ms();
        snap s = snapshot(d);
        if (s.known > 1 && !first_members)
            first_members = now;
        if (s.known > 1 && s.revocations < 1)
            fail_msg("d lists %lld members and no revocation", (long long)s.known);
        if (peer(d, "cell-c", NULL) == 2)
            fail_msg("d has a session with the revoked c");
        if (peer(c, "cell-d", NULL))
            fail_msg("the revoked c learned d");
        bool aa = false, ba = false;
        if (!known_at && peer(d, "cell-a", &aa) && aa && peer(d, "cell-b", &ba) && ba && s.tcp >= 1)
            known_at = now;
        if (known_at && now - known_at >= WATCH_MS && s.tcp >= 3)
            break;
        if (now - t0 > DEADLINE_MS)
            fail_msg("d did not join the fleet in time (%lld members, %lld TCP syncs)", (long long)s.known,
                     (long long)s.tcp);
        usleep(10000);
    }
    print_message("d listed members %llu ms after its start, the fleet alive after %llu ms\n",
                  (unsigned long long)(first_members - t0), (unsigned long long)(known_at - t0));
    assert_int_equal(snapshot(d).revocations, 1);

    mesh_cell_free(d);
    mesh_cell_free(c);
    mesh_cell_free(b);
    mesh_cell_free(a);
    core_config *cfgs[] = {&ca, &cb, &cc, &cd};
    for (size_t i = 0; i < 4; i++)
        core_config_free(cfgs[i]);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s' '%s' '%s'", fleet, da, db, dc, dd);
    if (system(cmd)) {
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(revoked_member_and_a_late_join),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
