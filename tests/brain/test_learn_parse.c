/* test_learn_parse.c: documents to plain text and feeds to entries, from the
 * recorded files in tests/brain/fixtures/learn: a markdown runbook (front
 * matter, code, lists, tables, links), an HTML page (script, style, nav
 * dropped), a roff man page (stripped here and rendered by man -l when it
 * is installed), gzip (and a bomb over the limit), an arXiv API Atom page
 * and an RSS 2.0 feed, malformed XML, the components and knobs a text
 * mentions, and the child-program runner's limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "brain/learn_int.h"

static char *fixture(const char *name, size_t *len)
{
    const char *src = getenv("IPPOC_SRC");
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/tests/brain/fixtures/learn/%s", src ? src : ".", name);
    char *buf;
    assert_int_equal(learn_read_file(path, &buf, len, err, sizeof err), 0);
    return buf;
}

static char *fixture_path(const char *name)
{
    static char path[1024];
    const char *src = getenv("IPPOC_SRC");
    snprintf(path, sizeof path, "%s/tests/brain/fixtures/learn/%s", src ? src : ".", name);
    return path;
}

/* ---- markdown and text ---- */
static void test_markdown_runbook(void **state)
{
    (void)state;
    size_t len;
    char *buf = fixture("runbook.md", &len), err[256];
    learn_doc d;
    assert_int_equal(learn_parse(NULL, buf, len, "runbook", &d, err, sizeof err), 0);
    assert_string_equal(d.kind, "runbook");
    assert_string_equal(d.title, "Nginx 502 runbook");
    assert_non_null(strstr(d.text, "Nginx returns 502 Bad Gateway\n"));
    assert_non_null(strstr(d.text, "\nSteps\n"));
    assert_non_null(strstr(d.text, "When nginx answers 502, the upstream is down or too slow."));
    assert_non_null(strstr(d.text, "See the upstream docs."));
    assert_null(strstr(d.text, "https://nginx.org"));
    assert_non_null(strstr(d.text, "\nCheck the upstream: systemctl status app\n"));
    assert_non_null(strstr(d.text, "\ntail -n 50 /var/log/nginx/error.log\n"));
    assert_non_null(strstr(d.text, "\nRestart the upstream, not nginx.\n"));
    assert_non_null(strstr(d.text, "connect() failed  upstream down"));
    assert_non_null(strstr(d.text, "Never restart during the maintenance window."));
    assert_non_null(strstr(d.text, "diagram"));
    assert_null(strstr(d.text, "flow.png"));
    assert_null(strstr(d.text, "**"));
    assert_null(strstr(d.text, "```"));
    assert_null(strstr(d.text, "|--"));
    assert_null(strstr(d.text, "title:"));
    learn_doc_free(&d);
    free(buf);
}

static void test_markdown_title_and_setext(void **state)
{
    (void)state;
    const char *md = "Intro line before\n\nDisk Full\n=========\n\nSome *text* with snake_case_name and "
                     "`a_b` \\*star\\*.\n\nSub\n---\nmore\n";
    learn_doc d;
    char err[256];
    assert_int_equal(learn_parse_markdown(md, strlen(md), &d, err, sizeof err), 0);
    assert_string_equal(d.title, "Disk Full");
    assert_non_null(strstr(d.text, "\nDisk Full\n"));
    assert_non_null(strstr(d.text, "Some text with snake_case_name and a_b *star*."));
    assert_non_null(strstr(d.text, "\nSub\n"));
    assert_null(strstr(d.text, "==="));
    learn_doc_free(&d);
    /* a front matter title of one quote (found by a fuzzer) */
    const char *fm = "---\ntitle: \"\n---\nbody\n";
    assert_int_equal(learn_parse_markdown(fm, strlen(fm), &d, err, sizeof err), 0);
    assert_string_equal(d.text, "body");
    learn_doc_free(&d);
    /* nothing but markup is an error, not an empty document */
    assert_int_equal(learn_parse_markdown("---\n***\n", 8, &d, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "no text"));
}

