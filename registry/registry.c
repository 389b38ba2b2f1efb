/*
 * registry.c: the registry's lifecycle and its public API (registry/registry.h): create, load,
 * destroy, submit, and the reads (lookup, snapshot, stats). The work is done elsewhere in
 * registry/: internal.h states the structs, the lock order and the invariants, and names the
 * file that owns each job.
 */
#include "registry/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

/* Process-wide, so a generation never repeats across registries (tests run several). */
static atomic_ullong generations = 1;

void registry_group_ttls(struct reg_registry *reg, enum reg_type t, unsigned *ttl)
{
    for (int k = 0; k < REG_KINDS; k++)
        ttl[k] = atomic_load(&reg->group_ttl[t][k]);
}

unsigned reg_ttl(const struct reg_registry *reg, enum reg_type type)
{
    return atomic_load(&((struct reg_registry *)reg)->group_ttl[type][REG_KIND_SERVED]);
}

unsigned registry_ttl_epoch(struct reg_registry *reg)
{
    unsigned e;
    pthread_mutex_lock(&reg->ttl_lock);
    e = reg->ttl_epoch;
    pthread_mutex_unlock(&reg->ttl_lock);
    return e;
}

static int cmp_unsigned(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return x < y ? -1 : x > y;
}

/* The TTL most of ttls[0..n) carry (the lowest of equals) into *best and how many carry it.
 * Sorts ttls. */
static size_t most_common_ttl(unsigned *ttls, size_t n, unsigned *best)
{
    size_t best_n = 0;
    if (n > 1) /* qsort takes no NULL, even for nothing */
        qsort(ttls, n, sizeof(*ttls), cmp_unsigned);
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && ttls[j] == ttls[i]; j++)
            ;
        if (j - i > best_n) {
            best_n = j - i;
            *best = ttls[i];
        }
    }
    return best_n;
}

int registry_learn_ttls(struct reg_registry *reg, const struct reg_record *recs, size_t n,
                        unsigned epoch)
{
    int changed = 0;
    unsigned *ttls = n ? xcalloc(n, sizeof(*ttls)) : NULL;

    pthread_mutex_lock(&reg->ttl_lock);
    if (reg->ttl_epoch != epoch)
        goto out; /* read before a TTL change: it would teach the old TTL back */
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < REG_KINDS; k++) {
            unsigned best = 0, was;
            size_t best_n, total = 0;
            /* Aliases carry no TTL of their own. */
            for (size_t i = 0; i < n; i++)
                if ((int)recs[i].type == t && (int)recs[i].kind == k && recs[i].nvalues &&
                    !recs[i].alias)
                    ttls[total++] = recs[i].ttl;
            best_n = most_common_ttl(ttls, total, &best);
            if (!total)
                continue; /* no set of this group: it keeps what it had */
            if (best_n < total)
                log_warn("msg=\"a weighted group holds sets of several TTLs; writing with the "
                         "most common\" name=%s%s type=%s ttl=%u sets=%zu with_it=%zu",
                         reg_kind_prefix((enum reg_kind)k), reg->opt.record_name,
                         reg_type_name((enum reg_type)t), best, total, best_n);
            was = atomic_exchange(&reg->group_ttl[t][k], best);
            if (was == best)
                continue;
            changed++;
            log_warn("msg=\"the zone's weighted group has another TTL than r53reg used; "
                     "r53reg serves and writes the zone's (Route 53 refuses a set with "
                     "another TTL). To change it, PUT /ttl; to silence this, start with "
                     "--ttl %u\" name=%s%s type=%s zone_ttl=%u was=%u configured_ttl=%u",
                     best, reg_kind_prefix((enum reg_kind)k), reg->opt.record_name,
                     reg_type_name((enum reg_type)t), best, was, reg->opt.ttl);
        }
out:
    pthread_mutex_unlock(&reg->ttl_lock);
    free(ttls);
    return changed;
}

int registry_others_active(struct reg_registry *reg)
{
    int64_t seen = atomic_load(&reg->foreign_seen_ns);
    return seen && clock_mono_ns() - seen < 600 * 1000000000LL;
}

