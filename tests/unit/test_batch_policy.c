/*
 * test_batch_policy.c: the committer's send rule (registry/batch_policy.h), table-driven with
 * a fake clock: which bucket changes go first, when a burst holds them, and what fits a call.
 */
#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "registry/batch_policy.h"

#define MS 1000000LL
#define S (1000 * MS)

/* Ranking: the expected order of candidate indexes, best first. */
static const struct {
    const char *name;
    size_t n;
    struct batch_candidate c[4];
    int64_t now;
    size_t order[4];
    int hold_all; /* every score is below BATCH_HOLD_GAIN (none starves) */
} rank_cases[] = {
    {"fewer values per intent first: an empty bucket's change costs only its new values",
     3,
     {{.values = 100, .adds = 1, .oldest_ns = 10 * S},
      {.values = 0, .adds = 1, .oldest_ns = 10 * S},
      {.values = 10, .adds = 1, .oldest_ns = 10 * S}},
     10 * S + 5 * MS,
     {1, 2, 0},
     1},
    {"more intents on the same values first",
     2,
     {{.values = 50, .adds = 1, .oldest_ns = 10 * S},
      {.values = 50, .adds = 20, .oldest_ns = 10 * S}},
     10 * S,
     {1, 0},
     1},
    {"ties keep arrival order",
     3,
     {{.values = 5, .adds = 2, .oldest_ns = 1 * S},
      {.values = 5, .adds = 2, .oldest_ns = 1 * S},
      {.values = 5, .adds = 2, .oldest_ns = 1 * S}},
     1 * S,
     {0, 1, 2},
     1},
    {"a bucket waiting longer than BATCH_STARVE_NS goes first whatever its gain",
     3,
     {{.values = 0, .adds = 50, .oldest_ns = 10 * S},
      {.values = 400, .adds = 1, .oldest_ns = 9 * S - 1},
      {.values = 400, .adds = 1, .oldest_ns = 10 * S}},
     10 * S,
     {1, 0, 2},
     0},
    {"starving buckets keep arrival order among themselves",
     3,
     {{.values = 0, .adds = 50, .oldest_ns = 1 * S},
      {.values = 400, .adds = 1, .oldest_ns = 1 * S},
      {.values = 10, .adds = 1, .oldest_ns = 1 * S}},
     5 * S,
     {0, 1, 2},
     0},
    {"removals count as intents: removing from a big bucket is worth less than adding to an "
     "empty one",
     2,
     {{.values = 200, .removes = 1, .oldest_ns = 2 * S},
      {.values = 0, .adds = 1, .oldest_ns = 2 * S}},
     2 * S,
     {1, 0},
     1},
};

static void test_rank(void)
{
    for (size_t i = 0; i < sizeof(rank_cases) / sizeof(rank_cases[0]); i++) {
        size_t order[4] = {9, 9, 9, 9};
        double score[4];
        int held = 1;
        batch_policy_rank(rank_cases[i].c, rank_cases[i].n, rank_cases[i].now, order, score);
        for (size_t k = 0; k < rank_cases[i].n; k++) {
            if (order[k] != rank_cases[i].order[k])
                fprintf(stderr, "case: %s\n", rank_cases[i].name);
            CHECK_INT(order[k], rank_cases[i].order[k]);
            held &= score[k] < BATCH_HOLD_GAIN;
        }
        if (held != rank_cases[i].hold_all)
            fprintf(stderr, "case: %s\n", rank_cases[i].name);
        CHECK_INT(held, rank_cases[i].hold_all);
    }
}

/* The hold: a sequence of (time, intents ever submitted) samples and the least score each
 * call asks for. */
static void test_min_score(void)
{
    static const struct {
        int64_t now;
        unsigned long long submitted;
        double want;
    } steps[] = {
        {0, 0, 0},                             /* first sample: no rate known, send */
        {100 * MS, 1, 0},                      /* a lone registration on an idle service: at once */
        {110 * MS, 2, 0},                      /* 100/s: a slow stream is never held */
        {120 * MS, 2 + 100, BATCH_HOLD_GAIN},  /* 10,000/s: a burst, hold */
        {130 * MS, 102 + 25, BATCH_HOLD_GAIN}, /* 2,500/s: still a burst */
        {140 * MS, 127 + 19, 0},               /* 1,900/s: below the burst rate, send */
        {1140 * MS, 146, 0},                   /* quiet: send what is left */
    };
    struct batch_rate r = {0, 0};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        double got = batch_policy_min_score(&r, steps[i].submitted, steps[i].now);
        if (got != steps[i].want)
            fprintf(stderr, "step %zu: min score %g, want %g\n", i, got, steps[i].want);
        CHECK(got == steps[i].want);
    }
}

/* What joins a call: the first change always (a bucket is never split), then only within
 * 1,000 elements and 32,000 characters. */
static void test_fits(void)
{
    CHECK(batch_policy_fits(0, 0, 0, 1600, 40000)); /* the first, however large */
    CHECK(batch_policy_fits(1, 500, 8000, 500, 8000));
    CHECK(!batch_policy_fits(1, 500, 8000, 501, 10));
    CHECK(!batch_policy_fits(3, 10, 31990, 1, 11));
    CHECK(batch_policy_fits(3, 10, 31990, 1, 10));
}

int main(void)
{
    test_rank();
    test_min_score();
    test_fits();
    return check_done("test_batch_policy");
}
