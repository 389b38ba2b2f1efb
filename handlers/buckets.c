/*
 * buckets.c: GET /buckets, the operator's view of what DNS serves: every existing bucket of
 * both types with its values, plus totals. Each bucket is copied under its own lock.
 */
#include <pthread.h>

#include "handlers/api.h"
#include "registry/registry.h"

static void render(const struct api_request *req, struct api_response *res)
{
    const struct reg_options *opt = reg_options(req->reg);
    struct reg_bucket_view *views = NULL;
    size_t n = reg_snapshot(req->reg, &views), count[2] = {0, 0};
    /* Free slots from the same snapshot: every eligible bucket holds max_per_bucket. */
    long long free_slots = 2LL * opt->buckets * opt->max_per_bucket;
    json_t *arr = json_array();
    char sid[REG_SET_ID_MAX + 1], txt[IP_TEXT_MAX];

    for (size_t i = 0; i < n; i++) {
        const struct reg_record *r = &views[i].rec;
        json_t *vals = json_array();
        for (size_t v = 0; v < r->nvalues; v++)
            json_array_append_new(vals, json_string(ip_format(&r->values[v], txt)));
        reg_set_id(opt, r->bucket, sid, sizeof(sid));
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:i, s:i, s:I, s:o, s:I, s:i, s:b}", "set_identifier",
                           sid, "type", reg_type_name(r->type), "bucket", (int)r->bucket,
                           "weight", (int)r->weight, "ttl", (json_int_t)r->ttl, "values", vals,
                           "count", (json_int_t)r->nvalues, "capacity", (int)views[i].capacity,
                           "accepting", views[i].accepting));
        count[r->type] += r->nvalues;
        if (r->bucket < opt->buckets)
            free_slots -= (long long)(r->nvalues < opt->max_per_bucket ? r->nvalues
                                                                       : opt->max_per_bucket);
    }
    reg_views_free(views, n);
    res->status = 200;
    res->content_type = "application/json";
    res->body = json_pack(
        "{s:s, s:I, s:o, s:{s:I, s:I, s:I, s:I, s:I}}", "record_name", opt->record_name, "ttl",
        (json_int_t)opt->ttl, "buckets", arr, "totals", "backends",
        (json_int_t)(count[0] + count[1]), "a", (json_int_t)count[0], "aaaa",
        (json_int_t)count[1], "buckets", (json_int_t)n, "capacity",
        (json_int_t)free_slots);
}

static struct api_cache cache = API_CACHE_INIT;

void api_buckets_list(const struct api_request *req, struct api_response *res)
{
    api_cache_serve(&cache, req, res, render);
}
