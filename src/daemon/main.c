/* main.c: ippocd's command line. Parses options, loads the configuration and
 * hands over to daemon_run; the only place in the daemon that exits. */
#include "daemon/daemon.h"
#include "evolve/evolve.h"
#include "heal/audit.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <sys/resource.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: ippocd [OPTIONS]\n"
        "The IPPOC cell: senses this machine, remembers it and serves it over HTTP.\n"
        "\n"
        "  -c, --config FILE     configuration file (default /etc/ippoc/ippoc.conf,\n"
        "                        optional); conf.d/*.conf beside it is read too\n"
        "  -s, --state-dir DIR   where the store, lock, URL file and the owner's API\n"
        "                        socket (ippocd.sock) live\n"
        "                        (default [daemon] state_dir, /var/lib/ippoc)\n"
        "  -l, --listen ADDR     API address, e.g. 127.0.0.1:7070 (port 0: any free port)\n"
        "      --log-level L     error, warning, info or debug\n"
        "      --syslog          log to syslog/journal instead of stderr\n"
        "      --dry-run         heal nothing: record what every rule would do\n"
        "                        (audit log and heal.action events), like [heal] dry_run\n"
        "      --check-config    load and validate the configuration, then exit\n"
        "      --verify-audit FILE  check the hash chain of an audit log (exit 0 intact,\n"
        "                        1 tampered or torn, 2 unreadable)\n"
        "  -V, --version         print the version\n"
        "  -h, --help            this help\n"
        "\n"
        "The API also serves the web dashboard at / (docs/dashboard.md);\n"
        "IPPOC_WEB_DIR=DIR in the environment serves its files from DIR instead\n"
        "of the built-in copies (a developer aid for editing the page).\n"
        "\n"
        "Signals: SIGHUP reloads the configuration (a bad one is rejected and the\n"
        "running one kept); SIGTERM or SIGINT stops cleanly, flushing memory.\n"
        "Exit codes: 0 clean stop, 1 runtime failure (a state dir that cannot be\n"
        "written included), 2 bad usage or configuration, 3 another ippocd already\n"
        "runs on the state dir.\n");
}

#ifdef IPPOC_TSAN
/* ThreadSanitizer builds only. Debian's libuv closes descriptors with a raw
 * close syscall that TSan does not see, so a descriptor number the loop
 * thread's libuv freed (a child's stdio socketpair, the spawn pipe) and the
 * API thread's accept4 then reuses is reported as a race on the descriptor.
 * The kernel orders the two; these are the reports to ignore. Those
 * suppressions need the loop thread's stack, which TSan cannot always restore
 * on a loaded machine ("failed to restore the stack"). closedir is the other
 * end of the same false report: TSan does not see opendir create a descriptor
 * (it records only the directory), so libgit2's closedir on the evolve thread
 * of a number the loop thread's libuv freed raw reads as a race with the
 * number's earlier life; hence race_top:closedir, which matches only reports
 * whose top frame is closedir itself (a real race on a DIR would show readdir
 * or the caller's memory, not the descriptor). libdbus (loaded with Avahi for
 * [mesh] discover = mdns) takes two of its own locks in one order when the
 * client connects and in the other when it is freed, on one thread, with none
 * of our code between: deadlock:libdbus-1.so.3. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "race:accept4\nrace:uv_socketpair\nrace:uv_spawn\nrace:uv_pipe\nrace_top:closedir\ndeadlock:libdbus-1.so.3\n";
}
#endif

/* --verify-audit FILE: prints "ok" or the first bad record. */
static int verify_audit(const char *path)
{
    heal_audit_verify_result res;
    char err[512] = "";
    int rc = heal_audit_verify(path, &res, err, sizeof err);
    if (rc == 0) {
        printf("ok: %llu record(s), last seq %llu, head %s\n", (unsigned long long)res.records,
               (unsigned long long)res.last_seq, res.last_hash);
        return 0;
    }
    if (rc == -EBADMSG) {
        printf("bad: line %llu (seq %llu): %s: %s\n", (unsigned long long)res.bad_line,
               (unsigned long long)res.bad_seq, heal_audit_status_name(res.status), res.why);
        return 1;
    }
    fprintf(stderr, "ippocd: %s\n", err[0] ? err : strerror(-rc));
    return 2;
}

int main(int argc, char **argv)
{
    /* Inside the WorldModel sandbox ippocd is the shim that installs the
     * seccomp filter and execs the candidate (src/evolve/sandbox*.c). */
    if (argc > 1 && !strcmp(argv[1], "--sandbox-exec"))
        return evolve_sandbox_exec_main(argc - 1, argv + 1);
    /* In the sandbox too: a tool's own tests (src/evolve/tool.c). */
    if (argc > 1 && !strcmp(argv[1], "--tool-test"))
        return evolve_tool_test_main(argc - 1, argv + 1);
    /* The time zone is read once here, before any thread: later localtime_r
     * calls on worker threads (and core_mktime, never mktime, which re-runs
     * tzset) then only read glibc's shared zone state. */
    tzset();
    enum { OPT_LOG_LEVEL = 1000, OPT_SYSLOG, OPT_DRY_RUN, OPT_CHECK, OPT_VERIFY_AUDIT };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"state-dir", required_argument, NULL, 's'},
        {"listen", required_argument, NULL, 'l'},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"syslog", no_argument, NULL, OPT_SYSLOG},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"verify-audit", required_argument, NULL, OPT_VERIFY_AUDIT},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* Resident memory (bench/README.md, "Where the memory goes"): one malloc
     * arena for all threads (the API's threads allocate little), and a fixed
     * mmap threshold, so the periodic detector save (about 1 MB, freed at
     * once) is mapped and unmapped instead of raising glibc's dynamic
     * threshold and staying in the heap; free heap tops go back early. */
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
    /* The collectors keep procfs and cgroup files open within a quarter of
     * the fd limit: lift the soft limit (often 1024) towards the hard one. */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < 65536 &&
        nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max < 65536 ? nofile.rlim_max : 65536;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    daemon_opts o = {0};
    bool check = false;
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":c:s:l:Vh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c': o.config_path = optarg; o.config_required = true; break;
        case 's': o.state_dir = optarg; break;
        case 'l': o.listen = optarg; break;
        case OPT_LOG_LEVEL: o.log_level = optarg; break;
        case OPT_SYSLOG: o.log_syslog_set = o.log_syslog = true; break;
        case OPT_DRY_RUN: o.dry_run = true; break;
        case OPT_CHECK: check = true; break;
        case OPT_VERIFY_AUDIT: return verify_audit(optarg);
        case 'V': printf("ippocd %s\n", IPPOC_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        case ':':
            fprintf(stderr, "ippocd: option %s needs a value\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "ippocd: unknown option '%s' (see ippocd --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ippocd: unexpected argument '%s' (see ippocd --help)\n", argv[optind]);
        return 2;
    }
    core_config cfg;
    char err[1024];
    if (daemon_load_config(&o, &cfg, err, sizeof err)) {
        fprintf(stderr, "ippocd: %s\n", err);
        core_config_free(&cfg);
        return 2;
    }
    if (check) {
        printf("configuration ok\n");
        core_config_free(&cfg);
        return 0;
    }
    int rc = daemon_run(&o, &cfg);
    core_config_free(&cfg);
    return rc;
}
