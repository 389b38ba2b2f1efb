/*
 * test_security.c: who may change DNS (docs/security.md), over real HTTP(S) against the
 * in-process server (harness.h) and, for SIGHUP, against the real r53reg binary.
 *
 *   scopes         admin / self / read tokens on /backends/{ip}, /backends/self and the list
 *                  endpoints; a self token cannot touch another address directly, through
 *                  X-Forwarded-For from an untrusted peer, nor through the list endpoints
 *   proxy          --trusted-proxy: X-Forwarded-For decides (right-most untrusted entry)
 *   cidr           --allow-cidr refuses registrations outside with 403
 *   ratelimit      --client-rps/--client-burst: 429 with Retry-After, per caller address
 *   conncap        --max-connections-per-ip
 *   early          a refused mutation is answered on its headers: no 100 Continue, no body
 *                  read (raw sockets)
 *   framing        a NUL in the target, conflicting Content-Length / Transfer-Encoding: 400
 *   audit          one audit line per mutation, token names in logs, no secrets
 *   audit-halfclose  a client that half-closes after its registration: the audit line still
 *                  names the target and the change id
 *   reload         srv_httpd_reload swaps tokens live on a kept-alive connection; bad files
 *                  keep the old tokens
 *   sighup         the same through SIGHUP to a real r53reg process
 *   tls            HTTPS end to end with libcurl; a certificate reload serves the new one
 *
 * Usage: test_security R53REG_BINARY [case...]   (no case: all of them)
 * Addresses: 127.0.0.0/8 (contacted) and 2001:db8::/32 (never contacted).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "server/httpd.h"

extern char **environ;

static const char *r53reg_bin;
static char tmpdir[] = "/tmp/r53reg-security-XXXXXX";

/* ---- helpers ---------------------------------------------------------------------------- */

struct q {
    const char *method, *path;
    const char *token; /* Bearer token, or NULL */
    const char *body;  /* JSON, or NULL */
    const char *xff;   /* X-Forwarded-For value, or NULL */
    const char *xff2;  /* a second X-Forwarded-For header, or NULL */
    const char *local; /* connect from this loopback address, or NULL (127.0.0.1) */
};

static long send_q(unsigned port, struct q q, struct http_reply *r)
{
    struct http_opts o;
    char auth[256], xff[256], xff2[256];
    size_t k = 0;

    memset(&o, 0, sizeof(o));
    o.method = q.method;
    o.path = q.path;
    o.body = q.body;
    o.body_len = q.body ? strlen(q.body) : 0;
    o.local_ip = q.local;
    if (q.token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", q.token);
        o.headers[k++] = auth;
    }
    if (q.xff) {
        snprintf(xff, sizeof(xff), "X-Forwarded-For: %s", q.xff);
        o.headers[k++] = xff;
    }
    if (q.xff2) {
        snprintf(xff2, sizeof(xff2), "X-Forwarded-For: %s", q.xff2);
        o.headers[k++] = xff2;
    }
    if (http_do_opts(NULL, port, &o, r))
        return -1;
    return r->status;
}

/* Send, check the status (and the problem slug when given), release. */
#define EXPECT(port, status, slug, method_, path_, ...)                                            \
    do {                                                                                           \
        struct http_reply r_;                                                                      \
        long st_ =                                                                                 \
            send_q((port), (struct q){.method = (method_), .path = (path_), __VA_ARGS__}, &r_);    \
        CHECK_INT(st_, (status));                                                                  \
        if ((slug) != NULL && st_ == (status))                                                     \
            check_problem(&r_, (status), (slug), __LINE__);                                        \
        if (st_ != (status))                                                                       \
            fprintf(stderr, "  line %d: body %s\n", __LINE__, r_.body);                            \
        http_reply_release(&r_);                                                                   \
    } while (0)

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void check_problem(struct http_reply *r, long status, const char *slug, int line)
{
    char type[96];
    snprintf(type, sizeof(type), "urn:r53reg:problem:%s", slug);
    if (strcmp(r->content_type, "application/problem+json") != 0 || !r->json ||
        !jstr(r->json, "type") || strcmp(jstr(r->json, "type"), type) != 0 ||
        json_integer_value(json_object_get(r->json, "status")) != status) {
        fprintf(stderr, "line %d: expected a %ld %s problem, got %s %s\n", line, status, slug,
                r->content_type, r->body);
        check_failures++;
    }
}

static int contains(const char *hay, const char *needle)
{
    return hay && needle && strstr(hay, needle) != NULL;
}

/* The status of GET /backends/<ip>: is it registered? */
static long lookup(unsigned port, const char *ip)
{
    struct http_reply r;
    char path[96];
    long st;
    snprintf(path, sizeof(path), "/backends/%s", ip);
    st = send_q(port, (struct q){.method = "GET", .path = path}, &r);
    http_reply_release(&r);
    return st;
}

