/* cell_config.c: the [mesh] section: enabled, listen, seeds, roles and the
 * membership timings, each bad value answered with FILE:LINE and the reason. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/cell_int.h" /* -- mdns: cell_mdns_parse_discover */
#include "mesh/identity.h"
#include "mesh/mesh.h"
#include "mesh/swim.h"

/* "host:port" with host an IP literal peers can reach (not 0.0.0.0 / ::). */
static int check_listen(const core_kv *kv, char *out, size_t n, char *err, size_t errlen)
{
    char host[256];
    int port;
    if (strlen(kv->value) > MESH_CFG_ADDR_MAX || core_split_hostport(kv->value, host, sizeof host, &port) ||
        port < 0 || port > 65535)
        return core_kv_error(err, errlen, kv, "[mesh] listen: '%.80s' is not HOST:PORT or [V6]:PORT", kv->value);
    unsigned char a[16];
    bool v4 = inet_pton(AF_INET, host, a) == 1, v6 = !v4 && inet_pton(AF_INET6, host, a) == 1;
    if (!v4 && !v6)
        return core_kv_error(err, errlen, kv, "[mesh] listen: '%.80s' is not an IP address", host);
    static const unsigned char zero[16];
    if (!memcmp(a, zero, v4 ? 4 : 16))
        return core_kv_error(err, errlen, kv,
                             "[mesh] listen: %s is a wildcard; name the address the other cells reach", host);
    core_sncpy(out, n, kv->value);
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = 0;
    return s;
}

static int parse_seeds(const core_kv *kv, mesh_config *c, char *err, size_t errlen)
{
    char buf[2048], e[256];
    if (strlen(kv->value) >= sizeof buf)
        return core_kv_error(err, errlen, kv, "[mesh] seeds: longer than %zu bytes", sizeof buf - 1);
    core_sncpy(buf, sizeof buf, kv->value);
    c->nseeds = 0;
    char *rest = buf;
    for (char *t = strsep(&rest, ","); t; t = strsep(&rest, ",")) {
        t = trim(t);
        if (!*t)
            return core_kv_error(err, errlen, kv, "[mesh] seeds: an empty entry");
        if (strlen(t) > MESH_CFG_ADDR_MAX || mesh_identity_seed_check(t, e, sizeof e))
            return core_kv_error(err, errlen, kv, "[mesh] seeds: '%.80s': %s", t,
                                 strlen(t) > MESH_CFG_ADDR_MAX ? "too long" : e);
        if (c->nseeds == MESH_CFG_SEEDS_MAX)
            return core_kv_error(err, errlen, kv, "[mesh] seeds: more than %d", MESH_CFG_SEEDS_MAX);
        core_sncpy(c->seeds[c->nseeds++], sizeof c->seeds[0], t);
    }
    return 0;
}

static int parse_roles(const core_kv *kv, uint32_t *roles, char *err, size_t errlen)
{
    char buf[256], e[256];
    size_t j = 0;
    for (const char *s = kv->value; *s && j + 1 < sizeof buf; s++)
        if (*s != ' ' && *s != '\t')
            buf[j++] = *s;
    buf[j] = 0;
    if (!buf[0])
        return core_kv_error(err, errlen, kv, "[mesh] roles: empty (reasoning, retrieval, tool, relay)");
    if (mesh_identity_roles_parse(buf, roles, e, sizeof e))
        return core_kv_error(err, errlen, kv, "[mesh] roles: %s", e);
    return 0;
}

static int parse_ms(const core_kv *kv, uint32_t lo, uint32_t hi, uint32_t *out, char *err, size_t errlen)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(kv->value, &end, 10);
    if (!kv->value[0] || kv->value[0] == '-' || kv->value[0] == '+' || *end || errno || v < lo || v > hi)
        return core_kv_error(err, errlen, kv, "[mesh] %s: '%.40s' is not a whole number in %u..%u", kv->key,
                             kv->value, lo, hi);
    *out = (uint32_t)v;
    return 0;
}

