/* policy.h: the safety policy in front of every action IPPOC takes.
 *
 * For each proposed action it answers one of:
 *   EXECUTE      run it (mode heal)
 *   RECORD_ONLY  only write down what would be done (mode observe, --dry-run)
 *   QUEUE        put it in the pending queue for a person (mode suggest):
 *                `ippoc pending`, `ippoc approve ID`, `ippoc reject ID`
 *   REFUSE       not allowed for that service, rate limited (with the time it
 *                frees), flapping (a restart storm was stopped), queue full
 *
 * Checks, in order: the action kind is on the service's allowlist; the mode
 * (suggest queues here; rate and flap are checked when it is approved); the
 * flap rule (K starts/restarts of a service within W: the next one is refused,
 * the service is marked flapping and out->raise_alert is set once; restarts
 * stay refused until flap_cooldown_ms has passed or heal_policy_reset_flap);
 * the per-service then the global rate limit (at most max actions in any
 * window_ms: an action at t holds a slot during [t, t + window_ms)).
 *
 * Counting: an action counts (rate slots, and starts/restarts for the flap
 * rule) the moment decide (or approve) answers EXECUTE, since the caller then
 * runs it; counting at decision time, not at result time, means two rules
 * firing in the same loop tick cannot overshoot a limit. A caller that then
 * fails to run it (the audit append failed) leaves it counted: conservative.
 * RECORD_ONLY actions are counted the same way, so observe mode and --dry-run
 * show what heal mode would do, rate limits and flap stops included (the
 * decision says simulated). Every start/restart, the supervisor's automatic
 * ones after a crash too, must go through decide for flap detection to see a
 * crash loop; restart backoff is the supervisor's, not the policy's.
 * heal_policy_record_result feeds the outcome back (executed / failed /
 * consecutive failures per service, for status); limits do not depend on it.
 *
 * Flap rule: K starts/restarts may run within W; the next one inside W is
 * the storm: it is refused, the service is marked flapping and raise_alert is
 * set on that one decision (the caller sends the alert; a rule's own "stop,
 * alert" still works, only starts/restarts are refused). A service whose K-th
 * restart brought it back never asks again, so it raises no false alert.
 * After the cool-down the next start/restart clears the mark and the history.
 *
 * Machine-wide actions (sysctl, clean, a playbook not tied to a service) use
 * service "" and its entry (heal_policy_set_service with name "").
 *
 * Pure: no I/O, no clock: every time is passed in (use core_mono_ms, never
 * going backwards), so the whole policy is unit-testable without sleeping.
 * Not thread-safe: the daemon holds it on the loop thread only; other threads
 * (the API) post requests to the loop. */
#ifndef IPPOC_HEAL_POLICY_H
#define IPPOC_HEAL_POLICY_H

#include "heal/action.h"

typedef enum heal_mode {
    HEAL_MODE_INHERIT = -1, /* per-service: use the global mode */
    HEAL_MODE_OBSERVE = 0,
    HEAL_MODE_SUGGEST,
    HEAL_MODE_HEAL,
} heal_mode;

typedef enum heal_verdict {
    HEAL_VERDICT_EXECUTE = 0,
    HEAL_VERDICT_RECORD_ONLY,
    HEAL_VERDICT_QUEUE,
    HEAL_VERDICT_REFUSE,
} heal_verdict;

typedef enum heal_refusal {
    HEAL_REFUSE_NONE = 0,
    HEAL_REFUSE_INVALID,      /* unknown action kind */
    HEAL_REFUSE_NOT_ALLOWED,  /* not on the service's allowlist */
    HEAL_REFUSE_RATE_SERVICE, /* the service's rate limit */
    HEAL_REFUSE_RATE_GLOBAL,  /* the global rate limit */
    HEAL_REFUSE_FLAPPING,     /* a restart of a service marked flapping */
    HEAL_REFUSE_QUEUE_FULL,   /* suggest mode, pending queue full */
    HEAL_REFUSE_TARGET,       /* the engine's checks of the target: a protected pid, a path that is
                                 not the service's config_path, no known-good copy */
} heal_refusal;

