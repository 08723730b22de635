/* genome.c: the cell's git repository (libgit2) in STATE/genome: every
 * change to the cell's config, tuned files and tools is a commit whose
 * message ends in Ippoc-* trailers; history, diff, rollback (a new commit
 * with an old tree), revert (a new commit undoing one), and a check that
 * the working tree, the index and the object store still match HEAD.
 * One mutex serialises every libgit2 call on a genome. libgit2 is loaded
 * at run time and unloaded while the genome is idle (git_dl.h): each
 * operation opens the repository and frees it before it lets go. */
#include <ctype.h>
#include <strings.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <zlib.h>

#include "evolve/evolve.h"
#include "evolve/git_dl.h" /* the git_* calls go through the loaded library */

#define GENOME_BRANCH "main"
#define GENOME_EMAIL "ippoc@localhost"
#define SUMMARY_MAX 72
#define HISTORY_DEFAULT 50

/* A loose object file already verified (by name, size and mtime). */
struct loose_seen {
    unsigned char id[GIT_OID_RAWSZ];
    int64_t size, mtime_ns;
    bool used;
};

struct evolve_genome {
    pthread_mutex_t mu;
    git_repository *repo; /* open during one operation only (under mu), else NULL */
    bool held;            /* evolve_git_acquire()d for this operation */
    char *dir;
    struct loose_seen *seen; /* open addressing, cap a power of two */
    size_t nseen, cap;
};

/* ---- errors ---- */

