/* test_kmsg.c: kernel messages as evidence: parsing /dev/kmsg's record
 * format, classifying OOM kills, I/O and filesystem errors, segfaults, hung
 * tasks and clock messages with the process they name, reading a file of
 * records by time window, garbage records, the deadline, and a real record
 * written to /dev/kmsg when this test may (root). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "brain/signature.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct fx {
    char dir[64], file[128];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ippoc-kmsg-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->file, sizeof f->file, "%s/kmsg", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    unlink(f->file);
    rmdir(f->dir);
    free(f);
    return 0;
}

static int64_t wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The kernel's monotonic microsecond stamp of wall time w (ms). */
static long long usec_at(int64_t w)
{
    struct timespec m;
    clock_gettime(CLOCK_MONOTONIC, &m);
    int64_t mono_ms = (int64_t)m.tv_sec * 1000 + m.tv_nsec / 1000000;
    return (long long)(mono_ms - (wall_ms() - w)) * 1000;
}

static const char *classify(const char *t, int *pid, char *comm)
{
    return brain_kmsg_classify(t, strlen(t), pid, comm, 32);
}

static void test_parse(void **state)
{
    (void)state;
    brain_kmsg_rec r;
    const char *rec = "6,1234,5678901,-,caller=T1;Out of memory: Killed process 42 (web)\n SUBSYSTEM=mem\n";
    assert_int_equal(brain_kmsg_parse(rec, strlen(rec), &r), 0);
    assert_int_equal(r.pri, 6);
    assert_int_equal(r.seq, 1234);
    assert_int_equal(r.usec, 5678901);
    assert_int_equal(r.len, strlen("Out of memory: Killed process 42 (web)"));
    assert_memory_equal(r.text, "Out of memory", 13);
    static const char *const bad[] = {"", "garbage", "6,1;x", "6,1,2;x", "a,1,2,-;x", "6,,2,-;x",
                                      " SUBSYSTEM=x", "6,1,99999999999999999999999,-;x", "2000,1,2,-;x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(brain_kmsg_parse(bad[i], strlen(bad[i]), &r), -EINVAL);
}

static void test_classify(void **state)
{
    (void)state;
    int pid;
    char comm[32];
    assert_string_equal(classify("Out of memory: Killed process 4242 (stress-ng) total-vm:1kB", &pid, comm),
                        "oom_kill");
    assert_int_equal(pid, 4242);
    assert_string_equal(comm, "stress-ng");
    assert_string_equal(classify("Memory cgroup out of memory: Killed process 77 (java) total-vm:2kB", &pid, comm),
                        "oom_kill");
    assert_int_equal(pid, 77);
    assert_string_equal(comm, "java");
    assert_string_equal(classify("oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),task=hog,pid=99,uid=0", &pid,
                                 comm),
                        "oom_kill");
    assert_int_equal(pid, 99);
    assert_string_equal(comm, "hog");
    assert_string_equal(classify("web[3131]: segfault at 0 ip 000055 sp 00007ff error 4 in web[5000+1000]", &pid,
                                 comm),
                        "segfault");
    assert_int_equal(pid, 3131);
    assert_string_equal(comm, "web");
    assert_string_equal(classify("traps: app[12] general protection fault ip:4005 sp:7ff error:0", &pid, comm),
                        "segfault");
    assert_int_equal(pid, 12);
    assert_string_equal(comm, "app");
    assert_string_equal(classify("traps: app[13] trap invalid opcode ip:4005 sp:7ff error:0", &pid, comm), "segfault");
    assert_int_equal(pid, 13);
    assert_string_equal(classify("INFO: task db-writer:812 blocked for more than 120 seconds.", &pid, comm),
                        "hung_task");
    assert_int_equal(pid, 812);
    assert_string_equal(comm, "db-writer");
    assert_string_equal(classify("blk_update_request: I/O error, dev sda, sector 2048 op 0x1:(WRITE)", &pid, comm),
                        "io_error");
    assert_int_equal(pid, 0);
    assert_string_equal(classify("Buffer I/O error on dev sdb1, logical block 0, async page read", &pid, comm),
                        "io_error");
    assert_string_equal(classify("EXT4-fs error (device sda1): ext4_find_entry:1455: inode #2: comm ls: reading",
                                 &pid, comm),
                        "fs_error");
    assert_string_equal(classify("XFS (dm-0): metadata I/O error in \"xfs_trans_read_buf\"", &pid, comm), "fs_error");
    assert_string_equal(classify("clocksource: timekeeping watchdog on CPU1: Marking clocksource 'tsc' as unstable",
                                 &pid, comm),
                        "clock");
    assert_null(classify("usb 1-1: new high-speed USB device number 2", &pid, comm));
    assert_null(classify("", &pid, comm));
    /* a comm with no closing parenthesis: kind kept, comm empty */
    assert_string_equal(classify("Out of memory: Killed process 5 (unterminated", &pid, comm), "oom_kill");
    assert_int_equal(pid, 5);
    assert_string_equal(comm, "");
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static const json_t *find_pid(const json_t *arr, int pid)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (json_integer_value(json_object_get(v, "pid")) == pid) return v;
    return NULL;
}

static void test_read_file_window(void **state)
{
    fx *f = *state;
    int64_t now = wall_ms();
    char text[4096];
    snprintf(text, sizeof text,
             "6,1,%lld,-;Out of memory: Killed process 11 (early)\n"        /* before the window */
             "6,2,%lld,-;Out of memory: Killed process 12 (inside)\n"       /* in it */
             " SUBSYSTEM=memory\n"                                          /* dictionary line */
             "this is not a record\n"                                       /* garbage */
             "3,3,%lld,-;web[13]: segfault at 8 ip 1 sp 2 error 4\n"        /* in it */
             "6,4,%lld,-;usb 1-1: nothing to see\n"                         /* not evidence */
             "6,5,%lld,-;Out of memory: Killed process 14 (late)\n",        /* after the window */
             usec_at(now - 60000), usec_at(now - 5000), usec_at(now - 4000), usec_at(now - 3000),
             usec_at(now + 60000));
    write_file(f->file, text);
    json_t *out = json_array();
    int bad = 0;
    bool cut = true;
    char err[256];
    assert_int_equal(brain_kmsg_read(f->file, now - 10000, now, brain_sig_mono_ms() + 5000, out, &bad, &cut, err,
                                     sizeof err),
                     0);
    assert_false(cut);
    assert_int_equal(bad, 1);
    assert_int_equal(json_array_size(out), 2);
    const json_t *o = find_pid(out, 12);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "kind")), "oom_kill");
    assert_string_equal(json_string_value(json_object_get(o, "comm")), "inside");
    int64_t ts = json_integer_value(json_object_get(o, "ts"));
    assert_true(ts >= now - 5000 - 50 && ts <= now - 5000 + 50);
    const json_t *sg = find_pid(out, 13);
    assert_non_null(sg);
    assert_string_equal(json_string_value(json_object_get(sg, "kind")), "segfault");
    assert_null(find_pid(out, 11));
    assert_null(find_pid(out, 14));
    json_decref(out);
}

