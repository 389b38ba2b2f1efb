/*
 * placement.h: a backend's placement as the API renders it, in one place for every handler
 * that answers with one (backends.c, bulk.c, changes.c).
 *
 * Thread-safety: both functions may be called from any thread; neither keeps state.
 */
#ifndef R53REG_HANDLERS_PLACEMENT_H
#define R53REG_HANDLERS_PLACEMENT_H

#include <jansson.h>

#include "registry/registry.h"

/*
 * p as the API renders it: {"ip", "type", "bucket", "set_identifier", "weight", "state"},
 * "change_id" when one is set, the lease, down and drain times and the health status when p
 * has them. Returns a new reference; never NULL.
 */
json_t *api_placement_json(const struct reg_registry *reg, const struct reg_placement *p);

/*
 * Complete a mutation's placement p with what only a lookup knows (lease, health, since when
 * down or draining); p is left as it is when its address is not registered. Call with no
 * registry lock held (a completion callback qualifies).
 */
/* Unix milliseconds as an RFC 3339 UTC time with milliseconds ("2026-12-05T18:08:42.577Z"). */
json_t *api_json_time_ms(long long ms);

void api_placement_enrich(struct reg_registry *reg, struct reg_placement *p);

#endif
