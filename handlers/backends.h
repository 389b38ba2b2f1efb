/*
 * backends.h: /backends (GET), /backends/{ip}, /backends/{ip}/heartbeat,
 * /backends/{ip}/drain and /backends/self[/drain]: one address at a time. The list
 * mutations of /backends are bulk.h's.
 *
 * POST and DELETE validate the address strictly (util/ip.h) and the caller's right to change
 * it (request.h), then hand the mutation to the registry and park the request (API_PENDING):
 * the answer comes when the change is committed, or with ?wait=insync once the registry's
 * insync waiter (registry/insync.h) says every name server serves it; ?wait=none answers 202
 * at once (changes.h). POST may carry {"lease_seconds": N, "check": {...}}.
 *
 * Thread-safety: every handler may run on any thread at once; all state is in the registry.
 */
#ifndef R53REG_HANDLERS_BACKENDS_H
#define R53REG_HANDLERS_BACKENDS_H

#include "handlers/api.h"

/* GET /backends/{ip}: the placement, or 404 not-registered. */
void api_backend_get(const struct api_request *req, struct api_response *res);
/* POST /backends/{ip}: 201 placed, 200 already registered (a draining one returns to
 * service). */
void api_backend_register(const struct api_request *req, struct api_response *res);
/* DELETE /backends/{ip}: 200 with what was removed, or 404 not-registered. */
void api_backend_deregister(const struct api_request *req, struct api_response *res);
/* PUT /backends/{ip}/heartbeat: renew the lease (or start --default-lease). */
void api_backend_heartbeat(const struct api_request *req, struct api_response *res);
/* POST /backends/{ip}/drain: out of DNS at once, still registered (state draining). */
void api_backend_drain(const struct api_request *req, struct api_response *res);
/* GET /backends: every registered backend, sorted by address (cached per generation). */
void api_backends_list(const struct api_request *req, struct api_response *res);
/* /backends/self: the same on the caller's own address (req->caller). */
void api_backend_get_self(const struct api_request *req, struct api_response *res);
void api_backend_register_self(const struct api_request *req, struct api_response *res);
void api_backend_deregister_self(const struct api_request *req, struct api_response *res);
void api_backend_drain_self(const struct api_request *req, struct api_response *res);
void api_backend_heartbeat_self(const struct api_request *req, struct api_response *res);

#endif
