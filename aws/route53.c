/*
 * route53.c: the Route 53 client (contract: route53.h).
 *
 * Structure: the four API calls build a `struct req` (method, path, query, body) and hand it
 * to perform_call(), which owns the attempt loop: rate limiter -> credentials -> SigV4 ->
 * libcurl -> classify -> retry decision. Each API call then parses the 2xx body with
 * route53_xml.c.
 *
 * Invariants:
 * - Every attempt is signed fresh (new x-amz-date, credentials fetched again).
 * - The Host header sent is exactly the host that was signed (c->host), set explicitly so
 *   libcurl's own choice (port elision) cannot differ.
 * - Response bodies and headers are capped (R53XML_MAX_INPUT, HEADER_CAP); a bigger reply is
 *   a bad response, never a larger allocation.
 * - Secrets (secret key, session token, the Authorization value) live only in heap buffers
 *   that are wiped before release, and never reach a log or an error text.
 * - err (struct r53_error) always describes the last attempt; attempts/ambiguous accumulate.
 *
 * Threading: the client is shared. Easy handles come from a small pool guarded by pool_lock
 * (one handle is used by one thread at a time; keep-alive connections live in the handles);
 * the rate limiter and retry quota are thread-safe objects; counters are relaxed atomics.
 * Static credentials and options are read-only after create.
 */
#include "aws/route53.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "aws/retry.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/rc.h"
#include "util/xalloc.h"

#define POOL_MAX 8
#define HEADER_CAP (64 * 1024)
#define ID_MAX 128

/* --- small helpers ------------------------------------------------------------------------ */

