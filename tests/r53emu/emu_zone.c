/*
 * emu_zone.c: hosted zones, their record sets and the change log of r53emu.
 *
 * Invariants:
 * - A zone's record sets are kept sorted in ListResourceRecordSets order: by name with its
 *   labels reversed, compared bytewise as a string with the dots ("com.example.www."), then by
 *   type (bytewise), then by SetIdentifier (a simple record set, which has none, first).
 * - Names are stored as Route 53 returns them: lowercase, trailing dot, bytes outside
 *   [a-z0-9_-] as \ooo octal escapes ("*" is "\052").
 * - (name, type, SetIdentifier) is unique in a zone; every zone keeps its apex SOA and NS.
 * - A change batch is validated completely against a private overlay of the zone before any
 *   of it is applied; it applies all or nothing.
 *
 * Threading: one mutex guards every zone and the change log; each public function holds it for
 * its whole duration and never calls out while holding it.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"
#include "util/xalloc.h"

#define MAX_WEIGHTED 100
#define MAX_VALUES 400
#define MAX_RECORD_UNITS 1000
#define MAX_CHAR_UNITS 32000
#define MAX_LIST_ITEMS 300
#define SOA_TTL 900
#define NS_TTL 172800

struct rrset {
    char *name; /* canonical */
    char *rkey; /* sort key of name */
    char type[8];
    char *set_id;  /* NULL: simple */
    long weight;   /* -1: none */
    long long ttl; /* -1 for an alias */
    char **values; /* none for an alias */
    size_t nvalues;
    /* an alias record set: its AliasTarget instead of TTL and values */
    char *alias_zone; /* HostedZoneId as sent; NULL: not an alias */
    char *alias_dns;  /* DNSName, canonical (lowercase, trailing dot) */
    int alias_eth;    /* EvaluateTargetHealth */
};

struct zone {
    char *id;
    char *name; /* canonical, "example.com." */
    char *rkey;
    unsigned index;
    struct rrset **sets; /* guarded by emu_store.lock */
    size_t n, cap;       /* guarded by emu_store.lock */
    /* list_paging=cycle: the first record of the first truncated page (a copy), per epoch */
    struct rrset *anchor;  /* guarded by emu_store.lock */
    unsigned anchor_epoch; /* guarded by emu_store.lock */
};

struct change_rec {
    long long mono_ms;
    long long real_ms;
    char *comment;
};

struct emu_store {
    struct zone *zones; /* fixed after startup */
    size_t nzones;
    char id_prefix[5];
    uint64_t seed;      /* the resolver's draws */
    size_t max_records; /* record sets per zone */
    int refuse_dangling;

    pthread_mutex_t lock;
    struct change_rec *changes; /* guarded by lock */
    size_t nchanges, ccap;      /* guarded by lock */
};

/* --- names --------------------------------------------------------------------------------- */

static int plain_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int emu_name_normalize(const char *in, char **out, char *why, size_t why_len)
{
    struct buf b = {0};
    size_t n = strlen(in), label = 0, wire = 1;
    int rc = -1;

    *out = NULL;
    if (n && in[n - 1] == '.' && !(n >= 2 && in[n - 2] == '\\'))
        n--;
    if (n == 0) {
        snprintf(why, why_len,
                 "FATAL problem: DomainLabelEmpty (Domain label is empty) encountered with '%s'",
                 in);
        goto out;
    }
    for (size_t i = 0; i <= n; i++) {
        unsigned char c;
        if (i == n || in[i] == '.') {
            if (label == 0) {
                snprintf(why, why_len,
                         "FATAL problem: DomainLabelEmpty (Domain label is empty) encountered "
                         "with '%s'",
                         in);
                goto out;
            }
            if (label > 63) {
                snprintf(why, why_len,
                         "FATAL problem: DomainLabelTooLong (Domain label is too long) "
                         "encountered with '%s'",
                         in);
                goto out;
            }
            wire += label + 1;
            label = 0;
            buf_adds(&b, ".");
            continue;
        }
        c = (unsigned char)in[i];
        if (c == '\\' && i + 3 < n && in[i + 1] >= '0' && in[i + 1] <= '3' && in[i + 2] >= '0' &&
            in[i + 2] <= '7' && in[i + 3] >= '0' && in[i + 3] <= '7') {
            c = (unsigned char)((in[i + 1] - '0') * 64 + (in[i + 2] - '0') * 8 + (in[i + 3] - '0'));
            i += 3;
        } else if (c == '\\' && i + 1 < n) {
            c = (unsigned char)in[++i];
        }
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (plain_char(c))
            buf_add(&b, &c, 1);
        else
            buf_addf(&b, "\\%03o", c);
        label++;
    }
    if (wire > 255) {
        snprintf(why, why_len,
                 "FATAL problem: DomainNameTooLong (Domain name is too long) encountered with "
                 "'%s'",
                 in);
        goto out;
    }
    *out = buf_detach(&b);
    rc = 0;
out:
    buf_release(&b);
    return rc;
}

/* The ListResourceRecordSets sort key of a stored name: its labels reversed and joined with
 * dots, trailing dot kept ("www.example.com." -> "com.example.www."), escapes decoded, compared
 * bytewise. The API Reference points out that characters below '.' (! " # $ % & ' ( ) * + , -)
 * therefore sort before the dot: a-b.example.com. comes before x.a.example.com. */
static char *name_rkey(const char *name)
{
    struct buf b = {0};
    size_t n = strlen(name);

    if (n && name[n - 1] == '.')
        n--;
    while (n > 0) {
        size_t start = n;
        while (start > 0 && name[start - 1] != '.')
            start--;
        for (size_t i = start; i < n; i++) {
            char c = name[i];
            if (c == '\\' && i + 3 < n && name[i + 1] >= '0' && name[i + 1] <= '3') {
                c = (char)((name[i + 1] - '0') * 64 + (name[i + 2] - '0') * 8 +
                           (name[i + 3] - '0'));
                if (c == '\0')
                    c = '\\'; /* keep the key a C string */
                else
                    i += 3;
            }
            buf_add(&b, &c, 1);
        }
        buf_add(&b, ".", 1);
        n = start ? start - 1 : 0;
    }
    return buf_detach(&b);
}

static int name_in_zone(const char *name, const struct zone *z)
{
    size_t n = strlen(name), zn = strlen(z->name);
    if (n == zn)
        return !strcmp(name, z->name);
    return n > zn && name[n - zn - 1] == '.' && !strcmp(name + n - zn, z->name);
}

/* --- record sets --------------------------------------------------------------------------- */

static void rrset_free(struct rrset *r)
{
    if (!r)
        return;
    free(r->name);
    free(r->rkey);
    free(r->set_id);
    free(r->alias_zone);
    free(r->alias_dns);
    for (size_t i = 0; i < r->nvalues; i++)
        free(r->values[i]);
    free(r->values);
    free(r);
}

static struct rrset *rrset_new(const char *name, const char *type, const char *set_id, long weight,
                               long long ttl, char *const *values, size_t nvalues)
{
    struct rrset *r = xcalloc(1, sizeof(*r));
    r->name = xstrdup(name);
    r->rkey = name_rkey(name);
    snprintf(r->type, sizeof(r->type), "%s", type);
    r->set_id = set_id ? xstrdup(set_id) : NULL;
    r->weight = weight;
    r->ttl = ttl;
    r->values = xcalloc(nvalues ? nvalues : 1, sizeof(*r->values));
    for (size_t i = 0; i < nvalues; i++)
        r->values[i] = xstrdup(values[i]);
    r->nvalues = nvalues;
    return r;
}

/* Make r an alias record set (dns canonical); it keeps no TTL and no values. */
static void rrset_set_alias(struct rrset *r, const char *zone, const char *dns, int eth)
{
    free(r->alias_zone);
    free(r->alias_dns);
    r->alias_zone = xstrdup(zone);
    r->alias_dns = xstrdup(dns);
    r->alias_eth = eth;
    r->ttl = -1;
}

static struct rrset *rrset_clone(const struct rrset *r)
{
    struct rrset *c =
        rrset_new(r->name, r->type, r->set_id, r->weight, r->ttl, r->values, r->nvalues);
    if (r->alias_zone)
        rrset_set_alias(c, r->alias_zone, r->alias_dns, r->alias_eth);
    return c;
}

