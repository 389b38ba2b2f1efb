/*
 * strays.c: an IP in more than one bucket. The index holds one copy of each IP; any other copy
 * in the committed sets (two replicas that placed it with different views, an older zone, the
 * console) is a stray. A removal goes on while strays of its IP remain (strays_take), and the
 * maintainer removes strays of IPs that stay registered (strays_repair) with atomic batches,
 * one per bucket holding strays, that also delete and re-create each kept copy's set exactly as
 * read: Route 53 applies one only if every kept copy is still there, so a stale view of the
 * other buckets can never remove the last copy.
 */
#include "registry/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

/* Calls a repair pass makes at most (the rest waits for the next pass). */
#define REPAIRS_PER_PASS 4
/* Strays a pass looks at, and the buckets of kept copies one batch may prove. */
#define STRAYS_FOUND_MAX 256
#define KEEPS_PER_BATCH 3

/*
 * After a removal of ip committed: is a copy left in another bucket's committed sets? Then it
 * becomes ip's index entry (PRESENT where it is), so the caller can remove it too; a copy the
 * index adopted from the store meanwhile (another replica's) counts too, but not one
 * registered through this registry since. Returns 1 when a copy is to be removed. Caller holds
 * no lock.
 */
int strays_take(struct reg_registry *reg, const struct ip_addr *ip)
{
    enum reg_type t = reg_type_of(ip);

    /* This registry never writes an address twice: a copy comes from the store at load or
     * from another writer's change adopted since. Without either, nothing to look for (in the
     * alias tree that look is 10,100 buckets per removal). */
    if (!atomic_load(&reg->copies_loaded) && !atomic_load(&reg->foreign_seen_ns))
        return 0;

    for (unsigned b = 0; b < reg->nslots; b++) {
        struct bucket *bk = &reg->buckets[t][b];
        int k, took = 0;
        pthread_mutex_lock(&bk->lock);
        k = sets_find(bk->rec, ip);
        if (k >= 0) {
            pthread_mutex_lock(&reg->index_lock);
            struct entry *e = index_find(reg, ip);
            if (!e) {
                e = index_insert(reg, ip, b, ENTRY_PRESENT);
                index_entry_moved(e, k); /* reserved already counts it */
                e->adopted = 1;
                took = 1;
            } else {
                took = e->state == ENTRY_PRESENT && e->adopted;
            }
            pthread_mutex_unlock(&reg->index_lock);
        }
        pthread_mutex_unlock(&bk->lock);
        if (k >= 0)
            return took;
    }
    return 0;
}

/* Run in (again): through the committer, or the immediate-mode threads (never on this one:
 * the maintainer answers confirm rounds). */
static void run(struct reg_registry *reg, struct intent *in)
{
    in->next = NULL;
    in->kind_after = -1;
    if (reg->opt.commit == REG_COMMIT_IMMEDIATE)
        commit_now_submit(reg, in);
    else
        committer_submit(reg, in);
}

/* A removal parked for a fresh read: its answer so far. */
struct removal {
    struct intent *in;
    struct reg_result res;
};

static void removal_rechecked(void *arg, enum rc_code rc, const char *detail)
{
    struct removal *rm = arg;
    struct intent *in = rm->in;
    char txt[IP_TEXT_MAX];

    if (rc == RC_OK && strays_take(in->reg, &in->ip)) {
        run(in->reg, in); /* another replica's copy: remove it too */
    } else if (rc == RC_OK) {
        intent_finish(in, &rm->res);
    } else {
        memset(&rm->res, 0, sizeof(rm->res));
        rm->res.rc = rc;
        rc_detail(rm->res.detail, sizeof(rm->res.detail),
                  "%s was removed from the bucket this replica knew, but reading Route 53 to "
                  "check that no other replica holds a copy failed (%s); retry the DELETE",
                  ip_format(&in->ip, txt), detail);
        intent_finish(in, &rm->res);
    }
    free(rm);
}