static char *dup_secret(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void free_secret(char *s)
{
    if (s)
        xfree_secret(s, strlen(s));
}

/* --- the client --------------------------------------------------------------------------- */

struct r53_client {
    /* read-only after create */
    char *base_url; /* "scheme://authority" */
    char *host;     /* authority, lowercased: the Host header and the signed host */
    char *region, *service, *user_agent, *ca_file;
    struct awscred_provider *provider;
    char *akid, *secret, *token; /* static credentials (wiped on destroy) */
    long connect_timeout_ms, timeout_ms, call_timeout_ms;
    size_t list_max_per_name;
    struct ratelimit *rl;
    int own_rl;
    struct awsretry *retry;

    pthread_mutex_t pool_lock;
    CURL *pool[POOL_MAX]; /* guarded by pool_lock */
    size_t npool;         /* guarded by pool_lock */

    /* counters (relaxed atomics) */
    atomic_uint_fast64_t calls[R53_CALL__COUNT][R53_OUTCOME__COUNT];
    atomic_uint_fast64_t attempts, retries, throttles, transport_errors, timeouts, ratelimit_waits,
        ratelimit_wait_ms, retry_wait_ms, changes;
};

static void count(atomic_uint_fast64_t *a, uint64_t n)
{
    atomic_fetch_add_explicit(a, n, memory_order_relaxed);
}

/* Parse "scheme://authority[/]" into base URL and host. */
static int parse_endpoint(const char *ep, char **base, char **host)
{
    const char *auth, *end;
    size_t alen, i;

    if (strncasecmp(ep, "https://", 8) == 0)
        auth = ep + 8;
    else if (strncasecmp(ep, "http://", 7) == 0)
        auth = ep + 7;
    else
        return -1;
    end = auth + strcspn(auth, "/?#");
    if (*end == '?' || *end == '#' || (*end == '/' && end[1] != '\0'))
        return -1; /* no path, query or fragment */
    alen = (size_t)(end - auth);
    if (alen == 0 || memchr(auth, '@', alen))
        return -1;
    for (i = 0; i < alen; i++) {
        unsigned char ch = (unsigned char)auth[i];
        if (!(isalnum(ch) || ch == '.' || ch == '-' || ch == ':' || ch == '[' || ch == ']' ||
              ch == '_'))
            return -1;
    }
    *host = xstrndup(auth, alen);
    for (i = 0; i < alen; i++)
        (*host)[i] = (char)tolower((unsigned char)(*host)[i]);
    *base = xstrndup(ep, (size_t)(end - ep));
    return 0;
}

enum rc_code r53_client_create(const struct r53_client_options *opt, struct r53_client **out,
                               char *detail, size_t detail_len)
{
    struct r53_client *c = NULL;
    struct awsretry_options ro;
    struct ratelimit_options rlo;
    const char *ep;
    enum rc_code rc = RC_CONFIG;
    int curl_inited = 0;

    *out = NULL;
    if (!opt) {
        rc_detail(detail, detail_len, "route53: no options");
        goto out;
    }
    if (!opt->provider &&
        (!opt->static_creds || !opt->static_creds->access_key_id ||
         !*opt->static_creds->access_key_id || !opt->static_creds->secret_access_key ||
         !*opt->static_creds->secret_access_key)) {
        rc_detail(detail, detail_len,
                  "route53: no credentials (need a provider or static key id and secret)");
        goto out;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        rc_detail(detail, detail_len, "route53: curl_global_init failed");
        rc = RC_INTERNAL;
        goto out;
    }
    curl_inited = 1;
    c = xcalloc(1, sizeof(*c));
    ep = opt->endpoint ? opt->endpoint : R53_DEFAULT_ENDPOINT;
    if (parse_endpoint(ep, &c->base_url, &c->host)) {
        rc_detail(detail, detail_len,
                  "route53: endpoint must be http(s)://host[:port] without a path");
        goto out;
    }
    c->region = xstrdup(opt->region ? opt->region : R53_DEFAULT_REGION);
    c->service = xstrdup(opt->service ? opt->service : R53_DEFAULT_SERVICE);
    c->user_agent = xstrdup(opt->user_agent ? opt->user_agent : "r53reg/" R53REG_VERSION);
    c->ca_file = opt->ca_file ? xstrdup(opt->ca_file) : NULL;
    c->provider = opt->provider;
    if (!c->provider) {
        c->akid = xstrdup(opt->static_creds->access_key_id);
        c->secret = dup_secret(opt->static_creds->secret_access_key);
        c->token = opt->static_creds->session_token && *opt->static_creds->session_token
                       ? dup_secret(opt->static_creds->session_token)
                       : NULL;
    }
    c->connect_timeout_ms =
        opt->connect_timeout_ms ? (long)opt->connect_timeout_ms : R53_DEFAULT_CONNECT_TIMEOUT_MS;
    c->timeout_ms = opt->timeout_ms ? (long)opt->timeout_ms : R53_DEFAULT_TIMEOUT_MS;
    c->call_timeout_ms =
        opt->call_timeout_ms ? (long)opt->call_timeout_ms : R53_DEFAULT_CALL_TIMEOUT_MS;
    c->list_max_per_name =
        opt->list_max_per_name ? opt->list_max_per_name : R53_DEFAULT_LIST_MAX_PER_NAME;
    if (opt->ratelimit) {
        c->rl = opt->ratelimit;
    } else {
        memset(&rlo, 0, sizeof(rlo));
        rlo.rate = opt->rps == 0 ? R53_DEFAULT_RPS : opt->rps;
        rlo.burst = opt->burst == 0 ? R53_DEFAULT_RPS : opt->burst;
        rlo.change_rate = opt->change_rps;
        rlo.change_burst = opt->change_burst;
        c->rl = ratelimit_create(&rlo);
        c->own_rl = 1;
    }
    memset(&ro, 0, sizeof(ro));
    ro.max_attempts = opt->max_attempts ? opt->max_attempts : R53_DEFAULT_MAX_ATTEMPTS;
    ro.base_ms = opt->retry_base_ms;
    ro.throttle_base_ms = opt->retry_throttle_base_ms;
    ro.max_backoff_ms = opt->retry_max_backoff_ms;
    ro.disable_quota = opt->disable_retry_quota;
    c->retry = awsretry_create(&ro);
    pthread_mutex_init(&c->pool_lock, NULL);
    *out = c;
    c = NULL;
    curl_inited = 0;
    rc = RC_OK;
out:
    if (c) {
        free(c->base_url);
        free(c->host);
        free(c->region);
        free(c->service);
        free(c->user_agent);
        free(c->ca_file);
        free(c);
    }
    if (curl_inited)
        curl_global_cleanup();
    return rc;
}

void r53_client_destroy(struct r53_client *c)
{
    size_t i;

    if (!c)
        return;
    for (i = 0; i < c->npool; i++)
        curl_easy_cleanup(c->pool[i]);
    pthread_mutex_destroy(&c->pool_lock);
    if (c->own_rl)
        ratelimit_destroy(c->rl);
    awsretry_destroy(c->retry);
    free(c->base_url);
    free(c->host);
    free(c->region);
    free(c->service);
    free(c->user_agent);
    free(c->ca_file);
    free(c->akid);
    free_secret(c->secret);
    free_secret(c->token);
    free(c);
    curl_global_cleanup();
}

static CURL *handle_get(struct r53_client *c)
{
    CURL *h = NULL;

    pthread_mutex_lock(&c->pool_lock);
    if (c->npool > 0)
        h = c->pool[--c->npool];
    pthread_mutex_unlock(&c->pool_lock);
    return h ? h : curl_easy_init();
}

static void handle_put(struct r53_client *c, CURL *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&c->pool_lock);
    if (c->npool < POOL_MAX) {
        c->pool[c->npool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->pool_lock);
    if (h)
        curl_easy_cleanup(h);
}

/* --- one HTTP exchange -------------------------------------------------------------------- */

struct resp {
    struct buf body;
    int toobig;
    size_t header_bytes;
    char request_id[128];
    long retry_after_ms; /* x-amz-retry-after; -1: none */
};

/* "x-amz-retry-after: <ms>" (digits only, at most an hour): the value, else -1. */
static long parse_retry_after(const char *v, size_t n)
{
    long ms = 0;
    size_t i = 0;

    while (i < n && (v[i] == ' ' || v[i] == '\t'))
        i++;
    if (i == n)
        return -1;
    for (; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
        ms = ms * 10 + (v[i] - '0');
        if (ms > 3600000)
            return -1;
    }
    while (i < n && (v[i] == '\r' || v[i] == '\n' || v[i] == ' ' || v[i] == '\t'))
        i++;
    return i == n ? ms : -1;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct resp *r = arg;
    size_t n = size * nmemb;

    if (r->body.len + n > R53XML_MAX_INPUT) {
        r->toobig = 1;
        return 0;
    }
    buf_add(&r->body, ptr, n);
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *arg)
{
    static const char *const names[] = {"x-amzn-requestid:", "x-amz-request-id:"};
    struct resp *r = arg;
    size_t n = size * nmemb, i, l, vlen;
    const char *v;

    r->header_bytes += n;
    if (r->header_bytes > HEADER_CAP)
        return 0;
    l = sizeof("x-amz-retry-after:") - 1;
    if (n > l && strncasecmp(ptr, "x-amz-retry-after:", l) == 0)
        r->retry_after_ms = parse_retry_after(ptr + l, n - l);
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        l = strlen(names[i]);
        if (n > l && strncasecmp(ptr, names[i], l) == 0) {
            v = ptr + l;
            vlen = n - l;
            while (vlen && (*v == ' ' || *v == '\t')) {
                v++;
                vlen--;
            }
            while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
                vlen--;
            if (vlen >= sizeof(r->request_id))
                vlen = sizeof(r->request_id) - 1;
            memcpy(r->request_id, v, vlen);
            r->request_id[vlen] = '\0';
        }
    }
    return n;
}

