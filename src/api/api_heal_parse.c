/* api_heal_parse.c: pure pieces of the healing endpoints: parsing ids from
 * the path, the small JSON body of approve / reject, and mapping the
 * engine's errno answers to HTTP statuses and error codes. No MHD, no heal
 * engine, so the unit tests call them directly. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"

int api_parse_id(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || n == 0 || n > API_ID_MAX_DIGITS)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -EINVAL; /* overflow */
        v = v * 10 + d;
    }
    if (v == 0)
        return -EINVAL;
    *out = v;
    return 0;
}

static bool blank_only(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

static int check_who(const json_t *v, char *who, size_t wholen, char *err, size_t errlen)
{
    if (!json_is_string(v)) {
        snprintf(err, errlen, "body: \"who\" must be a string");
        return -EINVAL;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > API_WHO_MAX || n >= wholen) {
        snprintf(err, errlen, "body: \"who\" must be 1 to %d characters", API_WHO_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) {
            snprintf(err, errlen, "body: \"who\" must be printable ASCII");
            return -EINVAL;
        }
    memcpy(who, s, n + 1);
    return 0;
}

int api_parse_action_body(const char *body, size_t len, char *who, size_t wholen, char *err,
                          size_t errlen)
{
    json_error_t je;
    snprintf(who, wholen, "api");
    if (len > API_BODY_MAX) {
        snprintf(err, errlen, "body: longer than %d bytes", API_BODY_MAX);
        return -EINVAL;
    }
    if (!body || blank_only(body, len))
        return 0;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!o) {
        snprintf(err, errlen, "body: not JSON: %.100s (line %d, column %d)", je.text, je.line, je.column);
        return -EINVAL;
    }
    int rc = 0;
    const char *k;
    json_t *v;
    if (!json_is_object(o)) {
        snprintf(err, errlen, "body: expected a JSON object such as {\"who\":\"alice\"}");
        rc = -EINVAL;
    }
    json_object_foreach(o, k, v) {
        if (rc)
            break;
        if (strcmp(k, "who") != 0) {
            snprintf(err, errlen, "body: unknown member \"%.40s\" (only \"who\" is accepted)", k);
            rc = -EINVAL;
        } else {
            rc = check_who(v, who, wholen, err, errlen);
        }
    }
    json_decref(o);
    if (rc)
        snprintf(who, wholen, "api");
    return rc;
}

api_err_map api_heal_err_map(int rc)
{
    switch (rc) {
    case -ENOENT: return (api_err_map){404, "not_found"};
    case -ETIMEDOUT: return (api_err_map){409, "expired"};
    case -EAGAIN: return (api_err_map){409, "conflict"};
    case -EPERM: return (api_err_map){403, "forbidden"};
    case -ECANCELED: return (api_err_map){503, "unavailable"};
    case -EBUSY: return (api_err_map){503, "busy"};
    default: return (api_err_map){500, "internal"};
    }
}

void api_status_token(const char *name, char *out, size_t n)
{
    size_t i = 0;
    if (n == 0)
        return;
    for (; name && name[i] && i + 1 < n; i++)
        out[i] = name[i] == ' ' ? '_' : name[i];
    out[i] = 0;
}
