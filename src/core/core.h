/* core.h: shared plumbing for every IPPOC module: logging, clocks, parsing of
 * durations and sizes, small string helpers, and the parsed configuration.
 *
 * Everything here is plain C with no global state except the logger, whose
 * functions are safe to call from any thread. */
#ifndef IPPOC_CORE_H
#define IPPOC_CORE_H

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* IPPOC_TSAN: defined in ThreadSanitizer builds, gcc's or clang's. */
#if defined(__SANITIZE_THREAD__)
#define IPPOC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define IPPOC_TSAN 1
#endif
#endif

#ifndef IPPOC_VERSION
#define IPPOC_VERSION "0.0.0"
#endif

/* ---- logging (thread-safe) ---------------------------------------------- */
enum { CORE_LOG_ERR = 0, CORE_LOG_WARN, CORE_LOG_INFO, CORE_LOG_DEBUG };

/* target: 0 = stderr, 1 = syslog (the journal reads it). */
void core_log_setup(int level, int to_syslog);
int core_log_level(void);
void core_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int core_log_level_parse(const char *s); /* "error"... -> level, -1 if unknown */

#define log_err(...) core_log(CORE_LOG_ERR, __VA_ARGS__)
#define log_warn(...) core_log(CORE_LOG_WARN, __VA_ARGS__)
#define log_info(...) core_log(CORE_LOG_INFO, __VA_ARGS__)
#define log_debug(...) core_log(CORE_LOG_DEBUG, __VA_ARGS__)

/* ---- clocks ---------------------------------------------------------------- */
int64_t core_now_ms(void);  /* wall clock, ms since the epoch */
int64_t core_mono_ms(void); /* monotonic, ms */
int64_t core_mono_ns(void);

/* ---- parsing ------------------------------------------------------------- */
/* "500ms", "10s", "15m", "2h", "1d", "1w", "1y"; a bare number means seconds.
 * Returns 0 and sets *ms, or -EINVAL. */
int core_parse_duration(const char *s, int64_t *ms);
/* "512", "64KB", "12MB", "2GiB" (K/M/G/T, with or without B/iB; powers of
 * 1024). Returns 0 and sets *bytes, or -EINVAL. */
int core_parse_size(const char *s, uint64_t *bytes);
int core_parse_bool(const char *s, bool *out); /* yes/no/true/false/on/off/1/0 */
/* Parses a time given on the API or CLI: an epoch in seconds (may have a
 * fraction), or "now", or "now-15m" / a bare duration "15m" meaning that long
 * ago. Returns 0 and sets *ms (epoch ms), or -EINVAL. */
int core_parse_time(const char *s, int64_t now_ms, int64_t *ms);
/* Formats ms as "1h2m3s"-style shortest text into buf. */
void core_format_duration(int64_t ms, char *buf, size_t n);

/* ---- strings --------------------------------------------------------------- */
/* snprintf that always terminates and returns 0, or -ENAMETOOLONG if cut. */
int core_sncpy(char *dst, size_t n, const char *src);
char *core_trim(char *s); /* in place, returns s advanced past leading space */
/* Length of the valid UTF-8 sequence at s (NUL-terminated), 0 when invalid. */
size_t core_utf8_len(const unsigned char *s);
/* Writes s through put with the Prometheus text format's escapes: \\ and
 * \n, and \" too when quote (label values; HELP text leaves quotes be).
 * Invalid UTF-8 comes out as U+FFFD, one per run of invalid bytes (as Go's
 * strings.ToValidUTF8): Prometheus fails a whole scrape on one bad byte. */
void core_prom_escape(const char *s, bool quote, void (*put)(void *ud, const char *p, size_t n), void *ud);
/* Reads a whole small file (procfs, sysfs) into buf, NUL-terminated.
 * Returns bytes read (>= 0) or -errno. */
ssize_t core_read_file(const char *path, char *buf, size_t n);
/* Reads a whole file of any size: a malloc'd, NUL-terminated buffer with its
 * length in *len (when len is not NULL), or NULL with errno set. */
char *core_slurp(const char *path, size_t *len);
/* Writes data to a temporary file beside path ("PATH.ippoc-XXXXXX", its name
 * left in tmp), with path's mode and owner (0644 and ours when path is new;
 * the owner as far as we may), fsynced. The caller renames it over path or
 * unlinks it. 0 or -errno with "path: reason" in err. */
int core_write_temp(const char *path, const void *data, size_t len, char *tmp, size_t tmplen, char *err,
                    size_t errlen);
/* core_write_temp, then renamed over path: path is the old or the new text,
 * never a mix. 0 or -errno with err. */
int core_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen);
int core_mkdir_p(const char *path, int mode);
/* mktime for worker threads: the local time in *tm (its fields normalised
 * as mktime does, tm_isdst ignored) as seconds since the epoch, or -1.
 * glibc's mktime re-runs tzset and writes the shared zone state on every
 * call, racing localtime_r in other threads (libgit2's signatures); this
 * reads the zone (tzset once in main) through localtime_r only. */
