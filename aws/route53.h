/*
 * route53.h: the Route 53 API client (REST-XML over libcurl, SigV4, retries, rate limit).
 *
 * Calls: ChangeResourceRecordSets, ListResourceRecordSets (one page, or every record of one
 * name), GetChange, GetHostedZone. Wire format and types: route53_xml.h.
 *
 * Every attempt of every call:
 *   1. takes a token from the rate limiter (shared by all calls of the client, or one the
 *      caller passes in to share between clients): ChangeResourceRecordSets as a write that
 *      also takes one change token per Change element, every other call as a read that
 *      yields to writes (aws/ratelimit.h);
 *   2. gets credentials (the provider, refreshed as needed, or the static ones) and signs the
 *      request fresh: SigV4 over host, x-amz-date and, with temporary credentials,
 *      x-amz-security-token; Content-Type: text/xml (POST) and User-Agent are sent unsigned;
 *   3. runs on a pooled libcurl easy handle (keep-alive; system CAs; CURLOPT_NOSIGNAL; no
 *      redirects; HTTP/1.1; http/https only; response bodies capped at
 *      R53XML_MAX_INPUT);
 *   4. on a retryable failure (r53xml_error_retryable: throttling, PriorRequestNotComplete,
 *      5xx, connection errors, timeouts) sleeps the standard-mode backoff (retry.h: a 1 s base
 *      after throttling and PriorRequestNotComplete, 100 ms otherwise, an x-amz-retry-after
 *      header honoured) and tries again, within max_attempts, the retry quota and the call
 *      deadline. Throttling replies also slow the rate limiter down (ratelimit_throttled).
 *
 * Errors: every call returns an rc_code and fills *err (when err is not NULL) with the
 * structured error of the last attempt (HTTP status, Code, all messages, RequestId, transport
 * text, timeout flag, attempts, ambiguity). The rc mapping is r53_error_rc():
 *   CAS conflict (r53xml_error_is_cas_conflict)                 -> RC_CONFLICT
 *   timeout (the last attempt timed out)                        -> RC_UPSTREAM_TIMEOUT
 *   throttling, PriorRequestNotComplete, 5xx/429, transport,
 *   credentials unavailable, local rate limit past the deadline -> RC_UNAVAILABLE
 *   invalid arguments (bad zone id, type without name, ...)     -> RC_BAD_REQUEST
 *   any other Route 53 error or an unparseable 2xx              -> RC_UPSTREAM
 *
 * Idempotency: GETs are safe to retry. A ChangeResourceRecordSets attempt that failed after
 * it was sent (timeout, transport error, 5xx) may have been applied; the client still retries
 * it (as the AWS SDKs do) and sets err->ambiguous. For a DELETE+CREATE compare-and-swap, a
 * retry of an applied batch fails with a CAS conflict: with err->ambiguous set, a caller must
 * reload and check whether the records already are what it wanted.
 *
 * Thread-safety: every call may run on any thread at once with the same client.
 * r53_client_create/_destroy must not race with anything else on that client; create calls
 * curl_global_init(), so create the client at startup before other threads use libcurl.
 * Logging: one info line per retry (event=r53_retry); final errors are not logged here (the
 * caller handles and logs them once). No secret or signature is ever logged.
 */
#ifndef R53REG_AWS_ROUTE53_H
#define R53REG_AWS_ROUTE53_H

#include <stddef.h>
#include <stdint.h>

#include "aws/credentials.h"
#include "aws/ratelimit.h"
#include "aws/route53_xml.h"
#include "aws/sigv4.h"
#include "util/rc.h"

#define R53_DEFAULT_ENDPOINT "https://route53.amazonaws.com"
#define R53_DEFAULT_REGION "us-east-1"
#define R53_DEFAULT_SERVICE "route53"
#define R53_DEFAULT_RPS 5.0
#define R53_DEFAULT_MAX_ATTEMPTS 5
#define R53_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define R53_DEFAULT_TIMEOUT_MS 20000
#define R53_DEFAULT_CALL_TIMEOUT_MS 120000
#define R53_DEFAULT_LIST_MAX_PER_NAME 5000

