/*
 * fuzz_sigv4.c: aws/sigv4.h canonicalization and signing on a request built from the input.
 *
 * Input, split on '\n': the method, the path, the query, then header lines "name:value" (no
 * ':' makes the whole line the name with an empty value) up to an empty line, then the body
 * (the rest of the input, any bytes). An empty method, path or query line is passed as NULL.
 * Lines are NUL-terminated copies, so an embedded NUL shortens them as it would a C string.
 *
 * Invariants (abort() when broken):
 * - on success both outputs are set, the canonical request's last line is the hex SHA-256 of
 *   the body, the line before it is the signed header list, the method line is the method,
 *   the URI line starts with '/' and holds only unreserved characters, '/' and %XX escapes;
 * - the canonical request is the same whether or not signed_headers is asked for;
 * - the string to sign and the Authorization header succeed with a valid scope and name the
 *   same signed headers; the signature is 64 lowercase hex digits.
 */
#include <stdlib.h>
#include <string.h>

#include "aws/sigv4.h"
#include "fuzz.h"

#define MAX_HEADERS 64

/* A NUL-terminated copy of s[0..n) (cut at an embedded NUL), or NULL when empty. */
static char *line_dup(const char *s, size_t n)
{
    char *c = malloc(n + 1);
    if (!c)
        abort();
    memcpy(c, s, n);
    c[n] = '\0';
    if (!c[0]) {
        free(c);
        return NULL;
    }
    return c;
}

/* Take the next line of [*p, end); NULL at the end of input. *len gets its length. */
static const char *next_line(const char **p, const char *end, size_t *len)
{
    const char *s = *p, *nl;
    if (s >= end)
        return NULL;
    nl = memchr(s, '\n', (size_t)(end - s));
    *len = nl ? (size_t)(nl - s) : (size_t)(end - s);
    *p = nl ? nl + 1 : end;
    return s;
}

static int is_hex_lower(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[n] == '\0' || s[n] == '\n';
}

static int uri_ok(const char *s, size_t n)
{
    if (n == 0 || s[0] != '/')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            strchr("-_.~/", c))
            continue;
        if (c == '%' && i + 2 < n && strchr("0123456789ABCDEF", s[i + 1]) &&
            strchr("0123456789ABCDEF", s[i + 2]) && s[i + 1] && s[i + 2]) {
            i += 2;
            continue;
        }
        return 0;
    }
    return 1;
}

static void check_creq(const struct sigv4_request *req, const char *creq, const char *sh)
{
    char hex[65];
    const char *last = strrchr(creq, '\n'), *prev, *nl1, *nl2;
    size_t shlen = strlen(sh), mlen = strlen(req->method);

    if (!last)
        abort();
    sigv4_sha256_hex(req->body, req->body_len, hex);
    if (strcmp(last + 1, hex) != 0)
        abort();
    prev = last - shlen;
    if (prev <= creq || prev[-1] != '\n' || memcmp(prev, sh, shlen) != 0)
        abort();
    if (strncmp(creq, req->method, mlen) != 0 || creq[mlen] != '\n')
        abort();
    /* the method may hold '\r' but never '\n' (input lines are split on it) */
    nl1 = creq + mlen;
    nl2 = strchr(nl1 + 1, '\n');
    if (!nl2 || !uri_ok(nl1 + 1, (size_t)(nl2 - nl1 - 1)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct sigv4_scope scope = {"20150830T123600Z", "us-east-1", "route53"};
    static const struct sigv4_creds creds = {"AKIDEXAMPLE",
                                             "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL};
    const char *p = (const char *)data, *end = p + size, *s;
    char *method = NULL, *path = NULL, *query = NULL, *names[MAX_HEADERS] = {0},
         *values[MAX_HEADERS] = {0};
    struct sigv4_header headers[MAX_HEADERS];
    struct sigv4_request req;
    char *creq = NULL, *sh = NULL, *creq2 = NULL, *sts = NULL, *auth = NULL, sig[65];
    size_t n, nh = 0;
    enum rc_code rc;

    memset(&req, 0, sizeof(req));
    if ((s = next_line(&p, end, &n)))
        method = line_dup(s, n);
    if ((s = next_line(&p, end, &n)))
        path = line_dup(s, n);
    if ((s = next_line(&p, end, &n)))
        query = line_dup(s, n);
    while (nh < MAX_HEADERS && (s = next_line(&p, end, &n)) && n > 0) {
        const char *colon = memchr(s, ':', n);
        size_t nlen = colon ? (size_t)(colon - s) : n;
        names[nh] = line_dup(s, nlen);
        values[nh] = colon ? line_dup(colon + 1, n - nlen - 1) : NULL;
        headers[nh].name = names[nh];
        headers[nh].value = values[nh];
        nh++;
    }
    req.method = method;
    req.path = path;
    req.query = query;
    req.headers = nh ? headers : NULL;
    req.nheaders = nh;
    req.body = p < end ? p : NULL;
    req.body_len = (size_t)(end - p);

    rc = sigv4_canonical_request(&req, &creq, &sh);
    if (rc != RC_OK) {
        if (rc != RC_BAD_REQUEST || creq || sh)
            abort();
        if (sigv4_authorization(&req, &scope, &creds, &auth) == RC_OK || auth)
            abort();
        goto out;
    }
    if (!creq || !sh)
        abort();
    check_creq(&req, creq, sh);
    if (sigv4_canonical_request(&req, &creq2, NULL) != RC_OK || strcmp(creq, creq2) != 0)
        abort();
    if (sigv4_string_to_sign(&scope, creq, &sts) != RC_OK || !sts)
        abort();
    sigv4_signature(&scope, creds.secret_access_key, sts, sig);
    if (strlen(sig) != 64 || !is_hex_lower(sig, 64))
        abort();
    if (sigv4_authorization(&req, &scope, &creds, &auth) != RC_OK || !auth)
        abort();
    {
        /* "... SignedHeaders=<sh>, Signature=<sig>" */
        const char *f = strstr(auth, "SignedHeaders="), *g = strstr(auth, ", Signature=");
        if (!f || !g || (size_t)(g - f - 14) != strlen(sh) || memcmp(f + 14, sh, strlen(sh)) ||
            strcmp(g + 12, sig) != 0)
            abort();
    }
out:
    free(creq);
    free(creq2);
    free(sh);
    free(sts);
    free(auth);
    free(method);
    free(path);
    free(query);
    for (size_t i = 0; i < nh; i++) {
        free(names[i]);
        free(values[i]);
    }
    return 0;
}
