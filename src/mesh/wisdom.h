/* wisdom.h: wisdom records and trust for the Telepathy mesh (issue 15, item
 * 4), internal to src/mesh. A wisdom record is what one cell may tell the
 * fleet: "for incidents with these signature features, this typed heal action
 * fixed it k of n times on this kind of host", a detector baseline (aggregate
 * statistics only) or a tuned knob set with its measured gain. Records are
 * encoded in a canonical binary form, signed with the origin's Ed25519 key,
 * checked against the redaction rule on the way out and on the way in
 * (docs/mesh/wisdom.md), stored with provenance in their own SQLite
 * file, and weighed by a per-peer trust score in the gossipsub v1.1 style.
 *
 * Errors: negative errno values with a message naming the field or byte
 * offset and the reason in err. */
#ifndef IPPOC_MESH_WISDOM_H
#define IPPOC_MESH_WISDOM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memory/memory.h"

/* ---- the record --------------------------------------------------------------------- */

#define MESH_WISDOM_MAX_BYTES 1024   /* an encoded, signed record: fits a 1,400-byte packet */
#define MESH_WISDOM_FEATURES_MAX 16  /* as the signature's features */
#define MESH_WISDOM_KNOBS_MAX 8
#define MESH_WISDOM_TOKEN_MAX 63     /* a feature token, metric or knob name */
#define MESH_WISDOM_ACTION_MAX 127   /* a heal action's text */
#define MESH_WISDOM_VALUE_MAX 31     /* a knob's value */
#define MESH_WISDOM_MIN_SAMPLES 30   /* a baseline aggregates at least this many samples */
#define MESH_WISDOM_MIN_RUNS 2       /* a knob set's gain comes from at least this many runs */
#define MESH_WISDOM_ID_BYTES 32      /* an origin: its Ed25519 public key */
#define MESH_WISDOM_SIG_BYTES 64

typedef enum mesh_wisdom_kind {
    MESH_WISDOM_FIX = 1,      /* an action fixed incidents with these features k of n times */
    MESH_WISDOM_BASELINE = 2, /* a detector baseline of one metric family */
    MESH_WISDOM_KNOBS = 3,    /* a tuned knob set and its measured gain */
} mesh_wisdom_kind;

/* A coarse host class: nothing that names one machine. */
typedef struct mesh_wisdom_host {
    uint8_t cpu_log2;     /* floor(log2(online CPUs)): 0 = 1 CPU, 3 = 8..15 */
    uint8_t mem_log2;     /* floor(log2(memory in GiB)), 0 below 2 GiB */
    uint8_t kernel_major, kernel_minor;
    char os[24];          /* os-release ID and VERSION_ID: "debian12" */
    char service[32];     /* the service kind: "nginx", "postgres" ("" = the machine) */
} mesh_wisdom_host;

typedef struct mesh_wisdom_fix {
    int nfeatures;                                              /* 1..16, sorted, unique */
    char features[MESH_WISDOM_FEATURES_MAX][MESH_WISDOM_TOKEN_MAX + 1];
    char action[MESH_WISDOM_ACTION_MAX + 1];                    /* heal's text: "restart", "renice 10" */
    uint32_t k, n;                                              /* fixed k of n tries, 1 <= n, k <= n */
} mesh_wisdom_fix;

typedef struct mesh_wisdom_baseline {
    char metric[MESH_WISDOM_TOKEN_MAX + 1]; /* a series family: "process.rss_bytes" */
    uint32_t count;                         /* samples aggregated, >= MESH_WISDOM_MIN_SAMPLES */
    double mean, stddev, p05, p50, p95;
} mesh_wisdom_baseline;

typedef struct mesh_wisdom_knob {
    char name[MESH_WISDOM_TOKEN_MAX + 1];  /* "shared_buffers", "vm.swappiness" */
    char value[MESH_WISDOM_VALUE_MAX + 1]; /* as the space file writes it: "256MB", "10" */
} mesh_wisdom_knob;

