/* test_simreal.c: the simulator's wire accounting (src/mesh/swim_sim.c,
 * simreal): its handshake sizes are those session.c really sends (XX and IK
 * between two sessions in memory), a pair pays one XX on first contact and an
 * IK rekey after 120 s, and the per-datagram overhead adds exactly its bytes
 * per packet. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "mesh/session.h"
#include "mesh/swim_sim.h"

static const char *A = "10.0.0.1:7947", *B = "10.0.0.2:7947";

static int make(const mesh_identity_key *fleet, mesh_identity_key *k, mesh_identity_cert *c,
		struct mesh_session **s)
{
	char err[256];
	k->kind = MESH_KEY_NODE;
	crypto_sign_keypair(k->pk, k->sk);
	*c = (mesh_identity_cert){.roles = MESH_ROLE_ALL, .not_before = 0, .not_after = INT64_MAX / 2};
	memcpy(c->node_pk, k->pk, 32);
	snprintf(c->node_id, sizeof c->node_id, "web-07");
	mesh_session_config cfg = {.node = k, .cert = c, .fleet_pk = fleet->pk};
	if (mesh_identity_cert_sign(c, fleet, err, sizeof err) || mesh_session_new(&cfg, s, err, sizeof err))
		return -1;
	return 0;
}

/* moves every datagram both ways; the length of each by type byte (last seen) */
static void pump(struct mesh_session *a, struct mesh_session *b, uint64_t now, size_t len_by_type[8])
{
	mesh_session_out o;
	for (int moved = 1; moved;) {
		moved = 0;
		while (mesh_session_next_out(a, &o)) {
			moved = 1;
			len_by_type[o.data[0] & 7] = o.len;
			mesh_session_receive(b, now, A, o.data, o.len);
		}
		while (mesh_session_next_out(b, &o)) {
			moved = 1;
			len_by_type[o.data[0] & 7] = o.len;
			mesh_session_receive(a, now, B, o.data, o.len);
		}
	}
}

static void sizes_are_session_c(void **state)
{
	(void)state;
	assert_true(sodium_init() >= 0);
	mesh_identity_key fleet = {.kind = MESH_KEY_FLEET}, ka, kb;
	mesh_identity_cert ca, cb;
	crypto_sign_keypair(fleet.pk, fleet.sk);
	struct mesh_session *a, *b;
	assert_int_equal(make(&fleet, &ka, &ca, &a), 0);
	assert_int_equal(make(&fleet, &kb, &cb, &b), 0);
	uint8_t cert[MESH_ID_CERT_MAX];
	char err[256];
	int cl = mesh_identity_cert_encode(&ca, cert, sizeof cert, err, sizeof err);
	assert_int_equal(cl, 160 + 6);
	size_t xx[8] = {0}, ik[8] = {0};
	uint8_t pl[16] = {1};
	assert_int_equal(mesh_session_send(a, 10, B, pl, sizeof pl, err, sizeof err), 0);
	pump(a, b, 10, xx);
	assert_int_equal(xx[1], mesh_swim_sim_hs_bytes(MESH_SWIM_SIM_XX1, (size_t)cl));
	assert_int_equal(xx[3], mesh_swim_sim_hs_bytes(MESH_SWIM_SIM_XX2, (size_t)cl));
	assert_int_equal(xx[4], mesh_swim_sim_hs_bytes(MESH_SWIM_SIM_XX3, (size_t)cl));
	assert_int_equal(xx[7], mesh_swim_sim_hs_bytes(MESH_SWIM_SIM_XXCERT, (size_t)cl));
	assert_int_equal(xx[6], sizeof pl + 29); /* the payload: 29 bytes of session */
	/* forgotten (a false death): the next contact is IK; nothing waits
	 * after it, so the initiator confirms with a keepalive */
	mesh_session_forget(a, B);
	mesh_session_forget(b, A);
	assert_int_equal(mesh_session_send(a, 20, B, pl, sizeof pl, err, sizeof err), 0);
	pump(a, b, 20, ik);
	assert_int_equal(ik[2], mesh_swim_sim_hs_bytes(MESH_SWIM_SIM_IK1, (size_t)cl));
	assert_int_equal(ik[3], mesh_swim_sim_hs_bytes(MESH_SWIM_SIM_IK2, (size_t)cl));
	assert_int_equal(mesh_swim_sim_hs_bytes(MESH_SWIM_SIM_KEEPALIVE, (size_t)cl), 29);
	mesh_session_free(a);
	mesh_session_free(b);
}

