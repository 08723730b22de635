/* api_events.c: GET /v1/events (query the event log) and
 * GET /v1/events/stream (server-sent events).
 *
 * A stream runs on its own MHD connection thread: the content-reader
 * callback replays the RAM events after ?after / Last-Event-ID, then blocks
 * in mem_events_wait in slices of at most API_SSE_WAIT_SLICE_MS, writing a
 * `: keepalive` comment every 15 s (which also keeps MHD's inactivity
 * timeout from closing the stream). Between slices it checks the stop flag
 * and whether the client hung up, so api_stop ends streams promptly. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "api/api_int.h"

static bool parse_id(const char *s, int64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 0)
        return false;
    *out = v;
    return true;
}

enum MHD_Result api_h_events(struct api *a, struct MHD_Connection *c)
{
    static const char *const allowed[] = {"from", "to", "type", "severity", "after", "limit", "order",
                                          NULL};
    const char *v[8];
    enum MHD_Result ret;
    char err[256];
    if (!api_get_params(c, allowed, v, &ret))
        return ret;
    mem_event_query q = {.limit = API_EVENTS_DEFAULT_LIMIT};
    int64_t now = core_now_ms();
    if (v[0] && (core_parse_time(v[0], now, &q.from) != 0 || q.from < 0 || q.from > API_TIME_MAX_MS))
        return api_send_error(c, 400, "bad_range", "from: cannot parse '%.64s'", v[0]);
    if (v[1] && (core_parse_time(v[1], now, &q.to) != 0 || q.to < 0 || q.to > API_TIME_MAX_MS))
        return api_send_error(c, 400, "bad_range", "to: cannot parse '%.64s'", v[1]);
    if (v[0] && v[1] && q.to < q.from)
        return api_send_error(c, 400, "bad_range", "to is before from");
    if (v[0] && q.from == 0)
        q.from = 1; /* 0 means unbounded to the store */
    q.type = v[2];
    if (v[3] && mem_severity_rank(v[3]) < 0)
        return api_send_error(c, 400, "bad_request",
                              "severity: '%.32s' is not debug, info, warning, error or critical", v[3]);
    q.severity = v[3];
    if (v[4] && !parse_id(v[4], &q.after_id))
        return api_send_error(c, 400, "bad_request", "after: '%.32s' is not an event id", v[4]);
    if (v[5]) {
        int64_t lim;
        if (!parse_id(v[5], &lim) || lim < 1 || lim > API_EVENTS_MAX_LIMIT)
            return api_send_error(c, 400, "bad_request", "limit: must be 1..%d", API_EVENTS_MAX_LIMIT);
        q.limit = (int)lim;
    }
    if (v[6] && strcmp(v[6], "asc") != 0 && strcmp(v[6], "desc") != 0)
        return api_send_error(c, 400, "bad_request", "order: must be asc or desc");
    q.ascending = v[6] && strcmp(v[6], "asc") == 0;

    mem_event *ev = NULL;
    size_t n = 0;
    err[0] = 0;
    int rc = mem_events_query(a->mem, &q, &ev, &n, err, sizeof err);
    if (rc == -EINVAL)
        return api_send_error(c, 400, "bad_request", "%s", err[0] ? err : "bad event query");
    if (rc < 0)
        return api_send_error(c, 500, "internal", "event query failed: %s",
                              err[0] ? err : strerror(-rc));
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = api_event_json(&ev[i]);
        if (o)
            json_array_append_new(arr, o);
    }
    mem_events_free(ev, n);
    return api_send_json(c, 200, json_pack("{sosI}", "events", arr, "count", (json_int_t)json_array_size(arr)));
}

/* ---- server-sent events ------------------------------------------------------ */
typedef struct api_stream {
    struct api *a;
    struct MHD_Connection *conn;
    int64_t last_id;
    int64_t last_send; /* monotonic ms of the last bytes handed to MHD */
    api_buf out;
    size_t off;
    bool started;
} api_stream;

/* True when the peer closed its side (or the socket failed). */
static bool peer_gone(api_stream *st)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(st->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return false;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0)
        return false;
    if (p.revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL))
        return true;
    char ch;
    return recv(ci->connect_fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static void add_events(api_stream *st, mem_event *ev, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        api_sse_frame(&st->out, &ev[i]);
        if (ev[i].id > st->last_id)
            st->last_id = ev[i].id;
    }
    mem_events_free(ev, n);
}

