/* mesh_knock.c: a cell with a certificate of any validity window knocking on
 * a real ippocd's mesh socket, for tests/integration/test_mesh_security.py
 * (not installed). A real ippocd refuses to start with its own certificate
 * expired or not yet valid, so this tool signs one with the fleet key and
 * runs the real session (session.c) with it: the session does not judge its
 * own certificate, only the peer's (at the real time, so the daemon's valid
 * one passes), and the daemon sees what an out-of-date cell would send.
 *   mesh-knock FLEETDIR STATEDIR NODE_ID HOST:PORT FROM_S VALID_S MS
 * FROM_S: not_before relative to now (seconds, may be negative); VALID_S:
 * not_after - not_before; MS: how long to keep knocking. Prints
 * "up N data N reject N sent N peer ID" (what its own session saw; ID: the
 * daemon's node id from its certificate, "-" when none came) and exits 0. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mesh/identity.h"
#include "mesh/session.h"

typedef struct knock {
    int up, data, reject;
    unsigned long sent;
    char peer[MESH_ID_NODE_ID_MAX + 1]; /* the node id the daemon's certificate showed us */
} knock;

static void knock_event(void *ctx, const mesh_session_event *ev)
{
    knock *k = ctx;
    if (ev->kind == MESH_SESSION_UP && ev->node_id)
        snprintf(k->peer, sizeof k->peer, "%s", ev->node_id);
    k->up += ev->kind == MESH_SESSION_UP;
    k->data += ev->kind == MESH_SESSION_DATA;
    k->reject += ev->kind == MESH_SESSION_REJECT;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int parse_addr(const char *s, struct sockaddr_in *sa)
{
    char host[64];
    const char *c = strrchr(s, ':');
    if (!c || (size_t)(c - s) >= sizeof host)
        return -1;
    memcpy(host, s, (size_t)(c - s));
    host[c - s] = 0;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(c + 1));
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static void flush(struct mesh_session *s, int fd, knock *k)
{
    mesh_session_out o;
    while (mesh_session_next_out(s, &o)) {
        struct sockaddr_in sa;
        if (parse_addr(o.addr, &sa) == 0 && sendto(fd, o.data, o.len, 0, (struct sockaddr *)&sa, sizeof sa) > 0)
            k->sent++;
    }
}

static int sign_cert(const char *fleetdir, const char *state, const char *node_id, int64_t from, int64_t valid,
                     mesh_identity_key *nk, mesh_identity_cert *c)
{
    char path[4096], err[512];
    mesh_identity_key fk;
    snprintf(path, sizeof path, "%s/%s", fleetdir, MESH_ID_FLEET_KEY_FILE);
    memset(c, 0, sizeof *c);
    if (mesh_identity_key_load(path, MESH_KEY_FLEET, &fk, err, sizeof err) ||
        mesh_identity_node_key(state, nk, NULL, err, sizeof err)) {
        fprintf(stderr, "mesh-knock: %s\n", err);
        return -1;
    }
    memcpy(c->node_pk, nk->pk, MESH_ID_PK_BYTES);
    snprintf(c->node_id, sizeof c->node_id, "%s", node_id);
    c->roles = MESH_ROLE_ALL;
    c->not_before = (int64_t)time(NULL) + from;
    c->not_after = c->not_before + valid;
    int rc = mesh_identity_cert_sign(c, &fk, err, sizeof err);
    mesh_identity_key_wipe(&fk);
    if (rc)
        fprintf(stderr, "mesh-knock: %s\n", err);
    return rc ? -1 : 0;
}

static int run(const mesh_session_config *sc, knock *k, const char *addr, uint64_t ms)
{
    char err[512];
    struct mesh_session *s;
    if (mesh_session_new(sc, &s, err, sizeof err)) {
        fprintf(stderr, "mesh-knock: %s\n", err);
        return -1;
    }
    mesh_session_on_event(s, knock_event, k);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in me = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof me)) {
        perror("mesh-knock: socket");
        mesh_session_free(s);
        return -1;
    }
    uint64_t t0 = mono_ms(), next_send = t0;
    static const uint8_t hello[] = {1, 0}; /* a swim-channel byte: the cell would parse it, if it ever got it */
    for (uint64_t now = t0; now - t0 < ms; now = mono_ms()) {
        if (now >= next_send) {
            mesh_session_send(s, now, addr, hello, sizeof hello, err, sizeof err);
            next_send = now + 500;
        }
        mesh_session_tick(s, now);
        flush(s, fd, k);
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 50) > 0) {
            uint8_t buf[MESH_SESSION_MTU + 1];
            char from[MESH_SESSION_ADDR_MAX + 1], ip[INET_ADDRSTRLEN];
            struct sockaddr_in sa;
            socklen_t sl = sizeof sa;
            ssize_t r = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&sa, &sl);
            if (r > 0) {
                inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
                snprintf(from, sizeof from, "%s:%u", ip, ntohs(sa.sin_port));
                mesh_session_receive(s, mono_ms(), from, buf, (size_t)r);
                flush(s, fd, k);
            }
        }
    }
    close(fd);
    mesh_session_free(s);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: mesh-knock FLEETDIR STATEDIR NODE_ID HOST:PORT FROM_S VALID_S MS\n");
        return 2;
    }
    mesh_identity_key nk;
    mesh_identity_cert c;
    if (sign_cert(argv[1], argv[2], argv[3], atoll(argv[5]), atoll(argv[6]), &nk, &c))
        return 1;
    knock k = {0};
    mesh_session_config sc = {.node = &nk, .cert = &c, .fleet_pk = c.fleet_pk, .handshake_retry_ms = 500};
    int rc = run(&sc, &k, argv[4], (uint64_t)atoll(argv[7]));
    mesh_identity_key_wipe(&nk);
    if (rc)
        return 1;
    printf("up %d data %d reject %d sent %lu peer %s\n", k.up, k.data, k.reject, k.sent, k.peer[0] ? k.peer : "-");
    return 0;
}
