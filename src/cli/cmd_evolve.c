/* cmd_evolve.c: `ippoc evolve run|status|stop` (experiment runs: POST
 * /v1/evolve/runs, GET /v1/evolve[/runs/ID], POST /v1/evolve/runs/ID/stop)
 * and the table of evolve subcommands ("code" and "accept" live in
 * cmd_evolve_code.c, "watch" in cmd_genome.c; each gets argv[0] = its name). `run` sends the space file's text, then follows the
 * run, printing one line per decided candidate until it ends. */
#include "cli/cli.h"
#include "core/core.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CUT 60

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static char *read_file(const char *path)
{
    char *buf = core_slurp(path, NULL);
    if (!buf)
        fprintf(stderr, "ippoc: evolve run: %s: %s\n", path, strerror(errno));
    return buf;
}

/* "2%", "0.02" -> 0.02 */
static int parse_gain(const char *val, double *out)
{
    char *end;
    double v = strtod(val, &end);
    if (end == val || (*end && strcmp(end, "%")) || !(v >= 0)) {
        fprintf(stderr, "ippoc: --min-gain: bad gain '%s' (expected e.g. 2%% or 0.02)\n", val);
        return CLI_EXIT_USAGE;
    }
    *out = *end ? v / 100 : v;
    return CLI_EXIT_OK;
}

/* "k=v k2=v2" from a values object. */
static void values_text(const json_t *vals, char *buf, size_t n)
{
    size_t at = 0;
    const char *k;
    json_t *v;
    buf[0] = 0;
    json_object_foreach((json_t *)vals, k, v)
    {
        if (at >= n)
            break;
        at += (size_t)snprintf(buf + at, n - at, "%s%s=%s", at ? " " : "", k,
                               json_is_string(v) ? json_string_value(v) : "-");
    }
}

static void fitness_text(const json_t *t, char *buf, size_t n)
{
    const json_t *f = json_object_get(t, "fitness");
    double med = cli_jnum(t, "median", NAN);
    if (!isfinite(med) && json_array_size(f)) {
        /* still running: the last measurement */
        med = json_number_value(json_array_get(f, json_array_size(f) - 1));
    }
    if (!isfinite(med)) {
        snprintf(buf, n, "-");
        return;
    }
    snprintf(buf, n, "%.6g (n=%zu)", med, json_array_size(f));
}

static void decision_text(const json_t *t, char *buf, size_t n)
{
    const char *d = cli_jstr(t, "decision", "?"), *why = cli_jstr(t, "reason", "");
    char full[1024];
    if (!strcmp(d, "accepted"))
        snprintf(full, sizeof full, "accepted %s", why);
    else if (*why && strcmp(d, "pending"))
        snprintf(full, sizeof full, "%s: %s", d, why);
    else
        snprintf(full, sizeof full, "%s", d);
    cli_fmt_cut(full, 120, buf, n);
}

static void trial_line(const json_t *t)
{
    char vals[512], fit[64], dec[600], proposer[160];
    values_text(json_object_get(t, "values"), vals, sizeof vals);
    fitness_text(t, fit, sizeof fit);
    decision_text(t, dec, sizeof dec);
    snprintf(proposer, sizeof proposer, "%s (%s)", cli_jstr(t, "proposer", "?"), cli_jstr(t, "why", ""));
    printf("trial %d  %s  %s  fitness %s vs %.6g  %s\n", (int)cli_jnum(t, "n", 0), proposer, vals, fit,
           cli_jnum(t, "incumbent_median", NAN), dec);
}

static bool finished(const json_t *run)
{
    return strcmp(cli_jstr(run, "status", "running"), "running") != 0;
}

