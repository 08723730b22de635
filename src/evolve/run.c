/* run.c: experiment runs (docs/evolve.md "Experiments"). A run is a thread:
 * it reads the knobs' current values (the incumbent), then for each
 * candidate (TPE, and every third from the cell's model when it has one)
 * writes the knob files, runs the apply commands and the fitness command in
 * the sandbox, interleaved with fresh incumbent trials (ABBA), races a
 * promising candidate and accepts it only on a significant gain confirmed by
 * a fresh batch; an accepted candidate becomes the incumbent and a genome
 * commit. The run's state is STATE/evolve/runs/ID.json, saved after every
 * trial. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evolve/run_int.h"
#include "llm/llm.h"

extern char **environ;

#define MAX_ARGS 64
#define MAX_SAMPLES 4096

struct evolve_run {
    struct evolve_runs *rs;
    char id[32];
    json_t *doc;                   /* guarded by rs->mu */
    pthread_t th;
    bool has_thread;
    atomic_bool stop;
    evolve_run_params p;
    evolve_space sp;
    int64_t t0;
    /* the knob files: path, original content (NULL: did not exist) */
    int nfiles;
    char files[EVOLVE_MAX_KNOBS][EVOLVE_TEXT];
    char *orig[EVOLVE_MAX_KNOBS];
    size_t orig_len[EVOLVE_MAX_KNOBS];
    bool written;                  /* a knob file was changed */
    double cur[EVOLVE_MAX_KNOBS];  /* the values last written (NaN: original) */
    double inc[EVOLVE_MAX_KNOBS];  /* the incumbent */
    double pool[MAX_SAMPLES];      /* incumbent measurements, pooled */
    int npool;
    double trial_ms;               /* mean wall time of a trial */
    int ntrials;
    long order;                    /* ABBA position */
    int inc_failed;                /* incumbent trials failed in a row */
    char commit[41];               /* the last accepted commit ("" when not committed) */
    bool accepted;                 /* the incumbent is an accepted candidate */
    evolve_run *next;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- state ---- */

static void doc_set(evolve_run *r, const char *key, json_t *v)
{
    pthread_mutex_lock(&r->rs->mu);
    json_object_set_new(r->doc, key, v);
    pthread_mutex_unlock(&r->rs->mu);
}

/* Knob files keep their mode and owner (a restored postgres conf.d file
 * stays postgres'). */
static int write_whole(const char *path, const char *data, size_t len)
{
    char err[256];
    return core_write_atomic(path, data, len, err, sizeof err);
}

static void run_save(evolve_run *r)
{
    pthread_mutex_lock(&r->rs->save_mu);
    pthread_mutex_lock(&r->rs->mu);
    json_object_set_new(r->doc, "updated_ms", json_integer(now_ms()));
    char *s = json_dumps(r->doc, JSON_INDENT(1));
    pthread_mutex_unlock(&r->rs->mu);
    if (!s) {
        pthread_mutex_unlock(&r->rs->save_mu);
        return;
    }
    char path[4400];
    snprintf(path, sizeof path, "%s/%s.json", r->rs->dir, r->id);
    int rc = write_whole(path, s, strlen(s));
    if (rc)
        log_warn("evolve: run %s: cannot save %s: %s", r->id, path, strerror(-rc));
    pthread_mutex_unlock(&r->rs->save_mu);
    free(s);
}

static json_t *values_json(const evolve_space *s, const double *x)
{
    json_t *o = json_object();
    for (int i = 0; i < s->nknobs; i++) {
        char buf[128];
        evolve_knob_format(&s->knobs[i], x[i], buf, sizeof buf);
        json_object_set_new(o, s->knobs[i].name, isfinite(x[i]) ? json_string(buf) : json_null());
    }
    return o;
}

static void values_text(const evolve_space *s, const double *x, char *buf, size_t n)
{
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; i < s->nknobs && at < n; i++) {
        char v[128];
        evolve_knob_format(&s->knobs[i], x[i], v, sizeof v);
        at += (size_t)snprintf(buf + at, n - at, "%s%s=%s", i ? " " : "", s->knobs[i].name, v);
    }
}

/* ---- commands ---- */

/* Splits cmd on blanks; '...' and "..." quote. 0 or -EINVAL. */
static int split_argv(const char *cmd, char *store, size_t storelen, char **argv, int max)
{
    int n = 0;
    size_t at = 0;
    const char *p = cmd;
    while (*p) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        if (n >= max - 1)
            return -E2BIG;
        argv[n++] = store + at;
        while (*p && !isspace((unsigned char)*p)) {
            if (*p == '\'' || *p == '"') {
                char q = *p++;
                while (*p && *p != q) {
                    if (at + 1 >= storelen)
                        return -E2BIG;
                    store[at++] = *p++;
                }
                if (*p != q)
                    return -EINVAL;
                p++;
            } else {
                if (at + 1 >= storelen)
                    return -E2BIG;
                store[at++] = *p++;
            }
        }
        store[at++] = 0;
    }
    argv[n] = NULL;
    return n ? 0 : -EINVAL;
}

/* Without the sandbox (not built here): the command runs directly, with the
 * same deadline and output limit. */
static int run_direct(const evolve_sandbox_opts *o, evolve_sandbox_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    char tail[512];
    evolve_exec_opts eo = {.argv = o->argv,
                           .timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 300000,
                           .out_max = o->out_max ? o->out_max : 1 << 20,
                           .tail = tail,
                           .taillen = sizeof tail};
    evolve_exec_res x;
    int rc = evolve_exec(&eo, &x);
    if (rc < 0)
        return rc;
    int st = x.status;
    bool timed_out = x.timed_out;
    res->wall_ms = x.wall_ms;
    res->out = x.out;
    res->out_len = x.out_len;
    if (!timed_out && WIFEXITED(st) && WEXITSTATUS(st) == 127 && !strncmp(tail, "cannot run ", 11)) {
        res->verdict = EVOLVE_SBX_ERROR;
        snprintf(res->detail, sizeof res->detail, "%.*s", (int)strcspn(tail + 11, "\n"), tail + 11);
        return 0;
    }
    if (timed_out) {
        res->verdict = EVOLVE_SBX_TIMEOUT;
        snprintf(res->detail, sizeof res->detail, "killed at the deadline (%lld ms)", (long long)o->timeout_ms);
    } else if (WIFEXITED(st)) {
        res->exit_code = WEXITSTATUS(st);
        res->verdict = res->exit_code ? EVOLVE_SBX_FAILED : EVOLVE_SBX_OK;
        if (res->exit_code)
            snprintf(res->detail, sizeof res->detail, "exit %d", res->exit_code);
    } else {
        res->signal = WTERMSIG(st);
        res->verdict = EVOLVE_SBX_FAILED;
        snprintf(res->detail, sizeof res->detail, "killed by signal %d", res->signal);
    }
    (void)err;
    (void)errlen;
    return 0;
}