struct req {
    enum r53_call_kind kind;
    unsigned changes;   /* Change elements (ChangeResourceRecordSets) */
    const char *method; /* "GET" or "POST" */
    char path[256];     /* decoded == wire: only unreserved characters and '/' */
    char *query;        /* encoded, without '?', or NULL */
    const char *body;   /* POST only */
    size_t body_len;
};

/* curl failures that another attempt cannot fix. */
static int curl_permanent(CURLcode cc)
{
    switch (cc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FUNCTION_NOT_FOUND:
    case CURLE_UNKNOWN_OPTION: return 1;
    default: return 0;
    }
}

struct creds {
    char *akid, *secret, *token; /* secret and token wiped on release */
};

static void creds_release(struct creds *cr)
{
    free(cr->akid);
    free_secret(cr->secret);
    free_secret(cr->token);
    memset(cr, 0, sizeof(*cr));
}

static enum rc_code creds_get(struct r53_client *c, struct creds *cr, char *detail, size_t n)
{
    struct awscred ac;
    enum rc_code rc;

    memset(cr, 0, sizeof(*cr));
    if (!c->provider) {
        cr->akid = xstrdup(c->akid);
        cr->secret = dup_secret(c->secret);
        cr->token = dup_secret(c->token);
        return RC_OK;
    }
    memset(&ac, 0, sizeof(ac));
    rc = awscred_get(c->provider, &ac, detail, n);
    if (rc == RC_OK) {
        if (!ac.access_key_id || !ac.secret_access_key) {
            rc_detail(detail, n, "credential provider returned an incomplete key");
            rc = RC_UNAVAILABLE;
        } else {
            cr->akid = xstrdup(ac.access_key_id);
            cr->secret = dup_secret(ac.secret_access_key);
            cr->token = ac.session_token && *ac.session_token ? dup_secret(ac.session_token) : NULL;
        }
    }
    awscred_release(&ac);
    return rc;
}

/* Append "<name><value>" to *list. The line may hold a secret (token, signature): the copy
 * is wiped; curl_slist_free_all frees libcurl's own copy. */
static void add_header(struct curl_slist **list, const char *name, const char *value)
{
    size_t ln = strlen(name), lv = strlen(value);
    char *line = xmalloc(ln + lv + 1);
    struct curl_slist *l;

    memcpy(line, name, ln);
    memcpy(line + ln, value, lv + 1);
    l = curl_slist_append(*list, line);
    xfree_secret(line, ln + lv + 1);
    if (!l)
        abort(); /* curl_slist_append fails only when malloc does (xmalloc's policy) */
    *list = l;
}

/* Set err for a local failure (nothing was sent). */
static void local_error(struct r53_error *err, enum r53_errcode kind, const char *text)
{
    err->kind = kind;
    snprintf(err->transport, sizeof(err->transport), "%s", text);
}

/* Set err for a bad response whose explanation may be longer than err->transport: the text
 * goes to err->message. */
static void bad_response(struct r53_error *err, const char *text)
{
    err->kind = R53_E_BAD_RESPONSE;
    err->transport[0] = '\0';
    free(err->message);
    err->message = xstrdup(text);
}

enum attempt_result { ATTEMPT_OK, ATTEMPT_RETRYABLE, ATTEMPT_FATAL };

/*
 * One attempt: sign and send req, fill body (2xx) or err. The caller has taken a rate-limit
 * token. timeout_ms bounds the attempt.
 */
