/* learn.c: the cell reads. Documents handed over by `ippoc learn` (text the
 * CLI parsed as the user) or fetched here from a URL go into the knowledge
 * store with their provenance; Atom/RSS feeds (the arXiv API by default in
 * the docs) are followed on the learner's own thread: each new paper's
 * title and abstract (and full text from its PDF with feed_pdf = yes) is
 * stored once and linked to the components and knobs it mentions. A feed
 * that cannot be reached is retried with backoff, quietly. A feed's state
 * lives in the store's meta as "feed:URL" JSON; "feeds" lists the URLs
 * registered. Downloads use libcurl through the run-time loader
 * (core/curl_dl.h): http and https only, size and time limits. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "brain/brain.h"
#include "brain/learn_int.h"
#include "core/curl_dl.h"

#define LEARN_DEFAULT_INTERVAL_MS (6 * 3600 * 1000LL)
#define LEARN_DEFAULT_TIMEOUT_MS 30000
#define LEARN_BACKOFF_BASE_MS 60000LL /* first retry after a failure (at most the interval) */
#define LEARN_SEEN_MAX 5000           /* entry ids remembered per feed */
#define LEARN_URL_MAX 2048
#define LEARN_SOURCE_MAX 4096
#define LEARN_MENTIONS_MAX 32
#define LEARN_IDLE_CHECK_MS 60000 /* the feed thread looks at least this often */

typedef struct feed_slot {
    char *url;
    int64_t next_try; /* wall ms */
    bool configured;  /* in [knowledge] feeds */
    bool registered;  /* by POST /v1/learn {"feed"} (kept in meta "feeds") */
} feed_slot;

struct brain_learn {
    mem_know *know;
    pthread_mutex_t lock;       /* everything below but the store */
    pthread_cond_t cond;
    pthread_mutex_t fetch_lock; /* one feed poll at a time */
    pthread_t thread;
    bool started;
    atomic_bool stop;
    int64_t interval_ms, timeout_ms;
    uint64_t fetch_max;
    bool pdf;
    char **services;
    size_t nservices;
    feed_slot *feeds;
    size_t nfeeds;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- configuration ---------------------------------------------------------- */
typedef struct learn_cfg {
    int64_t interval_ms, timeout_ms;
    uint64_t fetch_max;
    bool pdf;
    char **feeds;
    size_t nfeeds;
    char **services;
    size_t nservices;
} learn_cfg;

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int strv_add(char ***v, size_t *n, const char *s, size_t len)
{
    for (size_t i = 0; i < *n; i++)
        if (strlen((*v)[i]) == len && !strncmp((*v)[i], s, len))
            return 0;
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return -ENOMEM;
    *v = nv;
    nv[*n] = strndup(s, len);
    if (!nv[*n])
        return -ENOMEM;
    (*n)++;
    return 0;
}

/* http:// or https://, printable, no blanks, not too long. */
static bool url_ok(const char *u, char *why, size_t whylen)
{
    size_t n = strlen(u);
    if (strncasecmp(u, "http://", 7) && strncasecmp(u, "https://", 8)) {
        snprintf(why, whylen, "'%.200s' is not an http:// or https:// URL", u);
        return false;
    }
    if (n > LEARN_URL_MAX) {
        snprintf(why, whylen, "the URL is longer than %d bytes", LEARN_URL_MAX);
        return false;
    }
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            snprintf(why, whylen, "the URL holds a blank or control byte");
            return false;
        }
    return true;
}

static void learn_cfg_free(learn_cfg *c)
{
    strv_free(c->feeds, c->nfeeds);
    strv_free(c->services, c->nservices);
    memset(c, 0, sizeof *c);
}

