/*
 * cache.c: one-entry caches of rendered answers, keyed by the registry generation (see
 * reg_generation(): it changes on every committed change and never repeats). The generation is
 * read before rendering, so a cached text shows at least that generation; a reader whose
 * generation differs renders anew. One mutex per cache; rendering happens outside it.
 */
#include "handlers/cache.h"

#include <stdlib.h>
#include <string.h>

#include "registry/registry.h"
#include "util/xalloc.h"

/* A copy of the cached text when it was rendered at generation gen, else NULL. */
static char *cache_get(struct api_cache *c, unsigned long long gen, size_t *len)
{
    char *copy = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->text && c->gen == gen) {
        copy = xmalloc(c->len + 1);
        memcpy(copy, c->text, c->len + 1);
        *len = c->len;
    }
    pthread_mutex_unlock(&c->lock);
    return copy;
}

/* Remember text (copied) as rendered at generation gen. */
static void cache_put(struct api_cache *c, unsigned long long gen, const char *text,
                      size_t len)
{
    char *copy = xmalloc(len + 1);
    memcpy(copy, text, len);
    copy[len] = '\0';
    pthread_mutex_lock(&c->lock);
    free(c->text);
    c->text = copy;
    c->len = len;
    c->gen = gen;
    pthread_mutex_unlock(&c->lock);
}

void api_cache_serve(struct api_cache *c, const struct api_request *req,
                     struct api_response *res,
                     void (*render)(const struct api_request *, struct api_response *))
{
    unsigned long long gen = reg_generation(req->reg);
    res->raw = cache_get(c, gen, &res->raw_len);
    if (res->raw) {
        res->status = 200;
        res->content_type = "application/json";
        return;
    }
    render(req, res);
    if (res->status != 200 || !res->body)
        return;
    res->raw = json_dumps(res->body, JSON_COMPACT);
    res->raw_len = strlen(res->raw);
    json_decref(res->body);
    res->body = NULL;
    cache_put(c, gen, res->raw, res->raw_len);
}
