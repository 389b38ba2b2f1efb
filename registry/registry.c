/*
 * registry.c: buckets, assignment and per-bucket locks.
 *
 * State: for each type (A, AAAA) REG_MAX_BUCKETS buckets, each one committed record (nvalues
 * == 0: the record does not exist); an index ip -> {bucket, state}; per-bucket reservation
 * counts (committed values + registrations in flight) that assignment reads.
 *
 * Lock order: a bucket lock, then the index lock. The index lock is never held while waiting
 * for a bucket lock or across a provider call; a bucket lock is held across the provider call
 * that changes that bucket (the embedded store is local; the Route 53 provider's immediate mode
 * does the same, and group commit replaces this path), but never across a sleep: the backoff
 * between compare-and-swap rounds releases it.
 *
 * Invariants (whenever no lock is held):
 * - an index entry is PRESENT iff its IP is in the committed record of its bucket;
 * - reserved[t][b] == committed count of bucket b + ADDING entries for b;
 * - an IP is acknowledged only after the provider applied the change.
 * Entries in flight (ADDING, REMOVING) are waited for on index_cond by anyone else touching
 * the same IP, so duplicate requests serialize and answer consistently.
 */
#include "registry/registry.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "registry/provider.h"
#include "util/log.h"
#include "util/xalloc.h"

enum entry_state { ENTRY_ADDING, ENTRY_PRESENT, ENTRY_REMOVING };

struct entry {
    struct ip_addr ip;
    unsigned bucket;
    enum entry_state state;
    struct entry *next;
};

struct bucket {
    pthread_mutex_t lock;
    /* guarded by lock */
    struct reg_record rec;
};

struct reg_registry {
    struct reg_options opt;
    struct reg_provider *prov;
    atomic_int loaded;
    atomic_ullong generation; /* see reg_generation() */

    struct bucket buckets[2][REG_MAX_BUCKETS];

    pthread_mutex_t index_lock;
    pthread_cond_t index_cond;
    /* guarded by index_lock */
    struct entry **table;
    size_t table_size; /* power of two */
    size_t count;
    unsigned reserved[2][REG_MAX_BUCKETS];
};

/* ---- small helpers --------------------------------------------------------------------- */

const char *reg_type_name(enum reg_type type)
{
    return type == REG_A ? "A" : "AAAA";
}

enum reg_type reg_type_of(const struct ip_addr *ip)
{
    return ip->family == IP_V4 ? REG_A : REG_AAAA;
}

void reg_set_id(const struct reg_options *opt, unsigned bucket, char *out, size_t n)
{
    snprintf(out, n, "%s_%u", opt->record_name, bucket);
}

unsigned reg_weight_for(const struct reg_options *opt, size_t nvalues)
{
    if (nvalues == 0)
        return 0;
    if (opt->weights == REG_WEIGHTS_EQUAL)
        return 1;
    if (opt->max_per_bucket <= REG_MAX_WEIGHT)
        return (unsigned)nvalues;
    /* Buckets may hold more values than Route 53's largest weight: scale, keeping >= 1. */
    unsigned w = (unsigned)((nvalues * REG_MAX_WEIGHT + opt->max_per_bucket / 2) /
                            opt->max_per_bucket);
    return w ? w : 1;
}

void reg_record_copy(struct reg_record *dst, const struct reg_record *src)
{
    *dst = *src;
    dst->values = NULL;
    if (src->nvalues) {
        dst->values = xmalloc(src->nvalues * sizeof(*src->values));
        memcpy(dst->values, src->values, src->nvalues * sizeof(*src->values));
    }
}

void reg_record_release(struct reg_record *rec)
{
    if (!rec)
        return;
    free(rec->values);
    rec->values = NULL;
    rec->nvalues = 0;
}

int reg_record_equal(const struct reg_record *a, const struct reg_record *b)
{
    if (a->type != b->type || a->bucket != b->bucket || a->weight != b->weight ||
        a->ttl != b->ttl || a->nvalues != b->nvalues)
        return 0;
    for (size_t i = 0; i < a->nvalues; i++)
        if (ip_cmp(&a->values[i], &b->values[i]))
            return 0;
    return 1;
}

