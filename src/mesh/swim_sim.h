/* swim_sim.h: many mesh_swim members in one process over a simulated
 * network with virtual time (1 ms steps), seeded loss and delay, per-node
 * loss, partitions and kills. Used by bench/mesh-sim and tests/mesh: the
 * membership code is the real one, only the wire and the clock are fake.
 * Node i has id "n<i>" and address "sim:<i>" (padded to id_len/addr_len
 * when set: "n00007", "sim:0000000007", as long as real names).
 *
 * Wire accounting (added by simreal; all off when zero, as the tests use
 * it): a real cell's datagram is swim's packet plus the session's transport
 * header and tag and the cell's channel byte (datagram_overhead, 30), every
 * member carries a capability record (meta_len, 13), and a pair of members
 * pays session handshakes (sessions = true): XX on first contact, IK after
 * (keys expired after reject 180 s, forgotten when one side sees the other
 * dead or left), an IK rekey on send when keys are 120 s old, initiations
 * re-sent every 5 s up to 18 tries while unanswered (a dead member). Each
 * handshake message meets the same loss as a packet. Only bytes are
 * modelled: swim packets are delivered with the same timing as without it,
 * but a packet to a non-running member with no keys is not counted (a real
 * cell queues it behind the handshake and drops it when that gives up). */
#ifndef IPPOC_MESH_SWIM_SIM_H
#define IPPOC_MESH_SWIM_SIM_H

#include "mesh/swim.h"

struct mesh_swim_sim_config {
	size_t nodes;             /* slots; none started until mesh_swim_sim_start */
	uint64_t seed;
	double loss;              /* probability a packet is lost, 0..1 */
	uint32_t delay_min_ms;    /* one-way delay, uniform in [min, max] */
	uint32_t delay_max_ms;
	struct mesh_swim_config swim;
	/* simreal: realistic bytes (see the header comment); 0/false = off */
	size_t id_len;            /* node id length, e.g. 6 ("web-07"); <= 32 */
	size_t addr_len;          /* address length, e.g. 15 ("10.0.12.34:7947"); <= 32 */
	size_t meta_len;          /* member metadata bytes, e.g. 13 (cell_caps) */
	size_t datagram_overhead; /* bytes added to every swim datagram, e.g. 30 */
	bool sessions;            /* count session handshakes */
};

/* Handshake datagram sizes (session.h's wire format) for a certificate of
 * cert_len bytes (identity.h: 160 + node id length). */
enum mesh_swim_sim_hs {
	MESH_SWIM_SIM_XX1, MESH_SWIM_SIM_XX2, MESH_SWIM_SIM_XX3, MESH_SWIM_SIM_XXCERT,
	MESH_SWIM_SIM_IK1, MESH_SWIM_SIM_IK2, MESH_SWIM_SIM_KEEPALIVE,
	/* -- certcache: IK1/IK2 are the short forms (a pair that completed a
	 * session before: references, no certificates; the simulator's every
	 * IK, as its cells never restart); these are the full forms (after a
	 * "certificate needed" reply, NEED, from a restarted responder) */
	MESH_SWIM_SIM_IK1_FULL, MESH_SWIM_SIM_IK2_FULL, MESH_SWIM_SIM_NEED,
};
size_t mesh_swim_sim_hs_bytes(enum mesh_swim_sim_hs msg, size_t cert_len);

struct mesh_swim_sim_stats {
	uint64_t packets, bytes, lost, oversize, rejected, max_packet;
	/* simreal: handshake datagrams and their bytes (also in packets/bytes),
	 * completed XX and IK handshakes, swim packets held for a dead member */
	uint64_t hs_packets, hs_bytes, hs_xx, hs_ik, held;
};

/* every event of every member: observer is the node that saw it */
typedef void (*mesh_swim_sim_event_fn)(void *ctx, size_t observer, uint64_t now_ms,
				       const struct mesh_swim_event *ev);

struct mesh_swim_sim;

struct mesh_swim_sim *mesh_swim_sim_new(const struct mesh_swim_sim_config *cfg, char *err,
					size_t errlen);
void mesh_swim_sim_free(struct mesh_swim_sim *sim);
void mesh_swim_sim_on_event(struct mesh_swim_sim *sim, mesh_swim_sim_event_fn fn, void *ctx);

/* start node i now (a fresh member: a restart when it ran before) */
int mesh_swim_sim_start(struct mesh_swim_sim *sim, size_t i);
/* node i joins through node seed */
int mesh_swim_sim_join(struct mesh_swim_sim *sim, size_t i, size_t seed);
/* every running node learns every other running one as alive, without a
 * message (mesh_swim_add_member): a big cluster's bootstrap without the
 * join storm. 0 or the first error. */
int mesh_swim_sim_preload(struct mesh_swim_sim *sim);
void mesh_swim_sim_kill(struct mesh_swim_sim *sim, size_t i);
void mesh_swim_sim_leave(struct mesh_swim_sim *sim, size_t i);
/* extra loss on every packet to or from node i */
void mesh_swim_sim_node_loss(struct mesh_swim_sim *sim, size_t i, double loss);
/* packets between nodes of different groups are dropped; all 0 = whole */
void mesh_swim_sim_group(struct mesh_swim_sim *sim, size_t i, int group);
/* deliver a raw packet to node i now (fuzzing); the receive's result */
int mesh_swim_sim_inject(struct mesh_swim_sim *sim, size_t i, const uint8_t *buf, size_t len,
			 char *err, size_t errlen);

/* run until `until` or until done(ctx) is true (checked every ms); true
 * when done() said so */
bool mesh_swim_sim_run(struct mesh_swim_sim *sim, uint64_t until,
		       bool (*done)(struct mesh_swim_sim *sim, void *ctx), void *ctx);

/* node i's id (buf of at least 40 bytes); index of an id, SIZE_MAX if none */
const char *mesh_swim_sim_id(const struct mesh_swim_sim *sim, size_t i, char *buf, size_t len);
size_t mesh_swim_sim_index(const char *id);

uint64_t mesh_swim_sim_now(const struct mesh_swim_sim *sim);
size_t mesh_swim_sim_size(const struct mesh_swim_sim *sim);
bool mesh_swim_sim_running(const struct mesh_swim_sim *sim, size_t i);
/* node i's member (NULL when not running) */
struct mesh_swim *mesh_swim_sim_node(struct mesh_swim_sim *sim, size_t i);
void mesh_swim_sim_get_stats(const struct mesh_swim_sim *sim, struct mesh_swim_sim_stats *st);
/* how many running nodes see node j in state s */
size_t mesh_swim_sim_seen_as(const struct mesh_swim_sim *sim, size_t j, enum mesh_swim_state s);

#endif
