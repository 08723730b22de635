/* api_actions.c: POST /v1/actions, a typed action proposed from outside (an
 * assistant through `ippoc mcp`, `ippoc propose`, the dashboard): the body
 * is checked here (api_parse_propose_body, each error naming the member),
 * then handed to the propose hook, which sends it through heal's policy and
 * queues whatever would run for a person's approval: a proposal never runs
 * by itself. 202 when something was queued, 201 for an incident opened with
 * nothing queued (the policy only recorded it); the hook's errors with its
 * status (400 bad action, 403 refused, 404 unknown service, 503). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

static const char *code_of(int status)
{
    switch (status) {
    case 400: return "bad_request";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 409: return "conflict";
    case 503: return "unavailable";
    default: return "internal";
    }
}

/* 202 (queued for approval) or 201 (an incident opened, nothing queued),
 * from the hook's answer; 500 when it is no JSON object. */
static unsigned answer_status(const char *text)
{
    json_t *o = json_loads(text, 0, NULL);
    const char *verdict = json_string_value(json_object_get(o, "verdict"));
    unsigned st = !json_is_object(o) ? 500 : verdict && !strcmp(verdict, "queue") ? 202 : 201;
    json_decref(o);
    return st;
}

enum MHD_Result api_h_actions(struct api *a, struct MHD_Connection *c, const char *body, size_t len)
{
    enum MHD_Result ret;
    api_proposal p;
    char err[512] = "";
    if (!api_no_params(c, &ret))
        return ret;
    if (api_parse_propose_body(body, len, &p, err, sizeof err) != 0)
        return api_send_error(c, 400, "bad_request", "%s", err);
    if (!a->hooks.propose)
        return api_send_error(c, 503, "unavailable", "healing is not running");
    int status = 0;
    err[0] = 0;
    char *s = a->hooks.propose(a->hooks.ud, p.service, p.action, p.who, p.reason, &status, err, sizeof err);
    if (!s) {
        if (status < 400 || status > 599)
            status = 500;
        return api_send_error(c, (unsigned)status, code_of(status), "%s", err[0] ? err : "the proposal failed");
    }
    unsigned st = answer_status(s);
    if (st == 500) {
        free(s);
        return api_send_error(c, 500, "internal", "the proposal's answer is not JSON");
    }
    log_info("api: %s proposes '%s' for %s", p.who, p.action, p.service);
    return api_send_buf(c, st, s, strlen(s), "application/json");
}