/* Binary search; returns the index of ip or, negated minus one, where it would go. */
static long find_value(const struct reg_record *rec, const struct ip_addr *ip)
{
    size_t lo = 0, hi = rec->nvalues;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = ip_cmp(&rec->values[mid], ip);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

/* ---- index ------------------------------------------------------------------------------ */

static struct entry **index_slot(struct reg_registry *reg, const struct ip_addr *ip)
{
    struct entry **pp = &reg->table[ip_hash(ip) & (reg->table_size - 1)];
    while (*pp && ip_cmp(&(*pp)->ip, ip))
        pp = &(*pp)->next;
    return pp;
}

static void index_grow(struct reg_registry *reg)
{
    size_t nsize = reg->table_size * 2;
    struct entry **nt = xcalloc(nsize, sizeof(*nt));
    for (size_t i = 0; i < reg->table_size; i++) {
        struct entry *e = reg->table[i];
        while (e) {
            struct entry *next = e->next;
            size_t h = ip_hash(&e->ip) & (nsize - 1);
            e->next = nt[h];
            nt[h] = e;
            e = next;
        }
    }
    free(reg->table);
    reg->table = nt;
    reg->table_size = nsize;
}

static struct entry *index_insert(struct reg_registry *reg, const struct ip_addr *ip,
                                  unsigned bucket, enum entry_state state)
{
    if (reg->count + 1 > reg->table_size)
        index_grow(reg);
    struct entry **pp = index_slot(reg, ip);
    struct entry *e = xcalloc(1, sizeof(*e));
    e->ip = *ip;
    e->bucket = bucket;
    e->state = state;
    *pp = e;
    reg->count++;
    return e;
}

static void index_remove(struct reg_registry *reg, const struct ip_addr *ip)
{
    struct entry **pp = index_slot(reg, ip);
    struct entry *e = *pp;
    if (!e)
        return;
    *pp = e->next;
    free(e);
    reg->count--;
}

/* Choose a bucket for a new ip; caller holds index_lock. Returns -1 when all are full. */
static int choose_bucket(struct reg_registry *reg, const struct ip_addr *ip)
{
    enum reg_type t = reg_type_of(ip);
    unsigned *res = reg->reserved[t];

    if (reg->opt.bucketing == REG_BUCKETING_MODULO) {
        unsigned b = ip_mod(ip, reg->opt.buckets);
        return res[b] < reg->opt.max_per_bucket ? (int)b : -1;
    }
    int best = -1;
    for (unsigned b = 0; b < reg->opt.buckets; b++)
        if (res[b] < reg->opt.max_per_bucket && (best < 0 || res[b] < res[best]))
            best = (int)b;
    return best;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

/* Process-wide, so a generation never repeats across registries (tests run several). */
static atomic_ullong generations = 1;

static void bump_generation(struct reg_registry *reg)
{
    atomic_store(&reg->generation, atomic_fetch_add(&generations, 1) + 1);
}

unsigned long long reg_generation(const struct reg_registry *reg)
{
    return atomic_load(&((struct reg_registry *)reg)->generation);
}

struct reg_registry *reg_create(const struct reg_options *opt, struct reg_provider *prov)
{
    struct reg_registry *reg = xcalloc(1, sizeof(*reg));
    reg->opt = *opt;
    reg->prov = prov;
    atomic_init(&reg->loaded, 0);
    atomic_init(&reg->generation, 0);
    bump_generation(reg);
    for (int t = 0; t < 2; t++)
        for (unsigned b = 0; b < REG_MAX_BUCKETS; b++) {
            pthread_mutex_init(&reg->buckets[t][b].lock, NULL);
            reg->buckets[t][b].rec.type = (enum reg_type)t;
            reg->buckets[t][b].rec.bucket = b;
        }
    pthread_mutex_init(&reg->index_lock, NULL);
    pthread_cond_init(&reg->index_cond, NULL);
    reg->table_size = 1024;
    reg->table = xcalloc(reg->table_size, sizeof(*reg->table));
    return reg;
}

void reg_destroy(struct reg_registry *reg)
{
    if (!reg)
        return;
    for (int t = 0; t < 2; t++)
        for (unsigned b = 0; b < REG_MAX_BUCKETS; b++) {
            reg_record_release(&reg->buckets[t][b].rec);
            pthread_mutex_destroy(&reg->buckets[t][b].lock);
        }
    for (size_t i = 0; i < reg->table_size; i++) {
        struct entry *e = reg->table[i];
        while (e) {
            struct entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(reg->table);
    pthread_mutex_destroy(&reg->index_lock);
    pthread_cond_destroy(&reg->index_cond);
    if (reg->prov)
        reg->prov->ops->destroy(reg->prov);
    free(reg);
}

enum rc_code reg_load(struct reg_registry *reg, char *detail, size_t n)
{
    struct reg_record *recs = NULL;
    size_t nrecs = 0, dups = 0;
    enum rc_code rc = reg->prov->ops->load(reg->prov, &recs, &nrecs, detail, n);
    if (rc)
        goto out;
    for (size_t i = 0; i < nrecs; i++) {
        struct reg_record *r = &recs[i];
        if (r->bucket >= REG_MAX_BUCKETS || r->nvalues == 0)
            continue; /* providers filter these; belt and braces */
        struct bucket *bk = &reg->buckets[r->type][r->bucket];
        pthread_mutex_lock(&bk->lock);
        pthread_mutex_lock(&reg->index_lock);
        reg_record_release(&bk->rec);
        bk->rec = *r;
        r->values = NULL;
        r->nvalues = 0;
        reg->reserved[bk->rec.type][bk->rec.bucket] = (unsigned)bk->rec.nvalues;
        for (size_t v = 0; v < bk->rec.nvalues; v++) {
            if (*index_slot(reg, &bk->rec.values[v])) {
                char ip[IP_TEXT_MAX];
                log_warn("msg=\"IP found in two buckets; deregistering it removes it from the "
                         "first only\" ip=%s bucket=%u",
                         ip_format(&bk->rec.values[v], ip), bk->rec.bucket);
                dups++;
                continue;
            }
            index_insert(reg, &bk->rec.values[v], bk->rec.bucket, ENTRY_PRESENT);
        }
        pthread_mutex_unlock(&reg->index_lock);
        pthread_mutex_unlock(&bk->lock);
    }
    atomic_store(&reg->loaded, 1);
    bump_generation(reg);
    log_info("msg=loaded provider=%s records=%zu backends=%zu duplicates=%zu",
             reg->prov->ops->name, nrecs, reg->count, dups);
out:
    for (size_t i = 0; i < nrecs; i++)
        reg_record_release(&recs[i]);
    free(recs);
    return rc;
}

int reg_ready(struct reg_registry *reg)
{
    return atomic_load(&reg->loaded) && reg->prov->ops->ready(reg->prov);
}

const struct reg_options *reg_options(const struct reg_registry *reg)
{
    return &reg->opt;
}

const char *reg_provider_name(const struct reg_registry *reg)
{
    return reg->prov->ops->name;
}

/* ---- mutations -------------------------------------------------------------------------- */

static void log_change(const struct reg_registry *reg, const char *op, const struct ip_addr *ip,
                       const struct reg_record *rec)
{
    char ipt[IP_TEXT_MAX], sid[REG_SET_ID_MAX + 1];
    reg_set_id(&reg->opt, rec->bucket, sid, sizeof(sid));
    log_info("msg=store_change op=%s ip=%s type=%s set_id=%s count=%zu weight=%u", op,
             ip_format(ip, ipt), reg_type_name(rec->type), sid, rec->nvalues, rec->weight);
}

/* Build old +/- ip into out (a fresh record). */
static void record_with(const struct reg_registry *reg, const struct reg_record *old,
                        const struct ip_addr *ip, int add, struct reg_record *out)
{
    long pos = find_value(old, ip);
    size_t n = old->nvalues + (add ? 1 : 0) - (add ? 0 : 1);

    *out = *old;
    out->values = n ? xmalloc(n * sizeof(*out->values)) : NULL;
    out->nvalues = n;
    /* Copy the values before and after the slot (memcpy of 0 bytes from NULL is UB). */
    size_t at = add ? (size_t)(-pos - 1) : (size_t)pos;
    size_t tail = old->nvalues - at - (add ? 0 : 1);
    if (at)
        memcpy(out->values, old->values, at * sizeof(*old->values));
    if (add)
        out->values[at] = *ip;
    if (tail)
        memcpy(out->values + at + (add ? 1 : 0), old->values + at + (add ? 0 : 1),
               tail * sizeof(*old->values));
    out->weight = reg_weight_for(&reg->opt, n);
    out->ttl = reg->opt.ttl;
}

static void fill_placement(struct reg_placement *out, const struct ip_addr *ip, unsigned bucket,
                           unsigned weight, enum reg_state state)
{
    out->ip = *ip;
    out->type = reg_type_of(ip);
    out->bucket = bucket;
    out->weight = weight;
    out->state = state;
}

/*
 * Wait until ip has no operation in flight; returns its entry (PRESENT) or NULL. Caller holds
 * index_lock.
 */
static struct entry *settled_entry(struct reg_registry *reg, const struct ip_addr *ip)
{
    for (;;) {
        struct entry *e = *index_slot(reg, ip);
        if (!e || e->state == ENTRY_PRESENT)
            return e;
        pthread_cond_wait(&reg->index_cond, &reg->index_lock);
    }
}

#define CONFLICT_ROUNDS 16

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

/*
 * The store holds something else than bk->rec (another replica, a person in the console, the
 * old script): take fresh as the truth and fix the index. IPs that vanished are dropped (unless
 * an operation on them is in flight: its owner settles it); IPs that appeared are adopted.
 * Caller holds bk->lock.
 */
static void adopt(struct reg_registry *reg, struct bucket *bk, struct reg_record *fresh)
{
    enum reg_type t = bk->rec.type;
    unsigned b = bk->rec.bucket;
    size_t dropped = 0, added = 0;
    char sid[REG_SET_ID_MAX + 1];

    pthread_mutex_lock(&reg->index_lock);
    for (size_t i = 0; i < bk->rec.nvalues; i++) {
        struct entry *e;
        if (find_value(fresh, &bk->rec.values[i]) >= 0)
            continue;
        e = *index_slot(reg, &bk->rec.values[i]);
        if (e && e->state == ENTRY_PRESENT && e->bucket == b) {
            index_remove(reg, &bk->rec.values[i]);
            reg->reserved[t][b]--;
            dropped++;
        }
    }
    for (size_t i = 0; i < fresh->nvalues; i++) {
        if (find_value(&bk->rec, &fresh->values[i]) >= 0 || *index_slot(reg, &fresh->values[i]))
            continue;
        index_insert(reg, &fresh->values[i], b, ENTRY_PRESENT);
        reg->reserved[t][b]++;
        added++;
    }
    pthread_cond_broadcast(&reg->index_cond);
    pthread_mutex_unlock(&reg->index_lock);

    reg_set_id(&reg->opt, b, sid, sizeof(sid));
    log_warn("msg=\"record changed underneath; adopted what the store holds\" type=%s "
             "set_id=%s count_before=%zu count_after=%zu adopted=%zu dropped=%zu",
             reg_type_name(t), sid, bk->rec.nvalues, fresh->nvalues, added, dropped);
    reg_record_release(&bk->rec);
    bk->rec = *fresh;
    bk->rec.type = t;
    bk->rec.bucket = b;
    fresh->values = NULL;
    fresh->nvalues = 0;
    bump_generation(reg);
}

/*
 * Make bk hold (add) or not hold (!add) ip in the store, as a compare-and-swap of bk->rec;
 * on a conflict adopt what the store holds and try again on top of it. Caller holds bk->lock.
 * On RC_OK bk->rec is what the store now holds.
 */
static enum rc_code commit(struct reg_registry *reg, struct bucket *bk, const struct ip_addr *ip,
                           int add, char *detail, size_t n)
{
    enum rc_code rc = RC_OK;

    for (int round = 0;; round++) {
        struct reg_record next = {0}, fresh = {0};
        long pos = find_value(&bk->rec, ip);
        if (add ? pos >= 0 : pos < 0)
            return RC_OK; /* already so: done by another writer, or by a lost earlier answer */
        if (add && bk->rec.nvalues >= reg->opt.max_per_bucket) {
            if (detail && n)
                snprintf(detail, n, "the bucket filled up through another writer; retry");
            return RC_CONFLICT;
        }
        record_with(reg, &bk->rec, ip, add, &next);
        {
            struct reg_change chg = {bk->rec.nvalues ? &bk->rec : NULL,
                                     next.nvalues ? &next : NULL};
            rc = reg->prov->ops->apply(reg->prov, &chg, 1, detail, n);
        }
        if (rc == RC_OK) {
            reg_record_release(&bk->rec);
            bk->rec = next;
            if (!bk->rec.nvalues)
                bk->rec.weight = 0;
            bump_generation(reg);
            return RC_OK;
        }
        reg_record_release(&next);
        if (rc != RC_CONFLICT || round + 1 == CONFLICT_ROUNDS)
            return rc;
        if (round >= 1) {
            /* A hot contender (another replica's pipeline) can win every race: back off with
             * full jitter, without holding the bucket lock while asleep. */
            unsigned cap_us = 1000u << (round < 6 ? round : 6);
            struct timespec ts = {0, (long)(rand_below(cap_us) + 1) * 1000};
            pthread_mutex_unlock(&bk->lock);
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&bk->lock);
        }
        rc = reg->prov->ops->reload(reg->prov, bk->rec.type, bk->rec.bucket, &fresh, detail, n);
        if (rc) {
            reg_record_release(&fresh);
            return rc;
        }
        adopt(reg, bk, &fresh);
    }
}

enum rc_code reg_register(struct reg_registry *reg, const struct ip_addr *ip,
                          struct reg_placement *out, int *created, char *detail, size_t n)
{
    enum reg_type t = reg_type_of(ip);
    enum rc_code rc = RC_OK;
    struct entry *e;
    struct bucket *bk;
    int b;

    *created = 0;
    if (!atomic_load(&reg->loaded))
        return RC_NOT_READY;
    pthread_mutex_lock(&reg->index_lock);
    e = settled_entry(reg, ip);
    if (e) {
        /* Already registered: report where, with the bucket's current weight. */
        unsigned eb = e->bucket;
        pthread_mutex_unlock(&reg->index_lock);
        bk = &reg->buckets[t][eb];
        pthread_mutex_lock(&bk->lock);
        if (find_value(&bk->rec, ip) >= 0) {
            fill_placement(out, ip, eb, bk->rec.weight, REG_STATE_REGISTERED);
            pthread_mutex_unlock(&bk->lock);
            return RC_OK;
        }
        pthread_mutex_unlock(&bk->lock);
        /* Deregistered in between: register anew. */
        return reg_register(reg, ip, out, created, detail, n);
    }
    b = choose_bucket(reg, ip);
    if (b < 0) {
        pthread_mutex_unlock(&reg->index_lock);
        if (detail && n)
            snprintf(detail, n,
                     "every %s bucket that may take this address holds %u values "
                     "(--max-per-bucket); deregister some or raise the limits",
                     reg_type_name(t), reg->opt.max_per_bucket);
        return RC_BUCKETS_FULL;
    }
    e = index_insert(reg, ip, (unsigned)b, ENTRY_ADDING);
    reg->reserved[t][b]++;
    pthread_mutex_unlock(&reg->index_lock);

    bk = &reg->buckets[t][b];
    pthread_mutex_lock(&bk->lock);
    rc = commit(reg, bk, ip, 1, detail, n);
    if (rc == RC_OK) {
        fill_placement(out, ip, (unsigned)b, bk->rec.weight, REG_STATE_REGISTERED);
        *created = 1;
        log_change(reg, "add", ip, &bk->rec);
    }
    pthread_mutex_lock(&reg->index_lock);
    if (rc == RC_OK) {
        e->state = ENTRY_PRESENT;
    } else {
        index_remove(reg, ip);
        reg->reserved[t][b]--;
    }
    pthread_cond_broadcast(&reg->index_cond);
    pthread_mutex_unlock(&reg->index_lock);
    pthread_mutex_unlock(&bk->lock);
    return rc;
}

enum rc_code reg_deregister(struct reg_registry *reg, const struct ip_addr *ip,
                            struct reg_placement *out, char *detail, size_t n)
{
    enum reg_type t = reg_type_of(ip);
    enum rc_code rc = RC_OK;
    struct entry *e;
    struct bucket *bk;
    unsigned b;

    if (!atomic_load(&reg->loaded))
        return RC_NOT_READY;
    pthread_mutex_lock(&reg->index_lock);
    e = settled_entry(reg, ip);
    if (!e) {
        pthread_mutex_unlock(&reg->index_lock);
        return RC_NOT_REGISTERED;
    }
    e->state = ENTRY_REMOVING;
    b = e->bucket;
    pthread_mutex_unlock(&reg->index_lock);

    bk = &reg->buckets[t][b];
    pthread_mutex_lock(&bk->lock);
    rc = commit(reg, bk, ip, 0, detail, n);
    if (rc == RC_OK) {
        fill_placement(out, ip, b, bk->rec.weight, REG_STATE_DEREGISTERED);
        log_change(reg, "remove", ip, &bk->rec);
    }
    pthread_mutex_lock(&reg->index_lock);
    if (rc == RC_OK) {
        index_remove(reg, ip);
        reg->reserved[t][b]--;
    } else {
        e->state = ENTRY_PRESENT;
    }
    pthread_cond_broadcast(&reg->index_cond);
    pthread_mutex_unlock(&reg->index_lock);
    pthread_mutex_unlock(&bk->lock);
    return rc;
}

enum rc_code reg_lookup(struct reg_registry *reg, const struct ip_addr *ip,
                        struct reg_placement *out)
{
    enum reg_type t = reg_type_of(ip);
    struct entry *e;
    unsigned b;
    enum rc_code rc = RC_NOT_REGISTERED;

    pthread_mutex_lock(&reg->index_lock);
    e = *index_slot(reg, ip);
    if (!e || e->state == ENTRY_ADDING) {
        pthread_mutex_unlock(&reg->index_lock);
        return RC_NOT_REGISTERED;
    }
    b = e->bucket;
    pthread_mutex_unlock(&reg->index_lock);

    pthread_mutex_lock(&reg->buckets[t][b].lock);
    if (find_value(&reg->buckets[t][b].rec, ip) >= 0) {
        fill_placement(out, ip, b, reg->buckets[t][b].rec.weight, REG_STATE_REGISTERED);
        rc = RC_OK;
    }
    pthread_mutex_unlock(&reg->buckets[t][b].lock);
    return rc;
}

/* ---- reads ------------------------------------------------------------------------------ */

size_t reg_snapshot(struct reg_registry *reg, struct reg_bucket_view **views)
{
    size_t n = 0, cap = 0;
    struct reg_bucket_view *v = NULL;

    for (int t = 0; t < 2; t++)
        for (unsigned b = 0; b < REG_MAX_BUCKETS; b++) {
            struct bucket *bk = &reg->buckets[t][b];
            pthread_mutex_lock(&bk->lock);
            if (bk->rec.nvalues) {
                v = xgrow(v, &cap, n + 1, sizeof(*v));
                reg_record_copy(&v[n].rec, &bk->rec);
                v[n].capacity = reg->opt.max_per_bucket;
                v[n].accepting =
                    b < reg->opt.buckets && bk->rec.nvalues < reg->opt.max_per_bucket;
                n++;
            }
            pthread_mutex_unlock(&bk->lock);
        }
    *views = v;
    return n;
}

void reg_views_free(struct reg_bucket_view *views, size_t n)
{
    for (size_t i = 0; i < n; i++)
        reg_record_release(&views[i].rec);
    free(views);
}

unsigned reg_free_capacity(struct reg_registry *reg, enum reg_type type)
{
    unsigned free_slots = 0;
    pthread_mutex_lock(&reg->index_lock);
    for (unsigned b = 0; b < reg->opt.buckets; b++)
        if (reg->reserved[type][b] < reg->opt.max_per_bucket)
            free_slots += reg->opt.max_per_bucket - reg->reserved[type][b];
    pthread_mutex_unlock(&reg->index_lock);
    return free_slots;
}
