/* genome_http.c: the genome's API routes (see evolve_int.h):
 *   GET  /v1/genome[?path=P&limit=N]   {"commits":[...]} newest first
 *   GET  /v1/genome/check              {"ok":bool,"error":...}
 *   GET  /v1/genome/diff?rev=REV       the unified diff (text)
 *   GET  /v1/genome/show?rev=R&path=P  the file's text at R (default HEAD)
 *   POST /v1/genome/rollback {"rev","reason","who"}: a "rollback" commit
 *        whose tree is REV's, then an "apply" change through the policy
 *        (hooks.change); answers the commit and the policy's verdict. A
 *        refused change is undone in the genome (a "revert" commit), so the
 *        genome keeps saying what the machine runs. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evolve/evolve_int.h"

#define WHO_MAX 64

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = tolower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* The decoded value of key in query ("a=1&b=x%20y"); 1 when found, 0 when
 * absent, -EINVAL when it does not fit or is badly encoded. */
static int query_get(const char *query, const char *key, char *out, size_t n)
{
    size_t klen = strlen(key);
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
        if ((size_t)(end - p) >= klen && !strncmp(p, key, klen) && (p[klen] == '=' || p + klen == end)) {
            const char *v = p[klen] == '=' ? p + klen + 1 : end;
            size_t w = 0;
            for (; v < end; v++) {
                int ch = (unsigned char)*v;
                if (ch == '%') {
                    int hi = end - v >= 3 ? hexval(v[1]) : -1;
                    int lo = hi >= 0 ? hexval(v[2]) : -1;
                    if (hi < 0 || lo < 0)
                        return -EINVAL;
                    ch = hi * 16 + lo;
                    v += 2;
                } else if (ch == '+') {
                    ch = ' ';
                }
                if (w + 1 >= n)
                    return -EINVAL;
                out[w++] = (char)ch;
            }
            out[w] = 0;
            return 1;
        }
        p = amp ? amp + 1 : end;
    }
    return 0;
}

/* Only the keys in allowed (NULL-terminated) may appear. */
static int query_only(const char *query, const char *const *allowed, char *bad, size_t n)
{
    for (const char *p = query; p && *p;) {
        size_t len = strcspn(p, "=&");
        bool ok = false;
        for (int i = 0; allowed[i] && !ok; i++)
            ok = strlen(allowed[i]) == len && !strncmp(p, allowed[i], len);
        if (!ok && len) {
            snprintf(bad, n, "%.*s", (int)(len > 64 ? 64 : len), p);
            return -EINVAL;
        }
        const char *amp = strchr(p, '&');
        p = amp ? amp + 1 : p + strlen(p);
    }
    return 0;
}

#define CHECK_QUERY(...)                                                                          \
    do {                                                                                          \
        static const char *const allowed_[] = {__VA_ARGS__, NULL};                                 \
        char bad_[80];                                                                            \
        if (query_only(query, allowed_, bad_, sizeof bad_))                                       \
            return evolve_error(400, status, "%s: unknown parameter '%s'", path, bad_);           \
    } while (0)

static char *h_history(evolve_cell *c, const char *path, const char *query, int *status)
{
    CHECK_QUERY("path", "limit");
    char file[EVOLVE_TEXT] = "", lim[16] = "", err[512] = "";
    if (query_get(query, "path", file, sizeof file) < 0 || query_get(query, "limit", lim, sizeof lim) < 0)
        return evolve_error(400, status, "%s: a parameter is too long or badly encoded", path);
    int limit = 0;
    if (lim[0]) {
        char *end;
        long v = strtol(lim, &end, 10);
        if (*end || v < 1 || v > 10000)
            return evolve_error(400, status, "limit: '%s' is not a number from 1 to 10000", lim);
        limit = (int)v;
    }
    json_t *h = evolve_genome_history(c->g, file[0] ? file : NULL, limit, err, sizeof err);
    if (!h)
        return evolve_error(500, status, "genome: %s", err);
    return evolve_reply(json_pack("{s:o, s:s}", "commits", h, "dir", evolve_genome_dir(c->g)), 200, status);
}

static char *h_check(evolve_cell *c, const char *path, const char *query, int *status)
{
    CHECK_QUERY("x"); /* none really */
    char err[2048] = "";
    int rc = evolve_genome_check(c->g, err, sizeof err);
    json_t *o = json_pack("{s:b, s:s}", "ok", rc == 0, "dir", evolve_genome_dir(c->g));
    if (rc) {
        json_object_set_new(o, "error", json_string(err));
        json_object_set_new(o, "status", json_string(rc == -EUCLEAN ? "modified" : rc == -EIO ? "corrupt" : "error"));
    }
    return evolve_reply(o, 200, status);
}

static char *h_diff(evolve_cell *c, const char *path, const char *query, int *status)
{
    CHECK_QUERY("rev");
    char rev[256] = "", err[512] = "";
    if (query_get(query, "rev", rev, sizeof rev) <= 0 || !rev[0])
        return evolve_error(400, status, "%s: rev is required (a commit, HEAD~1 or A..B)", path);
    char *patch = NULL;
    int rc = evolve_genome_diff(c->g, rev, &patch, err, sizeof err);
    if (rc)
        return evolve_error(rc == -ENOENT ? 404 : 400, status, "diff %s: %s", rev, err);
    *status = 200;
    return patch ? patch : strdup("");
}

