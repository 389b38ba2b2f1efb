/*
 * backends.c: /backends, /backends/{ip} and /backends/self. Validates the IP strictly
 * (util/ip.h), checks that the caller may change it (a self token: only its own address;
 * --allow-cidr: what may be registered), calls the registry, renders placements.
 * Thread-safe: all state is in the registry.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handlers/api.h"
#include "handlers/changes.h"
#include "registry/registry.h"
#include "util/ip.h"

static void json_ok(struct api_response *res, int status, json_t *body)
{
    res->status = status;
    res->body = body;
    res->content_type = "application/json";
}

json_t *api_placement_json(const struct reg_registry *reg, const struct reg_placement *p)
{
    char ip[IP_TEXT_MAX], sid[REG_SET_ID_MAX + 1];
    json_t *o;
    reg_set_id(reg_options(reg), p->bucket, sid, sizeof(sid));
    o = json_pack("{s:s, s:s, s:i, s:s, s:i, s:s}", "ip", ip_format(&p->ip, ip), "type",
                     reg_type_name(p->type), "bucket", (int)p->bucket, "set_identifier", sid,
                     "weight", (int)p->weight, "state",
                     p->state == REG_STATE_REGISTERED ? "registered" : "deregistered");
    if (p->change_id[0])
        json_object_set_new(o, "change_id", json_string(p->change_id));
    if (p->lease_seconds) {
        char when[32];
        time_t t = (time_t)p->lease_expires_at;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_object_set_new(o, "lease_seconds", json_integer(p->lease_seconds));
        json_object_set_new(o, "lease_expires_at", json_string(when));
    }
    return o;
}

/*
 * The optional body of POST /backends/{ip}: {"lease_seconds": N}. 0 to go on (*lease set, 0
 * when absent), -1 when res holds the 400/415.
 */
static int parse_register_body(const struct api_request *req, struct api_response *res,
                               unsigned *lease)
{
    json_error_t jerr;
    json_t *doc, *v;
    const char *key;
    int bad = 0;

    *lease = 0;
    if (!req->body || req->body_len == 0)
        return 0;
    if (!api_media_is_json(req->content_type)) {
        api_problem(res, req, RC_UNSUPPORTED_MEDIA_TYPE,
                    "a body must be JSON (Content-Type: application/json)");
        return -1;
    }
    doc = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc || !json_is_object(doc)) {
        char d[256];
        snprintf(d, sizeof(d), "the body must be a JSON object like {\"lease_seconds\": 300}%s%.150s",
                 doc ? "" : ": ", doc ? "" : jerr.text);
        json_decref(doc);
        api_problem(res, req, RC_BAD_REQUEST, d);
        return -1;
    }
    json_object_foreach(doc, key, v)
    {
        if (strcmp(key, "lease_seconds") != 0 || !json_is_integer(v) ||
            json_integer_value(v) < 1 || json_integer_value(v) > REG_MAX_LEASE)
            bad = 1;
        else
            *lease = (unsigned)json_integer_value(v);
    }
    json_decref(doc);
    if (bad) {
        char d[160];
        snprintf(d, sizeof(d), "the body may only hold \"lease_seconds\": an integer in 1..%u",
                 REG_MAX_LEASE);
        api_problem(res, req, RC_BAD_REQUEST, d);
        return -1;
    }
    return 0;
}

/* ?wait=insync|none: 0 to go on (res untouched), -1 when res holds a 400. */
static int parse_wait(const struct api_request *req, struct api_response *res, int *insync,
                      int *none)
{
    *insync = *none = 0;
    if (!req->wait)
        return 0;
    if (!strcmp(req->wait, "insync")) {
        *insync = 1;
        return 0;
    }
    if (!strcmp(req->wait, "none")) {
        *none = 1;
        return 0;
    }
    api_problem(res, req, RC_BAD_REQUEST, "wait must be 'insync' or 'none' (or absent)");
    return -1;
}

