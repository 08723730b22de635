/* test_parsers.c: unit tests of the sensor helpers that need no files:
 * label text and escaping, name conversion, number scanners, the cpu
 * percent arithmetic, the tcp state counter, mount handling, the
 * /proc/PID/stat parser, cursor tables and the due rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sense/sense_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void test_labels_sorted_and_escaped(void **st)
{
    char out[256];
    assert_int_equal(sn_labels(out, sizeof out, 2, "state", "user", "cpu", "cpu0"), 0);
    assert_string_equal(out, "cpu=\"cpu0\",state=\"user\"");
    assert_int_equal(sn_labels(out, sizeof out, 1, "mountpoint", "/a \"b\"\\c\nd"), 0);
    assert_string_equal(out, "mountpoint=\"/a \\\"b\\\"\\\\c\\nd\"");
    assert_int_equal(sn_labels(out, sizeof out, 3, "mountpoint", "/", "device", "/dev/vda",
                               "fstype", "ext4"), 0);
    assert_string_equal(out, "device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\"");
    assert_int_equal(sn_labels(out, sizeof out, 0), 0);
    assert_string_equal(out, "");
    char small[8];
    assert_int_equal(sn_labels(small, sizeof small, 1, "k", "long value"), -ENAMETOOLONG);
    assert_int_equal(strlen(small), 7);
}

static void test_snake(void **st)
{
    char o[64];
    sn_snake("TcpExt", 6, o, sizeof o);
    assert_string_equal(o, "tcp_ext");
    sn_snake("IpExt", 5, o, sizeof o);
    assert_string_equal(o, "ip_ext");
    sn_snake("IcmpMsg", 7, o, sizeof o);
    assert_string_equal(o, "icmp_msg");
    sn_snake("UdpLite", 7, o, sizeof o);
    assert_string_equal(o, "udp_lite");
    sn_snake("MPTcpExt", 8, o, sizeof o);
    assert_string_equal(o, "mp_tcp_ext");
    sn_snake("Tcp", 3, o, sizeof o);
    assert_string_equal(o, "tcp");
}

static void test_scanners(void **st)
{
    const char *t = "  123 -45 0.05 2.18x 18446744073709551615";
    const char *p = t, *e = t + strlen(t);
    bool ok;
    assert_int_equal(sn_u64(&p, e, &ok), 123);
    assert_true(ok);
    assert_int_equal(sn_i64(&p, e, &ok), -45);
    assert_true(ok);
    assert_float_equal(sn_dbl(&p, e, &ok), 0.05, 1e-12);
    assert_float_equal(sn_dbl(&p, e, &ok), 2.18, 1e-12);
    assert_int_equal(*p, 'x');
    p++;
    assert_true(sn_u64(&p, e, &ok) == UINT64_MAX);
    sn_u64(&p, e, &ok);
    assert_false(ok);
}

static void test_cpu_percent(void **st)
{
    uint64_t a[SN_CPU_NSTATES] = {100, 0, 50, 1000, 10, 0, 5, 0, 20, 0};
    uint64_t b[SN_CPU_NSTATES] = {150, 0, 75, 1025, 10, 0, 5, 0, 40, 0};
    double pct[SN_CPU_NSTATES];
    assert_true(sn_cpu_percent(a, b, pct));
    assert_float_equal(pct[SN_CPU_USER], 50.0, 1e-9);
    assert_float_equal(pct[SN_CPU_SYSTEM], 25.0, 1e-9);
    assert_float_equal(pct[SN_CPU_IDLE], 25.0, 1e-9);
    assert_float_equal(pct[SN_CPU_GUEST], 20.0, 1e-9); /* inside user, not in the total */
    assert_false(sn_cpu_percent(a, a, pct));
}

static void test_rate(void **st)
{
    uint64_t prev = 0;
    assert_true(isnan(sn_rate(100, &prev, false, 1.0))); /* first reading primes */
    assert_float_equal(sn_rate(300, &prev, true, 2.0), 100.0, 1e-9);
    assert_true(isnan(sn_rate(50, &prev, true, 1.0))); /* went back: no value */
    assert_float_equal(sn_rate(60, &prev, true, 1.0), 10.0, 1e-9);
}

