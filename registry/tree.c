/*
 * tree.c: the alias tree's top level (docs/design-alias-tree.md). In tree mode the name's
 * weighted group of each type holds aliases, one per child holding served values of that
 * type, weighted by tree_weights.c so every served value gets the same share of answers.
 *
 * The committer is the aliases' only writer: each of its calls carries, with the buckets'
 * changes, the alias changes those make necessary (tree_plan_build), in an order Route 53
 * accepts: aliases that go are deleted before the buckets change (never pointing at a child
 * with nothing to serve), aliases that come or change follow them (their target exists by
 * then). Weights are rewritten when an alias comes or goes, or when the spread the current
 * weights give passes TREE_REWEIGH_SPREAD: not on every call, since each rewrite costs two
 * elements per alias.
 *
 * The aliases' state (which exist, their weights) is guarded by tree_lock, a leaf.
 */
#include "registry/internal.h"

#include <stdlib.h>
#include <string.h>

#include "registry/tree_weights.h"
#include "util/log.h"

/* Rewrite the weights once the shares they give spread more than this. */
#define TREE_REWEIGH_SPREAD 1.005

/* Served values of child c of type t as committed (each bucket under its lock). */
static unsigned child_served(struct reg_registry *reg, enum reg_type t, unsigned c)
{
    unsigned sum = 0;
    for (unsigned b = 0; b < REG_MAX_BUCKETS; b++) {
        struct bucket *bk = &reg->buckets[t][reg_slot_of((int)c, b)];
        pthread_mutex_lock(&bk->lock);
        sum += (unsigned)bk->rec[REG_KIND_SERVED].nvalues;
        pthread_mutex_unlock(&bk->lock);
    }
    return sum;
}

void tree_reserve(struct reg_registry *reg, size_t *elements, size_t *chars)
{
    char child[REG_NAME_MAX + 1];
    size_t have = 0;
    if (!reg->opt.tree)
        return;
    pthread_mutex_lock(&reg->tree_lock);
    for (int t = 0; t < 2; t++)
        for (unsigned c = 0; c < REG_TREE_CHILDREN; c++)
            have += reg->aliases[t][c].exists;
    pthread_mutex_unlock(&reg->tree_lock);
    reg_child_name(&reg->opt, REG_TREE_CHILDREN - 1, child, sizeof(child));
    /* Every alias rewritten (its DELETE and CREATE) and two new ones per type; the target's
     * name counted as if it were a value. */
    *elements += 2 * (have + 4);
    *chars += 2 * (have + 4) * (strlen(child) + 1);
}

/* Does the name serve values of type t from buckets of its own? */
static int name_serves(struct reg_registry *reg, enum reg_type t)
{
    int serves = 0;
    for (unsigned b = 0; b < REG_MAX_BUCKETS && !serves; b++) {
        struct bucket *bk = &reg->buckets[t][b];
        pthread_mutex_lock(&bk->lock);
        serves = bk->rec[REG_KIND_SERVED].nvalues > 0;
        pthread_mutex_unlock(&bk->lock);
    }
    return serves;
}

void tree_plan_build(struct reg_registry *reg, const long (*delta)[REG_TREE_CHILDREN],
                     struct tree_plan *p)
{
    memset(p, 0, sizeof(*p));
    if (!reg->opt.tree)
        return;
    p->dirty = atomic_exchange(&reg->tree_dirty, 0);
    for (int t = 0; t < 2; t++) {
        unsigned total[REG_TREE_CHILDREN], cur[REG_TREE_CHILDREN], want[REG_TREE_CHILDREN];
        unsigned char has[REG_TREE_CHILDREN], revived[REG_TREE_CHILDREN];
        unsigned char empties[REG_TREE_CHILDREN];
        int touched = 0, reshape = 0, mixed;
        for (unsigned c = 0; c < REG_TREE_CHILDREN; c++)
            touched |= delta[t][c] != 0;
        if (!touched && !p->dirty)
            continue;
        for (unsigned c = 0; c < REG_TREE_CHILDREN; c++)
            total[c] = child_served(reg, (enum reg_type)t, c);
        /* The aliases are read after the children: a bucket moved into a child meanwhile
         * (registry/tree_grow.c installs the child's sets and its alias in one hold) shows
         * its alias here, never the alias without its sets. An alias may exist with weight
         * 0 (written by a person): existence is its own fact. */
        pthread_mutex_lock(&reg->tree_lock);
        for (unsigned c = 0; c < REG_TREE_CHILDREN; c++) {
            has[c] = reg->aliases[t][c].exists;
            cur[c] = has[c] ? reg->aliases[t][c].weight : 0;
        }
        pthread_mutex_unlock(&reg->tree_lock);
        mixed = name_serves(reg, (enum reg_type)t);
        for (unsigned c = 0; c < REG_TREE_CHILDREN; c++) {
            unsigned base = total[c];
            long n = (long)base + delta[t][c];
            total[c] = n > 0 ? (unsigned)n : 0;
            /* A child that served nothing has no alias, whatever is believed: it is written
             * (if one is believed, its DELETE is the compare-and-swap that finds out). */
            revived[c] = base == 0 && total[c] > 0;
            /* An alias goes only in the call whose bucket changes empty its child: those
             * changes are compare-and-swaps on the child's sets, so the call cannot remove
             * the alias of a child another writer has filled meanwhile. A child this view
             * shows empty without such a change keeps its alias (the view may be stale). */
            empties[c] = has[c] && total[c] == 0 && base > 0 && delta[t][c] < 0;
            /* An alias comes or goes: the weights are chosen again. */
            reshape |= revived[c] || (total[c] > 0 && !has[c]) || empties[c];
        }
        if (mixed) {
            /* The name still serves buckets of its own (a type moving into the tree or out
             * of it): each is weighted by its count (reg_weight_for), so an alias is weighted
             * the same way by its child's count, exact while children hold at most 255. */
            for (unsigned c = 0; c < REG_TREE_CHILDREN; c++)
                want[c] = total[c] ? reg_weight_for(&reg->opt, (enum reg_type)t, total[c]) : 0;
            for (unsigned c = 0; c < REG_TREE_CHILDREN; c++)
                reshape |= total[c] && has[c] && want[c] != cur[c];
            if (!reshape)
                continue;
        } else {
            if (!reshape && tree_spread(total, cur, REG_TREE_CHILDREN) <= TREE_REWEIGH_SPREAD)
                continue;
            tree_parent_weights(total, REG_TREE_CHILDREN, want);
        }
        for (unsigned c = 0; c < REG_TREE_CHILDREN; c++) {
            struct tree_step *s;
            int keep = total[c] > 0 || (has[c] && !empties[c]);
            if (!total[c] && keep)
                continue; /* shown empty, not emptied here: left as it is */
            if (keep == has[c] && want[c] == cur[c] && !revived[c])
                continue;
            if (!keep && !has[c])
                continue;
            s = &p->steps[p->n++];
            s->type = (enum reg_type)t;
            s->child = c;
            s->has_old = has[c];
            s->has_new = keep;
            s->old = reg_alias_record((enum reg_type)t, c, cur[c]);
            s->new = reg_alias_record((enum reg_type)t, c, want[c] ? want[c] : 1);
        }
    }
}