static int learn_cfg_read(const core_config *cfg, learn_cfg *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->interval_ms = LEARN_DEFAULT_INTERVAL_MS;
    out->timeout_ms = LEARN_DEFAULT_TIMEOUT_MS;
    out->fetch_max = LEARN_FILE_MAX;
    for (int i = 0; cfg && i < cfg->nraw; i++) {
        const core_kv *kv = &cfg->raw[i];
        int rc = 0;
        if (!strncmp(kv->section, "service.", 8) && kv->section[8]) {
            rc = strv_add(&out->services, &out->nservices, kv->section + 8, strlen(kv->section + 8));
        } else if (strcmp(kv->section, "knowledge") != 0) {
            continue;
        } else if (!strcmp(kv->key, "feed_interval")) {
            if (core_parse_duration(kv->value, &out->interval_ms) || out->interval_ms < 1000)
                rc = core_kv_error(err, errlen, kv, "feed_interval: '%s' is not a duration of at least 1s", kv->value);
        } else if (!strcmp(kv->key, "fetch_timeout")) {
            if (core_parse_duration(kv->value, &out->timeout_ms) || out->timeout_ms < 1000 ||
                out->timeout_ms > 600000)
                rc = core_kv_error(err, errlen, kv, "fetch_timeout: '%s' is not a duration of 1s to 10m", kv->value);
        } else if (!strcmp(kv->key, "fetch_max")) {
            if (core_parse_size(kv->value, &out->fetch_max) || out->fetch_max < 1024 ||
                out->fetch_max > ((uint64_t)1 << 30))
                rc = core_kv_error(err, errlen, kv, "fetch_max: '%s' is not a size of 1KB to 1GB", kv->value);
        } else if (!strcmp(kv->key, "feed_pdf")) {
            if (core_parse_bool(kv->value, &out->pdf))
                rc = core_kv_error(err, errlen, kv, "feed_pdf: '%s' is not yes or no", kv->value);
        } else if (!strcmp(kv->key, "feeds")) {
            for (const char *p = kv->value; *p && !rc;) {
                while (*p == ' ' || *p == '\t' || *p == ',')
                    p++;
                size_t n = strcspn(p, " \t,");
                if (!n)
                    break;
                char u[LEARN_URL_MAX + 2], why[300];
                snprintf(u, sizeof u, "%.*s", (int)(n > LEARN_URL_MAX + 1 ? LEARN_URL_MAX + 1 : n), p);
                if (!url_ok(u, why, sizeof why))
                    rc = core_kv_error(err, errlen, kv, "feeds: %s", why);
                else
                    rc = strv_add(&out->feeds, &out->nfeeds, p, n);
                p += n;
            }
        }
        if (rc) {
            if (rc == -ENOMEM)
                snprintf(err, errlen, "out of memory");
            learn_cfg_free(out);
            return rc;
        }
    }
    return 0;
}

int brain_learn_config_check(const core_config *cfg, char *err, size_t errlen)
{
    learn_cfg c;
    int rc = learn_cfg_read(cfg, &c, err, errlen);
    learn_cfg_free(&c);
    return rc;
}

/* ---- downloads --------------------------------------------------------------- */
typedef struct dl_buf {
    char *s;
    size_t n, cap, max;
    bool over;
    brain_learn *l;
} dl_buf;

static size_t dl_write(char *p, size_t size, size_t nm, void *ud)
{
    dl_buf *b = ud;
    size_t n = size * nm;
    if (b->n + n > b->max) {
        b->over = true;
        return 0;
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 65536;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s)
            return 0;
        b->s = s, b->cap = cap;
    }
    memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = 0;
    return n;
}

static int dl_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    dl_buf *b = ud;
    return atomic_load(&b->l->stop) ? 1 : 0;
}

/* GET url: 0 and *body (malloc'd, NUL-ended), *len, ctype (may be "");
 * -EINVAL (bad URL), -EFBIG, -EIO with the reason in err. */
static int fetch(brain_learn *l, const char *url, char **body, size_t *len, char *ctype, size_t ctlen, char *err,
                 size_t errlen)
{
    *body = NULL, *len = 0;
    if (ctype && ctlen)
        ctype[0] = 0;
    if (!url_ok(url, err, errlen))
        return -EINVAL;
    if (atomic_load(&l->stop)) {
        snprintf(err, errlen, "%.300s: not fetched, stopping", url);
        return -ECANCELED;
    }
    int rc = core_curl_ready(err, errlen);
    if (rc)
        return rc;
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(err, errlen, "cannot start a download");
        return -ENOMEM;
    }
    pthread_mutex_lock(&l->lock);
    long timeout = (long)l->timeout_ms;
    dl_buf b = {.max = (size_t)l->fetch_max, .l = l};
    pthread_mutex_unlock(&l->lock);
    char ua[64];
    snprintf(ua, sizeof ua, "ippoc/%s (+learn)", IPPOC_VERSION);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout < 10000 ? timeout : 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, ua);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)b.max);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, dl_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, dl_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &b);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    char *ct = NULL;
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
    if (ct && ctype && ctlen)
        snprintf(ctype, ctlen, "%s", ct);
    rc = 0;
    if (b.over || cc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(err, errlen, "%.300s: larger than the limit of %" PRIu64 " bytes", url, (uint64_t)b.max);
        rc = -EFBIG;
    } else if (cc != CURLE_OK) {
        snprintf(err, errlen, "%.300s: %s", url, atomic_load(&l->stop) ? "stopping" : curl_easy_strerror(cc));
        rc = -EIO;
    } else if (status >= 400) {
        snprintf(err, errlen, "%.300s: HTTP %ld", url, status);
        rc = -EIO;
    }
    curl_easy_cleanup(h);
    if (rc) {
        free(b.s);
        return rc;
    }
    *body = b.s ? b.s : calloc(1, 1);
    *len = b.n;
    return *body ? 0 : -ENOMEM;
}

