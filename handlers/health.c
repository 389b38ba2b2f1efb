/* health.c: /healthz (the process answers) and /readyz (store loaded and reachable). */
#include "handlers/health.h"

#include "registry/registry.h"

void api_healthz(const struct api_request *req, struct api_response *res)
{
    res->status = 200;
    res->content_type = "application/json";
    res->body = json_pack("{s:s}", "status", "ok");
}

void api_readyz(const struct api_request *req, struct api_response *res)
{
    if (!reg_ready(req->reg)) {
        api_problem(res, req, RC_NOT_READY, "the store is not loaded or not reachable");
        return;
    }
    res->status = 200;
    res->content_type = "application/json";
    res->body = json_pack("{s:s, s:s}", "status", "ready", "provider",
                          reg_provider_name(req->reg));
}
