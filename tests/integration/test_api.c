/*
 * test_api.c: every endpoint and error of the REST API over real HTTP (in-process server on
 * 127.0.0.1:0, libcurl client): status codes, JSON bodies, problem+json, headers (Location,
 * Allow, WWW-Authenticate, X-Request-Id), the strict IP list, loopback and link-local
 * addresses (--allow-special), limits and authorization, and that refused requests change
 * nothing.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

static struct harness h;

static long req(const char *method, const char *path, struct http_reply *r)
{
    if (http_do(NULL, h.port, method, path, NULL, 0, NULL, r))
        return -1;
    return r->status;
}

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static long long jint(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
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
    CHECK(jstr(r->json, "title") != NULL);
    CHECK_STR(jstr(r->json, "request_id"), r->request_id);
}

static long long backend_count(void)
{
    struct http_reply r;
    long long n;
    req("GET", "/backends", &r);
    n = jint(r.json, "count");
    http_reply_release(&r);
    return n;
}

static void test_register_lifecycle(void)
{
    struct http_reply r;

    CHECK_INT(req("POST", "/backends/10.0.0.10", &r), 201);
    CHECK_STR(r.content_type, "application/json");
    CHECK_STR(jstr(r.json, "ip"), "10.0.0.10");
    CHECK_STR(jstr(r.json, "type"), "A");
    CHECK_INT(jint(r.json, "bucket"), 0);
    CHECK_STR(jstr(r.json, "set_identifier"), "app.example.com_0");
    CHECK_INT(jint(r.json, "weight"), 1);
    CHECK_STR(jstr(r.json, "state"), "registered");
    CHECK_STR(r.location, "/backends/10.0.0.10");
    http_reply_release(&r);

    /* Idempotent: 200 with the same placement, no Location. */
    CHECK_INT(req("POST", "/backends/10.0.0.10", &r), 200);
    CHECK_INT(jint(r.json, "bucket"), 0);
    CHECK_STR(jstr(r.json, "state"), "registered");
    CHECK_STR(r.location, "");
    http_reply_release(&r);

    CHECK_INT(req("POST", "/backends/10.0.0.2", &r), 201);
    CHECK_INT(jint(r.json, "bucket"), 1);
    http_reply_release(&r);
    CHECK_INT(req("POST", "/backends/2001:db8::1", &r), 201);
    CHECK_STR(jstr(r.json, "type"), "AAAA");
    CHECK_INT(jint(r.json, "bucket"), 0);
    http_reply_release(&r);

    CHECK_INT(req("GET", "/backends/10.0.0.2", &r), 200);
    CHECK_STR(jstr(r.json, "ip"), "10.0.0.2");
    CHECK_INT(jint(r.json, "bucket"), 1);
    http_reply_release(&r);
    req("GET", "/backends/10.0.0.3", &r);
    check_problem(&r, 404, "not-registered");
    http_reply_release(&r);

    /* The list is stable: A before AAAA, numeric order (10.0.0.2 before 10.0.0.10). */
    CHECK_INT(req("GET", "/backends", &r), 200);
    CHECK_INT(jint(r.json, "count"), 3);
    {
        json_t *b = json_object_get(r.json, "backends");
        CHECK_STR(jstr(json_array_get(b, 0), "ip"), "10.0.0.2");
        CHECK_STR(jstr(json_array_get(b, 1), "ip"), "10.0.0.10");
        CHECK_STR(jstr(json_array_get(b, 2), "ip"), "2001:db8::1");
    }
    http_reply_release(&r);

    /* Bucket 0 of A gets a second value: weight follows the count. */
    CHECK_INT(req("POST", "/backends/10.0.0.1", &r), 201);
    CHECK_INT(jint(r.json, "bucket"), 2);
    http_reply_release(&r);
    CHECK_INT(req("POST", "/backends/10.0.0.4", &r), 201);
    CHECK_INT(jint(r.json, "bucket"), 3);
    http_reply_release(&r);
    CHECK_INT(req("POST", "/backends/10.0.0.5", &r), 201);
    CHECK_INT(jint(r.json, "bucket"), 0);
    CHECK_INT(jint(r.json, "weight"), 2);
    http_reply_release(&r);

    CHECK_INT(req("GET", "/buckets", &r), 200);
    {
        json_t *bk = json_object_get(r.json, "buckets"), *b0 = json_array_get(bk, 0);
        json_t *tot = json_object_get(r.json, "totals");
        CHECK_STR(jstr(r.json, "record_name"), "app.example.com");
        CHECK_INT(json_array_size(bk), 5); /* 4 A buckets + 1 AAAA */
        CHECK_STR(jstr(b0, "set_identifier"), "app.example.com_0");
        CHECK_STR(jstr(b0, "type"), "A");
        CHECK_INT(jint(b0, "weight"), 2);
        CHECK_INT(jint(b0, "count"), 2);
        CHECK_INT(jint(b0, "capacity"), 3);
        CHECK_INT(jint(b0, "ttl"), 60);
        CHECK(json_is_true(json_object_get(b0, "accepting")));
        CHECK_STR(json_string_value(json_array_get(json_object_get(b0, "values"), 0)),
                  "10.0.0.5");
        CHECK_STR(json_string_value(json_array_get(json_object_get(b0, "values"), 1)),
                  "10.0.0.10");
        CHECK_INT(jint(tot, "backends"), 6);
        CHECK_INT(jint(tot, "a"), 5);
        CHECK_INT(jint(tot, "aaaa"), 1);
        CHECK_INT(jint(tot, "buckets"), 5);
        CHECK_INT(jint(tot, "capacity"), (12 - 5) + (12 - 1));
    }
    http_reply_release(&r);

    CHECK_INT(req("DELETE", "/backends/10.0.0.5", &r), 200);
    CHECK_STR(jstr(r.json, "state"), "deregistered");
    CHECK_INT(jint(r.json, "bucket"), 0);
    CHECK_INT(jint(r.json, "weight"), 1);
    http_reply_release(&r);
    req("DELETE", "/backends/10.0.0.5", &r);
    check_problem(&r, 404, "not-registered");
    http_reply_release(&r);

    /* The last value of a bucket goes: the record disappears from /buckets. */
    CHECK_INT(req("DELETE", "/backends/2001:db8::1", &r), 200);
    CHECK_INT(jint(r.json, "weight"), 0);
    http_reply_release(&r);
    CHECK_INT(req("GET", "/buckets", &r), 200);
    CHECK_INT(json_array_size(json_object_get(r.json, "buckets")), 4);
    http_reply_release(&r);
}

