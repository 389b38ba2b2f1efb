/* problem.c: RFC 9457 problem details for every error the API returns. Thread-safe. */
#include "handlers/api.h"

#include <stdio.h>

void api_problem(struct api_response *res, const struct api_request *req, enum rc_code rc,
                 const char *detail)
{
    char type[96];
    snprintf(type, sizeof(type), "urn:r53reg:problem:%s", rc_slug(rc));
    json_decref(res->body);
    res->status = rc_http_status(rc);
    res->content_type = "application/problem+json";
    res->body = json_pack("{s:s, s:s, s:i}", "type", type, "title", rc_title(rc), "status",
                          res->status);
    if (detail && *detail)
        json_object_set_new(res->body, "detail", json_string(detail));
    if (req && req->path)
        json_object_set_new(res->body, "instance", json_string(req->path));
    if (req && req->request_id)
        json_object_set_new(res->body, "request_id", json_string(req->request_id));
}
