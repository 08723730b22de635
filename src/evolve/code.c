/* code.c: self-code evolution's jobs and routes: POST /v1/evolve/code starts
 * a job (code_job.c), GET /v1/evolve/code[/ID] shows them (kept in
 * STATE/evolve/code/ID/job.json, so they survive a restart), and POST
 * /v1/evolve/code/ID/accept merges the best kept branch into the
 * repository's current branch on a clean working tree, through the safety
 * policy (a "code" genome change that evolve_execute runs), and builds it
 * (POST /v1/evolve/code/ID/stop ends a job at its next step). The running
 * binary is never replaced: the outcome says what to restart. */
#include <dirent.h>
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

static int mkdirs(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            if (mkdir(p, 0755) < 0 && errno != EEXIST)
                return -errno;
            *s = '/';
        }
    return mkdir(p, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

void code_job_save_locked(code_job *j)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/job.json", j->dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (json_dump_file(j->doc, tmp, JSON_INDENT(1)) == 0)
        rename(tmp, path);
}

void code_job_set(code_job *j, const char *key, json_t *v)
{
    pthread_mutex_lock(&j->k->lock);
    json_object_set_new(j->doc, key, v);
    code_job_save_locked(j);
    pthread_mutex_unlock(&j->k->lock);
}

static void job_free(code_job *j)
{
    if (!j)
        return;
    free(j->repo);
    free(j->target);
    free(j->bench);
    free(j->build);
    free(j->test);
    json_decref(j->doc);
    free(j);
}

static char *jdup(const json_t *doc, const char *key)
{
    const char *s = json_string_value(json_object_get(doc, key));
    return strdup(s ? s : "");
}

/* The fields a job runs with, from its document. */
static int job_fill(code_job *j)
{
    j->repo = jdup(j->doc, "repo");
    j->target = jdup(j->doc, "target");
    j->bench = jdup(j->doc, "bench");
    j->build = jdup(j->doc, "build");
    j->test = jdup(j->doc, "test");
    const char *goal = json_string_value(json_object_get(j->doc, "goal"));
    j->maximize = goal && !strcmp(goal, "max");
    j->repeats = (int)json_integer_value(json_object_get(j->doc, "repeats"));
    j->candidates = (int)json_integer_value(json_object_get(j->doc, "candidates"));
    j->timeout_ms = json_integer_value(json_object_get(j->doc, "timeout_s")) * 1000;
    return j->repo && j->target && j->bench && j->build && j->test ? 0 : -ENOMEM;
}

/* Jobs of an earlier run of the daemon: shown, not resumed. */
static void load_jobs(struct evolve_code *k)
{
    DIR *d = opendir(k->dir);
    struct dirent *e;
    while (d && (e = readdir(d)) && k->njobs < CODE_MAX_JOBS) {
        if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof ((code_job *)0)->id)
            continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s/job.json", k->dir, e->d_name);
        json_t *doc = json_load_file(path, 0, NULL);
        if (!json_is_object(doc)) {
            json_decref(doc);
            continue;
        }
        code_job *j = calloc(1, sizeof *j);
        if (!j) {
            json_decref(doc);
            break;
        }
        j->k = k;
        j->doc = doc;
        snprintf(j->id, sizeof j->id, "%s", e->d_name);
        snprintf(j->dir, sizeof j->dir, "%s/%s", k->dir, e->d_name);
        const char *st = json_string_value(json_object_get(doc, "state"));
        if (!st || (strcmp(st, "done") && strcmp(st, "failed") && strcmp(st, "stopped")))
            json_object_set_new(doc, "state", json_string("interrupted"));
        json_t *acc = json_object_get(doc, "accept");
        const char *ast = json_string_value(json_object_get(acc, "state"));
        if (ast && !strcmp(ast, "running"))
            json_object_set_new(acc, "state", json_string("interrupted"));
        if (job_fill(j) < 0) {
            job_free(j);
            continue;
        }
        k->jobs[k->njobs++] = j;
    }
    if (d)
        closedir(d);
}

