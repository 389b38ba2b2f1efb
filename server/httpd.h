/*
 * httpd.h: the HTTP front end (libmicrohttpd). It owns connections, limits, authorization,
 * request ids, the request log and problem responses for protocol-level errors; everything
 * else is the handlers' (handlers/api.h).
 */
#ifndef R53REG_SERVER_HTTPD_H
#define R53REG_SERVER_HTTPD_H

#include <stddef.h>
#include <sys/socket.h>

#include "util/rc.h"

struct reg_registry;
struct srv_httpd;

struct srv_httpd_options {
    const struct sockaddr *addr; /* where to listen; port 0 picks a free port */
    socklen_t addr_len;
    unsigned threads;         /* worker threads, >= 1 */
    unsigned max_connections; /* concurrent connections */
    size_t connection_memory; /* per connection (request line + headers); 0: 8192 */
    unsigned client_timeout;  /* seconds a connection may stay idle or slow */
    size_t max_body;          /* bytes; larger bodies get 413 */
    unsigned insync_timeout_ms; /* bound for ?wait=insync */
    char *const *tokens;      /* bearer tokens; none: mutations are anonymous */
    size_t ntokens;
};

/*
 * Start serving reg. The tokens are copied as SHA-256 digests; the caller may wipe its copy.
 * Errors: RC_IO with detail (cannot bind, ...).
 */
enum rc_code srv_httpd_start(const struct srv_httpd_options *opt, struct reg_registry *reg,
                             struct srv_httpd **out, char *detail, size_t n);

/* The bound port (useful after asking for port 0). */
unsigned srv_httpd_port(const struct srv_httpd *h);

/*
 * Graceful stop: stop accepting, answer 503 to new requests on open connections, wait up to
 * timeout_s seconds for requests in flight to finish, then stop and free. NULL is fine.
 */
void srv_httpd_stop(struct srv_httpd *h, unsigned timeout_s);

#endif
