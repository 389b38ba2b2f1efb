/*
 * bulk.h: the JSON list endpoints (docs/design-group-commit.md describes them).
 *
 * POST /backends registers every listed IP, DELETE /backends deregisters them, PUT /backends
 * makes the registered set (both types) equal to the listed one. The body is
 * {"backends": [ip...]} (POST and DELETE also take a bare array; PUT also "allow_empty"),
 * Content-Type application/json, at most API_BULK_MAX_ITEMS items. Every item is validated
 * before anything is submitted: one bad item refuses the whole request (400 with an "errors"
 * list). The answer (200, per-item results in request order) comes once every item completed;
 * with ?wait=none it is 202 at once and the answer is kept as a change (changes.h).
 *
 * Thread-safety: every handler may run on any thread at once.
 */
#ifndef R53REG_HANDLERS_BULK_H
#define R53REG_HANDLERS_BULK_H

#include "handlers/api.h"

#define API_BULK_MAX_ITEMS 10000

void api_backends_register_bulk(const struct api_request *req, struct api_response *res);
void api_backends_deregister_bulk(const struct api_request *req, struct api_response *res);
void api_backends_replace(const struct api_request *req, struct api_response *res);

#endif
