/* evolve_int.h: what the parts of src/evolve share (not for other modules).
 *
 * evolve.c owns struct evolve_cell and sends each API request to the part
 * that serves it; every part keeps its own state behind one pointer here and
 * has new/free/http functions. */
#ifndef IPPOC_EVOLVE_INT_H
#define IPPOC_EVOLVE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "evolve/evolve.h"

struct evolve_runs;  /* run.c: experiment runs (STATE/evolve/runs/ID.json) */
struct evolve_tools; /* tool.c: the tools in the genome, drafts */
struct evolve_code;  /* code.c: self-code evolution jobs */
struct evolve_watch; /* watch.c: merged changes on probation */

struct evolve_cell {
    evolve_cell_opts o;            /* strings below are owned copies */
    char *state_dir, *config_path, *shim;
    evolve_hooks h;
    evolve_genome *g;
    char evolve_dir[4096];         /* STATE/evolve */
    struct evolve_runs *runs;
    struct evolve_tools *tools;
    struct evolve_code *code;
    struct evolve_watch *watch;
};

/* A JSON reply: body (stolen) dumped, *status set. */
char *evolve_reply(json_t *body, int status, int *out_status);
/* {"error": msg} with status. */
char *evolve_error(int status, int *out_status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- genome routes (genome_http.c) ----
 *   GET  /v1/genome[?path=P&limit=N]   history
 *   GET  /v1/genome/check              {"ok":bool,"error":...}
 *   GET  /v1/genome/diff?rev=REV       text/x-diff
 *   GET  /v1/genome/show?rev=R&path=P  the file's text
 *   POST /v1/genome/rollback {"rev","reason"} -> through the policy */
char *evolve_genome_http(evolve_cell *c, const char *method, const char *path, const char *query,
                         const char *body, size_t len, int *status);

/* ---- experiment runs (run.c, run_http.c) ----
 *   POST /v1/evolve/runs {"space": PATH or "space_text", "fitness", "budget_s", "repeats",
 *                         "min_gain", "alpha", "seed", "apply": bool} -> 202 {"id"}
 *   GET  /v1/evolve[/runs]             every run's summary
 *   GET  /v1/evolve/runs/ID            one run with its trials (the fitness history)
 *   POST /v1/evolve/runs/ID/stop */
int evolve_runs_new(evolve_cell *c, struct evolve_runs **out, char *err, size_t errlen);
void evolve_runs_free(struct evolve_runs *r);
char *evolve_runs_http(evolve_cell *c, const char *method, const char *path, const char *query,
                       const char *body, size_t len, int *status);

/* ---- tools (tool.c) ----
 *   GET  /v1/tools                     the tools in the genome and drafts
 *   POST /v1/tools/NAME/run {"args"}   run it (Lua: restricted state; wasm: sandbox)
 *   POST /v1/tools/NAME/test           run its own tests
 *   POST /v1/tools/draft {"name","description"} -> the model writes one, its tests run in the sandbox,
 *                                      then a "tool" change goes through the policy */
int evolve_tools_new(evolve_cell *c, struct evolve_tools **out, char *err, size_t errlen);
void evolve_tools_free(struct evolve_tools *t);
char *evolve_tools_http(evolve_cell *c, const char *method, const char *path, const char *query,
                        const char *body, size_t len, int *status);
/* evolve_execute's "tool" op: commits draft id into the genome. */
int evolve_tools_accept(evolve_cell *c, const char *draft_id, char *err, size_t errlen);

/* ---- self-code evolution (code.c) ----
 *   POST /v1/evolve/code {"repo","target","bench","build","test","repeats"} -> 202 {"id"}
 *   GET  /v1/evolve/code[/ID]
 *   POST /v1/evolve/code/ID/accept {"branch"?}
 *   POST /v1/evolve/code/ID/stop */
int evolve_code_new(evolve_cell *c, struct evolve_code **out, char *err, size_t errlen);
void evolve_code_free(struct evolve_code *k);
/* evolve_execute's "code" op (an accept the policy let run): arg "ID
 * BRANCH"; merges BRANCH into the job's repository and builds it on a
 * thread of its own (the outcome is the job's "accept"). 0 or -errno. */
int evolve_code_execute(evolve_cell *c, const char *arg, char *err, size_t errlen);
char *evolve_code_http(evolve_cell *c, const char *method, const char *path, const char *query,
                       const char *body, size_t len, int *status);

/* ---- applying the genome to the machine and probation (watch.c) ----
 *   GET  /v1/evolve/watch              changes on probation and their outcome */
int evolve_watch_new(evolve_cell *c, struct evolve_watch **out, char *err, size_t errlen);
void evolve_watch_free(struct evolve_watch *w);
/* evolve_execute's "apply" op: writes the genome's files/ at rev to their
 * absolute paths, runs the apply commands of the spaces whose knobs live
 * there, hands a changed ippoc.conf to hooks.config_changed, and puts rev on
 * probation (a regression reverts it: genome revert commit + an "apply" change
 * of the revert, reason recorded). */
int evolve_watch_apply(evolve_cell *c, const char *rev, char *err, size_t errlen);
char *evolve_watch_http(evolve_cell *c, const char *method, const char *path, const char *query,
                        const char *body, size_t len, int *status);

/* ---- running a command directly, with a deadline (exec.c) ---- */
typedef struct evolve_exec_opts {
    const char *const *argv; /* argv[0] looked up in PATH */
    const char *cwd;         /* NULL: the daemon's */
    char *const *envp;       /* NULL: environ */
    int64_t timeout_ms;      /* > 0 */
    atomic_int *stop;        /* NULL, or set by another thread: killed, res.stopped */
    size_t out_max;          /* stdout kept up to this many bytes (the rest dropped); 0: to /dev/null */
    char *tail;              /* the end of stderr, NUL-terminated; NULL: to /dev/null */
    size_t taillen;
} evolve_exec_opts;
typedef struct evolve_exec_res {
    char *out; /* malloc'd, NUL-terminated, when out_max; the caller frees it */
    size_t out_len;
    int status; /* waitpid's; exec failure: exit 127 ("cannot run" in the tail) */
    bool timed_out, stopped;
    int64_t wall_ms;
} evolve_exec_res;
/* Forks and execs o->argv in its own process group (stdin /dev/null, no
 * inherited descriptors, no blocked signals), reads its output until it
 * exits, the deadline passes or *stop is set, then kills the group. 0 when
 * it ran (r says how it ended), -errno when it could not be started. */
int evolve_exec(const evolve_exec_opts *o, evolve_exec_res *r);
/* Appends n bytes to tail (a NUL-terminated string of taillen bytes at most
 * with its NUL), dropping its oldest bytes. */
void evolve_exec_tail_add(char *tail, size_t taillen, const char *buf, size_t n);

#endif
