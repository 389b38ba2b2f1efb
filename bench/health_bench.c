/*
 * health_bench.c: what one health check engine (registry/checker/) costs at fleet size.
 *
 * Opens N listeners (default 10,000) on distinct loopback addresses 127.1.x.y, all on one port
 * (the engine checks one port per configuration), accepts and closes whatever connection
 * reaches them on one acceptor thread (a TCP check leaves none: SYN, SYN-ACK, RST, see
 * registry/checker/probe_tcp.c), and points one engine at them: TCP checks, interval 5,000 ms,
 * timeout 1,000 ms, rise 2, fall 3, max_parallel 500. After --close-at seconds it closes one
 * listener and times its on_change(down). Runs --seconds (30) and prints:
 * - checks per second (whole run, and after the first interval, once the start spread is over);
 * - the engine thread's CPU time as a percentage of one core (pthread_getcpuclockid on the
 *   engine thread, via hc_engine_stats());
 * - failures, split into the closed listener's and everyone else's (which should be 0);
 * - the time from closing the listener to its on_change(down): fall x interval plus the wait
 *   for its next check, so between (fall - 1) x interval and fall x interval.
 *
 * File descriptors: the soft RLIMIT_NOFILE is raised to the hard limit. N listening sockets
 * plus at most max_parallel client sockets (checks in flight) plus one accepted socket at a
 * time plus a small reserve must fit; if they do not, N drops to 5,000 and the output says why.
 *
 * Usage: health_bench [--n 10000] [--seconds 30] [--interval-ms 5000] [--parallel 500]
 *                     [--close-at 8]
 * Only 127.0.0.0/8 addresses are used. Not a test: it prints numbers.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "registry/checker.h"
#include "util/log.h"

#define RESERVE_FDS 64 /* stdio, epoll sets, eventfd, curl, the acceptor's accepted socket */

struct bench {
    int n;
    unsigned port;
    int *fds;
    int epfd;
    atomic_int stop;
    atomic_int close_idx; /* -1, or the listener the acceptor must close */
    atomic_llong closed_ns;
    atomic_llong down_ns;
    atomic_int other_changes;
    atomic_ullong accepts;
    struct ip_addr closed_ip;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The i-th address: 127.a.b.c with a from 1, no octet 0 or 255. */
static struct ip_addr addr_of(int i)
{
    struct ip_addr a;
    memset(&a, 0, sizeof(a));
    a.family = IP_V4;
    a.b[0] = 127;
    a.b[1] = (uint8_t)(1 + i / (254 * 254));
    a.b[2] = (uint8_t)((i / 254) % 254 + 1);
    a.b[3] = (uint8_t)(i % 254 + 1);
    return a;
}

static int listen_on(const struct ip_addr *a, unsigned port, unsigned *got)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t sl = sizeof(sin);
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memcpy(&sin.sin_addr, a->b, 4);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, 128) != 0) {
        close(fd);
        return -1;
    }
    if (got && getsockname(fd, (struct sockaddr *)&sin, &sl) == 0)
        *got = ntohs(sin.sin_port);
    return fd;
}

/* All n listeners on one port: the first takes an ephemeral port, the rest the same one;
 * retried with another port when one of them is taken. */
static int open_listeners(struct bench *b)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        int i;
        struct ip_addr a = addr_of(0);
        b->fds[0] = listen_on(&a, 0, &b->port);
        if (b->fds[0] < 0)
            return -1;
        for (i = 1; i < b->n; i++) {
            a = addr_of(i);
            if ((b->fds[i] = listen_on(&a, b->port, NULL)) < 0)
                break;
        }
        if (i == b->n)
            return 0;
        int err = errno;
        for (int k = 0; k < i; k++)
            close(b->fds[k]);
        if (err != EADDRINUSE) {
            fprintf(stderr, "listen on 127.x.y.z: %s (after %d listeners)\n", strerror(err), i);
            return -1;
        }
    }
    return -1;
}

