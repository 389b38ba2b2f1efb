/*
 * sets.c: a bucket's three record sets (served, down, draining) as a value: where an address
 * is, what an operation makes of them, the changes that turn one triple into another and what
 * they cost, and how two reads of a bucket differ. Pure; no locks: callers pass copies or hold
 * the bucket lock.
 */
#include "registry/internal.h"

#include <string.h>

#include "util/ip.h"

/* The set of tr[REG_KINDS] holding ip, or -1. */
int sets_find(const struct reg_record *tr, const struct ip_addr *ip)
{
    for (int k = 0; k < REG_KINDS; k++)
        if (record_find(&tr[k], ip) >= 0)
            return k;
    return -1;
}

size_t sets_count(const struct reg_record *tr)
{
    return tr[0].nvalues + tr[1].nvalues + tr[2].nvalues;
}

void sets_copy(struct reg_record *dst, const struct reg_record *src)
{
    for (int k = 0; k < REG_KINDS; k++)
        reg_record_copy(&dst[k], &src[k]);
}

void sets_release(struct reg_record *tr)
{
    for (int k = 0; k < REG_KINDS; k++)
        reg_record_release(&tr[k]);
}

/* Does the store need a change to go from old to next? */
int sets_differ(const struct reg_record *old, const struct reg_record *next)
{
    if (!old->nvalues && !next->nvalues)
        return 0;
    return !old->nvalues || !next->nvalues || !reg_record_equal(old, next);
}

/* The changes turning old[] into next[] (at most REG_KINDS) into chg; returns their count and,
 * in *mask, which sets they touch. */
size_t sets_changes(const struct reg_record *old, const struct reg_record *next,
                    struct reg_change *chg, unsigned *mask)
{
    size_t n = 0;
    *mask = 0;
    for (int k = 0; k < REG_KINDS; k++) {
        if (!sets_differ(&old[k], &next[k]))
            continue;
        chg[n].old = old[k].nvalues ? &old[k] : NULL;
        chg[n].new = next[k].nvalues ? &next[k] : NULL;
        *mask |= 1u << k;
        n++;
    }
    return n;
}

/* Apply in to tr[] in place; returns the sets it changed (a bit per kind). An address held by
 * more than one set (written so by another tool) is judged by the first holding it and left
 * in the one set it belongs in. */
unsigned sets_apply_op(struct reg_record *tr, const struct intent *in)
{
    const struct ip_addr *ip = &in->ip;
    int from = sets_find(tr, ip), to = from, held = 0;
    unsigned mask = 0;
    struct reg_record tmp;

    switch (in->op) {
    case REG_OP_ADD: /* a draining backend registered again returns to service */
        to = from < 0                    ? REG_KIND_SERVED
             : from != REG_KIND_DRAINING ? from
             : in->to_down               ? REG_KIND_DOWN
                                         : REG_KIND_SERVED;
        break;
    case REG_OP_ENSURE: to = from < 0 ? REG_KIND_SERVED : from; break;
    case REG_OP_REMOVE: to = -1; break;
    case REG_OP_DOWN: to = from == REG_KIND_SERVED ? REG_KIND_DOWN : from; break;
    case REG_OP_UP: to = from == REG_KIND_DOWN ? REG_KIND_SERVED : from; break;
    case REG_OP_DRAIN: to = from < 0 ? -1 : REG_KIND_DRAINING; break;
    }
    for (int k = 0; k < REG_KINDS; k++)
        held += record_find(&tr[k], ip) >= 0;
    if (to == from && held <= 1)
        return 0;
    for (int k = 0; k < REG_KINDS; k++) {
        int has = record_find(&tr[k], ip) >= 0;
        if (has == (k == to))
            continue;
        record_with(&tr[k], ip, !has, &tmp);
        reg_record_release(&tr[k]);
        tr[k] = tmp;
        mask |= 1u << k;
    }
    return mask;
}

