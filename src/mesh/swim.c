/* swim.c: SWIM + Lifeguard membership as a pure state machine (see swim.h):
 * members and their states, the probe cycle, suspicion timers, gossip with a
 * transmit-limited broadcast queue, push-pull, and the SWIM v1 codec. */
#include "mesh/swim.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T_PING = 1, T_INDIRECT, T_ACK, T_NACK, T_ALIVE, T_SUSPECT, T_DEAD, T_STATE };
enum { ST_REPLY = 1, ST_JOIN = 2 };
#define MAGIC 0xA7
#define VERSION 1
#define SUSP_FROM_MAX 16
#define RELAY_MAX 64
#define PKT_HARD_MAX 65507

struct member {
	char *id, *addr;
	uint8_t *meta;
	uint8_t meta_len;
	enum mesh_swim_state state;
	uint64_t inc, state_change;
	/* suspicion (Lifeguard): start, bounds, k wanted, confirmations seen */
	bool suspected;
	uint64_t susp_start, susp_min, susp_max;
	uint32_t susp_k, susp_n, nfrom;
	uint64_t susp_from[SUSP_FROM_MAX];
};

struct bcast {
	char key[MESH_SWIM_ID_MAX + 1];
	uint32_t transmits;
	uint64_t order;
	size_t len;
	uint8_t msg[];
};

struct relay {
	uint64_t seq, orig_seq, nack_at, expire;
	bool nack;
	char id[MESH_SWIM_ID_MAX + 1], addr[MESH_SWIM_ADDR_MAX + 1];
};

struct outq {
	struct outq *next;
	struct mesh_swim_out *pkt;
};

struct packet;

struct mesh_swim {
	struct mesh_swim_config cfg;
	struct member *self;
	struct member **m; /* all members, self included; shuffled for probing */
	size_t n, cap, probe_idx;
	struct member **hash; /* open addressing by id */
	size_t hcap;
	size_t count[4];
	struct member **susp; /* members under suspicion */
	size_t nsusp, capsusp;
	struct bcast **bq;
	size_t nbq, capbq;
	uint64_t border;
	struct relay relays[RELAY_MAX];
	size_t nrelays;
	struct outq *out_head, *out_tail;
	uint64_t rng, seq;
	uint32_t awareness;
	bool leaving;
	/* the probe in flight */
	bool probing, indirect_sent;
	uint64_t probe_seq, probe_start, ack_deadline, probe_deadline;
	uint32_t expected_nacks, nacks;
	char probe_target[MESH_SWIM_ID_MAX + 1];
	uint64_t next_probe, next_gossip, next_pushpull;
	/* join retried each probe interval until the seed answers */
	char join_addr[MESH_SWIM_ADDR_MAX + 1];
	uint64_t next_join;
	mesh_swim_event_fn on_event;
	void *event_ctx;
	struct packet *pk; /* the packet being received, parsed */
	struct mesh_swim_stats st;
};