static char *h_show(evolve_cell *c, const char *path, const char *query, int *status)
{
    CHECK_QUERY("rev", "path");
    char rev[256] = "", file[EVOLVE_TEXT] = "", err[512] = "";
    if (query_get(query, "rev", rev, sizeof rev) < 0 || query_get(query, "path", file, sizeof file) <= 0 || !file[0])
        return evolve_error(400, status, "%s: path is required (e.g. ippoc.conf), rev is optional", path);
    char *data = NULL;
    size_t len = 0;
    int rc = evolve_genome_read(c->g, rev[0] ? rev : NULL, file, &data, &len, err, sizeof err);
    if (rc)
        return evolve_error(rc == -ENOENT ? 404 : 400, status, "show %s:%s: %s", rev[0] ? rev : "HEAD", file, err);
    *status = 200;
    return data;
}

/* The pending id in heal's "pending #ID: ..." text, 0 when none. */
static json_int_t pending_id(const char *msg)
{
    const char *p = strstr(msg, "pending #");
    return p ? (json_int_t)strtoll(p + 9, NULL, 10) : 0;
}

static char *h_rollback(evolve_cell *c, const char *body, size_t len, int *status)
{
    json_error_t je;
    json_t *in = body && len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!json_is_object(in)) {
        json_decref(in);
        return evolve_error(400, status, "rollback: the body must be a JSON object {\"rev\",\"reason\"}");
    }
    const char *rev = json_string_value(json_object_get(in, "rev"));
    const char *reason = json_string_value(json_object_get(in, "reason"));
    const char *who = json_string_value(json_object_get(in, "who"));
    const char *k;
    json_t *v;
    json_object_foreach(in, k, v) {
        if (strcmp(k, "rev") && strcmp(k, "reason") && strcmp(k, "who")) {
            char *r = evolve_error(400, status, "rollback: unknown field '%.64s' (rev, reason, who)", k);
            json_decref(in);
            return r;
        }
    }
    if (!rev || !*rev || strlen(rev) > 200 || (who && (!*who || strlen(who) > WHO_MAX))) {
        json_decref(in);
        return evolve_error(400, status, "rollback: rev is required (a string), who is 1..%d bytes", WHO_MAX);
    }
    char why[600], oid[41] = "", err[1024] = "", target[41] = "", named[256] = "";
    if (evolve_genome_resolve(c->g, rev, target, err, sizeof err) == 0 && strncmp(target, rev, strlen(rev)))
        snprintf(named, sizeof named, " (%s)", rev); /* HEAD~1 means another commit tomorrow: say which */
    snprintf(why, sizeof why, "rollback to %.7s%s%s%s", target[0] ? target : rev, named,
             reason && *reason ? ": " : "", reason ? reason : "");
    evolve_trailer t = {.kind = "rollback", .author = who ? who : "operator", .reason = why};
    json_t *changed = NULL;
    int rc = evolve_genome_rollback(c->g, rev, &t, oid, &changed, err, sizeof err);
    if (rc < 0) {
        char *r = evolve_error(rc == -ENOENT ? 404 : 400, status, "rollback %s: %s", rev, err);
        json_decref(in); /* rev lives in it */
        return r;
    }
    json_t *out = json_pack("{s:s, s:s, s:o}", "rev", rev, "commit", oid, "changed", changed ? changed : json_array());
    json_decref(in);
    if (rc == 1) {
        json_object_set_new(out, "verdict", json_string("none"));
        json_object_set_new(out, "message", json_string("the genome already holds that content: nothing to change"));
        return evolve_reply(out, 200, status);
    }
    if (!c->h.change) {
        json_object_set_new(out, "verdict", json_string("none"));
        json_object_set_new(out, "message", json_string("committed; no policy hook: the machine was not changed"));
        return evolve_reply(out, 200, status);
    }
    char verdict[32] = "", msg[512] = "";
    rc = c->h.change(c->h.ud, "apply", oid, why, verdict, sizeof verdict, msg, sizeof msg);
    json_object_set_new(out, "verdict", json_string(verdict[0] ? verdict : "refuse"));
    json_object_set_new(out, "message", json_string(msg));
    if (pending_id(msg))
        json_object_set_new(out, "pending", json_integer(pending_id(msg)));
    if (rc == 0)
        return evolve_reply(out, 200, status);
    /* not applied: the genome goes back to what the machine runs */
    char undo[41] = "", why2[700], uerr[512] = "";
    snprintf(why2, sizeof why2, "the rollback was not applied: %s", msg);
    evolve_trailer u = {.kind = "revert", .author = "ippoc", .reason = why2};
    if (evolve_genome_revert(c->g, oid, &u, undo, NULL, uerr, sizeof uerr) >= 0)
        json_object_set_new(out, "undone_by", json_string(undo));
    else
        json_object_set_new(out, "undo_error", json_string(uerr));
    json_object_set_new(out, "error", json_pack("{s:s, s:s}", "code", rc == -EPERM ? "forbidden" : "unavailable",
                                                "message", msg[0] ? msg : "the policy did not take the change"));
    return evolve_reply(out, rc == -EPERM ? 403 : 503, status);
}

char *evolve_genome_http(evolve_cell *c, const char *method, const char *path, const char *query,
                         const char *body, size_t len, int *status)
{
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (!strcmp(path, "/v1/genome/rollback")) {
        if (strcmp(method, "POST"))
            return evolve_error(405, status, "%s takes POST", path);
        return h_rollback(c, body, len, status);
    }
    static const struct {
        const char *path;
        char *(*fn)(evolve_cell *, const char *, const char *, int *);
    } gets[] = {{"/v1/genome", h_history}, {"/v1/genome/check", h_check}, {"/v1/genome/diff", h_diff},
                {"/v1/genome/show", h_show}};
    for (size_t i = 0; i < sizeof gets / sizeof gets[0]; i++)
        if (!strcmp(path, gets[i].path)) {
            if (!get)
                return evolve_error(405, status, "%s takes GET", path);
            return gets[i].fn(c, path, query, status);
        }
    return evolve_error(404, status, "no such resource: %s", path);
}
