/* test_mcp_schema.c: unit tests of the JSON Schema subset `ippoc mcp`
 * checks tool arguments with (src/cli/mcp_schema.c): types (one or a list),
 * required and unknown keys, enums, integer and string ranges, nesting,
 * and that each failure names the place and the reason; and that every
 * tool `ippoc mcp` lists has a schema of that subset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/mcp_int.h"

#include <errno.h>
#include <string.h>

static const char *schema_text =
    "{\"type\":\"object\",\"properties\":{"
    "\"id\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100},"
    "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":4},"
    "\"when\":{\"type\":[\"string\",\"integer\"]},"
    "\"mode\":{\"type\":\"string\",\"enum\":[\"a\",\"b\"]},"
    "\"sub\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"boolean\"}},\"additionalProperties\":false}},"
    "\"required\":[\"id\"],\"additionalProperties\":false}";

/* Checks text against the schema: 0, or -EINVAL with err containing want. */
static void check(const char *text, const char *want)
{
    char err[256] = "";
    json_t *schema = json_loads(schema_text, 0, NULL);
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(schema);
    assert_non_null(v);
    int rc = mcp_schema_check(schema, v, "arguments", err, sizeof err);
    if (!want) {
        assert_int_equal(rc, 0);
    } else {
        assert_int_equal(rc, -EINVAL);
        if (!strstr(err, want))
            fail_msg("'%s': got '%s', wanted '%s'", text, err, want);
    }
    json_decref(schema);
    json_decref(v);
}

static void test_good(void **state)
{
    (void)state;
    check("{\"id\":1}", NULL);
    check("{\"id\":100,\"name\":\"abcd\",\"when\":\"now\",\"mode\":\"b\",\"sub\":{\"x\":true}}", NULL);
    check("{\"id\":5.0,\"when\":1700000000}", NULL); /* 5.0 is an integer in JSON Schema */
    check("{\"id\":2,\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}", NULL); /* 4 code points, 8 bytes */
}

static void test_bad(void **state)
{
    (void)state;
    check("[]", "arguments: is an array, not an object");
    check("{}", "arguments: missing required 'id'");
    check("{\"id\":1,\"rm\":1}", "arguments: unknown key 'rm'");
    check("{\"id\":\"1\"}", "arguments.id: is a string, not an integer");
    check("{\"id\":1.5}", "arguments.id: is a number, not an integer");
    check("{\"id\":0}", "arguments.id: 0 is below the minimum 1");
    check("{\"id\":101}", "arguments.id: 101 is above the maximum 100");
    check("{\"id\":1,\"name\":\"\"}", "arguments.name: is empty");
    check("{\"id\":1,\"name\":\"abcde\"}", "arguments.name: too long (5 characters, at most 4)");
    check("{\"id\":1,\"when\":true}", "arguments.when: is a boolean, not string or integer");
    check("{\"id\":1,\"mode\":\"c\"}", "arguments.mode: 'c' is not one of a, b");
    check("{\"id\":1,\"sub\":{\"x\":1}}", "arguments.sub.x: is an integer, not a boolean");
    check("{\"id\":1,\"sub\":{\"y\":1}}", "arguments.sub: unknown key 'y'");
    check("{\"id\":null}", "arguments.id: is null, not an integer");
}

/* Every listed tool: an object schema of the subset, annotations, and the
 * read-only list without the two acting tools. */
static void test_tool_table(void **state)
{
    (void)state;
    json_t *all = mcp_tools_list(false), *ro = mcp_tools_list(true), *t;
    size_t i;
    assert_int_equal(json_array_size(all), 8);
    assert_int_equal(json_array_size(ro), 6);
    json_array_foreach(all, i, t) {
        const json_t *s = json_object_get(t, "inputSchema");
        assert_string_equal(json_string_value(json_object_get(s, "type")), "object");
        assert_true(json_is_object(json_object_get(s, "properties")));
        assert_true(json_is_array(json_object_get(s, "required")));
        assert_true(json_is_false(json_object_get(s, "additionalProperties")));
        assert_true(json_is_boolean(json_object_get(json_object_get(t, "annotations"), "readOnlyHint")));
        char err[256];
        json_t *empty = json_object();
        int rc = mcp_schema_check(s, empty, "arguments", err, sizeof err);
        /* no arguments: fine exactly when nothing is required */
        assert_int_equal(rc == 0, json_array_size(json_object_get(s, "required")) == 0);
        json_decref(empty);
    }
    json_array_foreach(ro, i, t) {
        const char *name = json_string_value(json_object_get(t, "name"));
        assert_true(strncmp(name, "action_", 7) != 0 || !strcmp(name, "actions_pending"));
    }
    json_decref(all);
    json_decref(ro);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_tool_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
