/*
 * test_registry.c: the registry's rules without HTTP: assignment (balanced, modulo), weights,
 * capacity, idempotence, the last removal deleting the record, rollback when the provider
 * fails, and the memory store's compare-and-swap and journal.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "emuproc.h"
#include "registry/provider.h"
#include "registry/provider_memory.h"
#include "registry/provider_route53.h"
#include "registry/registry.h"

static enum reg_commit commit_mode; /* every test runs in both modes (see main) */

static struct reg_options opts(unsigned buckets, unsigned max, enum reg_bucketing b,
                               enum reg_weights w)
{
    struct reg_options o;
    memset(&o, 0, sizeof(o));
    o.commit = commit_mode;
    snprintf(o.record_name, sizeof(o.record_name), "app.example.com");
    o.buckets = buckets;
    o.max_per_bucket = max;
    o.ttl = 60;
    o.bucketing = b;
    o.weights = w;
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

static struct reg_registry *mem_registry(const struct reg_options *o, const char *state)
{
    struct reg_provider *p = NULL;
    char detail[256];
    struct reg_registry *r;
    if (reg_provider_memory_create(state, &p, detail, sizeof(detail))) {
        fprintf(stderr, "store: %s\n", detail);
        abort();
    }
    r = reg_create(o, p);
    CHECK_INT(reg_load(r, detail, sizeof(detail)), RC_OK);
    return r;
}

static enum rc_code reg(struct reg_registry *r, const char *s, struct reg_placement *p,
                        int *created)
{
    struct ip_addr a = ip(s);
    char detail[256];
    return reg_register(r, &a, p, created, detail, sizeof(detail));
}

static enum rc_code dereg(struct reg_registry *r, const char *s)
{
    struct ip_addr a = ip(s);
    struct reg_placement p;
    char detail[256];
    return reg_deregister(r, &a, &p, detail, sizeof(detail));
}

static void test_balanced(void)
{
    struct reg_options o = opts(3, 2, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_registry *r = mem_registry(&o, NULL);
    struct reg_placement p;
    int created;
    /* Least-filled first, ties to the lowest index: 0,1,2,0,1,2 */
    const char *ips[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"};
    const unsigned want[] = {0, 1, 2, 0, 1, 2};
    for (int i = 0; i < 6; i++) {
        CHECK_INT(reg(r, ips[i], &p, &created), RC_OK);
        CHECK_INT(created, 1);
        CHECK_INT(p.bucket, want[i]);
    }
    /* Full: 409-class error, nothing changes. */
    CHECK_INT(reg(r, "10.0.0.7", &p, &created), RC_BUCKETS_FULL);
    CHECK_INT(reg_free_capacity(r, REG_A), 0);
    /* IPv6 has its own buckets. */
    CHECK_INT(reg(r, "2001:db8::1", &p, &created), RC_OK);
    CHECK_INT(p.type, REG_AAAA);
    CHECK_INT(p.bucket, 0);
    /* Idempotent: same placement, created = 0. */
    CHECK_INT(reg(r, "10.0.0.5", &p, &created), RC_OK);
    CHECK_INT(created, 0);
    CHECK_INT(p.bucket, 1);
    CHECK_INT(p.weight, 2);
    /* Free a slot in bucket 1; the next IP goes there; IPs never move. */
    CHECK_INT(dereg(r, "10.0.0.2"), RC_OK);
    CHECK_INT(dereg(r, "10.0.0.2"), RC_NOT_REGISTERED);
    {
        struct ip_addr a = ip("10.0.0.2");
        char detail[256] = "";
        CHECK_INT(reg_deregister(r, &a, &p, detail, sizeof(detail)), RC_NOT_REGISTERED);
        CHECK_STR(detail, "10.0.0.2 is not registered"); /* in both commit modes */
    }
    CHECK_INT(reg(r, "10.0.0.8", &p, &created), RC_OK);
    CHECK_INT(p.bucket, 1);
    CHECK_INT(reg(r, "10.0.0.1", &p, &created), RC_OK);
    CHECK_INT(p.bucket, 0);
    reg_destroy(r);
}

/* Ordered: the first bucket with room, so a burst fills one bucket at a time and two replicas
 * with the same view choose the same bucket; a freed slot is reused before a later bucket. */
static void test_ordered(void)
{
    struct reg_options o = opts(3, 2, REG_BUCKETING_ORDERED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_registry *r = mem_registry(&o, NULL);
    struct reg_placement p;
    int created;
    const char *ips[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"};
    const unsigned want[] = {0, 0, 1, 1, 2, 2};
    for (int i = 0; i < 6; i++) {
        CHECK_INT(reg(r, ips[i], &p, &created), RC_OK);
        CHECK_INT(created, 1);
        CHECK_INT(p.bucket, want[i]);
        CHECK_INT(p.weight, i % 2 + 1); /* weight = values: equal shares however full */
    }
    CHECK_INT(reg(r, "10.0.0.7", &p, &created), RC_BUCKETS_FULL);
    CHECK_INT(dereg(r, "10.0.0.4"), RC_OK);
    CHECK_INT(dereg(r, "10.0.0.1"), RC_OK);
    CHECK_INT(reg(r, "10.0.0.8", &p, &created), RC_OK);
    CHECK_INT(p.bucket, 0);
    CHECK_INT(reg(r, "10.0.0.9", &p, &created), RC_OK);
    CHECK_INT(p.bucket, 1);
    reg_destroy(r);
}

static void test_modulo(void)
{
    struct reg_options o = opts(100, 1, REG_BUCKETING_MODULO, REG_WEIGHTS_EQUAL);
    struct reg_registry *r = mem_registry(&o, NULL);
    struct reg_placement p;
    int created;
    /* 10.0.0.7 = 167772167; mod 100 = 67 (the old script's rule). */
    CHECK_INT(reg(r, "10.0.0.7", &p, &created), RC_OK);
    CHECK_INT(p.bucket, 67);
    CHECK_INT(p.weight, 1);
    /* 10.0.1.7 = 167772423 -> 23 */
    CHECK_INT(reg(r, "10.0.1.7", &p, &created), RC_OK);
    CHECK_INT(p.bucket, 23);
    /* 10.0.0.107 -> 167772267 -> 67 again: that bucket is full (max 1), no other is eligible. */
    CHECK_INT(reg(r, "10.0.0.107", &p, &created), RC_BUCKETS_FULL);
    reg_destroy(r);
}

static void test_weights(void)
{
    struct reg_options o = opts(1, 400, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    CHECK_INT(reg_weight_for(&o, REG_A, 0), 0);
    CHECK_INT(reg_weight_for(&o, REG_A, 1), 1); /* scaled: 255/400 rounds to 1 */
    CHECK_INT(reg_weight_for(&o, REG_A, 400), 255);
    CHECK_INT(reg_weight_for(&o, REG_A, 200), 128);
    o.max_per_bucket = 100;
    CHECK_INT(reg_weight_for(&o, REG_A, 37), 37); /* exact when it fits */
    o.weights = REG_WEIGHTS_EQUAL;
    CHECK_INT(reg_weight_for(&o, REG_A, 37), 1);
}

static void test_snapshot_and_empty_bucket(void)
{
    struct reg_options o = opts(2, 5, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_registry *r = mem_registry(&o, NULL);
    struct reg_bucket_view *v;
    struct reg_placement p;
    int created;
    size_t n;
    CHECK_INT(reg(r, "10.0.0.9", &p, &created), RC_OK);
    CHECK_INT(reg(r, "10.0.0.1", &p, &created), RC_OK);
    CHECK_INT(reg(r, "10.0.0.5", &p, &created), RC_OK); /* bucket 0: .9 and .5 */
    n = reg_snapshot(r, &v);
    CHECK_INT(n, 2);
    CHECK_INT(v[0].rec.nvalues, 2);
    CHECK_INT(v[0].rec.weight, 2);
    {
        char a[IP_TEXT_MAX], b[IP_TEXT_MAX];
        CHECK_STR(ip_format(&v[0].rec.values[0], a), "10.0.0.5"); /* sorted */
        CHECK_STR(ip_format(&v[0].rec.values[1], b), "10.0.0.9");
    }
    reg_views_free(v, n);
    /* The last removal deletes the record. */
    CHECK_INT(dereg(r, "10.0.0.1"), RC_OK);
    n = reg_snapshot(r, &v);
    CHECK_INT(n, 1);
    CHECK_INT(v[0].rec.bucket, 0);
    reg_views_free(v, n);
    {
        struct ip_addr a = ip("10.0.0.1");
        CHECK_INT(reg_lookup(r, &a, &p), RC_NOT_REGISTERED);
        a = ip("10.0.0.5");
        CHECK_INT(reg_lookup(r, &a, &p), RC_OK);
        CHECK_INT(p.weight, 2);
    }
    reg_destroy(r);
}

/* A provider that fails every apply: nothing may change. */
struct failing {
    struct reg_provider base;
    int applies;
};
static enum rc_code f_load(struct reg_provider *p, struct reg_record **recs, size_t *n, char *d,
                           size_t dn)
{
    *recs = NULL;
    *n = 0;
    return RC_OK;
}
static enum rc_code f_apply(struct reg_provider *p, const struct reg_change *c, size_t n, char *id,
                            struct reg_conflicts *cf, char *d, size_t dn)
{
    ((struct failing *)p)->applies++;
    snprintf(d, dn, "disk on fire");
    return RC_STORE_IO;
}
static enum rc_code s_status(struct reg_provider *p, const char *id, int *insync, char *d,
                             size_t dn)
{
    *insync = 1;
    return RC_OK;
}
static int f_ready(struct reg_provider *p)
{
    return 1;
}
static void f_destroy(struct reg_provider *p)
{
    free(p);
}
static enum rc_code f_reload(struct reg_provider *p, enum reg_type t, enum reg_kind k, unsigned b,
                             struct reg_record *out, char *d, size_t dn)
{
    memset(out, 0, sizeof(*out));
    return RC_OK;
}
static const struct reg_provider_ops failing_ops = {
    .name = "failing",
    .load = f_load,
    .apply = f_apply,
    .reload = f_reload,
    .change_status = s_status,
    .ready = f_ready,
    .destroy = f_destroy,
};

static void test_provider_failure_rolls_back(void)
{
    struct reg_options o = opts(1, 1, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct failing *f = calloc(1, sizeof(*f));
    struct reg_registry *r;
    struct reg_placement p;
    struct reg_bucket_view *v;
    char detail[256] = "";
    int created = 7;
    struct ip_addr a = ip("10.0.0.1");

    f->base.ops = &failing_ops;
    r = reg_create(&o, &f->base);
    CHECK_INT(reg_register(r, &a, &p, &created, detail, sizeof(detail)), RC_NOT_READY);
    CHECK_INT(reg_load(r, detail, sizeof(detail)), RC_OK);
    CHECK_INT(reg_register(r, &a, &p, &created, detail, sizeof(detail)), RC_STORE_IO);
    CHECK_STR(detail, "disk on fire");
    CHECK_INT(created, 0);
    CHECK_INT(reg_lookup(r, &a, &p), RC_NOT_REGISTERED);
    CHECK_INT(reg_snapshot(r, &v), 0);
    reg_views_free(v, 0);
    /* The reservation was released: capacity is back. */
    CHECK_INT(reg_free_capacity(r, REG_A), 1);
    CHECK_INT(f->applies, 1);
    reg_destroy(r);
}

static void test_memory_cas(void)
{
    struct reg_provider *p = NULL;
    char detail[256];
    struct ip_addr v1[1] = {ip("10.0.0.1")}, v2[2] = {ip("10.0.0.1"), ip("10.0.0.2")};
    struct reg_record r1 = {REG_A, REG_KIND_SERVED, 3, 1, 60, 1, v1, 0},
                      r2 = {REG_A, REG_KIND_SERVED, 3, 2, 60, 2, v2, 0};
    struct reg_change create = {NULL, &r1}, swap = {&r1, &r2}, stale = {&r1, &r2},
                      del = {&r2, NULL};
    struct reg_record *recs;
    size_t n;

    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    CHECK_INT(p->ops->apply(p, &create, 1, NULL, NULL, detail, sizeof(detail)), RC_OK);
    CHECK_INT(p->ops->apply(p, &create, 1, NULL, NULL, detail, sizeof(detail)),
              RC_CONFLICT); /* exists */
    CHECK_INT(p->ops->apply(p, &swap, 1, NULL, NULL, detail, sizeof(detail)), RC_OK);
    CHECK_INT(p->ops->apply(p, &stale, 1, NULL, NULL, detail, sizeof(detail)),
              RC_CONFLICT); /* old gone */
    /* A batch is atomic: one stale change fails the whole batch. */
    {
        struct ip_addr v9[1] = {ip("10.0.0.9")};
        struct reg_record r9 = {REG_A, REG_KIND_SERVED, 7, 1, 60, 1, v9, 0};
        struct reg_change batch[2] = {{NULL, &r9}, {&r1, NULL}};
        CHECK_INT(p->ops->apply(p, batch, 2, NULL, NULL, detail, sizeof(detail)), RC_CONFLICT);
        CHECK_INT(p->ops->load(p, &recs, &n, detail, sizeof(detail)), RC_OK);
        CHECK_INT(n, 1); /* bucket 7 was not created */
        for (size_t i = 0; i < n; i++)
            reg_record_release(&recs[i]);
        free(recs);
    }
    /* A refusal names every set that did not match, as Route 53 does and in its words. */
    {
        struct ip_addr v9[1] = {ip("10.0.0.9")};
        struct reg_record r9 = {REG_A, REG_KIND_SERVED, 7, 1, 60, 1, v9, 0},
                          d4 = {REG_A, REG_KIND_DOWN, 4, 0, 60, 1, v9, 0};
        struct reg_change batch[3] = {{NULL, &r9}, {&r1, NULL}, {&d4, NULL}};
        struct reg_conflicts cf;
        char why[REG_DETAIL_MAX];
        struct reg_options named = opts(1, 1, REG_BUCKETING_ORDERED, REG_WEIGHTS_PROPORTIONAL);
        reg_provider_memory_options(p, &named);
        memset(&cf, 0xff, sizeof(cf));
        CHECK_INT(p->ops->apply(p, batch, 3, NULL, &cf, why, sizeof(why)), RC_CONFLICT);
        CHECK_STR(why, "[Tried to delete resource record set [name='app.example.com.', type='A', "
                       "set-identifier='app.example.com_3'] but the values provided do not "
                       "match the current values, Tried to delete resource record set "
                       "[name='_down.app.example.com.', type='A', "
                       "set-identifier='app.example.com_4'] but it was not found]");
        CHECK_INT(cf.named, 2);
        CHECK_INT(cf.unnamed, 0);
        CHECK_INT(cf.kinds[REG_A][3], 1u << REG_KIND_SERVED);
        CHECK_INT(cf.kinds[REG_A][4], 1u << REG_KIND_DOWN);
        CHECK_INT(cf.kinds[REG_A][7], 0);
        CHECK_INT(cf.kinds[REG_AAAA][3], 0);
        CHECK_INT(p->ops->apply(p, &create, 1, NULL, &cf, why, sizeof(why)), RC_CONFLICT);
        CHECK_STR(why, "[Tried to create resource record set [name='app.example.com.', type='A', "
                       "set-identifier='app.example.com_3'] but it already exists]");
        CHECK_INT(cf.named, 1);
        CHECK_INT(cf.kinds[REG_A][3], 1u << REG_KIND_SERVED);
        CHECK_INT(p->ops->apply(p, &swap, 1, NULL, &cf, why, sizeof(why)), RC_CONFLICT);
        CHECK_INT(p->ops->apply(p, &del, 1, NULL, &cf, why, sizeof(why)), RC_OK);
        CHECK_INT(cf.named, 0); /* cleared */
        CHECK_INT(cf.kinds[REG_A][3], 0);
        CHECK_INT(p->ops->apply(p, &create, 1, NULL, NULL, why, sizeof(why)), RC_OK);
        CHECK_INT(p->ops->apply(p, &swap, 1, NULL, NULL, why, sizeof(why)), RC_OK);
    }
    /* TTL drift counts as a different record. */
    {
        struct reg_record r2ttl = r2;
        struct reg_change c = {&r2ttl, NULL};
        r2ttl.ttl = 300;
        CHECK_INT(p->ops->apply(p, &c, 1, NULL, NULL, detail, sizeof(detail)), RC_CONFLICT);
    }
    CHECK_INT(p->ops->apply(p, &del, 1, NULL, NULL, detail, sizeof(detail)), RC_OK);
    CHECK_INT(p->ops->load(p, &recs, &n, detail, sizeof(detail)), RC_OK);
    CHECK_INT(n, 0);
    free(recs);
    p->ops->destroy(p);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_journal(void)
{
    char dir[] = "/tmp/r53reg-test-XXXXXX", path[300], detail[512];
    struct reg_options o = opts(4, 10, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_registry *r;
    struct reg_placement p;
    struct reg_provider *prov;
    int created;

    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    snprintf(path, sizeof(path), "%s/state.jsonl", dir);

    /* Write, restart, everything is back where it was. */
    r = mem_registry(&o, path);
    for (int i = 1; i <= 20; i++) {
        char s[32];
        snprintf(s, sizeof(s), "10.1.0.%d", i);
        CHECK_INT(reg(r, s, &p, &created), RC_OK);
    }
    CHECK_INT(reg(r, "2001:db8::5", &p, &created), RC_OK);
    CHECK_INT(dereg(r, "10.1.0.3"), RC_OK);
    reg_destroy(r);

    r = mem_registry(&o, path);
    {
        struct ip_addr a = ip("10.1.0.20");
        CHECK_INT(reg_lookup(r, &a, &p), RC_OK);
        CHECK_INT(p.bucket, (20 - 1) % 4);
        a = ip("10.1.0.3");
        CHECK_INT(reg_lookup(r, &a, &p), RC_NOT_REGISTERED);
        a = ip("2001:db8::5");
        CHECK_INT(reg_lookup(r, &a, &p), RC_OK);
        CHECK_INT(reg_free_capacity(r, REG_A), 40 - 19);
    }
    reg_destroy(r);

    /* A torn last line (crash mid-write, never acknowledged) is ignored. */
    {
        FILE *f = fopen(path, "a");
        fputs("{\"apply\":[{\"type\":\"A\",\"bucket\":1,\"rec", f);
        fclose(f);
        r = mem_registry(&o, path);
        struct ip_addr a = ip("10.1.0.20");
        CHECK_INT(reg_lookup(r, &a, &p), RC_OK);
        reg_destroy(r);
    }
    /* A corrupt line before the last stops startup with the line number. */
    write_file(path, "{\"snapshot\":[]}\nnot json\n{\"snapshot\":[]}\n");
    CHECK_INT(reg_provider_memory_create(path, &prov, detail, sizeof(detail)), RC_IO);
    CHECK(strstr(detail, "line 2") != NULL);
    /* A record that breaks the rules (unsorted values) is refused too. */
    write_file(path, "{\"snapshot\":[{\"type\":\"A\",\"bucket\":0,\"weight\":2,\"ttl\":60,"
                     "\"values\":[\"10.0.0.2\",\"10.0.0.1\"]}]}\n");
    CHECK_INT(reg_provider_memory_create(path, &prov, detail, sizeof(detail)), RC_IO);
    CHECK(strstr(detail, "sorted") != NULL);
    unlink(path);
    rmdir(dir);
}

static void test_journal_compaction(void)
{
    char dir[] = "/tmp/r53reg-test-XXXXXX", path[300];
    struct reg_options o = opts(1, 400, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_registry *r;
    struct reg_placement p;
    int created;
    FILE *f;
    long size;

    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    snprintf(path, sizeof(path), "%s/state.jsonl", dir);
    r = mem_registry(&o, path);
    /* Churn on one IP in a 300-value bucket writes ~4 KB lines (about 5 MB in all without
     * compaction); compaction must keep the file near its 1 MiB threshold. */
    for (int i = 0; i < 300; i++) {
        char s[32];
        snprintf(s, sizeof(s), "10.2.%d.%d", i / 250, i % 250 + 1);
        CHECK_INT(reg(r, s, &p, &created), RC_OK);
    }
    for (int i = 0; i < 600; i++) {
        CHECK_INT(reg(r, "10.9.9.9", &p, &created), RC_OK);
        CHECK_INT(dereg(r, "10.9.9.9"), RC_OK);
    }
    reg_destroy(r);
    f = fopen(path, "r");
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fclose(f);
    CHECK(size < 2L * 1024 * 1024);
    r = mem_registry(&o, path);
    CHECK_INT(reg_free_capacity(r, REG_A), 400 - 300);
    reg_destroy(r);
    unlink(path);
    rmdir(dir);
}

/* A provider that forwards to a shared inner store: several registries over one store are
 * several replicas over one zone. destroy() leaves the inner store alone. Knobs: pace_ms makes
 * every call wait like a rate limit; poison refuses any batch touching that A bucket, as Route
 * 53 refuses a batch with one bad change. */
struct shared {
    struct reg_provider base;
    struct reg_provider *inner;
    unsigned pace_ms;
    atomic_int poison; /* -1: none */
    atomic_int calls;
    atomic_uint load_delay_ms; /* load() answers this late: what it read may be stale */
    atomic_int loads;          /* load() calls that have read the store */
    atomic_int reloads;
    atomic_int misname; /* a conflict names set AAAA 99 (in no batch) instead of the store's */
};
static enum rc_code s_load(struct reg_provider *p, struct reg_record **recs, size_t *n, char *d,
                           size_t dn)
{
    struct shared *sp = (struct shared *)p;
    enum rc_code rc = sp->inner->ops->load(sp->inner, recs, n, d, dn);
    unsigned ms = atomic_load(&sp->load_delay_ms);
    atomic_fetch_add(&sp->loads, 1);
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    if (ms)
        nanosleep(&ts, NULL);
    return rc;
}
static enum rc_code s_apply(struct reg_provider *p, const struct reg_change *c, size_t n, char *id,
                            struct reg_conflicts *cf, char *d, size_t dn)
{
    struct shared *sp = (struct shared *)p;
    struct reg_provider *in = sp->inner;
    atomic_fetch_add(&sp->calls, 1);
    for (size_t i = 0; i < n; i++) {
        const struct reg_record *k = c[i].old ? c[i].old : c[i].new;
        if (sp->poison >= 0 && k->type == REG_A && (int)k->bucket == sp->poison) {
            snprintf(d, dn, "InvalidChangeBatch: bucket %d is poisoned", sp->poison);
            return RC_UPSTREAM;
        }
    }
    {
        enum rc_code rc = in->ops->apply(in, c, n, id, cf, d, dn);
        if (rc == RC_CONFLICT && cf && atomic_load(&sp->misname)) {
            reg_conflicts_clear(cf);
            reg_conflicts_add(cf, REG_AAAA, REG_KIND_SERVED, 99);
        }
        return rc;
    }
}
static void s_pace(struct reg_provider *p)
{
    struct shared *sp = (struct shared *)p;
    struct timespec ts = {0, (long)sp->pace_ms * 1000000};
    if (sp->pace_ms)
        nanosleep(&ts, NULL);
}

static enum rc_code s_reload(struct reg_provider *p, enum reg_type t, enum reg_kind k, unsigned b,
                             struct reg_record *out, char *d, size_t dn)
{
    struct reg_provider *in = ((struct shared *)p)->inner;
    atomic_fetch_add(&((struct shared *)p)->reloads, 1);
    return in->ops->reload(in, t, k, b, out, d, dn);
}
static const struct reg_provider_ops shared_ops = {
    .name = "shared",
    .load = s_load,
    .apply = s_apply,
    .reload = s_reload,
    .change_status = s_status,
    .pace = s_pace,
    .ready = f_ready,
    .destroy = f_destroy,
};

static struct shared *last_shared;

static struct reg_registry *replica_poisoned(const struct reg_options *o,
                                            struct reg_provider *inner, int poison)
{
    struct shared *sp = calloc(1, sizeof(*sp));
    last_shared = sp;
    sp->poison = poison;
    char detail[256];
    struct reg_registry *r;
    sp->base.ops = &shared_ops;
    sp->inner = inner;
    r = reg_create(o, &sp->base);
    CHECK_INT(reg_load(r, detail, sizeof(detail)), RC_OK);
    return r;
}

static struct reg_registry *replica(const struct reg_options *o, struct reg_provider *inner)
{
    return replica_poisoned(o, inner, -1);
}

static void stored(struct reg_provider *p, enum reg_type t, unsigned b, struct reg_record *out)
{
    char detail[256];
    CHECK_INT(p->ops->reload(p, t, REG_KIND_SERVED, b, out, detail, sizeof(detail)), RC_OK);
}

/* Someone else (a person in the console, the old script) edits the store behind the
 * registry's back: the next write detects it, adopts what is there and loses nothing. */
static void test_foreign_edits(void)
{
    struct reg_options o = opts(1, 10, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_provider *p = NULL;
    struct reg_registry *r;
    struct reg_placement pl;
    struct reg_record cur = {0}, next;
    struct ip_addr extra = ip("10.0.0.99");
    char detail[256];
    int created;

    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    r = replica(&o, p);
    CHECK_INT(reg(r, "10.0.0.1", &pl, &created), RC_OK);

    /* The console adds 10.0.0.99 and sets weight 1 (the old script's habit). */
    stored(p, REG_A, 0, &cur);
    reg_record_copy(&next, &cur);
    next.values = realloc(next.values, 2 * sizeof(*next.values));
    next.values[1] = extra;
    next.nvalues = 2;
    next.weight = 1;
    {
        struct reg_change c = {&cur, &next};
        CHECK_INT(p->ops->apply(p, &c, 1, NULL, NULL, detail, sizeof(detail)), RC_OK);
    }
    reg_record_release(&cur);
    reg_record_release(&next);

    /* Our next write conflicts, adopts 10.0.0.99, and lands on top with the right weight. */
    CHECK_INT(reg(r, "10.0.0.2", &pl, &created), RC_OK);
    CHECK_INT(pl.weight, 3);
    stored(p, REG_A, 0, &cur);
    CHECK_INT(cur.nvalues, 3);
    CHECK_INT(cur.weight, 3);
    reg_record_release(&cur);
    CHECK_INT(reg_lookup(r, &extra, &pl), RC_OK);

    /* The console removes 10.0.0.1; deregistering it is then simply done. */
    stored(p, REG_A, 0, &cur);
    reg_record_copy(&next, &cur);
    memmove(next.values, next.values + 1, 2 * sizeof(*next.values));
    next.nvalues = 2;
    {
        struct reg_change c = {&cur, &next};
        CHECK_INT(p->ops->apply(p, &c, 1, NULL, NULL, detail, sizeof(detail)), RC_OK);
    }
    reg_record_release(&cur);
    reg_record_release(&next);
    CHECK_INT(dereg(r, "10.0.0.1"), RC_OK);
    CHECK_INT(dereg(r, "10.0.0.1"), RC_NOT_REGISTERED);
    stored(p, REG_A, 0, &cur);
    CHECK_INT(cur.nvalues, 2); /* .2 and .99 */
    reg_record_release(&cur);
    CHECK_INT(dereg(r, "10.0.0.99"), RC_OK);
    CHECK_INT(dereg(r, "10.0.0.2"), RC_OK);
    stored(p, REG_A, 0, &cur);
    CHECK_INT(cur.nvalues, 0); /* the last removal deleted the record */
    reg_record_release(&cur);

    reg_destroy(r);
    p->ops->destroy(p);
}

/* Two replicas over one store, four threads each, crowded onto two buckets. */
struct replica_job {
    struct reg_registry *r;
    int id;
    int registered[40];
    int errors;
};

static void *replica_worker(void *arg)
{
    struct replica_job *j = arg;
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 40; i++) {
            char s[32];
            struct reg_placement pl;
            int created;
            snprintf(s, sizeof(s), "10.%d.0.%d", j->id + 1, i + 1);
            enum rc_code rc;
            struct ip_addr a = ip(s);
            if ((i + round) % 3 == 0 && j->registered[i]) {
                rc = dereg(j->r, s);
                if (rc == RC_OK)
                    j->registered[i] = 0;
            } else {
                rc = reg(j->r, s, &pl, &created);
                if (rc == RC_OK)
                    j->registered[i] = 1;
            }
            /* Nobody else touches this job's addresses: what was acknowledged holds, even
             * while resyncs adopt the other replica's changes. */
            if (rc == RC_OK && (reg_lookup(j->r, &a, &pl) == RC_OK) != j->registered[i]) {
                fprintf(stderr, "replica %d %s: lookup disagrees with the answer\n", j->id % 2, s);
                j->errors++;
            }
            if (rc) {
                fprintf(stderr, "replica %d %s: %s\n", j->id % 2, s, rc_slug(rc));
                j->errors++;
            }
        }
    return NULL;
}

static void test_two_replicas(void)
{
    struct reg_options o = opts(2, 250, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    o.resync_ms = 1; /* a resync at every maintainer pass, racing the commits */
    struct reg_provider *p = NULL;
    struct reg_registry *r[2];
    struct replica_job jobs[8];
    pthread_t t[8];
    char detail[256];
    size_t expected = 0, seen = 0;

    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    r[0] = replica(&o, p);
    r[1] = replica(&o, p);
    memset(jobs, 0, sizeof(jobs));
    for (int i = 0; i < 8; i++) {
        jobs[i].r = r[i % 2];
        jobs[i].id = i;
        pthread_create(&t[i], NULL, replica_worker, &jobs[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT(jobs[i].errors, 0);
        for (int k = 0; k < 40; k++)
            expected += (size_t)jobs[i].registered[k];
    }
    /* The store holds exactly what was acknowledged, each IP once. */
    for (unsigned b = 0; b < 2; b++) {
        struct reg_record cur = {0};
        stored(p, REG_A, b, &cur);
        for (size_t v = 0; v < cur.nvalues; v++) {
            int job = cur.values[v].b[1] - 1, idx = cur.values[v].b[3] - 1;
            CHECK(job >= 0 && job < 8 && idx >= 0 && idx < 40 && jobs[job].registered[idx]);
        }
        CHECK_INT(cur.weight, cur.nvalues);
        seen += cur.nvalues;
        reg_record_release(&cur);
    }
    CHECK_INT(seen, expected);
    reg_destroy(r[0]);
    reg_destroy(r[1]);
    p->ops->destroy(p);
}

/* Leases: an expired lease deregisters (in both commit modes); a heartbeat keeps it. */
static void test_leases(void)
{
    struct reg_options o = opts(2, 10, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_registry *r;
    struct reg_placement p;
    struct ip_addr a = ip("10.30.0.1"), b = ip("10.30.0.2");
    int created, gone = 0;

    o.default_lease = 1;
    r = mem_registry(&o, NULL);
    CHECK_INT(reg(r, "10.30.0.1", &p, &created), RC_OK);
    CHECK_INT(reg(r, "10.30.0.2", &p, &created), RC_OK);
    CHECK_INT(reg_set_lease(r, &b, 600, &p), RC_OK);
    CHECK_INT(p.lease_seconds, 600);
    CHECK_INT(reg_lookup(r, &a, &p), RC_OK);
    CHECK_INT(p.lease_seconds, 1);
    CHECK(p.lease_expires_at > 0);
    for (int i = 0; i < 100 && !gone; i++) { /* bounded: 10 s */
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        gone = reg_lookup(r, &a, &p) == RC_NOT_REGISTERED;
    }
    CHECK(gone);
    CHECK_INT(reg_lookup(r, &b, &p), RC_OK);
    CHECK_INT(reg_heartbeat(r, &a, &p), RC_NOT_REGISTERED);
    CHECK_INT(reg_heartbeat(r, &b, &p), RC_OK);
    CHECK_INT(reg_free_capacity(r, REG_A), 20 - 1);
    reg_destroy(r);
}

/* ---- down and draining ---------------------------------------------------------------- */

/* reg_submit(op) and wait. */
struct box {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    struct reg_result res;
};

static void box_done(void *arg, const struct reg_result *res)
{
    struct box *w = arg;
    pthread_mutex_lock(&w->lock);
    w->res = *res;
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static enum rc_code op_wait(struct reg_registry *r, enum reg_op op, const char *s,
                            struct reg_result *out)
{
    struct ip_addr a = ip(s);
    struct box w;
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    reg_submit(r, op, &a, box_done, &w);
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    pthread_mutex_destroy(&w.lock);
    pthread_cond_destroy(&w.cond);
    *out = w.res;
    return w.res.rc;
}

/* Another writer (a replica, the console, the old script) puts one served set of type A in
 * bucket b of p: values ips (sorted), weight = their count, ttl. */
static void put_set(struct reg_provider *p, unsigned b, const char *const *ips, size_t n,
                    unsigned ttl)
{
    struct reg_record cur = {0}, next = {0};
    char detail[256];
    stored(p, REG_A, b, &cur);
    next.type = REG_A;
    next.kind = REG_KIND_SERVED;
    next.bucket = b;
    next.weight = (unsigned)n;
    next.ttl = ttl;
    next.nvalues = n;
    next.values = calloc(n, sizeof(*next.values));
    for (size_t i = 0; i < n; i++)
        next.values[i] = ip(ips[i]);
    {
        struct reg_change c = {cur.nvalues ? &cur : NULL, &next};
        CHECK_INT(p->ops->apply(p, &c, 1, NULL, NULL, detail, sizeof(detail)), RC_OK);
    }
    reg_record_release(&cur);
    reg_record_release(&next);
}

static void stored_kind(struct reg_provider *p, enum reg_kind k, unsigned b, struct reg_record *out)
{
    char detail[256];
    CHECK_INT(p->ops->reload(p, REG_A, k, b, out, detail, sizeof(detail)), RC_OK);
}

/* The store's set of kind k of bucket 0 holds exactly the listed addresses (NULL ended) with
 * weight w (-1: the set must not exist). */
static void expect_set(struct reg_provider *p, enum reg_kind k, int w, const char *const *ips)
{
    struct reg_record cur = {0};
    size_t n = 0;
    stored_kind(p, k, 0, &cur);
    while (ips && ips[n])
        n++;
    CHECK_INT(cur.nvalues, n);
    if (w >= 0 && cur.nvalues)
        CHECK_INT(cur.weight, w);
    for (size_t i = 0; i < n && i < cur.nvalues; i++) {
        char txt[IP_TEXT_MAX];
        CHECK_STR(ip_format(&cur.values[i], txt), ips[i]);
    }
    CHECK_INT(cur.kind, k);
    reg_record_release(&cur);
}

/* DOWN/UP/DRAIN move a backend between its bucket's three sets in one atomic change; it
 * stays registered and keeps its place; ADD of a draining backend returns it to service. */
static void test_states(void)
{
    struct reg_options o = opts(1, 3, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_provider *p = NULL;
    struct reg_registry *r;
    struct reg_result res;
    struct reg_placement pl;
    struct ip_addr a1 = ip("10.40.0.1"), a3 = ip("10.40.0.3");
    char detail[256], dir[] = "/tmp/r53reg-states-XXXXXX", path[300];
    int created;
    static const char *const all3[] = {"10.40.0.1", "10.40.0.2", "10.40.0.3", NULL};
    static const char *const two_three[] = {"10.40.0.2", "10.40.0.3", NULL};
    static const char *const one[] = {"10.40.0.1", NULL}, *const two[] = {"10.40.0.2", NULL};
    static const char *const one_three[] = {"10.40.0.1", "10.40.0.3", NULL};
    static const char *const three[] = {"10.40.0.3", NULL};

    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/state", dir);
    CHECK_INT(reg_provider_memory_create(path, &p, detail, sizeof(detail)), RC_OK);
    r = replica(&o, p); /* the store outlives the registry: restart below */
    CHECK_INT(reg(r, "10.40.0.1", &pl, &created), RC_OK);
    CHECK_INT(reg(r, "10.40.0.2", &pl, &created), RC_OK);
    CHECK_INT(reg(r, "10.40.0.3", &pl, &created), RC_OK);
    expect_set(p, REG_KIND_SERVED, 3, all3);

    /* Down: out of the served set (weight follows), into the down set, still registered. */
    CHECK_INT(op_wait(r, REG_OP_DOWN, "10.40.0.1", &res), RC_OK);
    CHECK_INT(res.placement.state, REG_STATE_DOWN);
    CHECK_INT(res.placement.weight, 2);
    CHECK(res.placement.change_id[0] != '\0');
    expect_set(p, REG_KIND_SERVED, 2, two_three);
    expect_set(p, REG_KIND_DOWN, 0, one);
    CHECK_INT(reg_lookup(r, &a1, &pl), RC_OK);
    CHECK_INT(pl.state, REG_STATE_DOWN);
    CHECK(pl.since_ms > 0);
    /* Again: nothing to change, answered as is. */
    CHECK_INT(op_wait(r, REG_OP_DOWN, "10.40.0.1", &res), RC_OK);
    CHECK_INT(res.placement.state, REG_STATE_DOWN);
    CHECK_STR(res.placement.change_id, "");
    /* A down backend keeps its place: the bucket (3) is full. */
    CHECK_INT(reg(r, "10.40.0.4", &pl, &created), RC_BUCKETS_FULL);
    /* Registering a down backend again does not bring it back: the checks decide. */
    CHECK_INT(op_wait(r, REG_OP_ADD, "10.40.0.1", &res), RC_OK);
    CHECK_INT(res.placement.state, REG_STATE_DOWN);
    CHECK_INT(res.created, 0);

    /* Drain a served one and the down one. */
    CHECK_INT(op_wait(r, REG_OP_DRAIN, "10.40.0.3", &res), RC_OK);
    CHECK_INT(res.placement.state, REG_STATE_DRAINING);
    CHECK_INT(res.placement.weight, 1);
    expect_set(p, REG_KIND_SERVED, 1, two);
    expect_set(p, REG_KIND_DRAINING, 0, three);
    CHECK_INT(op_wait(r, REG_OP_DRAIN, "10.40.0.1", &res), RC_OK);
    expect_set(p, REG_KIND_DOWN, -1, NULL);
    expect_set(p, REG_KIND_DRAINING, 0, one_three);
    /* PUT's ENSURE leaves a registered backend where it is. */
    CHECK_INT(op_wait(r, REG_OP_ENSURE, "10.40.0.3", &res), RC_OK);
    CHECK_INT(res.placement.state, REG_STATE_DRAINING);
    CHECK_STR(res.placement.change_id, "");
    /* Draining stays draining whatever the checks say. */
    CHECK_INT(op_wait(r, REG_OP_DOWN, "10.40.0.3", &res), RC_OK);
    CHECK_INT(res.placement.state, REG_STATE_DRAINING);
    CHECK_INT(op_wait(r, REG_OP_UP, "10.40.0.3", &res), RC_OK);
    CHECK_INT(res.placement.state, REG_STATE_DRAINING);

    /* A restart keeps every state (the sets are in the store). */
    reg_destroy(r);
    r = replica(&o, p);
    CHECK_INT(reg_lookup(r, &a1, &pl), RC_OK);
    CHECK_INT(pl.state, REG_STATE_DRAINING);
    CHECK(pl.since_ms > 0);
    CHECK_INT(reg_lookup(r, &a3, &pl), RC_OK);
    CHECK_INT(pl.state, REG_STATE_DRAINING);

    /* Registering a draining backend returns it to service. */
    CHECK_INT(op_wait(r, REG_OP_ADD, "10.40.0.3", &res), RC_OK);
    CHECK_INT(res.placement.state, REG_STATE_REGISTERED);
    CHECK_INT(res.created, 0);
    CHECK_INT(res.placement.weight, 2);
    expect_set(p, REG_KIND_DRAINING, 0, one);
    /* Deregistering a draining backend removes it from the store entirely. */
    CHECK_INT(dereg(r, "10.40.0.1"), RC_OK);
    expect_set(p, REG_KIND_DRAINING, -1, NULL);
    CHECK_INT(reg_lookup(r, &a1, &pl), RC_NOT_REGISTERED);
    /* Up from down. */
    CHECK_INT(op_wait(r, REG_OP_DOWN, "10.40.0.2", &res), RC_OK);
    CHECK_INT(op_wait(r, REG_OP_UP, "10.40.0.2", &res), RC_OK);
    CHECK_INT(res.placement.state, REG_STATE_REGISTERED);
    expect_set(p, REG_KIND_DOWN, -1, NULL);
    /* ENSURE registers an unknown address like ADD. */
    CHECK_INT(op_wait(r, REG_OP_ENSURE, "10.40.0.5", &res), RC_OK);
    CHECK_INT(res.placement.state, REG_STATE_REGISTERED);
    CHECK_INT(res.created, 1);
    CHECK_INT(dereg(r, "10.40.0.5"), RC_OK);
    /* Unknown addresses. */
    CHECK_INT(op_wait(r, REG_OP_DOWN, "10.40.0.9", &res), RC_NOT_REGISTERED);
    CHECK_INT(op_wait(r, REG_OP_DRAIN, "10.40.0.9", &res), RC_NOT_REGISTERED);
    CHECK(strstr(res.detail, "10.40.0.9") != NULL);
    /* The index and the snapshot agree with the store. */
    {
        struct reg_bucket_view *v;
        size_t n = reg_snapshot(r, &v);
        struct reg_stats st;
        CHECK_INT(n, 1);
        if (n) {
            CHECK_INT(v[0].rec.nvalues, 2);
            CHECK_INT(v[0].down.nvalues, 0);
            CHECK_INT(v[0].draining.nvalues, 0);
        }
        reg_views_free(v, n);
        reg_stats(r, &st);
        CHECK_INT(st.served, 2);
        CHECK_INT(st.down, 0);
        CHECK_INT(st.draining, 0);
    }
    reg_destroy(r);
    p->ops->destroy(p);
    unlink(path);
    rmdir(dir);
}

/* Another replica moves a backend to the down set behind this registry's back: this one's
 * next write to the bucket conflicts, re-reads every set (the backend vanished from the
 * served one) and follows the move instead of forgetting the backend. */
static void test_foreign_move(void)
{
    struct reg_options o = opts(1, 10, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_provider *p = NULL;
    struct reg_registry *r1, *r2;
    struct reg_result res;
    struct reg_placement pl;
    struct ip_addr a1 = ip("10.41.0.1");
    char detail[256];
    int created;
    static const char *const served[] = {"10.41.0.2", "10.41.0.3", NULL};
    static const char *const down[] = {"10.41.0.1", NULL};

    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    r1 = replica(&o, p);
    CHECK_INT(reg(r1, "10.41.0.1", &pl, &created), RC_OK);
    CHECK_INT(reg(r1, "10.41.0.2", &pl, &created), RC_OK);
    r2 = replica(&o, p);
    CHECK_INT(op_wait(r1, REG_OP_DOWN, "10.41.0.1", &res), RC_OK);
    CHECK_INT(reg(r2, "10.41.0.3", &pl, &created), RC_OK); /* conflict, adopt, retry */
    expect_set(p, REG_KIND_SERVED, 2, served);
    expect_set(p, REG_KIND_DOWN, 0, down);
    CHECK_INT(reg_lookup(r2, &a1, &pl), RC_OK);
    CHECK_INT(pl.state, REG_STATE_DOWN);
    /* r2 can still deregister it. */
    CHECK_INT(dereg(r2, "10.41.0.1"), RC_OK);
    expect_set(p, REG_KIND_DOWN, -1, NULL);
    reg_destroy(r1);
    reg_destroy(r2);
    p->ops->destroy(p);
}

/* Resync: a replica that never writes still follows another's registrations, moves and
 * removals, within a few maintainer passes. */
static void test_resync(void)
{
    struct reg_options o = opts(2, 10, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_provider *p = NULL;
    struct reg_registry *r1, *r2;
    struct reg_result res;
    struct reg_placement pl;
    struct ip_addr a = ip("10.42.0.1"), b = ip("10.42.0.2");
    char detail[256];
    int created, ok = 0;

    o.resync_ms = 1;
    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    r1 = replica(&o, p);
    r2 = replica(&o, p);
    CHECK_INT(reg(r1, "10.42.0.1", &pl, &created), RC_OK);
    CHECK_INT(reg(r1, "10.42.0.2", &pl, &created), RC_OK);
    CHECK_INT(op_wait(r1, REG_OP_DOWN, "10.42.0.1", &res), RC_OK);
    for (int i = 0; i < 100 && !ok; i++) { /* bounded: 10 s */
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        ok = reg_lookup(r2, &a, &pl) == RC_OK && pl.state == REG_STATE_DOWN &&
             reg_lookup(r2, &b, &pl) == RC_OK && pl.state == REG_STATE_REGISTERED;
    }
    CHECK(ok);
    CHECK_INT(dereg(r1, "10.42.0.2"), RC_OK);
    ok = 0;
    for (int i = 0; i < 100 && !ok; i++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        ok = reg_lookup(r2, &b, &pl) == RC_NOT_REGISTERED;
    }
    CHECK(ok);
    /* r2 can act on what it learnt: deregister the down one. */
    CHECK_INT(dereg(r2, "10.42.0.1"), RC_OK);

    /* A resync whose read predates a commit of this registry must not undo it: r2's store
     * reads now answer 300 ms late while it registers and deregisters. */
    atomic_store(&last_shared->load_delay_ms, 300);
    for (int i = 0; i < 8; i++) {
        char s[32];
        struct ip_addr c;
        snprintf(s, sizeof(s), "10.42.1.%d", i + 1);
        c = ip(s);
        CHECK_INT(reg(r2, s, &pl, &created), RC_OK);
        nanosleep(&(struct timespec){0, 150 * 1000 * 1000}, NULL);
        CHECK_INT(reg_lookup(r2, &c, &pl), RC_OK);
        CHECK_INT(dereg(r2, s), RC_OK);
        nanosleep(&(struct timespec){0, 150 * 1000 * 1000}, NULL);
        CHECK_INT(reg_lookup(r2, &c, &pl), RC_NOT_REGISTERED);
    }
    atomic_store(&last_shared->load_delay_ms, 0);
    reg_destroy(r1);
    reg_destroy(r2);
    p->ops->destroy(p);
}

/*
 * Group commit: mutations pending while a call is paced share calls. The burst is submitted
 * from one thread without waiting (reg_submit never blocks in group mode), so every mutation
 * is pending at once however slow the machine; threads would spread the arrivals over
 * seconds under a sanitizer and turn the count of calls into a measure of the scheduler.
 */
struct burst {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int left;
};

struct burst_job {
    struct burst *b;
    enum rc_code rc;
};

static void burst_done(void *arg, const struct reg_result *res)
{
    struct burst_job *j = arg;
    pthread_mutex_lock(&j->b->lock);
    j->rc = res->rc;
    j->b->left--;
    pthread_cond_signal(&j->b->cond);
    pthread_mutex_unlock(&j->b->lock);
}

static void run_burst(struct reg_registry *r, struct burst_job *jobs, int n)
{
    struct burst b = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, n};
    for (int i = 0; i < n; i++) {
        char s[32];
        struct ip_addr a;
        snprintf(s, sizeof(s), "10.20.%d.%d", i / 200, i % 200 + 1);
        a = ip(s);
        jobs[i].b = &b;
        jobs[i].rc = RC_INTERNAL;
        reg_submit(r, REG_OP_ADD, &a, burst_done, &jobs[i]);
    }
    pthread_mutex_lock(&b.lock);
    while (b.left)
        pthread_cond_wait(&b.cond, &b.lock);
    pthread_mutex_unlock(&b.lock);
}

static void test_group_commit_batches(void)
{
    struct reg_options o = opts(10, 100, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_provider *p = NULL;
    struct reg_registry *r;
    struct burst_job jobs[200];
    struct reg_stats st;
    struct shared *sp;
    char detail[256];
    int ok = 0;

    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    r = replica(&o, p);
    sp = last_shared;
    sp->pace_ms = 100; /* 10 calls/s */
    run_burst(r, jobs, 200);
    for (int i = 0; i < 200; i++)
        ok += jobs[i].rc == RC_OK;
    CHECK_INT(ok, 200);
    reg_stats(r, &st);
    printf("group commit: 200 registrations in %llu calls (%llu bucket changes)\n", st.batches,
           st.batched_changes);
    /* 200 mutations over 10 buckets while each call waits 100 ms: a handful of calls. */
    CHECK(st.batches <= 10);
    CHECK_INT(atomic_load(&sp->calls), st.batches);
    CHECK_INT(st.queued, 0);
    reg_destroy(r);
    p->ops->destroy(p);
}

/* One bad bucket change fails only its own mutations; the rest of the batch commits. */
static void test_group_commit_isolates_failures(void)
{
    struct reg_options o = opts(4, 100, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_provider *p = NULL;
    struct reg_registry *r;
    struct burst_job jobs[100];
    struct shared *sp;
    char detail[256];
    int ok = 0, refused = 0;

    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    r = replica(&o, p);
    sp = last_shared;
    sp->pace_ms = 20;
    sp->poison = 2;
    run_burst(r, jobs, 100);
    for (int i = 0; i < 100; i++) {
        ok += jobs[i].rc == RC_OK;
        refused += jobs[i].rc == RC_UPSTREAM;
    }
    /* Balanced placement sends about every 4th IP to bucket 2 (more when refusals free its
     * reservations while the burst is still arriving): exactly those fail, nothing else. */
    CHECK(refused >= 25);
    CHECK_INT(ok + refused, 100);
    {
        struct reg_record cur = {0};
        size_t stored_total = 0;
        stored(p, REG_A, 2, &cur);
        CHECK_INT(cur.nvalues, 0);
        reg_record_release(&cur);
        for (unsigned b = 0; b < 4; b++) {
            stored(p, REG_A, b, &cur);
            stored_total += cur.nvalues;
            reg_record_release(&cur);
        }
        CHECK_INT(stored_total, ok);
    }
    CHECK_INT(reg_free_capacity(r, REG_A), 400 - ok);
    reg_destroy(r);
    p->ops->destroy(p);
}

/*
 * A batch over many buckets meets a stale view of several of them. Replica B reads the empty
 * store; replica A then registers one address into each of buckets 0..4; B registers 20
 * addresses at once, one into each of its 20 buckets, in one batch. The store names the five
 * sets that changed underneath, so B re-reads exactly those five buckets, sends the other 15
 * at once and the five after adopting A's addresses: 3 calls. Halving the batch until each
 * stale bucket is alone costs at least 9 refused calls. misname: the store names a set that is
 * in no batch, and the committer falls back to halving (every registration still lands).
 */
static void run_stale_batch(int misname, int *applies, int *reloads)
{
    struct reg_options o = opts(20, 10, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_provider *p = NULL;
    struct reg_registry *a, *b;
    struct burst_job jobs[20];
    struct reg_placement pl;
    struct shared *sp;
    char detail[256];
    size_t stored_total = 0;
    int created, ok = 0;

    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    reg_provider_memory_options(p, &o);
    b = replica(&o, p);
    sp = last_shared;
    a = replica(&o, p);
    for (int i = 0; i < 5; i++) {
        char s[32];
        snprintf(s, sizeof(s), "10.70.0.%d", i + 1);
        CHECK_INT(reg(a, s, &pl, &created), RC_OK);
        CHECK_INT(pl.bucket, i);
    }
    atomic_store(&sp->calls, 0);
    atomic_store(&sp->reloads, 0);
    atomic_store(&sp->misname, misname);
    sp->pace_ms = 200; /* the burst gathers into one batch */
    run_burst(b, jobs, 20);
    for (int i = 0; i < 20; i++)
        ok += jobs[i].rc == RC_OK;
    CHECK_INT(ok, 20);
    *applies = atomic_load(&sp->calls);
    *reloads = atomic_load(&sp->reloads);
    for (unsigned k = 0; k < 20; k++) {
        struct reg_record cur = {0};
        stored(p, REG_A, k, &cur);
        CHECK_INT(cur.nvalues, k < 5 ? 2 : 1);
        stored_total += cur.nvalues;
        reg_record_release(&cur);
    }
    CHECK_INT(stored_total, 25);
    for (int i = 0; i < 5; i++) {
        char s[32];
        struct ip_addr x;
        snprintf(s, sizeof(s), "10.70.0.%d", i + 1);
        x = ip(s);
        CHECK_INT(reg_lookup(b, &x, &pl), RC_OK); /* B adopted A's addresses */
    }
    reg_destroy(a);
    reg_destroy(b);
    p->ops->destroy(p);
}

static void test_conflict_rereads_named_buckets(void)
{
    int applies = 0, reloads = 0;

    run_stale_batch(0, &applies, &reloads);
    printf("stale view of 5 of 20 buckets: %d store calls, %d reloads\n", applies, reloads);
    CHECK(applies <= 3);
    CHECK_INT(reloads, 5); /* the served set of each named bucket, nothing else */
    run_stale_batch(1, &applies, &reloads);
    printf("the same, the store naming a set in no batch: %d store calls (halving)\n", applies);
    CHECK(applies >= 10);
}

/* ---- review: bugs found (each test fails on the code as reviewed) ----------------------- */

/* Run fn in a child process (created before it starts any thread), so a crash is reported as
 * a failed check instead of ending the test run. Returns 1 when fn returned normally. */
static int survives(void (*fn)(void), const char *what)
{
    int status = 0;
    pid_t pid;
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid == 0) {
        alarm(30);
        fn();
        _exit(0);
    }
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "%s: the child died (%s %d)\n", what,
                WIFSIGNALED(status) ? "signal" : "exit status",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        return 0;
    }
    return 1;
}

/*
 * A conflict re-reads the sets its batch touched, and the others too when another writer
 * moved an address between them: also INTO a touched set from one not re-read, or the
 * registry would keep the address in two sets of one bucket (the other set stale). Replica r1
 * takes 10.43.0.1 down, r2 loads, r1 brings it back up, r2 registers 10.43.0.3 (a
 * served-set-only batch: conflict; the served set gained .1, which r2's down set holds).
 */
static void dup_setup(struct reg_provider **pp, struct reg_registry **r1, struct reg_registry **r2)
{
    struct reg_options o = opts(1, 10, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_result res;
    struct reg_placement pl;
    char detail[256];
    int created;

    CHECK_INT(reg_provider_memory_create(NULL, pp, detail, sizeof(detail)), RC_OK);
    *r1 = replica(&o, *pp);
    CHECK_INT(reg(*r1, "10.43.0.1", &pl, &created), RC_OK);
    CHECK_INT(reg(*r1, "10.43.0.2", &pl, &created), RC_OK);
    CHECK_INT(op_wait(*r1, REG_OP_DOWN, "10.43.0.1", &res), RC_OK);
    *r2 = replica(&o, *pp);                                       /* sees served {.2}, down {.1} */
    CHECK_INT(op_wait(*r1, REG_OP_UP, "10.43.0.1", &res), RC_OK); /* store: served {.1,.2} */
    CHECK_INT(reg(*r2, "10.43.0.3", &pl, &created), RC_OK);       /* conflict on served, adopt */
}

static void test_partial_reload_leaves_duplicate(void)
{
    struct reg_provider *p;
    struct reg_registry *r1, *r2;
    struct reg_bucket_view *v;
    struct reg_result res;
    size_t n;

    dup_setup(&p, &r1, &r2);
    expect_set(p, REG_KIND_DOWN, -1, NULL); /* the store has no down set */
    n = reg_snapshot(r2, &v);
    CHECK_INT(n, 1);
    if (n) /* r2 knows 10.43.0.1 left the down set (it is served only) */
        CHECK_INT(v[0].down.nvalues, 0);
    reg_views_free(v, n);
    /* r2's checker finds it failing: the DOWN moves it. */
    CHECK_INT(op_wait(r2, REG_OP_DOWN, "10.43.0.1", &res), RC_OK);
    CHECK_INT(res.placement.state, REG_STATE_DOWN);
    reg_destroy(r1);
    reg_destroy(r2);
    p->ops->destroy(p);
}

/* ... and a move into the stale set then overruns a buffer: record_with() adds an address the
 * set already holds (find_value() >= 0, so `at` = (size_t)-1 and memcpy of ~2^64 bytes).
 * Whatever the sets hold, a move leaves the address in exactly one set. */
static void dup_crash_child(void)
{
    struct reg_provider *p;
    struct reg_registry *r1, *r2;
    struct reg_result res;
    dup_setup(&p, &r1, &r2);
    op_wait(r2, REG_OP_UP, "10.43.0.1", &res);   /* no-op: index now says served */
    op_wait(r2, REG_OP_DOWN, "10.43.0.1", &res); /* served -> down, down already holds it */
}

/* The same crash from a store that holds one address in two sets of a bucket at load time
 * (a console edit, the old script): load keeps both sets and indexes the first. */
static void load_dup_crash_child(void)
{
    struct reg_options o = opts(1, 10, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_provider *p = NULL;
    struct reg_registry *r;
    struct reg_result res;
    struct ip_addr v1[1] = {ip("10.44.0.1")}, v2[1] = {ip("10.44.0.1")};
    struct reg_record served = {REG_A, REG_KIND_SERVED, 0, 1, 60, 1, v1, 0},
                      down = {REG_A, REG_KIND_DOWN, 0, 0, 60, 1, v2, 0};
    struct reg_change c[2] = {{NULL, &served}, {NULL, &down}};
    char detail[256];

    reg_provider_memory_create(NULL, &p, detail, sizeof(detail));
    p->ops->apply(p, c, 2, NULL, NULL, detail, sizeof(detail));
    r = replica(&o, p);
    op_wait(r, REG_OP_DOWN, "10.44.0.1", &res);
    {
        struct reg_record cur = {0};
        p->ops->reload(p, REG_A, REG_KIND_DOWN, 0, &cur, detail, sizeof(detail));
        if (cur.nvalues != 1) { /* the down set was written with the address twice */
            fprintf(stderr, "down set written with %zu values\n", cur.nvalues);
            _exit(3);
        }
    }
}

static void test_duplicate_crashes(void)
{
    CHECK(survives(dup_crash_child, "move after a partial reload"));
    CHECK(survives(load_dup_crash_child, "move of an address loaded in two sets"));
}

/*
 * A provider passing every call to inner, with optional hooks (NULL: pass through) and
 * counters; the test providers below embed it first. apply can be slowed down (slow_ms).
 */
struct wrap {
    struct reg_provider base;
    struct reg_provider *inner;
    enum rc_code (*load)(struct wrap *w, struct reg_record **recs, size_t *n, char *d, size_t dn);
    enum rc_code (*apply)(struct wrap *w, const struct reg_change *c, size_t n, char *id, char *d,
                          size_t dn);
    void (*before_reload)(struct wrap *w);
    int own_inner; /* destroy inner with it */
    atomic_uint slow_ms;
    atomic_int applies, reloads;
};
static enum rc_code wrap_load(struct reg_provider *p, struct reg_record **recs, size_t *n, char *d,
                              size_t dn)
{
    struct wrap *w = (struct wrap *)p;
    return w->load ? w->load(w, recs, n, d, dn) : w->inner->ops->load(w->inner, recs, n, d, dn);
}
static enum rc_code wrap_apply(struct reg_provider *p, const struct reg_change *c, size_t n,
                               char *id, struct reg_conflicts *cf, char *d, size_t dn)
{
    struct wrap *w = (struct wrap *)p;
    unsigned ms = atomic_load(&w->slow_ms);
    atomic_fetch_add(&w->applies, 1);
    if (ms)
        nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000}, NULL);
    reg_conflicts_clear(cf); /* a hook names no set */
    return w->apply ? w->apply(w, c, n, id, d, dn)
                    : w->inner->ops->apply(w->inner, c, n, id, cf, d, dn);
}
static enum rc_code wrap_reload(struct reg_provider *p, enum reg_type t, enum reg_kind k,
                                unsigned b, struct reg_record *out, char *d, size_t dn)
{
    struct wrap *w = (struct wrap *)p;
    atomic_fetch_add(&w->reloads, 1);
    if (w->before_reload)
        w->before_reload(w);
    return w->inner->ops->reload(w->inner, t, k, b, out, d, dn);
}
static void wrap_destroy(struct reg_provider *p)
{
    struct wrap *w = (struct wrap *)p;
    if (w->own_inner)
        w->inner->ops->destroy(w->inner);
    free(w);
}
static const struct reg_provider_ops wrap_ops = {
    .name = "wrap",
    .load = wrap_load,
    .apply = wrap_apply,
    .reload = wrap_reload,
    .change_status = s_status,
    .ready = f_ready,
    .destroy = wrap_destroy,
};

/* Make w (the first member of a calloc'd test provider) wrap inner. */
static struct reg_provider *wrap_init(struct wrap *w, struct reg_provider *inner)
{
    w->base.ops = &wrap_ops;
    w->inner = inner;
    return &w->base;
}

/*
 * resync() leaves alone a bucket whose group-mode batch is in flight (drained, applied by the
 * store, not yet settled). Another replica writes the bucket right after our call; a resync
 * that adopted that listing would be undone by settle_ok() installing the batch's `next` over
 * it, and the index would keep the adopted address PRESENT though no committed set holds it
 * (GET 404, DELETE 200 leaving it in the store, POST recursing without end through
 * answer_as_is). Fixed: the bucket is skipped while the batch is in flight, and a later resync
 * adopts the other replica's address.
 */
struct racy {
    struct wrap w;
    atomic_int armed, adopted_in_flight;
};
static struct reg_registry *racy_reg;
static enum rc_code racy_apply(struct wrap *w, const struct reg_change *c, size_t n, char *id,
                               char *d, size_t dn)
{
    struct racy *rp = (struct racy *)w;
    enum rc_code rc = w->inner->ops->apply(w->inner, c, n, id, NULL, d, dn);
    if (rc == RC_OK && atomic_exchange(&rp->armed, 0)) {
        /* Another replica registers 10.45.0.9 in the same bucket right after our call. */
        struct reg_record cur = {0}, next;
        struct ip_addr z = ip("10.45.0.9");
        struct reg_placement pl;
        char det[256];
        w->inner->ops->reload(w->inner, REG_A, REG_KIND_SERVED, 0, &cur, det, sizeof(det));
        reg_record_copy(&next, &cur);
        next.values = realloc(next.values, (next.nvalues + 1) * sizeof(*next.values));
        next.values[next.nvalues++] = z; /* sorts last: 10.45.0.9 > 10.45.0.1/2 */
        next.weight = (unsigned)next.nvalues;
        {
            struct reg_change ch = {&cur, &next};
            CHECK_INT(w->inner->ops->apply(w->inner, &ch, 1, NULL, NULL, det, sizeof(det)), RC_OK);
        }
        reg_record_release(&cur);
        reg_record_release(&next);
        /* Resyncs run every millisecond meanwhile (the registry holds no lock during apply):
         * none may adopt this bucket while the batch is in flight. */
        nanosleep(&(struct timespec){0, 300 * 1000 * 1000}, NULL);
        atomic_store(&rp->adopted_in_flight, reg_lookup(racy_reg, &z, &pl) == RC_OK);
    }
    return rc;
}

static void resync_race_setup(struct reg_provider **inner, struct racy **rpp,
                              struct reg_registry **rr)
{
    struct reg_options o = opts(1, 10, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct racy *rp = calloc(1, sizeof(*rp));
    struct reg_placement pl;
    char detail[256];
    int created;

    o.commit = REG_COMMIT_GROUP;
    o.resync_ms = 1;
    CHECK_INT(reg_provider_memory_create(NULL, inner, detail, sizeof(detail)), RC_OK);
    rp->w.apply = racy_apply;
    *rr = racy_reg = reg_create(&o, wrap_init(&rp->w, *inner));
    CHECK_INT(reg_load(*rr, detail, sizeof(detail)), RC_OK);
    CHECK_INT(reg(*rr, "10.45.0.1", &pl, &created), RC_OK);
    atomic_store(&rp->armed, 1);
    CHECK_INT(reg(*rr, "10.45.0.2", &pl, &created), RC_OK);
    *rpp = rp;
}

static void test_resync_during_batch(void)
{
    struct reg_provider *inner;
    struct racy *rp;
    struct reg_registry *r;
    struct reg_placement pl;
    struct reg_stats st;
    struct reg_bucket_view *v;
    struct reg_record cur = {0};
    struct ip_addr z = ip("10.45.0.9");
    size_t n;
    int i;

    resync_race_setup(&inner, &rp, &r);
    CHECK_INT(atomic_load(&rp->adopted_in_flight), 0);
    stored(inner, REG_A, 0, &cur);
    CHECK_INT(cur.nvalues, 3); /* .1 .2 .9 */
    reg_record_release(&cur);
    /* A resync after the batch settled adopts the other replica's address. */
    for (i = 0; i < 200 && reg_lookup(r, &z, &pl) != RC_OK; i++)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    CHECK_INT(reg_lookup(r, &z, &pl), RC_OK);
    /* The index counts what the committed sets hold. */
    reg_stats(r, &st);
    n = reg_snapshot(r, &v);
    CHECK_INT(n, 1);
    if (n) {
        CHECK_INT(v[0].rec.nvalues, 3);
        CHECK_INT(st.served, v[0].rec.nvalues);
    }
    reg_views_free(v, n);
    /* DELETE takes it out of the store. */
    CHECK_INT(dereg(r, "10.45.0.9"), RC_OK);
    stored(inner, REG_A, 0, &cur);
    CHECK_INT(cur.nvalues, 2);
    reg_record_release(&cur);
    reg_destroy(r);
    inner->ops->destroy(inner);
}

static void resync_race_post_child(void)
{
    struct reg_provider *inner;
    struct racy *rp;
    struct reg_registry *r;
    struct reg_placement pl;
    int created;
    resync_race_setup(&inner, &rp, &r);
    reg(r, "10.45.0.9", &pl, &created); /* must answer, never recurse without end */
    reg_destroy(r);
    inner->ops->destroy(inner);
}

static void test_resync_race_post_recurses(void)
{
    CHECK(survives(resync_race_post_child, "POST after the resync race"));
}

/*
 * reg_heartbeat() and reg_set_lease() accept a backend whose move (DOWN/UP/DRAIN, undrain)
 * is queued or in flight: it is registered whatever the move's outcome (reg_lookup() says so
 * too). Refusing it answered a heartbeat 404 and dropped a POST's lease_seconds.
 */
static void test_heartbeat_during_move(void)
{
    struct reg_options o = opts(1, 10, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_provider *p = NULL;
    struct reg_registry *r;
    struct reg_placement pl;
    struct ip_addr a = ip("10.46.0.1");
    struct box w;
    char detail[256];
    int created;

    o.commit = REG_COMMIT_GROUP;
    o.default_lease = 600;
    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    r = replica(&o, p);
    CHECK_INT(reg(r, "10.46.0.1", &pl, &created), RC_OK);
    last_shared->pace_ms = 300; /* the next call waits for the rate limit */
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    reg_submit(r, REG_OP_DRAIN, &a, box_done, &w);
    CHECK_INT(reg_lookup(r, &a, &pl), RC_OK);    /* registered ... */
    CHECK_INT(reg_heartbeat(r, &a, &pl), RC_OK); /* ... but its heartbeat is refused */
    CHECK_INT(reg_set_lease(r, &a, 60, &pl), RC_OK);
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    CHECK_INT(w.res.rc, RC_OK);
    reg_destroy(r);
    p->ops->destroy(p);
}

/*
 * Route 53 provider: rt_apply() builds each DELETE from its wire cache, which rt_load() (every
 * resync) refreshes for every bucket, also for one resync() declines to adopt because it
 * committed while the listing was in flight. The cached record must be the caller's `old`, or
 * the write is a conflict: else the registry's next write to that bucket would DELETE what
 * Route 53 holds and CREATE a record built from its stale view, silently removing another
 * replica's acknowledged registration. (A reload_and_adopt() whose second reload fails leaves
 * the same state.)
 * Run: test_registry route53 PATH/r53emu
 */
/* Wraps the Route 53 provider; when armed, its next load() first lets the registry commit
 * 10.47.0.3 (bucket 0's change counter moves while the "listing is in flight"), then another
 * replica (other) registers 10.47.0.2, then it lists. Later loads fail (no repairing resync). */
struct r53wrap {
    struct wrap base;
    struct reg_provider *other;
    struct reg_registry *reg;
    atomic_int armed, done;
};
static enum rc_code w_load(struct wrap *wp, struct reg_record **recs, size_t *n, char *d, size_t dn)
{
    struct r53wrap *w = (struct r53wrap *)wp;
    if (atomic_load(&w->done)) {
        snprintf(d, dn, "blocked by the test");
        return RC_UNAVAILABLE;
    }
    if (atomic_exchange(&w->armed, 0)) {
        struct reg_record cur = {0}, next;
        struct reg_placement pl;
        struct ip_addr b = ip("10.47.0.2");
        enum rc_code rc;
        int created;
        CHECK_INT(reg(w->reg, "10.47.0.3", &pl, &created), RC_OK);
        CHECK_INT(w->other->ops->reload(w->other, REG_A, REG_KIND_SERVED, 0, &cur, d, dn), RC_OK);
        reg_record_copy(&next, &cur); /* {.1, .3} */
        next.values = realloc(next.values, 3 * sizeof(*next.values));
        next.values[2] = next.values[1];
        next.values[1] = b;
        next.nvalues = 3;
        next.weight = 3;
        {
            struct reg_change ch = {&cur, &next};
            CHECK_INT(w->other->ops->apply(w->other, &ch, 1, NULL, NULL, d, dn), RC_OK);
        }
        reg_record_release(&cur);
        reg_record_release(&next);
        rc = wp->inner->ops->load(wp->inner, recs, n, d, dn);
        atomic_store(&w->done, 1);
        return rc;
    }
    return wp->inner->ops->load(wp->inner, recs, n, d, dn);
}

static void test_route53_stale_wire(const char *emu_exe)
{
    struct reg_options o = opts(1, 10, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct r53wrap *w = calloc(1, sizeof(*w));
    struct reg_provider *other;
    struct reg_registry *r;
    struct reg_placement pl;
    struct reg_record cur = {0};
    struct emu e;
    char detail[256], txt[IP_TEXT_MAX];
    int created;

    if (emu_start(emu_exe, &e)) {
        CHECK(0);
        return;
    }
    o.commit = REG_COMMIT_GROUP;
    o.resync_ms = 1;
    w->base.load = w_load;
    w->base.own_inner = 1;
    other = emu_route53(&e, &o);
    w->other = other;
    r = w->reg = reg_create(&o, wrap_init(&w->base, emu_route53(&e, &o)));
    CHECK_INT(reg_load(r, detail, sizeof(detail)), RC_OK);
    CHECK_INT(reg(r, "10.47.0.1", &pl, &created), RC_OK);
    atomic_store(&w->armed, 1);
    for (int i = 0; i < 200 && !atomic_load(&w->done); i++)
        nanosleep(&(struct timespec){0, 25 * 1000 * 1000}, NULL);
    CHECK(atomic_load(&w->done));
    /* The zone holds .1 .2 .3; this registry knows .1 .3 (it skipped the resync). Deregister
     * .1: its compare-and-swap must fail on the unknown .2 and adopt it, never drop it. */
    CHECK_INT(dereg(r, "10.47.0.1"), RC_OK);
    CHECK_INT(other->ops->reload(other, REG_A, REG_KIND_SERVED, 0, &cur, detail, sizeof(detail)),
              RC_OK);
    CHECK_INT(cur.nvalues, 2); /* .2 (the other replica's, acknowledged) and .3 */
    for (size_t i = 0; i < cur.nvalues; i++)
        fprintf(stderr, "zone after the delete: %s\n", ip_format(&cur.values[i], txt));
    reg_record_release(&cur);
    reg_destroy(r);
    other->ops->destroy(other);
    CHECK(emu_stop(&e));
}

/*
 * The fail-open guard (--max-down-share) also covers an undrain: an ADD of a draining backend
 * whose checks fail goes to the down set only when the guard allows one more down; else it
 * returns to service and the reconciler holds it there. A checker on the wrong side of a
 * partition sees everything down; a rolling deploy (drain, update, POST again) must not move
 * every held backend into the down set one by one until DNS serves nothing.
 */
static void test_undrain_bypasses_fail_open(void)
{
    struct reg_options o = opts(1, 10, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_provider *p = NULL;
    struct reg_registry *r;
    struct hc_options ho;
    struct hc_engine *eng;
    struct reg_placement pl;
    struct reg_result res;
    struct reg_stats st;
    static const char *const ips[] = {"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"};
    char detail[256];
    int created, settled = 0;

    o.max_down_share = 0.5;
    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    r = reg_create(&o, p);
    memset(&ho, 0, sizeof(ho));
    ho.defaults.kind = HC_TCP;
    ho.defaults.port = 9;
    ho.defaults.interval_ms = 60000; /* no verdict of its own within the test */
    ho.defaults.timeout_ms = 1000;
    ho.on_change = reg_health_changed;
    ho.arg = r;
    eng = hc_engine_create(&ho);
    CHECK(eng != NULL);
    reg_set_checker(r, eng, 1, &ho.defaults);
    CHECK_INT(reg_load(r, detail, sizeof(detail)), RC_OK);
    for (int i = 0; i < 4; i++)
        CHECK_INT(reg(r, ips[i], &pl, &created), RC_OK);
    /* The partition: every check fails. The guard keeps two of four served. */
    for (int i = 0; i < 4; i++) {
        struct ip_addr a = ip(ips[i]);
        reg_health_changed(r, &a, 0, "timeout");
    }
    for (int i = 0; i < 100 && !settled; i++) {
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
        reg_stats(r, &st);
        settled = st.down == 2 && st.held == 2 && st.served == 2;
    }
    CHECK(settled);
    /* A rolling deploy drains and re-registers the served ones. */
    for (int i = 0; i < 4; i++) {
        struct ip_addr a = ip(ips[i]);
        if (reg_lookup(r, &a, &pl) != RC_OK || pl.state != REG_STATE_REGISTERED)
            continue;
        CHECK_INT(op_wait(r, REG_OP_DRAIN, ips[i], &res), RC_OK);
        CHECK_INT(op_wait(r, REG_OP_ADD, ips[i], &res), RC_OK);
    }
    nanosleep(&(struct timespec){0, 300 * 1000 * 1000}, NULL);
    reg_stats(r, &st);
    CHECK_INT(st.served, 2); /* the guard's share: DNS must not empty */
    {
        struct reg_record cur = {0};
        stored(p, REG_A, 0, &cur);
        CHECK(cur.nvalues > 0);
        reg_record_release(&cur);
    }
    reg_destroy(r);
}

/*
 * Leases with replicas: an address adopted from another writer (resync, conflict) gets no
 * lease of --default-lease. Leases live in each replica's memory and a heartbeat reaches only
 * the replica that serves it, so a replica that adopted a live, heartbeating backend must not
 * deregister it when its own copy of the lease runs out.
 */
static void test_resync_adopted_lease_expires(void)
{
    struct reg_options o = opts(1, 10, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_provider *p = NULL;
    struct reg_registry *r1, *r2;
    struct reg_placement pl;
    struct ip_addr a = ip("10.49.0.1");
    struct reg_record cur = {0};
    char detail[256];
    int created;

    o.default_lease = 1;
    o.resync_ms = 1;
    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    r1 = replica(&o, p);
    r2 = replica(&o, p);
    CHECK_INT(reg(r1, "10.49.0.1", &pl, &created), RC_OK);
    /* The backend heartbeats (through r1) every 200 ms for 3 s. */
    for (int i = 0; i < 15; i++) {
        nanosleep(&(struct timespec){0, 200 * 1000 * 1000}, NULL);
        CHECK_INT(reg_heartbeat(r1, &a, &pl), RC_OK);
    }
    stored(p, REG_A, 0, &cur);
    CHECK_INT(cur.nvalues, 1); /* still registered */
    reg_record_release(&cur);
    reg_destroy(r1);
    reg_destroy(r2);
    p->ops->destroy(p);
}

/* A bucket that another writer filled (adopted on the conflict it causes) refuses a new
 * registration placed in it before: never more than --max-per-bucket values, in both modes;
 * the registration is placed again, and with no other bucket it is refused as full. */
static void test_filled_by_another_writer(void)
{
    struct reg_options o = opts(1, 3, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_provider *p = NULL;
    struct reg_registry *r;
    struct reg_placement pl;
    struct reg_record cur = {0};
    struct ip_addr late = ip("10.0.7.4");
    char detail[256];
    int created;

    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    r = replica(&o, p);
    CHECK_INT(reg(r, "10.0.7.1", &pl, &created), RC_OK);
    /* Another writer adds two: the bucket is full (3), this registry believes it holds 1. */
    {
        static const char *const full[] = {"10.0.7.1", "10.0.7.2", "10.0.7.3"};
        put_set(p, 0, full, 3, o.ttl);
    }

    CHECK_INT(reg(r, "10.0.7.4", &pl, &created), RC_BUCKETS_FULL);
    stored(p, REG_A, 0, &cur);
    CHECK_INT(cur.nvalues, 3);
    reg_record_release(&cur);
    CHECK_INT(reg_lookup(r, &late, &pl), RC_NOT_REGISTERED);
    CHECK_INT(reg_free_capacity(r, REG_A), 0);
    /* Room again: it fits. */
    CHECK_INT(dereg(r, "10.0.7.2"), RC_OK);
    CHECK_INT(reg(r, "10.0.7.4", &pl, &created), RC_OK);
    stored(p, REG_A, 0, &cur);
    CHECK_INT(cur.nvalues, 3);
    reg_record_release(&cur);
    reg_destroy(r);
    p->ops->destroy(p);
}

static void count_confirm(void *arg, enum rc_code rc, const char *detail)
{
    (void)detail;
    CHECK_INT(rc, RC_OK);
    atomic_fetch_add((atomic_int *)arg, 1);
}

/*
 * Two replicas of one store: an IP the second does not know (the first registered it after the
 * second loaded) is not answered "not registered" from its index. A DELETE through the second
 * reads the store first and removes it; a lookup after reg_confirm finds it. Without
 * confirm_ms the index answers, as for the embedded store's only writer.
 */
static void test_confirm_unknown(void)
{
    struct reg_options o = opts(2, 10, REG_BUCKETING_ORDERED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_provider *p = NULL;
    struct reg_registry *r1, *r2;
    struct reg_placement pl;
    struct reg_record cur = {0};
    struct ip_addr x = ip("10.0.10.1"), y = ip("10.0.10.2");
    atomic_int calls = 0;
    char detail[256];
    int created;

    o.confirm_ms = 50;
    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    r1 = replica(&o, p);
    r2 = replica(&o, p);
    CHECK_INT(reg(r1, "10.0.10.1", &pl, &created), RC_OK);
    CHECK_INT(reg(r1, "10.0.10.2", &pl, &created), RC_OK);
    CHECK_INT(reg_lookup(r2, &y, &pl), RC_NOT_REGISTERED); /* the index alone: stale */
    CHECK_INT(reg_confirm(r2, count_confirm, &calls), RC_OK);
    for (int i = 0; i < 500 && !atomic_load(&calls); i++)
        usleep(10000);
    CHECK_INT(atomic_load(&calls), 1);
    CHECK_INT(reg_lookup(r2, &y, &pl), RC_OK);
    /* x: a DELETE through the replica that did not place it. */
    CHECK_INT(reg_deregister(r2, &x, &pl, detail, sizeof(detail)), RC_OK);
    stored(p, REG_A, 0, &cur);
    CHECK_INT(cur.nvalues, 1);
    reg_record_release(&cur);
    /* Truly unknown: "not registered" after the read. */
    CHECK_INT(dereg(r2, "10.0.10.9"), RC_NOT_REGISTERED);
    reg_destroy(r1);
    reg_destroy(r2);
    p->ops->destroy(p);

    /* confirm_ms 0: the only writer; its index is the store. */
    o.confirm_ms = 0;
    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    r1 = replica(&o, p);
    CHECK_INT(reg_confirm(r1, count_confirm, &calls), RC_NOT_REGISTERED);
    CHECK_INT(dereg(r1, "10.0.10.9"), RC_NOT_REGISTERED);
    reg_destroy(r1);
    p->ops->destroy(p);
}

/* How many sets of type A, any bucket, hold addr. */
static int copies(struct reg_provider *p, const char *addr)
{
    struct ip_addr a = ip(addr);
    int n = 0;
    for (unsigned b = 0; b < REG_MAX_BUCKETS; b++)
        for (int k = 0; k < REG_KINDS; k++) {
            struct reg_record cur = {0};
            stored_kind(p, (enum reg_kind)k, b, &cur);
            for (size_t i = 0; i < cur.nvalues; i++)
                n += !ip_cmp(&cur.values[i], &a);
            reg_record_release(&cur);
        }
    return n;
}

/*
 * An IP in two buckets (two replicas placed it with different views, or an older zone): a
 * DELETE removes every copy; one that stays registered loses its second copy to the
 * maintainer's repair, which keeps the first.
 */
static void test_second_copies(void)
{
    struct reg_options o = opts(3, 10, REG_BUCKETING_ORDERED, REG_WEIGHTS_PROPORTIONAL);
    static const char *const b0[] = {"10.0.11.1", "10.0.11.2"}, *const b1[] = {"10.0.11.1",
                                                                                 "10.0.11.2"};
    struct reg_provider *p = NULL;
    struct reg_registry *r;
    char detail[256];

    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    put_set(p, 0, b0, 2, o.ttl);
    put_set(p, 1, b1, 2, o.ttl);
    r = replica(&o, p);
    CHECK_INT(dereg(r, "10.0.11.1"), RC_OK);
    CHECK_INT(copies(p, "10.0.11.1"), 0);
    for (int i = 0; i < 300 && copies(p, "10.0.11.2") != 1; i++)
        usleep(10000);
    CHECK_INT(copies(p, "10.0.11.2"), 1);
    {
        struct reg_placement pl;
        struct ip_addr y = ip("10.0.11.2");
        CHECK_INT(reg_lookup(r, &y, &pl), RC_OK);
        CHECK_INT(pl.bucket, 0);
    }
    CHECK_INT(reg_free_capacity(r, REG_A), 3 * 10 - 1); /* the removed copies free their room */
    reg_destroy(r);
    p->ops->destroy(p);
}

/*
 * Many second copies (two replicas filled buckets with different views): the strays of one
 * bucket are repaired together, one batch per bucket that holds them (at most three buckets of
 * kept copies per batch), not one call per copy; every kept copy stays.
 */
static void test_second_copies_batched(void)
{
    struct reg_options o = opts(5, 20, REG_BUCKETING_ORDERED, REG_WEIGHTS_PROPORTIONAL);
    char keep0[10][16], keep1[10][16], keep2[10][16];
    const char *k0[10], *k1[10], *k2[10], *strays[20];
    struct reg_provider *p = NULL;
    struct reg_registry *r;
    char detail[256];
    int left = -1;

    for (int i = 0; i < 10; i++) {
        snprintf(keep0[i], sizeof(keep0[i]), "10.0.13.%d", i + 1);
        snprintf(keep1[i], sizeof(keep1[i]), "10.0.14.%d", i + 1);
        snprintf(keep2[i], sizeof(keep2[i]), "10.0.15.%d", i + 1);
        k0[i] = keep0[i];
        k1[i] = keep1[i];
        k2[i] = keep2[i];
        strays[i] = keep0[i];      /* bucket 3: copies of bucket 0's ten */
        strays[10 + i] = keep1[i]; /* and of bucket 1's ten */
    }
    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    put_set(p, 0, k0, 10, o.ttl);
    put_set(p, 1, k1, 10, o.ttl);
    put_set(p, 2, k2, 10, o.ttl);
    put_set(p, 3, strays, 20, o.ttl);
    put_set(p, 4, k2, 10, o.ttl); /* bucket 4: copies of bucket 2's ten */
    r = replica(&o, p);
    for (int i = 0; i < 300 && left; i++) {
        left = 0;
        for (int j = 0; j < 10; j++)
            left += (copies(p, k0[j]) - 1) + (copies(p, k1[j]) - 1) + (copies(p, k2[j]) - 1);
        if (left)
            usleep(10000);
    }
    CHECK_INT(left, 0);
    CHECK_INT(atomic_load(&last_shared->calls), 2); /* bucket 3's twenty, bucket 4's ten */
    for (int j = 0; j < 10; j++) {
        struct reg_placement pl;
        struct ip_addr a = ip(k0[j]), b = ip(k1[j]), c = ip(k2[j]);
        CHECK_INT(reg_lookup(r, &a, &pl), RC_OK);
        CHECK_INT(pl.bucket, 0);
        CHECK_INT(reg_lookup(r, &b, &pl), RC_OK);
        CHECK_INT(pl.bucket, 1);
        CHECK_INT(reg_lookup(r, &c, &pl), RC_OK);
        CHECK_INT(pl.bucket, 2);
    }
    reg_destroy(r);
    p->ops->destroy(p);
}

/*
 * The repair of a second copy must not trust a stale view of the copy it keeps: here the
 * replica still sees the IP in bucket 0, but another writer removed it from there and it lives
 * only in bucket 1. The repair's batch carries bucket 0 as read, so the store refuses it and
 * the one copy left stays.
 */
static void test_second_copy_stale_keeper(void)
{
    struct reg_options o = opts(3, 10, REG_BUCKETING_ORDERED, REG_WEIGHTS_PROPORTIONAL);
    static const char *const both[] = {"10.0.12.1"}, *const other[] = {"10.0.12.9"};
    struct reg_provider *p = NULL;
    struct reg_registry *r;
    char detail[256];

    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    put_set(p, 0, both, 1, o.ttl);
    put_set(p, 1, both, 1, o.ttl);
    /* Bucket 1 refuses every batch at first: the repair fails and waits. */
    r = replica_poisoned(&o, p, 1);
    usleep(600 * 1000);
    CHECK_INT(copies(p, "10.0.12.1"), 2);
    put_set(p, 0, other, 1, o.ttl); /* another writer: bucket 0 no longer holds it */
    atomic_store(&last_shared->poison, -1);
    usleep(6500 * 1000); /* past the repair's retry */
    CHECK_INT(copies(p, "10.0.12.1"), 1);
    reg_destroy(r);
    p->ops->destroy(p);
}

/* A registration placed in a bucket that another writer filled meanwhile is placed again, in
 * the next bucket with room, instead of failing (ordered placement on a stale view). */
static void test_replaced_when_filled(void)
{
    struct reg_options o = opts(2, 3, REG_BUCKETING_ORDERED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_provider *p = NULL;
    struct reg_registry *r;
    struct reg_placement pl;
    struct reg_record cur = {0};
    char detail[256];
    int created;

    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    r = replica(&o, p);
    CHECK_INT(reg(r, "10.0.9.1", &pl, &created), RC_OK);
    {
        static const char *const full[] = {"10.0.9.1", "10.0.9.2", "10.0.9.3"};
        put_set(p, 0, full, 3, o.ttl);
    }
    CHECK_INT(reg(r, "10.0.9.4", &pl, &created), RC_OK);
    CHECK_INT(pl.bucket, 1);
    CHECK_INT(created, 1);
    stored(p, REG_A, 0, &cur);
    CHECK_INT(cur.nvalues, 3);
    reg_record_release(&cur);
    stored(p, REG_A, 1, &cur);
    CHECK_INT(cur.nvalues, 1);
    reg_record_release(&cur);
    reg_destroy(r);
    p->ops->destroy(p);
}

/*
 * The compare-and-swap conflict path re-reads the bucket from the store with no lock held:
 * while that read is under way (Route 53: rate-limited calls), GET /buckets (reg_snapshot)
 * and lookups of the same bucket answer at once. The read here waits until the test has
 * read the bucket, or 3 s; a read that had to wait for it fails the test without hanging it.
 */
struct gated {
    struct wrap w;
    atomic_int armed, entered, left, released;
};
static void gated_reload(struct wrap *w)
{
    struct gated *g = (struct gated *)w;
    if (!atomic_load(&g->armed))
        return;
    atomic_store(&g->entered, 1);
    for (int i = 0; i < 300 && !atomic_load(&g->released); i++)
        nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
    atomic_store(&g->left, 1);
}
struct gated_job {
    struct reg_registry *r;
    enum rc_code rc;
};
static void *gated_register(void *arg)
{
    struct gated_job *j = arg;
    struct reg_placement pl;
    int created;
    j->rc = reg(j->r, "10.0.8.3", &pl, &created);
    return NULL;
}
static void test_read_not_blocked_by_reread(void)
{
    struct reg_options o = opts(1, 10, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct gated *g = calloc(1, sizeof(*g));
    struct reg_provider *inner = NULL;
    struct reg_registry *r;
    struct reg_bucket_view *views = NULL;
    struct reg_placement pl;
    struct reg_record cur = {0};
    struct ip_addr first = ip("10.0.8.1");
    struct gated_job job;
    pthread_t t;
    char detail[256];
    int created, unblocked = 0;
    size_t nviews = 0;

    CHECK_INT(reg_provider_memory_create(NULL, &inner, detail, sizeof(detail)), RC_OK);
    wrap_init(&g->w, inner);
    g->w.own_inner = 1;
    g->w.before_reload = gated_reload;
    r = reg_create(&o, &g->w.base);
    CHECK_INT(reg_load(r, detail, sizeof(detail)), RC_OK);
    CHECK_INT(reg(r, "10.0.8.1", &pl, &created), RC_OK);
    /* Another writer adds 10.0.8.2: our next write to the bucket conflicts. */
    {
        static const char *const two[] = {"10.0.8.1", "10.0.8.2"};
        put_set(inner, 0, two, 2, o.ttl);
    }

    atomic_store(&g->armed, 1);
    job.r = r;
    job.rc = RC_INTERNAL;
    pthread_create(&t, NULL, gated_register, &job);
    for (int i = 0; i < 500 && !atomic_load(&g->entered); i++)
        nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
    CHECK(atomic_load(&g->entered));
    nviews = reg_snapshot(r, &views);
    CHECK_INT(reg_lookup(r, &first, &pl), RC_OK);
    unblocked = !atomic_load(&g->left);
    atomic_store(&g->released, 1);
    pthread_join(t, NULL);
    CHECK(unblocked); /* the reads did not wait for the store */
    CHECK_INT(nviews, 1);
    CHECK_INT(job.rc, RC_OK);
    reg_views_free(views, nviews);
    /* The re-read was adopted: all three are registered, in one bucket. */
    stored(inner, REG_A, 0, &cur);
    CHECK_INT(cur.nvalues, 3);
    reg_record_release(&cur);
    reg_destroy(r);
}

/*
 * One TTL per weighted group: a zone written with TTL 300 (the old script) is adopted by a
 * registry started with --ttl 60, which then writes with 300 (another TTL would be refused).
 * Two replicas with different --ttl on an empty zone: the second learns the first's TTL from
 * the refusal and its registration succeeds.
 */
static void test_group_ttl(void)
{
    struct reg_options o = opts(4, 10, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    static const char *const old[] = {"10.0.9.1", "10.0.9.5"};
    struct reg_provider *p = NULL;
    struct reg_registry *r, *r2;
    struct reg_placement pl;
    struct reg_record cur = {0};
    char detail[256];
    int created;

    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    put_set(p, 0, old, 2, 300);
    o.ttl = 60;
    r = replica(&o, p);
    CHECK_INT(reg_ttl(r, REG_A), 300);
    CHECK_INT(reg(r, "10.0.9.2", &pl, &created), RC_OK);
    CHECK_INT(pl.bucket, 1);
    stored(p, REG_A, 1, &cur);
    CHECK_INT(cur.ttl, 300);
    reg_record_release(&cur);
    CHECK_INT(dereg(r, "10.0.9.1"), RC_OK); /* a rewrite of the adopted set keeps 300 too */
    stored(p, REG_A, 0, &cur);
    CHECK_INT(cur.ttl, 300);
    CHECK_INT(cur.weight, 1);
    reg_record_release(&cur);
    reg_destroy(r);
    p->ops->destroy(p);

    /* Two replicas, --ttl 60 and --ttl 300, modulo placement so they write different sets. */
    o = opts(2, 10, REG_BUCKETING_MODULO, REG_WEIGHTS_PROPORTIONAL);
    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    o.ttl = 60;
    r = replica(&o, p);
    o.ttl = 300;
    r2 = replica(&o, p);
    CHECK_INT(reg(r, "10.0.9.2", &pl, &created), RC_OK);  /* bucket 0, TTL 60 */
    CHECK_INT(reg(r2, "10.0.9.3", &pl, &created), RC_OK); /* bucket 1: learns 60 */
    CHECK_INT(pl.bucket, 1);
    CHECK_INT(reg_ttl(r2, REG_A), 60);
    stored(p, REG_A, 1, &cur);
    CHECK_INT(cur.ttl, 60);
    CHECK_INT(cur.nvalues, 1);
    reg_record_release(&cur);
    reg_destroy(r);
    reg_destroy(r2);
    p->ops->destroy(p);
}

/* Every stored set of p (both types, every kind) has TTL ttl; returns how many there are. */
static size_t stored_with_ttl(struct reg_provider *p, unsigned ttl)
{
    struct reg_record *recs = NULL;
    size_t n = 0, sets = 0;
    char detail[256];
    CHECK_INT(p->ops->load(p, &recs, &n, detail, sizeof(detail)), RC_OK);
    for (size_t i = 0; i < n; i++) {
        if (recs[i].nvalues) {
            CHECK_INT(recs[i].ttl, ttl);
            sets++;
        }
        reg_record_release(&recs[i]);
    }
    free(recs);
    return sets;
}

/*
 * reg_set_ttl moves every weighted group whole (the store refuses a set with another TTL than
 * its group's): served and draining sets alike, later writes follow; a group whose rewrite
 * cannot fit one call (over 500 values: 1,000 elements) is refused with the reason and
 * nothing is written.
 */
static void test_set_ttl(void)
{
    struct reg_options o = opts(4, 400, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_ttl_group g[2 * REG_KINDS];
    struct reg_provider *p = NULL;
    struct reg_registry *r;
    struct reg_placement pl;
    struct reg_result res;
    char detail[512], s[32];
    size_t ng = 0;
    int created;

    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    o.ttl = 60;
    r = replica(&o, p);
    for (int i = 1; i <= 6; i++) {
        snprintf(s, sizeof(s), "10.0.10.%d", i);
        CHECK_INT(reg(r, s, &pl, &created), RC_OK);
    }
    CHECK_INT(reg(r, "2001:db8::10", &pl, &created), RC_OK);
    CHECK_INT(op_wait(r, REG_OP_DRAIN, "10.0.10.6", &res), RC_OK);
    CHECK_INT(stored_with_ttl(p, 60), 6); /* four A sets, one draining, one AAAA */

    CHECK_INT(reg_set_ttl(r, 300, g, &ng, detail, sizeof(detail)), RC_OK);
    CHECK_INT(ng, 2 * REG_KINDS);
    CHECK_INT(g[REG_KIND_SERVED].type, REG_A);
    CHECK_INT(g[REG_KIND_SERVED].sets, 4);
    CHECK_INT(g[REG_KIND_SERVED].values, 5);
    CHECK_INT(g[REG_KIND_SERVED].from, 60);
    CHECK_INT(g[REG_KIND_SERVED].to, 300);
    CHECK(g[REG_KIND_SERVED].change_id[0] != '\0');
    CHECK_INT(g[REG_KIND_DRAINING].sets, 1);
    CHECK_INT(g[REG_KINDS + REG_KIND_SERVED].sets, 1);
    CHECK_INT(g[REG_KIND_DOWN].sets, 0);
    CHECK_INT(stored_with_ttl(p, 300), 6);
    CHECK_INT(reg_ttl(r, REG_A), 300);
    CHECK_INT(reg(r, "10.0.10.7", &pl, &created), RC_OK);
    CHECK_INT(dereg(r, "10.0.10.1"), RC_OK);
    CHECK_INT(reg(r, "2001:db8::11", &pl, &created), RC_OK); /* a second AAAA set */
    CHECK_INT(stored_with_ttl(p, 300), 7);
    /* Again: nothing to write. */
    CHECK_INT(reg_set_ttl(r, 300, g, &ng, detail, sizeof(detail)), RC_OK);
    CHECK_STR(g[REG_KIND_SERVED].change_id, "");
    reg_destroy(r);
    p->ops->destroy(p);

    /* 501 values in the served A group: 1,002 elements, more than one call holds. */
    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    r = replica(&o, p);
    for (int i = 0; i < 501; i++) {
        snprintf(s, sizeof(s), "10.0.%d.%d", 20 + i / 200, i % 200 + 1);
        CHECK_INT(reg(r, s, &pl, &created), RC_OK);
    }
    detail[0] = '\0';
    CHECK_INT(reg_set_ttl(r, 300, g, &ng, detail, sizeof(detail)), RC_GROUP_TOO_LARGE);
    CHECK(strstr(detail, "501 values") != NULL);
    CHECK(strstr(detail, "one atomic call") != NULL);
    CHECK_INT(stored_with_ttl(p, 60), 4);
    CHECK_INT(reg_ttl(r, REG_A), 60);
    CHECK_INT(reg(r, "10.0.30.1", &pl, &created), RC_OK); /* nothing stuck */
    reg_destroy(r);
    p->ops->destroy(p);
}

/* A resync whose listing was read before a TTL change must not teach the old TTL back: the
 * change stays, and later writes of the group keep the new TTL. */
static void test_set_ttl_vs_stale_resync(void)
{
    struct reg_options o = opts(4, 10, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_ttl_group g[2 * REG_KINDS];
    struct reg_provider *p = NULL;
    struct reg_registry *r;
    struct reg_placement pl;
    char detail[512];
    size_t ng;
    int created;

    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    o.ttl = 60;
    o.resync_ms = 1;
    r = replica(&o, p);
    CHECK_INT(reg(r, "10.0.11.1", &pl, &created), RC_OK);
    atomic_store(&last_shared->load_delay_ms, 400); /* each listing is 400 ms stale */
    {
        /* Wait for a listing that read the store after the delay was set. */
        int seen = atomic_load(&last_shared->loads);
        for (int i = 0; i < 300 && atomic_load(&last_shared->loads) < seen + 2; i++)
            nanosleep(&(struct timespec){0, 5 * 1000000L}, NULL);
    }
    CHECK_INT(reg_set_ttl(r, 300, g, &ng, detail, sizeof(detail)), RC_OK);
    /* That listing, read before the change, ends within 400 ms; the next fresh one cannot
     * end before 800 ms. */
    nanosleep(&(struct timespec){0, 550 * 1000000L}, NULL);
    CHECK_INT(reg_ttl(r, REG_A), 300);
    nanosleep(&(struct timespec){0, 600 * 1000000L}, NULL);
    CHECK_INT(reg_ttl(r, REG_A), 300);
    CHECK_INT(reg(r, "10.0.11.2", &pl, &created), RC_OK);
    CHECK_INT(reg(r, "10.0.11.3", &pl, &created), RC_OK);
    atomic_store(&last_shared->load_delay_ms, 0);
    CHECK_INT(stored_with_ttl(p, 300), 3);
    reg_destroy(r);
    p->ops->destroy(p);
}

/* PUT /ttl on a replica that has not seen a set another replica created: the refusal makes it
 * read the zone, adopt that set and move it too, instead of blaming an unmanaged set. */
static void test_set_ttl_unseen_set(void)
{
    struct reg_options o = opts(2, 10, REG_BUCKETING_MODULO, REG_WEIGHTS_PROPORTIONAL);
    struct reg_ttl_group g[2 * REG_KINDS];
    struct reg_provider *p = NULL;
    struct reg_registry *r1, *r2;
    struct reg_placement pl;
    char detail[512];
    size_t ng;
    int created;

    CHECK_INT(reg_provider_memory_create(NULL, &p, detail, sizeof(detail)), RC_OK);
    r1 = replica(&o, p);
    r2 = replica(&o, p);
    CHECK_INT(reg(r1, "10.0.12.2", &pl, &created), RC_OK); /* bucket 0 */
    CHECK_INT(reg(r2, "10.0.12.3", &pl, &created), RC_OK); /* bucket 1, unseen by r1 */
    CHECK_INT(reg_set_ttl(r1, 300, g, &ng, detail, sizeof(detail)), RC_OK);
    CHECK_INT(stored_with_ttl(p, 300), 2);
    CHECK_INT(reg_ttl(r1, REG_A), 300);
    reg_destroy(r1);
    reg_destroy(r2);
    p->ops->destroy(p);
}

/* A pass-through provider whose apply can be slowed down and counts its calls. */
struct slow {
    struct wrap w;
};

/*
 * The lease reaper marks every expired entry lease_expiring, then submits the removals; in
 * immediate mode 16 of them (one per immediate-mode thread) are admitted and made at once (300 ms a call, one
 * writer per bucket), the others wait in the queue. A backend whose removal has not been
 * admitted yet is saved by a heartbeat, and one that registers again meanwhile (POST answered
 * 200, a new lease accepted) must not be deregistered by the stale removal: an expiry is
 * carried out only if the lease is still expired when its turn comes.
 */
static void test_expiry_spares_reregistration(void)
{
    enum { N = 24 }; /* more than the 16 immediate-mode threads */
    struct reg_options o = opts(4, 10, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    char ips[N][16];
    struct slow *sp = calloc(1, sizeof(*sp));
    struct reg_provider *inner = NULL;
    struct reg_registry *r;
    struct reg_placement pl;
    char detail[256];
    const char *posted = NULL, *beat = NULL;
    int created, gone = 0;

    for (int i = 0; i < N; i++)
        snprintf(ips[i], sizeof(ips[i]), "10.60.0.%d", i + 1);
    o.commit = REG_COMMIT_IMMEDIATE;
    o.default_lease = 1;
    CHECK_INT(reg_provider_memory_create(NULL, &inner, detail, sizeof(detail)), RC_OK);
    r = reg_create(&o, wrap_init(&sp->w, inner));
    CHECK_INT(reg_load(r, detail, sizeof(detail)), RC_OK);
    for (int i = 0; i < N; i++)
        CHECK_INT(reg(r, ips[i], &pl, &created), RC_OK);
    atomic_store(&sp->w.slow_ms, 300); /* Route 53 at 5 calls/s is slower than this */
    /* No heartbeat while the leases run: at 1.25 s the reaper has marked them all and the
     * first removals are being made, 300 ms each. */
    nanosleep(&(struct timespec){1, 400 * 1000 * 1000}, NULL);
    /* One still waiting for its removal: a sign of life saves it (a lease change here, not a
     * heartbeat, so that it outlives the re-registration below, which waits for removals). */
    for (int i = N - 1; i >= 0; i--) {
        struct ip_addr a = ip(ips[i]);
        if (reg_set_lease(r, &a, 600, &pl) == RC_OK) {
            beat = ips[i];
            break;
        }
    }
    for (int i = 0; i < N && !posted; i++) { /* another: it registers again, with a lease */
        struct ip_addr a = ip(ips[i]);
        if (ips[i] != beat && reg_lookup(r, &a, &pl) == RC_OK)
            posted = ips[i];
    }
    CHECK(beat != NULL);
    CHECK(posted != NULL);
    if (posted) {
        struct ip_addr a = ip(posted);
        CHECK_INT(reg(r, posted, &pl, &created), RC_OK);
        CHECK_INT(reg_set_lease(r, &a, 600, &pl), RC_OK);
    }
    /* Every other expiry goes through (the reaper's list is done)... */
    for (int round = 0; round < 100 && gone < N - 2; round++) {
        gone = 0;
        for (int i = 0; i < N; i++) {
            struct ip_addr a = ip(ips[i]);
            if (ips[i] != beat && ips[i] != posted)
                gone += reg_lookup(r, &a, &pl) == RC_NOT_REGISTERED;
        }
        if (gone < N - 2)
            nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
    }
    CHECK_INT(gone, N - 2);
    /* ...but not these two: a heartbeat is answered only for a registered backend. */
    if (beat) {
        struct ip_addr a = ip(beat);
        CHECK_INT(reg_heartbeat(r, &a, &pl), RC_OK);
    }
    if (posted) {
        struct ip_addr a = ip(posted);
        CHECK_INT(reg_lookup(r, &a, &pl), RC_OK);
    }
    atomic_store(&sp->w.slow_ms, 0);
    reg_destroy(r);
    inner->ops->destroy(inner);
}

/*
 * A replica whose checker has no default check (check_all 0: no --check, per-registration
 * checks only; main.c always creates the engine) adopts another replica's DOWN move and
 * follows it without writing: nothing checks the backend here, so nothing here moves it back.
 */
static struct reg_registry *checked_replica(struct reg_options *o, struct reg_provider *inner,
                                            int check_all, struct slow **out)
{
    struct slow *sp = calloc(1, sizeof(*sp));
    struct hc_options ho;
    struct hc_engine *eng;
    struct reg_registry *r;
    char detail[256];
    r = reg_create(o, wrap_init(&sp->w, inner));
    memset(&ho, 0, sizeof(ho));
    ho.defaults.kind = check_all ? HC_TCP : HC_KIND_INHERIT;
    ho.defaults.port = 9;
    ho.defaults.interval_ms = 60000;
    ho.defaults.timeout_ms = 1000;
    ho.on_change = reg_health_changed;
    ho.arg = r;
    eng = hc_engine_create(&ho);
    CHECK(eng != NULL);
    reg_set_checker(r, eng, check_all, &ho.defaults);
    CHECK_INT(reg_load(r, detail, sizeof(detail)), RC_OK);
    *out = sp;
    return r;
}

static void test_unchecked_replica_keeps_down(void)
{
    struct reg_options o = opts(1, 10, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_provider *inner = NULL;
    struct reg_registry *r1, *r2;
    struct slow *s1, *s2;
    struct reg_placement pl;
    struct ip_addr a = ip("127.0.0.61");
    static const char *const x[] = {"127.0.0.61", NULL};
    char detail[256];
    int created, down = 0;

    o.commit = REG_COMMIT_GROUP;
    o.resync_ms = 50;
    o.max_down_share = 1;
    CHECK_INT(reg_provider_memory_create(NULL, &inner, detail, sizeof(detail)), RC_OK);
    r1 = checked_replica(&o, inner, 1, &s1);
    r2 = checked_replica(&o, inner, 0, &s2);
    CHECK_INT(reg(r1, "127.0.0.61", &pl, &created), RC_OK);
    for (int i = 0; i < 300 && reg_lookup(r2, &a, &pl) != RC_OK; i++)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL); /* r2 adopts it */
    CHECK_INT(reg_lookup(r2, &a, &pl), RC_OK);
    reg_health_changed(r1, &a, 0, "refused"); /* r1's checker: down */
    for (int i = 0; i < 100 && !down; i++) {
        struct reg_record cur = {0};
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
        stored_kind(inner, REG_KIND_DOWN, 0, &cur);
        down = cur.nvalues == 1;
        reg_record_release(&cur);
    }
    CHECK(down);
    nanosleep(&(struct timespec){1, 0}, NULL); /* r2 resyncs ~20 times */
    CHECK_INT(atomic_load(&s2->w.applies), 0); /* r2 never writes */
    reg_destroy(r2);
    reg_destroy(r1);
    expect_set(inner, REG_KIND_SERVED, -1, NULL);
    expect_set(inner, REG_KIND_DOWN, 0, x);
    inner->ops->destroy(inner);
}

/*
 * rt_load lists the three names one after another (rate limited: >= 200 ms apart). Another
 * writer's UP (down -> served) between the served listing and the down listing leaves the
 * address in neither; resync must not drop the registered backend (with its lease and check)
 * on that listing alone: it re-reads the bucket first. The wrapper's load models that listing.
 */
struct skew {
    struct wrap w;
    atomic_int armed, frozen;
};
static enum rc_code sk_load(struct wrap *w, struct reg_record **recs, size_t *n, char *d, size_t dn)
{
    struct skew *sp = (struct skew *)w;
    struct reg_record *a = NULL, *b = NULL, *out;
    size_t na = 0, nb = 0, k = 0;
    enum rc_code rc;
    if (atomic_load(&sp->frozen)) {
        snprintf(d, dn, "frozen");
        return RC_UNAVAILABLE;
    }
    if (!atomic_exchange(&sp->armed, 0))
        return w->inner->ops->load(w->inner, recs, n, d, dn);
    rc = w->inner->ops->load(w->inner, &a, &na, d, dn); /* the served listing */
    { /* another replica's UP of 10.61.0.1: down {x} -> none, served {y} -> {x, y} */
        struct reg_record sold = {0}, dold = {0}, snew;
        struct reg_change ch[2];
        struct ip_addr xa = ip("10.61.0.1");
        w->inner->ops->reload(w->inner, REG_A, REG_KIND_SERVED, 0, &sold, d, dn);
        w->inner->ops->reload(w->inner, REG_A, REG_KIND_DOWN, 0, &dold, d, dn);
        reg_record_copy(&snew, &sold);
        snew.values = realloc(snew.values, (snew.nvalues + 1) * sizeof(*snew.values));
        snew.values[snew.nvalues++] = xa;
        if (ip_cmp(&snew.values[0], &snew.values[1]) > 0) {
            struct ip_addr t = snew.values[0];
            snew.values[0] = snew.values[1];
            snew.values[1] = t;
        }
        snew.weight = (unsigned)snew.nvalues;
        ch[0] = (struct reg_change){&sold, &snew};
        ch[1] = (struct reg_change){&dold, NULL};
        CHECK_INT(w->inner->ops->apply(w->inner, ch, 2, NULL, NULL, d, dn), RC_OK);
        reg_record_release(&sold);
        reg_record_release(&dold);
        reg_record_release(&snew);
    }
    rc = rc ? rc : w->inner->ops->load(w->inner, &b, &nb, d, dn); /* down, draining */
    out = calloc(na + nb + 1, sizeof(*out));
    for (size_t i = 0; i < na; i++)
        if (a[i].kind == REG_KIND_SERVED)
            out[k++] = a[i];
        else
            reg_record_release(&a[i]);
    for (size_t i = 0; i < nb; i++)
        if (b[i].kind != REG_KIND_SERVED)
            out[k++] = b[i];
        else
            reg_record_release(&b[i]);
    free(a);
    free(b);
    *recs = out;
    *n = k;
    atomic_store(&sp->frozen, 1); /* no later resync repairs it within the test */
    return rc;
}

static void test_resync_listing_skew(void)
{
    struct reg_options o = opts(1, 10, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct skew *sp = calloc(1, sizeof(*sp));
    struct reg_provider *inner = NULL;
    struct reg_registry *r;
    struct reg_placement pl;
    struct reg_result res;
    struct ip_addr xa = ip("10.61.0.1");
    char detail[256];
    int created;

    o.resync_ms = 1;
    CHECK_INT(reg_provider_memory_create(NULL, &inner, detail, sizeof(detail)), RC_OK);
    sp->w.load = sk_load;
    r = reg_create(&o, wrap_init(&sp->w, inner));
    CHECK_INT(reg_load(r, detail, sizeof(detail)), RC_OK);
    CHECK_INT(reg(r, "10.61.0.1", &pl, &created), RC_OK);
    CHECK_INT(reg(r, "10.61.0.2", &pl, &created), RC_OK);
    CHECK_INT(reg_set_lease(r, &xa, 600, &pl), RC_OK);
    CHECK_INT(op_wait(r, REG_OP_DOWN, "10.61.0.1", &res), RC_OK);
    atomic_store(&sp->armed, 1);
    for (int i = 0; i < 200 && !atomic_load(&sp->frozen); i++)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
    /* The store serves 10.61.0.1; this replica no longer knows it. */
    CHECK_INT(reg_lookup(r, &xa, &pl), RC_OK);
    CHECK_INT(reg_heartbeat(r, &xa, &pl), RC_OK); /* with its lease */
    reg_destroy(r);
    inner->ops->destroy(inner);
}

/* A provider that counts reload() calls (a bucket's set read again). */
struct cnt {
    struct wrap w;
};

static void wait_lookup(struct reg_registry *r, const char *addr, enum rc_code want)
{
    struct ip_addr a = ip(addr);
    struct reg_placement pl;
    for (int i = 0; i < 300 && reg_lookup(r, &a, &pl) != want; i++)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    CHECK_INT(reg_lookup(r, &a, &pl), want);
}

/* What resync reads beyond its listing when another writer removed an address: nothing for a
 * served one (no move can hide an address that left the first set read); one more ordered
 * read of the bucket (three sets) for a down one (a down -> served move could hide it). */
static void test_resync_removal_cost(void)
{
    struct reg_options o = opts(1, 10, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct cnt *cp = calloc(1, sizeof(*cp));
    struct reg_provider *inner = NULL;
    struct reg_registry *r1, *r2;
    struct reg_placement pl;
    struct reg_result res;
    char d[256];
    int cr, before;

    o.commit = REG_COMMIT_GROUP;
    CHECK_INT(reg_provider_memory_create(NULL, &inner, d, sizeof(d)), RC_OK);
    r1 = replica(&o, inner);
    o.resync_ms = 20;
    r2 = reg_create(&o, wrap_init(&cp->w, inner));
    CHECK_INT(reg_load(r2, d, sizeof(d)), RC_OK);
    CHECK_INT(reg(r1, "10.70.0.1", &pl, &cr), RC_OK);
    CHECK_INT(reg(r1, "10.70.0.2", &pl, &cr), RC_OK);
    wait_lookup(r2, "10.70.0.2", RC_OK);
    before = atomic_load(&cp->w.reloads);
    CHECK_INT(dereg(r1, "10.70.0.1"), RC_OK);
    wait_lookup(r2, "10.70.0.1", RC_NOT_REGISTERED);
    CHECK_INT(atomic_load(&cp->w.reloads) - before, 0);
    CHECK_INT(op_wait(r1, REG_OP_DOWN, "10.70.0.2", &res), RC_OK);
    for (int i = 0; i < 300; i++) {
        struct ip_addr a = ip("10.70.0.2");
        if (reg_lookup(r2, &a, &pl) == RC_OK && pl.state == REG_STATE_DOWN)
            break;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    CHECK_INT(pl.state, REG_STATE_DOWN);
    before = atomic_load(&cp->w.reloads);
    CHECK_INT(dereg(r1, "10.70.0.2"), RC_OK);
    wait_lookup(r2, "10.70.0.2", RC_NOT_REGISTERED);
    CHECK_INT(atomic_load(&cp->w.reloads) - before, 3);
    reg_destroy(r2);
    reg_destroy(r1);
    inner->ops->destroy(inner);
}

/* A backend the store keeps down that nothing checks any more (r53reg restarted without the
 * check that took it down) is returned to service, unlike one another replica takes down while
 * this one runs (test_unchecked_replica_keeps_down). */
static void test_unchecked_down_returns(void)
{
    struct reg_options o = opts(1, 10, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_provider *inner = NULL;
    struct reg_registry *r1, *r2;
    struct slow *s1, *s2;
    struct reg_placement pl;
    struct ip_addr a = ip("127.0.0.62");
    static const char *const x[] = {"127.0.0.62", NULL};
    char d[256];
    int cr, down = 0;

    o.commit = REG_COMMIT_GROUP;
    o.max_down_share = 1;
    CHECK_INT(reg_provider_memory_create(NULL, &inner, d, sizeof(d)), RC_OK);
    r1 = checked_replica(&o, inner, 1, &s1);
    CHECK_INT(reg(r1, "127.0.0.62", &pl, &cr), RC_OK);
    reg_health_changed(r1, &a, 0, "refused");
    for (int i = 0; i < 100 && !down; i++) {
        struct reg_record c = {0};
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
        stored_kind(inner, REG_KIND_DOWN, 0, &c);
        down = c.nvalues == 1;
        reg_record_release(&c);
    }
    CHECK(down);
    reg_destroy(r1); /* restart without --check */
    r2 = checked_replica(&o, inner, 0, &s2);
    for (int i = 0; i < 100; i++) {
        if (reg_lookup(r2, &a, &pl) == RC_OK && pl.state == REG_STATE_REGISTERED)
            break;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    expect_set(inner, REG_KIND_SERVED, 1, x);
    expect_set(inner, REG_KIND_DOWN, -1, NULL);
    reg_destroy(r2);
    inner->ops->destroy(inner);
}

/* A provider whose next apply, when armed, lands and is then reported as timed out (Route 53
 * applied the change, the answer was lost and the client's retries ran out). */
struct lost {
    struct wrap w;
    atomic_int armed;
};
static enum rc_code l_apply(struct wrap *w, const struct reg_change *ch, size_t n, char *id,
                            char *d, size_t dn)
{
    struct lost *l = (struct lost *)w;
    enum rc_code rc = w->inner->ops->apply(w->inner, ch, n, id, NULL, d, dn);
    if (rc == RC_OK && atomic_exchange(&l->armed, 0)) {
        snprintf(d, dn, "timed out (the test: applied all the same)");
        return RC_UPSTREAM_TIMEOUT;
    }
    return rc;
}

static struct reg_registry *lost_registry(struct reg_options *o, struct reg_provider **inner,
                                          struct lost **lp)
{
    struct reg_registry *r;
    char d[256];
    *lp = calloc(1, sizeof(**lp));
    CHECK_INT(reg_provider_memory_create(NULL, inner, d, sizeof(d)), RC_OK);
    (*lp)->w.apply = l_apply;
    r = reg_create(o, wrap_init(&(*lp)->w, *inner));
    CHECK_INT(reg_load(r, d, sizeof(d)), RC_OK);
    return r;
}


/* A registration answered 504 that Route 53 applied all the same, then retried by the client
 * after the buckets shifted: the retry goes to the bucket of the first attempt and meets it
 * there, so the address is never placed twice (a DELETE would remove only one copy). */
static void test_retry_after_lost_answer(void)
{
    struct reg_options o = opts(2, 10, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_provider *inner;
    struct lost *lp;
    struct reg_registry *r = lost_registry(&o, &inner, &lp);
    struct reg_placement pl;
    int created;

    CHECK_INT(reg(r, "10.71.0.9", &pl, &created), RC_OK); /* bucket 0 */
    atomic_store(&lp->armed, 1);
    CHECK_INT(reg(r, "10.71.0.1", &pl, &created), RC_UPSTREAM_TIMEOUT); /* landed in 1 */
    CHECK_INT(dereg(r, "10.71.0.9"), RC_OK); /* bucket 0 empty: the least filled, lowest */
    CHECK_INT(reg(r, "10.71.0.1", &pl, &created), RC_OK);
    CHECK_INT(pl.bucket, 1);
    CHECK_INT(copies(inner, "10.71.0.1"), 1);
    CHECK_INT(dereg(r, "10.71.0.1"), RC_OK);
    CHECK_INT(copies(inner, "10.71.0.1"), 0);
    reg_destroy(r);
    inner->ops->destroy(inner);
}

/* ... and one never retried is adopted (resync) with --default-lease: it expires like any
 * registration of this replica's, instead of staying in DNS until a restart. */
static void test_lost_answer_gets_lease(void)
{
    struct reg_options o = opts(1, 10, REG_BUCKETING_BALANCED, REG_WEIGHTS_PROPORTIONAL);
    struct reg_provider *inner;
    struct lost *lp;
    struct reg_registry *r;
    struct reg_placement pl;
    int created;

    o.default_lease = 1;
    o.resync_ms = 20;
    r = lost_registry(&o, &inner, &lp);
    atomic_store(&lp->armed, 1);
    CHECK_INT(reg(r, "10.72.0.1", &pl, &created), RC_UPSTREAM_TIMEOUT);
    CHECK_INT(copies(inner, "10.72.0.1"), 1); /* it landed */
    wait_lookup(r, "10.72.0.1", RC_OK);       /* adopted by a resync ... */
    {
        struct ip_addr a = ip("10.72.0.1");
        if (reg_lookup(r, &a, &pl) == RC_OK)
            CHECK_INT(pl.lease_seconds, 1); /* ... with the default lease */
    }
    for (int i = 0; i < 300 && copies(inner, "10.72.0.1"); i++)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    CHECK_INT(copies(inner, "10.72.0.1"), 0); /* its lease ran out */
    reg_destroy(r);
    inner->ops->destroy(inner);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "route53")) {
        commit_mode = REG_COMMIT_GROUP;
        test_route53_stale_wire(argv[2]);
        return check_done("test_registry route53");
    }
    for (int m = 0; m < 2; m++) {
        commit_mode = m ? REG_COMMIT_IMMEDIATE : REG_COMMIT_GROUP;
        printf("commit mode: %s\n", m ? "immediate" : "group");
        test_balanced();
        test_ordered();
        test_modulo();
        test_weights();
        test_snapshot_and_empty_bucket();
        test_provider_failure_rolls_back();
        test_memory_cas();
        test_journal();
        test_journal_compaction();
        test_foreign_edits();
        test_two_replicas();
        test_leases();
        test_states();
        test_foreign_move();
        test_resync();
        test_partial_reload_leaves_duplicate();
        test_filled_by_another_writer();
        test_replaced_when_filled();
        test_confirm_unknown();
        test_second_copies();
        test_second_copies_batched();
        test_second_copy_stale_keeper();
        test_read_not_blocked_by_reread();
        test_group_ttl();
        test_set_ttl();
        test_set_ttl_unseen_set();
    }
    commit_mode = REG_COMMIT_GROUP;
    test_set_ttl_vs_stale_resync();
    test_duplicate_crashes(); /* immediate mode (the last set) */
    commit_mode = REG_COMMIT_GROUP;
    test_group_commit_batches();
    test_group_commit_isolates_failures();
    test_conflict_rereads_named_buckets();
    test_duplicate_crashes();
    test_resync_during_batch();
    test_resync_race_post_recurses();
    test_heartbeat_during_move();
    test_undrain_bypasses_fail_open();
    test_resync_adopted_lease_expires();
    test_expiry_spares_reregistration(); /* immediate mode: removals on its threads */
    test_unchecked_replica_keeps_down();
    test_resync_listing_skew();
    test_resync_removal_cost();
    test_unchecked_down_returns();
    test_lost_answer_gets_lease();
    for (int m = 0; m < 2; m++) {
        commit_mode = m ? REG_COMMIT_IMMEDIATE : REG_COMMIT_GROUP;
        test_retry_after_lost_answer();
    }
    return check_done("test_registry");
}
