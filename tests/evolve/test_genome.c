/* test_genome.c: the genome (src/evolve/genome.c) on a real repository in a
 * temporary dir: created with a first commit, writes commit with trailers
 * (and an unchanged write does not), read at an old rev, history with its
 * trailers and a path filter, diff, rollback, revert of a middle commit,
 * resolve, reopening keeps history, a hand-edited working tree and a
 * truncated object are detected, bad paths and a foreign dir are refused,
 * what plain git sees, four threads writing at once, and libgit2 unloaded
 * while the genome is idle and loaded again by the next call. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <time.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <git2.h>

#include "evolve/evolve.h"
#include "evolve_test_util.h"

typedef struct gt {
    char dir[64];   /* the temp dir */
    char gdir[128]; /* dir/genome */
    evolve_genome *g;
} gt;

static int setup(void **state)
{
    gt *t = calloc(1, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "/tmp/ippoc-genome-XXXXXX");
    if (!mkdtemp(t->dir))
        return -1;
    snprintf(t->gdir, sizeof t->gdir, "%s/genome", t->dir);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    gt *t = *state;
    evolve_genome_close(t->g);
    etu_rm_tree(t->dir);
    free(t);
    return 0;
}

static void gopen(gt *t)
{
    char err[512] = "";
    int rc = evolve_genome_open(t->gdir, &t->g, err, sizeof err);
    if (rc != 0)
        fail_msg("open: %d %s", rc, err);
}

static void greopen(gt *t)
{
    evolve_genome_close(t->g);
    t->g = NULL;
    gopen(t);
}

/* Commits path = text with reason; returns the oid in oid. */
static int put(gt *t, const char *path, const char *text, const char *reason, const char *fitness, char oid[41])
{
    char err[512] = "";
    evolve_trailer tr = {.kind = "evolve", .author = "ippoc", .reason = reason, .fitness = fitness};
    int rc = evolve_genome_write(t->g, path, text, strlen(text), &tr, oid, err, sizeof err);
    if (rc < 0)
        fail_msg("write %s: %d %s", path, rc, err);
    return rc;
}

static char *get(gt *t, const char *rev, const char *path)
{
    char err[512] = "", *data = NULL;
    size_t len = 0;
    int rc = evolve_genome_read(t->g, rev, path, &data, &len, err, sizeof err);
    if (rc != 0)
        fail_msg("read %s at %s: %d %s", path, rev ? rev : "HEAD", rc, err);
    assert_int_equal(strlen(data), len);
    return data;
}

