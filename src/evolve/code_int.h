/* code_int.h: what the parts of self-code evolution share (code.c: jobs and
 * routes; code_job.c: the job thread; code_exec.c: running the operator's
 * commands and git; code_patch.c: patch checks, prompts, fitness text). */
#ifndef IPPOC_EVOLVE_CODE_INT_H
#define IPPOC_EVOLVE_CODE_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evolve/evolve_int.h"

#define CODE_TAIL 2048            /* output kept for a failed step */
#define CODE_PROMPT_MAX (48 * 1024) /* target text sent to the model */

/* ---- code_exec.c ---- */

/* Splits an operator's command text into commands and their argv: words on
 * blanks, '...' and "..." group (\" and \\ inside double quotes), an
 * unquoted "&&" word starts the next command (each runs only when the one
 * before it exited 0). No shell: `sh -c '...'` only when written so.
 * *cmds: NULL-terminated array of NULL-terminated argv (code_cmds_free).
 * 0 or -EINVAL with err. */
int code_cmds_split(const char *text, char ****cmds, char *err, size_t errlen);
void code_cmds_free(char ***cmds);

typedef struct code_run_res {
    bool ok;                  /* every command exited 0 */
    int exit_code;            /* the failing command's (or -1) */
    char verdict[32];         /* the sandbox's verdict name or "ok"/"failed"/"timeout"/"error" */
    char how[160];            /* "sandbox" or "direct: WHY" */
    char *out;                /* stdout of the last command run (malloc'd) */
    char tail[CODE_TAIL];     /* last bytes of stderr (and the sandbox's detail) */
    int64_t wall_ms;
} code_run_res;
void code_run_res_free(code_run_res *r);

/* Runs text (code_cmds_split) in cwd: in the sandbox (writable: cwd only,
 * no network, timeout and memory limits) when use_sandbox, falling back to a
 * direct run when the sandbox is not available (-ENOSYS; r->how says so).
 * A "meson setup DIR" command is skipped when DIR/build.ninja exists.
 * *stop ends it early. 0 with r filled, -errno (bad text) with err. */
int code_run(const char *text, const char *cwd, bool use_sandbox, const char *shim, int64_t timeout_ms,
             atomic_int *stop, code_run_res *r, char *err, size_t errlen);
/* Runs argv directly (git), stdout into *out when out is not NULL
 * (malloc'd), stderr's tail into tail; gitconfig (may be NULL) becomes
 * GIT_CONFIG_GLOBAL (code.c's: safe.directory = *, so root may read an
 * operator's repository, and ippoc's identity). The exit code, or -errno. */
int code_exec_argv(const char *const *argv, const char *cwd, const char *gitconfig, int64_t timeout_ms, char **out,
                   char *tail, size_t taillen);
/* Running as root on a repository another user owns: gives what root owns
 * in it (refs, objects, merged files, build outputs IPPOC wrote) to that
 * owner. */
void code_fix_owner(const char *repo);
/* The last number printed in text; false when none. */
bool code_parse_number(const char *text, double *v);
/* rm -rf of a directory we made. */
void code_rmtree(const char *dir);

/* ---- code_patch.c ---- */

/* The files a unified diff touches (from "diff --git", "---" and "+++"
 * lines, a/ b/ stripped; /dev/null skipped), as a JSON array. */
json_t *code_patch_files(const char *patch);
/* 0 when patch touches target only; -EPERM with err naming the others;
 * -EINVAL when it touches nothing. */
int code_patch_check_files(const char *patch, const char *target, char *err, size_t errlen);
/* The user message for the model (malloc'd). history: earlier candidates'
 * outcomes (JSON array of results, may be NULL). */
char *code_prompt(const char *target, const char *text, const char *bench, const char *test, bool maximize,
                  const double *base, int nbase, const json_t *history);
extern const char code_system_prompt[];
extern const char code_schema[];
/* The judgement: base and cand as measured (lower better unless maximize).
 * Fills t (evolve_stats_test on the fitness, 1/x when minimising). */
int code_judge(const double *base, int nb, const double *cand, int nc, bool maximize, evolve_test *t);
/* "+12.3% [+5.0%, +20.1%] p=0.0012" */
void code_fitness_text(const evolve_test *t, char *buf, size_t n);
/* Is text a safe relative path inside a repository (no "..", not absolute)? */
bool code_path_ok(const char *p);

/* ---- code.c / code_job.c: jobs ---- */

#define CODE_MAX_JOBS 64
#define CODE_DEFAULT_BUILD "meson setup build && ninja -C build"
#define CODE_DEFAULT_TEST "meson test -C build --suite unit"

typedef struct code_job {
    struct evolve_code *k;
    char id[24];
    char dir[4096];                /* STATE/evolve/code/ID */
    char *repo, *target, *bench, *build, *test;
    bool maximize;
    int repeats, candidates;
    int64_t timeout_ms;            /* each build, test or bench command */
    json_t *doc;                   /* what GET shows; under k->lock */
    pthread_t th;
    bool started, accepting;
    pthread_t acc_th;              /* the latest accept (merge and build) */
    bool acc_started;
    char acc_branch[256];
    atomic_int stop;                
} code_job;

struct evolve_code {
    evolve_cell *c;
    pthread_mutex_t lock;
    char dir[4096];                /* STATE/evolve/code */
    char gitconfig[4200];          /* STATE/evolve/code/gitconfig: GIT_CONFIG_GLOBAL of our git runs */
    code_job *jobs[CODE_MAX_JOBS];
    int njobs;
};

/* Sets key in the job's document (v stolen) and saves it (ID/job.json). */
void code_job_set(code_job *j, const char *key, json_t *v);
/* Writes the document; the caller holds k->lock. */
void code_job_save_locked(code_job *j);
/* The job thread. */
void *code_job_main(void *arg);

#endif
