/* cmd_mesh.c: `ippoc mesh`, the Telepathy mesh from the command line.
 *
 * Local commands work on the key files of the state dir (no daemon needed):
 * id (the node key), init (the fleet key), invite (sign a certificate into
 * an ippoc1 token), join (accept a token: STATE/mesh-member.token), revoke
 * (STATE/mesh-revoked.bin). join and revoke then ask a running ippocd to
 * reload (SIGHUP to the pid in STATE/ippocd.lock). Read commands GET the
 * daemon's /v1/mesh/status, /v1/mesh/peers and /v1/mesh/wisdom and print
 * them as tables (the JSON with --json). See docs/mesh.md. */
#include "cli/cli.h"

#include "core/core.h"
#include "mesh/identity.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECS_PER_DAY 86400

typedef struct mesh_cmd {
    const cli_global *g;
    char state[CLI_PATH_MAX];
    int64_t now; /* unix seconds */
} mesh_cmd;

void cli_state_dir(const cli_global *g, char *buf, size_t n)
{
    const char *dir = g->state_dir ? g->state_dir : getenv("IPPOC_STATE_DIR");
    struct stat st;
    if (dir && *dir)
        core_sncpy(buf, n, dir);
    else if (stat(".ippoc/ippocd.url", &st) == 0)
        core_sncpy(buf, n, ".ippoc");
    else
        core_sncpy(buf, n, CLI_DEFAULT_STATE_DIR);
}

static int usage_error(const char *sub, const char *why)
{
    fprintf(stderr, "ippoc: mesh %s: %s (see 'ippoc help mesh')\n", sub, why);
    return CLI_EXIT_USAGE;
}

/* The state dir exists (created 0750 like ippocd does), or says why not. */
static int state_ready(const mesh_cmd *m, const char *sub)
{
    int rc = core_mkdir_p(m->state, 0750);
    if (rc)
        fprintf(stderr, "ippoc: mesh %s: state dir %s: %s (choose one with --state-dir DIR)\n", sub, m->state,
                strerror(-rc));
    return rc ? CLI_EXIT_API : CLI_EXIT_OK;
}

static void key_path(const mesh_cmd *m, const char *file, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", m->state, file);
}

static void fmt_day(int64_t s, char *buf, size_t n)
{
    if (s == INT64_MAX)
        snprintf(buf, n, "forever");
    else
        cli_fmt_time(s * 1000, buf, n);
}

/* The fleet key of this state dir, or exit code after saying why. */
static int load_fleet(const mesh_cmd *m, const char *sub, mesh_identity_key *fleet)
{
    char path[CLI_PATH_MAX + 32], err[512];
    key_path(m, MESH_ID_FLEET_KEY_FILE, path, sizeof path);
    int rc = mesh_identity_key_load(path, MESH_KEY_FLEET, fleet, err, sizeof err);
    if (rc == -ENOENT)
        fprintf(stderr, "ippoc: mesh %s: no fleet key %s (run 'ippoc mesh init' on the admin machine, or "
                "--state-dir DIR where the fleet key is)\n", sub, path);
    else if (rc)
        fprintf(stderr, "ippoc: mesh %s: %s\n", sub, err);
    return rc ? CLI_EXIT_API : CLI_EXIT_OK;
}

/* Asks the ippocd running on this state dir to reload (SIGHUP to the pid in
 * ippocd.lock, if that process is an ippocd); says what happened. */
static void ask_reload(const mesh_cmd *m, const char *sub, const char *what)
{
    char path[CLI_PATH_MAX + 32], buf[32], comm[64];
    long pid = 0;
    snprintf(path, sizeof path, "%s/ippocd.lock", m->state);
    if (core_read_file(path, buf, sizeof buf) > 0)
        pid = strtol(buf, NULL, 10);
    snprintf(path, sizeof path, "/proc/%ld/comm", pid);
    bool daemon = pid > 0 && core_read_file(path, comm, sizeof comm) > 0 && !strncmp(comm, "ippocd", 6);
    if (!daemon) {
        fprintf(stderr, "ippoc: mesh %s: no ippocd runs on %s: %s when it starts ([mesh] enabled = yes)\n", sub,
                m->state, what);
        return;
    }
    if (kill((pid_t)pid, SIGHUP)) {
        fprintf(stderr, "ippoc: mesh %s: cannot signal ippocd (pid %ld): %s: restart ippocd or send SIGHUP\n",
                sub, pid, strerror(errno));
        return;
    }
    fprintf(stderr, "ippoc: mesh %s: asked ippocd (pid %ld) to reload: %s now\n", sub, pid, what);
}

