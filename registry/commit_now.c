/*
 * commit_now.c: immediate mode. One store call per mutation, made on the caller's thread: the
 * bucket is claimed (one writer at a time), its sets are copied under the lock, the
 * compare-and-swap goes out with no lock held, and the outcome is installed by bucket_commit().
 */
#include "registry/internal.h"

#include <string.h>

/*
 * Commit in alone as a compare-and-swap of bk's sets; on a conflict re-read and adopt what the
 * store holds, and try again on top of it. Caller owns bk (bucket_claim) and holds no lock:
 * every store call here is made with none. Returns with bk->lock held and the outcome already
 * settled by bucket_commit(), so the caller answers from the same lock hold.
 */
static enum rc_code commit_now(struct reg_registry *reg, struct bucket *bk, struct intent *in,
                               char *change_id, char *detail, size_t n)
{
    enum rc_code rc;

    for (unsigned round = 0;; round++) {
        struct reg_record old[REG_KINDS], next[REG_KINDS];
        struct reg_change chg[REG_KINDS];
        unsigned mask, ttl[REG_KINDS];
        size_t nchg;

        pthread_mutex_lock(&bk->lock);
        if (in->created && sets_find(bk->rec, &in->ip) < 0 &&
            sets_count(bk->rec) >= reg->capacity[bk->rec[0].type]) {
            /* Another writer filled it: the caller places the registration again. */
            rc_detail(detail, n, "the bucket filled up through another writer; retry");
            bucket_commit(reg, bk, NULL, in, RC_CONFLICT);
            return RC_BUCKETS_FULL;
        }
        sets_copy(old, bk->rec);
        pthread_mutex_unlock(&bk->lock);

        registry_group_ttls(reg, old[0].type, ttl);
        sets_apply_intents(&reg->opt, ttl, old, in, next);
        nchg = sets_changes(old, next, chg, &mask);
        /* nothing to change: already so (another writer did it, or an answer was lost) */
        rc = nchg ? reg->prov->ops->apply(reg->prov, chg, nchg, change_id, NULL, detail, n) : RC_OK;
        sets_release(old);
        if (rc == RC_OK) {
            pthread_mutex_lock(&bk->lock);
            bucket_commit(reg, bk, nchg ? next : NULL, in, RC_OK);
            sets_release(next);
            return RC_OK;
        }
        if (rc == RC_CONFLICT && resync_is_ttl_refusal(detail)) {
            /* Learn the group's TTL from the zone; a refusal r53reg's own sets do not
             * explain is final. */
            resync_ttls(reg);
            if (!resync_ttl_explained(reg, next, mask)) {
                resync_say_foreign_ttl(detail, n);
                sets_release(next);
                break;
            }
        }
        sets_release(next);
        if (rc != RC_CONFLICT || round + 1 == CONFLICT_ROUNDS)
            break;
        /* A hot contender (another replica's pipeline) can win every race: back off. */
        if (round >= 1)
            bucket_backoff(round);
        rc = bucket_reread(reg, bk, mask, detail, n);
        if (rc)
            break;
    }
    pthread_mutex_lock(&bk->lock);
    bucket_commit(reg, bk, NULL, in, rc);
    return rc;
}

/* Run in on the caller's thread: wait until its IP is settled, admit it, commit it, answer. */
void commit_now_run(struct reg_registry *reg, struct intent *in)
{
    struct reg_result res;
    char change_id[REG_CHANGE_ID_MAX] = "";
    struct bucket *bk;
    enum rc_code rc;
    unsigned weight;

    memset(&res, 0, sizeof(res));
    pthread_mutex_lock(&reg->index_lock);
    if (!intent_admit_or_answer(reg, in, index_settled(reg, &in->ip), commit_now_run))
        return;

    bk = &reg->buckets[reg_type_of(&in->ip)][in->bucket];
    in->next = NULL;
    bucket_claim(bk);
    rc = commit_now(reg, bk, in, change_id, res.detail, sizeof(res.detail));
    if (rc == RC_BUCKETS_FULL) {
        pthread_mutex_unlock(&bk->lock);
        bucket_unclaim(bk);
        if (++in->rounds < CONFLICT_ROUNDS) {
            in->created = 0;
            commit_now_run(reg, in); /* another bucket with room, or buckets-full */
            return;
        }
        intent_fail(in, RC_CONFLICT, res.detail);
        return;
    }
    weight = bk->rec[REG_KIND_SERVED].weight;
    if (rc == RC_OK)
        intent_log_change(reg, in->op, &in->ip, bk);
    pthread_mutex_unlock(&bk->lock);
    bucket_unclaim(bk);
    if (rc == RC_OK && in->op == REG_OP_REMOVE && in->kind_after < 0) {
        intent_result(in, weight, change_id, &res);
        strays_finish_removal(reg, in, &res); /* no copy left elsewhere, then answer */
        return;
    }
    if (rc == RC_OK) {
        intent_result(in, weight, change_id, &res);
    } else {
        res.rc = rc;
        res.placement.ip = in->ip;
    }
    intent_finish(in, &res);
}
