/* brain_int.h: internals shared by the files of src/brain and by its unit
 * tests (never included from outside the module and its tests).
 *
 *  - the signature builder (signature.h, owned by the signature part of
 *    issue 10);
 *  - the diagnosis rule catalogue (diagnose.c): a signature in, a diagnosis
 *    out, pure (no I/O, any thread);
 *  - the case store (cases.c): remembered incidents, their features and what
 *    healed them, kept in memory's `cases` table; recall by weighted Jaccard;
 *  - the thalamus (thalamus.c): the bounded, prioritised queue of signals,
 *    merging signals about one component into one deliberation.
 * See /work/notes/brain-contract.md for the JSON shapes. */
#ifndef IPPOC_BRAIN_INT_H
#define IPPOC_BRAIN_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "brain/brain.h"

/* ---- signature (signature.c, signature.h: brain_sig_ctx, brain_signature_build) ---- */
#include "brain/signature.h"

/* ---- the fault types ----------------------------------------------------------- */
/* "none", "crash", ... "unknown": the contract's fixed list, in its order. */
extern const char *const brain_fault_types[];
int brain_fault_type_count(void);
bool brain_fault_type_valid(const char *s);

/* ---- case store (cases.c) ------------------------------------------------------- */
#define BRAIN_CASES_MAX 2000      /* oldest forgotten past this (kept in the table) */
#define BRAIN_CASE_HITS 3         /* cases shown in a diagnosis */
#define BRAIN_CASE_CLOSE 0.6      /* a close case: raises confidence, its fix first */
#define BRAIN_CASE_VERY_CLOSE 0.85 /* a very close healed case: the window is skipped */
#define BRAIN_CASE_AGREE 0.7       /* ... or a close one whose fault type the rules name too */

typedef struct brain_case {
    int64_t id;
    uint64_t incident;     /* heal's incident id when it was recorded */
    int64_t ts;            /* wall ms */
    char component[64];
    char kind[16];         /* "service" or "machine" */
    char fault_type[32];
    json_t *features;      /* array of strings */
    json_t *attempts;      /* [{"actions":["restore /x","restart"],"healed":true,"ms":1234}] */
    int fixed, tried;      /* attempts that healed / made */
    int64_t mitigate_ms;   /* from the signal to healed (0: not healed) */
} brain_case;

/* A recalled case (copies: the caller frees with brain_case_hits_free). */
typedef struct brain_case_hit {
    int64_t id;
    uint64_t incident;
    int64_t ts;
    double similarity;
    char fault_type[32];
    char component[64];
    json_t *fixed_by;      /* actions of the last attempt that healed, [] when none */
    int fixed, tried;
    int64_t mitigate_ms;
    json_t *failed_by;     /* actions of attempts that did not heal (unique), NULL or [] when none */
} brain_case_hit;

typedef struct brain_cases {
    pthread_mutex_t lock;
    mem_t *mem;            /* NULL: nothing durable (tests) */
    brain_case *v;
    int n, cap;
    int64_t next_id;
} brain_cases;

/* Loads every stored case (mem may be NULL). 0 or -errno with err. */
int brain_cases_open(brain_cases *c, mem_t *mem, char *err, size_t errlen);
void brain_cases_close(brain_cases *c);
int brain_cases_count(brain_cases *c);
/* The max nearest cases to features (a JSON array of strings) with a
 * similarity > 0, best first. Any thread. Returns how many. */
int brain_cases_recall(brain_cases *c, const json_t *features, brain_case_hit *out, int max);
void brain_case_hits_free(brain_case_hit *h, int n);
/* Weighted Jaccard of two feature arrays, weights from the store's document
 * frequencies (rarer features weigh more). Any thread. */
double brain_cases_similarity(brain_cases *c, const json_t *a, const json_t *b);
/* Records a new case (features copied); returns its id (> 0) or -errno. */
int64_t brain_cases_add(brain_cases *c, uint64_t incident, const char *component, const char *kind,
                        const char *fault_type, const json_t *features);
/* Records the outcome of one attempt (actions: array of action texts). */
int brain_cases_outcome(brain_cases *c, int64_t id, const json_t *actions, bool healed, int64_t mitigate_ms);
/* The case as JSON (for tests and the status); NULL when unknown. */
json_t *brain_case_json(brain_cases *c, int64_t id);

/* ---- diagnosis (diagnose.c) ---------------------------------------------------- */
/* Diagnoses sig (the contract's signature). hits: recalled cases (may be
 * NULL), best first. Returns the diagnosis JSON (never NULL but on OOM):
 * fault_type, component, root_cause, confidence, source, evidence,
 * proposed_actions, cases, ts, took_ms. Pure; any thread. */
