/*
 * xalloc.h: allocation that never returns NULL. Out of memory aborts here, in one place
 * (git's xmalloc), so callers need no allocation error paths.
 */
#ifndef R53REG_UTIL_XALLOC_H
#define R53REG_UTIL_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* Grow *p (holding *cap elements of size elem) to at least need elements. */
void *xgrow(void *p, size_t *cap, size_t need, size_t elem);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Wipe n bytes so the compiler cannot elide it (for secrets), then free. NULL is fine. */
void xfree_secret(void *p, size_t n);

#endif
