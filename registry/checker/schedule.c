/*
 * schedule.c: when each target is checked and what its checks add up to. The two heaps of
 * targets (due, deadline; see internal.h), scheduling the next check one interval after the
 * latest started, the random first check of a new target (so targets added together spread
 * out), and the verdicts: counting results, rise/fall transitions, metrics and the on_change
 * callback. A check that could not start for a local reason gives no verdict.
 *
 * Threading: the engine thread only. hcs_record() takes the engine's lock to update a target's
 * reported state and releases it before it logs or calls on_change.
 */
#include "registry/checker/internal.h"

#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* strerror text with a lowercase first letter ("connection refused"). */
void hcs_errno_text(int err, char *out, size_t n)
{
    char buf[128];
    const char *s = strerror_r(err, buf, sizeof(buf));
    snprintf(out, n, "%s", s);
    if (out[0] >= 'A' && out[0] <= 'Z' && !(out[1] >= 'A' && out[1] <= 'Z'))
        out[0] = (char)(out[0] - 'A' + 'a');
}

/* --- heaps of targets, keyed by CLOCK_MONOTONIC ns -------------------------------------------- */

/* 4-ary min-heaps whose slots carry the key beside the target: sifting compares keys within the
 * array (a node's four children are 64 contiguous bytes) and touches a target only to update
 * its hidx, so with 10,000 targets a push or remove costs a few cache misses, not two per level
 * of a binary heap of pointers. */
#define ARITY 4

static void heap_set(struct heap *h, size_t i, struct heap_slot s)
{
    h->v[i] = s;
    s.t->hidx = i;
}

static void heap_up(struct heap *h, size_t i)
{
    struct heap_slot s = h->v[i];
    while (i > 0) {
        size_t p = (i - 1) / ARITY;
        if (h->v[p].key <= s.key)
            break;
        heap_set(h, i, h->v[p]);
        i = p;
    }
    heap_set(h, i, s);
}

static void heap_down(struct heap *h, size_t i)
{
    struct heap_slot s = h->v[i];
    for (;;) {
        size_t c = ARITY * i + 1, end = c + ARITY;
        if (c >= h->n)
            break;
        if (end > h->n)
            end = h->n;
        for (size_t k = c + 1; k < end; k++)
            if (h->v[k].key < h->v[c].key)
                c = k;
        if (s.key <= h->v[c].key)
            break;
        heap_set(h, i, h->v[c]);
        i = c;
    }
    heap_set(h, i, s);
}

void hcs_heap_push(struct heap *h, struct target *t)
{
    h->v = xgrow(h->v, &h->cap, h->n + 1, sizeof(*h->v));
    heap_set(h, h->n++, (struct heap_slot){.key = t->key, .t = t});
    heap_up(h, h->n - 1);
}

void hcs_heap_remove(struct heap *h, struct target *t)
{
    size_t i = t->hidx;
    struct heap_slot last = h->v[--h->n];
    if (i == h->n)
        return;
    heap_set(h, i, last);
    if (i > 0 && last.key < h->v[(i - 1) / ARITY].key)
        heap_up(h, i);
    else
        heap_down(h, i);
}

struct target *hcs_heap_top(const struct heap *h)
{
    return h->n ? h->v[0].t : NULL;
}

/* --- scheduling ------------------------------------------------------------------------------- */

static void schedule(struct hc_engine *e, struct target *t, int64_t key)
{
    t->state = T_IDLE;
    t->key = key;
    hcs_heap_push(&e->due, t);
}

/* The next check of t is due one interval after the latest started (now, if that passed). A
 * check started early, with a batch (hcs_start_slack()), counts from the time it was due, so
 * batching never shortens the interval. */
static void schedule_next(struct hc_engine *e, struct target *t)
{
    int64_t now = clock_mono_ns();
    int64_t from = t->due_ns > t->started_ns ? t->due_ns : t->started_ns;
    int64_t key = from + (int64_t)t->cfg->interval_ms * MS_NS;
    schedule(e, t, key > now ? key : now);
}

int64_t hcs_start_slack(const struct target *t)
{
    int64_t slack = (int64_t)t->cfg->interval_ms * MS_NS / 128;
    return slack < START_SLACK_MAX_NS ? slack : START_SLACK_MAX_NS;
}

/* The first check of a new target comes at a random time within one interval from now, so
 * many targets added at once are spread out. */
