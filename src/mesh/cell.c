/* cell.c: the running mesh inside ippocd: the cell's life (node key, [mesh]
 * config, membership token, start / restart / stop), its thread (a UDP
 * socket and poll()) and the plumbing between the socket, the secure session
 * and SWIM membership. Revocation and wisdom gossip are in cell_gossip.c,
 * the JSON and /metrics views in cell_view.c.
 *
 * Locking: m->mu guards the whole cell; the thread holds it while it works
 * (never while it waits in poll), the API's views take it to read. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "mesh/cell_int.h"

#define RECV_BATCH 64

uint64_t cell_rand(struct mesh_cell *m)
{
    uint64_t x = m->rng ? m->rng : 0x9e3779b97f4a7c15ULL;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return m->rng = x;
}

/* ---- addresses ------------------------------------------------------------ */

static void addr_format(const struct sockaddr_storage *ss, char *out, size_t n)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        snprintf(out, n, "[%s]:%u", ip, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        snprintf(out, n, "%s:%u", ip, ntohs(a->sin_port));
    }
}

/* "ip:port" / "[ip6]:port" (a host name is resolved) into a socket address. */
static int addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    int port;
    if (core_split_hostport(s, host, sizeof host, &port))
        return -EINVAL;
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof *a4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof *a6;
        return 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) || !res)
        return -EHOSTUNREACH;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    if (ss->ss_family == AF_INET)
        a4->sin_port = htons((uint16_t)port);
    else
        a6->sin6_port = htons((uint16_t)port);
    return 0;
}

/* A seed as the address string its datagrams will come from. */
static int seed_canonical(const char *seed, char *out, size_t n)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = addr_parse(seed, &ss, &len);
    if (!rc)
        addr_format(&ss, out, n);
    return rc;
}

/* ---- peers the session told us about ----------------------------------------- */

cell_known *cell_known_by_addr(struct mesh_cell *m, const char *addr)
{
    for (size_t i = 0; i < m->nknown; i++)
        if (!strcmp(m->known[i].addr, addr))
            return &m->known[i];
    return NULL;
}

const cell_known *cell_known_by_pk(const struct mesh_cell *m, const uint8_t pk[MESH_ID_PK_BYTES])
{
    for (size_t i = 0; i < m->nknown; i++)
        if (!memcmp(m->known[i].pk, pk, MESH_ID_PK_BYTES))
            return &m->known[i];
    return NULL;
}

static cell_known *known_add(struct mesh_cell *m, const char *addr)
{
    cell_known *k = cell_known_by_addr(m, addr);
    if (k || m->nknown >= CELL_KNOWN_MAX)
        return k;
    k = realloc(m->known, (m->nknown + 1) * sizeof *k);
    if (!k)
        return NULL;
    m->known = k;
    k = &m->known[m->nknown++];
    memset(k, 0, sizeof *k);
    core_sncpy(k->addr, sizeof k->addr, addr);
    return k;
}

/* ---- sending -------------------------------------------------------------------- */

int cell_send(struct mesh_cell *m, uint64_t now, const char *addr, uint8_t ch, const uint8_t *p, size_t n)
{
    uint8_t buf[MESH_SESSION_MAX_PAYLOAD];
    char err[256];
    if (n + 1 > sizeof buf)
        return -EMSGSIZE;
    if (ch == CELL_CH_SWIM) { /* -- revsync: our revocations go ahead of the first membership a peer gets */
        cell_known *k = known_add(m, addr);
        if (k && !k->rev_sent) {
            k->rev_sent = true;
            cell_revoke_send(m, now, addr);
        }
    }
    buf[0] = ch;
    memcpy(buf + 1, p, n);
    int rc = mesh_session_send(m->ses, now, addr, buf, n + 1, err, sizeof err);
    if (rc && rc != -ENOBUFS)
        log_debug("mesh: send to %s: %s", addr, err);
    return rc;
}

