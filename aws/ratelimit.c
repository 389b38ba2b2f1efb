/*
 * ratelimit.c: the shared limiter: two token buckets with reservations, the adaptive rate,
 * and writes before reads (contract: ratelimit.h; arithmetic: ratepolicy.c).
 *
 * Invariants: `writers` counts writes sleeping until their reserved time (acquire or
 * reserve_write); `held` is 1 while a request token reserved by reserve_write waits for its
 * write, until held_until, after which it is given back. A read starts reserving only when
 * writers == 0 and held == 0, or after read_yield_ns. The allowed rates at time t are
 * rate * f(t) and change_rate * f(t), f(t) = ratepolicy_cubic_rate(t) / rate.
 *
 * Threading: everything below the lock is guarded by it; the condition variable (on
 * CLOCK_MONOTONIC) wakes reads when a write is done or a reservation is used or given back.
 * Sleeping for a reserved time happens after the lock is released (clock_nanosleep,
 * absolute).
 */
#include "aws/ratelimit.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "aws/ratepolicy.h"
#include "util/xalloc.h"

#define NS_PER_S RATEPOLICY_NS_PER_S
#define SLACK_NS 1000 /* a reserved time is never early by float rounding */

struct ratelimit {
    double base_rate, base_change_rate; /* read-only: as configured; <= 0: that bucket is off */
    double base_burst, base_change_burst; /* read-only */
    int64_t read_yield_ns, hold_ns;       /* read-only */

    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* This process's share of the budget (ratelimit_set_share): rate = base_rate * share,
     * change_rate = base_change_rate * share, both > 0 exactly when their base is. */
    double share;                      /* guarded by lock */
    double rate, change_rate;          /* guarded by lock */
    unsigned long long local_cuts;     /* guarded by lock: cuts from Route 53's own answers */
    int64_t last_local_cut_ns;         /* guarded by lock; 0: none */
    struct ratepolicy_bucket req, chg; /* guarded by lock */
    struct ratepolicy_cubic cubic;     /* guarded by lock; unused when rate <= 0 */
    unsigned writers;                  /* guarded by lock */
    int held;                          /* guarded by lock */
    int64_t held_until;                /* guarded by lock */
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
    struct ratelimit_options o = {0};
    pthread_condattr_t ca;
    int64_t now = ratelimit_now_ns();

    if (opt)
        o = *opt;
    rl->rate = rl->base_rate = o.rate > 0 ? o.rate : 0;
    rl->change_rate = rl->base_change_rate = o.change_rate > 0 ? o.change_rate : 0;
    rl->share = 1;
    rl->read_yield_ns = (int64_t)(o.read_yield_ms ? o.read_yield_ms : 2000) * 1000000;
    rl->hold_ns = (int64_t)(o.hold_ms ? o.hold_ms : 1000) * 1000000;
    rl->base_burst = o.burst;
    rl->base_change_burst =
        o.change_burst >= 1 ? o.change_burst : (rl->change_rate > 2 ? rl->change_rate : 2);
    ratepolicy_bucket_init(&rl->req, rl->base_burst, now);
    ratepolicy_bucket_init(&rl->chg, rl->base_change_burst, now);
    if (rl->rate > 0)
        ratepolicy_cubic_init(&rl->cubic, rl->rate, o.recovery_ms, o.min_fraction, o.beta, now);
    pthread_mutex_init(&rl->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rl->cond, &ca);
    pthread_condattr_destroy(&ca);
    return rl;
}

