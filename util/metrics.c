/*
 * metrics.c: see metrics.h. Prometheus counters, gauges and histograms, and their text
 * exposition (format 0.0.4).
 *
 * Layout: a registry is a list of families (registration order); a family is a list of
 * children (creation order); a child holds its label values and its numbers as C11 atomics.
 * Gauges and histogram sums are doubles kept as their bit pattern in a 64-bit atomic and
 * updated with a compare-and-swap loop; counters and bucket counts are plain 64-bit atomics.
 *
 * Invariants: families and children are only ever appended, never removed or moved, until
 * metrics_registry_destroy(); a child is fully initialised before it is published (a release
 * store of the pointer that links it, read with acquire loads), so readers walk a family's
 * children without a lock. A family without labels gets its only child when it is created.
 * A histogram child counts each observation in exactly one bucket (the last one being +Inf);
 * the rendered buckets are cumulative sums of those, and _count is the +Inf bucket.
 *
 * Threading: updates are lock-free. The registry mutex guards the family list and the
 * callback of callback gauges; it is held while rendering (callbacks run under it). A
 * family's mutex serialises the creation of its children (so two threads asking for the same
 * new label values get one child). The two mutexes are never held together.
 *
 * Numbers are formatted with snprintf/strtod, so LC_NUMERIC must stay "C" (the default; the
 * process never calls setlocale()).
 */
#include "util/metrics.h"

#include <float.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/xalloc.h"

enum kind { KIND_COUNTER, KIND_GAUGE, KIND_GAUGE_FUNC, KIND_HISTOGRAM };

static const char *const kind_names[] = {"counter", "gauge", "gauge", "histogram"};

/* The part of every child that the family's list uses. First member of each child type. */
struct child {
    _Atomic(struct child *) next; /* release store when linked, acquire load when walked */
    char **values;                /* the family's nlabels label values, owned */
};

struct metrics_counter {
    struct child hdr;
    atomic_uint_least64_t value;
};

struct metrics_gauge {
    struct child hdr;
    atomic_uint_least64_t bits; /* a double */
};

struct metrics_histogram {
    struct child hdr;
    const double *bounds; /* the family's */
    size_t nbounds;
    atomic_uint_least64_t sum_bits; /* a double */
    atomic_uint_least64_t counts[]; /* nbounds + 1: per bucket, not cumulative; last is +Inf */
};

struct family {
    struct family *next; /* guarded by the registry's lock */
    enum kind kind;
    char *name;
    char *help; /* NULL: no # HELP line */
    size_t nlabels;
    char **labels;
    double *bounds; /* histograms */
    size_t nbounds;
    /* callback gauges; guarded by the registry's lock */
    double (*fn)(void *);
    void *arg;

    _Atomic(struct child *) head; /* first child; lock-free reads */
    pthread_mutex_t lock;         /* serialises child creation */
    /* guarded by lock */
    struct child *tail;
};

/* The typed handles are the family itself (the first and only member). */
struct metrics_counter_family {
    struct family f;
};
struct metrics_gauge_family {
    struct family f;
};
struct metrics_histogram_family {
    struct family f;
};

struct metrics_registry {
    pthread_mutex_t lock;
    /* guarded by lock */
    struct family *first, *last;
};

const double metrics_default_buckets[11] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                            0.5,   1,    2.5,   5,    10};

/* Programming errors end here (see metrics.h). */
static void die(const char *what, const char *name)
{
    fprintf(stderr, "level=fatal msg=\"metrics: %s\" metric=\"%s\"\n", what, name);
    abort();
}

static uint64_t dbl_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static double bits_dbl(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

/* *a += v for a double kept as bits. */
static void atomic_add_double(atomic_uint_least64_t *a, double v)
{
    uint_least64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &old, dbl_bits(bits_dbl(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

/* --- names ---------------------------------------------------------------------------------- */

static int name_char(char c, int first, int colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':'))
        return 1;
    return !first && c >= '0' && c <= '9';
}

static int valid_name(const char *s, size_t n, int colon)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i], i == 0, colon))
            return 0;
    return 1;
}

