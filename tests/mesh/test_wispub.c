/* test_wispub.c: the cell's own detector baselines and tuned knob sets as
 * wisdom (issue 15 item 4) with a real memory store: baselines built from
 * planted series and service events, knob sets from planted Evolve run
 * records, both through the redaction rule (a planted host name in a label
 * and an IP address in a knob value are refused); the change hash that
 * decides re-publishing; and two cells over loopback UDP where B receives
 * A's baseline and knob set, shows them in its wisdom view and lists the
 * knob set with A's trust weight (mesh_cell_knob_sets). Runs in every tree. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cellfix.h"

#include "core/core.h"
#include "mesh/identity.h"
#include "mesh/mesh.h"
#include "mesh/wisdom_publish.h"

#define DEADLINE_MS CELLFIX_DEADLINE_MS
#define PLANT_S 400 /* seconds of planted samples: 40 ten-second means */

/* ---- planting ------------------------------------------------------------------------ */

static void rmrf(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
}

static mem_t *open_mem(const char *dir, core_config *cfg)
{
    char err[512] = "";
    core_config_defaults(cfg);
    snprintf(cfg->state_dir, sizeof cfg->state_dir, "%s", dir);
    mem_t *m = NULL;
    if (mem_open(&m, cfg, err, sizeof err))
        fail_msg("mem_open: %s", err);
    return m;
}

/* PLANT_S seconds ending at now: memory.used_percent 40..49, nginx's cpu
 * 10 or 30 (two pids), a process kind named after this "host" (refused),
 * and nginx's service events: up 40 hours ago, restarted 8 times since. */
static void plant_memory(mem_t *m, int64_t now, const char *hostkind)
{
    char hl[128];
    snprintf(hl, sizeof hl, "name=\"%s\",pid=\"13\"", hostkind);
    int mu = mem_series(m, "memory.used_percent", "", "percent", "RAM in use", MEM_GAUGE);
    int c1 = mem_series(m, "process.cpu_percent", "name=\"nginx\",pid=\"11\"", "percent", "cpu", MEM_RATE);
    int c2 = mem_series(m, "process.cpu_percent", "name=\"nginx\",pid=\"12\"", "percent", "cpu", MEM_RATE);
    int hc = mem_series(m, "process.cpu_percent", hl, "percent", "cpu", MEM_RATE);
    assert_true(mu >= 0 && c1 >= 0 && c2 >= 0 && hc >= 0);
    int64_t t0 = (now / 1000 - PLANT_S) * 1000;
    for (int i = 0; i < PLANT_S; i++) {
        mem_put(m, mu, 40 + (i / 10) % 10);
        mem_put(m, c1, 10);
        mem_put(m, c2, 30);
        mem_put(m, hc, 5);
        assert_int_equal(mem_tick(m, t0 + i * 1000LL), 0);
    }
    int64_t hour = 3600000;
    assert_true(mem_event_add(m, now - 40 * hour, "service.start", "info", "nginx", "{}") > 0);
    for (int i = 0; i < 8; i++)
        assert_true(mem_event_add(m, now - 39 * hour + i * 4 * hour, "service.restart", "info", "nginx", "{}") > 0);
    /* a young service: too little history for a baseline */
    assert_true(mem_event_add(m, now - 2 * hour, "service.start", "info", "redis", "{}") > 0);
    assert_int_equal(mem_flush(m, 5000), 0);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* STATE/evolve/runs: run 1 accepted a postgres knob set, run 2 accepted one
 * with an IP address in a value, run 3 accepted nothing. */
static void plant_runs(const char *state)
{
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/evolve", state);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(dir, sizeof dir, "%s/evolve/runs", state);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/1.json", dir);
    write_file(path, "{\"id\":\"1\",\"space\":\"postgres\",\"goal\":\"max\",\"status\":\"done\","
                     "\"accepted\":[{\"trial\":1,\"values\":{\"work_mem\":\"8MB\",\"shared_buffers\":\"512MB\"}},"
                     "{\"trial\":3,\"values\":{\"work_mem\":\"64MB\",\"shared_buffers\":\"1GB\"}}],"
                     "\"trials\":[{\"n\":1,\"confirmation\":{\"gain\":0.05,\"lo\":0.03,\"hi\":0.08,\"n_cand\":5}},"
                     "{\"n\":2,\"decision\":\"rejected\"},"
                     "{\"n\":3,\"confirmation\":{\"gain\":0.172,\"lo\":0.091,\"hi\":0.25,\"n_cand\":6,"
                     "\"p\":0.003}}]}");
    snprintf(path, sizeof path, "%s/2.json", dir);
    write_file(path, "{\"id\":\"2\",\"space\":\"app\",\"goal\":\"min\",\"status\":\"done\","
                     "\"accepted\":[{\"trial\":1,\"values\":{\"listen_addr\":\"10.0.0.5\"}}],"
                     "\"trials\":[{\"n\":1,\"confirmation\":{\"gain\":0.1,\"lo\":0.05,\"hi\":0.2,\"n_cand\":5}}]}");
    snprintf(path, sizeof path, "%s/3.json", dir);
    write_file(path, "{\"id\":\"3\",\"space\":\"redis\",\"goal\":\"max\",\"status\":\"done\",\"accepted\":[],"
                     "\"trials\":[]}");
}

