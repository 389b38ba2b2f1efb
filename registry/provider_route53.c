/*
 * provider_route53.c: the registry's store in a Route 53 hosted zone (docs/design-route53.md).
 *
 * The records managed are the weighted A/AAAA record sets with set identifiers
 * <record-name>_<n>, n in 0..99, under three names, one per kind (registry.h, enum reg_kind):
 * <record-name>. (served, the bucket's weight), _down.<record-name>. and
 * _draining.<record-name>. (never served to clients, weight 0). Every other record of the zone
 * is ignored and never written. A write is a compare-and-swap: DELETE <the record exactly as
 * Route 53 last showed it> + CREATE <new> in one ChangeResourceRecordSets batch, every DELETE
 * first; UPSERT is never used. One batch may touch sets of several kinds and buckets (moving an IP
 * from a bucket's served set to its down set is one atomic batch).
 *
 * The provider keeps, per (type, kind, bucket), the wire form Route 53 last showed (value texts
 * as returned, HealthCheckId), so the DELETE repeats it byte for byte even when the zone was
 * written by another tool with other spellings, and a HealthCheckId is carried over into the
 * CREATE.
 *
 * Threading: apply/reload for one bucket come from its one writer at a time (the registry's
 * `writing` flag, no lock held during the call); the wire cache is guarded by the provider's
 * own mutex so different buckets proceed in parallel. The client (aws/route53.h) is
 * thread-safe. The conversions and the wire cache's helpers are in
 * registry/provider_route53_records.c.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/credentials.h"
#include "aws/route53.h"
#include "registry/provider_route53_internal.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

/* ---- metrics: the client's counters, exported as deltas after each call ----------------- */

static struct metrics_counter_family *m_calls, *m_retries, *m_throttles, *m_transport;
static struct metrics_gauge_family *m_rate, *m_change_rate;
static struct metrics_histogram_family *m_change_records;

/* Change elements per ChangeResourceRecordSets (a bucket's DELETE + CREATE is 2). */
static const double change_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000};

static void metrics_attach(void)
{
    struct metrics_registry *mr = metrics_default();
    m_calls = metrics_counter_create(mr, "r53reg_route53_calls_total",
                                     "Route 53 API calls, by call and outcome", "call,outcome");
    m_retries = metrics_counter_create(mr, "r53reg_route53_retries_total",
                                       "Route 53 attempts that were retries", NULL);
    m_throttles = metrics_counter_create(mr, "r53reg_route53_throttles_total",
                                         "Throttling answers received from Route 53", NULL);
    m_transport = metrics_counter_create(mr, "r53reg_route53_transport_errors_total",
                                         "Route 53 attempts that failed below HTTP (timeouts "
                                         "included)",
                                         NULL);
    m_rate = metrics_gauge_create(mr, "r53reg_route53_allowed_rate",
                                  "Route 53 calls per second the client allows itself now (cut "
                                  "on Throttling, back to --api-rps slowly)",
                                  NULL);
    m_change_rate = metrics_gauge_create(mr, "r53reg_route53_allowed_change_rate",
                                         "Record changes per second the client allows itself "
                                         "now (0: no change budget)",
                                         NULL);
    m_change_records = metrics_histogram_create(
        mr, "r53reg_route53_change_records",
        "Record sets changed (Change elements) per ChangeResourceRecordSets call", NULL,
        change_bounds, sizeof(change_bounds) / sizeof(change_bounds[0]));
}

static void export_stats(struct r53_provider *rp)
{
    struct r53_client_stats st;
    r53_client_stats(rp->client, &st);
    pthread_mutex_lock(&rp->lock);
    for (int k = 0; k < R53_CALL__COUNT; k++)
        for (int o = 0; o < R53_OUTCOME__COUNT; o++)
            if (st.calls[k][o] > rp->seen.calls[k][o])
                metrics_counter_add(metrics_counter_with(m_calls,
                                                         r53_call_kind_name((enum r53_call_kind)k),
                                                         r53_outcome_name((enum r53_outcome)o)),
                                    st.calls[k][o] - rp->seen.calls[k][o]);
    if (st.retries > rp->seen.retries)
        metrics_counter_add(metrics_counter_child(m_retries), st.retries - rp->seen.retries);
    if (st.throttles > rp->seen.throttles)
        metrics_counter_add(metrics_counter_child(m_throttles), st.throttles - rp->seen.throttles);
    if (st.transport_errors > rp->seen.transport_errors)
        metrics_counter_add(metrics_counter_child(m_transport),
                            st.transport_errors - rp->seen.transport_errors);
    rp->seen = st;
    pthread_mutex_unlock(&rp->lock);
    metrics_gauge_set(metrics_gauge_child(m_rate), st.rate);
    metrics_gauge_set(metrics_gauge_child(m_change_rate), st.change_rate);
}

