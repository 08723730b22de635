/* swim.c: SWIM + Lifeguard membership as a pure state machine (see swim.h):
 * members and their states, the probe cycle, suspicion timers, gossip with a
 * transmit-limited broadcast queue, push-pull, and the SWIM v1 codec.
 *
 * Memory: a member is a 24-byte record in one array (no per-member heap
 * blocks); its id, address and metadata live in one per-instance arena of
 * names; the hash of ids holds 32-bit indices; suspicion state (Lifeguard's
 * timer and confirmations) lives in a side table only while suspected. A
 * 10,000-member view is ~0.5 MB. */
#include "mesh/swim.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
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
#define TICK_MS 100 /* unit of a member's state-change time */

struct member {
	uint64_t inc;
	uint32_t name;    /* offset in sw->names: id NUL addr NUL meta */
	uint32_t changed; /* last state change, TICK_MS units after sw->t0, rounded up */
	uint32_t susp;    /* 1 + index in sw->susp while suspected, else 0 */
	uint8_t state, idlen, alen, mlen;
};

/* Lifeguard suspicion of one member: start, bounds, k wanted, confirmations */
struct susp {
	uint32_t member, k, n, nfrom;
	uint64_t start, min, max;
	uint64_t from[SUSP_FROM_MAX];
};

struct bcast {
	uint64_t khash;          /* hash of the member id the message is about */
	uint32_t transmits, pos; /* its bucket (times sent) and place in it */
	uint16_t len;
	uint8_t koff, klen; /* the id inside msg */
	uint8_t msg[];
};

