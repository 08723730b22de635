/* sandbox_cg.c: the WorldModel sandbox's cgroup: one fresh cgroup per run
 * with memory (no swap) and CPU limits, its OOM count, peak memory and CPU
 * time, killing everything in it and removing it. cgroup v2 (a child of
 * /sys/fs/cgroup/ippoc-sandbox, else of the daemon's own cgroup) or v1 (the
 * memory, cpu and cpuacct hierarchies, under ippoc-sandbox/). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "evolve/sandbox_int.h"

#define CG_BASE "ippoc-sandbox"

/* Where cgroups are mounted; IPPOC_SANDBOX_CGROUP_ROOT moves it (the tests
 * run the v2 code on a v2 mount beside a v1 machine's hierarchies). */
static const char *cg_root(void)
{
    const char *r = getenv("IPPOC_SANDBOX_CGROUP_ROOT");
    return r && r[0] == '/' ? r : "/sys/fs/cgroup";
}

static atomic_uint cg_seq;

static int cg_write(const char *dir, const char *file, const char *val)
{
    char p[640];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t w = write(fd, val, strlen(val));
    int e = w < 0 ? -errno : 0;
    close(fd);
    return e;
}

static int cg_read(const char *dir, const char *file, char *buf, size_t n)
{
    char p[640];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t r = read(fd, buf, n - 1);
    int e = r < 0 ? -errno : 0;
    close(fd);
    buf[r > 0 ? r : 0] = 0;
    return e;
}

static bool cg_exists(const char *dir, const char *file)
{
    char p[640];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    return access(p, F_OK) == 0;
}

/* "key N" in a flat keyed file; -1 when absent. */
static int64_t cg_key(const char *dir, const char *file, const char *key)
{
    char buf[4096];
    if (cg_read(dir, file, buf, sizeof buf) < 0)
        return -1;
    size_t kl = strlen(key);
    for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncmp(l, key, kl) && l[kl] == ' ')
            return strtoll(l + kl + 1, NULL, 10);
    return -1;
}

static int64_t cg_num(const char *dir, const char *file)
{
    char buf[64];
    if (cg_read(dir, file, buf, sizeof buf) < 0 || !buf[0] || buf[0] == 'm') /* "max" */
        return -1;
    return strtoll(buf, NULL, 10);
}

static int cg_mkdir(const char *dir)
{
    return mkdir(dir, 0755) == 0 || errno == EEXIST ? 0 : -errno;
}

/* The daemon's own v2 cgroup (the "0::" line of /proc/self/cgroup). */
static int cg_self_v2(char *out, size_t n)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return -errno;
    char line[1024];
    int rc = -ENOENT;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "0::", 3)) {
            line[strcspn(line, "\n")] = 0;
            snprintf(out, n, "%s%s", cg_root(), !strcmp(line + 3, "/") ? "" : line + 3);
            rc = 0;
        }
    fclose(f);
    return rc;
}

static void cg_name(char *buf, size_t n)
{
    snprintf(buf, n, "sbx-%d-%u", (int)getpid(), atomic_fetch_add(&cg_seq, 1));
}

static int cg_create_v2(sbx_cg *cg, uint64_t memory, double cpu, char *err, size_t errlen)
{
    char name[64], base[512];
    cg_name(name, sizeof name);
    /* Preferred: ippoc-sandbox under the root, with memory and cpu enabled
     * for its children (the root has no "no internal processes" rule). */
    snprintf(base, sizeof base, "%s/%s", cg_root(), CG_BASE);
    int rc = cg_mkdir(base);
    if (rc == 0) {
        (void)cg_write(cg_root(), "cgroup.subtree_control", "+memory +cpu");
        (void)cg_write(base, "cgroup.subtree_control", "+memory +cpu");
    } else if (cg_self_v2(base, sizeof base) < 0) {
        snprintf(err, errlen, "sandbox: cgroup v2: cannot create %s/%s (%s) nor find our own cgroup", cg_root(),
                 CG_BASE, strerror(-rc));
        return rc;
    }
    snprintf(cg->v2, sizeof cg->v2, "%s/%s", base, name);
    if (mkdir(cg->v2, 0755) < 0) {
        rc = -errno;
        snprintf(err, errlen, "sandbox: cgroup v2: mkdir %s: %s", cg->v2, strerror(errno));
        cg->v2[0] = 0;
        return rc;
    }
    char v[64];
    snprintf(v, sizeof v, "%" PRIu64, memory);
    cg->mem_limited = cg_write(cg->v2, "memory.max", v) == 0;
    (void)cg_write(cg->v2, "memory.swap.max", "0");
    if (cpu > 0) {
        snprintf(v, sizeof v, "%lld 100000", (long long)(cpu * 1000.0 < 1000 ? 1000 : cpu * 1000.0));
        (void)cg_write(cg->v2, "cpu.max", v);
    }
    cg->version = 2;
    return 0;
}

