/*
 * tree_rules.c: the alias tree's rules over one batch (tree_rules.h). The batch is played on
 * a copy of the store's counts in the order Route 53 applies the wire batch, and every rule it
 * breaks is named. Pure; no locks.
 */
#include "registry/tree_rules.h"

#include <stdio.h>
#include <string.h>

#include "util/buf.h"

void tree_counts_note(struct tree_counts *c, const struct reg_record *r, int sign)
{
    int child;

    if (r->alias) {
        c->alias[r->type][r->bucket] = sign > 0;
        return;
    }
    if (r->kind != REG_KIND_SERVED || !r->nvalues)
        return;
    child = reg_slot_child(r->bucket);
    if (child < 0)
        c->top[r->type] += (unsigned)sign;
    else
        c->served[r->type][child] += (unsigned)sign;
}

/* Is r a record the tree can hold? */
static int key_valid(const struct reg_record *r)
{
    if ((unsigned)r->type > REG_AAAA || (unsigned)r->kind >= REG_KINDS)
        return 0;
    if (r->alias)
        return r->bucket < REG_TREE_CHILDREN && r->kind == REG_KIND_SERVED && !r->nvalues &&
               r->weight <= REG_MAX_WEIGHT;
    return r->bucket < REG_MAX_SLOTS;
}

enum rc_code tree_rules_keys(const struct reg_change *changes, size_t n, char *detail, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        const struct reg_record *o = changes[i].old, *w = changes[i].new;
        const char *why = NULL;
        if (!o && !w)
            why = "names no set";
        else if ((o && !key_valid(o)) || (w && !key_valid(w)))
            why = "names a set outside the tree (type, kind, slot or alias child out of range, "
                  "or an alias with values)";
        else if (o && w &&
                 (o->type != w->type || o->kind != w->kind || o->bucket != w->bucket ||
                  !o->alias != !w->alias))
            why = "replaces one set with another";
        if (why) {
            rc_detail(detail, len, "change %zu of the batch %s", i, why);
            return RC_BAD_REQUEST;
        }
    }
    return RC_OK;
}

/* "[name='<record_name>.', type='A', set-identifier='<record_name>_t<c>']" into m. */
static void say_alias(struct buf *m, const struct reg_options *opt, enum reg_type t, unsigned c)
{
    char sid[REG_SET_ID_MAX + 1];
    reg_alias_set_id(opt, c, sid, sizeof(sid));
    buf_addf(m, "[name='%s.', type='%s', set-identifier='%s']", opt->record_name, reg_type_name(t),
             sid);
}

/* Start one message of the bracketed list. */
static void next_message(struct buf *m, size_t *failed)
{
    buf_adds(m, (*failed)++ ? ", " : "[");
}

enum rc_code tree_rules_check(const struct reg_options *opt, const char *zone,
                              const struct tree_counts *before, const struct reg_change *changes,
                              size_t n, char *detail, size_t len)
{
    struct tree_counts c = *before;
    unsigned char touched[2][REG_TREE_CHILDREN], grows[2] = {0, 0};
    char child[REG_NAME_MAX + 1];
    struct buf m = {0};
    size_t failed = 0;

    memset(touched, 0, sizeof(touched));
    for (size_t i = 0; i < n; i++) {
        const struct reg_record *key = changes[i].old ? changes[i].old : changes[i].new;
        int ch = -1;
        if (key->alias)
            ch = (int)key->bucket;
        else if (key->kind == REG_KIND_SERVED)
            ch = reg_slot_child(key->bucket);
        if (ch >= 0)
            touched[key->type][ch] = 1;
        if (changes[i].old)
            tree_counts_note(&c, changes[i].old, -1);
    }
    for (size_t i = 0; i < n; i++) {
        const struct reg_record *nr = changes[i].new;
        if (!nr)
            continue;
        if (nr->alias && !c.served[nr->type][nr->bucket]) {
            reg_child_name(opt, nr->bucket, child, sizeof(child));
            next_message(&m, &failed);
            buf_addf(&m,
                     "Tried to create an alias that targets %s., type %s in zone %s, but that "
                     "target was not found",
                     child, reg_type_name(nr->type), zone);
            continue; /* a refused change is not applied: later ones meet the zone without it */
        }
        if (nr->alias ||
            (nr->kind == REG_KIND_SERVED && reg_slot_child(nr->bucket) < 0 && nr->nvalues))
            grows[nr->type] = 1;
        tree_counts_note(&c, nr, 1);
    }
    for (int t = 0; t < 2; t++) {
        unsigned group = c.top[t];
        for (unsigned ch = 0; ch < REG_TREE_CHILDREN; ch++) {
            group += c.alias[t][ch];
            /* An alias the batch leaves without a target: only judged where the batch wrote
             * (the alias or its child's served sets), so a store some other writer left
             * dangling still takes batches elsewhere. */
            if (!touched[t][ch] || !c.alias[t][ch] || c.served[t][ch])
                continue;
            reg_child_name(opt, ch, child, sizeof(child));
            next_message(&m, &failed);
            buf_adds(&m, "Alias record set ");
            say_alias(&m, opt, (enum reg_type)t, ch);
            buf_addf(&m,
                     " would be left targeting %s., which would hold no %s record set: an alias "
                     "goes in the batch that deletes its child's last set",
                     child, reg_type_name((enum reg_type)t));
        }
        if (grows[t] && group > REG_MAX_BUCKETS) {
            next_message(&m, &failed);
            buf_addf(&m,
                     "Exceeded limit on number of weighted RRSets for %s., type %s in this zone "
                     "(%u record sets and aliases; at most %d)",
                     opt->record_name, reg_type_name((enum reg_type)t), group, REG_MAX_BUCKETS);
        }
    }
    if (failed)
        rc_detail(detail, len, "%s]", buf_str(&m));
    buf_release(&m);
    return failed ? RC_BAD_REQUEST : RC_OK;
}
