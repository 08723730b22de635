/* evolve.h: how a cell changes itself, and proves a change is better.
 *
 * - the genome (genome.c, libgit2): the cell's config, tuned knob files and
 *   tools in a git repository in STATE/genome; every change is a commit whose
 *   message ends in trailers (Ippoc-Kind, Ippoc-Reason, Ippoc-Fitness);
 * - spaces and experiments (space.c, run.c, tpe.c, propose_llm.c, stats.c):
 *   `ippoc evolve run --space FILE --fitness CMD --budget 30m` tries
 *   candidates in the sandbox against the incumbent, interleaved, and accepts
 *   one only on a significant gain (one-sided Mann-Whitney U, Hodges-Lehmann
 *   interval above the minimum gain, then a fresh confirmation batch);
 * - the WorldModel sandbox (sandbox*.c): bubblewrap namespaces, a seccomp
 *   filter, cgroup limits and a deadline around anything untrusted;
 * - watch after merge (watch.c): a merged change applied to the live cell is
 *   on probation; a regression reverts it;
 * - ToolSmith (tool*.c): Lua 5.4 tools in a restricted state and WebAssembly
 *   tools under wasm-interp in the sandbox;
 * - self-code evolution (code.c): a model's patch to IPPOC's own source,
 *   built, tested and benchmarked in the sandbox, kept on a branch until
 *   `ippoc evolve accept`.
 *
 * The daemon owns one evolve_cell (evolve.c); the API forwards /v1/genome,
 * /v1/evolve and /v1/tools requests to evolve_http. Every change to the live
 * machine goes through the heal safety policy and the audit log: the cell
 * asks for it through hooks->change (a "genome" action), and heal runs it
 * through evolve_execute. Errors are negative errno values with a message
 * naming the place and the reason. */
#ifndef IPPOC_EVOLVE_H
#define IPPOC_EVOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* ======================= the genome (genome.c) ======================= */

typedef struct evolve_genome evolve_genome;

/* What a commit's message records. kind: "import" (a file changed outside
 * IPPOC, found at start or reload), "config" (an edit through ippoc),
 * "evolve" (an accepted candidate), "rollback", "revert" (watch after merge
 * or a person), "tool". fitness: e.g. "+17.2% tps [+9.1%, +25.0%] p=0.003"
 * or NULL. author: "ippoc", "operator", a user name. */
typedef struct evolve_trailer {
    const char *kind;
    const char *author;
    const char *reason;
    const char *fitness;
} evolve_trailer;

/* Opens the repository in dir, creating it (with a first, empty commit) when
 * missing. A repository that libgit2 cannot open is -EIO with err; one whose
 * working tree differs from HEAD opens, and evolve_genome_check says so.
 * Thread-safe afterwards (one internal lock). */
int evolve_genome_open(const char *dir, evolve_genome **out, char *err, size_t errlen);
void evolve_genome_close(evolve_genome *g);
const char *evolve_genome_dir(const evolve_genome *g);
/* 0 when the working tree and index match HEAD; -EUCLEAN with the changed
 * paths in err ("working tree differs from HEAD: ippoc.conf (modified), x
 * (deleted)"); -EIO when objects are missing or corrupt. */
int evolve_genome_check(evolve_genome *g, char *err, size_t errlen);
/* Writes path (relative, no "..") in the working tree and commits it with t.
 * 0 and oid (40 hex + NUL) when committed; 1 when the content was already
 * that (no commit, oid = HEAD); -errno with err. */
int evolve_genome_write(evolve_genome *g, const char *path, const void *data, size_t len,
                        const evolve_trailer *t, char oid[41], char *err, size_t errlen);
/* The content of path at rev (NULL = HEAD; any rev libgit2 parses: an oid
 * prefix, HEAD~2, a branch). *data is malloc'd and NUL-terminated.
 * -ENOENT when the path is not in that tree. */
int evolve_genome_read(evolve_genome *g, const char *rev, const char *path, char **data, size_t *len,
                       char *err, size_t errlen);
/* Newest first, at most limit (0 = 50), only commits touching path when
 * path is not NULL: [{"id","short","time","author","kind","reason",
 * "fitness","files":[...]}]. NULL with err on failure. */
