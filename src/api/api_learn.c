/* api_learn.c: the knowledge routes: POST /v1/learn (a document's text and
 * provenance, a URL for the daemon to fetch, or a feed to follow), GET
 * /v1/knowledge (stats, newest documents, feeds), GET /v1/knowledge/search
 * (?q=&mode=hybrid|bm25|vector&limit=) and GET /v1/knowledge/feeds.
 * Everything comes through the daemon's hooks (the brain's learner). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

static enum MHD_Result no_store(struct MHD_Connection *c)
{
    return api_send_error(c, 503, "unavailable", "the knowledge store is not running");
}

static const char *code_of(int status)
{
    switch (status) {
    case 400: return "bad_request";
    case 404: return "not_found";
    case 413: return "too_large";
    case 502: return "bad_gateway";
    case 503: return "unavailable";
    default: return "internal";
    }
}

enum MHD_Result api_h_learn(struct api *a, struct MHD_Connection *c, const char *body, size_t len)
{
    enum MHD_Result ret;
    if (!api_no_params(c, &ret))
        return ret;
    if (!a->hooks.learn)
        return no_store(c);
    int status = 500;
    char err[1024] = "";
    char *s = a->hooks.learn(a->hooks.ud, body, len, &status, err, sizeof err);
    if (!s)
        return api_send_error(c, status >= 400 ? (unsigned)status : 500, code_of(status), "%s",
                              err[0] ? err : "cannot learn it");
    return api_send_buf(c, 200, s, strlen(s), "application/json");
}

/* limit: decimal lo..hi, dflt when absent; false when bad. */
static bool limit_of(const char *v, int lo, int hi, int dflt, int *out)
{
    if (!v) {
        *out = dflt;
        return true;
    }
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < lo || n > hi)
        return false;
    *out = (int)n;
    return true;
}

enum MHD_Result api_h_knowledge(struct api *a, struct MHD_Connection *c, api_route_id id)
{
    enum MHD_Result ret;
    int limit;
    if (id == R_KNOWLEDGE_SEARCH) {
        static const char *const allowed[] = {"q", "mode", "limit", NULL};
        const char *vals[3];
        if (!api_get_params(c, allowed, vals, &ret))
            return ret;
        if (!vals[0] || !*vals[0])
            return api_send_error(c, 400, "bad_request", "q: give the text to search for");
        if (!limit_of(vals[2], 1, 100, 10, &limit))
            return api_send_error(c, 400, "bad_request", "limit: '%.40s' is not a number of 1 to 100", vals[2]);
        if (!a->hooks.knowledge_search)
            return no_store(c);
        int status = 500;
        char err[1024] = "";
        char *s = a->hooks.knowledge_search(a->hooks.ud, vals[0], vals[1] ? vals[1] : "hybrid", limit, &status, err,
                                            sizeof err);
        if (!s)
            return api_send_error(c, status >= 400 ? (unsigned)status : 500, code_of(status), "%s",
                                  err[0] ? err : "the search failed");
        return api_send_buf(c, 200, s, strlen(s), "application/json");
    }
    if (id == R_KNOWLEDGE_LINKS) {
        static const char *const allowed[] = {"node", "depth", NULL};
        const char *vals[2];
        if (!api_get_params(c, allowed, vals, &ret))
            return ret;
        if (!vals[0] || !strchr(vals[0], ':') || strlen(vals[0]) > 512)
            return api_send_error(c, 400, "bad_request", "node: give a node as KIND:ID (e.g. knob:vm.swappiness)");
        if (!limit_of(vals[1], 1, 3, 1, &limit))
            return api_send_error(c, 400, "bad_request", "depth: '%.40s' is not 1, 2 or 3", vals[1]);
        char *s = a->hooks.links_json ? a->hooks.links_json(a->hooks.ud, vals[0], limit) : NULL;
        return s ? api_send_buf(c, 200, s, strlen(s), "application/json") : no_store(c);
    }
    if (id == R_KNOWLEDGE_FEEDS) {
        if (!api_no_params(c, &ret))
            return ret;
        char *s = a->hooks.feeds_json ? a->hooks.feeds_json(a->hooks.ud) : NULL;
        return s ? api_send_buf(c, 200, s, strlen(s), "application/json") : no_store(c);
    }
    static const char *const allowed[] = {"limit", NULL};
    const char *vals[1];
    if (!api_get_params(c, allowed, vals, &ret))
        return ret;
    if (!limit_of(vals[0], 1, 1000, 20, &limit))
        return api_send_error(c, 400, "bad_request", "limit: '%.40s' is not a number of 1 to 1000", vals[0]);
    char *s = a->hooks.knowledge_json ? a->hooks.knowledge_json(a->hooks.ud, limit) : NULL;
    return s ? api_send_buf(c, 200, s, strlen(s), "application/json") : no_store(c);
}