/* Everything swim and the session want sent, onto the socket. */
static void pump(struct mesh_cell *m, uint64_t now)
{
    struct mesh_swim_out *o;
    while ((o = mesh_swim_next_out(m->sw))) {
        if (o->addr[0] && !cell_sync_divert(m, o)) /* -- pushpull: STATE over TCP */
            cell_send(m, now, o->addr, CELL_CH_SWIM, o->data, o->len);
        free(o);
    }
    cell_sync_seal(m); /* -- pushpull */
    mesh_session_out so;
    while (mesh_session_next_out(m->ses, &so)) {
        struct sockaddr_storage ss;
        socklen_t len;
        if (addr_parse(so.addr, &ss, &len))
            continue;
        if (sendto(m->fd, so.data, so.len, MSG_DONTWAIT, (struct sockaddr *)&ss, len) == (ssize_t)so.len) {
            m->udp_out++;
            m->udp_bytes_out += so.len;
        }
    }
}

void cell_pump(struct mesh_cell *m, uint64_t now) /* -- pushpull: cell_sync.c's workers */
{
    pump(m, now);
}

struct pick {
    struct mesh_cell *m;
    char *addr;
    size_t n;
    uint64_t seen;
};

static void pick_one(void *ctx, const struct mesh_swim_member_info *mi)
{
    struct pick *p = ctx;
    if (mi->self || mi->state != MESH_SWIM_ALIVE || !mi->addr[0])
        return;
    if (cell_rand(p->m) % ++p->seen == 0) /* reservoir sampling */
        core_sncpy(p->addr, p->n, mi->addr);
}

bool cell_random_peer(struct mesh_cell *m, char *addr, size_t n)
{
    struct pick p = {m, addr, n, 0};
    mesh_swim_members(m->sw, pick_one, &p);
    return p.seen > 0;
}

/* ---- events --------------------------------------------------------------------- */

static void record_member(struct mesh_cell *m, const struct mesh_swim_event *ev)
{
    const char *st = mesh_swim_state_name(ev->state);
    if (ev->state == MESH_SWIM_DEAD || ev->state == MESH_SWIM_SUSPECT)
        log_warn("mesh: member %s (%s) is %s (incarnation %llu)", ev->id, ev->addr, st,
                 (unsigned long long)ev->incarnation);
    else
        log_info("mesh: member %s (%s) is %s%s", ev->id, ev->addr, st, ev->joined ? " (joined)" : "");
    if (!m->mem)
        return;
    json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:b}", "id", ev->id, "addr", ev->addr, "state", st, "incarnation",
                          (json_int_t)ev->incarnation, "joined", ev->joined);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (text)
        mem_event_add(m->mem, 0, "mesh.member", ev->state == MESH_SWIM_DEAD ? "warning" : "info", "mesh", text);
    free(text);
    json_decref(j);
}

static void on_swim(void *ctx, const struct mesh_swim_event *ev)
{
    struct mesh_cell *m = ctx;
    record_member(m, ev);
    if (ev->state == MESH_SWIM_DEAD || ev->state == MESH_SWIM_LEFT) {
        mesh_session_forget(m->ses, ev->addr);
        cell_known *k = cell_known_by_addr(m, ev->addr);
        if (k)
            k->session = k->rev_sent = false;
    }
}

/* The swim packet's sender id must be the certificate's node id. */
static bool swim_sender_is(const uint8_t *p, size_t n, const char *node_id)
{
    size_t idlen = strlen(node_id);
    return n >= 3 && p[0] == 0xA7 && p[1] == 0x01 && p[2] == idlen && n >= 3 + idlen &&
           !memcmp(p + 3, node_id, idlen);
}

static void on_data(struct mesh_cell *m, const mesh_session_event *ev)
{
    char err[256];
    if (ev->len < 1) {
        m->malformed++;
        return;
    }
    const uint8_t *p = ev->data + 1;
    size_t n = ev->len - 1;
    switch (ev->data[0]) {
    case CELL_CH_SWIM:
        if (ev->node_id && ev->node_id[0] && !swim_sender_is(p, n, ev->node_id)) {
            m->forged++;
            log_debug("mesh: %s (%s) sent membership in another member's name", ev->addr, ev->node_id);
            return;
        }
        if (mesh_swim_receive(m->sw, m->now, p, n, err, sizeof err)) {
            m->malformed++;
            log_debug("mesh: membership packet from %s: %s", ev->addr, err);
        }
        return;
    case CELL_CH_REVOKE:
        cell_revoke_receive(m, m->now, ev->addr, p, n);
        return;
    case CELL_CH_WISDOM:
        cell_wisdom_receive(m, m->now, ev->addr, p, n);
        return;
    default:
        m->malformed++;
    }
}

