/* help.c: the usage texts of `ippoc` and of each command, printed by
 * `ippoc --help`, `ippoc help COMMAND` and `ippoc COMMAND --help`. The exit
 * codes listed here are the CLI_EXIT_* values of cli.h. */
#include "cli/cli.h"

#include <string.h>

static const char usage_text[] =
    "usage: ippoc [GLOBAL OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "Command-line front end of ippocd, the IPPOC self-healing agent.\n"
    "\n"
    "commands:\n"
    "  status            daemon version, uptime, own CPU/RSS, collectors, memory\n"
    "  metrics [PATTERN] series and their last values (PATTERN: glob or prefix)\n"
    "  show METRIC       sparkline and min/mean/max/last of a metric over time\n"
    "  events            the event log; --follow streams new events\n"
    "  services          supervised and watched services: state, pid, restarts\n"
    "  incidents         what failed and how it was healed, newest first\n"
    "  incident ID       one incident: evidence, log lines, actions and outcomes\n"
    "  pending           actions waiting for approval (mode suggest)\n"
    "  approve ID        run a pending action (--edit ACTION: run ACTION instead)\n"
    "  reject ID         drop a pending action\n"
    "  audit             the audit log of actions; --verify checks its hash chain\n"
    "  anomalies         what the detectors find unusual now, and recent episodes\n"
    "  detect FILE.csv   score timestamp,value rows for anomalies (offline, no daemon)\n"
    "  why INCIDENT      the brain's diagnosis: root cause, evidence, actions, past cases\n"
    "  diagnose SERVICE  ask the brain about a service now and print its diagnosis\n"
    "  digest            the day's digest: happened, healed, drifting, proposed\n"
    "  dream             run a dreaming pass now (consolidate memory, write the digest)\n"
    "  ask QUESTION      answer a question from memory, citing the records used\n"
    "  logs templates FILE  mine the log templates of FILE to CSV (offline, no daemon)\n"
    "  logs [SOURCE]     live log templates of each source: counts, rates, first seen\n"
    "  llm               the language-model client: providers, token budgets, fallbacks\n"
    "  learn PATH|URL... read documents into the knowledge store; --feed, --list, --search\n"
    "  prefs             the operators' preferences: configured and learned\n"
    "  history [PATH]    the genome's commits: every change to config, tuned files, tools\n"
    "  diff REV          what a genome commit changed (or A..B)\n"
    "  rollback REV      put the genome back to REV and apply it through the policy\n"
    "  genome check      is the genome's working tree what HEAD says; genome show PATH\n"
    "  evolve code       the model proposes faster code for one file; built, tested, benched\n"
    "  evolve accept ID  merge a self-code job's best branch and build it (then restart)\n"
    "  tool              ToolSmith's tools: list, run, test, draft, add\n"
    "  help [COMMAND]    this text, or a command's\n"
    "\n"
    "global options (before the command):\n"
    "  --url URL         daemon API (default: $IPPOC_URL, else <state-dir>/ippocd.url,\n"
    "                    else ./.ippoc/ippocd.url if present, else " CLI_DEFAULT_URL ")\n"
    "  --state-dir DIR   find the URL in DIR/ippocd.url (default: $IPPOC_STATE_DIR);\n"
    "                    the daemon's socket DIR/ippocd.sock is used instead of TCP\n"
    "                    when this user may open it\n"
    "  --token TOKEN     bearer token (default: $IPPOC_TOKEN)\n"
    "  --timeout SECS    per-request timeout, e.g. 5, 0.5, 30s (default 5)\n"
    "  --json            print the API's JSON instead of text\n"
    "  -h, --help        show help\n"
    "  -V, --version     show the version\n"
    "\n"
    "exit codes:\n"
    "  0  success\n"
    "  1  the daemon answered with an error\n"
    "  2  bad command line\n"
    "  3  cannot reach the daemon\n"
    "  4  unauthorized (missing or wrong token)\n";

typedef struct cmd_help {
    const char *name;
    const char *text;
} cmd_help;