static void test_invalid_ips_change_nothing(void)
{
    static const char *const bad[] = {
        "/backends/010.0.0.1",       "/backends/10.0.0.1/24",  "/backends/10.0.0.1:80",
        "/backends/2001:DB8::7",     "/backends/::ffff:10.0.0.7", "/backends/fe80::1%25eth0",
        "/backends/%31%30.0.0.7",    "/backends/host.example", "/backends/10.0.0.7%20",
        "/backends/0.0.0.0",         "/backends/224.0.0.1",    "/backends/2001:db8:0:0:0:0:0:7",
        "/backends/1.2.3",           "/backends/1111:2222:3333:4444:5555:6666:7777:8888:9999",
    };
    long long before = backend_count();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *methods[] = {"POST", "DELETE", "GET"};
        for (int m = 0; m < 3; m++) {
            struct http_reply r;
            req(methods[m], bad[i], &r);
            if (r.status != 400)
                fprintf(stderr, "%s %s -> %ld\n", methods[m], bad[i], r.status);
            check_problem(&r, 400, "invalid-ip");
            CHECK(jstr(r.json, "detail") != NULL);
            http_reply_release(&r);
        }
    }
    CHECK_INT(backend_count(), before);
    {
        struct http_reply r;
        req("POST", "/backends/2001:0db8::7", &r);
        CHECK(strstr(jstr(r.json, "detail"), "2001:db8::7") != NULL); /* names the fix */
        http_reply_release(&r);
    }
}

