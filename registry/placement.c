/*
 * placement.c: which bucket a new address goes to (ordered: the first with room, weighing what
 * a stream's writes cost; balanced: the least filled; modulo: fixed by the address), and the
 * registrations of unknown outcome that a retry must meet in the bucket they were first
 * placed in. Every function but reg_free_capacity() runs with index_lock held by the caller.
 */
#include "registry/internal.h"

#include <limits.h>

#include "registry/tree_weights.h"

static long ambiguous_find(const struct reg_registry *reg, const struct ip_addr *ip)
{
    for (size_t i = 0; i < AMBIGUOUS_MAX; i++)
        if (reg->ambiguous[i].used && !ip_cmp(&reg->ambiguous[i].ip, ip))
            return (long)i;
    return -1;
}

/* The failed intents that created an entry and may have been applied anyway: remember where. */
void placement_note_ambiguous(struct reg_registry *reg, const struct intent *intents,
                              enum rc_code rc)
{
    if (rc != RC_UNAVAILABLE && rc != RC_UPSTREAM_TIMEOUT && rc != RC_SHUTTING_DOWN)
        return;
    for (const struct intent *in = intents; in; in = in->next) {
        long i;
        if (!in->created)
            continue;
        i = ambiguous_find(reg, &in->ip);
        if (i < 0) {
            i = (long)reg->ambiguous_next;
            reg->ambiguous_next = (reg->ambiguous_next + 1) % AMBIGUOUS_MAX;
        }
        reg->ambiguous[i].ip = in->ip;
        reg->ambiguous[i].bucket = in->bucket;
        reg->ambiguous[i].used = 1;
    }
}

/* Is ip remembered? Forgets it; *bucket: where it was placed. */
int placement_take_ambiguous(struct reg_registry *reg, const struct ip_addr *ip, unsigned *bucket)
{
    long i = ambiguous_find(reg, ip);
    if (i < 0)
        return 0;
    reg->ambiguous[i].used = 0;
    *bucket = reg->ambiguous[i].bucket;
    return 1;
}

/* A bucket holding at most this many values is cheap to write again (a quarter of a call's
 * elements, its DELETE and CREATE together): a stream may add to it. */
#define PLACE_CHEAP_VALUES (BATCH_MAX_ELEMENTS / 8)

/* Are registrations arriving as a stream (registry/batch_policy.h)? Caller holds index_lock
 * (the work lock comes after it). */
static int streaming(struct reg_registry *reg)
{
    double rate;
    pthread_mutex_lock(&reg->work_lock);
    rate = batch_rate_at(&reg->arrivals, clock_mono_ns());
    pthread_mutex_unlock(&reg->work_lock);
    return rate > BATCH_STREAM_RATE;
}

/*
 * Ordered placement. Every replica with the same view of the zone chooses the same bucket,
 * so a retry through another replica meets the first copy in one compare-and-swap; and a
 * burst fills the bucket being written, then a fresh one, instead of touching every bucket.
 * During a stream, what each registration costs the calls decides: the bucket being filled
 * (one more element in a change that goes anyway), else the first bucket that is cheap to
 * write again (an empty one is CREATE-only), and only when none has room the first with room
 * (its rewrite resends every value it holds). Quiet, the first with room: no bucket is left
 * part-filled for long.
 */
static int place_ordered(struct reg_registry *reg, enum reg_type t, unsigned base)
{
    unsigned *res = reg->reserved[t] + base, cap = reg->capacity[t], n = reg->opt.buckets;
    unsigned char *filling = reg->filling[t] + base;

    for (unsigned b = 0; b < n; b++)
        if (filling[b] && res[b] < cap)
            return (int)(base + b);
    if (streaming(reg))
        for (unsigned b = 0; b < n; b++)
            if (res[b] <= PLACE_CHEAP_VALUES && res[b] < cap)
                return (int)(base + b);
    for (unsigned b = 0; b < n; b++)
        if (res[b] < cap)
            return (int)(base + b);
    return -1;
}

/* The least filled of base's buckets with room, or -1. */
static int place_balanced(struct reg_registry *reg, enum reg_type t, unsigned base)
{
    unsigned *res = reg->reserved[t], cap = reg->capacity[t];
    int best = -1;
    for (unsigned b = base; b < base + reg->opt.buckets; b++)
        if (res[b] < cap && (best < 0 || res[b] < res[best]))
            best = (int)b;
    return best;
}

/*
 * The alias tree: the child to fill. Top weights are integers up to 255, so a child's share of
 * answers is exact only while every child holds at most 255 addresses, and close only while
 * children hold nearly as many as each other (registry/tree_weights.h). So the tree grows in
 * children of at most TREE_WEIGHT_MAX addresses: a child takes no more until all
 * REG_TREE_CHILDREN are in use (the weights are the totals themselves: exact), then children
 * fill evenly. While the name still holds buckets of its own (a type growing into the tree),
 * they and the aliases share its weighted group of 100: a fresh child opens only while it has
 * room. Children a bucket is moving into are left alone. A
 * child whose bucket is being filled keeps it while it holds less than the least filled one
 * plus a bucket (a burst fills one bucket at a time, as ordered placement does); otherwise
 * the least filled child takes it. -1 when every child is full.
 */