static enum attempt_result attempt(struct r53_client *c, CURL *h, const struct req *rq,
                                   long timeout_ms, struct resp *rs, struct r53_error *err)
{
    struct sigv4_header sh[3];
    struct sigv4_request sr;
    struct sigv4_scope scope;
    struct creds cr = {0};
    struct curl_slist *hdrs = NULL;
    struct buf url = {0};
    char amz_date[17], detail[256] = "", errbuf[CURL_ERROR_SIZE] = "";
    char *authz = NULL;
    enum attempt_result ar = ATTEMPT_FATAL;
    CURLcode cc;
    long status = 0, reqsize = 0;
    size_t nh = 0;
    enum rc_code rc;

    if (creds_get(c, &cr, detail, sizeof(detail)) != RC_OK) {
        local_error(err, R53_E_CREDENTIALS, detail[0] ? detail : "no credentials");
        goto out;
    }
    sigv4_amz_date((long long)time(NULL), amz_date);
    sh[nh++] = (struct sigv4_header){"host", c->host};
    sh[nh++] = (struct sigv4_header){"x-amz-date", amz_date};
    if (cr.token)
        sh[nh++] = (struct sigv4_header){"x-amz-security-token", cr.token};
    sr = (struct sigv4_request){.method = rq->method,
                                .path = rq->path,
                                .query = rq->query,
                                .headers = sh,
                                .nheaders = nh,
                                .body = rq->body,
                                .body_len = rq->body_len};
    scope = (struct sigv4_scope){amz_date, c->region, c->service};
    rc = sigv4_authorization(&sr, &scope, &(struct sigv4_creds){cr.akid, cr.secret, cr.token},
                             &authz);
    if (rc != RC_OK) {
        local_error(err, R53_E_INVALID_ARGUMENT, "request could not be signed");
        goto out;
    }

    add_header(&hdrs, "Host: ", c->host);
    add_header(&hdrs, "X-Amz-Date: ", amz_date);
    if (cr.token)
        add_header(&hdrs, "X-Amz-Security-Token: ", cr.token);
    add_header(&hdrs, "Authorization: ", authz);
    if (rq->body)
        add_header(&hdrs, "Content-Type: ", "text/xml");
    add_header(&hdrs, "Expect:", "");

    buf_adds(&url, c->base_url);
    buf_adds(&url, rq->path);
    if (rq->query && *rq->query) {
        buf_adds(&url, "?");
        buf_adds(&url, rq->query);
    }

    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url.p);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     c->connect_timeout_ms < timeout_ms ? c->connect_timeout_ms : timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, rs);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, rs);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (c->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    if (strcmp(rq->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }

    cc = curl_easy_perform(h);
    count(&c->attempts, 1);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &reqsize);
    /* don't let the handle keep pointers into this frame */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);

    if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && rs->toobig)) {
        count(&c->transport_errors, 1);
        err->kind = cc == CURLE_OPERATION_TIMEDOUT ? R53_E_TIMEOUT : R53_E_TRANSPORT;
        err->timeout = cc == CURLE_OPERATION_TIMEDOUT;
        if (err->timeout)
            count(&c->timeouts, 1);
        snprintf(err->transport, sizeof(err->transport), "curl %d: %.200s", (int)cc,
                 errbuf[0] ? errbuf : curl_easy_strerror(cc));
        if (reqsize > 0 && rq->body)
            err->ambiguous = 1;
        ar = curl_permanent(cc) ? ATTEMPT_FATAL : ATTEMPT_RETRYABLE;
        goto out;
    }
    err->http_status = (int)status;
    if (rs->toobig) {
        err->kind = R53_E_BAD_RESPONSE;
        snprintf(err->transport, sizeof(err->transport), "response body larger than %u bytes",
                 R53XML_MAX_INPUT);
        goto out;
    }
    if (status >= 200 && status < 300) {
        ar = ATTEMPT_OK;
        goto out;
    }
    if (r53xml_parse_error(rs->body.p, rs->body.len, err) != RC_OK)
        err->kind = R53_E_HTTP;
    if (!err->request_id && rs->request_id[0])
        err->request_id = xstrdup(rs->request_id);
    if (status >= 500 && rq->body)
        err->ambiguous = 1;
    if (r53xml_error_is_throttle(err)) {
        count(&c->throttles, 1);
        ratelimit_throttled(c->rl);
    }
    ar = r53xml_error_retryable(err) ? ATTEMPT_RETRYABLE : ATTEMPT_FATAL;
out:
    curl_slist_free_all(hdrs); /* holds the signature and token */
    buf_release(&url);
    if (authz)
        xfree_secret(authz, strlen(authz));
    creds_release(&cr);
    return ar;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

static enum r53_outcome outcome_of(enum rc_code rc, const struct r53_error *err)
{
    switch (rc) {
    case RC_OK: return R53_OUTCOME_OK;
    case RC_CONFLICT: return R53_OUTCOME_CONFLICT;
    case RC_UPSTREAM_TIMEOUT: return R53_OUTCOME_TIMEOUT;
    case RC_UNAVAILABLE:
        return r53xml_error_is_throttle(err) ? R53_OUTCOME_THROTTLED : R53_OUTCOME_UNAVAILABLE;
    default: return R53_OUTCOME_ERROR;
    }
}

static const char *const call_names[R53_CALL__COUNT] = {"change_rrsets", "list_rrsets",
                                                        "get_change", "get_hosted_zone"};

/* The backoff a retryable failure gets: throttling and PriorRequestNotComplete the long one. */
static enum awsretry_kind retry_kind(const struct r53_error *err)
{
    if (r53xml_error_is_throttle(err) || err->kind == R53_E_PRIOR_REQUEST_NOT_COMPLETE)
        return AWSRETRY_THROTTLE;
    if (err->kind == R53_E_TIMEOUT || err->kind == R53_E_TRANSPORT)
        return AWSRETRY_TIMEOUT;
    return AWSRETRY_ERROR;
}

