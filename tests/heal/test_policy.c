/* test_policy.c: the safety policy, with time as a parameter (no sleeps):
 * each mode and per-service overrides; --dry-run; allowlist refusals and the
 * allowlist parser; per-service and global rate limits at their exact
 * boundary times; flap detection (K restarts within W refuse the next one,
 * alert once, release after the cool-down or a reset); the pending queue
 * (approve, reject, expiry, unknown ids, duplicates, full) and approvals
 * re-checked against the limits; configuration validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "heal/policy.h"

static heal_action act(heal_action_kind k, const char *svc)
{
    heal_action a;
    memset(&a, 0, sizeof a);
    a.kind = k;
    snprintf(a.service, sizeof a.service, "%s", svc);
    return a;
}

/* A policy with generous limits unless the test narrows them. */
static heal_policy *mk(heal_mode mode, void (*tweak)(heal_policy_config *))
{
    heal_policy_config c;
    heal_policy_config_defaults(&c);
    c.mode = mode;
    c.global = (heal_rate){1000, 60000};
    c.service = (heal_rate){1000, 60000};
    if (tweak)
        tweak(&c);
    heal_policy *p;
    char err[256] = "";
    if (heal_policy_new(&c, &p, err, sizeof err))
        fail_msg("heal_policy_new: %s", err);
    return p;
}

static heal_verdict decide(heal_policy *p, heal_action_kind k, const char *svc, int64_t now, heal_decision *d)
{
    heal_action a = act(k, svc);
    return heal_policy_decide(p, &a, "rule conf.d/web.conf:3", now, d);
}

static void set_svc(heal_policy *p, const char *name, heal_mode mode, uint32_t allow, heal_rate rate)
{
    heal_policy_service s;
    char err[256] = "";
    heal_policy_service_defaults(&s, name);
    s.mode = mode;
    s.allow = allow;
    s.rate = rate;
    if (heal_policy_set_service(p, &s, err, sizeof err))
        fail_msg("set_service: %s", err);
}

static void test_modes(void **state)
{
    heal_decision d;
    heal_policy *p = mk(HEAL_MODE_HEAL, NULL);
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 0, &d), HEAL_VERDICT_EXECUTE);
    assert_int_equal(d.mode, HEAL_MODE_HEAL);
    assert_false(d.simulated);
    assert_string_equal(heal_verdict_name(d.verdict), "execute");
    heal_policy_free(p);

    p = mk(HEAL_MODE_OBSERVE, NULL);
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 0, &d), HEAL_VERDICT_RECORD_ONLY);
    assert_true(d.simulated);
    assert_non_null(strstr(d.reason, "observe mode"));
    /* A per-service override wins over the global mode. */
    set_svc(p, "db", HEAL_MODE_HEAL, HEAL_ALLOW_DEFAULT, (heal_rate){-1, 0});
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "db", 0, &d), HEAL_VERDICT_EXECUTE);
    set_svc(p, "cache", HEAL_MODE_SUGGEST, HEAL_ALLOW_DEFAULT, (heal_rate){-1, 0});
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "cache", 0, &d), HEAL_VERDICT_QUEUE);
    assert_int_equal(d.pending_id, 1);
    heal_policy_free(p);

    p = mk(HEAL_MODE_SUGGEST, NULL);
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 0, &d), HEAL_VERDICT_QUEUE);
    assert_int_equal(d.pending_id, 1);
    assert_non_null(strstr(d.reason, "queued for approval as #1"));
    /* The same action again (a rule firing every check) is not queued twice. */
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 5000, &d), HEAL_VERDICT_QUEUE);
    assert_int_equal(d.pending_id, 1);
    assert_non_null(strstr(d.reason, "already pending"));
    assert_int_equal(decide(p, HEAL_ACT_STOP, "web", 5000, &d), HEAL_VERDICT_QUEUE);
    assert_int_equal(d.pending_id, 2);
    assert_int_equal(heal_policy_pending_list(p, 5000, NULL, 0), 2);
    heal_policy_free(p);

    assert_int_equal(heal_mode_parse("suggest"), HEAL_MODE_SUGGEST);
    assert_int_equal(heal_mode_parse("act"), -1);
    assert_string_equal(heal_mode_name(HEAL_MODE_OBSERVE), "observe");
}