static void test_protocol_errors(void)
{
    struct http_reply r;
    char big[4096];

    req("GET", "/nope", &r);
    check_problem(&r, 404, "not-found");
    CHECK_STR(jstr(r.json, "instance"), "/nope");
    http_reply_release(&r);
    req("GET", "/backends/", &r);
    check_problem(&r, 404, "not-found");
    http_reply_release(&r);
    req("GET", "/buckets/", &r);
    check_problem(&r, 404, "not-found");
    http_reply_release(&r);

    req("PUT", "/backends/10.0.0.1", &r);
    check_problem(&r, 405, "method-not-allowed");
    CHECK_STR(r.allow, "GET, HEAD, POST, DELETE");
    http_reply_release(&r);
    req("DELETE", "/buckets", &r);
    check_problem(&r, 405, "method-not-allowed");
    CHECK_STR(r.allow, "GET, HEAD");
    http_reply_release(&r);
    req("POST", "/healthz", &r);
    CHECK_INT(r.status, 405);
    http_reply_release(&r);

    /* Body over --max-body (1024 here): 413 and nothing registered. */
    memset(big, 'x', sizeof(big));
    http_do(NULL, h.port, "POST", "/backends/10.0.0.99", big, sizeof(big), NULL, &r);
    check_problem(&r, 413, "body-too-large");
    http_reply_release(&r);
    req("GET", "/backends/10.0.0.99", &r);
    CHECK_INT(r.status, 404);
    http_reply_release(&r);

    /* HEAD: GET without a body. */
    CHECK_INT(req("HEAD", "/buckets", &r), 200);
    CHECK_STR(r.body, "");
    http_reply_release(&r);

    CHECK_INT(req("GET", "/healthz", &r), 200);
    CHECK_STR(jstr(r.json, "status"), "ok");
    http_reply_release(&r);
    CHECK_INT(req("GET", "/readyz", &r), 200);
    CHECK_STR(jstr(r.json, "status"), "ready");
    CHECK_STR(jstr(r.json, "provider"), "memory");
    http_reply_release(&r);

    /* A client's request id is echoed; a made-up one is 16 hex digits. */
    http_do(NULL, h.port, "GET", "/healthz", NULL, 0, "X-Request-Id: trace-abc.123", &r);
    CHECK_STR(r.request_id, "trace-abc.123");
    http_reply_release(&r);
    http_do(NULL, h.port, "GET", "/healthz", NULL, 0, "X-Request-Id: bad id\x01", &r);
    CHECK_INT(strlen(r.request_id), 16);
    http_reply_release(&r);
}

/* ?wait=insync waits for the store to serve the change (immediate for the memory store) and
 * says so; other values are refused before anything changes. */
static void test_wait_insync(void)
{
    struct http_reply r;
    CHECK_INT(req("POST", "/backends/10.0.5.1?wait=insync", &r), 201);
    CHECK(json_is_true(json_object_get(r.json, "insync")));
    CHECK(jstr(r.json, "change_id") != NULL);
    http_reply_release(&r);
    CHECK_INT(req("POST", "/backends/10.0.5.1?wait=insync", &r), 200);
    CHECK(jstr(r.json, "change_id") == NULL); /* nothing changed */
    http_reply_release(&r);
    req("POST", "/backends/10.0.5.2?wait=forever", &r);
    check_problem(&r, 400, "bad-request");
    http_reply_release(&r);
    req("GET", "/backends/10.0.5.2", &r);
    CHECK_INT(r.status, 404);
    http_reply_release(&r);
    CHECK_INT(req("DELETE", "/backends/10.0.5.1?wait=insync", &r), 200);
    CHECK(json_is_true(json_object_get(r.json, "insync")));
    http_reply_release(&r);
}

static void test_full(void)
{
    struct http_reply r;
    char path[64];
    long long before;
    /* 4 buckets x 3: fill the A side. */
    for (int i = 100; i < 120; i++) {
        snprintf(path, sizeof(path), "/backends/10.0.1.%d", i);
        req("POST", path, &r);
        http_reply_release(&r);
    }
    before = backend_count();
    CHECK_INT(before, 12 + 0); /* A is full at 12, AAAA empty */
    req("POST", "/backends/10.0.2.1", &r);
    check_problem(&r, 409, "buckets-full");
    CHECK(strstr(jstr(r.json, "detail"), "--max-per-bucket") != NULL);
    http_reply_release(&r);
    CHECK_INT(backend_count(), before);
    /* AAAA still has room. */
    CHECK_INT(req("POST", "/backends/2001:db8::2", &r), 201);
    http_reply_release(&r);
}

