/* test_sse.c: the text/event-stream parser and the streamed OpenAI and
 * Anthropic answers built on it (chunks split anywhere, keep-alive comments,
 * CRLF, multi-line data, [DONE]), and the small JSON-schema check. */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "llm/llm_int.h"

typedef struct seen {
    char log[1024];
    int n;
} seen;

static void on_event(void *ud, const char *event, const char *data)
{
    seen *s = ud;
    size_t len = strlen(s->log);
    snprintf(s->log + len, sizeof s->log - len, "[%s|%s]", event, data);
    s->n++;
}

static const char stream[] = ": keep-alive\r\n\r\n"
                             "data: one\r\n\r\n"
                             "event: delta\ndata: two\ndata: lines\n\n"
                             "data:three\n\n"
                             "id: 7\nretry: 100\ndata: four\n\n"
                             "data: [DONE]\n\n";

static void feed_split(size_t step, seen *s, bool *done)
{
    llm_sse p;
    llm_sse_init(&p, on_event, s);
    size_t n = strlen(stream);
    for (size_t i = 0; i < n; i += step)
        llm_sse_feed(&p, stream + i, i + step > n ? n - i : step);
    llm_sse_finish(&p);
    *done = p.done;
    llm_sse_free(&p);
}

static void test_any_split(void **state)
{
    (void)state;
    for (size_t step = 1; step <= sizeof stream; step++) {
        seen s = {0};
        bool done;
        feed_split(step, &s, &done);
        assert_string_equal(s.log, "[message|one][delta|two\nlines][message|three][message|four]");
        assert_int_equal(s.n, 4);
        assert_true(done);
    }
}

static void test_last_event_without_blank_line(void **state)
{
    (void)state;
    seen s = {0};
    llm_sse p;
    llm_sse_init(&p, on_event, &s);
    llm_sse_feed(&p, "data: tail", 10);
    assert_int_equal(s.n, 0);
    llm_sse_finish(&p);
    assert_string_equal(s.log, "[message|tail]");
    llm_sse_free(&p);
}

static void test_openai_stream(void **state)
{
    (void)state;
    static const char *chunks[] = {
        "data: {\"model\":\"m1\",\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n: ping\n\nda",
        "ta: {\"choices\":[{\"delta\":{\"content\":\"{\\\"a\\\":\"},\"logprobs\":{\"content\":[{\"logprob\":0}]}}]}\n",
        ("\ndata: {\"choices\":[{\"delta\":{\"content\":\"1}\"},\"logprobs\":{\"content\":[{\"logprob\":-0.6931471805599453}]},"
         "\"finish_reason\":\"stop\"}]}\n\n"),
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n",
    };
    llm_reply r;
    llm_reply_init(&r, NULL, NULL);
    llm_sse_init(&r.sse, llm_openai_event, &r);
    for (size_t i = 0; i < 4; i++)
        llm_sse_feed(&r.sse, chunks[i], strlen(chunks[i]));
    llm_sse_finish(&r.sse);
    assert_true(r.sse.done);
    assert_string_equal(r.content, "{\"a\":1}");
    assert_string_equal(r.model, "m1");
    assert_string_equal(r.stop, "stop");
    assert_int_equal(r.prompt_tokens, 11);
    assert_int_equal(r.completion_tokens, 2);
    assert_true(fabs(llm_reply_confidence(&r) - 0.75) < 1e-9);
    assert_string_equal(r.error, "");
    llm_reply_free(&r);
}

static void test_anthropic_stream(void **state)
{
    (void)state;
    static const char s[] =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"c1\",\"usage\":{\"input_tokens\":9}}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"hel\"}}\n\n"
        "event: ping\ndata: {\"type\":\"ping\"}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"refusal\"},\"usage\":{\"output_tokens\":3}}\n\n";
    llm_reply r;
    llm_reply_init(&r, NULL, NULL);
    llm_sse_init(&r.sse, llm_anthropic_event, &r);
    llm_sse_feed(&r.sse, s, sizeof s - 1);
    llm_sse_finish(&r.sse);
    assert_string_equal(r.content, "hello");
    assert_string_equal(r.model, "c1");
    assert_int_equal(r.prompt_tokens, 9);
    assert_int_equal(r.completion_tokens, 3);
    assert_non_null(r.refusal);
    assert_true(isnan(llm_reply_confidence(&r)));
    llm_reply_free(&r);
}

static int check(const char *schema, const char *value, char *why)
{
    json_t *s = json_loads(schema, 0, NULL), *v = json_loads(value, JSON_DECODE_ANY, NULL);
    assert_non_null(s);
    assert_non_null(v);
    int rc = llm_schema_check(s, v, why, 256);
    json_decref(s);
    json_decref(v);
    return rc;
}

static void test_schema(void **state)
{
    (void)state;
    const char *schema = "{\"type\":\"object\",\"required\":[\"action\",\"confidence\"],"
                         "\"additionalProperties\":false,\"properties\":{"
                         "\"action\":{\"type\":\"string\",\"enum\":[\"restart\",\"none\"]},"
                         "\"confidence\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1},"
                         "\"claims\":{\"type\":\"array\",\"maxItems\":2,\"items\":{\"type\":\"object\","
                         "\"required\":[\"cites\"],\"properties\":{\"cites\":{\"type\":\"integer\"}}}}}}";
    char why[256];
    assert_int_equal(check(schema, "{\"action\":\"restart\",\"confidence\":0.5,\"claims\":[{\"cites\":3}]}", why), 0);
    assert_int_equal(check(schema, "{\"action\":\"reboot\",\"confidence\":0.5}", why), -EINVAL);
    assert_non_null(strstr(why, "$.action"));
    assert_int_equal(check(schema, "{\"action\":\"none\"}", why), -EINVAL);
    assert_non_null(strstr(why, "'confidence' is required"));
    assert_int_equal(check(schema, "{\"action\":\"none\",\"confidence\":2}", why), -EINVAL);
    assert_non_null(strstr(why, "maximum"));
    assert_int_equal(check(schema, "{\"action\":\"none\",\"confidence\":1,\"x\":1}", why), -EINVAL);
    assert_int_equal(check(schema, "{\"action\":\"none\",\"confidence\":1,\"claims\":[{\"cites\":\"a\"}]}", why),
                     -EINVAL);
    assert_non_null(strstr(why, "$.claims[0].cites"));
    assert_int_equal(check(schema, "[1]", why), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_any_split),    cmocka_unit_test(test_last_event_without_blank_line),
        cmocka_unit_test(test_openai_stream), cmocka_unit_test(test_anthropic_stream),
        cmocka_unit_test(test_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
