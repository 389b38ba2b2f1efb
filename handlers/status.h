/*
 * status.h: GET /status, one read-only JSON document for an operator's status page (the
 * /ui page reads it): the registry's index, totals per type, the Route 53 budget, the
 * committer, replicas and resync, and the recent changes made through the API. Needs no
 * authorization of its own (a read). Thread-safe.
 */
#ifndef R53REG_HANDLERS_STATUS_H
#define R53REG_HANDLERS_STATUS_H

#include "handlers/api.h"

/* Fills res with 200 and the document (shape: openapi.yaml, schema Status). Never fails. */
void api_status(const struct api_request *req, struct api_response *res);

#endif
