/*
 * test_route53_client.c: aws/route53 (with aws/retry and aws/ratelimit) against an in-process
 * loopback HTTP server (libmicrohttpd, 127.0.0.1 port 0) that serves scripted replies (the
 * real sample XML where one fits) and records every request.
 *
 *   test_route53_client <case> <testdata-dir>   one case (ctest route53client.<case>)
 *   test_route53_client --skip <why>            print why and exit 77
 *
 * Every request the server records is checked for a valid SigV4 Authorization: the signature
 * is recomputed with aws/sigv4.h from what the server received.
 * Time assertions are lower bounds only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <microhttpd.h>

#include "aws/ratelimit.h"
#include "aws/ratepolicy.h"
#include "aws/retry.h"
#include "aws/route53.h"
#include "aws/sigv4.h"
#include "check.h"
#include "util/xalloc.h"

#define SKIP_CODE 77
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_REQS 128
#define MAX_SCRIPT 32
#define MAX_HDRS 32

static const char akid[] = "AKIDEXAMPLE";
static const char secret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
static const char *testdata;

/* --- samples ------------------------------------------------------------------------------ */

static char *sample(const char *name, size_t *len)
{
    char path[1024];
    FILE *f;
    char *data;
    size_t n;

    snprintf(path, sizeof(path), "%s/route53/%s", testdata, name);
    if (!(f = fopen(path, "rb"))) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        exit(1);
    }
    data = xmalloc(1 << 20);
    n = fread(data, 1, (1 << 20) - 1, f);
    fclose(f);
    data[n] = '\0';
    if (len)
        *len = n;
    return data;
}

/* --- the scripted server ------------------------------------------------------------------ */

enum act { ACT_REPLY, ACT_CLOSE };

struct item {
    enum act act;
    int status;
    char *body; /* owned */
    size_t body_len;
    unsigned delay_ms;
    const char *retry_after; /* x-amz-retry-after to send (a literal), or NULL */
};

struct kv {
    char *k, *v;
};

struct recorded {
    char method[8];
    char *path;
    char *query; /* re-encoded from the decoded arguments, in received order */
    struct kv args[16];
    size_t nargs;
    struct kv hdrs[MAX_HDRS];
    size_t nhdrs;
    char *body;
    size_t body_len;
    unsigned client_port; /* the TCP connection's client port (keep-alive checks) */
};

struct server {
    struct MHD_Daemon *d;
    uint16_t port;
    pthread_mutex_t lock;
    struct item script[MAX_SCRIPT]; /* guarded by lock */
    size_t nscript, next;           /* guarded by lock */
    struct item dflt;               /* when the script is used up */
    struct recorded reqs[MAX_REQS]; /* guarded by lock */
    size_t nreqs;                   /* guarded by lock */
};

struct reqctx {
    char *body;
    size_t len, cap;
};

static void server_add(struct server *s, enum act act, int status, const char *body,
                       unsigned delay_ms)
{
    struct item *it;

    pthread_mutex_lock(&s->lock);
    if (s->nscript < MAX_SCRIPT) {
        it = &s->script[s->nscript++];
        it->act = act;
        it->status = status;
        it->body = xstrdup(body ? body : "");
        it->body_len = strlen(it->body);
        it->delay_ms = delay_ms;
    }
    pthread_mutex_unlock(&s->lock);
}

static void add_sample(struct server *s, int status, const char *name)
{
    char *b = sample(name, NULL);

    server_add(s, ACT_REPLY, status, b, 0);
    free(b);
}

