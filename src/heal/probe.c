/* probe.c: the probe engine shared by every kind: configuration checks and
 * copies, the interval / timeout / run-now timers, the UP/DOWN state machine
 * with its failure threshold, and the result callback. The kinds live in
 * probe_net.c (TCP), probe_http.c (HTTP over libcurl), probe_exec.c (check
 * programs) and probe_local.c (process, file, filesystem, metric). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heal/probe_int.h"

static const char *const kind_names[HEAL_PT_COUNT] = {
    "process", "tcp", "http", "exec", "file", "fs", "metric",
};

const char *heal_probe_type_name(heal_probe_type k)
{
    return (unsigned)k < HEAL_PT_COUNT ? kind_names[k] : NULL;
}

int heal_probe_type_parse(const char *s)
{
    for (int i = 0; s && i < HEAL_PT_COUNT; i++)
        if (strcmp(s, kind_names[i]) == 0)
            return i;
    return -1;
}

const char *heal_probe_state_name(heal_probe_state s)
{
    switch (s) {
    case HEAL_PROBE_UP: return "up";
    case HEAL_PROBE_DOWN: return "down";
    default: return "unknown";
    }
}

const char *heal_probe_op_name(heal_probe_op op)
{
    static const char *const n[] = {">", ">=", "<", "<=", "==", "!="};
    return (unsigned)op <= HEAL_OP_NE ? n[op] : "?";
}

const char *probe_uv_err(int uverr)
{
    /* On unix libuv's errors are -errno, except the getaddrinfo ones. */
    if (uverr < 0 && uverr > -1000)
        return strerror(-uverr);
    return uv_strerror(uverr);
}

void probe_first_line(const char *s, size_t n, char *dst, size_t cap)
{
    size_t i = 0, j = 0;
    while (i < n && (s[i] == '\n' || s[i] == '\r' || s[i] == ' ' || s[i] == '\t'))
        i++;
    for (; i < n && s[i] != '\n' && s[i] != '\r' && j + 1 < cap; i++)
        dst[j++] = (unsigned char)s[i] < 0x20 ? ' ' : s[i];
    if (cap)
        dst[j] = 0;
}

double probe_elapsed_ms(const heal_probe *p)
{
    return (double)(core_mono_ns() - p->start_ns) / 1e6;
}

/* ---- configuration ---------------------------------------------------------- */

static int dupstr(const char **dst, const char *src)
{
    if (!src) {
        *dst = NULL;
        return 0;
    }
    char *c = strdup(src);
    if (!c)
        return -ENOMEM;
    *dst = c;
    return 0;
}

static void free_copies(heal_probe *p)
{
    heal_probe_config *c = &p->cfg;
    const char **strs[] = {&c->name, &c->process.comm, &c->tcp.host, &c->http.url,
                           &c->http.body_regex, &c->exec.cwd, &c->file.path, &c->file.sha256,
                           &c->fs.path, &c->metric.name, &c->metric.labels};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        free((char *)*strs[i]);
        *strs[i] = NULL;
    }
    if (p->argv) {
        for (char **a = p->argv; *a; a++)
            free(*a);
        free(p->argv);
        p->argv = NULL;
    }
    c->exec.argv = NULL;
}

static int copy_config(heal_probe *p, const heal_probe_config *in)
{
    heal_probe_config *c = &p->cfg;
    *c = *in;
    /* Clear every string first so a failed copy frees only what was made. */
    c->name = c->process.comm = c->tcp.host = c->http.url = c->http.body_regex = NULL;
    c->exec.cwd = c->file.path = c->file.sha256 = c->fs.path = NULL;
    c->metric.name = c->metric.labels = NULL;
    c->exec.argv = NULL;
    int rc = 0;
    rc |= dupstr(&c->name, in->name ? in->name : heal_probe_type_name(in->type));
    rc |= dupstr(&c->process.comm, in->process.comm);
    rc |= dupstr(&c->tcp.host, in->tcp.host);
    rc |= dupstr(&c->http.url, in->http.url);
    rc |= dupstr(&c->http.body_regex, in->http.body_regex);
    rc |= dupstr(&c->exec.cwd, in->exec.cwd);
    rc |= dupstr(&c->file.path, in->file.path);
    rc |= dupstr(&c->file.sha256, in->file.sha256);
    rc |= dupstr(&c->fs.path, in->fs.path);
    rc |= dupstr(&c->metric.name, in->metric.name);
    rc |= dupstr(&c->metric.labels, in->metric.labels ? in->metric.labels : "");
    if (rc)
        return -ENOMEM;
    if (in->exec.argv) {
        size_t n = 0;
        while (in->exec.argv[n])
            n++;
        p->argv = calloc(n + 1, sizeof *p->argv);
        if (!p->argv)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++)
            if (!(p->argv[i] = strdup(in->exec.argv[i])))
                return -ENOMEM;
        c->exec.argv = (const char *const *)p->argv;
    }
    if (c->threshold <= 0)
        c->threshold = 1;
    return 0;
}

