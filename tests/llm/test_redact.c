/* test_redact.c: the redaction rules (redact.c): every kind of secret and
 * personal data is replaced by its placeholder, ordinary text is left
 * alone, and the configured switches and host names are honoured. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llm/llm.h"
#include "llm/llm_int.h"

static void gone(const char *in, const char *secret, const char *placeholder)
{
    int n = -1;
    char *out = llm_redact(NULL, in, &n);
    assert_non_null(out);
    if (strstr(out, secret) || !strstr(out, placeholder))
        fail_msg("redacting '%s': got '%s' (want no '%s', a '%s')", in, out, secret, placeholder);
    assert_true(n >= 1);
    free(out);
}

static void test_keys(void **state)
{
    (void)state;
    gone("key sk-proj-AbCdEfGhIjKlMnOpQrStUvWx123 here", "AbCdEfGhIjKlMnOp", "<secret>");
    gone("aws AKIAIOSFODNN7EXAMPLE.", "AKIAIOSFODNN7EXAMPLE", "<secret>");
    gone("gh token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdef", "<secret>");
    gone("slack xoxb-1234567890-abcdefghij", "xoxb-1234567890", "<secret>");
    gone("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U x",
         "eyJhbGciOiJIUzI1NiJ9", "<secret>");
}

static void test_headers_and_assignments(void **state)
{
    (void)state;
    gone("Authorization: Bearer abcdef0123456789xyz", "abcdef0123456789xyz", "Bearer <secret>");
    gone("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA", "<secret>");
    gone("db password=hunter22 user=bob", "hunter22", "password=<secret>");
    gone("{\"secret\": \"s3cr3t-value\"}", "s3cr3t-value", "<secret>");
    gone("api_key: 12345abcdef", "12345abcdef", "<secret>");
    gone("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", "wJalrXUtnFEMI", "<secret>");
    gone("token='quoted value'", "quoted value", "<secret>");
}

static void test_pem(void **state)
{
    (void)state;
    gone("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----\nrest",
         "MIIEowIBAAKCAQEA", "<private-key>");
    gone("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg truncated", "MIIEvQIBADANBg", "<private-key>");
}

static void test_personal(void **state)
{
    (void)state;
    gone("mail ops.team+alerts@example.co.uk now", "example.co.uk", "<email>");
    gone("from 10.1.2.3:8080 and", "10.1.2.3", "<ip>");
    gone("peer fe80::1ff:fe23:4567:890a%eth0", "fe80::1ff", "<ip>");
    gone("bind [2001:db8::8a2e:370:7334]:443", "2001:db8", "<ip>");
    gone("lo ::1 up", "::1", "<ip>");
}

static void test_left_alone(void **state)
{
    (void)state;
    const char *plain = "nginx restarted at 03:12:45 after 2 OOM kills; std::string tokens are fine, "
                        "version 1.2.3, a basic setup, mean 0.5";
    int n = -1;
    char *out = llm_redact(NULL, plain, &n);
    assert_string_equal(out, plain);
    assert_int_equal(n, 0);
    free(out);
}

static void test_switches_and_hosts(void **state)
{
    (void)state;
    llm_redactor *r;
    char err[128];
    assert_int_equal(llm_redactor_new("db1.internal, Web-01", false, false, &r, err, sizeof err), 0);
    int n = 0;
    char *out = llm_redact_with(r, "a@b.example 10.0.0.1 DB1.internal web-01:80 web-010 password=x", &n);
    assert_non_null(strstr(out, "a@b.example"));
    assert_non_null(strstr(out, "10.0.0.1"));
    assert_non_null(strstr(out, "<host> <host>:80 web-010"));
    assert_non_null(strstr(out, "password=<secret>"));
    assert_int_equal(n, 3);
    free(out);
    llm_redactor_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),     cmocka_unit_test(test_headers_and_assignments),
        cmocka_unit_test(test_pem),      cmocka_unit_test(test_personal),
        cmocka_unit_test(test_left_alone), cmocka_unit_test(test_switches_and_hosts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
