/* think.c: the model in diagnosis (issue 12, item 3). After the rules and
 * the remembered cases have diagnosed (diagnose.c), a language model, when
 * one is configured, is asked for hypotheses, a plain-language explanation
 * whose every claim cites a record of the prompt (E: the signature's
 * evidence, R: the rules' evidence, C: remembered cases, K: knowledge
 * chunks) and typed actions. Its answer is validated (refs, fault types,
 * actions parsed, on a known service and within the static safety policy;
 * a disagreement with the rules without cited evidence is unsure) and
 * merged: the rules' fault type and component stay, a disagreement lowers
 * the confidence and is shown, the model's actions come after the rules'
 * marked "by":"model". With no model, or when it fails, the diagnosis is
 * the rules' with only "model" saying why it is absent. docs/brain.md
 * ("The model in diagnosis") documents it. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brain/brain_int.h"
#include "llm/llm.h"

/* ---- small readers ---------------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static void cut(char *s, size_t max)
{
    if (strlen(s) > max) {
        s[max] = 0;
        memcpy(s + max - 3, "...", 3);
    }
    for (; *s; s++)
        if ((unsigned char)*s < 0x20)
            *s = ' ';
}

/* ---- the records and their refs ----------------------------------------------------- */

static void add_record(json_t *recs, char letter, int *n, json_t *rec, const char *text)
{
    char ref[16], buf[BRAIN_THINK_TEXT_MAX + 1];
    snprintf(ref, sizeof ref, "%c%d", letter, ++*n);
    snprintf(buf, sizeof buf, "%s", text ? text : "");
    cut(buf, BRAIN_THINK_TEXT_MAX);
    json_object_set_new(rec, "ref", json_string(ref));
    json_object_set_new(rec, "text", json_string(buf));
    json_array_append_new(recs, rec);
}

/* The signature's lists, in the order the prompt shows them. */
static const char *const SIG_LISTS[] = {"exits",   "probes",       "kernel",  "logs",     "log_tail", "changes",
                                        "anomalies", "ports", "dependencies", "filesystems", "cpu_top", NULL};

static void sig_records(json_t *recs, const json_t *sig, int *n)
{
    for (int l = 0; SIG_LISTS[l]; l++) {
        json_t *a = json_object_get(sig, SIG_LISTS[l]);
        size_t i;
        json_t *e;
        json_array_foreach(a, i, e) {
            if (i >= BRAIN_THINK_PER_LIST || *n >= BRAIN_THINK_SIG_MAX)
                break;
            json_t *rec = json_pack("{s:s, s:s, s:i}", "type", "signature", "field", SIG_LISTS[l], "index", (int)i);
            json_t *ts = json_object_get(e, "ts");
            if (json_is_integer(ts))
                json_object_set(rec, "ts", ts);
            json_t *id = json_object_get(e, "event");
            if (json_is_integer(id))
                json_object_set(rec, "event", id);
            char *text = json_is_string(e) ? strdup(json_string_value(e)) : json_dumps(e, JSON_COMPACT);
            char label[BRAIN_THINK_TEXT_MAX + 40];
            snprintf(label, sizeof label, "%s: %s", SIG_LISTS[l], text ? text : "?");
            free(text);
            add_record(recs, 'E', n, rec, label);
        }
    }
    static const char *const objs[] = {"pressure", "resources", NULL};
    for (int k = 0; objs[k]; k++) {
        json_t *o = json_object_get(sig, objs[k]);
        if (!json_is_object(o) || !json_object_size(o))
            continue;
        char *text = json_dumps(o, JSON_COMPACT);
        char label[BRAIN_THINK_TEXT_MAX + 40];
        snprintf(label, sizeof label, "%s: %s", objs[k], text ? text : "?");
        free(text);
        add_record(recs, 'E', n, json_pack("{s:s, s:s}", "type", "signature", "field", objs[k]), label);
    }
}

