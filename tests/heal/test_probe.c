/* test_probe.c: unit tests of the heal probes (src/heal/probe*.c) against
 * real things over loopback: an HTTP server thread written here (status,
 * body, delay, or never answering), TCP listeners (refused, full backlog),
 * real check programs, real files and the test's temp filesystem, a real
 * memory store, and children this test forks and kills. Every wait is the
 * libuv loop run until a condition or a deadline; nothing sleeps to
 * synchronise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heal/probe.h"

/* ---- a tiny HTTP server on a thread -------------------------------------------------- */

typedef struct srv {
    int lfd, port;
    int stop[2];
    pthread_t th;
    pthread_mutex_t mu;
    int status;
    char body[512];
    int delay_ms;
    bool hang; /* read the request, never answer */
    int held[32];
    int nheld;
    atomic_int requests;
} srv;

static void srv_set(srv *s, int status, const char *body, int delay_ms, bool hang)
{
    pthread_mutex_lock(&s->mu);
    s->status = status;
    snprintf(s->body, sizeof s->body, "%s", body);
    s->delay_ms = delay_ms;
    s->hang = hang;
    pthread_mutex_unlock(&s->mu);
}

/* Waits until fd is readable or the stop pipe fires; 1 readable, 0 timeout, -1 stop. */
static int srv_wait(srv *s, int fd, int timeout_ms)
{
    struct pollfd pf[2] = {{.fd = s->stop[0], .events = POLLIN}, {.fd = fd, .events = POLLIN}};
    int n = poll(pf, fd >= 0 ? 2 : 1, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    if (pf[0].revents)
        return -1;
    return n > 0 ? 1 : 0;
}

static void *srv_main(void *arg)
{
    srv *s = arg;
    for (;;) {
        int w = srv_wait(s, s->lfd, -1);
        if (w < 0)
            break;
        if (w == 0)
            continue;
        int c = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        char req[4096];
        size_t len = 0;
        req[0] = 0;
        bool stop = false;
        while (!strstr(req, "\r\n\r\n") || len == 0) {
            w = srv_wait(s, c, 5000);
            if (w <= 0) {
                stop = w < 0;
                break;
            }
            ssize_t n = recv(c, req + len, sizeof req - 1 - len, 0);
            if (n <= 0)
                break;
            len += (size_t)n;
            req[len] = 0;
            if (len >= sizeof req - 1 || req[0] == 0x16) /* a TLS hello: answer in plain HTTP */
                break;
        }
        atomic_fetch_add(&s->requests, 1);
        pthread_mutex_lock(&s->mu);
        int status = s->status, delay = s->delay_ms;
        bool hang = s->hang;
        char body[512];
        snprintf(body, sizeof body, "%s", s->body);
        pthread_mutex_unlock(&s->mu);
        if (stop) {
            close(c);
            break;
        }
        if (hang && s->nheld < 32) {
            s->held[s->nheld++] = c;
            continue;
        }
        if (delay > 0 && srv_wait(s, -1, delay) < 0) {
            close(c);
            break;
        }
        char resp[1024];
        int n = snprintf(resp, sizeof resp,
                         "HTTP/1.1 %d Test\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n%s", status, strlen(body), body);
        ssize_t wr = send(c, resp, (size_t)n, MSG_NOSIGNAL);
        (void)wr;
        close(c);
    }
    return NULL;
}

static int listen_loopback(int backlog, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    if (backlog >= 0)
        assert_int_equal(listen(fd, backlog), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static srv *srv_start(void)
{
    srv *s = calloc(1, sizeof *s);
    assert_non_null(s);
    pthread_mutex_init(&s->mu, NULL);
    s->lfd = listen_loopback(64, &s->port);
    assert_int_equal(pipe2(s->stop, O_CLOEXEC), 0);
    srv_set(s, 200, "status: ok", 0, false);
    assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
    return s;
}

static void srv_stop(srv *s)
{
    if (!s)
        return;
    ssize_t w = write(s->stop[1], "x", 1);
    (void)w;
    pthread_join(s->th, NULL);
    for (int i = 0; i < s->nheld; i++)
        close(s->held[i]);
    close(s->lfd);
    close(s->stop[0]);
    close(s->stop[1]);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- fixture: a loop, a result recorder, things to clean up ------------------------------ */

#define NREC 64

typedef struct rec {
    int n;
    bool ok[NREC], to[NREC];
    int code[NREC], fails[NREC];
    double lat[NREC];
    char msg[NREC][HEAL_PROBE_MSG_MAX];
    char out[NREC][512];
    heal_probe_state st[NREC];
    heal_probe_transition tr[NREC];
    bool free_in_cb;
} rec;

typedef struct fx {
    uv_loop_t loop;
    uv_timer_t guard; /* unref'd: wakes uv_run(ONCE) so deadlines are checked */
    heal_probe *p;
    rec r;
    srv *s;
    pid_t child;
    int fds[8];
    int nfds;
    char dir[64];
    mem_t *mem;
} fx;

static void on_guard(uv_timer_t *t)
{
    (void)t;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    core_log_setup(CORE_LOG_ERR, 0);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->guard);
    uv_timer_start(&f->guard, on_guard, 50, 50);
    uv_unref((uv_handle_t *)&f->guard);
    snprintf(f->dir, sizeof f->dir, "/tmp/ippoc-probetest-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void drain(fx *f)
{
    int64_t deadline = core_mono_ms() + 10000;
    while (uv_loop_alive(&f->loop) && core_mono_ms() < deadline)
        uv_run(&f->loop, UV_RUN_ONCE);
}

static int teardown(void **state)
{
    fx *f = *state;
    heal_probe_free(f->p);
    f->p = NULL;
    drain(f); /* probes close first, while the guard still wakes the loop */
    uv_close((uv_handle_t *)&f->guard, NULL);
    drain(f);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    srv_stop(f->s);
    if (f->child > 0) {
        kill(f->child, SIGKILL);
        waitpid(f->child, NULL, 0);
    }
    for (int i = 0; i < f->nfds; i++)
        close(f->fds[i]);
    if (f->mem)
        mem_close(f->mem);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void on_result(heal_probe *p, const heal_probe_result *r, void *ud)
{
    fx *f = ud;
    rec *x = &f->r;
    int i = x->n < NREC ? x->n : NREC - 1;
    x->ok[i] = r->ok;
    x->to[i] = r->timed_out;
    x->code[i] = r->code;
    x->fails[i] = r->consecutive_failures;
    x->lat[i] = r->latency_ms;
    x->st[i] = r->state;
    x->tr[i] = r->transition;
    snprintf(x->msg[i], sizeof x->msg[i], "%s", r->message);
    size_t n = r->output_len < sizeof x->out[i] - 1 ? r->output_len : sizeof x->out[i] - 1;
    memcpy(x->out[i], r->output, n);
    x->out[i][n] = 0;
    x->n++;
    if (x->free_in_cb) {
        heal_probe_free(p);
        f->p = NULL;
    }
}

/* Runs the loop until at least n results or the deadline (fails then). */
static void wait_results(fx *f, int n, int timeout_ms)
{
    int64_t deadline = core_mono_ms() + timeout_ms;
    while (f->r.n < n && core_mono_ms() < deadline)
        uv_run(&f->loop, UV_RUN_ONCE);
    if (f->r.n < n)
        fail_msg("waited %d ms for %d results, got %d", timeout_ms, n, f->r.n);
}

static void make(fx *f, const heal_probe_config *c)
{
    char err[512] = "";
    int rc = heal_probe_new(&f->loop, c, on_result, f, &f->p, err, sizeof err);
    if (rc != 0)
        fail_msg("heal_probe_new: %d %s", rc, err);
}

/* One check through run_now; returns the index of its result. */
static int check(fx *f)
{
    int i = f->r.n;
    assert_int_equal(heal_probe_run_now(f->p), 0);
    wait_results(f, i + 1, 10000);
    return i;
}

static heal_probe_config base(heal_probe_type k)
{
    heal_probe_config c = {.type = k, .interval_ms = 2000, .timeout_ms = 1000, .threshold = 1};
    return c;
}

static void new_fails(heal_probe_config *c, const char *want)
{
    char err[512] = "";
    heal_probe *p = NULL;
    uv_loop_t loop;
    uv_loop_init(&loop);
    int rc = heal_probe_new(&loop, c, NULL, NULL, &p, err, sizeof err);
    assert_int_equal(rc, -EINVAL);
    assert_null(p);
    if (!strstr(err, want))
        fail_msg("error '%s' does not say '%s'", err, want);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- configuration ---------------------------------------------------------------------- */

static void test_config_errors(void **state)
{
    (void)state;
    heal_probe_config c = base(HEAL_PT_TCP);
    c.tcp.host = "127.0.0.1";
    c.tcp.port = 80;
    c.timeout_ms = 2000;
    new_fails(&c, "shorter than the interval");
    c = base(HEAL_PT_TCP);
    c.tcp.host = "127.0.0.1";
    new_fails(&c, "port 0 out of range");
    c = base(HEAL_PT_HTTP);
    c.http.url = "http://127.0.0.1:1/";
    c.http.body_regex = "ok(";
    new_fails(&c, "missing closing parenthesis");
    c.http.body_regex = NULL;
    c.http.url = "ftp://127.0.0.1/";
    new_fails(&c, "only http:// and https://");
    c.http.url = "http://127.0.0.1/";
    c.http.expect_code = 42;
    new_fails(&c, "out of range 100..599");
    c = base(HEAL_PT_FILE);
    c.file.path = "/x";
    c.file.sha256 = "abc";
    new_fails(&c, "not 64 hex digits");
    c = base(HEAL_PT_FS);
    c.fs.path = "/";
    new_fails(&c, "max used percent");
    c = base(HEAL_PT_EXEC);
    new_fails(&c, "no program");
    c = base(HEAL_PT_PROCESS);
    new_fails(&c, "pid callback or a comm");
    c = base(HEAL_PT_METRIC);
    new_fails(&c, "no memory store");
    assert_string_equal(heal_probe_type_name(HEAL_PT_FS), "fs");
    assert_int_equal(heal_probe_type_parse("http"), HEAL_PT_HTTP);
    assert_int_equal(heal_probe_type_parse("nope"), -1);
}

/* ---- HTTP -------------------------------------------------------------------------------------- */

static heal_probe_config http_cfg(fx *f, char *url, size_t n, const char *path)
{
    snprintf(url, n, "http://127.0.0.1:%d%s", f->s->port, path);
    heal_probe_config c = base(HEAL_PT_HTTP);
    c.http.url = url;
    return c;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void test_http_ok_and_latency(void **state)
{
    fx *f = *state;
    f->s = srv_start();
    char url[128];
    heal_probe_config c = http_cfg(f, url, sizeof url, "/health");
    c.http.body_regex = "status: (ok|fine)";
    make(f, &c);
    int i = check(f);
    assert_true(f->r.ok[i]);
    assert_int_equal(f->r.code[i], 200);
    assert_non_null(strstr(f->r.msg[i], "HTTP 200 after"));
    assert_string_equal(f->r.out[i], "status: ok");
    assert_int_equal(f->r.st[i], HEAL_PROBE_UP);
    assert_int_equal(f->r.tr[i], HEAL_PROBE_FIRST_UP);
    /* Loopback check latency over 40 checks (curl's total time, and the
     * wall time from run_now to the callback). */
    double lat[40], wall[40];
    for (int k = 0; k < 40; k++) {
        int64_t t0 = core_mono_ns();
        int j = check(f);
        wall[k] = (double)(core_mono_ns() - t0) / 1e6;
        assert_true(f->r.ok[j]);
        lat[k] = f->r.lat[j];
    }
    assert_int_equal(atomic_load(&f->s->requests), 41); /* each check reached the server */
    qsort(lat, 40, sizeof lat[0], cmp_double);
    /* A name, resolved by libcurl's threaded resolver. */
    heal_probe_free(f->p);
    snprintf(url, sizeof url, "http://localhost:%d/health", f->s->port);
    make(f, &c);
    i = check(f);
    if (!f->r.ok[i])
        fail_msg("%s", f->r.msg[i]);
    qsort(wall, 40, sizeof wall[0], cmp_double);
    printf("# http loopback check: latency median %.3f ms p95 %.3f ms; run_now->callback median %.3f ms p95 %.3f ms\n",
           lat[20], lat[37], wall[20], wall[37]);
    assert_true(lat[20] < 100);
}

static void test_http_status_class_and_code(void **state)
{
    fx *f = *state;
    f->s = srv_start();
    srv_set(f->s, 503, "busy", 0, false);
    char url[128];
    heal_probe_config c = http_cfg(f, url, sizeof url, "/");
    make(f, &c);
    int i = check(f);
    assert_false(f->r.ok[i]);
    assert_int_equal(f->r.code[i], 503);
    assert_true(strncmp(f->r.msg[i], "HTTP 503 after ", 15) == 0);
    assert_non_null(strstr(f->r.msg[i], " ms"));
    assert_int_equal(f->r.st[i], HEAL_PROBE_DOWN);
    assert_int_equal(f->r.tr[i], HEAL_PROBE_WENT_DOWN);
    heal_probe_free(f->p);
    /* An exact code, and a class. */
    c.http.expect_code = 503;
    make(f, &c);
    i = check(f);
    assert_true(f->r.ok[i]);
    heal_probe_free(f->p);
    c.http.expect_code = 0;
    c.http.expect_class = 5;
    make(f, &c);
    i = check(f);
    assert_true(f->r.ok[i]);
    srv_set(f->s, 204, "", 0, false);
    i = check(f);
    assert_false(f->r.ok[i]);
    assert_true(strncmp(f->r.msg[i], "HTTP 204 after", 14) == 0);
    heal_probe_free(f->p);
    c.http.expect_class = 0; /* a range, as the rule language writes it */
    c.http.status_min = 200;
    c.http.status_max = 399;
    make(f, &c);
    i = check(f);
    assert_true(f->r.ok[i]);
    srv_set(f->s, 404, "", 0, false);
    i = check(f);
    assert_false(f->r.ok[i]);
}

static void test_http_body_regex(void **state)
{
    fx *f = *state;
    f->s = srv_start();
    srv_set(f->s, 200, "status: degraded", 0, false);
    char url[128];
    heal_probe_config c = http_cfg(f, url, sizeof url, "/");
    c.http.body_regex = "ok";
    make(f, &c);
    int i = check(f);
    assert_false(f->r.ok[i]);
    assert_non_null(strstr(f->r.msg[i], "body does not match /ok/"));
    assert_string_equal(f->r.out[i], "status: degraded");
    srv_set(f->s, 200, "all ok here", 0, false);
    i = check(f);
    assert_true(f->r.ok[i]);
}

static void test_http_max_latency(void **state)
{
    fx *f = *state;
    f->s = srv_start();
    srv_set(f->s, 200, "ok", 150, false);
    char url[128];
    heal_probe_config c = http_cfg(f, url, sizeof url, "/");
    c.http.max_latency_ms = 50;
    make(f, &c);
    int i = check(f);
    assert_false(f->r.ok[i]);
    assert_false(f->r.to[i]);
    assert_true(f->r.lat[i] >= 150);
    assert_non_null(strstr(f->r.msg[i], "over max 50 ms"));
    srv_set(f->s, 200, "ok", 0, false);
    i = check(f);
    assert_true(f->r.ok[i]);
}

static void test_http_timeout(void **state)
{
    fx *f = *state;
    f->s = srv_start();
    srv_set(f->s, 200, "ok", 0, true);
    char url[128];
    heal_probe_config c = http_cfg(f, url, sizeof url, "/");
    c.timeout_ms = 200;
    c.interval_ms = 1000;
    make(f, &c);
    int64_t t0 = core_mono_ms();
    int i = check(f);
    int64_t took = core_mono_ms() - t0;
    assert_false(f->r.ok[i]);
    assert_true(f->r.to[i]);
    assert_string_equal(f->r.msg[i], "timeout after 200 ms");
    assert_true(took >= 195 && took < 1000);
}

static void test_http_refused(void **state)
{
    fx *f = *state;
    int port;
    f->fds[f->nfds++] = listen_loopback(-1, &port); /* bound, not listening: RST */
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    heal_probe_config c = base(HEAL_PT_HTTP);
    c.http.url = url;
    make(f, &c);
    int i = check(f);
    assert_false(f->r.ok[i]);
    assert_string_equal(f->r.msg[i], "connect: Connection refused");
    assert_int_equal(f->r.code[i], -ECONNREFUSED);
}

static void test_http_https_to_plain(void **state)
{
    fx *f = *state;
    f->s = srv_start();
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/", f->s->port);
    heal_probe_config c = base(HEAL_PT_HTTP);
    c.http.url = url;
    make(f, &c);
    int i = check(f);
    assert_false(f->r.ok[i]);
    assert_false(f->r.to[i]);
    assert_non_null(strstr(f->r.msg[i], "SSL"));
}

static void test_http_threshold_and_recovery(void **state)
{
    fx *f = *state;
    f->s = srv_start();
    srv_set(f->s, 500, "err", 0, false);
    char url[128];
    heal_probe_config c = http_cfg(f, url, sizeof url, "/");
    c.threshold = 2;
    c.interval_ms = 100;
    c.timeout_ms = 80;
    make(f, &c);
    assert_int_equal(heal_probe_start(f->p), 0);
    assert_int_equal(heal_probe_start(f->p), 0); /* idempotent */
    wait_results(f, 1, 5000);
    assert_false(f->r.ok[0]);
    assert_int_equal(f->r.fails[0], 1);
    assert_int_equal(f->r.st[0], HEAL_PROBE_UNKNOWN);
    assert_int_equal(f->r.tr[0], HEAL_PROBE_SAME);
    wait_results(f, 2, 5000);
    assert_false(f->r.ok[1]);
    assert_int_equal(f->r.fails[1], 2);
    assert_int_equal(f->r.st[1], HEAL_PROBE_DOWN);
    assert_int_equal(f->r.tr[1], HEAL_PROBE_WENT_DOWN);
    srv_set(f->s, 200, "ok", 0, false);
    /* The next good check recovers (a check in flight may still see 500). */
    int64_t deadline = core_mono_ms() + 5000;
    while (core_mono_ms() < deadline && !(f->r.n > 2 && f->r.ok[f->r.n - 1]))
        uv_run(&f->loop, UV_RUN_ONCE);
    int last = f->r.n - 1;
    assert_true(f->r.ok[last]);
    assert_int_equal(f->r.tr[last], HEAL_PROBE_WENT_UP);
    assert_int_equal(f->r.st[last], HEAL_PROBE_UP);
    assert_int_equal(f->r.fails[last], 0);
    for (int k = 2; k < last; k++)
        assert_int_equal(f->r.tr[k], HEAL_PROBE_SAME);
    heal_probe_stop(f->p);
    int n = f->r.n;
    /* Stopped: run the loop a while (bounded by the guard timer), no more results. */
    int64_t until = core_mono_ms() + 300;
    while (core_mono_ms() < until)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->r.n, n);
}

static void test_http_not_started_twice(void **state)
{
    fx *f = *state;
    f->s = srv_start();
    srv_set(f->s, 200, "ok", 0, true); /* every check runs until its timeout */
    char url[128];
    heal_probe_config c = http_cfg(f, url, sizeof url, "/");
    c.interval_ms = 300;
    c.timeout_ms = 250;
    make(f, &c);
    assert_int_equal(heal_probe_start(f->p), 0);
    /* Once the first check is in flight, run_now is refused. */
    int64_t deadline = core_mono_ms() + 5000;
    while (atomic_load(&f->s->requests) < 1 && core_mono_ms() < deadline)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(heal_probe_run_now(f->p), -EBUSY);
    wait_results(f, 2, 5000);
    assert_true(f->r.to[0] && f->r.to[1]);
    assert_true(atomic_load(&f->s->requests) <= 3);
}

static void test_free_in_callback(void **state)
{
    fx *f = *state;
    f->s = srv_start();
    char url[128];
    heal_probe_config c = http_cfg(f, url, sizeof url, "/");
    make(f, &c);
    f->r.free_in_cb = true;
    assert_int_equal(heal_probe_run_now(f->p), 0);
    wait_results(f, 1, 5000);
    assert_null(f->p);
    drain(f); /* ASan: nothing used after free */
}

/* ---- TCP ------------------------------------------------------------------------------------- */

/* After a (re)start: no failure is reported until the first scheduled check
 * after the grace; a passing check is reported at once. */
static void test_grace(void **state)
{
    fx *f = *state;
    int open_port, closed_port;
    f->fds[f->nfds++] = listen_loopback(16, &open_port);
    f->fds[f->nfds++] = listen_loopback(-1, &closed_port);
    heal_probe_config c = base(HEAL_PT_TCP);
    c.tcp.host = "127.0.0.1";
    c.tcp.port = closed_port;
    c.interval_ms = 100;
    c.timeout_ms = 50;
    make(f, &c);
    assert_int_equal(heal_probe_start(f->p), 0);
    int64_t t0 = core_mono_ms();
    assert_int_equal(heal_probe_grace(f->p, 400), 0);
    for (int k = 0; k < 3; k++) { /* checks asked for during the grace fail silently */
        int64_t until = core_mono_ms() + 60;
        heal_probe_run_now(f->p);
        while (core_mono_ms() < until)
            uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(f->r.n, 0);
    assert_int_equal(heal_probe_failures(f->p), 0);
    wait_results(f, 1, 3000);
    assert_true(core_mono_ms() - t0 >= 400);
    assert_false(f->r.ok[0]);
    assert_int_equal(f->r.fails[0], 1);
    heal_probe_free(f->p);

    c.tcp.port = open_port;
    make(f, &c);
    assert_int_equal(heal_probe_grace(f->p, 5000), 0);
    int i = check(f);
    assert_true(f->r.ok[i]);
    assert_int_equal(heal_probe_grace(f->p, -1), -EINVAL);
}


static void test_tcp(void **state)
{
    fx *f = *state;
    int open_port, closed_port, full_port;
    f->fds[f->nfds++] = listen_loopback(16, &open_port);
    f->fds[f->nfds++] = listen_loopback(-1, &closed_port);
    heal_probe_config c = base(HEAL_PT_TCP);
    c.tcp.host = "127.0.0.1";
    c.tcp.port = open_port;
    make(f, &c);
    int i = check(f);
    assert_true(f->r.ok[i]);
    assert_non_null(strstr(f->r.msg[i], "connected to 127.0.0.1:"));
    heal_probe_free(f->p);

    c.tcp.host = "localhost"; /* through uv_getaddrinfo */
    make(f, &c);
    i = check(f);
    assert_true(f->r.ok[i]);
    heal_probe_free(f->p);

    c.tcp.host = "127.0.0.1";
    c.tcp.port = closed_port;
    make(f, &c);
    i = check(f);
    assert_false(f->r.ok[i]);
    assert_string_equal(f->r.msg[i], "connect: Connection refused");
    heal_probe_free(f->p);

    /* A listener with backlog 0 that never accepts: once its queue is full,
     * the kernel drops further SYNs, so a connect hangs until our timeout. */
    int lfd = listen_loopback(0, &full_port);
    f->fds[f->nfds++] = lfd;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)full_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int k = 0; k < 4 && f->nfds < 8; k++) {
        int cfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int rc = connect(cfd, (struct sockaddr *)&sa, sizeof sa);
        assert_true(rc == 0 || errno == EINPROGRESS);
        f->fds[f->nfds++] = cfd;
    }
    c.tcp.port = full_port;
    c.timeout_ms = 300;
    make(f, &c);
    i = check(f);
    assert_false(f->r.ok[i]);
    assert_true(f->r.to[i]);
    assert_string_equal(f->r.msg[i], "timeout after 300 ms");
}

/* ---- EXEC ------------------------------------------------------------------------------------ */

static void test_exec(void **state)
{
    fx *f = *state;
    const char *okv[] = {"/bin/sh", "-c", "echo all good; exit 0", NULL};
    heal_probe_config c = base(HEAL_PT_EXEC);
    c.exec.argv = okv;
    make(f, &c);
    int i = check(f);
    assert_true(f->r.ok[i]);
    assert_string_equal(f->r.msg[i], "exit 0: all good");
    assert_string_equal(f->r.out[i], "all good\n");
    heal_probe_free(f->p);

    const char *badv[] = {"/bin/sh", "-c", "echo 'disk on fire' >&2; echo more; exit 2", NULL};
    c.exec.argv = badv;
    make(f, &c);
    i = check(f);
    assert_false(f->r.ok[i]);
    assert_int_equal(f->r.code[i], 2);
    assert_string_equal(f->r.msg[i], "exit 2: disk on fire");
    assert_string_equal(f->r.out[i], "disk on fire\nmore\n");
    heal_probe_free(f->p);

    c.exec.expect_exit = 2;
    make(f, &c);
    i = check(f);
    assert_true(f->r.ok[i]);
    heal_probe_free(f->p);
    c.exec.expect_exit = 0;

    /* Output beyond 4 KiB is read and dropped, not kept. */
    const char *bigv[] = {"/bin/sh", "-c", "i=0; while [ $i -lt 2000 ]; do echo 0123456789; i=$((i+1)); done", NULL};
    c.exec.argv = bigv;
    make(f, &c);
    i = check(f);
    assert_true(f->r.ok[i]);
    heal_probe_free(f->p);

    const char *nov[] = {"/nonexistent/check-program", NULL};
    c.exec.argv = nov;
    make(f, &c);
    i = check(f);
    assert_false(f->r.ok[i]);
    assert_non_null(strstr(f->r.msg[i], "No such file or directory"));
}

static void test_exec_timeout_kills_group(void **state)
{
    fx *f = *state;
    char pidfile[128], script[256];
    snprintf(pidfile, sizeof pidfile, "%s/grandchild.pid", f->dir);
    snprintf(script, sizeof script, "sleep 10 & echo $! > %s; echo started; wait", pidfile);
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    heal_probe_config c = base(HEAL_PT_EXEC);
    c.exec.argv = argv;
    c.timeout_ms = 300;
    make(f, &c);
    int64_t t0 = core_mono_ms();
    int i = check(f);
    assert_true(core_mono_ms() - t0 < 2000);
    assert_false(f->r.ok[i]);
    assert_true(f->r.to[i]);
    assert_string_equal(f->r.msg[i], "timeout after 300 ms");
    heal_probe_free(f->p);
    f->p = NULL;
    drain(f); /* the attempt stays until libuv has reaped the child */
    /* No child of ours is left, not even a zombie. */
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    /* The grandchild (same process group) got SIGKILL too. */
    char buf[32];
    assert_true(core_read_file(pidfile, buf, sizeof buf) > 0);
    pid_t gc = (pid_t)atoi(buf);
    assert_true(gc > 0);
    int64_t deadline = core_mono_ms() + 5000;
    bool gone = false;
    while (!gone && core_mono_ms() < deadline) {
        char path[64], st[512];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)gc);
        const char *rp;
        gone = core_read_file(path, st, sizeof st) <= 0 || ((rp = strrchr(st, ')')) && rp[2] == 'Z');
        if (!gone)
            uv_run(&f->loop, UV_RUN_NOWAIT), sched_yield();
    }
    assert_true(gone);
}

/* ---- FILE ---------------------------------------------------------------------------------- */

static void write_file(const char *path, const char *data)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(data, fp);
    fclose(fp);
}

static void test_file(void **state)
{
    fx *f = *state;
    char path[128], missing[128];
    snprintf(path, sizeof path, "%s/data", f->dir);
    snprintf(missing, sizeof missing, "%s/missing", f->dir);
    write_file(path, "abc");
    heal_probe_config c = base(HEAL_PT_FILE);
    c.file.path = missing;
    make(f, &c);
    int i = check(f);
    assert_false(f->r.ok[i]);
    assert_non_null(strstr(f->r.msg[i], "does not exist"));
    heal_probe_free(f->p);

    c.file.path = path;
    c.file.sha256 = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
    c.file.max_size = 4;
    c.file.max_age_ms = 60000;
    make(f, &c);
    i = check(f);
    if (!f->r.ok[i])
        fail_msg("%s", f->r.msg[i]);
    assert_non_null(strstr(f->r.msg[i], "sha256 matches"));
    heal_probe_free(f->p);

    c.file.max_size = 3; /* size must be < max */
    make(f, &c);
    i = check(f);
    assert_false(f->r.ok[i]);
    assert_non_null(strstr(f->r.msg[i], "is 3 bytes, max 3"));
    heal_probe_free(f->p);

    c.file.max_size = 0;
    c.file.sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
    make(f, &c);
    i = check(f);
    assert_false(f->r.ok[i]);
    assert_non_null(strstr(f->r.msg[i], "sha256 ba7816bf"));
    heal_probe_free(f->p);

    /* An hour old: fails a 10 minute age, passes a 2 hour one. */
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= 3600;
    ts[1] = ts[0];
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
    c.file.sha256 = NULL;
    c.file.max_age_ms = 600000;
    make(f, &c);
    i = check(f);
    assert_false(f->r.ok[i]);
    assert_non_null(strstr(f->r.msg[i], "old, max"));
    heal_probe_free(f->p);
    c.file.max_age_ms = 7200000;
    make(f, &c);
    i = check(f);
    assert_true(f->r.ok[i]);
}

static void test_file_big_checksum(void **state)
{
    fx *f = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/big", f->dir);
    /* 8 MiB of zeros: sha256 known. Hashed in the thread pool. */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 8 << 20), 0);
    close(fd);
    heal_probe_config c = base(HEAL_PT_FILE);
    c.file.path = path;
    c.file.sha256 = "2daeb1f36095b44b318410b3f4e8b5d989dcc7bb023d1426c492dab0a3053e74";
    make(f, &c);
    int i = check(f);
    if (!f->r.ok[i])
        fail_msg("%s", f->r.msg[i]);
}

/* ---- FS ---------------------------------------------------------------------------------------- */

static void test_fs(void **state)
{
    fx *f = *state;
    struct statvfs sv;
    assert_int_equal(statvfs(f->dir, &sv), 0);
    double used = (double)(sv.f_blocks - sv.f_bfree);
    double pct = used * 100.0 / (used + (double)sv.f_bavail);
    double ipct = sv.f_files ? (double)(sv.f_files - sv.f_ffree) * 100.0 / (double)sv.f_files : 0;
    heal_probe_config c = base(HEAL_PT_FS);
    c.fs.path = f->dir;
    c.fs.max_used_percent = pct + 5 > 100 ? 100 : pct + 5;
    make(f, &c);
    int i = check(f);
    if (!f->r.ok[i])
        fail_msg("%s (expected %.1f%%)", f->r.msg[i], pct);
    /* The message carries the same percentage as statvfs gives us. */
    char want[32];
    snprintf(want, sizeof want, "%.0f", pct);
    double got = atof(strstr(f->r.msg[i], ": ") + 2);
    assert_true(fabs(got - pct) < 1.0);
    heal_probe_free(f->p);
    if (pct > 1) {
        c.fs.max_used_percent = pct / 2;
        make(f, &c);
        i = check(f);
        assert_false(f->r.ok[i]);
        assert_non_null(strstr(f->r.msg[i], "% used, max"));
        heal_probe_free(f->p);
    }
    if (sv.f_files && ipct > 0.01) {
        c.fs.max_used_percent = 0;
        c.fs.max_inodes_percent = ipct / 2;
        make(f, &c);
        i = check(f);
        assert_false(f->r.ok[i]);
        assert_non_null(strstr(f->r.msg[i], "inodes used, max"));
        heal_probe_free(f->p);
        c.fs.max_inodes_percent = ipct + 5 > 100 ? 100 : ipct + 5;
        make(f, &c);
        i = check(f);
        assert_true(f->r.ok[i]);
        heal_probe_free(f->p);
    }
    c.fs.path = "/nonexistent/ippoc";
    c.fs.max_used_percent = 50;
    make(f, &c);
    i = check(f);
    assert_false(f->r.ok[i]);
    assert_non_null(strstr(f->r.msg[i], "No such file"));
}

/* ---- METRIC ---------------------------------------------------------------------------------- */

static void test_metric(void **state)
{
    fx *f = *state;
    core_config cfg;
    core_config_defaults(&cfg);
    snprintf(cfg.state_dir, sizeof cfg.state_dir, "%s", f->dir);
    char err[512];
    int orc = mem_open(&f->mem, &cfg, err, sizeof err);
    core_config_free(&cfg);
    assert_int_equal(orc, 0);
    int stale = mem_series(f->mem, "test.stale", "", "", "", MEM_GAUGE);
    int id = mem_series(f->mem, "test.value", "k=\"v\"", "", "", MEM_GAUGE);
    assert_true(stale >= 0 && id >= 0);
    int64_t now = core_now_ms();
    mem_put(f->mem, stale, 1);
    assert_int_equal(mem_tick(f->mem, now - 60000), 0);
    mem_put(f->mem, id, 42);
    assert_int_equal(mem_tick(f->mem, now), 0);

    heal_probe_config c = base(HEAL_PT_METRIC);
    c.metric.mem = f->mem;
    c.metric.name = "test.value";
    c.metric.labels = "k=\"v\"";
    c.metric.op = HEAL_OP_GT;
    c.metric.threshold = 50;
    c.metric.max_age_ms = 10000;
    make(f, &c);
    int i = check(f);
    assert_true(f->r.ok[i]);
    assert_string_equal(f->r.msg[i], "test.value{k=\"v\"} = 42, not > 50");
    heal_probe_free(f->p);

    c.metric.threshold = 40;
    make(f, &c);
    i = check(f);
    assert_false(f->r.ok[i]);
    assert_string_equal(f->r.msg[i], "test.value{k=\"v\"} = 42 > 40");
    heal_probe_free(f->p);

    c.metric.op = HEAL_OP_LE;
    make(f, &c);
    i = check(f);
    assert_true(f->r.ok[i]);
    heal_probe_free(f->p);

    c.metric.name = "test.stale";
    c.metric.labels = NULL;
    make(f, &c);
    i = check(f);
    assert_false(f->r.ok[i]);
    assert_non_null(strstr(f->r.msg[i], "ms old, max 10000 ms"));
    heal_probe_free(f->p);

    c.metric.name = "test.absent";
    make(f, &c);
    i = check(f);
    assert_false(f->r.ok[i]);
    assert_string_equal(f->r.msg[i], "test.absent: no such series");
}

/* ---- PROCESS --------------------------------------------------------------------------------- */

static pid_t child_pid(void *ud)
{
    return ((fx *)ud)->child;
}

static pid_t fork_named(const char *comm)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_NAME, comm);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;)
            pause();
    }
    return pid;
}