/*
 * A removal of in->ip committed (no lock held): answer it, unless a copy may be left. A copy
 * this registry knows of (another bucket's sets) is removed next; when other writers are
 * active, the answer waits for one fresh read of the store (shared with every request waiting
 * meanwhile) and removes what that finds too. res: the answer as it stands.
 */
void strays_finish_removal(struct reg_registry *reg, struct intent *in, struct reg_result *res)
{
    struct removal *rm;

    if (strays_take(reg, &in->ip)) {
        in->expiry = 0;
        run(reg, in);
        return;
    }
    if (!in->confirm || in->confirmed_gone || !registry_others_active(reg)) {
        intent_finish(in, res);
        return;
    }
    in->confirmed_gone = 1;
    rm = xcalloc(1, sizeof(*rm));
    rm->in = in;
    rm->res = *res;
    if (reg_confirm(reg, removal_rechecked, rm) != RC_OK) {
        intent_finish(in, res); /* no read to wait for (shutting down, too many waiting) */
        free(rm);
    }
}

/* One stray: ip in bucket b (not its index bucket), kept in bucket keep, set keep_kind. */
struct stray {
    struct ip_addr ip;
    enum reg_type t;
    unsigned b, keep;
};

/* Up to max strays of settled IPs, found in the committed sets. */
static size_t find(struct reg_registry *reg, struct stray *out, size_t max)
{
    size_t n = 0;
    for (int t = 0; t < 2 && n < max; t++)
        for (unsigned b = 0; b < reg->nslots && n < max; b++) {
            struct bucket *bk = &reg->buckets[t][b];
            pthread_mutex_lock(&bk->lock);
            pthread_mutex_lock(&reg->index_lock);
            for (int k = 0; k < REG_KINDS && n < max; k++)
                for (size_t i = 0; i < bk->rec[k].nvalues && n < max; i++) {
                    const struct ip_addr *ip = &bk->rec[k].values[i];
                    struct entry *e = index_find(reg, ip);
                    if (!e || e->bucket == b || e->state != ENTRY_PRESENT || e->waiters)
                        continue;
                    out[n].ip = *ip;
                    out[n].t = (enum reg_type)t;
                    out[n].b = b;
                    out[n].keep = e->bucket;
                    n++;
                }
            pthread_mutex_unlock(&reg->index_lock);
            pthread_mutex_unlock(&bk->lock);
        }
    return n;
}

/* Own bk's store state unless another writer does (then 0: skip it this pass). */
/* A repair batch's Route 53 cost: values (each counts once in a DELETE, once in a CREATE) and
 * an estimate of their characters; kept under the per-call limits with room to spare. */
#define REPAIR_VALUES_MAX 900
#define REPAIR_CHARS_MAX 28000

static int batch_fits(const struct reg_change *chg, size_t n)
{
    size_t values = 0, chars = 0;
    for (size_t i = 0; i < n; i++) {
        const struct reg_record *sets[2] = {chg[i].old, chg[i].new};
        for (int j = 0; j < 2; j++)
            if (sets[j]) {
                values += sets[j]->nvalues;
                chars += sets[j]->nvalues * (sets[j]->type == REG_AAAA ? 39 : 15);
            }
    }
    return values <= REPAIR_VALUES_MAX && chars <= REPAIR_CHARS_MAX;
}

/*
 * Remove the strays s[0..n) (one bucket b; kept in at most KEEPS_PER_BATCH other buckets) in
 * one batch that proves every kept copy is there: b rewritten without them, plus each kept
 * copy's set deleted and created unchanged, exactly as read. Route 53 applies the batch only
 * if all of it matches. A busy bucket skips the batch (the next pass finds the strays again).
 * Caller holds no lock.
 */