json_t *brain_think_records(const json_t *sig, const json_t *diag, const mem_hit *know, size_t nknow)
{
    json_t *recs = json_array();
    int n = 0;
    sig_records(recs, sig, &n);
    n = 0;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(diag, "evidence"), i, e) {
        char label[BRAIN_THINK_TEXT_MAX + 40];
        snprintf(label, sizeof label, "%s: %s", jstr(e, "kind"), jstr(e, "text"));
        add_record(recs, 'R', &n, json_pack("{s:s, s:i}", "type", "rule_evidence", "index", (int)i), label);
    }
    n = 0;
    json_array_foreach(json_object_get(diag, "cases"), i, e) {
        char *fixed = json_dumps(json_object_get(e, "fixed_by"), JSON_COMPACT);
        char label[BRAIN_THINK_TEXT_MAX + 40];
        snprintf(label, sizeof label, "case %lld (incident %lld, similarity %.2f): %s of %s, fixed by %s (%lld of %lld)",
                 (long long)json_integer_value(json_object_get(e, "case")),
                 (long long)json_integer_value(json_object_get(e, "incident")),
                 json_number_value(json_object_get(e, "similarity")), jstr(e, "fault_type"), jstr(e, "component"),
                 fixed ? fixed : "[]", (long long)json_integer_value(json_object_get(e, "fixed")),
                 (long long)json_integer_value(json_object_get(e, "tried")));
        free(fixed);
        add_record(recs, 'C', &n,
                   json_pack("{s:s, s:O, s:O}", "type", "case", "id", json_object_get(e, "case") ? json_object_get(e, "case") : json_null(),
                             "incident", json_object_get(e, "incident") ? json_object_get(e, "incident") : json_null()),
                   label);
    }
    n = 0;
    for (size_t k = 0; k < nknow; k++) {
        const mem_hit *h = &know[k];
        char label[BRAIN_THINK_TEXT_MAX + 40];
        snprintf(label, sizeof label, "[%s] %s", h->title && *h->title ? h->title : (h->source ? h->source : "?"),
                 h->text ? h->text : "");
        add_record(recs, 'K', &n,
                   json_pack("{s:s, s:I, s:I, s:s}", "type", "chunk", "id", (json_int_t)h->chunk, "doc",
                             (json_int_t)h->doc, "source", h->source ? h->source : ""),
                   label);
    }
    return recs;
}

static const json_t *record_of(const json_t *recs, const char *ref)
{
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r) {
        if (ref && !strcmp(jstr(r, "ref"), ref))
            return r;
    }
    return NULL;
}

/* ---- the prompt ------------------------------------------------------------------------ */

const char brain_think_system[] =
    "You are the diagnosis assistant of IPPOC, a self-healing agent on one Linux server. Rules have already "
    "diagnosed the incident; you add hypotheses and a short explanation grounded in the evidence. Every claim "
    "and every hypothesis cites the references (E1, R2, C1, K3, ...) of the records it rests on, and only those "
    "given. Do not contradict the rules without citing evidence. Propose only actions of the typed list given, "
    "never shell commands. Answer with JSON only, per the schema.";

static void appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0 || !*buf)
        return;
    if (*len + (size_t)need + 1 > *cap) {
        size_t nc = (*len + (size_t)need + 1) * 2;
        char *nb = realloc(*buf, nc);
        if (!nb) {
            free(*buf);
            *buf = NULL;
            return;
        }
        *buf = nb;
        *cap = nc;
    }
    va_start(ap, fmt);
    vsnprintf(*buf + *len, *cap - *len, fmt, ap);
    va_end(ap);
    *len += (size_t)need;
}

static void section(char **b, size_t *len, size_t *cap, const json_t *recs, char letter, const char *title)
{
    bool any = false;
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r) {
        if (jstr(r, "ref")[0] != letter)
            continue;
        if (!any)
            appendf(b, len, cap, "\n%s:\n", title);
        any = true;
        appendf(b, len, cap, "%s %s\n", jstr(r, "ref"), jstr(r, "text"));
    }
}

