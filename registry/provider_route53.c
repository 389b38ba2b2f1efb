/*
 * provider_route53.c: the registry's store in a Route 53 hosted zone (docs/design-route53.md).
 *
 * The records managed are the weighted A/AAAA record sets with set identifiers
 * <record-name>_<n>, n in 0..99, under three names, one per kind (registry.h, enum reg_kind):
 * <record-name>. (served, the bucket's weight), _down.<record-name>. and
 * _draining.<record-name>. (never served to clients, weight 0); the same for each child of the
 * alias tree (<c>.<label>.<record-name>, set identifiers <child>_<n>: registry.h, slots); and
 * the tree's weighted aliases at <record-name>. (set identifier <record-name>_t<c>, AliasTarget
 * this zone and child c's name, EvaluateTargetHealth false). reg_key_parse() says which sets
 * are ours. Every other record of the zone is ignored and never written. A write is a
 * compare-and-swap: DELETE <the record exactly as Route 53 last showed it> + CREATE <new> in
 * one ChangeResourceRecordSets batch, every DELETE first; UPSERT is never used. One batch may
 * touch sets of several kinds, slots and aliases (moving an IP from a bucket's served set to
 * its down set is one atomic batch). Before a batch goes out it is judged by the tree's rules
 * (registry/tree_rules.h) on the zone as the cache shows it.
 *
 * load() reads the name and everything under it in one paged listing (they sort together);
 * reload() reads one set of any slot.
 *
 * The provider keeps, per (type, kind, slot), the wire form Route 53 last showed (value texts
 * as returned, HealthCheckId), and per alias its AliasTarget as listed, so the DELETE repeats
 * it byte for byte even when the zone was written by another tool with other spellings, and a
 * HealthCheckId is carried over into the CREATE.
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
#include "registry/tree_rules.h"
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

/* ---- the listing: every set under the name ---------------------------------------------- */

/* Record sets one load reads at most under the name: ours (two types of three kinds of
 * REG_MAX_SLOTS sets, and the aliases) with room for other records under it. Memory stays
 * bounded by this and one page. */
#define LOAD_MAX_RRSETS (2 * REG_KINDS * REG_MAX_SLOTS + 2 * REG_TREE_CHILDREN + 100000)

/* What one load builds before it replaces the cache. */
struct load_state {
    struct wire (*wire)[REG_KINDS][REG_MAX_SLOTS];
    struct alias_wire (*aliases)[REG_TREE_CHILDREN];
    struct reg_record *out;
    size_t n, cap, read;
    size_t per_kind[REG_KINDS], naliases, ignored, duplicates, skipped_aliases;
};

static void load_state_release(struct load_state *ls)
{
    if (ls->wire)
        for (int t = 0; t < 2; t++)
            for (int k = 0; k < REG_KINDS; k++)
                for (unsigned b = 0; b < REG_MAX_SLOTS; b++)
                    r53p_wire_release(&ls->wire[t][k][b]);
    if (ls->aliases)
        for (int t = 0; t < 2; t++)
            for (unsigned c = 0; c < REG_TREE_CHILDREN; c++)
                r53p_alias_wire_release(&ls->aliases[t][c]);
    for (size_t i = 0; i < ls->n; i++)
        reg_record_release(&ls->out[i]);
    free(ls->wire);
    free(ls->aliases);
    free(ls->out);
    memset(ls, 0, sizeof(*ls));
}

/* A slot for one more loaded record. */
static struct reg_record *load_next(struct load_state *ls)
{
    if (ls->n == ls->cap) {
        ls->cap = ls->cap ? 2 * ls->cap : 256;
        ls->out = xrealloc(ls->out, ls->cap * sizeof(*ls->out));
    }
    memset(&ls->out[ls->n], 0, sizeof(ls->out[0]));
    return &ls->out[ls->n];
}

/* Log a listed set r53reg does not take although it is listed under one of its keys. */
static void load_skip(const struct r53_provider *rp, const struct r53_rrset *rs, const char *why)
{
    char qs[300], qn[600];
    log_warn("msg=\"%s\" zone=%s name=%s type=%s set_id=%s", why, rp->zone_id,
             log_quote(rs->name, qn, sizeof(qn)), rs->type,
             log_quote(rs->set_identifier ? rs->set_identifier : "", qs, sizeof(qs)));
}

