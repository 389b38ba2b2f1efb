/*
 * provider_route53_records.c: converting between Route 53's record sets and the registry's
 * records for the Route 53 provider: which listed sets are ours (the buckets of the name and
 * of its alias-tree children, reg_key_parse(), and the aliases to those children), their
 * values parsed, the wire cache that lets a DELETE repeat what Route 53 showed byte for byte
 * (values, and an alias's AliasTarget), and error texts. Pure.
 */
#include "registry/provider_route53_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/log.h"
#include "util/xalloc.h"

/* ---- wire cache ------------------------------------------------------------------------- */

void r53p_wire_release(struct wire *w)
{
    for (size_t i = 0; i < w->nvalues; i++)
        free(w->values[i]);
    free(w->values);
    free(w->health_check_id);
    memset(w, 0, sizeof(*w));
}

void r53p_wire_from_rrset(struct wire *w, const struct r53_rrset *rs)
{
    r53p_wire_release(w);
    w->exists = 1;
    w->weight = rs->weight;
    w->ttl = rs->ttl;
    w->nvalues = rs->nvalues;
    w->values = xcalloc(rs->nvalues ? rs->nvalues : 1, sizeof(char *));
    for (size_t i = 0; i < rs->nvalues; i++)
        w->values[i] = xstrdup(rs->values[i]);
    w->health_check_id = rs->health_check_id ? xstrdup(rs->health_check_id) : NULL;
}

void r53p_wire_from_record(struct wire *w, const struct reg_record *r, const char *hcid)
{
    char txt[IP_TEXT_MAX];
    char *keep = hcid ? xstrdup(hcid) : NULL;
    r53p_wire_release(w);
    w->health_check_id = keep;
    if (!r)
        return;
    w->exists = 1;
    w->weight = r->weight;
    w->ttl = r->ttl;
    w->nvalues = r->nvalues;
    w->values = xcalloc(r->nvalues ? r->nvalues : 1, sizeof(char *));
    for (size_t i = 0; i < r->nvalues; i++)
        w->values[i] = xstrdup(ip_format(&r->values[i], txt));
}

void r53p_wire_copy(struct wire *out, const struct wire *w)
{
    *out = *w;
    out->values = xcalloc(w->nvalues ? w->nvalues : 1, sizeof(char *));
    for (size_t v = 0; v < w->nvalues; v++)
        out->values[v] = xstrdup(w->values[v]);
    out->health_check_id = w->health_check_id ? xstrdup(w->health_check_id) : NULL;
}

void r53p_alias_wire_release(struct alias_wire *w)
{
    free(w->hosted_zone_id);
    free(w->dns_name);
    free(w->health_check_id);
    memset(w, 0, sizeof(*w));
}

void r53p_alias_wire_from_rrset(struct alias_wire *w, const struct r53_rrset *rs)
{
    r53p_alias_wire_release(w);
    w->exists = 1;
    w->weight = rs->weight;
    w->hosted_zone_id = xstrdup(rs->alias.hosted_zone_id);
    w->dns_name = xstrdup(rs->alias.dns_name);
    w->evaluate_target_health = rs->alias.evaluate_target_health;
    w->health_check_id = rs->health_check_id ? xstrdup(rs->health_check_id) : NULL;
}

void r53p_alias_wire_from_record(const struct r53_provider *rp, struct alias_wire *w,
                                 const struct reg_record *r, const char *hcid)
{
    char child[FQDN_MAX], target[FQDN_MAX + 1];
    char *keep = hcid ? xstrdup(hcid) : NULL;
    r53p_alias_wire_release(w);
    w->health_check_id = keep;
    if (!r)
        return;
    reg_child_name(&rp->opt, r->bucket, child, sizeof(child));
    snprintf(target, sizeof(target), "%s.", child);
    w->exists = 1;
    w->weight = r->weight;
    w->hosted_zone_id = xstrdup(rp->zone_id);
    w->dns_name = xstrdup(target);
    w->evaluate_target_health = 0;
}

void r53p_alias_wire_copy(struct alias_wire *out, const struct alias_wire *w)
{
    *out = *w;
    out->hosted_zone_id = w->hosted_zone_id ? xstrdup(w->hosted_zone_id) : NULL;
    out->dns_name = w->dns_name ? xstrdup(w->dns_name) : NULL;
    out->health_check_id = w->health_check_id ? xstrdup(w->health_check_id) : NULL;
}

/* ---- record conversion ------------------------------------------------------------------ */

