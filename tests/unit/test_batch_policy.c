/*
 * test_batch_policy.c: the committer's send rule (registry/batch_policy.h) with a fake clock.
 * Single decisions from a table (given candidates and the stream's state: send or hold, what,
 * until when), then whole streams: arrivals placed the way ordered placement fills buckets,
 * a token bucket for the call budget and a committer that follows the rule; the calls it
 * makes and when are checked. They fail if the rule regresses to sending buckets that are
 * still filling while a stream lasts, to holding a lone registration, or to holding anything
 * past its limit.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "registry/batch_policy.h"

#define MS 1000000LL
#define S (1000 * MS)

/* One decision. */
static const struct {
    const char *name;
    size_t n;
    struct batch_candidate c[4];
    struct batch_state st;
    int force;
    enum batch_reason reason;
    size_t sent;     /* plan.n */
    size_t order[4]; /* its first plan.n entries */
    int64_t wake;    /* BATCH_HOLD: plan.wake_ns */
} plan_cases[] = {
    {"a lone registration on an idle service goes at once",
     1,
     {{.adds = 1, .elements = 1, .chars = 11, .oldest_ns = 10 * S}},
     {.now_ns = 10 * S,
      .last_arrival_ns = 10 * S,
      .arrival_rate = 1.0,
      .next_elements = 400,
      .next_chars = 6000},
     0,
     BATCH_IDLE,
     1,
     {0},
     0},
    {"a stream holds the bucket being filled, and looks again soon",
     1,
     {{.adds = 50, .elements = 50, .chars = 600, .oldest_ns = 10 * S}},
     {.now_ns = 10 * S + 10 * MS,
      .last_arrival_ns = 10 * S + 10 * MS,
      .arrival_rate = 100.0,
      .arrival_gap_ns = 10 * MS,
      .next_elements = 400,
      .next_chars = 6000},
     0,
     BATCH_HOLD,
     0,
     {0},
     10 * S + 10 * MS + BATCH_LOOK_NS},
    {"the hold ends early enough to wait for the write token within the limit",
     1,
     {{.adds = 50, .elements = 50, .chars = 600, .oldest_ns = 10 * S}},
     {.now_ns = 10 * S + 690 * MS,
      .last_arrival_ns = 10 * S + 690 * MS,
      .arrival_rate = 5.0,
      .arrival_gap_ns = 200 * MS,
      .token_wait_ns = 300 * MS,
      .next_elements = 400,
      .next_chars = 6000},
     0,
     BATCH_HOLD,
     0,
     {0},
     10 * S + 700 * MS},
    {"the token wait counts: the limit is reached earlier",
     1,
     {{.adds = 50, .elements = 50, .chars = 600, .oldest_ns = 10 * S}},
     {.now_ns = 10 * S + 700 * MS,
      .last_arrival_ns = 10 * S + 700 * MS,
      .arrival_rate = 5.0,
      .arrival_gap_ns = 200 * MS,
      .token_wait_ns = 300 * MS,
      .next_elements = 400,
      .next_chars = 6000},
     0,
     BATCH_STARVING,
     1,
     {0},
     0},
    {"one final bucket does not fill a call: held while another could join it",
     2,
     {{.values = 0, .adds = 400, .elements = 400, .chars = 5000, .final = 1, .oldest_ns = 10 * S},
      {.adds = 30, .elements = 30, .chars = 400, .oldest_ns = 10 * S + 100 * MS}},
     {.now_ns = 10 * S + 150 * MS,
      .last_arrival_ns = 10 * S + 150 * MS,
      .arrival_rate = 2000.0,
      .arrival_gap_ns = MS / 2,
      .next_elements = 400,
      .next_chars = 6000},
     0,
     BATCH_HOLD,
     0,
     {0},
     10 * S + 150 * MS + BATCH_QUIET_MIN_NS},
    {"final buckets that fill a call go; the bucket still filling does not",
     3,
     {{.adds = 400, .elements = 400, .chars = 5000, .final = 1, .oldest_ns = 10 * S},
      {.adds = 30, .elements = 30, .chars = 400, .oldest_ns = 10 * S + 300 * MS},
      {.adds = 400, .elements = 400, .chars = 5000, .final = 1, .oldest_ns = 10 * S + 100 * MS}},
     {.now_ns = 10 * S + 310 * MS,
      .last_arrival_ns = 10 * S + 310 * MS,
      .arrival_rate = 2000.0,
      .arrival_gap_ns = MS / 2,
      .next_elements = 400,
      .next_chars = 6000},
     0,
     BATCH_FULL,
     2,
     {0, 2},
     0},
    {"starving buckets go first, with the final ones, not the young one filling",
     3,
     {{.adds = 30, .elements = 30, .chars = 400, .oldest_ns = 10 * S - 100 * MS},
      {.values = 200, .removes = 3, .elements = 397, .chars = 5000, .oldest_ns = 9 * S},
      {.adds = 400, .elements = 400, .chars = 5000, .final = 1, .oldest_ns = 10 * S}},
     {.now_ns = 10 * S,
      .last_arrival_ns = 10 * S,
      .arrival_rate = 800.0,
      .arrival_gap_ns = MS + MS / 4,
      .next_elements = 400,
      .next_chars = 6000},
     0,
     BATCH_STARVING,
     2,
     {1, 2},
     0},
    {"quiet after a stream: everything goes, cheapest per intent first after the final ones",
     3,
     {{.values = 300, .removes = 2, .elements = 598, .chars = 7000, .oldest_ns = 10 * S},
      {.adds = 100, .elements = 100, .chars = 1200, .oldest_ns = 10 * S + 10 * MS},
      {.adds = 400, .elements = 400, .chars = 5000, .final = 1, .oldest_ns = 10 * S}},
     {.now_ns = 10 * S + 40 * MS,
      .last_arrival_ns = 10 * S + 20 * MS,
      .arrival_rate = 2000.0,
      .arrival_gap_ns = MS / 2,
      .next_elements = 400,
      .next_chars = 6000},
     0,
     BATCH_QUIET,
     2,
     {2, 1},
     0},
    {"forced (the caller holds a token): final first, then the rest",
     2,
     {{.adds = 30, .elements = 30, .chars = 400, .oldest_ns = 10 * S},
      {.adds = 400, .elements = 400, .chars = 5000, .final = 1, .oldest_ns = 10 * S}},
     {.now_ns = 10 * S + 5 * MS,
      .last_arrival_ns = 10 * S + 5 * MS,
      .arrival_rate = 2000.0,
      .arrival_gap_ns = MS / 2,
      .next_elements = 400,
      .next_chars = 6000},
     1,
     BATCH_FORCED,
     2,
     {1, 0},
     0},
    {"characters bind as well as elements: two long-text buckets fill a call",
     3,
     {{.adds = 300, .elements = 300, .chars = 11700, .final = 1, .oldest_ns = 10 * S},
      {.adds = 300, .elements = 300, .chars = 11700, .final = 1, .oldest_ns = 10 * S},
      {.adds = 300, .elements = 300, .chars = 11700, .final = 1, .oldest_ns = 10 * S}},
     {.now_ns = 10 * S + 5 * MS,
      .last_arrival_ns = 10 * S + 5 * MS,
      .arrival_rate = 2000.0,
      .arrival_gap_ns = MS / 2,
      .next_elements = 300,
      .next_chars = 11700},
     0,
     BATCH_FULL,
     2,
     {0, 1},
     0},
};