static void test_text(void **state)
{
    (void)state;
    const char *t = "\n\n  Disk quota notes\r\nline two   \r\n\n\n\nline three\n";
    learn_doc d;
    char err[256];
    assert_int_equal(learn_parse(NULL, t, strlen(t), NULL, &d, err, sizeof err), 0);
    assert_string_equal(d.kind, "text");
    assert_string_equal(d.title, "Disk quota notes");
    assert_string_equal(d.text, "  Disk quota notes\nline two\n\nline three");
    learn_doc_free(&d);
}

/* ---- HTML ---- */
static void test_html(void **state)
{
    (void)state;
    size_t len;
    char *buf = fixture("page.html", &len), err[256];
    learn_doc d;
    assert_int_equal(learn_parse("page.html", buf, len, NULL, &d, err, sizeof err), 0);
    assert_string_equal(d.kind, "html");
    assert_string_equal(d.title, "Tuning PostgreSQL checkpoints");
    const char *gone[] = {"SHOULD_NOT_APPEAR", "ALSO_NOT", "NAVLINK", "NOSCRIPT_TEXT", "font-family", "<b>", "&quot;"};
    for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++)
        if (strstr(d.text, gone[i]))
            fail_msg("'%s' is in the text:\n%s", gone[i], d.text);
    assert_non_null(strstr(d.text, "Checkpoint tuning\n"));
    assert_non_null(strstr(d.text, "\nSymptoms\n"));
    assert_non_null(strstr(d.text, "Frequent checkpoints cause write spikes. Raise max_wal_size and spread them"));
    assert_non_null(strstr(d.text, "\"checkpoints are occurring too frequently\" in the log"));
    assert_non_null(strstr(d.text, "max_wal_size = 4GB\ncheckpoint_timeout = 15min"));
    assert_non_null(strstr(d.text, "shared_buffers  8GB"));
    learn_doc_free(&d);
    free(buf);
    /* a fragment without <title>: the first h1 */
    const char *frag = "<div><h1>Only a heading</h1><p>and a paragraph</p></div>";
    assert_int_equal(learn_parse_html(frag, strlen(frag), &d, err, sizeof err), 0);
    assert_string_equal(d.title, "Only a heading");
    learn_doc_free(&d);
}

/* ---- man pages ---- */
static void test_roff(void **state)
{
    (void)state;
    size_t len;
    char *buf = fixture("ls.1", &len), err[256];
    learn_doc d;
    assert_int_equal(learn_parse_roff(buf, len, &d, err, sizeof err), 0);
    assert_string_equal(d.title, "ls - list directory contents");
    assert_string_equal(d.kind, "man");
    assert_non_null(strstr(d.text, "\nDESCRIPTION\n"));
    assert_non_null(strstr(d.text, "\nSEE ALSO\n"));
    assert_non_null(strstr(d.text, "-a, --all do not ignore entries starting with ."));
    assert_non_null(strstr(d.text, "Sort entries alphabetically if none of -cftuvSUX nor --sort is specified."));
    assert_non_null(strstr(d.text, "dir(1), stat(1)"));
    assert_null(strstr(d.text, "Copyright"));
    assert_null(strstr(d.text, "\\f"));
    assert_null(strstr(d.text, ".TP"));
    learn_doc_free(&d);
    free(buf);
}

static void test_rendered_man(void **state)
{
    (void)state;
    const char *r = "LS(1)    User Commands    LS(1)\n\nN\bNA\bAM\bME\bE\n       ls - list\n       directory "
                    "contents\n\n\x1b[1mDESCRIPTION\x1b[0m\n       _\bf_\bi_\bl_\be_\bs here\n";
    learn_doc d;
    char err[256];
    assert_int_equal(learn_parse_rendered_man(r, strlen(r), &d, err, sizeof err), 0);
    assert_string_equal(d.title, "ls - list directory contents");
    assert_non_null(strstr(d.text, "\nDESCRIPTION\n"));
    assert_non_null(strstr(d.text, "files here"));
    assert_null(strchr(d.text, '\b'));
    assert_null(strchr(d.text, 0x1b));
    learn_doc_free(&d);
}

