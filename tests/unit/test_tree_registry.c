/*
 * test_tree_registry.c: the registry in alias-tree mode on the embedded store, through the
 * registry's public interface and a wrapping provider that counts calls, makes one of the
 * registry's calls between a resync's listing and its adoption, and answers an applied call as
 * a timeout. The regressions the alias tree's review reproduced (fixed in 6112e2a):
 *
 * - A stale alias belief: a child emptied and refilled around a resync whose listing is older
 *   than the registry's own alias write (or than a call that applied but answered a timeout),
 *   or after such a call alone, must end served through an alias, and the registry's belief
 *   about the aliases must be what the store holds.
 * - Tree to flat with a child whose last bucket holds only a down set, in two calls: every
 *   address kept (served and down), no alias left.
 * - Tree to flat refused when one type does not fit the flat name: the load fails naming
 *   --tree and the store is exactly as before (the other type did not move either).
 * - Tree to flat with children whose TTL differs from the name's sets: one call, and every
 *   moved set takes the name group's TTL.
 * - An alias of weight 0 in the store: a registration of its type succeeds (no conflict storm)
 *   and leaves the alias with a weight.
 *
 * Every case is ordered by the wrapper's hooks, never by sleeps.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "registry/provider.h"
#include "registry/provider_memory.h"
#include "registry/registry.h"
#include "util/log.h"

static struct reg_options options(int tree, unsigned max_per_bucket)
{
    struct reg_options o;
    memset(&o, 0, sizeof(o));
    snprintf(o.record_name, sizeof(o.record_name), "app.example.com");
    o.buckets = 100;
    o.max_per_bucket = max_per_bucket;
    o.ttl = 60;
    o.bucketing = REG_BUCKETING_ORDERED;
    o.commit = REG_COMMIT_GROUP;
    o.tree = tree;
    return o;
}

static struct ip_addr ip(const char *s)
{
    struct ip_addr a;
    if (ip_parse(s, strlen(s), &a, NULL, 0) != RC_OK) {
        fprintf(stderr, "bad test ip %s\n", s);
        abort();
    }
    return a;
}

/* Address i of group g, increasing with i, canonical: 10.g.x.y or 2001:db8:1:g+1::i+1. */
static struct ip_addr addr(enum reg_type t, unsigned g, unsigned i)
{
    char s[64];
    if (t == REG_A)
        snprintf(s, sizeof(s), "10.%u.%u.%u", g, i / 250, i % 250 + 1);
    else
        snprintf(s, sizeof(s), "2001:db8:1:%x::%x", g + 1, i + 1);
    return ip(s);
}

/* ---- the wrapping provider ---------------------------------------------------------------- */

struct wrap {
    struct reg_provider base;
    struct reg_provider *inner;
    atomic_int applies; /* apply() calls, whatever their outcome */
    atomic_int lie;     /* the next call the store applies answers RC_UPSTREAM_TIMEOUT */
    /* When armed, the next load() deregisters hook_ip through hook_reg after it has listed the
     * store (the listing is then older than that call), with lie set first when
     * hook_ambiguous. Set before arming; hook_rc and hook_ran are read after the resync. */
    atomic_int hook_armed;
    struct reg_registry *hook_reg;
    struct ip_addr hook_ip;
    int hook_ambiguous;
    enum rc_code hook_rc;
    int hook_ran;
};

static enum rc_code w_load(struct reg_provider *p, struct reg_record **recs, size_t *n, char *d,
                           size_t dn)
{
    struct wrap *w = (struct wrap *)p;
    enum rc_code rc = w->inner->ops->load(w->inner, recs, n, d, dn);
    if (atomic_exchange(&w->hook_armed, 0)) {
        struct reg_placement pl;
        char detail[REG_DETAIL_MAX];
        if (w->hook_ambiguous)
            atomic_store(&w->lie, 1);
        w->hook_rc = reg_deregister(w->hook_reg, &w->hook_ip, &pl, detail, sizeof(detail));
        w->hook_ran = 1;
    }
    return rc;
}

