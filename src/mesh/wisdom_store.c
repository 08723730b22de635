/* wisdom_store.c: received wisdom kept with its provenance in the store's
 * own SQLite file (memory's conventions, as src/memory/know.c: WAL, an
 * application_id, a versioned schema with ordered migrations), deduplicated
 * by (origin, seq) and held within limits; rejected records leave a
 * provenance row (sender, time, verdict, reason), not their bytes. Its own
 * file rather than a table in the cell's memory db: the records come from
 * other machines and may be hostile, so they stay apart from the cell's own
 * data and can be dropped whole. And what the brain asks of it: candidate
 * actions for an incident, weighed by f(k, n, trust). One thread at a time. */
#include "core/core.h"
#include "mesh/wisdom.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WISDOM_APP_ID 0x49505753 /* "IPWS" in PRAGMA application_id */

struct mesh_wisdom_store {
    sqlite3 *db;
    mesh_wisdom_limits lim;
    char path[512];
};

/* Migration i brings the schema from version i to i + 1. Append only. */
static const char *const migrations[] = {
    /* 0 -> 1: first schema. Times are the caller's ms; ids are 32-byte public keys. */
    "CREATE TABLE records (id INTEGER PRIMARY KEY, origin BLOB NOT NULL, seq INTEGER NOT NULL,"
    " kind INTEGER NOT NULL, ts INTEGER NOT NULL, sender BLOB NOT NULL, received INTEGER NOT NULL,"
    " verdict TEXT NOT NULL, data BLOB NOT NULL, UNIQUE (origin, seq));"
    "CREATE INDEX records_received ON records(received);"
    "CREATE INDEX records_kind ON records(kind, origin, seq);"
    "CREATE TABLE rejects (id INTEGER PRIMARY KEY, sender BLOB NOT NULL, received INTEGER NOT NULL,"
    " verdict TEXT NOT NULL, reason TEXT NOT NULL, origin BLOB, seq INTEGER);"
    "CREATE TABLE peers (id BLOB PRIMARY KEY, t INTEGER NOT NULL, p2 REAL NOT NULL, p4 REAL NOT NULL,"
    " p5 REAL NOT NULL, p7 REAL NOT NULL) WITHOUT ROWID;",
};
#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

