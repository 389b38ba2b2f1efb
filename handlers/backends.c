/*
 * backends.c: /backends and /backends/{ip}. Validates the IP strictly (util/ip.h), calls the
 * registry, renders placements. Thread-safe: all state is in the registry.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/api.h"
#include "registry/registry.h"
#include "util/ip.h"

static json_t *placement_json(const struct reg_registry *reg, const struct reg_placement *p)
{
    char ip[IP_TEXT_MAX], sid[REG_SET_ID_MAX + 1];
    reg_set_id(reg_options(reg), p->bucket, sid, sizeof(sid));
    return json_pack("{s:s, s:s, s:i, s:s, s:i, s:s}", "ip", ip_format(&p->ip, ip), "type",
                     reg_type_name(p->type), "bucket", (int)p->bucket, "set_identifier", sid,
                     "weight", (int)p->weight, "state",
                     p->state == REG_STATE_REGISTERED ? "registered" : "deregistered");
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

static void json_ok(struct api_response *res, int status, json_t *body)
{
    res->status = status;
    res->body = body;
    res->content_type = "application/json";
}

void api_backend_get(const struct api_request *req, struct api_response *res)
{
    struct ip_addr ip;
    struct reg_placement p;
    char txt[IP_TEXT_MAX], detail[96];

    if (parse_ip(req, res, &ip))
        return;
    if (reg_lookup(req->reg, &ip, &p) != RC_OK) {
        snprintf(detail, sizeof(detail), "%s is not registered", ip_format(&ip, txt));
        api_problem(res, req, RC_NOT_REGISTERED, detail);
        return;
    }
    json_ok(res, 200, placement_json(req->reg, &p));
}

void api_backend_register(const struct api_request *req, struct api_response *res)
{
    struct ip_addr ip;
    struct reg_placement p;
    char detail[REG_DETAIL_MAX] = "";
    int created = 0;
    enum rc_code rc;

    if (parse_ip(req, res, &ip))
        return;
    rc = reg_register(req->reg, &ip, &p, &created, detail, sizeof(detail));
    if (rc) {
        api_problem(res, req, rc, detail);
        return;
    }
    json_ok(res, created ? 201 : 200, placement_json(req->reg, &p));
    if (created) {
        char txt[IP_TEXT_MAX];
        snprintf(res->location, sizeof(res->location), "/backends/%s", ip_format(&ip, txt));
    }
}

void api_backend_deregister(const struct api_request *req, struct api_response *res)
{
    struct ip_addr ip;
    struct reg_placement p;
    char detail[REG_DETAIL_MAX] = "", txt[IP_TEXT_MAX];
    enum rc_code rc;

    if (parse_ip(req, res, &ip))
        return;
    rc = reg_deregister(req->reg, &ip, &p, detail, sizeof(detail));
    if (rc == RC_NOT_REGISTERED)
        snprintf(detail, sizeof(detail), "%s is not registered", ip_format(&ip, txt));
    if (rc) {
        api_problem(res, req, rc, detail);
        return;
    }
    json_ok(res, 200, placement_json(req->reg, &p));
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
        json_array_append_new(arr, placement_json(req->reg, &all[i]));
    free(all);
    reg_views_free(views, nviews);
    json_ok(res, 200, json_pack("{s:o, s:I}", "backends", arr, "count", (json_int_t)total));
}

static struct api_cache list_cache = API_CACHE_INIT;

void api_backends_list(const struct api_request *req, struct api_response *res)
{
    api_cache_serve(&list_cache, req, res, render_list);
}
