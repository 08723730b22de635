/* heal.h: the heal module's public face: the autonomic loop that supervises
 * services, probes them, evaluates the rules and repairs what fails, with
 * every action going through the safety policy and the audit log.
 *
 * Configuration (kept raw by core/config.c in cfg->raw[], checked here):
 *
 *   [heal]
 *   mode        = observe | suggest | heal     (default heal)
 *   dry_run     = yes | no                     (default no)
 *   max_actions = N per DURATION               (all actions, e.g. 10 per 1m)
 *   service_max_actions = N per DURATION       (default per service)
 *   flap        = N restarts within DURATION   (e.g. 5 restarts within 1m)
 *   flap_cooldown = DURATION                   (default 15m; then retried while
 *                                               the trouble holds, with backoff)
 *   verify      = DURATION                     (probe again until then; 30s)
 *   allow       = ACTIONS                      (for the machine-wide rules)
 *   rule        = RULE                         (machine-wide; repeatable)
 *
 *   [service.NAME]
 *   type, command, cwd, env, ... (every key of heal_service_config_set)
 *   allow       = ACTIONS       (allowlist, see heal_policy_allow_parse)
 *   mode        = observe | suggest | heal     (overrides [heal])
 *   max_actions = N per DURATION
 *   probe_interval = DURATION   (default interval of the service's probes)
 *   rule        = RULE          (repeatable; see rules.h for the grammar)
 *
 *   [alert.NAME]
 *   url     = http(s)://...     (webhook: a JSON POST per alert)
 *   timeout = DURATION          (default 5s)
 *
 *   [evolve]                    (src/evolve; docs/evolve.md)
 *   changes   = execute | approve | refuse   (genome changes; default approve)
 *   probation = DURATION                     (watch after merge; default 10m)
 *
 * Threads: heal_engine_new/reconfigure/stop/free/tick/approve/reject run on
 * the loop thread only. The *_json readers and heal_engine_audit_path are
 * safe from any thread: they copy a snapshot the loop publishes each tick
 * (and after each incident change) under the engine's own mutex. Slow work
 * (audit appends with their fdatasync, webhook POSTs, directory cleaning)
 * runs on the libuv thread pool. */
#ifndef IPPOC_HEAL_H
#define IPPOC_HEAL_H

#include <uv.h>

#include "core/core.h"
#include "heal/action.h"
#include "memory/memory.h"

#include <jansson.h>

typedef struct heal_engine heal_engine;

/* Checks every [heal], [service.NAME] and [alert.NAME] key of cfg. Returns 0,
 * or -EINVAL with "FILE:LINE: reason" (rule errors: "FILE:LINE:COL: ...") in
 * err. Keeps no state; any thread. */
int heal_config_check(const core_config *cfg, char *err, size_t errlen);

/* Builds the engine on loop: opens <state_dir>/audit.log, creates the
 * supervisors, starts every service and its probes. Returns 0 or -errno. */
int heal_engine_new(uv_loop_t *loop, const core_config *cfg, mem_t *mem, heal_engine **out,
                    char *err, size_t errlen);
/* Applies a new configuration (SIGHUP): new rules and policy at once;
 * services whose config changed are restarted, removed ones stopped, new
 * ones started. On error nothing changes. */
int heal_engine_reconfigure(heal_engine *e, const core_config *cfg, char *err, size_t errlen);
/* The kernel bridge device renice actions go through (NULL: setpriority()
 * only). The daemon sets it from sense_kernel_device() each tick. */
void heal_engine_set_nice_device(heal_engine *e, const char *path);
/* Once a second, after mem_tick: resource rules, snapshots. */
void heal_engine_tick(heal_engine *e, int64_t now_ms);

/* What anomalous(METRIC) rules ask, on the loop thread (ippocd's anomaly
 * detection; heal does not link it): 1 when a watched series whose family
 * matches the glob `metric` and whose canonical labels contain `labels` is
 * anomalous now (key gets its name{labels}, score its peak), 0 when none
 * is, < 0 when detection is off. */
typedef int (*heal_anomaly_fn)(void *ud, const char *metric, const char *labels, char *key, size_t keylen,
                               double *score);
/* Sets that hook (NULL: anomalous() is never true). Loop thread. */
void heal_engine_set_anomaly(heal_engine *e, heal_anomaly_fn fn, void *ud);
/* Stops probes and every supervised service; done(ud) runs once they are all
 * down (possibly before this returns). Then call heal_engine_free. */
void heal_engine_stop(heal_engine *e, void (*done)(void *ud), void *ud);
/* Frees everything; handles close on the next loop iterations, so run the
 * loop until it returns before closing it. NULL is fine. */
void heal_engine_free(heal_engine *e);

/* ---- readers: any thread; malloc'd JSON text, free() it; NULL on OOM ---- */
/* {"services":[{name,type,state,pid,restarts,last_exit,uptime_ms,...}],
 *  "pending":N, "mode":"heal", "incidents_open":N} */
char *heal_engine_services_json(heal_engine *e);
/* {"incidents":[...]} newest first (the last 100 kept in the engine). */
char *heal_engine_incidents_json(heal_engine *e);
/* One incident by id, or NULL when unknown. */
char *heal_engine_incident_json(heal_engine *e, uint64_t id);
/* {"pending":[{id, service, action, why, queued_ms, expires_ms}]} */
char *heal_engine_pending_json(heal_engine *e);
/* The audit log's path (fixed for the engine's life). */
const char *heal_engine_audit_path(heal_engine *e);

/* ---- loop thread only (the API must post these to the loop) ---- */
/* Approves a pending action: re-checked by the policy, then run like any
 * other (audit intent, execute, result). 0 or -errno with err. */
