/* nx_int.h: internals of the node_exporter-compatible exposition (nx*.c).
 *
 * `/metrics` serves the host's metrics under node_exporter 1.5's own family
 * names, types, units, label names and semantics, read at scrape time the way
 * node_exporter reads them (counters as the kernel's cumulative values in base
 * units, never rates), so a user can point every existing Grafana dashboard
 * and alert at ippocd instead. This is a second view of the body, separate
 * from the per-second sensing tick: it costs nothing until something scrapes.
 *
 * A collector is one function in the table in nx.c, named as node_exporter
 * names its collector (`cpu`, `meminfo`, `diskstats`, ...). It reads under
 * x->proc / x->sys (tests point them at fixture trees) and describes families
 * and samples through nx_family / nx_sample. Families are buffered per
 * collector and written out whole when it returns, so a collector may loop
 * over devices outside and families inside: each family still comes out as
 * one block (HELP, TYPE, samples), and a family with no samples is left out,
 * as node_exporter does. Buffers are kept between scrapes: the steady state
 * allocates nothing.
 *
 * A collector returns 0, or -errno when its source failed; the framework then
 * reports node_scrape_collector_success{collector="NAME"} 0, as node_exporter
 * does, and keeps whatever the collector described before it failed.
 *
 * Threads: sense_nx_render holds the handle's mutex for a whole scrape, so
 * collectors use the ctx's buffers freely; nothing here touches the loop's
 * sense_t. */
#ifndef IPPOC_SENSE_NX_INT_H
#define IPPOC_SENSE_NX_INT_H

#include "sense/sense_int.h"

enum { NX_GAUGE = 0, NX_COUNTER, NX_UNTYPED, NX_HISTOGRAM, NX_SUMMARY /* textfile only */ };

/* Families one collector may describe: the array grows as needed (kept
 * between scrapes) up to this bound; past it nx_family returns -1. */
#define NX_MAX_FAMILIES 10000
#define NX_MAX_LABELS 8

typedef struct nx_outbuf {
    char *p;
    size_t len, cap;
    bool oom;
} nx_outbuf;

typedef struct nx_fam {
    const char *name;   /* static or owned by the collector until it returns */
    char name_own[128]; /* copy when the name is built at run time */
    int type;
    const char *help;
    char help_own[256]; /* copy of a help built at run time (nx_family_dyn) */
    nx_outbuf body;     /* sample lines */
    int nsamples;
} nx_fam;

typedef struct nx_ctx {
    const char *proc;        /* "/proc" (or a fixture root) */
    const char *sys;         /* "/sys" */
    const char *textfile_dir;/* "" = textfile collector off */
    const char *udev;        /* "/run/udev/data" (diskstats' node_disk_info) */
    const char *collector;   /* the one running */
    sn_buf rd, rd2;          /* read scratch buffers */
    sn_buf stat;             /* /proc/stat, read once a scrape for the cpu and stat collectors */
    ssize_t stat_len;        /* its length, or -errno; 0: not read yet this scrape */
    nx_fam *fams;            /* grows up to NX_MAX_FAMILIES, kept between scrapes */
    int nfams, capfams;
    int *fidx;               /* name -> family + 1 (0: free), open addressing */
    size_t fidxcap;          /* a power of two, at least twice capfams */
    bool too_many_logged;
    nx_outbuf out;           /* the whole exposition */
    struct nx_text *text;    /* the textfile collector's state (nx_textfile.c) */
} nx_ctx;

typedef struct nx_collector {
    const char *name;
    int (*fn)(nx_ctx *x);
} nx_collector;

/* Describes a family (or finds it again within the running collector) and
 * returns its handle, -1 when the collector has too many (logged once).
 * name and help must stay valid until the collector returns; with
 * nx_family_dyn both are copied (name and help built in temporary buffers;
 * a name of 128 bytes or more gets -1). */
