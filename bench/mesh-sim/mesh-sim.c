/* mesh-sim: the mesh's membership code (src/mesh/swim.c) run as N members in
 * one process over a simulated network (virtual time, seeded loss and
 * delay; src/mesh/swim_sim.c), measuring what issue 15 asks of it: time for
 * a join and for a failure to reach 99.9% of the members, false failure
 * detections over a long run under loss, and bytes per member per second.
 *
 *   mesh-sim [--nodes 100,1000] [--loss 0.01,0.10] [--minutes 10]
 *            [--delay-min 1] [--delay-max 5] [--seed 1] [--join-ms 10]
 *            [--memberlist] [--suspicion-mult 2] [--gossip-ms 200]
 *            [--gossip-nodes 3] [--probe-ms 500] [--probe-timeout-ms 250]
 *            [--indirect 3] [--suspicion-k 3] [--suspicion-max-mult 6]
 *            [--retransmit-mult 6] [--id-len 6] [--addr-len 15] [--meta-len 13]
 *            [--overhead 30] [--no-sessions] [--payload-only]
 *
 * Bytes are counted as a real cell sends them unless told otherwise
 * (simreal): names as long as real ones, a 13-byte capability record per
 * member, 30 bytes of session and channel per datagram, and the sessions'
 * XX/IK handshakes (first contact, rekey every 120 s, retries to the dead);
 * --payload-only counts swim's bytes with short names as before.
 */
#include "mesh/swim_sim.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct watch {
	size_t n;            /* slots: members 0..n-1, newcomer n */
	size_t join_subject, dead_subject;
	bool *join_seen, *dead_seen;
	size_t joins, deads;
	uint64_t first_suspect;
	bool counting;
	uint64_t false_dead, false_suspect;
	struct mesh_swim_sim *sim;
};

static void on_event(void *ctx, size_t observer, uint64_t now, const struct mesh_swim_event *ev)
{
	struct watch *w = ctx;
	size_t subj = mesh_swim_sim_index(ev->id);
	const char *trace = getenv("MESH_SIM_TRACE");
	if (trace && (size_t)atoll(trace) == subj)
		fprintf(stderr, "%llu: n%zu sees %s %s inc %llu\n", (unsigned long long)now, observer,
			ev->id, mesh_swim_state_name(ev->state), (unsigned long long)ev->incarnation);
	if (subj == w->join_subject && ev->state == MESH_SWIM_ALIVE && !w->join_seen[observer]) {
		w->join_seen[observer] = true;
		w->joins++;
	}
	if (subj == w->dead_subject && ev->state == MESH_SWIM_DEAD && !w->dead_seen[observer]) {
		w->dead_seen[observer] = true;
		w->deads++;
	}
	if (subj == w->dead_subject && ev->state == MESH_SWIM_SUSPECT && !w->first_suspect)
		w->first_suspect = now;
	if (w->counting && mesh_swim_sim_running(w->sim, subj)) {
		if (ev->state == MESH_SWIM_DEAD) {
			w->false_dead++;
			if (getenv("MESH_SIM_DEBUG"))
				fprintf(stderr, "%llu: n%zu sees %s dead at inc %llu (its own inc %llu)\n",
					(unsigned long long)now, observer, ev->id,
					(unsigned long long)ev->incarnation,
					(unsigned long long)mesh_swim_incarnation(mesh_swim_sim_node(w->sim, subj)));
			if (getenv("MESH_SIM_DEBUG"))
				fprintf(stderr, "  observer n%zu is seen alive by %zu, suspect by %zu, dead by %zu, left by %zu\n",
					observer, mesh_swim_sim_seen_as(w->sim, observer, MESH_SWIM_ALIVE),
					mesh_swim_sim_seen_as(w->sim, observer, MESH_SWIM_SUSPECT),
					mesh_swim_sim_seen_as(w->sim, observer, MESH_SWIM_DEAD),
					mesh_swim_sim_seen_as(w->sim, observer, MESH_SWIM_LEFT));
		}
		if (ev->state == MESH_SWIM_SUSPECT)
			w->false_suspect++;
	}
}

struct goal {
	struct watch *w;
	size_t *count, target;
};

static bool reached(struct mesh_swim_sim *sim, void *ctx)
{
	struct goal *g = ctx;
	return *g->count >= g->target;
}