/* Take one listed set into ls: a bucket's set, an alias, or another record under the name. */
static void load_rrset(const struct r53_provider *rp, struct load_state *ls,
                       const struct r53_rrset *rs)
{
    enum reg_type t;
    enum reg_kind kind;
    unsigned slot, child;
    const char *why;
    int alias;

    if (r53p_ours(rp, rs, &t, &kind, &slot)) {
        /* Route 53 lists a set once; a listing that repeats one (a hostile or broken
         * endpoint) would load two records for one set. The first one wins, as in
         * rt_reload(). */
        if (ls->wire[t][kind][slot].exists) {
            load_skip(rp, rs, "record set listed twice; the repeat is skipped");
            ls->duplicates++;
            return;
        }
        r53p_wire_from_rrset(&ls->wire[t][kind][slot], rs);
        r53p_record_from_rrset(rs, t, kind, slot, load_next(ls));
        if (ls->out[ls->n].nvalues) {
            ls->per_kind[kind]++;
            ls->n++;
        } else {
            reg_record_release(&ls->out[ls->n]);
        }
        return;
    }
    alias = r53p_alias_ours(rp, rs, &t, &child, &why);
    if (alias < 0) {
        char msg[200];
        snprintf(msg, sizeof(msg), "alias with our set identifier skipped: %s", why);
        load_skip(rp, rs, msg);
        ls->skipped_aliases++;
        return;
    }
    if (!alias) {
        ls->ignored++;
        return;
    }
    if (ls->aliases[t][child].exists) {
        load_skip(rp, rs, "record set listed twice; the repeat is skipped");
        ls->duplicates++;
        return;
    }
    r53p_alias_wire_from_rrset(&ls->aliases[t][child], rs);
    {
        *load_next(ls) = reg_alias_record(t, child, rs->weight);
        ls->n++;
        ls->naliases++;
    }
}

/*
 * Read every record set under the name into ls, in pages. ListResourceRecordSets sorts names
 * by their labels reversed, with the dots ("com.example.app."), so the name and every name
 * under it (its _down. and _draining. siblings, the tree's children and theirs) come
 * together, right from the name on: the listing starts at the name and stops at the first
 * record past them. A sibling such as app-x.example.com sorts before the name ('-' < '.').
 */
static enum rc_code list_tree(struct r53_provider *rp, struct load_state *ls, struct r53_error *err,
                              char *detail, size_t detail_len)
{
    struct r53_rrset_page page = {0};
    char *sname = xstrdup(rp->fqdn[REG_KIND_SERVED]), *stype = NULL, *sid = NULL;
    char why[1200], at[512];
    size_t pages = 0;
    int done = 0;
    enum rc_code rc = RC_OK;

    while (!done) {
        rc = r53_list_rrsets(rp->client, rp->zone_id, sname, stype, sid, R53_LIST_MAX_ITEMS, &page,
                             err);
        note_outcome(rp, rc);
        if (rc) {
            r53p_say_error(err, "ListResourceRecordSets", detail, detail_len);
            goto out;
        }
        pages++;
        if (r53_page_advances(&page, sname, stype, sid, why, sizeof(why))) {
            r53_describe_list_pos(at, sizeof(at), sname, stype, sid);
            rc_detail(detail, detail_len,
                      "Route 53 ListResourceRecordSets page %zu (%s) does not advance: %s", pages,
                      at, why);
            rc = RC_UPSTREAM;
            goto out;
        }
        for (size_t i = 0; i < page.n && !done; i++) {
            if (!r53p_in_tree(rp, page.rrsets[i].name)) {
                done = 1; /* sorted past the name and everything under it */
                break;
            }
            if (++ls->read > LOAD_MAX_RRSETS) {
                rc_detail(detail, detail_len, "more than %d record sets under %s: listing stopped",
                          LOAD_MAX_RRSETS, rp->fqdn[REG_KIND_SERVED]);
                rc = RC_UPSTREAM;
                goto out;
            }
            load_rrset(rp, ls, &page.rrsets[i]);
        }
        if (!page.is_truncated || !r53p_in_tree(rp, page.next_name))
            done = 1;
        if (!done) {
            free(sname);
            free(stype);
            free(sid);
            sname = xstrdup(page.next_name);
            stype = page.next_type ? xstrdup(page.next_type) : NULL;
            sid = page.next_identifier ? xstrdup(page.next_identifier) : NULL;
        }
        r53xml_page_release(&page);
    }
out:
    r53xml_page_release(&page);
    free(sname);
    free(stype);
    free(sid);
    return rc;
}