void ratelimit_destroy(struct ratelimit *rl)
{
    if (!rl)
        return;
    pthread_cond_destroy(&rl->cond);
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

/* The allowed rates at now. Lock held. */
static void rates_at(const struct ratelimit *rl, int64_t now, double *r, double *cr)
{
    double f = 1;

    *r = rl->rate;
    if (rl->rate > 0) {
        *r = ratepolicy_cubic_rate(&rl->cubic, now);
        f = *r / rl->rate;
    }
    *cr = rl->change_rate * f;
}

/* Bring both buckets up to now; give back a reservation nobody used in time. Lock held. */
static void refill(struct ratelimit *rl, int64_t now)
{
    double r, cr;

    rates_at(rl, now, &r, &cr);
    if (rl->rate > 0)
        ratepolicy_bucket_refill(&rl->req, r, now);
    if (rl->change_rate > 0)
        ratepolicy_bucket_refill(&rl->chg, cr, now);
    if (rl->held && now >= rl->held_until) {
        rl->held = 0;
        ratepolicy_bucket_give(&rl->req, 1);
        pthread_cond_broadcast(&rl->cond);
    }
}

static void sleep_until(int64_t t)
{
    struct timespec ts = {.tv_sec = t / NS_PER_S, .tv_nsec = t % NS_PER_S};

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static void wait_cond_until(struct ratelimit *rl, int64_t t)
{
    struct timespec ts = {.tv_sec = t / NS_PER_S, .tv_nsec = t % NS_PER_S};

    pthread_cond_timedwait(&rl->cond, &rl->lock, &ts);
}

/* A read waits while writes are ahead of it, at most read_yield_ns and not past the
 * deadline. Lock held. */
static void yield_to_writes(struct ratelimit *rl, int64_t deadline_ns)
{
    int64_t start = ratelimit_now_ns(), until = start + rl->read_yield_ns;

    if (deadline_ns && deadline_ns < until)
        until = deadline_ns;
    for (;;) {
        int64_t now = ratelimit_now_ns(), wake = until;
        refill(rl, now);
        if ((!rl->writers && !rl->held) || now >= until)
            return;
        if (rl->held && rl->held_until < wake)
            wake = rl->held_until;
        wait_cond_until(rl, wake);
    }
}

/* Leave the writers' count after sleeping until a reserved time. */
static void writer_done(struct ratelimit *rl)
{
    pthread_mutex_lock(&rl->lock);
    rl->writers--;
    pthread_cond_broadcast(&rl->cond);
    pthread_mutex_unlock(&rl->lock);
}

enum rc_code ratelimit_acquire(struct ratelimit *rl, enum ratelimit_class cls, unsigned changes,
                               int64_t deadline_ns, int64_t *waited_ns)
{
    int64_t now, wait = 0, wc = 0;
    double r, cr;
    int write = cls == RATELIMIT_WRITE, use_held;

    if (waited_ns)
        *waited_ns = 0;
    if (rl->base_rate <= 0 && (rl->base_change_rate <= 0 || !write || !changes))
        return RC_OK;
    pthread_mutex_lock(&rl->lock);
    if (!write)
        yield_to_writes(rl, deadline_ns);
    now = ratelimit_now_ns();
    refill(rl, now);
    rates_at(rl, now, &r, &cr);
    use_held = write && rl->held;
    if (rl->rate > 0 && !use_held)
        wait = ratepolicy_bucket_wait(&rl->req, r, 1);
    if (write && changes && rl->change_rate > 0)
        wc = ratepolicy_bucket_wait(&rl->chg, cr, changes);
    if (wc > wait)
        wait = wc;
    if (wait > 0 && wait < INT64_MAX - now - SLACK_NS)
        wait += SLACK_NS;
    if (wait >= INT64_MAX - now || (deadline_ns && now + wait > deadline_ns)) {
        pthread_mutex_unlock(&rl->lock);
        return RC_UNAVAILABLE;
    }
    if (use_held) {
        rl->held = 0;
        pthread_cond_broadcast(&rl->cond);
    } else if (rl->rate > 0) {
        ratepolicy_bucket_take(&rl->req, r, 1);
    }
    if (write && changes && rl->change_rate > 0)
        ratepolicy_bucket_take(&rl->chg, cr, changes);
    if (rl->rate > 0)
        ratepolicy_cubic_sent(&rl->cubic, now + wait);
    if (write && wait > 0)
        rl->writers++;
    pthread_mutex_unlock(&rl->lock);
    if (wait > 0) {
        sleep_until(now + wait);
        if (write)
            writer_done(rl);
    }
    if (waited_ns)
        *waited_ns = wait;
    return RC_OK;
}

void ratelimit_reserve_write(struct ratelimit *rl)
{
    int64_t now, wait = 0;
    double r, cr;

    if (rl->base_rate <= 0 && rl->base_change_rate <= 0)
        return;
    pthread_mutex_lock(&rl->lock);
    now = ratelimit_now_ns();
    refill(rl, now);
    rates_at(rl, now, &r, &cr);
    if (rl->rate > 0 && !rl->held) {
        wait = ratepolicy_bucket_take(&rl->req, r, 1);
        if (wait > 0)
            wait += SLACK_NS;
        rl->held = 1;
        if (wait > 0)
            rl->writers++;
    }
    rl->held_until = now + wait + rl->hold_ns;
    pthread_mutex_unlock(&rl->lock);
    if (wait > 0) {
        sleep_until(now + wait);
        writer_done(rl);
    }
    /* The change bucket out of debt: a write of one set's DELETE + CREATE could go. */
    for (;;) {
        int64_t wc = 0;
        pthread_mutex_lock(&rl->lock);
        now = ratelimit_now_ns();
        refill(rl, now);
        rates_at(rl, now, &r, &cr);
        if (rl->change_rate > 0)
            wc = ratepolicy_bucket_wait(&rl->chg, cr, 2);
        if (rl->held && rl->held_until < now + wc + rl->hold_ns)
            rl->held_until = now + wc + rl->hold_ns;
        pthread_mutex_unlock(&rl->lock);
        if (wc <= 0)
            return;
        sleep_until(now + wc + SLACK_NS);
    }
}

/* Cut the rate at now; 1 when it was cut (not within the hold period of the last cut). */
static int cut(struct ratelimit *rl, int64_t now)
{
    refill(rl, now);
    if (!ratepolicy_cubic_throttled(&rl->cubic, now))
        return 0;
    /* no saved burst survives a cut: the account's bucket is empty now */
    if (rl->req.level > 0)
        rl->req.level = 0;
    if (rl->chg.level > 0)
        rl->chg.level = 0;
    return 1;
}

void ratelimit_throttled(struct ratelimit *rl)
{
    int64_t now;

    if (rl->base_rate <= 0)
        return;
    pthread_mutex_lock(&rl->lock);
    now = ratelimit_now_ns();
    if (cut(rl, now)) {
        rl->local_cuts++;
        rl->last_local_cut_ns = now;
    }
    pthread_mutex_unlock(&rl->lock);
}

int ratelimit_throttled_by_peer(struct ratelimit *rl)
{
    int done;

    if (rl->base_rate <= 0)
        return 0;
    pthread_mutex_lock(&rl->lock);
    done = cut(rl, ratelimit_now_ns());
    pthread_mutex_unlock(&rl->lock);
    return done;
}

void ratelimit_cuts(struct ratelimit *rl, unsigned long long *events, int64_t *last_ns)
{
    pthread_mutex_lock(&rl->lock);
    *events = rl->local_cuts;
    *last_ns = rl->last_local_cut_ns;
    pthread_mutex_unlock(&rl->lock);
}

void ratelimit_set_share(struct ratelimit *rl, double share)
{
    int64_t now;
    double k;

    if (!(share > 0) || share > 1)
        share = 1;
    pthread_mutex_lock(&rl->lock);
    if (share == rl->share) {
        pthread_mutex_unlock(&rl->lock);
        return;
    }
    now = ratelimit_now_ns();
    refill(rl, now); /* the tokens earned so far at the old rate */
    k = share / rl->share;
    rl->share = share;
    rl->rate = rl->base_rate * share;
    rl->change_rate = rl->base_change_rate * share;
    if (rl->base_rate > 0)
        ratepolicy_cubic_rescale(&rl->cubic, k);
    /* The buckets shrink with the share (never below one call or one set's DELETE + CREATE);
     * tokens saved above the new size are dropped, debts are kept. */
    rl->req.burst = rl->base_burst * share >= 1 ? rl->base_burst * share : 1;
    if (rl->req.level > rl->req.burst)
        rl->req.level = rl->req.burst;
    rl->chg.burst = rl->base_change_burst * share >= 2 ? rl->base_change_burst * share : 2;
    if (rl->chg.burst > rl->base_change_burst && rl->base_change_burst >= 1)
        rl->chg.burst = rl->base_change_burst;
    if (rl->chg.level > rl->chg.burst)
        rl->chg.level = rl->chg.burst;
    pthread_mutex_unlock(&rl->lock);
}

double ratelimit_share(struct ratelimit *rl)
{
    double s;

    pthread_mutex_lock(&rl->lock);
    s = rl->share;
    pthread_mutex_unlock(&rl->lock);
    return s;
}

double ratelimit_rate(struct ratelimit *rl)
{
    double r, cr;

    if (rl->base_rate <= 0)
        return 0;
    pthread_mutex_lock(&rl->lock);
    rates_at(rl, ratelimit_now_ns(), &r, &cr);
    pthread_mutex_unlock(&rl->lock);
    return r;
}

double ratelimit_change_rate(struct ratelimit *rl)
{
    double r, cr;

    if (rl->base_change_rate <= 0)
        return 0;
    pthread_mutex_lock(&rl->lock);
    rates_at(rl, ratelimit_now_ns(), &r, &cr);
    pthread_mutex_unlock(&rl->lock);
    return cr;
}

int64_t ratelimit_write_wait_ns(struct ratelimit *rl)
{
    int64_t now, w = 0, wc = 0;
    double r, cr;

    if (rl->base_rate <= 0 && rl->base_change_rate <= 0)
        return 0;
    pthread_mutex_lock(&rl->lock);
    now = ratelimit_now_ns();
    refill(rl, now);
    rates_at(rl, now, &r, &cr);
    if (rl->rate > 0 && !rl->held)
        w = ratepolicy_bucket_wait(&rl->req, r, 1);
    if (rl->change_rate > 0)
        wc = ratepolicy_bucket_wait(&rl->chg, cr, 2);
    pthread_mutex_unlock(&rl->lock);
    if (wc > w)
        w = wc;
    return w > 0 ? w : 0;
}