static bool converged(struct mesh_swim_sim *sim, void *ctx)
{
	size_t n = *(size_t *)ctx;
	if (mesh_swim_sim_now(sim) % 100)
		return false;
	for (size_t i = 0; i < n; i++) {
		struct mesh_swim *sw = mesh_swim_sim_node(sim, i);
		if (sw && mesh_swim_member_count(sw, MESH_SWIM_ALIVE) +
				  mesh_swim_member_count(sw, MESH_SWIM_SUSPECT) != n)
			return false;
	}
	return true;
}

struct opts {
	char nodes[128], losses[128];
	double minutes;
	uint32_t dmin, dmax, join_ms;
	bool preload;
	uint64_t seed;
	size_t id_len, addr_len, meta_len, overhead;
	bool sessions;
	struct mesh_swim_config swim; /* the library's defaults, or a preset, then the options */
};

/* time from `from` until count reaches target, -1 (printed "-") if never */
static double until(struct mesh_swim_sim *sim, size_t *count, size_t target, uint64_t from,
		    uint64_t limit_ms)
{
	struct goal g = {NULL, count, target};
	if (!mesh_swim_sim_run(sim, mesh_swim_sim_now(sim) + limit_ms, reached, &g))
		return -1;
	return (double)(mesh_swim_sim_now(sim) - from) / 1000.0;
}

static void print_s(double s)
{
	if (s < 0)
		printf(" %8s", "-");
	else
		printf(" %8.2f", s);
}

