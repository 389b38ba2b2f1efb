/*
 * httpd.c: libmicrohttpd glue.
 *
 * Threading: MHD runs a pool of worker threads (epoll); each request is handled on the worker
 * that owns its connection. Per-request state lives in a struct request hung on *con_cls; it is
 * created on the first call of the access handler, filled with the body on the following calls,
 * answered on the last one (never on the first: MHD would close the connection, see
 * ../shared/TOOLCHAIN.md), and logged and freed in the completion callback.
 *
 * The only shared state is the daemon, the registry (thread-safe) and a few atomics.
 */
#include "server/httpd.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "handlers/api.h"
#include "server/router.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

#define DIGEST_LEN 32

struct srv_httpd {
    struct MHD_Daemon *daemon;
    struct reg_registry *reg;
    size_t max_body;
    unsigned insync_timeout_ms;
    unsigned char (*token_digests)[DIGEST_LEN];
    size_t ntokens;
    atomic_int stopping;
    atomic_long in_flight;
    atomic_long parked;
    pthread_mutex_t parked_lock; /* taken after a request's lock, never before it */
    /* guarded by parked_lock */
    struct api_async *parked_head;
    atomic_ullong next_id;
    unsigned long long id_salt;
};

/*
 * One request. It is also the handlers' struct api_async: a handler that parks the request
 * completes it later through api_async_complete(). Two owners hold references while a request
 * is parked: MHD (dropped in on_completed) and the pending completion (dropped in
 * api_async_complete), so whichever comes last frees it.
 */
struct api_async {
    char id[24];
    struct timespec start;
    char *body;
    size_t len, cap;
    int too_big;
    int status;
    char method[24]; /* quoted for the log */
    char path[200];  /* quoted for the log */
    const char *route;       /* route pattern (static), a metric label */
    const char *method_name; /* a bounded metric label */
    struct srv_httpd *h;
    struct MHD_Connection *conn;
    atomic_int refs;

    pthread_mutex_t lock;
    /* guarded by lock */
    int completed;             /* res holds the answer */
    int suspended;             /* the connection is parked (and on the parked list) */
    int closed;                /* MHD is done with the request */
    int abandoned;             /* answered 503 at shutdown: a late completion is dropped */
    struct api_async *pnext, *pprev; /* the parked list, guarded by h->parked_lock */
    struct api_response res;
};
#define request api_async

/* ---- helpers ---------------------------------------------------------------------------- */

static double ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) * 1e3 + (double)(now.tv_nsec - t0->tv_nsec) / 1e6;
}

static void sha256(const void *data, size_t len, unsigned char out[DIGEST_LEN])
{
    unsigned int olen = DIGEST_LEN;
    EVP_Digest(data, len, out, &olen, EVP_sha256(), NULL);
}

/* Constant time over every configured token: no early exit. */
static int token_ok(const struct srv_httpd *h, const char *header)
{
    unsigned char digest[DIGEST_LEN];
    int ok = 0;

    if (!header || strncasecmp(header, "Bearer ", 7) != 0)
        return 0;
    header += 7;
    while (*header == ' ')
        header++;
    sha256(header, strlen(header), digest);
    for (size_t i = 0; i < h->ntokens; i++)
        ok |= CRYPTO_memcmp(digest, h->token_digests[i], DIGEST_LEN) == 0;
    OPENSSL_cleanse(digest, sizeof(digest));
    return ok;
}

/* Take the client's X-Request-Id when it is short and plain; otherwise make one. */
static void request_id(struct srv_httpd *h, struct MHD_Connection *c, char out[24])
{
    const char *given = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
    if (given) {
        size_t n = strlen(given), i;
        for (i = 0; i < n; i++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.",
                        given[i]))
                break;
        if (n && n < 24 && i == n) {
            memcpy(out, given, n + 1);
            return;
        }
    }
    unsigned long long seq = atomic_fetch_add(&h->next_id, 1);
    snprintf(out, 24, "%016llx", (seq * 0x9e3779b97f4a7c15ULL) ^ h->id_salt);
}