/* ---- collecting what a builder emits ----------------------------------------------------- */

typedef struct got {
    mesh_wisdom_rec r[32];
    int n;
} got;

static int collect(void *ud, const mesh_wisdom_rec *r)
{
    got *g = ud;
    if (g->n < 32)
        g->r[g->n++] = *r;
    return 0;
}

static const mesh_wisdom_rec *find_base(const got *g, const char *service, const char *metric)
{
    for (int i = 0; i < g->n; i++)
        if (g->r[i].kind == MESH_WISDOM_BASELINE && !strcmp(g->r[i].host.service, service) &&
            !strcmp(g->r[i].base.metric, metric))
            return &g->r[i];
    return NULL;
}

static void test_host(mesh_wisdom_host *h)
{
    char err[256];
    assert_int_equal(mesh_wisdom_host_local("", h, err, sizeof err), 0);
}

static void stats(void **state)
{
    (void)state;
    double v[] = {5, 1, 4, 2, 3};
    double mean, sd, p05, p50, p95;
    mesh_pub_stats(v, 5, &mean, &sd, &p05, &p50, &p95);
    assert_true(fabs(mean - 3) < 1e-9);
    assert_true(fabs(sd - sqrt(2)) < 1e-9);
    assert_true(fabs(p05 - 1.2) < 1e-9);
    assert_true(fabs(p50 - 3) < 1e-9);
    assert_true(fabs(p95 - 4.8) < 1e-9);
}

