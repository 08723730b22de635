/* swim_sim.c: the simulated network and clock behind bench/mesh-sim and the
 * mesh-swim tests (see swim_sim.h): a heap of packets in flight ordered by
 * delivery time, and a 1 ms step that delivers them and runs due timers. */
#include "mesh/swim_sim.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct flight {
	uint64_t at, order;
	size_t dst;
	struct mesh_swim_out *pkt;
};

struct node {
	struct mesh_swim *sw;
	uint64_t deadline;
	double loss;
	int group;
	size_t idx;
	struct mesh_swim_sim *sim;
};

struct mesh_swim_sim {
	struct mesh_swim_sim_config cfg;
	struct node *nodes;
	struct flight *heap;
	size_t nheap, capheap;
	uint64_t now, order, rng;
	mesh_swim_sim_event_fn on_event;
	void *event_ctx;
	struct mesh_swim_sim_stats st;
};

static uint64_t rnd(struct mesh_swim_sim *sim)
{
	uint64_t z = (sim->rng += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static double unit(struct mesh_swim_sim *sim)
{
	return (double)(rnd(sim) >> 11) / 9007199254740992.0;
}

static bool before(const struct flight *a, const struct flight *b)
{
	return a->at < b->at || (a->at == b->at && a->order < b->order);
}

static void heap_push(struct mesh_swim_sim *sim, struct flight f)
{
	if (sim->nheap == sim->capheap) {
		size_t cap = sim->capheap ? sim->capheap * 2 : 1024;
		struct flight *h = realloc(sim->heap, cap * sizeof(*h));
		if (!h) {
			free(f.pkt);
			return;
		}
		sim->heap = h;
		sim->capheap = cap;
	}
	size_t i = sim->nheap++;
	while (i && before(&f, &sim->heap[(i - 1) / 2])) {
		sim->heap[i] = sim->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	sim->heap[i] = f;
}

static struct flight heap_pop(struct mesh_swim_sim *sim)
{
	struct flight top = sim->heap[0], last = sim->heap[--sim->nheap];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= sim->nheap)
			break;
		if (c + 1 < sim->nheap && before(&sim->heap[c + 1], &sim->heap[c]))
			c++;
		if (!before(&sim->heap[c], &last))
			break;
		sim->heap[i] = sim->heap[c];
		i = c;
	}
	if (sim->nheap)
		sim->heap[i] = last;
	return top;
}

static void forward_event(void *ctx, const struct mesh_swim_event *ev)
{
	struct node *n = ctx;
	if (n->sim->on_event)
		n->sim->on_event(n->sim->event_ctx, n->idx, n->sim->now, ev);
}

/* node index of "sim:<i>"; false when the address is not one */
static bool sim_addr(const char *a, size_t *i)
{
	if (strncmp(a, "sim:", 4) || !a[4])
		return false;
	size_t v = 0;
	for (a += 4; *a; a++) {
		if (*a < '0' || *a > '9' || v > SIZE_MAX / 10 - 10)
			return false;
		v = v * 10 + (size_t)(*a - '0');
	}
	*i = v;
	return true;
}

/* send what node i queued */
static void drain(struct mesh_swim_sim *sim, struct node *src)
{
	struct mesh_swim_out *o;
	while ((o = mesh_swim_next_out(src->sw))) {
		sim->st.packets++;
		sim->st.bytes += o->len;
		if (o->len > sim->st.max_packet)
			sim->st.max_packet = o->len;
		if (o->len > sim->cfg.swim.max_packet)
			sim->st.oversize++;
		size_t dst;
		if (!sim_addr(o->addr, &dst) || dst >= sim->cfg.nodes) {
			free(o);
			continue;
		}
		struct node *d = &sim->nodes[dst];
		if (unit(sim) < sim->cfg.loss || unit(sim) < src->loss || unit(sim) < d->loss ||
		    d->group != src->group) {
			sim->st.lost++;
			free(o);
			continue;
		}
		uint32_t span = sim->cfg.delay_max_ms - sim->cfg.delay_min_ms;
		uint64_t delay = sim->cfg.delay_min_ms + (span ? rnd(sim) % (span + 1) : 0);
		heap_push(sim, (struct flight){sim->now + (delay ? delay : 1), ++sim->order, dst, o});
	}
	src->deadline = mesh_swim_next_deadline(src->sw);
}

struct mesh_swim_sim *mesh_swim_sim_new(const struct mesh_swim_sim_config *cfg, char *err,
					size_t errlen)
{
	if (!cfg->nodes || cfg->loss < 0 || cfg->loss > 1 || cfg->delay_min_ms > cfg->delay_max_ms) {
		snprintf(err, errlen, "swim sim: need nodes > 0, loss in 0..1, delay_min <= delay_max");
		return NULL;
	}
	struct mesh_swim_sim *sim = calloc(1, sizeof(*sim));
	if (!sim || !(sim->nodes = calloc(cfg->nodes, sizeof(*sim->nodes)))) {
		free(sim);
		snprintf(err, errlen, "swim sim: out of memory");
		return NULL;
	}
	sim->cfg = *cfg;
	sim->rng = cfg->seed;
	for (size_t i = 0; i < cfg->nodes; i++) {
		sim->nodes[i].idx = i;
		sim->nodes[i].sim = sim;
	}
	return sim;
}

void mesh_swim_sim_free(struct mesh_swim_sim *sim)
{
	if (!sim)
		return;
	for (size_t i = 0; i < sim->cfg.nodes; i++)
		mesh_swim_free(sim->nodes[i].sw);
	for (size_t i = 0; i < sim->nheap; i++)
		free(sim->heap[i].pkt);
	free(sim->heap);
	free(sim->nodes);
	free(sim);
}

void mesh_swim_sim_on_event(struct mesh_swim_sim *sim, mesh_swim_sim_event_fn fn, void *ctx)
{
	sim->on_event = fn;
	sim->event_ctx = ctx;
}

int mesh_swim_sim_start(struct mesh_swim_sim *sim, size_t i)
{
	char id[32], addr[32], err[256];
	struct node *n = &sim->nodes[i];
	mesh_swim_free(n->sw);
	snprintf(id, sizeof(id), "n%zu", i);
	snprintf(addr, sizeof(addr), "sim:%zu", i);
	n->sw = mesh_swim_new(&sim->cfg.swim, id, addr, NULL, 0, sim->cfg.seed * 1000003 + i, sim->now,
			      err, sizeof(err));
	if (!n->sw)
		return -EINVAL;
	mesh_swim_on_event(n->sw, forward_event, n);
	n->deadline = mesh_swim_next_deadline(n->sw);
	return 0;
}

int mesh_swim_sim_join(struct mesh_swim_sim *sim, size_t i, size_t seed)
{
	char addr[32];
	struct node *n = &sim->nodes[i];
	if (!n->sw || seed >= sim->cfg.nodes)
		return -EINVAL;
	snprintf(addr, sizeof(addr), "sim:%zu", seed);
	int rc = mesh_swim_join(n->sw, sim->now, addr, NULL, 0);
	drain(sim, n);
	return rc;
}

int mesh_swim_sim_preload(struct mesh_swim_sim *sim)
{
	char id[32], addr[32];
	for (size_t j = 0; j < sim->cfg.nodes; j++) {
		struct mesh_swim *sj = sim->nodes[j].sw;
		if (!sj)
			continue;
		snprintf(id, sizeof(id), "n%zu", j);
		snprintf(addr, sizeof(addr), "sim:%zu", j);
		uint64_t inc = mesh_swim_incarnation(sj);
		for (size_t i = 0; i < sim->cfg.nodes; i++) {
			struct node *n = &sim->nodes[i];
			if (i == j || !n->sw)
				continue;
			int rc = mesh_swim_add_member(n->sw, sim->now, id, addr, NULL, 0, inc);
			if (rc < 0 && rc != -EEXIST)
				return rc;
			n->deadline = mesh_swim_next_deadline(n->sw);
		}
	}
	return 0;
}

void mesh_swim_sim_kill(struct mesh_swim_sim *sim, size_t i)
{
	mesh_swim_free(sim->nodes[i].sw);
	sim->nodes[i].sw = NULL;
}

void mesh_swim_sim_leave(struct mesh_swim_sim *sim, size_t i)
{
	struct node *n = &sim->nodes[i];
	if (!n->sw)
		return;
	mesh_swim_leave(n->sw, sim->now);
	mesh_swim_tick(n->sw, sim->now);
	drain(sim, n);
}

void mesh_swim_sim_node_loss(struct mesh_swim_sim *sim, size_t i, double loss)
{
	sim->nodes[i].loss = loss;
}

void mesh_swim_sim_group(struct mesh_swim_sim *sim, size_t i, int group)
{
	sim->nodes[i].group = group;
}

int mesh_swim_sim_inject(struct mesh_swim_sim *sim, size_t i, const uint8_t *buf, size_t len,
			 char *err, size_t errlen)
{
	struct node *n = &sim->nodes[i];
	if (!n->sw)
		return -ENOENT;
	int rc = mesh_swim_receive(n->sw, sim->now, buf, len, err, errlen);
	drain(sim, n);
	return rc;
}

static void step(struct mesh_swim_sim *sim)
{
	while (sim->nheap && sim->heap[0].at <= sim->now) {
		struct flight f = heap_pop(sim);
		struct node *d = &sim->nodes[f.dst];
		if (d->sw) {
			if (mesh_swim_receive(d->sw, sim->now, f.pkt->data, f.pkt->len, NULL, 0) < 0)
				sim->st.rejected++;
			drain(sim, d);
		}
		free(f.pkt);
	}
	for (size_t i = 0; i < sim->cfg.nodes; i++) {
		struct node *n = &sim->nodes[i];
		if (n->sw && n->deadline <= sim->now) {
			mesh_swim_tick(n->sw, sim->now);
			drain(sim, n);
		}
	}
}

bool mesh_swim_sim_run(struct mesh_swim_sim *sim, uint64_t until,
		       bool (*done)(struct mesh_swim_sim *sim, void *ctx), void *ctx)
{
	while (sim->now < until) {
		if (done && done(sim, ctx))
			return true;
		sim->now++;
		step(sim);
	}
	return done && done(sim, ctx);
}

uint64_t mesh_swim_sim_now(const struct mesh_swim_sim *sim)
{
	return sim->now;
}

size_t mesh_swim_sim_size(const struct mesh_swim_sim *sim)
{
	return sim->cfg.nodes;
}

bool mesh_swim_sim_running(const struct mesh_swim_sim *sim, size_t i)
{
	return i < sim->cfg.nodes && sim->nodes[i].sw;
}

struct mesh_swim *mesh_swim_sim_node(struct mesh_swim_sim *sim, size_t i)
{
	return i < sim->cfg.nodes ? sim->nodes[i].sw : NULL;
}

void mesh_swim_sim_get_stats(const struct mesh_swim_sim *sim, struct mesh_swim_sim_stats *st)
{
	*st = sim->st;
}

size_t mesh_swim_sim_seen_as(const struct mesh_swim_sim *sim, size_t j, enum mesh_swim_state s)
{
	char id[32];
	size_t c = 0;
	snprintf(id, sizeof(id), "n%zu", j);
	for (size_t i = 0; i < sim->cfg.nodes; i++) {
		enum mesh_swim_state st;
		if (i != j && sim->nodes[i].sw && mesh_swim_member(sim->nodes[i].sw, id, &st, NULL) == 0 &&
		    st == s)
			c++;
	}
	return c;
}
