/*
 * httpd.c: libmicrohttpd glue.
 *
 * Threading: MHD runs a pool of worker threads (epoll); each request is handled on the worker
 * that owns its connection. Per-request state lives in a struct request hung on *con_cls; it is
 * created on the first call of the access handler, filled with the body on the following calls,
 * answered on the last one (never on the first: libmicrohttpd closes the connection
 * when a response is queued on the first call of the access handler), and logged and freed
 * in the completion callback.
 *
 * Who may do what (docs/security.md): the route says whether a request mutates and what;
 * for a mutation, the per-client rate limit (keyed by the caller's address) comes first,
 * then the bearer token (srv_auth: 401 without a valid one when tokens are configured),
 * then the token's scope (read: 403; self: PUT 403, single addresses checked by the
 * handlers against the caller). All of that is decided on the headers, at the first call:
 * a refused request that announces a body is answered at once (like a Content-Length above
 * --max-body), so no 100 Continue is sent and nothing of the body is read or buffered;
 * libmicrohttpd then closes the connection. A bodiless refusal waits for the next call and
 * keeps its connection. The caller is the TCP peer, or, when the peer is a trusted
 * proxy, the right-most X-Forwarded-For entry that is not one.
 *
 * The shared state is the daemon, the registry (thread-safe), the authenticator (its own
 * rwlock), the rate limiter (its own locks), the TLS credentials (their own lock), the CIDR
 * sets (read-only after start) and a few atomics. reload_lock serializes reloads only.
 */
#include "server/httpd.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "handlers/api.h"
#include "handlers/recent.h"
#include "handlers/text.h"
#include "handlers/ui.h"
#include "handlers/watch.h"
#include "server/auth.h"
#include "server/ratelimit.h"
#include "server/router.h"
#include "server/tls.h"
#include "util/cidr.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

/* TLS 1.2 and 1.3 only; the rest of GnuTLS's NORMAL set. */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define XFF_MAX 4096 /* bytes of X-Forwarded-For considered (headers are capped anyway) */

struct srv_httpd {
    struct MHD_Daemon *daemon;
    struct reg_registry *reg;
    size_t max_body;
    unsigned insync_timeout_ms;
    struct srv_auth *auth;
    /* --peers: the /fleet/ endpoints' description of this replica and the one token they
     * accept (--peer-token; none: anonymous). Both NULL without --peers. Read-only. */
    const struct api_fleet *fleet;
    struct srv_auth *peer_auth;
    struct srv_token_list static_tokens; /* kept across reloads; secrets wiped at stop */
    char *token_file;
    struct cidr_set trusted; /* read-only after start */
    struct cidr_set allow;   /* read-only after start */
    int allow_special;       /* read-only after start */
    struct srv_ratelimit *rl; /* NULL: no per-client limit */
    unsigned client_rps, client_burst;
    struct srv_tls *tls; /* NULL: plain HTTP */
    pthread_mutex_t reload_lock;
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
    int begun;                /* on_request has filled the fields below */
    const char *uri_at;       /* the target as on_uri saw it (in MHD's buffer), or NULL */
    size_t uri_len;           /* strlen(uri_at) then: up to a NUL inside the target */
    char malformed[96];       /* why the request is refused 400 before anything else, or "" */
    int status;
    char method[24]; /* quoted for the log */
    char path[200];  /* quoted for the log */
    const char *route;       /* route pattern (static), a metric label */
    const char *method_name; /* a bounded metric label */
    int mutating;
    struct ip_addr peer_ip, caller_ip;
    int has_peer, has_caller;
    char peer[IP_TEXT_MAX], caller[IP_TEXT_MAX]; /* "-" when unknown */
    char token[SRV_TOKEN_NAME_MAX + 1];          /* name, "-" (none) or "-invalid-" */
    const char *scope;                           /* "admin", ..., "anonymous" or "-" */
    /* the audit facts of the answer (handlers/api.h) */
    char target[IP_TEXT_MAX + 2];
    int audit_list;
    size_t audit_items;
    char change_id[API_AUDIT_ID_MAX];
    char accepted[48];
    /* Authorization is decided on the headers, at the first call (docs/security.md). */
    int auth_done;            /* authorize() ran: the fields below hold its outcome */
    int refused;              /* it refused: early holds the answer (401, 403 or 429) */
    int self_only;            /* the token has scope self */
    int token_named;          /* a valid token: token names it for the handlers */
    struct api_response early; /* the refusal, until it is sent */
    struct srv_httpd *h;
    struct MHD_Connection *conn;
    atomic_int refs;