int evolve_code_new(evolve_cell *c, struct evolve_code **out, char *err, size_t errlen)
{
    *out = NULL;
    struct evolve_code *k = calloc(1, sizeof *k);
    if (!k)
        return -ENOMEM;
    k->c = c;
    pthread_mutex_init(&k->lock, NULL);
    snprintf(k->dir, sizeof k->dir, "%s/code", c->evolve_dir);
    int rc = mkdirs(k->dir);
    if (rc < 0) {
        snprintf(err, errlen, "evolve: %s: %s", k->dir, strerror(-rc));
        pthread_mutex_destroy(&k->lock);
        free(k);
        return rc;
    }
    snprintf(k->gitconfig, sizeof k->gitconfig, "%s/gitconfig", k->dir);
    FILE *f = fopen(k->gitconfig, "w");
    if (f) {
        fputs("# GIT_CONFIG_GLOBAL of ippoc's own git commands (self-code evolution): the operator's\n"
              "# repository may belong to another user than ippocd's; commits are ippoc's.\n"
              "[safe]\n\tdirectory = *\n[user]\n\tname = ippoc\n\temail = ippoc@localhost\n", f);
        if (fclose(f))
            f = NULL;
    }
    if (!f) {
        snprintf(err, errlen, "evolve: %s: cannot write: %s", k->gitconfig, strerror(errno));
        pthread_mutex_destroy(&k->lock);
        free(k);
        return -EIO;
    }
    load_jobs(k);
    *out = k;
    return 0;
}

/* Waits a few seconds for a stopped thread; then cancels it, which takes
 * effect only inside a sandbox run (its only cancellable stretch). */
static void join_or_cancel(pthread_t th)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    if (pthread_timedjoin_np(th, NULL, &ts) == 0)
        return;
    pthread_cancel(th);
    pthread_join(th, NULL);
}

void evolve_code_free(struct evolve_code *k)
{
    if (!k)
        return;
    for (int i = 0; i < k->njobs; i++)
        k->jobs[i]->stop = 1;
    for (int i = 0; i < k->njobs; i++) {
        if (k->jobs[i]->started)
            join_or_cancel(k->jobs[i]->th);
        if (k->jobs[i]->acc_started)
            join_or_cancel(k->jobs[i]->acc_th);
        job_free(k->jobs[i]);
    }
    pthread_mutex_destroy(&k->lock);
    free(k);
}

/* ---- POST /v1/evolve/code ---- */

static const char *opt_str(json_t *b, const char *key, const char *dflt, char *err, size_t errlen)
{
    json_t *v = json_object_get(b, key);
    if (!v)
        return dflt;
    if (!json_is_string(v) || !*json_string_value(v)) {
        snprintf(err, errlen, "%s: must be a non-empty string", key);
        return NULL;
    }
    return json_string_value(v);
}

static int opt_int(json_t *b, const char *key, int dflt, int lo, int hi, int *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(b, key);
    *out = dflt;
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        snprintf(err, errlen, "%s: must be an integer from %d to %d", key, lo, hi);
        return -EINVAL;
    }
    *out = (int)json_integer_value(v);
    return 0;
}

static int check_cmd(const char *key, const char *text, char *err, size_t errlen)
{
    char ***cmds, e[256];
    if (code_cmds_split(text, &cmds, e, sizeof e) < 0) {
        snprintf(err, errlen, "%s: %s", key, e);
        return -EINVAL;
    }
    code_cmds_free(cmds);
    return 0;
}

/* The repository's top directory (repo must be a git work tree). */
static int repo_top(const char *repo, const char *gc, char *top, size_t n, char *err, size_t errlen)
{
    struct stat st;
    if (repo[0] != '/' || stat(repo, &st) < 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "repo: %s is not an absolute path to a directory", repo);
        return -EINVAL;
    }
    const char *argv[] = {"git", "rev-parse", "--show-toplevel", NULL};
    char *out = NULL, tail[256];
    int rc = code_exec_argv(argv, repo, gc, 30000, &out, tail, sizeof tail);
    if (rc != 0 || !out || !*out) {
        snprintf(err, errlen, "repo: %s is not a git work tree (%s)", repo, tail);
        free(out);
        return -EINVAL;
    }
    out[strcspn(out, "\n")] = 0;
    snprintf(top, n, "%s", out);
    free(out);
    return 0;
}

