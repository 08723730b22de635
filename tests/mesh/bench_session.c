/* bench_session.c: speed of src/mesh/session.c on one core: sessions
 * established per second (two sessions in this process: first-contact XX and
 * IK, both sides' work counted as one) and transport MB/s for 1,368-byte
 * payloads (seal + open). Not a test: run by hand, optionally with the seconds
 * per measurement as the argument (default 2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "mesh/session.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *A = "10.0.0.1:7947", *B = "10.0.0.2:7947";
static long delivered;
static uint64_t vclock;

static void count(void *ctx, const mesh_session_event *ev)
{
    (void)ctx;
    if (ev->kind == MESH_SESSION_DATA)
        delivered++;
}

static void pump(struct mesh_session *a, struct mesh_session *b, uint64_t now)
{
    mesh_session_out o;
    for (int moved = 1; moved;) {
        moved = 0;
        while (mesh_session_next_out(a, &o))
            moved = 1, mesh_session_receive(b, now, A, o.data, o.len);
        while (mesh_session_next_out(b, &o))
            moved = 1, mesh_session_receive(a, now, B, o.data, o.len);
    }
}

static int make(mesh_identity_key *fleet, mesh_identity_key *k, mesh_identity_cert *c, struct mesh_session **s)
{
    char err[256];
    k->kind = MESH_KEY_NODE;
    crypto_sign_keypair(k->pk, k->sk);
    *c = (mesh_identity_cert){.roles = MESH_ROLE_ALL, .not_before = 0, .not_after = INT64_MAX / 2};
    memcpy(c->node_pk, k->pk, 32);
    snprintf(c->node_id, sizeof c->node_id, "bench");
    mesh_session_config cfg = {.node = k, .cert = c, .fleet_pk = fleet->pk};
    if (mesh_identity_cert_sign(c, fleet, err, sizeof err) || mesh_session_new(&cfg, s, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    mesh_session_on_event(*s, count, NULL);
    return 0;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    if (sodium_init() < 0 || secs <= 0)
        return 1;
    mesh_identity_key fleet = {.kind = MESH_KEY_FLEET}, ka, kb;
    mesh_identity_cert ca, cb;
    crypto_sign_keypair(fleet.pk, fleet.sk);
    struct mesh_session *a, *b;
    if (make(&fleet, &ka, &ca, &a) || make(&fleet, &kb, &cb, &b))
        return 1;
    uint8_t pl[MESH_SESSION_MAX_PAYLOAD];
    randombytes_buf(pl, sizeof pl);
    char err[256];
    for (int ik = 0; ik < 2; ik++) {
        long n = 0;
        double t0 = now_s(), t;
        do {
            mesh_session_forget(a, B);
            mesh_session_forget(b, A);
            if (!ik) { /* first contact: forget the learned keys too, by fresh peers */
                mesh_session_free(a);
                mesh_session_free(b);
                mesh_session_config c1 = {.node = &ka, .cert = &ca, .fleet_pk = fleet.pk};
                mesh_session_config c2 = {.node = &kb, .cert = &cb, .fleet_pk = fleet.pk};
                if (mesh_session_new(&c1, &a, err, sizeof err) || mesh_session_new(&c2, &b, err, sizeof err))
                    return 1;
                mesh_session_on_event(a, count, NULL);
                mesh_session_on_event(b, count, NULL);
            }
            long before = delivered;
            uint64_t now = ++vclock * 2; /* the virtual clock: under the cookie load threshold */
            mesh_session_send(a, now, B, pl, 16, err, sizeof err);
            pump(a, b, now);
            if (delivered != before + 1)
                return fprintf(stderr, "handshake failed\n"), 1;
            n++;
        } while ((t = now_s() - t0) < secs);
        printf("%s: %.0f sessions established/s (both sides, one core, incl. certificate checks)\n",
               ik ? "IK (key known)" : "XX (first contact)", (double)n / t);
    }
    uint64_t now = ++vclock * 2;
    mesh_session_send(a, now, B, pl, 16, err, sizeof err);
    pump(a, b, now);
    long n = 0, before = delivered;
    double t0 = now_s(), t;
    mesh_session_out o;
    do {
        for (int k = 0; k < 1000; k++, n++) {
            mesh_session_send(a, now, B, pl, sizeof pl, err, sizeof err);
            mesh_session_next_out(a, &o);
            mesh_session_receive(b, now, A, o.data, o.len);
        }
    } while ((t = now_s() - t0) < secs);
    if (delivered - before != n)
        return fprintf(stderr, "transport lost packets\n"), 1;
    printf("transport: %.1f MB/s of %d-byte payloads (seal + open, one core)\n",
           (double)n * sizeof pl / t / 1e6, MESH_SESSION_MAX_PAYLOAD);
    mesh_session_free(a);
    mesh_session_free(b);
    return 0;
}
