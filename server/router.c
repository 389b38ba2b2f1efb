/*
 * router.c: the route table. A pattern is a literal path or a literal prefix followed by a
 * parameter ("{ip}", "{id}": the rest of the path, at least one byte). The parameter takes the
 * rest, slashes included, so "/backends/10.0.0.0/8" reaches the IP parser and is refused as a
 * CIDR (400) rather than as an unknown path. The first route whose pattern matches the path
 * decides the pattern: only the routes of that pattern are considered, so the literal
 * "/backends/self" (listed first) shadows "/backends/{ip}". The Allow header of a path lists
 * its methods in table order. Pure, thread-safe.
 */
#include "server/router.h"

#include <string.h>

#include "handlers/backends.h"
#include "handlers/buckets.h"
#include "handlers/bulk.h"
#include "handlers/changes.h"
#include "handlers/fleet.h"
#include "handlers/health.h"
#include "handlers/metrics.h"
#include "handlers/status.h"
#include "handlers/ttl.h"
#include "handlers/ui.h"

struct route {
    const char *pattern; /* for metrics and logs */
    const char *prefix;  /* literal part */
    int has_param;      /* 1: the parameter is the rest of the path; 2: the parameter is
                           followed by the literal suffix that ends the pattern after '}' */
    const char *method;
    srv_handler_fn fn;
    enum srv_access access;
};

#define R SRV_ACCESS_READ
#define C SRV_ACCESS_CHANGE
static const struct route routes[] = {
    {"/backends", "/backends", 0, "GET", api_backends_list, R},
    {"/backends", "/backends", 0, "POST", api_backends_register_bulk, C},
    {"/backends", "/backends", 0, "PUT", api_backends_replace, SRV_ACCESS_REPLACE},
    {"/backends", "/backends", 0, "DELETE", api_backends_deregister_bulk, C},
    {"/backends/self", "/backends/self", 0, "GET", api_backend_get_self, R},
    {"/backends/self", "/backends/self", 0, "POST", api_backend_register_self,
     SRV_ACCESS_CHANGE_SELF},
    {"/backends/self", "/backends/self", 0, "DELETE", api_backend_deregister_self,
     SRV_ACCESS_CHANGE_SELF},
    {"/backends/self/drain", "/backends/self/drain", 0, "POST", api_backend_drain_self,
     SRV_ACCESS_CHANGE_SELF},
    {"/backends/self/heartbeat", "/backends/self/heartbeat", 0, "PUT",
     api_backend_heartbeat_self, SRV_ACCESS_CHANGE_SELF},
    {"/backends/{ip}/heartbeat", "/backends/", 2, "PUT", api_backend_heartbeat, C},
    {"/backends/{ip}/drain", "/backends/", 2, "POST", api_backend_drain, C},
    {"/backends/{ip}", "/backends/", 1, "GET", api_backend_get, R},
    {"/backends/{ip}", "/backends/", 1, "POST", api_backend_register, C},
    {"/backends/{ip}", "/backends/", 1, "DELETE", api_backend_deregister, C},
    {"/buckets", "/buckets", 0, "GET", api_buckets_list, R},
    {"/ttl", "/ttl", 0, "PUT", api_ttl_set, SRV_ACCESS_REPLACE},
    {"/healthz", "/healthz", 0, "GET", api_healthz, R},
    {"/readyz", "/readyz", 0, "GET", api_readyz, R},
    {"/metrics", "/metrics", 0, "GET", api_metrics, R},
    {"/changes/{id}", "/changes/", 1, "GET", api_changes_get, R},
    {"/status", "/status", 0, "GET", api_status, R},
    {"/ui", "/ui", 0, "GET", api_ui_page, R},
    {"/ui/app.js", "/ui/app.js", 0, "GET", api_ui_script, R},
    {"/ui/app.css", "/ui/app.css", 0, "GET", api_ui_style, R},
    {"/fleet/peer", "/fleet/peer", 0, "GET", api_fleet_peer, SRV_ACCESS_FLEET},
    {"/fleet/leases", "/fleet/leases", 0, "GET", api_fleet_leases, SRV_ACCESS_FLEET},
};
#undef R
#undef C

/* Does path match r? Sets the parameter span. */
static int path_matches(const struct route *r, const char *path, const char **param,
                        size_t *param_len)
{
    size_t plen = strlen(r->prefix);
    if (strncmp(path, r->prefix, plen) != 0)
        return 0;
    if (!r->has_param)
        return path[plen] == '\0';
    const char *seg = path + plen;
    if (*seg == '\0')
        return 0;
    *param = seg;
    *param_len = strlen(seg);
    if (r->has_param == 2) {
        const char *suffix = strchr(r->pattern, '}') + 1;
        size_t slen = strlen(suffix);
        if (*param_len <= slen || strcmp(seg + *param_len - slen, suffix) != 0)
            return 0;
        *param_len -= slen;
    }
    return 1;
}

void srv_route(const char *method, const char *path, struct srv_route_match *m)
{
    const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
    size_t alen = 0;

    memset(m, 0, sizeof(*m));
    m->pattern = "unmatched";
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const char *param = NULL;
        size_t param_len = 0;
        if (m->path_found && strcmp(routes[i].pattern, m->pattern) != 0)
            continue; /* an earlier pattern took the path */
        if (!path_matches(&routes[i], path, &param, &param_len))
            continue;
        m->path_found = 1;
        m->pattern = routes[i].pattern;
        if (alen < sizeof(m->allow))
            alen += (size_t)snprintf(m->allow + alen, sizeof(m->allow) - alen, "%s%s",
                                     alen ? ", " : "", routes[i].method);
        if (!strcmp(routes[i].method, "GET") && alen < sizeof(m->allow))
            alen += (size_t)snprintf(m->allow + alen, sizeof(m->allow) - alen, ", HEAD");
        if (!m->fn && strcmp(routes[i].method, want) == 0) {
            m->fn = routes[i].fn;
            m->access = routes[i].access;
            m->mutating = routes[i].access != SRV_ACCESS_READ &&
                          routes[i].access != SRV_ACCESS_FLEET;
            m->param = param;
            m->param_len = param_len;
        }
    }
}
