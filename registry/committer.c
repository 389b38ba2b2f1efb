/*
 * committer.c: group commit. Submitted mutations queue on their bucket; one committer thread
 * merges what is pending into as few store calls as Route 53's limits allow, chosen by
 * registry/batch_policy.c, and settles every intent of a call at once. A conflict re-reads the
 * buckets the store named (no lock held), requeues their intents in order and sends the rest of
 * the call again at once; a refused call that names no bucket is split to isolate the one at
 * fault.
 *
 * Threads: submitters enqueue (bucket lock, then work_lock); the committer drains, sends and
 * settles. A bucket with a batch in flight is marked writing until it settles.
 */
#include "registry/internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

/* Resubmit operations that waited for an IP to settle (outside every lock). */
static void resubmit(struct reg_registry *reg, struct intent *waiters)
{
    while (waiters) {
        struct intent *next = waiters->next;
        waiters->next = NULL;
        committer_submit(reg, waiters);
        waiters = next;
    }
}

/* Queue in on its bucket and wake the committer. */
static void enqueue(struct reg_registry *reg, struct intent *in, int front)
{
    struct bucket *bk;

    for (;;) {
        struct entry *e;
        bk = &reg->buckets[reg_type_of(&in->ip)][in->bucket];
        pthread_mutex_lock(&bk->lock);
        if (reg->opt.tree != REG_TREE_AUTO)
            break;
        /* The address's bucket may have moved into the tree or out of it since it was
         * admitted (registry/tree_grow.c moves a bucket under its lock): follow it. */
        pthread_mutex_lock(&reg->index_lock);
        e = index_find(reg, &in->ip);
        if (!e || e->bucket == in->bucket) {
            pthread_mutex_unlock(&reg->index_lock);
            break;
        }
        in->bucket = e->bucket;
        pthread_mutex_unlock(&reg->index_lock);
        pthread_mutex_unlock(&bk->lock);
    }
    if (front) {
        in->next = bk->queue;
        bk->queue = in;
        if (!in->next)
            bk->queue_tail = &in->next;
    } else {
        in->next = NULL;
        if (!bk->queue)
            bk->queue_tail = &bk->queue;
        *bk->queue_tail = in;
        bk->queue_tail = &in->next;
    }
    /* Count it before the bucket lock goes: drain() may take it at once and uncount it. */
    pthread_mutex_lock(&reg->work_lock);
    reg->queued++;
    if (!front) /* an arrival (not one put back): did it find others waiting? */
        batch_rate_note(&reg->arrivals, in->submitted_ns, reg->queued > 1 || reg->in_call);
    /* Wake the committer only for what can end a hold: work after none, a bucket turned
     * final. Other arrivals join whatever it holds, and cost it nothing. */
    if (!reg->dirty_head || in->fills) {
        reg->kicks++;
        pthread_cond_signal(&reg->work_cond);
    }
    if (!bk->listed) {
        bk->listed = 1;
        bk->dirty_next = NULL;
        *reg->dirty_tail = bk;
        reg->dirty_tail = &bk->dirty_next;
    }
    pthread_mutex_unlock(&reg->work_lock);
    pthread_mutex_unlock(&bk->lock);
}

/* Queue in behind the operation in flight on its IP, or admit it and queue it on its
 * bucket (or answer it at once when it needs no commit). */
void committer_submit(struct reg_registry *reg, struct intent *in)
{
    struct entry *e;

    pthread_mutex_lock(&reg->index_lock);
    e = index_find(reg, &in->ip);
    if (e && e->state != ENTRY_PRESENT) {
        /* An operation on this IP is in flight: run after it, in order. */
        struct intent **pp = &e->waiters;
        while (*pp)
            pp = &(*pp)->next;
        in->next = NULL;
        *pp = in;
        pthread_mutex_unlock(&reg->index_lock);
        return;
    }
    if (intent_admit_or_answer(reg, in, e, committer_submit))
        enqueue(reg, in, 0);
}

/* One bucket's part of a batch. */
struct slot {
    struct bucket *bk;
    struct reg_record old[REG_KINDS]; /* copies of the committed sets (nvalues 0: none) */
    struct reg_record next[REG_KINDS];
    struct intent *intents;
};

/* A slot's intents are no longer in a call (about to be answered, or queued again). */
static void leave_call(struct reg_registry *reg, const struct slot *sl)
{
    size_t n = 0;
    for (const struct intent *in = sl->intents; in; in = in->next)
        n++;
    pthread_mutex_lock(&reg->work_lock);
    reg->in_call -= n;
    pthread_mutex_unlock(&reg->work_lock);
}

/* Settle a committed slot: the store holds next (an empty change: its old sets). Completions
 * run after the locks. */