/* The child's comm is set after fork: wait (on the loop) until it shows. */
static void wait_comm(fx *f, pid_t pid, const char *comm)
{
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    int64_t deadline = core_mono_ms() + 5000;
    while (core_mono_ms() < deadline) {
        if (core_read_file(path, buf, sizeof buf) > 0 && strncmp(buf, comm, strlen(comm)) == 0)
            return;
        uv_run(&f->loop, UV_RUN_NOWAIT);
        sched_yield();
    }
    fail_msg("child never took comm %s", comm);
}

static void test_process_pid(void **state)
{
    fx *f = *state;
    f->child = fork_named("ippocprobepid");
    heal_probe_config c = base(HEAL_PT_PROCESS);
    c.process.pid_fn = child_pid;
    c.process.pid_ud = f;
    make(f, &c);
    int i = check(f);
    assert_true(f->r.ok[i]);
    /* Killed but not reaped: a zombie is down. */
    assert_int_equal(kill(f->child, SIGKILL), 0);
    siginfo_t si;
    assert_int_equal(waitid(P_PID, (id_t)f->child, &si, WEXITED | WNOWAIT), 0);
    i = check(f);
    assert_false(f->r.ok[i]);
    assert_non_null(strstr(f->r.msg[i], "is a zombie"));
    assert_int_equal(waitpid(f->child, NULL, 0), f->child);
    i = check(f);
    assert_false(f->r.ok[i]);
    assert_non_null(strstr(f->r.msg[i], "not running"));
    f->child = 0;
    i = check(f);
    assert_false(f->r.ok[i]);
    assert_string_equal(f->r.msg[i], "no pid");
}

static void test_process_comm(void **state)
{
    fx *f = *state;
    char comm[16], want[64];
    snprintf(comm, sizeof comm, "ipb%d", (int)getpid()); /* unique across parallel runs */
    snprintf(want, sizeof want, "no process named %s", comm);
    f->child = fork_named(comm);
    wait_comm(f, f->child, comm);
    heal_probe_config c = base(HEAL_PT_PROCESS);
    c.process.comm = comm;
    make(f, &c);
    int i = check(f);
    if (!f->r.ok[i])
        fail_msg("%s", f->r.msg[i]);
    kill(f->child, SIGKILL);
    siginfo_t si;
    assert_int_equal(waitid(P_PID, (id_t)f->child, &si, WEXITED | WNOWAIT), 0);
    i = check(f); /* a zombie does not count */
    assert_false(f->r.ok[i]);
    assert_string_equal(f->r.msg[i], want);
    waitpid(f->child, NULL, 0);
    f->child = 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_ok_and_latency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_status_class_and_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_body_regex, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_max_latency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_https_to_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_threshold_and_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_not_started_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_timeout_kills_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_big_checksum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metric, setup, teardown),
        cmocka_unit_test_setup_teardown(test_process_pid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_process_comm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grace, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
