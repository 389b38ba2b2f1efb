/*
 * backends.c: /backends, /backends/{ip} and /backends/self (contract: backends.h). Validates
 * the IP strictly (util/ip.h), checks that the caller may change it (request.h: a self token
 * only its own address; --allow-cidr: what may be registered; --allow-special: loopback and
 * link-local), calls the registry, renders placements (placement.h).
 * Thread-safe: all state is in the registry; a parked mutation's state (struct pending) is
 * touched by one thread at a time: the handler, then the registry's completion, then the
 * insync waiter's callback.
 */
#include "handlers/backends.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/cache.h"
#include "handlers/changes.h"
#include "handlers/placement.h"
#include "handlers/request.h"
#include "handlers/watch.h"
#include "registry/registry.h"
#include "util/ip.h"

static void json_ok(struct api_response *res, int status, json_t *body)
{
    res->status = status;
    res->body = body;
    res->content_type = "application/json";
}

/* A registration's own health check, from the POST body. */
struct body_check {
    int given;
    struct hc_check check;
    char path[HC_PATH_MAX + 1];
};

/*
 * The "check" member of a POST body: {"type": "tcp|http|https", "port": N, "path": "/p",
 * "status": "200-299", "interval_ms": N, "timeout_ms": N, "rise": N, "fall": N}, every member
 * optional (the server's --check* settings fill the rest). 0, or -1 with why filled.
 */
static int parse_check(json_t *o, struct body_check *bc, char *why, size_t n)
{
    static const struct {
        const char *name;
        size_t off;
        json_int_t min, max;
    } ints[] = {
        {"port", offsetof(struct hc_check, port), 1, 65535},
        {"interval_ms", offsetof(struct hc_check, interval_ms), 10, 86400000},
        {"timeout_ms", offsetof(struct hc_check, timeout_ms), 1, 3600000},
        {"rise", offsetof(struct hc_check, rise), 1, 1000},
        {"fall", offsetof(struct hc_check, fall), 1, 1000},
    };
    const char *key;
    json_t *v;

    if (!json_is_object(o)) {
        snprintf(why, n, "\"check\" must be an object like {\"type\": \"http\", \"port\": "
                         "8080, \"path\": \"/healthz\"}");
        return -1;
    }
    memset(bc, 0, sizeof(*bc));
    bc->given = 1;
    json_object_foreach(o, key, v)
    {
        size_t i;
        if (!strcmp(key, "type")) {
            const char *t = json_string_value(v);
            if (t && !strcmp(t, "tcp"))
                bc->check.kind = HC_TCP;
            else if (t && !strcmp(t, "http"))
                bc->check.kind = HC_HTTP;
            else if (t && !strcmp(t, "https"))
                bc->check.kind = HC_HTTPS;
            else {
                snprintf(why, n, "check \"type\" must be \"tcp\", \"http\" or \"https\"");
                return -1;
            }
            continue;
        }
        if (!strcmp(key, "path")) {
            const char *p = json_string_value(v);
            if (!p || strlen(p) > HC_PATH_MAX) {
                snprintf(why, n, "check \"path\" must be a string of at most %d bytes",
                         HC_PATH_MAX);
                return -1;
            }
            snprintf(bc->path, sizeof(bc->path), "%s", p);
            bc->check.path = bc->path;
            continue;
        }
        if (!strcmp(key, "status")) {
            const char *st = json_string_value(v);
            if (!st || hc_parse_status_range(st, &bc->check.status_min, &bc->check.status_max)) {
                snprintf(why, n, "check \"status\" must be a range like \"200-299\" within "
                                 "100-599");
                return -1;
            }
            continue;
        }
        for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
            if (!strcmp(key, ints[i].name))
                break;
        if (i == sizeof(ints) / sizeof(ints[0])) {
            snprintf(why, n, "check members are type, port, path, status, interval_ms, "
                             "timeout_ms, rise and fall; \"%.40s\" is not one", key);
            return -1;
        }
        if (!json_is_integer(v) || json_integer_value(v) < ints[i].min ||
            json_integer_value(v) > ints[i].max) {
            snprintf(why, n, "check \"%s\" must be an integer in %lld..%lld", ints[i].name,
                     (long long)ints[i].min, (long long)ints[i].max);
            return -1;
        }
        *(unsigned *)((char *)&bc->check + ints[i].off) = (unsigned)json_integer_value(v);
    }
    return 0;
}