#define HEAL_ALLOW(kind) (1u << (kind))
/* The default allowlist: start, stop, restart, signal, renice, limit memory,
 * limit cpu, alert, freeze, thaw, restore (of the service's own config_path).
 * sysctl, clean, playbooks and the pid-targeted signal-process and
 * renice-process must be allowed explicitly. */
#define HEAL_ALLOW_DEFAULT                                                                   \
    (HEAL_ALLOW(HEAL_ACT_START) | HEAL_ALLOW(HEAL_ACT_STOP) | HEAL_ALLOW(HEAL_ACT_RESTART) |  \
     HEAL_ALLOW(HEAL_ACT_SIGNAL) | HEAL_ALLOW(HEAL_ACT_RENICE) | HEAL_ALLOW(HEAL_ACT_LIMIT_MEMORY) | \
     HEAL_ALLOW(HEAL_ACT_LIMIT_CPU) | HEAL_ALLOW(HEAL_ACT_ALERT) | HEAL_ALLOW(HEAL_ACT_FREEZE) |    \
     HEAL_ALLOW(HEAL_ACT_THAW) | HEAL_ALLOW(HEAL_ACT_RESTORE))
#define HEAL_ALLOW_ALL ((1u << HEAL_ACT_COUNT) - 1)

#define HEAL_RATE_MAX 10000 /* the largest max of one rate limit */

/* At most max actions in any window_ms; max 0 = unlimited, -1 (per-service
 * only) = use the global config's per-service default. */
typedef struct heal_rate {
    int max;
    int64_t window_ms;
} heal_rate;

typedef struct heal_policy_config {
    heal_mode mode;            /* default heal */
    bool dry_run;              /* default false; wins over every mode */
    heal_rate global;          /* all actions together; default 30 per 1m */
    heal_rate service;         /* per service, default for each; default 6 per 5m */
    int flap_restarts;         /* K; default 5; 0 = no flap detection */
    int64_t flap_window_ms;    /* W; default 5m */
    int64_t flap_cooldown_ms;  /* default 15m; 0 = until heal_policy_reset_flap */
    int64_t pending_ttl_ms;    /* default 15m */
    int pending_max;           /* default 64 */
} heal_policy_config;

typedef struct heal_policy_service {
    char name[HEAL_NAME_MAX]; /* "" = machine-wide actions */
    heal_mode mode;           /* default HEAL_MODE_INHERIT */
    uint32_t allow;           /* HEAL_ALLOW(kind) bits; default HEAL_ALLOW_DEFAULT */
    heal_rate rate;           /* default {-1, 0}: the config's service default */
} heal_policy_service;

typedef struct heal_decision {
    heal_verdict verdict;
    heal_refusal refusal;    /* REFUSE only */
    heal_mode mode;          /* the mode in force for this action */
    bool dry_run;
    bool simulated;          /* observe or dry-run: nothing runs, even on EXECUTE-like paths */
    bool raise_alert;        /* this decision marked the service flapping: alert once */
    uint64_t pending_id;     /* QUEUE */
    int64_t retry_at_ms;     /* rate limited / flapping: when it frees (0: on reset only) */
    char reason[256];        /* human text, for the audit record and the CLI */
} heal_decision;

typedef struct heal_pending {
    uint64_t id;
    heal_action action;
    char why[256];           /* who asked: rule text, "api", ... */
    int64_t queued_ms;
    int64_t expires_ms;
} heal_pending;

typedef struct heal_policy_svc_state {
    bool flapping;
    int64_t flapping_since_ms;
    int64_t flapping_until_ms; /* 0: until reset */
    int recent_restarts;       /* starts/restarts within the flap window */
    int recent_actions;        /* actions within the service's rate window */
    uint64_t executed, failed; /* results fed by heal_policy_record_result */
    int consecutive_failures;
} heal_policy_svc_state;

