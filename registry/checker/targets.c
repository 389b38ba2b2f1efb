/*
 * targets.c: the calls any thread makes on a running engine: add, remove and look up a target
 * in the hash table ip -> target, and read the engine's counters. Adds and removes change the
 * table at once and queue the target for the engine thread, which schedules, cancels and frees
 * (registry/checker/engine.c); a caller only wakes the thread when the queues were empty.
 *
 * Threading: every function here is thread-safe and holds the engine's lock only while it
 * touches the table, the queues and the reported state; none does I/O under it.
 */
#include "registry/checker/internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/xalloc.h"

/* --- hash table (lock held) ------------------------------------------------------------------- */

static struct target **table_slot(struct hc_engine *e, const struct ip_addr *ip)
{
    struct target **p = &e->table[ip_hash(ip) & (e->table_size - 1)];
    while (*p && ip_cmp(&(*p)->ip, ip) != 0)
        p = &(*p)->hnext;
    return p;
}

static void table_grow(struct hc_engine *e)
{
    size_t nsize = e->table_size * 2;
    struct target **nt = xcalloc(nsize, sizeof(*nt));
    for (size_t i = 0; i < e->table_size; i++) {
        struct target *t = e->table[i];
        while (t) {
            struct target *next = t->hnext;
            size_t j = ip_hash(&t->ip) & (nsize - 1);
            t->hnext = nt[j];
            nt[j] = t;
            t = next;
        }
    }
    free(e->table);
    e->table = nt;
    e->table_size = nsize;
}

/* --- public API ------------------------------------------------------------------------------- */

enum rc_code hc_engine_add(struct hc_engine *e, const struct ip_addr *ip,
                           const struct hc_check *override)
{
    return hc_engine_add_as(e, ip, override, e->start_down ? 0 : 1);
}

enum rc_code hc_engine_add_as(struct hc_engine *e, const struct ip_addr *ip,
                              const struct hc_check *override, int up)
{
    struct cfg *c = NULL;
    struct target **slot, *t;
    int was_empty;

    if (override) {
        if (hc_check_validate(override, NULL, 0) != RC_OK)
            return RC_BAD_REQUEST;
        c = xmalloc(sizeof(*c));
        hcc_cfg_resolve(&e->defcfg, override, c);
        if (!c->port || c->status_min > c->status_max) {
            hcc_cfg_release(c);
            free(c);
            return RC_BAD_REQUEST;
        }
    } else if (!e->defcfg.port) {
        return RC_BAD_REQUEST;
    }

    pthread_mutex_lock(&e->lock);
    was_empty = !e->add_queue && !e->rm_queue;
    slot = table_slot(e, ip);
    if ((t = *slot)) {
        hcc_cfg_release(t->pending_cfg);
        free(t->pending_cfg);
        t->pending_cfg = c;
        t->has_pending_cfg = 1;
    } else {
        t = xcalloc(1, sizeof(*t));
        t->ip = *ip;
        t->cfg = c ? c : &e->defcfg;
        t->state = T_NEW;
        t->fd = -1;
        t->up = !!up;
        t->added_ms = clock_wall_ms();
        *slot = t;
        e->count++;
        metrics_gauge_inc(e->m_targets);
        if (!t->up) {
            e->down++;
            metrics_gauge_inc(e->m_downg);
        }
        if (e->count > e->table_size)
            table_grow(e);
    }
    if (!t->queued_add) {
        t->queued_add = 1;
        t->add_next = e->add_queue;
        e->add_queue = t;
    }
    pthread_mutex_unlock(&e->lock);
    if (was_empty)
        hce_wake(e);
    return RC_OK;
}

enum rc_code hc_engine_remove(struct hc_engine *e, const struct ip_addr *ip)
{
    struct target **slot, *t;
    int was_empty;

    pthread_mutex_lock(&e->lock);
    slot = table_slot(e, ip);
    if (!(t = *slot)) {
        pthread_mutex_unlock(&e->lock);
        return RC_NOT_FOUND;
    }
    was_empty = !e->add_queue && !e->rm_queue;
    *slot = t->hnext;
    t->hnext = NULL;
    t->removed = 1;
    e->count--;
    metrics_gauge_dec(e->m_targets);
    if (!t->up) {
        e->down--;
        metrics_gauge_dec(e->m_downg);
    }
    t->rm_next = e->rm_queue;
    e->rm_queue = t;
    pthread_mutex_unlock(&e->lock);
    if (was_empty)
        hce_wake(e);
    return RC_OK;
}

enum rc_code hc_engine_status(struct hc_engine *e, const struct ip_addr *ip, struct hc_status *out)
{
    struct target *t;
    enum rc_code rc = RC_NOT_FOUND;

    pthread_mutex_lock(&e->lock);
    if ((t = *table_slot(e, ip))) {
        out->up = t->up;
        out->consecutive_ok = t->cons_ok;
        out->consecutive_fail = t->cons_fail;
        out->checks = t->checks;
        out->failures = t->failures;
        out->last_ok = t->last_ok;
        memcpy(out->last_error, t->last_error, sizeof(out->last_error));
        out->last_check_ms = t->last_check_ms;
        out->last_change_ms = t->last_change_ms;
        out->added_ms = t->added_ms;
        out->run_started_ms = t->run_started_ms;
        rc = RC_OK;
    }
    pthread_mutex_unlock(&e->lock);
    return rc;
}

void hc_engine_stats(struct hc_engine *e, struct hc_stats *out)
{
    clockid_t cid;
    struct timespec ts;

    memset(out, 0, sizeof(*out));
    out->checks = atomic_load(&e->checks);
    out->failures = atomic_load(&e->failures);
    out->transitions_up = atomic_load(&e->tr_up);
    out->transitions_down = atomic_load(&e->tr_down);
    out->local_errors = atomic_load(&e->local_errors);
    out->in_flight = atomic_load(&e->in_flight_pub);
    out->max_in_flight = atomic_load(&e->max_in_flight);
    pthread_mutex_lock(&e->lock);
    out->targets = (unsigned)e->count;
    out->down = e->down;
    pthread_mutex_unlock(&e->lock);
    if (pthread_getcpuclockid(e->thread, &cid) == 0 && clock_gettime(cid, &ts) == 0)
        out->thread_cpu_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