char *brain_think_prompt(const json_t *sig, const json_t *diag, const json_t *recs)
{
    size_t len = 0, cap = 4096;
    char *b = malloc(cap);
    if (!b)
        return NULL;
    b[0] = 0;
    const char *svc = jstr(sig, "service");
    appendf(&b, &len, &cap, "Incident %lld on %s (trigger: %s).\n", (long long)json_integer_value(json_object_get(diag, "incident")),
            *svc ? svc : "the machine", *jstr(sig, "trigger") ? jstr(sig, "trigger") : "user");
    appendf(&b, &len, &cap, "The rules' diagnosis: fault_type %s, component %s, confidence %.2f. Root cause: %s\n",
            jstr(diag, "fault_type"), jstr(diag, "component"), json_number_value(json_object_get(diag, "confidence")),
            jstr(diag, "root_cause"));
    size_t i;
    json_t *a;
    appendf(&b, &len, &cap, "The rules propose:");
    json_array_foreach(json_object_get(diag, "proposed_actions"), i, a) {
        appendf(&b, &len, &cap, "%s \"%s\" on %s", i ? "," : "", jstr(a, "action"), jstr(a, "service"));
    }
    appendf(&b, &len, &cap, "%s\n", json_array_size(json_object_get(diag, "proposed_actions")) ? "" : " nothing");
    section(&b, &len, &cap, recs, 'E', "Evidence (the incident's signature)");
    section(&b, &len, &cap, recs, 'R', "The rules' evidence");
    section(&b, &len, &cap, recs, 'C', "Remembered cases");
    section(&b, &len, &cap, recs, 'K', "Knowledge");
    appendf(&b, &len, &cap, "\nFault types:");
    for (int k = 0; brain_fault_types[k]; k++)
        appendf(&b, &len, &cap, "%s %s", k ? "," : "", brain_fault_types[k]);
    appendf(&b, &len, &cap,
            "\nActions (heal's rule language, one per item, on a configured service): start, stop, restart, "
            "signal SIG, renice N, limit memory SIZE, limit cpu PERCENT, freeze, thaw, alert, restore PATH "
            "(one of the service's config files).\n"
            "Answer: hypotheses (fault_type, component, confidence 0..1, because: refs), explanation (claim, "
            "cites: refs) and actions ({action, service}).\n");
    return b;
}

const char brain_think_schema[] =
    "{\"type\":\"object\",\"required\":[\"hypotheses\",\"explanation\",\"actions\"],\"additionalProperties\":false,"
    "\"properties\":{"
    "\"hypotheses\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
    "\"required\":[\"fault_type\",\"component\",\"confidence\",\"because\"],\"properties\":{"
    "\"fault_type\":{\"type\":\"string\",\"enum\":[\"none\",\"crash\",\"bad_environment\",\"config_error\","
    "\"oom_kill\",\"memory_leak\",\"cpu_starvation\",\"disk_full\",\"inode_exhaustion\",\"fd_exhaustion\","
    "\"port_in_use\",\"dependency_down\",\"dns_failure\",\"credential_revoked\",\"permission_denied\","
    "\"io_error\",\"clock_jump\",\"error_storm\",\"unknown\"]},"
    "\"component\":{\"type\":\"string\"},\"confidence\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1},"
    "\"because\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}}},"
    "\"explanation\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"claim\",\"cites\"],"
    "\"properties\":{\"claim\":{\"type\":\"string\"},\"cites\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}}},"
    "\"actions\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"action\",\"service\"],"
    "\"properties\":{\"action\":{\"type\":\"string\"},\"service\":{\"type\":\"string\"}}}}}}";

/* ---- validation ---------------------------------------------------------------------------- */

static int bad(char *why, size_t n, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int bad(char *why, size_t n, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why && n)
        vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return rc;
}

