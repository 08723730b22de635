/* brain.h: the brain module's public face: it deliberates about what goes
 * wrong (heal's reflexes already acted) and says why.
 *
 * Every signal (incident opened or failed, service exit, anomaly episode,
 * error-level log burst or new error template, config reload, changed file,
 * a user's question) enters one bounded, prioritised queue (the thalamus).
 * Signals about one component close in time merge into one deliberation.
 * Deliberations run on the libuv thread pool, [brain] workers at once: each
 * builds the incident's signature, recalls the nearest remembered cases and
 * runs the rule catalogue; the diagnosis is attached to heal's incident and
 * recorded as a brain.diagnosis event; with act = yes its proposed actions
 * (heal's typed actions only) go to heal's policy, and what healed is
 * remembered in memory's `cases` table for the next time.
 *
 *   [brain]
 *   enabled = yes|no        (default yes)
 *   workers = N             (deliberations at once, 1..4, default 1)
 *   window  = DURATION      (evidence gathered after a signal, default 5s;
 *                            skipped when a remembered case matches)
 *   act     = yes|no        (default yes)
 *   kmsg    = PATH          (default /dev/kmsg)
 *   dpkg_log = PATH         (default /var/log/dpkg.log)
 *   audit_log = PATH        (default: heal's audit log)
 *   queue   = N             (signals waiting at most, default 64)
 *   merge   = DURATION      (signals about one component this close make one
 *                            deliberation, default 30s)
 *   deadline = DURATION     (a deliberation's time limit, default 10s)
 *   min_confidence = X      (an anomaly or log signal of a service opens an
 *                            incident only when the diagnosis names a fault
 *                            with at least this confidence, default 0.6)
 *
 * Threads: brain_new/reconfigure/tick/diagnose/free on the loop thread; the
 * *_json readers from any thread. */
#ifndef IPPOC_BRAIN_H
#define IPPOC_BRAIN_H

#include <stdint.h>
#include <uv.h>

#include "core/core.h"
#include "heal/heal.h"
#include "memory/memory.h"

typedef struct brain brain;
typedef struct logs_watch logs_watch; /* logs/logs.h (the log module's watch) */
typedef struct llm llm;               /* llm/llm.h (the language-model client) */

/* Checks [brain]: 0 or -EINVAL with "FILE:LINE: reason". Any thread. */
int brain_config_check(const core_config *cfg, char *err, size_t errlen);
/* heal and logs may be NULL (then nothing is acted on / no log evidence). */
int brain_new(uv_loop_t *loop, const core_config *cfg, mem_t *mem, heal_engine *heal, logs_watch *logs,
              brain **out, char *err, size_t errlen);
int brain_reconfigure(brain *b, const core_config *cfg, char *err, size_t errlen);
/* Once a second after heal's tick: new events -> signals -> deliberations. */
void brain_tick(brain *b, int64_t now_ms);
/* A user's question about service (POST /v1/diagnose): opens an incident
 * and queues a deliberation at once. 0 and *incident, or -errno with err.
 * Loop thread. */
int brain_diagnose_service(brain *b, const char *service, uint64_t *incident, char *err, size_t errlen);
/* Any thread: the diagnosis of an incident (malloc'd JSON), NULL when none (yet). */
char *brain_diagnosis_json(brain *b, uint64_t incident);
/* Any thread: {"enabled","workers","queue","running","done","dropped","merged","cases",...} */
char *brain_status_json(brain *b);
/* The brain's model and knowledge (either may be NULL: the brain then
 * thinks without them). Set once after brain_new, before the first tick;
 * both outlive the brain. Loop thread. */
void brain_set_thinking(brain *b, llm *l, mem_know *know);

/* Answers a question from memory (POST /v1/ask, `ippoc ask`): malloc'd JSON
 * {"question","kind","answer","records":[{"ref","type","id",...}],"model",...}
 * (see docs/ask.md), or NULL with *status (400 bad question, 503) and err.
 * Blocks while a model thinks: an HTTP thread or a worker, never the loop. */
char *brain_ask_json(brain *b, const char *question, int64_t now_ms, int *status, char *err, size_t errlen);

/* The daily digest of day ("YYYY-MM-DD", NULL = today): malloc'd JSON, or
 * NULL with err (no such day). Any thread. */
char *brain_digest_json(brain *b, const char *day, char *err, size_t errlen);

/* The preferences in force: configured and learned, with what each changed.
 * malloc'd JSON. Any thread. */
char *brain_prefs_json(brain *b);
/* Forgets one learned preference (DELETE /v1/prefs/ID, `ippoc prefs forget
 * ID`): 0, -ENOENT (no such), -EPERM (configured in [prefs]) with err. Any
 * thread. */
int brain_prefs_forget(brain *b, const char *id, char *err, size_t errlen);

/* Waits for running deliberations (runs the loop), then frees. NULL is fine. */
void brain_free(brain *b);

#endif
