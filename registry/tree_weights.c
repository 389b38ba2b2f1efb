/*
 * tree_weights.c: the top level's weights (contract: tree_weights.h). Every scale that maps
 * the fullest child to a weight M in 1..255 is tried (255 candidates of n roundings each);
 * the least spread wins, the larger M on a tie (finer rounding for later changes).
 */
#include "registry/tree_weights.h"

#include <math.h>

double tree_spread(const unsigned *total, const unsigned *w, size_t n)
{
    double lo = HUGE_VAL, hi = 0;
    for (size_t k = 0; k < n; k++) {
        double share;
        if (!total[k])
            continue;
        share = (double)w[k] / total[k];
        lo = share < lo ? share : lo;
        hi = share > hi ? share : hi;
    }
    if (hi == 0 && lo == HUGE_VAL)
        return 1.0; /* no served value */
    return lo > 0 ? hi / lo : HUGE_VAL;
}

/* w for the scale that gives the fullest child (max values) weight m. */
static void scaled(const unsigned *total, size_t n, unsigned max, unsigned m, unsigned *w)
{
    for (size_t k = 0; k < n; k++) {
        double x = (double)total[k] * m / max;
        unsigned r = (unsigned)(x + 0.5);
        w[k] = !total[k] ? 0 : r < 1 ? 1 : r > TREE_WEIGHT_MAX ? TREE_WEIGHT_MAX : r;
    }
}

double tree_parent_weights(const unsigned *total, size_t n, unsigned *w)
{
    unsigned max = 0, best_m = TREE_WEIGHT_MAX;
    double best = HUGE_VAL;
    unsigned trial[TREE_MAX_CHILDREN];

    if (n > TREE_MAX_CHILDREN)
        n = TREE_MAX_CHILDREN;
    for (size_t k = 0; k < n; k++)
        max = total[k] > max ? total[k] : max;
    if (!max) {
        for (size_t k = 0; k < n; k++)
            w[k] = 0;
        return 1.0;
    }
    for (unsigned m = TREE_WEIGHT_MAX; m >= 1; m--) {
        double s;
        scaled(total, n, max, m, trial);
        s = tree_spread(total, trial, n);
        if (s < best) {
            best = s;
            best_m = m;
        }
    }
    scaled(total, n, max, best_m, w);
    return best;
}
