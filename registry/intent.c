/*
 * intent.c: per-IP single flight. Admission decides what a submitted mutation needs (an answer
 * at once, or a commit) and marks its index entry in flight; settlement makes each entry follow
 * what its bucket's committed sets hold after a store call, and hands back the operations
 * that waited on the IP. Also the answers and the one log line per committed change.
 */
#include "registry/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* The operation's name in logs and metrics. */
const char *intent_op_name(enum reg_op op)
{
    static const char *const names[] = {"add", "remove", "down", "up", "drain", "ensure"};
    return names[op];
}

/* The API's state of a backend in set kind. */
enum reg_state intent_state_of(int kind)
{
    return kind == REG_KIND_DOWN       ? REG_STATE_DOWN
           : kind == REG_KIND_DRAINING ? REG_STATE_DRAINING
                                       : REG_STATE_REGISTERED;
}

/* The detail of RC_BUCKETS_FULL, for both commit modes. */
static void say_full(const struct reg_registry *reg, enum reg_type t, char *detail, size_t n)
{
    if (reg->opt.tree == REG_TREE_AUTO && reg_tree_on((struct reg_registry *)reg, t)) {
        rc_detail(detail, n,
                  "every %s bucket that may take this address is full while the name moves "
                  "its buckets into the alias tree; retry in a few seconds",
                  reg_type_name(t));
        return;
    }
    rc_detail(detail, n,
              "every %s bucket that may take this address holds %u values "
              "(--max-per-bucket, or what fits --max-answer-bytes); deregister some or "
              "raise the limits%s",
              reg_type_name(t), reg->capacity[t],
              reg->opt.tree ? ""
                            : ", or restart with --tree or --tree-auto (100 child names of 100 "
                              "buckets each; the zone moves into them while DNS keeps "
                              "answering)");
}

/* The detail of RC_NOT_REGISTERED, for both commit modes. */
void intent_say_not_registered(const struct ip_addr *ip, char *detail, size_t n)
{
    char txt[IP_TEXT_MAX];
    rc_detail(detail, n, "%s is not registered", ip_format(ip, txt));
}

/* The one log line of a committed change of ip (the bucket's sets after it). */
void intent_log_change(const struct reg_registry *reg, enum reg_op op, const struct ip_addr *ip,
                       const struct bucket *bk)
{
    char ipt[IP_TEXT_MAX], sid[REG_SET_ID_MAX + 1];
    const struct reg_record *rec = bk->rec;
    reg_set_id(&reg->opt, rec[0].bucket, sid, sizeof(sid));
    log_info("msg=store_change op=%s ip=%s type=%s set_id=%s count=%zu weight=%u down=%zu "
             "draining=%zu",
             intent_op_name(op), ip_format(ip, ipt), reg_type_name(rec[0].type), sid,
             rec[0].nvalues, rec[0].weight, rec[REG_KIND_DOWN].nvalues,
             rec[REG_KIND_DRAINING].nvalues);
}

/* The placement fields an answer shares, whatever the operation. */
void intent_fill_placement(struct reg_placement *out, const struct ip_addr *ip, unsigned bucket,
                           unsigned weight, enum reg_state state)
{
    /* change_id is the commit's: left as it is. */
    out->ip = *ip;
    out->type = reg_type_of(ip);
    out->bucket = bucket;
    out->weight = weight;
    out->state = state;
}

/* Answer in (count its outcome, call done) and free it. No lock may be held. */
void intent_finish(struct intent *in, struct reg_result *res)
{
    rmetrics_outcome(in->op, in->submitted_ns, res->rc);
    in->done(in->arg, res);
    free(in);
}

/* Answer in with rc and detail. No lock may be held. */
void intent_fail(struct intent *in, enum rc_code rc, const char *detail)
{
    struct reg_result res;
    memset(&res, 0, sizeof(res));
    res.rc = rc;
    snprintf(res.detail, sizeof(res.detail), "%s", detail ? detail : "");
    intent_finish(in, &res);
}

enum admission { ADMIT_ANSWERED, ADMIT_QUEUE, ADMIT_AS_IS, ADMIT_CONFIRM };

/*
 * Decide what in needs, given e, the IP's settled entry (or NULL). ADMIT_QUEUE: in->bucket is
 * set and the entry marked in flight (a new one inserted for an ADD): the change must be
 * committed. ADMIT_ANSWERED: res holds the answer (unknown IP, buckets full). ADMIT_AS_IS: the
 * IP already is where in wants it: answer with its placement (answer_as_is). Caller holds
 * index_lock.
 */
