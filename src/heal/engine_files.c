/* engine_files.c: the files a service depends on ([service.X] config_path:
 * config, environment file, credentials, data dir, resolv.conf).
 *
 * Known-good copies: once the service has been healthy (running, every
 * probe passing) for its healthy_after (10 s by default), each of its paths
 * is copied to <state_dir>/known-good/<service>/<name>.data (content of a
 * regular file up to 1 MiB) and <name>.json (path, type, mode, uid, gid,
 * size, sha256), each written to a temp file, fsync'd and renamed, on the
 * thread pool. A changed path is copied again only after a healthy period
 * of a run of the service that began after the change (a change a running
 * service has not loaded yet is not trusted). Copies survive a restart of
 * ippocd (read back at the first tick).
 *
 * Changes: each tick the paths are stat'ed (mtime, size, mode, uid, gid,
 * inode); a differing stat is looked at (read and hashed, up to 1 MiB) and
 * when its mode, owner, size or content changed, one file.changed event
 * {service, path, was, now (null when deleted), diff (at most 10 "-old" /
 * "+new" lines of a small text file), known_good} is recorded. Directories
 * are compared by inode, mode and owner only (their mtime moves with every
 * file written in them).
 *
 * restore PATH (engine_act.c runs it on the pool): the copy's content goes
 * to a temp file in PATH's directory (the target's, when PATH is a symlink),
 * gets mode/uid/gid, is fsync'd and renamed over PATH; a directory gets its
 * mode/uid/gid back (created when missing). */
#include "heal/engine_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_MAX (1024 * 1024) /* content kept for files up to this size */
#define TEXT_MAX (64 * 1024)   /* small text files: kept in memory for diffs */
#define DIFF_LINES 10

/* ---- metadata -------------------------------------------------------------------------- */

static void meta_of_stat(const struct stat *st, eng_fmeta *m)
{
    memset(m, 0, sizeof *m);
    m->exists = true;
    m->dir = S_ISDIR(st->st_mode);
    m->mode = st->st_mode & 07777;
    m->uid = st->st_uid;
    m->gid = st->st_gid;
    m->size = m->dir ? 0 : (uint64_t)st->st_size;
}

static void sha_hex(const unsigned char *p, size_t n, char out[65])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, p, n);
    sodium_bin2hex(out, 65, h, sizeof h);
}

/* Reads a regular file of at most COPY_MAX bytes whole: 0 and *buf (malloc'd,
 * NUL-terminated) with its stat, 1 when it is larger (stat only), -errno. */
static int read_small(const char *path, char **buf, size_t *len, struct stat *st)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    if (fstat(fd, st)) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    if (!S_ISREG(st->st_mode) || st->st_size > COPY_MAX) {
        close(fd);
        return 1;
    }
    char *b = malloc((size_t)st->st_size + 1);
    size_t n = 0;
    while (b && n < (size_t)st->st_size) {
        ssize_t r = read(fd, b + n, (size_t)st->st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (!b)
        return -ENOMEM;
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}

/* The metadata (and, for a small regular file, content and sha256) of path
 * now. -ENOENT when it does not exist. *content: malloc'd when wanted and
 * the file is small. */
static int look(const char *path, eng_fmeta *m, char **content, size_t *clen)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    if (content)
        *content = NULL;
    if (stat(path, &st))
        return -errno;
    meta_of_stat(&st, m);
    if (m->dir || !S_ISREG(st.st_mode))
        return 0;
    int rc = read_small(path, &buf, &len, &st);
    if (rc < 0)
        return rc;
    meta_of_stat(&st, m);
    if (rc == 0) {
        sha_hex((const unsigned char *)buf, len, m->sha256);
        m->size = len;
    }
    if (content && rc == 0)
        *content = buf, *clen = len;
    else
        free(buf);
    return 0;
}

static bool meta_same(const eng_fmeta *a, const eng_fmeta *b)
{
    return a->exists == b->exists && a->dir == b->dir && a->mode == b->mode && a->uid == b->uid &&
           a->gid == b->gid && a->size == b->size && !strcmp(a->sha256, b->sha256);
}

