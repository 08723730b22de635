/* ask.c: answers a question from memory (POST /v1/ask, `ippoc ask`): the
 * question is understood without a model (ask_intent.c), the records are
 * gathered and the structured answer written from templates (ask_answer.c,
 * ask_gather.c); with a model, the same records go to llm_complete (purpose
 * "ask", schema {answer, cites}) and its prose is used only when every ref it
 * cites was given; otherwise the structured answer stands and "model" says
 * why. See docs/ask.md for the answer's JSON. */
#include "brain/ask_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llm/llm.h"

#define ASK_DIR_BUDGET_MS 2000 /* directory sizes: at most this long */
#define ASK_PROMPT_RECORDS 40  /* records shown to a model */

static const char ASK_SCHEMA[] =
    "{\"type\":\"object\",\"properties\":{\"answer\":{\"type\":\"string\"},"
    "\"cites\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}},"
    "\"required\":[\"answer\",\"cites\"],\"additionalProperties\":false}";

static const char ASK_SYSTEM[] =
    "You answer an operator's question about this Linux server from the records given, and from nothing "
    "else. Each record has a ref such as event:12 or incident:4. Answer in a few plain sentences; after "
    "each claim put the refs it rests on in square brackets, e.g. [event:12]. Cite only refs that are "
    "given. If the records do not answer the question, say so. Reply with JSON: "
    "{\"answer\": \"...\", \"cites\": [\"ref\", ...]}.";

/* ---- the model ---------------------------------------------------------------------- */

typedef struct ask_check {
    const json_t *records;
} ask_check;

static bool known_ref(const json_t *records, const char *ref)
{
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r)
        if (!strcmp(json_string_value(json_object_get(r, "ref")), ref))
            return true;
    return false;
}

/* "event:1,event:2" written without spaces: every piece a given ref. */
static bool known_pieces(const json_t *records, const char *t)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", t);
    char *save = NULL;
    int n = 0;
    for (char *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save), n++)
        if (!known_ref(records, p))
            return false;
    return n > 1;
}

/* The validator: {answer: non-empty string, cites: given refs only}; refs in
 * square brackets in the answer must be given too. */
static int check_answer(void *ud, const char *content, char *why, size_t whylen)
{
    const ask_check *k = ud;
    json_error_t je;
    json_t *o = json_loads(content, 0, &je);
    int rc = LLM_OK;
    const char *ans = json_string_value(json_object_get(o, "answer"));
    const json_t *cites = json_object_get(o, "cites");
    if (!json_is_object(o)) {
        snprintf(why, whylen, "the answer is not a JSON object: %s", je.text);
        rc = LLM_INVALID;
    } else if (!ans || !*ans) {
        snprintf(why, whylen, "\"answer\" is missing or empty");
        rc = LLM_INVALID;
    } else if (!json_is_array(cites)) {
        snprintf(why, whylen, "\"cites\" is not an array");
        rc = LLM_INVALID;
    }
    size_t i;
    json_t *c;
    json_array_foreach(rc == LLM_OK ? cites : NULL, i, c) {
        if (!json_is_string(c) || !known_ref(k->records, json_string_value(c))) {
            snprintf(why, whylen, "cites a record that was not given: %.120s",
                     json_is_string(c) ? json_string_value(c) : "(not a string)");
            rc = LLM_INVALID;
            break;
        }
    }
    /* [kind:id] in the prose */
    for (const char *p = rc == LLM_OK ? ans : NULL; p && (p = strchr(p, '[')); p++) {
        const char *e = strchr(p, ']');
        if (!e)
            break;
        char inner[512];
        snprintf(inner, sizeof inner, "%.*s", (int)(e - p - 1 < 511 ? e - p - 1 : 511), p + 1);
        for (char *t = inner, *next; t; t = next) { /* refs are joined by ", " (labels hold bare commas) */
            next = strstr(t, ", ");
            if (next)
                *next = 0, next += 2;
            while (*t == ' ')
                t++;
            size_t l = strlen(t);
            while (l && t[l - 1] == ' ')
                t[--l] = 0;
            if (strchr(t, ':') && !known_ref(k->records, t) && !known_pieces(k->records, t)) {
                snprintf(why, whylen, "the answer cites a record that was not given: %.120s", t);
                rc = LLM_INVALID;
                break;
            }
        }
        if (rc != LLM_OK)
            break;
    }
    json_decref(o);
    return rc;
}

static char *prompt_text(const ask_ctx *c, const char *structured)
{
    json_t *recs = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(c->records, i, r) {
        if (i >= ASK_PROMPT_RECORDS)
            break;
        json_array_append_new(recs, json_pack("{s:O, s:O, s:O}", "ref", json_object_get(r, "ref"), "ts",
                                              json_object_get(r, "ts"), "summary", json_object_get(r, "summary")));
    }
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:s}", "question", c->question, "kind", brain_ask_kinds[c->q.kind],
                          "component", c->q.component, "records", recs, "summary_without_model", structured);
    char *t = o ? json_dumps(o, JSON_INDENT(1)) : NULL;
    json_decref(o);
    return t;
}