/* Track reachability from a call's outcome, and export the client's counters. */
static void note_outcome(struct r53_provider *rp, enum rc_code rc)
{
    export_stats(rp);
    if (rc == RC_OK || rc == RC_CONFLICT || rc == RC_UPSTREAM || rc == RC_BAD_REQUEST)
        atomic_store(&rp->reachable, 1);
    else if (rc == RC_UNAVAILABLE || rc == RC_UPSTREAM_TIMEOUT)
        atomic_store(&rp->reachable, 0);
}

/* ---- ops -------------------------------------------------------------------------------- */

static enum rc_code rt_load(struct reg_provider *p, struct reg_record **records, size_t *n,
                            char *detail, size_t detail_len)
{
    struct r53_provider *rp = (struct r53_provider *)p;
    struct r53_rrset_page page[REG_KINDS];
    struct r53_error err;
    struct reg_record *out = NULL;
    size_t count = 0, total = 0, ignored = 0, duplicates = 0, per_kind[REG_KINDS] = {0};
    enum rc_code rc = RC_OK;

    memset(page, 0, sizeof(page));
    r53xml_error_init(&err);
    /* One listing per name: each stops at the first record past its name. */
    for (int k = 0; k < REG_KINDS; k++) {
        rc = r53_list_all_rrsets_for_name(rp->client, rp->zone_id, rp->fqdn[k], &page[k], &err);
        note_outcome(rp, rc);
        if (rc) {
            r53p_say_error(&err, "ListResourceRecordSets", detail, detail_len);
            goto out;
        }
        total += page[k].n;
    }
    out = xcalloc(total ? total : 1, sizeof(*out));
    pthread_mutex_lock(&rp->lock);
    /* A set the listing no longer shows is gone (a resync after another writer deleted it). */
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < REG_KINDS; k++)
            for (unsigned b = 0; b < REG_MAX_BUCKETS; b++)
                r53p_wire_release(&rp->wire[t][k][b]);
    for (int k = 0; k < REG_KINDS; k++)
        for (size_t i = 0; i < page[k].n; i++) {
            const struct r53_rrset *rs = &page[k].rrsets[i];
            enum reg_type t;
            enum reg_kind kind;
            unsigned b;
            if (!r53p_ours(rp, rs, &t, &kind, &b)) {
                if (r53p_kind_of_name(rp, rs->name) >= 0)
                    ignored++;
                continue;
            }
            /* Route 53 lists a set once; a listing that repeats one (a hostile or broken
             * endpoint) would load two records for one set. The first one wins, as in
             * rt_reload(). */
            if (rp->wire[t][kind][b].exists) {
                char qs[300];
                log_warn("msg=\"record set listed twice; the repeat is skipped\" zone=%s "
                         "type=%s set_id=%s",
                         rp->zone_id, reg_type_name(t),
                         log_quote(rs->set_identifier, qs, sizeof(qs)));
                duplicates++;
                continue;
            }
            r53p_wire_from_rrset(&rp->wire[t][kind][b], rs);
            r53p_record_from_rrset(rs, t, kind, b, &out[count]);
            if (out[count].nvalues) {
                per_kind[kind]++;
                count++;
            } else {
                reg_record_release(&out[count]);
            }
        }
    pthread_mutex_unlock(&rp->lock);
    log_info("msg=\"zone read\" zone=%s name=%s served=%zu down=%zu draining=%zu "
             "other_records_of_names=%zu duplicate_sets_skipped=%zu",
             rp->zone_id, rp->fqdn[REG_KIND_SERVED], per_kind[REG_KIND_SERVED],
             per_kind[REG_KIND_DOWN], per_kind[REG_KIND_DRAINING], ignored, duplicates);
