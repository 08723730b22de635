/* learn_feed.c: Atom and RSS 2.0 feeds to entries (libxml2; no network, no
 * external entities), RFC 3339 / RFC 822 dates, and the components and
 * knobs a paper mentions (configured services, sysctl-like knob names, a
 * short list of known components) for the links the knowledge keeps. The
 * arXiv API's Atom is the model: id, title, summary, published, the
 * alternate link, the link titled "pdf", arxiv:primary_category. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>


#include "brain/learn_int.h"
#include "brain/xml_dl.h"

static bool is(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

static char *prop(xmlNode *n, const char *name)
{
    xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
    char *s = v ? strdup((const char *)v) : NULL;
    xmlFree(v);
    return s;
}

/* A node's text, blanks collapsed (an abstract's line breaks become one
 * blank); markup inside (RSS's HTML descriptions) dropped. */
static char *text_of(xmlNode *n)
{
    xmlChar *c = xmlNodeGetContent(n);
    const char *s = c ? (const char *)c : "";
    char *d = NULL;
    if (strchr(s, '<') && strchr(s, '>')) { /* escaped HTML */
        learn_doc doc;
        char err[64];
        if (learn_parse_html(s, strlen(s), &doc, err, sizeof err) == 0) {
            d = doc.text;
            free(doc.title);
        }
    }
    if (!d)
        d = strdup(s);
    xmlFree(c);
    if (!d)
        return NULL;
    char *w = d;
    for (char *p = d; *p; p++) {
        char ch = isspace((unsigned char)*p) ? ' ' : *p;
        if (ch != ' ' || (w > d && w[-1] != ' '))
            *w++ = ch;
    }
    while (w > d && w[-1] == ' ')
        w--;
    *w = 0;
    return d;
}

static void set_once(char **dst, char *v)
{
    if (!*dst && v && *v)
        *dst = v;
    else
        free(v);
}

static void atom_entry(xmlNode *e, learn_entry *out)
{
    for (xmlNode *c = e->children; c; c = c->next) {
        if (is(c, "id"))
            set_once(&out->id, text_of(c));
        else if (is(c, "title"))
            set_once(&out->title, text_of(c));
        else if (is(c, "summary") || is(c, "content"))
            set_once(&out->summary, text_of(c));
        else if (is(c, "published") || is(c, "updated")) {
            char *d = text_of(c);
            if (d && (!out->published_ms || is(c, "published")))
                out->published_ms = learn_parse_date(d);
            free(d);
        } else if (is(c, "link")) {
            char *rel = prop(c, "rel"), *title = prop(c, "title"), *type = prop(c, "type");
            char *href = prop(c, "href");
            if ((title && !strcmp(title, "pdf")) || (type && !strcmp(type, "application/pdf")))
                set_once(&out->pdf, href);
            else if (!rel || !strcmp(rel, "alternate"))
                set_once(&out->link, href);
            else
                free(href);
            free(rel), free(title), free(type);
        } else if (is(c, "primary_category")) {
            free(out->category), out->category = prop(c, "term");
        } else if (is(c, "category")) {
            set_once(&out->category, prop(c, "term"));
        }
    }
}

static void rss_item(xmlNode *e, learn_entry *out)
{
    for (xmlNode *c = e->children; c; c = c->next) {
        if (is(c, "guid"))
            set_once(&out->id, text_of(c));
        else if (is(c, "title"))
            set_once(&out->title, text_of(c));
        else if (is(c, "description"))
            set_once(&out->summary, text_of(c));
        else if (is(c, "link"))
            set_once(&out->link, text_of(c));
        else if (is(c, "pubDate") || is(c, "date")) {
            char *d = text_of(c);
            if (d)
                out->published_ms = learn_parse_date(d);
            free(d);
        } else if (is(c, "category"))
            set_once(&out->category, text_of(c));
        else if (is(c, "enclosure")) {
            char *type = prop(c, "type");
            if (type && !strcmp(type, "application/pdf"))
                set_once(&out->pdf, prop(c, "url"));
            free(type);
        }
    }
}