static void test_create_write_read(void **state)
{
    gt *t = *state;
    gopen(t);
    assert_string_equal(evolve_genome_dir(t->g), t->gdir);
    char err[512] = "", first[41], a[41], b[41], same[41];
    assert_int_equal(evolve_genome_resolve(t->g, "HEAD", first, err, sizeof err), 0);
    assert_int_equal(strlen(first), 40);
    json_t *h = evolve_genome_history(t->g, NULL, 0, err, sizeof err);
    assert_non_null(h);
    assert_int_equal(json_array_size(h), 1); /* the first, empty commit */
    assert_int_equal(json_array_size(json_object_get(json_array_get(h, 0), "files")), 0);
    json_decref(h);
    assert_int_equal(evolve_genome_check(t->g, err, sizeof err), 0);

    assert_int_equal(put(t, "ippoc.conf", "[heal]\nmode = auto\n", "first config", NULL, a), 0);
    assert_string_not_equal(a, first);
    assert_int_equal(put(t, "ippoc.conf", "[heal]\nmode = manual\n", "manual mode", NULL, b), 0);
    /* the same content again: no commit, oid = HEAD */
    assert_int_equal(put(t, "ippoc.conf", "[heal]\nmode = manual\n", "again", NULL, same), 1);
    assert_string_equal(same, b);
    char *s = get(t, NULL, "ippoc.conf");
    assert_string_equal(s, "[heal]\nmode = manual\n");
    free(s);
    s = get(t, "HEAD~1", "ippoc.conf");
    assert_string_equal(s, "[heal]\nmode = auto\n");
    free(s);
    s = get(t, a, "ippoc.conf");
    assert_string_equal(s, "[heal]\nmode = auto\n");
    free(s);
    /* the working tree holds the file; nested paths get their dirs */
    char p[256];
    snprintf(p, sizeof p, "%s/ippoc.conf", t->gdir);
    assert_string_equal(etu_read(p), "[heal]\nmode = manual\n");
    assert_int_equal(put(t, "files/etc/postgresql/15/main/conf.d/ippoc.conf", "work_mem = 8MB\n", "wm", NULL, a), 0);
    snprintf(p, sizeof p, "%s/files/etc/postgresql/15/main/conf.d/ippoc.conf", t->gdir);
    assert_string_equal(etu_read(p), "work_mem = 8MB\n");
    assert_int_equal(evolve_genome_check(t->g, err, sizeof err), 0);
    /* a path not in a rev, an unknown rev */
    char *data = NULL;
    size_t len;
    assert_int_equal(evolve_genome_read(t->g, "HEAD~2", "files/etc/postgresql/15/main/conf.d/ippoc.conf", &data,
                                        &len, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "HEAD~2"));
    assert_null(data);
    assert_int_equal(evolve_genome_read(t->g, NULL, "nope", &data, &len, err, sizeof err), -ENOENT);
    assert_int_equal(evolve_genome_read(t->g, "nosuchbranch", "ippoc.conf", &data, &len, err, sizeof err), -ENOENT);
    /* an empty file is a file */
    assert_int_equal(put(t, "tools/empty.lua", "", "empty", NULL, a), 0);
    s = get(t, NULL, "tools/empty.lua");
    assert_string_equal(s, "");
    free(s);
}

static json_t *find_reason(json_t *h, const char *reason)
{
    size_t i;
    json_t *c;
    json_array_foreach(h, i, c) {
        const char *r = json_string_value(json_object_get(c, "reason"));
        if (r && !strcmp(r, reason))
            return c;
    }
    return NULL;
}

static void test_history_trailers(void **state)
{
    gt *t = *state;
    gopen(t);
    char a[41], b[41], c[41], err[512] = "";
    put(t, "files/etc/pg.conf", "shared_buffers = 128MB\n", "shared_buffers 128MB -> 1GB",
        "+17.2% tps [+9.1%, +25.0%] p=0.003", a);
    evolve_trailer tr = {.kind = "config", .author = "alice", .reason = "edited by hand\nsecond line"};
    assert_int_equal(evolve_genome_write(t->g, "ippoc.conf", "x = 1\n", 6, &tr, b, err, sizeof err), 0);
    put(t, "files/etc/pg.conf", "shared_buffers = 1GB\n", "bigger", NULL, c);

    json_t *h = evolve_genome_history(t->g, NULL, 0, err, sizeof err);
    assert_non_null(h);
    assert_int_equal(json_array_size(h), 4);
    /* newest first */
    json_t *top = json_array_get(h, 0);
    assert_string_equal(json_string_value(json_object_get(top, "id")), c);
    assert_int_equal(strlen(json_string_value(json_object_get(top, "short"))), 8);
    assert_true(json_integer_value(json_object_get(top, "time")) > 1600000000);
    json_t *e = find_reason(h, "shared_buffers 128MB -> 1GB");
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "kind")), "evolve");
    assert_string_equal(json_string_value(json_object_get(e, "author")), "ippoc");
    assert_string_equal(json_string_value(json_object_get(e, "fitness")), "+17.2% tps [+9.1%, +25.0%] p=0.003");
    assert_string_equal(json_string_value(json_object_get(e, "summary")), "evolve: shared_buffers 128MB -> 1GB");
    assert_int_equal(json_array_size(json_object_get(e, "files")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(e, "files"), 0)), "files/etc/pg.conf");
    /* a user author, a reason folded onto one line, no fitness */
    e = find_reason(h, "edited by hand second line");
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "author")), "alice");
    assert_string_equal(json_string_value(json_object_get(e, "kind")), "config");
    assert_true(json_is_null(json_object_get(e, "fitness")));
    json_decref(h);

    /* path filter: a file, a directory; limit */
    h = evolve_genome_history(t->g, "files/etc/pg.conf", 0, err, sizeof err);
    assert_int_equal(json_array_size(h), 2);
    json_decref(h);
    h = evolve_genome_history(t->g, "files", 0, err, sizeof err);
    assert_int_equal(json_array_size(h), 2);
    json_decref(h);
    h = evolve_genome_history(t->g, "ippoc.conf", 0, err, sizeof err);
    assert_int_equal(json_array_size(h), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(h, 0), "id")), b);
    json_decref(h);
    h = evolve_genome_history(t->g, NULL, 2, err, sizeof err);
    assert_int_equal(json_array_size(h), 2);
    json_decref(h);
    assert_null(evolve_genome_history(t->g, "../x", 0, err, sizeof err));
}