typedef struct heal_policy heal_policy;

const char *heal_mode_name(heal_mode m);        /* "observe", "suggest", "heal"; "inherit" */
int heal_mode_parse(const char *s);             /* the mode, or -1 */
const char *heal_verdict_name(heal_verdict v);  /* "execute", "record", "queue", "refuse" */
const char *heal_refusal_name(heal_refusal r);  /* "not allowed", "rate limited", ... */

void heal_policy_config_defaults(heal_policy_config *c);
void heal_policy_service_defaults(heal_policy_service *s, const char *name);
/* Parses an allowlist: action names separated by commas and/or blanks
 * ("start, restart, limit memory"), plus "limit" (both limits), "default"
 * (the default set) and "all". Returns 0 or -EINVAL (err names the word). */
int heal_policy_allow_parse(const char *s, uint32_t *mask, char *err, size_t errlen);

/* Returns 0 or -EINVAL (err says which field) / -ENOMEM. */
int heal_policy_new(const heal_policy_config *cfg, heal_policy **out, char *err, size_t errlen);
void heal_policy_free(heal_policy *p);
/* Replaces the global config (a reload); keeps counters, flap state and the
 * pending queue (windows keep their newest entries). */
int heal_policy_configure(heal_policy *p, const heal_policy_config *cfg, char *err, size_t errlen);
/* Adds or replaces one service's settings; keeps its state. */
int heal_policy_set_service(heal_policy *p, const heal_policy_service *s, char *err, size_t errlen);

/* Decides about action a, proposed for reason why (may be NULL; kept with a
 * queued action). Fills *out; returns out->verdict. */
heal_verdict heal_policy_decide(heal_policy *p, const heal_action *a, const char *why, int64_t now_ms,
                                heal_decision *out);
/* Puts a into the pending queue whatever the mode (a caller's rule says a
 * person decides: the brain's preferences); fills *out (QUEUE, or REFUSE when
 * the queue is full) like decide. */
heal_verdict heal_policy_queue(heal_policy *p, const heal_action *a, const char *why, int64_t now_ms,
                               heal_decision *out);
/* The outcome of an action that ran (EXECUTE or approved). */
void heal_policy_record_result(heal_policy *p, const heal_action *a, bool ok, int64_t now_ms);

/* Live pending actions, oldest first: copies up to cap into out and returns
 * how many there are in all. */
size_t heal_policy_pending_list(heal_policy *p, int64_t now_ms, heal_pending *out, size_t cap);
/* Approves pending id: re-checks the allowlist, the flap rule and the rate
 * limits now; on success removes it, copies it to *out, counts it and sets *d
 * (EXECUTE, or RECORD_ONLY under --dry-run). Returns 0; -ENOENT (unknown id),
 * -ETIMEDOUT (it expired; removed), -EPERM (no longer allowed; removed),
 * -EAGAIN (rate limited or flapping; stays queued, d->retry_at_ms says
 * when). err always says why in words. */
int heal_policy_approve(heal_policy *p, uint64_t id, int64_t now_ms, heal_pending *out, heal_decision *d,
                        char *err, size_t errlen);
/* Rejects pending id: removes it and copies it to *out (may be NULL).
 * Returns 0, -ENOENT or -ETIMEDOUT (expired already; removed). */
int heal_policy_reject(heal_policy *p, uint64_t id, int64_t now_ms, heal_pending *out, char *err, size_t errlen);

/* Clears a service's flapping mark and restart history (`ippoc` reset). */
void heal_policy_reset_flap(heal_policy *p, const char *service);
/* A service's live state (zeros for a service never seen). */
void heal_policy_service_state(heal_policy *p, const char *service, int64_t now_ms, heal_policy_svc_state *out);

#endif