static void run_footer(const json_t *run)
{
    char vals[512];
    values_text(json_object_get(json_object_get(run, "incumbent"), "values"), vals, sizeof vals);
    printf("run %s %s: %zu trials, %zu accepted; incumbent %s\n", cli_jstr(run, "id", "?"),
           cli_jstr(run, "status", "?"), json_array_size(json_object_get(run, "trials")),
           json_array_size(json_object_get(run, "accepted")), vals);
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(run, "accepted"), i, a)
        printf("accepted trial %d: %s commit %s\n", (int)cli_jnum(a, "trial", 0), cli_jstr(a, "fitness", ""),
               cli_jstr(a, "commit", "(none)"));
    if (cli_jstr(run, "error", NULL))
        printf("error: %s\n", cli_jstr(run, "error", ""));
    const json_t *ap = json_object_get(run, "applied");
    if (ap) {
        const char *v = cli_jstr(ap, "verdict", "?");
        const char *e = cli_jstr(ap, "error", "");
        printf("apply %.12s through the safety policy: %s%s%s\n", cli_jstr(ap, "commit", "?"),
               !strcmp(v, "execute") ? "applied, on probation ('ippoc evolve watch')"
               : !strcmp(v, "queue") ? "queued for approval ('ippoc pending')"
                                     : v,
               *e ? ": " : "", e);
    }
}

/* Polls the run, printing each candidate once it is decided (with --json:
 * only the run's final JSON). */
static int follow(const cli_ctx *ctx, const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/evolve/runs/%s", id);
    size_t printed = 0;
    struct sigaction sa = {.sa_handler = on_sigint}, old;
    sigaction(SIGINT, &sa, &old);
    int rc = CLI_EXIT_OK;
    for (;;) {
        json_t *run;
        rc = cli_http_get_json(ctx, path, &run, NULL);
        if (rc != CLI_EXIT_OK)
            break;
        json_t *trials = json_object_get(run, "trials");
        while (!ctx->json && printed < json_array_size(trials)) {
            json_t *t = json_array_get(trials, printed);
            if (!strcmp(cli_jstr(t, "decision", "pending"), "pending"))
                break;
            trial_line(t);
            printed++;
        }
        fflush(stdout);
        bool done = finished(run);
        if (done) {
            if (ctx->json)
                cli_print_json(run);
            else
                run_footer(run);
            rc = !strcmp(cli_jstr(run, "status", ""), "failed") ? CLI_EXIT_API : CLI_EXIT_OK;
        }
        json_decref(run);
        if (done)
            break;
        if (interrupted) {
            fprintf(ctx->json ? stderr : stdout,
                    "run %s goes on in ippocd: 'ippoc evolve status %s', 'ippoc evolve stop %s'\n", id, id, id);
            break;
        }
        struct timespec ts = {0, 300 * 1000000L};
        nanosleep(&ts, NULL);
    }
    sigaction(SIGINT, &old, NULL);
    return rc;
}