static enum MHD_Result send_response(struct MHD_Connection *c, struct request *rq,
                                     struct api_response *res, const char *allow,
                                     int head_only)
{
    char *text = res->raw ? res->raw : json_dumps(res->body, JSON_COMPACT);
    size_t len = res->raw ? res->raw_len : strlen(text);
    struct MHD_Response *r;
    enum MHD_Result ret;

    res->raw = NULL;
    text = xrealloc(text, len + 2);
    text[len++] = '\n';
    text[len] = '\0';
    r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, res->content_type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Request-Id", rq->id);
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    if (res->location[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, res->location);
    if (res->status == 401)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"r53reg\"");
    if (res->status == 503 || res->status == 413)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    (void)head_only; /* MHD drops the body of HEAD responses itself */
    rq->status = res->status;
    ret = MHD_queue_response(c, (unsigned)res->status, r);
    MHD_destroy_response(r);
    json_decref(res->body);
    res->body = NULL;
    return ret;
}

/* ---- metrics --------------------------------------------------------------------------- */

static struct metrics_counter_family *m_requests;
static struct metrics_histogram_family *m_duration;

static double parked_value(void *arg)
{
    return (double)atomic_load(&((struct srv_httpd *)arg)->parked);
}

static double in_flight_value(void *arg)
{
    return (double)atomic_load(&((struct srv_httpd *)arg)->in_flight);
}

static void metrics_attach(struct srv_httpd *h)
{
    struct metrics_registry *mr = metrics_default();
    m_requests = metrics_counter_create(mr, "r53reg_http_requests_total",
                                        "HTTP requests answered, by route, method and status",
                                        "route,method,status");
    m_duration = metrics_histogram_create(mr, "r53reg_http_request_duration_seconds",
                                          "Time from a request's headers to its answer "
                                          "(parked time included)",
                                          "route", NULL, 0);
    metrics_gauge_func(mr, "r53reg_http_parked_requests",
                       "Requests parked (connection suspended) until their change commits",
                       parked_value, h);
    metrics_gauge_func(mr, "r53reg_http_requests_in_flight", "Requests being handled",
                       in_flight_value, h);
}

static void metrics_detach(void)
{
    struct metrics_registry *mr = metrics_default();
    metrics_gauge_func(mr, "r53reg_http_parked_requests", "", NULL, NULL);
    metrics_gauge_func(mr, "r53reg_http_requests_in_flight", "", NULL, NULL);
}

static const char *method_label(const char *m)
{
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH",
                                        "OPTIONS"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (!strcmp(m, known[i]))
            return known[i];
    return "other";
}

/* ---- parked requests --------------------------------------------------------------------- */

static void request_unref(struct request *rq)
{
    if (atomic_fetch_sub(&rq->refs, 1) != 1)
        return;
    json_decref(rq->res.body);
    free(rq->res.raw);
    pthread_mutex_destroy(&rq->lock);
    free(rq->body);
    free(rq);
}

/* Park / unpark: the caller holds rq->lock. */
static void park(struct request *rq)
{
    struct srv_httpd *h = rq->h;
    rq->suspended = 1;
    atomic_fetch_add(&h->parked, 1);
    pthread_mutex_lock(&h->parked_lock);
    rq->pprev = NULL;
    rq->pnext = h->parked_head;
    if (h->parked_head)
        h->parked_head->pprev = rq;
    h->parked_head = rq;
    pthread_mutex_unlock(&h->parked_lock);
}

