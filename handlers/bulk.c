/*
 * bulk.c: POST, DELETE and PUT /backends with a JSON list of IPs (see bulk.h).
 *
 * A request is validated whole before anything is submitted: the body's media type, its JSON,
 * its shape, the item count, every item (strict util/ip.h parser) and duplicates. Any bad
 * item refuses the request (400 listing every bad item with its index); nothing changes.
 *
 * Then a registration or PUT that lists a loopback, link-local or this-network address is
 * refused unless --allow-special (api_special_refusal(): 400 listing every such item); nothing
 * changes.
 *
 * Then every item is checked against what the caller may change (api_change_refusal(): a self
 * token only its own address, --allow-cidr for what is registered; PUT with a self token is
 * refused by the server before it gets here): any refused item refuses the request (403
 * listing every refused item); nothing changes.
 *
 * Then every item is handed to the registry with reg_submit() (PUT: the removals first, then
 * the desired set) and the request waits, parked, for all of them. Each completion records
 * its outcome in its item under the request's mutex and drops one reference; the handler
 * holds one more reference while it submits, so the answer cannot be built before the last
 * item was submitted. Whoever drops the last reference (the committer thread, or the handler
 * when everything completed at once) builds the answer and completes the parked request, or,
 * with ?wait=none, records it as the change's result (handlers/changes.h).
 *
 * Threading: a request's state is touched by its handler and by the completions of its items
 * (any thread); b->lock guards what they share. Completions call nothing in the registry.
 */
#include "handlers/bulk.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/changes.h"
#include "handlers/placement.h"
#include "handlers/request.h"
#include "registry/registry.h"
#include "util/ip.h"
#include "util/xalloc.h"

#define VALUE_ECHO_MAX 64 /* bytes of an invalid item repeated in the 400 */

enum kind { BULK_REGISTER, BULK_DEREGISTER, BULK_REPLACE };

struct bulk;

struct item {
    struct bulk *b;
    struct ip_addr ip;
    enum reg_op op;
    /* written once by the item's completion, under b->lock */
    enum rc_code rc;
    int created;
    unsigned bucket;
    unsigned weight;
    enum reg_state state; /* added: where it is (a down backend stays down) */
    int change;   /* index into b->ids, or -1 */
    char *detail; /* on error; owned */
};

struct bulk {
    enum kind kind;
    struct reg_registry *reg;
    struct api_async *async;               /* synchronous: the parked request, else NULL */
    char change_id[API_CHANGE_ID_LEN + 1]; /* ?wait=none: the change to finish, else "" */
    char request_id[32];
    size_t n;
    struct item *items; /* PUT: the removals first, then the desired set */

    pthread_mutex_t lock;
    /* guarded by lock */
    size_t refs;                    /* items not completed, plus one while the handler submits */
    char (*ids)[REG_CHANGE_ID_MAX]; /* the store's change ids seen, distinct */
    size_t nids, capids;
    int last_id; /* index of the id of the latest completion that changed something */
};

/* ---- rendering ---------------------------------------------------------------------------- */

static json_t *item_placement(const struct bulk *b, const struct item *it)
{
    struct reg_placement p;
    memset(&p, 0, sizeof(p));
    p.ip = it->ip;
    p.type = reg_type_of(&it->ip);
    p.bucket = it->bucket;
    p.weight = it->weight;
    p.state = it->op == REG_OP_ADD ? it->state : REG_STATE_DEREGISTERED;
    if (it->change >= 0)
        memcpy(p.change_id, b->ids[it->change], sizeof(p.change_id));
    return api_placement_json(b->reg, &p);
}

/* The problem the single-IP request would have answered; *status gets its HTTP status. */
static json_t *item_problem(const struct bulk *b, const struct item *it, int *status)
{
    struct api_request req;
    struct api_response res;
    char path[16 + IP_TEXT_MAX], txt[IP_TEXT_MAX];

    memset(&req, 0, sizeof(req));
    memset(&res, 0, sizeof(res));
    snprintf(path, sizeof(path), "/backends/%s", ip_format(&it->ip, txt));
    req.path = path;
    req.request_id = b->request_id;
    api_problem(&res, &req, it->rc, it->detail);
    *status = res.status;
    return res.body;
}

