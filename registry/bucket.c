/*
 * bucket.c: the only writer of a bucket's committed sets. Once loaded (bucket_load), two entry
 * points change them:
 * bucket_commit() (a store call's outcome: install what was written, settle the intents) and
 * bucket_adopt() (what the store holds through another writer), each updating the index in the
 * same bucket-lock hold. bucket_reread() is the compare-and-swap conflict path: it reads the
 * store with no lock held and adopts only if the bucket did not change meanwhile.
 *
 * One writer per bucket: bucket_claim() waits until no other writer owns the bucket's store
 * state (the `writing` flag), so the lock itself is only ever held for memory work.
 */
#include "registry/internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"

/* A uniform number in [0, n) for backoff jitter; thread-safe (per-thread xorshift state). */
static unsigned rand_below(unsigned n)
{
    static _Thread_local unsigned long long state;
    if (!state)
        state = (unsigned long long)(uintptr_t)&state ^ (unsigned long long)time(NULL) ^
                0x9e3779b97f4a7c15ULL;
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return n ? (unsigned)(state % n) : 0;
}

/* Full-jitter pause before compare-and-swap round `rounds` + 1 (no lock may be held). */
void bucket_backoff(unsigned rounds)
{
    unsigned cap_us = 1000u << (rounds < 6 ? rounds : 6);
    struct timespec ts = {0, (long)(rand_below(cap_us) + 1) * 1000};
    nanosleep(&ts, NULL);
}

/*
 * The store holds something else than bk's sets (another replica, a person in the console,
 * the old script): fresh[k], for each kind k in mask, is what it holds; take it as the truth
 * and fix the index. IPs that vanished are dropped (unless an operation on them is in flight:
 * its owner settles it); IPs that appeared are adopted; IPs another writer moved between the
 * sets follow. Takes fresh's values. Caller holds bk->lock.
 */
void bucket_adopt(struct reg_registry *reg, struct bucket *bk, struct reg_record *fresh,
                  unsigned mask, unsigned epoch)
{
    enum reg_type t = bk->rec[0].type;
    unsigned b = bk->rec[0].bucket;
    struct reg_record now[REG_KINDS];
    size_t dropped = 0, added = 0, moved = 0, before = sets_count(bk->rec);
    char sid[REG_SET_ID_MAX + 1];

    for (int k = 0; k < REG_KINDS; k++)
        now[k] = mask & (1u << k) ? fresh[k] : bk->rec[k];
    {
        /* A set read with another TTL than its group's: the group was moved to it. */
        struct reg_record read[REG_KINDS];
        size_t nread = 0;
        for (int k = 0; k < REG_KINDS; k++)
            if (mask & (1u << k) && fresh[k].nvalues) {
                read[nread] = fresh[k];
                read[nread].type = t;
                read[nread++].kind = (enum reg_kind)k;
            }
        registry_learn_ttls(reg, read, nread, epoch);
    }
    pthread_mutex_lock(&reg->index_lock);
    for (int k = 0; k < REG_KINDS; k++)
        for (size_t i = 0; i < bk->rec[k].nvalues; i++) {
            struct entry *e;
            if (sets_find(now, &bk->rec[k].values[i]) >= 0)
                continue;
            e = index_find(reg, &bk->rec[k].values[i]);
            if (e && e->state == ENTRY_PRESENT && e->bucket == b) {
                index_drop(reg, e);
                dropped++;
            } else if (!e || e->bucket != b) {
                reg->reserved[t][b]--; /* a second copy (registry/strays.c) left */
            }
        }
    for (int k = 0; k < REG_KINDS; k++)
        for (size_t i = 0; i < now[k].nvalues; i++) {
            struct entry *e;
            if (sets_find(now, &now[k].values[i]) != k)
                continue; /* also in an earlier set: that one counts (apply_op agrees) */
            e = index_find(reg, &now[k].values[i]);
            if (!e) {
                /* No lease: another writer registered it, and its heartbeats go there. A
                 * heartbeat reaching this replica starts one (reg_heartbeat). */
                unsigned where;
                e = index_insert(reg, &now[k].values[i], b, ENTRY_PRESENT);
                index_entry_moved(e, k);
                e->foreign_down = k == REG_KIND_DOWN;
                e->adopted = 1;
                if (placement_take_ambiguous(reg, &e->ip, &where)) {
                    e->heard_ns = clock_mono_ns();
                    lease_start(reg, e); /* our own registration after all */
                }
                reg->reserved[t][b]++;
                reconcile_track(reg, e);
                added++;
            } else if (e->state == ENTRY_PRESENT && e->bucket == b && e->where != (unsigned)k) {
                index_entry_moved(e, k);
                e->foreign_down = k == REG_KIND_DOWN;
                moved++;
            } else if (e->bucket != b) {
                /* A second copy of an IP indexed in another bucket: it takes room here, and
                 * the maintainer removes it (registry/strays.c). */
                if (sets_find(bk->rec, &now[k].values[i]) < 0)
                    reg->reserved[t][b]++;
                atomic_store(&reg->strays_dirty, 1);
            }
        }
    pthread_cond_broadcast(&reg->index_cond);
    pthread_mutex_unlock(&reg->index_lock);

    for (int k = 0; k < REG_KINDS; k++) {
        if (!(mask & (1u << k)))
            continue;
        reg_record_release(&bk->rec[k]);
        bk->rec[k] = fresh[k];
        bk->rec[k].type = t;
        bk->rec[k].kind = (enum reg_kind)k;
        bk->rec[k].bucket = b;
        fresh[k].values = NULL;
        fresh[k].nvalues = 0;
    }
    bk->changes++;
    atomic_store(&reg->foreign_seen_ns, clock_mono_ns());
    reg_set_id(&reg->opt, b, sid, sizeof(sid));
    log_warn("msg=\"record changed underneath; adopted what the store holds\" type=%s "
             "set_id=%s count_before=%zu count_after=%zu adopted=%zu dropped=%zu moved=%zu",
             reg_type_name(t), sid, before, sets_count(bk->rec), added, dropped, moved);
    registry_generation_bump(reg);
}