typedef struct mesh_wisdom_knobs {
    char objective[MESH_WISDOM_TOKEN_MAX + 1]; /* what was measured: "pgbench.tps" */
    int nknobs;                                /* 1..8, sorted by name, unique */
    mesh_wisdom_knob knobs[MESH_WISDOM_KNOBS_MAX];
    double gain, lo, hi;                       /* relative gain and its interval, lo <= gain <= hi */
    uint32_t runs;
} mesh_wisdom_knobs;

typedef struct mesh_wisdom_rec {
    mesh_wisdom_kind kind;
    uint8_t origin[MESH_WISDOM_ID_BYTES]; /* the signer's public key */
    uint64_t seq;                         /* the origin's sequence number, from 1 */
    int64_t ts_ms;                        /* when it was signed (wall ms) */
    mesh_wisdom_host host;
    mesh_wisdom_fix fix;                  /* kind FIX */
    mesh_wisdom_baseline base;            /* kind BASELINE */
    mesh_wisdom_knobs knobs;              /* kind KNOBS */
    uint8_t sig[MESH_WISDOM_SIG_BYTES];
} mesh_wisdom_rec;

/* "fix", "baseline", "knobs"; NULL for another value. */
const char *mesh_wisdom_kind_name(int kind);

/* ---- the redaction rule ------------------------------------------------------------- */

/* What the builder also refuses on this machine: its own names. */
#define MESH_WISDOM_LOCAL_NAMES 32
typedef struct mesh_wisdom_local {
    int nnames;
    char names[MESH_WISDOM_LOCAL_NAMES][64]; /* hostname, its labels, human user names */
} mesh_wisdom_local;

/* Fills loc with this machine's hostname (and its first label) and the names
 * of its human users (uid >= 1000 in the passwd database). */
void mesh_wisdom_local_init(mesh_wisdom_local *loc);
/* Adds one name (tests plant their own); generic ones ("localhost", "debian", ...)
 * and those under 3 characters (they would match "vm.swappiness") are not. */
void mesh_wisdom_local_add(mesh_wisdom_local *loc, const char *name);

/* The rule (docs/mesh/wisdom.md): every field of r. loc may be NULL
 * (a received record: the generic rule only). 0, or -EPERM with "FIELD:
 * reason" in err (e.g. "fix.action: path '/home/x' outside the allowlist"). */
int mesh_wisdom_check(const mesh_wisdom_rec *r, const mesh_wisdom_local *loc, char *err, size_t errlen);

/* ---- building from local data (each refuses what the rule forbids) ------------------ */

/* The host class of this machine for a service kind ("" for the machine). */
int mesh_wisdom_host_local(const char *service_kind, mesh_wisdom_host *out, char *err, size_t errlen);

/* A fix record from one of the brain's cases (its JSON as memory's `cases`
 * table holds it: "features", "attempts": [{"actions": [TEXT...], "healed"}]):
 * k and n count the attempts that used action (the text). -ENOENT when no
 * attempt used it; -EPERM when a field breaks the rule (named in err). */
int mesh_wisdom_build_fix(const json_t *case_json, const char *action, const mesh_wisdom_host *host,
                          const mesh_wisdom_local *loc, mesh_wisdom_rec *out, char *err, size_t errlen);
/* A detector baseline from aggregates (never samples). */
int mesh_wisdom_build_baseline(const char *metric, uint32_t count, double mean, double stddev, double p05,
                               double p50, double p95, const mesh_wisdom_host *host, const mesh_wisdom_local *loc,
                               mesh_wisdom_rec *out, char *err, size_t errlen);
/* A knob set from an Evolve run: names[i] = values[i], the gain and its interval. */
int mesh_wisdom_build_knobs(const char *objective, int nknobs, const char *const *names, const char *const *values,
                            double gain, double lo, double hi, uint32_t runs, const mesh_wisdom_host *host,
                            const mesh_wisdom_local *loc, mesh_wisdom_rec *out, char *err, size_t errlen);

