/*
 * emu_main.c: r53emu's process: command line, the libmicrohttpd daemon, routing, responses,
 * fault sequencing and delayed answers. See README.md for the command line and control API.
 *
 * Request flow (API calls under /2013-04-01/): the raw request-target is captured by MHD's URI
 * log callback (before MHD unescapes anything, so SigV4 sees what the client signed), the body
 * is collected (never answered on the first call or with upload data pending, see
 * shared/TOOLCHAIN.md), then on the last call:
 *   injected latency (the connection is suspended and resumed by the delay thread)
 *   -> injected reset (close without answer) -> SigV4 -> the account's request bucket
 *   -> injected Throttling / 5xx / PriorRequestNotComplete (ChangeResourceRecordSets)
 *   -> (ChangeResourceRecordSets) the batch is parsed and charged to the change bucket
 *   -> the operation -> injected reset_after_apply (the change is applied, no answer).
 * Every injected fault that fails a call happens before a change is applied, except
 * reset_after_apply. /_emu/ control calls are never signed, delayed, throttled or faulted.
 *
 * Threading: MHD runs a pool of epoll worker threads; each request is handled on the worker
 * owning its connection. The store and the fault state have their own mutexes (never nested).
 * The delay thread owns a min-heap of suspended connections behind its own mutex. main() waits
 * for SIGTERM/SIGINT with sigwait and shuts down: resume every delayed connection, stop MHD,
 * write the state dump.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <microhttpd.h>

#include "emu.h"
#include "util/log.h"
#include "util/xalloc.h"

#define MAX_BODY (4u << 20)
#define LISTEN_BACKLOG 4096
#define MAX_RESOLVE_QUERIES 100000000LL
#define DEFAULT_MAX_RECORDS 10000

/* --- delayed answers ----------------------------------------------------------------------- */

struct delayed {
    long long due_ms;
    struct MHD_Connection *conn;
};

struct delayq {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct delayed *heap; /* guarded by lock */
    size_t n, cap;        /* guarded by lock */
    int stopping;         /* guarded by lock */
    pthread_t thread;
};

static void heap_push(struct delayq *q, struct delayed d)
{
    size_t i;
    q->heap = xgrow(q->heap, &q->cap, q->n + 1, sizeof(*q->heap));
    i = q->n++;
    while (i > 0 && q->heap[(i - 1) / 2].due_ms > d.due_ms) {
        q->heap[i] = q->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    q->heap[i] = d;
}

static struct delayed heap_pop(struct delayq *q)
{
    struct delayed top = q->heap[0], last = q->heap[--q->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->n)
            break;
        if (c + 1 < q->n && q->heap[c + 1].due_ms < q->heap[c].due_ms)
            c++;
        if (q->heap[c].due_ms >= last.due_ms)
            break;
        q->heap[i] = q->heap[c];
        i = c;
    }
    if (q->n)
        q->heap[i] = last;
    return top;
}