static void baselines_from_memory(void **state)
{
    (void)state;
    char dir[] = "/tmp/ippoc-wispub-mem-XXXXXX", err[512] = "";
    assert_non_null(mkdtemp(dir));
    core_log_setup(CORE_LOG_ERR, 0);
    core_config cfg;
    mem_t *m = open_mem(dir, &cfg);
    int64_t now = core_now_ms();
    plant_memory(m, now, "dbhost-zeta");

    mesh_wisdom_host h;
    test_host(&h);
    mesh_wisdom_local loc;
    memset(&loc, 0, sizeof loc);
    mesh_wisdom_local_add(&loc, "dbhost-zeta"); /* this machine's name, as the cell's local list holds it */
    got *g = calloc(1, sizeof *g);
    assert_non_null(g);
    int refused = -1;
    int64_t t0 = core_mono_ms();
    int rc = mesh_wisdom_baselines_from_memory(m, &h, now, &loc, collect, g, &refused, err, sizeof err);
    print_message("baselines built from memory in %lld ms\n", (long long)(core_mono_ms() - t0));
    assert_int_equal(rc, g->n);
    assert_int_equal(g->n, 3);

    const mesh_wisdom_rec *mu = find_base(g, "", "memory.used_percent");
    assert_non_null(mu);
    assert_true(mu->base.count >= 30 && mu->base.count <= 41);
    assert_true(mu->base.mean > 43.5 && mu->base.mean < 45.5);
    assert_true(mu->base.p05 >= 40 && mu->base.p05 <= 41);
    assert_true(mu->base.p95 >= 48 && mu->base.p95 <= 49);
    assert_true(mu->base.stddev > 2.5 && mu->base.stddev < 3.2);
    assert_int_equal(mesh_wisdom_check(mu, &loc, err, sizeof err), 0);

    /* nginx's two pids pooled: half the points at 10, half at 30 */
    const mesh_wisdom_rec *cpu = find_base(g, "nginx", "process.cpu_percent");
    assert_non_null(cpu);
    assert_true(cpu->base.count >= 60);
    assert_true(fabs(cpu->base.mean - 20) < 0.5);
    assert_true(fabs(cpu->base.p05 - 10) < 0.5 && fabs(cpu->base.p95 - 30) < 0.5);

    /* 8 restarts over 40 hours */
    const mesh_wisdom_rec *rs = find_base(g, "nginx", "service.restarts_per_hour");
    assert_non_null(rs);
    assert_int_equal(rs->base.count, 40);
    assert_true(fabs(rs->base.mean - 0.2) < 1e-9);
    assert_true(rs->base.p50 == 0 && rs->base.p95 == 1);
    assert_null(find_base(g, "redis", "service.restarts_per_hour"));

    /* the process kind named after the host is refused, naming the field */
    assert_int_equal(refused, 1);
    assert_non_null(strstr(err, "host.service"));
    assert_null(find_base(g, "dbhost-zeta", "process.cpu_percent"));

    /* every record signs and decodes as the redaction rule allows */
    uint8_t sk[64], pk[32], buf[MESH_WISDOM_MAX_BYTES];
    crypto_sign_keypair(pk, sk);
    for (int i = 0; i < g->n; i++) {
        size_t len = 0;
        mesh_wisdom_rec r = g->r[i], back;
        assert_int_equal(mesh_wisdom_sign(&r, sk, (uint64_t)i + 1, now, &loc, buf, sizeof buf, &len, err, sizeof err),
                         0);
        assert_int_equal(mesh_wisdom_accept(buf, len, &back, err, sizeof err), MESH_WISDOM_OK);
        print_message("%s %s: %zu bytes signed\n", back.host.service, back.base.metric, len);
    }
    free(g);
    mem_close(m);
    core_config_free(&cfg);
    rmrf(dir);
}

static void knobs_from_runs(void **state)
{
    (void)state;
    char dir[] = "/tmp/ippoc-wispub-runs-XXXXXX", err[512] = "", runs[600];
    assert_non_null(mkdtemp(dir));
    mesh_wisdom_host h;
    test_host(&h);
    got *g = calloc(1, sizeof *g);
    assert_non_null(g);
    int refused = -1;
    snprintf(runs, sizeof runs, "%s/evolve/runs", dir);
    assert_int_equal(mesh_wisdom_knobs_from_runs(runs, &h, NULL, collect, g, &refused, err, sizeof err), 0);
    assert_int_equal(refused, 0); /* no runs yet: nothing */
    plant_runs(dir);
    int rc = mesh_wisdom_knobs_from_runs(runs, &h, NULL, collect, g, &refused, err, sizeof err);
    assert_int_equal(rc, 1);
    assert_int_equal(g->n, 1);
    const mesh_wisdom_rec *r = &g->r[0];
    assert_int_equal(r->kind, MESH_WISDOM_KNOBS);
    assert_string_equal(r->host.service, "postgres");
    assert_string_equal(r->knobs.objective, "postgres.fitness");
    assert_int_equal(r->knobs.nknobs, 2); /* the last accepted candidate's, sorted */
    assert_string_equal(r->knobs.knobs[0].name, "shared_buffers");
    assert_string_equal(r->knobs.knobs[0].value, "1GB");
    assert_string_equal(r->knobs.knobs[1].name, "work_mem");
    assert_string_equal(r->knobs.knobs[1].value, "64MB");
    assert_true(fabs(r->knobs.gain - 0.172) < 1e-9 && fabs(r->knobs.lo - 0.091) < 1e-9 &&
                fabs(r->knobs.hi - 0.25) < 1e-9);
    assert_int_equal(r->knobs.runs, 6);
    uint8_t sk[64], pk[32], buf[MESH_WISDOM_MAX_BYTES];
    size_t len = 0;
    crypto_sign_keypair(pk, sk);
    mesh_wisdom_rec signed_rec = *r;
    assert_int_equal(mesh_wisdom_sign(&signed_rec, sk, 1, core_now_ms(), NULL, buf, sizeof buf, &len, err, sizeof err),
                     0);
    print_message("knob set of 2 knobs: %zu bytes signed\n", len);
    /* the IP address in run 2's value is refused, naming the field */
    assert_int_equal(refused, 1);
    assert_non_null(strstr(err, "knobs.knobs[0].value"));
    free(g);
    rmrf(dir);
}

