/*
 * emu_auth.c: SigV4 verification of Route 53 API requests, the way AWS front ends answer.
 *
 * The canonical request is rebuilt from what was received (method, the raw path, the raw
 * query, the headers named in SignedHeaders in received order, the body) with aws/sigv4.h, and
 * the signature is compared in constant time. The raw wire path is handed to the signer, which
 * percent-encodes it once more: that is AWS's rule for every service but S3 ("encode the
 * already-encoded path again"), and what botocore does.
 *
 * Error codes and messages (chosen from AWS's common error list and from answers AWS front ends
 * give; every one is HTTP 403 here, including IncompleteSignature which AWS's common-errors page
 * lists as 400 for query APIs):
 * - no Authorization header              MissingAuthenticationToken "Missing Authentication Token"
 * - malformed header / credential,
 *   host or x-amz-date not signed,
 *   no or malformed x-amz-date,
 *   session token sent but not signed    IncompleteSignature
 * - unknown access key id,
 *   missing / wrong / unexpected token   InvalidClientTokenId "The security token included in
 *                                        the request is invalid."
 * - scope date, region (us-east-1),
 *   service (route53) or terminator off  SignatureDoesNotMatch "Credential should be scoped ..."
 * - x-amz-date more than 5 min off       SignatureDoesNotMatch "Signature expired: ..." (AWS's
 *                                        wording; RequestExpired is for presigned URLs)
 * - signature differs                    SignatureDoesNotMatch with the canonical request and
 *                                        string to sign we computed (AWS includes both too).
 * Requiring a signed x-amz-security-token is stricter than some AWS services, which accept it
 * unsigned; r53reg signs it (as the AWS SDKs do), so the emulator holds it to that.
 *
 * Threading: pure, thread-safe. Secrets never leave this file (no logging here).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "aws/sigv4.h"
#include "emu.h"
#include "util/xalloc.h"

#define ALGO "AWS4-HMAC-SHA256"
#define SKEW_S (5 * 60)

static const char *header_get(const struct emu_auth_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!strcasecmp(req->headers[i].name, name))
            return req->headers[i].value;
    }
    return NULL;
}

static int deny(struct emu_err *err, const char *code, const char *msg)
{
    emu_err_set(err, 403, code, "%s", msg);
    return -1;
}

/* Parse "YYYYMMDDTHHMMSSZ" into Unix seconds. */
static int parse_amz_date(const char *s, long long *out)
{
    struct tm tm;

    if (!s || strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
        return -1;
    for (int i = 0; i < 15; i++) {
        if (i != 8 && (s[i] < '0' || s[i] > '9'))
            return -1;
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0') - 1900;
    tm.tm_mon = (s[4] - '0') * 10 + (s[5] - '0') - 1;
    tm.tm_mday = (s[6] - '0') * 10 + (s[7] - '0');
    tm.tm_hour = (s[9] - '0') * 10 + (s[10] - '0');
    tm.tm_min = (s[11] - '0') * 10 + (s[12] - '0');
    tm.tm_sec = (s[13] - '0') * 10 + (s[14] - '0');
    if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
        tm.tm_sec > 60)
        return -1;
    *out = (long long)timegm(&tm);
    return 0;
}

struct auth_parts {
    char *credential;
    char *signed_headers;
    char *signature;
};

static void trim(char **s)
{
    char *p = *s, *e;
    while (*p == ' ' || *p == '\t')
        p++;
    e = p + strlen(p);
    while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    *s = p;
}

/* Split "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...". */
static int parse_authorization(const char *hdr, struct auth_parts *p, struct buf *why)
{
    char *copy = NULL, *save = NULL, *tok;
    size_t alen = strlen(ALGO);
    int rc = -1;

    if (strncmp(hdr, ALGO, alen) != 0 || (hdr[alen] != ' ' && hdr[alen] != '\t')) {
        buf_adds(why, "Unsupported AWS 'algorithm': only AWS4-HMAC-SHA256 is accepted");
        goto out;
    }
    copy = xstrdup(hdr + alen);
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq, *key = tok, *val;
        trim(&key);
        eq = strchr(key, '=');
        if (!eq)
            continue;
        *eq = '\0';
        val = eq + 1;
        trim(&val);
        if (!strcmp(key, "Credential") && !p->credential)
            p->credential = xstrdup(val);
        else if (!strcmp(key, "SignedHeaders") && !p->signed_headers)
            p->signed_headers = xstrdup(val);
        else if (!strcmp(key, "Signature") && !p->signature)
            p->signature = xstrdup(val);
    }
    if (!p->credential)
        buf_adds(why, "Authorization header requires 'Credential' parameter. ");
    if (!p->signature)
        buf_adds(why, "Authorization header requires 'Signature' parameter. ");
    if (!p->signed_headers)
        buf_adds(why, "Authorization header requires 'SignedHeaders' parameter. ");
    if (why->len)
        goto out;
    rc = 0;
out:
    free(copy);
    return rc;
}

