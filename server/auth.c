/*
 * auth.c: token lists (parsing, checks) and the authenticator (see auth.h).
 *
 * Parsing is not thread-safe per list (a list belongs to one caller). The authenticator's
 * token set is immutable once built; `lock` guards only which set is current, and a check
 * holds the read side for one pass over the digests, so srv_auth_set() can free the old set
 * as soon as it holds the write side.
 */
#include "server/auth.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/xalloc.h"

#define DIGEST_LEN 32
#define FILE_MAX ((size_t)1 << 20)

static const char *const scope_names[] = {"admin", "self", "read"};

const char *srv_scope_name(enum srv_scope s)
{
    return (unsigned)s < 3 ? scope_names[s] : "admin";
}

static int scope_of(const char *s, size_t len, enum srv_scope *out)
{
    for (int i = 0; i < 3; i++)
        if (strlen(scope_names[i]) == len && !memcmp(scope_names[i], s, len)) {
            *out = (enum srv_scope)i;
            return 0;
        }
    return -1;
}

static void trim(const char **s, size_t *len)
{
    while (*len && isspace((unsigned char)**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len && isspace((unsigned char)(*s)[*len - 1]))
        (*len)--;
}

/*
 * Does a token column hold a word rather than a secret? A scope keyword or a common name such
 * as "fleet", or nothing but lower-case letters: the sign of a line whose columns are swapped
 * (`self <secret> fleet`) or of a placeholder. Secrets are long and random.
 */
static int looks_like_word(const char *s, size_t len)
{
    static const char *const words[] = {"admin", "self", "read", "fleet", "token", "secret",
                                        "changeme", "password"};
    size_t lower = 0;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strlen(words[i]) == len && !strncasecmp(words[i], s, len))
            return 1;
    for (size_t i = 0; i < len; i++)
        lower += (s[i] >= 'a' && s[i] <= 'z');
    return len > 0 && lower == len;
}

/*
 * Does a name column hold a secret? At least 16 characters mixing upper case, lower case and
 * digits (base64-like), or at least 24 with letters and a quarter or more digits (hex-like).
 * Names are short words such as "fleet" or "grafana-eu-1".
 */
static int looks_like_secret(const char *s, size_t len)
{
    size_t upper = 0, lower = 0, digit = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        upper += (c >= 'A' && c <= 'Z');
        lower += (c >= 'a' && c <= 'z');
        digit += (c >= '0' && c <= '9');
    }
    if (len >= SRV_TOKEN_MIN && upper && lower && digit)
        return 1;
    return len >= 24 && (upper || lower) && digit * 4 >= upper + lower + digit;
}

/* 0, or -1 with a sentence in detail (which never repeats the token). */
static int valid_token(const char *s, size_t len, char *detail, size_t n)
{
    if (len == 0) {
        snprintf(detail, n, "the token is empty");
        return -1;
    }
    if (looks_like_word(s, len)) {
        snprintf(detail, n,
                 "the token column holds a word, not a secret (columns swapped? the order is "
                 "'<scope> <name> <token>')");
        return -1;
    }
    if (len < SRV_TOKEN_MIN) {
        snprintf(detail, n, "the token is shorter than %d characters (use a long random one, "
                 "e.g. openssl rand -base64 24)", SRV_TOKEN_MIN);
        return -1;
    }
    if (len > SRV_TOKEN_MAX) {
        snprintf(detail, n, "the token is longer than %d bytes", SRV_TOKEN_MAX);
        return -1;
    }
    if (s[0] == '#') {
        snprintf(detail, n, "a token may not start with '#'");
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f) {
            snprintf(detail, n, "a token may not contain whitespace or control characters");
            return -1;
        }
    }
    return 0;
}

/*
 * 0, or -1 with a sentence in detail. A refused name is never repeated: the column may hold a
 * secret (a swapped line, a pasted token).
 */