    pthread_mutex_t lock;
    /* guarded by lock */
    int completed;             /* res holds the answer */
    int suspended;             /* the connection is parked (and on the parked list) */
    int closed;                /* MHD is done with the request */
    int abandoned;             /* answered 503 at shutdown: a late completion is dropped */
    int audit_pending;         /* MHD closed it while parked: the completion logs the audit */
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

/* ---- the caller's address ----------------------------------------------------------------- */

struct xff {
    char buf[XFF_MAX + 1];
    size_t len;
};

static enum MHD_Result collect_xff(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct xff *x = cls;
    size_t n;
    (void)kind;
    if (!key || !value || strcasecmp(key, "X-Forwarded-For") != 0)
        return MHD_YES;
    n = strlen(value);
    if (x->len + n + 1 > XFF_MAX) {
        x->len = XFF_MAX + 1; /* too long to trust: the caller is unknown */
        return MHD_NO;
    }
    if (x->len)
        x->buf[x->len++] = ',';
    memcpy(x->buf + x->len, value, n);
    x->len += n;
    x->buf[x->len] = '\0';
    return MHD_YES;
}

/* One X-Forwarded-For entry: "a.b.c.d", "a.b.c.d:port", "v6", "[v6]" or "[v6]:port". */
static int xff_entry(const char *s, size_t len, struct ip_addr *out)
{
    char txt[INET6_ADDRSTRLEN + 1];
    const char *colon;
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;

    while (len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    colon = memchr(s, ':', len);
    if (len && *s == '[') {
        const char *close = memchr(s, ']', len);
        if (!close)
            return -1;
        len = (size_t)(close - s - 1);
        s++;
    } else if (colon && memchr(s, '.', len) &&
               !memchr(colon + 1, ':', len - (size_t)(colon - s) - 1)) {
        len = (size_t)(colon - s); /* a.b.c.d:port: one colon after a dotted quad */
    }
    if (len == 0 || len >= sizeof(txt))
        return -1;
    memcpy(txt, s, len);
    txt[len] = '\0';
    memset(&a4, 0, sizeof(a4));
    memset(&a6, 0, sizeof(a6));
    if (inet_pton(AF_INET, txt, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        return ip_from_sockaddr((const struct sockaddr *)&a4, out);
    }
    if (inet_pton(AF_INET6, txt, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        return ip_from_sockaddr((const struct sockaddr *)&a6, out);
    }
    return -1;
}

/*
 * The caller: the peer; or, when the peer is a trusted proxy, the right-most entry of
 * X-Forwarded-For (all such headers, in order) that is not a trusted proxy, walking from the
 * right; when every entry is trusted, the left-most. An unparsable entry on that walk makes
 * the caller unknown (-1): whatever is left of it could be anything.
 */
static int resolve_caller(const struct srv_httpd *h, struct MHD_Connection *c,
                          const struct ip_addr *peer, struct ip_addr *out)
{
    struct xff x;
    struct ip_addr last = *peer;

    *out = *peer;
    if (!h->trusted.n || !cidr_set_contains(&h->trusted, peer))
        return 0;
    x.len = 0;
    x.buf[0] = '\0';
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_xff, &x);
    if (x.len > XFF_MAX)
        return -1;
    for (size_t end = x.len; end > 0;) {
        size_t start = end;
        struct ip_addr a;
        while (start > 0 && x.buf[start - 1] != ',')
            start--;
        if (xff_entry(x.buf + start, end - start, &a))
            return -1;
        if (!cidr_set_contains(&h->trusted, &a)) {
            *out = a;
            return 0;
        }
        last = a;
        end = start ? start - 1 : 0;
    }
    *out = last;
    return 0;
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

/* ---- the audit line ---------------------------------------------------------------------- */

/* One audit line for a mutation (docs/security.md); aborted: the client never got the answer. */
static void log_audit(const struct request *rq, int status, int aborted)
{
    char what[64];
    if (rq->audit_list)
        snprintf(what, sizeof(what), "items=%zu", rq->audit_items);
    else
        snprintf(what, sizeof(what), "target=%s", rq->target[0] ? rq->target : "-");
    log_info("msg=audit id=%s token=%s scope=%s caller=%s peer=%s method=%s path=%s %s "
             "status=%d change_id=%s%s%s%s",
             rq->id, rq->token, rq->scope, rq->caller, rq->peer, rq->method, rq->path, what,
             status, rq->change_id[0] ? rq->change_id : "-",
             rq->accepted[0] ? " accepted_change=" : "", rq->accepted, aborted ? " aborted=1" : "");
    api_recent_note(rq->method_name, rq->path, rq->target,
                    rq->audit_list ? (long)rq->audit_items : -1, status, rq->token, rq->caller,
                    rq->change_id, aborted);
}

/* Copy an answer's audit facts into rq (target, list size, change ids). */
static void audit_facts(struct request *rq, const struct api_response *res)
{
    if (res->audit_target[0])
        snprintf(rq->target, sizeof(rq->target), "%s", res->audit_target);
    if (res->audit_list) {
        rq->audit_list = 1;
        rq->audit_items = res->audit_items;
    }
    if (res->audit_change_id[0])
        snprintf(rq->change_id, sizeof(rq->change_id), "%s", res->audit_change_id);
    if (res->status == 202 && !strncmp(res->location, "/changes/", 9))
        snprintf(rq->accepted, sizeof(rq->accepted), "%s", res->location + 9);
}

/*
 * The audit target of a request on /backends/{ip}... or /backends/self..., from the request
 * line, so that every audit line names it even when no handler answers (a refusal on the
 * headers, a connection closed while parked). A handler's answer may refine it.
 */
static void audit_target_from_route(struct request *rq, const struct srv_route_match *m)
{
    struct ip_addr ip;
    char detail[64];
    if (!strncmp(m->pattern, "/backends/self", 14)) {
        if (rq->has_caller)
            ip_format(&rq->caller_ip, rq->target);
    } else if (!strncmp(m->pattern, "/backends/{ip}", 14) && m->param &&
               ip_parse(m->param, m->param_len, &ip, detail, sizeof(detail)) == RC_OK) {
        ip_format(&ip, rq->target);
    }
}

static void text_done(void *text)
{
    api_text_unref(text);
}

static enum MHD_Result send_response(struct MHD_Connection *c, struct request *rq,
                                     struct api_response *res, const char *allow,
                                     int head_only)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    if (res->status == 304) {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    } else if (res->text) {
        /* Shared with other answers: MHD drops the reference when it is done sending. */
        struct api_text *t = res->text;
        res->text = NULL;
        r = MHD_create_response_from_buffer_with_free_callback_cls(
            t->len, t->data, text_done, t);
        if (!r)
            api_text_unref(t);
    } else {
        char *text = res->raw ? res->raw : json_dumps(res->body, JSON_COMPACT);
        size_t len = res->raw ? res->raw_len : strlen(text);
        res->raw = NULL;
        text = xrealloc(text, len + 2);
        text[len++] = '\n';
        text[len] = '\0';
        r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
        if (!r)
            free(text);
    }
    if (!r) {
        json_decref(res->body);
        res->body = NULL;
        return MHD_NO;
    }
    if (res->status != 304)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, res->content_type);
    if (res->index) {
        char ix[24];
        snprintf(ix, sizeof(ix), "%llu", res->index);
        MHD_add_response_header(r, "X-R53reg-Index", ix);
    }
    if (res->etag[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, res->etag);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Request-Id", rq->id);
    if (res->content_type && !strncmp(res->content_type, "text/html", 9)) /* handlers/ui.h */
        MHD_add_response_header(r, "Content-Security-Policy", API_UI_CSP);
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    if (res->location[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, res->location);
    if (res->status == 401)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"r53reg\"");
    if (res->retry_after) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%u", res->retry_after);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    /* The audit facts, for on_completed's audit line. */
    audit_facts(rq, res);
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
static struct metrics_counter_family *m_limited;
static struct metrics_histogram_family *m_duration;

static double parked_value(void *arg)
{
    return (double)atomic_load(&((struct srv_httpd *)arg)->parked);
}

static double watches_value(void *arg)
{
    (void)arg;
    return (double)api_watch_parked();
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
    m_limited = metrics_counter_create(mr, "r53reg_http_rate_limited_total",
                                       "Mutations refused 429 by the per-client rate limit "
                                       "(--client-rps)",
                                       NULL);
    m_duration = metrics_histogram_create(mr, "r53reg_http_request_duration_seconds",
                                          "Time from a request's headers to its answer "
                                          "(parked time included)",
                                          "route", NULL, 0);
    metrics_gauge_func(mr, "r53reg_http_parked_requests",
                       "Requests parked (connection suspended) until their change commits "
                       "or, for a watch, until a change or the end of its wait",
                       parked_value, h);
    metrics_gauge_func(mr, "r53reg_http_requests_in_flight", "Requests being handled",
                       in_flight_value, h);
    metrics_gauge_func(mr, "r53reg_http_watches_parked",
                       "Reads parked until a change or the end of their wait (a subset of "
                       "r53reg_http_parked_requests)",
                       watches_value, h);
}

static void metrics_detach(void)
{
    struct metrics_registry *mr = metrics_default();
    metrics_gauge_func(mr, "r53reg_http_parked_requests", "", NULL, NULL);
    metrics_gauge_func(mr, "r53reg_http_requests_in_flight", "", NULL, NULL);
    metrics_gauge_func(mr, "r53reg_http_watches_parked", "", NULL, NULL);
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
    api_text_unref(rq->res.text);
    json_decref(rq->early.body);
    free(rq->early.raw);
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
        if (rq->audit_pending) { /* MHD closed it while parked: the outcome is known now */
            rq->audit_pending = 0;
            audit_facts(rq, res);
            log_audit(rq, res->status, 1);
        }
        json_decref(res->body);
        free(res->raw);
        api_text_unref(res->text);
    }
    memset(res, 0, sizeof(*res));
    pthread_mutex_unlock(&rq->lock);
    request_unref(rq);
}

/* ---- who may do what ------------------------------------------------------------------------ */

/*
 * The per-client limiter (--client-rps): take one token from the caller's bucket (take), or
 * only look whether it is empty. Fills res with a 429 and returns -1 when it is; 0 otherwise
 * (also without a limiter or a known caller).
 */
static int client_limited(struct srv_httpd *h, struct request *rq, struct api_request *req,
                          struct api_response *res, int take, const char *what)
{
    unsigned retry = 1;
    const struct ip_addr *key = rq->has_caller ? &rq->caller_ip : &rq->peer_ip;
    char detail[320];
    int limited;

    if (!h->rl || !(rq->has_caller || rq->has_peer))
        return 0;
    limited = take ? !srv_ratelimit_take(h->rl, key, &retry)
                   : srv_ratelimit_empty(h->rl, key, &retry);
    if (!limited)
        return 0;
    snprintf(detail, sizeof(detail),
             "more than %u %s per second from %s (--client-rps %u, --client-burst %u); retry "
             "after %u s",
             h->client_rps, what, rq->has_caller ? rq->caller : rq->peer, h->client_rps,
             h->client_burst, retry);
    api_problem(res, req, RC_TOO_MANY_REQUESTS, detail);
    res->retry_after = retry;
    metrics_counter_inc(metrics_counter_child(m_limited));
    return -1;
}

/*
 * A replica asking another (/fleet/): only the peer token (compared through its digest in
 * constant time, like the others; never logged: the log names it "fleet"). Without --peers
 * the handler answers 404, so nothing is checked here. Failed attempts (no token, a wrong
 * one) take from the caller's --client-rps bucket, and a caller whose bucket is empty is
 * answered 429 before its token is looked at, right or wrong: guessing the peer token is as
 * slow as any mutation. A peer with the right token takes nothing (its polls are not limited
 * unless someone at its address keeps failing).
 */
static int authorize_peer(struct srv_httpd *h, struct MHD_Connection *c, struct request *rq,
                          struct api_request *req, struct api_response *res)
{
    char name[SRV_TOKEN_NAME_MAX + 1];
    enum srv_scope scope;
    enum srv_auth_result ar;

    if (!h->peer_auth)
        return 0;
    if (client_limited(h, rq, req, res, 0, "failed /fleet/ authentications"))
        return -1;
    ar = srv_auth_check(h->peer_auth,
                        MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_AUTHORIZATION),
                        name, &scope);
    if (ar == SRV_AUTH_ANONYMOUS) {
        rq->scope = "anonymous";
        return 0;
    }
    if (ar == SRV_AUTH_OK) {
        snprintf(rq->token, sizeof(rq->token), "fleet");
        rq->scope = "peer";
        return 0;
    }
    if (ar == SRV_AUTH_INVALID)
        snprintf(rq->token, sizeof(rq->token), "-invalid-");
    if (client_limited(h, rq, req, res, 1, "failed /fleet/ authentications"))
        return -1;
    api_problem(res, req, RC_UNAUTHORIZED,
                "the /fleet/ endpoints need Authorization: Bearer <the --peer-token>");
    return -1;
}

/*
 * Rate limit, authenticate and check the scope of a request (docs/security.md). Fills
 * req->token_name and req->self_only for the handler and returns 0; or fills res with the
 * refusal (429, 401, 403) and returns -1.
 */
static int authorize(struct srv_httpd *h, struct MHD_Connection *c, struct request *rq,
                     const struct srv_route_match *m, struct api_request *req,
                     struct api_response *res)
{
    const char *authz;
    enum srv_auth_result ar = SRV_AUTH_MISSING;
    enum srv_scope scope = SRV_SCOPE_ADMIN;
    char name[SRV_TOKEN_NAME_MAX + 1], detail[320];

    /*
     * Reads need no token, and a presented one is not even looked at: a read with a wrong
     * token must be indistinguishable from one without (answer, log, metrics), or reads,
     * which are not rate limited, would test guesses for free.
     */
    if (m->access == SRV_ACCESS_FLEET)
        return authorize_peer(h, c, rq, req, res);
    if (!m->mutating)
        return 0;
    if (client_limited(h, rq, req, res, 1, "changes"))
        return -1;
    authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    ar = srv_auth_check(h->auth, authz, name, &scope);
    switch (ar) {
    case SRV_AUTH_ANONYMOUS:
        rq->scope = "anonymous";
        return 0; /* no token configured: today's rule (config.c) decided this is fine */
    case SRV_AUTH_MISSING:
    case SRV_AUTH_INVALID:
        if (ar == SRV_AUTH_INVALID)
            snprintf(rq->token, sizeof(rq->token), "-invalid-");
        api_problem(res, req, RC_UNAUTHORIZED,
                    ar == SRV_AUTH_INVALID
                        ? "the bearer token is not valid (not configured, or removed by a reload)"
                        : "this endpoint needs Authorization: Bearer <token>");
        return -1;
    case SRV_AUTH_OK:
        break;
    }
    snprintf(rq->token, sizeof(rq->token), "%s", name);
    rq->scope = srv_scope_name(scope);
    req->token_name = rq->token;
    if (scope == SRV_SCOPE_READ) {
        snprintf(detail, sizeof(detail), "token '%s' has scope read: it may only read (GET, HEAD)",
                 name);
        api_problem(res, req, RC_FORBIDDEN, detail);
        return -1;
    }
    if (scope == SRV_SCOPE_SELF) {
        if (m->access == SRV_ACCESS_REPLACE) {
            snprintf(detail, sizeof(detail),
                     "token '%s' has scope self: PUT /backends may change every address and "
                     "needs an admin token", name);
            api_problem(res, req, RC_FORBIDDEN, detail);
            return -1;
        }
        req->self_only = 1; /* the handlers check each address against req->caller */
    }
    return 0;
}

/* ---- the access handler ----------------------------------------------------------------- */

/* Does the request announce a body (Content-Length above 0, Transfer-Encoding, Expect)? */
static int announces_body(struct MHD_Connection *c)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strspn(cl, "0 \t") != strlen(cl))
        return 1;
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) ||
           MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
}