out:
    for (int k = 0; k < REG_KINDS; k++)
        r53xml_page_release(&page[k]);
    r53xml_error_release(&err);
    *records = out;
    *n = count;
    return rc;
}

static enum rc_code rt_reload(struct reg_provider *p, enum reg_type t, enum reg_kind kind,
                              unsigned bucket, struct reg_record *out, char *detail,
                              size_t detail_len)
{
    struct r53_provider *rp = (struct r53_provider *)p;
    struct r53_rrset_page page = {0};
    struct r53_error err;
    char sid[REG_SET_ID_MAX + 1];
    enum rc_code rc;

    memset(out, 0, sizeof(*out));
    out->type = t;
    out->kind = kind;
    out->bucket = bucket;
    reg_set_id(&rp->opt, bucket, sid, sizeof(sid));
    r53xml_error_init(&err);
    /* The listing starts at exactly (name, type, identifier): the first record is the set if
     * it exists. */
    rc = r53_list_rrsets(rp->client, rp->zone_id, rp->fqdn[kind], reg_type_name(t), sid, 1, &page,
                         &err);
    note_outcome(rp, rc);
    if (rc && err.kind == R53_E_INVALID_INPUT) {
        /* Route 53 may refuse an identifier that names no record set: read every set of the
         * name and type instead and look for ours (at most 100 weighted sets, one page). */
        log_info("msg=\"single-set listing refused; listing the name and type\" zone=%s "
                 "name=%s type=%s set_id=%s",
                 rp->zone_id, rp->fqdn[kind], reg_type_name(t), sid);
        r53xml_error_release(&err);
        rc = r53_list_all_rrsets_for_name_type(rp->client, rp->zone_id, rp->fqdn[kind],
                                               reg_type_name(t), &page, &err);
        note_outcome(rp, rc);
    }
    if (rc) {
        r53p_say_error(&err, "ListResourceRecordSets", detail, detail_len);
        goto out;
    }
    pthread_mutex_lock(&rp->lock);
    {
        const struct r53_rrset *found = NULL;
        for (size_t i = 0; i < page.n && !found; i++) {
            enum reg_type tt;
            enum reg_kind kk;
            unsigned bb;
            if (r53p_ours(rp, &page.rrsets[i], &tt, &kk, &bb) && tt == t && kk == kind &&
                bb == bucket)
                found = &page.rrsets[i];
        }
        if (found) {
            r53p_wire_from_rrset(&rp->wire[t][kind][bucket], found);
            r53p_record_from_rrset(found, t, kind, bucket, out);
        } else {
            r53p_wire_release(&rp->wire[t][kind][bucket]);
        }
    }
    pthread_mutex_unlock(&rp->lock);
out:
    r53xml_page_release(&page);
    r53xml_error_release(&err);
    return rc;
}

static void build_rrset(const struct r53_provider *rp, const char *sid, enum reg_type t,
                        enum reg_kind kind, unsigned weight, long ttl, const char **values,
                        size_t n, const char *hcid, struct r53_rrset *rs)
{
    memset(rs, 0, sizeof(*rs));
    rs->name = rp->fqdn[kind];
    rs->type = reg_type_name(t);
    rs->set_identifier = sid;
    rs->has_weight = 1;
    rs->weight = weight;
    rs->has_ttl = 1;
    rs->ttl = ttl;
    rs->values = values;
    rs->nvalues = n;
    rs->health_check_id = hcid;
}