static int scenario(const struct opts *o, size_t n, double loss)
{
	char err[256];
	struct mesh_swim_sim_config c = {.nodes = n + 1, .seed = o->seed, .loss = loss,
					 .delay_min_ms = o->dmin, .delay_max_ms = o->dmax,
					 .id_len = o->id_len, .addr_len = o->addr_len, .meta_len = o->meta_len,
					 .datagram_overhead = o->overhead, .sessions = o->sessions};
	c.swim = o->swim;
	/* the cell's: the session's payload less the channel byte (cell.c) */
	if (o->overhead && c.swim.max_packet > 1400 - 33)
		c.swim.max_packet = 1400 - 33;
	struct mesh_swim_sim *sim = mesh_swim_sim_new(&c, err, sizeof(err));
	if (!sim) {
		fprintf(stderr, "mesh-sim: %s\n", err);
		return -EINVAL;
	}
	struct watch w = {.n = n, .join_subject = n, .dead_subject = (size_t)-1, .sim = sim};
	w.join_seen = calloc(n + 1, 1);
	w.dead_seen = calloc(n + 1, 1);
	mesh_swim_sim_on_event(sim, on_event, &w);
	clock_t t0 = clock();

	/* bootstrap: each member joins a random earlier one, join_ms apart */
	uint64_t seedr = o->seed;
	for (size_t i = 0; i < n && o->preload; i++)
		mesh_swim_sim_start(sim, i);
	if (o->preload && mesh_swim_sim_preload(sim) < 0) {
		fprintf(stderr, "mesh-sim: preload: out of memory\n");
		return -ENOMEM;
	}
	for (size_t i = 0; i < n && !o->preload; i++) {
		mesh_swim_sim_start(sim, i);
		if (i) {
			seedr = seedr * 6364136223846793005ULL + 1442695040888963407ULL;
			mesh_swim_sim_join(sim, i, (size_t)((seedr >> 33) % i));
		}
		mesh_swim_sim_run(sim, mesh_swim_sim_now(sim) + o->join_ms, NULL, NULL);
	}
	uint64_t boot_end = mesh_swim_sim_now(sim);
	if (getenv("MESH_SIM_DEBUG"))
		mesh_swim_sim_run(sim, boot_end + 5000, NULL, NULL);
	if (getenv("MESH_SIM_DEBUG"))
		for (size_t i = 0; i < n; i++) {
			struct mesh_swim *sw = mesh_swim_sim_node(sim, i);
			size_t a = mesh_swim_member_count(sw, MESH_SWIM_ALIVE), su = mesh_swim_member_count(sw, MESH_SWIM_SUSPECT),
			       d = mesh_swim_member_count(sw, MESH_SWIM_DEAD);
			if (a + su != n)
				fprintf(stderr, "node %zu: alive %zu suspect %zu dead %zu awareness %u inc %llu\n", i, a, su, d,
					mesh_swim_awareness(sw), (unsigned long long)mesh_swim_incarnation(sw));
			for (size_t j = 0; j < n && a + su != n; j++) {
				char id[40];
				mesh_swim_sim_id(sim, j, id, sizeof(id));
				if (mesh_swim_member(sw, id, NULL, NULL) < 0)
					fprintf(stderr, "  misses %s\n", id);
			}
		}
	bool conv = mesh_swim_sim_run(sim, boot_end + 300000, converged, &n);
	double boot = conv ? (double)(mesh_swim_sim_now(sim) - boot_end) / 1000.0 : -1;

	/* a newcomer joins through a random member */
	size_t target = (size_t)ceil(0.999 * (double)n);
	uint64_t t = mesh_swim_sim_now(sim);
	mesh_swim_sim_start(sim, n);
	mesh_swim_sim_join(sim, n, (size_t)(o->seed % n));
	double join999 = until(sim, &w.joins, target, t, 60000);
	double join100 = until(sim, &w.joins, n, t, 60000);

	/* a member dies */
	w.dead_subject = (size_t)((o->seed * 7919) % n);
	mesh_swim_sim_kill(sim, w.dead_subject);
	/* who does not list it (a newcomer that missed it) already has it right */
	char vid[40];
	mesh_swim_sim_id(sim, w.dead_subject, vid, sizeof(vid));
	for (size_t i = 0; i <= n; i++) {
		enum mesh_swim_state st;
		struct mesh_swim *sw = mesh_swim_sim_node(sim, i);
		if (sw && (mesh_swim_member(sw, vid, &st, NULL) < 0 || st >= MESH_SWIM_DEAD)) {
			w.dead_seen[i] = true;
			w.deads++;
		}
	}
	t = mesh_swim_sim_now(sim);
	double dead999 = until(sim, &w.deads, target, t, 120000);
	double dead100 = until(sim, &w.deads, n, t, 120000);
	if (getenv("MESH_SIM_DEBUG"))
		fprintf(stderr, "killed n%zu: dead for %zu, suspect for %zu, alive for %zu, events %zu\n",
			w.dead_subject, mesh_swim_sim_seen_as(sim, w.dead_subject, MESH_SWIM_DEAD),
			mesh_swim_sim_seen_as(sim, w.dead_subject, MESH_SWIM_SUSPECT),
			mesh_swim_sim_seen_as(sim, w.dead_subject, MESH_SWIM_ALIVE), w.deads);
	double suspect = w.first_suspect ? (double)(w.first_suspect - t) / 1000.0 : -1;

	/* the long run: false detections and traffic */
	struct mesh_swim_sim_stats s0, s1;
	mesh_swim_sim_get_stats(sim, &s0);
	w.counting = true;
	uint64_t run_ms = (uint64_t)(o->minutes * 60000.0);
	mesh_swim_sim_run(sim, mesh_swim_sim_now(sim) + run_ms, NULL, NULL);
	mesh_swim_sim_get_stats(sim, &s1);
	double per = (double)n * ((double)run_ms / 1000.0);
	double bps = (double)(s1.bytes - s0.bytes) / per;
	double hs_bps = (double)(s1.hs_bytes - s0.hs_bytes) / per;
	double dgrams = (double)(s1.packets - s0.packets) / per;
	double cpu = (double)(clock() - t0) / CLOCKS_PER_SEC;
	if (getenv("MESH_SIM_DEBUG"))
		fprintf(stderr, "long run: handshakes XX %llu IK %llu, %llu handshake datagrams, %llu swim packets held\n",
			(unsigned long long)(s1.hs_xx - s0.hs_xx), (unsigned long long)(s1.hs_ik - s0.hs_ik),
			(unsigned long long)(s1.hs_packets - s0.hs_packets), (unsigned long long)(s1.held - s0.held));

	printf("%6zu %5.1f%%", n, loss * 100);
	print_s(boot);
	print_s(join999);
	print_s(join100);
	print_s(suspect);
	print_s(dead999);
	print_s(dead100);
	/* suspect events / observers ~ distinct suspicions; per member per minute */
	double fs_rate = o->minutes > 0 ? (double)w.false_suspect / (double)n / (double)n / o->minutes : 0;
	printf(" %6llu %8llu %8.5f %8.0f %6llu %6llu %7.1f %7.0f %7.2f\n", (unsigned long long)w.false_dead,
	       (unsigned long long)w.false_suspect, fs_rate, bps, (unsigned long long)s1.max_packet,
	       (unsigned long long)s1.oversize, cpu, hs_bps, dgrams);
	fflush(stdout);
	free(w.join_seen);
	free(w.dead_seen);
	mesh_swim_sim_free(sim);
	return 0;
}

