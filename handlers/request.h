/*
 * request.h: checks on a request that several handlers share: whether its body is JSON, and
 * whether its caller may change an address (a self token, --allow-cidr; docs/security.md).
 *
 * Thread-safety: both functions are pure.
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

#endif
