/* propose_llm.c: candidates from the cell's language model. The prompt holds
 * the space (knobs, ranges, the incumbent), the run's history (values ->
 * fitness, decision) and knowledge snippets (mem_know_search on the knob
 * and space names) labelled K1..Kn; the answer is schema-constrained JSON
 * {"candidates":[{"values":{"knob":"text"},"rationale","cites":["K1"]}]}.
 * Every value is parsed with the knob's syntax and checked against its
 * range: an invalid one is dropped (the knob keeps the incumbent's value)
 * and recorded with the candidate, as are the rationale and the sources it
 * cites. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evolve/run_int.h"
#include "llm/llm.h"
#include "memory/memory.h"

#define KNOW_MAX 6
#define KNOW_TEXT 700
#define HISTORY_MAX 40

static const char system_prompt[] =
    "You tune a service's configuration knobs to improve a measured fitness. You are given the knobs "
    "(type, range, the current incumbent value), the candidates tried so far with their median fitness "
    "and decision, and knowledge snippets labelled K1..Kn. Propose new candidates that are likely to beat "
    "the incumbent, each value written in the knob's own syntax (sizes like 256MB, durations like 5min, "
    "enum choices as listed) and within its range; do not repeat tried values. Give a short rationale for "
    "each and cite the snippets (K1, ...) it relies on. Answer only with the JSON the schema asks for.";

static const char schema[] =
    "{\"type\":\"object\",\"properties\":{\"candidates\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
    "\"properties\":{\"values\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}},"
    "\"rationale\":{\"type\":\"string\"},\"cites\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}},"
    "\"required\":[\"values\",\"rationale\"]}}},\"required\":[\"candidates\"]}";

static const char *type_name(evolve_knob_type t)
{
    static const char *n[] = {"int", "float", "size", "duration", "enum", "bool"};
    return (unsigned)t < 6 ? n[t] : "?";
}

static json_t *knobs_json(const evolve_space *s, const double *inc)
{
    json_t *a = json_array();
    for (int i = 0; i < s->nknobs; i++) {
        const evolve_knob *k = &s->knobs[i];
        char lo[64], hi[64], cur[64];
        evolve_knob_format(k, k->min, lo, sizeof lo);
        evolve_knob_format(k, k->max, hi, sizeof hi);
        evolve_knob_format(k, inc[i], cur, sizeof cur);
        json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "name", k->name, "key", k->key, "type", type_name(k->type),
                              "incumbent", isfinite(inc[i]) ? cur : "(unset: the service's default)");
        if (k->type == EVOLVE_KNOB_ENUM || k->type == EVOLVE_KNOB_BOOL) {
            json_t *ch = json_array();
            for (int j = 0; j < k->nchoices; j++)
                json_array_append_new(ch, json_string(k->choices[j]));
            json_object_set_new(o, "choices", ch);
        } else {
            json_object_set_new(o, "min", json_string(lo));
            json_object_set_new(o, "max", json_string(hi));
        }
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *history_json(const json_t *trials)
{
    json_t *a = json_array();
    size_t n = json_array_size(trials), from = n > HISTORY_MAX ? n - HISTORY_MAX : 0;
    for (size_t i = from; i < n; i++) {
        const json_t *t = json_array_get(trials, i);
        json_array_append_new(a, json_pack("{s:O,s:O,s:O,s:O}", "values", json_object_get(t, "values"),
                                           "median_fitness", json_object_get(t, "median") ?: json_null(),
                                           "incumbent_median", json_object_get(t, "incumbent_median") ?: json_null(),
                                           "decision", json_object_get(t, "decision") ?: json_null()));
    }
    return a;
}

/* Knowledge snippets K1..Kn (and their sources, for the record). */
static json_t *knowledge(evolve_cell *c, const evolve_space *s, json_t **sources)
{
    json_t *a = json_array();
    *sources = json_array();
    if (!c->o.know)
        return a;
    char q[1024];
    size_t at = (size_t)snprintf(q, sizeof q, "%s", s->name);
    for (int i = 0; i < s->nknobs && at < sizeof q; i++)
        at += (size_t)snprintf(q + at, sizeof q - at, " %s", s->knobs[i].key);
    mem_hit *h = NULL;
    size_t n = 0;
    char err[256];
    if (mem_know_search(c->o.know, q, MEM_KNOW_HYBRID, KNOW_MAX, &h, &n, err, sizeof err) != 0)
        return a;
    for (size_t i = 0; i < n; i++) {
        char ref[16], text[KNOW_TEXT + 1];
        snprintf(ref, sizeof ref, "K%zu", i + 1);
        snprintf(text, sizeof text, "%s", h[i].text ? h[i].text : "");
        json_array_append_new(a, json_pack("{s:s,s:s,s:s}", "ref", ref, "source", h[i].source ?: "",
                                           "text", text));
        json_array_append_new(*sources, json_pack("{s:s,s:s,s:s}", "ref", ref, "source", h[i].source ?: "",
                                                  "title", h[i].title ?: ""));
    }
    mem_know_hits_free(h, n);
    return a;
}

