/* cell_int.h: internals shared by the cell's files (cell*.c): the cell's
 * state, the capability record swim carries as member metadata, the gossip
 * channels and the views. Not for other modules (they include mesh.h). */
#ifndef IPPOC_MESH_CELL_INT_H
#define IPPOC_MESH_CELL_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include <jansson.h>

#include "mesh/identity.h"
#include "mesh/mesh.h"
#include "mesh/session.h"
#include "mesh/swim.h"
#include "mesh/wisdom.h"

/* The one-byte channel tag before every session payload. */
enum { CELL_CH_SWIM = 1, CELL_CH_REVOKE = 2, CELL_CH_WISDOM = 3 };

#define CELL_KNOWN_MAX 1024   /* peers with a session remembered */
#define CELL_OUTBOX_MAX 64    /* wisdom records being gossiped */
#define CELL_WISDOM_PER_ROUND 3
#define CELL_OWN_MAX 256
#define CELL_REVOKE_EVERY_MS 10000
#define CELL_REVOKE_FAST_MS 500 /* and 6 rounds this often after new revocations */
#define CELL_PUBLISH_EVERY_MS 60000

/* The capability record (swim member metadata, 13 bytes):
 * version(1)=1 roles(1) cpus(2) memory_mb(4) disk_gb(4) flags(1: 1 gpu, 2 llm), big-endian. */
#define CELL_CAPS_BYTES 13
typedef struct cell_caps {
    uint32_t roles;
    uint32_t cpus, memory_mb, disk_gb;
    bool gpu, llm;
} cell_caps;
void cell_caps_local(const char *state_dir, bool llm, uint32_t roles, cell_caps *c);
size_t cell_caps_encode(const cell_caps *c, uint8_t out[CELL_CAPS_BYTES]);
int cell_caps_decode(const uint8_t *p, size_t n, cell_caps *c);

/* A peer the session layer told us about. */
typedef struct cell_known {
    char addr[MESH_SESSION_ADDR_MAX + 1];
    char node_id[MESH_ID_NODE_ID_MAX + 1];
    uint8_t pk[MESH_ID_PK_BYTES];
    mesh_identity_cert cert; /* from its session's UP (has_cert) */
    bool has_cert;
    bool session;
    bool rev_sent; /* -- revsync: our revocation list was queued for it since its session last went */
} cell_known;

typedef struct cell_out { /* a record being gossiped */
    uint8_t buf[MESH_WISDOM_MAX_BYTES];
    size_t len;
    int left; /* transmissions left */
} cell_out;

struct mesh_cell {
    char state_dir[CORE_PATH_MAX];
    mem_t *mem;
    bool llm;
    mesh_identity_key node;
    char pk_hex[2 * MESH_ID_PK_BYTES + 1];

    pthread_mutex_t mu; /* everything below; the thread holds it while it works */
    mesh_config cfg;
    bool configured, joined;
    char reason[256];                   /* why not joined */
    char token_text[MESH_ID_TOKEN_MAX]; /* as last read: a change restarts */
    mesh_identity_token tok;
    uint32_t roles; /* effective: asked & granted */
    char listen[MESH_CFG_ADDR_MAX + 1]; /* bound */

    /* the running part (the thread's) */
    bool running, th_started;
    pthread_t th;
    uint64_t now; /* the time of the session call in progress (the thread) */
    atomic_bool stop;
    int wake[2];
    int fd;
    struct mesh_swim *sw;
    struct mesh_session *ses;
    mesh_identity_revlist rl;
    mesh_wisdom_store *ws;
    mesh_wisdom_trust trust;
    mesh_wisdom_local loc;
    mesh_wisdom_host host;
    cell_known *known;
    size_t nknown;
    cell_out outbox[CELL_OUTBOX_MAX];
    size_t noutbox;
    uint64_t own_hash[CELL_OWN_MAX]; /* own fix records published (by content, not seq) */
    size_t nown;
    uint64_t rng, next_revoke, next_publish, next_wisdom, wisdom_seq;
    int revoke_fast; /* rounds left at CELL_REVOKE_FAST_MS after new revocations */
    uint64_t malformed; /* payloads with a bad channel tag or body */
    uint64_t forged;    /* membership sent in another member's name */
    uint64_t reject_log_at, reject_unlogged; /* refusals: one log line a second */
    uint64_t udp_in, udp_out, udp_bytes_in, udp_bytes_out;
    struct cell_wis *wis; /* cell_wisdom.c: the records behind the candidates given to the brain */