static void dry(heal_policy_config *c)
{
    c->dry_run = true;
    c->service = (heal_rate){2, 10000};
}

static void test_dry_run(void **state)
{
    heal_decision d;
    heal_policy *p = mk(HEAL_MODE_HEAL, dry);
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 0, &d), HEAL_VERDICT_RECORD_ONLY);
    assert_true(d.dry_run && d.simulated);
    assert_non_null(strstr(d.reason, "dry run"));
    /* Dry runs simulate the limits: the third within the window would be refused. */
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 1, &d), HEAL_VERDICT_RECORD_ONLY);
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 2, &d), HEAL_VERDICT_REFUSE);
    assert_int_equal(d.refusal, HEAL_REFUSE_RATE_SERVICE);
    assert_true(d.simulated);
    /* Dry run wins over suggest: nothing is queued. */
    set_svc(p, "db", HEAL_MODE_SUGGEST, HEAL_ALLOW_DEFAULT, (heal_rate){-1, 0});
    assert_int_equal(decide(p, HEAL_ACT_STOP, "db", 0, &d), HEAL_VERDICT_RECORD_ONLY);
    assert_int_equal(heal_policy_pending_list(p, 0, NULL, 0), 0);
    /* Refusals still say why. */
    assert_int_equal(decide(p, HEAL_ACT_SYSCTL, "", 0, &d), HEAL_VERDICT_REFUSE);
    assert_int_equal(d.refusal, HEAL_REFUSE_NOT_ALLOWED);
    heal_policy_free(p);
}

