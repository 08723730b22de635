/* cell_mdns.c: optional discovery through Avahi ([mesh] discover = mdns):
 * publishes the cell's UDP port as the DNS-SD service _ippoc-mesh._udp with a
 * TXT record holding only the fleet key's short fingerprint, browses for the
 * same type, and hands every found service of the same fleet to the cell's
 * thread as an extra join seed (the secure session still checks the
 * certificate: discovery grants nothing).
 *
 * libavahi-client is loaded with dlopen on first use (never unloaded), so
 * ippocd runs without it; without it or without a reachable avahi-daemon the
 * cell logs one line and uses its seeds only. Avahi's callbacks run on its
 * own thread (avahi_threaded_poll) and take only the discovery's mutex; the
 * cell's thread takes the found addresses in cell_mdns_tick. */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-client/publish.h>
#include <avahi-common/address.h>
#include <avahi-common/alternative.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/strlst.h>
#include <avahi-common/thread-watch.h>

#include "mesh/cell_int.h"

#define MDNS_FOUND_MAX 32
#define MDNS_RESOLVING_MAX 64 /* resolvers at once: a flood of services waits for the next browse */

/* ---- the pure part: the fingerprint, the TXT record, the config value ---- */

void cell_mdns_fingerprint(const uint8_t fleet_pk[MESH_ID_PK_BYTES], char out[CELL_MDNS_FP_HEX + 1])
{
    uint8_t h[crypto_generichash_BYTES];
    crypto_generichash(h, sizeof h, fleet_pk, MESH_ID_PK_BYTES, NULL, 0);
    sodium_bin2hex(out, CELL_MDNS_FP_HEX + 1, h, CELL_MDNS_FP_HEX / 2);
}

size_t cell_mdns_txt(const char *fp, char *out, size_t n)
{
    return (size_t)snprintf(out, n, "%s%s", CELL_MDNS_TXT_KEY, fp);
}

bool cell_mdns_txt_matches(const uint8_t *txt, size_t len, const char *fp)
{
    size_t k = strlen(CELL_MDNS_TXT_KEY), f = strlen(fp);
    return txt && len == k + f && !memcmp(txt, CELL_MDNS_TXT_KEY, k) && !memcmp(txt + k, fp, f);
}

int cell_mdns_parse_discover(const core_kv *kv, int *out, char *err, size_t errlen)
{
    if (!strcmp(kv->value, "seeds"))
        *out = MESH_DISCOVER_SEEDS;
    else if (!strcmp(kv->value, "mdns"))
        *out = MESH_DISCOVER_MDNS;
    else
        return core_kv_error(err, errlen, kv, "[mesh] discover: '%.40s' is not seeds or mdns", kv->value);
    return 0;
}

/* ---- libavahi-client, loaded at run time ---------------------------------- */

typedef void (*ep_var)(void);
static struct {
    AvahiThreadedPoll *(*threaded_poll_new)(void);
    const AvahiPoll *(*threaded_poll_get)(AvahiThreadedPoll *);
    int (*threaded_poll_start)(AvahiThreadedPoll *);
    int (*threaded_poll_stop)(AvahiThreadedPoll *);
    void (*threaded_poll_free)(AvahiThreadedPoll *);
    const char *(*strerror)(int);
    char *(*alternative_service_name)(const char *);
    void (*free)(void *);
    char *(*address_snprint)(char *, size_t, const AvahiAddress *);
    AvahiStringList *(*string_list_get_next)(AvahiStringList *);
    uint8_t *(*string_list_get_text)(AvahiStringList *);
    size_t (*string_list_get_size)(AvahiStringList *);
    AvahiClient *(*client_new)(const AvahiPoll *, AvahiClientFlags, AvahiClientCallback, void *, int *);
    void (*client_free)(AvahiClient *);
    int (*client_errno)(AvahiClient *);
    AvahiEntryGroup *(*entry_group_new)(AvahiClient *, AvahiEntryGroupCallback, void *);
    int (*entry_group_add_service)(AvahiEntryGroup *, AvahiIfIndex, AvahiProtocol, AvahiPublishFlags, const char *,
                                   const char *, const char *, const char *, uint16_t, ...);
    int (*entry_group_commit)(AvahiEntryGroup *);
    int (*entry_group_reset)(AvahiEntryGroup *);
    AvahiServiceBrowser *(*service_browser_new)(AvahiClient *, AvahiIfIndex, AvahiProtocol, const char *,
                                                const char *, AvahiLookupFlags, AvahiServiceBrowserCallback,
                                                void *);
    AvahiServiceResolver *(*service_resolver_new)(AvahiClient *, AvahiIfIndex, AvahiProtocol, const char *,
                                                  const char *, const char *, AvahiProtocol, AvahiLookupFlags,
                                                  AvahiServiceResolverCallback, void *);
    int (*service_resolver_free)(AvahiServiceResolver *);
} av;