/* Split "a, b,c" into label names; *n = 0 for NULL or "". Dies on a bad name. */
static char **parse_labels(const char *metric, const char *spec, size_t *n, int histogram)
{
    char **out = NULL;
    size_t cap = 0;

    *n = 0;
    if (!spec)
        return NULL;
    while (*spec == ' ')
        spec++;
    if (*spec == '\0')
        return NULL;
    for (;;) {
        const char *end = strchr(spec, ',');
        size_t len = end ? (size_t)(end - spec) : strlen(spec);
        while (len && spec[len - 1] == ' ')
            len--;
        if (!valid_name(spec, len, 0))
            die("invalid label name", metric);
        if (len >= 2 && spec[0] == '_' && spec[1] == '_')
            die("label names starting with __ are reserved", metric);
        if (histogram && len == 2 && !memcmp(spec, "le", 2))
            die("a histogram cannot have a label named le", metric);
        for (size_t i = 0; i < *n; i++)
            if (strlen(out[i]) == len && !memcmp(out[i], spec, len))
                die("duplicate label name", metric);
        out = xgrow(out, &cap, *n + 1, sizeof(*out));
        out[(*n)++] = xstrndup(spec, len);
        if (!end)
            break;
        spec = end + 1;
        while (*spec == ' ')
            spec++;
    }
    return out;
}