static void test_allowlist(void **state)
{
    heal_decision d;
    heal_policy *p = mk(HEAL_MODE_HEAL, NULL);
    /* The defaults. */
    static const heal_action_kind ok[] = {HEAL_ACT_START, HEAL_ACT_STOP, HEAL_ACT_RESTART, HEAL_ACT_SIGNAL,
                                          HEAL_ACT_RENICE, HEAL_ACT_LIMIT_MEMORY, HEAL_ACT_LIMIT_CPU,
                                          HEAL_ACT_ALERT, HEAL_ACT_RESTORE};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_int_equal(decide(p, ok[i], "web", 0, &d), HEAL_VERDICT_EXECUTE);
    static const heal_action_kind no[] = {HEAL_ACT_SYSCTL, HEAL_ACT_CLEAN, HEAL_ACT_PLAYBOOK};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(decide(p, no[i], "web", 0, &d), HEAL_VERDICT_REFUSE);
        assert_int_equal(d.refusal, HEAL_REFUSE_NOT_ALLOWED);
    }
    assert_string_equal(d.reason, "run is not allowed for service web (allowed: start, stop, restart, signal, "
                                  "renice, limit memory, limit cpu, alert, freeze, thaw, restore)");
    /* pid-targeted actions: never by default, never pid 0 or 1 */
    heal_action pa = act(HEAL_ACT_SIGNAL_PID, "web");
    pa.pid = 4242;
    assert_int_equal(heal_policy_decide(p, &pa, "brain", 0, &d), HEAL_VERDICT_REFUSE);
    assert_int_equal(d.refusal, HEAL_REFUSE_NOT_ALLOWED);
    assert_non_null(strstr(d.reason, "signal-process is not allowed for service web"));
    pa.kind = HEAL_ACT_RENICE_PID;
    assert_int_equal(heal_policy_decide(p, &pa, "brain", 0, &d), HEAL_VERDICT_REFUSE);
    assert_int_equal(d.refusal, HEAL_REFUSE_NOT_ALLOWED);
    pa.pid = 1;
    assert_int_equal(heal_policy_decide(p, &pa, "brain", 0, &d), HEAL_VERDICT_REFUSE);
    assert_int_equal(d.refusal, HEAL_REFUSE_TARGET);
    assert_int_equal(decide(p, HEAL_ACT_SYSCTL, "", 0, &d), HEAL_VERDICT_REFUSE);
    assert_non_null(strstr(d.reason, "sysctl is not allowed machine-wide"));

    /* Explicitly allowed: machine-wide sysctl, and clean for one service. */
    uint32_t m;
    char err[256] = "";
    assert_int_equal(heal_policy_allow_parse("sysctl, clean", &m, err, sizeof err), 0);
    set_svc(p, "", HEAL_MODE_INHERIT, m, (heal_rate){-1, 0});
    assert_int_equal(decide(p, HEAL_ACT_SYSCTL, "", 0, &d), HEAL_VERDICT_EXECUTE);
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "", 0, &d), HEAL_VERDICT_REFUSE);
    assert_int_equal(heal_policy_allow_parse("default clean", &m, err, sizeof err), 0);
    set_svc(p, "logs", HEAL_MODE_INHERIT, m, (heal_rate){-1, 0});
    assert_int_equal(decide(p, HEAL_ACT_CLEAN, "logs", 0, &d), HEAL_VERDICT_EXECUTE);
    assert_int_equal(decide(p, HEAL_ACT_CLEAN, "web", 0, &d), HEAL_VERDICT_REFUSE);
    /* Only alerts. */
    set_svc(p, "db", HEAL_MODE_INHERIT, HEAL_ALLOW(HEAL_ACT_ALERT), (heal_rate){-1, 0});
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "db", 0, &d), HEAL_VERDICT_REFUSE);
    assert_string_equal(d.reason, "restart is not allowed for service db (allowed: alert)");
    assert_int_equal(decide(p, HEAL_ACT_ALERT, "db", 0, &d), HEAL_VERDICT_EXECUTE);
    /* Invalid actions. */
    assert_int_equal(decide(p, (heal_action_kind)77, "db", 0, &d), HEAL_VERDICT_REFUSE);
    assert_int_equal(d.refusal, HEAL_REFUSE_INVALID);
    heal_policy_free(p);

    /* The parser. */
    assert_int_equal(heal_policy_allow_parse("start,restart , limit memory", &m, err, sizeof err), 0);
    assert_int_equal(m, HEAL_ALLOW(HEAL_ACT_START) | HEAL_ALLOW(HEAL_ACT_RESTART) |
                            HEAL_ALLOW(HEAL_ACT_LIMIT_MEMORY));
    assert_int_equal(heal_policy_allow_parse("limit", &m, err, sizeof err), 0);
    assert_int_equal(m, HEAL_ALLOW(HEAL_ACT_LIMIT_MEMORY) | HEAL_ALLOW(HEAL_ACT_LIMIT_CPU));
    assert_int_equal(heal_policy_allow_parse("limit  cpu, run, playbook", &m, err, sizeof err), 0);
    assert_int_equal(m, HEAL_ALLOW(HEAL_ACT_LIMIT_CPU) | HEAL_ALLOW(HEAL_ACT_PLAYBOOK));
    assert_int_equal(heal_policy_allow_parse("default, signal-process renice-process", &m, err, sizeof err), 0);
    assert_int_equal(m, HEAL_ALLOW_DEFAULT | HEAL_ALLOW(HEAL_ACT_SIGNAL_PID) | HEAL_ALLOW(HEAL_ACT_RENICE_PID));
    assert_int_equal(heal_policy_allow_parse("restore", &m, err, sizeof err), 0);
    assert_int_equal(m, HEAL_ALLOW(HEAL_ACT_RESTORE));
    assert_int_equal(heal_policy_allow_parse("all", &m, err, sizeof err), 0);
    assert_int_equal(m, HEAL_ALLOW_ALL);
    assert_int_equal(heal_policy_allow_parse("", &m, err, sizeof err), 0);
    assert_int_equal(m, 0);
    assert_int_equal(heal_policy_allow_parse("start, reboot", &m, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "unknown action \"reboot\""));
}

static void narrow(heal_policy_config *c)
{
    c->service = (heal_rate){3, 10000};
    c->global = (heal_rate){5, 60000};
}