static int check_answer(void *ud, const char *content, char *why, size_t whylen)
{
    (void)ud;
    json_t *o = json_loads(content, 0, NULL);
    bool ok = json_is_array(json_object_get(o, "candidates"));
    json_decref(o);
    if (!ok)
        snprintf(why, whylen, "no candidates array");
    return ok ? LLM_OK : LLM_INVALID;
}

/* One candidate of the answer into x (from the incumbent) and its record. */
static json_t *candidate(const evolve_space *s, const double *inc, const json_t *cand, const json_t *sources,
                         double *x)
{
    json_t *dropped = json_array(), *cites = json_array();
    for (int i = 0; i < s->nknobs; i++)
        x[i] = inc[i];
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(cand, "values"), name, v) {
        int i = 0;
        while (i < s->nknobs && strcmp(s->knobs[i].name, name) && strcmp(s->knobs[i].key, name))
            i++;
        char why[400];
        double val;
        if (i == s->nknobs) {
            snprintf(why, sizeof why, "%s: not a knob of the space", name);
        } else if (!json_is_string(v)) {
            snprintf(why, sizeof why, "%s: not a text value", name);
        } else if (evolve_knob_parse(&s->knobs[i], json_string_value(v), &val, why, sizeof why) == 0) {
            if (val >= s->knobs[i].min && val <= s->knobs[i].max) {
                x[i] = val;
                continue;
            }
            snprintf(why, sizeof why, "%s: %s is outside its range", name, json_string_value(v));
        }
        json_array_append_new(dropped, json_string(why));
    }
    size_t j;
    json_t *c;
    json_array_foreach(json_object_get(cand, "cites"), j, c) {
        size_t k;
        json_t *src;
        json_array_foreach(sources, k, src) if (json_is_string(c) &&
                                                !strcmp(json_string_value(c),
                                                        json_string_value(json_object_get(src, "ref"))))
            json_array_append(cites, src);
    }
    for (int i = 0; i < s->nknobs; i++)
        if (!isfinite(x[i]))
            json_array_append_new(dropped, json_pack("s++", s->knobs[i].name, ": no value (unset in the file ",
                                                     "and not proposed)"));
    const char *rat = json_string_value(json_object_get(cand, "rationale"));
    return json_pack("{s:s,s:o,s:o}", "rationale", rat ? rat : "", "cites", cites, "dropped", dropped);
}

int evolve_propose_llm(evolve_cell *c, const evolve_space *s, const double *incumbent, const json_t *history,
                       double (*x)[EVOLVE_MAX_KNOBS], json_t **info, int max, char *err, size_t errlen)
{
    if (!llm_available(c->o.llm)) {
        snprintf(err, errlen, "no model is configured");
        return -ENOENT;
    }
    json_t *sources;
    json_t *know = knowledge(c, s, &sources);
    json_t *prompt = json_pack("{s:s,s:s,s:o,s:o,s:o,s:i}", "space", s->name, "goal",
                               s->minimize ? "minimise the fitness" : "maximise the fitness", "knobs",
                               knobs_json(s, incumbent), "history", history_json(history), "knowledge", know,
                               "candidates_wanted", max);
    char *user = json_dumps(prompt, JSON_INDENT(1));
    json_decref(prompt);
    llm_request r = {.purpose = "evolve", .system = system_prompt, .user = user ? user : "",
                     .schema_name = "evolve_candidates", .schema = schema, .max_tokens = 1200,
                     .validate = check_answer};
    llm_answer a = {0};
    int rc = llm_complete(c->o.llm, &r, &a, err, errlen);
    free(user);
    int n = 0;
    if (rc == 0) {
        json_t *o = json_loads(a.content ? a.content : "", 0, NULL);
        json_t *cands = json_object_get(o, "candidates");
        size_t i;
        json_t *cand;
        json_array_foreach(cands, i, cand) {
            if (n >= max)
                break;
            info[n] = candidate(s, incumbent, cand, sources, x[n]);
            json_object_set_new(info[n], "model", json_string(a.model ? a.model : "?"));
            bool complete = true;
            for (int k = 0; k < s->nknobs; k++)
                complete &= isfinite(x[n][k]) != 0;
            if (complete)
                n++;
            else
                json_decref(info[n]);
        }
        if (!n)
            snprintf(err, errlen, "the model's answer had no usable candidate");
        json_decref(o);
    }
    llm_answer_free(&a);
    json_decref(sources);
    return rc ? rc : n;
}
