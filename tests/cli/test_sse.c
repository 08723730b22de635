/* test_sse.c: unit tests of the CLI's incremental server-sent events parser
 * (src/cli/sse.c): any chunking, CR/LF/CRLF line ends, comments, multi-line
 * data, the last event id kept across events and resets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

typedef struct seen {
    int n;
    char log[2048];
} seen;

static int record(const cli_sse_event *ev, void *ud)
{
    seen *s = ud;
    size_t len = strlen(s->log);
    snprintf(s->log + len, sizeof s->log - len, "[%s|%s|%s]", ev->id, ev->event, ev->data);
    s->n++;
    return 0;
}

static const char stream[] =
    ": keepalive\r\n\r\n"
    "id: 7\r\nevent: daemon.start\r\ndata: {\"id\":7}\r\n\r\n"
    "data: line1\ndata:line2\n\n"
    "id: 9\rdata: x\r\r"
    "retry: 100\nunknown: y\n\n"; /* no data: not dispatched */

static const char want[] = "[7|daemon.start|{\"id\":7}][7|message|line1\nline2][9|message|x]";

static void test_whole(void **state)
{
    seen s = {0};
    cli_sse p;
    cli_sse_init(&p, record, &s);
    assert_int_equal(cli_sse_feed(&p, stream, strlen(stream)), 0);
    assert_string_equal(s.log, want);
    assert_string_equal(p.last_id, "9");
    cli_sse_free(&p);
}

/* Every split point of the stream into two chunks, and byte by byte. */
static void test_chunked(void **state)
{
    size_t n = strlen(stream);
    for (size_t cut = 0; cut <= n; cut++) {
        seen s = {0};
        cli_sse p;
        cli_sse_init(&p, record, &s);
        assert_int_equal(cli_sse_feed(&p, stream, cut), 0);
        assert_int_equal(cli_sse_feed(&p, stream + cut, n - cut), 0);
        assert_string_equal(s.log, want);
        cli_sse_free(&p);
    }
    seen s = {0};
    cli_sse p;
    cli_sse_init(&p, record, &s);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(cli_sse_feed(&p, stream + i, 1), 0);
    assert_string_equal(s.log, want);
    cli_sse_free(&p);
}

static void test_reset_keeps_id(void **state)
{
    seen s = {0};
    cli_sse p;
    cli_sse_init(&p, record, &s);
    const char *a = "id: 5\ndata: one\n\ndata: partial";
    assert_int_equal(cli_sse_feed(&p, a, strlen(a)), 0);
    cli_sse_reset(&p); /* connection dropped mid-event */
    const char *b = "data: two\n\n";
    assert_int_equal(cli_sse_feed(&p, b, strlen(b)), 0);
    assert_string_equal(s.log, "[5|message|one][5|message|two]");
    cli_sse_free(&p);
}

static int stop_first(const cli_sse_event *ev, void *ud)
{
    (*(int *)ud)++;
    return 1;
}

static void test_stop(void **state)
{
    int calls = 0;
    cli_sse p;
    cli_sse_init(&p, stop_first, &calls);
    const char *a = "data: 1\n\ndata: 2\n\n";
    assert_int_equal(cli_sse_feed(&p, a, strlen(a)), 1);
    assert_int_equal(calls, 1);
    cli_sse_free(&p);
}

static void test_long_line(void **state)
{
    static char big[(1 << 20) + 16];
    cli_sse p;
    int calls = 0;
    memset(big, 'a', sizeof big);
    cli_sse_init(&p, stop_first, &calls);
    assert_int_equal(cli_sse_feed(&p, big, sizeof big), -E2BIG);
    cli_sse_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole), cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_reset_keeps_id), cmocka_unit_test(test_stop),
        cmocka_unit_test(test_long_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
