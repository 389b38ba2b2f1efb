/*
 * retry.h: the AWS SDKs' "standard" retry mode (botocore retries/standard.py, the AWS SDK
 * reference "Retry behavior"): a maximum number of attempts, full-jitter exponential backoff,
 * and a retry quota (token bucket) shared by every call of a client so that an outage does not
 * turn into a retry storm.
 *
 *   delay(n) = rand[0,1) * min(base * 2^(n-1), max_backoff)    for the retry after attempt n
 *   base: throttle_base_ms (1 s) after Throttling or PriorRequestNotComplete, base_ms (100 ms)
 *   after other errors, timeouts and transport failures, as the AWS SDKs' "standard"
 *   retry mode does.
 *   x-amz-retry-after: when the answer carried one (ms), the delay is at least that and at
 *   least the jittered delay above, but at most the jittered delay + 5 s (a server cannot
 *   park the client for long; the jitter keeps waiters who were told the same apart).
 *   quota: starts at capacity (500); a retry after an error costs retry_cost (5), after a
 *   timeout or transport failure timeout_cost (10); no tokens left -> no retry. A successful
 *   call puts back what its last retry took, or no_retry_increment (1) if it needed none;
 *   the quota never exceeds capacity.
 *
 * Which failures are retryable is the caller's business (route53_xml.h
 * r53xml_error_retryable); this module only decides "may we, and after how long".
 *
 * Usage per call:
 *   struct awsretry_call rc; awsretry_call_begin(r, &rc);
 *   for (;;) { attempt...;
 *              if ok { awsretry_on_done(r, &rc, 1); break; }
 *              if (!retryable) { awsretry_on_done(r, &rc, 0); break; }
 *              if (!awsretry_on_failure(r, &rc, kind, retry_after_ms, &delay)) break;
 *              sleep(delay); }
 *
 * Thread-safety: a struct awsretry is shared by any number of threads (the quota is guarded by
 * a mutex); a struct awsretry_call belongs to one call on one thread.
 */
#ifndef R53REG_AWS_RETRY_H
#define R53REG_AWS_RETRY_H

#define AWSRETRY_DEFAULT_MAX_ATTEMPTS 3
#define AWSRETRY_DEFAULT_BASE_MS 100
#define AWSRETRY_DEFAULT_THROTTLE_BASE_MS 1000
#define AWSRETRY_RETRY_AFTER_SLACK_MS 5000
#define AWSRETRY_DEFAULT_MAX_BACKOFF_MS 20000
#define AWSRETRY_DEFAULT_QUOTA 500
#define AWSRETRY_DEFAULT_RETRY_COST 5
#define AWSRETRY_DEFAULT_TIMEOUT_COST 10
#define AWSRETRY_DEFAULT_NO_RETRY_INCREMENT 1

/* Zero fields take the defaults above. */
struct awsretry_options {
    unsigned max_attempts;     /* total attempts including the first; 1 = never retry */
    unsigned base_ms;          /* backoff base after errors, timeouts, transport failures */
    unsigned throttle_base_ms; /* backoff base after throttling */
    unsigned max_backoff_ms;   /* cap of the backoff before jitter */
    unsigned quota;            /* retry quota capacity (and initial level) */
    unsigned retry_cost;
    unsigned timeout_cost;
    unsigned no_retry_increment;
    int disable_quota; /* nonzero: no retry quota (only max_attempts limits retries) */
    /* Random number in [0, 1) for the jitter; NULL: an internal generator seeded from
     * getrandom(2). Tests pass a fixed value. Called with the object's mutex held. */
    double (*rand01)(void *arg);
    void *rand_arg;
};

enum awsretry_kind {
    AWSRETRY_ERROR,    /* a retryable error response (5xx, RequestTimeout, ...) */
    AWSRETRY_TIMEOUT,  /* a timeout or transport failure: costs timeout_cost */
    AWSRETRY_THROTTLE, /* Throttling or PriorRequestNotComplete: throttle_base_ms */
};

struct awsretry;

/* Per-call state; initialise with awsretry_call_begin(). */
struct awsretry_call {
    unsigned attempts; /* attempts made so far (set by awsretry_on_failure/_on_success) */
    unsigned acquired; /* quota taken by the latest retry, 0 if none */
};

/* Create a policy (NULL options: all defaults). Never NULL. */
struct awsretry *awsretry_create(const struct awsretry_options *opt);
/* NULL is fine. Must not race with other calls on r. */
void awsretry_destroy(struct awsretry *r);

void awsretry_call_begin(struct awsretry *r, struct awsretry_call *call);

/*
 * Attempt number call->attempts + 1 failed retryably. retry_after_ms: the answer's
 * x-amz-retry-after in ms, or < 0 when it had none. Returns 1 when another attempt may follow,
 * with *delay_ms the delay to sleep first (full-jitter backoff, see above; the quota cost has
 * been taken); 0 when attempts are exhausted or the quota is empty (*delay_ms = 0). Either way
 * call->attempts is incremented.
 */
int awsretry_on_failure(struct awsretry *r, struct awsretry_call *call, enum awsretry_kind kind,
                        long retry_after_ms, unsigned *delay_ms);

/* Attempt number call->attempts + 1 ended the call without a retryable failure: a success
 * (succeeded = 1) refunds quota as described above; an error that is not retried
 * (succeeded = 0) refunds nothing. call->attempts is incremented. */
void awsretry_on_done(struct awsretry *r, struct awsretry_call *call, int succeeded);

/* The backoff bound for the retry after attempt n (>= 1) of that kind, before jitter:
 * min(base*2^(n-1), max_backoff). Pure. */
unsigned awsretry_backoff_cap_ms(const struct awsretry *r, enum awsretry_kind kind,
                                 unsigned attempt);

/* The delay for a jittered backoff and an x-amz-retry-after value (< 0: none), as above.
 * Pure. */
unsigned awsretry_delay_ms(unsigned jittered_ms, long retry_after_ms);

/* Current quota level (for stats and tests). */
unsigned awsretry_quota(struct awsretry *r);
unsigned awsretry_max_attempts(const struct awsretry *r);

#endif
