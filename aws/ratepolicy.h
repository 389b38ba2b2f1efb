/*
 * ratepolicy.h: the arithmetic of the Route 53 rate limiter (aws/ratelimit.h), as pure
 * functions of a clock the caller passes in, so it can be table-tested with a fake clock.
 *
 * Token bucket with reservations: a bucket holds up to `burst` tokens and refills at a rate
 * given on every call (the rate may change between calls). A caller reserves n tokens: they
 * are taken at once (the level may go negative: later callers queue behind) and the caller
 * waits until the bucket had min(n, burst) of them. A request of more than the bucket holds
 * therefore goes when the bucket is full and leaves it in debt, as Route 53's own buckets are
 * modelled in tests/r53emu/README.md, and waiters are served in order of arrival.
 *
 * Adaptive rate (CUBIC, as the AWS SDKs' "adaptive" retry mode uses it): a Throttling answer
 * remembers the rate that was being sent (w_max: the measured send rate, at most the allowed
 * one) and cuts the allowed rate to beta * w_max at once; afterwards the allowed rate follows
 *     rate(t) = C * (t - K)^3 + w_max,   K = cbrt(w_max * (1 - beta) / C)
 * (t: seconds since the cut), which starts at beta * w_max, flattens out at w_max after K
 * seconds and then climbs on to the configured maximum. The SDKs evaluate the curve when an
 * answer arrives; here it is a function of time, so the bucket refills along it between
 * answers too (the same curve, sampled continuously). C is chosen so that a cut at the
 * configured maximum climbs back to it in recovery_ms. The rate never leaves
 * [min_fraction * max, max]. Reports within one hold period (max(1 s, one token interval))
 * of the last cut count once: the calls of one burst that were already on their way are one
 * signal, not several. The measured send rate is the SDKs' too: calls counted in 0.5 s
 * slots, smoothed (0.8 new, 0.2 old).
 *
 * Times are nanoseconds of one monotonic clock. Nothing here locks, sleeps or allocates;
 * callers serialise access to one struct.
 */
#ifndef R53REG_AWS_RATEPOLICY_H
#define R53REG_AWS_RATEPOLICY_H

#include <stdint.h>

#define RATEPOLICY_NS_PER_S 1000000000LL

/* --- token bucket -------------------------------------------------------------------------- */

struct ratepolicy_bucket {
    double level;    /* tokens; < 0: reserved by waiters */
    double burst;    /* capacity, >= 1 */
    int64_t last_ns; /* level is up to date at this time */
};

/* A full bucket of burst (values below 1 mean 1) at now. */
void ratepolicy_bucket_init(struct ratepolicy_bucket *b, double burst, int64_t now);
/* Bring the level up to now at rate tokens/s (capped at burst). */
void ratepolicy_bucket_refill(struct ratepolicy_bucket *b, double rate, int64_t now);
/* How long from now until the bucket holds min(n, burst) tokens at rate (0: now). Refill
 * first. Rounded up, never early. */
int64_t ratepolicy_bucket_wait(const struct ratepolicy_bucket *b, double rate, double n);
/* Take n tokens (after refill); returns the wait as ratepolicy_bucket_wait() before taking. */
int64_t ratepolicy_bucket_take(struct ratepolicy_bucket *b, double rate, double n);
/* Give n tokens back (a reservation not used), capped at burst. */
void ratepolicy_bucket_give(struct ratepolicy_bucket *b, double n);

/* --- adaptive rate ------------------------------------------------------------------------- */

struct ratepolicy_cubic {
    /* configuration (ratepolicy_cubic_init) */
    double max_rate, min_rate, beta, scale;
    /* state */
    double w_max;          /* the rate sent when last throttled */
    double k_s;            /* seconds from the cut until rate(t) is back at w_max */
    int64_t last_cut_ns;   /* 0: never cut */
    double measured;       /* smoothed send rate, calls/s */
    double slot_count;     /* calls in the current 0.5 s slot */
    int64_t slot_start_ns; /* start of that slot */
};

/* max_rate > 0 calls/s; recovery_ms (0: 30000) is how long a cut at max_rate takes to climb
 * back; min_fraction (0: 0.1) and beta (0: 0.7) as above. */
void ratepolicy_cubic_init(struct ratepolicy_cubic *c, double max_rate, unsigned recovery_ms,
                           double min_fraction, double beta, int64_t now);
/* A call was sent at now (for the measured rate). */
void ratepolicy_cubic_sent(struct ratepolicy_cubic *c, int64_t now);
/* Route 53 answered Throttling at now: cut (unless within the hold period). Returns 1 when
 * the rate was cut. */
int ratepolicy_cubic_throttled(struct ratepolicy_cubic *c, int64_t now);
/* The allowed rate at now. */
double ratepolicy_cubic_rate(const struct ratepolicy_cubic *c, int64_t now);
/* Multiply every rate of c by k > 0 (the maximum, the floor, w_max, the measured rate and the
 * curve's scale), so the allowed rate at any time is k times what it was: a cut stays a cut,
 * as a fraction of the new maximum, and climbs back in the same time. */
void ratepolicy_cubic_rescale(struct ratepolicy_cubic *c, double k);

#endif
