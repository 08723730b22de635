/* test_signature.c: brain_signature_build over real parts: a memory store in
 * a temporary directory with real events and series, a file of kernel
 * records, a dpkg log, an audit log written by heal's audit functions, real
 * child processes (a service with its fds near the limit, a CPU hog). Each
 * kind of evidence appears, in order, within its window and not outside it;
 * the features; the deadline; malformed input gives notes, not crashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "brain/signature.h"
#include "heal/audit.h"
#include "brain_test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct fx {
    char dir[64], kmsg[128], dpkg[128], audit[128], conf[128];
    core_config cfg;
    mem_t *m;
    int64_t now; /* wall ms, the incident's time */
    pid_t kids[4];
    int nkids;
    brain_sig_ctx ctx;
    const char *paths[2];
    char services[1024];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    btu_tmpdir(f->dir, sizeof f->dir, "sig");
    btu_config(&f->cfg, NULL, f->dir);
    f->m = btu_mem_open(&f->cfg);
    f->now = core_now_ms();
    snprintf(f->kmsg, sizeof f->kmsg, "%s/kmsg", f->dir);
    snprintf(f->dpkg, sizeof f->dpkg, "%s/dpkg.log", f->dir);
    snprintf(f->audit, sizeof f->audit, "%s/audit.log", f->dir);
    snprintf(f->conf, sizeof f->conf, "%s/web.conf", f->dir);
    f->paths[0] = f->conf;
    f->ctx = (brain_sig_ctx){.mem = f->m, .kmsg_path = f->kmsg, .dpkg_log_path = f->dpkg, .audit_path = f->audit,
                             .config_paths = f->paths, .nconfig_paths = 1, .deadline_ms = 2000};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    for (int i = 0; i < f->nkids; i++) {
        kill(f->kids[i], SIGKILL);
        waitpid(f->kids[i], NULL, 0);
    }
    btu_close(f->m, &f->cfg, f->dir);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------------- */

static void event(fx *f, int64_t ts, const char *type, const char *source, const char *payload)
{
    int64_t id = mem_event_add(f->m, ts, type, "info", source, payload);
    if (id <= 0)
        fail_msg("mem_event_add %s %s: %lld", type, payload, (long long)id);
}

static json_t *build(fx *f, const char *incident, const char *trigger, int64_t from, int64_t to)
{
    assert_int_equal(mem_flush(f->m, 10000), 0);
    json_t *inc = NULL;
    if (incident) {
        json_error_t je;
        inc = json_loads(incident, 0, &je);
        if (!inc)
            fail_msg("incident fixture: %s", je.text);
    }
    json_t *s = brain_signature_build(&f->ctx, "web", trigger, inc, from, to);
    json_decref(inc);
    assert_non_null(s);
    static const char *const keys[] = {"service", "incident", "from", "to", "trigger", "probes", "exits",
                                       "anomalies", "logs", "kernel", "pressure", "resources", "filesystems",
                                       "changes", "ports", "dependencies", "cpu_top", "features", "notes"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!json_object_get(s, keys[i]))
            fail_msg("signature lacks \"%s\"", keys[i]);
    return s;
}

static bool has_feature(const json_t *s, const char *tok)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(s, "features"), i, v) if (!strcmp(json_string_value(v), tok)) return true;
    return false;
}

static bool has_note(const json_t *s, const char *part)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(s, "notes"), i, v) if (strstr(json_string_value(v), part)) return true;
    return false;
}

static void expect_feature(const json_t *s, const char *tok)
{
    if (!has_feature(s, tok)) {
        char *d = json_dumps(json_object_get(s, "features"), 0);
        fail_msg("feature %s missing from %s", tok, d);
    }
}

static void expect_note(const json_t *s, const char *part)
{
    if (!has_note(s, part)) {
        char *d = json_dumps(json_object_get(s, "notes"), 0);
        fail_msg("no note with '%s' in %s", part, d);
    }
}

