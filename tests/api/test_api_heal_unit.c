/* test_api_heal_unit.c: unit tests of the pure pieces behind the healing
 * endpoints: the route table (every path, id segments, near misses, which
 * routes are POST), id parsing (limits, overflow, signs, blanks), the
 * approve/reject body (empty, who, bad JSON, wrong types, unknown members,
 * limits), the errno -> HTTP mapping and status tokens. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/api_int.h"

static void expect_route(const char *url, api_route_id id, const char *arg)
{
    api_route r = api_route_match(url);
    if (r.id != id)
        fail_msg("%s: route %d, expected %d", url, (int)r.id, (int)id);
    if (arg) {
        assert_non_null(r.arg);
        if (r.arglen != strlen(arg) || strncmp(r.arg, arg, r.arglen) != 0)
            fail_msg("%s: arg '%.*s', expected '%s'", url, (int)r.arglen, r.arg, arg);
    }
}

static void t_routes(void **state)
{
    (void)state;
    expect_route("/v1/status", R_STATUS, NULL);
    expect_route("/v1/metrics", R_METRICS, NULL);
    expect_route("/v1/metrics/cpu.usage_percent", R_METRIC, "cpu.usage_percent");
    expect_route("/v1/events/stream", R_STREAM, NULL);
    expect_route("/metrics", R_PROM, NULL);
    expect_route("/v1/services", R_SERVICES, NULL);
    expect_route("/v1/incidents", R_INCIDENTS, NULL);
    expect_route("/v1/incidents/42", R_INCIDENT, "42");
    expect_route("/v1/incidents/abc", R_INCIDENT, "abc"); /* 400 later, not 404 */
    expect_route("/v1/pending", R_PENDING, NULL);
    expect_route("/v1/pending/7/approve", R_APPROVE, "7");
    expect_route("/v1/pending/7/reject", R_REJECT, "7");
    expect_route("/v1/pending/x9/reject", R_REJECT, "x9");
    expect_route("/v1/audit", R_AUDIT, NULL);
    expect_route("/v1/audit/verify", R_AUDIT_VERIFY, NULL);
    expect_route("/v1/actions", R_ACTIONS, NULL);
    expect_route("/v1/mesh/status", R_MESH_STATUS, NULL); /* the mesh (api_mesh.c) */
    expect_route("/v1/mesh/peers", R_MESH_PEERS, NULL);
    expect_route("/v1/mesh/wisdom", R_MESH_WISDOM, NULL);
    expect_route("/", R_WEB, NULL); /* the dashboard: no token */
    expect_route("/index.html", R_WEB, NULL);
    expect_route("/assets/app.js", R_WEB, "/assets/app.js");
    /* near misses */
    static const char *const none[] = {
        "/v1/service", "/v1/services/", "/v1/incidents/", "/v1/incidents/1/", "/v1/incidents/1/x",
        "/v1/pending/", "/v1/pending/7", "/v1/pending/7/", "/v1/pending/7/approve/",
        "/v1/pending//approve", "/v1/pending/7/approvex", "/v1/pending/7/8/approve",
        "/v1/audit/", "/v1/audit/verify/", "/v1/audit/x", "/v1/metrics/", "", "/assets/", "/v1/actions/",
        "/v1/mesh", "/v1/mesh/", "/v1/mesh/status/", "/v1/mesh/peer",
    };
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
        expect_route(none[i], R_NONE, NULL);
}

static void t_route_methods(void **state)
{
    (void)state;
    for (int id = R_NONE; id <= R_AUDIT_VERIFY; id++) {
        bool post = id == R_APPROVE || id == R_REJECT;
        assert_int_equal(api_route_is_post((api_route_id)id), post);
        assert_string_equal(api_route_allow((api_route_id)id), post ? "POST" : "GET, HEAD");
    }
}

