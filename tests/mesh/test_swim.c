/* test_swim.c: mesh membership (src/mesh/swim.c) on small clusters in the
 * simulated network (src/mesh/swim_sim.c): join, death, suspicion and
 * refutation, partition and its healing by push-pull, the packet size
 * limit, and malformed packets (hand-made and fuzzed) rejected whole. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mesh/swim.h"
#include "mesh/swim_sim.h"

static struct mesh_swim_sim *cluster(size_t n, double loss, uint64_t seed)
{
	char err[256];
	struct mesh_swim_sim_config c = {.nodes = n, .seed = seed, .loss = loss, .delay_min_ms = 1,
					 .delay_max_ms = 5};
	mesh_swim_config_default(&c.swim);
	struct mesh_swim_sim *sim = mesh_swim_sim_new(&c, err, sizeof(err));
	assert_non_null(sim);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(mesh_swim_sim_start(sim, i), 0);
		if (i)
			assert_int_equal(mesh_swim_sim_join(sim, i, 0), 0);
	}
	return sim;
}

/* every running node sees every other running node in state s */

static bool all_alive(struct mesh_swim_sim *sim, void *ctx)
{
	size_t n = mesh_swim_sim_size(sim), running = 0;
	for (size_t j = 0; j < n; j++)
		running += mesh_swim_sim_running(sim, j);
	for (size_t j = 0; j < n; j++)
		if (mesh_swim_sim_running(sim, j) && mesh_swim_sim_seen_as(sim, j, MESH_SWIM_ALIVE) != running - 1)
			return false;
	return true;
}

struct seen {
	size_t who, count;
	enum mesh_swim_state s;
};

static bool seen_by(struct mesh_swim_sim *sim, void *ctx)
{
	struct seen *s = ctx;
	return mesh_swim_sim_seen_as(sim, s->who, s->s) >= s->count;
}

static void join_converges(void **state)
{
	struct mesh_swim_sim *sim = cluster(16, 0.0, 1);
	assert_true(mesh_swim_sim_run(sim, 10000, all_alive, NULL));
	for (size_t i = 0; i < 16; i++)
		assert_int_equal(mesh_swim_member_count(mesh_swim_sim_node(sim, i), MESH_SWIM_ALIVE), 16);
	/* a newcomer through a member that is not the first seed */
	mesh_swim_sim_free(sim);
}

static void join_with_loss(void **state)
{
	/* 20% loss: join packets get lost and are retried */
	struct mesh_swim_sim *sim = cluster(12, 0.2, 2);
	assert_true(mesh_swim_sim_run(sim, 120000, all_alive, NULL));
	mesh_swim_sim_free(sim);
}

static void killed_node_declared_dead(void **state)
{
	const size_t n = 10;
	struct mesh_swim_sim *sim = cluster(n, 0.0, 3);
	assert_true(mesh_swim_sim_run(sim, 10000, all_alive, NULL));
	uint64_t t0 = mesh_swim_sim_now(sim);
	mesh_swim_sim_kill(sim, 4);
	struct seen s = {4, n - 1, MESH_SWIM_DEAD};
	/* bound: a probe round (n intervals) + the longest suspicion (6 * min)
	 * + gossip, with the default timings (500 ms probes, suspicion_mult 2) */
	struct mesh_swim_config c;
	mesh_swim_config_default(&c);
	uint64_t min = mesh_swim_suspicion_min_ms(c.suspicion_mult, n, c.probe_interval_ms);
	assert_int_equal(min, 1000);
	assert_true(mesh_swim_sim_run(sim, t0 + n * c.probe_interval_ms + 6 * min + 2000, seen_by, &s));
	uint64_t took = mesh_swim_sim_now(sim) - t0;
	/* and not before the shortest suspicion timeout */
	assert_true(took >= min);
	/* nobody else was declared dead */
	for (size_t j = 0; j < n; j++)
		if (j != 4)
			assert_int_equal(mesh_swim_sim_seen_as(sim, j, MESH_SWIM_DEAD), 0);
	mesh_swim_sim_free(sim);
}