/* Reset err for a new attempt, keeping what accumulates over a call. */
static void error_reset_attempt(struct r53_error *err)
{
    unsigned attempts = err->attempts;
    int ambiguous = err->ambiguous;

    r53xml_error_release(err);
    err->attempts = attempts;
    err->ambiguous = ambiguous;
}

/*
 * The attempt loop. On RC_OK, body holds the 2xx reply and err is R53_E_NONE; otherwise err
 * describes the failure and the returned code is r53_error_rc(err).
 */
static enum rc_code perform_call(struct r53_client *c, const struct req *rq, struct buf *body,
                                 struct r53_error *err)
{
    struct awsretry_call rcall;
    struct resp rs;
    int64_t start = ratelimit_now_ns(), deadline, now, waited;
    long remaining, tmo;
    unsigned delay;
    enum attempt_result ar;
    char code_q[80], msg_q[160];
    CURL *h = NULL;

    r53xml_error_release(err);
    deadline = start + (int64_t)c->call_timeout_ms * 1000000;
    awsretry_call_begin(c->retry, &rcall);
    memset(&rs, 0, sizeof(rs));
    rs.retry_after_ms = -1;
    for (;;) {
        /* On a retry that cannot start (no token or no time left before the call deadline),
         * err keeps describing the last attempt: that is the failure the caller sees. */
        if (ratelimit_acquire(c->rl,
                              rq->kind == R53_CALL_CHANGE_RRSETS ? RATELIMIT_WRITE : RATELIMIT_READ,
                              rq->changes, deadline, &waited) != RC_OK) {
            if (!err->attempts)
                local_error(err, R53_E_RATELIMIT,
                            "rate limiter: no token before the call deadline");
            break;
        }
        if (waited > 0) {
            count(&c->ratelimit_waits, 1);
            count(&c->ratelimit_wait_ms, (uint64_t)(waited / 1000000));
        }
        now = ratelimit_now_ns();
        remaining = (long)((deadline - now) / 1000000);
        if (remaining <= 0) {
            if (!err->attempts) {
                local_error(err, R53_E_TIMEOUT, "call deadline passed before the attempt");
                err->timeout = 1;
            }
            break;
        }
        error_reset_attempt(err);
        buf_release(&rs.body);
        memset(&rs, 0, sizeof(rs));
        rs.retry_after_ms = -1;
        tmo = c->timeout_ms < remaining ? c->timeout_ms : remaining;
        if (!h && !(h = handle_get(c))) {
            local_error(err, R53_E_TRANSPORT, "curl_easy_init failed");
            break;
        }
        if (err->attempts > 0)
            count(&c->retries, 1);
        count(&c->changes, rq->changes);
        err->attempts++;
        ar = attempt(c, h, rq, tmo, &rs, err);
        if (ar == ATTEMPT_OK) {
            awsretry_on_done(c->retry, &rcall, 1);
            err->kind = R53_E_NONE;
            break;
        }
        if (ar == ATTEMPT_FATAL) {
            awsretry_on_done(c->retry, &rcall, 0);
            break;
        }
        if (!awsretry_on_failure(c->retry, &rcall, retry_kind(err), rs.retry_after_ms, &delay))
            break;
        now = ratelimit_now_ns();
        if (now + (int64_t)delay * 1000000 >= deadline)
            break;
        if (log_enabled(LOG_INFO)) {
            log_info("event=r53_retry op=%s attempt=%u kind=%s http=%d code=%s message=%s "
                     "retry_after_ms=%ld delay_ms=%u",
                     call_names[rq->kind], err->attempts, r53xml_errcode_name(err->kind),
                     err->http_status,
                     log_quote(err->code ? err->code : "", code_q, sizeof(code_q)),
                     log_quote(err->message ? err->message : err->transport, msg_q, sizeof(msg_q)),
                     rs.retry_after_ms, delay);
        }
        count(&c->retry_wait_ms, delay);
        if (delay)
            sleep_ms(delay);
    }
    handle_put(c, h);
    if (err->kind == R53_E_NONE) {
        *body = rs.body;
        return RC_OK;
    }
    buf_release(&rs.body);
    return r53_error_rc(err);
}

enum rc_code r53_error_rc(const struct r53_error *err)
{
    if (!err || err->kind == R53_E_NONE)
        return RC_OK;
    if (r53xml_error_is_cas_conflict(err))
        return RC_CONFLICT;
    if (err->kind == R53_E_TIMEOUT || err->timeout)
        return RC_UPSTREAM_TIMEOUT;
    switch (err->kind) {
    case R53_E_THROTTLING:
    case R53_E_PRIOR_REQUEST_NOT_COMPLETE:
    case R53_E_REQUEST_TIMEOUT:
    case R53_E_SERVICE:
    case R53_E_TRANSPORT:
    case R53_E_CREDENTIALS:
    case R53_E_RATELIMIT: return RC_UNAVAILABLE;
    case R53_E_INVALID_ARGUMENT: return RC_BAD_REQUEST;
    case R53_E_HTTP:
    case R53_E_OTHER: return r53xml_error_retryable(err) ? RC_UNAVAILABLE : RC_UPSTREAM;
    default: return RC_UPSTREAM;
    }
}

/* Finish a call: count its outcome, return rc. */
static enum rc_code finish(struct r53_client *c, enum r53_call_kind kind, enum rc_code rc,
                           const struct r53_error *err)
{
    count(&c->calls[kind][outcome_of(rc, err)], 1);
    return rc;
}

