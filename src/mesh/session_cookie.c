/* session_cookie.c: the handshake's DoS defence (WireGuard 5.4.7 fitted to
 * Noise): mac1/mac2 over an initiation with keyed BLAKE2b (libsodium's
 * crypto_generichash), the cookie MAC(secret, source address), and the
 * cookie reply sealed with XChaCha20-Poly1305 under the initiation's mac1. */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "mesh/session_int.h"

void sess_mac_key(const char *label, const uint8_t basis[32], uint8_t key[32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)label, strlen(label));
    crypto_generichash_update(&st, basis, 32);
    crypto_generichash_final(&st, key, 32);
}

void sess_mac(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t len, uint8_t out[SESS_MAC_LEN])
{
    crypto_generichash(out, SESS_MAC_LEN, msg, len, key, keylen);
}

void sess_cookie_of(const uint8_t secret[32], const char *addr, uint8_t cookie[SESS_COOKIE_LEN])
{
    sess_mac(secret, 32, (const uint8_t *)addr, strlen(addr), cookie);
}

void sess_cookie_seal(const uint8_t key[32], uint32_t receiver, const uint8_t mac1[SESS_MAC_LEN],
                      const uint8_t cookie[SESS_COOKIE_LEN], uint8_t out[SESS_COOKIE_PKT])
{
    out[0] = SESS_T_COOKIE;
    sess_put32(out + 1, receiver);
    uint8_t *nonce = out + 5;
    randombytes_buf(nonce, SESS_COOKIE_NONCE);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + 5 + SESS_COOKIE_NONCE, &clen, cookie, SESS_COOKIE_LEN, mac1,
                                               SESS_MAC_LEN, NULL, nonce, key);
}

int sess_cookie_open(const uint8_t key[32], const uint8_t mac1[SESS_MAC_LEN], const uint8_t *pkt, size_t len,
                     uint8_t cookie[SESS_COOKIE_LEN])
{
    if (len != SESS_COOKIE_PKT)
        return -EBADMSG;
    unsigned long long plen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(cookie, &plen, NULL, pkt + 5 + SESS_COOKIE_NONCE,
                                                   SESS_COOKIE_LEN + 16, mac1, SESS_MAC_LEN, pkt + 5, key) != 0)
        return -EBADMSG;
    return 0;
}