static void on_session(void *ctx, const mesh_session_event *ev)
{
    struct mesh_cell *m = ctx;
    cell_known *k;
    switch (ev->kind) {
    case MESH_SESSION_UP:
        if (ev->pk && cell_revoked_pk(m, ev->pk)) {
            mesh_session_forget(m->ses, ev->addr);
            if ((k = cell_known_by_addr(m, ev->addr)))
                k->rev_sent = false;
            return;
        }
        if ((k = known_add(m, ev->addr))) {
            core_sncpy(k->node_id, sizeof k->node_id, ev->node_id ? ev->node_id : "");
            if (ev->pk)
                memcpy(k->pk, ev->pk, MESH_ID_PK_BYTES);
            if ((k->has_cert = ev->cert != NULL))
                k->cert = *ev->cert;
            k->session = true;
        }
        log_info("mesh: session with %s (%s) up", ev->node_id ? ev->node_id : "?", ev->addr);
        return;
    case MESH_SESSION_DATA:
        on_data(m, ev);
        return;
    case MESH_SESSION_REJECT: /* at most one line a second: a flood must not flood the log */
        if (m->now >= m->reject_log_at) {
            log_info("mesh: refused %s: %s (%llu more refusals not logged)", ev->addr, ev->reason ? ev->reason : "?",
                     (unsigned long long)m->reject_unlogged);
            m->reject_log_at = m->now + 1000;
            m->reject_unlogged = 0;
        } else {
            m->reject_unlogged++;
        }
        return;
    case MESH_SESSION_DOWN:
        if ((k = cell_known_by_addr(m, ev->addr)))
            k->session = k->rev_sent = false;
        log_info("mesh: session with %s down: %s", ev->addr, ev->reason ? ev->reason : "?");
        return;
    }
}

/* ---- the thread ------------------------------------------------------------------- */

static uint64_t mono(void)
{
    return (uint64_t)core_mono_ms();
}

static uint64_t deadline(const struct mesh_cell *m)
{
    uint64_t d = mesh_swim_next_deadline(m->sw), s = mesh_session_next_deadline(m->ses),
             g = cell_gossip_deadline(m);
    d = s < d ? s : d;
    return g < d ? g : d;
}

static void work(struct mesh_cell *m, uint64_t now)
{
    m->now = now;
    mesh_session_tick(m->ses, now);
    mesh_swim_tick(m->sw, now);
    cell_gossip_tick(m, now);
    cell_mdns_tick(m, now); /* -- mdns */
    pump(m, now);
}

static void receive_some(struct mesh_cell *m)
{
    uint8_t buf[MESH_SESSION_MTU + 1];
    for (int i = 0; i < RECV_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        ssize_t r = recvfrom(m->fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&ss, &sl);
        if (r < 0)
            return;
        char addr[MESH_SESSION_ADDR_MAX + 1];
        addr_format(&ss, addr, sizeof addr);
        pthread_mutex_lock(&m->mu);
        uint64_t now = mono();
        m->now = now;
        m->udp_in++;
        m->udp_bytes_in += (uint64_t)r;
        mesh_session_receive(m->ses, now, addr, buf, (size_t)r);
        pump(m, now);
        pthread_mutex_unlock(&m->mu);
    }
}

