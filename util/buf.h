/*
 * buf.h: a growable NUL-terminated string (git's strbuf, curl's dynbuf, in small).
 *
 * struct buf is embedded by its users, so it is not opaque. A zero-initialised buf
 * (`struct buf b = {0};`) is empty and needs no init call. While p is not NULL it holds len
 * bytes followed by a NUL (p[len] == '\0') in an allocation of cap bytes; len and p may be
 * read directly (p is NULL until something was added or reserved; buf_str() hides that).
 * Bytes are binary-safe: an add may contain NUL bytes, len counts them.
 *
 * Memory: built on util/xalloc.h, so nothing here fails; out of memory aborts. Storage is
 * owned by the buf until buf_detach() hands it to the caller, or buf_release()/buf_wipe()
 * frees it. There is no size cap: callers filling a buf from the network enforce their own.
 *
 * Threading: no global state. A buf is plain caller-owned data: different bufs may be used on
 * different threads at once; one buf needs the caller's own synchronisation.
 */
#ifndef R53REG_UTIL_BUF_H
#define R53REG_UTIL_BUF_H

#include <stddef.h>

struct buf {
    char *p; /* NULL, or len bytes + '\0' in a cap-byte allocation */
    size_t len, cap;
};

/* Append n bytes from s. n may be 0 (s may then be NULL); the buf is still allocated, so p
 * is not NULL afterwards. */
void buf_add(struct buf *b, const void *s, size_t n);
/* Append the NUL-terminated string s (not NULL). */
void buf_adds(struct buf *b, const char *s);
/* Append one byte. */
void buf_addc(struct buf *b, char c);
/* Append printf-style output. When the output is empty (or the format fails) nothing is added
 * and nothing is allocated. */
void buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The string, owned by b and valid until b next changes; never NULL ("" when empty). */
const char *buf_str(const struct buf *b);
/* Hand the string to the caller, who frees it with free(); never NULL ("" when empty).
 * b is reset to empty and may be reused. */
char *buf_detach(struct buf *b);
/* Free the storage and reset b to empty. A zeroed or already released buf is fine. */
void buf_release(struct buf *b);

/*
 * For buffers that hold secrets. Growing a buf reallocates, and realloc may leave an unwiped
 * copy of the old bytes behind; so a buffer that may hold a secret is sized once, before the
 * secret goes in, with buf_reserve(), and never grows past that (its writer keeps len + n < cap
 * or reserves enough up front). Then buf_wipe() clears everything.
 */
/* Make cap bytes of room in all (string and NUL), so that appends keeping len < cap never
 * reallocate; p is not NULL afterwards and still holds the same string. */
void buf_reserve(struct buf *b, size_t cap);
/* Overwrite the whole allocation (cap bytes, so the compiler cannot elide it: OPENSSL_cleanse),
 * free it and reset b to empty. A zeroed buf is fine. */
void buf_wipe(struct buf *b);

#endif
