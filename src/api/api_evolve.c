/* api_evolve.c: forwards every GET and POST under /v1/genome, /v1/evolve
 * and /v1/tools to the cell's evolution (the evolve_http hook; src/evolve
 * sorts out the routes). The query string is rebuilt from MHD's decoded
 * arguments (percent-encoded again); the answer's content type follows its
 * first byte: JSON for '{' or '[', a diff for /v1/genome/diff, else text. */
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

typedef struct qbuf {
    api_buf b;
    int n;
} qbuf;

static void put_enc(api_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~/:", *p)) {
            api_buf_add(b, (const char *)p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            api_buf_add(b, e, 3);
        }
    }
}

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    qbuf *q = cls;
    if (q->n++)
        api_buf_add(&q->b, "&", 1);
    put_enc(&q->b, key);
    if (value) {
        api_buf_add(&q->b, "=", 1);
        put_enc(&q->b, value);
    }
    return MHD_YES;
}

static const char *content_type(const char *url, const char *body)
{
    if (body[0] == '{' || body[0] == '[')
        return "application/json";
    if (!strncmp(url, "/v1/genome/diff", 15))
        return "text/x-diff; charset=utf-8";
    return "text/plain; charset=utf-8";
}

enum MHD_Result api_h_evolve(struct api *a, struct MHD_Connection *c, const char *url, const char *method,
                             const char *body, size_t len)
{
    if (!a->hooks.evolve_http)
        return api_send_error(c, 503, "unavailable", "evolution is not available");
    qbuf q = {0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_arg, &q);
    if (q.n && (!q.b.p || q.b.oom)) {
        api_buf_free(&q.b);
        return api_send_error(c, 503, "busy", "out of memory");
    }
    int status = 0;
    char *out = a->hooks.evolve_http(a->hooks.ud, method, url, q.n ? q.b.p : NULL, body, len, &status);
    api_buf_free(&q.b);
    if (!out)
        return api_send_error(c, 503, "unavailable", "evolution is not available");
    if (status < 100 || status > 599)
        status = 500;
    return api_send_buf(c, (unsigned)status, out, strlen(out), content_type(url, out));
}
