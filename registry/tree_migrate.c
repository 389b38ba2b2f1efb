/*
 * tree_migrate.c: moving a zone between the flat shape and the alias tree at start
 * (docs/design-alias-tree.md, "Moving between flat and tree"). Run by reg_load() before the
 * registry takes the listing, while no request is served: the zone keeps answering through
 * every step, since each step is one atomic batch that creates the new copies and deletes the
 * old ones (compare-and-swap on the exact sets listed).
 *
 * Flat to tree (--tree, the name holds buckets of its own): each of the name's buckets b moves
 * whole into a child that holds nothing, as that child's bucket 0, and an alias to the child
 * takes the bucket's place in the name's group with the bucket's weight: every value keeps
 * exactly its share of answers through the move. The committer re-weighs the aliases later
 * as children fill.
 *
 * Tree to flat (no --tree, the zone holds the tree): each child's buckets move to free buckets
 * of the name, weighted by their value counts as flat buckets are; a child's alias goes in the
 * batch that moves its last served set (never left pointing at nothing), and an alias whose
 * child serves nothing goes first. Moved sets take the TTL of the name's group they join.
 * Refused, changing nothing, when the children's buckets do not fit the name's free ones:
 * that zone needs --tree.
 *
 * A conflict (another writer changed a listed set) reads the zone again and plans again.
 */
#include "registry/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/xalloc.h"

/* Route 53's limits on one call (ROUTE53 facts: 1,000 elements, 32,000 value characters). */
#define MIGRATE_ELEMENTS 1000
#define MIGRATE_CHARS 32000
#define MIGRATE_ATTEMPTS 20

/* One batch being assembled: the changes and the records they point at (owned). */
struct mig_batch {
    struct reg_change chg[4 * REG_KINDS * REG_MAX_BUCKETS + 2 * REG_TREE_CHILDREN];
    struct reg_record *own[4 * REG_KINDS * REG_MAX_BUCKETS + 2 * REG_TREE_CHILDREN];
    size_t n, nown, elements, chars;
};

static size_t values_chars(const struct reg_record *r)
{
    char text[IP_TEXT_MAX];
    size_t c = 0;
    for (size_t i = 0; i < r->nvalues; i++)
        c += strlen(ip_format(&r->values[i], text));
    return c;
}

/* A record the batch owns: a copy of src (values too) at slot with weight. */
static struct reg_record *batch_copy(struct mig_batch *b, const struct reg_record *src,
                                     unsigned slot, unsigned weight)
{
    struct reg_record *r = xcalloc(1, sizeof(*r));
    reg_record_copy(r, src);
    r->bucket = slot;
    r->weight = weight;
    b->own[b->nown++] = r;
    return r;
}

static struct reg_record *batch_alias(struct mig_batch *b, enum reg_type t, unsigned child,
                                      unsigned weight)
{
    struct reg_record *r = xmalloc(sizeof(*r));
    *r = reg_alias_record(t, child, weight);
    b->own[b->nown++] = r;
    return r;
}

static void batch_add(struct mig_batch *b, const struct reg_record *old,
                      const struct reg_record *new)
{
    b->chg[b->n].old = old;
    b->chg[b->n].new = new;
    b->n++;
}

static void batch_reset(struct mig_batch *b)
{
    for (size_t i = 0; i < b->nown; i++) {
        reg_record_release(b->own[i]);
        free(b->own[i]);
    }
    b->n = b->nown = b->elements = b->chars = 0;
}

/* Send b (paced like every write). */
static enum rc_code batch_send(struct reg_registry *reg, struct mig_batch *b, char *detail,
                               size_t dn)
{
    char change_id[REG_CHANGE_ID_MAX];
    enum rc_code rc;
    if (!b->n)
        return RC_OK;
    if (reg->prov->ops->pace)
        reg->prov->ops->pace(reg->prov);
    rc = reg->prov->ops->apply(reg->prov, b->chg, b->n, change_id, NULL, detail, dn);
    if (rc == RC_OK)
        log_info("msg=\"tree migration: batch applied\" changes=%zu elements=%zu change_id=%s",
                 b->n, b->elements, change_id);
    batch_reset(b);
    return rc;
}