/* Runs cmd in the sandbox with the space's limits (directly when the sandbox
 * is not built); *direct says which (its result is freed differently). */
static int run_cmd(evolve_run *r, const char *cmd, evolve_sandbox_result *res, bool *direct, char *err,
                   size_t errlen)
{
    char store[EVOLVE_TEXT * 2];
    char *argv[MAX_ARGS];
    if (split_argv(cmd, store, sizeof store, argv, MAX_ARGS)) {
        snprintf(err, errlen, "bad command '%s' (unbalanced quote or too long)", cmd);
        return -EINVAL;
    }
    const char *writable[EVOLVE_MAX_KNOBS + EVOLVE_MAX_PATHS];
    char dirs[EVOLVE_MAX_KNOBS][EVOLVE_TEXT];
    int nw = 0;
    for (int i = 0; i < r->nfiles; i++) {
        snprintf(dirs[i], sizeof dirs[i], "%s", r->files[i]);
        char *slash = strrchr(dirs[i], '/');
        if (slash && slash != dirs[i])
            *slash = 0;
        writable[nw++] = dirs[i];
    }
    for (int i = 0; i < r->sp.nwritable; i++)
        writable[nw++] = r->sp.writable[i];
    evolve_sandbox_opts o = {
        .argv = (const char *const *)argv,
        .writable = writable,
        .nwritable = nw,
        .network = r->sp.network,
        .timeout_ms = r->sp.trial_timeout_ms,
        .memory_bytes = r->sp.memory_bytes,
        .cpu_percent = r->sp.cpu_percent,
        .shim = r->rs->c->o.shim,
    };
    *direct = false;
    int rc = evolve_sandbox_run(&o, res, err, errlen);
    if (rc == -ENOSYS) {
        *direct = true;
        rc = run_direct(&o, res, err, errlen);
    }
    return rc;
}

static void result_free(evolve_sandbox_result *res, bool direct)
{
    if (direct) {
        free(res->out);
        free(res->err_tail);
        memset(res, 0, sizeof *res);
    } else {
        evolve_sandbox_result_free(res);
    }
}

/* A helper command (apply, revert): its failure is an error of the run. */
static int run_helper(evolve_run *r, const char *what, const char *cmd, char *err, size_t errlen)
{
    if (!cmd[0])
        return 0;
    evolve_sandbox_result res;
    bool direct;
    char e[512] = "";
    int rc = run_cmd(r, cmd, &res, &direct, e, sizeof e);
    if (rc) {
        snprintf(err, errlen, "%s '%s': %s", what, cmd, e);
        return rc;
    }
    if (res.verdict != EVOLVE_SBX_OK) {
        snprintf(err, errlen, "%s '%s': %s %s", what, cmd, evolve_sbx_verdict_name(res.verdict), res.detail);
        rc = -ECHILD; /* the command failed (not the run's own doing) */
    }
    result_free(&res, direct);
    return rc;
}

/* The last number in text. */
static bool last_number(const char *text, double *v)
{
    bool found = false;
    for (const char *p = text; p && *p;) {
        bool start = (isdigit((unsigned char)*p) || ((*p == '-' || *p == '+' || *p == '.') &&
                                                     (isdigit((unsigned char)p[1]) || p[1] == '.'))) &&
                     (p == text || (!isalnum((unsigned char)p[-1]) && p[-1] != '.' && p[-1] != '_'));
        if (start) {
            char *end;
            double x = strtod(p, &end);
            if (end > p) {
                if (isfinite(x)) {
                    *v = x;
                    found = true;
                }
                p = end;
                continue;
            }
        }
        p++;
    }
    return found;
}

/* ---- knob files ---- */

static int restore_files(evolve_run *r, char *err, size_t errlen)
{
    for (int i = 0; i < r->nfiles; i++) {
        int rc;
        if (r->orig[i])
            rc = write_whole(r->files[i], r->orig[i], r->orig_len[i]);
        else
            rc = unlink(r->files[i]) && errno != ENOENT ? -errno : 0;
        if (rc) {
            snprintf(err, errlen, "%s: cannot restore: %s", r->files[i], strerror(-rc));
            return rc;
        }
    }
    for (int i = 0; i < r->sp.nknobs; i++)
        r->cur[i] = NAN;
    return 0;
}

static bool same(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

/* Writes x to the knob files (from their original text when x leaves a knob
 * unset) and runs the apply commands of what changed. */
static int set_values(evolve_run *r, const double *x, char *err, size_t errlen)
{
    bool changed[EVOLVE_MAX_KNOBS] = {0}, any = false, unset = false;
    for (int i = 0; i < r->sp.nknobs; i++) {
        changed[i] = !same(x[i], r->cur[i]);
        any |= changed[i];
        unset |= isnan(x[i]);
    }
    if (!any)
        return 0;
    r->written = true;
    int rc = unset ? restore_files(r, err, errlen) : 0;
    for (int f = 0; !rc && f < r->nfiles; f++)
        rc = evolve_space_write_file(&r->sp, r->files[f], x, err, errlen);
    if (rc)
        return rc;
    for (int i = 0; i < r->sp.nknobs; i++)
        r->cur[i] = x[i];
    for (int i = 0; !rc && i < r->sp.nknobs; i++)
        if (changed[i])
            rc = run_helper(r, "apply", r->sp.knobs[i].apply, err, errlen);
    if (!rc)
        rc = run_helper(r, "apply", r->sp.apply, err, errlen);
    return rc;
}

/* ---- measurements ---- */

typedef struct trial_out {
    double y;                      /* the fitness as measured */
    char verdict[16];
    char detail[EVOLVE_TEXT];
    int64_t wall_ms;
} trial_out;

/* One trial of x: 0 with t->y, 1 when it was killed or printed no positive
 * number (t->verdict, t->detail), -errno when it could not run (err). */
static int measure(evolve_run *r, const double *x, trial_out *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    int rc = set_values(r, x, err, errlen);
    if (rc == -ECHILD) {
        /* an apply command failed for these values: the trial failed */
        snprintf(t->verdict, sizeof t->verdict, "failed");
        snprintf(t->detail, sizeof t->detail, "%s", err);
        return 1;
    }
    if (rc)
        return rc;
    evolve_sandbox_result res;
    bool direct;
    rc = run_cmd(r, r->p.fitness, &res, &direct, err, errlen);
    if (rc)
        return rc;
    t->wall_ms = res.wall_ms;
    r->trial_ms = (r->trial_ms * r->ntrials + (double)res.wall_ms) / (r->ntrials + 1);
    r->ntrials++;
    snprintf(t->verdict, sizeof t->verdict, "%s", evolve_sbx_verdict_name(res.verdict));
    snprintf(t->detail, sizeof t->detail, "%s", res.detail);
    if (res.verdict == EVOLVE_SBX_OK) {
        if (!last_number(res.out, &t->y) || !(t->y > 0)) {
            snprintf(t->verdict, sizeof t->verdict, "failed");
            snprintf(t->detail, sizeof t->detail, "no positive number on its output");
            rc = 1;
        }
    } else {
        rc = 1;
    }
    result_free(&res, direct);
    pthread_mutex_lock(&r->rs->mu);
    json_int_t done = json_integer_value(json_object_get(r->doc, "measurements"));
    json_object_set_new(r->doc, "measurements", json_integer(done + 1));
    pthread_mutex_unlock(&r->rs->mu);
    return rc;
}

/* Higher is better for the statistics. */
static double score(const evolve_run *r, double y)
{
    return r->sp.minimize ? 1.0 / y : y;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    if (n <= 0)
        return NAN;
    double *tmp = malloc(sizeof *tmp * (size_t)n);
    if (!tmp)
        return NAN;
    memcpy(tmp, v, sizeof *tmp * (size_t)n);
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_double);
    double m = n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
    free(tmp);
    return m;
}

