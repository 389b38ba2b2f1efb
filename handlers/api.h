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
#include <stddef.h>

#include "util/rc.h"

struct reg_registry;

struct api_request {
    const char *method;
    const char *path;   /* raw path as received (not percent-decoded) */
    const char *param;  /* the {ip} path segment, raw, or NULL */
    size_t param_len;
    const char *body;   /* may be NULL */
    size_t body_len;
    const char *request_id;
    struct reg_registry *reg;
};

struct api_response {
    int status;
    json_t *body;              /* owned; set by every handler */
    const char *content_type;  /* static string */
    char location[96];         /* Location header for 201, or "" */
};

/* Fill res with an RFC 9457 problem for rc; detail may be NULL. */
void api_problem(struct api_response *res, const struct api_request *req, enum rc_code rc,
                 const char *detail);

/* handlers/backends.c */
void api_backend_get(const struct api_request *req, struct api_response *res);
void api_backend_register(const struct api_request *req, struct api_response *res);
void api_backend_deregister(const struct api_request *req, struct api_response *res);
void api_backends_list(const struct api_request *req, struct api_response *res);
/* handlers/buckets.c */
void api_buckets_list(const struct api_request *req, struct api_response *res);
/* handlers/health.c */
void api_healthz(const struct api_request *req, struct api_response *res);
void api_readyz(const struct api_request *req, struct api_response *res);

#endif