static void test_plain_git_sees_it(void **state)
{
    gt *t = *state;
    gopen(t);
    char a[41];
    put(t, "ippoc.conf", "y = 2\n", "why not", "+1% x", a);
    /* the message as git stores it: summary, blank line, trailers; the
     * committer IPPOC */
    git_repository *r = NULL;
    git_commit *c = NULL;
    git_oid id;
    assert_int_equal(git_repository_open(&r, t->gdir), 0);
    assert_int_equal(git_oid_fromstr(&id, a), 0);
    assert_int_equal(git_commit_lookup(&c, r, &id), 0);
    assert_string_equal(git_commit_message(c), "evolve: why not\n\nIppoc-Kind: evolve\nIppoc-Author: ippoc\n"
                                                "Ippoc-Reason: why not\nIppoc-Fitness: +1% x\n");
    assert_string_equal(git_commit_committer(c)->name, "IPPOC");
    assert_string_equal(git_commit_committer(c)->email, "ippoc@localhost");
    assert_string_equal(git_commit_author(c)->name, "IPPOC");
    git_commit_free(c);
    git_repository_free(r);
    /* the git command line, when there is one */
    if (access("/usr/bin/git", X_OK) == 0) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "git -c safe.directory='*' -C %s log -1 '--format=%%s%%x09%%(trailers:key=Ippoc-Kind,valueonly)' >%s/log.txt 2>&1",
                 t->gdir, t->dir);
        assert_int_equal(system(cmd), 0);
        snprintf(cmd, sizeof cmd, "%s/log.txt", t->dir);
        assert_non_null(strstr(etu_read(cmd), "evolve: why not\tevolve"));
    }
}

static void test_diff(void **state)
{
    gt *t = *state;
    gopen(t);
    char a[41], b[41], err[512] = "", *patch = NULL;
    put(t, "ippoc.conf", "a = 1\nb = 2\nc = 3\n", "one", NULL, a);
    put(t, "ippoc.conf", "a = 1\nb = 20\nc = 3\n", "two", NULL, b);
    assert_int_equal(evolve_genome_diff(t->g, b, &patch, err, sizeof err), 0);
    assert_non_null(strstr(patch, "--- a/ippoc.conf"));
    assert_non_null(strstr(patch, "\n-b = 2\n"));
    assert_non_null(strstr(patch, "\n+b = 20\n"));
    assert_null(strstr(patch, "+a = 1"));
    free(patch);
    /* HEAD by default; A..B; the first commit against nothing */
    assert_int_equal(evolve_genome_diff(t->g, NULL, &patch, err, sizeof err), 0);
    assert_non_null(strstr(patch, "+b = 20"));
    free(patch);
    assert_int_equal(evolve_genome_diff(t->g, "HEAD~2..HEAD", &patch, err, sizeof err), 0);
    assert_non_null(strstr(patch, "new file"));
    assert_non_null(strstr(patch, "+b = 20"));
    free(patch);
    assert_int_equal(evolve_genome_diff(t->g, "HEAD..HEAD", &patch, err, sizeof err), 0);
    assert_string_equal(patch, "");
    free(patch);
    assert_int_equal(evolve_genome_diff(t->g, "HEAD~2", &patch, err, sizeof err), 0);
    assert_string_equal(patch, "");
    free(patch);
    assert_int_equal(evolve_genome_diff(t->g, "deadbeef", &patch, err, sizeof err), -ENOENT);
    assert_null(patch);
}

