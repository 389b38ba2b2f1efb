/*
 * resync.c: re-read the whole store every --resync-interval and adopt what other writers
 * (replicas, the console) changed, bucket by bucket, without holding any lock across the read.
 */
#include "registry/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

/*
 * A set was refused because its group has another TTL than the one it was written with
 * (another replica created the group's first sets with its --ttl, or moved the group): list
 * the store and learn the groups' TTLs, so the next try writes with them. The sets themselves
 * are adopted by the caller's re-read and by resync. Returns the groups whose TTL changed.
 */
int resync_ttls(struct reg_registry *reg)
{
    struct reg_record *recs = NULL;
    size_t nrecs = 0;
    char detail[REG_DETAIL_MAX];
    unsigned epoch = registry_ttl_epoch(reg);
    enum rc_code rc = reg->prov->ops->load(reg->prov, &recs, &nrecs, detail, sizeof(detail));
    int changed = 0;

    if (rc)
        log_warn("msg=\"cannot read the store to learn the groups' TTLs; will try again\" "
                 "rc=%s detail=\"%s\"",
                 rc_slug(rc), detail);
    else
        changed = registry_learn_ttls(reg, recs, nrecs, epoch);
    for (size_t i = 0; i < nrecs; i++)
        reg_record_release(&recs[i]);
    free(recs);
    return changed;
}

/*
 * After a TTL refusal and resync_ttls(): does what the registry now knows explain it, i.e.
 * was one of the sets written (sets[k] for the kinds in mask, a bucket's sets as sent) given
 * another TTL than its group has? 0: r53reg's own sets agree, so the group holds a set r53reg
 * does not manage (another set identifier) with another TTL; trying again cannot help.
 */
int resync_ttl_explained(struct reg_registry *reg, const struct reg_record *written, unsigned mask)
{
    for (int k = 0; k < REG_KINDS; k++)
        if ((mask & (1u << k)) && written[k].nvalues &&
            written[k].ttl != atomic_load(&reg->group_ttl[written[k].type][k]))
            return 1;
    return 0;
}

void resync_say_foreign_ttl(char *detail, size_t n)
{
    char why[REG_DETAIL_MAX];
    snprintf(why, sizeof(why), "%s", detail);
    rc_detail(detail, n,
              "the weighted group holds a record set r53reg does not manage (another set "
              "identifier) with another TTL than r53reg's sets; Route 53 refuses a group of "
              "mixed TTLs, so change that set's TTL to the group's (or remove it): %s",
              why);
}

/* Does a refusal's detail say a set's TTL differs from its weighted group's (Route 53's
 * wording, which the embedded store uses too)? */
int resync_is_ttl_refusal(const char *detail)
{
    return detail && strstr(detail, "weighted sets must contain the same TTL") != NULL;
}

/*
 * Re-read the whole store and adopt what other writers changed (another replica's
 * registrations and health moves, a person in the console), so this registry's answers
 * converge without waiting for its own next write to conflict. A bucket committed or adopted
 * while the store was being read, or with a batch in flight (the store may hold it already,
 * the bucket's sets not yet), is left alone: the read may predate that commit, and the next
 * resync (or conflict) brings it in line. owned: the caller holds every bucket (a TTL
 * change), so buckets being written are its own and are adopted too. Returns the listing's
 * outcome (why: its detail when it failed).
 */
enum rc_code resync_run(struct reg_registry *reg, int owned, char *why, size_t why_n)
{
    unsigned long long *seen[2];
    struct reg_record *recs = NULL;
    struct reg_record(*fresh[2])[REG_KINDS] = {NULL, NULL};
    size_t nrecs = 0, adopted = 0;
    char detail[REG_DETAIL_MAX];
    unsigned epoch = registry_ttl_epoch(reg);
    unsigned long long tree_gen = atomic_load(&reg->tree_gen);
    enum rc_code rc, result;

    for (int t = 0; t < 2; t++) {
        seen[t] = xcalloc(reg->nslots, sizeof(*seen[t]));
        fresh[t] = xcalloc(reg->nslots, sizeof(*fresh[t]));
    }
    for (int t = 0; t < 2; t++)
        for (unsigned b = 0; b < reg->nslots; b++) {
            pthread_mutex_lock(&reg->buckets[t][b].lock);
            seen[t][b] = reg->buckets[t][b].changes;
            pthread_mutex_unlock(&reg->buckets[t][b].lock);
        }
    rc = result = reg->prov->ops->load(reg->prov, &recs, &nrecs, detail, sizeof(detail));
    if (rc) {
        log_warn("msg=\"resync: cannot read the store; will try again\" rc=%s detail=\"%s\"",
                 rc_slug(rc), detail);
        if (why)
            snprintf(why, why_n, "%s", detail);
        goto out;
    }
    registry_learn_ttls(reg, recs, nrecs, epoch);
    tree_adopt_aliases(reg, recs, nrecs, tree_gen);
    for (size_t i = 0; i < nrecs; i++) {
        struct reg_record *r = &recs[i];
        if (r->alias || r->bucket >= reg->nslots || (unsigned)r->kind >= REG_KINDS || !r->nvalues)
            continue;
        reg_record_release(&fresh[r->type][r->bucket][r->kind]);
        fresh[r->type][r->bucket][r->kind] = *r;
        r->values = NULL;
        r->nvalues = 0;
    }
    for (int t = 0; t < 2; t++)
        for (unsigned b = 0; b < reg->nslots; b++) {
            struct bucket *bk = &reg->buckets[t][b];
            unsigned mask = 0;
            pthread_mutex_lock(&bk->lock);
            if (bk->changes == seen[t][b] && (owned || !bk->writing))
                mask = sets_changed_mask(bk->rec, fresh[t][b]);
            if (mask && sets_hiding(bk->rec, fresh[t][b])) {
                /* The listing reads the names one after another: an address another writer
                 * moved meanwhile may show in none. Read this bucket again (without its
                 * lock: no request waits on Route 53 for it) and take that, unless the
                 * bucket changed meanwhile. */
                unsigned long long c0 = bk->changes;
                struct reg_record again[REG_KINDS];
                pthread_mutex_unlock(&bk->lock);
                rc = bucket_read(reg, (enum reg_type)t, b, again, detail, sizeof(detail));
                pthread_mutex_lock(&bk->lock);
                mask = 0;
                if (rc == RC_OK && bk->changes == c0 && (owned || !bk->writing)) {
                    sets_release(fresh[t][b]);
                    memcpy(fresh[t][b], again, sizeof(again));
                    memset(again, 0, sizeof(again));
                    mask = sets_changed_mask(bk->rec, fresh[t][b]);
                } else if (rc != RC_OK) {
                    log_warn("msg=\"resync: cannot re-read a bucket; will try again\" "
                             "bucket=%u rc=%s detail=\"%s\"",
                             b, rc_slug(rc), detail);
                }
                sets_release(again);
            }
            if (mask) {
                bucket_adopt(reg, bk, fresh[t][b], mask, epoch);
                adopted++;
            }
            pthread_mutex_unlock(&bk->lock);
            sets_release(fresh[t][b]);
        }
    if (adopted)
        log_info("msg=\"resync: adopted other writers' changes\" buckets=%zu", adopted);
    atomic_store(&reg->resynced_ms, (long long)clock_wall_ms());
    atomic_fetch_add(&reg->resyncs, 1);
out:
    for (size_t i = 0; i < nrecs; i++)
        reg_record_release(&recs[i]);
    free(recs);
    for (int t = 0; t < 2; t++) {
        free(seen[t]);
        free(fresh[t]);
    }
    return result;
}
