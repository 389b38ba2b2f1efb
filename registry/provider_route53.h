/*
 * provider_route53.h: the registry's store in a Route 53 hosted zone (provider.h contract).
 * See docs/design-route53.md.
 */
#ifndef R53REG_REGISTRY_PROVIDER_ROUTE53_H
#define R53REG_REGISTRY_PROVIDER_ROUTE53_H

#include <stddef.h>

#include "aws/credentials.h"
#include "aws/sigv4.h"
#include "registry/provider.h"

struct reg_route53_options {
    const struct reg_options *reg;  /* record name, TTL, ... (copied) */
    const char *zone_id;            /* "Z..." or "/hostedzone/Z..." */
    const char *endpoint;           /* NULL: https://route53.amazonaws.com */
    const char *region;             /* NULL: us-east-1 */
    double rps;                     /* API calls per second (0: 5) */
    double burst;                   /* 0: rps */
    double change_rps;              /* record changes per second; <= 0: no change budget */
    /* Credentials: the SDK chain with these options, or static ones (tests). */
    const struct awscred_options *cred_options;
    const struct sigv4_creds *static_creds;
};

/*
 * Resolve credentials, create the client and check the zone: it exists (GetHostedZone) and
 * holds the record name. Errors: RC_CONFIG (no credentials, name outside the zone), or the
 * client's code for Route 53 errors, with detail saying which.
 */
enum rc_code reg_provider_route53_create(const struct reg_route53_options *o,
                                         struct reg_provider **out, char *detail, size_t n);

/* The rate limiter every call of a Route 53 provider shares (replicas divide its budget:
 * ratelimit_set_share), or NULL when p is another kind of provider. It lives as long as p. */
struct ratelimit;
struct ratelimit *reg_provider_route53_limiter(struct reg_provider *p);

#endif
