/* api_heal.c: the healing endpoints: services, incidents, pending actions
 * (list, approve, reject) and the audit log (records, verification).
 *
 * Lists come from the daemon's hooks (snapshots the heal engine publishes);
 * approve / reject go through hooks that post to the loop thread and wait;
 * the audit endpoints read the log file itself with heal_audit_read and
 * heal_audit_verify, which only read and are safe beside the writer. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api_int.h"
#include "heal/audit.h"

#define VERIFY_TORN_RETRIES 3 /* a torn tail may be an append in flight */
#define VERIFY_TORN_WAIT_MS 50

static enum MHD_Result unavailable(struct MHD_Connection *c)
{
    return api_send_error(c, 503, "unavailable", "healing is not configured");
}

static enum MHD_Result send_text(struct MHD_Connection *c, char *s, const char *what)
{
    if (!s)
        return api_send_error(c, 503, "unavailable", "%s not available yet", what);
    return api_send_buf(c, 200, s, strlen(s), "application/json");
}

/* ---- lists ------------------------------------------------------------------ */
enum MHD_Result api_h_heal_list(struct api *a, struct MHD_Connection *c, enum api_heal_list which)
{
    enum MHD_Result ret;
    if (!api_no_params(c, &ret))
        return ret;
    void *ud = a->hooks.ud;
    switch (which) {
    case API_LIST_SERVICES:
        return a->hooks.services_json ? send_text(c, a->hooks.services_json(ud), "services")
                                      : unavailable(c);
    case API_LIST_INCIDENTS:
        return a->hooks.incidents_json ? send_text(c, a->hooks.incidents_json(ud), "incidents")
                                       : unavailable(c);
    case API_LIST_PENDING:
        return a->hooks.pending_json ? send_text(c, a->hooks.pending_json(ud), "pending actions")
                                     : unavailable(c);
    }
    return unavailable(c);
}

static enum MHD_Result bad_id(struct MHD_Connection *c, const char *id, size_t n)
{
    return api_send_error(c, 400, "bad_request", "'%.*s' is not an id (expected 1 to %s)",
                          (int)(n > 40 ? 40 : n), id, "18446744073709551615");
}

enum MHD_Result api_h_incident(struct api *a, struct MHD_Connection *c, const char *id, size_t idlen)
{
    enum MHD_Result ret;
    uint64_t n;
    if (!api_no_params(c, &ret))
        return ret;
    if (api_parse_id(id, idlen, &n) != 0)
        return bad_id(c, id, idlen);
    if (!a->hooks.incident_json)
        return unavailable(c);
    char *s = a->hooks.incident_json(a->hooks.ud, n);
    if (!s)
        return api_send_error(c, 404, "not_found", "no incident %" PRIu64, n);
    return api_send_buf(c, 200, s, strlen(s), "application/json");
}

/* ---- approve / reject ------------------------------------------------------------- */
/* The pending entry with this id from pending_json, for the answer's text
 * (it is gone from the list once approved). NULL when unknown. */
static json_t *pending_entry(struct api *a, uint64_t id)
{
    char *s = a->hooks.pending_json ? a->hooks.pending_json(a->hooks.ud) : NULL;
    json_t *o = s ? json_loads(s, 0, NULL) : NULL, *v, *found = NULL;
    size_t i;
    free(s);
    json_array_foreach(json_object_get(o, "pending"), i, v)
        if (json_integer_value(json_object_get(v, "id")) == (json_int_t)id) {
            found = json_incref(v);
            break;
        }
    json_decref(o);
    return found;
}

static json_t *act_answer(uint64_t id, bool approve, const char *who, json_t *entry)
{
    json_t *o = json_pack("{sIssss}", "id", (json_int_t)id, "result", approve ? "approved" : "rejected",
                          "who", who);
    json_t *svc = json_object_get(entry, "service"), *act = json_object_get(entry, "action");
    if (o && json_is_string(svc))
        json_object_set(o, "service", svc);
    if (o && json_is_string(act))
        json_object_set(o, "action", act);
    return o;
}

enum MHD_Result api_h_pending_act(struct api *a, struct MHD_Connection *c, const char *id, size_t idlen,
                                  bool approve, const char *body, size_t len)
{
    enum MHD_Result ret;
    uint64_t n;
    char who[API_WHO_MAX + 1], err[512];
    if (!api_no_params(c, &ret))
        return ret;
    if (api_parse_id(id, idlen, &n) != 0)
        return bad_id(c, id, idlen);
    if (api_parse_action_body(body, len, who, sizeof who, err, sizeof err) != 0)
        return api_send_error(c, 400, "bad_request", "%s", err);
    int (*fn)(void *, uint64_t, const char *, char *, size_t) = approve ? a->hooks.approve : a->hooks.reject;
    if (!fn)
        return unavailable(c);
    json_t *entry = pending_entry(a, n);
    err[0] = 0;
    int rc = fn(a->hooks.ud, n, who, err, sizeof err);
    if (rc != 0) {
        json_decref(entry);
        api_err_map m = api_heal_err_map(rc);
        return api_send_error(c, m.status, m.code, "%s %" PRIu64 ": %s", approve ? "approve" : "reject", n,
                              err[0] ? err : strerror(rc < 0 ? -rc : rc));
    }
    json_t *o = act_answer(n, approve, who, entry);
    json_decref(entry);
    log_info("api: pending action %" PRIu64 " %s by %s", n, approve ? "approved" : "rejected", who);
    return api_send_json(c, 200, o);
}