static const char *const v1_ctl[3] = {"memory", "cpu", "cpuacct"};

static int cg_create_v1(sbx_cg *cg, uint64_t memory, double cpu, char *err, size_t errlen)
{
    char name[64];
    cg_name(name, sizeof name);
    char seen[3][512] = {{0}};
    for (int i = 0; i < 3; i++) {
        char root[256], real[512];
        snprintf(root, sizeof root, "%s/%s", cg_root(), v1_ctl[i]);
        if (!realpath(root, real))
            continue;
        bool dup = false; /* cpu and cpuacct are often one hierarchy */
        for (int j = 0; j < i; j++)
            dup = dup || !strcmp(seen[j], real);
        snprintf(seen[i], sizeof seen[i], "%s", real);
        if (dup)
            continue;
        char base[600];
        snprintf(base, sizeof base, "%s/%s", real, CG_BASE);
        int rc = cg_mkdir(base);
        if (rc == 0) {
            snprintf(cg->v1[i], sizeof cg->v1[i], "%s/%s", base, name);
            if (mkdir(cg->v1[i], 0755) < 0)
                rc = -errno;
        }
        if (rc < 0) {
            if (i == 0) { /* memory is the one we must have */
                snprintf(err, errlen, "sandbox: cgroup v1: cannot create %s/%s: %s", base, name, strerror(-rc));
                cg->v1[0][0] = 0;
                cg->version = 1; /* so that sbx_cg_destroy removes the others */
                return rc;
            }
            cg->v1[i][0] = 0;
        }
    }
    cg->version = 1;
    if (!cg->v1[0][0])
        return -ENOENT;
    char v[64];
    snprintf(v, sizeof v, "%" PRIu64, memory);
    cg->mem_limited = cg_write(cg->v1[0], "memory.limit_in_bytes", v) == 0;
    (void)cg_write(cg->v1[0], "memory.swappiness", "0");
    if (cg_exists(cg->v1[0], "memory.memsw.limit_in_bytes"))
        (void)cg_write(cg->v1[0], "memory.memsw.limit_in_bytes", v);
    if (cpu > 0 && cg->v1[1][0]) {
        (void)cg_write(cg->v1[1], "cpu.cfs_period_us", "100000");
        snprintf(v, sizeof v, "%lld", (long long)(cpu * 1000.0 < 1000 ? 1000 : cpu * 1000.0));
        (void)cg_write(cg->v1[1], "cpu.cfs_quota_us", v);
    }
    return 0;
}

int sbx_cg_create(sbx_cg *cg, uint64_t memory, double cpu_percent, char *err, size_t errlen)
{
    memset(cg, 0, sizeof *cg);
    char mem[300];
    snprintf(mem, sizeof mem, "%s/memory", cg_root());
    if (cg_exists(cg_root(), "cgroup.controllers"))
        return cg_create_v2(cg, memory, cpu_percent, err, errlen);
    if (cg_exists(mem, "memory.limit_in_bytes"))
        return cg_create_v1(cg, memory, cpu_percent, err, errlen);
    return 0; /* no cgroups: the caller limits memory by rlimit */
}

