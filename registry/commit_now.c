/*
 * commit_now.c: immediate mode. One store call per mutation: the bucket is claimed (one writer
 * at a time), its sets are copied under the lock, the compare-and-swap goes out with no lock
 * held, and the outcome is installed by bucket_commit(). The calls are made by a small pool of
 * threads, each with its queue (an IP always goes to the same one), never on the submitting
 * thread: an HTTP worker that waited for Route 53 (seconds, with retries) would leave every
 * other connection it serves unread until the server's idle timeout closed them without an
 * answer.
 */
#include "registry/internal.h"

#include <string.h>

#include "util/log.h"

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

/* Run in on this thread (an immediate-mode thread): wait until its IP is settled, admit it,
 * commit it, answer. Its continuation (the IP settled, a confirm round answered) goes back to
 * the pool, never onto the thread that calls it (the maintainer answers confirm rounds). */
static void commit_now_run(struct reg_registry *reg, struct intent *in)
{
    struct reg_result res;
    char change_id[REG_CHANGE_ID_MAX] = "";
    struct bucket *bk;
    enum rc_code rc;
    unsigned weight;

    memset(&res, 0, sizeof(res));
    pthread_mutex_lock(&reg->index_lock);
    if (!intent_admit_or_answer(reg, in, index_settled(reg, &in->ip), commit_now_submit))
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

static void *now_main(void *arg)
{
    struct now_queue *q = arg;
    struct reg_registry *reg = q->reg;

    for (;;) {
        struct intent *in;
        int stopping;
        pthread_mutex_lock(&reg->now_lock);
        while (!q->head && !reg->now_stopping)
            pthread_cond_wait(&q->cond, &reg->now_lock);
        if (!q->head) {
            pthread_mutex_unlock(&reg->now_lock);
            return NULL;
        }
        in = q->head;
        q->head = in->next;
        if (!q->head)
            q->tail = &q->head;
        stopping = reg->now_stopping;
        pthread_mutex_unlock(&reg->now_lock);
        in->next = NULL;
        if (stopping)
            intent_fail(in, RC_SHUTTING_DOWN,
                        "the service is shutting down; this change was not sent");
        else
            commit_now_run(reg, in);
    }
}

/*
 * Queue in for the pool (any thread). Every intent of one IP goes to the same thread, so they
 * are applied in submission order and never hold two threads waiting for each other. Without
 * a pool (not started, or stopped), answer at once: shutting down.
 */
void commit_now_submit(struct reg_registry *reg, struct intent *in)
{
    struct now_queue *q;
    pthread_mutex_lock(&reg->now_lock);
    if (!reg->now_started || reg->now_stopping) {
        pthread_mutex_unlock(&reg->now_lock);
        intent_fail(in, RC_SHUTTING_DOWN, "the service is shutting down; retry");
        return;
    }
    q = &reg->now_q[ip_hash(&in->ip) % reg->now_started];
    in->next = NULL;
    *q->tail = in;
    q->tail = &in->next;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&reg->now_lock);
}

/* Start the pool. RC_INTERNAL when not one thread can be created. */
enum rc_code commit_now_start(struct reg_registry *reg)
{
    pthread_mutex_lock(&reg->now_lock);
    while (reg->now_started < COMMIT_NOW_THREADS) {
        struct now_queue *q = &reg->now_q[reg->now_started];
        q->reg = reg;
        q->head = NULL;
        q->tail = &q->head;
        pthread_cond_init(&q->cond, NULL);
        if (pthread_create(&q->thread, NULL, now_main, q) != 0) {
            pthread_cond_destroy(&q->cond);
            break;
        }
        reg->now_started++;
    }
    pthread_mutex_unlock(&reg->now_lock);
    if (reg->now_started < COMMIT_NOW_THREADS)
        log_warn("msg=\"immediate-mode threads short\" started=%u wanted=%d", reg->now_started,
                 COMMIT_NOW_THREADS);
    return reg->now_started ? RC_OK : RC_INTERNAL;
}

/* Stop the pool after the calls in flight; what is still queued is answered RC_SHUTTING_DOWN,
 * not sent. */
void commit_now_stop(struct reg_registry *reg)
{
    unsigned n;
    pthread_mutex_lock(&reg->now_lock);
    reg->now_stopping = 1;
    n = reg->now_started;
    for (unsigned i = 0; i < n; i++)
        pthread_cond_broadcast(&reg->now_q[i].cond);
    pthread_mutex_unlock(&reg->now_lock);
    for (unsigned i = 0; i < n; i++) {
        pthread_join(reg->now_q[i].thread, NULL);
        pthread_cond_destroy(&reg->now_q[i].cond);
    }
    pthread_mutex_lock(&reg->now_lock);
    reg->now_started = 0;
    pthread_mutex_unlock(&reg->now_lock);
}
