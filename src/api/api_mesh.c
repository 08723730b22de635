/* api_mesh.c: the mesh's routes: GET /v1/mesh/status, /v1/mesh/peers and
 * /v1/mesh/wisdom[?limit=N], answered by the daemon's mesh_json hook (the
 * cell in src/mesh builds the JSON). */
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

#define MESH_WISDOM_LIMIT_DEFAULT 50
#define MESH_WISDOM_LIMIT_MAX 1000

static int parse_limit(const char *v, int *out)
{
    char *end = NULL;
    if (!v || !*v || *v == '-' || *v == '+')
        return -1;
    long n = strtol(v, &end, 10);
    if (*end || n < 1 || n > MESH_WISDOM_LIMIT_MAX)
        return -1;
    *out = (int)n;
    return 0;
}

enum MHD_Result api_h_mesh(struct api *a, struct MHD_Connection *c, api_route_id id)
{
    static const char *const allowed[] = {"limit", NULL};
    const char *vals[1] = {NULL};
    enum MHD_Result ret;
    int limit = MESH_WISDOM_LIMIT_DEFAULT;
    if (id == R_MESH_WISDOM) {
        if (!api_get_params(c, allowed, vals, &ret))
            return ret;
        if (vals[0] && parse_limit(vals[0], &limit))
            return api_send_error(c, 400, "bad_request", "limit: '%.32s' is not a whole number in 1..%d", vals[0],
                                  MESH_WISDOM_LIMIT_MAX);
    } else if (!api_no_params(c, &ret)) {
        return ret;
    }
    if (!a->hooks.mesh_json)
        return api_send_error(c, 503, "unavailable", "the mesh is not running");
    int what = id == R_MESH_STATUS ? API_MESH_STATUS : id == R_MESH_PEERS ? API_MESH_PEERS : API_MESH_WISDOM;
    char *s = a->hooks.mesh_json(a->hooks.ud, what, limit);
    if (!s)
        return api_send_error(c, 503, "unavailable", "the mesh cannot answer (its node key did not load: see the log)");
    return api_send_buf(c, 200, s, strlen(s), "application/json");
}