/* The listed sets by type and slot (any kind) and the aliases by type and child. */
struct mig_view {
    const struct reg_record *set[2][REG_MAX_SLOTS][REG_KINDS];
    const struct reg_record *alias[2][REG_TREE_CHILDREN];
};

static void view_build(struct mig_view *v, const struct reg_record *recs, size_t n)
{
    memset(v, 0, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        const struct reg_record *r = &recs[i];
        if ((unsigned)r->type > REG_AAAA)
            continue;
        if (r->alias) {
            if (r->bucket < REG_TREE_CHILDREN)
                v->alias[r->type][r->bucket] = r;
        } else if (r->nvalues && r->bucket < REG_MAX_SLOTS && (unsigned)r->kind < REG_KINDS) {
            v->set[r->type][r->bucket][r->kind] = r;
        }
    }
}

static int slot_used(const struct mig_view *v, int t, unsigned slot)
{
    for (int k = 0; k < REG_KINDS; k++)
        if (v->set[t][slot][k])
            return 1;
    return 0;
}

static int child_used_sets(const struct mig_view *v, int t, unsigned c)
{
    for (unsigned b = 0; b < REG_MAX_BUCKETS; b++)
        if (slot_used(v, t, reg_slot_of((int)c, b)))
            return 1;
    return 0;
}

static int child_used(const struct mig_view *v, int t, unsigned c)
{
    return v->alias[t][c] || child_used_sets(v, t, c);
}

/* What moving slot from's sets costs in one batch (a CREATE and a DELETE of every value). */
static void slot_cost(const struct mig_view *v, int t, unsigned from, size_t *elements,
                      size_t *chars)
{
    *elements = *chars = 0;
    for (int k = 0; k < REG_KINDS; k++)
        if (v->set[t][from][k]) {
            *elements += 2 * v->set[t][from][k]->nvalues;
            *chars += 2 * values_chars(v->set[t][from][k]);
        }
}

/* Room for cost in b, or b is empty (one slot always goes alone). */
static int batch_fits(const struct mig_batch *b, size_t elements, size_t chars)
{
    return !b->n ||
           (b->elements + elements <= MIGRATE_ELEMENTS && b->chars + chars <= MIGRATE_CHARS);
}

/* Add to b the move of every set at slot from to slot to, with served weight w; ttl[k] (when
 * ttl is not NULL and ttl[k] >= 0) is the TTL the kind's group at the destination has. */
static void batch_move(struct mig_batch *b, const struct mig_view *v, int t, unsigned from,
                       unsigned to, unsigned w, const long *ttl)
{
    size_t e, c;
    slot_cost(v, t, from, &e, &c);
    for (int k = 0; k < REG_KINDS; k++) {
        const struct reg_record *old = v->set[t][from][k];
        struct reg_record *r;
        if (!old)
            continue;
        r = batch_copy(b, old, to, k == REG_KIND_SERVED ? w : old->weight);
        if (ttl && ttl[k] >= 0)
            r->ttl = (unsigned)ttl[k];
        batch_add(b, NULL, r);
    }
    for (int k = 0; k < REG_KINDS; k++)
        if (v->set[t][from][k])
            batch_add(b, v->set[t][from][k], NULL);
    b->elements += e;
    b->chars += c;
}

static int child_has_served(const struct mig_view *v, int t, unsigned c)
{
    for (unsigned b = 0; b < REG_MAX_BUCKETS; b++)
        if (v->set[t][reg_slot_of((int)c, b)][REG_KIND_SERVED])
            return 1;
    return 0;
}

/*
 * One pass flat to tree over the listing: every batch it could send. Returns RC_OK when
 * nothing was left to move (*moved says whether anything was), or the first failure.
 */