static int kind_init(heal_probe *p, char *err, size_t errlen)
{
    switch (p->cfg.type) {
    case HEAL_PT_PROCESS: return probe_process_init(p, err, errlen);
    case HEAL_PT_TCP: return probe_tcp_init(p, err, errlen);
    case HEAL_PT_HTTP: return probe_http_init(p, err, errlen);
    case HEAL_PT_EXEC: return probe_exec_init(p, err, errlen);
    case HEAL_PT_FILE: return probe_file_init(p, err, errlen);
    case HEAL_PT_FS: return probe_fs_init(p, err, errlen);
    case HEAL_PT_METRIC: return probe_metric_init(p, err, errlen);
    default:
        snprintf(err, errlen, "probe: unknown type %d", (int)p->cfg.type);
        return -EINVAL;
    }
}

static void kind_fini(heal_probe *p)
{
    if (p->cfg.type == HEAL_PT_HTTP)
        probe_http_fini(p);
    if (p->re) {
        pcre2_code_free(p->re);
        p->re = NULL;
    }
}

/* ---- checks and the state machine -------------------------------------------- */

static void check_begin(heal_probe *p)
{
    p->checking = true;
    p->start_ns = core_mono_ns();
    switch (p->cfg.type) {
    case HEAL_PT_PROCESS: probe_process_start(p); break;
    case HEAL_PT_TCP: probe_tcp_start(p); break;
    case HEAL_PT_HTTP: probe_http_start(p); break;
    case HEAL_PT_EXEC: probe_exec_start(p); break;
    case HEAL_PT_FILE: probe_file_start(p); break;
    case HEAL_PT_FS: probe_fs_start(p); break;
    case HEAL_PT_METRIC: probe_metric_start(p); break;
    default: break;
    }
    /* p may be gone here (a synchronous check's callback may free it). */
}

static void abandon_current(heal_probe *p)
{
    probe_attempt *a = p->cur;
    p->cur = NULL;
    if (a) {
        a->probe = NULL;
        a->abort(a);
    }
    p->checking = false;
    uv_timer_stop(&p->timeout);
}

static void on_timeout(uv_timer_t *t)
{
    heal_probe *p = t->data;
    if (!p->checking)
        return;
    abandon_current(p);
    probe_outcome o = {.timed_out = true, .code = -ETIMEDOUT,
                       .latency_ms = (double)p->cfg.timeout_ms};
    snprintf(o.msg, sizeof o.msg, "timeout after %lld ms", (long long)p->cfg.timeout_ms);
    probe_complete(p, &o);
}

static void start_timeout(heal_probe *p)
{
    uv_timer_start(&p->timeout, on_timeout, (uint64_t)p->cfg.timeout_ms, 0);
}

static void run_check(heal_probe *p)
{
    /* The timeout is armed before the kind starts, so an asynchronous kind
     * is bounded; a synchronous one stops it in probe_complete. */
    start_timeout(p);
    check_begin(p);
}

static void on_tick(uv_timer_t *t)
{
    heal_probe *p = t->data;
    if (p->checking || p->now_pending) {
        p->skipped++;
        return;
    }
    run_check(p);
}

static void on_now(uv_timer_t *t)
{
    heal_probe *p = t->data;
    p->now_pending = false;
    if (!p->checking)
        run_check(p);
}

static void probe_destroy(heal_probe *p);

void probe_complete(heal_probe *p, probe_outcome *o)
{
    uv_timer_stop(&p->timeout);
    p->checking = false;
    p->cur = NULL;
    heal_probe_result r = {0};
    r.ok = o->ok;
    r.timed_out = o->timed_out;
    r.code = o->code;
    r.latency_ms = o->latency_ms >= 0 ? o->latency_ms : probe_elapsed_ms(p);
    r.message = o->msg;
    r.output = o->output ? o->output : "";
    r.output_len = o->output ? o->output_len : 0;
    r.prev_state = p->state;
    if (!o->ok && p->start_ns < p->grace_until_ns) {
        log_debug("probe %s: %s (start grace period: not counted)", p->cfg.name, o->msg);
        return;
    }
    if (o->ok) {
        p->grace_until_ns = 0;
        p->fails = 0;
        if (p->state == HEAL_PROBE_DOWN)
            r.transition = HEAL_PROBE_WENT_UP;
        else if (p->state == HEAL_PROBE_UNKNOWN)
            r.transition = HEAL_PROBE_FIRST_UP;
        p->state = HEAL_PROBE_UP;
    } else {
        p->fails++;
        if (p->fails >= p->cfg.threshold && p->state != HEAL_PROBE_DOWN) {
            r.transition = HEAL_PROBE_WENT_DOWN;
            p->state = HEAL_PROBE_DOWN;
        }
    }
    r.consecutive_failures = p->fails;
    r.state = p->state;
    r.seq = ++p->seq;
    r.ts_ms = core_now_ms();
    if (r.transition == HEAL_PROBE_WENT_DOWN || r.transition == HEAL_PROBE_WENT_UP)
        log_info("probe %s: %s (%s)", p->cfg.name, heal_probe_state_name(p->state), o->msg);
    else
        log_debug("probe %s: %s", p->cfg.name, o->msg);
    if (!p->cb)
        return;
    p->in_cb++;
    p->cb(p, &r, p->ud);
    p->in_cb--;
    if (p->freeing && p->in_cb == 0)
        probe_destroy(p);
}

