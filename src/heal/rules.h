/* rules.h: the heal rule language: one rule per line, parsed once at load
 * into the structs below, printed back in a canonical form that re-parses to
 * the same struct. Internal header of src/heal (rules.c, rules_format.c).
 *
 * ---- Grammar (EBNF; keywords are case-insensitive, blanks separate words) ----
 *
 *   rule       = "if" condition [ for ] "then" action { "," action } ;
 *
 *   condition  = "failed" probe                         (* HEAL_COND_PROBE_FAILED *)
 *              | resource                               (* HEAL_COND_RESOURCE *)
 *              | INT ( "restart" | "restarts" ) "within" DURATION
 *                                                       (* HEAL_COND_RESTARTS *)
 *              | "anomalous" "(" METRIC ")" ;           (* HEAL_COND_ANOMALOUS *)
 *                (* true while a series ippocd's detectors watch ([detect])
 *                   is anomalous: its family matches NAME, which may hold
 *                   the glob characters '*' and '?' here, and its labels
 *                   include every label given; never true when detection is
 *                   off. e.g. anomalous(memory.used_bytes),
 *                   anomalous(process.*{name="nginx"}) *)
 *
 *   probe      = HTTP_URL  { "status" STATUS | "body" STRING | latency | timeout | every }
 *              | TCP_URL   { latency | timeout | every }
 *              | "process" { every }    (* the service's own process is alive *)
 *              | "exec" STRING { timeout | every }
 *              | "file" PATH [ file_check ] { every } ;
 *                (* each option at most once, in any order, before "for" *)
 *   HTTP_URL   = ( "http" | "https" ) "://" HOST [ ":" PORT ] [ ( "/" | "?" ) TEXT ] ;
 *   TCP_URL    = "tcp://" HOST ":" PORT ;
 *                (* HOST: a name, an IPv4 address or "[" IPv6 "]"; PORT 1-65535 *)
 *   STATUS     = DIGIT "xx"            (* a class: 2xx = 200-299 *)
 *              | CODE [ "-" CODE ] ;    (* 200, or 200-399; CODE 100-599 *)
 *   latency    = "latency" "<" DURATION ;  (* fails when the answer took longer *)
 *   timeout    = "timeout" DURATION ;
 *   every      = "every" DURATION ;        (* the probe interval, >= 100ms *)
 *   file_check = "exists"                  (* the default *)
 *              | "age" CMP DURATION | "size" CMP SIZE
 *              | "checksum" "sha256" HEX64 | "changed" ;
 *
 *   resource   = "cpu" CMP PERCENT                (* % of one core, may exceed 100 *)
 *              | "memory" CMP SIZE                (* resident memory of the service *)
 *              | "threads" CMP INT | "fds" CMP INT
 *              | "space" PATH CMP PERCENT         (* used space of PATH's filesystem, 0-100 *)
 *              | "inodes" PATH CMP PERCENT        (* used inodes, 0-100 *)
 *              | "metric" METRIC CMP NUMBER [ SIZE_UNIT | "%" ]   (* any sensor series;
 *                                a unit multiplies, "%" changes nothing *)
 *              | SERIES CMP NUMBER [ SIZE_UNIT | "%" ] ;  (* the same, "metric" implied *)
 *   SERIES     = METRIC, unquoted, whose NAME holds a '.' ;
 *                (* e.g. gpu.temperature, gpu.temperature{gpu="0"}; no
 *                   condition word holds a '.', so none reads as one *)
 *   METRIC     = NAME [ "{" LABEL "=" QUOTED { "," LABEL "=" QUOTED } "}" ]
 *              | STRING ;               (* the same text, quoted *)
 *                (* NAME: [A-Za-z_][A-Za-z0-9_.:-]*; QUOTED label values take
 *                   \\ \" \n as Prometheus does; labels are stored sorted *)
 *   CMP        = ">" | ">=" | "<" | "<=" | "==" | "!=" ;
 *
 *   for        = "for" ( INT ( "check" | "checks" ) | DURATION ) ;
 *                (* N consecutive failed probes / true evaluations, or the
 *                   condition held that long; default: 1 check; not allowed
 *                   with "restarts" *)
 *
 *   action     = "start" | "stop" | "restart"
 *              | "signal" SIGNAL                  (* HUP, SIGHUP, TERM, USR1, ... *)
 *              | "renice" INT                     (* -20 .. 19 *)
 *              | "limit" "memory" SIZE            (* >= 1MB *)
 *              | "limit" "cpu" PERCENT            (* 1% .. 100000% of one core *)
 *              | "sysctl" KEY "=" VALUE           (* KEY: dotted words [A-Za-z0-9_-] *)
 *              | "clean" PATH [ "older" "than" DURATION ] [ "larger" "than" SIZE ]
 *              | "run" STRING [ "timeout" DURATION ]   (* default timeout 1m, max 1h *)
 *              | "alert" [ NAME ]                 (* NAME: [A-Za-z0-9_.-]+, "" = all *)
 *              | "freeze" | "thaw"                (* cgroup.freeze of the service's own cgroup v2 *)
 *              | "restore" PATH ;                 (* put PATH, one of the service's config_path,
 *                                                    back to its known-good copy *)
 *
 *   Proposed actions only (heal_action_parse_text, i.e. from the brain; a
 *   rule cannot know a pid, so heal_rule_parse refuses these):
 *   pid_action = "signal" SIGNAL "pid" INT        (* a process that is not the service,
 *                                                    e.g. a CPU hog; allowlist "signal-process" *)
 *              | "renice" INT "pid" INT ;         (* allowlist "renice-process" *)
 *
 *   NUMBER     = [ "-" ] DIGITS [ "." DIGITS ] [ "e" [ "+" | "-" ] DIGITS ] ;
 *                (* "-" only in metric thresholds; INT: [ "-" ] DIGITS *)
 *   DURATION   = NUMBER ( "ms" | "s" | "sec" | "m" | "min" | "h" | "d" | "w" | "y" ) ;
 *                (* unit required, no sign *)
 *   SIZE       = NUMBER SIZE_UNIT ;  SIZE_UNIT = B | K[i]B | M[i]B | G[i]B | T[i]B
 *                (* powers of 1024, case-insensitive; unit required *)
 *   PERCENT    = NUMBER "%" ;
 *   STRING     = '"' { CHAR | '\"' | '\\' | '\;' } '"' ;
 *                (* any other backslash is kept as is, so "\d+" is the regex \d+ *)
 *   PATH, VALUE = STRING | a bare word up to a blank or "," ;  PATH is absolute
 *
 * Notes
 *   - Limits: a rule is at most 1024 characters; at most 8 actions, run in
 *     order; strings at most 511 bytes. Ranges: every 100ms-1d, timeout and
 *     latency 1ms-1h, for 1-10000 checks or 1ms-7d, N restarts 1-1000 within
 *     1s-7d, threads/fds 0-1e9, run timeout 1ms-1h.
 *   - Defaults: probe interval = the service's probe interval, else 10s
 *     (HEAL_PROBE_INTERVAL_MS); probe timeout 5s (HEAL_PROBE_TIMEOUT_MS), cut
 *     to the interval; the timeout may not exceed the interval; an HTTP probe
 *     without "status" accepts 200-399. An HTTP "body" is a PCRE2 pattern
 *     (compiled with no options, byte-wise) searched for in the body.
 *   - "exec": the program and its arguments split on blanks, no shell; exit
 *     status != 0 (or the timeout) is a failure. "run" likewise.
 *   - "clean" refuses "/", relative paths, "." and ".." components and the
 *     system directories /bin /boot /dev /etc /home /lib /lib32 /lib64 /proc
 *     /root /run /sbin /sys /usr /var themselves (their subdirectories are
 *     fine, e.g. /var/log/app).
 *   - In an INI file (inih, INI_ALLOW_INLINE_COMMENTS), a ';' after a blank
 *     starts a comment, even inside quotes: write '\;' in a quoted string for
 *     a literal ';' ("a;b" with no blank before the ';' is kept as is). A '#'
 *     is only a comment at the start of a line. Debian's libinih reads at
 *     most 199 bytes per physical line (INI_MAX_LINE 200): a rule written in
 *     an INI file must stay below that unless the config loader joins lines.
 *   - "metric METRIC" (or a bare SERIES) watches every series of the family
 *     NAME whose labels include the labels given: none names them all,
 *     gpu.temperature{gpu="0"} the one GPU. It holds when one of them does,
 *     by its last value (kept once a series is no longer reported, e.g. a
 *     process gone): the largest decides > and >=, the smallest < and <=;
 *     == holds when one equals the threshold, != when one differs from it.
 *     No series with a value (yet): never. The incident names the series
 *     that held ("what" ends in [gpu.temperature{gpu="1"} = 91]; its
 *     evidence has series, labels and how many series matched). The set is
 *     found once and grown by the new series alone when the store gains some.
 *   - Columns in messages count bytes from 1 at the start of the rule text
 *     (the INI value).
 *
 * Examples
 *   if failed http://127.0.0.1:8080/health for 2 checks then restart
 *   if failed http://127.0.0.1:8080/health status 2xx body "ok" latency < 500ms timeout 1s every 1s then restart
 *   if failed tcp://127.0.0.1:5432 then restart
 *   if failed exec "/usr/local/bin/check-db --quick" for 3 checks then restart
 *   if failed file /var/run/app.heartbeat age < 30s then restart
 *   if cpu > 90% for 30s then renice 10
 *   if memory > 512MB then limit memory 600MB
 *   if space /var > 90% then clean /var/log/app older than 7d, alert
 *   if metric disk.busy_percent{device="vda"} > 95 for 2m then alert
 *   if gpu.temperature > 85 for 1m then alert
 *   if 3 restarts within 5m then stop, alert
 *   if anomalous(memory.used_bytes) for 2m then alert
 *
 * Thread safety: the functions here keep no state; call them from any thread. */