/* Zero/NULL fields take the defaults. */
struct r53_client_options {
    const char *endpoint; /* "scheme://host[:port]" (optional trailing '/'), http or https;
                             NULL: R53_DEFAULT_ENDPOINT. The Host header and the signed host
                             are the authority exactly as written here. */
    const char *region;   /* signing region; NULL: us-east-1 */
    const char *service;  /* signing service; NULL: route53 */
    /* Credentials: a provider (borrowed; must outlive the client), or, when it is NULL,
     * static credentials (copied; session_token may be NULL). One of them is required. */
    struct awscred_provider *provider;
    const struct sigv4_creds *static_creds;
    /* Rate limit: a limiter to share (borrowed; must outlive the client), or, when NULL, an
     * own one of rps requests/s (0: 5; < 0: unlimited) and burst (0: 5; < 1: 1), and
     * change_rps record changes/s (<= 0: no change budget) up to change_burst. */
    struct ratelimit *ratelimit;
    double rps;
    double burst;
    double change_rps;
    double change_burst;
    unsigned connect_timeout_ms;     /* 0: 5000 */
    unsigned timeout_ms;             /* one attempt, connect included; 0: 20000 */
    unsigned call_timeout_ms;        /* a whole call: rate-limit waits, attempts and backoff;
                                        0: 120000 */
    unsigned max_attempts;           /* 0: 5 (1 = never retry) */
    unsigned retry_base_ms;          /* 0: 100 */
    unsigned retry_throttle_base_ms; /* after throttling, PriorRequestNotComplete; 0: 1000 */
    unsigned retry_max_backoff_ms;   /* 0: 20000 */
    int disable_retry_quota;         /* nonzero: only max_attempts bounds retries */
    const char *user_agent;          /* NULL: "r53reg/<version>" */
    const char *ca_file;             /* NULL: the system CA store */
    size_t list_max_per_name;        /* record sets a whole-name listing reads at most;
                                        0: R53_DEFAULT_LIST_MAX_PER_NAME */
};

struct r53_client;

/*
 * Create a client. On error *out is NULL, detail (may be NULL) says why, and the code is
 * RC_CONFIG (bad endpoint, no credentials, static credentials without key or secret) or
 * RC_INTERNAL (libcurl could not initialise).
 */
enum rc_code r53_client_create(const struct r53_client_options *opt, struct r53_client **out,
                               char *detail, size_t detail_len);
/* NULL is fine. No call may be running. */
void r53_client_destroy(struct r53_client *c);

/*
 * ChangeResourceRecordSets on zone_id ("Z123" or "/hostedzone/Z123"): n >= 1 changes applied
 * atomically, comment optional (NULL). The batch must fit Route 53's quota (the caller splits,
 * r53xml_batch_size); the client refuses a batch that does not fit with RC_BAD_REQUEST.
 * On success *out holds the ChangeInfo (id without "/change/", status PENDING usually).
 */
enum rc_code r53_change_rrsets(struct r53_client *c, const char *zone_id,
                               const struct r53_change *changes, size_t n, const char *comment,
                               struct r53_change_info *out, struct r53_error *err);

/*
 * One ListResourceRecordSets page, starting at start_name/start_type/start_identifier (each
 * may be NULL: from the beginning; a type needs a name, an identifier needs both), at most
 * maxitems records (0: Route 53's default of 100; values above 300 are clamped to 300).
 * On success *out owns the page: release with r53xml_page_release().
 */
enum rc_code r53_list_rrsets(struct r53_client *c, const char *zone_id, const char *start_name,
                             const char *start_type, const char *start_identifier,
                             unsigned maxitems, struct r53_rrset_page *out, struct r53_error *err);

/* Is page (requested at sname/stype/sid) in ListResourceRecordSets order, and does its next
 * position sort past its last record? A page that does not would make a listing repeat itself
 * forever. 0, or -1 with why (n bytes). */
int r53_page_advances(const struct r53_rrset_page *page, const char *sname, const char *stype,
                      const char *sid, char *why, size_t n);
/* "name=... type=... identifier=..." of a listing position (each may be NULL), for errors. */
void r53_describe_list_pos(char *out, size_t n, const char *name, const char *type,
                           const char *id);

