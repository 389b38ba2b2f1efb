/*
 * ratelimit.c: token bucket with reservations and throttle feedback (contract: ratelimit.h).
 *
 * Invariants: level <= burst; level < 0 means -level tokens are reserved by sleeping callers.
 * rate * min_fraction <= eff_rate <= rate. `last_ns` is the time level was last brought up to
 * date; refill uses the effective rate in force at that moment (rate changes are rare, the
 * approximation errs on the slow side after a throttle).
 *
 * Threading: all state below the lock is guarded by it; acquire computes its reservation under
 * the lock and sleeps (clock_nanosleep, absolute, CLOCK_MONOTONIC) after releasing it.
 */
#include "aws/ratelimit.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "util/xalloc.h"

#define NS_PER_S 1000000000LL

struct ratelimit {
    double rate, burst, min_fraction; /* read-only */
    int64_t recovery_ns;              /* read-only */

    pthread_mutex_t lock;
    double level;             /* guarded by lock */
    double eff_rate;          /* guarded by lock */
    int64_t last_ns;          /* guarded by lock */
    int64_t last_throttle_ns; /* guarded by lock; 0: never */
    int64_t last_step_ns;     /* guarded by lock: last halving or doubling */
};

int64_t ratelimit_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

struct ratelimit *ratelimit_create(const struct ratelimit_options *opt)
{
    struct ratelimit *rl = xcalloc(1, sizeof(*rl));

    rl->rate = opt && opt->rate > 0 ? opt->rate : 0;
    rl->burst = opt && opt->burst >= 1 ? opt->burst : 1;
    rl->recovery_ns = (int64_t)(opt && opt->recovery_ms ? opt->recovery_ms : 10000) * 1000000;
    rl->min_fraction =
        opt && opt->min_fraction > 0 && opt->min_fraction <= 1 ? opt->min_fraction : 0.125;
    rl->level = rl->burst;
    rl->eff_rate = rl->rate;
    rl->last_ns = ratelimit_now_ns();
    pthread_mutex_init(&rl->lock, NULL);
    return rl;
}

void ratelimit_destroy(struct ratelimit *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

/* Bring level and eff_rate up to now. Lock held. */
static void refill(struct ratelimit *rl, int64_t now)
{
    if (now > rl->last_ns) {
        rl->level += (double)(now - rl->last_ns) * rl->eff_rate / (double)NS_PER_S;
        if (rl->level > rl->burst)
            rl->level = rl->burst;
        rl->last_ns = now;
    }
    while (rl->eff_rate < rl->rate && now - rl->last_step_ns >= rl->recovery_ns) {
        rl->eff_rate *= 2;
        if (rl->eff_rate > rl->rate)
            rl->eff_rate = rl->rate;
        rl->last_step_ns += rl->recovery_ns;
    }
}

static void sleep_until(int64_t t)
{
    struct timespec ts = {.tv_sec = t / NS_PER_S, .tv_nsec = t % NS_PER_S};

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

enum rc_code ratelimit_acquire(struct ratelimit *rl, int64_t deadline_ns, int64_t *waited_ns)
{
    int64_t now, wait = 0;
    double w;

    if (waited_ns)
        *waited_ns = 0;
    if (rl->rate <= 0)
        return RC_OK;
    pthread_mutex_lock(&rl->lock);
    now = ratelimit_now_ns();
    refill(rl, now);
    if (rl->level < 1) {
        /* Round up, plus a microsecond, so the reserved time is never early. */
        w = (1 - rl->level) * (double)NS_PER_S / rl->eff_rate;
        wait = (int64_t)w;
        if ((double)wait < w)
            wait++;
        wait += 1000;
        if (deadline_ns && now + wait > deadline_ns) {
            pthread_mutex_unlock(&rl->lock);
            return RC_UNAVAILABLE;
        }
    }
    rl->level -= 1;
    pthread_mutex_unlock(&rl->lock);
    if (wait > 0)
        sleep_until(now + wait);
    if (waited_ns)
        *waited_ns = wait;
    return RC_OK;
}

void ratelimit_wait_available(struct ratelimit *rl)
{
    for (;;) {
        int64_t now, wait;
        if (rl->rate <= 0)
            return;
        pthread_mutex_lock(&rl->lock);
        now = ratelimit_now_ns();
        refill(rl, now);
        if (rl->level >= 1) {
            pthread_mutex_unlock(&rl->lock);
            return;
        }
        wait = (int64_t)((1 - rl->level) * (double)NS_PER_S / rl->eff_rate) + 1000;
        pthread_mutex_unlock(&rl->lock);
        sleep_until(now + wait);
    }
}

void ratelimit_throttled(struct ratelimit *rl)
{
    int64_t now, hold;
    double floor_rate;

    if (rl->rate <= 0)
        return;
    pthread_mutex_lock(&rl->lock);
    now = ratelimit_now_ns();
    refill(rl, now);
    hold = (int64_t)((double)NS_PER_S / rl->eff_rate);
    if (hold < NS_PER_S)
        hold = NS_PER_S;
    if (!rl->last_throttle_ns || now - rl->last_throttle_ns >= hold) {
        floor_rate = rl->rate * rl->min_fraction;
        rl->eff_rate /= 2;
        if (rl->eff_rate < floor_rate)
            rl->eff_rate = floor_rate;
        rl->last_throttle_ns = now;
    }
    rl->last_step_ns = now; /* recovery starts over after every report */
    if (rl->level > 0)
        rl->level = 0;
    pthread_mutex_unlock(&rl->lock);
}

double ratelimit_rate(struct ratelimit *rl)
{
    double r;

    if (rl->rate <= 0)
        return 0;
    pthread_mutex_lock(&rl->lock);
    refill(rl, ratelimit_now_ns());
    r = rl->eff_rate;
    pthread_mutex_unlock(&rl->lock);
    return r;
}