static void free_strings(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* --- children ------------------------------------------------------------------------------- */

static struct child *child_new(struct family *f, const char *const *values)
{
    struct child *c;

    if (f->kind == KIND_GAUGE_FUNC)
        die("callback gauges have no children", f->name);
    switch (f->kind) {
    case KIND_COUNTER: {
        struct metrics_counter *m = xcalloc(1, sizeof(*m));
        atomic_init(&m->value, 0);
        c = &m->hdr;
        break;
    }
    case KIND_GAUGE: {
        struct metrics_gauge *m = xcalloc(1, sizeof(*m));
        atomic_init(&m->bits, dbl_bits(0.0));
        c = &m->hdr;
        break;
    }
    default: { /* KIND_HISTOGRAM */
        struct metrics_histogram *m =
            xcalloc(1, sizeof(*m) + (f->nbounds + 1) * sizeof(m->counts[0]));
        m->bounds = f->bounds;
        m->nbounds = f->nbounds;
        atomic_init(&m->sum_bits, dbl_bits(0.0));
        for (size_t i = 0; i <= f->nbounds; i++)
            atomic_init(&m->counts[i], 0);
        c = &m->hdr;
        break;
    }
    }
    atomic_init(&c->next, NULL);
    c->values = f->nlabels ? xcalloc(f->nlabels, sizeof(char *)) : NULL;
    for (size_t i = 0; i < f->nlabels; i++)
        c->values[i] = xstrdup(values[i]);
    return c;
}

static int child_matches(const struct family *f, const struct child *c, const char *const *values)
{
    for (size_t i = 0; i < f->nlabels; i++)
        if (strcmp(c->values[i], values[i]) != 0)
            return 0;
    return 1;
}

static struct child *find_child(struct family *f, const char *const *values)
{
    for (struct child *c = atomic_load_explicit(&f->head, memory_order_acquire); c;
         c = atomic_load_explicit(&c->next, memory_order_acquire))
        if (child_matches(f, c, values))
            return c;
    return NULL;
}

/* Link c at the end of f's list. Caller holds f->lock. */
static void append_child(struct family *f, struct child *c)
{
    if (f->tail)
        atomic_store_explicit(&f->tail->next, c, memory_order_release);
    else
        atomic_store_explicit(&f->head, c, memory_order_release);
    f->tail = c;
}

static struct child *family_child(struct family *f, const char *const *values, size_t n)
{
    struct child *c;

    if (n != f->nlabels)
        die("wrong number of label values", f->name);
    for (size_t i = 0; i < n; i++)
        if (!values[i])
            die("NULL label value", f->name);
    c = find_child(f, values);
    if (c)
        return c;
    pthread_mutex_lock(&f->lock);
    c = find_child(f, values); /* another thread may have created it meanwhile */
    if (!c) {
        c = child_new(f, values);
        append_child(f, c);
    }
    pthread_mutex_unlock(&f->lock);
    return c;
}

/* The child of a family without labels, created with it. */
static struct child *only_child(struct family *f)
{
    if (f->nlabels)
        die("the family has labels: use the _with() accessor", f->name);
    return atomic_load_explicit(&f->head, memory_order_acquire);
}

static void child_free(struct child *c, size_t nlabels)
{
    free_strings(c->values, nlabels);
    free(c);
}

/* --- families and the registry -------------------------------------------------------------- */

struct spec {
    enum kind kind;
    const char *name, *help, *labels;
    const double *bounds;
    size_t nbounds;
    double (*fn)(void *);
    void *arg;
};

static void family_free(struct family *f)
{
    struct child *c = atomic_load_explicit(&f->head, memory_order_relaxed);
    while (c) {
        struct child *next = atomic_load_explicit(&c->next, memory_order_relaxed);
        child_free(c, f->nlabels);
        c = next;
    }
    pthread_mutex_destroy(&f->lock);
    free_strings(f->labels, f->nlabels);
    free(f->bounds);
    free(f->help);
    free(f->name);
    free(f);
}

/* Does the existing family f have the shape s asks for? */
static int same_shape(const struct family *f, const struct spec *s, char **labels, size_t nlabels)
{
    if (f->kind != s->kind || f->nlabels != nlabels || f->nbounds != s->nbounds)
        return 0;
    for (size_t i = 0; i < nlabels; i++)
        if (strcmp(f->labels[i], labels[i]) != 0)
            return 0;
    for (size_t i = 0; i < s->nbounds; i++)
        if (f->bounds[i] != s->bounds[i])
            return 0;
    return 1;
}

static struct family *family_register(struct metrics_registry *reg, const struct spec *s)
{
    struct family *f;
    size_t nlabels;
    char **labels;

    if (!reg)
        die("NULL registry", s->name ? s->name : "(null)");
    if (!s->name || !valid_name(s->name, strlen(s->name), 1))
        die("invalid metric name", s->name ? s->name : "(null)");
    labels = parse_labels(s->name, s->labels, &nlabels, s->kind == KIND_HISTOGRAM);
    for (size_t i = 0; i < s->nbounds; i++)
        if (!(s->bounds[i] >= -DBL_MAX && s->bounds[i] <= DBL_MAX) ||
            (i && !(s->bounds[i] > s->bounds[i - 1])))
            die("bucket bounds must be finite and strictly increasing", s->name);

    pthread_mutex_lock(&reg->lock);
    for (f = reg->first; f; f = f->next)
        if (!strcmp(f->name, s->name))
            break;
    if (f) {
        if (!same_shape(f, s, labels, nlabels)) {
            pthread_mutex_unlock(&reg->lock);
            die("registered twice with a different type, labels or buckets", s->name);
        }
        free_strings(labels, nlabels);
    } else {
        f = xcalloc(1, sizeof(struct metrics_counter_family)); /* all handles are this size */
        f->kind = s->kind;
        f->name = xstrdup(s->name);
        f->help = s->help && *s->help ? xstrdup(s->help) : NULL;
        f->nlabels = nlabels;
        f->labels = labels;
        if (s->nbounds) {
            f->bounds = xmalloc(s->nbounds * sizeof(double));
            memcpy(f->bounds, s->bounds, s->nbounds * sizeof(double));
        }
        f->nbounds = s->nbounds;
        atomic_init(&f->head, NULL);
        pthread_mutex_init(&f->lock, NULL);
        if (!nlabels && s->kind != KIND_GAUGE_FUNC) {
            f->tail = child_new(f, NULL);
            atomic_init(&f->head, f->tail);
        }
        if (reg->last)
            reg->last->next = f;
        else
            reg->first = f;
        reg->last = f;
    }
    if (s->kind == KIND_GAUGE_FUNC) {
        f->fn = s->fn;
        f->arg = s->arg;
    }
    pthread_mutex_unlock(&reg->lock);
    return f;
}

struct metrics_registry *metrics_registry_create(void)
{
    struct metrics_registry *reg = xcalloc(1, sizeof(*reg));
    pthread_mutex_init(&reg->lock, NULL);
    return reg;
}

void metrics_registry_destroy(struct metrics_registry *reg)
{
    if (!reg)
        return;
    struct family *f = reg->first;
    while (f) {
        struct family *next = f->next;
        family_free(f);
        f = next;
    }
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

static struct metrics_registry *default_registry;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void default_init(void)
{
    default_registry = metrics_registry_create();
}

struct metrics_registry *metrics_default(void)
{
    pthread_once(&default_once, default_init);
    return default_registry;
}

/* --- counters ------------------------------------------------------------------------------- */

struct metrics_counter_family *metrics_counter_create(struct metrics_registry *reg,
                                                      const char *name, const char *help,
                                                      const char *labels)
{
    struct spec s = {KIND_COUNTER, name, help, labels, NULL, 0, NULL, NULL};
    return (struct metrics_counter_family *)family_register(reg, &s);
}

struct metrics_counter *metrics_counter_withv(struct metrics_counter_family *f,
                                              const char *const *values, size_t n)
{
    return (struct metrics_counter *)family_child(&f->f, values, n);
}

struct metrics_counter *metrics_counter_child(struct metrics_counter_family *f)
{
    return (struct metrics_counter *)only_child(&f->f);
}

void metrics_counter_add(struct metrics_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

void metrics_counter_inc(struct metrics_counter *c)
{
    atomic_fetch_add_explicit(&c->value, 1, memory_order_relaxed);
}

uint64_t metrics_counter_value(const struct metrics_counter *c)
{
    return atomic_load_explicit(&c->value, memory_order_relaxed);
}

/* --- gauges --------------------------------------------------------------------------------- */

struct metrics_gauge_family *metrics_gauge_create(struct metrics_registry *reg, const char *name,
                                                  const char *help, const char *labels)
{
    struct spec s = {KIND_GAUGE, name, help, labels, NULL, 0, NULL, NULL};
    return (struct metrics_gauge_family *)family_register(reg, &s);
}

struct metrics_gauge *metrics_gauge_withv(struct metrics_gauge_family *f, const char *const *values,
                                          size_t n)
{
    return (struct metrics_gauge *)family_child(&f->f, values, n);
}

struct metrics_gauge *metrics_gauge_child(struct metrics_gauge_family *f)
{
    return (struct metrics_gauge *)only_child(&f->f);
}

void metrics_gauge_set(struct metrics_gauge *g, double v)
{
    atomic_store_explicit(&g->bits, dbl_bits(v), memory_order_relaxed);
}

void metrics_gauge_add(struct metrics_gauge *g, double v)
{
    atomic_add_double(&g->bits, v);
}

void metrics_gauge_inc(struct metrics_gauge *g)
{
    atomic_add_double(&g->bits, 1.0);
}

void metrics_gauge_dec(struct metrics_gauge *g)
{
    atomic_add_double(&g->bits, -1.0);
}

double metrics_gauge_value(const struct metrics_gauge *g)
{
    return bits_dbl(atomic_load_explicit(&g->bits, memory_order_relaxed));
}

void metrics_gauge_func(struct metrics_registry *reg, const char *name, const char *help,
                        double (*fn)(void *arg), void *arg)
{
    struct spec s = {KIND_GAUGE_FUNC, name, help, NULL, NULL, 0, fn, arg};
    family_register(reg, &s);
}

/* --- histograms ----------------------------------------------------------------------------- */

struct metrics_histogram_family *metrics_histogram_create(struct metrics_registry *reg,
                                                          const char *name, const char *help,
                                                          const char *labels, const double *bounds,
                                                          size_t nbounds)
{
    if (!bounds) {
        bounds = metrics_default_buckets;
        nbounds = sizeof(metrics_default_buckets) / sizeof(metrics_default_buckets[0]);
    }
    struct spec s = {KIND_HISTOGRAM, name, help, labels, bounds, nbounds, NULL, NULL};
    return (struct metrics_histogram_family *)family_register(reg, &s);
}

struct metrics_histogram *metrics_histogram_withv(struct metrics_histogram_family *f,
                                                  const char *const *values, size_t n)
{
    return (struct metrics_histogram *)family_child(&f->f, values, n);
}

struct metrics_histogram *metrics_histogram_child(struct metrics_histogram_family *f)
{
    return (struct metrics_histogram *)only_child(&f->f);
}

void metrics_histogram_observe(struct metrics_histogram *h, double v)
{
    size_t lo = 0, hi = h->nbounds; /* first bound >= v; NaN lands in +Inf */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= h->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&h->counts[lo], 1, memory_order_relaxed);
    atomic_add_double(&h->sum_bits, v);
}

/* --- rendering ------------------------------------------------------------------------------ */

/* s with backslash and newline escaped, and double quote too when quote is set. */
static void put_escaped(struct buf *b, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            buf_add(b, "\\\\", 2);
        else if (*s == '\n')
            buf_add(b, "\\n", 2);
        else if (quote && *s == '"')
            buf_add(b, "\\\"", 2);
        else
            buf_add(b, s, 1);
    }
}

/* A sample value: integers without exponent or fraction, other values in the shortest form
 * that reads back to the same double, and +Inf, -Inf, NaN. out holds 32 bytes. */
static const char *fmt_double(double v, char out[32])
{
    if (v != v)
        return "NaN";
    if (v > DBL_MAX)
        return "+Inf";
    if (v < -DBL_MAX)
        return "-Inf";
    if (v == 0)
        return "0"; /* and -0 */
    if (v > -9e18 && v < 9e18 && (double)(long long)v == v) {
        snprintf(out, 32, "%lld", (long long)v);
        return out;
    }
    if (v > -1e21 && v < 1e21 && (v <= -9e18 || v >= 9e18)) {
        snprintf(out, 32, "%.0f", v); /* every double this large is an integer */
        return out;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, 32, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            break;
    }
    return out;
}

/* name suffix{labels[,le="le"]} value\n */
static void put_sample(struct buf *b, const struct family *f, const char *suffix,
                       const struct child *c, const char *le, const char *value)
{
    buf_adds(b, f->name);
    buf_adds(b, suffix);
    if (f->nlabels || le) {
        buf_adds(b, "{");
        for (size_t i = 0; i < f->nlabels; i++) {
            if (i)
                buf_adds(b, ",");
            buf_adds(b, f->labels[i]);
            buf_adds(b, "=\"");
            put_escaped(b, c->values[i], 1);
            buf_adds(b, "\"");
        }
        if (le) {
            buf_adds(b, f->nlabels ? ",le=\"" : "le=\"");
            buf_adds(b, le);
            buf_adds(b, "\"");
        }
        buf_adds(b, "}");
    }
    buf_adds(b, " ");
    buf_adds(b, value);
    buf_adds(b, "\n");
}

static void put_histogram(struct buf *b, const struct family *f, const struct metrics_histogram *h)
{
    char num[32], le[32];
    uint64_t total = 0;

    for (size_t i = 0; i <= h->nbounds; i++) {
        total += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        snprintf(num, sizeof(num), "%llu", (unsigned long long)total);
        put_sample(b, f, "_bucket", &h->hdr, i < h->nbounds ? fmt_double(h->bounds[i], le) : "+Inf",
                   num);
    }
    put_sample(b, f, "_sum", &h->hdr, NULL,
               fmt_double(bits_dbl(atomic_load_explicit(&h->sum_bits, memory_order_relaxed)), num));
    snprintf(num, sizeof(num), "%llu", (unsigned long long)total);
    put_sample(b, f, "_count", &h->hdr, NULL, num);
}

static void put_family(struct buf *b, const struct family *f)
{
    const struct child *first = atomic_load_explicit(&f->head, memory_order_acquire);
    double fn_value = 0;
    char num[32];

    if (f->kind == KIND_GAUGE_FUNC) {
        if (!f->fn)
            return;
        fn_value = f->fn(f->arg);
    } else if (!first) {
        return;
    }
    if (f->help) {
        buf_adds(b, "# HELP ");
        buf_adds(b, f->name);
        buf_adds(b, " ");
        put_escaped(b, f->help, 0);
        buf_adds(b, "\n");
    }
    buf_adds(b, "# TYPE ");
    buf_adds(b, f->name);
    buf_adds(b, " ");
    buf_adds(b, kind_names[f->kind]);
    buf_adds(b, "\n");
    if (f->kind == KIND_GAUGE_FUNC) {
        put_sample(b, f, "", NULL, NULL, fmt_double(fn_value, num));
        return;
    }
    for (const struct child *c = first; c;
         c = atomic_load_explicit(&c->next, memory_order_acquire)) {
        switch (f->kind) {
        case KIND_COUNTER:
            snprintf(num, sizeof(num), "%llu",
                     (unsigned long long)metrics_counter_value((const struct metrics_counter *)c));
            put_sample(b, f, "", c, NULL, num);
            break;
        case KIND_GAUGE:
            put_sample(b, f, "", c, NULL,
                       fmt_double(metrics_gauge_value((const struct metrics_gauge *)c), num));
            break;
        case KIND_HISTOGRAM: put_histogram(b, f, (const struct metrics_histogram *)c); break;
        default: break;
        }
    }
}

void metrics_render(struct metrics_registry *reg, char **out, size_t *len)
{
    struct buf b = {0};

    pthread_mutex_lock(&reg->lock);
    for (const struct family *f = reg->first; f; f = f->next)
        put_family(&b, f);
    pthread_mutex_unlock(&reg->lock);
    *len = b.len;
    *out = buf_detach(&b); /* "" for an empty registry, never NULL */
}
