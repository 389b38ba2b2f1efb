/*
 * registry.c: buckets, assignment, per-bucket locks, the committer, leases and the health
 * reconciler.
 *
 * State: for each type (A, AAAA) REG_MAX_BUCKETS buckets, each three committed record sets
 * (enum reg_kind: served, down, draining; nvalues == 0: the set does not exist, see
 * docs/design-health.md); an index ip -> {bucket, set, state}; per-bucket reservation counts
 * that assignment reads.
 *
 * Lock order: a bucket lock, then the index lock, then (inside hc_engine_*) the checker's own
 * lock. The index lock is never held while waiting for a bucket lock or across a provider call;
 * a bucket lock is held across the provider call that changes that bucket in immediate mode,
 * but never across a sleep: the backoff between compare-and-swap rounds releases it.
 *
 * Invariants (whenever no lock is held):
 * - an index entry is PRESENT iff its IP is in one of the committed sets of its bucket, and
 *   `where` names that set;
 * - reserved[t][b] == committed values of bucket b's three sets + ADDING entries for b, so a
 *   backend that is down or draining keeps its place and always has room to come back;
 * - an IP is acknowledged only after the provider applied the change;
 * - one IP has at most one operation in flight: later ones wait (index_cond in immediate mode,
 *   the entry's waiters in group mode), so duplicate requests serialize and answer
 *   consistently.
 */
#include "registry/registry.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "registry/insync.h"
#include "registry/provider.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

enum entry_state { ENTRY_ADDING, ENTRY_PRESENT, ENTRY_REMOVING, ENTRY_MOVING };
#define AMBIGUOUS_MAX 256
enum transition { TRANS_NONE, TRANS_DOWN, TRANS_UP };

/* A queued mutation. */
struct intent {
    int64_t submitted_ns; /* CLOCK_MONOTONIC */
    enum reg_op op;
    struct ip_addr ip;
    unsigned bucket;
    unsigned rounds; /* compare-and-swap conflicts met so far */
    int created;     /* REG_OP_ADD of an IP that was not registered */
    int to_down;     /* REG_OP_ADD of a draining IP whose checks fail: back to the down set */
    int expiry;      /* REG_OP_REMOVE of an expired lease: only if it is still expired */
    int kind_after;  /* settling: the set holding the IP after the commit, -1: none */
    reg_done_fn done;
    void *arg;
    struct intent *next;
};

struct entry {
    struct ip_addr ip;
    unsigned bucket;
    enum entry_state state;
    enum reg_kind where; /* the set holding it (unless ADDING) */
    int64_t since_ms;    /* Unix ms it entered where, for down and draining */
    int64_t lease_deadline_ns; /* CLOCK_MONOTONIC; 0: no lease */
    unsigned lease_s;
    int lease_expiring; /* a removal for the expired lease is in flight */
    /* health checks */
    unsigned char checked;     /* handed to the checker */
    unsigned char health_down; /* the checker's verdict */
    unsigned char held;        /* its verdict is down but the fail-open guard keeps it served */
    unsigned char transition;  /* enum transition: a move for the verdict is in flight */
    unsigned char undrain_down; /* an undrain to the down set is in flight (counts as down) */
    unsigned char foreign_down; /* another writer put it in the down set while we ran */
    int64_t verdict_ns;        /* CLOCK_MONOTONIC of the latest verdict */
    int64_t streak_ms;         /* Unix ms of the first check of the streak behind it */
    int64_t retry_ns;          /* a failed move is retried from then on */
    int64_t lease_retry_ns;    /* a failed removal of an expired lease is retried from then on */
    struct intent *waiters; /* group commit: later operations on this IP, in order */
    struct entry *next;
};

struct bucket {
    pthread_mutex_t lock;
    /* guarded by lock */
    struct reg_record rec[REG_KINDS]; /* served, down, draining */
    unsigned long long changes; /* rec was installed or adopted this many times */
    int inflight; /* group commit: a batch holding this bucket's intents is being sent; the
                   * store may already hold it though rec does not yet */
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

    /* The maintainer thread: expires leases and moves backends to and from the down sets as
     * the checker's verdicts say (the reconciler). */
    pthread_t reaper;
    int reaper_started;
    pthread_mutex_t reaper_lock;
    pthread_cond_t reaper_cond;
    int reaper_stop; /* guarded by reaper_lock */
    int reaper_kick; /* guarded by reaper_lock: a verdict changed, look now */
    int64_t next_resync_ns; /* reaper thread */

    /* ?wait=insync (registry/insync.h): made in reg_create, destroyed in reg_destroy before
     * the provider. */
    struct reg_insync *insync;

    /* Health checks (may be NULL). Set before reg_load, destroyed in reg_destroy. */
    struct hc_engine *checker;
    int check_all;
    unsigned check_port;      /* the defaults' port, 0: none */
    unsigned check_interval_ms, check_timeout_ms; /* the defaults' */
    size_t held;              /* reaper thread: backends the guard keeps served */
    int64_t held_logged_ns;   /* reaper thread */

    /* Registrations whose store call failed in a way that may still have applied it (5xx,
     * timeout): where they were placed, so a retry goes to the same bucket (meeting itself in
     * one compare-and-swap, never placed twice) and an adoption of one gets its lease. A ring:
     * the oldest is forgotten first. Guarded by index_lock. */
    struct {
        struct ip_addr ip;
        unsigned bucket;
        int used;
    } ambiguous[AMBIGUOUS_MAX];
    size_t ambiguous_next;
};

/* ---- small helpers --------------------------------------------------------------------- */

const char *reg_type_name(enum reg_type type)
{
    return type == REG_A ? "A" : "AAAA";
}

const char *reg_kind_prefix(enum reg_kind kind)
{
    static const char *const prefixes[REG_KINDS] = {"", "_down.", "_draining."};
    return (unsigned)kind < REG_KINDS ? prefixes[kind] : "";
}

static const char *op_name(enum reg_op op)
{
    static const char *const names[] = {"add", "remove", "down", "up", "drain", "ensure"};
    return names[op];
}

static enum reg_state state_of(int kind)
{
    return kind == REG_KIND_DOWN       ? REG_STATE_DOWN
           : kind == REG_KIND_DRAINING ? REG_STATE_DRAINING
                                       : REG_STATE_REGISTERED;
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
    if (a->type != b->type || a->kind != b->kind || a->bucket != b->bucket ||
        a->weight != b->weight || a->ttl != b->ttl || a->nvalues != b->nvalues)
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

/* ---- a bucket's three sets ------------------------------------------------------------- */

/* The set of tr[REG_KINDS] holding ip, or -1. */
static int triple_find(const struct reg_record *tr, const struct ip_addr *ip)
{
    for (int k = 0; k < REG_KINDS; k++)
        if (find_value(&tr[k], ip) >= 0)
            return k;
    return -1;
}

static size_t triple_count(const struct reg_record *tr)
{
    return tr[0].nvalues + tr[1].nvalues + tr[2].nvalues;
}

static void triple_copy(struct reg_record *dst, const struct reg_record *src)
{
    for (int k = 0; k < REG_KINDS; k++)
        reg_record_copy(&dst[k], &src[k]);
}

static void triple_release(struct reg_record *tr)
{
    for (int k = 0; k < REG_KINDS; k++)
        reg_record_release(&tr[k]);
}

/* Does the store need a change to go from old to next? */
static int set_changed(const struct reg_record *old, const struct reg_record *next)
{
    if (!old->nvalues && !next->nvalues)
        return 0;
    return !old->nvalues || !next->nvalues || !reg_record_equal(old, next);
}

/* The changes turning old[] into next[] (at most REG_KINDS) into chg; returns their count and,
 * in *mask, which sets they touch. */
static size_t triple_changes(const struct reg_record *old, const struct reg_record *next,
                             struct reg_change *chg, unsigned *mask)
{
    size_t n = 0;
    *mask = 0;
    for (int k = 0; k < REG_KINDS; k++) {
        if (!set_changed(&old[k], &next[k]))
            continue;
        chg[n].old = old[k].nvalues ? &old[k] : NULL;
        chg[n].new = next[k].nvalues ? &next[k] : NULL;
        *mask |= 1u << k;
        n++;
    }
    return n;
}

/* Build old +/- ip into out (a fresh record with old's identity, weight and TTL). */
static void record_with(const struct reg_record *old, const struct ip_addr *ip, int add,
                        struct reg_record *out)
{
    long pos = find_value(old, ip);
    size_t n;

