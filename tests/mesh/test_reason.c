/* test_reason.c: the mesh's reasoning path in one process: two cells over
 * real loopback (UDP membership, the TCP Noise stream), cell A serving
 * through its real llm client whose local model is tests/llm/fakellm.py,
 * cell B without a model asking through its llm's mesh provider. Checks the
 * answer, the redaction before the text left B (B's sent.jsonl and what
 * fakellm received), the counters, a cell of another fleet and garbage on
 * A's TCP port getting nothing, a peer's refusal coming back as a clear
 * error, the size limit, and a clean failure once A is gone. Runs in every
 * tree (the sanitizers watch both threads of each cell). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cellfix.h"

#include "core/core.h"
#include "llm/llm.h"
#include "mesh/identity.h"
#include "mesh/mesh.h"
#include "mesh/stream.h"

#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>

#define DEADLINE_MS CELLFIX_DEADLINE_MS

static char tmp[256];
static pid_t fake_pid = -1;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* fakellm's scenario: every chat request answered with content after delay_ms
 * (written whole, then renamed: fakellm reads it again when it changes). */
static void scenario(const char *content, int delay_ms)
{
    char scen[512], part[520];
    snprintf(scen, sizeof scen, "%s/scenario.json", tmp);
    snprintf(part, sizeof part, "%s.part", scen);
    json_t *s = json_pack("{s:[{s:s, s:[i,i], s:i}]}", "/v1/chat/completions", "content", content, "usage", 30, 7,
                          "delay_ms", delay_ms);
    assert_int_equal(json_dump_file(s, part, 0), 0);
    json_decref(s);
    assert_int_equal(rename(part, scen), 0);
}

