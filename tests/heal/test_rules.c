/* test_rules.c: the heal rule language (src/heal/rules.h): every documented
 * example parses to the expected fields; canonical text round-trips to the
 * same struct; bad rules get an exact "file:line:column: reason" message; a
 * mutation fuzz loop finds no crash, leak or non-round-tripping rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heal/rules.h"

static heal_rule rule, again; /* big: keep them off the stack */

static const heal_rule *parse_ok(const char *text)
{
    char err[512];
    int rc = heal_rule_parse(text, "svc.conf", 7, &rule, err, sizeof err);
    if (rc)
        print_error("parse failed: %s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(rule.file, "svc.conf");
    assert_int_equal(rule.line, 7);
    return &rule;
}

/* ---- the examples of the issue and the brief ------------------------------------- */

static void test_http(void **state)
{
    (void)state;
    const heal_rule *r = parse_ok("if failed http://127.0.0.1:8080/health for 2 checks then restart");
    assert_int_equal(r->cond.kind, HEAL_COND_PROBE_FAILED);
    const heal_probe_spec *p = &r->cond.probe;
    assert_int_equal(p->kind, HEAL_PROBE_HTTP);
    assert_string_equal(p->url, "http://127.0.0.1:8080/health");
    assert_string_equal(p->host, "127.0.0.1");
    assert_int_equal(p->port, 8080);
    assert_int_equal(p->status_min, 200);
    assert_int_equal(p->status_max, 399);
    assert_string_equal(p->body, "");
    assert_int_equal(p->max_latency_ms, 0);
    assert_int_equal(p->timeout_ms, 0);
    assert_int_equal(p->interval_ms, 0);
    assert_int_equal(r->for_checks, 2);
    assert_int_equal(r->for_ms, 0);
    assert_int_equal(r->nactions, 1);
    assert_int_equal(r->actions[0].kind, HEAL_ACT_RESTART);
    assert_string_equal(r->actions[0].service, "");
}

static void test_http_options(void **state)
{
    (void)state;
    const heal_rule *r = parse_ok("if failed http://127.0.0.1:8080/health status 2xx body \"ok\" "
                                  "latency < 500ms timeout 1s every 1s then restart");
    const heal_probe_spec *p = &r->cond.probe;
    assert_int_equal(p->status_min, 200);
    assert_int_equal(p->status_max, 299);
    assert_string_equal(p->body, "ok");
    assert_int_equal(p->max_latency_ms, 500);
    assert_int_equal(p->timeout_ms, 1000);
    assert_int_equal(p->interval_ms, 1000);
    assert_int_equal(r->for_checks, 1);

    r = parse_ok("if failed https://example.com/x?a=1 status 200 then restart");
    assert_int_equal(r->cond.probe.kind, HEAL_PROBE_HTTPS);
    assert_string_equal(r->cond.probe.host, "example.com");
    assert_int_equal(r->cond.probe.port, 443);
    assert_int_equal(r->cond.probe.status_min, 200);
    assert_int_equal(r->cond.probe.status_max, 200);

    r = parse_ok("if failed HTTPS://[::1]:8443 status 200-204 body \"\\d+ \\\"ok\\\" \\\\ \\;\" then alert");
    assert_string_equal(r->cond.probe.host, "::1");
    assert_int_equal(r->cond.probe.port, 8443);
    assert_int_equal(r->cond.probe.status_min, 200);
    assert_int_equal(r->cond.probe.status_max, 204);
    assert_string_equal(r->cond.probe.body, "\\d+ \"ok\" \\ ;");

    r = parse_ok("if failed http://localhost then alert");
    assert_int_equal(r->cond.probe.port, 80);
    assert_string_equal(r->cond.probe.host, "localhost");
}

static void test_tcp_process_exec(void **state)
{
    (void)state;
    const heal_rule *r = parse_ok("if failed tcp://127.0.0.1:5432 then restart");
    assert_int_equal(r->cond.probe.kind, HEAL_PROBE_TCP);
    assert_string_equal(r->cond.probe.host, "127.0.0.1");
    assert_int_equal(r->cond.probe.port, 5432);

    r = parse_ok("if failed process then start");
    assert_int_equal(r->cond.probe.kind, HEAL_PROBE_PROCESS);
    assert_int_equal(r->actions[0].kind, HEAL_ACT_START);

    r = parse_ok("if failed exec \"/usr/local/bin/check-db --quick\" for 3 checks then restart");
    assert_int_equal(r->cond.probe.kind, HEAL_PROBE_EXEC);
    assert_string_equal(r->cond.probe.program, "/usr/local/bin/check-db --quick");
    assert_int_equal(r->for_checks, 3);

    r = parse_ok("if failed exec /bin/true timeout 2s every 3s then alert");
    assert_string_equal(r->cond.probe.program, "/bin/true");
    assert_int_equal(r->cond.probe.timeout_ms, 2000);
    assert_int_equal(r->cond.probe.interval_ms, 3000);
}

static void test_file(void **state)
{
    (void)state;
    const heal_rule *r = parse_ok("if failed file /var/run/app.heartbeat age < 30s then restart");
    const heal_probe_spec *p = &r->cond.probe;
    assert_int_equal(p->kind, HEAL_PROBE_FILE);
    assert_string_equal(p->path, "/var/run/app.heartbeat");
    assert_int_equal(p->file_check, HEAL_FILE_AGE);
    assert_int_equal(p->file_cmp, HEAL_CMP_LT);
    assert_int_equal(p->file_age_ms, 30000);

    r = parse_ok("if failed file \"/var/run/my file\" size >= 1KB every 5s then alert");
    assert_string_equal(p->path, "/var/run/my file");
    assert_int_equal(p->file_check, HEAL_FILE_SIZE);
    assert_int_equal(p->file_cmp, HEAL_CMP_GE);
    assert_int_equal(p->file_size, 1024);
    assert_int_equal(p->interval_ms, 5000);

    r = parse_ok("if failed file /etc/app.conf checksum sha256 "
                 "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855 then alert");
    assert_int_equal(p->file_check, HEAL_FILE_CHECKSUM);
    assert_string_equal(p->sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

    r = parse_ok("if failed file /etc/app.conf changed then alert");
    assert_int_equal(p->file_check, HEAL_FILE_CHANGED);
    r = parse_ok("if failed file /etc/app.conf then alert");
    assert_int_equal(p->file_check, HEAL_FILE_EXISTS);
    r = parse_ok("if failed file /etc/app.conf exists then alert");
    assert_int_equal(p->file_check, HEAL_FILE_EXISTS);
}

static void test_resources(void **state)
{
    (void)state;
    const heal_rule *r = parse_ok("if cpu > 90% for 30s then renice 10");
    const heal_resource *res = &r->cond.res;
    assert_int_equal(r->cond.kind, HEAL_COND_RESOURCE);
    assert_int_equal(res->kind, HEAL_RES_CPU);
    assert_int_equal(res->op, HEAL_CMP_GT);
    assert_true(res->threshold == 90.0);
    assert_int_equal(r->for_ms, 30000);
    assert_int_equal(r->for_checks, 1);
    assert_int_equal(r->actions[0].kind, HEAL_ACT_RENICE);
    assert_int_equal(r->actions[0].nice, 10);

    r = parse_ok("if cpu >= 250.5% then alert"); /* several cores */
    assert_true(res->threshold == 250.5);
    assert_int_equal(res->op, HEAL_CMP_GE);

    r = parse_ok("if memory > 512MB then limit memory 600MB");
    assert_int_equal(res->kind, HEAL_RES_MEMORY);
    assert_true(res->threshold == 512.0 * 1048576);
    assert_int_equal(r->actions[0].kind, HEAL_ACT_LIMIT_MEMORY);
    assert_int_equal(r->actions[0].bytes, 600ULL << 20);

    r = parse_ok("if threads > 500 then restart");
    assert_int_equal(res->kind, HEAL_RES_THREADS);
    assert_true(res->threshold == 500);
    r = parse_ok("if fds > 1000 then alert");
    assert_int_equal(res->kind, HEAL_RES_FDS);
    assert_true(res->threshold == 1000);
    assert_int_equal(r->actions[0].kind, HEAL_ACT_ALERT);
    assert_string_equal(r->actions[0].target, "");

    r = parse_ok("if space /var > 90% then clean /var/log/app older than 7d, alert");
    assert_int_equal(res->kind, HEAL_RES_SPACE);
    assert_string_equal(res->path, "/var");
    assert_true(res->threshold == 90);
    assert_int_equal(r->nactions, 2);
    assert_int_equal(r->actions[0].kind, HEAL_ACT_CLEAN);
    assert_string_equal(r->actions[0].path, "/var/log/app");
    assert_int_equal(r->actions[0].older_than_ms, 7 * 86400000LL);
    assert_int_equal(r->actions[0].larger_than, 0);
    assert_int_equal(r->actions[1].kind, HEAL_ACT_ALERT);

    r = parse_ok("if inodes / > 95% then alert");
    assert_int_equal(res->kind, HEAL_RES_INODES);
    assert_string_equal(res->path, "/");
    assert_true(res->threshold == 95);
}

static void test_metrics(void **state)
{
    (void)state;
    const heal_rule *r = parse_ok("if metric load.load1 > 8 for 1m then alert");
    const heal_resource *res = &r->cond.res;
    assert_int_equal(res->kind, HEAL_RES_METRIC);
    assert_string_equal(res->metric, "load.load1");
    assert_string_equal(res->labels, "");
    assert_true(res->threshold == 8);
    assert_int_equal(r->for_ms, 60000);

    r = parse_ok("if metric \"disk.busy_percent{device=\\\"vda\\\"}\" > 95 for 2m then alert");
    assert_string_equal(res->metric, "disk.busy_percent");
    assert_string_equal(res->labels, "device=\"vda\"");
    assert_int_equal(r->for_ms, 120000);

    /* bare labels, sorted into the sensors' canonical order, escapes kept */
    r = parse_ok("if metric temp.delta{b=\"2\", a=\"x \\\"y\\\\\"} != -0.25 then alert");
    assert_string_equal(res->metric, "temp.delta");
    assert_string_equal(res->labels, "a=\"x \\\"y\\\\\",b=\"2\"");
    assert_int_equal(res->op, HEAL_CMP_NE);
    assert_true(res->threshold == -0.25);

    r = parse_ok("if metric mem.available<1.5GB then alert");
    assert_string_equal(res->metric, "mem.available");
    assert_int_equal(res->op, HEAL_CMP_LT);
    assert_true(res->threshold == 1.5 * 1073741824.0);

    r = parse_ok("if metric disk.busy_percent == 95% then alert");
    assert_true(res->threshold == 95);
    assert_int_equal(res->op, HEAL_CMP_EQ);
    r = parse_ok("if metric x <= 1e3 then alert");
    assert_true(res->threshold == 1000);
    assert_int_equal(res->op, HEAL_CMP_LE);
}

/* A bare dotted series name is an implied "metric" (issue 9's GPU rule). */
static void test_implied_metric(void **state)
{
    (void)state;
    const heal_rule *r = parse_ok("if gpu.temperature > 85 for 1m then alert");
    const heal_resource *res = &r->cond.res;
    assert_int_equal(r->cond.kind, HEAL_COND_RESOURCE);
    assert_int_equal(res->kind, HEAL_RES_METRIC);
    assert_string_equal(res->metric, "gpu.temperature");
    assert_string_equal(res->labels, "");
    assert_int_equal(res->op, HEAL_CMP_GT);
    assert_true(res->threshold == 85);
    assert_int_equal(r->for_ms, 60000);
    assert_int_equal(r->actions[0].kind, HEAL_ACT_ALERT);
    /* the same struct as with the word, so the same canonical text */
    char err[512], text[512];
    assert_int_equal(heal_rule_parse("if metric gpu.temperature > 85 for 1m then alert", "svc.conf", 7, &again, err,
                                     sizeof err), 0);
    assert_memory_equal(&rule, &again, sizeof rule);
    assert_int_equal(heal_rule_format(r, text, sizeof text), 0);
    assert_string_equal(text, "if metric gpu.temperature > 85 for 1m then alert");

    /* labels (sorted), no blank before the comparison */
    r = parse_ok("if gpu.temperature{uuid=\"GPU-1\", gpu=\"0\"}>=90 then alert");
    assert_string_equal(res->metric, "gpu.temperature");
    assert_string_equal(res->labels, "gpu=\"0\",uuid=\"GPU-1\"");
    assert_int_equal(res->op, HEAL_CMP_GE);
    /* a dotted name that begins with a condition word is a series, not the word */
    r = parse_ok("IF Memory.used_bytes<1GB THEN alert");
    assert_int_equal(res->kind, HEAL_RES_METRIC);
    assert_string_equal(res->metric, "Memory.used_bytes");
    assert_int_equal(res->op, HEAL_CMP_LT);
    assert_true(res->threshold == 1073741824.0);
    r = parse_ok("if cpu.usage_percent{cpu=\"total\"} > 90% for 3 checks then alert");
    assert_string_equal(res->metric, "cpu.usage_percent");
    assert_int_equal(r->for_checks, 3);
    r = parse_ok("if failed.count != -1 then alert");
    assert_int_equal(r->cond.kind, HEAL_COND_RESOURCE);
    assert_string_equal(res->metric, "failed.count");
    /* the words keep their meaning */
    r = parse_ok("if memory > 1GB then alert");
    assert_int_equal(res->kind, HEAL_RES_MEMORY);
    r = parse_ok("if anomalous(gpu.temperature) then alert");
    assert_int_equal(r->cond.kind, HEAL_COND_ANOMALOUS);
}

static void test_anomalous(void **state)
{
    (void)state;
    const heal_rule *r = parse_ok("if anomalous(memory.used_bytes) for 2m then alert");
    const heal_resource *res = &r->cond.res;
    assert_int_equal(r->cond.kind, HEAL_COND_ANOMALOUS);
    assert_string_equal(res->metric, "memory.used_bytes");
    assert_string_equal(res->labels, "");
    assert_int_equal(r->for_ms, 120000);
    assert_int_equal(r->for_checks, 1);
    assert_int_equal(r->actions[0].kind, HEAL_ACT_ALERT);

    /* globs in the name; labels sorted; blanks around; checks */
    r = parse_ok("IF Anomalous ( process.*{pid=\"1\", name=\"web)x\"} ) FOR 3 CHECKS THEN restart");
    assert_int_equal(r->cond.kind, HEAL_COND_ANOMALOUS);
    assert_string_equal(res->metric, "process.*");
    assert_string_equal(res->labels, "name=\"web)x\",pid=\"1\"");
    assert_int_equal(r->for_checks, 3);
    r = parse_ok("if anomalous(\"disk.*_bytes?{device=\\\"vda\\\"}\") then alert");
    assert_string_equal(res->metric, "disk.*_bytes?");
    assert_string_equal(res->labels, "device=\"vda\"");
    r = parse_ok("if anomalous(*) then alert");
    assert_string_equal(res->metric, "*");

    char text[512];
    r = parse_ok("if anomalous( cpu.usage_percent{state=\"user\",cpu=\"total\"} )for 30s then alert ops");
    assert_int_equal(heal_rule_format(r, text, sizeof text), 0);
    assert_string_equal(text, "if anomalous(cpu.usage_percent{cpu=\"total\",state=\"user\"}) for 30s then alert ops");
}

static void test_restarts(void **state)
{
    (void)state;
    const heal_rule *r = parse_ok("if 3 restarts within 5m then stop, alert");
    assert_int_equal(r->cond.kind, HEAL_COND_RESTARTS);
    assert_int_equal(r->cond.restarts, 3);
    assert_int_equal(r->cond.within_ms, 300000);
    assert_int_equal(r->nactions, 2);
    assert_int_equal(r->actions[0].kind, HEAL_ACT_STOP);
    assert_int_equal(r->actions[1].kind, HEAL_ACT_ALERT);
    r = parse_ok("if 1 restart within 1h then alert pager");
    assert_int_equal(r->cond.restarts, 1);
    assert_string_equal(r->actions[0].target, "pager");
}

static void test_actions(void **state)
{
    (void)state;
    const heal_rule *r = parse_ok(
        "IF CPU > 90% FOR 2 CHECKS THEN SIGNAL sighup, signal TERM, signal Usr1, renice -20, "
        "limit cpu 50%, sysctl vm.swappiness=10, run \"/opt/fix.sh --now\", alert ops-team");
    assert_int_equal(r->for_checks, 2);
    assert_int_equal(r->nactions, 8);
    assert_int_equal(r->actions[0].kind, HEAL_ACT_SIGNAL);
    assert_int_equal(r->actions[0].signum, SIGHUP);
    assert_int_equal(r->actions[1].signum, SIGTERM);
    assert_int_equal(r->actions[2].signum, SIGUSR1);
    assert_int_equal(r->actions[3].nice, -20);
    assert_int_equal(r->actions[4].kind, HEAL_ACT_LIMIT_CPU);
    assert_true(r->actions[4].cpu_percent == 50);
    assert_int_equal(r->actions[5].kind, HEAL_ACT_SYSCTL);
    assert_string_equal(r->actions[5].key, "vm.swappiness");
    assert_string_equal(r->actions[5].value, "10");
    assert_int_equal(r->actions[6].kind, HEAL_ACT_PLAYBOOK);
    assert_string_equal(r->actions[6].program, "/opt/fix.sh --now");
    assert_int_equal(r->actions[6].timeout_ms, HEAL_RUN_TIMEOUT_MS);
    assert_string_equal(r->actions[7].target, "ops-team");

    r = parse_ok("if cpu > 90% then sysctl net.ipv4.tcp_rmem = \"4096 87380 6291456\", "
                 "run /opt/x.sh timeout 90s, clean //tmp//cache/ larger than 100MB older than 1d");
    assert_string_equal(r->actions[0].value, "4096 87380 6291456");
    assert_string_equal(r->actions[1].program, "/opt/x.sh");
    assert_int_equal(r->actions[1].timeout_ms, 90000);
    assert_string_equal(r->actions[2].path, "/tmp/cache");
    assert_int_equal(r->actions[2].larger_than, 100ULL << 20);
    assert_int_equal(r->actions[2].older_than_ms, 86400000);

    r = parse_ok("if cpu > 95% for 30s then freeze, alert");
    assert_int_equal(r->actions[0].kind, HEAL_ACT_FREEZE);
    r = parse_ok("if cpu < 1% for 1m then THAW");
    assert_int_equal(r->actions[0].kind, HEAL_ACT_THAW);
}

/* ---- canonical text round-trips ------------------------------------------------------ */

static const char *const valid[] = {
    "if failed http://127.0.0.1:8080/health for 2 checks then restart",
    "if failed http://127.0.0.1:8080/health status 2xx body \"ok\" latency < 500ms timeout 1s every 1s then restart",
    "if failed https://example.com/x status 200 then restart",
    "if failed tcp://127.0.0.1:5432 latency < 100ms then restart",
    "if failed process every 2s then start",
    "if failed exec \"/usr/local/bin/check-db --quick\" for 3 checks then restart",
    "if failed file /var/run/app.heartbeat age < 30s then restart",
    "if cpu > 90% for 30s then renice 10",
    "if memory > 512MB then limit memory 600MB",
    "if threads > 500 then restart",
    "if fds > 1000 then alert",
    "if space /var > 90% then clean /var/log/app older than 7d, alert",
    "if inodes / > 95% then alert",
    "if metric load.load1 > 8 for 1m then alert",
    "if metric \"disk.busy_percent{device=\\\"vda\\\"}\" > 95 for 2m then alert",
    "if 3 restarts within 5m then stop, alert",
    "IF CPU >= 150.5% FOR 2 CHECKS THEN SIGNAL sighup, renice -5",
    ("if failed https://[::1]:8443/a?b=c,d status 200-204 body \"\\d+ \\\"ok\\\"\" timeout 2s then signal USR1, "
     "limit cpu 33.3%, sysctl vm.swappiness = 10, run \"/opt/fix.sh --now\" timeout 90s, alert ops"),
    "if failed file \"/var/run/my file\" size >= 1KB every 5s then alert",
    "if failed file /etc/a checksum sha256 E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855 then alert",
    "if failed file /etc/app.conf changed then alert",
    "if metric mem.available < 1.5GB then clean //tmp//cache/ larger than 100MB older than 1d",
    "if metric temp.delta{b=\"2\", a=\"x y\\\\ \\\"z\\\"\"} != -0.25 then alert",
    "if metric x > 0.1 then alert",
    "if metric x > 123456789012345678901234 then alert",
    "if 1 restart within 90m then alert",
    "if cpu > 90% for 1500ms then sysctl net.core.somaxconn = \"a,b; c\"",
    "if cpu > 90% then clean \"/srv/my dir\"",
    "if failed http://h/ every 1s then restart",
    "if failed http://h/ for 1 check then restart",
    "if failed exec \"/bin/x \\\\;y\" then restart",
    "if failed file /x size == 0B then alert",
    "if failed file /x age > 0ms then alert",
    "if anomalous(memory.used_bytes) for 2m then alert",
    "if cpu > 95% for 30s then freeze, alert",
    "if cpu < 1% for 1m then thaw",
    "if anomalous(process.*{name=\"web\",pid=\"12\"}) for 3 checks then restart, alert",
    "if anomalous(\"disk.io?{device=\\\"a b)\\\"}\") then alert",
    "if failed tcp://127.0.0.1:80 then restore /etc/web.conf, restart",
    "if failed process then restore \"/etc/my app/x;y.conf\", restore /srv/data, start",
};

static void test_roundtrip(void **state)
{
    (void)state;
    char text[4096], text2[4096], err[512];
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        parse_ok(valid[i]);
        assert_int_equal(heal_rule_format(&rule, text, sizeof text), 0);
        int rc = heal_rule_parse(text, "svc.conf", 7, &again, err, sizeof err);
        if (rc)
            print_error("%s\n -> %s\n -> %s\n", valid[i], text, err);
        assert_int_equal(rc, 0);
        assert_memory_equal(&rule, &again, sizeof rule);
        assert_int_equal(heal_rule_format(&again, text2, sizeof text2), 0);
        assert_string_equal(text, text2);
    }
}

static void test_canonical(void **state)
{
    (void)state;
    static const struct { const char *in, *out; } cases[] = {
        {"if cpu > 90% for 30s then renice 10", "if cpu > 90% for 30s then renice 10"},
        {"IF Memory>0.5GB for 1 check THEN Limit Memory 1024MiB",
         "if memory > 512MB then limit memory 1GB"},
        {"if failed http://h/ status 200-399 for 60s then signal SIGHUP",
         "if failed http://h/ for 1m then signal HUP"},
        {"if metric \"a.b{z=\\\"1\\\",y=\\\"2\\\"}\" > 1 then alert", "if metric a.b{y=\"2\",z=\"1\"} > 1 then alert"},
        {"if cpu > 90% then run \"/x\"", "if cpu > 90% then run \"/x\" timeout 1m"},
        {"if 2 restart within 120s then stop", "if 2 restarts within 2m then stop"},
        {"if cpu > 90% then clean /srv/x/ older than 1w", "if cpu > 90% then clean /srv/x older than 7d"},
    };
    char text[4096];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        parse_ok(cases[i].in);
        assert_int_equal(heal_rule_format(&rule, text, sizeof text), 0);
        assert_string_equal(text, cases[i].out);
    }
}