#ifndef IPPOC_HEAL_RULES_H
#define IPPOC_HEAL_RULES_H

#include "heal/action.h"

#define HEAL_RULE_LINE_MAX 1024
#define HEAL_RULE_ACTIONS_MAX 8
#define HEAL_PROBE_INTERVAL_MS 10000 /* when neither rule nor service say */
#define HEAL_PROBE_TIMEOUT_MS 5000
#define HEAL_PROBE_INTERVAL_MIN_MS 100
#define HEAL_RUN_TIMEOUT_MS 60000
#define HEAL_FOR_CHECKS_MAX 10000

typedef enum heal_cond_kind {
    HEAL_COND_NONE = 0,
    HEAL_COND_PROBE_FAILED, /* a probe of the service failed */
    HEAL_COND_RESOURCE,     /* a measured value compared with a threshold */
    HEAL_COND_RESTARTS,     /* N restarts of the service within a window */
    HEAL_COND_ANOMALOUS,    /* a watched series is anomalous (res.metric glob, res.labels) */
    /* Extension point: a new kind goes here, in rules.c's condition table
     * and in rules_format.c. */
    HEAL_COND_COUNT
} heal_cond_kind;

typedef enum heal_cmp {
    HEAL_CMP_GT = 0, HEAL_CMP_GE, HEAL_CMP_LT, HEAL_CMP_LE, HEAL_CMP_EQ, HEAL_CMP_NE,
    HEAL_CMP_COUNT
} heal_cmp;