json_t *evolve_genome_history(evolve_genome *g, const char *path, int limit, char *err, size_t errlen);
/* A unified diff (malloc'd): rev against its first parent, or "A..B". */
int evolve_genome_diff(evolve_genome *g, const char *rev, char **patch, char *err, size_t errlen);
/* A new commit whose tree is rev's tree (rollback) or that undoes rev's
 * changes only (revert). *changed (may be NULL) gets the paths whose content
 * changed, as a JSON array. 0 with oid; 1 when nothing changed; -errno. */
int evolve_genome_rollback(evolve_genome *g, const char *rev, const evolve_trailer *t, char oid[41],
                           json_t **changed, char *err, size_t errlen);
int evolve_genome_revert(evolve_genome *g, const char *rev, const evolve_trailer *t, char oid[41],
                         json_t **changed, char *err, size_t errlen);
/* The full oid of rev; -ENOENT when it does not resolve. */
int evolve_genome_resolve(evolve_genome *g, const char *rev, char oid[41], char *err, size_t errlen);
/* Whether libgit2 is loaded now. The genome loads it at run time on its
 * first call and unloads it (git_libgit2_shutdown, dlclose, malloc_trim)
 * when no call has come for 60 s ($IPPOC_GIT_IDLE_MS ms when set) or the
 * last genome closes; a later call loads it again. */
bool evolve_genome_lib_loaded(void);

/* Machine files IPPOC changes are mirrored in the genome under "files/"
 * followed by their absolute path ("files/etc/postgresql/15/main/conf.d/
 * ippoc.conf"); the cell's own config is "ippoc.conf"; tools are "tools/NAME.lua"
 * or "tools/NAME.wasm"; a space whose result was accepted is "spaces/NAME.space". */
#define EVOLVE_GENOME_FILES "files/"

/* ======================= statistics (stats.c) ======================= */

/* Is cand better than base (higher is better)? p: one-sided Mann-Whitney U
 * (exact distribution without ties up to 25+25 samples, else the normal
 * approximation with the tie correction and continuity). gain: the
 * Hodges-Lehmann estimate of the relative gain, computed on logarithms (the
 * median of all log(cand_j) - log(base_i), back as exp(.) - 1); lo/hi: its
 * distribution-free confidence interval at level conf (e.g. 0.95) from the
 * U distribution's quantiles. Values must be > 0. 0, or -EINVAL (fewer than
 * 2 samples on a side, a value <= 0 or not finite). */
typedef struct evolve_test {
    double u;        /* U of cand over base */
    double p;        /* one-sided p that cand > base */
    double gain;     /* HL relative gain: 0.05 = +5 % */
    double lo, hi;   /* its interval */
    double median_base, median_cand;
    int n_base, n_cand;
} evolve_test;
int evolve_stats_test(const double *base, int nb, const double *cand, int nc, double conf, evolve_test *out);
/* Holm's step-down adjustment of n p-values (adj[i] for p[i], monotone,
 * capped at 1). */
void evolve_stats_holm(const double *p, int n, double *adj);
/* Median of n values (copies; n >= 1). */
double evolve_stats_median(const double *v, int n);

/* ======================= spaces (space.c) ======================= */

typedef enum evolve_knob_type {
    EVOLVE_KNOB_INT = 0,   /* integer in [min, max] */
    EVOLVE_KNOB_FLOAT,     /* real in [min, max] */
    EVOLVE_KNOB_SIZE,      /* bytes in [min, max]; written with unit (kB, MB, GB as in postgresql.conf) */
    EVOLVE_KNOB_DURATION,  /* milliseconds; written as e.g. 300s, 15min */
    EVOLVE_KNOB_ENUM,      /* one of choices */
    EVOLVE_KNOB_BOOL,      /* on / off */
} evolve_knob_type;

#define EVOLVE_MAX_KNOBS 32
#define EVOLVE_MAX_CHOICES 16
#define EVOLVE_MAX_SEEDS 8
#define EVOLVE_MAX_PATHS 8
#define EVOLVE_TEXT 512