    /* the reasoning path (cell_reason.c) */
    mesh_reason_fn reasoner; /* this cell's own local model, or NULL */
    void *reasoner_ud;
    int tcp_fd;                          /* listening, -1 when not serving */
    int reason_wake[2];
    pthread_t reason_th;
    bool reason_th_started;
    atomic_bool reason_stop;
    struct cell_reason_peer *rpeers;     /* failures (asking) and rate (serving), by node id */
    size_t nrpeers;
    uint64_t reason_rr;
    atomic_ullong reason_n[4];           /* CELL_REASON_ASKED_OK, ... */

    /* -- pushpull: full-state sync over the TCP path (cell_sync.c) */
    struct cell_sync *sync; /* its queue and thread while running, else NULL */
    uint64_t sync_n[4];     /* CELL_SYNC_TCP, ... (under mu) */
    struct cell_mdns *mdns;              /* -- mdns: discovery through Avahi (cell_mdns.c), or NULL */
    struct cell_pub *pub; /* -- wispub: own baselines and knob sets published (cell_publish.c) */
};

/* cell_reason.c: the reasoning path */
enum { CELL_REASON_ASKED_OK, CELL_REASON_ASKED_ERR, CELL_REASON_SERVED_OK, CELL_REASON_SERVED_ERR };
/* Under mu, at the end of a start: the TCP listener and its thread (a
 * failure only logs: the cell runs without serving). */
void cell_reason_start(struct mesh_cell *m);
/* Without mu: stops and joins the thread, closes the listener. */
void cell_reason_stop(struct mesh_cell *m);
/* Under mu: the "reasoning" object of the status; the Prometheus lines. */
json_t *cell_reason_json(const struct mesh_cell *m);
void cell_reason_prometheus(const struct mesh_cell *m, char *out, size_t n);

/* -- pushpull: cell_sync.c, full-state sync over the TCP path. The first
 * byte of the first stream message says what a TCP connection is for. */
enum { CELL_TCP_CHAT = 1, CELL_TCP_SYNC = 2 };
enum { CELL_SYNC_TCP, CELL_SYNC_UDP, CELL_SYNC_FAILED, CELL_SYNC_SERVED };
struct mesh_stream;
/* Under mu, from pump: true when it took swim's STATE packet for the TCP path. */
bool cell_sync_divert(struct mesh_cell *m, const struct mesh_swim_out *o);
/* Under mu, at the end of pump: the exchanges collected go to the sync thread. */
void cell_sync_seal(struct mesh_cell *m);
/* Under mu at the end of a start / without mu at a stop. */
void cell_sync_start(struct mesh_cell *m);
void cell_sync_stop(struct mesh_cell *m);
/* Without mu, on cell_reason.c's connection worker: a sync request (msg, kind
 * CELL_TCP_SYNC first) on an established stream; answers it (the caller closes). */
void cell_sync_serve(struct mesh_cell *m, int fd, struct mesh_stream *st, const uint8_t *msg, size_t len);
/* Under mu: the "sync" object of the status; the Prometheus lines. */
json_t *cell_sync_json(const struct mesh_cell *m);
void cell_sync_prometheus(const struct mesh_cell *m, char *out, size_t n);
/* cell.c: swim's and the session's packets out (under mu, any thread) */
void cell_pump(struct mesh_cell *m, uint64_t now);
/* -- mdns: cell_mdns.c, discovery through Avahi ([mesh] discover = mdns) */
#define CELL_MDNS_TYPE "_ippoc-mesh._udp"
#define CELL_MDNS_TXT_KEY "fleet="
#define CELL_MDNS_FP_HEX 16 /* the fleet key's short fingerprint: BLAKE2b-256's first 8 bytes, hex */
void cell_mdns_fingerprint(const uint8_t fleet_pk[MESH_ID_PK_BYTES], char out[CELL_MDNS_FP_HEX + 1]);
/* The one TXT string ("fleet=FP") into out; its length. */
size_t cell_mdns_txt(const char *fp, char *out, size_t n);
/* Whether one TXT string (len bytes, not terminated) is "fleet=FP". */
bool cell_mdns_txt_matches(const uint8_t *txt, size_t len, const char *fp);
/* [mesh] discover's value: 0 or -EINVAL with FILE:LINE in err. */
int cell_mdns_parse_discover(const core_kv *kv, int *out, char *err, size_t errlen);
/* Under mu at the end of a start: publishes and browses when discover =
 * mdns (without Avahi: one log line, the seeds only). */