/* ---- small helpers ---- */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static uint64_t rnd(struct mesh_swim *sw)
{
	/* splitmix64 */
	uint64_t z = (sw->rng += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static uint64_t hash_bytes(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	return h;
}

static bool printable(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x21 || p[i] > 0x7e)
			return false;
	return true;
}

static bool name_ok(const char *s, size_t max, bool empty_ok)
{
	size_t n = s ? strlen(s) : 0;
	if (!s || n > max || (!n && !empty_ok))
		return false;
	return printable((const uint8_t *)s, n);
}

const char *mesh_swim_state_name(enum mesh_swim_state s)
{
	static const char *names[] = {"alive", "suspect", "dead", "left"};
	return (unsigned)s < 4 ? names[s] : "?";
}

/* ---- timeouts (memberlist util.go, suspicion.go) ---- */

uint32_t mesh_swim_retransmit_limit(uint32_t mult, size_t n)
{
	return mult * (uint32_t)ceil(log10((double)n + 1.0));
}

uint64_t mesh_swim_suspicion_min_ms(uint32_t mult, size_t n, uint32_t interval_ms)
{
	double scale = log10(n > 1 ? (double)n : 1.0);
	if (scale < 1.0)
		scale = 1.0;
	return (uint64_t)(mult * scale * interval_ms);
}

uint64_t mesh_swim_suspicion_timeout_ms(uint32_t c, uint32_t k, uint64_t min_ms, uint64_t max_ms)
{
	if (k == 0)
		return min_ms;
	double frac = log((double)c + 1.0) / log((double)k + 1.0);
	double raw = (double)max_ms - frac * (double)(max_ms - min_ms);
	uint64_t t = raw < (double)min_ms ? min_ms : (uint64_t)floor(raw);
	return t;
}

static uint64_t pushpull_interval(const struct mesh_swim *sw)
{
	uint64_t iv = sw->cfg.pushpull_interval_ms;
	if (sw->n <= 32)
		return iv;
	double mult = ceil(log2((double)sw->n) - log2(32.0)) + 1.0;
	return (uint64_t)(iv * mult);
}

static uint64_t scaled(const struct mesh_swim *sw, uint64_t t)
{
	return t * (sw->awareness + 1);
}

static void awareness_delta(struct mesh_swim *sw, int d)
{
	int64_t v = (int64_t)sw->awareness + d;
	if (v < 0)
		v = 0;
	if (v > (int64_t)sw->cfg.awareness_max - 1)
		v = (int64_t)sw->cfg.awareness_max - 1;
	sw->awareness = (uint32_t)v;
}

/* ---- members ---- */

static struct member **hslot(const struct mesh_swim *sw, const char *id, size_t n)
{
	size_t i = hash_bytes(id, n) & (sw->hcap - 1);
	for (;;) {
		struct member *m = sw->hash[i];
		if (!m || (strlen(m->id) == n && !memcmp(m->id, id, n)))
			return &sw->hash[i];
		i = (i + 1) & (sw->hcap - 1);
	}
}

static struct member *findn(const struct mesh_swim *sw, const char *id, size_t n)
{
	return *hslot(sw, id, n);
}

static struct member *find(const struct mesh_swim *sw, const char *id)
{
	return findn(sw, id, strlen(id));
}

static int rehash(struct mesh_swim *sw, size_t want)
{
	size_t cap = 16;
	while (cap < want * 2)
		cap *= 2;
	struct member **h = calloc(cap, sizeof(*h));
	if (!h)
		return -ENOMEM;
	free(sw->hash);
	sw->hash = h;
	sw->hcap = cap;
	for (size_t i = 0; i < sw->n; i++)
		*hslot(sw, sw->m[i]->id, strlen(sw->m[i]->id)) = sw->m[i];
	return 0;
}

static void member_free(struct member *m)
{
	if (!m)
		return;
	free(m->id);
	free(m->addr);
	free(m->meta);
	free(m);
}

static int member_set_addr(struct member *m, const char *addr, size_t alen, const uint8_t *meta,
			   size_t mlen)
{
	char *a = strndup(addr, alen);
	uint8_t *mt = mlen ? malloc(mlen) : NULL;
	if (!a || (mlen && !mt)) {
		free(a);
		free(mt);
		return -ENOMEM;
	}
	if (mlen)
		memcpy(mt, meta, mlen);
	free(m->addr);
	free(m->meta);
	m->addr = a;
	m->meta = mt;
	m->meta_len = (uint8_t)mlen;
	return 0;
}

static struct member *member_add(struct mesh_swim *sw, const char *id, size_t idlen, const char *addr,
				 size_t alen, const uint8_t *meta, size_t mlen)
{
	if (sw->n == sw->cap) {
		size_t cap = sw->cap ? sw->cap * 2 : 16;
		struct member **nm = realloc(sw->m, cap * sizeof(*nm));
		if (!nm)
			return NULL;
		sw->m = nm;
		sw->cap = cap;
	}
	if ((sw->n + 1) * 2 > sw->hcap && rehash(sw, sw->n + 1) < 0)
		return NULL;
	struct member *m = calloc(1, sizeof(*m));
	if (!m || !(m->id = strndup(id, idlen)) || member_set_addr(m, addr, alen, meta, mlen) < 0) {
		member_free(m);
		return NULL;
	}
	/* insert at a random place so new members are probed soon but fairly */
	size_t at = sw->n ? (size_t)(rnd(sw) % (sw->n + 1)) : 0;
	sw->m[sw->n++] = m;
	if (at < sw->n - 1) {
		sw->m[sw->n - 1] = sw->m[at];
		sw->m[at] = m;
	}
	*hslot(sw, m->id, idlen) = m;
	sw->count[MESH_SWIM_ALIVE]++;
	return m;
}

static void susp_remove(struct mesh_swim *sw, struct member *m)
{
	if (!m->suspected)
		return;
	m->suspected = false;
	for (size_t i = 0; i < sw->nsusp; i++)
		if (sw->susp[i] == m) {
			sw->susp[i] = sw->susp[--sw->nsusp];
			break;
		}
}

static void emit(struct mesh_swim *sw, struct member *m, bool joined)
{
	if (!sw->on_event)
		return;
	struct mesh_swim_event ev = {.id = m->id, .addr = m->addr, .state = m->state,
				     .joined = joined, .incarnation = m->inc};
	sw->on_event(sw->event_ctx, &ev);
}

static void set_state(struct mesh_swim *sw, struct member *m, enum mesh_swim_state s, uint64_t now)
{
	sw->count[m->state]--;
	sw->count[s]++;
	m->state = s;
	m->state_change = now;
	if (s != MESH_SWIM_SUSPECT)
		susp_remove(sw, m);
}

/* shuffle for the next probe round; forget members dead for long enough */
static void reshuffle(struct mesh_swim *sw, uint64_t now)
{
	size_t w = 0;
	bool removed = false;
	for (size_t i = 0; i < sw->n; i++) {
		struct member *m = sw->m[i];
		uint64_t keep = m->state == MESH_SWIM_DEAD ? sw->cfg.reconnect_timeout_ms
							    : sw->cfg.gossip_to_dead_ms;
		if (m != sw->self && m->state >= MESH_SWIM_DEAD && now - m->state_change > keep) {
			sw->count[m->state]--;
			member_free(m);
			removed = true;
			continue;
		}
		sw->m[w++] = m;
	}
	sw->n = w;
	for (size_t i = sw->n; i > 1; i--) {
		size_t j = (size_t)(rnd(sw) % i);
		struct member *t = sw->m[i - 1];
		sw->m[i - 1] = sw->m[j];
		sw->m[j] = t;
	}
	if (removed)
		rehash(sw, sw->n);
}

/* ---- encoding ---- */

struct wr {
	uint8_t *b;
	size_t len, cap;
	bool over;
};

static void put(struct wr *w, const void *p, size_t n)
{
	if (!n)
		return;
	if (w->over || w->len + n > w->cap) {
		w->over = true;
		return;
	}
	memcpy(w->b + w->len, p, n);
	w->len += n;
}

static void put_u8(struct wr *w, uint8_t v)
{
	put(w, &v, 1);
}

static void put_var(struct wr *w, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;
	do {
		b[n] = v & 0x7f;
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	put(w, b, n);
}

static void put_str(struct wr *w, const void *s, size_t n)
{
	put_u8(w, (uint8_t)n);
	put(w, s, n);
}

static void put_cstr(struct wr *w, const char *s)
{
	put_str(w, s, strlen(s));
}

/* a whole message: type, body length, body */
static void put_msg(struct wr *w, uint8_t type, const uint8_t *body, size_t blen)
{
	put_u8(w, type);
	put_var(w, blen);
	put(w, body, blen);
}

#define BODY(name) uint8_t name##_b[512]; struct wr name = {name##_b, 0, sizeof(name##_b), false}

static size_t enc_alive(uint8_t *out, size_t cap, const struct member *m)
{
	BODY(b);
	put_var(&b, m->inc);
	put_cstr(&b, m->id);
	put_cstr(&b, m->addr);
	put_str(&b, m->meta, m->meta_len);
	struct wr w = {out, 0, cap, false};
	put_msg(&w, T_ALIVE, b.b, b.len);
	return w.over ? 0 : w.len;
}

static size_t enc_accuse(uint8_t *out, size_t cap, uint8_t type, uint64_t inc, const char *id,
			 const char *from)
{
	BODY(b);
	put_var(&b, inc);
	put_cstr(&b, id);
	put_cstr(&b, from);
	struct wr w = {out, 0, cap, false};
	put_msg(&w, type, b.b, b.len);
	return w.over ? 0 : w.len;
}

static void put_header(struct mesh_swim *sw, struct wr *w)
{
	put_u8(w, MAGIC);
	put_u8(w, VERSION);
	put_cstr(w, sw->self->id);
	put_cstr(w, sw->self->addr);
}

/* ---- broadcast queue (memberlist's TransmitLimitedQueue) ---- */

static void bq_remove(struct mesh_swim *sw, size_t i)
{
	free(sw->bq[i]);
	memmove(&sw->bq[i], &sw->bq[i + 1], (sw->nbq - i - 1) * sizeof(*sw->bq));
	sw->nbq--;
}

static void broadcast(struct mesh_swim *sw, const char *key, const uint8_t *msg, size_t len)
{
	if (!len)
		return;
	for (size_t i = 0; i < sw->nbq; i++)
		if (!strcmp(sw->bq[i]->key, key)) {
			bq_remove(sw, i);
			break;
		}
	if (sw->nbq == sw->capbq) {
		size_t cap = sw->capbq ? sw->capbq * 2 : 16;
		struct bcast **nb = realloc(sw->bq, cap * sizeof(*nb));
		if (!nb)
			return;
		sw->bq = nb;
		sw->capbq = cap;
	}
	struct bcast *b = malloc(sizeof(*b) + len);
	if (!b)
		return;
	snprintf(b->key, sizeof(b->key), "%s", key);
	b->transmits = 0;
	b->order = ++sw->border;
	b->len = len;
	memcpy(b->msg, msg, len);
	sw->bq[sw->nbq++] = b;
}

static int bcast_cmp(const void *a, const void *b)
{
	const struct bcast *x = *(const struct bcast *const *)a, *y = *(const struct bcast *const *)b;
	if (x->transmits != y->transmits)
		return x->transmits < y->transmits ? -1 : 1;
	return x->order > y->order ? -1 : x->order < y->order; /* newest first */
}

/* append the fewest-sent broadcasts that fit; count the transmissions */
static void fill_broadcasts(struct mesh_swim *sw, struct wr *w)
{
	if (!sw->nbq)
		return;
	uint32_t limit = mesh_swim_retransmit_limit(sw->cfg.retransmit_mult, sw->n);
	qsort(sw->bq, sw->nbq, sizeof(*sw->bq), bcast_cmp);
	for (size_t i = 0; i < sw->nbq && w->cap - w->len > 3;) {
		struct bcast *b = sw->bq[i];
		if (b->len > w->cap - w->len) {
			i++;
			continue;
		}
		put(w, b->msg, b->len);
		if (++b->transmits >= limit)
			bq_remove(sw, i);
		else
			i++;
	}
}

/* ---- sending ---- */

static void enqueue(struct mesh_swim *sw, const char *id, const char *addr, const uint8_t *p,
		    size_t len)
{
	struct mesh_swim_out *o = malloc(sizeof(*o) + len);
	struct outq *q = malloc(sizeof(*q));
	if (!o || !q) {
		free(o);
		free(q);
		return;
	}
	snprintf(o->id, sizeof(o->id), "%s", id ? id : "");
	snprintf(o->addr, sizeof(o->addr), "%s", addr);
	o->len = len;
	memcpy(o->data, p, len);
	q->pkt = o;
	q->next = NULL;
	if (sw->out_tail)
		sw->out_tail->next = q;
	else
		sw->out_head = q;
	sw->out_tail = q;
	sw->st.packets_out++;
	sw->st.bytes_out += len;
}

/* one packet: header, the given messages (already encoded), then gossip */
static void send_msgs(struct mesh_swim *sw, const char *id, const char *addr, const uint8_t *m1,
		      size_t l1, const uint8_t *m2, size_t l2)
{
	uint8_t buf[PKT_HARD_MAX];
	struct wr w = {buf, 0, sw->cfg.max_packet, false};
	put_header(sw, &w);
	put(&w, m1, l1);
	if (m2)
		put(&w, m2, l2);
	if (w.over)
		return;
	fill_broadcasts(sw, &w);
	enqueue(sw, id, addr, buf, w.len);
}

static void send_simple(struct mesh_swim *sw, const char *id, const char *addr, uint8_t type,
			uint64_t seq, const char *target, const char *taddr, bool nack)
{
	BODY(b);
	put_var(&b, seq);
	if (type == T_INDIRECT)
		put_u8(&b, nack);
	if (type == T_PING || type == T_INDIRECT)
		put_cstr(&b, target);
	if (type == T_INDIRECT)
		put_cstr(&b, taddr);
	uint8_t msg[600];
	struct wr w = {msg, 0, sizeof(msg), false};
	put_msg(&w, type, b.b, b.len);
	send_msgs(sw, id, addr, msg, w.len, NULL, 0);
}

/* the full state as STATE packets, each entry whole in one packet */
static void send_state(struct mesh_swim *sw, const char *id, const char *addr, uint8_t flags)
{
	uint8_t hdr[200], entries[PKT_HARD_MAX], buf[PKT_HARD_MAX];
	struct wr h = {hdr, 0, sizeof(hdr), false};
	put_header(sw, &h);
	/* type + 2-byte length + flags + 2-byte count */
	size_t budget = sw->cfg.max_packet - h.len - 5;
	size_t i = 0;
	do {
		struct wr e = {entries, 0, budget, false};
		size_t count = 0;
		for (; i < sw->n; i++) {
			const struct member *m = sw->m[i];
			size_t mark = e.len;
			put_u8(&e, (uint8_t)m->state);
			put_var(&e, m->inc);
			put_cstr(&e, m->id);
			put_cstr(&e, m->addr);
			put_str(&e, m->meta, m->meta_len);
			if (e.over) {
				e.len = mark;
				break;
			}
			count++;
		}
		uint8_t body[PKT_HARD_MAX];
		struct wr b = {body, 0, sizeof(body), false};
		put_u8(&b, flags);
		put_var(&b, count);
		put(&b, entries, e.len);
		struct wr w = {buf, 0, sw->cfg.max_packet, false};
		put(&w, hdr, h.len);
		put_msg(&w, T_STATE, body, b.len);
		if (w.over || !count)
			return;
		enqueue(sw, id, addr, buf, w.len);
		flags &= (uint8_t)~ST_REPLY; /* one reply for the whole state */
		if (!(flags & ST_JOIN))
			flags = 0;
	} while (i < sw->n);
}

static void bcast_alive(struct mesh_swim *sw, const struct member *m)
{
	uint8_t msg[400];
	broadcast(sw, m->id, msg, enc_alive(msg, sizeof(msg), m));
}

static void bcast_accuse(struct mesh_swim *sw, uint8_t type, uint64_t inc, const char *id,
			 const char *from)
{
	uint8_t msg[200];
	broadcast(sw, id, msg, enc_accuse(msg, sizeof(msg), type, inc, id, from));
}

/* ---- state transitions (memberlist state.go) ---- */

static void refute(struct mesh_swim *sw, uint64_t accused_inc)
{
	struct member *s = sw->self;
	s->inc = (accused_inc > s->inc ? accused_inc : s->inc) + 1;
	awareness_delta(sw, 1);
	sw->st.refutations++;
	bcast_alive(sw, s);
}

/* An accusation about us older than our incarnation: someone missed our
 * refutation. Queue our alive again (no new incarnation) so that it rides
 * on the next packets, the ack to a buddy-system probe first of all. */
static void stale_accusation(struct mesh_swim *sw)
{
	bcast_alive(sw, sw->self);
}

static void alive_node(struct mesh_swim *sw, uint64_t now, uint64_t inc, const char *id, size_t idlen,
		       const char *addr, size_t alen, const uint8_t *meta, size_t mlen)
{
	struct member *m = findn(sw, id, idlen);
	if (m == sw->self) {
		if (sw->leaving || inc < m->inc)
			return;
		if (inc == m->inc && strlen(m->addr) == alen && !memcmp(m->addr, addr, alen) &&
		    m->meta_len == mlen && (!mlen || !memcmp(m->meta, meta, mlen)))
			return;
		refute(sw, inc);
		return;
	}
	if (!m) {
		m = member_add(sw, id, idlen, addr, alen, meta, mlen);
		if (!m)
			return;
		m->inc = inc;
		m->state_change = now;
		bcast_alive(sw, m);
		emit(sw, m, true);
		return;
	}
	if (inc <= m->inc)
		return;
	bool back = m->state >= MESH_SWIM_DEAD;
	if (member_set_addr(m, addr, alen, meta, mlen) < 0)
		return;
	m->inc = inc;
	enum mesh_swim_state was = m->state;
	set_state(sw, m, MESH_SWIM_ALIVE, now);
	bcast_alive(sw, m);
	if (was != MESH_SWIM_ALIVE || back)
		emit(sw, m, back);
}

static uint64_t susp_deadline(const struct member *m)
{
	return m->susp_start + mesh_swim_suspicion_timeout_ms(m->susp_n, m->susp_k, m->susp_min,
							       m->susp_max);
}

static bool susp_confirm(struct member *m, uint64_t from)
{
	if (m->susp_n >= m->susp_k)
		return false;
	for (uint32_t i = 0; i < m->nfrom; i++)
		if (m->susp_from[i] == from)
			return false;
	if (m->nfrom < SUSP_FROM_MAX)
		m->susp_from[m->nfrom++] = from;
	m->susp_n++;
	return true;
}

static void suspect_node(struct mesh_swim *sw, uint64_t now, uint64_t inc, const char *id,
			 size_t idlen, const char *from)
{
	struct member *m = findn(sw, id, idlen);
	if (m == sw->self && inc < m->inc) {
		stale_accusation(sw);
		return;
	}
	if (!m || inc < m->inc)
		return;
	if (m->state == MESH_SWIM_SUSPECT && m->suspected) {
		if (susp_confirm(m, hash_bytes(from, strlen(from))))
			bcast_accuse(sw, T_SUSPECT, inc, m->id, from);
		return;
	}
	if (m->state != MESH_SWIM_ALIVE)
		return;
	if (m == sw->self) {
		refute(sw, inc);
		return;
	}
	bcast_accuse(sw, T_SUSPECT, inc, m->id, from);
	m->inc = inc;
	set_state(sw, m, MESH_SWIM_SUSPECT, now);
	size_t n = sw->count[MESH_SWIM_ALIVE] + sw->count[MESH_SWIM_SUSPECT];
	m->susp_k = sw->cfg.suspicion_k;
	if (n < 2 || n - 2 < m->susp_k)
		m->susp_k = 0;
	m->susp_min = mesh_swim_suspicion_min_ms(sw->cfg.suspicion_mult, n, sw->cfg.probe_interval_ms);
	m->susp_max = sw->cfg.suspicion_max_mult * m->susp_min;
	m->susp_start = now;
	m->susp_n = 0;
	m->nfrom = 1;
	m->susp_from[0] = hash_bytes(from, strlen(from));
	if (sw->nsusp == sw->capsusp) {
		size_t cap = sw->capsusp ? sw->capsusp * 2 : 16;
		struct member **ns = realloc(sw->susp, cap * sizeof(*ns));
		if (!ns)
			return;
		sw->susp = ns;
		sw->capsusp = cap;
	}
	m->suspected = true;
	sw->susp[sw->nsusp++] = m;
	emit(sw, m, false);
}

static void dead_node(struct mesh_swim *sw, uint64_t now, uint64_t inc, const char *id, size_t idlen,
		      const char *from, size_t flen)
{
	struct member *m = findn(sw, id, idlen);
	if (m == sw->self && inc < m->inc && !sw->leaving) {
		stale_accusation(sw);
		return;
	}
	if (!m || inc < m->inc || m->state >= MESH_SWIM_DEAD)
		return;
	bool left = flen == idlen && !memcmp(from, id, idlen);
	if (m == sw->self && !sw->leaving) {
		refute(sw, inc);
		return;
	}
	char f[MESH_SWIM_ID_MAX + 1];
	snprintf(f, sizeof(f), "%.*s", (int)flen, from);
	bcast_accuse(sw, T_DEAD, inc, m->id, f);
	m->inc = inc;
	set_state(sw, m, left ? MESH_SWIM_LEFT : MESH_SWIM_DEAD, now);
	emit(sw, m, false);
}

/* ---- decoding ---- */

struct str {
	const char *p;
	size_t n;
};

struct rd {
	const uint8_t *b;
	size_t len, pos, base; /* base: offset of b in the packet */
	const char *why;
};

static bool get_u8(struct rd *r, uint8_t *v)
{
	if (r->pos >= r->len) {
		r->why = "truncated";
		return false;
	}
	*v = r->b[r->pos++];
	return true;
}

static bool get_var(struct rd *r, uint64_t *v)
{
	uint64_t x = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		uint8_t c;
		if (!get_u8(r, &c))
			return false;
		if (shift == 63 && c > 1) {
			r->why = "varint overflows 64 bits";
			return false;
		}
		x |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*v = x;
			return true;
		}
	}
	r->why = "varint longer than 10 bytes";
	return false;
}