static enum rc_code invalid(struct r53_client *c, enum r53_call_kind kind, struct r53_error *err,
                            const char *why)
{
    r53xml_error_release(err);
    local_error(err, R53_E_INVALID_ARGUMENT, why);
    return finish(c, kind, RC_BAD_REQUEST, err);
}

/* A zone or change id without prefix: [A-Za-z0-9_-]{1,ID_MAX}. 0 when valid. */
static int check_id(const char *id)
{
    size_t i, n;

    if (!id || !*id)
        return -1;
    n = strlen(id);
    if (n > ID_MAX)
        return -1;
    for (i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]) && id[i] != '_' && id[i] != '-')
            return -1;
    return 0;
}

/* Percent-encode everything but unreserved characters. */
static void add_qparam(struct buf *q, const char *name, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)value;
    char esc[3];

    if (q->len)
        buf_adds(q, "&");
    buf_adds(q, name);
    buf_adds(q, "=");
    for (; *s; s++) {
        if (isalnum(*s) || *s == '-' || *s == '_' || *s == '.' || *s == '~') {
            buf_add(q, s, 1);
        } else {
            esc[0] = '%';
            esc[1] = hex[*s >> 4];
            esc[2] = hex[*s & 15];
            buf_add(q, esc, 3);
        }
    }
}

/* --- the calls ---------------------------------------------------------------------------- */

enum rc_code r53_change_rrsets(struct r53_client *c, const char *zone_id,
                               const struct r53_change *changes, size_t n, const char *comment,
                               struct r53_change_info *out, struct r53_error *err)
{
    struct r53_error local;
    struct r53_error *e = err ? err : &local;
    struct r53_batch_size size;
    struct req rq = {.kind = R53_CALL_CHANGE_RRSETS, .method = "POST"};
    struct buf body = {0};
    char *xml = NULL, detail[256] = "";
    size_t xml_len = 0;
    const char *id = r53xml_strip_id_prefix(zone_id);
    enum rc_code rc;

    r53xml_error_init(&local);
    memset(out, 0, sizeof(*out));
    if (check_id(id)) {
        rc = invalid(c, rq.kind, e, "invalid hosted zone id");
        goto out;
    }
    r53xml_batch_size(changes, changes ? n : 0, &size);
    if (!r53xml_batch_size_fits(&size)) {
        snprintf(detail, sizeof(detail),
                 "batch of %zu ResourceRecord elements / %zu value characters exceeds Route "
                 "53's %d / %d",
                 size.elements, size.value_chars, R53_BATCH_MAX_ELEMENTS,
                 R53_BATCH_MAX_VALUE_CHARS);
        rc = invalid(c, rq.kind, e, detail);
        goto out;
    }
    if (r53xml_build_change_batch(changes, n, comment, &xml, &xml_len, detail, sizeof(detail)) !=
        RC_OK) {
        rc = invalid(c, rq.kind, e, detail);
        goto out;
    }
    snprintf(rq.path, sizeof(rq.path), "/2013-04-01/hostedzone/%s/rrset/", id);
    rq.body = xml;
    rq.body_len = xml_len;
    rq.changes = (unsigned)n;
    rc = perform_call(c, &rq, &body, e);
    if (rc == RC_OK &&
        r53xml_parse_change_info(body.p, body.len, out, detail, sizeof(detail)) != RC_OK) {
        local_error(e, R53_E_BAD_RESPONSE, detail);
        rc = RC_UPSTREAM;
    }
    rc = finish(c, rq.kind, rc, e);
out:
    buf_release(&body);
    free(xml);
    r53xml_error_release(&local);
    return rc;
}

enum rc_code r53_list_rrsets(struct r53_client *c, const char *zone_id, const char *start_name,
                             const char *start_type, const char *start_identifier,
                             unsigned maxitems, struct r53_rrset_page *out, struct r53_error *err)
{
    struct r53_error local;
    struct r53_error *e = err ? err : &local;
    struct req rq = {.kind = R53_CALL_LIST_RRSETS, .method = "GET"};
    struct buf body = {0}, q = {0};
    char detail[256] = "", num[16];
    const char *id = r53xml_strip_id_prefix(zone_id);
    enum rc_code rc;

    r53xml_error_init(&local);
    memset(out, 0, sizeof(*out));
    if (check_id(id)) {
        rc = invalid(c, rq.kind, e, "invalid hosted zone id");
        goto out;
    }
    if ((start_type && !start_name) || (start_identifier && (!start_name || !start_type))) {
        rc = invalid(c, rq.kind, e, "a start type needs a name, an identifier both");
        goto out;
    }
    if (start_name)
        add_qparam(&q, "name", start_name);
    if (start_type)
        add_qparam(&q, "type", start_type);
    if (start_identifier)
        add_qparam(&q, "identifier", start_identifier);
    if (maxitems) {
        snprintf(num, sizeof(num), "%u",
                 maxitems > R53_LIST_MAX_ITEMS ? R53_LIST_MAX_ITEMS : maxitems);
        add_qparam(&q, "maxitems", num);
    }
    snprintf(rq.path, sizeof(rq.path), "/2013-04-01/hostedzone/%s/rrset", id);
    rq.query = q.p;
    rc = perform_call(c, &rq, &body, e);
    if (rc == RC_OK &&
        r53xml_parse_list_rrsets(body.p, body.len, out, detail, sizeof(detail)) != RC_OK) {
        local_error(e, R53_E_BAD_RESPONSE, detail);
        rc = RC_UPSTREAM;
    }
    rc = finish(c, rq.kind, rc, e);
out:
    buf_release(&body);
    buf_release(&q);
    r53xml_error_release(&local);
    return rc;
}