static int gset(char *err, size_t n, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int gset(char *err, size_t n, int rc, const char *fmt, ...)
{
    if (err && n) {
        int k = snprintf(err, n, "genome: ");
        va_list ap;
        va_start(ap, fmt);
        if (k >= 0 && (size_t)k < n)
            vsnprintf(err + k, n - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static const char *git_msg(void)
{
    const git_error *e = git_error_last();
    return e && e->message ? e->message : "unknown libgit2 error";
}

/* libgit2 failed doing what: rc, with libgit2's message appended. */
static int gfail(char *err, size_t n, int rc, const char *what)
{
    return gset(err, n, rc, "%s: %s", what, git_msg());
}

/* ---- paths and messages ---- */

/* Relative, no empty, ".", ".." or ".git" component, no control bytes. */
static int path_check(const char *path, char *err, size_t n)
{
    if (!path || !*path)
        return gset(err, n, -EINVAL, "empty path");
    if (strlen(path) >= 1024)
        return gset(err, n, -ENAMETOOLONG, "path too long (%zu bytes)", strlen(path));
    if (path[0] == '/')
        return gset(err, n, -EINVAL, "'%s': an absolute path (paths are relative to the genome)", path);
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '\\')
            return gset(err, n, -EINVAL, "'%s': a control character or backslash in the path", path);
    const char *s = path;
    while (1) {
        const char *e = strchr(s, '/');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if (l == 0)
            return gset(err, n, -EINVAL, "'%s': an empty path component", path);
        if ((l == 1 && s[0] == '.') || (l == 2 && !strncmp(s, "..", 2)))
            return gset(err, n, -EINVAL, "'%s': '.' and '..' are not allowed in a path", path);
        if (l == 4 && !strncasecmp(s, ".git", 4))
            return gset(err, n, -EINVAL, "'%s': .git is the repository itself", path);
        if (!e)
            break;
        s = e + 1;
    }
    return 0;
}

/* Copies src into dst (n bytes) on one line: newlines and tabs become spaces. */
static void oneline(char *dst, size_t n, const char *src)
{
    size_t i = 0;
    for (; src && *src && i + 1 < n; src++)
        dst[i++] = (*src == '\n' || *src == '\r' || *src == '\t') ? ' ' : *src;
    dst[i] = 0;
}

static bool is_system_author(const char *a)
{
    return !a || !*a || !strcasecmp(a, "ippoc") || !strcasecmp(a, "operator");
}

/* "KIND: REASON" (or fallback), one line of at most SUMMARY_MAX bytes, a
 * blank line, then the trailers. malloc'd. */
static char *make_message(const evolve_trailer *t, const char *def_kind, const char *fallback)
{
    const char *kind = t && t->kind && *t->kind ? t->kind : def_kind;
    const char *author = t && t->author && *t->author ? t->author : "ippoc";
    char summary[SUMMARY_MAX + 1], what[1024], val[1024];
    const char *reason = t && t->reason && *t->reason ? t->reason : NULL;
    oneline(what, sizeof what, reason ? reason : fallback);
    snprintf(summary, sizeof summary, "%s: %s", kind, what);
    if (strlen(what) + strlen(kind) + 2 > SUMMARY_MAX) {
        size_t cut = SUMMARY_MAX - 3;
        while (cut > 0 && ((unsigned char)summary[cut] & 0xc0) == 0x80)
            cut--; /* not inside a UTF-8 sequence */
        memcpy(summary + cut, "...", 4);
    }
    size_t cap = 8192;
    char *m = malloc(cap);
    if (!m)
        return NULL;
    size_t k = (size_t)snprintf(m, cap, "%s\n\n", summary);
    oneline(val, sizeof val, kind);
    k += (size_t)snprintf(m + k, cap - k, "Ippoc-Kind: %s\n", val);
    oneline(val, sizeof val, author);
    k += (size_t)snprintf(m + k, cap - k, "Ippoc-Author: %s\n", val);
    oneline(val, sizeof val, reason ? reason : fallback);
    k += (size_t)snprintf(m + k, cap - k, "Ippoc-Reason: %s\n", val);
    if (t && t->fitness && *t->fitness) {
        oneline(val, sizeof val, t->fitness);
        snprintf(m + k, cap - k, "Ippoc-Fitness: %s\n", val);
    }
    return m;
}

/* ---- HEAD, revs, trees ---- */

static int head_commit(evolve_genome *g, git_commit **out, char *err, size_t n)
{
    git_object *o = NULL;
    *out = NULL;
    int rc = git_revparse_single(&o, g->repo, "HEAD");
    if (rc < 0)
        return gfail(err, n, -EIO, "HEAD does not resolve");
    rc = git_object_peel((git_object **)out, o, GIT_OBJECT_COMMIT);
    git_object_free(o);
    if (rc < 0)
        return gfail(err, n, -EIO, "HEAD is not a readable commit");
    return 0;
}

/* rev (NULL = HEAD) peeled to a commit: -ENOENT when it does not resolve,
 * -EIO when it resolves to an object that cannot be read. */
static int rev_commit(evolve_genome *g, const char *rev, git_commit **out, char *err, size_t n)
{
    *out = NULL;
    if (!rev)
        return head_commit(g, out, err, n);
    if (!*rev || rev[0] == '-')
        return gset(err, n, -EINVAL, "'%s' is not a revision", rev);
    git_object *o = NULL;
    int rc = git_revparse_single(&o, g->repo, rev);
    if (rc == GIT_ENOTFOUND || rc == GIT_EINVALIDSPEC || rc == GIT_EAMBIGUOUS)
        return gset(err, n, rc == GIT_EAMBIGUOUS ? -EINVAL : -ENOENT, "revision '%s': %s", rev, git_msg());
    if (rc < 0)
        return gset(err, n, -EIO, "revision '%s': %s", rev, git_msg());
    rc = git_object_peel((git_object **)out, o, GIT_OBJECT_COMMIT);
    git_object_free(o);
    if (rc < 0)
        return gset(err, n, -ENOENT, "revision '%s' is not a commit: %s", rev, git_msg());
    return 0;
}

static int commit_tree(git_commit *c, git_tree **out, char *err, size_t n)
{
    if (git_commit_tree(out, c) < 0) {
        char id[GIT_OID_HEXSZ + 1];
        git_oid_tostr(id, sizeof id, git_commit_id(c));
        return gset(err, n, -EIO, "the tree of %s cannot be read: %s", id, git_msg());
    }
    return 0;
}

/* The first parent's tree, NULL for a root commit. */
static int parent_tree(git_commit *c, git_tree **out, char *err, size_t n)
{
    *out = NULL;
    if (git_commit_parentcount(c) == 0)
        return 0;
    git_commit *p = NULL;
    if (git_commit_parent(&p, c, 0) < 0)
        return gfail(err, n, -EIO, "the parent commit cannot be read");
    int rc = commit_tree(p, out, err, n);
    git_commit_free(p);
    return rc;
}

/* The paths whose content differs between trees a and b (either may be NULL). */
static int changed_paths(evolve_genome *g, git_tree *a, git_tree *b, json_t **out, char *err, size_t n)
{
    git_diff *d = NULL;
    *out = NULL;
    if (git_diff_tree_to_tree(&d, g->repo, a, b, NULL) < 0)
        return gfail(err, n, -EIO, "diff");
    json_t *arr = json_array();
    size_t nd = git_diff_num_deltas(d);
    for (size_t i = 0; i < nd && arr; i++) {
        const git_diff_delta *dl = git_diff_get_delta(d, i);
        const char *p = dl->status == GIT_DELTA_DELETED ? dl->old_file.path : dl->new_file.path;
        json_array_append_new(arr, json_string(p));
    }
    git_diff_free(d);
    if (!arr)
        return gset(err, n, -ENOMEM, "out of memory");
    *out = arr;
    return 0;
}

static int make_sig(const char *author, git_signature **out, char *err, size_t n)
{
    const char *name = is_system_author(author) ? "IPPOC" : author;
    char clean[256];
    oneline(clean, sizeof clean, name);
    for (char *p = clean; *p; p++)
        if (*p == '<' || *p == '>')
            *p = ' ';
    if (git_signature_now(out, clean, GENOME_EMAIL) < 0)
        return gfail(err, n, -EINVAL, "signature");
    return 0;
}

/* Commits tree on top of parent (NULL: a root commit) and moves HEAD. */
static int commit_tree_oid(evolve_genome *g, const git_oid *tree_id, git_commit *parent, const char *msg,
                           const char *author, git_oid *out, char *err, size_t n)
{
    git_tree *tree = NULL;
    git_signature *who = NULL, *ippoc = NULL;
    int rc = 0;
    if (git_tree_lookup(&tree, g->repo, tree_id) < 0)
        return gfail(err, n, -EIO, "the new tree cannot be read");
    if ((rc = make_sig(author, &who, err, n)) < 0 || (rc = make_sig("ippoc", &ippoc, err, n)) < 0)
        goto out;
    const git_commit *parents[1] = {parent};
    if (git_commit_create(out, g->repo, "HEAD", who, ippoc, NULL, msg, tree, parent ? 1 : 0, parents) < 0)
        rc = gfail(err, n, -EIO, "commit");
out:
    git_signature_free(who);
    git_signature_free(ippoc);
    git_tree_free(tree);
    return rc;
}

/* The repository's index becomes tree (what HEAD now holds). */
static int index_to_tree(evolve_genome *g, const git_oid *tree_id, char *err, size_t n)
{
    git_index *idx = NULL;
    git_tree *tree = NULL;
    int rc = 0;
    if (git_repository_index(&idx, g->repo) < 0 || git_tree_lookup(&tree, g->repo, tree_id) < 0 ||
        git_index_read_tree(idx, tree) < 0 || git_index_write(idx) < 0)
        rc = gfail(err, n, -EIO, "updating the index");
    git_tree_free(tree);
    git_index_free(idx);
    return rc;
}

/* ---- the working tree ---- */

/* mkdir -p of the directories of path under the working tree, refusing a
 * component that exists and is not a directory (a symlink included). */
static int make_parents(const char *root, const char *path, char *err, size_t n)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s/%s", root, path) >= (int)sizeof buf)
        return gset(err, n, -ENAMETOOLONG, "'%s': path too long", path);
    char *s = buf + strlen(root) + 1;
    for (char *p = strchr(s, '/'); p; p = strchr(p + 1, '/')) {
        *p = 0;
        struct stat st;
        if (lstat(buf, &st) == 0) {
            if (!S_ISDIR(st.st_mode)) {
                int e = gset(err, n, -ENOTDIR, "'%s' in the working tree is not a directory", s);
                *p = '/';
                return e;
            }
        } else if (errno != ENOENT || (mkdir(buf, 0700) < 0 && errno != EEXIST)) {
            int e = -errno;
            gset(err, n, e, "cannot create '%s': %s", buf, strerror(errno));
            *p = '/';
            return e;
        }
        *p = '/';
    }
    return 0;
}

/* Writes root/path atomically (a temporary file renamed over it). */
static int write_work_file(const char *root, const char *path, const void *data, size_t len, char *err,
                           size_t n)
{
    int rc = make_parents(root, path, err, n);
    if (rc < 0)
        return rc;
    char dst[PATH_MAX], tmp[PATH_MAX + 32];
    snprintf(dst, sizeof dst, "%s/%s", root, path);
    snprintf(tmp, sizeof tmp, "%s.ippoc-tmp.%ld", dst, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return gset(err, n, -errno, "cannot write '%s': %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = gset(err, n, -errno, "cannot write '%s': %s", tmp, strerror(errno));
            break;
        }
        p += w, left -= (size_t)w;
    }
    if (rc == 0 && fsync(fd) < 0)
        rc = gset(err, n, -errno, "cannot sync '%s': %s", tmp, strerror(errno));
    if (close(fd) < 0 && rc == 0)
        rc = gset(err, n, -errno, "cannot write '%s': %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, dst) < 0)
        rc = gset(err, n, -errno, "cannot rename '%s' to '%s': %s", tmp, dst, strerror(errno));
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* The working tree and index become tree; base is what they held (files
 * there and not in tree are removed). */
static int checkout(evolve_genome *g, git_tree *tree, git_tree *base, char *err, size_t n)
{
    git_checkout_options o;
    git_checkout_options_init(&o, GIT_CHECKOUT_OPTIONS_VERSION);
    o.checkout_strategy = GIT_CHECKOUT_FORCE;
    o.baseline = base;
    o.dir_mode = 0700;
    o.file_mode = 0600;
    if (git_checkout_tree(g->repo, (const git_object *)tree, &o) < 0)
        return gfail(err, n, -EIO, "updating the working tree");
    return 0;
}

/* ---- loose objects, checked before libgit2 reads them ----
 * libgit2 1.5 loops forever inflating a truncated loose object (libgit2
 * issue #7342, fixed upstream by PR #7346 after 1.5): every loose object
 * file not seen before (or changed since) is inflated here with zlib, its
 * header parsed and its hash compared to its name, so a corrupt one is
 * -EIO instead of a hung daemon. */

#define LOOSE_MAX (256u << 20)

static int inflate_all(const unsigned char *in, size_t inlen, unsigned char **out, size_t *outlen, const char **why)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK) {
        *why = "zlib cannot start";
        return -1;
    }
    size_t cap = inlen * 4 + 64, len = 0;
    unsigned char *buf = malloc(cap);
    int rc = -1;
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)inlen;
    *why = "truncated (the compressed stream ends early)";
    while (buf) {
        z.next_out = buf + len;
        z.avail_out = (uInt)(cap - len);
        int r = inflate(&z, Z_NO_FLUSH);
        len = cap - z.avail_out;
        if (r == Z_STREAM_END) {
            rc = z.avail_in == 0 ? 0 : -1;
            if (rc)
                *why = "trailing bytes after the compressed stream";
            break;
        }
        if (r != Z_OK && r != Z_BUF_ERROR) {
            *why = "not a valid zlib stream";
            break;
        }
        if (z.avail_out > 0) /* no more input and not at the end: truncated */
            break;
        if (cap >= LOOSE_MAX) {
            *why = "too large";
            break;
        }
        unsigned char *nb = realloc(buf, cap * 2);
        if (!nb)
            break;
        buf = nb, cap *= 2;
    }
    inflateEnd(&z);
    if (rc == 0) {
        *out = buf;
        *outlen = len;
    } else {
        free(buf);
    }
    return rc;
}

static int read_small_file(const char *path, unsigned char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size < 0 || (uint64_t)st.st_size > LOOSE_MAX) {
        close(fd);
        return -EFBIG;
    }
    unsigned char *b = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (b && got < (size_t)st.st_size) {
        ssize_t r = read(fd, b + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!b)
        return -ENOMEM;
    *out = b;
    *len = got;
    return 0;
}

/* NULL when the loose object file is sound, else why not. */
static const char *loose_verify(const char *path, const git_oid *name)
{
    unsigned char *raw = NULL, *obj = NULL;
    size_t rawlen = 0, objlen = 0;
    const char *why = NULL;
    if (read_small_file(path, &raw, &rawlen) < 0)
        return "cannot be read";
    if (inflate_all(raw, rawlen, &obj, &objlen, &why) < 0) {
        free(raw);
        return why;
    }
    free(raw);
    unsigned char *nul = memchr(obj, 0, objlen < 64 ? objlen : 64);
    char type[16];
    unsigned long long size = 0;
    why = "bad object header";
    if (nul && sscanf((char *)obj, "%15s %llu", type, &size) == 2) {
        size_t off = (size_t)(nul - obj) + 1;
        git_object_t t = git_object_string2type(type);
        git_oid id;
        if (t == GIT_OBJECT_INVALID)
            why = "unknown object type";
        else if (size != objlen - off)
            why = "content shorter or longer than its header says";
        else if (git_odb_hash(&id, obj + off, objlen - off, t) < 0 || !git_oid_equal(&id, name))
            why = "content does not match its name (hash)";
        else
            why = NULL;
    }
    free(obj);
    return why;
}

static size_t seen_slot(const evolve_genome *g, const unsigned char *id)
{
    size_t h;
    memcpy(&h, id, sizeof h);
    size_t i = h & (g->cap - 1);
    while (g->seen[i].used && memcmp(g->seen[i].id, id, GIT_OID_RAWSZ))
        i = (i + 1) & (g->cap - 1);
    return i;
}

static void seen_add(evolve_genome *g, const unsigned char *id, int64_t size, int64_t mtime_ns)
{
    if ((g->nseen + 1) * 2 > g->cap) {
        size_t ncap = g->cap ? g->cap * 2 : 1024;
        struct loose_seen *old = g->seen;
        size_t ocap = g->cap;
        struct loose_seen *ns = calloc(ncap, sizeof *ns);
        if (!ns)
            return; /* verified again next time */
        g->seen = ns, g->cap = ncap;
        for (size_t i = 0; i < ocap; i++)
            if (old[i].used)
                g->seen[seen_slot(g, old[i].id)] = old[i];
        free(old);
    }
    size_t i = seen_slot(g, id);
    if (!g->seen[i].used)
        g->nseen++;
    g->seen[i] = (struct loose_seen){.size = size, .mtime_ns = mtime_ns, .used = true};
    memcpy(g->seen[i].id, id, GIT_OID_RAWSZ);
}

static bool seen_has(const evolve_genome *g, const unsigned char *id, int64_t size, int64_t mtime_ns)
{
    if (!g->cap)
        return false;
    const struct loose_seen *e = &g->seen[seen_slot(g, id)];
    return e->used && e->size == size && e->mtime_ns == mtime_ns;
}

static bool is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return s[n] == 0;
}

