/*
 * engine.c: the health check engine's lifecycle and its thread. hc_engine_create() sets up the
 * epoll set, the wakeup eventfd, the curl multi handle and the metrics and starts the thread;
 * hc_engine_destroy() stops it and frees everything. The thread's loop (see internal.h for one
 * turn) applies the add and remove queues that registry/checker/targets.c fills, expires TCP
 * deadlines, runs curl's timer, starts due checks within max_parallel and dispatches epoll
 * events to the probes.
 *
 * Threading: the loop is the engine thread. Here it takes the engine's lock only to take the
 * queues and, when stopping, to walk the table (hcs_record() takes it for each verdict). Only
 * the engine thread frees a target (see internal.h), except hc_engine_destroy() once the
 * thread has been joined.
 */
#include "registry/checker/internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"
#include "util/xalloc.h"

#define MAX_EVENTS 256

void hce_wake(struct hc_engine *e)
{
    uint64_t one = 1;
    ssize_t r;
    do {
        r = write(e->evfd, &one, sizeof(one));
    } while (r < 0 && errno == EINTR);
}

static void target_free(struct target *t, const struct cfg *defcfg)
{
    if (!t)
        return;
    if (t->cfg != defcfg) {
        hcc_cfg_release(t->cfg);
        free(t->cfg);
    }
    hcc_cfg_release(t->pending_cfg);
    free(t->pending_cfg);
    free(t);
}

/* --- the engine thread ------------------------------------------------------------------------ */

static void cancel_check(struct hc_engine *e, struct target *t)
{
    switch (t->state) {
    case T_IDLE: hcs_heap_remove(&e->due, t); break;
    case T_TCP: hct_end(e, t); break;
    case T_HTTP: hch_end(e, t); break;
    case T_NEW: break;
    }
    t->state = T_NEW;
}

/* Apply queued adds and removes. */
static void apply_queues(struct hc_engine *e)
{
    struct target *adds, *rms, *t;
    int64_t now = clock_mono_ns();

    pthread_mutex_lock(&e->lock);
    adds = e->add_queue;
    rms = e->rm_queue;
    e->add_queue = e->rm_queue = NULL;
    for (t = adds; t; t = t->add_next) {
        t->queued_add = 0;
        if (t->removed)
            continue;
        if (t->has_pending_cfg) {
            if (t->cfg != &e->defcfg) {
                hcc_cfg_release(t->cfg);
                free(t->cfg);
            }
            t->cfg = t->pending_cfg ? t->pending_cfg : &e->defcfg;
            t->pending_cfg = NULL;
            t->has_pending_cfg = 0;
        }
        if (t->state == T_NEW)
            hcs_schedule_first(e, t, now);
    }
    pthread_mutex_unlock(&e->lock);
    while ((t = rms)) {
        rms = t->rm_next;
        cancel_check(e, t);
        target_free(t, &e->defcfg);
    }
}

static void start_due(struct hc_engine *e, int64_t now)
{
    struct target *t;
    while (e->in_flight < e->max_parallel && (t = hcs_heap_top(&e->due)) &&
           t->key <= now + hcs_start_slack(t)) {
        hcs_heap_remove(&e->due, t);
        t->due_ns = t->key;
        t->state = T_NEW;
        t->started_ns = now;
        if (t->cfg->kind == HC_TCP)
            hct_start(e, t);
        else
            hch_start(e, t);
    }
}

static int wait_ms(struct hc_engine *e, int64_t now)
{
    int64_t next = INT64_MAX;
    struct target *t;
    if ((t = hcs_heap_top(&e->deadline)))
        next = t->key;
    if (e->curl_due_ns >= 0 && e->curl_due_ns < next)
        next = e->curl_due_ns;
    if (e->in_flight < e->max_parallel && (t = hcs_heap_top(&e->due)) && t->key < next)
        next = t->key;
    if (next == INT64_MAX)
        return -1;
    if (next <= now)
        return 0;
    int64_t ms = (next - now + MS_NS - 1) / MS_NS;
    return ms > 60000 ? 60000 : (int)ms;
}

