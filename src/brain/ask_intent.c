/* ask_intent.c: understands a question without a model: its kind (why did X
 * restart, what changed, what is using the disk, has this happened before,
 * what is wrong now, or generic), the component it names (a configured
 * service first, else a process or unit name by its place in the sentence)
 * and the time ("at 03:12", "yesterday", "2 hours ago", "since 02:00", an
 * ISO time, "now-15m"). Word lists and a few patterns; pure and
 * deterministic, so tests/brain/test_ask_intent.c checks it with a table. */
#include "brain/ask_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const brain_ask_kinds[] = {"why", "changes", "disk", "history", "status", "generic"};

#define MAXW 96
#define WLEN 128

typedef struct words {
    char w[MAXW][WLEN];
    int n;
} words;

/* Lower-cased words: letters, digits and . _ - / : + kept inside a word;
 * trailing . : , - dropped. */
static void split(const char *q, words *ws)
{
    ws->n = 0;
    const char *p = q;
    while (*p && ws->n < MAXW) {
        while (*p && !(isalnum((unsigned char)*p) || *p == '/' || *p == '_'))
            p++;
        if (!*p)
            break;
        int l = 0;
        while (*p && (isalnum((unsigned char)*p) || strchr("._-/:+", *p))) {
            if (l < WLEN - 1)
                ws->w[ws->n][l++] = (char)tolower((unsigned char)*p);
            p++;
        }
        while (l > 1 && strchr(".:,-", ws->w[ws->n][l - 1]))
            l--;
        ws->w[ws->n][l] = 0;
        ws->n++;
    }
}

static bool in(const char *w, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(w, *list))
            return true;
    return false;
}

static int find(const words *ws, const char *const *list)
{
    for (int i = 0; i < ws->n; i++)
        if (in(ws->w[i], list))
            return i;
    return -1;
}

static bool has(const words *ws, const char *const *list)
{
    return find(ws, list) >= 0;
}

/* Two words in a row. */
static bool pair(const words *ws, const char *a, const char *b)
{
    for (int i = 0; i + 1 < ws->n; i++)
        if (!strcmp(ws->w[i], a) && !strcmp(ws->w[i + 1], b))
            return true;
    return false;
}

/* ---- time -------------------------------------------------------------------- */

static int64_t local_ms(const struct tm *tm)
{
    struct tm t = *tm;
    t.tm_isdst = -1;
    return (int64_t)core_mktime(&t) * 1000;
}