static void test_plan(void)
{
    for (size_t i = 0; i < sizeof(plan_cases) / sizeof(plan_cases[0]); i++) {
        size_t order[4] = {9, 9, 9, 9};
        struct batch_plan p;
        int ok = 1;
        batch_policy_plan(plan_cases[i].c, plan_cases[i].n, &plan_cases[i].st, plan_cases[i].force,
                          order, &p);
        ok &= p.reason == plan_cases[i].reason && p.n == plan_cases[i].sent;
        for (size_t k = 0; ok && k < p.n; k++)
            ok &= order[k] == plan_cases[i].order[k];
        if (plan_cases[i].reason == BATCH_HOLD)
            ok &= p.wake_ns == plan_cases[i].wake;
        if (!ok)
            fprintf(stderr, "case: %s: reason %d n %zu first %zu wake %lld\n", plan_cases[i].name,
                    (int)p.reason, p.n, order[0], (long long)p.wake_ns);
        CHECK(ok);
    }
}

/* ---- whole streams, simulated in 1 ms steps ---- */

#define SIM_BUCKETS 100
#define SIM_CALLS 256

struct sim_bucket {
    size_t values;  /* committed */
    size_t adds;    /* queued */
    int64_t oldest; /* of the queued ones (0: none) */
    int filling;    /* placement's: queued adds not yet taken */
};