json_t *brain_diagnose(const json_t *sig, const brain_case_hit *hits, int nhits);

/* Splits proposed actions into attempts: each attempt runs the actions up to
 * and including the first restart/start/stop (or to the end). Fills first[]
 * with the index of each attempt's first action; returns the attempts. */
int brain_attempts(const json_t *proposed, int *first, int max);

/* ---- fleet wisdom (fleet.c; brain.h's brain_set_wisdom) ------------------------ */
#define BRAIN_WISDOM_MAX 8            /* candidates asked of the hook */
#define BRAIN_WISDOM_THRESHOLD 0.3    /* [brain] wisdom_threshold's default */

/* Adds the fleet's candidates c[0..n) (the hook's answer for features and
 * service_kind) to diag (brain_diagnose's, with the same hits), after the
 * cell's own memory: each becomes an evidence line (kind "wisdom") and an
 * entry of diag's "wisdom" object saying what became of it ("use"):
 * "own_memory" (a close case of this cell's healed by the same action),
 * "failed_here" (a close case of this cell's tried it and it did not heal),
 * "own_fix" (a close case of this cell's healed by another fix: that one
 * decides), "below_threshold", "not_an_action" (not one of heal's typed
 * actions the fleet may propose: no pid, program, alert or genome), or
 * "proposed": put first in proposed_actions ("by":"wisdom"; preparing
 * actions before the others), with a why naming k of n and the cells. nc < 0:
 * the hook failed; diag's "wisdom" says so and nothing else changes. A
 * "none" diagnosis gets the evidence but no proposal. Pure, any thread. */
void brain_fleet_merge(json_t *diag, const json_t *features, const char *service_kind, const brain_case_hit *hits,
                       int nhits, const brain_wisdom_cand *c, int nc, double threshold);
/* The texts of attempt actions (an array of strings) proposed from fleet
 * wisdom in diag (its "wisdom" candidates with use "proposed" and the
 * proposal marked "by":"wisdom"): calls outcome once for each. Returns how
 * many calls. */
int brain_fleet_outcome(const json_t *diag, const json_t *attempt, bool worked, brain_wisdom_outcome_fn outcome,
                        void *ud);

/* ---- acting (brain.c) ----------------------------------------------------------- */
/* Acts on a diagnosis of incident (loop thread): its proposed actions, one
 * attempt at a time, through heal_engine_propose; each outcome is recorded
 * in case case_id (0: none). Only texts heal_action_parse_text accepts are
 * ever proposed. Used by publish() and the tests. */
void brain_act(brain *b, uint64_t incident, int64_t case_id, const json_t *diagnosis, int64_t signal_ms);

/* ---- the model in diagnosis (think.c) ---------------------------------------- */
#define BRAIN_THINK_KNOW 4          /* knowledge chunks in a prompt */
#define BRAIN_THINK_TEXT_MAX 300    /* a record's text in a prompt, bytes */
#define BRAIN_THINK_PER_LIST 8      /* entries of one signature list in a prompt (most relevant first) */
#define BRAIN_THINK_SIG_MAX 48      /* signature records in a prompt */
#define BRAIN_THINK_MIN_MS 1000     /* less left of the deadline: the model is not asked */
#define BRAIN_THINK_DISAGREE 0.25   /* a disagreement lowers confidence by this share of the model's */

typedef struct llm_answer llm_answer; /* llm/llm.h */
typedef struct brain_mind brain_mind; /* below */

/* The prompt's records, each with its short reference: E1.. the
 * signature's entries, R1.. the rules' evidence, C1.. the recalled cases,
 * K1.. knowledge chunks: [{"ref","type","text",...ids}] (new reference). */
json_t *brain_think_records(const json_t *sig, const json_t *diag, const mem_hit *know, size_t nknow);
/* The user message (malloc'd): the rules' diagnosis, every record by ref,
 * the fault types and the typed actions. */
char *brain_think_prompt(const json_t *sig, const json_t *diag, const json_t *records);
extern const char brain_think_system[];
extern const char brain_think_schema[]; /* hypotheses, explanation, actions */

typedef struct brain_think_check {
    const json_t *records;   /* brain_think_records */
    const json_t *diagnosis; /* the rules' */
    const json_t *services;  /* brain_think_services; NULL: only the diagnosed component, default allowlist */
} brain_think_check;
/* An answer's check (the llm_request validate callback): LLM_OK,
 * LLM_INVALID (not the schema's JSON, an unknown ref or fault type, an
 * action that does not parse, names no configured service or that the
 * static safety policy refuses) or LLM_UNSURE (its best hypothesis
 * disagrees with the rules' fault type or component and cites nothing). */
