/*
 * test_concurrency.c: many client threads against the server at once, on purpose crowded onto
 * few buckets. Every answer must be exactly what a serial execution of each thread's own
 * requests predicts, and the final state, both as served and as reloaded from the store's
 * journal, must be exactly what was acknowledged. Built and run under ThreadSanitizer too
 * (integration.concurrency.tsan).
 *
 * Phases:
 *  1. churn: 16 threads, each owning 25 IPs (400 = the whole capacity of 8 buckets x 50),
 *     register/deregister in rounds on keep-alive connections; expected codes are exact.
 *  2. duplicates: 16 threads POST the same IP at the same instant: exactly one 201; then
 *     DELETE it at once: exactly one 200, the rest 404.
 *  3. overflow: 16 threads x 5 IPs race for 20 slots: exactly 20 are placed, 60 get 409, no
 *     bucket exceeds its capacity.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "registry/provider.h"

#define THREADS 16
#define PER_THREAD 25
#define ROUNDS 4

static struct harness h;
static pthread_barrier_t barrier;
static atomic_int bad_answers;

struct worker {
    int id;
    int registered[PER_THREAD];
    long codes[THREADS * 8]; /* phase 2/3 answers */
    int ncodes;
};

static void ip_of(int thread, int i, char *out, size_t n)
{
    snprintf(out, n, "127.1.%d.%d", thread, i + 1);
}

static void expect(long got, long want, const char *method, const char *ip)
{
    if (got != want) {
        fprintf(stderr, "%s %s: got %ld, want %ld\n", method, ip, got, want);
        atomic_fetch_add(&bad_answers, 1);
    }
}

static void *churn(void *arg)
{
    struct worker *w = arg;
    void *curl = NULL;
    char ip[32], path[64];
    struct http_reply r;

    pthread_barrier_wait(&barrier);
    for (int round = 0; round < ROUNDS; round++) {
        /* Register all (some already are: 200), then drop a round-dependent subset. */
        for (int i = 0; i < PER_THREAD; i++) {
            ip_of(w->id, i, ip, sizeof(ip));
            snprintf(path, sizeof(path), "/backends/%s", ip);
            http_do(&curl, h.port, "POST", path, NULL, 0, NULL, &r);
            expect(r.status, w->registered[i] ? 200 : 201, "POST", ip);
            if (r.status == 200 || r.status == 201)
                w->registered[i] = 1;
            http_reply_release(&r);
        }
        for (int i = round % 3; i < PER_THREAD; i += 2 + round % 2) {
            ip_of(w->id, i, ip, sizeof(ip));
            snprintf(path, sizeof(path), "/backends/%s", ip);
            http_do(&curl, h.port, "DELETE", path, NULL, 0, NULL, &r);
            expect(r.status, w->registered[i] ? 200 : 404, "DELETE", ip);
            if (r.status == 200)
                w->registered[i] = 0;
            http_reply_release(&r);
            /* A second DELETE of the same IP is a clean 404. */
            if (i % 5 == 0) {
                http_do(&curl, h.port, "DELETE", path, NULL, 0, NULL, &r);
                expect(r.status, 404, "DELETE again", ip);
                http_reply_release(&r);
            }
        }
    }
    http_handle_free(curl);
    return NULL;
}

static void *duplicate(void *arg)
{
    struct worker *w = arg;
    struct http_reply r;

    pthread_barrier_wait(&barrier);
    http_do(NULL, h.port, "POST", "/backends/127.9.9.9", NULL, 0, NULL, &r);
    w->codes[w->ncodes++] = r.status;
    http_reply_release(&r);
    pthread_barrier_wait(&barrier);
    http_do(NULL, h.port, "DELETE", "/backends/127.9.9.9", NULL, 0, NULL, &r);
    w->codes[w->ncodes++] = r.status;
    http_reply_release(&r);
    return NULL;
}

static void *overflow(void *arg)
{
    struct worker *w = arg;
    void *curl = NULL;
    char path[64];
    struct http_reply r;

    pthread_barrier_wait(&barrier);
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof(path), "/backends/127.2.%d.%d", w->id, i + 1);
        http_do(&curl, h.port, "POST", path, NULL, 0, NULL, &r);
        w->codes[w->ncodes++] = r.status;
        http_reply_release(&r);
    }
    http_handle_free(curl);
    return NULL;
}