static void settle_ok(struct reg_registry *reg, struct slot *sl, const char *change_id)
{
    struct bucket *bk = sl->bk;
    struct intent *waiters, *in;
    unsigned weight;

    leave_call(reg, sl);
    pthread_mutex_lock(&bk->lock);
    waiters = bucket_commit(reg, bk, sl->next, sl->intents, RC_OK);
    bucket_release_locked(bk);
    weight = bk->rec[REG_KIND_SERVED].weight;
    for (in = sl->intents; in; in = in->next)
        intent_log_change(reg, in->op, &in->ip, bk);
    pthread_mutex_unlock(&bk->lock);

    while ((in = sl->intents)) {
        struct reg_result res;
        sl->intents = in->next;
        intent_result(in, weight, change_id, &res);
        if (in->op == REG_OP_REMOVE && in->kind_after < 0)
            strays_finish_removal(reg, in, &res); /* no copy left elsewhere, then answer */
        else
            intent_finish(in, &res);
    }
    resubmit(reg, waiters);
}

/* Fail every intent of a slot: nothing of it was applied. */
static void settle_failed(struct reg_registry *reg, struct slot *sl, enum rc_code rc,
                          const char *detail)
{
    struct intent *waiters, *in;

    leave_call(reg, sl);
    pthread_mutex_lock(&sl->bk->lock);
    waiters = bucket_commit(reg, sl->bk, NULL, sl->intents, rc);
    bucket_release_locked(sl->bk);
    pthread_mutex_unlock(&sl->bk->lock);
    while ((in = sl->intents)) {
        sl->intents = in->next;
        intent_fail(in, rc, detail);
    }
    resubmit(reg, waiters);
}

/*
 * Put a slot's intents back at the front of its queue (after a conflict), failing those that
 * used up their rounds. The bucket stays this committer's (writing) until every intent is
 * settled or queued again, and is given up once, at the end: another writer waiting for it
 * (a TTL change) never sees it free while any of them is still in hand.
 */
static void requeue(struct reg_registry *reg, struct slot *sl)
{
    struct intent *in, *rev = NULL, *spent = NULL, **spent_tail = &spent, *waiters = NULL;

    leave_call(reg, sl);
    while ((in = sl->intents)) { /* reverse, so pushing to the front keeps the order */
        sl->intents = in->next;
        if (++in->rounds >= CONFLICT_ROUNDS) {
            in->next = NULL;
            *spent_tail = in;
            spent_tail = &in->next;
            continue;
        }
        in->next = rev;
        rev = in;
    }
    if (spent) {
        pthread_mutex_lock(&sl->bk->lock);
        waiters = bucket_commit(reg, sl->bk, NULL, spent, RC_CONFLICT);
        pthread_mutex_unlock(&sl->bk->lock);
    }
    while ((in = rev)) {
        rev = in->next;
        enqueue(reg, in, 1);
    }
    pthread_mutex_lock(&sl->bk->lock);
    bucket_release_locked(sl->bk); /* the store refused the batch: nothing of it applied */
    pthread_mutex_unlock(&sl->bk->lock);
    while ((in = spent)) {
        spent = in->next;
        intent_fail(in, RC_CONFLICT, "the record kept changing underneath through another writer");
    }
    resubmit(reg, waiters);
}

/* Did the store name an alias among the sets that changed underneath? */
static int tree_named(const struct reg_conflicts *c)
{
    for (int t = 0; t < 2; t++)
        for (unsigned k = 0; k < REG_TREE_CHILDREN; k++)
            if (c->aliases[t][k])
                return 1;
    return 0;
}

static void slot_release(struct slot *sl)
{
    sets_release(sl->old);
    sets_release(sl->next);
}

/*
 * After a conflict: move the slots holding the sets the store named (c) to the end of
 * slots[0..n), keeping the order of each part, and return how many they are. masks[i]: the
 * kinds slot i's changes touch (permuted along). 0 when the store named no set, or named one
 * this batch does not change (it should not happen): the caller then halves instead.
 */
static size_t named_to_end(struct slot *slots, unsigned *masks, size_t n,
                           const struct reg_conflicts *c)
{
    struct slot *tmp;
    unsigned *mtmp, seen = 0;
    size_t named = 0, k = 0;

    if (c->named == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const struct reg_record *r = &slots[i].old[0];
        unsigned kinds = c->kinds[r->type][r->bucket];
        if (kinds & ~masks[i])
            return 0;
        for (unsigned m = kinds; m; m &= m - 1)
            seen++;
        named += kinds != 0;
    }
    if (seen != c->named)
        return 0;
    tmp = xcalloc(n, sizeof(*tmp));
    mtmp = xcalloc(n, sizeof(*mtmp));
    for (int at_fault = 0; at_fault < 2; at_fault++)
        for (size_t i = 0; i < n; i++) {
            const struct reg_record *r = &slots[i].old[0];
            if ((c->kinds[r->type][r->bucket] != 0) == at_fault) {
                mtmp[k] = masks[i];
                tmp[k++] = slots[i];
            }
        }
    memcpy(slots, tmp, n * sizeof(*slots));
    memcpy(masks, mtmp, n * sizeof(*masks));
    free(tmp);
    free(mtmp);
    return named;
}