typedef struct evolve_knob {
    char name[64];                 /* the [knob NAME] section */
    char file[EVOLVE_TEXT];        /* absolute path of the file holding it */
    char key[128];                 /* the key in that file (default: name) */
    evolve_knob_type type;
    double min, max;               /* native units (bytes, ms, plain numbers) */
    bool log_scale;                /* search on a log scale (default for size/duration spanning > 16x) */
    char unit[8];                  /* size/duration: the unit written ("MB", "kB", "s", "ms"); "" = smallest exact */
    char choices[EVOLVE_MAX_CHOICES][64];
    int nchoices;
    char seeds[EVOLVE_MAX_SEEDS][64]; /* heuristic values to try first (text, in the knob's syntax) */
    int nseeds;
    char apply[EVOLVE_TEXT];       /* command after writing it (argv, split on blanks; no shell unless written) */
    char revert[EVOLVE_TEXT];
} evolve_knob;

typedef struct evolve_space {
    char name[64];
    char path[EVOLVE_TEXT];        /* where it was loaded from */
    evolve_knob knobs[EVOLVE_MAX_KNOBS];
    int nknobs;
    char apply[EVOLVE_TEXT];       /* [space] apply: after all knob files are written */
    char revert[EVOLVE_TEXT];
    char fitness[EVOLVE_TEXT];     /* [space] fitness (the --fitness option wins) */
    bool minimize;                 /* [space] goal = min (default max) */
    char writable[EVOLVE_MAX_PATHS][EVOLVE_TEXT]; /* [sandbox] writable: what a trial may write besides knob files */
    int nwritable;
    bool network;                  /* [sandbox] network = loopback: AF_INET on the private loopback allowed */
    int64_t trial_timeout_ms;      /* [sandbox] timeout (default 300 s) */
    uint64_t memory_bytes;         /* [sandbox] memory (default 1 GB) */
    double cpu_percent;            /* [sandbox] cpu, % of one core (0 = unlimited) */
    char never[16][64];            /* [space] never: keys no knob may name (e.g. fsync) */
    int nnever;
} evolve_space;

/* Loads an INI space file (docs/evolve.md): [space], [sandbox], [knob NAME]
 * sections. Errors name "FILE:LINE: reason" (unknown key, bad type, min >
 * max, a seed outside the range, a knob on the never list, a relative file,
 * duplicate knob). 0 or -EINVAL / -ENOENT. */
int evolve_space_load(const char *path, evolve_space *out, char *err, size_t errlen);
/* Same from text (name used in messages). */
int evolve_space_parse(const char *text, const char *name, evolve_space *out, char *err, size_t errlen);
/* A knob value: text <-> native number (enum/bool: the choice's index). */
int evolve_knob_parse(const evolve_knob *k, const char *text, double *v, char *err, size_t errlen);
void evolve_knob_format(const evolve_knob *k, double v, char *buf, size_t n);
/* Rewrites file's "key = value" lines for the knobs of s that live in file
 * (replacing an existing line, else appending), keeping every other line.
 * values: one per knob of s (native). Atomic (rename). 0 or -errno. */
int evolve_space_write_file(const evolve_space *s, const char *file, const double *values, char *err, size_t errlen);
/* The current values of s's knobs as found in their files (a knob whose key
 * is absent gets NAN). */
int evolve_space_read_values(const evolve_space *s, double *values, char *err, size_t errlen);

/* ======================= proposers (tpe.c, propose_llm.c) ======================= */

typedef struct evolve_tpe evolve_tpe;
/* Tree-structured Parzen estimator over s: first the seeds (each knob's
 * seeds, combined), then n_startup random points, then TPE (gamma = 0.25,
 * 24 candidates from l(x), pick max l/g), with one random restart in every 5. */
int evolve_tpe_new(const evolve_space *s, uint64_t seed, evolve_tpe **out);
void evolve_tpe_free(evolve_tpe *t);
/* x: one value per knob (native); y: fitness, higher better (the run
 * negates a minimised one). */
void evolve_tpe_observe(evolve_tpe *t, const double *x, double y);
/* Fills x; why: "seed", "random", "tpe l/g=3.1", "restart". */
void evolve_tpe_propose(evolve_tpe *t, double *x, char *why, size_t whylen);

/* ======================= the WorldModel sandbox (sandbox*.c) ======================= */