/* A checked job document from the request body. */
static json_t *parse_request(json_t *b, const char *gc, char *err, size_t errlen)
{
    const char *repo = opt_str(b, "repo", NULL, err, errlen), *target = opt_str(b, "target", NULL, err, errlen);
    const char *bench = opt_str(b, "bench", NULL, err, errlen);
    const char *build = opt_str(b, "build", CODE_DEFAULT_BUILD, err, errlen);
    const char *test = opt_str(b, "test", CODE_DEFAULT_TEST, err, errlen);
    const char *goal = opt_str(b, "goal", "min", err, errlen);
    int repeats, cands, tmo;
    char top[4096], path[8200];
    struct stat st;
    if (!repo || !target || !bench || !build || !test || !goal) {
        if (!err[0])
            snprintf(err, errlen, "%s: required", !repo ? "repo" : !target ? "target" : "bench");
        return NULL;
    }
    if (strcmp(goal, "min") && strcmp(goal, "max")) {
        snprintf(err, errlen, "goal: '%s' is neither min nor max", goal);
        return NULL;
    }
    if (opt_int(b, "repeats", 7, 4, 100, &repeats, err, errlen) || opt_int(b, "candidates", 3, 1, 20, &cands, err, errlen) ||
        opt_int(b, "timeout_s", 600, 1, 7200, &tmo, err, errlen) || check_cmd("bench", bench, err, errlen) ||
        check_cmd("build", build, err, errlen) || check_cmd("test", test, err, errlen) ||
        repo_top(repo, gc, top, sizeof top, err, errlen))
        return NULL;
    if (!code_path_ok(target)) {
        snprintf(err, errlen, "target: '%s' must be a path relative to the repository, without '..'", target);
        return NULL;
    }
    snprintf(path, sizeof path, "%s/%s", top, target);
    if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "target: %s is not a file in %s", target, top);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:s, s:I, s:[]}", "repo", top, "target", target,
                     "bench", bench, "build", build, "test", test, "goal", goal, "repeats", repeats, "candidates",
                     cands, "timeout_s", tmo, "state", "queued", "created", (json_int_t)wall_ms(), "results");
}

static char *start_job(evolve_cell *c, const char *body, size_t len, int *status)
{
    struct evolve_code *k = c->code;
    if (!llm_available(c->o.llm))
        return evolve_error(503, status, "self-code evolution needs a model: configure [llm] (local or cloud)");
    json_error_t je;
    json_t *b = body && len ? json_loadb(body, len, 0, &je) : NULL;
    if (!json_is_object(b)) {
        json_decref(b);
        return evolve_error(400, status, "body: a JSON object with repo, target and bench is required");
    }
    char err[1024] = "";
    json_t *doc = parse_request(b, k->gitconfig, err, sizeof err);
    json_decref(b);
    if (!doc)
        return evolve_error(400, status, "%s", err);
    code_job *j = calloc(1, sizeof *j);
    if (!j) {
        json_decref(doc);
        return evolve_error(500, status, "out of memory");
    }
    j->k = k;
    j->doc = doc;
    pthread_mutex_lock(&k->lock);
    int rc = k->njobs < CODE_MAX_JOBS ? 0 : -ENOSPC;
    for (uint32_t n = (uint32_t)wall_ms() ^ ((uint32_t)getpid() << 16); rc == 0; n++) {
        snprintf(j->id, sizeof j->id, "%08x", n);
        snprintf(j->dir, sizeof j->dir, "%s/%s", k->dir, j->id);
        if (mkdir(j->dir, 0755) == 0)
            break;
        if (errno != EEXIST)
            rc = -errno;
    }
    if (rc == 0) {
        json_object_set_new(doc, "id", json_string(j->id));
        rc = job_fill(j);
    }
    if (rc == 0 && pthread_create(&j->th, NULL, code_job_main, j) != 0)
        rc = -EAGAIN;
    if (rc == 0) {
        j->started = true;
        code_job_save_locked(j);
        k->jobs[k->njobs++] = j;
    }
    pthread_mutex_unlock(&k->lock);
    if (rc < 0) {
        job_free(j);
        return evolve_error(rc == -ENOSPC ? 409 : 500, status, "cannot start the job: %s%s",
                            rc == -ENOSPC ? "64 jobs are kept already; remove old ones from " : strerror(-rc),
                            rc == -ENOSPC ? k->dir : "");
    }
    return evolve_reply(json_pack("{s:s}", "id", j->id), 202, status);
}

/* ---- GET ---- */

static code_job *find(struct evolve_code *k, const char *id, size_t n)
{
    for (int i = 0; i < k->njobs; i++)
        if (strlen(k->jobs[i]->id) == n && !strncmp(k->jobs[i]->id, id, n))
            return k->jobs[i];
    return NULL;
}

