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
#include "util/metrics.h"
#include "util/xalloc.h"

enum entry_state { ENTRY_ADDING, ENTRY_PRESENT, ENTRY_REMOVING };

/* A queued mutation (group commit). */
struct intent {
    int64_t submitted_ns; /* CLOCK_MONOTONIC */
    enum reg_op op;
    struct ip_addr ip;
    unsigned bucket;
    unsigned rounds; /* compare-and-swap conflicts met so far */
    reg_done_fn done;
    void *arg;
    struct intent *next;
};

struct entry {
    struct ip_addr ip;
    unsigned bucket;
    enum entry_state state;
    int64_t lease_deadline_ns; /* CLOCK_MONOTONIC; 0: no lease */
    unsigned lease_s;
    int lease_expiring;        /* a removal for the expired lease is in flight */
    struct intent *waiters; /* group commit: later operations on this IP, in order */
    struct entry *next;
};

struct bucket {
    pthread_mutex_t lock;
    /* guarded by lock */
    struct reg_record rec;
    struct intent *queue; /* group commit: intents not yet sent, in arrival order */
    struct intent **queue_tail;
    int listed; /* guarded by the registry's work_lock: on the dirty list */
    struct bucket *dirty_next; /* guarded by work_lock */
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

    /* Group commit: the committer thread and its work list. Lock order: bucket lock, then
     * work_lock; the committer never holds work_lock while taking a bucket lock. */
    pthread_t committer;
    int committer_started;
    pthread_mutex_t work_lock;
    pthread_cond_t work_cond;
    /* guarded by work_lock */
    struct bucket *dirty_head, **dirty_tail;
    int stopping;
    unsigned long long batches, batched_changes;
    size_t queued; /* intents queued, not yet sent */
    atomic_ullong submitted;                /* intents ever submitted (arrival rate) */
    int64_t rate_sample_ns;                 /* committer thread only */
    unsigned long long rate_sample_count;   /* committer thread only */

    /* Leases: a reaper thread deregisters backends whose lease ran out. */
    pthread_t reaper;
    int reaper_started;
    pthread_mutex_t reaper_lock;
    pthread_cond_t reaper_cond;
    int reaper_stop; /* guarded by reaper_lock */
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

/* The detail of RC_BUCKETS_FULL, for both commit modes. */
static void say_full(const struct reg_registry *reg, enum reg_type t, char *detail, size_t n)
{
    rc_detail(detail, n,
              "every %s bucket that may take this address holds %u values "
              "(--max-per-bucket); deregister some or raise the limits",
              reg_type_name(t), reg->opt.max_per_bucket);
}

/* The detail of RC_NOT_REGISTERED for a deregistration, for both commit modes. */
static void say_not_registered(const struct ip_addr *ip, char *detail, size_t n)
{
    char txt[IP_TEXT_MAX];
    rc_detail(detail, n, "%s is not registered", ip_format(ip, txt));
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

static void *committer_main(void *arg);

/* ---- metrics (process-wide families; gauges follow the latest registry) ---------------- */

static struct metrics_counter_family *m_batches, *m_outcomes, *m_conflicts;
static struct metrics_histogram_family *m_batch_changes, *m_batch_elements, *m_commit_latency;

static double queued_value(void *arg)
{
    struct reg_registry *reg = arg;
    double v;
    pthread_mutex_lock(&reg->work_lock);
    v = (double)reg->queued;
    pthread_mutex_unlock(&reg->work_lock);
    return v;
}

static void metrics_attach(struct reg_registry *reg)
{
    static const double changes_bounds[] = {1, 2, 5, 10, 20, 50, 100, 200};
    static const double elements_bounds[] = {2, 10, 50, 100, 250, 500, 750, 1000};
    static const double latency_bounds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5,
                                            1,     2.5,   5,    10,   30,  60,   120};
    struct metrics_registry *mr = metrics_default();
    m_batches = metrics_counter_create(mr, "r53reg_commit_batches_total",
                                       "Store calls made by the committer", NULL);
    m_outcomes = metrics_counter_create(mr, "r53reg_commit_mutations_total",
                                        "Mutations settled, by operation and outcome",
                                        "op,outcome");
    m_conflicts = metrics_counter_create(mr, "r53reg_commit_conflicts_total",
                                         "Compare-and-swap conflicts (the record changed "
                                         "underneath; reloaded and retried)",
                                         NULL);
    m_batch_changes = metrics_histogram_create(mr, "r53reg_commit_batch_buckets",
                                               "Bucket changes per store call", NULL,
                                               changes_bounds, 8);
    m_batch_elements = metrics_histogram_create(mr, "r53reg_commit_batch_elements",
                                                "ResourceRecord elements per store call "
                                                "(DELETE + CREATE values)",
                                                NULL, elements_bounds, 8);
    m_commit_latency = metrics_histogram_create(mr, "r53reg_commit_latency_seconds",
                                                "Time from a mutation's submission to its "
                                                "commit (or failure)",
                                                NULL, latency_bounds, 14);
    metrics_gauge_func(mr, "r53reg_commit_queue_depth",
                       "Mutations queued for the committer, not yet sent", queued_value, reg);
}

static int64_t now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* ---- leases ----------------------------------------------------------------------------- */

/* A backend that becomes present gets the default lease unless it has one. Caller holds
 * index_lock. */
static void lease_start(struct reg_registry *reg, struct entry *e)
{
    if (!reg->opt.default_lease || e->lease_s)
        return;
    e->lease_s = reg->opt.default_lease;
    e->lease_deadline_ns = now_ns() + (int64_t)e->lease_s * 1000000000;
}

/* The lease as the API shows it: Unix seconds of the deadline. */
static void lease_fill(struct reg_placement *out, int64_t deadline_ns, unsigned lease_s)
{
    out->lease_seconds = lease_s;
    out->lease_expires_at = 0;
    if (deadline_ns) {
        int64_t left = deadline_ns - now_ns();
        out->lease_expires_at = (long long)time(NULL) + (left > 0 ? left / 1000000000 : 0);
    }
}

static void *reaper_main(void *arg);

static void count_outcome(enum reg_op op, int64_t submitted_ns, enum rc_code rc)
{
    if (!m_outcomes)
        return;
    metrics_counter_inc(
        metrics_counter_with(m_outcomes, op == REG_OP_ADD ? "add" : "remove", rc_slug(rc)));
    if (submitted_ns)
        metrics_histogram_observe(metrics_histogram_child(m_commit_latency),
                                  (double)(now_ns() - submitted_ns) / 1e9);
}

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
    atomic_init(&reg->submitted, 0);
    bump_generation(reg);
    for (int t = 0; t < 2; t++)
        for (unsigned b = 0; b < REG_MAX_BUCKETS; b++) {
            pthread_mutex_init(&reg->buckets[t][b].lock, NULL);
            reg->buckets[t][b].rec.type = (enum reg_type)t;
            reg->buckets[t][b].rec.bucket = b;
        }
    pthread_mutex_init(&reg->index_lock, NULL);
    pthread_cond_init(&reg->index_cond, NULL);
    pthread_mutex_init(&reg->work_lock, NULL);
    pthread_cond_init(&reg->work_cond, NULL);
    pthread_mutex_init(&reg->reaper_lock, NULL);
    pthread_cond_init(&reg->reaper_cond, NULL);
    reg->dirty_tail = &reg->dirty_head;
    for (int t = 0; t < 2; t++)
        for (unsigned b = 0; b < REG_MAX_BUCKETS; b++)
            reg->buckets[t][b].queue_tail = &reg->buckets[t][b].queue;
    reg->table_size = 1024;
    reg->table = xcalloc(reg->table_size, sizeof(*reg->table));
    return reg;
}