/* Every ref of a (an array of strings) names a record; at least one when need. */
static int check_refs(const json_t *recs, const json_t *a, bool need, const char *where, char *why, size_t n)
{
    if (!json_is_array(a))
        return bad(why, n, LLM_INVALID, "%s: no array of refs", where);
    if (need && !json_array_size(a))
        return bad(why, n, LLM_INVALID, "%s cites no record", where);
    size_t i;
    json_t *r;
    json_array_foreach(a, i, r) {
        if (!json_is_string(r) || !record_of(recs, json_string_value(r)))
            return bad(why, n, LLM_INVALID, "%s cites '%.40s', which is no record of the prompt", where,
                       json_is_string(r) ? json_string_value(r) : "(not a string)");
    }
    return LLM_OK;
}

/* The hypothesis the model believes most (the first of the best), or NULL. */
static const json_t *top_hypothesis(const json_t *ans)
{
    const json_t *best = NULL;
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(ans, "hypotheses"), i, h) {
        if (!best || json_number_value(json_object_get(h, "confidence")) >
                         json_number_value(json_object_get(best, "confidence")))
            best = h;
    }
    return best;
}

static bool agrees(const json_t *h, const json_t *diag)
{
    const char *c = jstr(h, "component");
    return !strcmp(jstr(h, "fault_type"), jstr(diag, "fault_type")) && (!*c || !strcmp(c, jstr(diag, "component")));
}

/* One action item: {"action","service"} (or a bare text for the diagnosed
 * component). Its text and service, or false. */
static bool action_item(const json_t *it, const json_t *diag, const char **text, const char **svc)
{
    if (json_is_string(it)) {
        *text = json_string_value(it);
        *svc = jstr(diag, "component");
        return true;
    }
    *text = json_string_value(json_object_get(it, "action"));
    *svc = json_string_value(json_object_get(it, "service"));
    if (*svc && !**svc)
        *svc = jstr(diag, "component");
    return *text && *svc;
}

static int check_action(const brain_think_check *c, const json_t *it, size_t k, char *why, size_t n)
{
    const char *text, *svc;
    if (!action_item(it, c->diagnosis, &text, &svc))
        return bad(why, n, LLM_INVALID, "action %zu: not {\"action\",\"service\"}", k + 1);
    const json_t *s = c->services ? json_object_get(c->services, svc) : NULL;
    if (c->services ? !s : strcmp(svc, jstr(c->diagnosis, "component")) != 0)
        return bad(why, n, LLM_INVALID, "action %zu ('%.80s'): '%.64s' is no configured service", k + 1, text, svc);
    heal_action a;
    char err[300];
    if (heal_action_parse_text(text, svc, &a, err, sizeof err) != 0)
        return bad(why, n, LLM_INVALID, "action %zu: not a typed action: %s", k + 1, err);
    const char *paths[32];
    int np = 0;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(s, "config_paths"), i, p) {
        if (np < 32 && json_is_string(p))
            paths[np++] = json_string_value(p);
    }
    if (heal_action_check(&a, s ? jstr(s, "allow") : NULL, paths, np, err, sizeof err) != 0)
        return bad(why, n, LLM_INVALID, "action %zu ('%.80s' on %.64s): refused by the safety policy: %s", k + 1,
                   text, svc, err);
    return LLM_OK;
}