time_t core_mktime(struct tm *tm);

/* ---- configuration ----------------------------------------------------------- */
#define CORE_PATH_MAX 4096
#define CORE_MAX_WATCH 64
#define CORE_SENSE_GROUPS 20

/* [sense] source */
enum { CORE_SOURCE_AUTO = 0, CORE_SOURCE_PROCFS, CORE_SOURCE_KERNEL };

typedef struct core_sense_group {
    const char *name;   /* static: "cpu", "memory", ... */
    int64_t interval_ms; /* multiple of 1000, >= 1000 */
    bool enabled;
} core_sense_group;

/* A key of a section that a later module interprets ([heal], [service.NAME],
 * [alert.NAME]): kept raw, in file order, with its place for error messages. */
typedef struct core_kv {
    char *section; /* "service.web" */
    char *key;
    char *value;
    char *file;
    int line;
} core_kv;

/* Writes the formatted reason into err (when err and errlen) and returns rc:
 * the one-line error return of library code, `return core_err(err, errlen,
 * -EINVAL, "bad %s", what);`. */
int core_err(char *err, size_t errlen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Writes "FILE:LINE: reason" for kv into err; returns -EINVAL. */
int core_kv_error(char *err, size_t errlen, const core_kv *kv, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

typedef struct core_config {
    /* [daemon] */
    char state_dir[CORE_PATH_MAX];
    int log_level;
    int log_syslog;
    char hostname[256]; /* empty: gethostname() */

    /* [api] */
    char api_listen[256]; /* "127.0.0.1:7070", "[::1]:7070", "0.0.0.0:7070" */
    char api_token[256];  /* required when listen is not loopback */
    int api_max_connections;
    int64_t api_max_points; /* max points in one series answer */
    char api_prometheus_listen[256]; /* "" = off; else HOST:PORT serving GET /metrics only */

    /* [sense] */
    int64_t sense_interval_ms; /* default for every group */
    core_sense_group groups[CORE_SENSE_GROUPS];
    int ngroups;
    char *watch_process[CORE_MAX_WATCH]; /* names matched against comm, or pidfile:PATH */
    int nwatch_process;
    char *watch_cgroup[CORE_MAX_WATCH]; /* fnmatch globs relative to the cgroup root */
    int nwatch_cgroup;
    char proc_root[CORE_PATH_MAX]; /* "/proc"; tests point it elsewhere */
    char sys_root[CORE_PATH_MAX];  /* "/sys" */
    int sense_source;              /* CORE_SOURCE_*: where cpu/load/memory/processes come from */
    char sense_device[CORE_PATH_MAX]; /* the kernel bridge, "/dev/ippoc"; tests point it at a file */
    char textfile_dir[CORE_PATH_MAX]; /* node_exporter's textfile collector; "" = off */
    char sense_nvml_library[CORE_PATH_MAX]; /* dlopen()ed for the gpu group: "libnvidia-ml.so.1" */
    char udev_data_dir[CORE_PATH_MAX]; /* udev's device database (node_disk_info); tests point it elsewhere */

    /* [memory] */
    int64_t mem_ram_window_ms;      /* full-resolution RAM window, default 15m */
    int64_t mem_retention_10s_ms;   /* default 2d */
    int64_t mem_retention_1m_ms;    /* default 30d */
    int64_t mem_retention_1h_ms;    /* default 2y */
    int64_t mem_event_retention_ms; /* default 90d */

    /* [heal], [service.NAME], [alert.NAME]: interpreted by the heal module */
    core_kv *raw;
    int nraw, capraw;
} core_config;

void core_config_defaults(core_config *c);
void core_config_free(core_config *c); /* frees watch lists and raw keys */
/* Loads `path` (skipped if missing and !required) and then every
 * conf.d/NAME.conf files beside it in name order, on top of what *c holds.
 * On error returns -EINVAL (or -errno) with "file:line: reason" in err and
 * leaves *c in an unspecified state: load into a scratch copy. */
int core_config_load(core_config *c, const char *path, bool required, char *err, size_t errlen);
/* Same for an in-memory text, `name` used in messages (for tests). */
int core_config_load_string(core_config *c, const char *text, const char *name, char *err, size_t errlen);
/* Checks cross-field rules (token on non-loopback, windows vs retention). */
int core_config_validate(const core_config *c, char *err, size_t errlen);
const core_sense_group *core_config_group(const core_config *c, const char *name);
/* Appends a raw key as if a file had it (command-line overrides): 0 or -ENOMEM. */
int core_config_add_raw(core_config *c, const char *section, const char *key, const char *value,
                        const char *file, int line);
/* True for the sections kept raw for other modules (see core_kv). */
bool core_config_raw_section(const char *section);
/* Splits "host:port" / "[v6]:port"; returns 0 or -EINVAL. */
int core_split_hostport(const char *s, char *host, size_t hn, int *port);
bool core_host_is_loopback(const char *host);

#endif