/* ---- audit records ------------------------------------------------------------------- */
static bool parse_seq(const char *s, uint64_t *out)
{
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return true;
    }
    return api_parse_id(s, strlen(s), out) == 0;
}

static int collect_record(const heal_audit_entry *e, void *ud)
{
    json_array_append(ud, e->json);
    return 0;
}

/* Validates ?since&last&service into f. 0, or sends the 400 (*ret). */
static int audit_filter(struct MHD_Connection *c, heal_audit_filter *f, enum MHD_Result *ret)
{
    static const char *const allowed[] = {"since", "last", "service", NULL};
    const char *v[3];
    uint64_t n;
    if (!api_get_params(c, allowed, v, ret))
        return -1;
    f->last_n = API_AUDIT_DEFAULT_LAST;
    if (v[0] && !parse_seq(v[0], &f->since_seq)) {
        *ret = api_send_error(c, 400, "bad_request", "since: '%.32s' is not a sequence number", v[0]);
        return -1;
    }
    if (v[1] && (api_parse_id(v[1], strlen(v[1]), &n) != 0 || n > API_AUDIT_MAX_LAST)) {
        *ret = api_send_error(c, 400, "bad_request", "last: must be 1..%d", API_AUDIT_MAX_LAST);
        return -1;
    }
    if (v[1])
        f->last_n = (size_t)n;
    if (v[2] && (!v[2][0] || strlen(v[2]) > 256)) {
        *ret = api_send_error(c, 400, "bad_request", "service: must be 1 to 256 characters");
        return -1;
    }
    f->service = v[2];
    return 0;
}

enum MHD_Result api_h_audit(struct api *a, struct MHD_Connection *c)
{
    heal_audit_filter f = {0};
    enum MHD_Result ret;
    char err[512] = "";
    if (audit_filter(c, &f, &ret) != 0)
        return ret;
    const char *path = a->hooks.audit_path ? a->hooks.audit_path(a->hooks.ud) : NULL;
    if (!path)
        return unavailable(c);
    json_t *arr = json_array();
    int rc = arr ? heal_audit_read(path, &f, collect_record, arr, err, sizeof err) : -ENOMEM;
    if (rc < 0 && rc != -ENOENT) { /* a log not written yet has no records */
        json_decref(arr);
        return api_send_error(c, 500, "internal", "cannot read the audit log: %s",
                              err[0] ? err : strerror(-rc));
    }
    size_t count = json_array_size(arr);
    return api_send_json(c, 200, json_pack("{sosI}", "records", arr, "count", (json_int_t)count));
}

/* ---- audit verification ------------------------------------------------------------------ */
static json_t *verify_json(const heal_audit_verify_result *r, const char *path)
{
    char status[64];
    if (r->status == HEAL_AUDIT_OK)
        return json_pack("{sbsIsIsssIss}", "ok", 1, "records", (json_int_t)r->records, "last_seq",
                         (json_int_t)r->last_seq, "last_hash", r->last_hash, "torn_recovered",
                         (json_int_t)r->torn_recovered, "path", path);
    api_status_token(heal_audit_status_name(r->status), status, sizeof status);
    return json_pack("{sbsssIsIsIsIssss}", "ok", 0, "status", status, "line", (json_int_t)r->bad_line, "seq",
                     (json_int_t)r->bad_seq, "records", (json_int_t)r->records, "last_seq",
                     (json_int_t)r->last_seq, "reason", r->why, "path", path);
}

static int verify_settled(const char *path, heal_audit_verify_result *r, char *err, size_t errlen)
{
    int rc = 0;
    for (int i = 0; i <= VERIFY_TORN_RETRIES; i++) {
        memset(r, 0, sizeof *r);
        rc = heal_audit_verify(path, r, err, errlen);
        if (rc != -EBADMSG || r->status != HEAL_AUDIT_TORN_TAIL)
            break;
        struct timespec ts = {0, VERIFY_TORN_WAIT_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    return rc;
}

enum MHD_Result api_h_audit_verify(struct api *a, struct MHD_Connection *c)
{
    enum MHD_Result ret;
    heal_audit_verify_result r;
    char err[512] = "";
    if (!api_no_params(c, &ret))
        return ret;
    const char *path = a->hooks.audit_path ? a->hooks.audit_path(a->hooks.ud) : NULL;
    if (!path)
        return unavailable(c);
    int rc = verify_settled(path, &r, err, sizeof err);
    if (rc == -ENOENT) /* the engine creates it at start: missing means removed */
        return api_send_json(c, 200, json_pack("{sbsssIsIsIsIssss}", "ok", 0, "status", "missing", "line",
                                               (json_int_t)0, "seq", (json_int_t)0, "records", (json_int_t)0,
                                               "last_seq", (json_int_t)0, "reason",
                                               "the audit log does not exist", "path", path));
    if (rc != 0 && rc != -EBADMSG)
        return api_send_error(c, 500, "internal", "cannot read the audit log: %s",
                              err[0] ? err : strerror(-rc));
    return api_send_json(c, 200, verify_json(&r, path));
}
