/*
 * burst_client.c: the load side of bench/burst. Fires N concurrent POST (or DELETE)
 * /backends/<ip> requests, each from its own connection bound to the IP it registers (distinct
 * 127.0.0.0/8 addresses, as instances calling at boot would), with libcurl's multi interface on
 * one thread. Connections are opened in waves (--ramp per 10 ms) so the kernel's listen queue
 * (somaxconn 4096 here) does not drop SYNs and turn into 1-3 s retransmit tails. The loop is
 * curl_multi_socket_action() over epoll: curl_multi_perform() checks every transfer in flight on
 * each call (one poll() each), which with thousands of parked requests cost more CPU than the
 * server under test.
 *
 * Prints one JSON object: counts by status, latency percentiles (ms) and the wall time from
 * the first request to the last answer.
 *
 * Usage: burst_client --url http://127.0.0.1:PORT --n 10000 [--op register|deregister]
 *                     [--offset K] [--ramp 500] [--over SECONDS] [--start-at T] [--no-bind]
 *                     [--token T] [--latencies FILE] [--events FILE]
 * --offset K starts at the K-th address, so several processes can share one burst (libcurl's
 * multi_perform walks every handle per call: one process with 10,000 handles spends its time
 * there). --latencies writes every latency (ms), one per line, for the orchestrator to merge.
 * --over S spreads the request starts evenly over S seconds (the k-th of n at start + k*S/n;
 * --ramp is then ignored), for a stream rather than a burst. --start-at T waits until
 * CLOCK_MONOTONIC reads T seconds (Python's time.monotonic() on Linux) before the first, so
 * several processes start one schedule together. --events writes one line per request,
 * "start sent answered status" (CLOCK_MONOTONIC seconds; sent = start + libcurl's pretransfer
 * time, when the request went out; status 0 for a transport error), in start order.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct req {
    CURL *easy;
    char url[128];
    char iface[48];
    double t0, t1, sent;
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

/* CURLMOPT_SOCKETFUNCTION: mirror libcurl's interest in a socket into the epoll set. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *epfd, void *socketp)
{
    struct epoll_event ev = {0};
    int ep = *(int *)epfd;

    (void)easy;
    (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL);
        return 0;
    }
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    ev.data.fd = s;
    if (epoll_ctl(ep, EPOLL_CTL_MOD, s, &ev) != 0)
        epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: when libcurl wants CURL_SOCKET_TIMEOUT (absolute, < 0: never). */
static int on_timer(CURLM *multi, long timeout_ms, void *deadline)
{
    (void)multi;
    *(double *)deadline = timeout_ms < 0 ? -1 : now_s() + (double)timeout_ms / 1e3;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *url = NULL, *op = "register", *token = NULL, *latfile = NULL, *evfile = NULL;
    long n = 10000, ramp = 500, added = 0, done = 0, offset = 0;
    int bind = 1;
    struct req *reqs;
    CURLM *multi;
    double start, last = 0, last_sent = 0, *lat, over = 0, start_at = 0, timer_at = -1;
    int ep;
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
        else if (!strcmp(argv[a], "--events") && a + 1 < argc)
            evfile = argv[++a];
        else if (!strcmp(argv[a], "--over") && a + 1 < argc)
            over = atof(argv[++a]);
        else if (!strcmp(argv[a], "--start-at") && a + 1 < argc)
            start_at = atof(argv[++a]);
        else if (!strcmp(argv[a], "--token") && a + 1 < argc)
            token = argv[++a];
        else if (!strcmp(argv[a], "--no-bind"))
            bind = 0;
        else {
            fprintf(stderr, "burst_client: unknown argument %s\n", argv[a]);
            return 2;
        }
    }
    if (!url || n <= 0 || ramp <= 0 || over < 0 ||
        (strcmp(op, "register") && strcmp(op, "deregister"))) {
        fprintf(stderr, "usage: burst_client --url URL --n N [--op register|deregister] "
                        "[--offset K] [--ramp R] [--over S] [--start-at T] [--no-bind] "
                        "[--token T] [--latencies FILE] [--events FILE]\n");
        return 2;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("epoll_create1");
        return 1;
    }
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, &ep);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, &timer_at);
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

    while (start_at > 0 && now_s() < start_at) {
        double wait = start_at - now_s();
        struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        nanosleep(&ts, NULL);
    }
    start = now_s();
    while (done < n) {
        int running, msgs, nev, wait_ms = 100;
        struct epoll_event evs[256];
        CURLMsg *msg;
        double t = now_s(), next = -1;
        /* Open the starts that are due: --ramp per 10 ms, or with --over the k-th at
         * start + k * over / n. */
        long due = over > 0 ? (long)((t - start) * (double)n / over) + 1
                            : ramp * ((long)((t - start) / 0.01) + 1);
        if (due > n)
            due = n;
        if (due < n)
            next = over > 0 ? start + (double)due * over / (double)n
                            : start + 0.01 * (double)(due / ramp);
        for (; added < due; added++) {
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
            /* One connection per request (each from its own address): without these libcurl
             * looks for a reusable one among every connection to the host, polling each. */
            curl_easy_setopt(r->easy, CURLOPT_FRESH_CONNECT, 1L);
            curl_easy_setopt(r->easy, CURLOPT_FORBID_REUSE, 1L);
            /* The bind address goes through libcurl's DNS cache, one entry per address, and
             * every transfer prunes the whole cache: keep it empty. */
            curl_easy_setopt(r->easy, CURLOPT_DNS_CACHE_TIMEOUT, 0L);
            curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
            if (bind)
                curl_easy_setopt(r->easy, CURLOPT_INTERFACE, r->iface);
            r->t0 = now_s();
            curl_multi_add_handle(multi, r->easy);
        }
        /* Wait for a socket, libcurl's timer or the next start, whichever comes first. */
        if (timer_at >= 0 && (next < 0 || timer_at < next))
            next = timer_at;
        if (next >= 0) {
            double ms = (next - now_s()) * 1e3;
            wait_ms = ms <= 0 ? 0 : ms >= 100 ? 100 : (int)ms + 1;
        }
        nev = epoll_wait(ep, evs, 256, wait_ms);
        for (int i = 0; i < nev; i++) {
            int flags = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                        (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                        (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
            curl_multi_socket_action(multi, evs[i].data.fd, flags, &running);
        }
        if (timer_at >= 0 && now_s() >= timer_at) {
            timer_at = -1;
            curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
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
                r->sent = r->t0 + (double)pre / 1e6;
                if (r->sent > last_sent)
                    last_sent = r->sent;
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
    }
    if (evfile) {
        FILE *f = fopen(evfile, "w");
        if (!f) {
            perror(evfile);
            return 1;
        }
        for (long i = 0; i < n; i++)
            fprintf(f, "%.6f %.6f %.6f %ld\n", reqs[i].t0, reqs[i].status ? reqs[i].sent : 0.0,
                    reqs[i].t1, reqs[i].status);
        fclose(f);
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
    close(ep);
    curl_global_cleanup();
    free(reqs);
    free(lat);
    return 0;
}