static const char usage_text[] =
	"usage: mesh-sim [--nodes N,...] [--loss P,...] [--minutes M] [--delay-min MS]\n"
	"                [--delay-max MS] [--seed S] [--suspicion-mult K] [--gossip-ms MS]\n"
	"                [--gossip-nodes K] [--probe-ms MS] [--probe-timeout-ms MS]\n"
	"                [--indirect K] [--suspicion-k K] [--suspicion-max-mult K]\n"
	"                [--retransmit-mult K] [--join-ms MS] [--preload] [--memberlist]\n"
	"                [--id-len B] [--addr-len B] [--meta-len B] [--overhead B]\n"
	"                [--no-sessions] [--payload-only]\n"
	"Runs N members of src/mesh/swim.c over a simulated network (virtual time) for\n"
	"each N and loss: bootstrap (each member joins a random earlier one, --join-ms\n"
	"apart; --preload: every member starts knowing all the others, no join storm),\n"
	"a join, a kill, then M minutes of steady state.\n"
	"Columns: boot_s (bootstrap until all know all), join999/join100 (a newcomer\n"
	"known by 99.9%/100%), suspect (first suspicion of the killed member),\n"
	"dead999/dead100 (it is known dead, or not listed at all), fdead/fsuspect\n"
	"(dead/suspect events about running members in the steady run, one per\n"
	"observer), fs/m/min (fsuspect / N^2 / M: false suspicions per member per\n"
	"minute), B/node/s (bytes sent on the wire), maxpkt (largest datagram),\n"
	"over (swim packets over max_packet), cpu_s, hs_B/s (of B/node/s: session\n"
	"handshakes), dgram/s (datagrams per node per second).\n"
	"Bytes as a real cell sends them (all on by default): ids --id-len 6 bytes\n"
	"(\"web-07\"), addresses --addr-len 15 (\"10.0.12.34:7947\"), a --meta-len 13\n"
	"capability record per member, --overhead 30 bytes of session header, AEAD\n"
	"tag and channel byte per datagram (swim packets then at most 1,367 bytes,\n"
	"as in the cell), and session handshakes (XX first contact, IK after, with\n"
	"certificate references instead of certificates (certcache); IK\n"
	"rekey every 120 s per pair with traffic, keys dropped after 180 s and when\n"
	"a member is seen dead; unanswered initiations re-sent every 5 s, 18 tries);\n"
	"--no-sessions leaves the handshakes out; --payload-only counts swim's\n"
	"bytes alone with short names (\"n7\" at \"sim:7\"), as before.\n"
	"Defaults: --nodes 100,1000 --loss 0.01,0.10 --minutes 10 --join-ms 10\n"
	"--delay-min 1 --delay-max 5 --seed 1 and the library's timings\n"
	"(mesh_swim_config_default); --memberlist starts from memberlist's LAN ones,\n"
	"and the timing options after it change single values.\n";

static int usage(const char *why)
{
	fprintf(stderr, "mesh-sim: %s\n%s", why, usage_text);
	return 2;
}