static char *list_jobs(struct evolve_code *k, int *status)
{
    json_t *a = json_array();
    pthread_mutex_lock(&k->lock);
    for (int i = 0; i < k->njobs; i++) {
        json_t *d = k->jobs[i]->doc, *s = json_object();
        const char *keys[] = {"id", "state", "repo", "target", "bench", "created", "finished", "best", "error"};
        for (size_t n = 0; n < sizeof keys / sizeof keys[0]; n++)
            if (json_object_get(d, keys[n]))
                json_object_set(s, keys[n], json_object_get(d, keys[n]));
        json_object_set_new(s, "results", json_integer((json_int_t)json_array_size(json_object_get(d, "results"))));
        json_array_append_new(a, s);
    }
    pthread_mutex_unlock(&k->lock);
    return evolve_reply(json_pack("{s:o}", "jobs", a), 200, status);
}

/* ---- accept ---- */

/* The build directory named by a build command ("ninja -C B", "meson setup B"). */
static void build_dir_of(const char *build, char *dir, size_t n)
{
    char ***cmds, e[128];
    dir[0] = 0;
    if (code_cmds_split(build, &cmds, e, sizeof e) < 0)
        return;
    for (size_t i = 0; cmds[i]; i++)
        for (size_t a = 0; cmds[i][a]; a++) {
            if (!strcmp(cmds[i][0], "ninja") && !strcmp(cmds[i][a], "-C") && cmds[i][a + 1])
                snprintf(dir, n, "%s", cmds[i][a + 1]);
            if (!strcmp(cmds[i][0], "meson") && a >= 2 && !strcmp(cmds[i][1], "setup") && cmds[i][a][0] != '-')
                snprintf(dir, n, "%s", cmds[i][a]);
        }
    code_cmds_free(cmds);
}

/* The branch to merge: the request's (one the job kept) or the best. */
static int pick_branch(code_job *j, json_t *b, char *branch, size_t n, char *err, size_t errlen)
{
    const char *want = json_string_value(json_object_get(b, "branch"));
    const char *st = json_string_value(json_object_get(j->doc, "state"));
    if (!st || strcmp(st, "done")) {
        snprintf(err, errlen, "job %s is %s, not done", j->id, st ? st : "?");
        return -EBUSY;
    }
    const char *best = json_string_value(json_object_get(j->doc, "best"));
    if (!want && !best) {
        snprintf(err, errlen, "job %s has no accepted candidate to merge (name a kept branch with \"branch\")", j->id);
        return -ENODATA;
    }
    if (want) {
        size_t i;
        json_t *r;
        bool kept = false;
        json_array_foreach(json_object_get(j->doc, "results"), i, r) {
            const char *br = json_string_value(json_object_get(r, "branch"));
            kept = kept || (br && !strcmp(br, want));
        }
        if (!kept) {
            snprintf(err, errlen, "branch: %s is not a branch job %s kept", want, j->id);
            return -ENOENT;
        }
    }
    snprintf(branch, n, "%s", want ? want : best);
    return 0;
}

/* 0 when repo's tracked files have no changes; -EBUSY with err. */
static int tree_clean(const char *repo, const char *gc, char *err, size_t errlen)
{
    char *out = NULL, tail[1024];
    const char *stt[] = {"git", "status", "--porcelain", "--untracked-files=no", NULL};
    int rc = code_exec_argv(stt, repo, gc, 60000, &out, tail, sizeof tail);
    if (rc != 0 || (out && *out)) {
        snprintf(err, errlen, "%s: %s%.300s", repo,
                 rc ? "git status failed: " : "the working tree is not clean (commit or stash first):\n",
                 rc ? tail : out);
        free(out);
        return -EBUSY;
    }
    free(out);
    return 0;
}

/* Merges branch into repo's current branch: "fast-forward" or "merge commit". */
static int merge(const char *repo, const char *gc, const char *branch, const char **how, char *err, size_t errlen)
{
    char tail[1024];
    int rc = tree_clean(repo, gc, err, errlen);
    if (rc < 0)
        return rc;
    const char *ff[] = {"git", "merge", "--ff-only", "--quiet", branch, NULL};
    if (code_exec_argv(ff, repo, gc, 120000, NULL, tail, sizeof tail) == 0) {
        *how = "fast-forward";
        return 0;
    }
    char msg[320];
    snprintf(msg, sizeof msg, "evolve: accept %s", branch);
    const char *mc[] = {"git", "-c", "user.name=ippoc", "-c", "user.email=ippoc@localhost", "merge", "--no-ff",
                        "--no-edit", "--quiet", "-m", msg, branch, NULL};
    if (code_exec_argv(mc, repo, gc, 120000, NULL, tail, sizeof tail) == 0) {
        *how = "merge commit";
        return 0;
    }
    const char *ab[] = {"git", "merge", "--abort", NULL};
    code_exec_argv(ab, repo, gc, 60000, NULL, NULL, 0);
    snprintf(err, errlen, "%s does not merge cleanly into %s: %.600s", branch, repo, tail);
    return -EBUSY;
}

