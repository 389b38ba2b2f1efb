/*
 * batch_policy.h: which queued bucket changes the committer sends in its next store call, and
 * whether it sends now or holds them. Pure: no locks, no clock of its own (the caller passes
 * the time), so it is table-tested with a fake clock (tests/unit/test_batch_policy.c).
 *
 * A bucket's change is a DELETE of its exact old sets and a CREATE of the new ones: it costs
 * every value the bucket holds plus the new ones, whatever the number of queued intents. So a
 * bucket with many intents and few values is the best use of a call, and a bucket written
 * while a burst still arrives is written again (whole) by a later call.
 */
#ifndef R53REG_REGISTRY_BATCH_POLICY_H
#define R53REG_REGISTRY_BATCH_POLICY_H

#include <stddef.h>
#include <stdint.h>

/* Route 53's limits for one ChangeResourceRecordSets call: ResourceRecord elements and
 * characters of value text (a DELETE and a CREATE each count). */
#define BATCH_MAX_ELEMENTS 1000
#define BATCH_MAX_CHARS 32000

/* Intents that waited longer than this are sent first, whatever their gain. */
#define BATCH_STARVE_NS 1000000000LL
/* Mutations arriving faster than this per second are a burst: everything but starving
 * buckets is held until the burst calms down. */
#define BATCH_BURST_RATE 2000.0
/* The least score that a burst lets through: only starving buckets reach it. */
#define BATCH_HOLD_GAIN 1e9

/* What the committer knows of one bucket with queued intents. */
struct batch_candidate {
    size_t values;        /* values in the bucket's served set now */
    size_t adds, removes; /* queued intents that add, and those that remove or move */
    int64_t oldest_ns;    /* CLOCK_MONOTONIC submission of the oldest queued intent; 0: none */
};

/*
 * Rank n candidates (given in arrival order of their buckets) best first: order[0..n) gets
 * their indexes, score[i] candidate i's score. Starving candidates come first, in arrival
 * order, with scores above BATCH_HOLD_GAIN; the others by gain per element they cost, ties
 * in arrival order. n is at most 2 * REG_MAX_BUCKETS.
 */
void batch_policy_rank(const struct batch_candidate *c, size_t n, int64_t now_ns, size_t *order,
                       double *score);

/* The arrival-rate sample behind batch_policy_min_score(); zeroed at start. One thread. */
struct batch_rate {
    int64_t sample_ns;
    unsigned long long sample_count;
};

/*
 * The least score a candidate needs to be sent now, given submitted (intents ever submitted)
 * at now_ns: 0 (send everything) unless intents arrived faster than BATCH_BURST_RATE per
 * second since the last call, then BATCH_HOLD_GAIN (hold all but starving candidates). An idle
 * service or a slow stream is never held: a lone registration is sent at once.
 */
double batch_policy_min_score(struct batch_rate *r, unsigned long long submitted, int64_t now_ns);

/* May a bucket change costing (elements, chars) join a call already holding (in_elements,
 * in_chars) of n changes? The first one always may: a bucket is never split. */
int batch_policy_fits(size_t n, size_t in_elements, size_t in_chars, size_t elements, size_t chars);

#endif
