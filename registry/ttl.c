/*
 * ttl.c: moving the name's weighted groups to another TTL (reg_set_ttl).
 *
 * Every set of a weighted group (name + type) carries the group's TTL, and Route 53 refuses a
 * set created with another: a group moves only whole, in one atomic call that DELETEs each of
 * its sets and CREATEs it again with the new TTL. The operation claims every bucket first (as
 * an immediate-mode writer does one), so no mutation of this replica runs in between; other
 * writers are met as compare-and-swap conflicts, adopted, and the call built again.
 */
#include "registry/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

/* One group's sets as they are (old) and as they become (next), and their cost. */
struct group {
    struct reg_ttl_group *acct;
    struct reg_record *old, *next; /* parallel arrays of the group's non-empty sets */
    size_t nsets, elements, chars;
    int batch; /* the call it goes in; -1: nothing to write */
};

static void group_release(struct group *g)
{
    for (size_t i = 0; i < g->nsets; i++) {
        reg_record_release(&g->old[i]);
        reg_record_release(&g->next[i]);
    }
    free(g->old);
    free(g->next);
    g->old = g->next = NULL;
    g->nsets = 0;
}

/* Copy the committed sets of group (t, k) and build them at ttl. Every bucket is claimed. */
static void group_build(struct reg_registry *reg, enum reg_type t, enum reg_kind k, unsigned ttl,
                        struct group *g)
{
    g->acct->type = t;
    g->acct->kind = k;
    g->acct->from = atomic_load(&reg->group_ttl[t][k]);
    g->acct->to = ttl;
    g->acct->change_id[0] = '\0';
    g->old = xcalloc(reg->nslots, sizeof(*g->old));
    g->next = xcalloc(reg->nslots, sizeof(*g->next));
    for (unsigned b = 0; b < reg->nslots; b++) {
        struct bucket *bk = &reg->buckets[t][b];
        pthread_mutex_lock(&bk->lock);
        if (bk->rec[k].nvalues) {
            reg_record_copy(&g->old[g->nsets], &bk->rec[k]);
            reg_record_copy(&g->next[g->nsets], &bk->rec[k]);
            g->next[g->nsets].ttl = ttl;
            g->nsets++;
        }
        pthread_mutex_unlock(&bk->lock);
    }
    g->acct->sets = g->nsets;
    g->acct->values = 0;
    g->elements = g->chars = 0;
    for (size_t i = 0; i < g->nsets; i++) {
        /* sets_cost takes a bucket's three sets: this one in the first place, none beside */
        struct reg_record before[REG_KINDS] = {{0}}, after[REG_KINDS] = {{0}};
        size_t e, c;
        g->acct->values += g->old[i].nvalues;
        if (g->old[i].ttl == ttl)
            continue; /* already so: left alone */
        before[0] = g->old[i];
        after[0] = g->next[i];
        sets_cost(before, after, &e, &c);
        g->elements += e;
        g->chars += c;
    }
    g->batch = g->elements ? 0 : -1;
}

/* Send the groups whose batch is `batch` as one call; install them on success. */
static enum rc_code send_groups(struct reg_registry *reg, struct group *groups, size_t ng,
                                int batch, char *detail, size_t n)
{
    struct reg_change *chg = NULL;
    size_t nchg = 0, cap = 0;
    char change_id[REG_CHANGE_ID_MAX] = "";
    enum rc_code rc;

    for (size_t i = 0; i < ng; i++)
        for (size_t s = 0; groups[i].batch == batch && s < groups[i].nsets; s++)
            if (groups[i].old[s].ttl != groups[i].next[s].ttl) {
                chg = xgrow(chg, &cap, nchg + 1, sizeof(*chg));
                chg[nchg].old = &groups[i].old[s];
                chg[nchg++].new = &groups[i].next[s];
            }
    rc = nchg ? reg->prov->ops->apply(reg->prov, chg, nchg, change_id, NULL, detail, n) : RC_OK;
    if (nchg)
        rmetrics_batch(nchg, 0, rc);
    for (size_t i = 0; rc == RC_OK && i < ng; i++) {
        struct group *g = &groups[i];
        if (g->batch != batch)
            continue;
        snprintf(g->acct->change_id, sizeof(g->acct->change_id), "%s", change_id);
        for (size_t s = 0; s < g->nsets; s++) {
            struct bucket *bk = &reg->buckets[g->acct->type][g->next[s].bucket];
            struct reg_record sets[REG_KINDS];
            pthread_mutex_lock(&bk->lock);
            sets_copy(sets, bk->rec);
            reg_record_release(&sets[g->acct->kind]);
            reg_record_copy(&sets[g->acct->kind], &g->next[s]);
            bucket_commit(reg, bk, sets, NULL, RC_OK);
            pthread_mutex_unlock(&bk->lock);
            sets_release(sets);
        }
        /* A listing read before this call must not teach the old TTL back. */
        pthread_mutex_lock(&reg->ttl_lock);
        reg->ttl_epoch++;
        atomic_store(&reg->group_ttl[g->acct->type][g->acct->kind], g->acct->to);
        pthread_mutex_unlock(&reg->ttl_lock);
    }
    free(chg);
    return rc;
}