/* ---- bad rules: exact messages --------------------------------------------------------- */

static const struct { const char *in, *msg; } bad[] = {
    {"",
     "svc.conf:7:1: expected 'if' at the start of the rule, found end of line"},
    {"iff cpu > 90% then restart",
     "svc.conf:7:1: expected 'if' at the start of the rule, found 'iff' (did you mean 'if'?)"},
    {"if cpuu > 90% then restart",
     "svc.conf:7:4: expected a condition after 'if' ('failed', 'cpu', 'memory', 'threads', 'fds', 'space', 'inodes', 'metric', 'anomalous(METRIC)', 'N restarts within DURATION' or a dotted series name such as gpu.temperature), found 'cpuu' (did you mean 'cpu'?)"},
    {"if memroy > 1GB then restart",
     "svc.conf:7:4: expected a condition after 'if' ('failed', 'cpu', 'memory', 'threads', 'fds', 'space', 'inodes', 'metric', 'anomalous(METRIC)', 'N restarts within DURATION' or a dotted series name such as gpu.temperature), found 'memroy' (did you mean 'memory'?)"},
    {"if cpu > 90% restrt",
     "svc.conf:7:14: expected 'then' after the condition, found 'restrt'"},
    {"if cpu > 90% thn restart",
     "svc.conf:7:14: expected 'then' after the condition, found 'thn' (did you mean 'then'?)"},
    {"if cpu > 90% then restrt",
     "svc.conf:7:19: expected an action after 'then', found 'restrt' (did you mean 'restart'?)"},
    {"if cpu > 90% then",
     "svc.conf:7:18: expected an action after 'then', found end of line"},
    {"if cpu > 90% then restart,",
     "svc.conf:7:27: expected an action after ',', found end of line"},
    {"if cpu > 90% then restart, ,alert",
     "svc.conf:7:28: expected an action after ',', found ','"},
    {"if cpu > 90% then restart now",
     "svc.conf:7:27: expected ',' or end of line after the action, found 'now'"},
    {"if cpu > 90% for 10x then restart",
     "svc.conf:7:18: expected a duration (e.g. 500ms, 30s, 5m, 2h, 7d) after 'for', found '10x'"},
    {"if cpu > 90% for 30 then restart",
     "svc.conf:7:21: expected 'checks' after the count (or a unit: 'for 30s'), found 'then'"},
    {"if cpu > 90% for 0 checks then restart",
     "svc.conf:7:18: check count 0 is out of range (expected 1 to 10000)"},
    {"if cpu > 90% for 20000 checks then restart",
     "svc.conf:7:18: check count 20000 is out of range (expected 1 to 10000)"},
    {"if cpu > 90 then restart",
     "svc.conf:7:10: expected a percentage (e.g. 90%) for 'cpu', found '90'"},
    {"if cpu 90% then restart",
     "svc.conf:7:8: expected a comparison (>, >=, <, <=, ==, !=) after 'cpu', found '90%'"},
    {"if cpu => 90% then restart",
     "svc.conf:7:8: expected a comparison (>, >=, <, <=, ==, !=) after 'cpu', found '='"},
    {"if memory > 512 then restart",
     "svc.conf:7:13: expected a size (e.g. 512MB, 64KiB, 2GB) for 'memory', found '512'"},
    {"if memory > 512XB then restart",
     "svc.conf:7:13: expected a size (e.g. 512MB, 64KiB, 2GB) for 'memory', found '512XB'"},
    {"if space /var > 120% then alert",
     "svc.conf:7:17: percentage 120% for 'space' is out of range (expected 0% to 100%)"},
    {"if space var > 90% then alert",
     "svc.conf:7:10: expected an absolute path after 'space', found 'var'"},
    {"if inodes /var > -1% then alert",
     "svc.conf:7:18: expected a percentage (e.g. 90%) for 'inodes', found '-1%'"},
    {"if threads > many then alert",
     "svc.conf:7:14: expected a count for 'threads' (an integer from 0 to 1000000000), found 'many'"},
    {"if cpu > 90% then renice 25",
     "svc.conf:7:26: nice value 25 is out of range (expected -20 to 19)"},
    {"if cpu > 90% then renice -21",
     "svc.conf:7:26: nice value -21 is out of range (expected -20 to 19)"},
    {"if cpu > 90% then renice ten",
     "svc.conf:7:26: expected a nice value (an integer from -20 to 19), found 'ten'"},
    {"if cpu > 90% then signal FOO",
     "svc.conf:7:26: unknown signal 'FOO' (expected e.g. HUP, TERM, USR1)"},
    {"if cpu > 90% then signal HUPP",
     "svc.conf:7:26: unknown signal 'HUPP' (did you mean 'HUP'?)"},
    {"if cpu > 90% then signal",
     "svc.conf:7:25: expected a signal name after 'signal' (e.g. HUP, TERM, USR1), found end of line"},
    {"if cpu > 90% then limit memory 100KB",
     "svc.conf:7:32: size 100KB for 'limit memory' is below 1MB"},
    {"if cpu > 90% then limit memory lots",
     "svc.conf:7:32: expected a size (e.g. 512MB, 64KiB, 2GB) for 'limit memory', found 'lots'"},
    {"if cpu > 90% then limit cpu 0%",
     "svc.conf:7:29: percentage 0% for 'limit cpu' is out of range (expected 1% to 100000%)"},
    {"if cpu > 90% then limit disk 10%",
     "svc.conf:7:25: expected 'memory' or 'cpu' after 'limit', found 'disk'"},
    {"if cpu > 90% then sysctl vm/swappiness = 10",
     "svc.conf:7:28: sysctl keys use '.', not '/' (e.g. vm.swappiness)"},
    {"if cpu > 90% then sysctl vm..swappiness = 10",
     "svc.conf:7:28: empty part in sysctl key 'vm..swappiness' (no leading, trailing or double '.')"},
    {"if cpu > 90% then sysctl vm.swap$piness = 10",
     "svc.conf:7:33: bad character '$' in sysctl key (letters, digits, '_', '-', '.')"},
    {"if cpu > 90% then sysctl vm.swappiness 10",
     "svc.conf:7:40: expected '=' after the sysctl key, found '10'"},
    {"if cpu > 90% then sysctl vm.swappiness =",
     "svc.conf:7:41: expected a value after 'sysctl KEY =', found end of line"},
    {"if cpu > 90% then clean var/log",
     "svc.conf:7:25: expected an absolute path after 'clean', found 'var/log'"},
    {"if cpu > 90% then clean /",
     "svc.conf:7:25: refusing to clean '/' (the root directory)"},
    {"if cpu > 90% then clean ///",
     "svc.conf:7:25: refusing to clean '/' (the root directory)"},
    {"if cpu > 90% then clean /var/log/../../etc",
     "svc.conf:7:34: '.' and '..' are not allowed in the path to clean"},
    {"if cpu > 90% then clean /etc/",
     "svc.conf:7:25: refusing to clean the system directory '/etc' (name a directory below it)"},
    {"if cpu > 90% then clean /tmp/x older 7d",
     "svc.conf:7:38: expected 'than' after 'older', found '7d'"},
    {"if cpu > 90% then clean /tmp/x older than 7d older than 1d",
     "svc.conf:7:46: 'older than' is given twice"},
    {"if cpu > 90% then run \"\"",
     "svc.conf:7:23: expected a program after 'run' (e.g. \"/usr/local/bin/fix --now\"), found '\"\"'"},
    {"if cpu > 90% then run \"   \"",
     "svc.conf:7:23: expected a program after 'run' (e.g. \"/usr/local/bin/fix --now\"), found '\"   \"'"},
    {"if cpu > 90% then run",
     "svc.conf:7:22: expected a program after 'run' (e.g. \"/usr/local/bin/fix --now\"), found end of line"},
    {"if cpu > 90% then run \"/bin/x\" timeout 2h",
     "svc.conf:7:40: duration 2h after 'timeout' is out of range (expected 1ms to 1h)"},
    {"if cpu > 90% then alert bad!name",
     "svc.conf:7:25: bad alert name 'bad!name' (1-63 letters, digits, '_', '.', '-')"},
    {"if failed exec \"/bin/check then restart",
     "svc.conf:7:16: unterminated string: expected a closing '\"'"},
    {"if failed exec \"\" then restart",
     "svc.conf:7:16: expected a program to run after 'exec' (e.g. \"/usr/bin/check --quick\"), found '\"\"'"},
    {"if failed http://127.0.0.1:8080/health body \"(unclosed\" then restart",
     "svc.conf:7:55: bad regular expression after 'body': missing closing parenthesis"},
    {"if failed http://127.0.0.1:8080/health body \"a\\\"b[\" then restart",
     "svc.conf:7:51: bad regular expression after 'body': missing terminating ] for character class"},
    {"if failed http://127.0.0.1:99999/ then restart",
     "svc.conf:7:28: bad port in URL (expected a number from 1 to 65535)"},
    {"if failed http://127.0.0.1:0/ then restart",
     "svc.conf:7:28: bad port in URL (expected a number from 1 to 65535)"},
    {"if failed http://127.0.0.1:80x/ then restart",
     "svc.conf:7:28: bad port in URL (expected a number from 1 to 65535)"},
    {"if failed http:///x then restart",
     "svc.conf:7:18: expected a host name or address in the URL"},
    {"if failed ftp://host/x then restart",
     "svc.conf:7:11: unsupported URL scheme 'ftp' (expected http, https or tcp)"},
    {"if failed tcp://127.0.0.1 then restart",
     "svc.conf:7:26: expected ':PORT' after the host of a tcp:// URL"},
    {"if failed tcp://127.0.0.1:5432/x then restart",
     "svc.conf:7:31: a tcp:// URL ends after the port"},
    {"if failed http://user@host/ then restart",
     "svc.conf:7:22: user names and passwords in probe URLs are not supported"},
    {"if failed http://[::1/ then restart",
     "svc.conf:7:22: expected ']' to close the IPv6 address in the URL"},
    {"if failed http://h/ status 600 then restart",
     "svc.conf:7:28: expected an HTTP status after 'status' (a class like 2xx, a code like 200 or a range like 200-399), found '600'"},
    {"if failed http://h/ status 2x then restart",
     "svc.conf:7:28: expected an HTTP status after 'status' (a class like 2xx, a code like 200 or a range like 200-399), found '2x'"},
    {"if failed http://h/ latency > 1s then restart",
     "svc.conf:7:29: expected '<' after 'latency', found '>'"},
    {"if failed http://h/ timeout 2s every 1s then restart",
     "svc.conf:7:29: timeout 2s is longer than the probe interval 1s ('every')"},
    {"if failed http://h/ latency < 6s then restart",
     "svc.conf:7:21: latency limit 6s is not below the probe timeout 5s"},
    {"if failed http://h/ timeout 1s timeout 2s then restart",
     "svc.conf:7:32: 'timeout' is given twice"},
    {"if failed http://h/ every 10ms then restart",
     "svc.conf:7:27: duration 10ms after 'every' is out of range (expected 100ms to 1d)"},
    {"if failed process timeout 1s then start",
     "svc.conf:7:19: 'timeout' does not apply to a process probe"},
    {"if failed http://h/ for 2 checks every 1s then restart",
     "svc.conf:7:34: expected 'then' after the condition, found 'every' (probe options come before 'for')"},
    {"if failed proces then start",
     "svc.conf:7:11: expected a probe after 'failed' (an http://, https:// or tcp:// URL, 'process', 'exec' or 'file'), found 'proces' (did you mean 'process'?)"},
    {"if failed then start",
     "svc.conf:7:11: expected a probe after 'failed' (an http://, https:// or tcp:// URL, 'process', 'exec' or 'file'), found 'then'"},
    {"if failed file var/x then alert",
     "svc.conf:7:16: expected an absolute path after 'file', found 'var/x'"},
    {"if failed file /x age 30s then alert",
     "svc.conf:7:23: expected a comparison (>, >=, <, <=, ==, !=) after 'age', found '30s'"},
    {"if failed file /x checksum md5 abc then alert",
     "svc.conf:7:28: expected 'sha256' after 'checksum' (the supported hash), found 'md5'"},
    {"if failed file /x checksum sha256 abc then alert",
     "svc.conf:7:35: expected 64 hex digits after 'checksum sha256', found 'abc'"},
    {"if failed file /x age < 1s size > 1KB then alert",
     "svc.conf:7:28: only one file check per rule, found another: 'size'"},
    {"if 3 restarts in 5m then stop",
     "svc.conf:7:15: expected 'within' after 'restarts', found 'in'"},
    {"if 3 restarts within 5m for 2 checks then stop",
     "svc.conf:7:25: 'for' does not apply to a restart count (the window is 'within')"},
    {"if 0 restarts within 5m then stop",
     "svc.conf:7:4: restart count 0 is out of range (expected 1 to 1000)"},
    {"if 3 restarts within 0s then stop",
     "svc.conf:7:22: duration 0s after 'within' is out of range (expected 1s to 7d)"},
    {"if 3 starts within 5m then stop",
     "svc.conf:7:6: expected 'restarts' after the count, found 'starts' (did you mean 'restarts'?)"},
    {"if metric then alert",
     "svc.conf:7:11: expected a metric name after 'metric' (e.g. load.load1), found 'then'"},
    {"if metric load.load1 > x then alert",
     "svc.conf:7:24: expected a number after the comparison, found 'x'"},
    {"if metric load.load1 > 5XB then alert",
     "svc.conf:7:25: expected a size unit (B, KB, MB, GB, TB) or nothing after the number, found 'XB'"},
    {"if metric \"disk{device=\\\"vda\\\"\" > 1 then alert",
     "svc.conf:7:31: expected ',' or '}' after a label"},
    {"if metric disk{device=\"vda\",device=\"vdb\"} > 1 then alert",
     "svc.conf:7:11: label 'device' is given twice in the metric"},
    {"if metric disk{1x=\"a\"} > 1 then alert",
     "svc.conf:7:16: expected a label name (letters, digits, '_') in the metric's {labels}"},
    {"if metric lo$ad > 1 then alert",
     "svc.conf:7:13: bad character '$' in the metric name"},
    {"if anomalous load.load1 then alert",
     "svc.conf:7:14: expected '(' after 'anomalous' (e.g. anomalous(memory.used_bytes)), found 'load.load1'"},
    {"if anomalous() then alert",
     "svc.conf:7:14: expected a metric name after 'anomalous(' (e.g. memory.used_bytes), found ')'"},
    {"if anomalous(load.load1 then alert",
     "svc.conf:7:25: expected ')' after the metric of 'anomalous(', found 'then'"},
    {"if anomalous(load.load1",
     "svc.conf:7:24: expected ')' after the metric of 'anomalous(', found end of line"},
    {"if anomalous(lo$ad) then alert",
     "svc.conf:7:16: bad character '$' in the metric name"},
    {"if anomalous(load{a=\"b\",a=\"c\"}) then alert",
     "svc.conf:7:14: label 'a' is given twice in the metric"},
    {"if anomalous(then) then alert",
     "svc.conf:7:14: expected a metric name after 'anomalous(' (e.g. memory.used_bytes), found 'then'"},
    {"if anomalousx(load) then alert",
     "svc.conf:7:4: expected a condition after 'if' ('failed', 'cpu', 'memory', 'threads', 'fds', 'space', "
     "'inodes', 'metric', 'anomalous(METRIC)', 'N restarts within DURATION' or a dotted series name such as gpu.temperature), found 'anomalousx(load)'"},
    /* implied metric: only a dotted NAME; the rest as after 'metric' */
    {"if gpu_temperature > 85 then alert",
     "svc.conf:7:4: expected a condition after 'if' ('failed', 'cpu', 'memory', 'threads', 'fds', 'space', "
     "'inodes', 'metric', 'anomalous(METRIC)', 'N restarts within DURATION' or a dotted series name such as gpu.temperature), found 'gpu_temperature'"},
    {"if gpu.temp$ > 85 then alert",
     "svc.conf:7:4: expected a condition after 'if' ('failed', 'cpu', 'memory', 'threads', 'fds', 'space', "
     "'inodes', 'metric', 'anomalous(METRIC)', 'N restarts within DURATION' or a dotted series name such as gpu.temperature), found 'gpu.temp$'"},
    {"if http://127.0.0.1/ then restart",
     "svc.conf:7:4: expected a condition after 'if' ('failed', 'cpu', 'memory', 'threads', 'fds', 'space', "
     "'inodes', 'metric', 'anomalous(METRIC)', 'N restarts within DURATION' or a dotted series name such as gpu.temperature), found 'http://127.0.0.1/'"},
    {"if gpu.temperature then alert",
     "svc.conf:7:20: expected a comparison (>, >=, <, <=, ==, !=) after the metric, found 'then'"},
    {"if gpu.temperature{gpu=\"0\" > 85 then alert",
     "svc.conf:7:28: expected ',' or '}' after a label"},
    {"if gpu.temperature > hot then alert",
     "svc.conf:7:22: expected a number after the comparison, found 'hot'"},
    {"if 1.5 > 2 then alert",
     "svc.conf:7:4: expected a restart count (an integer from 1 to 1000), found '1.5'"},
    {"if cpu > 90% then restart, restart, restart, restart, restart, restart, restart, restart, restart",
     "svc.conf:7:91: too many actions (at most 8)"},
    {"if cpu > 90% then restart \"x",
     "svc.conf:7:27: unterminated string: expected a closing '\"'"},
    {"if cpu > 90% then restart else alert",
     "svc.conf:7:27: expected ',' or end of line after the action, found 'else'"},
    /* a rule cannot know a pid */
    {"if cpu > 90% then signal TERM pid 42",
     "svc.conf:7:31: a rule cannot name a pid (pids change): 'signal ... pid N' is for proposed actions only"},
    {"if cpu > 90% then renice 10 pid 42",
     "svc.conf:7:29: a rule cannot name a pid (pids change): 'renice ... pid N' is for proposed actions only"},
    {"if cpu > 90% then restore etc/web.conf",
     "svc.conf:7:27: expected an absolute path after 'restore', found 'etc/web.conf'"},
    {"if cpu > 90% then restore /etc/../shadow",
     "svc.conf:7:31: '.' and '..' are not allowed in the path to restore"},
    {"if cpu > 90% then restore",
     "svc.conf:7:26: expected an absolute path after 'restore', found end of line"},
};