int heal_engine_approve(heal_engine *e, uint64_t id, const char *who, char *err, size_t errlen);
int heal_engine_reject(heal_engine *e, uint64_t id, const char *who, char *err, size_t errlen);

/* ---- the brain's hands (loop thread only) ---- */
/* Opens an incident with no actions for service (may be "" for the
 * machine), state "diagnosing" until heal_engine_propose or
 * heal_engine_incident_close; what: e.g. "diagnosis: anomaly in web". It is
 * an incident like any other: incident.open event, /v1/incidents with its
 * evidence (stolen; NULL: {}). *id gets its id. 0, -ENOENT (unknown
 * service), -ENOMEM; err says why. */
int heal_engine_incident_new(heal_engine *e, const char *service, const char *what, json_t *evidence,
                             uint64_t *id, char *err, size_t errlen);
/* Sets key (e.g. "signature", "diagnosis") in the incident's JSON (what
 * /v1/incidents/ID and its later incident.* events show); replaces an
 * earlier value of that key. value is stolen. 0, -ENOENT (unknown
 * incident), -EINVAL (NULL value, or a key heal itself writes: id, state,
 * actions, ...). */
int heal_engine_incident_attach(heal_engine *e, uint64_t id, const char *key, json_t *value);
/* Runs acts (typed, each through the policy and the audit log like a
 * rule's: decision, intent, execute, result; mode suggest queues them,
 * refused ones are recorded and never run), then the verify step; the
 * outcome is the incident's incident.resolved / incident.failed event, whose
 * JSON then has "by": who, "why" and "proposed" (the actions' text), and
 * whose "actions" entries of this attempt carry "by". A closed incident is
 * reopened for the attempt (its earlier results kept). The audit records'
 * reason names who. who: e.g. "brain"; n: 1..8. 0, -ENOENT unknown
 * incident, -EBUSY its actions (or their verify step) are running, -EINVAL
 * bad arguments; err says why. */
int heal_engine_propose(heal_engine *e, uint64_t id, const heal_action *acts, int n, const char *who,
                        const char *why, char *err, size_t errlen);
/* heal_engine_propose, but every action the policy would run now is queued
 * for a person's approval instead (`ippoc pending`): a preference said so
 * (outside a maintenance window). Same returns. */
int heal_engine_propose_ask(heal_engine *e, uint64_t id, const heal_action *acts, int n, const char *who,
                            const char *why, char *err, size_t errlen);
/* Approves pending action id with an edit: edit (rule-language action text
 * for the pending action's service) runs instead of it, after passing the
 * policy like any other action; the audit record and the heal.action event
 * (its "edit_of": the replaced action) say it was an edit. 0, -ENOENT (no
 * such pending action), -EINVAL (the edit does not parse), -EPERM (refused),
 * -EAGAIN (rate limited) with err. Loop thread. */
int heal_engine_approve_edit(heal_engine *e, uint64_t id, const char *who, const char *edit, char *err,
                             size_t errlen);
/* Closes an incident nobody acts on (e.g. a diagnosis of "none"): resolved
 * or failed with reason. 0 (also when it is closed already), -ENOENT,
 * -EBUSY while its actions run. */
int heal_engine_incident_close(heal_engine *e, uint64_t id, bool resolved, const char *reason);
/* ---- the cell's changes (src/evolve; loop thread only) ---- */
/* Runs an approved "genome" action (op "apply" / "tool", arg) on the thread
 * pool; 0 or -errno with err. */
typedef int (*heal_genome_fn)(void *ud, const char *op, const char *arg, char *err, size_t errlen);
/* Sets that executor (NULL: genome actions fail "unavailable"). */
void heal_engine_set_genome(heal_engine *e, heal_genome_fn fn, void *ud);
/* An action not tied to an incident (a genome change, a tool's proposal):
 * the policy decides (a genome action is for service "cell", allowed and
 * moded by [evolve] changes = execute | approve | refuse), the decision or
 * intent goes to the audit log with reason "WHO: WHY", then it runs (on the
 * pool for a genome action), is queued for `ippoc approve`, or is refused;
 * its heal.action / heal.pending / heal.refused event like any action's.
 * verdict gets "execute", "record", "queue" or "refuse"; err a human text
 * (the reason; for a queued one "pending #ID: approve with `ippoc approve
 * ID`"). 0 (execute, record, queue), -EPERM refused, -EINVAL bad action. */
int heal_engine_change(heal_engine *e, const heal_action *a, const char *who, const char *why, char *verdict,
                       size_t vlen, char *err, size_t errlen);
/* heal_action_parse_text (action.h, included above) parses one proposed
 * action's text; heal_action_format writes it. */
/* The static part of the safety policy, for an action only proposed (a
 * model's): its kind is on allow (the service's [service.X] allow text;
 * NULL or "" = the default allowlist) and its target is one heal accepts (a
 * restore names one of config_paths; a pid form never pid 0 or 1). Pure,
 * any thread; heal_engine_propose still applies the whole policy. 0,
 * -EPERM (not allowed) or -EINVAL (bad allowlist), with why. */
int heal_action_check(const heal_action *a, const char *allow, const char *const *config_paths, int npaths,
                      char *why, size_t whylen);
/* The ids of the actions waiting for approval now (what `ippoc pending`
 * lists), oldest first: up to max of them into ids. Returns how many are
 * waiting (may exceed max). Loop thread: read before and after
 * heal_engine_propose_ask to learn what a proposal queued. */
size_t heal_engine_pending_ids(heal_engine *e, uint64_t *ids, size_t max);

#endif
