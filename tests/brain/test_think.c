/* test_think.c: the model in diagnosis (think.c) without a model server:
 * the prompt's records and their refs (E, R, C, K), the validation of
 * answers (bad refs, unknown fault types, unsafe or free-form actions,
 * actions on unknown services, a disagreement without evidence is unsure),
 * the merge (agreement, disagreement lowering the confidence, cites
 * resolved to records, the model's actions after the rules'), and that
 * without a model the diagnosis is the rules' but for "model". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "brain/brain_int.h"
#include "llm/llm.h"
#include "brain_test_util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct world {
    json_t *sig, *diag, *recs, *svcs;
    brain_case_hit hit;
    mem_hit know;
} world;

/* config_error's signature, diagnosed with one remembered case, and one
 * knowledge chunk; services web (config_path /etc/web.conf) and db. */
static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    w->sig = btu_fixture("config_error");
    w->hit = (brain_case_hit){.id = 3, .incident = 7, .similarity = 0.5, .fixed = 1, .tried = 1};
    snprintf(w->hit.fault_type, sizeof w->hit.fault_type, "config_error");
    snprintf(w->hit.component, sizeof w->hit.component, "web");
    w->hit.fixed_by = json_pack("[s, s]", "restore /etc/web.conf", "restart");
    w->diag = brain_diagnose(w->sig, &w->hit, 1);
    w->know = (mem_hit){.chunk = 41, .doc = 5, .source = "/docs/web.md", .title = "web runbook",
                        .text = "web refuses to start when listen is not a port number"};
    w->recs = brain_think_records(w->sig, w->diag, &w->know, 1);
    core_config cfg;
    core_config_defaults(&cfg);
    char err[256];
    assert_int_equal(core_config_load_string(&cfg,
                                             "[service.web]\ncommand = /bin/true\nconfig_path = /etc/web.conf\n"
                                             "[service.db]\ncommand = /bin/true\nallow = restart, alert\n",
                                             "test.conf", err, sizeof err),
                     0);
    w->svcs = brain_think_services(&cfg);
    core_config_free(&cfg);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    json_decref(w->sig);
    json_decref(w->diag);
    json_decref(w->recs);
    json_decref(w->svcs);
    json_decref(w->hit.fixed_by);
    free(w);
    return 0;
}

static const json_t *rec(const world *w, const char *ref)
{
    size_t i;
    json_t *r;
    json_array_foreach(w->recs, i, r) {
        if (!strcmp(json_string_value(json_object_get(r, "ref")), ref))
            return r;
    }
    return NULL;
}

static void test_records_and_prompt(void **state)
{
    world *w = *state;
    assert_string_equal(json_string_value(json_object_get(w->diag, "fault_type")), "config_error");
    /* the signature's entries in list order: exits, logs, changes, filesystems, then pressure, resources */
    const json_t *e1 = rec(w, "E1"), *e3 = rec(w, "E3");
    assert_non_null(e1);
    assert_string_equal(json_string_value(json_object_get(e1, "field")), "exits");
    assert_int_equal(json_integer_value(json_object_get(e1, "ts")), 1733300000000LL);
    assert_string_equal(json_string_value(json_object_get(e3, "field")), "changes");
    assert_non_null(strstr(json_string_value(json_object_get(e3, "text")), "/etc/web.conf"));
    assert_non_null(rec(w, "E6"));
    assert_null(rec(w, "E7"));
    /* the rules' evidence, the case, the chunk */
    assert_non_null(rec(w, "R1"));
    const json_t *c1 = rec(w, "C1"), *k1 = rec(w, "K1");
    assert_int_equal(json_integer_value(json_object_get(c1, "id")), 3);
    assert_int_equal(json_integer_value(json_object_get(k1, "id")), 41);
    assert_null(rec(w, "C2"));
    char *p = brain_think_prompt(w->sig, w->diag, w->recs);
    assert_non_null(p);
    assert_non_null(strstr(p, "fault_type config_error, component web"));
    assert_non_null(strstr(p, "\nE1 exits: "));
    assert_non_null(strstr(p, "\nE3 changes: "));
    assert_non_null(strstr(p, "\nR1 "));
    assert_non_null(strstr(p, "\nC1 case 3 (incident 7"));
    assert_non_null(strstr(p, "\nK1 [web runbook] web refuses"));
    assert_non_null(strstr(p, "credential_revoked"));
    free(p);
    /* the schema is JSON */
    json_t *s = json_loads(brain_think_schema, 0, NULL);
    assert_non_null(s);
    json_decref(s);
}

static int check(world *w, const char *answer, char *why, size_t n)
{
    brain_think_check c = {.records = w->recs, .diagnosis = w->diag, .services = w->svcs};
    why[0] = 0;
    return brain_think_validate(&c, answer, why, n);
}

