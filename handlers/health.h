/*
 * health.h: GET /healthz (the process answers) and GET /readyz (the store is loaded and
 * reachable, else 503 not-ready). Thread-safe.
 */
#ifndef R53REG_HANDLERS_HEALTH_H
#define R53REG_HANDLERS_HEALTH_H

#include "handlers/api.h"

void api_healthz(const struct api_request *req, struct api_response *res);
void api_readyz(const struct api_request *req, struct api_response *res);

#endif