static void test_tokens(void)
{
    struct harness_opts o;
    struct harness saved = h;
    struct http_reply r;
    char t1[] = "first-token", t2[] = "second-token";
    char *tokens[] = {t1, t2};

    harness_default_opts(&o);
    o.tokens = tokens;
    o.ntokens = 2;
    harness_start(&h, &o);

    req("POST", "/backends/10.0.0.1", &r);
    check_problem(&r, 401, "unauthorized");
    CHECK(strncmp(r.www_authenticate, "Bearer", 6) == 0);
    http_reply_release(&r);
    http_do(NULL, h.port, "POST", "/backends/10.0.0.1", NULL, 0,
            "Authorization: Bearer first-token-but-longer", &r);
    CHECK_INT(r.status, 401);
    http_reply_release(&r);
    http_do(NULL, h.port, "POST", "/backends/10.0.0.1", NULL, 0, "Authorization: Basic Zm9v",
            &r);
    CHECK_INT(r.status, 401);
    http_reply_release(&r);
    http_do(NULL, h.port, "DELETE", "/backends/10.0.0.1", NULL, 0, "Authorization: Bearer first",
            &r);
    CHECK_INT(r.status, 401);
    http_reply_release(&r);
    CHECK_INT(backend_count(), 0);
    http_do(NULL, h.port, "POST", "/backends/10.0.0.1", NULL, 0,
            "Authorization: Bearer second-token", &r);
    CHECK_INT(r.status, 201);
    http_reply_release(&r);
    /* Reads stay open. */
    CHECK_INT(req("GET", "/backends/10.0.0.1", &r), 200);
    http_reply_release(&r);
    http_do(NULL, h.port, "DELETE", "/backends/10.0.0.1", NULL, 0,
            "Authorization: Bearer first-token", &r);
    CHECK_INT(r.status, 200);
    http_reply_release(&r);
    harness_stop(&h);
    h = saved;
}

/* Oversized headers and URLs are refused by the per-connection memory cap. */
static void test_header_caps(void)
{
    struct http_reply r;
    static char hdr[20100], path[20100];
    memcpy(hdr, "X-Big: ", 7);
    memset(hdr + 7, 'a', 20000);
    hdr[20007] = '\0';
    http_do(NULL, h.port, "GET", "/healthz", NULL, 0, hdr, &r);
    CHECK_INT(r.status, 431);
    http_reply_release(&r);
    memcpy(path, "/backends/", 10);
    memset(path + 10, '1', 20000);
    path[20010] = '\0';
    http_do(NULL, h.port, "GET", path, NULL, 0, NULL, &r);
    /* MHD answers 414 when the line overflows its buffer, or the IP parser 400: refused. */
    CHECK(r.status == 414 || r.status == 400);
    http_reply_release(&r);
}

/* A client that sends half a request and stalls is disconnected after --client-timeout. */
static void test_slow_client_times_out(void)
{
    struct harness_opts o;
    struct harness slow;
    struct sockaddr_in sa;
    struct pollfd pfd;
    char buf[64];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ssize_t got = 1;

    harness_default_opts(&o);
    o.client_timeout = 1;
    harness_start(&slow, &o);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)slow.port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_INT(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    CHECK(write(fd, "POST /backends/10.0.0.1 HTTP/1.1\r\nHost: x\r\n", 44) == 44);
    /* Wait (at most 15 s) for the server to close: read() returns 0 or an error. */
    pfd.fd = fd;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, 15000) == 1)
        got = read(fd, buf, sizeof(buf));
    CHECK(got <= 0);
    close(fd);
    {
        struct http_reply r;
        http_do(NULL, slow.port, "GET", "/backends/10.0.0.1", NULL, 0, NULL, &r);
        CHECK_INT(r.status, 404); /* the half request changed nothing */
        http_reply_release(&r);
    }
    harness_stop(&slow);
}

