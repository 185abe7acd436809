/*
 * cpool64tls: relay bytes through the TLS session that libpq negotiated.
 *
 * libpq keeps the TLS session of a connection in an OpenSSL `SSL *`
 * (PQsslStruct(conn, "OpenSSL")). While pool64 relays raw protocol bytes on
 * that connection from an event loop, the SSL object is re-plumbed onto a pair
 * of memory BIOs: the event loop feeds ciphertext read from the socket into the
 * read BIO and sends whatever ciphertext appears in the write BIO. libpq's own
 * BIO is kept (one extra reference) and put back by cpool64_tls_detach, so that
 * PQfinish (Terminate + close_notify) or further libpq use works afterwards.
 *
 * Threading: a session is not thread-safe. Between cpool64_tls_attach and
 * cpool64_tls_detach, only the owner of the session may touch the PGconn's SSL
 * object, and libpq must not be used on that PGconn at all.
 *
 * All functions take plain C types. Sizes are size_t; results are int/size_t.
 */
#ifndef CPOOL64TLS_H
#define CPOOL64TLS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct pg_conn; /* libpq's PGconn; imported into Swift as OpaquePointer */

/* Opaque relay session. */
typedef struct cpool64_tls cpool64_tls;

/* Result codes (negative). Non-negative results are byte counts. */
enum {
    /* cpool64_tls_read: no complete TLS record is buffered; feed more ciphertext. */
    CPOOL64_TLS_WANT_READ = -1,
    /* cpool64_tls_read: the peer sent close_notify; no more plaintext will come. */
    CPOOL64_TLS_CLOSED = -2,
    /* A TLS/protocol error; see cpool64_tls_error_string. The session is unusable
       (but can and must still be detached). */
    CPOOL64_TLS_ERROR = -3,
    /* cpool64_tls_write: OpenSSL needs to read before it can write (TLS 1.2
       renegotiation; PostgreSQL does not renegotiate). Retry the same bytes
       after feeding more ciphertext. */
    CPOOL64_TLS_WRITE_WANTS_READ = -4,
    /* Invalid argument or out of memory. */
    CPOOL64_TLS_BAD_ARGUMENT = -5,
};

/* Attach memory BIOs to the SSL object of `conn`.
   Returns NULL if the connection does not use OpenSSL (PQsslInUse != 1) or on
   allocation failure (the SSL object is then left untouched). */
cpool64_tls *cpool64_tls_attach(struct pg_conn *conn);

/* Put libpq's original BIO back into the SSL object and free the session
   (memory BIOs, and any ciphertext still in them). After this, libpq owns the
   SSL object again: PQfinish sends Terminate and close_notify over libpq's own
   socket. libpq can also keep using the connection if the byte stream was
   quiescent at detach (no unconsumed ciphertext, no TLS record half-read, e.g.
   right after ReadyForQuery was read and nothing was sent since).
   NULL is a no-op. */
void cpool64_tls_detach(cpool64_tls *session);

/* Hand ciphertext received from the socket to OpenSSL. The memory BIO grows as
   needed, so all `len` bytes are taken. Returns 0 or CPOOL64_TLS_BAD_ARGUMENT. */
int cpool64_tls_feed(cpool64_tls *session, const void *ciphertext, size_t len);

/* Read decrypted bytes into `buf` (at most `cap`).
   Returns > 0: that many plaintext bytes; CPOOL64_TLS_WANT_READ: nothing more
   until more ciphertext is fed; CPOOL64_TLS_CLOSED; CPOOL64_TLS_ERROR.
   Call repeatedly until it returns a negative code: OpenSSL may hold decrypted
   bytes beyond `cap`. Processing post-handshake messages (TLS 1.3 tickets,
   key updates) may queue ciphertext to send: check cpool64_tls_pending_output. */
int cpool64_tls_read(cpool64_tls *session, void *buf, size_t cap);

/* Encrypt `len` plaintext bytes. With memory BIOs nothing blocks: on success
   all `len` bytes were consumed (return 0) and their records are in the write
   BIO; drain them with cpool64_tls_drain. Otherwise returns
   CPOOL64_TLS_WRITE_WANTS_READ, CPOOL64_TLS_ERROR or CPOOL64_TLS_BAD_ARGUMENT.
   A zero-length write is a no-op. */
int cpool64_tls_write(cpool64_tls *session, const void *plaintext, size_t len);

/* Number of ciphertext bytes waiting in the write BIO. */
size_t cpool64_tls_pending_output(const cpool64_tls *session);

/* Copy up to `cap` ciphertext bytes out of the write BIO (and remove them).
   Returns the number of bytes copied. */
size_t cpool64_tls_drain(cpool64_tls *session, void *buf, size_t cap);

/* Number of ciphertext bytes fed but not yet consumed by OpenSSL. */
size_t cpool64_tls_pending_input(const cpool64_tls *session);

/* Decrypted bytes buffered inside OpenSSL (SSL_pending). */
size_t cpool64_tls_pending_plaintext(const cpool64_tls *session);

/* Queue a TLS close_notify alert in the write BIO (SSL_shutdown, first half).
   Drain and send it afterwards. After this the session can no longer write,
   so libpq must not be used on the connection again (PQfinish still works
   after detach: it will not send a second close_notify; its Terminate message
   is not sent either, so send Terminate through cpool64_tls_write first).
   Returns 0 on success, CPOOL64_TLS_ERROR otherwise. */
int cpool64_tls_shutdown(cpool64_tls *session);

/* Start a TLS 1.3 key update (SSL_key_update): our sending keys change, and if
   `request_peer` is non-zero the peer is asked to update its keys too (it will
   answer with a KeyUpdate that cpool64_tls_read processes). The KeyUpdate
   message is queued in the write BIO right away: drain and send it.
   Returns 0, or CPOOL64_TLS_ERROR (e.g. TLS 1.2 session). */
int cpool64_tls_key_update(cpool64_tls *session, int request_peer);

/* Negotiated protocol version (SSL_version: 0x0304 for TLS 1.3, 0x0303 for 1.2). */
int cpool64_tls_protocol_version(const cpool64_tls *session);

/* Describe the last error of this session (OpenSSL error queue at the time it
   happened, or an explanatory text). Writes a NUL-terminated string into
   `buf` (truncated to `cap`) and returns its length. */
size_t cpool64_tls_error_string(const cpool64_tls *session, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* CPOOL64TLS_H */