void cell_mdns_start(struct mesh_cell *m);
/* Without mu, before the teardown: stops Avahi's thread, frees it all. */
void cell_mdns_stop(struct mesh_cell *m);
/* Under mu, the cell's thread: the services found join as seeds. */
void cell_mdns_tick(struct mesh_cell *m, uint64_t now);
/* Under mu: the status's "discovery" object. */
json_t *cell_mdns_json(const struct mesh_cell *m);

/* cell.c */
uint64_t cell_rand(struct mesh_cell *m);
cell_known *cell_known_by_addr(struct mesh_cell *m, const char *addr);
const cell_known *cell_known_by_pk(const struct mesh_cell *m, const uint8_t pk[MESH_ID_PK_BYTES]);
/* Sends payload on channel ch to addr through the session. */
int cell_send(struct mesh_cell *m, uint64_t now, const char *addr, uint8_t ch, const uint8_t *p, size_t n);
/* A random alive member other than self with a known address into addr; false when none. */
bool cell_random_peer(struct mesh_cell *m, char *addr, size_t n);

/* cell_gossip.c: revocations and wisdom (under mu, the thread) */
int cell_gossip_open(struct mesh_cell *m, char *err, size_t errlen);
void cell_gossip_close(struct mesh_cell *m);
void cell_gossip_tick(struct mesh_cell *m, uint64_t now);
uint64_t cell_gossip_deadline(const struct mesh_cell *m);
/* 0, or the merge's negative error (logged, counted as malformed) when the list does not verify. */
int cell_revoke_receive(struct mesh_cell *m, uint64_t now, const char *addr, const uint8_t *p, size_t n);
/* -- revsync: our revocation list to addr on channel 2 (a session just came up). */
void cell_revoke_send(struct mesh_cell *m, uint64_t now, const char *addr);
/* Merges STATE/mesh-revoked.bin (written by `ippoc mesh revoke`) as if received; under mu. */
void cell_revoke_reload(struct mesh_cell *m, uint64_t now);
void cell_wisdom_receive(struct mesh_cell *m, uint64_t now, const char *addr, const uint8_t *p, size_t n);
/* testfold: signs rec as this cell's own (the next wisdom seq) into buf and
 * stores it as received from itself (cell_gossip's fixes, cell_publish's
 * baselines and knobs); 0 when both went through; a refused signature is logged. */
int cell_wisdom_own(struct mesh_cell *m, const mesh_wisdom_rec *rec, uint8_t *buf, size_t cap, size_t *len);
/* Whether pk is revoked by key in the list. */
bool cell_revoked_pk(const struct mesh_cell *m, const uint8_t pk[MESH_ID_PK_BYTES]);

/* cell_wisdom.c */
void cell_wisdom_free(struct mesh_cell *m);
/* -- wispub: cell_publish.c: own baselines and knob sets (under mu, the thread) */
void cell_publish_tick(struct mesh_cell *m, uint64_t now);
void cell_publish_free(struct mesh_cell *m);
/* The summary of a baseline or knob record in GET /v1/mesh/wisdom. */
void cell_publish_summary(const mesh_wisdom_rec *r, char *out, size_t n);

/* cell_reason.c: a TCP connect to a numeric host:port with a deadline (core_mono_ms). */
int cell_dial(const char *addr, uint64_t deadline, int *fd, char *err, size_t errlen);

#endif