static void test_bad(void **state)
{
    (void)state;
    char err[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(err, 'x', sizeof err);
        int rc = heal_rule_parse(bad[i].in, "svc.conf", 7, &rule, err, sizeof err);
        if (rc != -EINVAL || strcmp(err, bad[i].msg))
            print_error("input: %s\nwant:  %s\ngot:   %s\n", bad[i].in, bad[i].msg, rc ? err : "(parsed)");
        assert_int_equal(rc, -EINVAL);
        assert_string_equal(err, bad[i].msg);
        assert_int_equal(rule.cond.kind, HEAL_COND_NONE); /* cleared on error */
    }
}

/* heal_action_parse_text: one action, every kind, as the brain proposes them */
static void test_parse_text(void **state)
{
    (void)state;
    static const char *const good[] = {
        "start", "stop", "restart", "signal HUP", "signal SIGUSR1", "renice 10", "renice -5",
        "limit memory 600MB", "limit cpu 50%", "sysctl vm.swappiness = 10", "clean /var/log/app older than 7d",
        "clean /srv/cache larger than 100MB", "run \"/usr/local/bin/fix --now\" timeout 30s", "alert", "alert ops",
        "freeze", "thaw", "restore /etc/web.conf", "restore \"/etc/my app.conf\"", "signal TERM pid 42",
        "renice 19 pid 4242",
    };
    static const heal_action_kind kinds[] = {
        HEAL_ACT_START, HEAL_ACT_STOP, HEAL_ACT_RESTART, HEAL_ACT_SIGNAL, HEAL_ACT_SIGNAL, HEAL_ACT_RENICE,
        HEAL_ACT_RENICE, HEAL_ACT_LIMIT_MEMORY, HEAL_ACT_LIMIT_CPU, HEAL_ACT_SYSCTL, HEAL_ACT_CLEAN, HEAL_ACT_CLEAN,
        HEAL_ACT_PLAYBOOK, HEAL_ACT_ALERT, HEAL_ACT_ALERT, HEAL_ACT_FREEZE, HEAL_ACT_THAW, HEAL_ACT_RESTORE,
        HEAL_ACT_RESTORE, HEAL_ACT_SIGNAL_PID, HEAL_ACT_RENICE_PID,
    };
    char err[512], text[1024];
    heal_action a, b;
    bool seen[HEAL_ACT_COUNT] = {false};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int rc = heal_action_parse_text(good[i], "web", &a, err, sizeof err);
        if (rc)
            print_error("%s -> %s\n", good[i], err);
        assert_int_equal(rc, 0);
        assert_int_equal(a.kind, kinds[i]);
        assert_string_equal(a.service, "web");
        seen[a.kind] = true;
        /* heal_action_format's text parses back to the same action */
        assert_int_equal(heal_action_format(&a, text, sizeof text), 0);
        rc = heal_action_parse_text(text, "web", &b, err, sizeof err);
        if (rc)
            print_error("%s -> %s -> %s\n", good[i], text, err);
        assert_int_equal(rc, 0);
        assert_memory_equal(&a, &b, sizeof a);
    }
    for (int k = 0; k < HEAL_ACT_COUNT; k++)
        if (!seen[k] && k != HEAL_ACT_GENOME) /* never parsed: test_genome.c */
            fail_msg("kind %s not tested", heal_action_name((heal_action_kind)k));
    assert_int_equal(heal_action_parse_text("signal TERM pid 42", "web", &a, err, sizeof err), 0);
    assert_int_equal(a.signum, SIGTERM);
    assert_int_equal(a.pid, 42);
    assert_int_equal(heal_action_parse_text("renice 10 pid 7", "", &a, err, sizeof err), 0);
    assert_int_equal(a.nice, 10);
    assert_int_equal(a.pid, 7);
    assert_string_equal(a.service, "");
    assert_int_equal(heal_action_parse_text("restore /etc//web.conf/", "web", &a, err, sizeof err), -EINVAL);
    assert_int_equal(heal_action_parse_text("restore /etc/web.d/", "web", &a, err, sizeof err), 0);
    assert_string_equal(a.path, "/etc/web.d");
    assert_int_equal(heal_action_format(&a, text, sizeof text), 0);
    assert_string_equal(text, "restore /etc/web.d");

    static const struct { const char *in, *msg; } bad_text[] = {
        {"", "action '', column 1: expected an action (start, stop, restart, signal, renice, limit, sysctl, clean, "
             "run, alert, freeze, thaw, restore), found end of line"},
        {"restrat", "action 'restrat', column 1: expected an action (start, stop, restart, signal, renice, limit, "
                    "sysctl, clean, run, alert, freeze, thaw, restore), found 'restrat' (did you mean 'restart'?)"},
        {"restart, alert", "action 'restart, alert', column 8: one action only (found ',')"},
        {"restart now", "action 'restart now', column 9: expected end of the action, found 'now'"},
        {"signal TERM pid", "action 'signal TERM pid', column 16: expected a pid (an integer from 1 to 4194304), "
                            "found end of line"},
        {"signal TERM pid x", "action 'signal TERM pid x', column 17: expected a pid (an integer from 1 to 4194304), "
                              "found 'x'"},
        {"signal TERM pid 0", "action 'signal TERM pid 0', column 17: pid 0 is out of range (expected 1 to 4194304)"},
        {"signal BOGUS pid 3", "action 'signal BOGUS pid 3', column 8: unknown signal 'BOGUS' (expected e.g. HUP, "
                               "TERM, USR1)"},
        {"renice 99 pid 3", "action 'renice 99 pid 3', column 8: nice value 99 is out of range (expected -20 to 19)"},
        {"restore", "action 'restore', column 8: expected an absolute path after 'restore', found end of line"},
        {"restore web.conf", "action 'restore web.conf', column 9: expected an absolute path after 'restore', "
                             "found 'web.conf'"},
        {"restore /etc/./x", "action 'restore /etc/./x', column 13: '.' and '..' are not allowed in the path to "
                             "restore"},
        {"limit disk 5GB", "action 'limit disk 5GB', column 7: expected 'memory' or 'cpu' after 'limit', found "
                           "'disk'"},
        {"restart\n", "action 'restart\n', column 8: unexpected control character 0x0a"},
    };
    for (size_t i = 0; i < sizeof bad_text / sizeof bad_text[0]; i++) {
        memset(&a, 0x55, sizeof a);
        int rc = heal_action_parse_text(bad_text[i].in, "web", &a, err, sizeof err);
        if (rc != -EINVAL || strcmp(err, bad_text[i].msg))
            print_error("input: %s\nwant:  %s\ngot:   %s\n", bad_text[i].in, bad_text[i].msg, rc ? err : "(parsed)");
        assert_int_equal(rc, -EINVAL);
        assert_string_equal(err, bad_text[i].msg);
        assert_int_equal(a.kind, 0); /* cleared on error */
    }
    assert_int_equal(heal_action_parse_text(NULL, "web", &a, err, sizeof err), -EINVAL);
    assert_int_equal(heal_action_parse_text("restart", "web", &a, NULL, 0), 0);
}