#define AV_SYM(lib, f) {lib, "avahi_" #f, offsetof(__typeof__(av), f)}
static const struct {
    int lib; /* 0 libavahi-common, 1 libavahi-client */
    const char *name;
    size_t off;
} av_syms[] = {
    AV_SYM(0, threaded_poll_new),     AV_SYM(0, threaded_poll_get),        AV_SYM(0, threaded_poll_start),
    AV_SYM(0, threaded_poll_stop),    AV_SYM(0, threaded_poll_free),       AV_SYM(0, strerror),
    AV_SYM(0, alternative_service_name), AV_SYM(0, free),                AV_SYM(0, address_snprint),
    AV_SYM(0, string_list_get_next),  AV_SYM(0, string_list_get_text),     AV_SYM(0, string_list_get_size),
    AV_SYM(1, client_new),            AV_SYM(1, client_free),              AV_SYM(1, client_errno),
    AV_SYM(1, entry_group_new),       AV_SYM(1, entry_group_add_service),  AV_SYM(1, entry_group_commit),
    AV_SYM(1, entry_group_reset),     AV_SYM(1, service_browser_new),      AV_SYM(1, service_resolver_new),
    AV_SYM(1, service_resolver_free),
};

static pthread_once_t av_once = PTHREAD_ONCE_INIT;
static char av_error[256]; /* why it did not load; "" when loaded */