/* One objects/XX directory. */
static int loose_dir(evolve_genome *g, const char *objdir, const char *xx, bool all, char *err, size_t n)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", objdir, xx);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d))) {
        if (!is_hex(de->d_name, GIT_OID_HEXSZ - 2))
            continue;
        char hex[GIT_OID_HEXSZ + 1], file[PATH_MAX];
        snprintf(hex, sizeof hex, "%s%s", xx, de->d_name);
        snprintf(file, sizeof file, "%s/%s", path, de->d_name);
        git_oid id;
        struct stat st;
        if (git_oid_fromstr(&id, hex) < 0 || lstat(file, &st) < 0)
            continue;
        int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        if (!all && seen_has(g, id.id, st.st_size, mt))
            continue;
        const char *why = S_ISREG(st.st_mode) ? loose_verify(file, &id) : "not a regular file";
        if (why)
            rc = gset(err, n, -EIO, "object store is corrupt: object %s (%s): %s", hex, file, why);
        else
            seen_add(g, id.id, st.st_size, mt);
    }
    closedir(d);
    return rc;
}

/* Every loose object (all: even those verified before). 0 or -EIO. */
static int loose_scan(evolve_genome *g, bool all, char *err, size_t n)
{
    char objdir[PATH_MAX];
    snprintf(objdir, sizeof objdir, "%sobjects", git_repository_path(g->repo));
    DIR *d = opendir(objdir);
    if (!d)
        return gset(err, n, -EIO, "object store '%s' cannot be read: %s", objdir, strerror(errno));
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)))
        if (is_hex(de->d_name, 2))
            rc = loose_dir(g, objdir, de->d_name, all, err, n);
    closedir(d);
    return rc;
}

/* Verifies the loose file of id when there is one (not verified before,
 * or changed since). 0 or -1 with git_error_set_str. */
