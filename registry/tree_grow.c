/*
 * tree_grow.c: --tree-auto, a type moving into the alias tree while r53reg runs and back
 * (docs/design-alias-tree.md, "Moving between flat and tree, online").
 *
 * Growing: once a type's buckets at the name hold 90% of what they can, new addresses of the
 * type go to the children (tree_on), and the maintainer moves the name's buckets into free
 * children one by one: each move is one atomic call that creates the child's sets as copies,
 * deletes the name's bucket (compare-and-swap on its exact sets) and creates an alias to the
 * child with the bucket's weight, so every value keeps its share through the move and the
 * name's group never grows (one bucket out, one alias in).
 *
 * Folding: once the type's values fit 70% of the name's buckets again and the children's
 * buckets fit the name's free ones, the maintainer moves the children's buckets back one by
 * one, each weighted by its count as flat buckets are; the child's alias is deleted first in
 * the call that moves its last bucket. New addresses keep going to the children (not to the
 * child being moved) until every child is empty; then the type is flat again.
 *
 * A move claims both buckets (no other writer of this replica touches them meanwhile) and
 * installs the result in one hold of both bucket locks and the index lock: the sets, the
 * index entries, the reservations, the queued intents (re-pointed at the new bucket) all move
 * together, so readers never see an address in neither place. Intents admitted for the old
 * bucket but queued after the move are re-pointed by the committer's enqueue.
 */
#include "registry/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

/* Grow at this share of the name's own capacity; fold back below the second. */
#define GROW_AT 0.9
#define FOLD_BELOW 0.7
/* Moves per maintainer pass (each is one call, paced like every write). */
#define MOVES_PER_PASS 4
#define MOVE_RETRY_NS (5 * 1000000000LL)

/* What type t holds where, from the reservations. Caller holds index_lock. */
struct shape {
    unsigned long top_total, child_total;
    unsigned top_used, child_slots;
};

static void shape_of(struct reg_registry *reg, enum reg_type t, struct shape *s)
{
    memset(s, 0, sizeof(*s));
    for (unsigned slot = 0; slot < reg->nslots; slot++) {
        unsigned r = reg->reserved[t][slot];
        if (!r)
            continue;
        if (slot < REG_MAX_BUCKETS) {
            s->top_total += r;
            s->top_used++;
        } else {
            s->child_total += r;
            s->child_slots++;
        }
    }
}

static int child_empty(struct reg_registry *reg, enum reg_type t, unsigned c)
{
    for (unsigned b = 0; b < REG_MAX_BUCKETS; b++)
        if (reg->reserved[t][reg_slot_of((int)c, b)])
            return 0;
    return 1;
}

/*
 * Move every set of bucket src to bucket dst (claimed both, dst empty) in memory, after the
 * store took the move: moved[] are dst's new sets (taken). Locks both buckets in slot order,
 * then the index.
 */