/* ---- ops -------------------------------------------------------------------------------- */

static enum rc_code rt_load(struct reg_provider *p, struct reg_record **records, size_t *n,
                            char *detail, size_t detail_len)
{
    struct r53_provider *rp = (struct r53_provider *)p;
    struct load_state ls;
    struct r53_error err;
    unsigned long long began;
    enum rc_code rc;

    memset(&ls, 0, sizeof(ls));
    ls.wire = xcalloc(2, sizeof(*ls.wire));
    ls.aliases = xcalloc(2, sizeof(*ls.aliases));
    r53xml_error_init(&err);
    *records = NULL;
    *n = 0;
    pthread_mutex_lock(&rp->lock);
    began = rp->writes;
    pthread_mutex_unlock(&rp->lock);
    rc = list_tree(rp, &ls, &err, detail, detail_len);
    if (rc)
        goto out;
    /* The listing replaces the cache: a set it no longer shows is gone (a resync after another
     * writer deleted it). But a set this provider wrote while the pages were being read is
     * kept as written: the page that showed it may predate the write, and a stale entry would
     * make the next change's DELETE (or the tree's rules) judge a zone that no longer is. */
    pthread_mutex_lock(&rp->lock);
    {
        struct wire(*old)[REG_KINDS][REG_MAX_SLOTS] = rp->wire;
        rp->wire = ls.wire;
        ls.wire = old;
        for (int t = 0; t < 2; t++)
            for (int k = 0; k < REG_KINDS; k++)
                for (unsigned sl = 0; sl < REG_MAX_SLOTS; sl++)
                    if (ls.wire[t][k][sl].written > began) {
                        struct wire keep = ls.wire[t][k][sl];
                        ls.wire[t][k][sl] = rp->wire[t][k][sl];
                        rp->wire[t][k][sl] = keep;
                    }
        for (int t = 0; t < 2; t++)
            for (unsigned c = 0; c < REG_TREE_CHILDREN; c++) {
                if (rp->aliases[t][c].written > began)
                    continue;
                r53p_alias_wire_release(&rp->aliases[t][c]);
                rp->aliases[t][c] = ls.aliases[t][c];
                memset(&ls.aliases[t][c], 0, sizeof(ls.aliases[t][c]));
            }
    }
    pthread_mutex_unlock(&rp->lock);
    log_info("msg=\"zone read\" zone=%s name=%s served=%zu down=%zu draining=%zu aliases=%zu "
             "other_records_under_name=%zu duplicate_sets_skipped=%zu aliases_skipped=%zu",
             rp->zone_id, rp->fqdn[REG_KIND_SERVED], ls.per_kind[REG_KIND_SERVED],
             ls.per_kind[REG_KIND_DOWN], ls.per_kind[REG_KIND_DRAINING], ls.naliases, ls.ignored,
             ls.duplicates, ls.skipped_aliases);
    *records = ls.out ? ls.out : xcalloc(1, sizeof(**records));
    *n = ls.n;
    ls.out = NULL;
    ls.n = 0;
out:
    if (rc)
        *records = xcalloc(1, sizeof(**records));
    load_state_release(&ls);
    r53xml_error_release(&err);
    return rc;
}