int brain_think_validate(const brain_think_check *c, const char *content, char *why, size_t whylen);
/* The diagnosis with a checked answer merged (a new object; NULL when
 * content is no JSON object): "model" {provider, model, confidence, unsure,
 * hypotheses, explanation [{claim, refs, cites: records}], attempts,
 * disagreement, rules_confidence}, "agreement" agree|disagree|none; the
 * rules' fault type and component never change; a disagreement lowers the
 * confidence; the model's actions (not an unsure answer's) come after the
 * rules', "by":"model". Pure. */
json_t *brain_think_merge(const json_t *diag, const json_t *records, const char *content, const llm_answer *meta);
/* Sets "model": {"absent": why, "attempts"?}: nothing else changes. */
void brain_think_absent(json_t *diag, const char *why, const char *attempts);
/* {"NAME":{"allow":"...","config_paths":[...]}} of every [service.NAME]. */
json_t *brain_think_services(const core_config *cfg);

typedef struct brain_think_in {
    const json_t *signature;
    const json_t *services;  /* brain_think_services */
    uint64_t incident;       /* heal's; 0: none yet (no budget charge, no links) */
    int64_t deadline_mono;   /* the deliberation's deadline (core_mono_ms) */
} brain_think_in;
/* Worker thread: asks the model (when one is available and at least
 * BRAIN_THINK_MIN_MS are left) and merges its answer into diag, or says in
 * "model" why there is none; links the incident to its cause and actions
 * in the knowledge store when one is set. */
void brain_think(const brain_mind *m, const brain_think_in *in, json_t *diag);

/* ---- thalamus (thalamus.c) --------------------------------------------------- */
enum {
    BRAIN_SIG_CHANGE = 1,   /* config.reload, file.changed */
    BRAIN_SIG_ANOMALY = 2,  /* anomaly.episode */
    BRAIN_SIG_LOG = 2,      /* log.template.new / log.burst at level error */
    BRAIN_SIG_EXIT = 3,     /* service.exit */
    BRAIN_SIG_OPEN = 4,     /* incident.open */
    BRAIN_SIG_FAILED = 5,   /* incident.failed */
    BRAIN_SIG_USER = 6,     /* POST /v1/diagnose */
};

typedef struct brain_signal {
    int prio;              /* BRAIN_SIG_* */
    char component[64];    /* service or log source ("" machine-wide) */
    char trigger[16];      /* crash|probe|rule|anomaly|log|user|change */
    uint64_t incident;     /* heal's incident, 0: none yet */
    int64_t first_ms, last_ms; /* wall ms of the first and last merged signal */
    int64_t not_before_ms; /* not started before this (evidence window) */
    int count;             /* signals merged into this one */
    bool full;             /* the evidence window has passed: diagnose for real */
    bool faulty;           /* evidence of a fault (exit, failed probe, error log) */
} brain_signal;

typedef struct brain_thal {
    brain_signal *q;
    int n, cap;
    int64_t merge_ms;      /* signals about one component this close merge */
    uint64_t queued, merged, dropped;
} brain_thal;

int brain_thal_init(brain_thal *t, int cap, int64_t merge_ms);
void brain_thal_free(brain_thal *t);
enum { BRAIN_THAL_QUEUED = 0, BRAIN_THAL_MERGED = 1 };
/* Queues s, or merges it into a queued signal about the same component
 * (priority: the higher; incident: the newer; count summed). A full queue
 * drops its lowest-priority (then oldest) signal, or s itself when s is the
 * lowest; counted in dropped. Returns BRAIN_THAL_QUEUED, _MERGED, or -ENOBUFS
 * when s was dropped. */
int brain_thal_push(brain_thal *t, const brain_signal *s);
/* Takes the highest-priority signal ready at now (not_before_ms <= now) whose
 * component busy() does not refuse (busy may be NULL); oldest first among
 * equals. 1 and *out, or 0 when none is ready. */
int brain_thal_pop(brain_thal *t, int64_t now_ms, bool (*busy)(void *ud, const char *component), void *ud,
                   brain_signal *out);
/* Turns one event into a signal: 1 when it is one, 0 when not (ignored). */
int brain_signal_from_event(const mem_event *ev, brain_signal *out);