/* Send slots[0..n) as one atomic store call; on a conflict re-read the buckets the store
 * names and send the others again, on another refusal isolate the cause by halving. A slot
 * (one bucket's sets) is never split: its changes stay in one call. ttl_learnt: the group
 * TTLs were just learnt from the zone (a halved call after a TTL refusal): do not list again. */
static void send_batch(struct reg_registry *reg, struct slot *slots, size_t n, int paced,
                       int ttl_learnt)
{
    struct reg_change *chg = xcalloc(n * REG_KINDS + 2 * REG_TREE_CHILDREN * 2, sizeof(*chg));
    unsigned *masks = xcalloc(n, sizeof(*masks));
    struct reg_conflicts *named = xcalloc(1, sizeof(*named));
    struct tree_plan *tree = xcalloc(1, sizeof(*tree));
    char change_id[REG_CHANGE_ID_MAX] = "", detail[REG_DETAIL_MAX] = "";
    size_t nchg = 0, elements = 0, queued, nfault = 0;
    enum rc_code rc;

    if (!paced && reg->prov->ops->pace)
        reg->prov->ops->pace(reg->prov);
    if (reg->opt.tree) {
        /* The aliases this call's buckets make necessary: those that go first (never
         * pointing at a child left with nothing to serve), those that come or change last
         * (their child's served set exists by then). */
        long(*delta)[REG_TREE_CHILDREN] = xcalloc(2, sizeof(*delta));
        for (size_t i = 0; i < n; i++) {
            const struct reg_record *o = &slots[i].old[REG_KIND_SERVED];
            int child = reg_slot_child(o->bucket);
            if (child >= 0)
                delta[o->type][child] += (long)slots[i].next[REG_KIND_SERVED].nvalues -
                                         (long)o->nvalues;
        }
        tree_plan_build(reg, (const long(*)[REG_TREE_CHILDREN])delta, tree);
        free(delta);
        nchg += tree_plan_changes(tree, 1, chg + nchg);
    }
    for (size_t i = 0; i < n; i++) {
        size_t c = sets_changes(slots[i].old, slots[i].next, chg + nchg, &masks[i]);
        for (size_t j = nchg; j < nchg + c; j++)
            elements +=
                (chg[j].old ? chg[j].old->nvalues : 0) + (chg[j].new ? chg[j].new->nvalues : 0);
        nchg += c;
    }
    nchg += tree_plan_changes(tree, 0, chg + nchg);
    elements += 2 * tree->n;
    if (tree->n)
        atomic_fetch_add(&reg->tree_writing, 1);
    rc = nchg ? reg->prov->ops->apply(reg->prov, chg, nchg, change_id, named, detail,
                                      sizeof(detail))
              : RC_OK;
    rmetrics_batch(nchg, elements, rc);
    pthread_mutex_lock(&reg->work_lock);
    reg->batches++;
    reg->batched_changes += nchg;
    queued = reg->queued;
    pthread_mutex_unlock(&reg->work_lock);
    log_debug("msg=batch buckets=%zu changes=%zu elements=%zu queued=%zu rc=%s", n, nchg, elements,
              queued, rc_slug(rc));
    free(chg);

    if (tree->n && rc != RC_OK)
        atomic_fetch_add(&reg->tree_gen, 1); /* its outcome may be unknown */
    if (rc == RC_OK) {
        tree_plan_installed(reg, tree);
        if (tree->n)
            atomic_fetch_sub(&reg->tree_writing, 1);
        for (size_t i = 0; i < n; i++)
            settle_ok(reg, &slots[i], change_id);
        goto out;
    }
    if (tree->n)
        atomic_fetch_sub(&reg->tree_writing, 1);
    tree_plan_failed(reg, tree);
    if (rc == RC_CONFLICT && tree_named(named)) {
        /* An alias changed underneath (another writer of the tree): read the store again,
         * aliases and buckets, and send every bucket's change again on what it holds. */
        char why[REG_DETAIL_MAX];
        log_warn("msg=\"batch refused on an alias; reading the store again\" buckets=%zu", n);
        if (resync_run(reg, 0, why, sizeof(why)) != RC_OK) {
            for (size_t i = 0; i < n; i++)
                settle_failed(reg, &slots[i], RC_CONFLICT, detail);
            goto out;
        }
        {
            /* The rounds before requeue() takes the intents (it counts this one). */
            unsigned rounds = slots[0].intents ? slots[0].intents->rounds + 1 : 0;
            for (size_t i = 0; i < n; i++)
                requeue(reg, &slots[i]);
            bucket_backoff(rounds);
        }
        goto out;
    }
    if (rc == RC_CONFLICT && resync_is_ttl_refusal(detail)) {
        /* Every slot was built with the group TTLs known then: learn them from the zone once
         * and rebuild every slot, rather than halving a call whose every bucket is at fault. */
        int explained = 0;
        if (!ttl_learnt)
            resync_ttls(reg);
        for (size_t i = 0; i < n; i++) {
            struct reg_change unused[REG_KINDS];
            unsigned m;
            sets_changes(slots[i].old, slots[i].next, unused, &m);
            explained |= resync_ttl_explained(reg, slots[i].next, m);
        }
        if (explained) {
            for (size_t i = 0; i < n; i++)
                requeue(reg, &slots[i]);
            goto out;
        }
        if (n == 1) {
            /* r53reg's own sets agree: a set it does not manage holds another TTL. */
            resync_say_foreign_ttl(detail, sizeof(detail));
            settle_failed(reg, &slots[0], RC_CONFLICT, detail);
            goto out;
        }
        ttl_learnt = 1;
    } else if (rc == RC_CONFLICT && n > 1 && (nfault = named_to_end(slots, masks, n, named))) {
        /* The store named the sets that changed underneath: the rest of the batch was not
         * refused (and, the batch being atomic, not applied either): send it again at once,
         * then adopt what the store holds for each named bucket and queue its intents again. */
        unsigned rounds = 0;
        log_warn("msg=\"batch refused; re-reading the buckets it names\" buckets=%zu named=%zu", n,
                 nfault);
        if (n > nfault)
            send_batch(reg, slots, n - nfault, 0, ttl_learnt);
        for (size_t i = n - nfault; i < n; i++) {
            const struct reg_record *r = &slots[i].old[0];
            enum rc_code lrc = bucket_reread(reg, slots[i].bk, named->kinds[r->type][r->bucket],
                                             detail, sizeof(detail));
            if (lrc != RC_OK) {
                settle_failed(reg, &slots[i], lrc, detail);
                continue;
            }
            if (slots[i].intents && slots[i].intents->rounds > rounds)
                rounds = slots[i].intents->rounds;
            requeue(reg, &slots[i]);
        }
        /* Other writers are busy on these buckets: back off once, as for one bucket below. */
        bucket_backoff(rounds);
        goto out;
    }
    if (n > 1 && rc != RC_UNAVAILABLE && rc != RC_UPSTREAM_TIMEOUT && rc != RC_NOT_READY) {
        /* One bucket's change spoils the batch and the error does not say which: find it by
         * halving, commit the rest. */
        log_warn("msg=\"batch refused; splitting to isolate the cause\" buckets=%zu rc=%s", n,
                 rc_slug(rc));
        send_batch(reg, slots, n / 2, 0, ttl_learnt);
        send_batch(reg, slots + n / 2, n - n / 2, 0, ttl_learnt);
        goto out;
    }
    if (rc == RC_CONFLICT) {
        /* One bucket changed underneath: adopt what the store holds (read with no lock
         * held), then try again. */
        enum rc_code lrc = bucket_reread(reg, slots[0].bk, masks[0], detail, sizeof(detail));
        if (lrc == RC_OK) {
            /* Another writer is busy on this bucket: back off with full jitter (no lock
             * held) so it cannot win every race against us. */
            unsigned rounds = slots[0].intents ? slots[0].intents->rounds : 0;
            requeue(reg, &slots[0]);
            bucket_backoff(rounds);
            goto out;
        }
        rc = lrc;
    }
    for (size_t i = 0; i < n; i++)
        settle_failed(reg, &slots[i], rc, detail);
out:
    free(masks);
    free(named);
    free(tree);
}