/* Read the three sets of type t, bucket b into fresh[], in kind order (no lock needed). */
enum rc_code bucket_read(struct reg_registry *reg, enum reg_type t, unsigned b,
                         struct reg_record *fresh, char *detail, size_t n)
{
    enum rc_code rc = RC_OK;
    memset(fresh, 0, REG_KINDS * sizeof(*fresh));
    for (int k = 0; k < REG_KINDS && rc == RC_OK; k++)
        rc = reg->prov->ops->reload(reg->prov, t, (enum reg_kind)k, b, &fresh[k], detail, n);
    return rc;
}

/*
 * The compare-and-swap conflict path: read the sets in mask of bk afresh and adopt them. When
 * another writer moved an address between a set read and one not read (it vanished from a set
 * read, or a set read gained one another set holds), read the others too: a moved backend is
 * never taken for a removed one, and an address never ends up in two sets.
 *
 * The reads are made with no lock held, against a copy of the sets, so readers of the bucket
 * never wait on the store; what was read is adopted only if the bucket did not change
 * meanwhile (otherwise the caller's next compare-and-swap meets the newer sets anyway).
 * Caller holds no lock and owns the bucket's store state (writing).
 */
enum rc_code bucket_reread(struct reg_registry *reg, struct bucket *bk, unsigned mask, char *detail,
                           size_t n)
{
    struct reg_record cur[REG_KINDS], fresh[REG_KINDS];
    unsigned long long seen;
    enum rc_code rc = RC_OK;
    unsigned want = mask, have = 0, epoch;
    enum reg_type t;
    unsigned b;

    memset(fresh, 0, sizeof(fresh));
    epoch = registry_ttl_epoch(reg);
    pthread_mutex_lock(&bk->lock);
    sets_copy(cur, bk->rec);
    seen = bk->changes;
    pthread_mutex_unlock(&bk->lock);
    t = cur[0].type;
    b = cur[0].bucket;

    while (rc == RC_OK && want != have) {
        for (int k = 0; k < REG_KINDS && rc == RC_OK; k++)
            if ((want & ~have) & (1u << k)) {
                rc =
                    reg->prov->ops->reload(reg->prov, t, (enum reg_kind)k, b, &fresh[k], detail, n);
                have |= 1u << k;
            }
        if (rc == RC_OK && sets_moved_across(cur, fresh, have))
            want = ALL_KINDS;
    }
    /*
     * Before dropping an address that is in none of the sets read, rule out a move hidden
     * between two reads (sets_hiding): read all three once more, in order, and take that.
     * Reads not made in kind order (a partial read widened by sets_moved_across) always are.
     */
    if (rc == RC_OK && have == ALL_KINDS &&
        (mask == ALL_KINDS ? sets_hiding(cur, fresh) != 0 : sets_vanished(cur, fresh))) {
        sets_release(fresh);
        rc = bucket_read(reg, t, b, fresh, detail, n);
    }
    if (rc == RC_OK) {
        pthread_mutex_lock(&bk->lock);
        if (bk->changes == seen)
            bucket_adopt(reg, bk, fresh, have, epoch);
        pthread_mutex_unlock(&bk->lock);
    }
    sets_release(fresh);
    sets_release(cur);
    return rc;
}

/* The committed sets of bk become next[] (taking its values). Caller holds bk->lock. */
static void install(struct bucket *bk, struct reg_record *next)
{
    for (int k = 0; k < REG_KINDS; k++) {
        enum reg_type t = bk->rec[k].type;
        unsigned b = bk->rec[k].bucket;
        reg_record_release(&bk->rec[k]);
        bk->rec[k] = next[k];
        bk->rec[k].type = t;
        bk->rec[k].kind = (enum reg_kind)k;
        bk->rec[k].bucket = b;
        if (!bk->rec[k].nvalues)
            bk->rec[k].weight = 0;
        next[k].values = NULL;
        next[k].nvalues = 0;
    }
    bk->changes++;
}