    if ((pos >= 0) == !!add) { /* already so: never index with a missing slot */
        reg_record_copy(out, old);
        return;
    }
    n = old->nvalues + (add ? 1 : 0) - (add ? 0 : 1);
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
}

/* Apply in to tr[] in place; returns the sets it changed (a bit per kind). An address held by
 * more than one set (written so by another tool) is judged by the first holding it and left
 * in the one set it belongs in. */
static unsigned apply_op(struct reg_record *tr, const struct intent *in)
{
    const struct ip_addr *ip = &in->ip;
    int from = triple_find(tr, ip), to = from, held = 0;
    unsigned mask = 0;
    struct reg_record tmp;

    switch (in->op) {
    case REG_OP_ADD: /* a draining backend registered again returns to service */
        to = from < 0                     ? REG_KIND_SERVED
             : from != REG_KIND_DRAINING ? from
             : in->to_down               ? REG_KIND_DOWN
                                         : REG_KIND_SERVED;
        break;
    case REG_OP_ENSURE:
        to = from < 0 ? REG_KIND_SERVED : from;
        break;
    case REG_OP_REMOVE:
        to = -1;
        break;
    case REG_OP_DOWN:
        to = from == REG_KIND_SERVED ? REG_KIND_DOWN : from;
        break;
    case REG_OP_UP:
        to = from == REG_KIND_DOWN ? REG_KIND_SERVED : from;
        break;
    case REG_OP_DRAIN:
        to = from < 0 ? -1 : REG_KIND_DRAINING;
        break;
    }
    for (int k = 0; k < REG_KINDS; k++)
        held += find_value(&tr[k], ip) >= 0;
    if (to == from && held <= 1)
        return 0;
    for (int k = 0; k < REG_KINDS; k++) {
        int has = find_value(&tr[k], ip) >= 0;
        if (has == (k == to))
            continue;
        record_with(&tr[k], ip, !has, &tmp);
        reg_record_release(&tr[k]);
        tr[k] = tmp;
        mask |= 1u << k;
    }
    return mask;
}

/* The sets of rec[] with every intent applied, in order, into out[]. Sets whose values
 * changed get the configured TTL, and the weight: the served set's follows its values, the
 * others are 0. */
static void apply_intents(const struct reg_registry *reg, const struct reg_record *rec,
                          const struct intent *in, struct reg_record *out)
{
    unsigned mask = 0;
    triple_copy(out, rec);
    for (; in; in = in->next)
        mask |= apply_op(out, in);
    for (int k = 0; k < REG_KINDS; k++)
        if (mask & (1u << k)) {
            out[k].weight = k == REG_KIND_SERVED ? reg_weight_for(&reg->opt, out[k].nvalues) : 0;
            out[k].ttl = reg->opt.ttl;
        }
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
    e->where = REG_KIND_SERVED;
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

/* The detail of RC_NOT_REGISTERED, for both commit modes. */
static void say_not_registered(const struct ip_addr *ip, char *detail, size_t n)
{
    char txt[IP_TEXT_MAX];
    rc_detail(detail, n, "%s is not registered", ip_format(ip, txt));
}

/* Choose a bucket for a new ip; caller holds index_lock. Returns -1 when all are full. */
/* ---- registrations of unknown outcome (caller holds index_lock) ------------------------ */

static long ambiguous_find(const struct reg_registry *reg, const struct ip_addr *ip)
{
    for (size_t i = 0; i < AMBIGUOUS_MAX; i++)
        if (reg->ambiguous[i].used && !ip_cmp(&reg->ambiguous[i].ip, ip))
            return (long)i;
    return -1;
}

/* The failed intents that created an entry and may have been applied anyway: remember where. */
static void ambiguous_note(struct reg_registry *reg, const struct intent *intents,
                           enum rc_code rc)
{
    if (rc != RC_UNAVAILABLE && rc != RC_UPSTREAM_TIMEOUT && rc != RC_SHUTTING_DOWN)
        return;
    for (const struct intent *in = intents; in; in = in->next) {
        long i;
        if (!in->created)
            continue;
        i = ambiguous_find(reg, &in->ip);
        if (i < 0) {
            i = (long)reg->ambiguous_next;
            reg->ambiguous_next = (reg->ambiguous_next + 1) % AMBIGUOUS_MAX;
        }
        reg->ambiguous[i].ip = in->ip;
        reg->ambiguous[i].bucket = in->bucket;
        reg->ambiguous[i].used = 1;
    }
}

/* Is ip remembered? Forgets it; *bucket: where it was placed. */
static int ambiguous_take(struct reg_registry *reg, const struct ip_addr *ip, unsigned *bucket)
{
    long i = ambiguous_find(reg, ip);
    if (i < 0)
        return 0;
    reg->ambiguous[i].used = 0;
    *bucket = reg->ambiguous[i].bucket;
    return 1;
}

static int choose_bucket(struct reg_registry *reg, const struct ip_addr *ip)
{
    enum reg_type t = reg_type_of(ip);
    unsigned *res = reg->reserved[t], again;

    /* A retry of a registration that may have landed: the same bucket, if it has room. */
    if (ambiguous_take(reg, ip, &again) && again < reg->opt.buckets &&
        res[again] < reg->opt.max_per_bucket)
        return (int)again;
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

/* ---- time ------------------------------------------------------------------------------- */

static int64_t now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static int64_t wall_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* ---- metrics (process-wide families; gauges follow the latest registry) ---------------- */

static struct metrics_counter_family *m_batches, *m_outcomes, *m_conflicts, *m_fail_open;
static struct metrics_histogram_family *m_batch_changes, *m_batch_elements, *m_commit_latency,
    *m_detect_to_dns, *m_failure_to_dns;

static double queued_value(void *arg)
{
    struct reg_registry *reg = arg;
    double v;
    pthread_mutex_lock(&reg->work_lock);
    v = (double)reg->queued;
    pthread_mutex_unlock(&reg->work_lock);
    return v;
}

static double count_where(struct reg_registry *reg, enum reg_kind kind)
{
    size_t n = 0;
    pthread_mutex_lock(&reg->index_lock);
    for (size_t i = 0; i < reg->table_size; i++)
        for (struct entry *e = reg->table[i]; e; e = e->next)
            n += e->state != ENTRY_ADDING && e->where == kind;
    pthread_mutex_unlock(&reg->index_lock);
    return (double)n;
}

static double served_value(void *arg)
{
    return count_where(arg, REG_KIND_SERVED);
}

static double down_value(void *arg)
{
    return count_where(arg, REG_KIND_DOWN);
}

static double draining_value(void *arg)
{
    return count_where(arg, REG_KIND_DRAINING);
}

static double held_value(void *arg)
{
    struct reg_registry *reg = arg;
    size_t n = 0;
    pthread_mutex_lock(&reg->index_lock);
    for (size_t i = 0; i < reg->table_size; i++)
        for (struct entry *e = reg->table[i]; e; e = e->next)
            n += e->held;
    pthread_mutex_unlock(&reg->index_lock);
    return (double)n;
}

static const struct {
    const char *name, *help;
    double (*fn)(void *);
} gauges[] = {
    {"r53reg_commit_queue_depth", "Mutations queued for the committer, not yet sent",
     queued_value},
    {"r53reg_backends_served", "Registered backends in DNS", served_value},
    {"r53reg_backends_down", "Registered backends taken out of DNS by health checks",
     down_value},
    {"r53reg_backends_draining", "Registered backends taken out of DNS by a drain",
     draining_value},
    {"r53reg_health_fail_open_held",
     "Backends failing their checks that the fail-open guard (--max-down-share) keeps in DNS",
     held_value},
};

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
    m_fail_open = metrics_counter_create(mr, "r53reg_health_fail_open_total",
                                         "Times the fail-open guard started keeping failing "
                                         "backends in DNS",
                                         NULL);
    m_batch_changes = metrics_histogram_create(mr, "r53reg_commit_batch_buckets",
                                               "Record set changes per store call", NULL,
                                               changes_bounds, 8);
    m_batch_elements = metrics_histogram_create(mr, "r53reg_commit_batch_elements",
                                                "ResourceRecord elements per store call "
                                                "(DELETE + CREATE values)",
                                                NULL, elements_bounds, 8);
    m_commit_latency = metrics_histogram_create(mr, "r53reg_commit_latency_seconds",
                                                "Time from a mutation's submission to its "
                                                "commit (or failure)",
                                                NULL, latency_bounds, 14);
    m_detect_to_dns = metrics_histogram_create(mr, "r53reg_health_detection_to_dns_seconds",
                                               "Time from a checker's verdict (down or up) to "
                                               "the store holding the backend in its new set",
                                               NULL, latency_bounds, 14);
    m_failure_to_dns = metrics_histogram_create(
        mr, "r53reg_health_failure_to_dns_seconds",
        "Time from the first failing check of the streak that took a backend down (the first "
        "passing one, for a recovery) to the store holding it in its new set",
        NULL, latency_bounds, 14);
    for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++)
        metrics_gauge_func(mr, gauges[i].name, gauges[i].help, gauges[i].fn, reg);
}

static void metrics_detach(void)
{
    for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++)
        metrics_gauge_func(metrics_default(), gauges[i].name, "", NULL, NULL);
}