static void write_file(const char *path, const char *text)
{
    char tmp[512];
    FILE *f;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        abort();
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void default_opts(struct harness_opts *o)
{
    harness_default_opts(o);
    o->reg.buckets = 8;
    o->reg.max_per_bucket = 20;
}

/* fleet (self), ops (admin), ro (read) */
static const char FLEET[] = "fleet-secret-7Hq2", OPS[] = "ops-secret-k9Zt", RO[] = "ro-secret-x1Lm";
static struct srv_token scoped[3];

static void make_tokens(void)
{
    static char s1[sizeof(FLEET)], s2[sizeof(OPS)], s3[sizeof(RO)];
    memcpy(s1, FLEET, sizeof(FLEET));
    memcpy(s2, OPS, sizeof(OPS));
    memcpy(s3, RO, sizeof(RO));
    memset(scoped, 0, sizeof(scoped));
    snprintf(scoped[0].name, sizeof(scoped[0].name), "fleet");
    scoped[0].scope = SRV_SCOPE_SELF;
    scoped[0].secret = s1;
    snprintf(scoped[1].name, sizeof(scoped[1].name), "ops");
    scoped[1].scope = SRV_SCOPE_ADMIN;
    scoped[1].secret = s2;
    snprintf(scoped[2].name, sizeof(scoped[2].name), "ro");
    scoped[2].scope = SRV_SCOPE_READ;
    scoped[2].secret = s3;
}

/* ---- stderr capture (the server logs there) ------------------------------------------- */

static int saved_stderr = -1;
static char capture_path[600];

static void capture_start(void)
{
    int fd;
    snprintf(capture_path, sizeof(capture_path), "%s/log-XXXXXX", tmpdir);
    fflush(stderr);
    fd = mkstemp(capture_path);
    if (fd < 0)
        abort();
    saved_stderr = dup(2);
    dup2(fd, 2);
    close(fd);
}

static char *capture_text(void)
{
    FILE *f;
    char *buf;
    long n;
    fflush(stderr);
    f = fopen(capture_path, "r");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    if (buf && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)
        buf[0] = '\0';
    fclose(f);
    return buf;
}

/* Wait (up to 3 s) until the captured log contains every needle; returns the text. */
static char *capture_wait(const char *const *needles)
{
    for (int i = 0;; i++) {
        char *t = capture_text();
        int all = 1;
        for (const char *const *n = needles; *n; n++)
            all &= contains(t, *n);
        if (all || i >= 300)
            return t;
        free(t);
        sleep_ms(10);
    }
}

static void capture_stop(void)
{
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    saved_stderr = -1;
    unlink(capture_path);
}

/* ---- scopes ------------------------------------------------------------------------------- */

static void test_scopes(void)
{
    struct harness h;
    struct harness_opts o;
    struct http_reply r;
    unsigned p;

    default_opts(&o);
    make_tokens();
    o.scoped_tokens = scoped;
    o.nscoped_tokens = 3;
    harness_start(&h, &o);
    p = h.port;

    /* No token, a wrong one, another scheme: 401 for every mutation; reads stay open. */
    EXPECT(p, 401, "unauthorized", "POST", "/backends/127.0.0.1");
    EXPECT(p, 401, "unauthorized", "POST", "/backends/127.0.0.1", .token = "nope");
    EXPECT(p, 401, "unauthorized", "POST", "/backends/self");
    EXPECT(p, 401, "unauthorized", "PUT", "/backends", .body = "[]");
    EXPECT(p, 200, NULL, "GET", "/backends");

    /* self: only the caller's own address (the peer, 127.0.0.1). */
    EXPECT(p, 201, NULL, "POST", "/backends/127.0.0.1", .token = FLEET);
    EXPECT(p, 200, NULL, "POST", "/backends/127.0.0.1", .token = FLEET);
    CHECK_INT(
        send_q(p, (struct q){.method = "POST", .path = "/backends/127.0.0.2", .token = FLEET}, &r),
        403);
    check_problem(&r, 403, "forbidden", __LINE__);
    CHECK(contains(jstr(r.json, "detail"), "token 'fleet' has scope self: it may only change "
                                           "127.0.0.1, the caller's address"));
    http_reply_release(&r);
    CHECK_INT(lookup(p, "127.0.0.2"), 404);
    EXPECT(p, 403, "forbidden", "POST", "/backends/2001:db8::2", .token = FLEET);
    EXPECT(p, 403, "forbidden", "POST", "/backends/127.0.0.2?wait=none", .token = FLEET);
    EXPECT(p, 403, "forbidden", "POST", "/backends/127.0.0.2?wait=insync", .token = FLEET);
    CHECK_INT(lookup(p, "127.0.0.2"), 404);

    /* ... nor deregister someone else (ops registers 127.0.0.3 first). */
    EXPECT(p, 201, NULL, "POST", "/backends/127.0.0.3", .token = OPS);
    EXPECT(p, 403, "forbidden", "DELETE", "/backends/127.0.0.3", .token = FLEET);
    CHECK_INT(lookup(p, "127.0.0.3"), 200);

    /* A self token from another peer address: that address and no other. */
    EXPECT(p, 201, NULL, "POST", "/backends/127.0.0.5", .token = FLEET, .local = "127.0.0.5");
    EXPECT(p, 403, "forbidden", "POST", "/backends/127.0.0.1", .token = FLEET,
           .local = "127.0.0.5");
    EXPECT(p, 403, "forbidden", "DELETE", "/backends/127.0.0.1", .token = FLEET,
           .local = "127.0.0.5");
    CHECK_INT(lookup(p, "127.0.0.1"), 200);

    /* X-Forwarded-For from an untrusted peer is ignored: the caller stays 127.0.0.1. */
    EXPECT(p, 403, "forbidden", "POST", "/backends/127.0.0.9", .token = FLEET, .xff = "127.0.0.9");
    EXPECT(p, 403, "forbidden", "DELETE", "/backends/127.0.0.3", .token = FLEET,
           .xff = "127.0.0.3");
    CHECK_INT(
        send_q(p,
               (struct q){
                   .method = "POST", .path = "/backends/self", .token = FLEET, .xff = "127.0.0.9"},
               &r),
        200); /* 127.0.0.1 again, already registered */
    CHECK_STR(jstr(r.json, "ip"), "127.0.0.1");
    http_reply_release(&r);
    CHECK_INT(lookup(p, "127.0.0.9"), 404);
    CHECK_INT(lookup(p, "127.0.0.3"), 200);

    /* /backends/self: the caller's own address, through GET, DELETE and POST. */
    CHECK_INT(send_q(p, (struct q){.method = "GET", .path = "/backends/self"}, &r), 200);
    CHECK_STR(jstr(r.json, "ip"), "127.0.0.1");
    http_reply_release(&r);
    CHECK_INT(
        send_q(p, (struct q){.method = "DELETE", .path = "/backends/self", .token = FLEET}, &r),
        200);
    CHECK_STR(jstr(r.json, "ip"), "127.0.0.1");
    CHECK_STR(jstr(r.json, "state"), "deregistered");
    http_reply_release(&r);
    EXPECT(p, 404, "not-registered", "GET", "/backends/self");
    CHECK_INT(send_q(p, (struct q){.method = "POST", .path = "/backends/self", .token = FLEET}, &r),
              201);
    CHECK_STR(jstr(r.json, "ip"), "127.0.0.1");
    CHECK_STR(r.location, "/backends/127.0.0.1");
    http_reply_release(&r);
    CHECK_INT(send_q(p,
                     (struct q){.method = "POST",
                                .path = "/backends/self",
                                .token = FLEET,
                                .local = "127.0.0.6"},
                     &r),
              201);
    CHECK_STR(jstr(r.json, "ip"), "127.0.0.6");
    http_reply_release(&r);
    EXPECT(p, 405, "method-not-allowed", "PUT", "/backends/self", .token = FLEET);

    /* The list endpoints: only when every item is the caller's address. */
    EXPECT(p, 200, NULL, "POST", "/backends", .token = FLEET, .body = "[\"127.0.0.1\"]");
    CHECK_INT(send_q(p,
                     (struct q){.method = "POST",
                                .path = "/backends",
                                .token = FLEET,
                                .body = "[\"127.0.0.1\", \"127.0.0.7\", \"2001:db8::7\"]"},
                     &r),
              403);
    check_problem(&r, 403, "forbidden", __LINE__);
    CHECK_INT(json_array_size(json_object_get(r.json, "errors")), 2);
    CHECK_INT(json_integer_value(
                  json_object_get(json_array_get(json_object_get(r.json, "errors"), 0), "index")),
              1);
    CHECK(contains(jstr(r.json, "detail"), "nothing was submitted"));
    http_reply_release(&r);
    CHECK_INT(lookup(p, "127.0.0.7"), 404);
    EXPECT(p, 403, "forbidden", "DELETE", "/backends", .token = FLEET,
           .body = "{\"backends\": [\"127.0.0.3\"]}");
    EXPECT(p, 403, "forbidden", "DELETE", "/backends?wait=none", .token = FLEET,
           .body = "[\"127.0.0.3\"]");
    EXPECT(p, 403, "forbidden", "POST", "/backends", .token = FLEET, .body = "[\"127.0.0.9\"]",
           .xff = "127.0.0.9");
    CHECK_INT(lookup(p, "127.0.0.3"), 200);
    CHECK_INT(
        send_q(p,
               (struct q){
                   .method = "PUT", .path = "/backends", .token = FLEET, .body = "[\"127.0.0.1\"]"},
               &r),
        403);
    CHECK(contains(jstr(r.json, "detail"), "needs an admin token"));
    http_reply_release(&r);
    CHECK_INT(lookup(p, "127.0.0.3"), 200);
    EXPECT(p, 200, NULL, "DELETE", "/backends", .token = FLEET, .body = "[\"127.0.0.1\"]");

    /* read: GET only. */
    CHECK_INT(
        send_q(p, (struct q){.method = "POST", .path = "/backends/127.0.0.1", .token = RO}, &r),
        403);
    CHECK(contains(jstr(r.json, "detail"), "token 'ro' has scope read"));
    http_reply_release(&r);
    EXPECT(p, 403, "forbidden", "DELETE", "/backends/127.0.0.3", .token = RO);
    EXPECT(p, 403, "forbidden", "POST", "/backends/self", .token = RO);
    EXPECT(p, 403, "forbidden", "POST", "/backends", .token = RO, .body = "[\"127.0.0.1\"]");
    EXPECT(p, 403, "forbidden", "PUT", "/backends", .token = RO, .body = "[\"127.0.0.1\"]");
    EXPECT(p, 200, NULL, "GET", "/backends/127.0.0.3", .token = RO);
    CHECK_INT(lookup(p, "127.0.0.3"), 200);
    CHECK_INT(lookup(p, "127.0.0.1"), 404);

    /* admin: everything. */
    EXPECT(p, 201, NULL, "POST", "/backends/2001:db8::8", .token = OPS);
    EXPECT(p, 200, NULL, "DELETE", "/backends/127.0.0.5", .token = OPS);
    EXPECT(p, 200, NULL, "POST", "/backends", .token = OPS,
           .body = "[\"127.0.0.20\", \"127.0.0.21\"]");
    EXPECT(p, 200, NULL, "PUT", "/backends", .token = OPS,
           .body = "[\"127.0.0.20\", \"2001:db8::8\"]");
    CHECK_INT(lookup(p, "127.0.0.3"), 404);
    CHECK_INT(lookup(p, "127.0.0.20"), 200);

    /*
     * Token guessing through reads: a read is answered the same with a wrong
     * token, a right one or none, and the anonymous /metrics names no token (not even
     * "-invalid-"), so a guess cannot be tested there.
     */
    {
        struct http_reply a, b, c;
        CHECK_INT(send_q(p, (struct q){.method = "GET", .path = "/backends/127.0.0.20"}, &a), 200);
        CHECK_INT(send_q(p, (struct q){.method = "GET", .path = "/backends/127.0.0.20",
                                       .token = "wrong-guess-0123456789"}, &b), 200);
        CHECK_INT(send_q(p, (struct q){.method = "GET", .path = "/backends/127.0.0.20",
                                       .token = OPS}, &c), 200);
        CHECK(a.body && b.body && c.body && !strcmp(a.body, b.body) && !strcmp(a.body, c.body));
        http_reply_release(&a);
        http_reply_release(&b);
        http_reply_release(&c);
    }
    CHECK_INT(send_q(p, (struct q){.method = "GET", .path = "/metrics", .token = "wrong"}, &r),
              200);
    CHECK(!contains(r.body, "-invalid-") && !contains(r.body, "token=\"fleet\"") &&
          !contains(r.body, "token=\"ops\"") && !contains(r.body, "token=\"ro\"") &&
          !contains(r.body, "by_token"));
    CHECK(!contains(r.body, FLEET) && !contains(r.body, OPS));
    http_reply_release(&r);
    harness_stop(&h);
}

/* ---- trusted proxies ---------------------------------------------------------------------- */

static void test_proxy(void)
{
    struct harness h;
    struct harness_opts o;
    struct http_reply r;
    unsigned p;

    default_opts(&o);
    make_tokens();
    o.scoped_tokens = scoped;
    o.nscoped_tokens = 3;
    o.trusted_proxies = "127.0.0.1/32, 127.0.1.0/24";
    harness_start(&h, &o);
    p = h.port;

    /* The peer 127.0.0.1 is a trusted proxy: X-Forwarded-For names the caller. */
    EXPECT(p, 201, NULL, "POST", "/backends/127.0.0.9", .token = FLEET, .xff = "127.0.0.9");
    CHECK_INT(send_q(p,
                     (struct q){.method = "POST",
                                .path = "/backends/127.0.0.1",
                                .token = FLEET,
                                .xff = "127.0.0.9"},
                     &r),
              403);
    CHECK(contains(jstr(r.json, "detail"), "it may only change 127.0.0.9, the caller's address"));
    http_reply_release(&r);
    /* The right-most untrusted entry counts: a client cannot prepend its way in. */
    EXPECT(p, 403, "forbidden", "POST", "/backends/127.0.0.8", .token = FLEET,
           .xff = "127.0.0.8, 127.0.0.9");
    EXPECT(p, 200, NULL, "POST", "/backends/127.0.0.9", .token = FLEET,
           .xff = "127.0.0.8, 127.0.0.9");
    /* Trusted hops on the right are skipped. */
    EXPECT(p, 200, NULL, "POST", "/backends/127.0.0.9", .token = FLEET,
           .xff = "127.0.0.9, 127.0.1.7,127.0.0.1");
    EXPECT(p, 403, "forbidden", "POST", "/backends/127.0.1.7", .token = FLEET,
           .xff = "127.0.0.9, 127.0.1.7");
    /* Several headers are one list, in order. */
    EXPECT(p, 201, NULL, "POST", "/backends/127.0.0.10", .token = FLEET, .xff = "127.0.0.9",
           .xff2 = "127.0.0.10");
    /* Ports and brackets as some proxies write them. */
    CHECK_INT(send_q(p,
                     (struct q){.method = "POST",
                                .path = "/backends/self",
                                .token = FLEET,
                                .xff = "[2001:db8::9]:443"},
                     &r),
              201);
    CHECK_STR(jstr(r.json, "ip"), "2001:db8::9");
    http_reply_release(&r);
    CHECK_INT(send_q(p,
                     (struct q){.method = "POST",
                                .path = "/backends/self",
                                .token = FLEET,
                                .xff = "127.0.0.11:5353"},
                     &r),
              201);
    CHECK_STR(jstr(r.json, "ip"), "127.0.0.11");
    http_reply_release(&r);
    /* No header: the proxy itself is the caller. */
    EXPECT(p, 201, NULL, "POST", "/backends/127.0.0.1", .token = FLEET);
    /* Every entry trusted: the left-most. */
    EXPECT(p, 201, NULL, "POST", "/backends/127.0.1.8", .token = FLEET,
           .xff = "127.0.1.8, 127.0.1.9");
    /* An unparsable entry on the walk: the caller is unknown, so a self token may do nothing. */
    EXPECT(p, 403, "forbidden", "POST", "/backends/127.0.0.9", .token = FLEET, .xff = "unknown");
    EXPECT(p, 400, "bad-request", "POST", "/backends/self", .token = FLEET,
           .xff = "127.0.0.9, garbage");
    EXPECT(p, 400, "bad-request", "GET", "/backends/self", .xff = "garbage");

    /* From a peer that is not trusted (127.0.0.5), the header is ignored again. */
    EXPECT(p, 403, "forbidden", "POST", "/backends/127.0.0.12", .token = FLEET, .xff = "127.0.0.12",
           .local = "127.0.0.5");
    CHECK_INT(lookup(p, "127.0.0.12"), 404);
    CHECK_INT(send_q(p,
                     (struct q){.method = "POST",
                                .path = "/backends/self",
                                .token = FLEET,
                                .xff = "127.0.0.12",
                                .local = "127.0.0.5"},
                     &r),
              201);
    CHECK_STR(jstr(r.json, "ip"), "127.0.0.5");
    http_reply_release(&r);
    /* The list endpoints follow the same caller. */
    EXPECT(p, 200, NULL, "DELETE", "/backends", .token = FLEET, .body = "[\"127.0.0.9\"]",
           .xff = "127.0.0.9");
    EXPECT(p, 403, "forbidden", "DELETE", "/backends", .token = FLEET, .body = "[\"127.0.0.10\"]",
           .xff = "127.0.0.9");
    CHECK_INT(lookup(p, "127.0.0.9"), 404);
    CHECK_INT(lookup(p, "127.0.0.10"), 200);
    harness_stop(&h);
}

/* ---- --allow-cidr ------------------------------------------------------------------------ */

static void test_cidr(void)
{
    struct harness h;
    struct harness_opts o;
    struct http_reply r;
    unsigned p;
    char detail[200];

    default_opts(&o);
    o.allow_cidr = "127.0.0.0/30,2001:db8::/64";
    harness_start(&h, &o);
    p = h.port;
    EXPECT(p, 201, NULL, "POST", "/backends/127.0.0.2");
    EXPECT(p, 201, NULL, "POST", "/backends/2001:db8::5");
    CHECK_INT(send_q(p, (struct q){.method = "POST", .path = "/backends/127.0.0.9"}, &r), 403);
    check_problem(&r, 403, "forbidden", __LINE__);
    CHECK(contains(jstr(r.json, "detail"),
                   "127.0.0.9 is outside --allow-cidr 127.0.0.0/30,2001:db8::/64"));
    http_reply_release(&r);
    EXPECT(p, 403, "forbidden", "POST", "/backends/2001:db8:1::5");
    EXPECT(p, 403, "forbidden", "POST", "/backends/127.0.0.9?wait=none");
    EXPECT(p, 403, "forbidden", "POST", "/backends", .body = "[\"127.0.0.3\", \"127.0.0.4\"]");
    EXPECT(p, 403, "forbidden", "PUT", "/backends", .body = "[\"127.0.0.2\", \"10.0.0.1\"]");
    EXPECT(p, 403, "forbidden", "POST", "/backends/self", .local = "127.0.0.5");
    EXPECT(p, 201, NULL, "POST", "/backends/self"); /* 127.0.0.1 is inside */
    CHECK_INT(lookup(p, "127.0.0.3"), 404);
    CHECK_INT(lookup(p, "127.0.0.2"), 200);
    /* Deregistration is not a registration: it is never refused by the allowlist. */
    EXPECT(p, 404, "not-registered", "DELETE", "/backends/127.0.0.9");
    EXPECT(p, 200, NULL, "DELETE", "/backends", .body = "[\"127.0.0.9\"]");
    harness_stop(&h);

    /* A bad list does not start. */
    default_opts(&o);
    o.allow_cidr = "10.0.0.1/8";
    CHECK(harness_try_start(&h, &o, detail, sizeof(detail)) != 0);
    CHECK(contains(detail, "did you mean 10.0.0.0/8?"));
}

/* ---- rate limits and connection caps ----------------------------------------------------- */

static void test_ratelimit(void)
{
    struct harness h;
    struct harness_opts o;
    struct http_reply r;
    unsigned p;

    default_opts(&o);
    o.client_rps = 1;
    o.client_burst = 3;
    o.trusted_proxies = "127.0.0.200/32";
    harness_start(&h, &o);
    p = h.port;
    EXPECT(p, 201, NULL, "POST", "/backends/127.0.0.10");
    EXPECT(p, 201, NULL, "POST", "/backends/127.0.0.11");
    EXPECT(p, 400, "invalid-ip", "POST", "/backends/127.0.0.012"); /* counts too */
    CHECK_INT(send_q(p, (struct q){.method = "POST", .path = "/backends/127.0.0.13"}, &r), 429);
    check_problem(&r, 429, "too-many-requests", __LINE__);
    CHECK_STR(r.retry_after, "1");
    CHECK(contains(jstr(r.json, "detail"), "--client-rps 1"));
    http_reply_release(&r);
    EXPECT(p, 429, "too-many-requests", "DELETE", "/backends/127.0.0.10");
    EXPECT(p, 429, "too-many-requests", "POST", "/backends", .body = "[\"127.0.0.13\"]");
    CHECK_INT(lookup(p, "127.0.0.13"), 404); /* reads are not limited */
    CHECK_INT(lookup(p, "127.0.0.10"), 200);
    /* Per caller address: another client is not affected. */
    EXPECT(p, 201, NULL, "POST", "/backends/127.0.0.13", .local = "127.0.0.6");
    /* Behind a trusted proxy, each forwarded caller has its own bucket. */
    for (int i = 0; i < 3; i++)
        EXPECT(p, 200, NULL, "POST", "/backends/127.0.0.13", .local = "127.0.0.200",
               .xff = "10.1.0.1");
    EXPECT(p, 429, "too-many-requests", "POST", "/backends/127.0.0.13", .local = "127.0.0.200",
           .xff = "10.1.0.1");
    EXPECT(p, 200, NULL, "POST", "/backends/127.0.0.13", .local = "127.0.0.200", .xff = "10.1.0.2");
    /* The bucket refills at --client-rps. */
    sleep_ms(1100);
    EXPECT(p, 201, NULL, "POST", "/backends/127.0.0.14");
    EXPECT(p, 429, "too-many-requests", "POST", "/backends/127.0.0.15");
    harness_stop(&h);
}

static int connect_from(const char *local, unsigned port)
{
    struct sockaddr_in a, l;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    memset(&l, 0, sizeof(l));
    a.sin_family = l.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    inet_pton(AF_INET, local, &l.sin_addr);
    if (fd < 0 || bind(fd, (struct sockaddr *)&l, sizeof(l)) ||
        connect(fd, (struct sockaddr *)&a, sizeof(a))) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Closed by the server within ms milliseconds? */
static int closed_by_server(int fd, int ms)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    char c;
    if (poll(&pfd, 1, ms) <= 0)
        return 0;
    return recv(fd, &c, 1, 0) <= 0;
}

static void test_conncap(void)
{
    struct harness h;
    struct harness_opts o;
    int a, b, c;

    default_opts(&o);
    o.max_connections_per_ip = 2;
    harness_start(&h, &o);
    a = connect_from("127.0.0.31", h.port);
    b = connect_from("127.0.0.31", h.port);
    sleep_ms(100);
    c = connect_from("127.0.0.31", h.port);
    CHECK(a >= 0 && b >= 0 && c >= 0);
    CHECK(closed_by_server(c, 2000));
    CHECK(!closed_by_server(a, 100));
    EXPECT(h.port, 200, NULL, "GET", "/healthz", .local = "127.0.0.32");
    close(a);
    close(b);
    close(c);
    /* Once they are closed, the address may connect again. */
    for (int i = 0; i < 100; i++) {
        struct http_reply r;
        long st = send_q(
            h.port, (struct q){.method = "GET", .path = "/healthz", .local = "127.0.0.31"}, &r);
        http_reply_release(&r);
        if (st == 200)
            break;
        CHECK(i < 99);
        sleep_ms(20);
    }
    harness_stop(&h);
}

/* ---- raw HTTP ----------------------------------------------------------------------------- */

/* Send text on fd (all of it); 0, or -1. */
static int send_all(int fd, const char *text, size_t len)
{
    while (len) {
        ssize_t n = send(fd, text, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        text += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * Read from fd into buf (cap bytes, NUL-terminated) until the text holds "\r\n\r\n" after the
 * last status line that is not 100 Continue, the peer closes, or ms pass. Returns the length.
 */
static size_t recv_answer(int fd, char *buf, size_t cap, int ms)
{
    size_t len = 0;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    buf[0] = '\0';
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        long left;
        ssize_t n;
        const char *last = buf, *p;
        while ((p = strstr(last + 1, "HTTP/1.")))
            last = p;
        if (strncmp(last, "HTTP/1.1 100", 12) != 0 && strstr(last, "\r\n\r\n"))
            return len;
        clock_gettime(CLOCK_MONOTONIC, &now);
        left = ms - ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            return len;
        n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            return len;
        len += (size_t)n;
        buf[len] = '\0';
        if (len + 1 >= cap)
            return len;
    }
}

/* ---- authorization before the body ------------------------------------------------------ */

/*
 * A refused mutation is answered on its headers: no 100 Continue, and the answer
 * arrives while the client has not sent (any, or most of) the body, so nothing of it is
 * buffered. A bodiless refusal keeps its connection.
 */
static void test_early(void)
{
    struct harness h;
    struct harness_opts o;
    static const struct {
        const char *method, *path, *auth;
        int code;
    } cases[] = {
        {"POST", "/backends", NULL, 401},
        {"PUT", "/backends", "Authorization: Bearer wrong-guess-0123456789\r\n", 401},
        {"DELETE", "/backends", NULL, 401},
        {"POST", "/backends/127.0.0.9", NULL, 401},
        {"PUT", "/backends", "Authorization: Bearer fleet-secret-7Hq2\r\n", 403},
        {"POST", "/backends", "Authorization: Bearer ro-secret-x1Lm\r\n", 403},
    };
    char buf[4096], req[512];

    default_opts(&o);
    make_tokens();
    o.scoped_tokens = scoped;
    o.nscoped_tokens = 3;
    o.max_body = 1 << 20;
    harness_start(&h, &o);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int expect = 1; expect >= 0; expect--) {
            int fd = connect_from("127.0.0.1", h.port);
            char status[16];
            size_t n;
            CHECK(fd >= 0);
            if (fd < 0)
                continue;
            n = (size_t)snprintf(req, sizeof(req),
                                 "%s %s HTTP/1.1\r\nHost: r53reg\r\nContent-Type: "
                                 "application/json\r\nContent-Length: 1000000\r\n%s%s\r\n",
                                 cases[i].method, cases[i].path,
                                 expect ? "Expect: 100-continue\r\n" : "",
                                 cases[i].auth ? cases[i].auth : "");
            CHECK_INT(send_all(fd, req, n), 0);
            if (!expect) /* the start of the body only: the rest is never sent */
                CHECK_INT(send_all(fd, "[\"127.0.0.1\"", 12), 0);
            recv_answer(fd, buf, sizeof(buf), 3000);
            snprintf(status, sizeof(status), "HTTP/1.1 %d", cases[i].code);
            if (strncmp(buf, status, strlen(status)) != 0 || contains(buf, "100 Continue")) {
                fprintf(stderr, "early: %s %s (expect %d): want %s first, got '%.200s'\n",
                        cases[i].method, cases[i].path, expect, status, buf);
                CHECK(0);
            }
            close(fd);
        }
    }
    /* The server still reads the body of an authorized request (the test sees 100 Continue). */
    {
        int fd = connect_from("127.0.0.1", h.port);
        const char body[] = "[\"127.0.0.7\"]";
        size_t n = (size_t)snprintf(req, sizeof(req),
                                    "POST /backends HTTP/1.1\r\nHost: r53reg\r\nContent-Type: "
                                    "application/json\r\nContent-Length: %zu\r\nExpect: "
                                    "100-continue\r\nAuthorization: Bearer %s\r\n\r\n",
                                    sizeof(body) - 1, OPS);
        CHECK(fd >= 0);
        CHECK_INT(send_all(fd, req, n), 0);
        {
            struct pollfd pfd = {fd, POLLIN, 0};
            ssize_t got;
            CHECK(poll(&pfd, 1, 3000) == 1);
            got = recv(fd, buf, sizeof(buf) - 1, 0);
            buf[got > 0 ? got : 0] = '\0';
            CHECK(contains(buf, "HTTP/1.1 100 Continue"));
        }
        CHECK_INT(send_all(fd, body, sizeof(body) - 1), 0);
        recv_answer(fd, buf, sizeof(buf), 3000);
        CHECK(contains(buf, "HTTP/1.1 200"));
        close(fd);
    }
    /* A refusal without a body keeps the connection alive. */
    {
        void *keep = NULL;
        struct http_reply r;
        struct http_opts q;
        memset(&q, 0, sizeof(q));
        q.method = "POST";
        q.path = "/backends/127.0.0.8";
        for (int i = 0; i < 2; i++) {
            CHECK_INT(http_do_opts(&keep, h.port, &q, &r), 0);
            CHECK_INT(r.status, 401);
            if (i)
                CHECK_INT(r.num_connects, 0);
            http_reply_release(&r);
        }
        http_handle_free(keep);
    }
    harness_stop(&h);
}

/* ---- lenient parsing ------------------------------------------------------------------- */

/* Send a raw request (len bytes, NULs allowed) on a fresh connection; the answer's status. */
static int raw_status(unsigned port, const char *text, size_t len, char *buf, size_t cap)
{
    int fd = connect_from("127.0.0.1", port), st = -1;
    if (fd < 0)
        return -1;
    if (send_all(fd, text, len) == 0 && recv_answer(fd, buf, cap, 3000) >= 12 &&
        !strncmp(buf, "HTTP/1.", 7))
        st = atoi(buf + 9);
    close(fd);
    return st;
}

/*
 * Requests whose framing or target libmicrohttpd reads leniently are refused with 400 and
 * change nothing: a NUL inside the target (MHD's C string would end there), two
 * different Content-Length headers, Content-Length together with Transfer-Encoding.
 */
static void test_framing(void)
{
    struct harness h;
    struct harness_opts o;
    char buf[4096];
    static const char nul_target[] = "POST /backends/127.0.0.80\0junk HTTP/1.1\r\nHost: r\r\n\r\n";
    static const char nul_query[] =
        "POST /backends/127.0.0.81?wait=none\0junk HTTP/1.1\r\nHost: r\r\n\r\n";
    static const char two_lengths[] = "POST /backends HTTP/1.1\r\nHost: r\r\nContent-Type: "
                                      "application/json\r\nContent-Length: 15\r\n"
                                      "Content-Length: 14\r\n\r\n[\"127.0.0.82\"]";
    static const char length_and_chunked[] =
        "POST /backends HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\n"
        "Content-Length: 14\r\nTransfer-Encoding: chunked\r\n\r\ne\r\n[\"127.0.0.83\"]\r\n"
        "0\r\n\r\n";
    static const char chunked_and_length[] =
        "POST /backends HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nContent-Length: 14\r\n\r\ne\r\n[\"127.0.0.84\"]\r\n"
        "0\r\n\r\n";
    static const char good[] = "POST /backends/127.0.0.85?wait=none HTTP/1.1\r\nHost: r\r\n\r\n";
    static const char same_lengths[] = "POST /backends HTTP/1.1\r\nHost: r\r\nContent-Type: "
                                       "application/json\r\nContent-Length: 14\r\n"
                                       "Content-Length: 14\r\n\r\n[\"127.0.0.86\"]";

    default_opts(&o);
    harness_start(&h, &o); /* no token: anonymous changes from loopback */
    CHECK_INT(raw_status(h.port, nul_target, sizeof(nul_target) - 1, buf, sizeof(buf)), 400);
    CHECK_INT(raw_status(h.port, nul_query, sizeof(nul_query) - 1, buf, sizeof(buf)), 400);
    CHECK_INT(raw_status(h.port, two_lengths, sizeof(two_lengths) - 1, buf, sizeof(buf)), 400);
    CHECK_INT(raw_status(h.port, length_and_chunked, sizeof(length_and_chunked) - 1, buf,
                         sizeof(buf)),
              400);
    CHECK_INT(raw_status(h.port, chunked_and_length, sizeof(chunked_and_length) - 1, buf,
                         sizeof(buf)),
              400);
    CHECK_INT(lookup(h.port, "127.0.0.80"), 404);
    CHECK_INT(lookup(h.port, "127.0.0.81"), 404);
    CHECK_INT(lookup(h.port, "127.0.0.82"), 404);
    CHECK_INT(lookup(h.port, "127.0.0.83"), 404);
    CHECK_INT(lookup(h.port, "127.0.0.84"), 404);
    /* The same requests without the ambiguity still work. */
    CHECK_INT(raw_status(h.port, good, sizeof(good) - 1, buf, sizeof(buf)), 202);
    CHECK_INT(raw_status(h.port, same_lengths, sizeof(same_lengths) - 1, buf, sizeof(buf)), 200);
    harness_stop(&h);
}

/* ---- the audit line ----------------------------------------------------------------------- */

static void test_audit(void)
{
    struct harness h;
    struct harness_opts o;
    char *log;

    default_opts(&o);
    make_tokens();
    o.scoped_tokens = scoped;
    o.nscoped_tokens = 3;
    harness_start(&h, &o);
    capture_start();
    EXPECT(h.port, 201, NULL, "POST", "/backends/127.0.0.1", .token = FLEET);
    EXPECT(h.port, 403, "forbidden", "POST", "/backends/127.0.0.2", .token = FLEET);
    EXPECT(h.port, 401, "unauthorized", "DELETE", "/backends/127.0.0.1", .token = "wrong-one");
    EXPECT(h.port, 200, NULL, "POST", "/backends", .token = OPS,
           .body = "[\"127.0.0.3\", \"127.0.0.4\"]");
    EXPECT(h.port, 202, NULL, "DELETE", "/backends/127.0.0.3?wait=none", .token = OPS);
    EXPECT(h.port, 200, NULL, "GET", "/backends", .token = RO);
    {
        const char *const want[] = {"msg=audit", "status=201", "status=403", "status=401",
                                    "items=2",   "status=202", "method=GET", NULL};
        log = capture_wait(want);
    }
    capture_stop();
    {
        /* One line per mutation; each names the token, the caller, what and the outcome. */
        int n = 0;
        for (const char *p = log; (p = strstr(p, "msg=audit")); p++)
            n++;
        CHECK_INT(n, 5);
    }
    CHECK(contains(log, "token=fleet scope=self caller=127.0.0.1 peer=127.0.0.1 method=POST "
                        "path=/backends/127.0.0.1 target=127.0.0.1 status=201 change_id="));
    CHECK(!contains(log, "target=127.0.0.1 status=201 change_id=-"));
    CHECK(contains(log, "token=fleet scope=self caller=127.0.0.1 peer=127.0.0.1 method=POST "
                        "path=/backends/127.0.0.2 target=127.0.0.2 status=403"));
    CHECK(contains(log, "token=-invalid- scope=- caller=127.0.0.1"));
    CHECK(contains(log, "token=ops scope=admin caller=127.0.0.1 peer=127.0.0.1 method=POST "
                        "path=/backends items=2 status=200 change_id="));
    CHECK(contains(log, "target=127.0.0.3 status=202 change_id=- accepted_change="));
    /* Reads never evaluate a token: the request log names none. */
    CHECK(contains(log, "msg=request") && contains(log, "token=- method=GET") &&
          !contains(log, "token=ro"));
    /* Never a secret. */
    CHECK(!contains(log, FLEET) && !contains(log, OPS) && !contains(log, RO) &&
          !contains(log, "wrong-one"));
    free(log);
    harness_stop(&h);
}

/*
 * A client that sends a registration and shuts down its write side: the change is
 * committed, and its audit line still names the target and the change id. The target is
 * known from the request line, so even a refusal on the headers names it.
 */
static void test_audit_halfclose(void)
{
    struct harness h;
    struct harness_opts o;
    char *log, buf[4096];

    default_opts(&o);
    o.apply_delay_ms = 300; /* the write side is shut while the change is being committed */
    harness_start(&h, &o);
    capture_start();
    for (int i = 0; i < 4; i++) {
        char req[160];
        int fd;
        size_t n = (size_t)snprintf(req, sizeof(req),
                                    "POST /backends/127.0.0.%d HTTP/1.1\r\nHost: r\r\n\r\n",
                                    90 + i);
        fd = connect_from("127.0.0.1", h.port);
        CHECK(fd >= 0);
        if (fd < 0)
            continue;
        CHECK_INT(send_all(fd, req, n), 0);
        if (i % 2)
            sleep_ms(50); /* odd ones: shut down while the request is parked */
        shutdown(fd, SHUT_WR);
        recv_answer(fd, buf, sizeof(buf), 3000);
        close(fd);
    }
    {
        const char *const want[] = {"path=/backends/127.0.0.93 ", NULL};
        log = capture_wait(want);
    }
    capture_stop();
    for (int i = 0; i < 4; i++) {
        char path[64], want[64], ip[32];
        const char *line;
        snprintf(ip, sizeof(ip), "127.0.0.%d", 90 + i);
        CHECK_INT(lookup(h.port, ip), 200); /* committed */
        snprintf(path, sizeof(path), "path=/backends/%s ", ip);
        snprintf(want, sizeof(want), "target=%s ", ip);
        for (line = log; (line = strstr(line, "msg=audit id=")); line++) {
            const char *eol = strchr(line, '\n');
            size_t len = eol ? (size_t)(eol - line) : strlen(line);
            if (!memmem(line, len, path, strlen(path)))
                continue;
            if (!memmem(line, len, want, strlen(want)) || memmem(line, len, "change_id=-", 11)) {
                fprintf(stderr, "audit-halfclose: %.*s\n", (int)len, line);
                CHECK(0);
            }
            break;
        }
        CHECK(line != NULL);
    }
    free(log);
    harness_stop(&h);

    /* Refused on the headers (401), before any handler ran: the target is still named. */
    default_opts(&o);
    make_tokens();
    o.scoped_tokens = scoped;
    o.nscoped_tokens = 3;
    harness_start(&h, &o);
    capture_start();
    EXPECT(h.port, 401, "unauthorized", "POST", "/backends/127.0.0.95");
    EXPECT(h.port, 401, "unauthorized", "POST", "/backends/self");
    {
        const char *const want[] = {"path=/backends/self ", NULL};
        log = capture_wait(want);
    }
    capture_stop();
    CHECK(contains(log, "path=/backends/127.0.0.95 target=127.0.0.95 status=401"));
    CHECK(contains(log, "path=/backends/self target=127.0.0.1 status=401"));
    free(log);
    harness_stop(&h);
}

/* ---- reload ------------------------------------------------------------------------------- */

static void test_reload(void)
{
    struct harness h;
    struct harness_opts o;
    struct http_reply r;
    struct http_opts q;
    void *keep = NULL;
    char path[600], detail[400], *log;
    const char *old_auth = "Authorization: Bearer old-token-AAAA-AAAA";

    snprintf(path, sizeof(path), "%s/tokens", tmpdir);
    write_file(path, "# ops\nadmin ops old-token-AAAA-AAAA\n");
    default_opts(&o);
    o.token_file = path;
    harness_start(&h, &o);

    /* A kept-alive connection, before and after the reload. */
    memset(&q, 0, sizeof(q));
    q.method = "POST";
    q.path = "/backends/127.0.0.1";
    q.headers[0] = old_auth;
    CHECK_INT(http_do_opts(&keep, h.port, &q, &r), 0);
    CHECK_INT(r.status, 201);
    http_reply_release(&r);

    write_file(path, "admin ops new-token-BBBB-BBBB\nself fleet fleet-token-CCCC\nbare-token-DDDD-DDDD\n");
    capture_start();
    CHECK_INT(srv_httpd_reload(h.httpd, detail, sizeof(detail)), RC_OK);
    q.path = "/backends/127.0.0.2";
    CHECK_INT(http_do_opts(&keep, h.port, &q, &r), 0);
    CHECK_INT(r.status, 401);     /* the old token is gone at once */
    CHECK_INT(r.num_connects, 0); /* on the same connection: nothing was dropped */
    http_reply_release(&r);
    EXPECT(h.port, 201, NULL, "POST", "/backends/127.0.0.2", .token = "new-token-BBBB-BBBB");
    EXPECT(h.port, 403, "forbidden", "POST", "/backends/127.0.0.3", .token = "fleet-token-CCCC");
    EXPECT(h.port, 201, NULL, "POST", "/backends/127.0.0.3", .token = "bare-token-DDDD-DDDD");

    /* Bad files keep what is in use: a bad line, duplicate names, no token at all. */
    write_file(path, "admin ops new-token-BBBB-BBBB\nself fleet\n");
    CHECK_INT(srv_httpd_reload(h.httpd, detail, sizeof(detail)), RC_CONFIG);
    CHECK(contains(detail, "line 2"));
    write_file(path, "admin ops x-token-1111-1111\nself ops y-token-2222-2222\n");
    CHECK(srv_httpd_reload(h.httpd, detail, sizeof(detail)) != RC_OK);
    CHECK(contains(detail, "two tokens are named 'ops'"));
    write_file(path, "# nobody\n");
    CHECK(srv_httpd_reload(h.httpd, detail, sizeof(detail)) != RC_OK);
    CHECK(contains(detail, "turn authentication off"));
    unlink(path);
    CHECK_INT(srv_httpd_reload(h.httpd, detail, sizeof(detail)), RC_IO);
    EXPECT(h.port, 201, NULL, "POST", "/backends/127.0.0.4", .token = "new-token-BBBB-BBBB");
    EXPECT(h.port, 401, "unauthorized", "POST", "/backends/127.0.0.5", .token = "x-token-1111-1111");
    {
        const char *const want[] = {"reload: tokens replaced", "reload: keeping the tokens", NULL};
        log = capture_wait(want);
    }
    capture_stop();
    CHECK(contains(log, "tokens=3 names=\"ops:admin,fleet:self,token-3:admin\""));
    CHECK(!contains(log, "new-token-BBBB-BBBB") && !contains(log, "x-token-1111-1111"));
    free(log);
    http_handle_free(keep);
    harness_stop(&h);
}

/* ---- SIGHUP to a real process ------------------------------------------------------------- */

struct proc {
    pid_t pid;
    int err; /* read end of its stderr */
    char *log;
    size_t len, cap;
};

/* Read what the process wrote, waiting up to ms for needle (NULL: just drain). */
static int proc_wait_for(struct proc *pr, const char *needle, int ms)
{
    for (int waited = 0;; waited += 20) {
        struct pollfd pfd = {pr->err, POLLIN, 0};
        if (needle && pr->log && strstr(pr->log, needle))
            return 1;
        if (waited >= ms)
            return 0;
        if (poll(&pfd, 1, 20) > 0) {
            char buf[4096];
            ssize_t n = read(pr->err, buf, sizeof(buf));
            if (n <= 0) {
                if (!needle)
                    return 0;
                sleep_ms(20);
                continue;
            }
            if (pr->len + (size_t)n + 1 > pr->cap) {
                pr->cap = (pr->len + (size_t)n + 1) * 2;
                pr->log = realloc(pr->log, pr->cap);
                if (!pr->log)
                    abort();
            }
            memcpy(pr->log + pr->len, buf, (size_t)n);
            pr->len += (size_t)n;
            pr->log[pr->len] = '\0';
        }
    }
}

static void test_sighup(void)
{
    struct proc pr;
    posix_spawn_file_actions_t fa;
    int pipefd[2], status = -1;
    char path[600], port_s[16];
    char *argv[] = {(char *)r53reg_bin,
                    (char *)"--listen",
                    (char *)"127.0.0.1:0",
                    (char *)"--token-file",
                    path,
                    (char *)"--client-rps",
                    (char *)"0",
                    (char *)"--buckets",
                    (char *)"4",
                    (char *)"--allow-special", /* the backends are 127.0.0.x */
                    NULL};
    char **env;
    size_t nenv = 0, k = 0;
    unsigned port = 0;
    const char *at;

    if (!r53reg_bin) {
        fprintf(stderr, "sighup: no r53reg binary given\n");
        CHECK(0);
        return;
    }
    memset(&pr, 0, sizeof(pr));
    snprintf(path, sizeof(path), "%s/hup-tokens", tmpdir);
    write_file(path, "admin ops hup-one-1111-1111\n");
    for (char **e = environ; *e; e++)
        nenv++;
    env = calloc(nenv + 1, sizeof(*env));
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "R53REG_", 7) != 0)
            env[k++] = *e;
    if (pipe(pipefd))
        abort();
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    CHECK_INT(posix_spawn(&pr.pid, r53reg_bin, &fa, NULL, argv, env), 0);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    close(pipefd[1]);
    pr.err = pipefd[0];

    CHECK(proc_wait_for(&pr, "msg=listening", 15000));
    at = pr.log ? strstr(pr.log, "listen=127.0.0.1:") : NULL;
    if (at) {
        snprintf(port_s, sizeof(port_s), "%.6s", at + strlen("listen=127.0.0.1:"));
        port = (unsigned)strtoul(port_s, NULL, 10);
    }
    CHECK(port != 0);
    if (port) {
        EXPECT(port, 201, NULL, "POST", "/backends/127.0.0.1", .token = "hup-one-1111-1111");
        write_file(path, "admin ops hup-two-2222-2222\nself fleet hup-fleet-3333-3333\n");
        kill(pr.pid, SIGHUP);
        CHECK(proc_wait_for(&pr, "reload: tokens replaced", 5000));
        EXPECT(port, 401, "unauthorized", "POST", "/backends/127.0.0.2", .token = "hup-one-1111-1111");
        EXPECT(port, 201, NULL, "POST", "/backends/127.0.0.2", .token = "hup-two-2222-2222");
        EXPECT(port, 403, "forbidden", "POST", "/backends/127.0.0.3", .token = "hup-fleet-3333-3333");
        EXPECT(port, 200, NULL, "DELETE", "/backends/self", .token = "hup-fleet-3333-3333");
        /* A bad file: the process keeps running with the tokens it has. */
        write_file(path, "superuser ops hup-four-4444-4444\n");
        kill(pr.pid, SIGHUP);
        CHECK(proc_wait_for(&pr, "reload: keeping the tokens in use", 5000));
        EXPECT(port, 201, NULL, "POST", "/backends/127.0.0.4", .token = "hup-two-2222-2222");
    }
    kill(pr.pid, SIGTERM);
    proc_wait_for(&pr, "msg=stopped", 15000);
    waitpid(pr.pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(pr.log && !contains(pr.log, "hup-one-1111-1111") && !contains(pr.log, "hup-two-2222-2222") &&
          !contains(pr.log, "hup-four-4444-4444"));
    CHECK(contains(pr.log, "msg=audit id=") && contains(pr.log, "token=fleet scope=self"));
    if (check_failures && pr.log)
        fprintf(stderr, "--- r53reg stderr ---\n%s\n", pr.log);
    close(pr.err);
    free(pr.log);
    unlink(path);
}

