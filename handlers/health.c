/*
 * health.c: /healthz (the process answers) and /readyz (the buckets are loaded: this process
 * can serve). The store being unreachable does not make a replica unready: every replica
 * shares the same Route 53, so a load balancer would only take them all out and answer in
 * their place, hiding Route 53's error that r53reg reports. /readyz says it in its body, and
 * r53reg_upstream_reachable in /metrics.
 */
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
    if (!reg_loaded(req->reg)) {
        api_problem(res, req, RC_NOT_READY, "the buckets are not loaded yet");
        return;
    }
    res->status = 200;
    res->content_type = "application/json";
    res->body = json_pack("{s:s, s:s, s:s}", "status", "ready", "provider",
                          reg_provider_name(req->reg), "upstream",
                          reg_upstream_reachable(req->reg) ? "reachable" : "unreachable");
}