/* The kind a download's Content-Type says, NULL to sniff. */
static const char *kind_of_ctype(const char *ct)
{
    if (!strncasecmp(ct, "text/html", 9) || !strncasecmp(ct, "application/xhtml", 17))
        return "html";
    if (!strncasecmp(ct, "application/pdf", 15))
        return "pdf";
    if (!strncasecmp(ct, "text/markdown", 13))
        return "markdown";
    return NULL;
}

/* ---- storing ----------------------------------------------------------------- */
/* Links node to what text mentions (configured services, knobs, components). */
static int link_mentions(brain_learn *l, const char *node, const char *text, json_t *into)
{
    char *m[LEARN_MENTIONS_MAX];
    pthread_mutex_lock(&l->lock);
    int n = learn_mentions(text, (const char *const *)l->services, l->nservices, m, LEARN_MENTIONS_MAX);
    pthread_mutex_unlock(&l->lock);
    int linked = 0;
    for (int i = 0; i < n; i++) {
        char err[256];
        if (mem_know_link(l->know, node, "mentions", m[i], 1.0, err, sizeof err) == 0) {
            linked++;
            if (into)
                json_array_append_new(into, json_string(m[i]));
        } else {
            log_debug("learn: link %s -> %s: %s", node, m[i], err);
        }
        free(m[i]);
    }
    return linked;
}

/* Adds one document; its answer object, or NULL with err. */
static json_t *store_doc(brain_learn *l, const mem_doc *d, char *err, size_t errlen)
{
    int64_t id = 0;
    int chunks = 0;
    int rc = mem_know_add(l->know, d, &id, &chunks, err, errlen);
    if (rc)
        return NULL;
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:i, s:s, s:b}", "source", d->source, "title",
                          d->title ? d->title : "", "kind", d->kind, "doc", (json_int_t)id, "chunks", chunks,
                          "status", chunks > 0 ? "added" : "unchanged", "pinned", d->pinned);
    if (o && chunks > 0) {
        char node[32];
        snprintf(node, sizeof node, "doc:%" PRId64, id);
        json_t *links = json_array();
        link_mentions(l, node, d->text, links);
        json_object_set_new(o, "mentions", links);
    }
    return o;
}

/* ---- feeds' state ------------------------------------------------------------ */
static json_t *feed_state(brain_learn *l, const char *url)
{
    char key[LEARN_URL_MAX + 8];
    snprintf(key, sizeof key, "feed:%s", url);
    char *s = mem_know_meta_get(l->know, key);
    json_t *o = s ? json_loads(s, 0, NULL) : NULL;
    free(s);
    if (!json_is_object(o)) {
        json_decref(o);
        o = json_pack("{s:s, s:I, s:I, s:I, s:i, s:I, s:i, s:[]}", "url", url, "added", (json_int_t)now_ms(),
                      "last_fetch", (json_int_t)0, "last_success", (json_int_t)0, "failures", 0, "next_try",
                      (json_int_t)0, "entries", 0, "seen");
    }
    return o;
}

static void feed_state_save(brain_learn *l, const char *url, json_t *st)
{
    char key[LEARN_URL_MAX + 8];
    snprintf(key, sizeof key, "feed:%s", url);
    char *s = json_dumps(st, JSON_COMPACT);
    if (!s || mem_know_meta_set(l->know, key, s))
        log_warn("learn: cannot save the state of feed %s", url);
    free(s);
}

/* The registered list ("feeds" in meta): URLs not from the configuration. */
static void feeds_list_save(brain_learn *l)
{
    json_t *a = json_array();
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < l->nfeeds; i++)
        if (l->feeds[i].registered)
            json_array_append_new(a, json_string(l->feeds[i].url));
    pthread_mutex_unlock(&l->lock);
    char *s = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    if (!s || mem_know_meta_set(l->know, "feeds", s))
        log_warn("learn: cannot save the list of feeds");
    free(s);
}

/* Adds url to the followed feeds (lock held), configured or registered;
 * -ENOMEM or 0. */