static void *delay_main(void *arg)
{
    struct delayq *q = arg;

    pthread_mutex_lock(&q->lock);
    for (;;) {
        long long now = emu_mono_ms();
        while (q->n && (q->stopping || q->heap[0].due_ms <= now))
            MHD_resume_connection(heap_pop(q).conn);
        if (q->stopping)
            break;
        if (q->n) {
            long long due = q->heap[0].due_ms;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            long long wait = due - now;
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&q->cond, &q->lock, &ts);
        } else {
            pthread_cond_wait(&q->cond, &q->lock);
        }
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

static void delayq_start(struct delayq *q)
{
    pthread_condattr_t ca;
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_create(&q->thread, NULL, delay_main, q);
}

/* Suspend conn for ms. 0 when suspended; -1 when shutting down (answer now instead). Must be
 * called from the access handler. */
static int delayq_add(struct delayq *q, struct MHD_Connection *conn, long long ms)
{
    int rc = -1;
    pthread_mutex_lock(&q->lock);
    if (!q->stopping) {
        MHD_suspend_connection(conn);
        heap_push(q, (struct delayed){emu_mono_ms() + ms, conn});
        pthread_cond_signal(&q->cond);
        rc = 0;
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

/* Resume everything and stop the thread (before MHD_stop_daemon, which refuses suspended
 * connections). */
static void delayq_stop(struct delayq *q)
{
    pthread_mutex_lock(&q->lock);
    q->stopping = 1;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
    pthread_join(q->thread, NULL);
    free(q->heap);
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->lock);
}

/* --- process state ------------------------------------------------------------------------- */

struct emu {
    struct MHD_Daemon *daemon;
    struct emu_store *store;
    struct emu_faults *faults;
    struct emu_creds creds;
    const char *state_dump;
    struct delayq dq;
    atomic_ullong next_req;
    uint64_t salt;
};

static struct emu g;

struct req {
    char *uri; /* the raw request-target */
    char *body;
    size_t len, cap;
    int too_big;
    int seen;    /* the access handler ran once */
    int delayed; /* injected latency already served */
    long long start_ms;
    enum emu_action_kind op;
    char id[40];
};

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static struct req *req_new(const char *uri)
{
    struct req *r = xcalloc(1, sizeof(*r));
    unsigned long long n = atomic_fetch_add(&g.next_req, 1);
    uint64_t a = mix64(n ^ g.salt), b = mix64(a + 0x9e3779b97f4a7c15ULL);

    r->uri = xstrdup(uri ? uri : "/");
    r->start_ms = emu_mono_ms();
    snprintf(r->id, sizeof(r->id), "%08x-%04x-%04x-%04x-%012llx", (unsigned)(a >> 32),
             (unsigned)(a >> 16) & 0xffffu, 0x4000u | ((unsigned)a & 0x0fffu),
             0x8000u | ((unsigned)(b >> 48) & 0x3fffu),
             (unsigned long long)(b & 0xffffffffffffULL));
    return r;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    return req_new(uri);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct req *r = *con_cls;
    if (!r)
        return;
    free(r->uri);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

/* --- responses ----------------------------------------------------------------------------- */

static enum MHD_Result send_body(struct MHD_Connection *conn, int status, const char *ctype,
                                 char *body, const char *request_id, long long retry_after_ms)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result ret;

    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", ctype);
    if (request_id)
        MHD_add_response_header(resp, "x-amzn-RequestId", request_id);
    if (retry_after_ms > 0) {
        char v[32];
        snprintf(v, sizeof(v), "%lld", retry_after_ms);
        MHD_add_response_header(resp, "x-amz-retry-after", v);
    }
    ret = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void log_call(const struct req *r, int status, const char *outcome)
{
    if (!log_enabled(LOG_INFO))
        return;
    log_info("event=call id=%s op=%s status=%d outcome=%s ms=%lld", r->id, emu_op_name(r->op),
             status, outcome, emu_mono_ms() - r->start_ms);
}

static enum MHD_Result send_xml(struct MHD_Connection *conn, struct req *r, struct buf *xml)
{
    emu_stats_call(g.faults, r->op, "ok");
    log_call(r, 200, "ok");
    return send_body(conn, 200, "text/xml", buf_detach(xml), r->id, 0);
}

static enum MHD_Result send_error(struct MHD_Connection *conn, struct req *r,
                                  const struct emu_err *e)
{
    struct buf b = {0};

    if (!strcmp(e->code, "InvalidChangeBatch") && e->nmessages &&
        emu_faults_icb_shape(g.faults) == EMU_ICB_ROOT) {
        buf_adds(&b,
                 "<?xml version=\"1.0\"?>\n<InvalidChangeBatch xmlns=\"" EMU_NS "\"><Messages>");
        for (size_t i = 0; i < e->nmessages; i++) {
            buf_adds(&b, "<Message>");
            emu_buf_add_xml(&b, e->messages[i]);
            buf_adds(&b, "</Message>");
        }
        buf_addf(&b, "</Messages><RequestId>%s</RequestId></InvalidChangeBatch>", r->id);
    } else {
        char *text = emu_err_text(e);
        buf_addf(&b,
                 "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"" EMU_NS
                 "\"><Error><Type>%s</Type><Code>%s</Code><Message>",
                 e->type ? e->type : "Sender", e->code);
        emu_buf_add_xml(&b, text);
        buf_addf(&b, "</Message></Error><RequestId>%s</RequestId></ErrorResponse>", r->id);
        free(text);
    }
    emu_stats_call(g.faults, r->op, e->code);
    log_call(r, e->status, e->code);
    return send_body(conn, e->status, "text/xml", buf_detach(&b), r->id, e->retry_after_ms);
}

static enum MHD_Result send_json(struct MHD_Connection *conn, int status, json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        s = xstrdup("{}");
    return send_body(conn, status, "application/json", s, NULL, 0);
}

static enum MHD_Result json_message(struct MHD_Connection *conn, int status, const char *key,
                                    const char *msg)
{
    json_t *o = json_object();
    json_object_set_new(o, key, json_string(msg));
    return send_json(conn, status, o);
}

/* Close without answering. SO_LINGER 0 makes the close send RST, as a dropped connection. */
static enum MHD_Result reset_connection(struct MHD_Connection *conn, struct req *r,
                                        const char *outcome)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci) {
        struct linger lg = {1, 0};
        setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    emu_stats_call(g.faults, r->op, outcome);
    log_call(r, 0, outcome);
    return MHD_NO;
}

/* --- request parsing ----------------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) ('+' stays '+'); NULL for a malformed escape or a NUL byte. */
static char *pct_decode(const char *s, size_t n)
{
    struct buf b = {0};
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int h = i + 2 < n ? hexval(s[i + 1]) : -1;
            int l = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (h < 0 || l < 0 || (h == 0 && l == 0)) {
                buf_release(&b);
                return NULL;
            }
            c = (char)(h << 4 | l);
            i += 2;
        }
        buf_add(&b, &c, 1);
    }
    return buf_detach(&b);
}