struct sim_call {
    int64_t at;
    size_t buckets, elements;
    int partial; /* it carried a bucket placement was still filling */
};

struct sim {
    unsigned cap;
    double rate, burst, tokens; /* the call budget */
    int64_t refilled;
    struct sim_bucket b[SIM_BUCKETS];
    struct batch_rate arrivals;
    struct sim_call calls[SIM_CALLS];
    size_t ncalls;
    int64_t max_wait; /* longest a registration waited for its call */
    int64_t wake;     /* the committer's hold (0: none) */
};

static size_t sim_pending(const struct sim *s)
{
    size_t q = 0;
    for (unsigned b = 0; b < SIM_BUCKETS; b++)
        q += s->b[b].adds;
    return q;
}

/* Ordered placement during a stream: the bucket being filled, else the first that is cheap
 * to write again (an empty one is), else the first with room. */
static void sim_arrive(struct sim *s, int64_t now)
{
    int others = sim_pending(s) > 0;
    unsigned b;
    for (b = 0; b < SIM_BUCKETS; b++)
        if (s->b[b].filling && s->b[b].values + s->b[b].adds < s->cap)
            break;
    if (b == SIM_BUCKETS)
        for (b = 0; b < SIM_BUCKETS; b++)
            if (s->b[b].values + s->b[b].adds <= 125)
                break;
    if (b == SIM_BUCKETS)
        for (b = 0; b < SIM_BUCKETS; b++)
            if (s->b[b].values + s->b[b].adds < s->cap)
                break;
    CHECK(b < SIM_BUCKETS);
    if (b == SIM_BUCKETS)
        return;
    if (!s->b[b].adds)
        s->b[b].oldest = now;
    s->b[b].adds++;
    s->b[b].filling = 1;
    batch_rate_note(&s->arrivals, now, others);
}

static void sim_refill(struct sim *s, int64_t now)
{
    s->tokens += s->rate * (double)(now - s->refilled) / 1e9;
    if (s->tokens > s->burst)
        s->tokens = s->burst;
    s->refilled = now;
}

/* Plan at now; send when the rule says so and a token is there (a call waits for its token,
 * as pace() does, then is planned again, forced). */