const char *api_change_refusal(const struct api_request *req, const struct ip_addr *ip,
                               int registering, char *why, size_t n)
{
    char t[IP_TEXT_MAX], c[IP_TEXT_MAX];
    const char *name = req->token_name ? req->token_name : "-";

    if (req->self_only) {
        if (!req->caller) {
            snprintf(why, n, "token '%s' has scope self: it may only change the caller's own "
                     "address, and that address is not known", name);
            return why;
        }
        if (ip_cmp(ip, req->caller) != 0) {
            snprintf(why, n, "token '%s' has scope self: it may only change %s, the caller's "
                     "address", name, ip_format(req->caller, c));
            return why;
        }
    }
    if (registering && req->allow_cidr && req->allow_cidr->n &&
        !cidr_set_contains(req->allow_cidr, ip)) {
        snprintf(why, n, "%s is outside --allow-cidr %s: only addresses inside may be "
                 "registered", ip_format(ip, t), req->allow_cidr->text);
        return why;
    }
    return NULL;
}

/* Parse the {ip} segment; on failure fill res with a 400 and return -1. */
static int parse_ip(const struct api_request *req, struct api_response *res, struct ip_addr *ip)
{
    char detail[200];
    if (ip_parse(req->param, req->param_len, ip, detail, sizeof(detail)) == RC_OK)
        return 0;
    api_problem(res, req, RC_INVALID_IP, detail);
    return -1;
}

static int caller_ip(const struct api_request *req, struct api_response *res, struct ip_addr *ip);

static void get_one(const struct api_request *req, struct api_response *res,
                    const struct ip_addr *ip0)
{
    struct ip_addr ip = *ip0;
    struct reg_placement p;
    char txt[IP_TEXT_MAX], detail[96];

    memset(&p, 0, sizeof(p));
    if (reg_lookup(req->reg, &ip, &p) != RC_OK) {
        snprintf(detail, sizeof(detail), "%s is not registered", ip_format(&ip, txt));
        api_problem(res, req, RC_NOT_REGISTERED, detail);
        return;
    }
    json_ok(res, 200, api_placement_json(req->reg, &p));
}

void api_backend_get(const struct api_request *req, struct api_response *res)
{
    struct ip_addr ip;
    if (parse_ip(req, res, &ip) == 0)
        get_one(req, res, &ip);
}

void api_backend_get_self(const struct api_request *req, struct api_response *res)
{
    struct ip_addr ip;
    if (caller_ip(req, res, &ip) == 0)
        get_one(req, res, &ip);
}

/* A mutation in flight: what the answer needs once the registry is done. */
struct pending {
    struct api_async *async;
    struct reg_registry *reg;
    char path[160];
    char request_id[32];
    int insync;
    unsigned insync_timeout_ms;
    int is_delete;
    unsigned lease; /* lease_seconds asked for, or 0 */
    char ip[IP_TEXT_MAX];
    struct reg_result res;
    struct pending *next; /* insync queue */
};

static void answer(struct pending *pd)
{
    struct api_request req;
    struct api_response res;
    const struct reg_result *r = &pd->res;

    memset(&req, 0, sizeof(req));
    memset(&res, 0, sizeof(res));
    req.path = pd->path;
    req.request_id = pd->request_id;
    if (r->rc) {
        api_problem(&res, &req, r->rc, r->detail);
        if (r->rc == RC_UPSTREAM_TIMEOUT && r->placement.change_id[0])
            json_object_set_new(res.body, "change_id", json_string(r->placement.change_id));
    } else {
        json_t *body = api_placement_json(pd->reg, &r->placement);
        if (pd->insync)
            json_object_set_new(body, "insync", json_true());
        json_ok(&res, pd->is_delete ? 200 : r->created ? 201 : 200, body);
        if (!pd->is_delete && r->created) {
            char txt[IP_TEXT_MAX];
            snprintf(res.location, sizeof(res.location), "/backends/%s",
                     ip_format(&r->placement.ip, txt));
        }
    }
    snprintf(res.audit_target, sizeof(res.audit_target), "%s", pd->ip);
    snprintf(res.audit_change_id, sizeof(res.audit_change_id), "%s", r->placement.change_id);
    api_async_complete(pd->async, &res);
    free(pd);
}

/*
 * ?wait=insync: one worker thread waits for changes to become INSYNC, so neither the
 * committer nor an HTTP thread waits. Requests of one batch share its change id: the first
 * wait settles it for the others.
 */
static pthread_mutex_t insync_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t insync_cond = PTHREAD_COND_INITIALIZER;
static struct pending *insync_head, **insync_tail = &insync_head; /* guarded by insync_lock */
static pthread_once_t insync_once = PTHREAD_ONCE_INIT;

