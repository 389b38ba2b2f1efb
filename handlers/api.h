/*
 * api.h: the interface between the HTTP server and the REST handlers: the request and
 * response every handler takes, parked answers (api_async_complete, defined by the server)
 * and problem answers (api_problem, problem.c). Each resource's handlers are declared in its
 * own header (backends.h, bulk.h, buckets.h, changes.h, health.h, metrics.h), which the
 * router includes.
 *
 * The server parses HTTP, checks authorization and body limits, routes, and calls one handler
 * per resource and method. A handler validates its input, calls the registry, and fills an
 * api_response with a status and a JSON body (never NULL). Handlers know nothing of
 * libmicrohttpd and never talk to AWS. All handlers are thread-safe.
 */
#ifndef R53REG_HANDLERS_API_H
#define R53REG_HANDLERS_API_H

#include <jansson.h>
#include <stddef.h>

#include "util/cidr.h"
#include "util/ip.h"
#include "util/rc.h"

struct reg_registry;
struct api_async;

/* The replicas' side channel (--peers), served under /fleet/ (handlers/fleet.h). Set by the
 * server, which owns what arg points to. */
struct api_fleet {
    json_t *(*describe)(void *arg); /* GET /fleet/peer's answer: a new reference */
    void *arg;
};

struct api_request {
    const char *method;
    const char *path;   /* raw path as received (not percent-decoded) */
    const char *param;  /* the {ip} path segment, raw, or NULL */
    size_t param_len;
    const char *body;   /* may be NULL */
    size_t body_len;
    const char *request_id;
    const char *wait;            /* the ?wait= query value, raw, or NULL */
    unsigned insync_timeout_ms;  /* bound for ?wait=insync */
    struct reg_registry *reg;
    struct api_async *async;     /* see API_PENDING */
    const char *content_type;    /* the Content-Type header as received, or NULL when absent */
    const char *ips;             /* the ?ips= query value (GET /fleet/leases), or NULL */
    const char *index;           /* the ?index= query value (watches: watch.h), or NULL */
    const char *detail;          /* the ?detail= query value (GET /backends), or NULL */
    const char *if_none_match;   /* the If-None-Match header, or NULL */
    const struct api_fleet *fleet; /* NULL: no --peers (the /fleet/ endpoints answer 404) */

    /* Who asks, set by the server (docs/security.md). The server has already refused what
     * needs no target to decide (no/invalid token, read scope, PUT with a self token); the
     * handlers check each address a mutation changes with api_change_refusal() (request.h). */
    const char *token_name;       /* the bearer token's name, or NULL when anonymous */
    int self_only;                /* scope self: may change only *caller */
    const struct ip_addr *caller; /* the caller's address (TCP peer, or X-Forwarded-For from a
                                     trusted proxy), or NULL when it is not known */
    const struct cidr_set *allow_cidr; /* only these may be registered; NULL or empty: any */
    int allow_special; /* --allow-special: loopback, link-local and 0.0.0.0/8 may be registered
                          (api_special_refusal(), request.h) */
};

#define API_AUDIT_ID_MAX 160

struct api_response {
    int status;
    json_t *body;              /* owned; set by every handler unless raw or text is */
    char *raw;                 /* owned; already rendered JSON text (from a cache), or NULL */
    size_t raw_len;
    struct api_text *text;     /* a reference to a body shared by several answers (text.h),
                                  sent as it is, or NULL */
    unsigned long long index;  /* X-R53reg-Index, or 0 for none (watch.h) */
    char etag[24];             /* ETag, quoted, or "" */
    const char *content_type;  /* static string */
    char location[96];         /* Location header for 201, or "" */
    unsigned retry_after;      /* seconds for a Retry-After header (429), or 0 */

    /* For the audit line of a mutation (optional; set by the mutating handlers). */
    char audit_target[IP_TEXT_MAX]; /* the one address acted on, or "" */
    int audit_list;                 /* a list request: audit_items counts its addresses */
    size_t audit_items;
    char audit_change_id[API_AUDIT_ID_MAX]; /* the store's change id(s), comma separated */
};

/*
 * A handler that cannot answer yet (its mutation waits for the committer) leaves
 * res->status at API_PENDING and later calls api_async_complete(req->async, &res) exactly once,
 * from any thread (possibly before the handler returned). The server parks the connection
 * meanwhile without holding a thread. api_async_complete takes over res->body/res->raw.
 */
#define API_PENDING 0
void api_async_complete(struct api_async *async, struct api_response *res);

/* Fill res with an RFC 9457 problem for rc; detail may be NULL. */
void api_problem(struct api_response *res, const struct api_request *req, enum rc_code rc,
                 const char *detail);

#endif