int brain_think_validate(const brain_think_check *c, const char *content, char *why, size_t n)
{
    json_error_t jerr;
    json_t *ans = json_loads(content ? content : "", 0, &jerr);
    if (!json_is_object(ans)) {
        json_decref(ans);
        return bad(why, n, LLM_INVALID, "not a JSON object: %s", ans ? "another JSON value" : jerr.text);
    }
    int rc = LLM_OK;
    char where[64];
    json_t *hs = json_object_get(ans, "hypotheses"), *ex = json_object_get(ans, "explanation");
    json_t *acts = json_object_get(ans, "actions");
    if (!json_is_array(hs) || !json_is_array(ex) || (acts && !json_is_array(acts))) {
        rc = bad(why, n, LLM_INVALID, "hypotheses, explanation and actions must be arrays");
        goto out;
    }
    size_t i;
    json_t *e;
    json_array_foreach(hs, i, e) {
        const char *ft = json_string_value(json_object_get(e, "fault_type"));
        json_t *cf = json_object_get(e, "confidence");
        if (!brain_fault_type_valid(ft)) {
            rc = bad(why, n, LLM_INVALID, "hypothesis %zu: unknown fault type '%.40s'", i + 1, ft ? ft : "(none)");
            goto out;
        }
        if (!json_is_number(cf) || json_number_value(cf) < 0 || json_number_value(cf) > 1) {
            rc = bad(why, n, LLM_INVALID, "hypothesis %zu: confidence is not a number from 0 to 1", i + 1);
            goto out;
        }
        snprintf(where, sizeof where, "hypothesis %zu", i + 1);
        if ((rc = check_refs(c->records, json_object_get(e, "because"), false, where, why, n)) != LLM_OK)
            goto out;
    }
    json_array_foreach(ex, i, e) {
        const char *claim = json_string_value(json_object_get(e, "claim"));
        if (!claim || !*claim) {
            rc = bad(why, n, LLM_INVALID, "explanation %zu: no claim", i + 1);
            goto out;
        }
        snprintf(where, sizeof where, "claim %zu", i + 1);
        if ((rc = check_refs(c->records, json_object_get(e, "cites"), true, where, why, n)) != LLM_OK)
            goto out;
    }
    json_array_foreach(acts, i, e) {
        if ((rc = check_action(c, e, i, why, n)) != LLM_OK)
            goto out;
    }
    const json_t *top = top_hypothesis(ans);
    if (top && !agrees(top, c->diagnosis) && !json_array_size(json_object_get(top, "because")))
        rc = bad(why, n, LLM_UNSURE, "it says %s of %s where the rules say %s of %s, citing no evidence",
                 jstr(top, "fault_type"), *jstr(top, "component") ? jstr(top, "component") : "?",
                 jstr(c->diagnosis, "fault_type"), jstr(c->diagnosis, "component"));
out:
    json_decref(ans);
    return rc;
}

/* ---- merging ---------------------------------------------------------------------------------- */

static json_t *resolve(const json_t *recs, const json_t *refs)
{
    json_t *out = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(refs, i, r) {
        const json_t *rec = record_of(recs, json_string_value(r));
        if (rec)
            json_array_append_new(out, json_deep_copy(rec));
    }
    return out;
}

static bool proposed_already(const json_t *proposed, const char *text, const char *svc)
{
    size_t i;
    json_t *p;
    json_array_foreach(proposed, i, p) {
        if (!strcmp(jstr(p, "action"), text) && !strcmp(jstr(p, "service"), svc))
            return true;
    }
    return false;
}

static json_t *attempts_json(const char *attempts)
{
    json_t *a = attempts ? json_loads(attempts, 0, NULL) : NULL;
    if (!json_is_array(a)) {
        json_decref(a);
        a = json_array();
    }
    return a;
}