static void install_move(struct reg_registry *reg, enum reg_type t, unsigned src, unsigned dst,
                         struct reg_record *moved, const struct reg_record *alias_del,
                         const struct reg_record *alias_add)
{
    struct bucket *s = &reg->buckets[t][src], *d = &reg->buckets[t][dst];
    struct bucket *first = src < dst ? s : d, *second = src < dst ? d : s;
    size_t count;

    pthread_mutex_lock(&first->lock);
    pthread_mutex_lock(&second->lock);
    pthread_mutex_lock(&reg->index_lock);
    count = sets_count(s->rec);
    for (int k = 0; k < REG_KINDS; k++) {
        reg_record_release(&d->rec[k]);
        d->rec[k] = moved[k];
        d->rec[k].type = t;
        d->rec[k].kind = (enum reg_kind)k;
        d->rec[k].bucket = dst;
        memset(&moved[k], 0, sizeof(moved[k]));
        reg_record_release(&s->rec[k]);
    }
    reg->reserved[t][dst] += (unsigned)count;
    reg->reserved[t][src] -= (unsigned)count;
    reg->filling[t][src] = 0;
    for (int k = 0; k < REG_KINDS; k++)
        for (size_t v = 0; v < d->rec[k].nvalues; v++) {
            struct entry *e = index_find(reg, &d->rec[k].values[v]);
            if (e && e->bucket == src)
                e->bucket = dst;
        }
    for (size_t i = 0; i < AMBIGUOUS_MAX; i++)
        if (reg->ambiguous[i].used && reg->ambiguous[i].bucket == src &&
            reg_type_of(&reg->ambiguous[i].ip) == t)
            reg->ambiguous[i].bucket = dst;
    /* Operations queued on src while it moved: they follow their addresses. */
    if (s->queue) {
        for (struct intent *in = s->queue; in; in = in->next)
            in->bucket = dst;
        if (!d->queue)
            d->queue_tail = &d->queue;
        *d->queue_tail = s->queue;
        d->queue_tail = s->queue_tail;
        s->queue = NULL;
        s->queue_tail = &s->queue;
        pthread_mutex_lock(&reg->work_lock);
        if (!d->listed) {
            d->listed = 1;
            d->dirty_next = NULL;
            *reg->dirty_tail = d;
            reg->dirty_tail = &d->dirty_next;
        }
        reg->kicks++;
        pthread_cond_signal(&reg->work_cond);
        pthread_mutex_unlock(&reg->work_lock);
    }
    s->changes++;
    d->changes++;
    atomic_fetch_add(&reg->moves, 1);
    /* The alias with the sets it serves: a plan reading both never sees one without the
     * other. */
    pthread_mutex_lock(&reg->tree_lock);
    if (alias_del)
        reg->aliases[t][alias_del->bucket].exists = 0;
    if (alias_add) {
        reg->aliases[t][alias_add->bucket].exists = 1;
        reg->aliases[t][alias_add->bucket].weight = (unsigned char)alias_add->weight;
    }
    atomic_fetch_add(&reg->tree_gen, 1);
    pthread_mutex_unlock(&reg->tree_lock);
    pthread_mutex_unlock(&reg->index_lock);
    pthread_mutex_unlock(&second->lock);
    pthread_mutex_unlock(&first->lock);
}

/* The committed sets of a claimed bucket, if nothing is on its way into it (no registration
 * placed there and not yet written). 0: skip it for now. */
static int settled_sets(struct reg_registry *reg, enum reg_type t, unsigned slot,
                        struct reg_record *out)
{
    struct bucket *bk = &reg->buckets[t][slot];
    int ok;
    pthread_mutex_lock(&bk->lock);
    pthread_mutex_lock(&reg->index_lock);
    ok = sets_count(bk->rec) > 0 && reg->reserved[t][slot] == sets_count(bk->rec);
    pthread_mutex_unlock(&reg->index_lock);
    if (ok)
        sets_copy(out, bk->rec);
    pthread_mutex_unlock(&bk->lock);
    return ok;
}

/*
 * Send one move: old[] at src become next[] at dst (each kind: DELETE the old set, CREATE the
 * new), with an alias change before (a deletion) or after (a creation). On success installs
 * it. Returns the call's outcome.
 */