void r53p_slot_fqdn(const struct r53_provider *rp, unsigned slot, enum reg_kind kind, char *out,
                    size_t n)
{
    char name[FQDN_MAX];
    reg_slot_name(&rp->opt, slot, kind, name, sizeof(name));
    snprintf(out, n, "%s.", name);
}

int r53p_in_tree(const struct r53_provider *rp, const char *name)
{
    const char *rn = rp->opt.record_name;
    size_t nl = strlen(name), rl = strlen(rn);
    if (nl && name[nl - 1] == '.')
        nl--;
    if (nl < rl || strncasecmp(name + nl - rl, rn, rl))
        return 0;
    return nl == rl || name[nl - rl - 1] == '.';
}

/* The type of a listed set, when it is one r53reg keeps. */
static int type_of(const char *type, enum reg_type *t)
{
    if (!strcmp(type, "A"))
        *t = REG_A;
    else if (!strcmp(type, "AAAA"))
        *t = REG_AAAA;
    else
        return 0;
    return 1;
}

/* Which of our keys (name, type, sid) is: reg_key_parse()'s answer (1 a bucket's set, 2 an
 * alias, 0 not ours), for types A and AAAA only. */
static int our_key(const struct r53_provider *rp, const char *name, const char *type,
                   const char *sid, enum reg_type *t, enum reg_kind *kind, unsigned *slot,
                   unsigned *child)
{
    if (!sid || !type_of(type, t))
        return 0;
    return reg_key_parse(&rp->opt, name, sid, kind, slot, child);
}

int r53p_ours(const struct r53_provider *rp, const struct r53_rrset *rs, enum reg_type *t,
              enum reg_kind *kind, unsigned *slot)
{
    unsigned child;
    return r53xml_rrset_is_weighted(rs) &&
           our_key(rp, rs->name, rs->type, rs->set_identifier, t, kind, slot, &child) == 1;
}

/* Is dns_name (any case, trailing dot optional) child's name under rp's options? */
static int is_child_name(const struct r53_provider *rp, const char *dns_name, unsigned child)
{
    char want[FQDN_MAX];
    size_t len = strlen(dns_name);
    reg_child_name(&rp->opt, child, want, sizeof(want));
    if (len && dns_name[len - 1] == '.')
        len--;
    return len == strlen(want) && !strncasecmp(dns_name, want, len);
}

int r53p_alias_ours(const struct r53_provider *rp, const struct r53_rrset *rs, enum reg_type *t,
                    unsigned *child, const char **why)
{
    enum reg_kind kind;
    unsigned slot;

    *why = NULL;
    if (our_key(rp, rs->name, rs->type, rs->set_identifier, t, &kind, &slot, child) != 2)
        return 0;
    if (rs->flags != R53_RRSET_F_ALIAS || !rs->alias.hosted_zone_id || !rs->alias.dns_name)
        *why = "not a weighted alias (values, or another routing policy)";
    else if (!rs->has_weight)
        *why = "an alias without a weight";
    else if (strcmp(r53xml_strip_id_prefix(rs->alias.hosted_zone_id), rp->zone_id))
        *why = "an alias into another hosted zone";
    else if (!is_child_name(rp, rs->alias.dns_name, *child))
        *why = "an alias to another name than its child";
    return *why ? -1 : 1;
}

/*
 * The sets err's compare-and-swap messages name ("Tried to delete resource record set
 * [name=..., type=..., set-identifier=...] but ..."), mapped to (type, kind, slot) or to an
 * alias (type, child) into c. A message naming no set of ours (the older wording gives no
 * identifier) counts as unnamed; weighted-TTL refusals are not conflicts of a set and are left
 * to the detail.
 */
void r53p_conflicts_from_error(const struct r53_provider *rp, const struct r53_error *err,
                               struct reg_conflicts *c)
{
    for (size_t i = 0; c && i < err->nmessages; i++) {
        struct r53_named_rrset set;
        enum reg_type t;
        enum reg_kind kind;
        unsigned slot, child;
        int key = 0;
        if (!r53xml_message_is_cas_conflict(err->messages[i]))
            continue;
        if (r53xml_message_rrset(err->messages[i], &set) && set.has_set_identifier)
            key = our_key(rp, set.name, set.type, set.set_identifier, &t, &kind, &slot, &child);
        if (key == 1)
            reg_conflicts_add(c, t, kind, slot);
        else if (key == 2)
            reg_conflicts_add_alias(c, t, child);
        else
            c->unnamed++;
    }
}

