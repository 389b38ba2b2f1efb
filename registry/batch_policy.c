/*
 * batch_policy.c: the committer's send rule (registry/batch_policy.h). Pure functions of their
 * arguments; the committer (registry/committer.c) gathers the candidates under the bucket
 * locks and carries the decision out.
 */
#include "registry/batch_policy.h"

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

/* Gain per element: intents settled per value the DELETE old + CREATE new pair resends. */
static double gain_per_element(const struct batch_candidate *c)
{
    size_t after = c->values + c->adds > c->removes ? c->values + c->adds - c->removes : 0;
    double cost = (double)c->values + (double)after;
    return (double)(c->adds + c->removes) / (cost > 0 ? cost : 1);
}

void batch_policy_rank(const struct batch_candidate *c, size_t n, int64_t now_ns, size_t *order,
                       double *score)
{
    struct ranked *r = xmalloc((n ? n : 1) * sizeof(*r));

    for (size_t i = 0; i < n; i++) {
        r[i].index = i;
        if (c[i].oldest_ns && now_ns - c[i].oldest_ns > BATCH_STARVE_NS)
            /* starving: first, in arrival order, and above any hold threshold */
            r[i].score = 2 * BATCH_HOLD_GAIN - (double)i;
        else
            /* the index breaks ties in arrival order (qsort is not stable) */
            r[i].score = gain_per_element(&c[i]) - (double)i * 1e-9;
        score[i] = r[i].score;
    }
    qsort(r, n, sizeof(r[0]), cmp_ranked);
    for (size_t i = 0; i < n; i++)
        order[i] = r[i].index;
    free(r);
}

double batch_policy_min_score(struct batch_rate *r, unsigned long long submitted, int64_t now_ns)
{
    double rate = 0;
    if (r->sample_ns && now_ns > r->sample_ns)
        rate = (double)(submitted - r->sample_count) * 1e9 / (double)(now_ns - r->sample_ns);
    r->sample_ns = now_ns;
    r->sample_count = submitted;
    return rate > BATCH_BURST_RATE ? BATCH_HOLD_GAIN : 0;
}

int batch_policy_fits(size_t n, size_t in_elements, size_t in_chars, size_t elements, size_t chars)
{
    return !n ||
           (in_elements + elements <= BATCH_MAX_ELEMENTS && in_chars + chars <= BATCH_MAX_CHARS);
}