static const char *str(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static json_int_t integer(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static const json_t *list(const json_t *s, const char *k)
{
    const json_t *a = json_object_get(s, k);
    assert_true(json_is_array(a));
    assert_true(json_array_size(a) <= BRAIN_SIG_LIST_MAX);
    return a;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* ---- probes, exits, ports -------------------------------------------------------------------------- */

static void test_crash_probes_exits_ports(void **state)
{
    fx *f = *state;
    int64_t t = f->now;
    /* exits of web: one before the 5-minute look-back, a restart, two in the window, one after it */
    event(f, t - 400000, "service.exit", "web", "{\"service\":\"web\",\"pid\":10,\"status\":3,\"signal\":0}");
    event(f, t - 2500, "service.restart", "web", "{\"service\":\"web\",\"pid\":11,\"restarts\":1}");
    event(f, t - 2000, "service.exit", "web", "{\"service\":\"web\",\"pid\":11,\"status\":1,\"signal\":0}");
    event(f, t - 1000, "service.exit", "web", "{\"service\":\"web\",\"pid\":12,\"status\":0,\"signal\":9}");
    event(f, t + 60000, "service.exit", "web", "{\"service\":\"web\",\"pid\":13,\"status\":7,\"signal\":0}");
    event(f, t - 1000, "service.exit", "db", "{\"service\":\"db\",\"pid\":14,\"status\":5,\"signal\":0}");
    event(f, t - 900, "service.exit", "web", "{\"service\":\"web\",\"status\":\"one\"}"); /* malformed */
    char inc[2048];
    snprintf(inc, sizeof inc,
             "{\"id\":12,\"service\":\"web\",\"what\":\"if failed http://127.0.0.1:8080/health for 3 checks then "
             "restart\",\"detected_ms\":%lld,\"evidence\":{\"service\":\"web\",\"rss_bytes\":1048576.0,"
             "\"probes\":[{\"probe\":\"http\",\"ok\":false,\"message\":\"connect: Connection refused\",\"seq\":3},"
             "{\"probe\":\"tcp\",\"ok\":true,\"message\":\"connected to 127.0.0.1:8080 in 0.1 ms\",\"seq\":3},"
             "{\"probe\":\"tcp\",\"ok\":false,\"message\":\"timeout after 1000 ms\",\"seq\":3},"
             "{\"probe\":\"exec\",\"ok\":false,\"message\":\"exit 2: not ready\",\"seq\":1},"
             "{\"probe\":\"http\",\"ok\":false,\"message\":\"HTTP 503 after 2.1 ms\",\"seq\":1},"
             "{\"probe\":\"http\",\"ok\":false,\"message\":\"Couldn't resolve host name: no detail\",\"seq\":1},"
             "{\"probe\":\"http\",\"ok\":false,\"message\":\"HTTP 200 after 900 ms, over max 500 ms\",\"seq\":1},"
             "{\"probe\":\"http\",\"ok\":false,\"message\":\"HTTP 200 after 2 ms: body does not match /ok/\"},"
             "{\"probe\":\"tcp\",\"ok\":false,\"message\":\"connect: connection reset by peer\"},"
             "\"not an object\"],"
             "\"port_conflict\":{\"port\":8080,\"pid\":777,\"command\":\"nc -l 8080\"},"
             "\"condition\":{\"probe\":\"http\",\"message\":\"connect: Connection refused\",\"timed_out\":false,"
             "\"code\":-111,\"latency_ms\":-1.0,\"failures\":3},"
             "\"exit\":{\"pid\":12,\"status\":0,\"signal\":9,\"backoff_ms\":0}}}",
             (long long)t);
    json_t *s = build(f, inc, "probe", t - 3000, t);
    assert_int_equal(integer(s, "incident"), 12);
    assert_string_equal(str(s, "trigger"), "probe");
    assert_int_equal(integer(s, "from"), t - 3000);
    /* exits: newest first, the window's only */
    const json_t *ex = list(s, "exits");
    assert_int_equal(json_array_size(ex), 2);
    assert_int_equal(integer(json_array_get(ex, 0), "pid"), 12);
    assert_int_equal(integer(json_array_get(ex, 0), "signal"), 9);
    assert_int_equal(integer(json_array_get(ex, 1), "pid"), 11);
    assert_int_equal(integer(json_array_get(ex, 1), "code"), 1);
    assert_int_equal(integer(json_array_get(ex, 1), "uptime_ms"), 500); /* since its restart */
    expect_feature(s, "exit:code:1");
    expect_feature(s, "exit:signal:KILL");
    expect_feature(s, "exit:early");
    assert_false(has_feature(s, "exit:code:3"));
    assert_false(has_feature(s, "exit:code:7"));
    assert_false(has_feature(s, "exit:code:5"));
    expect_note(s, "has no status or signal");
    /* probes: the failed ones, each with how */
    const json_t *pr = list(s, "probes");
    assert_int_equal(json_array_size(pr), 8);
    assert_string_equal(str(json_array_get(pr, 0), "probe"), "http://127.0.0.1:8080/health");
    static const char *const hows[] = {"refused", "timeout", "exec", "status", "dns", "latency", "body", "reset"};
    for (size_t i = 0; i < 8; i++)
        assert_string_equal(str(json_array_get(pr, i), "how"), hows[i]);
    assert_string_equal(str(json_array_get(pr, 1), "probe"), "tcp");
    expect_feature(s, "probe:http:refused");
    expect_feature(s, "probe:tcp:timeout");
    expect_note(s, "is not an object");
    /* ports */
    const json_t *po = list(s, "ports");
    assert_int_equal(json_array_size(po), 1);
    assert_int_equal(integer(json_array_get(po, 0), "port"), 8080);
    assert_int_equal(integer(json_array_get(po, 0), "pid"), 777);
    assert_string_equal(str(json_array_get(po, 0), "command"), "nc -l 8080");
    expect_feature(s, "port:held");
    /* features: exits before probes, value-free (no pids, no ports) */
    const json_t *ft = list(s, "features");
    assert_true(json_array_size(ft) >= 6);
    assert_int_equal(strncmp(json_string_value(json_array_get(ft, 0)), "exit:", 5), 0);
    size_t i;
    json_t *v;
    json_array_foreach(ft, i, v)
    {
        assert_null(strstr(json_string_value(v), "8080"));
        assert_null(strstr(json_string_value(v), "777"));
    }
    json_decref(s);
}

/* ---- logs, anomalies ------------------------------------------------------------------------------- */

static void test_logs_anomalies(void **state)
{
    fx *f = *state;
    int64_t t = f->now;
    event(f, t - 4000, "log.template.new", "web",
          "{\"source\":\"web\",\"template_id\":\"7\",\"template\":\"open <*>: Permission denied\",\"level\":\"error\","
          "\"sample\":\"open /srv/data: Permission denied\",\"count\":1}");
    event(f, t - 3000, "log.burst", "web",
          "{\"source\":\"web\",\"template_id\":\"7\",\"template\":\"open <*>: Permission denied\",\"level\":\"error\","
          "\"rate\":12.5,\"baseline\":0.1,\"count\":40}");
    event(f, t - 3500, "log.template.new", "web",
          "{\"source\":\"web\",\"template_id\":\"8\",\"template\":\"listening on <*>\",\"level\":\"info\","
          "\"sample\":\"listening on :8080\",\"count\":1}");
    event(f, t - 3000, "log.template.new", "db",
          "{\"source\":\"db\",\"template_id\":\"1\",\"template\":\"db down\",\"level\":\"error\",\"sample\":\"x\","
          "\"count\":1}");
    event(f, t - 900000, "log.template.new", "web",
          "{\"source\":\"web\",\"template_id\":\"2\",\"template\":\"old news\",\"level\":\"error\",\"sample\":\"x\","
          "\"count\":1}");
    event(f, t - 2000, "log.burst", "web", "{\"source\":\"web\",\"level\":\"error\"}"); /* malformed */
    /* anomalies: a machine series first in time, the service's later; one too old */
    event(f, t - 100000, "anomaly", "detect",
          "{\"metric\":\"memory.used_bytes\",\"labels\":{},\"key\":\"memory.used_bytes\",\"score\":0.9,"
          "\"reason\":\"level_up\",\"value\":9,\"expected\":3,\"since_ms\":100,\"episode\":1,\"threshold\":0.8}");
    char p[1024];
    snprintf(p, sizeof p,
             "{\"metric\":\"process.rss_bytes\",\"labels\":{\"name\":\"web\",\"pid\":\"12\"},"
             "\"key\":\"process.rss_bytes{name=\\\"web\\\",pid=\\\"12\\\"}\",\"score\":0.99,\"reason\":\"level_up\","
             "\"value\":900,\"expected\":100,\"since_ms\":%lld,\"episode\":1,\"threshold\":0.8}",
             (long long)(t - 50000));
    event(f, t - 40000, "anomaly", "detect", p);
    snprintf(p, sizeof p,
             "{\"episode\":1,\"state\":\"closed\",\"opened_ms\":1,\"first_onset_ms\":1,\"closed_ms\":2,"
             "\"duration_ms\":1,\"peak\":0.995,\"anomalous\":0,\"nmembers\":1,\"more\":0,\"members\":[{"
             "\"metric\":\"process.rss_bytes\",\"labels\":{\"name\":\"web\",\"pid\":\"12\"},"
             "\"key\":\"process.rss_bytes{name=\\\"web\\\",pid=\\\"12\\\"}\",\"order\":1,\"since_ms\":%lld,"
             "\"noticed_ms\":1,\"calm_ms\":null,\"peak\":0.995,\"reason\":\"level_up\",\"value\":950,\"expected\":100}]}",
             (long long)(t - 60000));
    event(f, t - 1000, "anomaly.episode", "detect", p);
    event(f, t - 3600000, "anomaly", "detect",
          "{\"metric\":\"cpu.usage_percent\",\"labels\":{},\"key\":\"cpu.usage_percent\",\"score\":0.9,"
          "\"reason\":\"spike\",\"since_ms\":1}");
    event(f, t - 500, "anomaly", "detect", "{\"score\":\"high\"}"); /* malformed */
    json_t *s = build(f, NULL, "log", t - 5000, t);
    assert_true(json_is_null(json_object_get(s, "incident")));
    const json_t *lg = list(s, "logs");
    assert_int_equal(json_array_size(lg), 2);
    const json_t *e = json_array_get(lg, 0); /* the error first */
    assert_string_equal(str(e, "template_id"), "7");
    assert_true(json_is_true(json_object_get(e, "new")));
    assert_true(json_is_true(json_object_get(e, "burst")));
    assert_int_equal(integer(e, "count"), 40);
    assert_string_equal(str(e, "sample"), "open /srv/data: Permission denied");
    assert_string_equal(str(json_array_get(lg, 1), "template_id"), "8");
    assert_false(json_is_true(json_object_get(json_array_get(lg, 1), "burst")));
    expect_feature(s, "log:new:error");
    expect_feature(s, "log:burst:error");
    assert_false(has_feature(s, "log:new:info")); /* every start prints new info lines */
    expect_feature(s, "log:hint:permission");
    expect_note(s, "without a template");
    const json_t *an = list(s, "anomalies");
    assert_int_equal(json_array_size(an), 2);
    const json_t *a0 = json_array_get(an, 0);
    assert_string_equal(str(a0, "series"), "process.rss_bytes{name=\"web\",pid=\"12\"}");
    assert_true(json_is_true(json_object_get(a0, "service")));
    assert_int_equal((int64_t)json_number_value(json_object_get(a0, "onset")), t - 60000); /* the earliest */
    assert_true(fabs(json_number_value(json_object_get(a0, "score")) - 0.995) < 1e-9);
    assert_string_equal(str(json_array_get(an, 1), "series"), "memory.used_bytes");
    expect_feature(s, "anomaly:process.rss_bytes:level_up");
    expect_feature(s, "anomaly:memory.used_bytes:level_up");
    assert_false(has_feature(s, "anomaly:cpu.usage_percent:spike"));
    expect_note(s, "without a series key");
    json_decref(s);
}

/* A storm of another source's log events does not hide the service's last ones. */
static void test_event_storm(void **state)
{
    fx *f = *state;
    int64_t t = f->now;
    for (int i = 0; i < 2500; i++)
        event(f, t - 60000 + i, "log.burst", "noisy",
              "{\"source\":\"noisy\",\"template_id\":\"1\",\"template\":\"x\",\"level\":\"info\",\"count\":1}");
    event(f, t - 1000, "log.template.new", "web",
          "{\"source\":\"web\",\"template_id\":\"3\",\"template\":\"fatal: <*>\",\"level\":\"error\","
          "\"sample\":\"fatal: boom\",\"count\":1}");
    json_t *s = build(f, NULL, "log", t - 5000, t);
    const json_t *lg = list(s, "logs");
    assert_int_equal(json_array_size(lg), 1);
    assert_string_equal(str(json_array_get(lg, 0), "template_id"), "3");
    expect_feature(s, "log:new:error");
    expect_note(s, "newest 2000");
    json_decref(s);
}

/* ---- changes ---------------------------------------------------------------------------------------- */

static void audit_rec(heal_audit *au, int64_t ts, const char *svc, heal_audit_kind kind)
{
    heal_action a;
    memset(&a, 0, sizeof a);
    a.kind = HEAL_ACT_RESTART;
    snprintf(a.service, sizeof a.service, "%s", svc);
    heal_audit_rec r = {.kind = kind, .ts_ms = ts, .action = &a, .reason = "rule web.conf:3", .mode = "heal"};
    if (kind == HEAL_AUDIT_RESULT) {
        r.outcome = HEAL_OUTCOME_OK;
        r.message = "restarted";
        r.intent_seq = 1;
    }
    char err[256];
    if (heal_audit_append(au, &r, NULL, err, sizeof err))
        fail_msg("audit append: %s", err);
}

static void dpkg_stamp(int64_t ms, char *buf, size_t n)
{
    time_t tt = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm);
}

static void test_changes(void **state)
{
    fx *f = *state;
    int64_t t = f->now;
    char p[1024];
    snprintf(p, sizeof p,
             "{\"service\":\"web\",\"path\":\"%s/data\",\"was\":{\"type\":\"directory\",\"mode\":\"0755\","
             "\"uid\":0,\"gid\":0,\"size\":4096},\"now\":{\"type\":\"directory\",\"mode\":\"0700\",\"uid\":0,"
             "\"gid\":0,\"size\":4096},\"diff\":[],\"known_good\":false}",
             f->dir);
    event(f, t - 600000, "file.changed", "web", p);
    snprintf(p, sizeof p,
             "{\"service\":\"web\",\"path\":\"%s\",\"was\":{\"type\":\"file\",\"mode\":\"0644\",\"uid\":0,"
             "\"gid\":0,\"size\":10,\"sha256\":\"aa\"},\"now\":{\"type\":\"file\",\"mode\":\"0644\",\"uid\":0,"
             "\"gid\":0,\"size\":11,\"sha256\":\"bb\"},\"diff\":[\"-listen = 8080\",\"+listen = 80800\"],"
             "\"known_good\":false}",
             f->conf);
    event(f, t - 40000, "file.changed", "web", p);
    event(f, t - 3000000, "file.changed", "web", "{\"service\":\"web\",\"path\":\"/too/old\",\"was\":null,\"now\":null}");
    event(f, t - 30000, "file.changed", "db", "{\"service\":\"db\",\"path\":\"/etc/db.conf\",\"was\":null,\"now\":{}}");
    event(f, t - 20000, "file.changed", "web", "{\"service\":\"web\"}"); /* malformed */
    event(f, t - 10000, "config.reload", "daemon", "{\"config\":\"/etc/ippoc/ippoc.conf\",\"api_restarted\":false}");
    /* audit: heal's actions on web before the window, not the one in it (the reflex) nor db's nor old ones */
    heal_audit *au;
    char err[256];
    assert_int_equal(heal_audit_open(f->audit, &au, err, sizeof err), 0);
    audit_rec(au, t - 7200000, "web", HEAL_AUDIT_RESULT);
    audit_rec(au, t - 120000, "web", HEAL_AUDIT_INTENT);
    audit_rec(au, t - 120000, "web", HEAL_AUDIT_RESULT);
    audit_rec(au, t - 110000, "db", HEAL_AUDIT_RESULT);
    audit_rec(au, t - 1000, "web", HEAL_AUDIT_RESULT);
    heal_audit_close(au);
    int fd = open(f->audit, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "{\"web\" garbage\n", 15), 15);
    close(fd);
    /* dpkg: an upgrade an hour ago, an install two days ago, status lines, a truncated line */
    char s1[32], s2[32], d[1024];
    dpkg_stamp(t - 3600000, s1, sizeof s1);
    dpkg_stamp(t - 2 * 86400000LL, s2, sizeof s2);
    snprintf(d, sizeof d,
             "%s startup archives unpack\n%s install oldpkg:amd64 <none> 1.0\n%s upgrade libfoo:amd64 1.0 1.1\n"
             "%s status installed libfoo:amd64 1.1\n%s upgrade libtrunc:am",
             s1, s2, s1, s1, s1);
    write_file(f->dpkg, d);
    json_t *s = build(f, NULL, "crash", t - 5000, t);
    const json_t *ch = list(s, "changes");
    /* files newest first, then the reload, the audit, the packages */
    assert_int_equal(json_array_size(ch), 5);
    assert_string_equal(str(json_array_get(ch, 0), "kind"), "file");
    assert_int_equal(integer(json_array_get(ch, 0), "ts"), t - 40000);
    const json_t *diff = json_object_get(json_object_get(json_array_get(ch, 0), "detail"), "diff");
    assert_int_equal(json_array_size(diff), 2);
    assert_string_equal(str(json_array_get(ch, 0), "what"), f->conf);
    assert_false(json_is_true(json_object_get(json_object_get(json_array_get(ch, 0), "detail"), "known_good")));
    assert_string_equal(str(json_array_get(ch, 1), "kind"), "file");
    char data[128];
    snprintf(data, sizeof data, "%s/data", f->dir);
    assert_string_equal(str(json_array_get(ch, 1), "what"), data);
    assert_string_equal(str(json_array_get(ch, 2), "kind"), "config_reload");
    assert_string_equal(str(json_array_get(ch, 3), "kind"), "audit");
    assert_string_equal(str(json_array_get(ch, 3), "what"), "restart");
    assert_int_equal(integer(json_array_get(ch, 3), "ts"), t - 120000);
    const json_t *pk = json_array_get(ch, 4);
    assert_string_equal(str(pk, "kind"), "package");
    assert_string_equal(str(pk, "what"), "libfoo");
    assert_string_equal(str(json_object_get(pk, "detail"), "action"), "upgrade");
    assert_string_equal(str(json_object_get(pk, "detail"), "new"), "1.1");
    expect_feature(s, "change:file");
    expect_feature(s, "change:file:mode");
    expect_feature(s, "change:file:content");
    assert_false(has_feature(s, "change:file:deleted"));
    expect_feature(s, "change:config_reload");
    expect_feature(s, "change:audit");
    expect_feature(s, "change:package");
    expect_note(s, "file.changed event(s) with a bad payload");
    expect_note(s, "malformed line");
    expect_note(s, "not records");
    json_decref(s);
}

/* A change already put back before the incident (restored by heal, or seen
 * again as its known-good copy) is no cause of it; one put back after the
 * incident began (the reflex's restore) still is. */
static void test_changes_undone(void **state)
{
    fx *f = *state;
    int64_t t = f->now;
    event(f, t - 90000, "file.changed", "web", "{\"service\":\"web\",\"path\":\"/etc/p1\",\"was\":{},\"now\":{}}");
    event(f, t - 80000, "file.restored", "web", "{\"service\":\"web\",\"path\":\"/etc/p1\",\"ok\":true}");
    event(f, t - 60000, "file.changed", "web", "{\"service\":\"web\",\"path\":\"/etc/p2\",\"was\":{},\"now\":{}}");
    event(f, t - 2000, "file.restored", "web", "{\"service\":\"web\",\"path\":\"/etc/p2\",\"ok\":true}");
    event(f, t - 50000, "file.changed", "web",
          "{\"service\":\"web\",\"path\":\"/etc/p3\",\"was\":{},\"now\":{},\"known_good\":false}");
    event(f, t - 45000, "file.changed", "web",
          "{\"service\":\"web\",\"path\":\"/etc/p3\",\"was\":{},\"now\":{},\"known_good\":true}");
    event(f, t - 40000, "file.changed", "web", "{\"service\":\"web\",\"path\":\"/etc/p4\",\"was\":{},\"now\":{}}");
    event(f, t - 30000, "file.restored", "web", "{\"service\":\"web\",\"path\":\"/etc/p4\",\"ok\":false}");
    json_t *s = build(f, NULL, "crash", t - 5000, t);
    const json_t *ch = list(s, "changes");
    int files = 0;
    bool p2 = false, p4 = false;
    size_t i;
    json_t *c;
    json_array_foreach(ch, i, c) {
        if (strcmp(str(c, "kind"), "file"))
            continue;
        files++;
        p2 |= !strcmp(str(c, "what"), "/etc/p2");
        p4 |= !strcmp(str(c, "what"), "/etc/p4");
    }
    assert_int_equal(files, 2); /* p1 and p3 were put back before; a failed restore undoes nothing */
    assert_true(p2 && p4);
    expect_note(s, "already put back");
    json_decref(s);
}

/* A data directory made private (heal's real payload shape: no sha256 for a
 * directory): a mode change, not a content change. */
static void test_dir_mode_change(void **state)
{
    fx *f = *state;
    char p[1024];
    snprintf(p, sizeof p,
             "{\"service\":\"web\",\"path\":\"%s\",\"was\":{\"type\":\"directory\",\"mode\":\"0755\",\"uid\":0,"
             "\"gid\":0,\"size\":4096},\"now\":{\"type\":\"directory\",\"mode\":\"0000\",\"uid\":0,\"gid\":0,"
             "\"size\":4096},\"diff\":[],\"known_good\":false}",
             f->dir);
    event(f, f->now - 20000, "file.changed", "web", p);
    json_t *s = build(f, NULL, "probe", f->now - 5000, f->now);
    expect_feature(s, "change:file");
    expect_feature(s, "change:file:mode");
    assert_false(has_feature(s, "change:file:content"));
    assert_false(has_feature(s, "change:file:owner"));
    json_decref(s);
}

/* ---- kernel ---------------------------------------------------------------------------------------- */

static long long usec_at(int64_t w)
{
    return (long long)(core_mono_ms() - (core_now_ms() - w)) * 1000;
}

static void test_kernel(void **state)
{
    fx *f = *state;
    int64_t t = f->now;
    event(f, t - 1000, "service.exit", "web", "{\"service\":\"web\",\"pid\":4321,\"status\":0,\"signal\":9}");
    char k[2048];
    snprintf(k, sizeof k,
             "6,1,%lld,-;oom-kill:constraint=CONSTRAINT_NONE,task=webd,pid=4321,uid=0\n"
             "3,2,%lld,-;Out of memory: Killed process 4321 (webd) total-vm:1000kB\n"
             "6,3,%lld,-;other[555]: segfault at 0 ip 1 sp 2 error 4\n"
             "3,4,%lld,-;blk_update_request: I/O error, dev sdz, sector 1\n"
             "garbage without a semicolon\n"
             "3,5,%lld,-;Out of memory: Killed process 999 (ancient)\n",
             usec_at(t - 1500), usec_at(t - 1490), usec_at(t - 1400), usec_at(t - 1300), usec_at(t - 3600000));
    write_file(f->kmsg, k);
    json_t *s = build(f, NULL, "crash", t - 5000, t);
    const json_t *kn = list(s, "kernel");
    assert_int_equal(json_array_size(kn), 3);
    const json_t *o = json_array_get(kn, 0); /* the service's first; the two OOM lines are one kill */
    assert_string_equal(str(o, "kind"), "oom_kill");
    assert_int_equal(integer(o, "pid"), 4321);
    assert_string_equal(str(o, "comm"), "webd");
    assert_true(json_is_true(json_object_get(o, "service")));
    assert_string_equal(str(json_array_get(kn, 1), "kind"), "segfault");
    assert_false(json_is_true(json_object_get(json_array_get(kn, 1), "service")));
    assert_string_equal(str(json_array_get(kn, 2), "kind"), "io_error");
    expect_feature(s, "kernel:oom_kill");
    expect_feature(s, "kernel:segfault:other");
    expect_feature(s, "kernel:io_error");
    expect_feature(s, "exit:signal:KILL");
    expect_note(s, "do not parse");
    json_decref(s);
}

/* ---- resources, dependencies, filesystems, pressure ------------------------------------------------ */

/* A child that holds fds near its (lowered) limit, in dir, until killed. */
static pid_t fd_child(fx *f, const char *dir)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {64, 64};
        if (setrlimit(RLIMIT_NOFILE, &rl) || chdir(dir))
            _exit(1);
        while (open("/dev/null", O_RDONLY) >= 0 && fcntl(60, F_GETFD) < 0)
            ;
        if (write(pfd[1], "x", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(pfd[1]);
    char c;
    assert_int_equal(read(pfd[0], &c, 1), 1);
    close(pfd[0]);
    f->kids[f->nkids++] = pid;
    return pid;
}

static void test_resources_deps_fs_pressure(void **state)
{
    fx *f = *state;
    char data[128];
    snprintf(data, sizeof data, "%s/data", f->dir);
    assert_int_equal(mkdir(data, 0755), 0);
    write_file(f->conf, "listen = 8080\n");
    pid_t pid = fd_child(f, data);
    snprintf(f->services, sizeof f->services,
             "{\"services\":[{\"name\":\"web\",\"state\":\"running\",\"pid\":%d,\"cpu_percent\":12.5,"
             "\"rss_bytes\":null,\"depends\":[\"db\"],\"config_paths\":[{\"path\":\"/etc/hostname\",\"exists\":true}]},{\"name\":\"db\",\"state\":\"failed\",\"pid\":0},"
             "{\"name\":\"cache\",\"state\":\"running\",\"pid\":1}],\"pending\":0}",
             (int)pid);
    f->ctx.services_json = f->services;
    const char *deps[] = {"cache"};
    f->ctx.depends = deps;
    f->ctx.ndepends = 1;
    /* 10 minutes of series, one a second: rss rising steadily, the data dir's filesystem 97 % full,
     * another filesystem's inodes 99 %, cpu pressure 75 %, memory pressure 1 % */
    char lab[256];
    snprintf(lab, sizeof lab, "name=\"web\",pid=\"%d\"", (int)pid);
    int rss = mem_series(f->m, "process.rss_bytes", lab, "bytes", "", MEM_GAUGE);
    char mp[160];
    snprintf(mp, sizeof mp, "device=\"/dev/x\",fstype=\"ext4\",mountpoint=\"%s\"", data);
    int used = mem_series(f->m, "fs.used_percent", mp, "percent", "", MEM_GAUGE);
    int ino = mem_series(f->m, "fs.inodes_used_percent", "device=\"/dev/y\",fstype=\"ext4\",mountpoint=\"/vol\"",
                         "percent", "", MEM_GAUGE);
    int pcpu = mem_series(f->m, "psi.some_avg10_percent", "resource=\"cpu\"", "percent", "", MEM_GAUGE);
    int pmem = mem_series(f->m, "psi.some_avg10_percent", "resource=\"memory\"", "percent", "", MEM_GAUGE);
    int pio = mem_series(f->m, "psi.some_avg10_percent", "resource=\"io\"", "percent", "", MEM_GAUGE);
    assert_true(rss >= 0 && used >= 0 && ino >= 0 && pcpu >= 0 && pmem >= 0 && pio >= 0);
    int64_t t0 = f->now / 1000 * 1000 - 600000;
    for (int i = 0; i <= 600; i++) {
        mem_put(f->m, rss, 100e6 + i * 100e3); /* +100 kB/s */
        mem_put(f->m, used, 97.0);
        mem_put(f->m, ino, 99.0);
        mem_put(f->m, pcpu, i > 590 ? 75.0 : 5.0);
        mem_put(f->m, pmem, 1.0);
        mem_put(f->m, pio, 0.5);
        assert_int_equal(mem_tick(f->m, t0 + i * 1000LL), 0);
    }
    json_t *s = build(f, NULL, "anomaly", f->now - 5000, f->now);
    const json_t *r = json_object_get(s, "resources");
    assert_true(json_is_object(r));
    assert_true(json_number_value(json_object_get(r, "fd_limit")) == 64);
    assert_true(json_number_value(json_object_get(r, "fds")) >= 58);
    assert_true(json_number_value(json_object_get(r, "rss_bytes")) > 0);
    assert_true(fabs(json_number_value(json_object_get(r, "cpu_percent")) - 12.5) < 1e-9);
    assert_true(json_number_value(json_object_get(r, "threads")) == 1);
    double slope = json_number_value(json_object_get(r, "rss_slope_10m_bps"));
    assert_true(fabs(slope - 100e3) < 1e3);
    expect_feature(s, "res:fds_near_limit");
    expect_feature(s, "res:rss_rising");
    const json_t *dp = list(s, "dependencies");
    assert_int_equal(json_array_size(dp), 2);
    assert_string_equal(str(json_array_get(dp, 0), "service"), "cache");
    assert_true(json_is_true(json_object_get(json_array_get(dp, 0), "healthy")));
    assert_string_equal(str(json_array_get(dp, 1), "service"), "db");
    assert_string_equal(str(json_array_get(dp, 1), "state"), "failed");
    assert_false(json_is_true(json_object_get(json_array_get(dp, 1), "healthy")));
    expect_feature(s, "dep:down");
    /* filesystems: the config file's (statvfs: no series covers the temp dir), the cwd's (the series),
     * and the other nearly full one */
    const json_t *fs = list(s, "filesystems");
    const json_t *cwd = NULL, *vol = NULL, *conf = NULL, *heals = NULL;
    size_t i;
    json_t *v;
    json_array_foreach(fs, i, v)
    {
        if (!strcmp(str(v, "mountpoint"), data))
            cwd = v;
        if (!strcmp(str(v, "mountpoint"), "/vol"))
            vol = v;
        if (!strcmp(str(v, "path"), f->conf))
            conf = v;
        if (!strcmp(str(v, "path"), "/etc/hostname")) /* from heal's config_paths */
            heals = v;
    }
    assert_non_null(cwd);
    assert_non_null(vol);
    assert_non_null(conf);
    assert_non_null(heals);
    assert_true(json_number_value(json_object_get(cwd, "used_percent")) == 97.0);
    assert_true(json_is_true(json_object_get(cwd, "service")));
    assert_false(json_is_true(json_object_get(vol, "service")));
    assert_true(json_number_value(json_object_get(conf, "used_percent")) >= 0);
    expect_feature(s, "fs:full");
    expect_feature(s, "fs:inodes_full:other");
    const json_t *pr = json_object_get(s, "pressure");
    assert_true(json_number_value(json_object_get(pr, "cpu")) == 75.0);
    assert_true(json_number_value(json_object_get(pr, "memory")) == 1.0);
    expect_feature(s, "pressure:cpu");
    assert_false(has_feature(s, "pressure:memory"));
    assert_false(has_feature(s, "pressure:io"));
    json_decref(s);
}

/* ---- cpu_top ---------------------------------------------------------------------------------------- */

static void test_cpu_hog(void **state)
{
    fx *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (volatile unsigned long x = 0;; x++)
            ;
    }
    f->kids[f->nkids++] = pid;
    struct timespec ts = {0, 200 * 1000000L}; /* let it get going: a busy loop needs no signal */
    nanosleep(&ts, NULL);
    bool seen = false;
    for (int attempt = 0; attempt < 3 && !seen; attempt++) {
        json_t *s = build(f, NULL, "anomaly", f->now - 5000, f->now);
        const json_t *top = list(s, "cpu_top");
        assert_true(json_array_size(top) >= 1 && json_array_size(top) <= 3);
        double prev = 1e9, hog = 0;
        size_t i;
        json_t *v;
        json_array_foreach(top, i, v)
        {
            double p = json_number_value(json_object_get(v, "cpu_percent"));
            assert_true(p <= prev);
            prev = p;
            assert_true(integer(v, "pid") > 0);
            if (integer(v, "pid") == pid)
                seen = true;
            if (!json_is_true(json_object_get(v, "service")) && p >= 80 && integer(v, "pid") != getpid())
                hog = p;
        }
        assert_int_equal(has_feature(s, "cpu:hog"), hog > 0);
        json_decref(s);
    }
    assert_true(seen);
}

/* Short of time for /proc samples: the apps series say who uses the CPU. */
static void test_cpu_top_series(void **state)
{
    fx *f = *state;
    int hog = mem_series(f->m, "apps.cpu_percent", "app=\"hog\"", "percent", "", MEM_RATE);
    int web = mem_series(f->m, "apps.cpu_percent", "app=\"web\"", "percent", "", MEM_RATE);
    int ker = mem_series(f->m, "apps.cpu_percent", "app=\"kernel\"", "percent", "", MEM_RATE);
    int idle = mem_series(f->m, "apps.cpu_percent", "app=\"idle\"", "percent", "", MEM_RATE);
    assert_true(hog >= 0 && web >= 0 && ker >= 0 && idle >= 0);
    mem_put(f->m, hog, 150.0);
    mem_put(f->m, web, 20.0);
    mem_put(f->m, ker, 5.0);
    mem_put(f->m, idle, 0.5);
    assert_int_equal(mem_tick(f->m, core_now_ms() / 1000 * 1000), 0);
    f->ctx.deadline_ms = 120; /* below the 130 ms two samples need */
    json_t *s = build(f, NULL, "anomaly", f->now - 5000, f->now);
    const json_t *top = list(s, "cpu_top");
    assert_int_equal(json_array_size(top), 3);
    assert_string_equal(str(json_array_get(top, 0), "comm"), "hog");
    assert_true(json_number_value(json_object_get(json_array_get(top, 0), "cpu_percent")) == 150.0);
    assert_string_equal(str(json_array_get(top, 1), "comm"), "web");
    assert_true(json_is_true(json_object_get(json_array_get(top, 1), "service")));
    assert_string_equal(str(json_array_get(top, 2), "comm"), "kernel");
    expect_feature(s, "cpu:hog");
    expect_note(s, "apps.cpu_percent");
    json_decref(s);
}

/* ---- deadline, malformed input --------------------------------------------------------------------- */

static void test_deadline(void **state)
{
    fx *f = *state;
    FILE *fp = fopen(f->kmsg, "w");
    assert_non_null(fp);
    for (int i = 0; i < 60000; i++)
        fprintf(fp, "6,%d,%lld,-;Out of memory: Killed process %d (x)\n", i, usec_at(f->now), 100000 + i);
    fclose(fp);
    f->ctx.deadline_ms = 1;
    int64_t t0 = core_mono_ms();
    json_t *s = build(f, NULL, "user", f->now - 5000, f->now + 1000);
    int64_t took = core_mono_ms() - t0;
    print_message("signature with a 1 ms deadline took %lld ms\n", (long long)took);
    assert_true(took < 150); /* nothing waits: no cpu_top samples, no full kmsg read */
    expect_note(s, "deadline");
    assert_true(json_array_size(list(s, "kernel")) < 16 || has_note(s, "kernel"));
    json_decref(s);
    /* the default deadline: everything, and within it (plus the cpu samples' 100 ms) */
    f->ctx.deadline_ms = 0;
    t0 = core_mono_ms();
    s = build(f, NULL, "user", f->now - 5000, f->now + 1000);
    took = core_mono_ms() - t0;
    print_message("signature with the default deadline took %lld ms\n", (long long)took);
    assert_true(took < BRAIN_SIG_DEADLINE_MS + 150);
    assert_int_equal(json_array_size(list(s, "kernel")), BRAIN_SIG_LIST_MAX);
    expect_feature(s, "kernel:oom_kill:other");
    json_decref(s);
}

static void test_malformed(void **state)
{
    fx *f = *state;
    f->ctx.services_json = "{not json";
    write_file(f->kmsg, "\x01\x02\xff garbage\n;;;\n6,1,2\n");
    write_file(f->dpkg, "2026-13-45 99:99:99 upgrade x\nnot a date at all\n");
    write_file(f->audit, "[1,2,3]\n{\"ts\":\"web\"}\n");
    json_t *s = build(f, "{\"id\":\"x\",\"evidence\":{\"probes\":{\"not\":\"a list\"},\"exit\":[1],\"log\":5}}",
                      "crash", f->now - 5000, f->now);
    assert_true(json_is_null(json_object_get(s, "incident")));
    expect_note(s, "services: heal's JSON does not parse");
    expect_note(s, "kernel:");
    expect_note(s, "packages:");
    assert_int_equal(json_array_size(list(s, "probes")), 0);
    assert_int_equal(json_array_size(list(s, "exits")), 0);
    json_decref(s);
    /* an incident whose evidence is not an object; missing files */
    f->ctx.services_json = NULL;
    f->ctx.kmsg_path = "/nonexistent/kmsg";
    f->ctx.dpkg_log_path = "/nonexistent/dpkg.log";
    f->ctx.audit_path = "/nonexistent/audit.log";
    f->ctx.mem = NULL;
    s = build(f, "{\"id\":3,\"evidence\":\"text\"}", NULL, f->now, f->now - 10);
    assert_int_equal(integer(s, "incident"), 3);
    assert_string_equal(str(s, "trigger"), "user");
    assert_true(integer(s, "to") >= integer(s, "from"));
    expect_note(s, "incident: no evidence object");
    expect_note(s, "/nonexistent/kmsg");
    expect_note(s, "/nonexistent/dpkg.log");
    expect_note(s, "/nonexistent/audit.log");
    json_decref(s);
    assert_null(brain_signature_build(NULL, "web", "crash", NULL, 0, 0));
    assert_null(brain_signature_build(&f->ctx, NULL, "crash", NULL, 0, 0));
}

/* The incident's own log tail: the last lines and the words in them; a resource rule's condition. */
static void test_log_tail(void **state)
{
    fx *f = *state;
    json_t *s = build(f,
                      "{\"id\":1,\"evidence\":{\"condition\":{\"resource\":\"fds\",\"value\":1000.0,"
                      "\"op\":\">\",\"threshold\":900.0,\"checks\":1},\"log\":\"starting\\nerror: environment variable DB_URL is not set\\n"
                      "\\nbind: Address already in use\\n\"}}",
                      "crash", f->now - 5000, f->now);
    const json_t *tl = list(s, "log_tail");
    assert_int_equal(json_array_size(tl), 3);
    assert_string_equal(json_string_value(json_array_get(tl, 2)), "bind: Address already in use");
    expect_feature(s, "log:hint:env");
    expect_feature(s, "log:hint:addr_in_use");
    expect_feature(s, "rule:resource:fds");
    json_decref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crash_probes_exits_ports, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs_anomalies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_storm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_undone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_mode_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kernel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resources_deps_fs_pressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cpu_hog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cpu_top_series, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_tail, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
