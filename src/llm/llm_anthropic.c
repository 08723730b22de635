/* llm_anthropic.c: the Anthropic messages wire format: the request body
 * (model, max_tokens, system, one user message, temperature 0, stream; with
 * a schema the system prompt asks for one JSON object matching it, which
 * the caller then validates: the API has no schema-constrained output),
 * whole answers (text content blocks, stop_reason, usage) and streamed
 * events (message_start, content_block_delta, message_delta, error). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/llm_int.h"

char *llm_anthropic_body(const llm_prompt *p)
{
    char *system = NULL;
    if (p->schema) {
        const char *base = p->system ? p->system : "";
        size_t n = strlen(base) + strlen(p->schema) + 256;
        system = malloc(n);
        if (!system)
            return NULL;
        snprintf(system, n,
                 "%s%sAnswer with one JSON object and nothing else (no prose, no code fence), valid against this "
                 "JSON schema:\n%s",
                 base, *base ? "\n\n" : "", p->schema);
    }
    json_t *o = json_pack("{s:s, s:i, s:f, s:[{s:s, s:s}]}", "model", p->model, "max_tokens", p->max_tokens,
                          "temperature", 0.0, "messages", "role", "user", "content", p->user ? p->user : "");
    const char *sys = system ? system : p->system;
    if (o && sys && *sys)
        json_object_set_new(o, "system", json_string(sys));
    if (o && p->stream)
        json_object_set_new(o, "stream", json_true());
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    free(system);
    return text;
}

static void refusal_of_stop(llm_reply *r)
{
    if (!strcmp(r->stop, "refusal") && !r->refusal)
        r->refusal = strdup("the model refused (stop_reason refusal)");
}

int llm_anthropic_parse(const char *body, size_t len, llm_reply *r)
{
    json_t *o = llm_reply_json(body, len, r);
    if (!o)
        return -EPROTO;
    const json_t *blocks = json_object_get(o, "content");
    if (!json_is_array(blocks)) {
        snprintf(r->error, sizeof r->error, "the answer has no content blocks");
        json_decref(o);
        return -EPROTO;
    }
    size_t i;
    const json_t *b;
    int rc = 0;
    json_array_foreach(blocks, i, b)
    {
        const json_t *t = json_object_get(b, "text");
        const char *type = json_string_value(json_object_get(b, "type"));
        if (type && !strcmp(type, "text") && json_is_string(t) && !rc)
            rc = llm_reply_append(r, json_string_value(t), json_string_length(t), false);
    }
    llm_take_str(r->stop, sizeof r->stop, json_object_get(o, "stop_reason"));
    llm_take_str(r->model, sizeof r->model, json_object_get(o, "model"));
    llm_take_usage(r, json_object_get(o, "usage"), "input_tokens", "output_tokens");
    refusal_of_stop(r);
    json_decref(o);
    return rc;
}

void llm_anthropic_event(void *ud, const char *event, const char *data)
{
    llm_reply *r = ud;
    json_t *o = json_loads(data, 0, NULL);
    if (!o) {
        snprintf(r->error, sizeof r->error, "a streamed event is not JSON");
        return;
    }
    const char *type = json_string_value(json_object_get(o, "type"));
    if (!type)
        type = event;
    if (!strcmp(type, "message_start")) {
        const json_t *m = json_object_get(o, "message");
        llm_take_str(r->model, sizeof r->model, json_object_get(m, "model"));
        llm_take_usage(r, json_object_get(m, "usage"), "input_tokens", "output_tokens");
    } else if (!strcmp(type, "content_block_delta")) {
        const json_t *d = json_object_get(o, "delta");
        const json_t *t = json_object_get(d, "text");
        if (json_is_string(t))
            llm_reply_append(r, json_string_value(t), json_string_length(t), true);
    } else if (!strcmp(type, "message_delta")) {
        llm_take_str(r->stop, sizeof r->stop, json_object_get(json_object_get(o, "delta"), "stop_reason"));
        const json_t *u = json_object_get(o, "usage");
        const json_t *out = json_object_get(u, "output_tokens");
        if (json_is_integer(out))
            r->completion_tokens = (int)json_integer_value(out);
        refusal_of_stop(r);
    } else if (!strcmp(type, "error")) {
        llm_take_str(r->error, sizeof r->error, json_object_get(json_object_get(o, "error"), "message"));
        if (!r->error[0])
            snprintf(r->error, sizeof r->error, "the stream reported an error");
    }
    json_decref(o);
}
