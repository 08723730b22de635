/* audit.h: the append-only, hash-chained audit log of every action IPPOC
 * takes (or would take, or was refused, or was asked to approve).
 *
 * File: <state_dir>/audit.log, one compact JSON object per line, ASCII only
 * (non-ASCII is \u-escaped), keys always in this order, absent ones left out:
 *
 *   seq, ts, kind, service, action{kind, text, <kind's fields>}, reason,
 *   mode, dry_run, verdict, detail, pending_id, intent_seq,
 *   outcome{status, message, duration_ms}, torn{offset, bytes, sha256},
 *   prev, hash
 *
 *   seq    1, 2, 3, ... without gaps
 *   ts     wall clock, ms since the epoch
 *   kind   "intent" (written before the action runs), "result" (after it),
 *          "decision" (the policy refused, queued, or only recorded it),
 *          "approval", "rejection" (of a queued action), "recovery" (see below)
 *   prev   the previous record's hash, 64 '0's for the first record
 *   hash   hex SHA-256 of prev's 64 hex characters followed by this line's
 *          bytes without the hash member: the line up to (not including)
 *          ',"hash":"...' with its closing '}' put back. Because prev is the
 *          previous record's hash, and that hash covers every byte of the
 *          previous line except its own hash member, each hash commits to
 *          every byte of every earlier line.
 *
 * Checking works on the bytes, not on a re-serialisation: any changed byte,
 * deleted, inserted or reordered line is found by heal_audit_verify: a record
 * whose own hash does not match (changed byte), a seq out of order (deleted or
 * reordered lines), or a prev that does not match the record before (a
 * record rewritten together with its own hash).
 *
 * Durability: each append is a single write() of the whole line on an
 * O_APPEND descriptor followed by fdatasync(), so a record is on disk before
 * heal_audit_append returns, i.e. before the caller runs the action. That
 * costs a disk flush (milliseconds): call it from a worker thread, never the
 * loop thread (see DESIGN.md "Nothing blocks the loop").
 *
 * Torn tail (a crash in the middle of a write): the file is never truncated.
 * heal_audit_open finds a last line without its '\n', logs a warning, and
 * appends "\n" plus a "recovery" record whose torn member names the byte
 * offset, length and SHA-256 of the torn bytes; the recovery record is
 * chained to the last good record. heal_audit_verify accepts a torn line only
 * when the very next line is a chained recovery record naming exactly those
 * bytes (counted in torn_recovered); an unterminated last line that has not
 * been recovered yet is reported as HEAL_AUDIT_TORN_TAIL, distinct from
 * tampering. A torn record was never acted on: its append never returned.
 *
 * Safety: the file is opened with O_NOFOLLOW (a symlink is refused), must be a
 * regular file owned by the effective user and not writable by group or
 * others; new files are created 0600. An exclusive flock() keeps a second
 * writer process out. After a failed write the handle refuses further
 * appends (reopen to recover).
 *
 * Threads: heal_audit_append is thread-safe (one mutex per handle, held
 * across write and fdatasync so file order equals chain order).
 * heal_audit_verify(_live) and heal_audit_read only read and can run
 * anywhere, concurrently with appends.
 *
 * Limits: the chain proves the file was not edited in place, not that its
 * end was not cut at a line boundary or the whole tail rewritten; publish
 * heal_audit_head() elsewhere (memory, the mesh) to anchor it. */
#ifndef IPPOC_HEAL_AUDIT_H
#define IPPOC_HEAL_AUDIT_H

#include "heal/action.h"

#include <jansson.h>

#define HEAL_AUDIT_HASH_HEX 65 /* 64 hex digits and a NUL */
#define HEAL_AUDIT_TEXT_MAX 1024 /* longer reason/detail/message text is cut */

typedef enum heal_audit_kind {
    HEAL_AUDIT_INTENT = 0,
    HEAL_AUDIT_RESULT,
    HEAL_AUDIT_DECISION,
    HEAL_AUDIT_APPROVAL,
    HEAL_AUDIT_REJECTION,
    HEAL_AUDIT_RECOVERY, /* written by heal_audit_open only */
    HEAL_AUDIT_KIND_COUNT
} heal_audit_kind;

typedef enum heal_audit_outcome {
    HEAL_OUTCOME_NONE = 0, /* not a result */
    HEAL_OUTCOME_OK,
    HEAL_OUTCOME_FAILED,
    HEAL_OUTCOME_TIMEOUT,
} heal_audit_outcome;

/* One record to append. Strings may be NULL (left out); all are copied. */
typedef struct heal_audit_rec {
    heal_audit_kind kind;
    int64_t ts_ms;             /* 0: now (core_now_ms) */
    const heal_action *action; /* the action; NULL: no action/service members */
    const char *reason;        /* who asked: "rule conf.d/web.conf:12", "api", "cli" */
    const char *mode;          /* policy mode in force: "observe", "suggest", "heal" */
    bool dry_run;
    const char *verdict;       /* decision: "execute", "record", "queue", "refuse" */
    const char *detail;        /* decision: refusal text; approval/rejection: who */
    uint64_t pending_id;       /* queue, approval, rejection; 0: left out */
    uint64_t intent_seq;       /* result: seq of its intent record; 0: left out */
    heal_audit_outcome outcome; /* result: ok / failed / timeout */
    const char *message;       /* result: error text or summary */
    int64_t duration_ms;       /* result */
} heal_audit_rec;

