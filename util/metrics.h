/*
 * metrics.h: Prometheus counters, gauges and histograms, rendered in the text exposition
 * format 0.0.4.
 *
 * A registry holds metric families in registration order. A family has a name, a help text,
 * a type and a fixed list of label names given when it is created ("route,method,status", or
 * NULL for none). A family holds children, one per distinct tuple of label values, in
 * creation order; the child carries the numbers. A family without labels has exactly one
 * child, created with it and reached with metrics_<type>_child().
 *
 *     struct metrics_counter_family *req = metrics_counter_create(reg,
 *         "r53reg_requests_total", "HTTP requests", "route,method,status");
 *     metrics_counter_inc(metrics_counter_with(req, "backends_ip", "POST", "201"));
 *
 *     struct metrics_gauge_family *up = metrics_gauge_create(reg, "r53reg_up", "Up", NULL);
 *     metrics_gauge_set(metrics_gauge_child(up), 1);
 *
 * Ownership: the registry owns every family and child. Pointers to them stay valid until
 * metrics_registry_destroy() (never, for metrics_default()), so hot paths may look a child up
 * once and keep the pointer.
 *
 * Thread-safety: everything is thread-safe except metrics_registry_destroy(). Updating a
 * child (add, set, observe) is lock-free (C11 atomics). Looking a child up walks the family's
 * list without a lock; creating a missing child takes the family's mutex. Creating families
 * and rendering take the registry's mutex.
 *
 * Misuse aborts with a message on stderr, like running out of memory (util/xalloc.h): an
 * invalid metric or label name, a name registered twice with a different type, label list or
 * bucket list, a wrong number of label values. These are programming errors, found the first
 * time the code runs. Registering the same name again with the same type and labels is not
 * misuse: it returns the existing family (so a server started twice in one process, as in the
 * tests, can register its metrics each time).
 *
 * Label values must come from a small bounded set (route names, methods, status codes, rc
 * slugs), never from raw client input: every distinct tuple is a child that lives as long as
 * the registry.
 */
#ifndef R53REG_UTIL_METRICS_H
#define R53REG_UTIL_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct metrics_registry;
struct metrics_counter_family;
struct metrics_gauge_family;
struct metrics_histogram_family;
struct metrics_counter;   /* one child of a counter family */
struct metrics_gauge;     /* one child of a gauge family */
struct metrics_histogram; /* one child of a histogram family */

/* --- registry ------------------------------------------------------------------------------ */

/* A new empty registry; free it with metrics_registry_destroy(). Never NULL. */
struct metrics_registry *metrics_registry_create(void);
/* Free reg with all its families and children. NULL is fine. Not thread-safe: nothing may use
 * reg, or a family or child pointer taken from it, during or after the call. */
void metrics_registry_destroy(struct metrics_registry *reg);
/* The process-wide registry (created on first use, never destroyed) that api_metrics()
 * serves. Thread-safe. */
struct metrics_registry *metrics_default(void);

/*
 * Render every family of reg in the Prometheus text format 0.0.4 into *out (NUL-terminated,
 * malloc'd, the caller frees it with free()) and its length without the NUL into *len.
 * Families come in registration order, children in creation order; a family with no children
 * yet (labelled, never used) or a callback gauge without a callback is left out. Every line,
 * the last one too, ends with "\n"; an empty registry renders as "". Callback gauges are
 * called from here with the registry's mutex held. Thread-safe; runs concurrently with
 * updates (each number is read atomically, a histogram as a whole is not, except that its
 * +Inf bucket and _count always agree).
 */
void metrics_render(struct metrics_registry *reg, char **out, size_t *len);

/*
 * Common to every *_create() below: name matches [a-zA-Z_:][a-zA-Z0-9_:]*; help is any text
 * (copied; NULL or "" leaves out the # HELP line); labels is NULL, "" or a comma-separated
 * list of label names ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", no duplicates; spaces
 * around commas are ignored), copied. Returns the family, owned by reg, never NULL (misuse
 * aborts, see above). Thread-safe.
 */

/* --- counters: 64-bit unsigned, only go up ------------------------------------------------- */

struct metrics_counter_family *metrics_counter_create(struct metrics_registry *reg,
                                                      const char *name, const char *help,
                                                      const char *labels);
/*
 * The child of f for the label values values[0..n), created (at 0) on first use. n must equal
 * the number of label names of f. Values are copied; any bytes but NUL are fine (they are
 * escaped when rendered). Never NULL; the child lives as long as the registry. Thread-safe:
 * concurrent calls with the same values return the same child.
 */
