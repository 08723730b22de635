/* api_actions_parse.c: the strict check of POST /v1/actions' body, a typed
 * action proposed from outside: {"service", "action", "reason", "who"?}.
 * Pure (no MHD, no heal engine), so the unit tests call it directly; every
 * error names the member and says what was wrong with it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"

/* NAME: printable ASCII, no blank (a service); ASCII: printable ASCII (who,
 * as approve's); TEXT: any UTF-8 text without a control byte. */
enum text_kind { T_NAME, T_ASCII, T_TEXT };

static const char *const members[] = {"service", "action", "reason", "who", NULL};

static bool known_member(const char *k)
{
    for (int i = 0; members[i]; i++)
        if (!strcmp(k, members[i]))
            return true;
    return false;
}

/* The reason a byte is not allowed in a text of this kind, or NULL. */
static const char *bad_byte(unsigned char c, enum text_kind kind)
{
    if (c < 0x20 || c == 0x7f)
        return "a control character";
    if (kind == T_NAME && c == ' ')
        return "a blank";
    if (kind != T_TEXT && c > 0x7e)
        return "a byte that is not printable ASCII";
    return NULL;
}

/* Member name of o into out (at most max bytes). required: missing is an error. */
static int take_text(const json_t *o, const char *name, size_t max, enum text_kind kind, bool required, char *out,
                     char *err, size_t errlen)
{
    const json_t *v = json_object_get(o, name);
    if (!v) {
        if (!required)
            return 0;
        snprintf(err, errlen, "body: \"%s\" is missing (expected {\"service\":NAME, \"action\":TEXT, "
                              "\"reason\":TEXT} and optionally \"who\")", name);
        return -EINVAL;
    }
    if (!json_is_string(v)) {
        snprintf(err, errlen, "body: \"%s\" must be a string of 1 to %zu bytes", name, max);
        return -EINVAL;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || strspn(s, " \t") == n) {
        snprintf(err, errlen, "body: \"%s\" is empty%s", name, n ? " (only blanks)" : "");
        return -EINVAL;
    }
    if (n > max) {
        snprintf(err, errlen, "body: \"%s\" is %zu bytes long (at most %zu)", name, n, max);
        return -EINVAL;
    }
    if (strlen(s) != n) {
        snprintf(err, errlen, "body: \"%s\" holds a NUL byte", name);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *why = bad_byte((unsigned char)s[i], kind);
        if (why) {
            snprintf(err, errlen, "body: \"%s\" holds %s at byte %zu", name, why, i + 1);
            return -EINVAL;
        }
    }
    memcpy(out, s, n + 1);
    return 0;
}

static int check_members(const json_t *o, char *err, size_t errlen)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        (void)v;
        if (!known_member(k)) {
            snprintf(err, errlen, "body: unknown member \"%.40s\" (expected \"service\", \"action\", \"reason\" "
                                  "and optionally \"who\")", k);
            return -EINVAL;
        }
    }
    return 0;
}

int api_parse_propose_body(const char *body, size_t len, api_proposal *out, char *err, size_t errlen)
{
    json_error_t je;
    memset(out, 0, sizeof *out);
    if (len > API_BODY_MAX) {
        snprintf(err, errlen, "body: longer than %d bytes", API_BODY_MAX);
        return -EINVAL;
    }
    /* NUL in a string is let through to be refused naming its member */
    json_t *o = json_loadb(body ? body : "", body ? len : 0,
                           JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!o) {
        snprintf(err, errlen, "body: not JSON: %.100s (line %d, column %d)", je.text, je.line, je.column);
        return -EINVAL;
    }
    int rc = 0;
    if (!json_is_object(o)) {
        snprintf(err, errlen, "body: expected a JSON object such as {\"service\":\"web\", \"action\":\"restart\", "
                              "\"reason\":\"...\"}");
        rc = -EINVAL;
    }
    if (!rc)
        rc = check_members(o, err, errlen);
    if (!rc)
        rc = take_text(o, "service", API_PROPOSE_SERVICE_MAX, T_NAME, true, out->service, err, errlen);
    if (!rc)
        rc = take_text(o, "action", API_PROPOSE_ACTION_MAX, T_TEXT, true, out->action, err, errlen);
    if (!rc)
        rc = take_text(o, "reason", API_PROPOSE_REASON_MAX, T_TEXT, true, out->reason, err, errlen);
    if (!rc)
        rc = take_text(o, "who", API_WHO_MAX, T_ASCII, false, out->who, err, errlen);
    if (!rc && !out->who[0])
        snprintf(out->who, sizeof out->who, "api");
    json_decref(o);
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}
