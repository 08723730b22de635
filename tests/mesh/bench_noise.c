/* bench_noise.c: speed of src/mesh/noise.c on one core: complete handshakes
 * per second (both sides in this process, so each count is one initiator
 * plus one responder) for Noise_XX and Noise_IK with SHA256, and transport
 * encrypt+decrypt throughput for 1,400-byte packets. Not a test: run by hand,
 * optionally with the seconds per measurement as the argument (default 2). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "mesh/noise.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int one_handshake(const char *proto, const uint8_t si[32], const uint8_t pi[32], const uint8_t sr[32],
                         const uint8_t pr[32], mesh_noise_cipher c[2], mesh_noise_cipher d[2])
{
    mesh_noise_handshake i, r;
    bool ik = strstr(proto, "_IK_") != NULL; /* only IK knows the responder's key in advance */
    mesh_noise_config ci = {.protocol = proto, .initiator = true, .s_priv = si, .s_pub = pi, .rs = ik ? pr : NULL};
    mesh_noise_config cr = {.protocol = proto, .initiator = false, .s_priv = sr, .s_pub = pr};
    uint8_t msg[256], pl[256];
    size_t mlen, plen;
    char err[256];
    if (mesh_noise_handshake_init(&i, &ci, err, sizeof err) || mesh_noise_handshake_init(&r, &cr, err, sizeof err))
        goto bad;
    while (!mesh_noise_handshake_done(&i) || !mesh_noise_handshake_done(&r)) {
        mesh_noise_handshake *w = mesh_noise_my_turn(&i) ? &i : &r, *rd = w == &i ? &r : &i;
        if (mesh_noise_write_message(w, NULL, 0, msg, sizeof msg, &mlen, err, sizeof err) ||
            mesh_noise_read_message(rd, msg, mlen, pl, sizeof pl, &plen, err, sizeof err))
            goto bad;
    }
    if (mesh_noise_split(&i, &c[0], &c[1], err, sizeof err) || mesh_noise_split(&r, &d[0], &d[1], err, sizeof err))
        goto bad;
    mesh_noise_handshake_wipe(&i);
    mesh_noise_handshake_wipe(&r);
    return 0;
bad:
    fprintf(stderr, "%s: %s\n", proto, err);
    return -1;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    if (sodium_init() < 0 || secs <= 0)
        return 1;
    uint8_t si[32], pi[32], sr[32], pr[32];
    randombytes_buf(si, 32);
    randombytes_buf(sr, 32);
    mesh_noise_pubkey(pi, si);
    mesh_noise_pubkey(pr, sr);
    mesh_noise_cipher c[2], d[2];
    const char *protos[] = {"Noise_XX_25519_ChaChaPoly_SHA256", "Noise_IK_25519_ChaChaPoly_SHA256"};
    for (size_t p = 0; p < 2; p++) {
        long n = 0;
        double t0 = now_s(), t;
        do {
            if (one_handshake(protos[p], si, pi, sr, pr, c, d) < 0)
                return 1;
            n++;
        } while ((t = now_s() - t0) < secs);
        printf("%s: %.0f handshakes/s (both sides, one core)\n", protos[p], (double)n / t);
    }
    static uint8_t pkt[1400], ct[1400 + MESH_NOISE_TAGLEN], back[1400];
    randombytes_buf(pkt, sizeof pkt);
    long n = 0;
    size_t clen, plen;
    double t0 = now_s(), t;
    do {
        for (int k = 0; k < 1000; k++, n++) {
            if (mesh_noise_cipher_encrypt(&c[0], NULL, 0, pkt, sizeof pkt, ct, sizeof ct, &clen, NULL, 0) ||
                mesh_noise_cipher_decrypt(&d[0], NULL, 0, ct, clen, back, sizeof back, &plen, NULL, 0))
                return 1;
        }
    } while ((t = now_s() - t0) < secs);
    if (memcmp(back, pkt, sizeof pkt) != 0)
        return 1;
    printf("transport 1400-byte packets: %.0f encrypt+decrypt/s, %.1f MB/s of payload (encrypted and decrypted)\n",
           (double)n / t, (double)n * 1400 / t / 1e6);
    return 0;
}