static void sim_step(struct sim *s, int64_t now)
{
    struct batch_candidate c[SIM_BUCKETS];
    unsigned idx[SIM_BUCKETS];
    size_t order[SIM_BUCKETS], n = 0;
    struct batch_state st;
    struct batch_plan p;

    sim_refill(s, now);
    for (unsigned b = 0; b < SIM_BUCKETS; b++) {
        struct sim_bucket *x = &s->b[b];
        if (!x->adds)
            continue;
        memset(&c[n], 0, sizeof(c[n]));
        c[n].values = x->values;
        c[n].adds = x->adds;
        c[n].elements = 2 * x->values + x->adds;
        c[n].chars = 12 * c[n].elements;
        c[n].final = x->values + x->adds >= s->cap;
        c[n].oldest_ns = x->oldest;
        idx[n++] = b;
    }
    memset(&st, 0, sizeof(st));
    st.now_ns = now;
    st.last_arrival_ns = s->arrivals.last_ns;
    st.arrival_rate = s->arrivals.rate;
    st.arrival_gap_ns = (int64_t)s->arrivals.gap_ns;
    st.arrival_mean_gap_ns = (int64_t)s->arrivals.mean_gap_ns;
    st.token_wait_ns = s->tokens >= 1 ? 0 : (int64_t)((1 - s->tokens) / s->rate * 1e9);
    st.next_elements = s->cap;
    st.next_chars = 12 * s->cap;
    if (s->wake && now < s->wake)
        return; /* holding (an arrival that fills a bucket would wake it: checked below) */
    batch_policy_plan(c, n, &st, 0, order, &p);
    s->wake = p.reason == BATCH_HOLD ? p.wake_ns : 0;
    if (p.reason == BATCH_HOLD || s->tokens < 1)
        return; /* held, or waiting for the token (planned again next step) */
    batch_policy_plan(c, n, &st, 1, order, &p);
    s->tokens -= 1;
    CHECK(s->ncalls < SIM_CALLS);
    if (s->ncalls == SIM_CALLS)
        return;
    struct sim_call *call = &s->calls[s->ncalls++];
    memset(call, 0, sizeof(*call));
    call->at = now;
    call->buckets = p.n;
    for (size_t k = 0; k < p.n; k++) {
        struct sim_bucket *x = &s->b[idx[order[k]]];
        call->elements += c[order[k]].elements;
        call->partial |= x->values + x->adds < s->cap;
        if (now - x->oldest > s->max_wait)
            s->max_wait = now - x->oldest;
        x->values += x->adds;
        x->adds = 0;
        x->oldest = 0;
        x->filling = 0;
    }
}

/* n registrations spread evenly over [start, start + over), then quiet until end. */
static void sim_run(struct sim *s, long n, int64_t start, int64_t over, int64_t end)
{
    long done = 0;
    s->refilled = 0;
    s->tokens = s->burst;
    for (int64_t now = 0; now <= end; now += MS) {
        long due = now < start ? 0
                   : now >= start + over
                       ? n
                       : (long)((double)n * (double)(now - start) / (double)over) + 1;
        if (due > n)
            due = n;
        while (done < due) {
            unsigned before_full = 0, after_full = 0;
            for (unsigned b = 0; b < SIM_BUCKETS; b++)
                before_full += s->b[b].values + s->b[b].adds >= s->cap;
            sim_arrive(s, now);
            for (unsigned b = 0; b < SIM_BUCKETS; b++)
                after_full += s->b[b].values + s->b[b].adds >= s->cap;
            if (after_full > before_full)
                s->wake = 0; /* a bucket turned final: the committer is woken */
            done++;
        }
        sim_step(s, now);
    }
}

static void print_calls(const char *name, const struct sim *s)
{
    fprintf(stderr, "%s: %zu calls\n", name, s->ncalls);
    for (size_t i = 0; i < s->ncalls; i++)
        fprintf(stderr, "  t=%lld ms buckets=%zu elements=%zu%s\n",
                (long long)(s->calls[i].at / MS), s->calls[i].buckets, s->calls[i].elements,
                s->calls[i].partial ? " partial" : "");
}

/* A burst: 4,000 registrations in 0.5 s, 400 per bucket, 5 calls/s one at a time. The first
 * arrival goes alone (nothing told it a burst follows); then only full calls of final buckets,
 * two per call, as the tokens come; the last bucket once the stream stops. */