static bool get_str(struct rd *r, struct str *s, size_t max, bool name, bool empty_ok,
		    const char *what)
{
	uint8_t n;
	if (!get_u8(r, &n))
		return false;
	if (n > max || (!n && !empty_ok) || r->len - r->pos < n) {
		r->why = !n && !empty_ok ? what : n > max ? what : "truncated";
		return false;
	}
	s->p = (const char *)r->b + r->pos;
	s->n = n;
	if (name && !printable(r->b + r->pos, n)) {
		r->why = what;
		return false;
	}
	r->pos += n;
	return true;
}

struct pmsg {
	uint8_t type, flag;
	uint64_t seq, inc, count;
	struct str id, addr, meta, from;
	struct rd entries;
};

static bool parse_entry(struct rd *r, uint8_t *state, uint64_t *inc, struct str *id, struct str *addr,
			struct str *meta)
{
	if (!get_u8(r, state))
		return false;
	if (*state > MESH_SWIM_LEFT) {
		r->why = "unknown member state";
		return false;
	}
	return get_var(r, inc) && get_str(r, id, MESH_SWIM_ID_MAX, true, false, "bad member id") &&
	       get_str(r, addr, MESH_SWIM_ADDR_MAX, true, false, "bad address") &&
	       get_str(r, meta, MESH_SWIM_META_MAX, false, true, "metadata too long");
}