/* ---- id ------------------------------------------------------------------------------------ */

static int mesh_id(mesh_cmd *m, int argc, char **argv)
{
    bool json = m->g->json;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return cli_help_command("mesh", stdout), CLI_EXIT_OK;
        else
            return usage_error("id", "takes no argument but --json");
    }
    int rc = state_ready(m, "id");
    if (rc)
        return rc;
    mesh_identity_key k;
    mesh_identity_token t;
    bool created = false;
    char err[512], pk[2 * MESH_ID_PK_BYTES + 1], fleet[2 * MESH_ID_PK_BYTES + 1] = "";
    if (mesh_identity_node_key(m->state, &k, &created, err, sizeof err)) {
        fprintf(stderr, "ippoc: mesh id: %s\n", err);
        return CLI_EXIT_API;
    }
    mesh_identity_pk_hex(k.pk, pk);
    mesh_identity_key_wipe(&k);
    int mrc = mesh_identity_member_load(m->state, &t, err, sizeof err);
    bool joined = mrc == 0;
    if (mrc && mrc != -ENOENT)
        fprintf(stderr, "ippoc: mesh id: %s\n", err);
    if (joined)
        mesh_identity_pk_hex(t.cert.fleet_pk, fleet);
    if (created)
        fprintf(stderr, "ippoc: mesh id: created the node key %s/%s (mode 0600)\n", m->state,
                MESH_ID_NODE_KEY_FILE);
    if (json) {
        json_t *o = json_pack("{s:s, s:o, s:o, s:b}", "pk", pk,
                              "node_id", joined ? json_string(t.cert.node_id) : json_null(),
                              "fleet", joined ? json_string(fleet) : json_null(), "created", created);
        cli_print_json(o);
        json_decref(o);
        return CLI_EXIT_OK;
    }
    printf("public key  %s\n", pk);
    if (joined)
        printf("node id     %s (fleet %s)\n", t.cert.node_id, fleet);
    else
        printf("node id     - (not joined: the fleet's admin runs 'ippoc mesh invite %s --id NAME')\n", pk);
    return CLI_EXIT_OK;
}

/* ---- init ---------------------------------------------------------------------------------- */

static int mesh_init(mesh_cmd *m, int argc, char **argv)
{
    bool force = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--force"))
            force = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return cli_help_command("mesh", stdout), CLI_EXIT_OK;
        else
            return usage_error("init", "takes no argument but --force");
    }
    int rc = state_ready(m, "init");
    if (rc)
        return rc;
    char path[CLI_PATH_MAX + 32], err[512], pk[2 * MESH_ID_PK_BYTES + 1];
    key_path(m, MESH_ID_FLEET_KEY_FILE, path, sizeof path);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!force) {
            fprintf(stderr, "ippoc: mesh init: %s exists: this state dir already holds a fleet key (every "
                    "certificate of the fleet hangs on it); --force replaces it, and then every node must "
                    "join again\n", path);
            return CLI_EXIT_API;
        }
        if (unlink(path)) {
            fprintf(stderr, "ippoc: mesh init: cannot remove %s: %s\n", path, strerror(errno));
            return CLI_EXIT_API;
        }
    }
    mesh_identity_key k;
    if (mesh_identity_key_create(path, MESH_KEY_FLEET, &k, err, sizeof err)) {
        fprintf(stderr, "ippoc: mesh init: %s\n", err);
        return CLI_EXIT_API;
    }
    mesh_identity_pk_hex(k.pk, pk);
    mesh_identity_key_wipe(&k);
    printf("%s\n", pk);
    fprintf(stderr, "ippoc: mesh init: created the fleet key %s (mode 0600). It is the fleet's root of trust: "
            "whoever holds it can admit any node. Keep it on this one admin machine, readable only by you; "
            "back it up offline.\n", path);
    return CLI_EXIT_OK;
}

/* ---- invite -------------------------------------------------------------------------------- */