static void *insync_worker(void *arg)
{
    char last_id[REG_CHANGE_ID_MAX] = "";
    (void)arg;
    for (;;) {
        struct pending *pd;
        pthread_mutex_lock(&insync_lock);
        while (!insync_head)
            pthread_cond_wait(&insync_cond, &insync_lock);
        pd = insync_head;
        insync_head = pd->next;
        if (!insync_head)
            insync_tail = &insync_head;
        pthread_mutex_unlock(&insync_lock);
        if (strcmp(last_id, pd->res.placement.change_id) != 0) {
            enum rc_code rc = reg_wait_insync(pd->reg, pd->res.placement.change_id,
                                              pd->insync_timeout_ms, pd->res.detail,
                                              sizeof(pd->res.detail));
            if (rc)
                pd->res.rc = rc;
            else
                snprintf(last_id, sizeof(last_id), "%s", pd->res.placement.change_id);
        }
        answer(pd);
    }
    return NULL;
}

static void insync_start(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, insync_worker, NULL) == 0)
        pthread_detach(t);
}

static void on_done(void *arg, const struct reg_result *res)
{
    struct pending *pd = arg;
    pd->res = *res;
    if (!pd->is_delete && res->rc == RC_OK &&
        (pd->lease || reg_options(pd->reg)->default_lease)) {
        /* The committer holds no lock while it completes: set the lease asked for, or show
         * the default one. */
        struct reg_placement p;
        enum rc_code rc;
        memset(&p, 0, sizeof(p));
        rc = pd->lease ? reg_set_lease(pd->reg, &res->placement.ip, pd->lease, &p)
                       : reg_lookup(pd->reg, &res->placement.ip, &p);
        if (rc == RC_OK) {
            pd->res.placement.lease_seconds = p.lease_seconds;
            pd->res.placement.lease_expires_at = p.lease_expires_at;
        }
    }
    if (pd->insync && res->rc == RC_OK && res->placement.change_id[0]) {
        pthread_once(&insync_once, insync_start);
        pthread_mutex_lock(&insync_lock);
        pd->next = NULL;
        *insync_tail = pd;
        insync_tail = &pd->next;
        pthread_cond_signal(&insync_cond);
        pthread_mutex_unlock(&insync_lock);
        return;
    }
    answer(pd);
}

/* POST and DELETE of one address (validated): check that the caller may, then hand the
 * mutation to the registry; the answer comes through on_done when it is committed (or
 * refused). */
static void submit(const struct api_request *req, struct api_response *res, enum reg_op op,
                   const struct ip_addr *ip0)
{
    struct ip_addr ip = *ip0;
    struct pending *pd;
    int insync, none;
    unsigned lease = 0;
    char why[256], txt[IP_TEXT_MAX];

    ip_format(&ip, txt);
    if (parse_wait(req, res, &insync, &none))
        goto out;
    if (op == REG_OP_ADD && parse_register_body(req, res, &lease))
        goto out;
    if (api_change_refusal(req, &ip, op == REG_OP_ADD, why, sizeof(why))) {
        api_problem(res, req, RC_FORBIDDEN, why);
        goto out;
    }
    if (none) {
        api_changes_accept(req, res, op, &ip); /* 202 now; GET /changes/{id} later */
        goto out;
    }
    pd = calloc(1, sizeof(*pd));
    if (!pd)
        abort();
    pd->async = req->async;
    pd->reg = req->reg;
    pd->insync = insync;
    pd->insync_timeout_ms = req->insync_timeout_ms;
    pd->is_delete = op == REG_OP_REMOVE;
    pd->lease = lease;
    snprintf(pd->ip, sizeof(pd->ip), "%s", txt);
    snprintf(pd->path, sizeof(pd->path), "%s", req->path);
    snprintf(pd->request_id, sizeof(pd->request_id), "%s",
             req->request_id ? req->request_id : "");
    res->status = API_PENDING;
    reg_submit(req->reg, op, &ip, on_done, pd);
    return;
out:
    snprintf(res->audit_target, sizeof(res->audit_target), "%s", txt);
}

