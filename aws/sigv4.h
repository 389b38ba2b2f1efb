/*
 * sigv4.h: AWS Signature Version 4 (header signing), with OpenSSL's SHA-256 and HMAC.
 *
 * The contract follows the official AWS SigV4 test suite and botocore:
 * - path: the request path *decoded* (as the suite's .req files show it, e.g. "/ሴ" or
 *   "/2013-04-01/hostedzone/Z1/rrset/"); NULL or "" is "/". It is first normalized, as AWS
 *   does for every service except S3 (the suite's normalize-path cases): dot segments are
 *   removed (RFC 3986 5.2.4; ".." at the root is dropped) and repeated slashes collapsed, so
 *   "//example//" is "/example/", "/./example" is "/example" and "/a/b/.." is "/a/". A
 *   trailing slash is kept (and added after a final "." or ".."); the result always starts
 *   with '/'. S3 requests must not be signed with this function. The canonical URI is then
 *   every byte except unreserved characters (A-Za-z0-9-_.~) and '/' percent-encoded with
 *   uppercase hex. AWS's own rule for non-S3 services is "encode the already-encoded wire path
 *   once more"; the two agree for paths of unreserved characters and '/', which is all Route 53
 *   uses (its paths hold no dot segments or repeated slashes, so normalization leaves them
 *   unchanged). ('%' is encoded like any byte, so a wire path passed here, "/a%20b", comes out
 *   as "/a%2520b": that rule.) Normalization sees the bytes as given: in a wire path "%2F" is
 *   three ordinary bytes, not a separator.
 * - query: the raw query string without '?', or NULL/"" for none. Split on '&' (empty
 *   segments are dropped), each name and value is percent-decoded (RFC 3986: '+' stays a
 *   literal '+', it is not a space), then re-encoded (everything except unreserved, so '+'
 *   becomes %2B and a decoded '/' %2F), and pairs are sorted bytewise by encoded name, then
 *   encoded value. "a" without '=' is the pair ("a", "").
 * - headers: the headers to sign. Names must be HTTP tokens and are lowercased; values are
 *   trimmed and inner runs of whitespace (SP, HTAB, CR, LF, so an obs-folded multi-line value
 *   too) collapsed to one space; repeated names (in any case) are joined with ',' in the order
 *   given; the canonical header list is sorted bytewise by name. The caller decides what to
 *   sign: route53 requests sign host and x-amz-date (plus x-amz-security-token with temporary
 *   credentials); never user-agent. Nothing is added implicitly (see sigv4_creds).
 * - body: hashed with SHA-256 into the canonical request's payload line.
 *
 * All functions are pure and thread-safe. Strings returned through char ** are
 * NUL-terminated, heap-allocated and owned by the caller (free()); on error they are NULL.
 */
#ifndef R53REG_AWS_SIGV4_H
#define R53REG_AWS_SIGV4_H

#include <stddef.h>

#include "util/rc.h"

struct sigv4_header {
    const char *name;
    const char *value;
};

struct sigv4_request {
    const char *method;  /* "GET", "POST" */
    const char *path;    /* decoded path, see above */
    const char *query;   /* raw query string without '?', or NULL */
    const struct sigv4_header *headers; /* the headers to sign */
    size_t nheaders;
    const void *body; /* may be NULL when body_len == 0 */
    size_t body_len;
};

struct sigv4_scope {
    const char *amz_date; /* "20150830T123600Z"; its first 8 characters are the date */
    const char *region;   /* "us-east-1" */
    const char *service;  /* "route53" */
};

struct sigv4_creds {
    const char *access_key_id;
    const char *secret_access_key;
    /* NULL for long-term credentials. Informational only: the signer never adds it. To sign
     * it (route53 does), put {"x-amz-security-token", token} in sigv4_request.headers and send
     * the same header; to send it unsigned ("header after"), just send it. */
    const char *session_token;
};

/* The canonical request (six lines joined with '\n', no trailing newline) and the
 * semicolon-joined signed header list. Either out pointer may be NULL.
 * Errors: RC_BAD_REQUEST for a malformed query escape ('%' not followed by two hex digits),
 * a header whose name is NULL, empty or not an HTTP token, a missing method, or a NULL body
 * with body_len > 0. */
enum rc_code sigv4_canonical_request(const struct sigv4_request *req, char **creq,
                                     char **signed_headers);

/* "AWS4-HMAC-SHA256\n<amz_date>\n<date>/<region>/<service>/aws4_request\n<hex(sha256(creq))>"
 * Errors: RC_BAD_REQUEST when creq is NULL, amz_date is not "YYYYMMDDTHHMMSSZ", or region or
 * service is empty or holds '/', whitespace or control characters. */
enum rc_code sigv4_string_to_sign(const struct sigv4_scope *scope, const char *creq, char **sts);

/* Lowercase hex HMAC signature of sts with the key derived from secret and scope.
 * out must hold 65 bytes. Cannot fail: arguments must be non-NULL and the scope one that
 * sigv4_string_to_sign accepted. */
void sigv4_signature(const struct sigv4_scope *scope, const char *secret_access_key,
                     const char *sts, char out[65]);

/* The whole Authorization header value:
 * "AWS4-HMAC-SHA256 Credential=<akid>/<date>/<region>/<service>/aws4_request,
 *  SignedHeaders=<list>, Signature=<hex>" (one line).
 * Errors: those of sigv4_canonical_request and sigv4_string_to_sign; RC_BAD_REQUEST when
 * access_key_id is empty or holds '/' or whitespace, or secret_access_key is NULL. */
enum rc_code sigv4_authorization(const struct sigv4_request *req, const struct sigv4_scope *scope,
                                 const struct sigv4_creds *creds, char **authorization);

/* Lowercase hex SHA-256 of data; out must hold 65 bytes. */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);

/* Format a time as an amz date ("YYYYMMDDTHHMMSSZ", UTC); out must hold 17 bytes. Times
 * outside years 0000..9999 are clamped to the nearest representable one. */
void sigv4_amz_date(long long unix_seconds, char out[17]);

#endif