static void test_man_rendered_by_man(void **state)
{
    (void)state;
    if (!learn_have("man") || !learn_have("groff")) {
        skip();
        return;
    }
    size_t len;
    char *buf = fixture("ls.1", &len), err[256];
    learn_doc d;
    assert_int_equal(learn_parse(fixture_path("ls.1"), buf, len, NULL, &d, err, sizeof err), 0);
    assert_string_equal(d.kind, "man");
    assert_string_equal(d.title, "ls - list directory contents");
    assert_non_null(strstr(d.text, "use a long listing format"));
    assert_null(strchr(d.text, '\b'));
    learn_doc_free(&d);
    free(buf);
}

/* ---- types, gzip, limits ---- */
static void test_sniff(void **state)
{
    (void)state;
    assert_string_equal(learn_sniff("a/b/notes.md", "hello", 5), "markdown");
    assert_string_equal(learn_sniff("x", "  <!DOCTYPE html><p>x", 21), "html");
    assert_string_equal(learn_sniff("x", ".TH LS 1\n", 9), "man");
    assert_string_equal(learn_sniff("ls.1.gz", "x\n.B y\n", 7), "man");
    assert_string_equal(learn_sniff("openssl.1ssl", ".so x\n", 6), "man");
    assert_string_equal(learn_sniff("x", "%PDF-1.7\n", 9), "pdf");
    assert_string_equal(learn_sniff("x", "# Title\ntext\n", 13), "markdown");
    assert_string_equal(learn_sniff("x", "plain words\n", 12), "text");
    assert_string_equal(learn_sniff("v1.2", "plain", 5), "text");
    assert_null(learn_sniff("x.md", "bin\0ary", 7));
    char err[256];
    learn_doc d;
    assert_int_equal(learn_parse("blob", "\x7f" "ELF\0\0\0", 7, NULL, &d, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "binary"));
}

static char *gzip_of(const char *s, size_t n, size_t *outlen)
{
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, n) + 64;
    char *out = malloc(cap);
    z.next_in = (Bytef *)s, z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out, z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *outlen = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static void test_gzip(void **state)
{
    (void)state;
    size_t len, glen;
    char *buf = fixture("ls.1", &len), err[256];
    char *gz = gzip_of(buf, len, &glen);
    learn_doc d;
    assert_int_equal(learn_parse(NULL, gz, glen, NULL, &d, err, sizeof err), 0); /* no path: stripped here */
    assert_string_equal(d.kind, "man");
    assert_string_equal(d.title, "ls - list directory contents");
    learn_doc_free(&d);
    free(gz), free(buf);
    /* a bomb: 30 MB of zeros decompress past the 20 MB limit */
    size_t big = 30u << 20;
    char *zeros = calloc(1, big);
    gz = gzip_of(zeros, big, &glen);
    free(zeros);
    assert_int_equal(learn_parse("x.txt.gz", gz, glen, NULL, &d, err, sizeof err), -E2BIG);
    assert_non_null(strstr(err, "decompresses to more than"));
    assert_int_equal(learn_parse("x.gz", gz, glen / 2, NULL, &d, err, sizeof err), -EINVAL); /* truncated */
    free(gz);
}

static void test_pdf_without_pdftotext(void **state)
{
    (void)state;
    if (learn_have("pdftotext")) {
        skip();
        return;
    }
    learn_doc d;
    char err[256];
    assert_int_equal(learn_parse("paper.pdf", "%PDF-1.4\n%\xe2\xe3\n", 14, NULL, &d, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "pdftotext is not installed"));
}

