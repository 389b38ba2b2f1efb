/*
 * changes.h: accepted changes (?wait=none) and GET /changes/{id}.
 *
 * A mutation sent with ?wait=none is answered 202 at once with a change id; its outcome is
 * kept in a process-wide table under that id: "queued" until every mutation of the request
 * completed, then "committed" (every item succeeded or had nothing to do) or "failed" (at
 * least one did not; the others were committed), with the answer the synchronous request
 * would have got ("http_status", "result") and the store's change id.
 *
 * Ids are 128 random bits (OpenSSL RAND_bytes) in 32 lowercase hex digits. The table keeps
 * at most API_CHANGES_MAX_ENTRIES entries, none older than API_CHANGES_MAX_AGE_S seconds and
 * at most API_CHANGES_MAX_BYTES bytes of stored answers; the oldest go first, then GET
 * answers 404 not-found. The table is per process (a replica knows only its own changes)
 * and is not persisted.
 *
 * INSYNC is not tracked here: polling Route 53's GetChange for every accepted change would
 * spend the account's 5 calls/s that the committer needs. "route53_change_id" names the
 * change for a GetChange of one's own, and ?wait=insync on POST/DELETE /backends/{ip}
 * waits for it.
 *
 * Thread-safety: every function may be called from any thread (one mutex guards the table;
 * no lock is held while calling into the registry).
 */
#ifndef R53REG_HANDLERS_CHANGES_H
#define R53REG_HANDLERS_CHANGES_H

#include <jansson.h>
#include <stddef.h>

#include "handlers/api.h"
#include "registry/registry.h"
#include "util/ip.h"

#define API_CHANGE_ID_LEN 32 /* hex digits */
#define API_CHANGES_MAX_ENTRIES 100000
#define API_CHANGES_MAX_AGE_S 3600
#define API_CHANGES_MAX_BYTES ((size_t)128 << 20)

/*
 * Start a change for the request req (its method and path are kept): a new "queued" entry.
 * Writes its id (API_CHANGE_ID_LEN digits and a NUL) into id.
 */
void api_changes_create(const struct api_request *req, char id[API_CHANGE_ID_LEN + 1]);

/*
 * The change id is done. result (a reference is taken over; may be NULL) is the body the
 * synchronous request would have answered with http_status; failed selects "failed" over
 * "committed"; store_change_id (may be NULL or "") is the store's id of the (last) change
 * made. An id no longer in the table (evicted meanwhile) is ignored.
 */
void api_changes_finish(const char *id, int failed, int http_status, json_t *result,
                        const char *store_change_id);

/* Fill res with the 202 Accepted answer for change id: {"change_id", "status": "queued",
 * "href"} and a Location header naming /changes/<id>. */
void api_changes_accepted(struct api_response *res, const char *id);

/*
 * ?wait=none on POST or DELETE /backends/{ip}: create a change, submit op for ip (already
 * validated) to the registry and fill res with the 202. The change's result is what the
 * synchronous request would have answered: the placement (201/200) or the problem.
 */
void api_changes_accept(const struct api_request *req, struct api_response *res, enum reg_op op,
                        const struct ip_addr *ip);

/* GET /changes/{id}: 200 with the change, 404 not-found for an unknown or expired id. */
void api_changes_get(const struct api_request *req, struct api_response *res);

/* Tests: change the limits (0 keeps a limit as it is) and evict what exceeds them now. */
void api_changes_set_limits(size_t max_entries, unsigned max_age_s, size_t max_bytes);

#endif
