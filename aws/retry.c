/*
 * retry.c: AWS "standard" retry mode: attempts, full-jitter backoff, retry quota (contract:
 * retry.h).
 *
 * Invariants: 0 <= quota <= capacity. A call holds at most one acquisition at a time (the one
 * of its latest retry), refunded only when the call then succeeds, as botocore's
 * RetryQuotaChecker does.
 *
 * Threading: the quota and the internal random generator state are guarded by lock; the
 * options are read-only after create.
 */
#include "aws/retry.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include "util/xalloc.h"

struct awsretry {
    struct awsretry_options opt; /* defaults applied; read-only */

    pthread_mutex_t lock;
    unsigned quota; /* guarded by lock */
    uint64_t rng;   /* guarded by lock (xorshift64*) */
};

static double rand_internal(struct awsretry *r)
{
    uint64_t x = r->rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->rng = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0; /* 2^53 */
}

struct awsretry *awsretry_create(const struct awsretry_options *opt)
{
    struct awsretry *r = xcalloc(1, sizeof(*r));
    struct timespec ts;

    if (opt)
        r->opt = *opt;
    if (!r->opt.max_attempts)
        r->opt.max_attempts = AWSRETRY_DEFAULT_MAX_ATTEMPTS;
    if (!r->opt.base_ms)
        r->opt.base_ms = AWSRETRY_DEFAULT_BASE_MS;
    if (!r->opt.throttle_base_ms)
        r->opt.throttle_base_ms = AWSRETRY_DEFAULT_THROTTLE_BASE_MS;
    if (!r->opt.max_backoff_ms)
        r->opt.max_backoff_ms = AWSRETRY_DEFAULT_MAX_BACKOFF_MS;
    if (!r->opt.quota)
        r->opt.quota = AWSRETRY_DEFAULT_QUOTA;
    if (!r->opt.retry_cost)
        r->opt.retry_cost = AWSRETRY_DEFAULT_RETRY_COST;
    if (!r->opt.timeout_cost)
        r->opt.timeout_cost = AWSRETRY_DEFAULT_TIMEOUT_COST;
    if (!r->opt.no_retry_increment)
        r->opt.no_retry_increment = AWSRETRY_DEFAULT_NO_RETRY_INCREMENT;
    r->quota = r->opt.quota;
    if (getrandom(&r->rng, sizeof(r->rng), GRND_NONBLOCK) != (ssize_t)sizeof(r->rng)) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        r->rng = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)r;
    }
    if (!r->rng)
        r->rng = 0x9E3779B97F4A7C15ULL;
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

void awsretry_destroy(struct awsretry *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->lock);
    free(r);
}

void awsretry_call_begin(struct awsretry *r, struct awsretry_call *call)
{
    (void)r;
    call->attempts = 0;
    call->acquired = 0;
}

unsigned awsretry_backoff_cap_ms(const struct awsretry *r, enum awsretry_kind kind,
                                 unsigned attempt)
{
    uint64_t cap = kind == AWSRETRY_THROTTLE ? r->opt.throttle_base_ms : r->opt.base_ms;
    unsigned i;

    for (i = 1; i < attempt && cap < r->opt.max_backoff_ms; i++)
        cap *= 2;
    return cap < r->opt.max_backoff_ms ? (unsigned)cap : r->opt.max_backoff_ms;
}

unsigned awsretry_delay_ms(unsigned jittered_ms, long retry_after_ms)
{
    uint64_t most = (uint64_t)jittered_ms + AWSRETRY_RETRY_AFTER_SLACK_MS;

    if (retry_after_ms < 0 || (uint64_t)retry_after_ms <= jittered_ms)
        return jittered_ms;
    return (unsigned)((uint64_t)retry_after_ms < most ? (uint64_t)retry_after_ms : most);
}

int awsretry_on_failure(struct awsretry *r, struct awsretry_call *call, enum awsretry_kind kind,
                        long retry_after_ms, unsigned *delay_ms)
{
    unsigned cost = kind == AWSRETRY_TIMEOUT ? r->opt.timeout_cost : r->opt.retry_cost;
    unsigned cap;
    double u;
    int ok = 0;

    *delay_ms = 0;
    call->attempts++;
    if (call->attempts >= r->opt.max_attempts)
        return 0;
    cap = awsretry_backoff_cap_ms(r, kind, call->attempts);
    pthread_mutex_lock(&r->lock);
    if (r->opt.disable_quota || r->quota >= cost) {
        if (!r->opt.disable_quota) {
            r->quota -= cost;
            call->acquired = cost;
        }
        u = r->opt.rand01 ? r->opt.rand01(r->opt.rand_arg) : rand_internal(r);
        if (!(u >= 0.0))
            u = 0.0;
        if (u >= 1.0)
            u = 0.999999;
        *delay_ms = awsretry_delay_ms((unsigned)(u * (double)cap), retry_after_ms);
        ok = 1;
    }
    pthread_mutex_unlock(&r->lock);
    return ok;
}

void awsretry_on_done(struct awsretry *r, struct awsretry_call *call, int succeeded)
{
    unsigned refund;

    call->attempts++;
    if (!succeeded || r->opt.disable_quota)
        return;
    refund = call->acquired ? call->acquired : r->opt.no_retry_increment;
    call->acquired = 0;
    pthread_mutex_lock(&r->lock);
    r->quota = r->quota + refund > r->opt.quota ? r->opt.quota : r->quota + refund;
    pthread_mutex_unlock(&r->lock);
}

unsigned awsretry_quota(struct awsretry *r)
{
    unsigned q;

    pthread_mutex_lock(&r->lock);
    q = r->quota;
    pthread_mutex_unlock(&r->lock);
    return q;
}

unsigned awsretry_max_attempts(const struct awsretry *r)
{
    return r->opt.max_attempts;
}