static int evolve_run(const cli_ctx *ctx0, int argc, char **argv)
{
    cli_ctx ctx = *ctx0;
    cli_args a;
    cli_args_init(&a, "evolve", argc, argv);
    const char *space = NULL, *fitness = NULL, *budget = NULL, *repeats = NULL, *gain = NULL, *seed = NULL,
               *alpha = NULL;
    bool apply = false, detach = false;
    while (cli_args_next(&a)) {
        int r = 0;
        if (cli_args_is_help(&a))
            return cli_args_help(&a);
        if (cli_args_flag(&a, "--json"))
            ctx.json = true;
        else if (cli_args_flag(&a, "--apply"))
            apply = true;
        else if (cli_args_flag(&a, "--detach"))
            detach = true;
        else if ((r = cli_args_value(&a, "--space", &space)) || (r = cli_args_value(&a, "--fitness", &fitness)) ||
                 (r = cli_args_value(&a, "--budget", &budget)) || (r = cli_args_value(&a, "--repeats", &repeats)) ||
                 (r = cli_args_value(&a, "--min-gain", &gain)) || (r = cli_args_value(&a, "--seed", &seed)) ||
                 (r = cli_args_value(&a, "--alpha", &alpha))) {
            if (r < 0)
                return CLI_EXIT_USAGE;
        } else {
            return cli_args_bad(&a);
        }
    }
    if (!space) {
        fprintf(stderr, "ippoc: evolve run: --space FILE is required (see 'ippoc help evolve')\n");
        return CLI_EXIT_USAGE;
    }
    json_t *body = json_object();
    int64_t ms;
    long n;
    double g;
    if (budget) {
        if (cli_check_duration("--budget", budget, &ms) != CLI_EXIT_OK)
            goto usage;
        json_object_set_new(body, "budget_s", json_real((double)ms / 1000));
    }
    if (repeats) {
        if (cli_check_int("--repeats", repeats, 3, 1000, &n) != CLI_EXIT_OK)
            goto usage;
        json_object_set_new(body, "repeats", json_integer(n));
    }
    if (seed) {
        if (cli_check_int("--seed", seed, 0, 2147483647L, &n) != CLI_EXIT_OK)
            goto usage;
        json_object_set_new(body, "seed", json_integer(n));
    }
    if (gain) {
        if (parse_gain(gain, &g) != CLI_EXIT_OK)
            goto usage;
        json_object_set_new(body, "min_gain", json_real(g));
    }
    if (alpha) {
        char *end;
        g = strtod(alpha, &end);
        if (end == alpha || *end || !(g > 0 && g <= 0.5)) {
            fprintf(stderr, "ippoc: --alpha: bad level '%s' (expected e.g. 0.05)\n", alpha);
            goto usage;
        }
        json_object_set_new(body, "alpha", json_real(g));
    }
    char *text = read_file(space);
    if (!text) {
        json_decref(body);
        return CLI_EXIT_USAGE;
    }
    json_object_set_new(body, "space_text", json_string(text));
    free(text);
    json_object_set_new(body, "space_path", json_string(space));
    if (fitness)
        json_object_set_new(body, "fitness", json_string(fitness));
    json_object_set_new(body, "apply", json_boolean(apply));
    json_t *ans = NULL;
    int rc = cli_http_post_obj(&ctx, "/v1/evolve/runs", body, &ans);
    if (rc != CLI_EXIT_OK)
        return rc;
    char id[64];
    snprintf(id, sizeof id, "%s", cli_jstr(ans, "id", "?"));
    if (ctx.json && detach)
        cli_print_json(ans);
    json_decref(ans);
    if (detach) {
        if (!ctx.json)
            printf("%s\n", id);
        return CLI_EXIT_OK;
    }
    if (!ctx.json)
        printf("run %s started: 'ippoc evolve status %s' shows it, 'ippoc evolve stop %s' stops it\n", id, id, id);
    fflush(stdout);
    return follow(&ctx, id);
usage:
    json_decref(body);
    return CLI_EXIT_USAGE;
}