static json_t *meta_json(const eng_fmeta *m)
{
    if (!m->exists)
        return json_null();
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", m->mode);
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I}", "type", m->dir ? "directory" : "file", "mode", mode, "uid",
                          (json_int_t)m->uid, "gid", (json_int_t)m->gid, "size", (json_int_t)m->size);
    if (o && m->sha256[0])
        json_object_set_new(o, "sha256", json_string(m->sha256));
    return o ? o : json_null();
}

static int meta_parse(json_t *o, eng_fmeta *m)
{
    const char *type = json_string_value(json_object_get(o, "type"));
    const char *mode = json_string_value(json_object_get(o, "mode"));
    const char *sha = json_string_value(json_object_get(o, "sha256"));
    if (!type || !mode)
        return -EINVAL;
    memset(m, 0, sizeof *m);
    m->exists = true;
    m->dir = !strcmp(type, "directory");
    m->mode = (uint32_t)strtoul(mode, NULL, 8) & 07777;
    m->uid = (uint32_t)json_integer_value(json_object_get(o, "uid"));
    m->gid = (uint32_t)json_integer_value(json_object_get(o, "gid"));
    m->size = (uint64_t)json_integer_value(json_object_get(o, "size"));
    if (sha && strlen(sha) == 64)
        memcpy(m->sha256, sha, 65);
    return 0;
}

/* ---- the known-good store -------------------------------------------------------------- */

/* <state_dir>/known-good/<service>/<name>: name is the path with '%' and '/'
 * written %25 and %2F (the sha256 of the path when that is too long). */
static void copy_base(const char *state_dir, const char *service, const char *path, char *out, size_t n)
{
    char name[256];
    size_t k = 0;
    bool fits = true;
    for (const char *c = path; *c && fits; c++) {
        if (*c == '/' || *c == '%') {
            fits = k + 3 < sizeof name - 8;
            if (fits)
                k += (size_t)snprintf(name + k, sizeof name - k, "%%%02X", (unsigned char)*c);
        } else {
            fits = k + 1 < sizeof name - 8;
            if (fits)
                name[k++] = *c;
        }
    }
    name[k] = 0;
    if (!fits)
        sha_hex((const unsigned char *)path, strlen(path), name);
    /* a service named "." or ".." stays inside known-good/ */
    snprintf(out, n, "%s/known-good/%s%s/%s", state_dir, service[0] == '.' ? "%2E" : "", service + (service[0] == '.'),
             name);
}

static int fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return 0;
    if (slash == dir)
        slash[1] = 0;
    else
        *slash = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) ? -errno : 0;
    close(fd);
    return rc;
}

/* Writes data to a temp file next to path (mode, and owner when own >= 0),
 * fsync'd, then renamed over path. */
static int write_atomic(const char *path, const char *data, size_t len, mode_t mode, bool chown_it, uid_t uid,
                        gid_t gid, char *msg, size_t n)
{
    char tmp[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int w = snprintf(tmp, sizeof tmp, "%.*s/.%s.ippoc-XXXXXX", (int)(slash ? slash - path : 0), path,
                     slash ? slash + 1 : path);
    if (w < 0 || (size_t)w >= sizeof tmp) {
        snprintf(msg, n, "path too long");
        return -ENAMETOOLONG;
    }
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        snprintf(msg, n, "cannot create a temp file next to %s: %s", path, strerror(-rc));
        return rc;
    }
    int rc = 0;
    for (size_t off = 0; off < len && !rc;) {
        ssize_t r = write(fd, data + off, len - off);
        if (r < 0 && errno != EINTR)
            rc = -errno;
        else if (r > 0)
            off += (size_t)r;
    }
    if (!rc && fchmod(fd, mode))
        rc = -errno;
    if (!rc && chown_it && fchown(fd, uid, gid)) {
        struct stat st;
        rc = -errno; /* not root: fine when it is ours already */
        if (!fstat(fd, &st) && st.st_uid == uid && st.st_gid == gid)
            rc = 0;
    }
    if (!rc && fsync(fd))
        rc = -errno;
    if (close(fd) && !rc)
        rc = -errno;
    if (!rc && rename(tmp, path))
        rc = -errno;
    if (rc) {
        unlink(tmp);
        snprintf(msg, n, "cannot write %s: %s", path, strerror(-rc));
        return rc;
    }
    fsync_dir_of(path);
    return 0;
}