static void av_load(void)
{
    static const char *names[2] = {"libavahi-common.so.3", "libavahi-client.so.3"};
    void *h[2];
    for (int i = 0; i < 2; i++) {
        /* never closed: libdbus keeps global state for the process's life */
        h[i] = dlopen(names[i], RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        if (!h[i]) {
            snprintf(av_error, sizeof av_error, "cannot load %s (install libavahi-client3): %s", names[i],
                     dlerror());
            return;
        }
    }
    for (size_t i = 0; i < sizeof av_syms / sizeof av_syms[0]; i++) {
        void *f = dlsym(h[av_syms[i].lib], av_syms[i].name);
        if (!f) {
            snprintf(av_error, sizeof av_error, "%s has no %s", names[av_syms[i].lib], av_syms[i].name);
            memset(&av, 0, sizeof av);
            return;
        }
        memcpy((char *)&av + av_syms[i].off, &f, sizeof f); /* object to function pointer */
    }
}

/* ---- the discovery's state ------------------------------------------------- */

struct cell_mdns {
    pthread_mutex_t mu; /* found, nfound, dropped (avahi's thread and the cell's) */
    char found[MDNS_FOUND_MAX][MESH_SESSION_ADDR_MAX + 1];
    int nfound;
    uint64_t dropped, foreign; /* found but not kept: too many at once; of another fleet */
    bool published;
    uint64_t joins; /* the cell's thread, under the cell's mu */
    /* read-only after the start */
    bool active;    /* false: Avahi is not there (why says why) */
    char why[256];
    int wake_fd;                        /* the cell thread's wake pipe */
    char listen[MESH_CFG_ADDR_MAX + 1]; /* our own address: never a seed */
    uint16_t port;
    int family; /* AF_INET or AF_INET6: the only results asked for */
    AvahiIfIndex iface;
    char fp[CELL_MDNS_FP_HEX + 1];
    /* avahi's thread only (and the start, before that thread runs) */
    char name[64];
    AvahiThreadedPoll *poll;
    AvahiClient *client;
    AvahiEntryGroup *group;
    AvahiServiceBrowser *browser;
    int resolving;
};

static AvahiProtocol mdns_proto(const struct cell_mdns *d)
{
    return d->family == AF_INET6 ? AVAHI_PROTO_INET6 : AVAHI_PROTO_INET;
}

static void mdns_found(struct cell_mdns *d, const char *addr)
{
    if (!strcmp(addr, d->listen))
        return;
    pthread_mutex_lock(&d->mu);
    bool have = false;
    for (int i = 0; i < d->nfound && !have; i++)
        have = !strcmp(d->found[i], addr);
    if (!have && d->nfound < MDNS_FOUND_MAX)
        core_sncpy(d->found[d->nfound++], sizeof d->found[0], addr);
    else if (!have)
        d->dropped++;
    pthread_mutex_unlock(&d->mu);
    ssize_t w = write(d->wake_fd, "m", 1);
    (void)w;
}

static void on_resolve(AvahiServiceResolver *r, AvahiIfIndex iface, AvahiProtocol proto, AvahiResolverEvent ev,
                       const char *name, const char *type, const char *domain, const char *host,
                       const AvahiAddress *a, uint16_t port, AvahiStringList *txt, AvahiLookupResultFlags flags,
                       void *ud)
{
    struct cell_mdns *d = ud;
    (void)iface, (void)proto, (void)type, (void)domain, (void)host, (void)flags;
    if (ev == AVAHI_RESOLVER_FOUND) {
        bool ours = false;
        for (AvahiStringList *t = txt; t && !ours; t = av.string_list_get_next(t))
            ours = cell_mdns_txt_matches(av.string_list_get_text(t), av.string_list_get_size(t), d->fp);
        char ip[AVAHI_ADDRESS_STR_MAX] = "", addr[MESH_SESSION_ADDR_MAX + 1];
        av.address_snprint(ip, sizeof ip, a);
        if (a->proto == AVAHI_PROTO_INET6)
            snprintf(addr, sizeof addr, "[%s]:%u", ip, port);
        else
            snprintf(addr, sizeof addr, "%s:%u", ip, port);
        if (!ours) {
            log_debug("mesh: mDNS: %s (%s) is not of this fleet; ignored", name, addr);
            pthread_mutex_lock(&d->mu);
            d->foreign++;
            pthread_mutex_unlock(&d->mu);
        }
        else if (a->proto == AVAHI_PROTO_INET6 && !strncmp(ip, "fe80", 4))
            log_debug("mesh: mDNS: %s (%s) is link-local; ignored", name, addr);
        else
            mdns_found(d, addr);
    }
    d->resolving--;
    av.service_resolver_free(r);
}

static void on_browse(AvahiServiceBrowser *b, AvahiIfIndex iface, AvahiProtocol proto, AvahiBrowserEvent ev,
                      const char *name, const char *type, const char *domain, AvahiLookupResultFlags flags,
                      void *ud)
{
    struct cell_mdns *d = ud;
    (void)b;
    if (ev != AVAHI_BROWSER_NEW || (flags & AVAHI_LOOKUP_RESULT_OUR_OWN) || !strcmp(name, d->name))
        return;
    if (d->resolving >= MDNS_RESOLVING_MAX) {
        log_debug("mesh: mDNS: %d services being resolved; %s skipped", d->resolving, name);
        return;
    }
    if (av.service_resolver_new(d->client, iface, proto, name, type, domain, mdns_proto(d), 0, on_resolve, d))
        d->resolving++;
    else
        log_debug("mesh: mDNS: cannot resolve %s: %s", name, av.strerror(av.client_errno(d->client)));
}

static void publish(struct cell_mdns *d, AvahiClient *c);

static void on_group(AvahiEntryGroup *g, AvahiEntryGroupState st, void *ud)
{
    struct cell_mdns *d = ud;
    if (st == AVAHI_ENTRY_GROUP_COLLISION) { /* another host has our name: take the next one */
        char *alt = av.alternative_service_name(d->name);
        if (alt)
            core_sncpy(d->name, sizeof d->name, alt);
        av.free(alt);
        av.entry_group_reset(g);
        publish(d, d->client);
    } else if (st == AVAHI_ENTRY_GROUP_ESTABLISHED) {
        pthread_mutex_lock(&d->mu);
        d->published = true;
        pthread_mutex_unlock(&d->mu);
        log_info("mesh: mDNS: published %s as %s (fleet %s)", CELL_MDNS_TYPE, d->name, d->fp);
    } else if (st == AVAHI_ENTRY_GROUP_FAILURE) {
        log_warn("mesh: mDNS: publishing failed: %s", av.strerror(av.client_errno(d->client)));
    }
}

static void publish(struct cell_mdns *d, AvahiClient *c)
{
    if (!d->group && !(d->group = av.entry_group_new(c, on_group, d))) {
        log_warn("mesh: mDNS: cannot publish: %s", av.strerror(av.client_errno(c)));
        return;
    }
    char txt[64];
    cell_mdns_txt(d->fp, txt, sizeof txt);
    int rc = av.entry_group_add_service(d->group, d->iface, mdns_proto(d), 0, d->name, CELL_MDNS_TYPE, NULL,
                                        NULL, d->port, txt, (const char *)NULL);
    if (rc >= 0)
        rc = av.entry_group_commit(d->group);
    if (rc < 0)
        log_warn("mesh: mDNS: cannot publish %s: %s", d->name, av.strerror(rc));
}

static void on_client(AvahiClient *c, AvahiClientState st, void *ud)
{
    struct cell_mdns *d = ud;
    if (st == AVAHI_CLIENT_S_RUNNING) {
        publish(d, c);
        if (!d->browser && !(d->browser = av.service_browser_new(c, AVAHI_IF_UNSPEC, mdns_proto(d),
                                                                 CELL_MDNS_TYPE, NULL, 0, on_browse, d)))
            log_warn("mesh: mDNS: cannot browse: %s", av.strerror(av.client_errno(c)));
    } else if (st == AVAHI_CLIENT_S_COLLISION || st == AVAHI_CLIENT_S_REGISTERING) {
        if (d->group)
            av.entry_group_reset(d->group); /* republished when running again */
    } else if (st == AVAHI_CLIENT_FAILURE) {
        log_warn("mesh: mDNS: lost avahi-daemon: %s; the seeds only from now", av.strerror(av.client_errno(c)));
    }
}

/* The interface holding our listen address (publishing there only keeps a
 * peer from resolving another of this host's addresses we do not listen on). */
static AvahiIfIndex listen_iface(int family, const void *ip)
{
    struct ifaddrs *ifs = NULL, *i;
    AvahiIfIndex idx = AVAHI_IF_UNSPEC;
    if (getifaddrs(&ifs))
        return idx;
    for (i = ifs; i && idx == AVAHI_IF_UNSPEC; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != family)
            continue;
        const void *a = family == AF_INET ? (const void *)&((struct sockaddr_in *)i->ifa_addr)->sin_addr
                                          : (const void *)&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
        if (!memcmp(a, ip, family == AF_INET ? 4 : 16))
            idx = (AvahiIfIndex)if_nametoindex(i->ifa_name);
    }
    freeifaddrs(ifs);
    return idx ? idx : AVAHI_IF_UNSPEC;
}