/*
 * Unlink from bk's queue the registrations that no longer fit: another writer's additions,
 * adopted on a conflict, may have filled the bucket since they were placed (immediate mode
 * checks the same in commit_now). Their index entries are settled (dropped); the operations
 * that waited on them go to *waiters. Returns them, for refuse() once no lock is held. Caller
 * holds bk->lock.
 */
static struct intent *take_overflow(struct reg_registry *reg, struct bucket *bk,
                                    struct intent **waiters)
{
    struct reg_record tr[REG_KINDS];
    struct intent *out = NULL, **otail = &out, **pp, *in;
    size_t created = 0, nout = 0;

    *waiters = NULL;
    for (in = bk->queue; in; in = in->next)
        created += (size_t)in->created;
    if (sets_count(bk->rec) + created <= reg->capacity[bk->rec[0].type])
        return NULL; /* the common case: everything fits */
    sets_copy(tr, bk->rec);
    for (pp = &bk->queue; (in = *pp);) {
        if (in->created && sets_find(tr, &in->ip) < 0 &&
            sets_count(tr) >= reg->capacity[bk->rec[0].type]) {
            *pp = in->next;
            in->next = NULL;
            *otail = in;
            otail = &in->next;
            nout++;
            continue;
        }
        sets_apply_op(tr, in);
        pp = &in->next;
    }
    sets_release(tr);
    bk->queue_tail = pp;
    if (!out)
        return NULL;
    *waiters = bucket_commit(reg, bk, NULL, out, RC_CONFLICT);
    pthread_mutex_lock(&reg->work_lock);
    reg->queued -= nout;
    pthread_mutex_unlock(&reg->work_lock);
    return out;
}