typedef struct heal_audit heal_audit;

/* "intent", "result", ...; NULL for an unknown kind. */
const char *heal_audit_kind_name(heal_audit_kind k);
/* "ok", "failed", "timeout"; NULL for NONE or unknown. */
const char *heal_audit_outcome_name(heal_audit_outcome o);

/* Opens (creating 0600 if missing) the log at path for appending, recovers seq
 * and the chain head from its last line, and records a torn tail (see top).
 * Returns 0, or -ELOOP (symlink), -EPERM (not ours / too open / not a regular
 * file), -EBUSY (another process holds it), -EBADMSG (the last complete line is
 * not a valid record: run `ippoc audit --verify`), -errno; err says which. */
int heal_audit_open(const char *path, heal_audit **out, char *err, size_t errlen);
/* Appends one record, durable on return; *seq_out (may be NULL) gets its seq.
 * Returns 0, -EINVAL (bad record), -EIO (write/fdatasync failed; the handle
 * then refuses further appends), -errno. Thread-safe. */
int heal_audit_append(heal_audit *a, const heal_audit_rec *rec, uint64_t *seq_out,
                      char *err, size_t errlen);
/* The last seq written and its hash (hex, HEAL_AUDIT_HASH_HEX bytes); for
 * anchoring the chain elsewhere. Thread-safe. */
void heal_audit_head(heal_audit *a, uint64_t *seq, char *hash_hex);
/* Torn lines found (and recorded) by the open; 0 normally. */
int heal_audit_torn_at_open(const heal_audit *a);
void heal_audit_close(heal_audit *a);

/* ---- checking --------------------------------------------------------------- */
typedef enum heal_audit_status {
    HEAL_AUDIT_OK = 0,
    HEAL_AUDIT_BAD_JSON,      /* a line is not a JSON object of the expected shape */
    HEAL_AUDIT_HASH_MISMATCH, /* a record's bytes do not match its own hash */
    HEAL_AUDIT_PREV_MISMATCH, /* a record's prev is not the hash of the one before */
    HEAL_AUDIT_SEQ_GAP,       /* seq is not the previous seq + 1 (line deleted/moved) */
    HEAL_AUDIT_TORN_TAIL,     /* the last line lacks its '\n' and is not yet recovered */
} heal_audit_status;

typedef struct heal_audit_verify_result {
    heal_audit_status status;
    uint64_t records;        /* records checked and found good */
    uint64_t last_seq;       /* seq of the last good record */
    uint64_t bad_seq;        /* seq the first bad line holds (0 if unreadable) */
    uint64_t bad_line;       /* 1-based line number of the first bad line */
    uint64_t torn_recovered; /* torn lines acknowledged by recovery records */
    char last_hash[HEAL_AUDIT_HASH_HEX]; /* hash of the last good record */
    char why[256];
} heal_audit_verify_result;

const char *heal_audit_status_name(heal_audit_status s);
/* Checks the whole chain. Returns 0 when intact (res->status OK), -EBADMSG
 * when not (res says the first bad line, its seq and why; TORN_TAIL for an
 * unrecovered torn last line), -ENOENT / -ELOOP / -errno when the file cannot
 * be read (err says so). An empty file is intact. */
int heal_audit_verify(const char *path, heal_audit_verify_result *res, char *err, size_t errlen);
/* The same on the log an open handle writes, up to the last record written
 * when it is called (a plain verify of a live log can catch the line being
 * written half-way and call it a torn tail). Thread-safe; appends go on
 * while it reads. */
int heal_audit_verify_live(heal_audit *a, heal_audit_verify_result *res, char *err, size_t errlen);

/* ---- reading ---------------------------------------------------------------- */
typedef struct heal_audit_filter {
    uint64_t since_seq; /* only records with seq > since_seq */
    size_t last_n;      /* 0: all; else only the last n that match */
    const char *service; /* NULL: any */
} heal_audit_filter;

/* One record as read: borrowed, valid during the callback only. */
typedef struct heal_audit_entry {
    uint64_t seq;
    int64_t ts_ms;
    const char *kind;
    const char *service;  /* "" if none */
    const char *line;     /* the raw line, without '\n' */
    size_t len;
    json_t *json;         /* the parsed object (borrowed; json_incref to keep) */
} heal_audit_entry;

/* Return non-zero to stop; that value is returned by heal_audit_read. */
typedef int (*heal_audit_cb)(const heal_audit_entry *e, void *ud);

/* Calls cb for each record matching f (NULL: all), in file order. Lines that
 * are not records (a torn line) are skipped: use heal_audit_verify to judge
 * the file. Returns 0, the callback's non-zero value, or -errno (err). */
int heal_audit_read(const char *path, const heal_audit_filter *f, heal_audit_cb cb, void *ud,
                    char *err, size_t errlen);

#endif
