/* audit.c: the append-only, hash-chained audit log (see audit.h for the file
 * format, the torn-tail recovery and the guarantees).
 *
 * Writing: a record is built as a jansson object in a fixed key order, dumped
 * compact and ASCII-only, hashed with prev, and the line is finished by
 * splicing ',"hash":"<hex>"}' in place of its closing brace. Checking works on
 * the bytes of each line: it strips that suffix back off and hashes again, so
 * no re-serialisation ever has to reproduce the writer's bytes. */
#include "heal/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define HASH_LEN 64
#define SUFFIX_HEAD ",\"hash\":\""
#define SUFFIX_HEAD_LEN 9
#define SUFFIX_LEN (SUFFIX_HEAD_LEN + HASH_LEN + 2) /* ,"hash":"<64>"} */
#define LOOKAHEAD 64            /* lines a recovery record may follow its torn bytes by */
#define TAIL_MAX (64u << 20)    /* the most heal_audit_open reads back from the end */
#define RECOVERY_TAG "\"kind\":\"recovery\""

static const char zero_hash[HASH_LEN + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

struct heal_audit {
    pthread_mutex_t lock;
    int fd;
    bool broken;           /* a write failed part-way and could not be undone */
    uint64_t seq;          /* last seq written */
    off_t size;            /* file size after our last write */
    char head[HASH_LEN + 1]; /* hash of the last record */
    int torn;
    char path[CORE_PATH_MAX];
};

const char *heal_audit_kind_name(heal_audit_kind k)
{
    static const char *const n[HEAL_AUDIT_KIND_COUNT] = {
        "intent", "result", "decision", "approval", "rejection", "recovery"};
    return (unsigned)k < HEAL_AUDIT_KIND_COUNT ? n[k] : NULL;
}

const char *heal_audit_outcome_name(heal_audit_outcome o)
{
    switch (o) {
    case HEAL_OUTCOME_OK: return "ok";
    case HEAL_OUTCOME_FAILED: return "failed";
    case HEAL_OUTCOME_TIMEOUT: return "timeout";
    default: return NULL;
    }
}

const char *heal_audit_status_name(heal_audit_status s)
{
    switch (s) {
    case HEAL_AUDIT_OK: return "ok";
    case HEAL_AUDIT_BAD_JSON: return "bad json";
    case HEAL_AUDIT_HASH_MISMATCH: return "hash mismatch";
    case HEAL_AUDIT_PREV_MISMATCH: return "prev mismatch";
    case HEAL_AUDIT_SEQ_GAP: return "seq gap";
    case HEAL_AUDIT_TORN_TAIL: return "torn tail";
    }
    return "?";
}

static void sha_hex(const void *p, size_t n, char out[HASH_LEN + 1])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, p, n);
    sodium_bin2hex(out, HASH_LEN + 1, h, sizeof h);
}

static bool is_hex64(const char *s, size_t n)
{
    if (n != HASH_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* hash = sha256(prev_hex || body), body = line minus the hash member. */
static void record_hash(const char *prev, const char *line, size_t body_len, bool close_brace,
                        char out[HASH_LEN + 1])
{
    crypto_hash_sha256_state st;
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)prev, HASH_LEN);
    crypto_hash_sha256_update(&st, (const unsigned char *)line, body_len);
    if (close_brace)
        crypto_hash_sha256_update(&st, (const unsigned char *)"}", 1);
    crypto_hash_sha256_final(&st, h);
    sodium_bin2hex(out, HASH_LEN + 1, h, sizeof h);
}

/* ---- building a record ---------------------------------------------------------- */

/* A JSON string of s, cut to HEAL_AUDIT_TEXT_MAX; bytes that are not valid
 * UTF-8 become '?', so any C string can be recorded. */