static void *cell_thread(void *arg)
{
    struct mesh_cell *m = arg;
    while (!atomic_load(&m->stop)) {
        pthread_mutex_lock(&m->mu);
        uint64_t now = mono();
        work(m, now);
        uint64_t dl = deadline(m);
        pthread_mutex_unlock(&m->mu);
        int timeout = dl <= now ? 0 : dl - now > 1000 ? 1000 : (int)(dl - now);
        struct pollfd pf[2] = {{.fd = m->fd, .events = POLLIN}, {.fd = m->wake[0], .events = POLLIN}};
        if (poll(pf, 2, timeout) < 0)
            continue;
        if (pf[1].revents) {
            char b[16];
            while (read(m->wake[0], b, sizeof b) > 0)
                ;
        }
        if (pf[0].revents & POLLIN)
            receive_some(m);
    }
    pthread_mutex_lock(&m->mu); /* tell the others we leave */
    uint64_t now = mono();
    m->now = now;
    mesh_swim_leave(m->sw, now);
    mesh_swim_tick(m->sw, now);
    pump(m, now);
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

/* ---- start and stop -------------------------------------------------------------- */

/* -- pushpull: whether TCP can listen on the UDP socket's address and port. */
static bool tcp_twin_free(int udp_fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int one = 1;
    if (getsockname(udp_fd, (struct sockaddr *)&ss, &len))
        return false;
    int t = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = t >= 0 && !setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) &&
              !bind(t, (struct sockaddr *)&ss, len);
    if (t >= 0)
        close(t);
    return ok;
}