/* The cell's own fix records from its memory: for each case the brain
 * remembers (mem_case_load) and each action that healed it at least once,
 * mesh_wisdom_build_fix on host with the service kind kind_of(kud, component)
 * (kind_of NULL: the component's name; "" for a machine-wide case). emit gets
 * each record (its non-zero return stops the walk and is returned); those the
 * rule refuses are skipped and counted in *refused (may be NULL), the first
 * reason in err. Returns how many were emitted, or a negative error. */
typedef int (*mesh_wisdom_emit)(void *ud, const mesh_wisdom_rec *r);
int mesh_wisdom_fixes_from_memory(mem_t *m, const mesh_wisdom_host *host,
                                  const char *(*kind_of)(void *ud, const char *component), void *kud,
                                  const mesh_wisdom_local *loc, mesh_wisdom_emit emit, void *eud, int *refused,
                                  char *err, size_t errlen);

/* ---- encoding and signatures -------------------------------------------------------- */

/* Sets r's origin (the public half of sk, libsodium's 64-byte secret key), seq
 * and ts_ms, sorts its lists, checks the rule (loc may be NULL), encodes and
 * signs into buf (cap >= MESH_WISDOM_MAX_BYTES is always enough); *len the
 * bytes. -EPERM (rule), -EMSGSIZE (over MESH_WISDOM_MAX_BYTES), -EINVAL. */
int mesh_wisdom_sign(mesh_wisdom_rec *r, const uint8_t sk[64], uint64_t seq, int64_t ts_ms,
                     const mesh_wisdom_local *loc, uint8_t *buf, size_t cap, size_t *len, char *err, size_t errlen);
/* Decodes buf strictly: only the canonical encoding of a record is accepted
 * (sorted unique lists, no trailing bytes, finite numbers, tokens in their
 * grammar). Does not verify. 0 or -EBADMSG with "byte N: reason". */
int mesh_wisdom_decode(const uint8_t *buf, size_t len, mesh_wisdom_rec *out, char *err, size_t errlen);
/* The signature of buf (a decoded record r) by r->origin: 0, -ENOKEY (an
 * all-zero signature: unsigned), -EKEYREJECTED (does not verify). */
int mesh_wisdom_verify(const uint8_t *buf, size_t len, const mesh_wisdom_rec *r, char *err, size_t errlen);

/* What became of a received record. */
typedef enum mesh_wisdom_verdict {
    MESH_WISDOM_OK = 0,
    MESH_WISDOM_MALFORMED,  /* does not decode */
    MESH_WISDOM_UNSIGNED,
    MESH_WISDOM_BAD_SIG,
    MESH_WISDOM_FORBIDDEN,  /* signed, but breaks the redaction rule */
    MESH_WISDOM_VERDICTS
} mesh_wisdom_verdict;
const char *mesh_wisdom_verdict_name(mesh_wisdom_verdict v);
/* decode + verify + check. */
mesh_wisdom_verdict mesh_wisdom_accept(const uint8_t *buf, size_t len, mesh_wisdom_rec *out, char *err,
                                       size_t errlen);

/* The record as JSON (for `ippoc mesh wisdom` and the API later); origin in hex. */
json_t *mesh_wisdom_to_json(const mesh_wisdom_rec *r);

/* ---- trust (gossipsub v1.1 style peer scoring, virtual time) ----------------------- */

typedef enum mesh_wisdom_event {
    MESH_TRUST_DELIVERED = 0, /* P2: first delivery of a new valid record */
    MESH_TRUST_INVALID,       /* P4: malformed, unsigned, bad signature or rule-breaking */
    MESH_TRUST_WORKED,        /* P5: its wisdom worked here */
    MESH_TRUST_FAILED,        /* P5: its wisdom failed here */
    MESH_TRUST_EQUIVOCATED,   /* P7: two different records under one (origin, seq) */
} mesh_wisdom_event;