static void test_missing_and_deadline(void **state)
{
    fx *f = *state;
    json_t *out = json_array();
    int bad;
    bool cut;
    char err[256];
    assert_int_equal(brain_kmsg_read("/nonexistent/kmsg", 0, INT64_MAX, brain_sig_mono_ms() + 1000, out, &bad, &cut,
                                     err, sizeof err),
                     -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/kmsg"));
    /* many records and a deadline already past: stops at once, says so */
    FILE *fp = fopen(f->file, "w");
    assert_non_null(fp);
    for (int i = 0; i < 20000; i++)
        fprintf(fp, "6,%d,%lld,-;Out of memory: Killed process %d (x)\n", i, usec_at(wall_ms()), 1000 + i);
    fclose(fp);
    int64_t t0 = brain_sig_mono_ms();
    assert_int_equal(brain_kmsg_read(f->file, 0, INT64_MAX, t0, out, &bad, &cut, err, sizeof err), 0);
    assert_true(cut);
    assert_true(json_array_size(out) < 20000);
    assert_true(brain_sig_mono_ms() - t0 < 200);
    /* with time: all of them */
    json_array_clear(out);
    assert_int_equal(brain_kmsg_read(f->file, 0, INT64_MAX, brain_sig_mono_ms() + 5000, out, &bad, &cut, err,
                                     sizeof err),
                     0);
    assert_false(cut);
    assert_int_equal(json_array_size(out), 1024); /* a flood: the newest 1024 */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(out, 1023), "pid")), 1000 + 19999);
    json_decref(out);
}

/* A real record through the kernel: root may write to /dev/kmsg. */
static void test_dev_kmsg(void **state)
{
    (void)state;
    int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        print_message("skipped: /dev/kmsg not writable here (%s)\n", strerror(errno));
        skip();
    }
    int pid = 400000 + (int)(getpid() % 100000);
    char rec[256];
    int n = snprintf(rec, sizeof rec, "<14>ippoc-test: Out of memory: Killed process %d (ippocsigtest)\n", pid);
    int64_t before = wall_ms();
    ssize_t w = write(fd, rec, (size_t)n);
    close(fd);
    assert_int_equal(w, n);
    json_t *out = json_array();
    int bad;
    bool cut;
    char err[256];
    int rc = brain_kmsg_read("/dev/kmsg", before - 5000, wall_ms() + 5000, brain_sig_mono_ms() + 5000, out, &bad,
                             &cut, err, sizeof err);
    if (rc == -EACCES || rc == -EPERM) {
        json_decref(out);
        print_message("skipped: /dev/kmsg not readable here (%s)\n", err);
        skip();
    }
    assert_int_equal(rc, 0);
    assert_false(cut);
    const json_t *o = find_pid(out, pid);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "kind")), "oom_kill");
    assert_string_equal(json_string_value(json_object_get(o, "comm")), "ippocsigtest");
    json_decref(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_classify),
        cmocka_unit_test_setup_teardown(test_read_file_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_deadline, setup, teardown),
        cmocka_unit_test(test_dev_kmsg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
