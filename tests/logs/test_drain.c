/* test_drain.c: unit tests of the template miner (src/logs/drain.c,
 * mask.c, logformat.c): masks, tokenising of odd input, the online
 * behaviour (new-template flag, stable ids, the template cap), the line
 * level, the header format splitter and bad regexes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logs/logs.h"

static logs_miner *miner(const logs_miner_opts *o)
{
    logs_miner *m = NULL;
    char err[256];
    assert_int_equal(logs_miner_new(o, &m, err, sizeof err), 0);
    assert_non_null(m);
    return m;
}

static int add(logs_miner *m, const char *s, bool *is_new)
{
    int id = logs_miner_add(m, s, strlen(s), is_new);
    assert_true(id >= 0);
    return id;
}

/* Lines differing only in a variable of each kind share one template. */
static void test_mask_kinds(void **state)
{
    (void)state;
    static const char *const pairs[][2] = {
        {"took 15 ms", "took 230 ms"},
        {"size 1.5KB done", "size 12MB done"},
        {"at 0x7fff1234 fault", "at 0xdeadbeef fault"},
        {"peer 10.0.0.1:8080 up", "peer 192.168.1.20:443 up"},
        {"open /var/log/syslog now", "open /etc/passwd now"},
        {"req 123e4567-e89b-12d3-a456-426614174000 ok", "req 00000000-0000-0000-0000-000000000000 ok"},
        {"fetch https://example.com/a?b=1 ok", "fetch http://x.org/ ok"},
        {"uid=1000 login", "uid=0 login"},
        {"block blk_-1608999687919862906 done", "block blk_38865049064139660 done"},
        {"wait (1.16 s)", "wait (22 s)"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        logs_miner *m = miner(NULL);
        bool n1, n2;
        int a = add(m, pairs[i][0], &n1), b = add(m, pairs[i][1], &n2);
        if (a != b)
            fail_msg("'%s' and '%s' got templates %d and %d", pairs[i][0], pairs[i][1], a, b);
        assert_true(n1);
        assert_false(n2);
        assert_non_null(strstr(logs_miner_template(m, a), "<*>"));
        assert_int_equal(logs_miner_count(m), 1);
        logs_miner_free(m);
    }
}

static void test_template_text(void **state)
{
    (void)state;
    logs_miner *m = miner(NULL);
    int a = add(m, "Connection from 10.1.2.3 closed", NULL);
    assert_string_equal(logs_miner_template(m, a), "Connection from <*> closed");
    int b = add(m, "uid=42 (pid 7) exited", NULL);
    assert_string_equal(logs_miner_template(m, b), "uid=<*> (pid <*>) exited");
    assert_string_equal(logs_miner_template(m, 99), "");
    assert_string_equal(logs_miner_template(m, -1), "");
    logs_miner_free(m);
}

/* Constant words that differ become <*> once the similarity is reached; a
 * different message starts a new template; ids stay. */
static void test_online(void **state)
{
    (void)state;
    logs_miner *m = miner(&(logs_miner_opts){.sim = 0.5});
    bool nw;
    int a = add(m, "user alice logged in", &nw);
    assert_true(nw);
    int b = add(m, "user bob logged in", &nw);
    assert_false(nw);
    assert_int_equal(a, b);
    assert_string_equal(logs_miner_template(m, a), "user <*> logged in");
    int c = add(m, "disk sda is full", &nw);
    assert_true(nw);
    assert_int_not_equal(a, c);
    assert_int_equal(add(m, "user carol logged in", &nw), a);
    assert_false(nw);
    assert_int_equal(logs_miner_count(m), 2);
    logs_miner_free(m);
}

/* Past max_templates the least recently used template is forgotten. */
static void test_cap(void **state)
{
    (void)state;
    logs_miner *m = miner(&(logs_miner_opts){.max_templates = 3});
    int a = add(m, "alpha one two", NULL);
    int b = add(m, "beta three four five", NULL);
    int c = add(m, "gamma six", NULL);
    assert_int_equal(add(m, "alpha one two", NULL), a); /* a is recent now; b is the oldest */
    bool nw;
    int d = add(m, "delta seven eight nine ten", &nw);
    assert_true(nw);
    assert_int_equal(logs_miner_count(m), 3);
    assert_string_equal(logs_miner_template(m, b), "");
    assert_int_equal(logs_miner_resolve(m, b), -1);
    assert_string_equal(logs_miner_template(m, a), "alpha one two");
    assert_string_equal(logs_miner_template(m, c), "gamma six");
    assert_string_equal(logs_miner_template(m, d), "delta seven eight nine ten");
    int b2 = add(m, "beta three four five", &nw); /* comes back as a new template */
    assert_true(nw);
    assert_true(b2 > d);
    logs_miner_free(m);
}

/* Empty lines, NULs, invalid UTF-8, a line of only variables, a very long line. */
static void test_odd_input(void **state)
{
    (void)state;
    logs_miner *m = miner(NULL);
    int e1 = add(m, "", NULL);
    assert_int_equal(logs_miner_add(m, "   \t ", 5, NULL), e1);
    assert_string_equal(logs_miner_template(m, e1), "");
    static const char nul[] = "abc\0def ghi";
    int n = logs_miner_add(m, nul, sizeof nul - 1, NULL);
    assert_true(n >= 0);
    assert_string_equal(logs_miner_template(m, n), "abc def ghi");
    static const char bad[] = "bad \xff\xfe\xc3 utf8";
    assert_true(logs_miner_add(m, bad, sizeof bad - 1, NULL) >= 0);
    int v1 = add(m, "42 10.0.0.1 0xff 3.5", NULL);
    int v2 = add(m, "7 10.0.0.2 0x1 99", NULL);
    assert_int_equal(v1, v2);
    assert_string_equal(logs_miner_template(m, v1), "<*> <*> <*> <*>");
    size_t big = 1u << 20;
    char *line = malloc(big + 1);
    assert_non_null(line);
    for (size_t i = 0; i < big; i++)
        line[i] = (i % 7 == 6) ? ' ' : (char)('a' + i % 26);
    line[big] = '\0';
    int l1 = logs_miner_add(m, line, big, NULL);
    assert_true(l1 >= 0);
    assert_int_equal(logs_miner_add(m, line, big, NULL), l1);
    free(line);
    logs_miner_free(m);
}

static void test_level(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"2024-01-01 ERROR db: connection lost", "error"},
        {"FATAL: out of memory", "error"},
        {"kernel: segfault at 0 ip 00007f", "error"},
        {"Traceback (most recent call last):", "error"},
        {"java.io.IOException: broken pipe", "error"},
        {"<3>err: x", "info"},
        {"ERR something", "error"},
        {"[WARN] disk 91% full", "warning"},
        {"warning: deprecated option", "warning"},
        {"WARNING and ERROR both", "error"},
        {"all good, no errors here", "info"},
        {"TERRORIST is not a level", "info"},
        {"", "info"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = logs_line_level(cases[i][0], strlen(cases[i][0]));
        if (strcmp(got, cases[i][1]))
            fail_msg("'%s': level %s, expected %s", cases[i][0], got, cases[i][1]);
    }
}