static enum rc_code rt_apply(struct reg_provider *p, const struct reg_change *changes, size_t n,
                             char *change_id, struct reg_conflicts *conflicts, char *detail,
                             size_t detail_len)
{
    struct r53_provider *rp = (struct r53_provider *)p;
    struct r53_change *wire_changes = xcalloc(2 * n + 1, sizeof(*wire_changes));
    struct r53_rrset *rrsets = xcalloc(2 * n + 1, sizeof(*rrsets));
    char(*sids)[REG_SET_ID_MAX + 1] = xcalloc(n + 1, sizeof(*sids));
    const char ***newvals = xcalloc(n + 1, sizeof(*newvals));
    char ***texts = xcalloc(n + 1, sizeof(*texts));
    struct wire *snap = xcalloc(n + 1, sizeof(*snap));
    struct r53_change_info info;
    struct r53_error err;
    size_t nw = 0, stale = 0;
    enum rc_code rc = RC_OK;

    r53xml_error_init(&err);
    reg_conflicts_clear(conflicts);
    /* Snapshot the wire forms of the buckets touched (the DELETE halves). */
    pthread_mutex_lock(&rp->lock);
    for (size_t i = 0; i < n; i++) {
        const struct reg_record *key = changes[i].old ? changes[i].old : changes[i].new;
        const struct wire *w = &rp->wire[key->type][key->kind][key->bucket];
        snap[i].exists = w->exists;
        snap[i].weight = w->weight;
        snap[i].ttl = w->ttl;
        snap[i].nvalues = w->nvalues;
        snap[i].values = xcalloc(w->nvalues ? w->nvalues : 1, sizeof(char *));
        for (size_t v = 0; v < w->nvalues; v++)
            snap[i].values[v] = xstrdup(w->values[v]);
        snap[i].health_check_id = w->health_check_id ? xstrdup(w->health_check_id) : NULL;
    }
    pthread_mutex_unlock(&rp->lock);

    for (size_t i = 0; i < n; i++) {
        const struct reg_record *key = changes[i].old ? changes[i].old : changes[i].new;
        reg_set_id(&rp->opt, key->bucket, sids[i], sizeof(sids[i]));
        if (!!changes[i].old != snap[i].exists ||
            (changes[i].old && !r53p_wire_is(&snap[i], changes[i].old, sids[i]))) {
            /* Our view and the zone's last known state disagree: reload, never guess. Every
             * such set is named, as Route 53 would name them. */
            if (!stale++)
                snprintf(detail, detail_len, "%s %s set %s: the cached record is out of date",
                         reg_type_name(key->type), rp->fqdn[key->kind], sids[i]);
            reg_conflicts_add(conflicts, key->type, key->kind, key->bucket);
            rc = RC_CONFLICT;
            continue;
        }
        if (snap[i].exists) {
            build_rrset(rp, sids[i], key->type, key->kind, snap[i].weight, snap[i].ttl,
                        (const char **)snap[i].values, snap[i].nvalues, snap[i].health_check_id,
                        &rrsets[nw]);
            wire_changes[nw].action = R53_ACTION_DELETE;
            wire_changes[nw].rrset = &rrsets[nw];
            nw++;
        }
        if (changes[i].new) {
            const struct reg_record *nr = changes[i].new;
            char txt[IP_TEXT_MAX];
            texts[i] = xcalloc(nr->nvalues ? nr->nvalues : 1, sizeof(char *));
            newvals[i] = (const char **)texts[i];
            for (size_t v = 0; v < nr->nvalues; v++)
                texts[i][v] = xstrdup(ip_format(&nr->values[v], txt));
            build_rrset(rp, sids[i], nr->type, key->kind, nr->weight, (long)nr->ttl, newvals[i],
                        nr->nvalues, snap[i].health_check_id, &rrsets[nw]);
            wire_changes[nw].action = R53_ACTION_CREATE;
            wire_changes[nw].rrset = &rrsets[nw];
            nw++;
        }
    }
    if (rc) {
        size_t len = strlen(detail);
        if (stale > 1 && len < detail_len)
            snprintf(detail + len, detail_len - len, " (and %zu more sets)", stale - 1);
        goto out;
    }

    /* Every DELETE before every CREATE (each set's DELETE still precedes its CREATE): Route 53
     * judges a CREATE against the zone as the batch's earlier changes left it, so a batch that
     * rewrites a whole weighted group with a new TTL only passes in this order. */
    {
        struct r53_change *ordered = xcalloc(nw + 1, sizeof(*ordered));
        size_t k = 0;
        for (size_t i = 0; i < nw; i++)
            if (wire_changes[i].action == R53_ACTION_DELETE)
                ordered[k++] = wire_changes[i];
        for (size_t i = 0; i < nw; i++)
            if (wire_changes[i].action != R53_ACTION_DELETE)
                ordered[k++] = wire_changes[i];
        memcpy(wire_changes, ordered, nw * sizeof(*ordered));
        free(ordered);
    }
    metrics_histogram_observe(metrics_histogram_child(m_change_records), (double)nw);
    rc = r53_change_rrsets(rp->client, rp->zone_id, wire_changes, nw, "r53reg", &info, &err);
    note_outcome(rp, rc);
    if (rc) {
        r53p_say_error(&err, "ChangeResourceRecordSets", detail, detail_len);
        if (rc == RC_CONFLICT)
            r53p_conflicts_from_error(rp, &err, conflicts);
        else
            log_warn("msg=\"Route 53 change failed\" zone=%s %s", rp->zone_id, detail);
        goto out;
    }
    pthread_mutex_lock(&rp->lock);
    for (size_t i = 0; i < n; i++) {
        const struct reg_record *key = changes[i].old ? changes[i].old : changes[i].new;
        r53p_wire_from_record(&rp->wire[key->type][key->kind][key->bucket], changes[i].new,
                              snap[i].health_check_id);
    }
    pthread_mutex_unlock(&rp->lock);
    if (change_id)
        snprintf(change_id, REG_CHANGE_ID_MAX, "%s", info.id);
    if (log_enabled(LOG_DEBUG)) {
        char qid[160];
        log_debug("msg=\"Route 53 change accepted\" change_id=%s changes=%zu",
                  log_quote(info.id, qid, sizeof(qid)), nw);
    }
out:
    for (size_t i = 0; i < n; i++) {
        r53p_wire_release(&snap[i]);
        if (texts[i]) {
            const struct reg_record *nr = changes[i].new;
            for (size_t v = 0; nr && v < nr->nvalues; v++)
                free(texts[i][v]);
            free(texts[i]);
        }
    }
    free(snap);
    free(texts);
    free(newvals);
    free(sids);
    free(rrsets);
    free(wire_changes);
    r53xml_error_release(&err);
    return rc;
}

