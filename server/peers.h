/*
 * peers.h: replicas that know each other (--peers; docs/design-replicas.md, "Peers").
 *
 * One thread polls GET /fleet/peer of every configured peer URL every poll_ms (2 s) with the
 * peer token. A peer is live while it answered within the last 3 polls (plus one timeout).
 * The fleet is this replica and the live peers, by distinct instance id; a URL that answers
 * with this replica's own id is this replica and is ignored from then on. On every change of
 * the fleet: the registry learns the members (health check ownership), the Route 53 limiter
 * takes 1 / fleet size of the configured budget, and the r53reg_fleet_replicas gauge follows.
 * A peer that reports a new Throttling cut (its count of local cuts grew, the last one
 * recent) makes this replica cut too, once per event.
 *
 * Thread-safety: srv_peers_members, srv_peers_fleet_size, srv_peers_instance and the two
 * hooks may be called from any thread; create/destroy from one thread, with nothing else
 * using the object. The lease hook (srv_peers_heard) is meant for the registry's maintainer
 * thread only (one connection of its own, not shared).
 */
#ifndef R53REG_SERVER_PEERS_H
#define R53REG_SERVER_PEERS_H

#include <jansson.h>
#include <stddef.h>

#include "registry/registry.h"

#define SRV_PEERS_MAX 16
#define SRV_PEERS_INSTANCE_MAX 64 /* bytes of an instance id, NUL excluded */

struct ratelimit;

struct srv_peers_options {
    const char *const *urls;   /* base URLs, http(s)://host[:port], no trailing slash */
    size_t nurls;              /* <= SRV_PEERS_MAX */
    const char *token;         /* sent as Authorization: Bearer; NULL: none (copied) */
    struct reg_registry *reg;  /* told the members; its maintainer asks through srv_peers_heard */
    struct ratelimit *limiter; /* divided by the fleet size; NULL: none (memory store) */
    unsigned poll_ms;          /* 0: 2000 */
    unsigned timeout_ms;       /* per request, connect included; 0: 1000 */
    const char *instance;      /* NULL: random (tests pass their own) */
};

struct srv_peers;

/* Create (a random instance id unless given, the start time) and start the poll thread. NULL
 * when the thread cannot start (logged). Hooks reg with reg_set_peers. */
struct srv_peers *srv_peers_create(const struct srv_peers_options *o);
/* Stop the poll thread (it calls into the registry: stop it before reg_destroy). The lease
 * hook keeps working with the last known members. NULL is fine; idempotent. */
void srv_peers_stop(struct srv_peers *p);
/* Stop and free everything (the token wiped). NULL is fine. Only once the registry's
 * maintainer cannot call the lease hook any more (after reg_destroy). */
void srv_peers_destroy(struct srv_peers *p);

const char *srv_peers_instance(const struct srv_peers *p);
/* 1 + live peers. */
size_t srv_peers_fleet_size(struct srv_peers *p);
/* The live members' instance ids, self included, sorted: *ids (free each and the array) and
 * the count. */
size_t srv_peers_members(struct srv_peers *p, char ***ids);

/* GET /fleet/peer's answer: {instance, version, started, fleet_size, members, api_share,
 * throttle: {cuts, last_cut_ms_ago}}. A new reference. arg: the srv_peers. */
json_t *srv_peers_describe(void *arg);

/* reg_peers_heard_fn: ask every live peer GET /fleet/leases for ips (batched: as many per
 * request as fit a short URL) and keep, per IP, the most recent sign of life any of them
 * heard. An IP a live peer could not answer for (request failed: timeout, 5xx, 401; or no
 * valid item in its place of the answer) is marked unknown; a heard_ms_ago beyond
 * REG_MAX_LEASE s counts as not heard. */
void srv_peers_heard(void *arg, const struct ip_addr *ips, size_t n, struct reg_heard *out);

#endif
