/* mcp_schema.c: checks an MCP tool's arguments against the tool's JSON
 * Schema, in C, before anything reaches the daemon. Only the subset the
 * tools' schemas use (see mcp_int.h); a schema keyword outside it is
 * ignored, so the schemas must keep to it (tests/integration/test_mcp.py
 * calls every tool with bad arguments). */
#include "cli/mcp_int.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fail(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static const char *type_of(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* An integer value, a real with no fraction included (JSON Schema's integer). */
static bool integral(const json_t *v)
{
    if (json_is_integer(v))
        return true;
    double d = json_real_value(v);
    return json_is_real(v) && isfinite(d) && d == floor(d) && fabs(d) < 9007199254740992.0;
}

static bool is_type(const json_t *v, const char *t)
{
    if (!strcmp(t, "object")) return json_is_object(v);
    if (!strcmp(t, "array")) return json_is_array(v);
    if (!strcmp(t, "string")) return json_is_string(v);
    if (!strcmp(t, "integer")) return integral(v);
    if (!strcmp(t, "number")) return json_is_number(v);
    if (!strcmp(t, "boolean")) return json_is_boolean(v);
    if (!strcmp(t, "null")) return json_is_null(v);
    return false;
}

static int check_type(const json_t *schema, const json_t *v, const char *where, char *err, size_t n)
{
    const json_t *t = json_object_get(schema, "type");
    char want[128] = "";
    size_t i;
    json_t *e;
    if (json_is_string(t)) {
        if (is_type(v, json_string_value(t)))
            return 0;
        return fail(err, n, "%s: is %s, not %s %s", where, type_of(v),
                    strchr("aeiou", json_string_value(t)[0]) ? "an" : "a", json_string_value(t));
    }
    if (!json_is_array(t))
        return 0;
    json_array_foreach(t, i, e) {
        if (is_type(v, json_string_value(e)))
            return 0;
        size_t len = strlen(want);
        snprintf(want + len, sizeof want - len, "%s%s", i ? " or " : "", json_string_value(e));
    }
    return fail(err, n, "%s: is %s, not %s", where, type_of(v), want);
}

static size_t code_points(const char *s)
{
    size_t k = 0;
    for (; *s; s++)
        k += ((unsigned char)*s & 0xC0) != 0x80;
    return k;
}

static int check_string(const json_t *schema, const json_t *v, const char *where, char *err, size_t n)
{
    const json_t *lo = json_object_get(schema, "minLength"), *hi = json_object_get(schema, "maxLength");
    size_t len = code_points(json_string_value(v));
    if (json_is_integer(lo) && (json_int_t)len < json_integer_value(lo))
        return fail(err, n, "%s: %s (at least %" JSON_INTEGER_FORMAT " characters)", where,
                    len ? "too short" : "is empty", json_integer_value(lo));
    if (json_is_integer(hi) && (json_int_t)len > json_integer_value(hi))
        return fail(err, n, "%s: too long (%zu characters, at most %" JSON_INTEGER_FORMAT ")", where, len,
                    json_integer_value(hi));
    return 0;
}

static int check_number(const json_t *schema, const json_t *v, const char *where, char *err, size_t n)
{
    const json_t *lo = json_object_get(schema, "minimum"), *hi = json_object_get(schema, "maximum");
    double d = json_number_value(v);
    if (json_is_number(lo) && d < json_number_value(lo))
        return fail(err, n, "%s: %g is below the minimum %g", where, d, json_number_value(lo));
    if (json_is_number(hi) && d > json_number_value(hi))
        return fail(err, n, "%s: %g is above the maximum %g", where, d, json_number_value(hi));
    return 0;
}

static int check_enum(const json_t *schema, const json_t *v, const char *where, char *err, size_t n)
{
    const json_t *en = json_object_get(schema, "enum");
    char list[256] = "";
    size_t i;
    json_t *e;
    if (!json_is_array(en))
        return 0;
    json_array_foreach(en, i, e) {
        if (json_equal(e, (json_t *)v))
            return 0;
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", json_is_string(e) ? json_string_value(e) : "?");
    }
    if (json_is_string(v))
        return fail(err, n, "%s: '%.64s' is not one of %s", where, json_string_value(v), list);
    return fail(err, n, "%s: not one of %s", where, list);
}

static int check_object(const json_t *schema, const json_t *v, const char *where, char *err, size_t n)
{
    const json_t *props = json_object_get(schema, "properties");
    const json_t *req = json_object_get(schema, "required");
    const json_t *extra = json_object_get(schema, "additionalProperties");
    char sub[256];
    const char *key;
    json_t *val, *r;
    size_t i;
    json_array_foreach(req, i, r) {
        if (json_is_string(r) && !json_object_get(v, json_string_value(r)))
            return fail(err, n, "%s: missing required '%s'", where, json_string_value(r));
    }
    json_object_foreach((json_t *)v, key, val) {
        const json_t *ps = json_object_get(props, key);
        if (!ps) {
            if (json_is_false(extra))
                return fail(err, n, "%s: unknown key '%.64s'", where, key);
            continue;
        }
        snprintf(sub, sizeof sub, "%s.%.64s", where, key);
        int rc = mcp_schema_check(ps, val, sub, err, n);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int mcp_schema_check(const json_t *schema, const json_t *v, const char *where, char *err, size_t n)
{
    int rc = check_type(schema, v, where, err, n);
    if (rc == 0)
        rc = check_enum(schema, v, where, err, n);
    if (rc == 0 && json_is_string(v))
        rc = check_string(schema, v, where, err, n);
    if (rc == 0 && json_is_number(v))
        rc = check_number(schema, v, where, err, n);
    if (rc == 0 && json_is_object(v))
        rc = check_object(schema, v, where, err, n);
    return rc;
}