/* The test when stats.c is not built: Mann-Whitney U (normal approximation)
 * and the Hodges-Lehmann gain, without an interval (lo = hi = gain). */
static int plain_test(const double *b, int nb, const double *c, int nc, evolve_test *t)
{
    if (nb < 2 || nc < 2)
        return -EINVAL;
    double u = 0;
    double *d = malloc(sizeof *d * (size_t)nb * (size_t)nc);
    if (!d)
        return -ENOMEM;
    int k = 0;
    for (int i = 0; i < nb; i++)
        for (int j = 0; j < nc; j++) {
            u += c[j] > b[i] ? 1 : c[j] == b[i] ? 0.5 : 0;
            d[k++] = log(c[j]) - log(b[i]);
        }
    double mu = nb * nc / 2.0, sd = sqrt(nb * nc * (nb + nc + 1) / 12.0);
    double z = (u - mu - 0.5) / sd;
    *t = (evolve_test){.u = u, .p = 0.5 * erfc(z / sqrt(2)), .n_base = nb, .n_cand = nc};
    t->gain = exp(median(d, k)) - 1;
    t->lo = t->hi = t->gain;
    t->median_base = median(b, nb);
    t->median_cand = median(c, nc);
    free(d);
    return 0;
}

static int test(evolve_run *r, const double *b, int nb, const double *c, int nc, evolve_test *t)
{
    double sb[MAX_SAMPLES], sc[MAX_SAMPLES];
    for (int i = 0; i < nb; i++)
        sb[i] = score(r, b[i]);
    for (int i = 0; i < nc; i++)
        sc[i] = score(r, c[i]);
    int rc = evolve_stats_test(sb, nb, sc, nc, 0.95, t);
    if (rc == -ENOSYS)
        rc = plain_test(sb, nb, sc, nc, t);
    return rc;
}

static json_t *test_json(const evolve_test *t)
{
    return json_pack("{s:f,s:f,s:f,s:f,s:i,s:i}", "p", t->p, "gain", t->gain, "lo", t->lo, "hi", t->hi, "n_base",
                     t->n_base, "n_cand", t->n_cand);
}

/* ---- one candidate ---- */

typedef struct cand {
    double x[EVOLVE_MAX_KNOBS];
    double s[MAX_SAMPLES];         /* its measurements */
    int n;
    double cb[MAX_SAMPLES / 4], cc[MAX_SAMPLES / 4]; /* the confirmation batch */
    int ncb, ncc;
    json_t *trial;                 /* its record in the doc (borrowed) */
    bool killed;
} cand;

enum { PAIR_OK = 0, PAIR_KILLED = 1, PAIR_STOP = 2 };

/* One interleaved pair (ABBA order). PAIR_KILLED when the candidate's trial
 * was killed; -errno when the run cannot go on (the incumbent failed). */
static int pair(evolve_run *r, cand *k, bool confirm, char *err, size_t errlen)
{
    bool inc_first = (r->order++ % 2) == 0;
    trial_out ti, tc;
    for (int step = 0; step < 2; step++) {
        bool is_inc = (step == 0) == inc_first;
        int rc = measure(r, is_inc ? r->inc : k->x, is_inc ? &ti : &tc, err, errlen);
        if (rc < 0)
            return rc;
        if (is_inc && rc) {
            /* a flaky incumbent trial is recorded and skipped; three in a row end the run */
            pthread_mutex_lock(&r->rs->mu);
            json_t *f = json_object_get(k->trial, "incumbent_failures");
            if (!f)
                json_object_set_new(k->trial, "incumbent_failures", f = json_array());
            json_array_append_new(f, json_pack("{s:s,s:s}", "verdict", ti.verdict, "detail", ti.detail));
            pthread_mutex_unlock(&r->rs->mu);
            if (++r->inc_failed >= 3) {
                snprintf(err, errlen, "the incumbent's trial failed 3 times in a row: %s %s", ti.verdict,
                         ti.detail);
                return -EIO;
            }
            continue;
        }
        if (is_inc)
            r->inc_failed = 0;
        pthread_mutex_lock(&r->rs->mu);
        json_t *arr = json_object_get(k->trial, is_inc ? "incumbent_fitness" : "fitness");
        if (!rc)
            json_array_append_new(arr, json_real(is_inc ? ti.y : tc.y));
        if (!is_inc) {
            json_object_set_new(k->trial, "verdict", json_string(tc.verdict));
            if (rc)
                json_object_set_new(k->trial, "detail", json_string(tc.detail));
        }
        pthread_mutex_unlock(&r->rs->mu);
        if (!is_inc && rc) {
            k->killed = true;
            run_save(r);
            return PAIR_KILLED;
        }
        if (is_inc) {
            if (r->npool < MAX_SAMPLES)
                r->pool[r->npool++] = ti.y;
            if (confirm && k->ncb < MAX_SAMPLES / 4)
                k->cb[k->ncb++] = ti.y;
        } else {
            if (k->n < MAX_SAMPLES)
                k->s[k->n++] = tc.y;
            if (confirm && k->ncc < MAX_SAMPLES / 4)
                k->cc[k->ncc++] = tc.y;
        }
        if (atomic_load(&r->stop))
            break; /* stop after the current trial */
    }
    run_save(r);
    return atomic_load(&r->stop) ? PAIR_STOP : PAIR_OK;
}