static void test_file_limits(void **state)
{
    (void)state;
    char dir[] = "/tmp/ippoc-learn-XXXXXX", path[128], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/big.txt", dir);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)LEARN_FILE_MAX + 1), 0);
    close(fd);
    char *buf;
    size_t len;
    assert_int_equal(learn_read_file(path, &buf, &len, err, sizeof err), -EFBIG);
    assert_non_null(strstr(err, "larger than the limit of 20 MB"));
    unlink(path);
    assert_int_equal(learn_read_file(dir, &buf, &len, err, sizeof err), -EINVAL);
    assert_int_equal(learn_read_file(path, &buf, &len, err, sizeof err), -ENOENT);
    rmdir(dir);
}

static void test_run_limits(void **state)
{
    (void)state;
    char *out, err[256];
    size_t n;
    const char *nosuch[] = {"ippoc-no-such-program", NULL};
    assert_int_equal(learn_run(nosuch, NULL, 100, 1000, &out, &n, err, sizeof err), -ENOENT);
    const char *slow[] = {"sleep", "5", NULL};
    assert_int_equal(learn_run(slow, NULL, 100, 200, &out, &n, err, sizeof err), -ETIMEDOUT);
    const char *many[] = {"seq", "1", "100000", NULL};
    assert_int_equal(learn_run(many, NULL, 1000, 5000, &out, &n, err, sizeof err), -E2BIG);
    const char *bad[] = {"false", NULL};
    assert_int_equal(learn_run(bad, NULL, 1000, 5000, &out, &n, err, sizeof err), -EIO);
    const char *env[] = {"IPPOC_LEARN_T=42", NULL};
    const char *pe[] = {"printenv", "IPPOC_LEARN_T", NULL};
    assert_int_equal(learn_run(pe, env, 1000, 5000, &out, &n, err, sizeof err), 0);
    assert_string_equal(out, "42\n");
    free(out);
}

/* ---- feeds ---- */
static void test_atom_arxiv(void **state)
{
    (void)state;
    size_t len;
    char *buf = fixture("arxiv.atom", &len), err[256];
    learn_feed f;
    assert_int_equal(learn_feed_parse(buf, len, &f, err, sizeof err), 0);
    assert_int_equal(f.n, 3);
    assert_non_null(strstr(f.title, "ArXiv Query"));
    learn_entry *e = &f.v[0];
    assert_string_equal(e->id, "http://arxiv.org/abs/2512.01234v1");
    assert_string_equal(e->title,
                        "Swap or Starve: Tuning vm.swappiness for Latency-Critical Services under Memory Pressure");
    assert_true(!strncmp(e->summary, "We study how the kernel's vm.swappiness knob", 44));
    assert_null(strchr(e->summary, '\n'));
    assert_string_equal(e->link, "http://arxiv.org/abs/2512.01234v1");
    assert_string_equal(e->pdf, "http://arxiv.org/pdf/2512.01234v1");
    assert_string_equal(e->category, "cs.OS");
    assert_int_equal(e->published_ms, 1796322064000LL); /* 2026-12-03T18:21:04Z */
    assert_string_equal(f.v[1].category, "cs.DC");
    assert_int_equal(f.v[1].published_ms, learn_parse_date("2026-12-02T11:30:00Z"));
    learn_feed_free(&f);
    free(buf);
}

static void test_rss(void **state)
{
    (void)state;
    size_t len;
    char *buf = fixture("blog.rss", &len), err[256];
    learn_feed f;
    assert_int_equal(learn_feed_parse(buf, len, &f, err, sizeof err), 0);
    assert_int_equal(f.n, 2);
    assert_string_equal(f.title, "Ops Notes");
    assert_string_equal(f.v[0].id, "ops-2026-12-redis-oom");
    assert_string_equal(f.v[0].link, "https://ops.example.org/2026/12/redis-oom");
    assert_string_equal(f.v[0].summary, "The OOM killer picked redis after vm.overcommit_memory was set to 2.");
    assert_string_equal(f.v[0].category, "incidents");
    assert_int_equal(f.v[0].published_ms, learn_parse_date("2026-12-03T10:00:00Z"));
    assert_string_equal(f.v[1].id, "https://ops.example.org/2026/11/nginx-nofile"); /* no guid: the link */
    assert_int_equal(f.v[1].published_ms, learn_parse_date("2026-11-30T08:30:00Z"));
    learn_feed_free(&f);
    free(buf);
}