static void leave_is_left_not_dead(void **state)
{
	struct mesh_swim_sim *sim = cluster(8, 0.0, 4);
	assert_true(mesh_swim_sim_run(sim, 10000, all_alive, NULL));
	uint64_t t0 = mesh_swim_sim_now(sim);
	mesh_swim_sim_leave(sim, 2);
	mesh_swim_sim_run(sim, t0 + 50, NULL, NULL); /* let the goodbye go out */
	mesh_swim_sim_kill(sim, 2);
	struct seen s = {2, 7, MESH_SWIM_LEFT};
	/* gossip, not a suspicion timeout: well under the minimum */
	assert_true(mesh_swim_sim_run(sim, t0 + 2000, seen_by, &s));
	assert_int_equal(mesh_swim_sim_seen_as(sim, 2, MESH_SWIM_DEAD), 0);
	mesh_swim_sim_free(sim);
}

static void lossy_node_suspected_and_refutes(void **state)
{
	const size_t n = 10;
	struct mesh_swim_sim *sim = cluster(n, 0.0, 5);
	assert_true(mesh_swim_sim_run(sim, 10000, all_alive, NULL));
	uint64_t inc0 = mesh_swim_incarnation(mesh_swim_sim_node(sim, 6));
	mesh_swim_sim_node_loss(sim, 6, 0.7);
	struct seen s = {6, 1, MESH_SWIM_SUSPECT};
	assert_true(mesh_swim_sim_run(sim, mesh_swim_sim_now(sim) + 60000, seen_by, &s));
	mesh_swim_sim_node_loss(sim, 6, 0.0);
	/* told it is suspected (buddy system or gossip), it refutes at once */
	struct seen back = {6, n - 1, MESH_SWIM_ALIVE};
	assert_true(mesh_swim_sim_run(sim, mesh_swim_sim_now(sim) + 5000, seen_by, &back));
	/* what it got wrong while deaf (refutations it missed) is put right by
	 * its own slowed probes (awareness) or the next push-pull */
	assert_true(mesh_swim_sim_run(sim, mesh_swim_sim_now(sim) + 90000, all_alive, NULL));
	assert_true(mesh_swim_incarnation(mesh_swim_sim_node(sim, 6)) > inc0);
	struct mesh_swim_stats st;
	mesh_swim_get_stats(mesh_swim_sim_node(sim, 6), &st);
	assert_true(st.refutations > 0);
	mesh_swim_sim_free(sim);
}

static bool each_side_sees_other_dead(struct mesh_swim_sim *sim, void *ctx)
{
	for (size_t j = 0; j < 10; j++)
		if (mesh_swim_sim_seen_as(sim, j, MESH_SWIM_DEAD) != 5)
			return false;
	return true;
}

static void partition_detected_and_healed(void **state)
{
	struct mesh_swim_sim *sim = cluster(10, 0.0, 6);
	assert_true(mesh_swim_sim_run(sim, 10000, all_alive, NULL));
	for (size_t i = 5; i < 10; i++)
		mesh_swim_sim_group(sim, i, 1);
	assert_true(mesh_swim_sim_run(sim, mesh_swim_sim_now(sim) + 60000, each_side_sees_other_dead, NULL));
	/* past gossip-to-the-dead (30 s): only push-pull (reconnect) can heal it */
	mesh_swim_sim_run(sim, mesh_swim_sim_now(sim) + 40000, NULL, NULL);
	assert_true(each_side_sees_other_dead(sim, NULL));
	for (size_t i = 5; i < 10; i++)
		mesh_swim_sim_group(sim, i, 0);
	assert_true(mesh_swim_sim_run(sim, mesh_swim_sim_now(sim) + 180000, all_alive, NULL));
	mesh_swim_sim_free(sim);
}

static bool any_seen_dead(struct mesh_swim_sim *sim, void *ctx)
{
	size_t n = mesh_swim_sim_size(sim);
	for (size_t j = 0; j < n; j++)
		if (mesh_swim_sim_seen_as(sim, j, MESH_SWIM_DEAD))
			return true;
	return false;
}