/* One GetChange: PENDING or INSYNC. The insync waiter paces the calls (registry/insync.h). */
static enum rc_code rt_change_status(struct reg_provider *p, const char *change_id, int *insync,
                                     char *detail, size_t detail_len)
{
    struct r53_provider *rp = (struct r53_provider *)p;
    struct r53_change_info info;
    struct r53_error err;
    enum rc_code rc;

    *insync = 0;
    r53xml_error_init(&err);
    rc = r53_get_change(rp->client, change_id, &info, &err);
    note_outcome(rp, rc);
    if (rc)
        r53p_say_error(&err, "GetChange", detail, detail_len);
    else
        *insync = info.status == R53_CHANGE_INSYNC;
    r53xml_error_release(&err);
    return rc;
}

static void rt_pace(struct reg_provider *p)
{
    /* Reserve the write's token: no listing can take it between here and apply(). */
    ratelimit_reserve_write(((struct r53_provider *)p)->limiter);
}

static int64_t rt_write_wait_ns(struct reg_provider *p)
{
    return ratelimit_write_wait_ns(((struct r53_provider *)p)->limiter);
}

static int rt_ready(struct reg_provider *p)
{
    return atomic_load(&((struct r53_provider *)p)->reachable);
}

static void rt_destroy(struct reg_provider *p)
{
    struct r53_provider *rp = (struct r53_provider *)p;
    if (!rp)
        return;
    r53_client_destroy(rp->client);
    ratelimit_destroy(rp->limiter);
    awscred_provider_destroy(rp->creds);
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < REG_KINDS; k++)
            for (unsigned b = 0; b < REG_MAX_BUCKETS; b++)
                r53p_wire_release(&rp->wire[t][k][b]);
    pthread_mutex_destroy(&rp->lock);
    free(rp->zone_id);
    free(rp);
}

static const struct reg_provider_ops route53_ops = {
    .name = "route53",
    .load = rt_load,
    .apply = rt_apply,
    .reload = rt_reload,
    .change_status = rt_change_status,
    .pace = rt_pace,
    .write_wait_ns = rt_write_wait_ns,
    .ready = rt_ready,
    .destroy = rt_destroy,
};