static int slot_add(brain_learn *l, const char *url, bool configured, int64_t next_try)
{
    for (size_t i = 0; i < l->nfeeds; i++)
        if (!strcmp(l->feeds[i].url, url)) {
            l->feeds[i].configured = l->feeds[i].configured || configured;
            l->feeds[i].registered = l->feeds[i].registered || !configured;
            return 0;
        }
    feed_slot *v = realloc(l->feeds, (l->nfeeds + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    l->feeds = v;
    v[l->nfeeds] = (feed_slot){strdup(url), next_try, configured, !configured};
    if (!v[l->nfeeds].url)
        return -ENOMEM;
    l->nfeeds++;
    return 0;
}

static void slot_set_next(brain_learn *l, const char *url, int64_t next)
{
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < l->nfeeds; i++)
        if (!strcmp(l->feeds[i].url, url))
            l->feeds[i].next_try = next;
    pthread_mutex_unlock(&l->lock);
}

static bool seen(const json_t *st, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(st, "seen"), i, v) {
        const char *s = json_string_value(v);
        if (s && !strcmp(s, id))
            return true;
    }
    return false;
}

/* "http://arxiv.org/abs/2501.01234v2" -> "2501.01234" (0 when not arXiv). */
static int arxiv_id(const char *id, char *out, size_t n)
{
    const char *p = strstr(id, "arxiv.org/abs/");
    if (!p)
        return 0;
    p += 14;
    size_t l = strcspn(p, "v?#/ ");
    if (l == 0 || l >= n)
        return 0;
    if (p[l] == '/') /* old style: "cs/0112017" */
        l += 1 + strcspn(p + l + 1, "v?# ");
    if (l >= n)
        return 0;
    snprintf(out, n, "%.*s", (int)l, p);
    return 1;
}

/* The text of a paper: title, abstract, and the PDF's text when asked. */
static char *paper_text(brain_learn *l, const learn_entry *e, bool pdf)
{
    size_t cap = strlen(e->title) + (e->summary ? strlen(e->summary) : 0) + 8;
    char *full = NULL;
    if (pdf && e->pdf && learn_have("pdftotext")) {
        char *body, err[512], ct[128];
        size_t len;
        if (fetch(l, e->pdf, &body, &len, ct, sizeof ct, err, sizeof err) == 0) {
            learn_doc d;
            if (learn_parse(NULL, body, len, "pdf", &d, err, sizeof err) == 0)
                full = d.text, free(d.title);
            else
                log_debug("learn: %s: %s", e->pdf, err);
            free(body);
        } else {
            log_debug("learn: %s", err);
        }
    }
    cap += full ? strlen(full) + 2 : 0;
    char *t = malloc(cap);
    if (t)
        snprintf(t, cap, "%s\n\n%s%s%s", e->title, e->summary ? e->summary : "", full ? "\n\n" : "", full ? full : "");
    free(full);
    return t;
}

/* Stores entry e of feed url (not seen before): 1 added, 0 unchanged, <0. */
static int store_entry(brain_learn *l, const char *url, const learn_entry *e, bool pdf)
{
    char *text = paper_text(l, e, pdf);
    size_t sl = strlen(url) + strlen(e->id) + 8;
    char *source = malloc(sl);
    if (!text || !source) {
        free(text), free(source);
        return -ENOMEM;
    }
    snprintf(source, sl, "feed:%s#%s", url, e->id);
    mem_doc d = {.source = source, .title = e->title, .kind = "paper", .text = text, .ts_ms = e->published_ms};
    int64_t id = 0;
    int chunks = 0;
    char err[512];
    int rc = mem_know_add(l->know, &d, &id, &chunks, err, sizeof err);
    if (rc) {
        log_debug("learn: feed %s: entry %s: %s", url, e->id, err);
    } else if (chunks > 0) {
        char node[64], doc[32], ax[32];
        snprintf(doc, sizeof doc, "doc:%" PRId64, id);
        if (arxiv_id(e->id, ax, sizeof ax)) {
            snprintf(node, sizeof node, "paper:%s", ax);
            mem_know_link(l->know, doc, "is", node, 1.0, err, sizeof err);
        } else {
            snprintf(node, sizeof node, "%s", doc);
        }
        link_mentions(l, node, text, NULL);
        rc = 1;
    }
    free(text), free(source);
    return rc;
}

/* Fetches feed url once: *added new papers. 0 or -errno with err. The
 * state (failures, backoff, seen ids) is saved either way. */