static void unpark(struct request *rq)
{
    struct srv_httpd *h = rq->h;
    rq->suspended = 0;
    atomic_fetch_sub(&h->parked, 1);
    pthread_mutex_lock(&h->parked_lock);
    if (rq->pprev)
        rq->pprev->pnext = rq->pnext;
    else
        h->parked_head = rq->pnext;
    if (rq->pnext)
        rq->pnext->pprev = rq->pprev;
    rq->pnext = rq->pprev = NULL;
    pthread_mutex_unlock(&h->parked_lock);
}

void api_async_complete(struct api_async *rq, struct api_response *res)
{
    pthread_mutex_lock(&rq->lock);
    if (!rq->closed && !rq->abandoned) {
        rq->res = *res;
        rq->completed = 1;
        if (rq->suspended) {
            unpark(rq);
            MHD_resume_connection(rq->conn);
        }
    } else {
        json_decref(res->body);
        free(res->raw);
    }
    memset(res, 0, sizeof(*res));
    pthread_mutex_unlock(&rq->lock);
    request_unref(rq);
}

/* ---- the access handler ----------------------------------------------------------------- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct srv_httpd *h = cls;
    struct request *rq = *con_cls;
    struct api_request req;
    struct api_response res;
    struct srv_route_match m;

    if (!rq) {
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        rq = xcalloc(1, sizeof(*rq));
        rq->h = h;
        rq->conn = c;
        atomic_init(&rq->refs, 1);
        pthread_mutex_init(&rq->lock, NULL);
        clock_gettime(CLOCK_MONOTONIC, &rq->start);
        request_id(h, c, rq->id);
        log_quote(method, rq->method, sizeof(rq->method));
        log_quote(url, rq->path, sizeof(rq->path));
        rq->route = "unmatched";
        rq->method_name = method_label(method);
        atomic_fetch_add(&h->in_flight, 1);
        *con_cls = rq;
        if (cl && strtoull(cl, NULL, 10) > h->max_body)
            rq->too_big = 1; /* answered below without reading the body */
        else
            return MHD_YES;
    }
    if (*upload_data_size) {
        if (!rq->too_big) {
            if (rq->len + *upload_data_size > h->max_body) {
                rq->too_big = 1;
                free(rq->body);
                rq->body = NULL;
            } else {
                rq->body = xgrow(rq->body, &rq->cap, rq->len + *upload_data_size + 1, 1);
                memcpy(rq->body + rq->len, upload_data, *upload_data_size);
                rq->len += *upload_data_size;
                rq->body[rq->len] = '\0';
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    memset(&req, 0, sizeof(req));
    memset(&res, 0, sizeof(res));
    pthread_mutex_lock(&rq->lock);
    if (rq->completed) {
        /* Resumed: the parked request has its answer. */
        res = rq->res;
        memset(&rq->res, 0, sizeof(rq->res));
        rq->completed = 0;
        pthread_mutex_unlock(&rq->lock);
        return send_response(c, rq, &res, NULL, 0);
    }
    pthread_mutex_unlock(&rq->lock);
    req.method = method;
    req.path = url;
    req.request_id = rq->id;
    req.reg = h->reg;
    req.body = rq->body;
    req.body_len = rq->len;
    req.wait = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "wait");
    req.content_type =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    req.insync_timeout_ms = h->insync_timeout_ms;

    if (rq->too_big) {
        char detail[96];
        snprintf(detail, sizeof(detail), "the body exceeds %zu bytes (--max-body)", h->max_body);
        api_problem(&res, &req, RC_BODY_TOO_LARGE, detail);
        return send_response(c, rq, &res, NULL, 0);
    }
    if (atomic_load(&h->stopping)) {
        api_problem(&res, &req, RC_SHUTTING_DOWN, "the service is shutting down; retry");
        return send_response(c, rq, &res, NULL, 0);
    }
    srv_route(method, url, &m);
    rq->route = m.pattern;
    if (!m.fn) {
        if (m.path_found) {
            char detail[128];
            snprintf(detail, sizeof(detail), "%.16s is not allowed here; allowed: %s", method,
                     m.allow);
            api_problem(&res, &req, RC_METHOD_NOT_ALLOWED, detail);
            return send_response(c, rq, &res, m.allow, 0);
        }
        api_problem(&res, &req, RC_NOT_FOUND, "no such endpoint");
        return send_response(c, rq, &res, NULL, 0);
    }
    if (m.mutating && h->ntokens &&
        !token_ok(h, MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_AUTHORIZATION))) {
        api_problem(&res, &req, RC_UNAUTHORIZED,
                    "this endpoint needs Authorization: Bearer <token>");
        return send_response(c, rq, &res, NULL, 0);
    }
    req.param = m.param;
    req.param_len = m.param_len;
    req.async = rq;
    atomic_fetch_add(&rq->refs, 1); /* the handler may go pending: its completion's reference */
    m.fn(&req, &res);
    if (res.status != API_PENDING) {
        request_unref(rq);
        return send_response(c, rq, &res, NULL, strcmp(method, "HEAD") == 0);
    }
    pthread_mutex_lock(&rq->lock);
    if (rq->completed) { /* completed before we could park */
        res = rq->res;
        memset(&rq->res, 0, sizeof(rq->res));
        rq->completed = 0;
        pthread_mutex_unlock(&rq->lock);
        return send_response(c, rq, &res, NULL, 0);
    }
    park(rq);
    MHD_suspend_connection(c);
    pthread_mutex_unlock(&rq->lock);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct srv_httpd *h = cls;
    struct request *rq = *con_cls;
    const union MHD_ConnectionInfo *ci;
    char peer[INET6_ADDRSTRLEN + 8] = "-";

    if (!rq)
        return;
    ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, peer,
                      sizeof(peer));
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                      peer, sizeof(peer));
    }
    {
        double ms = ms_since(&rq->start);
        char status[8];
        snprintf(status, sizeof(status), "%d", rq->status);
        log_info("msg=request id=%s peer=%s method=%s path=%s status=%d dur_ms=%.3f "
                 "bytes_in=%zu%s",
                 rq->id, peer, rq->method, rq->path, rq->status, ms, rq->len,
                 toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=1");
        if (rq->status) {
            metrics_counter_inc(
                metrics_counter_with(m_requests, rq->route, rq->method_name, status));
            metrics_histogram_observe(metrics_histogram_with(m_duration, rq->route), ms / 1e3);
        }
    }
    pthread_mutex_lock(&rq->lock);
    rq->closed = 1;
    if (rq->suspended)
        unpark(rq);
    pthread_mutex_unlock(&rq->lock);
    *con_cls = NULL;
    atomic_fetch_sub(&h->in_flight, 1);
    request_unref(rq);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512], q[600];
    size_t n;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_warn("msg=mhd detail=%s", log_quote(msg, q, sizeof(q)));
}

