/* test_thalamus.c: the thalamus: signals about one component close in time
 * merge into one deliberation (one incident, not ten), the highest priority
 * goes first, a signal waits for its evidence window, a busy component
 * waits, the queue is bounded and drops its lowest-priority signal
 * (counted); and which events become which signals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "brain/brain_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static brain_signal sig(int prio, const char *comp, int64_t ms, uint64_t incident)
{
    brain_signal s = {.prio = prio, .first_ms = ms, .last_ms = ms, .not_before_ms = ms, .incident = incident, .count = 1};
    snprintf(s.component, sizeof s.component, "%s", comp);
    snprintf(s.trigger, sizeof s.trigger, "crash");
    return s;
}

static void test_merge(void **st)
{
    (void)st;
    brain_thal t;
    assert_int_equal(brain_thal_init(&t, 8, 30000), 0);
    /* ten crash incidents of web within seconds: one deliberation */
    for (int i = 0; i < 10; i++) {
        brain_signal s = sig(i == 5 ? BRAIN_SIG_FAILED : BRAIN_SIG_OPEN, "web", 1000 + i * 2000, (uint64_t)i + 1);
        assert_int_equal(brain_thal_push(&t, &s), i ? BRAIN_THAL_MERGED : BRAIN_THAL_QUEUED);
    }
    assert_int_equal(t.n, 1);
    assert_int_equal(t.merged, 9);
    brain_signal out;
    assert_int_equal(brain_thal_pop(&t, 100000, NULL, NULL, &out), 1);
    assert_int_equal(out.count, 10);
    assert_int_equal(out.incident, 10);          /* the newest incident */
    assert_int_equal(out.prio, BRAIN_SIG_FAILED); /* the highest priority */
    assert_int_equal(out.first_ms, 1000);
    assert_int_equal(out.last_ms, 19000);
    /* later signals do not shorten a waiting signal's evidence window; the
     * first faulty signal starts it; a user's question does not wait */
    brain_signal w = sig(BRAIN_SIG_CHANGE, "api", 1000, 0);
    w.not_before_ms = 1500;
    brain_thal_push(&t, &w);
    brain_signal e = sig(BRAIN_SIG_OPEN, "api", 2000, 9);
    e.faulty = true;
    e.not_before_ms = 6000;
    assert_int_equal(brain_thal_push(&t, &e), BRAIN_THAL_MERGED);
    brain_signal e2 = sig(BRAIN_SIG_FAILED, "api", 3000, 10);
    e2.faulty = true;
    e2.not_before_ms = 3500;
    assert_int_equal(brain_thal_push(&t, &e2), BRAIN_THAL_MERGED);
    assert_int_equal(brain_thal_pop(&t, 5999, NULL, NULL, &out), 0);
    assert_int_equal(brain_thal_pop(&t, 6000, NULL, NULL, &out), 1);
    assert_int_equal(out.first_ms, 2000);
    assert_int_equal(out.incident, 10);
    brain_thal_push(&t, &e);
    brain_signal u = sig(BRAIN_SIG_USER, "api", 2500, 11);
    brain_thal_push(&t, &u);
    assert_int_equal(brain_thal_pop(&t, 2500, NULL, NULL, &out), 1);
    assert_int_equal(out.prio, BRAIN_SIG_USER);
    /* far apart in time or another component: separate */
    brain_signal a = sig(BRAIN_SIG_OPEN, "web", 0, 1), b = sig(BRAIN_SIG_OPEN, "web", 100000, 2),
                 c = sig(BRAIN_SIG_OPEN, "db", 1, 3);
    brain_thal_push(&t, &a);
    assert_int_equal(brain_thal_push(&t, &b), BRAIN_THAL_QUEUED);
    assert_int_equal(brain_thal_push(&t, &c), BRAIN_THAL_QUEUED);
    assert_int_equal(t.n, 3);
    brain_thal_free(&t);
}

static bool web_busy(void *ud, const char *component)
{
    (void)ud;
    return !strcmp(component, "web");
}

static void test_priority_window_busy(void **st)
{
    (void)st;
    brain_thal t;
    assert_int_equal(brain_thal_init(&t, 8, 1000), 0);
    brain_signal log = sig(BRAIN_SIG_LOG, "a", 0, 0), user = sig(BRAIN_SIG_USER, "b", 50, 7),
                 open = sig(BRAIN_SIG_OPEN, "web", 10, 2), change = sig(BRAIN_SIG_CHANGE, "c", 5, 0);
    open.not_before_ms = 5000; /* its evidence window */
    brain_thal_push(&t, &log);
    brain_thal_push(&t, &change);
    brain_thal_push(&t, &open);
    brain_thal_push(&t, &user);
    brain_signal out;
    assert_int_equal(brain_thal_pop(&t, 100, NULL, NULL, &out), 1);
    assert_string_equal(out.component, "b"); /* the user's question first */
    assert_int_equal(brain_thal_pop(&t, 100, NULL, NULL, &out), 1);
    assert_string_equal(out.component, "a"); /* web still waits for its window */
    assert_int_equal(brain_thal_pop(&t, 6000, web_busy, NULL, &out), 1);
    assert_string_equal(out.component, "c"); /* web is busy */
    assert_int_equal(brain_thal_pop(&t, 6000, web_busy, NULL, &out), 0);
    assert_int_equal(brain_thal_pop(&t, 6000, NULL, NULL, &out), 1);
    assert_string_equal(out.component, "web");
    assert_int_equal(brain_thal_pop(&t, 6000, NULL, NULL, &out), 0);
    brain_thal_free(&t);
}

