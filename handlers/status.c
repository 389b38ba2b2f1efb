/*
 * status.c: GET /status (contract: status.h). Every part is read from where it already lives:
 * totals from one snapshot of the buckets (each copied under its own lock), the committer
 * and the resync from reg_activity(), the Route 53 budget from the process's metrics (the
 * numbers GET /metrics shows; the Route 53 client publishes them there after every call),
 * the fleet from the server's /fleet/peer description, the changes from the ring of recent
 * audit lines (recent.h). Stateless and thread-safe.
 */
#include "handlers/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handlers/placement.h"
#include "handlers/recent.h"
#include "registry/registry.h"
#include "util/metrics.h"

/* Per type: registered backends by state, non-empty buckets, slots of the eligible buckets and
 * how many of them are free. */
static json_t *totals_json(struct reg_registry *reg)
{
    const struct reg_options *opt = reg_options(reg);
    struct reg_bucket_view *views = NULL;
    size_t n = reg_snapshot(reg, &views);
    size_t served[2] = {0, 0}, down[2] = {0, 0}, draining[2] = {0, 0}, buckets[2] = {0, 0};
    json_t *o = json_object();

    for (size_t i = 0; i < n; i++) {
        enum reg_type t = views[i].rec.type;
        served[t] += views[i].rec.nvalues;
        down[t] += views[i].down.nvalues;
        draining[t] += views[i].draining.nvalues;
        buckets[t]++;
    }
    reg_views_free(views, n);
    for (int t = REG_A; t <= REG_AAAA; t++)
        json_object_set_new(
            o, t == REG_A ? "a" : "aaaa",
            json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "backends",
                      (json_int_t)(served[t] + down[t] + draining[t]), "served",
                      (json_int_t)served[t], "down", (json_int_t)down[t], "draining",
                      (json_int_t)draining[t], "buckets", (json_int_t)buckets[t], "capacity",
                      (json_int_t)opt->buckets * reg_capacity(opt, (enum reg_type)t) *
                          (opt->tree ? REG_TREE_CHILDREN : 1),
                      "free",
                      (json_int_t)reg_free_capacity(reg, (enum reg_type)t)));
    return o;
}

/*
 * The sum of every sample of metric name (all label sets) in the text exposition text; *found
 * says whether there was one. Samples are "name value" or "name{labels} value" lines.
 */
static double metric_sum(const char *text, const char *name, int *found)
{
    size_t len = strlen(name);
    double sum = 0;
    *found = 0;
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        if (!strncmp(line, name, len) && (line[len] == ' ' || line[len] == '{')) {
            const char *sp = line + len;
            if (*sp == '{') /* label values may hold spaces: skip to the closing brace */
                sp = strstr(sp, "} ");
            if (sp && (!end || sp < end)) {
                sum += strtod(sp + (*sp == '}' ? 2 : 1), NULL);
                *found = 1;
            }
        }
        line = end ? end + 1 : NULL;
    }
    return sum;
}

/* The Route 53 client's budget and use, or NULL when this process has no Route 53 store. */
static json_t *route53_json(void)
{
    static const struct {
        const char *key, *metric;
        int integer;
    } fields[] = {
        {"allowed_calls_per_second", "r53reg_route53_allowed_rate", 0},
        {"allowed_changes_per_second", "r53reg_route53_allowed_change_rate", 0},
        {"calls", "r53reg_route53_calls_total", 1},
        {"throttled", "r53reg_route53_throttles_total", 1},
        {"retries", "r53reg_route53_retries_total", 1},
        {"transport_errors", "r53reg_route53_transport_errors_total", 1},
        {"change_calls", "r53reg_route53_change_records_count", 1},
        {"records_changed", "r53reg_route53_change_records_sum", 1},
    };
    char *text = NULL;
    size_t len = 0;
    json_t *o = NULL;
    int found;

    metrics_render(metrics_default(), &text, &len);
    metric_sum(text, fields[0].metric, &found);
    if (found) {
        o = json_object();
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
            double v = metric_sum(text, fields[i].metric, &found);
            if (found)
                json_object_set_new(o, fields[i].key,
                                    fields[i].integer ? json_integer((json_int_t)v) : json_real(v));
        }
    }
    free(text);
    return o;
}

static json_t *committer_json(const struct reg_activity *a)
{
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:f}", "mode", a->commit, "queued",
                     (json_int_t)a->queued, "in_call", (json_int_t)a->in_call, "batches",
                     (json_int_t)a->batches, "batched_changes", (json_int_t)a->batched_changes,
                     "write_wait_ms", a->write_wait_ms);
}

/* The resync, and the fleet as this replica sees it (with --peers). */
static json_t *replicas_json(const struct api_request *req, const struct reg_activity *a)
{
    json_t *o = json_pack("{s:I, s:I}", "resync_interval_ms", (json_int_t)a->resync_ms, "resyncs",
                          (json_int_t)a->resyncs);
    if (a->resynced_ms)
        json_object_set_new(o, "last_resync_at", api_json_time_ms(a->resynced_ms));
    if (req->fleet && req->fleet->describe)
        json_object_set_new(o, "fleet", req->fleet->describe(req->fleet->arg));
    return o;
}

void api_status(const struct api_request *req, struct api_response *res)
{
    /* Read first: what follows shows at least this index. */
    unsigned long long index = reg_generation(req->reg);
    struct reg_activity act;
    json_t *doc, *r53;

    reg_activity(req->reg, &act);
    doc = json_pack("{s:I, s:s, s:s, s:b, s:b, s:o}", "index", (json_int_t)index, "record_name",
                    reg_options(req->reg)->record_name, "provider", reg_provider_name(req->reg),
                    "ready", reg_loaded(req->reg), "upstream_reachable",
                    reg_upstream_reachable(req->reg), "totals", totals_json(req->reg));
    r53 = route53_json();
    if (r53)
        json_object_set_new(doc, "route53", r53);
    json_object_set_new(doc, "committer", committer_json(&act));
    json_object_set_new(doc, "replicas", replicas_json(req, &act));
    json_object_set_new(doc, "recent_changes", api_recent_json(API_RECENT_MAX + API_RECENT_REFUSALS));
    res->status = 200;
    res->content_type = "application/json";
    res->body = doc;
}
