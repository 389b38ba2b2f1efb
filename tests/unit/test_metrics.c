/*
 * test_metrics.c: util/metrics and the /metrics handler.
 *
 *   test_metrics render       exact text of a registry with every kind of metric
 *   test_metrics escape       help and label value escaping, number formatting
 *   test_metrics handler      api_metrics() serves the default registry
 *   test_metrics misuse       programming errors abort; registering the same shape again is fine
 *   test_metrics concurrency  8 threads updating and creating children; exact totals
 *   test_metrics parser       the rendered text read back by prometheus_client's parser
 *                             (python3-prometheus-client); exits 77 (skip) without it
 */
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "handlers/api.h"
#include "handlers/metrics.h"
#include "util/metrics.h"

static char *render(struct metrics_registry *reg)
{
    char *text;
    size_t len;
    metrics_render(reg, &text, &len);
    CHECK_INT(len, strlen(text));
    return text;
}

static double read_depth(void *arg)
{
    return *(const double *)arg;
}

/* The registry that render and parser check: one of each kind. */
static struct metrics_registry *sample_registry(double *depth)
{
    struct metrics_registry *reg = metrics_registry_create();
    static const double bounds[] = {0.25, 1, 4};

    struct metrics_counter_family *up =
        metrics_counter_create(reg, "r53reg_starts_total", "Process starts", NULL);
    metrics_counter_inc(metrics_counter_child(up));

    struct metrics_counter_family *req = metrics_counter_create(
        reg, "r53reg_requests_total", "HTTP requests", "route, method,status");
    metrics_counter_add(metrics_counter_with(req, "backends_ip", "POST", "201"), 3);
    metrics_counter_inc(metrics_counter_with(req, "buckets", "GET", "200"));
    metrics_counter_add(metrics_counter_with(req, "backends_ip", "POST", "201"), 2);

    struct metrics_gauge_family *inflight =
        metrics_gauge_create(reg, "r53reg_inflight", "Requests in flight", NULL);
    metrics_gauge_set(metrics_gauge_child(inflight), 7);
    metrics_gauge_dec(metrics_gauge_child(inflight));
    metrics_gauge_add(metrics_gauge_child(inflight), 0.5);

    metrics_gauge_func(reg, "r53reg_queue_depth", "Changes waiting", read_depth, depth);

    struct metrics_histogram_family *lat = metrics_histogram_create(
        reg, "r53reg_latency_seconds", "Request latency", "route", bounds, 3);
    struct metrics_histogram *h = metrics_histogram_with(lat, "buckets");
    const double obs[] = {0.125, 0.25, 0.5, 1, 2, 4, 8}; /* sum exact in binary */
    for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++)
        metrics_histogram_observe(h, obs[i]);

    /* labelled, never used: left out */
    metrics_gauge_create(reg, "r53reg_unused", "Never set", "x");
    return reg;
}

static const char sample_text[] =
    "# HELP r53reg_starts_total Process starts\n"
    "# TYPE r53reg_starts_total counter\n"
    "r53reg_starts_total 1\n"
    "# HELP r53reg_requests_total HTTP requests\n"
    "# TYPE r53reg_requests_total counter\n"
    "r53reg_requests_total{route=\"backends_ip\",method=\"POST\",status=\"201\"} 5\n"
    "r53reg_requests_total{route=\"buckets\",method=\"GET\",status=\"200\"} 1\n"
    "# HELP r53reg_inflight Requests in flight\n"
    "# TYPE r53reg_inflight gauge\n"
    "r53reg_inflight 6.5\n"
    "# HELP r53reg_queue_depth Changes waiting\n"
    "# TYPE r53reg_queue_depth gauge\n"
    "r53reg_queue_depth 42\n"
    "# HELP r53reg_latency_seconds Request latency\n"
    "# TYPE r53reg_latency_seconds histogram\n"
    "r53reg_latency_seconds_bucket{route=\"buckets\",le=\"0.25\"} 2\n"
    "r53reg_latency_seconds_bucket{route=\"buckets\",le=\"1\"} 4\n"
    "r53reg_latency_seconds_bucket{route=\"buckets\",le=\"4\"} 6\n"
    "r53reg_latency_seconds_bucket{route=\"buckets\",le=\"+Inf\"} 7\n"
    "r53reg_latency_seconds_sum{route=\"buckets\"} 15.875\n"
    "r53reg_latency_seconds_count{route=\"buckets\"} 7\n";