static void print_runs(const cli_ctx *ctx, const json_t *ans)
{
    (void)ctx;
    const json_t *runs = json_object_get(ans, "runs");
    if (!json_array_size(runs)) {
        printf("no experiment runs yet: 'ippoc evolve run --space FILE --fitness CMD' starts one\n");
        return;
    }
    static const char *const hdr[] = {"ID", "SPACE", "STATUS", "STARTED", "TRIALS", "ACCEPTED", "INCUMBENT"};
    cli_table t;
    cli_table_init(&t, 7, hdr);
    size_t i;
    json_t *r;
    json_array_foreach(runs, i, r) {
        char when[48], trials[16], acc[16], vals[512], inc[CUT * 4 + 8];
        cli_fmt_time((int64_t)cli_jnum(r, "started_ms", 0), when, sizeof when);
        snprintf(trials, sizeof trials, "%d", (int)cli_jnum(r, "trials", 0));
        snprintf(acc, sizeof acc, "%d", (int)cli_jnum(r, "accepted", 0));
        values_text(json_object_get(json_object_get(r, "incumbent"), "values"), vals, sizeof vals);
        cli_fmt_cut(vals, CUT, inc, sizeof inc);
        const char *cells[] = {cli_jstr(r, "id", "?"), cli_jstr(r, "space", "?"), cli_jstr(r, "status", "?"),
                               when, trials, acc, inc};
        cli_table_row(&t, cells);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

static void print_run(const cli_ctx *ctx, const json_t *run)
{
    (void)ctx;
    char when[48], budget[32];
    cli_fmt_time((int64_t)cli_jnum(run, "started_ms", 0), when, sizeof when);
    cli_fmt_duration((int64_t)(cli_jnum(run, "budget_s", 0) * 1000), budget, sizeof budget);
    printf("run %s: space %s (%s), %s, started %s, budget %s, %d measurements\n", cli_jstr(run, "id", "?"),
           cli_jstr(run, "space", "?"), cli_jstr(run, "space_path", ""), cli_jstr(run, "status", "?"), when, budget,
           (int)cli_jnum(run, "measurements", 0));
    printf("fitness: %s (goal %s)\n", cli_jstr(run, "fitness", "?"), cli_jstr(run, "goal", "max"));
    char vals[512];
    values_text(json_object_get(json_object_get(run, "baseline"), "values"), vals, sizeof vals);
    printf("baseline: %s\n", vals);
    static const char *const hdr[] = {"TRIAL", "PROPOSER", "VALUES", "FITNESS", "INCUMBENT", "VERDICT", "DECISION"};
    cli_table t;
    cli_table_init(&t, 7, hdr);
    size_t i;
    json_t *tr;
    json_array_foreach(json_object_get(run, "trials"), i, tr) {
        char n[16], prop[200], v[CUT * 4 + 8], fit[64], inc[32], dec[600];
        snprintf(n, sizeof n, "%d", (int)cli_jnum(tr, "n", 0));
        char full[300];
        snprintf(full, sizeof full, "%s (%s)", cli_jstr(tr, "proposer", "?"), cli_jstr(tr, "why", ""));
        cli_fmt_cut(full, 28, prop, sizeof prop);
        values_text(json_object_get(tr, "values"), vals, sizeof vals);
        cli_fmt_cut(vals, CUT, v, sizeof v);
        fitness_text(tr, fit, sizeof fit);
        double im = cli_jnum(tr, "incumbent_median", NAN);
        snprintf(inc, sizeof inc, isfinite(im) ? "%.6g" : "-", im);
        decision_text(tr, dec, sizeof dec);
        const char *cells[] = {n, prop, v, fit, inc, cli_jstr(tr, "verdict", "-"), dec};
        cli_table_row(&t, cells);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
    run_footer(run);
}

static int evolve_status(const cli_ctx *ctx0, int argc, char **argv)
{
    cli_ctx ctx = *ctx0;
    cli_args a;
    cli_args_init(&a, "evolve", argc, argv);
    const char *id = NULL;
    int rc = cli_args_simple(&a, &ctx, &id, NULL);
    if (rc < 0)
        return cli_args_help(&a);
    if (rc != CLI_EXIT_OK)
        return rc;
    char path[128];
    if (id && (strlen(id) > 32 || strpbrk(id, "/?#% "))) {
        fprintf(stderr, "ippoc: evolve status: '%s' is not a run id (see 'ippoc evolve status')\n", id);
        return CLI_EXIT_USAGE;
    }
    snprintf(path, sizeof path, id ? "/v1/evolve/runs/%s" : "/v1/evolve/runs", id);
    json_t *ans;
    if ((rc = cli_http_get_json(&ctx, path, &ans, NULL)) != CLI_EXIT_OK)
        return rc;
    if (ctx.json)
        cli_print_json(ans);
    else if (id)
        print_run(&ctx, ans);
    else
        print_runs(&ctx, ans);
    json_decref(ans);
    return CLI_EXIT_OK;
}

static int evolve_stop(const cli_ctx *ctx0, int argc, char **argv)
{
    cli_ctx ctx = *ctx0;
    cli_args a;
    cli_args_init(&a, "evolve", argc, argv);
    const char *id = NULL;
    int rc = cli_args_simple(&a, &ctx, &id, "ID");
    if (rc < 0)
        return cli_args_help(&a);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (strlen(id) > 32 || strpbrk(id, "/?#% ")) {
        fprintf(stderr, "ippoc: evolve stop: '%s' is not a run id (see 'ippoc evolve status')\n", id);
        return CLI_EXIT_USAGE;
    }
    char path[128], done[96];
    snprintf(path, sizeof path, "/v1/evolve/runs/%s/stop", id);
    snprintf(done, sizeof done, "run %s stops after its current trial", id);
    return cli_http_post_done(&ctx, path, done);
}

int cmd_evolve(const cli_ctx *ctx, int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(const cli_ctx *ctx, int argc, char **argv);
    } subs[] = {
        {"run", evolve_run},         {"status", evolve_status},       {"stop", evolve_stop},
        {"code", cmd_evolve_code},   {"accept", cmd_evolve_accept},   {"watch", cmd_evolve_watch},
    };
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        cli_help_command("evolve", argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (!strcmp(argv[1], subs[i].name))
            return subs[i].fn(ctx, argc - 1, argv + 1);
    fprintf(stderr, "ippoc: evolve: unknown subcommand '%s' (run, status, stop, watch, code, accept)\n", argv[1]);
    return CLI_EXIT_USAGE;
}
