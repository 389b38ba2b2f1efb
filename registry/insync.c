/*
 * insync.c: the insync waiter (contract: insync.h).
 *
 * State: the changes waited for, each with its waiters (deadline, callback) and its poll
 * schedule (when the next poll may start, the pause after it, whether a poller has it); the
 * pollers' FIFO of changes handed to them; when the next poll may start at the earliest (the
 * rate cap); a ring of the latest changes seen INSYNC, so a late waiter for one of them is
 * answered at once.
 *
 * The clock thread expires waiters whose deadline passed and hands due changes to the pollers,
 * the change whose poll is most overdue first, one per 1/max_polls_per_s at most, while fewer
 * than `pollers` changes are handed out. A poller makes one look (the creator's function;
 * the waiter knows nothing of providers) with no lock held, then answers the change's waiters
 * (INSYNC or a failed look) or schedules its next poll.
 *
 * Invariants (whenever the lock is free): a waiter not yet answered is on exactly one
 * change's list, and it is taken off under the lock before it is answered, so it is answered
 * exactly once; a change is busy (queued for or polled by one poller) at most once at a time;
 * a change with no waiters is freed by whoever makes it idle (the clock thread, or the poller
 * that had it).
 *
 * Lock: one mutex, a leaf: never held across a look or a callback.
 */
#include "registry/insync.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/xalloc.h"

#define RECENT_MAX 64  /* changes remembered INSYNC */
#define DETAIL_MAX 512 /* bytes of an answer's detail (a longer one is cut) */
#define NS_PER_MS 1000000LL

struct waiter {
    char *id; /* owned */
    unsigned timeout_ms;
    int64_t deadline_ns; /* CLOCK_MONOTONIC */
    reg_insync_fn done;
    void *arg;
    struct waiter *next;
};

struct change {
    char *id;             /* owned */
    int64_t due_ns;       /* the next poll not before (CLOCK_MONOTONIC) */
    unsigned interval_ms; /* the pause after the next poll */
    int busy;             /* on the pollers' FIFO or being polled */
    struct waiter *waiters;
    struct change *next;      /* all changes */
    struct change *work_next; /* the pollers' FIFO */
};

struct reg_insync {
    reg_insync_look_fn look; /* NULL: every change is in sync */
    void *ctx;
    struct reg_insync_options opt;
    int64_t spacing_ns; /* 1 s / max_polls_per_s; 0: no cap */

