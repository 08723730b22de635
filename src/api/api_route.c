/* api_route.c: which endpoint a request path names, and which methods it
 * takes. Pure (no MHD), so the unit tests check the table directly. Paths
 * arrive percent-decoded; a trailing '/' or an extra segment is no route. */
#include <string.h>

#include "api/api_int.h"

static const struct {
    const char *path;
    api_route_id id;
} exact[] = {
    {"/v1/status", R_STATUS},       {"/v1/metrics", R_METRICS},     {"/v1/events", R_EVENTS},
    {"/v1/events/stream", R_STREAM}, {"/metrics", R_PROM},          {"/v1/services", R_SERVICES},
    {"/v1/incidents", R_INCIDENTS}, {"/v1/pending", R_PENDING},     {"/v1/audit", R_AUDIT},
    {"/v1/audit/verify", R_AUDIT_VERIFY}, {"/v1/anomalies", R_ANOMALIES},
    {"/v1/logs", R_LOGS},
    {"/v1/brain", R_BRAIN}, {"/v1/diagnose", R_DIAGNOSE},
    {"/v1/ask", R_ASK},
    {"/v1/llm", R_LLM},
    {"/v1/digest", R_DIGEST}, {"/v1/dream", R_DREAM},
    {"/v1/learn", R_LEARN}, {"/v1/knowledge", R_KNOWLEDGE}, {"/v1/knowledge/search", R_KNOWLEDGE_SEARCH}, {"/v1/knowledge/feeds", R_KNOWLEDGE_FEEDS},
    {"/v1/knowledge/links", R_KNOWLEDGE_LINKS},
    {"/v1/prefs", R_PREFS},
    {"/v1/actions", R_ACTIONS},
    {"/v1/mesh/status", R_MESH_STATUS}, {"/v1/mesh/peers", R_MESH_PEERS}, {"/v1/mesh/wisdom", R_MESH_WISDOM},
    {"/", R_WEB}, {"/index.html", R_WEB},
};

static bool prefixed(const char *url, const char *pfx, const char **rest)
{
    size_t n = strlen(pfx);
    if (strncmp(url, pfx, n) != 0 || url[n] == 0)
        return false;
    *rest = url + n;
    return true;
}

/* "/v1/pending/{id}/approve" and ".../reject". */
static api_route match_pending(const char *rest)
{
    api_route m = {R_NONE, NULL, 0};
    const char *slash = strchr(rest, '/');
    if (!slash || slash == rest)
        return m;
    if (strcmp(slash + 1, "approve") == 0)
        m.id = R_APPROVE;
    else if (strcmp(slash + 1, "reject") == 0)
        m.id = R_REJECT;
    else
        return m;
    m.arg = rest;
    m.arglen = (size_t)(slash - rest);
    return m;
}

api_route api_route_match(const char *url)
{
    api_route m = {R_NONE, NULL, 0};
    const char *rest;
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strcmp(url, exact[i].path) == 0) {
            m.id = exact[i].id;
            return m;
        }
    if (prefixed(url, "/v1/metrics/", &rest)) {
        m = (api_route){R_METRIC, rest, strlen(rest)};
    } else if (prefixed(url, "/v1/incidents/", &rest)) {
        const char *sl = strchr(rest, '/');
        if (!sl)
            m = (api_route){R_INCIDENT, rest, strlen(rest)};
        else if (sl > rest && !strcmp(sl, "/diagnosis"))
            m = (api_route){R_DIAGNOSIS, rest, (size_t)(sl - rest)};
    } else if (prefixed(url, "/v1/pending/", &rest)) {
        m = match_pending(rest);
    } else if (!strcmp(url, "/v1/genome") || !strcmp(url, "/v1/evolve") || !strcmp(url, "/v1/tools") ||
               prefixed(url, "/v1/genome/", &rest) || prefixed(url, "/v1/evolve/", &rest) ||
               prefixed(url, "/v1/tools/", &rest)) {
        m = (api_route){R_EVOLVE, url, strlen(url)}; /* the cell sorts out the rest */
    } else if (prefixed(url, "/assets/", &rest)) {
        m = (api_route){R_WEB, url, strlen(url)}; /* api_web.c answers 404 for a name it lacks */
    } else if (prefixed(url, "/v1/prefs/", &rest)) {
        const char *sl = strchr(rest, '/');
        if (sl && sl > rest && !strcmp(sl, "/forget"))
            m = (api_route){R_PREF_FORGET, rest, (size_t)(sl - rest)};
    }
    return m;
}

bool api_route_is_post(api_route_id id)
{
    return id == R_APPROVE || id == R_REJECT || id == R_DIAGNOSE || id == R_DREAM || id == R_LEARN || id == R_ASK ||
           id == R_PREF_FORGET || id == R_ACTIONS;
}

bool api_route_takes_body(api_route_id id, const char *method)
{
    return api_route_is_post(id) || (id == R_EVOLVE && !strcmp(method, "POST"));
}

const char *api_route_allow(api_route_id id)
{
    if (id == R_EVOLVE)
        return "GET, HEAD, POST";
    return api_route_is_post(id) ? "POST" : "GET, HEAD";
}