/* Compare DNS names ignoring case and one trailing dot. */
static int name_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    if (la && a[la - 1] == '.')
        la--;
    if (lb && b[lb - 1] == '.')
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

void r53_describe_list_pos(char *out, size_t n, const char *name, const char *type, const char *id)
{
    snprintf(out, n, "name=%.260s%s%.16s%s%.140s", name ? name : "(start)", type ? " type=" : "",
             type ? type : "", id ? " identifier=" : "", id ? id : "");
}

int r53_page_advances(const struct r53_rrset_page *page, const char *sname, const char *stype,
                      const char *sid, char *why, size_t n)
{
    const char *pn = sname, *pt = stype, *pi = sid; /* the last position seen */
    char a[512], b[512];

    for (size_t i = 0; i < page->n; i++) {
        const struct r53_rrset *r = &page->rrsets[i];
        /* the first record may be the start itself; every later one must sort after */
        int c = r53xml_list_order_cmp(r->name, r->type, r->set_identifier, pn, pt, pi);
        if (c < 0 || (c == 0 && i > 0)) {
            r53_describe_list_pos(a, sizeof(a), r->name, r->type, r->set_identifier);
            r53_describe_list_pos(b, sizeof(b), pn, pt, pi);
            snprintf(why, n, "record %zu (%s) does not sort after %s", i + 1, a, b);
            return -1;
        }
        pn = r->name;
        pt = r->type;
        pi = r->set_identifier;
    }
    if (!page->is_truncated)
        return 0;
    if (!page->n || !page->next_name) {
        snprintf(why, n, "a truncated page holds no record or no next position");
        return -1;
    }
    if (!page->next_type && page->next_identifier) {
        snprintf(why, n, "NextRecordIdentifier without NextRecordType");
        return -1;
    }
    if (r53xml_list_order_cmp(page->next_name, page->next_type, page->next_identifier, pn, pt,
                              pi) <= 0) {
        r53_describe_list_pos(a, sizeof(a), page->next_name, page->next_type,
                              page->next_identifier);
        r53_describe_list_pos(b, sizeof(b), pn, pt, pi);
        snprintf(why, n, "the next position (%s) does not sort after its last record (%s)", a, b);
        return -1;
    }
    return 0;
}