/* The brain's routes (api_brain.c). */
static void t_brain_routes(void **state)
{
    (void)state;
    expect_route("/v1/incidents/12/diagnosis", R_DIAGNOSIS, "12");
    expect_route("/v1/incidents/x/diagnosis", R_DIAGNOSIS, "x"); /* 400 later */
    expect_route("/v1/brain", R_BRAIN, NULL);
    expect_route("/v1/diagnose", R_DIAGNOSE, NULL);
    static const char *const none[] = {"/v1/incidents//diagnosis", "/v1/incidents/1/diagnosis/",
                                       "/v1/incidents/1/diagnosisx", "/v1/brain/", "/v1/diagnose/x"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
        expect_route(none[i], R_NONE, NULL);
    assert_true(api_route_is_post(R_DIAGNOSE));
    assert_false(api_route_is_post(R_DIAGNOSIS));
    assert_false(api_route_is_post(R_BRAIN));
}

/* ask's route (api_ask.c): POST only. */
static void t_ask_route(void **state)
{
    (void)state;
    expect_route("/v1/ask", R_ASK, NULL);
    expect_route("/v1/ask/", R_NONE, NULL);
    expect_route("/v1/asks", R_NONE, NULL);
    assert_true(api_route_is_post(R_ASK));
    assert_string_equal(api_route_allow(R_ASK), "POST");
}

/* The preferences' routes (api_prefs.c). */
static void t_prefs_routes(void **state)
{
    (void)state;
    expect_route("/v1/prefs", R_PREFS, NULL);
    expect_route("/v1/prefs/12/forget", R_PREF_FORGET, "12");
    expect_route("/v1/prefs/untouchable:web/forget", R_PREF_FORGET, "untouchable:web");
    static const char *const none[] = {"/v1/prefs/", "/v1/prefs/12", "/v1/prefs//forget", "/v1/prefs/1/forgetx",
                                       "/v1/prefs/1/forget/"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
        expect_route(none[i], R_NONE, NULL);
    assert_true(api_route_is_post(R_PREF_FORGET));
    assert_false(api_route_is_post(R_PREFS));
}

/* Evolution (api_evolve.c): everything under the three prefixes, GET and POST. */
static void t_evolve_routes(void **state)
{
    (void)state;
    static const char *const all[] = {"/v1/genome", "/v1/genome/diff", "/v1/genome/rollback", "/v1/evolve",
                                      "/v1/evolve/runs/3/stop", "/v1/evolve/watch", "/v1/tools", "/v1/tools/x/run"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        expect_route(all[i], R_EVOLVE, all[i]);
    static const char *const none[] = {"/v1/genomes", "/v1/evolver", "/v1/tool", "/v1/genome/"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
        expect_route(none[i], R_NONE, NULL);
    assert_false(api_route_is_post(R_EVOLVE));
    assert_true(api_route_takes_body(R_EVOLVE, "POST"));
    assert_false(api_route_takes_body(R_EVOLVE, "GET"));
    assert_true(api_route_takes_body(R_ASK, "POST"));
    assert_string_equal(api_route_allow(R_EVOLVE), "GET, HEAD, POST");
}

static int id_of(const char *s, uint64_t *v)
{
    return api_parse_id(s, strlen(s), v);
}

static void t_ids(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(id_of("1", &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(id_of("0042", &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(id_of("18446744073709551615", &v), 0);
    assert_true(v == UINT64_MAX);
    static const char *const bad[] = {
        "", "0", "00", "-1", "+1", " 1", "1 ", "1a", "0x10", "1.0", "1e3",
        "18446744073709551616",  /* UINT64_MAX + 1 */
        "99999999999999999999",  /* 20 digits, overflows */
        "000000000000000000001", /* 21 digits */
        "\xc2\xb9",              /* superscript one */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 77;
        if (id_of(bad[i], &v) != -EINVAL)
            fail_msg("id '%s' accepted", bad[i]);
        assert_int_equal(v, 77); /* untouched */
    }
    assert_int_equal(api_parse_id("123", 2, &v), 0); /* only n bytes count */
    assert_int_equal(v, 12);
    assert_int_equal(api_parse_id(NULL, 0, &v), -EINVAL);
}

static int body(const char *s, char *who, char *err)
{
    return api_parse_action_body(s, s ? strlen(s) : 0, who, API_WHO_MAX + 1, err, 256);
}

static void t_bodies(void **state)
{
    (void)state;
    char who[API_WHO_MAX + 1], err[256];
    assert_int_equal(body(NULL, who, err), 0);
    assert_string_equal(who, "api");
    assert_int_equal(body("", who, err), 0);
    assert_string_equal(who, "api");
    assert_int_equal(body(" \r\n\t", who, err), 0);
    assert_string_equal(who, "api");
    assert_int_equal(body("{}", who, err), 0);
    assert_string_equal(who, "api");
    assert_int_equal(body("{\"who\":\"cli:alice\"}", who, err), 0);
    assert_string_equal(who, "cli:alice");
    assert_int_equal(body(" { \"who\" : \"bob the admin\" } \n", who, err), 0);
    assert_string_equal(who, "bob the admin");
    char max[API_WHO_MAX + 16];
    snprintf(max, sizeof max, "{\"who\":\"%0*d\"}", API_WHO_MAX, 0);
    assert_int_equal(body(max, who, err), 0);
    assert_int_equal(strlen(who), API_WHO_MAX);

    static const struct {
        const char *body, *why;
    } bad[] = {
        {"{", "not JSON"},
        {"who=alice", "not JSON"},
        {"[\"alice\"]", "expected a JSON object"},
        {"\"alice\"", "expected a JSON object"},
        {"null", "expected a JSON object"},
        {"{\"who\":7}", "must be a string"},
        {"{\"who\":null}", "must be a string"},
        {"{\"who\":\"\"}", "1 to 64"},
        {"{\"who\":\"a\\nb\"}", "printable ASCII"},
        {"{\"who\":\"caf\\u00e9\"}", "printable ASCII"},
        {"{\"who\":\"a\\u0000b\"}", "not JSON"}, /* jansson refuses NUL by default */
        {"{\"who\":\"a\",\"force\":true}", "unknown member \"force\""},
        {"{\"who\":\"a\",\"who\":\"b\"}", "not JSON"}, /* duplicate */
        {"{} {}", "not JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        if (body(bad[i].body, who, err) != -EINVAL)
            fail_msg("body %s accepted", bad[i].body);
        if (!strstr(err, bad[i].why))
            fail_msg("body %s: error '%s' lacks '%s'", bad[i].body, err, bad[i].why);
        assert_string_equal(who, "api");
    }
    snprintf(max, sizeof max, "{\"who\":\"%0*d\"}", API_WHO_MAX + 1, 0);
    assert_int_equal(body(max, who, err), -EINVAL);
    assert_non_null(strstr(err, "1 to 64"));
    char *big = malloc(API_BODY_MAX + 2);
    memset(big, ' ', API_BODY_MAX + 1);
    big[API_BODY_MAX + 1] = 0;
    assert_int_equal(body(big, who, err), -EINVAL);
    assert_non_null(strstr(err, "longer than"));
    free(big);
}

static void t_err_map(void **state)
{
    (void)state;
    static const struct {
        int rc;
        unsigned status;
        const char *code;
    } m[] = {
        {-ENOENT, 404, "not_found"}, {-ETIMEDOUT, 409, "expired"}, {-EAGAIN, 409, "conflict"},
        {-EPERM, 403, "forbidden"},  {-ECANCELED, 503, "unavailable"}, {-EBUSY, 503, "busy"},
        {-EIO, 500, "internal"},     {-ENOMEM, 500, "internal"},   {-1234, 500, "internal"},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        api_err_map e = api_heal_err_map(m[i].rc);
        assert_int_equal(e.status, m[i].status);
        assert_string_equal(e.code, m[i].code);
    }
}

static void t_status_token(void **state)
{
    (void)state;
    char b[32];
    api_status_token("hash mismatch", b, sizeof b);
    assert_string_equal(b, "hash_mismatch");
    api_status_token("ok", b, sizeof b);
    assert_string_equal(b, "ok");
    api_status_token("torn tail", b, 5);
    assert_string_equal(b, "torn");
    api_status_token(NULL, b, sizeof b);
    assert_string_equal(b, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_routes), cmocka_unit_test(t_route_methods), cmocka_unit_test(t_ids),
        cmocka_unit_test(t_brain_routes),
        cmocka_unit_test(t_ask_route),
        cmocka_unit_test(t_prefs_routes),
        cmocka_unit_test(t_evolve_routes),
        cmocka_unit_test(t_bodies), cmocka_unit_test(t_err_map),       cmocka_unit_test(t_status_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