/* The registry changed: a new generation, visible after the change. */
void registry_generation_bump(struct reg_registry *reg)
{
    reg_change_hook_fn hook;
    unsigned long long next = atomic_fetch_add(&generations, 1) + 1;
    unsigned long long cur = atomic_load(&reg->generation);
    /* Two changes at once: the later number wins, so the generation never goes back. */
    while (cur < next && !atomic_compare_exchange_weak(&reg->generation, &cur, next))
        ;
    hook = atomic_load(&reg->change_hook);
    if (hook)
        hook();
}

void reg_set_change_hook(struct reg_registry *reg, reg_change_hook_fn fn)
{
    atomic_store(&reg->change_hook, fn);
}

void reg_set_event_hook(struct reg_registry *reg, reg_event_hook_fn fn)
{
    atomic_store(&reg->event_hook, fn);
}

void registry_event(struct reg_registry *reg, const struct reg_event *ev)
{
    reg_event_hook_fn hook = atomic_load(&reg->event_hook);
    if (hook)
        hook(ev);
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
    reg->capacity[REG_A] = reg_capacity(opt, REG_A);
    reg->capacity[REG_AAAA] = reg_capacity(opt, REG_AAAA);
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < REG_KINDS; k++)
            atomic_init(&reg->group_ttl[t][k], opt->ttl);
    pthread_mutex_init(&reg->ttl_lock, NULL);
    atomic_init(&reg->ttl_busy, 0);
    atomic_init(&reg->loaded, 0);
    atomic_init(&reg->generation, 0);
    atomic_init(&reg->change_hook, NULL);
    atomic_init(&reg->event_hook, NULL);
    registry_generation_bump(reg);
    reg->nslots = opt->tree ? REG_MAX_SLOTS : REG_MAX_BUCKETS;
    for (int t = 0; t < 2; t++)
        atomic_init(&reg->tree_on[t], opt->tree == REG_TREE_ON);
    for (int t = 0; t < 2; t++) {
        reg->buckets[t] = xcalloc(reg->nslots, sizeof(*reg->buckets[t]));
        reg->reserved[t] = xcalloc(reg->nslots, sizeof(*reg->reserved[t]));
        reg->filling[t] = xcalloc(reg->nslots, sizeof(*reg->filling[t]));
    }
    for (int t = 0; t < 2; t++)
        for (unsigned b = 0; b < reg->nslots; b++) {
            struct bucket *bk = &reg->buckets[t][b];
            pthread_mutex_init(&bk->lock, NULL);
            pthread_cond_init(&bk->idle, NULL);
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
    {
        /* The committer holds with a deadline on the monotonic clock. */
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&reg->work_cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    pthread_mutex_init(&reg->now_lock, NULL);
    pthread_cond_init(&reg->ttl_cond, NULL);
    pthread_mutex_init(&reg->maintainer_lock, NULL);
    pthread_cond_init(&reg->maintainer_cond, NULL);
    pthread_mutex_init(&reg->confirm_lock, NULL);
    pthread_mutex_init(&reg->fleet_lock, NULL);
    pthread_mutex_init(&reg->tree_lock, NULL);
    reg->confirm_tail = &reg->confirm_head;
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
    reg->check_interval_ms =
        defaults && defaults->interval_ms ? defaults->interval_ms : HC_DEFAULT_INTERVAL_MS;
    reg->check_timeout_ms =
        defaults && defaults->timeout_ms ? defaults->timeout_ms : HC_DEFAULT_TIMEOUT_MS;
}

void reg_destroy(struct reg_registry *reg)
{
    if (!reg)
        return;
    if (atomic_load(&reg->loaded))
        rmetrics_detach();
    ttl_jobs_drain(reg); /* first: a TTL change holds every bucket until it is done */
    maintainer_stop(reg);
    confirm_stop(reg);
    committer_stop(reg); /* after the call in flight; what is queued is not sent */
    commit_now_stop(reg); /* likewise */
    /* After the committer (its last completions may still start waits), before the provider
     * (a poll in flight uses it): answers the waits still pending. */
    reg_insync_destroy(reg->insync);
    /* Settling above may still have added or removed targets; no verdict matters now. */
    hc_engine_destroy(reg->checker);
    for (int t = 0; t < 2; t++) {
        for (unsigned b = 0; b < reg->nslots; b++) {
            sets_release(reg->buckets[t][b].rec);
            pthread_mutex_destroy(&reg->buckets[t][b].lock);
            pthread_cond_destroy(&reg->buckets[t][b].idle);
        }
        free(reg->buckets[t]);
        free(reg->reserved[t]);
        free(reg->filling[t]);
    }
    index_free_all(reg);
    pthread_mutex_destroy(&reg->ttl_lock);
    pthread_mutex_destroy(&reg->index_lock);
    pthread_cond_destroy(&reg->index_cond);
    pthread_mutex_destroy(&reg->work_lock);
    pthread_cond_destroy(&reg->work_cond);
    pthread_mutex_destroy(&reg->now_lock);
    pthread_cond_destroy(&reg->ttl_cond);
    pthread_mutex_destroy(&reg->maintainer_lock);
    pthread_cond_destroy(&reg->maintainer_cond);
    pthread_mutex_destroy(&reg->confirm_lock);
    for (size_t i = 0; i < reg->nmembers; i++)
        free(reg->members[i]);
    free(reg->members);
    pthread_mutex_destroy(&reg->fleet_lock);
    pthread_mutex_destroy(&reg->tree_lock);
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
    if ((rc = tree_migrate(reg, &recs, &nrecs, detail, n)) != RC_OK)
        goto out;
    registry_learn_ttls(reg, recs, nrecs, registry_ttl_epoch(reg));
    tree_adopt_aliases(reg, recs, nrecs, atomic_load(&reg->tree_gen));
    for (size_t i = 0; i < nrecs; i++)
        bucket_load(reg, &recs[i], &dups, nk);
    atomic_store(&reg->copies_loaded, dups > 0);
    tree_grow_loaded(reg);
    rmetrics_attach(reg);
    if (maintainer_start(reg) != RC_OK) {
        snprintf(detail, n, "cannot start the maintainer thread");
        rc = RC_INTERNAL;
        goto out;
    }
    if (reg->opt.commit == REG_COMMIT_GROUP && committer_start(reg) != RC_OK) {
        snprintf(detail, n, "cannot start the committer thread");
        rc = RC_INTERNAL;
        goto out;
    }
    if (reg->opt.commit == REG_COMMIT_IMMEDIATE && commit_now_start(reg) != RC_OK) {
        snprintf(detail, n, "cannot start the immediate-mode threads");
        rc = RC_INTERNAL;
        goto out;
    }
    atomic_store(&reg->loaded, 1);
    registry_generation_bump(reg);
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

int reg_loaded(struct reg_registry *reg)
{
    return atomic_load(&reg->loaded);
}

int reg_upstream_reachable(struct reg_registry *reg)
{
    return reg->prov->ops->ready(reg->prov);
}

const struct reg_options *reg_options(const struct reg_registry *reg)
{
    return &reg->opt;
}

const char *reg_provider_name(const struct reg_registry *reg)
{
    return reg->prov->ops->name;
}

static void submit(struct reg_registry *reg, enum reg_op op, const struct ip_addr *ip,
                   reg_done_fn done, void *arg, int expiry, int confirm)
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
    in = xcalloc(1, sizeof(*in));
    in->submitted_ns = clock_mono_ns();
    in->op = op;
    in->ip = *ip;
    {
        char txt[IP_TEXT_MAX];
        in->chars = (unsigned)strlen(ip_format(ip, txt));
    }
    in->expiry = expiry;
    in->confirm = confirm;
    in->reg = reg;
    in->kind_after = -1;
    in->done = done;
    in->arg = arg;
    if (reg->opt.commit == REG_COMMIT_IMMEDIATE)
        commit_now_submit(reg, in);
    else
        committer_submit(reg, in);
}

void registry_submit(struct reg_registry *reg, enum reg_op op, const struct ip_addr *ip,
                     reg_done_fn done, void *arg, int expiry)
{
    submit(reg, op, ip, done, arg, expiry, 0);
}

void reg_submit(struct reg_registry *reg, enum reg_op op, const struct ip_addr *ip,
                reg_done_fn done, void *arg)
{
    submit(reg, op, ip, done, arg, 0, 1);
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

/* ---- reads ------------------------------------------------------------------------------ */

enum rc_code reg_lookup(struct reg_registry *reg, const struct ip_addr *ip,
                        struct reg_placement *out)
{
    enum reg_type t = reg_type_of(ip);
    struct entry *e;
    struct bucket *bk;
    int64_t deadline, since;
    unsigned lease_s;
    int checked, held, k;

    for (int tries = 0;; tries++) {
        unsigned long long moves;
        pthread_mutex_lock(&reg->index_lock);
        e = index_find(reg, ip);
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
        moves = atomic_load(&reg->moves);
        pthread_mutex_unlock(&reg->index_lock);

        pthread_mutex_lock(&bk->lock);
        k = sets_find(bk->rec, ip);
        /* A bucket moved into the tree or out of it (registry/tree_grow.c) between the two
         * looks: look again where the address went. */
        if (k >= 0 || tries >= 3 || atomic_load(&reg->moves) == moves)
            break;
        pthread_mutex_unlock(&bk->lock);
    }
    if (k >= 0)
        intent_fill_placement(out, ip, bk->rec[0].bucket, bk->rec[REG_KIND_SERVED].weight,
                              intent_state_of(k));
    pthread_mutex_unlock(&bk->lock);
    if (k < 0)
        return RC_NOT_REGISTERED;
    lease_fill(out, deadline, lease_s);
    out->since_ms = k == REG_KIND_SERVED ? 0 : since;
    out->held = held && k == REG_KIND_SERVED;
    out->checked = checked && hc_engine_status(reg->checker, ip, &out->health) == RC_OK;
    return RC_OK;
}

void reg_wait_insync(struct reg_registry *reg, const char *change_id, unsigned timeout_ms,
                     reg_insync_fn done, void *arg)
{
    reg_insync_wait(reg->insync, change_id, timeout_ms, done, arg);
}

static size_t snapshot_once(struct reg_registry *reg, struct reg_bucket_view **views)
{
    size_t n = 0, cap = 0;
    struct reg_bucket_view *v = NULL;

    for (int t = 0; t < 2; t++)
        for (unsigned b = 0; b < reg->nslots; b++) {
            struct bucket *bk = &reg->buckets[t][b];
            size_t count;
            pthread_mutex_lock(&bk->lock);
            count = sets_count(bk->rec);
            if (count) {
                v = xgrow(v, &cap, n + 1, sizeof(*v));
                reg_record_copy(&v[n].rec, &bk->rec[REG_KIND_SERVED]);
                reg_record_copy(&v[n].down, &bk->rec[REG_KIND_DOWN]);
                reg_record_copy(&v[n].draining, &bk->rec[REG_KIND_DRAINING]);
                v[n].capacity = reg->capacity[t];
                v[n].answer_bytes = reg_answer_bytes(reg->opt.record_name, (enum reg_type)t,
                                                     bk->rec[REG_KIND_SERVED].nvalues);
                v[n].accepting = reg_slot_bucket(b) < reg->opt.buckets &&
                                 (reg_tree_on(reg, (enum reg_type)t) ? b >= REG_MAX_BUCKETS
                                                                     : b < REG_MAX_BUCKETS) &&
                                 count < reg->capacity[t];
                n++;
            }
            pthread_mutex_unlock(&bk->lock);
        }
    *views = v;
    return n;
}

size_t reg_snapshot(struct reg_registry *reg, struct reg_bucket_view **views)
{
    /* Buckets are read one at a time: a bucket that moved between two of them (into the tree
     * or out of it) could be missed or seen twice. Read again when one did. */
    for (int tries = 0;; tries++) {
        unsigned long long moves = atomic_load(&reg->moves);
        size_t n = snapshot_once(reg, views);
        if (tries >= 5 || atomic_load(&reg->moves) == moves)
            return n;
        reg_views_free(*views, n);
    }
}

int reg_tree_on(struct reg_registry *reg, enum reg_type t)
{
    return (unsigned)t <= REG_AAAA && atomic_load(&reg->tree_on[t]);
}

size_t reg_tree_aliases(struct reg_registry *reg, enum reg_type t, struct reg_alias_view *out)
{
    struct tree_alias a[REG_TREE_CHILDREN];
    size_t n = 0;
    tree_aliases(reg, t, a);
    for (unsigned c = 0; c < REG_TREE_CHILDREN; c++)
        if (a[c].exists) {
            out[n].child = c;
            out[n++].weight = a[c].weight;
        }
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
