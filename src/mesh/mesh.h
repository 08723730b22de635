/* mesh.h: the running Telepathy mesh inside ippocd (issue 15): the module's
 * one public header; the daemon and the API include only this.
 *
 * A mesh cell owns the node key (STATE/mesh-node.key, created on first use),
 * reads the [mesh] config section and the membership token
 * (STATE/mesh-member.token, written by `ippoc mesh join`), and when enabled
 * and joined runs its own thread: a UDP socket on [mesh] listen, SWIM
 * membership over the secure session, revocation and wisdom gossip. Every
 * function is thread-safe; the JSON views are what GET /v1/mesh/... answer. */
#ifndef IPPOC_MESH_H
#define IPPOC_MESH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "memory/memory.h"

#define MESH_CFG_SEEDS_MAX 16
#define MESH_CFG_ADDR_MAX 64

/* [mesh] */
enum { MESH_DISCOVER_SEEDS = 0, MESH_DISCOVER_MDNS = 1 }; /* [mesh] discover */

typedef struct mesh_config {
    bool enabled;                       /* enabled = no|yes (no) */
    char listen[MESH_CFG_ADDR_MAX + 1]; /* listen = 127.0.0.1:7947; port 0: any free one */
    int nseeds;                         /* seeds = host:port, ... (added to the token's) */
    char seeds[MESH_CFG_SEEDS_MAX][MESH_CFG_ADDR_MAX + 1];
    uint32_t roles;                     /* roles = reasoning, tool, ... (0: all the certificate grants) */
    uint32_t probe_interval_ms, probe_timeout_ms, gossip_interval_ms, suspicion_mult; /* swim's defaults */
    uint32_t publish_interval_ms;       /* publish_interval_ms = 60000: own fix records from memory */
    int discover; /* discover = seeds|mdns (seeds): MESH_DISCOVER_*; mdns adds Avahi's finds to the seeds */
    uint32_t pushpull_interval_ms;      /* full-state sync and reconnect with the dead (swim's 30000) */
} mesh_config;

/* Parses the [mesh] keys of cfg (defaults for the rest): 0, or -EINVAL with
 * "FILE:LINE: reason" in err. */
int mesh_config_parse(const core_config *cfg, mesh_config *out, char *err, size_t errlen);
/* The same, for the daemon's config check. */
int mesh_config_check(const core_config *cfg, char *err, size_t errlen);

typedef struct mesh_cell mesh_cell;

typedef struct mesh_cell_opts {
    const char *state_dir; /* node key, token, revocations, the wisdom store */
    mem_t *mem;            /* "mesh.member" events, the brain's cases; may be NULL */
    bool llm;              /* a language model is configured (advertised) */
} mesh_cell_opts;

/* Loads or creates the node key; starts nothing. 0 or -errno with err. */
int mesh_cell_new(const mesh_cell_opts *o, mesh_cell **out, char *err, size_t errlen);
/* Applies cfg's [mesh] section and re-reads the token and revocation list:
 * starts, restarts (when something changed) or stops the thread. Enabled
 * without a token: "not joined", no socket. 0 or -errno with err: a bad
 * section changes nothing; a start that fails (the port is taken) leaves
 * the cell stopped. */
int mesh_cell_configure(mesh_cell *m, const core_config *cfg, char *err, size_t errlen);
/* Leaves the mesh, joins the thread, frees everything. NULL: nothing. */
void mesh_cell_free(mesh_cell *m);

/* GET /v1/mesh/status, /v1/mesh/peers, /v1/mesh/wisdom?limit=N: malloc'd
 * JSON text, NULL when out of memory. */
char *mesh_cell_status_json(mesh_cell *m);
char *mesh_cell_peers_json(mesh_cell *m);
char *mesh_cell_wisdom_json(mesh_cell *m, int limit);
/* The ippoc_mesh_* families for /metrics (Prometheus text, malloc'd; ""
 * while the cell is not running), NULL when out of memory. */
char *mesh_cell_prometheus(mesh_cell *m);