static void change_hash(void **state)
{
    (void)state;
    mesh_wisdom_host h;
    test_host(&h);
    char err[256], k1[160], k2[160];
    mesh_wisdom_rec a, b;
    assert_int_equal(mesh_wisdom_build_baseline("memory.used_percent", 1000, 44.31, 2.87, 40, 44, 49, &h, NULL, &a,
                                                err, sizeof err),
                     0);
    /* a few more samples and a mean that moved in its third digit: the same */
    assert_int_equal(mesh_wisdom_build_baseline("memory.used_percent", 1010, 44.12, 2.871, 40, 44, 49, &h, NULL, &b,
                                                err, sizeof err),
                     0);
    assert_true(mesh_pub_hash(&a, k1, sizeof k1) == mesh_pub_hash(&b, k2, sizeof k2));
    assert_string_equal(k1, "baseline//memory.used_percent");
    assert_string_equal(k1, k2);
    /* a mean that moved by a tenth: changed */
    b.base.mean = 49.2;
    assert_true(mesh_pub_hash(&a, k1, sizeof k1) != mesh_pub_hash(&b, k2, sizeof k2));
    const char *names[] = {"work_mem"}, *v1[] = {"64MB"}, *v2[] = {"128MB"};
    assert_int_equal(mesh_wisdom_build_knobs("pg.fitness", 1, names, v1, 0.1, 0.05, 0.2, 5, &h, NULL, &a, err,
                                             sizeof err),
                     0);
    assert_int_equal(mesh_wisdom_build_knobs("pg.fitness", 1, names, v2, 0.1, 0.05, 0.2, 5, &h, NULL, &b, err,
                                             sizeof err),
                     0);
    assert_true(mesh_pub_hash(&a, k1, sizeof k1) != mesh_pub_hash(&b, k2, sizeof k2));
    assert_string_equal(k1, k2);
}

/* ---- two cells ---------------------------------------------------------------------------- */

/* How many of m's wisdom records are of kind from `from` with text in the summary. */
static int wisdom_count(mesh_cell *m, const char *kind, const char *from, const char *text)
{
    json_t *j = cellfix_view(mesh_cell_wisdom_json(m, 100)), *r;
    size_t i;
    int n = 0;
    json_array_foreach(json_object_get(j, "records"), i, r)
        n += !strcmp(json_string_value(json_object_get(r, "kind")), kind) &&
             !strcmp(json_string_value(json_object_get(r, "from")), from) &&
             strstr(json_string_value(json_object_get(r, "summary")), text) != NULL;
    json_decref(j);
    return n;
}