/* {"ip", "status", "placement"} or {"ip", "status", "problem"}. */
static json_t *item_json(const struct bulk *b, const struct item *it)
{
    char txt[IP_TEXT_MAX];
    json_t *o = json_pack("{s:s}", "ip", ip_format(&it->ip, txt));
    if (it->rc) {
        int status;
        json_t *p = item_problem(b, it, &status);
        json_object_set_new(o, "status", json_integer(status));
        json_object_set_new(o, "problem", p);
    } else {
        int status = it->op == REG_OP_ADD && it->created ? 201 : 200;
        json_object_set_new(o, "status", json_integer(status));
        json_object_set_new(o, "placement", item_placement(b, it));
    }
    return o;
}

/* The answer of a whole request; *failed counts the items that failed. */
static json_t *answer_json(const struct bulk *b, size_t *failed)
{
    size_t good = 0, other = 0;
    json_t *body;

    *failed = 0;
    if (b->kind != BULK_REPLACE) {
        json_t *results = json_array();
        for (size_t i = 0; i < b->n; i++) {
            const struct item *it = &b->items[i];
            json_array_append_new(results, item_json(b, it));
            if (it->rc == RC_OK && (it->op == REG_OP_REMOVE || it->created))
                good++;
            else if (it->rc == RC_OK || it->rc == RC_NOT_REGISTERED)
                other++;
            else
                (*failed)++;
        }
        if (b->kind == BULK_REGISTER)
            body =
                json_pack("{s:o, s:I, s:I, s:I}", "results", results, "created", (json_int_t)good,
                          "unchanged", (json_int_t)other, "failed", (json_int_t)*failed);
        else
            body =
                json_pack("{s:o, s:I, s:I, s:I}", "results", results, "removed", (json_int_t)good,
                          "not_registered", (json_int_t)other, "failed", (json_int_t)*failed);
        return body;
    }
    {
        json_t *added = json_array(), *removed = json_array(), *bad = json_array();
        for (size_t i = 0; i < b->n; i++) {
            const struct item *it = &b->items[i];
            if (it->rc == RC_OK && it->op == REG_OP_ADD && !it->created) {
                other++;
            } else if (it->rc == RC_OK) {
                json_array_append_new(it->op == REG_OP_ADD ? added : removed,
                                      item_placement(b, it));
            } else if (!(it->op == REG_OP_REMOVE && it->rc == RC_NOT_REGISTERED)) {
                /* (a removal that found the IP gone already has nothing to report) */
                char txt[IP_TEXT_MAX];
                int status;
                json_t *p = item_problem(b, it, &status);
                json_array_append_new(
                    bad, json_pack("{s:s, s:s, s:o}", "ip", ip_format(&it->ip, txt), "op",
                                   it->op == REG_OP_ADD ? "add" : "remove", "problem", p));
                (*failed)++;
            }
        }
        return json_pack("{s:o, s:o, s:I, s:o}", "added", added, "removed", removed, "unchanged",
                         (json_int_t)other, "failed", bad);
    }
}