static void count_outcome(enum reg_op op, int64_t submitted_ns, enum rc_code rc)
{
    if (!m_outcomes)
        return;
    metrics_counter_inc(metrics_counter_with(m_outcomes, op_name(op), rc_slug(rc)));
    if (submitted_ns)
        metrics_histogram_observe(metrics_histogram_child(m_commit_latency),
                                  (double)(now_ns() - submitted_ns) / 1e9);
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

/* A sign of life (heartbeat, registration, lease change): the lease, if any (or the default),
 * runs from now, and an expiry the reaper found but has not removed yet is called off (the
 * removal, once admitted, sees lease_expiring clear and keeps the backend). Caller holds
 * index_lock. */
static void lease_renew(struct reg_registry *reg, struct entry *e)
{
    if (!e->lease_s)
        e->lease_s = reg->opt.default_lease;
    e->lease_deadline_ns = e->lease_s ? now_ns() + (int64_t)e->lease_s * 1000000000 : 0;
    e->lease_expiring = 0;
    e->lease_retry_ns = 0;
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

/* ---- the checker's side of the index (caller holds index_lock) -------------------------- */

/* Hand a backend that just became present to the checker (when every backend is checked). */
static void checker_add(struct reg_registry *reg, struct entry *e)
{
    if (!reg->checker || !reg->check_all || e->checked)
        return;
    if (hc_engine_add_as(reg->checker, &e->ip, NULL, e->where != REG_KIND_DOWN) == RC_OK) {
        e->checked = 1;
        e->health_down = e->where == REG_KIND_DOWN;
    }
}

/* A backend leaves the index: stop checking it, then drop its entry and its place. */
static void drop_entry(struct reg_registry *reg, struct entry *e)
{
    enum reg_type t = reg_type_of(&e->ip);
    unsigned b = e->bucket;
    if (e->checked)
        hc_engine_remove(reg->checker, &e->ip);
    index_remove(reg, &e->ip);
    reg->reserved[t][b]--;
}

/* The entry now lives in set kind. */
static void entry_moved(struct entry *e, int kind)
{
    if (kind != REG_KIND_DOWN)
        e->foreign_down = 0;
    if (e->where == (enum reg_kind)kind)
        return;
    e->where = (enum reg_kind)kind;
    e->since_ms = kind == REG_KIND_SERVED ? 0 : wall_ms();
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static void *committer_main(void *arg);
static void *reaper_main(void *arg);

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

/* The insync waiter's look at a change: one change_status() of the provider. */
static enum rc_code insync_look(void *prov, const char *change_id, int *insync, char *detail,
                                size_t n)
{
    struct reg_provider *p = prov;
    return p->ops->change_status(p, change_id, insync, detail, n);
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
            struct bucket *bk = &reg->buckets[t][b];
            pthread_mutex_init(&bk->lock, NULL);
            for (int k = 0; k < REG_KINDS; k++) {
                bk->rec[k].type = (enum reg_type)t;
                bk->rec[k].kind = (enum reg_kind)k;
                bk->rec[k].bucket = b;
            }
            bk->queue_tail = &bk->queue;
        }
    pthread_mutex_init(&reg->index_lock, NULL);
    pthread_cond_init(&reg->index_cond, NULL);
    pthread_mutex_init(&reg->work_lock, NULL);
    pthread_cond_init(&reg->work_cond, NULL);
    pthread_mutex_init(&reg->reaper_lock, NULL);
    pthread_cond_init(&reg->reaper_cond, NULL);
    reg->dirty_tail = &reg->dirty_head;
    reg->table_size = 1024;
    reg->table = xcalloc(reg->table_size, sizeof(*reg->table));
    {
        struct reg_insync_options io = {.max_polls_per_s = prov ? prov->status_rate : 0};
        reg->insync = reg_insync_create(prov ? insync_look : NULL, prov, &io);
    }
    return reg;
}

void reg_set_checker(struct reg_registry *reg, struct hc_engine *engine, int check_all,
                     const struct hc_check *defaults)
{
    reg->checker = engine;
    reg->check_all = engine && check_all;
    reg->check_port = defaults ? defaults->port : 0;
    reg->check_interval_ms = defaults && defaults->interval_ms ? defaults->interval_ms
                                                               : HC_DEFAULT_INTERVAL_MS;
    reg->check_timeout_ms = defaults && defaults->timeout_ms ? defaults->timeout_ms
                                                             : HC_DEFAULT_TIMEOUT_MS;
}

void reg_destroy(struct reg_registry *reg)
{
    if (!reg)
        return;
    if (atomic_load(&reg->loaded))
        metrics_detach();
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
    /* After the committer (its last completions may still start waits), before the provider
     * (a poll in flight uses it): answers the waits still pending. */
    reg_insync_destroy(reg->insync);
    /* Settling above may still have added or removed targets; no verdict matters now. */
    hc_engine_destroy(reg->checker);
    for (int t = 0; t < 2; t++)
        for (unsigned b = 0; b < REG_MAX_BUCKETS; b++) {
            triple_release(reg->buckets[t][b].rec);
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
    size_t nrecs = 0, dups = 0, nk[REG_KINDS] = {0};
    enum rc_code rc = reg->prov->ops->load(reg->prov, &recs, &nrecs, detail, n);
    if (rc)
        goto out;
    for (size_t i = 0; i < nrecs; i++) {
        struct reg_record *r = &recs[i];
        if (r->bucket >= REG_MAX_BUCKETS || r->nvalues == 0 || (unsigned)r->kind >= REG_KINDS)
            continue; /* providers filter these; belt and braces */
        struct bucket *bk = &reg->buckets[r->type][r->bucket];
        struct reg_record *slot = &bk->rec[r->kind];
        pthread_mutex_lock(&bk->lock);
        pthread_mutex_lock(&reg->index_lock);
        reg->reserved[r->type][r->bucket] -= (unsigned)slot->nvalues;
        reg_record_release(slot);
        *slot = *r;
        r->values = NULL;
        r->nvalues = 0;
        reg->reserved[slot->type][slot->bucket] += (unsigned)slot->nvalues;
        for (size_t v = 0; v < slot->nvalues; v++) {
            struct entry *e;
            if (*index_slot(reg, &slot->values[v])) {
                char ip[IP_TEXT_MAX];
                log_warn("msg=\"IP found in two record sets; it is kept in the first\" ip=%s "
                         "bucket=%u set=%s",
                         ip_format(&slot->values[v], ip), slot->bucket,
                         slot->kind == REG_KIND_SERVED ? "served"
                         : slot->kind == REG_KIND_DOWN ? "down"
                                                       : "draining");
                dups++;
                continue;
            }
            e = index_insert(reg, &slot->values[v], slot->bucket, ENTRY_PRESENT);
            entry_moved(e, (int)slot->kind);
            lease_start(reg, e);
            checker_add(reg, e);
            nk[slot->kind]++;
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
    log_info("msg=loaded provider=%s records=%zu backends=%zu served=%zu down=%zu draining=%zu "
             "duplicates=%zu",
             reg->prov->ops->name, nrecs, reg->count, nk[REG_KIND_SERVED], nk[REG_KIND_DOWN],
             nk[REG_KIND_DRAINING], dups);
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

/* ---- mutations: shared by both commit modes -------------------------------------------- */

static void log_change(const struct reg_registry *reg, enum reg_op op, const struct ip_addr *ip,
                       const struct bucket *bk)
{
    char ipt[IP_TEXT_MAX], sid[REG_SET_ID_MAX + 1];
    const struct reg_record *rec = bk->rec;
    reg_set_id(&reg->opt, rec[0].bucket, sid, sizeof(sid));
    log_info("msg=store_change op=%s ip=%s type=%s set_id=%s count=%zu weight=%u down=%zu "
             "draining=%zu",
             op_name(op), ip_format(ip, ipt), reg_type_name(rec[0].type), sid, rec[0].nvalues,
             rec[0].weight, rec[REG_KIND_DOWN].nvalues, rec[REG_KIND_DRAINING].nvalues);
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

/* ---- the fail-open guard ------------------------------------------------------------- */

/* Does e count among the backends the guard judges (registered, not draining), and is it in
 * the down set or on its way there? */
static int guard_counts(const struct entry *e, int *down)
{
    *down = e->where == REG_KIND_DOWN || e->transition == TRANS_DOWN || e->undrain_down;
    return e->state != ENTRY_ADDING && (e->where != REG_KIND_DRAINING || e->undrain_down);
}

/* May one more backend of type t go to the down set, one now draining (extra: 1) or one
 * served (extra: 0)? The share --max-down-share allows, as reconcile() counts. Caller holds
 * index_lock. */
static int guard_allows_down(const struct reg_registry *reg, enum reg_type t, unsigned extra)
{
    size_t total = extra, down = 0;
    double share = reg->opt.max_down_share;
    if (share >= 1)
        return 1;
    for (size_t i = 0; i < reg->table_size; i++)
        for (const struct entry *e = reg->table[i]; e; e = e->next) {
            int d;
            if (reg_type_of(&e->ip) == t && guard_counts(e, &d)) {
                total++;
                down += (size_t)d;
            }
        }
    return (double)(down + 1) <= share * (double)total;
}

enum admission { ADMIT_ANSWERED, ADMIT_QUEUE, ADMIT_AS_IS };

/*
 * Decide what in needs, given e, the IP's settled entry (or NULL). ADMIT_QUEUE: in->bucket is
 * set and the entry marked in flight (a new one inserted for an ADD): the change must be
 * committed. ADMIT_ANSWERED: res holds the answer (unknown IP, buckets full). ADMIT_AS_IS: the
 * IP already is where in wants it: answer with its placement (answer_as_is). Caller holds
 * index_lock.
 */
static enum admission admit(struct reg_registry *reg, struct intent *in, struct entry *e,
                            struct reg_result *res)
{
    enum reg_type t = reg_type_of(&in->ip);

    if (!e && (in->op == REG_OP_ADD || in->op == REG_OP_ENSURE)) {
        int b = choose_bucket(reg, &in->ip);
        if (b < 0) {
            res->rc = RC_BUCKETS_FULL;
            say_full(reg, t, res->detail, sizeof(res->detail));
            return ADMIT_ANSWERED;
        }
        index_insert(reg, &in->ip, (unsigned)b, ENTRY_ADDING);
        reg->reserved[t][b]++;
        in->bucket = (unsigned)b;
        in->created = 1;
        return ADMIT_QUEUE;
    }
    if (!e) {
        res->rc = RC_NOT_REGISTERED;
        say_not_registered(&in->ip, res->detail, sizeof(res->detail));
        return ADMIT_ANSWERED;
    }
    in->bucket = e->bucket;
    switch (in->op) {
    case REG_OP_ADD:
        lease_renew(reg, e); /* registering again is a sign of life */
        if (e->where != REG_KIND_DRAINING)
            return ADMIT_AS_IS;
        /* Back to the down set when its checks fail, unless the fail-open guard would keep
         * it served: then it returns to service and the reconciler holds it there. */
        in->to_down = e->checked && e->health_down && guard_allows_down(reg, t, 1);
        e->undrain_down = (unsigned char)in->to_down;
        break;
    case REG_OP_ENSURE:
        return ADMIT_AS_IS;
    case REG_OP_REMOVE:
        if (in->expiry && !e->lease_expiring)
            return ADMIT_AS_IS; /* renewed since the reaper saw it expired: it stays */
        e->state = ENTRY_REMOVING;
        return ADMIT_QUEUE;
    case REG_OP_DOWN:
        if (e->where != REG_KIND_SERVED)
            return ADMIT_AS_IS;
        break;
    case REG_OP_UP:
        if (e->where != REG_KIND_DOWN)
            return ADMIT_AS_IS;
        break;
    case REG_OP_DRAIN:
        if (e->where == REG_KIND_DRAINING)
            return ADMIT_AS_IS;
        break;
    }
    e->state = ENTRY_MOVING;
    return ADMIT_QUEUE;
}

/* ADMIT_AS_IS: report where the IP is. 0 when it vanished meanwhile (adopted away by another
 * writer's change): the caller starts over. An entry still settled in this bucket though none
 * of its sets holds the IP contradicts the committed sets, which are the truth: it leaves the
 * index, so starting over cannot meet it again. */
static int answer_as_is(struct reg_registry *reg, struct intent *in, struct reg_result *res)
{
    struct bucket *bk = &reg->buckets[reg_type_of(&in->ip)][in->bucket];
    int k;
    pthread_mutex_lock(&bk->lock);
    k = triple_find(bk->rec, &in->ip);
    if (k >= 0) {
        res->rc = RC_OK;
        fill_placement(&res->placement, &in->ip, in->bucket, bk->rec[REG_KIND_SERVED].weight,
                       state_of(k));
    } else {
        struct entry *e;
        pthread_mutex_lock(&reg->index_lock);
        e = *index_slot(reg, &in->ip);
        if (e && e->state == ENTRY_PRESENT && e->bucket == in->bucket) {
            char txt[IP_TEXT_MAX];
            log_warn("msg=\"index entry without a record; dropped\" ip=%s bucket=%u",
                     ip_format(&in->ip, txt), in->bucket);
            drop_entry(reg, e);
            pthread_cond_broadcast(&reg->index_cond);
        }
        pthread_mutex_unlock(&reg->index_lock);
    }
    pthread_mutex_unlock(&bk->lock);
    return k >= 0;
}

/*
 * admit() and answer what needs no commit. Caller holds index_lock; it is released. Returns 1
 * when in must be committed (in->bucket set); 0 when it was answered, or started over through
 * again() because an adopt removed the IP meanwhile.
 */
static int admit_or_answer(struct reg_registry *reg, struct intent *in, struct entry *e,
                           void (*again)(struct reg_registry *, struct intent *))
{
    struct reg_result res;
    enum admission a;

    memset(&res, 0, sizeof(res));
    a = admit(reg, in, e, &res);
    pthread_mutex_unlock(&reg->index_lock);
    if (a == ADMIT_QUEUE)
        return 1;
    if (a == ADMIT_ANSWERED || answer_as_is(reg, in, &res))
        finish(in, &res);
    else
        again(reg, in);
    return 0;
}

/*
 * Settle the index entries of intents (a list) of bucket bk after their commit (committed) or
 * failure: each entry follows what bk's committed sets now hold, which is what the store holds
 * (a failure may have adopted another writer's change). An IP in one of the sets is PRESENT
 * there; an IP in none leaves the index. Records each intent's kind_after. Returns the
 * operations that waited on those IPs, in order, for the caller to resubmit once no lock is
 * held. Caller holds bk->lock and index_lock.
 */
static struct intent *settle_entries(struct reg_registry *reg, struct bucket *bk,
                                     struct intent *intents, int committed)
{
    struct intent *waiters = NULL, **wtail = &waiters;
    int64_t now = now_ns();

    for (struct intent *in = intents; in; in = in->next) {
        struct entry *e = *index_slot(reg, &in->ip);
        in->kind_after = triple_find(bk->rec, &in->ip);
        if (!e)
            continue;
        e->undrain_down = 0;
        if (e->waiters) {
            *wtail = e->waiters;
            while (*wtail)
                wtail = &(*wtail)->next;
            e->waiters = NULL;
        }
        if (in->kind_after < 0) {
            drop_entry(reg, e); /* removed, or its addition rolled back */
            continue;
        }
        if (e->state == ENTRY_ADDING) {
            e->state = ENTRY_PRESENT;
            entry_moved(e, in->kind_after);
            if (committed)
                lease_start(reg, e);
            checker_add(reg, e);
            continue;
        }
        e->state = ENTRY_PRESENT;
        if (committed && e->verdict_ns && e->where != (enum reg_kind)in->kind_after &&
            (in->op == REG_OP_DOWN || in->op == REG_OP_UP) && m_detect_to_dns) {
            metrics_histogram_observe(metrics_histogram_child(m_detect_to_dns),
                                      (double)(now - e->verdict_ns) / 1e9);
            if (e->streak_ms)
                metrics_histogram_observe(metrics_histogram_child(m_failure_to_dns),
                                          (double)(wall_ms() - e->streak_ms) / 1e3);
        }
        entry_moved(e, in->kind_after);
    }
    return waiters;
}

/* The answer to a settled intent (kind_after set by settle_entries), with the bucket's served
 * weight after the commit. */
static void result_of(const struct intent *in, unsigned weight, const char *change_id,
                      struct reg_result *res)
{
    memset(res, 0, sizeof(*res));
    if (in->op != REG_OP_REMOVE && in->kind_after < 0) {
        char txt[IP_TEXT_MAX];
        res->rc = RC_NOT_REGISTERED;
        rc_detail(res->detail, sizeof(res->detail),
                  "%s is not registered (another writer removed it meanwhile)",
                  ip_format(&in->ip, txt));
        return;
    }
    res->created = in->created;
    fill_placement(&res->placement, &in->ip, in->bucket, weight,
                   in->op == REG_OP_REMOVE ? REG_STATE_DEREGISTERED : state_of(in->kind_after));
    snprintf(res->placement.change_id, sizeof(res->placement.change_id), "%s", change_id);
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

/* Full-jitter pause before compare-and-swap round `rounds` + 1 (no lock may be held). */
static void backoff(unsigned rounds)
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
static void adopt(struct reg_registry *reg, struct bucket *bk, struct reg_record *fresh,
                  unsigned mask)
{
    enum reg_type t = bk->rec[0].type;
    unsigned b = bk->rec[0].bucket;
    struct reg_record now[REG_KINDS];
    size_t dropped = 0, added = 0, moved = 0, before = triple_count(bk->rec);
    char sid[REG_SET_ID_MAX + 1];

    for (int k = 0; k < REG_KINDS; k++)
        now[k] = mask & (1u << k) ? fresh[k] : bk->rec[k];
    pthread_mutex_lock(&reg->index_lock);
    for (int k = 0; k < REG_KINDS; k++)
        for (size_t i = 0; i < bk->rec[k].nvalues; i++) {
            struct entry *e;
            if (triple_find(now, &bk->rec[k].values[i]) >= 0)
                continue;
            e = *index_slot(reg, &bk->rec[k].values[i]);
            if (e && e->state == ENTRY_PRESENT && e->bucket == b) {
                drop_entry(reg, e);
                dropped++;
            }
        }
    for (int k = 0; k < REG_KINDS; k++)
        for (size_t i = 0; i < now[k].nvalues; i++) {
            struct entry *e;
            if (triple_find(now, &now[k].values[i]) != k)
                continue; /* also in an earlier set: that one counts (apply_op agrees) */
            e = *index_slot(reg, &now[k].values[i]);
            if (!e) {
                /* No lease: another writer registered it, and its heartbeats go there. A
                 * heartbeat reaching this replica starts one (reg_heartbeat). */
                unsigned where;
                e = index_insert(reg, &now[k].values[i], b, ENTRY_PRESENT);
                entry_moved(e, k);
                e->foreign_down = k == REG_KIND_DOWN;
                if (ambiguous_take(reg, &e->ip, &where))
                    lease_start(reg, e); /* our own registration after all */
                reg->reserved[t][b]++;
                checker_add(reg, e);
                added++;
            } else if (e->state == ENTRY_PRESENT && e->bucket == b && e->where != (unsigned)k) {
                entry_moved(e, k);
                e->foreign_down = k == REG_KIND_DOWN;
                moved++;
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
    reg_set_id(&reg->opt, b, sid, sizeof(sid));
    log_warn("msg=\"record changed underneath; adopted what the store holds\" type=%s "
             "set_id=%s count_before=%zu count_after=%zu adopted=%zu dropped=%zu moved=%zu",
             reg_type_name(t), sid, before, triple_count(bk->rec), added, dropped, moved);
    bump_generation(reg);
}

/* Does fresh[k] (for the kinds in have) differ from bk's sets in a way a move by another
 * writer explains: an address left a set read, or one read gained an address that a set not
 * read holds? Then the sets not read are stale too. */
static int moved_across(const struct bucket *bk, const struct reg_record *fresh, unsigned have)
{
    for (int k = 0; k < REG_KINDS; k++) {
        if (!(have & (1u << k)))
            continue;
        for (size_t i = 0; i < bk->rec[k].nvalues; i++)
            if (find_value(&fresh[k], &bk->rec[k].values[i]) < 0)
                return 1;
        for (size_t i = 0; i < fresh[k].nvalues; i++)
            for (int j = 0; j < REG_KINDS; j++)
                if (!(have & (1u << j)) && find_value(&bk->rec[j], &fresh[k].values[i]) >= 0)
                    return 1;
    }
    return 0;
}

#define ALL_KINDS ((1u << REG_KINDS) - 1)

/*
 * The three sets of a bucket are read one after another (a rate-limited call each), served,
 * then down, then draining. Another writer's move between two reads can hide an address: one
 * moved from down to served after the served set was read shows in neither. Given old[] and
 * fresh[] read in that order, the sets such a move could have hidden an address that left
 * old[] in: those read before the last set that lost one. 0: every address in none of fresh[]
 * was really removed (an address that left the served set cannot hide anywhere).
 */
static unsigned hiding_sets(const struct reg_record *old, const struct reg_record *fresh)
{
    int last = 0;
    for (int k = 1; k < REG_KINDS; k++)
        for (size_t i = 0; i < old[k].nvalues; i++)
            if (triple_find(fresh, &old[k].values[i]) < 0)
                last = k;
    return (1u << last) - 1;
}

/* Does old[] hold an address that none of fresh[] holds? */
static int vanished_from_all(const struct reg_record *old, const struct reg_record *fresh)
{
    for (int k = 0; k < REG_KINDS; k++)
        for (size_t i = 0; i < old[k].nvalues; i++)
            if (triple_find(fresh, &old[k].values[i]) < 0)
                return 1;
    return 0;
}

/* The sets of fresh[] that differ from bk's (a bit per kind). Caller holds bk->lock. */
static unsigned changed_sets(const struct bucket *bk, const struct reg_record *fresh)
{
    unsigned mask = 0;
    for (int k = 0; k < REG_KINDS; k++)
        if (set_changed(&bk->rec[k], &fresh[k]))
            mask |= 1u << k;
    return mask;
}

/* Read the three sets of type t, bucket b into fresh[], in kind order (no lock needed). */
static enum rc_code read_bucket(struct reg_registry *reg, enum reg_type t, unsigned b,
                                struct reg_record *fresh, char *detail, size_t n)
{
    enum rc_code rc = RC_OK;
    memset(fresh, 0, REG_KINDS * sizeof(*fresh));
    for (int k = 0; k < REG_KINDS && rc == RC_OK; k++)
        rc = reg->prov->ops->reload(reg->prov, t, (enum reg_kind)k, b, &fresh[k], detail, n);
    return rc;
}

/* Read the sets in mask of bk afresh and adopt them. When another writer moved an address
 * between a set read and one not read (it vanished from a set read, or a set read gained one
 * another set holds), read the others too: a moved backend is never taken for a removed one,
 * and an address never ends up in two sets. Caller holds bk->lock. */
static enum rc_code reload_and_adopt(struct reg_registry *reg, struct bucket *bk, unsigned mask,
                                     char *detail, size_t n)
{
    struct reg_record fresh[REG_KINDS];
    enum rc_code rc = RC_OK;
    unsigned want = mask, have = 0;

    memset(fresh, 0, sizeof(fresh));
    while (rc == RC_OK && want != have) {
        for (int k = 0; k < REG_KINDS && rc == RC_OK; k++)
            if ((want & ~have) & (1u << k)) {
                rc = reg->prov->ops->reload(reg->prov, bk->rec[0].type, (enum reg_kind)k,
                                            bk->rec[0].bucket, &fresh[k], detail, n);
                have |= 1u << k;
            }
        if (rc == RC_OK && moved_across(bk, fresh, have))
            want = (1u << REG_KINDS) - 1;
    }
    /*
     * Before dropping an address that is in none of the sets read, rule out a move hidden
     * between two reads (hiding_sets): read all three once more, in order, and take that.
     * Reads not made in kind order (a partial read widened by moved_across) always are.
     */
    if (rc == RC_OK && have == ALL_KINDS &&
        (mask == ALL_KINDS ? hiding_sets(bk->rec, fresh) != 0
                           : vanished_from_all(bk->rec, fresh))) {
        triple_release(fresh);
        rc = read_bucket(reg, bk->rec[0].type, bk->rec[0].bucket, fresh, detail, n);
    }
    if (rc == RC_OK)
        adopt(reg, bk, fresh, have);
    triple_release(fresh);
    return rc;
}

/* The committed sets of bk become next[] (taking its values). Caller holds bk->lock. */
static void install(struct reg_registry *reg, struct bucket *bk, struct reg_record *next)
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
    bump_generation(reg);
}

/* ---- immediate mode: one store call per mutation, on the caller's thread --------------- */

/*
 * Commit in alone as a compare-and-swap of bk's sets; on a conflict adopt what the store holds
 * and try again on top of it. Caller holds bk->lock. On RC_OK bk's sets are what the store now
 * holds.
 */
static enum rc_code commit_now(struct reg_registry *reg, struct bucket *bk, struct intent *in,
                               char *change_id, char *detail, size_t n)
{
    enum rc_code rc = RC_OK;

    for (unsigned round = 0;; round++) {
        struct reg_record next[REG_KINDS];
        struct reg_change chg[REG_KINDS];
        unsigned mask;
        size_t nchg;

        if (in->created && triple_find(bk->rec, &in->ip) < 0 &&
            triple_count(bk->rec) >= reg->opt.max_per_bucket) {
            rc_detail(detail, n, "the bucket filled up through another writer; retry");
            return RC_CONFLICT;
        }
        apply_intents(reg, bk->rec, in, next);
        nchg = triple_changes(bk->rec, next, chg, &mask);
        if (!nchg) {
            triple_release(next); /* already so: done by another writer, or a lost answer */
            return RC_OK;
        }
        rc = reg->prov->ops->apply(reg->prov, chg, nchg, change_id, detail, n);
        if (rc == RC_OK) {
            install(reg, bk, next);
            return RC_OK;
        }
        triple_release(next);
        if (rc != RC_CONFLICT || round + 1 == CONFLICT_ROUNDS)
            return rc;
        if (round >= 1) {
            /* A hot contender (another replica's pipeline) can win every race: back off
             * without holding the bucket lock while asleep. */
            pthread_mutex_unlock(&bk->lock);
            backoff(round);
            pthread_mutex_lock(&bk->lock);
        }
        rc = reload_and_adopt(reg, bk, mask, detail, n);
        if (rc)
            return rc;
    }
}

static void run_now(struct reg_registry *reg, struct intent *in)
{
    struct reg_result res;
    char change_id[REG_CHANGE_ID_MAX] = "";
    struct bucket *bk;
    enum rc_code rc;
    unsigned weight;

    memset(&res, 0, sizeof(res));
    pthread_mutex_lock(&reg->index_lock);
    if (!admit_or_answer(reg, in, settled_entry(reg, &in->ip), run_now))
        return;

    bk = &reg->buckets[reg_type_of(&in->ip)][in->bucket];
    in->next = NULL;
    pthread_mutex_lock(&bk->lock);
    rc = commit_now(reg, bk, in, change_id, res.detail, sizeof(res.detail));
    pthread_mutex_lock(&reg->index_lock);
    settle_entries(reg, bk, in, rc == RC_OK);
    if (rc != RC_OK)
        ambiguous_note(reg, in, rc);
    pthread_cond_broadcast(&reg->index_cond);
    pthread_mutex_unlock(&reg->index_lock);
    weight = bk->rec[REG_KIND_SERVED].weight;
    if (rc == RC_OK)
        log_change(reg, in->op, &in->ip, bk);
    pthread_mutex_unlock(&bk->lock);
    if (rc == RC_OK) {
        result_of(in, weight, change_id, &res);
    } else {
        res.rc = rc;
        res.placement.ip = in->ip;
    }
    finish(in, &res);
}

/* ---- group commit ----------------------------------------------------------------------- */

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
    /* Count it before the bucket lock goes: drain() may take it at once and uncount it. */
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
    pthread_mutex_unlock(&bk->lock);
}

static void submit_intent(struct reg_registry *reg, struct intent *in)
{
    struct entry *e;

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
    if (admit_or_answer(reg, in, e, submit_intent))
        enqueue(reg, in, 0);
}

/* One bucket's part of a batch. */
struct slot {
    struct bucket *bk;
    struct reg_record old[REG_KINDS]; /* copies of the committed sets (nvalues 0: none) */
    struct reg_record next[REG_KINDS];
    struct intent *intents;
};

/* Elements and value characters the slot's DELETE old + CREATE next pairs cost (Route 53's
 * quota). */
static void slot_cost(const struct slot *sl, size_t *elements, size_t *chars)
{
    char txt[IP_TEXT_MAX];
    *elements = 0;
    *chars = 0;
    for (int k = 0; k < REG_KINDS; k++) {
        if (!set_changed(&sl->old[k], &sl->next[k]))
            continue;
        *elements += sl->old[k].nvalues + sl->next[k].nvalues;
        for (size_t i = 0; i < sl->old[k].nvalues; i++)
            *chars += strlen(ip_format(&sl->old[k].values[i], txt));
        for (size_t i = 0; i < sl->next[k].nvalues; i++)
            *chars += strlen(ip_format(&sl->next[k].values[i], txt));
    }
}

#define BATCH_MAX_ELEMENTS 1000
#define BATCH_MAX_CHARS 32000

/* Settle a committed slot: the store holds next. Completions run after the locks. */
static void settle_ok(struct reg_registry *reg, struct slot *sl, const char *change_id)
{
    struct bucket *bk = sl->bk;
    struct intent *waiters, *in;
    unsigned weight;

    pthread_mutex_lock(&bk->lock);
    install(reg, bk, sl->next);
    bk->inflight = 0;
    weight = bk->rec[REG_KIND_SERVED].weight;
    pthread_mutex_lock(&reg->index_lock);
    waiters = settle_entries(reg, bk, sl->intents, 1);
    pthread_mutex_unlock(&reg->index_lock);
    for (in = sl->intents; in; in = in->next)
        log_change(reg, in->op, &in->ip, bk);
    pthread_mutex_unlock(&bk->lock);

    while ((in = sl->intents)) {
        struct reg_result res;
        sl->intents = in->next;
        result_of(in, weight, change_id, &res);
        finish(in, &res);
    }
    resubmit(reg, waiters);
}

/* Fail every intent of a slot: nothing of it was applied. */
static void settle_failed(struct reg_registry *reg, struct slot *sl, enum rc_code rc,
                          const char *detail)
{
    struct intent *waiters, *in;

    pthread_mutex_lock(&sl->bk->lock);
    sl->bk->inflight = 0;
    pthread_mutex_lock(&reg->index_lock);
    waiters = settle_entries(reg, sl->bk, sl->intents, 0);
    ambiguous_note(reg, sl->intents, rc);
    pthread_mutex_unlock(&reg->index_lock);
    pthread_mutex_unlock(&sl->bk->lock);
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
    pthread_mutex_lock(&sl->bk->lock);
    sl->bk->inflight = 0; /* the store refused the batch: nothing of it was applied */
    pthread_mutex_unlock(&sl->bk->lock);
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
    triple_release(sl->old);
    triple_release(sl->next);
}

/* Send slots[0..n) as one atomic store call; on failure isolate the cause by halving. A slot
 * (one bucket's sets) is never split: its changes stay in one call. */
static void send_batch(struct reg_registry *reg, struct slot *slots, size_t n, int paced)
{
    struct reg_change *chg = xcalloc(n * REG_KINDS, sizeof(*chg));
    char change_id[REG_CHANGE_ID_MAX] = "", detail[REG_DETAIL_MAX] = "";
    size_t nchg = 0, elements = 0, queued;
    unsigned mask0 = 0;
    enum rc_code rc;

    if (!paced && reg->prov->ops->pace)
        reg->prov->ops->pace(reg->prov);
    for (size_t i = 0; i < n; i++) {
        unsigned mask;
        size_t c = triple_changes(slots[i].old, slots[i].next, chg + nchg, &mask);
        for (size_t j = nchg; j < nchg + c; j++)
            elements += (chg[j].old ? chg[j].old->nvalues : 0) +
                        (chg[j].new ? chg[j].new->nvalues : 0);
        nchg += c;
        if (i == 0)
            mask0 = mask;
    }
    rc = reg->prov->ops->apply(reg->prov, chg, nchg, change_id, detail, sizeof(detail));
    metrics_counter_inc(metrics_counter_child(m_batches));
    metrics_histogram_observe(metrics_histogram_child(m_batch_changes), (double)nchg);
    metrics_histogram_observe(metrics_histogram_child(m_batch_elements), (double)elements);
    if (rc == RC_CONFLICT)
        metrics_counter_inc(metrics_counter_child(m_conflicts));
    pthread_mutex_lock(&reg->work_lock);
    reg->batches++;
    reg->batched_changes += nchg;
    queued = reg->queued;
    pthread_mutex_unlock(&reg->work_lock);
    log_debug("msg=batch buckets=%zu changes=%zu elements=%zu queued=%zu rc=%s", n, nchg,
              elements, queued, rc_slug(rc));
    free(chg);

    if (rc == RC_OK) {
        for (size_t i = 0; i < n; i++)
            settle_ok(reg, &slots[i], change_id);
        return;
    }
    if (n > 1 && rc != RC_UNAVAILABLE && rc != RC_UPSTREAM_TIMEOUT && rc != RC_NOT_READY) {
        /* One bucket's change spoils the batch: find it by halving, commit the rest. */
        log_warn("msg=\"batch refused; splitting to isolate the cause\" buckets=%zu rc=%s", n,
                 rc_slug(rc));
        send_batch(reg, slots, n / 2, 0);
        send_batch(reg, slots + n / 2, n - n / 2, 0);
        return;
    }
    if (rc == RC_CONFLICT) {
        /* One bucket changed underneath: adopt what the store holds, then try again. */
        struct bucket *bk = slots[0].bk;
        enum rc_code lrc;
        pthread_mutex_lock(&bk->lock);
        lrc = reload_and_adopt(reg, bk, mask0, detail, sizeof(detail));
        pthread_mutex_unlock(&bk->lock);
        if (lrc == RC_OK) {
            /* Another writer is busy on this bucket: back off with full jitter (no lock
             * held) so it cannot win every race against us. */
            unsigned rounds = slots[0].intents ? slots[0].intents->rounds : 0;
            requeue(reg, &slots[0]);
            backoff(rounds);
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
        c = bk->rec[REG_KIND_SERVED].nvalues;
        for (struct intent *in = bk->queue; in; in = in->next) {
            if (!oldest)
                oldest = in->submitted_ns;
            if (in->op == REG_OP_ADD || in->op == REG_OP_ENSURE)
                adds++;
            else
                removes++;
        }
        pthread_mutex_unlock(&bk->lock);
        r[i].bk = bk;
        if (oldest && now - oldest > STARVE_NS) {
            /* starving: first, in arrival order, and above any burst threshold */
            r[i].score = 2 * BURST_MIN_GAIN - (double)i;
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
    if (triple_count(bk->rec) + created <= reg->opt.max_per_bucket)
        return NULL; /* the common case: everything fits */
    triple_copy(tr, bk->rec);
    for (pp = &bk->queue; (in = *pp);) {
        if (in->created && triple_find(tr, &in->ip) < 0 &&
            triple_count(tr) >= reg->opt.max_per_bucket) {
            *pp = in->next;
            in->next = NULL;
            *otail = in;
            otail = &in->next;
            nout++;
            continue;
        }
        apply_op(tr, in);
        pp = &in->next;
    }
    triple_release(tr);
    bk->queue_tail = pp;
    if (!out)
        return NULL;
    pthread_mutex_lock(&reg->index_lock);
    *waiters = settle_entries(reg, bk, out, 0);
    pthread_cond_broadcast(&reg->index_cond);
    pthread_mutex_unlock(&reg->index_lock);
    pthread_mutex_lock(&reg->work_lock);
    reg->queued -= nout;
    pthread_mutex_unlock(&reg->work_lock);
    return out;
}

/* Answer what take_overflow() took (no lock held). */
static void refuse(struct reg_registry *reg, struct intent *refused, struct intent *waiters)
{
    struct intent *in;
    while ((in = refused)) {
        refused = in->next;
        fail(in, RC_CONFLICT, "the bucket filled up through another writer; retry");
    }
    resubmit(reg, waiters);
}

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
        size_t e, c, taken = 0, changed;
        bk = list[k];
        memset(&sl, 0, sizeof(sl));
        sl.bk = bk;
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
        triple_copy(sl.old, bk->rec);
        apply_intents(reg, bk->rec, bk->queue, sl.next);
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
        bk->inflight = 1; /* until settle_ok, settle_failed or requeue */
        pthread_mutex_unlock(&bk->lock);
        pthread_mutex_lock(&reg->work_lock);
        reg->queued -= taken;
        pthread_mutex_unlock(&reg->work_lock);

        {
            struct reg_change unused[REG_KINDS];
            unsigned mask;
            changed = triple_changes(sl.old, sl.next, unused, &mask);
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


/* ---- submission ------------------------------------------------------------------------- */

static void submit_new(struct reg_registry *reg, enum reg_op op, const struct ip_addr *ip,
                       reg_done_fn done, void *arg, int expiry)
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
    atomic_fetch_add(&reg->submitted, 1);
    in = xcalloc(1, sizeof(*in));
    in->submitted_ns = now_ns();
    in->op = op;
    in->ip = *ip;
    in->expiry = expiry;
    in->kind_after = -1;
    in->done = done;
    in->arg = arg;
    if (reg->opt.commit == REG_COMMIT_IMMEDIATE)
        run_now(reg, in);
    else
        submit_intent(reg, in);
}

void reg_submit(struct reg_registry *reg, enum reg_op op, const struct ip_addr *ip,
                reg_done_fn done, void *arg)
{
    submit_new(reg, op, ip, done, arg, 0);
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

/* ---- the maintainer: leases and health verdicts ----------------------------------------- */

/* A deregistration for an expired lease, or a move for a verdict, in flight. */
struct chore {
    struct reg_registry *reg;
    struct ip_addr ip;
    enum reg_op op;
};

/* expiry: a lease removal, done only if the lease is still expired when its turn comes. */
static void chore_submit(struct reg_registry *reg, const struct ip_addr *ip, enum reg_op op,
                         int expiry, reg_done_fn done)
{
    struct chore *c = xcalloc(1, sizeof(*c));
    c->reg = reg;
    c->ip = *ip;
    c->op = op;
    submit_new(reg, op, ip, done, c, expiry);
}

/* A failed move or lease removal is retried after this long (the store is failing: do not
 * hammer it). */
#define TRANSITION_RETRY_NS (5 * 1000000000LL)

static void expired_done(void *arg, const struct reg_result *res)
{
    struct chore *x = arg;
    char txt[IP_TEXT_MAX];
    ip_format(&x->ip, txt);
    if (res->rc == RC_OK && res->placement.state != REG_STATE_DEREGISTERED) {
        log_info("msg=\"lease renewed before its expiry was carried out; kept\" ip=%s", txt);
    } else if (res->rc == RC_OK || res->rc == RC_NOT_REGISTERED) {
        log_info("msg=\"lease expired; deregistered\" ip=%s", txt);
    } else {
        struct entry *e;
        pthread_mutex_lock(&x->reg->index_lock);
        e = *index_slot(x->reg, &x->ip);
        if (e) {
            e->lease_expiring = 0; /* try again later, not on every pass */
            e->lease_retry_ns = now_ns() + TRANSITION_RETRY_NS;
        }
        pthread_mutex_unlock(&x->reg->index_lock);
        log_warn("msg=\"lease expired but the deregistration failed; will retry\" ip=%s rc=%s "
                 "detail=\"%s\"",
                 txt, rc_slug(res->rc), res->detail);
    }
    free(x);
}

static void transition_done(void *arg, const struct reg_result *res)
{
    struct chore *x = arg;
    char txt[IP_TEXT_MAX];
    struct entry *e;

    ip_format(&x->ip, txt);
    pthread_mutex_lock(&x->reg->index_lock);
    e = *index_slot(x->reg, &x->ip);
    if (e) {
        e->transition = TRANS_NONE;
        if (res->rc != RC_OK)
            e->retry_ns = now_ns() + TRANSITION_RETRY_NS;
    }
    pthread_mutex_unlock(&x->reg->index_lock);
    if (res->rc == RC_OK)
        log_info("msg=\"health: backend %s\" ip=%s change_id=%s",
                 x->op == REG_OP_DOWN ? "taken out of DNS" : "back in DNS", txt,
                 res->placement.change_id[0] ? res->placement.change_id : "-");
    else if (res->rc != RC_NOT_REGISTERED)
        log_warn("msg=\"health: moving the backend failed; will retry\" op=%s ip=%s rc=%s "
                 "detail=\"%s\"",
                 op_name(x->op), txt, rc_slug(res->rc), res->detail);
    free(x);
}

/* Submit the deregistrations of expired leases. */
static void reap_leases(struct reg_registry *reg)
{
    struct ip_addr *due = NULL;
    size_t n = 0, cap = 0;
    int64_t now = now_ns();

    pthread_mutex_lock(&reg->index_lock);
    for (size_t i = 0; i < reg->table_size; i++)
        for (struct entry *e = reg->table[i]; e; e = e->next)
            if (e->lease_deadline_ns && e->lease_deadline_ns <= now &&
                e->state == ENTRY_PRESENT && !e->lease_expiring && e->lease_retry_ns <= now) {
                e->lease_expiring = 1;
                due = xgrow(due, &cap, n + 1, sizeof(*due));
                due[n++] = e->ip;
            }
    pthread_mutex_unlock(&reg->index_lock);
    for (size_t i = 0; i < n; i++)
        chore_submit(reg, &due[i], REG_OP_REMOVE, 1, expired_done);
    free(due);
}

/*
 * Move backends whose set disagrees with their checker's verdict: served but down -> the down
 * set, down but up -> served. Level-triggered, so a failed move is simply tried again. The
 * fail-open guard: per type, never more than max_down_share of the registered, not draining
 * backends in the down set (counting moves in flight); recoveries always go through.
 */
static void reconcile(struct reg_registry *reg)
{
    struct chore_item {
        struct ip_addr ip;
        enum reg_op op;
    } *todo = NULL;
    size_t n = 0, cap = 0, total[2] = {0, 0}, down[2] = {0, 0}, held = 0;
    double share = reg->opt.max_down_share;
    int64_t now = now_ns();

    if (!reg->checker)
        return;
    pthread_mutex_lock(&reg->index_lock);
    for (size_t i = 0; i < reg->table_size; i++)
        for (struct entry *e = reg->table[i]; e; e = e->next) {
            int d;
            if (guard_counts(e, &d)) {
                total[reg_type_of(&e->ip)]++;
                down[reg_type_of(&e->ip)] += (size_t)d;
            }
        }
    for (size_t i = 0; i < reg->table_size; i++)
        for (struct entry *e = reg->table[i]; e; e = e->next) {
            enum reg_type t = reg_type_of(&e->ip);
            enum reg_op op;
            if (e->state != ENTRY_PRESENT || e->transition || e->lease_expiring ||
                e->retry_ns > now || (!e->checked && e->foreign_down)) {
                /* Unchecked here and taken down by another writer while we ran: that
                 * replica's checks decide, not this one's absence of a verdict. (A backend
                 * loaded down that nothing checks any more is returned to service.) */
                held += e->held;
                continue;
            }
            if (e->where == REG_KIND_SERVED && e->health_down) {
                if (share < 1 && (double)(down[t] + 1) > share * (double)total[t]) {
                    e->held = 1;
                    held++;
                    continue;
                }
                op = REG_OP_DOWN;
                down[t]++;
                e->transition = TRANS_DOWN;
            } else if (e->where == REG_KIND_DOWN && !e->health_down) {
                op = REG_OP_UP;
                e->transition = TRANS_UP;
            } else {
                e->held = 0;
                continue;
            }
            e->held = 0;
            todo = xgrow(todo, &cap, n + 1, sizeof(*todo));
            todo[n].ip = e->ip;
            todo[n++].op = op;
        }
    pthread_mutex_unlock(&reg->index_lock);

    if (held && (!reg->held || now - reg->held_logged_ns > 60 * 1000000000LL)) {
        log_error("msg=\"fail-open: health checks find more backends down than "
                  "--max-down-share allows; keeping them in DNS\" held=%zu max_down_share=%.2f "
                  "registered_a=%zu registered_aaaa=%zu down_a=%zu down_aaaa=%zu",
                  held, share, total[REG_A], total[REG_AAAA], down[REG_A], down[REG_AAAA]);
        if (!reg->held && m_fail_open)
            metrics_counter_inc(metrics_counter_child(m_fail_open));
        reg->held_logged_ns = now;
    } else if (!held && reg->held) {
        log_warn("msg=\"fail-open guard released: no failing backend is kept in DNS any "
                 "more\"");
    }
    reg->held = held;
    for (size_t i = 0; i < n; i++)
        chore_submit(reg, &todo[i].ip, todo[i].op, 0, transition_done);
    free(todo);
}

/*
 * Re-read the whole store and adopt what other writers changed (another replica's
 * registrations and health moves, a person in the console), so this registry's answers
 * converge without waiting for its own next write to conflict. A bucket committed or adopted
 * while the store was being read, or with a batch in flight (the store may hold it already,
 * the bucket's sets not yet), is left alone: the read may predate that commit, and the next
 * resync (or conflict) brings it in line.
 */
static void resync(struct reg_registry *reg)
{
    unsigned long long seen[2][REG_MAX_BUCKETS];
    struct reg_record *recs = NULL;
    struct reg_record(*fresh)[REG_MAX_BUCKETS][REG_KINDS] = NULL;
    size_t nrecs = 0, adopted = 0;
    char detail[REG_DETAIL_MAX];
    enum rc_code rc;

    for (int t = 0; t < 2; t++)
        for (unsigned b = 0; b < REG_MAX_BUCKETS; b++) {
            pthread_mutex_lock(&reg->buckets[t][b].lock);
            seen[t][b] = reg->buckets[t][b].changes;
            pthread_mutex_unlock(&reg->buckets[t][b].lock);
        }
    rc = reg->prov->ops->load(reg->prov, &recs, &nrecs, detail, sizeof(detail));
    if (rc) {
        log_warn("msg=\"resync: cannot read the store; will try again\" rc=%s detail=\"%s\"",
                 rc_slug(rc), detail);
        goto out;
    }
    fresh = xcalloc(2, sizeof(*fresh));
    for (size_t i = 0; i < nrecs; i++) {
        struct reg_record *r = &recs[i];
        if (r->bucket >= REG_MAX_BUCKETS || (unsigned)r->kind >= REG_KINDS || !r->nvalues)
            continue;
        reg_record_release(&fresh[r->type][r->bucket][r->kind]);
        fresh[r->type][r->bucket][r->kind] = *r;
        r->values = NULL;
        r->nvalues = 0;
    }
    for (int t = 0; t < 2; t++)
        for (unsigned b = 0; b < REG_MAX_BUCKETS; b++) {
            struct bucket *bk = &reg->buckets[t][b];
            unsigned mask = 0;
            pthread_mutex_lock(&bk->lock);
            if (bk->changes == seen[t][b] && !bk->inflight)
                mask = changed_sets(bk, fresh[t][b]);
            if (mask && hiding_sets(bk->rec, fresh[t][b])) {
                /* The listing reads the names one after another: an address another writer
                 * moved meanwhile may show in none. Read this bucket again (without its
                 * lock: no request waits on Route 53 for it) and take that, unless the
                 * bucket changed meanwhile. */
                unsigned long long c0 = bk->changes;
                struct reg_record again[REG_KINDS];
                pthread_mutex_unlock(&bk->lock);
                rc = read_bucket(reg, (enum reg_type)t, b, again, detail, sizeof(detail));
                pthread_mutex_lock(&bk->lock);
                mask = 0;
                if (rc == RC_OK && bk->changes == c0 && !bk->inflight) {
                    triple_release(fresh[t][b]);
                    memcpy(fresh[t][b], again, sizeof(again));
                    memset(again, 0, sizeof(again));
                    mask = changed_sets(bk, fresh[t][b]);
                } else if (rc != RC_OK) {
                    log_warn("msg=\"resync: cannot re-read a bucket; will try again\" "
                             "bucket=%u rc=%s detail=\"%s\"", b, rc_slug(rc), detail);
                }
                triple_release(again);
            }
            if (mask) {
                adopt(reg, bk, fresh[t][b], mask);
                adopted++;
            }
            pthread_mutex_unlock(&bk->lock);
            triple_release(fresh[t][b]);
        }
    if (adopted)
        log_info("msg=\"resync: adopted other writers' changes\" buckets=%zu", adopted);
out:
    for (size_t i = 0; i < nrecs; i++)
        reg_record_release(&recs[i]);
    free(recs);
    free(fresh);
}

/* Every 250 ms, or at once when a verdict changed. */
static void *reaper_main(void *arg)
{
    struct reg_registry *reg = arg;
    for (;;) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&reg->reaper_lock);
        if (!reg->reaper_stop && !reg->reaper_kick)
            pthread_cond_timedwait(&reg->reaper_cond, &reg->reaper_lock, &until);
        reg->reaper_kick = 0;
        if (reg->reaper_stop) {
            pthread_mutex_unlock(&reg->reaper_lock);
            break;
        }
        pthread_mutex_unlock(&reg->reaper_lock);
        reap_leases(reg);
        reconcile(reg);
        if (reg->opt.resync_ms) {
            int64_t now = now_ns();
            if (!reg->next_resync_ns)
                reg->next_resync_ns = now + (int64_t)reg->opt.resync_ms * 1000000;
            if (now >= reg->next_resync_ns) {
                resync(reg);
                reg->next_resync_ns = now_ns() + (int64_t)reg->opt.resync_ms * 1000000;
            }
        }
    }
    return NULL;
}

void reg_health_changed(void *arg, const struct ip_addr *ip, int up, const char *last_error)
{
    struct reg_registry *reg = arg;
    struct hc_status st;
    struct entry *e;
    int known;

    (void)last_error;
    /* Callbacks may ask the engine (it holds no lock now); the index lock is taken after. */
    if (hc_engine_status(reg->checker, ip, &st) != RC_OK)
        st.run_started_ms = 0;
    pthread_mutex_lock(&reg->index_lock);
    e = *index_slot(reg, ip);
    known = e && e->checked;
    if (known) {
        e->health_down = !up;
        e->verdict_ns = now_ns();
        e->streak_ms = st.run_started_ms;
        e->retry_ns = 0;
    }
    pthread_mutex_unlock(&reg->index_lock);
    if (!known)
        return; /* the engine logged the verdict; the move is logged when committed */
    pthread_mutex_lock(&reg->reaper_lock);
    reg->reaper_kick = 1;
    pthread_cond_signal(&reg->reaper_cond);
    pthread_mutex_unlock(&reg->reaper_lock);
}

enum rc_code reg_check_valid(const struct reg_registry *reg, const struct hc_check *override,
                             char *detail, size_t n)
{
    enum rc_code rc;
    if (!reg->checker) {
        rc_detail(detail, n, "health checks are not available in this server");
        return RC_BAD_REQUEST;
    }
    rc = hc_check_validate(override, detail, n);
    if (rc == RC_OK && !override->port && !reg->check_port) {
        rc_detail(detail, n, "the check needs a \"port\" (the server has no --check-port)");
        rc = RC_BAD_REQUEST;
    }
    if (rc == RC_OK) {
        unsigned interval = override->interval_ms ? override->interval_ms
                                                  : reg->check_interval_ms;
        unsigned timeout = override->timeout_ms ? override->timeout_ms : reg->check_timeout_ms;
        if (timeout > interval) {
            rc_detail(detail, n, "the check's timeout (%u ms) exceeds its interval (%u ms): a "
                                 "check must end before the next starts", timeout, interval);
            rc = RC_BAD_REQUEST;
        }
    }
    return rc;
}

enum rc_code reg_set_check(struct reg_registry *reg, const struct ip_addr *ip,
                           const struct hc_check *override, char *detail, size_t n)
{
    struct entry *e;
    enum rc_code rc = reg_check_valid(reg, override, detail, n);

    if (rc)
        return rc;
    pthread_mutex_lock(&reg->index_lock);
    e = *index_slot(reg, ip);
    if (!e || e->state == ENTRY_ADDING) {
        pthread_mutex_unlock(&reg->index_lock);
        say_not_registered(ip, detail, n);
        return RC_NOT_REGISTERED;
    }
    rc = hc_engine_add_as(reg->checker, ip, override, e->where != REG_KIND_DOWN);
    if (rc == RC_OK && !e->checked) {
        e->checked = 1;
        e->health_down = e->where == REG_KIND_DOWN;
    }
    pthread_mutex_unlock(&reg->index_lock);
    if (rc)
        rc_detail(detail, n, "the check was refused by the checker");
    return rc;
}

void reg_stats(struct reg_registry *reg, struct reg_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&reg->work_lock);
    out->queued = reg->queued;
    out->batches = reg->batches;
    out->batched_changes = reg->batched_changes;
    pthread_mutex_unlock(&reg->work_lock);
    pthread_mutex_lock(&reg->index_lock);
    for (size_t i = 0; i < reg->table_size; i++)
        for (struct entry *e = reg->table[i]; e; e = e->next) {
            if (e->state == ENTRY_ADDING)
                continue;
            out->served += e->where == REG_KIND_SERVED;
            out->down += e->where == REG_KIND_DOWN;
            out->draining += e->where == REG_KIND_DRAINING;
            out->held += e->held;
        }
    pthread_mutex_unlock(&reg->index_lock);
}

/* ---- reads and leases ------------------------------------------------------------------- */

enum rc_code reg_lookup(struct reg_registry *reg, const struct ip_addr *ip,
                        struct reg_placement *out)
{
    enum reg_type t = reg_type_of(ip);
    struct entry *e;
    struct bucket *bk;
    int64_t deadline, since;
    unsigned lease_s;
    int checked, held, k;

    pthread_mutex_lock(&reg->index_lock);
    e = *index_slot(reg, ip);
    if (!e || e->state == ENTRY_ADDING) {
        pthread_mutex_unlock(&reg->index_lock);
        return RC_NOT_REGISTERED;
    }
    bk = &reg->buckets[t][e->bucket];
    deadline = e->lease_deadline_ns;
    lease_s = e->lease_s;
    since = e->since_ms;
    checked = e->checked;
    held = e->held;
    pthread_mutex_unlock(&reg->index_lock);

    pthread_mutex_lock(&bk->lock);
    k = triple_find(bk->rec, ip);
    if (k >= 0)
        fill_placement(out, ip, bk->rec[0].bucket, bk->rec[REG_KIND_SERVED].weight,
                       state_of(k));
    pthread_mutex_unlock(&bk->lock);
    if (k < 0)
        return RC_NOT_REGISTERED;
    lease_fill(out, deadline, lease_s);
    out->since_ms = k == REG_KIND_SERVED ? 0 : since;
    out->held = held && k == REG_KIND_SERVED;
    out->checked = checked && hc_engine_status(reg->checker, ip, &out->health) == RC_OK;
    return RC_OK;
}

/* A registered backend, also while a move (down, up, drain, undrain) is in flight: it stays
 * registered whatever the move's outcome. Not while it is being added or removed. */
static int leaseable(const struct entry *e)
{
    return e && (e->state == ENTRY_PRESENT || e->state == ENTRY_MOVING);
}

enum rc_code reg_set_lease(struct reg_registry *reg, const struct ip_addr *ip, unsigned seconds,
                           struct reg_placement *out)
{
    struct entry *e;
    pthread_mutex_lock(&reg->index_lock);
    e = *index_slot(reg, ip);
    if (!leaseable(e)) {
        pthread_mutex_unlock(&reg->index_lock);
        return RC_NOT_REGISTERED;
    }
    e->lease_s = seconds > REG_MAX_LEASE ? REG_MAX_LEASE : seconds;
    if (e->lease_s)
        lease_renew(reg, e);
    else
        e->lease_deadline_ns = 0, e->lease_expiring = 0;
    pthread_mutex_unlock(&reg->index_lock);
    return reg_lookup(reg, ip, out);
}

enum rc_code reg_heartbeat(struct reg_registry *reg, const struct ip_addr *ip,
                           struct reg_placement *out)
{
    struct entry *e;
    pthread_mutex_lock(&reg->index_lock);
    e = *index_slot(reg, ip);
    if (!leaseable(e)) { /* unknown, or its expired lease's removal is under way */
        pthread_mutex_unlock(&reg->index_lock);
        return RC_NOT_REGISTERED;
    }
    lease_renew(reg, e);
    pthread_mutex_unlock(&reg->index_lock);
    return reg_lookup(reg, ip, out);
}

void reg_wait_insync(struct reg_registry *reg, const char *change_id, unsigned timeout_ms,
                     reg_insync_fn done, void *arg)
{
    reg_insync_wait(reg->insync, change_id, timeout_ms, done, arg);
}

size_t reg_snapshot(struct reg_registry *reg, struct reg_bucket_view **views)
{
    size_t n = 0, cap = 0;
    struct reg_bucket_view *v = NULL;

    for (int t = 0; t < 2; t++)
        for (unsigned b = 0; b < REG_MAX_BUCKETS; b++) {
            struct bucket *bk = &reg->buckets[t][b];
            size_t count;
            pthread_mutex_lock(&bk->lock);
            count = triple_count(bk->rec);
            if (count) {
                v = xgrow(v, &cap, n + 1, sizeof(*v));
                reg_record_copy(&v[n].rec, &bk->rec[REG_KIND_SERVED]);
                reg_record_copy(&v[n].down, &bk->rec[REG_KIND_DOWN]);
                reg_record_copy(&v[n].draining, &bk->rec[REG_KIND_DRAINING]);
                v[n].capacity = reg->opt.max_per_bucket;
                v[n].accepting = b < reg->opt.buckets && count < reg->opt.max_per_bucket;
                n++;
            }
            pthread_mutex_unlock(&bk->lock);
        }
    *views = v;
    return n;
}

void reg_views_free(struct reg_bucket_view *views, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        reg_record_release(&views[i].rec);
        reg_record_release(&views[i].down);
        reg_record_release(&views[i].draining);
    }
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
