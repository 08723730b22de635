/* api_ask.c: POST /v1/ask {"question":"...", "at": TIME}: a question
 * answered from memory with citations (the brain's ask, through the daemon's
 * ask_json hook; see docs/ask.md). The body is checked here, each error
 * naming the field; the hook may block while a model thinks. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api_int.h"

#define ASK_QUESTION_MAX 1024

/* "2026-12-05T03:12[:SS][Z]" (or a space for the T): UTC with Z, else local. */
static int parse_iso(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, sec = 0, n = 0;
    char sep;
    if (sscanf(s, "%4d-%2d-%2d%c%2d:%2d%n", &y, &mo, &d, &sep, &h, &mi, &n) != 6 || (sep != 'T' && sep != ' '))
        return -EINVAL;
    const char *p = s + n;
    if (*p == ':') {
        int k = 0;
        if (sscanf(p, ":%2d%n", &sec, &k) != 1)
            return -EINVAL;
        p += k;
    }
    bool utc = false;
    if (*p == 'Z' || *p == 'z')
        utc = true, p++;
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59 || h < 0 || mi < 0 || sec < 0)
        return -EINVAL;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = sec,
                    .tm_isdst = -1};
    *ms = (int64_t)(utc ? timegm(&tm) : core_mktime(&tm)) * 1000;
    return 0;
}

int api_parse_ask_body(const char *body, size_t len, int64_t now_ms, char **question, int64_t *at_ms, char *err,
                       size_t errlen)
{
    *question = NULL;
    *at_ms = 0;
    json_error_t je;
    json_t *o = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
        snprintf(err, errlen, "the body is not a JSON object%s%s", o ? "" : ": ", o ? "" : je.text);
        json_decref(o);
        return -EINVAL;
    }
    const char *k;
    json_t *v;
    int rc = 0;
    json_object_foreach(o, k, v) {
        if (strcmp(k, "question") && strcmp(k, "at")) {
            snprintf(err, errlen, "unknown member '%.64s' (expected \"question\" and optionally \"at\")", k);
            rc = -EINVAL;
            break;
        }
    }
    const json_t *q = json_object_get(o, "question");
    size_t ql = json_string_length(q);
    if (!rc && !json_is_string(q)) {
        snprintf(err, errlen, "\"question\" must be a string (the question, 1 to %d bytes)", ASK_QUESTION_MAX);
        rc = -EINVAL;
    } else if (!rc && (ql == 0 || ql > ASK_QUESTION_MAX || strspn(json_string_value(q), " \t\r\n") == ql)) {
        snprintf(err, errlen, "\"question\" must hold 1 to %d bytes of text (it has %zu%s)", ASK_QUESTION_MAX, ql,
                 ql ? ", all blank" : "");
        rc = -EINVAL;
    } else if (!rc && strlen(json_string_value(q)) != ql) {
        snprintf(err, errlen, "\"question\" holds a NUL byte");
        rc = -EINVAL;
    }
    const json_t *at = json_object_get(o, "at");
    if (!rc && at && !json_is_null(at)) {
        if (json_is_number(at)) {
            double s = json_number_value(at);
            if (!isfinite(s) || s <= 0 || s > 1e11) {
                snprintf(err, errlen, "\"at\" must be a time: epoch seconds, \"now-2h\" or ISO 8601");
                rc = -EINVAL;
            } else
                *at_ms = (int64_t)(s * 1000);
        } else if (!json_is_string(at) || (core_parse_time(json_string_value(at), now_ms, at_ms) &&
                                           parse_iso(json_string_value(at), at_ms))) {
            snprintf(err, errlen, "\"at\": '%.64s' is not a time (epoch seconds, \"now-2h\", \"2h\" or ISO 8601 "
                     "like 2026-12-05T03:12:00Z)", json_is_string(at) ? json_string_value(at) : "(not a string)");
            rc = -EINVAL;
        }
    }
    if (!rc && !(*question = strdup(json_string_value(q)))) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
    }
    json_decref(o);
    return rc;
}

enum MHD_Result api_h_ask(struct api *a, struct MHD_Connection *c, const char *body, size_t len)
{
    enum MHD_Result ret;
    char *question = NULL, err[512] = "";
    int64_t at = 0;
    if (!api_no_params(c, &ret))
        return ret;
    int rc = api_parse_ask_body(body, len, core_now_ms(), &question, &at, err, sizeof err);
    if (rc == -ENOMEM)
        return api_send_error(c, 503, "busy", "%s", err);
    if (rc)
        return api_send_error(c, 400, "bad_request", "%s", err);
    if (!a->hooks.ask_json) {
        free(question);
        return api_send_error(c, 503, "unavailable", "the brain is not running");
    }
    int status = 0;
    char *s = a->hooks.ask_json(a->hooks.ud, question, at, &status, err, sizeof err);
    free(question);
    if (!s)
        return api_send_error(c, status == 400 ? 400 : 503, status == 400 ? "bad_request" : "unavailable", "%s",
                              err[0] ? err : "no answer");
    return api_send_buf(c, 200, s, strlen(s), "application/json");
}
