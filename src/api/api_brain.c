/* api_brain.c: the brain's routes: GET /v1/incidents/{id}/diagnosis (an
 * incident's diagnosis, 404 until there is one), GET /v1/brain (queue,
 * deliberations, cases) and POST /v1/diagnose {"service":"S"} (a user's
 * question: the brain opens an incident and diagnoses it now; answers the
 * incident's id). Everything comes through the daemon's hooks. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

static enum MHD_Result no_brain(struct MHD_Connection *c)
{
    return api_send_error(c, 503, "unavailable", "the brain is not running");
}

enum MHD_Result api_h_diagnosis(struct api *a, struct MHD_Connection *c, const char *id, size_t idlen)
{
    enum MHD_Result ret;
    uint64_t n;
    if (!api_no_params(c, &ret))
        return ret;
    if (api_parse_id(id, idlen, &n) != 0)
        return api_send_error(c, 400, "bad_request", "'%.*s' is not an id (expected 1 to %s)",
                              (int)(idlen > 40 ? 40 : idlen), id, "18446744073709551615");
    if (!a->hooks.diagnosis_json)
        return no_brain(c);
    char *s = a->hooks.diagnosis_json(a->hooks.ud, n);
    if (!s)
        return api_send_error(c, 404, "not_found", "no diagnosis of incident %" PRIu64 " (yet)", n);
    return api_send_buf(c, 200, s, strlen(s), "application/json");
}

enum MHD_Result api_h_brain(struct api *a, struct MHD_Connection *c)
{
    enum MHD_Result ret;
    if (!api_no_params(c, &ret))
        return ret;
    if (!a->hooks.brain_json)
        return no_brain(c);
    char *s = a->hooks.brain_json(a->hooks.ud);
    if (!s)
        return api_send_error(c, 503, "unavailable", "the brain's status is not available");
    return api_send_buf(c, 200, s, strlen(s), "application/json");
}

int api_parse_diagnose_body(const char *body, size_t len, char *service, size_t n, char *err, size_t errlen)
{
    json_error_t je;
    json_t *o = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        snprintf(err, errlen, "the body is not a JSON object: %s", je.text);
        return -EINVAL;
    }
    const char *k;
    json_t *v;
    int rc = 0;
    json_object_foreach(o, k, v) {
        if (strcmp(k, "service") != 0) {
            snprintf(err, errlen, "unknown member '%.64s' (expected only \"service\")", k);
            rc = -EINVAL;
            break;
        }
    }
    const char *s = json_string_value(json_object_get(o, "service"));
    if (!rc && (!s || !*s || strlen(s) >= n || strlen(s) > 63)) {
        snprintf(err, errlen, "\"service\" must be a service name of 1 to 63 bytes");
        rc = -EINVAL;
    }
    for (const char *p = s; !rc && *p; p++)
        if (*p < 0x21 || *p > 0x7e) {
            snprintf(err, errlen, "\"service\" holds a byte that is not printable ASCII");
            rc = -EINVAL;
        }
    if (!rc)
        snprintf(service, n, "%s", s);
    json_decref(o);
    return rc;
}

enum MHD_Result api_h_diagnose(struct api *a, struct MHD_Connection *c, const char *body, size_t len)
{
    enum MHD_Result ret;
    char service[64], err[512] = "";
    if (!api_no_params(c, &ret))
        return ret;
    if (api_parse_diagnose_body(body, len, service, sizeof service, err, sizeof err) != 0)
        return api_send_error(c, 400, "bad_request", "%s", err);
    if (!a->hooks.diagnose)
        return no_brain(c);
    uint64_t id = 0;
    int rc = a->hooks.diagnose(a->hooks.ud, service, &id, err, sizeof err);
    if (rc == -ENOENT)
        return api_send_error(c, 404, "not_found", "%s", err[0] ? err : "no such service");
    if (rc == -ENOTSUP)
        return api_send_error(c, 503, "unavailable", "%s", err[0] ? err : "the brain is off");
    if (rc != 0) {
        api_err_map m = api_heal_err_map(rc);
        return api_send_error(c, m.status, m.code, "diagnose %s: %s", service, err[0] ? err : strerror(-rc));
    }
    log_info("api: diagnose %s: incident %" PRIu64, service, id);
    return api_send_json(c, 200, json_pack("{s:I, s:s}", "incident", (json_int_t)id, "service", service));
}