typedef struct snap_job {
    uv_work_t w;
    heal_engine *e;
    char service[HEAL_NAME_MAX];
    char path[HEAL_ARG_MAX];
    eng_fmeta m;
    int64_t taken_ms;
    int rc;
    char msg[300];
} snap_job;

/* Thread pool: copies path (content up to 1 MiB) and its metadata. */
static void snap_work(uv_work_t *w)
{
    snap_job *j = w->data;
    char base[PATH_MAX], p[PATH_MAX + 8], dir[PATH_MAX + 64];
    copy_base(j->e->state_dir, j->service, j->path, base, sizeof base);
    snprintf(dir, sizeof dir, "%s", base);
    *strrchr(dir, '/') = 0;
    if ((j->rc = core_mkdir_p(dir, 0700))) {
        snprintf(j->msg, sizeof j->msg, "cannot create %s: %s", dir, strerror(-j->rc));
        return;
    }
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    if (stat(j->path, &st)) {
        j->rc = -errno;
        snprintf(j->msg, sizeof j->msg, "%s: %s", j->path, strerror(errno));
        return;
    }
    meta_of_stat(&st, &j->m);
    if (S_ISREG(st.st_mode)) {
        j->rc = read_small(j->path, &buf, &len, &st);
        if (j->rc < 0) {
            snprintf(j->msg, sizeof j->msg, "cannot read %s: %s", j->path, strerror(-j->rc));
            return;
        }
        meta_of_stat(&st, &j->m);
        if (j->rc == 0) {
            sha_hex((const unsigned char *)buf, len, j->m.sha256);
            j->m.size = len;
            snprintf(p, sizeof p, "%s.data", base);
            j->rc = write_atomic(p, buf, len, 0600, false, 0, 0, j->msg, sizeof j->msg);
        } else {
            j->rc = 0; /* larger than 1 MiB: the metadata alone */
        }
        free(buf);
        if (j->rc)
            return;
    }
    j->taken_ms = core_now_ms();
    json_t *o = meta_json(&j->m);
    json_object_set_new(o, "path", json_string(j->path));
    json_object_set_new(o, "content", json_boolean(j->m.sha256[0] != 0));
    json_object_set_new(o, "taken_ms", json_integer(j->taken_ms));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    snprintf(p, sizeof p, "%s.json", base);
    j->rc = text ? write_atomic(p, text, strlen(text), 0600, false, 0, 0, j->msg, sizeof j->msg) : -ENOMEM;
    free(text);
}

static eng_file *file_find(heal_engine *e, const char *service, const char *path, eng_svc **sp)
{
    eng_svc *s = eng_find_svc(e, service);
    for (int i = 0; s && i < s->nfiles; i++)
        if (!strcmp(s->files[i].path, path)) {
            if (sp)
                *sp = s;
            return &s->files[i];
        }
    return NULL;
}

static void snap_after(uv_work_t *w, int status)
{
    snap_job *j = w->data;
    heal_engine *e = j->e;
    eng_file *f = e->freed ? NULL : file_find(e, j->service, j->path, NULL);
    if (f)
        f->snapping = false;
    if (f && (status || j->rc)) {
        log_warn("heal: %s: known-good copy of %s not taken: %s", j->service, j->path,
                 status ? "cancelled" : j->msg);
        f->snap_failed_mono = core_mono_ms();
    } else if (f) {
        f->good = j->m;
        f->has_good = true;
        f->good_ms = j->taken_ms;
        f->snap_failed_mono = 0;
        log_info("heal: %s: known-good copy of %s taken", j->service, j->path);
    }
    free(j);
    eng_job_done(e);
}

static void snap_start(heal_engine *e, eng_svc *s, eng_file *f)
{
    snap_job *j = calloc(1, sizeof *j);
    if (!j)
        return;
    j->e = e;
    snprintf(j->service, sizeof j->service, "%s", s->cfg.sc.name);
    snprintf(j->path, sizeof j->path, "%s", f->path);
    j->w.data = j;
    e->jobs++;
    f->snapping = true;
    if (uv_queue_work(e->loop, &j->w, snap_work, snap_after)) {
        f->snapping = false;
        free(j);
        e->jobs--;
    }
}

