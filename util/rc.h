/*
 * rc.h: the project-wide status codes.
 *
 * Every function that can fail returns an enum rc_code; 0 (RC_OK) is success. One X-macro list
 * (libuv's UV_ERRNO_MAP) gives each code its HTTP status, a stable slug used in problem+json
 * "type" URIs and metrics, and a human title. Add codes here, nowhere else.
 * Functions that explain a failure take an optional `char *detail, size_t n` buffer, filled
 * with rc_detail().
 */
#ifndef R53REG_UTIL_RC_H
#define R53REG_UTIL_RC_H

#include <stddef.h>

/* XX(name, http status, slug, title) */
#define RC_MAP(XX)                                                                          \
    XX(OK, 200, "ok", "OK")                                                                 \
    XX(INVALID_IP, 400, "invalid-ip", "Invalid IP address")                                  \
    XX(SPECIAL_ADDRESS, 400, "special-address",                                              \
       "Loopback, link-local or this-network address refused")                                \
    XX(BAD_REQUEST, 400, "bad-request", "Bad request")                                       \
    XX(UNAUTHORIZED, 401, "unauthorized", "Missing or invalid bearer token")                 \
    XX(FORBIDDEN, 403, "forbidden", "Forbidden")                                             \
    XX(NOT_FOUND, 404, "not-found", "No such resource")                                      \
    XX(NOT_REGISTERED, 404, "not-registered", "Backend is not registered")                  \
    XX(METHOD_NOT_ALLOWED, 405, "method-not-allowed", "Method not allowed")                  \
    XX(BUCKETS_FULL, 409, "buckets-full", "All eligible buckets are full")                   \
    XX(CONFLICT, 409, "conflict", "The record changed underneath the update")               \
    XX(BODY_TOO_LARGE, 413, "body-too-large", "Request body too large")                      \
    XX(UNSUPPORTED_MEDIA_TYPE, 415, "unsupported-media-type", "Unsupported media type")      \
    XX(GROUP_TOO_LARGE, 422, "group-too-large",                                              \
       "A weighted group is too large to rewrite in one atomic batch")                       \
    XX(TOO_MANY_REQUESTS, 429, "too-many-requests", "Too many requests")                     \
    XX(INTERNAL, 500, "internal", "Internal error")                                          \
    XX(STORE_IO, 500, "store-failure", "The embedded store could not persist the change")    \
    XX(UPSTREAM, 502, "upstream-error", "The DNS provider rejected or failed the change")    \
    XX(NOT_READY, 503, "not-ready", "Service is not ready")                                  \
    XX(UNAVAILABLE, 503, "upstream-unavailable", "The DNS provider is unavailable")          \
    XX(SHUTTING_DOWN, 503, "shutting-down", "Service is shutting down")                      \
    XX(UPSTREAM_TIMEOUT, 504, "upstream-timeout", "The DNS provider did not answer in time") \
    XX(INSYNC_UNKNOWN, 502, "insync-unknown", "The change was made; its propagation is unknown") \
    XX(CONFIG, 0, "config", "Invalid configuration")                                         \
    XX(IO, 0, "io", "I/O error")                                                             \
    XX(PARSE, 0, "parse", "Malformed input")

enum rc_code {
#define RC_ENUM(name, http, slug, title) RC_##name,
    RC_MAP(RC_ENUM)
#undef RC_ENUM
        RC__COUNT
};

/* HTTP status for a code (500 for codes that are not meant for HTTP). */
int rc_http_status(enum rc_code rc);
/* Stable lowercase slug ("buckets-full"); never NULL. */
const char *rc_slug(enum rc_code rc);
/* Short human title; never NULL. */
const char *rc_title(enum rc_code rc);

/*
 * Write a printf-style detail text into the caller's buffer detail of n bytes (truncated and
 * NUL-terminated as snprintf does). A NULL detail or n == 0 means the caller wants no detail:
 * nothing is written. Thread-safe (only touches detail).
 */
void rc_detail(char *detail, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