typedef struct mesh_wisdom_trust_params {
    double w2, cap2, half2_ms;   /* first deliveries: weight, cap of the counter, half-life */
    double w4, half4_ms;         /* invalid deliveries: weight (negative) of the counter squared */
    double w5, cap5, half5_ms;   /* local outcome: weight, cap of the counter (worked +1, failed -fail5) */
    double fail5;
    double w7, half7_ms;         /* behaviour penalty: weight (negative) of the counter squared */
    double ignore_below;         /* graylist: below this score a peer is ignored */
    double full_at;              /* a score at or above this weighs its wisdom fully */
} mesh_wisdom_trust_params;

/* The defaults (docs/mesh/wisdom.md). */
mesh_wisdom_trust_params mesh_wisdom_trust_defaults(void);

typedef struct mesh_wisdom_peer {
    uint8_t id[MESH_WISDOM_ID_BYTES];
    int64_t t_ms;               /* when the counters were last decayed */
    double p2, p4, p5, p7;
} mesh_wisdom_peer;

typedef struct mesh_wisdom_trust {
    mesh_wisdom_trust_params p;
    mesh_wisdom_peer *v;
    int n, cap;
} mesh_wisdom_trust;

void mesh_wisdom_trust_init(mesh_wisdom_trust *t, const mesh_wisdom_trust_params *p); /* p NULL: defaults */
void mesh_wisdom_trust_free(mesh_wisdom_trust *t);
/* Counts one event of peer at now_ms (virtual time: any monotonic ms). -ENOMEM. */
int mesh_wisdom_trust_event(mesh_wisdom_trust *t, const uint8_t id[MESH_WISDOM_ID_BYTES], mesh_wisdom_event ev,
                            int64_t now_ms);
/* Puts back a peer's counters as saved (the store's load); replaces a known peer's. -ENOMEM. */
int mesh_wisdom_trust_set(mesh_wisdom_trust *t, const mesh_wisdom_peer *p);
/* The score of peer at now_ms (0 for an unknown peer). Does not change t. */
double mesh_wisdom_trust_score(const mesh_wisdom_trust *t, const uint8_t id[MESH_WISDOM_ID_BYTES], int64_t now_ms);
/* Below the ignore threshold: its records are neither used nor forwarded. */
bool mesh_wisdom_trust_ignored(const mesh_wisdom_trust *t, const uint8_t id[MESH_WISDOM_ID_BYTES], int64_t now_ms);
/* The weight of a peer's wisdom, 0..1: 0 when ignored, rising linearly from
 * the ignore threshold to full_at. */
double mesh_wisdom_trust_weight(const mesh_wisdom_trust *t, const uint8_t id[MESH_WISDOM_ID_BYTES], int64_t now_ms);

/* ---- the store ---------------------------------------------------------------------- */

typedef struct mesh_wisdom_store mesh_wisdom_store;

typedef struct mesh_wisdom_limits {
    int max_records;    /* kept records in all (oldest received go first); 0: 10000 */
    int max_per_origin; /* kept records of one origin (its lowest seq go first); 0: 256 */
    int max_rejects;    /* kept provenance rows of rejected records; 0: 256 */
} mesh_wisdom_limits;

/* Opens (creating) the store's own SQLite file (WAL, application_id "IPWS",
 * versioned schema). lim NULL: the defaults. */
int mesh_wisdom_store_open(const char *path, const mesh_wisdom_limits *lim, mesh_wisdom_store **out, char *err,
                           size_t errlen);
void mesh_wisdom_store_close(mesh_wisdom_store *s);

/* One record received from sender (the peer that delivered it) at now_ms:
 * checks it (mesh_wisdom_accept), counts the trust events, keeps it with its
 * provenance. Returns 0 (new, kept), 1 (a duplicate of a kept record: same
 * origin, seq and bytes; or older than the origin's kept window: an evicted one replayed), -EACCES (sender or origin ignored: dropped
 * unread), -EEXIST (equivocation: other bytes under a kept (origin, seq)),
 * -EBADMSG / -ENOKEY / -EKEYREJECTED / -EPERM (rejected: a provenance row is
 * kept), other negatives for storage errors. *verdict (may be NULL) gets the verdict. */