typedef enum heal_probe_kind {
    HEAL_PROBE_HTTP = 0, HEAL_PROBE_HTTPS, HEAL_PROBE_TCP,
    HEAL_PROBE_PROCESS, /* the service's own process is alive */
    HEAL_PROBE_EXEC,    /* a check program exits 0 */
    HEAL_PROBE_FILE,
    HEAL_PROBE_COUNT
} heal_probe_kind;

typedef enum heal_file_check {
    HEAL_FILE_EXISTS = 0,
    HEAL_FILE_AGE,      /* now - mtime <file_cmp> file_age_ms */
    HEAL_FILE_SIZE,     /* size <file_cmp> file_size */
    HEAL_FILE_CHECKSUM, /* sha256 of the content == sha256 */
    HEAL_FILE_CHANGED,  /* fails when the sha256 differs from the first one seen */
} heal_file_check;

typedef struct heal_probe_spec {
    heal_probe_kind kind;
    /* HTTP, HTTPS, TCP */
    char url[HEAL_ARG_MAX];  /* as written, e.g. http://127.0.0.1:8080/health */
    char host[256];          /* without brackets for IPv6 */
    int port;                /* explicit or 80 / 443 */
    int status_min, status_max; /* HTTP(S): accepted status range, default 200..399 */
    char body[HEAL_ARG_MAX]; /* HTTP(S): PCRE2 pattern text, "" = no check */
    int64_t max_latency_ms;  /* HTTP(S), TCP: 0 = no check */
    int64_t timeout_ms;      /* 0 = not given (HEAL_PROBE_TIMEOUT_MS, cut to the interval) */
    int64_t interval_ms;     /* 0 = not given (the service's, else HEAL_PROBE_INTERVAL_MS) */
    /* EXEC */
    char program[HEAL_ARG_MAX]; /* program and arguments, split on blanks, no shell */
    /* FILE */
    char path[HEAL_ARG_MAX];
    heal_file_check file_check;
    heal_cmp file_cmp;       /* AGE, SIZE */
    int64_t file_age_ms;
    uint64_t file_size;
    char sha256[65];         /* CHECKSUM: 64 lower-case hex digits */
} heal_probe_spec;

