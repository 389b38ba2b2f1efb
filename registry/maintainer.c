/*
 * maintainer.c: the maintainer thread. Every 250 ms, or at once when a verdict changed, it
 * expires leases, reconciles health verdicts and, every --resync-interval, resyncs. The
 * mutations it starts (chores) go through the committer like any other.
 */
#include "registry/internal.h"

#include <stdlib.h>
#include <time.h>

#include "util/xalloc.h"

/* Submit op on ip for the maintainer; done gets a struct chore (to free). expiry: a lease
 * removal, done only if the lease is still expired when its turn comes. */
void maintainer_chore(struct reg_registry *reg, const struct ip_addr *ip, enum reg_op op,
                      int expiry, reg_done_fn done)
{
    struct chore *c = xcalloc(1, sizeof(*c));
    c->reg = reg;
    c->ip = *ip;
    c->op = op;
    registry_submit(reg, op, ip, done, c, expiry);
}

/* The thread: every 250 ms, or at once when a verdict changed. */
static void *maintainer_main(void *arg)
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
        pthread_mutex_lock(&reg->maintainer_lock);
        if (!reg->maintainer_stop && !reg->maintainer_kick)
            pthread_cond_timedwait(&reg->maintainer_cond, &reg->maintainer_lock, &until);
        reg->maintainer_kick = 0;
        if (reg->maintainer_stop) {
            pthread_mutex_unlock(&reg->maintainer_lock);
            break;
        }
        pthread_mutex_unlock(&reg->maintainer_lock);
        leases_reap(reg);
        fleet_rebalance(reg);
        reconcile_run(reg);
        confirm_run(reg);
        strays_repair(reg);
        tree_grow_pass(reg);
        if (reg->opt.resync_ms) {
            int64_t now = clock_mono_ns();
            if (!reg->next_resync_ns)
                reg->next_resync_ns = now + (int64_t)reg->opt.resync_ms * 1000000;
            if (now >= reg->next_resync_ns) {
                resync_run(reg, 0, NULL, 0);
                reg->next_resync_ns = clock_mono_ns() + (int64_t)reg->opt.resync_ms * 1000000;
            }
        }
    }
    return NULL;
}

enum rc_code maintainer_start(struct reg_registry *reg)
{
    if (reg->maintainer_started)
        return RC_OK;
    if (pthread_create(&reg->maintainer, NULL, maintainer_main, reg) != 0)
        return RC_INTERNAL;
    reg->maintainer_started = 1;
    return RC_OK;
}

void maintainer_stop(struct reg_registry *reg)
{
    if (!reg->maintainer_started)
        return;
    pthread_mutex_lock(&reg->maintainer_lock);
    reg->maintainer_stop = 1;
    pthread_cond_signal(&reg->maintainer_cond);
    pthread_mutex_unlock(&reg->maintainer_lock);
    pthread_join(reg->maintainer, NULL);
    reg->maintainer_started = 0;
}

/* Look now (a verdict changed) instead of at the next tick. */
void maintainer_kick(struct reg_registry *reg)
{
    pthread_mutex_lock(&reg->maintainer_lock);
    reg->maintainer_kick = 1;
    pthread_cond_signal(&reg->maintainer_cond);
    pthread_mutex_unlock(&reg->maintainer_lock);
}