static enum rc_code w_apply(struct reg_provider *p, const struct reg_change *c, size_t n, char *id,
                            struct reg_conflicts *cf, char *d, size_t dn)
{
    struct wrap *w = (struct wrap *)p;
    enum rc_code rc = w->inner->ops->apply(w->inner, c, n, id, cf, d, dn);
    atomic_fetch_add(&w->applies, 1);
    if (rc == RC_OK && atomic_exchange(&w->lie, 0)) {
        snprintf(d, dn, "timed out (the test: the store applied the call)");
        rc = RC_UPSTREAM_TIMEOUT;
    }
    return rc;
}

static enum rc_code w_reload(struct reg_provider *p, enum reg_type t, enum reg_kind k, unsigned b,
                             struct reg_record *out, char *d, size_t dn)
{
    struct wrap *w = (struct wrap *)p;
    return w->inner->ops->reload(w->inner, t, k, b, out, d, dn);
}

static enum rc_code w_status(struct reg_provider *p, const char *id, int *insync, char *d,
                             size_t dn)
{
    struct wrap *w = (struct wrap *)p;
    return w->inner->ops->change_status(w->inner, id, insync, d, dn);
}

static int w_ready(struct reg_provider *p)
{
    return 1;
}

static void w_destroy(struct reg_provider *p)
{
    struct wrap *w = (struct wrap *)p;
    w->inner->ops->destroy(w->inner);
    free(w);
}

static const struct reg_provider_ops wrap_ops = {
    .name = "wrap",
    .load = w_load,
    .apply = w_apply,
    .reload = w_reload,
    .change_status = w_status,
    .ready = w_ready,
    .destroy = w_destroy,
};

/* A wrapped empty embedded store (in memory) naming its sets as opt's registry would; the
 * registry given it destroys both (reg_destroy). */
static struct wrap *wrap_create(const struct reg_options *opt)
{
    struct wrap *w = calloc(1, sizeof(*w));
    char detail[REG_DETAIL_MAX];
    if (reg_provider_memory_create(NULL, &w->inner, detail, sizeof(detail)) != RC_OK) {
        fprintf(stderr, "memory store: %s\n", detail);
        abort();
    }
    reg_provider_memory_options(w->inner, opt);
    w->base.ops = &wrap_ops;
    return w;
}

/* ---- seeding the store -------------------------------------------------------------------- */

/* A set of n values: addr(t, g, first..first+n-1). */
static struct reg_record set_rec(enum reg_type t, enum reg_kind k, unsigned slot, unsigned weight,
                                 unsigned ttl, unsigned g, unsigned first, unsigned n)
{
    struct reg_record r;
    memset(&r, 0, sizeof(r));
    r.type = t;
    r.kind = k;
    r.bucket = slot;
    r.weight = weight;
    r.ttl = ttl;
    r.values = calloc(n, sizeof(*r.values));
    for (unsigned i = 0; i < n; i++)
        r.values[i] = addr(t, g, first + i);
    r.nvalues = n;
    return r;
}

static struct reg_record alias_rec(enum reg_type t, unsigned child, unsigned weight)
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

/* CREATE recs[0..n) in one call straight to the store (targets before their aliases); takes
 * the records' values. */
static void seed(struct wrap *w, struct reg_record *recs, size_t n)
{
    struct reg_change *c = calloc(n, sizeof(*c));
    char detail[REG_DETAIL_MAX];
    enum rc_code rc;
    for (size_t i = 0; i < n; i++)
        c[i].new = &recs[i];
    rc = w->inner->ops->apply(w->inner, c, n, NULL, NULL, detail, sizeof(detail));
    if (rc != RC_OK)
        fprintf(stderr, "seed: %s: %s\n", rc_slug(rc), detail);
    CHECK_INT(rc, RC_OK);
    for (size_t i = 0; i < n; i++)
        reg_record_release(&recs[i]);
    free(c);
}

