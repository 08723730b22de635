/* code_job.c: one self-code evolution job, on its own thread: a private
 * clone of the operator's repository, the baseline (build, test, bench),
 * then for each candidate the model's patch (data, never run), applied with
 * git apply, built, tested and benchmarked in the sandbox interleaved with
 * the baseline, judged, and kept on a branch evolve/code-ID-N in the
 * operator's repository when it builds and passes the tests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "evolve/code_int.h"
#include "llm/llm.h"

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void state(code_job *j, const char *fmt, int n)
{
    char s[128];
    snprintf(s, sizeof s, fmt, n);
    code_job_set(j, "state", json_string(s));
}

/* git with argv; 0 or -1 with the reason in err. */
static int git(code_job *j, const char *cwd, const char *const *argv, char **out, char *err, size_t errlen)
{
    char tail[1024];
    int rc = code_exec_argv(argv, cwd, j->k->gitconfig, 300000, out, tail, sizeof tail);
    if (rc == 0)
        return 0;
    snprintf(err, errlen, "git %s failed (%d): %.900s", argv[1], rc, tail);
    return -1;
}

static int clone_at(code_job *j, const char *wt, const char *commit, char *err, size_t errlen)
{
    const char *cl[] = {"git", "clone", "--shared", "--quiet", "--no-checkout", j->repo, wt, NULL};
    const char *co[] = {"git", "checkout", "--quiet", "--detach", commit, NULL};
    const char *un[] = {"git", "config", "user.name", "ippoc", NULL};
    const char *ue[] = {"git", "config", "user.email", "ippoc@localhost", NULL};
    if (git(j, NULL, cl, NULL, err, errlen) || git(j, wt, co, NULL, err, errlen) || git(j, wt, un, NULL, err, errlen) ||
        git(j, wt, ue, NULL, err, errlen))
        return -1;
    return 0;
}

static void note_how(code_job *j, const code_run_res *r)
{
    pthread_mutex_lock(&j->k->lock);
    bool has = json_object_get(j->doc, "sandbox") != NULL;
    pthread_mutex_unlock(&j->k->lock);
    if (!has)
        code_job_set(j, "sandbox", json_string(r->how));
}

/* Runs cmd in cwd; false with "WHAT failed (verdict, exit N): tail" in err. */
static bool step(code_job *j, const char *what, const char *cmd, const char *cwd, code_run_res *r, char *err,
                 size_t errlen)
{
    char e[256];
    if (code_run(cmd, cwd, true, j->k->c->o.shim, j->timeout_ms, &j->stop, r, e, sizeof e) < 0) {
        snprintf(err, errlen, "%s: %s", what, e);
        return false;
    }
    note_how(j, r);
    if (r->ok)
        return true;
    const char *tail = r->tail;
    if (!tail[0] && r->out) /* a test that reports on stdout */
        tail = r->out + (strlen(r->out) > 1500 ? strlen(r->out) - 1500 : 0);
    snprintf(err, errlen, "%s failed (%s, exit %d): %.1500s", what, r->verdict, r->exit_code, tail);
    return false;
}

/* One bench run in cwd: its number into *v. */
static bool bench_once(code_job *j, const char *cwd, double *v, char *err, size_t errlen)
{
    code_run_res r;
    bool ok = step(j, "bench", j->bench, cwd, &r, err, errlen);
    if (ok && !code_parse_number(r.out, v)) {
        snprintf(err, errlen, "bench printed no number (stdout: %.200s)", r.out ? r.out : "");
        ok = false;
    }
    if (ok && !(*v > 0)) {
        snprintf(err, errlen, "bench printed %g (a fitness must be > 0)", *v);
        ok = false;
    }
    code_run_res_free(&r);
    return ok;
}

static json_t *samples_json(const double *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_real(v[i]));
    return a;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = 0;
    fclose(f);
    return s;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -errno;
    fputs(text, f);
    return fclose(f) ? -EIO : 0;
}

typedef struct cand_ctx {
    code_job *j;
    int n;
    const char *base_dir, *base_commit, *text;
    const double *baseline;
    json_t *res;                   /* this candidate's record */
} cand_ctx;

static void reject(cand_ctx *x, const char *reason)
{
    json_object_set_new(x->res, "status", json_string("rejected"));
    json_object_set_new(x->res, "reason", json_string(reason));
}