void reg_destroy(struct reg_registry *reg)
{
    if (!reg)
        return;
    if (atomic_load(&reg->loaded))
        metrics_gauge_func(metrics_default(), "r53reg_commit_queue_depth", "", NULL, NULL);
    if (reg->reaper_started) {
        pthread_mutex_lock(&reg->reaper_lock);
        reg->reaper_stop = 1;
        pthread_cond_signal(&reg->reaper_cond);
        pthread_mutex_unlock(&reg->reaper_lock);
        pthread_join(reg->reaper, NULL);
    }
    if (reg->committer_started) {
        /* The committer finishes what is queued, then stops. */
        pthread_mutex_lock(&reg->work_lock);
        reg->stopping = 1;
        pthread_cond_signal(&reg->work_cond);
        pthread_mutex_unlock(&reg->work_lock);
        pthread_join(reg->committer, NULL);
    }
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
    pthread_mutex_destroy(&reg->work_lock);
    pthread_cond_destroy(&reg->work_cond);
    pthread_mutex_destroy(&reg->reaper_lock);
    pthread_cond_destroy(&reg->reaper_cond);
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
            lease_start(reg, index_insert(reg, &bk->rec.values[v], bk->rec.bucket,
                                          ENTRY_PRESENT));
        }
        pthread_mutex_unlock(&reg->index_lock);
        pthread_mutex_unlock(&bk->lock);
    }
    metrics_attach(reg);
    if (!reg->reaper_started) {
        if (pthread_create(&reg->reaper, NULL, reaper_main, reg) != 0) {
            snprintf(detail, n, "cannot start the lease reaper thread");
            rc = RC_INTERNAL;
            goto out;
        }
        reg->reaper_started = 1;
    }
    if (reg->opt.commit == REG_COMMIT_GROUP && !reg->committer_started) {
        if (pthread_create(&reg->committer, NULL, committer_main, reg) != 0) {
            snprintf(detail, n, "cannot start the committer thread");
            rc = RC_INTERNAL;
            goto out;
        }
        reg->committer_started = 1;
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
    /* change_id is the commit's: left as it is. */
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
        lease_start(reg, index_insert(reg, &fresh->values[i], b, ENTRY_PRESENT));
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
                           int add, char *change_id, char *detail, size_t n)
{
    enum rc_code rc = RC_OK;

    for (int round = 0;; round++) {
        struct reg_record next = {0}, fresh = {0};
        long pos = find_value(&bk->rec, ip);
        if (add ? pos >= 0 : pos < 0)
            return RC_OK; /* already so: done by another writer, or by a lost earlier answer */
        if (add && bk->rec.nvalues >= reg->opt.max_per_bucket) {
            rc_detail(detail, n, "the bucket filled up through another writer; retry");
            return RC_CONFLICT;
        }
        record_with(reg, &bk->rec, ip, add, &next);
        {
            struct reg_change chg = {bk->rec.nvalues ? &bk->rec : NULL,
                                     next.nvalues ? &next : NULL};
            rc = reg->prov->ops->apply(reg->prov, &chg, 1, change_id, detail, n);
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

static enum rc_code register_now(struct reg_registry *reg, const struct ip_addr *ip,
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
        return register_now(reg, ip, out, created, detail, n);
    }
    b = choose_bucket(reg, ip);
    if (b < 0) {
        pthread_mutex_unlock(&reg->index_lock);
        say_full(reg, t, detail, n);
        return RC_BUCKETS_FULL;
    }
    e = index_insert(reg, ip, (unsigned)b, ENTRY_ADDING);
    reg->reserved[t][b]++;
    pthread_mutex_unlock(&reg->index_lock);

    bk = &reg->buckets[t][b];
    pthread_mutex_lock(&bk->lock);
    rc = commit(reg, bk, ip, 1, out->change_id, detail, n);
    if (rc == RC_OK) {
        fill_placement(out, ip, (unsigned)b, bk->rec.weight, REG_STATE_REGISTERED);
        *created = 1;
        log_change(reg, "add", ip, &bk->rec);
    }
    pthread_mutex_lock(&reg->index_lock);
    if (rc == RC_OK) {
        e->state = ENTRY_PRESENT;
        lease_start(reg, e);
    } else {
        index_remove(reg, ip);
        reg->reserved[t][b]--;
    }
    pthread_cond_broadcast(&reg->index_cond);
    pthread_mutex_unlock(&reg->index_lock);
    pthread_mutex_unlock(&bk->lock);
    return rc;
}

static enum rc_code deregister_now(struct reg_registry *reg, const struct ip_addr *ip,
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
        say_not_registered(ip, detail, n);
        return RC_NOT_REGISTERED;
    }
    e->state = ENTRY_REMOVING;
    b = e->bucket;
    pthread_mutex_unlock(&reg->index_lock);

    bk = &reg->buckets[t][b];
    pthread_mutex_lock(&bk->lock);
    rc = commit(reg, bk, ip, 0, out->change_id, detail, n);
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

/* ---- group commit ----------------------------------------------------------------------- */

static void finish(struct intent *in, struct reg_result *res)
{
    count_outcome(in->op, in->submitted_ns, res->rc);
    in->done(in->arg, res);
    free(in);
}

static void fail(struct intent *in, enum rc_code rc, const char *detail)
{
    struct reg_result res;
    memset(&res, 0, sizeof(res));
    res.rc = rc;
    snprintf(res.detail, sizeof(res.detail), "%s", detail ? detail : "");
    finish(in, &res);
}

static void submit_intent(struct reg_registry *reg, struct intent *in);

/* Resubmit operations that waited for an IP to settle (outside every lock). */
static void resubmit(struct reg_registry *reg, struct intent *waiters)
{
    while (waiters) {
        struct intent *next = waiters->next;
        waiters->next = NULL;
        submit_intent(reg, waiters);
        waiters = next;
    }
}

/* Queue in on its bucket and wake the committer. */
static void enqueue(struct reg_registry *reg, struct intent *in, int front)
{
    struct bucket *bk = &reg->buckets[reg_type_of(&in->ip)][in->bucket];

    pthread_mutex_lock(&bk->lock);
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
    pthread_mutex_unlock(&bk->lock);

    pthread_mutex_lock(&reg->work_lock);
    reg->queued++;
    if (!bk->listed) {
        bk->listed = 1;
        bk->dirty_next = NULL;
        *reg->dirty_tail = bk;
        reg->dirty_tail = &bk->dirty_next;
    }
    pthread_cond_signal(&reg->work_cond);
    pthread_mutex_unlock(&reg->work_lock);
}

static void submit_intent(struct reg_registry *reg, struct intent *in)
{
    enum reg_type t = reg_type_of(&in->ip);
    struct entry *e;
    int b;

    pthread_mutex_lock(&reg->index_lock);
    e = *index_slot(reg, &in->ip);
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
    if (in->op == REG_OP_ADD) {
        if (e) {
            unsigned eb = e->bucket;
            struct bucket *bk = &reg->buckets[t][eb];
            struct reg_result res;
            pthread_mutex_unlock(&reg->index_lock);
            memset(&res, 0, sizeof(res));
            pthread_mutex_lock(&bk->lock);
            if (find_value(&bk->rec, &in->ip) >= 0) {
                fill_placement(&res.placement, &in->ip, eb, bk->rec.weight,
                               REG_STATE_REGISTERED);
                pthread_mutex_unlock(&bk->lock);
                finish(in, &res);
                return;
            }
            pthread_mutex_unlock(&bk->lock);
            submit_intent(reg, in); /* removed meanwhile by an adopt: place anew */
            return;
        }
        b = choose_bucket(reg, &in->ip);
        if (b < 0) {
            char detail[REG_DETAIL_MAX];
            pthread_mutex_unlock(&reg->index_lock);
            say_full(reg, t, detail, sizeof(detail));
            fail(in, RC_BUCKETS_FULL, detail);
            return;
        }
        index_insert(reg, &in->ip, (unsigned)b, ENTRY_ADDING);
        reg->reserved[t][b]++;
    } else {
        if (!e) {
            char detail[96];
            pthread_mutex_unlock(&reg->index_lock);
            say_not_registered(&in->ip, detail, sizeof(detail));
            fail(in, RC_NOT_REGISTERED, detail);
            return;
        }
        e->state = ENTRY_REMOVING;
        b = (int)e->bucket;
    }
    in->bucket = (unsigned)b;
    pthread_mutex_unlock(&reg->index_lock);
    enqueue(reg, in, 0);
}

/* One bucket's part of a batch. */
struct slot {
    struct bucket *bk;
    struct reg_record old; /* copy of the committed record (nvalues 0: none) */
    struct reg_record next;
    struct intent *intents;
};

/* The record bk->rec with every intent applied, in order. */
static void apply_intents(const struct reg_registry *reg, const struct reg_record *rec,
                          const struct intent *in, struct reg_record *out)
{
    reg_record_copy(out, rec);
    for (; in; in = in->next) {
        long pos = find_value(out, &in->ip);
        struct reg_record tmp;
        if (in->op == REG_OP_ADD ? pos >= 0 : pos < 0)
            continue;
        record_with(reg, out, &in->ip, in->op == REG_OP_ADD, &tmp);
        reg_record_release(out);
        *out = tmp;
    }
    out->weight = reg_weight_for(&reg->opt, out->nvalues);
    out->ttl = reg->opt.ttl;
}

/* Elements and value characters a DELETE old + CREATE next costs (Route 53's quota). */
static void slot_cost(const struct slot *sl, size_t *elements, size_t *chars)
{
    char txt[IP_TEXT_MAX];
    *elements = sl->old.nvalues + sl->next.nvalues;
    *chars = 0;
    for (size_t i = 0; i < sl->old.nvalues; i++)
        *chars += strlen(ip_format(&sl->old.values[i], txt));
    for (size_t i = 0; i < sl->next.nvalues; i++)
        *chars += strlen(ip_format(&sl->next.values[i], txt));
}

#define BATCH_MAX_ELEMENTS 1000
#define BATCH_MAX_CHARS 32000

/*
 * Settle the index entries of a slot's intents: committed, an ADD becomes PRESENT and a REMOVE
 * leaves the index; rolled back, the reverse. Returns the operations that waited on those IPs,
 * in order, for the caller to resubmit once no lock is held. Caller holds index_lock.
 */
static struct intent *settle_entries(struct reg_registry *reg, struct slot *sl, int committed)
{
    enum reg_type t = sl->bk->rec.type;
    unsigned b = sl->bk->rec.bucket;
    struct intent *waiters = NULL, **wtail = &waiters;

    for (struct intent *in = sl->intents; in; in = in->next) {
        struct entry *e = *index_slot(reg, &in->ip);
        if (!e)
            continue;
        if (e->waiters) {
            *wtail = e->waiters;
            while (*wtail)
                wtail = &(*wtail)->next;
            e->waiters = NULL;
        }
        if ((in->op == REG_OP_ADD) == !!committed) {
            e->state = ENTRY_PRESENT; /* added, or its removal rolled back */
            if (committed)
                lease_start(reg, e);
        } else {
            index_remove(reg, &in->ip); /* removed, or its addition rolled back */
            reg->reserved[t][b]--;
        }
    }
    return waiters;
}

/* Settle a committed slot: the store holds next. Completions run after the locks. */
static void settle_ok(struct reg_registry *reg, struct slot *sl, const char *change_id)
{
    struct bucket *bk = sl->bk;
    enum reg_type t = bk->rec.type;
    unsigned b = bk->rec.bucket;
    struct intent *waiters, *in;
    unsigned weight;

    pthread_mutex_lock(&bk->lock);
    reg_record_release(&bk->rec);
    bk->rec = sl->next;
    bk->rec.type = t;
    bk->rec.bucket = b;
    if (!bk->rec.nvalues)
        bk->rec.weight = 0;
    sl->next.values = NULL;
    sl->next.nvalues = 0;
    weight = bk->rec.weight;
    bump_generation(reg);
    pthread_mutex_lock(&reg->index_lock);
    waiters = settle_entries(reg, sl, 1);
    pthread_mutex_unlock(&reg->index_lock);
    pthread_mutex_unlock(&bk->lock);

    while ((in = sl->intents)) {
        struct reg_result res;
        sl->intents = in->next;
        memset(&res, 0, sizeof(res));
        res.created = in->op == REG_OP_ADD;
        fill_placement(&res.placement, &in->ip, b, weight,
                       in->op == REG_OP_ADD ? REG_STATE_REGISTERED : REG_STATE_DEREGISTERED);
        snprintf(res.placement.change_id, sizeof(res.placement.change_id), "%s", change_id);
        log_change(reg, in->op == REG_OP_ADD ? "add" : "remove", &in->ip, &bk->rec);
        finish(in, &res);
    }
    resubmit(reg, waiters);
}

/* Fail every intent of a slot: nothing of it was applied. */
static void settle_failed(struct reg_registry *reg, struct slot *sl, enum rc_code rc,
                          const char *detail)
{
    struct intent *waiters, *in;

    pthread_mutex_lock(&reg->index_lock);
    waiters = settle_entries(reg, sl, 0);
    pthread_mutex_unlock(&reg->index_lock);
    while ((in = sl->intents)) {
        sl->intents = in->next;
        fail(in, rc, detail);
    }
    resubmit(reg, waiters);
}

/* Put a slot's intents back at the front of its queue (after a conflict). */
static void requeue(struct reg_registry *reg, struct slot *sl)
{
    struct intent *in, *rev = NULL;
    while ((in = sl->intents)) { /* reverse, so pushing to the front keeps the order */
        sl->intents = in->next;
        in->next = rev;
        rev = in;
    }
    while ((in = rev)) {
        rev = in->next;
        if (++in->rounds >= CONFLICT_ROUNDS) {
            struct slot one = {.bk = sl->bk, .intents = in};
            in->next = NULL;
            settle_failed(reg, &one, RC_CONFLICT,
                          "the record kept changing underneath through another writer");
            continue;
        }
        enqueue(reg, in, 1);
    }
}

static void slot_release(struct slot *sl)
{
    reg_record_release(&sl->old);
    reg_record_release(&sl->next);
}

/* Send slots[0..n) as one atomic store call; on failure isolate the cause by halving. */
static void send_batch(struct reg_registry *reg, struct slot *slots, size_t n, int paced)
{
    struct reg_change *chg = xcalloc(n, sizeof(*chg));
    char change_id[REG_CHANGE_ID_MAX] = "", detail[REG_DETAIL_MAX] = "";
    enum rc_code rc;

    if (!paced && reg->prov->ops->pace)
        reg->prov->ops->pace(reg->prov);
    for (size_t i = 0; i < n; i++) {
        chg[i].old = slots[i].old.nvalues ? &slots[i].old : NULL;
        chg[i].new = slots[i].next.nvalues ? &slots[i].next : NULL;
    }
    rc = reg->prov->ops->apply(reg->prov, chg, n, change_id, detail, sizeof(detail));
    {
        size_t elements = 0, queued;
        for (size_t i = 0; i < n; i++)
            elements += slots[i].old.nvalues + slots[i].next.nvalues;
        metrics_counter_inc(metrics_counter_child(m_batches));
        metrics_histogram_observe(metrics_histogram_child(m_batch_changes), (double)n);
        metrics_histogram_observe(metrics_histogram_child(m_batch_elements), (double)elements);
        if (rc == RC_CONFLICT)
            metrics_counter_inc(metrics_counter_child(m_conflicts));
        pthread_mutex_lock(&reg->work_lock);
        reg->batches++;
        reg->batched_changes += n;
        queued = reg->queued;
        pthread_mutex_unlock(&reg->work_lock);
        log_debug("msg=batch buckets=%zu elements=%zu queued=%zu rc=%s", n, elements, queued,
                  rc_slug(rc));
    }
    free(chg);

    if (rc == RC_OK) {
        for (size_t i = 0; i < n; i++)
            settle_ok(reg, &slots[i], change_id);
        return;
    }
    if (n > 1 && rc != RC_UNAVAILABLE && rc != RC_UPSTREAM_TIMEOUT && rc != RC_NOT_READY) {
        /* One bucket's change spoils the batch: find it by halving, commit the rest. */
        log_warn("msg=\"batch refused; splitting to isolate the cause\" changes=%zu rc=%s",
                 n, rc_slug(rc));
        send_batch(reg, slots, n / 2, 0);
        send_batch(reg, slots + n / 2, n - n / 2, 0);
        return;
    }
    if (rc == RC_CONFLICT) {
        /* One bucket changed underneath: adopt what the store holds, then try again. */
        struct bucket *bk = slots[0].bk;
        struct reg_record fresh = {0};
        enum rc_code lrc;
        pthread_mutex_lock(&bk->lock);
        lrc = reg->prov->ops->reload(reg->prov, bk->rec.type, bk->rec.bucket, &fresh, detail,
                                     sizeof(detail));
        if (lrc == RC_OK)
            adopt(reg, bk, &fresh);
        reg_record_release(&fresh);
        pthread_mutex_unlock(&bk->lock);
        if (lrc == RC_OK) {
            /* Another writer is busy on this bucket: back off with full jitter (no lock
             * held) so it cannot win every race against us. */
            unsigned rounds = slots[0].intents ? slots[0].intents->rounds : 0;
            unsigned cap_us = 1000u << (rounds < 6 ? rounds : 6);
            struct timespec ts = {0, (long)(rand_below(cap_us) + 1) * 1000};
            requeue(reg, &slots[0]);
            nanosleep(&ts, NULL);
            return;
        }
        rc = lrc;
    }
    for (size_t i = 0; i < n; i++)
        settle_failed(reg, &slots[i], rc, detail);
}

/* How much a bucket's change achieves per element it costs: a DELETE+CREATE resends every
 * value the bucket already holds, so a bucket with many queued intents and few values is the
 * best use of a call. Intents that waited longer than STARVE_NS go first whatever their gain. */
#define STARVE_NS 1000000000LL

struct ranked {
    struct bucket *bk;
    double score;
};

static int cmp_ranked(const void *a, const void *b)
{
    double x = ((const struct ranked *)a)->score, y = ((const struct ranked *)b)->score;
    return x > y ? -1 : x < y;
}

/* Sort buckets (the dirty list, in arrival order) by gain per element, stable for ties. */
static void order_by_gain(struct bucket **list, size_t n, double *scores)
{
    struct ranked r[2 * REG_MAX_BUCKETS];
    int64_t now = now_ns();

    for (size_t i = 0; i < n; i++) {
        struct bucket *bk = list[i];
        size_t adds = 0, removes = 0, c;
        int64_t oldest = 0;
        pthread_mutex_lock(&bk->lock);
        c = bk->rec.nvalues;
        for (struct intent *in = bk->queue; in; in = in->next) {
            if (!oldest)
                oldest = in->submitted_ns;
            if (in->op == REG_OP_ADD)
                adds++;
            else
                removes++;
        }
        pthread_mutex_unlock(&bk->lock);
        r[i].bk = bk;
        if (oldest && now - oldest > STARVE_NS) {
            r[i].score = 1e9 - (double)i; /* starving: first, in arrival order */
        } else {
            double cost = (double)c + (double)(c + adds > removes ? c + adds - removes : 0);
            r[i].score = (double)(adds + removes) / (cost > 0 ? cost : 1) - (double)i * 1e-9;
        }
    }
    qsort(r, n, sizeof(r[0]), cmp_ranked);
    for (size_t i = 0; i < n; i++) {
        list[i] = r[i].bk;
        scores[i] = r[i].score;
    }
}

/*
 * During a burst (mutations arriving faster than BURST_RATE per second) nothing is sent until
 * the burst calms down or an intent has waited STARVE_NS: balanced placement spreads a burst
 * over every bucket, so a bucket written while the burst still arrives would be resent whole
 * (DELETE must repeat the exact old record) by a later call. Waiting turns a burst into calls
 * that each carry final buckets. An idle service or a slow stream is never held: a lone
 * registration is committed at once.
 */
#define BURST_RATE 2000.0
#define BURST_MIN_GAIN 1e9 /* hold everything but starving intents */

static double min_gain_now(struct reg_registry *reg)
{
    int64_t now = now_ns();
    unsigned long long count = atomic_load(&reg->submitted);
    double rate = 0;
    if (reg->rate_sample_ns && now > reg->rate_sample_ns)
        rate = (double)(count - reg->rate_sample_count) * 1e9 /
               (double)(now - reg->rate_sample_ns);
    reg->rate_sample_ns = now;
    reg->rate_sample_count = count;
    return rate > BURST_RATE ? BURST_MIN_GAIN : 0;
}

/* Take queued intents of dirty buckets, best gain first, into one batch within the limits. */
static size_t drain(struct reg_registry *reg, struct slot **out)
{
    struct bucket *list[2 * REG_MAX_BUCKETS], *bk, *skipped = NULL, **skipped_tail = &skipped;
    double scores[2 * REG_MAX_BUCKETS], min_gain = min_gain_now(reg);
    size_t n = 0, cap = 0, elements = 0, chars = 0, nlist = 0;
    struct slot *slots = NULL;

    /* Take the dirty list as an array: once unlisted, a bucket's dirty_next belongs to whoever
     * lists it again. */
    pthread_mutex_lock(&reg->work_lock);
    for (bk = reg->dirty_head; bk && nlist < 2 * REG_MAX_BUCKETS; bk = bk->dirty_next) {
        bk->listed = 0;
        list[nlist++] = bk;
    }
    reg->dirty_head = NULL;
    reg->dirty_tail = &reg->dirty_head;
    pthread_mutex_unlock(&reg->work_lock);
    order_by_gain(list, nlist, scores);

    for (size_t k = 0; k < nlist; k++) {
        struct slot sl;
        size_t e, c, taken = 0;
        bk = list[k];
        memset(&sl, 0, sizeof(sl));
        sl.bk = bk;
        pthread_mutex_lock(&bk->lock);
        if (!bk->queue) {
            pthread_mutex_unlock(&bk->lock);
            continue;
        }
        reg_record_copy(&sl.old, &bk->rec);
        apply_intents(reg, &bk->rec, bk->queue, &sl.next);
        slot_cost(&sl, &e, &c);
        if ((n && (elements + e > BATCH_MAX_ELEMENTS || chars + c > BATCH_MAX_CHARS)) ||
            scores[k] < min_gain) {
            pthread_mutex_unlock(&bk->lock);
            slot_release(&sl);
            pthread_mutex_lock(&reg->work_lock);
            if (!bk->listed) { /* not listed again meanwhile: keep it for the next batch */
                bk->listed = 1;
                bk->dirty_next = NULL;
                *skipped_tail = bk;
                skipped_tail = &bk->dirty_next;
            }
            pthread_mutex_unlock(&reg->work_lock);
            continue;
        }
        sl.intents = bk->queue;
        for (struct intent *in = bk->queue; in; in = in->next)
            taken++;
        bk->queue = NULL;
        bk->queue_tail = &bk->queue;
        pthread_mutex_unlock(&bk->lock);
        pthread_mutex_lock(&reg->work_lock);
        reg->queued -= taken;
        pthread_mutex_unlock(&reg->work_lock);

        if (reg_record_equal(&sl.old, &sl.next) ||
            (sl.old.nvalues == 0 && sl.next.nvalues == 0)) {
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
    /* Buckets that did not fit go first next time. */
    if (skipped) {
        pthread_mutex_lock(&reg->work_lock);
        *skipped_tail = reg->dirty_head;
        if (!reg->dirty_head)
            reg->dirty_tail = skipped_tail;
        reg->dirty_head = skipped;
        pthread_mutex_unlock(&reg->work_lock);
    }
    *out = slots;
    return n;
}

static void *committer_main(void *arg)
{
    struct reg_registry *reg = arg;
    for (;;) {
        struct slot *slots = NULL;
        size_t n;
        pthread_mutex_lock(&reg->work_lock);
        while (!reg->dirty_head && !reg->stopping)
            pthread_cond_wait(&reg->work_cond, &reg->work_lock);
        if (!reg->dirty_head && reg->stopping) {
            pthread_mutex_unlock(&reg->work_lock);
            break;
        }
        pthread_mutex_unlock(&reg->work_lock);
        /* Wait for the rate limit first: whatever arrives meanwhile joins this batch. */
        if (reg->prov->ops->pace)
            reg->prov->ops->pace(reg->prov);
        n = drain(reg, &slots);
        if (n) {
            send_batch(reg, slots, n, 1);
        } else {
            /* Everything waits for a burst to fill it (min_gain_now): look again shortly. */
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        for (size_t i = 0; i < n; i++)
            slot_release(&slots[i]);
        free(slots);
    }
    return NULL;
}

/* Synchronous use of reg_submit (tests, immediate callers). */
struct sync_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    struct reg_result res;
};

static void sync_done(void *arg, const struct reg_result *res)
{
    struct sync_wait *w = arg;
    pthread_mutex_lock(&w->lock);
    w->res = *res;
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void run_now(struct reg_registry *reg, enum reg_op op, const struct ip_addr *ip,
                    reg_done_fn done, void *arg)
{
    struct reg_result res;
    int64_t t0 = now_ns();
    memset(&res, 0, sizeof(res));
    if (op == REG_OP_ADD)
        res.rc = register_now(reg, ip, &res.placement, &res.created, res.detail,
                              sizeof(res.detail));
    else
        res.rc = deregister_now(reg, ip, &res.placement, res.detail, sizeof(res.detail));
    count_outcome(op, t0, res.rc);
    done(arg, &res);
}

void reg_submit(struct reg_registry *reg, enum reg_op op, const struct ip_addr *ip,
                reg_done_fn done, void *arg)
{
    struct intent *in;
    if (!atomic_load(&reg->loaded)) {
        struct reg_result res;
        memset(&res, 0, sizeof(res));
        res.rc = RC_NOT_READY;
        snprintf(res.detail, sizeof(res.detail), "the buckets are not loaded yet");
        done(arg, &res);
        return;
    }
    if (reg->opt.commit == REG_COMMIT_IMMEDIATE) {
        run_now(reg, op, ip, done, arg);
        return;
    }
    atomic_fetch_add(&reg->submitted, 1);
    in = xcalloc(1, sizeof(*in));
    in->submitted_ns = now_ns();
    in->op = op;
    in->ip = *ip;
    in->done = done;
    in->arg = arg;
    submit_intent(reg, in);
}

static enum rc_code submit_and_wait(struct reg_registry *reg, enum reg_op op,
                                    const struct ip_addr *ip, struct reg_placement *out,
                                    int *created, char *detail, size_t n)
{
    struct sync_wait w;
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    reg_submit(reg, op, ip, sync_done, &w);
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    pthread_mutex_destroy(&w.lock);
    pthread_cond_destroy(&w.cond);
    if (w.res.rc == RC_OK)
        *out = w.res.placement;
    if (created)
        *created = w.res.created;
    if (w.res.rc && detail && n)
        snprintf(detail, n, "%s", w.res.detail);
    return w.res.rc;
}

enum rc_code reg_register(struct reg_registry *reg, const struct ip_addr *ip,
                          struct reg_placement *out, int *created, char *detail, size_t n)
{
    return submit_and_wait(reg, REG_OP_ADD, ip, out, created, detail, n);
}

enum rc_code reg_deregister(struct reg_registry *reg, const struct ip_addr *ip,
                            struct reg_placement *out, char *detail, size_t n)
{
    return submit_and_wait(reg, REG_OP_REMOVE, ip, out, NULL, detail, n);
}

/* The reaper: every 250 ms, deregister (through the committer) the backends whose lease ran
 * out. A failed removal is retried on a later pass. */
struct expiry {
    struct reg_registry *reg;
    struct ip_addr ip;
};

static void expired_done(void *arg, const struct reg_result *res)
{
    struct expiry *x = arg;
    char txt[IP_TEXT_MAX];
    ip_format(&x->ip, txt);
    if (res->rc == RC_OK || res->rc == RC_NOT_REGISTERED) {
        log_info("msg=\"lease expired; deregistered\" ip=%s", txt);
    } else {
        struct entry *e;
        pthread_mutex_lock(&x->reg->index_lock);
        e = *index_slot(x->reg, &x->ip);
        if (e)
            e->lease_expiring = 0; /* try again on a later pass */
        pthread_mutex_unlock(&x->reg->index_lock);
        log_warn("msg=\"lease expired but the deregistration failed; will retry\" ip=%s rc=%s "
                 "detail=\"%s\"",
                 txt, rc_slug(res->rc), res->detail);
    }
    free(x);
}

static void *reaper_main(void *arg)
{
    struct reg_registry *reg = arg;
    for (;;) {
        struct ip_addr *due = NULL;
        size_t n = 0, cap = 0;
        struct timespec until;
        int64_t now;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&reg->reaper_lock);
        if (!reg->reaper_stop)
            pthread_cond_timedwait(&reg->reaper_cond, &reg->reaper_lock, &until);
        if (reg->reaper_stop) {
            pthread_mutex_unlock(&reg->reaper_lock);
            break;
        }
        pthread_mutex_unlock(&reg->reaper_lock);

        now = now_ns();
        pthread_mutex_lock(&reg->index_lock);
        for (size_t i = 0; i < reg->table_size; i++)
            for (struct entry *e = reg->table[i]; e; e = e->next)
                if (e->lease_deadline_ns && e->lease_deadline_ns <= now &&
                    e->state == ENTRY_PRESENT && !e->lease_expiring) {
                    e->lease_expiring = 1;
                    due = xgrow(due, &cap, n + 1, sizeof(*due));
                    due[n++] = e->ip;
                }
        pthread_mutex_unlock(&reg->index_lock);
        for (size_t i = 0; i < n; i++) {
            struct expiry *x = xcalloc(1, sizeof(*x));
            x->reg = reg;
            x->ip = due[i];
            reg_submit(reg, REG_OP_REMOVE, &due[i], expired_done, x);
        }
        free(due);
    }
    return NULL;
}

void reg_stats(struct reg_registry *reg, struct reg_stats *out)
{
    pthread_mutex_lock(&reg->work_lock);
    out->queued = reg->queued;
    out->batches = reg->batches;
    out->batched_changes = reg->batched_changes;
    pthread_mutex_unlock(&reg->work_lock);
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
    {
        int64_t deadline = e->lease_deadline_ns;
        unsigned lease_s = e->lease_s;
        pthread_mutex_unlock(&reg->index_lock);
        pthread_mutex_lock(&reg->buckets[t][b].lock);
        if (find_value(&reg->buckets[t][b].rec, ip) >= 0) {
            fill_placement(out, ip, b, reg->buckets[t][b].rec.weight, REG_STATE_REGISTERED);
            lease_fill(out, deadline, lease_s);
            rc = RC_OK;
        }
        pthread_mutex_unlock(&reg->buckets[t][b].lock);
    }
    return rc;
}

enum rc_code reg_set_lease(struct reg_registry *reg, const struct ip_addr *ip, unsigned seconds,
                           struct reg_placement *out)
{
    struct entry *e;
    pthread_mutex_lock(&reg->index_lock);
    e = *index_slot(reg, ip);
    if (!e || e->state != ENTRY_PRESENT) {
        pthread_mutex_unlock(&reg->index_lock);
        return RC_NOT_REGISTERED;
    }
    e->lease_s = seconds > REG_MAX_LEASE ? REG_MAX_LEASE : seconds;
    e->lease_deadline_ns = e->lease_s ? now_ns() + (int64_t)e->lease_s * 1000000000 : 0;
    pthread_mutex_unlock(&reg->index_lock);
    return reg_lookup(reg, ip, out);
}

enum rc_code reg_heartbeat(struct reg_registry *reg, const struct ip_addr *ip,
                           struct reg_placement *out)
{
    struct entry *e;
    pthread_mutex_lock(&reg->index_lock);
    e = *index_slot(reg, ip);
    if (!e || e->state != ENTRY_PRESENT || e->lease_expiring) {
        pthread_mutex_unlock(&reg->index_lock);
        return RC_NOT_REGISTERED;
    }
    if (!e->lease_s)
        e->lease_s = reg->opt.default_lease;
    e->lease_deadline_ns = e->lease_s ? now_ns() + (int64_t)e->lease_s * 1000000000 : 0;
    pthread_mutex_unlock(&reg->index_lock);
    return reg_lookup(reg, ip, out);
}

enum rc_code reg_wait_insync(struct reg_registry *reg, const char *change_id,
                             unsigned timeout_ms, char *detail, size_t n)
{
    if (!change_id || !*change_id)
        return RC_OK; /* nothing was changed */
    return reg->prov->ops->wait_insync(reg->prov, change_id, timeout_ms, detail, n);
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