static void test_limits(void **state)
{
    (void)state;
    char line[1100], err[512];
    /* exactly 1024 characters is fine */
    memset(line, ' ', sizeof line);
    memcpy(line, "if cpu > 90% then restart", 25);
    line[HEAL_RULE_LINE_MAX] = 0;
    assert_int_equal(heal_rule_parse(line, "svc.conf", 7, &rule, err, sizeof err), 0);
    /* one more is not */
    line[HEAL_RULE_LINE_MAX] = ' ';
    line[HEAL_RULE_LINE_MAX + 1] = 0;
    assert_int_equal(heal_rule_parse(line, "svc.conf", 7, &rule, err, sizeof err), -EINVAL);
    assert_string_equal(err, "svc.conf:7:1025: rule is longer than 1024 characters");
    /* control characters */
    assert_int_equal(heal_rule_parse("if cpu > 90% then\nrestart", "svc.conf", 7, &rule, err, sizeof err), -EINVAL);
    assert_string_equal(err, "svc.conf:7:18: unexpected control character 0x0a");
    /* tabs are blanks */
    assert_int_equal(heal_rule_parse("if\tcpu >\t90% then restart", "svc.conf", 7, &rule, err, sizeof err), 0);
    /* a string longer than its field */
    char big[700];
    snprintf(big, sizeof big, "if failed exec \"/%0600d\" then restart", 0);
    assert_int_equal(heal_rule_parse(big, "svc.conf", 7, &rule, err, sizeof err), -EINVAL);
    assert_string_equal(err, "svc.conf:7:16: the program is longer than 511 characters");
    /* no file name, no message buffer, NULL text */
    assert_int_equal(heal_rule_parse("if", NULL, 3, &rule, err, sizeof err), -EINVAL);
    assert_string_equal(err, "<rule>:3:3: expected a condition after 'if' ('failed', 'cpu', 'memory', "
                             "'threads', 'fds', 'space', 'inodes', 'metric', 'anomalous(METRIC)', 'N restarts within DURATION' or a dotted series name such as gpu.temperature), "
                             "found end of line");
    assert_int_equal(heal_rule_parse("if", "f", 1, &rule, NULL, 0), -EINVAL);
    assert_int_equal(heal_rule_parse(NULL, "f", 1, &rule, err, sizeof err), -EINVAL);
    /* a short message buffer is cut, terminated */
    assert_int_equal(heal_rule_parse("if", "f", 1, &rule, err, 8), -EINVAL);
    assert_string_equal(err, "f:1:3: ");
    heal_rule_free(&rule);
}