static int sqlerr(mesh_wisdom_store *s, int rc, const char *what, char *err, size_t errlen)
{
    return core_err(err, errlen, rc == SQLITE_FULL ? -ENOSPC : -EIO, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

static int exec(mesh_wisdom_store *s, const char *sql) { return sqlite3_exec(s->db, sql, NULL, NULL, NULL); }

static int64_t query_i64(mesh_wisdom_store *s, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = 0;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL))
        return 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int migrate(mesh_wisdom_store *s, char *err, size_t errlen)
{
    int64_t v = query_i64(s, "PRAGMA user_version");
    if (v > NMIGRATIONS)
        return core_err(err, errlen, -EINVAL, "%s: schema version %lld is newer than this build knows (%d)", s->path,
                    (long long)v, NMIGRATIONS);
    for (int i = (int)v; i < NMIGRATIONS; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", i + 1);
        int rc = exec(s, "BEGIN IMMEDIATE");
        if (!rc)
            rc = exec(s, migrations[i]);
        if (!rc)
            rc = exec(s, sql);
        if (!rc)
            rc = exec(s, "COMMIT");
        if (rc) {
            int e = sqlerr(s, rc, "migrating the schema", err, errlen);
            exec(s, "ROLLBACK");
            return e;
        }
    }
    return 0;
}

int mesh_wisdom_store_open(const char *path, const mesh_wisdom_limits *lim, mesh_wisdom_store **out, char *err,
                           size_t errlen)
{
    *out = NULL;
    mesh_wisdom_store *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    snprintf(s->path, sizeof s->path, "%s", path);
    s->lim = lim ? *lim : (mesh_wisdom_limits){0};
    if (s->lim.max_records <= 0)
        s->lim.max_records = 10000;
    if (s->lim.max_per_origin <= 0)
        s->lim.max_per_origin = 256;
    if (s->lim.max_rejects <= 0)
        s->lim.max_rejects = 256;
    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc) {
        rc = core_err(err, errlen, -EIO, "%s: cannot open: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        mesh_wisdom_store_close(s);
        return rc;
    }
    sqlite3_busy_timeout(s->db, 5000);
    int64_t app = query_i64(s, "PRAGMA application_id");
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA application_id = %d", WISDOM_APP_ID);
    if (app && app != WISDOM_APP_ID)
        rc = core_err(err, errlen, -EINVAL, "%s: not an IPPOC wisdom store (application_id %lld)", path, (long long)app);
    else if ((rc = exec(s, "PRAGMA journal_mode=WAL")) || (rc = exec(s, sql)) ||
             (rc = exec(s, "PRAGMA synchronous=NORMAL")))
        rc = sqlerr(s, rc, "setting up", err, errlen);
    else
        rc = migrate(s, err, errlen);
    if (rc) {
        mesh_wisdom_store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void mesh_wisdom_store_close(mesh_wisdom_store *s)
{
    if (!s)
        return;
    sqlite3_close(s->db);
    free(s);
}

/* ---- receiving ---- */

static int reject_row(mesh_wisdom_store *s, const uint8_t *sender, int64_t now_ms, const char *verdict,
                      const char *reason, const mesh_wisdom_rec *r)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db,
                                "INSERT INTO rejects (sender, received, verdict, reason, origin, seq)"
                                " VALUES (?, ?, ?, ?, ?, ?)",
                                -1, &st, NULL);
    if (rc)
        return rc;
    sqlite3_bind_blob(st, 1, sender, MESH_WISDOM_ID_BYTES, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_text(st, 3, verdict, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, reason, -1, SQLITE_TRANSIENT);
    if (r) {
        sqlite3_bind_blob(st, 5, r->origin, MESH_WISDOM_ID_BYTES, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 6, (int64_t)r->seq);
    }
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sqlite3_errcode(s->db);
    sqlite3_finalize(st);
    char sql[160];
    snprintf(sql, sizeof sql, "DELETE FROM rejects WHERE id <= (SELECT max(id) FROM rejects) - %d",
             s->lim.max_rejects);
    return rc ? rc : exec(s, sql);
}

/* 1: kept with the same bytes, 2: kept with other bytes, 0: not kept, < 0 SQLite error. */
static int kept(mesh_wisdom_store *s, const mesh_wisdom_rec *r, const uint8_t *buf, size_t len)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT data FROM records WHERE origin = ? AND seq = ?", -1, &st, NULL))
        return -1;
    sqlite3_bind_blob(st, 1, r->origin, MESH_WISDOM_ID_BYTES, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, (int64_t)r->seq);
    int v = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const void *d = sqlite3_column_blob(st, 0);
        v = (size_t)sqlite3_column_bytes(st, 0) == len && d && !memcmp(d, buf, len) ? 1 : 2;
    }
    sqlite3_finalize(st);
    return v;
}

static int insert(mesh_wisdom_store *s, const mesh_wisdom_rec *r, const uint8_t *sender, const uint8_t *buf,
                  size_t len, int64_t now_ms)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db,
                                "INSERT INTO records (origin, seq, kind, ts, sender, received, verdict, data)"
                                " VALUES (?, ?, ?, ?, ?, ?, 'ok', ?)",
                                -1, &st, NULL);
    if (rc)
        return rc;
    sqlite3_bind_blob(st, 1, r->origin, MESH_WISDOM_ID_BYTES, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, (int64_t)r->seq);
    sqlite3_bind_int(st, 3, (int)r->kind);
    sqlite3_bind_int64(st, 4, r->ts_ms);
    sqlite3_bind_blob(st, 5, sender, MESH_WISDOM_ID_BYTES, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 6, now_ms);
    sqlite3_bind_blob(st, 7, buf, (int)len, SQLITE_TRANSIENT);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sqlite3_errcode(s->db);
    sqlite3_finalize(st);
    if (rc)
        return rc;
    /* limits: the origin's lowest seq beyond its share, then the oldest received beyond the total */
    if (sqlite3_prepare_v2(s->db,
                           "DELETE FROM records WHERE origin = ?1 AND seq NOT IN"
                           " (SELECT seq FROM records WHERE origin = ?1 ORDER BY seq DESC LIMIT ?2)",
                           -1, &st, NULL))
        return sqlite3_errcode(s->db);
    sqlite3_bind_blob(st, 1, r->origin, MESH_WISDOM_ID_BYTES, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, s->lim.max_per_origin);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sqlite3_errcode(s->db);
    sqlite3_finalize(st);
    char sql[200];
    snprintf(sql, sizeof sql,
             "DELETE FROM records WHERE id IN (SELECT id FROM records ORDER BY received DESC, id DESC"
             " LIMIT -1 OFFSET %d)",
             s->lim.max_records);
    return rc ? rc : exec(s, sql);
}

static int verdict_errno(mesh_wisdom_verdict v)
{
    switch (v) {
    case MESH_WISDOM_MALFORMED: return -EBADMSG;
    case MESH_WISDOM_UNSIGNED: return -ENOKEY;
    case MESH_WISDOM_BAD_SIG: return -EKEYREJECTED;
    default: return -EPERM;
    }
}

