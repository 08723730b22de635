/* heal_fmt.c: text for the healing commands (services, incidents, pending,
 * approve/reject, audit): id arguments, cut cells, a service's last exit, a
 * pending action's expiry, an audit record's verdict or outcome, and the
 * verdict line of `ippoc audit --verify`. Pure functions over the API's
 * JSON, so tests/cli checks them without a daemon. */
#include "cli/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

int cli_check_id(const char *cmd, const char *val, uint64_t *id)
{
    uint64_t v = 0;
    size_t n = val ? strlen(val) : 0;
    bool ok = n > 0 && n <= 20;
    for (size_t i = 0; ok && i < n; i++) {
        uint64_t d = (uint64_t)(val[i] - '0');
        ok = val[i] >= '0' && val[i] <= '9' && v <= (UINT64_MAX - d) / 10;
        v = v * 10 + d;
    }
    if (!ok || v == 0) {
        fprintf(stderr, "ippoc: %s: bad id '%s' (expected a number such as 3; see 'ippoc %s')\n", cmd,
                val ? val : "", !strcmp(cmd, "incident") ? "incidents" : "pending");
        return CLI_EXIT_USAGE;
    }
    *id = v;
    return CLI_EXIT_OK;
}

void cli_fmt_cut(const char *s, size_t max, char *buf, size_t n)
{
    size_t len = 0, cols = 0, i = 0;
    if (n == 0)
        return;
    if (!s)
        s = "";
    bool cut = cli_text_width(s) > max;
    size_t keep = cut && max > 3 ? max - 3 : max;
    for (; s[i] && len + 4 < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        bool lead = (ch & 0xC0) != 0x80;
        if (lead && cols == keep)
            break;
        cols += lead;
        buf[len++] = (ch == '\n' || ch == '\r' || ch == '\t') ? ' ' : (char)ch;
    }
    if (cut || s[i])
        for (int k = 0; k < 3 && len + 1 < n; k++)
            buf[len++] = '.';
    buf[len] = '\0';
}

/* " 3m ago", " 2h5m ago", " 12d3h ago": the two largest units. */
static void fmt_ago(int64_t ts, int64_t now_ms, char *buf, size_t n)
{
    char d[32];
    if (ts <= 0 || now_ms <= 0) {
        buf[0] = '\0';
        return;
    }
    int64_t s = now_ms > ts ? (now_ms - ts) / 1000 : 0;
    if (s >= 86400)
        snprintf(d, sizeof d, "%lldd%lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
    else if (s >= 3600)
        snprintf(d, sizeof d, "%lldh%lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else
        cli_fmt_duration(s * 1000, d, sizeof d);
    snprintf(buf, n, " %s ago", d);
}

void cli_fmt_exit(const json_t *last_exit, int64_t now_ms, char *buf, size_t n)
{
    char ago[48];
    if (!json_is_object(last_exit)) {
        snprintf(buf, n, "-");
        return;
    }
    double sig = cli_jnum(last_exit, "signal", 0), st = cli_jnum(last_exit, "status", 0);
    fmt_ago(cli_json_time_ms(json_object_get(last_exit, "ts")), now_ms, ago, sizeof ago);
    const char *name = sig > 0 && sig < 128 ? sigabbrev_np((int)sig) : NULL;
    if (name)
        snprintf(buf, n, "SIG%s%s", name, ago);
    else if (sig > 0)
        snprintf(buf, n, "signal %.0f%s", sig, ago);
    else
        snprintf(buf, n, "exit %.0f%s", st, ago);
}

void cli_fmt_expires(const json_t *p, int64_t now_ms, char *buf, size_t n)
{
    char d[32];
    double in = cli_jnum(p, "expires_in_ms", NAN);
    double at = cli_jnum(p, "expires_ms", NAN);
    if (isnan(in) && !isnan(at) && at > 1e11)
        in = at - (double)now_ms;
    if (isnan(in)) {
        snprintf(buf, n, "-");
        return;
    }
    if (in <= 0) {
        snprintf(buf, n, "expired");
        return;
    }
    cli_fmt_duration((int64_t)in / 1000 * 1000, d, sizeof d);
    snprintf(buf, n, "in %s", d);
}

/* "WORD", "WORD: text" or "WORD (pending N)". */
static void word_detail(const char *word, const char *detail, double pending, char *buf, size_t n)
{
    size_t len = (size_t)snprintf(buf, n, "%s", word);
    if (pending > 0 && len < n)
        len += (size_t)snprintf(buf + len, n - len, " (pending %.0f)", pending);
    if (detail && *detail && len < n)
        snprintf(buf + len, n - len, ": %s", detail);
}

/* "approved by alice (pending 3)". */
static void by_whom(const char *word, const char *who, double pending, char *buf, size_t n)
{
    size_t len = (size_t)snprintf(buf, n, "%s%s%s", word, who && *who ? " by " : "", who && *who ? who : "");
    if (pending > 0 && len < n)
        snprintf(buf + len, n - len, " (pending %.0f)", pending);
}

void cli_fmt_audit_outcome(const json_t *rec, char *buf, size_t n)
{
    const char *kind = cli_jstr(rec, "kind", "");
    const char *verdict = cli_jstr(rec, "verdict", NULL);
    const char *detail = cli_jstr(rec, "detail", NULL);
    double pending = cli_jnum(rec, "pending_id", 0);
    const json_t *out = json_object_get(rec, "outcome");
    char tmp[512];
    if (!strcmp(kind, "result"))
        word_detail(cli_jstr(out, "status", "?"), cli_jstr(out, "message", NULL), 0, tmp, sizeof tmp);
    else if (!strcmp(kind, "approval") || !strcmp(kind, "rejection"))
        by_whom(!strcmp(kind, "approval") ? "approved" : "rejected", detail, pending, tmp, sizeof tmp);
    else if (!strcmp(kind, "recovery"))
        snprintf(tmp, sizeof tmp, "torn line of %.0f bytes recovered",
                 cli_jnum(json_object_get(rec, "torn"), "bytes", 0));
    else
        word_detail(verdict ? verdict : !strcmp(kind, "intent") ? "execute" : "-", detail, pending, tmp,
                    sizeof tmp);
    if (cli_jbool(rec, "dry_run", false) && strlen(tmp) + 11 < sizeof tmp)
        strcat(tmp, " (dry run)");
    cli_fmt_cut(tmp, 70, buf, n);
}

bool cli_fmt_verify(const json_t *v, char *buf, size_t n)
{
    if (cli_jbool(v, "ok", false)) {
        snprintf(buf, n, "audit log intact: %.0f records", cli_jnum(v, "records", 0));
        return true;
    }
    const char *reason = cli_jstr(v, "reason", NULL);
    if (!reason || !*reason)
        reason = cli_jstr(v, "status", "unknown reason");
    double line = cli_jnum(v, "line", 0), seq = cli_jnum(v, "seq", 0);
    if (line > 0)
        snprintf(buf, n, "audit log TAMPERED at line %.0f (seq %.0f): %s", line, seq, reason);
    else
        snprintf(buf, n, "audit log TAMPERED: %s", reason);
    return false;
}