int r53p_error_is_alias_target(const struct r53_error *err)
{
    static const char head[] = "Tried to create an alias that targets ";
    static const char tail[] = "but that target was not found";
    if (!err || err->kind != R53_E_INVALID_CHANGE_BATCH || !err->nmessages)
        return 0;
    for (size_t i = 0; i < err->nmessages; i++) {
        const char *m = err->messages[i], *at;
        if (!m || strncmp(m, head, sizeof(head) - 1) || !(at = strstr(m, tail)) ||
            (at[sizeof(tail) - 1] && strcmp(at + sizeof(tail) - 1, ".")))
            return 0;
    }
    return 1;
}

static int cmp_ip(const void *a, const void *b)
{
    return ip_cmp(a, b);
}

/* The registry's view of value texts: the API's own address rules (util/ip.h: canonical
 * spelling, no unspecified, multicast, broadcast or IPv4-mapped address) and the record's
 * family; a value that fails them is skipped and logged (quoted), so the registry never adopts
 * from the zone an address a client could not register. Sorted, duplicates dropped. set_id
 * names the set in the log line. */
static void record_from_texts(const char *const *texts, size_t ntexts, unsigned weight, long ttl,
                              enum reg_type t, enum reg_kind kind, unsigned bucket,
                              const char *set_id, struct reg_record *out)
{
    size_t k = 0;
    memset(out, 0, sizeof(*out));
    out->type = t;
    out->kind = kind;
    out->bucket = bucket;
    out->weight = weight;
    out->ttl = (unsigned)ttl;
    out->values = xcalloc(ntexts ? ntexts : 1, sizeof(*out->values));
    for (size_t i = 0; i < ntexts; i++) {
        struct ip_addr a;
        char why[160], qs[300], qv[200], qw[400];
        enum rc_code prc;
        memset(&a, 0, sizeof(a));
        prc = ip_parse(texts[i], strlen(texts[i]), &a, why, sizeof(why));
        if (prc == RC_OK && a.family != (t == REG_A ? IP_V4 : IP_V6)) {
            snprintf(why, sizeof(why), "an IPv%d address in a%s record", (int)a.family,
                     t == REG_A ? "n A" : "n AAAA");
            prc = RC_INVALID_IP;
        }
        if (prc == RC_OK) {
            out->values[k++] = a;
            continue;
        }
        log_warn("msg=\"value skipped: not an address the API accepts\" set_id=%s value=%s "
                 "reason=%s",
                 log_quote(set_id ? set_id : "", qs, sizeof(qs)),
                 log_quote(texts[i], qv, sizeof(qv)), log_quote(why, qw, sizeof(qw)));
    }
    qsort(out->values, k, sizeof(*out->values), cmp_ip);
    out->nvalues = 0;
    for (size_t i = 0; i < k; i++)
        if (!out->nvalues || ip_cmp(&out->values[out->nvalues - 1], &out->values[i]))
            out->values[out->nvalues++] = out->values[i];
}

void r53p_record_from_rrset(const struct r53_rrset *rs, enum reg_type t, enum reg_kind kind,
                            unsigned slot, struct reg_record *out)
{
    record_from_texts(rs->values, rs->nvalues, rs->weight, rs->ttl, t, kind, slot,
                      rs->set_identifier, out);
}

/*
 * Is the wire form w the record the registry means to replace (old)? The DELETE half repeats
 * w, so when w is newer than the caller's view (a listing refreshed the cache of a bucket the
 * registry did not adopt) the batch would replace what Route 53 holds with a change computed
 * from a stale view: another writer's values would silently go. Such a batch is a conflict.
 */
int r53p_wire_is(const struct wire *w, const struct reg_record *old, const char *set_id)
{
    struct reg_record cur;
    int same;
    record_from_texts((const char *const *)w->values, w->nvalues, w->weight, w->ttl, old->type,
                      old->kind, old->bucket, set_id, &cur);
    same = cur.weight == old->weight && cur.ttl == old->ttl && cur.nvalues == old->nvalues;
    for (size_t i = 0; same && i < cur.nvalues; i++)
        same = !ip_cmp(&cur.values[i], &old->values[i]);
    free(cur.values);
    return same;
}

void r53p_say_error(const struct r53_error *err, const char *what, char *detail, size_t n)
{
    char line[768];
    rc_detail(detail, n, "Route 53 %s failed: %s", what,
              r53xml_error_format(err, line, sizeof(line)));
}