static int loose_guard_one(evolve_genome *g, const char *objdir, const char *hex)
{
    char file[PATH_MAX];
    snprintf(file, sizeof file, "%s/%.2s/%s", objdir, hex, hex + 2);
    struct stat st;
    git_oid id;
    if (lstat(file, &st) < 0 || git_oid_fromstr(&id, hex) < 0)
        return 0;
    int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    if (seen_has(g, id.id, st.st_size, mt))
        return 0;
    const char *why = S_ISREG(st.st_mode) ? loose_verify(file, &id) : "not a regular file";
    if (why) {
        char msg[PATH_MAX + 128];
        snprintf(msg, sizeof msg, "object %s (%s) is corrupt: %s", hex, file, why);
        git_error_set_str(GIT_ERROR_ODB, msg);
        return -1;
    }
    seen_add(g, id.id, st.st_size, mt);
    return 0;
}

struct loose_guard {
    git_odb_backend b;
    evolve_genome *g;
    char objdir[PATH_MAX];
};

static int guard_read(void **data, size_t *len, git_object_t *type, git_odb_backend *b, const git_oid *id)
{
    (void)data, (void)len, (void)type;
    struct loose_guard *lg = (struct loose_guard *)b;
    char hex[GIT_OID_HEXSZ + 1];
    git_oid_tostr(hex, sizeof hex, id);
    return loose_guard_one(lg->g, lg->objdir, hex) < 0 ? -1 : GIT_PASSTHROUGH;
}

static int guard_read_header(size_t *len, git_object_t *type, git_odb_backend *b, const git_oid *id)
{
    return guard_read(NULL, len, type, b, id);
}

/* Every loose file whose name starts with the prefix. */
static int guard_read_prefix(git_oid *full, void **data, size_t *len, git_object_t *type, git_odb_backend *b,
                             const git_oid *prefix, size_t plen)
{
    (void)full, (void)data, (void)len, (void)type;
    struct loose_guard *lg = (struct loose_guard *)b;
    char hex[GIT_OID_HEXSZ + 1], dir[PATH_MAX];
    git_oid_tostr(hex, sizeof hex, prefix);
    if (plen >= GIT_OID_HEXSZ)
        return loose_guard_one(lg->g, lg->objdir, hex) < 0 ? -1 : GIT_PASSTHROUGH;
    if (plen < 2)
        return GIT_PASSTHROUGH;
    snprintf(dir, sizeof dir, "%s/%.2s", lg->objdir, hex);
    DIR *d = opendir(dir);
    if (!d)
        return GIT_PASSTHROUGH;
    struct dirent *de;
    int rc = GIT_PASSTHROUGH;
    while (rc == GIT_PASSTHROUGH && (de = readdir(d))) {
        char name[GIT_OID_HEXSZ + 1];
        if (!is_hex(de->d_name, GIT_OID_HEXSZ - 2) || strncasecmp(de->d_name, hex + 2, plen - 2))
            continue;
        snprintf(name, sizeof name, "%.2s%s", hex, de->d_name);
        if (loose_guard_one(lg->g, lg->objdir, name) < 0)
            rc = -1;
    }
    closedir(d);
    return rc;
}

/* The guard holds no objects (git_odb_foreach calls every backend's). */
static int guard_foreach(git_odb_backend *b, git_odb_foreach_cb cb, void *payload)
{
    (void)b, (void)cb, (void)payload;
    return 0;
}

static void guard_free(git_odb_backend *b)
{
    free(b);
}

/* Puts the guard in front of g's object store. */
static int loose_guard_add(evolve_genome *g, char *err, size_t n)
{
    git_odb *odb = NULL;
    struct loose_guard *lg = calloc(1, sizeof *lg);
    if (!lg)
        return gset(err, n, -ENOMEM, "out of memory");
    git_odb_init_backend(&lg->b, GIT_ODB_BACKEND_VERSION);
    lg->b.read = guard_read;
    lg->b.read_header = guard_read_header;
    lg->b.read_prefix = guard_read_prefix;
    lg->b.foreach = guard_foreach;
    lg->b.free = guard_free;
    lg->g = g;
    snprintf(lg->objdir, sizeof lg->objdir, "%sobjects", git_repository_path(g->repo));
    if (git_repository_odb(&odb, g->repo) < 0 || git_odb_add_backend(odb, &lg->b, 1000) < 0) {
        free(lg);
        git_odb_free(odb);
        return gfail(err, n, -EIO, "object store");
    }
    git_odb_free(odb);
    return 0;
}

/* ---- one operation: the library held, the repository open ---- */

/* Under g->mu: loads libgit2 if it is not, opens g->repo with the guard in
 * front of its object store. op_end() whatever it returns. */
static int op_begin(evolve_genome *g, char *err, size_t n)
{
    int rc = evolve_git_acquire(err, n);
    if (rc < 0)
        return rc;
    g->held = true;
    if (git_repository_open_ext(&g->repo, g->dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
        g->repo = NULL;
        return gset(err, n, -EIO, "cannot open the repository in '%s': %s", g->dir, git_msg());
    }
    return loose_guard_add(g, err, n);
}

/* Frees the repository, then lets go of the library (it may unload). */
static void op_end(evolve_genome *g)
{
    git_repository_free(g->repo); /* NULL when never opened */
    g->repo = NULL;
    if (g->held)
        evolve_git_release();
    g->held = false;
}

/* ---- open / close ---- */

static bool dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    struct dirent *e;
    bool empty = true;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            empty = false;
            break;
        }
    closedir(d);
    return empty;
}

/* A repository whose HEAD is unborn and that has no reference at all was
 * created and not yet given its first commit: make it (an empty tree). */
static int first_commit(evolve_genome *g, char *err, size_t n)
{
    git_index *idx = NULL;
    git_oid tree, id;
    if (git_index_new(&idx) < 0 || git_index_write_tree_to(&tree, idx, g->repo) < 0) {
        git_index_free(idx);
        return gfail(err, n, -EIO, "the first, empty tree");
    }
    git_index_free(idx);
    evolve_trailer t = {.kind = "import", .author = "ippoc", .reason = "the genome was created"};
    char *msg = make_message(&t, "import", "created");
    if (!msg)
        return gset(err, n, -ENOMEM, "out of memory");
    int rc = commit_tree_oid(g, &tree, NULL, msg, "ippoc", &id, err, n);
    free(msg);
    if (rc == 0)
        rc = index_to_tree(g, &tree, err, n);
    return rc;
}

static int stop_at_first(const git_oid *id, void *payload)
{
    (void)id;
    *(bool *)payload = true;
    return 1;
}

/* Whether the repository holds anything: a reference or an object (an
 * unborn HEAD in a repository that does is damage, not a fresh start). */
static bool has_content(git_repository *repo)
{
    git_reference_iterator *it = NULL;
    git_reference *r = NULL;
    git_odb *odb = NULL;
    if (git_reference_iterator_new(&it, repo) < 0)
        return true;
    bool any = git_reference_next(&r, it) == 0;
    git_reference_free(r);
    git_reference_iterator_free(it);
    if (!any && git_repository_odb(&odb, repo) == 0) {
        if (git_odb_foreach(odb, stop_at_first, &any) < 0 && !any)
            any = true;
        git_odb_free(odb);
    }
    return any;
}