static void test_format_errors(void **state)
{
    (void)state;
    char small[16];
    parse_ok("if failed http://127.0.0.1:8080/health for 2 checks then restart");
    assert_int_equal(heal_rule_format(&rule, small, sizeof small), -ENAMETOOLONG);
    assert_int_equal(strlen(small), sizeof small - 1);
    memset(&again, 0, sizeof again);
    assert_int_equal(heal_rule_format(&again, small, sizeof small), -EINVAL);
    parse_ok("if cpu > 1% then restart");
    rule.nactions = 0;
    assert_int_equal(heal_rule_format(&rule, small, sizeof small), -EINVAL);
}

static void test_timing_and_helpers(void **state)
{
    (void)state;
    int64_t iv, to;
    char err[128];
    heal_probe_spec p = {0};
    assert_int_equal(heal_probe_timing(&p, 0, &iv, &to, err, sizeof err), 0);
    assert_int_equal(iv, HEAL_PROBE_INTERVAL_MS);
    assert_int_equal(to, HEAL_PROBE_TIMEOUT_MS);
    assert_int_equal(heal_probe_timing(&p, 2000, &iv, &to, err, sizeof err), 0);
    assert_int_equal(iv, 2000);
    assert_int_equal(to, 2000); /* the default timeout is cut to the interval */
    p.timeout_ms = 3000;
    assert_int_equal(heal_probe_timing(&p, 2000, &iv, &to, err, sizeof err), -EINVAL);
    assert_string_equal(err, "probe timeout 3s is longer than the probe interval 2s");
    p.interval_ms = 5000;
    assert_int_equal(heal_probe_timing(&p, 2000, &iv, &to, err, sizeof err), 0);
    assert_int_equal(iv, 5000);
    assert_int_equal(to, 3000);

    assert_true(heal_cmp_eval(HEAL_CMP_GT, 2, 1));
    assert_false(heal_cmp_eval(HEAL_CMP_GT, 1, 1));
    assert_true(heal_cmp_eval(HEAL_CMP_GE, 1, 1));
    assert_true(heal_cmp_eval(HEAL_CMP_LT, 0, 1));
    assert_true(heal_cmp_eval(HEAL_CMP_LE, 1, 1));
    assert_true(heal_cmp_eval(HEAL_CMP_EQ, 1, 1));
    assert_true(heal_cmp_eval(HEAL_CMP_NE, 0, 1));
    assert_false(heal_cmp_eval(HEAL_CMP_COUNT, 0, 1));
    assert_string_equal(heal_cmp_name(HEAL_CMP_NE), "!=");
    assert_null(heal_cmp_name(HEAL_CMP_COUNT));
    assert_string_equal(heal_resource_name(HEAL_RES_INODES), "inodes");
    assert_string_equal(heal_probe_kind_name(HEAL_PROBE_HTTPS), "https");

    char buf[32];
    static const struct { int64_t ms; const char *s; } d[] = {
        {0, "0ms"}, {1, "1ms"}, {1500, "1500ms"}, {2000, "2s"}, {90000, "90s"}, {5400000, "90m"},
        {86400000, "1d"}, {7 * 86400000LL, "7d"}, {3600000 + 1, "3600001ms"},
    };
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
        heal_rule_format_duration(d[i].ms, buf, sizeof buf);
        assert_string_equal(buf, d[i].s);
    }
    heal_rule_format_size(1536ULL << 20, buf, sizeof buf);
    assert_string_equal(buf, "1536MB");
    heal_rule_format_size(100, buf, sizeof buf);
    assert_string_equal(buf, "100B");
    heal_rule_format_size(2ULL << 40, buf, sizeof buf);
    assert_string_equal(buf, "2TB");
}

