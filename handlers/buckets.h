/*
 * buckets.h: GET /buckets, the operator's view of what DNS serves. Thread-safe; the rendered
 * answer is cached per registry generation (cache.h).
 */
#ifndef R53REG_HANDLERS_BUCKETS_H
#define R53REG_HANDLERS_BUCKETS_H

#include "handlers/api.h"

void api_buckets_list(const struct api_request *req, struct api_response *res);

#endif