static int open_repo(const char *dir, git_repository **repo, bool *created, char *err, size_t n)
{
    struct stat st;
    *created = false;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return gset(err, n, -ENOTDIR, "'%s' exists and is not a directory", dir);
        int rc = git_repository_open_ext(repo, dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
        if (rc == 0) {
            if (git_repository_is_bare(*repo)) {
                git_repository_free(*repo);
                *repo = NULL;
                return gset(err, n, -EIO, "'%s' is a bare repository (no working tree)", dir);
            }
            return 0;
        }
        char gitdir[PATH_MAX];
        snprintf(gitdir, sizeof gitdir, "%s/.git", dir);
        if (rc != GIT_ENOTFOUND || access(gitdir, F_OK) == 0)
            return gset(err, n, -EIO, "cannot open the repository in '%s': %s", dir, git_msg());
        if (!dir_is_empty(dir))
            return gset(err, n, -EEXIST,
                        "'%s' exists, is not a git repository and is not empty: not using it "
                        "(move it away or point the state dir elsewhere)", dir);
    } else if (errno != ENOENT) {
        return gset(err, n, -errno, "'%s': %s", dir, strerror(errno));
    }
    git_repository_init_options o;
    git_repository_init_options_init(&o, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
    o.flags = GIT_REPOSITORY_INIT_MKPATH;
    o.mode = GIT_REPOSITORY_INIT_SHARED_UMASK;
    o.initial_head = GENOME_BRANCH;
    o.description = "IPPOC's genome: the cell's config, tuned files and tools";
    if (git_repository_init_ext(repo, dir, &o) < 0)
        return gset(err, n, -EIO, "cannot create a repository in '%s': %s", dir, git_msg());
    *created = true;
    return 0;
}

int evolve_genome_open(const char *dir, evolve_genome **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!dir || !*dir)
        return gset(err, errlen, -EINVAL, "no directory given");
    evolve_genome *g = calloc(1, sizeof *g);
    if (!g || !(g->dir = strdup(dir))) {
        free(g);
        return gset(err, errlen, -ENOMEM, "out of memory");
    }
    pthread_mutex_init(&g->mu, NULL);
    evolve_git_open_user();
    bool created = false;
    int rc = evolve_git_acquire(err, errlen);
    g->held = rc == 0;
    if (rc == 0)
        rc = open_repo(dir, &g->repo, &created, err, errlen);
    if (rc == 0)
        rc = loose_guard_add(g, err, errlen);
    if (rc == 0 && git_repository_head_unborn(g->repo) == 1) {
        if (created || !has_content(g->repo))
            rc = first_commit(g, err, errlen);
        /* else: HEAD's branch is gone; open, and check/write say -EIO */
    }
    op_end(g); /* no lock: g is not shared yet */
    if (rc < 0) {
        evolve_genome_close(g);
        return rc;
    }
    *out = g;
    return 0;
}

void evolve_genome_close(evolve_genome *g)
{
    if (!g)
        return;
    pthread_mutex_destroy(&g->mu);
    evolve_git_close_user();
    free(g->seen);
    free(g->dir);
    free(g);
}

const char *evolve_genome_dir(const evolve_genome *g)
{
    return g ? g->dir : "";
}

/* ---- check ---- */

struct odb_walk {
    git_odb *odb;
    char *err;
    size_t n;
    int rc;
};

static int odb_read_one(const git_oid *id, void *payload)
{
    struct odb_walk *w = payload;
    git_odb_object *o = NULL;
    if (git_odb_read(&o, w->odb, id) < 0) {
        char hex[GIT_OID_HEXSZ + 1];
        git_oid_tostr(hex, sizeof hex, id);
        w->rc = gset(w->err, w->n, -EIO, "object store is corrupt: object %s: %s", hex, git_msg());
        return 1;
    }
    git_odb_object_free(o);
    return 0;
}

/* Every object in the store decompresses and matches its name; every
 * commit from HEAD back and every entry of HEAD's tree is there. */
static int check_objects(evolve_genome *g, git_commit *head, char *err, size_t n)
{
    struct odb_walk w = {.err = err, .n = n};
    if (git_repository_odb(&w.odb, g->repo) < 0)
        return gfail(err, n, -EIO, "object store");
    int rc = git_odb_foreach(w.odb, odb_read_one, &w);
    if (w.rc < 0) {
        git_odb_free(w.odb);
        return w.rc;
    }
    if (rc < 0) {
        git_odb_free(w.odb);
        return gfail(err, n, -EIO, "object store cannot be listed");
    }
    git_revwalk *rw = NULL;
    git_oid id;
    rc = 0;
    if (git_revwalk_new(&rw, g->repo) < 0 || git_revwalk_push(rw, git_commit_id(head)) < 0)
        rc = gfail(err, n, -EIO, "history");
    while (rc == 0) {
        int r = git_revwalk_next(&id, rw);
        if (r == GIT_ITEROVER)
            break;
        git_commit *c = NULL;
        if (r < 0 || git_commit_lookup(&c, g->repo, &id) < 0 || !git_odb_exists(w.odb, git_commit_tree_id(c)))
            rc = gfail(err, n, -EIO, "history is incomplete (a commit or its tree is missing)");
        git_commit_free(c);
    }
    git_revwalk_free(rw);
    git_tree *tree = NULL;
    if (rc == 0)
        rc = commit_tree(head, &tree, err, n);
    if (rc == 0) {
        /* every blob and subtree of HEAD */
        git_index *idx = NULL;
        if (git_index_new(&idx) < 0 || git_index_read_tree(idx, tree) < 0)
            rc = gfail(err, n, -EIO, "HEAD's tree cannot be read");
        size_t ne = idx ? git_index_entrycount(idx) : 0;
        for (size_t i = 0; rc == 0 && i < ne; i++) {
            const git_index_entry *e = git_index_get_byindex(idx, i);
            if (!git_odb_exists(w.odb, &e->id))
                rc = gset(err, n, -EIO, "object store is missing the content of '%s'", e->path);
        }
        git_index_free(idx);
    }
    git_tree_free(tree);
    git_odb_free(w.odb);
    return rc;
}

static const char *status_word(unsigned s)
{
    if (s & GIT_STATUS_CONFLICTED)
        return "conflicted";
    if (s & (GIT_STATUS_WT_DELETED | GIT_STATUS_INDEX_DELETED))
        return "deleted";
    if (s & GIT_STATUS_WT_NEW)
        return "untracked";
    if (s & GIT_STATUS_INDEX_NEW)
        return "added";
    if (s & (GIT_STATUS_WT_TYPECHANGE | GIT_STATUS_INDEX_TYPECHANGE))
        return "type changed";
    if (s & (GIT_STATUS_WT_RENAMED | GIT_STATUS_INDEX_RENAMED))
        return "renamed";
    return "modified";
}

