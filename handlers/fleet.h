/*
 * fleet.h: GET /fleet/peer and GET /fleet/leases, the endpoints replicas started with the
 * same --peers ask each other (docs/design-replicas.md, "Peers"). The server lets only the
 * peer token through (--peer-token); without --peers both answer 404 not-found. Thread-safe.
 *
 * GET /fleet/peer: who this replica is ({instance, version, started, fleet_size, throttle}),
 * from req->fleet->describe.
 * GET /fleet/leases?ips=a,b,...: per IP (at most API_FLEET_MAX_IPS, canonical text), how many
 * ms ago this replica last heard a sign of life of it (null: never) and its lease here (0:
 * none): {"instance": id, "leases": [{"ip", "heard_ms_ago", "lease_seconds"}...]}, in the
 * order asked. A malformed list is a 400 problem.
 */
#ifndef R53REG_HANDLERS_FLEET_H
#define R53REG_HANDLERS_FLEET_H

#include "handlers/api.h"

#define API_FLEET_MAX_IPS 1000

void api_fleet_peer(const struct api_request *req, struct api_response *res);
void api_fleet_leases(const struct api_request *req, struct api_response *res);

#endif