static enum rc_code to_tree(struct reg_registry *reg, const struct mig_view *v, struct mig_batch *b,
                            int *moved, char *detail, size_t dn)
{
    char child[REG_NAME_MAX + 1];
    size_t alias_chars;
    reg_child_name(&reg->opt, REG_TREE_CHILDREN - 1, child, sizeof(child));
    alias_chars = strlen(child) + 1;
    /* Both types are checked before anything is written: a refusal changes nothing. */
    for (int t = 0; t < 2; t++) {
        unsigned need = 0, have = 0;
        for (unsigned top = 0; top < REG_MAX_BUCKETS; top++)
            need += (unsigned)slot_used(v, t, top);
        for (unsigned c = 0; c < REG_TREE_CHILDREN; c++)
            have += !child_used(v, t, c);
        if (need > have) {
            snprintf(detail, dn,
                     "moving the name's own %s buckets into the alias tree: %u of them and %u "
                     "free children (a child that holds sets or has an alias is not free)",
                     reg_type_name((enum reg_type)t), need, have);
            return RC_BAD_REQUEST;
        }
    }
    for (int t = 0; t < 2; t++) {
        unsigned next_child = 0;
        for (unsigned top = 0; top < REG_MAX_BUCKETS; top++) {
            const struct reg_record *served = v->set[t][top][REG_KIND_SERVED];
            size_t e, c;
            enum rc_code rc;
            if (!slot_used(v, t, top))
                continue;
            while (next_child < REG_TREE_CHILDREN && child_used(v, t, next_child))
                next_child++;
            slot_cost(v, t, top, &e, &c);
            e += served != NULL;
            c += served ? alias_chars : 0;
            if (!batch_fits(b, e, c) && (rc = batch_send(reg, b, detail, dn)) != RC_OK)
                return rc;
            /* The child's sets first (the alias's target), the name's bucket out, then the
             * alias in its place with its weight. */
            batch_move(b, v, t, top, reg_slot_of((int)next_child, 0), served ? served->weight : 0,
                       NULL);
            if (served)
                batch_add(b, NULL, batch_alias(b, (enum reg_type)t, next_child, served->weight));
            b->elements += served != NULL;
            b->chars += served ? alias_chars : 0;
            log_info("msg=\"tree migration: the name's bucket moves into a child\" type=%s "
                     "bucket=%u child=%u values=%zu",
                     reg_type_name((enum reg_type)t), top, next_child,
                     served ? served->nvalues : (size_t)0);
            *moved = 1;
            next_child++;
        }
    }
    return batch_send(reg, b, detail, dn);
}

/* One pass tree to flat; see to_tree. */
static enum rc_code to_flat(struct reg_registry *reg, const struct mig_view *v, struct mig_batch *b,
                            int *moved, char *detail, size_t dn)
{
    char child_name[REG_NAME_MAX + 1];
    size_t alias_chars;
    reg_child_name(&reg->opt, REG_TREE_CHILDREN - 1, child_name, sizeof(child_name));
    alias_chars = strlen(child_name) + 1;
    /* Both types are checked before anything is written: a refusal changes nothing. */
    for (int t = 0; t < 2; t++) {
        unsigned need = 0, have = 0;
        for (unsigned s = REG_MAX_BUCKETS; s < REG_MAX_SLOTS; s++)
            need += (unsigned)slot_used(v, t, s);
        for (unsigned top = 0; top < REG_MAX_BUCKETS; top++)
            have += !slot_used(v, t, top);
        if (need > have) {
            snprintf(detail, dn,
                     "the zone holds an alias tree with %u %s buckets in child names and the "
                     "name has room for %u: start with --tree to serve it",
                     need, reg_type_name((enum reg_type)t), have);
            return RC_BAD_REQUEST;
        }
    }
    for (int t = 0; t < 2; t++) {
        unsigned free_top = 0;
        long ttl[REG_KINDS];
        enum rc_code rc;
        /* A moved set joins the name's group of its kind: it takes that group's TTL (Route 53
         * refuses another), or keeps its own where the name has no such group yet. */
        for (int k = 0; k < REG_KINDS; k++) {
            ttl[k] = -1;
            for (unsigned top = 0; top < REG_MAX_BUCKETS && ttl[k] < 0; top++)
                if (v->set[t][top][k])
                    ttl[k] = v->set[t][top][k]->ttl;
            for (unsigned sl = REG_MAX_BUCKETS; sl < REG_MAX_SLOTS && ttl[k] < 0; sl++)
                if (v->set[t][sl][k])
                    ttl[k] = v->set[t][sl][k]->ttl; /* the first child's: one TTL for all */
        }
        /* Aliases whose child serves nothing (another writer emptied it) go first. */
        for (unsigned c = 0; c < REG_TREE_CHILDREN; c++) {
            if (!v->alias[t][c] || child_has_served(v, t, c))
                continue;
            if (!batch_fits(b, 1, alias_chars) && (rc = batch_send(reg, b, detail, dn)) != RC_OK)
                return rc;
            batch_add(b, v->alias[t][c], NULL);
            b->elements++;
            b->chars += alias_chars;
            *moved = 1;
        }
        for (unsigned c = 0; c < REG_TREE_CHILDREN; c++) {
            unsigned served_left = 0;
            int alias_here = v->alias[t][c] && child_has_served(v, t, c);
            for (unsigned cb = 0; cb < REG_MAX_BUCKETS; cb++)
                served_left += v->set[t][reg_slot_of((int)c, cb)][REG_KIND_SERVED] != NULL;
            for (unsigned cb = 0; cb < REG_MAX_BUCKETS; cb++) {
                unsigned from = reg_slot_of((int)c, cb);
                const struct reg_record *served = v->set[t][from][REG_KIND_SERVED];
                int alias_goes;
                size_t e, ch;
                if (!slot_used(v, t, from))
                    continue;
                while (slot_used(v, t, free_top))
                    free_top++;
                /* The child's last served set: its alias goes first, in the same batch. */
                alias_goes = served && --served_left == 0 && alias_here;
                slot_cost(v, t, from, &e, &ch);
                if (!batch_fits(b, e + (size_t)alias_goes, ch + (alias_goes ? alias_chars : 0)) &&
                    (rc = batch_send(reg, b, detail, dn)) != RC_OK)
                    return rc;
                if (alias_goes) {
                    batch_add(b, v->alias[t][c], NULL);
                    b->elements++;
                    b->chars += alias_chars;
                }
                batch_move(
                    b, v, t, from, free_top,
                    served ? reg_weight_for(&reg->opt, (enum reg_type)t, served->nvalues) : 0, ttl);
                log_info("msg=\"tree migration: a child's bucket moves to the name\" type=%s "
                         "child=%u child_bucket=%u bucket=%u values=%zu",
                         reg_type_name((enum reg_type)t), c, cb, free_top,
                         served ? served->nvalues : (size_t)0);
                *moved = 1;
                free_top++;
            }
        }
    }
    return batch_send(reg, b, detail, dn);
}