/* First value of a query parameter, decoded (caller frees), or NULL. */
static char *query_param(const char *query, const char *name)
{
    size_t nlen = strlen(name);
    for (const char *p = query ? query : ""; *p;) {
        const char *amp = strchr(p, '&');
        size_t seg = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', seg);
        size_t klen = eq ? (size_t)(eq - p) : seg;
        char *k = pct_decode(p, klen);
        int match = k && strlen(k) == nlen && !memcmp(k, name, nlen);
        free(k);
        if (match)
            return eq ? pct_decode(eq + 1, seg - klen - 1) : xstrdup("");
        p += seg;
        if (*p == '&')
            p++;
    }
    return NULL;
}

static int parse_ll(const char *s, long long min, long long max, long long *out)
{
    char *end = NULL;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

struct route {
    enum emu_action_kind op;
    char *id; /* zone or change id, decoded */
};

static void route_api(const char *method, const char *path, struct route *rt)
{
    static const char zone_prefix[] = "/2013-04-01/hostedzone/";
    static const char change_prefix[] = "/2013-04-01/change/";
    char *dec = pct_decode(path, strlen(path));
    const char *rest;
    size_t idlen;

    rt->op = EMU_OP_UNKNOWN;
    rt->id = NULL;
    if (!dec)
        return;
    if (!strncmp(dec, zone_prefix, sizeof(zone_prefix) - 1)) {
        rest = dec + sizeof(zone_prefix) - 1;
        idlen = strcspn(rest, "/");
        if (idlen == 0)
            goto out;
        if (!rest[idlen] && !strcmp(method, "GET"))
            rt->op = EMU_OP_GET_ZONE;
        else if (!strcmp(rest + idlen, "/rrset") || !strcmp(rest + idlen, "/rrset/"))
            rt->op = !strcmp(method, "POST")  ? EMU_OP_CHANGE
                     : !strcmp(method, "GET") ? EMU_OP_LIST
                                              : EMU_OP_UNKNOWN;
        if (rt->op != EMU_OP_UNKNOWN)
            rt->id = xstrndup(rest, idlen);
    } else if (!strncmp(dec, change_prefix, sizeof(change_prefix) - 1)) {
        rest = dec + sizeof(change_prefix) - 1;
        idlen = strlen(rest);
        if (idlen && !strchr(rest, '/') && !strcmp(method, "GET")) {
            rt->op = EMU_OP_GET_CHANGE;
            rt->id = xstrdup(rest);
        }
    }
out:
    free(dec);
}

struct hdr_list {
    struct emu_http_header *h;
    size_t n, cap;
};

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    struct hdr_list *l = cls;
    l->h = xgrow(l->h, &l->cap, l->n + 1, sizeof(*l->h));
    l->h[l->n].name = key;
    l->h[l->n].value = value ? value : "";
    l->n++;
    return MHD_YES;
}

/* --- the API ------------------------------------------------------------------------------- */