static enum rc_code send_move(struct reg_registry *reg, enum reg_type t, unsigned src, unsigned dst,
                              struct reg_record *old, struct reg_record *next,
                              const struct reg_record *alias_del,
                              const struct reg_record *alias_add)
{
    struct reg_change chg[2 * REG_KINDS + 2];
    char change_id[REG_CHANGE_ID_MAX] = "", detail[REG_DETAIL_MAX] = "";
    size_t n = 0;
    enum rc_code rc;

    if (alias_del)
        chg[n++] = (struct reg_change){alias_del, NULL};
    /* The new sets first (an alias created below needs its target), then the old ones go. */
    for (int k = 0; k < REG_KINDS; k++)
        if (next[k].nvalues)
            chg[n++] = (struct reg_change){NULL, &next[k]};
    for (int k = 0; k < REG_KINDS; k++)
        if (old[k].nvalues)
            chg[n++] = (struct reg_change){&old[k], NULL};
    if (alias_add)
        chg[n++] = (struct reg_change){NULL, alias_add};
    if (reg->prov->ops->pace)
        reg->prov->ops->pace(reg->prov);
    /* A listing read across this call must not teach the aliases back (registry/tree.c). */
    atomic_fetch_add(&reg->tree_writing, 1);
    rc = reg->prov->ops->apply(reg->prov, chg, n, change_id, NULL, detail, sizeof(detail));
    {
        size_t elements = alias_del != NULL, cur;
        for (int k = 0; k < REG_KINDS; k++)
            elements += old[k].nvalues + next[k].nvalues;
        cur = elements + (alias_add != NULL);
        rmetrics_batch(n, cur, rc);
    }
    if (rc != RC_OK) {
        atomic_fetch_add(&reg->tree_gen, 1);
        atomic_fetch_sub(&reg->tree_writing, 1);
        log_warn("msg=\"tree: a bucket could not move\" type=%s from=%u to=%u rc=%s "
                 "detail=\"%s\"",
                 reg_type_name(t), src, dst, rc_slug(rc), detail);
        return rc;
    }
    install_move(reg, t, src, dst, next, alias_del, alias_add);
    atomic_fetch_sub(&reg->tree_writing, 1);
    /* The moved bucket's weight was right for where it was: weigh the aliases again. */
    tree_kick(reg);
    log_info("msg=\"tree: a bucket moved\" type=%s from=%u to=%u values=%zu alias=%s "
             "change_id=%s",
             reg_type_name(t), src, dst, sets_count(old),
             alias_del   ? "deleted"
             : alias_add ? "created"
                         : "kept",
             change_id);
    registry_generation_bump(reg);
    return RC_OK;
}

/* One of the name's buckets of type t into a free child. Returns 0 when there is none left to
 * try this pass (tried[]: source slots tried already), 1 when one was tried (*rc: its call's
 * outcome, RC_OK when it was skipped). */
static int grow_one(struct reg_registry *reg, enum reg_type t, unsigned char *tried,
                    enum rc_code *rc)
{
    struct reg_record old[REG_KINDS], next[REG_KINDS], alias;
    struct tree_alias have[REG_TREE_CHILDREN];
    int src = -1, child = -1;
    unsigned dst;

    tree_aliases(reg, t, have);
    pthread_mutex_lock(&reg->index_lock);
    for (unsigned b = 0; b < REG_MAX_BUCKETS && src < 0; b++)
        if (reg->reserved[t][b] && !tried[b])
            src = (int)b;
    for (unsigned c = 0; c < REG_TREE_CHILDREN && src >= 0 && child < 0; c++)
        if (!have[c].exists && !reg->tree_moving[t][c] && child_empty(reg, t, c))
            child = (int)c;
    if (child >= 0)
        reg->tree_moving[t][child] = 1;
    pthread_mutex_unlock(&reg->index_lock);
    if (src < 0 || child < 0)
        return 0;
    tried[src] = 1;
    dst = reg_slot_of(child, 0);
    *rc = RC_OK;
    if (bucket_try_claim(&reg->buckets[t][src])) {
        if (bucket_try_claim(&reg->buckets[t][dst])) {
            if (settled_sets(reg, t, (unsigned)src, old)) {
                const struct reg_record *served = &old[REG_KIND_SERVED];
                for (int k = 0; k < REG_KINDS; k++) {
                    memset(&next[k], 0, sizeof(next[k]));
                    if (old[k].nvalues) {
                        reg_record_copy(&next[k], &old[k]);
                        next[k].bucket = dst;
                    }
                }
                alias = reg_alias_record(t, (unsigned)child, served->weight);
                *rc = send_move(reg, t, (unsigned)src, dst, old, next, NULL,
                                served->nvalues ? &alias : NULL);
                sets_release(next);
                sets_release(old);
            }
            bucket_unclaim(&reg->buckets[t][dst]);
        }
        bucket_unclaim(&reg->buckets[t][src]);
    }
    pthread_mutex_lock(&reg->index_lock);
    reg->tree_moving[t][child] = 0;
    pthread_mutex_unlock(&reg->index_lock);
    return 1;
}

