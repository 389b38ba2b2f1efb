/*
 * request.h: checks on a request that several handlers share: whether its body is JSON,
 * whether its caller may change an address (a self token, --allow-cidr) and whether an
 * address may be registered at all (--allow-special); docs/security.md.
 *
 * Thread-safety: every function is pure.
 */
#ifndef R53REG_HANDLERS_REQUEST_H
#define R53REG_HANDLERS_REQUEST_H

#include <stddef.h>

#include "handlers/api.h"
#include "util/ip.h"

/* Is the Content-Type application/json (parameters such as charset allowed)? NULL: no. */
int api_media_is_json(const char *content_type);

/*
 * May req change ip (registering: add it, else remove it)? NULL when it may; otherwise why
 * not, one sentence naming the rule (a self token's caller address, --allow-cidr) written
 * into why[0..n), and why is returned.
 */
const char *api_change_refusal(const struct api_request *req, const struct ip_addr *ip,
                               int registering, char *why, size_t n);

/*
 * May ip be registered at all? NULL when it may (it is not loopback, link-local or in
 * 0.0.0.0/8, or req->allow_special); otherwise why not, one sentence naming the range and
 * --allow-special written into why[0..n), and why is returned. Registering such an address
 * would let a caller point the health checks at this host and read the result. Only
 * registrations are checked: removing, draining and looking up such an address stay allowed.
 * The caller answers 400 RC_SPECIAL_ADDRESS.
 */
const char *api_special_refusal(const struct api_request *req, const struct ip_addr *ip, char *why,
                                size_t n);

#endif