static bool parse_body(struct rd *r, struct pmsg *p)
{
	switch (p->type) {
	case T_PING:
		return get_var(r, &p->seq) && get_str(r, &p->id, MESH_SWIM_ID_MAX, true, true, "bad target id");
	case T_INDIRECT:
		return get_var(r, &p->seq) && get_u8(r, &p->flag) &&
		       get_str(r, &p->id, MESH_SWIM_ID_MAX, true, false, "bad target id") &&
		       get_str(r, &p->addr, MESH_SWIM_ADDR_MAX, true, false, "bad target address");
	case T_ACK:
	case T_NACK:
		return get_var(r, &p->seq);
	case T_ALIVE:
		return get_var(r, &p->inc) && get_str(r, &p->id, MESH_SWIM_ID_MAX, true, false, "bad member id") &&
		       get_str(r, &p->addr, MESH_SWIM_ADDR_MAX, true, false, "bad address") &&
		       get_str(r, &p->meta, MESH_SWIM_META_MAX, false, true, "metadata too long");
	case T_SUSPECT:
	case T_DEAD:
		return get_var(r, &p->inc) && get_str(r, &p->id, MESH_SWIM_ID_MAX, true, false, "bad member id") &&
		       get_str(r, &p->from, MESH_SWIM_ID_MAX, true, false, "bad accuser id");
	case T_STATE: {
		if (!get_u8(r, &p->flag) || !get_var(r, &p->count))
			return false;
		p->entries = (struct rd){r->b + r->pos, r->len - r->pos, 0, r->base + r->pos, NULL};
		for (uint64_t i = 0; i < p->count; i++) {
			uint8_t st;
			uint64_t inc;
			struct str a, b, c;
			if (!parse_entry(r, &st, &inc, &a, &b, &c))
				return false;
		}
		return true;
	}
	default:
		r->why = "unknown message type";
		return false;
	}
}

