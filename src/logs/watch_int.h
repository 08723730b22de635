/* watch_int.h: the log watch's internal parts, shared by follow.c (files,
 * tail -F style), journal.c (the systemd journal), logs_conf.c (the
 * configuration) and logwatch.c (sources, statistics, events, series).
 * Not part of the module's public face (logs.h); the unit tests use it. */
#ifndef IPPOC_LOGS_WATCH_INT_H
#define IPPOC_LOGS_WATCH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct uv_loop_s;

#define LOGS_LINE_MAX 8192             /* longer lines are cut to this and counted */
#define LOGS_READ_BUDGET (256 * 1024)  /* bytes per followed path or glob per loop iteration */
#define LOGS_DRAIN_GRACE_MS 2000       /* a rotated/deleted file is read this long after its last growth */
#define LOGS_NAME_MAX 128

/* ---- follow.c: files, like `tail -F` ------------------------------------------ */
typedef struct logs_follow logs_follow;

/* One line (no newline, a trailing '\r' removed) of a file followed for owner;
 * cut: the line was longer than LOGS_LINE_MAX and this is its start. The
 * callback must not add or remove patterns. */
typedef void (*logs_follow_fn)(void *ud, void *owner, const char *path, const char *line, size_t len, bool cut);

typedef struct logs_follow_stats {
    uint64_t lines, bytes, cut_lines;
    int files;    /* open (including ones still being drained) */
    int patterns;
} logs_follow_stats;

/* Loop thread. One inotify instance watching the patterns' directories. */
int logs_follow_new(struct uv_loop_s *loop, logs_follow_fn fn, void *ud, logs_follow **out, char *err, size_t errlen);
/* Follows path (absolute; a glob when it has * ? or [) for owner. An existing
 * file is read from its end (from_start: from its beginning); a file that
 * appears later is read from its beginning. A missing file or directory is
 * fine: it is picked up when it appears. 0 or -errno. */
int logs_follow_add(logs_follow *f, const char *path, void *owner, bool from_start, char *err, size_t errlen);
/* Stops following every pattern of owner (its files are closed). */
void logs_follow_remove(logs_follow *f, void *owner);
/* Checks every pattern now (rotation, truncation, new files, deletion) and
 * reads what is new, within the per-file budget. The watch calls it once a
 * second as a safety net for events inotify cannot give. */
void logs_follow_poll(logs_follow *f);
void logs_follow_get_stats(const logs_follow *f, logs_follow_stats *st);
/* Closes the handles; the memory goes when libuv has closed them (the loop
 * must run on). */
void logs_follow_free(logs_follow *f);

/* ---- journal.c: the systemd journal (sd-journal) ---------------------------- */
typedef struct logs_journal logs_journal;

/* One entry: unit (_SYSTEMD_UNIT, NULL when none), ident (SYSLOG_IDENTIFIER,
 * NULL when none), priority 0..7 or -1 when none, ts_ms its realtime stamp. */
typedef void (*logs_journal_fn)(void *ud, const char *unit, const char *ident, const char *msg, size_t len,
                                int priority, int64_t ts_ms);

/* Opens the journal in dir (NULL: the local system journal) and follows it
 * from its end (from_start: from its first entry) on loop. -ENOENT when there
 * is no journal there (no directory with journal files), -ENOTSUP when built
 * without libsystemd; other -errno with a reason in err. */
int logs_journal_open(struct uv_loop_s *loop, const char *dir, bool from_start, logs_journal_fn fn, void *ud,
                      logs_journal **out, char *err, size_t errlen);
/* Reads the entries available now (at most a budget; the rest on the next
 * call or wake-up). Returns how many were read, or -errno. */
int logs_journal_pump(logs_journal *j);
void logs_journal_close(logs_journal *j); /* as logs_follow_free */
/* "error" / "warning" / "info" for a syslog priority. */
const char *logs_priority_level(int priority);

/* ---- logwatch.c ---------------------------------------------------------------------- */
struct logs_watch;
/* One line of source (created as a file source when new), as if it had been
 * read; priority: a journal priority 0..7, or -1. Loop thread; for tests. */
int logs_watch_feed(struct logs_watch *w, const char *source, const char *line, size_t len, int priority);

/* ---- logs_conf.c: [logs] and the log keys of [service.X] ------------------------- */
enum { LOGS_JOURNAL_NO = 0, LOGS_JOURNAL_YES, LOGS_JOURNAL_AUTO };

typedef struct logs_conf_file {
    char name[LOGS_NAME_MAX]; /* the source */
    char *path;               /* absolute; may be a glob */
} logs_conf_file;

typedef struct logs_conf_svc {
    char name[LOGS_NAME_MAX];
    char unit[256]; /* [service.X] unit, "" when none */
} logs_conf_svc;

typedef struct logs_conf {
    bool enabled;
    int journal;              /* LOGS_JOURNAL_* */
    char journal_dir[CORE_PATH_MAX]; /* "" = the system journal */
    int64_t grace_ms;         /* new_template_grace */
    double burst;             /* burst factor */
    char state_dir[CORE_PATH_MAX];
    logs_conf_file *files;    /* [logs] file and [service.X] log_file (name = the service) */
    int nfiles;
    logs_conf_svc *svcs;      /* every [service.X] */
    int nsvcs;
} logs_conf;

/* Parses and checks; 0 or -EINVAL with "FILE:LINE: reason" in err (-ENOMEM). */
int logs_conf_parse(const core_config *cfg, logs_conf *out, char *err, size_t errlen);
void logs_conf_free(logs_conf *c);

#endif