static void test_rollback(void **state)
{
    gt *t = *state;
    gopen(t);
    char a[41], b[41], c[41], r[41], err[512] = "";
    put(t, "ippoc.conf", "v = 1\n", "v1", NULL, a);
    put(t, "ippoc.conf", "v = 2\n", "v2", NULL, b);
    put(t, "tools/t.lua", "return {}\n", "a tool", NULL, c);
    json_t *changed = NULL;
    evolve_trailer tr = {.kind = "rollback", .author = "operator", .reason = "back to v1"};
    assert_int_equal(evolve_genome_rollback(t->g, a, &tr, r, &changed, err, sizeof err), 0);
    assert_string_not_equal(r, a);
    assert_int_equal(json_array_size(changed), 2);
    assert_string_equal(json_string_value(json_array_get(changed, 0)), "ippoc.conf");
    assert_string_equal(json_string_value(json_array_get(changed, 1)), "tools/t.lua");
    json_decref(changed);
    /* HEAD holds a's tree; the working tree too (the tool is gone); history grew */
    char *s = get(t, NULL, "ippoc.conf");
    assert_string_equal(s, "v = 1\n");
    free(s);
    char p[256];
    snprintf(p, sizeof p, "%s/ippoc.conf", t->gdir);
    assert_string_equal(etu_read(p), "v = 1\n");
    snprintf(p, sizeof p, "%s/tools/t.lua", t->gdir);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(evolve_genome_check(t->g, err, sizeof err), 0);
    json_t *h = evolve_genome_history(t->g, NULL, 0, err, sizeof err);
    assert_int_equal(json_array_size(h), 5);
    assert_string_equal(json_string_value(json_object_get(json_array_get(h, 0), "kind")), "rollback");
    json_decref(h);
    /* rolling back to what HEAD holds changes nothing */
    char same[41];
    assert_int_equal(evolve_genome_rollback(t->g, "HEAD", &tr, same, &changed, err, sizeof err), 1);
    assert_string_equal(same, r);
    assert_int_equal(json_array_size(changed), 0);
    json_decref(changed);
    /* forward again, to c, with no changed list asked for */
    assert_int_equal(evolve_genome_rollback(t->g, c, NULL, r, NULL, err, sizeof err), 0);
    s = get(t, NULL, "tools/t.lua");
    assert_string_equal(s, "return {}\n");
    free(s);
    assert_int_equal(evolve_genome_rollback(t->g, "nosuch", &tr, r, &changed, err, sizeof err), -ENOENT);
    assert_null(changed);
}