/* The copy's metadata written earlier (an ippocd restart keeps them). */
static int load_meta(const char *base, eng_fmeta *m, int64_t *taken)
{
    char p[PATH_MAX + 8];
    snprintf(p, sizeof p, "%s.json", base);
    json_t *o = json_load_file(p, 0, NULL);
    int rc = o ? meta_parse(o, m) : -ENOENT;
    *taken = o ? json_integer_value(json_object_get(o, "taken_ms")) : 0;
    json_decref(o);
    return rc;
}

/* ---- change detection ------------------------------------------------------------------ */

static void sig_of(const char *path, eng_fsig *g)
{
    struct stat st;
    memset(g, 0, sizeof *g);
    if (stat(path, &st))
        return;
    g->exists = true;
    g->dir = S_ISDIR(st.st_mode);
    g->ino = st.st_ino;
    g->dev = st.st_dev;
    g->mode = st.st_mode;
    g->uid = st.st_uid;
    g->gid = st.st_gid;
    if (!g->dir) { /* a directory's size and mtime move with its entries */
        g->size = st.st_size;
        g->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    }
}

static bool sig_same(const eng_fsig *a, const eng_fsig *b)
{
    return a->exists == b->exists && a->dir == b->dir && a->ino == b->ino && a->dev == b->dev && a->mode == b->mode &&
           a->uid == b->uid && a->gid == b->gid && a->size == b->size && a->mtime_ns == b->mtime_ns;
}

static bool is_text(const char *p, size_t n)
{
    return n <= TEXT_MAX && !memchr(p, 0, n);
}

/* Lines of a text: pointers into it and lengths (without '\n'). */
typedef struct lines {
    const char **at;
    size_t *len;
    size_t n;
} lines;

static int split_lines(const char *p, size_t n, lines *out)
{
    size_t cap = 1;
    for (size_t i = 0; i < n; i++)
        cap += p[i] == '\n';
    out->at = malloc(cap * sizeof *out->at);
    out->len = malloc(cap * sizeof *out->len);
    out->n = 0;
    if (!out->at || !out->len)
        return -ENOMEM;
    for (size_t i = 0; i < n;) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t l = nl ? (size_t)(nl - (p + i)) : n - i;
        out->at[out->n] = p + i;
        out->len[out->n++] = l;
        i += l + 1;
    }
    return 0;
}

static bool line_eq(const lines *a, size_t i, const lines *b, size_t k)
{
    return a->len[i] == b->len[k] && !memcmp(a->at[i], b->at[k], a->len[i]);
}

static void diff_add(json_t *arr, char sign, const char *p, size_t len)
{
    char buf[204];
    buf[0] = sign;
    size_t l = len > 200 ? 200 : len;
    memcpy(buf + 1, p, l);
    buf[l + 1] = 0;
    json_t *s = json_string(buf);
    if (!s) { /* not UTF-8: the bytes as Latin-1 would mislead; say so */
        snprintf(buf + 1, sizeof buf - 1, "(line of %zu bytes, not UTF-8)", len);
        s = json_string(buf);
    }
    json_array_append_new(arr, s);
}

/* The lines that differ between the common head and tail: "-old" then
 * "+new", at most DIFF_LINES in all. */
static json_t *diff_json(const char *a, size_t an, const char *b, size_t bn)
{
    json_t *arr = json_array();
    lines la = {0}, lb = {0};
    if (arr && !split_lines(a, an, &la) && !split_lines(b, bn, &lb)) {
        size_t head = 0, tail = 0;
        while (head < la.n && head < lb.n && line_eq(&la, head, &lb, head))
            head++;
        while (tail < la.n - head && tail < lb.n - head && line_eq(&la, la.n - 1 - tail, &lb, lb.n - 1 - tail))
            tail++;
        int left = DIFF_LINES;
        for (size_t i = head; i < la.n - tail && left > 0; i++, left--)
            diff_add(arr, '-', la.at[i], la.len[i]);
        for (size_t i = head; i < lb.n - tail && left > 0; i++, left--)
            diff_add(arr, '+', lb.at[i], lb.len[i]);
    }
    free(la.at), free(la.len), free(lb.at), free(lb.len);
    return arr ? arr : json_array();
}

