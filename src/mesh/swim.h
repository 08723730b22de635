/* swim.h: mesh membership as a pure state machine: SWIM with the Lifeguard
 * refinements, following HashiCorp memberlist (state.go, suspicion.go,
 * awareness.go, DefaultLANConfig) and the Lifeguard paper (arXiv 1707.00788).
 *
 * No sockets, clocks or threads inside. The caller
 *  - gives the time in milliseconds to every call (any monotonic origin),
 *  - calls mesh_swim_tick() at or after mesh_swim_next_deadline(),
 *  - delivers every received packet with mesh_swim_receive(),
 *  - drains the packets it wants sent with mesh_swim_next_out(); each names
 *    its destination by member id and address (id "" when only the address
 *    is known: a join seed).
 *
 * What it does: round-robin probes (ping, then 3 indirect pings with nacks),
 * suspicion with Lifeguard's shrinking timeout and k confirmations, local
 * health awareness stretching the probe interval and timeout, the buddy
 * system (a suspect learns it is suspected in the probe itself),
 * incarnation numbers and refutation, gossip of alive/suspect/dead with a
 * retransmit limit of mult*ceil(log10(N+1)), join and leave, periodic
 * push-pull full-state anti-entropy, and Serf's reconnect (a push-pull with
 * a random dead member now and then, so a healed partition merges).
 *
 * Wire format ("SWIM v1", all integers unsigned LEB128 varints, strings a
 * one-byte length then the bytes):
 *   packet  = 0xA7 0x01 sender-id sender-addr message*
 *   message = type(1 byte) body-length(varint) body
 *   PING     seq target-id               ACK  seq        NACK seq
 *   INDIRECT seq nack(1 byte) target-id target-addr
 *   ALIVE    inc id addr meta            SUSPECT inc id from
 *   DEAD     inc id from (from == id: the member left)
 *   STATE    flags(1 byte: 1 = reply wanted, 2 = join) count
 *            (state(1 byte) inc id addr meta)*count
 * A packet is at most max_packet bytes (default 1,400); gossip is
 * piggybacked on every packet but STATE, packed to fit; a full state is sent
 * as as many STATE packets as it takes (each entry merges on its own). A
 * packet is checked whole before any of it is applied: a malformed one
 * changes nothing. */
#ifndef IPPOC_MESH_SWIM_H
#define IPPOC_MESH_SWIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MESH_SWIM_ID_MAX 64     /* bytes of a member id (printable ASCII) */
#define MESH_SWIM_ADDR_MAX 64   /* bytes of an address (printable ASCII) */
#define MESH_SWIM_META_MAX 128  /* bytes of a member's metadata (any) */
#define MESH_SWIM_PACKET_MIN 512

enum mesh_swim_state {
	MESH_SWIM_ALIVE = 0,
	MESH_SWIM_SUSPECT = 1,
	MESH_SWIM_DEAD = 2,
	MESH_SWIM_LEFT = 3,
};

/* Values: mesh_swim_config_default's, then memberlist's DefaultLANConfig
 * (mesh_swim_config_memberlist_lan) where they differ. The default probes
 * twice as often with a suspicion minimum half as long (log10(N) s: 3 s at
 * 1,000 members), so that a dead member is known by all of 1,000 within
 * 5 s (memberlist's: ~15 s), and retransmits gossip 6 instead of 4 times
 * log10(N): a member misses a broadcast with probability about
 * exp(-mult*ceil(log10 N)*(1-loss)), and one that misses a refutation
 * declares a live member dead when its own suspicion timer runs out. See
 * docs/mesh/swim.md for the measurements. */
struct mesh_swim_config {
	uint32_t probe_interval_ms;    /* 500; memberlist 1000 */
	uint32_t probe_timeout_ms;     /* 250; memberlist 500 */
	uint32_t indirect_checks;      /* 3 */
	uint32_t gossip_interval_ms;   /* 200 */
	uint32_t gossip_nodes;         /* 3 */
	uint32_t retransmit_mult;      /* 6; memberlist 4 */
	uint32_t suspicion_mult;       /* 2; memberlist 4: min timeout = mult*log10(N)*interval */
	uint32_t suspicion_max_mult;   /* 6: max timeout = max_mult*min */
	uint32_t suspicion_k;          /* 3 confirmations shrink it to min */
	uint32_t awareness_max;        /* 8 */
	uint32_t pushpull_interval_ms; /* 30000 (scaled up above 32 members) */
	uint32_t gossip_to_dead_ms;    /* 30000: gossip to the dead; forget the left */
	uint64_t reconnect_timeout_ms; /* 24 h (Serf): push-pull with the dead, then forget */
	uint32_t max_packet;           /* 1400 */
};

struct mesh_swim_event {
	const char *id;
	const char *addr;
	enum mesh_swim_state state; /* the member's new state */
	bool joined;                /* first seen, or back from dead/left */
	uint64_t incarnation;
};

