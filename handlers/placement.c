/*
 * placement.c: placements rendered as JSON (contract: placement.h). Times are RFC 3339 UTC
 * with milliseconds. Stateless and thread-safe.
 */
#include "handlers/placement.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/ip.h"

void api_placement_enrich(struct reg_registry *reg, struct reg_placement *pl)
{
    struct reg_placement p;
    memset(&p, 0, sizeof(p));
    if (reg_lookup(reg, &pl->ip, &p) != RC_OK)
        return;
    pl->lease_seconds = p.lease_seconds;
    pl->lease_expires_at = p.lease_expires_at;
    pl->since_ms = p.since_ms;
    pl->checked = p.checked;
    pl->held = p.held;
    pl->health = p.health;
}

json_t *api_json_time_ms(long long ms)
{
    char when[40];
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + strlen(when), sizeof(when) - strlen(when), ".%03dZ", (int)(ms % 1000));
    return json_string(when);
}

static const char *state_name(enum reg_state s)
{
    switch (s) {
    case REG_STATE_REGISTERED: return "registered";
    case REG_STATE_DEREGISTERED: return "deregistered";
    case REG_STATE_DOWN: return "down";
    case REG_STATE_DRAINING: return "draining";
    }
    return "registered";
}

json_t *api_placement_json(const struct reg_registry *reg, const struct reg_placement *p)
{
    char ip[IP_TEXT_MAX], sid[REG_SET_ID_MAX + 1];
    json_t *o;
    reg_set_id(reg_options(reg), p->bucket, sid, sizeof(sid));
    o = json_pack("{s:s, s:s, s:i, s:s, s:i, s:s}", "ip", ip_format(&p->ip, ip), "type",
                     reg_type_name(p->type), "bucket", (int)p->bucket, "set_identifier", sid,
                     "weight", (int)p->weight, "state", state_name(p->state));
    if (reg_slot_child(p->bucket) >= 0)
        json_object_set_new(o, "child", json_integer(reg_slot_child(p->bucket)));
    if (p->change_id[0])
        json_object_set_new(o, "change_id", json_string(p->change_id));
    if (p->lease_seconds) {
        json_object_set_new(o, "lease_seconds", json_integer(p->lease_seconds));
        json_object_set_new(o, "lease_expires_at", api_json_time_ms(p->lease_expires_at));
    }
    if (p->state == REG_STATE_DOWN && p->since_ms)
        json_object_set_new(o, "down_since", api_json_time_ms(p->since_ms));
    if (p->state == REG_STATE_DRAINING && p->since_ms) {
        /* Resolvers may serve the address until the TTL of the last answer holding it ran
         * out: no new traffic after drained_at + TTL. */
        long long after = p->since_ms + (long long)reg_ttl(reg, p->type) * 1000;
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        json_object_set_new(o, "drained_at", api_json_time_ms(p->since_ms));
        json_object_set_new(o, "no_new_traffic_after", api_json_time_ms(after));
        json_object_set_new(o, "drained",
                            json_boolean((long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 >=
                                         after));
    }
    if (p->checked) {
        const struct hc_status *h = &p->health;
        json_t *hj = json_pack("{s:s, s:I, s:I, s:I, s:I}", "status", h->up ? "up" : "down",
                               "consecutive_successes", (json_int_t)h->consecutive_ok,
                               "consecutive_failures", (json_int_t)h->consecutive_fail,
                               "checks", (json_int_t)h->checks, "failures",
                               (json_int_t)h->failures);
        if (h->last_error[0])
            json_object_set_new(hj, "last_error", json_string(h->last_error));
        if (h->last_check_ms)
            json_object_set_new(hj, "last_check_at", api_json_time_ms(h->last_check_ms));
        if (h->last_change_ms)
            json_object_set_new(hj, "last_change_at", api_json_time_ms(h->last_change_ms));
        if (p->held)
            json_object_set_new(hj, "kept_by_fail_open", json_true());
        json_object_set_new(o, "health", hj);
    }
    return o;
}