static int tree_child(struct reg_registry *reg, enum reg_type t)
{
    unsigned cap = reg->capacity[t];
    long total[REG_TREE_CHILDREN], limit = TREE_WEIGHT_MAX, best = -1, fresh = -1, filling = -1;
    int room[REG_TREE_CHILDREN], used = 0, group = 0;

    /* The name's group holds its own buckets and the aliases together, 100 at most: while the
     * name still has buckets of its own (a type growing into the tree), a fresh child's alias
     * needs a place there. */
    for (unsigned b = 0; b < REG_MAX_BUCKETS; b++)
        group += reg->reserved[t][b] > 0;
    for (unsigned c = 0; c < REG_TREE_CHILDREN; c++) {
        const unsigned *res = reg->reserved[t] + reg_slot_of((int)c, 0);
        const unsigned char *fill = reg->filling[t] + reg_slot_of((int)c, 0);
        total[c] = 0;
        room[c] = 0;
        /* Buckets beyond --buckets (written by another configuration) count too. */
        for (unsigned b = 0; b < REG_MAX_BUCKETS; b++)
            total[c] += res[b];
        used += total[c] > 0;
        group += total[c] > 0 || reg->tree_moving[t][c];
        if (reg->tree_moving[t][c])
            continue; /* a bucket is moving in: placement leaves it alone */
        for (unsigned b = 0; b < reg->opt.buckets; b++) {
            room[c] |= res[b] < cap;
            if (fill[b] && res[b] < cap && filling < 0)
                filling = c;
        }
    }
    if (used >= REG_TREE_CHILDREN)
        limit = LONG_MAX; /* every child in use: they fill evenly to the end */
    for (unsigned c = 0; c < REG_TREE_CHILDREN; c++) {
        if (!room[c] || total[c] >= limit)
            continue;
        if (total[c] == 0) {
            if (fresh < 0 && group < REG_MAX_BUCKETS)
                fresh = c;
        } else if (best < 0 || total[c] < total[best]) {
            best = c;
        }
    }
    if (filling >= 0 && room[filling] && total[filling] < limit &&
        (best < 0 || total[filling] < total[best] + (long)cap))
        return (int)filling;
    if (best >= 0)
        return (int)best;
    if (fresh >= 0)
        return (int)fresh;
    if (limit != LONG_MAX) {
        /* Every child in use holds its 255: fill evenly from here. */
        for (unsigned c = 0; c < REG_TREE_CHILDREN; c++)
            if (room[c] && total[c] > 0 && (best < 0 || total[c] < total[best]))
                best = c;
    }
    return (int)best;
}

/* Is slot one that takes new addresses in this mode? */
static int slot_eligible(struct reg_registry *reg, enum reg_type t, unsigned slot)
{
    int child = reg_slot_child(slot);
    return slot < reg->nslots && reg_slot_bucket(slot) < reg->opt.buckets &&
           (reg_tree_on(reg, t) ? child >= 0 && !reg->tree_moving[t][child] : child < 0);
}

/* Choose a bucket for a new ip: -1 when every eligible one is full. */
int placement_choose(struct reg_registry *reg, const struct ip_addr *ip)
{
    enum reg_type t = reg_type_of(ip);
    unsigned *res = reg->reserved[t], again, cap = reg->capacity[t];
    int best = -1;

    /* A retry of a registration that may have landed: the same bucket, if it has room. */
    if (placement_take_ambiguous(reg, ip, &again) && slot_eligible(reg, t, again) &&
        res[again] < cap) {
        best = (int)again;
    } else if (reg_tree_on(reg, t)) {
        int child = tree_child(reg, t);
        unsigned base = child >= 0 ? reg_slot_of(child, 0) : 0;
        if (child < 0)
            best = -1;
        else if (reg->opt.bucketing == REG_BUCKETING_BALANCED)
            best = place_balanced(reg, t, base);
        else
            best = place_ordered(reg, t, base);
    } else if (reg->opt.bucketing == REG_BUCKETING_MODULO) {
        unsigned b = ip_mod(ip, reg->opt.buckets);
        best = res[b] < cap ? (int)b : -1;
    } else if (reg->opt.bucketing == REG_BUCKETING_ORDERED) {
        best = place_ordered(reg, t, 0);
    } else {
        best = place_balanced(reg, t, 0);
    }
    if (best < 0 && reg->opt.tree == REG_TREE_AUTO && !reg_tree_on(reg, t)) {
        /* Full before the maintainer's next look (it grows at 90%): grow now. */
        atomic_store(&reg->tree_on[t], 1);
        return placement_choose(reg, ip);
    }
    if (best >= 0 && reg->opt.commit == REG_COMMIT_GROUP)
        reg->filling[t][best] = 1; /* until the committer takes its queue */
    return best;
}

unsigned reg_free_capacity(struct reg_registry *reg, enum reg_type type)
{
    unsigned free_slots = 0;
    pthread_mutex_lock(&reg->index_lock);
    for (unsigned b = 0; b < reg->nslots; b++)
        if (slot_eligible(reg, type, b) && reg->reserved[type][b] < reg->capacity[type])
            free_slots += reg->capacity[type] - reg->reserved[type][b];
    pthread_mutex_unlock(&reg->index_lock);
    return free_slots;
}