/* ---- what the newer parts read (ask.c, think.c, prefs.c, dream.c) ------------ */
/* Set by brain_new and brain_set_thinking, fixed afterwards: safe to read
 * from any thread without the lock. */
typedef struct brain_mind {
    mem_t *mem;
    heal_engine *heal;   /* NULL in tests without heal */
    brain_cases *cases;
    llm *llm;            /* NULL: no model */
    mem_know *know;      /* NULL: no knowledge store */
} brain_mind;

const brain_mind *brain_mind_of(brain *b);
/* ask.c's other sources (added by the ask part): dpkg's log path (copied
 * under the lock) and the log watch (may be NULL). Any thread. */
logs_watch *brain_ask_sources(brain *b, char *dpkg_log, size_t n);

/* ---- dreaming (dream.c: the pass and its schedule; digest.c: the digest) ---- */
/* [dream] settings (see docs/brain.md "Dreaming"). */
typedef struct brain_dream_cfg {
    bool enabled;
    double idle_cpu, idle_psi;     /* percent: idle below both */
    int64_t idle_for_ms, every_ms;
    int digest_at_min;             /* minutes after local midnight, -1: none */
    double merge_similarity;       /* cases merge at or above this */
    double know_similarity;        /* knowledge chunks merge at or above this */
    int64_t half_life_ms;
    double floor;
} brain_dream_cfg;

typedef struct brain_dream brain_dream;

void brain_dream_cfg_defaults(brain_dream_cfg *c);
/* Parses [dream] of cfg: 0 or -EINVAL with "FILE:LINE: reason". */
int brain_dream_cfg_parse(const core_config *cfg, brain_dream_cfg *c, char *err, size_t errlen);
/* The schedule (loop thread). NULL-safe free; free waits for a running pass. */
int brain_dream_new(brain *b, uv_loop_t *loop, const brain_dream_cfg *cfg, brain_dream **out);
void brain_dream_reconfigure(brain_dream *d, const brain_dream_cfg *cfg);
/* Once a tick: idleness from memory's last values, starts a pass when due
 * (never while deliberating). */
void brain_dream_tick(brain_dream *d, int64_t now_ms, bool deliberating);
void brain_dream_free(brain_dream *d);
/* brain.c: the brain's schedule, and whether a deliberation runs. */
brain_dream *brain_dream_of(brain *b);
bool brain_deliberating(brain *b);
/* Whether the machine is idle at now by memory's last values (cpu busy share
 * and PSI some avg10 of cpu and io under the limits); a series that is
 * missing or stale does not count, but one of them must be there. */
bool brain_dream_idle_now(mem_t *mem, const brain_dream_cfg *c, int64_t now_ms);

/* One pass (any thread but the loop): re-clusters the cases, dedups and
 * decays the knowledge (when a store is set), writes the digest of day
 * (NULL: none) as a brain.digest event and a knowledge doc. stop (may be
 * NULL) is read between steps. Returns the report (the steps' counts);
 * the caller adds the baselines step and records the brain.dream event. */
json_t *brain_dream_pass(const brain_mind *m, const brain_dream_cfg *c, int64_t now_ms, const char *day,
                         const atomic_bool *stop);

/* The digest of a local day "YYYY-MM-DD" (digest.c), built from memory's
 * events and series only: NULL with err when the day is malformed or has no
 * events. Deterministic for the same memory. */
json_t *brain_digest_build(mem_t *mem, const char *day, char *err, size_t errlen);
/* Local day of ms into out[11]; the bounds [from, to] of a local day. */
void brain_day_of(int64_t ms, char out[11]);
int brain_day_bounds(const char *day, int64_t *from_ms, int64_t *to_ms);

/* Merges near-identical cases (cases.c): same fault type and component,
 * similarity >= threshold; the older id is kept, attempts and counts summed,
 * features united, the newer rows replaced by {"merged_into":ID}. A case
 * recorded or tried at settled_ms or later (heal may still report on it) is
 * left for a later pass. Appends {"kept":ID,"merged":[IDS]} to merges (may
 * be NULL). Returns cases merged. */
int brain_cases_recluster(brain_cases *c, double threshold, int64_t settled_ms, json_t *merges);