static enum admission admit(struct reg_registry *reg, struct intent *in, struct entry *e,
                            struct reg_result *res)
{
    enum reg_type t = reg_type_of(&in->ip);

    if (!e && (in->op == REG_OP_ADD || in->op == REG_OP_ENSURE)) {
        int b = placement_choose(reg, &in->ip);
        if (b < 0) {
            res->rc = RC_BUCKETS_FULL;
            say_full(reg, t, res->detail, sizeof(res->detail));
            return ADMIT_ANSWERED;
        }
        index_insert(reg, &in->ip, (unsigned)b, ENTRY_ADDING);
        reg->reserved[t][b]++;
        in->bucket = (unsigned)b;
        in->created = 1;
        in->fills = reg->reserved[t][b] >= reg->capacity[t]; /* its bucket is final now */
        return ADMIT_QUEUE;
    }
    if (!e) {
        if (in->confirm && !in->confirmed && reg->opt.confirm_ms)
            return ADMIT_CONFIRM; /* another writer may have placed it: read the store */
        res->rc = RC_NOT_REGISTERED;
        intent_say_not_registered(&in->ip, res->detail, sizeof(res->detail));
        return ADMIT_ANSWERED;
    }
    in->bucket = e->bucket;
    switch (in->op) {
    case REG_OP_ADD:
        lease_renew(reg, e); /* registering again is a sign of life */
        if (e->where != REG_KIND_DRAINING)
            return ADMIT_AS_IS;
        /* Back to the down set when its checks fail, unless the fail-open guard would keep
         * it served: then it returns to service and the reconciler holds it there. */
        in->to_down = e->checked && e->health_down && reconcile_guard_allows_down(reg, t, 1);
        e->undrain_down = (unsigned char)in->to_down;
        break;
    case REG_OP_ENSURE: return ADMIT_AS_IS;
    case REG_OP_REMOVE:
        if (in->expiry && !e->lease_expiring)
            return ADMIT_AS_IS; /* renewed since the maintainer saw it expired: it stays */
        e->state = ENTRY_REMOVING;
        return ADMIT_QUEUE;
    case REG_OP_DOWN:
        if (e->where != REG_KIND_SERVED)
            return ADMIT_AS_IS;
        break;
    case REG_OP_UP:
        if (e->where != REG_KIND_DOWN)
            return ADMIT_AS_IS;
        break;
    case REG_OP_DRAIN:
        if (e->where == REG_KIND_DRAINING)
            return ADMIT_AS_IS;
        break;
    }
    e->state = ENTRY_MOVING;
    return ADMIT_QUEUE;
}

/* ADMIT_AS_IS: report where the IP is. 0 when it vanished meanwhile (adopted away by another
 * writer's change): the caller starts over. An entry still settled in this bucket though none
 * of its sets holds the IP contradicts the committed sets, which are the truth: it leaves the
 * index, so starting over cannot meet it again. */
static int answer_as_is(struct reg_registry *reg, struct intent *in, struct reg_result *res)
{
    struct bucket *bk = &reg->buckets[reg_type_of(&in->ip)][in->bucket];
    int k;
    pthread_mutex_lock(&bk->lock);
    k = sets_find(bk->rec, &in->ip);
    if (k >= 0) {
        res->rc = RC_OK;
        intent_fill_placement(&res->placement, &in->ip, in->bucket, bk->rec[REG_KIND_SERVED].weight,
                              intent_state_of(k));
    } else {
        struct entry *e;
        pthread_mutex_lock(&reg->index_lock);
        e = index_find(reg, &in->ip);
        if (e && e->state == ENTRY_PRESENT && e->bucket == in->bucket) {
            char txt[IP_TEXT_MAX];
            log_warn("msg=\"index entry without a record; dropped\" ip=%s bucket=%u",
                     ip_format(&in->ip, txt), in->bucket);
            index_drop(reg, e);
            pthread_cond_broadcast(&reg->index_cond);
        }
        pthread_mutex_unlock(&reg->index_lock);
    }
    pthread_mutex_unlock(&bk->lock);
    return k >= 0;
}

/* The store was read again for in (registry/confirm.c): run it once more, or say why not. */
static void confirmed(void *arg, enum rc_code rc, const char *detail)
{
    struct intent *in = arg;
    char txt[IP_TEXT_MAX], why[REG_DETAIL_MAX];

    if (rc) {
        rc_detail(why, sizeof(why),
                  "%s is not known here, and reading Route 53 to check whether another "
                  "writer registered it failed: %s",
                  ip_format(&in->ip, txt), detail);
        intent_fail(in, rc, why);
        return;
    }
    in->confirmed = 1;
    in->again(in->reg, in);
}

