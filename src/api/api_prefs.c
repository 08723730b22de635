/* api_prefs.c: the preferences' routes: GET /v1/prefs (configured and
 * learned preferences, what each changed and when), POST
 * /v1/prefs/{id}/forget (forgets a learned one), and approvals with an edit
 * (POST /v1/pending/{id}/approve {"who":"alice","edit":"restart web"}: the
 * edited action runs instead of the proposed one). Everything comes through
 * the daemon's hooks. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

#define API_EDIT_MAX 255
#define API_PREF_ID_MAX 96

static enum MHD_Result no_prefs(struct MHD_Connection *c)
{
    return api_send_error(c, 503, "unavailable", "the brain's preferences are not available");
}

enum MHD_Result api_h_prefs(struct api *a, struct MHD_Connection *c)
{
    enum MHD_Result ret;
    if (!api_no_params(c, &ret))
        return ret;
    if (!a->hooks.prefs_json)
        return no_prefs(c);
    char *s = a->hooks.prefs_json(a->hooks.ud);
    if (!s)
        return api_send_error(c, 503, "unavailable", "the preferences are not available");
    return api_send_buf(c, 200, s, strlen(s), "application/json");
}

enum MHD_Result api_h_pref_forget(struct api *a, struct MHD_Connection *c, const char *id, size_t idlen)
{
    enum MHD_Result ret;
    if (!api_no_params(c, &ret))
        return ret;
    char pid[API_PREF_ID_MAX + 1];
    bool ok = idlen > 0 && idlen <= API_PREF_ID_MAX;
    for (size_t i = 0; ok && i < idlen; i++)
        ok = id[i] > 0x20 && id[i] < 0x7f;
    if (!ok)
        return api_send_error(c, 400, "bad_request", "'%.*s' is not a preference id", (int)(idlen > 40 ? 40 : idlen),
                              id);
    memcpy(pid, id, idlen);
    pid[idlen] = 0;
    if (!a->hooks.prefs_forget)
        return no_prefs(c);
    char err[512] = "";
    int rc = a->hooks.prefs_forget(a->hooks.ud, pid, err, sizeof err);
    if (rc == -ENOENT)
        return api_send_error(c, 404, "not_found", "%s", err);
    if (rc == -EPERM)
        return api_send_error(c, 403, "forbidden", "%s", err);
    if (rc)
        return api_send_error(c, 503, "unavailable", "%s", err[0] ? err : strerror(-rc));
    log_info("api: preference %s forgotten", pid);
    return api_send_json(c, 200, json_pack("{s:s, s:s}", "id", pid, "result", "forgotten"));
}

/* {"who":"...","edit":"..."}: 1 with them when there is an edit, 0 when
 * not (the plain approval parses it), -EINVAL with err. */
static int edit_body(const char *body, size_t len, char *who, size_t wholen, char *edit, size_t editlen, char *err,
                     size_t errlen)
{
    json_t *o = body && len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    json_t *e = json_object_get(o, "edit");
    if (!e) {
        json_decref(o);
        return 0;
    }
    int rc = 1;
    const char *k;
    json_t *v;
    snprintf(who, wholen, "api");
    json_object_foreach(o, k, v) {
        const char *s = json_string_value(v);
        size_t n = s ? strlen(s) : 0;
        bool printable = s != NULL;
        for (size_t i = 0; printable && i < n; i++)
            printable = s[i] >= 0x20 && s[i] < 0x7f;
        if (strcmp(k, "who") && strcmp(k, "edit")) {
            snprintf(err, errlen, "body: unknown member \"%.40s\" (only \"who\" and \"edit\")", k);
            rc = -EINVAL;
        } else if (!printable || n == 0 || n > (k[0] == 'w' ? API_WHO_MAX : API_EDIT_MAX)) {
            snprintf(err, errlen, "body: \"%s\" must be 1 to %d printable ASCII characters", k,
                     k[0] == 'w' ? API_WHO_MAX : API_EDIT_MAX);
            rc = -EINVAL;
        } else {
            snprintf(k[0] == 'w' ? who : edit, k[0] == 'w' ? wholen : editlen, "%s", s);
        }
        if (rc < 0)
            break;
    }
    json_decref(o);
    return rc;
}

enum MHD_Result api_h_approve(struct api *a, struct MHD_Connection *c, const char *id, size_t idlen,
                              const char *body, size_t len)
{
    char who[API_WHO_MAX + 1], edit[API_EDIT_MAX + 1], err[512];
    int rc = len <= API_BODY_MAX ? edit_body(body, len, who, sizeof who, edit, sizeof edit, err, sizeof err) : 0;
    if (rc == 0)
        return api_h_pending_act(a, c, id, idlen, true, body, len);
    enum MHD_Result ret;
    uint64_t n;
    if (!api_no_params(c, &ret))
        return ret;
    if (api_parse_id(id, idlen, &n) != 0)
        return api_send_error(c, 400, "bad_request", "'%.*s' is not an id", (int)(idlen > 40 ? 40 : idlen), id);
    if (rc < 0)
        return api_send_error(c, 400, "bad_request", "%s", err);
    if (!a->hooks.approve_edit)
        return api_send_error(c, 503, "unavailable", "healing is not configured");
    err[0] = 0;
    rc = a->hooks.approve_edit(a->hooks.ud, n, who, edit, err, sizeof err);
    if (rc == -EINVAL)
        return api_send_error(c, 400, "bad_request", "approve %" PRIu64 ": %s", n, err);
    if (rc) {
        api_err_map m = api_heal_err_map(rc);
        return api_send_error(c, m.status, m.code, "approve %" PRIu64 ": %s", n, err[0] ? err : strerror(-rc));
    }
    log_info("api: pending action %" PRIu64 " approved by %s with the edit '%s'", n, who, edit);
    return api_send_json(c, 200, json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)n, "result", "approved", "who",
                                           who, "edit", edit));
}
