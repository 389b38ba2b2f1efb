/*
 * auth.h: bearer tokens with names and scopes, and the authenticator that checks them.
 *
 * Token sources (docs/security.md):
 * - a token file (--token-file): one token per line, `<scope> <name> <token>` separated by
 *   blanks, or a bare `<token>` (scope admin, name token-<n>); `#` starts a comment line;
 *   blank lines are ignored;
 * - R53REG_TOKENS / --tokens: comma-separated entries `scope:name:token` or a bare token.
 * Scopes: admin (every endpoint), self (may change only the caller's own address), read
 * (GET only). Names are 1..64 of [A-Za-z0-9._-], starting with a letter or digit (so they
 * never look like the log/metric values "-" and "-invalid-"), and appear in logs and
 * metrics; the token itself never does, not even in error messages. Tokens are 16..4096
 * bytes without whitespace or control characters and may not start with '#'. A line that
 * looks swapped is refused: a name that looks like a secret (16+ characters mixing upper
 * case, lower case and digits, or 24+ with a quarter digits) or a token that looks like a
 * word (a scope keyword, "fleet", or only lower-case letters). An error never repeats a
 * column that may be a secret (scope, name or token of a refused line). Names and
 * tokens must be unique across all sources. <n> in token-<n> is the token's position (from 1)
 * in the combined list (R53REG_TOKENS/--tokens first, then the file).
 *
 * The authenticator keeps SHA-256 digests of one token set and swaps the whole set
 * atomically (srv_auth_set, under a writer-preferring rwlock), so a reload never shows a
 * request half of the old set and half of the new one. A check compares the digest of the
 * presented token with every configured digest in constant time (no early exit).
 */
#ifndef R53REG_SERVER_AUTH_H
#define R53REG_SERVER_AUTH_H

#include <stddef.h>

#include "util/rc.h"

#define SRV_TOKEN_NAME_MAX 64
#define SRV_TOKEN_MAX 4096
#define SRV_TOKEN_MIN 16 /* shorter tokens are refused at load */

enum srv_scope { SRV_SCOPE_ADMIN, SRV_SCOPE_SELF, SRV_SCOPE_READ };

struct srv_token {
    char name[SRV_TOKEN_NAME_MAX + 1];
    enum srv_scope scope;
    char *secret; /* owned by the list that holds it; wiped when released */
};

struct srv_token_list {
    struct srv_token *v;
    size_t n, cap;
};

/* "admin", "self" or "read". */
const char *srv_scope_name(enum srv_scope s);

/*
 * Add one R53REG_TOKENS entry s[0..len) (`scope:name:token` when the text before the first
 * ':' is a scope name, else a bare admin token). Blank entries and bare entries starting
 * with '#' are skipped. Errors: RC_CONFIG with detail (never quoting the token).
 */
enum rc_code srv_tokens_add_entry(struct srv_token_list *l, const char *s, size_t len, char *detail,
                                  size_t n);

/*
 * Add the tokens of the file at path. The file must be a text file (no NUL byte), at most
 * 1 MiB. Errors: RC_IO (cannot read) or RC_CONFIG (a bad line: the detail names its number)
 * with detail; l keeps only what it held before.
 */
enum rc_code srv_tokens_load_file(struct srv_token_list *l, const char *path, char *detail,
                                  size_t n);

/* Names and tokens unique? Errors: RC_CONFIG with detail naming the two entries. */
enum rc_code srv_tokens_check(const struct srv_token_list *l, char *detail, size_t n);

/* Append a copy of t (its secret duplicated). */
void srv_tokens_add_copy(struct srv_token_list *l, const struct srv_token *t);

/* Wipe and free every secret and the array; l is left empty. NULL is fine. */
void srv_tokens_release(struct srv_token_list *l);

/* ---- the authenticator ------------------------------------------------------------------ */

struct srv_auth;

enum srv_auth_result {
    SRV_AUTH_ANONYMOUS, /* no token is configured: requests are anonymous */
    SRV_AUTH_MISSING,   /* tokens are configured; no `Authorization: Bearer` header */
    SRV_AUTH_INVALID,   /* a bearer token that matches none */
    SRV_AUTH_OK,        /* a configured token: name and scope are set */
};

/* An authenticator with no token. Never NULL. */
struct srv_auth *srv_auth_create(void);
/* Free it (digests wiped). NULL is fine. No check may run concurrently. */
void srv_auth_destroy(struct srv_auth *a);

/* Replace the token set with (digests of) l's tokens, atomically. Thread-safe. */
void srv_auth_set(struct srv_auth *a, const struct srv_token_list *l);

/* How many tokens the current set holds. Thread-safe. */
size_t srv_auth_count(struct srv_auth *a);

/*
 * Check an Authorization header value (NULL when absent) against the current set. On
 * SRV_AUTH_OK, name (SRV_TOKEN_NAME_MAX + 1 bytes) and *scope describe the token. Thread-safe.
 */
enum srv_auth_result srv_auth_check(struct srv_auth *a, const char *authorization, char *name,
                                    enum srv_scope *scope);

#endif
