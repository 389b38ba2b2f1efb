/*
 * batch_policy.h: the committer's send rule. Given what is queued on each bucket, the arrival
 * stream and the rate limiter's state, decide whether a store call goes now and which bucket
 * changes it carries, or how long to wait. Pure: no locks, no clock of its own (the caller
 * passes the time), so it is table-tested with a fake clock (tests/unit/test_batch_policy.c).
 *
 * What a call costs: a bucket's change is a DELETE of its exact old sets and a CREATE of the
 * new ones, so it costs every value the bucket holds plus the new ones (Route 53 limits a call
 * to 1,000 such elements and 32,000 characters, and throttles on changed records), whatever
 * the number of intents it settles. A bucket written while arrivals still go to it is written
 * again, whole, by a later call. So during a stream the rule sends buckets that are final
 * (placement puts nothing more there: they are full) in full calls, and holds the bucket
 * being filled; it sends everything when the stream goes quiet,
 * and whatever has waited BATCH_MAX_HOLD_NS. A lone registration on an idle service goes at
 * once.
 */
#ifndef R53REG_REGISTRY_BATCH_POLICY_H
#define R53REG_REGISTRY_BATCH_POLICY_H

#include <stddef.h>
#include <stdint.h>

/* Route 53's limits for one ChangeResourceRecordSets call: ResourceRecord elements and
 * characters of value text (a DELETE and a CREATE each count). */
#define BATCH_MAX_ELEMENTS 1000
#define BATCH_MAX_CHARS 32000

/* No intent is held longer than this (it then goes in the next call, with its token wait
 * counted in). */
#define BATCH_MAX_HOLD_NS 1000000000LL
/* The rate of arrivals that find others waiting (per second, decayed over
 * BATCH_RATE_TAU_NS) above which they form a stream worth holding for: a hold would gather
 * more than two. At or below it (a lone registration, two together, a steady one a second,
 * a script registering one address after another) a change goes at once. */
#define BATCH_STREAM_RATE 2.0
#define BATCH_RATE_TAU_NS 1000000000LL
/* A stream is quiet after BATCH_QUIET_GAPS recent inter-arrival times (their geometric
 * mean), and at least BATCH_QUIET_MEANS of their plain mean, without an arrival, clamped to
 * [BATCH_QUIET_MIN_NS, BATCH_MAX_HOLD_NS]: by then it has most likely ended (Poisson arrivals
 * leave such a gap about once in 50). Clients that wait for their answer before calling
 * again arrive in a cluster after each call: the geometric mean reads the short gaps within
 * it, and the plain mean a fraction of its period, so the hold ends well before the next
 * cluster would have come. The floor covers clients that deliver in clumps (a loaded
 * machine). */
#define BATCH_QUIET_GAPS 10.0
#define BATCH_QUIET_MEANS 4.0
#define BATCH_QUIET_MIN_NS 20000000LL
#define BATCH_GAP_FLOOR_NS 10000 /* gaps below 10 us count as 10 us */
/* A hold is looked at again at least this often: the quiet gap it waits for shrinks as the
 * stream it holds for speeds up (and arrivals that fill no bucket do not wake it). */
#define BATCH_LOOK_NS 20000000LL

/* What the committer knows of one bucket with queued intents. */
struct batch_candidate {
    size_t values;          /* values in the bucket's sets now (a change resends them all) */
    size_t adds, removes;   /* queued intents that add, and those that remove or move */
    size_t elements, chars; /* what its change would cost: old + new values, and their text */
    int final;              /* placement adds nothing more to it (it is full) */
    int64_t oldest_ns;      /* CLOCK_MONOTONIC submission of the oldest queued intent */
};

/* The arrival stream and the call budget, as of now_ns. */
struct batch_state {
    int64_t now_ns;
    int64_t last_arrival_ns;     /* newest submission (0: none yet) */
    double arrival_rate;         /* arrivals that found others waiting, per second, as of
                                    last_arrival_ns (batch_rate_note) */
    int64_t arrival_gap_ns;      /* recent time between arrivals: geometric mean */
    int64_t arrival_mean_gap_ns; /* and plain mean */
    int64_t token_wait_ns;       /* until the rate limiter lets a write go (0: now) */
    /* The cost of the next final bucket placement will fill (a fresh one, CREATEd full): a
     * call that cannot take one more of these is full. */
    size_t next_elements, next_chars;
};

/* Why a plan sends (or holds). */
enum batch_reason {
    BATCH_HOLD,     /* nothing goes now: wake at plan.wake_ns, or on a new final bucket */
    BATCH_IDLE,     /* no stream: everything goes at once */
    BATCH_FULL,     /* final buckets fill a call */
    BATCH_STARVING, /* something waited BATCH_MAX_HOLD_NS (counting the token wait) */
    BATCH_QUIET,    /* the stream stopped: everything goes */
    BATCH_FORCED,   /* the caller must send (it holds a write token): the best there is */
};

struct batch_plan {
    enum batch_reason reason;
    size_t n;        /* order[0..n): the candidates of the next call, in that order */
    int64_t wake_ns; /* BATCH_HOLD: when to plan again (0: only on a new arrival) */
};

/*
 * Plan the next call over c[0..n) (given in the order their buckets became dirty): fills
 * order[0..plan->n) with the indexes of the candidates that go now, within one call's limits
 * (a bucket is never split: the first one always goes, however large). With force set the
 * call goes whatever the rule says (the caller reserved its token): final and starving
 * buckets first, then the rest best first. n is at most 2 * REG_MAX_BUCKETS; order has room
 * for n.
 */
void batch_policy_plan(const struct batch_candidate *c, size_t n, const struct batch_state *st,
                       int force, size_t *order, struct batch_plan *plan);

/* The arrival stream: the rate of arrivals that found other intents waiting (queued or in a
 * call), an exponentially decayed count (time constant BATCH_RATE_TAU_NS), so one arrival
 * after a quiet second reads about 1/s and a burst reads its rate within a fraction of a
 * second; and the recent gap between any two arrivals (the last ten or so, geometric mean). Zeroed
 * at start; the caller serializes. */
struct batch_rate {
    int64_t last_ns;
    double rate;        /* per second, as of last_ns */
    double gap_ns;      /* geometric mean of the recent gaps; 0: fewer than two arrivals yet */
    double log_gap;     /* its logarithm, the running mean */
    double mean_gap_ns; /* the plain mean of the recent gaps */
};

/* One arrival at now_ns; others: whether other intents were waiting. */
void batch_rate_note(struct batch_rate *r, int64_t now_ns, int others);
/* The rate decayed to now_ns (arrivals per second). */
double batch_rate_at(const struct batch_rate *r, int64_t now_ns);

/* May a bucket change costing (elements, chars) join a call already holding (in_elements,
 * in_chars) of n changes? The first one always may: a bucket is never split. */
int batch_policy_fits(size_t n, size_t in_elements, size_t in_chars, size_t elements, size_t chars);

#endif