/* The path differs from what was seen last: look at it; when its mode,
 * owner, size or content changed, one file.changed event. */
static void file_changed(heal_engine *e, eng_svc *s, eng_file *f, const eng_fsig *g)
{
    eng_fmeta now = {0};
    char *text = NULL;
    size_t tlen = 0;
    if (g->exists && look(f->path, &now, &text, &tlen) < 0)
        memset(&now, 0, sizeof now); /* gone meanwhile, or unreadable: as gone */
    f->sig = *g;
    if (meta_same(&now, &f->seen)) {
        free(text);
        return;
    }
    json_t *diff = f->text && text && is_text(text, tlen) ? diff_json(f->text, f->textlen, text, tlen) : json_array();
    json_t *p = json_pack("{s:s, s:s, s:o, s:o, s:o, s:b}", "service", s->cfg.sc.name, "path", f->path, "was",
                          meta_json(&f->seen), "now", meta_json(&now), "diff", diff, "known_good",
                          f->has_good && meta_same(&now, &f->good));
    eng_event(e, "file.changed", "warning", s->cfg.sc.name, p);
    log_info("heal: %s: %s changed%s", s->cfg.sc.name, f->path, now.exists ? "" : " (deleted)");
    f->seen = now;
    f->changed_mono = core_mono_ms();
    free(f->text);
    f->text = NULL;
    if (text && is_text(text, tlen)) {
        f->text = text, f->textlen = tlen;
        text = NULL;
    }
    free(text);
}

static void file_check(heal_engine *e, eng_svc *s, eng_file *f)
{
    if (f->restoring) /* our own write in flight: eng_files_restored takes it as seen */
        return;
    eng_fsig g;
    sig_of(f->path, &g);
    if (!sig_same(&g, &f->sig))
        file_changed(e, s, f, &g);
}

/* Seen and stat'ed for the first time (no event): the baseline. */
static void file_baseline(heal_engine *e, eng_svc *s, eng_file *f)
{
    char base[PATH_MAX];
    sig_of(f->path, &f->sig);
    char *text = NULL;
    size_t tlen = 0;
    if (f->sig.exists && look(f->path, &f->seen, &text, &tlen) < 0)
        memset(&f->seen, 0, sizeof f->seen);
    if (text && is_text(text, tlen))
        f->text = text, f->textlen = tlen;
    else
        free(text);
    copy_base(e->state_dir, s->cfg.sc.name, f->path, base, sizeof base);
    f->has_good = load_meta(base, &f->good, &f->good_ms) == 0;
    f->ready = true;
}

/* The service's files follow its config_path list (a reload may change it). */
static void files_sync(eng_svc *s)
{
    bool same = s->nfiles == s->cfg.nconfig_paths;
    for (int i = 0; same && i < s->nfiles; i++)
        same = !strcmp(s->files[i].path, s->cfg.config_paths[i]);
    if (same)
        return;
    eng_file *nf = calloc((size_t)s->cfg.nconfig_paths + 1, sizeof *nf);
    if (!nf)
        return;
    for (int i = 0; i < s->cfg.nconfig_paths; i++) {
        eng_file *old = NULL;
        for (int k = 0; k < s->nfiles && !old; k++)
            if (!strcmp(s->files[k].path, s->cfg.config_paths[i]))
                old = &s->files[k];
        if (old) {
            nf[i] = *old;
            old->text = NULL;
        } else {
            snprintf(nf[i].path, sizeof nf[i].path, "%s", s->cfg.config_paths[i]);
        }
    }
    eng_files_free(s);
    s->files = nf;
    s->nfiles = s->cfg.nconfig_paths;
}

void eng_files_free(eng_svc *s)
{
    for (int i = 0; i < s->nfiles; i++)
        free(s->files[i].text);
    free(s->files);
    s->files = NULL;
    s->nfiles = 0;
}

/* Running, and every probe of the service passed its last check since the
 * service started. */
