/*
 * emu_resolve.c: answers simulated DNS queries from a resolution plan (emu_store_resolve_plan
 * in emu_zone.c), as Route 53 answers a weighted name: each query picks one record set of the
 * group by weight and, for an alias, picks again in the target's group, down to a plain record
 * set whose values are the answer.
 *
 * The plan already holds every group's cumulative weights, so a query costs one draw and one
 * binary search per level. Sampling uses the seeded splitmix64 PRNG of emu_util.c: the same
 * plan, seed and n give the same counts. The exact mode walks the tree once and multiplies the
 * weight shares instead.
 *
 * Threading: pure; the plan is read only.
 */
#include <stdio.h>
#include <stdlib.h>

#include "emu.h"
#include "util/xalloc.h"

/* The slot a draw r in [0, total) falls into: the first whose cumulative weight exceeds r. */
static const struct emu_rslot *pick(const struct emu_rplan *p, const struct emu_rnode *nd,
                                    uint64_t r)
{
    size_t lo = nd->first, hi = nd->first + nd->n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->slots[mid].cum > r)
            hi = mid;
        else
            lo = mid + 1;
    }
    return &p->slots[lo];
}

static uint64_t node_total(const struct emu_rplan *p, const struct emu_rnode *nd)
{
    return p->slots[nd->first + nd->n - 1].cum;
}

/* Add x to the number (integer or real) stored under key. */
static void add_to(json_t *obj, const char *key, double x, int exact)
{
    json_t *v = json_object_get(obj, key);
    if (exact) {
        if (v)
            json_real_set(v, json_real_value(v) + x);
        else
            json_object_set_new(obj, key, json_real(x));
    } else {
        if (v)
            json_integer_set(v, json_integer_value(v) + (json_int_t)x);
        else
            json_object_set_new(obj, key, json_integer((json_int_t)x));
    }
}

/* Credit one leaf with weight x (a count, or a probability when exact). */
static void credit_leaf(const struct emu_rleaf *lf, double x, int exact, json_t *answers,
                        json_t *records, json_t *ttls)
{
    char ttl[24];
    for (size_t v = 0; v < lf->nvalues; v++)
        add_to(answers, lf->values[v], x, exact);
    add_to(records, lf->path, x, exact);
    snprintf(ttl, sizeof(ttl), "%lld", lf->ttl);
    add_to(ttls, ttl, x, exact);
}

/* Exact mode: spread probability prob over node's slots. */
static void walk_exact(const struct emu_rplan *p, size_t node, double prob, json_t *answers,
                       json_t *records, json_t *ttls, double *none)
{
    const struct emu_rnode *nd = &p->nodes[node];
    double total = (double)node_total(p, nd);
    uint64_t prev = 0;

    for (size_t i = nd->first; i < nd->first + nd->n; i++) {
        const struct emu_rslot *sl = &p->slots[i];
        double share = prob * (double)(sl->cum - prev) / total;
        prev = sl->cum;
        if (sl->kind == EMU_RSLOT_NODE)
            walk_exact(p, sl->idx, share, answers, records, ttls, none);
        else if (sl->kind == EMU_RSLOT_LEAF)
            credit_leaf(&p->leaves[sl->idx], share, 1, answers, records, ttls);
        else
            *none += share;
    }
}

json_t *emu_rplan_run(const struct emu_rplan *p, uint64_t seed, long long n, int exact)
{
    json_t *o = json_object(), *answers = json_object(), *records = json_object();
    json_t *ttls = json_object();

    json_object_set_new(o, "name", json_string(p->name));
    json_object_set_new(o, "type", json_string(p->type));
    if (exact) {
        double none = p->answered ? 0.0 : 1.0;
        if (p->answered)
            walk_exact(p, 0, 1.0, answers, records, ttls, &none);
        json_object_set_new(o, "exact", json_true());
        json_object_set_new(o, "no_answer", json_real(none));
    } else {
        uint64_t *hits = xcalloc(p->nleaves ? p->nleaves : 1, sizeof(*hits));
        long long none = p->answered ? 0 : n;
        struct emu_rng rng;

        emu_rng_seed(&rng, seed ^ 0x7265736f6c7665ULL);
        for (long long q = 0; p->answered && q < n; q++) {
            size_t node = 0;
            for (;;) {
                const struct emu_rnode *nd = &p->nodes[node];
                const struct emu_rslot *sl = pick(p, nd, emu_rng_next(&rng) % node_total(p, nd));
                if (sl->kind == EMU_RSLOT_NODE) {
                    node = sl->idx;
                    continue;
                }
                if (sl->kind == EMU_RSLOT_LEAF)
                    hits[sl->idx]++;
                else
                    none++;
                break;
            }
        }
        for (size_t i = 0; i < p->nleaves; i++) {
            if (hits[i])
                credit_leaf(&p->leaves[i], (double)hits[i], 0, answers, records, ttls);
        }
        free(hits);
        json_object_set_new(o, "n", json_integer(n));
        json_object_set_new(o, "no_answer", json_integer(none));
    }
    json_object_set_new(o, "answers", answers);
    json_object_set_new(o, "records", records);
    json_object_set_new(o, "ttls", ttls);
    return o;
}