static enum MHD_Result handle_api(struct MHD_Connection *conn, const char *method, const char *path,
                                  const char *query, struct req *r)
{
    struct route rt;
    struct emu_err err = {0};
    struct buf xml = {0};
    struct hdr_list hl = {0};
    struct emu_batch batch = {0};
    enum MHD_Result ret;
    long long retry_ms = 0;
    int applied = 0;

    route_api(method, path, &rt);
    r->op = rt.op;

    if (!r->delayed) {
        long long ms = emu_faults_latency(g.faults);
        r->delayed = 1;
        if (ms > 0 && delayq_add(&g.dq, conn, ms) == 0) {
            ret = MHD_YES;
            goto out;
        }
    }
    if (emu_faults_draw(g.faults, EMU_FAULT_RESET)) {
        ret = reset_connection(conn, r, "reset");
        goto out;
    }
    if (r->too_big) {
        emu_err_set(&err, 413, "RequestEntityTooLarge", "Request body larger than %u bytes",
                    MAX_BODY);
        goto fail;
    }

    MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, &hl);
    {
        struct emu_auth_request ar = {
            .method = method,
            .raw_path = path,
            .raw_query = query,
            .headers = hl.h,
            .nheaders = hl.n,
            .body = r->body,
            .body_len = r->len,
            .now_s = emu_real_ms() / 1000,
        };
        if (emu_auth_verify(&g.creds, &ar, &err))
            goto fail;
    }
    if (!emu_faults_take_token(g.faults, &retry_ms)) {
        emu_err_set(&err, 400, "Throttling", "Rate exceeded");
        err.retry_after_ms = retry_ms;
        goto fail;
    }
    if (emu_faults_draw(g.faults, EMU_FAULT_THROTTLE)) {
        emu_err_set(&err, 400, "Throttling", "Rate exceeded");
        err.retry_after_ms = emu_faults_injected_retry_after(g.faults);
        goto fail;
    }
    if (emu_faults_draw(g.faults, EMU_FAULT_ERR5XX)) {
        if (emu_faults_coin(g.faults))
            emu_err_set(&err, 503, "ServiceUnavailable", "Service is unavailable.");
        else
            emu_err_set(&err, 500, "InternalFailure",
                        "The request processing has failed because of an unknown error, exception "
                        "or failure.");
        goto fail;
    }

    switch (rt.op) {
    case EMU_OP_CHANGE:
        if (!emu_store_has_zone(g.store, rt.id)) {
            emu_err_set(&err, 404, "NoSuchHostedZone", "No hosted zone found with ID: %s", rt.id);
            goto fail;
        }
        if (emu_faults_draw(g.faults, EMU_FAULT_PRIOR)) {
            emu_err_set(&err, 400, "PriorRequestNotComplete",
                        "The request was rejected because Route 53 was still processing a prior "
                        "request.");
            goto fail;
        }
        if (emu_xml_parse_batch(r->body, r->len, emu_faults_xml_lenient(g.faults), &batch, &err))
            goto fail;
        if (!emu_faults_take_changes(g.faults, batch.n, batch.record_units, &retry_ms)) {
            emu_err_set(&err, 400, "Throttling", "Rate exceeded");
            err.retry_after_ms = retry_ms;
            goto fail;
        }
        if (emu_store_change(g.store, rt.id, &batch, &xml, &err))
            goto fail;
        applied = 1;
        emu_stats_change_applied(g.faults, &batch);
        break;
    case EMU_OP_LIST: {
        char *name = query_param(query, "name"), *type = query_param(query, "type"),
             *ident = query_param(query, "identifier"), *maxi = query_param(query, "maxitems");
        struct emu_list_opts lo;
        int rc;
        emu_faults_list_opts(g.faults, &lo);
        rc = emu_store_list(g.store, rt.id, name, type, ident, maxi, &lo, &xml, &err);
        free(name);
        free(type);
        free(ident);
        free(maxi);
        if (rc)
            goto fail;
        break;
    }
    case EMU_OP_GET_CHANGE:
        if (emu_store_get_change(g.store, rt.id, emu_faults_insync_ms(g.faults), &xml, &err))
            goto fail;
        break;
    case EMU_OP_GET_ZONE:
        if (emu_store_get_zone(g.store, rt.id, &xml, &err))
            goto fail;
        break;
    default:
        emu_err_set(&err, 404, "UnknownOperationException",
                    "r53emu does not implement %s %s (it emulates ChangeResourceRecordSets, "
                    "ListResourceRecordSets, GetChange and GetHostedZone)",
                    method, path);
        goto fail;
    }
    if (applied && emu_faults_draw(g.faults, EMU_FAULT_RESET_AFTER_APPLY)) {
        ret = reset_connection(conn, r, "reset_after_apply");
        goto out;
    }
    ret = send_xml(conn, r, &xml);
    goto out;
fail:
    ret = send_error(conn, r, &err);
out:
    free(rt.id);
    free(hl.h);
    buf_release(&xml);
    emu_err_release(&err);
    emu_batch_release(&batch);
    return ret;
}

/* --- the control API ----------------------------------------------------------------------- */