static int mesh_invite(mesh_cmd *m, int argc, char **argv)
{
    cli_mesh_invite o;
    char err[512];
    if (cli_mesh_parse_invite(argc, argv, m->now, &o, err, sizeof err))
        return usage_error("invite", err);
    if (o.help)
        return cli_help_command("mesh", stdout), CLI_EXIT_OK;
    mesh_identity_cert c = {.roles = o.roles, .not_before = o.from, .not_after = o.from + o.days * SECS_PER_DAY};
    char why[512];
    if (mesh_identity_pk_parse(o.node_pk, c.node_pk, why, sizeof why)) {
        snprintf(err, sizeof err, "NODE_PK '%.80s': %s", o.node_pk, why);
        return usage_error("invite", err);
    }
    core_sncpy(c.node_id, sizeof c.node_id, o.id);
    mesh_identity_key fleet;
    int rc = load_fleet(m, "invite", &fleet);
    if (rc)
        return rc;
    rc = mesh_identity_cert_sign(&c, &fleet, err, sizeof err);
    mesh_identity_key_wipe(&fleet);
    mesh_identity_token t = {.cert = c, .nseeds = o.nseeds};
    for (int i = 0; i < o.nseeds; i++)
        core_sncpy(t.seeds[i], sizeof t.seeds[i], o.seeds[i]);
    char tok[MESH_ID_TOKEN_MAX], roles[64], from[64], to[64];
    if (rc || mesh_identity_token_encode(&t, tok, sizeof tok, err, sizeof err) < 0) {
        fprintf(stderr, "ippoc: mesh invite: %s\n", err);
        return CLI_EXIT_API;
    }
    printf("%s\n", tok);
    mesh_identity_roles_format(c.roles, roles, sizeof roles);
    fmt_day(c.not_before, from, sizeof from);
    fmt_day(c.not_after, to, sizeof to);
    fprintf(stderr, "ippoc: mesh invite: certificate for %s, serial %" PRIu64 " (0x%016" PRIx64 "), roles %s, valid %s to %s%s; "
            "on that machine: ippoc mesh join TOKEN\n", c.node_id, c.serial, c.serial, roles, from, to,
            o.nseeds ? "" : " (no --seed: the node needs SEED arguments to join or [mesh] seeds)");
    return CLI_EXIT_OK;
}

/* ---- join ---------------------------------------------------------------------------------- */

/* Adds the SEED arguments to t (duplicates skipped); exit code. */
static int add_seeds(mesh_identity_token *t, int n, char **seeds)
{
    char err[512];
    for (int i = 0; i < n; i++) {
        bool dup = false;
        if (mesh_identity_seed_check(seeds[i], err, sizeof err))
            return usage_error("join", err);
        for (int k = 0; k < t->nseeds; k++)
            dup = dup || !strcmp(t->seeds[k], seeds[i]);
        if (dup)
            continue;
        if (t->nseeds >= MESH_ID_SEEDS_MAX) {
            snprintf(err, sizeof err, "SEED '%s': more than %d seeds with the token's", seeds[i], MESH_ID_SEEDS_MAX);
            return usage_error("join", err);
        }
        core_sncpy(t->seeds[t->nseeds++], sizeof t->seeds[0], seeds[i]);
    }
    return CLI_EXIT_OK;
}