/* Identity: the handlers see the raw path, so percent-encoding cannot smuggle anything. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    return strlen(s);
}

/* ---- lifecycle -------------------------------------------------------------------------- */

enum rc_code srv_httpd_start(const struct srv_httpd_options *opt, struct reg_registry *reg,
                             struct srv_httpd **out, char *detail, size_t n)
{
    struct srv_httpd *h = xcalloc(1, sizeof(*h));
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

    h->reg = reg;
    h->max_body = opt->max_body;
    h->insync_timeout_ms = opt->insync_timeout_ms ? opt->insync_timeout_ms : 120000;
    atomic_init(&h->stopping, 0);
    atomic_init(&h->in_flight, 0);
    atomic_init(&h->parked, 0);
    pthread_mutex_init(&h->parked_lock, NULL);
    atomic_init(&h->next_id, 1);
    if (RAND_bytes((unsigned char *)&h->id_salt, sizeof(h->id_salt)) != 1)
        h->id_salt = (unsigned long long)time(NULL) ^ (unsigned long long)getpid();
    if (opt->ntokens) {
        h->token_digests = xcalloc(opt->ntokens, DIGEST_LEN);
        h->ntokens = opt->ntokens;
        for (size_t i = 0; i < opt->ntokens; i++)
            sha256(opt->tokens[i], strlen(opt->tokens[i]), h->token_digests[i]);
    }
    if (opt->addr->sa_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    metrics_attach(h);
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, opt->addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(opt->threads > 1 ? opt->threads : 0),
        MHD_OPTION_CONNECTION_LIMIT, opt->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        opt->client_timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        opt->connection_memory ? opt->connection_memory : (size_t)8192,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_UNESCAPE_CALLBACK, no_unescape,
        NULL, MHD_OPTION_END);
    if (!h->daemon) {
        metrics_detach();
        snprintf(detail, n, "cannot start the HTTP server (address in use or not available?)");
        free(h->token_digests);
        free(h);
        *out = NULL;
        return RC_IO;
    }
    *out = h;
    return RC_OK;
}