/* Is name (lowercase) in the semicolon list? */
static int list_has(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ';');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncasecmp(p, name, n))
            return 1;
        p += len;
        if (*p == ';')
            p++;
    }
    return 0;
}

static int ct_equal(const char *a, const char *b)
{
    size_t n = strlen(a);
    if (n != strlen(b))
        return 0;
    return CRYPTO_memcmp(a, b, n) == 0;
}

int emu_auth_verify(const struct emu_creds *creds, const struct emu_auth_request *req,
                    struct emu_err *err)
{
    struct auth_parts parts = {0};
    struct buf why = {0};
    struct sigv4_header *signed_hdrs = NULL;
    size_t nsigned = 0, cap = 0;
    char *cred = NULL, *elems[5] = {0};
    char *creq = NULL, *sh = NULL, *sts = NULL;
    char sig[65];
    const char *authz = header_get(req, "authorization");
    const char *amz_date, *token;
    long long t;
    int nelems = 0, rc = -1;

    if (!authz) {
        rc = deny(err, "MissingAuthenticationToken", "Missing Authentication Token");
        goto out;
    }
    if (parse_authorization(authz, &parts, &why)) {
        rc = deny(err, "IncompleteSignature", why.p);
        goto out;
    }

    /* Credential=<akid>/<date>/<region>/<service>/aws4_request */
    cred = xstrdup(parts.credential);
    for (char *p = cred; p;) {
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        if (nelems < 5)
            elems[nelems] = p;
        nelems++;
        p = slash ? slash + 1 : NULL;
    }
    if (nelems != 5) {
        buf_addf(&why,
                 "Credential must have exactly 5 slash-delimited elements, e.g. "
                 "keyid/date/region/service/term, got '%s'",
                 parts.credential);
        rc = deny(err, "IncompleteSignature", why.p);
        goto out;
    }
    if (!ct_equal(elems[0], creds->access_key)) {
        rc = deny(err, "InvalidClientTokenId",
                  "The security token included in the request is invalid.");
        goto out;
    }
    token = header_get(req, "x-amz-security-token");
    if ((creds->session_token && (!token || !ct_equal(token, creds->session_token))) ||
        (!creds->session_token && token)) {
        rc = deny(err, "InvalidClientTokenId",
                  "The security token included in the request is invalid.");
        goto out;
    }