static int poll_feed(brain_learn *l, const char *url, int *added, int *entries, char *err, size_t errlen)
{
    *added = 0, *entries = 0;
    pthread_mutex_lock(&l->fetch_lock);
    pthread_mutex_lock(&l->lock);
    int64_t interval = l->interval_ms;
    bool pdf = l->pdf;
    pthread_mutex_unlock(&l->lock);
    json_t *st = feed_state(l, url);
    int64_t now = now_ms();
    json_object_set_new(st, "last_fetch", json_integer(now));
    char *body = NULL, ct[128];
    size_t len = 0;
    learn_feed f = {0};
    int rc = fetch(l, url, &body, &len, ct, sizeof ct, err, errlen);
    if (rc == 0) {
        char perr[256];
        rc = learn_feed_parse(body, len, &f, perr, sizeof perr);
        if (rc)
            snprintf(err, errlen, "%.300s: %s", url, perr);
    }
    free(body);
    if (rc) {
        json_int_t fails = json_integer_value(json_object_get(st, "failures")) + 1;
        int64_t back = LEARN_BACKOFF_BASE_MS < interval ? LEARN_BACKOFF_BASE_MS : interval;
        for (json_int_t i = 1; i < fails && back < interval; i++)
            back *= 2;
        if (back > interval)
            back = interval;
        json_object_set_new(st, "failures", json_integer(fails));
        json_object_set_new(st, "error", json_string(err));
        json_object_set_new(st, "next_try", json_integer(now + back));
        log_debug("learn: feed: %s (failure %lld, next try in %llds)", err, (long long)fails,
                  (long long)(back / 1000));
    } else {
        json_t *seen_ids = json_object_get(st, "seen");
        if (!json_is_array(seen_ids))
            json_object_set_new(st, "seen", seen_ids = json_array());
        for (size_t i = 0; i < f.n && !atomic_load(&l->stop); i++) {
            if (seen(st, f.v[i].id))
                continue;
            int r = store_entry(l, url, &f.v[i], pdf);
            if (r < 0)
                continue; /* not marked seen: tried again next time */
            *added += r;
            json_array_append_new(seen_ids, json_string(f.v[i].id));
        }
        while (json_array_size(seen_ids) > LEARN_SEEN_MAX)
            json_array_remove(seen_ids, 0);
        *entries = (int)f.n;
        json_object_set_new(st, "failures", json_integer(0));
        json_object_del(st, "error");
        json_object_set_new(st, "last_success", json_integer(now));
        json_object_set_new(st, "next_try", json_integer(now + interval));
        json_object_set_new(st, "entries", json_integer((json_int_t)json_array_size(seen_ids)));
        if (f.title)
            json_object_set_new(st, "title", json_string(f.title));
        if (*added)
            log_info("learn: feed %s: %d new papers", url, *added);
        else
            log_debug("learn: feed %s: nothing new in %zu entries", url, f.n);
    }
    learn_feed_free(&f);
    slot_set_next(l, url, json_integer_value(json_object_get(st, "next_try")));
    feed_state_save(l, url, st);
    json_decref(st);
    pthread_mutex_unlock(&l->fetch_lock);
    return rc;
}

