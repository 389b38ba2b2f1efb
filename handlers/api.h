/*
 * api.h: the interface between the HTTP server and the REST handlers.
 *
 * The server parses HTTP, checks authorization and body limits, routes, and calls one handler
 * per resource and method. A handler validates its input, calls the registry, and fills an
 * api_response with a status and a JSON body (never NULL). Handlers know nothing of
 * libmicrohttpd and never talk to AWS. All handlers are thread-safe.
 */
#ifndef R53REG_HANDLERS_API_H
#define R53REG_HANDLERS_API_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>

#include "util/cidr.h"
#include "util/ip.h"
#include "util/rc.h"

struct reg_registry;
struct api_async;

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

    /* Who asks, set by the server (docs/security.md). The server has already refused what
     * needs no target to decide (no/invalid token, read scope, PUT with a self token); the
     * handlers check each address a mutation changes with api_change_refusal(). */
    const char *token_name;       /* the bearer token's name, or NULL when anonymous */
    int self_only;                /* scope self: may change only *caller */
    const struct ip_addr *caller; /* the caller's address (TCP peer, or X-Forwarded-For from a
                                     trusted proxy), or NULL when it is not known */
    const struct cidr_set *allow_cidr; /* only these may be registered; NULL or empty: any */
};

#define API_AUDIT_ID_MAX 160

struct api_response {
    int status;
    json_t *body;              /* owned; set by every handler unless raw is */
    char *raw;                 /* owned; already rendered JSON text (from a cache), or NULL */
    size_t raw_len;
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

/*
 * A one-entry cache of a rendered read-only answer, keyed by reg_generation(): GET /buckets
 * and GET /backends render once per change instead of once per request. Thread-safe.
 */
struct api_cache {
    pthread_mutex_t lock; /* PTHREAD_MUTEX_INITIALIZER */
    /* guarded by lock */
    unsigned long long gen;
    char *text;
    size_t len;
};
#define API_CACHE_INIT {PTHREAD_MUTEX_INITIALIZER, 0, NULL, 0}
/* Serve a JSON body through cache c: on a hit res->raw is set, on a miss render() fills
 * res->body, which is then rendered into res->raw and cached. */
void api_cache_serve(struct api_cache *c, const struct api_request *req,
                     struct api_response *res,
                     void (*render)(const struct api_request *, struct api_response *));

/* handlers/backends.c */
void api_backend_get(const struct api_request *req, struct api_response *res);
void api_backend_register(const struct api_request *req, struct api_response *res);
void api_backend_deregister(const struct api_request *req, struct api_response *res);
void api_backend_heartbeat(const struct api_request *req, struct api_response *res);
void api_backend_drain(const struct api_request *req, struct api_response *res);
void api_backend_drain_self(const struct api_request *req, struct api_response *res);

/* Is the Content-Type application/json (parameters such as charset allowed)? NULL: no. */
int api_media_is_json(const char *content_type);
void api_backends_list(const struct api_request *req, struct api_response *res);
/* /backends/self: the same on the caller's own address (req->caller). */
void api_backend_get_self(const struct api_request *req, struct api_response *res);
void api_backend_register_self(const struct api_request *req, struct api_response *res);
void api_backend_deregister_self(const struct api_request *req, struct api_response *res);
/*
 * May req change ip (registering: add it, else remove it)? NULL when it may; otherwise why
 * not, one sentence naming the rule (a self token's caller address, --allow-cidr) written
 * into why[0..n). Pure, thread-safe.
 */
const char *api_change_refusal(const struct api_request *req, const struct ip_addr *ip,
                               int registering, char *why, size_t n);
/*
 * handlers/bulk.c: the JSON list endpoints (docs/design-group-commit.md "Also in this issue").
 * POST /backends registers every listed IP, DELETE /backends deregisters them, PUT /backends
 * makes the registered set (both types) equal to the listed one. The body is
 * {"backends": [ip...]} (POST and DELETE also take a bare array; PUT also "allow_empty"),
 * Content-Type application/json, at most API_BULK_MAX_ITEMS items. Every item is validated
 * before anything is submitted: one bad item refuses the whole request (400 with an "errors"
 * list). The answer (200, per-item results in request order) comes once every item completed;
 * with ?wait=none it is 202 at once and the answer is kept as a change (handlers/changes.h).
 */
#define API_BULK_MAX_ITEMS 10000
void api_backends_register_bulk(const struct api_request *req, struct api_response *res);
void api_backends_deregister_bulk(const struct api_request *req, struct api_response *res);
void api_backends_replace(const struct api_request *req, struct api_response *res);
/* A placement as the API renders it ({"ip", "type", "bucket", "set_identifier", "weight",
 * "state"} and "change_id" when one is set). New reference; never NULL. */
struct reg_placement;
json_t *api_placement_json(const struct reg_registry *reg, const struct reg_placement *p);
/* Complete a mutation's placement with what only a lookup knows (lease, health, since when
 * down or draining). Call with no registry lock held (completions qualify). */
void api_placement_enrich(struct reg_registry *reg, struct reg_placement *p);
/* handlers/buckets.c */
void api_buckets_list(const struct api_request *req, struct api_response *res);
/* handlers/health.c */
void api_healthz(const struct api_request *req, struct api_response *res);
void api_readyz(const struct api_request *req, struct api_response *res);

#endif