static int open_socket(struct mesh_cell *m, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (addr_parse(m->cfg.listen, &ss, &len)) {
        snprintf(err, errlen, "mesh: listen '%s' is not an address", m->cfg.listen);
        return -EINVAL;
    }
    bool any_port = ((struct sockaddr_in *)&ss)->sin_port == 0; /* same offset in sockaddr_in6 */
    for (int tries = 0;; tries++) {
        m->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (m->fd < 0 || bind(m->fd, (struct sockaddr *)&ss, len) < 0) {
            int e = errno;
            snprintf(err, errlen, "mesh: cannot listen on %s: %s", m->cfg.listen, strerror(e));
            return -e;
        }
        /* -- pushpull: port 0 takes a port whose TCP twin is free too (an
         * outgoing connection's local port would keep the stream path from
         * listening there: cell_reason.c, cell_sync.c) */
        if (!any_port || tries >= 20 || tcp_twin_free(m->fd))
            break;
        close(m->fd);
    }
    int rcv = 1 << 20;
    setsockopt(m->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    len = sizeof ss;
    getsockname(m->fd, (struct sockaddr *)&ss, &len);
    addr_format(&ss, m->listen, sizeof m->listen);
    return 0;
}

static int open_swim(struct mesh_cell *m, char *err, size_t errlen)
{
    struct mesh_swim_config sc;
    mesh_swim_config_default(&sc);
    sc.probe_interval_ms = m->cfg.probe_interval_ms;
    sc.probe_timeout_ms = m->cfg.probe_timeout_ms;
    sc.gossip_interval_ms = m->cfg.gossip_interval_ms;
    sc.suspicion_mult = m->cfg.suspicion_mult;
    sc.pushpull_interval_ms = m->cfg.pushpull_interval_ms;
    sc.max_packet = MESH_SESSION_MAX_PAYLOAD - 1; /* the channel tag takes one byte */
    cell_caps caps;
    uint8_t meta[CELL_CAPS_BYTES];
    cell_caps_local(m->state_dir, m->llm, m->roles, &caps);
    size_t mlen = cell_caps_encode(&caps, meta);
    m->sw = mesh_swim_new(&sc, m->tok.cert.node_id, m->listen, meta, mlen, cell_rand(m), mono(), err, errlen);
    if (!m->sw)
        return -EINVAL;
    mesh_swim_on_event(m->sw, on_swim, m);
    return 0;
}

static void join_seed(struct mesh_cell *m, const char *seed)
{
    char addr[MESH_SESSION_ADDR_MAX + 1], err[256];
    if (seed_canonical(seed, addr, sizeof addr)) {
        log_warn("mesh: seed %s does not resolve; skipped", seed);
        return;
    }
    if (!strcmp(addr, m->listen))
        return;
    if (mesh_swim_join(m->sw, mono(), addr, err, sizeof err))
        log_warn("mesh: seed %s: %s", seed, err);
}

static void teardown(struct mesh_cell *m);

static int start_running(struct mesh_cell *m, char *err, size_t errlen)
{
    m->fd = m->wake[0] = m->wake[1] = -1;
    randombytes_buf(&m->rng, sizeof m->rng);
    int rc = mesh_identity_revlist_init(&m->rl, m->tok.cert.fleet_pk, 0);
    if (rc) {
        snprintf(err, errlen, "mesh: revocation list: %s", strerror(-rc));
        return rc;
    }
    m->running = true; /* from here teardown undoes what was done */
    char e[512];
    if ((rc = mesh_identity_revlist_load(&m->rl, m->state_dir, core_now_ms() / 1000, e, sizeof e)))
        log_warn("mesh: %s (starting with an empty revocation list)", e);
    if ((rc = open_socket(m, err, errlen)))
        goto fail;
    mesh_session_config sc = {.node = &m->node, .cert = &m->tok.cert, .fleet_pk = m->tok.cert.fleet_pk,
                              .revoked = &m->rl};
    if ((rc = mesh_session_new(&sc, &m->ses, err, errlen)))
        goto fail;
    mesh_session_on_event(m->ses, on_session, m);
    if ((rc = open_swim(m, err, errlen)) || (rc = cell_gossip_open(m, err, errlen)))
        goto fail;
    for (int i = 0; i < m->tok.nseeds; i++)
        join_seed(m, m->tok.seeds[i]);
    for (int i = 0; i < m->cfg.nseeds; i++)
        join_seed(m, m->cfg.seeds[i]);
    if (pipe2(m->wake, O_NONBLOCK | O_CLOEXEC)) {
        rc = -errno;
        snprintf(err, errlen, "mesh: pipe: %s", strerror(errno));
        goto fail;
    }
    atomic_store(&m->stop, false);
    if ((rc = -pthread_create(&m->th, NULL, cell_thread, m))) {
        snprintf(err, errlen, "mesh: cannot start its thread: %s", strerror(-rc));
        goto fail;
    }
    m->th_started = true;
    cell_reason_start(m);
    cell_sync_start(m); /* -- pushpull */
    cell_mdns_start(m); /* -- mdns */
    char roles[64];
    mesh_identity_roles_format(m->roles, roles, sizeof roles);
    log_info("mesh: cell %s listening on %s (roles %s)", m->tok.cert.node_id, m->listen, roles);
    return 0;
fail:
    teardown(m);
    return rc;
}

/* Frees the running part, the thread joined; under mu. */
static void teardown(struct mesh_cell *m)
{
    cell_gossip_close(m);
    mesh_swim_free(m->sw);
    mesh_session_free(m->ses);
    m->sw = NULL;
    m->ses = NULL;
    if (m->fd >= 0)
        close(m->fd);
    for (int i = 0; i < 2; i++)
        if (m->wake[i] >= 0)
            close(m->wake[i]);
    m->fd = m->wake[0] = m->wake[1] = -1;
    mesh_identity_revlist_free(&m->rl);
    free(m->known);
    m->known = NULL;
    m->nknown = 0;
    m->listen[0] = 0;
    m->running = false;
    m->udp_in = m->udp_out = m->udp_bytes_in = m->udp_bytes_out = m->malformed = m->forged = 0;
}

/* Called without mu (the thread takes it). */
static void stop_running(struct mesh_cell *m)
{
    pthread_mutex_lock(&m->mu);
    bool running = m->running, th = m->th_started;
    pthread_mutex_unlock(&m->mu);
    if (!running)
        return;
    if (th) {
        atomic_store(&m->stop, true);
        ssize_t w = write(m->wake[1], "x", 1);
        (void)w;
        pthread_join(m->th, NULL);
    }
    cell_reason_stop(m);
    cell_sync_stop(m); /* -- pushpull */
    cell_mdns_stop(m); /* -- mdns */
    pthread_mutex_lock(&m->mu);
    m->th_started = false;
    teardown(m);
    pthread_mutex_unlock(&m->mu);
}

int mesh_cell_new(const mesh_cell_opts *o, mesh_cell **out, char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        snprintf(err, errlen, "mesh: libsodium did not initialise");
        return -EIO;
    }
    struct mesh_cell *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    core_sncpy(m->state_dir, sizeof m->state_dir, o->state_dir);
    m->mem = o->mem;
    m->llm = o->llm;
    m->fd = m->wake[0] = m->wake[1] = -1;
    m->tcp_fd = m->reason_wake[0] = m->reason_wake[1] = -1;
    bool created = false;
    int rc = mesh_identity_node_key(m->state_dir, &m->node, &created, err, errlen);
    if (rc) {
        free(m);
        return rc;
    }
    mesh_identity_pk_hex(m->node.pk, m->pk_hex);
    if (created)
        log_info("mesh: created the node key %s/%s (%s)", m->state_dir, MESH_ID_NODE_KEY_FILE, m->pk_hex);
    pthread_mutex_init(&m->mu, NULL);
    *out = m;
    return 0;
}

