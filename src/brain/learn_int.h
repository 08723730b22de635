/* learn_int.h: inside the cell's reading (learn_parse.c, learn_feed.c,
 * learn.c): documents to plain text, feeds to entries, and the components
 * and knobs a text mentions. Shared by the daemon (URLs, feeds), the CLI
 * (`ippoc learn` parses files as the user) and the unit tests. Pure but for
 * learn_run (a child process) and learn_read_file (a file). */
#ifndef IPPOC_LEARN_INT_H
#define IPPOC_LEARN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LEARN_FILE_MAX ((size_t)20 * 1024 * 1024)   /* a document as read (bytes) */
#define LEARN_TEXT_MAX ((size_t)20 * 1024 * 1024)   /* decompressed or rendered text */
#define LEARN_TIMEOUT_MS 30000                      /* man / pdftotext run at most */

/* A parsed document: malloc'd title (may be "") and plain text. */
typedef struct learn_doc {
    char *title;
    char *text;
    char kind[16]; /* "markdown","text","html","man","pdf","runbook" */
} learn_doc;

void learn_doc_free(learn_doc *d);

/* The kind of a document from its name (may be NULL) and first bytes:
 * "markdown", "html", "man", "pdf", "text", or NULL for binary data. A
 * trailing ".gz" on name is looked through (the bytes are then gzip). */
const char *learn_sniff(const char *name, const char *buf, size_t len);
/* True when buf looks like text (no NUL, mostly printable, valid-ish UTF-8). */
bool learn_is_text(const char *buf, size_t len);

/* Parsers: 0 and *out, or -EINVAL / -ENOMEM with the reason in err. */
int learn_parse_markdown(const char *buf, size_t len, learn_doc *out, char *err, size_t errlen);
int learn_parse_text(const char *buf, size_t len, learn_doc *out, char *err, size_t errlen);
int learn_parse_html(const char *buf, size_t len, learn_doc *out, char *err, size_t errlen);
/* roff source to text without man/groff (requests dropped, escapes
 * resolved); title from the NAME section ("ls - list directory contents"). */
int learn_parse_roff(const char *buf, size_t len, learn_doc *out, char *err, size_t errlen);
/* Rendered man output (backspace overstrike and SGR escapes removed). */
int learn_parse_rendered_man(const char *buf, size_t len, learn_doc *out, char *err, size_t errlen);

/* Parses a whole document of kind (NULL: sniffed) found at path (used for
 * man -l / pdftotext, which read the file themselves; may be NULL when buf
 * is all there is: then man pages use the roff stripper and PDF is an
 * error). buf may be gzip (".gz"): it is decompressed up to LEARN_TEXT_MAX.
 * 0, -EINVAL (binary, malformed, too large), -ENOENT (pdftotext missing),
 * with "reason" in err (the caller names the file). */
int learn_parse(const char *path, const char *buf, size_t len, const char *kind, learn_doc *out, char *err,
                size_t errlen);

/* Reads a file of at most LEARN_FILE_MAX bytes: 0 and *buf (malloc'd, NUL
 * added) and *len; -EFBIG, -errno, with the reason in err. */
int learn_read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen);

/* Runs argv (no shell; env: "K=V" strings added to the environment, may
 * be NULL) with stdin from /dev/null, collecting stdout up to max bytes
 * within timeout_ms. 0 and *out (malloc'd, NUL-ended), -ENOENT (not
 * installed), -E2BIG, -ETIMEDOUT, -EIO (non-zero exit). */
int learn_run(const char *const *argv, const char *const *env, size_t max, int timeout_ms, char **out,
              size_t *outlen, char *err, size_t errlen);
/* True when an executable named prog is on PATH. */
bool learn_have(const char *prog);

/* Decompresses gzip data up to max bytes: 0, -E2BIG, -EINVAL. */
int learn_gunzip(const char *buf, size_t len, size_t max, char **out, size_t *outlen, char *err, size_t errlen);

/* ---- feeds (learn_feed.c) --------------------------------------------------- */
typedef struct learn_entry {
    char *id;        /* Atom id / RSS guid (else its link) */
    char *title;
    char *summary;   /* abstract / description as plain text */
    char *link;      /* the alternate (HTML) link */
    char *pdf;       /* a PDF link, NULL when none */
    char *category;  /* arxiv:primary_category term, else the first category */
    int64_t published_ms;
} learn_entry;

typedef struct learn_feed {
    char *title;
    learn_entry *v;
    size_t n;
} learn_feed;

/* Parses an Atom or RSS 2.0 document: 0 and *out, or -EINVAL with "not a
 * feed: ..." / "malformed XML at line N: ..." in err. */
int learn_feed_parse(const char *buf, size_t len, learn_feed *out, char *err, size_t errlen);
void learn_feed_free(learn_feed *f);
/* RFC 3339 / RFC 822 dates to ms since the epoch (0 when unreadable). */
int64_t learn_parse_date(const char *s);

/* Components and knobs text mentions: appends "component:NAME" and
 * "knob:NAME" nodes (deduplicated) to out[] up to max; returns how many.
 * services: extra component names (configured services), may be NULL. */
int learn_mentions(const char *text, const char *const *services, size_t nservices, char **out, int max);

#endif