static enum rc_code repair(struct reg_registry *reg, const struct stray *s, size_t n, int *called)
{
    enum reg_type t = s[0].t;
    struct bucket *bk = &reg->buckets[t][s[0].b];
    struct bucket *keep[KEEPS_PER_BATCH];
    unsigned keep_b[KEEPS_PER_BATCH], used[KEEPS_PER_BATCH] = {0};
    struct reg_record old[REG_KINDS], next[REG_KINDS], kept[KEEPS_PER_BATCH][REG_KINDS];
    struct reg_change chg[REG_KINDS + KEEPS_PER_BATCH * REG_KINDS];
    struct intent *rm = xcalloc(n, sizeof(*rm)), *chain = NULL;
    unsigned mask, ttl[REG_KINDS];
    char detail[REG_DETAIL_MAX] = "", change_id[REG_CHANGE_ID_MAX] = "";
    enum rc_code rc = RC_OK;
    size_t nk = 0, nchg, removed = 0, claimed = 0;

    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < nk && keep_b[j] != s[i].keep)
            j++;
        if (j == nk)
            keep_b[nk++] = s[i].keep; /* the caller keeps nk within KEEPS_PER_BATCH */
    }
    if (!bucket_try_claim(bk)) {
        free(rm);
        return RC_OK;
    }
    for (; claimed < nk; claimed++) {
        keep[claimed] = &reg->buckets[t][keep_b[claimed]];
        if (!bucket_try_claim(keep[claimed]))
            goto out_unclaim;
    }
    /* Every kept copy as committed now, and still the index's; the strays still there. */
    pthread_mutex_lock(&bk->lock);
    sets_copy(old, bk->rec);
    pthread_mutex_unlock(&bk->lock);
    for (size_t j = 0; j < nk; j++) {
        pthread_mutex_lock(&keep[j]->lock);
        sets_copy(kept[j], keep[j]->rec);
        pthread_mutex_lock(&reg->index_lock);
        for (size_t i = 0; i < n; i++) {
            struct entry *e;
            int kk;
            if (s[i].keep != keep_b[j])
                continue;
            e = index_find(reg, &s[i].ip);
            kk = e && e->bucket == keep_b[j] && e->state == ENTRY_PRESENT && !e->waiters
                     ? sets_find(kept[j], &s[i].ip)
                     : -1;
            if (kk < 0 || sets_find(old, &s[i].ip) < 0)
                continue;
            used[j] |= 1u << kk;
            rm[i].op = REG_OP_REMOVE;
            rm[i].ip = s[i].ip;
            rm[i].next = chain;
            chain = &rm[i];
            removed++;
        }
        pthread_mutex_unlock(&reg->index_lock);
        pthread_mutex_unlock(&keep[j]->lock);
    }
    if (!removed)
        goto out_release;

    registry_group_ttls(reg, t, ttl);
    sets_apply_intents(&reg->opt, ttl, old, chain, next);
    nchg = sets_changes(old, next, chg, &mask);
    for (size_t j = 0; j < nk; j++)
        for (int k = 0; k < REG_KINDS; k++)
            if (used[j] & (1u << k)) { /* unchanged: applied only if it holds */
                chg[nchg].old = &kept[j][k];
                chg[nchg].new = &kept[j][k];
                nchg++;
            }
    if (!batch_fits(chg, nchg)) {
        /* Too large for one call: the caller tries the first stray alone; one that cannot
         * be proved within one call (very large sets) stays until its sets shrink. */
        if (n == 1) {
            char txt[IP_TEXT_MAX];
            log_debug("msg=\"a second copy cannot be removed in one call; left\" ip=%s "
                      "bucket=%u kept_in=%u",
                      ip_format(&s[0].ip, txt), s[0].b, s[0].keep);
        }
        sets_release(next);
        rc = n > 1 ? RC_GROUP_TOO_LARGE : RC_OK;
        goto out_release;
    }
    *called = 1;
    rc = reg->prov->ops->apply(reg->prov, chg, nchg, change_id, NULL, detail, sizeof(detail));
    if (rc == RC_OK) {
        char txt[IP_TEXT_MAX];
        pthread_mutex_lock(&bk->lock);
        pthread_mutex_lock(&reg->index_lock);
        reg->reserved[t][s[0].b] -= (unsigned)(sets_count(old) - sets_count(next));
        pthread_mutex_unlock(&reg->index_lock);
        bucket_commit(reg, bk, next, NULL, RC_OK);
        pthread_mutex_unlock(&bk->lock);
        if (reg_slot_child(s[0].b) >= 0)
            tree_kick(reg); /* a child's total changed: weigh the aliases */
        for (size_t i = 0; i < n; i++)
            if (rm[i].op == REG_OP_REMOVE) /* in the batch (the others stay REG_OP_ADD, 0) */
                log_info("msg=\"removed a second copy of an address (kept the one in its "
                         "index bucket)\" ip=%s removed_from=%u kept_in=%u change_id=%s",
                         ip_format(&s[i].ip, txt), s[0].b, s[i].keep, change_id);
    } else if (rc == RC_CONFLICT) {
        /* One of them changed: read them all; the next pass judges again. */
        char d2[REG_DETAIL_MAX];
        if (bucket_reread(reg, bk, ALL_KINDS, d2, sizeof(d2)) == RC_OK)
            for (size_t j = 0; j < nk; j++)
                if (bucket_reread(reg, keep[j], ALL_KINDS, d2, sizeof(d2)) != RC_OK)
                    break;
    } else {
        char txt[IP_TEXT_MAX];
        log_warn("msg=\"cannot remove a second copy of an address; will retry\" ip=%s "
                 "bucket=%u strays=%zu rc=%s detail=\"%s\"",
                 ip_format(&s[0].ip, txt), s[0].b, removed, rc_slug(rc), detail);
    }
    sets_release(next);