static void two_cells(void **state)
{
    (void)state;
    char fleet[] = "/tmp/ippoc-wispub-f-XXXXXX", da[] = "/tmp/ippoc-wispub-a-XXXXXX",
         db[] = "/tmp/ippoc-wispub-b-XXXXXX";
    char err[1024] = "";
    cellfix_pair(fleet, da, db);

    core_config ca, cb;
    cellfix_config(&ca, da, NULL, NULL);
    mem_t *mem = NULL;
    if (mem_open(&mem, &ca, err, sizeof err))
        fail_msg("mem_open: %s", err);
    /* a process kind named after this machine: the cell's own names refuse it */
    mesh_wisdom_local loc;
    mesh_wisdom_local_init(&loc);
    const char *hostkind = NULL;
    for (int i = 0; i < loc.nnames && !hostkind; i++)
        if (strlen(loc.names[i]) < 32 && loc.names[i][0] >= 'a' && loc.names[i][0] <= 'z' &&
            strspn(loc.names[i], "abcdefghijklmnopqrstuvwxyz0123456789_-") == strlen(loc.names[i]))
            hostkind = loc.names[i];
    if (!hostkind)
        print_message("this machine's name is not a service kind: its refusal is not checked here\n");
    plant_memory(mem, core_now_ms(), hostkind ? hostkind : "nginx");
    plant_runs(da);

    mesh_cell *a = NULL, *b = NULL;
    mesh_cell_opts oa = {.state_dir = da, .mem = mem}, ob = {.state_dir = db};
    if (mesh_cell_new(&oa, &a, err, sizeof err) || mesh_cell_configure(a, &ca, err, sizeof err))
        fail_msg("cell a: %s", err);
    char seed[80];
    cellfix_listen(a, seed, sizeof seed);
    cellfix_config(&cb, db, seed, NULL);
    if (mesh_cell_new(&ob, &b, err, sizeof err) || mesh_cell_configure(b, &cb, err, sizeof err))
        fail_msg("cell b: %s", err);

    /* a's baselines and its knob set reach b by wisdom gossip (a publishes 2 s after its start) */
    int64_t t0 = core_mono_ms();
    mesh_knob_set ks[4];
    int nks = 0;
    bool base = false;
    for (int t = 0; t < DEADLINE_MS && !(base && nks == 1); t += 50) {
        /* each record arrives on its own (a few random ones a round): wait for all */
        base = wisdom_count(b, "baseline", "cell-a", "baseline of memory.used_percent") == 1 &&
               wisdom_count(b, "baseline", "cell-a", "baseline of process.cpu_percent (nginx)") == 1 &&
               wisdom_count(b, "baseline", "cell-a", "service.restarts_per_hour") == 1;
        nks = mesh_cell_knob_sets(b, "postgres", ks, 4);
        if (!(base && nks == 1))
            usleep(50000);
    }
    assert_true(base);
    assert_int_equal(nks, 1);
    print_message("b has a's baselines and knob set %lld ms after its start\n", (long long)(core_mono_ms() - t0));
    assert_string_equal(ks[0].from, "cell-a");
    assert_string_equal(ks[0].service, "postgres");
    assert_string_equal(ks[0].objective, "postgres.fitness");
    assert_int_equal(ks[0].nknobs, 2);
    assert_string_equal(ks[0].name[0], "shared_buffers");
    assert_string_equal(ks[0].value[0], "1GB");
    assert_string_equal(ks[0].value[1], "64MB");
    assert_int_equal(ks[0].runs, 6);
    assert_true(ks[0].weight > 0 && ks[0].weight <= 1);
    assert_true(fabs(ks[0].gain - 0.172) < 1e-9);
    assert_int_equal(wisdom_count(b, "knobs", "cell-a", "shared_buffers=1GB"), 1);
    /* nothing refused travels: no record of the host-named process kind, nor of run 2 */
    if (hostkind) {
        char text[64];
        snprintf(text, sizeof text, "(%s)", hostkind);
        assert_int_equal(wisdom_count(b, "baseline", "cell-a", text), 0);
    }
    assert_int_equal(wisdom_count(b, "knobs", "cell-a", "10.0.0.5"), 0);
    /* other service kinds and the cell's own sets are not listed */
    assert_int_equal(mesh_cell_knob_sets(b, "redis", ks, 4), 0);
    assert_int_equal(mesh_cell_knob_sets(a, "postgres", ks, 4), 0);
    assert_int_equal(mesh_cell_knob_sets(b, "postgres", NULL, 1), -EINVAL);

    mesh_cell_free(b);
    mesh_cell_free(a);
    mem_close(mem);
    core_config_free(&ca);
    core_config_free(&cb);
    rmrf(fleet);
    rmrf(da);
    rmrf(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stats),
        cmocka_unit_test(baselines_from_memory),
        cmocka_unit_test(knobs_from_runs),
        cmocka_unit_test(change_hash),
        cmocka_unit_test(two_cells),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
