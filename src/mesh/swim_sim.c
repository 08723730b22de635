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

/* simreal: one pair of members' session (either direction shares it) */
struct pair {
	uint64_t key;      /* (lo << 32 | hi) + 1; 0 = empty slot */
	uint64_t keys_at;  /* when its keys were made, + 1; 0 = none */
	uint64_t retry_at; /* next initiation while pending */
	uint32_t tries;
	bool ever, pending, hi_inits, rekey;
};

#define SIM_REKEY_MS 120000
#define SIM_REJECT_MS 180000
#define SIM_RETRY_MS 5000
#define SIM_TRIES 18

struct mesh_swim_sim {
	struct mesh_swim_sim_config cfg;
	struct pair *pairs;
	size_t npairs, cappairs;
	uint64_t *pend; /* keys of pairs with a pending handshake */
	size_t npend, cappend;
	uint64_t next_retry;
	uint8_t meta[MESH_SWIM_META_MAX];
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

static bool sim_addr(const char *a, size_t *i);
static void session_forget(struct mesh_swim_sim *sim, size_t a, size_t b);

static void forward_event(void *ctx, const struct mesh_swim_event *ev)
{
	struct node *n = ctx;
	if (ev->state == MESH_SWIM_DEAD || ev->state == MESH_SWIM_LEFT) {
		size_t j;
		if (sim_addr(ev->addr, &j))
			session_forget(n->sim, n->idx, j);
	}
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

const char *mesh_swim_sim_id(const struct mesh_swim_sim *sim, size_t i, char *buf, size_t len)
{
	int w = sim->cfg.id_len > 1 ? (int)sim->cfg.id_len - 1 : 0;
	snprintf(buf, len, "n%0*zu", w, i);
	return buf;
}

static const char *addr_of(const struct mesh_swim_sim *sim, size_t i, char *buf, size_t len)
{
	int w = sim->cfg.addr_len > 4 ? (int)sim->cfg.addr_len - 4 : 0;
	snprintf(buf, len, "sim:%0*zu", w, i);
	return buf;
}

size_t mesh_swim_sim_index(const char *id)
{
	if (!id || id[0] != 'n' || id[1] < '0' || id[1] > '9')
		return SIZE_MAX;
	return (size_t)strtoull(id + 1, NULL, 10);
}

size_t mesh_swim_sim_hs_bytes(enum mesh_swim_sim_hs msg, size_t cert_len)
{
	switch (msg) {
	case MESH_SWIM_SIM_XX1: /* type, sender, e, mac1, mac2 */
		return 1 + 4 + 32 + 16 + 16;
	case MESH_SWIM_SIM_XX2: /* type, sender, receiver, e, s+tag, empty payload's tag */
		return 1 + 4 + 4 + 32 + 48 + 16;
	case MESH_SWIM_SIM_XX3: /* type, sender, receiver, s+tag, certificate+tag */
		return 1 + 4 + 4 + 48 + cert_len + 16;
	case MESH_SWIM_SIM_XXCERT: /* a transport packet carrying the certificate */
		return 13 + cert_len + 16;
	case MESH_SWIM_SIM_IK1: /* type, sender, e, s+tag, stamp+flags+two references+tag, macs */
		return 1 + 4 + 32 + 48 + 8 + 1 + 16 + 16 + 16 + 16 + 16;
	case MESH_SWIM_SIM_IK2: /* type, sender, receiver, e, flag+tag (its certificate omitted) */
		return 1 + 4 + 4 + 32 + 1 + 16;
	case MESH_SWIM_SIM_IK1_FULL: /* ... stamp+flags+their reference+certificate+tag, macs */
		return 1 + 4 + 32 + 48 + 8 + 1 + 16 + cert_len + 16 + 16 + 16;
	case MESH_SWIM_SIM_IK2_FULL: /* type, sender, receiver, e, flag+certificate+tag */
		return 1 + 4 + 4 + 32 + 1 + cert_len + 16;
	case MESH_SWIM_SIM_NEED: /* type, receiver, the initiation's mac1 */
		return 1 + 4 + 16;
	case MESH_SWIM_SIM_KEEPALIVE: /* an empty transport packet */
		return 13 + 16;
	}
	return 0;
}

static uint64_t pair_key(size_t a, size_t b)
{
	size_t lo = a < b ? a : b, hi = a < b ? b : a;
	return ((uint64_t)lo << 32 | (uint64_t)hi) + 1;
}

static size_t pair_slot(const struct pair *t, size_t cap, uint64_t key)
{
	uint64_t h = key * 0x9E3779B97F4A7C15ULL;
	size_t i = (size_t)(h >> 17) & (cap - 1);
	while (t[i].key && t[i].key != key)
		i = (i + 1) & (cap - 1);
	return i;
}

/* the pair's entry, made when absent; NULL when out of memory */
static struct pair *pair_get(struct mesh_swim_sim *sim, uint64_t key)
{
	if ((sim->npairs + 1) * 2 > sim->cappairs) {
		size_t cap = sim->cappairs ? sim->cappairs * 2 : 4096;
		struct pair *t = calloc(cap, sizeof(*t));
		if (!t)
			return NULL;
		for (size_t i = 0; i < sim->cappairs; i++)
			if (sim->pairs[i].key)
				t[pair_slot(t, cap, sim->pairs[i].key)] = sim->pairs[i];
		free(sim->pairs);
		sim->pairs = t;
		sim->cappairs = cap;
	}
	struct pair *p = &sim->pairs[pair_slot(sim->pairs, sim->cappairs, key)];
	if (!p->key) {
		p->key = key;
		sim->npairs++;
	}
	return p;
}

static bool lost(struct mesh_swim_sim *sim, size_t from, size_t to)
{
	const struct node *s = &sim->nodes[from], *d = &sim->nodes[to];
	return unit(sim) < sim->cfg.loss || unit(sim) < s->loss || unit(sim) < d->loss ||
	       s->group != d->group;
}

/* one handshake datagram from -> to; false when it does not arrive */
static bool hs_send(struct mesh_swim_sim *sim, size_t from, size_t to, enum mesh_swim_sim_hs m)
{
	char id[40];
	if (!sim->nodes[from].sw)
		return false;
	size_t len = mesh_swim_sim_hs_bytes(m, 160 + strlen(mesh_swim_sim_id(sim, from, id, sizeof(id))));
	sim->st.packets++;
	sim->st.bytes += len;
	sim->st.hs_packets++;
	sim->st.hs_bytes += len;
	return sim->nodes[to].sw && !lost(sim, from, to);
}

/* one try of the pair's handshake, initiated by a towards b */
static void hs_try(struct mesh_swim_sim *sim, struct pair *p, size_t a, size_t b)
{
	bool ik = p->ever && p->tries == 0; /* an unanswered IK is retried as XX */
	bool ok;
	if (ik)
		ok = hs_send(sim, a, b, MESH_SWIM_SIM_IK1) && hs_send(sim, b, a, MESH_SWIM_SIM_IK2) &&
		     (!p->rekey || hs_send(sim, a, b, MESH_SWIM_SIM_KEEPALIVE));
	else
		ok = hs_send(sim, a, b, MESH_SWIM_SIM_XX1) && hs_send(sim, b, a, MESH_SWIM_SIM_XX2) &&
		     hs_send(sim, a, b, MESH_SWIM_SIM_XX3) && hs_send(sim, b, a, MESH_SWIM_SIM_XXCERT);
	if (ok) {
		*(ik ? &sim->st.hs_ik : &sim->st.hs_xx) += 1;
		p->keys_at = sim->now + 1;
		p->ever = true;
		p->pending = false;
		p->tries = 0;
		return;
	}
	if (++p->tries >= SIM_TRIES) { /* given up: a DOWN, queued payloads dropped */
		p->pending = false;
		p->tries = 0;
		return;
	}
	p->retry_at = sim->now + SIM_RETRY_MS;
	if (!p->pending) {
		p->pending = true;
		if (sim->npend == sim->cappend) {
			size_t cap = sim->cappend ? sim->cappend * 2 : 256;
			uint64_t *q = realloc(sim->pend, cap * sizeof(*q));
			if (!q) {
				p->pending = false;
				return;
			}
			sim->pend = q;
			sim->cappend = cap;
		}
		sim->pend[sim->npend++] = p->key;
	}
	if (p->retry_at < sim->next_retry || !sim->next_retry)
		sim->next_retry = p->retry_at;
}

static void hs_start(struct mesh_swim_sim *sim, struct pair *p, size_t a, size_t b, bool rekey)
{
	p->hi_inits = a > b;
	p->rekey = rekey;
	p->tries = 0;
	hs_try(sim, p, a, b);
}

/* the due retries of pending handshakes */
static void hs_retries(struct mesh_swim_sim *sim)
{
	if (!sim->next_retry || sim->next_retry > sim->now)
		return;
	sim->next_retry = 0;
	for (size_t i = 0; i < sim->npend;) {
		struct pair *p = &sim->pairs[pair_slot(sim->pairs, sim->cappairs, sim->pend[i])];
		size_t lo = (size_t)((p->key - 1) >> 32), hi = (size_t)((p->key - 1) & 0xffffffffu);
		if (p->pending && p->retry_at <= sim->now)
			hs_try(sim, p, p->hi_inits ? hi : lo, p->hi_inits ? lo : hi);
		if (!p->pending) {
			sim->pend[i] = sim->pend[--sim->npend];
			continue;
		}
		if (!sim->next_retry || p->retry_at < sim->next_retry)
			sim->next_retry = p->retry_at;
		i++;
	}
}

/* a swim packet from a to b goes over their session: start or renew it;
 * false when a real cell would not send the packet (b is not running and
 * there are no keys: it waits behind a handshake that gives up) */
static bool session_send(struct mesh_swim_sim *sim, size_t a, size_t b)
{
	struct pair *p = pair_get(sim, pair_key(a, b));
	if (!p)
		return true;
	uint64_t t = sim->now;
	bool keys = p->keys_at && t + 1 - p->keys_at < SIM_REJECT_MS;
	if (!p->pending && !keys)
		hs_start(sim, p, a, b, false);
	else if (!p->pending && t + 1 - p->keys_at >= SIM_REKEY_MS)
		hs_start(sim, p, a, b, true);
	keys = p->keys_at && t + 1 - p->keys_at < SIM_REJECT_MS;
	return keys || sim->nodes[b].sw;
}

/* a member saw another dead or left: the cell forgets their session */
static void session_forget(struct mesh_swim_sim *sim, size_t a, size_t b)
{
	if (!sim->cfg.sessions || a == b || b >= sim->cfg.nodes || !sim->cappairs)
		return;
	struct pair *p = &sim->pairs[pair_slot(sim->pairs, sim->cappairs, pair_key(a, b))];
	if (p->key) {
		p->keys_at = 0;
		p->pending = false;
		p->tries = 0;
	}
}

/* send what node i queued */
static void drain(struct mesh_swim_sim *sim, struct node *src)
{
	struct mesh_swim_out *o;
	while ((o = mesh_swim_next_out(src->sw))) {
		size_t dst;
		bool routed = sim_addr(o->addr, &dst) && dst < sim->cfg.nodes;
		if (routed && sim->cfg.sessions && !session_send(sim, src->idx, dst)) {
			sim->st.held++; /* a real cell never sends it */
			free(o);
			continue;
		}
		size_t wire = o->len + sim->cfg.datagram_overhead;
		sim->st.packets++;
		sim->st.bytes += wire;
		if (wire > sim->st.max_packet)
			sim->st.max_packet = wire;
		if (o->len > sim->cfg.swim.max_packet)
			sim->st.oversize++;
		if (!routed) {
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
	if (cfg->id_len > 32 || cfg->addr_len > 32 || cfg->meta_len > MESH_SWIM_META_MAX ||
	    cfg->datagram_overhead > 1400 || cfg->nodes > UINT32_MAX) {
		snprintf(err, errlen, "swim sim: id_len and addr_len at most 32, meta_len at most %d, "
			 "datagram_overhead at most 1400", MESH_SWIM_META_MAX);
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
	for (size_t i = 0; i < cfg->meta_len; i++)
		sim->meta[i] = (uint8_t)(0x11 * (i + 1));
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
	free(sim->pairs);
	free(sim->pend);
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
	char id[40], addr[40], err[256];
	struct node *n = &sim->nodes[i];
	mesh_swim_free(n->sw);
	mesh_swim_sim_id(sim, i, id, sizeof(id));
	addr_of(sim, i, addr, sizeof(addr));
	n->sw = mesh_swim_new(&sim->cfg.swim, id, addr, sim->cfg.meta_len ? sim->meta : NULL,
			      sim->cfg.meta_len, sim->cfg.seed * 1000003 + i, sim->now, err, sizeof(err));
	if (!n->sw)
		return -EINVAL;
	mesh_swim_on_event(n->sw, forward_event, n);
	n->deadline = mesh_swim_next_deadline(n->sw);
	return 0;
}

int mesh_swim_sim_join(struct mesh_swim_sim *sim, size_t i, size_t seed)
{
	char addr[40];
	struct node *n = &sim->nodes[i];
	if (!n->sw || seed >= sim->cfg.nodes)
		return -EINVAL;
	addr_of(sim, seed, addr, sizeof(addr));
	int rc = mesh_swim_join(n->sw, sim->now, addr, NULL, 0);
	drain(sim, n);
	return rc;
}

int mesh_swim_sim_preload(struct mesh_swim_sim *sim)
{
	char id[40], addr[40];
	for (size_t j = 0; j < sim->cfg.nodes; j++) {
		struct mesh_swim *sj = sim->nodes[j].sw;
		if (!sj)
			continue;
		mesh_swim_sim_id(sim, j, id, sizeof(id));
		addr_of(sim, j, addr, sizeof(addr));
		uint64_t inc = mesh_swim_incarnation(sj);
		for (size_t i = 0; i < sim->cfg.nodes; i++) {
			struct node *n = &sim->nodes[i];
			if (i == j || !n->sw)
				continue;
			int rc = mesh_swim_add_member(n->sw, sim->now, id, addr,
						      sim->cfg.meta_len ? sim->meta : NULL, sim->cfg.meta_len, inc);
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
	hs_retries(sim);
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
	char id[40];
	size_t c = 0;
	mesh_swim_sim_id(sim, j, id, sizeof(id));
	for (size_t i = 0; i < sim->cfg.nodes; i++) {
		enum mesh_swim_state st;
		if (i != j && sim->nodes[i].sw && mesh_swim_member(sim->nodes[i].sw, id, &st, NULL) == 0 &&
		    st == s)
			c++;
	}
	return c;
}
