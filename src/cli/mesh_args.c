/* mesh_args.c: the arguments of `ippoc mesh invite` and `ippoc mesh revoke`,
 * parsed without printing (cmd_mesh.c prints the message and exits 2), so
 * tests/cli/test_mesh_args.c checks every message. Options come before or
 * after the positional argument, as "--opt VALUE" or "--opt=VALUE"; "--"
 * ends the options. */
#include "cli/cli.h"

#include "core/core.h"
#include "mesh/identity.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct scan {
    int argc, i;
    char **argv;
    bool only_pos;
    const char *val; /* the value of the option just matched */
    char *err;
    size_t n;
} scan;

__attribute__((format(printf, 2, 3))) static int fail(scan *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, s->n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* 1 if argv[i] is option name (its value in s->val), 0 if not, -EINVAL
 * when its value is missing. */
static int option(scan *s, const char *name)
{
    const char *a = s->argv[s->i];
    size_t len = strlen(name);
    if (s->only_pos || strncmp(a, name, len) != 0)
        return 0;
    if (a[len] == '=') {
        s->val = a + len + 1;
        return 1;
    }
    if (a[len] != '\0')
        return 0;
    if (s->i + 1 >= s->argc)
        return fail(s, "%s: missing value", name);
    s->val = s->argv[++s->i];
    return 1;
}

static bool flag(const scan *s, const char *name)
{
    return !s->only_pos && !strcmp(s->argv[s->i], name);
}

static bool positional(const scan *s)
{
    const char *a = s->argv[s->i];
    return s->only_pos || a[0] != '-' || a[1] == '\0';
}

/* Advances to the next argument; false at the end. */
static bool next(scan *s)
{
    if (++s->i >= s->argc)
        return false;
    if (!s->only_pos && !strcmp(s->argv[s->i], "--")) {
        s->only_pos = true;
        return next(s);
    }
    return true;
}

static int unexpected(scan *s)
{
    const char *a = s->argv[s->i];
    return fail(s, positional(s) ? "unexpected argument '%s'" : "unknown option '%s'", a);
}

static int parse_days(scan *s, long *days)
{
    char *end;
    errno = 0;
    long v = strtol(s->val, &end, 10);
    if (end == s->val || *end || errno || v < 1 || v > CLI_MESH_DAYS_MAX)
        return fail(s, "--days: bad number '%s' (expected a whole number of days from 1 to %d)", s->val,
                    CLI_MESH_DAYS_MAX);
    *days = v;
    return 0;
}

static int parse_from(scan *s, int64_t now, int64_t *from)
{
    int64_t ms;
    if (!*s->val || core_parse_time(s->val, now * 1000, &ms) < 0 || ms < 0)
        return fail(s, "--from: bad time '%s' (%s)", s->val,
                    "expected epoch seconds, now, or how long ago, e.g. 2d");
    *from = ms / 1000;
    return 0;
}

static int invite_option(scan *s, int64_t now, cli_mesh_invite *o)
{
    int r;
    char why[256];
    if ((r = option(s, "--id")) != 0) {
        if (r > 0 && mesh_identity_node_id_check(s->val, why, sizeof why))
            return fail(s, "--id: %s", why);
        o->id = s->val;
    } else if ((r = option(s, "--roles")) != 0) {
        if (r > 0 && mesh_identity_roles_parse(s->val, &o->roles, why, sizeof why))
            return fail(s, "--roles: %s", why);
    } else if ((r = option(s, "--days")) != 0) {
        if (r > 0)
            return parse_days(s, &o->days);
    } else if ((r = option(s, "--from")) != 0) {
        if (r > 0)
            return parse_from(s, now, &o->from);
    } else if ((r = option(s, "--seed")) != 0) {
        if (r > 0 && o->nseeds >= CLI_MESH_SEEDS_MAX)
            return fail(s, "--seed: more than %d seeds ('%s')", CLI_MESH_SEEDS_MAX, s->val);
        if (r > 0 && mesh_identity_seed_check(s->val, why, sizeof why))
            return fail(s, "--seed: %s", why);
        if (r > 0)
            o->seeds[o->nseeds++] = s->val;
    } else if (positional(s) && !o->node_pk) {
        o->node_pk = s->argv[s->i];
    } else {
        return unexpected(s);
    }
    return r < 0 ? r : 0;
}

int cli_mesh_parse_invite(int argc, char **argv, int64_t now, cli_mesh_invite *o, char *err, size_t n)
{
    scan s = {.argc = argc, .argv = argv, .err = err, .n = n};
    memset(o, 0, sizeof *o);
    o->roles = MESH_ROLE_ALL;
    o->days = 365;
    o->from = now;
    err[0] = '\0';
    while (next(&s)) {
        if (flag(&s, "-h") || flag(&s, "--help")) {
            o->help = true;
            return 0;
        }
        int r = invite_option(&s, now, o);
        if (r)
            return r;
    }
    if (!o->node_pk)
        return fail(&s, "missing NODE_PK (the node's public key: 'ippoc mesh id' on that machine)");
    if (!o->id)
        return fail(&s, "missing --id NAME (the node's name in the fleet, e.g. its host name)");
    return 0;
}

int cli_mesh_reason(const char *name)
{
    for (int r = 0; r <= MESH_REASON_MAX; r++)
        if (!strcmp(name, mesh_identity_reason_name(r)))
            return r;
    return -1;
}

static int parse_serial(scan *s, uint64_t *serial)
{
    char *end;
    errno = 0;
    bool hex = !strncmp(s->val, "0x", 2);
    const char *digits = s->val + (hex ? 2 : 0);
    unsigned long long v = strtoull(digits, &end, hex ? 16 : 10);
    if (end == digits || *end || errno || v == 0 || digits[0] == '-' || digits[0] == '+' || digits[0] == ' ')
        return fail(s, "--serial: bad serial '%s' (%s)", s->val,
                    "expected the certificate's serial: 1 to 18446744073709551615, or 0x and 16 hex digits");
    *serial = v;
    return 0;
}

static int revoke_option(scan *s, cli_mesh_revoke *o)
{
    int r;
    char why[256];
    uint8_t pk[MESH_ID_PK_BYTES];
    if ((r = option(s, "--serial")) != 0)
        return r < 0 ? r : parse_serial(s, &o->serial);
    if ((r = option(s, "--key")) != 0) {
        if (r > 0 && mesh_identity_pk_parse(s->val, pk, why, sizeof why))
            return fail(s, "--key: %s", why);
        o->key = s->val;
        return r < 0 ? r : 0;
    }
    if ((r = option(s, "--reason")) != 0) {
        if (r > 0 && (o->reason = cli_mesh_reason(s->val)) < 0)
            return fail(s, "--reason: unknown reason '%s' (%s)", s->val,
                        "expected key-compromise, retired, superseded or unspecified");
        return r < 0 ? r : 0;
    }
    if (flag(s, "--list")) {
        o->list = true;
        return 0;
    }
    return unexpected(s);
}

int cli_mesh_parse_revoke(int argc, char **argv, cli_mesh_revoke *o, char *err, size_t n)
{
    scan s = {.argc = argc, .argv = argv, .err = err, .n = n};
    memset(o, 0, sizeof *o);
    err[0] = '\0';
    while (next(&s)) {
        if (flag(&s, "-h") || flag(&s, "--help")) {
            o->help = true;
            return 0;
        }
        int r = revoke_option(&s, o);
        if (r)
            return r;
    }
    if (o->list && (o->serial || o->key))
        return fail(&s, "--list: lists the revocations; it takes no --serial or --key");
    if (!o->list && !o->serial && !o->key)
        return fail(&s, "missing --serial N or --key NODE_PK (what to revoke)");
    if (o->serial && o->key)
        return fail(&s, "--serial and --key: one revocation at a time, give only one");
    return 0;
}