/* ---- fuzz: random mutations of valid rules ----------------------------------------------- */

static const char *const splice[] = {
    " ", "\"", "\\", ",", ";", "{", "}", "=", "<", ">=", "!", "%", "://", "[", "]", ":", "/", "..",
    "-", ".", "0", "9", "99999", "1e308", "e", "xx", "ms", "GB", "then", "for", "if", "failed",
    "checks", "restart", "metric", "a=\"b\"", "\\\"", "older than", "within", "body", "status",
    "\t", "\x80", "(", "[[:alpha:", "?", "*",
};

static void mutate(char *s, size_t cap)
{
    size_t len = strlen(s);
    size_t at = len ? (size_t)rand() % (len + 1) : 0;
    switch (rand() % 5) {
    case 0: /* delete a run */
        if (len) {
            size_t n = 1 + (size_t)rand() % 8;
            if (at + n > len)
                n = len - at;
            memmove(s + at, s + at + n, len - at - n + 1);
        }
        break;
    case 1: /* replace one byte */
        if (at < len)
            s[at] = (char)(1 + rand() % 255);
        break;
    case 2: /* truncate */
        s[at] = 0;
        break;
    default: { /* insert a token */
        const char *w = splice[(size_t)rand() % (sizeof splice / sizeof splice[0])];
        size_t wl = strlen(w);
        if (len + wl + 1 < cap) {
            memmove(s + at + wl, s + at, len - at + 1);
            memcpy(s + at, w, wl);
        }
        break;
    }
    }
}