static void test_rate_service(void **state)
{
    heal_decision d;
    heal_policy *p = mk(HEAL_MODE_HEAL, narrow);
    assert_int_equal(decide(p, HEAL_ACT_SIGNAL, "web", 1000, &d), HEAL_VERDICT_EXECUTE);
    assert_int_equal(decide(p, HEAL_ACT_RENICE, "web", 2000, &d), HEAL_VERDICT_EXECUTE);
    assert_int_equal(decide(p, HEAL_ACT_SIGNAL, "web", 3000, &d), HEAL_VERDICT_EXECUTE);
    /* The 4th within 10 s of the 1st: refused until 1000 + 10000. */
    assert_int_equal(decide(p, HEAL_ACT_SIGNAL, "web", 3500, &d), HEAL_VERDICT_REFUSE);
    assert_int_equal(d.refusal, HEAL_REFUSE_RATE_SERVICE);
    assert_int_equal(d.retry_at_ms, 11000);
    assert_string_equal(d.reason, "rate limited for service web: 3 actions in the last 10s (at most 3); "
                                  "next allowed in 8s");
    assert_int_equal(decide(p, HEAL_ACT_SIGNAL, "web", 10999, &d), HEAL_VERDICT_REFUSE);
    assert_int_equal(d.retry_at_ms, 11000);
    /* Another service is not affected. */
    assert_int_equal(decide(p, HEAL_ACT_SIGNAL, "db", 10999, &d), HEAL_VERDICT_EXECUTE);
    /* Refusals took no slot: exactly at 11000 one frees. */
    assert_int_equal(decide(p, HEAL_ACT_SIGNAL, "web", 11000, &d), HEAL_VERDICT_EXECUTE);
    assert_int_equal(decide(p, HEAL_ACT_SIGNAL, "web", 11000, &d), HEAL_VERDICT_REFUSE);
    assert_int_equal(d.retry_at_ms, 12000);
    heal_policy_svc_state st;
    heal_policy_service_state(p, "web", 11000, &st);
    assert_int_equal(st.recent_actions, 3);

    heal_policy_free(p);

    /* A per-service override: 1 per minute; 0 = unlimited. */
    p = mk(HEAL_MODE_HEAL, narrow);
    set_svc(p, "slow", HEAL_MODE_INHERIT, HEAL_ALLOW_DEFAULT, (heal_rate){1, 60000});
    assert_int_equal(decide(p, HEAL_ACT_STOP, "slow", 20000, &d), HEAL_VERDICT_EXECUTE);
    assert_int_equal(decide(p, HEAL_ACT_STOP, "slow", 79999, &d), HEAL_VERDICT_REFUSE);
    assert_int_equal(d.retry_at_ms, 80000);
    heal_policy_free(p);

    p = mk(HEAL_MODE_HEAL, narrow);
    set_svc(p, "free", HEAL_MODE_INHERIT, HEAL_ALLOW_DEFAULT, (heal_rate){0, 0});
    for (int i = 0; i < 5; i++)
        assert_int_equal(decide(p, HEAL_ACT_ALERT, "free", i, &d), HEAL_VERDICT_EXECUTE);
    /* ... but the global limit (5 per minute) still holds. */
    assert_int_equal(decide(p, HEAL_ACT_ALERT, "free", 5, &d), HEAL_VERDICT_REFUSE);
    assert_int_equal(d.refusal, HEAL_REFUSE_RATE_GLOBAL);
    heal_policy_free(p);
}

static void test_rate_global(void **state)
{
    heal_decision d;
    heal_policy *p = mk(HEAL_MODE_HEAL, narrow);
    const char *svcs[] = {"a", "b", "c", "d", "e", "f"};
    for (int i = 0; i < 5; i++)
        assert_int_equal(decide(p, HEAL_ACT_RESTART, svcs[i], i * 1000, &d), HEAL_VERDICT_EXECUTE);
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "f", 59999, &d), HEAL_VERDICT_REFUSE);
    assert_int_equal(d.refusal, HEAL_REFUSE_RATE_GLOBAL);
    assert_int_equal(d.retry_at_ms, 60000);
    assert_non_null(strstr(d.reason, "rate limited globally: 5 actions in the last 1m (at most 5); "
                                     "next allowed in 1ms"));
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "f", 60000, &d), HEAL_VERDICT_EXECUTE);
    /* The next slot frees at the second action + 1 min. */
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "f", 60999, &d), HEAL_VERDICT_REFUSE);
    assert_int_equal(d.retry_at_ms, 61000);
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "f", 61000, &d), HEAL_VERDICT_EXECUTE);

    /* A reload that narrows the limit keeps the newest entries. */
    heal_policy_config c;
    char err[256] = "";
    heal_policy_config_defaults(&c);
    narrow(&c);
    c.global = (heal_rate){2, 60000};
    assert_int_equal(heal_policy_configure(p, &c, err, sizeof err), 0);
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "a", 62000, &d), HEAL_VERDICT_REFUSE);
    assert_int_equal(d.retry_at_ms, 120000); /* the older of the newest two: 60000 */
    heal_policy_free(p);
}