static void decide(evolve_run *r, cand *k, const char *decision, const char *reason, const evolve_test *t)
{
    pthread_mutex_lock(&r->rs->mu);
    json_object_set_new(k->trial, "decision", json_string(decision));
    json_object_set_new(k->trial, "reason", json_string(reason));
    json_object_set_new(k->trial, "median", k->n ? json_real(median(k->s, k->n)) : json_null());
    if (!json_object_get(k->trial, "incumbent_median") || json_is_null(json_object_get(k->trial, "incumbent_median")))
        json_object_set_new(k->trial, "incumbent_median",
                            r->npool ? json_real(median(r->pool, r->npool)) : json_null());
    if (t) {
        json_object_set_new(k->trial, "p", json_real(t->p));
        json_object_set_new(k->trial, "gain", json_real(t->gain));
        json_object_set_new(k->trial, "lo", json_real(t->lo));
        json_object_set_new(k->trial, "hi", json_real(t->hi));
    }
    json_object_set_new(k->trial, "ended_ms", json_integer(now_ms()));
    pthread_mutex_unlock(&r->rs->mu);
    run_save(r);
}

static double elapsed_s(const evolve_run *r)
{
    return (double)(mono_ms() - r->t0) / 1000.0;
}

/* Whether n more trials fit the budget (slack: a racing candidate may go
 * past it by that fraction). */
static bool fits(const evolve_run *r, int n, double slack)
{
    return elapsed_s(r) + n * r->trial_ms / 1000.0 <= r->p.budget_s * (1 + slack);
}

static void gain_text(const evolve_run *r, const evolve_test *t, char *buf, size_t n)
{
    snprintf(buf, n, "%+.1f%% [%+.1f%%, %+.1f%%] p=%.3g%s", 100 * t->gain, 100 * t->lo, 100 * t->hi, t->p,
             r->sp.minimize ? " (goal min: gain of 1/fitness)" : "");
}

static int commit_accepted(evolve_run *r, cand *k, const evolve_test *conf, char *err, size_t errlen);

enum { MEASURED = 3 }; /* next_pair(): go on (evaluate() returns 0..2 or -errno) */

/* One more pair for k in phase ("screening", "racing", "the confirmation"),
 * when the budget fits it (min_frac as fits()): MEASURED when it was, else
 * what evaluate() returns, k decided (t: the race so far, or NULL). */
static int next_pair(evolve_run *r, cand *k, bool confirm, double min_frac, const char *phase, const evolve_test *t,
                     char *err, size_t errlen)
{
    char why[160];
    if (!fits(r, 2, min_frac)) {
        snprintf(why, sizeof why, "the budget ran out %s %s", confirm ? "during" : (min_frac ? "while" : "during"),
                 phase);
        decide(r, k, "unfinished", why, t);
        return 2;
    }
    int rc = pair(r, k, confirm, err, errlen);
    if (rc < 0)
        return rc;
    if (rc == PAIR_KILLED) {
        snprintf(why, sizeof why, "its trial was killed or failed%s", confirm ? " during the confirmation" : "");
        decide(r, k, "killed", why, t);
        return 0;
    }
    if (rc == PAIR_STOP) {
        decide(r, k, "unfinished", "the run was stopped", t);
        return 2;
    }
    return MEASURED;
}

/* Screens, races and confirms candidate k. 1 when accepted, 0 when not,
 * 2 when the run must stop (stopped, out of budget), -errno. */
static int evaluate(evolve_run *r, cand *k, char *err, size_t errlen)
{
    evolve_test t = {0};
    char why[512];
    for (int i = 0; i < 2; i++) {
        int rc = next_pair(r, k, false, 0, "screening", NULL, err, errlen);
        if (rc != MEASURED)
            return rc;
    }
    double mi = median(r->pool, r->npool), mc = median(k->s, k->n);
    double sgain = score(r, mc) / score(r, mi) - 1;
    if (!(sgain > r->p.min_gain / 2)) {
        snprintf(why, sizeof why, "screening: median %+.1f%% is not above half the minimum gain (%+.1f%%)",
                 100 * sgain, 50 * r->p.min_gain);
        decide(r, k, "rejected", why, NULL);
        return 0;
    }
    int high = 0, cap = r->p.repeats;
    for (;;) {
        while (k->n < cap) {
            int rc = next_pair(r, k, false, 0.2, "racing", NULL, err, errlen);
            if (rc != MEASURED)
                return rc;
            if (test(r, r->pool, r->npool, k->s, k->n, &t) == 0) {
                high = t.p > 0.5 ? high + 1 : 0;
                if (high >= 2) {
                    snprintf(why, sizeof why, "racing: p stayed above 0.5 (p=%.3g after %d pairs)", t.p, k->n);
                    decide(r, k, "rejected", why, &t);
                    return 0;
                }
                if (cap > r->p.repeats && t.p < r->p.alpha && t.lo > r->p.min_gain)
                    break; /* the extension has settled it */
            }
        }
        if (test(r, r->pool, r->npool, k->s, k->n, &t)) {
            decide(r, k, "rejected", "too few measurements for the test", NULL);
            return 0;
        }
        /* Promising but not yet shown (noise of 10-16 % hides a real +15 %
         * at 10 pairs one time in three): race on, up to twice as many. */
        bool shown = t.p < r->p.alpha && t.lo > r->p.min_gain;
        if (shown || cap > r->p.repeats || !(t.p < 0.25 && t.gain > r->p.min_gain))
            break;
        cap = 2 * r->p.repeats;
    }
    if (!(t.p < r->p.alpha) || !(t.lo > r->p.min_gain)) {
        snprintf(why, sizeof why,
                 "not significant: p=%.3g (alpha %.3g), gain %+.1f%% [%+.1f%%, %+.1f%%] (minimum %+.1f%%)",
                 t.p, r->p.alpha, 100 * t.gain, 100 * t.lo, 100 * t.hi, 100 * r->p.min_gain);
        decide(r, k, "rejected", why, &t);
        return 0;
    }
    pthread_mutex_lock(&r->rs->mu);
    json_object_set_new(k->trial, "phase", json_string("confirm"));
    json_object_set_new(k->trial, "race", test_json(&t));
    pthread_mutex_unlock(&r->rs->mu);
    int batch = r->p.repeats / 2 < 5 ? 5 : r->p.repeats / 2;
    for (int i = 0; i < batch; i++) {
        int rc = next_pair(r, k, true, 0.2, "the confirmation", &t, err, errlen);
        if (rc != MEASURED)
            return rc;
    }
    evolve_test c;
    if (test(r, k->cb, k->ncb, k->cc, k->ncc, &c) || !(c.p < r->p.alpha)) {
        snprintf(why, sizeof why, "the confirmation batch did not confirm it: p=%.3g", c.p);
        decide(r, k, "rejected", why, &t);
        return 0;
    }
    pthread_mutex_lock(&r->rs->mu);
    json_object_set_new(k->trial, "confirmation", test_json(&c));
    json_object_set_new(k->trial, "incumbent_median", json_real(median(r->pool, r->npool))); /* before it is replaced */
    pthread_mutex_unlock(&r->rs->mu);
    int rc = commit_accepted(r, k, &c, err, errlen);
    if (rc)
        return rc;
    gain_text(r, &c, why, sizeof why);
    decide(r, k, "accepted", why, &t);
    return 1;
}

