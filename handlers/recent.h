/*
 * recent.h: the last API_RECENT_MAX changes, for GET /status: one entry per audit line
 * (server/httpd.c log_audit) and per change the registry made on its own (a health check
 * moving a backend, a lease running out), newest last in a ring of fixed size, and apart
 * from them the last API_RECENT_REFUSALS refused requests (4xx, 5xx), so refusals never push
 * changes out. The server
 * feeds it; the status handler reads it. Process-wide, like metrics_default() (util/metrics.h):
 * a process that runs several servers (the tests) shares one ring.
 *
 * Thread-safety: both functions may be called from any thread at once (one mutex; no
 * allocation under it).
 */
#ifndef R53REG_HANDLERS_RECENT_H
#define R53REG_HANDLERS_RECENT_H

#include <jansson.h>
#include <stddef.h>

#include "registry/registry.h"

#define API_RECENT_MAX 200     /* changes kept */
#define API_RECENT_REFUSALS 50 /* refused requests kept, apart from the changes */

/*
 * Note one change (every string is copied, truncated to fit; NULL reads as ""):
 *   method     the request method ("POST", "DELETE", ...)
 *   path       the request path as the audit line quotes it
 *   target     the one address acted on, or "" / "-" (a list, or none)
 *   items      a list request's address count, or -1 (not a list)
 *   status     the HTTP status answered
 *   token      the bearer token's name; "-" or "" when anonymous
 *   caller     the caller's address, "-" when unknown
 *   change_id  the store's change id(s), comma separated, or ""
 *   aborted    the client never got the answer
 */
void api_recent_note(const char *method, const char *path, const char *target, long items,
                     int status, const char *token, const char *caller, const char *change_id,
                     int aborted);

/* Note a change the registry made on its own (a health check, a lease): a reg_event_hook_fn
 * (registry.h) the server installs. */
void api_recent_event(const struct reg_event *ev);

/*
 * The notes as a new JSON array, newest first, at most max of them: {at (RFC 3339 UTC with
 * milliseconds), method, path and status (API changes) or event (the registry's own:
 * "taken out of DNS", "back in DNS", "lease expired"), target (absent for a list), items
 * (lists only), who (the token name, "anonymous", "health check" or "lease"), caller (absent
 * when unknown), change_id (absent when none), aborted (only when true)}. The caller owns the reference.
 */
json_t *api_recent_json(size_t max);

#endif
