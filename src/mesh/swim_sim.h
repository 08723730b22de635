/* swim_sim.h: many mesh_swim members in one process over a simulated
 * network with virtual time (1 ms steps), seeded loss and delay, per-node
 * loss, partitions and kills. Used by bench/mesh-sim and tests/mesh: the
 * membership code is the real one, only the wire and the clock are fake.
 * Node i has id "n<i>" and address "sim:<i>". */
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
};

struct mesh_swim_sim_stats {
	uint64_t packets, bytes, lost, oversize, rejected, max_packet;
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

uint64_t mesh_swim_sim_now(const struct mesh_swim_sim *sim);
size_t mesh_swim_sim_size(const struct mesh_swim_sim *sim);
bool mesh_swim_sim_running(const struct mesh_swim_sim *sim, size_t i);
/* node i's member (NULL when not running) */
struct mesh_swim *mesh_swim_sim_node(struct mesh_swim_sim *sim, size_t i);
void mesh_swim_sim_get_stats(const struct mesh_swim_sim *sim, struct mesh_swim_sim_stats *st);
/* how many running nodes see node j in state s */
size_t mesh_swim_sim_seen_as(const struct mesh_swim_sim *sim, size_t j, enum mesh_swim_state s);

#endif