static enum rc_code rt_reload(struct reg_provider *p, enum reg_type t, enum reg_kind kind,
                              unsigned slot, struct reg_record *out, char *detail,
                              size_t detail_len)
{
    struct r53_provider *rp = (struct r53_provider *)p;
    struct r53_rrset_page page = {0};
    struct r53_error err;
    char sid[REG_SET_ID_MAX + 1], name[FQDN_MAX];
    enum rc_code rc;

    memset(out, 0, sizeof(*out));
    out->type = t;
    out->kind = kind;
    out->bucket = slot;
    if ((unsigned)t > REG_AAAA || (unsigned)kind >= REG_KINDS || slot >= REG_MAX_SLOTS) {
        rc_detail(detail, detail_len, "no such set: type %d, kind %d, slot %u", (int)t, (int)kind,
                  slot);
        return RC_BAD_REQUEST;
    }
    reg_set_id(&rp->opt, slot, sid, sizeof(sid));
    r53p_slot_fqdn(rp, slot, kind, name, sizeof(name));
    r53xml_error_init(&err);
    /* The listing starts at exactly (name, type, identifier): the first record is the set if
     * it exists. */
    rc = r53_list_rrsets(rp->client, rp->zone_id, name, reg_type_name(t), sid, 1, &page, &err);
    note_outcome(rp, rc);
    if (rc && err.kind == R53_E_INVALID_INPUT) {
        /* Route 53 may refuse an identifier that names no record set: read every set of the
         * name and type instead and look for ours (at most 100 weighted sets, one page). */
        log_info("msg=\"single-set listing refused; listing the name and type\" zone=%s "
                 "name=%s type=%s set_id=%s",
                 rp->zone_id, name, reg_type_name(t), sid);
        r53xml_error_release(&err);
        rc = r53_list_all_rrsets_for_name_type(rp->client, rp->zone_id, name, reg_type_name(t),
                                               &page, &err);
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
            unsigned ss;
            if (r53p_ours(rp, &page.rrsets[i], &tt, &kk, &ss) && tt == t && kk == kind &&
                ss == slot)
                found = &page.rrsets[i];
        }
        if (found) {
            r53p_wire_from_rrset(&rp->wire[t][kind][slot], found);
            r53p_record_from_rrset(found, t, kind, slot, out);
        } else {
            r53p_wire_release(&rp->wire[t][kind][slot]);
        }
        /* Newer than any listing under way: that listing must not put its page back. */
        rp->wire[t][kind][slot].written = ++rp->writes;
    }
    pthread_mutex_unlock(&rp->lock);
out:
    r53xml_page_release(&page);
    r53xml_error_release(&err);
    return rc;
}