static int one_key(mesh_config *c, const core_kv *kv, char *err, size_t errlen)
{
    const char *k = kv->key;
    if (!strcmp(k, "enabled")) {
        if (core_parse_bool(kv->value, &c->enabled))
            return core_kv_error(err, errlen, kv, "[mesh] enabled: '%.40s' is not yes or no", kv->value);
        return 0;
    }
    if (!strcmp(k, "listen"))
        return check_listen(kv, c->listen, sizeof c->listen, err, errlen);
    if (!strcmp(k, "seeds"))
        return parse_seeds(kv, c, err, errlen);
    if (!strcmp(k, "roles"))
        return parse_roles(kv, &c->roles, err, errlen);
    if (!strcmp(k, "probe_interval_ms"))
        return parse_ms(kv, 50, 600000, &c->probe_interval_ms, err, errlen);
    if (!strcmp(k, "probe_timeout_ms"))
        return parse_ms(kv, 10, 600000, &c->probe_timeout_ms, err, errlen);
    if (!strcmp(k, "gossip_interval_ms"))
        return parse_ms(kv, 10, 600000, &c->gossip_interval_ms, err, errlen);
    if (!strcmp(k, "suspicion_mult"))
        return parse_ms(kv, 1, 100, &c->suspicion_mult, err, errlen);
    if (!strcmp(k, "publish_interval_ms")) /* part fixpass */
        return parse_ms(kv, 200, 3600000, &c->publish_interval_ms, err, errlen);
    if (!strcmp(k, "discover")) /* -- mdns */
        return cell_mdns_parse_discover(kv, &c->discover, err, errlen);
    if (!strcmp(k, "pushpull_interval_ms")) /* -- meshnet */
        return parse_ms(kv, 100, 3600000, &c->pushpull_interval_ms, err, errlen);
    return core_kv_error(err, errlen, kv,
                         "[mesh] unknown key '%s' (enabled, listen, seeds, roles, probe_interval_ms, "
                         "probe_timeout_ms, gossip_interval_ms, suspicion_mult, publish_interval_ms, "
                         "pushpull_interval_ms, discover)",
                         k);
}

int mesh_config_parse(const core_config *cfg, mesh_config *out, char *err, size_t errlen)
{
    struct mesh_swim_config d;
    mesh_swim_config_default(&d);
    memset(out, 0, sizeof *out);
    core_sncpy(out->listen, sizeof out->listen, "127.0.0.1:7947");
    out->probe_interval_ms = d.probe_interval_ms;
    out->probe_timeout_ms = d.probe_timeout_ms;
    out->gossip_interval_ms = d.gossip_interval_ms;
    out->suspicion_mult = d.suspicion_mult;
    out->publish_interval_ms = 60000; /* as CELL_PUBLISH_EVERY_MS */
    out->pushpull_interval_ms = d.pushpull_interval_ms;
    const core_kv *timeout_kv = NULL, *interval_kv = NULL;
    for (int i = 0; i < cfg->nraw; i++) {
        const core_kv *kv = &cfg->raw[i];
        if (strcmp(kv->section, "mesh"))
            continue;
        int rc = one_key(out, kv, err, errlen);
        if (rc)
            return rc;
        if (!strcmp(kv->key, "probe_timeout_ms"))
            timeout_kv = kv;
        if (!strcmp(kv->key, "probe_interval_ms"))
            interval_kv = kv;
    }
    if (out->probe_timeout_ms >= out->probe_interval_ms) {
        const core_kv *kv = timeout_kv ? timeout_kv : interval_kv;
        return core_kv_error(err, errlen, kv, "[mesh] probe_timeout_ms (%u) must be under probe_interval_ms (%u)",
                             out->probe_timeout_ms, out->probe_interval_ms);
    }
    return 0;
}

int mesh_config_check(const core_config *cfg, char *err, size_t errlen)
{
    mesh_config c;
    return mesh_config_parse(cfg, &c, err, errlen);
}