static void test_burst(void)
{
    static struct sim s;
    size_t partial = 0;
    memset(&s, 0, sizeof(s));
    s.cap = 400;
    s.rate = 5;
    s.burst = 1;
    sim_run(&s, 4000, 100 * MS, 500 * MS, 5 * S);
    for (size_t i = 1; i + 1 < s.ncalls; i++)
        partial += s.calls[i].partial;
    if (s.ncalls != 6 || partial || sim_pending(&s))
        print_calls("burst", &s);
    CHECK_INT(sim_pending(&s), 0);
    CHECK_INT(s.calls[0].at, 100 * MS); /* the first arrival: at once */
    CHECK_INT(s.calls[0].elements, 1);
    CHECK_INT(partial, 0);  /* no bucket sent while it was filling, but the last */
    CHECK_INT(s.ncalls, 6); /* 1 + ceil(3,999 values / 800 a call) */
    for (size_t i = 1; i < s.ncalls; i++)
        CHECK(s.calls[i].elements >= 799); /* every call full (two buckets of 400) */
    /* paced: one token each 200 ms, none wasted */
    for (size_t i = 1; i < s.ncalls; i++)
        CHECK_INT(s.calls[i].at - s.calls[i - 1].at, 200 * MS);
}

/* The same burst with calls to spare (a bucket of 50 tokens, 10/s): still full calls only,
 * each as soon as its two buckets are final, and the last one once the stream stops. Spare
 * tokens are the account's, not a reason to send half-empty calls. */
static void test_burst_spare_tokens(void)
{
    static struct sim s;
    size_t partial = 0;
    memset(&s, 0, sizeof(s));
    s.cap = 400;
    s.rate = 10;
    s.burst = 50;
    sim_run(&s, 4000, 100 * MS, 500 * MS, 5 * S);
    for (size_t i = 1; i + 1 < s.ncalls; i++)
        partial += s.calls[i].partial;
    if (s.ncalls != 6 || partial)
        print_calls("burst with spare tokens", &s);
    CHECK_INT(sim_pending(&s), 0);
    CHECK_INT(partial, 0);
    CHECK_INT(s.ncalls, 6);
    for (size_t i = 1; i < s.ncalls; i++)
        CHECK(s.calls[i].elements >= 799);
    /* the second bucket of a call is final every 100 ms (800 arrivals) */
    for (size_t i = 1; i + 1 < s.ncalls; i++)
        CHECK(s.calls[i].at <= 100 * MS + (int64_t)i * 100 * MS + 2 * MS);
    CHECK(s.calls[s.ncalls - 1].at <= 600 * MS + 10 * MS); /* quiet: a few ms after the end */
}

/* A burst that ends: what is left goes once the stream is quiet (a few ms), not after the hold. */
static void test_quiet(void)
{
    static struct sim s;
    memset(&s, 0, sizeof(s));
    s.cap = 400;
    s.rate = 50;
    s.burst = 50;
    sim_run(&s, 300, 1 * S, 30 * MS, 3 * S);
    if (s.ncalls != 2 || s.calls[1].at > 1 * S + 80 * MS)
        print_calls("quiet", &s);
    CHECK_INT(s.ncalls, 2);
    CHECK_INT(sim_pending(&s), 0);
    if (s.ncalls == 2) {
        CHECK(s.calls[1].at > 1 * S + 30 * MS);  /* not while it still arrives */
        CHECK(s.calls[1].at <= 1 * S + 80 * MS); /* soon after it stopped */
        CHECK_INT(s.calls[1].elements, 1 + 300); /* the first one resent, and all */
    }
}

/* A slow stream (100/s for 3 s, never filling a 400-bucket within the hold): a call about
 * once a second, none waiting past the hold, not one call per arrival. */
static void test_slow_stream(void)
{
    static struct sim s;
    memset(&s, 0, sizeof(s));
    s.cap = 400;
    s.rate = 5;
    s.burst = 1;
    sim_run(&s, 300, 0, 3 * S, 6 * S);
    if (s.ncalls < 3 || s.ncalls > 6 || s.max_wait > BATCH_MAX_HOLD_NS)
        print_calls("slow stream", &s);
    CHECK_INT(sim_pending(&s), 0);
    CHECK(s.ncalls >= 3 && s.ncalls <= 6);
    CHECK(s.max_wait <= BATCH_MAX_HOLD_NS);
}

