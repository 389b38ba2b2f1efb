/*
 * placement.c: which bucket a new address goes to (ordered: the first with room; balanced: the
 * least filled; modulo: fixed by the address), and the registrations of unknown outcome that a retry must meet in the
 * bucket they were first placed in. Every function but reg_free_capacity() runs with
 * index_lock held by the caller.
 */
#include "registry/internal.h"

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

/* Choose a bucket for a new ip: -1 when every eligible one is full. */
int placement_choose(struct reg_registry *reg, const struct ip_addr *ip)
{
    enum reg_type t = reg_type_of(ip);
    unsigned *res = reg->reserved[t], again, cap = reg->capacity[t];

    /* A retry of a registration that may have landed: the same bucket, if it has room. */
    if (placement_take_ambiguous(reg, ip, &again) && again < reg->opt.buckets && res[again] < cap)
        return (int)again;
    if (reg->opt.bucketing == REG_BUCKETING_MODULO) {
        unsigned b = ip_mod(ip, reg->opt.buckets);
        return res[b] < cap ? (int)b : -1;
    }
    int best = -1;
    /* Ordered: every replica with the same view of the zone chooses the same bucket, so a
     * retry through another replica meets the first copy in one compare-and-swap; and a burst
     * fills the bucket being written, then a fresh one, instead of touching every bucket. */
    if (reg->opt.bucketing == REG_BUCKETING_ORDERED) {
        for (unsigned b = 0; b < reg->opt.buckets; b++)
            if (res[b] < cap)
                return (int)b;
        return -1;
    }
    for (unsigned b = 0; b < reg->opt.buckets; b++)
        if (res[b] < cap && (best < 0 || res[b] < res[best]))
            best = (int)b;
    return best;
}

unsigned reg_free_capacity(struct reg_registry *reg, enum reg_type type)
{
    unsigned free_slots = 0;
    pthread_mutex_lock(&reg->index_lock);
    for (unsigned b = 0; b < reg->opt.buckets; b++)
        if (reg->reserved[type][b] < reg->capacity[type])
            free_slots += reg->capacity[type] - reg->reserved[type][b];
    pthread_mutex_unlock(&reg->index_lock);
    return free_slots;
}