/* The accepted candidate: the new incumbent, committed to the genome. */
static int commit_accepted(evolve_run *r, cand *k, const evolve_test *conf, char *err, size_t errlen)
{
    for (int i = 0; i < r->sp.nknobs; i++)
        r->inc[i] = k->x[i];
    r->accepted = true;
    /* its measurements now describe the incumbent */
    r->npool = 0;
    for (int i = 0; i < k->n; i++)
        r->pool[r->npool++] = k->s[i];
    evolve_genome *g = r->rs->c->g;
    char fitness[256], reason[1024], vals[700], oid[41] = "";
    gain_text(r, conf, fitness, sizeof fitness);
    values_text(&r->sp, k->x, vals, sizeof vals);
    long n = (long)json_integer_value(json_object_get(k->trial, "n"));
    snprintf(reason, sizeof reason, "evolve run %s, trial %ld: %s (space %s)", r->id, n, vals, r->sp.name);
    evolve_trailer tr = {.kind = "evolve", .author = "ippoc", .reason = reason, .fitness = fitness};
    int rc = 0;
    if (g) {
        /* the space first, then the knob files as they are now (the
         * candidate's values): the last commit names the files changed */
        char gpath[EVOLVE_TEXT + 16], o2[41];
        snprintf(gpath, sizeof gpath, "spaces/%s.space", r->sp.name);
        rc = evolve_genome_write(g, gpath, r->p.space_text, strlen(r->p.space_text), &tr, o2, err, errlen);
        if (rc >= 0)
            snprintf(oid, sizeof oid, "%s", o2);
        rc = rc < 0 ? rc : set_values(r, k->x, err, errlen);
        for (int f = 0; rc >= 0 && f < r->nfiles; f++) {
            size_t len = 0;
            char *buf = core_slurp(r->files[f], &len);
            if (!buf) {
                snprintf(err, errlen, "%s: cannot read it back", r->files[f]);
                free(buf);
                rc = -EIO;
                break;
            }
            snprintf(gpath, sizeof gpath, "%s%s", EVOLVE_GENOME_FILES, r->files[f] + 1);
            rc = evolve_genome_write(g, gpath, buf ? buf : "", len, &tr, o2, err, errlen);
            free(buf);
            if (rc >= 0)
                snprintf(oid, sizeof oid, "%s", o2); /* 1: unchanged, o2 is HEAD */
        }
        rc = rc < 0 ? rc : 0;
    }
    if (rc) {
        char msg[600];
        snprintf(msg, sizeof msg, "accepted but not committed: %s", err);
        pthread_mutex_lock(&r->rs->mu);
        json_object_set_new(k->trial, "commit_error", json_string(msg));
        pthread_mutex_unlock(&r->rs->mu);
        log_warn("evolve: run %s: %s", r->id, msg);
    }
    snprintf(r->commit, sizeof r->commit, "%s", oid);
    pthread_mutex_lock(&r->rs->mu);
    json_object_set_new(k->trial, "commit", oid[0] ? json_string(oid) : json_null());
    json_array_append_new(json_object_get(r->doc, "accepted"),
                          json_pack("{s:I,s:o,s:s,s:o}", "trial", (json_int_t)n, "values", values_json(&r->sp, k->x),
                                    "fitness", fitness, "commit", oid[0] ? json_string(oid) : json_null()));
    json_object_set_new(r->doc, "incumbent",
                        json_pack("{s:o,s:f,s:I}", "values", values_json(&r->sp, r->inc), "median",
                                  median(r->pool, r->npool), "trial", (json_int_t)n));
    pthread_mutex_unlock(&r->rs->mu);
    return 0; /* a failed commit is recorded, not fatal: the result stands */
}

/* ---- the proposers ---- */

/* x snapped to what its text says (what the file will hold), in range. */
static void snap(const evolve_space *s, double *x)
{
    for (int i = 0; i < s->nknobs; i++) {
        const evolve_knob *k = &s->knobs[i];
        double v = x[i] < k->min ? k->min : x[i] > k->max ? k->max : x[i];
        char buf[128], e[64];
        evolve_knob_format(k, v, buf, sizeof buf);
        if (evolve_knob_parse(k, buf, &x[i], e, sizeof e))
            x[i] = v;
    }
}

static bool seen(evolve_run *r, const double *x)
{
    bool dup = true;
    for (int i = 0; i < r->sp.nknobs && dup; i++)
        dup = same(x[i], r->inc[i]);
    if (dup)
        return true;
    json_t *v = values_json(&r->sp, x);
    pthread_mutex_lock(&r->rs->mu);
    json_t *trials = json_object_get(r->doc, "trials");
    size_t i;
    json_t *t;
    bool found = false;
    json_array_foreach(trials, i, t) if (json_equal(json_object_get(t, "values"), v)) found = true;
    pthread_mutex_unlock(&r->rs->mu);
    json_decref(v);
    return found;
}

typedef struct proposal {
    double x[EVOLVE_MAX_KNOBS];
    char proposer[16];
    char why[128];
    json_t *info;                  /* the model's rationale, cites (owned) */
} proposal;

/* The model's candidates are asked in batches and used one every third
 * candidate. */
typedef struct llm_queue {
    double x[4][EVOLVE_MAX_KNOBS];
    json_t *info[4];
    int n, at;
    bool failed;
} llm_queue;