    amz_date = header_get(req, "x-amz-date");
    if (!amz_date) {
        rc = deny(err, "IncompleteSignature",
                  "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
                  "header.");
        goto out;
    }
    if (parse_amz_date(amz_date, &t)) {
        buf_addf(&why,
                 "Date must be in ISO-8601 'basic format'. Got '%s'. See "
                 "http://en.wikipedia.org/wiki/ISO_8601",
                 amz_date);
        rc = deny(err, "IncompleteSignature", why.p);
        goto out;
    }
    if (!list_has(parts.signed_headers, "host")) {
        rc = deny(err, "IncompleteSignature",
                  "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
        goto out;
    }
    if (!list_has(parts.signed_headers, "x-amz-date")) {
        rc = deny(err, "IncompleteSignature",
                  "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.");
        goto out;
    }
    if (token && !list_has(parts.signed_headers, "x-amz-security-token")) {
        rc = deny(err, "IncompleteSignature",
                  "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization "
                  "(r53emu requires the session token to be signed).");
        goto out;
    }
    if (strlen(elems[1]) != 8 || strncmp(elems[1], amz_date, 8) != 0) {
        buf_addf(&why,
                 "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                 "from HTTP: '%s' != '%.8s', from '%s'.",
                 elems[1], amz_date, amz_date);
        rc = deny(err, "SignatureDoesNotMatch", why.p);
        goto out;
    }
    if (strcmp(elems[2], "us-east-1") != 0) {
        buf_addf(&why, "Credential should be scoped to a valid region, not '%s'. ", elems[2]);
        rc = deny(err, "SignatureDoesNotMatch", why.p);
        goto out;
    }
    if (strcmp(elems[3], "route53") != 0) {
        rc = deny(err, "SignatureDoesNotMatch",
                  "Credential should be scoped to correct service: 'route53'. ");
        goto out;
    }
    if (strcmp(elems[4], "aws4_request") != 0) {
        buf_addf(&why,
                 "Credential should be scoped with a valid terminator: 'aws4_request', not '%s'.",
                 elems[4]);
        rc = deny(err, "SignatureDoesNotMatch", why.p);
        goto out;
    }
    if (t < req->now_s - SKEW_S || t > req->now_s + SKEW_S) {
        char now[17], edge[17];
        int past = t < req->now_s - SKEW_S;
        sigv4_amz_date(req->now_s, now);
        sigv4_amz_date(past ? req->now_s - SKEW_S : req->now_s + SKEW_S, edge);
        if (past)
            buf_addf(&why, "Signature expired: %s is now earlier than %s (%s - 5 min.)", amz_date,
                     edge, now);
        else
            buf_addf(&why, "Signature not yet current: %s is still later than %s (%s + 5 min.)",
                     amz_date, edge, now);
        rc = deny(err, "SignatureDoesNotMatch", why.p);
        goto out;
    }

    /* The signed headers, as received (repeated names keep their order). */
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!list_has(parts.signed_headers, req->headers[i].name))
            continue;
        signed_hdrs = xgrow(signed_hdrs, &cap, nsigned + 1, sizeof(*signed_hdrs));
        signed_hdrs[nsigned].name = req->headers[i].name;
        signed_hdrs[nsigned].value = req->headers[i].value;
        nsigned++;
    }
    {
        struct sigv4_request sr = {
            .method = req->method,
            .path = req->raw_path,
            .query = req->raw_query,
            .headers = signed_hdrs,
            .nheaders = nsigned,
            .body = req->body,
            .body_len = req->body_len,
        };
        struct sigv4_scope scope = {
            .amz_date = amz_date, .region = "us-east-1", .service = "route53"};
        if (sigv4_canonical_request(&sr, &creq, &sh) || sigv4_string_to_sign(&scope, creq, &sts)) {
            rc = deny(err, "IncompleteSignature",
                      "The request could not be put in canonical form (malformed query escape or "
                      "header name).");
            goto out;
        }
        sigv4_signature(&scope, creds->secret_key, sts, sig);
    }
    if (strcmp(sh, parts.signed_headers) != 0 || !ct_equal(sig, parts.signature)) {
        buf_addf(&why,
                 "The request signature we calculated does not match the signature you provided. "
                 "Check your AWS Secret Access Key and signing method. Consult the service "
                 "documentation for details.\n\nThe Canonical String for this request should "
                 "have been\n'%s'\n\nThe String-to-Sign should have been\n'%s'\n",
                 creq, sts);
        rc = deny(err, "SignatureDoesNotMatch", why.p);
        goto out;
    }
    rc = 0;
out:
    OPENSSL_cleanse(sig, sizeof(sig));
    free(parts.credential);
    free(parts.signed_headers);
    free(parts.signature);
    free(cred);
    free(signed_hdrs);
    free(creq);
    free(sh);
    free(sts);
    buf_release(&why);
    return rc;
}
