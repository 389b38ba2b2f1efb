/*
 * confirm.c: "not registered" only after a fresh read of the store. Another writer (a replica
 * behind the same load balancer) may have placed an IP after this registry last read its
 * bucket, so an operation on an IP the index does not hold parks here; the maintainer thread
 * runs one resync for every request parked meanwhile (at most one per confirm_ms), then runs
 * each of them again against what it adopted. The cost does not grow with the requests: one
 * listing serves them all.
 */
#include "registry/internal.h"

#include <stdio.h>
#include <stdlib.h>

#include "util/xalloc.h"

/* Requests parked at once; beyond, reg_confirm refuses (the caller answers 503). */
#define CONFIRM_MAX 10000

struct confirm_wait {
    reg_confirm_fn fn;
    void *arg;
    struct confirm_wait *next;
};

enum rc_code reg_confirm(struct reg_registry *reg, reg_confirm_fn fn, void *arg)
{
    struct confirm_wait *w;

    if (!reg->opt.confirm_ms)
        return RC_NOT_REGISTERED; /* no other writer: the index is the store */
    pthread_mutex_lock(&reg->confirm_lock);
    if (reg->confirm_stopped || reg->confirm_n >= CONFIRM_MAX) {
        enum rc_code rc = reg->confirm_stopped ? RC_SHUTTING_DOWN : RC_TOO_MANY_REQUESTS;
        pthread_mutex_unlock(&reg->confirm_lock);
        return rc;
    }
    w = xcalloc(1, sizeof(*w));
    w->fn = fn;
    w->arg = arg;
    *reg->confirm_tail = w;
    reg->confirm_tail = &w->next;
    reg->confirm_n++;
    pthread_mutex_unlock(&reg->confirm_lock);
    maintainer_kick(reg);
    return RC_OK;
}

/* Take every parked request (the caller answers them). */
static struct confirm_wait *take_all(struct reg_registry *reg)
{
    struct confirm_wait *all;
    pthread_mutex_lock(&reg->confirm_lock);
    all = reg->confirm_head;
    reg->confirm_head = NULL;
    reg->confirm_tail = &reg->confirm_head;
    reg->confirm_n = 0;
    pthread_mutex_unlock(&reg->confirm_lock);
    return all;
}

static void answer_all(struct confirm_wait *w, enum rc_code rc, const char *detail)
{
    while (w) {
        struct confirm_wait *next = w->next;
        w->fn(w->arg, rc, detail);
        free(w);
        w = next;
    }
}

/* Maintainer thread: a round, when requests are parked and the last round is confirm_ms old. */
void confirm_run(struct reg_registry *reg)
{
    char detail[REG_DETAIL_MAX] = "";
    struct confirm_wait *w;
    int64_t now = clock_mono_ns();
    enum rc_code rc;

    if (!reg->opt.confirm_ms || now < reg->confirm_next_ns)
        return;
    w = take_all(reg);
    if (!w)
        return;
    rc = resync_run(reg, 0, detail, sizeof(detail));
    reg->confirm_next_ns = clock_mono_ns() + (int64_t)reg->opt.confirm_ms * 1000000;
    answer_all(w, rc, detail);
}

/* Whether a round is due (the maintainer sleeps until then). */
int64_t confirm_due_ns(struct reg_registry *reg)
{
    int pending;
    pthread_mutex_lock(&reg->confirm_lock);
    pending = reg->confirm_head != NULL;
    pthread_mutex_unlock(&reg->confirm_lock);
    return pending ? reg->confirm_next_ns : 0;
}

/* After the maintainer stopped: answer what is still parked; refuse what comes later. */
void confirm_stop(struct reg_registry *reg)
{
    pthread_mutex_lock(&reg->confirm_lock);
    reg->confirm_stopped = 1;
    pthread_mutex_unlock(&reg->confirm_lock);
    answer_all(take_all(reg), RC_SHUTTING_DOWN, "shutting down");
}