/* Clients that wait for their answer before registering the next address (a script's loop,
 * or eight of them in parallel), with calls to spare: a hold gains nothing there, so none
 * waits longer than the quiet floor. */
static void test_closed_loop(void)
{
    for (int clients = 1; clients <= 8; clients *= 8) {
        static struct sim s;
        long back[3001]; /* clients arriving again at each ms */
        size_t answered = 0;
        memset(&s, 0, sizeof(s));
        memset(back, 0, sizeof(back));
        s.cap = 400;
        s.rate = 1000;
        s.burst = 1000;
        s.tokens = s.burst;
        back[0] = clients;
        for (int64_t now = 0; now <= 3000 * MS; now += MS) {
            size_t before = s.ncalls, pending;
            for (long k = 0; k < back[now / MS]; k++)
                if (s.ncalls < SIM_CALLS - 8)
                    sim_arrive(&s, now);
            pending = sim_pending(&s);
            sim_step(&s, now);
            if (s.ncalls > before && now / MS + 1 <= 3000) {
                back[now / MS + 1] += (long)(pending - sim_pending(&s));
                answered += pending - sim_pending(&s);
            }
        }
        if (s.max_wait > BATCH_QUIET_MIN_NS + 5 * MS)
            print_calls("closed loop", &s);
        CHECK(answered >= 100);
        CHECK(s.max_wait <= BATCH_QUIET_MIN_NS + 5 * MS);
    }
}

/* Arrivals a second apart are each a lone registration: each goes at once. */
static void test_trickle(void)
{
    static struct sim s;
    memset(&s, 0, sizeof(s));
    s.cap = 400;
    s.rate = 5;
    s.burst = 1;
    sim_run(&s, 5, 0, 5 * S, 7 * S);
    CHECK_INT(s.ncalls, 5);
    CHECK_INT(s.max_wait, 0);
}

/* The arrival rate: one arrival after a quiet spell reads about 1/s (not a stream), a burst
 * reads as one within milliseconds, and it decays once arrivals stop. */
static void test_rate(void)
{
    struct batch_rate r;
    memset(&r, 0, sizeof(r));
    batch_rate_note(&r, 5 * S, 0);
    CHECK(batch_rate_at(&r, 5 * S) <= BATCH_STREAM_RATE);
    batch_rate_note(&r, 5 * S + 10 * MS, 1);
    batch_rate_note(&r, 5 * S + 20 * MS, 1);
    CHECK(batch_rate_at(&r, 5 * S + 20 * MS) <= BATCH_STREAM_RATE); /* two: each at once */
    batch_rate_note(&r, 5 * S + 30 * MS, 1);
    CHECK(batch_rate_at(&r, 5 * S + 30 * MS) > BATCH_STREAM_RATE);
    for (int i = 0; i < 100; i++)
        batch_rate_note(&r, 6 * S + i * MS / 10, 1); /* 10,000/s for 10 ms */
    CHECK(batch_rate_at(&r, 6 * S + 10 * MS) > 90);
    CHECK(r.gap_ns < 0.2 * MS); /* the recent gaps: 0.1 ms */
    CHECK(batch_rate_at(&r, 12 * S) < 1);
    /* one client after another, each waiting for its answer: never a stream */
    memset(&r, 0, sizeof(r));
    for (int i = 0; i < 1000; i++)
        batch_rate_note(&r, 5 * S + i * MS, 0);
    CHECK(batch_rate_at(&r, 6 * S) == 0);
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
    test_plan();
    test_burst();
    test_burst_spare_tokens();
    test_quiet();
    test_slow_stream();
    test_trickle();
    test_closed_loop();
    test_rate();
    test_fits();
    return check_done("test_batch_policy");
}