unsigned srv_httpd_port(const struct srv_httpd *h)
{
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return di ? di->port : 0;
}

/*
 * At the end of a shutdown: answer every request still parked with 503 (its change may yet be
 * committed by the registry, which the answer says), so MHD can close the connections; MHD
 * refuses to stop while any is suspended. A completion arriving later is dropped.
 */
static void answer_parked(struct srv_httpd *h)
{
    struct request **v = NULL;
    size_t n = 0, cap = 0;

    pthread_mutex_lock(&h->parked_lock);
    for (struct request *rq = h->parked_head; rq; rq = rq->pnext) {
        atomic_fetch_add(&rq->refs, 1);
        v = xgrow(v, &cap, n + 1, sizeof(*v));
        v[n++] = rq;
    }
    pthread_mutex_unlock(&h->parked_lock);
    for (size_t i = 0; i < n; i++) {
        struct request *rq = v[i];
        pthread_mutex_lock(&rq->lock);
        if (rq->suspended && !rq->completed) {
            struct api_request req;
            memset(&req, 0, sizeof(req));
            req.path = rq->path;
            req.request_id = rq->id;
            api_problem(&rq->res, &req, RC_SHUTTING_DOWN,
                        "the service stopped before this change was committed; it may still "
                        "be committed: look it up before retrying");
            rq->completed = 1;
            rq->abandoned = 1;
            unpark(rq);
            MHD_resume_connection(rq->conn);
        }
        pthread_mutex_unlock(&rq->lock);
        request_unref(rq);
    }
    free(v);
}

void srv_httpd_stop(struct srv_httpd *h, unsigned timeout_s)
{
    struct timespec t0;
    if (!h)
        return;
    atomic_store(&h->stopping, 1);
    {
        MHD_socket ls = MHD_quiesce_daemon(h->daemon);
        if (ls != MHD_INVALID_SOCKET)
            close(ls);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (atomic_load(&h->in_flight) > 0 && ms_since(&t0) < timeout_s * 1000.0) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&h->in_flight) > 0) {
        log_warn("msg=\"shutdown timeout; answering parked requests 503\" in_flight=%ld "
                 "parked=%ld",
                 (long)atomic_load(&h->in_flight), (long)atomic_load(&h->parked));
        /* Resume them, then give MHD a moment to send the answers. */
        for (int round = 0; round < 200 && atomic_load(&h->parked) > 0; round++) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            answer_parked(h);
            nanosleep(&ts, NULL);
        }
        clock_gettime(CLOCK_MONOTONIC, &t0);
        while (atomic_load(&h->in_flight) > 0 && ms_since(&t0) < 2000.0) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    MHD_stop_daemon(h->daemon);
    pthread_mutex_destroy(&h->parked_lock);
    metrics_detach();
    if (h->token_digests)
        OPENSSL_cleanse(h->token_digests, h->ntokens * DIGEST_LEN);
    free(h->token_digests);
    free(h);
}
