/*
 * leases.c: leases and heartbeats. A leased backend whose deadline passes without a heartbeat
 * is deregistered through the committer like any change; a heartbeat that arrives before the
 * removal is admitted calls it off. Leases live in memory (registry.h says what a restart
 * does).
 */
#include "registry/internal.h"

#include <stdlib.h>
#include <time.h>

#include "util/log.h"
#include "util/xalloc.h"

/* A backend that becomes present gets the default lease unless it has one. Caller holds
 * index_lock. */
void lease_start(struct reg_registry *reg, struct entry *e)
{
    if (!reg->opt.default_lease || e->lease_s)
        return;
    e->lease_s = reg->opt.default_lease;
    e->lease_deadline_ns = clock_mono_ns() + (int64_t)e->lease_s * 1000000000;
}

/* A sign of life (heartbeat, registration, lease change): the lease, if any (or the default),
 * runs from now, and an expiry the maintainer found but has not removed yet is called off (the
 * removal, once admitted, sees lease_expiring clear and keeps the backend). Caller holds
 * index_lock. */
void lease_renew(struct reg_registry *reg, struct entry *e)
{
    e->heard_ns = clock_mono_ns();
    if (!e->lease_s)
        e->lease_s = reg->opt.default_lease;
    e->lease_deadline_ns = e->lease_s ? clock_mono_ns() + (int64_t)e->lease_s * 1000000000 : 0;
    e->lease_expiring = 0;
    e->lease_retry_ns = 0;
    e->lease_unknown_tries = 0;
}

/* The lease as the API shows it: Unix milliseconds of the deadline. */
void lease_fill(struct reg_placement *out, int64_t deadline_ns, unsigned lease_s)
{
    out->lease_seconds = lease_s;
    out->lease_expires_at = 0;
    if (deadline_ns) {
        int64_t left = deadline_ns - clock_mono_ns();
        out->lease_expires_at = (long long)clock_wall_ms() + (left > 0 ? left / 1000000 : 0);
    }
}

static void expired_done(void *arg, const struct reg_result *res)
{
    struct chore *x = arg;
    char txt[IP_TEXT_MAX];
    ip_format(&x->ip, txt);
    if (res->rc == RC_OK && res->placement.state != REG_STATE_DEREGISTERED) {
        log_info("msg=\"lease renewed before its expiry was carried out; kept\" ip=%s", txt);
    } else if (res->rc == RC_OK || res->rc == RC_NOT_REGISTERED) {
        struct reg_event ev = {"lease expired", "lease", &x->ip,
                               res->rc == RC_OK ? res->placement.change_id : ""};
        log_info("msg=\"lease expired; deregistered\" ip=%s", txt);
        registry_event(x->reg, &ev);
    } else {
        struct entry *e;
        pthread_mutex_lock(&x->reg->index_lock);
        e = index_find(x->reg, &x->ip);
        if (e) {
            e->lease_expiring = 0; /* try again later, not on every pass */
            e->lease_retry_ns = clock_mono_ns() + TRANSITION_RETRY_NS;
        }
        pthread_mutex_unlock(&x->reg->index_lock);
        log_warn("msg=\"lease expired but the deregistration failed; will retry\" ip=%s rc=%s "
                 "detail=\"%s\"",
                 txt, rc_slug(res->rc), res->detail);
    }
    free(x);
}

enum reg_lease_verdict reg_lease_verdict(const struct reg_heard *h, unsigned lease_s,
                                         unsigned tries, int64_t *ago_ns)
{
    long long ago_ms = h->ago_ms;
    if (ago_ms > (long long)REG_MAX_LEASE * 1000) /* a peer's nonsense: never heard in a lease */
        ago_ms = (long long)REG_MAX_LEASE * 1000;
    *ago_ns = (int64_t)ago_ms * 1000000;
    if (lease_s && ago_ms >= 0 && *ago_ns < (int64_t)lease_s * 1000000000)
        return REG_LEASE_KEEP;
    if (h->unknown && tries < REG_LEASE_UNKNOWN_TRIES)
        return REG_LEASE_RETRY;
    return REG_LEASE_EXPIRE;
}

/* Keep the leases of due[0..n) that a peer heard from within their lease: renewed from the
 * time the peer heard it, no store call. Postpone (a few seconds, a few times) those a live
 * peer could not answer for: it may have heard them. Kept and postponed ones are dropped from
 * due; returns how many are left. Maintainer thread, no lock held on entry. */
