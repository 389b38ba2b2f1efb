/*
 * ratelimit.h: the client-side limiter shared by every Route 53 call of a process, so the
 * service stays under the account's limits (Route 53 limits a request bucket and, since
 * 2026, a separate budget of record changes, both shared by every tool in the account; so
 * stay configurable, conservative and adaptive).
 *
 * Two token buckets (arithmetic in aws/ratepolicy.h):
 *   requests  every call takes one token: `rate` per second up to `burst`;
 *   changes   a write (ChangeResourceRecordSets) also takes one token per Change element:
 *             `change_rate` per second up to `change_burst` (off when change_rate <= 0). A
 *             batch larger than the bucket goes when it is full and leaves it in debt.
 * A caller reserves what it needs at once (waiters are served in arrival order) and sleeps
 * until its reserved time, outside the lock.
 *
 * Adaptive: ratelimit_throttled() (Route 53 answered Throttling) cuts the allowed rate at
 * once, multiplicatively, and it climbs back along a CUBIC curve to `rate`
 * (ratepolicy_cubic). The change budget follows by the same factor: a Throttling answer does
 * not say which bucket ran dry.
 *
 * Writes first: reads (listings, GetChange, GetHostedZone) wait while a write waits for its
 * tokens or holds a reservation (ratelimit_reserve_write), at most read_yield_ms per call, so
 * a long listing (a resync) cannot take every token between a committer's pace and its write.
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
    double rate;            /* requests per second; <= 0: unlimited (never waits) */
    double burst;           /* request bucket capacity; values below 1 mean 1 */
    double change_rate;     /* record changes per second; <= 0: no change budget */
    double change_burst;    /* change bucket capacity; < 1: max(2, change_rate) */
    unsigned recovery_ms;   /* a cut at `rate` climbs back in this long; 0: 30000 */
    double min_fraction;    /* floor of the cut rate as a fraction of rate; 0: 0.1 */
    double beta;            /* the cut: rate *= beta; 0: 0.7 */
    unsigned read_yield_ms; /* longest a read waits for writes; 0: 2000 */
    unsigned hold_ms;       /* a reservation unused this long is given back; 0: 1000 */
};

enum ratelimit_class {
    RATELIMIT_READ,  /* yields to writes */
    RATELIMIT_WRITE, /* ChangeResourceRecordSets */
};

struct ratelimit;

/* Never NULL. */
struct ratelimit *ratelimit_create(const struct ratelimit_options *opt);
/* NULL is fine. No thread may be inside any other function. */
void ratelimit_destroy(struct ratelimit *rl);

/*
 * Take one request token and, for a write, `changes` change tokens, sleeping until they are
 * available (a write uses the reservation of ratelimit_reserve_write when one is held).
 * deadline_ns: CLOCK_MONOTONIC time after which the caller would rather fail; 0 means no
 * deadline. When the tokens could only be had after the deadline nothing is taken and
 * RC_UNAVAILABLE is returned at once (no sleep). *waited_ns (may be NULL) receives the time
 * waited (0 when the tokens were ready).
 */
enum rc_code ratelimit_acquire(struct ratelimit *rl, enum ratelimit_class cls, unsigned changes,
                               int64_t deadline_ns, int64_t *waited_ns);

/*
 * A writer is about to write: reserve a request token for it, sleeping until there is one,
 * and wait until the change bucket is out of debt (holds min(2, change_burst)). Reads yield
 * while the reservation is held. The next write acquire uses it; unused, it is given back
 * after hold_ms. A group committer calls this before draining its queue, so whatever arrives
 * meanwhile joins the call, and no read can take the token in between.
 */
void ratelimit_reserve_write(struct ratelimit *rl);

/* Route 53 answered Throttling: cut the allowed rate (see above). Counted as a local cut
 * (ratelimit_cuts) when it cut. */
void ratelimit_throttled(struct ratelimit *rl);

/* Another replica sharing the account was throttled: cut the same way (once per hold period,
 * as for local answers), but not counted as a local cut, so replicas do not echo each other's
 * cuts. Returns 1 when the rate was cut. */
int ratelimit_throttled_by_peer(struct ratelimit *rl);

/* How many local cuts happened (Route 53 answered Throttling and the rate was cut), and the
 * CLOCK_MONOTONIC time of the last one (0: none). */
void ratelimit_cuts(struct ratelimit *rl, unsigned long long *events, int64_t *last_ns);

/*
 * This process gets share (0 < share <= 1; anything else means 1) of the configured budget:
 * replicas that share one account divide it (1 / fleet size). The request and change rates
 * and both bucket sizes are scaled (bursts never below one call, or one set's DELETE +
 * CREATE); a cut in progress keeps its depth as a fraction of the new maximum and recovers
 * in the same time. Cheap when share is unchanged.
 */
void ratelimit_set_share(struct ratelimit *rl, double share);
double ratelimit_share(struct ratelimit *rl);

/* The allowed request rate now (tokens/s; <= 0 when unlimited). */
double ratelimit_rate(struct ratelimit *rl);
/* The allowed change rate now (changes/s; <= 0 when there is no change budget). */
double ratelimit_change_rate(struct ratelimit *rl);

/* How long until a write could go (a request token free, or reserved, and the change
 * bucket out of debt), without taking anything: 0 when it could go now. */
int64_t ratelimit_write_wait_ns(struct ratelimit *rl);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t ratelimit_now_ns(void);

#endif