int sbx_cg_attach(const sbx_cg *cg, pid_t pid, char *err, size_t errlen)
{
    char v[32];
    snprintf(v, sizeof v, "%d", (int)pid);
    if (cg->version == 2) {
        int rc = cg_write(cg->v2, "cgroup.procs", v);
        if (rc < 0)
            snprintf(err, errlen, "sandbox: cannot move pid %d into %s: %s", (int)pid, cg->v2, strerror(-rc));
        return rc;
    }
    for (int i = 0; cg->version == 1 && i < 3; i++) {
        if (!cg->v1[i][0])
            continue;
        int rc = cg_write(cg->v1[i], "cgroup.procs", v);
        if (rc < 0) {
            snprintf(err, errlen, "sandbox: cannot move pid %d into %s: %s", (int)pid, cg->v1[i], strerror(-rc));
            return rc;
        }
    }
    return 0;
}

/* SIGKILL to every pid listed; the number listed. */
static int cg_kill_procs(const char *dir)
{
    char p[640];
    snprintf(p, sizeof p, "%s/cgroup.procs", dir);
    FILE *f = fopen(p, "re");
    if (!f)
        return 0;
    int n = 0, pid;
    while (fscanf(f, "%d", &pid) == 1) {
        if (pid > 0 && pid != getpid())
            kill(pid, SIGKILL);
        n++;
    }
    fclose(f);
    return n;
}

void sbx_cg_kill(const sbx_cg *cg)
{
    if (cg->version == 2) {
        if (cg_write(cg->v2, "cgroup.kill", "1") < 0)
            cg_kill_procs(cg->v2);
    } else if (cg->version == 1) {
        for (int i = 0; i < 3; i++)
            if (cg->v1[i][0])
                cg_kill_procs(cg->v1[i]);
    }
}

bool sbx_cg_oom(const sbx_cg *cg)
{
    if (cg->version == 2)
        return cg_key(cg->v2, "memory.events", "oom_kill") > 0 || cg_key(cg->v2, "memory.events", "oom") > 0;
    if (cg->version == 1 && cg->v1[0][0]) {
        int64_t k = cg_key(cg->v1[0], "memory.oom_control", "oom_kill");
        if (k >= 0)
            return k > 0;
        return cg_num(cg->v1[0], "memory.failcnt") > 0;
    }
    return false;
}

uint64_t sbx_cg_peak(const sbx_cg *cg)
{
    int64_t v = -1;
    if (cg->version == 2)
        v = cg_num(cg->v2, "memory.peak");
    else if (cg->version == 1 && cg->v1[0][0])
        v = cg_num(cg->v1[0], "memory.max_usage_in_bytes");
    return v > 0 ? (uint64_t)v : 0;
}

int64_t sbx_cg_cpu_ms(const sbx_cg *cg)
{
    if (cg->version == 2) {
        int64_t us = cg_key(cg->v2, "cpu.stat", "usage_usec");
        return us >= 0 ? us / 1000 : -1;
    }
    if (cg->version == 1 && cg->v1[2][0]) {
        int64_t ns = cg_num(cg->v1[2], "cpuacct.usage");
        return ns >= 0 ? ns / 1000000 : -1;
    }
    return -1;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Kill, wait until empty (bounded: 5 s), rmdir; retried since rmdir says
 * EBUSY while the kernel is still tearing the tasks down. */
static void cg_remove(const char *dir)
{
    for (int i = 0; i < 500; i++) {
        if (rmdir(dir) == 0 || errno == ENOENT)
            return;
        if (errno != EBUSY)
            return;
        cg_kill_procs(dir);
        sleep_ms(10);
    }
}

void sbx_cg_destroy(sbx_cg *cg)
{
    sbx_cg_kill(cg);
    if (cg->version == 2 && cg->v2[0])
        cg_remove(cg->v2);
    for (int i = 0; cg->version == 1 && i < 3; i++)
        if (cg->v1[i][0])
            cg_remove(cg->v1[i]);
    cg->version = 0;
}