static void no_false_death_under_loss(void **state)
{
	/* 5% loss for 5 simulated minutes: suspicions, but no one declared dead */
	struct mesh_swim_sim *sim = cluster(20, 0.05, 7);
	assert_true(mesh_swim_sim_run(sim, 120000, all_alive, NULL));
	assert_false(mesh_swim_sim_run(sim, mesh_swim_sim_now(sim) + 300000, any_seen_dead, NULL));
	mesh_swim_sim_free(sim);
}

/* ---- packets by hand (the format of swim.h) ---- */

struct pb {
	uint8_t b[70000];
	size_t n;
};

static void pb_u8(struct pb *p, uint8_t v)
{
	p->b[p->n++] = v;
}

static void pb_var(struct pb *p, uint64_t v)
{
	do {
		pb_u8(p, (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0)));
		v >>= 7;
	} while (v);
}

static void pb_str(struct pb *p, const char *s)
{
	pb_u8(p, (uint8_t)strlen(s));
	memcpy(p->b + p->n, s, strlen(s));
	p->n += strlen(s);
}

static void pb_header(struct pb *p, const char *id, const char *addr)
{
	p->n = 0;
	pb_u8(p, 0xA7);
	pb_u8(p, 1);
	pb_str(p, id);
	pb_str(p, addr);
}

/* a message whose body is given as a sub-builder */
static void pb_msg(struct pb *p, uint8_t type, const struct pb *body)
{
	pb_u8(p, type);
	pb_var(p, body->n);
	memcpy(p->b + p->n, body->b, body->n);
	p->n += body->n;
}

static void pb_alive(struct pb *p, uint64_t inc, const char *id, const char *addr)
{
	struct pb *b = calloc(1, sizeof(*b));
	pb_var(b, inc);
	pb_str(b, id);
	pb_str(b, addr);
	pb_u8(b, 0);
	pb_msg(p, 5, b);
	free(b);
}

static struct mesh_swim *lone(const char *id)
{
	char err[256];
	struct mesh_swim *sw = mesh_swim_new(NULL, id, "sim:0", NULL, 0, 1, 0, err, sizeof(err));
	assert_non_null(sw);
	return sw;
}

static void drain_all(struct mesh_swim *sw, size_t max, size_t *count, size_t *biggest)
{
	struct mesh_swim_out *o;
	while ((o = mesh_swim_next_out(sw))) {
		assert_true(o->len <= max);
		if (biggest && o->len > *biggest)
			*biggest = o->len;
		if (count)
			(*count)++;
		free(o);
	}
}

static void packets_never_over_limit(void **state)
{
	/* 400 members with the longest ids and addresses allowed */
	struct mesh_swim *sw = lone("me");
	static struct pb p;
	char id[MESH_SWIM_ID_MAX + 1], addr[MESH_SWIM_ADDR_MAX + 1], err[256];
	for (int i = 0; i < 400; i++) {
		snprintf(id, sizeof(id), "%0*d", MESH_SWIM_ID_MAX, i);
		snprintf(addr, sizeof(addr), "%0*d", MESH_SWIM_ADDR_MAX, i);
		pb_header(&p, id, addr);
		pb_alive(&p, 1, id, addr);
		assert_int_equal(mesh_swim_receive(sw, 1, p.b, p.n, err, sizeof(err)), 0);
	}
	assert_int_equal(mesh_swim_member_count(sw, MESH_SWIM_ALIVE), 401);
	/* gossip with 400 queued broadcasts, probes, then a full-state request */
	size_t count = 0, biggest = 0;
	for (uint64_t t = 1; t < 5000; t += 10) {
		mesh_swim_tick(sw, t);
		drain_all(sw, 1400, &count, &biggest);
	}
	assert_true(count > 0);
	assert_true(biggest > 1000); /* gossip packed up to the limit */
	struct pb *b = calloc(1, sizeof(*b));
	pb_u8(b, 1); /* reply wanted */
	pb_var(b, 0);
	pb_header(&p, "asker", "sim:9");
	pb_msg(&p, 8, b);
	free(b);
	assert_int_equal(mesh_swim_receive(sw, 6000, p.b, p.n, err, sizeof(err)), 0);
	count = 0;
	drain_all(sw, 1400, &count, NULL);
	/* 401 entries of ~135 bytes: many STATE packets, none over 1,400 */
	assert_true(count >= 401 * 130 / 1400);
	/* an over-size packet is refused */
	memset(p.b, 0, 1500);
	pb_header(&p, "x", "y");
	assert_int_equal(mesh_swim_receive(sw, 6000, p.b, 1401, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "1400"));
	mesh_swim_free(sw);
}