static int add_entry(learn_feed *f, xmlNode *e, bool atom)
{
    learn_entry *v = realloc(f->v, (f->n + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    f->v = v;
    learn_entry *x = &v[f->n];
    memset(x, 0, sizeof *x);
    if (atom)
        atom_entry(e, x);
    else
        rss_item(e, x);
    if (!x->id && x->link)
        x->id = strdup(x->link);
    if (!x->id || !x->title) { /* an entry without identity or title is skipped */
        free(x->id), free(x->title), free(x->summary), free(x->link), free(x->pdf), free(x->category);
        return 0;
    }
    f->n++;
    return 0;
}

static void entry_free(learn_entry *x)
{
    free(x->id), free(x->title), free(x->summary), free(x->link), free(x->pdf), free(x->category);
}

void learn_feed_free(learn_feed *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        entry_free(&f->v[i]);
    free(f->v);
    free(f->title);
    memset(f, 0, sizeof *f);
}

/* The first error of a parse (libxml2 reports the last one). */
typedef struct first_err {
    bool seen;
    xmlError e;
    char msg[200];
} first_err;

static void keep_first(void *ud, xmlErrorPtr e)
{
    first_err *f = ud;
    if (f->seen || !e || e->level < XML_ERR_ERROR)
        return;
    f->seen = true;
    f->e = *e;
    snprintf(f->msg, sizeof f->msg, "%s", e->message ? e->message : "unreadable");
    f->e.message = f->msg;
    f->e.file = NULL, f->e.str1 = f->e.str2 = f->e.str3 = NULL, f->e.ctxt = f->e.node = NULL;
}

int learn_feed_parse(const char *buf, size_t len, learn_feed *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len > (size_t)INT32_MAX) {
        snprintf(err, errlen, "the feed is too large");
        return -EINVAL;
    }
    int lrc = learn_xml_load(err, errlen);
    if (lrc)
        return lrc;
    xmlResetLastError();
    first_err fe = {0};
    xmlSetStructuredErrorFunc(&fe, keep_first); /* this thread's handler */
    xmlDocPtr doc = xmlReadMemory(buf, (int)len, NULL, NULL, XML_PARSE_NONET | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
    xmlSetStructuredErrorFunc(NULL, NULL);
    if (!doc) {
        const xmlError *e = fe.seen ? &fe.e : xmlGetLastError();
        char msg[200] = "unreadable";
        if (e && e->message) {
            snprintf(msg, sizeof msg, "%s", e->message);
            size_t l = strlen(msg);
            while (l && (msg[l - 1] == '\n' || msg[l - 1] == ' '))
                msg[--l] = 0;
        }
        snprintf(err, errlen, "malformed XML at line %d: %s", e ? e->line : 0, msg);
        return -EINVAL;
    }
    xmlNode *root = xmlDocGetRootElement(doc);
    int rc = 0;
    if (root && is(root, "feed")) { /* Atom */
        for (xmlNode *c = root->children; c && !rc; c = c->next)
            if (is(c, "entry"))
                rc = add_entry(out, c, true);
            else if (is(c, "title") && !out->title)
                out->title = text_of(c);
    } else if (root && (is(root, "rss") || is(root, "RDF"))) { /* RSS 2.0 (and 1.0's items) */
        for (xmlNode *ch = root->children; ch && !rc; ch = ch->next) {
            if (is(ch, "item"))
                rc = add_entry(out, ch, false);
            if (!is(ch, "channel"))
                continue;
            for (xmlNode *c = ch->children; c && !rc; c = c->next)
                if (is(c, "item"))
                    rc = add_entry(out, c, false);
                else if (is(c, "title") && !out->title)
                    out->title = text_of(c);
        }
    } else {
        snprintf(err, errlen, "not a feed: the root element is <%.40s> (expected Atom <feed> or RSS <rss>)",
                 root ? (const char *)root->name : "?");
        rc = -EINVAL;
    }
    xmlFreeDoc(doc);
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    if (rc)
        learn_feed_free(out);
    return rc;
}

/* ---- dates ----------------------------------------------------------------- */
int64_t learn_parse_date(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    long off = 0;
    if (end) { /* RFC 3339: fractions, then Z or +hh:mm */
        if (*end == '.')
            while (isdigit((unsigned char)*++end))
                ;
        if ((*end == '+' || *end == '-') && isdigit((unsigned char)end[1])) {
            int h = 0, m = 0;
            sscanf(end + 1, "%2d:%2d", &h, &m);
            off = (*end == '-' ? -1 : 1) * (h * 3600L + m * 60L);
        }
    } else {
        memset(&tm, 0, sizeof tm);
        const char *p = s;
        const char *comma = strchr(s, ',');
        if (comma)
            p = comma + 1;
        end = strptime(p, " %d %b %Y %H:%M:%S", &tm);
        if (!end) {
            memset(&tm, 0, sizeof tm);
            end = strptime(p, "%Y-%m-%d", &tm);
            if (!end)
                return 0;
        } else {
            while (*end == ' ')
                end++;
            if ((*end == '+' || *end == '-') && isdigit((unsigned char)end[1])) {
                int v = atoi(end + 1);
                off = (*end == '-' ? -1 : 1) * ((v / 100) * 3600L + (v % 100) * 60L);
            }
        }
    }
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return 0;
    return ((int64_t)t - off) * 1000;
}

/* ---- mentions -------------------------------------------------------------- */
static const char *const known_components[] = {
    "nginx", "apache", "httpd", "haproxy", "envoy", "postgresql", "mysql", "mariadb", "redis", "memcached",
    "mongodb", "kafka", "rabbitmq", "elasticsearch", "etcd", "zookeeper", "cassandra", "sqlite", "docker",
    "containerd", "kubernetes", "systemd", "journald", "cron", "sshd", "ext4", "xfs", "btrfs", "zfs", "nfs",
    "tcp", "udp", "quic", "rdma", "cgroup", "numa", "io_uring", "ebpf", "kvm", "lvm", "raid", "nvme",
    "oom", "swap", "scheduler", "hugepages", "cpufreq", "irqbalance", "jvm", "glibc", "dpdk"};

/* Spellings of the same component. */
static const char *canonical(const char *w)
{
    static const struct {
        const char *alias, *name;
    } alias[] = {{"postgres", "postgresql"}, {"cgroups", "cgroup"}, {"cgroupv2", "cgroup"}, {"bpf", "ebpf"},
                 {"k8s", "kubernetes"},      {"hugepage", "hugepages"}, {"huge_pages", "hugepages"},
                 {"oom-killer", "oom"},      {"memcache", "memcached"}};
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
        if (!strcmp(w, alias[i].alias))
            return alias[i].name;
    for (size_t i = 0; i < sizeof known_components / sizeof known_components[0]; i++)
        if (!strcmp(w, known_components[i]))
            return known_components[i];
    return NULL;
}

/* A sysctl-like knob: a known top-level tree, then dotted [a-z0-9_-]. */
static bool knob_like(const char *w)
{
    static const char *const trees[] = {"vm.", "net.", "kernel.", "fs.", "dev.", "user.", "sunrpc.", "abi."};
    bool tree = false;
    for (size_t i = 0; i < sizeof trees / sizeof trees[0]; i++)
        tree = tree || !strncmp(w, trees[i], strlen(trees[i]));
    if (!tree)
        return false;
    int dots = 0;
    for (const char *p = w; *p; p++) {
        if (*p == '.') {
            dots++;
            if (p[1] == '.' || p[1] == 0)
                return false;
        } else if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' || *p == '-')) {
            return false;
        }
    }
    return dots >= 1 && strlen(w) >= 5;
}

static int add_node(char **out, int n, int max, const char *kind, const char *name)
{
    char node[160];
    snprintf(node, sizeof node, "%s:%s", kind, name);
    for (int i = 0; i < n; i++)
        if (!strcmp(out[i], node))
            return n;
    if (n >= max)
        return n;
    out[n] = strdup(node);
    return out[n] ? n + 1 : n;
}

int learn_mentions(const char *text, const char *const *services, size_t nservices, char **out, int max)
{
    int n = 0;
    char w[128];
    for (const char *p = text; p && *p;) {
        while (*p && !(isalnum((unsigned char)*p) || *p == '_'))
            p++;
        size_t l = 0;
        while (p[l] && (isalnum((unsigned char)p[l]) || p[l] == '_' || p[l] == '.' || p[l] == '-'))
            l++;
        if (!l)
            break;
        while (l && (p[l - 1] == '.' || p[l - 1] == '-')) /* the sentence's full stop */
            l--;
        if (l && l < sizeof w) {
            for (size_t i = 0; i < l; i++)
                w[i] = (char)tolower((unsigned char)p[i]);
            w[l] = 0;
            const char *c = canonical(w);
            if (c)
                n = add_node(out, n, max, "component", c);
            else if (knob_like(w))
                n = add_node(out, n, max, "knob", w);
            for (size_t i = 0; i < nservices; i++)
                if (services[i] && !strcasecmp(w, services[i]))
                    n = add_node(out, n, max, "component", services[i]);
        }
        p += l ? l : 1;
        while (*p && (isalnum((unsigned char)*p) || *p == '_' || *p == '.' || *p == '-'))
            p++;
    }
    return n;
}
