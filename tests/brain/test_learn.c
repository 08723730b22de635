/* test_learn.c: the learner against a real knowledge store (a SQLite file
 * in a temporary dir): [knowledge] keys checked with FILE:LINE, POST
 * /v1/learn's bodies (a document added then unchanged, a runbook pinned,
 * every malformed body a 400 naming the reason), search and its bad modes,
 * a document linked to the knob it mentions, no store -> 503, and a URL or
 * a feed on a closed port: 502 naming the URL / registered, failed once,
 * retried later. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "brain/brain.h"

typedef struct fx {
    char dir[64], db[128];
    core_config cfg;
    mem_know *know;
    brain_learn *l;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ippoc-learn-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof f->db, "%s/knowledge.db", f->dir);
    char err[512];
    assert_int_equal(mem_know_open(f->db, &f->know, err, sizeof err), 0);
    core_config_defaults(&f->cfg);
    assert_int_equal(core_config_load_string(&f->cfg, "[knowledge]\nfeed_interval = 1h\n[service.web]\nexec = x\n",
                                             "t.conf", err, sizeof err),
                     0);
    assert_int_equal(brain_learn_new(&f->cfg, f->know, &f->l, err, sizeof err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    brain_learn_free(f->l);
    mem_know_close(f->know);
    core_config_free(&f->cfg);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static json_t *learn(fx *f, const char *body, int want_status)
{
    int status = 0;
    char err[1024] = "";
    char *s = brain_learn_json(f->l, body, strlen(body), &status, err, sizeof err);
    if (status != want_status)
        fail_msg("%s: status %d (%s), want %d", body, status, err, want_status);
    if (want_status != 200) {
        assert_null(s);
        return json_pack("{s:s}", "error", err);
    }
    json_t *j = json_loads(s, 0, NULL);
    free(s);
    assert_non_null(j);
    return j;
}

static void test_config(void **state)
{
    (void)state;
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"[knowledge]\nfeed_interval = soon\n", "t.conf:2: feed_interval: 'soon'"},
        {"[knowledge]\nfeed_interval = 500ms\n", "at least 1s"},
        {"[knowledge]\nfeeds = https://a.example/x ftp://b.example/y\n", "t.conf:2: feeds: 'ftp://b.example/y'"},
        {"[knowledge]\nfeed_pdf = maybe\n", "feed_pdf: 'maybe' is not yes or no"},
        {"[knowledge]\nfetch_max = 1\n", "fetch_max"},
        {"[knowledge]\nfetch_timeout = 1h\n", "fetch_timeout"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        core_config c;
        char err[512] = "";
        core_config_defaults(&c);
        assert_int_equal(core_config_load_string(&c, bad[i].text, "t.conf", err, sizeof err), 0);
        assert_int_equal(brain_learn_config_check(&c, err, sizeof err), -EINVAL);
        if (!strstr(err, bad[i].msg))
            fail_msg("'%s': got '%s', want '%s'", bad[i].text, err, bad[i].msg);
        core_config_free(&c);
    }
    core_config c;
    char err[512];
    core_config_defaults(&c);
    assert_int_equal(core_config_load_string(&c,
                                             "[knowledge]\nfeed_interval = 2h\nfeed_pdf = yes\nfetch_max = 5MB\n"
                                             "feeds = https://a.example/x, http://b.example/y\nembedder = any\n",
                                             "t.conf", err, sizeof err),
                     0);
    assert_int_equal(brain_learn_config_check(&c, err, sizeof err), 0); /* other keys are the store's */
    core_config_free(&c);
}

static void test_documents(void **state)
{
    fx *f = *state;
    json_t *a = learn(f, "{\"source\":\"/srv/doc/swap.md\",\"title\":\"Swap\",\"kind\":\"markdown\","
                         "\"text\":\"Swap tuning\\n\\nLower vm.swappiness on the web hosts to keep the cache.\"}",
                      200);
    assert_string_equal(json_string_value(json_object_get(a, "status")), "added");
    assert_true(json_integer_value(json_object_get(a, "chunks")) >= 1);
    json_int_t doc = json_integer_value(json_object_get(a, "doc"));
    const char *m0 = json_string_value(json_array_get(json_object_get(a, "mentions"), 0));
    assert_non_null(m0);
    json_decref(a);
    a = learn(f, "{\"source\":\"/srv/doc/swap.md\",\"title\":\"Swap\",\"kind\":\"markdown\","
                 "\"text\":\"Swap tuning\\n\\nLower vm.swappiness on the web hosts to keep the cache.\"}",
              200);
    assert_string_equal(json_string_value(json_object_get(a, "status")), "unchanged");
    json_decref(a);
    /* linked to the knob and the configured service it names */
    char *s = brain_knowledge_links_json(f->l, "knob:vm.swappiness", 1);
    char want[64];
    snprintf(want, sizeof want, "\"from\":\"doc:%lld\"", (long long)doc);
    assert_non_null(s);
    assert_non_null(strstr(s, want));
    free(s);
    s = brain_knowledge_links_json(f->l, "component:web", 1);
    assert_non_null(strstr(s, want));
    free(s);
    /* a runbook is pinned */
    a = learn(f, "{\"source\":\"rb\",\"kind\":\"runbook\",\"text\":\"Restart the upstream first.\"}", 200);
    assert_true(json_is_true(json_object_get(a, "pinned")));
    json_decref(a);
    /* search */
    int status;
    char err[512];
    s = brain_knowledge_search_json(f->l, "swappiness cache", "bm25", 5, &status, err, sizeof err);
    assert_non_null(s);
    json_t *r = json_loads(s, 0, NULL);
    free(s);
    json_t *h0 = json_array_get(json_object_get(r, "hits"), 0);
    assert_string_equal(json_string_value(json_object_get(h0, "source")), "/srv/doc/swap.md");
    assert_non_null(strstr(json_string_value(json_object_get(h0, "snippet")), "vm.swappiness"));
    json_decref(r);
    assert_null(brain_knowledge_search_json(f->l, "x", "fuzzy", 5, &status, err, sizeof err));
    assert_int_equal(status, 400);
    assert_null(brain_knowledge_search_json(f->l, "", NULL, 5, &status, err, sizeof err));
    assert_int_equal(status, 400);
    s = brain_knowledge_json(f->l, 10);
    r = json_loads(s, 0, NULL);
    free(s);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "stats"), "docs")), 2);
    assert_int_equal(json_array_size(json_object_get(r, "docs")), 2);
    assert_int_equal(json_array_size(json_object_get(r, "feeds")), 0);
    json_decref(r);
}

