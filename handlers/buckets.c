/*
 * buckets.c: GET /buckets, the operator's view of what DNS serves: every existing bucket of
 * both types with its served values and the registered backends it keeps out of DNS (down,
 * draining), plus totals. Each bucket is copied under its own lock. In tree mode the buckets
 * are the children's (each names its child and group name) and `tree` lists the aliases at
 * the name that point at them.
 */
#include "handlers/buckets.h"

#include "handlers/cache.h"
#include "handlers/watch.h"
#include "registry/registry.h"
#include "util/xalloc.h"

static json_t *ip_array(const struct reg_record *r, char *txt)
{
    json_t *vals = json_array();
    for (size_t v = 0; v < r->nvalues; v++)
        json_array_append_new(vals, json_string(ip_format(&r->values[v], txt)));
    return vals;
}

/* A bucket that takes new addresses now (the name's own, or a child's once its type is served
 * through the tree). */
static int eligible(struct reg_registry *reg, enum reg_type t, unsigned slot)
{
    return reg_slot_bucket(slot) < reg_options(reg)->buckets &&
           (reg_slot_child(slot) >= 0) == !!reg_tree_on(reg, t);
}

/* The tree's top level: each alias with its child, its weight and what the child serves. */
static json_t *tree_json(const struct api_request *req, const size_t (*served)[REG_TREE_CHILDREN])
{
    const struct reg_options *opt = reg_options(req->reg);
    struct reg_alias_view a[REG_TREE_CHILDREN];
    json_t *arr = json_array();
    char name[REG_NAME_MAX + 1], sid[REG_SET_ID_MAX + 1];
    for (int t = 0; t < 2; t++) {
        size_t n = reg_tree_aliases(req->reg, (enum reg_type)t, a);
        for (size_t i = 0; i < n; i++) {
            reg_child_name(opt, a[i].child, name, sizeof(name));
            reg_alias_set_id(opt, a[i].child, sid, sizeof(sid));
            json_array_append_new(
                arr, json_pack("{s:s, s:s, s:i, s:s, s:i, s:I}", "set_identifier", sid, "type",
                               reg_type_name((enum reg_type)t), "child", (int)a[i].child,
                               "target", name, "weight", (int)a[i].weight, "served",
                               (json_int_t)served[t][a[i].child]));
        }
    }
    return json_pack("{s:s, s:o}", "label", reg_tree_label(opt), "aliases", arr);
}

static void render(const struct api_request *req, struct api_response *res)
{
    const struct reg_options *opt = reg_options(req->reg);
    struct reg_bucket_view *views = NULL;
    size_t n = reg_snapshot(req->reg, &views), count[2] = {0, 0}, down = 0, draining = 0;
    unsigned cap[2] = {reg_capacity(opt, REG_A), reg_capacity(opt, REG_AAAA)};
    unsigned ttl[2] = {reg_ttl(req->reg, REG_A), reg_ttl(req->reg, REG_AAAA)};
    /* Free slots from the same snapshot: every eligible bucket holds its type's capacity. */
    long long free_slots = (long long)opt->buckets * (cap[0] + cap[1]) *
                           (opt->tree ? REG_TREE_CHILDREN : 1);
    json_t *arr = json_array();
    char sid[REG_SET_ID_MAX + 1], txt[IP_TEXT_MAX], name[REG_NAME_MAX + 1];
    size_t(*served)[REG_TREE_CHILDREN] = xcalloc(2, sizeof(*served));

    for (size_t i = 0; i < n; i++) {
        const struct reg_record *r = &views[i].rec;
        size_t used = r->nvalues + views[i].down.nvalues + views[i].draining.nvalues;
        json_t *o;
        reg_set_id(opt, r->bucket, sid, sizeof(sid));
        o = json_pack("{s:s, s:s, s:i, s:i, s:I, s:o, s:I, s:i, s:b}", "set_identifier", sid,
                      "type", reg_type_name(r->type), "bucket", (int)r->bucket, "weight",
                      (int)r->weight, "ttl", (json_int_t)ttl[r->type], "values", ip_array(r, txt),
                      "count", (json_int_t)r->nvalues, "capacity", (int)views[i].capacity,
                      "accepting", views[i].accepting);
        if (r->nvalues)
            json_object_set_new(o, "ttl", json_integer((json_int_t)r->ttl));
        if (reg_slot_child(r->bucket) >= 0) {
            int child = reg_slot_child(r->bucket);
            reg_slot_name(opt, r->bucket, REG_KIND_SERVED, name, sizeof(name));
            json_object_set_new(o, "child", json_integer(child));
            json_object_set_new(o, "name", json_string(name));
            served[r->type][child] += r->nvalues;
        }
        json_object_set_new(o, "answer_bytes", json_integer((json_int_t)views[i].answer_bytes));
        /* Registered but out of DNS: they keep their place in the bucket. */
        json_object_set_new(o, "down", ip_array(&views[i].down, txt));
        json_object_set_new(o, "draining", ip_array(&views[i].draining, txt));
        json_array_append_new(arr, o);
        count[r->type] += used;
        down += views[i].down.nvalues;
        draining += views[i].draining.nvalues;
        if (eligible(req->reg, r->type, r->bucket))
            free_slots -= (long long)(used < cap[r->type] ? used : cap[r->type]);
    }
    reg_views_free(views, n);
    res->status = 200;
    res->content_type = "application/json";
    res->body = json_pack(
        "{s:s, s:I, s:{s:I, s:I}, s:{s:I, s:I}, s:I, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
        "record_name", opt->record_name, "ttl", (json_int_t)ttl[REG_A], "ttls", "a",
        (json_int_t)ttl[REG_A], "aaaa", (json_int_t)ttl[REG_AAAA], "capacity_per_bucket", "a",
        (json_int_t)cap[REG_A], "aaaa", (json_int_t)cap[REG_AAAA], "max_answer_bytes",
        (json_int_t)(opt->max_answer_bytes ? opt->max_answer_bytes : REG_ANSWER_BYTES_DEFAULT),
        "buckets", arr, "totals", "backends", (json_int_t)(count[0] + count[1]), "a",
        (json_int_t)count[0], "aaaa", (json_int_t)count[1], "down", (json_int_t)down, "draining",
        (json_int_t)draining, "buckets", (json_int_t)n, "capacity", (json_int_t)free_slots);
    if (opt->tree && res->body)
        json_object_set_new(res->body, "tree",
                            tree_json(req, (const size_t(*)[REG_TREE_CHILDREN])served));
    free(served);
}

static struct api_cache cache = API_CACHE_INIT;

static void serve(const struct api_request *req, struct api_response *res)
{
    api_cache_serve(&cache, req, res, render);
}

void api_buckets_list(const struct api_request *req, struct api_response *res)
{
    api_watch_serve(req, res, serve, 0);
}
