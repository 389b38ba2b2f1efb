/*
 * tls.h: the API's certificate and key (--tls-cert, --tls-key) for libmicrohttpd's built-in
 * TLS (GnuTLS), replaceable while the daemon runs.
 *
 * libmicrohttpd 0.9.75 loads MHD_OPTION_HTTPS_MEM_CERT/KEY once, at start. Instead the server
 * passes srv_tls_retrieve as MHD_OPTION_HTTPS_CERT_CALLBACK: GnuTLS calls it during each
 * handshake, and it hands out the current credentials (certificate chain + private key).
 * srv_tls_reload() reads both files again, checks them (PEM, the key matches the certificate)
 * and swaps the current credentials atomically; a bad pair keeps the old ones. Connections
 * already established keep their session; new handshakes get the new certificate.
 *
 * Lifetime of credentials: GnuTLS does not copy what the callback returns, so a session may
 * point at old credentials after a swap. Each connection therefore holds a reference on the
 * credentials its handshake used (taken in the callback, dropped when the connection closes:
 * srv_tls_conn_close() from MHD_CONNECTION_NOTIFY_CLOSED); replaced credentials are freed at
 * a later reload once no connection holds them, or when the srv_tls is destroyed.
 *
 * Threading: the callback runs on MHD worker threads; reload on any thread; `lock` (tls.c)
 * guards which credentials are current, the references and the retired list.
 */
#ifndef R53REG_SERVER_TLS_H
#define R53REG_SERVER_TLS_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stddef.h>

#include "util/rc.h"

struct srv_tls;

/*
 * Load cert_path (PEM: the certificate, then its chain, at most 16) and key_path (PEM, not
 * encrypted). Errors: RC_IO (cannot read) or RC_CONFIG (not PEM, key does not match) with
 * detail naming the file.
 */
enum rc_code srv_tls_create(const char *cert_path, const char *key_path, struct srv_tls **out,
                            char *detail, size_t n);

/*
 * Read both files again; when they differ from the current pair and are good, make them
 * current. *changed (may be NULL) says whether the certificate changed. Errors as
 * srv_tls_create; the current credentials stay. Thread-safe.
 */
enum rc_code srv_tls_reload(struct srv_tls *t, int *changed, char *detail, size_t n);

/* A short description of the current certificate for logs: "sha256=<first 16 hex> not_after=
 * <RFC 3339>". Thread-safe. */
void srv_tls_describe(struct srv_tls *t, char *out, size_t n);

/* Free everything; only after the daemon stopped (no callback may run). NULL is fine. */
void srv_tls_destroy(struct srv_tls *t);

/* Per-connection state: the socket context the server sets at MHD_CONNECTION_NOTIFY_STARTED
 * (srv_tls_conn_open) and releases at MHD_CONNECTION_NOTIFY_CLOSED (srv_tls_conn_close). */
void *srv_tls_conn_open(struct srv_tls *t);
void srv_tls_conn_close(void *conn_ctx);

/* The MHD_OPTION_HTTPS_CERT_CALLBACK. It finds its srv_tls through the connection's socket
 * context (gnutls_session_get_ptr gives libmicrohttpd's connection). */
gnutls_certificate_retrieve_function2 srv_tls_retrieve;

#endif