/* The token accepted for this node's key into *t; exit code after saying why. */
static int accept_token(mesh_cmd *m, const char *text, mesh_identity_token *t)
{
    char err[512];
    mesh_identity_key k;
    if (mesh_identity_token_decode(text, t, err, sizeof err)) {
        fprintf(stderr, "ippoc: mesh join: TOKEN: %s\n", err);
        return CLI_EXIT_USAGE;
    }
    if (mesh_identity_node_key(m->state, &k, NULL, err, sizeof err)) {
        fprintf(stderr, "ippoc: mesh join: %s\n", err);
        return CLI_EXIT_API;
    }
    int rc = mesh_identity_token_accept(t, &k, m->now, MESH_ID_SKEW_S, err, sizeof err);
    mesh_identity_key_wipe(&k);
    if (rc) {
        fprintf(stderr, "ippoc: mesh join: TOKEN: %s\n", err);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

static int mesh_join(mesh_cmd *m, int argc, char **argv)
{
    int first = 1;
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
        return cli_help_command("mesh", stdout), CLI_EXIT_OK;
    if (argc > 1 && !strcmp(argv[1], "--"))
        first = 2;
    if (argc <= first)
        return usage_error("join", "missing TOKEN (the ippoc1... text 'ippoc mesh invite' printed)");
    for (int i = first + 1; i < argc; i++)
        if (argv[i][0] == '-' && first == 1)
            return usage_error("join", "takes TOKEN and SEED addresses, no option");
    int rc = state_ready(m, "join");
    mesh_identity_token t;
    char err[512], fleet[2 * MESH_ID_PK_BYTES + 1], to[64];
    if (rc || (rc = accept_token(m, argv[first], &t)) || (rc = add_seeds(&t, argc - first - 1, argv + first + 1)))
        return rc;
    if (mesh_identity_member_save(m->state, &t, err, sizeof err)) {
        fprintf(stderr, "ippoc: mesh join: %s\n", err);
        return CLI_EXIT_API;
    }
    mesh_identity_pk_hex(t.cert.fleet_pk, fleet);
    fmt_day(t.cert.not_after, to, sizeof to);
    printf("joined fleet %s as %s (serial %" PRIu64 ", valid until %s), %d seed%s\n", fleet, t.cert.node_id,
           t.cert.serial, to, t.nseeds, t.nseeds == 1 ? "" : "s");
    if (!t.nseeds)
        fprintf(stderr, "ippoc: mesh join: no seed address: set [mesh] seeds = HOST:PORT, or join again "
                "with SEED arguments\n");
    ask_reload(m, "join", "the mesh starts with the token");
    return CLI_EXIT_OK;
}

/* ---- revoke -------------------------------------------------------------------------------- */

/* The fleet public key of this state dir: its fleet key, else its membership. */
static int fleet_pk_here(const mesh_cmd *m, uint8_t pk[MESH_ID_PK_BYTES])
{
    mesh_identity_key k;
    mesh_identity_token t;
    char path[CLI_PATH_MAX + 32], err[512];
    key_path(m, MESH_ID_FLEET_KEY_FILE, path, sizeof path);
    if (mesh_identity_key_load(path, MESH_KEY_FLEET, &k, err, sizeof err) == 0) {
        memcpy(pk, k.pk, MESH_ID_PK_BYTES);
        mesh_identity_key_wipe(&k);
        return CLI_EXIT_OK;
    }
    if (mesh_identity_member_load(m->state, &t, err, sizeof err) == 0) {
        memcpy(pk, t.cert.fleet_pk, MESH_ID_PK_BYTES);
        return CLI_EXIT_OK;
    }
    fprintf(stderr, "ippoc: mesh revoke: %s holds no fleet key and has not joined a fleet\n", m->state);
    return CLI_EXIT_API;
}

static void print_revlist(const mesh_identity_revlist *rl, bool json)
{
    json_t *arr = json_array();
    cli_table tb;
    cli_table_init(&tb, 5, (const char *const[]){"KIND", "TARGET", "REASON", "REVOKED", "UNTIL"});
    for (size_t i = 0; i < rl->n; i++) {
        const mesh_identity_revocation *r = &rl->recs[i];
        char target[2 * MESH_ID_PK_BYTES + 1], when[64], until[64];
        if (r->kind == MESH_REVOKE_SERIAL)
            snprintf(target, sizeof target, "%" PRIu64, r->serial);
        else
            mesh_identity_pk_hex(r->node_pk, target);
        const char *kind = r->kind == MESH_REVOKE_SERIAL ? "serial" : "key";
        fmt_day(r->time, when, sizeof when);
        fmt_day(r->until, until, sizeof until);
        cli_table_row(&tb, (const char *const[]){kind, target, mesh_identity_reason_name(r->reason), when, until});
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:I}", "kind", kind, "target", target, "reason",
                                             mesh_identity_reason_name(r->reason), "time", (json_int_t)r->time,
                                             "until", (json_int_t)r->until));
    }
    if (json) {
        json_t *o = json_pack("{s:o}", "revoked", arr);
        cli_print_json(o);
        json_decref(o);
    } else {
        json_decref(arr);
        if (rl->n)
            cli_table_print(&tb, stdout);
        else
            printf("no revocations\n");
    }
    cli_table_free(&tb);
}