static void test_render(void)
{
    double depth = 42;
    struct metrics_registry *reg = sample_registry(&depth);
    char *text = render(reg);

    CHECK_STR(text, sample_text);
    free(text);

    /* the callback is evaluated at render time */
    depth = 3;
    text = render(reg);
    CHECK(strstr(text, "\nr53reg_queue_depth 3\n") != NULL);
    free(text);

    /* registering again returns the same family; a callback gauge can be replaced/detached */
    struct metrics_counter_family *again =
        metrics_counter_create(reg, "r53reg_requests_total", "other help", "route,method,status");
    CHECK_INT(metrics_counter_value(metrics_counter_with(again, "buckets", "GET", "200")), 1);
    metrics_gauge_func(reg, "r53reg_queue_depth", "Changes waiting", NULL, NULL);
    text = render(reg);
    CHECK(strstr(text, "queue_depth") == NULL);
    CHECK(strstr(text, "# HELP r53reg_requests_total HTTP requests\n") != NULL);
    free(text);

    metrics_registry_destroy(reg);
    metrics_registry_destroy(NULL);

    /* empty registry */
    reg = metrics_registry_create();
    text = render(reg);
    CHECK_STR(text, "");
    free(text);
    metrics_registry_destroy(reg);
}

static void test_escape(void)
{
    struct metrics_registry *reg = metrics_registry_create();
    static const double bounds[] = {1e-9, 1e30};

    struct metrics_counter_family *c =
        metrics_counter_create(reg, "esc_total", "Line one\nback\\slash \"quotes\" stay", "path");
    metrics_counter_inc(metrics_counter_with(c, "a\\b\"c\nd"));
    metrics_counter_add(metrics_counter_with(c, ""), 18446744073709551615u);

    struct metrics_gauge_family *g = metrics_gauge_create(reg, "num:gauge", NULL, "k");
    metrics_gauge_set(metrics_gauge_with(g, "int"), 1e15);
    metrics_gauge_set(metrics_gauge_with(g, "big"), 1e20);
    metrics_gauge_set(metrics_gauge_with(g, "huge"), 1e300);
    metrics_gauge_set(metrics_gauge_with(g, "tenth"), 0.1);
    metrics_gauge_set(metrics_gauge_with(g, "neg"), -2.5);
    metrics_gauge_set(metrics_gauge_with(g, "third"), 1.0 / 3);
    metrics_gauge_set(metrics_gauge_with(g, "inf"), INFINITY);
    metrics_gauge_set(metrics_gauge_with(g, "-inf"), -INFINITY);
    metrics_gauge_set(metrics_gauge_with(g, "nan"), NAN);
    metrics_gauge_set(metrics_gauge_with(g, "negzero"), -0.0);

    /* help "" leaves out # HELP, like NULL */
    struct metrics_histogram_family *h =
        metrics_histogram_create(reg, "odd_bounds", "", NULL, bounds, 2);
    metrics_histogram_observe(metrics_histogram_child(h), 5);

    char *text = render(reg);
    CHECK_STR(text, "# HELP esc_total Line one\\nback\\\\slash \"quotes\" stay\n"
                    "# TYPE esc_total counter\n"
                    "esc_total{path=\"a\\\\b\\\"c\\nd\"} 1\n"
                    "esc_total{path=\"\"} 18446744073709551615\n"
                    "# TYPE num:gauge gauge\n"
                    "num:gauge{k=\"int\"} 1000000000000000\n"
                    "num:gauge{k=\"big\"} 100000000000000000000\n"
                    "num:gauge{k=\"huge\"} 1e+300\n"
                    "num:gauge{k=\"tenth\"} 0.1\n"
                    "num:gauge{k=\"neg\"} -2.5\n"
                    "num:gauge{k=\"third\"} 0.3333333333333333\n"
                    "num:gauge{k=\"inf\"} +Inf\n"
                    "num:gauge{k=\"-inf\"} -Inf\n"
                    "num:gauge{k=\"nan\"} NaN\n"
                    "num:gauge{k=\"negzero\"} 0\n"
                    "# TYPE odd_bounds histogram\n"
                    "odd_bounds_bucket{le=\"1e-09\"} 0\n"
                    "odd_bounds_bucket{le=\"1e+30\"} 1\n"
                    "odd_bounds_bucket{le=\"+Inf\"} 1\n"
                    "odd_bounds_sum 5\n"
                    "odd_bounds_count 1\n");
    free(text);

    /* default buckets */
    struct metrics_histogram_family *d =
        metrics_histogram_create(reg, "dflt_seconds", "d", NULL, NULL, 0);
    metrics_histogram_observe(metrics_histogram_child(d), 0.2);
    metrics_histogram_observe(metrics_histogram_child(d), 0.25);
    metrics_histogram_observe(metrics_histogram_child(d), 100);
    text = render(reg);
    CHECK(strstr(text, "dflt_seconds_bucket{le=\"0.005\"} 0\n"
                       "dflt_seconds_bucket{le=\"0.01\"} 0\n"
                       "dflt_seconds_bucket{le=\"0.025\"} 0\n"
                       "dflt_seconds_bucket{le=\"0.05\"} 0\n"
                       "dflt_seconds_bucket{le=\"0.1\"} 0\n"
                       "dflt_seconds_bucket{le=\"0.25\"} 2\n"
                       "dflt_seconds_bucket{le=\"0.5\"} 2\n"
                       "dflt_seconds_bucket{le=\"1\"} 2\n"
                       "dflt_seconds_bucket{le=\"2.5\"} 2\n"
                       "dflt_seconds_bucket{le=\"5\"} 2\n"
                       "dflt_seconds_bucket{le=\"10\"} 2\n"
                       "dflt_seconds_bucket{le=\"+Inf\"} 3\n"
                       "dflt_seconds_sum 100.45\n"
                       "dflt_seconds_count 3\n") != NULL);
    free(text);
    metrics_registry_destroy(reg);
}