/* Reads the membership token: 1 joined, 0 not (m->reason says why). */
static int read_token(struct mesh_cell *m, char *text, size_t n)
{
    char path[CORE_PATH_MAX + 32], err[512];
    snprintf(path, sizeof path, "%s/%s", m->state_dir, MESH_ID_MEMBER_FILE);
    text[0] = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        size_t r = fread(text, 1, n - 1, f);
        text[r] = 0;
        fclose(f);
    }
    int rc = mesh_identity_member_load(m->state_dir, &m->tok, err, sizeof err);
    if (rc == -ENOENT) {
        snprintf(m->reason, sizeof m->reason, "no %s: run `ippoc mesh join TOKEN`", path);
        return 0;
    }
    if (rc) {
        snprintf(m->reason, sizeof m->reason, "%s", err);
        return 0;
    }
    rc = mesh_identity_token_accept(&m->tok, &m->node, core_now_ms() / 1000, MESH_ID_SKEW_S, err, sizeof err);
    if (rc) {
        snprintf(m->reason, sizeof m->reason, "%s: %s", path, err);
        return 0;
    }
    return 1;
}

int mesh_cell_configure(mesh_cell *m, const core_config *cfg, char *err, size_t errlen)
{
    mesh_config c;
    int rc = mesh_config_parse(cfg, &c, err, errlen);
    if (rc)
        return rc;
    char *text = calloc(1, MESH_ID_TOKEN_MAX);
    if (!text)
        return -ENOMEM;
    pthread_mutex_lock(&m->mu);
    int joined = c.enabled ? read_token(m, text, MESH_ID_TOKEN_MAX) : 0;
    bool same = m->configured && !memcmp(&c, &m->cfg, sizeof c) && !strcmp(text, m->token_text) &&
                m->running == (joined == 1);
    if (same && m->running) { /* `ippoc mesh revoke` then SIGHUP: the list may have grown */
        cell_revoke_reload(m, mono());
        ssize_t w = write(m->wake[1], "x", 1);
        (void)w;
    }
    pthread_mutex_unlock(&m->mu);
    if (same) {
        free(text);
        return 0;
    }
    stop_running(m);
    pthread_mutex_lock(&m->mu);
    m->cfg = c;
    m->configured = true;
    m->joined = joined == 1;
    core_sncpy(m->token_text, sizeof m->token_text, text);
    free(text);
    m->roles = m->joined ? (c.roles ? c.roles & m->tok.cert.roles : m->tok.cert.roles) : 0;
    if (!c.enabled)
        snprintf(m->reason, sizeof m->reason, "[mesh] enabled = no");
    bool go = m->joined;
    pthread_mutex_unlock(&m->mu);
    if (!go) {
        if (c.enabled)
            log_info("mesh: not joined: %s", m->reason);
        return 0;
    }
    /* the thread does not run yet: no lock needed for the start itself, but
     * the views may look: take mu */
    pthread_mutex_lock(&m->mu);
    rc = start_running(m, err, errlen);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

void mesh_cell_free(mesh_cell *m)
{
    if (!m)
        return;
    stop_running(m);
    cell_wisdom_free(m);
    mesh_identity_key_wipe(&m->node);
    free(m->rpeers);
    pthread_mutex_destroy(&m->mu);
    free(m);
}