void api_backend_register(const struct api_request *req, struct api_response *res)
{
    struct ip_addr ip;
    if (parse_ip(req, res, &ip) == 0)
        submit(req, res, REG_OP_ADD, &ip);
}

void api_backend_deregister(const struct api_request *req, struct api_response *res)
{
    struct ip_addr ip;
    if (parse_ip(req, res, &ip) == 0)
        submit(req, res, REG_OP_REMOVE, &ip);
}

/* The caller's address as a backend address: 0, or -1 with res holding a 400. */
static int caller_ip(const struct api_request *req, struct api_response *res, struct ip_addr *ip)
{
    char txt[IP_TEXT_MAX], detail[240];
    if (!req->caller) {
        api_problem(res, req, RC_BAD_REQUEST,
                    "the caller's address is not known (X-Forwarded-For from a trusted proxy "
                    "holds no usable address); name the address: /backends/{ip}");
        return -1;
    }
    ip_format(req->caller, txt);
    if (ip_parse(txt, strlen(txt), ip, detail, sizeof(detail)) != RC_OK) {
        char msg[360];
        snprintf(msg, sizeof(msg), "the caller's address %s cannot be a backend: %s", txt,
                 detail);
        api_problem(res, req, RC_INVALID_IP, msg);
        return -1;
    }
    return 0;
}

void api_backend_register_self(const struct api_request *req, struct api_response *res)
{
    struct ip_addr ip;
    if (caller_ip(req, res, &ip) == 0)
        submit(req, res, REG_OP_ADD, &ip);
}

void api_backend_deregister_self(const struct api_request *req, struct api_response *res)
{
    struct ip_addr ip;
    if (caller_ip(req, res, &ip) == 0)
        submit(req, res, REG_OP_REMOVE, &ip);
}

static int cmp_placement(const void *a, const void *b)
{
    return ip_cmp(&((const struct reg_placement *)a)->ip, &((const struct reg_placement *)b)->ip);
}

static void render_list(const struct api_request *req, struct api_response *res)
{
    struct reg_bucket_view *views = NULL;
    size_t nviews = reg_snapshot(req->reg, &views), total = 0, k = 0;
    struct reg_placement *all;
    json_t *arr = json_array();

    for (size_t i = 0; i < nviews; i++)
        total += views[i].rec.nvalues;
    all = calloc(total ? total : 1, sizeof(*all));
    if (!all)
        abort();
    for (size_t i = 0; i < nviews; i++)
        for (size_t v = 0; v < views[i].rec.nvalues; v++) {
            all[k].ip = views[i].rec.values[v];
            all[k].type = views[i].rec.type;
            all[k].bucket = views[i].rec.bucket;
            all[k].weight = views[i].rec.weight;
            all[k].state = REG_STATE_REGISTERED;
            k++;
        }
    qsort(all, total, sizeof(*all), cmp_placement);
    for (size_t i = 0; i < total; i++)
        json_array_append_new(arr, api_placement_json(req->reg, &all[i]));
    free(all);
    reg_views_free(views, nviews);
    json_ok(res, 200, json_pack("{s:o, s:I}", "backends", arr, "count", (json_int_t)total));
}

static struct api_cache list_cache = API_CACHE_INIT;

void api_backends_list(const struct api_request *req, struct api_response *res)
{
    api_cache_serve(&list_cache, req, res, render_list);
}

/* PUT /backends/{ip}/heartbeat: renew the backend's lease (or start --default-lease). */
void api_backend_heartbeat(const struct api_request *req, struct api_response *res)
{
    struct ip_addr ip;
    struct reg_placement p;
    char why[256], txt[IP_TEXT_MAX], detail[96];

    if (parse_ip(req, res, &ip))
        return;
    ip_format(&ip, txt);
    snprintf(res->audit_target, sizeof(res->audit_target), "%s", txt);
    if (api_change_refusal(req, &ip, 0, why, sizeof(why))) {
        api_problem(res, req, RC_FORBIDDEN, why);
        return;
    }
    memset(&p, 0, sizeof(p));
    if (reg_heartbeat(req->reg, &ip, &p) != RC_OK) {
        snprintf(detail, sizeof(detail), "%s is not registered (or its lease ran out)", txt);
        api_problem(res, req, RC_NOT_REGISTERED, detail);
        return;
    }
    json_ok(res, 200, api_placement_json(req->reg, &p));
}