#define GOOD                                                                                                     \
    "{\"hypotheses\":[{\"fault_type\":\"config_error\",\"component\":\"web\",\"confidence\":0.9,"                \
    "\"because\":[\"E2\",\"E3\"]}],"                                                                             \
    "\"explanation\":[{\"claim\":\"/etc/web.conf now sets listen = 80800, not a port\",\"cites\":[\"E3\"]},"     \
    "{\"claim\":\"web exits 1 at start, logging the invalid value\",\"cites\":[\"E1\",\"E2\",\"K1\"]}],"         \
    "\"actions\":[{\"action\":\"restore /etc/web.conf\",\"service\":\"web\"},"                                    \
    "{\"action\":\"alert\",\"service\":\"web\"}]}"

static void test_validate(void **state)
{
    world *w = *state;
    char why[400];
    assert_int_equal(check(w, GOOD, why, sizeof why), LLM_OK);
    /* not JSON, not the schema */
    assert_int_equal(check(w, "{\"hypotheses\": [", why, sizeof why), LLM_INVALID);
    assert_int_equal(check(w, "{\"hypotheses\":{}}", why, sizeof why), LLM_INVALID);
    /* a ref that names no record */
    assert_int_equal(check(w, "{\"hypotheses\":[],\"explanation\":[{\"claim\":\"x\",\"cites\":[\"E99\"]}],"
                              "\"actions\":[]}", why, sizeof why),
                     LLM_INVALID);
    assert_non_null(strstr(why, "E99"));
    assert_int_equal(check(w, "{\"hypotheses\":[{\"fault_type\":\"config_error\",\"component\":\"web\","
                              "\"confidence\":0.5,\"because\":[\"K2\"]}],\"explanation\":[],\"actions\":[]}",
                           why, sizeof why),
                     LLM_INVALID);
    /* a claim citing nothing */
    assert_int_equal(check(w, "{\"hypotheses\":[],\"explanation\":[{\"claim\":\"x\",\"cites\":[]}],\"actions\":[]}",
                           why, sizeof why),
                     LLM_INVALID);
    /* an unknown fault type, a confidence out of range */
    assert_int_equal(check(w, "{\"hypotheses\":[{\"fault_type\":\"gremlins\",\"component\":\"web\","
                              "\"confidence\":0.5,\"because\":[\"E1\"]}],\"explanation\":[],\"actions\":[]}",
                           why, sizeof why),
                     LLM_INVALID);
    assert_non_null(strstr(why, "gremlins"));
    assert_int_equal(check(w, "{\"hypotheses\":[{\"fault_type\":\"config_error\",\"component\":\"web\","
                              "\"confidence\":1.5,\"because\":[\"E1\"]}],\"explanation\":[],\"actions\":[]}",
                           why, sizeof why),
                     LLM_INVALID);
    /* actions: free-form shell, off the allowlist, a file not the service's, an unknown service */
    static const char *const unsafe[] = {
        "{\"action\":\"rm -rf /var/lib/web\",\"service\":\"web\"}",
        "{\"action\":\"sysctl vm.swappiness = 1\",\"service\":\"web\"}",
        "{\"action\":\"restore /etc/passwd\",\"service\":\"web\"}",
        "{\"action\":\"stop\",\"service\":\"db\"}",
        "{\"action\":\"restart\",\"service\":\"mail\"}",
        "{\"action\":\"signal KILL pid 1\",\"service\":\"web\"}",
    };
    for (size_t i = 0; i < sizeof unsafe / sizeof unsafe[0]; i++) {
        char a[600];
        snprintf(a, sizeof a, "{\"hypotheses\":[],\"explanation\":[],\"actions\":[%s]}", unsafe[i]);
        assert_int_equal(check(w, a, why, sizeof why), LLM_INVALID);
        assert_true(strlen(why) > 0);
    }
    /* db's allowlist lets it restart */
    assert_int_equal(check(w, "{\"hypotheses\":[],\"explanation\":[],\"actions\":[{\"action\":\"restart\","
                              "\"service\":\"db\"}]}", why, sizeof why),
                     LLM_OK);
    /* disagreement without evidence: unsure; with evidence: fine */
    assert_int_equal(check(w, "{\"hypotheses\":[{\"fault_type\":\"oom_kill\",\"component\":\"web\","
                              "\"confidence\":0.8,\"because\":[]}],\"explanation\":[],\"actions\":[]}",
                           why, sizeof why),
                     LLM_UNSURE);
    assert_non_null(strstr(why, "oom_kill"));
    assert_int_equal(check(w, "{\"hypotheses\":[{\"fault_type\":\"oom_kill\",\"component\":\"web\","
                              "\"confidence\":0.8,\"because\":[\"E6\"]}],\"explanation\":[],\"actions\":[]}",
                           why, sizeof why),
                     LLM_OK);
    assert_int_equal(check(w, "{\"hypotheses\":[{\"fault_type\":\"config_error\",\"component\":\"db\","
                              "\"confidence\":0.8,\"because\":[]}],\"explanation\":[],\"actions\":[]}",
                           why, sizeof why),
                     LLM_UNSURE);
}