typedef enum heal_resource_kind {
    HEAL_RES_CPU = 0, /* percent of one core */
    HEAL_RES_MEMORY,  /* bytes */
    HEAL_RES_THREADS, /* count */
    HEAL_RES_FDS,     /* count */
    HEAL_RES_SPACE,   /* used percent of the filesystem holding path */
    HEAL_RES_INODES,  /* used inode percent of the filesystem holding path */
    HEAL_RES_METRIC,  /* the latest value of sensor series metric{labels} */
    HEAL_RES_COUNT
} heal_resource_kind;

typedef struct heal_resource {
    heal_resource_kind kind;
    char path[HEAL_ARG_MAX]; /* SPACE, INODES */
    char metric[128];        /* METRIC: series name */
    char labels[256];        /* METRIC: canonical labels (sorted, as memory.h), "" = none */
    heal_cmp op;
    double threshold;        /* base units: percent, bytes, count, or the series' own */
} heal_resource;

typedef struct heal_condition {
    heal_cond_kind kind;
    heal_probe_spec probe;   /* PROBE_FAILED */
    heal_resource res;       /* RESOURCE; ANOMALOUS: only metric (a glob) and labels */
    int restarts;            /* RESTARTS: count ... */
    int64_t within_ms;       /* ... within this window */
} heal_condition;

typedef struct heal_rule {
    heal_condition cond;
    int for_checks;          /* >= 1: consecutive failed probes / true evaluations */
    int64_t for_ms;          /* > 0: the condition held this long (for_checks is then 1) */
    int nactions;            /* 1..HEAL_RULE_ACTIONS_MAX, run in order */
    heal_action actions[HEAL_RULE_ACTIONS_MAX]; /* .service left "": the caller's service */
    char file[256];          /* where the rule was written, for messages */
    int line;
} heal_rule;

/* Parses one rule. file and lineno only label messages (file may be NULL).
 * Returns 0 and fills *out, or -EINVAL with
 * "FILE:LINE:COL: expected 'then' after the condition, found 'restrt'" in err. */
int heal_rule_parse(const char *line, const char *file, int lineno, heal_rule *out,
                    char *err, size_t errlen);
/* Releases what a rule holds. Nothing today (fixed-size fields); call it
 * anyway so a later condition kind may allocate. */
void heal_rule_free(heal_rule *r);
/* Canonical text of the rule; heal_rule_parse of it gives the same struct.
 * Returns 0, or -ENAMETOOLONG (buf cut), or -EINVAL (invalid struct). */
int heal_rule_format(const heal_rule *r, char *buf, size_t n);

/* The interval and timeout a probe runs with, given the service's probe
 * interval (0 = none). Returns 0, or -EINVAL with a reason in err when the
 * rule's timeout exceeds the service's interval. */
int heal_probe_timing(const heal_probe_spec *p, int64_t service_interval_ms,
                      int64_t *interval_ms, int64_t *timeout_ms, char *err, size_t errlen);

/* Small helpers shared by the parser, the formatter and the rule engine. */
const char *heal_cmp_name(heal_cmp op);              /* ">=", NULL if unknown */
bool heal_cmp_eval(heal_cmp op, double value, double threshold);
const char *heal_resource_name(heal_resource_kind k); /* "cpu", ... */
const char *heal_probe_kind_name(heal_probe_kind k);  /* "http", ... */
/* Shortest text of ms that heal_rule_parse reads back exactly: "500ms", "90m", "7d". */
void heal_rule_format_duration(int64_t ms, char *buf, size_t n);
/* Likewise for sizes: "600MB", "1536KB", "100B". */
void heal_rule_format_size(uint64_t bytes, char *buf, size_t n);

#endif
