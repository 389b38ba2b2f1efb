/*
 * record.c: one weighted record set as a value: names, weights, deep copies, and the sorted
 * value list (binary search, one value added or removed). Pure; no locks.
 */
#include "registry/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

struct reg_record reg_alias_record(enum reg_type t, unsigned child, unsigned weight)
{
    struct reg_record r;
    memset(&r, 0, sizeof(r));
    r.type = t;
    r.kind = REG_KIND_SERVED;
    r.bucket = child;
    r.weight = weight;
    r.alias = 1;
    return r;
}

const char *reg_tree_label(const struct reg_options *opt)
{
    return opt->tree_label[0] ? opt->tree_label : REG_TREE_LABEL_DEFAULT;
}

void reg_child_name(const struct reg_options *opt, unsigned child, char *out, size_t n)
{
    /* Configuration refuses a record name whose children's names would not fit; a name cut
     * short here would be a different name, so a cut leaves "" (which matches nothing). */
    if (snprintf(out, n, "%u.%s.%s", child, reg_tree_label(opt), opt->record_name) >= (int)n)
        out[0] = '\0';
}

void reg_set_id(const struct reg_options *opt, unsigned bucket, char *out, size_t n)
{
    int child = reg_slot_child(bucket);
    if (child < 0) {
        snprintf(out, n, "%s_%u", opt->record_name, bucket);
        return;
    }
    snprintf(out, n, "%d.%s.%s_%u", child, reg_tree_label(opt), opt->record_name,
             reg_slot_bucket(bucket));
}

void reg_slot_name(const struct reg_options *opt, unsigned slot, enum reg_kind kind, char *out,
                   size_t n)
{
    int child = reg_slot_child(slot);
    if (child < 0)
        snprintf(out, n, "%s%s", reg_kind_prefix(kind), opt->record_name);
    else
        snprintf(out, n, "%s%d.%s.%s", reg_kind_prefix(kind), child, reg_tree_label(opt),
                 opt->record_name);
}

void reg_alias_set_id(const struct reg_options *opt, unsigned child, char *out, size_t n)
{
    snprintf(out, n, "%s_t%u", opt->record_name, child);
}

/* A canonical decimal number below limit at s, ending at end (or the string's end when end is
 * NULL): no sign, no leading zero. -1 when it is not one. */
static long canonical_number(const char *s, const char *end, unsigned long limit)
{
    unsigned long v = 0;
    const char *p = s;
    if (!end)
        end = s + strlen(s);
    if (p == end || (*p == '0' && end - p > 1))
        return -1;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (unsigned long)(*p - '0');
        if (v >= limit)
            return -1;
    }
    return (long)v;
}

/* Is name (with or without one trailing dot) equal to want, case-insensitively? */
static int name_is(const char *name, size_t len, const char *want)
{
    size_t wl = strlen(want);
    if (len && name[len - 1] == '.')
        len--;
    return len == wl && !strncasecmp(name, want, wl);
}

int reg_key_parse(const struct reg_options *opt, const char *name, const char *set_id,
                  enum reg_kind *kind, unsigned *slot, unsigned *child)
{
    const char *rn = opt->record_name, *label = reg_tree_label(opt);
    size_t rnl = strlen(rn), nl = strlen(name), sl = strlen(set_id), ll = strlen(label);
    int k = -1;
    long c = -1, b;

    /* The kind's prefix, then the group name: record_name or <c>.<label>.<record_name>. */
    for (int i = REG_KINDS - 1; i >= 0 && k < 0; i--) {
        const char *pre = reg_kind_prefix((enum reg_kind)i);
        size_t pl = strlen(pre);
        if (nl >= pl && !strncasecmp(name, pre, pl))
            k = i;
    }
    name += strlen(reg_kind_prefix((enum reg_kind)k));
    nl = strlen(name);
    if (!name_is(name, nl, rn)) {
        const char *dot = strchr(name, '.');
        if (!dot || strncasecmp(dot + 1, label, ll) || dot[1 + ll] != '.' ||
            !name_is(dot + 2 + ll, strlen(dot + 2 + ll), rn))
            return 0;
        if ((c = canonical_number(name, dot, REG_TREE_CHILDREN)) < 0)
            return 0;
    }
    /* The set identifier: <group name>_<b>, or <record_name>_t<c> for an alias. */
    if (c < 0) {
        if (sl < rnl + 2 || strncasecmp(set_id, rn, rnl) || set_id[rnl] != '_')
            return 0;
        if (set_id[rnl + 1] == 't') {
            long ac = canonical_number(set_id + rnl + 2, NULL, REG_TREE_CHILDREN);
            if (ac < 0 || k != REG_KIND_SERVED)
                return 0;
            *child = (unsigned)ac;
            return 2;
        }
        if ((b = canonical_number(set_id + rnl + 1, NULL, REG_MAX_BUCKETS)) < 0)
            return 0;
        *kind = (enum reg_kind)k;
        *slot = (unsigned)b;
        return 1;
    }
    {
        char group[REG_NAME_MAX + 1];
        size_t gl;
        reg_child_name(opt, (unsigned)c, group, sizeof(group));
        gl = strlen(group);
        if (sl < gl + 2 || strncasecmp(set_id, group, gl) || set_id[gl] != '_')
            return 0;
        if ((b = canonical_number(set_id + gl + 1, NULL, REG_MAX_BUCKETS)) < 0)
            return 0;
    }
    *kind = (enum reg_kind)k;
    *slot = reg_slot_of((int)c, (unsigned)b);
    return 1;
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
        a->weight != b->weight || a->ttl != b->ttl || a->nvalues != b->nvalues ||
        a->alias != b->alias)
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