int main(int argc, char **argv)
{
	struct opts o = {.nodes = "100,1000", .losses = "0.01,0.10", .minutes = 10, .dmin = 1, .dmax = 5,
			 .join_ms = 10, .seed = 1, .id_len = 6, .addr_len = 15, .meta_len = 13,
			 .overhead = 30, .sessions = true};
	mesh_swim_config_default(&o.swim);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage_text, stdout);
			return 0;
		}
		if (!strcmp(a, "--preload")) {
			o.preload = true;
			continue;
		}
		if (!strcmp(a, "--no-sessions")) {
			o.sessions = false;
			continue;
		}
		if (!strcmp(a, "--payload-only")) {
			o.sessions = false;
			o.id_len = o.addr_len = o.meta_len = o.overhead = 0;
			continue;
		}
		if (!strcmp(a, "--memberlist")) {
			mesh_swim_config_memberlist_lan(&o.swim);
			continue;
		}
		if (!v)
			return usage("an option needs a value");
		i++;
		if (!strcmp(a, "--nodes"))
			snprintf(o.nodes, sizeof(o.nodes), "%s", v);
		else if (!strcmp(a, "--loss"))
			snprintf(o.losses, sizeof(o.losses), "%s", v);
		else if (!strcmp(a, "--minutes"))
			o.minutes = atof(v);
		else if (!strcmp(a, "--delay-min"))
			o.dmin = (uint32_t)atoi(v);
		else if (!strcmp(a, "--join-ms"))
			o.join_ms = (uint32_t)atoi(v);
		else if (!strcmp(a, "--delay-max"))
			o.dmax = (uint32_t)atoi(v);
		else if (!strcmp(a, "--seed"))
			o.seed = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--suspicion-mult"))
			o.swim.suspicion_mult = (uint32_t)atoi(v);
		else if (!strcmp(a, "--suspicion-max-mult"))
			o.swim.suspicion_max_mult = (uint32_t)atoi(v);
		else if (!strcmp(a, "--suspicion-k"))
			o.swim.suspicion_k = (uint32_t)atoi(v);
		else if (!strcmp(a, "--retransmit-mult"))
			o.swim.retransmit_mult = (uint32_t)atoi(v);
		else if (!strcmp(a, "--indirect"))
			o.swim.indirect_checks = (uint32_t)atoi(v);
		else if (!strcmp(a, "--gossip-ms"))
			o.swim.gossip_interval_ms = (uint32_t)atoi(v);
		else if (!strcmp(a, "--probe-ms"))
			o.swim.probe_interval_ms = (uint32_t)atoi(v);
		else if (!strcmp(a, "--probe-timeout-ms"))
			o.swim.probe_timeout_ms = (uint32_t)atoi(v);
		else if (!strcmp(a, "--id-len"))
			o.id_len = (size_t)atoi(v);
		else if (!strcmp(a, "--addr-len"))
			o.addr_len = (size_t)atoi(v);
		else if (!strcmp(a, "--meta-len"))
			o.meta_len = (size_t)atoi(v);
		else if (!strcmp(a, "--overhead"))
			o.overhead = (size_t)atoi(v);
		else if (!strcmp(a, "--gossip-nodes"))
			o.swim.gossip_nodes = (uint32_t)atoi(v);
		else
			return usage("unknown option");
	}
	const struct mesh_swim_config *sc = &o.swim;
	if (o.minutes < 0 || !o.join_ms || !sc->retransmit_mult || o.dmin > o.dmax || !sc->suspicion_mult || !sc->suspicion_max_mult ||
	    !sc->gossip_interval_ms || !sc->gossip_nodes || !sc->probe_timeout_ms ||
	    sc->probe_timeout_ms >= sc->probe_interval_ms)
		return usage("bad value");
	printf("mesh-sim: delay %u-%u ms, joins %u ms apart, seed %llu, probe %u/%u ms, indirect %u, suspicion_mult %u"
	       " max_mult %u k %u, gossip %u ms x %u, retransmit_mult %u, long run %.1f min\n", o.dmin,
	       o.dmax, o.join_ms, (unsigned long long)o.seed, sc->probe_interval_ms, sc->probe_timeout_ms,
	       sc->indirect_checks, sc->suspicion_mult, sc->suspicion_max_mult, sc->suspicion_k,
	       sc->gossip_interval_ms, sc->gossip_nodes, sc->retransmit_mult, o.minutes);
	printf("bytes: ids %zu B, addresses %zu B, meta %zu B, +%zu B per datagram, handshakes %s\n",
	       o.id_len, o.addr_len, o.meta_len, o.overhead, o.sessions ? "counted" : "not counted");
	printf("%6s %6s %8s %8s %8s %8s %8s %8s %6s %8s %8s %8s %6s %6s %7s %7s %7s\n", "nodes", "loss", "boot_s",
	       "join999", "join100", "suspect", "dead999", "dead100", "fdead", "fsuspect", "fs/m/min",
	       "B/node/s",
	       "maxpkt", "over", "cpu_s", "hs_B/s", "dgram/s");
	char nodes[128];
	snprintf(nodes, sizeof(nodes), "%s", o.nodes);
	for (char *sn = strtok(nodes, ","); sn; sn = strtok(NULL, ",")) {
		size_t n = (size_t)strtoull(sn, NULL, 10);
		if (n < 2)
			return usage("--nodes: at least 2");
		char losses[128], *save = NULL;
		snprintf(losses, sizeof(losses), "%s", o.losses);
		for (char *sl = strtok_r(losses, ",", &save); sl; sl = strtok_r(NULL, ",", &save))
			if (scenario(&o, n, atof(sl)) < 0)
				return 1;
	}
	return 0;
}