static void test_malformed_feeds(void **state)
{
    (void)state;
    learn_feed f;
    char err[256];
    const char *bad = "<?xml version=\"1.0\"?>\n<feed>\n<entry><title>x</entry>\n</feed>\n";
    assert_int_equal(learn_feed_parse(bad, strlen(bad), &f, err, sizeof err), -EINVAL);
    if (!strstr(err, "malformed XML at line 3"))
        fail_msg("%s", err);
    assert_int_equal(learn_feed_parse("", 0, &f, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "malformed XML"));
    const char *html = "<html><body>hi</body></html>";
    assert_int_equal(learn_feed_parse(html, strlen(html), &f, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "not a feed: the root element is <html>"));
    /* an external entity is never fetched nor expanded */
    const char *xxe = "<?xml version=\"1.0\"?><!DOCTYPE feed [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
                      "<feed><entry><id>1</id><title>t&x;</title></entry></feed>";
    if (learn_feed_parse(xxe, strlen(xxe), &f, err, sizeof err) == 0) {
        assert_int_equal(f.n, 1);
        assert_null(strstr(f.v[0].title, "root:"));
        learn_feed_free(&f);
    }
    assert_int_equal(learn_parse_date("garbage"), 0);
    assert_int_equal(learn_parse_date("2026-12-03T18:21:04+02:00"), 1796322064000LL - 7200000LL);
}

static bool has(char **v, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v[i], s))
            return true;
    return false;
}

static void test_mentions(void **state)
{
    (void)state;
    char *m[32];
    const char *t = "We study how the kernel's vm.swappiness knob and cgroups interact for PostgreSQL and Redis. "
                    "Raise net.core.somaxconn. Postgres again, e.g. at v1.2; the app service restarts.";
    const char *svc[] = {"app"};
    int n = learn_mentions(t, svc, 1, m, 32);
    assert_true(has(m, n, "knob:vm.swappiness"));
    assert_true(has(m, n, "knob:net.core.somaxconn"));
    assert_true(has(m, n, "component:cgroup"));
    assert_true(has(m, n, "component:postgresql"));
    assert_true(has(m, n, "component:redis"));
    assert_true(has(m, n, "component:app"));
    assert_false(has(m, n, "knob:e.g"));
    int pg = 0;
    for (int i = 0; i < n; i++)
        pg += !strcmp(m[i], "component:postgresql");
    assert_int_equal(pg, 1); /* deduplicated */
    for (int i = 0; i < n; i++)
        free(m[i]);
    assert_int_equal(learn_mentions("nginx nginx tcp", NULL, 0, m, 1), 1); /* max respected */
    free(m[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_markdown_runbook), cmocka_unit_test(test_markdown_title_and_setext),
        cmocka_unit_test(test_text),             cmocka_unit_test(test_html),
        cmocka_unit_test(test_roff),             cmocka_unit_test(test_rendered_man),
        cmocka_unit_test(test_man_rendered_by_man), cmocka_unit_test(test_sniff),
        cmocka_unit_test(test_gzip),             cmocka_unit_test(test_pdf_without_pdftotext),
        cmocka_unit_test(test_file_limits),      cmocka_unit_test(test_run_limits),
        cmocka_unit_test(test_atom_arxiv),       cmocka_unit_test(test_rss),
        cmocka_unit_test(test_malformed_feeds),  cmocka_unit_test(test_mentions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