static bool svc_healthy(heal_engine *e, eng_svc *s)
{
    heal_supervisor *sup = eng_sup_of(e, s->cfg.sc.name);
    heal_service_info in;
    if (!sup || heal_service_info_get(sup, s->cfg.sc.name, &in) || in.state != HEAL_SVC_RUNNING)
        return false;
    for (int i = 0; i < s->nrules; i++) {
        const eng_rule *r = &s->rules[i];
        if (r->probe && (r->probe_seq <= r->start_seq || !r->probe_ok))
            return false;
    }
    return true;
}

void eng_files_tick(heal_engine *e, int64_t now_ms)
{
    (void)now_ms;
    int64_t mono = core_mono_ms();
    for (int i = 0; i < e->nsvcs; i++) {
        eng_svc *s = e->svcs[i];
        files_sync(s);
        if (!s->nfiles)
            continue;
        bool healthy = svc_healthy(e, s);
        if (!healthy)
            s->healthy_since_mono = 0;
        else if (!s->healthy_since_mono)
            s->healthy_since_mono = mono;
        int64_t after = s->cfg.sc.healthy_after_ms; /* 10 s unless configured */
        for (int k = 0; k < s->nfiles; k++) {
            eng_file *f = &s->files[k];
            if (!f->ready) {
                file_baseline(e, s, f);
                continue;
            }
            file_check(e, s, f);
            /* a known-good copy: healthy long enough, on a run begun after the last change */
            bool want = f->seen.exists && (!f->has_good || !meta_same(&f->seen, &f->good));
            bool loaded = !f->changed_mono || f->changed_mono <= s->started_mono;
            bool retry = !f->snap_failed_mono || mono - f->snap_failed_mono >= 60000;
            if (want && healthy && loaded && retry && !f->snapping && mono - s->healthy_since_mono >= after)
                snap_start(e, s, f);
        }
    }
}

json_t *eng_files_json(eng_svc *s)
{
    json_t *arr = json_array();
    for (int i = 0; i < s->nfiles; i++) {
        const eng_file *f = &s->files[i];
        json_t *o = json_pack("{s:s, s:b}", "path", f->path, "exists", f->seen.exists);
        if (f->has_good) {
            json_object_set_new(o, "known_good_ms", json_integer(f->good_ms));
            json_object_set_new(o, "differs", json_boolean(!meta_same(&f->seen, &f->good)));
        }
        json_array_append_new(arr, o);
    }
    return arr;
}

/* ---- restore ------------------------------------------------------------------------------ */

int eng_files_can_restore(heal_engine *e, const char *service, const char *path, char *msg, size_t n)
{
    eng_svc *s = eng_find_svc(e, service);
    bool listed = false;
    for (int i = 0; s && i < s->cfg.nconfig_paths; i++)
        listed |= !strcmp(s->cfg.config_paths[i], path);
    if (!listed) {
        snprintf(msg, n, "not one of the config_path of service '%s'", service);
        return -EPERM;
    }
    files_sync(s);
    eng_file *f = file_find(e, service, path, NULL);
    if (f && !f->ready)
        file_baseline(e, s, f);
    else if (f)
        file_check(e, s, f); /* a change not seen by a tick yet is recorded before it is undone */
    if (!f || !f->has_good) {
        snprintf(msg, n, "no known-good copy yet (taken once the service has been healthy for its healthy_after)");
        return -ENOENT;
    }
    return 0;
}

/* A directory back to its mode and owner (created when missing). */
static int restore_dir(const char *path, const eng_fmeta *m, char *msg, size_t n)
{
    struct stat st;
    if (stat(path, &st) && (errno != ENOENT || mkdir(path, m->mode))) {
        int rc = -errno;
        snprintf(msg, n, "cannot create the directory %s: %s", path, strerror(errno));
        return rc;
    }
    if (stat(path, &st)) {
        int rc = -errno;
        snprintf(msg, n, "%s: %s", path, strerror(errno));
        return rc;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(msg, n, "%s is no longer a directory: not replaced", path);
        return -ENOTDIR;
    }
    if (chmod(path, m->mode)) {
        int rc = -errno;
        snprintf(msg, n, "chmod %s: %s", path, strerror(errno));
        return rc;
    }
    if ((st.st_uid != m->uid || st.st_gid != m->gid) && chown(path, m->uid, m->gid)) {
        int rc = -errno;
        snprintf(msg, n, "chown %s: %s", path, strerror(errno));
        return rc;
    }
    snprintf(msg, n, "directory %s back to mode %04o, owner %u:%u", path, m->mode, m->uid, m->gid);
    return 0;
}

