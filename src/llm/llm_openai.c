/* llm_openai.c: the OpenAI chat-completions wire format (also llama.cpp's
 * llama-server, vLLM and Ollama): the request body (messages, max_tokens,
 * temperature 0, logprobs, response_format json_schema, stream), whole
 * answers and streamed chunks (content, refusal, logprobs, usage), and the
 * reply buffer both providers fill. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/llm_int.h"

void llm_reply_init(llm_reply *r, void (*on_delta)(void *ud, const char *text, size_t len), void *ud)
{
    memset(r, 0, sizeof *r);
    r->prompt_tokens = r->completion_tokens = -1;
    r->on_delta = on_delta;
    r->ud = ud;
}

void llm_reply_free(llm_reply *r)
{
    free(r->content);
    free(r->refusal);
    llm_sse_free(&r->sse);
    memset(r, 0, sizeof *r);
}

int llm_reply_append(llm_reply *r, const char *text, size_t len, bool delta)
{
    if (!llm_grow(&r->content, &r->cap, r->len + len + 1, 1024))
        return -ENOMEM;
    memcpy(r->content + r->len, text, len);
    r->len += len;
    r->content[r->len] = 0;
    if (delta && r->on_delta && len)
        r->on_delta(r->ud, text, len);
    return 0;
}

double llm_reply_confidence(const llm_reply *r)
{
    return r->prob_n ? r->prob_sum / (double)r->prob_n : NAN;
}

char *llm_openai_body(const llm_prompt *p)
{
    json_t *o = json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:i, s:f, s:b}", "model", p->model, "messages",
                          "role", "system", "content", p->system ? p->system : "", "role", "user", "content",
                          p->user ? p->user : "", "max_tokens", p->max_tokens, "temperature", 0.0, "logprobs", 1);
    if (!o)
        return NULL;
    if (p->schema) {
        json_t *s = json_loads(p->schema, 0, NULL);
        if (!s) {
            json_decref(o);
            return NULL;
        }
        json_object_set_new(o, "response_format",
                            json_pack("{s:s, s:{s:s, s:o, s:b}}", "type", "json_schema", "json_schema", "name",
                                      p->schema_name ? p->schema_name : "answer", "schema", s, "strict", 1));
    }
    if (p->stream) {
        json_object_set_new(o, "stream", json_true());
        json_object_set_new(o, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

static void take_logprobs(llm_reply *r, const json_t *lp)
{
    const json_t *arr = json_object_get(lp, "content");
    size_t i;
    const json_t *t;
    json_array_foreach(arr, i, t)
    {
        const json_t *v = json_object_get(t, "logprob");
        if (json_is_number(v)) {
            r->prob_sum += exp(json_number_value(v));
            r->prob_n++;
        }
    }
}

void llm_take_usage(llm_reply *r, const json_t *u, const char *in_key, const char *out_key)
{
    const json_t *p = json_object_get(u, in_key), *c = json_object_get(u, out_key);
    if (json_is_integer(p))
        r->prompt_tokens = (int)json_integer_value(p);
    if (json_is_integer(c))
        r->completion_tokens = (int)json_integer_value(c);
}

void llm_take_str(char *dst, size_t n, const json_t *v)
{
    if (json_is_string(v))
        snprintf(dst, n, "%s", json_string_value(v));
}

void llm_error_message(const char *body, char *out, size_t n)
{
    out[0] = 0;
    json_t *o = body ? json_loads(body, 0, NULL) : NULL;
    const json_t *e = json_object_get(o, "error");
    if (json_is_string(e))
        snprintf(out, n, "%s", json_string_value(e));
    else
        llm_take_str(out, n, json_object_get(e, "message"));
    json_decref(o);
}

json_t *llm_reply_json(const char *body, size_t len, llm_reply *r)
{
    json_error_t je;
    json_t *o = json_loadb(body ? body : "", len, 0, &je);
    if (!json_is_object(o)) {
        snprintf(r->error, sizeof r->error, "the answer is not JSON: %s", je.text);
        json_decref(o);
        return NULL;
    }
    return o;
}

int llm_openai_parse(const char *body, size_t len, llm_reply *r)
{
    json_t *o = llm_reply_json(body, len, r);
    if (!o)
        return -EPROTO;
    const json_t *ch = json_array_get(json_object_get(o, "choices"), 0);
    const json_t *msg = json_object_get(ch, "message");
    if (!json_is_object(msg)) {
        snprintf(r->error, sizeof r->error, "the answer has no choices[0].message");
        json_decref(o);
        return -EPROTO;
    }
    const json_t *c = json_object_get(msg, "content"), *ref = json_object_get(msg, "refusal");
    int rc = 0;
    if (json_is_string(c))
        rc = llm_reply_append(r, json_string_value(c), json_string_length(c), false);
    if (json_is_string(ref) && json_string_length(ref))
        r->refusal = strdup(json_string_value(ref));
    llm_take_str(r->stop, sizeof r->stop, json_object_get(ch, "finish_reason"));
    llm_take_str(r->model, sizeof r->model, json_object_get(o, "model"));
    take_logprobs(r, json_object_get(ch, "logprobs"));
    llm_take_usage(r, json_object_get(o, "usage"), "prompt_tokens", "completion_tokens");
    json_decref(o);
    return rc;
}

void llm_openai_event(void *ud, const char *event, const char *data)
{
    llm_reply *r = ud;
    (void)event;
    json_t *o = json_loads(data, 0, NULL);
    if (!o) {
        snprintf(r->error, sizeof r->error, "a streamed chunk is not JSON");
        return;
    }
    const json_t *e = json_object_get(o, "error");
    if (e) {
        llm_take_str(r->error, sizeof r->error, json_object_get(e, "message"));
        if (!r->error[0])
            snprintf(r->error, sizeof r->error, "the stream reported an error");
    }
    llm_take_str(r->model, sizeof r->model, json_object_get(o, "model"));
    const json_t *ch = json_array_get(json_object_get(o, "choices"), 0);
    const json_t *d = json_object_get(ch, "delta");
    const json_t *c = json_object_get(d, "content"), *ref = json_object_get(d, "refusal");
    if (json_is_string(c) && json_string_length(c))
        llm_reply_append(r, json_string_value(c), json_string_length(c), true);
    if (json_is_string(ref) && json_string_length(ref) && !r->refusal)
        r->refusal = strdup(json_string_value(ref));
    llm_take_str(r->stop, sizeof r->stop, json_object_get(ch, "finish_reason"));
    take_logprobs(r, json_object_get(ch, "logprobs"));
    llm_take_usage(r, json_object_get(o, "usage"), "prompt_tokens", "completion_tokens");
    json_decref(o);
}