static void pb_accuse(struct pb *p, uint8_t type, uint64_t inc, const char *id, const char *from)
{
	struct pb *b = calloc(1, sizeof(*b));
	pb_var(b, inc);
	pb_str(b, id);
	pb_str(b, from);
	pb_msg(p, type, b);
	free(b);
}

struct seen_addr {
	char id[MESH_SWIM_ID_MAX + 1], addr[MESH_SWIM_ADDR_MAX + 1];
	enum mesh_swim_state state;
	size_t events;
};

static void keep_last(void *ctx, const struct mesh_swim_event *ev)
{
	struct seen_addr *s = ctx;
	snprintf(s->id, sizeof(s->id), "%s", ev->id);
	snprintf(s->addr, sizeof(s->addr), "%s", ev->addr);
	s->state = ev->state;
	s->events++;
}

static void send_one(struct mesh_swim *sw, uint64_t now, const char *from, uint8_t type, uint64_t inc,
		     const char *id, const char *addr_or_from)
{
	static struct pb p;
	char err[256];
	pb_header(&p, from, "sim:1");
	if (type == 5)
		pb_alive(&p, inc, id, addr_or_from);
	else
		pb_accuse(&p, type, inc, id, addr_or_from);
	assert_int_equal(mesh_swim_receive(sw, now, p.b, p.n, err, sizeof(err)), 0);
}

/* members' ids and addresses live in one arena per member (swim.c): new
 * addresses of another length, members forgotten and the arena compacted,
 * new members after that: every event still names the right address */
static void names_follow_changes(void **state)
{
	struct mesh_swim *sw = lone("me");
	struct seen_addr last = {0};
	mesh_swim_on_event(sw, keep_last, &last);
	char id[32], addr[MESH_SWIM_ADDR_MAX + 1];
	for (int i = 0; i < 300; i++) {
		snprintf(id, sizeof(id), "m%d", i);
		snprintf(addr, sizeof(addr), "a%d", i);
		send_one(sw, 1, "peer", 5, 1, id, addr);
	}
	assert_int_equal(mesh_swim_member_count(sw, MESH_SWIM_ALIVE), 301);
	for (int i = 0; i < 300; i++) { /* a new, longer address at incarnation 2 */
		snprintf(id, sizeof(id), "m%d", i);
		snprintf(addr, sizeof(addr), "10.0.%d.%d:7946-with-a-longer-name", i / 250, i % 250);
		send_one(sw, 2, "peer", 5, 2, id, addr);
		send_one(sw, 2, "peer", 6, 2, id, "peer");
		assert_string_equal(last.id, id);
		assert_string_equal(last.addr, addr);
		assert_int_equal(last.state, MESH_SWIM_SUSPECT);
	}
	for (int i = 0; i < 250; i++) { /* most of them leave */
		snprintf(id, sizeof(id), "m%d", i);
		send_one(sw, 3, "peer", 7, 2, id, id);
		assert_int_equal(last.state, MESH_SWIM_LEFT);
	}
	assert_int_equal(mesh_swim_member_count(sw, MESH_SWIM_LEFT), 250);
	/* past gossip-to-the-dead (and the suspects dead: nobody answers) a
	 * probe round forgets the left ones */
	for (uint64_t t = 3; t < 120000; t += 50) {
		mesh_swim_tick(sw, t);
		drain_all(sw, 1400, NULL, NULL);
	}
	assert_int_equal(mesh_swim_member_count(sw, MESH_SWIM_LEFT), 0);
	assert_int_equal(mesh_swim_member(sw, "m10", NULL, NULL), -ENOENT);
	for (int i = 250; i < 300; i++) {
		enum mesh_swim_state st;
		snprintf(id, sizeof(id), "m%d", i);
		assert_int_equal(mesh_swim_member(sw, id, &st, NULL), 0);
	}
	for (int i = 0; i < 200; i++) { /* newcomers, then the old ones again */
		snprintf(id, sizeof(id), "new%d", i);
		snprintf(addr, sizeof(addr), "b%d", i);
		send_one(sw, 120000, "peer", 5, 1, id, addr);
		assert_string_equal(last.addr, addr);
	}
	for (int i = 250; i < 300; i++) {
		snprintf(id, sizeof(id), "m%d", i);
		snprintf(addr, sizeof(addr), "10.0.%d.%d:7946-with-a-longer-name", i / 250, i % 250);
		send_one(sw, 120000, "peer", 5, 9, id, "x");
		send_one(sw, 120000, "peer", 6, 9, id, "peer");
		assert_string_equal(last.id, id);
		assert_string_equal(last.addr, "x");
	}
	assert_int_equal(mesh_swim_member(sw, "new7", NULL, NULL), 0);
	mesh_swim_free(sw);
}