int mesh_wisdom_store_receive(mesh_wisdom_store *s, mesh_wisdom_trust *t, const uint8_t sender[MESH_WISDOM_ID_BYTES],
                              const uint8_t *buf, size_t len, int64_t now_ms, mesh_wisdom_verdict *verdict,
                              char *err, size_t errlen)
{
    mesh_wisdom_verdict dummy;
    if (!verdict)
        verdict = &dummy;
    *verdict = MESH_WISDOM_OK;
    if (mesh_wisdom_trust_ignored(t, sender, now_ms))
        return core_err(err, errlen, -EACCES, "sender is ignored (trust below %g)", t->p.ignore_below);
    mesh_wisdom_rec r;
    char why[256] = "";
    *verdict = mesh_wisdom_accept(buf, len, &r, why, sizeof why);
    if (*verdict != MESH_WISDOM_OK) {
        /* P4 to the peer that delivered it; a signed rule-breaker's origin too */
        mesh_wisdom_trust_event(t, sender, MESH_TRUST_INVALID, now_ms);
        if (*verdict == MESH_WISDOM_FORBIDDEN && memcmp(r.origin, sender, MESH_WISDOM_ID_BYTES))
            mesh_wisdom_trust_event(t, r.origin, MESH_TRUST_INVALID, now_ms);
        int rc = reject_row(s, sender, now_ms, mesh_wisdom_verdict_name(*verdict), why,
                            *verdict == MESH_WISDOM_MALFORMED ? NULL : &r);
        if (rc)
            return sqlerr(s, rc, "keeping a reject", err, errlen);
        return core_err(err, errlen, verdict_errno(*verdict), "%s", why);
    }
    if (mesh_wisdom_trust_ignored(t, r.origin, now_ms))
        return core_err(err, errlen, -EACCES, "origin is ignored (trust below %g)", t->p.ignore_below);
    int k = kept(s, &r, buf, len);
    if (k < 0)
        return sqlerr(s, sqlite3_errcode(s->db), "looking up", err, errlen);
    if (k == 1)
        return 1;
    if (k == 2) {
        mesh_wisdom_trust_event(t, r.origin, MESH_TRUST_EQUIVOCATED, now_ms);
        reject_row(s, sender, now_ms, "equivocation", "other bytes under a kept (origin, seq)", &r);
        return core_err(err, errlen, -EEXIST, "seq %llu: the origin signed other bytes under this seq before",
                    (unsigned long long)r.seq);
    }
    int rc = exec(s, "BEGIN IMMEDIATE");
    if (!rc)
        rc = insert(s, &r, sender, buf, len, now_ms);
    /* below the origin's kept window (an old record replayed after its eviction): not new */
    int stale = rc ? 0 : !kept(s, &r, buf, len);
    if (!rc)
        rc = exec(s, stale ? "ROLLBACK" : "COMMIT");
    if (rc) {
        int e = sqlerr(s, rc, "keeping a record", err, errlen);
        exec(s, "ROLLBACK");
        return e;
    }
    if (stale)
        return 1;
    mesh_wisdom_trust_event(t, sender, MESH_TRUST_DELIVERED, now_ms);
    return 0;
}

int mesh_wisdom_store_count(mesh_wisdom_store *s, int *records, int *rejects)
{
    if (records)
        *records = (int)query_i64(s, "SELECT count(*) FROM records");
    if (rejects)
        *rejects = (int)query_i64(s, "SELECT count(*) FROM rejects");
    return 0;
}

int mesh_wisdom_store_recent(mesh_wisdom_store *s, int limit,
                             int (*fn)(void *ud, const uint8_t *buf, size_t len, int64_t received_ms), void *ud)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT data, received FROM records ORDER BY received DESC, id DESC LIMIT ?", -1,
                           &st, NULL))
        return -EIO;
    sqlite3_bind_int(st, 1, limit > 0 ? limit : -1);
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const uint8_t *b = sqlite3_column_blob(st, 0);
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        n++;
        if (b && fn(ud, b, len, sqlite3_column_int64(st, 1)))
            break;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? n : -EIO;
}

/* The sender of a kept record into sender; false when not kept. */
static bool kept_sender(mesh_wisdom_store *s, const uint8_t *origin, uint64_t seq, uint8_t *sender)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT sender FROM records WHERE origin = ? AND seq = ?", -1, &st, NULL))
        return false;
    sqlite3_bind_blob(st, 1, origin, MESH_WISDOM_ID_BYTES, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, (int64_t)seq);
    bool found = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == MESH_WISDOM_ID_BYTES;
    if (found)
        memcpy(sender, sqlite3_column_blob(st, 0), MESH_WISDOM_ID_BYTES);
    sqlite3_finalize(st);
    return found;
}

