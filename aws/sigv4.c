/*
 * sigv4.c: AWS Signature Version 4 for header-signed requests: the canonical request, the
 * string to sign, the derived signing key and the Authorization header (contract: sigv4.h).
 *
 * Invariants:
 * - Output is built in a growable buffer (struct buf, util/buf.h) and reaches the caller only on
 *   success; on failure every char ** out parameter is left NULL.
 * - Canonical forms are byte-exact: the URI and query are percent-encoded with uppercase hex,
 *   everything except A-Za-z0-9-_.~ (and '/' in the path) is encoded, sorting is bytewise.
 *   The path is normalized first (dot segments, repeated slashes), the non-S3 rule.
 * - Secret material (the "AWS4"+secret HMAC key and the derived keys) is wiped before its
 *   storage is released; no secret is ever written to stderr or a log.
 *
 * Threading: pure functions with no global or static mutable state. OpenSSL 3's one-shot
 * EVP_Digest() and HMAC() are thread-safe, so every function may run on any thread at once.
 */
#include "aws/sigv4.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util/buf.h"
#include "util/xalloc.h"

#define SHA256_LEN 32
#define ALGORITHM "AWS4-HMAC-SHA256"
#define TERMINATOR "aws4_request"

/* --- encoding ----------------------------------------------------------------------------- */

static const char hexdigits_upper[] = "0123456789ABCDEF";
static const char hexdigits_lower[] = "0123456789abcdef";

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == '~';
}

/* Append s[0..n) percent-encoded: all but unreserved (and '/' when keep_slash) become %XX. */
static void add_encoded(struct buf *b, const char *s, size_t n, int keep_slash)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            buf_addc(b, (char)c);
        } else {
            char esc[3] = {'%', hexdigits_upper[c >> 4], hexdigits_upper[c & 15]};
            buf_add(b, esc, sizeof(esc));
        }
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into out. '+' stays '+' (RFC 3986, not form encoding).
 * RC_BAD_REQUEST for a '%' not followed by two hex digits. */
static enum rc_code add_decoded(struct buf *out, const char *s, size_t n)
{
    enum rc_code rc = RC_OK;

    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            buf_addc(out, s[i]);
            continue;
        }
        int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
        int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            rc = RC_BAD_REQUEST;
            goto out;
        }
        buf_addc(out, (char)(hi << 4 | lo));
        i += 2;
    }
out:
    return rc;
}

static void to_hex(const unsigned char *md, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdigits_lower[md[i] >> 4];
        out[2 * i + 1] = hexdigits_lower[md[i] & 15];
    }
    out[2 * n] = '\0';
}

/* --- crypto ------------------------------------------------------------------------------- */

/* SHA-256 and HMAC-SHA256 only fail when OpenSSL cannot allocate or its default provider is
 * missing; like xmalloc, treat that as fatal in one place rather than in every caller. */
static void crypto_fatal(const char *what)
{
    fprintf(stderr, "level=fatal msg=\"openssl %s failed\"\n", what);
    abort();
}

static void sha256(const void *data, size_t len, unsigned char md[SHA256_LEN])
{
    unsigned int mdlen = 0;
    if (!EVP_Digest(data ? data : "", len, md, &mdlen, EVP_sha256(), NULL) ||
        mdlen != SHA256_LEN)
        crypto_fatal("EVP_Digest(sha256)");
}

static void hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                        unsigned char md[SHA256_LEN])
{
    unsigned int mdlen = 0;
    if (!HMAC(EVP_sha256(), key, (int)keylen, data, len, md, &mdlen) || mdlen != SHA256_LEN)
        crypto_fatal("HMAC(sha256)");
}

/* --- canonical request -------------------------------------------------------------------- */

struct seg {
    const char *p;
    size_t n;
};

/* Append the canonical URI of a decoded path: dot segments removed (RFC 3986 5.2.4),
 * empty segments (repeated slashes) dropped, then each segment percent-encoded. The result
 * always starts with '/'; it ends with '/' when the path did, or when its last segment was "."
 * or ".." (RFC 3986: "/a/b/.." is "/a/"), unless it is the root "/" itself. ".." at the root
 * is dropped. */