void hcs_schedule_first(struct hc_engine *e, struct target *t, int64_t now)
{
    schedule(e, t, now + (int64_t)(rng_next(&e->rng) % ((uint64_t)t->cfg->interval_ms * MS_NS)));
}

/* --- verdicts --------------------------------------------------------------------------------- */

/* A check of t that could not start for a local reason: no verdict on t. */
void hcs_local_error(struct hc_engine *e, struct target *t, const char *what, int err)
{
    char et[128], ip[IP_TEXT_MAX];
    int64_t now = clock_mono_ns();
    atomic_fetch_add(&e->local_errors, 1);
    if (now - e->last_local_log_ns >= 1000 * MS_NS) {
        e->last_local_log_ns = now;
        hcs_errno_text(err, et, sizeof(et));
        log_warn("msg=\"health check could not start; retried next interval\" ip=%s what=%s "
                 "error=\"%s\" local_errors=%llu",
                 ip_format(&t->ip, ip), what, et,
                 (unsigned long long)atomic_load(&e->local_errors));
    }
    schedule_next(e, t);
}

/* Record the verdict of a finished check of t (idle again, its resources released), schedule
 * the next one, and report a transition. */
void hcs_record(struct hc_engine *e, struct target *t, int ok, const char *err)
{
    int changed = 0, up = 0;
    uint64_t checks = 0;
    char errcopy[HC_ERROR_MAX] = "";

    schedule_next(e, t);
    pthread_mutex_lock(&e->lock);
    if (!t->removed) {
        t->checks++;
        t->last_ok = ok;
        t->last_check_ms = clock_wall_ms();
        if (ok) {
            if (!t->cons_ok)
                t->run_started_ms = t->last_check_ms;
            t->cons_ok++;
            t->cons_fail = 0;
            if (!t->up && t->cons_ok >= t->cfg->rise)
                changed = 1;
        } else {
            t->failures++;
            if (!t->cons_fail)
                t->run_started_ms = t->last_check_ms;
            t->cons_fail++;
            t->cons_ok = 0;
            snprintf(t->last_error, sizeof(t->last_error), "%s", err);
            if (t->up && t->cons_fail >= t->cfg->fall)
                changed = 1;
        }
        if (changed) {
            t->up = !t->up;
            t->last_change_ms = t->last_check_ms;
            if (t->up) {
                e->down--;
                metrics_gauge_dec(e->m_downg);
            } else {
                e->down++;
                metrics_gauge_inc(e->m_downg);
                snprintf(errcopy, sizeof(errcopy), "%s", t->last_error);
            }
        }
        up = t->up;
        checks = t->checks;
    }
    pthread_mutex_unlock(&e->lock);
    if (!checks)
        return; /* removed meanwhile: nobody wants the verdict */

    atomic_fetch_add(&e->checks, 1);
    if (ok) {
        metrics_counter_inc(e->m_ok);
    } else {
        atomic_fetch_add(&e->failures, 1);
        metrics_counter_inc(e->m_fail);
    }
    if (!changed)
        return;
    char ip[IP_TEXT_MAX], q[HC_ERROR_MAX + 16];
    ip_format(&t->ip, ip);
    if (up) {
        atomic_fetch_add(&e->tr_up, 1);
        metrics_counter_inc(e->m_up);
        log_info("msg=health_up ip=%s check=%s checks=%llu", ip, hcc_kind_name(t->cfg->kind),
                 (unsigned long long)checks);
    } else {
        atomic_fetch_add(&e->tr_down, 1);
        metrics_counter_inc(e->m_down);
        log_info("msg=health_down ip=%s check=%s checks=%llu error=%s", ip,
                 hcc_kind_name(t->cfg->kind), (unsigned long long)checks,
                 log_quote(errcopy, q, sizeof(q)));
    }
    if (e->on_change)
        e->on_change(e->arg, &t->ip, up, errcopy);
}

void hcs_in_flight_inc(struct hc_engine *e)
{
    e->in_flight++;
    atomic_store(&e->in_flight_pub, e->in_flight);
    if (e->in_flight > atomic_load(&e->max_in_flight))
        atomic_store(&e->max_in_flight, e->in_flight);
}

void hcs_in_flight_dec(struct hc_engine *e)
{
    e->in_flight--;
    atomic_store(&e->in_flight_pub, e->in_flight);
}
