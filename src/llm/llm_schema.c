/* llm_schema.c: a small JSON-schema check of a model's answer: only the
 * keywords our schemas use (type, properties, required,
 * additionalProperties: false, enum, items, minItems/maxItems,
 * minLength/maxLength, minimum/maximum); every other keyword ($ref, anyOf,
 * pattern, format, ...) is ignored, so a schema using them is checked less,
 * never wrongly refused. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/llm_int.h"

static bool type_is(const char *t, const json_t *v)
{
    if (!strcmp(t, "object"))
        return json_is_object(v);
    if (!strcmp(t, "array"))
        return json_is_array(v);
    if (!strcmp(t, "string"))
        return json_is_string(v);
    if (!strcmp(t, "integer"))
        return json_is_integer(v);
    if (!strcmp(t, "number"))
        return json_is_number(v);
    if (!strcmp(t, "boolean"))
        return json_is_boolean(v);
    if (!strcmp(t, "null"))
        return json_is_null(v);
    return true; /* unknown type name: not ours to refuse */
}

static bool type_ok(const json_t *type, const json_t *v)
{
    if (json_is_string(type))
        return type_is(json_string_value(type), v);
    if (!json_is_array(type))
        return true;
    size_t i;
    const json_t *t;
    json_array_foreach(type, i, t)
    {
        if (json_is_string(t) && type_is(json_string_value(t), v))
            return true;
    }
    return false;
}

static int fail(char *why, size_t n, const char *path, const char *reason)
{
    snprintf(why, n, "%s: %s", *path ? path : "$", reason);
    return -EINVAL;
}

static int check(const json_t *s, const json_t *v, const char *path, char *why, size_t n);

static int check_object(const json_t *s, const json_t *v, const char *path, char *why, size_t n)
{
    const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    size_t i;
    const json_t *r;
    char sub[512], msg[300];
    json_array_foreach(req, i, r)
    {
        if (json_is_string(r) && !json_object_get(v, json_string_value(r))) {
            snprintf(msg, sizeof msg, "'%s' is required", json_string_value(r));
            return fail(why, n, path, msg);
        }
    }
    const char *k;
    const json_t *x;
    bool closed = json_is_false(json_object_get(s, "additionalProperties"));
    json_object_foreach((json_t *)v, k, x)
    {
        const json_t *ps = json_object_get(props, k);
        snprintf(sub, sizeof sub, "%s.%s", *path ? path : "$", k);
        if (!ps && closed) {
            snprintf(msg, sizeof msg, "'%s' is not an allowed property", k);
            return fail(why, n, path, msg);
        }
        if (ps) {
            int rc = check(ps, x, sub, why, n);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int check_array(const json_t *s, const json_t *v, const char *path, char *why, size_t n)
{
    const json_t *mn = json_object_get(s, "minItems"), *mx = json_object_get(s, "maxItems");
    char msg[128], sub[512];
    if (json_is_integer(mn) && (json_int_t)json_array_size(v) < json_integer_value(mn)) {
        snprintf(msg, sizeof msg, "fewer than %lld items", (long long)json_integer_value(mn));
        return fail(why, n, path, msg);
    }
    if (json_is_integer(mx) && (json_int_t)json_array_size(v) > json_integer_value(mx)) {
        snprintf(msg, sizeof msg, "more than %lld items", (long long)json_integer_value(mx));
        return fail(why, n, path, msg);
    }
    const json_t *items = json_object_get(s, "items");
    if (!json_is_object(items))
        return 0;
    size_t i;
    const json_t *x;
    json_array_foreach(v, i, x)
    {
        snprintf(sub, sizeof sub, "%s[%zu]", *path ? path : "$", i);
        int rc = check(items, x, sub, why, n);
        if (rc)
            return rc;
    }
    return 0;
}

static int check_scalar(const json_t *s, const json_t *v, const char *path, char *why, size_t n)
{
    char msg[160];
    if (json_is_number(v)) {
        const json_t *mn = json_object_get(s, "minimum"), *mx = json_object_get(s, "maximum");
        double x = json_number_value(v);
        if (json_is_number(mn) && x < json_number_value(mn)) {
            snprintf(msg, sizeof msg, "%g is below the minimum %g", x, json_number_value(mn));
            return fail(why, n, path, msg);
        }
        if (json_is_number(mx) && x > json_number_value(mx)) {
            snprintf(msg, sizeof msg, "%g is above the maximum %g", x, json_number_value(mx));
            return fail(why, n, path, msg);
        }
    }
    if (json_is_string(v)) {
        const json_t *mn = json_object_get(s, "minLength"), *mx = json_object_get(s, "maxLength");
        json_int_t len = (json_int_t)json_string_length(v);
        if (json_is_integer(mn) && len < json_integer_value(mn))
            return fail(why, n, path, "the string is too short");
        if (json_is_integer(mx) && len > json_integer_value(mx))
            return fail(why, n, path, "the string is too long");
    }
    return 0;
}

static int check(const json_t *s, const json_t *v, const char *path, char *why, size_t n)
{
    if (!json_is_object(s))
        return 0;
    const json_t *type = json_object_get(s, "type");
    if (type && !type_ok(type, v)) {
        char msg[160];
        char *t = json_dumps(type, JSON_ENCODE_ANY | JSON_COMPACT);
        snprintf(msg, sizeof msg, "not of type %s", t ? t : "?");
        free(t);
        return fail(why, n, path, msg);
    }
    const json_t *en = json_object_get(s, "enum");
    if (json_is_array(en)) {
        size_t i;
        const json_t *e;
        bool found = false;
        json_array_foreach(en, i, e) found = found || json_equal(e, v);
        if (!found)
            return fail(why, n, path, "not one of the allowed values (enum)");
    }
    if (json_is_object(v))
        return check_object(s, v, path, why, n);
    if (json_is_array(v))
        return check_array(s, v, path, why, n);
    return check_scalar(s, v, path, why, n);
}

int llm_schema_check(const json_t *schema, const json_t *v, char *why, size_t whylen)
{
    return check(schema, v, "", why, whylen);
}