static struct mesh_swim_sim *pair_sim(bool sessions, size_t overhead)
{
	char err[256];
	struct mesh_swim_sim_config c = {.nodes = 2, .seed = 5, .delay_min_ms = 1, .delay_max_ms = 1,
					 .id_len = 6, .addr_len = 15, .meta_len = 13,
					 .datagram_overhead = overhead, .sessions = sessions};
	mesh_swim_config_default(&c.swim);
	struct mesh_swim_sim *sim = mesh_swim_sim_new(&c, err, sizeof(err));
	assert_non_null(sim);
	assert_int_equal(mesh_swim_sim_start(sim, 0), 0);
	assert_int_equal(mesh_swim_sim_start(sim, 1), 0);
	assert_int_equal(mesh_swim_sim_join(sim, 1, 0), 0);
	return sim;
}

static void one_xx_then_rekeys(void **state)
{
	(void)state;
	struct mesh_swim_sim *sim = pair_sim(true, 30);
	struct mesh_swim_sim_stats st;
	mesh_swim_sim_run(sim, 5000, NULL, NULL);
	mesh_swim_sim_get_stats(sim, &st);
	size_t cert = 160 + 6;
	assert_int_equal(st.hs_xx, 1);
	assert_int_equal(st.hs_ik, 0);
	assert_int_equal(st.hs_bytes, mesh_swim_sim_hs_bytes(MESH_SWIM_SIM_XX1, cert) +
					      mesh_swim_sim_hs_bytes(MESH_SWIM_SIM_XX2, cert) +
					      mesh_swim_sim_hs_bytes(MESH_SWIM_SIM_XX3, cert) +
					      mesh_swim_sim_hs_bytes(MESH_SWIM_SIM_XXCERT, cert));
	assert_int_equal(mesh_swim_sim_seen_as(sim, 1, MESH_SWIM_ALIVE), 1);
	/* traffic all along: one IK rekey per 120 s */
	mesh_swim_sim_run(sim, 5000 + 2 * 120000 + 1000, NULL, NULL);
	mesh_swim_sim_get_stats(sim, &st);
	assert_int_equal(st.hs_xx, 1);
	assert_int_equal(st.hs_ik, 2);
	/* member 1 dies: swim packets to it once 0 forgot it are held (not
	 * counted); initiations towards it are counted and none completes */
	mesh_swim_sim_kill(sim, 1);
	uint64_t t = mesh_swim_sim_now(sim);
	mesh_swim_sim_run(sim, t + 600000, NULL, NULL);
	struct mesh_swim_sim_stats s2;
	mesh_swim_sim_get_stats(sim, &s2);
	assert_true(s2.held > 0);
	assert_int_equal(s2.hs_ik + s2.hs_xx, st.hs_ik + st.hs_xx);
	assert_true(s2.hs_packets > st.hs_packets);
	mesh_swim_sim_free(sim);
}

static void overhead_per_datagram(void **state)
{
	(void)state;
	struct mesh_swim_sim *a = pair_sim(false, 0), *b = pair_sim(false, 30);
	mesh_swim_sim_run(a, 20000, NULL, NULL);
	mesh_swim_sim_run(b, 20000, NULL, NULL);
	struct mesh_swim_sim_stats sa, sb;
	mesh_swim_sim_get_stats(a, &sa);
	mesh_swim_sim_get_stats(b, &sb);
	assert_true(sa.packets > 20);
	assert_int_equal(sa.packets, sb.packets);
	assert_int_equal(sb.bytes, sa.bytes + 30 * sa.packets);
	assert_int_equal(sb.hs_bytes, 0);
	mesh_swim_sim_free(a);
	mesh_swim_sim_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sizes_are_session_c),
		cmocka_unit_test(one_xx_then_rekeys),
		cmocka_unit_test(overhead_per_datagram),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