/*
 * A reader polling /buckets and /backends while the writers run: every snapshot must be
 * whole (each bucket's count == weight == number of values, values unique across buckets,
 * totals adding up). Under TSan it also races the writers against the readers.
 */
static atomic_int readers_stop;
static atomic_int snapshots_read;

static void *reader(void *arg)
{
    void *curl = NULL;
    struct http_reply r;
    (void)arg;
    while (!atomic_load(&readers_stop)) {
        size_t i, k, total = 0;
        json_t *b, *v, *seen = json_object();
        http_do(&curl, h.port, "GET", "/buckets", NULL, 0, NULL, &r);
        json_array_foreach(json_object_get(r.json, "buckets"), i, b)
        {
            json_t *vals = json_object_get(b, "values");
            size_t n = json_array_size(vals);
            char key[64];
            CHECK_INT(json_integer_value(json_object_get(b, "count")), n);
            CHECK_INT(json_integer_value(json_object_get(b, "weight")), n);
            json_array_foreach(vals, k, v)
            {
                snprintf(key, sizeof(key), "%s", json_string_value(v));
                CHECK(json_object_get(seen, key) == NULL);
                json_object_set_new(seen, key, json_true());
            }
            total += n;
        }
        CHECK_INT(json_integer_value(json_object_get(json_object_get(r.json, "totals"),
                                                     "backends")),
                  total);
        json_decref(seen);
        http_reply_release(&r);
        http_do(&curl, h.port, "GET", "/backends", NULL, 0, NULL, &r);
        CHECK_INT(r.status, 200);
        CHECK_INT(json_integer_value(json_object_get(r.json, "count")),
                  json_array_size(json_object_get(r.json, "backends")));
        http_reply_release(&r);
        atomic_fetch_add(&snapshots_read, 1);
    }
    http_handle_free(curl);
    return NULL;
}

