/*
 * ratelimit.h: a client-side token bucket shared by every Route 53 call of a process, so the
 * service stays under the account's API rate (ROUTE53.md "Limits": the rate is shared by every
 * tool in the account, so stay configurable and conservative).
 *
 * The bucket holds up to `burst` tokens and refills at `rate` tokens per second; it starts
 * full. Each call takes one token. A caller that finds the bucket empty reserves the next
 * token (the level goes negative) and sleeps until its reserved time, so waiters are served in
 * arrival order without a condition variable, and n calls after the burst are spaced exactly
 * 1/rate apart.
 *
 * Throttle feedback, kept simple: ratelimit_throttled() (called when Route 53 answered
 * Throttling) halves the effective rate, not below rate * min_fraction, and drops any saved
 * burst (level := min(level, 0)). Reports within one hold period (max(1 s, one token
 * interval)) of the last halving count once, so a burst of throttled replies halves once.
 * After recovery_ms without a throttle report the effective rate doubles again, step by step,
 * up to the configured rate.
 *
 * Times are CLOCK_MONOTONIC nanoseconds (ratelimit_now_ns()).
 * Thread-safety: every function may be called from any thread at once, except
 * ratelimit_destroy. Sleeping happens outside the lock.
 */
#ifndef R53REG_AWS_RATELIMIT_H
#define R53REG_AWS_RATELIMIT_H

#include <stdint.h>

#include "util/rc.h"

struct ratelimit_options {
    double rate;          /* tokens per second; <= 0: unlimited (acquire never waits) */
    double burst;         /* bucket capacity; values below 1 mean 1 */
    unsigned recovery_ms; /* 0: 10000 */
    double min_fraction;  /* floor of the reduced rate as a fraction of rate; 0: 0.125 */
};

struct ratelimit;

/* Never NULL. */
struct ratelimit *ratelimit_create(const struct ratelimit_options *opt);
/* NULL is fine. No thread may be inside ratelimit_acquire. */
void ratelimit_destroy(struct ratelimit *rl);

/*
 * Take one token, sleeping until it is available. deadline_ns: CLOCK_MONOTONIC time after
 * which the caller would rather fail; 0 means no deadline. When the token could only be had
 * after the deadline nothing is taken and RC_UNAVAILABLE is returned at once (no sleep).
 * *waited_ns (may be NULL) receives the time reserved to wait (0 when a token was ready).
 */
enum rc_code ratelimit_acquire(struct ratelimit *rl, int64_t deadline_ns, int64_t *waited_ns);

/* Sleep until a token is available, without taking it (a group committer waits here, then
 * merges everything that arrived meanwhile into the call that takes the token). */
void ratelimit_wait_available(struct ratelimit *rl);

/* Route 53 throttled us: slow down as described above. */
void ratelimit_throttled(struct ratelimit *rl);

/* The effective rate now (tokens/s; <= 0 when unlimited). */
double ratelimit_rate(struct ratelimit *rl);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t ratelimit_now_ns(void);

#endif
