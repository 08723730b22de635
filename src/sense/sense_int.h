/* sense_int.h: internals shared by the sensor collectors (not a public API).
 *
 * A collector is a module (nginx style): a static sn_module with init /
 * collect / fini hooks, listed once in the table in sense.c. Each collector
 * keeps its own state, caches every series id it registers, and keeps the
 * procfs files it reads open (re-read with pread at offset 0), so the steady
 * state does no path walks, no hashing and no allocation.
 *
 * Tests include this header to reach the parsers and helpers directly. */
#ifndef IPPOC_SENSE_INT_H
#define IPPOC_SENSE_INT_H

#include "sense/sense.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

typedef struct sn_col sn_col;

/* ---- reusable read buffer and kept-open files ------------------------------- */
typedef struct sn_buf {
    char *p;
    size_t cap;
} sn_buf;

typedef struct sn_file {
    int fd;          /* -1 while closed */
    char *path;      /* owned */
} sn_file;

void sn_file_init(sn_file *f);
int sn_file_set(sn_file *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sn_file_close(sn_file *f);
/* Reads the whole file (pread from offset 0 on the kept fd; opens it first
 * if needed; closes it again on an error so the next call reopens) into b,
 * NUL-terminated, growing b when full. Returns the length or -errno. */
ssize_t sn_file_read(sn_file *f, sn_buf *b);
/* One-shot read of a path (open/read/close) into b. */
ssize_t sn_path_read(const char *path, sn_buf *b);
int sn_buf_reserve(sn_buf *b, size_t cap);

/* ---- hand-written scanners (no sscanf on the hot path) ----------------------- */
static inline const char *sn_skip_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}
static inline const char *sn_skip_tok(const char *p, const char *e)
{
    while (p < e && *p != ' ' && *p != '\t' && *p != '\n')
        p++;
    return p;
}
/* start of the next line (or e) */
static inline const char *sn_eol(const char *p, const char *e)
{
    const char *nl = p < e ? memchr(p, '\n', (size_t)(e - p)) : NULL;
    return nl ? nl + 1 : e;
}
/* Skips blanks then parses an unsigned decimal; *ok false when no digit. */
static inline uint64_t sn_u64(const char **pp, const char *e, bool *ok)
{
    const char *p = sn_skip_ws(*pp, e);
    uint64_t v = 0;
    const char *s = p;
    while (p < e && *p >= '0' && *p <= '9')
        v = v * 10 + (uint64_t)(*p++ - '0');
    if (ok)
        *ok = p > s;
    *pp = p;
    return v;
}
/* The same in hexadecimal (no "0x"); *ok false when no digit. */
static inline uint64_t sn_x64(const char **pp, const char *e, bool *ok)
{
    const char *p = sn_skip_ws(*pp, e), *s = p;
    uint64_t v = 0;
    for (; p < e; p++) {
        int d = (*p >= '0' && *p <= '9') ? *p - '0'
              : (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10
              : (*p >= 'A' && *p <= 'F') ? *p - 'A' + 10 : -1;
        if (d < 0)
            break;
        v = v * 16 + (uint64_t)d;
    }
    if (ok)
        *ok = p > s;
    *pp = p;
    return v;
}
int64_t sn_i64(const char **pp, const char *e, bool *ok);
/* "12.34" style (loadavg, psi); no exponent. */
double sn_dbl(const char **pp, const char *e, bool *ok);
/* Copies text up to the next blank/newline (at most n-1 bytes) into out. */
size_t sn_tok(const char **pp, const char *e, char *out, size_t n);

/* ---- labels ----------------------------------------------------------------------- */
/* Canonical label text: key="value" pairs sorted by key, comma-separated,
 * values escaped as Prometheus does (\\, \", \n). npairs <= 6. Returns 0 or
 * -ENAMETOOLONG (out is then cut but terminated). */
int sn_labels(char *out, size_t n, int npairs, ...);
int sn_labels_v(char *out, size_t n, int npairs, const char *const *kv);

/* ---- keyed tables with a cursor (steady state: one compare per item) -------- */
typedef struct sn_tab {
    char *ents;
    size_t esz;
    int n, cap, max;
} sn_tab;
/* Every entry struct starts with this. */
typedef struct sn_key {
    char *key;       /* owned, NUL-terminated */
    uint32_t klen;
    uint32_t gen;    /* collector run (sn_col.gen) it was last seen in */
} sn_key;

void sn_tab_init(sn_tab *t, size_t esz, int max);
/* Frees keys and the array (call the entry's own cleanup first). */
void sn_tab_free(sn_tab *t);
static inline void *sn_tab_at(sn_tab *t, int i) { return t->ents + (size_t)i * t->esz; }
/* Finds key, trying *cursor first (then advancing it); appends a zeroed
 * entry when absent (*created set). Returns the index or -1 (no memory or
 * table full). */
int sn_tab_find(sn_tab *t, int *cursor, const char *key, size_t klen, bool *created);

/* ---- collectors -------------------------------------------------------------------- */
typedef struct sn_module {
    const char *name;
    /* Probes the source, allocates state (c->priv). Marks c unavailable with
     * a note when the source is missing; returns 0 or -errno (no memory). */
    int (*init)(sense_t *s, sn_col *c);
    /* Reads and puts; returns 0, or -errno when the source failed (the
     * caller then marks the collector unavailable with c->note). */
    int (*collect)(sense_t *s, sn_col *c, int64_t now_ms);
    void (*fini)(sense_t *s, sn_col *c);
    /* Optional: watch lists changed. */
    int (*reconfigure)(sense_t *s, sn_col *c);
} sn_module;

struct sn_col {
    const sn_module *mod;
    void *priv;
    bool enabled;
    bool available;
    bool logged;        /* unavailability already logged */
    char note[160];
    char src[160];      /* the note to show again once a source recovers */
    int64_t interval_ms;
    int64_t last_ms;    /* previous run, for rate intervals; 0 = never */
    int64_t retry_ms;   /* unavailable: when to probe again */
    double dt;          /* seconds since the previous run (0 on the first) */
    uint32_t gen;       /* runs so far; entries seen at gen-1 have valid prev */
    int nput;
    int nseries;
    double cost_us;
};

/* cpu states in /proc/stat order */
enum { SN_CPU_USER, SN_CPU_NICE, SN_CPU_SYSTEM, SN_CPU_IDLE, SN_CPU_IOWAIT, SN_CPU_IRQ,
       SN_CPU_SOFTIRQ, SN_CPU_STEAL, SN_CPU_GUEST, SN_CPU_GUEST_NICE, SN_CPU_NSTATES };

/* ---- the kernel bridge (/dev/ippoc, kbridge.c) ----------------------------------- */
#define SN_KB_SCHEMA 1      /* the snapshot schema this parser knows */
#define SN_KB_MAX_CPUS 8192
typedef struct sn_kb_cpu {
    int cpu;
    uint64_t v[SN_CPU_NSTATES]; /* ns, in SN_CPU_* order */
} sn_kb_cpu;
/* The fields of one snapshot the collectors use. */
typedef struct sn_kb_snap {
    int schema;
    sn_kb_cpu *cpus;   /* online cpus; owned, grown by the parser */
    int ncpus, capcpus;
    uint64_t total[SN_CPU_NSTATES];
    double load[3];
    uint64_t mem_total, mem_free, mem_available, mem_cached, mem_buffers, mem_shared, swap_free;
    uint64_t processes, threads, running;
} sn_kb_snap;
/* Parses a snapshot (n bytes, need not be terminated) into o (its cpus
 * array is reused). Returns 0; -EPROTONOSUPPORT for a schema other than
 * SN_KB_SCHEMA (o->schema says which); -EINVAL for anything malformed,
 * missing or out of range; -ENOMEM. err gets the reason. */
int sn_kb_parse(const char *buf, size_t n, sn_kb_snap *o, char *err, size_t errlen);
void sn_kb_snap_free(sn_kb_snap *o);

typedef struct sn_kb {
    int mode;                  /* CORE_SOURCE_* */
    char device[CORE_PATH_MAX];
    bool active;               /* the device passed the probe: collectors use it */
    int schema;
    char why[160];             /* why not kernel (auto), or the last runtime failure */
    int64_t tick_ms;           /* tick of the last refresh (0 = none) */
    bool ok;                   /* that refresh gave a snapshot */
    bool fail_logged;
    uint64_t fallbacks;        /* ticks the collectors fell back to procfs */
    sn_kb_snap snap;
    sn_buf buf;
} sn_kb;
/* Opens, reads to EOF and closes the device, then parses it into kb->snap.
 * 0 or -errno with the reason in why ("no /dev/ippoc", "permission denied",
 * "unknown schema 2", ...). */
int sn_kb_read(sn_kb *kb, char *why, size_t n);
/* Applies [sense] source/device: probes the device. -errno with err set
 * only when source = kernel and the device is unusable. */
int sn_kb_setup(sense_t *s, const core_config *cfg, char *err, size_t errlen);
void sn_kb_close(sn_kb *kb);
/* This tick's snapshot (read once per tick, shared by the collectors), or
 * NULL when the kernel source is not in use or failed this tick (logged once;
 * the collector then reads procfs). */
const sn_kb_snap *sn_kb_tick(sense_t *s);

struct sense {
    const core_config *cfg;   /* not owned; roots copied below */
    mem_t *mem;
    char proc[CORE_PATH_MAX];
    char sys[CORE_PATH_MAX];
    char **watch_process;     /* owned copies of the watch lists */
    int nwatch_process;
    char **watch_cgroup;
    int nwatch_cgroup;
    sn_buf buf;               /* shared read buffer (one read at a time) */
    sn_buf buf2;              /* second buffer for the rare nested read */
    long page_size;
    long clk_tck;
    int ncols;
    sn_col *cols;
    bool series_err_logged;
    int64_t now_ms;           /* of the run in progress */
    sn_kb kb;                 /* the kernel bridge */
    int apps_npids;           /* pids (numeric <proc> entries) apps listed on its last run */
    int64_t apps_scan_ms;     /* that run (0 = none): processes reuses the count */
};

/* Registers (or finds) a series; -1 on error (logged once). */
int sn_series(sense_t *s, const char *name, const char *labels, const char *unit,
              const char *help, int kind);
static inline void sn_put(sense_t *s, sn_col *c, int id, double v)
{
    if (id < 0 || isnan(v))
        return;
    mem_put(s->mem, id, v);
    c->nput++;
}
/* Lazily registers *id then puts. */
static inline void sn_put_lazy(sense_t *s, sn_col *c, int *id, const char *name,
                               const char *labels, const char *unit, const char *help,
                               int kind, double v)
{
    if (*id < 0)
        *id = sn_series(s, name, labels, unit, help, kind);
    sn_put(s, c, *id, v);
}
/* The per-second rate of a counter, or NaN when it cannot be computed
 * (first reading, counter went backwards). Updates *prev. */
static inline double sn_rate(uint64_t cur, uint64_t *prev, bool valid_prev, double dt)
{
    uint64_t p = *prev;
    *prev = cur;
    if (!valid_prev || dt <= 0 || cur < p)
        return NAN;
    return (double)(cur - p) / dt;
}
/* Marks c unavailable with a note, logging once at info. */
void sn_unavailable(sense_t *s, sn_col *c, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void sn_available(sn_col *c, const char *note);
/* Set-up shared by the collectors that read one procfs file into a keyed
 * table: inits both, points f at <proc>/<rel>, marks c available with note.
 * The caller has put its calloc'd state in c->priv. 0 or -ENOMEM. */
int sn_file_table_open(sense_t *s, sn_col *c, sn_file *f, sn_tab *t, size_t esz, int max,
                       const char *rel, const char *note);
/* Tear-down to match: closes f, frees t and c->priv. */
void sn_file_table_close(sn_col *c, sn_file *f, sn_tab *t);
/* Logs once per flag at info ("sense: NAME ...") - for partial sources. */
void sn_note_once(bool *flag, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- the table-driven counter reader ----------------------------------------------
 * Collectors whose source is rows of named things with numeric columns
 * (diskstats, net/dev) describe their series as a table of sn_ctr_field and
 * hand each parsed row to sn_ctr_put_row, which keeps the previous reading,
 * computes rates, registers each series on its first value and puts it. */
#define SN_CTR_COLS 16
#define SN_CTR_FIELDS 16
enum { SN_CTR_RATE,    /* per-second rate of col, x scale (clamped to max when max > 0) */
       SN_CTR_GAUGE,   /* col as it is, x scale */
       SN_CTR_PER };   /* delta of col / delta of col2 (0 when col2 did not move) */
typedef struct sn_ctr_field {
    int kind;
    int col, col2;
    double scale, max;
    const char *name, *unit, *help;
} sn_ctr_field;
typedef struct sn_ctr_spec {
    const sn_ctr_field *fields;
    int nfields;
    int ncols;               /* columns read per row (<= SN_CTR_COLS) */
    uint32_t active_cols;    /* bit per column: the row adds series once one is non-zero */
    const char *label;       /* label key of a row ("device", "iface") */
    bool row_reset;          /* a counter going backwards voids all the row's rates (else its own) */
} sn_ctr_spec;
/* Per-row state, kept in the collector's keyed table entry. */
typedef struct sn_ctr_row {
    bool active;
    uint64_t prev[SN_CTR_COLS];
    int ids[SN_CTR_FIELDS];
} sn_ctr_row;
void sn_ctr_row_init(sn_ctr_row *r);
/* One reading cur[0..ncols) of the row named key. valid: prev[] holds the
 * previous run's reading (and dt > 0). A counter that went backwards makes
 * the rates that use it unknown for this run, or every rate of the row with
 * row_reset (gauges are still put). */
void sn_ctr_put_row(sense_t *s, sn_col *c, const sn_ctr_spec *sp, sn_ctr_row *r, const char *key,
                    bool valid, const uint64_t *cur);

/* Whole-second due rule shared with tests. */
bool sn_due(int64_t now_ms, int64_t interval_ms);
/* Finds a collector by group name (tests). */
sn_col *sn_col_find(sense_t *s, const char *name);

/* ---- parsers exported for tests ---------------------------------------------------- */
/* Fills out[] with the percent of each state between two readings of one
 * cpu line; guest time is already inside user/nice, so it is left out of the
 * total. Returns false when no time passed. */
bool sn_cpu_percent(const uint64_t *prev, const uint64_t *cur, double *out);
/* Camel-case kernel names to snake case: "TcpExt" -> "tcp_ext". */
void sn_snake(const char *in, size_t len, char *out, size_t n);
/* Filesystem types whose mounts are not reported (pseudo or remote). */
bool sn_fs_skip_type(const char *fstype);
/* Decodes \040-style escapes of /proc/mounts in place. */
void sn_unescape_mount(char *s);
/* Counts the tcp states of a /proc/net/tcp chunk (whole lines only; returns
 * bytes consumed). counts has 16 slots, indexed by the st column. */
size_t sn_tcp_count(const char *p, size_t n, bool skip_header, uint64_t *counts);

/* The fields of /proc/PID/stat the collectors use. */
typedef struct sn_pidstat {
    char comm[64];
    char state;
    uint64_t minflt, majflt, utime, stime, threads, starttime, vsize, rss_pages;
} sn_pidstat;
int sn_parse_pid_stat(const char *buf, size_t n, sn_pidstat *o);
/* Entries of an open directory (rewound first): numeric names only, or all
 * but . and .. ; the entry named by the number skip (>= 0) is not counted;
 * -errno on error. */
int sn_count_dir(DIR *d, bool numeric, int skip);

/* ---- the module table ------------------------------------------------------------- */
extern const sn_module sn_mod_cpu, sn_mod_load, sn_mod_memory, sn_mod_psi, sn_mod_filesystem,
    sn_mod_disk, sn_mod_net, sn_mod_netstat, sn_mod_vmstat, sn_mod_fds, sn_mod_processes,
    sn_mod_tcp, sn_mod_interrupts, sn_mod_softirqs, sn_mod_process, sn_mod_apps, sn_mod_cgroup,
    sn_mod_self;
extern const sn_module sn_mod_gpu; /* gpu.c: NVIDIA GPUs through NVML (dlopen) */

#endif