static llm_answer meta(bool unsure)
{
    llm_answer a;
    memset(&a, 0, sizeof a);
    a.provider = "local";
    a.model = "phi-4-mini-reasoning";
    a.confidence = 0.8;
    a.unsure = unsure;
    a.attempts = "[{\"provider\":\"local\",\"outcome\":\"ok\",\"reason\":\"\",\"ms\":12}]";
    return a;
}

static void test_merge_agree(void **state)
{
    world *w = *state;
    llm_answer a = meta(false);
    json_t *m = brain_think_merge(w->diag, w->recs, GOOD, &a);
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "agreement")), "agree");
    assert_true(json_number_value(json_object_get(m, "confidence")) ==
                json_number_value(json_object_get(w->diag, "confidence")));
    json_t *model = json_object_get(m, "model");
    assert_string_equal(json_string_value(json_object_get(model, "provider")), "local");
    assert_int_equal(json_array_size(json_object_get(model, "attempts")), 1);
    json_t *ex = json_object_get(model, "explanation");
    assert_int_equal(json_array_size(ex), 2);
    /* cites resolved to records: a change of the signature, a knowledge chunk id */
    json_t *c0 = json_array_get(json_object_get(json_array_get(ex, 0), "cites"), 0);
    assert_string_equal(json_string_value(json_object_get(c0, "field")), "changes");
    json_t *c1 = json_object_get(json_array_get(ex, 1), "cites");
    assert_int_equal(json_array_size(c1), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(c1, 2), "id")), 41);
    /* the rules' actions first; the model's restore is one of them already; its alert is appended */
    json_t *p = json_object_get(m, "proposed_actions");
    size_t nrules = json_array_size(json_object_get(w->diag, "proposed_actions"));
    assert_int_equal(json_array_size(p), nrules + 1);
    for (size_t i = 0; i < nrules; i++)
        assert_true(json_equal(json_array_get(p, i), json_array_get(json_object_get(w->diag, "proposed_actions"), i)));
    json_t *last = json_array_get(p, nrules);
    assert_string_equal(json_string_value(json_object_get(last, "action")), "alert");
    assert_string_equal(json_string_value(json_object_get(last, "by")), "model");
    /* the rest is the rules' */
    json_t *rest = json_deep_copy(m);
    json_object_del(rest, "model");
    json_object_del(rest, "agreement");
    json_object_set(rest, "proposed_actions", json_object_get(w->diag, "proposed_actions"));
    assert_true(json_equal(rest, w->diag));
    json_decref(rest);
    json_decref(m);
}

static void test_merge_disagree(void **state)
{
    world *w = *state;
    double conf = json_number_value(json_object_get(w->diag, "confidence"));
    /* without evidence (an unsure answer kept as the best): lower confidence, rules' fault kept, no actions */
    llm_answer a = meta(true);
    const char *ans = "{\"hypotheses\":[{\"fault_type\":\"oom_kill\",\"component\":\"web\",\"confidence\":0.8,"
                      "\"because\":[]}],\"explanation\":[{\"claim\":\"it ran out of memory\",\"cites\":[\"E6\"]}],"
                      "\"actions\":[{\"action\":\"limit memory 1GB\",\"service\":\"web\"}]}";
    json_t *m = brain_think_merge(w->diag, w->recs, ans, &a);
    assert_string_equal(json_string_value(json_object_get(m, "agreement")), "disagree");
    assert_string_equal(json_string_value(json_object_get(m, "fault_type")), "config_error");
    assert_string_equal(json_string_value(json_object_get(m, "component")), "web");
    double lowered = json_number_value(json_object_get(m, "confidence"));
    assert_true(lowered < conf);
    assert_true(fabs(lowered - round(conf * (1 - BRAIN_THINK_DISAGREE * 0.8) * 100) / 100) < 1e-9);
    json_t *dis = json_object_get(json_object_get(m, "model"), "disagreement");
    assert_string_equal(json_string_value(json_object_get(dis, "fault_type")), "oom_kill");
    assert_false(json_is_true(json_object_get(dis, "cited")));
    assert_true(json_number_value(json_object_get(json_object_get(m, "model"), "rules_confidence")) == conf);
    assert_true(json_equal(json_object_get(m, "proposed_actions"), json_object_get(w->diag, "proposed_actions")));
    json_decref(m);
    /* no hypothesis at all: agreement none, confidence kept */
    a = meta(false);
    m = brain_think_merge(w->diag, w->recs, "{\"hypotheses\":[],\"explanation\":[],\"actions\":[]}", &a);
    assert_string_equal(json_string_value(json_object_get(m, "agreement")), "none");
    assert_true(json_number_value(json_object_get(m, "confidence")) == conf);
    json_decref(m);
    assert_null(brain_think_merge(w->diag, w->recs, "not json", &a));
}