typedef enum evolve_sbx_verdict {
    EVOLVE_SBX_OK = 0,     /* exited 0 */
    EVOLVE_SBX_FAILED,     /* exited non-zero or died of a signal of its own */
    EVOLVE_SBX_TIMEOUT,    /* killed at the deadline */
    EVOLVE_SBX_MEMORY,     /* killed by its cgroup's memory limit */
    EVOLVE_SBX_WRITE,      /* tried to write outside its writable paths: killed */
    EVOLVE_SBX_NET,        /* opened a network socket it may not: killed */
    EVOLVE_SBX_SYSCALL,    /* a forbidden system call (mount, ptrace, bpf, module, reboot, ...): killed */
    EVOLVE_SBX_ERROR,      /* could not be started */
} evolve_sbx_verdict;

typedef struct evolve_sandbox_opts {
    const char *const *argv;       /* NULL-terminated; argv[0] looked up in PATH */
    const char *cwd;               /* NULL: the first writable path, else / */
    const char *const *writable;   /* host paths (files or dirs) writable inside, same path */
    int nwritable;
    const char *const *env;        /* extra NAME=VALUE, NULL-terminated (may be NULL) */
    bool network;                  /* private netns always; true: AF_INET/AF_INET6 allowed (loopback only exists) */
    int64_t timeout_ms;            /* 0: 300 s */
    uint64_t memory_bytes;         /* 0: 1 GB */
    double cpu_percent;            /* of one core; 0: unlimited */
    size_t out_max;                /* stdout kept (0: 1 MiB); stderr keeps its last 4 KiB */
    const char *shim;              /* the binary with --sandbox-exec; NULL: /proc/self/exe */
} evolve_sandbox_opts;

typedef struct evolve_sandbox_result {
    evolve_sbx_verdict verdict;
    int exit_code;                 /* when it exited */
    int signal;                    /* when a signal ended it */
    char detail[EVOLVE_TEXT];      /* e.g. "wrote /etc/passwd", "socket(AF_INET)", "memory limit 64 MB" */
    char *out;                     /* stdout, NUL-terminated (malloc'd) */
    size_t out_len;
    char *err_tail;                /* last 4 KiB of stderr (malloc'd) */
    int64_t wall_ms, cpu_ms;
    uint64_t max_rss;              /* bytes, from the cgroup when known */
} evolve_sandbox_result;

/* Runs o->argv in the sandbox and waits. 0 with r filled (whatever the
 * verdict), or -errno with err when it could not even be set up (no bwrap:
 * -ENOSYS). Any thread; blocks up to the deadline plus a second. */
int evolve_sandbox_run(const evolve_sandbox_opts *o, evolve_sandbox_result *r, char *err, size_t errlen);
void evolve_sandbox_result_free(evolve_sandbox_result *r);
const char *evolve_sbx_verdict_name(evolve_sbx_verdict v); /* "ok", "failed", "timeout", "memory", "write", "net", "syscall", "error" */
/* Whether bwrap is installed and works here; why when not. */
bool evolve_sandbox_available(char *why, size_t n);
/* The shim: main() of ippocd calls this when argv[1] is "--sandbox-exec"
 * (inside bwrap: installs the seccomp filter, hands its notification fd to
 * the supervisor, execs the command). Returns an exit status. */
int evolve_sandbox_exec_main(int argc, char **argv);

/* ======================= ToolSmith (tool*.c) ======================= */

/* What a tool may call: the daemon fills these (NULL: the call fails in the
 * tool with "unavailable"). All are called on the tool's thread. */
typedef struct evolve_tool_host {
    /* The latest value of metric (labels "" or "k=v,..."); 0 or -ENOENT. */
    int (*metric)(void *ud, const char *name, const char *labels, double *value);
    /* JSON text of the last n incidents (malloc'd), NULL when unavailable. */
    char *(*incidents)(void *ud, int n);
    /* Proposes one typed action (rule-language text, e.g. "restart" for
     * service) through the safety policy; the verdict text in out. 0 or -errno. */
    int (*propose)(void *ud, const char *service, const char *action, const char *why, char *out, size_t outlen);
    void *ud;
} evolve_tool_host;

/* Limits of one Lua tool run. */
typedef struct evolve_tool_limits {
    uint64_t instructions;         /* 0: 10 million VM instructions */
    size_t memory_bytes;           /* 0: 16 MiB */
    int64_t timeout_ms;            /* 0: 5 s (wall) */
} evolve_tool_limits;

