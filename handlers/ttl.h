/*
 * ttl.h: PUT /ttl, moving every weighted group of the name to another TTL (reg_set_ttl).
 * The body is {"ttl": N} with N in 0..2147483647, Content-Type application/json. 200 with an
 * account of each group; 422 group-too-large when a group cannot move in one atomic call
 * (nothing is written); 400/415 for a bad body. Synchronous: the store calls are made on the
 * worker thread that serves the request (a rare, deliberate operation). Thread-safe.
 */
#ifndef R53REG_HANDLERS_TTL_H
#define R53REG_HANDLERS_TTL_H

#include "handlers/api.h"

#define API_TTL_MAX 2147483647LL /* Route 53's largest TTL */

void api_ttl_set(const struct api_request *req, struct api_response *res);

#endif