/* ---- TLS ---------------------------------------------------------------------------------- */

static void gen_cert(const char *name)
{
    char cmd[1600];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout '%s/%s.key' "
             "-out '%s/%s.crt' >/dev/null 2>&1",
             tmpdir, name, tmpdir, name);
    if (system(cmd) != 0) {
        fprintf(stderr, "tls: openssl failed (is the openssl CLI installed?): %s\n", cmd);
        abort();
    }
}

static void install(const char *name, const char *what) /* what: crt, key */
{
    char from[600], to[600], *text;
    FILE *f;
    long n;
    snprintf(from, sizeof(from), "%s/%s.%s", tmpdir, name, what);
    snprintf(to, sizeof(to), "%s/server.%s", tmpdir, what);
    f = fopen(from, "r");
    if (!f)
        abort();
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = calloc(1, (size_t)n + 1);
    if (!text || fread(text, 1, (size_t)n, f) != (size_t)n)
        abort();
    fclose(f);
    write_file(to, text);
    free(text);
}

static long https_get(void **curl, unsigned port, const char *ca, const char *path,
                      struct http_reply *r)
{
    struct http_opts o;
    char cainfo[600];
    memset(&o, 0, sizeof(o));
    o.method = "GET";
    o.path = path;
    o.https = 1;
    snprintf(cainfo, sizeof(cainfo), "%s/%s.crt", tmpdir, ca);
    o.cainfo = cainfo;
    if (http_do_opts(curl, port, &o, r))
        return -1;
    return r->status;
}