/*
 * Every record set named name (any type, any routing policy: filter with
 * r53xml_rrset_is_weighted), paging with maxitems=300 and feeding NextRecordName/Type/
 * Identifier back as name/type/identifier, and stopping at the first record whose name sorts
 * past name. Names compare case-insensitively, with or without the trailing dot, after octal
 * decoding ("*.example.com" matches "\052.example.com."). On success *out owns the records
 * (is_truncated 0, no next_*): release with r53xml_page_release(). Errors as for one page, and
 * R53_E_BAD_RESPONSE / RC_UPSTREAM, naming the page, when a listing would not end: a page
 * whose records are out of ListResourceRecordSets order (r53xml_list_order_cmp) or whose next
 * position does not sort after its last record (a page repeated, a cycle), a truncated page
 * without records, or more than list_max_per_name record sets under the name (memory stays
 * bounded by that cap and one page).
 */
enum rc_code r53_list_all_rrsets_for_name(struct r53_client *c, const char *zone_id,
                                          const char *name, struct r53_rrset_page *out,
                                          struct r53_error *err);

/* The same for the record sets of one name and type (start name=name&type=type, stop at the
 * first record of another name or type). type is required (RC_BAD_REQUEST otherwise). */
enum rc_code r53_list_all_rrsets_for_name_type(struct r53_client *c, const char *zone_id,
                                               const char *name, const char *type,
                                               struct r53_rrset_page *out, struct r53_error *err);

/* GetChange: change_id "C123" or "/change/C123". */
enum rc_code r53_get_change(struct r53_client *c, const char *change_id,
                            struct r53_change_info *out, struct r53_error *err);

/* GetHostedZone: zone_id "Z123" or "/hostedzone/Z123". */
enum rc_code r53_get_hosted_zone(struct r53_client *c, const char *zone_id,
                                 struct r53_hosted_zone *out, struct r53_error *err);

/* The rc_code for a structured error (table above); RC_OK for kind R53_E_NONE. */
enum rc_code r53_error_rc(const struct r53_error *err);

/* --- counters ------------------------------------------------------------------------------ */

enum r53_call_kind {
    R53_CALL_CHANGE_RRSETS,
    R53_CALL_LIST_RRSETS, /* per page: r53_list_all_rrsets_for_name counts every page */
    R53_CALL_GET_CHANGE,
    R53_CALL_GET_HOSTED_ZONE,
    R53_CALL__COUNT
};

enum r53_outcome {
    R53_OUTCOME_OK,
    R53_OUTCOME_CONFLICT,    /* RC_CONFLICT */
    R53_OUTCOME_THROTTLED,   /* gave up while throttled (RC_UNAVAILABLE) */
    R53_OUTCOME_UNAVAILABLE, /* other RC_UNAVAILABLE */
    R53_OUTCOME_TIMEOUT,     /* RC_UPSTREAM_TIMEOUT */
    R53_OUTCOME_ERROR,       /* RC_UPSTREAM, RC_BAD_REQUEST */
    R53_OUTCOME__COUNT
};

/* "change_rrsets", "list_rrsets", "get_change", "get_hosted_zone"; "ok", "conflict",
 * "throttled", "unavailable", "timeout", "error" (metric label values). Never NULL. */
const char *r53_call_kind_name(enum r53_call_kind kind);
const char *r53_outcome_name(enum r53_outcome outcome);

struct r53_client_stats {
    uint64_t calls[R53_CALL__COUNT][R53_OUTCOME__COUNT]; /* finished calls */
    uint64_t attempts;                                   /* HTTP attempts made */
    uint64_t retries;                                    /* attempts that were retries */
    uint64_t throttles;                                  /* throttling replies received */
    uint64_t transport_errors; /* attempts that failed below HTTP (timeouts included) */
    uint64_t timeouts;         /* attempts that timed out */
    uint64_t ratelimit_waits;  /* attempts that had to wait for a token */
    uint64_t ratelimit_wait_ms;
    uint64_t retry_wait_ms; /* backoff slept between attempts (as computed) */
    unsigned retry_quota;   /* current retry quota level */
    double rate;            /* the limiter's allowed request rate now (0: unlimited) */
    double change_rate;     /* its allowed change rate now (0: no change budget) */
    uint64_t changes;       /* Change elements sent (every attempt) */
};

/* A snapshot of the counters (each read atomically; the set is not one atomic snapshot).
 * Thread-safe. */
void r53_client_stats(struct r53_client *c, struct r53_client_stats *out);

#endif
