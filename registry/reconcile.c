/*
 * reconcile.c: the checker's verdicts become moves between a bucket's served and down sets,
 * level-triggered, within the fail-open guard (--max-down-share). Also the checker's side of
 * the index (which backends it checks) and per-registration checks.
 */
#include "registry/internal.h"

#include <stdlib.h>

#include "util/log.h"
#include "util/xalloc.h"

/* Hand a backend that just became present to the checker (when every backend is checked),
 * unless another live replica owns its checks (registry/fleet.c). One registered through this
 * replica is checked here anyway until the owner has had one resync to learn of it (forever
 * with --resync-interval 0): otherwise nobody would check it meanwhile. Caller holds
 * index_lock. */
void reconcile_track(struct reg_registry *reg, struct entry *e)
{
    if (!reg->checker || !reg->check_all || e->checked)
        return;
    e->not_mine = !fleet_owns(reg, &e->ip);
    if (e->not_mine && !e->adopted) {
        e->not_mine = 0;
        e->interim_until_ns = reg->opt.resync_ms
                                  ? clock_mono_ns() + (int64_t)reg->opt.resync_ms * 1000000 +
                                        FLEET_HANDOVER_NS
                                  : INT64_MAX;
        if (!reg->interim_next_ns || e->interim_until_ns < reg->interim_next_ns)
            reg->interim_next_ns = e->interim_until_ns;
    }
    if (e->not_mine)
        return;
    if (hc_engine_add_as(reg->checker, &e->ip, NULL, e->where != REG_KIND_DOWN) == RC_OK) {
        e->checked = 1;
        e->health_down = e->where == REG_KIND_DOWN;
    }
}

/* Does e count among the backends the guard judges (registered, not draining), and is it in
 * the down set or on its way there? */
static int guard_counts(const struct entry *e, int *down)
{
    *down = e->where == REG_KIND_DOWN || e->transition == TRANS_DOWN || e->undrain_down;
    return e->state != ENTRY_ADDING && (e->where != REG_KIND_DRAINING || e->undrain_down);
}

/* May one more backend of type t go to the down set, one now draining (extra: 1) or one
 * served (extra: 0)? The share --max-down-share allows, as reconcile_run() counts. Caller holds
 * index_lock. */
int reconcile_guard_allows_down(const struct reg_registry *reg, enum reg_type t, unsigned extra)
{
    size_t total = extra, down = 0;
    double share = reg->opt.max_down_share;
    if (share >= 1)
        return 1;
    for (size_t i = 0; i < reg->table_size; i++)
        for (const struct entry *e = reg->table[i]; e; e = e->next) {
            int d;
            if (reg_type_of(&e->ip) == t && guard_counts(e, &d)) {
                total++;
                down += (size_t)d;
            }
        }
    return (double)(down + 1) <= share * (double)total;
}

/* A health move settled: clear its transition; a failed one is retried after a pause. */
static void transition_done(void *arg, const struct reg_result *res)
{
    struct chore *x = arg;
    char txt[IP_TEXT_MAX];
    struct entry *e;

    ip_format(&x->ip, txt);
    pthread_mutex_lock(&x->reg->index_lock);
    e = index_find(x->reg, &x->ip);
    if (e) {
        e->transition = TRANS_NONE;
        if (res->rc != RC_OK)
            e->retry_ns = clock_mono_ns() + TRANSITION_RETRY_NS;
    }
    pthread_mutex_unlock(&x->reg->index_lock);
    if (res->rc == RC_OK) {
        struct reg_event ev = {x->op == REG_OP_DOWN ? "taken out of DNS" : "back in DNS",
                               "health check", &x->ip, res->placement.change_id};
        log_info("msg=\"health: backend %s\" ip=%s change_id=%s", ev.what, txt,
                 res->placement.change_id[0] ? res->placement.change_id : "-");
        registry_event(x->reg, &ev);
    } else if (res->rc != RC_NOT_REGISTERED)
        log_warn("msg=\"health: moving the backend failed; will retry\" op=%s ip=%s rc=%s "
                 "detail=\"%s\"",
                 intent_op_name(x->op), txt, rc_slug(res->rc), res->detail);
    free(x);
}

/*
 * Move backends whose set disagrees with their checker's verdict: served but down -> the down
 * set, down but up -> served. Level-triggered, so a failed move is simply tried again. The
 * fail-open guard: per type, never more than max_down_share of the registered, not draining
 * backends in the down set (counting moves in flight); recoveries always go through.
 */