static void run(void *(*fn)(void *), struct worker *w)
{
    pthread_t t[THREADS], rd[2];
    atomic_store(&readers_stop, 0);
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (int i = 0; i < 2; i++)
        pthread_create(&rd[i], NULL, reader, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, fn, &w[i]);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    atomic_store(&readers_stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(rd[i], NULL);
    pthread_barrier_destroy(&barrier);
}

/* The served state must hold exactly the expected IPs, each once, within capacity. */
static void check_served(struct worker *w, unsigned max_per_bucket)
{
    struct http_reply r;
    json_t *buckets, *b;
    size_t i, expected = 0, seen = 0;

    for (int t = 0; t < THREADS; t++)
        for (int k = 0; k < PER_THREAD; k++)
            expected += (size_t)w[t].registered[k];

    http_do(NULL, h.port, "GET", "/buckets", NULL, 0, NULL, &r);
    buckets = json_object_get(r.json, "buckets");
    json_array_foreach(buckets, i, b)
    {
        json_t *vals = json_object_get(b, "values");
        size_t n = json_array_size(vals), k;
        json_t *v;
        CHECK_INT(json_integer_value(json_object_get(b, "count")), n);
        CHECK_INT(json_integer_value(json_object_get(b, "weight")), n);
        CHECK(n <= max_per_bucket);
        json_array_foreach(vals, k, v)
        {
            int thread, a, b2, idx;
            if (sscanf(json_string_value(v), "127.%d.%d.%d", &a, &thread, &idx) != 3 || a != 1 ||
                thread >= THREADS || idx < 1 || idx > PER_THREAD) {
                fprintf(stderr, "unexpected value %s\n", json_string_value(v));
                CHECK(0);
                continue;
            }
            (void)b2;
            if (!w[thread].registered[idx - 1]) {
                fprintf(stderr, "%s is served but was deregistered\n", json_string_value(v));
                CHECK(0);
            }
            seen++;
        }
    }
    CHECK_INT(seen, expected); /* with the check above: exactly the registered set, once */
    CHECK_INT(json_integer_value(json_object_get(json_object_get(r.json, "totals"), "backends")),
              expected);
    http_reply_release(&r);
}

/* The journal, reloaded by a fresh store, holds the same set. */
static void check_journal(const char *path, struct worker *w)
{
    struct reg_provider *p = NULL;
    struct reg_record *recs = NULL;
    size_t n = 0, seen = 0, expected = 0;
    char detail[256];

    for (int t = 0; t < THREADS; t++)
        for (int k = 0; k < PER_THREAD; k++)
            expected += (size_t)w[t].registered[k];
    CHECK_INT(reg_provider_memory_create(path, &p, detail, sizeof(detail)), RC_OK);
    if (!p)
        return;
    CHECK_INT(p->ops->load(p, &recs, &n, detail, sizeof(detail)), RC_OK);
    for (size_t i = 0; i < n; i++) {
        for (size_t v = 0; v < recs[i].nvalues; v++) {
            const uint8_t *b = recs[i].values[v].b;
            CHECK(b[2] < THREADS && b[3] >= 1 && b[3] <= PER_THREAD &&
                  w[b[2]].registered[b[3] - 1]);
            seen++;
        }
        CHECK_INT(recs[i].weight, recs[i].nvalues);
        reg_record_release(&recs[i]);
    }
    free(recs);
    p->ops->destroy(p);
    CHECK_INT(seen, expected);
}

static enum reg_commit commit_mode;

int main(int argc, char **argv)
{
    struct harness_opts o;
    static struct worker w[THREADS];
    char dir[] = "/tmp/r53reg-conc-XXXXXX", path[300];
    int created = 0, ok = 0, gone = 0, missing = 0, full = 0;

    if (argc > 1 && !strcmp(argv[1], "immediate"))
        commit_mode = REG_COMMIT_IMMEDIATE;
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof(path), "%s/state.jsonl", dir);

    /* 1. churn on 8 buckets x 50 */
    harness_default_opts(&o);
    o.reg.buckets = 8;
    o.reg.max_per_bucket = 50;
    o.reg.commit = commit_mode;
    o.state_file = path;
    o.threads = 4;
    harness_start(&h, &o);
    for (int i = 0; i < THREADS; i++)
        w[i].id = i;
    run(churn, w);
    CHECK_INT(atomic_load(&bad_answers), 0);
    check_served(w, 50);

    /* 2. duplicates */
    for (int i = 0; i < THREADS; i++)
        w[i].ncodes = 0;
    run(duplicate, w);
    for (int i = 0; i < THREADS; i++) {
        created += w[i].codes[0] == 201;
        ok += w[i].codes[0] == 200;
        gone += w[i].codes[1] == 200;
        missing += w[i].codes[1] == 404;
    }
    CHECK_INT(created, 1);
    CHECK_INT(ok, THREADS - 1);
    CHECK_INT(gone, 1);
    CHECK_INT(missing, THREADS - 1);
    check_served(w, 50);
    harness_stop(&h);
    check_journal(path, w);

    /* 3. overflow on 4 buckets x 5 */
    harness_default_opts(&o);
    o.reg.buckets = 4;
    o.reg.max_per_bucket = 5;
    o.reg.commit = commit_mode;
    harness_start(&h, &o);
    for (int i = 0; i < THREADS; i++)
        w[i].ncodes = 0;
    run(overflow, w);
    created = 0;
    for (int i = 0; i < THREADS; i++)
        for (int k = 0; k < w[i].ncodes; k++) {
            created += w[i].codes[k] == 201;
            full += w[i].codes[k] == 409;
        }
    CHECK_INT(created, 20);
    CHECK_INT(full, THREADS * 5 - 20);
    {
        struct http_reply r;
        size_t i;
        json_t *b;
        http_do(NULL, h.port, "GET", "/buckets", NULL, 0, NULL, &r);
        CHECK_INT(json_integer_value(json_object_get(json_object_get(r.json, "totals"),
                                                     "backends")),
                  20);
        json_array_foreach(json_object_get(r.json, "buckets"), i, b)
            CHECK_INT(json_integer_value(json_object_get(b, "count")), 5);
        http_reply_release(&r);
    }
    harness_stop(&h);

    unlink(path);
    rmdir(dir);
    printf("commit mode %s; churn: %d threads x %d IPs x %d rounds; %d snapshots read "
           "meanwhile\n",
           commit_mode == REG_COMMIT_IMMEDIATE ? "immediate" : "group", THREADS, PER_THREAD,
           ROUNDS, atomic_load(&snapshots_read));
    CHECK(atomic_load(&snapshots_read) > 0);
    return check_done("test_concurrency");
}