/* mesh_swim_add_member: known at once, no event, nothing queued to gossip */
static void add_member_quietly(void **state)
{
	struct mesh_swim *sw = lone("me");
	struct seen_addr last = {0};
	mesh_swim_on_event(sw, keep_last, &last);
	assert_int_equal(mesh_swim_add_member(sw, 5, "peer", "sim:1", NULL, 0, 7), 0);
	assert_int_equal(mesh_swim_add_member(sw, 5, "peer", "sim:2", NULL, 0, 1), -EEXIST);
	assert_int_equal(mesh_swim_add_member(sw, 5, "bad id", "sim:2", NULL, 0, 1), -EINVAL);
	assert_int_equal(mesh_swim_add_member(sw, 5, "x", "", NULL, 0, 1), -EINVAL);
	enum mesh_swim_state st;
	uint64_t inc = 0;
	assert_int_equal(mesh_swim_member(sw, "peer", &st, &inc), 0);
	assert_int_equal(st, MESH_SWIM_ALIVE);
	assert_int_equal(inc, 7);
	assert_int_equal(last.events, 0);
	/* the first tick probes it; the ping carries no gossip about it */
	size_t count = 0, biggest = 0;
	mesh_swim_tick(sw, 2000);
	drain_all(sw, 1400, &count, &biggest);
	assert_int_equal(count, 1);
	assert_true(biggest < 30);
	mesh_swim_free(sw);
}

struct bad {
	const char *name, *why;
	uint8_t bytes[64];
	size_t len;
};