static void test_bound(void **st)
{
    (void)st;
    brain_thal t;
    assert_int_equal(brain_thal_init(&t, 3, 0), 0);
    brain_signal s1 = sig(BRAIN_SIG_LOG, "a", 0, 0), s2 = sig(BRAIN_SIG_CHANGE, "b", 1, 0),
                 s3 = sig(BRAIN_SIG_OPEN, "c", 2, 1), s4 = sig(BRAIN_SIG_FAILED, "d", 3, 2),
                 s5 = sig(BRAIN_SIG_CHANGE, "e", 4, 0);
    brain_thal_push(&t, &s1);
    brain_thal_push(&t, &s2);
    brain_thal_push(&t, &s3);
    assert_int_equal(brain_thal_push(&t, &s4), BRAIN_THAL_QUEUED); /* drops b, the lowest */
    assert_int_equal(t.dropped, 1);
    assert_int_equal(brain_thal_push(&t, &s5), -ENOBUFS);           /* lower than all: itself */
    assert_int_equal(t.dropped, 2);
    assert_int_equal(t.n, 3);
    brain_signal out;
    const char *want[] = {"d", "c", "a"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(brain_thal_pop(&t, 10, NULL, NULL, &out), 1);
        assert_string_equal(out.component, want[i]);
    }
    brain_thal_free(&t);
}

static int from(const char *type, const char *source, const char *payload, brain_signal *s)
{
    mem_event ev = {.id = 1, .ts = 1234};
    snprintf(ev.type, sizeof ev.type, "%s", type);
    snprintf(ev.source, sizeof ev.source, "%s", source);
    ev.payload = (char *)payload;
    return brain_signal_from_event(&ev, s);
}

static void test_events(void **st)
{
    (void)st;
    brain_signal s;
    assert_int_equal(from("incident.open", "web", "{\"id\":4,\"service\":\"web\",\"where\":\"supervisor\","
                                                  "\"what\":\"process exited: exit 1\"}", &s), 1);
    assert_int_equal(s.prio, BRAIN_SIG_OPEN);
    assert_int_equal(s.incident, 4);
    assert_string_equal(s.trigger, "crash");
    assert_string_equal(s.component, "web");
    assert_true(s.faulty);
    assert_int_equal(from("incident.open", "web", "{\"id\":5,\"service\":\"web\",\"where\":\"t.conf:3\","
                                                  "\"what\":\"if failed http://x/ then restart\"}", &s), 1);
    assert_string_equal(s.trigger, "probe");
    assert_int_equal(from("incident.failed", "web", "{\"id\":5,\"service\":\"web\"}", &s), 1);
    assert_int_equal(s.prio, BRAIN_SIG_FAILED);
    /* the outcome of the brain's own attempt is no new signal */
    assert_int_equal(from("incident.failed", "web", "{\"id\":5,\"service\":\"web\",\"by\":\"brain\"}", &s), 0);
    assert_int_equal(from("incident.resolved", "web", "{\"id\":5}", &s), 0);
    assert_int_equal(from("service.exit", "web", "{\"code\":1}", &s), 1);
    assert_int_equal(s.prio, BRAIN_SIG_EXIT);
    assert_int_equal(from("anomaly.episode", "detect", "{\"state\":\"open\",\"first\":{\"metric\":"
                                                       "\"process.rss_bytes\",\"labels\":{\"name\":\"web\"}}}", &s), 1);
    assert_string_equal(s.component, "web");
    assert_string_equal(s.trigger, "anomaly");
    assert_int_equal(from("anomaly.episode", "detect", "{\"state\":\"open\",\"first\":{\"metric\":\"cpu.usage\","
                                                       "\"labels\":{}}}", &s), 1);
    assert_string_equal(s.component, ""); /* machine-wide */
    assert_int_equal(from("anomaly.episode", "detect", "{\"state\":\"closed\"}", &s), 0);
    assert_int_equal(from("log.burst", "web", "{\"level\":\"error\"}", &s), 1);
    assert_int_equal(s.prio, BRAIN_SIG_LOG);
    assert_int_equal(from("log.template.new", "web", "{\"level\":\"info\"}", &s), 0);
    assert_int_equal(from("file.changed", "web", "{\"service\":\"web\",\"path\":\"/etc/web.conf\"}", &s), 1);
    assert_int_equal(s.prio, BRAIN_SIG_CHANGE);
    assert_string_equal(s.component, "web");
    assert_int_equal(from("heal.action", "web", "{}", &s), 0);
    assert_int_equal(from("incident.open", "web", "not json", &s), 1); /* still a signal, from the source */
    assert_string_equal(s.component, "web");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_priority_window_busy),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