static void test_handler(void)
{
    struct api_request req;
    struct api_response res;

    memset(&req, 0, sizeof(req));
    memset(&res, 0, sizeof(res));
    req.method = "GET";
    req.path = "/metrics";
    metrics_counter_inc(metrics_counter_child(
        metrics_counter_create(metrics_default(), "test_handler_total", "h", NULL)));
    CHECK(metrics_default() == metrics_default());
    api_metrics(&req, &res);
    CHECK_INT(res.status, 200);
    CHECK_STR(res.content_type, "text/plain; version=0.0.4; charset=utf-8");
    CHECK(res.body == NULL);
    CHECK(res.raw != NULL);
    if (res.raw) {
        CHECK_INT(res.raw_len, strlen(res.raw));
        /* the server appends the final newline */
        CHECK_STR(res.raw, "# HELP test_handler_total h\n"
                           "# TYPE test_handler_total counter\n"
                           "test_handler_total 1");
    }
    free(res.raw);
}

/* --- misuse: programming errors abort (checked in a child process) --------------------------- */

static const double misuse_bounds[] = {1, 0.5};

static void misuse(int n)
{
    struct metrics_registry *reg = metrics_registry_create();
    struct metrics_counter_family *c = metrics_counter_create(reg, "c_total", "c", "a,b");

    switch (n) {
    case 0: metrics_counter_create(reg, "1starts_with_digit", "x", NULL); break;
    case 1: metrics_counter_create(reg, "has-dash", "x", NULL); break;
    case 2: metrics_counter_create(reg, "x", "x", "a-b"); break;
    case 3: metrics_counter_create(reg, "x", "x", "__reserved"); break;
    case 4: metrics_counter_create(reg, "x", "x", "a,a"); break;
    case 5: metrics_counter_create(reg, "x", "x", "a,,b"); break;
    case 6: metrics_histogram_create(reg, "h", "h", "le", NULL, 0); break;
    case 7: metrics_histogram_create(reg, "h", "h", NULL, misuse_bounds, 2); break;
    case 8: metrics_counter_create(reg, "c_total", "c", "a"); break;
    case 9: metrics_gauge_create(reg, "c_total", "c", "a,b"); break;
    case 10: metrics_gauge_func(reg, "c_total", "c", read_depth, NULL); break;
    case 11: metrics_counter_with(c, "only one"); break;
    case 12: metrics_counter_child(c); break;
    case 13: metrics_counter_with(c, "x", NULL); break;
    case 14: metrics_counter_create(reg, "", "x", NULL); break;
    default: break;
    }
    metrics_registry_destroy(reg);
}