/* Leases: a lease in the POST body, heartbeats, expiry through the committer. */
static void test_leases(void)
{
    struct harness_opts o;
    struct harness saved = h;
    struct http_reply r;
    int gone = 0;

    harness_default_opts(&o);
    o.reg.default_lease = 1;
    harness_start(&h, &o);

    http_do(NULL, h.port, "POST", "/backends/10.0.9.1", "{\"lease_seconds\": 600}", 22,
            NULL, &r);
    CHECK_INT(r.status, 201);
    CHECK_INT(jint(r.json, "lease_seconds"), 600);
    CHECK(jstr(r.json, "lease_expires_at") != NULL);
    http_reply_release(&r);
    CHECK_INT(req("POST", "/backends/10.0.9.2", &r), 201); /* the default lease: 1 s */
    CHECK_INT(jint(r.json, "lease_seconds"), 1);
    http_reply_release(&r);

    http_do(NULL, h.port, "POST", "/backends/10.0.9.3", "{\"lease\": 5}", 12, NULL, &r);
    check_problem(&r, 400, "bad-request");
    http_reply_release(&r);
    http_do(NULL, h.port, "POST", "/backends/10.0.9.3", "{\"lease_seconds\": 0}", 20, NULL, &r);
    check_problem(&r, 400, "bad-request");
    http_reply_release(&r);
    CHECK_INT(req("GET", "/backends/10.0.9.3", &r), 404); /* refused bodies change nothing */
    http_reply_release(&r);

    CHECK_INT(req("PUT", "/backends/10.0.9.1/heartbeat", &r), 200);
    CHECK_INT(jint(r.json, "lease_seconds"), 600);
    http_reply_release(&r);
    req("PUT", "/backends/10.0.9.9/heartbeat", &r);
    check_problem(&r, 404, "not-registered");
    http_reply_release(&r);
    req("POST", "/backends/10.0.9.1/heartbeat", &r);
    check_problem(&r, 405, "method-not-allowed");
    CHECK_STR(r.allow, "PUT");
    http_reply_release(&r);

    /* 10.0.9.2 has no heartbeat: it leaves within a few reaper passes (bounded wait). */
    for (int i = 0; i < 100 && !gone; i++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        gone = req("GET", "/backends/10.0.9.2", &r) == 404;
        http_reply_release(&r);
    }
    CHECK(gone);
    CHECK_INT(req("GET", "/backends/10.0.9.1", &r), 200); /* its lease is 600 s */
    http_reply_release(&r);
    harness_stop(&h);
    h = saved;
}

/* One request with an optional JSON body: the status (-1 on a transport error). */
static long req_body(const char *method, const char *path, const char *body, struct http_reply *r)
{
    if (http_do(NULL, h.port, method, path, body, body ? strlen(body) : 0, NULL, r))
        return -1;
    return r->status;
}

/* A 400 special-address whose detail names the range and --allow-special. */
static void check_special_refusal(struct http_reply *r, const char *range)
{
    const char *d;
    check_problem(r, 400, "special-address");
    d = jstr(r->json, "detail");
    if (!d || !strstr(d, range) || !strstr(d, "--allow-special")) {
        fprintf(stderr, "detail '%s' lacks '%s' or --allow-special\n", d ? d : "(none)", range);
        CHECK(0);
    }
}

/* Loopback, link-local and this-network addresses: without --allow-special every path that
 * registers refuses them (400 special-address) and nothing changes; removing, draining and
 * looking them up stay allowed. With the flag they register; what the store holds is kept
 * when the flag goes away. */
