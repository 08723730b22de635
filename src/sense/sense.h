/* sense.h: the cell's body sensors.
 *
 * Collectors read procfs, sysfs and cgroupfs (never shelling out) and put
 * one value per series into memory each time their group is due. Counters are
 * turned into per-second rates here; the first reading of a counter only
 * primes it. A source that is missing (no PSI, no cgroup v2, in a container)
 * is logged once at info level and reported in the collector list, never
 * retried noisily and never fatal.
 *
 * Threads: every function runs on the loop thread. */
#ifndef IPPOC_SENSE_H
#define IPPOC_SENSE_H

#include "core/core.h"
#include "memory/memory.h"

typedef struct sense sense_t;

typedef struct sense_collector_info {
    const char *name;      /* group name, as in [sense.NAME] */
    bool enabled;          /* by config */
    bool available;        /* its source exists on this machine */
    char note[160];        /* why unavailable, or the source used ("procfs", "cgroup v2") */
    int64_t interval_ms;
    int nseries;           /* series it put on its last run */
    double last_cost_us;   /* wall time of its last run */
} sense_collector_info;

/* Where the cpu, load, memory and processes groups read from ([sense] source). */
typedef struct sense_source_info {
    char source[16];            /* "kernel" or "procfs" */
    char mode[16];              /* the configured "auto", "procfs" or "kernel" */
    char device[256];           /* the device path (cut to fit) */
    int schema;                 /* snapshot schema, when kernel */
    char reason[160];           /* auto on procfs: why not kernel; kernel: the last failure */
    uint64_t fallbacks;         /* ticks that fell back to procfs after a failed read */
    bool last_failed;           /* the last tick's read failed */
} sense_source_info;

int sense_open(sense_t **out, const core_config *cfg, mem_t *mem, char *err, size_t errlen);
/* Applies a reloaded config (intervals, enabled groups, watch lists). */
int sense_reconfigure(sense_t *s, const core_config *cfg, char *err, size_t errlen);
void sense_close(sense_t *s);
/* Runs every group due at now_ms (a whole second) and mem_put()s its values.
 * The caller then calls mem_tick(). Returns the number of values put. */
int sense_collect(sense_t *s, int64_t now_ms);
/* Fills up to max entries; returns the number of collectors. */
int sense_collectors(sense_t *s, sense_collector_info *out, int max);

void sense_source(sense_t *s, sense_source_info *out);
/* The device path while the kernel source is in use, else NULL (renice). */
const char *sense_kernel_device(sense_t *s);

/* ---- node_exporter-compatible exposition (nx.c; see nx_int.h) ---------------
 * Unlike the rest of this header, these run on any thread: the handle has
 * its own mutex and reads procfs/sysfs at scrape time, sharing nothing with
 * sense_t. */
typedef struct sense_nx sense_nx;
/* Roots from cfg (proc_root, sys_root, textfile_dir). 0 or -ENOMEM. */
int sense_nx_open(sense_nx **out, const core_config *cfg, char *err, size_t errlen);
/* A reload: new textfile directory. */
void sense_nx_reconfigure(sense_nx *x, const core_config *cfg);
void sense_nx_close(sense_nx *x);
/* Renders every node_* family and hands the whole text to emit (once, while
 * the handle's lock is held). 0, or -ENOMEM (emit not called). */
int sense_nx_render(sense_nx *x, void (*emit)(void *ud, const char *text, size_t len), void *ud);

#endif