struct metrics_counter *metrics_counter_withv(struct metrics_counter_family *f,
                                              const char *const *values, size_t n);
/* metrics_counter_with(f, "v1", "v2", ...): metrics_counter_withv() with the values listed
 * (counted at compile time). At least one value; use metrics_counter_child() for none. */
#define metrics_counter_with(f, ...)                                                               \
    metrics_counter_withv((f), (const char *const[]){__VA_ARGS__},                                 \
                          sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))
/* The only child of a family without labels. Cheap (no lock, no search). */
struct metrics_counter *metrics_counter_child(struct metrics_counter_family *f);
/* Add n (wraps at 2^64). Lock-free. */
void metrics_counter_add(struct metrics_counter *c, uint64_t n);
/* Add 1. Lock-free. */
void metrics_counter_inc(struct metrics_counter *c);
/* The current value. Lock-free. */
uint64_t metrics_counter_value(const struct metrics_counter *c);

/* --- gauges: a double that goes up and down ------------------------------------------------ */

struct metrics_gauge_family *metrics_gauge_create(struct metrics_registry *reg, const char *name,
                                                  const char *help, const char *labels);
/* As metrics_counter_withv(); a new child starts at 0. */
struct metrics_gauge *metrics_gauge_withv(struct metrics_gauge_family *f, const char *const *values,
                                          size_t n);
#define metrics_gauge_with(f, ...)                                                                 \
    metrics_gauge_withv((f), (const char *const[]){__VA_ARGS__},                                   \
                        sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))
/* The only child of a family without labels. Cheap (no lock, no search). */
struct metrics_gauge *metrics_gauge_child(struct metrics_gauge_family *f);
/* Set to v. Lock-free. */
void metrics_gauge_set(struct metrics_gauge *g, double v);
/* Add v (may be negative). Lock-free (a compare-and-swap loop). */
void metrics_gauge_add(struct metrics_gauge *g, double v);
/* Add 1 / subtract 1. Lock-free. */
void metrics_gauge_inc(struct metrics_gauge *g);
void metrics_gauge_dec(struct metrics_gauge *g);
/* The current value. Lock-free. */
double metrics_gauge_value(const struct metrics_gauge *g);

/*
 * A gauge without labels whose value is fn(arg), called by metrics_render() with the
 * registry's mutex held (so fn must not call into this registry, and should be quick: read
 * an atomic or take a short lock). Registering the name again replaces fn and arg; fn NULL
 * detaches the callback and the gauge is left out of the output. Once this call returns, the
 * previous fn is never called again, so its arg may be freed: a server that registers a
 * callback on its own state detaches it before freeing that state. Aborts if name is taken by
 * another kind of family. Thread-safe.
 */
void metrics_gauge_func(struct metrics_registry *reg, const char *name, const char *help,
                        double (*fn)(void *arg), void *arg);

/* --- histograms: observations counted into fixed buckets ----------------------------------- */

/* The Prometheus default bucket bounds (seconds, 5 ms to 10 s); 11 of them. */
extern const double metrics_default_buckets[11];

/*
 * bounds[0..nbounds) are the upper bounds of the buckets, finite and strictly increasing
 * (copied); the +Inf bucket is implicit. bounds NULL means metrics_default_buckets. "le" may
 * not be a label name. Registering the name again needs the same bounds.
 */
struct metrics_histogram_family *metrics_histogram_create(struct metrics_registry *reg,
                                                          const char *name, const char *help,
                                                          const char *labels, const double *bounds,
                                                          size_t nbounds);
/* As metrics_counter_withv(); a new child is empty. */
struct metrics_histogram *metrics_histogram_withv(struct metrics_histogram_family *f,
                                                  const char *const *values, size_t n);
#define metrics_histogram_with(f, ...)                                                             \
    metrics_histogram_withv((f), (const char *const[]){__VA_ARGS__},                               \
                            sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))
/* The only child of a family without labels. Cheap (no lock, no search). */
struct metrics_histogram *metrics_histogram_child(struct metrics_histogram_family *f);
/* Count v into the first bucket whose bound is >= v (le semantics) and add it to the sum.
 * Lock-free (an atomic add per bucket, a compare-and-swap loop for the sum). */
void metrics_histogram_observe(struct metrics_histogram *h, double v);

#endif
