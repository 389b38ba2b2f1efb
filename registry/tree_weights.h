/*
 * tree_weights.h: the weights of an alias tree's top level (docs/design-alias-tree.md).
 *
 * An answer holds every value of the one leaf record Route 53 picks and a client takes one of
 * them, so a value's share of traffic is its leaf's chance of being picked over the leaf's
 * size. In a child group the leaf weights are the leaves' value counts (at most 65 A or 37
 * AAAA values), so each value of child k gets w[k] / sum(w) / total[k] of the traffic: the
 * same for every value when w[k] is proportional to total[k]. Route 53 weights are integers 0..255 and a child holds up to
 * 6,500 values, so w is total scaled and rounded; tree_parent_weights() picks the scale whose
 * rounding spreads the shares least.
 *
 * Pure and thread-safe.
 */
#ifndef R53REG_REGISTRY_TREE_WEIGHTS_H
#define R53REG_REGISTRY_TREE_WEIGHTS_H

#include <stddef.h>

#define TREE_WEIGHT_MAX 255
#define TREE_MAX_CHILDREN 100 /* records of one weighted group */

/*
 * Fill w[0..n) (n <= TREE_MAX_CHILDREN) for children holding total[0..n) served values: 0
 * for an empty child, else
 * 1..255, as nearly proportional to total as integers allow. Returns the spread of the
 * values' shares (tree_spread()); 1.0 when every child is empty.
 */
double tree_parent_weights(const unsigned *total, size_t n, unsigned *w);

/*
 * The largest share of answers a served value gets over the smallest, when children holding
 * total[0..n) values have weights w[0..n): max over min of w[k] / total[k] among the
 * non-empty children. 1.0 is exact fairness; a non-empty child with weight 0 (never served
 * while another has weight) gives HUGE_VAL.
 */
double tree_spread(const unsigned *total, const unsigned *w, size_t n);

#endif