/* Fleet wisdom for the brain (part fixpass; the daemon adapts brain.h's
 * wisdom hook to these). The candidate actions for an incident: features is
 * the signature's feature strings (a JSON array), service_kind the service's
 * kind ("" machine-wide); at most max into out, heaviest first; how many (0
 * while the cell is not running), or -errno with err. The cell remembers
 * which records, (origin, seq), made up each candidate (the last 64 asked).
 * Any thread, several at once. */
typedef struct mesh_cell_wisdom_cand {
    char action[128];
    double weight;  /* 0..1, the origins' trust in it */
    unsigned k, n;  /* tries that healed, summed over the records */
    int origins;    /* cells behind it */
} mesh_cell_wisdom_cand;
int mesh_cell_wisdom_candidates(mesh_cell *m, const json_t *features, const char *service_kind,
                                mesh_cell_wisdom_cand *out, int max, char *err, size_t errlen);
/* The action of a candidate returned for these features ran here and healed
 * (worked) or not: the trust of each origin behind it moves and is saved.
 * Returns how many origins' trust moved (0: the candidate is not
 * remembered), -EINVAL. Any thread. */
int mesh_cell_wisdom_outcome(mesh_cell *m, const char *action, const json_t *features, bool worked);
/* The reasoning path (issue 15 item 5): a cell without a model asks a peer
 * whose certificate grants the reasoning role and whose capabilities say it
 * has a model, over the mesh's TCP stream (the same Noise handshake and
 * certificate checks; TCP on the UDP listen port's number). The request is
 * an OpenAI chat-completions body already redacted by the asker's llm; the
 * answer is the peer's model's OpenAI answer body.
 *
 * The serving side: fn runs a peer's body through this cell's OWN local
 * model only (the daemon gives llm_complete_local_body); NULL: this cell
 * serves nobody. Any thread. */
typedef int (*mesh_reason_fn)(void *ud, const char *body_json, int timeout_ms, char **answer_json, char *err,
                              size_t errlen);
void mesh_cell_set_reasoner(mesh_cell *m, mesh_reason_fn fn, void *ud);
/* The asking side, shaped as llm_remote_fn / llm_remote_avail_fn (cell is a
 * mesh_cell *): picks an alive reasoning peer (fewest recent failures,
 * round-robin among equals; up to 3 peers while time is left), sends the
 * body, waits at most timeout_ms. 0 with *answer_json (malloc'd), or
 * -EHOSTUNREACH (no reasoning peer), -ECONNREFUSED, -ETIMEDOUT, -EMSGSIZE,
 * -EPROTO, -EIO (the peer's refusal or its model's failure) with err. */
int mesh_cell_reason(void *cell, const char *body_json, int timeout_ms, char **answer_json, char *err,
                     size_t errlen);
bool mesh_cell_reason_available(void *cell);

/* -- wispub: tuned knob sets received from the fleet (issue 15 item 4). A
 * peer's Evolve found these values better for a service kind by gain (its
 * 95% interval lo..hi, over runs measurements); docs/mesh.md says how a user
 * applies one. */
#define MESH_KNOBS_MAX 8
typedef struct mesh_knob_set {
    char from[65];          /* the origin's node id when known, else its key in hex */
    uint8_t origin[32];     /* the origin's public key */
    char service[32];       /* the service kind ("" = the machine) */
    char objective[64];     /* what was measured: "postgres.fitness" (".fitness_min": lower is better) */
    int nknobs;
    char name[MESH_KNOBS_MAX][64], value[MESH_KNOBS_MAX][32]; /* sorted by name */
    double gain, lo, hi;    /* relative gain and its interval */
    uint32_t runs;
    double weight;          /* the origin's trust weight now, 0..1 */
    uint64_t seq;
    int64_t ts_ms;          /* when the origin signed it */
} mesh_knob_set;
/* The knob sets other cells published for service kind service ("" = the
 * machine): each origin's newest per objective, origins this cell ignores
 * left out, at most max, by weight * lo (the evidence) first. Returns how
 * many (0 while the cell is not running) or -EINVAL. Any thread. */
int mesh_cell_knob_sets(mesh_cell *m, const char *service, mesh_knob_set *out, int max);

#endif
