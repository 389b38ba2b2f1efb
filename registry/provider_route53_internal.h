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

/* "_draining." + record name + "." + NUL */
#define FQDN_MAX (REG_NAME_MAX + 12)

struct wire {
    int exists;
    unsigned weight;
    long ttl;
    char **values;
    size_t nvalues;
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
    struct wire wire[2][REG_KINDS][REG_MAX_BUCKETS];
    struct r53_client_stats seen; /* counters already exported to metrics */
};

/* ---- registry/provider_route53_records.c ------------------------------------------------ */

/* Free a wire form (accepts a zeroed one). */
void r53p_wire_release(struct wire *w);
/* The wire form of a listed record set (value texts as Route 53 returned them). */
void r53p_wire_from_rrset(struct wire *w, const struct r53_rrset *rs);
/* The wire form of a record r53reg wrote (NULL: none), keeping HealthCheckId hcid. */
void r53p_wire_from_record(struct wire *w, const struct reg_record *r, const char *hcid);
/* The kind whose name (fully qualified, any case) is name, or -1. */
int r53p_kind_of_name(const struct r53_provider *rp, const char *name);
/* Is rs one of ours: a weighted A/AAAA set <record-name>_<n> under one of the three names?
 * Sets *t, *kind, *bucket. */
int r53p_ours(const struct r53_provider *rp, const struct r53_rrset *rs, enum reg_type *t,
              enum reg_kind *kind, unsigned *bucket);
/* The sets err's compare-and-swap messages name, into c (may be NULL); messages naming no
 * set of ours count in c->unnamed. */
void r53p_conflicts_from_error(const struct r53_provider *rp, const struct r53_error *err,
                               struct reg_conflicts *c);
/* The registry's record for a listed set. */
void r53p_record_from_rrset(const struct r53_rrset *rs, enum reg_type t, enum reg_kind kind,
                            unsigned bucket, struct reg_record *out);
/* Does the cached wire form w hold exactly the record old (values parsed, weight, TTL)? */
int r53p_wire_is(const struct wire *w, const struct reg_record *old, const char *set_id);
/* "<what>: <Route 53's code>: <message>" into detail. */
void r53p_say_error(const struct r53_error *err, const char *what, char *detail, size_t n);

#endif
