/*
 * ttl.c: PUT /ttl (handlers/ttl.h). Parses {"ttl": N}, calls reg_set_ttl_async() and renders the
 * account of each weighted group: its name, type, TTL before and after, sets, values and the
 * store's change id.
 */
#include "handlers/ttl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/request.h"
#include "registry/registry.h"

/* The TTL asked for: 0 to go on, -1 when res holds the 400/415. */
static int parse_ttl(const struct api_request *req, struct api_response *res, unsigned *ttl)
{
    json_error_t jerr;
    json_t *doc = NULL, *v;
    char why[256] = "";

    memset(&jerr, 0, sizeof(jerr));
    snprintf(jerr.text, sizeof(jerr.text), "the body is empty");
    if (!api_media_is_json(req->content_type)) {
        api_problem(res, req, RC_UNSUPPORTED_MEDIA_TYPE,
                    "the body must be JSON (Content-Type: application/json), like {\"ttl\": 60}");
        return -1;
    }
    if (req->body && req->body_len)
        doc = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    v = json_is_object(doc) && json_object_size(doc) == 1 ? json_object_get(doc, "ttl") : NULL;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > API_TTL_MAX)
        snprintf(why, sizeof(why),
                 "the body must be a JSON object holding only \"ttl\", an integer in "
                 "0..%lld (seconds)%s%.120s",
                 API_TTL_MAX, doc ? "" : ": ", doc ? "" : jerr.text);
    else
        *ttl = (unsigned)json_integer_value(v);
    json_decref(doc);
    if (why[0]) {
        api_problem(res, req, RC_BAD_REQUEST, why);
        return -1;
    }
    return 0;
}

/* A PUT /ttl in flight on the registry's thread: what the answer needs. */
struct ttl_pending {
    struct api_async *async;
    struct reg_registry *reg;
    unsigned ttl;
    char path[64];
    char request_id[32];
};

static void ttl_done(void *arg, enum rc_code rc, const struct reg_ttl_group *groups, size_t ng,
                     const char *detail)
{
    struct ttl_pending *tp = arg;
    const struct reg_options *opt = reg_options(tp->reg);
    struct api_request req;
    struct api_response res;
    char name[REG_NAME_MAX + 16];
    json_t *arr;

    memset(&req, 0, sizeof(req));
    memset(&res, 0, sizeof(res));
    req.path = tp->path;
    req.request_id = tp->request_id;
    if (rc) {
        api_problem(&res, &req, rc, detail);
    } else {
        arr = json_array();
        for (size_t i = 0; i < ng; i++) {
            json_t *g;
            snprintf(name, sizeof(name), "%s%s", reg_kind_prefix(groups[i].kind),
                     opt->record_name);
            g = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "name", name, "type",
                          reg_type_name(groups[i].type), "from", (json_int_t)groups[i].from,
                          "to", (json_int_t)groups[i].to, "sets", (json_int_t)groups[i].sets,
                          "values", (json_int_t)groups[i].values);
            if (groups[i].change_id[0])
                json_object_set_new(g, "change_id", json_string(groups[i].change_id));
            json_array_append_new(arr, g);
        }
        res.status = 200;
        res.content_type = "application/json";
        res.body = json_pack("{s:I, s:o}", "ttl", (json_int_t)tp->ttl, "groups", arr);
    }
    api_async_complete(tp->async, &res);
    free(tp);
}

/* The change runs on a thread of the registry's (it may take many calls, each paced): an HTTP
 * worker never waits for Route 53; the request parks until the answer is known. */
void api_ttl_set(const struct api_request *req, struct api_response *res)
{
    struct ttl_pending *tp;
    unsigned ttl = 0;

    if (parse_ttl(req, res, &ttl))
        return;
    tp = calloc(1, sizeof(*tp));
    if (!tp)
        abort();
    tp->async = req->async;
    tp->reg = req->reg;
    tp->ttl = ttl;
    snprintf(tp->path, sizeof(tp->path), "%s", req->path);
    snprintf(tp->request_id, sizeof(tp->request_id), "%s", req->request_id ? req->request_id : "");
    res->status = API_PENDING;
    reg_set_ttl_async(req->reg, ttl, ttl_done, tp);
}