static int check_status(evolve_genome *g, char *err, size_t n)
{
    git_status_options o;
    git_status_options_init(&o, GIT_STATUS_OPTIONS_VERSION);
    o.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
    o.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS |
              GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
    git_status_list *sl = NULL;
    if (git_status_list_new(&sl, g->repo, &o) < 0)
        return gfail(err, n, -EIO, "status of the working tree");
    size_t cnt = git_status_list_entrycount(sl);
    int rc = 0;
    if (cnt > 0) {
        rc = gset(err, n, -EUCLEAN, "working tree differs from HEAD:");
        size_t k = err && n ? strlen(err) : 0;
        for (size_t i = 0; i < cnt && err && k + 1 < n; i++) {
            const git_status_entry *e = git_status_byindex(sl, i);
            const git_diff_delta *d = e->index_to_workdir ? e->index_to_workdir : e->head_to_index;
            const char *p = d ? (d->new_file.path ? d->new_file.path : d->old_file.path) : "?";
            int w = snprintf(err + k, n - k, "%s %s (%s)", i ? "," : "", p, status_word(e->status));
            k += w > 0 ? (size_t)w : 0;
        }
    }
    git_status_list_free(sl);
    return rc;
}

int evolve_genome_check(evolve_genome *g, char *err, size_t errlen)
{
    pthread_mutex_lock(&g->mu);
    git_commit *head = NULL;
    int rc = op_begin(g, err, errlen);
    if (rc == 0)
        rc = loose_scan(g, true, err, errlen);
    if (rc == 0)
        rc = head_commit(g, &head, err, errlen);
    if (rc == 0)
        rc = check_objects(g, head, err, errlen);
    if (rc == 0)
        rc = check_status(g, err, errlen);
    git_commit_free(head);
    op_end(g);
    pthread_mutex_unlock(&g->mu);
    return rc;
}

/* ---- write ---- */

static int write_locked(evolve_genome *g, const char *path, const void *data, size_t len, const evolve_trailer *t,
                        git_oid *out, char *err, size_t n)
{
    git_commit *head = NULL;
    git_tree *tree = NULL;
    git_tree_entry *te = NULL;
    git_index *idx = NULL;
    char *msg = NULL;
    git_oid blob, tree_id;
    int rc = head_commit(g, &head, err, n);
    if (rc == 0)
        rc = commit_tree(head, &tree, err, n);
    if (rc < 0)
        goto out;
    if (git_odb_hash(&blob, data, len, GIT_OBJECT_BLOB) < 0) {
        rc = gfail(err, n, -EIO, "hashing the content");
        goto out;
    }
    if ((rc = write_work_file(g->dir, path, data, len, err, n)) < 0)
        goto out;
    if (git_tree_entry_bypath(&te, tree, path) == 0 && git_oid_equal(git_tree_entry_id(te), &blob) &&
        git_tree_entry_filemode(te) == GIT_FILEMODE_BLOB) {
        git_oid_cpy(out, git_commit_id(head));
        rc = 1;
        goto out;
    }
    git_index_entry e = {0};
    e.path = path;
    e.mode = GIT_FILEMODE_BLOB;
    if (git_blob_create_from_buffer(&e.id, g->repo, data, len) < 0) {
        rc = gfail(err, n, -EIO, "storing the content");
        goto out;
    }
    if (git_index_new(&idx) < 0 || git_index_read_tree(idx, tree) < 0 || git_index_add(idx, &e) < 0 ||
        git_index_write_tree_to(&tree_id, idx, g->repo) < 0) {
        rc = gfail(err, n, -EIO, "building the new tree");
        goto out;
    }
    char fallback[1100];
    snprintf(fallback, sizeof fallback, "update %s", path);
    if (!(msg = make_message(t, "config", fallback))) {
        rc = gset(err, n, -ENOMEM, "out of memory");
        goto out;
    }
    rc = commit_tree_oid(g, &tree_id, head, msg, t ? t->author : NULL, out, err, n);
    if (rc == 0)
        rc = index_to_tree(g, &tree_id, err, n);
out:
    free(msg);
    git_index_free(idx);
    git_tree_entry_free(te);
    git_tree_free(tree);
    git_commit_free(head);
    return rc;
}

int evolve_genome_write(evolve_genome *g, const char *path, const void *data, size_t len,
                        const evolve_trailer *t, char oid[41], char *err, size_t errlen)
{
    oid[0] = 0;
    int rc = path_check(path, err, errlen);
    if (rc < 0)
        return rc;
    if (!data && len)
        return gset(err, errlen, -EINVAL, "'%s': no data", path);
    git_oid id;
    pthread_mutex_lock(&g->mu);
    rc = op_begin(g, err, errlen);
    if (rc == 0)
        rc = write_locked(g, path, data ? data : "", len, t, &id, err, errlen);
    if (rc >= 0)
        git_oid_tostr(oid, 41, &id);
    op_end(g);
    pthread_mutex_unlock(&g->mu);
    return rc;
}

/* ---- read ---- */

static int read_locked(evolve_genome *g, const char *rev, const char *path, char **data, size_t *len, char *err,
                       size_t n)
{
    git_commit *c = NULL;
    git_tree *tree = NULL;
    git_tree_entry *te = NULL;
    git_blob *b = NULL;
    int rc = rev_commit(g, rev, &c, err, n);
    if (rc == 0)
        rc = commit_tree(c, &tree, err, n);
    if (rc < 0)
        goto out;
    int r = git_tree_entry_bypath(&te, tree, path);
    if (r == GIT_ENOTFOUND) {
        rc = gset(err, n, -ENOENT, "'%s' is not in %s", path, rev ? rev : "HEAD");
        goto out;
    }
    if (r < 0) {
        rc = gset(err, n, -EIO, "'%s' at %s: %s", path, rev ? rev : "HEAD", git_msg());
        goto out;
    }
    if (git_tree_entry_type(te) != GIT_OBJECT_BLOB) {
        rc = gset(err, n, -EISDIR, "'%s' is a directory in %s", path, rev ? rev : "HEAD");
        goto out;
    }
    if (git_blob_lookup(&b, g->repo, git_tree_entry_id(te)) < 0) {
        rc = gset(err, n, -EIO, "the content of '%s' at %s cannot be read: %s", path, rev ? rev : "HEAD",
                  git_msg());
        goto out;
    }
    size_t sz = (size_t)git_blob_rawsize(b);
    char *buf = malloc(sz + 1);
    if (!buf) {
        rc = gset(err, n, -ENOMEM, "out of memory");
        goto out;
    }
    memcpy(buf, git_blob_rawcontent(b), sz);
    buf[sz] = 0;
    *data = buf;
    *len = sz;
out:
    git_blob_free(b);
    git_tree_entry_free(te);
    git_tree_free(tree);
    git_commit_free(c);
    return rc;
}

