/*
 * checker.h: the health check engine. One thread checks many backend IPs (TCP connect, HTTP or
 * HTTPS GET) on a timer and reports up<->down transitions with HAProxy's rise/fall semantics.
 * The engine lives in registry/checker/ (its internal.h states the structs and thread model).
 *
 *     struct hc_options opt = {.defaults = {.kind = HC_HTTP, .port = 8080, .path = "/healthz"},
 *                              .on_change = changed, .arg = reg};
 *     struct hc_engine *e = hc_engine_create(&opt);
 *     hc_engine_add(e, &ip, NULL);          // checked with the defaults
 *     ...
 *     hc_engine_destroy(e);
 *
 * State machine per target: a target starts up (assumed healthy; opt->start_down starts it
 * down). `fall` consecutive failed checks take an up target down, `rise` consecutive successful
 * checks bring a down target up; each such transition calls on_change once. Down targets keep
 * being checked, at the same interval.
 *
 * What counts as success: TCP, the connect() completes within timeout_ms; HTTP(S), a GET of
 * http(s)://<ip>:<port><path> answers within timeout_ms (connect included) with a status in
 * [status_min, status_max]. Redirects are not followed (3xx is judged by the range), no proxy
 * is ever used (CURLOPT_NOPROXY "*", whatever the environment says), the Host header is the IP
 * ("Host: 10.0.0.1", "Host: [2001:db8::1]"), at most HC_BODY_MAX bytes of the body are read
 * (the rest is cut off and does not matter), and every check opens a fresh connection that
 * it closes with a reset (SO_LINGER 0, as HAProxy does) so thousands of checks per second
 * leave no TIME_WAIT sockets behind.
 *
 * HTTPS: certificate verification is OFF unless tls_verify asks for it. Backends are addressed
 * by IP, so their certificates (issued for names) would not match anyway; the check proves the
 * backend completes a TLS handshake and answers, not who it is. With tls_verify on, the
 * system CA store is used and the certificate must be valid for the IP.
 *
 * A check that cannot even start for a local reason (out of file descriptors, no ephemeral
 * port) says nothing about the target: it is logged, counted in hc_stats.local_errors and
 * retried at the next interval, and the target's state does not change.
 *
 * Threading: every function is thread-safe except hc_engine_destroy() (see there). Callbacks
 * run on the engine thread with no engine lock held: they may call hc_engine_add(),
 * hc_engine_remove(), hc_engine_status() and hc_engine_stats() on the same engine (never
 * hc_engine_destroy()), and should return quickly since checks wait while they run.
 *
 * Metrics (util/metrics.h, metrics_default(), summed over all engines of the process):
 * r53reg_health_checks_total{result="ok|fail"}, r53reg_health_transitions_total{to="up|down"},
 * gauges r53reg_health_targets and r53reg_health_down.
 */
#ifndef R53REG_REGISTRY_CHECKER_H
#define R53REG_REGISTRY_CHECKER_H

#include <stddef.h>
#include <stdint.h>

#include "util/ip.h"
#include "util/rc.h"

#define HC_ERROR_MAX 160        /* bytes of last_error, NUL included */
#define HC_PATH_MAX 1024        /* longest HTTP path */
#define HC_BODY_MAX (64 * 1024) /* response body bytes read before the rest is cut off */

/* Built-in defaults, used where a field of hc_options.defaults is 0. */
#define HC_DEFAULT_INTERVAL_MS 2000
#define HC_DEFAULT_TIMEOUT_MS 1000
#define HC_DEFAULT_RISE 2
#define HC_DEFAULT_FALL 3
#define HC_DEFAULT_STATUS_MIN 200
#define HC_DEFAULT_STATUS_MAX 399
#define HC_DEFAULT_MAX_PARALLEL 500

enum hc_kind {
    HC_KIND_INHERIT = 0, /* in an override: the engine's kind; in hc_options: HC_TCP */
    HC_TCP,
    HC_HTTP,
    HC_HTTPS,
};

/*
 * One check configuration. In hc_options.defaults, 0/NULL fields take the built-in defaults
 * above; in an override given to hc_engine_add(), 0/NULL fields take the engine's defaults, so
 * an override names only what differs ({.path = "/ready"}).
 */
struct hc_check {
    enum hc_kind kind;
    unsigned port;    /* 1..65535; 0: inherit. The engine default may stay 0 when every
                         hc_engine_add() gives a port in its override. */
    const char *path; /* HTTP(S): starts with '/', printable ASCII without spaces, at most
                         HC_PATH_MAX bytes. NULL: inherit ("/"). Copied. */
    int status_min;   /* HTTP(S): success range, 100..599; 0: inherit (200..399) */
    int status_max;
    unsigned interval_ms; /* from the start of one check to the start of the next, >= 10 */
    unsigned timeout_ms;  /* per check, connect included, >= 1 */
    unsigned rise;        /* consecutive successes that bring a down target up, >= 1 */
    unsigned fall;        /* consecutive failures that take an up target down, >= 1 */
    int tls_verify;       /* HTTPS: 1 verify the certificate, -1 do not, 0 inherit (off) */
};