static int sid_cmp(const char *a, const char *b)
{
    if (!a || !b)
        return a ? 1 : b ? -1 : 0;
    return strcmp(a, b);
}

static int key_cmp(const char *rkey_a, const char *type_a, const char *sid_a, const char *rkey_b,
                   const char *type_b, const char *sid_b)
{
    int c = strcmp(rkey_a, rkey_b);
    if (c)
        return c;
    c = strcmp(type_a, type_b);
    if (c)
        return c;
    return sid_cmp(sid_a, sid_b);
}

/* First index whose key is >= the given key. */
static size_t lower_bound(struct rrset *const *sets, size_t n, const char *rkey, const char *type,
                          const char *sid)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (key_cmp(sets[mid]->rkey, sets[mid]->type, sets[mid]->set_id, rkey, type, sid) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct rrset *zone_find(const struct zone *z, const char *rkey, const char *type,
                               const char *sid, size_t *at)
{
    size_t i = lower_bound(z->sets, z->n, rkey, type, sid);
    if (at)
        *at = i;
    if (i < z->n &&
        !key_cmp(z->sets[i]->rkey, z->sets[i]->type, z->sets[i]->set_id, rkey, type, sid))
        return z->sets[i];
    return NULL;
}

/* Insert or replace (takes ownership of r). */
static void zone_put(struct zone *z, struct rrset *r)
{
    size_t at;
    struct rrset *old = zone_find(z, r->rkey, r->type, r->set_id, &at);
    if (old) {
        rrset_free(old);
        z->sets[at] = r;
        return;
    }
    z->sets = xgrow(z->sets, &z->cap, z->n + 1, sizeof(*z->sets));
    memmove(z->sets + at + 1, z->sets + at, (z->n - at) * sizeof(*z->sets));
    z->sets[at] = r;
    z->n++;
}

static int zone_remove(struct zone *z, const char *rkey, const char *type, const char *sid)
{
    size_t at;
    struct rrset *old = zone_find(z, rkey, type, sid, &at);
    if (!old)
        return 0;
    rrset_free(old);
    memmove(z->sets + at, z->sets + at + 1, (z->n - at - 1) * sizeof(*z->sets));
    z->n--;
    return 1;
}

static struct zone *find_zone(struct emu_store *s, const char *id)
{
    for (size_t i = 0; i < s->nzones; i++) {
        if (!strcmp(s->zones[i].id, id))
            return &s->zones[i];
    }
    return NULL;
}

static void no_such_zone(struct emu_err *err, const char *id)
{
    emu_err_set(err, 404, "NoSuchHostedZone", "No hosted zone found with ID: %s", id);
}

/* --- store lifecycle ------------------------------------------------------------------------ */

struct emu_store *emu_store_create(uint64_t id_seed, size_t max_records)
{
    static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    struct emu_store *s = xcalloc(1, sizeof(*s));
    struct emu_rng rng;

    emu_rng_seed(&rng, id_seed ^ 0x5253454d55ULL);
    for (int i = 0; i < 4; i++)
        s->id_prefix[i] = digits[emu_rng_next(&rng) % 36];
    s->seed = id_seed;
    s->max_records = max_records;
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

void emu_store_destroy(struct emu_store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nzones; i++) {
        struct zone *z = &s->zones[i];
        for (size_t k = 0; k < z->n; k++)
            rrset_free(z->sets[k]);
        free(z->sets);
        rrset_free(z->anchor);
        free(z->id);
        free(z->name);
        free(z->rkey);
    }
    free(s->zones);
    for (size_t i = 0; i < s->nchanges; i++)
        free(s->changes[i].comment);
    free(s->changes);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static void ns_names(unsigned index, char ns[4][64])
{
    unsigned a = 1 + index * 4 % 511;
    snprintf(ns[0], 64, "ns-%u.awsdns-%02u.com.", a, index % 64);
    snprintf(ns[1], 64, "ns-%u.awsdns-%02u.net.", 512 + a, index % 64);
    snprintf(ns[2], 64, "ns-%u.awsdns-%02u.org.", 1024 + a, index % 64);
    snprintf(ns[3], 64, "ns-%u.awsdns-%02u.co.uk.", 1536 + a, index % 64);
}

static void zone_seed_apex(struct zone *z)
{
    char ns[4][64], soa[160];
    char *nsv[4] = {ns[0], ns[1], ns[2], ns[3]};
    char *soav[1] = {soa};

    ns_names(z->index, ns);
    snprintf(soa, sizeof(soa), "%s awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400", ns[0]);
    zone_put(z, rrset_new(z->name, "NS", NULL, -1, NS_TTL, nsv, 4));
    zone_put(z, rrset_new(z->name, "SOA", NULL, -1, SOA_TTL, soav, 1));
}

int emu_store_add_zone(struct emu_store *s, const char *id, const char *name, char *why,
                       size_t why_len)
{
    char *canon = NULL;
    size_t idlen = strlen(id);
    struct zone *z;

    if (idlen == 0 || idlen > 32 || strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != idlen) {
        snprintf(why, why_len, "zone id '%s' must be 1..32 characters A-Z0-9", id);
        return -1;
    }
    if (find_zone(s, id)) {
        snprintf(why, why_len, "zone id '%s' given twice", id);
        return -1;
    }
    if (emu_name_normalize(name, &canon, why, why_len))
        return -1;
    s->zones = xrealloc(s->zones, (s->nzones + 1) * sizeof(*s->zones));
    z = &s->zones[s->nzones];
    memset(z, 0, sizeof(*z));
    z->id = xstrdup(id);
    z->name = canon;
    z->rkey = name_rkey(canon);
    z->index = (unsigned)s->nzones;
    s->nzones++;
    zone_seed_apex(z);
    return 0;
}

int emu_store_has_zone(struct emu_store *s, const char *zone_id)
{
    return find_zone(s, zone_id) != NULL;
}

/* --- change batches ------------------------------------------------------------------------ */

/* One overlay entry per record set key the batch touches (or rewrites). Owns its key. */
struct ov {
    char *name, *rkey;
    char type[8];
    char *sid;
    struct rrset *now; /* NULL: deleted (or never existed) */
    int touched;       /* number of changes naming this key */
    size_t first;      /* index of the first change naming it */
    size_t last;       /* index of the last change naming it */
    int written;       /* the final state differs from the zone (apply it) */
    int failed;        /* a change on this key was refused: later ones are not judged */
};

struct batch_ctx {
    struct emu_store *s;
    struct zone *z;
    struct ov *ov; /* sorted by key */
    size_t nov, cap;
    char **canon;       /* canonical name per change */
    char **alias_canon; /* canonical AliasTarget DNSName per change (NULL: not an alias) */
};

static struct ov *ov_find(struct batch_ctx *c, const char *rkey, const char *type, const char *sid,
                          size_t *at)
{
    size_t lo = 0, hi = c->nov;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (key_cmp(c->ov[mid].rkey, c->ov[mid].type, c->ov[mid].sid, rkey, type, sid) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (at)
        *at = lo;
    if (lo < c->nov && !key_cmp(c->ov[lo].rkey, c->ov[lo].type, c->ov[lo].sid, rkey, type, sid))
        return &c->ov[lo];
    return NULL;
}

/* The entry for a key, created from the zone's current record set when new. The returned
 * pointer is valid until the next ov_get (the array may move). */
static struct ov *ov_get(struct batch_ctx *c, const char *name, const char *type, const char *sid)
{
    char *rkey = name_rkey(name);
    size_t at;
    struct ov *o = ov_find(c, rkey, type, sid, &at);
    struct rrset *cur;

    if (o) {
        free(rkey);
        return o;
    }
    c->ov = xgrow(c->ov, &c->cap, c->nov + 1, sizeof(*c->ov));
    memmove(c->ov + at + 1, c->ov + at, (c->nov - at) * sizeof(*c->ov));
    o = &c->ov[at];
    memset(o, 0, sizeof(*o));
    c->nov++;
    cur = zone_find(c->z, rkey, type, sid, NULL);
    o->now = cur ? rrset_clone(cur) : NULL;
    o->name = xstrdup(name);
    o->rkey = rkey;
    snprintf(o->type, sizeof(o->type), "%s", type);
    o->sid = sid ? xstrdup(sid) : NULL;
    return o;
}

static void batch_ctx_release(struct batch_ctx *c, size_t nchanges)
{
    for (size_t i = 0; i < c->nov; i++) {
        rrset_free(c->ov[i].now);
        free(c->ov[i].name);
        free(c->ov[i].rkey);
        free(c->ov[i].sid);
    }
    free(c->ov);
    if (c->canon) {
        for (size_t i = 0; i < nchanges; i++)
            free(c->canon[i]);
        free(c->canon);
    }
    if (c->alias_canon) {
        for (size_t i = 0; i < nchanges; i++)
            free(c->alias_canon[i]);
        free(c->alias_canon);
    }
}

static const char *action_name(enum emu_action a)
{
    return a == EMU_CREATE ? "CREATE" : a == EMU_DELETE ? "DELETE" : "UPSERT";
}

static void change_desc(struct buf *b, const struct emu_change *ch, const char *name)
{
    buf_addf(b, "[Action=%s, Name=%s, Type=%s, SetIdentifier=%s]", action_name(ch->action), name,
             ch->type, ch->set_id ? ch->set_id : "null");
}

static void rr_desc(struct buf *b, const char *name, const char *type, const char *sid)
{
    if (sid)
        buf_addf(b, "[name='%s', type='%s', set-identifier='%s']", name, type, sid);
    else
        buf_addf(b, "[name='%s', type='%s']", name, type);
}

static int value_ok(const char *type, const char *v, struct emu_err *err)
{
    unsigned char buf[16];

    if (!strcmp(type, "A")) {
        if (strchr(v, ' ')) {
            emu_err_icb(err,
                        "Invalid Resource Record: 'FATAL problem: ARRDATANotSingleField (Value "
                        "contains spaces) encountered with '%s''",
                        v);
            return 0;
        }
        if (inet_pton(AF_INET, v, buf) != 1) {
            emu_err_icb(err,
                        "Invalid Resource Record: 'FATAL problem: ARRDATAIllegalIPv4Address "
                        "(Value is not a valid IPv4 address) encountered with '%s''",
                        v);
            return 0;
        }
    } else if (!strcmp(type, "AAAA")) {
        if (inet_pton(AF_INET6, v, buf) != 1) {
            emu_err_icb(err,
                        "Invalid Resource Record: 'FATAL problem: AAAARRDATAIllegalIPv6Address "
                        "(Value is not a valid IPv6 address) encountered with '%s''",
                        v);
            return 0;
        }
    } else if (!*v) {
        emu_err_icb(err,
                    "Invalid Resource Record: 'FATAL problem: RRDATAEmpty (Value is empty) "
                    "encountered with '%s''",
                    v);
        return 0;
    }
    return 1;
}

/* Whether an alias target given as HostedZoneId (bare or with the /hostedzone/ prefix) and a
 * canonical DNSName lies in zone z: the id names z and the name is inside it. *within says
 * whether the name lies inside the zone the id names (0 for an id the store does not know). */
static int alias_target_in_zone(struct emu_store *s, const struct zone *z, const char *zone_id,
                                const char *dns, int *within)
{
    const struct zone *named;

    if (!strncmp(zone_id, "/hostedzone/", 12))
        zone_id += 12;
    named = find_zone(s, zone_id);
    *within = named && name_in_zone(dns, named);
    return named == z && *within;
}

/* Checks that need no zone state beyond its name. InvalidInput stops at the first problem
 * (Route 53 reports one request error); InvalidChangeBatch messages accumulate. */
static int check_static(struct batch_ctx *c, const struct emu_batch *b, struct emu_err *err)
{
    struct buf d = {0};
    char why[512];

    if (b->record_units > MAX_RECORD_UNITS) {
        emu_err_icb(err, "Number of records limit of %d exceeded.", MAX_RECORD_UNITS);
        return -1;
    }
    if (b->char_units > MAX_CHAR_UNITS) {
        emu_err_icb(err, "RDATA character limit of %d exceeded.", MAX_CHAR_UNITS);
        return -1;
    }
    c->canon = xcalloc(b->n, sizeof(*c->canon));
    c->alias_canon = xcalloc(b->n, sizeof(*c->alias_canon));
    for (size_t i = 0; i < b->n; i++) {
        const struct emu_change *ch = &b->changes[i];
        const char *shown;
        if (emu_name_normalize(ch->name, &c->canon[i], why, sizeof(why)))
            c->canon[i] = NULL;
        shown = c->canon[i] ? c->canon[i] : ch->name;
        d.len = 0;
        change_desc(&d, ch, shown);
        if (ch->unsupported) {
            emu_err_set(err, 400, "InvalidInput",
                        "r53emu does not emulate %s (only simple and weighted record sets with "
                        "values or an alias target) in Change with %s",
                        ch->unsupported, d.p);
            goto fail;
        }
        if (ch->has_alias && (ch->has_records || ch->ttl >= 0)) {
            emu_err_set(err, 400, "InvalidInput",
                        "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and "
                        "ResourceRecords], or TrafficPolicyInstanceId], but found more than one "
                        "in Change with %s",
                        d.p);
            goto fail;
        }
        if (!ch->has_alias && (!ch->has_records || ch->ttl < 0)) {
            emu_err_set(err, 400, "InvalidInput",
                        "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and "
                        "ResourceRecords], or TrafficPolicyInstanceId], but found none in Change "
                        "with %s",
                        d.p);
            goto fail;
        }
        if (ch->set_id && ch->weight < 0) {
            emu_err_set(err, 400, "InvalidInput",
                        "Invalid request: Expected exactly one of [Weight, Region, Failover, "
                        "GeoLocation, MultiValueAnswer, GeoProximityLocation, or "
                        "CidrRoutingConfig], but found none in Change with %s",
                        d.p);
            goto fail;
        }
        if (!ch->set_id && ch->weight >= 0) {
            emu_err_set(err, 400, "InvalidInput",
                        "Invalid request: Missing field 'SetIdentifier' in Change with %s", d.p);
            goto fail;
        }
        if (ch->health_check_id) {
            emu_err_set(err, 404, "NoSuchHealthCheck", "A health check with id %s does not exist.",
                        ch->health_check_id);
            goto fail;
        }
    }
    for (size_t i = 0; i < b->n; i++) {
        const struct emu_change *ch = &b->changes[i];
        const char *name = c->canon[i];
        if (!name) {
            emu_name_normalize(ch->name, &c->canon[i], why, sizeof(why));
            emu_err_icb(err, "%s", why);
            continue;
        }
        if (!name_in_zone(name, c->z)) {
            emu_err_icb(err, "RRSet with DNS name %s is not permitted in zone %s", name,
                        c->z->name);
            continue;
        }
        if (ch->has_alias) {
            int within;
            if (emu_name_normalize(ch->alias_dns, &c->alias_canon[i], why, sizeof(why))) {
                emu_err_icb(err, "%s", why);
                continue;
            }
            /* Route 53 names both problems of a target outside the zone in one list; a DELETE
             * only has to match the stored alias. */
            if (ch->action != EMU_DELETE &&
                !alias_target_in_zone(c->s, c->z, ch->alias_zone, c->alias_canon[i], &within)) {
                if (!within)
                    emu_err_icb(err,
                                "Tried to create an alias that targets %s, type %s in zone %s, "
                                "but the alias target name does not lie within the target zone",
                                c->alias_canon[i], ch->type, ch->alias_zone);
                emu_err_icb(err,
                            "Tried to create an alias that targets %s, type %s in zone %s, but "
                            "that target was not found",
                            c->alias_canon[i], ch->type, ch->alias_zone);
            }
        }
        if (!strcmp(ch->type, "CNAME") && !strcmp(name, c->z->name))
            emu_err_icb(err,
                        "RRSet of type CNAME with DNS name %s is not permitted at apex in "
                        "zone %s",
                        name, c->z->name);
        if (ch->nvalues > MAX_VALUES)
            emu_err_icb(err, "Cannot have more than %d records in a RRSet.", MAX_VALUES);
        if (!strcmp(ch->type, "CNAME") && ch->nvalues > 1)
            emu_err_icb(err, "RRSet of type CNAME with DNS name %s has more than one value", name);
        for (size_t k = 0; k < ch->nvalues; k++) {
            if (!value_ok(ch->type, ch->values[k], err))
                continue;
            for (size_t j = 0; j < k; j++) {
                if (!strcmp(ch->values[j], ch->values[k])) {
                    emu_err_icb(err, "Duplicate Resource Record: '%s'", ch->values[k]);
                    break;
                }
            }
        }
    }
    buf_release(&d);
    return err->status ? -1 : 0;
fail:
    buf_release(&d);
    return -1;
}

/* A DELETE matches only the exact current record set: weight, TTL and the same values in any
 * order, or for an alias the same AliasTarget: HostedZoneId as stored, DNSName (dns, canonical:
 * case and the trailing dot do not matter) and EvaluateTargetHealth. (Name, type and
 * SetIdentifier are the key.) */
static int delete_matches(const struct rrset *cur, const struct emu_change *ch, const char *dns)
{
    char *used;
    int ok = 1;

    if (cur->weight != ch->weight || cur->ttl != ch->ttl || cur->nvalues != ch->nvalues)
        return 0;
    if ((cur->alias_zone != NULL) != (ch->has_alias != 0))
        return 0;
    if (cur->alias_zone && (strcmp(cur->alias_zone, ch->alias_zone) != 0 ||
                            strcmp(cur->alias_dns, dns) != 0 || cur->alias_eth != ch->alias_eth))
        return 0;
    used = xcalloc(cur->nvalues ? cur->nvalues : 1, 1);
    for (size_t i = 0; i < ch->nvalues && ok; i++) {
        ok = 0;
        for (size_t k = 0; k < cur->nvalues; k++) {
            if (!used[k] && !strcmp(cur->values[k], ch->values[i])) {
                used[k] = 1;
                ok = 1;
                break;
            }
        }
    }
    free(used);
    return ok;
}

/* Touching a record set twice is allowed only as DELETE then CREATE (compare-and-swap). */
static void check_touches(struct batch_ctx *c, const struct emu_batch *b, struct emu_err *err)
{
    for (size_t i = 0; i < b->n; i++) {
        struct ov *o = ov_get(c, c->canon[i], b->changes[i].type, b->changes[i].set_id);
        if (o->touched == 0)
            o->first = i;
        o->touched++;
        o->last = i;
    }
    for (size_t i = 0; i < c->nov; i++) {
        struct ov *o = &c->ov[i];
        int ok = o->touched == 1 || (o->touched == 2 && b->changes[o->first].action == EMU_DELETE &&
                                     b->changes[o->last].action == EMU_CREATE);
        if (!ok)
            emu_err_icb(err,
                        "The request contains an invalid set of changes for a resource record "
                        "set '%s %s'",
                        o->type, o->name);
    }
}

static size_t final_at_name(struct batch_ctx *c, const char *rkey, struct rrset ***out);

/*
 * The weighted-TTL rule, judged per change as Route 53 applies the batch: a CREATE or UPSERT
 * of a weighted set must carry the TTL of every other weighted set of its group (same name
 * and type, other SetIdentifier) as the zone stands after the batch's earlier changes. So a
 * batch that DELETEs every set of a group and then CREATEs them with a new TTL is valid, and
 * one that replaces them pair by pair (DELETE a, CREATE a, DELETE b, ...) is not: the first
 * CREATE still meets b with the old TTL. Alias record sets have no TTL of their own: the rule
 * compares the non-alias members of a group only (a group may mix both).
 */
static int ttl_fits_group(struct batch_ctx *c, const char *name, const struct emu_change *ch)
{
    char *rkey;
    struct rrset **now = NULL;
    size_t n;
    int ok = 1;

    if (ch->has_alias)
        return 1;
    rkey = name_rkey(name);
    n = final_at_name(c, rkey, &now);
    for (size_t i = 0; i < n && ok; i++)
        if (!strcmp(now[i]->type, ch->type) && now[i]->set_id && !now[i]->alias_zone &&
            strcmp(now[i]->set_id, ch->set_id) != 0 && now[i]->ttl != ch->ttl)
            ok = 0;
    free(now);
    free(rkey);
    return ok;
}

/*
 * Whether the target of the alias in change i (a record set of its name and type) exists at
 * that point of the batch: in the zone as the earlier changes left it, so a target created
 * later in the batch does not count. A target set UPSERTed later in the batch does not count
 * either, even when it exists already: Route 53 was seen refusing "CREATE alias, UPSERT its
 * target" with "target was not found" (an UPSERT behaves as a DELETE and a CREATE).
 */
static int alias_target_exists(struct batch_ctx *c, const struct emu_batch *b, size_t i)
{
    const char *type = b->changes[i].type;
    char *rkey = name_rkey(c->alias_canon[i]);
    struct rrset **now = NULL;
    size_t n = final_at_name(c, rkey, &now);
    int found = 0;

    for (size_t k = 0; k < n && !found; k++) {
        if (strcmp(now[k]->type, type) != 0)
            continue;
        found = 1;
        for (size_t j = i + 1; j < b->n && found; j++) {
            const struct emu_change *later = &b->changes[j];
            if (later->action == EMU_UPSERT && !strcmp(later->type, type) &&
                !strcmp(c->canon[j], now[k]->name) && !sid_cmp(later->set_id, now[k]->set_id))
                found = 0;
        }
    }
    free(now);
    free(rkey);
    return found;
}

static void simulate(struct batch_ctx *c, const struct emu_batch *b, struct emu_err *err)
{
    struct buf d = {0};

    for (size_t i = 0; i < b->n; i++) {
        const struct emu_change *ch = &b->changes[i];
        struct ov *o = ov_get(c, c->canon[i], ch->type, ch->set_id);
        if (o->failed)
            continue; /* one message per record set: a stale CAS reports its DELETE only */
        d.len = 0;
        rr_desc(&d, c->canon[i], ch->type, ch->set_id);
        switch (ch->action) {
        case EMU_CREATE:
            if (o->now) {
                emu_err_icb(err, "Tried to create resource record set %s but it already exists",
                            d.p);
                o->failed = 1;
                continue;
            }
            break;
        case EMU_DELETE:
            if (!o->now) {
                emu_err_icb(err, "Tried to delete resource record set %s but it was not found",
                            d.p);
                o->failed = 1;
            } else if (!delete_matches(o->now, ch, c->alias_canon[i])) {
                emu_err_icb(err,
                            "Tried to delete resource record set %s but the values provided do "
                            "not match the current values",
                            d.p);
                o->failed = 1;
            } else {
                rrset_free(o->now);
                o->now = NULL;
                o->written = 1;
            }
            continue;
        case EMU_UPSERT: break;
        }
        if (ch->has_alias && !alias_target_exists(c, b, i)) {
            emu_err_icb(err,
                        "Tried to create an alias that targets %s, type %s in zone %s, but that "
                        "target was not found",
                        c->alias_canon[i], ch->type, ch->alias_zone);
            o->failed = 1;
            continue;
        }
        if (ch->set_id && !ttl_fits_group(c, c->canon[i], ch)) {
            emu_err_icb(err,
                        "RRSet with DNS name %s and type %s, SetIdentifier %s cannot be created "
                        "as weighted sets must contain the same TTL.",
                        c->canon[i], ch->type, ch->set_id);
            o->failed = 1;
            continue;
        }
        rrset_free(o->now);
        o->now = rrset_new(c->canon[i], ch->type, ch->set_id, ch->weight, ch->ttl, ch->values,
                           ch->nvalues);
        if (ch->has_alias)
            rrset_set_alias(o->now, ch->alias_zone, c->alias_canon[i], ch->alias_eth);
        o->written = 1;
    }
    buf_release(&d);
}

/* The final record sets at one name (all types), in list order: the zone's, with the overlay
 * applied. The pointers borrow from the zone and the overlay. */
static size_t final_at_name(struct batch_ctx *c, const char *rkey, struct rrset ***out)
{
    size_t n = 0, cap = 0;
    size_t i = lower_bound(c->z->sets, c->z->n, rkey, "", NULL);

    *out = NULL;
    for (; i < c->z->n && !strcmp(c->z->sets[i]->rkey, rkey); i++) {
        struct rrset *r = c->z->sets[i];
        if (ov_find(c, r->rkey, r->type, r->set_id, NULL))
            continue;
        *out = xgrow(*out, &cap, n + 1, sizeof(**out));
        (*out)[n++] = r;
    }
    for (size_t k = 0; k < c->nov; k++) {
        if (!c->ov[k].now || strcmp(c->ov[k].rkey, rkey) != 0)
            continue;
        *out = xgrow(*out, &cap, n + 1, sizeof(**out));
        (*out)[n++] = c->ov[k].now;
    }
    return n;
}

/* Rules over whole record-set groups (same name and type) and names, on the final state. */
static void check_groups(struct batch_ctx *c, struct emu_err *err)
{
    char **done = NULL; /* rkey, type pairs already checked (copies) */
    size_t ndone = 0, donecap = 0;

    for (size_t k = 0; k < c->nov; k++) {
        const struct ov *o = &c->ov[k];
        struct rrset **fin = NULL;
        size_t nfin, nweighted = 0, nsimple = 0, ncname = 0, nother = 0, ntype = 0;
        const struct rrset *changed = NULL; /* a set of this group the batch wrote */
        int seen = 0;

        if (!o->touched)
            continue;
        for (size_t d = 0; d < ndone && !seen; d += 2)
            seen = !strcmp(done[d], o->rkey) && !strcmp(done[d + 1], o->type);
        if (seen)
            continue;
        done = xgrow(done, &donecap, ndone + 2, sizeof(*done));
        done[ndone++] = xstrdup(o->rkey);
        done[ndone++] = xstrdup(o->type);

        nfin = final_at_name(c, o->rkey, &fin);
        for (size_t i = 0; i < nfin; i++) {
            const struct rrset *r = fin[i];
            if (!strcmp(r->type, "CNAME"))
                ncname++;
            else
                nother++;
            if (strcmp(r->type, o->type) != 0)
                continue;
            ntype++;
            if (r->set_id)
                nweighted++;
            else
                nsimple++;
        }
        for (size_t j = 0; j < c->nov && !changed; j++) {
            const struct ov *p = &c->ov[j];
            if (p->touched && p->written && p->now && !strcmp(p->rkey, o->rkey) &&
                !strcmp(p->type, o->type))
                changed = p->now;
        }

        if (nweighted > MAX_WEIGHTED)
            emu_err_icb(err,
                        "Exceeded limit on number of weighted RRSets for %s, type %s in this "
                        "zone.",
                        o->name, o->type);
        if (nweighted && nsimple && changed) {
            if (changed->set_id)
                emu_err_icb(err,
                            "RRSet with DNS name %s, type %s, SetIdentifier %s cannot be created "
                            "as a non-weighted set exists with the same name and type.",
                            changed->name, changed->type, changed->set_id);
            else
                emu_err_icb(err,
                            "RRSet with DNS name %s, type %s cannot be created as other RRSets "
                            "exist with the same name and type.",
                            changed->name, changed->type);
        }
        if (!strcmp(o->rkey, c->z->rkey) && !strcmp(o->type, "SOA") && ntype != 1)
            emu_err_icb(err, "A HostedZone must contain exactly one SOA record.");
        if (!strcmp(o->rkey, c->z->rkey) && !strcmp(o->type, "NS") && ntype < 1)
            emu_err_icb(err, "A HostedZone must contain at least one NS record for the zone "
                             "itself.");
        if (ncname && nother && changed) {
            if (!strcmp(o->type, "CNAME"))
                emu_err_icb(err,
                            "RRSet of type CNAME with DNS name %s is not permitted as it conflicts "
                            "with other records with the same DNS name in zone %s.",
                            o->name, c->z->name);
            else
                emu_err_icb(err,
                            "RRSet of type %s with DNS name %s is not permitted because a "
                            "conflicting RRSet of type  CNAME with the same DNS name already "
                            "exists in zone %s.",
                            o->type, o->name, c->z->name);
        }
        free(fin);
    }
    for (size_t d = 0; d < ndone; d++)
        free(done[d]);
    free(done);
}

/* The zone's record-set quota, on the final state: a batch may not grow a zone past
 * max_records record sets (every record set counts, SOA, NS and aliases included). A zone
 * already over it (direct writes) may still shrink. */
static void check_quota(struct batch_ctx *c, struct emu_err *err)
{
    size_t n = c->z->n;

    for (size_t k = 0; k < c->nov; k++) {
        const struct ov *o = &c->ov[k];
        int in_zone = zone_find(c->z, o->rkey, o->type, o->sid, NULL) != NULL;
        if (o->now && !in_zone)
            n++;
        else if (!o->now && in_zone)
            n--;
    }
    if (n > c->s->max_records && n > c->z->n)
        emu_err_icb(err, "Exceeded limit on number of RRSets in hosted zone %s (limit %zu).",
                    c->z->id, c->s->max_records);
}

/* Only with refuse_dangling: every record set the batch deletes that empties its group (name
 * and type) must not be the target of an alias record set left in the zone. */
static void check_dangling(struct batch_ctx *c, struct emu_err *err)
{
    struct buf d = {0}, a = {0};

    for (size_t k = 0; k < c->nov; k++) {
        const struct ov *o = &c->ov[k];
        struct rrset **at = NULL;
        size_t nat, left = 0;

        if (o->now || !o->written)
            continue;
        nat = final_at_name(c, o->rkey, &at);
        for (size_t i = 0; i < nat; i++)
            left += !strcmp(at[i]->type, o->type);
        free(at);
        if (left)
            continue;
        /* every final record set: the zone's outside the overlay, then the overlay's */
        for (size_t i = 0; i < c->z->n + c->nov; i++) {
            const struct rrset *r;
            if (i < c->z->n) {
                r = c->z->sets[i];
                if (ov_find(c, r->rkey, r->type, r->set_id, NULL))
                    continue;
            } else {
                r = c->ov[i - c->z->n].now;
                if (!r)
                    continue;
            }
            if (!r->alias_zone || strcmp(r->alias_dns, o->name) != 0 ||
                strcmp(r->type, o->type) != 0)
                continue;
            d.len = a.len = 0;
            rr_desc(&d, o->name, o->type, o->sid);
            rr_desc(&a, r->name, r->type, r->set_id);
            emu_err_icb(err,
                        "Tried to delete resource record set %s but it is the target of the "
                        "alias resource record set %s",
                        d.p, a.p);
            break;
        }
    }
    buf_release(&d);
    buf_release(&a);
}

void emu_store_set_refuse_dangling(struct emu_store *s, int on)
{
    pthread_mutex_lock(&s->lock);
    s->refuse_dangling = on;
    pthread_mutex_unlock(&s->lock);
}

static void change_id(const struct emu_store *s, size_t index, char out[32])
{
    static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    char num[10];
    size_t v = index;
    for (int i = 8; i >= 0; i--) {
        num[i] = digits[v % 36];
        v /= 36;
    }
    num[9] = '\0';
    snprintf(out, 32, "C%s%s", s->id_prefix, num);
}

static long change_index(const struct emu_store *s, const char *id)
{
    long v = 0;
    if (strlen(id) != 14 || id[0] != 'C' || strncmp(id + 1, s->id_prefix, 4) != 0)
        return -1;
    for (const char *p = id + 5; *p; p++) {
        int d;
        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if (*p >= 'A' && *p <= 'Z')
            d = *p - 'A' + 10;
        else
            return -1;
        v = v * 36 + d;
    }
    return v;
}

static void change_info_xml(struct buf *xml, const char *id, const char *status,
                            const struct change_rec *rec)
{
    char when[32];
    emu_iso8601(rec->real_ms, when);
    buf_addf(xml, "<ChangeInfo><Id>/change/%s</Id><Status>%s</Status><SubmittedAt>%s</SubmittedAt>",
             id, status, when);
    if (rec->comment) {
        buf_adds(xml, "<Comment>");
        emu_buf_add_xml(xml, rec->comment);
        buf_adds(xml, "</Comment>");
    }
    buf_adds(xml, "</ChangeInfo>");
}

int emu_store_change(struct emu_store *s, const char *zone_id, const struct emu_batch *batch,
                     struct buf *xml, struct emu_err *err)
{
    struct batch_ctx c = {0};
    struct zone *z;
    struct change_rec *rec;
    char id[32];
    int rc = -1;

    pthread_mutex_lock(&s->lock);
    z = find_zone(s, zone_id);
    if (!z) {
        no_such_zone(err, zone_id);
        goto out;
    }
    c.s = s;
    c.z = z;
    if (check_static(&c, batch, err))
        goto out;
    check_touches(&c, batch, err);
    if (err->status)
        goto out;
    simulate(&c, batch, err);
    if (err->status)
        goto out;
    check_groups(&c, err);
    check_quota(&c, err);
    if (s->refuse_dangling)
        check_dangling(&c, err);
    if (err->status)
        goto out;

    /* apply: all checks passed */
    for (size_t i = 0; i < c.nov; i++) {
        struct ov *o = &c.ov[i];
        if (!o->written)
            continue;
        if (o->now) {
            zone_put(z, o->now);
            o->now = NULL;
        } else {
            zone_remove(z, o->rkey, o->type, o->sid);
        }
    }
    s->changes = xgrow(s->changes, &s->ccap, s->nchanges + 1, sizeof(*s->changes));
    rec = &s->changes[s->nchanges];
    rec->mono_ms = emu_mono_ms();
    rec->real_ms = emu_real_ms();
    rec->comment = batch->comment ? xstrdup(batch->comment) : NULL;
    change_id(s, s->nchanges, id);
    s->nchanges++;
    buf_adds(xml, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<ChangeResourceRecordSetsResponse xmlns=\"" EMU_NS "\">");
    change_info_xml(xml, id, "PENDING", rec);
    buf_adds(xml, "</ChangeResourceRecordSetsResponse>");
    rc = 0;
out:
    pthread_mutex_unlock(&s->lock);
    batch_ctx_release(&c, batch->n);
    return rc;
}

int emu_store_get_change(struct emu_store *s, const char *change_id_s, long long insync_after_ms,
                         struct buf *xml, struct emu_err *err)
{
    long idx;
    int rc = -1;

    pthread_mutex_lock(&s->lock);
    idx = change_index(s, change_id_s);
    if (idx < 0 || (size_t)idx >= s->nchanges) {
        emu_err_set(err, 404, "NoSuchChange",
                    "A change with the specified change ID does not "
                    "exist.");
        goto out;
    }
    const struct change_rec *rec = &s->changes[idx];
    int insync = emu_mono_ms() - rec->mono_ms >= insync_after_ms;
    buf_adds(xml, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<GetChangeResponse xmlns=\"" EMU_NS "\">");
    change_info_xml(xml, change_id_s, insync ? "INSYNC" : "PENDING", rec);
    buf_adds(xml, "</GetChangeResponse>");
    rc = 0;
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* --- listing ------------------------------------------------------------------------------- */

static void rrset_xml(struct buf *xml, const struct rrset *r)
{
    buf_adds(xml, "<ResourceRecordSet><Name>");
    emu_buf_add_xml(xml, r->name);
    buf_addf(xml, "</Name><Type>%s</Type>", r->type);
    if (r->set_id) {
        buf_adds(xml, "<SetIdentifier>");
        emu_buf_add_xml(xml, r->set_id);
        buf_addf(xml, "</SetIdentifier><Weight>%ld</Weight>", r->weight);
    }
    if (r->alias_zone) {
        /* an alias has neither TTL nor ResourceRecords */
        buf_adds(xml, "<AliasTarget><HostedZoneId>");
        emu_buf_add_xml(xml, r->alias_zone);
        buf_adds(xml, "</HostedZoneId><DNSName>");
        emu_buf_add_xml(xml, r->alias_dns);
        buf_addf(xml,
                 "</DNSName><EvaluateTargetHealth>%s</EvaluateTargetHealth></AliasTarget>"
                 "</ResourceRecordSet>",
                 r->alias_eth ? "true" : "false");
        return;
    }
    buf_addf(xml, "<TTL>%lld</TTL><ResourceRecords>", r->ttl);
    for (size_t i = 0; i < r->nvalues; i++) {
        buf_adds(xml, "<ResourceRecord><Value>");
        emu_buf_add_xml(xml, r->values[i]);
        buf_adds(xml, "</Value></ResourceRecord>");
    }
    buf_adds(xml, "</ResourceRecords></ResourceRecordSet>");
}

static int parse_maxitems(const char *s, long *out)
{
    long v = 0;
    if (!s)
        return 0;
    if (!*s || strlen(s) > 9 || strspn(s, "0123456789") != strlen(s))
        return -1;
    v = strtol(s, NULL, 10);
    if (v < 1)
        return -1;
    *out = v > MAX_LIST_ITEMS ? MAX_LIST_ITEMS : v;
    return 0;
}

/* The record whose key a truncated page names as next, under the list_paging fault (the
 * page shows sets[first..end)); NULL: the real one, sets[end]. Lock held. */
static const struct rrset *faulty_next(struct zone *z, const struct emu_list_opts *o, size_t first,
                                       size_t end)
{
    if (end == first || o->paging == EMU_LIST_NORMAL)
        return NULL;
    if (o->paging == EMU_LIST_STUCK)
        return z->sets[first];
    if (!z->anchor || z->anchor_epoch != o->paging_epoch) {
        rrset_free(z->anchor);
        z->anchor = rrset_clone(z->sets[first]);
        z->anchor_epoch = o->paging_epoch;
        return NULL;
    }
    if (key_cmp(z->sets[first]->rkey, z->sets[first]->type, z->sets[first]->set_id, z->anchor->rkey,
                z->anchor->type, z->anchor->set_id) > 0)
        return z->anchor; /* back to the first page: A -> B -> A */
    return NULL;
}

int emu_store_list(struct emu_store *s, const char *zone_id, const char *name, const char *type,
                   const char *identifier, const char *maxitems, const struct emu_list_opts *opts,
                   struct buf *xml, struct emu_err *err)
{
    struct zone *z;
    const struct rrset *next;
    size_t first;
    long max = MAX_LIST_ITEMS;
    char *canon = NULL, *rkey = NULL;
    char why[512];
    size_t i = 0, shown = 0;
    int rc = -1;

    pthread_mutex_lock(&s->lock);
    z = find_zone(s, zone_id);
    if (!z) {
        no_such_zone(err, zone_id);
        goto out;
    }
    if (type && !name) {
        emu_err_set(err, 400, "InvalidInput",
                    "Invalid request: a record type (type) requires a record name (name)");
        goto out;
    }
    if (identifier && !type) {
        emu_err_set(err, 400, "InvalidInput",
                    "Invalid request: a set identifier (identifier) requires a record name (name) "
                    "and type (type)");
        goto out;
    }
    if (type && !emu_type_known(type)) {
        emu_err_set(err, 400, "InvalidInput",
                    "1 validation error detected: Value '%s' at 'type' failed to satisfy "
                    "constraint: Member must satisfy enum value set: [SOA, A, TXT, NS, CNAME, MX, "
                    "NAPTR, PTR, SRV, SPF, AAAA, CAA, DS, TLSA, SSHFP, SVCB, HTTPS]",
                    type);
        goto out;
    }
    if (identifier &&
        (strlen(identifier) < 1 || emu_utf8_len(identifier, strlen(identifier)) > 128)) {
        emu_err_set(err, 400, "InvalidInput",
                    "1 validation error detected: Value '%s' at 'identifier' failed to satisfy "
                    "constraint: Member must have length between 1 and 128",
                    identifier);
        goto out;
    }
    if (parse_maxitems(maxitems, &max)) {
        emu_err_set(err, 400, "InvalidInput",
                    "Invalid request: maxitems must be a positive integer, got '%s'", maxitems);
        goto out;
    }
    if (name) {
        if (emu_name_normalize(name, &canon, why, sizeof(why))) {
            emu_err_set(err, 400, "InvalidInput", "%s", why);
            goto out;
        }
        rkey = name_rkey(canon);
        i = lower_bound(z->sets, z->n, rkey, type ? type : "", identifier);
        if (identifier && opts->strict_identifier && !zone_find(z, rkey, type, identifier, NULL)) {
            emu_err_set(err, 400, "InvalidInput",
                        "Invalid request: no resource record set with name %s, type %s and set "
                        "identifier %s exists",
                        canon, type, identifier);
            goto out;
        }
    }
    if (opts->max_items > 0 && max > opts->max_items)
        max = opts->max_items;
    buf_adds(xml, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<ListResourceRecordSetsResponse xmlns=\"" EMU_NS "\"><ResourceRecordSets>");
    for (first = i; i < z->n && shown < (size_t)max; i++, shown++)
        rrset_xml(xml, z->sets[i]);
    buf_adds(xml, "</ResourceRecordSets>");
    if (i < z->n) {
        next = faulty_next(z, opts, first, i);
        if (!next)
            next = z->sets[i];
        buf_adds(xml, "<IsTruncated>true</IsTruncated><NextRecordName>");
        emu_buf_add_xml(xml, next->name);
        buf_addf(xml, "</NextRecordName><NextRecordType>%s</NextRecordType>", next->type);
        if (next->set_id) {
            buf_adds(xml, "<NextRecordIdentifier>");
            emu_buf_add_xml(xml, next->set_id);
            buf_adds(xml, "</NextRecordIdentifier>");
        }
    } else {
        buf_adds(xml, "<IsTruncated>false</IsTruncated>");
    }
    buf_addf(xml, "<MaxItems>%ld</MaxItems></ListResourceRecordSetsResponse>", max);
    rc = 0;
out:
    pthread_mutex_unlock(&s->lock);
    free(canon);
    free(rkey);
    return rc;
}

int emu_store_get_zone(struct emu_store *s, const char *zone_id, struct buf *xml,
                       struct emu_err *err)
{
    struct zone *z;
    char ns[4][64];
    int rc = -1;

    pthread_mutex_lock(&s->lock);
    z = find_zone(s, zone_id);
    if (!z) {
        no_such_zone(err, zone_id);
        goto out;
    }
    ns_names(z->index, ns);
    buf_adds(xml, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<GetHostedZoneResponse xmlns=\"" EMU_NS "\"><HostedZone>");
    buf_addf(xml, "<Id>/hostedzone/%s</Id><Name>", z->id);
    emu_buf_add_xml(xml, z->name);
    buf_addf(xml,
             "</Name><CallerReference>r53emu-%s</CallerReference><Config><PrivateZone>false"
             "</PrivateZone></Config><ResourceRecordSetCount>%zu</ResourceRecordSetCount>"
             "</HostedZone><DelegationSet><NameServers>",
             z->id, z->n);
    for (int i = 0; i < 4; i++)
        buf_addf(xml, "<NameServer>%s</NameServer>", ns[i]);
    buf_adds(xml, "</NameServers></DelegationSet></GetHostedZoneResponse>");
    rc = 0;
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* --- JSON views ---------------------------------------------------------------------------- */

static json_t *rrset_json(const struct rrset *r)
{
    json_t *o = json_object(), *vals = json_array();
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "type", json_string(r->type));
    if (r->set_id) {
        json_object_set_new(o, "set_identifier", json_string(r->set_id));
        json_object_set_new(o, "weight", json_integer(r->weight));
    }
    if (r->alias_zone) {
        json_t *t = json_object();
        json_object_set_new(t, "hosted_zone_id", json_string(r->alias_zone));
        json_object_set_new(t, "dns_name", json_string(r->alias_dns));
        json_object_set_new(t, "evaluate_target_health", json_boolean(r->alias_eth));
        json_object_set_new(o, "alias_target", t);
        json_decref(vals);
        return o;
    }
    json_object_set_new(o, "ttl", json_integer(r->ttl));
    for (size_t i = 0; i < r->nvalues; i++)
        json_array_append_new(vals, json_string(r->values[i]));
    json_object_set_new(o, "values", vals);
    return o;
}

static json_t *zone_json(const struct zone *z)
{
    json_t *o = json_object(), *sets = json_array();
    json_object_set_new(o, "id", json_string(z->id));
    json_object_set_new(o, "name", json_string(z->name));
    for (size_t i = 0; i < z->n; i++)
        json_array_append_new(sets, rrset_json(z->sets[i]));
    json_object_set_new(o, "rrsets", sets);
    return o;
}

json_t *emu_store_dump(struct emu_store *s, const char *zone_id)
{
    json_t *out = NULL;

    pthread_mutex_lock(&s->lock);
    if (zone_id) {
        struct zone *z = find_zone(s, zone_id);
        if (z)
            out = zone_json(z);
    } else {
        json_t *arr = json_array();
        for (size_t i = 0; i < s->nzones; i++)
            json_array_append_new(arr, zone_json(&s->zones[i]));
        out = json_object();
        json_object_set_new(out, "zones", arr);
        json_object_set_new(out, "changes", json_integer((json_int_t)s->nchanges));
    }
    pthread_mutex_unlock(&s->lock);
    return out;
}

static json_t *json_err(const char *msg)
{
    json_t *o = json_object();
    json_object_set_new(o, "error", json_string(msg));
    return o;
}

/* Validate one JSON record set (syntax only) into a new rrset. */
static struct rrset *rrset_from_json(const struct zone *z, json_t *j, int need_values, char *why,
                                     size_t why_len)
{
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *type = json_string_value(json_object_get(j, "type"));
    json_t *sid = json_object_get(j, "set_identifier");
    json_t *w = json_object_get(j, "weight");
    json_t *ttl = json_object_get(j, "ttl");
    json_t *vals = json_object_get(j, "values");
    json_t *alias = json_object_get(j, "alias_target");
    const char *azone = json_string_value(json_object_get(alias, "hosted_zone_id"));
    const char *adns = json_string_value(json_object_get(alias, "dns_name"));
    json_t *aeth = json_object_get(alias, "evaluate_target_health");
    char *canon = NULL, *dns = NULL;
    char **v = NULL;
    size_t nv = 0;
    struct rrset *r = NULL;
    struct emu_err verr = {0};

    if (!json_is_object(j) || !name || !type) {
        snprintf(why, why_len, "each record set needs string fields name and type");
        goto out;
    }
    if (!emu_type_known(type)) {
        snprintf(why, why_len, "unknown type '%s'", type);
        goto out;
    }
    if (emu_name_normalize(name, &canon, why, why_len))
        goto out;
    if (!name_in_zone(canon, z)) {
        snprintf(why, why_len, "%s is not in zone %s", canon, z->name);
        goto out;
    }
    if ((sid && (!json_is_string(sid) || !*json_string_value(sid))) ||
        (need_values && (sid != NULL) != (w != NULL)) ||
        (w && (!json_is_integer(w) || json_integer_value(w) < 0 || json_integer_value(w) > 255))) {
        snprintf(why, why_len, "set_identifier (non-empty string) and weight (0..255) go together");
        goto out;
    }
    if (need_values && alias) {
        /* an alias target (no checks of the target: direct writes bypass the batch rules) */
        if (!json_is_object(alias) || !azone || !adns || (aeth && !json_is_boolean(aeth)) || ttl ||
            vals) {
            snprintf(why, why_len,
                     "alias_target needs string hosted_zone_id and dns_name (and boolean "
                     "evaluate_target_health), without ttl and values");
            goto out;
        }
        if (emu_name_normalize(adns, &dns, why, why_len))
            goto out;
    } else if (need_values) {
        if (ttl && (!json_is_integer(ttl) || json_integer_value(ttl) < 0 ||
                    json_integer_value(ttl) > 2147483647LL)) {
            snprintf(why, why_len, "ttl must be an integer 0..2147483647");
            goto out;
        }
        if (!json_is_array(vals) || json_array_size(vals) == 0) {
            snprintf(why, why_len, "values must be a non-empty array of strings");
            goto out;
        }
        nv = json_array_size(vals);
        v = xcalloc(nv, sizeof(*v));
        for (size_t i = 0; i < nv; i++) {
            const char *s = json_string_value(json_array_get(vals, i));
            if (!s) {
                snprintf(why, why_len, "values must be strings");
                goto out;
            }
            if (!value_ok(type, s, &verr)) {
                snprintf(why, why_len, "%s", verr.messages[0]);
                goto out;
            }
            v[i] = (char *)s;
        }
    }
    r = rrset_new(canon, type, sid ? json_string_value(sid) : NULL,
                  w ? (long)json_integer_value(w) : -1, ttl ? json_integer_value(ttl) : 300, v, nv);
    if (dns)
        rrset_set_alias(r, azone, dns, json_is_true(aeth));
out:
    emu_err_release(&verr);
    free(v);
    free(canon);
    free(dns);
    return r;
}

int emu_store_put_json(struct emu_store *s, const char *zone_id, json_t *body, json_t **reply)
{
    json_t *ups = NULL, *dels = NULL;
    struct rrset **put = NULL, **del = NULL;
    size_t nput = 0, ndel = 0, deleted = 0;
    char why[512];
    int status = 400;
    struct zone *z = find_zone(s, zone_id); /* zones are fixed after startup */

    *reply = NULL;
    if (!z) {
        snprintf(why, sizeof(why), "no zone %s", zone_id);
        *reply = json_err(why);
        status = 404;
        goto out;
    }
    if (json_is_array(body)) {
        ups = body;
    } else if (json_is_object(body)) {
        ups = json_object_get(body, "upsert");
        if (!ups)
            ups = json_object_get(body, "rrsets");
        dels = json_object_get(body, "delete");
        if ((ups && !json_is_array(ups)) || (dels && !json_is_array(dels))) {
            *reply = json_err("upsert/rrsets and delete must be arrays");
            goto out;
        }
    } else {
        *reply = json_err("body must be a JSON object or array");
        goto out;
    }
    put = xcalloc(json_array_size(ups) + 1, sizeof(*put));
    del = xcalloc(json_array_size(dels) + 1, sizeof(*del));
    for (size_t i = 0; i < json_array_size(ups); i++, nput++) {
        put[nput] = rrset_from_json(z, json_array_get(ups, i), 1, why, sizeof(why));
        if (!put[nput]) {
            char msg[600];
            snprintf(msg, sizeof(msg), "upsert[%zu]: %s", i, why);
            *reply = json_err(msg);
            goto out;
        }
    }
    for (size_t i = 0; i < json_array_size(dels); i++, ndel++) {
        del[ndel] = rrset_from_json(z, json_array_get(dels, i), 0, why, sizeof(why));
        if (!del[ndel]) {
            char msg[600];
            snprintf(msg, sizeof(msg), "delete[%zu]: %s", i, why);
            *reply = json_err(msg);
            goto out;
        }
    }
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < ndel; i++)
        deleted += (size_t)zone_remove(z, del[i]->rkey, del[i]->type, del[i]->set_id);
    for (size_t i = 0; i < nput; i++) {
        zone_put(z, put[i]);
        put[i] = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    *reply = json_object();
    json_object_set_new(*reply, "upserted", json_integer((json_int_t)nput));
    json_object_set_new(*reply, "deleted", json_integer((json_int_t)deleted));
    status = 200;
out:
    for (size_t i = 0; put && i < nput; i++)
        rrset_free(put[i]);
    for (size_t i = 0; del && i < ndel; i++)
        rrset_free(del[i]);
    free(put);
    free(del);
    return status;
}

int emu_store_clear(struct emu_store *s, const char *zone_id)
{
    struct zone *z = find_zone(s, zone_id);
    if (!z)
        return -1;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < z->n; i++)
        rrset_free(z->sets[i]);
    z->n = 0;
    rrset_free(z->anchor);
    z->anchor = NULL;
    zone_seed_apex(z);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* --- resolution plans ---------------------------------------------------------------------- */

#define MAX_PLAN_SLOTS (1u << 20)

/* The zone holding a canonical name: the one with the longest matching name. */
static struct zone *zone_of(struct emu_store *s, const char *canon)
{
    struct zone *best = NULL;
    for (size_t i = 0; i < s->nzones; i++) {
        if (name_in_zone(canon, &s->zones[i]) &&
            (!best || strlen(s->zones[i].name) > strlen(best->name)))
            best = &s->zones[i];
    }
    return best;
}

/*
 * Unfold the group name/type (reached after `hops` alias hops, by `path`) into p: one node
 * whose slots are the group's eligible record sets with cumulative weights. Weight 0 is never
 * chosen unless every set of the group has weight 0; then all are chosen equally (a simple
 * set is one slot). An alias slot leads to the node of its target group in the same zone
 * (SLOT_NONE when that group is empty), a plain one to a leaf. The tree is unfolded, not
 * shared, so every leaf has one path; loops end at the hop limit. Lock held.
 */
static int plan_group(struct emu_rplan *p, const struct zone *z, const char *name, const char *type,
                      int hops, const char *path, struct emu_rslot *out, int *status, char *why,
                      size_t why_len)
{
    char *rkey = name_rkey(name);
    size_t first = lower_bound(z->sets, z->n, rkey, type, NULL), end = first, node, slot0;
    size_t eligible = 0;
    int any_weight = 0, rc = -1;
    uint64_t cum = 0;
    struct buf sub = {0};

    while (end < z->n && !strcmp(z->sets[end]->rkey, rkey) && !strcmp(z->sets[end]->type, type))
        end++;
    if (end == first) {
        out->kind = EMU_RSLOT_NONE;
        rc = 0;
        goto out;
    }
    if (hops > EMU_ALIAS_DEPTH) {
        *status = 400;
        snprintf(why, why_len,
                 "alias chain longer than %d hops (or a loop) at %s type %s, reached by %s",
                 EMU_ALIAS_DEPTH, name, type, path);
        goto out;
    }
    for (size_t k = first; k < end; k++)
        any_weight |= z->sets[k]->set_id && z->sets[k]->weight > 0;
    for (size_t k = first; k < end; k++)
        eligible += !(any_weight && z->sets[k]->set_id && z->sets[k]->weight == 0);
    if (p->nslots + eligible > MAX_PLAN_SLOTS) {
        *status = 400;
        snprintf(why, why_len, "the unfolded alias tree has more than %u choices", MAX_PLAN_SLOTS);
        goto out;
    }
    p->nodes = xgrow(p->nodes, &p->ncap, p->nnodes + 1, sizeof(*p->nodes));
    node = p->nnodes++;
    slot0 = p->nslots;
    p->slots = xgrow(p->slots, &p->scap, p->nslots + eligible, sizeof(*p->slots));
    p->nslots += eligible;
    p->nodes[node].first = slot0;
    p->nodes[node].n = eligible;
    for (size_t k = first, j = slot0; k < end; k++) {
        const struct rrset *r = z->sets[k];
        struct emu_rslot sl = {0};
        uint64_t w = r->set_id ? (uint64_t)r->weight : 1;
        if (any_weight && w == 0)
            continue;
        cum += any_weight ? w : 1;
        sub.len = 0;
        buf_addf(&sub, "%s%s%s", path ? path : "", path ? "/" : "",
                 r->set_id ? r->set_id : r->name);
        if (r->alias_zone) {
            if (plan_group(p, z, r->alias_dns, type, hops + 1, sub.p, &sl, status, why, why_len))
                goto out;
        } else {
            struct emu_rleaf *lf;
            p->leaves = xgrow(p->leaves, &p->lcap, p->nleaves + 1, sizeof(*p->leaves));
            lf = &p->leaves[p->nleaves];
            lf->path = xstrdup(sub.p);
            lf->ttl = r->ttl;
            lf->values = xcalloc(r->nvalues ? r->nvalues : 1, sizeof(*lf->values));
            for (size_t v = 0; v < r->nvalues; v++)
                lf->values[v] = xstrdup(r->values[v]);
            lf->nvalues = r->nvalues;
            sl.kind = EMU_RSLOT_LEAF;
            sl.idx = p->nleaves++;
        }
        sl.cum = cum;
        p->slots[j++] = sl; /* by index: the recursion may have moved the array */
    }
    out->kind = EMU_RSLOT_NODE;
    out->idx = node;
    rc = 0;
out:
    buf_release(&sub);
    free(rkey);
    return rc;
}

int emu_store_resolve_plan(struct emu_store *s, const char *name, const char *type,
                           struct emu_rplan *out, uint64_t *seed, int *status, char *why,
                           size_t why_len)
{
    struct emu_rslot root = {0};
    struct zone *z;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    snprintf(out->type, sizeof(out->type), "%s", type);
    *status = 400;
    if (!emu_type_known(type)) {
        snprintf(why, why_len, "unknown type '%s'", type);
        return -1;
    }
    if (emu_name_normalize(name, &out->name, why, why_len))
        return -1;
    pthread_mutex_lock(&s->lock);
    *seed = s->seed;
    z = zone_of(s, out->name);
    if (!z) {
        *status = 404;
        snprintf(why, why_len, "no zone holds %s", out->name);
        goto out;
    }
    if (plan_group(out, z, out->name, type, 0, NULL, &root, status, why, why_len))
        goto out;
    out->answered = root.kind == EMU_RSLOT_NODE;
    rc = 0;
out:
    pthread_mutex_unlock(&s->lock);
    if (rc)
        emu_rplan_release(out);
    return rc;
}

void emu_rplan_release(struct emu_rplan *p)
{
    for (size_t i = 0; i < p->nleaves; i++) {
        for (size_t v = 0; v < p->leaves[i].nvalues; v++)
            free(p->leaves[i].values[v]);
        free(p->leaves[i].values);
        free(p->leaves[i].path);
    }
    free(p->leaves);
    free(p->nodes);
    free(p->slots);
    free(p->name);
    memset(p, 0, sizeof(*p));
}