static void test_fuzz(void **state)
{
    (void)state;
    const char *seed_env = getenv("IPPOC_FUZZ_SEED");
    unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 10) : 12345u;
    srand(seed);
    char line[2048], text[4096], text2[4096], err[512];
    int parsed = 0;
    for (int it = 0; it < 50000; it++) {
        snprintf(line, sizeof line, "%s", valid[(size_t)rand() % (sizeof valid / sizeof valid[0])]);
        for (int m = 1 + (rand() % 4 == 0); m > 0; m--)
            mutate(line, sizeof line);
        if (heal_rule_parse(line, "fuzz", it, &rule, err, sizeof err)) {
            assert_true(strncmp(err, "fuzz:", 5) == 0);
            continue;
        }
        parsed++;
        /* anything accepted must print and re-parse to the same struct */
        assert_int_equal(heal_rule_format(&rule, text, sizeof text), 0);
        int rc = heal_rule_parse(text, "fuzz", it, &again, err, sizeof err);
        if (rc || memcmp(&rule, &again, sizeof rule)) {
            print_error("seed %u iteration %d\n in:  %s\n out: %s\n %s\n", seed, it, line, text, rc ? err : "structs differ");
            fail();
        }
        assert_int_equal(heal_rule_format(&again, text2, sizeof text2), 0);
        assert_string_equal(text, text2);
        heal_rule_free(&rule);
    }
    print_message("fuzz: seed %u, 50000 mutations, %d accepted and round-tripped\n", seed, parsed);
    assert_true(parsed > 1000); /* the loop does reach the accepting paths */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http),         cmocka_unit_test(test_http_options),
        cmocka_unit_test(test_tcp_process_exec), cmocka_unit_test(test_file),
        cmocka_unit_test(test_resources),    cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_implied_metric),
        cmocka_unit_test(test_restarts),     cmocka_unit_test(test_actions),
        cmocka_unit_test(test_anomalous),
        cmocka_unit_test(test_roundtrip),    cmocka_unit_test(test_canonical),
        cmocka_unit_test(test_bad),          cmocka_unit_test(test_limits),
        cmocka_unit_test(test_parse_text),
        cmocka_unit_test(test_format_errors), cmocka_unit_test(test_timing_and_helpers),
        cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