    pthread_mutex_t lock;
    pthread_cond_t clock_cond; /* the clock thread waits here (CLOCK_MONOTONIC) */
    pthread_cond_t work_cond;  /* pollers wait here */
    /* guarded by lock */
    struct change *changes;
    struct change *work_head, **work_tail;
    unsigned busy;        /* changes busy */
    int64_t next_slot_ns; /* no poll starts before (the rate cap) */
    int64_t earliest_ns;  /* no waiter's deadline is before (INT64_MAX: none known) */
    int stopping;
    char *recent[RECENT_MAX]; /* owned; NULL: unused */
    size_t recent_next;
    struct reg_insync_stats stats;
    int clock_started;
    unsigned pollers_started;
    pthread_t clock;
    pthread_t *pollers; /* opt.pollers of them */
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The detail a waiter is answered with; why is the failed poll's own detail. */
static void describe(const struct waiter *wt, enum rc_code rc, const char *why, char *out, size_t n)
{
    switch (rc) {
    case RC_OK: rc_detail(out, n, "%s", ""); break;
    case RC_UPSTREAM_TIMEOUT:
        rc_detail(out, n,
                  "the DNS provider accepted change %s (it is durable), but did not confirm "
                  "within %u ms that every name server serves it",
                  wt->id, wt->timeout_ms);
        break;
    case RC_INSYNC_UNKNOWN:
        rc_detail(out, n,
                  "the DNS provider accepted change %s (it is durable); only its propagation "
                  "is unknown: %s",
                  wt->id, why && *why ? why : "its status could not be read");
        break;
    case RC_SHUTTING_DOWN:
        rc_detail(out, n,
                  "the DNS provider accepted change %s (it is durable); the service stopped "
                  "before every name server was confirmed to serve it",
                  wt->id);
        break;
    default:
        rc_detail(out, n, "the DNS provider accepted change %s (it is durable); %s", wt->id,
                  why && *why ? why : "its propagation is unknown");
        break;
    }
}

/* Answer every waiter of list with rc and free them. Called with no lock held. */
static void answer_list(struct reg_insync *w, struct waiter *list, enum rc_code rc, const char *why)
{
    char detail[DETAIL_MAX];
    unsigned long long n = 0;

    while (list) {
        struct waiter *next = list->next;
        describe(list, rc, why, detail, sizeof(detail));
        list->done(list->arg, rc, detail);
        free(list->id);
        free(list);
        list = next;
        n++;
    }
    if (n) {
        pthread_mutex_lock(&w->lock);
        w->stats.answered += n;
        pthread_mutex_unlock(&w->lock);
    }
}

/* Unlink c from the changes and free it. Caller holds lock; c has no waiters. */
static void change_free(struct reg_insync *w, struct change *c)
{
    struct change **pp = &w->changes;
    while (*pp != c)
        pp = &(*pp)->next;
    *pp = c->next;
    w->stats.changes--;
    free(c->id);
    free(c);
}

/* Remember id as INSYNC. Caller holds lock. */
static void recent_add(struct reg_insync *w, const char *id)
{
    free(w->recent[w->recent_next]);
    w->recent[w->recent_next] = xstrdup(id);
    w->recent_next = (w->recent_next + 1) % RECENT_MAX;
}

/* Was id seen INSYNC lately? Caller holds lock. */
static int recent_has(const struct reg_insync *w, const char *id)
{
    for (size_t i = 0; i < RECENT_MAX; i++)
        if (w->recent[i] && !strcmp(w->recent[i], id))
            return 1;
    return 0;
}

/*
 * Take every waiter whose deadline passed off its change (the expired list, to be answered)
 * and free the changes left without waiters. *wake becomes at most the earliest deadline
 * still ahead. The waiters are only walked once earliest_ns came, so many waits cost one
 * walk per deadline, not one per event. Caller holds lock.
 */
static struct waiter *expire_waiters(struct reg_insync *w, int64_t now, int64_t *wake)
{
    struct waiter *expired = NULL;
    int due = now >= w->earliest_ns;
    struct change *c = due ? w->changes : NULL;