bool mesh_wisdom_store_forwardable(mesh_wisdom_store *s, const mesh_wisdom_trust *t,
                                   const uint8_t origin[MESH_WISDOM_ID_BYTES], uint64_t seq, int64_t now_ms)
{
    uint8_t sender[MESH_WISDOM_ID_BYTES];
    return kept_sender(s, origin, seq, sender) && !mesh_wisdom_trust_ignored(t, origin, now_ms) &&
           !mesh_wisdom_trust_ignored(t, sender, now_ms);
}

int mesh_wisdom_store_outcome(mesh_wisdom_store *s, mesh_wisdom_trust *t, const uint8_t origin[MESH_WISDOM_ID_BYTES],
                              uint64_t seq, bool worked, int64_t now_ms)
{
    uint8_t sender[MESH_WISDOM_ID_BYTES];
    if (!kept_sender(s, origin, seq, sender))
        return -ENOENT;
    return mesh_wisdom_trust_event(t, origin, worked ? MESH_TRUST_WORKED : MESH_TRUST_FAILED, now_ms);
}

/* ---- trust persistence ---- */

int mesh_wisdom_store_save_trust(mesh_wisdom_store *s, const mesh_wisdom_trust *t, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = exec(s, "BEGIN IMMEDIATE");
    if (!rc)
        rc = sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO peers (id, t, p2, p4, p5, p7) VALUES (?,?,?,?,?,?)",
                                -1, &st, NULL);
    for (int i = 0; !rc && i < t->n; i++) {
        const mesh_wisdom_peer *p = &t->v[i];
        sqlite3_reset(st);
        sqlite3_bind_blob(st, 1, p->id, MESH_WISDOM_ID_BYTES, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, p->t_ms);
        sqlite3_bind_double(st, 3, p->p2);
        sqlite3_bind_double(st, 4, p->p4);
        sqlite3_bind_double(st, 5, p->p5);
        sqlite3_bind_double(st, 6, p->p7);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sqlite3_errcode(s->db);
    }
    sqlite3_finalize(st);
    if (!rc)
        rc = exec(s, "COMMIT");
    if (rc) {
        int e = sqlerr(s, rc, "saving trust", err, errlen);
        exec(s, "ROLLBACK");
        return e;
    }
    return 0;
}

int mesh_wisdom_store_load_trust(mesh_wisdom_store *s, mesh_wisdom_trust *t, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT id, t, p2, p4, p5, p7 FROM peers", -1, &st, NULL))
        return sqlerr(s, sqlite3_errcode(s->db), "loading trust", err, errlen);
    int rc = 0;
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 0) != MESH_WISDOM_ID_BYTES)
            continue;
        mesh_wisdom_peer p = {.t_ms = sqlite3_column_int64(st, 1),
                              .p2 = sqlite3_column_double(st, 2),
                              .p4 = sqlite3_column_double(st, 3),
                              .p5 = sqlite3_column_double(st, 4),
                              .p7 = sqlite3_column_double(st, 5)};
        memcpy(p.id, sqlite3_column_blob(st, 0), MESH_WISDOM_ID_BYTES);
        rc = mesh_wisdom_trust_set(t, &p);
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- what the brain asks ---- */

double mesh_wisdom_host_similarity(const mesh_wisdom_host *a, const mesh_wisdom_host *b)
{
    if (strcmp(a->service, b->service))
        return 0;
    double s = 1;
    if (strcmp(a->os, b->os))
        s *= 0.5;
    if (a->kernel_major != b->kernel_major)
        s *= 0.5;
    else if (a->kernel_minor != b->kernel_minor)
        s *= 0.8;
    s *= pow(0.8, abs((int)a->cpu_log2 - (int)b->cpu_log2));
    s *= pow(0.8, abs((int)a->mem_log2 - (int)b->mem_log2));
    return s;
}

/* Wilson's score interval's lower bound at 95 %: k of n, shrunk by small n. */
static double wilson_lower(uint32_t k, uint32_t n)
{
    if (!n)
        return 0;
    const double z = 1.959964;
    double p = (double)k / n, z2n = z * z / n;
    double lo = (p + z2n / 2 - z * sqrt(p * (1 - p) / n + z2n / (4.0 * n))) / (1 + z2n);
    return lo > 0 ? lo : 0;
}

double mesh_wisdom_evidence(uint32_t k, uint32_t n, double trust_weight, double similarity, double host_similarity)
{
    return wilson_lower(k, n) * trust_weight * similarity * host_similarity;
}

