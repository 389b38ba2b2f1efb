/*
 * buf.c: the growable NUL-terminated string behind util/buf.h.
 *
 * Invariant: p == NULL (then len == cap == 0), or p holds len bytes and p[len] == '\0' with
 * len < cap. Every growth goes through xgrow(), which never fails (out of memory aborts).
 *
 * Threading: no global or static state; a buf belongs to its caller (see buf.h).
 */
#include "util/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

void buf_add(struct buf *b, const void *s, size_t n)
{
    b->p = xgrow(b->p, &b->cap, b->len + n + 1, 1);
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void buf_adds(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

void buf_addc(struct buf *b, char c)
{
    buf_add(b, &c, 1);
}

void buf_addf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    b->p = xgrow(b->p, &b->cap, b->len + (size_t)n + 1, 1);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

const char *buf_str(const struct buf *b)
{
    return b->p ? b->p : "";
}

char *buf_detach(struct buf *b)
{
    char *s = b->p ? b->p : xstrdup("");

    b->p = NULL;
    b->len = b->cap = 0;
    return s;
}

void buf_release(struct buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

void buf_reserve(struct buf *b, size_t cap)
{
    b->p = xgrow(b->p, &b->cap, cap > b->len ? cap : b->len + 1, 1);
    b->p[b->len] = '\0';
}

void buf_wipe(struct buf *b)
{
    xfree_secret(b->p, b->cap);
    b->p = NULL;
    b->len = b->cap = 0;
}
