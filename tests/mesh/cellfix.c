/* cellfix.c: the mesh cell tests' shared fixture (see cellfix.h). */
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

static void fleet_key(const char *fleet_dir, bool create, mesh_identity_key *fk)
{
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/%s", fleet_dir, MESH_ID_FLEET_KEY_FILE);
    if (mesh_identity_key_load(path, MESH_KEY_FLEET, fk, err, sizeof err) &&
        (!create || mesh_identity_key_create(path, MESH_KEY_FLEET, fk, err, sizeof err)))
        fail_msg("fleet key: %s", err);
}

void cellfix_token(const char *fleet_dir, const char *state, const char *node_id, uint32_t roles)
{
    char err[512];
    mesh_identity_key fk, nk;
    fleet_key(fleet_dir, true, &fk);
    if (mesh_identity_node_key(state, &nk, NULL, err, sizeof err))
        fail_msg("node key: %s", err);
    mesh_identity_token t;
    memset(&t, 0, sizeof t);
    memcpy(t.cert.node_pk, nk.pk, MESH_ID_PK_BYTES);
    snprintf(t.cert.node_id, sizeof t.cert.node_id, "%s", node_id);
    t.cert.roles = roles;
    t.cert.not_before = (int64_t)time(NULL) - 60;
    t.cert.not_after = (int64_t)time(NULL) + 3600;
    if (mesh_identity_cert_sign(&t.cert, &fk, err, sizeof err) || mesh_identity_member_save(state, &t, err, sizeof err))
        fail_msg("token: %s", err);
    mesh_identity_key_wipe(&fk);
    mesh_identity_key_wipe(&nk);
}

void cellfix_pair(char *fleet, char *da, char *db)
{
    assert_non_null(mkdtemp(fleet));
    assert_non_null(mkdtemp(da));
    assert_non_null(mkdtemp(db));
    core_log_setup(CORE_LOG_ERR, 0);
    cellfix_token(fleet, da, "cell-a", CELLFIX_ROLES);
    cellfix_token(fleet, db, "cell-b", CELLFIX_ROLES);
}

void cellfix_revoke_pk(const char *fleet_dir, const char *state, const uint8_t pk[MESH_ID_PK_BYTES])
{
    char err[512];
    mesh_identity_key fk;
    fleet_key(fleet_dir, false, &fk);
    mesh_identity_revocation r;
    memset(&r, 0, sizeof r);
    r.kind = MESH_REVOKE_KEY;
    r.reason = MESH_REASON_RETIRED;
    memcpy(r.node_pk, pk, MESH_ID_PK_BYTES);
    r.time = (int64_t)time(NULL);
    r.until = r.time + 3600;
    mesh_identity_revlist rl;
    assert_int_equal(mesh_identity_revlist_init(&rl, fk.pk, 0), 0);
    if (mesh_identity_revocation_sign(&r, &fk, err, sizeof err) ||
        mesh_identity_revlist_add(&rl, &r, r.time, err, sizeof err) != 1 ||
        mesh_identity_revlist_save(&rl, state, err, sizeof err))
        fail_msg("revocation: %s", err);
    mesh_identity_revlist_free(&rl);
    mesh_identity_key_wipe(&fk);
}

void cellfix_revoke_new_key(const char *fleet_dir, const char *state, const char *key_file)
{
    char path[512], err[512];
    mesh_identity_key zk;
    snprintf(path, sizeof path, "%s/%s", fleet_dir, key_file);
    if (mesh_identity_key_create(path, MESH_KEY_NODE, &zk, err, sizeof err))
        fail_msg("%s: %s", key_file, err);
    cellfix_revoke_pk(fleet_dir, state, zk.pk);
    mesh_identity_key_wipe(&zk);
}

void cellfix_config_text(core_config *c, const char *state, const char *text)
{
    char err[512];
    core_config_defaults(c);
    snprintf(c->state_dir, sizeof c->state_dir, "%s", state);
    if (core_config_load_string(c, text, "cell.conf", err, sizeof err))
        fail_msg("config: %s", err);
}

void cellfix_config(core_config *c, const char *state, const char *seed, const char *extra)
{
    char text[2048];
    int n = snprintf(text, sizeof text, "%s%s%s%s%s", CELLFIX_MESH_FAST, extra ? extra : "", seed ? "seeds = " : "",
                     seed ? seed : "", seed ? "\n" : "");
    if (n < 0 || (size_t)n >= sizeof text)
        fail_msg("config: the text is longer than %zu bytes", sizeof text);
    cellfix_config_text(c, state, text);
}

int cellfix_parse(const char *text, mesh_config *mc, char *err, size_t errlen)
{
    core_config c;
    core_config_defaults(&c);
    int rc = core_config_load_string(&c, text, "t.conf", err, errlen);
    if (!rc)
        rc = mesh_config_parse(&c, mc, err, errlen);
    core_config_free(&c);
    return rc;
}

json_t *cellfix_view(char *text)
{
    assert_non_null(text);
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(j);
    return j;
}

json_int_t cellfix_status_int(mesh_cell *m, const char *section, const char *key)
{
    json_t *j = cellfix_view(mesh_cell_status_json(m));
    json_t *o = section ? json_object_get(j, section) : j;
    json_int_t v = json_integer_value(json_object_get(o, key));
    json_decref(j);
    return v;
}

void cellfix_listen(mesh_cell *m, char *out, size_t n)
{
    json_t *st = cellfix_view(mesh_cell_status_json(m));
    snprintf(out, n, "%s", json_string_value(json_object_get(st, "listen")));
    json_decref(st);
}

void cellfix_member_state(mesh_cell *m, const char *id, char *out, size_t n)
{
    json_t *j = cellfix_view(mesh_cell_peers_json(m)), *p;
    size_t i;
    out[0] = 0;
    json_array_foreach(json_object_get(j, "peers"), i, p)
        if (!strcmp(json_string_value(json_object_get(p, "node_id")), id))
            snprintf(out, n, "%s", json_string_value(json_object_get(p, "state")));
    json_decref(j);
}

bool cellfix_wait(bool (*cond)(void *arg), void *arg)
{
    for (int t = 0; t < CELLFIX_DEADLINE_MS; t += 20) {
        if (cond(arg))
            return true;
        usleep(20000);
    }
    return false;
}

typedef struct {
    mesh_cell *m;
    const char *id, *want, *section;
    json_int_t at_least;
} waiter;

static bool state_is(void *arg)
{
    waiter *w = arg;
    char st[16];
    cellfix_member_state(w->m, w->id, st, sizeof st);
    return !strcmp(st, w->want);
}

bool cellfix_wait_state(mesh_cell *m, const char *id, const char *want)
{
    waiter w = {.m = m, .id = id, .want = want};
    return cellfix_wait(state_is, &w);
}

static bool status_reached(void *arg)
{
    waiter *w = arg;
    return cellfix_status_int(w->m, w->section, w->id) >= w->at_least;
}

bool cellfix_wait_status(mesh_cell *m, const char *section, const char *key, json_int_t at_least)
{
    waiter w = {.m = m, .section = section, .id = key, .at_least = at_least};
    return cellfix_wait(status_reached, &w);
}