/*
 * The optional body of POST /backends/{ip}: {"lease_seconds": N, "check": {...}}. 0 to go on
 * (*lease set, 0 when absent; bc->given when a check came), -1 when res holds the 400/415.
 */
static int parse_register_body(const struct api_request *req, struct api_response *res,
                               unsigned *lease, struct body_check *bc)
{
    json_error_t jerr;
    json_t *doc, *v;
    const char *key;
    char why[300] = "";

    *lease = 0;
    memset(bc, 0, sizeof(*bc));
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
        if (!strcmp(key, "lease_seconds") && json_is_integer(v) && json_integer_value(v) >= 1 &&
            json_integer_value(v) <= REG_MAX_LEASE) {
            *lease = (unsigned)json_integer_value(v);
        } else if (!strcmp(key, "check")) {
            if (parse_check(v, bc, why, sizeof(why)))
                break;
        } else {
            snprintf(why, sizeof(why),
                     "the body may only hold \"lease_seconds\" (an integer in 1..%u) and "
                     "\"check\" (an object)",
                     REG_MAX_LEASE);
            break;
        }
    }
    json_decref(doc);
    if (!why[0] && bc->given)
        reg_check_valid(req->reg, &bc->check, why, sizeof(why));
    if (why[0]) {
        api_problem(res, req, RC_BAD_REQUEST, why);
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

/* Look ip up (heartbeat: renew its lease too) and answer 200; RC_NOT_REGISTERED leaves res
 * alone. */
static enum rc_code look(struct reg_registry *reg, const struct ip_addr *ip, int heartbeat,
                         struct api_response *res)
{
    struct reg_placement p;
    enum rc_code rc;

    memset(&p, 0, sizeof(p));
    rc = heartbeat ? reg_heartbeat(reg, ip, &p) : reg_lookup(reg, ip, &p);
    if (rc == RC_OK) {
        json_t *o = api_placement_json(reg, &p);
        /* A heartbeat says whether clients are sent to the backend now (served, not down or
         * draining), so a backend can tell "kept" from "kept but out of DNS". */
        if (heartbeat)
            json_object_set_new(o, "in_dns", json_boolean(p.state == REG_STATE_REGISTERED));
        json_ok(res, 200, o);
    }
    return rc;
}

static void say_unknown(const struct api_request *req, struct api_response *res,
                        const struct ip_addr *ip, int heartbeat)
{
    char txt[IP_TEXT_MAX], detail[96];
    snprintf(detail, sizeof(detail), "%s is not registered%s", ip_format(ip, txt),
             heartbeat ? " (or its lease ran out)" : "");
    api_problem(res, req, RC_NOT_REGISTERED, detail);
}

/* A lookup or heartbeat of an IP this replica does not know, waiting for a fresh read of the
 * zone (another replica may have registered it). */
struct recheck {
    struct api_async *async;
    struct reg_registry *reg;
    struct ip_addr ip;
    int heartbeat;
    char path[160];
    char request_id[32];
};

static void rechecked(void *arg, enum rc_code rc, const char *detail)
{
    struct recheck *rk = arg;
    struct api_request req;
    struct api_response res;
    char why[REG_DETAIL_MAX + 160], txt[IP_TEXT_MAX];
    unsigned long long gen = reg_generation(rk->reg);

    memset(&req, 0, sizeof(req));
    memset(&res, 0, sizeof(res));
    req.path = rk->path;
    req.request_id = rk->request_id;
    ip_format(&rk->ip, txt);
    if (rc) {
        snprintf(why, sizeof(why),
                 "%s is not known here, and reading Route 53 to check whether another replica "
                 "registered it failed: %s",
                 txt, detail);
        api_problem(&res, &req, rc, why);
    } else if (look(rk->reg, &rk->ip, rk->heartbeat, &res) != RC_OK) {
        say_unknown(&req, &res, &rk->ip, rk->heartbeat);
    }
    if (rk->heartbeat)
        snprintf(res.audit_target, sizeof(res.audit_target), "%s", txt);
    else
        api_watch_label(&req, &res, gen);
    api_async_complete(rk->async, &res);
    free(rk);
}

/* Answer from the index, or, for an IP it does not hold, once the zone was read again. */
static void look_or_recheck(const struct api_request *req, struct api_response *res,
                            const struct ip_addr *ip, int heartbeat)
{
    struct recheck *rk;
    enum rc_code rc;

    if (look(req->reg, ip, heartbeat, res) == RC_OK)
        return;
    rk = calloc(1, sizeof(*rk));
    if (!rk)
        abort();
    rk->async = req->async;
    rk->reg = req->reg;
    rk->ip = *ip;
    rk->heartbeat = heartbeat;
    snprintf(rk->path, sizeof(rk->path), "%s", req->path);
    snprintf(rk->request_id, sizeof(rk->request_id), "%s",
             req->request_id ? req->request_id : "");
    rc = reg_confirm(req->reg, rechecked, rk);
    if (rc == RC_OK) {
        res->status = API_PENDING;
        return;
    }
    free(rk);
    if (rc == RC_NOT_REGISTERED)
        say_unknown(req, res, ip, heartbeat);
    else {
        api_problem(res, req, rc,
                    "too many requests for unknown addresses are waiting for a read of "
                    "Route 53; retry");
        res->retry_after = 1;
    }
}

/* A watch's render of one backend: the index alone (no re-read of the zone). */
static void render_one(const struct api_request *req, struct api_response *res)
{
    struct ip_addr ip;
    if (parse_ip(req, res, &ip) == 0 && look(req->reg, &ip, 0, res) != RC_OK)
        say_unknown(req, res, &ip, 0);
}

static void render_self(const struct api_request *req, struct api_response *res)
{
    struct ip_addr ip;
    if (caller_ip(req, res, &ip) == 0 && look(req->reg, &ip, 0, res) != RC_OK)
        say_unknown(req, res, &ip, 0);
}

/* A lookup that waits for a change (watch.h), or one that may re-read the zone for an address
 * this replica does not know. */
static void get_one(const struct api_request *req, struct api_response *res,
                    const struct ip_addr *ip, api_render_fn render)
{
    unsigned long long gen;
    if (req->index || (req->wait && req->if_none_match)) {
        api_watch_serve(req, res, render, render == render_self);
        return;
    }
    if (api_watch_check(req, res))
        return;
    gen = reg_generation(req->reg);
    look_or_recheck(req, res, ip, 0);
    if (res->status != API_PENDING)
        api_watch_label(req, res, gen);
}

void api_backend_get(const struct api_request *req, struct api_response *res)
{
    struct ip_addr ip;
    if (parse_ip(req, res, &ip) == 0)
        get_one(req, res, &ip, render_one);
}

void api_backend_get_self(const struct api_request *req, struct api_response *res)
{
    struct ip_addr ip;
    if (caller_ip(req, res, &ip) == 0)
        get_one(req, res, &ip, render_self);
}

/* A mutation in flight: what the answer needs once the registry (and, with ?wait=insync,
 * the insync waiter) is done. */
struct pending {
    struct api_async *async;
    struct reg_registry *reg;
    char path[160];
    char request_id[32];
    int insync;
    unsigned insync_timeout_ms;
    int waited; /* res.rc, when set, is the insync waiter's: the change itself was made */
    int is_delete;
    unsigned lease; /* lease_seconds asked for, or 0 */
    struct body_check check;
    char ip[IP_TEXT_MAX];
    struct reg_result res;
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
        if ((pd->waited || r->rc == RC_UPSTREAM_TIMEOUT) && r->placement.change_id[0])
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

/* ?wait=insync: the insync waiter's answer (any thread, no lock held). Requests of one batch
 * share its change id, and the waiter shares its polls among them. */
static void on_insync(void *arg, enum rc_code rc, const char *detail)
{
    struct pending *pd = arg;
    if (rc) {
        pd->res.rc = rc;
        pd->waited = 1;
        snprintf(pd->res.detail, sizeof(pd->res.detail), "%s", detail);
    }
    answer(pd);
}

static void on_done(void *arg, const struct reg_result *res)
{
    struct pending *pd = arg;
    pd->res = *res;
    if (!pd->is_delete && res->rc == RC_OK) {
        /* The registry holds no lock while it completes: set the lease and the check asked
         * for, and show the backend's state (lease, health, drain times). */
        struct reg_placement p;
        enum rc_code rc;
        if (pd->check.given) {
            pd->check.check.path = pd->check.path[0] ? pd->check.path : NULL;
            rc = reg_set_check(pd->reg, &res->placement.ip, &pd->check.check, pd->res.detail,
                               sizeof(pd->res.detail));
            if (rc && rc != RC_NOT_REGISTERED)
                pd->res.rc = rc; /* validated before: not expected */
        }
        if (pd->lease) {
            memset(&p, 0, sizeof(p));
            reg_set_lease(pd->reg, &res->placement.ip, pd->lease, &p);
        }
        api_placement_enrich(pd->reg, &pd->res.placement);
    }
    if (pd->insync && res->rc == RC_OK && res->placement.change_id[0]) {
        /* No thread waits: the waiter calls on_insync, and the connection stays parked. */
        reg_wait_insync(pd->reg, res->placement.change_id, pd->insync_timeout_ms, on_insync,
                        pd);
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
    struct body_check check;
    char why[256], txt[IP_TEXT_MAX];

    ip_format(&ip, txt);
    memset(&check, 0, sizeof(check));
    if (parse_wait(req, res, &insync, &none))
        goto out;
    if (op == REG_OP_ADD && parse_register_body(req, res, &lease, &check))
        goto out;
    if (op == REG_OP_ADD && api_special_refusal(req, &ip, why, sizeof(why))) {
        api_problem(res, req, RC_SPECIAL_ADDRESS, why);
        goto out;
    }
    if (none && (lease || check.given)) {
        api_problem(res, req, RC_BAD_REQUEST,
                    "?wait=none takes no body: register first, then set the lease and the "
                    "check with a plain POST");
        goto out;
    }
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
    pd->check = check;
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

/* POST /backends/{ip}/drain: out of DNS at once, still registered (state draining). */
void api_backend_drain(const struct api_request *req, struct api_response *res)
{
    struct ip_addr ip;
    if (parse_ip(req, res, &ip) == 0)
        submit(req, res, REG_OP_DRAIN, &ip);
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

void api_backend_drain_self(const struct api_request *req, struct api_response *res)
{
    struct ip_addr ip;
    if (caller_ip(req, res, &ip) == 0)
        submit(req, res, REG_OP_DRAIN, &ip);
}

static int cmp_placement(const void *a, const void *b)
{
    return ip_cmp(&((const struct reg_placement *)a)->ip, &((const struct reg_placement *)b)->ip);
}

static int wants_detail(const struct api_request *req);

/* Every backend, sorted by address; with ?detail=true each with its lease and health. */
static void render_list(const struct api_request *req, struct api_response *res)
{
    int detail = wants_detail(req);
    struct reg_bucket_view *views = NULL;
    size_t nviews = reg_snapshot(req->reg, &views), total = 0, n = 0;
    struct reg_placement *all;
    json_t *arr = json_array();

    for (size_t i = 0; i < nviews; i++)
        total += views[i].rec.nvalues + views[i].down.nvalues + views[i].draining.nvalues;
    all = calloc(total ? total : 1, sizeof(*all));
    if (!all)
        abort();
    for (size_t i = 0; i < nviews; i++) {
        const struct reg_record *sets[] = {&views[i].rec, &views[i].down, &views[i].draining};
        static const enum reg_state states[] = {REG_STATE_REGISTERED, REG_STATE_DOWN,
                                                REG_STATE_DRAINING};
        for (size_t k = 0; k < 3; k++)
            for (size_t v = 0; v < sets[k]->nvalues; v++) {
                all[n].ip = sets[k]->values[v];
                all[n].type = views[i].rec.type;
                all[n].bucket = views[i].rec.bucket;
                all[n].weight = views[i].rec.weight;
                all[n].state = states[k];
                n++;
            }
    }
    qsort(all, total, sizeof(*all), cmp_placement);
    n = 0;
    for (size_t i = 0; i < total; i++) {
        size_t j = i + 1;
        while (j < total && ip_cmp(&all[j].ip, &all[i].ip) == 0)
            j++;
        if (j > i + 1) {
            /* An address in two buckets (until the repair removes the second copy): listed
             * once, where the registry keeps it (or the first copy, if it no longer knows). */
            struct reg_placement kept;
            size_t pick = i;
            if (reg_lookup(req->reg, &all[i].ip, &kept) == RC_OK)
                for (size_t k = i; k < j; k++)
                    if (all[k].bucket == kept.bucket) {
                        pick = k;
                        all[k].state = kept.state; /* two sets of one bucket: the index's */
                    }
            if (detail)
                api_placement_enrich(req->reg, &all[pick]);
            json_array_append_new(arr, api_placement_json(req->reg, &all[pick]));
            i = j - 1;
        } else {
            if (detail)
                api_placement_enrich(req->reg, &all[i]);
            json_array_append_new(arr, api_placement_json(req->reg, &all[i]));
        }
        n++;
    }
    free(all);
    reg_views_free(views, nviews);
    json_ok(res, 200, json_pack("{s:o, s:I}", "backends", arr, "count", (json_int_t)n));
}

static struct api_cache list_cache = API_CACHE_INIT;

/* ?detail=true: is it asked for? (the value was checked by api_backends_list) */
static int wants_detail(const struct api_request *req)
{
    return req->detail && (!strcmp(req->detail, "true") || !strcmp(req->detail, "1"));
}

static void serve_list(const struct api_request *req, struct api_response *res)
{
    if (wants_detail(req))
        render_list(req, res); /* leases and health change without a generation */
    else
        api_cache_serve(&list_cache, req, res, render_list);
}

void api_backends_list(const struct api_request *req, struct api_response *res)
{
    if (req->detail && strcmp(req->detail, "true") && strcmp(req->detail, "false") &&
        strcmp(req->detail, "1") && strcmp(req->detail, "0")) {
        api_problem(res, req, RC_BAD_REQUEST, "detail must be true or false");
        return;
    }
    api_watch_serve(req, res, serve_list, 0);
}

/* PUT /backends/self/heartbeat: the caller renews its own lease, without knowing its
 * address as r53reg sees it. */
void api_backend_heartbeat_self(const struct api_request *req, struct api_response *res)
{
    struct ip_addr ip;
    char txt[IP_TEXT_MAX];
    if (caller_ip(req, res, &ip))
        return;
    snprintf(res->audit_target, sizeof(res->audit_target), "%s", ip_format(&ip, txt));
    look_or_recheck(req, res, &ip, 1);
}

/* PUT /backends/{ip}/heartbeat: renew the backend's lease (or start --default-lease). */
void api_backend_heartbeat(const struct api_request *req, struct api_response *res)
{
    struct ip_addr ip;
    char why[256], txt[IP_TEXT_MAX];

    if (parse_ip(req, res, &ip))
        return;
    ip_format(&ip, txt);
    snprintf(res->audit_target, sizeof(res->audit_target), "%s", txt);
    if (api_change_refusal(req, &ip, 0, why, sizeof(why))) {
        api_problem(res, req, RC_FORBIDDEN, why);
        return;
    }
    look_or_recheck(req, res, &ip, 1);
}