static void test_revert_middle(void **state)
{
    gt *t = *state;
    gopen(t);
    char a[41], b[41], c[41], r[41], err[512] = "";
    put(t, "files/etc/a.conf", "a = 1\n", "a1", NULL, a);
    put(t, "files/etc/b.conf", "b = 1\n", "b1", NULL, b);
    put(t, "files/etc/c.conf", "c = 1\n", "c1", NULL, c);
    json_t *changed = NULL;
    evolve_trailer tr = {.kind = "revert", .author = "ippoc", .reason = "p95 latency regressed after b1"};
    assert_int_equal(evolve_genome_revert(t->g, b, &tr, r, &changed, err, sizeof err), 0);
    assert_int_equal(json_array_size(changed), 1);
    assert_string_equal(json_string_value(json_array_get(changed, 0)), "files/etc/b.conf");
    json_decref(changed);
    char *data = NULL, *s;
    size_t len;
    assert_int_equal(evolve_genome_read(t->g, NULL, "files/etc/b.conf", &data, &len, err, sizeof err), -ENOENT);
    s = get(t, NULL, "files/etc/a.conf");
    assert_string_equal(s, "a = 1\n");
    free(s);
    s = get(t, NULL, "files/etc/c.conf");
    assert_string_equal(s, "c = 1\n");
    free(s);
    char p[256];
    snprintf(p, sizeof p, "%s/files/etc/b.conf", t->gdir);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(evolve_genome_check(t->g, err, sizeof err), 0);

    /* a revert of a change to a file edited later conflicts */
    char d[41], e[41];
    put(t, "files/etc/a.conf", "a = 2\n", "a2", NULL, d);
    put(t, "files/etc/a.conf", "a = 3\n", "a3", NULL, e);
    assert_int_equal(evolve_genome_revert(t->g, d, &tr, r, &changed, err, sizeof err), -EEXIST);
    assert_non_null(strstr(err, "files/etc/a.conf"));
    assert_null(changed);
    s = get(t, NULL, "files/etc/a.conf");
    assert_string_equal(s, "a = 3\n");
    free(s);
    /* the first commit has no parent to go back to; an unknown rev */
    assert_int_equal(evolve_genome_revert(t->g, "HEAD~6", &tr, r, NULL, err, sizeof err), -EINVAL);
    assert_int_equal(evolve_genome_revert(t->g, "0000000", &tr, r, NULL, err, sizeof err), -ENOENT);
}

static void test_resolve(void **state)
{
    gt *t = *state;
    gopen(t);
    char a[41], o[41], err[512] = "";
    put(t, "ippoc.conf", "z\n", "z", NULL, a);
    assert_int_equal(evolve_genome_resolve(t->g, "HEAD", o, err, sizeof err), 0);
    assert_string_equal(o, a);
    char prefix[9];
    memcpy(prefix, a, 8);
    prefix[8] = 0;
    assert_int_equal(evolve_genome_resolve(t->g, prefix, o, err, sizeof err), 0);
    assert_string_equal(o, a);
    assert_int_equal(evolve_genome_resolve(t->g, "main", o, err, sizeof err), 0);
    assert_string_equal(o, a);
    assert_int_equal(evolve_genome_resolve(t->g, "HEAD~5", o, err, sizeof err), -ENOENT);
    assert_int_equal(evolve_genome_resolve(t->g, "nosuch", o, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "nosuch"));
    assert_int_equal(evolve_genome_resolve(t->g, "", o, err, sizeof err), -EINVAL);
}

static void test_reopen_keeps_history(void **state)
{
    gt *t = *state;
    gopen(t);
    char a[41], b[41], o[41], err[512] = "";
    put(t, "ippoc.conf", "one\n", "one", NULL, a);
    put(t, "ippoc.conf", "two\n", "two", NULL, b);
    greopen(t);
    assert_int_equal(evolve_genome_resolve(t->g, "HEAD", o, err, sizeof err), 0);
    assert_string_equal(o, b);
    json_t *h = evolve_genome_history(t->g, NULL, 0, err, sizeof err);
    assert_int_equal(json_array_size(h), 3);
    json_decref(h);
    char *s = get(t, "HEAD~1", "ippoc.conf");
    assert_string_equal(s, "one\n");
    free(s);
    assert_int_equal(evolve_genome_check(t->g, err, sizeof err), 0);
    /* and it goes on from there */
    put(t, "ippoc.conf", "three\n", "three", NULL, o);
    s = get(t, "HEAD~1", "ippoc.conf");
    assert_string_equal(s, "two\n");
    free(s);
}

