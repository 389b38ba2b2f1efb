/*
 * record.c: one weighted record set as a value: names, weights, deep copies, and the sorted
 * value list (binary search, one value added or removed). Pure; no locks.
 */
#include "registry/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

const char *reg_type_name(enum reg_type type)
{
    return type == REG_A ? "A" : "AAAA";
}

const char *reg_kind_prefix(enum reg_kind kind)
{
    static const char *const prefixes[REG_KINDS] = {"", "_down.", "_draining."};
    return (unsigned)kind < REG_KINDS ? prefixes[kind] : "";
}

enum reg_type reg_type_of(const struct ip_addr *ip)
{
    return ip->family == IP_V4 ? REG_A : REG_AAAA;
}

void reg_set_id(const struct reg_options *opt, unsigned bucket, char *out, size_t n)
{
    snprintf(out, n, "%s_%u", opt->record_name, bucket);
}

unsigned reg_weight_for(const struct reg_options *opt, enum reg_type type, size_t nvalues)
{
    unsigned cap = reg_capacity(opt, type), w;
    if (nvalues == 0)
        return 0;
    if (opt->weights == REG_WEIGHTS_EQUAL)
        return 1;
    if (cap <= REG_MAX_WEIGHT) /* a set adopted over the capacity still gets a valid weight */
        return nvalues < REG_MAX_WEIGHT ? (unsigned)nvalues : REG_MAX_WEIGHT;
    /* Buckets may hold more values than Route 53's largest weight: scale, keeping >= 1. */
    w = (unsigned)((nvalues * REG_MAX_WEIGHT + cap / 2) / cap);
    return w ? w : 1;
}

void reg_record_copy(struct reg_record *dst, const struct reg_record *src)
{
    *dst = *src;
    dst->values = NULL;
    if (src->nvalues) {
        dst->values = xmalloc(src->nvalues * sizeof(*src->values));
        memcpy(dst->values, src->values, src->nvalues * sizeof(*src->values));
    }
}

void reg_record_release(struct reg_record *rec)
{
    if (!rec)
        return;
    free(rec->values);
    rec->values = NULL;
    rec->nvalues = 0;
}

int reg_record_equal(const struct reg_record *a, const struct reg_record *b)
{
    if (a->type != b->type || a->kind != b->kind || a->bucket != b->bucket ||
        a->weight != b->weight || a->ttl != b->ttl || a->nvalues != b->nvalues)
        return 0;
    for (size_t i = 0; i < a->nvalues; i++)
        if (ip_cmp(&a->values[i], &b->values[i]))
            return 0;
    return 1;
}

/* Binary search; returns the index of ip or, negated minus one, where it would go. */
long record_find(const struct reg_record *rec, const struct ip_addr *ip)
{
    size_t lo = 0, hi = rec->nvalues;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = ip_cmp(&rec->values[mid], ip);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

/* Build old +/- ip into out (a fresh record with old's identity, weight and TTL). */
void record_with(const struct reg_record *old, const struct ip_addr *ip, int add,
                 struct reg_record *out)
{
    long pos = record_find(old, ip);
    size_t n;

    if ((pos >= 0) == !!add) { /* already so: never index with a missing slot */
        reg_record_copy(out, old);
        return;
    }
    n = old->nvalues + (add ? 1 : 0) - (add ? 0 : 1);
    *out = *old;
    out->values = n ? xmalloc(n * sizeof(*out->values)) : NULL;
    out->nvalues = n;
    /* Copy the values before and after the slot (memcpy of 0 bytes from NULL is UB). */
    size_t at = add ? (size_t)(-pos - 1) : (size_t)pos;
    size_t tail = old->nvalues - at - (add ? 0 : 1);
    if (at)
        memcpy(out->values, old->values, at * sizeof(*old->values));
    if (add)
        out->values[at] = *ip;
    if (tail)
        memcpy(out->values + at + (add ? 1 : 0), old->values + at + (add ? 0 : 1),
               tail * sizeof(*old->values));
}