static void test_tls(void)
{
    struct harness h;
    struct harness_opts o;
    struct http_reply r;
    struct http_opts q;
    void *keep = NULL;
    char crt[600], key[600], cainfo[600], detail[400];

    gen_cert("a");
    gen_cert("b");
    install("a", "crt");
    install("a", "key");
    snprintf(crt, sizeof(crt), "%s/server.crt", tmpdir);
    snprintf(key, sizeof(key), "%s/server.key", tmpdir);
    default_opts(&o);
    o.tls_cert = crt;
    o.tls_key = key;
    make_tokens();
    o.scoped_tokens = scoped;
    o.nscoped_tokens = 3;
    harness_start(&h, &o);

    CHECK_INT(https_get(&keep, h.port, "a", "/healthz", &r), 200);
    CHECK_INT(r.num_connects, 1);
    http_reply_release(&r);
    /* A mutation over TLS, with a token. */
    memset(&q, 0, sizeof(q));
    q.method = "POST";
    q.path = "/backends/self";
    q.https = 1;
    snprintf(cainfo, sizeof(cainfo), "%s/a.crt", tmpdir);
    q.cainfo = cainfo;
    q.headers[0] = "Authorization: Bearer fleet-secret-7Hq2";
    CHECK_INT(http_do_opts(NULL, h.port, &q, &r), 0);
    CHECK_INT(r.status, 201);
    CHECK_STR(jstr(r.json, "ip"), "127.0.0.1");
    http_reply_release(&r);
    /* Plain HTTP to the TLS port gets no HTTP answer. */
    {
        struct http_reply pr;
        CHECK(send_q(h.port, (struct q){.method = "GET", .path = "/healthz"}, &pr) != 200);
        http_reply_release(&pr);
    }

    /* Rotate: certificate b; the kept-alive connection (handshaken with a) keeps working. */
    install("b", "crt");
    install("b", "key");
    CHECK_INT(srv_httpd_reload(h.httpd, detail, sizeof(detail)), RC_OK);
    CHECK_INT(https_get(&keep, h.port, "a", "/healthz", &r), 200);
    CHECK_INT(r.num_connects, 0);
    http_reply_release(&r);
    CHECK_INT(https_get(NULL, h.port, "b", "/healthz", &r), 200); /* new handshakes: b */
    http_reply_release(&r);
    CHECK_INT(https_get(NULL, h.port, "a", "/healthz", &r), -1); /* a is no longer served */
    CHECK(r.error[0] != '\0');
    http_reply_release(&r);

    /* Bad pairs keep b: a key that does not match, then a certificate that is not PEM. */
    install("a", "key");
    CHECK(srv_httpd_reload(h.httpd, detail, sizeof(detail)) != RC_OK);
    CHECK(contains(detail, "does not match"));
    CHECK_INT(https_get(NULL, h.port, "b", "/healthz", &r), 200);
    http_reply_release(&r);
    install("b", "key");
    write_file(crt, "not a certificate\n");
    CHECK(srv_httpd_reload(h.httpd, detail, sizeof(detail)) != RC_OK);
    CHECK(contains(detail, "--tls-cert"));
    CHECK_INT(https_get(NULL, h.port, "b", "/healthz", &r), 200);
    http_reply_release(&r);
    /* And back to a, once more. */
    install("a", "crt");
    install("a", "key");
    CHECK_INT(srv_httpd_reload(h.httpd, detail, sizeof(detail)), RC_OK);
    CHECK_INT(https_get(NULL, h.port, "a", "/healthz", &r), 200);
    http_reply_release(&r);
    http_handle_free(keep);
    harness_stop(&h);

    /* A missing or mismatched pair does not start. */
    default_opts(&o);
    o.tls_cert = crt;
    o.tls_key = "/nonexistent/key.pem";
    CHECK(harness_try_start(&h, &o, detail, sizeof(detail)) != 0);
    CHECK(contains(detail, "--tls-key"));
}