static int write_state(const char *path)
{
    json_t *o = emu_store_dump(g.store, NULL);
    char tmp[4096];
    int rc;

    json_object_set_new(o, "stats", emu_stats_json(g.faults));
    json_object_set_new(o, "faults", emu_faults_config_json(g.faults));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    rc = json_dump_file(o, tmp, JSON_INDENT(1));
    json_decref(o);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1;
    return rc;
}

/* GET /_emu/resolve?name=&type=&n=&exact=&seed=: n simulated DNS queries (or the exact
 * shares) of name/type, drawn with --seed unless seed is given. */
static enum MHD_Result handle_resolve(struct MHD_Connection *conn, const char *query)
{
    char *name = query_param(query, "name"), *type = query_param(query, "type");
    char *n_s = query_param(query, "n"), *exact_s = query_param(query, "exact");
    char *seed_s = query_param(query, "seed");
    struct emu_rplan plan = {0};
    long long n = 1000, seed_v = 0;
    uint64_t seed = 0;
    int exact = exact_s && !strcmp(exact_s, "1"), status = 400;
    char why[600];
    enum MHD_Result ret;

    if (!name || !type) {
        ret = json_message(conn, 400, "error", "resolve needs name and type");
        goto out;
    }
    if (n_s && parse_ll(n_s, 1, MAX_RESOLVE_QUERIES, &n)) {
        snprintf(why, sizeof(why), "n must be 1..%lld, got '%s'", MAX_RESOLVE_QUERIES, n_s);
        ret = json_message(conn, 400, "error", why);
        goto out;
    }
    if (exact_s && strcmp(exact_s, "0") != 0 && strcmp(exact_s, "1") != 0) {
        ret = json_message(conn, 400, "error", "exact is 0 or 1");
        goto out;
    }
    if (seed_s && parse_ll(seed_s, 0, 0x7fffffffffffffffLL, &seed_v)) {
        ret = json_message(conn, 400, "error", "seed must be a non-negative integer");
        goto out;
    }
    if (emu_store_resolve_plan(g.store, name, type, &plan, &seed, &status, why, sizeof(why))) {
        ret = json_message(conn, status, "error", why);
        goto out;
    }
    if (seed_s)
        seed = (uint64_t)seed_v;
    ret = send_json(conn, 200, emu_rplan_run(&plan, seed, n, exact));
out:
    emu_rplan_release(&plan);
    free(name);
    free(type);
    free(n_s);
    free(exact_s);
    free(seed_s);
    return ret;
}

static enum MHD_Result handle_control(struct MHD_Connection *conn, const char *method,
                                      const char *path, const char *query, struct req *r)
{
    int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    const char *rest;

    if (get && !strcmp(path, "/_emu/stats"))
        return send_json(conn, 200, emu_stats_json(g.faults));
    if (get && !strcmp(path, "/_emu/health"))
        return json_message(conn, 200, "status", "ok");
    if (post && !strcmp(path, "/_emu/reset-stats")) {
        emu_stats_reset(g.faults);
        return json_message(conn, 200, "status", "ok");
    }
    if (get && !strcmp(path, "/_emu/faults"))
        return send_json(conn, 200, emu_faults_config_json(g.faults));
    if (post && !strcmp(path, "/_emu/faults")) {
        json_error_t jerr;
        char why[512];
        json_t *body = json_loadb(r->body ? r->body : "", r->len, 0, &jerr);
        int rc = body ? emu_faults_apply_json(g.faults, body, why, sizeof(why)) : -1;
        if (!body)
            snprintf(why, sizeof(why), "invalid JSON: %s", jerr.text);
        json_decref(body);
        if (rc)
            return json_message(conn, 400, "error", why);
        return send_json(conn, 200, emu_faults_config_json(g.faults));
    }
    if (post && !strcmp(path, "/_emu/dump")) {
        if (!g.state_dump)
            return json_message(conn, 400, "error", "no --state-dump path configured");
        if (write_state(g.state_dump))
            return json_message(conn, 500, "error", "could not write the state dump");
        return json_message(conn, 200, "status", "ok");
    }
    if (get && !strcmp(path, "/_emu/resolve"))
        return handle_resolve(conn, query);
    if (get && !strcmp(path, "/_emu/zones"))
        return send_json(conn, 200, emu_store_dump(g.store, NULL));
    if (!strncmp(path, "/_emu/zones/", 12)) {
        char id[64];
        size_t idlen;
        rest = path + 12;
        idlen = strcspn(rest, "/");
        if (idlen == 0 || idlen >= sizeof(id))
            return json_message(conn, 404, "error", "no such zone");
        memcpy(id, rest, idlen);
        id[idlen] = '\0';
        rest += idlen;
        if (!emu_store_has_zone(g.store, id))
            return json_message(conn, 404, "error", "no such zone");
        if (get && !*rest)
            return send_json(conn, 200, emu_store_dump(g.store, id));
        if (post && !strcmp(rest, "/rrsets")) {
            json_error_t jerr;
            json_t *body = json_loadb(r->body ? r->body : "", r->len, 0, &jerr), *reply = NULL;
            int status;
            if (!body)
                return json_message(conn, 400, "error", jerr.text);
            status = emu_store_put_json(g.store, id, body, &reply);
            json_decref(body);
            if (status == 200)
                emu_stats_direct_write(g.faults);
            return send_json(conn, status, reply);
        }
        if (post && !strcmp(rest, "/clear")) {
            emu_store_clear(g.store, id);
            return json_message(conn, 200, "status", "ok");
        }
    }
    return json_message(conn, 404, "error", "unknown control endpoint");
}