static void test_tcp_count(void **st)
{
    const char *t =
        "  sl  local_address rem_address   st tx_queue\n"
        "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000\n"
        "   1: 0100007F:1F90 0100007F:D2C4 01 00000000:00000000\n"
        "  12: 0100007F:1F90 0100007F:D2C6 06 00000000:00000000\n"
        "   3: 0100007F:1F90 0100007F:D2C8 0";
    uint64_t c[16] = {0};
    size_t used = sn_tcp_count(t, strlen(t), true, c);
    assert_int_equal(c[0x0A], 1);
    assert_int_equal(c[1], 1);
    assert_int_equal(c[6], 1);
    assert_int_equal(t[used], ' '); /* the partial last line is left */
    assert_string_equal(t + used, "   3: 0100007F:1F90 0100007F:D2C8 0");
}

static void test_mounts(void **st)
{
    char m[] = "/mnt/my\\040disk\\011tab";
    sn_unescape_mount(m);
    assert_string_equal(m, "/mnt/my disk\ttab");
    assert_true(sn_fs_skip_type("proc"));
    assert_true(sn_fs_skip_type("cgroup2"));
    assert_true(sn_fs_skip_type("overlay"));
    assert_true(sn_fs_skip_type("nfs4"));
    assert_true(sn_fs_skip_type("fuse.sshfs"));
    assert_false(sn_fs_skip_type("ext4"));
    assert_false(sn_fs_skip_type("xfs"));
    assert_false(sn_fs_skip_type("tmpfs"));
    assert_false(sn_fs_skip_type("fuseblk"));
}

static void test_pid_stat(void **st)
{
    const char *t = "4243 (my (odd) name) S 1 2 3 0 -1 4194560 11 0 22 0 33 44 0 0 20 0 5 0 "
                    "6000 7000 80 18446744073709551615 1 1\n";
    sn_pidstat ps;
    assert_int_equal(sn_parse_pid_stat(t, strlen(t), &ps), 0);
    assert_string_equal(ps.comm, "my (odd) name");
    assert_int_equal(ps.state, 'S');
    assert_int_equal(ps.minflt, 11);
    assert_int_equal(ps.majflt, 22);
    assert_int_equal(ps.utime, 33);
    assert_int_equal(ps.stime, 44);
    assert_int_equal(ps.threads, 5);
    assert_int_equal(ps.starttime, 6000);
    assert_int_equal(ps.vsize, 7000);
    assert_int_equal(ps.rss_pages, 80);
    assert_int_equal(sn_parse_pid_stat("garbage", 7, &ps), -EINVAL);
}

typedef struct ent {
    sn_key k;
    int v;
} ent;

static void test_tab(void **st)
{
    sn_tab t;
    sn_tab_init(&t, sizeof(ent), 3);
    int cur = 0;
    bool created;
    assert_int_equal(sn_tab_find(&t, &cur, "a", 1, &created), 0);
    assert_true(created);
    assert_int_equal(sn_tab_find(&t, &cur, "b", 1, &created), 1);
    cur = 0;
    assert_int_equal(sn_tab_find(&t, &cur, "a", 1, &created), 0);
    assert_false(created);
    assert_int_equal(cur, 1);
    assert_int_equal(sn_tab_find(&t, &cur, "b", 1, &created), 1);
    cur = 0; /* out of order */
    assert_int_equal(sn_tab_find(&t, &cur, "b", 1, &created), 1);
    assert_false(created);
    assert_int_equal(sn_tab_find(&t, &cur, "c", 1, &created), 2);
    assert_int_equal(sn_tab_find(&t, &cur, "d", 1, &created), -1); /* full */
    assert_string_equal(((ent *)sn_tab_at(&t, 2))->k.key, "c");
    sn_tab_free(&t);
}

static void test_due(void **st)
{
    assert_true(sn_due(1000, 1000));
    assert_true(sn_due(12345000, 1000));
    assert_true(sn_due(20000, 10000));
    assert_false(sn_due(21000, 10000));
    assert_true(sn_due(30000, 10000));
    assert_true(sn_due(60000, 60000));
    assert_false(sn_due(61000, 60000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labels_sorted_and_escaped),
        cmocka_unit_test(test_snake),
        cmocka_unit_test(test_scanners),
        cmocka_unit_test(test_cpu_percent),
        cmocka_unit_test(test_rate),
        cmocka_unit_test(test_tcp_count),
        cmocka_unit_test(test_mounts),
        cmocka_unit_test(test_pid_stat),
        cmocka_unit_test(test_tab),
        cmocka_unit_test(test_due),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