static void add_canonical_uri(struct buf *out, const char *path)
{
    struct seg *segs = NULL;
    size_t nsegs = 0, cap = 0;
    int trailing = 0;
    const char *p = path ? path : "";

    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        int dot = n == 1 && p[0] == '.';
        int dotdot = n == 2 && p[0] == '.' && p[1] == '.';

        if (dotdot) {
            if (nsegs)
                nsegs--;
        } else if (n && !dot) {
            segs = xgrow(segs, &cap, nsegs + 1, sizeof(*segs));
            segs[nsegs].p = p;
            segs[nsegs].n = n;
            nsegs++;
        }
        /* the path ends here: with a slash, a dot segment, or a plain segment */
        if (!slash || !slash[1])
            trailing = slash != NULL || dot || dotdot;
        p += n;
        if (*p == '/')
            p++;
    }

    for (size_t i = 0; i < nsegs; i++) {
        buf_addc(out, '/');
        add_encoded(out, segs[i].p, segs[i].n, 0);
    }
    if (!nsegs || trailing)
        buf_addc(out, '/');
    free(segs);
}

struct qparam {
    char *name; /* percent-encoded */
    char *value; /* percent-encoded */
};

static int qparam_cmp(const void *a, const void *b)
{
    const struct qparam *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* Decode then re-encode s[0..n) into a new string. */
static enum rc_code reencode(const char *s, size_t n, char **out)
{
    struct buf dec = {0}, enc = {0};
    enum rc_code rc;

    *out = NULL;
    rc = add_decoded(&dec, s, n);
    if (rc)
        goto out;
    add_encoded(&enc, dec.p ? dec.p : "", dec.len, 0);
    *out = buf_detach(&enc);
out:
    buf_release(&dec);
    buf_release(&enc);
    return rc;
}

/* Append the canonical query string: pairs decoded, re-encoded, sorted by name then value
 * (encoded forms, bytewise), joined with '&'. Empty segments ("a&&b", trailing '&') are
 * dropped; "a" without '=' is the pair ("a", ""). */
static enum rc_code add_canonical_query(struct buf *out, const char *query)
{
    struct qparam *params = NULL;
    size_t nparams = 0, cap = 0;
    enum rc_code rc = RC_OK;
    const char *p = query ? query : "";

    while (*p) {
        const char *end = strchr(p, '&');
        size_t seglen = end ? (size_t)(end - p) : strlen(p);
        if (seglen) {
            const char *eq = memchr(p, '=', seglen);
            size_t namelen = eq ? (size_t)(eq - p) : seglen;
            const char *val = eq ? eq + 1 : p + seglen;
            size_t vallen = eq ? seglen - namelen - 1 : 0;

            params = xgrow(params, &cap, nparams + 1, sizeof(*params));
            params[nparams].name = params[nparams].value = NULL;
            nparams++;
            rc = reencode(p, namelen, &params[nparams - 1].name);
            if (rc)
                goto out;
            rc = reencode(val, vallen, &params[nparams - 1].value);
            if (rc)
                goto out;
        }
        p += seglen;
        if (*p == '&')
            p++;
    }

    if (nparams)
        qsort(params, nparams, sizeof(*params), qparam_cmp);
    for (size_t i = 0; i < nparams; i++) {
        if (i)
            buf_addc(out, '&');
        buf_adds(out, params[i].name);
        buf_addc(out, '=');
        buf_adds(out, params[i].value);
    }
out:
    for (size_t i = 0; i < nparams; i++) {
        free(params[i].name);
        free(params[i].value);
    }
    free(params);
    return rc;
}

struct chdr {
    char *name; /* lowercased */
    char *value; /* trimmed, whitespace runs collapsed */
    size_t order; /* position in the caller's list: keeps repeated names in given order */
};

static int chdr_cmp(const void *a, const void *b)
{
    const struct chdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* RFC 9110 tchar: a header name is a non-empty run of these. */
static int is_tchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static enum rc_code lower_name(const char *name, char **out)
{
    enum rc_code rc = RC_OK;
    size_t n = name ? strlen(name) : 0;

    *out = NULL;
    if (n == 0) {
        rc = RC_BAD_REQUEST;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_tchar((unsigned char)name[i])) {
            rc = RC_BAD_REQUEST;
            goto out;
        }
    }
    *out = xstrdup(name);
    for (size_t i = 0; i < n; i++) {
        if ((*out)[i] >= 'A' && (*out)[i] <= 'Z')
            (*out)[i] = (char)((*out)[i] - 'A' + 'a');
    }
out:
    return rc;
}

/* Trim leading/trailing whitespace (SP, HTAB, CR, LF) and collapse inner runs to one space,
 * so a folded (multi-line) value reads as its words separated by single spaces. */
static char *normalize_value(const char *value)
{
    struct buf b = {0};
    int pending_space = 0;

    for (const char *p = value ? value : ""; *p; p++) {
        if (is_ws(*p)) {
            pending_space = b.len > 0;
            continue;
        }
        if (pending_space)
            buf_addc(&b, ' ');
        pending_space = 0;
        buf_addc(&b, *p);
    }
    return buf_detach(&b);
}

/* Append the canonical header block ("name:v1,v2\n" per distinct name, sorted) to out and
 * the semicolon-joined names to signed_list. */
static enum rc_code add_canonical_headers(struct buf *out, struct buf *signed_list,
                                          const struct sigv4_header *headers, size_t n)
{
    struct chdr *h = NULL;
    size_t nh = 0;
    enum rc_code rc = RC_OK;

    if (n && !headers) {
        rc = RC_BAD_REQUEST;
        goto out;
    }
    h = xcalloc(n ? n : 1, sizeof(*h));
    for (; nh < n; nh++) {
        rc = lower_name(headers[nh].name, &h[nh].name);
        if (rc)
            goto out;
        h[nh].value = normalize_value(headers[nh].value);
        h[nh].order = nh;
    }
    if (nh)
        qsort(h, nh, sizeof(*h), chdr_cmp);

    for (size_t i = 0; i < nh; i++) {
        int same = i > 0 && strcmp(h[i - 1].name, h[i].name) == 0;
        if (same) {
            buf_addc(out, ',');
        } else {
            if (i > 0) {
                buf_addc(out, '\n');
                buf_addc(signed_list, ';');
            }
            buf_adds(out, h[i].name);
            buf_addc(out, ':');
            buf_adds(signed_list, h[i].name);
        }
        buf_adds(out, h[i].value);
    }
    if (nh)
        buf_addc(out, '\n');
out:
    for (size_t i = 0; h && i < n; i++) {
        free(h[i].name);
        free(h[i].value);
    }
    free(h);
    return rc;
}

enum rc_code sigv4_canonical_request(const struct sigv4_request *req, char **creq,
                                     char **signed_headers)
{
    struct buf out = {0}, sh = {0};
    char payload_hex[65];
    enum rc_code rc = RC_OK;

    if (creq)
        *creq = NULL;
    if (signed_headers)
        *signed_headers = NULL;
    if (!req || !req->method || !*req->method || (req->body_len && !req->body)) {
        rc = RC_BAD_REQUEST;
        goto out;
    }

    buf_adds(&out, req->method);
    buf_addc(&out, '\n');
    add_canonical_uri(&out, req->path);
    buf_addc(&out, '\n');
    rc = add_canonical_query(&out, req->query);
    if (rc)
        goto out;
    buf_addc(&out, '\n');
    rc = add_canonical_headers(&out, &sh, req->headers, req->nheaders);
    if (rc)
        goto out;
    buf_addc(&out, '\n');
    buf_add(&out, sh.p ? sh.p : "", sh.len);
    buf_addc(&out, '\n');
    sigv4_sha256_hex(req->body, req->body_len, payload_hex);
    buf_adds(&out, payload_hex);

    if (creq)
        *creq = buf_detach(&out);
    if (signed_headers)
        *signed_headers = buf_detach(&sh);
out:
    buf_release(&out);
    buf_release(&sh);
    return rc;
}

/* --- string to sign, key, signature ------------------------------------------------------- */

static int all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
    }
    return 1;
}

