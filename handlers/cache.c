/*
 * cache.c: one-entry caches of rendered answers, keyed by the registry generation (see
 * reg_generation(): it changes on every committed change and never repeats). The generation is
 * read before rendering, so a cached text shows at least that generation; a reader whose
 * generation differs renders anew. A hit shares the cached text (a reference, no copy) and its
 * tag. One mutex per cache; rendering happens outside it.
 */
#include "handlers/cache.h"

#include <stdlib.h>
#include <string.h>

#include "handlers/text.h"
#include "registry/registry.h"

/* A reference to the cached text when it was rendered at generation gen, else NULL. */
static struct api_text *cache_get(struct api_cache *c, unsigned long long gen, char etag[24])
{
    struct api_text *t = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->text && c->gen == gen) {
        t = api_text_ref(c->text);
        memcpy(etag, c->etag, sizeof(c->etag));
    }
    pthread_mutex_unlock(&c->lock);
    return t;
}

/* Remember t (a new reference) and its tag as rendered at generation gen. */
static void cache_put(struct api_cache *c, unsigned long long gen, struct api_text *t,
                      const char etag[24])
{
    struct api_text *old;
    pthread_mutex_lock(&c->lock);
    old = c->text;
    c->text = api_text_ref(t);
    memcpy(c->etag, etag, sizeof(c->etag));
    c->gen = gen;
    pthread_mutex_unlock(&c->lock);
    api_text_unref(old);
}

void api_cache_serve(struct api_cache *c, const struct api_request *req,
                     struct api_response *res,
                     void (*render)(const struct api_request *, struct api_response *))
{
    unsigned long long gen = reg_generation(req->reg);
    char *s;
    res->text = cache_get(c, gen, res->etag);
    if (res->text) {
        res->status = 200;
        res->content_type = "application/json";
        return;
    }
    render(req, res);
    if (res->status != 200 || !res->body)
        return;
    s = json_dumps(res->body, JSON_COMPACT);
    res->text = api_text_new(s, strlen(s));
    free(s);
    json_decref(res->body);
    res->body = NULL;
    api_etag(res->text->data, res->text->len - 1, res->etag);
    cache_put(c, gen, res->text, res->etag);
}