void reconcile_run(struct reg_registry *reg)
{
    struct chore_item {
        struct ip_addr ip;
        enum reg_op op;
    } *todo = NULL;
    size_t n = 0, cap = 0, total[2] = {0, 0}, down[2] = {0, 0}, held = 0;
    double share = reg->opt.max_down_share;
    int64_t now = clock_mono_ns();

    if (!reg->checker)
        return;
    pthread_mutex_lock(&reg->index_lock);
    for (size_t i = 0; i < reg->table_size; i++)
        for (struct entry *e = reg->table[i]; e; e = e->next) {
            int d;
            if (guard_counts(e, &d)) {
                total[reg_type_of(&e->ip)]++;
                down[reg_type_of(&e->ip)] += (size_t)d;
            }
        }
    for (size_t i = 0; i < reg->table_size; i++)
        for (struct entry *e = reg->table[i]; e; e = e->next) {
            enum reg_type t = reg_type_of(&e->ip);
            enum reg_op op;
            if (e->not_mine && !e->checked)
                continue; /* another replica checks it and writes its moves */
            if (e->state != ENTRY_PRESENT || e->transition || e->lease_expiring ||
                e->retry_ns > now || (!e->checked && e->foreign_down)) {
                /* Unchecked here and taken down by another writer while we ran: that
                 * replica's checks decide, not this one's absence of a verdict. (A backend
                 * loaded down that nothing checks any more is returned to service.) */
                held += e->held;
                continue;
            }
            if (e->where == REG_KIND_SERVED && e->health_down) {
                if (share < 1 && (double)(down[t] + 1) > share * (double)total[t]) {
                    e->held = 1;
                    held++;
                    continue;
                }
                op = REG_OP_DOWN;
                down[t]++;
                e->transition = TRANS_DOWN;
            } else if (e->where == REG_KIND_DOWN && !e->health_down) {
                op = REG_OP_UP;
                e->transition = TRANS_UP;
            } else {
                e->held = 0;
                continue;
            }
            e->held = 0;
            todo = xgrow(todo, &cap, n + 1, sizeof(*todo));
            todo[n].ip = e->ip;
            todo[n++].op = op;
        }
    pthread_mutex_unlock(&reg->index_lock);

    if (held && (!reg->held || now - reg->held_logged_ns > 60 * 1000000000LL)) {
        log_error("msg=\"fail-open: health checks find more backends down than "
                  "--max-down-share allows; keeping them in DNS\" held=%zu max_down_share=%.2f "
                  "registered_a=%zu registered_aaaa=%zu down_a=%zu down_aaaa=%zu",
                  held, share, total[REG_A], total[REG_AAAA], down[REG_A], down[REG_AAAA]);
        if (!reg->held)
            rmetrics_fail_open();
        reg->held_logged_ns = now;
    } else if (!held && reg->held) {
        log_warn("msg=\"fail-open guard released: no failing backend is kept in DNS any "
                 "more\"");
    }
    reg->held = held;
    for (size_t i = 0; i < n; i++)
        maintainer_chore(reg, &todo[i].ip, todo[i].op, 0, transition_done);
    free(todo);
}

void reg_health_changed(void *arg, const struct ip_addr *ip, int up, const char *last_error)
{
    struct reg_registry *reg = arg;
    struct hc_status st;
    struct entry *e;
    int known;

    (void)last_error;
    /* Callbacks may ask the engine (it holds no lock now); the index lock is taken after. */
    if (hc_engine_status(reg->checker, ip, &st) != RC_OK)
        st.run_started_ms = 0;
    pthread_mutex_lock(&reg->index_lock);
    e = index_find(reg, ip);
    known = e && e->checked;
    if (known) {
        e->health_down = !up;
        e->verdict_ns = clock_mono_ns();
        e->streak_ms = st.run_started_ms;
        e->retry_ns = 0;
    }
    pthread_mutex_unlock(&reg->index_lock);
    if (!known)
        return; /* the engine logged the verdict; the move is logged when committed */
    maintainer_kick(reg);
}

enum rc_code reg_check_valid(const struct reg_registry *reg, const struct hc_check *override,
                             char *detail, size_t n)
{
    enum rc_code rc;
    if (!reg->checker) {
        rc_detail(detail, n, "health checks are not available in this server");
        return RC_BAD_REQUEST;
    }
    rc = hc_check_validate(override, detail, n);
    if (rc == RC_OK && !override->port && !reg->check_port) {
        rc_detail(detail, n, "the check needs a \"port\" (the server has no --check-port)");
        rc = RC_BAD_REQUEST;
    }
    if (rc == RC_OK) {
        unsigned interval = override->interval_ms ? override->interval_ms : reg->check_interval_ms;
        unsigned timeout = override->timeout_ms ? override->timeout_ms : reg->check_timeout_ms;
        if (timeout > interval) {
            rc_detail(detail, n,
                      "the check's timeout (%u ms) exceeds its interval (%u ms): a "
                      "check must end before the next starts",
                      timeout, interval);
            rc = RC_BAD_REQUEST;
        }
    }
    return rc;
}

enum rc_code reg_set_check(struct reg_registry *reg, const struct ip_addr *ip,
                           const struct hc_check *override, char *detail, size_t n)
{
    struct entry *e;
    enum rc_code rc = reg_check_valid(reg, override, detail, n);

    if (rc)
        return rc;
    pthread_mutex_lock(&reg->index_lock);
    e = index_find(reg, ip);
    if (!e || e->state == ENTRY_ADDING) {
        pthread_mutex_unlock(&reg->index_lock);
        intent_say_not_registered(ip, detail, n);
        return RC_NOT_REGISTERED;
    }
    rc = hc_engine_add_as(reg->checker, ip, override, e->where != REG_KIND_DOWN);
    if (rc == RC_OK && !e->checked) {
        e->checked = 1;
        e->health_down = e->where == REG_KIND_DOWN;
    }
    if (rc == RC_OK) {
        e->own_check = 1; /* checked where it was asked for, whoever owns its default check */
        e->not_mine = 0;
    }
    pthread_mutex_unlock(&reg->index_lock);
    if (rc)
        rc_detail(detail, n, "the check was refused by the checker");
    return rc;
}