static void flappy(heal_policy_config *c)
{
    c->flap_restarts = 3;
    c->flap_window_ms = 60000;
    c->flap_cooldown_ms = 300000;
}

static void test_flap(void **state)
{
    heal_decision d;
    heal_policy *p = mk(HEAL_MODE_HEAL, flappy);
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 0, &d), HEAL_VERDICT_EXECUTE);
    assert_int_equal(decide(p, HEAL_ACT_START, "web", 10000, &d), HEAL_VERDICT_EXECUTE);
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 20000, &d), HEAL_VERDICT_EXECUTE);
    assert_false(d.raise_alert);
    /* The 4th within a minute of the 1st: the storm is stopped, alert once. */
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 30000, &d), HEAL_VERDICT_REFUSE);
    assert_int_equal(d.refusal, HEAL_REFUSE_FLAPPING);
    assert_true(d.raise_alert);
    assert_int_equal(d.retry_at_ms, 330000);
    assert_string_equal(d.reason, "service web is flapping: 3 starts/restarts within 1m; restart storm stopped, "
                                  "restarts refused for 5m or until reset");
    heal_policy_svc_state st;
    heal_policy_service_state(p, "web", 30000, &st);
    assert_true(st.flapping);
    assert_int_equal(st.flapping_until_ms, 330000);
    assert_int_equal(decide(p, HEAL_ACT_START, "web", 40000, &d), HEAL_VERDICT_REFUSE);
    assert_int_equal(d.refusal, HEAL_REFUSE_FLAPPING);
    assert_false(d.raise_alert);
    assert_non_null(strstr(d.reason, "refused for another"));
    /* Stop and alert still go through; other services are not affected. */
    assert_int_equal(decide(p, HEAL_ACT_STOP, "web", 40000, &d), HEAL_VERDICT_EXECUTE);
    assert_int_equal(decide(p, HEAL_ACT_ALERT, "web", 40000, &d), HEAL_VERDICT_EXECUTE);
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "db", 40000, &d), HEAL_VERDICT_EXECUTE);
    /* Cool-down: still refused 1 ms before, released exactly at its end. */
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 329999, &d), HEAL_VERDICT_REFUSE);
    assert_false(d.raise_alert);
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 330000, &d), HEAL_VERDICT_EXECUTE);
    heal_policy_service_state(p, "web", 330000, &st);
    assert_false(st.flapping);
    assert_int_equal(st.recent_restarts, 1);
    /* A fresh storm flags again, with a new alert. */
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 330001, &d), HEAL_VERDICT_EXECUTE);
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 330002, &d), HEAL_VERDICT_EXECUTE);
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 330003, &d), HEAL_VERDICT_REFUSE);
    assert_true(d.raise_alert);
    /* A reset releases at once. */
    heal_policy_reset_flap(p, "web");
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 330004, &d), HEAL_VERDICT_EXECUTE);
    heal_policy_free(p);
}

static void flap_no_cooldown(heal_policy_config *c)
{
    flappy(c);
    c->flap_cooldown_ms = 0;
}