/* Called on the engine thread on every up<->down transition of ip (valid during the call
 * only). up is the new state; last_error is the error of the check that took the target down,
 * "" when it came up; never NULL, valid during the call only. */
typedef void (*hc_change_fn)(void *arg, const struct ip_addr *ip, int up, const char *last_error);

struct hc_options {
    struct hc_check defaults;
    unsigned max_parallel;  /* checks in flight at most (<= 100000); the rest wait their turn,
                               oldest due first. 0: 500 */
    int start_down;         /* new targets start down (need `rise` successes) instead of up */
    hc_change_fn on_change; /* may be NULL */
    void *arg;              /* passed to on_change */
};

struct hc_status {
    int up;                        /* current state */
    unsigned consecutive_ok;       /* successes since the last failure */
    unsigned consecutive_fail;     /* failures since the last success */
    uint64_t checks;               /* checks completed for this target (local errors excluded) */
    uint64_t failures;             /* of those, failed */
    int last_ok;                   /* the latest check succeeded (0 before the first check) */
    char last_error[HC_ERROR_MAX]; /* the latest failure's text ("" if none yet); kept after
                                      the target recovers */
    int64_t last_check_ms;         /* Unix time (ms) the latest check completed; 0: none yet */
    int64_t last_change_ms;        /* Unix time (ms) of the latest transition; 0: none yet */
    int64_t added_ms;              /* Unix time (ms) the target was added */
    int64_t run_started_ms;        /* Unix time (ms) the first check of the current run of
                                      equal results completed (the first failure of a streak
                                      that took it down); 0: none yet */
};

struct hc_stats {
    uint64_t checks;           /* checks completed */
    uint64_t failures;         /* of those, failed */
    uint64_t transitions_up;   /* down -> up */
    uint64_t transitions_down; /* up -> down */
    uint64_t local_errors;     /* checks that could not start (see above) */
    unsigned in_flight;        /* checks running now */
    unsigned max_in_flight;    /* most checks ever running at once */
    unsigned targets;          /* targets now */
    unsigned down;             /* of those, down */
    uint64_t thread_cpu_ns;    /* CPU time the engine thread has used */
};

struct hc_engine;

/* Parse a status range "MIN-MAX" (digits only, 100 <= MIN <= MAX <= 599). 0, or -1. Pure. */
int hc_parse_status_range(const char *s, int *min, int *max);

/*
 * Check that c is a valid override (0/NULL fields allowed), for callers that take check
 * settings from users. On error returns RC_BAD_REQUEST and writes a one-sentence reason into
 * detail[0..n) (see rc_detail()). Pure, thread-safe.
 */
enum rc_code hc_check_validate(const struct hc_check *c, char *detail, size_t n);

/*
 * Start an engine and its thread. opt is copied (path included); opt NULL means all defaults.
 * Returns NULL, after logging why, when opt is invalid (see hc_check_validate()) or the
 * thread, epoll set or curl multi handle cannot be created. The caller owns the engine and
 * frees it with hc_engine_destroy().
 */
struct hc_engine *hc_engine_create(const struct hc_options *opt);

/*
 * Stop the thread, cancel the checks in flight (no callback runs for them), free every target
 * and the engine. NULL is fine. Not thread-safe: call it once, not from a callback, and only
 * when no other thread uses e any more. When it returns, no callback runs any more.
 */
void hc_engine_destroy(struct hc_engine *e);

/*
 * Check ip from now on, with the engine's defaults or with override (0/NULL fields inherit;
 * copied). The first check comes at a random time within one interval, so many targets added
 * at once are spread out. Adding an IP that is already checked replaces its override (from its
 * next check on) and keeps its state and counts. Returns RC_OK, or RC_BAD_REQUEST when the
 * override is invalid or no port results (nothing changes then). O(1) average; thread-safe.
 */
enum rc_code hc_engine_add(struct hc_engine *e, const struct ip_addr *ip,
                           const struct hc_check *override);

/* hc_engine_add(), but a new target starts up (up = 1) or down (up = 0) whatever
 * hc_options.start_down says: the registry restarts targets in the state the store kept. */
enum rc_code hc_engine_add_as(struct hc_engine *e, const struct ip_addr *ip,
                              const struct hc_check *override, int up);

/*
 * Stop checking ip: its status is gone at once, a check in flight is cancelled, and no
 * transition decided after this call is reported (a callback for ip already running on the
 * engine thread when this is called may still be finishing). Returns RC_OK or RC_NOT_FOUND.
 * O(1) average; thread-safe.
 */
enum rc_code hc_engine_remove(struct hc_engine *e, const struct ip_addr *ip);

/* Copy ip's status into *out. Returns RC_OK or RC_NOT_FOUND (*out untouched). Thread-safe. */
enum rc_code hc_engine_status(struct hc_engine *e, const struct ip_addr *ip, struct hc_status *out);

/* Copy the engine's counters into *out. Thread-safe. */
void hc_engine_stats(struct hc_engine *e, struct hc_stats *out);

#endif