/* ---- reading the store -------------------------------------------------------------------- */

struct view {
    struct reg_record *recs;
    size_t n;
    unsigned top_sets[2], child_sets[2], aliases[2];
    unsigned char alias[2][REG_TREE_CHILDREN];
    unsigned alias_w[2][REG_TREE_CHILDREN];
    unsigned child_served[2][REG_TREE_CHILDREN]; /* served values in the child's sets */
    char summary[160];
};

static void view_read(struct wrap *w, struct view *v)
{
    char detail[REG_DETAIL_MAX];
    memset(v, 0, sizeof(*v));
    CHECK_INT(w->inner->ops->load(w->inner, &v->recs, &v->n, detail, sizeof(detail)), RC_OK);
    for (size_t i = 0; i < v->n; i++) {
        const struct reg_record *r = &v->recs[i];
        int c = reg_slot_child(r->bucket);
        if (r->alias) {
            v->aliases[r->type]++;
            v->alias[r->type][r->bucket] = 1;
            v->alias_w[r->type][r->bucket] = r->weight;
        } else if (c < 0) {
            v->top_sets[r->type]++;
        } else {
            v->child_sets[r->type]++;
            if (r->kind == REG_KIND_SERVED)
                v->child_served[r->type][c] += (unsigned)r->nvalues;
        }
    }
    snprintf(v->summary, sizeof(v->summary),
             "A top=%u child=%u aliases=%u | AAAA top=%u child=%u aliases=%u", v->top_sets[0],
             v->child_sets[0], v->aliases[0], v->top_sets[1], v->child_sets[1], v->aliases[1]);
}

static void view_free(struct view *v)
{
    for (size_t i = 0; i < v->n; i++)
        reg_record_release(&v->recs[i]);
    free(v->recs);
    v->recs = NULL;
    v->n = 0;
}

/* The set (not an alias) of kind k holding a, or NULL. */
static const struct reg_record *view_find(const struct view *v, enum reg_kind k,
                                          const struct ip_addr *a)
{
    for (size_t i = 0; i < v->n; i++) {
        const struct reg_record *r = &v->recs[i];
        if (r->alias || r->kind != k)
            continue;
        for (size_t j = 0; j < r->nvalues; j++)
            if (!ip_cmp(&r->values[j], a))
                return r;
    }
    return NULL;
}