static void test_flap_boundary(void **state)
{
    heal_decision d;
    /* Three restarts at 0, 1, 2: a 4th at 60000 is outside the window of the
     * first (it held [0, 60000)), one at 59999 is not. */
    heal_policy *p = mk(HEAL_MODE_HEAL, flappy);
    for (int i = 0; i < 3; i++)
        assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", i, &d), HEAL_VERDICT_EXECUTE);
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 60000, &d), HEAL_VERDICT_EXECUTE);
    heal_policy_free(p);
    p = mk(HEAL_MODE_HEAL, flappy);
    for (int i = 0; i < 3; i++)
        assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", i, &d), HEAL_VERDICT_EXECUTE);
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 59999, &d), HEAL_VERDICT_REFUSE);
    assert_true(d.raise_alert);
    heal_policy_free(p);

    /* No cool-down: only a reset releases. */
    p = mk(HEAL_MODE_HEAL, flap_no_cooldown);
    for (int i = 0; i < 3; i++)
        assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", i, &d), HEAL_VERDICT_EXECUTE);
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 3, &d), HEAL_VERDICT_REFUSE);
    assert_int_equal(d.retry_at_ms, 0);
    assert_non_null(strstr(d.reason, "until reset"));
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 100000000, &d), HEAL_VERDICT_REFUSE);
    heal_policy_reset_flap(p, "web");
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 100000000, &d), HEAL_VERDICT_EXECUTE);
    heal_policy_free(p);

    /* Observe mode simulates it, alert flag included (the caller records it). */
    p = mk(HEAL_MODE_OBSERVE, flappy);
    for (int i = 0; i < 3; i++)
        assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", i, &d), HEAL_VERDICT_RECORD_ONLY);
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 3, &d), HEAL_VERDICT_REFUSE);
    assert_true(d.raise_alert && d.simulated);
    heal_policy_free(p);
}

static void test_pending(void **state)
{
    heal_decision d;
    heal_pending pl[8], e;
    char err[256] = "";
    heal_policy *p = mk(HEAL_MODE_SUGGEST, NULL);
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 1000, &d), HEAL_VERDICT_QUEUE);
    assert_int_equal(decide(p, HEAL_ACT_STOP, "db", 2000, &d), HEAL_VERDICT_QUEUE);
    assert_int_equal(heal_policy_pending_list(p, 2000, pl, 8), 2);
    assert_int_equal(pl[0].id, 1);
    assert_int_equal(pl[0].action.kind, HEAL_ACT_RESTART);
    assert_string_equal(pl[0].why, "rule conf.d/web.conf:3");
    assert_int_equal(pl[0].expires_ms, 1000 + 900000);
    assert_int_equal(pl[1].id, 2);
    assert_int_equal(heal_policy_pending_list(p, 2000, pl, 1), 2); /* cap 1, 2 in all */

    assert_int_equal(heal_policy_approve(p, 1, 3000, &e, &d, err, sizeof err), 0);
    assert_int_equal(d.verdict, HEAL_VERDICT_EXECUTE);
    assert_int_equal(e.action.kind, HEAL_ACT_RESTART);
    assert_string_equal(e.action.service, "web");
    assert_string_equal(d.reason, "approved #1");
    assert_int_equal(heal_policy_pending_list(p, 3000, pl, 8), 1);
    assert_int_equal(heal_policy_approve(p, 1, 3000, &e, &d, err, sizeof err), -ENOENT);

    assert_int_equal(heal_policy_reject(p, 2, 3000, &e, err, sizeof err), 0);
    assert_int_equal(e.action.kind, HEAL_ACT_STOP);
    assert_int_equal(heal_policy_pending_list(p, 3000, pl, 8), 0);
    assert_int_equal(heal_policy_reject(p, 2, 3000, &e, err, sizeof err), -ENOENT);

    assert_int_equal(heal_policy_approve(p, 99, 3000, &e, &d, err, sizeof err), -ENOENT);
    assert_string_equal(err, "cannot approve #99: no such pending action (see `ippoc pending`)");

    /* Expiry after the 15 min TTL. */
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 10000, &d), HEAL_VERDICT_QUEUE);
    assert_int_equal(d.pending_id, 3);
    assert_int_equal(heal_policy_pending_list(p, 909999, pl, 8), 1);
    assert_int_equal(heal_policy_pending_list(p, 910000, pl, 8), 0);
    assert_int_equal(heal_policy_approve(p, 3, 910000, &e, &d, err, sizeof err), -ETIMEDOUT);
    assert_string_equal(err, "cannot approve #3: it expired 0ms ago (15m after it was queued) and was not run");
    assert_int_equal(heal_policy_approve(p, 3, 910000, &e, &d, err, sizeof err), -ENOENT);
    /* Rejecting an expired one says so too. */
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 920000, &d), HEAL_VERDICT_QUEUE);
    assert_int_equal(heal_policy_reject(p, d.pending_id, 1900000, NULL, err, sizeof err), -ETIMEDOUT);
    assert_non_null(strstr(err, "cannot reject"));
    /* An expired duplicate does not hide a new request. */
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 2000000, &d), HEAL_VERDICT_QUEUE);
    assert_int_equal(d.pending_id, 5);
    heal_policy_free(p);
}

