/*
 * watch.h: reads that say what they show and can wait for it to change (docs/design-operator.md,
 * "Watches"). Every answer carries X-R53reg-Index (the registry generation read before the
 * render) and an ETag; If-None-Match with the current tag answers 304; ?index=N parks the
 * request while the index is N, If-None-Match with ?wait= while the tag is unchanged, for at
 * most ?wait= (default 5 minutes, at most 10). Parked requests hold no thread: one hub thread
 * answers every watch a change concerns, rendering each distinct read once.
 *
 * Thread-safety: every function may be called from any thread.
 */
#ifndef R53REG_HANDLERS_WATCH_H
#define R53REG_HANDLERS_WATCH_H

#include "handlers/api.h"

/* Renders a read into res at once (never API_PENDING); it reads only req's reg, path, param,
 * detail, caller and request_id. */
typedef void (*api_render_fn)(const struct api_request *req, struct api_response *res);

#define API_WATCH_DEFAULT_MS (5u * 60 * 1000)
#define API_WATCH_MAX_MS (10u * 60 * 1000)

/* Serve a read through render: label it, answer 304 when If-None-Match matches, or park it
 * as ?index= / ?wait= ask. A malformed index or wait answers 400. per_caller: the read
 * depends on req->caller (/backends/self), so watches of different callers are rendered
 * apart; other watches of one read share one render. */
void api_watch_serve(const struct api_request *req, struct api_response *res,
                     api_render_fn render, int per_caller);

/* Check ?index= and ?wait= without serving: 0, or -1 with res holding the 400. */
int api_watch_check(const struct api_request *req, struct api_response *res);

/* Label an answer rendered at generation gen (read before the render) that could not go
 * through api_watch_serve: its index, and for a 200 its tag and If-None-Match's 304. */
void api_watch_label(const struct api_request *req, struct api_response *res,
                     unsigned long long gen);

/* How many watches are parked now. */
long api_watch_parked(void);

/* Answer every parked watch now with what is current, and stop the hub's thread; from then
 * on watches answer at once, until api_watch_start(). For the server's shutdown. */
void api_watch_shutdown(void);
/* Let watches park (again): the server's start. */
void api_watch_start(void);

#endif