/* Place what take_overflow() took again (another bucket with room), or answer it once it has
 * met full buckets for all its rounds (no lock held). */
static void refuse(struct reg_registry *reg, struct intent *refused, struct intent *waiters)
{
    struct intent *in;
    while ((in = refused)) {
        refused = in->next;
        in->next = NULL;
        if (++in->rounds < CONFLICT_ROUNDS) {
            in->created = 0;
            committer_submit(reg, in);
            continue;
        }
        intent_fail(in, RC_CONFLICT, "the bucket filled up through another writer; retry");
    }
    resubmit(reg, waiters);
}

/* Keep bk for the next batch: append it to the skipped list (*tail) unless it was listed
 * again meanwhile. */
static void keep_dirty(struct reg_registry *reg, struct bucket *bk, struct bucket ***tail)
{
    pthread_mutex_lock(&reg->work_lock);
    if (!bk->listed) {
        bk->listed = 1;
        bk->dirty_next = NULL;
        **tail = bk;
        *tail = &bk->dirty_next;
    }
    pthread_mutex_unlock(&reg->work_lock);
}

/* The served set's value text, cached per install (the estimate below reads it on every
 * look at a held bucket). Caller holds bk->lock. */
static size_t served_chars(struct bucket *bk)
{
    if (bk->served_chars_of != bk->changes + 1) {
        const struct reg_record *r = &bk->rec[REG_KIND_SERVED];
        char txt[IP_TEXT_MAX];
        bk->served_chars = 0;
        for (size_t i = 0; i < r->nvalues; i++)
            bk->served_chars += strlen(ip_format(&r->values[i], txt));
        bk->served_chars_of = bk->changes + 1;
    }
    return bk->served_chars;
}

/* What the send rule needs to know of bk's queue: counts, and what its change would cost
 * (estimated from the served set: the exact cost is taken when the change is built). Caller
 * holds bk->lock; takes the index lock. */
static void describe(struct reg_registry *reg, struct bucket *bk, struct batch_candidate *c)
{
    const struct reg_record *r = &bk->rec[REG_KIND_SERVED];
    size_t add_chars = 0, after, old_chars;

    memset(c, 0, sizeof(*c));
    c->values = r->nvalues;
    for (struct intent *in = bk->queue; in; in = in->next) {
        if (!c->oldest_ns)
            c->oldest_ns = in->submitted_ns;
        if (in->op == REG_OP_ADD || in->op == REG_OP_ENSURE) {
            c->adds++;
            add_chars += in->chars;
        } else {
            c->removes++;
        }
    }
    after = c->values + c->adds > c->removes ? c->values + c->adds - c->removes : 0;
    old_chars = c->values ? served_chars(bk) : 0;
    c->elements = c->values + after;
    c->chars = 2 * old_chars + add_chars;
    pthread_mutex_lock(&reg->index_lock);
    c->final = reg->reserved[r->type][r->bucket] >= reg->capacity[r->type];
    pthread_mutex_unlock(&reg->index_lock);
}

/* The stream and the budget as the send rule sees them now; type: of the first candidate
 * (the next bucket filled is likely of its type). */
static void stream_state(struct reg_registry *reg, enum reg_type type, struct batch_state *st)
{
    memset(st, 0, sizeof(*st));
    st->now_ns = clock_mono_ns();
    pthread_mutex_lock(&reg->work_lock);
    st->last_arrival_ns = reg->arrivals.last_ns;
    st->arrival_rate = reg->arrivals.rate;
    st->arrival_gap_ns = (int64_t)reg->arrivals.gap_ns;
    st->arrival_mean_gap_ns = (int64_t)reg->arrivals.mean_gap_ns;
    pthread_mutex_unlock(&reg->work_lock);
    if (reg->prov->ops->write_wait_ns)
        st->token_wait_ns = reg->prov->ops->write_wait_ns(reg->prov);
    st->next_elements = reg->capacity[type];
    st->next_chars = reg->capacity[type] * (type == REG_A ? 15 : 39); /* the longest text */
}

/*
 * Ask the send rule whether a call goes now, looking at the dirty buckets without taking
 * anything (they stay listed). *plan: its answer; the return value: buckets it could not see
 * because another writer holds them (a TTL change), so the caller looks again soon.
 */
