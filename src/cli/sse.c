/* sse.c: an incremental parser for text/event-stream (the WHATWG
 * server-sent events format). Bytes arrive in arbitrary chunks from libcurl;
 * lines end in LF, CR or CRLF (a CRLF split across chunks is handled); a
 * blank line dispatches the event built from its "event:", "data:" and "id:"
 * fields; lines starting with ':' (keepalives) are comments. The last event
 * id survives reconnects so the caller can send it as Last-Event-ID. */
#include "cli/cli.h"

#include "core/core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SSE_LINE_MAX (1u << 20)

void cli_sse_init(cli_sse *s, cli_sse_fn fn, void *ud)
{
    memset(s, 0, sizeof *s);
    s->fn = fn;
    s->ud = ud;
}

void cli_sse_reset(cli_sse *s)
{
    s->llen = 0;
    s->dlen = 0;
    s->has_data = false;
    s->skip_lf = false;
    s->event[0] = '\0';
}

void cli_sse_free(cli_sse *s)
{
    free(s->line);
    free(s->data);
    s->line = s->data = NULL;
    s->lcap = s->dcap = s->llen = s->dlen = 0;
}

static int grow(char **p, size_t *cap, size_t need)
{
    if (need > SSE_LINE_MAX)
        return -E2BIG;
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    char *q = realloc(*p, c);
    if (!q)
        return -ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

static int append_data(cli_sse *s, const char *v, size_t n)
{
    size_t need = s->dlen + n + 2;
    int r = grow(&s->data, &s->dcap, need);
    if (r < 0)
        return r;
    if (s->has_data)
        s->data[s->dlen++] = '\n';
    memcpy(s->data + s->dlen, v, n);
    s->dlen += n;
    s->data[s->dlen] = '\0';
    s->has_data = true;
    return 0;
}

static int dispatch(cli_sse *s)
{
    int r = 0;
    if (s->has_data) {
        cli_sse_event ev = {
            .id = s->last_id,
            .event = s->event[0] ? s->event : "message",
            .data = s->data,
        };
        r = s->fn(&ev, s->ud) ? 1 : 0;
    }
    s->dlen = 0;
    s->has_data = false;
    s->event[0] = '\0';
    return r;
}

/* Handles one complete line (without its terminator). */
static int field(cli_sse *s, const char *line, size_t n)
{
    if (n == 0)
        return dispatch(s);
    if (line[0] == ':')
        return 0; /* comment / keepalive */
    const char *colon = memchr(line, ':', n);
    size_t klen = colon ? (size_t)(colon - line) : n;
    const char *v = colon ? colon + 1 : line + n;
    size_t vlen = (size_t)(line + n - v);
    if (vlen > 0 && *v == ' ') {
        v++;
        vlen--;
    }
    if (klen == 4 && !memcmp(line, "data", 4))
        return append_data(s, v, vlen);
    if (klen == 5 && !memcmp(line, "event", 5))
        snprintf(s->event, sizeof s->event, "%.*s", (int)vlen, v);
    else if (klen == 2 && !memcmp(line, "id", 2) && !memchr(v, '\0', vlen))
        snprintf(s->last_id, sizeof s->last_id, "%.*s", (int)vlen, v);
    return 0; /* "retry" and unknown fields are ignored */
}

static int end_line(cli_sse *s)
{
    int r = field(s, s->line ? s->line : "", s->llen);
    s->llen = 0;
    return r;
}

int cli_sse_feed(cli_sse *s, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = buf[i];
        if (s->skip_lf) {
            s->skip_lf = false;
            if (ch == '\n')
                continue;
        }
        if (ch == '\r' || ch == '\n') {
            s->skip_lf = ch == '\r';
            int r = end_line(s);
            if (r != 0)
                return r;
            continue;
        }
        int r = grow(&s->line, &s->lcap, s->llen + 2);
        if (r < 0)
            return r;
        s->line[s->llen++] = ch;
        s->line[s->llen] = '\0';
    }
    return 0;
}
