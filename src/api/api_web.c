/* api_web.c: the dashboard's static files: GET/HEAD "/" and "/index.html"
 * (web/index.html) and "/assets/NAME" (web/NAME), built into the binary by
 * tools/embed_web.py (the generated web_embed.c). No token: they hold no
 * data; every request the page makes for data carries it.
 *
 * gzip'd when the client takes it (Vary: Accept-Encoding), a strong ETag
 * with If-None-Match -> 304, and Cache-Control: no-cache on every file: the
 * asset names carry no version, so a long max-age would keep an old app.js
 * after ippocd is upgraded; a revalidation is one small 304. A strict
 * Content-Security-Policy and the other security headers on every answer.
 *
 * IPPOC_WEB_DIR=DIR (a developer aid): the same names are read from DIR on
 * each request instead (identity, no ETag, no-store), so an edited page
 * shows on reload without a rebuild. Only names built in are served, so
 * nothing outside DIR can be named. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

#define WEB_DIR_FILE_MAX ((size_t)16 * 1024 * 1024)

static const char csp[] = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                          "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

void api_web_init(struct api *a)
{
    const char *d = getenv("IPPOC_WEB_DIR");
    a->web_dir[0] = 0;
    if (!d || !*d)
        return;
    if (core_sncpy(a->web_dir, sizeof a->web_dir, d) < 0) {
        a->web_dir[0] = 0;
        log_warn("api: IPPOC_WEB_DIR is longer than %zu bytes; serving the built-in dashboard",
                 sizeof a->web_dir - 1);
        return;
    }
    log_info("api: IPPOC_WEB_DIR=%s: the dashboard's files are read from there on each request "
             "(a developer aid), not the built-in copies",
             a->web_dir);
}

static void add_common(struct MHD_Response *r, const char *cache)
{
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cache);
    MHD_add_response_header(r, "Content-Security-Policy", csp);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    /* one request per connection: each passes the gate (api_gate.c) */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
}

static enum MHD_Result queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *r)
{
    if (!r)
        return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Reads DIR/NAME whole into *out (malloc'd, core_slurp). 0 or -errno. */
static int read_dir_file(const char *dir, const char *name, char **out, size_t *len)
{
    char path[2048];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return -ENAMETOOLONG;
    if (!(*out = core_slurp(path, len)))
        return errno ? -errno : -EIO;
    if (*len > WEB_DIR_FILE_MAX) {
        free(*out);
        *out = NULL;
        return -EFBIG;
    }
    return 0;
}

static enum MHD_Result send_from_dir(struct api *a, struct MHD_Connection *c, const api_web_file *f)
{
    char *body = NULL;
    size_t len = 0;
    int rc = read_dir_file(a->web_dir, f->name, &body, &len);
    if (rc < 0)
        return api_send_error(c, 404, "not_found", "%s: cannot read it from IPPOC_WEB_DIR: %s", f->name,
                              strerror(-rc));
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, f->ctype);
    add_common(r, "no-store");
    return queue(c, MHD_HTTP_OK, r);
}

enum MHD_Result api_h_web(struct api *a, struct MHD_Connection *c, const char *url, bool head)
{
    (void)head; /* MHD sends a HEAD's headers (Content-Length included) without the body */
    const char *name = api_web_name(url);
    const api_web_file *f = name ? api_web_embedded(name) : NULL;
    if (!f)
        return api_send_error(c, 404, "not_found", "no such file: %.200s", url);
    if (a->web_dir[0])
        return send_from_dir(a, c, f);

    bool gz = f->gz && api_web_accepts_gzip(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                                        MHD_HTTP_HEADER_ACCEPT_ENCODING));
    char etag[96];
    size_t el = strlen(f->etag);
    if (gz && el >= 2 && el + 3 < sizeof etag)
        snprintf(etag, sizeof etag, "%.*s-gz\"", (int)(el - 1), f->etag);
    else
        core_sncpy(etag, sizeof etag, f->etag);

    const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    bool fresh = inm && api_web_etag_match(inm, f->etag);
    struct MHD_Response *r =
        fresh ? MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT)
              : MHD_create_response_from_buffer(gz ? f->gzlen : f->len, (void *)(gz ? f->gz : f->data),
                                                MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    if (!fresh)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, f->ctype);
    if (gz)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    if (f->gz)
        MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
    MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
    add_common(r, "no-cache");
    return queue(c, fresh ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, r);
}