static size_t leases_ask_peers(struct reg_registry *reg, struct ip_addr *due, size_t n)
{
    struct reg_heard *heard;
    size_t left = 0, kept = 0, postponed = 0;
    int64_t now;

    if (!reg->peers_heard || !n)
        return n;
    heard = xcalloc(n, sizeof(*heard));
    for (size_t i = 0; i < n; i++)
        heard[i].ago_ms = -1;
    reg->peers_heard(reg->peers_arg, due, n, heard);
    now = clock_mono_ns();
    pthread_mutex_lock(&reg->index_lock);
    for (size_t i = 0; i < n; i++) {
        struct entry *e = index_find(reg, &due[i]);
        /* A lease the peer knows (one given there with ?lease=) wins over the default. */
        unsigned lease = e && heard[i].lease_s ? heard[i].lease_s : e ? e->lease_s : 0;
        int64_t ago = 0;
        enum reg_lease_verdict v =
            e && e->lease_expiring
                ? reg_lease_verdict(&heard[i], lease, e->lease_unknown_tries, &ago)
                : REG_LEASE_EXPIRE;
        if (v == REG_LEASE_KEEP) {
            e->lease_s = lease;
            e->lease_deadline_ns = now - ago + (int64_t)lease * 1000000000;
            e->lease_expiring = 0;
            e->lease_unknown_tries = 0;
            kept++;
            continue;
        }
        if (v == REG_LEASE_RETRY) {
            e->lease_unknown_tries++;
            e->lease_expiring = 0;
            e->lease_retry_ns = now + (int64_t)REG_LEASE_UNKNOWN_RETRY_S * 1000000000;
            postponed++;
            continue;
        }
        due[left++] = due[i];
    }
    pthread_mutex_unlock(&reg->index_lock);
    free(heard);
    if (postponed)
        log_warn("msg=\"lease expiry postponed: a live peer could not answer whether it heard "
                 "the backend\" count=%zu retry_s=%d tries_max=%d",
                 postponed, REG_LEASE_UNKNOWN_RETRY_S, REG_LEASE_UNKNOWN_TRIES);
    if (kept) {
        atomic_fetch_add(&reg->leases_kept, kept);
        rmetrics_leases_kept(kept);
        log_info("msg=\"lease renewed on a peer's word; kept\" count=%zu", kept);
    }
    return left;
}

/* Submit the deregistrations of expired leases; live peers are asked first (one batch). */
void leases_reap(struct reg_registry *reg)
{
    struct ip_addr *due = NULL;
    size_t n = 0, cap = 0;
    int64_t now = clock_mono_ns();

    pthread_mutex_lock(&reg->index_lock);
    for (size_t i = 0; i < reg->table_size; i++)
        for (struct entry *e = reg->table[i]; e; e = e->next)
            if (e->lease_deadline_ns && e->lease_deadline_ns <= now && e->state == ENTRY_PRESENT &&
                !e->lease_expiring && e->lease_retry_ns <= now) {
                e->lease_expiring = 1;
                due = xgrow(due, &cap, n + 1, sizeof(*due));
                due[n++] = e->ip;
            }
    pthread_mutex_unlock(&reg->index_lock);
    n = leases_ask_peers(reg, due, n);
    for (size_t i = 0; i < n; i++)
        maintainer_chore(reg, &due[i], REG_OP_REMOVE, 1, expired_done);
    free(due);
}

/* A registered backend, also while a move (down, up, drain, undrain) is in flight: it stays
 * registered whatever the move's outcome. Not while it is being added or removed. */
static int leaseable(const struct entry *e)
{
    return e && (e->state == ENTRY_PRESENT || e->state == ENTRY_MOVING);
}

enum rc_code reg_set_lease(struct reg_registry *reg, const struct ip_addr *ip, unsigned seconds,
                           struct reg_placement *out)
{
    struct entry *e;
    pthread_mutex_lock(&reg->index_lock);
    e = index_find(reg, ip);
    if (!leaseable(e)) {
        pthread_mutex_unlock(&reg->index_lock);
        return RC_NOT_REGISTERED;
    }
    e->lease_s = seconds > REG_MAX_LEASE ? REG_MAX_LEASE : seconds;
    if (e->lease_s)
        lease_renew(reg, e);
    else
        e->lease_deadline_ns = 0, e->lease_expiring = 0;
    pthread_mutex_unlock(&reg->index_lock);
    return reg_lookup(reg, ip, out);
}

enum rc_code reg_heartbeat(struct reg_registry *reg, const struct ip_addr *ip,
                           struct reg_placement *out)
{
    struct entry *e;
    pthread_mutex_lock(&reg->index_lock);
    e = index_find(reg, ip);
    if (!leaseable(e)) { /* unknown, or its expired lease's removal is under way */
        pthread_mutex_unlock(&reg->index_lock);
        return RC_NOT_REGISTERED;
    }
    lease_renew(reg, e);
    pthread_mutex_unlock(&reg->index_lock);
    return reg_lookup(reg, ip, out);
}