/* ---- the feed thread -------------------------------------------------------- */
static void *feed_thread(void *ud)
{
    brain_learn *l = ud;
    pthread_mutex_lock(&l->lock);
    while (!atomic_load(&l->stop)) {
        int64_t now = now_ms(), next = now + LEARN_IDLE_CHECK_MS;
        char *due = NULL;
        for (size_t i = 0; i < l->nfeeds && !due; i++) {
            if (l->feeds[i].next_try <= now) {
                due = strdup(l->feeds[i].url);
                l->feeds[i].next_try = now + LEARN_IDLE_CHECK_MS; /* poll_feed sets the real one */
            } else if (l->feeds[i].next_try < next) {
                next = l->feeds[i].next_try;
            }
        }
        if (due) {
            pthread_mutex_unlock(&l->lock);
            int added, entries;
            char err[1024];
            poll_feed(l, due, &added, &entries, err, sizeof err);
            free(due);
            pthread_mutex_lock(&l->lock);
            continue;
        }
        struct timespec ts = {(time_t)(next / 1000), (long)(next % 1000) * 1000000L};
        pthread_cond_timedwait(&l->cond, &l->lock, &ts);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

/* ---- life ------------------------------------------------------------------- */
static void apply_cfg(brain_learn *l, learn_cfg *c)
{
    pthread_mutex_lock(&l->lock);
    l->interval_ms = c->interval_ms;
    l->timeout_ms = c->timeout_ms;
    l->fetch_max = c->fetch_max;
    l->pdf = c->pdf;
    strv_free(l->services, l->nservices);
    l->services = c->services, l->nservices = c->nservices;
    c->services = NULL, c->nservices = 0;
    size_t k = 0; /* a feed no longer configured nor registered is no longer followed */
    for (size_t i = 0; i < l->nfeeds; i++) {
        bool still = l->feeds[i].registered;
        for (size_t j = 0; j < c->nfeeds && !still; j++)
            still = !strcmp(c->feeds[j], l->feeds[i].url);
        if (still) {
            l->feeds[i].configured = false;
            l->feeds[k++] = l->feeds[i];
        } else {
            free(l->feeds[i].url);
        }
    }
    l->nfeeds = k;
    for (size_t i = 0; i < c->nfeeds; i++) /* a new one is fetched at once */
        slot_add(l, c->feeds[i], true, 0);
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

static void load_registered(brain_learn *l)
{
    char *s = mem_know_meta_get(l->know, "feeds");
    json_t *a = s ? json_loads(s, 0, NULL) : NULL;
    free(s);
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        const char *url = json_string_value(v);
        if (!url)
            continue;
        json_t *st = feed_state(l, url);
        pthread_mutex_lock(&l->lock);
        slot_add(l, url, false, json_integer_value(json_object_get(st, "next_try")));
        pthread_mutex_unlock(&l->lock);
        json_decref(st);
    }
    json_decref(a);
}

int brain_learn_new(const core_config *cfg, mem_know *know, brain_learn **out, char *err, size_t errlen)
{
    *out = NULL;
    learn_cfg c;
    int rc = learn_cfg_read(cfg, &c, err, errlen);
    if (rc)
        return rc;
    brain_learn *l = calloc(1, sizeof *l);
    if (!l) {
        learn_cfg_free(&c);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    l->know = know;
    pthread_mutex_init(&l->lock, NULL);
    pthread_mutex_init(&l->fetch_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_REALTIME);
    pthread_cond_init(&l->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (know) {
        load_registered(l);
        apply_cfg(l, &c);
        if (pthread_create(&l->thread, NULL, feed_thread, l) == 0)
            l->started = true;
        else
            log_warn("learn: cannot start the feed thread: feeds are not followed");
    } else {
        apply_cfg(l, &c);
    }
    learn_cfg_free(&c);
    *out = l;
    return 0;
}

int brain_learn_reconfigure(brain_learn *l, const core_config *cfg, char *err, size_t errlen)
{
    if (!l)
        return 0;
    learn_cfg c;
    int rc = learn_cfg_read(cfg, &c, err, errlen);
    if (rc)
        return rc;
    apply_cfg(l, &c);
    learn_cfg_free(&c);
    return 0;
}

void brain_learn_stop(brain_learn *l)
{
    if (!l)
        return;
    atomic_store(&l->stop, true);
    pthread_mutex_lock(&l->lock);
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

void brain_learn_free(brain_learn *l)
{
    if (!l)
        return;
    brain_learn_stop(l);
    if (l->started)
        pthread_join(l->thread, NULL);
    for (size_t i = 0; i < l->nfeeds; i++)
        free(l->feeds[i].url);
    free(l->feeds);
    strv_free(l->services, l->nservices);
    pthread_mutex_destroy(&l->lock);
    pthread_mutex_destroy(&l->fetch_lock);
    pthread_cond_destroy(&l->cond);
    free(l);
}

/* ---- requests --------------------------------------------------------------- */
static char *fail(int *status, int code, char *err, size_t errlen, const char *fmt, const char *arg)
{
    *status = code;
    if (arg != err) /* err already holds the reason */
        snprintf(err, errlen, fmt, arg);
    return NULL;
}

static bool kind_ok(const char *k)
{
    static const char *const kinds[] = {"markdown", "text", "html", "man", "pdf", "runbook", "note"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(k, kinds[i]))
            return true;
    return false;
}

static char *answer(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

static char *learn_feed_req(brain_learn *l, const char *url, int *status, char *err, size_t errlen)
{
    if (!url_ok(url, err, errlen))
        return fail(status, 400, err, errlen, "%s", err);
    pthread_mutex_lock(&l->lock);
    bool known = false; /* registered before */
    for (size_t i = 0; i < l->nfeeds; i++)
        known = known || (!strcmp(l->feeds[i].url, url) && l->feeds[i].registered);
    int rc = known ? 0 : slot_add(l, url, false, INT64_MAX);
    pthread_mutex_unlock(&l->lock);
    if (rc)
        return fail(status, 503, err, errlen, "%s", "out of memory");
    if (!known)
        feeds_list_save(l);
    int added = 0, entries = 0;
    char ferr[1024] = "";
    rc = poll_feed(l, url, &added, &entries, ferr, sizeof ferr);
    json_t *o = json_pack("{s:s, s:b, s:i, s:i}", "feed", url, "registered", !known, "entries", entries, "added",
                          added);
    if (rc)
        json_object_set_new(o, "error", json_string(ferr));
    pthread_mutex_lock(&l->lock);
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->lock);
    return answer(o);
}

static char *learn_url_req(brain_learn *l, const char *url, const char *kind, bool pin, int *status, char *err,
                           size_t errlen)
{
    char *body, ct[128];
    size_t len;
    int rc = fetch(l, url, &body, &len, ct, sizeof ct, err, errlen);
    if (rc)
        return fail(status, rc == -EINVAL ? 400 : 502, err, errlen, "%s", err);
    const char *k = kind ? kind : kind_of_ctype(ct);
    learn_doc d;
    char perr[512];
    const char *slash = strrchr(url, '/');
    char name[256];
    snprintf(name, sizeof name, "%s", slash ? slash + 1 : url); /* the URL's last segment names the type */
    name[strcspn(name, "?#")] = 0;
    rc = learn_parse(NULL, body, len, k, &d, perr, sizeof perr);
    if (!rc && !kind && !kind_of_ctype(ct)) { /* sniffed by content only: the name may say more */
        learn_doc_free(&d);
        const char *by = learn_sniff(name, body, len);
        rc = learn_parse(NULL, body, len, by, &d, perr, sizeof perr);
    }
    free(body);
    if (rc)
        return snprintf(err, errlen, "%.300s: %s", url, perr), fail(status, 400, err, errlen, "%s", err);
    bool runbook = kind && !strcmp(kind, "runbook");
    mem_doc md = {.source = url, .title = d.title, .kind = d.kind, .text = d.text, .pinned = pin || runbook};
    json_t *o = store_doc(l, &md, err, errlen);
    learn_doc_free(&d);
    if (!o)
        return fail(status, 500, err, errlen, "%s", err);
    return answer(o);
}

char *brain_learn_json(brain_learn *l, const char *body, size_t len, int *status, char *err, size_t errlen)
{
    *status = 200;
    if (!l || !l->know)
        return fail(status, 503, err, errlen, "%s", "the knowledge store is not open");
    json_error_t je;
    json_t *o = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        *status = 400;
        snprintf(err, errlen, "the body is not a JSON object: %s", je.text);
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        static const char *const keys[] = {"source", "title", "kind", "text", "pin", "url", "feed"};
        bool ok = false;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            ok = ok || !strcmp(k, keys[i]);
        if (!ok || (strcmp(k, "pin") ? !json_is_string(v) : !json_is_boolean(v))) {
            *status = 400;
            snprintf(err, errlen, ok ? "\"%.64s\" has the wrong type" : "unknown member \"%.64s\" (expected source, "
                                                                         "title, kind, text, pin, url or feed)",
                     k);
            json_decref(o);
            return NULL;
        }
    }
    const char *source = json_string_value(json_object_get(o, "source"));
    const char *title = json_string_value(json_object_get(o, "title"));
    const char *kind = json_string_value(json_object_get(o, "kind"));
    const char *text = json_string_value(json_object_get(o, "text"));
    const char *url = json_string_value(json_object_get(o, "url"));
    const char *feed = json_string_value(json_object_get(o, "feed"));
    bool pin = json_is_true(json_object_get(o, "pin"));
    char *res = NULL;
    if ((url != NULL) + (feed != NULL) + (text != NULL) != 1)
        res = fail(status, 400, err, errlen, "%s", "give exactly one of \"text\" (with \"source\"), \"url\" or \"feed\"");
    else if (kind && !kind_ok(kind))
        res = fail(status, 400, err, errlen,
                   "unknown kind '%.32s' (expected markdown, text, html, man, pdf, runbook or note)", kind);
    else if (feed)
        res = learn_feed_req(l, feed, status, err, errlen);
    else if (url)
        res = learn_url_req(l, url, kind, pin, status, err, errlen);
    else if (!source || !*source || strlen(source) > LEARN_SOURCE_MAX)
        res = fail(status, 400, err, errlen, "%s", "\"source\" must name where the text came from (1 to 4096 bytes)");
    else if (!*text)
        res = fail(status, 400, err, errlen, "%s: the text is empty", source);
    else {
        bool runbook = kind && !strcmp(kind, "runbook");
        mem_doc d = {.source = source, .title = title ? title : "", .kind = kind ? kind : "text", .text = text,
                     .pinned = pin || runbook};
        json_t *a = store_doc(l, &d, err, errlen);
        res = a ? answer(a) : fail(status, 500, err, errlen, "%s", err);
    }
    json_decref(o);
    return res;
}

char *brain_learn_feeds_json(brain_learn *l)
{
    json_t *a = json_array();
    if (l && l->know) {
        pthread_mutex_lock(&l->lock);
        size_t n = l->nfeeds;
        char **urls = calloc(n ? n : 1, sizeof *urls);
        bool *cfgd = calloc(n ? n : 1, sizeof *cfgd);
        for (size_t i = 0; urls && cfgd && i < n; i++)
            urls[i] = strdup(l->feeds[i].url), cfgd[i] = l->feeds[i].configured;
        pthread_mutex_unlock(&l->lock);
        for (size_t i = 0; urls && cfgd && i < n; i++) {
            if (!urls[i])
                continue;
            json_t *st = feed_state(l, urls[i]);
            json_object_del(st, "seen");
            json_object_set_new(st, "configured", json_boolean(cfgd[i]));
            json_array_append_new(a, st);
            free(urls[i]);
        }
        free(urls), free(cfgd);
    }
    return answer(json_pack("{s:o}", "feeds", a));
}

char *brain_knowledge_json(brain_learn *l, int limit)
{
    if (!l || !l->know)
        return NULL;
    char *s = mem_know_stats_json(l->know), *d = mem_know_docs_json(l->know, limit), *f = brain_learn_feeds_json(l);
    json_t *stats = s ? json_loads(s, 0, NULL) : NULL, *docs = d ? json_loads(d, 0, NULL) : NULL;
    json_t *feeds = f ? json_loads(f, 0, NULL) : NULL;
    free(s), free(d), free(f);
    json_t *o = json_object();
    json_object_set_new(o, "stats", stats ? stats : json_object());
    json_object_set_new(o, "docs", docs ? docs : json_array());
    json_t *fa = json_object_get(feeds, "feeds");
    json_object_set_new(o, "feeds", fa ? json_incref(fa) : json_array());
    json_decref(feeds);
    return answer(o);
}

/* A short one-line piece of a chunk's text. */
static json_t *snippet(const char *t)
{
    char buf[304];
    size_t w = 0;
    for (const char *p = t ? t : ""; *p && w < 300; p++) {
        char c = isspace((unsigned char)*p) ? ' ' : *p;
        if (c != ' ' || (w && buf[w - 1] != ' '))
            buf[w++] = c;
    }
    while (w && ((unsigned char)buf[w - 1] & 0xc0) == 0x80) /* a cut UTF-8 sequence */
        w--;
    if (w && ((unsigned char)buf[w - 1] & 0x80))
        w--;
    buf[w] = 0;
    json_t *j = json_string(buf);
    return j ? j : json_string("");
}

char *brain_knowledge_search_json(brain_learn *l, const char *query, const char *mode, int limit, int *status,
                                  char *err, size_t errlen)
{
    *status = 200;
    if (!l || !l->know)
        return fail(status, 503, err, errlen, "%s", "the knowledge store is not open");
    int m = !mode || !strcmp(mode, "hybrid") ? MEM_KNOW_HYBRID
            : !strcmp(mode, "bm25")          ? MEM_KNOW_BM25
            : !strcmp(mode, "vector")        ? MEM_KNOW_VECTOR
                                             : -1;
    if (m < 0)
        return fail(status, 400, err, errlen, "mode '%.32s' is not hybrid, bm25 or vector", mode);
    if (!query || !*query)
        return fail(status, 400, err, errlen, "%s", "q: the query is empty");
    mem_hit *h = NULL;
    size_t n = 0;
    int rc = mem_know_search(l->know, query, m, limit, &h, &n, err, errlen);
    if (rc)
        return fail(status, rc == -EINVAL ? 400 : 500, err, errlen, "%s", err);
    json_t *hits = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(hits, json_pack("{s:s, s:s, s:s, s:f, s:i, s:i, s:I, s:I, s:f, s:I, s:o}", "source",
                                              h[i].source ? h[i].source : "", "title", h[i].title ? h[i].title : "",
                                              "kind", h[i].kind ? h[i].kind : "", "score", h[i].score, "rank_bm25",
                                              h[i].rank_bm25, "rank_vector", h[i].rank_vec, "doc",
                                              (json_int_t)h[i].doc, "chunk", (json_int_t)h[i].chunk, "confidence",
                                              h[i].confidence, "ts", (json_int_t)h[i].ts_ms, "snippet",
                                              snippet(h[i].text)));
    mem_know_hits_free(h, n);
    return answer(json_pack("{s:s, s:s, s:o}", "query", query, "mode", mode ? mode : "hybrid", "hits", hits));
}

char *brain_knowledge_links_json(brain_learn *l, const char *node, int depth)
{
    if (!l || !l->know)
        return NULL;
    char *s = mem_know_links_json(l->know, node, depth);
    json_t *links = s ? json_loads(s, 0, NULL) : NULL;
    free(s);
    if (!links)
        return NULL;
    return answer(json_pack("{s:s, s:o}", "node", node, "links", links));
}
