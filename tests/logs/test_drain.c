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
#include <malloc.h>
#include <pthread.h>
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
        {"took 1.16 s", "took 22 ms"},
        {"ready=x,policy=3", "ready=y,policy=1"},
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
    /* a bracketed aside of only a variable is dropped: both lines share a template */
    int c = add(m, "sent 1190 bytes (1.16 KB) ok", NULL);
    assert_int_equal(add(m, "sent 0 bytes ok", NULL), c);
    assert_string_equal(logs_miner_template(m, c), "sent <*> bytes ok");
    /* an empty aside is an empty variable: dropped alike; punctuation after
     * a dropped aside stays with the word before */
    int f = add(m, "accepted from 10.0.0.1 (h1.example.org) at port 22", NULL);
    assert_int_equal(add(m, "accepted from 10.0.0.2 () at port 22", NULL), f);
    assert_string_equal(logs_miner_template(m, f), "accepted from <*> at port <*>");
    int g = add(m, "peer closed (42): retry later", NULL);
    assert_int_equal(add(m, "peer closed []: retry later", NULL), g);
    assert_string_equal(logs_miner_template(m, g), "peer closed: retry later");
    /* an empty value is a value: key=, key='', "" */
    int h = add(m, "set opt=7 tag='a' name \"x\" done", NULL);
    assert_int_equal(add(m, "set opt= tag='' name \"\" done", NULL), h);
    assert_string_equal(logs_miner_template(m, h), "set opt=<*> tag='<*>' name \"<*>\" done");
    /* a word split after commas keeps its text */
    int d = add(m, "ready=true,policy=3,mode=x", NULL);
    assert_string_equal(logs_miner_template(m, d), "ready=true,policy=<*>,mode=<*>"); /* flags stay */
    int e = add(m, "Mon Jul 03 10:00:01 2017 started", NULL);
    assert_string_equal(logs_miner_template(m, e), "<*> started");
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
/* --sim below 1 with --sim-tokens: a long message with one odd word joins
 * its template (the word becomes <*>); a short one does not. */
static void test_sim_tokens(void **state)
{
    (void)state;
    logs_miner *m = miner(&(logs_miner_opts){.sim = 0.7, .sim_tokens = 6});
    int a = add(m, "worker pool drained all queued jobs before the shutdown", NULL);
    bool nw;
    assert_int_equal(add(m, "worker pool drained all pending jobs before the shutdown", &nw), a);
    assert_false(nw);
    assert_string_equal(logs_miner_template(m, a), "worker pool drained all <*> jobs before the shutdown");
    int b = add(m, "the link went up", NULL); /* 3 of 4 agree, but 4 < 6 tokens */
    int c = add(m, "the link went down", &nw);
    assert_true(nw);
    assert_true(b != c);
    /* below the similarity: a new template even when long */
    int d = add(m, "worker pool lost three of its seven helper threads today", &nw);
    assert_true(nw);
    assert_true(d != a);
    logs_miner_free(m);
    /* the default (similarity 1): the odd word keeps its own template */
    m = miner(NULL);
    a = add(m, "worker pool drained all queued jobs before the shutdown", NULL);
    assert_true(add(m, "worker pool drained all pending jobs before the shutdown", NULL) != a);
    logs_miner_free(m);
}

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

/* Templates that differ in one word only become one once there are
 * `variants` of them; fewer stay apart (two states of a thing are two
 * templates). The ids of the merged ones resolve to the earliest. */
static void test_variants(void **state)
{
    (void)state;
    logs_miner *m = miner(&(logs_miner_opts){.variants = 4});
    static const char *const hives[] = {"SOFTWARE", "SYSTEM", "SECURITY", "SAM", "DEFAULT"};
    int ids[5];
    bool nw;
    for (int i = 0; i < 3; i++) {
        char line[128];
        snprintf(line, sizeof line, "Loading registry hive %s, into the key", hives[i]);
        ids[i] = add(m, line, &nw);
        assert_true(nw);
    }
    assert_int_equal(logs_miner_count(m), 3);
    ids[3] = add(m, "Loading registry hive SAM, into the key", &nw);
    assert_false(nw); /* the fourth variant: merged into the first */
    assert_int_equal(ids[3], ids[0]);
    assert_int_equal(logs_miner_count(m), 1);
    assert_string_equal(logs_miner_template(m, ids[0]), "Loading registry hive <*>, into the key"); /* the comma stays */
    for (int i = 1; i < 3; i++)
        assert_int_equal(logs_miner_resolve(m, ids[i]), ids[0]);
    assert_int_equal(add(m, "Loading registry hive DEFAULT, into the key", &nw), ids[0]);
    assert_false(nw);
    /* two states stay two templates */
    int a = add(m, "link eth0 is up now", NULL), b = add(m, "link eth0 is down now", NULL);
    assert_int_not_equal(a, b);
    logs_miner_free(m);
    /* classic Drain: similarity 0.5 merges them at once */
    m = miner(&(logs_miner_opts){.classic = true, .sim = 0.5, .depth = 4});
    a = add(m, "link eth0 is up now", NULL);
    assert_int_equal(add(m, "link eth0 is down now", NULL), a);
    assert_string_equal(logs_miner_template(m, a), "link eth0 is <*> now");
    logs_miner_free(m);
}