static int mdns_setup(struct cell_mdns *d, const struct mesh_cell *m, char *err, size_t errlen)
{
    char host[256];
    int port;
    uint8_t ip[16];
    if (core_split_hostport(m->listen, host, sizeof host, &port) || port <= 0 || port > 65535) {
        snprintf(err, errlen, "the listen address %s has no port", m->listen);
        return -EINVAL;
    }
    d->family = inet_pton(AF_INET, host, ip) == 1 ? AF_INET : AF_INET6;
    if (d->family == AF_INET6 && inet_pton(AF_INET6, host, ip) != 1) {
        snprintf(err, errlen, "the listen address %s is not an IP address", m->listen);
        return -EINVAL;
    }
    d->port = (uint16_t)port;
    d->iface = listen_iface(d->family, ip);
    d->wake_fd = m->wake[1];
    core_sncpy(d->listen, sizeof d->listen, m->listen);
    cell_mdns_fingerprint(m->tok.cert.fleet_pk, d->fp);
    snprintf(d->name, sizeof d->name, "ippoc-%.16s", m->pk_hex); /* the node key, never the host name */
    pthread_once(&av_once, av_load);
    if (av_error[0]) {
        snprintf(err, errlen, "%s", av_error);
        return -ENOENT;
    }
    if (!(d->poll = av.threaded_poll_new())) {
        snprintf(err, errlen, "cannot start avahi's poll");
        return -ENOMEM;
    }
    int e = 0;
    d->client = av.client_new(av.threaded_poll_get(d->poll), 0, on_client, d, &e);
    if (!d->client) {
        snprintf(err, errlen, "avahi-daemon is not reachable over D-Bus: %s", av.strerror(e));
        return -EHOSTUNREACH;
    }
    if (av.threaded_poll_start(d->poll) < 0) {
        snprintf(err, errlen, "cannot start avahi's thread");
        return -EAGAIN;
    }
    return 0;
}

