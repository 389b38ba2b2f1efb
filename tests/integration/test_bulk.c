/*
 * test_bulk.c: the list endpoints (POST, DELETE, PUT /backends), ?wait=none and
 * GET /changes/{id} over real HTTP (in-process server on 127.0.0.1:0, libcurl client).
 *
 * Usage: test_bulk [group|immediate] [only-test]
 *   group (default) or immediate selects the registry's commit mode; only-test runs one test
 *   by name (the ctest for ThreadSanitizer runs "concurrency" alone).
 *
 * Backend addresses are 127.0.0.0/8 and 2001:db8::/32 only.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "handlers/changes.h"
#include "harness.h"

static struct harness h;
static enum reg_commit commit_mode = REG_COMMIT_GROUP;
static char state_dir[64];

/* ---- helpers ------------------------------------------------------------------------------ */

static void start(const char *state_file)
{
    struct harness_opts o;
    harness_default_opts(&o);
    o.reg.buckets = 10;
    o.reg.max_per_bucket = 100; /* 1,000 per type */
    o.reg.commit = commit_mode;
    o.state_file = state_file;
    o.threads = 4;
    harness_start(&h, &o);
}

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static long long jint(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* Does s (may be NULL) contain needle? */
static int contains(const char *s, const char *needle)
{
    return s && strstr(s, needle) != NULL;
}

static void v4(int i, char *out, size_t n)
{
    snprintf(out, n, "127.%d.%d.%d", 10 + i / 65536, (i / 256) % 256, i % 256 + 0);
}

static void v6(int i, char *out, size_t n)
{
    snprintf(out, n, "2001:db8::%x", i + 1);
}

/* A JSON array of n addresses: first n4 IPv4 from index base4, then IPv6 from base6. */
static json_t *ip_list(int n4, int base4, int n6, int base6)
{
    json_t *a = json_array();
    char ip[IP_TEXT_MAX];
    for (int i = 0; i < n4; i++) {
        v4(base4 + i, ip, sizeof(ip));
        json_array_append_new(a, json_string(ip));
    }
    for (int i = 0; i < n6; i++) {
        v6(base6 + i, ip, sizeof(ip));
        json_array_append_new(a, json_string(ip));
    }
    return a;
}

/* Send {"backends": list} (list is borrowed); extra members (e.g. "allow_empty") from o. */
static long send_list(void **curl, const char *method, const char *path, json_t *list,
                      json_t *extra, struct http_reply *r)
{
    json_t *body = json_pack("{s:O}", "backends", list);
    char *text;
    long status;
    if (extra)
        json_object_update(body, extra);
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (http_do(curl, h.port, method, path, text, strlen(text), NULL, r))
        status = -1;
    else
        status = r->status;
    free(text);
    return status;
}

static long send_text(const char *method, const char *path, const char *text, struct http_reply *r)
{
    if (http_do(NULL, h.port, method, path, text, strlen(text), NULL, r))
        return -1;
    return r->status;
}

static long get(const char *path, struct http_reply *r)
{
    if (http_do(NULL, h.port, "GET", path, NULL, 0, NULL, r))
        return -1;
    return r->status;
}

static void check_problem(struct http_reply *r, long status, const char *slug)
{
    char type[96];
    snprintf(type, sizeof(type), "urn:r53reg:problem:%s", slug);
    CHECK_INT(r->status, status);
    CHECK_STR(r->content_type, "application/problem+json");
    CHECK(r->json != NULL);
    CHECK_STR(jstr(r->json, "type"), type);
    CHECK_INT(jint(r->json, "status"), status);
}

/* The registered addresses as served by GET /backends, sorted; caller frees the array. */
static json_t *served(void)
{
    struct http_reply r;
    json_t *out = json_array();
    CHECK_INT(get("/backends", &r), 200);
    for (size_t i = 0; i < json_array_size(json_object_get(r.json, "backends")); i++)
        json_array_append(
            out, json_object_get(json_array_get(json_object_get(r.json, "backends"), i), "ip"));
    CHECK_INT(jint(r.json, "count"), json_array_size(out));
    http_reply_release(&r);
    return out;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Do two JSON arrays of strings hold the same set? Prints the first difference. */
static int same_set(json_t *a, json_t *b)
{
    size_t n = json_array_size(a), i;
    const char **x, **y;
    int same = n == json_array_size(b);
    if (!same) {
        fprintf(stderr, "sets differ in size: %zu != %zu\n", n, json_array_size(b));
        return 0;
    }
    x = calloc(n + 1, sizeof(*x));
    y = calloc(n + 1, sizeof(*y));
    for (i = 0; i < n; i++) {
        x[i] = json_string_value(json_array_get(a, i));
        y[i] = json_string_value(json_array_get(b, i));
    }
    qsort(x, n, sizeof(*x), cmp_str);
    qsort(y, n, sizeof(*y), cmp_str);
    for (i = 0; i < n && same; i++)
        if (!x[i] || !y[i] || strcmp(x[i], y[i])) {
            fprintf(stderr, "sets differ: %s != %s\n", x[i] ? x[i] : "?", y[i] ? y[i] : "?");
            same = 0;
        }
    free(x);
    free(y);
    return same;
}

/* The change id of a 202 answer, or "". */
static void change_id_of(struct http_reply *r, char *out, size_t n)
{
    const char *id = jstr(r->json, "change_id");
    snprintf(out, n, "%s", id ? id : "");
}

/* GET /changes/{id} until it is no longer queued (at most ~20 s); returns its reply. */
static void poll_change(const char *id, struct http_reply *r)
{
    char path[96];
    snprintf(path, sizeof(path), "/changes/%s", id);
    for (int i = 0; i < 2000; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        CHECK_INT(get(path, r), 200);
        if (r->status != 200 || !jstr(r->json, "status") ||
            strcmp(jstr(r->json, "status"), "queued") != 0)
            return;
        http_reply_release(r);
        nanosleep(&ts, NULL);
    }
    CHECK(!"change stayed queued");
}

/* Do two placements name the same place (the weight follows later changes)? */
static int same_place(json_t *a, json_t *b)
{
    static const char *const keys[] = {"ip", "type", "bucket", "set_identifier", "state"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (!json_equal(json_object_get(a, keys[i]), json_object_get(b, keys[i]))) {
            fprintf(stderr, "placements differ in %s\n", keys[i]);
            return 0;
        }
    return 1;
}

/* ---- tests -------------------------------------------------------------------------------- */

/* 1,000 addresses in one request: per-item results in order, the served set equals them, and
 * the same request again changes nothing. */
static void test_register_1000(void)
{
    json_t *list = ip_list(600, 1, 400, 1), *now;
    struct http_reply r;
    json_t *results;

    start(NULL);
    CHECK_INT(send_list(NULL, "POST", "/backends", list, NULL, &r), 200);
    CHECK_STR(r.content_type, "application/json");
    results = json_object_get(r.json, "results");
    CHECK_INT(json_array_size(results), 1000);
    CHECK_INT(jint(r.json, "created"), 1000);
    CHECK_INT(jint(r.json, "unchanged"), 0);
    CHECK_INT(jint(r.json, "failed"), 0);
    for (size_t i = 0; i < json_array_size(results); i++) {
        json_t *it = json_array_get(results, i), *p = json_object_get(it, "placement");
        const char *ip = json_string_value(json_array_get(list, i));
        CHECK_STR(jstr(it, "ip"), ip);
        CHECK_INT(jint(it, "status"), 201);
        CHECK_STR(jstr(p, "ip"), ip);
        CHECK_STR(jstr(p, "type"), i < 600 ? "A" : "AAAA");
        CHECK_STR(jstr(p, "state"), "registered");
        CHECK(jint(p, "bucket") >= 0 && jint(p, "bucket") < 10);
        CHECK(jstr(p, "change_id") != NULL);
        CHECK(json_object_get(it, "problem") == NULL);
    }
    http_reply_release(&r);
    now = served();
    CHECK(same_set(now, list));
    json_decref(now);

    /* Again (as a bare array): every item 200 with the same placement, nothing changes. */
    {
        char *text = json_dumps(list, JSON_COMPACT);
        CHECK_INT(send_text("POST", "/backends", text, &r), 200);
        free(text);
    }
    CHECK_INT(jint(r.json, "created"), 0);
    CHECK_INT(jint(r.json, "unchanged"), 1000);
    results = json_object_get(r.json, "results");
    for (size_t i = 0; i < json_array_size(results); i++) {
        json_t *it = json_array_get(results, i);
        CHECK_INT(jint(it, "status"), 200);
        CHECK(jstr(json_object_get(it, "placement"), "change_id") == NULL);
    }
    http_reply_release(&r);

    /* Deregister 500 of them plus one that never was: 200 each, 404 for the stranger. */
    {
        json_t *half = ip_list(300, 1, 200, 1);
        char ip[IP_TEXT_MAX];
        v4(5000, ip, sizeof(ip));
        json_array_append_new(half, json_string(ip));
        CHECK_INT(send_list(NULL, "DELETE", "/backends", half, NULL, &r), 200);
        CHECK_INT(jint(r.json, "removed"), 500);
        CHECK_INT(jint(r.json, "not_registered"), 1);
        CHECK_INT(jint(r.json, "failed"), 0);
        results = json_object_get(r.json, "results");
        CHECK_INT(json_array_size(results), 501);
        CHECK_INT(jint(json_array_get(results, 0), "status"), 200);
        CHECK_STR(jstr(json_object_get(json_array_get(results, 0), "placement"), "state"),
                  "deregistered");
        CHECK_INT(jint(json_array_get(results, 500), "status"), 404);
        CHECK_STR(jstr(json_object_get(json_array_get(results, 500), "problem"), "type"),
                  "urn:r53reg:problem:not-registered");
        http_reply_release(&r);
        json_decref(half);
        now = served();
        CHECK_INT(json_array_size(now), 500);
        json_decref(now);
    }
    json_decref(list);
    harness_stop(&h);
}

/* Bad requests: refused whole, with the reason; nothing is registered or removed. */
static void test_invalid_changes_nothing(void)
{
    struct http_reply r;
    json_t *list, *errors, *before, *after;

    start(NULL);
    list = ip_list(5, 1, 5, 1);
    CHECK_INT(send_list(NULL, "POST", "/backends", list, NULL, &r), 200);
    http_reply_release(&r);
    json_decref(list);
    before = served();

    /* One non-canonical item, one duplicate, one number: 400 naming all three by index. */
    list = ip_list(3, 100, 3, 100);
    json_array_insert_new(list, 2, json_string("127.0.1.01"));
    json_array_append_new(list, json_string("2001:db8::65")); /* = v6(100) */
    json_array_append_new(list, json_integer(7));
    CHECK_INT(send_list(NULL, "POST", "/backends", list, NULL, &r), 400);
    check_problem(&r, 400, "invalid-ip");
    errors = json_object_get(r.json, "errors");
    CHECK_INT(json_array_size(errors), 3);
    CHECK_INT(jint(json_array_get(errors, 0), "index"), 2);
    CHECK_STR(jstr(json_array_get(errors, 0), "value"), "127.0.1.01");
    CHECK(contains(jstr(json_array_get(errors, 0), "detail"), "127.0.1.1"));
    CHECK_INT(jint(json_array_get(errors, 1), "index"), 7);
    CHECK(contains(jstr(json_array_get(errors, 1), "detail"), "duplicate of item 4"));
    CHECK_INT(jint(json_array_get(errors, 2), "index"), 8);
    CHECK(json_object_get(json_array_get(errors, 2), "value") == NULL);
    http_reply_release(&r);
    /* The same refusals for DELETE and PUT. */
    CHECK_INT(send_list(NULL, "DELETE", "/backends", list, NULL, &r), 400);
    http_reply_release(&r);
    CHECK_INT(send_list(NULL, "PUT", "/backends", list, NULL, &r), 400);
    http_reply_release(&r);
    json_decref(list);

    /* DELETE of registered IPs with one bad item: nothing is removed. */
    list = ip_list(5, 1, 0, 0);
    json_array_append_new(list, json_string("::ffff:127.0.0.1"));
    CHECK_INT(send_list(NULL, "DELETE", "/backends", list, NULL, &r), 400);
    CHECK_INT(jint(json_array_get(json_object_get(r.json, "errors"), 0), "index"), 5);
    http_reply_release(&r);
    json_decref(list);

    /* Malformed JSON: 400 naming line and column. */
    CHECK_INT(send_text("POST", "/backends", "{\"backends\": [\"127.0.0.1\",\n  ]}", &r), 400);
    check_problem(&r, 400, "bad-request");
    CHECK(contains(jstr(r.json, "detail"), "line 2, column"));
    http_reply_release(&r);
    /* Shape errors. */
    {
        static const char *const bad[] = {
            "{\"backend\": [\"127.0.0.1\"]}",           /* unknown member */
            "{\"backends\": \"127.0.0.1\"}",            /* not an array */
            "\"127.0.0.1\"",                            /* neither object nor array */
            "{}",                                       /* no backends */
            "{\"backends\": [], \"backends\": []}",     /* duplicate key */
            "{\"backends\": [\"127.0.0.1\"]} trailing", /* garbage after the value */
            "",                                         /* no body */
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            send_text("POST", "/backends", bad[i], &r);
            if (r.status != 400)
                fprintf(stderr, "body %s -> %ld\n", bad[i], r.status);
            check_problem(&r, 400, "bad-request");
            http_reply_release(&r);
        }
    }
    /* "allow_empty" belongs to PUT only; wait values other than none are refused. */
    CHECK_INT(send_text("POST", "/backends", "{\"backends\": [], \"allow_empty\": true}", &r), 400);
    http_reply_release(&r);
    CHECK_INT(send_text("PUT", "/backends", "{\"backends\": [], \"allow_empty\": 1}", &r), 400);
    http_reply_release(&r);
    CHECK_INT(send_text("POST", "/backends?wait=insync", "[\"127.0.0.99\"]", &r), 400);
    check_problem(&r, 400, "bad-request");
    http_reply_release(&r);

    /* More than 10,000 items: 413 with the limit in the detail. */
    list = ip_list(10001, 20000, 0, 0);
    CHECK_INT(send_list(NULL, "POST", "/backends", list, NULL, &r), 413);
    check_problem(&r, 413, "body-too-large");
    CHECK(contains(jstr(r.json, "detail"), "10000"));
    http_reply_release(&r);
    json_decref(list);

    /* Content-Type other than application/json, or none: 415. */
    {
        static const char *const types[] = {"Content-Type: text/plain",
                                            "Content-Type: application/jsonx", "Content-Type:"};
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
            CURL *c = curl_easy_init();
            struct curl_slist *hdrs = curl_slist_append(NULL, types[i]);
            char url[128];
            long status = 0;
            snprintf(url, sizeof(url), "http://127.0.0.1:%u/backends", h.port);
            curl_easy_setopt(c, CURLOPT_URL, url);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, "[\"127.0.0.98\"]");
            curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
            FILE *sink = tmpfile();
            char text[1024] = "";
            curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
            curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
            CHECK_INT(curl_easy_perform(c), CURLE_OK);
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
            CHECK_INT(status, 415);
            rewind(sink);
            CHECK(fread(text, 1, sizeof(text) - 1, sink) > 0);
            CHECK(contains(text, "urn:r53reg:problem:unsupported-media-type"));
            fclose(sink);
            curl_slist_free_all(hdrs);
            curl_easy_cleanup(c);
        }
    }
    /* With parameters it is fine. */
    {
        const char *body = "[\"127.0.0.97\"]";
        http_do(NULL, h.port, "POST", "/backends", body, strlen(body),
                "Content-Type: application/json; charset=utf-8", &r);
        CHECK_INT(r.status, 200);
        http_reply_release(&r);
        CHECK_INT(send_text("DELETE", "/backends", body, &r), 200);
        http_reply_release(&r);
    }

    after = served();
    CHECK(same_set(before, after));
    json_decref(before);
    json_decref(after);
    harness_stop(&h);
}

/* PUT converges on the desired set (adds and removes, both types), a repeat changes
 * nothing, and an empty set needs allow_empty. */
static void test_put(void)
{
    struct http_reply r;
    json_t *want, *now, *opt;

    start(NULL);
    /* Something to replace: 0..99 of each type. */
    want = ip_list(100, 0, 100, 0);
    CHECK_INT(send_list(NULL, "POST", "/backends", want, NULL, &r), 200);
    http_reply_release(&r);
    json_decref(want);

    /* Desired: 50..149 of each type: 100 added, 100 removed, 100 unchanged. */
    want = ip_list(100, 50, 100, 50);
    CHECK_INT(send_list(NULL, "PUT", "/backends", want, NULL, &r), 200);
    CHECK_INT(json_array_size(json_object_get(r.json, "added")), 100);
    CHECK_INT(json_array_size(json_object_get(r.json, "removed")), 100);
    CHECK_INT(jint(r.json, "unchanged"), 100);
    CHECK_INT(json_array_size(json_object_get(r.json, "failed")), 0);
    {
        json_t *a = json_array_get(json_object_get(r.json, "added"), 0);
        json_t *d = json_array_get(json_object_get(r.json, "removed"), 0);
        char ip[IP_TEXT_MAX];
        v4(100, ip, sizeof(ip));
        CHECK_STR(jstr(a, "ip"), ip); /* added: in request order */
        CHECK_STR(jstr(a, "state"), "registered");
        v4(0, ip, sizeof(ip));
        CHECK_STR(jstr(d, "ip"), ip); /* removed: sorted, A first */
        CHECK_STR(jstr(d, "state"), "deregistered");
    }
    http_reply_release(&r);
    now = served();
    CHECK(same_set(now, want));
    json_decref(now);

    /* Idempotent. */
    CHECK_INT(send_list(NULL, "PUT", "/backends", want, NULL, &r), 200);
    CHECK_INT(json_array_size(json_object_get(r.json, "added")), 0);
    CHECK_INT(json_array_size(json_object_get(r.json, "removed")), 0);
    CHECK_INT(jint(r.json, "unchanged"), 200);
    http_reply_release(&r);

    /* Only one type listed: the other type is removed entirely. */
    json_decref(want);
    want = ip_list(100, 50, 0, 0);
    CHECK_INT(send_list(NULL, "PUT", "/backends", want, NULL, &r), 200);
    CHECK_INT(json_array_size(json_object_get(r.json, "removed")), 100);
    CHECK_INT(jint(r.json, "unchanged"), 100);
    http_reply_release(&r);
    now = served();
    CHECK(same_set(now, want));
    json_decref(now);

    /* Empty without allow_empty: 400, nothing removed; allow_empty false is the same. */
    {
        json_t *empty = json_array();
        CHECK_INT(send_list(NULL, "PUT", "/backends", empty, NULL, &r), 400);
        check_problem(&r, 400, "bad-request");
        CHECK(contains(jstr(r.json, "detail"), "allow_empty"));
        http_reply_release(&r);
        CHECK_INT(send_text("PUT", "/backends", "[]", &r), 400);
        http_reply_release(&r);
        opt = json_pack("{s:b}", "allow_empty", 0);
        CHECK_INT(send_list(NULL, "PUT", "/backends", empty, opt, &r), 400);
        http_reply_release(&r);
        json_decref(opt);
        now = served();
        CHECK(same_set(now, want));
        json_decref(now);

        opt = json_pack("{s:b}", "allow_empty", 1);
        CHECK_INT(send_list(NULL, "PUT", "/backends", empty, opt, &r), 200);
        CHECK_INT(json_array_size(json_object_get(r.json, "removed")), 100);
        CHECK_INT(jint(r.json, "unchanged"), 0);
        http_reply_release(&r);
        json_decref(opt);
        now = served();
        CHECK_INT(json_array_size(now), 0);
        json_decref(now);
        json_decref(empty);
    }

    /* Over capacity (1,000 A slots): the adds that do not fit fail with 409 in "failed",
     * the rest are placed. */
    json_decref(want);
    want = ip_list(1005, 0, 0, 0);
    CHECK_INT(send_list(NULL, "PUT", "/backends", want, NULL, &r), 200);
    CHECK_INT(json_array_size(json_object_get(r.json, "added")), 1000);
    CHECK_INT(json_array_size(json_object_get(r.json, "failed")), 5);
    {
        json_t *f = json_array_get(json_object_get(r.json, "failed"), 0);
        CHECK_STR(jstr(f, "op"), "add");
        CHECK_STR(jstr(json_object_get(f, "problem"), "type"), "urn:r53reg:problem:buckets-full");
    }
    http_reply_release(&r);
    json_decref(want);
    harness_stop(&h);
}

/* ?wait=none: 202 at once, then GET /changes/{id} reports the synchronous answer. */
static void test_wait_none(void)
{
    struct http_reply r, c;
    json_t *list;
    char id[64], path[96];

    start(NULL);
    list = ip_list(200, 0, 100, 0);
    CHECK_INT(send_list(NULL, "POST", "/backends?wait=none", list, NULL, &r), 202);
    CHECK_STR(jstr(r.json, "status"), "queued");
    change_id_of(&r, id, sizeof(id));
    CHECK_INT(strlen(id), 32);
    snprintf(path, sizeof(path), "/changes/%s", id);
    CHECK_STR(jstr(r.json, "href"), path);
    CHECK_STR(r.location, path);
    http_reply_release(&r);

    poll_change(id, &c);
    CHECK_STR(jstr(c.json, "status"), "committed");
    CHECK_STR(jstr(c.json, "id"), id);
    CHECK_STR(jstr(c.json, "method"), "POST");
    CHECK_STR(jstr(c.json, "path"), "/backends");
    CHECK_INT(jint(c.json, "http_status"), 200);
    CHECK(jstr(c.json, "route53_change_id") != NULL);
    CHECK(jstr(c.json, "submitted_at") != NULL);
    CHECK(jstr(c.json, "completed_at") != NULL);
    {
        json_t *res = json_object_get(c.json, "result"), *items = json_object_get(res, "results");
        CHECK_INT(jint(res, "created"), 300);
        CHECK_INT(json_array_size(items), 300);
        /* Every item's placement is what GET /backends/{ip} serves now. */
        for (size_t i = 0; i < json_array_size(items); i++) {
            json_t *it = json_array_get(items, i);
            char ipath[96];
            CHECK_STR(jstr(it, "ip"), json_string_value(json_array_get(list, i)));
            CHECK_INT(jint(it, "status"), 201);
            snprintf(ipath, sizeof(ipath), "/backends/%s", jstr(it, "ip"));
            CHECK_INT(get(ipath, &r), 200);
            CHECK(same_place(json_object_get(it, "placement"), r.json));
            http_reply_release(&r);
        }
    }
    http_reply_release(&c);

    /* The same request synchronously now: all unchanged; wait=none gives the same answer. */
    {
        json_t *sync;
        CHECK_INT(send_list(NULL, "POST", "/backends", list, NULL, &r), 200);
        sync = json_incref(r.json);
        http_reply_release(&r);
        CHECK_INT(send_list(NULL, "POST", "/backends?wait=none", list, NULL, &r), 202);
        change_id_of(&r, id, sizeof(id));
        http_reply_release(&r);
        poll_change(id, &c);
        CHECK_STR(jstr(c.json, "status"), "committed");
        CHECK(jstr(c.json, "route53_change_id") == NULL); /* nothing changed */
        /* Identical but for the request ids inside problems (there are none here). */
        CHECK(json_equal(json_object_get(c.json, "result"), sync));
        http_reply_release(&c);
        json_decref(sync);
    }

    /* DELETE with wait=none, one of them unknown: committed, the unknown one 404. */
    {
        json_t *d = ip_list(2, 0, 0, 0);
        char ip[IP_TEXT_MAX];
        v4(9999, ip, sizeof(ip));
        json_array_append_new(d, json_string(ip));
        CHECK_INT(send_list(NULL, "DELETE", "/backends?wait=none", d, NULL, &r), 202);
        change_id_of(&r, id, sizeof(id));
        http_reply_release(&r);
        poll_change(id, &c);
        CHECK_STR(jstr(c.json, "status"), "committed");
        CHECK_STR(jstr(c.json, "method"), "DELETE");
        CHECK_INT(jint(json_object_get(c.json, "result"), "removed"), 2);
        CHECK_INT(jint(json_object_get(c.json, "result"), "not_registered"), 1);
        http_reply_release(&c);
        json_decref(d);
    }

    /* PUT with wait=none. */
    {
        json_t *want = ip_list(10, 0, 0, 0), *now;
        CHECK_INT(send_list(NULL, "PUT", "/backends?wait=none", want, NULL, &r), 202);
        change_id_of(&r, id, sizeof(id));
        http_reply_release(&r);
        poll_change(id, &c);
        CHECK_STR(jstr(c.json, "status"), "committed");
        CHECK_INT(json_array_size(json_object_get(json_object_get(c.json, "result"), "added")), 2);
        http_reply_release(&c);
        now = served();
        CHECK(same_set(now, want));
        json_decref(now);
        json_decref(want);
    }

    /* One IP with wait=none (POST and DELETE /backends/{ip}): the result is the placement. */
    {
        char ip[IP_TEXT_MAX], ipath[96];
        v6(7777, ip, sizeof(ip));
        snprintf(ipath, sizeof(ipath), "/backends/%s?wait=none", ip);
        CHECK_INT(http_do(NULL, h.port, "POST", ipath, NULL, 0, NULL, &r), 0);
        CHECK_INT(r.status, 202);
        change_id_of(&r, id, sizeof(id));
        http_reply_release(&r);
        poll_change(id, &c);
        CHECK_STR(jstr(c.json, "status"), "committed");
        CHECK_INT(jint(c.json, "http_status"), 201);
        CHECK_STR(jstr(json_object_get(c.json, "result"), "ip"), ip);
        CHECK_STR(jstr(json_object_get(c.json, "result"), "state"), "registered");
        http_reply_release(&c);
        CHECK_INT(http_do(NULL, h.port, "DELETE", ipath, NULL, 0, NULL, &r), 0);
        CHECK_INT(r.status, 202);
        http_reply_release(&r);
        /* A second DELETE fails: status failed, the 404 problem as the result. */
        CHECK_INT(http_do(NULL, h.port, "DELETE", ipath, NULL, 0, NULL, &r), 0);
        change_id_of(&r, id, sizeof(id));
        http_reply_release(&r);
        poll_change(id, &c);
        CHECK_STR(jstr(c.json, "status"), "failed");
        CHECK_INT(jint(c.json, "http_status"), 404);
        CHECK_STR(jstr(json_object_get(c.json, "result"), "type"),
                  "urn:r53reg:problem:not-registered");
        http_reply_release(&c);
    }

    /* Unknown and malformed ids: 404. */
    get("/changes/00000000000000000000000000000000", &r);
    check_problem(&r, 404, "not-found");
    http_reply_release(&r);
    get("/changes/xyz", &r);
    check_problem(&r, 404, "not-found");
    http_reply_release(&r);
    get("/changes/", &r);
    check_problem(&r, 404, "not-found");
    http_reply_release(&r);
    http_do(NULL, h.port, "POST", path, NULL, 0, NULL, &r);
    check_problem(&r, 405, "method-not-allowed");
    CHECK_STR(r.allow, "GET, HEAD");
    http_reply_release(&r);

    /* Limits: only the newest N are kept; entries expire. */
    {
        char ids[3][64];
        api_changes_set_limits(2, 0, 0);
        for (int i = 0; i < 3; i++) {
            json_t *one = ip_list(1, 3000 + i, 0, 0);
            CHECK_INT(send_list(NULL, "POST", "/backends?wait=none", one, NULL, &r), 202);
            snprintf(ids[i], sizeof(ids[i]), "/changes/%s",
                     jstr(r.json, "change_id") ? jstr(r.json, "change_id") : "");
            http_reply_release(&r);
            json_decref(one);
        }
        CHECK_INT(get(ids[0], &r), 404);
        http_reply_release(&r);
        CHECK_INT(get(ids[1], &r), 200);
        http_reply_release(&r);
        CHECK_INT(get(ids[2], &r), 200);
        http_reply_release(&r);
        api_changes_set_limits(API_CHANGES_MAX_ENTRIES, 1, 0);
        sleep(2);
        CHECK_INT(get(ids[2], &r), 404);
        http_reply_release(&r);
        api_changes_set_limits(0, API_CHANGES_MAX_AGE_S, 0);
    }
    json_decref(list);
    harness_stop(&h);
}

/* 8 threads POST and DELETE disjoint sets in bulk at once; the final state is exactly the
 * union of what each thread left registered, served and after a reload from the journal. */
#define THREADS 8
#define PER_THREAD 100 /* 50 IPv4 + 50 IPv6 */
#define ROUNDS 4

static atomic_int bad_answers;
static pthread_barrier_t barrier;

static json_t *thread_set(int t, int odd_only)
{
    json_t *a = json_array();
    char ip[IP_TEXT_MAX];
    for (int i = 0; i < PER_THREAD / 2; i++) {
        if (odd_only && !(i & 1))
            continue;
        snprintf(ip, sizeof(ip), "127.200.%d.%d", t, i + 1);
        json_array_append_new(a, json_string(ip));
        snprintf(ip, sizeof(ip), "2001:db8:%x::%x", t + 1, i + 1);
        json_array_append_new(a, json_string(ip));
    }
    return a;
}

static void expect_all(struct http_reply *r, long status, const char *count_key, size_t n,
                       int item_status, int t, const char *what)
{
    json_t *items = json_object_get(r->json, "results");
    int bad = r->status != status || (size_t)jint(r->json, count_key) != n;
    for (size_t i = 0; !bad && i < json_array_size(items); i++)
        bad = jint(json_array_get(items, i), "status") != item_status;
    if (bad) {
        fprintf(stderr, "thread %d %s: status %ld, body %.300s\n", t, what, r->status, r->body);
        atomic_fetch_add(&bad_answers, 1);
    }
}

static void *bulk_worker(void *arg)
{
    int t = (int)(long)arg;
    json_t *all = thread_set(t, 0), *odd = thread_set(t, 1);
    void *curl = NULL;
    struct http_reply r;

    pthread_barrier_wait(&barrier);
    for (int round = 0; round < ROUNDS; round++) {
        send_list(&curl, "POST", "/backends", all, NULL, &r);
        expect_all(&r, 200, "created", PER_THREAD, 201, t, "POST");
        http_reply_release(&r);
        send_list(&curl, "POST", "/backends", odd, NULL, &r);
        expect_all(&r, 200, "unchanged", PER_THREAD / 2, 200, t, "POST again");
        http_reply_release(&r);
        send_list(&curl, "DELETE", "/backends", all, NULL, &r);
        expect_all(&r, 200, "removed", PER_THREAD, 200, t, "DELETE");
        http_reply_release(&r);
    }
    /* Leave the odd ones registered, one half with wait=none. */
    send_list(&curl, "POST", "/backends", odd, NULL, &r);
    expect_all(&r, 200, "created", PER_THREAD / 2, 201, t, "final POST");
    http_reply_release(&r);
    http_handle_free(curl);
    json_decref(all);
    json_decref(odd);
    return NULL;
}

static void test_concurrency(void)
{
    pthread_t th[THREADS];
    json_t *want = json_array(), *now;
    char path[128];

    snprintf(path, sizeof(path), "%s/state.jsonl", state_dir);
    unlink(path);
    start(path);
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (long t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, bulk_worker, (void *)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&barrier);
    CHECK_INT(atomic_load(&bad_answers), 0);
    for (int t = 0; t < THREADS; t++) {
        json_t *odd = thread_set(t, 1);
        json_array_extend(want, odd);
        json_decref(odd);
    }
    now = served();
    CHECK(same_set(now, want));
    json_decref(now);
    harness_stop(&h);

    /* What the store kept is the same. */
    start(path);
    now = served();
    CHECK(same_set(now, want));
    json_decref(now);
    harness_stop(&h);
    unlink(path);
    json_decref(want);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"register_1000", test_register_1000},
        {"invalid", test_invalid_changes_nothing},
        {"put", test_put},
        {"wait_none", test_wait_none},
        {"concurrency", test_concurrency},
    };
    const char *only = NULL;
    int ran = 0;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "immediate"))
            commit_mode = REG_COMMIT_IMMEDIATE;
        else if (!strcmp(argv[i], "group"))
            commit_mode = REG_COMMIT_GROUP;
        else
            only = argv[i];
    }
    snprintf(state_dir, sizeof(state_dir), "/tmp/r53reg-bulk-XXXXXX");
    if (!mkdtemp(state_dir))
        return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        if (only && strcmp(only, tests[i].name) != 0)
            continue;
        fprintf(stderr, "-- %s (%s)\n", tests[i].name,
                commit_mode == REG_COMMIT_GROUP ? "group" : "immediate");
        tests[i].fn();
        ran++;
    }
    curl_global_cleanup();
    rmdir(state_dir);
    if (!ran) {
        fprintf(stderr, "no test named %s\n", only);
        return 2;
    }
    return check_done("test_bulk");
}