static json_t *jstr(const char *s)
{
    size_t n = strnlen(s, HEAL_AUDIT_TEXT_MAX);
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    char *c = malloc(n + 1);
    if (!c)
        return NULL;
    for (size_t i = 0; i < n; i++)
        c[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    c[n] = 0;
    j = json_stringn(c, n);
    free(c);
    return j;
}

static int put(json_t *o, const char *k, json_t *v)
{
    return v ? json_object_set_new(o, k, v) : -1;
}

static json_t *action_json(const heal_action *a)
{
    json_t *o = json_object();
    char text[HEAL_ARG_MAX * 2];
    const char *name = heal_action_name(a->kind);
    int bad = 0;
    if (!o || !name) {
        json_decref(o);
        return NULL;
    }
    heal_action_format(a, text, sizeof text);
    bad |= put(o, "kind", json_string(name));
    bad |= put(o, "text", jstr(text));
    switch (a->kind) {
    case HEAL_ACT_SIGNAL:
        bad |= put(o, "signum", json_integer(a->signum));
        break;
    case HEAL_ACT_RENICE:
        bad |= put(o, "nice", json_integer(a->nice));
        break;
    case HEAL_ACT_LIMIT_MEMORY:
        bad |= put(o, "bytes", json_integer((json_int_t)a->bytes));
        break;
    case HEAL_ACT_LIMIT_CPU:
        bad |= put(o, "cpu_percent", json_real(a->cpu_percent));
        break;
    case HEAL_ACT_SYSCTL:
        bad |= put(o, "key", jstr(a->key));
        bad |= put(o, "value", jstr(a->value));
        break;
    case HEAL_ACT_CLEAN:
        bad |= put(o, "path", jstr(a->path));
        bad |= put(o, "older_than_ms", json_integer(a->older_than_ms));
        bad |= put(o, "larger_than", json_integer((json_int_t)a->larger_than));
        break;
    case HEAL_ACT_PLAYBOOK:
        bad |= put(o, "program", jstr(a->program));
        bad |= put(o, "timeout_ms", json_integer(a->timeout_ms));
        break;
    case HEAL_ACT_ALERT:
        bad |= put(o, "target", jstr(a->target));
        break;
    case HEAL_ACT_RESTORE:
        bad |= put(o, "path", jstr(a->path));
        break;
    case HEAL_ACT_SIGNAL_PID:
    case HEAL_ACT_RENICE_PID:
        bad |= put(o, a->kind == HEAL_ACT_SIGNAL_PID ? "signum" : "nice",
                   json_integer(a->kind == HEAL_ACT_SIGNAL_PID ? a->signum : a->nice));
        bad |= put(o, "pid", json_integer(a->pid));
        bad |= put(o, "command", jstr(a->comm));
        break;
    case HEAL_ACT_GENOME:
        bad |= put(o, "op", jstr(a->key));
        bad |= put(o, "arg", jstr(a->value));
        break;
    default:
        break;
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

typedef struct torn_info {
    uint64_t offset, bytes;
    char sha[HASH_LEN + 1];
} torn_info;

/* The record as an object without its hash member (prev included). */
static json_t *record_json(const heal_audit_rec *r, uint64_t seq, const char *prev, const torn_info *torn)
{
    json_t *o = json_object();
    int bad = !o;
    if (bad)
        return NULL;
    bad |= put(o, "seq", json_integer((json_int_t)seq));
    bad |= put(o, "ts", json_integer(r->ts_ms ? r->ts_ms : core_now_ms()));
    bad |= put(o, "kind", json_string(heal_audit_kind_name(r->kind)));
    if (r->action) {
        bad |= put(o, "service", jstr(r->action->service));
        bad |= put(o, "action", action_json(r->action));
    }
    if (r->reason)
        bad |= put(o, "reason", jstr(r->reason));
    if (r->mode)
        bad |= put(o, "mode", jstr(r->mode));
    if (r->dry_run)
        bad |= put(o, "dry_run", json_true());
    if (r->verdict)
        bad |= put(o, "verdict", jstr(r->verdict));
    if (r->detail)
        bad |= put(o, "detail", jstr(r->detail));
    if (r->pending_id)
        bad |= put(o, "pending_id", json_integer((json_int_t)r->pending_id));
    if (r->intent_seq)
        bad |= put(o, "intent_seq", json_integer((json_int_t)r->intent_seq));
    if (r->outcome != HEAL_OUTCOME_NONE) {
        json_t *oc = json_object();
        bad |= !oc;
        bad |= put(oc, "status", json_string(heal_audit_outcome_name(r->outcome)));
        bad |= put(oc, "message", jstr(r->message ? r->message : ""));
        bad |= put(oc, "duration_ms", json_integer(r->duration_ms));
        bad |= put(o, "outcome", oc);
    }
    if (torn) {
        json_t *t = json_object();
        bad |= !t;
        bad |= put(t, "offset", json_integer((json_int_t)torn->offset));
        bad |= put(t, "bytes", json_integer((json_int_t)torn->bytes));
        bad |= put(t, "sha256", json_string(torn->sha));
        bad |= put(o, "torn", t);
    }
    bad |= put(o, "prev", json_string(prev));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int validate_rec(const heal_audit_rec *r, char *err, size_t errlen)
{
    if (!heal_audit_kind_name(r->kind) || r->kind == HEAL_AUDIT_RECOVERY)
        return core_err(err, errlen, -EINVAL, "audit record: invalid kind %d", (int)r->kind);
    if (r->action && !heal_action_name(r->action->kind))
        return core_err(err, errlen, -EINVAL, "audit record: invalid action kind %d", (int)r->action->kind);
    if (r->outcome != HEAL_OUTCOME_NONE && !heal_audit_outcome_name(r->outcome))
        return core_err(err, errlen, -EINVAL, "audit record: invalid outcome %d", (int)r->outcome);
    if (r->kind == HEAL_AUDIT_RESULT && r->outcome == HEAL_OUTCOME_NONE)
        return core_err(err, errlen, -EINVAL, "audit record: a result needs an outcome");
    if (r->ts_ms < 0)
        return core_err(err, errlen, -EINVAL, "audit record: negative timestamp");
    return 0;
}

/* Builds the full line ("...,\"hash\":\"<hex>\"}\n") into *line (malloc'd). */
static int make_line(const heal_audit_rec *r, uint64_t seq, const char *prev, const torn_info *torn,
                     char **line, size_t *len, char hash[HASH_LEN + 1])
{
    json_t *o = record_json(r, seq, prev, torn);
    if (!o)
        return -ENOMEM;
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(o);
    if (!s)
        return -ENOMEM;
    size_t n = strlen(s); /* ends with '}' */
    record_hash(prev, s, n, false, hash);
    char *l = malloc(n - 1 + SUFFIX_LEN + 1 + 1);
    if (!l) {
        free(s);
        return -ENOMEM;
    }
    memcpy(l, s, n - 1);
    size_t w = n - 1;
    memcpy(l + w, SUFFIX_HEAD, SUFFIX_HEAD_LEN);
    w += SUFFIX_HEAD_LEN;
    memcpy(l + w, hash, HASH_LEN);
    w += HASH_LEN;
    memcpy(l + w, "\"}\n", 3);
    w += 3;
    l[w] = 0;
    free(s);
    *line = l;
    *len = w;
    return 0;
}

/* ---- checking one line ------------------------------------------------------------ */

typedef struct line_rec {
    uint64_t seq;
    char prev[HASH_LEN + 1];
    char hash[HASH_LEN + 1];
    bool recovery;
    torn_info torn;
} line_rec;

static bool get_u64(json_t *o, const char *k, uint64_t *v)
{
    json_t *j = json_object_get(o, k);
    if (!json_is_integer(j) || json_integer_value(j) < 0)
        return false;
    *v = (uint64_t)json_integer_value(j);
    return true;
}

/* Parses and self-checks one line (without '\n'): shape, then hash. */
static heal_audit_status check_line(const char *p, size_t len, line_rec *r, char *why, size_t wn)
{
    memset(r, 0, sizeof *r);
    if (len < SUFFIX_LEN + 2 || p[0] != '{' || memcmp(p + len - SUFFIX_LEN, SUFFIX_HEAD, SUFFIX_HEAD_LEN) ||
        p[len - 2] != '"' || p[len - 1] != '}' || !is_hex64(p + len - SUFFIX_LEN + SUFFIX_HEAD_LEN, HASH_LEN)) {
        snprintf(why, wn, "not an audit record (no trailing \"hash\" member)");
        return HEAL_AUDIT_BAD_JSON;
    }
    json_error_t je;
    json_t *o = json_loadb(p, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
        snprintf(why, wn, "bad JSON at column %d: %s", je.column, o ? "not an object" : je.text);
        json_decref(o);
        return HEAL_AUDIT_BAD_JSON;
    }
    heal_audit_status st = HEAL_AUDIT_BAD_JSON;
    json_t *prev = json_object_get(o, "prev"), *kind = json_object_get(o, "kind");
    if (!get_u64(o, "seq", &r->seq) || r->seq == 0) {
        snprintf(why, wn, "missing or invalid \"seq\"");
        goto out;
    }
    if (!json_is_string(prev) || !is_hex64(json_string_value(prev), json_string_length(prev))) {
        snprintf(why, wn, "missing or invalid \"prev\"");
        goto out;
    }
    if (!json_is_string(kind)) {
        snprintf(why, wn, "missing \"kind\"");
        goto out;
    }
    memcpy(r->prev, json_string_value(prev), HASH_LEN + 1);
    memcpy(r->hash, p + len - SUFFIX_LEN + SUFFIX_HEAD_LEN, HASH_LEN);
    r->hash[HASH_LEN] = 0;
    if (!strcmp(json_string_value(kind), "recovery")) {
        json_t *t = json_object_get(o, "torn"), *sha = json_object_get(t, "sha256");
        if (!json_is_object(t) || !get_u64(t, "offset", &r->torn.offset) || !get_u64(t, "bytes", &r->torn.bytes) ||
            !json_is_string(sha) || !is_hex64(json_string_value(sha), json_string_length(sha))) {
            snprintf(why, wn, "recovery record without a valid \"torn\" member");
            goto out;
        }
        memcpy(r->torn.sha, json_string_value(sha), HASH_LEN + 1);
        r->recovery = true;
    }
    char h[HASH_LEN + 1];
    record_hash(r->prev, p, len - SUFFIX_LEN, true, h);
    if (sodium_memcmp(h, r->hash, HASH_LEN)) {
        snprintf(why, wn, "record %llu does not match its own hash (its bytes were changed)",
                 (unsigned long long)r->seq);
        st = HEAL_AUDIT_HASH_MISMATCH;
        goto out;
    }
    st = HEAL_AUDIT_OK;
out:
    json_decref(o);
    return st;
}

/* ---- opening ------------------------------------------------------------------------ */

static int open_checked(const char *path, int flags, char *err, size_t errlen)
{
    int fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP)
            return core_err(err, errlen, -ELOOP, "audit log %s is a symbolic link; refusing to follow it", path);
        return core_err(err, errlen, -e, "audit log %s: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st)) {
        int e = errno;
        close(fd);
        return core_err(err, errlen, -e, "audit log %s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return core_err(err, errlen, -EPERM, "audit log %s is not a regular file", path);
    }
    if ((flags & O_ACCMODE) != O_RDONLY) {
        if (st.st_uid != geteuid()) {
            close(fd);
            return core_err(err, errlen, -EPERM, "audit log %s is owned by uid %u, not by us (uid %u)", path,
                        (unsigned)st.st_uid, (unsigned)geteuid());
        }
        if (st.st_mode & (S_IWGRP | S_IWOTH)) {
            close(fd);
            return core_err(err, errlen, -EPERM, "audit log %s is writable by group or others (mode %03o); chmod 600 it",
                        path, (unsigned)(st.st_mode & 0777));
        }
    }
    return fd;
}

static int read_at(int fd, char *buf, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -EIO; /* shrank under us */
        got += (size_t)r;
    }
    return 0;
}

static int write_all(int fd, const char *p, size_t n, size_t *done)
{
    *done = 0;
    while (*done < n) {
        ssize_t w = write(fd, p + *done, n - *done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        *done += (size_t)w;
    }
    return 0;
}

/* Reads the tail and sets a->seq/a->head; fills *torn when the file ends in
 * an unterminated line (the torn bytes run from after the last valid record
 * to the end). Returns 0, 1 (torn), or a negative error. */
static int recover_tail(heal_audit *a, off_t size, torn_info *torn, char *err, size_t errlen)
{
    a->seq = 0;
    memcpy(a->head, zero_hash, sizeof a->head);
    if (size == 0)
        return 0;
    size_t want = 1u << 16;
    for (;;) {
        size_t n = (off_t)want < size ? want : (size_t)size;
        off_t base = size - (off_t)n;
        char *buf = malloc(n);
        if (!buf)
            return core_err(err, errlen, -ENOMEM, "audit log %s: out of memory", a->path);
        int rc = read_at(a->fd, buf, n, base);
        if (rc) {
            free(buf);
            return core_err(err, errlen, rc, "audit log %s: read: %s", a->path, strerror(-rc));
        }
        bool terminated = buf[n - 1] == '\n';
        /* Walk back over complete lines, the newest first. */
        size_t end = terminated ? n - 1 : n; /* end of the current line (exclusive) */
        bool torn_tail = false;
        if (!terminated) {
            char *nl = memrchr(buf, '\n', n);
            if (!nl && base > 0)
                goto grow;
            end = nl ? (size_t)(nl - buf) : 0;
            torn_tail = true;
            if (!nl) { /* the whole file is one torn line */
                torn->offset = 0;
                torn->bytes = (uint64_t)size;
                sha_hex(buf, n, torn->sha);
                free(buf);
                return 1;
            }
        }
        for (int lines = 0; lines < LOOKAHEAD; lines++) {
            char *nl = end ? memrchr(buf, '\n', end) : NULL;
            if (!nl && base > 0)
                goto grow;
            size_t start = nl ? (size_t)(nl - buf) + 1 : 0;
            line_rec r;
            char why[200];
            if (check_line(buf + start, end - start, &r, why, sizeof why) == HEAL_AUDIT_OK) {
                a->seq = r.seq;
                memcpy(a->head, r.hash, sizeof a->head);
                if (torn_tail) {
                    torn->offset = (uint64_t)base + end + 1;
                    torn->bytes = (uint64_t)size - torn->offset;
                    sha_hex(buf + end + 1, n - end - 1, torn->sha);
                }
                free(buf);
                return torn_tail;
            }
            if (!torn_tail) {
                free(buf);
                return core_err(err, errlen, -EBADMSG,
                            "audit log %s: the last line (at byte %lld) is not a valid record: %s; "
                            "run `ippoc audit --verify` and move the file away to start a new log",
                            a->path, (long long)(base + (off_t)start), why);
            }
            if (!nl) { /* no valid record at all before the torn bytes */
                torn->offset = (uint64_t)base;
                torn->bytes = (uint64_t)size - torn->offset;
                sha_hex(buf, n, torn->sha);
                free(buf);
                return 1;
            }
            end = start - 1;
        }
        free(buf);
        return core_err(err, errlen, -EBADMSG,
                    "audit log %s ends in more than %d lines that are not valid records; "
                    "run `ippoc audit --verify`", a->path, LOOKAHEAD);
    grow:
        free(buf);
        if (want >= TAIL_MAX || (off_t)want >= size)
            return core_err(err, errlen, -EBADMSG, "audit log %s: the last line is longer than %u bytes",
                        a->path, TAIL_MAX);
        want *= 4;
    }
}

static int write_recovery(heal_audit *a, const torn_info *t, char *err, size_t errlen)
{
    heal_audit_rec r = {
        .kind = HEAL_AUDIT_RECOVERY,
        .reason = "audit log open",
        .detail = "torn line after a crash: a write that never completed; its action did not run",
    };
    char *line, hash[HASH_LEN + 1];
    size_t len, done;
    int rc = make_line(&r, a->seq + 1, a->head, t, &line, &len, hash);
    if (rc)
        return core_err(err, errlen, rc, "audit log %s: out of memory", a->path);
    /* One write: the newline that ends the torn bytes and the record. */
    char *w = malloc(len + 1);
    if (!w) {
        free(line);
        return core_err(err, errlen, -ENOMEM, "audit log %s: out of memory", a->path);
    }
    w[0] = '\n';
    memcpy(w + 1, line, len);
    free(line);
    rc = write_all(a->fd, w, len + 1, &done);
    free(w);
    if (!rc && fdatasync(a->fd))
        rc = -errno;
    if (rc)
        return core_err(err, errlen, rc, "audit log %s: writing the recovery record: %s", a->path, strerror(-rc));
    a->seq++;
    memcpy(a->head, hash, sizeof a->head);
    a->size += (off_t)(len + 1);
    return 0;
}

int heal_audit_open(const char *path, heal_audit **out, char *err, size_t errlen)
{
    *out = NULL;
    if (sodium_init() < 0)
        return core_err(err, errlen, -EIO, "audit log: libsodium failed to initialise");
    heal_audit *a = calloc(1, sizeof *a);
    if (!a)
        return core_err(err, errlen, -ENOMEM, "audit log: out of memory");
    if (core_sncpy(a->path, sizeof a->path, path)) {
        free(a);
        return core_err(err, errlen, -ENAMETOOLONG, "audit log path too long");
    }
    int fd = open_checked(path, O_RDWR | O_APPEND | O_CREAT, err, errlen);
    if (fd < 0) {
        free(a);
        return fd;
    }
    a->fd = fd;
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        int e = errno;
        close(fd);
        free(a);
        if (e == EWOULDBLOCK)
            return core_err(err, errlen, -EBUSY, "audit log %s is in use by another process", path);
        return core_err(err, errlen, -e, "audit log %s: flock: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st)) {
        int e = errno;
        close(fd);
        free(a);
        return core_err(err, errlen, -e, "audit log %s: %s", path, strerror(e));
    }
    a->size = st.st_size;
    torn_info t;
    int rc = recover_tail(a, st.st_size, &t, err, errlen);
    if (rc == 1) {
        log_warn("audit log %s: torn last line (%llu bytes at offset %llu, a crash mid-write); "
                 "kept and recorded by a recovery record", path, (unsigned long long)t.bytes,
                 (unsigned long long)t.offset);
        a->torn = 1;
        rc = write_recovery(a, &t, err, errlen);
    }
    if (rc < 0) {
        close(fd);
        free(a);
        return rc;
    }
    pthread_mutex_init(&a->lock, NULL);
    *out = a;
    return 0;
}

int heal_audit_append(heal_audit *a, const heal_audit_rec *rec, uint64_t *seq_out, char *err, size_t errlen)
{
    int rc = validate_rec(rec, err, errlen);
    if (rc)
        return rc;
    pthread_mutex_lock(&a->lock);
    if (a->broken) {
        pthread_mutex_unlock(&a->lock);
        return core_err(err, errlen, -EIO, "audit log %s: an earlier write failed; reopen the log", a->path);
    }
    char *line, hash[HASH_LEN + 1];
    size_t len, done;
    rc = make_line(rec, a->seq + 1, a->head, NULL, &line, &len, hash);
    if (rc) {
        pthread_mutex_unlock(&a->lock);
        return core_err(err, errlen, rc, "audit log %s: out of memory", a->path);
    }
    rc = write_all(a->fd, line, len, &done);
    free(line);
    if (rc) {
        /* Undo our own partial line (we hold the flock: nobody else writes). */
        if (done && ftruncate(a->fd, a->size))
            a->broken = true;
        pthread_mutex_unlock(&a->lock);
        return core_err(err, errlen, -EIO, "audit log %s: write: %s", a->path, strerror(-rc));
    }
    if (fdatasync(a->fd)) {
        int e = errno;
        a->broken = true; /* whether the record reached the disk is unknown */
        pthread_mutex_unlock(&a->lock);
        return core_err(err, errlen, -EIO, "audit log %s: fdatasync: %s", a->path, strerror(e));
    }
    a->seq++;
    a->size += (off_t)len;
    memcpy(a->head, hash, sizeof a->head);
    if (seq_out)
        *seq_out = a->seq;
    pthread_mutex_unlock(&a->lock);
    return 0;
}

void heal_audit_head(heal_audit *a, uint64_t *seq, char *hash_hex)
{
    pthread_mutex_lock(&a->lock);
    if (seq)
        *seq = a->seq;
    if (hash_hex)
        core_sncpy(hash_hex, HEAL_AUDIT_HASH_HEX, a->head);
    pthread_mutex_unlock(&a->lock);
}

int heal_audit_torn_at_open(const heal_audit *a)
{
    return a->torn;
}

void heal_audit_close(heal_audit *a)
{
    if (!a)
        return;
    close(a->fd);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

/* ---- reading lines with a look-ahead window -------------------------------------------- */

typedef struct rline {
    char *p;
    size_t len;       /* without '\n' */
    bool terminated;
    uint64_t off;     /* byte offset of the line */
    uint64_t lineno;  /* 1-based */
} rline;

typedef struct lreader {
    FILE *f;
    uint64_t off, lineno;
    uint64_t limit; /* stop at this byte offset (a line boundary); UINT64_MAX: the end */
    rline q[LOOKAHEAD + 1];
    int n;          /* lines queued */
    int err;
} lreader;

static int lr_fill(lreader *r)
{
    while (r->n < LOOKAHEAD + 1 && r->off < r->limit) {
        char *p = NULL;
        size_t cap = 0;
        errno = 0;
        ssize_t got = getline(&p, &cap, r->f);
        if (got < 0) {
            free(p);
            if (ferror(r->f))
                r->err = errno ? -errno : -EIO;
            return r->err;
        }
        rline *l = &r->q[r->n++];
        l->p = p;
        l->terminated = got > 0 && p[got - 1] == '\n';
        l->len = (size_t)got - l->terminated;
        l->off = r->off;
        l->lineno = ++r->lineno;
        r->off += (uint64_t)got;
    }
    return 0;
}

static void lr_drop(lreader *r, int k)
{
    for (int i = 0; i < k; i++)
        free(r->q[i].p);
    memmove(r->q, r->q + k, (size_t)(r->n - k) * sizeof r->q[0]);
    r->n -= k;
}

static int lr_open(lreader *r, const char *path, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->limit = UINT64_MAX;
    int fd = open_checked(path, O_RDONLY, err, errlen);
    if (fd < 0)
        return fd;
    r->f = fdopen(fd, "r");
    if (!r->f) {
        int e = errno;
        close(fd);
        return core_err(err, errlen, -e, "audit log %s: %s", path, strerror(e));
    }
    return 0;
}

static void lr_close(lreader *r)
{
    lr_drop(r, r->n);
    if (r->f)
        fclose(r->f);
}

/* If a queued line k >= 1 is a recovery record naming the bytes from q[0]
 * up to just before its own '\n' as torn, returns k; else 0. */
static int find_recovery(lreader *r)
{
    for (int k = 1; k < r->n; k++) {
        rline *l = &r->q[k];
        if (!memmem(l->p, l->len, RECOVERY_TAG, sizeof RECOVERY_TAG - 1))
            continue;
        line_rec lr;
        char why[200];
        if (check_line(l->p, l->len, &lr, why, sizeof why) != HEAL_AUDIT_OK || !lr.recovery)
            continue;
        if (lr.torn.offset != r->q[0].off || lr.torn.offset + lr.torn.bytes + 1 != l->off)
            continue;
        crypto_hash_sha256_state st;
        unsigned char h[crypto_hash_sha256_BYTES];
        char hex[HASH_LEN + 1];
        crypto_hash_sha256_init(&st);
        for (int i = 0; i < k; i++) {
            crypto_hash_sha256_update(&st, (const unsigned char *)r->q[i].p, r->q[i].len);
            if (i + 1 < k)
                crypto_hash_sha256_update(&st, (const unsigned char *)"\n", 1);
        }
        crypto_hash_sha256_final(&st, h);
        sodium_bin2hex(hex, sizeof hex, h, sizeof h);
        if (!sodium_memcmp(hex, lr.torn.sha, HASH_LEN))
            return k;
    }
    return 0;
}

static int vfail(heal_audit_verify_result *res, heal_audit_status st, const rline *l, uint64_t seq)
{
    res->status = st;
    res->bad_line = l->lineno;
    res->bad_seq = seq;
    return -EBADMSG;
}

static int verify_upto(const char *path, uint64_t limit, heal_audit_verify_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    memcpy(res->last_hash, zero_hash, sizeof res->last_hash);
    if (sodium_init() < 0)
        return core_err(err, errlen, -EIO, "audit log: libsodium failed to initialise");
    lreader r;
    int rc = lr_open(&r, path, err, errlen);
    if (rc)
        return rc;
    r.limit = limit;
    uint64_t expect = 1;
    for (;;) {
        if ((rc = lr_fill(&r)) != 0) {
            rc = core_err(err, errlen, rc, "audit log %s: read: %s", path, strerror(-rc));
            break;
        }
        if (r.n == 0)
            break;
        rline *l = &r.q[0];
        line_rec lr;
        heal_audit_status st = HEAL_AUDIT_TORN_TAIL;
        if (l->terminated)
            st = check_line(l->p, l->len, &lr, res->why, sizeof res->why);
        bool next_recovery = r.n > 1 && memmem(r.q[1].p, r.q[1].len, RECOVERY_TAG, sizeof RECOVERY_TAG - 1);
        if (l->terminated && (st != HEAL_AUDIT_OK || next_recovery)) {
            int k = find_recovery(&r);
            if (k) {
                res->torn_recovered++;
                res->why[0] = 0;
                lr_drop(&r, k);
                continue;
            }
        }
        if (st == HEAL_AUDIT_TORN_TAIL) {
            snprintf(res->why, sizeof res->why,
                     "the last line (%zu bytes at offset %llu) was never completed (a crash mid-write?) "
                     "and no recovery record follows it yet; opening the log records one",
                     l->len, (unsigned long long)l->off);
            rc = vfail(res, st, l, 0);
            break;
        }
        if (st != HEAL_AUDIT_OK) {
            rc = vfail(res, st, l, lr.seq);
            break;
        }
        if (lr.seq != expect) {
            snprintf(res->why, sizeof res->why, "seq %llu where %llu was expected (a line was deleted, "
                     "inserted or moved)", (unsigned long long)lr.seq, (unsigned long long)expect);
            rc = vfail(res, HEAL_AUDIT_SEQ_GAP, l, lr.seq);
            break;
        }
        if (sodium_memcmp(lr.prev, res->last_hash, HASH_LEN)) {
            snprintf(res->why, sizeof res->why, "prev of record %llu is not the hash of record %llu "
                     "(the record before it was rewritten)", (unsigned long long)lr.seq,
                     (unsigned long long)(lr.seq - 1));
            rc = vfail(res, HEAL_AUDIT_PREV_MISMATCH, l, lr.seq);
            break;
        }
        memcpy(res->last_hash, lr.hash, sizeof res->last_hash);
        res->last_seq = lr.seq;
        res->records++;
        expect++;
        lr_drop(&r, 1);
    }
    lr_close(&r);
    return rc;
}

int heal_audit_verify(const char *path, heal_audit_verify_result *res, char *err, size_t errlen)
{
    return verify_upto(path, UINT64_MAX, res, err, errlen);
}

int heal_audit_verify_live(heal_audit *a, heal_audit_verify_result *res, char *err, size_t errlen)
{
    pthread_mutex_lock(&a->lock);
    uint64_t limit = (uint64_t)a->size; /* a line boundary: writes happen under the lock */
    pthread_mutex_unlock(&a->lock);
    return verify_upto(a->path, limit, res, err, errlen);
}

/* ---- reading records ------------------------------------------------------------------------- */

static int deliver(const char *p, size_t len, const heal_audit_filter *f, heal_audit_cb cb, void *ud)
{
    json_t *o = json_loadb(p, len, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return 0;
    }
    heal_audit_entry e = {.line = p, .len = len, .json = o};
    json_t *seq = json_object_get(o, "seq"), *ts = json_object_get(o, "ts");
    e.seq = json_is_integer(seq) ? (uint64_t)json_integer_value(seq) : 0;
    e.ts_ms = json_is_integer(ts) ? (int64_t)json_integer_value(ts) : 0;
    e.kind = json_string_value(json_object_get(o, "kind"));
    e.service = json_string_value(json_object_get(o, "service"));
    if (!e.kind)
        e.kind = "";
    if (!e.service)
        e.service = "";
    int rc = 0;
    if (e.seq > f->since_seq && (!f->service || !strcmp(f->service, e.service)))
        rc = cb ? cb(&e, ud) : 1;
    json_decref(o);
    return rc;
}

/* Does the line pass the filter? (deliver without a callback says 1.) */
static bool matches(const char *p, size_t len, const heal_audit_filter *f)
{
    return deliver(p, len, f, NULL, NULL) != 0;
}

int heal_audit_read(const char *path, const heal_audit_filter *f, heal_audit_cb cb, void *ud,
                    char *err, size_t errlen)
{
    static const heal_audit_filter none;
    if (!f)
        f = &none;
    int fd = open_checked(path, O_RDONLY, err, errlen);
    if (fd < 0)
        return fd;
    FILE *fp = fdopen(fd, "r");
    if (!fp) {
        int e = errno;
        close(fd);
        return core_err(err, errlen, -e, "audit log %s: %s", path, strerror(e));
    }
    char **ring = NULL;
    size_t *ring_len = NULL, head = 0, count = 0;
    if (f->last_n) {
        ring = calloc(f->last_n, sizeof *ring);
        ring_len = calloc(f->last_n, sizeof *ring_len);
        if (!ring || !ring_len) {
            free(ring);
            free(ring_len);
            fclose(fp);
            return core_err(err, errlen, -ENOMEM, "audit log %s: out of memory", path);
        }
    }
    char *p = NULL;
    size_t cap = 0;
    ssize_t got;
    int rc = 0;
    while ((got = getline(&p, &cap, fp)) >= 0) {
        size_t len = (size_t)got;
        if (len && p[len - 1] == '\n')
            len--;
        if (!f->last_n) {
            if ((rc = deliver(p, len, f, cb, ud)) != 0)
                break;
            continue;
        }
        if (!matches(p, len, f))
            continue;
        free(ring[head]);
        ring[head] = p;
        ring_len[head] = len;
        head = (head + 1) % f->last_n;
        if (count < f->last_n)
            count++;
        p = NULL;
        cap = 0;
    }
    if (got < 0 && ferror(fp))
        rc = core_err(err, errlen, -EIO, "audit log %s: read error", path);
    free(p);
    if (ring) {
        size_t start = (head + f->last_n - count) % f->last_n;
        for (size_t i = 0; i < count && !rc; i++) {
            size_t k = (start + i) % f->last_n;
            rc = deliver(ring[k], ring_len[k], f, cb, ud);
        }
        for (size_t i = 0; i < f->last_n; i++)
            free(ring[i]);
        free(ring);
        free(ring_len);
    }
    fclose(fp);
    return rc;
}