size_t tree_plan_changes(const struct tree_plan *p, int deletions, struct reg_change *out)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++) {
        const struct tree_step *s = &p->steps[i];
        if (deletions != !s->has_new)
            continue;
        out[n].old = s->has_old ? &s->old : NULL;
        out[n].new = s->has_new ? &s->new : NULL;
        n++;
    }
    return n;
}

void tree_plan_installed(struct reg_registry *reg, const struct tree_plan *p)
{
    if (!p->n)
        return;
    pthread_mutex_lock(&reg->tree_lock);
    for (size_t i = 0; i < p->n; i++) {
        const struct tree_step *s = &p->steps[i];
        reg->aliases[s->type][s->child].exists = (unsigned char)s->has_new;
        reg->aliases[s->type][s->child].weight = (unsigned char)s->new.weight;
    }
    atomic_fetch_add(&reg->tree_gen, 1);
    pthread_mutex_unlock(&reg->tree_lock);
    registry_generation_bump(reg);
}

void tree_plan_failed(struct reg_registry *reg, const struct tree_plan *p)
{
    if (p->dirty)
        atomic_store(&reg->tree_dirty, 1);
}

void tree_adopt_aliases(struct reg_registry *reg, const struct reg_record *recs, size_t n,
                        unsigned long long gen_seen)
{
    struct tree_alias seen[2][REG_TREE_CHILDREN];
    int changed = 0;
    if (!reg->opt.tree)
        return;
    memset(seen, 0, sizeof(seen));
    for (size_t i = 0; i < n; i++)
        if (recs[i].alias && recs[i].bucket < REG_TREE_CHILDREN && recs[i].type <= REG_AAAA) {
            seen[recs[i].type][recs[i].bucket].exists = 1;
            seen[recs[i].type][recs[i].bucket].weight = (unsigned char)recs[i].weight;
        }
    pthread_mutex_lock(&reg->tree_lock);
    /* A listing read before our own alias write (or during one, or across a call whose outcome
     * is unknown) is older than what we hold: leave the aliases alone (the next resync reads
     * them again). */
    if (!atomic_load(&reg->tree_writing) && atomic_load(&reg->tree_gen) == gen_seen) {
        changed = memcmp(seen, reg->aliases, sizeof(seen)) != 0;
        memcpy(reg->aliases, seen, sizeof(seen));
    }
    pthread_mutex_unlock(&reg->tree_lock);
    /* The next call checks them against the children (another writer may have left one
     * dangling, or a child unserved). */
    tree_kick(reg);
    if (changed) {
        log_info("msg=\"tree: aliases read from the store\"");
        registry_generation_bump(reg);
    }
}

void tree_kick(struct reg_registry *reg)
{
    atomic_store(&reg->tree_dirty, 1);
    pthread_mutex_lock(&reg->work_lock);
    reg->kicks++;
    pthread_cond_signal(&reg->work_cond);
    pthread_mutex_unlock(&reg->work_lock);
}

void tree_aliases(struct reg_registry *reg, enum reg_type t, struct tree_alias *out)
{
    pthread_mutex_lock(&reg->tree_lock);
    memcpy(out, reg->aliases[t], sizeof(reg->aliases[t]));
    pthread_mutex_unlock(&reg->tree_lock);
}