/* The sets of rec[] with every intent applied, in order, into out[]. Sets whose values
 * changed get their group's TTL (ttl[kind]), and the weight: the served set's follows its
 * values, the others are 0. */
void sets_apply_intents(const struct reg_options *opt, const unsigned *ttl,
                        const struct reg_record *rec, const struct intent *in,
                        struct reg_record *out)
{
    unsigned mask = 0;
    sets_copy(out, rec);
    for (; in; in = in->next)
        mask |= sets_apply_op(out, in);
    for (int k = 0; k < REG_KINDS; k++)
        if (mask & (1u << k)) {
            out[k].weight =
                k == REG_KIND_SERVED ? reg_weight_for(opt, out[k].type, out[k].nvalues) : 0;
            out[k].ttl = ttl[k];
        }
}

/* Does fresh[k] (for the kinds in have) differ from cur[] in a way a move by another writer
 * explains: an address left a set read, or one read gained an address that a set not read
 * holds? Then the sets not read are stale too. */
int sets_moved_across(const struct reg_record *cur, const struct reg_record *fresh, unsigned have)
{
    for (int k = 0; k < REG_KINDS; k++) {
        if (!(have & (1u << k)))
            continue;
        for (size_t i = 0; i < cur[k].nvalues; i++)
            if (record_find(&fresh[k], &cur[k].values[i]) < 0)
                return 1;
        for (size_t i = 0; i < fresh[k].nvalues; i++)
            for (int j = 0; j < REG_KINDS; j++)
                if (!(have & (1u << j)) && record_find(&cur[j], &fresh[k].values[i]) >= 0)
                    return 1;
    }
    return 0;
}

/*
 * The three sets of a bucket are read one after another (a rate-limited call each), served,
 * then down, then draining. Another writer's move between two reads can hide an address: one
 * moved from down to served after the served set was read shows in neither. Given old[] and
 * fresh[] read in that order, the sets such a move could have hidden an address that left
 * old[] in: those read before the last set that lost one. 0: every address in none of fresh[]
 * was really removed (an address that left the served set cannot hide anywhere).
 */
unsigned sets_hiding(const struct reg_record *old, const struct reg_record *fresh)
{
    int last = 0;
    for (int k = 1; k < REG_KINDS; k++)
        for (size_t i = 0; i < old[k].nvalues; i++)
            if (sets_find(fresh, &old[k].values[i]) < 0)
                last = k;
    return (1u << last) - 1;
}

/* Does old[] hold an address that none of fresh[] holds? */
int sets_vanished(const struct reg_record *old, const struct reg_record *fresh)
{
    for (int k = 0; k < REG_KINDS; k++)
        for (size_t i = 0; i < old[k].nvalues; i++)
            if (sets_find(fresh, &old[k].values[i]) < 0)
                return 1;
    return 0;
}

/* The sets of fresh[] that differ from cur[] (a bit per kind). */
unsigned sets_changed_mask(const struct reg_record *cur, const struct reg_record *fresh)
{
    unsigned mask = 0;
    for (int k = 0; k < REG_KINDS; k++)
        if (sets_differ(&cur[k], &fresh[k]))
            mask |= 1u << k;
    return mask;
}

/* Elements and value characters the changes from old[] to next[] cost in one call: each
 * changed set is a DELETE of every old value and a CREATE of every new one (Route 53's
 * quota counts both). */
void sets_cost(const struct reg_record *old, const struct reg_record *next, size_t *elements,
               size_t *chars)
{
    char txt[IP_TEXT_MAX];
    *elements = 0;
    *chars = 0;
    for (int k = 0; k < REG_KINDS; k++) {
        if (!sets_differ(&old[k], &next[k]))
            continue;
        *elements += old[k].nvalues + next[k].nvalues;
        for (size_t i = 0; i < old[k].nvalues; i++)
            *chars += strlen(ip_format(&old[k].values[i], txt));
        for (size_t i = 0; i < next[k].nvalues; i++)
            *chars += strlen(ip_format(&next[k].values[i], txt));
    }
}