/* Stops avahi's thread and frees what Avahi holds. */
static void mdns_release(struct cell_mdns *d)
{
    if (d->poll)
        av.threaded_poll_stop(d->poll); /* joins avahi's thread (a no-op when it never started) */
    if (d->client)
        av.client_free(d->client); /* frees the group, the browser and the resolvers */
    if (d->poll)
        av.threaded_poll_free(d->poll);
    d->poll = NULL;
    d->client = NULL;
    d->group = NULL;
    d->browser = NULL;
}

static void mdns_free(struct cell_mdns *d)
{
    if (!d)
        return;
    mdns_release(d);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

void cell_mdns_start(struct mesh_cell *m)
{
    if (m->cfg.discover != MESH_DISCOVER_MDNS || m->mdns)
        return;
    struct cell_mdns *d = calloc(1, sizeof *d);
    if (!d)
        return;
    pthread_mutex_init(&d->mu, NULL);
    char err[512];
    if (mdns_setup(d, m, err, sizeof err)) {
        log_warn("mesh: mDNS discovery off (%s): the seeds only", err);
        mdns_release(d); /* kept, inactive, for the status's reason */
        core_sncpy(d->why, sizeof d->why, err);
    } else {
        d->active = true;
        log_info("mesh: mDNS: browsing for %s of fleet %s", CELL_MDNS_TYPE, d->fp);
    }
    m->mdns = d;
}

json_t *cell_mdns_json(const struct mesh_cell *m)
{
    struct cell_mdns *d = m->mdns;
    if (!d)
        return json_pack("{s:s}", "mode", m->cfg.discover == MESH_DISCOVER_MDNS ? "mdns" : "seeds");
    pthread_mutex_lock(&d->mu);
    bool published = d->published;
    json_int_t foreign = (json_int_t)d->foreign;
    pthread_mutex_unlock(&d->mu);
    json_t *o = json_pack("{s:s, s:b, s:b, s:s, s:I, s:I}", "mode", "mdns", "active", d->active, "published",
                          published, "fleet_fp", d->fp, "joins", (json_int_t)d->joins, "foreign", foreign);
    if (!d->active)
        json_object_set_new(o, "reason", json_string(d->why));
    return o;
}

void cell_mdns_stop(struct mesh_cell *m)
{
    pthread_mutex_lock(&m->mu);
    struct cell_mdns *d = m->mdns;
    m->mdns = NULL;
    pthread_mutex_unlock(&m->mu);
    mdns_free(d); /* without mu: avahi's thread never takes it, but joining under it is needless */
}

void cell_mdns_tick(struct mesh_cell *m, uint64_t now)
{
    struct cell_mdns *d = m->mdns;
    if (!d || !d->active)
        return;
    char found[MDNS_FOUND_MAX][MESH_SESSION_ADDR_MAX + 1];
    pthread_mutex_lock(&d->mu);
    int n = d->nfound;
    memcpy(found, d->found, sizeof found[0] * (size_t)n);
    d->nfound = 0;
    pthread_mutex_unlock(&d->mu);
    for (int i = 0; i < n; i++) {
        char err[256];
        log_info("mesh: mDNS found %s of fleet %s: joining through it", found[i], d->fp);
        if (mesh_swim_join(m->sw, now, found[i], err, sizeof err))
            log_warn("mesh: mDNS seed %s: %s", found[i], err);
        else
            d->joins++;
    }
}