/* A credential scope element: non-empty, no '/', whitespace or control characters. */
static int scope_word_ok(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c == '/' || c == 0x7f)
            return 0;
    }
    return 1;
}

static int scope_ok(const struct sigv4_scope *scope)
{
    const char *d = scope ? scope->amz_date : NULL;
    return d && strlen(d) == 16 && all_digits(d, 8) && d[8] == 'T' && all_digits(d + 9, 6) &&
           d[15] == 'Z' && scope_word_ok(scope->region) && scope_word_ok(scope->service);
}

static void add_scope(struct buf *b, const struct sigv4_scope *scope)
{
    buf_add(b, scope->amz_date, 8);
    buf_addc(b, '/');
    buf_adds(b, scope->region);
    buf_addc(b, '/');
    buf_adds(b, scope->service);
    buf_addc(b, '/');
    buf_adds(b, TERMINATOR);
}

enum rc_code sigv4_string_to_sign(const struct sigv4_scope *scope, const char *creq, char **sts)
{
    struct buf out = {0};
    char creq_hex[65];
    enum rc_code rc = RC_OK;

    *sts = NULL;
    if (!creq || !scope_ok(scope)) {
        rc = RC_BAD_REQUEST;
        goto out;
    }
    sigv4_sha256_hex(creq, strlen(creq), creq_hex);
    buf_adds(&out, ALGORITHM "\n");
    buf_adds(&out, scope->amz_date);
    buf_addc(&out, '\n');
    add_scope(&out, scope);
    buf_addc(&out, '\n');
    buf_adds(&out, creq_hex);
    *sts = buf_detach(&out);
out:
    buf_release(&out);
    return rc;
}