/* MHD's own messages go to the log; the one it prints for every injected reset is dropped. */
static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char msg[512], quoted[600];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (strstr(msg, "Application reported internal error"))
        return;
    for (size_t n = strlen(msg); n > 0 && msg[n - 1] == '\n'; n--)
        msg[n - 1] = '\0';
    log_warn("event=mhd msg=%s", log_quote(msg, quoted, sizeof(quoted)));
}

/* --- MHD glue ------------------------------------------------------------------------------ */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct req *r = *con_cls;
    char *path, *query;
    enum MHD_Result ret;

    if (!r) {
        r = req_new(url);
        *con_cls = r;
    }
    if (!r->seen) {
        r->seen = 1;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!r->too_big && r->len + *upload_data_size <= MAX_BODY) {
            r->body = xgrow(r->body, &r->cap, r->len + *upload_data_size + 1, 1);
            memcpy(r->body + r->len, upload_data, *upload_data_size);
            r->len += *upload_data_size;
            r->body[r->len] = '\0';
        } else {
            r->too_big = 1;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    path = xstrdup(r->uri);
    query = strchr(path, '?');
    if (query)
        *query++ = '\0';
    if (!strncmp(path, "/_emu/", 6))
        ret = handle_control(conn, method, path, query, r);
    else
        ret = handle_api(conn, method, path, query, r);
    free(path);
    return ret;
}