#define MISUSE_CASES 15

static void test_misuse(void)
{
    for (int i = 0; i < MISUSE_CASES; i++) {
        fflush(NULL);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            if (!freopen("/dev/null", "w", stderr))
                _exit(3);
            misuse(i);
            _exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT) {
            fprintf(stderr, "misuse case %d did not abort (status %d)\n", i, status);
            check_failures++;
        }
    }

    /* not misuse: the same shape again is the same family; spaces around commas are fine */
    struct metrics_registry *reg = metrics_registry_create();
    struct metrics_counter_family *a = metrics_counter_create(reg, "c_total", "c", "a,b");
    CHECK(metrics_counter_create(reg, "c_total", "other", " a , b ") == a);
    CHECK(metrics_counter_with(a, "1", "2") == metrics_counter_with(a, "1", "2"));
    CHECK(metrics_counter_with(a, "1", "2") != metrics_counter_with(a, "2", "1"));
    struct metrics_histogram_family *h = metrics_histogram_create(reg, "h", "h", "", NULL, 0);
    CHECK(metrics_histogram_create(reg, "h", "h", NULL, metrics_default_buckets, 11) == h);
    metrics_registry_destroy(reg);
}

/* --- concurrency ---------------------------------------------------------------------------- */

#define THREADS 8
#define ROUNDS 50000
#define KEYS 37 /* children of the shared family, created by whichever thread comes first */

struct shared {
    struct metrics_registry *reg;
    struct metrics_counter_family *hits;
    struct metrics_counter_family *plain;
    struct metrics_gauge_family *level;
    struct metrics_histogram_family *lat;
    int stop;
    pthread_mutex_t stop_lock;
};

struct worker {
    struct shared *s;
    int id;
};

static void *work(void *arg)
{
    const struct worker *w = arg;
    struct shared *s = w->s;
    char key[16], own[16];

    snprintf(own, sizeof(own), "t%d", w->id);
    for (int i = 0; i < ROUNDS; i++) {
        snprintf(key, sizeof(key), "k%d", (i * 7 + w->id) % KEYS);
        metrics_counter_inc(metrics_counter_with(s->hits, key, "shared"));
        metrics_counter_add(metrics_counter_with(s->hits, own, "own"), 2);
        metrics_counter_inc(metrics_counter_child(s->plain));
        metrics_gauge_inc(metrics_gauge_child(s->level));
        metrics_histogram_observe(metrics_histogram_with(s->lat, key), (i % 4) * 0.5);
        metrics_gauge_dec(metrics_gauge_child(s->level));
        if (i % 4096 == 0) /* families registered again while others update them */
            metrics_counter_create(s->reg, "conc_plain_total", "p", NULL);
    }
    return NULL;
}

static void *scrape(void *arg)
{
    struct shared *s = arg;
    int scrapes = 0;
    for (;;) {
        pthread_mutex_lock(&s->stop_lock);
        int stop = s->stop;
        pthread_mutex_unlock(&s->stop_lock);
        if (stop && scrapes > 0)
            break;
        char *text = render(s->reg);
        /* conc_hits_total is left out until its first child exists */
        CHECK(strstr(text, "# TYPE conc_plain_total counter\nconc_plain_total ") != NULL);
        CHECK(text[strlen(text) - 1] == '\n');
        free(text);
        scrapes++;
    }
    return NULL;
}

/* The value of the sample line that starts with prefix, or -1. */
static long long sample_value(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, prefix, n) && p[n] == ' ')
            return strtoll(p + n + 1, NULL, 10);
    return -1;
}

static int count_lines(const char *text, const char *prefix)
{
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, prefix, len))
            n++;
    return n;
}