int evolve_genome_read(evolve_genome *g, const char *rev, const char *path, char **data, size_t *len,
                       char *err, size_t errlen)
{
    *data = NULL;
    *len = 0;
    int rc = path_check(path, err, errlen);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&g->mu);
    rc = op_begin(g, err, errlen);
    if (rc == 0)
        rc = read_locked(g, rev, path, data, len, err, errlen);
    op_end(g);
    pthread_mutex_unlock(&g->mu);
    return rc;
}

/* ---- history ---- */

static json_t *trailer_or_null(const git_message_trailer_array *a, const char *key)
{
    for (size_t i = 0; i < a->count; i++)
        if (!strcasecmp(a->trailers[i].key, key))
            return json_string(a->trailers[i].value);
    return json_null();
}

static bool touches(json_t *files, const char *path)
{
    size_t i, l = strlen(path);
    json_t *f;
    json_array_foreach(files, i, f) {
        const char *s = json_string_value(f);
        if (s && !strncmp(s, path, l) && (s[l] == 0 || s[l] == '/' || path[l - 1] == '/'))
            return true;
    }
    return false;
}

static json_t *commit_json(git_commit *c, json_t *files)
{
    char id[GIT_OID_HEXSZ + 1];
    git_oid_tostr(id, sizeof id, git_commit_id(c));
    git_message_trailer_array a = {0};
    git_message_trailers(&a, git_commit_message(c));
    const git_signature *au = git_commit_author(c);
    json_t *author = trailer_or_null(&a, "Ippoc-Author");
    if (json_is_null(author)) {
        json_decref(author);
        author = json_string(au && au->name ? au->name : "");
    }
    const char *summary = git_commit_summary(c);
    json_t *o = json_pack("{ss ss# sI so so so so ss so}", "id", id, "short", id, 8, "time",
                          (json_int_t)git_commit_time(c), "author", author, "kind", trailer_or_null(&a, "Ippoc-Kind"),
                          "reason", trailer_or_null(&a, "Ippoc-Reason"), "fitness",
                          trailer_or_null(&a, "Ippoc-Fitness"), "summary", summary ? summary : "", "files", files);
    git_message_trailer_array_free(&a);
    return o;
}

static json_t *history_locked(evolve_genome *g, const char *path, int limit, char *err, size_t n)
{
    git_commit *head = NULL;
    if (head_commit(g, &head, err, n) < 0)
        return NULL;
    git_revwalk *rw = NULL;
    json_t *out = json_array();
    if (git_revwalk_new(&rw, g->repo) < 0 || git_revwalk_sorting(rw, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME) < 0 ||
        git_revwalk_push(rw, git_commit_id(head)) < 0) {
        gfail(err, n, -EIO, "history");
        json_decref(out);
        out = NULL;
    }
    git_oid id;
    while (out && (int)json_array_size(out) < limit) {
        int r = git_revwalk_next(&id, rw);
        if (r == GIT_ITEROVER)
            break;
        git_commit *c = NULL;
        git_tree *t = NULL, *pt = NULL;
        json_t *files = NULL;
        int rc = r < 0 || git_commit_lookup(&c, g->repo, &id) < 0 ? gfail(err, n, -EIO, "history") : 0;
        if (rc == 0)
            rc = commit_tree(c, &t, err, n);
        if (rc == 0)
            rc = parent_tree(c, &pt, err, n);
        if (rc == 0)
            rc = changed_paths(g, pt, t, &files, err, n);
        if (rc == 0 && (!path || touches(files, path)))
            json_array_append_new(out, commit_json(c, files));
        else
            json_decref(files);
        git_tree_free(t);
        git_tree_free(pt);
        git_commit_free(c);
        if (rc < 0) {
            json_decref(out);
            out = NULL;
        }
    }
    git_revwalk_free(rw);
    git_commit_free(head);
    return out;
}

json_t *evolve_genome_history(evolve_genome *g, const char *path, int limit, char *err, size_t errlen)
{
    if (path && *path && path_check(path, err, errlen) < 0)
        return NULL;
    if (path && !*path)
        path = NULL;
    if (limit <= 0)
        limit = HISTORY_DEFAULT;
    pthread_mutex_lock(&g->mu);
    json_t *h = op_begin(g, err, errlen) == 0 ? history_locked(g, path, limit, err, errlen) : NULL;
    op_end(g);
    pthread_mutex_unlock(&g->mu);
    return h;
}

/* ---- diff ---- */

static int diff_trees(evolve_genome *g, git_tree *a, git_tree *b, char **patch, char *err, size_t n)
{
    git_diff *d = NULL;
    git_buf buf = GIT_BUF_INIT;
    int rc = 0;
    if (git_diff_tree_to_tree(&d, g->repo, a, b, NULL) < 0 || git_diff_to_buf(&buf, d, GIT_DIFF_FORMAT_PATCH) < 0)
        rc = gfail(err, n, -EIO, "diff");
    else if (!(*patch = strndup(buf.ptr ? buf.ptr : "", buf.size)))
        rc = gset(err, n, -ENOMEM, "out of memory");
    git_buf_dispose(&buf);
    git_diff_free(d);
    return rc;
}

static int diff_locked(evolve_genome *g, const char *rev, char **patch, char *err, size_t n)
{
    git_commit *a = NULL, *b = NULL;
    git_tree *ta = NULL, *tb = NULL;
    int rc;
    const char *dots = strstr(rev, "..");
    if (dots) {
        char left[256];
        size_t l = (size_t)(dots - rev);
        if (l >= sizeof left)
            return gset(err, n, -EINVAL, "revision '%s' is too long", rev);
        memcpy(left, rev, l);
        left[l] = 0;
        rc = rev_commit(g, l ? left : NULL, &a, err, n);
        if (rc == 0)
            rc = rev_commit(g, dots[2] ? dots + 2 : NULL, &b, err, n);
        if (rc == 0)
            rc = commit_tree(a, &ta, err, n);
    } else {
        rc = rev_commit(g, rev, &b, err, n);
        if (rc == 0)
            rc = parent_tree(b, &ta, err, n);
    }
    if (rc == 0)
        rc = commit_tree(b, &tb, err, n);
    if (rc == 0)
        rc = diff_trees(g, ta, tb, patch, err, n);
    git_tree_free(ta);
    git_tree_free(tb);
    git_commit_free(a);
    git_commit_free(b);
    return rc;
}

int evolve_genome_diff(evolve_genome *g, const char *rev, char **patch, char *err, size_t errlen)
{
    *patch = NULL;
    if (!rev || !*rev)
        rev = "HEAD";
    pthread_mutex_lock(&g->mu);
    int rc = op_begin(g, err, errlen);
    if (rc == 0)
        rc = diff_locked(g, rev, patch, err, errlen);
    op_end(g);
    pthread_mutex_unlock(&g->mu);
    return rc;
}

/* ---- rollback and revert ---- */

/* Commits new_tree on HEAD (unless equal: 1), syncs the working tree and
 * index, and reports the changed paths. */