static bool next_llm(evolve_run *r, llm_queue *q, proposal *pr)
{
    if (!llm_available(r->rs->c->o.llm) || q->failed)
        return false;
    if (q->at >= q->n) {
        for (int i = q->at; i < q->n; i++)
            json_decref(q->info[i]);
        q->n = q->at = 0;
        pthread_mutex_lock(&r->rs->mu);
        json_t *hist = json_deep_copy(json_object_get(r->doc, "trials"));
        pthread_mutex_unlock(&r->rs->mu);
        char err[512] = "";
        int n = evolve_propose_llm(r->rs->c, &r->sp, r->inc, hist, q->x, q->info, 4, err, sizeof err);
        json_decref(hist);
        if (n <= 0) {
            if (n < 0) {
                log_warn("evolve: run %s: the model proposed nothing: %s", r->id, err);
                doc_set(r, "llm_error", json_string(err));
                q->failed = n == -ENOENT;
            }
            return false;
        }
        q->n = n;
        /* the whole answer, as validated, before any of it runs */
        json_t *batch = json_array();
        for (int i = 0; i < n; i++) {
            json_t *c = json_deep_copy(q->info[i]);
            json_object_set_new(c, "values", values_json(&r->sp, q->x[i]));
            json_array_append_new(batch, c);
        }
        pthread_mutex_lock(&r->rs->mu);
        json_t *b = json_object_get(r->doc, "llm_batches");
        if (!b)
            json_object_set_new(r->doc, "llm_batches", b = json_array());
        json_array_append_new(b, batch);
        pthread_mutex_unlock(&r->rs->mu);
    }
    memcpy(pr->x, q->x[q->at], sizeof pr->x);
    pr->info = q->info[q->at];
    q->info[q->at++] = NULL;
    snprintf(pr->proposer, sizeof pr->proposer, "llm");
    snprintf(pr->why, sizeof pr->why, "model");
    return true;
}

static bool propose(evolve_run *r, evolve_tpe *tpe, llm_queue *q, int n, proposal *pr)
{
    memset(pr, 0, sizeof *pr);
    if (n % 3 == 0) {
        for (int tries = 0; tries < 4 && next_llm(r, q, pr); tries++) {
            snap(&r->sp, pr->x);
            if (!seen(r, pr->x))
                return true;
            /* nothing new: recorded, not run */
            pthread_mutex_lock(&r->rs->mu);
            json_t *d = json_object_get(r->doc, "llm_discarded");
            if (!d)
                json_object_set_new(r->doc, "llm_discarded", d = json_array());
            json_array_append_new(d, json_pack("{s:o,s:O,s:s}", "values", values_json(&r->sp, pr->x), "info",
                                               pr->info, "why", "the incumbent or a value tried before"));
            pthread_mutex_unlock(&r->rs->mu);
            json_decref(pr->info);
            pr->info = NULL;
        }
    }
    for (int tries = 0; tries < 50; tries++) {
        evolve_tpe_propose(tpe, pr->x, pr->why, sizeof pr->why);
        snap(&r->sp, pr->x);
        if (!seen(r, pr->x)) {
            snprintf(pr->proposer, sizeof pr->proposer, "tpe");
            return true;
        }
    }
    return false;
}

/* ---- the run ---- */

static int load_files(evolve_run *r, char *err, size_t errlen)
{
    for (int i = 0; i < r->sp.nknobs; i++) {
        bool known = false;
        for (int f = 0; f < r->nfiles; f++)
            known |= !strcmp(r->files[f], r->sp.knobs[i].file);
        if (known)
            continue;
        int f = r->nfiles++;
        snprintf(r->files[f], sizeof r->files[f], "%s", r->sp.knobs[i].file);
        r->orig[f] = core_slurp(r->files[f], &r->orig_len[f]);
        if (!r->orig[f]) {
            int e = errno;
            if (e == ENOENT)
                continue;
            snprintf(err, errlen, "%s: %s", r->files[f], strerror(e));
            return -e;
        }
    }
    return 0;
}

/* Keeps each knob file's original content beside the run's record
 * (ID.orig.N; "originals" in the doc), so that a daemon that died during
 * the run restores them when it starts again. */
static int save_originals(evolve_run *r, char *err, size_t errlen)
{
    json_t *list = json_array();
    for (int f = 0; f < r->nfiles; f++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s.orig.%d", r->rs->dir, r->id, f);
        int rc = r->orig[f] ? write_whole(path, r->orig[f], r->orig_len[f]) : 0;
        if (rc) {
            snprintf(err, errlen, "%s: %s", path, strerror(-rc));
            json_decref(list);
            return rc;
        }
        json_array_append_new(list, json_pack("{s:s,s:o}", "file", r->files[f], "saved",
                                              r->orig[f] ? json_string(path) : json_null()));
    }
    doc_set(r, "originals", list);
    return 0;
}

static void drop_originals(struct evolve_runs *rs, json_t *doc)
{
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(doc, "originals"), i, o) if (json_is_string(json_object_get(o, "saved")))
        unlink(json_string_value(json_object_get(o, "saved")));
    (void)rs;
}

/* A run the daemon did not finish: its knob files get their original
 * content back. */
static void restore_originals(json_t *doc)
{
    json_t *done = json_array();
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(doc, "originals"), i, o) {
        const char *file = json_string_value(json_object_get(o, "file"));
        const char *saved = json_string_value(json_object_get(o, "saved"));
        if (!file)
            continue;
        int rc = 0;
        if (saved) {
            size_t len = 0;
            char *buf = core_slurp(saved, &len);
            rc = buf ? write_whole(file, buf, len) : -ENOENT;
            free(buf);
        } else if (unlink(file) && errno != ENOENT) {
            rc = -errno;
        }
        json_array_append_new(done, json_pack("{s:s,s:s}", "file", file, "outcome", rc ? strerror(-rc) : "restored"));
        if (!rc && saved)
            unlink(saved);
    }
    json_object_set_new(doc, "restored", done);
}

static void run_finish(evolve_run *r, const char *status, const char *error)
{
    char err[512] = "";
    int rc = r->written ? restore_files(r, err, sizeof err) : 0;
    bool any = false;
    for (int i = 0; i < r->sp.nknobs; i++)
        any |= isfinite(r->inc[i]);
    for (int f = 0; !rc && r->accepted && any && f < r->nfiles; f++)
        rc = evolve_space_write_file(&r->sp, r->files[f], r->inc, err, sizeof err);
    if (!rc && r->written) {
        for (int i = 0; !rc && i < r->sp.nknobs; i++) {
            const evolve_knob *k = &r->sp.knobs[i];
            rc = run_helper(r, "revert", k->revert[0] ? k->revert : k->apply, err, sizeof err);
        }
        if (!rc)
            rc = run_helper(r, "revert", r->sp.revert[0] ? r->sp.revert : r->sp.apply, err, sizeof err);
    }
    if (rc)
        doc_set(r, "restore_error", json_string(err));
    if (r->p.apply && r->commit[0] && !atomic_load(&r->rs->closing)) {
        evolve_hooks *h = &r->rs->c->h;
        char verdict[64] = "", e2[512] = "", why[256];
        snprintf(why, sizeof why, "evolve run %s accepted a better %s configuration", r->id, r->sp.name);
        int hrc = h->change ? h->change(h->ud, "apply", r->commit, why, verdict, sizeof verdict, e2, sizeof e2)
                            : -ENOSYS;
        if (!h->change)
            snprintf(e2, sizeof e2, "no change hook in this daemon");
        doc_set(r, "applied", json_pack("{s:s,s:s,s:s}", "commit", r->commit, "verdict", hrc ? "error" : verdict,
                                        "error", hrc ? e2 : ""));
    }
    pthread_mutex_lock(&r->rs->mu);
    if (!json_object_get(r->doc, "restore_error"))
        drop_originals(r->rs, r->doc); /* else kept, for a person to restore */
    json_object_set_new(r->doc, "status", json_string(status));
    if (error)
        json_object_set_new(r->doc, "error", json_string(error));
    json_object_set_new(r->doc, "ended_ms", json_integer(now_ms()));
    pthread_mutex_unlock(&r->rs->mu);
    run_save(r);
}

