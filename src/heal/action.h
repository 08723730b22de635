/* action.h: the one typed set of actions IPPOC may take on the machine.
 *
 * Rules produce these now; the brain (LLM or case-based) will pick from the
 * same set later, so no code path ever runs free-form shell produced by a
 * model. Every action goes through the safety policy (policy.h) and the
 * audit log (audit.h) before it runs. */
#ifndef IPPOC_HEAL_ACTION_H
#define IPPOC_HEAL_ACTION_H

#include "core/core.h"

typedef enum heal_action_kind {
    HEAL_ACT_START = 0,
    HEAL_ACT_STOP,
    HEAL_ACT_RESTART,
    HEAL_ACT_SIGNAL,       /* signum */
    HEAL_ACT_RENICE,       /* nice: the target nice value, -20..19 */
    HEAL_ACT_LIMIT_MEMORY, /* bytes: memory.max (v2) / memory.limit_in_bytes (v1) */
    HEAL_ACT_LIMIT_CPU,    /* cpu_percent of one core: cpu.max (v2) / cfs quota (v1) */
    HEAL_ACT_SYSCTL,       /* key = value; the old value is remembered to revert */
    HEAL_ACT_CLEAN,        /* path, older_than_ms and/or larger_than / keep_bytes */
    HEAL_ACT_PLAYBOOK,     /* program (argv, no shell), timeout_ms */
    HEAL_ACT_ALERT,        /* target: webhook name ("" = every configured one) */
    HEAL_ACT_FREEZE,       /* cgroup.freeze = 1 in the service's own cgroup (v2) */
    HEAL_ACT_THAW,         /* cgroup.freeze = 0 */
    HEAL_ACT_RESTORE,      /* path: put back to its known-good copy (one of the service's config_path) */
    HEAL_ACT_SIGNAL_PID,   /* signum to process pid (not the service's): "signal TERM pid 42" */
    HEAL_ACT_RENICE_PID,   /* nice of process pid (not the service's): "renice 10 pid 42" */
    HEAL_ACT_GENOME,       /* a change of the cell's genome (src/evolve): key = op ("apply", "tool"),
                              value = arg (a commit id, a draft id); service "cell". Never in a rule. */
    HEAL_ACT_COUNT
} heal_action_kind;

#define HEAL_NAME_MAX 64
#define HEAL_ARG_MAX 512

typedef struct heal_action {
    heal_action_kind kind;
    char service[HEAL_NAME_MAX]; /* target service; "" for machine-wide actions */
    int signum;
    int nice;
    uint64_t bytes;
    double cpu_percent;
    char key[128];               /* sysctl key, e.g. vm.swappiness; genome: the op */
    char value[128];             /* sysctl value; genome: the op's argument */
    char path[HEAL_ARG_MAX];     /* clean: directory */
    int64_t older_than_ms;       /* clean: files older than this (0 = any age) */
    uint64_t larger_than;        /* clean: files larger than this (0 = any size) */
    char program[HEAL_ARG_MAX];  /* playbook: program and arguments, split on blanks, no shell */
    int64_t timeout_ms;          /* playbook */
    char target[HEAL_NAME_MAX];  /* alert */
    int pid;                     /* signal-process, renice-process: the target process */
    /* Filled by the engine when it decides (what the audit log names; a
     * queued action runs only while pid is still that process). */
    char comm[64];               /* the target's command line (cut) */
    uint64_t pid_start;          /* its start time (/proc/PID/stat field 22, clock ticks) */
} heal_action;

/* The service name genome actions use (the policy's entry for them). */
#define HEAL_CELL_TARGET "cell"

/* "start", "stop", ..., "restore", "signal-process", "renice-process", "genome" (the
 * allowlist names); NULL for an unknown kind. */
const char *heal_action_name(heal_action_kind k);
/* The kind named s, or -1. */
int heal_action_kind_parse(const char *s);
/* Human text of an action, as the rule language writes it: "renice 10",
 * "limit memory 600MB", "sysctl vm.swappiness = 10", "restore /etc/a.conf",
 * "signal TERM pid 42", "genome apply 1a2b3c4". Returns 0 or
 * -ENAMETOOLONG (text cut). */
int heal_action_format(const heal_action *a, char *buf, size_t n);

/* Parses one rule-language action ("restart", "restore /etc/x.conf",
 * "signal TERM pid 42", "renice 10 pid 42") for service (copied into
 * out->service; the pid forms are accepted here only, never in a rule).
 * Implemented by the rule parser (rules.c). Any thread. 0, or -EINVAL with
 * "action 'TEXT', column N: reason" in err (out zeroed). */
int heal_action_parse_text(const char *text, const char *service, heal_action *out, char *err, size_t errlen);

#endif