/*
 * At the first call of the access handler, with the headers only: authorize a mutation on a
 * known route (rate limit, token, scope) and remember the outcome, so that the body of a
 * refused request is never read or buffered and a request is counted once by the rate
 * limit. Returns 1 when the request is refused and the answer must go now (it announces a
 * body: no 100 Continue, nothing read; libmicrohttpd then closes the connection), 0
 * otherwise (a refusal without a body is answered on the next call, keeping the connection).
 */
static int authorize_on_headers(struct srv_httpd *h, struct MHD_Connection *c,
                                struct request *rq, const char *method, const char *url)
{
    struct srv_route_match m;
    struct api_request req;

    if (atomic_load(&h->stopping))
        return 0;
    srv_route(method, url, &m);
    if (!m.fn || !m.mutating)
        return 0;
    audit_target_from_route(rq, &m);
    memset(&req, 0, sizeof(req));
    req.method = method;
    req.path = url;
    req.request_id = rq->id;
    rq->mutating = 1;
    rq->auth_done = 1;
    rq->refused = authorize(h, c, rq, &m, &req, &rq->early) != 0;
    rq->self_only = req.self_only;
    rq->token_named = req.token_name != NULL;
    return rq->refused && announces_body(c);
}

/* Send the answer a completion left in rq. Caller holds rq->lock; it is released. */
static enum MHD_Result send_completed(struct MHD_Connection *c, struct request *rq)
{
    struct api_response res = rq->res;
    memset(&rq->res, 0, sizeof(rq->res));
    rq->completed = 0;
    pthread_mutex_unlock(&rq->lock);
    return send_response(c, rq, &res, NULL, 0);
}