static void *engine_main(void *arg)
{
    struct hc_engine *e = arg;
    struct epoll_event evs[MAX_EVENTS];

    for (;;) {
        apply_queues(e);
        if (atomic_load(&e->stop))
            break;
        int64_t now = clock_mono_ns();
        hct_expire(e, now);
        if (e->curl_due_ns >= 0 && e->curl_due_ns <= now) {
            e->curl_due_ns = -1;
            hch_action(e, CURL_SOCKET_TIMEOUT, 0);
        }
        now = clock_mono_ns();
        start_due(e, now);
        int n = epoll_wait(e->epfd, evs, MAX_EVENTS, wait_ms(e, clock_mono_ns()));
        if (n < 0) {
            if (errno != EINTR)
                log_error("msg=\"health epoll_wait failed\" errno=%d", errno);
            continue;
        }
        for (int i = 0; i < n; i++) {
            uint64_t d = evs[i].data.u64;
            uint32_t ev = evs[i].events;
            if (d == TAG_WAKE) {
                uint64_t v;
                (void)!read(e->evfd, &v, sizeof(v));
            } else if (d & TAG_CURL) {
                int mask = ((ev & EPOLLIN) ? CURL_CSELECT_IN : 0) |
                           ((ev & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                           ((ev & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
                hch_action(e, (curl_socket_t)(d >> 2), mask);
            } else {
                hct_event(e, (struct target *)(uintptr_t)d, ev);
            }
        }
    }

    /* Stopping: cancel whatever is in flight; hc_engine_destroy() frees the rest. */
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < e->table_size; i++)
        for (struct target *t = e->table[i]; t; t = t->hnext)
            cancel_check(e, t);
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

/* --- lifecycle -------------------------------------------------------------------------------- */

struct hc_engine *hc_engine_create(const struct hc_options *opt)
{
    static const struct hc_options none;
    struct hc_engine *e = NULL;
    char detail[160];
    const struct hc_check *d;
    struct metrics_registry *reg = metrics_default();
    struct metrics_counter_family *cf;
    struct metrics_gauge_family *gf;
    const struct cfg builtin = {
        .kind = HC_TCP,
        .port = 0,
        .path = (char *)"/",
        .status_min = HC_DEFAULT_STATUS_MIN,
        .status_max = HC_DEFAULT_STATUS_MAX,
        .interval_ms = HC_DEFAULT_INTERVAL_MS,
        .timeout_ms = HC_DEFAULT_TIMEOUT_MS,
        .rise = HC_DEFAULT_RISE,
        .fall = HC_DEFAULT_FALL,
        .tls_verify = 0,
    };

    if (!opt)
        opt = &none;
    d = &opt->defaults;
    if (hc_check_validate(d, detail, sizeof(detail)) != RC_OK) {
        log_error("msg=\"health engine not started\" reason=\"%s\"", detail);
        return NULL;
    }
    if (opt->max_parallel > 100000) {
        log_error("msg=\"health engine not started\" reason=\"max_parallel must be 1..100000\"");
        return NULL;
    }
    e = xcalloc(1, sizeof(*e));
    e->epfd = e->evfd = -1;
    e->curl_due_ns = -1;
    hcc_cfg_resolve(&builtin, d, &e->defcfg);
    if (e->defcfg.status_min > e->defcfg.status_max) {
        log_error("msg=\"health engine not started\" reason=\"status_min exceeds status_max\"");
        goto fail;
    }
    e->max_parallel = opt->max_parallel ? opt->max_parallel : HC_DEFAULT_MAX_PARALLEL;
    e->start_down = opt->start_down;
    e->on_change = opt->on_change;
    e->arg = opt->arg;
    e->rng = (uint64_t)clock_mono_ns() ^ (uint64_t)(uintptr_t)e;
    pthread_mutex_init(&e->lock, NULL);
    e->table_size = 64;
    e->table = xcalloc(e->table_size, sizeof(*e->table));

    cf = metrics_counter_create(reg, "r53reg_health_checks_total", "Health checks completed",
                                "result");
    e->m_ok = metrics_counter_with(cf, "ok");
    e->m_fail = metrics_counter_with(cf, "fail");
    cf = metrics_counter_create(reg, "r53reg_health_transitions_total",
                                "Health state changes of checked backends", "to");
    e->m_up = metrics_counter_with(cf, "up");
    e->m_down = metrics_counter_with(cf, "down");
    gf = metrics_gauge_create(reg, "r53reg_health_targets", "Backends health-checked", NULL);
    e->m_targets = metrics_gauge_child(gf);
    gf = metrics_gauge_create(reg, "r53reg_health_down", "Health-checked backends now down", NULL);
    e->m_downg = metrics_gauge_child(gf);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("msg=\"health engine not started\" reason=\"curl_global_init failed\"");
        goto fail;
    }
    e->curl_inited = 1;
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    e->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    e->multi = curl_multi_init();
    if (e->epfd < 0 || e->evfd < 0 || !e->multi) {
        log_error("msg=\"health engine not started\" reason=\"epoll, eventfd or curl multi "
                  "handle unavailable\" errno=%d",
                  errno);
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_WAKE};
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->evfd, &ev) != 0) {
        log_error("msg=\"health engine not started\" reason=\"epoll_ctl failed\" errno=%d", errno);
        goto fail;
    }
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, hch_socket_cb);
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, hch_timer_cb);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
    if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
        log_error("msg=\"health engine not started\" reason=\"pthread_create failed\"");
        goto fail;
    }
    e->thread_started = 1;
    /* The defaults of targets added without an override (the server's --check*). */
    log_info("msg=health_engine_started default_check=%s default_port=%u interval_ms=%u "
             "timeout_ms=%u rise=%u fall=%u max_parallel=%u",
             hcc_kind_name(e->defcfg.kind), e->defcfg.port, e->defcfg.interval_ms,
             e->defcfg.timeout_ms, e->defcfg.rise, e->defcfg.fall, e->max_parallel);
    return e;
fail:
    hc_engine_destroy(e);
    return NULL;
}

void hc_engine_destroy(struct hc_engine *e)
{
    if (!e)
        return;
    if (e->thread_started) {
        atomic_store(&e->stop, 1);
        hce_wake(e);
        pthread_join(e->thread, NULL);
    }
    /* Single-threaded from here. The thread's last turn applied the queues and cancelled
     * every check; what is left is memory. Removed targets are no longer in the table. */
    while (e->rm_queue) {
        struct target *t = e->rm_queue;
        e->rm_queue = t->rm_next;
        target_free(t, &e->defcfg);
    }
    for (size_t i = 0; i < e->table_size; i++) {
        struct target *t = e->table[i];
        while (t) {
            struct target *next = t->hnext;
            target_free(t, &e->defcfg);
            t = next;
        }
    }
    if (e->table) {
        metrics_gauge_add(e->m_targets, -(double)e->count);
        metrics_gauge_add(e->m_downg, -(double)e->down);
        pthread_mutex_destroy(&e->lock);
    }
    free(e->table);
    free(e->due.v);
    free(e->deadline.v);
    if (e->multi)
        curl_multi_cleanup(e->multi);
    if (e->epfd >= 0)
        close(e->epfd);
    if (e->evfd >= 0)
        close(e->evfd);
    if (e->curl_inited)
        curl_global_cleanup();
    hcc_cfg_release(&e->defcfg);
    free(e);
}
