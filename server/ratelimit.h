/*
 * ratelimit.h: per-client token buckets (--client-rps, --client-burst) for mutations.
 *
 * Each caller address has a bucket of `burst` tokens refilled at `rps` per second; a mutation
 * takes one. Buckets that refilled completely are forgotten (they hold no information), so
 * memory follows the number of recently active clients; the table is also capped (the idlest
 * client is forgotten first, which can only make the limit more lenient for it).
 *
 * Thread-safe: the table is split into shards with one mutex each.
 */
#ifndef R53REG_SERVER_RATELIMIT_H
#define R53REG_SERVER_RATELIMIT_H

#include <stddef.h>

#include "util/ip.h"

struct srv_ratelimit;

/* rps > 0, burst >= 1. Never NULL. */
struct srv_ratelimit *srv_ratelimit_create(double rps, double burst);
/* NULL is fine. Nothing may use rl during or after the call. */
void srv_ratelimit_destroy(struct srv_ratelimit *rl);

/*
 * Take one token from a's bucket. 1 when there was one; 0 when not, with *retry_after_s the
 * whole seconds (>= 1) until there will be one. Thread-safe.
 */
int srv_ratelimit_take(struct srv_ratelimit *rl, const struct ip_addr *a, unsigned *retry_after_s);

/*
 * Would a take fail now? 1 when a's bucket holds less than one token (*retry_after_s as for
 * srv_ratelimit_take), 0 otherwise; takes nothing and tracks no new client. Thread-safe.
 */
int srv_ratelimit_empty(struct srv_ratelimit *rl, const struct ip_addr *a, unsigned *retry_after_s);

/* Clients currently tracked (tests). Thread-safe. */
size_t srv_ratelimit_clients(struct srv_ratelimit *rl);

#endif
