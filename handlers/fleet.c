/*
 * fleet.c: the replicas' endpoints (contract: fleet.h). Stateless; reads the registry
 * (reg_heard) and what the server describes of this replica.
 */
#include "handlers/fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/registry.h"
#include "util/ip.h"

static int fleet_off(const struct api_request *req, struct api_response *res)
{
    if (req->fleet)
        return 0;
    api_problem(res, req, RC_NOT_FOUND,
                "no such endpoint (this replica was started without --peers)");
    return 1;
}

void api_fleet_peer(const struct api_request *req, struct api_response *res)
{
    if (fleet_off(req, res))
        return;
    res->status = 200;
    res->content_type = "application/json";
    res->body = req->fleet->describe(req->fleet->arg);
}

/* Parse the comma-separated ?ips= list into ips (API_FLEET_MAX_IPS entries); the count, or
 * -1 with the 400 problem in res. */
static long parse_ips(const struct api_request *req, struct api_response *res, struct ip_addr *ips)
{
    const char *p = req->ips;
    long n = 0;
    char detail[REG_DETAIL_MAX];

    if (!p || !*p) {
        api_problem(res, req, RC_BAD_REQUEST,
                    "?ips= must list the addresses to ask about, comma separated");
        return -1;
    }
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char why[160];
        if (n == API_FLEET_MAX_IPS) {
            snprintf(detail, sizeof(detail), "?ips= holds more than %d addresses",
                     API_FLEET_MAX_IPS);
            api_problem(res, req, RC_BAD_REQUEST, detail);
            return -1;
        }
        if (ip_parse(p, len, &ips[n], why, sizeof(why)) != RC_OK) {
            snprintf(detail, sizeof(detail), "?ips= entry %ld: %s", n + 1, why);
            api_problem(res, req, RC_INVALID_IP, detail);
            return -1;
        }
        n++;
        if (!comma)
            return n;
        p = comma + 1;
    }
}

void api_fleet_leases(const struct api_request *req, struct api_response *res)
{
    struct ip_addr *ips;
    struct reg_heard *heard;
    json_t *arr, *self;
    long n;

    if (fleet_off(req, res))
        return;
    ips = calloc(API_FLEET_MAX_IPS, sizeof(*ips));
    heard = calloc(API_FLEET_MAX_IPS, sizeof(*heard));
    if (!ips || !heard)
        abort();
    n = parse_ips(req, res, ips);
    if (n >= 0) {
        reg_heard(req->reg, ips, (size_t)n, heard);
        arr = json_array();
        for (long i = 0; i < n; i++) {
            char txt[IP_TEXT_MAX];
            json_array_append_new(
                arr, json_pack("{s:s, s:o, s:i}", "ip", ip_format(&ips[i], txt), "heard_ms_ago",
                               heard[i].ago_ms >= 0 ? json_integer(heard[i].ago_ms) : json_null(),
                               "lease_seconds", (int)heard[i].lease_s));
        }
        self = req->fleet->describe(req->fleet->arg);
        res->status = 200;
        res->content_type = "application/json";
        res->body =
            json_pack("{s:O, s:o}", "instance", json_object_get(self, "instance"), "leases", arr);
        json_decref(self);
    }
    free(ips);
    free(heard);
}