/* Everything completed: answer (or record the change) and free b. */
static void finish(struct bulk *b)
{
    size_t failed;
    json_t *body = answer_json(b, &failed);

    if (b->async) {
        struct api_response res;
        size_t off = 0;
        memset(&res, 0, sizeof(res));
        res.status = 200;
        res.content_type = "application/json";
        res.body = body;
        res.audit_list = 1;
        res.audit_items = b->n;
        for (size_t i = 0; i < b->nids; i++) {
            size_t len = strlen(b->ids[i]);
            if (off + len + 2 + 3 >= sizeof(res.audit_change_id)) {
                snprintf(res.audit_change_id + off, sizeof(res.audit_change_id) - off, "...");
                break;
            }
            off += (size_t)snprintf(res.audit_change_id + off, sizeof(res.audit_change_id) - off,
                                    "%s%s", i ? "," : "", b->ids[i]);
        }
        api_async_complete(b->async, &res);
    } else {
        api_changes_finish(b->change_id, failed > 0, 200, body,
                           b->last_id >= 0 ? b->ids[b->last_id] : NULL);
    }
    for (size_t i = 0; i < b->n; i++)
        free(b->items[i].detail);
    free(b->items);
    free(b->ids);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

static void release(struct bulk *b)
{
    int last;
    pthread_mutex_lock(&b->lock);
    last = --b->refs == 0;
    pthread_mutex_unlock(&b->lock);
    if (last)
        finish(b);
}

/* Remember a store change id; returns its index. Caller holds b->lock. */
static int note_change_id(struct bulk *b, const char *id)
{
    if (b->last_id >= 0 && !strcmp(b->ids[b->last_id], id))
        return b->last_id;
    for (size_t i = 0; i < b->nids; i++)
        if (!strcmp(b->ids[i], id))
            return (int)i;
    b->ids = xgrow(b->ids, &b->capids, b->nids + 1, sizeof(*b->ids));
    snprintf(b->ids[b->nids], sizeof(b->ids[0]), "%s", id);
    return (int)b->nids++;
}

static void item_done(void *arg, const struct reg_result *r)
{
    struct item *it = arg;
    struct bulk *b = it->b;
    int last;

    pthread_mutex_lock(&b->lock);
    it->rc = r->rc;
    it->created = r->created;
    it->bucket = r->placement.bucket;
    it->weight = r->placement.weight;
    it->state = r->placement.state;
    it->change = -1;
    if (r->rc)
        it->detail = xstrdup(r->detail);
    else if (r->placement.change_id[0])
        it->change = b->last_id = note_change_id(b, r->placement.change_id);
    last = --b->refs == 0;
    pthread_mutex_unlock(&b->lock);
    if (last)
        finish(b);
}

/* ---- validation --------------------------------------------------------------------------- */

struct sorted_ip {
    struct ip_addr ip;
    size_t index;
};

static int cmp_sorted(const void *a, const void *b)
{
    const struct sorted_ip *x = a, *y = b;
    int c = ip_cmp(&x->ip, &y->ip);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int cmp_ip(const void *a, const void *b)
{
    return ip_cmp(a, b);
}

/* The value of an invalid item, cut at a character boundary, or NULL when not a string. */
static json_t *echo_value(const json_t *v)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (!s)
        return NULL;
    if (n > VALUE_ECHO_MAX) {
        n = VALUE_ECHO_MAX;
        while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    return json_stringn(s, n);
}

/*
 * Check every item of list; on success *ips (n of them, owned by the caller) holds the
 * parsed addresses in order. Otherwise res holds a 400 listing every bad item.
 */
static int parse_items(const struct api_request *req, struct api_response *res, json_t *list,
                       struct ip_addr **ips)
{
    size_t n = json_array_size(list), nbad = 0, nsorted = 0;
    struct ip_addr *out = xcalloc(n ? n : 1, sizeof(*out));
    char **why = xcalloc(n ? n : 1, sizeof(*why));
    struct sorted_ip *sorted = xcalloc(n ? n : 1, sizeof(*sorted));
    char detail[200];

    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(list, i);
        if (!json_is_string(v)) {
            why[i] = xstrdup("not a string: every item must be an IP address in canonical "
                             "text form");
            continue;
        }
        if (ip_parse(json_string_value(v), json_string_length(v), &out[i], detail,
                     sizeof(detail)) != RC_OK) {
            why[i] = xstrdup(detail);
            continue;
        }
        sorted[nsorted].ip = out[i];
        sorted[nsorted++].index = i;
    }
    qsort(sorted, nsorted, sizeof(*sorted), cmp_sorted);
    for (size_t k = 1, first = 0; k < nsorted; k++) {
        if (ip_cmp(&sorted[k].ip, &sorted[first].ip) != 0) {
            first = k;
            continue;
        }
        snprintf(detail, sizeof(detail), "duplicate of item %zu: each IP may appear once",
                 sorted[first].index);
        why[sorted[k].index] = xstrdup(detail);
    }
    for (size_t i = 0; i < n; i++)
        nbad += why[i] != NULL;
    if (nbad) {
        json_t *errors = json_array();
        for (size_t i = 0; i < n; i++) {
            json_t *e, *val;
            if (!why[i])
                continue;
            e = json_pack("{s:I, s:s}", "index", (json_int_t)i, "detail", why[i]);
            val = echo_value(json_array_get(list, i));
            if (val)
                json_object_set_new(e, "value", val);
            json_array_append_new(errors, e);
        }
        snprintf(detail, sizeof(detail),
                 "%zu of %zu item(s) are not usable backend addresses (see errors); nothing "
                 "was submitted",
                 nbad, n);
        api_problem(res, req, RC_INVALID_IP, detail);
        json_object_set_new(res->body, "errors", errors);
        free(out);
        out = NULL;
    }
    for (size_t i = 0; i < n; i++)
        free(why[i]);
    free(why);
    free(sorted);
    *ips = out;
    return out ? 0 : -1;
}

struct parsed {
    struct ip_addr *ips; /* owned */
    size_t n;
    int wait_none;
};

/* Validate a bulk request. 0 with p filled, or -1 with res holding the problem. */
static int parse_request(const struct api_request *req, struct api_response *res, enum kind kind,
                         struct parsed *p)
{
    json_t *root = NULL, *list = NULL;
    json_error_t err;
    int allow_empty = 0, rc = -1;
    char detail[320];

    memset(p, 0, sizeof(*p));
    if (req->wait) {
        if (strcmp(req->wait, "none") != 0) {
            api_problem(res, req, RC_BAD_REQUEST,
                        "wait must be 'none' (or absent) here; ?wait=insync is offered by "
                        "/backends/{ip} only");
            goto out;
        }
        p->wait_none = 1;
    }
    if (!api_media_is_json(req->content_type)) {
        snprintf(detail, sizeof(detail), "the body must be application/json (Content-Type: %.64s)",
                 req->content_type ? req->content_type : "absent");
        api_problem(res, req, RC_UNSUPPORTED_MEDIA_TYPE, detail);
        goto out;
    }
    if (!req->body || !req->body_len) {
        api_problem(res, req, RC_BAD_REQUEST,
                    "a JSON body is required: {\"backends\": [\"192.0.2.10\", ...]}");
        goto out;
    }
    root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        snprintf(detail, sizeof(detail), "malformed JSON at line %d, column %d: %s", err.line,
                 err.column, err.text);
        api_problem(res, req, RC_BAD_REQUEST, detail);
        goto out;
    }
    if (json_is_array(root)) {
        list = root;
    } else if (json_is_object(root)) {
        const char *key;
        json_t *v;
        json_object_foreach(root, key, v)
        {
            if (!strcmp(key, "backends")) {
                list = v;
            } else if (kind == BULK_REPLACE && !strcmp(key, "allow_empty")) {
                if (!json_is_boolean(v)) {
                    api_problem(res, req, RC_BAD_REQUEST, "allow_empty must be true or false");
                    goto out;
                }
                allow_empty = json_is_true(v);
            } else {
                snprintf(detail, sizeof(detail),
                         "unknown member \"%.64s\"; the body is "
                         "{\"backends\": [...]%s}",
                         key, kind == BULK_REPLACE ? ", \"allow_empty\": true|false" : "");
                api_problem(res, req, RC_BAD_REQUEST, detail);
                goto out;
            }
        }
        if (!json_is_array(list)) {
            api_problem(res, req, RC_BAD_REQUEST,
                        list ? "\"backends\" must be an array of IP addresses"
                             : "the body has no \"backends\" member: "
                               "{\"backends\": [\"192.0.2.10\", ...]}");
            goto out;
        }
    } else {
        api_problem(res, req, RC_BAD_REQUEST,
                    "the body must be {\"backends\": [...]} or a JSON array of IP addresses");
        goto out;
    }
    p->n = json_array_size(list);
    if (p->n > API_BULK_MAX_ITEMS) {
        snprintf(detail, sizeof(detail),
                 "at most %d backends per request, this one lists %zu: split it (nothing was "
                 "submitted)",
                 API_BULK_MAX_ITEMS, p->n);
        api_problem(res, req, RC_BODY_TOO_LARGE, detail);
        goto out;
    }
    if (parse_items(req, res, list, &p->ips))
        goto out;
    if (kind == BULK_REPLACE && p->n == 0 && !allow_empty) {
        api_problem(res, req, RC_BAD_REQUEST,
                    "an empty desired set would deregister every backend; send "
                    "{\"backends\": [], \"allow_empty\": true} to mean it");
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    if (rc) {
        free(p->ips);
        p->ips = NULL;
    }
    return rc;
}

/* ---- the handlers ------------------------------------------------------------------------- */

/* PUT: the registered IPs (both types) that are not in the desired set, sorted. */
static struct ip_addr *unwanted(struct reg_registry *reg, const struct ip_addr *desired,
                                size_t ndesired, size_t *n)
{
    struct ip_addr *want = xcalloc(ndesired ? ndesired : 1, sizeof(*want));
    struct reg_bucket_view *views = NULL;
    size_t nviews = reg_snapshot(reg, &views), total = 0, k = 0;
    struct ip_addr *out;

    memcpy(want, desired, ndesired * sizeof(*want));
    qsort(want, ndesired, sizeof(*want), cmp_ip);
    for (size_t i = 0; i < nviews; i++)
        total += views[i].rec.nvalues + views[i].down.nvalues + views[i].draining.nvalues;
    out = xcalloc(total ? total : 1, sizeof(*out));
    for (size_t i = 0; i < nviews; i++) {
        /* Down and draining backends are registered too. */
        const struct reg_record *sets[] = {&views[i].rec, &views[i].down, &views[i].draining};
        for (size_t s = 0; s < 3; s++)
            for (size_t v = 0; v < sets[s]->nvalues; v++)
                if (!bsearch(&sets[s]->values[v], want, ndesired, sizeof(*want), cmp_ip))
                    out[k++] = sets[s]->values[v];
    }
    reg_views_free(views, nviews);
    free(want);
    qsort(out, k, sizeof(*out), cmp_ip);
    *n = k;
    return out;
}

/* Refuse a registration or PUT (400 special-address listing every such item) that would
 * register a loopback, link-local or this-network address without --allow-special; 0 when
 * none does. Removals are never refused. */
static int check_special(const struct api_request *req, struct api_response *res, enum kind kind,
                         const struct parsed *p)
{
    json_t *errors = NULL;
    size_t nbad = 0;
    char why[256], first[256] = "", detail[400], txt[IP_TEXT_MAX];

    for (size_t i = 0; kind != BULK_DEREGISTER && i < p->n; i++) {
        if (!api_special_refusal(req, &p->ips[i], why, sizeof(why)))
            continue;
        if (!errors)
            errors = json_array();
        if (!nbad++)
            snprintf(first, sizeof(first), "%s", why);
        json_array_append_new(errors, json_pack("{s:I, s:s, s:s}", "index", (json_int_t)i, "value",
                                                ip_format(&p->ips[i], txt), "detail", why));
    }
    if (!nbad)
        return 0;
    snprintf(detail, sizeof(detail),
             "%s (%zu of %zu item(s) refused, see errors); nothing was submitted", first, nbad,
             p->n);
    api_problem(res, req, RC_SPECIAL_ADDRESS, detail);
    json_object_set_new(res->body, "errors", errors);
    return -1;
}

/* Refuse the request (403 listing every refused item) when the caller may not change one of
 * the listed addresses; 0 when it may change them all. */
static int check_allowed(const struct api_request *req, struct api_response *res, enum kind kind,
                         const struct parsed *p)
{
    json_t *errors = NULL;
    size_t nbad = 0;
    char why[256], first[256] = "", detail[400], txt[IP_TEXT_MAX];

    if (kind == BULK_REPLACE && req->self_only) {
        snprintf(detail, sizeof(detail), "token '%s' has scope self: PUT /backends may change "
                 "every address and needs an admin token", req->token_name ? req->token_name
                                                                          : "-");
        api_problem(res, req, RC_FORBIDDEN, detail);
        return -1;
    }
    for (size_t i = 0; i < p->n; i++) {
        if (!api_change_refusal(req, &p->ips[i], kind != BULK_DEREGISTER, why, sizeof(why)))
            continue;
        if (!errors)
            errors = json_array();
        if (!nbad++)
            snprintf(first, sizeof(first), "%s", why);
        json_array_append_new(errors, json_pack("{s:I, s:s, s:s}", "index", (json_int_t)i,
                                                "value", ip_format(&p->ips[i], txt), "detail",
                                                why));
    }
    if (!nbad)
        return 0;
    snprintf(detail, sizeof(detail), "%s (%zu of %zu item(s) refused, see errors); nothing was "
             "submitted", first, nbad, p->n);
    api_problem(res, req, RC_FORBIDDEN, detail);
    json_object_set_new(res->body, "errors", errors);
    return -1;
}

static void run(const struct api_request *req, struct api_response *res, enum kind kind)
{
    struct parsed p;
    struct bulk *b;
    struct ip_addr *gone = NULL;
    size_t ngone = 0, k = 0;

    if (parse_request(req, res, kind, &p))
        return;
    res->audit_list = 1;
    res->audit_items = p.n;
    if (check_special(req, res, kind, &p) || check_allowed(req, res, kind, &p)) {
        free(p.ips);
        return;
    }
    if (kind == BULK_REPLACE)
        gone = unwanted(req->reg, p.ips, p.n, &ngone);
    b = xcalloc(1, sizeof(*b));
    b->kind = kind;
    b->reg = req->reg;
    b->last_id = -1;
    snprintf(b->request_id, sizeof(b->request_id), "%s", req->request_id ? req->request_id : "");
    pthread_mutex_init(&b->lock, NULL);
    b->n = ngone + p.n;
    b->items = xcalloc(b->n ? b->n : 1, sizeof(*b->items));
    for (size_t i = 0; i < ngone; i++, k++) {
        b->items[k].ip = gone[i];
        b->items[k].op = REG_OP_REMOVE;
    }
    for (size_t i = 0; i < p.n; i++, k++) {
        b->items[k].ip = p.ips[i];
        b->items[k].op = kind == BULK_DEREGISTER ? REG_OP_REMOVE : REG_OP_ADD;
    }
    free(gone);
    free(p.ips);
    for (size_t i = 0; i < b->n; i++) {
        b->items[i].b = b;
        b->items[i].change = -1;
    }
    b->refs = b->n + 1; /* + the handler's, dropped once everything was submitted */
    if (p.wait_none) {
        api_changes_create(req, b->change_id);
        api_changes_accepted(res, b->change_id);
        res->audit_list = 1;
        res->audit_items = b->n;
    } else {
        b->async = req->async;
        res->status = API_PENDING; /* before any completion can answer */
    }
    {
        size_t n = b->n;
        struct item *items = b->items;
        struct reg_registry *reg = b->reg;
        /* PUT states the registered set: a desired backend that is draining or down stays so
         * (REG_OP_ENSURE); POST registers, which returns a draining one to service. */
        enum reg_op add = kind == BULK_REPLACE ? REG_OP_ENSURE : REG_OP_ADD;
        /* b stays alive until release() below: the handler's reference. */
        for (size_t i = 0; i < n; i++)
            reg_submit(reg, items[i].op == REG_OP_ADD ? add : items[i].op, &items[i].ip,
                       item_done, &items[i]);
    }
    release(b);
}

void api_backends_register_bulk(const struct api_request *req, struct api_response *res)
{
    run(req, res, BULK_REGISTER);
}

void api_backends_deregister_bulk(const struct api_request *req, struct api_response *res)
{
    run(req, res, BULK_DEREGISTER);
}

void api_backends_replace(const struct api_request *req, struct api_response *res)
{
    run(req, res, BULK_REPLACE);
}