#define MSGS_MAX 700

struct packet {
	struct str from, from_addr;
	size_t n;
	struct pmsg m[MSGS_MAX];
};

static int parse_packet(const uint8_t *buf, size_t len, size_t max, struct packet *pk, char *err,
			size_t errlen)
{
	struct rd r = {buf, len, 0, 0, NULL};
	uint8_t magic = 0, ver = 0;
	if (len > max) {
		seterr(err, errlen, "swim packet: %zu bytes, over the %zu-byte limit", len, max);
		return -EBADMSG;
	}
	if (!get_u8(&r, &magic) || magic != MAGIC || !get_u8(&r, &ver) || ver != VERSION) {
		seterr(err, errlen, "swim packet: offset 0: not a SWIM v1 packet (magic/version)");
		return -EBADMSG;
	}
	if (!get_str(&r, &pk->from, MESH_SWIM_ID_MAX, true, false, "bad sender id") ||
	    !get_str(&r, &pk->from_addr, MESH_SWIM_ADDR_MAX, true, false, "bad sender address"))
		goto bad;
	pk->n = 0;
	while (r.pos < len) {
		struct pmsg *p = &pk->m[pk->n];
		size_t at = r.pos;
		uint64_t blen;
		memset(p, 0, sizeof(*p));
		if (pk->n == MSGS_MAX) {
			r.why = "too many messages";
			goto bad;
		}
		if (!get_u8(&r, &p->type) || !get_var(&r, &blen))
			goto bad;
		if (blen > len - r.pos) {
			r.why = "message longer than the packet";
			goto bad;
		}
		struct rd body = {buf + r.pos, (size_t)blen, 0, r.pos, NULL};
		if (!parse_body(&body, p)) {
			seterr(err, errlen, "swim packet: message %zu (type %u) at offset %zu: %s",
			       pk->n + 1, p->type, at + body.pos, body.why);
			return -EBADMSG;
		}
		if (body.pos != body.len) {
			seterr(err, errlen, "swim packet: message %zu (type %u) at offset %zu: %zu trailing bytes",
			       pk->n + 1, p->type, at, body.len - body.pos);
			return -EBADMSG;
		}
		r.pos += blen;
		pk->n++;
	}
	return 0;
bad:
	seterr(err, errlen, "swim packet: offset %zu: %s", r.pos, r.why ? r.why : "malformed");
	return -EBADMSG;
}

/* ---- handling ---- */

static void probe_done(struct mesh_swim *sw, uint64_t now)
{
	bool direct = now <= sw->ack_deadline;
	sw->probing = false;
	if (direct)
		awareness_delta(sw, -1);
}

static void handle_state(struct mesh_swim *sw, uint64_t now, const struct packet *pk,
			 const struct pmsg *p)
{
	struct rd r = p->entries;
	if (sw->join_addr[0] && pk->from_addr.n == strlen(sw->join_addr) &&
	    !memcmp(pk->from_addr.p, sw->join_addr, pk->from_addr.n))
		sw->join_addr[0] = 0; /* the seed answered: joined */
	for (uint64_t i = 0; i < p->count; i++) {
		uint8_t st;
		uint64_t inc;
		struct str id, addr, meta;
		if (!parse_entry(&r, &st, &inc, &id, &addr, &meta))
			return; /* checked before: cannot happen */
		switch (st) {
		case MESH_SWIM_ALIVE:
			alive_node(sw, now, inc, id.p, id.n, addr.p, addr.n, (const uint8_t *)meta.p, meta.n);
			break;
		case MESH_SWIM_LEFT:
			dead_node(sw, now, inc, id.p, id.n, id.p, id.n);
			break;
		default: /* a remote "dead" is only a suspicion here (memberlist) */
			suspect_node(sw, now, inc, id.p, id.n, sw->self->id);
		}
	}
	if (p->flag & ST_REPLY) {
		char id[MESH_SWIM_ID_MAX + 1], addr[MESH_SWIM_ADDR_MAX + 1];
		snprintf(id, sizeof(id), "%.*s", (int)pk->from.n, pk->from.p);
		snprintf(addr, sizeof(addr), "%.*s", (int)pk->from_addr.n, pk->from_addr.p);
		send_state(sw, id, addr, 0);
	}
}

