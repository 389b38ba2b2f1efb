/*
 * strays.c: an IP in more than one bucket. The index holds one copy of each IP; any other copy
 * in the committed sets (two replicas that placed it with different views, an older zone, the
 * console) is a stray. A removal goes on while strays of its IP remain (strays_take), and the
 * maintainer removes strays of IPs that stay registered (strays_repair) with one atomic batch
 * that also deletes and re-creates the kept copy's set exactly as read: Route 53 applies it only
 * if the kept copy is still there, so a stale view of the other bucket can never remove the
 * last copy.
 */
#include "registry/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

/* Calls a repair pass makes at most (the rest waits for the next pass). */
#define REPAIRS_PER_PASS 4

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

    for (unsigned b = 0; b < REG_MAX_BUCKETS; b++) {
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

/* Run in (again): through the committer, or on this thread in immediate mode. */
static void run(struct reg_registry *reg, struct intent *in)
{
    in->next = NULL;
    in->kind_after = -1;
    if (reg->opt.commit == REG_COMMIT_IMMEDIATE)
        commit_now_run(reg, in);
    else
        committer_submit(reg, in);
}

/* Have other writers changed the store lately (an adoption in the last 10 minutes)? */
static int others_active(struct reg_registry *reg)
{
    int64_t seen = atomic_load(&reg->foreign_seen_ns);
    return seen && clock_mono_ns() - seen < 600 * 1000000000LL;
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
    if (!in->confirm || in->confirmed_gone || !others_active(reg)) {
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
        for (unsigned b = 0; b < REG_MAX_BUCKETS && n < max; b++) {
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
static int try_claim(struct bucket *bk)
{
    int ok;
    pthread_mutex_lock(&bk->lock);
    ok = !bk->writing;
    if (ok)
        bk->writing = 1;
    pthread_mutex_unlock(&bk->lock);
    return ok;
}

/* Remove one stray in one batch that proves the kept copy is there. Caller holds no lock. */
static enum rc_code repair(struct reg_registry *reg, const struct stray *s)
{
    struct bucket *bk = &reg->buckets[s->t][s->b], *keep = &reg->buckets[s->t][s->keep];
    struct reg_record old[REG_KINDS], next[REG_KINDS], kept[REG_KINDS];
    struct reg_change chg[REG_KINDS + 1];
    struct intent rm;
    unsigned mask, ttl[REG_KINDS];
    char detail[REG_DETAIL_MAX] = "", change_id[REG_CHANGE_ID_MAX] = "", txt[IP_TEXT_MAX];
    enum rc_code rc = RC_OK;
    size_t nchg;
    int kk;

    if (!try_claim(bk))
        return RC_OK;
    if (!try_claim(keep)) {
        bucket_unclaim(bk);
        return RC_OK;
    }
    /* Both as committed now: the stray still there, the kept copy still the index's. */
    pthread_mutex_lock(&keep->lock);
    sets_copy(kept, keep->rec);
    pthread_mutex_lock(&reg->index_lock);
    {
        struct entry *e = index_find(reg, &s->ip);
        kk = e && e->bucket == s->keep && e->state == ENTRY_PRESENT && !e->waiters
                 ? sets_find(kept, &s->ip)
                 : -1;
    }
    pthread_mutex_unlock(&reg->index_lock);
    pthread_mutex_unlock(&keep->lock);
    pthread_mutex_lock(&bk->lock);
    sets_copy(old, bk->rec);
    pthread_mutex_unlock(&bk->lock);
    if (kk < 0 || sets_find(old, &s->ip) < 0)
        goto out;

    memset(&rm, 0, sizeof(rm));
    rm.op = REG_OP_REMOVE;
    rm.ip = s->ip;
    registry_group_ttls(reg, s->t, ttl);
    sets_apply_intents(&reg->opt, ttl, old, &rm, next);
    nchg = sets_changes(old, next, chg, &mask);
    chg[nchg].old = &kept[kk]; /* the kept copy's set, unchanged: applied only if it holds */
    chg[nchg].new = &kept[kk];
    nchg++;
    rc = reg->prov->ops->apply(reg->prov, chg, nchg, change_id, NULL, detail, sizeof(detail));
    ip_format(&s->ip, txt);
    if (rc == RC_OK) {
        pthread_mutex_lock(&bk->lock);
        pthread_mutex_lock(&reg->index_lock);
        reg->reserved[s->t][s->b] -= (unsigned)(sets_count(old) - sets_count(next));
        pthread_mutex_unlock(&reg->index_lock);
        bucket_commit(reg, bk, next, NULL, RC_OK);
        pthread_mutex_unlock(&bk->lock);
        log_info("msg=\"removed a second copy of an address (kept the one in its index "
                 "bucket)\" ip=%s removed_from=%u kept_in=%u change_id=%s",
                 txt, s->b, s->keep, change_id);
    } else if (rc == RC_CONFLICT) {
        /* One of the two changed: read both; the next pass judges again. */
        char d2[REG_DETAIL_MAX];
        if (bucket_reread(reg, bk, ALL_KINDS, d2, sizeof(d2)) == RC_OK)
            bucket_reread(reg, keep, ALL_KINDS, d2, sizeof(d2));
    } else {
        log_warn("msg=\"cannot remove a second copy of an address; will retry\" ip=%s "
                 "bucket=%u rc=%s detail=\"%s\"",
                 txt, s->b, rc_slug(rc), detail);
    }
    sets_release(next);
out:
    sets_release(old);
    sets_release(kept);
    bucket_unclaim(keep);
    bucket_unclaim(bk);
    return rc == RC_CONFLICT ? RC_OK : rc;
}

/* Maintainer thread: remove a few strays, unless the store failed lately. */
void strays_repair(struct reg_registry *reg)
{
    struct stray s[REPAIRS_PER_PASS];
    size_t n;

    if (clock_mono_ns() < reg->strays_retry_ns || !atomic_exchange(&reg->strays_dirty, 0))
        return;
    n = find(reg, s, REPAIRS_PER_PASS);
    if (n)
        atomic_store(&reg->strays_dirty, 1); /* look again next pass: skipped or more left */
    for (size_t i = 0; i < n; i++)
        if (repair(reg, &s[i]) != RC_OK) {
            reg->strays_retry_ns = clock_mono_ns() + TRANSITION_RETRY_NS;
            return;
        }
}