int eng_files_restore(heal_engine *e, const heal_action *a, char *msg, size_t n)
{
    char base[PATH_MAX], p[PATH_MAX + 8], target[PATH_MAX];
    eng_fmeta m;
    int64_t taken;
    copy_base(e->state_dir, a->service, a->path, base, sizeof base);
    if (load_meta(base, &m, &taken)) {
        snprintf(msg, n, "no known-good copy of %s", a->path);
        return -ENOENT;
    }
    if (m.dir)
        return restore_dir(a->path, &m, msg, n);
    /* a symlink (e.g. resolv.conf): its target is what the service reads */
    struct stat lst;
    bool link = !lstat(a->path, &lst) && S_ISLNK(lst.st_mode);
    if (!link || !realpath(a->path, target))
        snprintf(target, sizeof target, "%s", a->path);
    if (!m.sha256[0]) { /* larger than 1 MiB when copied: mode and owner only */
        struct stat cur;
        if (stat(target, &cur) || chmod(target, m.mode) ||
            ((cur.st_uid != m.uid || cur.st_gid != m.gid) && chown(target, m.uid, m.gid))) {
            int rc = -errno;
            snprintf(msg, n, "%s: %s (only mode and owner are kept for files over 1 MiB)", target, strerror(errno));
            return rc;
        }
        snprintf(msg, n, "%s back to mode %04o, owner %u:%u (content not kept: over 1 MiB)", target, m.mode, m.uid,
                 m.gid);
        return 0;
    }
    snprintf(p, sizeof p, "%s.data", base);
    char *buf = NULL;
    size_t len = 0;
    struct stat st;
    int rc = read_small(p, &buf, &len, &st);
    char sha[65] = "";
    if (rc == 0)
        sha_hex((const unsigned char *)buf, len, sha);
    if (rc || strcmp(sha, m.sha256)) {
        free(buf);
        snprintf(msg, n, "the known-good copy of %s is unreadable or does not match its sha256", a->path);
        return rc < 0 ? rc : -EIO;
    }
    rc = write_atomic(target, buf, len, m.mode, true, m.uid, m.gid, msg, n);
    free(buf);
    if (rc)
        return rc;
    char when[64];
    core_format_duration(core_now_ms() - taken, when, sizeof when);
    snprintf(msg, n, "%s restored from the known-good copy taken %s ago (%zu bytes, mode %04o, sha256 %.12s)", target,
             when, len, m.mode, m.sha256);
    return 0;
}

void eng_files_restoring(heal_engine *e, const heal_action *a, bool on)
{
    eng_svc *s = NULL;
    eng_file *f = file_find(e, a->service, a->path, &s);
    if (f)
        f->restoring = on;
}

void eng_files_restored(heal_engine *e, const heal_action *a, int rc, const char *msg)
{
    eng_event(e, "file.restored", rc ? "error" : "info", a->service,
              json_pack("{s:s, s:s, s:b, s:s}", "service", a->service, "path", a->path, "ok", rc == 0, "message", msg));
    eng_svc *s = NULL;
    eng_file *f = file_find(e, a->service, a->path, &s);
    if (f)
        f->restoring = false;
    if (!f || rc || !f->ready)
        return;
    /* our own write: seen as it is now, no file.changed for it */
    char *text = NULL;
    size_t tlen = 0;
    sig_of(f->path, &f->sig);
    if (look(f->path, &f->seen, &text, &tlen) < 0)
        memset(&f->seen, 0, sizeof f->seen);
    free(f->text);
    f->text = NULL;
    if (text && is_text(text, tlen))
        f->text = text, f->textlen = tlen;
    else
        free(text);
    f->changed_mono = core_mono_ms();
}