/* Signs the revocation o asks for and adds it to rl; exit code. */
static int add_revocation(const mesh_cmd *m, const cli_mesh_revoke *o, mesh_identity_revlist *rl)
{
    mesh_identity_key fleet;
    char err[512];
    int rc = load_fleet(m, "revoke", &fleet);
    if (rc)
        return rc;
    mesh_identity_revocation r = {.kind = o->key ? MESH_REVOKE_KEY : MESH_REVOKE_SERIAL, .reason = o->reason,
                                  .serial = o->serial, .time = m->now,
                                  /* a key for good; a serial until any certificate invite signs has expired */
                                  .until = o->key ? INT64_MAX : m->now + (int64_t)(CLI_MESH_DAYS_MAX + 1) * SECS_PER_DAY};
    if (o->key)
        mesh_identity_pk_parse(o->key, r.node_pk, err, sizeof err);
    rc = mesh_identity_revocation_sign(&r, &fleet, err, sizeof err);
    mesh_identity_key_wipe(&fleet);
    if (rc == 0 && (rc = mesh_identity_revlist_add(rl, &r, m->now, err, sizeof err)) >= 0 &&
        mesh_identity_revlist_save(rl, m->state, err, sizeof err) == 0) {
        char target[32];
        snprintf(target, sizeof target, "%" PRIu64, o->serial);
        printf("revoked %s %s (%s): %s/%s holds %zu revocation%s\n", o->key ? "key" : "serial",
               o->key ? o->key : target, mesh_identity_reason_name(r.reason), m->state, MESH_ID_REVLIST_FILE,
               rl->n, rl->n == 1 ? "" : "s");
        return CLI_EXIT_OK;
    }
    fprintf(stderr, "ippoc: mesh revoke: %s\n", err);
    return CLI_EXIT_API;
}

static int mesh_revoke(mesh_cmd *m, int argc, char **argv)
{
    cli_mesh_revoke o;
    mesh_identity_revlist rl;
    uint8_t fpk[MESH_ID_PK_BYTES];
    char err[512];
    bool json = m->g->json;
    if (cli_mesh_parse_revoke(argc, argv, &o, err, sizeof err))
        return usage_error("revoke", err);
    if (o.help)
        return cli_help_command("mesh", stdout), CLI_EXIT_OK;
    int rc = fleet_pk_here(m, fpk);
    if (rc)
        return rc;
    mesh_identity_revlist_init(&rl, fpk, 0);
    if (mesh_identity_revlist_load(&rl, m->state, m->now, err, sizeof err)) {
        fprintf(stderr, "ippoc: mesh revoke: %s\n", err);
        mesh_identity_revlist_free(&rl);
        return CLI_EXIT_API;
    }
    if (o.list) {
        print_revlist(&rl, json);
    } else if ((rc = add_revocation(m, &o, &rl)) == CLI_EXIT_OK) {
        ask_reload(m, "revoke", "the cell gossips the list");
    }
    mesh_identity_revlist_free(&rl);
    return rc;
}

/* ---- status, peers, wisdom (the daemon) -------------------------------------------------- */

/* GETs path; a 404 means an ippocd without the mesh. Exit code; *ans on success. */
static int mesh_get(const cli_ctx *ctx, const char *sub, const char *path, json_t **ans)
{
    char err[1024];
    long status = 0;
    int rc = cli_http_call(ctx, path, NULL, ans, &status, err, sizeof err);
    if (rc == CLI_EXIT_OK)
        return rc;
    if (status == 404)
        fprintf(stderr, "ippoc: mesh %s: this ippocd has no mesh yet (GET %s: 404); it needs a newer ippocd\n",
                sub, path);
    else
        fprintf(stderr, "ippoc: mesh %s: %s\n", sub, err);
    return rc;
}

static void kv(const char *label, const char *value)
{
    printf("%-12s %s\n", label, value);
}

static void join_strings(const json_t *arr, char *buf, size_t n)
{
    size_t at = 0, i;
    const json_t *v;
    buf[0] = '\0';
    json_array_foreach(arr, i, v)
    {
        if (json_is_string(v) && at < n)
            at += (size_t)snprintf(buf + at, n - at, "%s%s", at ? "," : "", json_string_value(v));
    }
    if (!buf[0])
        snprintf(buf, n, "-");
}

static double num(const json_t *o, const char *obj, const char *key)
{
    double v = cli_jnum(obj ? json_object_get(o, obj) : o, key, 0);
    return isfinite(v) ? v : 0;
}

