/*
 * cache.h: a one-entry cache of a rendered read-only answer, keyed by reg_generation(): GET
 * /buckets and GET /backends render once per change instead of once per request.
 *
 * Thread-safety: api_cache_serve() may be called from any thread at once; one mutex per
 * cache, and rendering happens outside it.
 */
#ifndef R53REG_HANDLERS_CACHE_H
#define R53REG_HANDLERS_CACHE_H

#include <pthread.h>
#include <stddef.h>

#include "handlers/api.h"

struct api_cache {
    pthread_mutex_t lock; /* PTHREAD_MUTEX_INITIALIZER */
    /* guarded by lock */
    unsigned long long gen;
    struct api_text *text; /* text.h */
    char etag[24];
};
#define API_CACHE_INIT {PTHREAD_MUTEX_INITIALIZER, 0, NULL, ""}

/* Serve a JSON body through cache c: on a hit res->text (a shared reference) and res->etag
 * are set, on a miss render() fills res->body, which is then rendered into a text, tagged and
 * cached. */
void api_cache_serve(struct api_cache *c, const struct api_request *req,
                     struct api_response *res,
                     void (*render)(const struct api_request *, struct api_response *));

#endif