/* ---- reloads under load ------------------------------------------------------------------ */

struct churn {
    unsigned port;
    const char *cainfo;
    int id;
    atomic_int *stop;
    int requests, failures;
};

static void *churn_client(void *arg)
{
    struct churn *c = arg;
    void *keep = NULL;
    char ip[32], path[64];
    for (int i = 0; !atomic_load(c->stop); i++) {
        struct http_opts o;
        struct http_reply r;
        memset(&o, 0, sizeof(o));
        snprintf(ip, sizeof(ip), "127.0.%d.%d", 100 + c->id, i / 2 % 200 + 1);
        snprintf(path, sizeof(path), "/backends/%s", ip);
        o.method = i % 2 ? "DELETE" : "POST";
        o.path = path;
        o.https = 1;
        o.cainfo = c->cainfo;
        o.headers[0] = "Authorization: Bearer stable-token-SSSS";
        /* Every third request on a fresh connection (a new handshake), the rest kept alive. */
        if (http_do_opts(i % 3 ? &keep : NULL, c->port, &o, &r) || r.status < 200 ||
            r.status > 201) {
            fprintf(stderr, "churn %d: %s %s -> %ld %s %s\n", c->id, o.method, path, r.status,
                    r.error, r.body);
            c->failures++;
        }
        c->requests++;
        http_reply_release(&r);
    }
    http_handle_free(keep);
    return NULL;
}