static void print_traffic(const json_t *s)
{
    char in[32], out[32], buf[160];
    cli_fmt_bytes(num(s, NULL, "bytes_in"), in, sizeof in);
    cli_fmt_bytes(num(s, NULL, "bytes_out"), out, sizeof out);
    snprintf(buf, sizeof buf, "in %s (%.0f packets), out %s (%.0f packets)", in, num(s, NULL, "packets_in"), out,
             num(s, NULL, "packets_out"));
    kv("traffic", buf);
}

/* -- mdns: "seeds", or mDNS's state: publishing, cells joined through it, or why it is off */
static void print_discovery(const json_t *d)
{
    char buf[512];
    if (!d || strcmp(cli_jstr(d, "mode", "seeds"), "mdns")) {
        kv("discovery", "seeds");
        return;
    }
    if (!cli_jbool(d, "active", false))
        snprintf(buf, sizeof buf, "mdns off: %s (the seeds only)", cli_jstr(d, "reason", "?"));
    else
        snprintf(buf, sizeof buf, "mdns, fleet %s, %s, %.0f joined through it, %.0f of other fleets seen",
                 cli_jstr(d, "fleet_fp", "?"), cli_jbool(d, "published", false) ? "published" : "not yet published",
                 num(d, NULL, "joins"), num(d, NULL, "foreign"));
    kv("discovery", buf);
}

static void print_status(const json_t *s)
{
    char buf[512];
    bool enabled = cli_jbool(s, "enabled", false), joined = cli_jbool(s, "joined", false);
    kv("mesh", !enabled ? "off ([mesh] enabled = no)"
               : joined ? "on, joined"
                        : "on, not joined (ippoc mesh join TOKEN)");
    kv("node id", cli_jstr(s, "node_id", "-"));
    kv("public key", cli_jstr(s, "pk", "-"));
    if (!enabled || !joined)
        return;
    kv("fleet", cli_jstr(s, "fleet", "-"));
    kv("listen", cli_jstr(s, "listen", "-"));
    print_discovery(json_object_get(s, "discovery")); /* -- mdns */
    join_strings(json_object_get(s, "roles"), buf, sizeof buf);
    kv("roles", buf);
    snprintf(buf, sizeof buf, "%.0f alive, %.0f suspect, %.0f dead, %.0f left", num(s, "members", "alive"),
             num(s, "members", "suspect"), num(s, "members", "dead"), num(s, "members", "left"));
    kv("members", buf);
    snprintf(buf, sizeof buf, "%.0f (0: healthy; higher: this cell probes slower)", num(s, NULL, "awareness"));
    kv("awareness", buf);
    snprintf(buf, sizeof buf, "%.0f", num(s, NULL, "incarnation"));
    kv("incarnation", buf);
    print_traffic(s);
    snprintf(buf, sizeof buf, "cert %.0f, revoked %.0f, forged %.0f, replay %.0f, malformed %.0f",
             num(s, "rejected", "cert"), num(s, "rejected", "revoked"), num(s, "rejected", "forged"),
             num(s, "rejected", "replay"), num(s, "rejected", "malformed"));
    kv("rejected", buf);
    snprintf(buf, sizeof buf, "%.0f records, %.0f peers ignored", num(s, "wisdom", "records"),
             num(s, "wisdom", "ignored_peers"));
    kv("wisdom", buf);
}

static void caps_text(const json_t *c, char *buf, size_t n)
{
    char mem[32];
    cli_fmt_bytes(cli_jnum(c, "memory_mb", 0) * 1048576.0, mem, sizeof mem);
    snprintf(buf, n, "%.0f cpu, %s, %.0f GB disk%s%s", cli_jnum(c, "cpus", 0), mem, cli_jnum(c, "disk_gb", 0),
             cli_jbool(c, "gpu", false) ? ", gpu" : "", cli_jbool(c, "llm", false) ? ", llm" : "");
}