static void handle(struct mesh_swim *sw, uint64_t now, const struct packet *pk, const struct pmsg *p)
{
	char from[MESH_SWIM_ID_MAX + 1], faddr[MESH_SWIM_ADDR_MAX + 1];
	char id[MESH_SWIM_ID_MAX + 1], addr[MESH_SWIM_ADDR_MAX + 1];
	snprintf(from, sizeof(from), "%.*s", (int)pk->from.n, pk->from.p);
	snprintf(faddr, sizeof(faddr), "%.*s", (int)pk->from_addr.n, pk->from_addr.p);
	snprintf(id, sizeof(id), "%.*s", (int)p->id.n, p->id.p);
	snprintf(addr, sizeof(addr), "%.*s", (int)p->addr.n, p->addr.p);
	switch (p->type) {
	case T_PING:
		if (p->id.n && strcmp(id, sw->self->id))
			return; /* meant for someone else at this address */
		send_simple(sw, from, faddr, T_ACK, p->seq, NULL, NULL, false);
		return;
	case T_INDIRECT:
		if (sw->nrelays == RELAY_MAX)
			return;
		{
			struct relay *rl = &sw->relays[sw->nrelays++];
			rl->seq = ++sw->seq;
			rl->orig_seq = p->seq;
			rl->nack = p->flag != 0;
			rl->nack_at = now + sw->cfg.probe_timeout_ms * 8 / 10;
			rl->expire = now + sw->cfg.probe_timeout_ms;
			snprintf(rl->id, sizeof(rl->id), "%s", from);
			snprintf(rl->addr, sizeof(rl->addr), "%s", faddr);
			send_simple(sw, id, addr, T_PING, rl->seq, id, NULL, false);
		}
		return;
	case T_ACK:
		if (sw->probing && p->seq == sw->probe_seq) {
			probe_done(sw, now);
			return;
		}
		for (size_t i = 0; i < sw->nrelays; i++)
			if (sw->relays[i].seq == p->seq) {
				struct relay rl = sw->relays[i];
				sw->relays[i] = sw->relays[--sw->nrelays];
				send_simple(sw, rl.id, rl.addr, T_ACK, rl.orig_seq, NULL, NULL, false);
				return;
			}
		return;
	case T_NACK:
		if (sw->probing && p->seq == sw->probe_seq)
			sw->nacks++;
		return;
	case T_ALIVE:
		alive_node(sw, now, p->inc, p->id.p, p->id.n, p->addr.p, p->addr.n,
			   (const uint8_t *)p->meta.p, p->meta.n);
		return;
	case T_SUSPECT: {
		char f[MESH_SWIM_ID_MAX + 1];
		snprintf(f, sizeof(f), "%.*s", (int)p->from.n, p->from.p);
		suspect_node(sw, now, p->inc, p->id.p, p->id.n, f);
		return;
	}
	case T_DEAD:
		dead_node(sw, now, p->inc, p->id.p, p->id.n, p->from.p, p->from.n);
		return;
	case T_STATE:
		handle_state(sw, now, pk, p);
		return;
	}
}

int mesh_swim_receive(struct mesh_swim *sw, uint64_t now_ms, const uint8_t *buf, size_t len,
		      char *err, size_t errlen)
{
	struct packet *pk = sw->pk;
	int rc = parse_packet(buf, len, sw->cfg.max_packet, pk, err, errlen);
	if (rc < 0) {
		sw->st.rejected++;
		return rc;
	}
	sw->st.packets_in++;
	sw->st.bytes_in += len;
	if (pk->from.n == strlen(sw->self->id) && !memcmp(pk->from.p, sw->self->id, pk->from.n))
		return 0; /* our own packet looped back */
	for (size_t i = 0; i < pk->n; i++)
		handle(sw, now_ms, pk, &pk->m[i]);
	return 0;
}

/* ---- timers ---- */

static struct member *random_member(struct mesh_swim *sw, uint64_t now, const char *skip1,
				    struct member **taken, size_t ntaken, bool dead_ok)
{
	for (size_t tries = 0; tries < 3 * sw->n + 3 && sw->n > 1; tries++) {
		struct member *m = sw->m[rnd(sw) % sw->n];
		if (m == sw->self || (skip1 && !strcmp(m->id, skip1)))
			continue;
		if (m->state >= MESH_SWIM_DEAD &&
		    (!dead_ok || now - m->state_change > sw->cfg.gossip_to_dead_ms))
			continue;
		bool dup = false;
		for (size_t i = 0; i < ntaken; i++)
			dup |= taken[i] == m;
		if (!dup)
			return m;
	}
	return NULL;
}

static void probe_start(struct mesh_swim *sw, uint64_t now)
{
	sw->next_probe = now + scaled(sw, sw->cfg.probe_interval_ms);
	struct member *m = NULL;
	for (size_t tries = 0; tries <= sw->n && !m; tries++) {
		if (sw->probe_idx >= sw->n) {
			reshuffle(sw, now);
			sw->probe_idx = 0;
		}
		struct member *c = sw->m[sw->probe_idx++];
		if (c != sw->self && c->state < MESH_SWIM_DEAD)
			m = c;
	}
	if (!m)
		return;
	sw->probing = true;
	sw->indirect_sent = false;
	sw->probe_seq = ++sw->seq;
	sw->probe_start = now;
	sw->ack_deadline = now + scaled(sw, sw->cfg.probe_timeout_ms);
	sw->probe_deadline = sw->next_probe;
	sw->expected_nacks = sw->nacks = 0;
	snprintf(sw->probe_target, sizeof(sw->probe_target), "%s", m->id);
	sw->st.probes++;
	BODY(b);
	put_var(&b, sw->probe_seq);
	put_cstr(&b, m->id);
	uint8_t ping[200], susp[200];
	struct wr w = {ping, 0, sizeof(ping), false};
	put_msg(&w, T_PING, b.b, b.len);
	size_t sl = 0;
	if (m->state == MESH_SWIM_SUSPECT) /* buddy system: tell the suspect */
		sl = enc_accuse(susp, sizeof(susp), T_SUSPECT, m->inc, m->id, sw->self->id);
	/* the suspicion first, so the ack can carry the refutation */
	if (sl)
		send_msgs(sw, m->id, m->addr, susp, sl, ping, w.len);
	else
		send_msgs(sw, m->id, m->addr, ping, w.len, NULL, 0);
}