void sigv4_signature(const struct sigv4_scope *scope, const char *secret_access_key,
                     const char *sts, char out[65])
{
    const char *date = scope->amz_date;
    size_t seclen = strlen(secret_access_key);
    size_t keylen = 4 + seclen;
    char *key = xmalloc(keylen + 1);
    unsigned char k1[SHA256_LEN], k2[SHA256_LEN], sig[SHA256_LEN];

    memcpy(key, "AWS4", 4);
    memcpy(key + 4, secret_access_key, seclen + 1);
    /* kDate, kRegion, kService, kSigning, then the signature itself */
    hmac_sha256(key, keylen, date, strnlen(date, 8), k1);
    hmac_sha256(k1, sizeof(k1), scope->region, strlen(scope->region), k2);
    hmac_sha256(k2, sizeof(k2), scope->service, strlen(scope->service), k1);
    hmac_sha256(k1, sizeof(k1), TERMINATOR, strlen(TERMINATOR), k2);
    hmac_sha256(k2, sizeof(k2), sts, strlen(sts), sig);
    to_hex(sig, sizeof(sig), out);

    OPENSSL_cleanse(k1, sizeof(k1));
    OPENSSL_cleanse(k2, sizeof(k2));
    xfree_secret(key, keylen + 1);
}

enum rc_code sigv4_authorization(const struct sigv4_request *req, const struct sigv4_scope *scope,
                                 const struct sigv4_creds *creds, char **authorization)
{
    char *creq = NULL, *signed_headers = NULL, *sts = NULL;
    char sig[65];
    struct buf out = {0};
    enum rc_code rc;

    *authorization = NULL;
    if (!creds || !scope_word_ok(creds->access_key_id) || !creds->secret_access_key) {
        rc = RC_BAD_REQUEST;
        goto out;
    }
    rc = sigv4_canonical_request(req, &creq, &signed_headers);
    if (rc)
        goto out;
    rc = sigv4_string_to_sign(scope, creq, &sts);
    if (rc)
        goto out;
    sigv4_signature(scope, creds->secret_access_key, sts, sig);

    buf_adds(&out, ALGORITHM " Credential=");
    buf_adds(&out, creds->access_key_id);
    buf_addc(&out, '/');
    add_scope(&out, scope);
    buf_adds(&out, ", SignedHeaders=");
    buf_adds(&out, signed_headers);
    buf_adds(&out, ", Signature=");
    buf_adds(&out, sig);
    *authorization = buf_detach(&out);
out:
    free(creq);
    free(signed_headers);
    free(sts);
    buf_release(&out);
    return rc;
}

/* --- helpers ------------------------------------------------------------------------------ */

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[SHA256_LEN];
    sha256(data, len, md);
    to_hex(md, sizeof(md), out);
}

/* Write v as exactly width decimal digits (v is in range by construction). */
static void put_digits(char *out, long long v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

void sigv4_amz_date(long long unix_seconds, char out[17])
{
    /* Clamp to what "YYYYMMDDTHHMMSSZ" can spell: 0000-01-01T00:00:00Z..9999-12-31T23:59:59Z */
    const long long min = -62167219200LL, max = 253402300799LL;
    long long t = unix_seconds < min ? min : unix_seconds > max ? max : unix_seconds;
    long long days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    long long secs = t - days * 86400;

    /* civil_from_days (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms") */
    long long z = days + 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    long long d = doy - (153 * mp + 2) / 5 + 1;
    long long m = mp < 10 ? mp + 3 : mp - 9;
    long long y = yoe + era * 400 + (m <= 2);

    put_digits(out, y, 4);
    put_digits(out + 4, m, 2);
    put_digits(out + 6, d, 2);
    out[8] = 'T';
    put_digits(out + 9, secs / 3600, 2);
    put_digits(out + 11, secs / 60 % 60, 2);
    put_digits(out + 13, secs % 60, 2);
    out[15] = 'Z';
    out[16] = '\0';
}