enum rc_code tree_migrate(struct reg_registry *reg, struct reg_record **recs, size_t *n,
                          char *detail, size_t dn)
{
    struct mig_view *v = xcalloc(1, sizeof(*v));
    struct mig_batch *b = xcalloc(1, sizeof(*b));
    enum rc_code rc = RC_OK;
    int attempt;

    if (reg->opt.tree == REG_TREE_AUTO) {
        /* Either shape is served as it is; registry/tree_grow.c moves it while running. */
        free(v);
        free(b);
        return RC_OK;
    }
    for (attempt = 0; attempt < MIGRATE_ATTEMPTS; attempt++) {
        int moved = 0;
        view_build(v, *recs, *n);
        rc = reg->opt.tree ? to_tree(reg, v, b, &moved, detail, dn)
                           : to_flat(reg, v, b, &moved, detail, dn);
        batch_reset(b);
        if (rc == RC_OK && !moved)
            break; /* the zone has the shape the flags ask for */
        if (rc != RC_OK && rc != RC_CONFLICT)
            break;
        if (rc == RC_CONFLICT)
            log_warn("msg=\"tree migration: another writer changed a set; reading the zone "
                     "again\" detail=\"%s\"",
                     detail);
        /* Read the zone again: the next pass checks that nothing is left (or re-plans). */
        for (size_t i = 0; i < *n; i++)
            reg_record_release(&(*recs)[i]);
        free(*recs);
        *recs = NULL;
        *n = 0;
        if ((rc = reg->prov->ops->load(reg->prov, recs, n, detail, dn)) != RC_OK)
            break;
    }
    if (attempt == MIGRATE_ATTEMPTS) {
        snprintf(detail, dn,
                 "moving the zone %s: other writers changed it on every one of %d "
                 "attempts",
                 reg->opt.tree ? "into the alias tree" : "out of the alias tree", MIGRATE_ATTEMPTS);
        rc = RC_CONFLICT;
    } else if (rc == RC_OK && attempt > 0) {
        log_info("msg=\"tree migration: done\" shape=%s passes=%d", reg->opt.tree ? "tree" : "flat",
                 attempt);
    }
    free(v);
    free(b);
    return rc;
}
