/*
 * batch_policy.c: the committer's send rule (registry/batch_policy.h). Pure functions of their
 * arguments; the committer (registry/committer.c) gathers the candidates under the bucket
 * locks and carries the decision out.
 */
#include "registry/batch_policy.h"

#include <math.h>
#include <stdlib.h>

#include "util/xalloc.h"

struct ranked {
    size_t index;
    double score;
};

static int cmp_ranked(const void *a, const void *b)
{
    double x = ((const struct ranked *)a)->score, y = ((const struct ranked *)b)->score;
    return x > y ? -1 : x < y;
}

/* Gain per element: intents settled per value the DELETE old + CREATE new pair sends. */
static double gain_per_element(const struct batch_candidate *c)
{
    return (double)(c->adds + c->removes) / (double)(c->elements ? c->elements : 1);
}

static int starving(const struct batch_candidate *c, const struct batch_state *st)
{
    return st->now_ns - c->oldest_ns >= BATCH_MAX_HOLD_NS - st->token_wait_ns;
}

/* The order candidates are tried in: starving ones, then final ones (both in the order their
 * buckets became dirty), then, with rest set, the others best gain per element first (ties in
 * that order). Returns how many went into order. */
static size_t sequence(const struct batch_candidate *c, size_t n, const struct batch_state *st,
                       int rest, size_t *order)
{
    struct ranked *r = xmalloc((n ? n : 1) * sizeof(*r));
    size_t k = 0, nr = 0;

    for (size_t i = 0; i < n; i++)
        if (starving(&c[i], st))
            order[k++] = i;
    for (size_t i = 0; i < n; i++)
        if (c[i].final && !starving(&c[i], st))
            order[k++] = i;
    if (rest) {
        for (size_t i = 0; i < n; i++)
            if (!c[i].final && !starving(&c[i], st)) {
                r[nr].index = i;
                /* the index breaks ties in dirty order (qsort is not stable) */
                r[nr++].score = gain_per_element(&c[i]) - (double)i * 1e-9;
            }
        qsort(r, nr, sizeof(r[0]), cmp_ranked);
        for (size_t i = 0; i < nr; i++)
            order[k++] = r[i].index;
    }
    free(r);
    return k;
}

/* Keep of order[0..k) what fits one call, in that order (a change that does not fit is
 * skipped: a smaller one after it may). *full: something was left out, or the call could
 * not take one more change costing (next_e, next_c). Returns how many were kept. */
static size_t pack(const struct batch_candidate *c, size_t *order, size_t k, size_t next_e,
                   size_t next_c, int *full)
{
    size_t kept = 0, e = 0, ch = 0;

    *full = 0;
    for (size_t i = 0; i < k; i++) {
        const struct batch_candidate *x = &c[order[i]];
        if (!batch_policy_fits(kept, e, ch, x->elements, x->chars)) {
            *full = 1;
            continue;
        }
        e += x->elements;
        ch += x->chars;
        order[kept++] = order[i];
    }
    if (kept && !batch_policy_fits(kept, e, ch, next_e, next_c))
        *full = 1;
    return kept;
}

/* How long without an arrival makes the stream quiet (batch_policy.h). */
static int64_t quiet_gap_ns(const struct batch_state *st)
{
    double gap = BATCH_QUIET_GAPS * (double)st->arrival_gap_ns;
    if (gap < BATCH_QUIET_MEANS * (double)st->arrival_mean_gap_ns)
        gap = BATCH_QUIET_MEANS * (double)st->arrival_mean_gap_ns;
    if (gap < (double)BATCH_QUIET_MIN_NS)
        gap = (double)BATCH_QUIET_MIN_NS;
    if (gap > (double)BATCH_MAX_HOLD_NS)
        gap = (double)BATCH_MAX_HOLD_NS;
    return (int64_t)gap;
}

void batch_policy_plan(const struct batch_candidate *c, size_t n, const struct batch_state *st,
                       int force, size_t *order, struct batch_plan *plan)
{
    int64_t gap_ns = quiet_gap_ns(st), wake = 0;
    int full;
    size_t k;

    plan->n = 0;
    plan->wake_ns = 0;
    plan->reason = BATCH_HOLD;
    if (n == 0)
        return;
    if (st->arrival_rate <= BATCH_STREAM_RATE)
        plan->reason = BATCH_IDLE;
    else if (st->now_ns - st->last_arrival_ns >= gap_ns)
        plan->reason = BATCH_QUIET;
    if (plan->reason != BATCH_HOLD) {
        k = sequence(c, n, st, 1, order);
        plan->n = pack(c, order, k, 0, 0, &full);
        return;
    }

    /* A stream: starving and final buckets only, and only in a full call unless something
     * starves. The bucket being filled waits: sent now, it would be sent again, whole. */
    k = sequence(c, n, st, 0, order);
    if (k) {
        int starved = starving(&c[order[0]], st);
        size_t kept = pack(c, order, k, st->next_elements, st->next_chars, &full);
        if (starved || full) {
            plan->reason = starved ? BATCH_STARVING : BATCH_FULL;
            plan->n = kept;
            return;
        }
    }
    if (force) {
        plan->reason = BATCH_FORCED;
        k = sequence(c, n, st, 1, order);
        plan->n = pack(c, order, k, 0, 0, &full);
        return;
    }
    /* Hold: plan again when the oldest intent must go, or when the stream may have stopped. */
    for (size_t i = 0; i < n; i++) {
        int64_t due = c[i].oldest_ns + BATCH_MAX_HOLD_NS - st->token_wait_ns;
        if (!wake || due < wake)
            wake = due;
    }
    if (st->last_arrival_ns + gap_ns < wake)
        wake = st->last_arrival_ns + gap_ns;
    if (st->now_ns + BATCH_LOOK_NS < wake)
        wake = st->now_ns + BATCH_LOOK_NS;
    plan->wake_ns = wake;
}

void batch_rate_note(struct batch_rate *r, int64_t now_ns, int others)
{
    if (r->last_ns) {
        /* A geometric mean: a cluster of arrivals (clients answered together, calling
         * again) reads as the short gaps within it, not as its period. */
        double gap = (double)(now_ns > r->last_ns ? now_ns - r->last_ns : 0);
        double lg = log(gap > BATCH_GAP_FLOOR_NS ? gap : (double)BATCH_GAP_FLOOR_NS);
        r->mean_gap_ns = r->gap_ns > 0 ? 0.9 * r->mean_gap_ns + 0.1 * gap : gap;
        r->log_gap = r->gap_ns > 0 ? 0.9 * r->log_gap + 0.1 * lg : lg;
        r->gap_ns = exp(r->log_gap);
    }
    r->rate = batch_rate_at(r, now_ns) + (others ? 1e9 / (double)BATCH_RATE_TAU_NS : 0);
    if (now_ns > r->last_ns)
        r->last_ns = now_ns;
}

double batch_rate_at(const struct batch_rate *r, int64_t now_ns)
{
    if (!r->last_ns || now_ns <= r->last_ns)
        return r->rate;
    return r->rate * exp(-(double)(now_ns - r->last_ns) / (double)BATCH_RATE_TAU_NS);
}

int batch_policy_fits(size_t n, size_t in_elements, size_t in_chars, size_t elements, size_t chars)
{
    return !n ||
           (in_elements + elements <= BATCH_MAX_ELEMENTS && in_chars + chars <= BATCH_MAX_CHARS);
}
