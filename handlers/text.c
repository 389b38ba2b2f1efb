/* text.c: shared rendered bodies and their tags (contract: text.h). */
#include "handlers/text.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

struct api_text *api_text_new(const char *s, size_t len)
{
    struct api_text *t = xmalloc(sizeof(*t) + len + 2);
    atomic_init(&t->refs, 1);
    memcpy(t->data, s, len);
    t->data[len] = '\n';
    t->data[len + 1] = '\0';
    t->len = len + 1;
    return t;
}

struct api_text *api_text_ref(struct api_text *t)
{
    atomic_fetch_add(&t->refs, 1);
    return t;
}

void api_text_unref(struct api_text *t)
{
    if (t && atomic_fetch_sub(&t->refs, 1) == 1)
        free(t);
}

void api_etag(const char *s, size_t len, char out[24])
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    snprintf(out, 24, "\"%016llx\"", (unsigned long long)h);
}