static int valid_name(const char *s, size_t len, char *detail, size_t n)
{
    if (len == 0 || len > SRV_TOKEN_NAME_MAX) {
        snprintf(detail, n, "a token name must be 1..%d characters", SRV_TOKEN_NAME_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && (i == 0 || !strchr("._-", s[i]))) {
            snprintf(detail, n,
                     "the token name (not repeated here) must be a letter or digit, then "
                     "letters, digits, '.', '_' and '-'");
            return -1;
        }
    if (looks_like_secret(s, len)) {
        snprintf(detail, n,
                 "the name column (not repeated here) looks like a secret: long and random "
                 "(columns swapped? the order is '<scope> <name> <token>')");
        return -1;
    }
    return 0;
}

static void push(struct srv_token_list *l, enum srv_scope scope, const char *name, size_t nlen,
                 const char *tok, size_t tlen)
{
    struct srv_token *t;
    l->v = xgrow(l->v, &l->cap, l->n + 1, sizeof(*l->v));
    t = &l->v[l->n];
    memset(t, 0, sizeof(*t));
    t->scope = scope;
    if (name)
        snprintf(t->name, sizeof(t->name), "%.*s", (int)nlen, name);
    else
        snprintf(t->name, sizeof(t->name), "token-%zu", l->n + 1);
    t->secret = xstrndup(tok, tlen);
    l->n++;
}

enum rc_code srv_tokens_add_entry(struct srv_token_list *l, const char *s, size_t len, char *detail,
                                  size_t n)
{
    const char *colon;
    enum srv_scope scope;

    trim(&s, &len);
    if (len == 0)
        return RC_OK;
    colon = memchr(s, ':', len);
    if (colon && scope_of(s, (size_t)(colon - s), &scope) == 0) {
        const char *name = colon + 1, *end = s + len, *tok;
        const char *colon2 = memchr(name, ':', (size_t)(end - name));
        size_t nlen, tlen;
        if (!colon2) {
            snprintf(detail, n, "'%s:...' must be scope:name:token", srv_scope_name(scope));
            return RC_CONFIG;
        }
        nlen = (size_t)(colon2 - name);
        tok = colon2 + 1;
        tlen = (size_t)(end - tok);
        trim(&name, &nlen);
        trim(&tok, &tlen);
        if (valid_name(name, nlen, detail, n))
            return RC_CONFIG;
        if (valid_token(tok, tlen, detail, n)) {
            char why[128];
            snprintf(why, sizeof(why), "%s", detail);
            snprintf(detail, n, "token '%.*s': %s", (int)nlen, name, why);
            return RC_CONFIG;
        }
        push(l, scope, name, nlen, tok, tlen);
        return RC_OK;
    }
    if (s[0] == '#')
        return RC_OK; /* a bare entry starting with '#' was always skipped */
    if (valid_token(s, len, detail, n))
        return RC_CONFIG;
    push(l, SRV_SCOPE_ADMIN, NULL, 0, s, len);
    return RC_OK;
}

/* One line of a token file, s[0..len) without its newline. */
static enum rc_code add_line(struct srv_token_list *l, const char *s, size_t len, char *detail,
                             size_t n)
{
    const char *f[4], *p, *end;
    size_t flen[4], nf = 0;
    enum srv_scope scope;
    char why[160];

    trim(&s, &len);
    if (len == 0 || s[0] == '#')
        return RC_OK;
    p = s;
    end = s + len;
    while (p < end) {
        const char *q = p;
        while (q < end && !isspace((unsigned char)*q))
            q++;
        if (nf < 4) {
            f[nf] = p;
            flen[nf] = (size_t)(q - p);
        }
        nf++;
        while (q < end && isspace((unsigned char)*q))
            q++;
        p = q;
    }
    if (nf == 1) {
        if (valid_token(f[0], flen[0], detail, n))
            return RC_CONFIG;
        push(l, SRV_SCOPE_ADMIN, NULL, 0, f[0], flen[0]);
        return RC_OK;
    }
    if (nf != 3) {
        snprintf(detail, n,
                 "expected '<scope> <name> <token>' or a bare '<token>', found %zu "
                 "fields",
                 nf);
        return RC_CONFIG;
    }
    if (scope_of(f[0], flen[0], &scope)) {
        /* Not repeated: a swapped line may have put a secret in this column. */
        snprintf(detail, n, "the first field (the scope) is not admin, self or read");
        return RC_CONFIG;
    }
    if (valid_name(f[1], flen[1], detail, n))
        return RC_CONFIG;
    if (valid_token(f[2], flen[2], why, sizeof(why))) {
        snprintf(detail, n, "token '%.*s': %s", (int)flen[1], f[1], why);
        return RC_CONFIG;
    }
    push(l, scope, f[1], flen[1], f[2], flen[2]);
    return RC_OK;
}

enum rc_code srv_tokens_load_file(struct srv_token_list *l, const char *path, char *detail,
                                  size_t n)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, before = l->n, line = 1;
    enum rc_code rc = RC_OK;
    char why[200];

    if (!f) {
        snprintf(detail, n, "%s: %s", path, strerror(errno));
        return RC_IO;
    }
    buf = xmalloc(FILE_MAX + 1);
    len = fread(buf, 1, FILE_MAX + 1, f);
    if (ferror(f)) {
        snprintf(detail, n, "%s: read error", path);
        rc = RC_IO;
        goto out;
    }
    if (len > FILE_MAX) {
        snprintf(detail, n, "%s: larger than 1 MiB", path);
        rc = RC_CONFIG;
        goto out;
    }
    if (memchr(buf, '\0', len)) {
        snprintf(detail, n, "%s: contains a NUL byte (not a text file; UTF-16?)", path);
        rc = RC_CONFIG;
        goto out;
    }
    for (size_t off = 0; off < len; line++) {
        char *nl = memchr(buf + off, '\n', len - off);
        size_t ll = nl ? (size_t)(nl - (buf + off)) : len - off;
        rc = add_line(l, buf + off, ll, why, sizeof(why));
        if (rc) {
            snprintf(detail, n, "%s line %zu: %s", path, line, why);
            goto out;
        }
        off += ll + 1;
    }
out:
    if (rc) {
        while (l->n > before) {
            struct srv_token *t = &l->v[--l->n];
            xfree_secret(t->secret, strlen(t->secret));
        }
    }
    xfree_secret(buf, FILE_MAX + 1);
    fclose(f);
    return rc;
}

