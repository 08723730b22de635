/* api_logs.c: GET /v1/logs[?source=S]: the log watch's sources and their
 * templates (counts, rates, levels, first and last seen), from the daemon's
 * hook; an unknown source is 404, no hook (the watch is not running) 503. */
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

enum MHD_Result api_h_logs(struct api *a, struct MHD_Connection *c)
{
    static const char *const allowed[] = {"source", NULL};
    const char *vals[2];
    enum MHD_Result ret;
    if (!api_get_params(c, allowed, vals, &ret))
        return ret;
    const char *source = vals[0];
    if (source && (!*source || strlen(source) > 255))
        return api_send_error(c, 400, "bad_request", "source: expected a log source name (1 to 255 bytes)");
    if (!a->hooks.logs_json)
        return api_send_error(c, 503, "unavailable", "the log watch is not running");
    char *s = a->hooks.logs_json(a->hooks.ud, source);
    if (!s && source)
        return api_send_error(c, 404, "not_found", "no log source '%.128s' (see GET /v1/logs)", source);
    if (!s)
        return api_send_error(c, 503, "unavailable", "log sources not available");
    return api_send_buf(c, 200, s, strlen(s), "application/json");
}