/*
 * admit() and answer what needs no commit. Caller holds index_lock; it is released. Returns 1
 * when in must be committed (in->bucket set); 0 when it was answered, or started over through
 * again() because an adopt removed the IP meanwhile.
 */
int intent_admit_or_answer(struct reg_registry *reg, struct intent *in, struct entry *e,
                           void (*again)(struct reg_registry *, struct intent *))
{
    struct reg_result res;
    enum admission a;

    memset(&res, 0, sizeof(res));
    a = admit(reg, in, e, &res);
    pthread_mutex_unlock(&reg->index_lock);
    if (a == ADMIT_QUEUE)
        return 1;
    if (a == ADMIT_CONFIRM) {
        enum rc_code rc;
        in->again = again;
        rc = reg_confirm(reg, confirmed, in);
        if (rc == RC_OK)
            return 0;
        in->confirmed = 1; /* not parked: answer from the index, or say why not */
        if (rc == RC_NOT_REGISTERED) {
            again(reg, in);
            return 0;
        }
        intent_fail(in, rc,
                    rc == RC_SHUTTING_DOWN
                        ? "shutting down"
                        : "too many requests for unknown addresses are waiting for a read "
                          "of Route 53; retry");
        return 0;
    }
    if (a == ADMIT_ANSWERED || answer_as_is(reg, in, &res))
        intent_finish(in, &res);
    else
        again(reg, in);
    return 0;
}

/*
 * Settle the index entries of intents (a list) of bucket bk after their commit (committed) or
 * failure: each entry follows what bk's committed sets now hold, which is what the store holds
 * (a failure may have adopted another writer's change). An IP in one of the sets is PRESENT
 * there; an IP in none leaves the index. Records each intent's kind_after. Returns the
 * operations that waited on those IPs, in order, for the caller to resubmit once no lock is
 * held. Caller holds bk->lock and index_lock.
 */
struct intent *intent_settle(struct reg_registry *reg, struct bucket *bk, struct intent *intents,
                             int committed)
{
    struct intent *waiters = NULL, **wtail = &waiters;
    int64_t now = clock_mono_ns();

    for (struct intent *in = intents; in; in = in->next) {
        struct entry *e = index_find(reg, &in->ip);
        in->kind_after = sets_find(bk->rec, &in->ip);
        if (!e)
            continue;
        e->undrain_down = 0;
        if (e->waiters) {
            *wtail = e->waiters;
            while (*wtail)
                wtail = &(*wtail)->next;
            e->waiters = NULL;
        }
        if (in->kind_after < 0) {
            index_drop(reg, e); /* removed, or its addition rolled back */
            continue;
        }
        if (e->state == ENTRY_ADDING) {
            e->state = ENTRY_PRESENT;
            e->adopted = 0;
            index_entry_moved(e, in->kind_after);
            if (committed) {
                e->heard_ns = clock_mono_ns(); /* a registration is a sign of life */
                lease_start(reg, e);
            }
            reconcile_track(reg, e);
            continue;
        }
        e->state = ENTRY_PRESENT;
        if (committed && e->verdict_ns && e->where != (enum reg_kind)in->kind_after &&
            (in->op == REG_OP_DOWN || in->op == REG_OP_UP))
            rmetrics_health_move(now - e->verdict_ns, e->streak_ms);
        index_entry_moved(e, in->kind_after);
    }
    return waiters;
}

/* The answer to a settled intent (kind_after set by intent_settle), with the bucket's served
 * weight after the commit. */
void intent_result(const struct intent *in, unsigned weight, const char *change_id,
                   struct reg_result *res)
{
    memset(res, 0, sizeof(*res));
    if (in->op != REG_OP_REMOVE && in->kind_after < 0) {
        char txt[IP_TEXT_MAX];
        res->rc = RC_NOT_REGISTERED;
        rc_detail(res->detail, sizeof(res->detail),
                  "%s is not registered (another writer removed it meanwhile)",
                  ip_format(&in->ip, txt));
        return;
    }
    res->created = in->created;
    intent_fill_placement(&res->placement, &in->ip, in->bucket, weight,
                          in->op == REG_OP_REMOVE ? REG_STATE_DEREGISTERED
                                                  : intent_state_of(in->kind_after));
    snprintf(res->placement.change_id, sizeof(res->placement.change_id), "%s", change_id);
}