static void test_check_working_tree(void **state)
{
    gt *t = *state;
    gopen(t);
    char a[41], err[512] = "";
    put(t, "ippoc.conf", "k = 1\n", "k", NULL, a);
    put(t, "tools/x.lua", "return 1\n", "x", NULL, a);
    char p[256];
    snprintf(p, sizeof p, "%s/ippoc.conf", t->gdir);
    etu_write(p, "k = 666\n");
    snprintf(p, sizeof p, "%s/tools/x.lua", t->gdir);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(evolve_genome_check(t->g, err, sizeof err), -EUCLEAN);
    assert_non_null(strstr(err, "working tree differs from HEAD"));
    assert_non_null(strstr(err, "ippoc.conf (modified)"));
    assert_non_null(strstr(err, "tools/x.lua (deleted)"));
    /* survives a reopen (the daemon restarted): opens, check still says so */
    greopen(t);
    assert_int_equal(evolve_genome_check(t->g, err, sizeof err), -EUCLEAN);
    assert_non_null(strstr(err, "ippoc.conf (modified)"));
    /* a stray file is named too */
    snprintf(p, sizeof p, "%s/stray", t->gdir);
    etu_write(p, "?");
    assert_int_equal(evolve_genome_check(t->g, err, sizeof err), -EUCLEAN);
    assert_non_null(strstr(err, "stray (untracked)"));
    unlink(p);
    /* the repository itself is untouched: HEAD still reads right */
    char *s = get(t, NULL, "ippoc.conf");
    assert_string_equal(s, "k = 1\n");
    free(s);
    /* a rollback to HEAD's own tree changes nothing; a write of the file
     * restores it; rollback to an older rev restores the rest */
    put(t, "ippoc.conf", "k = 1\n", "restore", NULL, a);
    snprintf(p, sizeof p, "%s/ippoc.conf", t->gdir);
    assert_string_equal(etu_read(p), "k = 1\n");
    assert_int_equal(evolve_genome_check(t->g, err, sizeof err), -EUCLEAN);
    assert_null(strstr(err, "ippoc.conf"));
    assert_int_equal(evolve_genome_rollback(t->g, "HEAD~1", NULL, a, NULL, err, sizeof err), 0);
    assert_int_equal(evolve_genome_check(t->g, err, sizeof err), 0);
}

/* .git/objects/xx/yyyy... of a blob with text */
static void blob_path(gt *t, const char *text, char *p, size_t n)
{
    git_oid id;
    char hex[41];
    assert_int_equal(git_odb_hash(&id, text, strlen(text), GIT_OBJECT_BLOB), 0);
    git_oid_tostr(hex, sizeof hex, &id);
    snprintf(p, n, "%s/.git/objects/%.2s/%s", t->gdir, hex, hex + 2);
}

static void test_corrupt_objects(void **state)
{
    gt *t = *state;
    gopen(t);
    char a[41], err[512] = "", p[256];
    put(t, "ippoc.conf", "old content\n", "old", NULL, a);
    put(t, "ippoc.conf", "new content\n", "new", NULL, a);
    evolve_genome_close(t->g);
    t->g = NULL;
    /* truncate the old blob to half (loose objects are read-only files) */
    blob_path(t, "old content\n", p, sizeof p);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(chmod(p, 0600), 0);
    assert_int_equal(truncate(p, st.st_size / 2), 0);
    gopen(t);
    int rc = evolve_genome_check(t->g, err, sizeof err);
    assert_int_equal(rc, -EIO);
    assert_non_null(strstr(err, "object"));
    char *data = NULL;
    size_t len;
    rc = evolve_genome_read(t->g, "HEAD~1", "ippoc.conf", &data, &len, err, sizeof err);
    assert_int_equal(rc, -EIO);
    assert_null(data);
    /* HEAD's own content still reads */
    char *s = get(t, NULL, "ippoc.conf");
    assert_string_equal(s, "new content\n");
    free(s);
    /* missing objects: both blobs gone (nothing left to fail to read) */
    evolve_genome_close(t->g);
    t->g = NULL;
    assert_int_equal(unlink(p), 0);
    blob_path(t, "new content\n", p, sizeof p);
    assert_int_equal(unlink(p), 0);
    gopen(t);
    assert_int_equal(evolve_genome_check(t->g, err, sizeof err), -EIO);
    assert_non_null(strstr(err, "missing"));
    assert_non_null(strstr(err, "ippoc.conf"));
}