    if (due)
        w->earliest_ns = INT64_MAX; /* recomputed from the waiters left */
    while (c) {
        struct change *next = c->next;
        struct waiter **pp = &c->waiters;
        while (*pp) {
            struct waiter *wt = *pp;
            if (wt->deadline_ns <= now) {
                *pp = wt->next;
                wt->next = expired;
                expired = wt;
                w->stats.waiting--;
                continue;
            }
            if (wt->deadline_ns < w->earliest_ns)
                w->earliest_ns = wt->deadline_ns;
            pp = &wt->next;
        }
        if (!c->waiters && !c->busy)
            change_free(w, c);
        c = next;
    }
    if (w->earliest_ns < *wake)
        *wake = w->earliest_ns;
    return expired;
}

/*
 * Hand due changes to the pollers, most overdue first, within the rate cap and while a
 * poller is free. *wake becomes at most the time the next one may be handed out. Caller
 * holds lock.
 */
static void dispatch_polls(struct reg_insync *w, int64_t now, int64_t *wake)
{
    while (w->busy < w->pollers_started) {
        struct change *pick = NULL;
        int64_t start;
        for (struct change *c = w->changes; c; c = c->next)
            if (!c->busy && c->waiters && (!pick || c->due_ns < pick->due_ns))
                pick = c;
        if (!pick)
            break;
        start = pick->due_ns > w->next_slot_ns ? pick->due_ns : w->next_slot_ns;
        if (start > now) {
            if (start < *wake)
                *wake = start;
            break;
        }
        pick->busy = 1;
        w->busy++;
        pick->work_next = NULL;
        *w->work_tail = pick;
        w->work_tail = &pick->work_next;
        if (w->spacing_ns)
            w->next_slot_ns = now + w->spacing_ns;
        pthread_cond_signal(&w->work_cond);
    }
}

static void *clock_main(void *arg)
{
    struct reg_insync *w = arg;

    pthread_mutex_lock(&w->lock);
    while (!w->stopping) {
        int64_t now = now_ns(), wake = INT64_MAX;
        struct waiter *expired = expire_waiters(w, now, &wake);
        dispatch_polls(w, now, &wake);
        if (expired) {
            pthread_mutex_unlock(&w->lock);
            answer_list(w, expired, RC_UPSTREAM_TIMEOUT, NULL);
            pthread_mutex_lock(&w->lock);
            continue;
        }
        if (wake == INT64_MAX) {
            pthread_cond_wait(&w->clock_cond, &w->lock);
        } else {
            struct timespec ts = {(time_t)(wake / 1000000000LL), (long)(wake % 1000000000LL)};
            pthread_cond_timedwait(&w->clock_cond, &w->lock, &ts);
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void *poller_main(void *arg)
{
    struct reg_insync *w = arg;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        struct change *c;
        struct waiter *answered = NULL;
        char *id, why[DETAIL_MAX] = "";
        int insync = 0;
        enum rc_code rc;

        while (!w->work_head && !w->stopping)
            pthread_cond_wait(&w->work_cond, &w->lock);
        if (w->stopping)
            break;
        c = w->work_head;
        w->work_head = c->work_next;
        if (!w->work_head)
            w->work_tail = &w->work_head;
        id = xstrdup(c->id); /* c may go while its waiters are answered */
        pthread_mutex_unlock(&w->lock);

        rc = w->look(w->ctx, id, &insync, why, sizeof(why));

        pthread_mutex_lock(&w->lock);
        w->stats.polls++;
        c->busy = 0;
        w->busy--;
        if (rc || insync) {
            answered = c->waiters;
            c->waiters = NULL;
            for (struct waiter *wt = answered; wt; wt = wt->next)
                w->stats.waiting--;
            if (!rc)
                recent_add(w, id);
        } else {
            c->due_ns = now_ns() + (int64_t)c->interval_ms * NS_PER_MS;
            c->interval_ms = c->interval_ms * 2 < w->opt.max_interval_ms ? c->interval_ms * 2
                                                                         : w->opt.max_interval_ms;
        }
        if (!c->waiters)
            change_free(w, c);
        pthread_cond_signal(&w->clock_cond); /* a poller is free; maybe a new due time */
        if (answered) {
            pthread_mutex_unlock(&w->lock);
            if (rc)
                log_warn("msg=\"insync poll failed\" change_id=%s rc=%s detail=\"%s\"", id,
                         rc_slug(rc), why);
            answer_list(w, answered, rc ? RC_INSYNC_UNKNOWN : RC_OK, why);
            pthread_mutex_lock(&w->lock);
        }
        free(id);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Start the threads not running yet. Caller holds lock. 0 when the clock and at least one
 * poller run. */
static int threads_start(struct reg_insync *w)
{
    while (w->pollers_started < w->opt.pollers &&
           pthread_create(&w->pollers[w->pollers_started], NULL, poller_main, w) == 0)
        w->pollers_started++;
    if (!w->clock_started && pthread_create(&w->clock, NULL, clock_main, w) == 0)
        w->clock_started = 1;
    return w->clock_started && w->pollers_started ? 0 : -1;
}

struct reg_insync *reg_insync_create(reg_insync_look_fn look, void *ctx,
                                     const struct reg_insync_options *opt)
{
    struct reg_insync *w = xcalloc(1, sizeof(*w));
    pthread_condattr_t ca;

    w->look = look;
    w->ctx = ctx;
    if (opt)
        w->opt = *opt;
    if (!w->opt.min_interval_ms)
        w->opt.min_interval_ms = REG_INSYNC_MIN_INTERVAL_MS;
    if (!w->opt.max_interval_ms)
        w->opt.max_interval_ms = REG_INSYNC_MAX_INTERVAL_MS;
    if (w->opt.max_interval_ms < w->opt.min_interval_ms)
        w->opt.max_interval_ms = w->opt.min_interval_ms;
    if (!w->opt.pollers)
        w->opt.pollers = REG_INSYNC_POLLERS;
    if (w->opt.max_polls_per_s > 0)
        w->spacing_ns = (int64_t)(1e9 / w->opt.max_polls_per_s);
    w->pollers = xcalloc(w->opt.pollers, sizeof(*w->pollers));
    w->work_tail = &w->work_head;
    w->earliest_ns = INT64_MAX;
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->clock_cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&w->work_cond, NULL);
    return w;
}

void reg_insync_destroy(struct reg_insync *w)
{
    struct waiter *pending = NULL;

    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    for (struct change *c = w->changes; c; c = c->next) {
        while (c->waiters) {
            struct waiter *wt = c->waiters;
            c->waiters = wt->next;
            wt->next = pending;
            pending = wt;
            w->stats.waiting--;
        }
    }
    pthread_cond_broadcast(&w->clock_cond);
    pthread_cond_broadcast(&w->work_cond);
    pthread_mutex_unlock(&w->lock);
    answer_list(w, pending, RC_SHUTTING_DOWN, NULL);

    /* A poller in a look finishes it first: ctx (the provider) must still exist. */
    for (unsigned i = 0; i < w->pollers_started; i++)
        pthread_join(w->pollers[i], NULL);
    if (w->clock_started)
        pthread_join(w->clock, NULL);
    while (w->changes) {
        struct change *c = w->changes;
        w->changes = c->next;
        free(c->id);
        free(c);
    }
    for (size_t i = 0; i < RECENT_MAX; i++)
        free(w->recent[i]);
    pthread_cond_destroy(&w->clock_cond);
    pthread_cond_destroy(&w->work_cond);
    pthread_mutex_destroy(&w->lock);
    free(w->pollers);
    free(w);
}

/* Put wt on its change's list, making the change when it is new; wake the clock thread when
 * it has something new to do (a change to poll, an earlier deadline). Caller holds lock. */
static void waiter_add(struct reg_insync *w, struct waiter *wt)
{
    struct change *c;
    int wake = 0;
    for (c = w->changes; c; c = c->next)
        if (!strcmp(c->id, wt->id))
            break;
    if (!c) {
        c = xcalloc(1, sizeof(*c));
        c->id = xstrdup(wt->id);
        c->due_ns = now_ns(); /* the first poll at once */
        c->interval_ms = w->opt.min_interval_ms;
        c->next = w->changes;
        w->changes = c;
        w->stats.changes++;
        wake = 1;
    }
    wt->next = c->waiters;
    c->waiters = wt;
    w->stats.waiting++;
    if (wt->deadline_ns < w->earliest_ns) {
        w->earliest_ns = wt->deadline_ns;
        wake = 1;
    }
    if (wake)
        pthread_cond_signal(&w->clock_cond);
}

void reg_insync_wait(struct reg_insync *w, const char *change_id, unsigned timeout_ms,
                     reg_insync_fn done, void *arg)
{
    struct waiter *wt = xcalloc(1, sizeof(*wt));
    enum rc_code rc = RC_OK;
    const char *why = NULL;
    int queued = 0;

    wt->id = xstrdup(change_id ? change_id : "");
    wt->timeout_ms = timeout_ms;
    wt->deadline_ns = now_ns() + (int64_t)timeout_ms * NS_PER_MS;
    wt->done = done;
    wt->arg = arg;
    if (!wt->id[0] || !w->look)
        goto out; /* nothing was changed, or no store to ask: in sync */
    pthread_mutex_lock(&w->lock);
    if (w->stopping) {
        rc = RC_SHUTTING_DOWN;
    } else if (recent_has(w, wt->id)) {
        rc = RC_OK;
    } else if (threads_start(w) != 0) {
        log_error("msg=\"insync waiter not started\" reason=\"pthread_create failed\"");
        rc = RC_INTERNAL;
        why = "the insync waiter could not start a thread";
    } else {
        waiter_add(w, wt);
        queued = 1;
    }
    pthread_mutex_unlock(&w->lock);
out:
    if (!queued)
        answer_list(w, wt, rc, why);
}

void reg_insync_stats(struct reg_insync *w, struct reg_insync_stats *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->stats;
    pthread_mutex_unlock(&w->lock);
}