/* Re-read each bucket of the groups in batch once (a conflict: another writer changed one). */
static enum rc_code reread_groups(struct reg_registry *reg, struct group *groups, size_t ng,
                                  int batch, char *detail, size_t n)
{
    unsigned char *seen[2] = {xcalloc(reg->nslots, 1), xcalloc(reg->nslots, 1)};
    enum rc_code rc = RC_OK;

    for (size_t i = 0; rc == RC_OK && i < ng; i++)
        for (size_t s = 0; rc == RC_OK && groups[i].batch == batch && s < groups[i].nsets; s++) {
            enum reg_type t = groups[i].acct->type;
            unsigned b = groups[i].old[s].bucket;
            if (seen[t][b])
                continue;
            seen[t][b] = 1;
            rc = bucket_reread(reg, &reg->buckets[t][b], ALL_KINDS, detail, n);
        }
    free(seen[0]);
    free(seen[1]);
    return rc;
}

enum rc_code reg_set_ttl(struct reg_registry *reg, unsigned ttl, struct reg_ttl_group *accts,
                         size_t *ngroups, char *detail, size_t n)
{
    struct group groups[2 * REG_KINDS];
    enum rc_code rc = RC_OK;
    size_t ng = 2 * REG_KINDS;
    unsigned round = 0;
    int relisted = 0;

    memset(groups, 0, sizeof(groups));
    *ngroups = 0;
    atomic_store(&reg->ttl_busy, 1);
    for (int t = 0; t < 2; t++)
        for (unsigned b = 0; b < reg->nslots; b++)
            bucket_claim(&reg->buckets[t][b]);
    for (;;) {
        int batches = 0;
        size_t in_e = 0, in_c = 0, in_n = 0;

        for (size_t i = 0; i < ng; i++) {
            groups[i].acct = &accts[i];
            group_build(reg, (enum reg_type)(i / REG_KINDS), (enum reg_kind)(i % REG_KINDS), ttl,
                        &groups[i]);
        }
        /* Each group whole in one call, groups packed first-fit in order. */
        for (size_t i = 0; i < ng; i++) {
            struct group *g = &groups[i];
            if (g->batch < 0)
                continue;
            if (g->elements > BATCH_MAX_ELEMENTS || g->chars > BATCH_MAX_CHARS) {
                rc_detail(detail, n,
                          "the %s%s %s group holds %zu values in %zu sets: rewriting it with "
                          "another TTL takes one atomic call of %zu elements and %zu characters "
                          "(Route 53 allows 1,000 and 32,000, and refuses a group whose sets "
                          "differ in TTL); deregister some backends first, or move to a new "
                          "record name with the new TTL",
                          reg_kind_prefix(g->acct->kind), reg->opt.record_name,
                          reg_type_name(g->acct->type), g->acct->values, g->nsets, g->elements,
                          g->chars);
                rc = RC_GROUP_TOO_LARGE;
                goto out;
            }
            if (!batch_policy_fits(in_n, in_e, in_c, g->elements, g->chars)) {
                batches++;
                in_e = in_c = in_n = 0;
            }
            g->batch = batches;
            in_e += g->elements;
            in_c += g->chars;
            in_n++;
        }
        for (int bt = 0; rc == RC_OK && bt <= batches; bt++) {
            rc = send_groups(reg, groups, ng, bt, detail, n);
            if (rc == RC_CONFLICT && resync_is_ttl_refusal(detail)) {
                /* Every set this registry knows moved in that call, yet the group holds one
                 * with the old TTL: first read the whole zone and adopt what it holds (a set
                 * another replica created meanwhile is ours too) and try once more; a second
                 * refusal means a set r53reg does not manage keeps the old TTL. */
                if (!relisted) {
                    relisted = 1;
                    resync_run(reg, 1, NULL, 0);
                    break;
                }
                resync_say_foreign_ttl(detail, n);
                round = CONFLICT_ROUNDS;
                break;
            }
            if (rc == RC_CONFLICT && ++round < CONFLICT_ROUNDS) {
                enum rc_code rrc = reread_groups(reg, groups, ng, bt, detail, n);
                if (rrc)
                    rc = rrc;
            }
        }
        if (rc != RC_CONFLICT || round >= CONFLICT_ROUNDS)
            break;
        for (size_t i = 0; i < ng; i++)
            group_release(&groups[i]);
        rc = RC_OK;
    }
out:
    for (size_t i = 0; i < ng; i++)
        group_release(&groups[i]);
    if (rc == RC_OK) {
        /* Groups without sets take the new TTL for their first set. */
        pthread_mutex_lock(&reg->ttl_lock);
        reg->ttl_epoch++;
        for (int t = 0; t < 2; t++)
            for (int k = 0; k < REG_KINDS; k++)
                atomic_store(&reg->group_ttl[t][k], ttl);
        pthread_mutex_unlock(&reg->ttl_lock);
        *ngroups = ng;
        log_info("msg=\"weighted groups moved to a new TTL\" ttl=%u", ttl);
    }
    for (int t = 1; t >= 0; t--)
        for (unsigned b = reg->nslots; b-- > 0;)
            bucket_unclaim(&reg->buckets[t][b]);
    atomic_store(&reg->ttl_busy, 0);
    pthread_mutex_lock(&reg->work_lock);
    pthread_cond_signal(&reg->work_cond); /* the committer holds back while ttl_busy */
    pthread_mutex_unlock(&reg->work_lock);
    return rc;
}