/* The model's patch and rationale; false (rejected) when it gave none. */
static bool ask_model(cand_ctx *x, const json_t *history, char **patch, char **rationale)
{
    code_job *j = x->j;
    char *user = code_prompt(j->target, x->text, j->bench, j->test, j->maximize, x->baseline, j->repeats, history);
    llm_request r = {.purpose = "evolve-code", .system = code_system_prompt, .user = user ? user : "",
                     .schema_name = "code_patch", .schema = code_schema, .max_tokens = 4096};
    llm_answer a = {0};
    char err[512] = "", why[700];
    int rc = llm_complete(j->k->c->o.llm, &r, &a, err, sizeof err);
    free(user);
    json_t *o = rc == 0 && a.content ? json_loads(a.content, 0, NULL) : NULL;
    const char *p = json_string_value(json_object_get(o, "patch"));
    const char *ra = json_string_value(json_object_get(o, "rationale"));
    if (a.provider)
        json_object_set_new(x->res, "model", json_string(a.provider));
    bool ok = p && *p;
    if (ok) {
        *patch = strdup(p);
        *rationale = strdup(ra ? ra : "");
    } else {
        snprintf(why, sizeof why, "model failed: %s", rc ? (err[0] ? err : strerror(-rc)) : "no patch in the answer");
        reject(x, why);
    }
    json_decref(o);
    llm_answer_free(&a);
    return ok;
}

