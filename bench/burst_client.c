/*
 * burst_client.c: the load side of bench/burst. Fires N concurrent POST (or DELETE)
 * /backends/<ip> requests, each from its own connection bound to the IP it registers (distinct
 * 127.0.0.0/8 addresses, as instances calling at boot would), with libcurl's multi interface on
 * one thread. Connections are opened in waves (--ramp per 10 ms) so the kernel's listen queue
 * (somaxconn 4096 here) does not drop SYNs and turn into 1-3 s retransmit tails.
 *
 * Prints one JSON object: counts by status, latency percentiles (ms) and the wall time from
 * the first request to the last answer.
 *
 * Usage: burst_client --url http://127.0.0.1:PORT --n 10000 [--op register|deregister]
 *                     [--offset K] [--ramp 500] [--no-bind] [--token T] [--latencies FILE]
 * --offset K starts at the K-th address, so several processes can share one burst (libcurl's
 * multi_perform walks every handle per call: one process with 10,000 handles spends its time
 * there). --latencies writes every latency (ms), one per line, for the orchestrator to merge.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

struct req {
    CURL *easy;
    char url[128];
    char iface[48];
    double t0, t1;
    long status;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

/* The i-th address: 127.a.b.c with no octet 0 or 255 (a from 1). */
static void ip_of(long i, char *out, size_t n)
{
    snprintf(out, n, "127.%ld.%ld.%ld", 1 + i / (254L * 254), (i / 254) % 254 + 1, i % 254 + 1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *url = NULL, *op = "register", *token = NULL, *latfile = NULL;
    long n = 10000, ramp = 500, added = 0, done = 0, offset = 0;
    int bind = 1;
    struct req *reqs;
    CURLM *multi;
    double start, last = 0, last_sent = 0, *lat;
    long codes[600] = {0}, transport_errors = 0;
    struct curl_slist *hdrs = NULL;
    struct rlimit rl;

    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--url") && a + 1 < argc)
            url = argv[++a];
        else if (!strcmp(argv[a], "--n") && a + 1 < argc)
            n = atol(argv[++a]);
        else if (!strcmp(argv[a], "--op") && a + 1 < argc)
            op = argv[++a];
        else if (!strcmp(argv[a], "--ramp") && a + 1 < argc)
            ramp = atol(argv[++a]);
        else if (!strcmp(argv[a], "--offset") && a + 1 < argc)
            offset = atol(argv[++a]);
        else if (!strcmp(argv[a], "--latencies") && a + 1 < argc)
            latfile = argv[++a];
        else if (!strcmp(argv[a], "--token") && a + 1 < argc)
            token = argv[++a];
        else if (!strcmp(argv[a], "--no-bind"))
            bind = 0;
        else {
            fprintf(stderr, "burst_client: unknown argument %s\n", argv[a]);
            return 2;
        }
    }
    if (!url || n <= 0 || ramp <= 0 || (strcmp(op, "register") && strcmp(op, "deregister"))) {
        fprintf(stderr, "usage: burst_client --url URL --n N [--op register|deregister] "
                        "[--ramp R] [--no-bind] [--token T]\n");
        return 2;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (token) {
        char auth[300];
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    reqs = calloc((size_t)n, sizeof(*reqs));
    lat = calloc((size_t)n, sizeof(*lat));
    if (!reqs || !lat)
        return 1;

    start = now_s();
    while (done < n) {
        int running, msgs;
        CURLMsg *msg;
        /* Open the next wave. */
        for (long k = 0; k < ramp && added < n; k++, added++) {
            struct req *r = &reqs[added];
            char ip[32];
            ip_of(offset + added, ip, sizeof(ip));
            snprintf(r->url, sizeof(r->url), "%s/backends/%s", url, ip);
            snprintf(r->iface, sizeof(r->iface), "host!%s", ip);
            r->easy = curl_easy_init();
            curl_easy_setopt(r->easy, CURLOPT_URL, r->url);
            curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST,
                             strcmp(op, "register") ? "DELETE" : "POST");
            curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, discard);
            curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, hdrs);
            curl_easy_setopt(r->easy, CURLOPT_TIMEOUT, 900L);
            curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
            if (bind)
                curl_easy_setopt(r->easy, CURLOPT_INTERFACE, r->iface);
            r->t0 = now_s();
            curl_multi_add_handle(multi, r->easy);
        }
        curl_multi_perform(multi, &running);
        while ((msg = curl_multi_info_read(multi, &msgs))) {
            struct req *r;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
            r->t1 = now_s();
            if (msg->data.result == CURLE_OK) {
                curl_off_t pre = 0;
                curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
                curl_easy_getinfo(r->easy, CURLINFO_PRETRANSFER_TIME_T, &pre);
                if (r->t0 + (double)pre / 1e6 > last_sent)
                    last_sent = r->t0 + (double)pre / 1e6;
                if (r->status > 0 && r->status < 600)
                    codes[r->status]++;
            } else {
                transport_errors++;
                if (transport_errors <= 5)
                    fprintf(stderr, "burst_client: %s: %s\n", r->url,
                            curl_easy_strerror(msg->data.result));
            }
            lat[done++] = (r->t1 - r->t0) * 1e3;
            if (r->t1 > last)
                last = r->t1;
            curl_multi_remove_handle(multi, r->easy);
            curl_easy_cleanup(r->easy);
            r->easy = NULL;
        }
        curl_multi_poll(multi, NULL, 0, added < n ? 10 : 100, NULL);
    }
    qsort(lat, (size_t)n, sizeof(*lat), cmp_double);
    if (latfile) {
        FILE *f = fopen(latfile, "w");
        if (!f) {
            perror(latfile);
            return 1;
        }
        for (long i = 0; i < n; i++)
            fprintf(f, "%.3f\n", lat[i]);
        fclose(f);
    }
    printf("{\"op\": \"%s\", \"n\": %ld, \"start\": %.6f, \"last\": %.6f, "
           "\"last_sent\": %.6f, \"wall_s\": %.3f, \"p50_ms\": %.1f, \"p99_ms\": %.1f, "
           "\"max_ms\": %.1f, \"transport_errors\": %ld, \"codes\": {",
           op, n, start, last, last_sent, last - start, lat[n / 2], lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1],
           lat[n - 1], transport_errors);
    for (int c = 0, first = 1; c < 600; c++)
        if (codes[c]) {
            printf("%s\"%d\": %ld", first ? "" : ", ", c, codes[c]);
            first = 0;
        }
    printf("}}\n");
    curl_slist_free_all(hdrs);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    free(reqs);
    free(lat);
    return 0;
}