static void test_missing_head(void **state)
{
    gt *t = *state;
    gopen(t);
    char a[41], err[512] = "", p[256];
    put(t, "ippoc.conf", "h\n", "h", NULL, a);
    evolve_genome_close(t->g);
    t->g = NULL;
    /* the branch HEAD points at is deleted: opens, check and write say -EIO */
    snprintf(p, sizeof p, "%s/.git/refs/heads/main", t->gdir);
    assert_int_equal(unlink(p), 0);
    gopen(t);
    assert_int_equal(evolve_genome_check(t->g, err, sizeof err), -EIO);
    assert_non_null(strstr(err, "HEAD"));
    assert_int_equal(evolve_genome_write(t->g, "ippoc.conf", "x", 1, NULL, a, err, sizeof err), -EIO);
    evolve_genome_close(t->g);
    t->g = NULL;
    /* .git/HEAD itself gone: libgit2 cannot open it: -EIO, not a new repo */
    snprintf(p, sizeof p, "%s/.git/HEAD", t->gdir);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(evolve_genome_open(t->gdir, &t->g, err, sizeof err), -EIO);
    assert_null(t->g);
    assert_non_null(strstr(err, t->gdir));
}

static void test_bad_paths(void **state)
{
    gt *t = *state;
    gopen(t);
    const char *bad[] = {"", "/etc/passwd", "..", "../x", "a/../../x", "a/..", ".git", ".git/config", "a/.git/x",
                         ".GIT/HEAD", "a//b", "a/", "./a", "a\nb"};
    char oid[41], err[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        int rc = evolve_genome_write(t->g, bad[i], "x", 1, NULL, oid, err, sizeof err);
        if (rc != -EINVAL)
            fail_msg("'%s' gave %d (%s)", bad[i], rc, err);
        assert_true(strlen(err) > 0);
        char *data = NULL;
        size_t len;
        assert_int_equal(evolve_genome_read(t->g, NULL, bad[i], &data, &len, err, sizeof err), -EINVAL);
    }
    assert_int_equal(evolve_genome_write(t->g, NULL, "x", 1, NULL, oid, err, sizeof err), -EINVAL);
    /* nothing escaped the genome */
    char p[256];
    snprintf(p, sizeof p, "%s/x", t->dir);
    assert_int_equal(access(p, F_OK), -1);
    /* a symlink planted in the working tree is not followed */
    snprintf(p, sizeof p, "%s/files", t->gdir);
    assert_int_equal(symlink(t->dir, p), 0);
    assert_int_equal(evolve_genome_write(t->g, "files/escape", "x", 1, NULL, oid, err, sizeof err), -ENOTDIR);
    snprintf(p, sizeof p, "%s/escape", t->dir);
    assert_int_equal(access(p, F_OK), -1);
    json_t *h = evolve_genome_history(t->g, NULL, 0, err, sizeof err);
    assert_int_equal(json_array_size(h), 1);
    json_decref(h);
}

static void test_foreign_dir(void **state)
{
    gt *t = *state;
    char err[512] = "", p[256];
    /* a user's non-empty directory: refused, left as it was */
    assert_int_equal(mkdir(t->gdir, 0700), 0);
    snprintf(p, sizeof p, "%s/notes.txt", t->gdir);
    etu_write(p, "mine");
    assert_int_equal(evolve_genome_open(t->gdir, &t->g, err, sizeof err), -EEXIST);
    assert_null(t->g);
    assert_non_null(strstr(err, t->gdir));
    assert_non_null(strstr(err, "not empty"));
    snprintf(p, sizeof p, "%s/.git", t->gdir);
    assert_int_equal(access(p, F_OK), -1);
    /* an empty existing directory becomes the genome; a file is refused */
    snprintf(p, sizeof p, "%s/notes.txt", t->gdir);
    unlink(p);
    gopen(t);
    assert_int_equal(evolve_genome_check(t->g, err, sizeof err), 0);
    snprintf(p, sizeof p, "%s/afile", t->dir);
    etu_write(p, "x");
    evolve_genome *g2 = NULL;
    assert_int_equal(evolve_genome_open(p, &g2, err, sizeof err), -ENOTDIR);
    assert_null(g2);
}