static void probe_indirect(struct mesh_swim *sw, uint64_t now)
{
	sw->indirect_sent = true;
	struct member *t = find(sw, sw->probe_target);
	if (!t)
		return;
	struct member *taken[16];
	size_t k = sw->cfg.indirect_checks < 16 ? sw->cfg.indirect_checks : 16;
	size_t n = 0;
	for (; n < k; n++) {
		struct member *m = random_member(sw, now, t->id, taken, n, false);
		if (!m)
			break;
		taken[n] = m;
		send_simple(sw, m->id, m->addr, T_INDIRECT, sw->probe_seq, t->id, t->addr, true);
	}
	sw->expected_nacks = (uint32_t)n;
}

static void probe_fail(struct mesh_swim *sw, uint64_t now)
{
	sw->probing = false;
	sw->st.probe_failures++;
	int delta = 1;
	if (sw->expected_nacks > 0)
		delta = sw->nacks < sw->expected_nacks ? (int)(sw->expected_nacks - sw->nacks) : 0;
	awareness_delta(sw, delta);
	struct member *t = find(sw, sw->probe_target);
	if (t)
		suspect_node(sw, now, t->inc, t->id, strlen(t->id), sw->self->id);
}

static void gossip(struct mesh_swim *sw, uint64_t now)
{
	struct member *taken[32];
	size_t k = sw->cfg.gossip_nodes < 32 ? sw->cfg.gossip_nodes : 32;
	for (size_t n = 0; n < k && sw->nbq; n++) {
		struct member *m = random_member(sw, now, NULL, taken, n, true);
		if (!m)
			return;
		taken[n] = m;
		uint8_t buf[PKT_HARD_MAX];
		struct wr w = {buf, 0, sw->cfg.max_packet, false};
		put_header(sw, &w);
		size_t hl = w.len;
		fill_broadcasts(sw, &w);
		if (w.len > hl)
			enqueue(sw, m->id, m->addr, buf, w.len);
	}
}

/* Serf's reconnect: push-pull with a random dead member, with probability
 * dead/alive so a big failure does not start a storm; this is what heals a
 * partition once both sides have declared each other dead */
static void reconnect(struct mesh_swim *sw)
{
	size_t dead = sw->count[MESH_SWIM_DEAD], alive = sw->count[MESH_SWIM_ALIVE];
	if (!dead || sw->leaving || (double)(rnd(sw) >> 11) / 9007199254740992.0 * (double)alive > (double)dead)
		return;
	size_t pick = (size_t)(rnd(sw) % dead);
	for (size_t i = 0; i < sw->n; i++)
		if (sw->m[i]->state == MESH_SWIM_DEAD && !pick--) {
			send_state(sw, sw->m[i]->id, sw->m[i]->addr, ST_REPLY);
			return;
		}
}

