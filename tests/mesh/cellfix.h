/* cellfix.h: the set-up the mesh's cell tests share (test_cell, test_cell_wisdom,
 * test_wispub, test_reason, test_cell_sync, test_cell_config, test_mdns): a fleet
 * key and a member token for a state dir, a revoked key, the [mesh] config
 * text, a JSON view of the cell, a member's state in its peer view, and waiting
 * for a condition with a deadline. Set-up errors fail the test (cmocka's
 * fail_msg); include it after <cmocka.h>. */
#ifndef IPPOC_TESTS_MESH_CELLFIX_H
#define IPPOC_TESTS_MESH_CELLFIX_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "mesh/identity.h"
#include "mesh/mesh.h"

#define CELLFIX_DEADLINE_MS 30000
/* The roles most cells' tokens carry. */
#define CELLFIX_ROLES (MESH_ROLE_TOOL | MESH_ROLE_RELAY)
/* A cell on a free loopback port that probes and gossips fast. */
#define CELLFIX_MESH_FAST                                                                                              \
    "[mesh]\nenabled = yes\nlisten = 127.0.0.1:0\nprobe_interval_ms = 200\nprobe_timeout_ms = 100\n"                \
    "gossip_interval_ms = 50\nsuspicion_mult = 2\n"

/* Signs a membership token for state's node key (made when missing) with the
 * fleet key in fleet_dir (made when missing), valid from a minute ago for an hour. */
void cellfix_token(const char *fleet_dir, const char *state, const char *node_id, uint32_t roles);
/* mkdtemp on the templates fleet, da and db ("...XXXXXX"), the log at errors
 * only, and tokens (CELLFIX_ROLES) for cell-a in da and cell-b in db. */
void cellfix_pair(char *fleet, char *da, char *db);
/* Makes a node key fleet_dir/key_file no cell uses and writes into state a
 * revocation list (signed by the fleet key) naming it. */
void cellfix_revoke_new_key(const char *fleet_dir, const char *state, const char *key_file);
/* Writes into state a list revoking the node key pk. */
void cellfix_revoke_pk(const char *fleet_dir, const char *state, const uint8_t pk[MESH_ID_PK_BYTES]);
/* core_config defaults, state_dir = state, then text loaded as "cell.conf". */
void cellfix_config_text(core_config *c, const char *state, const char *text);
/* CELLFIX_MESH_FAST, then extra (NULL: none), then "seeds = seed" (NULL: none). */
void cellfix_config(core_config *c, const char *state, const char *seed, const char *extra);
/* Parses text as a config file "t.conf" and its [mesh] section into mc. */
int cellfix_parse(const char *text, mesh_config *mc, char *err, size_t errlen);
/* Parses and frees text (a cell's JSON answer); fails the test when it is not JSON. */
json_t *cellfix_view(char *text);
/* status.<section>.<key> (section NULL: status.<key>) as an integer, 0 when absent. */
json_int_t cellfix_status_int(mesh_cell *m, const char *section, const char *key);
/* The address the cell listens on (status.listen), what another cell seeds with. */
void cellfix_listen(mesh_cell *m, char *out, size_t n);
/* The state of member id in the cell's peer view, "" when not listed. */
void cellfix_member_state(mesh_cell *m, const char *id, char *out, size_t n);
/* Polls cond(arg) every 20 ms until it holds (true) or CELLFIX_DEADLINE_MS passed (false). */
bool cellfix_wait(bool (*cond)(void *arg), void *arg);
/* Waits until member id's state in m's peer view is want. */
bool cellfix_wait_state(mesh_cell *m, const char *id, const char *want);
/* Waits until status.<section>.<key> is at least at_least. */
bool cellfix_wait_status(mesh_cell *m, const char *section, const char *key, json_int_t at_least);

#endif
