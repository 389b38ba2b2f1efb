/*
 * tree_rules.h: the rules of the alias tree that a store enforces on one batch (provider.h),
 * shared by the memory store and the Route 53 provider so both refuse the same batches:
 *   - a change names one set on both sides and that set exists in the tree (tree_rules_keys);
 *   - an alias is created only while its child holds a served set of the alias's type, judged
 *     at that point of the batch (Route 53: "Tried to create an alias that targets ... but
 *     that target was not found");
 *   - no batch ends with an alias pointing at a child that holds no served set of its type
 *     (r53reg's own rule: an alias is never left dangling);
 *   - the name's served sets and aliases of one type (one weighted group) number at most
 *     REG_MAX_BUCKETS after the batch.
 * The weighted-TTL rule is not here: Route 53 enforces it itself, and the memory store checks
 * it per group name (registry/provider_memory.c).
 *
 * Pure and thread-safe: the caller passes what its store holds as counts.
 */
#ifndef R53REG_REGISTRY_TREE_RULES_H
#define R53REG_REGISTRY_TREE_RULES_H

#include <stddef.h>

#include "registry/provider.h"

/* What the rules need to know of a store. */
struct tree_counts {
    unsigned served[2][REG_TREE_CHILDREN];     /* served sets of each child, per type */
    unsigned top[2];                           /* served sets of the name's own buckets */
    unsigned char alias[2][REG_TREE_CHILDREN]; /* 1: the alias to that child exists */
};

/* Count r (a bucket's set with values, or an alias) into c (sign 1) or out of it (sign -1).
 * Sets of other kinds than served, and bucket records without values, change nothing. */
void tree_counts_note(struct tree_counts *c, const struct reg_record *r, int sign);

/*
 * Is every change well formed: old or new given; when both, the same set (type, kind, slot,
 * alias); a slot below REG_MAX_SLOTS, or for an alias a child below REG_TREE_CHILDREN, kind
 * served, no values and a weight of at most REG_MAX_WEIGHT. RC_OK, or RC_BAD_REQUEST with
 * detail naming the first change that is not.
 */
enum rc_code tree_rules_keys(const struct reg_change *changes, size_t n, char *detail, size_t len);

/*
 * Judge changes[0..n) (well formed, every old matching the store) against the store as before
 * describes it, in the order the Route 53 provider sends a batch and Route 53 applies it:
 * every change's DELETE half (its old), then every CREATE half (its new), each in the order of
 * the changes. RC_OK, or RC_BAD_REQUEST with detail: every failure, bracketed and separated by
 * ", " as Route 53 lists InvalidChangeBatch messages. opt names the sets, zone names the zone
 * (Route 53's hosted zone id, or what the store calls itself).
 */
enum rc_code tree_rules_check(const struct reg_options *opt, const char *zone,
                              const struct tree_counts *before, const struct reg_change *changes,
                              size_t n, char *detail, size_t len);

#endif