/* Events after st->last_id from the store (the slow path; see fetch). */
static int poll_store(api_stream *st)
{
    mem_event_query q = {.after_id = st->last_id, .limit = 1000, .ascending = true};
    mem_event *ev = NULL;
    size_t n = 0;
    char err[128];
    int rc = mem_events_query(st->a->mem, &q, &ev, &n, err, sizeof err);
    if (rc < 0)
        return rc;
    add_events(st, ev, n);
    return (int)n;
}

/* Waits up to timeout_ms for events after st->last_id and frames them.
 * mem_events_wait answers from the store's RAM ring; a client further behind
 * than the ring holds is caught up from the store itself. Returns events
 * added, or -errno. */
static int fetch(api_stream *st, int timeout_ms)
{
    struct api *a = st->a;
    mem_event *ev = NULL;
    size_t n = 0;
    atomic_fetch_add(&a->in_wait, 1);
    int rc = atomic_load(&a->stopping) ? 0 : mem_events_wait(a->mem, st->last_id, timeout_ms, &ev, &n);
    atomic_fetch_sub(&a->in_wait, 1);
    if (rc > 0) {
        add_events(st, ev, n);
        return rc;
    }
    if (rc < 0 || atomic_load(&a->stopping))
        return rc;
    if (mem_last_event_id(a->mem) > st->last_id)
        return poll_store(st);
    return 0;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    api_stream *st = cls;
    struct api *a = st->a;
    (void)pos;
    if (st->off == st->out.len) {
        st->off = st->out.len = 0;
        if (!st->started) {
            st->started = true;
            api_buf_puts(&st->out, "retry: 3000\n: connected\n\n");
            if (fetch(st, 0) < 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        while (st->out.len == 0) {
            if (atomic_load(&a->stopping))
                return MHD_CONTENT_READER_END_OF_STREAM;
            if (peer_gone(st))
                return MHD_CONTENT_READER_END_WITH_ERROR;
            int64_t left = API_SSE_KEEPALIVE_MS - (core_mono_ms() - st->last_send);
            if (left <= 0) {
                api_buf_puts(&st->out, ": keepalive\n\n");
                break;
            }
            int rc = fetch(st, (int)(left < API_SSE_WAIT_SLICE_MS ? left : API_SSE_WAIT_SLICE_MS));
            if (rc < 0) {
                log_warn("api: event stream: %s", strerror(-rc));
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
        }
        if (st->out.oom)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t k = st->out.len - st->off;
    if (k > max)
        k = max;
    memcpy(buf, st->out.p + st->off, k);
    st->off += k;
    st->last_send = core_mono_ms();
    return (ssize_t)k;
}

static void stream_free(void *cls)
{
    api_stream *st = cls;
    atomic_fetch_sub(&st->a->streams, 1);
    api_buf_free(&st->out);
    free(st);
}

enum MHD_Result api_h_events_stream(struct api *a, struct MHD_Connection *c, bool head)
{
    static const char *const allowed[] = {"after", NULL};
    const char *v[2];
    enum MHD_Result ret;
    if (!api_get_params(c, allowed, v, &ret))
        return ret;
    int64_t after = -1;
    const char *lei = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
    if (lei && lei[0] && !parse_id(lei, &after))
        return api_send_error(c, 400, "bad_request", "Last-Event-ID: '%.32s' is not an event id", lei);
    if (after < 0 && v[0] && !parse_id(v[0], &after))
        return api_send_error(c, 400, "bad_request", "after: '%.32s' is not an event id", v[0]);
    if (after < 0)
        after = mem_last_event_id(a->mem);
    if (after < 0)
        after = 0;

    if (head) {
        char *empty = strdup("");
        if (!empty)
            return MHD_NO;
        return api_send_buf(c, 200, empty, 0, "text/event-stream");
    }
    if (atomic_fetch_add(&a->streams, 1) >= a->max_streams) {
        atomic_fetch_sub(&a->streams, 1);
        return api_send_error(c, 503, "busy", "too many open event streams (%d)", a->max_streams);
    }
    api_stream *st = calloc(1, sizeof *st);
    if (!st) {
        atomic_fetch_sub(&a->streams, 1);
        return api_send_error(c, 500, "internal", "out of memory");
    }
    st->a = a;
    st->conn = c;
    st->last_id = after;
    st->last_send = core_mono_ms();
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read,
                                                               st, stream_free);
    if (!r) {
        stream_free(st);
        return api_send_error(c, 500, "internal", "cannot create the stream");
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}