static void print_peers(const json_t *ans)
{
    const json_t *peers = json_object_get(ans, "peers"), *p;
    size_t i;
    if (!json_array_size(peers)) {
        printf("no peers\n");
        return;
    }
    cli_table tb;
    cli_table_init(&tb, 8, (const char *const[]){"NODE", "ADDR", "STATE", "INC", "ROLES", "CAPS", "TRUST", "SESSION"});
    tb.right[3] = true;
    json_array_foreach(peers, i, p)
    {
        char inc[32], roles[128], caps[128], trust[48];
        snprintf(inc, sizeof inc, "%.0f", num(p, NULL, "incarnation"));
        join_strings(json_object_get(p, "roles"), roles, sizeof roles);
        caps_text(json_object_get(p, "caps"), caps, sizeof caps);
        snprintf(trust, sizeof trust, "%.2f%s", num(p, NULL, "trust"), cli_jbool(p, "ignored", false) ? " ignored" : "");
        cli_table_row(&tb, (const char *const[]){cli_jstr(p, "node_id", "?"), cli_jstr(p, "addr", "-"),
                                                 cli_jstr(p, "state", "?"), inc, roles, caps, trust,
                                                 cli_jbool(p, "session", false) ? "yes" : "no"});
    }
    cli_table_print(&tb, stdout);
    cli_table_free(&tb);
}

static void print_wisdom(const json_t *ans)
{
    const json_t *recs = json_object_get(ans, "records"), *r;
    size_t i;
    if (!json_array_size(recs)) {
        printf("no wisdom records\n");
        return;
    }
    cli_table tb;
    cli_table_init(&tb, 7, (const char *const[]){"ID", "KIND", "FROM", "WORKED", "TRUST", "RECEIVED", "SUMMARY"});
    tb.right[3] = tb.right[4] = true;
    json_array_foreach(recs, i, r)
    {
        char id[16], kn[48], trust[32], when[64], summary[256];
        snprintf(id, sizeof id, "%.12s", cli_jstr(r, "id", "?"));
        snprintf(kn, sizeof kn, "%.0f/%.0f", num(r, NULL, "k"), num(r, NULL, "n"));
        snprintf(trust, sizeof trust, "%.2f", num(r, NULL, "trust"));
        cli_fmt_time((int64_t)num(r, NULL, "received") * 1000, when, sizeof when);
        cli_fmt_cut(cli_jstr(r, "summary", ""), 80, summary, sizeof summary);
        cli_table_row(&tb, (const char *const[]){id, cli_jstr(r, "kind", "?"), cli_jstr(r, "from", "?"), kn, trust,
                                                 when, summary});
    }
    cli_table_print(&tb, stdout);
    cli_table_free(&tb);
}

static int mesh_read(mesh_cmd *m, int argc, char **argv)
{
    const char *sub = argv[0], *limit = NULL;
    bool wisdom = !strcmp(sub, "wisdom");
    cli_ctx ctx;
    cli_args a;
    long lim = 0;
    cli_args_init(&a, "mesh", argc, argv);
    int rc = cli_resolve(m->g, &ctx);
    if (rc)
        return rc;
    rc = cli_args_opt(&a, &ctx, wisdom ? "--limit" : NULL, &limit, NULL, NULL);
    if (rc < 0)
        return cli_args_help(&a);
    if (rc || (limit && (rc = cli_check_int("--limit", limit, 1, 10000, &lim))))
        return rc;
    cli_url u;
    cli_url_init(&u, wisdom ? "/v1/mesh/wisdom" : !strcmp(sub, "peers") ? "/v1/mesh/peers" : "/v1/mesh/status");
    if (limit)
        cli_url_param(&u, "limit", limit);
    json_t *ans;
    if ((rc = mesh_get(&ctx, sub, u.buf, &ans)))
        return rc;
    if (ctx.json)
        cli_print_json(ans);
    else if (wisdom)
        print_wisdom(ans);
    else if (!strcmp(sub, "peers"))
        print_peers(ans);
    else
        print_status(ans);
    json_decref(ans);
    return CLI_EXIT_OK;
}

int cmd_mesh(const cli_global *g, int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(mesh_cmd *m, int argc, char **argv);
    } subs[] = {
        {"id", mesh_id},         {"init", mesh_init},     {"invite", mesh_invite}, {"join", mesh_join},
        {"revoke", mesh_revoke}, {"status", mesh_read},   {"peers", mesh_read},    {"wisdom", mesh_read},
    };
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        cli_help_command("mesh", argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    mesh_cmd m = {.g = g, .now = core_now_ms() / 1000};
    cli_state_dir(g, m.state, sizeof m.state);
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (!strcmp(argv[1], subs[i].name))
            return subs[i].fn(&m, argc - 1, argv + 1);
    fprintf(stderr, "ippoc: mesh: unknown subcommand '%s' (id, init, invite, join, revoke, status, peers, wisdom)\n",
            argv[1]);
    return CLI_EXIT_USAGE;
}