typedef void (*mesh_swim_event_fn)(void *ctx, const struct mesh_swim_event *ev);

struct mesh_swim_out {
	char id[MESH_SWIM_ID_MAX + 1];     /* "" when only the address is known */
	char addr[MESH_SWIM_ADDR_MAX + 1];
	size_t len;
	uint8_t data[]; /* len bytes, len <= max_packet */
};

struct mesh_swim_stats {
	uint64_t packets_out, bytes_out, packets_in, bytes_in, rejected;
	uint64_t probes, probe_failures, refutations;
};

struct mesh_swim;

/* The defaults above: issue 15's targets at 1,000 members with 1% loss. */
void mesh_swim_config_default(struct mesh_swim_config *cfg);
/* memberlist's DefaultLANConfig exactly (a dead node takes ~15 s to be known
 * by all of 1,000 members: its suspicion minimum alone is 12 s; slower but
 * with half the probe traffic). */
void mesh_swim_config_memberlist_lan(struct mesh_swim_config *cfg);

/* A member named id, reachable at addr, with optional meta (may be NULL).
 * seed feeds the member's own random choices. NULL with err filled on bad
 * configuration or names. */
struct mesh_swim *mesh_swim_new(const struct mesh_swim_config *cfg, const char *id,
				const char *addr, const uint8_t *meta, size_t meta_len,
				uint64_t seed, uint64_t now_ms, char *err, size_t errlen);
void mesh_swim_free(struct mesh_swim *sw);
void mesh_swim_on_event(struct mesh_swim *sw, mesh_swim_event_fn fn, void *ctx);

/* Push-pull with a seed known by address only, retried every probe interval
 * until the seed answers. */
int mesh_swim_join(struct mesh_swim *sw, uint64_t now_ms, const char *seed_addr,
		   char *err, size_t errlen);
/* Learn a member as alive at incarnation inc without telling anyone (no
 * broadcast, no event): a view restored from elsewhere (a saved member
 * list; the simulator's bootstrap of a big cluster). 0; -EEXIST when the id
 * is known; -EINVAL on a bad id, address or meta; -ENOMEM. */
int mesh_swim_add_member(struct mesh_swim *sw, uint64_t now_ms, const char *id, const char *addr,
			 const uint8_t *meta, size_t meta_len, uint64_t inc);
/* Tell the others this member leaves (they mark it left, not dead). */
void mesh_swim_leave(struct mesh_swim *sw, uint64_t now_ms);

/* Run the timers due at now_ms. */
void mesh_swim_tick(struct mesh_swim *sw, uint64_t now_ms);
/* The earliest time mesh_swim_tick has something to do. */
uint64_t mesh_swim_next_deadline(const struct mesh_swim *sw);
/* A received packet. -EBADMSG with the offset and reason in err when it is
 * malformed (nothing of it is applied). */
int mesh_swim_receive(struct mesh_swim *sw, uint64_t now_ms, const uint8_t *buf, size_t len,
		      char *err, size_t errlen);
/* The next packet to send (caller frees it), NULL when none. */
struct mesh_swim_out *mesh_swim_next_out(struct mesh_swim *sw);

/* Views */
size_t mesh_swim_member_count(const struct mesh_swim *sw, enum mesh_swim_state state);
/* 0 and its state and incarnation for a known member, -ENOENT otherwise. */
int mesh_swim_member(const struct mesh_swim *sw, const char *id, enum mesh_swim_state *state,
		     uint64_t *inc);
/* Every member, self included, with its address and metadata (views valid
 * during the call only); added for the running cell (src/mesh/cell.c). */
struct mesh_swim_member_info {
	const char *id, *addr;
	enum mesh_swim_state state;
	uint64_t incarnation;
	const uint8_t *meta;
	size_t meta_len;
	bool self;
};
void mesh_swim_members(const struct mesh_swim *sw,
		       void (*fn)(void *ctx, const struct mesh_swim_member_info *mi), void *ctx);
uint32_t mesh_swim_awareness(const struct mesh_swim *sw);
uint64_t mesh_swim_incarnation(const struct mesh_swim *sw);
void mesh_swim_get_stats(const struct mesh_swim *sw, struct mesh_swim_stats *st);
const char *mesh_swim_state_name(enum mesh_swim_state s);

/* Timeouts as memberlist computes them (exposed for tests and the bench). */
uint32_t mesh_swim_retransmit_limit(uint32_t mult, size_t n);
uint64_t mesh_swim_suspicion_min_ms(uint32_t mult, size_t n, uint32_t interval_ms);
/* Lifeguard: the timeout after c of k confirmations, never under min. */
uint64_t mesh_swim_suspicion_timeout_ms(uint32_t c, uint32_t k, uint64_t min_ms, uint64_t max_ms);

#endif