void mesh_swim_tick(struct mesh_swim *sw, uint64_t now)
{
	for (size_t i = 0; i < sw->nrelays;) {
		struct relay *rl = &sw->relays[i];
		if (rl->nack && now >= rl->nack_at) {
			rl->nack = false;
			send_simple(sw, rl->id, rl->addr, T_NACK, rl->orig_seq, NULL, NULL, false);
		}
		if (now >= rl->expire)
			sw->relays[i] = sw->relays[--sw->nrelays];
		else
			i++;
	}
	if (sw->probing && !sw->indirect_sent && now >= sw->ack_deadline)
		probe_indirect(sw, now);
	if (sw->probing && now >= sw->probe_deadline)
		probe_fail(sw, now);
	if (!sw->probing && now >= sw->next_probe && !sw->leaving)
		probe_start(sw, now);
	for (size_t i = 0; i < sw->nsusp;) {
		struct member *m = sw->susp[i];
		if (now >= susp_deadline(m))
			dead_node(sw, now, m->inc, m->id, strlen(m->id), sw->self->id,
				  strlen(sw->self->id)); /* removes it from susp */
		else
			i++;
	}
	if (now >= sw->next_gossip) {
		gossip(sw, now);
		sw->next_gossip += sw->cfg.gossip_interval_ms;
		if (sw->next_gossip <= now)
			sw->next_gossip = now + sw->cfg.gossip_interval_ms;
	}
	if (sw->join_addr[0] && now >= sw->next_join) {
		if (sw->leaving) {
			sw->join_addr[0] = 0;
		} else {
			send_state(sw, "", sw->join_addr, ST_REPLY | ST_JOIN);
			sw->next_join = now + sw->cfg.probe_interval_ms;
		}
	}
	if (now >= sw->next_pushpull) {
		sw->next_pushpull = now + pushpull_interval(sw);
		struct member *m = random_member(sw, now, NULL, NULL, 0, false);
		if (m && !sw->leaving)
			send_state(sw, m->id, m->addr, ST_REPLY);
		reconnect(sw);
	}
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

uint64_t mesh_swim_next_deadline(const struct mesh_swim *sw)
{
	uint64_t t = min64(sw->next_gossip, sw->next_pushpull);
	if (sw->probing)
		t = min64(t, sw->indirect_sent ? sw->probe_deadline : sw->ack_deadline);
	else
		t = min64(t, sw->next_probe);
	if (sw->join_addr[0])
		t = min64(t, sw->next_join);
	for (size_t i = 0; i < sw->nrelays; i++)
		t = min64(t, sw->relays[i].nack ? sw->relays[i].nack_at : sw->relays[i].expire);
	for (size_t i = 0; i < sw->nsusp; i++)
		t = min64(t, susp_deadline(sw->susp[i]));
	return t;
}

/* ---- life cycle and views ---- */

void mesh_swim_config_default(struct mesh_swim_config *c)
{
	*c = (struct mesh_swim_config){
		.probe_interval_ms = 1000, .probe_timeout_ms = 500, .indirect_checks = 3,
		.gossip_interval_ms = 200, .gossip_nodes = 3, .retransmit_mult = 4,
		.suspicion_mult = 4, .suspicion_max_mult = 6, .suspicion_k = 3,
		.awareness_max = 8, .pushpull_interval_ms = 30000, .gossip_to_dead_ms = 30000,
		.reconnect_timeout_ms = 24ULL * 3600 * 1000,
		.max_packet = 1400,
	};
}

static int config_check(const struct mesh_swim_config *c, char *err, size_t errlen)
{
	if (!c->probe_interval_ms || !c->probe_timeout_ms || c->probe_timeout_ms >= c->probe_interval_ms) {
		seterr(err, errlen, "swim config: probe_timeout_ms must be > 0 and under probe_interval_ms");
		return -EINVAL;
	}
	if (!c->gossip_interval_ms || !c->pushpull_interval_ms || !c->awareness_max ||
	    !c->retransmit_mult || !c->suspicion_mult || !c->suspicion_max_mult) {
		seterr(err, errlen, "swim config: intervals, multipliers and awareness_max must be > 0");
		return -EINVAL;
	}
	if (c->max_packet < MESH_SWIM_PACKET_MIN || c->max_packet > PKT_HARD_MAX) {
		seterr(err, errlen, "swim config: max_packet %u outside %d..%d", c->max_packet,
		       MESH_SWIM_PACKET_MIN, PKT_HARD_MAX);
		return -EINVAL;
	}
	return 0;
}

struct mesh_swim *mesh_swim_new(const struct mesh_swim_config *cfg, const char *id, const char *addr,
				const uint8_t *meta, size_t meta_len, uint64_t seed, uint64_t now,
				char *err, size_t errlen)
{
	struct mesh_swim_config def;
	if (!cfg) {
		mesh_swim_config_default(&def);
		cfg = &def;
	}
	if (config_check(cfg, err, errlen) < 0)
		return NULL;
	if (!name_ok(id, MESH_SWIM_ID_MAX, false) || !name_ok(addr, MESH_SWIM_ADDR_MAX, false) ||
	    meta_len > MESH_SWIM_META_MAX) {
		seterr(err, errlen, "swim: id and address must be 1-64 printable ASCII bytes, meta at most %d bytes",
		       MESH_SWIM_META_MAX);
		return NULL;
	}
	struct mesh_swim *sw = calloc(1, sizeof(*sw));
	if (!sw || rehash(sw, 8) < 0 || !(sw->pk = malloc(sizeof(*sw->pk)))) {
		if (sw)
			free(sw->hash);
		free(sw);
		seterr(err, errlen, "swim: out of memory");
		return NULL;
	}
	sw->cfg = *cfg;
	sw->rng = seed ^ hash_bytes(id, strlen(id));
	sw->self = member_add(sw, id, strlen(id), addr, strlen(addr), meta, meta_len);
	if (!sw->self) {
		mesh_swim_free(sw);
		seterr(err, errlen, "swim: out of memory");
		return NULL;
	}
	sw->self->inc = 1;
	sw->self->state_change = now;
	/* spread the timers so that members started together do not beat together */
	sw->next_probe = now + rnd(sw) % cfg->probe_interval_ms;
	sw->next_gossip = now + rnd(sw) % cfg->gossip_interval_ms;
	sw->next_pushpull = now + cfg->pushpull_interval_ms + rnd(sw) % cfg->pushpull_interval_ms;
	return sw;
}

void mesh_swim_free(struct mesh_swim *sw)
{
	if (!sw)
		return;
	for (size_t i = 0; i < sw->n; i++)
		member_free(sw->m[i]);
	for (size_t i = 0; i < sw->nbq; i++)
		free(sw->bq[i]);
	while (sw->out_head) {
		struct outq *q = sw->out_head;
		sw->out_head = q->next;
		free(q->pkt);
		free(q);
	}
	free(sw->m);
	free(sw->hash);
	free(sw->susp);
	free(sw->bq);
	free(sw->pk);
	free(sw);
}

void mesh_swim_on_event(struct mesh_swim *sw, mesh_swim_event_fn fn, void *ctx)
{
	sw->on_event = fn;
	sw->event_ctx = ctx;
}

int mesh_swim_join(struct mesh_swim *sw, uint64_t now_ms, const char *seed_addr, char *err,
		   size_t errlen)
{
	if (!name_ok(seed_addr, MESH_SWIM_ADDR_MAX, false)) {
		seterr(err, errlen, "swim join: seed address must be 1-64 printable ASCII bytes");
		return -EINVAL;
	}
	bcast_alive(sw, sw->self);
	send_state(sw, "", seed_addr, ST_REPLY | ST_JOIN);
	snprintf(sw->join_addr, sizeof(sw->join_addr), "%s", seed_addr);
	sw->next_join = now_ms + sw->cfg.probe_interval_ms;
	return 0;
}

void mesh_swim_leave(struct mesh_swim *sw, uint64_t now_ms)
{
	sw->leaving = true;
	struct member *s = sw->self;
	bcast_accuse(sw, T_DEAD, s->inc, s->id, s->id);
	set_state(sw, s, MESH_SWIM_LEFT, now_ms);
	/* send it now to a few members rather than wait for the gossip tick */
	sw->next_gossip = now_ms;
}

struct mesh_swim_out *mesh_swim_next_out(struct mesh_swim *sw)
{
	struct outq *q = sw->out_head;
	if (!q)
		return NULL;
	sw->out_head = q->next;
	if (!sw->out_head)
		sw->out_tail = NULL;
	struct mesh_swim_out *o = q->pkt;
	free(q);
	return o;
}

size_t mesh_swim_member_count(const struct mesh_swim *sw, enum mesh_swim_state state)
{
	return (unsigned)state < 4 ? sw->count[state] : 0;
}

int mesh_swim_member(const struct mesh_swim *sw, const char *id, enum mesh_swim_state *state,
		     uint64_t *inc)
{
	struct member *m = find(sw, id);
	if (!m)
		return -ENOENT;
	if (state)
		*state = m->state;
	if (inc)
		*inc = m->inc;
	return 0;
}

void mesh_swim_members(const struct mesh_swim *sw,
		       void (*fn)(void *ctx, const struct mesh_swim_member_info *mi), void *ctx)
{
	for (size_t i = 0; i < sw->n; i++) {
		const struct member *m = sw->m[i];
		struct mesh_swim_member_info mi = {.id = m->id, .addr = m->addr, .state = m->state,
						   .incarnation = m->inc, .meta = m->meta,
						   .meta_len = m->meta_len, .self = m == sw->self};
		fn(ctx, &mi);
	}
}

uint32_t mesh_swim_awareness(const struct mesh_swim *sw)
{
	return sw->awareness;
}

uint64_t mesh_swim_incarnation(const struct mesh_swim *sw)
{
	return sw->self->inc;
}

void mesh_swim_get_stats(const struct mesh_swim *sw, struct mesh_swim_stats *st)
{
	*st = sw->st;
}