struct ttl_job {
    struct reg_registry *reg;
    unsigned ttl;
    reg_ttl_done_fn done;
    void *arg;
};

/* A job is over (done() was called): reg_destroy may go on once none is left. */
static void ttl_job_finished(struct reg_registry *reg)
{
    pthread_mutex_lock(&reg->now_lock);
    reg->ttl_jobs--;
    pthread_cond_broadcast(&reg->ttl_cond);
    pthread_mutex_unlock(&reg->now_lock);
}

static void *ttl_job_main(void *p)
{
    struct ttl_job *job = p;
    struct reg_registry *reg = job->reg;
    struct reg_ttl_group groups[2 * REG_KINDS];
    char detail[REG_DETAIL_MAX] = "";
    size_t ng = 0;
    enum rc_code rc = reg_set_ttl(reg, job->ttl, groups, &ng, detail, sizeof(detail));

    job->done(job->arg, rc, groups, ng, detail);
    free(job);
    ttl_job_finished(reg);
    return NULL;
}

void reg_set_ttl_async(struct reg_registry *reg, unsigned ttl, reg_ttl_done_fn done, void *arg)
{
    struct ttl_job *job = xcalloc(1, sizeof(*job));
    pthread_attr_t attr;
    pthread_t th;
    int ok;

    job->reg = reg;
    job->ttl = ttl;
    job->done = done;
    job->arg = arg;
    pthread_mutex_lock(&reg->now_lock);
    if (reg->ttl_closed) {
        pthread_mutex_unlock(&reg->now_lock);
        free(job);
        done(arg, RC_SHUTTING_DOWN, NULL, 0, "the service is shutting down; retry");
        return;
    }
    reg->ttl_jobs++;
    pthread_mutex_unlock(&reg->now_lock);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    ok = pthread_create(&th, &attr, ttl_job_main, job) == 0;
    pthread_attr_destroy(&attr);
    if (!ok) {
        free(job);
        done(arg, RC_INTERNAL, NULL, 0, "cannot start a thread for the TTL change");
        ttl_job_finished(reg);
    }
}

/* reg_destroy: refuse new TTL changes and wait for those running. */
void ttl_jobs_drain(struct reg_registry *reg)
{
    pthread_mutex_lock(&reg->now_lock);
    reg->ttl_closed = 1;
    while (reg->ttl_jobs)
        pthread_cond_wait(&reg->ttl_cond, &reg->now_lock);
    pthread_mutex_unlock(&reg->now_lock);
}