/* Every record set of name (and type, unless NULL): r53_list_all_rrsets_for_name(_type). */
static enum rc_code list_all(struct r53_client *c, const char *zone_id, const char *name,
                             const char *type, struct r53_rrset_page *out, struct r53_error *err)
{
    struct r53_error local;
    struct r53_error *e = err ? err : &local;
    struct r53_rrset_page all = {0}, page = {0};
    char *wanted = NULL, *sname = NULL, *stype = NULL, *sid = NULL;
    char why[1200], at[512], msg[sizeof(why) + sizeof(at) + 128];
    size_t cap = 0, i, pages = 0;
    int done = 0;
    enum rc_code rc = RC_OK;

    r53xml_error_init(&local);
    memset(out, 0, sizeof(*out));
    if (!name || !*name) {
        rc = invalid(c, R53_CALL_LIST_RRSETS, e, "a name is required");
        goto out;
    }
    wanted = r53xml_decode_name(name);
    sname = xstrdup(name);
    stype = type ? xstrdup(type) : NULL;
    while (!done) {
        rc = r53_list_rrsets(c, zone_id, sname, stype, sid, R53_LIST_MAX_ITEMS, &page, e);
        if (rc != RC_OK)
            goto out;
        pages++;
        if (r53_page_advances(&page, sname, stype, sid, why, sizeof(why))) {
            /* A page out of order or a cycle would never end: stop, naming the page. */
            r53_describe_list_pos(at, sizeof(at), sname, stype, sid);
            snprintf(msg, sizeof(msg), "ListResourceRecordSets page %zu (%s) does not advance: %s",
                     pages, at, why);
            bad_response(e, msg);
            rc = RC_UPSTREAM;
            goto out;
        }
        for (i = 0; i < page.n && !done; i++) {
            if (!name_eq(page.rrsets[i].name, wanted) ||
                (type && strcmp(page.rrsets[i].type, type) != 0)) {
                done = 1; /* sorted past: everything after is other names or types */
                break;
            }
            if (all.n >= c->list_max_per_name) {
                snprintf(msg, sizeof(msg),
                         "more than %zu record sets under %s%s%s: listing stopped (Route 53 "
                         "allows 100 weighted sets per name and type)",
                         c->list_max_per_name, name, type ? " type " : "", type ? type : "");
                bad_response(e, msg);
                rc = RC_UPSTREAM;
                goto out;
            }
            all.rrsets = xgrow(all.rrsets, &cap, all.n + 1, sizeof(*all.rrsets));
            all.rrsets[all.n++] = page.rrsets[i];
            memset(&page.rrsets[i], 0, sizeof(page.rrsets[i])); /* moved */
        }
        if (!page.is_truncated || !name_eq(page.next_name, wanted) ||
            (type && (!page.next_type || strcmp(page.next_type, type) != 0)))
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
    *out = all;
    memset(&all, 0, sizeof(all));
out:
    r53xml_page_release(&page);
    r53xml_page_release(&all);
    free(wanted);
    free(sname);
    free(stype);
    free(sid);
    r53xml_error_release(&local);
    return rc;
}

enum rc_code r53_list_all_rrsets_for_name(struct r53_client *c, const char *zone_id,
                                          const char *name, struct r53_rrset_page *out,
                                          struct r53_error *err)
{
    return list_all(c, zone_id, name, NULL, out, err);
}

enum rc_code r53_list_all_rrsets_for_name_type(struct r53_client *c, const char *zone_id,
                                               const char *name, const char *type,
                                               struct r53_rrset_page *out, struct r53_error *err)
{
    if (!type || !*type) {
        struct r53_error local;
        enum rc_code rc;
        r53xml_error_init(&local);
        memset(out, 0, sizeof(*out));
        rc = invalid(c, R53_CALL_LIST_RRSETS, err ? err : &local, "a type is required");
        r53xml_error_release(&local);
        return rc;
    }
    return list_all(c, zone_id, name, type, out, err);
}

/* A GET of one resource by id: validate the id, call, parse the body with parse(). */
static enum rc_code get_by_id(struct r53_client *c, enum r53_call_kind kind, const char *what,
                              const char *prefix, const char *raw_id,
                              enum rc_code (*parse)(const char *, size_t, void *, char *, size_t),
                              void *out, size_t out_size, struct r53_error *err)
{
    struct r53_error local;
    struct r53_error *e = err ? err : &local;
    struct req rq = {.kind = kind, .method = "GET"};
    struct buf body = {0};
    char detail[256] = "";
    const char *id = r53xml_strip_id_prefix(raw_id);
    enum rc_code rc;

    r53xml_error_init(&local);
    memset(out, 0, out_size);
    if (check_id(id)) {
        rc = invalid(c, rq.kind, e, what);
        goto out;
    }
    snprintf(rq.path, sizeof(rq.path), "%s%s", prefix, id);
    rc = perform_call(c, &rq, &body, e);
    if (rc == RC_OK && parse(body.p, body.len, out, detail, sizeof(detail)) != RC_OK) {
        local_error(e, R53_E_BAD_RESPONSE, detail);
        rc = RC_UPSTREAM;
    }
    rc = finish(c, rq.kind, rc, e);
out:
    buf_release(&body);
    r53xml_error_release(&local);
    return rc;
}

static enum rc_code parse_change(const char *xml, size_t len, void *out, char *d, size_t n)
{
    return r53xml_parse_change_info(xml, len, out, d, n);
}

static enum rc_code parse_zone(const char *xml, size_t len, void *out, char *d, size_t n)
{
    return r53xml_parse_hosted_zone(xml, len, out, d, n);
}

enum rc_code r53_get_change(struct r53_client *c, const char *change_id,
                            struct r53_change_info *out, struct r53_error *err)
{
    return get_by_id(c, R53_CALL_GET_CHANGE, "invalid change id", "/2013-04-01/change/", change_id,
                     parse_change, out, sizeof(*out), err);
}

enum rc_code r53_get_hosted_zone(struct r53_client *c, const char *zone_id,
                                 struct r53_hosted_zone *out, struct r53_error *err)
{
    return get_by_id(c, R53_CALL_GET_HOSTED_ZONE, "invalid hosted zone id",
                     "/2013-04-01/hostedzone/", zone_id, parse_zone, out, sizeof(*out), err);
}

/* --- counters ------------------------------------------------------------------------------ */

const char *r53_call_kind_name(enum r53_call_kind kind)
{
    return (unsigned)kind < R53_CALL__COUNT ? call_names[kind] : "unknown";
}

const char *r53_outcome_name(enum r53_outcome outcome)
{
    static const char *const names[R53_OUTCOME__COUNT] = {"ok",          "conflict", "throttled",
                                                          "unavailable", "timeout",  "error"};

    return (unsigned)outcome < R53_OUTCOME__COUNT ? names[outcome] : "unknown";
}

static uint64_t load(atomic_uint_fast64_t *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

void r53_client_stats(struct r53_client *c, struct r53_client_stats *out)
{
    int k, o;

    memset(out, 0, sizeof(*out));
    for (k = 0; k < R53_CALL__COUNT; k++)
        for (o = 0; o < R53_OUTCOME__COUNT; o++)
            out->calls[k][o] = load(&c->calls[k][o]);
    out->attempts = load(&c->attempts);
    out->retries = load(&c->retries);
    out->throttles = load(&c->throttles);
    out->transport_errors = load(&c->transport_errors);
    out->timeouts = load(&c->timeouts);
    out->ratelimit_waits = load(&c->ratelimit_waits);
    out->ratelimit_wait_ms = load(&c->ratelimit_wait_ms);
    out->retry_wait_ms = load(&c->retry_wait_ms);
    out->retry_quota = awsretry_quota(c->retry);
    out->rate = ratelimit_rate(c->rl);
    out->change_rate = ratelimit_change_rate(c->rl);
    out->changes = load(&c->changes);
}