static int cmp_line(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every record of the view, one sorted line each, joined (caller frees). */
static char *view_text(const struct view *v)
{
    char **lines = calloc(v->n + 1, sizeof(*lines)), *out;
    size_t len = 1;
    for (size_t i = 0; i < v->n; i++) {
        const struct reg_record *r = &v->recs[i];
        size_t cap = 64 + r->nvalues * IP_TEXT_MAX, at;
        lines[i] = malloc(cap);
        at = (size_t)snprintf(lines[i], cap, "%u %u %u %u %u %u", r->type, r->alias, r->kind,
                              r->bucket, r->weight, r->ttl);
        for (size_t j = 0; j < r->nvalues; j++) {
            char txt[IP_TEXT_MAX];
            at += (size_t)snprintf(lines[i] + at, cap - at, " %s", ip_format(&r->values[j], txt));
        }
        len += at + 1;
    }
    qsort(lines, v->n, sizeof(*lines), cmp_line);
    out = calloc(1, len);
    for (size_t i = 0; i < v->n; i++) {
        strcat(out, lines[i]);
        strcat(out, ";");
        free(lines[i]);
    }
    free(lines);
    return out;
}

/* Children of type t serving values with no alias at the name (never served to clients). */
static unsigned unaliased_children(const struct view *v, enum reg_type t)
{
    unsigned n = 0;
    for (unsigned c = 0; c < REG_TREE_CHILDREN; c++)
        if (v->child_served[t][c] && !v->alias[t][c]) {
            fprintf(stderr, "  %s child %u serves %u value(s) without an alias\n", reg_type_name(t),
                    c, v->child_served[t][c]);
            n++;
        }
    return n;
}

/* Aliases of type t to a child that serves nothing. */
static unsigned dangling_aliases(const struct view *v, enum reg_type t)
{
    unsigned n = 0;
    for (unsigned c = 0; c < REG_TREE_CHILDREN; c++)
        if (v->alias[t][c] && !v->child_served[t][c]) {
            fprintf(stderr, "  %s alias %u points at a child serving nothing\n", reg_type_name(t),
                    c);
            n++;
        }
    return n;
}

/* Children whose alias (existence, weight) the registry believes otherwise than the store. */
static unsigned belief_mismatches(struct reg_registry *r, const struct view *v, enum reg_type t)
{
    struct reg_alias_view av[REG_TREE_CHILDREN];
    unsigned char has[REG_TREE_CHILDREN] = {0};
    unsigned weight[REG_TREE_CHILDREN] = {0}, n = 0;
    size_t na = reg_tree_aliases(r, t, av);
    for (size_t i = 0; i < na; i++) {
        has[av[i].child] = 1;
        weight[av[i].child] = av[i].weight;
    }
    for (unsigned c = 0; c < REG_TREE_CHILDREN; c++)
        if (has[c] != v->alias[t][c] || (has[c] && weight[c] != v->alias_w[t][c])) {
            fprintf(stderr,
                    "  %s alias %u: the registry believes %s (w%u), the store holds %s "
                    "(w%u)\n",
                    reg_type_name(t), c, has[c] ? "one" : "none", weight[c],
                    v->alias[t][c] ? "one" : "none", v->alias_w[t][c]);
            n++;
        }
    return n;
}

/* ---- resync on demand ---------------------------------------------------------------------- */

struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    enum rc_code rc;
};

