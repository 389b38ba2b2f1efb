/*
 * httpd.h: the HTTP front end (libmicrohttpd). It owns connections, limits, authorization,
 * the caller's address, per-client rate limits, TLS, request ids, the request and audit log
 * and problem responses for protocol-level errors; everything else is the handlers'
 * (handlers/api.h). docs/security.md describes the rules.
 */
#ifndef R53REG_SERVER_HTTPD_H
#define R53REG_SERVER_HTTPD_H

#include <stddef.h>
#include <sys/socket.h>

#include "server/auth.h"
#include "util/rc.h"

struct reg_registry;
struct srv_httpd;
struct api_fleet;

struct srv_httpd_options {
    const struct sockaddr *addr; /* where to listen; port 0 picks a free port */
    socklen_t addr_len;
    unsigned threads;         /* worker threads, >= 1 */
    unsigned max_connections; /* concurrent connections */
    size_t connection_memory; /* per connection (request line + headers); 0: 8192 */
    unsigned client_timeout;  /* seconds a connection may stay idle or slow */
    size_t max_body;          /* bytes; larger bodies get 413 */
    unsigned insync_timeout_ms; /* bound for ?wait=insync */
    char *const *tokens;      /* bare bearer tokens: scope admin, named token-<n> */
    size_t ntokens;
    /* Tokens with names and scopes, after the bare ones. These and the bare ones are kept
     * across reloads. No token at all (here and in token_file): mutations are anonymous. */
    const struct srv_token *scoped_tokens;
    size_t nscoped_tokens;
    const char *token_file;        /* its tokens come last; read at start and on reload */
    const char *trusted_proxies;   /* CIDR list: peers whose X-Forwarded-For names the caller */
    const char *allow_cidr;        /* CIDR list: only these may be registered; NULL: any */
    int allow_special;             /* loopback, link-local and 0.0.0.0/8 may be registered */
    unsigned client_rps;           /* mutations per second per caller address; 0: no limit */
    unsigned client_burst;         /* bucket size; 0: 2 * client_rps */
    unsigned max_connections_per_ip; /* per TCP peer address; 0: no cap */
    const char *tls_cert;          /* PEM files: serve HTTPS (re-read on reload); NULL: HTTP */
    const char *tls_key;
    /* --peers: what GET /fleet/peer says of this replica (owned by the caller, alive until
     * srv_httpd_stop returns); NULL: the /fleet/ endpoints answer 404. peer_token: the one
     * bearer token they accept (NULL: anonymous, --allow-anonymous). */
    const struct api_fleet *fleet;
    const char *peer_token;
};

/*
 * Start serving reg. Tokens are kept as SHA-256 digests for checking (and the reloadable
 * ones' secrets, to rebuild the set on reload); the caller may wipe its copy.
 * Errors: RC_CONFIG (a bad token file, CIDR list, certificate or key) or RC_IO (cannot
 * bind, cannot read a file) with detail.
 */
enum rc_code srv_httpd_start(const struct srv_httpd_options *opt, struct reg_registry *reg,
                             struct srv_httpd **out, char *detail, size_t n);

/* The bound port (useful after asking for port 0). */
unsigned srv_httpd_port(const struct srv_httpd *h);

/*
 * SIGHUP: read the token file and the TLS certificate and key again and swap each in
 * atomically; connections stay open and requests in flight finish with what they started
 * with. A bad token file (or one that would leave no token when tokens are in use: that would
 * turn authentication off) keeps the old tokens; a bad certificate or key keeps the old pair.
 * Each outcome is logged. Returns RC_OK, or the first error with detail. Thread-safe
 * (reloads are serialized).
 */
enum rc_code srv_httpd_reload(struct srv_httpd *h, char *detail, size_t n);

/*
 * Graceful stop: answer 503 to every new request, wait up to timeout_s seconds for requests in
 * flight to finish, then stop and free. NULL is fine.
 */
void srv_httpd_stop(struct srv_httpd *h, unsigned timeout_s);

#endif