static void test_bad_bodies(void **state)
{
    fx *f = *state;
    static const struct {
        const char *body, *msg;
    } bad[] = {
        {"", "not a JSON object"},
        {"[1]", "not a JSON object"},
        {"{\"text\":\"t\"}", "\"source\" must name"},
        {"{\"source\":\"s\",\"text\":\"\"}", "s: the text is empty"},
        {"{\"source\":\"s\",\"text\":\"t\",\"kind\":\"movie\"}", "unknown kind 'movie'"},
        {"{\"source\":\"s\",\"text\":\"t\",\"url\":\"http://x/\"}", "exactly one of"},
        {"{}", "exactly one of"},
        {"{\"source\":\"s\",\"text\":\"t\",\"colour\":\"red\"}", "unknown member \"colour\""},
        {"{\"source\":\"s\",\"text\":7}", "\"text\" has the wrong type"},
        {"{\"source\":\"s\",\"text\":\"t\",\"pin\":\"yes\"}", "\"pin\" has the wrong type"},
        {"{\"url\":\"file:///etc/shadow\"}", "not an http:// or https:// URL"},
        {"{\"url\":\"http://a b/\"}", "blank or control byte"},
        {"{\"feed\":\"gopher://x/\"}", "not an http:// or https:// URL"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *e = learn(f, bad[i].body, 400);
        const char *err = json_string_value(json_object_get(e, "error"));
        if (!strstr(err, bad[i].msg))
            fail_msg("%s: got '%s', want '%s'", bad[i].body, err, bad[i].msg);
        json_decref(e);
    }
}

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &n), 0);
    close(fd); /* nothing listens there now */
    return ntohs(a.sin_port);
}

static void test_unreachable(void **state)
{
    fx *f = *state;
    char body[256];
    int port = closed_port();
    snprintf(body, sizeof body, "{\"url\":\"http://127.0.0.1:%d/doc.html\"}", port);
    json_t *e = learn(f, body, 502);
    char want[64];
    snprintf(want, sizeof want, "http://127.0.0.1:%d/doc.html", port);
    assert_non_null(strstr(json_string_value(json_object_get(e, "error")), want));
    json_decref(e);
    /* a feed: registered, its first fetch failed, tried again later */
    snprintf(body, sizeof body, "{\"feed\":\"http://127.0.0.1:%d/feed\"}", port);
    json_t *a = learn(f, body, 200);
    assert_true(json_is_true(json_object_get(a, "registered")));
    assert_non_null(json_object_get(a, "error"));
    json_decref(a);
    char *s = brain_learn_feeds_json(f->l);
    json_t *r = json_loads(s, 0, NULL);
    free(s);
    json_t *fd = json_array_get(json_object_get(r, "feeds"), 0);
    assert_int_equal(json_integer_value(json_object_get(fd, "failures")), 1);
    assert_int_equal(json_integer_value(json_object_get(fd, "last_success")), 0);
    json_int_t wait = json_integer_value(json_object_get(fd, "next_try")) -
                      json_integer_value(json_object_get(fd, "last_fetch"));
    assert_int_equal(wait, 60000); /* backoff starts at a minute */
    assert_null(json_object_get(fd, "seen"));
    json_decref(r);
    /* again: not registered twice */
    a = learn(f, body, 200);
    assert_false(json_is_true(json_object_get(a, "registered")));
    json_decref(a);
    s = brain_learn_feeds_json(f->l);
    r = json_loads(s, 0, NULL);
    free(s);
    assert_int_equal(json_array_size(json_object_get(r, "feeds")), 1);
    fd = json_array_get(json_object_get(r, "feeds"), 0);
    assert_int_equal(json_integer_value(json_object_get(fd, "failures")), 2);
    json_decref(r);
    /* stopped: nothing more is fetched */
    brain_learn_stop(f->l);
    snprintf(body, sizeof body, "{\"url\":\"http://127.0.0.1:%d/late\"}", port);
    e = learn(f, body, 502);
    assert_non_null(strstr(json_string_value(json_object_get(e, "error")), "stopping"));
    json_decref(e);
}

static void test_no_store(void **state)
{
    fx *f = *state;
    brain_learn *l;
    char err[256];
    assert_int_equal(brain_learn_new(&f->cfg, NULL, &l, err, sizeof err), 0);
    int status = 0;
    assert_null(brain_learn_json(l, "{}", 2, &status, err, sizeof err));
    assert_int_equal(status, 503);
    assert_null(brain_knowledge_json(l, 5));
    brain_learn_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test_setup_teardown(test_documents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