double mesh_wisdom_likeness(const json_t *features, const mesh_wisdom_fix *f)
{
    size_t i, n = json_array_size(features), common = 0, mine = 0;
    json_t *v;
    json_array_foreach(features, i, v) {
        const char *s = json_string_value(v);
        if (!s)
            continue;
        bool dup = false; /* count each token once */
        for (size_t j = 0; j < i && !dup; j++) {
            const char *o = json_string_value(json_array_get(features, j));
            dup = o && !strcmp(o, s);
        }
        if (dup)
            continue;
        mine++;
        for (int j = 0; j < f->nfeatures; j++)
            if (!strcmp(f->features[j], s)) {
                common++;
                break;
            }
    }
    (void)n;
    size_t uni = mine + (size_t)f->nfeatures - common;
    return uni ? (double)common / (double)uni : 0;
}

static int cand_cmp(const void *a, const void *b)
{
    double x = ((const mesh_wisdom_cand *)a)->weight, y = ((const mesh_wisdom_cand *)b)->weight;
    return x < y ? 1 : x > y ? -1 : strcmp(((const mesh_wisdom_cand *)a)->action, ((const mesh_wisdom_cand *)b)->action);
}

typedef struct cand_acc {
    mesh_wisdom_cand *v;
    int n, cap;
} cand_acc;

static int add_evidence(cand_acc *acc, const mesh_wisdom_fix *f, double w)
{
    mesh_wisdom_cand *c = NULL;
    for (int i = 0; i < acc->n && !c; i++)
        if (!strcmp(acc->v[i].action, f->action))
            c = &acc->v[i];
    if (!c) {
        if (acc->n == acc->cap) {
            int cap = acc->cap ? 2 * acc->cap : 16;
            mesh_wisdom_cand *v = realloc(acc->v, (size_t)cap * sizeof *v);
            if (!v)
                return -ENOMEM;
            acc->v = v;
            acc->cap = cap;
        }
        c = &acc->v[acc->n++];
        memset(c, 0, sizeof *c);
        snprintf(c->action, sizeof c->action, "%s", f->action);
    }
    c->weight = 1 - (1 - c->weight) * (1 - w); /* noisy-or over origins */
    c->k += f->k;
    c->n += f->n;
    c->origins++;
    return 0;
}

int mesh_wisdom_candidates(mesh_wisdom_store *s, const mesh_wisdom_trust *t, const json_t *features,
                           const mesh_wisdom_host *host, int64_t now_ms, mesh_wisdom_cand *out, int max, char *err,
                           size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT data FROM records WHERE kind = 1 ORDER BY origin, seq DESC", -1, &st, NULL))
        return sqlerr(s, sqlite3_errcode(s->db), "reading records", err, errlen);
    cand_acc acc = {0};
    uint8_t cur[MESH_WISDOM_ID_BYTES] = {0};
    char seen[64][MESH_WISDOM_ACTION_MAX + 1]; /* the current origin's actions already counted */
    int nseen = 0, rc = 0;
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        mesh_wisdom_rec r;
        if (mesh_wisdom_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), &r, NULL, 0))
            continue; /* kept records decoded once; a damaged file is skipped over */
        if (memcmp(cur, r.origin, sizeof cur)) {
            memcpy(cur, r.origin, sizeof cur);
            nseen = 0;
        }
        bool dup = false;
        for (int i = 0; i < nseen && !dup; i++)
            dup = !strcmp(seen[i], r.fix.action);
        if (dup)
            continue; /* an older matching record of this origin for this action */
        double tw = mesh_wisdom_trust_weight(t, r.origin, now_ms), sim = mesh_wisdom_likeness(features, &r.fix),
               hs = mesh_wisdom_host_similarity(host, &r.host);
        if (tw <= 0 || sim < 0.5 || hs <= 0)
            continue;
        if (nseen < 64) /* one vote per origin and action: its newest matching record */
            snprintf(seen[nseen++], sizeof seen[0], "%s", r.fix.action);
        rc = add_evidence(&acc, &r.fix, mesh_wisdom_evidence(r.fix.k, r.fix.n, tw, sim, hs));
    }
    sqlite3_finalize(st);
    if (rc) {
        free(acc.v);
        return core_err(err, errlen, rc, "out of memory");
    }
    if (acc.n)
        qsort(acc.v, (size_t)acc.n, sizeof *acc.v, cand_cmp);
    int n = acc.n < max ? acc.n : max;
    if (n > 0)
        memcpy(out, acc.v, (size_t)n * sizeof *out);
    free(acc.v);
    return n;
}