json_t *brain_think_merge(const json_t *diag, const json_t *recs, const char *content, const llm_answer *meta)
{
    json_t *ans = json_loads(content ? content : "", 0, NULL);
    if (!json_is_object(ans)) {
        json_decref(ans);
        return NULL;
    }
    json_t *out = json_deep_copy(diag);
    json_t *model = json_pack("{s:s, s:s}", "provider", meta && meta->provider ? meta->provider : "",
                              "model", meta && meta->model ? meta->model : "");
    json_object_set_new(model, "confidence",
                        meta && !isnan(meta->confidence) ? json_real(meta->confidence) : json_null());
    json_object_set_new(model, "unsure", json_boolean(meta && meta->unsure));
    json_object_set(model, "hypotheses", json_object_get(ans, "hypotheses"));
    json_t *expl = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(ans, "explanation"), i, e) {
        json_array_append_new(expl, json_pack("{s:s, s:O, s:o}", "claim", jstr(e, "claim"), "refs",
                                              json_object_get(e, "cites"), "cites",
                                              resolve(recs, json_object_get(e, "cites"))));
    }
    json_object_set_new(model, "explanation", expl);
    json_object_set_new(model, "attempts", attempts_json(meta ? meta->attempts : NULL));

    const json_t *top = top_hypothesis(ans);
    const char *agreement = !top ? "none" : agrees(top, diag) ? "agree" : "disagree";
    if (!strcmp(agreement, "disagree")) {
        double m = json_number_value(json_object_get(top, "confidence"));
        double conf = json_number_value(json_object_get(diag, "confidence"));
        double lowered = round(conf * (1 - BRAIN_THINK_DISAGREE * (m < 0 ? 0 : m > 1 ? 1 : m)) * 100) / 100;
        json_object_set_new(model, "rules_confidence", json_real(conf));
        json_object_set_new(model, "disagreement",
                            json_pack("{s:s, s:s, s:f, s:O, s:o, s:b}", "fault_type", jstr(top, "fault_type"),
                                      "component", *jstr(top, "component") ? jstr(top, "component")
                                                                           : jstr(diag, "component"),
                                      "confidence", m, "because", json_object_get(top, "because"), "evidence",
                                      resolve(recs, json_object_get(top, "because")), "cited",
                                      json_array_size(json_object_get(top, "because")) > 0));
        json_object_set_new(out, "confidence", json_real(lowered));
    }
    /* the model's actions, after the rules' (an unsure answer proposes nothing) */
    json_t *proposed = json_object_get(out, "proposed_actions");
    if (!json_is_array(proposed)) {
        proposed = json_array();
        json_object_set_new(out, "proposed_actions", proposed);
    }
    json_array_foreach(json_object_get(ans, "actions"), i, e) {
        const char *text, *svc;
        heal_action a;
        char err[200];
        if ((meta && meta->unsure) || !action_item(e, diag, &text, &svc) ||
            heal_action_parse_text(text, svc, &a, err, sizeof err) != 0 || proposed_already(proposed, text, svc))
            continue;
        json_array_append_new(proposed, json_pack("{s:s, s:s, s:s, s:s}", "action", text, "service", svc, "why",
                                                  "proposed by the model", "by", "model"));
    }
    json_object_set_new(out, "model", model);
    json_object_set_new(out, "agreement", json_string(agreement));
    json_decref(ans);
    return out;
}

void brain_think_absent(json_t *diag, const char *why, const char *attempts)
{
    json_t *m = json_pack("{s:s}", "absent", why ? why : "no model");
    if (attempts)
        json_object_set_new(m, "attempts", attempts_json(attempts));
    json_object_set_new(diag, "model", m);
}

/* ---- the services the model may name ----------------------------------------------------------- */

json_t *brain_think_services(const core_config *cfg)
{
    json_t *o = json_object();
    for (int i = 0; cfg && i < cfg->nraw; i++) {
        const core_kv *kv = &cfg->raw[i];
        if (strncmp(kv->section, "service.", 8) != 0 || !kv->section[8])
            continue;
        json_t *s = json_object_get(o, kv->section + 8);
        if (!s) {
            s = json_pack("{s:s, s:[]}", "allow", "", "config_paths");
            json_object_set_new(o, kv->section + 8, s);
        }
        if (!strcmp(kv->key, "config_path")) {
            json_array_append_new(json_object_get(s, "config_paths"), json_string(kv->value));
        } else if (!strcmp(kv->key, "allow")) {
            char buf[600];
            snprintf(buf, sizeof buf, "%s%s%s", jstr(s, "allow"), *jstr(s, "allow") ? ", " : "", kv->value);
            json_object_set_new(s, "allow", json_string(buf));
        }
    }
    return o;
}

/* ---- asking ---------------------------------------------------------------------------------------- */