/* Is name (no trailing dot) inside zone (with a trailing dot)? */
static int in_zone(const char *name, const char *zone)
{
    size_t nl = strlen(name), zl = strlen(zone);
    if (zl && zone[zl - 1] == '.')
        zl--;
    if (zl == 0)
        return 1;
    if (nl == zl)
        return !strncasecmp(name, zone, zl);
    return nl > zl && name[nl - zl - 1] == '.' && !strncasecmp(name + nl - zl, zone, zl);
}

enum rc_code reg_provider_route53_create(const struct reg_route53_options *o,
                                         struct reg_provider **out, char *detail, size_t n)
{
    struct r53_provider *rp = xcalloc(1, sizeof(*rp));
    struct r53_client_options co;
    struct r53_hosted_zone zone;
    struct r53_error err;
    enum rc_code rc;

    r53xml_error_init(&err);
    rp->base.ops = &route53_ops;
    rp->opt = *o->reg;
    pthread_mutex_init(&rp->lock, NULL);
    atomic_init(&rp->reachable, 0);
    for (int k = 0; k < REG_KINDS; k++)
        snprintf(rp->fqdn[k], sizeof(rp->fqdn[k]), "%s%s.", reg_kind_prefix((enum reg_kind)k),
                 o->reg->record_name);
    rp->zone_id = xstrdup(r53xml_strip_id_prefix(o->zone_id));
    metrics_attach();
    /* The longest of the three names must still be a DNS name (253 characters). */
    if (strlen(rp->fqdn[REG_KIND_DRAINING]) - 1 > REG_NAME_MAX) {
        snprintf(detail, n,
                 "--record-name is too long: its draining set's name %s would exceed %d "
                 "characters",
                 rp->fqdn[REG_KIND_DRAINING], REG_NAME_MAX);
        rc = RC_CONFIG;
        goto out;
    }

    if (o->static_creds == NULL) {
        rc = awscred_provider_create(o->cred_options, &rp->creds, detail, n);
        if (rc)
            goto out;
    }
    {
        struct ratelimit_options lo;
        memset(&lo, 0, sizeof(lo));
        lo.rate = o->rps > 0 ? o->rps : 5;
        lo.burst = o->burst > 0 ? o->burst : lo.rate;
        lo.change_rate = o->change_rps;
        rp->limiter = ratelimit_create(&lo);
        /* GetChange takes its tokens from the same limiter as the committer's calls: the
         * insync waiter may use a fifth of them (1 call/s at the default 5/s). */
        rp->base.status_rate = lo.rate / 5;
    }
    memset(&co, 0, sizeof(co));
    co.ratelimit = rp->limiter;
    co.endpoint = o->endpoint;
    co.region = o->region;
    co.provider = rp->creds;
    co.static_creds = o->static_creds;
    co.rps = o->rps;
    co.burst = o->burst;
    rc = r53_client_create(&co, &rp->client, detail, n);
    if (rc)
        goto out;

    rc = r53_get_hosted_zone(rp->client, rp->zone_id, &zone, &err);
    if (rc) {
        r53p_say_error(&err, "GetHostedZone", detail, n);
        goto out;
    }
    if (!in_zone(o->reg->record_name, zone.name)) {
        snprintf(detail, n, "--record-name %s is not inside hosted zone %s (%s)",
                 o->reg->record_name, rp->zone_id, zone.name);
        rc = RC_CONFIG;
        goto out;
    }
    atomic_store(&rp->reachable, 1);
    {
        char qname[1200];
        log_info("msg=\"hosted zone found\" zone=%s zone_name=%s records=%lld private=%d",
                 rp->zone_id, log_quote(zone.name, qname, sizeof(qname)), zone.rrset_count,
                 zone.private_zone);
    }
out:
    r53xml_error_release(&err);
    if (rc) {
        rt_destroy(&rp->base);
        rp = NULL;
    }
    *out = rp ? &rp->base : NULL;
    return rc;
}

struct ratelimit *reg_provider_route53_limiter(struct reg_provider *p)
{
    if (!p || p->ops != &route53_ops)
        return NULL;
    return ((struct r53_provider *)p)->limiter;
}