static void *run_main(void *arg)
{
    evolve_run *r = arg;
    char err[1024] = "";
    evolve_tpe *tpe = NULL;
    llm_queue q = {0};
    cand *k = calloc(1, sizeof *k);
    int rc = k ? load_files(r, err, sizeof err) : -ENOMEM;
    if (!rc)
        rc = save_originals(r, err, sizeof err);
    if (!rc)
        rc = evolve_space_read_values(&r->sp, r->inc, err, sizeof err);
    if (!rc)
        rc = evolve_tpe_new(&r->sp, r->p.seed, &tpe);
    if (rc) {
        run_finish(r, "failed", err[0] ? err : strerror(-rc));
        free(k);
        return NULL;
    }
    for (int i = 0; i < r->sp.nknobs; i++)
        r->cur[i] = NAN;
    pthread_mutex_lock(&r->rs->mu);
    json_object_set_new(r->doc, "baseline", json_pack("{s:o}", "values", values_json(&r->sp, r->inc)));
    json_object_set_new(r->doc, "incumbent", json_pack("{s:o}", "values", values_json(&r->sp, r->inc)));
    pthread_mutex_unlock(&r->rs->mu);
    run_save(r);
    const char *status = "done", *error = NULL;
    for (int n = 1;; n++) {
        if (atomic_load(&r->stop)) {
            status = "stopped";
            break;
        }
        if (r->ntrials && !fits(r, 4, 0))
            break;
        proposal pr;
        if (!propose(r, tpe, &q, n, &pr)) {
            doc_set(r, "note", json_string("the proposers found nothing new to try"));
            break;
        }
        memset(k, 0, sizeof *k);
        memcpy(k->x, pr.x, sizeof k->x);
        k->trial = json_pack("{s:i,s:s,s:s,s:o,s:s,s:[],s:[],s:s,s:I}", "n", n, "proposer", pr.proposer, "why",
                             pr.why, "values", values_json(&r->sp, pr.x), "phase", "screen", "fitness",
                             "incumbent_fitness", "decision", "pending", "started_ms", (json_int_t)now_ms());
        if (pr.info)
            json_object_update(k->trial, pr.info);
        json_decref(pr.info);
        pthread_mutex_lock(&r->rs->mu);
        json_array_append(json_object_get(r->doc, "trials"), k->trial);
        pthread_mutex_unlock(&r->rs->mu);
        json_decref(k->trial); /* the doc holds it */
        rc = evaluate(r, k, err, sizeof err);
        if (rc < 0) {
            status = "failed";
            error = err;
            decide(r, k, "error", err, NULL);
            break;
        }
        double y = k->n ? score(r, median(k->s, k->n)) / score(r, median(r->pool, r->npool)) : 0;
        evolve_tpe_observe(tpe, k->x, rc == 1 ? 1.0 : isfinite(y) ? y : 0);
        if (rc == 2) {
            status = atomic_load(&r->stop) ? "stopped" : "done";
            break;
        }
    }
    if (atomic_load(&r->rs->closing) && strcmp(status, "failed"))
        status = "interrupted";
    for (int i = q.at; i < q.n; i++)
        json_decref(q.info[i]);
    run_finish(r, status, error);
    evolve_tpe_free(tpe);
    free(k);
    return NULL;
}

/* ---- the runs ---- */

static void run_free(evolve_run *r)
{
    if (!r)
        return;
    json_decref(r->doc);
    free(r->p.space_text);
    for (int i = 0; i < EVOLVE_MAX_KNOBS; i++)
        free(r->orig[i]);
    free(r);
}

static bool any_running(struct evolve_runs *rs)
{
    for (evolve_run *r = rs->list; r; r = r->next)
        if (!strcmp(json_string_value(json_object_get(r->doc, "status")) ?: "", "running"))
            return true;
    return false;
}

int evolve_run_start(struct evolve_runs *rs, evolve_run_params *p, char *id, size_t idlen, char *err, size_t errlen)
{
    evolve_run *r = calloc(1, sizeof *r);
    if (!r) {
        free(p->space_text);
        p->space_text = NULL;
        return -ENOMEM;
    }
    r->p = *p;
    p->space_text = NULL;
    r->rs = rs;
    int rc = evolve_space_parse(r->p.space_text, r->p.space_path[0] ? r->p.space_path : "space", &r->sp, err,
                                errlen);
    if (!rc && r->p.fitness[0] == 0)
        snprintf(r->p.fitness, sizeof r->p.fitness, "%s", r->sp.fitness);
    if (!rc && !r->p.fitness[0]) {
        snprintf(err, errlen, "no fitness command (--fitness, or [space] fitness in %s)",
                 r->p.space_path[0] ? r->p.space_path : "the space");
        rc = -EINVAL;
    }
    if (rc) {
        run_free(r);
        return rc;
    }
    if (r->p.budget_s <= 0)
        r->p.budget_s = 1800;
    if (r->p.repeats <= 0)
        r->p.repeats = 10;
    if (r->p.repeats < 3)
        r->p.repeats = 3;
    if (r->p.min_gain < 0 || !isfinite(r->p.min_gain))
        r->p.min_gain = 0.02;
    if (!(r->p.alpha > 0 && r->p.alpha < 1))
        r->p.alpha = 0.05;
    snprintf(r->sp.path, sizeof r->sp.path, "%s", r->p.space_path);
    pthread_mutex_lock(&rs->mu);
    if (any_running(rs)) {
        pthread_mutex_unlock(&rs->mu);
        snprintf(err, errlen, "another run is running (stop it first: ippoc evolve stop ID)");
        run_free(r);
        return -EBUSY;
    }
    snprintf(r->id, sizeof r->id, "%d", rs->next_id++);
    json_t *knobs = json_array();
    for (int i = 0; i < r->sp.nknobs; i++)
        json_array_append_new(knobs, json_pack("{s:s,s:s,s:s}", "name", r->sp.knobs[i].name, "file",
                                               r->sp.knobs[i].file, "key", r->sp.knobs[i].key));
    r->doc = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:f,s:i,s:f,s:f,s:I,s:b,s:o,s:[],s:[],s:i}", "id", r->id,
                       "space", r->sp.name, "space_path", r->p.space_path, "fitness", r->p.fitness, "goal",
                       r->sp.minimize ? "min" : "max", "status", "running", "started_ms", (json_int_t)now_ms(),
                       "budget_s", r->p.budget_s, "repeats", r->p.repeats, "min_gain", r->p.min_gain, "alpha",
                       r->p.alpha, "seed", (json_int_t)r->p.seed, "apply", r->p.apply, "knobs", knobs, "trials",
                       "accepted", "measurements", 0);
    r->t0 = mono_ms();
    r->next = rs->list;
    rs->list = r;
    rc = pthread_create(&r->th, NULL, run_main, r);
    if (rc) {
        json_object_set_new(r->doc, "status", json_string("failed"));
        json_object_set_new(r->doc, "error", json_string("cannot start its thread"));
        pthread_mutex_unlock(&rs->mu);
        snprintf(err, errlen, "cannot start a thread: %s", strerror(rc));
        return -rc;
    }
    r->has_thread = true;
    pthread_mutex_unlock(&rs->mu);
    run_save(r);
    snprintf(id, idlen, "%s", r->id);
    return 0;
}