static size_t look(struct reg_registry *reg, struct batch_plan *plan)
{
    struct bucket **list, *bk;
    struct batch_candidate *cand;
    size_t *order;
    struct batch_state st;
    size_t nlist = 0, n = 0, blocked = 0, max = 2 * (size_t)reg->nslots;
    enum reg_type type = REG_A;

    list = xcalloc(max, sizeof(*list));
    cand = xcalloc(max, sizeof(*cand));
    order = xcalloc(max, sizeof(*order));
    pthread_mutex_lock(&reg->work_lock);
    for (bk = reg->dirty_head; bk && nlist < max; bk = bk->dirty_next)
        list[nlist++] = bk;
    pthread_mutex_unlock(&reg->work_lock);
    for (size_t i = 0; i < nlist; i++) {
        bk = list[i];
        pthread_mutex_lock(&bk->lock);
        if (bk->writing && bk->queue)
            blocked++;
        else if (bk->queue) {
            if (!n)
                type = bk->rec[0].type;
            describe(reg, bk, &cand[n++]);
        }
        pthread_mutex_unlock(&bk->lock);
    }
    stream_state(reg, type, &st);
    batch_policy_plan(cand, n, &st, 0, order, plan);
    if (plan->reason == BATCH_HOLD && !n && !blocked)
        plan->reason = BATCH_IDLE; /* only empty queues listed: let drain() unlist them */
    free(list);
    free(cand);
    free(order);
    return blocked;
}

/*
 * Take the queued intents of the buckets the send rule chooses into one batch within the
 * limits (the caller holds a write token: the rule must choose). Buckets left out stay dirty
 * and go first next time. Returns the slots (*out, to free) and their count.
 */
static size_t drain(struct reg_registry *reg, struct slot **out)
{
    struct bucket **list, *bk, *skipped = NULL, **skipped_tail = &skipped;
    struct bucket **cands;
    struct batch_candidate *cand;
    size_t *order;
    unsigned char *chosen;
    struct batch_state st;
    struct batch_plan plan;
    size_t n = 0, cap = 0, elements = 0, chars = 0, nlist = 0, ncand = 0;
    size_t max = 2 * (size_t)reg->nslots; /* every bucket is listed at most once */
    struct slot *slots = NULL;
    enum reg_type type = REG_A;

    list = xcalloc(max, sizeof(*list));
    cands = xcalloc(max, sizeof(*cands));
    cand = xcalloc(max, sizeof(*cand));
    order = xcalloc(max, sizeof(*order));
    chosen = xcalloc(max, sizeof(*chosen));
    /* The aliases this call may have to write go first in its budget. */
    tree_reserve(reg, &elements, &chars);
    /* Take the dirty list as an array: once unlisted, a bucket's dirty_next belongs to whoever
     * lists it again. */
    pthread_mutex_lock(&reg->work_lock);
    for (bk = reg->dirty_head; bk && nlist < max; bk = bk->dirty_next) {
        bk->listed = 0;
        list[nlist++] = bk;
    }
    reg->dirty_head = NULL;
    reg->dirty_tail = &reg->dirty_head;
    pthread_mutex_unlock(&reg->work_lock);

    for (size_t i = 0; i < nlist; i++) {
        bk = list[i];
        pthread_mutex_lock(&bk->lock);
        for (;;) {
            struct intent *waiters, *refused = take_overflow(reg, bk, &waiters);
            if (!refused)
                break;
            pthread_mutex_unlock(&bk->lock);
            refuse(reg, refused, waiters);
            pthread_mutex_lock(&bk->lock);
        }
        if (!bk->queue) {
            pthread_mutex_unlock(&bk->lock);
            continue;
        }
        if (bk->writing) {
            /* Another writer owns the bucket (a TTL change claimed it): hold its queue. */
            pthread_mutex_unlock(&bk->lock);
            keep_dirty(reg, bk, &skipped_tail);
            continue;
        }
        if (!ncand)
            type = bk->rec[0].type;
        describe(reg, bk, &cand[ncand]);
        pthread_mutex_unlock(&bk->lock);
        cands[ncand++] = bk;
    }
    stream_state(reg, type, &st);
    batch_policy_plan(cand, ncand, &st, 1, order, &plan);

    for (size_t k = 0; k < plan.n; k++) {
        struct slot sl;
        size_t e, c, taken = 0, changed;
        unsigned ttl[REG_KINDS];
        bk = cands[order[k]];
        memset(&sl, 0, sizeof(sl));
        sl.bk = bk;
        pthread_mutex_lock(&bk->lock);
        if (!bk->queue || bk->writing) {
            pthread_mutex_unlock(&bk->lock);
            continue; /* a TTL change claimed it meanwhile: kept below */
        }
        sets_copy(sl.old, bk->rec);
        registry_group_ttls(reg, bk->rec[0].type, ttl);
        sets_apply_intents(&reg->opt, ttl, bk->rec, bk->queue, sl.next);
        sets_cost(sl.old, sl.next, &e, &c);
        if (!batch_policy_fits(n, elements, chars, e, c)) {
            /* the estimate was short (moves between sets cost two of them): next call */
            pthread_mutex_unlock(&bk->lock);
            slot_release(&sl);
            continue;
        }
        chosen[order[k]] = 1;
        sl.intents = bk->queue;
        for (struct intent *in = bk->queue; in; in = in->next)
            taken++;
        bk->queue = NULL;
        bk->queue_tail = &bk->queue;
        bk->writing = 1; /* until settle_ok, settle_failed or requeue */
        pthread_mutex_lock(&reg->index_lock);
        reg->filling[bk->rec[0].type][bk->rec[0].bucket] = 0; /* sent: no longer filling */
        pthread_mutex_unlock(&reg->index_lock);
        pthread_mutex_unlock(&bk->lock);
        pthread_mutex_lock(&reg->work_lock);
        reg->queued -= taken;
        reg->in_call += taken;
        pthread_mutex_unlock(&reg->work_lock);

        {
            struct reg_change unused[REG_KINDS];
            unsigned mask;
            changed = sets_changes(sl.old, sl.next, unused, &mask);
        }
        if (!changed) {
            /* Nothing to change (adopted meanwhile): complete without a call. */
            settle_ok(reg, &sl, "");
            slot_release(&sl);
            continue;
        }
        slots = xgrow(slots, &cap, n + 1, sizeof(*slots));
        slots[n++] = sl;
        elements += e;
        chars += c;
    }
    /* Buckets left out stay dirty, in the order they became so. */
    for (size_t i = 0; i < ncand; i++)
        if (!chosen[i])
            keep_dirty(reg, cands[i], &skipped_tail);
    if (skipped) {
        pthread_mutex_lock(&reg->work_lock);
        *skipped_tail = reg->dirty_head;
        if (!reg->dirty_head)
            reg->dirty_tail = skipped_tail;
        reg->dirty_head = skipped;
        pthread_mutex_unlock(&reg->work_lock);
    }
    free(list);
    free(cands);
    free(cand);
    free(order);
    free(chosen);
    *out = slots;
    return n;
}