static void test_reload_churn(void)
{
    struct harness h;
    struct harness_opts o;
    struct churn cl[4];
    pthread_t t[4];
    atomic_int stop;
    char crt[600], key[600], tokens[600], cainfo[600], detail[400];
    int total = 0;

    /* Two certificates, swapped at every round; the clients trust both (a CA bundle), so
     * every handshake must succeed whichever pair it meets. */
    gen_cert("c");
    gen_cert("d");
    {
        char cmd[2000];
        snprintf(cmd, sizeof(cmd), "cat '%s/c.crt' '%s/d.crt' > '%s/cd.crt'", tmpdir, tmpdir,
                 tmpdir);
        if (system(cmd) != 0)
            abort();
    }
    install("c", "crt");
    install("c", "key");
    snprintf(crt, sizeof(crt), "%s/server.crt", tmpdir);
    snprintf(key, sizeof(key), "%s/server.key", tmpdir);
    snprintf(cainfo, sizeof(cainfo), "%s/cd.crt", tmpdir);
    snprintf(tokens, sizeof(tokens), "%s/churn-tokens", tmpdir);
    write_file(tokens, "admin stable stable-token-SSSS\nadmin flip flip-token-0000-0\n");
    default_opts(&o);
    o.reg.buckets = 100;
    o.reg.max_per_bucket = 400;
    o.tls_cert = crt;
    o.tls_key = key;
    o.token_file = tokens;
    harness_start(&h, &o);
    atomic_init(&stop, 0);
    for (int i = 0; i < 4; i++) {
        memset(&cl[i], 0, sizeof(cl[i]));
        cl[i].port = h.port;
        cl[i].cainfo = cainfo;
        cl[i].id = i;
        cl[i].stop = &stop;
        pthread_create(&t[i], NULL, churn_client, &cl[i]);
    }
    for (int round = 0; round < 40; round++) {
        char text[200];
        snprintf(text, sizeof(text), "admin flip flip-token-0000-%d\nadmin stable stable-token-SSSS\n",
                 round + 1);
        write_file(tokens, text);
        /* The key first, then the certificate: a reload in between would see a mismatched
         * pair and keep the old one, which is fine too. */
        install(round % 2 ? "c" : "d", "key");
        install(round % 2 ? "c" : "d", "crt");
        CHECK_INT(srv_httpd_reload(h.httpd, detail, sizeof(detail)), RC_OK);
        sleep_ms(15);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT(cl[i].failures, 0);
        total += cl[i].requests;
    }
    CHECK(total > 40);
    fprintf(stderr, "reload-churn: %d requests during 40 reloads\n", total);
    harness_stop(&h);
}

/* ---- main --------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    void (*fn)(void);
} cases[] = {
    {"scopes", test_scopes},   {"proxy", test_proxy},
    {"cidr", test_cidr},       {"ratelimit", test_ratelimit},
    {"conncap", test_conncap}, {"audit", test_audit},
    {"reload", test_reload},   {"sighup", test_sighup},
    {"tls", test_tls},         {"reload-churn", test_reload_churn},
    {"early", test_early},     {"framing", test_framing},
    {"audit-halfclose", test_audit_halfclose},
};

static void cleanup(void)
{
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(int argc, char **argv)
{
    int ran = 0;
    signal(SIGPIPE, SIG_IGN);
    r53reg_bin = argc > 1 ? argv[1] : NULL;
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    atexit(cleanup);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int wanted = argc <= 2;
        for (int a = 2; a < argc; a++)
            wanted |= !strcmp(argv[a], cases[i].name);
        if (!wanted)
            continue;
        fprintf(stderr, "== %s\n", cases[i].name);
        cases[i].fn();
        ran++;
    }
    if (!ran) {
        fprintf(stderr, "no such case\n");
        return 2;
    }
    return check_done("test_security");
}
