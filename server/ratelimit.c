/*
 * ratelimit.c: see ratelimit.h.
 *
 * SHARDS shards, each a chained hash table of clients under its own mutex. A client is
 * {address, tokens, time of the last update}; tokens are refilled lazily when the client
 * comes back. A shard sweeps out clients whose bucket is full again at most once per
 * SWEEP_EVERY_S, and when it holds more than SHARD_MAX clients it first sweeps, then forgets
 * the least recently seen.
 */
#include "server/ratelimit.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/xalloc.h"

#define SHARDS 64
#define SLOTS 256      /* hash chains per shard */
#define SHARD_MAX 4096 /* clients per shard: 262,144 in all */
#define SWEEP_EVERY_S 10.0

struct client {
    struct ip_addr ip;
    double tokens;
    double seen; /* seconds, CLOCK_MONOTONIC */
    struct client *next;
};

struct shard {
    pthread_mutex_t lock;
    /* guarded by lock */
    struct client *slot[SLOTS];
    size_t n;
    double last_sweep;
};

struct srv_ratelimit {
    double rps, burst;
    struct shard shard[SHARDS];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct srv_ratelimit *srv_ratelimit_create(double rps, double burst)
{
    struct srv_ratelimit *rl = xcalloc(1, sizeof(*rl));
    rl->rps = rps > 0 ? rps : 1;
    rl->burst = burst >= 1 ? burst : 1;
    for (int i = 0; i < SHARDS; i++)
        pthread_mutex_init(&rl->shard[i].lock, NULL);
    return rl;
}

void srv_ratelimit_destroy(struct srv_ratelimit *rl)
{
    if (!rl)
        return;
    for (int i = 0; i < SHARDS; i++) {
        for (int k = 0; k < SLOTS; k++)
            for (struct client *c = rl->shard[i].slot[k], *nx; c; c = nx) {
                nx = c->next;
                free(c);
            }
        pthread_mutex_destroy(&rl->shard[i].lock);
    }
    free(rl);
}

static double refilled(const struct srv_ratelimit *rl, const struct client *c, double now)
{
    double t = c->tokens + (now - c->seen) * rl->rps;
    return t < rl->burst ? t : rl->burst;
}

/* Forget clients whose bucket is full again; with force, also the least recently seen until
 * the shard is below SHARD_MAX. Caller holds s->lock. */
static void sweep(const struct srv_ratelimit *rl, struct shard *s, double now, int force)
{
    for (int k = 0; k < SLOTS; k++)
        for (struct client **pp = &s->slot[k]; *pp;) {
            struct client *c = *pp;
            if (refilled(rl, c, now) >= rl->burst) {
                *pp = c->next;
                free(c);
                s->n--;
            } else {
                pp = &c->next;
            }
        }
    s->last_sweep = now;
    while (force && s->n >= SHARD_MAX) {
        struct client **oldest = NULL;
        for (int k = 0; k < SLOTS; k++)
            for (struct client **pp = &s->slot[k]; *pp; pp = &(*pp)->next)
                if (!oldest || (*pp)->seen < (*oldest)->seen)
                    oldest = pp;
        if (!oldest)
            break;
        {
            struct client *c = *oldest;
            *oldest = c->next;
            free(c);
            s->n--;
        }
    }
}

static unsigned retry_after(const struct srv_ratelimit *rl, double tokens)
{
    double wait = (1.0 - tokens) / rl->rps;
    unsigned w = wait > 3600 ? 3600 : (unsigned)wait;
    if ((double)w < wait && w < 3600)
        w++; /* round up: a token is there after w seconds */
    return w < 1 ? 1 : w;
}

int srv_ratelimit_empty(struct srv_ratelimit *rl, const struct ip_addr *a, unsigned *retry_after_s)
{
    uint64_t h = ip_hash(a);
    struct shard *s = &rl->shard[h % SHARDS];
    struct client *c;
    double tokens = rl->burst;

    pthread_mutex_lock(&s->lock);
    for (c = s->slot[(h / SHARDS) % SLOTS]; c; c = c->next)
        if (ip_cmp(&c->ip, a) == 0)
            break;
    if (c)
        tokens = refilled(rl, c, now_s());
    if (tokens < 1.0 && retry_after_s)
        *retry_after_s = retry_after(rl, tokens);
    pthread_mutex_unlock(&s->lock);
    return tokens < 1.0;
}

int srv_ratelimit_take(struct srv_ratelimit *rl, const struct ip_addr *a, unsigned *retry_after_s)
{
    uint64_t h = ip_hash(a);
    struct shard *s = &rl->shard[h % SHARDS];
    struct client *c;
    double now = now_s();
    int ok;

    pthread_mutex_lock(&s->lock);
    for (c = s->slot[(h / SHARDS) % SLOTS]; c; c = c->next)
        if (ip_cmp(&c->ip, a) == 0)
            break;
    if (!c) {
        if (now - s->last_sweep > SWEEP_EVERY_S || s->n >= SHARD_MAX)
            sweep(rl, s, now, s->n >= SHARD_MAX);
        c = xcalloc(1, sizeof(*c));
        c->ip = *a;
        c->tokens = rl->burst;
        c->seen = now;
        c->next = s->slot[(h / SHARDS) % SLOTS];
        s->slot[(h / SHARDS) % SLOTS] = c;
        s->n++;
    }
    c->tokens = refilled(rl, c, now);
    c->seen = now;
    ok = c->tokens >= 1.0;
    if (ok) {
        c->tokens -= 1.0;
    } else if (retry_after_s) {
        *retry_after_s = retry_after(rl, c->tokens);
    }
    pthread_mutex_unlock(&s->lock);
    return ok;
}

size_t srv_ratelimit_clients(struct srv_ratelimit *rl)
{
    size_t n = 0;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&rl->shard[i].lock);
        n += rl->shard[i].n;
        pthread_mutex_unlock(&rl->shard[i].lock);
    }
    return n;
}