static int64_t midnight(int64_t now_ms, int days_back)
{
    time_t s = (time_t)(now_ms / 1000);
    struct tm tm;
    localtime_r(&s, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_mday -= days_back;
    return local_ms(&tm);
}

/* "HH:MM[:SS]" (with "am"/"pm" glued or in next): 0 and the seconds of the day. */
static int clock_of(const char *w, const char *next, int *sod)
{
    int h, m, s = 0, n1 = 0, n2 = 0;
    if (!isdigit((unsigned char)w[0]) || sscanf(w, "%2d:%2d%n", &h, &m, &n1) != 2 || !isdigit((unsigned char)w[n1 - 1]))
        return -1;
    const char *rest = w + n1;
    if (rest[0] == ':') {
        if (!isdigit((unsigned char)rest[1]) || sscanf(rest, ":%2d%n", &s, &n2) != 1)
            return -1;
        rest += n2;
    }
    const char *suf = *rest ? rest : next;
    bool pm = suf && !strcmp(suf, "pm"), am = suf && !strcmp(suf, "am");
    if (*rest && !pm && !am)
        return -1;
    if (pm && h < 12)
        h += 12;
    else if (am && h == 12)
        h = 0;
    if (h < 0 || h > 23 || m < 0 || m > 59 || s < 0 || s > 59)
        return -1;
    *sod = h * 3600 + m * 60 + s;
    return 0;
}

/* "3pm", "11am": 0 and the seconds of the day. */
static int hour_of(const char *w, const char *next, int *sod)
{
    char *end;
    long h = strtol(w, &end, 10);
    if (end == w || h < 1 || h > 12)
        return -1;
    const char *suf = *end ? end : next;
    if (!suf || (strcmp(suf, "am") && strcmp(suf, "pm")))
        return -1;
    *sod = (int)((h % 12 + (suf[0] == 'p' ? 12 : 0)) * 3600);
    return 0;
}

/* The most recent past moment at seconds-of-day sod, on day_back days ago
 * when day_back >= 0. */
static int64_t at_clock(int64_t now_ms, int sod, int day_back)
{
    int64_t t = midnight(now_ms, day_back < 0 ? 0 : day_back) + (int64_t)sod * 1000;
    if (day_back < 0 && t > now_ms + 60000)
        t = midnight(now_ms, 1) + (int64_t)sod * 1000;
    return t;
}

/* "2026-12-05T03:12[:SS][Z]" or "2026-12-05" (+ a clock in next). */
static int iso_of(const char *w, const char *next, int64_t *ms, bool *used_next)
{
    int y, mo, d, used = 0;
    *used_next = false;
    if (sscanf(w, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3 || used != 10 || mo < 1 || mo > 12 || d < 1 || d > 31)
        return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d};
    const char *clk = NULL;
    if (w[10] == 't')
        clk = w + 11;
    else if (w[10])
        return -1;
    int sod = 0;
    bool utc = false;
    char buf[WLEN];
    if (clk) {
        snprintf(buf, sizeof buf, "%s", clk);
        size_t l = strlen(buf);
        if (l && buf[l - 1] == 'z')
            buf[l - 1] = 0, utc = true;
        else if (l > 6 && (buf[l - 6] == '+' || buf[l - 6] == '-') && buf[l - 3] == ':')
            buf[l - 6] = 0, utc = true; /* an offset: taken as UTC (close enough for a question) */
        if (clock_of(buf, NULL, &sod))
            return -1;
    } else if (next && clock_of(next, NULL, &sod) == 0) {
        *used_next = true;
    }
    tm.tm_hour = sod / 3600, tm.tm_min = sod / 60 % 60, tm.tm_sec = sod % 60;
    *ms = utc ? (int64_t)timegm(&tm) * 1000 : local_ms(&tm);
    return 0;
}

static int64_t unit_ms(const char *u)
{
    static const struct {
        const char *const names[8];
        int64_t ms;
    } units[] = {
        {{"s", "sec", "secs", "second", "seconds", NULL}, 1000},
        {{"m", "min", "mins", "minute", "minutes", NULL}, 60000},
        {{"h", "hr", "hrs", "hour", "hours", NULL}, 3600000},
        {{"d", "day", "days", NULL}, 86400000},
        {{"w", "week", "weeks", NULL}, 7 * 86400000LL},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (in(u, units[i].names))
            return units[i].ms;
    return 0;
}

static long count_of(const char *w)
{
    static const char *const nums[] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                                       "nine", "ten", NULL};
    if (!strcmp(w, "a") || !strcmp(w, "an") || !strcmp(w, "the"))
        return 1;
    for (int i = 0; nums[i]; i++)
        if (!strcmp(w, nums[i]))
            return i;
    char *end;
    long n = strtol(w, &end, 10);
    return end != w && !*end && n >= 0 && n < 100000 ? n : -1;
}

/* "2h" / "15m" glued, or "2" "hours": the length and the words it took. */
static int64_t span_at(const words *ws, int i, int *took)
{
    char *end;
    long n = strtol(ws->w[i], &end, 10);
    if (end != ws->w[i] && *end && unit_ms(end) && n >= 0) {
        *took = 1;
        return n * unit_ms(end);
    }
    if (i + 1 < ws->n) {
        long k = count_of(ws->w[i]);
        if (k >= 0 && unit_ms(ws->w[i + 1])) {
            *took = 2;
            return k * unit_ms(ws->w[i + 1]);
        }
    }
    if (unit_ms(ws->w[i]) && strlen(ws->w[i]) > 1) { /* "last hour" */
        *took = 1;
        return unit_ms(ws->w[i]);
    }
    return 0;
}

static void note_time(brain_ask_q *q, const words *ws, int from, int to)
{
    size_t l = 0;
    q->time_text[0] = 0;
    for (int i = from; i <= to && i < ws->n; i++) {
        int k = snprintf(q->time_text + l, sizeof q->time_text - l, "%s%s", l ? " " : "", ws->w[i]);
        if (k < 0 || (size_t)k >= sizeof q->time_text - l)
            break;
        l += (size_t)k;
    }
}

/* A moment at word i: its time, and the words it took; 0 when none. */
static int64_t moment_at(const words *ws, int i, int64_t now_ms, int day_back, int *took)
{
    const char *next = i + 1 < ws->n ? ws->w[i + 1] : NULL;
    int sod;
    int64_t ms;
    bool used_next;
    *took = 1;
    if (iso_of(ws->w[i], next, &ms, &used_next) == 0) {
        *took = used_next ? 2 : 1;
        return ms;
    }
    if (clock_of(ws->w[i], next, &sod) == 0) {
        if (next && (!strcmp(next, "am") || !strcmp(next, "pm")) && isdigit((unsigned char)ws->w[i][strlen(ws->w[i]) - 1]))
            *took = 2;
        return at_clock(now_ms, sod, day_back);
    }
    if (hour_of(ws->w[i], next, &sod) == 0) {
        *took = isdigit((unsigned char)ws->w[i][strlen(ws->w[i]) - 1]) ? 2 : 1;
        return at_clock(now_ms, sod, day_back);
    }
    if (!strcmp(ws->w[i], "noon") || !strcmp(ws->w[i], "midnight"))
        return at_clock(now_ms, ws->w[i][0] == 'n' ? 12 * 3600 : 0, day_back);
    if (!strncmp(ws->w[i], "now-", 4) || (strlen(ws->w[i]) >= 9 && strspn(ws->w[i], "0123456789.") == strlen(ws->w[i])))
        if (core_parse_time(ws->w[i], now_ms, &ms) == 0)
            return ms;
    /* "2 hours ago", "an hour ago" */
    int t2 = 0;
    int64_t len = span_at(ws, i, &t2);
    if (len && i + t2 < ws->n && !strcmp(ws->w[i + t2], "ago")) {
        *took = t2 + 1;
        return now_ms - len;
    }
    return 0;
}

static void parse_time(const words *ws, int64_t now_ms, brain_ask_q *q)
{
    static const char *const since_w[] = {"since", "after", NULL};
    static const char *const last_w[] = {"last", "past", "previous", NULL};
    int day_back = -1, yday = -1;
    for (int i = 0; i < ws->n; i++) {
        if (!strcmp(ws->w[i], "yesterday"))
            day_back = 1, yday = i;
        else if (!strcmp(ws->w[i], "today") || !strcmp(ws->w[i], "tonight"))
            day_back = 0, yday = i;
    }
    for (int i = 0; i < ws->n; i++) {
        int took = 0;
        bool since = i > 0 && in(ws->w[i - 1], since_w);
        int64_t t = moment_at(ws, i, now_ms, day_back, &took);
        if (t) {
            if (since) {
                q->from_ms = t, q->to_ms = now_ms;
                note_time(q, ws, i - 1, i + took - 1);
            } else {
                q->at_ms = t;
                note_time(q, ws, i > 0 && !strcmp(ws->w[i - 1], "at") ? i - 1 : i, i + took - 1);
            }
            return;
        }
        if (in(ws->w[i], last_w) && i + 1 < ws->n) { /* "last 2 hours", "past day" */
            int64_t len = span_at(ws, i + 1, &took);
            if (len) {
                q->from_ms = now_ms - len, q->to_ms = now_ms;
                note_time(q, ws, i, i + took);
                return;
            }
            if (!strcmp(ws->w[i + 1], "night")) {
                q->from_ms = midnight(now_ms, 1) + 18 * 3600000LL, q->to_ms = midnight(now_ms, 0) + 8 * 3600000LL;
                note_time(q, ws, i, i + 1);
                return;
            }
        }
        if (!strcmp(ws->w[i], "this") && i + 1 < ws->n &&
            (!strcmp(ws->w[i + 1], "morning") || !strcmp(ws->w[i + 1], "afternoon") || !strcmp(ws->w[i + 1], "evening"))) {
            int64_t m0 = midnight(now_ms, 0);
            int h0 = ws->w[i + 1][0] == 'm' ? 0 : ws->w[i + 1][0] == 'a' ? 12 : 17;
            int h1 = ws->w[i + 1][0] == 'm' ? 12 : ws->w[i + 1][0] == 'a' ? 17 : 24;
            q->from_ms = m0 + h0 * 3600000LL, q->to_ms = m0 + h1 * 3600000LL;
            if (q->to_ms > now_ms)
                q->to_ms = now_ms;
            note_time(q, ws, i, i + 1);
            return;
        }
    }
    if (yday >= 0) {
        q->from_ms = midnight(now_ms, day_back);
        q->to_ms = day_back ? midnight(now_ms, 0) : now_ms;
        note_time(q, ws, yday, yday);
        if (yday > 0 && in(ws->w[yday - 1], since_w)) {
            q->to_ms = now_ms;
            note_time(q, ws, yday - 1, yday);
        }
    }
}

/* ---- the component ------------------------------------------------------------- */

static const char *const stop_w[] = {
    "the", "a", "an", "it", "this", "that", "these", "those", "my", "our", "your", "its", "there", "here", "we",
    "i", "you", "they", "he", "she", "what", "which", "who", "why", "when", "where", "how", "is", "was", "are",
    "were", "be", "been", "being", "did", "does", "do", "has", "have", "had", "not", "any", "anything",
    "something", "everything", "all", "so", "much", "many", "again", "ever", "before", "after", "since", "at",
    "on", "in", "of", "to", "for", "from", "with", "by", "and", "or", "but", "just", "now", "then", "today",
    "yesterday", "ago", "last", "past", "up", "down", "out", "off", "same", "thing", "things", "problem",
    "issue", "error", "errors", "server", "machine", "host", "system", "box", "service", "services", "process",
    "disk", "space", "memory", "cpu", "load", "happen", "happened", "happening", "wrong", "going", "ok", "okay",
    "go", "get", "got", "keep", "keeps", "kept", "still", "really", "very", "too", "also", "me", "us", "can",
    "could", "would", "should", "will", "might", "may", "must", "changed", "change", "changes", "using", "use",
    "used", "eating", "filling", "full", "slow", "health", "status", "running", "about", "like", "similar",
    "time", "times", "happens", "occur", "occurred", "seen", "see", "tell", "show", "explain", "please",
    "restart", "restarted", "restarts", "restarting", "crash", "crashed", "crashes", "crashing", "fail",
    "failed", "fails", "failing", "failure", "stop", "stopped", "stops", "die", "died", "dies", "exit",
    "exited", "exits", "killed", "broke", "break", "broken", "hang", "hung", "reboot", "rebooted", "cause",
    "caused", "reason", "morning", "evening", "afternoon", "night", "tonight", "hour", "hours", "minute",
    "minutes", "day", "days", "week", "weeks", "noon", "midnight", "am", "pm", "new", "lot", "more", "most",
    "around", "near", "during", "between", "into", "over", "under", "because", "if", "else", "than", "while",
    "wrong", "well", "whats", "what's", "hows", "s", "t", "let", "know", "happend", "unit", "app", "application",
    "daemon", "job", "reading", "writing", "read", "write", "io", "i/o", "iops", "storage", "filesystem",
    "file", "files", "directory", "folder", "big", "large", "largest", "biggest", "room", "left", "free",
    "doing", "taking", "making", "causing", "most", "some", "someone", "somebody", "anyone", "anybody", NULL};

static const char *const event_w[] = {"restart", "restarted", "restarts", "restarting", "crash", "crashed",
                                      "crashes", "crashing", "fail", "failed", "fails", "failing", "failure",
                                      "stop", "stopped", "stops", "die", "died", "dies", "exit", "exited",
                                      "exits", "killed", "down", "broke", "hang", "hung", "reboot",
                                      "rebooted", "oom", "oomed", NULL};

static void event_of(const char *w, char *out, size_t n)
{
    static const struct {
        const char *pfx, *ev;
    } map[] = {{"restart", "restart"}, {"reboot", "restart"}, {"crash", "crash"}, {"oom", "crash"},
               {"killed", "crash"},    {"die", "crash"},      {"died", "crash"},  {"fail", "fail"},
               {"broke", "fail"},      {"hang", "fail"},      {"hung", "fail"},   {"stop", "stop"},
               {"exit", "stop"},       {"down", "stop"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strncmp(w, map[i].pfx, strlen(map[i].pfx))) {
            snprintf(out, n, "%s", map[i].ev);
            return;
        }
}

static bool looks_like_name(const char *w)
{
    size_t l = strlen(w);
    if (l < 2 || l > 63 || !isalpha((unsigned char)w[0]) || in(w, stop_w))
        return false;
    if (strchr(w, ':') || strchr(w, '/'))
        return false;
    return true;
}

static void set_component(brain_ask_q *q, const char *w)
{
    char buf[WLEN];
    snprintf(buf, sizeof buf, "%s", w);
    size_t l = strlen(buf);
    static const char *const sfx[] = {".service", ".timer", ".socket", ".scope", "'s", NULL};
    for (int i = 0; sfx[i]; i++) {
        size_t k = strlen(sfx[i]);
        if (l > k && !strcmp(buf + l - k, sfx[i]))
            buf[l - k] = 0;
    }
    snprintf(q->component, sizeof q->component, "%s", buf);
}

static void parse_component(const words *ws, const char *question, const char *const *services, int nservices,
                            brain_ask_q *q)
{
    /* a configured service, as a whole word (the longest one named) */
    size_t best = 0;
    for (int s = 0; s < nservices; s++) {
        size_t l = strlen(services[s]);
        for (int i = 0; i < ws->n && l > best; i++) {
            char buf[WLEN];
            snprintf(buf, sizeof buf, "%s", ws->w[i]);
            char *dot = strstr(buf, ".service");
            if (dot && !dot[8])
                *dot = 0;
            if (!strcasecmp(buf, services[s])) {
                snprintf(q->component, sizeof q->component, "%s", services[s]);
                q->configured = true;
                best = l;
            }
        }
    }
    /* an absolute path, as written (paths keep their case) */
    for (const char *p = question; *p && !q->path[0]; p++) {
        if (*p != '/' || (p > question && !isspace((unsigned char)p[-1]) && !strchr("\"'(`", p[-1])))
            continue;
        size_t l = strcspn(p, " \t\n\"'`()");
        while (l > 1 && strchr("?!.,;:", p[l - 1]))
            l--;
        snprintf(q->path, sizeof q->path, "%.*s", (int)l, p);
    }
    if (q->component[0])
        return;
    /* a unit name */
    for (int i = 0; i < ws->n; i++) {
        size_t l = strlen(ws->w[i]);
        if (l > 8 && !strcmp(ws->w[i] + l - 8, ".service")) {
            set_component(q, ws->w[i]);
            return;
        }
    }
    /* by its place: "did X restart", "X crashed", "before X failed", "to X", "of X", "is X up" */
    for (int i = 0; i < ws->n; i++) {
        bool ev_next = i + 1 < ws->n && in(ws->w[i + 1], event_w);
        bool ev_next2 = i + 2 < ws->n && in(ws->w[i + 2], event_w) && !strcmp(ws->w[i + 1], "keep");
        if (looks_like_name(ws->w[i]) && (ev_next || ev_next2)) {
            set_component(q, ws->w[i]);
            return;
        }
    }
    static const char *const lead_w[] = {"did", "does", "do", "is", "was", "has", "had", "have", "before",
                                         "to", "of", "with", "about", "for", NULL};
    for (int i = 1; i < ws->n; i++) {
        if (!in(ws->w[i - 1], lead_w))
            continue;
        int j = i;
        static const char *const det_w[] = {"the", "my", "our", "a", "an", NULL};
        if (in(ws->w[j], det_w) && j + 1 < ws->n)
            j++;
        if (looks_like_name(ws->w[j])) {
            set_component(q, ws->w[j]);
            return;
        }
    }
}

/* ---- the kind ------------------------------------------------------------------- */

static int kind_of(const words *ws, brain_ask_q *q)
{
    static const char *const change_w[] = {"change", "changed", "changes", "changing", "modified", "modify",
                                           "modification", "modifications", "updated", "update", "updates",
                                           "upgraded", "upgrade", "upgrades", "installed", "install",
                                           "deployed", "deploy", "deployment", "edited", "edit", "touched",
                                           "different", "diff", NULL};
    static const char *const history_w[] = {"ever", "previously", "similar", "history", "recurring", "recur",
                                            "often", NULL};
    static const char *const disk_w[] = {"disk", "disks", "space", "storage", "filesystem", "filesystems",
                                         "fs", "du", "df", "inode", "inodes", "i/o", "io", "iops", "partition",
                                         "volume", "drive", NULL};
    static const char *const io_w[] = {"i/o", "io", "iops", "read", "reads", "reading", "write", "writes",
                                       "writing", "throughput", "busy", "bandwidth", "hammering", NULL};
    static const char *const space_w[] = {"space", "full", "storage", "room", "free", "filled", "filling",
                                          "big", "large", "largest", "biggest", "size", "left", NULL};
    static const char *const why_w[] = {"why", "cause", "caused", "causes", "reason", "explain", "root",
                                        "happened", "when", NULL};
    static const char *const status_w[] = {"wrong", "status", "health", "healthy", "ok", "okay", "broken",
                                           "problem", "problems", "issue", "issues", "alert", "alerts",
                                           "incidents", "failing", "up", "running", "down", "overview",
                                           "state", "fine", "good", "summary", NULL};
    bool last_before = ws->n > 0 && !strcmp(ws->w[ws->n - 1], "before");
    bool history = has(ws, history_w) || last_before || pair(ws, "happened", "before") ||
                   pair(ws, "last", "time") || pair(ws, "how", "often") || pair(ws, "many", "times") ||
                   pair(ws, "seen", "this") || pair(ws, "the", "past") || pair(ws, "first", "time") ||
                   pair(ws, "same", "thing");
    bool change = has(ws, change_w);
    static const char *const fill_w[] = {"using", "eating", "filling", "filled", "full", "taking", NULL};
    bool disk = has(ws, disk_w) || (has(ws, space_w) && !q->configured && pair(ws, "is", "full")) ||
                (q->path[0] && has(ws, fill_w));
    bool why = has(ws, why_w) || pair(ws, "how", "come");
    bool event = has(ws, event_w);
    int evi = find(ws, event_w);
    if (evi >= 0)
        event_of(ws->w[evi], q->event, sizeof q->event);
    if (change && !(history && (pair(ws, "happened", "before") || has(ws, history_w)))) {
        q->before = find(ws, (const char *const[]){"before", "prior", NULL}) >= 0 && !q->from_ms;
        return ASK_CHANGES;
    }
    if (history)
        return ASK_HISTORY;
    if (disk && !(why && q->configured && event)) {
        q->io = has(ws, io_w) && !has(ws, space_w);
        return ASK_DISK;
    }
    if (why || (event && q->component[0] && (pair(ws, "did", ws->w[evi]) || q->at_ms || q->from_ms)))
        return ASK_WHY;
    if (has(ws, status_w) || (event && !q->component[0]))
        return ASK_STATUS;
    if (event && q->component[0])
        return ASK_WHY;
    return ASK_GENERIC;
}

int brain_ask_parse(const char *question, int64_t now_ms, const char *const *services, int nservices,
                    brain_ask_q *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->kind = ASK_GENERIC;
    if (!question) {
        snprintf(err, errlen, "no question");
        return -EINVAL;
    }
    size_t len = strlen(question);
    if (len > ASK_QUESTION_MAX) {
        snprintf(err, errlen, "the question is %zu bytes long (at most %d)", len, ASK_QUESTION_MAX);
        return -EINVAL;
    }
    bool any = false;
    for (const char *p = question; *p; p++) {
        if ((unsigned char)*p < 0x20 && *p != '\t' && *p != '\n') {
            snprintf(err, errlen, "the question holds a control byte (0x%02x) at offset %zu", (unsigned char)*p,
                     (size_t)(p - question));
            return -EINVAL;
        }
        any |= !isspace((unsigned char)*p);
    }
    if (!any) {
        snprintf(err, errlen, "the question is empty");
        return -EINVAL;
    }
    words *ws = malloc(sizeof *ws);
    if (!ws) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    split(question, ws);
    parse_time(ws, now_ms, out);
    parse_component(ws, question, services, nservices, out);
    out->kind = kind_of(ws, out);
    free(ws);
    return 0;
}