static struct request *request_create(struct srv_httpd *h, struct MHD_Connection *c)
{
    struct request *rq = xcalloc(1, sizeof(*rq));
    rq->h = h;
    rq->conn = c;
    atomic_init(&rq->refs, 1);
    pthread_mutex_init(&rq->lock, NULL);
    clock_gettime(CLOCK_MONOTONIC, &rq->start);
    return rq;
}

/*
 * libmicrohttpd's URI log callback: it runs once per request, on the request line, after MHD
 * has cut the HTTP version off with a NUL but before it splits off the query and before the
 * access handler; what it returns becomes the request's *con_cls. It records where the
 * target starts and how long it is as a C string, so on_request can tell a NUL inside the
 * target (where MHD's C string would end early) from the NUL that ends it.
 */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    struct request *rq = request_create(cls, c);
    rq->uri_at = uri;
    rq->uri_len = uri ? strlen(uri) : 0;
    return rq;
}

struct framing {
    const char *content_length; /* the first value */
    int conflict;               /* two different values, or one that is not a number */
    int transfer_encoding;
};

static enum MHD_Result collect_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    struct framing *f = cls;
    (void)kind;
    if (!key)
        return MHD_YES;
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
        if (!value || !*value || strspn(value, "0123456789") != strlen(value) ||
            (f->content_length && strcmp(f->content_length, value) != 0))
            f->conflict = 1;
        f->content_length = value;
    } else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        f->transfer_encoding = 1;
    }
    return MHD_YES;
}