static int commit_change(evolve_genome *g, git_commit *head, const git_oid *new_tree, const char *msg,
                         const evolve_trailer *t, git_oid *out, json_t **changed, char *err, size_t n)
{
    git_tree *old = NULL, *nt = NULL;
    json_t *paths = NULL;
    int rc = commit_tree(head, &old, err, n);
    if (rc < 0)
        return rc;
    if (git_oid_equal(git_tree_id(old), new_tree)) {
        git_oid_cpy(out, git_commit_id(head));
        git_tree_free(old);
        if (changed)
            *changed = json_array();
        return 1;
    }
    if (git_tree_lookup(&nt, g->repo, new_tree) < 0)
        rc = gfail(err, n, -EIO, "the new tree cannot be read");
    if (rc == 0)
        rc = changed_paths(g, old, nt, &paths, err, n);
    if (rc == 0)
        rc = commit_tree_oid(g, new_tree, head, msg, t ? t->author : NULL, out, err, n);
    if (rc == 0)
        rc = checkout(g, nt, old, err, n);
    if (rc == 0 && changed) {
        *changed = paths;
        paths = NULL;
    }
    json_decref(paths);
    git_tree_free(nt);
    git_tree_free(old);
    return rc;
}

static int rollback_locked(evolve_genome *g, const char *rev, const evolve_trailer *t, git_oid *out,
                           json_t **changed, char *err, size_t n)
{
    git_commit *head = NULL, *target = NULL;
    char *msg = NULL;
    int rc = head_commit(g, &head, err, n);
    if (rc == 0)
        rc = rev_commit(g, rev, &target, err, n);
    if (rc == 0) {
        char id[GIT_OID_HEXSZ + 1], fallback[160];
        git_oid_tostr(id, 9, git_commit_id(target));
        snprintf(fallback, sizeof fallback, "roll back to %s", id);
        if (!(msg = make_message(t, "rollback", fallback)))
            rc = gset(err, n, -ENOMEM, "out of memory");
    }
    if (rc == 0)
        rc = commit_change(g, head, git_commit_tree_id(target), msg, t, out, changed, err, n);
    free(msg);
    git_commit_free(target);
    git_commit_free(head);
    return rc;
}

int evolve_genome_rollback(evolve_genome *g, const char *rev, const evolve_trailer *t, char oid[41],
                           json_t **changed, char *err, size_t errlen)
{
    oid[0] = 0;
    if (changed)
        *changed = NULL;
    if (!rev || !*rev)
        return gset(err, errlen, -EINVAL, "rollback: no revision given");
    git_oid id;
    pthread_mutex_lock(&g->mu);
    int rc = op_begin(g, err, errlen);
    if (rc == 0)
        rc = rollback_locked(g, rev, t, &id, changed, err, errlen);
    if (rc >= 0)
        git_oid_tostr(oid, 41, &id);
    op_end(g);
    pthread_mutex_unlock(&g->mu);
    return rc;
}

/* The paths in conflict, as "a, b" in buf. */
static void conflict_list(git_index *idx, char *buf, size_t n)
{
    git_index_conflict_iterator *it = NULL;
    const git_index_entry *anc, *ours, *theirs;
    size_t k = 0;
    buf[0] = 0;
    if (git_index_conflict_iterator_new(&it, idx) < 0)
        return;
    while (k + 1 < n && git_index_conflict_next(&anc, &ours, &theirs, it) == 0) {
        const git_index_entry *e = ours ? ours : theirs ? theirs : anc;
        int w = snprintf(buf + k, n - k, "%s%s", k ? ", " : "", e ? e->path : "?");
        k += w > 0 ? (size_t)w : 0;
    }
    git_index_conflict_iterator_free(it);
}

static int revert_locked(evolve_genome *g, const char *rev, const evolve_trailer *t, git_oid *out,
                         json_t **changed, char *err, size_t n)
{
    git_commit *head = NULL, *target = NULL;
    git_index *idx = NULL;
    char *msg = NULL;
    git_oid tree;
    int rc = head_commit(g, &head, err, n);
    if (rc == 0)
        rc = rev_commit(g, rev, &target, err, n);
    if (rc < 0)
        goto out;
    char id[GIT_OID_HEXSZ + 1];
    git_oid_tostr(id, 9, git_commit_id(target));
    if (git_commit_parentcount(target) == 0) {
        rc = gset(err, n, -EINVAL, "%s is the genome's first commit: nothing to revert (roll back instead)", id);
        goto out;
    }
    git_merge_options mo;
    git_merge_options_init(&mo, GIT_MERGE_OPTIONS_VERSION);
    if (git_revert_commit(&idx, g->repo, target, head, git_commit_parentcount(target) > 1 ? 1 : 0, &mo) < 0) {
        rc = gset(err, n, -EIO, "revert of %s: %s", id, git_msg());
        goto out;
    }
    if (git_index_has_conflicts(idx)) {
        char files[512];
        conflict_list(idx, files, sizeof files);
        rc = gset(err, n, -EEXIST, "revert of %s conflicts with later changes to: %s", id, files);
        goto out;
    }
    if (git_index_write_tree_to(&tree, idx, g->repo) < 0) {
        rc = gfail(err, n, -EIO, "writing the reverted tree");
        goto out;
    }
    char fallback[200];
    const char *sum = git_commit_summary(target);
    snprintf(fallback, sizeof fallback, "revert %s (%s)", id, sum ? sum : "");
    if (!(msg = make_message(t, "revert", fallback))) {
        rc = gset(err, n, -ENOMEM, "out of memory");
        goto out;
    }
    rc = commit_change(g, head, &tree, msg, t, out, changed, err, n);
out:
    free(msg);
    git_index_free(idx);
    git_commit_free(target);
    git_commit_free(head);
    return rc;
}

int evolve_genome_revert(evolve_genome *g, const char *rev, const evolve_trailer *t, char oid[41],
                         json_t **changed, char *err, size_t errlen)
{
    oid[0] = 0;
    if (changed)
        *changed = NULL;
    if (!rev || !*rev)
        return gset(err, errlen, -EINVAL, "revert: no revision given");
    git_oid id;
    pthread_mutex_lock(&g->mu);
    int rc = op_begin(g, err, errlen);
    if (rc == 0)
        rc = revert_locked(g, rev, t, &id, changed, err, errlen);
    if (rc >= 0)
        git_oid_tostr(oid, 41, &id);
    op_end(g);
    pthread_mutex_unlock(&g->mu);
    return rc;
}

/* ---- resolve ---- */

int evolve_genome_resolve(evolve_genome *g, const char *rev, char oid[41], char *err, size_t errlen)
{
    oid[0] = 0;
    if (!rev || !*rev)
        return gset(err, errlen, -EINVAL, "no revision given");
    git_commit *c = NULL;
    pthread_mutex_lock(&g->mu);
    int rc = op_begin(g, err, errlen);
    if (rc == 0)
        rc = rev_commit(g, rev, &c, err, errlen);
    if (rc == 0)
        git_oid_tostr(oid, 41, git_commit_id(c));
    git_commit_free(c);
    op_end(g);
    pthread_mutex_unlock(&g->mu);
    return rc;
}

bool evolve_genome_lib_loaded(void)
{
    return evolve_git_loaded();
}
