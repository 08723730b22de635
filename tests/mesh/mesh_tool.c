/* mesh_tool.c: a tiny helper for the mesh's integration tests (not
 * installed; `ippoc mesh ...` is the user's way): builds fleets and
 * membership tokens with the identity functions.
 *   mesh-tool fleet DIR                        creates DIR/mesh-fleet.key, prints its public key
 *   mesh-tool invite FLEETDIR STATEDIR NODE_ID [SEED...]
 *        signs a certificate (every role, valid a day) for STATEDIR's node key
 *        (created when missing) and writes STATEDIR/mesh-member.token */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mesh/identity.h"

static int fleet(const char *dir)
{
    char path[4096], err[512], hex[2 * MESH_ID_PK_BYTES + 1];
    mesh_identity_key k;
    snprintf(path, sizeof path, "%s/%s", dir, MESH_ID_FLEET_KEY_FILE);
    if (mesh_identity_key_create(path, MESH_KEY_FLEET, &k, err, sizeof err)) {
        fprintf(stderr, "mesh-tool: %s\n", err);
        return 1;
    }
    mesh_identity_pk_hex(k.pk, hex);
    printf("%s\n", hex);
    return 0;
}

static int invite(const char *fleetdir, const char *state, const char *node_id, int nseeds, char **seeds)
{
    char path[4096], err[512], text[MESH_ID_TOKEN_MAX];
    mesh_identity_key fk, nk;
    snprintf(path, sizeof path, "%s/%s", fleetdir, MESH_ID_FLEET_KEY_FILE);
    if (mesh_identity_key_load(path, MESH_KEY_FLEET, &fk, err, sizeof err) ||
        mesh_identity_node_key(state, &nk, NULL, err, sizeof err)) {
        fprintf(stderr, "mesh-tool: %s\n", err);
        return 1;
    }
    mesh_identity_token t;
    memset(&t, 0, sizeof t);
    memcpy(t.cert.node_pk, nk.pk, MESH_ID_PK_BYTES);
    snprintf(t.cert.node_id, sizeof t.cert.node_id, "%s", node_id);
    t.cert.roles = MESH_ROLE_ALL;
    int64_t now = (int64_t)time(NULL);
    t.cert.not_before = now - 60;
    t.cert.not_after = now + 86400;
    for (int i = 0; i < nseeds && i < MESH_ID_SEEDS_MAX; i++)
        snprintf(t.seeds[t.nseeds++], sizeof t.seeds[0], "%s", seeds[i]);
    if (mesh_identity_cert_sign(&t.cert, &fk, err, sizeof err) ||
        mesh_identity_token_encode(&t, text, sizeof text, err, sizeof err) ||
        mesh_identity_member_save(state, &t, err, sizeof err)) {
        fprintf(stderr, "mesh-tool: %s\n", err);
        return 1;
    }
    printf("%s\n", text);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "fleet"))
        return fleet(argv[2]);
    if (argc >= 5 && !strcmp(argv[1], "invite"))
        return invite(argv[2], argv[3], argv[4], argc - 5, argv + 5);
    fprintf(stderr, "usage: mesh-tool fleet DIR | invite FLEETDIR STATEDIR NODE_ID [SEED...]\n");
    return 2;
}