static void confirmed(void *arg, enum rc_code rc, const char *detail)
{
    struct waiter *w = arg;
    pthread_mutex_lock(&w->lock);
    w->rc = rc;
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* One resync by the maintainer thread (reg_confirm: the registry needs confirm_ms), waited. */
static enum rc_code resync_now(struct reg_registry *r)
{
    struct waiter w;
    enum rc_code rc;
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    rc = reg_confirm(r, confirmed, &w);
    CHECK_INT(rc, RC_OK);
    pthread_mutex_lock(&w.lock);
    while (rc == RC_OK && !w.done)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    pthread_mutex_destroy(&w.lock);
    pthread_cond_destroy(&w.cond);
    return rc == RC_OK ? w.rc : rc;
}

/* ---- the cases ---------------------------------------------------------------------------- */

/*
 * A child emptied and refilled. X is registered (child 0, its alias written), then removed
 * (the call deletes X's set and the alias): with during_resync, while a resync is between its
 * listing (alias and X still there) and its adoption; with ambiguous, the store applies that
 * call but it answers a timeout. Then Y is registered into the same child. The old registry
 * took the stale listing (or kept its pre-call belief) as the aliases' state, believed the
 * alias existed and wrote Y's set without one: Y acknowledged, never served.
 */
static void test_refilled_child(const char *what, int during_resync, int ambiguous)
{
    struct reg_options o = options(1, 10);
    struct wrap *w;
    struct reg_registry *r;
    struct reg_placement pl;
    struct ip_addr x = ip("10.0.0.1"), y = ip("10.0.0.2");
    struct view v;
    char detail[REG_DETAIL_MAX];
    enum rc_code rc;
    unsigned x_slot;
    int created, child;

    fprintf(stderr, "-- refilled child: %s\n", what);
    o.confirm_ms = 1; /* reg_confirm() runs a resync */
    w = wrap_create(&o);
    r = reg_create(&o, &w->base);
    CHECK_INT(reg_load(r, detail, sizeof(detail)), RC_OK);
    CHECK_INT(reg_register(r, &x, &pl, &created, detail, sizeof(detail)), RC_OK);
    x_slot = pl.bucket;
    CHECK(reg_slot_child(x_slot) >= 0);

    if (during_resync) {
        w->hook_reg = r;
        w->hook_ip = x;
        w->hook_ambiguous = ambiguous;
        atomic_store(&w->hook_armed, 1);
        CHECK_INT(resync_now(r), RC_OK);
        CHECK_INT(w->hook_ran, 1);
        rc = w->hook_rc;
    } else {
        atomic_store(&w->lie, 1);
        rc = reg_deregister(r, &x, &pl, detail, sizeof(detail));
    }
    CHECK_INT(rc, ambiguous ? RC_UPSTREAM_TIMEOUT : RC_OK);
    /* The call applied: the child is empty and its alias gone. */
    view_read(w, &v);
    CHECK_STR(v.summary, "A top=0 child=0 aliases=0 | AAAA top=0 child=0 aliases=0");
    /* Its own call answered: the registry knows the alias went, whatever an older listing
     * showed (after a timeout it cannot know: the next write finds out). */
    if (!ambiguous)
        CHECK_INT(belief_mismatches(r, &v, REG_A), 0);
    view_free(&v);

    rc = reg_register(r, &y, &pl, &created, detail, sizeof(detail));
    if (rc != RC_OK)
        fprintf(stderr, "  register Y: %s: %s\n", rc_slug(rc), detail);
    CHECK_INT(rc, RC_OK);
    child = reg_slot_child(pl.bucket);
    CHECK_INT(child, reg_slot_child(x_slot)); /* the emptied child is the one refilled */
    view_read(w, &v);
    {
        const struct reg_record *s = view_find(&v, REG_KIND_SERVED, &y);
        CHECK(s != NULL);
        CHECK_INT(s ? s->bucket : 0, pl.bucket);
    }
    if (child >= 0) {
        CHECK_INT(v.alias[REG_A][child], 1); /* Y is served through an alias */
        CHECK(v.alias_w[REG_A][child] > 0);
    }
    CHECK_INT(unaliased_children(&v, REG_A), 0);
    CHECK_INT(dangling_aliases(&v, REG_A), 0);
    CHECK_INT(belief_mismatches(r, &v, REG_A), 0);
    view_free(&v);

    reg_destroy(r);
}

/*
 * Tree to flat: child 0's bucket 0 serves 400 addresses, its bucket 1 holds only a down set of
 * 100. Moving both takes two calls (1,000 elements each at most). The old move deleted the
 * alias with the child's last bucket (the down-only one, in the second call) while the first
 * call had taken the child's last served set: the store refused it, and the load failed.
 */
static void test_to_flat_down_only_last(void)
{
    struct reg_options o = options(0, 400);
    struct wrap *w = wrap_create(&o);
    struct reg_registry *r;
    struct reg_stats st;
    struct view v;
    char detail[REG_DETAIL_MAX];
    enum rc_code rc;
    unsigned missing = 0, misplaced = 0;
    struct reg_record recs[] = {
        set_rec(REG_A, REG_KIND_SERVED, reg_slot_of(0, 0), 1, 60, 1, 0, 400),
        set_rec(REG_A, REG_KIND_DOWN, reg_slot_of(0, 1), 0, 60, 2, 0, 100),
        alias_rec(REG_A, 0, 1),
    };

    fprintf(stderr, "-- tree to flat: a child's last bucket holds only a down set\n");
    seed(w, recs, sizeof(recs) / sizeof(recs[0]));
    r = reg_create(&o, &w->base);
    rc = reg_load(r, detail, sizeof(detail));
    if (rc != RC_OK)
        fprintf(stderr, "  load: %s: %s\n", rc_slug(rc), detail);
    CHECK_INT(rc, RC_OK);
    CHECK(atomic_load(&w->applies) >= 2); /* the move needs two calls: what the case is about */

    view_read(w, &v);
    CHECK_INT(v.aliases[REG_A], 0);
    CHECK_INT(v.child_sets[REG_A], 0);
    for (unsigned g = 1; g <= 2; g++)
        for (unsigned i = 0; i < (g == 1 ? 400u : 100u); i++) {
            struct ip_addr a = addr(REG_A, g, i);
            const struct reg_record *s =
                view_find(&v, g == 1 ? REG_KIND_SERVED : REG_KIND_DOWN, &a);
            missing += s == NULL;
            misplaced += s && reg_slot_child(s->bucket) >= 0;
        }
    CHECK_INT(missing, 0); /* every address kept, in its kind */
    CHECK_INT(misplaced, 0);
    view_free(&v);
    reg_stats(r, &st);
    CHECK_INT(st.served, 400);
    CHECK_INT(st.down, 100);

    reg_destroy(r);
}

/* CREATE child c of type t: nb buckets of nv served values each, then its alias. */
static void seed_child(struct wrap *w, enum reg_type t, unsigned c, unsigned nb, unsigned nv)
{
    struct reg_record recs[REG_MAX_BUCKETS + 1];
    for (unsigned b = 0; b < nb; b++)
        recs[b] = set_rec(t, REG_KIND_SERVED, reg_slot_of((int)c, b), nv, 60, c * 100 + b, 0, nv);
    recs[nb] = alias_rec(t, c, 1);
    seed(w, recs, nb + 1);
}

/*
 * Tree to flat refused: A's children (60 buckets of 10) fit the name, AAAA's (120 buckets)
 * do not. The old move sent A's batches before it looked at AAAA: the load failed with A
 * half moved.
 */
static void test_to_flat_refused(void)
{
    struct reg_options o = options(0, 10);
    struct wrap *w = wrap_create(&o);
    struct reg_registry *r;
    struct view before, after;
    char detail[REG_DETAIL_MAX] = "", *text_before, *text_after;

    fprintf(stderr, "-- tree to flat refused: AAAA does not fit the name\n");
    seed_child(w, REG_A, 0, 30, 10);
    seed_child(w, REG_A, 1, 30, 10);
    seed_child(w, REG_AAAA, 0, 60, 1);
    seed_child(w, REG_AAAA, 1, 60, 1);
    view_read(w, &before);
    CHECK_STR(before.summary, "A top=0 child=60 aliases=2 | AAAA top=0 child=120 aliases=2");

    r = reg_create(&o, &w->base);
    CHECK_INT(reg_load(r, detail, sizeof(detail)), RC_BAD_REQUEST);
    if (!strstr(detail, "--tree"))
        fprintf(stderr, "  detail: %s\n", detail);
    CHECK(strstr(detail, "--tree") != NULL);
    CHECK_INT(atomic_load(&w->applies), 0); /* nothing written */
    view_read(w, &after);
    CHECK_STR(after.summary, before.summary);
    text_before = view_text(&before);
    text_after = view_text(&after);
    CHECK(strcmp(text_after, text_before) == 0); /* exactly as before */
    free(text_before);
    free(text_after);
    view_free(&before);
    view_free(&after);

    reg_destroy(r);
}

/*
 * Tree to flat with children whose TTLs (300, 120) differ from the name's set (60): the moved
 * sets join the name's group, which takes one TTL. The old move kept each set's TTL, the store
 * refused every attempt, and the load failed after 20.
 */
static void test_to_flat_ttl(void)
{
    struct reg_options o = options(0, 10);
    struct wrap *w = wrap_create(&o);
    struct reg_registry *r;
    struct view v;
    char detail[REG_DETAIL_MAX];
    enum rc_code rc;
    unsigned wrong_ttl = 0;
    struct reg_record recs[] = {
        set_rec(REG_A, REG_KIND_SERVED, 0, 1, 60, 0, 0, 1),
        set_rec(REG_A, REG_KIND_SERVED, reg_slot_of(0, 0), 1, 300, 1, 0, 1),
        set_rec(REG_A, REG_KIND_SERVED, reg_slot_of(1, 0), 2, 120, 2, 0, 2),
        alias_rec(REG_A, 0, 1),
        alias_rec(REG_A, 1, 2),
    };

    fprintf(stderr, "-- tree to flat: the children's TTLs differ from the name's\n");
    seed(w, recs, sizeof(recs) / sizeof(recs[0]));
    r = reg_create(&o, &w->base);
    rc = reg_load(r, detail, sizeof(detail));
    if (rc != RC_OK)
        fprintf(stderr, "  load: %s: %s\n", rc_slug(rc), detail);
    CHECK_INT(rc, RC_OK);
    CHECK_INT(atomic_load(&w->applies), 1); /* one pass, one call */

    view_read(w, &v);
    CHECK_STR(v.summary, "A top=3 child=0 aliases=0 | AAAA top=0 child=0 aliases=0");
    for (size_t i = 0; i < v.n; i++) /* the name's sets: its own and the moved ones */
        if (!v.recs[i].alias && reg_slot_child(v.recs[i].bucket) < 0 && v.recs[i].ttl != 60) {
            fprintf(stderr, "  A set %u has TTL %u\n", v.recs[i].bucket, v.recs[i].ttl);
            wrong_ttl++;
        }
    CHECK_INT(wrong_ttl, 0);
    {
        struct ip_addr a1 = addr(REG_A, 1, 0), a2 = addr(REG_A, 2, 1);
        const struct reg_record *s1 = view_find(&v, REG_KIND_SERVED, &a1);
        const struct reg_record *s2 = view_find(&v, REG_KIND_SERVED, &a2);
        CHECK(s1 && reg_slot_child(s1->bucket) < 0);
        CHECK(s2 && reg_slot_child(s2->bucket) < 0);
    }
    view_free(&v);

    reg_destroy(r);
}

/*
 * An alias of weight 0 (a person's, or a migrated weight-0 bucket's) to a served child. The
 * old registry took weight 0 for "no alias", planned a CREATE of the existing alias, and the
 * registration failed after 16 conflicting rounds.
 */
static void test_alias_weight_zero(void)
{
    struct reg_options o = options(1, 10);
    struct wrap *w = wrap_create(&o);
    struct reg_registry *r;
    struct reg_placement pl;
    struct ip_addr a = ip("10.0.0.1");
    struct view v;
    char detail[REG_DETAIL_MAX];
    enum rc_code rc;
    int created;
    struct reg_record recs[] = {
        set_rec(REG_A, REG_KIND_SERVED, reg_slot_of(0, 0), 1, 60, 9, 0, 1),
        alias_rec(REG_A, 0, 0),
    };

    fprintf(stderr, "-- an alias of weight 0\n");
    seed(w, recs, sizeof(recs) / sizeof(recs[0]));
    r = reg_create(&o, &w->base);
    CHECK_INT(reg_load(r, detail, sizeof(detail)), RC_OK);
    atomic_store(&w->applies, 0);
    rc = reg_register(r, &a, &pl, &created, detail, sizeof(detail));
    if (rc != RC_OK)
        fprintf(stderr, "  register: %s: %s\n", rc_slug(rc), detail);
    CHECK_INT(rc, RC_OK);
    CHECK(atomic_load(&w->applies) <= 2); /* no conflict storm */

    view_read(w, &v);
    CHECK_INT(v.alias[REG_A][0], 1);
    CHECK(v.alias_w[REG_A][0] > 0);
    CHECK_INT(unaliased_children(&v, REG_A), 0);
    CHECK_INT(dangling_aliases(&v, REG_A), 0);
    CHECK_INT(belief_mismatches(r, &v, REG_A), 0);
    view_free(&v);

    reg_destroy(r);
}

int main(void)
{
    log_set_level(LOG_WARN);
    test_refilled_child("resync listed before our alias delete", 1, 0);
    test_refilled_child("resync listed before a call applied but answered a timeout", 1, 1);
    test_refilled_child("a call applied but answered a timeout", 0, 1);
    test_to_flat_down_only_last();
    test_to_flat_refused();
    test_to_flat_ttl();
    test_alias_weight_zero();
    return check_done("test_tree_registry");
}