static void encode_into(char *out, size_t n, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = strlen(out);

    for (; s && *s && o + 4 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
    struct recorded *r = cls;

    (void)kind;
    if (r->nargs < NELEM(r->args)) {
        r->args[r->nargs].k = xstrdup(k);
        r->args[r->nargs].v = xstrdup(v ? v : "");
        r->nargs++;
    }
    return MHD_YES;
}

static enum MHD_Result collect_hdr(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
    struct recorded *r = cls;

    (void)kind;
    if (r->nhdrs < MAX_HDRS) {
        r->hdrs[r->nhdrs].k = xstrdup(k);
        r->hdrs[r->nhdrs].v = xstrdup(v ? v : "");
        r->nhdrs++;
    }
    return MHD_YES;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    struct server *s = cls;
    struct reqctx *ctx = *con_cls;
    struct recorded *r = NULL;
    struct item it = {.act = ACT_REPLY, .status = 500};
    struct MHD_Response *resp;
    char q[2048] = "";
    enum MHD_Result ret;
    int have = 0;

    (void)version;
    if (!ctx) { /* first call: remember the request, answer later (keep-alive) */
        *con_cls = xcalloc(1, sizeof(struct reqctx));
        return MHD_YES;
    }
    if (*upload_size) { /* consume the body before answering */
        ctx->body = xgrow(ctx->body, &ctx->cap, ctx->len + *upload_size + 1, 1);
        memcpy(ctx->body + ctx->len, upload, *upload_size);
        ctx->len += *upload_size;
        ctx->body[ctx->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&s->lock);
    if (s->nreqs < MAX_REQS) {
        r = &s->reqs[s->nreqs++];
        snprintf(r->method, sizeof(r->method), "%s", method);
        r->path = xstrdup(url);
        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, r);
        MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_hdr, r);
        for (size_t i = 0; i < r->nargs; i++) {
            if (i)
                strcat(q, "&");
            encode_into(q, sizeof(q), r->args[i].k);
            strcat(q, "=");
            encode_into(q, sizeof(q), r->args[i].v);
        }
        r->query = xstrdup(q);
        r->body = ctx->body ? xstrndup(ctx->body, ctx->len) : xstrdup("");
        r->body_len = ctx->len;
        {
            const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
            struct sockaddr_in sin;
            if (ci && ci->client_addr) {
                memcpy(&sin, ci->client_addr, sizeof(sin));
                r->client_port = ntohs(sin.sin_port);
            }
        }
    }
    if (s->next < s->nscript) {
        it = s->script[s->next++];
        have = 1;
    } else {
        it = s->dflt;
        have = it.body != NULL;
    }
    pthread_mutex_unlock(&s->lock);
    if (it.delay_ms)
        usleep(it.delay_ms * 1000);
    if (it.act == ACT_CLOSE)
        return MHD_NO; /* drop the connection without a reply */
    resp = MHD_create_response_from_buffer(have ? it.body_len : 16,
                                           have ? it.body : (void *)"script exhausted",
                                           MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(resp, "Content-Type", "text/xml");
    MHD_add_response_header(resp, "x-amzn-RequestId", "hdr-request-id");
    if (it.retry_after)
        MHD_add_response_header(resp, "x-amz-retry-after", it.retry_after);
    ret = MHD_queue_response(conn, (unsigned)it.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct reqctx *ctx = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (ctx) {
        free(ctx->body);
        free(ctx);
        *con_cls = NULL;
    }
}

static void server_start(struct server *s)
{
    struct sockaddr_in sa;
    const union MHD_DaemonInfo *info;

    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    if (!s->d) {
        fprintf(stderr, "MHD_start_daemon failed\n");
        exit(1);
    }
    info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    if (!s->port) {
        fprintf(stderr, "no port\n");
        exit(1);
    }
}

static void server_stop(struct server *s)
{
    size_t i, j;

    if (s->d)
        MHD_stop_daemon(s->d);
    for (i = 0; i < s->nscript; i++)
        free(s->script[i].body);
    free(s->dflt.body);
    for (i = 0; i < s->nreqs; i++) {
        struct recorded *r = &s->reqs[i];
        free(r->path);
        free(r->query);
        free(r->body);
        for (j = 0; j < r->nargs; j++) {
            free(r->args[j].k);
            free(r->args[j].v);
        }
        for (j = 0; j < r->nhdrs; j++) {
            free(r->hdrs[j].k);
            free(r->hdrs[j].v);
        }
    }
    pthread_mutex_destroy(&s->lock);
}

static size_t server_nreqs(struct server *s)
{
    size_t n;

    pthread_mutex_lock(&s->lock);
    n = s->nreqs;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static const char *hdr(const struct recorded *r, const char *name)
{
    for (size_t i = 0; i < r->nhdrs; i++)
        if (strcasecmp(r->hdrs[i].k, name) == 0)
            return r->hdrs[i].v;
    return NULL;
}

static const char *arg(const struct recorded *r, const char *name)
{
    for (size_t i = 0; i < r->nargs; i++)
        if (strcmp(r->args[i].k, name) == 0)
            return r->args[i].v;
    return NULL;
}

/* Recompute the signature of a received request; 1 when it matches. signed_out (may be NULL,
 * 256 bytes) receives the SignedHeaders list. */
static int signature_ok(const struct recorded *r, const char *sec, char *signed_out)
{
    const char *authz = hdr(r, "Authorization"), *p, *date = hdr(r, "X-Amz-Date");
    char signed_list[256] = "", cred[256] = "", *mine = NULL, *tok, *save;
    struct sigv4_header hs[MAX_HDRS];
    size_t nh = 0, n;
    int ok = 0;

    if (!authz || !date || strncmp(authz, "AWS4-HMAC-SHA256 ", 17) != 0)
        return 0;
    if (!(p = strstr(authz, "Credential=")))
        return 0;
    n = strcspn(p + 11, ",");
    snprintf(cred, sizeof(cred), "%.*s", (int)n, p + 11);
    if (!(p = strstr(authz, "SignedHeaders=")))
        return 0;
    n = strcspn(p + 14, ",");
    snprintf(signed_list, sizeof(signed_list), "%.*s", (int)n, p + 14);
    if (signed_out)
        snprintf(signed_out, 256, "%s", signed_list);
    {
        char copy[256];
        snprintf(copy, sizeof(copy), "%s", signed_list);
        for (tok = strtok_r(copy, ";", &save); tok && nh < MAX_HDRS;
             tok = strtok_r(NULL, ";", &save)) {
            const char *v = hdr(r, tok);
            if (!v)
                return 0;
            hs[nh].name = xstrdup(tok);
            hs[nh].value = v;
            nh++;
        }
    }
    {
        struct sigv4_request sr = {r->method, r->path, r->query, hs, nh, r->body, r->body_len};
        struct sigv4_scope scope = {date, "us-east-1", "route53"};
        struct sigv4_creds cr = {akid, sec, NULL};
        char expect_cred[256];

        snprintf(expect_cred, sizeof(expect_cred), "%s/%.8s/us-east-1/route53/aws4_request", akid,
                 date);
        if (strcmp(cred, expect_cred) != 0)
            fprintf(stderr, "credential scope %s != %s\n", cred, expect_cred);
        else if (sigv4_authorization(&sr, &scope, &cr, &mine) == RC_OK && strcmp(mine, authz) == 0)
            ok = 1;
        else
            fprintf(stderr, "signature mismatch:\n got  %s\n want %s\n", authz,
                    mine ? mine : "(null)");
    }
    for (size_t i = 0; i < nh; i++)
        free((char *)hs[i].name);
    free(mine);
    return ok;
}

static void check_all_signed(struct server *s, const char *expect_signed)
{
    char list[256];

    for (size_t i = 0; i < s->nreqs; i++) {
        CHECK(signature_ok(&s->reqs[i], secret, list));
        CHECK_STR(list, expect_signed);
        CHECK(strstr(list, "user-agent") == NULL);
        CHECK(hdr(&s->reqs[i], "User-Agent") != NULL);
    }
}

/* --- client setup ------------------------------------------------------------------------- */

static struct r53_client *make_client(struct server *s, struct r53_client_options *o)
{
    static struct sigv4_creds creds = {akid, secret, NULL};
    struct r53_client *c = NULL;
    char endpoint[64], detail[256] = "";

    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u", (unsigned)s->port);
    o->endpoint = endpoint;
    if (!o->static_creds)
        o->static_creds = &creds;
    if (o->rps == 0)
        o->rps = 1000;
    if (o->burst == 0)
        o->burst = 1000;
    if (!o->retry_base_ms)
        o->retry_base_ms = 1;
    if (!o->retry_throttle_base_ms)
        o->retry_throttle_base_ms = 1;
    if (!o->timeout_ms)
        o->timeout_ms = 5000;
    if (r53_client_create(o, &c, detail, sizeof(detail)) != RC_OK) {
        fprintf(stderr, "r53_client_create: %s\n", detail);
        exit(1);
    }
    return c;
}

static const char *vals1[] = {"192.0.2.1"};
static const char *vals2[] = {"192.0.2.1", "192.0.2.2"};
static const struct r53_rrset old_rr = {.name = "app.example.com.",
                                        .type = "A",
                                        .set_identifier = "app.example.com_0",
                                        .has_weight = 1,
                                        .weight = 1,
                                        .has_ttl = 1,
                                        .ttl = 60,
                                        .values = vals1,
                                        .nvalues = 1};
static const struct r53_rrset new_rr = {.name = "app.example.com.",
                                        .type = "A",
                                        .set_identifier = "app.example.com_0",
                                        .has_weight = 1,
                                        .weight = 2,
                                        .has_ttl = 1,
                                        .ttl = 60,
                                        .values = vals2,
                                        .nvalues = 2};
static const struct r53_change cas[] = {{R53_ACTION_DELETE, &old_rr}, {R53_ACTION_CREATE, &new_rr}};

static const char *expected_body[] = {
    "Comment=r53reg test",
    "Action=DELETE",
    "Name=app.example.com.",
    "Type=A",
    "SetIdentifier=app.example.com_0",
    "Weight=1",
    "TTL=60",
    "ResourceRecords=",
    "Value=192.0.2.1",
    "Action=CREATE",
    "Name=app.example.com.",
    "Type=A",
    "SetIdentifier=app.example.com_0",
    "Weight=2",
    "TTL=60",
    "ResourceRecords=",
    "Value=192.0.2.1",
    "Value=192.0.2.2",
};

/* Element names (and leaf texts) of the body in document order, from ChangeBatch down. */
static void walk(xmlNodePtr n, char lines[][128], size_t *count, size_t max)
{
    for (xmlNodePtr c = n->children; c; c = c->next) {
        int leaf = 1;
        if (c->type != XML_ELEMENT_NODE)
            continue;
        for (xmlNodePtr g = c->children; g; g = g->next)
            if (g->type == XML_ELEMENT_NODE)
                leaf = 0;
        if (leaf || strcmp((const char *)c->name, "ResourceRecords") == 0) {
            xmlChar *t = leaf ? xmlNodeGetContent(c) : NULL;
            if (*count < max)
                snprintf(lines[(*count)++], 128, "%s=%s", (const char *)c->name,
                         t ? (const char *)t : "");
            xmlFree(t);
        }
        if (!leaf)
            walk(c, lines, count, max);
    }
}

static void check_change_body(const struct recorded *r)
{
    char lines[64][128];
    size_t n = 0;
    xmlDocPtr doc = xmlReadMemory(r->body, (int)r->body_len, NULL, NULL, XML_PARSE_NONET);
    xmlNodePtr root;

    CHECK(doc != NULL);
    if (!doc)
        return;
    root = xmlDocGetRootElement(doc);
    CHECK_STR((const char *)root->name, "ChangeResourceRecordSetsRequest");
    CHECK(root->ns && strcmp((const char *)root->ns->href, R53_XMLNS) == 0);
    walk(root, lines, &n, NELEM(lines));
    CHECK_INT(n, NELEM(expected_body));
    for (size_t i = 0; i < n && i < NELEM(expected_body); i++)
        CHECK_STR(lines[i], expected_body[i]);
    xmlFreeDoc(doc);
    CHECK(strncmp(r->body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 38) == 0);
}

/* --- cases -------------------------------------------------------------------------------- */

static void case_change(void)
{
    struct server s;
    struct r53_client_options o = {0};
    struct r53_client *c;
    struct r53_change_info ci;
    struct r53_error e;
    struct r53_client_stats st;
    char host[64];

    server_start(&s);
    add_sample(&s, 200, "change-rrsets-response.xml");
    c = make_client(&s, &o);
    r53xml_error_init(&e);
    CHECK_INT(r53_change_rrsets(c, "/hostedzone/Z1PA6795UKMFR9", cas, 2, "r53reg test", &ci, &e),
              RC_OK);
    CHECK_STR(ci.id, "C1111111111111");
    CHECK_INT(ci.status, R53_CHANGE_PENDING);
    CHECK_INT(e.kind, R53_E_NONE);
    CHECK_INT(e.attempts, 1);
    CHECK_INT(server_nreqs(&s), 1);
    if (s.nreqs == 1) {
        struct recorded *r = &s.reqs[0];
        CHECK_STR(r->method, "POST");
        CHECK_STR(r->path, "/2013-04-01/hostedzone/Z1PA6795UKMFR9/rrset/");
        CHECK_STR(r->query, "");
        CHECK_STR(hdr(r, "Content-Type"), "text/xml");
        snprintf(host, sizeof(host), "127.0.0.1:%u", (unsigned)s.port);
        CHECK_STR(hdr(r, "Host"), host);
        CHECK(hdr(r, "X-Amz-Security-Token") == NULL);
        check_change_body(r);
    }
    check_all_signed(&s, "host;x-amz-date");
    r53_client_stats(c, &st);
    CHECK_INT(st.calls[R53_CALL_CHANGE_RRSETS][R53_OUTCOME_OK], 1);
    CHECK_INT(st.attempts, 1);
    CHECK_INT(st.retries, 0);
    r53xml_error_release(&e);
    r53_client_destroy(c);
    server_stop(&s);
}

static void case_session_token(void)
{
    struct server s;
    struct sigv4_creds creds = {akid, secret, "FQoGZXIvYXdzEXAMPLETOKEN+/="};
    struct r53_client_options o = {.static_creds = &creds};
    struct r53_client *c;
    struct r53_change_info ci;

    server_start(&s);
    add_sample(&s, 200, "get-change-response.xml");
    c = make_client(&s, &o);
    CHECK_INT(r53_get_change(c, "/change/C2682N5HXP0BZ4", &ci, NULL), RC_OK);
    CHECK_STR(ci.id, "C2682N5HXP0BZ4");
    CHECK_INT(ci.status, R53_CHANGE_INSYNC);
    CHECK_INT(server_nreqs(&s), 1);
    if (s.nreqs == 1) {
        CHECK_STR(s.reqs[0].method, "GET");
        CHECK_STR(s.reqs[0].path, "/2013-04-01/change/C2682N5HXP0BZ4");
        CHECK_STR(hdr(&s.reqs[0], "X-Amz-Security-Token"), "FQoGZXIvYXdzEXAMPLETOKEN+/=");
        CHECK(hdr(&s.reqs[0], "Content-Type") == NULL);
    }
    check_all_signed(&s, "host;x-amz-date;x-amz-security-token");
    r53_client_destroy(c);
    server_stop(&s);
}

static void case_hosted_zone(void)
{
    static const char zone[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<GetHostedZoneResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">"
        "<HostedZone><Id>/hostedzone/Z1PA6795UKMFR9</Id><Name>example.com.</Name>"
        "<CallerReference>ref</CallerReference><Config><PrivateZone>false</PrivateZone>"
        "</Config><ResourceRecordSetCount>42</ResourceRecordSetCount></HostedZone>"
        "</GetHostedZoneResponse>";
    struct server s;
    struct r53_client_options o = {0};
    struct r53_client *c;
    struct r53_hosted_zone hz;

    server_start(&s);
    server_add(&s, ACT_REPLY, 200, zone, 0);
    c = make_client(&s, &o);
    CHECK_INT(r53_get_hosted_zone(c, "Z1PA6795UKMFR9", &hz, NULL), RC_OK);
    CHECK_STR(hz.id, "Z1PA6795UKMFR9");
    CHECK_STR(hz.name, "example.com.");
    CHECK_INT(hz.rrset_count, 42);
    CHECK_INT(server_nreqs(&s), 1);
    if (s.nreqs == 1)
        CHECK_STR(s.reqs[0].path, "/2013-04-01/hostedzone/Z1PA6795UKMFR9");
    check_all_signed(&s, "host;x-amz-date");
    r53_client_destroy(c);
    server_stop(&s);
}

/* A retried change: the failures, then change-rrsets-response.xml. */
static void retry_case(const char *what, int status1, const char *sample1, int n_fail,
                       int expect_throttles, int expect_ambiguous)
{
    struct server s;
    struct r53_client_options o = {0};
    struct r53_client *c;
    struct r53_change_info ci;
    struct r53_error e;
    struct r53_client_stats st;

    fprintf(stderr, "retry case: %s\n", what);
    server_start(&s);
    for (int i = 0; i < n_fail; i++) {
        if (status1 == 0)
            server_add(&s, ACT_CLOSE, 0, NULL, 0);
        else if (sample1 && strchr(sample1, '<'))
            server_add(&s, ACT_REPLY, status1, sample1, 0);
        else if (sample1)
            add_sample(&s, status1, sample1);
        else
            server_add(&s, ACT_REPLY, status1, "", 0);
    }
    add_sample(&s, 200, "change-rrsets-response.xml");
    c = make_client(&s, &o);
    r53xml_error_init(&e);
    CHECK_INT(r53_change_rrsets(c, "Z1", cas, 2, NULL, &ci, &e), RC_OK);
    CHECK_STR(ci.id, "C1111111111111");
    CHECK_INT(e.attempts, n_fail + 1);
    CHECK_INT(e.ambiguous, expect_ambiguous);
    CHECK_INT(server_nreqs(&s), n_fail + 1);
    for (size_t i = 0; i < s.nreqs; i++) {
        CHECK_STR(s.reqs[i].path, "/2013-04-01/hostedzone/Z1/rrset/");
        CHECK_INT(s.reqs[i].body_len, s.reqs[0].body_len);
    }
    check_all_signed(&s, "host;x-amz-date");
    r53_client_stats(c, &st);
    CHECK_INT(st.attempts, n_fail + 1);
    CHECK_INT(st.retries, n_fail);
    CHECK_INT(st.throttles, expect_throttles);
    CHECK_INT(st.calls[R53_CALL_CHANGE_RRSETS][R53_OUTCOME_OK], 1);
    if (expect_throttles)
        CHECK(st.rate < 1000); /* the limiter slowed down */
    /* the success refunded its last retry's cost: only earlier retries stay spent */
    if (n_fail > 1)
        CHECK(st.retry_quota < 500);
    else
        CHECK_INT(st.retry_quota, 500);
    r53xml_error_release(&e);
    r53_client_destroy(c);
    server_stop(&s);
}

static void case_retry_throttling(void)
{
    retry_case("throttling x2", 400, "error-throttling.xml", 2, 2, 0);
}

static void case_retry_prior(void)
{
    retry_case("PriorRequestNotComplete", 400, "error-prior-request-not-complete.xml", 1, 0, 0);
}

static void case_retry_500(void)
{
    retry_case("500 InternalFailure", 500,
               "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code>"
               "<Message>An internal error occurred</Message></Error><RequestId>x</RequestId>"
               "</ErrorResponse>",
               1, 0, 1);
}

static void case_retry_503(void)
{
    retry_case("503 without an error document", 503, "<html>Service Unavailable</html>", 2, 0, 1);
}

static void case_retry_reset(void)
{
    retry_case("connection closed without a reply", 0, NULL, 1, 0, 1);
}

/* One failing call: expected rc, attempts, and the structured error. */
static void fail_case(int status, const char *sample_or_body, enum rc_code expect_rc,
                      enum r53_errcode kind, size_t nmessages, const char *request_id)
{
    struct server s;
    struct r53_client_options o = {0};
    struct r53_client *c;
    struct r53_change_info ci;
    struct r53_error e;
    struct r53_client_stats st;
    char line[512];

    server_start(&s);
    if (strchr(sample_or_body, '<') || !*sample_or_body)
        server_add(&s, ACT_REPLY, status, sample_or_body, 0);
    else
        add_sample(&s, status, sample_or_body);
    add_sample(&s, 200, "change-rrsets-response.xml"); /* must not be reached */
    c = make_client(&s, &o);
    r53xml_error_init(&e);
    CHECK_INT(r53_change_rrsets(c, "Z1", cas, 2, NULL, &ci, &e), expect_rc);
    CHECK_INT(e.kind, kind);
    CHECK_INT(e.http_status, status);
    CHECK_INT(e.attempts, 1);
    CHECK_INT(e.nmessages, nmessages);
    if (request_id)
        CHECK_STR(e.request_id, request_id);
    CHECK_INT(e.ambiguous, 0);
    CHECK_INT(server_nreqs(&s), 1);
    CHECK_INT(r53_error_rc(&e), expect_rc);
    r53xml_error_format(&e, line, sizeof(line));
    CHECK(strstr(line, "kind=") != NULL);
    r53_client_stats(c, &st);
    CHECK_INT(st.retries, 0);
    CHECK_INT(st.calls[R53_CALL_CHANGE_RRSETS]
                      [expect_rc == RC_CONFLICT ? R53_OUTCOME_CONFLICT : R53_OUTCOME_ERROR],
              1);
    r53xml_error_release(&e);
    r53_client_destroy(c);
    server_stop(&s);
}

static void case_icb_root(void)
{
    fail_case(400, "error-invalid-change-batch.xml", RC_CONFLICT, R53_E_INVALID_CHANGE_BATCH, 1,
              "b25f48e8-84fd-11e6-80d9-574e0c4664cb");
    fail_case(400, "error-invalid-change-batch-two-messages.xml", RC_CONFLICT,
              R53_E_INVALID_CHANGE_BATCH, 2, "hdr-request-id"); /* RequestId from the header */
}

static void case_icb_errorresponse(void)
{
    static const char mismatch[] =
        "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/"
        "2013-04-01/\"><Error><Type>Sender</Type><Code>InvalidChangeBatch</Code><Message>["
        "Tried to delete resource record set [name='app.example.com.', type='A', "
        "set-identifier='app.example.com_0'] but the values provided do not match the current "
        "values]</Message></Error><RequestId>rid-1</RequestId></ErrorResponse>";
    static const char invalid[] =
        "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidChangeBatch</Code><Message>"
        "[Invalid Resource Record: FATAL problem: ARRDATAIllegalIPv4Address (Value is not a "
        "valid IPv4 address) encountered with '1.2.3']</Message></Error><RequestId>rid-2"
        "</RequestId></ErrorResponse>";

    fail_case(400, "error-invalid-change-batch-errorresponse.xml", RC_CONFLICT,
              R53_E_INVALID_CHANGE_BATCH, 1, "7eb28fd5-9ce6-11e4-a8e8-9f105805808f");
    fail_case(400, mismatch, RC_CONFLICT, R53_E_INVALID_CHANGE_BATCH, 1, "rid-1");
    fail_case(400, invalid, RC_UPSTREAM, R53_E_INVALID_CHANGE_BATCH, 1, "rid-2");
}

static void case_no_retry(void)
{
    fail_case(403,
              "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: "
              "arn:aws:iam::123456789012:user/x is not authorized to perform: "
              "route53:ChangeResourceRecordSets</Message></Error><RequestId>ad-1</RequestId>"
              "</ErrorResponse>",
              RC_UPSTREAM, R53_E_ACCESS_DENIED, 1, "ad-1");
    fail_case(403,
              "<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code>"
              "<Message>The request signature we calculated does not match</Message></Error>"
              "<RequestId>sd-1</RequestId></ErrorResponse>",
              RC_UPSTREAM, R53_E_SIGNATURE_DOES_NOT_MATCH, 1, "sd-1");
    fail_case(400, "error-invalid-input-apiref.xml", RC_UPSTREAM, R53_E_INVALID_INPUT, 1,
              "410c2a4b-e435-49c9-8382-3770d80d7d4c");
    fail_case(404, "error-no-such-hosted-zone.xml", RC_UPSTREAM, R53_E_NO_SUCH_HOSTED_ZONE, 1,
              NULL);
    fail_case(400, "", RC_UPSTREAM, R53_E_HTTP, 0, "hdr-request-id");
}

static void case_retries_exhausted(void)
{
    struct server s;
    struct r53_client_options o = {.max_attempts = 3};
    struct r53_client *c;
    struct r53_change_info ci;
    struct r53_error e;
    struct r53_client_stats st;

    server_start(&s);
    for (int i = 0; i < 4; i++)
        add_sample(&s, 400, "error-throttling.xml");
    c = make_client(&s, &o);
    r53xml_error_init(&e);
    CHECK_INT(r53_get_change(c, "C1", &ci, &e), RC_UNAVAILABLE);
    CHECK_INT(e.kind, R53_E_THROTTLING);
    CHECK_STR(e.code, "Throttling");
    CHECK_STR(e.message, "Rate exceeded");
    CHECK_INT(e.attempts, 3);
    CHECK_INT(server_nreqs(&s), 3);
    r53_client_stats(c, &st);
    CHECK_INT(st.calls[R53_CALL_GET_CHANGE][R53_OUTCOME_THROTTLED], 1);
    CHECK_INT(st.throttles, 3);
    CHECK_INT(st.retries, 2);
    check_all_signed(&s, "host;x-amz-date");
    r53xml_error_release(&e);
    r53_client_destroy(c);
    server_stop(&s);
}

/* The call deadline bounds rate-limit waits: a call that cannot get a token in time fails at
 * once without sending, and a retry that cannot start keeps the last attempt's error. */
static void case_deadline(void)
{
    struct server s;
    struct r53_client_options o = {.rps = 2, .burst = 1, .call_timeout_ms = 700};
    struct r53_client *c;
    struct r53_change_info ci;
    struct r53_error e;
    struct r53_client_stats st;

    server_start(&s);
    add_sample(&s, 400, "error-throttling.xml");
    add_sample(&s, 200, "get-change-response.xml"); /* must not be reached */
    c = make_client(&s, &o);
    r53xml_error_init(&e);
    /* attempt 1 is throttled; the limiter halves to 1/s and drops its burst, so the next
     * token is ~1 s away: past the 700 ms deadline */
    CHECK_INT(r53_get_change(c, "C1", &ci, &e), RC_UNAVAILABLE);
    CHECK_INT(e.kind, R53_E_THROTTLING);
    CHECK_STR(e.code, "Throttling");
    CHECK_INT(e.attempts, 1);
    CHECK_INT(server_nreqs(&s), 1);
    /* the next call cannot get a token within its deadline either: nothing is sent */
    CHECK_INT(r53_get_change(c, "C1", &ci, &e), RC_UNAVAILABLE);
    CHECK_INT(e.kind, R53_E_RATELIMIT);
    CHECK_INT(e.attempts, 0);
    CHECK_INT(server_nreqs(&s), 1);
    r53_client_stats(c, &st);
    CHECK_INT(st.calls[R53_CALL_GET_CHANGE][R53_OUTCOME_THROTTLED], 1);
    CHECK_INT(st.calls[R53_CALL_GET_CHANGE][R53_OUTCOME_UNAVAILABLE], 1);
    CHECK(st.rate < 2);
    CHECK_INT(st.retries, 0); /* planned, never made */
    r53xml_error_release(&e);
    r53_client_destroy(c);
    server_stop(&s);
}

static void case_timeout(void)
{
    struct server s;
    struct r53_client_options o = {.max_attempts = 2, .timeout_ms = 300};
    struct r53_client *c;
    struct r53_change_info ci;
    struct r53_error e;
    struct r53_client_stats st;
    char *body = sample("get-change-response.xml", NULL);

    server_start(&s);
    server_add(&s, ACT_REPLY, 200, body, 1200);
    server_add(&s, ACT_REPLY, 200, body, 1200);
    c = make_client(&s, &o);
    r53xml_error_init(&e);
    CHECK_INT(r53_get_change(c, "C1", &ci, &e), RC_UPSTREAM_TIMEOUT);
    CHECK_INT(e.kind, R53_E_TIMEOUT);
    CHECK(e.timeout);
    CHECK(e.transport[0] != '\0');
    CHECK_INT(e.attempts, 2);
    r53_client_stats(c, &st);
    CHECK_INT(st.timeouts, 2);
    CHECK_INT(st.calls[R53_CALL_GET_CHANGE][R53_OUTCOME_TIMEOUT], 1);
    r53xml_error_release(&e);
    r53_client_destroy(c);
    server_stop(&s);
    free(body);
}

/* Synthetic pages for wrr.example.com.: 2 A records, then 2 more, then AAAA + another name. */
static const char page_fmt[] =
    "<ListResourceRecordSetsResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">"
    "<ResourceRecordSets>%s</ResourceRecordSets><IsTruncated>%s</IsTruncated>%s"
    "<MaxItems>300</MaxItems></ListResourceRecordSetsResponse>";

static char *rr(const char *name, const char *type, const char *id, int weight, const char *value)
{
    char *s = xmalloc(1024);

    snprintf(s, 1024,
             "<ResourceRecordSet><Name>%s</Name><Type>%s</Type><SetIdentifier>%s"
             "</SetIdentifier><Weight>%d</Weight><TTL>60</TTL><ResourceRecords><ResourceRecord>"
             "<Value>%s</Value></ResourceRecord></ResourceRecords></ResourceRecordSet>",
             name, type, id, weight, value);
    return s;
}

static void add_page(struct server *s, const char *records, const char *next)
{
    char *doc = xmalloc(8192);

    snprintf(doc, 8192, page_fmt, records, next ? "true" : "false", next ? next : "");
    server_add(s, ACT_REPLY, 200, doc, 0);
    free(doc);
}

static void case_paging(void)
{
    struct server s;
    struct r53_client_options o = {0};
    struct r53_client *c;
    struct r53_rrset_page all;
    struct r53_error e;
    struct r53_client_stats st;
    char *a = rr("wrr.example.com.", "A", "wrr.example.com_0", 1, "192.0.2.1"),
         *b = rr("wrr.example.com.", "A", "wrr.example.com_1", 1, "192.0.2.2"),
         *cc = rr("wrr.example.com.", "A", "wrr.example.com_2", 2, "192.0.2.3"),
         *d = rr("wrr.example.com.", "A", "wrr.example.com_3", 1, "192.0.2.4"),
         *f = rr("wrr.example.com.", "AAAA", "wrr.example.com_0", 1, "2001:db8::1"),
         *g = rr("zzz.wrr.example.com.", "A", "x", 1, "192.0.2.9");
    char recs[4096];

    server_start(&s);
    snprintf(recs, sizeof(recs), "%s%s", a, b);
    add_page(&s, recs,
             "<NextRecordName>wrr.example.com.</NextRecordName><NextRecordType>A"
             "</NextRecordType><NextRecordIdentifier>wrr.example.com_2</NextRecordIdentifier>");
    snprintf(recs, sizeof(recs), "%s%s", cc, d);
    add_page(&s, recs,
             "<NextRecordName>wrr.example.com.</NextRecordName><NextRecordType>AAAA"
             "</NextRecordType><NextRecordIdentifier>wrr.example.com_0</NextRecordIdentifier>");
    snprintf(recs, sizeof(recs), "%s%s", f, g);
    add_page(&s, recs,
             "<NextRecordName>zzz.wrr.example.com.</NextRecordName><NextRecordType>A"
             "</NextRecordType><NextRecordIdentifier>y</NextRecordIdentifier>");
    add_page(&s, "", NULL); /* must not be requested */
    c = make_client(&s, &o);
    r53xml_error_init(&e);
    CHECK_INT(r53_list_all_rrsets_for_name(c, "/hostedzone/Z1", "WRR.example.com", &all, &e),
              RC_OK);
    CHECK_INT(all.n, 5);
    CHECK(!all.is_truncated);
    if (all.n == 5) {
        CHECK_STR(all.rrsets[0].set_identifier, "wrr.example.com_0");
        CHECK_STR(all.rrsets[2].set_identifier, "wrr.example.com_2");
        CHECK_INT(all.rrsets[2].weight, 2);
        CHECK_STR(all.rrsets[4].type, "AAAA");
        CHECK_STR(all.rrsets[4].values[0], "2001:db8::1");
        for (size_t i = 0; i < all.n; i++)
            CHECK(r53xml_rrset_is_weighted(&all.rrsets[i]));
    }
    CHECK_INT(server_nreqs(&s), 3);
    if (s.nreqs == 3) {
        CHECK_STR(s.reqs[0].method, "GET");
        CHECK_STR(s.reqs[0].path, "/2013-04-01/hostedzone/Z1/rrset");
        CHECK_STR(s.reqs[0].query, "name=WRR.example.com&maxitems=300");
        CHECK(arg(&s.reqs[0], "type") == NULL);
        CHECK_STR(s.reqs[1].query,
                  "name=wrr.example.com.&type=A&identifier=wrr.example.com_2&maxitems=300");
        CHECK_STR(arg(&s.reqs[2], "name"), "wrr.example.com.");
        CHECK_STR(arg(&s.reqs[2], "type"), "AAAA");
        CHECK_STR(arg(&s.reqs[2], "identifier"), "wrr.example.com_0");
        CHECK_STR(arg(&s.reqs[2], "maxitems"), "300");
    }
    check_all_signed(&s, "host;x-amz-date");
    r53_client_stats(c, &st);
    CHECK_INT(st.calls[R53_CALL_LIST_RRSETS][R53_OUTCOME_OK], 3);
    r53xml_page_release(&all);
    r53xml_error_release(&e);
    r53_client_destroy(c);
    server_stop(&s);
    free(a);
    free(b);
    free(cc);
    free(d);
    free(f);
    free(g);
}

/* Listings that would not end are errors naming the page; a name's record sets are capped. */
static void case_paging_loops(void)
{
    static const char next_a[] = "<NextRecordName>wrr.example.com.</NextRecordName>"
                                 "<NextRecordType>A</NextRecordType><NextRecordIdentifier>"
                                 "wrr.example.com_0</NextRecordIdentifier>";
    static const char next_c[] = "<NextRecordName>wrr.example.com.</NextRecordName>"
                                 "<NextRecordType>A</NextRecordType><NextRecordIdentifier>"
                                 "wrr.example.com_2</NextRecordIdentifier>";
    char *a = rr("wrr.example.com.", "A", "wrr.example.com_0", 1, "192.0.2.1"),
         *b = rr("wrr.example.com.", "A", "wrr.example.com_1", 1, "192.0.2.2"),
         *cc = rr("wrr.example.com.", "A", "wrr.example.com_2", 2, "192.0.2.3"),
         *d = rr("wrr.example.com.", "A", "wrr.example.com_3", 1, "192.0.2.4"),
         *v6 = rr("wrr.example.com.", "AAAA", "wrr.example.com_0", 1, "2001:db8::1");
    char ab[4096], ba[4096], cd[4096], cdv6[4096];
    static const struct loop_case {
        const char *what;
        int pages;          /* 1..3 of the script below */
        size_t requests;    /* pages read before the verdict */
        const char *needle; /* in the error text; NULL: the listing succeeds */
        size_t want_n;
    } cases[] = {
        {"cycle A -> B -> A", 3, 2,
         "page 2 (name=wrr.example.com. type=A identifier="
         "wrr.example.com_2) does not advance",
         0},
        {"stuck", 2, 1, "page 1 (name=wrr.example.com) does not advance", 0},
        {"records out of order", 1, 1, "record 2", 0},
        {"truncated page without records", 1, 1, "holds no record", 0},
        {"cap per name", 2, 2, "more than 3 record sets under wrr.example.com", 0},
        {"one type", 2, 2, NULL, 4},
    };
    const char *scripts[NELEM(cases)][6];

    snprintf(ab, sizeof(ab), "%s%s", a, b);
    snprintf(ba, sizeof(ba), "%s%s", b, a);
    snprintf(cd, sizeof(cd), "%s%s", cc, d);
    snprintf(cdv6, sizeof(cdv6), "%s%s%s", cc, d, v6);
    {
        const char *s0[6] = {ab, next_c, cd, next_a, ab, next_c};
        const char *s1[6] = {ab, next_a, ab, next_a};
        const char *s2[6] = {ba, next_c};
        const char *s3[6] = {"", next_c};
        const char *s4[6] = {ab, next_c, cd, NULL};
        const char *s5[6] = {ab, next_c, cdv6, NULL};
        memcpy(scripts[0], s0, sizeof(s0));
        memcpy(scripts[1], s1, sizeof(s1));
        memcpy(scripts[2], s2, sizeof(s2));
        memcpy(scripts[3], s3, sizeof(s3));
        memcpy(scripts[4], s4, sizeof(s4));
        memcpy(scripts[5], s5, sizeof(s5));
    }
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct server s;
        struct r53_client_options o = {.list_max_per_name = i == 4 ? 3 : 0};
        struct r53_client *c;
        struct r53_rrset_page all;
        struct r53_error e;
        enum rc_code rc;
        const struct loop_case *cs = &cases[i];
        fprintf(stderr, "paging case: %s\n", cs->what);
        server_start(&s);
        for (int p = 0; p < cs->pages; p++)
            add_page(&s, scripts[i][2 * p], scripts[i][2 * p + 1]);
        add_page(&s, ab, next_c); /* a listing that did not stop would read on */
        c = make_client(&s, &o);
        r53xml_error_init(&e);
        if (i == 5)
            rc = r53_list_all_rrsets_for_name_type(c, "Z1", "wrr.example.com", "A", &all, &e);
        else
            rc = r53_list_all_rrsets_for_name(c, "Z1", "wrr.example.com", &all, &e);
        if (cs->needle) {
            CHECK_INT(rc, RC_UPSTREAM);
            CHECK_INT(e.kind, R53_E_BAD_RESPONSE);
            if (!e.message || !strstr(e.message, cs->needle))
                fprintf(stderr, "  message: %s\n", e.message ? e.message : "(none)");
            CHECK(e.message && strstr(e.message, cs->needle));
            CHECK_INT(all.n, 0);
        } else {
            CHECK_INT(rc, RC_OK);
            CHECK_INT(all.n, cs->want_n);
            if (server_nreqs(&s) >= 2)
                CHECK_STR(s.reqs[0].query, "name=wrr.example.com&type=A&maxitems=300");
        }
        CHECK_INT(server_nreqs(&s), cs->requests);
        r53xml_page_release(&all);
        r53xml_error_release(&e);
        r53_client_destroy(c);
        server_stop(&s);
    }
    free(a);
    free(b);
    free(cc);
    free(d);
    free(v6);
}

/* The boto2 paging pair: first page from the beginning, then the tokens fed back. */
static void case_paging_samples(void)
{
    struct server s;
    struct r53_client_options o = {0};
    struct r53_client *c;
    struct r53_rrset_page p1, p2;

    server_start(&s);
    add_sample(&s, 200, "list-rrsets-truncated-response.xml");
    add_sample(&s, 200, "list-rrsets-truncated-page2-response.xml");
    c = make_client(&s, &o);
    CHECK_INT(r53_list_rrsets(c, "Z1", NULL, NULL, NULL, 3, &p1, NULL), RC_OK);
    CHECK(p1.is_truncated);
    CHECK_INT(
        r53_list_rrsets(c, "Z1", p1.next_name, p1.next_type, p1.next_identifier, 3, &p2, NULL),
        RC_OK);
    CHECK_INT(p2.n, 1);
    CHECK(!p2.is_truncated);
    CHECK_INT(server_nreqs(&s), 2);
    if (s.nreqs == 2) {
        CHECK_STR(s.reqs[0].query, "maxitems=3");
        CHECK_STR(arg(&s.reqs[1], "type"), "A");
        CHECK_STR(arg(&s.reqs[1], "name"), "wrr.example.com.");
        CHECK_STR(arg(&s.reqs[1], "identifier"), "secondary");
    }
    check_all_signed(&s, "host;x-amz-date");
    /* maxitems above 300 is clamped */
    add_sample(&s, 200, "list-rrsets-response.xml");
    r53xml_page_release(&p1);
    CHECK_INT(r53_list_rrsets(c, "Z1", "a.example.com", NULL, NULL, 5000, &p1, NULL), RC_OK);
    if (server_nreqs(&s) == 3)
        CHECK_STR(s.reqs[2].query, "name=a.example.com&maxitems=300");
    r53xml_page_release(&p1);
    r53xml_page_release(&p2);
    r53_client_destroy(c);
    server_stop(&s);
}

static void case_ratelimit_pacing(void)
{
    struct server s;
    struct r53_client_options o = {.rps = 5, .burst = 1};
    struct r53_client *c;
    struct r53_change_info ci;
    struct r53_client_stats st;
    struct timespec t0, t1;
    double elapsed;
    char *body = sample("get-change-response.xml", NULL);

    server_start(&s);
    s.dflt = (struct item){ACT_REPLY, 200, xstrdup(body), strlen(body), 0, NULL};
    c = make_client(&s, &o);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 6; i++)
        CHECK_INT(r53_get_change(c, "C2682N5HXP0BZ4", &ci, NULL), RC_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK_INT(server_nreqs(&s), 6);
    r53_client_stats(c, &st);
    CHECK_INT(st.attempts, 6);
    /* calls 2..6 normally wait; a call slower than 200 ms (a loaded machine) would not */
    CHECK(st.ratelimit_waits >= 1 && st.ratelimit_waits <= 5);
    if (elapsed < 1.0)
        fprintf(stderr, "6 calls at 5/s, burst 1 took %.3f s\n", elapsed);
    CHECK(elapsed >= 1.0);               /* lower bound only */
    for (size_t i = 1; i < s.nreqs; i++) /* keep-alive: one connection for all six */
        CHECK_INT(s.reqs[i].client_port, s.reqs[0].client_port);
    r53_client_destroy(c);
    server_stop(&s);
    free(body);
}

static void case_bad_args(void)
{
    struct server s;
    struct r53_client_options o = {0}, bad = {0};
    struct r53_client *c, *c2 = NULL;
    struct r53_change_info ci;
    struct r53_rrset_page p;
    struct r53_error e;
    const char **many = xcalloc(1001, sizeof(*many));
    struct r53_rrset big = {
        .name = "a.", .type = "A", .has_ttl = 1, .values = many, .nvalues = 1001};
    struct r53_change ch = {R53_ACTION_CREATE, &big};
    struct sigv4_creds nokey = {"", secret, NULL};
    char detail[256];

    for (int i = 0; i < 1001; i++)
        many[i] = "192.0.2.1";
    server_start(&s);
    c = make_client(&s, &o);
    r53xml_error_init(&e);
    CHECK_INT(r53_change_rrsets(c, "Z1/../x", cas, 2, NULL, &ci, &e), RC_BAD_REQUEST);
    CHECK_INT(e.kind, R53_E_INVALID_ARGUMENT);
    CHECK_INT(r53_change_rrsets(c, "", cas, 2, NULL, &ci, &e), RC_BAD_REQUEST);
    CHECK_INT(r53_change_rrsets(c, "Z1", &ch, 1, NULL, &ci, &e), RC_BAD_REQUEST);
    CHECK(strstr(e.transport, "1001") != NULL);
    CHECK_INT(r53_change_rrsets(c, "Z1", cas, 0, NULL, &ci, &e), RC_BAD_REQUEST);
    CHECK_INT(r53_list_rrsets(c, "Z1", NULL, "A", NULL, 0, &p, &e), RC_BAD_REQUEST);
    CHECK_INT(r53_list_rrsets(c, "Z1", "a.", NULL, "id", 0, &p, &e), RC_BAD_REQUEST);
    CHECK_INT(r53_list_all_rrsets_for_name(c, "Z1", "", &p, &e), RC_BAD_REQUEST);
    CHECK_INT(r53_get_change(c, "/change/", &ci, &e), RC_BAD_REQUEST);
    CHECK_INT(r53_get_hosted_zone(c, "Z 1", &(struct r53_hosted_zone){0}, NULL), RC_BAD_REQUEST);
    CHECK_INT(server_nreqs(&s), 0);
    r53xml_error_release(&e);

    CHECK_INT(r53_client_create(&bad, &c2, detail, sizeof(detail)), RC_CONFIG); /* no creds */
    CHECK(c2 == NULL);
    bad.static_creds = &nokey;
    CHECK_INT(r53_client_create(&bad, &c2, detail, sizeof(detail)), RC_CONFIG);
    bad.static_creds = &(struct sigv4_creds){akid, secret, NULL};
    bad.endpoint = "ftp://127.0.0.1:1";
    CHECK_INT(r53_client_create(&bad, &c2, detail, sizeof(detail)), RC_CONFIG);
    bad.endpoint = "http://127.0.0.1:1/prefix";
    CHECK_INT(r53_client_create(&bad, &c2, detail, sizeof(detail)), RC_CONFIG);
    bad.endpoint = "https://route53.amazonaws.com/";
    CHECK_INT(r53_client_create(&bad, &c2, detail, sizeof(detail)), RC_OK);
    r53_client_destroy(c2);
    r53_client_destroy(NULL);
    r53_client_destroy(c);
    server_stop(&s);
    free(many);
}

static void case_transport(void)
{
    struct r53_client_options o = {.max_attempts = 2, .connect_timeout_ms = 1000};
    struct server s;
    struct r53_client *c;
    struct r53_change_info ci;
    struct r53_error e;
    struct r53_client_stats st;
    uint16_t port;

    /* a port nobody listens on: start a server, note its port, stop it */
    server_start(&s);
    port = s.port;
    MHD_stop_daemon(s.d);
    s.d = NULL;
    s.port = port;
    c = make_client(&s, &o);
    r53xml_error_init(&e);
    CHECK_INT(r53_change_rrsets(c, "Z1", cas, 2, NULL, &ci, &e), RC_UNAVAILABLE);
    CHECK_INT(e.kind, R53_E_TRANSPORT);
    CHECK(strstr(e.transport, "curl 7") != NULL);
    CHECK_INT(e.attempts, 2);
    CHECK_INT(e.ambiguous, 0); /* never connected: nothing was sent */
    r53_client_stats(c, &st);
    CHECK_INT(st.transport_errors, 2);
    CHECK_INT(st.calls[R53_CALL_CHANGE_RRSETS][R53_OUTCOME_UNAVAILABLE], 1);
    r53xml_error_release(&e);
    r53_client_destroy(c);
    server_stop(&s);
}

static void case_body_cap(void)
{
    struct server s;
    struct r53_client_options o = {0};
    struct r53_client *c;
    struct r53_rrset_page p;
    struct r53_error e;
    size_t n = (size_t)R53XML_MAX_INPUT + 100;
    char *huge = xmalloc(n + 1);

    memset(huge, ' ', n);
    memcpy(huge, "<ListResourceRecordSetsResponse>", 32);
    huge[n] = '\0';
    server_start(&s);
    server_add(&s, ACT_REPLY, 200, huge, 0);
    server_add(&s, ACT_REPLY, 200, huge, 0);
    c = make_client(&s, &o);
    r53xml_error_init(&e);
    CHECK_INT(r53_list_rrsets(c, "Z1", NULL, NULL, NULL, 0, &p, &e), RC_UPSTREAM);
    CHECK_INT(e.kind, R53_E_BAD_RESPONSE);
    CHECK_INT(e.attempts, 1);
    CHECK_INT(server_nreqs(&s), 1);
    r53xml_error_release(&e);
    r53_client_destroy(c);
    server_stop(&s);
    free(huge);
}

struct worker {
    struct r53_client *c;
    int ok;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct r53_change_info ci;

    for (int i = 0; i < 10; i++)
        if (r53_get_change(w->c, "C2682N5HXP0BZ4", &ci, NULL) == RC_OK &&
            ci.status == R53_CHANGE_INSYNC)
            w->ok++;
    return NULL;
}

static void case_concurrency(void)
{
    struct server s;
    struct r53_client_options o = {0};
    struct r53_client *c;
    struct r53_client_stats st;
    struct worker w[4];
    pthread_t t[4];
    char *body = sample("get-change-response.xml", NULL);

    server_start(&s);
    s.dflt = (struct item){ACT_REPLY, 200, xstrdup(body), strlen(body), 0, NULL};
    c = make_client(&s, &o);
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){c, 0};
        pthread_create(&t[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT(w[i].ok, 10);
    }
    CHECK_INT(server_nreqs(&s), 40);
    r53_client_stats(c, &st);
    CHECK_INT(st.attempts, 40);
    CHECK_INT(st.calls[R53_CALL_GET_CHANGE][R53_OUTCOME_OK], 40);
    check_all_signed(&s, "host;x-amz-date");
    r53_client_destroy(c);
    server_stop(&s);
    free(body);
}

static const char *fake_env(const char *name)
{
    if (strcmp(name, "AWS_ACCESS_KEY_ID") == 0)
        return akid;
    if (strcmp(name, "AWS_SECRET_ACCESS_KEY") == 0)
        return secret;
    if (strcmp(name, "AWS_SESSION_TOKEN") == 0)
        return "provider-session-token";
    if (strcmp(name, "AWS_EC2_METADATA_DISABLED") == 0)
        return "true";
    return NULL;
}

/* Credentials from an awscred provider (the environment source, through a getenv hook). */
static void case_provider(void)
{
    struct awscred_options ao = {.getenv = fake_env, .home = "/nonexistent"};
    struct awscred_provider *prov = NULL;
    struct server s;
    struct r53_client_options o = {0};
    struct r53_client *c;
    struct r53_change_info ci;
    char detail[512] = "";

    if (awscred_provider_create(&ao, &prov, detail, sizeof(detail)) != RC_OK) {
        fprintf(stderr, "awscred_provider_create: %s\n", detail);
        CHECK(0);
        return;
    }
    o.provider = prov;
    server_start(&s);
    add_sample(&s, 200, "get-change-response.xml");
    add_sample(&s, 200, "get-change-response.xml");
    c = make_client(&s, &o);
    CHECK_INT(r53_get_change(c, "C2682N5HXP0BZ4", &ci, NULL), RC_OK);
    CHECK_INT(r53_get_change(c, "C2682N5HXP0BZ4", &ci, NULL), RC_OK);
    CHECK_INT(server_nreqs(&s), 2);
    for (size_t i = 0; i < s.nreqs; i++)
        CHECK_STR(hdr(&s.reqs[i], "X-Amz-Security-Token"), "provider-session-token");
    check_all_signed(&s, "host;x-amz-date;x-amz-security-token");
    r53_client_destroy(c);
    awscred_provider_destroy(prov);
    server_stop(&s);
}

/* --- retry.c and ratelimit.c on their own ------------------------------------------------- */

static double half(void *arg)
{
    (void)arg;
    return 0.5;
}

static double almost_one(void *arg)
{
    (void)arg;
    return 0.999;
}

struct quota_worker {
    struct awsretry *r;
};

static void *quota_main(void *arg)
{
    struct quota_worker *q = arg;
    struct awsretry_call call;
    unsigned d;

    for (int i = 0; i < 1000; i++) {
        awsretry_call_begin(q->r, &call);
        if (awsretry_on_failure(q->r, &call, i % 2 ? AWSRETRY_TIMEOUT : AWSRETRY_ERROR, -1, &d))
            awsretry_on_done(q->r, &call, 1); /* refunds what it took */
    }
    return NULL;
}

static void case_retry_unit(void)
{
    struct awsretry_options o = {.max_attempts = 5, .rand01 = half};
    struct awsretry *r = awsretry_create(&o), *r2;
    struct awsretry_call call;
    struct quota_worker qw[4];
    pthread_t t[4];
    unsigned d;

    /* defaults */
    r2 = awsretry_create(NULL);
    CHECK_INT(awsretry_max_attempts(r2), 3);
    CHECK_INT(awsretry_quota(r2), 500);
    CHECK_INT(awsretry_backoff_cap_ms(r2, AWSRETRY_ERROR, 1), 100);
    CHECK_INT(awsretry_backoff_cap_ms(r2, AWSRETRY_ERROR, 2), 200);
    CHECK_INT(awsretry_backoff_cap_ms(r2, AWSRETRY_ERROR, 8), 12800);
    CHECK_INT(awsretry_backoff_cap_ms(r2, AWSRETRY_ERROR, 9), 20000);
    CHECK_INT(awsretry_backoff_cap_ms(r2, AWSRETRY_ERROR, 60), 20000);
    awsretry_destroy(r2);

    /* attempts, jitter and costs */
    awsretry_call_begin(r, &call);
    CHECK_INT(awsretry_on_failure(r, &call, AWSRETRY_ERROR, -1, &d), 1);
    CHECK_INT(d, 50); /* 0.5 * 100 */
    CHECK_INT(awsretry_quota(r), 495);
    CHECK_INT(awsretry_on_failure(r, &call, AWSRETRY_TIMEOUT, -1, &d), 1);
    CHECK_INT(d, 100); /* 0.5 * 200 */
    CHECK_INT(awsretry_quota(r), 485);
    CHECK_INT(awsretry_on_failure(r, &call, AWSRETRY_ERROR, -1, &d), 1);
    CHECK_INT(d, 200);
    CHECK_INT(awsretry_on_failure(r, &call, AWSRETRY_ERROR, -1, &d), 1);
    CHECK_INT(d, 400);
    CHECK_INT(awsretry_quota(r), 475);
    CHECK_INT(awsretry_on_failure(r, &call, AWSRETRY_ERROR, -1, &d), 0); /* 5 attempts made */
    CHECK_INT(d, 0);
    CHECK_INT(call.attempts, 5);
    CHECK_INT(awsretry_quota(r), 475);
    /* a success after a retry refunds that retry's cost; one without a retry refunds 1 */
    awsretry_call_begin(r, &call);
    CHECK_INT(awsretry_on_failure(r, &call, AWSRETRY_TIMEOUT, -1, &d), 1);
    CHECK_INT(awsretry_quota(r), 465);
    awsretry_on_done(r, &call, 1);
    CHECK_INT(awsretry_quota(r), 475);
    awsretry_call_begin(r, &call);
    awsretry_on_done(r, &call, 1);
    CHECK_INT(awsretry_quota(r), 476);
    /* a final failure refunds nothing */
    awsretry_call_begin(r, &call);
    CHECK_INT(awsretry_on_failure(r, &call, AWSRETRY_ERROR, -1, &d), 1);
    awsretry_on_done(r, &call, 0);
    CHECK_INT(awsretry_quota(r), 471);
    awsretry_destroy(r);

    /* the quota empties: retry storms stop */
    o = (struct awsretry_options){.max_attempts = 100,
                                  .quota = 12,
                                  .rand01 = almost_one,
                                  .base_ms = 1000,
                                  .max_backoff_ms = 3000};
    r = awsretry_create(&o);
    awsretry_call_begin(r, &call);
    CHECK_INT(awsretry_on_failure(r, &call, AWSRETRY_ERROR, -1, &d), 1);
    CHECK_INT(d, 999);
    CHECK_INT(awsretry_on_failure(r, &call, AWSRETRY_ERROR, -1, &d), 1);
    CHECK_INT(d, 1998);
    CHECK_INT(awsretry_on_failure(r, &call, AWSRETRY_ERROR, -1, &d), 0); /* 2 tokens left */
    CHECK_INT(awsretry_quota(r), 2);
    /* successes without retries fill it up again, never above capacity */
    for (int i = 0; i < 20; i++) {
        awsretry_call_begin(r, &call);
        awsretry_on_done(r, &call, 1);
    }
    CHECK_INT(awsretry_quota(r), 12);
    awsretry_call_begin(r, &call);
    CHECK_INT(awsretry_on_failure(r, &call, AWSRETRY_ERROR, -1, &d), 1);
    CHECK_INT(awsretry_on_failure(r, &call, AWSRETRY_ERROR, -1, &d), 1);
    CHECK_INT(awsretry_on_failure(r, &call, AWSRETRY_TIMEOUT, -1, &d), 0);
    awsretry_destroy(r);

    /* the backoff bound stops at max_backoff */
    o = (struct awsretry_options){.max_attempts = 100,
                                  .disable_quota = 1,
                                  .rand01 = almost_one,
                                  .base_ms = 1000,
                                  .max_backoff_ms = 3000};
    r = awsretry_create(&o);
    awsretry_call_begin(r, &call);
    CHECK_INT(awsretry_on_failure(r, &call, AWSRETRY_ERROR, -1, &d), 1);
    CHECK_INT(awsretry_on_failure(r, &call, AWSRETRY_ERROR, -1, &d), 1);
    CHECK_INT(awsretry_on_failure(r, &call, AWSRETRY_ERROR, -1, &d), 1);
    CHECK_INT(d, 2997); /* 0.999 * min(4000, 3000) */
    CHECK_INT(awsretry_backoff_cap_ms(r, AWSRETRY_ERROR, 3), 3000);
    awsretry_destroy(r);

    /* disabled quota, max_attempts 1 = never retry */
    o = (struct awsretry_options){.max_attempts = 1, .disable_quota = 1};
    r = awsretry_create(&o);
    awsretry_call_begin(r, &call);
    CHECK_INT(awsretry_on_failure(r, &call, AWSRETRY_ERROR, -1, &d), 0);
    awsretry_destroy(r);

    /* thread-safety: balanced take/refund from 4 threads leaves the quota full */
    o = (struct awsretry_options){.max_attempts = 3, .quota = 100000};
    r = awsretry_create(&o);
    for (int i = 0; i < 4; i++) {
        qw[i].r = r;
        pthread_create(&t[i], NULL, quota_main, &qw[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK_INT(awsretry_quota(r), 100000);
    awsretry_destroy(r);

    /* the internal generator stays within [0, cap) */
    o = (struct awsretry_options){.max_attempts = 1000, .disable_quota = 1};
    r = awsretry_create(&o);
    awsretry_call_begin(r, &call);
    for (int i = 0; i < 200; i++) {
        CHECK_INT(awsretry_on_failure(r, &call, AWSRETRY_ERROR, -1, &d), 1);
        CHECK(d < awsretry_backoff_cap_ms(r, AWSRETRY_ERROR, call.attempts));
    }
    awsretry_destroy(r);
}

/* The backoff by kind (a 1 s base after throttling) and x-amz-retry-after, as pure
 * functions of the jitter draw. */
static void case_retry_delays(void)
{
    static const struct {
        enum awsretry_kind kind;
        unsigned attempt, cap;
    } caps[] = {
        {AWSRETRY_THROTTLE, 1, 1000},  {AWSRETRY_THROTTLE, 2, 2000}, {AWSRETRY_THROTTLE, 5, 16000},
        {AWSRETRY_THROTTLE, 6, 20000}, {AWSRETRY_ERROR, 1, 100},     {AWSRETRY_ERROR, 3, 400},
        {AWSRETRY_TIMEOUT, 1, 100},    {AWSRETRY_TIMEOUT, 9, 20000},
    };
    static const struct {
        unsigned jittered;
        long retry_after;
        unsigned want;
    } delays[] = {
        {500, -1, 500},    /* no header: the jittered backoff */
        {500, 100, 500},   /* a shorter hint never shortens the backoff */
        {500, 2000, 2000}, /* a longer one is waited */
        {500, 9000, 5500}, /* but at most 5 s beyond the backoff */
        {0, 0, 0},         /* "retry now" */
        {0, 7000, 5000},   /* a zero draw still allows 5 s */
        {20000, 3600000, 25000},
    };
    static const struct {
        enum awsretry_kind kind;
        long retry_after;
        unsigned want_delay, want_quota;
    } steps[] = {
        /* one call, rand01 = 0.5: the throttle base doubles per attempt, costs stay 5/10 */
        {AWSRETRY_THROTTLE, -1, 500, 495}, {AWSRETRY_THROTTLE, 3000, 3000, 490},
        {AWSRETRY_ERROR, -1, 200, 485},   /* 0.5 * 100 * 2^2 */
        {AWSRETRY_TIMEOUT, -1, 400, 475}, /* 0.5 * 100 * 2^3 */
        {AWSRETRY_THROTTLE, 1, 8000, 470},
    };
    struct awsretry_options o = {.max_attempts = 10, .rand01 = half};
    struct awsretry *r = awsretry_create(NULL);
    struct awsretry_call call;
    unsigned d;

    for (size_t i = 0; i < NELEM(caps); i++)
        CHECK_INT(awsretry_backoff_cap_ms(r, caps[i].kind, caps[i].attempt), caps[i].cap);
    awsretry_destroy(r);
    for (size_t i = 0; i < NELEM(delays); i++)
        CHECK_INT(awsretry_delay_ms(delays[i].jittered, delays[i].retry_after), delays[i].want);
    r = awsretry_create(&o);
    awsretry_call_begin(r, &call);
    for (size_t i = 0; i < NELEM(steps); i++) {
        CHECK_INT(awsretry_on_failure(r, &call, steps[i].kind, steps[i].retry_after, &d), 1);
        CHECK_INT(d, steps[i].want_delay);
        CHECK_INT(awsretry_quota(r), steps[i].want_quota);
    }
    awsretry_destroy(r);
}

/* The client feeds x-amz-retry-after to the backoff and uses the throttle base for
 * Throttling and PriorRequestNotComplete (seen in the computed waits it counts). */
static void case_retry_after(void)
{
    struct server s;
    struct r53_client_options o = {.retry_base_ms = 1, .retry_throttle_base_ms = 1};
    struct r53_client *c;
    struct r53_change_info ci;
    struct r53_client_stats st;
    char *throttle = sample("error-throttling.xml", NULL);
    char *prior = sample("error-prior-request-not-complete.xml", NULL);

    server_start(&s);
    server_add(&s, ACT_REPLY, 400, throttle, 0);
    s.script[s.nscript - 1].retry_after = "1200";
    server_add(&s, ACT_REPLY, 400, prior, 0);
    s.script[s.nscript - 1].retry_after = "not-a-number"; /* ignored */
    add_sample(&s, 200, "change-rrsets-response.xml");
    c = make_client(&s, &o);
    CHECK_INT(r53_change_rrsets(c, "Z1", cas, 2, NULL, &ci, NULL), RC_OK);
    r53_client_stats(c, &st);
    CHECK_INT(st.retries, 2);
    /* 1200 (the hint, above the 1 ms base) + at most 1 (0..2 ms jitter) */
    CHECK(st.retry_wait_ms >= 1200 && st.retry_wait_ms <= 1202);
    r53_client_destroy(c);
    server_stop(&s);

    /* the default bases: 1 s after throttling, 100 ms otherwise (the draws are below) */
    o = (struct r53_client_options){.retry_base_ms = 100, .retry_throttle_base_ms = 1000};
    server_start(&s);
    server_add(&s, ACT_REPLY, 503, "", 0);
    add_sample(&s, 200, "change-rrsets-response.xml");
    c = make_client(&s, &o);
    CHECK_INT(r53_change_rrsets(c, "Z1", cas, 2, NULL, &ci, NULL), RC_OK);
    r53_client_stats(c, &st);
    CHECK(st.retry_wait_ms < 100);
    r53_client_destroy(c);
    server_stop(&s);
    free(throttle);
    free(prior);
}

struct rl_worker {
    struct ratelimit *rl;
    int ok;
};

static void *rl_main(void *arg)
{
    struct rl_worker *w = arg;

    for (int i = 0; i < 5; i++)
        if (ratelimit_acquire(w->rl, RATELIMIT_READ, 0, 0, NULL) == RC_OK)
            w->ok++;
    return NULL;
}

static void case_ratelimit_unit(void)
{
    struct ratelimit_options o = {.rate = 10, .burst = 3, .recovery_ms = 400};
    struct ratelimit *rl = ratelimit_create(&o);
    struct rl_worker w[4];
    pthread_t t[4];
    int64_t waited, t0, t1;
    int ok = 0;

    /* the burst is immediate, then tokens are spaced 1/rate apart */
    for (int i = 0; i < 3; i++) {
        CHECK_INT(ratelimit_acquire(rl, RATELIMIT_READ, 0, 0, &waited), RC_OK);
        CHECK_INT(waited, 0);
    }
    t0 = ratelimit_now_ns();
    CHECK_INT(ratelimit_acquire(rl, RATELIMIT_READ, 0, 0, &waited), RC_OK);
    t1 = ratelimit_now_ns();
    CHECK(waited > 0);
    CHECK(t1 - t0 >= waited - 1000000); /* slept (lower bound) */
    /* a deadline that cannot be met fails at once and takes nothing */
    t0 = ratelimit_now_ns();
    CHECK_INT(ratelimit_acquire(rl, RATELIMIT_READ, 0, t0 + 1000, &waited), RC_UNAVAILABLE);
    CHECK_INT(ratelimit_acquire(rl, RATELIMIT_WRITE, 1, t0 + 1000, &waited), RC_UNAVAILABLE);
    CHECK_INT(ratelimit_acquire(rl, RATELIMIT_READ, 0, t0 + 1000000000LL, &waited), RC_OK);
    CHECK(waited <= 110000000); /* one token interval: nothing was reserved by the failures */

    ratelimit_destroy(rl);

    /* throttle feedback: cut to 0.7 at once (nothing was sent: the allowed rate counts as
     * what was sent), once per hold period; the climb back takes a minute here */
    o = (struct ratelimit_options){.rate = 10, .burst = 3, .recovery_ms = 60000};
    rl = ratelimit_create(&o);
    CHECK(ratelimit_rate(rl) == 10);
    ratelimit_throttled(rl);
    CHECK(ratelimit_rate(rl) > 6.99 && ratelimit_rate(rl) < 7.05);
    ratelimit_throttled(rl); /* same hold period: counted once */
    CHECK(ratelimit_rate(rl) > 6.99 && ratelimit_rate(rl) < 7.05);
    ratelimit_destroy(rl);

    /* unlimited */
    o = (struct ratelimit_options){0};
    rl = ratelimit_create(&o);
    for (int i = 0; i < 1000; i++)
        ok += ratelimit_acquire(rl, i % 2 ? RATELIMIT_WRITE : RATELIMIT_READ, 5, 1, &waited) ==
                  RC_OK &&
              waited == 0;
    CHECK_INT(ok, 1000);
    ratelimit_throttled(rl);
    ratelimit_reserve_write(rl);
    CHECK(ratelimit_rate(rl) == 0);
    CHECK(ratelimit_change_rate(rl) == 0);
    ratelimit_destroy(rl);

    /* shared by threads: 20 acquires at 50/s with burst 1 take >= 19/50 s */
    o = (struct ratelimit_options){.rate = 50, .burst = 1};
    rl = ratelimit_create(&o);
    t0 = ratelimit_now_ns();
    for (int i = 0; i < 4; i++) {
        w[i] = (struct rl_worker){rl, 0};
        pthread_create(&t[i], NULL, rl_main, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT(w[i].ok, 5);
    }
    t1 = ratelimit_now_ns();
    CHECK(t1 - t0 >= 380000000LL);
    ratelimit_destroy(rl);
}

/* The change budget: writes take one token per Change element, reads none; a batch larger
 * than the bucket goes when it is full and leaves it in debt; a cut slows it by the same
 * factor as the calls. */
static void case_ratelimit_changes(void)
{
    struct ratelimit_options o = {
        .rate = 1000, .burst = 1000, .change_rate = 4, .change_burst = 3, .recovery_ms = 600000};
    struct ratelimit *rl = ratelimit_create(&o);
    int64_t waited, now;

    CHECK(ratelimit_change_rate(rl) == 4);
    CHECK_INT(ratelimit_acquire(rl, RATELIMIT_WRITE, 2, 0, &waited), RC_OK);
    CHECK_INT(waited, 0);
    for (int i = 0; i < 5; i++) { /* reads are not charged */
        CHECK_INT(ratelimit_acquire(rl, RATELIMIT_READ, 0, 0, &waited), RC_OK);
        CHECK_INT(waited, 0);
    }
    now = ratelimit_now_ns();
    /* one token left: a write of 2 must wait; past its deadline it takes nothing */
    CHECK_INT(ratelimit_acquire(rl, RATELIMIT_WRITE, 2, now + 1000000, &waited), RC_UNAVAILABLE);
    CHECK_INT(ratelimit_acquire(rl, RATELIMIT_WRITE, 2, 0, &waited), RC_OK);
    CHECK(waited > 0);
    ratelimit_destroy(rl);

    /* a batch of 10 against a bucket of 3: waits for a full bucket, then goes into debt */
    o.change_rate = 20;
    rl = ratelimit_create(&o);
    CHECK_INT(ratelimit_acquire(rl, RATELIMIT_WRITE, 10, 0, &waited), RC_OK);
    CHECK_INT(waited, 0);
    now = ratelimit_now_ns();
    CHECK_INT(ratelimit_acquire(rl, RATELIMIT_WRITE, 1, now + 100000000, &waited),
              RC_UNAVAILABLE); /* 8 tokens of debt take 400 ms to repay */
    /* the cut: both rates by the same factor */
    ratelimit_throttled(rl);
    {
        double r = ratelimit_rate(rl), cr = ratelimit_change_rate(rl);
        CHECK(r <= 700.01);
        CHECK(cr > r * 0.02 * 0.999 && cr < r * 0.02 * 1.001); /* 20/1000 of the calls */
    }
    ratelimit_destroy(rl);
}

struct prio {
    struct ratelimit *rl;
    pthread_mutex_t lock;
    size_t n; /* reads done; guarded by lock */
    int reads;
};

static void *prio_reader(void *arg)
{
    struct prio *p = arg;

    for (int i = 0; i < p->reads; i++) {
        ratelimit_acquire(p->rl, RATELIMIT_READ, 0, 0, NULL);
        pthread_mutex_lock(&p->lock);
        p->n++;
        pthread_mutex_unlock(&p->lock);
    }
    return NULL;
}

static size_t prio_count(struct prio *p)
{
    size_t n;

    pthread_mutex_lock(&p->lock);
    n = p->n;
    pthread_mutex_unlock(&p->lock);
    return n;
}

/* Writes first: a listing (a run of reads) cannot take the token a committer reserved
 * between its pace and its write (reservations already made keep their order); a
 * reservation nobody uses is given back; a read waits for writes at most read_yield_ms. */
static void case_ratelimit_priority(void)
{
    struct ratelimit_options o = {.rate = 20, .burst = 1, .read_yield_ms = 5000, .hold_ms = 5000};
    struct prio p = {.reads = 6};
    pthread_t t;
    int64_t waited;

    pthread_mutex_init(&p.lock, NULL);
    p.rl = ratelimit_create(&o);
    /* the committer paces (reserves), a listing starts, the committer writes */
    ratelimit_reserve_write(p.rl);
    pthread_create(&t, NULL, prio_reader, &p);
    usleep(300 * 1000); /* a read would have had six tokens by now */
    CHECK_INT(prio_count(&p), 0);
    CHECK_INT(ratelimit_acquire(p.rl, RATELIMIT_WRITE, 2, 0, &waited), RC_OK);
    CHECK_INT(waited, 0);  /* the reserved token */
    pthread_join(t, NULL); /* the listing goes on after the write */
    CHECK_INT(prio_count(&p), 6);
    ratelimit_destroy(p.rl);

    /* an unused reservation is given back after hold_ms */
    o = (struct ratelimit_options){.rate = 1, .burst = 1, .hold_ms = 50};
    p.rl = ratelimit_create(&o);
    ratelimit_reserve_write(p.rl); /* takes the only token */
    usleep(150 * 1000);
    CHECK_INT(ratelimit_acquire(p.rl, RATELIMIT_READ, 0, 0, &waited), RC_OK);
    CHECK_INT(waited, 0); /* the token came back, not a second later */
    ratelimit_destroy(p.rl);

    /* a read waits for a held reservation at most read_yield_ms */
    o = (struct ratelimit_options){
        .rate = 1000, .burst = 10, .hold_ms = 60000, .read_yield_ms = 50};
    p.rl = ratelimit_create(&o);
    ratelimit_reserve_write(p.rl);
    CHECK_INT(ratelimit_acquire(p.rl, RATELIMIT_READ, 0, 0, &waited), RC_OK);
    ratelimit_destroy(p.rl);
    pthread_mutex_destroy(&p.lock);
}

/* --- ratepolicy.c: the arithmetic, on a fake clock ------------------------------------------ */

#define MS (1000000LL)

static void case_ratepolicy(void)
{
    static const struct {
        int64_t at_ms;
        char op; /* 'r': refill, 't': take n, 'g': give n, 'w': wait for n (no take) */
        double n;
        int64_t want_wait_ms; /* 't', 'w': the wait; -1: do not check */
        double want_level;
    } steps[] = {
        /* burst 3 at 10/s */
        {0, 't', 1, 0, 2},       {0, 't', 1, 0, 1},
        {0, 't', 1, 0, 0},       {0, 't', 1, 100, -1},    /* reserved: the level is in debt */
        {50, 'r', 0, -1, -0.5},  {50, 'w', 1, 150, -0.5}, /* (1 - -0.5) / 10 s */
        {1000, 'r', 0, -1, 3},                            /* capped at burst */
        {1000, 't', 5, 0, -2}, /* more than the bucket: goes when full, leaves debt */
        {1000, 'w', 1, 300, -2}, {1000, 'g', 1, -1, -1}, /* a reservation given back */
        {1200, 'r', 0, -1, 1},   {1200, 'g', 9, -1, 3},  /* never above burst */
    };
    struct ratepolicy_bucket b;
    struct ratepolicy_cubic c;
    int64_t t0 = 5000 * MS;

    ratepolicy_bucket_init(&b, 3, t0);
    for (size_t i = 0; i < NELEM(steps); i++) {
        int64_t now = t0 + steps[i].at_ms * MS, w = -1;
        ratepolicy_bucket_refill(&b, 10, now);
        if (steps[i].op == 't')
            w = ratepolicy_bucket_take(&b, 10, steps[i].n);
        else if (steps[i].op == 'w')
            w = ratepolicy_bucket_wait(&b, 10, steps[i].n);
        else if (steps[i].op == 'g')
            ratepolicy_bucket_give(&b, steps[i].n);
        if (steps[i].want_wait_ms >= 0 && (w + MS / 2) / MS != steps[i].want_wait_ms) {
            fprintf(stderr, "bucket step %zu: wait %lld ns\n", i, (long long)w);
            CHECK(0);
        }
        if (steps[i].want_level > -1e9 && steps[i].op != 't' && steps[i].op != 'w' &&
            (b.level < steps[i].want_level - 1e-9 || b.level > steps[i].want_level + 1e-9)) {
            fprintf(stderr, "bucket step %zu: level %f want %f\n", i, b.level, steps[i].want_level);
            CHECK(0);
        }
    }
    ratepolicy_bucket_init(&b, 0.2, t0);
    CHECK(b.burst == 1);

    /* CUBIC at max 10/s, recovering in 10 s */
    {
        static const struct {
            int64_t at_ms;
            char op;       /* 't': throttled, '.': look, 's': n calls sent 1/n s apart */
            int n;         /* 's' */
            int want_cut;  /* 't' */
            double lo, hi; /* the rate afterwards */
        } curve[] = {
            {0, '.', 0, 0, 10, 10},
            {0, 't', 0, 1, 7, 7},        /* nothing measured: w_max = allowed = 10 */
            {500, 't', 0, 0, 7.4, 7.5},  /* the hold period: one signal; 0.9/s at first */
            {2500, '.', 0, 0, 7.4, 9.0}, /* climbing, concave */
            {10000, '.', 0, 0, 10, 10},  /* K = recovery: back at w_max = max */
            {30000, '.', 0, 0, 10, 10},  /* never above max */
            /* sending 2 calls/s while allowed 10: a throttle remembers what was sent */
            {40000, 's', 2, 0, 10, 10},
            {45000, 't', 0, 1, 1.3, 1.5}, /* w_max ~ 2 (measured), cut to ~1.4 */
            {46000, 't', 0, 1, 1.1, 1.2}, /* after the hold: again (0.7 * 1.66) */
            {47000, 't', 0, 1, 1, 1},     /* the floor: min_fraction 0.1 of 10 */
            {60000, '.', 0, 0, 1, 10},
            {90000, '.', 0, 0, 10, 10}, /* back at max */
        };
        int64_t base = 7000 * MS;
        double prev = 0;
        ratepolicy_cubic_init(&c, 10, 10000, 0.1, 0.7, base);
        for (size_t i = 0; i < NELEM(curve); i++) {
            int64_t now = base + curve[i].at_ms * MS;
            double r;
            if (curve[i].op == 't')
                CHECK_INT(ratepolicy_cubic_throttled(&c, now), curve[i].want_cut);
            if (curve[i].op == 's') /* n calls per second for 5 s */
                for (int k = 0; k < 5 * curve[i].n; k++)
                    ratepolicy_cubic_sent(&c, now + k * (1000 / curve[i].n) * MS);
            r = ratepolicy_cubic_rate(&c, now + (curve[i].op == 's' ? 5000 * MS : 0));
            if (r < curve[i].lo - 1e-9 || r > curve[i].hi + 1e-9) {
                fprintf(stderr, "cubic step %zu (t=%lld ms): rate %f not in [%f, %f]\n", i,
                        (long long)curve[i].at_ms, r, curve[i].lo, curve[i].hi);
                CHECK(0);
            }
        }
        /* after a cut the rate never goes down until the next cut */
        ratepolicy_cubic_init(&c, 5, 8000, 0, 0, base);
        ratepolicy_cubic_throttled(&c, base);
        for (int ms = 0; ms <= 20000; ms += 250) {
            double r = ratepolicy_cubic_rate(&c, base + ms * MS);
            CHECK(r >= prev - 1e-9);
            prev = r;
        }
        CHECK(prev == 5);
    }
}

static const struct {
    const char *name;
    void (*fn)(void);
    int needs_data;
} cases[] = {
    {"change", case_change, 1},
    {"session_token", case_session_token, 1},
    {"provider", case_provider, 1},
    {"hosted_zone", case_hosted_zone, 0},
    {"retry_throttling", case_retry_throttling, 1},
    {"retry_prior", case_retry_prior, 1},
    {"retry_500", case_retry_500, 1},
    {"retry_503", case_retry_503, 1},
    {"retry_reset", case_retry_reset, 1},
    {"icb_root", case_icb_root, 1},
    {"icb_errorresponse", case_icb_errorresponse, 1},
    {"no_retry", case_no_retry, 1},
    {"retries_exhausted", case_retries_exhausted, 1},
    {"timeout", case_timeout, 1},
    {"deadline", case_deadline, 1},
    {"paging", case_paging, 0},
    {"paging_samples", case_paging_samples, 1},
    {"paging_loops", case_paging_loops, 0},
    {"ratelimit_pacing", case_ratelimit_pacing, 1},
    {"bad_args", case_bad_args, 0},
    {"transport", case_transport, 0},
    {"body_cap", case_body_cap, 0},
    {"concurrency", case_concurrency, 1},
    {"retry_unit", case_retry_unit, 0},
    {"retry_delays", case_retry_delays, 0},
    {"retry_after", case_retry_after, 1},
    {"ratelimit_unit", case_ratelimit_unit, 0},
    {"ratelimit_changes", case_ratelimit_changes, 0},
    {"ratelimit_priority", case_ratelimit_priority, 0},
    {"ratepolicy", case_ratepolicy, 0},
};

int main(int argc, char **argv)
{
    char name[128], probe[1024];

    if (argc == 3 && strcmp(argv[1], "--skip") == 0) {
        printf("SKIP: %s\n", argv[2]);
        return SKIP_CODE;
    }
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < NELEM(cases); i++)
            printf("%s\n", cases[i].name);
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: %s <case> <testdata-dir> | --skip <reason> | --list\n", argv[0]);
        return 2;
    }
    testdata = argv[2];
    for (size_t i = 0; i < NELEM(cases); i++) {
        if (strcmp(argv[1], cases[i].name) != 0)
            continue;
        snprintf(probe, sizeof(probe), "%s/route53/change-rrsets-response.xml", testdata);
        if (cases[i].needs_data && access(probe, R_OK) != 0) {
            printf("SKIP: %s not found: Route 53 samples missing\n", probe);
            return SKIP_CODE;
        }
        cases[i].fn();
        snprintf(name, sizeof(name), "route53client.%s", cases[i].name);
        return check_done(name);
    }
    fprintf(stderr, "unknown case %s\n", argv[1]);
    return 2;
}