/* git apply --numstat's view of the files, then --check, then apply. */
static bool apply_patch(cand_ctx *x, const char *wt, const char *pfile)
{
    char err[1200], why[1400], *out = NULL;
    /* --recount: a model's hunk headers often miscount; the lines decide */
    const char *ns[] = {"git", "apply", "--recount", "--numstat", pfile, NULL};
    const char *ck[] = {"git", "apply", "--recount", "--check", pfile, NULL};
    const char *ap[] = {"git", "apply", "--recount", pfile, NULL};
    if (git(x->j, wt, ns, &out, err, sizeof err)) {
        snprintf(why, sizeof why, "patch failed: %s", err);
        reject(x, why);
        return false;
    }
    for (char *l = out; l && *l;) { /* "ADDED\tDELETED\tPATH" */
        char *e = strchr(l, '\n'), *t1 = strchr(l, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (e)
            *e = 0;
        if (t2 && strcmp(t2 + 1, x->j->target)) {
            snprintf(why, sizeof why, "patch touches another file: %s (only %s may change)", t2 + 1, x->j->target);
            reject(x, why);
            free(out);
            return false;
        }
        l = e ? e + 1 : NULL;
    }
    free(out);
    if (git(x->j, wt, ck, NULL, err, sizeof err) || git(x->j, wt, ap, NULL, err, sizeof err)) {
        snprintf(why, sizeof why, "patch failed: does not apply: %s", err);
        reject(x, why);
        return false;
    }
    return true;
}

/* Interleaved bench runs of the baseline and the candidate. */
static bool bench_pair(cand_ctx *x, const char *wt, double *b, double *c)
{
    code_job *j = x->j;
    char err[2000], why[2100];
    for (int i = 0; i < j->repeats; i++) {
        bool cand_first = i % 2;
        if (!bench_once(j, cand_first ? wt : x->base_dir, cand_first ? &c[i] : &b[i], err, sizeof err) ||
            !bench_once(j, cand_first ? x->base_dir : wt, cand_first ? &b[i] : &c[i], err, sizeof err)) {
            snprintf(why, sizeof why, "bench failed: %s", err);
            reject(x, why);
            return false;
        }
    }
    return true;
}

static void one_line(char *dst, size_t n, const char *s)
{
    size_t i = 0;
    for (; s && *s && i + 1 < n; s++)
        dst[i++] = (*s == '\n' || *s == '\r' || *s == '\t') ? ' ' : *s;
    dst[i] = 0;
}

/* Commits the candidate and fetches it into the operator's repository. */
static bool keep_branch(cand_ctx *x, const char *wt, const char *rationale, const char *fitness, bool accepted)
{
    code_job *j = x->j;
    char branch[96], msgfile[4200], err[1200], why[1300], rat[320];
    snprintf(branch, sizeof branch, "evolve/code-%s-%d", j->id, x->n);
    snprintf(msgfile, sizeof msgfile, "%s/cand-%d.msg", j->dir, x->n);
    one_line(rat, sizeof rat, rationale);
    char *msg = NULL;
    int len = asprintf(&msg,
                       "evolve: %s %s (self-code job %s, candidate %d)\n\n%s\n\n"
                       "Ippoc-Kind: code\nIppoc-Fitness: %s\nIppoc-Bench: %s\nIppoc-Rationale: %s\n",
                       accepted ? "faster" : "candidate for", j->target, j->id, x->n, rationale, fitness, j->bench,
                       rat);
    if (len < 0 || write_text(msgfile, msg) < 0) {
        free(msg);
        reject(x, "cannot write the commit message");
        return false;
    }
    free(msg);
    char refspec[200];
    snprintf(refspec, sizeof refspec, "HEAD:refs/heads/%s", branch);
    const char *cm[] = {"git", "commit", "--quiet", "--all", "--file", msgfile, NULL};
    const char *fe[] = {"git", "fetch", "--quiet", wt, refspec, NULL};
    const char *rp[] = {"git", "rev-parse", "HEAD", NULL};
    char *oid = NULL;
    if (git(j, wt, cm, NULL, err, sizeof err) || git(j, wt, rp, &oid, err, sizeof err) ||
        git(j, j->repo, fe, NULL, err, sizeof err)) {
        snprintf(why, sizeof why, "cannot keep the branch: %s", err);
        reject(x, why);
        free(oid);
        return false;
    }
    if (oid)
        oid[strcspn(oid, "\n")] = 0;
    code_fix_owner(j->repo);
    json_object_set_new(x->res, "branch", json_string(branch));
    json_object_set_new(x->res, "commit", json_string(oid ? oid : ""));
    free(oid);
    return true;
}

static void candidate(cand_ctx *x, const json_t *history)
{
    code_job *j = x->j;
    char *patch = NULL, *rationale = NULL, pfile[4200], wt[4200], err[2000];
    state(j, "candidate %d: asking the model", x->n);
    if (!ask_model(x, history, &patch, &rationale))
        return;
    json_object_set_new(x->res, "rationale", json_string(rationale));
    json_object_set_new(x->res, "files", code_patch_files(patch));
    snprintf(pfile, sizeof pfile, "%s/cand-%d.patch", j->dir, x->n);
    snprintf(wt, sizeof wt, "%s/c%d", j->dir, x->n);
    json_object_set_new(x->res, "patch_file", json_string(pfile));
    int rc = write_text(pfile, patch);
    int ck = rc == 0 ? code_patch_check_files(patch, j->target, err, sizeof err) : 0;
    if (ck < 0) {
        char why[2100];
        snprintf(why, sizeof why, "%s: %s", ck == -EINVAL || strstr(err, "more than edit") ? "patch failed"
                                                                                           : "patch touches another file",
                 err);
        reject(x, why);
        goto out;
    }
    if (rc < 0 || clone_at(j, wt, x->base_commit, err, sizeof err)) {
        reject(x, rc < 0 ? "cannot write the patch" : err);
        goto out;
    }
    if (!apply_patch(x, wt, pfile))
        goto out;
    code_run_res r;
    state(j, "candidate %d: build", x->n);
    bool ok = step(j, "build", j->build, wt, &r, err, sizeof err);
    code_run_res_free(&r);
    if (!ok) {
        reject(x, err);
        goto out;
    }
    state(j, "candidate %d: test", x->n);
    ok = step(j, "tests", j->test, wt, &r, err, sizeof err);
    code_run_res_free(&r);
    if (!ok) {
        reject(x, err);
        goto out;
    }
    state(j, "candidate %d: bench", x->n);
    double *b = calloc((size_t)j->repeats * 2, sizeof *b), *c = b ? b + j->repeats : NULL;
    if (!b || !bench_pair(x, wt, b, c)) {
        if (!b)
            reject(x, "out of memory");
        free(b);
        goto out;
    }
    evolve_test t;
    char fit[160];
    if (code_judge(b, j->repeats, c, j->repeats, j->maximize, &t) < 0) {
        reject(x, "bench numbers cannot be judged");
        free(b);
        goto out;
    }
    code_fitness_text(&t, fit, sizeof fit);
    bool accepted = t.p < 0.05 && t.lo > 0.02;
    json_object_set_new(x->res, "base", samples_json(b, j->repeats));
    json_object_set_new(x->res, "cand", samples_json(c, j->repeats));
    json_object_set_new(x->res, "median_base", json_real(evolve_stats_median(b, j->repeats)));
    json_object_set_new(x->res, "median_cand", json_real(evolve_stats_median(c, j->repeats)));
    json_object_set_new(x->res, "fitness", json_string(fit));
    json_object_set_new(x->res, "gain", json_real(t.gain));
    json_object_set_new(x->res, "lo", json_real(t.lo));
    json_object_set_new(x->res, "hi", json_real(t.hi));
    json_object_set_new(x->res, "p", json_real(t.p));
    free(b);
    if (keep_branch(x, wt, rationale, fit, accepted)) {
        char why[256];
        snprintf(why, sizeof why, "not faster: %s (needs p < 0.05 and the interval above +2%%)", fit);
        json_object_set_new(x->res, "status", json_string(accepted ? "accepted" : "rejected"));
        json_object_set_new(x->res, "reason", json_string(accepted ? "faster" : why));
    }
out:
    code_rmtree(wt);
    free(patch);
    free(rationale);
}

/* The baseline: build, test, repeats bench runs. */
static int baseline(code_job *j, const char *base, double *v, char *err, size_t errlen)
{
    code_run_res r;
    char e[2000];
    state(j, "baseline: build", 0);
    bool ok = step(j, "build", j->build, base, &r, e, sizeof e);
    code_run_res_free(&r);
    if (ok) {
        state(j, "baseline: test", 0);
        ok = step(j, "tests", j->test, base, &r, e, sizeof e);
        code_run_res_free(&r);
    }
    state(j, "baseline: bench", 0);
    for (int i = 0; ok && i < j->repeats; i++)
        ok = bench_once(j, base, &v[i], e, sizeof e);
    if (!ok)
        snprintf(err, errlen, "the unchanged code: %s", e);
    return ok ? 0 : -1;
}

static int job_body(code_job *j, char *err, size_t errlen)
{
    char base[4200], path[8400], *oid = NULL;
    snprintf(base, sizeof base, "%s/base", j->dir);
    const char *rp[] = {"git", "rev-parse", "HEAD", NULL};
    state(j, "cloning", 0);
    if (git(j, j->repo, rp, &oid, err, errlen))
        return -1;
    oid[strcspn(oid, "\n")] = 0;
    code_job_set(j, "base_commit", json_string(oid));
    if (clone_at(j, base, oid, err, errlen)) {
        free(oid);
        return -1;
    }
    double *v = calloc((size_t)j->repeats, sizeof *v);
    snprintf(path, sizeof path, "%s/%s", base, j->target);
    char *text = read_text(path);
    int rc = -1;
    if (!v || !text)
        snprintf(err, errlen, "%s: %s", j->target, v ? "not in the repository's HEAD" : "out of memory");
    else if ((rc = baseline(j, base, v, err, errlen)) == 0)
        code_job_set(j, "baseline", samples_json(v, j->repeats));
    json_t *history = json_array();
    for (int n = 1; rc == 0 && n <= j->candidates && !j->stop; n++) {
        cand_ctx x = {.j = j, .n = n, .base_dir = base, .base_commit = oid, .text = text, .baseline = v,
                      .res = json_pack("{s:i}", "n", n)};
        candidate(&x, history);
        json_array_append(history, x.res);
        pthread_mutex_lock(&j->k->lock);
        json_array_append_new(json_object_get(j->doc, "results"), x.res);
        code_job_save_locked(j);
        pthread_mutex_unlock(&j->k->lock);
    }
    json_decref(history);
    free(v);
    free(text);
    free(oid);
    code_rmtree(base);
    return rc;
}

/* The best accepted branch (largest gain) or NULL. */
static json_t *best_of(json_t *results)
{
    size_t i;
    json_t *r, *best = NULL;
    json_array_foreach(results, i, r) {
        const char *st = json_string_value(json_object_get(r, "status"));
        if (!st || strcmp(st, "accepted"))
            continue;
        if (!best || json_real_value(json_object_get(r, "gain")) > json_real_value(json_object_get(best, "gain")))
            best = r;
    }
    return best;
}

void *code_job_main(void *arg)
{
    code_job *j = arg;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL); /* but in a sandbox run (code_exec.c) */
    char err[2400] = "";
    int rc = job_body(j, err, sizeof err);
    pthread_mutex_lock(&j->k->lock);
    json_t *best = best_of(json_object_get(j->doc, "results"));
    json_object_set(j->doc, "best", best ? json_object_get(best, "branch") : json_null());
    json_object_set_new(j->doc, "state", json_string(j->stop ? "stopped" : rc ? "failed" : "done"));
    if (rc)
        json_object_set_new(j->doc, "error", json_string(err));
    json_object_set_new(j->doc, "finished", json_integer(wall_ms()));
    code_job_save_locked(j);
    pthread_mutex_unlock(&j->k->lock);
    log_info("evolve: self-code job %s %s%s%s", j->id, rc ? "failed" : "done", rc ? ": " : "", rc ? err : "");
    return NULL;
}