/* The accept's thread: merge, build, record the outcome as the job's "accept". */
static void *accept_main(void *arg)
{
    code_job *j = arg;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL); /* but in a sandbox run (code_exec.c) */
    struct evolve_code *k = j->k;
    const char *how = NULL;
    char err[2400] = "", e[256] = "";
    code_run_res r = {0};
    int rc = merge(j->repo, k->gitconfig, j->acc_branch, &how, err, sizeof err);
    if (rc == 0)
        rc = code_run(j->build, j->repo, true, k->c->o.shim, j->timeout_ms, &j->stop, &r, e, sizeof e);
    code_fix_owner(j->repo);
    json_t *acc = json_pack("{s:s, s:s, s:I}", "branch", j->acc_branch, "repo", j->repo, "time", (json_int_t)wall_ms());
    if (rc == 0) {
        char bdir[1024], bin[6000], restart[6200];
        build_dir_of(j->build, bdir, sizeof bdir);
        snprintf(bin, sizeof bin, "%s/%s/src/daemon/ippocd", j->repo, bdir);
        if (bdir[0] && access(bin, X_OK) == 0)
            snprintf(restart, sizeof restart, "the new ippocd is at %s; restart the daemon to run it", bin);
        else
            snprintf(restart, sizeof restart, "built with '%s' in %s; restart what runs it to use the change "
                     "(ippoc never replaces a running program)", j->build, j->repo);
        json_object_set_new(acc, "state", json_string(r.ok ? "done" : "failed"));
        json_object_set_new(acc, "merge", json_string(how));
        json_object_set_new(acc, "built", json_boolean(r.ok));
        json_object_set_new(acc, "restart", json_string(r.ok ? restart : "the build failed: nothing to restart"));
        if (!r.ok)
            json_object_set_new(acc, "error", json_string(r.tail));
    } else {
        json_object_set_new(acc, "state", json_string("failed"));
        json_object_set_new(acc, "built", json_false());
        json_object_set_new(acc, "error", json_string(err[0] ? err : e));
    }
    log_info("evolve: self-code job %s: accept %s into %s: %s%s%s", j->id, j->acc_branch, j->repo,
            rc ? "not merged" : how, rc == 0 && !r.ok ? ", the build failed" : "", rc ? err : "");
    code_run_res_free(&r);
    pthread_mutex_lock(&k->lock);
    json_object_set_new(j->doc, "accept", acc);
    code_job_save_locked(j);
    j->accepting = false;
    pthread_mutex_unlock(&k->lock);
    return NULL;
}

int evolve_code_execute(evolve_cell *c, const char *arg, char *err, size_t errlen)
{
    struct evolve_code *k = c->code;
    const char *sp = arg ? strchr(arg, ' ') : NULL;
    if (!k || !sp) {
        snprintf(err, errlen, "code: '%s' is not 'ID BRANCH'", arg ? arg : "");
        return -EINVAL;
    }
    pthread_mutex_lock(&k->lock);
    code_job *j = find(k, arg, (size_t)(sp - arg));
    int rc = 0;
    if (!j) {
        snprintf(err, errlen, "no self-code job %.*s", (int)(sp - arg), arg);
        rc = -ENOENT;
    } else if (j->accepting) {
        snprintf(err, errlen, "job %s is being accepted already", j->id);
        rc = -EBUSY;
    } else {
        json_t *b = json_pack("{s:s}", "branch", sp + 1);
        rc = pick_branch(j, b, j->acc_branch, sizeof j->acc_branch, err, errlen);
        json_decref(b);
    }
    if (rc == 0) {
        if (j->acc_started)
            pthread_join(j->acc_th, NULL); /* the earlier accept has ended: accepting was false */
        j->acc_started = false;
        json_object_set_new(j->doc, "accept", json_pack("{s:s, s:s}", "state", "running", "branch", j->acc_branch));
        code_job_save_locked(j);
        j->accepting = true;
        if (pthread_create(&j->acc_th, NULL, accept_main, j) != 0) {
            j->accepting = false;
            snprintf(err, errlen, "cannot start a thread");
            rc = -EAGAIN;
        } else {
            j->acc_started = true;
        }
    }
    pthread_mutex_unlock(&k->lock);
    return rc;
}

