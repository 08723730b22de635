/* stream.h: the mesh's TCP path for full-state sync (internal to
 * src/mesh/), as a pure state machine over a byte stream: the same
 * Noise_XX / Noise_IK handshakes, prologue, static key and certificate checks
 * as session.h, each Noise message framed by a 2-byte big-endian length (as
 * the Noise spec suggests for TCP). No sockets inside: the caller feeds what
 * it read with mesh_stream_feed() and writes what mesh_stream_pending()
 * shows, then mesh_stream_consume()s it.
 *
 * Framing: frame = len u16 big-endian | len bytes. The initiator's first
 * frame is one pattern byte (1 XX, 2 IK) then Noise message 1; every other
 * frame is one Noise message: handshake messages carry the certificate in
 * their encrypted payload (IK 1 and 2; XX 3 only: XX message 2 carries
 * nothing), then transport messages (ChaChaPoly with the implicit, in-order
 * nonce). In XX the responder's first transport message is its certificate,
 * sent only once the initiator's (message 3) has been checked, so a refused
 * initiator learns nothing; the initiator is established (and may send) only
 * once it has checked that certificate. A message is at most
 * MESH_STREAM_MAX_MSG bytes of plaintext.
 *
 * A stream that fails (bad frame, a message that does not authenticate, a
 * certificate refused) stays failed: every call answers the same negative
 * errno and mesh_stream_error() says why; the caller closes the socket. An IK
 * stream refused by a responder whose key changed fails on the initiator's
 * side when the responder closes: reconnect without the key (XX). */
#ifndef IPPOC_MESH_STREAM_H
#define IPPOC_MESH_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh/session.h"

#define MESH_STREAM_MAX_MSG (65535 - 16)

struct mesh_stream;
typedef void (*mesh_stream_msg_fn)(void *ctx, const uint8_t *data, size_t len);

/* cfg as for mesh_session_new (node, cert, fleet_pk, revoked, wall_clock are
 * used; revoked is copied here, so the caller locks its list only for this
 * call, and the stream never reads it again). initiator: we connected; peer_pk: the responder's Ed25519 key for IK,
 * NULL for XX (initiator only). The initiator's first frame is pending at once. */
int mesh_stream_new(const mesh_session_config *cfg, bool initiator, const uint8_t *peer_pk,
                    struct mesh_stream **out, char *err, size_t errlen);
void mesh_stream_free(struct mesh_stream *st);
void mesh_stream_on_message(struct mesh_stream *st, mesh_stream_msg_fn fn, void *ctx);
/* Bytes read from the socket; complete messages go to the callback. */
int mesh_stream_feed(struct mesh_stream *st, const uint8_t *data, size_t len);
/* The bytes waiting to be written (pointer valid until the next call). */
size_t mesh_stream_pending(const struct mesh_stream *st, const uint8_t **data);
void mesh_stream_consume(struct mesh_stream *st, size_t n);
/* Queues a message once established: -ENOTCONN before, -EMSGSIZE over the limit. */
int mesh_stream_send(struct mesh_stream *st, const uint8_t *data, size_t len);
bool mesh_stream_established(const struct mesh_stream *st);
/* The peer's verified certificate once established, else NULL. */
const mesh_identity_cert *mesh_stream_peer(const struct mesh_stream *st);
/* The reason of the failure, "" when none. */
const char *mesh_stream_error(const struct mesh_stream *st);

#endif
