/* supervise_proc.c: finding the process of an external service: from a
 * pidfile (checked to be alive and, with a match, to have that comm) or by
 * scanning /proc for the oldest process whose comm equals the match; and
 * the start time that tells a recorded supervised child from a reused pid. */
#include "heal/supervise.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Field 3 (state) and 22 (starttime) of /proc/PID/stat; comm may hold
 * blanks and parentheses, so parse after the last ')'. */
static int read_stat(pid_t pid, char *state, unsigned long long *start)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (core_read_file(path, buf, sizeof buf) <= 0)
        return -ESRCH;
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return -EINVAL;
    p += 2;
    *state = *p;
    if (start) {
        /* after ")" fields start at 3; starttime is field 22 */
        int field = 3;
        while (*p && field < 22) {
            if (*p++ == ' ')
                field++;
        }
        *start = strtoull(p, NULL, 10);
    }
    return 0;
}

int heal_svc_pid_starttime(pid_t pid, uint64_t *start)
{
    char st;
    unsigned long long v = 0;
    int rc = read_stat(pid, &st, &v);
    if (rc)
        return rc;
    if (st == 'Z' || st == 'X')
        return -ESRCH;
    *start = v;
    return 0;
}

bool heal_svc_pid_alive(pid_t pid)
{
    char st;
    if (pid <= 0 || read_stat(pid, &st, NULL))
        return false;
    return st != 'Z' && st != 'X' && st != 'x';
}

int heal_svc_pid_comm(pid_t pid, char *buf, size_t n)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    ssize_t r = core_read_file(path, buf, n);
    if (r < 0)
        return (int)r;
    buf[strcspn(buf, "\n")] = 0;
    return 0;
}

static pid_t pid_from_file(const char *pidfile)
{
    char buf[64];
    if (core_read_file(pidfile, buf, sizeof buf) <= 0)
        return 0;
    char *t = core_trim(buf), *end;
    errno = 0;
    long v = strtol(t, &end, 10);
    if (errno || end == t || v <= 1 || v > INT32_MAX || (*end && !isspace((unsigned char)*end)))
        return 0;
    return (pid_t)v;
}

pid_t heal_svc_find_pid(const char *pidfile, const char *match)
{
    char comm[64];
    if (pidfile && pidfile[0]) {
        pid_t pid = pid_from_file(pidfile);
        if (!heal_svc_pid_alive(pid))
            return 0;
        if (match && match[0] && (heal_svc_pid_comm(pid, comm, sizeof comm) || strcmp(comm, match)))
            return 0;
        return pid;
    }
    if (!match || !match[0])
        return 0;
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    pid_t best = 0;
    unsigned long long best_start = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        pid_t pid = (pid_t)atoi(e->d_name);
        if (heal_svc_pid_comm(pid, comm, sizeof comm) || strcmp(comm, match))
            continue;
        char st;
        unsigned long long start;
        if (read_stat(pid, &st, &start) || st == 'Z' || st == 'X')
            continue;
        if (!best || start < best_start || (start == best_start && pid < best)) {
            best = pid;
            best_start = start;
        }
    }
    closedir(d);
    return best;
}