static void *acceptor_main(void *arg)
{
    struct bench *b = arg;
    struct epoll_event evs[256];

    while (!atomic_load(&b->stop)) {
        int k = atomic_load(&b->close_idx);
        if (k >= 0) {
            epoll_ctl(b->epfd, EPOLL_CTL_DEL, b->fds[k], NULL);
            close(b->fds[k]);
            b->fds[k] = -1;
            atomic_store(&b->closed_ns, mono_ns());
            atomic_store(&b->close_idx, -1);
        }
        int n = epoll_wait(b->epfd, evs, 256, 20);
        for (int i = 0; i < n; i++) {
            int fd = b->fds[evs[i].data.u32];
            if (fd < 0)
                continue;
            int c;
            while ((c = accept4(fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
                close(c);
                atomic_fetch_add(&b->accepts, 1);
            }
        }
    }
    return NULL;
}

static void on_change(void *arg, const struct ip_addr *ip, int up, const char *err)
{
    struct bench *b = arg;
    (void)err;
    if (!up && ip_cmp(ip, &b->closed_ip) == 0 && atomic_load(&b->down_ns) == 0)
        atomic_store(&b->down_ns, mono_ns());
    else
        atomic_fetch_add(&b->other_changes, 1);
}

static double pct(uint64_t cpu_ns, int64_t wall_ns)
{
    return wall_ns > 0 ? 100.0 * (double)cpu_ns / (double)wall_ns : 0;
}

int main(int argc, char **argv)
{
    struct bench b;
    int n = 10000, seconds = 30, close_at = 8;
    unsigned interval = 5000, parallel = 500;
    struct rlimit rl;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n"))
            n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--interval-ms"))
            interval = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--parallel"))
            parallel = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--close-at"))
            close_at = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: health_bench [--n N] [--seconds S] [--interval-ms MS] "
                            "[--parallel P] [--close-at S]\n");
            return 2;
        }
    }
    if (n < 2 || n > 254 * 254 * 254 || seconds < 1 || interval < 10 || parallel < 1) {
        fprintf(stderr, "health_bench: bad arguments\n");
        return 2;
    }
    log_set_level(LOG_WARN);

    /* File descriptors. */
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    long need = (long)n + (long)parallel + RESERVE_FDS;
    printf("fd budget: RLIMIT_NOFILE soft=%llu hard=%llu; need %d listeners + %u client sockets "
           "(max_parallel bounds checks in flight) + %d reserve = %ld\n",
           (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max, n, parallel,
           RESERVE_FDS, need);
    if ((unsigned long long)need > (unsigned long long)rl.rlim_cur) {
        printf("fd budget: does not fit; using 5000 listeners instead of %d\n", n);
        n = 5000;
        if ((unsigned long long)(n + parallel + RESERVE_FDS) > (unsigned long long)rl.rlim_cur) {
            fprintf(stderr, "health_bench: even 5000 listeners do not fit\n");
            return 1;
        }
    } else {
        printf("fd budget: fits. %d listeners + %d client sockets (every target checked at "
               "once) would need %ld%s; checks in flight are capped at max_parallel = %u, so "
               "client sockets never exceed that and the real need is %ld\n",
               n, n, 2L * n + RESERVE_FDS,
               (unsigned long long)(2L * n + RESERVE_FDS) > (unsigned long long)rl.rlim_cur
                   ? " (more than the limit)"
                   : "",
               parallel, need);
    }

    memset(&b, 0, sizeof(b));
    b.n = n;
    b.fds = calloc((size_t)n, sizeof(int));
    atomic_store(&b.close_idx, -1);
    int64_t t_bind = mono_ns();
    if (!b.fds || open_listeners(&b) != 0) {
        fprintf(stderr, "health_bench: cannot open %d listeners on one port\n", n);
        return 1;
    }
    b.epfd = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < n; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(b.epfd, EPOLL_CTL_ADD, b.fds[i], &ev);
    }
    struct ip_addr first = addr_of(0), last = addr_of(n - 1);
    char t1[IP_TEXT_MAX], t2[IP_TEXT_MAX];
    printf("listeners: %d on %s..%s port %u (opened in %.2f s)\n", n, ip_format(&first, t1),
           ip_format(&last, t2), b.port, (double)(mono_ns() - t_bind) / 1e9);
    pthread_t acc;
    pthread_create(&acc, NULL, acceptor_main, &b);

    int closed = n / 2;
    b.closed_ip = addr_of(closed);
    struct hc_options o;
    memset(&o, 0, sizeof(o));
    o.defaults.kind = HC_TCP;
    o.defaults.port = b.port;
    o.defaults.interval_ms = interval;
    o.defaults.timeout_ms = 1000;
    o.defaults.rise = 2;
    o.defaults.fall = 3;
    o.max_parallel = parallel;
    o.on_change = on_change;
    o.arg = &b;
    struct hc_engine *e = hc_engine_create(&o);
    if (!e)
        return 1;
    printf("engine: tcp, interval %u ms, timeout 1000 ms, rise 2, fall 3, max_parallel %u\n",
           interval, parallel);

    int64_t t0 = mono_ns();
    for (int i = 0; i < n; i++) {
        struct ip_addr a = addr_of(i);
        hc_engine_add(e, &a, NULL);
    }
    printf("adds: %d in %.1f ms\n", n, (double)(mono_ns() - t0) / 1e6);

    struct hc_stats s0, sw, s1, prev;
    hc_engine_stats(e, &s0);
    prev = s0;
    sw = s0;
    int64_t tw = t0, end = t0 + (int64_t)seconds * 1000000000;
    int closed_done = 0;
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    printf("per-second: checks, in flight, engine CPU %%\n");
    for (int sec = 1; mono_ns() < end; sec++) {
        int64_t target = t0 + (int64_t)sec * 1000000000;
        while (mono_ns() < target)
            sleep_ms(5);
        struct hc_stats s;
        hc_engine_stats(e, &s);
        printf("  t=%2ds checks=%5llu in_flight=%3u cpu=%.1f%%\n", sec,
               (unsigned long long)(s.checks - prev.checks), s.in_flight,
               pct(s.thread_cpu_ns - prev.thread_cpu_ns, 1000000000));
        prev = s;
        if ((int64_t)interval * 1000000 <= target - t0 && tw == t0) {
            sw = s; /* first interval over: steady state from here */
            tw = mono_ns();
        }
        if (!closed_done && sec >= close_at) {
            atomic_store(&b.close_idx, closed);
            closed_done = 1;
        }
    }
    int64_t t1n = mono_ns();
    hc_engine_stats(e, &s1);
    getrusage(RUSAGE_SELF, &ru1);

    /* Wait for the down callback if it has not come yet (at most fall x interval more). */
    int64_t wait_end = mono_ns() + 3LL * interval * 1000000 + 2000000000LL;
    while (closed_done && !atomic_load(&b.down_ns) && mono_ns() < wait_end)
        sleep_ms(10);

    /* Failures per target: the closed listener's, and everyone else's summed. */
    struct hc_status cst;
    uint64_t others_failed = 0;
    memset(&cst, 0, sizeof(cst));
    hc_engine_status(e, &b.closed_ip, &cst);
    for (int i = 0; i < n; i++) {
        struct hc_status st;
        struct ip_addr a = addr_of(i);
        if (i != closed && hc_engine_status(e, &a, &st) == RC_OK)
            others_failed += st.failures;
    }
    double wall = (double)(t1n - t0) / 1e9;
    double proc_cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
                      (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
                      (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                      (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;

    printf("\nresults (%d targets, %.1f s):\n", n, wall);
    printf("  checks: %llu, %.0f per second over the run; %.0f per second after the first "
           "interval (expected %.0f = targets / interval)\n",
           (unsigned long long)s1.checks, (double)s1.checks / wall,
           (double)(s1.checks - sw.checks) / ((double)(t1n - tw) / 1e9),
           (double)n * 1000.0 / interval);
    printf("  engine thread CPU: %.2f s = %.1f%% of one core (after the first interval: %.1f%%)\n",
           (double)(s1.thread_cpu_ns - s0.thread_cpu_ns) / 1e9,
           pct(s1.thread_cpu_ns - s0.thread_cpu_ns, t1n - t0),
           pct(s1.thread_cpu_ns - sw.thread_cpu_ns, t1n - tw));
    printf("  whole process CPU (engine + acceptor + this loop): %.1f%% of one core\n",
           100.0 * proc_cpu / wall);
    printf("  note: on loopback the kernel runs both ends of each handshake (the listener's SYN "
           "handling too) in the connecting thread, so the engine thread's CPU above includes "
           "the backends' share of the TCP work\n");
    printf("  failures: %llu total at the end of the run; closed listener %llu (by now); all "
           "others %llu (should be 0); local errors %llu\n",
           (unsigned long long)s1.failures, (unsigned long long)cst.failures,
           (unsigned long long)others_failed, (unsigned long long)s1.local_errors);
    printf("  max checks in flight: %u (cap %u); listener accepts: %llu (TCP checks leave "
           "none)\n",
           s1.max_in_flight, parallel, (unsigned long long)atomic_load(&b.accepts));
    char ct[IP_TEXT_MAX];
    ip_format(&b.closed_ip, ct);
    if (atomic_load(&b.down_ns))
        printf("  close -> on_change(down) for %s: %.2f s (fall 3 x interval %.1f s = %.1f s; "
               "expected %.1f..%.1f s); error \"%s\"\n",
               ct, (double)(atomic_load(&b.down_ns) - atomic_load(&b.closed_ns)) / 1e9,
               interval / 1000.0, 3 * interval / 1000.0, 2 * interval / 1000.0,
               3 * interval / 1000.0 + 1.0, cst.last_error);
    else
        printf("  close -> on_change(down) for %s: not seen\n", ct);
    printf("  other transitions: %d (should be 0)\n", atomic_load(&b.other_changes));

    int64_t td = mono_ns();
    hc_engine_destroy(e);
    printf("  destroy: %.1f ms\n", (double)(mono_ns() - td) / 1e6);
    atomic_store(&b.stop, 1);
    pthread_join(acc, NULL);
    for (int i = 0; i < n; i++)
        if (b.fds[i] >= 0)
            close(b.fds[i]);
    close(b.epfd);
    free(b.fds);
    return others_failed ? 1 : 0;
}
