#include "cpool64tls.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

struct cpool64_tls {
    SSL *ssl;
    BIO *original;   /* libpq's BIO (rbio == wbio), one reference held by us */
    BIO *rbio;       /* memory BIO: ciphertext from the socket (owned by ssl) */
    BIO *wbio;       /* memory BIO: ciphertext to the socket (owned by ssl) */
    char error[256]; /* last error, NUL-terminated */
};

/* OpenSSL's I/O functions take int lengths. */
#define CHUNK_MAX ((size_t)INT_MAX / 2)

static void record_error(cpool64_tls *s, const char *what, int ssl_error) {
    size_t used = (size_t)snprintf(s->error, sizeof s->error, "%s (SSL_get_error=%d)", what, ssl_error);
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        if (used + 3 >= sizeof s->error) continue; /* drain the queue anyway */
        s->error[used++] = ':';
        s->error[used++] = ' ';
        ERR_error_string_n(e, s->error + used, sizeof s->error - used);
        used += strlen(s->error + used);
    }
}

cpool64_tls *cpool64_tls_attach(struct pg_conn *conn) {
    if (conn == NULL || PQsslInUse(conn) != 1) return NULL;
    SSL *ssl = (SSL *)PQsslStruct(conn, "OpenSSL");
    if (ssl == NULL) return NULL;
    BIO *original = SSL_get_rbio(ssl);
    /* libpq installs one custom socket BIO as both read and write BIO. */
    if (original == NULL || SSL_get_wbio(ssl) != original) return NULL;

    cpool64_tls *s = calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    BIO *rbio = BIO_new(BIO_s_mem());
    BIO *wbio = BIO_new(BIO_s_mem());
    if (rbio == NULL || wbio == NULL || BIO_up_ref(original) != 1) {
        BIO_free(rbio);
        BIO_free(wbio);
        free(s);
        return NULL;
    }
    /* An empty read BIO means "retry later" (WANT_READ), not EOF. */
    BIO_set_mem_eof_return(rbio, -1);
    BIO_set_mem_eof_return(wbio, -1);

    s->ssl = ssl;
    s->original = original;
    s->rbio = rbio;
    s->wbio = wbio;
    /* Consumes one reference of rbio and of wbio; drops the SSL's reference to
       `original` (ours keeps it alive). */
    SSL_set_bio(ssl, rbio, wbio);
    return s;
}

void cpool64_tls_detach(cpool64_tls *s) {
    if (s == NULL) return;
    /* rbio == wbio == original: consumes our single reference; frees the
       memory BIOs (their only references are the SSL's). */
    SSL_set_bio(s->ssl, s->original, s->original);
    /* Do not leave errors of this session in the thread's queue for libpq. */
    ERR_clear_error();
    free(s);
}