static void test_concurrency(void)
{
    static const double bounds[] = {0.5, 1};
    struct shared s;
    pthread_t th[THREADS], scraper;
    struct worker w[THREADS];
    char prefix[96];

    memset(&s, 0, sizeof(s));
    pthread_mutex_init(&s.stop_lock, NULL);
    s.reg = metrics_registry_create();
    s.hits = metrics_counter_create(s.reg, "conc_hits_total", "h", "key,kind");
    s.plain = metrics_counter_create(s.reg, "conc_plain_total", "p", NULL);
    s.level = metrics_gauge_create(s.reg, "conc_level", "l", NULL);
    s.lat = metrics_histogram_create(s.reg, "conc_lat", "l", "key", bounds, 2);

    CHECK_INT(pthread_create(&scraper, NULL, scrape, &s), 0);
    for (int i = 0; i < THREADS; i++) {
        w[i].s = &s;
        w[i].id = i;
        CHECK_INT(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_lock(&s.stop_lock);
    s.stop = 1;
    pthread_mutex_unlock(&s.stop_lock);
    pthread_join(scraper, NULL);

    /* expected per key: every (thread, i) with (i*7 + id) % KEYS == key */
    long long want[KEYS] = {0};
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < ROUNDS; i++)
            want[(i * 7 + t) % KEYS]++;

    char *text = render(s.reg);
    CHECK_INT(count_lines(text, "conc_hits_total{"), KEYS + THREADS);
    long long total = 0;
    for (int k = 0; k < KEYS; k++) {
        snprintf(prefix, sizeof(prefix), "conc_hits_total{key=\"k%d\",kind=\"shared\"}", k);
        CHECK_INT(sample_value(text, prefix), want[k]);
        snprintf(prefix, sizeof(prefix), "k%d", k);
        CHECK_INT(metrics_counter_value(metrics_counter_with(s.hits, prefix, "shared")), want[k]);
        snprintf(prefix, sizeof(prefix), "conc_lat_count{key=\"k%d\"}", k);
        CHECK_INT(sample_value(text, prefix), want[k]);
        total += want[k];
    }
    CHECK_INT(total, (long long)THREADS * ROUNDS);
    for (int t = 0; t < THREADS; t++) {
        snprintf(prefix, sizeof(prefix), "conc_hits_total{key=\"t%d\",kind=\"own\"}", t);
        CHECK_INT(sample_value(text, prefix), 2LL * ROUNDS);
    }
    CHECK_INT(sample_value(text, "conc_plain_total"), (long long)THREADS * ROUNDS);
    CHECK_INT(sample_value(text, "conc_level"), 0);
    CHECK_INT(count_lines(text, "conc_lat_count{"), KEYS);
    /* observations cycle 0, 0.5, 1, 1.5: buckets le=0.5 and le=1 take half each quarter */
    long long le05 = 0, le1 = 0, inf = 0;
    for (int k = 0; k < KEYS; k++) {
        snprintf(prefix, sizeof(prefix), "conc_lat_bucket{key=\"k%d\",le=\"0.5\"}", k);
        le05 += sample_value(text, prefix);
        snprintf(prefix, sizeof(prefix), "conc_lat_bucket{key=\"k%d\",le=\"1\"}", k);
        le1 += sample_value(text, prefix);
        snprintf(prefix, sizeof(prefix), "conc_lat_bucket{key=\"k%d\",le=\"+Inf\"}", k);
        inf += sample_value(text, prefix);
    }
    CHECK_INT(le05, (long long)THREADS * ROUNDS / 2);
    CHECK_INT(le1, (long long)THREADS * ROUNDS * 3 / 4);
    CHECK_INT(inf, (long long)THREADS * ROUNDS);
    free(text);
    metrics_registry_destroy(s.reg);
    pthread_mutex_destroy(&s.stop_lock);
}

/* --- the real parser -------------------------------------------------------------------------- */

/* Reads the exposition text from the file in argv[1] and prints one line per family and per
 * sample in a canonical form (JSON for strings and labels, repr for numbers). Exit 77 when
 * prometheus_client is not installed. */
static const char parser_py[] =
    "import json, sys\n"
    "try:\n"
    "    from prometheus_client.parser import text_string_to_metric_families\n"
    "except ImportError:\n"
    "    print('python3-prometheus-client is not installed'); sys.exit(77)\n"
    "text = open(sys.argv[1], encoding='utf-8').read()\n"
    "for f in text_string_to_metric_families(text):\n"
    "    print('F', f.name, f.type, json.dumps(f.documentation))\n"
    "    for s in f.samples:\n"
    "        print('S', s.name, json.dumps(s.labels, sort_keys=True), repr(s.value))\n";

static int test_parser(void)
{
    double depth = 42;
    struct metrics_registry *reg = sample_registry(&depth);
    struct metrics_counter_family *c =
        metrics_counter_create(reg, "esc_total", "Line one\nback\\slash \"q\"", "path");
    metrics_counter_inc(metrics_counter_with(c, "a\\b\"c\nd"));
    metrics_gauge_set(metrics_gauge_child(metrics_gauge_create(reg, "g_neg", "n", NULL)), -0.25);
    char *text = render(reg);
    char path[] = "/tmp/test_metrics.XXXXXX";
    char cmd[2048], line[512];
    char out[8192] = "";
    size_t used = 0;
    int fd, status;
    FILE *p;

    metrics_registry_destroy(reg);
    fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return 1;
    CHECK_INT(write(fd, text, strlen(text)), strlen(text));
    close(fd);
    free(text);

    /* the script goes through a file too: no shell quoting to get wrong */
    char script[] = "/tmp/test_metrics_py.XXXXXX";
    fd = mkstemp(script);
    CHECK(fd >= 0);
    if (fd < 0)
        return 1;
    CHECK_INT(write(fd, parser_py, strlen(parser_py)), strlen(parser_py));
    close(fd);
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s %s", script, path);
    p = popen(cmd, "r");
    CHECK(p != NULL);
    if (!p)
        return 1;
    while (fgets(line, sizeof(line), p)) {
        size_t n = strlen(line);
        if (used + n < sizeof(out)) {
            memcpy(out + used, line, n + 1);
            used += n;
        }
    }
    status = pclose(p);
    unlink(path);
    unlink(script);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
        printf("SKIP: %s", out);
        return 77;
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* prometheus_client names counter families without _total; samples keep it */
    CHECK_STR(out,
              "F r53reg_starts counter \"Process starts\"\n"
              "S r53reg_starts_total {} 1.0\n"
              "F r53reg_requests counter \"HTTP requests\"\n"
              "S r53reg_requests_total {\"method\": \"POST\", \"route\": \"backends_ip\", "
              "\"status\": \"201\"} 5.0\n"
              "S r53reg_requests_total {\"method\": \"GET\", \"route\": \"buckets\", "
              "\"status\": \"200\"} 1.0\n"
              "F r53reg_inflight gauge \"Requests in flight\"\n"
              "S r53reg_inflight {} 6.5\n"
              "F r53reg_queue_depth gauge \"Changes waiting\"\n"
              "S r53reg_queue_depth {} 42.0\n"
              "F r53reg_latency_seconds histogram \"Request latency\"\n"
              "S r53reg_latency_seconds_bucket {\"le\": \"0.25\", \"route\": \"buckets\"} 2.0\n"
              "S r53reg_latency_seconds_bucket {\"le\": \"1\", \"route\": \"buckets\"} 4.0\n"
              "S r53reg_latency_seconds_bucket {\"le\": \"4\", \"route\": \"buckets\"} 6.0\n"
              "S r53reg_latency_seconds_bucket {\"le\": \"+Inf\", \"route\": \"buckets\"} 7.0\n"
              "S r53reg_latency_seconds_sum {\"route\": \"buckets\"} 15.875\n"
              "S r53reg_latency_seconds_count {\"route\": \"buckets\"} 7.0\n"
              "F esc counter \"Line one\\nback\\\\slash \\\"q\\\"\"\n"
              "S esc_total {\"path\": \"a\\\\b\\\"c\\nd\"} 1.0\n"
              "F g_neg gauge \"n\"\n"
              "S g_neg {} -0.25\n");
    return 0;
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";

    if (!strcmp(what, "render"))
        test_render();
    else if (!strcmp(what, "escape"))
        test_escape();
    else if (!strcmp(what, "handler"))
        test_handler();
    else if (!strcmp(what, "misuse"))
        test_misuse();
    else if (!strcmp(what, "concurrency"))
        test_concurrency();
    else if (!strcmp(what, "parser")) {
        if (test_parser() == 77)
            return 77;
    } else {
        fprintf(stderr, "usage: test_metrics render|escape|handler|misuse|concurrency|parser\n");
        return 2;
    }
    return check_done("test_metrics");
}