/* Does a bucket of child (other than slot skip) serve anything, or expect a registration?
 * Every bucket of the child is claimed by the caller. */
static int child_serves_elsewhere(struct reg_registry *reg, enum reg_type t, int child,
                                  unsigned skip)
{
    int serves = 0;
    for (unsigned b = 0; b < REG_MAX_BUCKETS && !serves; b++) {
        unsigned s = reg_slot_of(child, b);
        struct bucket *bk = &reg->buckets[t][s];
        if (s == skip)
            continue;
        pthread_mutex_lock(&bk->lock);
        pthread_mutex_lock(&reg->index_lock);
        serves = bk->rec[REG_KIND_SERVED].nvalues > 0 || reg->reserved[t][s] != sets_count(bk->rec);
        pthread_mutex_unlock(&reg->index_lock);
        pthread_mutex_unlock(&bk->lock);
    }
    return serves;
}

/* One of the children's buckets of type t back to a free bucket of the name (one of its
 * --buckets). Every bucket of the child is claimed for the move, so whether the child serves
 * anything else (and its alias goes) cannot change under it. Returns as grow_one. */
static int fold_one(struct reg_registry *reg, enum reg_type t, unsigned char *tried,
                    enum rc_code *rc)
{
    struct reg_record old[REG_KINDS], next[REG_KINDS], alias;
    struct tree_alias have[REG_TREE_CHILDREN];
    unsigned char held[REG_MAX_BUCKETS] = {0};
    int src = -1, dst = -1, child = -1, all = 1;

    pthread_mutex_lock(&reg->index_lock);
    for (unsigned slot = REG_MAX_BUCKETS; slot < reg->nslots && src < 0; slot++)
        if (reg->reserved[t][slot] && !tried[slot] && !reg->tree_moving[t][reg_slot_child(slot)])
            src = (int)slot;
    if (src >= 0) {
        child = reg_slot_child((unsigned)src);
        for (unsigned b = 0; b < reg->opt.buckets && dst < 0; b++)
            if (!reg->reserved[t][b])
                dst = (int)b;
        if (dst >= 0)
            reg->tree_moving[t][child] = 1;
    }
    pthread_mutex_unlock(&reg->index_lock);
    if (src < 0 || dst < 0)
        return 0;
    tried[src] = 1;
    *rc = RC_OK;
    for (unsigned b = 0; b < REG_MAX_BUCKETS && all; b++)
        if ((all = bucket_try_claim(&reg->buckets[t][reg_slot_of(child, b)])) != 0)
            held[b] = 1;
    if (all && bucket_try_claim(&reg->buckets[t][dst])) {
        if (settled_sets(reg, t, (unsigned)src, old)) {
            int last = old[REG_KIND_SERVED].nvalues > 0 &&
                       !child_serves_elsewhere(reg, t, child, (unsigned)src);
            for (int k = 0; k < REG_KINDS; k++) {
                memset(&next[k], 0, sizeof(next[k]));
                if (old[k].nvalues) {
                    reg_record_copy(&next[k], &old[k]);
                    next[k].bucket = (unsigned)dst;
                    if (k == REG_KIND_SERVED)
                        next[k].weight = reg_weight_for(&reg->opt, t, old[k].nvalues);
                }
            }
            tree_aliases(reg, t, have);
            alias = reg_alias_record(t, (unsigned)child, have[child].weight);
            *rc = send_move(reg, t, (unsigned)src, (unsigned)dst, old, next,
                            last && have[child].exists ? &alias : NULL, NULL);
            sets_release(next);
            sets_release(old);
        }
        bucket_unclaim(&reg->buckets[t][dst]);
    }
    for (unsigned b = 0; b < REG_MAX_BUCKETS; b++)
        if (held[b])
            bucket_unclaim(&reg->buckets[t][reg_slot_of(child, b)]);
    pthread_mutex_lock(&reg->index_lock);
    reg->tree_moving[t][child] = 0;
    pthread_mutex_unlock(&reg->index_lock);
    return 1;
}