int cpool64_tls_feed(cpool64_tls *s, const void *ciphertext, size_t len) {
    if (s == NULL || (ciphertext == NULL && len > 0)) return CPOOL64_TLS_BAD_ARGUMENT;
    const unsigned char *p = ciphertext;
    while (len > 0) {
        int n = len > CHUNK_MAX ? (int)CHUNK_MAX : (int)len;
        int w = BIO_write(s->rbio, p, n);
        if (w <= 0) {
            record_error(s, "BIO_write to memory BIO failed", 0);
            return CPOOL64_TLS_BAD_ARGUMENT;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int cpool64_tls_read(cpool64_tls *s, void *buf, size_t cap) {
    if (s == NULL || buf == NULL || cap == 0) return CPOOL64_TLS_BAD_ARGUMENT;
    int n = cap > CHUNK_MAX ? (int)CHUNK_MAX : (int)cap;
    ERR_clear_error();
    int r = SSL_read(s->ssl, buf, n);
    if (r > 0) return r;
    int e = SSL_get_error(s->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return CPOOL64_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        /* Cannot happen with a memory write BIO (it never refuses bytes). */
        record_error(s, "SSL_read wants to write", e);
        return CPOOL64_TLS_ERROR;
    case SSL_ERROR_ZERO_RETURN:
        return CPOOL64_TLS_CLOSED;
    default:
        record_error(s, "SSL_read failed", e);
        return CPOOL64_TLS_ERROR;
    }
}

int cpool64_tls_write(cpool64_tls *s, const void *plaintext, size_t len) {
    if (s == NULL || (plaintext == NULL && len > 0)) return CPOOL64_TLS_BAD_ARGUMENT;
    const unsigned char *p = plaintext;
    while (len > 0) {
        int n = len > CHUNK_MAX ? (int)CHUNK_MAX : (int)len;
        ERR_clear_error();
        int r = SSL_write(s->ssl, p, n);
        if (r > 0) {
            p += r;
            len -= (size_t)r; /* partial writes only if SSL_MODE_ENABLE_PARTIAL_WRITE */
            continue;
        }
        int e = SSL_get_error(s->ssl, r);
        if (e == SSL_ERROR_WANT_READ) {
            record_error(s, "SSL_write wants to read (renegotiation?)", e);
            return CPOOL64_TLS_WRITE_WANTS_READ;
        }
        record_error(s, "SSL_write failed", e);
        return CPOOL64_TLS_ERROR;
    }
    return 0;
}

size_t cpool64_tls_pending_output(const cpool64_tls *s) {
    return s == NULL ? 0 : BIO_ctrl_pending(s->wbio);
}

size_t cpool64_tls_drain(cpool64_tls *s, void *buf, size_t cap) {
    if (s == NULL || buf == NULL) return 0;
    size_t total = 0;
    unsigned char *p = buf;
    while (total < cap) {
        size_t want = cap - total;
        int n = want > CHUNK_MAX ? (int)CHUNK_MAX : (int)want;
        int r = BIO_read(s->wbio, p + total, n);
        if (r <= 0) break;
        total += (size_t)r;
    }
    return total;
}

size_t cpool64_tls_pending_input(const cpool64_tls *s) {
    return s == NULL ? 0 : BIO_ctrl_pending(s->rbio);
}

size_t cpool64_tls_pending_plaintext(const cpool64_tls *s) {
    if (s == NULL) return 0;
    int n = SSL_pending(s->ssl);
    return n > 0 ? (size_t)n : 0;
}

int cpool64_tls_shutdown(cpool64_tls *s) {
    if (s == NULL) return CPOOL64_TLS_BAD_ARGUMENT;
    ERR_clear_error();
    int r = SSL_shutdown(s->ssl);
    if (r >= 0) return 0; /* 0: close_notify queued; 1: both directions done */
    int e = SSL_get_error(s->ssl, r);
    if (e == SSL_ERROR_WANT_READ) return 0; /* sent; waiting for the peer's is fine */
    record_error(s, "SSL_shutdown failed", e);
    return CPOOL64_TLS_ERROR;
}

int cpool64_tls_key_update(cpool64_tls *s, int request_peer) {
    if (s == NULL) return CPOOL64_TLS_BAD_ARGUMENT;
    ERR_clear_error();
    if (SSL_version(s->ssl) < TLS1_3_VERSION) {
        snprintf(s->error, sizeof s->error, "key update needs TLS 1.3");
        return CPOOL64_TLS_ERROR;
    }
    if (SSL_key_update(s->ssl, request_peer ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED) != 1) {
        record_error(s, "SSL_key_update failed", 0);
        return CPOOL64_TLS_ERROR;
    }
    /* Write the KeyUpdate message into the write BIO now instead of with the
       next application data. */
    int r = SSL_do_handshake(s->ssl);
    if (r != 1) {
        int e = SSL_get_error(s->ssl, r);
        if (e != SSL_ERROR_WANT_READ) {
            record_error(s, "SSL_do_handshake (key update) failed", e);
            return CPOOL64_TLS_ERROR;
        }
    }
    return 0;
}

int cpool64_tls_protocol_version(const cpool64_tls *s) {
    return s == NULL ? 0 : SSL_version(s->ssl);
}

size_t cpool64_tls_error_string(const cpool64_tls *s, char *buf, size_t cap) {
    if (buf == NULL || cap == 0) return 0;
    const char *msg = (s == NULL) ? "no TLS session" : (s->error[0] ? s->error : "no error");
    size_t len = strlen(msg);
    if (len >= cap) len = cap - 1;
    memcpy(buf, msg, len);
    buf[len] = '\0';
    return len;
}