/* broadcasts sent the same number of times, oldest first */
struct bucket {
	struct bcast **v;
	size_t n, cap;
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

struct mesh_swim {
	struct mesh_swim_config cfg;
	uint64_t t0;
	struct member *mem; /* all members, self included; shuffled for probing */
	size_t n, cap, probe_idx, self_i;
	uint32_t *hash; /* open addressing by id: 1 + index in mem, 0 empty */
	size_t hcap;
	char *names; /* the arena of ids, addresses and metadata */
	size_t nlen, ncap, ngarbage;
	size_t count[4];
	struct susp *susp; /* members under suspicion */
	size_t nsusp, capsusp;
	/* memberlist's TransmitLimitedQueue: buckets by times sent, and the
	 * queued broadcasts by member id (open addressing) */
	struct bucket *bk;
	size_t nbk, nbq;
	struct bcast **bkey;
	size_t kcap;
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
	struct mesh_swim_stats st;
};

#define MID(m) (sw->names + (m)->name)
#define MADDR(m) (sw->names + (m)->name + (m)->idlen + 1)
#define MMETA(m) ((const uint8_t *)sw->names + (m)->name + (m)->idlen + (m)->alen + 2)
#define SELF (&sw->mem[sw->self_i])
#define SELFID MID(SELF)
#define SELFADDR MADDR(SELF)

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

/* a length-delimited string into a NUL-terminated buffer, cut to fit */
static void scopy(char *dst, size_t cap, const char *s, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	if (n)
		memcpy(dst, s, n);
	dst[n] = 0;
}

static void scopyz(char *dst, size_t cap, const char *s)
{
	scopy(dst, cap, s, strlen(s));
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

/* ---- member times (TICK_MS units after t0, rounded up: never early) ---- */

static uint32_t ticks(const struct mesh_swim *sw, uint64_t now)
{
	uint64_t t = now > sw->t0 ? (now - sw->t0 + TICK_MS - 1) / TICK_MS : 0;
	return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

static void set_changed(struct mesh_swim *sw, struct member *m, uint64_t now)
{
	m->changed = ticks(sw, now);
}

/* ms since the member's last state change */
static uint64_t since_change(const struct mesh_swim *sw, const struct member *m, uint64_t now)
{
	uint64_t at = sw->t0 + (uint64_t)m->changed * TICK_MS;
	return now > at ? now - at : 0;
}

/* ---- the names arena ---- */

static size_t block_len(const struct member *m)
{
	return (size_t)m->idlen + m->alen + m->mlen + 2;
}

/* append id NUL addr NUL meta; *off its offset. The arguments must not
 * point into the arena (it may move). */
static int names_put(struct mesh_swim *sw, const char *id, size_t idlen, const char *addr,
		     size_t alen, const uint8_t *meta, size_t mlen, uint32_t *off)
{
	size_t need = idlen + alen + mlen + 2;
	if (sw->nlen + need > sw->ncap) {
		size_t cap = sw->ncap + sw->ncap / 4 + 256; /* 1.25x: big views waste little */
		while (cap < sw->nlen + need)
			cap += cap / 4;
		if (cap > UINT32_MAX)
			return -ENOMEM;
		char *nn = realloc(sw->names, cap);
		if (!nn)
			return -ENOMEM;
		sw->names = nn;
		sw->ncap = cap;
	}
	char *p = sw->names + sw->nlen;
	memcpy(p, id, idlen);
	p[idlen] = 0;
	memcpy(p + idlen + 1, addr, alen);
	p[idlen + 1 + alen] = 0;
	if (mlen)
		memcpy(p + idlen + alen + 2, meta, mlen);
	*off = (uint32_t)sw->nlen;
	sw->nlen += need;
	return 0;
}

/* rewrite the arena without the blocks of forgotten members and old addresses */
static void names_compact(struct mesh_swim *sw)
{
	if (sw->ngarbage < 4096 || sw->ngarbage * 2 < sw->nlen)
		return;
	size_t len = sw->nlen - sw->ngarbage, at = 0;
	char *nn = malloc(len ? len : 1);
	if (!nn)
		return;
	for (size_t i = 0; i < sw->n; i++) {
		struct member *m = &sw->mem[i];
		memcpy(nn + at, sw->names + m->name, block_len(m));
		m->name = (uint32_t)at;
		at += block_len(m);
	}
	free(sw->names);
	sw->names = nn;
	sw->nlen = sw->ncap = at;
	sw->ngarbage = 0;
}

/* ---- members ---- */

static uint32_t *hslot(const struct mesh_swim *sw, const char *id, size_t n)
{
	size_t i = hash_bytes(id, n) & (sw->hcap - 1);
	for (;;) {
		uint32_t v = sw->hash[i];
		if (!v)
			return &sw->hash[i];
		const struct member *m = &sw->mem[v - 1];
		if (m->idlen == n && !memcmp(MID(m), id, n))
			return &sw->hash[i];
		i = (i + 1) & (sw->hcap - 1);
	}
}

static struct member *findn(const struct mesh_swim *sw, const char *id, size_t n)
{
	uint32_t v = *hslot(sw, id, n);
	return v ? &sw->mem[v - 1] : NULL;
}

static struct member *find(const struct mesh_swim *sw, const char *id)
{
	return findn(sw, id, strlen(id));
}

static int rehash(struct mesh_swim *sw, size_t want)
{
	size_t cap = 16;
	while (cap * 3 < want * 4) /* load factor at most 3/4 */
		cap *= 2;
	if (cap == sw->hcap) {
		memset(sw->hash, 0, cap * sizeof(*sw->hash));
	} else {
		uint32_t *h = calloc(cap, sizeof(*h));
		if (!h)
			return -ENOMEM;
		free(sw->hash);
		sw->hash = h;
		sw->hcap = cap;
	}
	for (size_t i = 0; i < sw->n; i++)
		*hslot(sw, MID(&sw->mem[i]), sw->mem[i].idlen) = (uint32_t)i + 1;
	return 0;
}

/* a new address or metadata for m */
static int member_set_addr(struct mesh_swim *sw, struct member *m, const char *addr, size_t alen,
			   const uint8_t *meta, size_t mlen)
{
	if (alen == m->alen && mlen == m->mlen) {
		memcpy(sw->names + m->name + m->idlen + 1, addr, alen);
		if (mlen)
			memcpy(sw->names + m->name + m->idlen + alen + 2, meta, mlen);
		return 0;
	}
	char id[MESH_SWIM_ID_MAX + 1];
	size_t idlen = m->idlen, old = block_len(m);
	memcpy(id, MID(m), idlen);
	uint32_t off;
	if (names_put(sw, id, idlen, addr, alen, meta, mlen, &off) < 0)
		return -ENOMEM;
	sw->ngarbage += old;
	m->name = off;
	m->alen = (uint8_t)alen;
	m->mlen = (uint8_t)mlen;
	return 0;
}

/* members i and j trade places (the hash, suspicions and self follow) */
static void member_swap(struct mesh_swim *sw, size_t i, size_t j)
{
	struct member t = sw->mem[i];
	sw->mem[i] = sw->mem[j];
	sw->mem[j] = t;
	if (sw->mem[i].susp)
		sw->susp[sw->mem[i].susp - 1].member = (uint32_t)i;
	if (sw->mem[j].susp)
		sw->susp[sw->mem[j].susp - 1].member = (uint32_t)j;
	if (sw->self_i == i)
		sw->self_i = j;
	else if (sw->self_i == j)
		sw->self_i = i;
}

static struct member *member_add(struct mesh_swim *sw, const char *id, size_t idlen, const char *addr,
				 size_t alen, const uint8_t *meta, size_t mlen)
{
	if (sw->n >= UINT32_MAX - 1)
		return NULL;
	if (sw->n == sw->cap) {
		size_t cap = sw->cap + sw->cap / 4 + 16;
		struct member *nm = realloc(sw->mem, cap * sizeof(*nm));
		if (!nm)
			return NULL;
		sw->mem = nm;
		sw->cap = cap;
	}
	if ((sw->n + 1) * 4 > sw->hcap * 3 && rehash(sw, sw->n + 1) < 0)
		return NULL;
	uint32_t off;
	if (names_put(sw, id, idlen, addr, alen, meta, mlen, &off) < 0)
		return NULL;
	/* insert at a random place so new members are probed soon but fairly */
	size_t at = sw->n ? (size_t)(rnd(sw) % (sw->n + 1)) : 0;
	size_t i = sw->n++;
	sw->mem[i] = (struct member){.name = off, .idlen = (uint8_t)idlen, .alen = (uint8_t)alen,
				     .mlen = (uint8_t)mlen, .state = MESH_SWIM_ALIVE};
	if (at < i) {
		/* the one at `at` moves to the end: its slot first, while names match */
		uint32_t *slot = hslot(sw, MID(&sw->mem[at]), sw->mem[at].idlen);
		member_swap(sw, at, i);
		*slot = (uint32_t)i + 1;
	}
	struct member *m = &sw->mem[at];
	*hslot(sw, MID(m), m->idlen) = (uint32_t)at + 1;
	sw->count[MESH_SWIM_ALIVE]++;
	return m;
}

static void susp_remove(struct mesh_swim *sw, struct member *m)
{
	if (!m->susp)
		return;
	size_t i = m->susp - 1;
	m->susp = 0;
	sw->susp[i] = sw->susp[--sw->nsusp];
	if (i < sw->nsusp)
		sw->mem[sw->susp[i].member].susp = (uint32_t)i + 1;
}

static void emit(struct mesh_swim *sw, struct member *m, bool joined)
{
	if (!sw->on_event)
		return;
	struct mesh_swim_event ev = {.id = MID(m), .addr = MADDR(m), .state = m->state,
				     .joined = joined, .incarnation = m->inc};
	sw->on_event(sw->event_ctx, &ev);
}

static void set_state(struct mesh_swim *sw, struct member *m, enum mesh_swim_state s, uint64_t now)
{
	sw->count[m->state]--;
	sw->count[s]++;
	m->state = (uint8_t)s;
	set_changed(sw, m, now);
	if (s != MESH_SWIM_SUSPECT)
		susp_remove(sw, m);
}

/* shuffle for the next probe round; forget members dead for long enough */
static void reshuffle(struct mesh_swim *sw, uint64_t now)
{
	size_t w = 0;
	bool removed = false;
	for (size_t i = 0; i < sw->n; i++) {
		struct member *m = &sw->mem[i];
		uint64_t keep = m->state == MESH_SWIM_DEAD ? sw->cfg.reconnect_timeout_ms
							    : sw->cfg.gossip_to_dead_ms;
		if (i != sw->self_i && m->state >= MESH_SWIM_DEAD && since_change(sw, m, now) > keep) {
			sw->count[m->state]--;
			sw->ngarbage += block_len(m);
			removed = true;
			continue; /* dead and left members are never under suspicion */
		}
		if (i == sw->self_i)
			sw->self_i = w;
		sw->mem[w++] = *m;
	}
	sw->n = w;
	for (size_t i = sw->n; i > 1; i--)
		member_swap(sw, i - 1, (size_t)(rnd(sw) % i));
	for (size_t i = 0; i < sw->n; i++)
		if (sw->mem[i].susp)
			sw->susp[sw->mem[i].susp - 1].member = (uint32_t)i;
	if (removed)
		names_compact(sw);
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

static size_t enc_alive(const struct mesh_swim *sw, uint8_t *out, size_t cap, const struct member *m)
{
	BODY(b);
	put_var(&b, m->inc);
	put_cstr(&b, MID(m));
	put_cstr(&b, MADDR(m));
	put_str(&b, MMETA(m), m->mlen);
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
	put_cstr(w, SELFID);
	put_cstr(w, SELFADDR);
}

/* ---- broadcast queue (memberlist's TransmitLimitedQueue) ---- */

/* where the member id sits in an ALIVE/SUSPECT/DEAD message: type,
 * body length, incarnation, then the id's length byte */
static bool msg_key(const uint8_t *msg, size_t len, uint8_t *off, uint8_t *klen)
{
	size_t i = 1;
	for (int v = 0; v < 2; v++) {
		while (i < len && (msg[i] & 0x80))
			i++;
		i++;
	}
	if (i >= len || i + 1 + msg[i] > len || i + 1 > 255)
		return false;
	*off = (uint8_t)(i + 1);
	*klen = msg[i];
	return true;
}

static size_t bkey_find(const struct mesh_swim *sw, uint64_t h, const uint8_t *key, size_t klen)
{
	size_t mask = sw->kcap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		const struct bcast *b = sw->bkey[i];
		if (!b || (b->khash == h && b->klen == klen && !memcmp(b->msg + b->koff, key, klen)))
			return i;
	}
}

/* remove slot i, shifting back the entries that probed past it */
static void bkey_del(struct mesh_swim *sw, size_t i)
{
	size_t mask = sw->kcap - 1;
	sw->bkey[i] = NULL;
	for (size_t j = (i + 1) & mask; sw->bkey[j]; j = (j + 1) & mask) {
		size_t home = sw->bkey[j]->khash & mask;
		if (((j - home) & mask) >= ((j - i) & mask)) {
			sw->bkey[i] = sw->bkey[j];
			sw->bkey[j] = NULL;
			i = j;
		}
	}
}

/* rebuild the id index at capacity cap (a power of 2 over 2 * nbq) */
static int bkey_resize(struct mesh_swim *sw, size_t cap)
{
	struct bcast **nk = calloc(cap, sizeof(*nk));
	if (!nk)
		return -ENOMEM;
	struct bcast **old = sw->bkey;
	size_t ocap = sw->kcap;
	sw->bkey = nk;
	sw->kcap = cap;
	for (size_t i = 0; i < ocap; i++)
		if (old[i])
			sw->bkey[bkey_find(sw, old[i]->khash, old[i]->msg + old[i]->koff, old[i]->klen)] = old[i];
	free(old);
	return 0;
}

static int bucket_push(struct mesh_swim *sw, size_t t, struct bcast *b)
{
	if (t >= sw->nbk) {
		struct bucket *nb = realloc(sw->bk, (t + 1) * sizeof(*nb));
		if (!nb)
			return -ENOMEM;
		memset(nb + sw->nbk, 0, (t + 1 - sw->nbk) * sizeof(*nb));
		sw->bk = nb;
		sw->nbk = t + 1;
	}
	struct bucket *k = &sw->bk[t];
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 16;
		struct bcast **nv = realloc(k->v, cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		k->v = nv;
		k->cap = cap;
	}
	b->transmits = (uint32_t)t;
	b->pos = (uint32_t)k->n;
	k->v[k->n++] = b;
	return 0;
}

static void bucket_take(struct mesh_swim *sw, struct bcast *b)
{
	struct bucket *k = &sw->bk[b->transmits];
	memmove(&k->v[b->pos], &k->v[b->pos + 1], (k->n - b->pos - 1) * sizeof(*k->v));
	k->n--;
	for (size_t i = b->pos; i < k->n; i++)
		k->v[i]->pos = (uint32_t)i;
	if (k->cap > 64 && k->n < k->cap / 4) { /* a join's burst is over: give it back */
		struct bcast **nv = realloc(k->v, k->cap / 2 * sizeof(*nv));
		if (nv) {
			k->v = nv;
			k->cap /= 2;
		}
	}
}

/* forget a queued broadcast (sent enough, or superseded) */
static void bq_drop(struct mesh_swim *sw, struct bcast *b, bool in_bucket)
{
	bkey_del(sw, bkey_find(sw, b->khash, b->msg + b->koff, b->klen));
	if (in_bucket)
		bucket_take(sw, b);
	free(b);
	sw->nbq--;
	if (sw->kcap > 64 && sw->nbq * 8 < sw->kcap)
		bkey_resize(sw, sw->kcap / 2);
}

/* queue a message about a member, replacing any queued about the same one */
static void broadcast(struct mesh_swim *sw, const uint8_t *msg, size_t len)
{
	uint8_t koff, klen;
	if (!len || len > UINT16_MAX || !msg_key(msg, len, &koff, &klen))
		return;
	uint64_t h = hash_bytes(msg + koff, klen);
	if (sw->kcap) {
		struct bcast *old = sw->bkey[bkey_find(sw, h, msg + koff, klen)];
		if (old)
			bq_drop(sw, old, true);
	}
	if ((sw->nbq + 1) * 2 > sw->kcap && bkey_resize(sw, sw->kcap ? sw->kcap * 2 : 64) < 0)
		return;
	struct bcast *b = malloc(sizeof(*b) + len);
	if (!b)
		return;
	*b = (struct bcast){.khash = h, .len = (uint16_t)len, .koff = koff, .klen = klen};
	memcpy(b->msg, msg, len);
	if (bucket_push(sw, 0, b) < 0) {
		free(b);
		return;
	}
	sw->bkey[bkey_find(sw, h, msg + koff, klen)] = b;
	sw->nbq++;
}

#define FILL_MAX 256 /* messages in one packet, at most */

/* append the fewest-sent broadcasts that fit, newest first among equals;
 * count the transmissions */
static void fill_broadcasts(struct mesh_swim *sw, struct wr *w)
{
	if (!sw->nbq)
		return;
	uint32_t limit = mesh_swim_retransmit_limit(sw->cfg.retransmit_mult, sw->n);
	struct bcast *sent[FILL_MAX];
	size_t ns = 0, misses = 0;
	for (size_t t = 0; t < sw->nbk; t++) {
		struct bucket *k = &sw->bk[t];
		for (size_t i = k->n; i-- > 0;) {
			size_t room = w->cap - w->len;
			if (room < 8 || misses > 64 || ns == FILL_MAX)
				goto done;
			struct bcast *b = k->v[i];
			if (b->len > room) {
				misses++;
				continue;
			}
			put(w, b->msg, b->len);
			sent[ns++] = b;
		}
	}
done:
	for (size_t i = 0; i < ns; i++) {
		struct bcast *b = sent[i];
		size_t t = b->transmits + 1;
		bucket_take(sw, b);
		if (t >= limit || bucket_push(sw, t, b) < 0)
			bq_drop(sw, b, false);
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
	scopyz(o->id, sizeof(o->id), id ? id : "");
	scopyz(o->addr, sizeof(o->addr), addr);
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
			const struct member *m = &sw->mem[i];
			size_t mark = e.len;
			put_u8(&e, (uint8_t)m->state);
			put_var(&e, m->inc);
			put_cstr(&e, MID(m));
			put_cstr(&e, MADDR(m));
			put_str(&e, MMETA(m), m->mlen);
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
	broadcast(sw, msg, enc_alive(sw, msg, sizeof(msg), m));
}

static void bcast_accuse(struct mesh_swim *sw, uint8_t type, uint64_t inc, const char *id,
			 const char *from)
{
	uint8_t msg[200];
	broadcast(sw, msg, enc_accuse(msg, sizeof(msg), type, inc, id, from));
}

/* ---- state transitions (memberlist state.go) ---- */

static void refute(struct mesh_swim *sw, uint64_t accused_inc)
{
	struct member *s = SELF;
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
	bcast_alive(sw, SELF);
}

static void alive_node(struct mesh_swim *sw, uint64_t now, uint64_t inc, const char *id, size_t idlen,
		       const char *addr, size_t alen, const uint8_t *meta, size_t mlen)
{
	struct member *m = findn(sw, id, idlen);
	if (m == SELF) {
		if (sw->leaving || inc < m->inc)
			return;
		if (inc == m->inc && strlen(MADDR(m)) == alen && !memcmp(MADDR(m), addr, alen) &&
		    m->mlen == mlen && (!mlen || !memcmp(MMETA(m), meta, mlen)))
			return;
		refute(sw, inc);
		return;
	}
	if (!m) {
		m = member_add(sw, id, idlen, addr, alen, meta, mlen);
		if (!m)
			return;
		m->inc = inc;
		set_changed(sw, m, now);
		bcast_alive(sw, m);
		emit(sw, m, true);
		return;
	}
	if (inc <= m->inc)
		return;
	bool back = m->state >= MESH_SWIM_DEAD;
	if (member_set_addr(sw, m, addr, alen, meta, mlen) < 0)
		return;
	m->inc = inc;
	enum mesh_swim_state was = m->state;
	set_state(sw, m, MESH_SWIM_ALIVE, now);
	bcast_alive(sw, m);
	if (was != MESH_SWIM_ALIVE || back)
		emit(sw, m, back);
}

static uint64_t susp_deadline(const struct susp *x)
{
	return x->start + mesh_swim_suspicion_timeout_ms(x->n, x->k, x->min, x->max);
}

static bool susp_confirm(struct susp *x, uint64_t from)
{
	if (x->n >= x->k)
		return false;
	for (uint32_t i = 0; i < x->nfrom; i++)
		if (x->from[i] == from)
			return false;
	if (x->nfrom < SUSP_FROM_MAX)
		x->from[x->nfrom++] = from;
	x->n++;
	return true;
}

/* start Lifeguard's timer for m, first accused by `from` */
static void susp_start(struct mesh_swim *sw, struct member *m, uint64_t now, const char *from)
{
	if (sw->nsusp == sw->capsusp) {
		size_t cap = sw->capsusp ? sw->capsusp * 2 : 16;
		struct susp *ns = realloc(sw->susp, cap * sizeof(*ns));
		if (!ns)
			return;
		sw->susp = ns;
		sw->capsusp = cap;
	}
	struct susp *x = &sw->susp[sw->nsusp++];
	size_t n = sw->count[MESH_SWIM_ALIVE] + sw->count[MESH_SWIM_SUSPECT];
	memset(x, 0, offsetof(struct susp, from));
	x->member = (uint32_t)(m - sw->mem);
	x->k = sw->cfg.suspicion_k;
	if (n < 2 || n - 2 < x->k)
		x->k = 0;
	x->min = mesh_swim_suspicion_min_ms(sw->cfg.suspicion_mult, n, sw->cfg.probe_interval_ms);
	x->max = sw->cfg.suspicion_max_mult * x->min;
	x->start = now;
	x->nfrom = 1;
	x->from[0] = hash_bytes(from, strlen(from));
	m->susp = (uint32_t)sw->nsusp;
}

static void suspect_node(struct mesh_swim *sw, uint64_t now, uint64_t inc, const char *id,
			 size_t idlen, const char *from)
{
	struct member *m = findn(sw, id, idlen);
	if (m == SELF && inc < m->inc) {
		stale_accusation(sw);
		return;
	}
	if (!m || inc < m->inc)
		return;
	if (m->state == MESH_SWIM_SUSPECT && m->susp) {
		if (susp_confirm(&sw->susp[m->susp - 1], hash_bytes(from, strlen(from))))
			bcast_accuse(sw, T_SUSPECT, inc, MID(m), from);
		return;
	}
	if (m->state != MESH_SWIM_ALIVE)
		return;
	if (m == SELF) {
		refute(sw, inc);
		return;
	}
	bcast_accuse(sw, T_SUSPECT, inc, MID(m), from);
	m->inc = inc;
	set_state(sw, m, MESH_SWIM_SUSPECT, now);
	susp_start(sw, m, now, from);
	emit(sw, m, false);
}

static void dead_node(struct mesh_swim *sw, uint64_t now, uint64_t inc, const char *id, size_t idlen,
		      const char *from, size_t flen)
{
	struct member *m = findn(sw, id, idlen);
	if (m == SELF && inc < m->inc && !sw->leaving) {
		stale_accusation(sw);
		return;
	}
	if (!m || inc < m->inc || m->state >= MESH_SWIM_DEAD)
		return;
	bool left = flen == idlen && !memcmp(from, id, idlen);
	if (m == SELF && !sw->leaving) {
		refute(sw, inc);
		return;
	}
	char f[MESH_SWIM_ID_MAX + 1];
	scopy(f, sizeof(f), from, flen);
	bcast_accuse(sw, T_DEAD, inc, MID(m), f);
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
};

static void handle(struct mesh_swim *sw, uint64_t now, const struct packet *pk, const struct pmsg *p);

/* Check a packet whole (apply NULL), or walk an already checked one and
 * apply each message to `apply` in order: nothing is stored per message, so
 * a member needs no buffer for a packet's parse. */
static int parse_packet(const uint8_t *buf, size_t len, size_t max, struct packet *pk, char *err,
			size_t errlen, struct mesh_swim *apply, uint64_t now)
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
		struct pmsg pm, *p = &pm;
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
		if (apply)
			handle(apply, now, pk, p);
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
			suspect_node(sw, now, inc, id.p, id.n, SELFID);
		}
	}
	if (p->flag & ST_REPLY) {
		char id[MESH_SWIM_ID_MAX + 1], addr[MESH_SWIM_ADDR_MAX + 1];
		scopy(id, sizeof(id), pk->from.p, pk->from.n);
		scopy(addr, sizeof(addr), pk->from_addr.p, pk->from_addr.n);
		send_state(sw, id, addr, 0);
	}
}

static void handle(struct mesh_swim *sw, uint64_t now, const struct packet *pk, const struct pmsg *p)
{
	char from[MESH_SWIM_ID_MAX + 1], faddr[MESH_SWIM_ADDR_MAX + 1];
	char id[MESH_SWIM_ID_MAX + 1], addr[MESH_SWIM_ADDR_MAX + 1];
	scopy(from, sizeof(from), pk->from.p, pk->from.n);
	scopy(faddr, sizeof(faddr), pk->from_addr.p, pk->from_addr.n);
	scopy(id, sizeof(id), p->id.p, p->id.n);
	scopy(addr, sizeof(addr), p->addr.p, p->addr.n);
	switch (p->type) {
	case T_PING:
		if (p->id.n && strcmp(id, SELFID))
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
			scopyz(rl->id, sizeof(rl->id), from);
			scopyz(rl->addr, sizeof(rl->addr), faddr);
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
		scopy(f, sizeof(f), p->from.p, p->from.n);
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
	struct packet pkt, *pk = &pkt;
	int rc = parse_packet(buf, len, sw->cfg.max_packet, pk, err, errlen, NULL, now_ms);
	if (rc < 0) {
		sw->st.rejected++;
		return rc;
	}
	sw->st.packets_in++;
	sw->st.bytes_in += len;
	if (pk->from.n == strlen(SELFID) && !memcmp(pk->from.p, SELFID, pk->from.n))
		return 0; /* our own packet looped back */
	return parse_packet(buf, len, sw->cfg.max_packet, pk, NULL, 0, sw, now_ms);
}

/* ---- timers ---- */

static struct member *random_member(struct mesh_swim *sw, uint64_t now, const char *skip1,
				    struct member **taken, size_t ntaken, bool dead_ok)
{
	for (size_t tries = 0; tries < 3 * sw->n + 3 && sw->n > 1; tries++) {
		struct member *m = &sw->mem[rnd(sw) % sw->n];
		if (m == SELF || (skip1 && !strcmp(MID(m), skip1)))
			continue;
		if (m->state >= MESH_SWIM_DEAD &&
		    (!dead_ok || since_change(sw, m, now) > sw->cfg.gossip_to_dead_ms))
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
		struct member *c = &sw->mem[sw->probe_idx++];
		if (c != SELF && c->state < MESH_SWIM_DEAD)
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
	scopyz(sw->probe_target, sizeof(sw->probe_target), MID(m));
	sw->st.probes++;
	BODY(b);
	put_var(&b, sw->probe_seq);
	put_cstr(&b, MID(m));
	uint8_t ping[200], susp[200];
	struct wr w = {ping, 0, sizeof(ping), false};
	put_msg(&w, T_PING, b.b, b.len);
	size_t sl = 0;
	if (m->state == MESH_SWIM_SUSPECT) /* buddy system: tell the suspect */
		sl = enc_accuse(susp, sizeof(susp), T_SUSPECT, m->inc, MID(m), SELFID);
	/* the suspicion first, so the ack can carry the refutation */
	if (sl)
		send_msgs(sw, MID(m), MADDR(m), susp, sl, ping, w.len);
	else
		send_msgs(sw, MID(m), MADDR(m), ping, w.len, NULL, 0);
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
		struct member *m = random_member(sw, now, MID(t), taken, n, false);
		if (!m)
			break;
		taken[n] = m;
		send_simple(sw, MID(m), MADDR(m), T_INDIRECT, sw->probe_seq, MID(t), MADDR(t), true);
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
		suspect_node(sw, now, t->inc, MID(t), strlen(MID(t)), SELFID);
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
			enqueue(sw, MID(m), MADDR(m), buf, w.len);
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
		if (sw->mem[i].state == MESH_SWIM_DEAD && !pick--) {
			send_state(sw, MID(&sw->mem[i]), MADDR(&sw->mem[i]), ST_REPLY);
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
		struct member *m = &sw->mem[sw->susp[i].member];
		if (now < susp_deadline(&sw->susp[i])) {
			i++;
			continue;
		}
		dead_node(sw, now, m->inc, MID(m), m->idlen, SELFID, SELF->idlen);
		if (m->susp == i + 1) /* not removed (cannot happen): do not spin */
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
			send_state(sw, MID(m), MADDR(m), ST_REPLY);
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
		t = min64(t, susp_deadline(&sw->susp[i]));
	return t;
}

/* ---- life cycle and views ---- */

void mesh_swim_config_memberlist_lan(struct mesh_swim_config *c)
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

/* memberlist's LAN values but for the probe rate, the suspicion minimum and
 * the retransmissions (swim.h says why) */
void mesh_swim_config_default(struct mesh_swim_config *c)
{
	mesh_swim_config_memberlist_lan(c);
	c->probe_interval_ms = 500;
	c->probe_timeout_ms = 250;
	c->suspicion_mult = 2;
	c->retransmit_mult = 6;
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
	if (!sw || rehash(sw, 8) < 0) {
		free(sw);
		seterr(err, errlen, "swim: out of memory");
		return NULL;
	}
	sw->cfg = *cfg;
	sw->rng = seed ^ hash_bytes(id, strlen(id));
	sw->t0 = now;
	if (!member_add(sw, id, strlen(id), addr, strlen(addr), meta, meta_len)) {
		mesh_swim_free(sw);
		seterr(err, errlen, "swim: out of memory");
		return NULL;
	}
	sw->self_i = 0;
	SELF->inc = 1;
	set_changed(sw, SELF, now);
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
	for (size_t t = 0; t < sw->nbk; t++) {
		for (size_t i = 0; i < sw->bk[t].n; i++)
			free(sw->bk[t].v[i]);
		free(sw->bk[t].v);
	}
	while (sw->out_head) {
		struct outq *q = sw->out_head;
		sw->out_head = q->next;
		free(q->pkt);
		free(q);
	}
	free(sw->mem);
	free(sw->hash);
	free(sw->names);
	free(sw->susp);
	free(sw->bk);
	free(sw->bkey);
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
	bcast_alive(sw, SELF);
	send_state(sw, "", seed_addr, ST_REPLY | ST_JOIN);
	scopyz(sw->join_addr, sizeof(sw->join_addr), seed_addr);
	sw->next_join = now_ms + sw->cfg.probe_interval_ms;
	return 0;
}

int mesh_swim_add_member(struct mesh_swim *sw, uint64_t now_ms, const char *id, const char *addr,
			 const uint8_t *meta, size_t meta_len, uint64_t inc)
{
	if (!name_ok(id, MESH_SWIM_ID_MAX, false) || !name_ok(addr, MESH_SWIM_ADDR_MAX, false) ||
	    meta_len > MESH_SWIM_META_MAX || (meta_len && !meta))
		return -EINVAL;
	if (find(sw, id))
		return -EEXIST;
	struct member *m = member_add(sw, id, strlen(id), addr, strlen(addr), meta, meta_len);
	if (!m)
		return -ENOMEM;
	m->inc = inc;
	set_changed(sw, m, now_ms);
	return 0;
}

void mesh_swim_leave(struct mesh_swim *sw, uint64_t now_ms)
{
	sw->leaving = true;
	struct member *s = SELF;
	bcast_accuse(sw, T_DEAD, s->inc, MID(s), MID(s));
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
		const struct member *m = &sw->mem[i];
		struct mesh_swim_member_info mi = {.id = MID(m), .addr = MADDR(m),
						   .state = (enum mesh_swim_state)m->state,
						   .incarnation = m->inc, .meta = m->mlen ? MMETA(m) : NULL,
						   .meta_len = m->mlen, .self = i == sw->self_i};
		fn(ctx, &mi);
	}
}

uint32_t mesh_swim_awareness(const struct mesh_swim *sw)
{
	return sw->awareness;
}

uint64_t mesh_swim_incarnation(const struct mesh_swim *sw)
{
	return SELF->inc;
}

void mesh_swim_get_stats(const struct mesh_swim *sw, struct mesh_swim_stats *st)
{
	*st = sw->st;
}