/* POST .../accept: checked here (job, branch, clean tree), then asked of the
 * safety policy as a "code" genome change; the policy's executor merges and
 * builds (evolve_code_execute). Without the hooks (a test driver) it runs
 * at once. */
static char *accept_job(evolve_cell *c, code_job *j, const char *body, size_t len, int *status)
{
    struct evolve_code *k = c->code;
    json_t *b = body && len ? json_loadb(body, len, 0, NULL) : json_object();
    if (!json_is_object(b)) {
        json_decref(b);
        return evolve_error(400, status, "body: a JSON object (optionally {\"branch\": NAME}) is required");
    }
    char branch[256], err[2400] = "", verdict[32] = "execute", arg[300], why[600];
    pthread_mutex_lock(&k->lock);
    int rc = j->accepting ? -EBUSY : pick_branch(j, b, branch, sizeof branch, err, sizeof err);
    if (j->accepting)
        snprintf(err, sizeof err, "job %s is being accepted already", j->id);
    const char *fit = "";
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(j->doc, "results"), i, r) {
        const char *br = json_string_value(json_object_get(r, "branch"));
        if (rc == 0 && br && !strcmp(br, branch) && json_string_value(json_object_get(r, "fitness")))
            fit = json_string_value(json_object_get(r, "fitness"));
    }
    snprintf(why, sizeof why, "self-code job %s: merge %s (%s) into %s and build it", j->id, rc ? "" : branch, fit,
             j->repo);
    pthread_mutex_unlock(&k->lock);
    json_decref(b);
    if (rc < 0)
        return evolve_error(rc == -ENOENT ? 404 : 409, status, "%s", err);
    if ((rc = tree_clean(j->repo, k->gitconfig, err, sizeof err)) < 0)
        return evolve_error(409, status, "%s", err);
    snprintf(arg, sizeof arg, "%s %s", j->id, branch);
    if (c->h.change)
        rc = c->h.change(c->h.ud, "code", arg, why, verdict, sizeof verdict, err, sizeof err);
    else
        rc = evolve_code_execute(c, arg, err, sizeof err);
    if (rc < 0)
        return evolve_error(rc == -EPERM ? 403 : 409, status, "%s", err);
    const char *msg = !strcmp(verdict, "execute") ? "merging and building: GET /v1/evolve/code/ID shows the outcome"
                                                   : err;
    return evolve_reply(json_pack("{s:s, s:s, s:s, s:s}", "id", j->id, "branch", branch, "verdict", verdict,
                                  "message", msg), 202, status);
}

char *evolve_code_http(evolve_cell *c, const char *method, const char *path, const char *query, const char *body,
                       size_t len, int *status)
{
    (void)query;
    struct evolve_code *k = c->code;
    if (!k)
        return evolve_error(503, status, "self-code evolution is unavailable");
    const char *rest = path + strlen("/v1/evolve/code");
    if (!*rest || !strcmp(rest, "/")) {
        if (!strcmp(method, "POST"))
            return start_job(c, body, len, status);
        if (!strcmp(method, "GET"))
            return list_jobs(k, status);
        return evolve_error(405, status, "%s: use GET or POST", path);
    }
    const char *id = rest + 1, *slash = strchr(id, '/');
    size_t idlen = slash ? (size_t)(slash - id) : strlen(id);
    pthread_mutex_lock(&k->lock);
    code_job *j = find(k, id, idlen);
    json_t *doc = j && !slash ? json_deep_copy(j->doc) : NULL;
    pthread_mutex_unlock(&k->lock);
    if (!j)
        return evolve_error(404, status, "no self-code job %.*s", (int)idlen, id);
    if (!slash) {
        if (strcmp(method, "GET")) {
            json_decref(doc);
            return evolve_error(405, status, "%s: use GET", path);
        }
        return evolve_reply(doc, 200, status);
    }
    if (!strcmp(slash, "/stop")) {
        if (strcmp(method, "POST"))
            return evolve_error(405, status, "%s: use POST", path);
        j->stop = 1; /* the job ends at its next step (a running command is killed) */
        return evolve_reply(json_pack("{s:s, s:b}", "id", j->id, "stopping", 1), 202, status);
    }
    if (!strcmp(slash, "/accept")) {
        if (strcmp(method, "POST"))
            return evolve_error(405, status, "%s: use POST", path);
        return accept_job(c, j, body, len, status);
    }
    return evolve_error(404, status, "no such resource: %s", path);
}
