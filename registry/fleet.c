/*
 * fleet.c: what the registry knows of the other replicas writing the same zone
 * (docs/design-replicas.md, "Peers"): the live members, which of them checks each backend
 * (rendezvous hashing: pure, below), and what this replica heard of each backend lately
 * (for the other replicas' lease expiries). The network side (polling peers, asking them
 * about leases) is the server's (server/peers.c), reached through the function handed to
 * reg_set_peers.
 *
 * Threading: the member list is guarded by fleet_lock, a leaf lock (taken after the index
 * lock, never while waiting for anything); fleet_gen counts membership changes, so the
 * maintainer moves health check ownership once per change (reconcile_run).
 */
#include "registry/internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

/* FNV-1a over the instance id, then the address, finished with splitmix64's mixer: small
 * changes (one id character, one address bit) spread over every bit of the weight. */
static uint64_t rendezvous_weight(const char *id, const struct ip_addr *ip)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL; /* separator: "ab"+x differs from "a"+"b"x */
    h = (h ^ (unsigned)ip->family) * 1099511628211ULL;
    for (size_t i = 0; i < sizeof(ip->b); i++)
        h = (h ^ ip->b[i]) * 1099511628211ULL;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

size_t reg_rendezvous_owner(const char *const *ids, size_t n, const struct ip_addr *ip)
{
    size_t best = 0;
    uint64_t best_w = 0;

    for (size_t i = 0; i < n; i++) {
        uint64_t w = rendezvous_weight(ids[i], ip);
        /* ties (practically never) go to the smaller id, so every member picks the same */
        if (i == 0 || w > best_w || (w == best_w && strcmp(ids[i], ids[best]) < 0)) {
            best = i;
            best_w = w;
        }
    }
    return best;
}

void reg_set_peers(struct reg_registry *reg, reg_peers_heard_fn fn, void *arg)
{
    reg->peers_heard = fn;
    reg->peers_arg = arg;
}

static void members_free(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

void reg_set_members(struct reg_registry *reg, const char *self, const char *const *ids, size_t n)
{
    char **copy = NULL, **old;
    size_t oldn, self_at = 0;
    int found = 0;

    if (n > 1 && self) {
        copy = xcalloc(n, sizeof(*copy));
        for (size_t i = 0; i < n; i++) {
            copy[i] = xstrdup(ids[i]);
            if (!strcmp(ids[i], self))
                self_at = i, found = 1;
        }
        if (!found) { /* not a member of its own fleet: check everything, as alone */
            members_free(copy, n);
            copy = NULL;
        }
    }
    pthread_mutex_lock(&reg->fleet_lock);
    old = reg->members;
    oldn = reg->nmembers;
    reg->members = copy;
    reg->nmembers = copy ? n : 0;
    reg->self_member = self_at;
    pthread_mutex_unlock(&reg->fleet_lock);
    members_free(old, oldn);
    atomic_fetch_add(&reg->fleet_gen, 1);
    maintainer_kick(reg);
}

/* Is this replica the one that checks ip? Always, without other live members. Takes
 * fleet_lock (a leaf). */
int fleet_owns(struct reg_registry *reg, const struct ip_addr *ip)
{
    int mine = 1;
    pthread_mutex_lock(&reg->fleet_lock);
    if (reg->nmembers > 1)
        mine = reg_rendezvous_owner((const char *const *)reg->members, reg->nmembers, ip) ==
               reg->self_member;
    pthread_mutex_unlock(&reg->fleet_lock);
    return mine;
}

/*
 * Membership changed since the last look: hand each backend checked by default (--check)
 * to its owner. A backend this replica no longer owns leaves its checker (no more checks, no
 * more verdicts written); one it now owns is added in the state the zone holds it in (down
 * set = down) with fresh rise/fall counters, so a move of ownership alone never moves a
 * backend. Per-registration checks stay where they were registered. A backend registered
 * here but owned elsewhere is handed over once its interim is over (reconcile_track).
 * Maintainer thread.
 */
void fleet_rebalance(struct reg_registry *reg)
{
    unsigned long long gen = atomic_load(&reg->fleet_gen);
    int64_t now = clock_mono_ns(), next = 0;
    size_t gained = 0, lost = 0;

    if (!reg->checker || !reg->check_all)
        return;
    pthread_mutex_lock(&reg->index_lock);
    if (gen == reg->fleet_gen_seen && (!reg->interim_next_ns || now < reg->interim_next_ns)) {
        pthread_mutex_unlock(&reg->index_lock);
        return;
    }
    reg->fleet_gen_seen = gen;
    for (size_t i = 0; i < reg->table_size; i++)
        for (struct entry *e = reg->table[i]; e; e = e->next) {
            int mine;
            if (e->own_check || e->state == ENTRY_ADDING || e->state == ENTRY_REMOVING)
                continue;
            if (e->interim_until_ns > now) { /* the owner may not know it yet */
                if (!next || e->interim_until_ns < next)
                    next = e->interim_until_ns;
                continue;
            }
            e->interim_until_ns = 0;
            mine = fleet_owns(reg, &e->ip);
            if (!mine && !e->not_mine) {
                e->not_mine = 1;
                if (e->checked) {
                    hc_engine_remove(reg->checker, &e->ip);
                    e->checked = 0;
                    e->health_down = 0;
                    e->held = 0;
                }
                lost++;
            } else if (mine && e->not_mine) {
                e->not_mine = 0;
                reconcile_track(reg, e);
                gained++;
            }
        }
    reg->interim_next_ns = next;
    pthread_mutex_unlock(&reg->index_lock);
    if (gained || lost)
        log_info("msg=\"fleet: health check ownership moved\" gained=%zu lost=%zu", gained, lost);
}

void reg_heard(struct reg_registry *reg, const struct ip_addr *ips, size_t n, struct reg_heard *out)
{
    int64_t now = clock_mono_ns();
    pthread_mutex_lock(&reg->index_lock);
    for (size_t i = 0; i < n; i++) {
        struct entry *e = index_find(reg, &ips[i]);
        out[i].ago_ms = -1;
        out[i].lease_s = 0;
        out[i].unknown = 0;
        if (!e)
            continue;
        out[i].lease_s = e->lease_s;
        if (e->heard_ns)
            out[i].ago_ms = (now - e->heard_ns) / 1000000;
    }
    pthread_mutex_unlock(&reg->index_lock);
}

unsigned long long reg_leases_kept_by_peers(struct reg_registry *reg)
{
    return atomic_load(&reg->leases_kept);
}