static void small_queue(heal_policy_config *c)
{
    c->pending_max = 2;
    c->service = (heal_rate){1, 60000};
}

static void test_pending_limits(void **state)
{
    heal_decision d;
    heal_pending e;
    char err[256] = "";
    heal_policy *p = mk(HEAL_MODE_SUGGEST, small_queue);
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 0, &d), HEAL_VERDICT_QUEUE);
    assert_int_equal(decide(p, HEAL_ACT_SIGNAL, "web", 0, &d), HEAL_VERDICT_QUEUE);
    assert_int_equal(decide(p, HEAL_ACT_STOP, "web", 0, &d), HEAL_VERDICT_REFUSE);
    assert_int_equal(d.refusal, HEAL_REFUSE_QUEUE_FULL);
    /* Not-allowed actions are refused at once, not queued. */
    assert_int_equal(decide(p, HEAL_ACT_SYSCTL, "", 0, &d), HEAL_VERDICT_REFUSE);
    assert_int_equal(d.refusal, HEAL_REFUSE_NOT_ALLOWED);

    /* Approval re-checks the service limit (1 per minute). */
    assert_int_equal(heal_policy_approve(p, 1, 1000, &e, &d, err, sizeof err), 0);
    assert_int_equal(heal_policy_approve(p, 2, 2000, &e, &d, err, sizeof err), -EAGAIN);
    assert_int_equal(d.verdict, HEAL_VERDICT_REFUSE);
    assert_int_equal(d.refusal, HEAL_REFUSE_RATE_SERVICE);
    assert_int_equal(d.retry_at_ms, 61000);
    assert_non_null(strstr(err, "cannot approve #2 now: rate limited for service web"));
    assert_non_null(strstr(err, "it stays pending"));
    assert_int_equal(heal_policy_pending_list(p, 2000, NULL, 0), 1);
    assert_int_equal(heal_policy_approve(p, 2, 61000, &e, &d, err, sizeof err), 0);
    assert_int_equal(e.action.kind, HEAL_ACT_SIGNAL);

    /* ... and the allowlist, which a reload may have narrowed. */
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "db", 70000, &d), HEAL_VERDICT_QUEUE);
    uint64_t id = d.pending_id;
    set_svc(p, "db", HEAL_MODE_INHERIT, HEAL_ALLOW(HEAL_ACT_ALERT), (heal_rate){-1, 0});
    assert_int_equal(heal_policy_approve(p, id, 71000, &e, &d, err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "restart is not allowed for service db"));
    assert_int_equal(heal_policy_pending_list(p, 71000, NULL, 0), 0);
    heal_policy_free(p);
}

static void flap_suggest(heal_policy_config *c)
{
    flappy(c);
    c->mode = HEAL_MODE_SUGGEST;
    c->dry_run = false;
}