/*
 * Stopping: answer every queued intent RC_SHUTTING_DOWN without sending it (the HTTP side has
 * already answered its client "may still be committed", or given up on it), so the process
 * exits after at most the call in flight, not after the whole backlog at Route 53's pace.
 * Operations that waited on those IPs are answered the same way when they come back.
 */
static void abandon_queues(struct reg_registry *reg)
{
    for (;;) {
        struct bucket *bk;
        struct intent *intents, *waiters, *in;
        size_t n = 0;

        pthread_mutex_lock(&reg->work_lock);
        bk = reg->dirty_head;
        if (bk) {
            reg->dirty_head = bk->dirty_next;
            if (!reg->dirty_head)
                reg->dirty_tail = &reg->dirty_head;
            bk->listed = 0;
        }
        pthread_mutex_unlock(&reg->work_lock);
        if (!bk)
            return;
        pthread_mutex_lock(&bk->lock);
        intents = bk->queue;
        bk->queue = NULL;
        bk->queue_tail = &bk->queue;
        for (in = intents; in; in = in->next)
            n++;
        waiters = intents ? bucket_commit(reg, bk, NULL, intents, RC_SHUTTING_DOWN) : NULL;
        pthread_mutex_unlock(&bk->lock);
        pthread_mutex_lock(&reg->work_lock);
        reg->queued -= n;
        pthread_mutex_unlock(&reg->work_lock);
        while ((in = intents)) {
            intents = in->next;
            intent_fail(in, RC_SHUTTING_DOWN,
                        "the service stopped before this change was sent; it was not made");
        }
        resubmit(reg, waiters); /* queued again, then abandoned on the next pass */
    }
}

/* Wait on work_cond until CLOCK_MONOTONIC deadline_ns. Caller holds work_lock. */
static void wait_until(struct reg_registry *reg, int64_t deadline_ns)
{
    struct timespec until = {(time_t)(deadline_ns / 1000000000LL),
                             (long)(deadline_ns % 1000000000LL)};
    pthread_cond_timedwait(&reg->work_cond, &reg->work_lock, &until);
}

/* The aliases alone, weighed on the children as committed (no bucket changes). */
static enum rc_code tree_call(struct reg_registry *reg)
{
    long(*delta)[REG_TREE_CHILDREN] = xcalloc(2, sizeof(*delta));
    struct tree_plan *tree = xcalloc(1, sizeof(*tree));
    struct reg_change chg[2 * 2 * REG_TREE_CHILDREN];
    struct reg_conflicts *named = xcalloc(1, sizeof(*named));
    char change_id[REG_CHANGE_ID_MAX] = "", detail[REG_DETAIL_MAX] = "";
    enum rc_code rc = RC_OK;
    size_t nchg;

