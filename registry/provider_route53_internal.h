/*
 * provider_route53_internal.h: what the Route 53 provider's two files share: the provider's
 * state and the wire cache (registry/provider_route53.c: the ops; provider_route53_records.c:
 * converting between Route 53's record sets and the registry's records). Nothing outside these
 * two files includes it.
 */
#ifndef R53REG_REGISTRY_PROVIDER_ROUTE53_INTERNAL_H
#define R53REG_REGISTRY_PROVIDER_ROUTE53_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "aws/route53.h"
#include "registry/provider.h"
#include "registry/provider_route53.h"

/* "_draining." + the longest group name (a child's) + "." + NUL */
#define FQDN_MAX (REG_NAME_MAX + 12 + REG_TREE_NAME_EXTRA(REG_TREE_LABEL_MAX))

/* A bucket's set as Route 53 last showed it (or as r53reg last wrote it). */
struct wire {
    unsigned long long written; /* r53_provider.writes when r53reg wrote it; 0: as listed */
    int exists;
    unsigned weight;
    long ttl;
    char **values;
    size_t nvalues;
    char *health_check_id;
};

/* An alias of the tree as Route 53 last showed it: the AliasTarget spelled as listed, so a
 * DELETE repeats it byte for byte. */
struct alias_wire {
    unsigned long long written; /* as in struct wire */
    int exists;
    unsigned weight;
    char *hosted_zone_id;
    char *dns_name;
    int evaluate_target_health;
    char *health_check_id;
};

struct r53_provider {
    struct reg_provider base;
    struct r53_client *client;
    struct ratelimit *limiter; /* shared by every call of the client */
    struct awscred_provider *creds;
    char *zone_id;
    /* per kind: reg_kind_prefix(kind), the record name and the trailing dot */
    char fqdn[REG_KINDS][FQDN_MAX];
    struct reg_options opt;
    atomic_int reachable;

    pthread_mutex_t lock;
    /* guarded by lock */
    struct wire (*wire)[REG_KINDS][REG_MAX_SLOTS]; /* [2], allocated once */
    struct alias_wire aliases[2][REG_TREE_CHILDREN];
    /* Calls applied so far: a listing keeps the cache entries written since it began (it may
     * have read them before the write). */
    unsigned long long writes;
    struct r53_client_stats seen; /* counters already exported to metrics */
};

/* ---- registry/provider_route53_records.c ------------------------------------------------ */

/* Free a wire form (accepts a zeroed one). */
void r53p_wire_release(struct wire *w);
/* The wire form of a listed record set (value texts as Route 53 returned them). */
void r53p_wire_from_rrset(struct wire *w, const struct r53_rrset *rs);
/* The wire form of a record r53reg wrote (NULL: none), keeping HealthCheckId hcid. */
void r53p_wire_from_record(struct wire *w, const struct reg_record *r, const char *hcid);
/* A deep copy of w into out (out is overwritten, not released). */
void r53p_wire_copy(struct wire *out, const struct wire *w);
/* The same three for an alias; an alias r53reg wrote targets rp's zone and its child. */
void r53p_alias_wire_release(struct alias_wire *w);
void r53p_alias_wire_from_rrset(struct alias_wire *w, const struct r53_rrset *rs);
void r53p_alias_wire_from_record(const struct r53_provider *rp, struct alias_wire *w,
                                 const struct reg_record *r, const char *hcid);
void r53p_alias_wire_copy(struct alias_wire *out, const struct alias_wire *w);
/* The fully qualified name (trailing dot) of slot's set of kind into out (FQDN_MAX bytes). */
void r53p_slot_fqdn(const struct r53_provider *rp, unsigned slot, enum reg_kind kind, char *out,
                    size_t n);
/* Is name (fully qualified or not, any case) the record name or a name under it: where
 * every set of ours lives? */
int r53p_in_tree(const struct r53_provider *rp, const char *name);
/* Is rs one of our bucket sets: a plain weighted A/AAAA set whose name and set identifier
 * reg_key_parse() takes as a bucket's? Sets *t, *kind, *slot. */
int r53p_ours(const struct r53_provider *rp, const struct r53_rrset *rs, enum reg_type *t,
              enum reg_kind *kind, unsigned *slot);
/* Is rs one of our aliases: keyed (name, set identifier) as one by reg_key_parse(), and a
 * weighted alias to our child name in this zone? 1 (sets *t, *child); 0 when its key is not
 * an alias's; -1 when the key is ours but the set is not what r53reg writes (*why says
 * what: the caller logs and skips it). */
int r53p_alias_ours(const struct r53_provider *rp, const struct r53_rrset *rs, enum reg_type *t,
                    unsigned *child, const char **why);
/* The sets and aliases err's compare-and-swap messages name, into c (may be NULL); messages
 * naming none of ours count in c->unnamed. */
void r53p_conflicts_from_error(const struct r53_provider *rp, const struct r53_error *err,
                               struct reg_conflicts *c);
/* 1 when err is InvalidChangeBatch and every message is Route 53 refusing an alias whose
 * target was not found: the tree's rule (provider.h), refused as a bad request. */
int r53p_error_is_alias_target(const struct r53_error *err);
/* The registry's record for a listed set. */
void r53p_record_from_rrset(const struct r53_rrset *rs, enum reg_type t, enum reg_kind kind,
                            unsigned slot, struct reg_record *out);
/* Does the cached wire form w hold exactly the record old (values parsed, weight, TTL)? */
int r53p_wire_is(const struct wire *w, const struct reg_record *old, const char *set_id);
/* "<what>: <Route 53's code>: <message>" into detail. */
void r53p_say_error(const struct r53_error *err, const char *what, char *detail, size_t n);

#endif