/* The model's answer into *answer (malloc'd) and the "model" object. */
static json_t *ask_model(ask_ctx *c, const char *structured, char **answer)
{
    *answer = NULL;
    if (!llm_available(c->m->llm))
        return json_pack("{s:b, s:s}", "used", 0, "why", "no model is configured");
    if (!json_array_size(c->records))
        return json_pack("{s:b, s:s}", "used", 0, "why", "no records to ground an answer in");
    char *user = prompt_text(c, structured);
    ask_check k = {.records = c->records};
    llm_request r = {.purpose = "ask", .system = ASK_SYSTEM, .user = user ? user : "", .schema_name = "ask_answer",
                     .schema = ASK_SCHEMA, .max_tokens = 800, .validate = check_answer, .ud = &k};
    llm_answer a = {0};
    char err[512] = "";
    int rc = llm_complete(c->m->llm, &r, &a, err, sizeof err);
    free(user);
    json_t *m;
    if (rc == 0 && a.content && check_answer(&k, a.content, err, sizeof err) == LLM_OK) {
        json_t *o = json_loads(a.content, 0, NULL);
        *answer = strdup(json_string_value(json_object_get(o, "answer")));
        m = json_pack("{s:b, s:s, s:s, s:O}", "used", 1, "provider", a.provider ? a.provider : "?", "model",
                      a.model ? a.model : "?", "cites", json_object_get(o, "cites"));
        if (!isnan(a.confidence))
            json_object_set_new(m, "confidence", json_real(a.confidence));
        if (a.unsure)
            json_object_set_new(m, "unsure", json_true());
        json_decref(o);
    } else {
        m = json_pack("{s:b, s:s}", "used", 0, "why",
                      rc == 0 ? err : rc == -ENOENT ? "no model is configured" : err[0] ? err : strerror(-rc));
    }
    if (a.attempts) {
        json_t *at = json_loads(a.attempts, 0, NULL);
        if (at)
            json_object_set_new(m, "attempts", at);
    }
    llm_answer_free(&a);
    return m;
}

/* ---- gathering the context ------------------------------------------------------------ */

static json_t *heal_list(ask_ctx *c, char *(*fn)(heal_engine *), const char *key)
{
    char *t = c->m->heal ? fn(c->m->heal) : NULL;
    json_t *o = t ? json_loads(t, 0, NULL) : NULL;
    free(t);
    json_t *a = json_incref(json_object_get(o, key));
    json_decref(o);
    return json_is_array(a) ? a : (json_decref(a), json_array());
}

static json_t *time_json(const brain_ask_q *q)
{
    if (!q->at_ms && !q->from_ms)
        return json_null();
    json_t *o = json_pack("{s:s}", "text", q->time_text);
    if (q->at_ms)
        json_object_set_new(o, "at", json_integer(q->at_ms));
    if (q->from_ms) {
        json_object_set_new(o, "from", json_integer(q->from_ms));
        json_object_set_new(o, "to", json_integer(q->to_ms));
    }
    return o;
}

static char *join(const json_t *parts)
{
    size_t len = 1, i;
    json_t *p;
    json_array_foreach(parts, i, p) len += strlen(json_string_value(p)) + 1;
    char *s = malloc(len);
    if (!s)
        return NULL;
    s[0] = 0;
    size_t at = 0;
    json_array_foreach(parts, i, p) at += (size_t)snprintf(s + at, len - at, "%s%s", at ? " " : "", json_string_value(p));
    return s;
}

char *brain_ask_at_json(brain *b, const char *question, int64_t at_ms, int64_t now_ms, int *status, char *err,
                        size_t errlen)
{
    if (!b) {
        *status = 503;
        snprintf(err, errlen, "the brain is not running");
        return NULL;
    }
    ask_ctx c = {.b = b, .m = brain_mind_of(b), .question = question, .now_ms = now_ms,
                 .deadline_mono = brain_sig_mono_ms() + ASK_DIR_BUDGET_MS};
    c.logs = brain_ask_sources(b, c.dpkg_log, sizeof c.dpkg_log);
    c.services = heal_list(&c, heal_engine_services_json, "services");
    c.incidents = heal_list(&c, heal_engine_incidents_json, "incidents");
    const char *names[64];
    int nn = 0;
    size_t i;
    json_t *s;
    json_array_foreach(c.services, i, s) if (nn < 64 && json_is_string(json_object_get(s, "name")))
        names[nn++] = json_string_value(json_object_get(s, "name"));
    int rc = brain_ask_parse(question, now_ms, names, nn, &c.q, err, errlen);
    if (rc) {
        json_decref(c.services);
        json_decref(c.incidents);
        *status = rc == -ENOMEM ? 503 : 400;
        return NULL;
    }
    if (at_ms && !c.q.at_ms && !c.q.from_ms) { /* the body's "at": when the question names no time */
        c.q.at_ms = at_ms;
        snprintf(c.q.time_text, sizeof c.q.time_text, "at the time given");
    }
    c.records = json_array();
    c.notes = json_array();
    json_t *parts = json_array();
    ask_answer(&c, parts);
    char *structured = join(parts);
    char *prose = NULL;
    json_t *model = ask_model(&c, structured ? structured : "", &prose);
    json_t *out = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:O, s:o, s:O}", "question", question, "kind",
                            brain_ask_kinds[c.q.kind], "component", c.q.component, "time", time_json(&c.q), "answer",
                            prose ? prose : structured ? structured : "", "structured",
                            structured ? structured : "", "records", c.records, "model", model, "notes", c.notes);
    if (out && c.q.path[0])
        json_object_set_new(out, "path", json_string(c.q.path));
    char *text = out ? json_dumps(out, JSON_COMPACT) : NULL;
    json_decref(out);
    json_decref(parts);
    json_decref(c.records);
    json_decref(c.notes);
    json_decref(c.services);
    json_decref(c.incidents);
    free(structured);
    free(prose);
    if (!text) {
        *status = 503;
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *status = 200;
    return text;
}

char *brain_ask_json(brain *b, const char *question, int64_t now_ms, int *status, char *err, size_t errlen)
{
    return brain_ask_at_json(b, question, 0, now_ms, status, err, errlen);
}