static const char *content(const logs_format *f, const char *line)
{
    static char buf[512];
    const char *c;
    size_t n;
    if (logs_format_content(f, line, strlen(line), &c, &n) < 0)
        return NULL;
    snprintf(buf, sizeof buf, "%.*s", (int)n, c);
    return buf;
}

static void test_format(void **state)
{
    (void)state;
    char err[256];
    logs_format *f = NULL;
    assert_int_equal(logs_format_new("<Date> <Time> <Level> <Component>: <Content>", &f, err, sizeof err), 0);
    assert_string_equal(content(f, "2024-01-01 10:00:00  INFO web: GET / 200\r"), "GET / 200");
    assert_string_equal(content(f, "d t L comp:with:colons: msg: more"), "msg: more");
    assert_null(content(f, "too short"));
    logs_format_free(f);
    /* Mac's format: an optional part */
    assert_int_equal(logs_format_new("<Month>  <Date> <Time> <User> <Component>\\[<PID>\\]( \\(<Address>\\))?: <Content>",
                                     &f, err, sizeof err), 0);
    assert_string_equal(content(f, "Jul  1 09:00:55 calvisitor-10-105-160-95 kernel[0]: IOThunderboltSwitch<0>(0x0)"),
                        "IOThunderboltSwitch<0>(0x0)");
    assert_string_equal(content(f, "Jul  1 09:01:05 calvisitor-10-105-160-95 com.apple.CDScheduler[43]: Thermal pressure state: 1"),
                        "Thermal pressure state: 1");
    assert_string_equal(content(f, "Jul  8 08:10:46 calvisitor-10-105-162-124 Safari[9852] (com.apple.WebKit.Networking.1): x y"),
                        "x y");
    logs_format_free(f);
    assert_int_equal(logs_format_new("\\[<Time>\\] <Program> - <Content>", &f, err, sizeof err), 0);
    assert_string_equal(content(f, "[10.30 16:49:06] chrome.exe - proxy.cse.cuhk.edu.hk:5070 open"),
                        "proxy.cse.cuhk.edu.hk:5070 open");
    logs_format_free(f);
    /* bad formats name the place */
    assert_int_equal(logs_format_new("<Date> <Time>", &f, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "Content"));
    assert_int_equal(logs_format_new("<Date (x: <Content>", &f, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "offset"));
    assert_int_equal(logs_format_new("<A><Content>", &f, err, sizeof err), -EINVAL);
}

static void test_masks(void **state)
{
    (void)state;
    char err[256];
    logs_miner *m = miner(NULL);
    assert_int_equal(logs_miner_add_mask(m, "(unclosed", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "offset"));
    assert_int_equal(logs_miner_add_mask(m, "\\bsession [a-z]+\\b", err, sizeof err), 0);
    int a = add(m, "open session abc for x", NULL);
    int b = add(m, "open session xyz for x", NULL);
    assert_int_equal(a, b);
    assert_string_equal(logs_miner_template(m, a), "open <*> for x");
    logs_miner_free(m);
}

/* Options out of range are refused with a reason. */
static void test_bad_opts(void **state)
{
    (void)state;
    logs_miner *m = NULL;
    char err[256];
    assert_int_equal(logs_miner_new(&(logs_miner_opts){.sim = 1.5}, &m, err, sizeof err), -EINVAL);
    assert_null(m);
    assert_non_null(strstr(err, "similarity"));
    assert_int_equal(logs_miner_new(&(logs_miner_opts){.depth = 2}, &m, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "depth"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask_kinds), cmocka_unit_test(test_template_text), cmocka_unit_test(test_online),
        cmocka_unit_test(test_cap),        cmocka_unit_test(test_odd_input),     cmocka_unit_test(test_level),
        cmocka_unit_test(test_format),     cmocka_unit_test(test_masks),         cmocka_unit_test(test_bad_opts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