struct writer {
    gt *t;
    int id, ok;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; i < 25; i++) {
        char path[64], text[64], oid[41], err[512];
        snprintf(path, sizeof path, "files/w%d/n", w->id);
        snprintf(text, sizeof text, "n = %d\n", i);
        evolve_trailer tr = {.kind = "config", .author = "ippoc", .reason = text};
        if (evolve_genome_write(w->t->g, path, text, strlen(text), &tr, oid, err, sizeof err) == 0)
            w->ok++;
    }
    return NULL;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Four threads writing at once: every write is its own commit, none lost. */
static void test_threads(void **state)
{
    gt *t = *state;
    gopen(t);
    struct writer w[4];
    pthread_t th[4];
    double t0 = now_ms();
    for (int i = 0; i < 4; i++) {
        w[i] = (struct writer){.t = t, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].ok, 25);
    }
    double t1 = now_ms();
    char err[512] = "";
    json_t *h = evolve_genome_history(t->g, NULL, 1000, err, sizeof err);
    double t2 = now_ms();
    assert_int_equal(json_array_size(h), 101);
    json_decref(h);
    assert_int_equal(evolve_genome_check(t->g, err, sizeof err), 0);
    double t3 = now_ms();
    for (int i = 0; i < 4; i++) {
        char path[64];
        snprintf(path, sizeof path, "files/w%d/n", i);
        char *s = get(t, NULL, path);
        assert_string_equal(s, "n = 24\n");
        free(s);
    }
    print_message("100 commits from 4 threads: %.2f ms each; history of 101: %.1f ms; check: %.1f ms\n",
                  (t1 - t0) / 100, t2 - t1, t3 - t2);
}

/* Polls evolve_genome_lib_loaded() until it is want (5 s at most). */
static bool lib_loaded_becomes(bool want)
{
    double end = now_ms() + 5000;
    while (evolve_genome_lib_loaded() != want && now_ms() < end)
        usleep(5000);
    return evolve_genome_lib_loaded() == want;
}

/* libgit2 is loaded while the genome is in use, unloaded when the last
 * genome closes and, with IPPOC_GIT_IDLE_MS=50, after 50 ms without a
 * call; the next call loads it again and finds the history intact. */
static void test_unloads_when_idle(void **state)
{
    gt *t = *state;
    char a[41], b[41], o[41], err[512] = "";
    unsetenv("IPPOC_GIT_IDLE_MS");
    gopen(t); /* 60 s: still loaded after the open */
    assert_true(evolve_genome_lib_loaded());
    assert_int_equal(put(t, "ippoc.conf", "one\n", "one", NULL, a), 0);
    assert_true(evolve_genome_lib_loaded());
    evolve_genome_close(t->g);
    t->g = NULL;
    assert_false(evolve_genome_lib_loaded()); /* the last genome closed */

    setenv("IPPOC_GIT_IDLE_MS", "50", 1);
    gopen(t);
    unsetenv("IPPOC_GIT_IDLE_MS"); /* read when the first genome opens */
    assert_true(lib_loaded_becomes(false));
    assert_int_equal(put(t, "ippoc.conf", "two\n", "two", NULL, b), 0);
    assert_true(lib_loaded_becomes(false));
    char *s = get(t, a, "ippoc.conf");
    assert_string_equal(s, "one\n");
    free(s);
    assert_true(lib_loaded_becomes(false));
    assert_int_equal(evolve_genome_resolve(t->g, "HEAD", o, err, sizeof err), 0);
    assert_string_equal(o, b);
    json_t *h = evolve_genome_history(t->g, NULL, 0, err, sizeof err);
    assert_non_null(h);
    assert_int_equal(json_array_size(h), 3); /* created, one, two */
    assert_string_equal(json_string_value(json_object_get(json_array_get(h, 1), "id")), a);
    json_decref(h);
    assert_true(lib_loaded_becomes(false));
    assert_int_equal(evolve_genome_check(t->g, err, sizeof err), 0);
}

int main(void)
{
    git_libgit2_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_write_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_trailers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_git_sees_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revert_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_working_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unloads_when_idle, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    git_libgit2_shutdown();
    return rc;
}