    tree_plan_build(reg, (const long(*)[REG_TREE_CHILDREN])delta, tree);
    nchg = tree_plan_changes(tree, 1, chg);
    nchg += tree_plan_changes(tree, 0, chg + nchg);
    if (nchg) {
        if (reg->prov->ops->pace)
            reg->prov->ops->pace(reg->prov);
        atomic_fetch_add(&reg->tree_writing, 1);
        rc = reg->prov->ops->apply(reg->prov, chg, nchg, change_id, named, detail,
                                   sizeof(detail));
        rmetrics_batch(nchg, 2 * tree->n, rc);
        if (rc == RC_OK) {
            tree_plan_installed(reg, tree);
            log_info("msg=\"tree: aliases weighed again\" changes=%zu change_id=%s", nchg,
                     change_id);
        } else {
            atomic_fetch_add(&reg->tree_gen, 1); /* its outcome may be unknown */
        }
        atomic_fetch_sub(&reg->tree_writing, 1);
        if (rc != RC_OK) {
            tree_plan_failed(reg, tree);
            log_warn("msg=\"tree: weighing the aliases failed\" rc=%s detail=\"%s\"", rc_slug(rc),
                     detail);
            if (rc == RC_CONFLICT)
                resync_run(reg, 0, NULL, 0);
        }
    }
    free(named);
    free(tree);
    free(delta);
    return rc;
}

/*
 * The committer thread: wait for work; ask the send rule whether a call goes now, and while
 * it holds, sleep until its deadline or an event that can end the hold (no polling: a held
 * bucket costs nothing until then); pace, drain, send. When stopped, abandon what is left.
 */
static void *committer_main(void *arg)
{
    struct reg_registry *reg = arg;
    int64_t tree_after_ns = 0;
    for (;;) {
        struct slot *slots = NULL;
        struct batch_plan plan;
        unsigned long long kicks;
        size_t n, blocked;
        pthread_mutex_lock(&reg->work_lock);
        while (!reg->dirty_head && !reg->stopping) {
            if (reg->opt.tree && atomic_load(&reg->tree_dirty)) {
                /* No bucket to write, but the aliases may need weighing (another writer's
                 * change adopted, a bucket moved): a call of its own, no more than one a
                 * second when they keep failing. */
                if (clock_mono_ns() >= tree_after_ns)
                    break;
                wait_until(reg, tree_after_ns);
                continue;
            }
            pthread_cond_wait(&reg->work_cond, &reg->work_lock);
        }
        if (reg->stopping) {
            pthread_mutex_unlock(&reg->work_lock);
            abandon_queues(reg);
            break;
        }
        if (!reg->dirty_head) {
            pthread_mutex_unlock(&reg->work_lock);
            if (tree_call(reg) != RC_OK)
                tree_after_ns = clock_mono_ns() + 1000000000LL;
            continue;
        }
        if (atomic_load(&reg->ttl_busy)) {
            /* A TTL change holds every bucket: nothing can be drained, so neither pace (a
             * reserved write token would hold up the change's own reads) nor poll; it
             * signals work_cond when it gives the buckets back. */
            wait_until(reg, clock_mono_ns() + 1000000000LL);
            pthread_mutex_unlock(&reg->work_lock);
            continue;
        }
        kicks = reg->kicks;
        pthread_mutex_unlock(&reg->work_lock);

        blocked = look(reg, &plan);
        if (plan.reason == BATCH_HOLD) {
            /* Nothing goes yet. Buckets another writer holds (a TTL change, a repair) are
             * looked at again shortly: giving them back signals nothing. */
            int64_t wake = plan.wake_ns, soon = clock_mono_ns() + 10 * 1000000LL;
            if (blocked && (!wake || wake > soon))
                wake = soon;
            pthread_mutex_lock(&reg->work_lock);
            if (reg->kicks == kicks && !reg->stopping) {
                if (wake)
                    wait_until(reg, wake);
                else
                    pthread_cond_wait(&reg->work_cond, &reg->work_lock);
            }
            pthread_mutex_unlock(&reg->work_lock);
            continue;
        }
        /* Wait for the rate limit first: whatever arrives meanwhile joins this batch. */
        if (reg->prov->ops->pace)
            reg->prov->ops->pace(reg->prov);
        n = drain(reg, &slots);
        if (n)
            send_batch(reg, slots, n, 1, 0);
        for (size_t i = 0; i < n; i++)
            slot_release(&slots[i]);
        free(slots);
    }
    return NULL;
}

/* Start the committer thread. RC_INTERNAL when it cannot be created. */
enum rc_code committer_start(struct reg_registry *reg)
{
    if (reg->committer_started)
        return RC_OK;
    if (pthread_create(&reg->committer, NULL, committer_main, reg) != 0)
        return RC_INTERNAL;
    reg->committer_started = 1;
    return RC_OK;
}

/* Stop the committer after the call in flight (what is still queued is answered
 * RC_SHUTTING_DOWN, not sent), then join it. */
void committer_stop(struct reg_registry *reg)
{
    if (!reg->committer_started)
        return;
    pthread_mutex_lock(&reg->work_lock);
    reg->stopping = 1;
    pthread_cond_signal(&reg->work_cond);
    pthread_mutex_unlock(&reg->work_lock);
    pthread_join(reg->committer, NULL);
    reg->committer_started = 0;
}