int mesh_wisdom_store_receive(mesh_wisdom_store *s, mesh_wisdom_trust *t, const uint8_t sender[MESH_WISDOM_ID_BYTES],
                              const uint8_t *buf, size_t len, int64_t now_ms, mesh_wisdom_verdict *verdict,
                              char *err, size_t errlen);
/* Counts and sizes: records kept, rejects kept. */
int mesh_wisdom_store_count(mesh_wisdom_store *s, int *records, int *rejects);
/* The kept records, newest received first, at most limit: fn gets each
 * record's signed bytes and when it was received (the now_ms given to
 * receive); its non-zero return stops the walk. Returns how many were
 * walked or a negative error. Added for the cell's GET /v1/mesh/wisdom. */
int mesh_wisdom_store_recent(mesh_wisdom_store *s, int limit,
                             int (*fn)(void *ud, const uint8_t *buf, size_t len, int64_t received_ms), void *ud);
/* Whether a kept record may be forwarded: it is kept and neither its origin
 * nor its sender is ignored now. */
bool mesh_wisdom_store_forwardable(mesh_wisdom_store *s, const mesh_wisdom_trust *t,
                                   const uint8_t origin[MESH_WISDOM_ID_BYTES], uint64_t seq, int64_t now_ms);
/* The brain applied the action of (origin, seq) here and it worked or not:
 * the origin's trust moves (P5). -ENOENT when not kept. */
int mesh_wisdom_store_outcome(mesh_wisdom_store *s, mesh_wisdom_trust *t, const uint8_t origin[MESH_WISDOM_ID_BYTES],
                              uint64_t seq, bool worked, int64_t now_ms);
/* Saves / loads the trust counters in the store's `peers` table. */
int mesh_wisdom_store_save_trust(mesh_wisdom_store *s, const mesh_wisdom_trust *t, char *err, size_t errlen);
int mesh_wisdom_store_load_trust(mesh_wisdom_store *s, mesh_wisdom_trust *t, char *err, size_t errlen);

/* ---- what the brain asks ------------------------------------------------------------ */

typedef struct mesh_wisdom_cand {
    char action[MESH_WISDOM_ACTION_MAX + 1];
    double weight;    /* evidence, 0..1: noisy-or over origins of each origin's record weight */
    uint32_t k, n;    /* summed over the records used */
    int origins;      /* distinct origins behind it */
} mesh_wisdom_cand;

/* One record's weight (docs/mesh/wisdom.md):
 * wilson95_lower(k, n) * trust_weight * jaccard(features, theirs) * host_similarity. */
double mesh_wisdom_evidence(uint32_t k, uint32_t n, double trust_weight, double similarity, double host_similarity);
/* Jaccard likeness of a features array (JSON strings; repeats counted once) with a
 * fix record's, 0..1: what mesh_wisdom_candidates weighs a record by. */
double mesh_wisdom_likeness(const json_t *features, const mesh_wisdom_fix *f);
/* How alike two host classes are, 0..1 (0: another service kind). */
double mesh_wisdom_host_similarity(const mesh_wisdom_host *a, const mesh_wisdom_host *b);

/* The candidate actions for an incident with these features (an array of the
 * signature's feature strings) on this host class: at most max, heaviest
 * first; records of ignored origins and features less than half alike
 * (Jaccard < 0.5) are left out; per origin its highest seq for an action
 * counts. Returns how many, or a negative error. */
int mesh_wisdom_candidates(mesh_wisdom_store *s, const mesh_wisdom_trust *t, const json_t *features,
                           const mesh_wisdom_host *host, int64_t now_ms, mesh_wisdom_cand *out, int max, char *err,
                           size_t errlen);

#endif