out_release:
    sets_release(old);
    for (size_t j = 0; j < nk; j++)
        sets_release(kept[j]);
out_unclaim:
    for (size_t j = 0; j < claimed; j++)
        bucket_unclaim(keep[j]);
    bucket_unclaim(bk);
    free(rm);
    return rc == RC_CONFLICT ? RC_OK : rc;
}

/*
 * Maintainer thread: remove strays, a few calls a pass (each batch: the strays of one bucket
 * whose kept copies are in at most KEEPS_PER_BATCH buckets; a batch too large for one call
 * goes as its first stray alone). A failed call stops the pass and waits, and the next pass
 * starts past the bucket that failed, so one bucket that keeps failing cannot starve the
 * repair of the others.
 */
void strays_repair(struct reg_registry *reg)
{
    struct stray s[STRAYS_FOUND_MAX];
    unsigned char done[STRAYS_FOUND_MAX];
    struct stray group[STRAYS_FOUND_MAX];
    size_t n, calls = 0, start;

    if (clock_mono_ns() < reg->strays_retry_ns || !atomic_exchange(&reg->strays_dirty, 0))
        return;
    n = find(reg, s, STRAYS_FOUND_MAX);
    if (!n)
        return;
    atomic_store(&reg->strays_dirty, 1); /* look again next pass: skipped or more left */
    memset(done, 0, n);
    start = reg->strays_start % n;
    for (size_t step = 0; step < n && calls < REPAIRS_PER_PASS; step++) {
        size_t i = (start + step) % n, ng = 0, nk = 0;
        unsigned keeps[KEEPS_PER_BATCH];
        enum rc_code rc;
        int called = 0;
        if (done[i])
            continue;
        for (size_t x = 0; x < n; x++) {
            size_t j = (i + x) % n, k = 0;
            if (done[j] || s[j].t != s[i].t || s[j].b != s[i].b)
                continue;
            while (k < nk && keeps[k] != s[j].keep)
                k++;
            if (k == nk) {
                if (nk == KEEPS_PER_BATCH)
                    continue; /* a later batch */
                keeps[nk++] = s[j].keep;
            }
            group[ng++] = s[j];
            done[j] = 1;
        }
        rc = repair(reg, group, ng, &called);
        if (rc == RC_GROUP_TOO_LARGE)
            rc = repair(reg, group, 1, &called);
        calls += (size_t)called;
        if (rc != RC_OK) {
            /* Wait before calling again, and start the next pass past this bucket. */
            size_t j = (i + 1) % n;
            while (j != i && s[j].t == s[i].t && s[j].b == s[i].b)
                j = (j + 1) % n;
            reg->strays_start = j;
            reg->strays_retry_ns = clock_mono_ns() + TRANSITION_RETRY_NS;
            return;
        }
    }
}