static evolve_run *find(struct evolve_runs *rs, const char *id)
{
    for (evolve_run *r = rs->list; r; r = r->next)
        if (!strcmp(r->id, id))
            return r;
    return NULL;
}

json_t *evolve_run_get(struct evolve_runs *rs, const char *id)
{
    pthread_mutex_lock(&rs->mu);
    evolve_run *r = find(rs, id);
    json_t *d = r ? json_deep_copy(r->doc) : NULL;
    pthread_mutex_unlock(&rs->mu);
    return d;
}

json_t *evolve_run_list(struct evolve_runs *rs)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&rs->mu);
    for (evolve_run *r = rs->list; r; r = r->next) {
        json_t *d = r->doc, *o = json_object();
        static const char *keys[] = {"id", "space", "status", "started_ms", "ended_ms", "budget_s", "fitness",
                                     "measurements", "incumbent", "error"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (json_object_get(d, keys[i]))
                json_object_set(o, keys[i], json_object_get(d, keys[i]));
        json_object_set_new(o, "trials", json_integer((json_int_t)json_array_size(json_object_get(d, "trials"))));
        json_object_set_new(o, "accepted",
                            json_integer((json_int_t)json_array_size(json_object_get(d, "accepted"))));
        json_array_append_new(arr, o);
    }
    pthread_mutex_unlock(&rs->mu);
    return arr;
}

int evolve_run_stop(struct evolve_runs *rs, const char *id)
{
    pthread_mutex_lock(&rs->mu);
    evolve_run *r = find(rs, id);
    int rc = !r ? -ENOENT
             : strcmp(json_string_value(json_object_get(r->doc, "status")) ?: "", "running") ? -EALREADY
                                                                                                : 0;
    if (!rc)
        atomic_store(&r->stop, true);
    pthread_mutex_unlock(&rs->mu);
    return rc;
}

/* The runs of an earlier daemon: one still "running" was interrupted. */
static void load_old(struct evolve_runs *rs)
{
    DIR *d = opendir(rs->dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json"))
            continue;
        char path[4500];
        snprintf(path, sizeof path, "%s/%s", rs->dir, e->d_name);
        json_error_t je;
        json_t *doc = json_load_file(path, 0, &je);
        const char *id = doc ? json_string_value(json_object_get(doc, "id")) : NULL;
        if (!id) {
            log_warn("evolve: %s: not a run (%s); ignored", path, doc ? "no id" : je.text);
            json_decref(doc);
            continue;
        }
        evolve_run *r = calloc(1, sizeof *r);
        if (!r) {
            json_decref(doc);
            break;
        }
        r->rs = rs;
        r->doc = doc;
        snprintf(r->id, sizeof r->id, "%s", id);
        if (atoi(id) >= rs->next_id)
            rs->next_id = atoi(id) + 1;
        if (!strcmp(json_string_value(json_object_get(doc, "status")) ?: "", "running")) {
            json_object_set_new(doc, "status", json_string("interrupted"));
            json_object_set_new(doc, "error", json_string("the daemon stopped during the run"));
            restore_originals(doc);
            run_save(r);
        }
        /* newest first: insert by id */
        evolve_run **at = &rs->list;
        while (*at && atoi((*at)->id) > atoi(id))
            at = &(*at)->next;
        r->next = *at;
        *at = r;
    }
    closedir(d);
}

static int mkdirs(const char *path)
{
    char buf[4200];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0755) && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return mkdir(buf, 0755) && errno != EEXIST ? -errno : 0;
}

int evolve_runs_new(evolve_cell *c, struct evolve_runs **out, char *err, size_t errlen)
{
    *out = NULL;
    struct evolve_runs *rs = calloc(1, sizeof *rs);
    if (!rs)
        return -ENOMEM;
    rs->c = c;
    rs->next_id = 1;
    pthread_mutex_init(&rs->mu, NULL);
    pthread_mutex_init(&rs->save_mu, NULL);
    snprintf(rs->dir, sizeof rs->dir, "%s/runs", c->evolve_dir);
    int rc = mkdirs(rs->dir);
    if (rc) {
        snprintf(err, errlen, "%s: %s", rs->dir, strerror(-rc));
        pthread_mutex_destroy(&rs->mu);
        pthread_mutex_destroy(&rs->save_mu);
        free(rs);
        return rc;
    }
    load_old(rs);
    *out = rs;
    return 0;
}

void evolve_runs_free(struct evolve_runs *rs)
{
    if (!rs)
        return;
    pthread_mutex_lock(&rs->mu);
    atomic_store(&rs->closing, true);
    for (evolve_run *r = rs->list; r; r = r->next)
        atomic_store(&r->stop, true);
    pthread_mutex_unlock(&rs->mu);
    for (evolve_run *r = rs->list; r; r = r->next)
        if (r->has_thread)
            pthread_join(r->th, NULL);
    while (rs->list) {
        evolve_run *r = rs->list;
        rs->list = r->next;
        run_free(r);
    }
    pthread_mutex_destroy(&rs->mu);
    pthread_mutex_destroy(&rs->save_mu);
    free(rs);
}
