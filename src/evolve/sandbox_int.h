/* sandbox_int.h: what the WorldModel sandbox's files share (sandbox.c runs
 * bwrap and supervises, sandbox_cg.c owns the cgroup, sandbox_sup.c answers
 * seccomp notifications, sandbox_exec.c is the shim inside). Not for other
 * files of src/evolve. */
#ifndef IPPOC_EVOLVE_SANDBOX_INT_H
#define IPPOC_EVOLVE_SANDBOX_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "evolve/evolve.h"

/* The fd number the shim finds its end of the supervisor socket on. */
#define SBX_SOCK_FD 3
/* The byte the shim sends (with the listener fd as SCM_RIGHTS, or alone when
 * the kernel has no user notification and the filter kills instead). */
#define SBX_HELLO_FD 'F'
#define SBX_HELLO_NOFD 'N'

/* ---- cgroups (sandbox_cg.c) ---- */
typedef struct sbx_cg {
    int version;          /* 0: none (limits by rlimit only), 1, 2 */
    char v2[512];         /* v2: the sandbox's cgroup dir */
    char v1[3][512];      /* v1: memory, cpu, cpuacct dirs ("" when absent) */
    bool mem_limited;     /* memory.max / memory.limit_in_bytes was set */
} sbx_cg;

/* Creates a fresh cgroup with the limits (memory bytes, cpu % of a core, 0 =
 * unlimited). No cgroup filesystem: 0 with version 0. -errno with err when
 * one exists but a cgroup cannot be made there. */
int sbx_cg_create(sbx_cg *cg, uint64_t memory, double cpu_percent, char *err, size_t errlen);
/* Moves pid into it. 0 or -errno. */
int sbx_cg_attach(const sbx_cg *cg, pid_t pid, char *err, size_t errlen);
/* SIGKILLs every process in it (cgroup.kill on v2 when present). */
void sbx_cg_kill(const sbx_cg *cg);
/* Whether the memory limit killed something; the peak usage (0: unknown);
 * cpu time in ms (-1: unknown). */
bool sbx_cg_oom(const sbx_cg *cg);
uint64_t sbx_cg_peak(const sbx_cg *cg);
int64_t sbx_cg_cpu_ms(const sbx_cg *cg);
/* Kills what is left, waits (bounded) until it is empty and removes it. */
void sbx_cg_destroy(sbx_cg *cg);

/* ---- the supervisor (sandbox_sup.c) ---- */
typedef struct sbx_sup {
    const char *const *writable;
    int nwritable;
    struct seccomp_notif *req;
    struct seccomp_notif_resp *resp;
    int refuse;           /* errno for the pending violation's answer */
} sbx_sup;

int sbx_sup_init(sbx_sup *s, const char *const *writable, int nwritable);
void sbx_sup_fini(sbx_sup *s);
/* Answers one notification on fd: 0 allowed (or the target is gone), 1 a
 * violation (*v and detail set; not answered yet: the caller kills the
 * sandbox first, so that the caller cannot go on, then sbx_sup_refuse),
 * -errno when fd is dead. */
int sbx_sup_handle(sbx_sup *s, int fd, evolve_sbx_verdict *v, char *detail, size_t n);
/* Fails the pending violating call (when its caller still lives). */
void sbx_sup_refuse(sbx_sup *s, int fd);
/* Lexically normalises path (absolute) into out: "//", ".", "..". */
void sbx_path_normalize(const char *path, char *out, size_t n);
/* Whether normalised path may be written: under a writable path, /tmp,
 * the private /dev, /proc/self. */
bool sbx_path_allowed(const char *path, const char *const *writable, int nwritable);

#endif