enum rc_code srv_tokens_check(const struct srv_token_list *l, char *detail, size_t n)
{
    for (size_t i = 0; i < l->n; i++)
        for (size_t j = 0; j < i; j++) {
            if (!strcmp(l->v[i].name, l->v[j].name)) {
                snprintf(detail, n, "two tokens are named '%s': names must be unique",
                         l->v[i].name);
                return RC_CONFIG;
            }
            if (!strcmp(l->v[i].secret, l->v[j].secret)) {
                snprintf(detail, n,
                         "tokens '%s' and '%s' are the same secret: each token "
                         "must be unique",
                         l->v[j].name, l->v[i].name);
                return RC_CONFIG;
            }
        }
    return RC_OK;
}

void srv_tokens_add_copy(struct srv_token_list *l, const struct srv_token *t)
{
    push(l, t->scope, t->name, strlen(t->name), t->secret, strlen(t->secret));
}

void srv_tokens_release(struct srv_token_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        xfree_secret(l->v[i].secret, strlen(l->v[i].secret));
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* ---- the authenticator ------------------------------------------------------------------ */

struct token_set {
    size_t n;
    unsigned char (*digest)[DIGEST_LEN];
    char (*name)[SRV_TOKEN_NAME_MAX + 1];
    enum srv_scope *scope;
};

struct srv_auth {
    pthread_rwlock_t lock;
    struct token_set *set; /* guarded by lock; never NULL */
};

static void sha256(const void *data, size_t len, unsigned char out[DIGEST_LEN])
{
    unsigned int olen = DIGEST_LEN;
    EVP_Digest(data, len, out, &olen, EVP_sha256(), NULL);
}

static void set_free(struct token_set *s)
{
    if (!s)
        return;
    if (s->digest)
        OPENSSL_cleanse(s->digest, s->n * DIGEST_LEN);
    free(s->digest);
    free(s->name);
    free(s->scope);
    free(s);
}

static struct token_set *set_build(const struct srv_token_list *l)
{
    struct token_set *s = xcalloc(1, sizeof(*s));
    size_t n = l ? l->n : 0;
    s->n = n;
    s->digest = xcalloc(n ? n : 1, DIGEST_LEN);
    s->name = xcalloc(n ? n : 1, sizeof(*s->name));
    s->scope = xcalloc(n ? n : 1, sizeof(*s->scope));
    for (size_t i = 0; i < n; i++) {
        sha256(l->v[i].secret, strlen(l->v[i].secret), s->digest[i]);
        memcpy(s->name[i], l->v[i].name, sizeof(s->name[i]));
        s->scope[i] = l->v[i].scope;
    }
    return s;
}

struct srv_auth *srv_auth_create(void)
{
    struct srv_auth *a = xcalloc(1, sizeof(*a));
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* A reload must not starve behind a steady stream of checks. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&a->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    a->set = set_build(NULL);
    return a;
}

void srv_auth_destroy(struct srv_auth *a)
{
    if (!a)
        return;
    set_free(a->set);
    pthread_rwlock_destroy(&a->lock);
    free(a);
}

void srv_auth_set(struct srv_auth *a, const struct srv_token_list *l)
{
    struct token_set *fresh = set_build(l), *old;
    pthread_rwlock_wrlock(&a->lock);
    old = a->set;
    a->set = fresh;
    pthread_rwlock_unlock(&a->lock);
    set_free(old);
}

size_t srv_auth_count(struct srv_auth *a)
{
    size_t n;
    pthread_rwlock_rdlock(&a->lock);
    n = a->set->n;
    pthread_rwlock_unlock(&a->lock);
    return n;
}

enum srv_auth_result srv_auth_check(struct srv_auth *a, const char *authorization, char *name,
                                    enum srv_scope *scope)
{
    unsigned char digest[DIGEST_LEN];
    enum srv_auth_result r;
    const struct token_set *s;
    size_t match = SIZE_MAX;

    pthread_rwlock_rdlock(&a->lock);
    s = a->set;
    if (s->n == 0) {
        r = SRV_AUTH_ANONYMOUS;
        goto out;
    }
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0) {
        r = SRV_AUTH_MISSING;
        goto out;
    }
    authorization += 7;
    while (*authorization == ' ')
        authorization++;
    if (*authorization == '\0') { /* no configured token is empty: never hash "" */
        r = SRV_AUTH_INVALID;
        goto out;
    }
    sha256(authorization, strlen(authorization), digest);
    /* Every digest is compared, and the first match is selected without a branch. */
    for (size_t i = 0; i < s->n; i++) {
        size_t eq = (size_t)(CRYPTO_memcmp(digest, s->digest[i], DIGEST_LEN) == 0);
        size_t first = eq & (size_t)(match == SIZE_MAX);
        size_t m = (size_t)0 - first;
        match = (match & ~m) | (i & m);
    }
    OPENSSL_cleanse(digest, sizeof(digest));
    if (match == SIZE_MAX) {
        r = SRV_AUTH_INVALID;
        goto out;
    }
    memcpy(name, s->name[match], SRV_TOKEN_NAME_MAX + 1);
    *scope = s->scope[match];
    r = SRV_AUTH_OK;
out:
    pthread_rwlock_unlock(&a->lock);
    return r;
}
