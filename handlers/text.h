/*
 * text.h: a rendered body shared by several answers (the watches woken by one change are
 * answered from one render). Reference counted; the server sends from it and drops its
 * reference when the connection is done with it.
 *
 * Thread-safety: references may be taken and dropped from any thread.
 */
#ifndef R53REG_HANDLERS_TEXT_H
#define R53REG_HANDLERS_TEXT_H

#include <stdatomic.h>
#include <stddef.h>

struct api_text {
    atomic_int refs;
    size_t len;   /* bytes of data, the final newline included */
    char data[];  /* the body as sent, NUL-terminated after len */
};

/* A new text holding s[0..len) followed by a newline (the server ends every body with one),
 * with one reference. */
struct api_text *api_text_new(const char *s, size_t len);
struct api_text *api_text_ref(struct api_text *t);
void api_text_unref(struct api_text *t); /* NULL: nothing */

/* The strong ETag of a body: a quoted 64-bit FNV-1a hash of its bytes, written into
 * out[0..24). Replicas rendering the same bytes give the same tag. */
void api_etag(const char *s, size_t len, char out[24]);

#endif