/* --- command line -------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fputs("usage: r53emu --zone ID:NAME [--zone ...] --access-key AKID --secret-key SECRET\n"
          "              [--listen 127.0.0.1:0] [--session-token TOKEN] [--rate R [--burst B]]\n"
          "              [--change-rate R [--change-burst B]]\n"
          "              [--insync-after-ms N] [--faults SPEC] [--seed N] [--state-dump PATH]\n"
          "              [--xml-order strict|lenient] [--threads N] [--log-level LEVEL]\n"
          "              [--max-records N] [--refuse-dangling-alias]\n"
          "SPEC: comma-separated latency_ms=, latency_jitter_ms=, err5xx=, reset=, throttle=,\n"
          "      prior=, reset_after_apply= (probabilities 0..1), icb_shape=envelope|root|random\n"
          "Prints 'listening port=N' first on stdout; stops on SIGTERM. See README.md.\n",
          out);
}

static void die_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "r53emu: ");
    fprintf(stderr, "%s", fmt);
    if (arg)
        fprintf(stderr, " '%s'", arg);
    fprintf(stderr, "\n(r53emu --help for usage)\n");
    exit(2);
}

static int parse_double(const char *s, double min, double max, double *out)
{
    char *end = NULL;
    double d = strtod(s, &end);
    if (!*s || *end || !(d >= min && d <= max))
        return -1;
    *out = d;
    return 0;
}

static int parse_listen(const char *s, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    long long port;
    size_t hl;

    if (!colon || (hl = (size_t)(colon - s)) == 0 || hl >= sizeof(host))
        return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return -1;
    if ((ntohl(sa->sin_addr.s_addr) >> 24) != 127)
        return -1; /* loopback only: a test tool must not be reachable from elsewhere */
    if (parse_ll(colon + 1, 0, 65535, &port))
        return -1;
    sa->sin_port = htons((uint16_t)port);
    return 0;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    enum {
        OPT_LISTEN = 256,
        OPT_ZONE,
        OPT_AKID,
        OPT_SECRET,
        OPT_TOKEN,
        OPT_RATE,
        OPT_BURST,
        OPT_CHANGE_RATE,
        OPT_CHANGE_BURST,
        OPT_INSYNC,
        OPT_FAULTS,
        OPT_SEED,
        OPT_DUMP,
        OPT_XMLORDER,
        OPT_THREADS,
        OPT_LOGLEVEL,
        OPT_MAX_RECORDS,
        OPT_REFUSE_DANGLING,
        OPT_HELP
    };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"zone", required_argument, NULL, OPT_ZONE},
        {"access-key", required_argument, NULL, OPT_AKID},
        {"secret-key", required_argument, NULL, OPT_SECRET},
        {"session-token", required_argument, NULL, OPT_TOKEN},
        {"rate", required_argument, NULL, OPT_RATE},
        {"burst", required_argument, NULL, OPT_BURST},
        {"change-rate", required_argument, NULL, OPT_CHANGE_RATE},
        {"change-burst", required_argument, NULL, OPT_CHANGE_BURST},
        {"insync-after-ms", required_argument, NULL, OPT_INSYNC},
        {"faults", required_argument, NULL, OPT_FAULTS},
        {"seed", required_argument, NULL, OPT_SEED},
        {"state-dump", required_argument, NULL, OPT_DUMP},
        {"xml-order", required_argument, NULL, OPT_XMLORDER},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"log-level", required_argument, NULL, OPT_LOGLEVEL},
        {"max-records", required_argument, NULL, OPT_MAX_RECORDS},
        {"refuse-dangling-alias", no_argument, NULL, OPT_REFUSE_DANGLING},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0}};
    const char *listen_s = "127.0.0.1:0", *faults_s = NULL;
    const char *zones[64];
    size_t nzones = 0;
    double rate = 0, burst = 0, change_rate = 0, change_burst = 0;
    long long insync = 100, seed = -1, threads = 4, v, max_records = DEFAULT_MAX_RECORDS;
    int refuse_dangling = 0;
    int have_burst = 0, have_change_burst = 0, opt, lfd = -1, sig = 0, xml_lenient = 0;
    struct sockaddr_in sa;
    socklen_t salen = sizeof(sa);
    sigset_t set;
    char why[512];

    log_set_level(LOG_WARN); /* one line per call only with --log-level info */
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case OPT_LISTEN: listen_s = optarg; break;
        case OPT_ZONE:
            if (nzones == sizeof(zones) / sizeof(zones[0]))
                die_usage("too many --zone options (64 at most)", NULL);
            zones[nzones++] = optarg;
            break;
        case OPT_AKID: g.creds.access_key = optarg; break;
        case OPT_SECRET: g.creds.secret_key = optarg; break;
        case OPT_TOKEN: g.creds.session_token = optarg; break;
        case OPT_RATE:
            if (parse_double(optarg, 0.0, 1e9, &rate))
                die_usage("--rate needs a number of requests per second >= 0, got", optarg);
            break;
        case OPT_BURST:
            if (parse_double(optarg, 1.0, 1e9, &burst))
                die_usage("--burst needs a number >= 1, got", optarg);
            have_burst = 1;
            break;
        case OPT_CHANGE_RATE:
            if (parse_double(optarg, 0.0, 1e9, &change_rate))
                die_usage("--change-rate needs a number of record changes per second >= 0, got",
                          optarg);
            break;
        case OPT_CHANGE_BURST:
            if (parse_double(optarg, 1.0, 1e9, &change_burst))
                die_usage("--change-burst needs a number >= 1, got", optarg);
            have_change_burst = 1;
            break;
        case OPT_INSYNC:
            if (parse_ll(optarg, 0, 86400000LL, &insync))
                die_usage("--insync-after-ms needs milliseconds >= 0, got", optarg);
            break;
        case OPT_FAULTS: faults_s = optarg; break;
        case OPT_SEED:
            if (parse_ll(optarg, 0, 0x7fffffffffffffffLL, &seed))
                die_usage("--seed needs a non-negative integer, got", optarg);
            break;
        case OPT_DUMP: g.state_dump = optarg; break;
        case OPT_XMLORDER:
            if (!strcmp(optarg, "strict"))
                xml_lenient = 0;
            else if (!strcmp(optarg, "lenient"))
                xml_lenient = 1;
            else
                die_usage("--xml-order is strict or lenient, got", optarg);
            break;
        case OPT_THREADS:
            if (parse_ll(optarg, 1, 64, &threads))
                die_usage("--threads needs 1..64, got", optarg);
            break;
        case OPT_LOGLEVEL:
            v = log_level_parse(optarg);
            if (v < 0)
                die_usage("--log-level is debug, info, warn or error, got", optarg);
            log_set_level((enum log_level)v);
            break;
        case OPT_MAX_RECORDS:
            if (parse_ll(optarg, 2, 100000000LL, &max_records))
                die_usage("--max-records needs a number of record sets 2..100000000, got", optarg);
            break;
        case OPT_REFUSE_DANGLING: refuse_dangling = 1; break;
        case OPT_HELP: usage(stdout); return 0;
        default: die_usage("unknown or incomplete option", NULL);
        }
    }
    if (optind < argc)
        die_usage("unexpected argument", argv[optind]);
    if (!nzones)
        die_usage("at least one --zone ID:NAME is required", NULL);
    if (!g.creds.access_key || !*g.creds.access_key || !g.creds.secret_key || !*g.creds.secret_key)
        die_usage("--access-key and --secret-key are required", NULL);
    if (have_burst && rate <= 0)
        die_usage("--burst needs --rate", NULL);
    if (have_change_burst && change_rate <= 0)
        die_usage("--change-burst needs --change-rate", NULL);
    if (parse_listen(listen_s, &sa))
        die_usage("--listen needs HOST:PORT with a 127.0.0.0/8 address, got", listen_s);
    if (seed < 0) {
        seed = (long long)((uint64_t)emu_real_ms() ^ ((uint64_t)getpid() << 32)) &
               0x7fffffffffffffffLL;
    }

    g.salt = mix64((uint64_t)seed ^ (uint64_t)emu_real_ms());
    g.store = emu_store_create((uint64_t)seed, (size_t)max_records);
    emu_store_set_refuse_dangling(g.store, refuse_dangling);
    g.faults = emu_faults_create((uint64_t)seed);
    for (size_t i = 0; i < nzones; i++) {
        char *copy = xstrdup(zones[i]), *colon = strchr(copy, ':');
        int bad = !colon;
        if (colon) {
            *colon = '\0';
            bad = emu_store_add_zone(g.store, copy, colon + 1, why, sizeof(why));
        } else {
            snprintf(why, sizeof(why), "--zone needs ID:NAME, got");
        }
        free(copy);
        if (bad)
            die_usage(why, zones[i]);
    }
    if (faults_s && emu_faults_parse_spec(g.faults, faults_s, why, sizeof(why)))
        die_usage(why, faults_s);
    if (rate > 0)
        emu_faults_set_rate(g.faults, rate, have_burst ? burst : (rate < 1 ? 1 : rate));
    if (change_rate > 0)
        emu_faults_set_change_rate(g.faults, change_rate,
                                   have_change_burst ? change_burst
                                                     : (change_rate < 1 ? 1 : change_rate));
    emu_faults_set_insync_ms(g.faults, insync);
    emu_faults_set_xml_lenient(g.faults, xml_lenient);

    xmlInitParser();
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* every thread started below inherits this */

    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0) {
        perror("r53emu: socket");
        return 1;
    }
    {
        int one = 1;
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    }
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, LISTEN_BACKLOG) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &salen) != 0) {
        fprintf(stderr, "r53emu: cannot listen on %s: %s\n", listen_s, strerror(errno));
        return 1;
    }
    fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);

    delayq_start(&g.dq);
    g.daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, NULL, MHD_OPTION_LISTEN_SOCKET, lfd, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)threads, MHD_OPTION_CONNECTION_LIMIT, (unsigned)16000,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger,
        NULL, MHD_OPTION_END);
    if (!g.daemon) {
        fprintf(stderr, "r53emu: MHD_start_daemon failed\n");
        return 1;
    }
    printf("listening port=%u\n", (unsigned)ntohs(sa.sin_port));
    fflush(stdout);
    log_info("event=start port=%u zones=%zu seed=%lld threads=%lld", (unsigned)ntohs(sa.sin_port),
             nzones, seed, threads);

    while (sigwait(&set, &sig) != 0)
        ;
    log_info("event=stop signal=%d", sig);
    delayq_stop(&g.dq);
    MHD_stop_daemon(g.daemon);
    if (g.state_dump && write_state(g.state_dump))
        fprintf(stderr, "r53emu: could not write state dump to %s\n", g.state_dump);
    emu_store_destroy(g.store);
    emu_faults_destroy(g.faults);
    xmlCleanupParser();
    return 0;
}
