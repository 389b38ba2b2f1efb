/*
 * router.h: maps a method and a raw path to a handler. Pure and thread-safe; the table lives
 * in router.c, so the OpenAPI document and this file are the two places that list endpoints.
 */
#ifndef R53REG_SERVER_ROUTER_H
#define R53REG_SERVER_ROUTER_H

#include <stddef.h>

#include "handlers/api.h"

typedef void (*srv_handler_fn)(const struct api_request *req, struct api_response *res);

/* What a route may do, for authorization (docs/security.md). */
enum srv_access {
    SRV_ACCESS_READ,        /* GET/HEAD: no token needed */
    SRV_ACCESS_CHANGE,      /* changes the addresses it names (path or body): the handler
                               checks each against the token's scope and --allow-cidr */
    SRV_ACCESS_CHANGE_SELF, /* changes the caller's own address (/backends/self) */
    SRV_ACCESS_REPLACE,     /* may change any address (PUT /backends): admin only */
    SRV_ACCESS_FLEET,       /* replicas asking each other (/fleet/): the peer token only
                               (--peer-token); reads nothing else accepts */
};

struct srv_route_match {
    srv_handler_fn fn; /* NULL: no handler (see path_found) */
    int path_found;    /* the path exists, the method does not: 405 with allow */
    int mutating;      /* the handler changes state: needs authorization (as do
                          SRV_ACCESS_FLEET routes, which change nothing) */
    enum srv_access access;
    char allow[64];    /* "GET, HEAD, POST" for the path, when path_found */
    const char *pattern; /* the route's path pattern ("/backends/{ip}"), a metric label;
                            "unmatched" when no path matched */
    const char *param; /* the {ip} or {id} segment inside path, or NULL */
    size_t param_len;
};

/* Route method + path (raw, without the query). HEAD is routed like GET. */
void srv_route(const char *method, const char *path, struct srv_route_match *m);

#endif