/* A bucket's weighted set as the wire writes it. */
static void build_rrset(const char *name, const char *sid, enum reg_type t, unsigned weight,
                        long ttl, const char **values, size_t n, const char *hcid,
                        struct r53_rrset *rs)
{
    memset(rs, 0, sizeof(*rs));
    rs->name = name;
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

/* An alias of the tree as the wire writes it: weighted, no TTL, no values. */
static void build_alias(const struct r53_provider *rp, const char *sid, enum reg_type t,
                        const struct alias_wire *w, struct r53_rrset *rs)
{
    memset(rs, 0, sizeof(*rs));
    rs->name = rp->fqdn[REG_KIND_SERVED];
    rs->type = reg_type_name(t);
    rs->set_identifier = sid;
    rs->has_weight = 1;
    rs->weight = w->weight;
    rs->alias.hosted_zone_id = w->hosted_zone_id;
    rs->alias.dns_name = w->dns_name;
    rs->alias.evaluate_target_health = w->evaluate_target_health;
    rs->health_check_id = w->health_check_id;
    rs->flags = R53_RRSET_F_ALIAS;
}

/* The store as the cache shows it, counted for tree_rules_check(). Caller holds rp->lock. */
static void cache_counts(const struct r53_provider *rp, struct tree_counts *c)
{
    memset(c, 0, sizeof(*c));
    for (int t = 0; t < 2; t++) {
        for (unsigned s = 0; s < REG_MAX_SLOTS; s++) {
            int child = reg_slot_child(s);
            if (!rp->wire[t][REG_KIND_SERVED][s].exists)
                continue;
            if (child < 0)
                c->top[t]++;
            else
                c->served[t][child]++;
        }
        for (unsigned ch = 0; ch < REG_TREE_CHILDREN; ch++)
            c->alias[t][ch] = (unsigned char)rp->aliases[t][ch].exists;
    }
}

static enum rc_code rt_apply(struct reg_provider *p, const struct reg_change *changes, size_t n,
                             char *change_id, struct reg_conflicts *conflicts, char *detail,
                             size_t detail_len)
{
    struct r53_provider *rp = (struct r53_provider *)p;
    struct r53_change *wire_changes = xcalloc(2 * n + 1, sizeof(*wire_changes));
    struct r53_rrset *rrsets = xcalloc(2 * n + 1, sizeof(*rrsets));
    char(*sids)[REG_SET_ID_MAX + 1] = xcalloc(n + 1, sizeof(*sids));
    char(*names)[FQDN_MAX] = xcalloc(n + 1, sizeof(*names));
    const char ***newvals = xcalloc(n + 1, sizeof(*newvals));
    char ***texts = xcalloc(n + 1, sizeof(*texts));
    struct wire *snap = xcalloc(n + 1, sizeof(*snap));
    struct alias_wire *asnap = xcalloc(n + 1, sizeof(*asnap)), *anew = NULL;
    struct tree_counts counts;
    struct r53_change_info info;
    struct r53_error err;
    size_t nw = 0, stale = 0;
    enum rc_code rc = RC_OK;

    r53xml_error_init(&err);
    reg_conflicts_clear(conflicts);
    anew = xcalloc(n + 1, sizeof(*anew));
    rc = tree_rules_keys(changes, n, detail, detail_len);
    if (rc)
        goto out;
    /* Snapshot the wire forms of the sets and aliases touched (the DELETE halves), and count
     * the tree as the cache shows it. */
    pthread_mutex_lock(&rp->lock);
    for (size_t i = 0; i < n; i++) {
        const struct reg_record *key = changes[i].old ? changes[i].old : changes[i].new;
        if (key->alias)
            r53p_alias_wire_copy(&asnap[i], &rp->aliases[key->type][key->bucket]);
        else
            r53p_wire_copy(&snap[i], &rp->wire[key->type][key->kind][key->bucket]);
    }
    cache_counts(rp, &counts);
    pthread_mutex_unlock(&rp->lock);

    for (size_t i = 0; i < n; i++) {
        const struct reg_record *key = changes[i].old ? changes[i].old : changes[i].new;
        int disagree;
        if (key->alias) {
            reg_alias_set_id(&rp->opt, key->bucket, sids[i], sizeof(sids[i]));
            snprintf(names[i], sizeof(names[i]), "%s", rp->fqdn[REG_KIND_SERVED]);
            disagree = !!changes[i].old != asnap[i].exists ||
                       (changes[i].old && changes[i].old->weight != asnap[i].weight);
        } else {
            reg_set_id(&rp->opt, key->bucket, sids[i], sizeof(sids[i]));
            r53p_slot_fqdn(rp, key->bucket, key->kind, names[i], sizeof(names[i]));
            disagree = !!changes[i].old != snap[i].exists ||
                       (changes[i].old && !r53p_wire_is(&snap[i], changes[i].old, sids[i]));
        }
        if (!disagree)
            continue;
        /* Our view and the zone's last known state disagree: reload, never guess. Every such
         * set is named, as Route 53 would name them. */
        if (!stale++)
            snprintf(detail, detail_len, "%s %s set %s: the cached record is out of date",
                     reg_type_name(key->type), names[i], sids[i]);
        if (key->alias)
            reg_conflicts_add_alias(conflicts, key->type, key->bucket);
        else
            reg_conflicts_add(conflicts, key->type, key->kind, key->bucket);
        rc = RC_CONFLICT;
    }
    if (rc) {
        size_t len = strlen(detail);
        if (stale > 1 && len < detail_len)
            snprintf(detail + len, detail_len - len, " (and %zu more sets)", stale - 1);
        goto out;
    }
    /* The tree's rules, on the zone as the cache shows it: Route 53 would refuse an alias
     * created before its target too, but never an alias left dangling. */
    rc = tree_rules_check(&rp->opt, rp->zone_id, &counts, changes, n, detail, detail_len);
    if (rc)
        goto out;

    for (size_t i = 0; i < n; i++) {
        const struct reg_record *key = changes[i].old ? changes[i].old : changes[i].new;
        const struct reg_record *nr = changes[i].new;
        if (key->alias) {
            if (asnap[i].exists) {
                build_alias(rp, sids[i], key->type, &asnap[i], &rrsets[nw]);
                wire_changes[nw].action = R53_ACTION_DELETE;
                wire_changes[nw].rrset = &rrsets[nw];
                nw++;
            }
            if (nr) {
                r53p_alias_wire_from_record(rp, &anew[i], nr, asnap[i].health_check_id);
                build_alias(rp, sids[i], key->type, &anew[i], &rrsets[nw]);
                wire_changes[nw].action = R53_ACTION_CREATE;
                wire_changes[nw].rrset = &rrsets[nw];
                nw++;
            }
            continue;
        }
        if (snap[i].exists) {
            build_rrset(names[i], sids[i], key->type, snap[i].weight, snap[i].ttl,
                        (const char **)snap[i].values, snap[i].nvalues, snap[i].health_check_id,
                        &rrsets[nw]);
            wire_changes[nw].action = R53_ACTION_DELETE;
            wire_changes[nw].rrset = &rrsets[nw];
            nw++;
        }
        if (nr) {
            char txt[IP_TEXT_MAX];
            texts[i] = xcalloc(nr->nvalues ? nr->nvalues : 1, sizeof(char *));
            newvals[i] = (const char **)texts[i];
            for (size_t v = 0; v < nr->nvalues; v++)
                texts[i][v] = xstrdup(ip_format(&nr->values[v], txt));
            build_rrset(names[i], sids[i], nr->type, nr->weight, (long)nr->ttl, newvals[i],
                        nr->nvalues, snap[i].health_check_id, &rrsets[nw]);
            wire_changes[nw].action = R53_ACTION_CREATE;
            wire_changes[nw].rrset = &rrsets[nw];
            nw++;
        }
    }

    /* Every DELETE before every CREATE (each set's DELETE still precedes its CREATE), each in
     * the order of the changes: Route 53 judges a CREATE against the zone as the batch's
     * earlier changes left it, so a batch that rewrites a whole weighted group with a new TTL
     * only passes in this order, and an alias created after its child's sets finds them
     * (tree_rules_check() judged the batch in this same order). */
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
        if (rc == RC_CONFLICT) {
            r53p_conflicts_from_error(rp, &err, conflicts);
        } else if (r53p_error_is_alias_target(&err)) {
            /* The tree's rule, judged by Route 53 on a zone the cache did not show (another
             * writer emptied a child): a conflict on the batch's aliases, so the registry
             * reads the zone again and plans anew. */
            rc = RC_CONFLICT;
            reg_conflicts_clear(conflicts);
            for (size_t i = 0; i < n; i++)
                if (changes[i].new && changes[i].new->alias)
                    reg_conflicts_add_alias(conflicts, changes[i].new->type,
                                            changes[i].new->bucket);
        } else {
            log_warn("msg=\"Route 53 change failed\" zone=%s %s", rp->zone_id, detail);
        }
        goto out;
    }
    pthread_mutex_lock(&rp->lock);
    rp->writes++;
    for (size_t i = 0; i < n; i++) {
        const struct reg_record *key = changes[i].old ? changes[i].old : changes[i].new;
        if (key->alias) {
            struct alias_wire *w = &rp->aliases[key->type][key->bucket];
            r53p_alias_wire_from_record(rp, w, changes[i].new, asnap[i].health_check_id);
            w->written = rp->writes;
        } else {
            struct wire *w = &rp->wire[key->type][key->kind][key->bucket];
            r53p_wire_from_record(w, changes[i].new, snap[i].health_check_id);
            w->written = rp->writes;
        }
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
        r53p_alias_wire_release(&asnap[i]);
        r53p_alias_wire_release(&anew[i]);
        if (texts[i]) {
            const struct reg_record *nr = changes[i].new;
            for (size_t v = 0; nr && v < nr->nvalues; v++)
                free(texts[i][v]);
            free(texts[i]);
        }
    }
    free(snap);
    free(asnap);
    free(anew);
    free(texts);
    free(newvals);
    free(names);
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
    for (int t = 0; t < 2 && rp->wire; t++)
        for (int k = 0; k < REG_KINDS; k++)
            for (unsigned b = 0; b < REG_MAX_SLOTS; b++)
                r53p_wire_release(&rp->wire[t][k][b]);
    for (int t = 0; t < 2; t++)
        for (unsigned c = 0; c < REG_TREE_CHILDREN; c++)
            r53p_alias_wire_release(&rp->aliases[t][c]);
    free(rp->wire);
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
    rp->wire = xcalloc(2, sizeof(*rp->wire));
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