static void test_special_addresses(void)
{
    static const struct {
        const char *ip, *range;
    } sp[] = {
        {"127.0.0.1", "127.0.0.0/8 (loopback)"},        {"::1", "::1/128 (loopback)"},
        {"169.254.1.1", "169.254.0.0/16 (link-local)"}, {"fe80::1", "fe80::/10 (link-local)"},
        {"0.1.2.3", "0.0.0.0/8 (this network)"},
    };
    static const char list[] =
        "{\"backends\": [\"10.0.0.9\", \"127.0.0.1\", \"::1\", \"169.254.1.1\", \"fe80::1\", "
        "\"0.1.2.3\"]}";
    struct harness_opts o;
    struct harness saved = h;
    struct http_reply r;
    char dir[] = "/tmp/r53reg-special-XXXXXX", state[300], path[96];
    size_t n = sizeof(sp) / sizeof(sp[0]);

    CHECK(mkdtemp(dir) != NULL);
    snprintf(state, sizeof(state), "%s/state.jsonl", dir);
    harness_default_opts(&o);
    o.state_file = state;
    o.allow_special = 0; /* the server's default */
    harness_start(&h, &o);

    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "/backends/%s", sp[i].ip);
        req("POST", path, &r);
        check_special_refusal(&r, sp[i].range);
        http_reply_release(&r);
        snprintf(path, sizeof(path), "/backends/%s?wait=none", sp[i].ip);
        req("POST", path, &r);
        check_special_refusal(&r, sp[i].range);
        http_reply_release(&r);
        snprintf(path, sizeof(path), "/backends/%s?wait=insync", sp[i].ip);
        req_body("POST", path, "{\"lease_seconds\": 60}", &r);
        check_special_refusal(&r, sp[i].range);
        http_reply_release(&r);
        /* Not registered: DELETE, drain and GET answer as for any address. */
        snprintf(path, sizeof(path), "/backends/%s", sp[i].ip);
        req("DELETE", path, &r);
        check_problem(&r, 404, "not-registered");
        http_reply_release(&r);
        req("GET", path, &r);
        check_problem(&r, 404, "not-registered");
        http_reply_release(&r);
        snprintf(path, sizeof(path), "/backends/%s/drain", sp[i].ip);
        req("POST", path, &r);
        check_problem(&r, 404, "not-registered");
        http_reply_release(&r);
    }
    /* The caller here is 127.0.0.1. */
    req("POST", "/backends/self", &r);
    check_special_refusal(&r, "127.0.0.0/8 (loopback)");
    http_reply_release(&r);
    /* Lists are refused whole, naming every special item; the good one is not submitted. */
    for (int k = 0; k < 3; k++) {
        static const char *const how[][2] = {
            {"POST", "/backends"}, {"POST", "/backends?wait=none"}, {"PUT", "/backends"}};
        json_t *errors;
        req_body(how[k][0], how[k][1], list, &r);
        check_special_refusal(&r, "127.0.0.0/8 (loopback)");
        CHECK(strstr(jstr(r.json, "detail"), "5 of 6 item(s) refused") != NULL);
        errors = json_object_get(r.json, "errors");
        CHECK_INT(json_array_size(errors), n);
        for (size_t i = 0; i < n && i < json_array_size(errors); i++) {
            json_t *e = json_array_get(errors, i);
            CHECK_INT(jint(e, "index"), i + 1);
            CHECK_STR(jstr(e, "value"), sp[i].ip);
            CHECK(strstr(jstr(e, "detail"), sp[i].range) != NULL);
        }
        http_reply_release(&r);
    }
    CHECK_INT(req_body("DELETE", "/backends", list, &r), 200); /* removals are not refused */
    CHECK_INT(jint(r.json, "not_registered"), 6);
    http_reply_release(&r);
    CHECK_INT(backend_count(), 0);
    req("GET", "/backends/10.0.0.9", &r);
    check_problem(&r, 404, "not-registered");
    http_reply_release(&r);
    harness_stop(&h);

    /* --allow-special: each registers (into the journal the next start loads). */
    o.allow_special = 1;
    harness_start(&h, &o);
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "/backends/%s", sp[i].ip);
        CHECK_INT(req("POST", path, &r), 201);
        http_reply_release(&r);
    }
    CHECK_INT(req("POST", "/backends/self", &r), 200); /* 127.0.0.1, registered already */
    http_reply_release(&r);
    CHECK_INT(backend_count(), (long long)n);
    harness_stop(&h);

    /* Without it again: what the store holds is kept, can be looked up, drained and removed,
     * but not registered anew. */
    o.allow_special = 0;
    harness_start(&h, &o);
    CHECK_INT(backend_count(), (long long)n);
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "/backends/%s", sp[i].ip);
        CHECK_INT(req("GET", path, &r), 200);
        http_reply_release(&r);
        req("POST", path, &r);
        check_special_refusal(&r, sp[i].range);
        http_reply_release(&r);
    }
    CHECK_INT(req("POST", "/backends/fe80::1/drain", &r), 200);
    CHECK_STR(jstr(r.json, "state"), "draining");
    http_reply_release(&r);
    CHECK_INT(req("DELETE", "/backends/127.0.0.1", &r), 200);
    CHECK_STR(jstr(r.json, "state"), "deregistered");
    http_reply_release(&r);
    CHECK_INT(req_body("DELETE", "/backends", "[\"::1\", \"169.254.1.1\"]", &r), 200);
    CHECK_INT(jint(r.json, "removed"), 2);
    http_reply_release(&r);
    /* PUT removes what its desired set leaves out: 0.1.2.3 and fe80::1. */
    CHECK_INT(req_body("PUT", "/backends", "{\"backends\": [\"10.0.0.9\"]}", &r), 200);
    CHECK_INT(json_array_size(json_object_get(r.json, "removed")), 2);
    http_reply_release(&r);
    CHECK_INT(backend_count(), 1);
    harness_stop(&h);
    h = saved;
    unlink(state);
    rmdir(dir);
}

int main(void)
{
    struct harness_opts o;
    harness_default_opts(&o);
    o.max_body = 1024;
    harness_start(&h, &o);
    test_register_lifecycle();
    test_invalid_ips_change_nothing();
    test_protocol_errors();
    test_wait_insync();
    test_full();
    test_tokens();
    test_leases();
    test_special_addresses();
    test_header_caps();
    test_slow_client_times_out();
    harness_stop(&h);
    return check_done("test_api");
}
