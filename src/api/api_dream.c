/* api_dream.c: dreaming's routes: GET /v1/digest[?day=YYYY-MM-DD] (the
 * daily digest, built on demand from memory for any day that has events)
 * and POST /v1/dream (starts a dreaming pass now; its brain.dream event
 * tells how it went). Everything comes through the daemon's hooks. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

/* "YYYY-MM-DD" with digits where digits go (the brain checks the calendar). */
static bool day_shaped(const char *s)
{
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return false;
    return true;
}

enum MHD_Result api_h_digest(struct api *a, struct MHD_Connection *c)
{
    static const char *const allowed[] = {"day", NULL};
    const char *vals[1] = {NULL};
    enum MHD_Result ret;
    if (!api_get_params(c, allowed, vals, &ret))
        return ret;
    if (vals[0] && !day_shaped(vals[0]))
        return api_send_error(c, 400, "bad_request", "day: '%.32s' is not a day (expected YYYY-MM-DD)", vals[0]);
    if (!a->hooks.digest_json)
        return api_send_error(c, 503, "unavailable", "the brain is not running");
    char err[256] = "";
    char *s = a->hooks.digest_json(a->hooks.ud, vals[0], err, sizeof err);
    if (!s && strstr(err, "not a day"))
        return api_send_error(c, 400, "bad_request", "day: %s", err);
    if (!s)
        return api_send_error(c, 404, "not_found", "%s", err[0] ? err : "no digest for that day");
    return api_send_buf(c, 200, s, strlen(s), "application/json");
}

/* The body of POST /v1/dream: empty, blanks or {}. */
static bool body_empty(const char *body, size_t len)
{
    size_t i = 0;
    while (i < len && strchr(" \t\r\n", body[i]))
        i++;
    if (i == len)
        return true;
    json_t *o = json_loadb(body, len, 0, NULL);
    bool ok = json_is_object(o) && json_object_size(o) == 0;
    json_decref(o);
    return ok;
}

enum MHD_Result api_h_dream(struct api *a, struct MHD_Connection *c, const char *body, size_t len)
{
    enum MHD_Result ret;
    if (!api_no_params(c, &ret))
        return ret;
    if (!body_empty(body, len))
        return api_send_error(c, 400, "bad_request", "the body must be empty or {} (the pass takes no options)");
    if (!a->hooks.dream)
        return api_send_error(c, 503, "unavailable", "the brain is not running");
    char err[256] = "";
    uint64_t pass = 0;
    int rc = a->hooks.dream(a->hooks.ud, &pass, err, sizeof err);
    if (rc == -EBUSY)
        return api_send_error(c, 409, "conflict", "%s", err[0] ? err : "a pass is running");
    if (rc == -ENOTSUP || rc == -ECANCELED)
        return api_send_error(c, 503, "unavailable", "%s", err[0] ? err : "the brain is off");
    if (rc != 0)
        return api_send_error(c, 500, "internal", "dream: %s", err[0] ? err : strerror(-rc));
    log_info("api: dreaming pass %" PRIu64 " started", pass);
    return api_send_json(c, 202, json_pack("{s:I, s:s}", "pass", (json_int_t)pass, "state", "started"));
}