/* fakellm.py on a free port, answering every chat request with content. */
static int start_fakellm(const char *content)
{
    char scen[512], rec[512], text[1024];
    snprintf(scen, sizeof scen, "%s/scenario.json", tmp);
    snprintf(rec, sizeof rec, "%s/fake.jsonl", tmp);
    scenario(content, 0);
    const char *src = getenv("IPPOC_SRC");
    char script[512];
    snprintf(script, sizeof script, "%s/tests/llm/fakellm.py", src ? src : ".");
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    fake_pid = fork();
    assert_true(fake_pid >= 0);
    if (fake_pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execlp("python3", "python3", script, "--scenario", scen, "--record", rec, "--port", "0", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    FILE *f = fdopen(pfd[0], "r");
    assert_non_null(f);
    if (!fgets(text, sizeof text, f))
        fail_msg("fakellm did not start (%s)", script);
    fclose(f);
    int port = atoi(text);
    assert_true(port > 0);
    return port;
}

static void stop_fakellm(void)
{
    if (fake_pid > 0) {
        kill(fake_pid, SIGTERM);
        waitpid(fake_pid, NULL, 0);
        fake_pid = -1;
    }
}

static int refuse(void *ud, const char *body, int timeout_ms, char **answer, char *err, size_t errlen)
{
    (void)ud, (void)body, (void)timeout_ms;
    *answer = NULL;
    snprintf(err, errlen, "the model is asleep");
    return -EIO;
}

static int serve_local(void *ud, const char *body, int timeout_ms, char **answer, char *err, size_t errlen)
{
    return llm_complete_local_body(ud, body, timeout_ms, answer, err, errlen);
}

typedef struct {
    mesh_cell *m;
    bool want;
} availability;

static bool available_is(void *arg)
{
    availability *a = arg;
    return mesh_cell_reason_available(a->m) == a->want;
}

static bool wait_available(mesh_cell *m, bool want)
{
    availability a = {m, want};
    return cellfix_wait(available_is, &a);
}

/* A TCP connection to port on loopback. */
static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Moves bytes between fd and st (NULL: only reads) until the peer closes
 * or 5 s pass: true when it closed. *established: st got that far. */
static bool closed_by_peer(int fd, struct mesh_stream *st, bool *established)
{
    uint8_t buf[4096];
    for (int64_t end = core_mono_ms() + 5000; core_mono_ms() < end;) {
        const uint8_t *p;
        size_t n = st ? mesh_stream_pending(st, &p) : 0;
        if (n) {
            ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
            if (w > 0)
                mesh_stream_consume(st, (size_t)w);
        }
        if (st && mesh_stream_established(st))
            *established = true;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0)
            return true;
        if (st)
            mesh_stream_feed(st, buf, (size_t)r);
    }
    return false;
}

/* A cell of another fleet and a stranger sending garbage reach A's TCP
 * port: neither gets an answer, and A keeps serving. */
static void strangers(int port, const char *dir, const char *fleet_dir)
{
    char path[512], err[512];
    mesh_identity_key fk, nk, real;
    snprintf(path, sizeof path, "%s/%s", fleet_dir, MESH_ID_FLEET_KEY_FILE);
    assert_int_equal(mesh_identity_key_load(path, MESH_KEY_FLEET, &real, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/other-fleet.key", dir);
    assert_int_equal(mesh_identity_key_create(path, MESH_KEY_FLEET, &fk, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/x.key", dir);
    assert_int_equal(mesh_identity_key_create(path, MESH_KEY_NODE, &nk, err, sizeof err), 0);
    mesh_identity_cert cert;
    memset(&cert, 0, sizeof cert);
    memcpy(cert.node_pk, nk.pk, MESH_ID_PK_BYTES);
    snprintf(cert.node_id, sizeof cert.node_id, "cell-x");
    cert.roles = MESH_ROLE_ALL;
    cert.not_before = (int64_t)time(NULL) - 60;
    cert.not_after = (int64_t)time(NULL) + 3600;
    assert_int_equal(mesh_identity_cert_sign(&cert, &fk, err, sizeof err), 0);
    /* it trusts A's fleet (so it answers A's handshake) but its own certificate is another fleet's */
    mesh_session_config sc = {.node = &nk, .cert = &cert, .fleet_pk = real.pk};
    struct mesh_stream *st = NULL;
    assert_int_equal(mesh_stream_new(&sc, true, NULL, &st, err, sizeof err), 0);
    int fd = dial(port);
    bool est = false;
    assert_true(closed_by_peer(fd, st, &est)); /* A refuses the foreign certificate and hangs up */
    close(fd);
    mesh_stream_free(st);
    fd = dial(port);
    static const char junk[] = "\x00\x05hello GET / HTTP/1.1\r\n\r\n";
    assert_int_equal(send(fd, junk, sizeof junk, MSG_NOSIGNAL), (ssize_t)sizeof junk);
    assert_true(closed_by_peer(fd, NULL, &est));
    close(fd);
}

typedef struct asker {
    llm *l;
    const llm_request *q;
    int rc;
    pthread_t th;
} asker;

static void *ask_main(void *arg)
{
    asker *k = arg;
    llm_answer a;
    char err[512];
    k->rc = llm_complete(k->l, k->q, &a, err, sizeof err);
    llm_answer_free(&a);
    return NULL;
}

static const llm_request question = {
    .purpose = "diagnose",
    .system = "You diagnose services.",
    .user = "Why is db1.example.com slow? It answers on 10.20.30.40 and mails ops@example.com.",
    .max_tokens = 200,
};

static void test_reason(void **state)
{
    (void)state;
    char fleet[300], da[300], db[300], err[1024], extra[512];
    snprintf(fleet, sizeof fleet, "%s/fleet", tmp);
    snprintf(da, sizeof da, "%s/a", tmp);
    snprintf(db, sizeof db, "%s/b", tmp);
    assert_int_equal(core_mkdir_p(fleet, 0700), 0);
    assert_int_equal(core_mkdir_p(da, 0700), 0);
    assert_int_equal(core_mkdir_p(db, 0700), 0);
    cellfix_token(fleet, da, "cell-a", MESH_ROLE_ALL);
    cellfix_token(fleet, db, "cell-b", MESH_ROLE_TOOL);
    int port = start_fakellm("The disk of <host> is full.");

    /* A: a local model, serving the fleet */
    core_config ca, cb;
    snprintf(extra, sizeof extra, "[llm]\nlocal = http://127.0.0.1:%d/v1\ntimeout = 10s\n", port);
    cellfix_config(&ca, da, NULL, extra);
    llm *la = NULL, *lb = NULL;
    assert_int_equal(llm_new(&ca, da, NULL, NULL, &la, err, sizeof err), 0);
    mesh_cell *a = NULL, *b = NULL;
    mesh_cell_opts oa = {.state_dir = da, .llm = true}, ob = {.state_dir = db};
    if (mesh_cell_new(&oa, &a, err, sizeof err) || mesh_cell_configure(a, &ca, err, sizeof err))
        fail_msg("cell a: %s", err);
    mesh_cell_set_reasoner(a, serve_local, la);
    json_t *st = cellfix_view(mesh_cell_status_json(a));
    const char *listen = json_string_value(json_object_get(st, "listen"));
    char seed[128], listen_copy[64];
    snprintf(listen_copy, sizeof listen_copy, "%s", listen);
    snprintf(seed, sizeof seed, "seeds = %s\n[llm]\nredact_hosts = db1.example.com\ntimeout = 5s\n", listen);
    json_decref(st);

    /* B: no model; its llm asks the mesh */
    cellfix_config(&cb, db, NULL, seed);
    assert_int_equal(llm_new(&cb, db, NULL, NULL, &lb, err, sizeof err), 0);
    assert_false(llm_available(lb));
    if (mesh_cell_new(&ob, &b, err, sizeof err) || mesh_cell_configure(b, &cb, err, sizeof err))
        fail_msg("cell b: %s", err);
    llm_set_remote(lb, mesh_cell_reason, mesh_cell_reason_available, b);
    assert_true(wait_available(b, true));
    assert_true(llm_available(lb));
    assert_false(mesh_cell_reason_available(a)); /* b has no model and no reasoning role */

    /* asked through the mesh, answered by A's model */
    llm_answer ans;
    int rc = llm_complete(lb, &question, &ans, err, sizeof err);
    if (rc)
        fail_msg("llm_complete through the mesh: %s", err);
    assert_string_equal(ans.provider, "mesh");
    assert_string_equal(ans.content, "The disk of <host> is full.");
    assert_int_equal(ans.prompt_tokens, 30);
    llm_answer_free(&ans);

    /* what left B: recorded as "mesh", redacted; what A's model saw: the same text */
    char path[512];
    snprintf(path, sizeof path, "%s/llm/sent.jsonl", db);
    char *sent = slurp(path), *seen;
    assert_non_null(strstr(sent, "\"provider\":\"mesh\""));
    assert_null(strstr(sent, "db1.example.com"));
    assert_null(strstr(sent, "10.20.30.40"));
    assert_null(strstr(sent, "ops@example.com"));
    assert_non_null(strstr(sent, "Why is"));
    snprintf(path, sizeof path, "%s/fake.jsonl", tmp);
    seen = slurp(path);
    assert_non_null(strstr(seen, "Why is <host> slow?"));
    assert_null(strstr(seen, "db1.example.com"));
    assert_null(strstr(seen, "10.20.30.40"));
    assert_null(strstr(seen, "ops@example.com"));
    assert_non_null(strstr(seen, "\"stream\": false"));
    free(sent);
    free(seen);
    assert_int_equal(cellfix_status_int(b, "reasoning", "asked"), 1);
    assert_int_equal(cellfix_status_int(a, "reasoning", "served"), 1);
    assert_int_equal(cellfix_status_int(a, "reasoning", "failed") + cellfix_status_int(b, "reasoning", "failed"), 0);
    char *prom = mesh_cell_prometheus(b);
    assert_non_null(strstr(prom, "ippoc_mesh_reasoning_requests_total{role=\"asked\",outcome=\"ok\"} 1"));
    free(prom);

    /* measured, not asserted: a request through the mesh (connect, Noise XX, certificates, A's model)
     * against the same body straight to A's model */
    int64_t t_mesh = 0, t_direct = 0, worst = 0;
    for (int i = 0; i < 10; i++) {
        int64_t t = core_mono_ms();
        assert_int_equal(llm_complete(lb, &question, &ans, err, sizeof err), 0);
        t = core_mono_ms() - t;
        t_mesh += t;
        worst = t > worst ? t : worst;
        llm_answer_free(&ans);
        char *direct = NULL;
        t = core_mono_ms();
        assert_int_equal(llm_complete_local_body(la, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 0,
                                                 &direct, err, sizeof err),
                         0);
        t_direct += core_mono_ms() - t;
        free(direct);
    }
    printf("# through the mesh: mean %.1f ms (worst %lld ms); straight to the model: mean %.1f ms\n", t_mesh / 10.0,
           (long long)worst, t_direct / 10.0);

    /* four asks at once while A's model takes 500 ms each: A serves them side by side */
    scenario("The disk of <host> is full.", 500);
    asker ks[4];
    int64_t t4 = core_mono_ms();
    for (int i = 0; i < 4; i++) {
        ks[i] = (asker){.l = lb, .q = &question};
        assert_int_equal(pthread_create(&ks[i].th, NULL, ask_main, &ks[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(ks[i].th, NULL);
        assert_int_equal(ks[i].rc, 0);
    }
    t4 = core_mono_ms() - t4;
    printf("# four asks at once, 500 ms each at the model: %lld ms in all\n", (long long)t4);
    assert_true(t4 < 1800); /* one after the other: 2000 ms at least */
    scenario("The disk of <host> is full.", 0);

    /* strangers get nothing; members are still served after them */
    int tcp_port = atoi(strrchr(listen_copy, ':') + 1);
    strangers(tcp_port, tmp, fleet);
    assert_int_equal(llm_complete(lb, &question, &ans, err, sizeof err), 0);
    assert_string_equal(ans.provider, "mesh");
    llm_answer_free(&ans);

    /* the peer's refusal comes back as a clear error */
    mesh_cell_set_reasoner(a, refuse, NULL);
    rc = llm_complete(lb, &question, &ans, err, sizeof err);
    assert_int_equal(rc, -EIO);
    assert_non_null(strstr(err, "the model is asleep"));
    assert_non_null(strstr(err, "cell-a"));
    llm_answer_free(&ans);
    assert_int_equal(cellfix_status_int(a, "reasoning", "failed"), 1);
    assert_int_equal(cellfix_status_int(a, "reasoning", "served"), 17);

    /* a body over the limit is refused before anything is sent */
    char *big = malloc(200000);
    memset(big, 'x', 199999);
    big[199999] = 0;
    char *out = NULL;
    assert_int_equal(mesh_cell_reason(b, big, 1000, &out, err, sizeof err), -EMSGSIZE);
    assert_null(out);
    free(big);

    /* A gone: B says so within its timeout, never hangs */
    mesh_cell_free(a);
    a = NULL;
    int64_t t0 = core_mono_ms();
    rc = llm_complete(lb, &question, &ans, err, sizeof err);
    assert_true(rc == -EIO || rc == -ENOENT);
    assert_true(core_mono_ms() - t0 < 6000);
    llm_answer_free(&ans);
    assert_true(wait_available(b, false));
    rc = llm_complete(lb, &question, &ans, err, sizeof err);
    assert_int_equal(rc, -ENOENT);
    assert_non_null(strstr(err, "no reasoning peer"));
    llm_answer_free(&ans);

    llm_set_remote(lb, NULL, NULL, NULL);
    mesh_cell_free(b);
    llm_free(la);
    llm_free(lb);
    core_config_free(&ca);
    core_config_free(&cb);
    stop_fakellm();
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(tmp, sizeof tmp, "/tmp/ippoc-reason.XXXXXX");
    if (!mkdtemp(tmp))
        return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_reason)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    stop_fakellm();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        rc = rc ? rc : 1;
    return rc;
}