/*
 * Refuse what libmicrohttpd 0.9.75 reads leniently (RFC 9112 sections 3.2 and 6.3): a NUL
 * inside the request target (MHD would hand on the text before it: POST
 * /backends/10.0.0.80<NUL>junk would register 10.0.0.80), Content-Length values that differ
 * or are not numbers, and Content-Length together with Transfer-Encoding (request
 * smuggling: a proxy in front may frame the body the other way). Fills why and returns 1.
 */
static int framing_problem(struct MHD_Connection *c, const struct request *rq, const char *url,
                           const char *version, char *why, size_t n)
{
    struct framing f;

    /* Without a NUL inside, the target ends where MHD cut the version off. */
    if (!rq->uri_at || url != rq->uri_at || version != rq->uri_at + rq->uri_len + 1) {
        snprintf(why, n, "the request target holds a NUL byte");
        return 1;
    }
    memset(&f, 0, sizeof(f));
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_framing, &f);
    if (f.conflict) {
        snprintf(why, n, "conflicting or malformed Content-Length headers");
        return 1;
    }
    if (f.content_length && f.transfer_encoding) {
        snprintf(why, n, "Content-Length together with Transfer-Encoding");
        return 1;
    }
    return 0;
}

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

    if (!rq || !rq->begun) {
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (!rq) /* on_uri always runs first; this is only a fallback */
            rq = request_create(h, c);
        rq->begun = 1;
        request_id(h, c, rq->id);
        log_quote(method, rq->method, sizeof(rq->method));
        log_quote(url, rq->path, sizeof(rq->path));
        rq->route = "unmatched";
        rq->method_name = method_label(method);
        snprintf(rq->peer, sizeof(rq->peer), "-");
        snprintf(rq->caller, sizeof(rq->caller), "-");
        snprintf(rq->token, sizeof(rq->token), "-");
        rq->scope = "-";
        {
            const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
            if (ci && ci->client_addr && ip_from_sockaddr(ci->client_addr, &rq->peer_ip) == 0) {
                rq->has_peer = 1;
                ip_format(&rq->peer_ip, rq->peer);
                if (resolve_caller(h, c, &rq->peer_ip, &rq->caller_ip) == 0) {
                    rq->has_caller = 1;
                    ip_format(&rq->caller_ip, rq->caller);
                }
            }
        }
        atomic_fetch_add(&h->in_flight, 1);
        *con_cls = rq;
        if (framing_problem(c, rq, url, version, rq->malformed, sizeof(rq->malformed)))
            ; /* answered below (400) without reading the body */
        else if (cl && strtoull(cl, NULL, 10) > h->max_body)
            rq->too_big = 1; /* answered below without reading the body */
        else if (!authorize_on_headers(h, c, rq, method, url))
            return MHD_YES; /* else refused: answered below without reading the body */
    }
    if (*upload_data_size) {
        if (!rq->too_big && !rq->malformed[0]) {
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
    if (rq->completed) /* resumed: the parked request has its answer */
        return send_completed(c, rq);
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
    req.ips = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "ips");
    req.index = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "index");
    req.detail = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "detail");
    req.if_none_match =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    req.fleet = h->fleet;
    req.insync_timeout_ms = h->insync_timeout_ms;
    req.caller = rq->has_caller ? &rq->caller_ip : NULL;
    req.allow_cidr = &h->allow;
    req.allow_special = h->allow_special;

    srv_route(method, url, &m);
    rq->mutating = m.mutating;
    if (m.mutating && !rq->target[0])
        audit_target_from_route(rq, &m);
    if (rq->malformed[0]) {
        api_problem(&res, &req, RC_BAD_REQUEST, rq->malformed);
        return send_response(c, rq, &res, NULL, 0);
    }
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
    if (rq->auth_done) {
        if (rq->refused) {
            res = rq->early;
            memset(&rq->early, 0, sizeof(rq->early));
            rq->refused = 0;
            return send_response(c, rq, &res, NULL, 0);
        }
        req.self_only = rq->self_only;
        req.token_name = rq->token_named ? rq->token : NULL;
    } else if (authorize(h, c, rq, &m, &req, &res)) {
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
    if (rq->completed) /* completed before we could park */
        return send_completed(c, rq);
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
    int audit_later;

    if (!rq)
        return;
    (void)c;
    if (!rq->begun) { /* on_uri ran, the access handler never did (MHD refused the request) */
        *con_cls = NULL;
        request_unref(rq);
        return;
    }
    /*
     * Closed while parked: the change may still commit, so its completion logs the audit
     * line with the outcome and the change id (api_async_complete). Decided under the same
     * lock that marks the request closed, so a completion either sees it closed or was
     * already sent.
     */
    pthread_mutex_lock(&rq->lock);
    rq->closed = 1;
    rq->audit_pending = rq->mutating && rq->suspended && !rq->completed && !rq->abandoned;
    audit_later = rq->audit_pending;
    if (rq->suspended)
        unpark(rq);
    pthread_mutex_unlock(&rq->lock);
    {
        double ms = ms_since(&rq->start);
        char status[8];
        snprintf(status, sizeof(status), "%d", rq->status);
        log_info("msg=request id=%s peer=%s caller=%s token=%s method=%s path=%s status=%d "
                 "dur_ms=%.3f bytes_in=%zu%s",
                 rq->id, rq->peer, rq->caller, rq->token, rq->method, rq->path, rq->status, ms,
                 rq->len, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=1");
        if (rq->mutating && !audit_later)
            log_audit(rq, rq->status, toe != MHD_REQUEST_TERMINATED_COMPLETED_OK);
        if (rq->status) {
            metrics_counter_inc(
                metrics_counter_with(m_requests, rq->route, rq->method_name, status));
            metrics_histogram_observe(metrics_histogram_with(m_duration, rq->route), ms / 1e3);
        }
    }
    *con_cls = NULL;
    atomic_fetch_sub(&h->in_flight, 1);
    request_unref(rq);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

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

/* TLS connections carry their srv_tls context (server/tls.h) from start to close. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct srv_httpd *h = cls;
    (void)c;
    if (!h->tls)
        return;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = srv_tls_conn_open(h->tls);
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        srv_tls_conn_close(*socket_context);
        *socket_context = NULL;
    }
}

/* The bare and scoped tokens of the options, then the token file's: the full set. */
static enum rc_code build_tokens(const struct srv_httpd *h, struct srv_token_list *l,
                                 char *detail, size_t n)
{
    enum rc_code rc;
    char why[300];

    memset(l, 0, sizeof(*l));
    for (size_t i = 0; i < h->static_tokens.n; i++)
        srv_tokens_add_copy(l, &h->static_tokens.v[i]);
    if (h->token_file) {
        rc = srv_tokens_load_file(l, h->token_file, why, sizeof(why));
        if (rc) {
            snprintf(detail, n, "--token-file: %s", why);
            goto bad;
        }
    }
    rc = srv_tokens_check(l, why, sizeof(why));
    if (rc) {
        snprintf(detail, n, "tokens: %s", why);
        goto bad;
    }
    return RC_OK;
bad:
    srv_tokens_release(l);
    return rc;
}

static void free_httpd(struct srv_httpd *h)
{
    srv_auth_destroy(h->auth);
    srv_auth_destroy(h->peer_auth);
    srv_tokens_release(&h->static_tokens);
    free(h->token_file);
    cidr_set_release(&h->trusted);
    cidr_set_release(&h->allow);
    srv_ratelimit_destroy(h->rl);
    srv_tls_destroy(h->tls);
    pthread_mutex_destroy(&h->parked_lock);
    pthread_mutex_destroy(&h->reload_lock);
    free(h);
}

enum rc_code srv_httpd_start(const struct srv_httpd_options *opt, struct reg_registry *reg,
                             struct srv_httpd **out, char *detail, size_t n)
{
    struct srv_httpd *h = xcalloc(1, sizeof(*h));
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    struct srv_token_list tokens = {0};
    enum rc_code rc;
    char why[400];

    *out = NULL;
    h->reg = reg;
    reg_set_event_hook(reg, api_recent_event); /* GET /status's recent changes */
    api_watch_start();
    h->max_body = opt->max_body;
    h->insync_timeout_ms = opt->insync_timeout_ms ? opt->insync_timeout_ms : 120000;
    atomic_init(&h->stopping, 0);
    atomic_init(&h->in_flight, 0);
    atomic_init(&h->parked, 0);
    pthread_mutex_init(&h->parked_lock, NULL);
    pthread_mutex_init(&h->reload_lock, NULL);
    atomic_init(&h->next_id, 1);
    if (RAND_bytes((unsigned char *)&h->id_salt, sizeof(h->id_salt)) != 1)
        h->id_salt = (unsigned long long)time(NULL) ^ (unsigned long long)getpid();

    /* Tokens: bare (admin, token-<n>), scoped, then the file's. */
    h->auth = srv_auth_create();
    for (size_t i = 0; i < opt->ntokens; i++) {
        struct srv_token t;
        memset(&t, 0, sizeof(t));
        snprintf(t.name, sizeof(t.name), "token-%zu", h->static_tokens.n + 1);
        t.scope = SRV_SCOPE_ADMIN;
        t.secret = opt->tokens[i];
        srv_tokens_add_copy(&h->static_tokens, &t);
    }
    for (size_t i = 0; i < opt->nscoped_tokens; i++)
        srv_tokens_add_copy(&h->static_tokens, &opt->scoped_tokens[i]);
    h->token_file = opt->token_file ? xstrdup(opt->token_file) : NULL;
    rc = build_tokens(h, &tokens, detail, n);
    if (rc)
        goto fail;
    srv_auth_set(h->auth, &tokens);
    srv_tokens_release(&tokens);
    if (opt->fleet) {
        h->fleet = opt->fleet;
        h->peer_auth = srv_auth_create();
        if (opt->peer_token) {
            struct srv_token t;
            memset(&t, 0, sizeof(t));
            snprintf(t.name, sizeof(t.name), "fleet");
            t.secret = (char *)opt->peer_token;
            srv_tokens_add_copy(&tokens, &t);
            srv_auth_set(h->peer_auth, &tokens);
            srv_tokens_release(&tokens);
        }
    }

    rc = cidr_set_parse(&h->trusted, opt->trusted_proxies, why, sizeof(why));
    if (rc) {
        snprintf(detail, n, "--trusted-proxy: %s", why);
        goto fail;
    }
    rc = cidr_set_parse(&h->allow, opt->allow_cidr, why, sizeof(why));
    if (rc) {
        snprintf(detail, n, "--allow-cidr: %s", why);
        goto fail;
    }
    h->allow_special = opt->allow_special;
    if (opt->client_rps) {
        h->client_rps = opt->client_rps;
        h->client_burst = opt->client_burst ? opt->client_burst : 2 * opt->client_rps;
        h->rl = srv_ratelimit_create((double)h->client_rps, (double)h->client_burst);
    }
    if (opt->tls_cert || opt->tls_key) {
        if (!opt->tls_cert || !opt->tls_key) {
            snprintf(detail, n, "--tls-cert and --tls-key go together");
            rc = RC_CONFIG;
            goto fail;
        }
        rc = srv_tls_create(opt->tls_cert, opt->tls_key, &h->tls, detail, n);
        if (rc)
            goto fail;
        flags |= MHD_USE_TLS;
    }

    if (opt->addr->sa_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    metrics_attach(h);
    /* The TLS options come last: without TLS the first of them is MHD_OPTION_END, so
     * libmicrohttpd stops reading there and never sees them. */
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, opt->addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(opt->threads > 1 ? opt->threads : 0),
        MHD_OPTION_CONNECTION_LIMIT, opt->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, opt->max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, opt->client_timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        opt->connection_memory ? opt->connection_memory : (size_t)8192,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL, MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
        h->tls ? MHD_OPTION_HTTPS_CERT_CALLBACK : MHD_OPTION_END, srv_tls_retrieve,
        MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
        MHD_OPTION_END);
    if (!h->daemon) {
        metrics_detach();
        snprintf(detail, n, "cannot start the HTTP server (address in use or not available?)");
        rc = RC_IO;
        goto fail;
    }
    if (h->tls) {
        srv_tls_describe(h->tls, why, sizeof(why));
        log_info("msg=tls %s", why);
    }
    *out = h;
    return RC_OK;
fail:
    free_httpd(h);
    return rc;
}

enum rc_code srv_httpd_reload(struct srv_httpd *h, char *detail, size_t n)
{
    enum rc_code rc = RC_OK, r;
    char why[400], q[480];

    pthread_mutex_lock(&h->reload_lock);
    if (h->token_file) {
        struct srv_token_list l;
        size_t before = srv_auth_count(h->auth);
        r = build_tokens(h, &l, why, sizeof(why));
        if (!r && l.n == 0 && before > 0) {
            snprintf(why, sizeof(why), "--token-file %s now holds no token: that would turn "
                     "authentication off", h->token_file);
            srv_tokens_release(&l);
            r = RC_CONFIG;
        }
        if (r) {
            log_error("msg=\"reload: keeping the tokens in use\" tokens=%zu detail=%s", before,
                      log_quote(why, q, sizeof(q)));
            rc = r;
            snprintf(detail, n, "%s", why);
        } else {
            char names[400];
            size_t off = 0;
            names[0] = '\0';
            for (size_t i = 0; i < l.n && off + SRV_TOKEN_NAME_MAX + 8 < sizeof(names); i++)
                off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s:%s",
                                        i ? "," : "", l.v[i].name,
                                        srv_scope_name(l.v[i].scope));
            srv_auth_set(h->auth, &l);
            log_info("msg=\"reload: tokens replaced\" tokens=%zu names=%s", l.n,
                     log_quote(names, q, sizeof(q)));
            srv_tokens_release(&l);
        }
    }
    if (h->tls) {
        int changed = 0;
        r = srv_tls_reload(h->tls, &changed, why, sizeof(why));
        if (r) {
            log_error("msg=\"reload: keeping the TLS certificate in use\" detail=%s",
                      log_quote(why, q, sizeof(q)));
            if (!rc) {
                rc = r;
                snprintf(detail, n, "%s", why);
            }
        } else {
            srv_tls_describe(h->tls, why, sizeof(why));
            log_info("msg=\"reload: TLS certificate %s\" %s", changed ? "replaced" : "unchanged",
                     why);
        }
    }
    pthread_mutex_unlock(&h->reload_lock);
    return rc;
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
    /*
     * From now on every new request is answered 503 shutting-down at once (a load balancer
     * or client retries elsewhere). The listening socket stays open until MHD_stop_daemon:
     * MHD_quiesce_daemon hands it back while the workers still remove it from their epoll
     * sets, and neither closing it (ThreadSanitizer: a race with that epoll_ctl) nor shutting
     * it down (MHD panics: "Failed to remove listen FD from epoll set") is safe before
     * MHD_stop_daemon (microhttpd.h says as much); left listening but not accepted,
     * connections would hang in the backlog instead.
     */
    atomic_store(&h->stopping, 1);
    api_watch_shutdown(); /* watches answer now, with what is current */
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
    metrics_detach();
    free_httpd(h);
}