int nx_family(nx_ctx *x, const char *name, int type, const char *help);
int nx_family_dyn(nx_ctx *x, const char *name, int type, const char *help);
/* Makes room for n more families in the running collector (the array may
 * move: take &x->fams[i] again after); 0, -E2BIG past NX_MAX_FAMILIES or
 * -ENOMEM. */
int nx_family_reserve(nx_ctx *x, int n);
/* One sample of family f: nlabels pairs of (const char *name, const char
 * *value) follow v. Label values are escaped here. Skips NaN and f < 0. */
void nx_sample(nx_ctx *x, int f, double v, int nlabels, ...);
/* Same with the pairs in an array kv[2*nlabels]. */
void nx_sample_v(nx_ctx *x, int f, double v, int nlabels, const char *const *kv);
/* Shorthand: a family with a single unlabelled sample. */
void nx_gauge1(nx_ctx *x, const char *name, const char *help, double v);
/* Reads <root>/<rel> (rel printf-style) into buf; length or -errno. */
ssize_t nx_read(nx_ctx *x, sn_buf *buf, const char *root, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Reads a small sysfs attribute holding one number; 0 or -errno. */
int nx_read_u64(nx_ctx *x, const char *root, uint64_t *v, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int nx_read_dbl(nx_ctx *x, const char *root, double *v, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Reads a one-line attribute into out without the trailing newline; 0 or -errno. */
int nx_read_str(nx_ctx *x, const char *root, char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Whether entry d of directory dir is a directory (or a link to one);
 * dot entries are not. */
bool nx_is_dir(const char *dir, const struct dirent *d);

/* Appends text to an output buffer (sets oom on failure). */
void nx_out_add(nx_outbuf *b, const char *s, size_t n);
void nx_out_value(nx_outbuf *b, double v);

/* The collectors (nx_*.c), in the table in nx.c. */
#define NX_COLLECTOR(name) int nx_col_##name(nx_ctx *x)
NX_COLLECTOR(arp); NX_COLLECTOR(bcache); NX_COLLECTOR(bonding); NX_COLLECTOR(btrfs);
NX_COLLECTOR(conntrack); NX_COLLECTOR(cpu); NX_COLLECTOR(cpufreq); NX_COLLECTOR(diskstats);
NX_COLLECTOR(edac); NX_COLLECTOR(entropy); NX_COLLECTOR(filefd); NX_COLLECTOR(filesystem);
NX_COLLECTOR(hwmon); NX_COLLECTOR(infiniband); NX_COLLECTOR(loadavg); NX_COLLECTOR(mdadm);
NX_COLLECTOR(meminfo); NX_COLLECTOR(netclass); NX_COLLECTOR(netdev); NX_COLLECTOR(netstat);
NX_COLLECTOR(nvme); NX_COLLECTOR(os); NX_COLLECTOR(powersupplyclass); NX_COLLECTOR(pressure);
NX_COLLECTOR(selinux); NX_COLLECTOR(sockstat); NX_COLLECTOR(softnet); NX_COLLECTOR(stat);
NX_COLLECTOR(textfile); NX_COLLECTOR(thermal_zone); NX_COLLECTOR(time); NX_COLLECTOR(timex);
NX_COLLECTOR(udp_queues); NX_COLLECTOR(uname); NX_COLLECTOR(vmstat); NX_COLLECTOR(xfs);
/* nx_more.c, nx_nfs.c */
NX_COLLECTOR(dmi); NX_COLLECTOR(fibrechannel); NX_COLLECTOR(ipvs); NX_COLLECTOR(nfs); NX_COLLECTOR(nfsd);
NX_COLLECTOR(rapl); NX_COLLECTOR(schedstat); NX_COLLECTOR(tapestats); NX_COLLECTOR(zfs);

/* Frees the textfile collector's state (sense_nx_close). */
void nx_textfile_free(nx_ctx *x);

/* For tests: the collector table. */
extern const nx_collector nx_collectors[];
extern const int nx_ncollectors;

#endif