/* Runs tool source (Lua 5.4, docs/tools.md) in a restricted state: function
 * `run(args)` with args (JSON object; may be NULL), or, when test is true,
 * every function in the returned table's `tests`. *result: JSON
 * {"ok":bool,"value":...,"error":"...","log":[...],"instructions":N}. 0
 * (also when the tool failed: see ok), -EINVAL when the source does not load
 * (err names NAME:LINE). */
int evolve_tool_run_lua(const char *name, const char *source, const json_t *args, bool test,
                        const evolve_tool_host *host, const evolve_tool_limits *lim, json_t **result,
                        char *err, size_t errlen);
/* Runs a WebAssembly tool (path) under wasm-interp --wasi in the sandbox
 * with args as its command-line arguments; result as above ("value": its
 * stdout). -ENOSYS when wasm-interp is missing. */
int evolve_tool_run_wasm(const char *path, const char *const *args, const char *shim, json_t **result,
                         char *err, size_t errlen);
/* The shim mode for a tool's tests: main() of ippocd calls this when
 * argv[1] is "--tool-test" (with argc - 1, argv + 1: argv[0] is
 * "--tool-test", argv[1] the tool's FILE.lua). Runs its tests in a
 * restricted state with no host, prints the result JSON (as
 * evolve_tool_run_lua's) on stdout; exit status 0 when they all passed,
 * 1 when not, 2 on a usage or read error. */
int evolve_tool_test_main(int argc, char **argv);

/* ======================= the cell's evolution (evolve.c) ======================= */

typedef struct evolve_cell evolve_cell;
struct llm;
struct mem;
struct mem_know;

typedef struct evolve_hooks {
    /* Asks for a change to the live machine through the safety policy and
     * the audit log: op "apply" (write the genome's files at rev to the
     * machine and run their apply commands), "tool" (add a drafted tool,
     * arg = its draft id); heal decides (run now, queue for approval, refuse)
     * and calls evolve_execute when it runs. verdict: "execute", "queue",
     * "refuse" (with err). 0 or -errno. Any thread. */
    int (*change)(void *ud, const char *op, const char *arg, const char *why, char *verdict, size_t vlen,
                  char *err, size_t errlen);
    /* The cell's config file changed in the genome (rollback): the daemon
     * writes it to its path and reloads. 0 or -errno. Any thread. */
    int (*config_changed)(void *ud, const char *text, char *err, size_t errlen);
    evolve_tool_host tools;
    void *ud;
} evolve_hooks;

typedef struct evolve_cell_opts {
    const char *state_dir;         /* the genome is STATE/genome, runs STATE/evolve/ */
    const char *config_path;       /* the cell's config file (NULL: none; the embedded default) */
    const char *config_text;       /* its text as loaded (imported into the genome when it differs) */
    struct llm *llm;               /* may be NULL: no model proposals, no drafts, no self-code */
    struct mem *mem;               /* events (probation watch), may be NULL in tests */
    struct mem_know *know;         /* knowledge cited by the model's proposals; may be NULL */
    const char *shim;              /* NULL: /proc/self/exe */
    int64_t probation_ms;          /* watch after merge ([evolve] probation, default 10 min) */
} evolve_cell_opts;

int evolve_cell_new(const evolve_cell_opts *o, const evolve_hooks *h, evolve_cell **out, char *err, size_t errlen);
/* Stops runs (their state saved) and frees. */
void evolve_cell_free(evolve_cell *c);
evolve_genome *evolve_cell_genome(evolve_cell *c);
/* The config was reloaded with text: imported into the genome when it differs. */
void evolve_cell_config_loaded(evolve_cell *c, const char *text);
/* Executes an approved change (heal's executor for "genome" actions, on its
 * pool). 0 or -errno with err. */
int evolve_execute(evolve_cell *c, const char *op, const char *arg, char *err, size_t errlen);
/* One API request under /v1/genome, /v1/evolve, /v1/tools: a malloc'd JSON
 * (or text for a diff) body with *status (200, 201, 202, 400, 404, 409,
 * 503). query: the raw query string (may be NULL); body: may be NULL.
 * Blocking calls are bounded (a tool run by its limits). Any thread. */
char *evolve_http(evolve_cell *c, const char *method, const char *path, const char *query, const char *body,
                  size_t body_len, int *status);

#endif
