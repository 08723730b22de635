/* llm_probe.c: a tiny driver of the llm client for tests/llm/test_llm.py.
 *
 *   llm_probe CONFIG REQUESTS.json
 *
 * Loads CONFIG (its [daemon] state_dir holds llm/sent.jsonl), opens the
 * client and runs each request of REQUESTS.json (one object or a list) in
 * order, in one process (so budgets carry from one to the next). A request:
 *   {"purpose","system","user","schema_name","schema" (object or text),
 *    "incident","max_tokens","stream": true (on_delta set),
 *    "invalid_if": "TEXT" / "unsure_if": "TEXT" (the validator says
 *    INVALID / UNSURE when the answer contains TEXT),
 *    "embed": ["text", ...], "dims": N (llm_embed instead),
 *    "redact": "text" (llm_redact instead)}
 * Prints one JSON array with, per request, {"rc","err","content",
 * "provider","model","confidence","unsure","prompt_tokens",
 * "completion_tokens","attempts","deltas","sent":[{"provider","body"}]}
 * (or {"rc","vectors"} / {"text","count"}), then "status": llm_status_json. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/core.h"
#include "llm/llm.h"

typedef struct probe {
    json_t *sent;
    char *deltas;
    size_t dlen;
    const char *invalid_if, *unsure_if;
} probe;

static void on_sent(void *ud, const char *provider, const char *body)
{
    probe *p = ud;
    json_array_append_new(p->sent, json_pack("{s:s, s:s}", "provider", provider, "body", body));
}

static void on_delta(void *ud, const char *text, size_t len)
{
    probe *p = ud;
    char *d = realloc(p->deltas, p->dlen + len + 1);
    if (!d)
        return;
    memcpy(d + p->dlen, text, len);
    p->dlen += len;
    d[p->dlen] = 0;
    p->deltas = d;
}

static int validate(void *ud, const char *content, char *why, size_t whylen)
{
    const probe *p = ud;
    if (p->invalid_if && strstr(content, p->invalid_if)) {
        snprintf(why, whylen, "unsafe proposal (contains '%s')", p->invalid_if);
        return LLM_INVALID;
    }
    if (p->unsure_if && strstr(content, p->unsure_if)) {
        snprintf(why, whylen, "disagrees with the rules ('%s')", p->unsure_if);
        return LLM_UNSURE;
    }
    return LLM_OK;
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_t *run_embed(llm *l, const json_t *q)
{
    const json_t *texts = json_object_get(q, "embed");
    size_t n = json_array_size(texts);
    int dims = (int)json_integer_value(json_object_get(q, "dims"));
    const char **t = calloc(n + 1, sizeof *t);
    float *out = calloc(n * (size_t)(dims > 0 ? dims : 1) + 1, sizeof *out);
    for (size_t i = 0; i < n; i++)
        t[i] = json_string_value(json_array_get(texts, i));
    char err[512] = "";
    int rc = llm_embed(l, t, n, out, dims, err, sizeof err);
    json_t *vecs = json_array();
    for (size_t i = 0; !rc && i < n; i++) {
        json_t *v = json_array();
        for (int j = 0; j < dims; j++)
            json_array_append_new(v, json_real(out[i * (size_t)dims + (size_t)j]));
        json_array_append_new(vecs, v);
    }
    free(t);
    free(out);
    return json_pack("{s:i, s:s, s:o, s:i}", "rc", rc, "err", err, "vectors", vecs, "dims", llm_embed_dims(l));
}

static json_t *run_one(llm *l, const json_t *q, probe *p)
{
    if (json_object_get(q, "embed"))
        return run_embed(l, q);
    if (json_object_get(q, "redact")) {
        int count = 0;
        char *s = llm_redact(l, str(q, "redact"), &count);
        json_t *o = json_pack("{s:s, s:i}", "text", s ? s : "", "count", count);
        free(s);
        return o;
    }
    const json_t *sch = json_object_get(q, "schema");
    char *schema = json_is_string(sch) ? strdup(json_string_value(sch)) : sch ? json_dumps(sch, JSON_COMPACT) : NULL;
    p->invalid_if = str(q, "invalid_if");
    p->unsure_if = str(q, "unsure_if");
    free(p->deltas);
    p->deltas = NULL;
    p->dlen = 0;
    llm_request r = {.purpose = str(q, "purpose") ? str(q, "purpose") : "test",
                     .system = str(q, "system") ? str(q, "system") : "",
                     .user = str(q, "user") ? str(q, "user") : "",
                     .schema_name = str(q, "schema_name"),
                     .schema = schema,
                     .incident = (uint64_t)json_integer_value(json_object_get(q, "incident")),
                     .max_tokens = (int)json_integer_value(json_object_get(q, "max_tokens")),
                     .validate = validate,
                     .ud = p,
                     .on_delta = json_is_true(json_object_get(q, "stream")) ? on_delta : NULL};
    llm_answer a;
    char err[1024] = "";
    int rc = llm_complete(l, &r, &a, err, sizeof err);
    json_t *att = a.attempts ? json_loads(a.attempts, 0, NULL) : NULL;
    json_t *o = json_pack("{s:i, s:s, s:s?, s:s?, s:s?, s:o, s:b, s:i, s:i, s:o, s:s?}", "rc", rc, "err", err,
                          "content", a.content, "provider", a.provider, "model", a.model, "confidence",
                          isnan(a.confidence) ? json_null() : json_real(a.confidence), "unsure", a.unsure,
                          "prompt_tokens", a.prompt_tokens, "completion_tokens", a.completion_tokens,
                          "attempts", att ? att : json_array(), "deltas", p->deltas);
    llm_answer_free(&a);
    free(schema);
    return o;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: llm_probe CONFIG REQUESTS.json\n");
        return 2;
    }
    core_config cfg;
    char err[1024];
    core_config_defaults(&cfg);
    if (core_config_load(&cfg, argv[1], true, err, sizeof err) || llm_config_check(&cfg, err, sizeof err)) {
        fprintf(stderr, "llm_probe: %s\n", err);
        core_config_free(&cfg);
        return 2;
    }
    json_error_t je;
    json_t *reqs = json_load_file(argv[2], 0, &je);
    if (!reqs) {
        fprintf(stderr, "llm_probe: %s:%d: %s\n", argv[2], je.line, je.text);
        core_config_free(&cfg);
        return 2;
    }
    if (json_is_object(reqs)) {
        json_t *one = json_array();
        json_array_append_new(one, reqs);
        reqs = one;
    }
    probe p = {.sent = json_array()};
    llm *l;
    if (llm_new(&cfg, cfg.state_dir, on_sent, &p, &l, err, sizeof err)) {
        fprintf(stderr, "llm_probe: %s\n", err);
        return 2;
    }
    json_t *out = json_array();
    size_t i;
    const json_t *q;
    json_array_foreach(reqs, i, q)
    {
        json_array_clear(p.sent);
        json_t *res = run_one(l, q, &p);
        json_object_set_new(res, "sent", json_deep_copy(p.sent));
        json_array_append_new(out, res);
    }
    char *st = llm_status_json(l);
    json_t *status = st ? json_loads(st, 0, NULL) : NULL;
    free(st);
    json_t *all = json_pack("{s:o, s:o}", "results", out, "status", status ? status : json_null());
    json_dumpf(all, stdout, JSON_INDENT(1));
    putchar('\n');
    json_decref(all);
    json_decref(reqs);
    json_decref(p.sent);
    free(p.deltas);
    llm_free(l);
    core_config_free(&cfg);
    return 0;
}