static void malformed_rejected(void **state)
{
	struct mesh_swim *sw = lone("me");
	char err[256];
	static const struct bad cases[] = {
		{"empty", "magic", {0}, 0},
		{"bad magic", "magic", {0x00, 1, 1, 'a', 1, 'b'}, 6},
		{"bad version", "magic", {0xA7, 9, 1, 'a', 1, 'b'}, 6},
		{"no sender", "truncated", {0xA7, 1}, 2},
		{"empty sender id", "sender id", {0xA7, 1, 0, 1, 'b'}, 5},
		{"sender id not printable", "sender id", {0xA7, 1, 1, 0x01, 1, 'b'}, 6},
		{"unknown type", "unknown message type", {0xA7, 1, 1, 'a', 1, 'b', 99, 0}, 8},
		{"body past the end", "longer than the packet", {0xA7, 1, 1, 'a', 1, 'b', 3, 9, 1}, 9},
		{"truncated varint", "truncated", {0xA7, 1, 1, 'a', 1, 'b', 3, 1, 0x80}, 9},
		{"trailing bytes", "trailing", {0xA7, 1, 1, 'a', 1, 'b', 3, 2, 1, 7}, 10},
		{"varint too long", "varint", {0xA7, 1, 1, 'a', 1, 'b', 3, 11, 0xff, 0xff, 0xff, 0xff, 0xff,
			0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 19},
		{"unknown state", "unknown member state", {0xA7, 1, 1, 'a', 1, 'b', 8, 6, 0, 1, 7, 1, 1, 'c'}, 14},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = 0;
		int rc = mesh_swim_receive(sw, 1, cases[i].bytes, cases[i].len, err, sizeof(err));
		if (rc != -EBADMSG || !strstr(err, cases[i].why))
			fail_msg("%s: rc %d err '%s' (want '%s')", cases[i].name, rc, err, cases[i].why);
		assert_non_null(strstr(err, "offset"));
	}
	/* a good ALIVE followed by a bad message: nothing of it is applied */
	static struct pb p;
	pb_header(&p, "a", "sim:1");
	pb_alive(&p, 1, "newbie", "sim:2");
	pb_u8(&p, 99);
	pb_u8(&p, 0);
	assert_int_equal(mesh_swim_receive(sw, 1, p.b, p.n, err, sizeof(err)), -EBADMSG);
	assert_int_equal(mesh_swim_member(sw, "newbie", NULL, NULL), -ENOENT);
	assert_int_equal(mesh_swim_member_count(sw, MESH_SWIM_ALIVE), 1);
	struct mesh_swim_stats st;
	mesh_swim_get_stats(sw, &st);
	assert_int_equal(st.rejected, sizeof(cases) / sizeof(cases[0]) + 1);
	mesh_swim_free(sw);
}

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void fuzzed_packets(void **state)
{
	/* real packets from a running cluster, mutated, fed to a live member */
	struct mesh_swim_sim *sim = cluster(6, 0.0, 8);
	assert_true(mesh_swim_sim_run(sim, 10000, all_alive, NULL));
	mesh_swim_sim_kill(sim, 5);
	/* a corpus: what node 1 sends during 20 s (pings, acks, gossip, state) */
	struct mesh_swim *src = lone("fz");
	static struct pb p;
	char err[256];
	for (int i = 0; i < 5; i++) {
		char id[8], addr[16];
		snprintf(id, sizeof(id), "n%d", i);
		snprintf(addr, sizeof(addr), "sim:%d", i);
		pb_header(&p, id, addr);
		pb_alive(&p, 1, id, addr);
		assert_int_equal(mesh_swim_receive(src, 1, p.b, p.n, err, sizeof(err)), 0);
	}
	mesh_swim_join(src, 1, "sim:0", err, sizeof(err));
	struct mesh_swim_out *corpus[256];
	size_t nc = 0;
	for (uint64_t t = 2; t < 20000 && nc < 256; t += 50) {
		mesh_swim_tick(src, t);
		struct mesh_swim_out *o;
		while ((o = mesh_swim_next_out(src))) {
			if (nc < 256)
				corpus[nc++] = o;
			else
				free(o);
		}
	}
	assert_true(nc > 10);
	uint64_t rs = 0x1234567;
	size_t bad = 0, good = 0;
	uint8_t buf[1400];
	for (int it = 0; it < 200000; it++) {
		struct mesh_swim_out *o = corpus[xs(&rs) % nc];
		size_t len = o->len;
		memcpy(buf, o->data, len);
		int muts = 1 + (int)(xs(&rs) % 4);
		for (int m = 0; m < muts; m++) {
			switch (xs(&rs) % 4) {
			case 0: buf[xs(&rs) % len] = (uint8_t)xs(&rs); break;
			case 1: buf[xs(&rs) % len] ^= (uint8_t)(1u << (xs(&rs) % 8)); break;
			case 2: len = 1 + xs(&rs) % len; break;
			default: if (len < sizeof(buf)) buf[len++] = (uint8_t)xs(&rs); break;
			}
		}
		err[0] = 0;
		int rc = mesh_swim_sim_inject(sim, 2, buf, len, err, sizeof(err));
		if (rc == 0) {
			good++;
		} else {
			assert_int_equal(rc, -EBADMSG);
			assert_true(err[0] != 0);
			bad++;
		}
		if (it % 1000 == 0) /* keep the cluster running between salvos */
			mesh_swim_sim_run(sim, mesh_swim_sim_now(sim) + 20, NULL, NULL);
	}
	assert_true(bad > 1000);
	assert_true(good > 1000);
	/* the member is still sane: the rest of the cluster still runs */
	assert_true(mesh_swim_sim_running(sim, 2));
	for (size_t i = 0; i < nc; i++)
		free(corpus[i]);
	mesh_swim_free(src);
	mesh_swim_sim_free(sim);
}

static void timeouts_follow_memberlist(void **state)
{
	assert_int_equal(mesh_swim_retransmit_limit(4, 1000), 16);
	assert_int_equal(mesh_swim_retransmit_limit(4, 99), 8);
	assert_int_equal(mesh_swim_suspicion_min_ms(4, 1000, 1000), 12000);
	assert_int_equal(mesh_swim_suspicion_min_ms(4, 5, 1000), 4000); /* never under 1x */
	/* Lifeguard: max with no confirmation, min after k of them */
	assert_int_equal(mesh_swim_suspicion_timeout_ms(0, 3, 12000, 72000), 72000);
	assert_int_equal(mesh_swim_suspicion_timeout_ms(3, 3, 12000, 72000), 12000);
	uint64_t one = mesh_swim_suspicion_timeout_ms(1, 3, 12000, 72000);
	assert_true(one < 72000 && one > 12000);
	/* the preset is memberlist's DefaultLANConfig; the defaults differ in
	 * the probe rate, the suspicion minimum and the retransmissions only */
	struct mesh_swim_config c, ml;
	mesh_swim_config_memberlist_lan(&ml);
	assert_int_equal(ml.probe_interval_ms, 1000);
	assert_int_equal(ml.probe_timeout_ms, 500);
	assert_int_equal(ml.suspicion_mult, 4);
	assert_int_equal(ml.retransmit_mult, 4);
	assert_int_equal(ml.indirect_checks, 3);
	assert_int_equal(ml.suspicion_max_mult, 6);
	assert_int_equal(ml.suspicion_k, 3);
	assert_int_equal(ml.pushpull_interval_ms, 30000);
	mesh_swim_config_default(&c);
	assert_int_equal(c.probe_interval_ms, 500);
	assert_int_equal(c.probe_timeout_ms, 250);
	assert_int_equal(c.suspicion_mult, 2);
	assert_int_equal(c.retransmit_mult, 6);
	assert_int_equal(c.indirect_checks, ml.indirect_checks);
	assert_int_equal(c.gossip_interval_ms, ml.gossip_interval_ms);
	assert_int_equal(c.gossip_nodes, ml.gossip_nodes);
	assert_int_equal(c.suspicion_max_mult, ml.suspicion_max_mult);
	assert_int_equal(c.suspicion_k, ml.suspicion_k);
	assert_int_equal(c.awareness_max, ml.awareness_max);
	assert_int_equal(c.pushpull_interval_ms, ml.pushpull_interval_ms);
	assert_int_equal(c.gossip_to_dead_ms, ml.gossip_to_dead_ms);
	assert_int_equal(c.reconnect_timeout_ms, ml.reconnect_timeout_ms);
	assert_int_equal(c.max_packet, ml.max_packet);
	/* 1,000 members: a 3 s suspicion minimum (memberlist's: 12 s) */
	mesh_swim_config_default(&c);
	assert_int_equal(mesh_swim_suspicion_min_ms(c.suspicion_mult, 1000, c.probe_interval_ms), 3000);
	char err[256];
	c.probe_timeout_ms = c.probe_interval_ms;
	assert_null(mesh_swim_new(&c, "a", "b", NULL, 0, 1, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "probe_timeout_ms"));
	assert_null(mesh_swim_new(NULL, "bad id", "b", NULL, 0, 1, 0, err, sizeof(err)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(timeouts_follow_memberlist),
		cmocka_unit_test(join_converges),
		cmocka_unit_test(join_with_loss),
		cmocka_unit_test(killed_node_declared_dead),
		cmocka_unit_test(leave_is_left_not_dead),
		cmocka_unit_test(lossy_node_suspected_and_refutes),
		cmocka_unit_test(partition_detected_and_healed),
		cmocka_unit_test(no_false_death_under_loss),
		cmocka_unit_test(packets_never_over_limit),
		cmocka_unit_test(names_follow_changes),
		cmocka_unit_test(add_member_quietly),
		cmocka_unit_test(malformed_rejected),
		cmocka_unit_test(fuzzed_packets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