/*
 * The outcome of a store call for intents (a list) of bk. On RC_OK the store holds next (NULL:
 * nothing needed writing), which becomes bk's committed sets (taking next's values); on a
 * failure nothing of the call was applied, and registrations that may have landed all the same
 * are remembered (placement_note_ambiguous). Then each intent's index entry follows bk's sets,
 * in this same lock hold. Returns the operations that waited on those IPs, in order, for the
 * caller to resubmit once no lock is held. Caller holds bk->lock.
 */
struct intent *bucket_commit(struct reg_registry *reg, struct bucket *bk, struct reg_record *next,
                             struct intent *intents, enum rc_code rc)
{
    struct intent *waiters;

    if (rc == RC_OK && next)
        install(bk, next);
    pthread_mutex_lock(&reg->index_lock);
    waiters = intent_settle(reg, bk, intents, rc == RC_OK);
    if (rc != RC_OK)
        placement_note_ambiguous(reg, intents, rc);
    pthread_cond_broadcast(&reg->index_cond);
    pthread_mutex_unlock(&reg->index_lock);
    /* After the index followed the sets: a reader of the new generation finds both. */
    if (rc == RC_OK && next)
        registry_generation_bump(reg);
    return waiters;
}

/* Become bk's only writer: wait while another owns its store state. Caller holds no lock. */
void bucket_claim(struct bucket *bk)
{
    pthread_mutex_lock(&bk->lock);
    while (bk->writing)
        pthread_cond_wait(&bk->idle, &bk->lock);
    bk->writing = 1;
    pthread_mutex_unlock(&bk->lock);
}

int bucket_try_claim(struct bucket *bk)
{
    int ok;
    pthread_mutex_lock(&bk->lock);
    ok = !bk->writing;
    if (ok)
        bk->writing = 1;
    pthread_mutex_unlock(&bk->lock);
    return ok;
}

/* Give bk's store state up (after bucket_claim, or the committer's drain). Caller holds
 * bk->lock. */
void bucket_release_locked(struct bucket *bk)
{
    bk->writing = 0;
    pthread_cond_broadcast(&bk->idle);
}

/* Give bk's store state up (after bucket_claim). */
void bucket_unclaim(struct bucket *bk)
{
    pthread_mutex_lock(&bk->lock);
    bucket_release_locked(bk);
    pthread_mutex_unlock(&bk->lock);
}

/*
 * At load, before any other thread runs: rec (a record set the store holds) becomes its
 * bucket's committed set, taking rec's values, and its addresses enter the index with the
 * default lease. An address already indexed (in two record sets, written so by another tool)
 * is kept where it was first seen and counted in *dups; nk[kind] counts the others.
 */
void bucket_load(struct reg_registry *reg, struct reg_record *rec, size_t *dups, size_t *nk)
{
    struct bucket *bk;
    struct reg_record *slot;

    if (rec->alias || rec->bucket >= reg->nslots || rec->nvalues == 0 || (unsigned)rec->kind >= REG_KINDS)
        return; /* providers filter these; belt and braces */
    bk = &reg->buckets[rec->type][rec->bucket];
    slot = &bk->rec[rec->kind];
    pthread_mutex_lock(&bk->lock);
    pthread_mutex_lock(&reg->index_lock);
    reg->reserved[rec->type][rec->bucket] -= (unsigned)slot->nvalues;
    reg_record_release(slot);
    *slot = *rec;
    rec->values = NULL;
    rec->nvalues = 0;
    reg->reserved[slot->type][slot->bucket] += (unsigned)slot->nvalues;
    for (size_t v = 0; v < slot->nvalues; v++) {
        struct entry *e;
        if (index_find(reg, &slot->values[v])) {
            char ip[IP_TEXT_MAX];
            log_warn("msg=\"IP found in two record sets; it is kept in the first\" ip=%s "
                     "bucket=%u set=%s",
                     ip_format(&slot->values[v], ip), slot->bucket,
                     slot->kind == REG_KIND_SERVED ? "served"
                     : slot->kind == REG_KIND_DOWN ? "down"
                                                   : "draining");
            (*dups)++;
            atomic_store(&reg->strays_dirty, 1);
            continue;
        }
        e = index_insert(reg, &slot->values[v], slot->bucket, ENTRY_PRESENT);
        index_entry_moved(e, (int)slot->kind);
        lease_start(reg, e);
        reconcile_track(reg, e);
        nk[slot->kind]++;
    }
    pthread_mutex_unlock(&reg->index_lock);
    pthread_mutex_unlock(&bk->lock);
}