void probe_attempt_report(probe_attempt *a, probe_outcome *o)
{
    heal_probe *p = a->probe;
    if (!p)
        return;
    a->probe = NULL;
    p->cur = NULL;
    probe_complete(p, o);
}

/* ---- public API ------------------------------------------------------------------ */

int heal_probe_new(uv_loop_t *loop, const heal_probe_config *cfg, heal_probe_cb cb, void *ud,
                   heal_probe **out, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = 0;
    *out = NULL;
    if (!loop || !cfg) {
        snprintf(err, errlen, "probe: no loop or configuration");
        return -EINVAL;
    }
    const char *kn = heal_probe_type_name(cfg->type);
    if (!kn) {
        snprintf(err, errlen, "probe: unknown type %d", (int)cfg->type);
        return -EINVAL;
    }
    if (cfg->interval_ms <= 0 || cfg->timeout_ms <= 0) {
        snprintf(err, errlen, "%s probe: interval and timeout must be > 0", kn);
        return -EINVAL;
    }
    if (cfg->timeout_ms >= cfg->interval_ms) {
        snprintf(err, errlen, "%s probe: timeout (%lld ms) must be shorter than the interval (%lld ms)",
                 kn, (long long)cfg->timeout_ms, (long long)cfg->interval_ms);
        return -EINVAL;
    }
    if (cfg->threshold < 0) {
        snprintf(err, errlen, "%s probe: threshold must be >= 1", kn);
        return -EINVAL;
    }
    heal_probe *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "probe: out of memory");
        return -ENOMEM;
    }
    p->loop = loop;
    p->cb = cb;
    p->ud = ud;
    p->metric_id = -1;
    int rc = copy_config(p, cfg);
    if (rc < 0) {
        snprintf(err, errlen, "probe: out of memory");
        free_copies(p);
        free(p);
        return rc;
    }
    rc = kind_init(p, err, errlen);
    if (rc < 0) {
        kind_fini(p);
        free_copies(p);
        free(p);
        return rc;
    }
    uv_timer_t *timers[] = {&p->tick, &p->timeout, &p->now};
    for (int i = 0; i < 3; i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = p;
        p->open_handles++;
    }
    *out = p;
    return 0;
}

int heal_probe_start(heal_probe *p)
{
    if (!p || p->freeing)
        return -EINVAL;
    if (p->started)
        return 0;
    p->started = true;
    return uv_timer_start(&p->tick, on_tick, 0, (uint64_t)p->cfg.interval_ms);
}

int heal_probe_grace(heal_probe *p, int64_t ms)
{
    if (!p || p->freeing || ms < 0)
        return -EINVAL;
    p->grace_until_ns = core_mono_ns() + ms * 1000000;
    if (!p->started)
        return 0;
    return uv_timer_start(&p->tick, on_tick, (uint64_t)ms, (uint64_t)p->cfg.interval_ms);
}

void heal_probe_stop(heal_probe *p)
{
    if (!p)
        return;
    p->started = false;
    uv_timer_stop(&p->tick);
    uv_timer_stop(&p->now);
    p->now_pending = false;
    abandon_current(p);
}

int heal_probe_run_now(heal_probe *p)
{
    if (!p || p->freeing)
        return -EINVAL;
    if (p->checking || p->now_pending)
        return -EBUSY;
    p->now_pending = true;
    /* Started from the next loop iteration, never from inside the caller
     * (a callback calling run_now must not recurse). */
    return uv_timer_start(&p->now, on_now, 0, 0);
}

static void on_closed(uv_handle_t *h)
{
    heal_probe *p = h->data;
    if (--p->open_handles > 0)
        return;
    kind_fini(p);
    free_copies(p);
    free(p);
}

static void probe_destroy(heal_probe *p)
{
    uv_close((uv_handle_t *)&p->tick, on_closed);
    uv_close((uv_handle_t *)&p->timeout, on_closed);
    uv_close((uv_handle_t *)&p->now, on_closed);
}

void heal_probe_free(heal_probe *p)
{
    if (!p || p->freeing)
        return;
    heal_probe_stop(p);
    p->freeing = true;
    if (p->in_cb == 0)
        probe_destroy(p);
}

heal_probe_state heal_probe_get_state(const heal_probe *p)
{
    return p->state;
}

int heal_probe_failures(const heal_probe *p)
{
    return p->fails;
}

uint64_t heal_probe_skipped(const heal_probe *p)
{
    return p->skipped;
}

const heal_probe_config *heal_probe_get_config(const heal_probe *p)
{
    return &p->cfg;
}