static int validate_cb(void *ud, const char *content, char *why, size_t whylen)
{
    return brain_think_validate(ud, content, why, whylen);
}

static void link_knowledge(const brain_mind *m, uint64_t incident, const json_t *diag)
{
    const char *fault = jstr(diag, "fault_type");
    if (!m->know || !incident || !*fault || !strcmp(fault, "none"))
        return;
    char from[40], to[600], err[200];
    snprintf(from, sizeof from, "incident:%llu", (unsigned long long)incident);
    snprintf(to, sizeof to, "cause:%s", fault);
    if (mem_know_link(m->know, from, "caused_by", to, 1.0, err, sizeof err) != 0)
        log_debug("brain: knowledge link %s -> %s: %s", from, to, err);
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(diag, "proposed_actions"), i, a) {
        snprintf(to, sizeof to, "action:%s", jstr(a, "action"));
        if (mem_know_link(m->know, from, "fixed_by", to, 1.0, err, sizeof err) != 0)
            log_debug("brain: knowledge link %s -> %s: %s", from, to, err);
    }
}

void brain_think(const brain_mind *m, const brain_think_in *in, json_t *diag)
{
    int64_t left = in->deadline_mono - core_mono_ms();
    char why[400];
    if (!m || !m->llm || !llm_available(m->llm)) {
        brain_think_absent(diag, "no model is configured", NULL);
    } else if (left < BRAIN_THINK_MIN_MS) {
        snprintf(why, sizeof why, "not asked: %lld ms were left of the deliberation's deadline", (long long)left);
        brain_think_absent(diag, why, NULL);
    } else {
        mem_hit *hits = NULL;
        size_t nhits = 0;
        if (m->know) {
            char q[300], err[200];
            snprintf(q, sizeof q, "%s %s", jstr(diag, "component"), jstr(diag, "fault_type"));
            for (char *p = q; *p; p++)
                if (*p == '_')
                    *p = ' ';
            if (mem_know_search(m->know, q, MEM_KNOW_HYBRID, BRAIN_THINK_KNOW, &hits, &nhits, err, sizeof err) != 0)
                hits = NULL, nhits = 0; /* no store yet, or a stand-in: think without */
        }
        json_t *recs = brain_think_records(in->signature, diag, hits, nhits);
        mem_know_hits_free(hits, nhits);
        char *user = brain_think_prompt(in->signature, diag, recs);
        brain_think_check chk = {.records = recs, .diagnosis = diag, .services = in->services};
        llm_request r = {.purpose = "diagnose", .system = brain_think_system, .user = user,
                         .schema_name = "diagnosis", .schema = brain_think_schema, .incident = in->incident,
                         .max_tokens = 1024, .validate = validate_cb, .ud = &chk};
        llm_answer a;
        memset(&a, 0, sizeof a);
        char err[300] = "";
        int64_t t0 = core_mono_ms();
        int rc = user ? llm_complete(m->llm, &r, &a, err, sizeof err) : -ENOMEM;
        int64_t took = core_mono_ms() - t0;
        json_t *merged = NULL;
        if (rc != 0) {
            snprintf(why, sizeof why, "the model failed: %s", err[0] ? err : strerror(-rc));
            brain_think_absent(diag, why, a.attempts);
        } else if (took > left) {
            snprintf(why, sizeof why, "late: it answered in %lld ms, %lld ms were left of the deadline",
                     (long long)took, (long long)left);
            brain_think_absent(diag, why, a.attempts);
        } else if (brain_think_validate(&chk, a.content, why, sizeof why) == LLM_INVALID ||
                   !(merged = brain_think_merge(diag, recs, a.content, &a))) {
            char w2[460];
            snprintf(w2, sizeof w2, "its answer was refused: %s", why);
            brain_think_absent(diag, w2, a.attempts);
        } else {
            json_object_update(diag, merged);
        }
        json_decref(merged);
        llm_answer_free(&a);
        free(user);
        json_decref(recs);
    }
    link_knowledge(m, in->incident, diag);
}