/* No model (none, or a client with no provider): the rules' diagnosis, but for "model". */
static void test_no_model(void **state)
{
    world *w = *state;
    brain_mind mind = {0};
    brain_think_in in = {.signature = w->sig, .services = w->svcs, .incident = 12,
                         .deadline_mono = core_mono_ms() + 10000};
    json_t *d = json_deep_copy(w->diag);
    brain_think(&mind, &in, d);
    json_t *model = json_object_get(d, "model");
    assert_non_null(strstr(json_string_value(json_object_get(model, "absent")), "no model"));
    json_object_del(d, "model");
    assert_true(json_equal(d, w->diag));
    json_decref(d);

    core_config cfg;
    core_config_defaults(&cfg);
    char err[256];
    llm *l = NULL;
    assert_int_equal(llm_new(&cfg, "/tmp", NULL, NULL, &l, err, sizeof err), 0);
    mind.llm = l;
    d = json_deep_copy(w->diag);
    brain_think(&mind, &in, d);
    assert_non_null(json_object_get(json_object_get(d, "model"), "absent"));
    json_object_del(d, "model");
    assert_true(json_equal(d, w->diag));
    json_decref(d);
    llm_free(l);
    core_config_free(&cfg);
}

/* A real knowledge store: its chunks become K records, and a diagnosed
 * incident is linked to its cause and actions (skipped while memory's
 * knowledge store is the stand-in). */
static void test_knowledge(void **state)
{
    world *w = *state;
    char dir[] = "/tmp/ippoc-think-XXXXXX", path[128], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/knowledge.db", dir);
    mem_know *k = NULL;
    int rc = mem_know_open(path, &k, err, sizeof err);
    if (rc == -ENOSYS) {
        rmdir(dir);
        skip();
    }
    assert_int_equal(rc, 0);
    mem_doc doc = {.source = "/docs/web-runbook.md", .title = "web runbook", .kind = "runbook",
                   .text = "When web exits with a config error, the listen value in web.conf must be a port number. "
                           "Restore the known-good web.conf and restart web."};
    assert_int_equal(mem_know_add(k, &doc, NULL, NULL, err, sizeof err), 0);
    mem_hit *hits = NULL;
    size_t n = 0;
    assert_int_equal(mem_know_search(k, "web config error", MEM_KNOW_HYBRID, BRAIN_THINK_KNOW, &hits, &n, err,
                                     sizeof err), 0);
    assert_true(n >= 1);
    json_t *recs = brain_think_records(w->sig, w->diag, hits, n);
    const json_t *k1 = NULL;
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r) {
        if (!strcmp(json_string_value(json_object_get(r, "ref")), "K1"))
            k1 = r;
    }
    assert_non_null(k1);
    assert_int_equal(json_integer_value(json_object_get(k1, "id")), hits[0].chunk);
    assert_string_equal(json_string_value(json_object_get(k1, "source")), "/docs/web-runbook.md");
    json_decref(recs);
    mem_know_hits_free(hits, n);

    brain_mind mind = {.know = k};
    brain_think_in in = {.signature = w->sig, .services = w->svcs, .incident = 12,
                         .deadline_mono = core_mono_ms() + 10000};
    json_t *d = json_deep_copy(w->diag);
    brain_think(&mind, &in, d);
    char *links = mem_know_links_json(k, "incident:12", 1);
    assert_non_null(links);
    assert_non_null(strstr(links, "caused_by"));
    assert_non_null(strstr(links, "cause:config_error"));
    assert_non_null(strstr(links, "fixed_by"));
    assert_non_null(strstr(links, "action:restore /etc/web.conf"));
    free(links);
    json_decref(d);
    mem_know_close(k);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_services(void **state)
{
    world *w = *state;
    json_t *web = json_object_get(w->svcs, "web"), *db = json_object_get(w->svcs, "db");
    assert_string_equal(json_string_value(json_array_get(json_object_get(web, "config_paths"), 0)), "/etc/web.conf");
    assert_string_equal(json_string_value(json_object_get(web, "allow")), "");
    assert_string_equal(json_string_value(json_object_get(db, "allow")), "restart, alert");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_records_and_prompt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_agree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_disagree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_knowledge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_services, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