void tree_grow_loaded(struct reg_registry *reg)
{
    if (reg->opt.tree != REG_TREE_AUTO)
        return;
    for (int t = 0; t < 2; t++) {
        struct shape s;
        struct tree_alias have[REG_TREE_CHILDREN];
        int any = 0;
        tree_aliases(reg, (enum reg_type)t, have);
        for (unsigned c = 0; c < REG_TREE_CHILDREN; c++)
            any |= have[c].exists;
        pthread_mutex_lock(&reg->index_lock);
        shape_of(reg, (enum reg_type)t, &s);
        pthread_mutex_unlock(&reg->index_lock);
        if (any || s.child_slots) {
            atomic_store(&reg->tree_on[t], 1);
            log_info("msg=\"tree: the zone serves this type through the tree\" type=%s "
                     "children_buckets=%u",
                     reg_type_name((enum reg_type)t), s.child_slots);
        }
    }
}

void tree_grow_pass(struct reg_registry *reg)
{
    int64_t now = clock_mono_ns();
    if (reg->opt.tree != REG_TREE_AUTO || !atomic_load(&reg->loaded) || now < reg->tree_retry_ns)
        return;
    for (int t = 0; t < 2; t++) {
        enum reg_type type = (enum reg_type)t;
        double own = (double)reg->opt.buckets * reg->capacity[t];
        unsigned char *tried;
        struct shape s;
        int fold = 0, flat = 0, grew = 0;
        pthread_mutex_lock(&reg->index_lock);
        shape_of(reg, type, &s);
        if (!atomic_load(&reg->tree_on[t]) && (double)s.top_total >= GROW_AT * own) {
            atomic_store(&reg->tree_on[t], 1);
            grew = 1;
        } else if (!atomic_load(&reg->tree_on[t])) {
            flat = 1;
        }
        /* Fold when the whole type fits the name well below the growth mark, and every
         * bucket fits the name's own beside the aliases still there. Not while other writers
         * are about: a fold deletes a child's alias on this replica's word that the child
         * holds nothing else, which another replica placing into it would make wrong (the
         * tree serves and weighs as well as the flat name). */
        fold = !flat && (double)(s.top_total + s.child_total) < FOLD_BELOW * own &&
               s.top_used + s.child_slots <= reg->opt.buckets && !registry_others_active(reg);
        if (fold && !s.child_slots) {
            /* Cleared under the lock placement reads it under: nothing lands in a child. */
            atomic_store(&reg->tree_on[t], 0);
            log_info("msg=\"tree: folded back; the name serves this type itself\" type=%s "
                     "values=%lu",
                     reg_type_name(type), s.top_total);
            flat = 1;
        }
        pthread_mutex_unlock(&reg->index_lock);
        if (flat || (!fold && !s.top_used))
            continue; /* flat, or grown: the name holds aliases only */
        if (grew)
            log_info("msg=\"tree: the name's %s buckets are %.0f%% full; growing into the "
                     "alias tree\" values=%lu",
                     reg_type_name(type), 100.0 * (double)s.top_total / own, s.top_total);
        tried = xcalloc(reg->nslots, 1);
        for (int i = 0; i < MOVES_PER_PASS; i++) {
            enum rc_code rc = RC_OK;
            if (!(fold ? fold_one(reg, type, tried, &rc) : grow_one(reg, type, tried, &rc)))
                break;
            if (rc == RC_CONFLICT) {
                /* Another writer changed a set or an alias: read the zone again, and give it
                 * a second before the next move. */
                resync_run(reg, 0, NULL, 0);
                reg->tree_retry_ns = clock_mono_ns() + 1000000000LL;
                break;
            }
            if (rc != RC_OK) {
                reg->tree_retry_ns = clock_mono_ns() + MOVE_RETRY_NS;
                break;
            }
        }
        free(tried);
    }
}