/* ---- preferences (prefs.c) ------------------------------------------------------- */
/* What operators taught by approving, rejecting and editing proposed actions,
 * per signature ("FAULT_TYPE COMPONENT", e.g. "crash web") and action, plus
 * the configured [prefs] (maintenance windows, services never touched).
 *
 *   [prefs]
 *   reject_after      = N   (rejections of an action for a signature before it
 *                            is no longer proposed for it; default 1)
 *   untouchable_after = N   (signatures whose proposals for a service were
 *                            rejected before the service is not touched at
 *                            all; default 3)
 *   window_after      = N   (restarts of a service approved inside one weekly
 *                            hour range before proposals outside it are
 *                            queued for approval; default 3; 0 = never learn)
 *   maintenance       = "Sat 02:00-04:00, Sun 02:00-04:00"  (disruptive
 *                            actions outside these are queued for approval)
 *   never             = web, db   (services nothing is proposed for) */
#define BRAIN_PREFS_WINDOWS 16
#define BRAIN_PREFS_NEVER 32
#define BRAIN_PREFS_TIMES 8

/* A weekly range: days (bit 0 = Sunday .. bit 6 = Saturday), minutes of the
 * day [from, to); to <= from runs past midnight into the next day. */
typedef struct brain_window {
    uint8_t days;
    int from_min, to_min;
} brain_window;

typedef struct brain_prefs_cfg {
    int reject_after, untouchable_after, window_after;
    brain_window maint[BRAIN_PREFS_WINDOWS];
    int nmaint;
    char maint_text[256];
    char never[BRAIN_PREFS_NEVER][64];
    int nnever;
} brain_prefs_cfg;

/* Checks and reads [prefs]: 0 or -EINVAL with "FILE:LINE: reason". */
int brain_prefs_cfg_parse(const core_config *cfg, brain_prefs_cfg *c, char *err, size_t errlen);
/* "Sat 02:00-04:00, Mon-Fri 22:00-23:30, daily 03:00-04:00": 0 with *n
 * windows, or -EINVAL with the reason (the part that is wrong) in err. */
int brain_window_parse(const char *s, brain_window *w, int max, int *n, char *err, size_t errlen);
/* Whether weekday wday (0 = Sunday) at minute of day minute is inside one. */
bool brain_window_has(const brain_window *w, int n, int wday, int minute);
/* The same for a wall-clock time (local time). */
bool brain_window_has_ms(const brain_window *w, int n, int64_t wall_ms);
/* "Sat,Sun 02:00-04:00" */
void brain_window_format(const brain_window *w, char *buf, size_t n);

typedef struct brain_prefs brain_prefs;
enum { BRAIN_PREF_APPROVE = 0, BRAIN_PREF_REJECT = 1, BRAIN_PREF_EDIT = 2 };

/* mem may be NULL (nothing durable: tests). Loads what was learned. */
int brain_prefs_new(mem_t *mem, const core_config *cfg, brain_prefs **out, char *err, size_t errlen);
int brain_prefs_reconfigure(brain_prefs *p, const core_config *cfg, char *err, size_t errlen);
void brain_prefs_free(brain_prefs *p);
/* One operator decision about action (heal's text) of service proposed
 * for signature sig; edit: the replacement (BRAIN_PREF_EDIT). Any thread. */
int brain_prefs_learn(brain_prefs *p, const char *sig, const char *service, const char *action, int verdict,
                      const char *edit, const char *who, int64_t ts_ms);
/* Learns from heal's heal.rejected / heal.action (approved) events: the
 * signature comes from the diagnosis attached to the incident the pending
 * action was proposed for. heal may be NULL. Loop thread. */
void brain_prefs_event(brain_prefs *p, heal_engine *heal, const mem_event *ev);
/* A copy of diagnosis with the preferences applied to proposed_actions
 * (removed, replaced), "preferences": [{"id","kind","rule","effect"}] when
 * any changed something, and each changed proposal's "why" naming it.
 * *ask: the actions left must wait for a person's approval (outside a
 * maintenance window). NULL on OOM. Counts what each preference changed. */
json_t *brain_prefs_apply(brain_prefs *p, const json_t *diagnosis, int64_t now_ms, bool *ask);
/* A brain.preferences event: {"incident","component","preferences",
 * "proposed_actions"} of a diagnosis the preferences changed. */
void brain_prefs_announce(mem_t *mem, uint64_t incident, const json_t *diagnosis);
/* {"settings","configured":[...],"learned":[...]}: malloc'd JSON. */
char *brain_prefs_dump(brain_prefs *p);
/* Forgets learned preference id ("12", "untouchable:web", "window:web"):
 * 0, -ENOENT, -EPERM (a configured one: change [prefs]). */
int brain_prefs_drop(brain_prefs *p, const char *id, char *err, size_t errlen);
/* The brain's preferences (brain.c). */
brain_prefs *brain_prefs_of(brain *b);

#endif