static void test_approve_flap_and_dry(void **state)
{
    heal_decision d;
    heal_pending e;
    char err[256] = "";
    heal_policy *p = mk(HEAL_MODE_SUGGEST, flap_suggest);
    set_svc(p, "web", HEAL_MODE_HEAL, HEAL_ALLOW_DEFAULT, (heal_rate){-1, 0});
    for (int i = 0; i < 3; i++)
        assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", i, &d), HEAL_VERDICT_EXECUTE);
    set_svc(p, "web", HEAL_MODE_SUGGEST, HEAL_ALLOW_DEFAULT, (heal_rate){-1, 0});
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 10, &d), HEAL_VERDICT_QUEUE);
    assert_int_equal(heal_policy_approve(p, d.pending_id, 20, &e, &d, err, sizeof err), -EAGAIN);
    assert_int_equal(d.refusal, HEAL_REFUSE_FLAPPING);
    assert_true(d.raise_alert);
    heal_policy_free(p);

    /* Under --dry-run an approval only records. */
    p = mk(HEAL_MODE_SUGGEST, NULL);
    assert_int_equal(decide(p, HEAL_ACT_RESTART, "web", 0, &d), HEAL_VERDICT_QUEUE);
    heal_policy_config c;
    heal_policy_config_defaults(&c);
    c.mode = HEAL_MODE_SUGGEST;
    c.dry_run = true;
    assert_int_equal(heal_policy_configure(p, &c, err, sizeof err), 0);
    assert_int_equal(heal_policy_approve(p, 1, 10, &e, &d, err, sizeof err), 0);
    assert_int_equal(d.verdict, HEAL_VERDICT_RECORD_ONLY);
    assert_string_equal(d.reason, "approved #1 (dry run: recorded, not run)");
    heal_policy_free(p);
}

static void test_config_and_results(void **state)
{
    heal_policy_config c;
    heal_policy *p;
    char err[256] = "";
    heal_policy_config_defaults(&c);
    c.mode = (heal_mode)7;
    assert_int_equal(heal_policy_new(&c, &p, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "mode"));
    heal_policy_config_defaults(&c);
    c.global = (heal_rate){3, 0};
    assert_int_equal(heal_policy_new(&c, &p, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "global rate limit: the window must be positive"));
    heal_policy_config_defaults(&c);
    c.service.max = -1;
    assert_int_equal(heal_policy_new(&c, &p, err, sizeof err), -EINVAL);
    heal_policy_config_defaults(&c);
    c.pending_ttl_ms = 0;
    assert_int_equal(heal_policy_new(&c, &p, err, sizeof err), -EINVAL);
    heal_policy_config_defaults(&c);
    c.flap_restarts = 2;
    c.flap_window_ms = -5;
    assert_int_equal(heal_policy_new(&c, &p, err, sizeof err), -EINVAL);

    heal_policy_config_defaults(&c);
    assert_int_equal(heal_policy_new(&c, &p, err, sizeof err), 0);
    heal_policy_service s;
    heal_policy_service_defaults(&s, "web");
    s.rate = (heal_rate){5, 0};
    assert_int_equal(heal_policy_set_service(p, &s, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "service web"));
    heal_policy_service_defaults(&s, "web");
    s.allow = 1u << 30;
    assert_int_equal(heal_policy_set_service(p, &s, err, sizeof err), -EINVAL);

    heal_action a = act(HEAL_ACT_RESTART, "web");
    heal_policy_record_result(p, &a, false, 0);
    heal_policy_record_result(p, &a, false, 1);
    heal_policy_svc_state st;
    heal_policy_service_state(p, "web", 2, &st);
    assert_int_equal(st.executed, 2);
    assert_int_equal(st.failed, 2);
    assert_int_equal(st.consecutive_failures, 2);
    heal_policy_record_result(p, &a, true, 3);
    heal_policy_service_state(p, "web", 3, &st);
    assert_int_equal(st.consecutive_failures, 0);
    assert_int_equal(st.failed, 2);
    heal_policy_service_state(p, "never-seen", 3, &st);
    assert_int_equal(st.executed, 0);
    heal_policy_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_dry_run),
        cmocka_unit_test(test_allowlist),
        cmocka_unit_test(test_rate_service),
        cmocka_unit_test(test_rate_global),
        cmocka_unit_test(test_flap),
        cmocka_unit_test(test_flap_boundary),
        cmocka_unit_test(test_pending),
        cmocka_unit_test(test_pending_limits),
        cmocka_unit_test(test_approve_flap_and_dry),
        cmocka_unit_test(test_config_and_results),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