static const cmd_help helps[] = {
    {"status",
     "usage: ippoc status [--json]\n"
     "\n"
     "Shows the daemon's version, host, pid, uptime, its own CPU and RSS, each\n"
     "collector (available / unavailable / disabled, interval, series, cost of\n"
     "its last run, note) and a summary of its memory store.\n"},
    {"metrics",
     "usage: ippoc metrics [PATTERN] [--json]\n"
     "\n"
     "Lists the series ippocd keeps with their last value in human units.\n"
     "PATTERN is a glob over series names (cpu.*, *_bytes); without glob\n"
     "characters it is a prefix: 'ippoc metrics mem' lists mem*.\n"},
    {"show",
     "usage: ippoc show METRIC [--since 10m] [--until now] [--step STEP]\n"
     "                  [--width N] [--ascii] [--json]\n"
     "\n"
     "Draws a sparkline for each series of METRIC (a family such as\n"
     "cpu.usage_percent, or one exact key such as 'cpu.usage_percent{cpu=\"cpu0\"}')\n"
     "with its min, mean, max and last value.\n"
     "\n"
     "  --since TIME   start: a duration ago (30s, 15m, 2h, 1d), now, or epoch\n"
     "                 seconds (default 10m)\n"
     "  --until TIME   end, same forms (default now)\n"
     "  --step STEP    bucket size, e.g. 10s (default: one bucket per column)\n"
     "  --width N      sparkline columns (default: terminal width, 60 if none)\n"
     "  --ascii        ASCII instead of Unicode blocks (automatic when the\n"
     "                 locale is not UTF-8)\n"},
    {"events",
     "usage: ippoc events [--since TIME] [--type TYPE] [--severity LEVEL]\n"
     "                    [--limit N] [--follow] [--json]\n"
     "\n"
     "Shows the newest events, oldest first.\n"
     "\n"
     "  --since TIME      only events after TIME (30s, 15m, 2h ago, or epoch seconds)\n"
     "  --type TYPE       exact type, or a prefix ending in '*' (anomaly*)\n"
     "  --severity LEVEL  at least LEVEL: debug, info, warning, error, critical\n"
     "  --limit N         at most N events (default 20, max 10000)\n"
     "  -f, --follow      then stream new events until interrupted (Ctrl-C,\n"
     "                    exit 0); reconnects if the connection drops\n"
     "  --json            the API's JSON; with --follow one event per line\n"},
    {"services",
     "usage: ippoc services [--json]\n"
     "\n"
     "Shows the healing mode, how many actions wait for approval and how many\n"
     "incidents are open, then one row per service: NAME TYPE STATE PID\n"
     "RESTARTS UPTIME LAST-EXIT (e.g. 'SIGKILL 3m ago', 'exit 1 5s ago'). A\n"
     "service's error, if any, follows the table.\n"},
    {"incidents",
     "usage: ippoc incidents [--json]\n"
     "\n"
     "Lists the incidents ippocd keeps (open ones and the last closed ones),\n"
     "newest first: ID OPENED SERVICE STATUS WHAT TIME-TO-HEAL. STATUS is\n"
     "diagnosing, acting, verifying, resolved or failed. 'ippoc incident ID'\n"
     "shows one.\n"},
    {"incident",
     "usage: ippoc incident ID [--json]\n"
     "\n"
     "Shows one incident: what failed and where (rule file:line or the\n"
     "supervisor), when it started failing, was detected and closed (time to\n"
     "detect, time to heal), the evidence (probe results, metrics, the exit,\n"
     "the last lines of the service's log) and each action with its outcome,\n"
     "then the brain's diagnosis when there is one (see 'ippoc why').\n"},
    {"why",
     "usage: ippoc why INCIDENT [--json]\n"
     "\n"
     "Prints the brain's diagnosis of an incident: the fault type (one of none,\n"
     "crash, bad_environment, config_error, oom_kill, memory_leak, cpu_starvation,\n"
     "disk_full, inode_exhaustion, fd_exhaustion, port_in_use, dependency_down,\n"
     "dns_failure, credential_revoked, permission_denied, io_error, clock_jump,\n"
     "error_storm, unknown), the component, the root cause, the confidence and\n"
     "whether rules or remembered cases gave it, the evidence, the proposed\n"
     "actions (heal's typed actions, in the order tried) and the most similar\n"
     "past incidents with what fixed them. With a language model ([llm]): whether\n"
     "it agrees with the rules (a disagreement lowers the confidence), its\n"
     "explanation with the records each claim cites, its actions marked [model];\n"
     "or why there was no model. Exit status 1 (not_found) when the\n"
     "incident has no diagnosis (yet).\n"},
    {"llm",
     "usage: ippoc llm [--json]\n"
     "\n"
     "The language-model client's status (GET /v1/llm): the local model and the\n"
     "cloud provider ([llm] local, cloud) with their requests, failures and last\n"
     "error; tokens spent this rolling hour against tokens_per_hour, the\n"
     "per-incident budget and how many requests it refused; where every body\n"
     "that left the machine is recorded (STATE/llm/sent.jsonl, redacted); and\n"
     "the recent fallbacks to the cloud with why the local answer was not\n"
     "enough. See docs/llm.md.\n"},
    {"diagnose",
     "usage: ippoc diagnose SERVICE [--json]\n"
     "\n"
     "Asks the brain about SERVICE now (POST /v1/diagnose): it opens an\n"
     "incident, gathers the evidence and diagnoses it at once, then this prints\n"
     "the diagnosis as 'ippoc why' does (waiting up to 30 s for it). With\n"
     "[brain] act = yes the proposed actions go to heal's policy as for any\n"
     "incident.\n"},
    {"digest",
     "usage: ippoc digest [--day YYYY-MM-DD] [--json]\n"
     "\n"
     "Prints the digest of a day (default today, local time; GET /v1/digest),\n"
     "built from the daemon's memory for any day that has events: what\n"
     "happened (incidents by service, restarts, anomaly episodes by metric,\n"
     "new error-level log templates), what was healed (actions and outcomes,\n"
     "mean time to mitigate), what is drifting (drift detections, filesystems\n"
     "filling up with their time to full) and what it proposes (pending\n"
     "approvals, services failing repeatedly, refusals and rejections that keep\n"
     "blocking). Exit status 1 (not_found) for a day without events.\n"},
    {"dream",
     "usage: ippoc dream [--json]\n"
     "\n"
     "Runs a dreaming pass now (POST /v1/dream) instead of waiting for the\n"
     "machine to be idle: merges near-identical remembered cases, merges and\n"
     "decays knowledge, saves the detectors' baselines and writes the digest\n"
     "(yesterday's when still due, else today's so far). Prints what each step\n"
     "did once the pass's brain.dream event is there (waiting up to 60 s).\n"
     "Exit status 1 (conflict) while a pass or a deliberation runs.\n"},
    {"evolve code",
     "usage: ippoc evolve code --target FILE --bench CMD [--repo DIR] [--build CMD]\n"
     "                         [--test CMD] [--goal min|max] [--candidates N]\n"
     "                         [--repeats N] [--detach] [--json]\n"
     "\n"
     "Self-code evolution (POST /v1/evolve/code; needs [llm]). The daemon clones\n"
     "the git repository DIR (default: the current directory; its committed HEAD)\n"
     "into its state dir, builds, tests and benchmarks it (--repeats times,\n"
     "default 7), then asks the model for --candidates patches (default 3) to\n"
     "FILE only. Each patch is applied with git apply, built, tested and\n"
     "benchmarked in the sandbox, interleaved with the baseline. CMD is split\n"
     "into words, no shell ('&&' chains commands; write sh -c '...' for a\n"
     "shell); the bench prints a number, lower is better unless --goal max.\n"
     "Defaults: --build 'meson setup build && ninja -C build', --test 'meson\n"
     "test -C build --suite unit'. A candidate that builds and passes the tests\n"
     "is kept on the branch evolve/code-ID-N of DIR with Ippoc-* trailers; it\n"
     "is accepted when faster (one-sided Mann-Whitney p < 0.05 and the\n"
     "interval of the gain above +2%). Follows the job until it ends (one line\n"
     "per step and per candidate); --detach prints the job's id and returns.\n"},
    {"evolve accept",
     "usage: ippoc evolve accept ID [--branch BRANCH] [--json]\n"
     "\n"
     "Merges the best accepted branch of self-code job ID (or BRANCH, one the\n"
     "job kept) into the repository's current branch, only when its working\n"
     "tree is clean, and builds it with the job's build command. The merge\n"
     "goes through the safety policy: when it is queued for approval this\n"
     "prints the pending id ('ippoc approve N'); else it waits for the merge\n"
     "and the build and prints what to restart: ippoc never replaces a\n"
     "running binary itself.\n"},
    {"learn",
     "usage: ippoc learn [--kind KIND] [--pin] [--json] FILE|DIR|URL...\n"
     "       ippoc learn --feed [URL]\n"
     "       ippoc learn --list\n"
     "       ippoc learn --search QUERY [--mode hybrid|bm25|vector] [--limit N]\n"
     "\n"
     "Reads documents into the knowledge store (POST /v1/learn). Files are\n"
     "read here, as you, and parsed to plain text: markdown, text, HTML, man\n"
     "pages (rendered by man -l when installed), PDF (through pdftotext, from\n"
     "poppler-utils); gzip is looked through; at most 20 MB a file. A DIR is\n"
     "read recursively, skipping hidden and binary files. A URL (http or\n"
     "https) is fetched by the daemon. Each document prints the chunks added,\n"
     "'unchanged', or an error naming it (then the exit status is 1); with\n"
     "--json, each answer as a line of JSON.\n"
     "  --kind KIND   markdown, text, html, man, pdf, or runbook (a runbook is\n"
     "                pinned: it never decays away)\n"
     "  --pin         never let these documents decay away\n"
     "  --feed URL    follow an Atom or RSS feed (fetched now, then every\n"
     "                [knowledge] feed_interval, default 6h): new papers'\n"
     "                titles and abstracts are stored and linked to the\n"
     "                components and knobs they mention; --feed alone lists\n"
     "                the feeds with their last success and failures\n"
     "  --list        the store's size and its newest documents\n"
     "  --search Q    the best chunks for Q with their source and a snippet\n"
     "                (--mode: hybrid by default; --limit: 10 by default)\n"},
    {"ask",
     "usage: ippoc ask [--at TIME] [--json] QUESTION...\n"
     "\n"
     "Answers a question from what ippocd remembers (POST /v1/ask): events,\n"
     "incidents and their diagnoses, remembered cases, metrics, log templates,\n"
     "package and file changes, and learned knowledge. Prints the answer, then\n"
     "the records it cites: REF TIME SUMMARY (refs like event:12, incident:4,\n"
     "case:2, metric:NAME{LABELS}@TS, package:NAME@TS, path:/DIR, chunk:17).\n"
     "It understands, without a model: why did SERVICE restart / fail / stop\n"
     "[at 03:12 | yesterday | 2 hours ago]; what changed before SERVICE failed,\n"
     "or since TIME; what is using the disk (space, or I/O); has this happened\n"
     "before; what is wrong now. With a model configured ([llm]) the answer is\n"
     "prose grounded in the same records. --at TIME (epoch seconds, now-2h, or\n"
     "ISO 8601) is the moment asked about when the question names none. The\n"
     "words of QUESTION are joined with spaces. See docs/ask.md.\n"},
    {"history",
     "usage: ippoc history [PATH] [--limit N] [--json]\n"
     "\n"
     "Lists the genome's commits, newest first (N: 50 by default): COMMIT TIME\n"
     "KIND AUTHOR REASON FITNESS. Kinds: import (a file changed outside ippoc,\n"
     "found at start or reload), config (an approved sysctl or restore),\n"
     "evolve (an accepted experiment), rollback, revert (a regression after a\n"
     "merge, or a refused rollback), tool. PATH: only commits touching it\n"
     "(ippoc.conf, files/etc/..., tools/NAME.lua). See docs/evolve.md.\n"},
    {"diff",
     "usage: ippoc diff REV\n"
     "\n"
     "Prints the unified diff of genome commit REV against its parent, or of\n"
     "A..B. REV is anything git understands: a commit id or prefix, HEAD~2.\n"},
    {"rollback",
     "usage: ippoc rollback REV [--reason TEXT] [--json]\n"
     "\n"
     "Makes a new genome commit whose content is REV's, then asks the safety\n"
     "policy to apply it to the machine (a 'genome apply' action of target\n"
     "'cell'; [evolve] changes = execute | approve | refuse, default approve).\n"
     "Prints the commit and the verdict: 'executing', or 'queued: approve with\n"
     "ippoc approve ID'. A refused rollback is undone in the genome. The\n"
     "applied change is on probation ([evolve] probation): a regression\n"
     "reverts it by itself.\n"},
    {"genome",
     "usage: ippoc genome check [--json]\n"
     "       ippoc genome show PATH [--rev REV]\n"
     "\n"
     "check: whether the genome's working tree (STATE/genome) matches HEAD;\n"
     "a file edited by hand there is reported with its path (exit 1).\n"
     "show: the text of PATH at REV (default HEAD).\n"},
    {"evolve watch",
     "usage: ippoc evolve watch [--json]\n"
     "\n"
     "The genome changes applied to the machine since ippocd started: those on\n"
     "probation (until when) and the outcome of the others (kept, reverted\n"
     "with the regression seen, applied without probation, failed).\n"},
    {"prefs",
     "usage: ippoc prefs [--json]\n"
     "       ippoc prefs forget ID [--json]\n"
     "\n"
     "Lists the preferences that change the brain's proposals: configured ones\n"
     "([prefs] maintenance, never) and learned ones (approvals, rejections and\n"
     "edits per signature, services not to touch, learned maintenance windows),\n"
     "each with its rule and how many proposals it changed, last when.\n"
     "'forget ID' drops a learned one (a configured one is changed in the\n"
     "configuration).\n"},
    {"tool",
     "usage: ippoc tool [list] [--json]\n"
     "       ippoc tool run NAME [KEY=VALUE...] [--json]\n"
     "       ippoc tool test NAME [--json]\n"
     "       ippoc tool draft NAME \"what it does\" [--json]\n"
     "       ippoc tool add FILE.lua [--json]\n"
     "\n"
     "ToolSmith's tools (docs/tools.md): small Lua 5.4 tools (or WebAssembly\n"
     "modules) kept in the genome's tools/. 'list' shows each with its kind,\n"
     "tests, last run and description, then the drafts. 'run' runs one with\n"
     "its arguments (a VALUE that reads as JSON, such as 90 or true, is sent as\n"
     "such) and prints its value and log; exit 1 when it failed. 'test' runs\n"
     "its own tests in the sandbox. 'draft' has the model ([llm]) write a new\n"
     "tool; 'add' posts FILE.lua (NAME from the file name) as a draft without\n"
     "one. A draft enters the genome only when its tests pass in the sandbox\n"
     "and the safety policy allows it (it may wait in 'ippoc pending').\n"},
    {"pending",
     "usage: ippoc pending [--json]\n"
     "\n"
     "Lists the actions waiting for a person (services in mode 'suggest'):\n"
     "ID SERVICE ACTION WHY EXPIRES. An offer not decided before it expires\n"
     "is dropped.\n"},
    {"approve",
     "usage: ippoc approve ID [--edit ACTION] [--json]\n"
     "\n"
     "Approves pending action ID (see 'ippoc pending'): the safety policy checks\n"
     "it again (allowlist, rate limits, flapping), then it runs and is audited\n"
     "as approved by cli:$USER. Prints 'approved ID: ACTION SERVICE'. Errors\n"
     "(exit 1): not_found (no such id), expired, conflict (rate limited or\n"
     "flapping; it stays queued, try later), forbidden (no longer allowed).\n"
     "With --edit ACTION (e.g. --edit 'restart web'), ACTION runs instead of\n"
     "the proposed one, after the policy decides it like any other; the brain\n"
     "learns to propose the edit next time (see 'ippoc prefs').\n"},
    {"reject",
     "usage: ippoc reject ID [--json]\n"
     "\n"
     "Rejects pending action ID: it is dropped and the rejection audited.\n"
     "Prints 'rejected ID: ACTION SERVICE'.\n"},
    {"audit",
     "usage: ippoc audit [--last N] [--since SEQ] [--service NAME] [--json]\n"
     "       ippoc audit --verify [--json]\n"
     "\n"
     "Shows the audit log, oldest first: SEQ TIME KIND SERVICE ACTION\n"
     "VERDICT/OUTCOME. KIND is intent (written before an action runs), result,\n"
     "decision (refused, queued or only recorded), approval, rejection or\n"
     "recovery (a torn line after a crash).\n"
     "\n"
     "  --last N        only the last N matching records (default 100, max 10000)\n"
     "  --since SEQ     only records after sequence number SEQ\n"
     "  --service NAME  only records about service NAME\n"
     "  --verify        check the hash chain of the whole log: prints\n"
     "                  'audit log intact: N records' (exit 0) or\n"
     "                  'audit log TAMPERED at line L (seq S): REASON' (exit 1)\n"},
    {"anomalies",
     "usage: ippoc anomalies [--all] [--json]\n"
     "\n"
     "Shows what ippocd's anomaly detectors (one per watched series, see [detect])\n"
     "find unusual now: a summary line, then one row per anomalous series:\n"
     "METRIC SCORE PEAK COMPONENT VALUE EXPECTED BAND DEPARTURE SINCE (SCORE is\n"
     "the last sample's, 0 usual .. 1 most unusual; the rest is at the peak of its\n"
     "anomalous stretch: COMPONENT is what fired (spike, dip, level_up,\n"
     "level_down, variance, seasonal, flatline, drift), BAND the values expected,\n"
     "DEPARTURE how far outside the band the value was, in half-widths of the band\n"
     "(+ above, - below, 0 inside), with the change against EXPECTED in %),\n"
     "then the recent episodes, newest first: their FIRST MOVER (the earliest\n"
     "onset) and the series that turned anomalous with it, in onset order, with\n"
     "their peaks and how long after the first each one moved ('later': beyond\n"
     "the episode window, chained in by the others).\n"
     "\n"
     "  -a, --all   also every watched series: METRIC SCORE REASON SAMPLES (how many\n"
     "              samples its detector learned from) VALUE ANOMALOUS\n"
     "  --json      the API's JSON (GET /v1/anomalies)\n"},
    {"detect",
     "usage: ippoc detect FILE.csv [FILE.csv...] [-o OUT] [--reason]\n"
     "                    [--set NAME=VALUE]...\n"
     "       ippoc detect --tunables [--set NAME=VALUE]...\n"
     "\n"
     "Scores every row of timestamp,value CSV files with ippocd's anomaly\n"
     "detector, offline: no daemon needed. Each file starts from scratch (a new\n"
     "detector, rows in file order, no look-ahead). Writes the header\n"
     "timestamp,value,anomaly_score, then one row per input row: the timestamp\n"
     "and value as written, the score in [0, 1] with 6 decimals.\n"
     "\n"
     "Input: a first line that does not parse (timestamp,value) is a header;\n"
     "empty lines are skipped; CRLF is fine. Timestamps: YYYY-MM-DD HH:MM:SS[.fff]\n"
     "(UTC), YYYY-MM-DDTHH:MM:SS[.fff][Z] or epoch seconds. '-' reads stdin.\n"
     "\n"
     "  -o, --output OUT  write to file OUT instead of stdout; if OUT is an existing\n"
     "                    directory, write OUT/<input's name> for each input (needed\n"
     "                    for several inputs). A file is complete or not written.\n"
     "  --reason          add a reason column (spike, dip, level_up, ...; none)\n"
     "  --set NAME=VALUE  change one of the detector's tunables for this run\n"
     "                    (repeatable; for benchmarks such as bench/nab/tune.py:\n"
     "                    ippocd never changes them)\n"
     "  --tunables        list the tunables as NAME=VALUE (after any --set), read\n"
     "                    no file\n"
     "\n"
     "exit codes: 0 ok; 2 bad command line or bad input: an unknown tunable or a\n"
     "bad or out-of-range --set value (the reason is printed), a file that cannot be\n"
     "opened or a bad row, reported as FILE:LINE: reason (missing or extra column,\n"
     "bad timestamp, bad number, NaN/inf, line too long); it stops there;\n"
     "1 the output cannot be written.\n"},
    {"logs",
     "usage: ippoc logs [SOURCE] [--json]\n"
     "       ippoc logs templates FILE ...   (offline; see 'ippoc help logs templates')\n"
     "\n"
     "Shows the log templates ippocd mined from each log source: a service's\n"
     "captured output and its log_file files, a [logs] file NAME, a journal unit.\n"
     "Per source a summary line (lines, error lines, templates), then one row per\n"
     "template, most frequent first: ID, COUNT, RATE/S (a decaying average over\n"
     "about 10 s), LEVEL (the most severe seen; error! or burst! while its rate is\n"
     "over [logs] burst times its baseline), FIRST SEEN and the TEMPLATE (variable\n"
     "parts shown as <*>). Without SOURCE each source shows its top 10; with it,\n"
     "every template of that source. Reads GET /v1/logs[?source=S]; an unknown\n"
     "source is an error (exit 1).\n"
     "\n"
     "  --json            print the API's answer\n"},
    {"logs templates",
     "usage: ippoc logs templates FILE [--format FORMAT] [--mask REGEX]... [--sim X]\n"
     "                            [--sim-tokens N] [--depth N] [--variants N]\n"
     "                            [--max-templates N] [--classic]\n"
     "\n"
     "Mines the log templates of FILE ('-': stdin) offline, no daemon needed, with\n"
     "the miner ippocd runs on live logs (see docs/logs.md). Writes the CSV header\n"
     "LineId,EventId,EventTemplate, then one row per line in order, with the\n"
     "final template of the line's group (variable parts shown as <*>). A\n"
     "trailing \\r is stripped; empty lines and any bytes are fine.\n"
     "\n"
     "  --format FORMAT   split a header off each line first, Loghub style, e.g.\n"
     "                    '<Date> <Time> <Level> <Component>: <Content>': fields\n"
     "                    are <Name>, blanks match any run of whitespace, \\X is a\n"
     "                    literal X, (...)? an optional part; only <Content> is\n"
     "                    templated (a line that does not match is templated whole)\n"
     "  --mask REGEX      also replace matches of REGEX (PCRE2) by <*> before\n"
     "                    tokenising; repeatable, applied in order\n"
     "  --sim X           similarity threshold in (0, 1]: the share of a template's\n"
     "                    constant tokens a message must have to join it (default\n"
     "                    1: all of them; Drain: 0.5)\n"
     "  --sim-tokens N    a --sim below 1 applies only to messages of N tokens or\n"
     "                    more; shorter ones need all (default 1: every message)\n"
     "  --depth N         prefix tree depth, 3 to 32 (default 4)\n"
     "  --variants N      N templates that differ in one word only become one, with\n"
     "                    <*> there (default 5; 1: never)\n"
     "  --max-templates N forget the least recently used template past N (0: never)\n"
     "  --classic         plain Drain as published: blank-separated tokens, no\n"
     "                    built-in masks, no variants (default --sim 0.5)\n"
     "\n"
     "exit codes: 0 ok; 2 bad command line, format or regex (the reason and the\n"
     "offset); 1 FILE cannot be read or the output cannot be written.\n"},
    {"help",
     "usage: ippoc help [COMMAND]\n"
     "\n"
     "Shows the general help, or a command's.\n"},
};

void cli_usage(FILE *f)
{
    fputs(usage_text, f);
}

bool cli_help_command(const char *name, FILE *f)
{
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++)
        if (!strcmp(helps[i].name, name)) {
            fputs(helps[i].text, f);
            return true;
        }
    return false;
}
