/* know_link.c: typed, weighted links between nodes named "KIND:ID" in the
 * knowledge store: adding (a repeated link adds to its weight), reading
 * those within 1..3 hops of a node (breadth first, each link and node once,
 * so cycles end), and the helpers that drop or move a node's links when a
 * document is forgotten or merged. */
#include "memory/know_priv.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NODE_MAX 512

/* "kind:id": kind of [a-z0-9_-], a non-empty id without control characters. */
static bool node_ok(const char *s)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    const char *colon = strchr(s, ':');
    if (!n || n > NODE_MAX || !colon || colon == s || !colon[1])
        return false;
    for (const char *p = s; p < colon; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' || *p == '-'))
            return false;
    for (const char *p = colon + 1; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static bool rel_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

int mem_know_link(mem_know *k, const char *from, const char *rel, const char *to, double weight, char *err,
                  size_t errlen)
{
    if (!k)
        return core_err(err, errlen, -EINVAL, "knowledge: no store");
    if (!node_ok(from) || !node_ok(to))
        return core_err(err, errlen, -EINVAL, "knowledge: link %s -> %s: a node is \"kind:id\" (kind of a-z, 0-9, "
                        "_ or -)", from ? from : "(null)", to ? to : "(null)");
    if (!rel_ok(rel))
        return core_err(err, errlen, -EINVAL, "knowledge: link %s -> %s: relation '%s' is not a short lower-case "
                        "word", from, to, rel ? rel : "(null)");
    if (!isfinite(weight) || weight < 0)
        return core_err(err, errlen, -EINVAL, "knowledge: link %s -%s-> %s: weight %g is not >= 0", from, rel, to,
                        weight);
    if (weight == 0)
        weight = 1.0;
    pthread_mutex_lock(&k->mu);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(k->db, "INSERT INTO links (from_node, rel, to_node, weight, ts)"
                                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (from_node, rel, to_node)"
                                " DO UPDATE SET weight = weight + excluded.weight, ts = excluded.ts", -1, &st, NULL);
    if (!rc) {
        sqlite3_bind_text(st, 1, from, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, rel, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, to, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 4, weight);
        sqlite3_bind_int64(st, 5, know_now_ms());
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? 0 : rc;
        sqlite3_finalize(st);
    }
    if (rc)
        rc = know_sqlerr(k, rc, "adding a link", err, errlen);
    pthread_mutex_unlock(&k->mu);
    return rc;
}

typedef struct strs {
    char **s;
    size_t n, cap;
} strs;

static bool strs_has(const strs *v, const char *s)
{
    for (size_t i = 0; i < v->n; i++)
        if (!strcmp(v->s[i], s))
            return true;
    return false;
}

static int strs_add(strs *v, const char *s)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        char **p = realloc(v->s, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        v->s = p, v->cap = cap;
    }
    if (!(v->s[v->n] = strdup(s)))
        return -ENOMEM;
    v->n++;
    return 0;
}

static void strs_free(strs *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->s[i]);
    free(v->s);
}

#define LINKS_MAX 10000 /* links one answer may hold */

char *mem_know_links_json(mem_know *k, const char *node, int depth)
{
    if (!k || !node_ok(node))
        return NULL;
    if (depth < 1)
        depth = 1;
    if (depth > 3)
        depth = 3;
    json_t *out = json_array();
    strs seen = {0}, front = {0}, next = {0};
    int64_t *ids = NULL;
    size_t nids = 0;
    bool fail = !out || strs_add(&seen, node) || strs_add(&front, node);
    pthread_mutex_lock(&k->mu);
    sqlite3_stmt *st = NULL;
    fail = fail || sqlite3_prepare_v2(k->db, "SELECT id, from_node, rel, to_node, weight, ts FROM links"
                                      " WHERE from_node = ?1 UNION ALL SELECT id, from_node, rel, to_node, weight, ts"
                                      " FROM links WHERE to_node = ?1 AND from_node <> ?1 ORDER BY weight DESC, id",
                                      -1, &st, NULL);
    for (int d = 0; !fail && d < depth && front.n; d++) {
        for (size_t f = 0; !fail && f < front.n; f++) {
            sqlite3_bind_text(st, 1, front.s[f], -1, SQLITE_STATIC);
            while (!fail && sqlite3_step(st) == SQLITE_ROW) {
                int64_t id = sqlite3_column_int64(st, 0);
                bool dup = false;
                for (size_t i = 0; i < nids && !dup; i++)
                    dup = ids[i] == id;
                if (dup || nids >= LINKS_MAX)
                    continue;
                int64_t *p = realloc(ids, (nids + 1) * sizeof *ids);
                if (!p) {
                    fail = true;
                    break;
                }
                ids = p, ids[nids++] = id;
                const char *from = (const char *)sqlite3_column_text(st, 1),
                           *to = (const char *)sqlite3_column_text(st, 3);
                json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:f, s:I}", "from", from, "rel",
                                                     (const char *)sqlite3_column_text(st, 2), "to", to,
                                                     "weight", sqlite3_column_double(st, 4),
                                                     "ts", (json_int_t)sqlite3_column_int64(st, 5)));
                const char *other = strcmp(from, front.s[f]) ? from : to;
                if (!strs_has(&seen, other))
                    fail = strs_add(&seen, other) || strs_add(&next, other);
            }
            sqlite3_reset(st);
        }
        strs_free(&front);
        front = next;
        next = (strs){0};
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&k->mu);
    strs_free(&seen), strs_free(&front), strs_free(&next);
    free(ids);
    char *s = fail ? NULL : json_dumps(out, JSON_COMPACT);
    json_decref(out);
    return s;
}

int know_links_drop_node(mem_know *k, const char *node)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(k->db, "DELETE FROM links WHERE from_node = ?1 OR to_node = ?1", -1, &st, NULL);
    if (rc)
        return -EIO;
    sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

int know_links_move(mem_know *k, const char *old, const char *new_)
{
    static const char *const sql[] = {
        "INSERT INTO links (from_node, rel, to_node, weight, ts) SELECT ?2, rel, to_node, weight, ts FROM links"
        " WHERE from_node = ?1 AND to_node <> ?2 ON CONFLICT (from_node, rel, to_node)"
        " DO UPDATE SET weight = weight + excluded.weight, ts = max(ts, excluded.ts)",
        "INSERT INTO links (from_node, rel, to_node, weight, ts) SELECT from_node, rel, ?2, weight, ts FROM links"
        " WHERE to_node = ?1 AND from_node <> ?2 AND from_node <> ?1 ON CONFLICT (from_node, rel, to_node)"
        " DO UPDATE SET weight = weight + excluded.weight, ts = max(ts, excluded.ts)",
        "DELETE FROM links WHERE from_node = ?1 OR to_node = ?1",
    };
    for (size_t i = 0; i < 3; i++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(k->db, sql[i], -1, &st, NULL))
            return -EIO;
        sqlite3_bind_text(st, 1, old, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, new_, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            return -EIO;
    }
    return 0;
}