/* With a cap, memory follows the live templates, not every template ever
 * seen: 200,000 distinct messages (two random words each, so nothing
 * merges) leave the heap about where 20,000 left it. */
static void test_bounded_memory(void **state)
{
    (void)state;
    logs_miner *m = miner(&(logs_miner_opts){.max_templates = 100});
    uint32_t x = 12345;
    size_t at20k = 0;
    for (int i = 0; i < 200000; i++) {
        char line[96], w1[9], w2[9];
        for (int k = 0; k < 8; k++) {
            x = x * 1103515245u + 12345u;
            w1[k] = (char)('a' + (x >> 16) % 26);
            x = x * 1103515245u + 12345u;
            w2[k] = (char)('a' + (x >> 16) % 26);
        }
        w1[8] = w2[8] = '\0';
        snprintf(line, sizeof line, "job %s moved to queue %s", w1, w2);
        assert_true(logs_miner_add(m, line, strlen(line), NULL) >= 0);
        assert_true(logs_miner_count(m) <= 100);
        if (i == 20000)
            at20k = mallinfo2().uordblks;
    }
    size_t at200k = mallinfo2().uordblks;
    if (at200k > at20k + at20k / 2 + (1u << 20))
        fail_msg("heap grew from %zu to %zu bytes", at20k, at200k);
    logs_miner_free(m);
}

/* Miners in different threads share nothing but read-only tables set up
 * once: two threads mining the same lines at the same time get the same
 * templates (the TSan tree checks the set-up). */
static void *mine_thread(void *arg)
{
    char *out = arg;
    logs_miner *m = NULL;
    char err[128];
    if (logs_miner_new(NULL, &m, err, sizeof err) < 0)
        return NULL;
    int id = -1;
    for (int i = 0; i < 2000; i++) {
        char line[64];
        snprintf(line, sizeof line, "worker %d finished task %d in %d ms", i % 7, i, i * 3);
        id = logs_miner_add(m, line, strlen(line), NULL);
    }
    snprintf(out, 128, "%d %s", id, logs_miner_template(m, id));
    logs_miner_free(m);
    return out;
}

static void test_threads(void **state)
{
    (void)state;
    char a[128] = "", b[128] = "";
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, mine_thread, a), 0);
    assert_int_equal(pthread_create(&tb, NULL, mine_thread, b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_string_equal(a, "0 worker <*> finished task <*> in <*>");
    assert_string_equal(a, b);
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
    int b = logs_miner_add(m, bad, sizeof bad - 1, NULL);
    assert_true(b >= 0);
    assert_string_equal(logs_miner_template(m, b), "bad ??? utf8"); /* valid UTF-8 out */
    int v1 = add(m, "42 10.0.0.1 0xff 3.5", NULL);
    int v2 = add(m, "7 10.0.0.2 0x1 99", NULL);
    assert_int_equal(v1, v2);
    assert_string_equal(logs_miner_template(m, v1), "<*>"); /* adjacent variables are one */
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
        cmocka_unit_test(test_mask_kinds), cmocka_unit_test(test_template_text), cmocka_unit_test(test_online), cmocka_unit_test(test_sim_tokens),
        cmocka_unit_test(test_cap),        cmocka_unit_test(test_odd_input),     cmocka_unit_test(test_level),
        cmocka_unit_test(test_variants),   cmocka_unit_test(test_bounded_memory), cmocka_unit_test(test_threads),
        cmocka_unit_test(test_format),     cmocka_unit_test(test_masks),         cmocka_unit_test(test_bad_opts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
