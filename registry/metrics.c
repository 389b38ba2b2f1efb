/*
 * metrics.c: the registry's Prometheus families (process-wide: a test process runs several
 * registries) and its gauges, which follow the latest loaded registry.
 */
#include "registry/internal.h"

#include <stddef.h>

#include "util/metrics.h"

static struct metrics_counter_family *m_batches, *m_outcomes, *m_conflicts, *m_fail_open,
    *m_leases_kept;
static struct metrics_histogram_family *m_batch_changes, *m_batch_elements, *m_commit_latency,
    *m_detect_to_dns, *m_failure_to_dns;

/* Gauges: each reads one field of reg_stats() (one pass over the index). */
static double stat_field(void *reg, size_t offset)
{
    struct reg_stats st;
    reg_stats(reg, &st);
    return (double)*(const size_t *)((const char *)&st + offset);
}

static double queued_value(void *arg)
{
    return stat_field(arg, offsetof(struct reg_stats, queued));
}

static double served_value(void *arg)
{
    return stat_field(arg, offsetof(struct reg_stats, served));
}

static double down_value(void *arg)
{
    return stat_field(arg, offsetof(struct reg_stats, down));
}

static double draining_value(void *arg)
{
    return stat_field(arg, offsetof(struct reg_stats, draining));
}

static double held_value(void *arg)
{
    return stat_field(arg, offsetof(struct reg_stats, held));
}

static double reachable_value(void *arg)
{
    return reg_upstream_reachable(arg) ? 1 : 0;
}

static const struct {
    const char *name, *help;
    double (*fn)(void *);
} gauges[] = {
    {"r53reg_upstream_reachable",
     "1 while the store's last call succeeded (Route 53 reachable), else 0", reachable_value},
    {"r53reg_commit_queue_depth", "Mutations queued for the committer, not yet sent", queued_value},
    {"r53reg_backends_served", "Registered backends in DNS", served_value},
    {"r53reg_backends_down", "Registered backends taken out of DNS by health checks", down_value},
    {"r53reg_backends_draining", "Registered backends taken out of DNS by a drain", draining_value},
    {"r53reg_health_fail_open_held",
     "Backends failing their checks that the fail-open guard (--max-down-share) keeps in DNS",
     held_value},
};

/* Create the families (once per process) and point the gauges at reg. */
void rmetrics_attach(struct reg_registry *reg)
{
    static const double changes_bounds[] = {1, 2, 5, 10, 20, 50, 100, 200};
    static const double elements_bounds[] = {2, 10, 50, 100, 250, 500, 750, 1000};
    static const double latency_bounds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5,
                                            1,     2.5,   5,    10,   30,  60,   120};
    struct metrics_registry *mr = metrics_default();
    m_batches = metrics_counter_create(mr, "r53reg_commit_batches_total",
                                       "Store calls made by the committer", NULL);
    m_outcomes =
        metrics_counter_create(mr, "r53reg_commit_mutations_total",
                               "Mutations settled, by operation and outcome", "op,outcome");
    m_conflicts = metrics_counter_create(mr, "r53reg_commit_conflicts_total",
                                         "Compare-and-swap conflicts (the record changed "
                                         "underneath; reloaded and retried)",
                                         NULL);
    m_fail_open = metrics_counter_create(mr, "r53reg_health_fail_open_total",
                                         "Times the fail-open guard started keeping failing "
                                         "backends in DNS",
                                         NULL);
    m_leases_kept = metrics_counter_create(mr, "r53reg_fleet_leases_kept_total",
                                           "Expired leases kept because a peer replica heard "
                                           "from the backend within its lease (--peers)",
                                           NULL);
    m_batch_changes =
        metrics_histogram_create(mr, "r53reg_commit_batch_buckets",
                                 "Record set changes per store call", NULL, changes_bounds, 8);
    m_batch_elements = metrics_histogram_create(mr, "r53reg_commit_batch_elements",
                                                "ResourceRecord elements per store call "
                                                "(DELETE + CREATE values)",
                                                NULL, elements_bounds, 8);
    m_commit_latency = metrics_histogram_create(mr, "r53reg_commit_latency_seconds",
                                                "Time from a mutation's submission to its "
                                                "commit (or failure)",
                                                NULL, latency_bounds, 14);
    m_detect_to_dns = metrics_histogram_create(mr, "r53reg_health_detection_to_dns_seconds",
                                               "Time from a checker's verdict (down or up) to "
                                               "the store holding the backend in its new set",
                                               NULL, latency_bounds, 14);
    m_failure_to_dns = metrics_histogram_create(
        mr, "r53reg_health_failure_to_dns_seconds",
        "Time from the first failing check of the streak that took a backend down (the first "
        "passing one, for a recovery) to the store holding it in its new set",
        NULL, latency_bounds, 14);
    for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++)
        metrics_gauge_func(mr, gauges[i].name, gauges[i].help, gauges[i].fn, reg);
}

/* Unhook the gauges from the registry being destroyed. */
void rmetrics_detach(void)
{
    for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++)
        metrics_gauge_func(metrics_default(), gauges[i].name, "", NULL, NULL);
}

/* A mutation settled with rc; submitted_ns (0: none) times its commit latency. */
void rmetrics_outcome(enum reg_op op, int64_t submitted_ns, enum rc_code rc)
{
    if (!m_outcomes)
        return;
    metrics_counter_inc(metrics_counter_with(m_outcomes, intent_op_name(op), rc_slug(rc)));
    if (submitted_ns)
        metrics_histogram_observe(metrics_histogram_child(m_commit_latency),
                                  (double)(clock_mono_ns() - submitted_ns) / 1e9);
}

/* A store call by the committer: its size, and a conflict if it met one. */
void rmetrics_batch(size_t changes, size_t elements, enum rc_code rc)
{
    if (!m_batches)
        return;
    metrics_counter_inc(metrics_counter_child(m_batches));
    metrics_histogram_observe(metrics_histogram_child(m_batch_changes), (double)changes);
    metrics_histogram_observe(metrics_histogram_child(m_batch_elements), (double)elements);
    if (rc == RC_CONFLICT)
        metrics_counter_inc(metrics_counter_child(m_conflicts));
}

/* A health move reached the store: since_verdict_ns after the checker's verdict; streak_ms is
 * the Unix ms of the first check of the streak behind it (0: unknown). */
void rmetrics_health_move(int64_t since_verdict_ns, int64_t streak_ms)
{
    if (!m_detect_to_dns)
        return;
    metrics_histogram_observe(metrics_histogram_child(m_detect_to_dns),
                              (double)since_verdict_ns / 1e9);
    if (streak_ms)
        metrics_histogram_observe(metrics_histogram_child(m_failure_to_dns),
                                  (double)(clock_wall_ms() - streak_ms) / 1e3);
}

/* The fail-open guard started keeping failing backends in DNS. */
void rmetrics_fail_open(void)
{
    if (m_fail_open)
        metrics_counter_inc(metrics_counter_child(m_fail_open));
}

/* n expired leases were kept on a peer's word. */
void rmetrics_leases_kept(size_t n)
{
    if (m_leases_kept)
        metrics_counter_add(metrics_counter_child(m_leases_kept), n);
}
