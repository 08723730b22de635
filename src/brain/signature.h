/* signature.h: the incident signature (issue 10, item 3), internal to
 * src/brain: every piece of evidence about one incident or anomaly episode,
 * gathered from thread-safe readers only (memory, heal's JSON snapshots, the
 * logs watch's JSON, files opened here), as the JSON the contract defines
 * (/work/notes/brain-contract.md; documented field by field in
 * docs/brain-signature.md), with value-free `features` tokens for
 * case-based reasoning.
 *
 * The collectors (kmsg.c: kernel messages; changes.c: dpkg log, audit log,
 * file.changed and config.reload events) are declared here too so the tests
 * can reach them; signature.c builds the whole. */
#ifndef IPPOC_BRAIN_SIGNATURE_H
#define IPPOC_BRAIN_SIGNATURE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heal/heal.h"
#include "logs/logs.h"
#include "memory/memory.h"

/* The contract's context, plus optional members after nconfig_paths (zero
 * them: designated initialisers do). */
typedef struct brain_sig_ctx {
    mem_t *mem;          /* may be NULL: no events or series */
    heal_engine *heal;   /* may be NULL: no services snapshot (unless services_json) */
    logs_watch *logs;    /* may be NULL: template counts from the events only */
    const char *kmsg_path, *dpkg_log_path, *audit_path; /* NULL: /dev/kmsg, /var/log/dpkg.log,
                                                            heal_engine_audit_path (or none) */
    const char *const *config_paths;
    int nconfig_paths; /* of the service */
    /* ---- optional ---- */
    const char *const *depends; /* the service's [service.X] depends (heal's JSON may not say) */
    int ndepends;
    int deadline_ms;            /* 0: BRAIN_SIG_DEADLINE_MS */
    const char *services_json;  /* heal's services JSON to use instead of asking heal */
} brain_sig_ctx;

#define BRAIN_SIG_DEADLINE_MS 200
#define BRAIN_SIG_LIST_MAX 16 /* entries per list, features included */

/* How far before from_ms each source looks (the window the caller gives starts
 * at the signal; causes come earlier). */
#define BRAIN_SIG_BACK_EVENTS_MS (5 * 60 * 1000LL)     /* exits, log events, kernel messages */
#define BRAIN_SIG_BACK_ANOMALY_MS (15 * 60 * 1000LL)   /* anomaly / anomaly.episode events */
#define BRAIN_SIG_BACK_CHANGES_MS (30 * 60 * 1000LL)   /* file.changed, config.reload, audit */
#define BRAIN_SIG_BACK_PACKAGES_MS (24 * 3600 * 1000LL) /* dpkg log */

/* Any thread (runs on a worker). incident_json: heal's JSON of the incident
 * (may be NULL for an anomaly/log/user trigger); from/to: the evidence window
 * (wall ms). Returns a new JSON object per the contract's schema (plus
 * "notes": what was skipped or malformed), or NULL (OOM). Finishes within the
 * deadline: slow parts are skipped and named in notes. */
json_t *brain_signature_build(const brain_sig_ctx *ctx, const char *service, const char *trigger,
                              const json_t *incident_json, int64_t from_ms, int64_t to_ms);

/* ---- collectors (internal) ------------------------------------------------------------ */
/* Monotonic ms now, for deadlines. */
int64_t brain_sig_mono_ms(void);
/* Appends a formatted reason (at most 511 bytes) to notes, a JSON array (changes.c). */
void brain_sig_note(json_t *notes, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The last `max` bytes of the regular file fd, from its first whole line:
 * malloc'd, NUL-terminated, *len its length; NULL with the reason in err
 * (not a regular file, out of memory). Leaves fd open (changes.c). */
char *brain_read_tail_fd(int fd, size_t max, size_t *len, char *err, size_t errlen);

/* kmsg.c. One record of /dev/kmsg's text format "PRI,SEQ,USEC,FLAGS[,...];TEXT". */
typedef struct brain_kmsg_rec {
    int pri;          /* facility * 8 + level */
    uint64_t seq;
    int64_t usec;     /* CLOCK_MONOTONIC microseconds (as the kernel stamps) */
    const char *text; /* into the parsed buffer, not NUL-terminated */
    size_t len;
} brain_kmsg_rec;
/* 0, or -EINVAL when rec is not a record (a continuation line, garbage). */
int brain_kmsg_parse(const char *rec, size_t len, brain_kmsg_rec *out);
/* The kind of a message ("oom_kill", "io_error", "segfault", "hung_task",
 * "fs_error", "clock") or NULL; *pid / comm get the process it names (0 / ""). */
const char *brain_kmsg_classify(const char *text, size_t len, int *pid, char *comm, size_t commlen);
/* Reads every record of path (/dev/kmsg: one record a read, non-blocking,
 * until EAGAIN; a regular file: its last 4 MiB, a record a line) and appends
 * to out those in [from_ms, to_ms] (wall, converted from the monotonic stamp)
 * that classify: {"kind","pid","comm","text","ts"}, the newest 1024 at most. Stops at deadline_mono
 * (then *cut is set). Garbage records are counted in *bad. 0 or -errno with
 * the reason in err. */
int brain_kmsg_read(const char *path, int64_t from_ms, int64_t to_ms, int64_t deadline_mono, json_t *out, int *bad,
                    bool *cut, char *err, size_t errlen);

/* changes.c. Each appends {"kind","what","ts","detail"} objects to out and
 * reasons for skipped input to notes (a JSON array of strings). */
/* dpkg.log lines "YYYY-MM-DD HH:MM:SS install|upgrade|remove|purge PKG[:ARCH] OLD NEW" in
 * [from_ms, to_ms] (local time, as dpkg writes it), from the file's last 1 MiB. */
int brain_changes_dpkg(const char *path, int64_t from_ms, int64_t to_ms, int64_t deadline_mono, json_t *out,
                       json_t *notes);
/* Audit records (heal's audit.log, the last 1 MiB) of service in [from_ms, to_ms]:
 * results, decisions, approvals and rejections (not intents: their result says it). */
int brain_changes_audit(const char *path, const char *service, int64_t from_ms, int64_t to_ms,
                        int64_t deadline_mono, json_t *out, json_t *notes);
/* file.changed events of service and config.reload events in [from_ms, to_ms]. */
int brain_changes_events(mem_t *mem, const char *service, int64_t from_ms, int64_t to_ms, json_t *out,
                         json_t *notes);

#endif
