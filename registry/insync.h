/*
 * insync.h: the registry's insync waiter. It answers ?wait=insync: "call me back once the
 * store serves change X on every name server, or once my deadline passed".
 *
 * Many waits are in flight at once, each with its own deadline counted from its arrival.
 * Waits for the same change id share its polls. A poll is one look through the function the
 * creator gives (the registry gives its provider's one-shot change_status(),
 * registry/provider.h; Route 53: one GetChange): at once, then after min_interval_ms,
 * doubling up to max_interval_ms. All changes together make at most
 * max_polls_per_s polls per second, so waiters cannot spend the API budget the committer
 * needs; on Route 53 every poll also takes a token from the provider's own rate limiter. The
 * waiter depends on nothing else of the registry.
 *
 * Every wait is answered exactly once through its callback:
 *   RC_OK                the store serves the change everywhere (INSYNC);
 *   RC_UPSTREAM_TIMEOUT  its deadline passed first (the change stays made and durable);
 *   RC_INSYNC_UNKNOWN    a poll failed: the change was made, only its propagation is unknown;
 *   RC_SHUTTING_DOWN     the waiter was destroyed first.
 * The detail names the change and says which of these it is.
 *
 * Threading: reg_insync_wait() may be called from any thread and never blocks on the store.
 * The waiter runs its own threads, started at the first wait: one clock thread (deadlines, the
 * poll schedule and the rate cap) and `pollers` threads that make the looks, so a slow look
 * holds up no deadline, nor another change's poll while a poller is free. Callbacks run on one of
 * those threads, on the thread calling reg_insync_wait() (when the answer is known at once) or
 * on the thread calling reg_insync_destroy(); never with a waiter lock held, so a callback may
 * call reg_insync_wait() again (never reg_insync_destroy()).
 */
#ifndef R53REG_REGISTRY_INSYNC_H
#define R53REG_REGISTRY_INSYNC_H

#include <stddef.h>

#include "util/rc.h"

#define REG_INSYNC_MIN_INTERVAL_MS 500
#define REG_INSYNC_MAX_INTERVAL_MS 4000
#define REG_INSYNC_POLLERS 2

struct reg_insync;

/* Called once per wait. detail is valid during the call only; "" for RC_OK. */
typedef void (*reg_insync_fn)(void *arg, enum rc_code rc, const char *detail);

/*
 * One look at change change_id: *insync 1 when every name server serves it, 0 while it is
 * pending; on error the code, with a reason in detail[0..n). Called on the pollers, for
 * different changes at once.
 */
typedef enum rc_code (*reg_insync_look_fn)(void *ctx, const char *change_id, int *insync,
                                           char *detail, size_t n);

/* Zero fields take the defaults. */
struct reg_insync_options {
    double max_polls_per_s;   /* polls per second, all changes together; <= 0: no cap */
    unsigned min_interval_ms; /* between a change's first two polls; 0: 500 */
    unsigned max_interval_ms; /* the longest pause between polls of a change; 0: 4000 */
    unsigned pollers;         /* looks in flight at most; 0: 2 */
};

/*
 * A waiter that looks at changes with look(ctx, ...) (NULL: every change counts as in sync;
 * ctx must outlive the waiter). opt NULL: the defaults, without a cap. No thread starts until
 * the first wait. Never NULL.
 */
struct reg_insync *reg_insync_create(reg_insync_look_fn look, void *ctx,
                                     const struct reg_insync_options *opt);

/*
 * Stop: answer every pending wait with RC_SHUTTING_DOWN (on this thread), wait for the looks
 * in flight to return, join the threads and free. NULL is fine. Call it once, when no other
 * thread calls reg_insync_wait() any more, and before ctx goes (the registry's provider).
 */
void reg_insync_destroy(struct reg_insync *w);

/*
 * Wait for change_id (the store's id of a change it made; copied) for at most timeout_ms
 * from now, then call done(arg, rc, detail) as described above. An empty or NULL change_id
 * (nothing was changed), a change seen INSYNC lately or a waiter being destroyed is answered
 * before this returns. Thread-safe.
 */
void reg_insync_wait(struct reg_insync *w, const char *change_id, unsigned timeout_ms,
                     reg_insync_fn done, void *arg);

struct reg_insync_stats {
    unsigned long long polls;    /* looks made */
    unsigned long long answered; /* waits answered */
    unsigned waiting;            /* waits not answered yet */
    unsigned changes;            /* distinct changes they wait for */
};
/* A consistent copy of the counters. Thread-safe. */
void reg_insync_stats(struct reg_insync *w, struct reg_insync_stats *out);

#endif
