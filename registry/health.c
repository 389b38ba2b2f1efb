/*
 * health.c: the health check engine (see health.h for the contract).
 *
 * One engine thread runs an epoll loop. It owns two binary min-heaps of targets:
 * - due: idle targets keyed by the time their next check is due;
 * - deadline: targets with a TCP connect in flight, keyed by the connect's deadline.
 * HTTP(S) checks are libcurl easy handles on one multi handle driven from the same epoll set
 * (CURLMOPT_SOCKETFUNCTION adds curl's sockets, CURLMOPT_TIMERFUNCTION sets curl_due_ns, and
 * curl_multi_socket_action() is called on their events and when curl_due_ns passes); curl
 * enforces their timeouts. Each loop turn: apply queued adds/removes, expire TCP deadlines,
 * run curl's timer, start due checks while fewer than max_parallel are in flight, sleep in
 * epoll_wait() until the earliest of those times or an event (the wakeup eventfd included).
 *
 * Epoll data: a TCP check's target pointer (aligned, low bits 0); curl socket s as
 * (s << 2) | TAG_CURL; the eventfd as TAG_WAKE. Targets are freed only by the engine thread
 * while it applies removals at the top of a turn, never in the middle of an event batch, so a
 * pointer in a batch is never stale; curl sockets are looked up by number, so a socket curl
 * closed during a batch costs at most a spurious curl_multi_socket_action().
 *
 * Locking: one mutex, lock, guards the hash table ip -> target, the add and remove queues,
 * every target's reported state (up, counts, last error, times, removed) and the down count.
 * Other fields of a target (cfg, run state, heap position, in-flight resources) belong to the
 * engine thread and are touched without the lock. The lock is never held across I/O or a
 * callback. Lifetime: hc_engine_remove() unlinks the target from the table (so no thread can
 * find it again) and queues it; the engine thread cancels its check and frees it.
 *
 * Invariants (engine thread, between turns): a target is in exactly one of: the add queue
 * (not yet scheduled), the due heap (T_IDLE), the deadline heap (T_TCP, fd open and in the
 * epoll set), curl's multi handle (T_HTTP); in_flight == number of T_TCP + T_HTTP targets
 * <= max_parallel.
 */
#include "registry/health.h"

#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

#define TAG_WAKE 2u
#define TAG_CURL 1u
#define MAX_EVENTS 256
#define MS_NS INT64_C(1000000)

/* A resolved check configuration: every field set. */
struct cfg {
    enum hc_kind kind; /* HC_TCP, HC_HTTP or HC_HTTPS */
    unsigned port;     /* 0 only in the engine's defaults */
    char *path;        /* owned */
    int status_min, status_max;
    unsigned interval_ms, timeout_ms, rise, fall;
    int tls_verify; /* 0 or 1 */
};

enum run_state { T_NEW, T_IDLE, T_TCP, T_HTTP };

/* An HTTP(S) check in flight. */
struct http_call {
    struct target *t;
    CURL *easy;
    struct curl_slist *headers;
    size_t body;
    int capped; /* the body passed HC_BODY_MAX and the transfer was cut off */
    char errbuf[CURL_ERROR_SIZE];
};

struct target {
    struct ip_addr ip;

    /* guarded by the engine's lock */
    struct target *hnext;    /* hash chain */
    struct target *add_next; /* on add_queue when queued_add */
    struct target *rm_next;  /* on rm_queue once removed */
    int queued_add;
    int removed;
    int has_pending_cfg;
    struct cfg *pending_cfg; /* replacement override (NULL: the defaults) */
    int up;
    unsigned cons_ok, cons_fail;
    uint64_t checks, failures;
    int last_ok;
    char last_error[HC_ERROR_MAX];
    int64_t last_check_ms, last_change_ms, added_ms;
    int64_t run_started_ms; /* the first check of the current run of equal results */

    /* engine thread only */
    struct cfg *cfg; /* own override or &engine->defcfg */
    enum run_state state;
    size_t hidx;            /* position in the heap it is in */
    int64_t key;            /* that heap's key (CLOCK_MONOTONIC ns) */
    int64_t started_ns;     /* start of the latest check */
    int fd;                 /* T_TCP */
    struct http_call *call; /* T_HTTP */
};

struct heap {
    struct target **v;
    size_t n, cap;
};

struct hc_engine {
    struct cfg defcfg;
    unsigned max_parallel;
    int start_down;
    hc_change_fn on_change;
    void *arg;

    pthread_t thread;
    int thread_started;
    atomic_int stop;
    int epfd, evfd;
    CURLM *multi;
    int curl_inited;

    pthread_mutex_t lock;
    /* guarded by lock */
    struct target **table;
    size_t table_size; /* power of two */
    size_t count;
    unsigned down;
    struct target *add_queue; /* LIFO; order does not matter (each gets a random start) */
    struct target *rm_queue;

    /* engine thread only */
    struct heap due, deadline;
    unsigned in_flight;
    int64_t curl_due_ns; /* -1: no curl timer */
    uint64_t rng;
    int64_t last_local_log_ns;

    /* written by the engine thread, read by hc_engine_stats() */
    atomic_ullong checks, failures, tr_up, tr_down, local_errors;
    atomic_uint in_flight_pub, max_in_flight;

    struct metrics_counter *m_ok, *m_fail, *m_up, *m_down;
    struct metrics_gauge *m_targets, *m_downg;
};

/* --- small helpers ------------------------------------------------------------------------ */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* strerror text with a lowercase first letter ("connection refused"). */
static void errno_text(int err, char *out, size_t n)
{
    char buf[128];
    const char *s = strerror_r(err, buf, sizeof(buf));
    snprintf(out, n, "%s", s);
    if (out[0] >= 'A' && out[0] <= 'Z' && !(out[1] >= 'A' && out[1] <= 'Z'))
        out[0] = (char)(out[0] - 'A' + 'a');
}

/* "10.0.0.1" or "[2001:db8::1]". */
static void host_text(const struct ip_addr *ip, char *out, size_t n)
{
    char t[IP_TEXT_MAX];
    ip_format(ip, t);
    if (ip->family == IP_V6)
        snprintf(out, n, "[%s]", t);
    else
        snprintf(out, n, "%s", t);
}

static socklen_t make_sockaddr(const struct ip_addr *ip, unsigned port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (ip->family == IP_V4) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        memcpy(&sin->sin_addr, ip->b, 4);
        return sizeof(*sin);
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    memcpy(&sin6->sin6_addr, ip->b, 16);
    return sizeof(*sin6);
}

/* Close with a reset instead of FIN: no TIME_WAIT on our side. */
static void set_linger0(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

/* --- configuration ------------------------------------------------------------------------ */

static const char *kind_name(enum hc_kind k)
{
    switch (k) {
    case HC_TCP: return "tcp";
    case HC_HTTP: return "http";
    case HC_HTTPS: return "https";
    default: return "inherit";
    }
}

enum rc_code hc_check_validate(const struct hc_check *c, char *detail, size_t n)
{
    if (!c)
        return RC_OK;
    if ((int)c->kind < (int)HC_KIND_INHERIT || (int)c->kind > (int)HC_HTTPS) {
        rc_detail(detail, n, "check kind must be tcp, http or https");
        return RC_BAD_REQUEST;
    }
    if (c->port > 65535) {
        rc_detail(detail, n, "check port must be 1..65535");
        return RC_BAD_REQUEST;
    }
    if (c->path) {
        size_t len = strlen(c->path);
        if (c->path[0] != '/' || len > HC_PATH_MAX) {
            rc_detail(detail, n, "check path must start with '/' and be at most %d bytes",
                      HC_PATH_MAX);
            return RC_BAD_REQUEST;
        }
        for (size_t i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)c->path[i];
            if (ch <= 0x20 || ch >= 0x7f) {
                rc_detail(detail, n, "check path may hold only printable ASCII without spaces");
                return RC_BAD_REQUEST;
            }
        }
    }
    if ((c->status_min && (c->status_min < 100 || c->status_min > 599)) ||
        (c->status_max && (c->status_max < 100 || c->status_max > 599))) {
        rc_detail(detail, n, "check status range must lie within 100..599");
        return RC_BAD_REQUEST;
    }
    if (c->status_min && c->status_max && c->status_min > c->status_max) {
        rc_detail(detail, n, "check status_min must not exceed status_max");
        return RC_BAD_REQUEST;
    }
    if (c->interval_ms && (c->interval_ms < 10 || c->interval_ms > 86400000)) {
        rc_detail(detail, n, "check interval must be 10 ms..1 day");
        return RC_BAD_REQUEST;
    }
    if (c->timeout_ms > 3600000) {
        rc_detail(detail, n, "check timeout must be 1 ms..1 hour");
        return RC_BAD_REQUEST;
    }
    if (c->rise > 1000 || c->fall > 1000) {
        rc_detail(detail, n, "check rise and fall must be 1..1000");
        return RC_BAD_REQUEST;
    }
    if (c->tls_verify < -1 || c->tls_verify > 1) {
        rc_detail(detail, n, "check tls_verify must be -1, 0 or 1");
        return RC_BAD_REQUEST;
    }
    return RC_OK;
}

static void cfg_release(struct cfg *c)
{
    if (c)
        free(c->path);
}

/* out = base with the non-zero fields of o (o already validated). */
static void cfg_resolve(const struct cfg *base, const struct hc_check *o, struct cfg *out)
{
    *out = *base;
    if (o) {
        if (o->kind != HC_KIND_INHERIT)
            out->kind = o->kind;
        if (o->port)
            out->port = o->port;
        if (o->status_min)
            out->status_min = o->status_min;
        if (o->status_max)
            out->status_max = o->status_max;
        if (o->interval_ms)
            out->interval_ms = o->interval_ms;
        if (o->timeout_ms)
            out->timeout_ms = o->timeout_ms;
        if (o->rise)
            out->rise = o->rise;
        if (o->fall)
            out->fall = o->fall;
        if (o->tls_verify)
            out->tls_verify = o->tls_verify > 0;
    }
    out->path = xstrdup(o && o->path ? o->path : base->path);
}

/* --- heaps of targets --------------------------------------------------------------------- */

static void heap_set(struct heap *h, size_t i, struct target *t)
{
    h->v[i] = t;
    t->hidx = i;
}

static void heap_up(struct heap *h, size_t i)
{
    struct target *t = h->v[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->v[p]->key <= t->key)
            break;
        heap_set(h, i, h->v[p]);
        i = p;
    }
    heap_set(h, i, t);
}

static void heap_down(struct heap *h, size_t i)
{
    struct target *t = h->v[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1]->key < h->v[c]->key)
            c++;
        if (t->key <= h->v[c]->key)
            break;
        heap_set(h, i, h->v[c]);
        i = c;
    }
    heap_set(h, i, t);
}

static void heap_push(struct heap *h, struct target *t)
{
    h->v = xgrow(h->v, &h->cap, h->n + 1, sizeof(*h->v));
    heap_set(h, h->n++, t);
    heap_up(h, h->n - 1);
}

static void heap_remove(struct heap *h, struct target *t)
{
    size_t i = t->hidx;
    struct target *last = h->v[--h->n];
    if (i == h->n)
        return;
    heap_set(h, i, last);
    if (i > 0 && last->key < h->v[(i - 1) / 2]->key)
        heap_up(h, i);
    else
        heap_down(h, i);
}

static struct target *heap_top(const struct heap *h)
{
    return h->n ? h->v[0] : NULL;
}

/* --- hash table (lock held) --------------------------------------------------------------- */

static struct target **table_slot(struct hc_engine *e, const struct ip_addr *ip)
{
    struct target **p = &e->table[ip_hash(ip) & (e->table_size - 1)];
    while (*p && ip_cmp(&(*p)->ip, ip) != 0)
        p = &(*p)->hnext;
    return p;
}

static void table_grow(struct hc_engine *e)
{
    size_t nsize = e->table_size * 2;
    struct target **nt = xcalloc(nsize, sizeof(*nt));
    for (size_t i = 0; i < e->table_size; i++) {
        struct target *t = e->table[i];
        while (t) {
            struct target *next = t->hnext;
            size_t j = ip_hash(&t->ip) & (nsize - 1);
            t->hnext = nt[j];
            nt[j] = t;
            t = next;
        }
    }
    free(e->table);
    e->table = nt;
    e->table_size = nsize;
}

static void wake(struct hc_engine *e)
{
    uint64_t one = 1;
    ssize_t r;
    do {
        r = write(e->evfd, &one, sizeof(one));
    } while (r < 0 && errno == EINTR);
}

static void target_free(struct target *t, const struct cfg *defcfg)
{
    if (!t)
        return;
    if (t->cfg != defcfg) {
        cfg_release(t->cfg);
        free(t->cfg);
    }
    cfg_release(t->pending_cfg);
    free(t->pending_cfg);
    free(t);
}

/* --- reporting results -------------------------------------------------------------------- */

static void schedule(struct hc_engine *e, struct target *t, int64_t key)
{
    t->state = T_IDLE;
    t->key = key;
    heap_push(&e->due, t);
}

/* The next check of t is due one interval after the latest started (now, if that passed). */
static void schedule_next(struct hc_engine *e, struct target *t)
{
    int64_t now = mono_ns(), key = t->started_ns + (int64_t)t->cfg->interval_ms * MS_NS;
    schedule(e, t, key > now ? key : now);
}

/* A check of t that could not start for a local reason: no verdict on t. */
static void local_error(struct hc_engine *e, struct target *t, const char *what, int err)
{
    char et[128], ip[IP_TEXT_MAX];
    int64_t now = mono_ns();
    atomic_fetch_add(&e->local_errors, 1);
    if (now - e->last_local_log_ns >= 1000 * MS_NS) {
        e->last_local_log_ns = now;
        errno_text(err, et, sizeof(et));
        log_warn("msg=\"health check could not start; retried next interval\" ip=%s what=%s "
                 "error=\"%s\" local_errors=%llu",
                 ip_format(&t->ip, ip), what, et,
                 (unsigned long long)atomic_load(&e->local_errors));
    }
    schedule_next(e, t);
}

/* Record the verdict of a finished check of t (idle again, its resources released), schedule
 * the next one, and report a transition. */
static void record(struct hc_engine *e, struct target *t, int ok, const char *err)
{
    int changed = 0, up = 0;
    uint64_t checks = 0;
    char errcopy[HC_ERROR_MAX] = "";

    schedule_next(e, t);
    pthread_mutex_lock(&e->lock);
    if (!t->removed) {
        t->checks++;
        t->last_ok = ok;
        t->last_check_ms = wall_ms();
        if (ok) {
            if (!t->cons_ok)
                t->run_started_ms = t->last_check_ms;
            t->cons_ok++;
            t->cons_fail = 0;
            if (!t->up && t->cons_ok >= t->cfg->rise)
                changed = 1;
        } else {
            t->failures++;
            if (!t->cons_fail)
                t->run_started_ms = t->last_check_ms;
            t->cons_fail++;
            t->cons_ok = 0;
            snprintf(t->last_error, sizeof(t->last_error), "%s", err);
            if (t->up && t->cons_fail >= t->cfg->fall)
                changed = 1;
        }
        if (changed) {
            t->up = !t->up;
            t->last_change_ms = t->last_check_ms;
            if (t->up) {
                e->down--;
                metrics_gauge_dec(e->m_downg);
            } else {
                e->down++;
                metrics_gauge_inc(e->m_downg);
                snprintf(errcopy, sizeof(errcopy), "%s", t->last_error);
            }
        }
        up = t->up;
        checks = t->checks;
    }
    pthread_mutex_unlock(&e->lock);
    if (!checks)
        return; /* removed meanwhile: nobody wants the verdict */

    atomic_fetch_add(&e->checks, 1);
    if (ok) {
        metrics_counter_inc(e->m_ok);
    } else {
        atomic_fetch_add(&e->failures, 1);
        metrics_counter_inc(e->m_fail);
    }
    if (!changed)
        return;
    char ip[IP_TEXT_MAX], q[HC_ERROR_MAX + 16];
    ip_format(&t->ip, ip);
    if (up) {
        atomic_fetch_add(&e->tr_up, 1);
        metrics_counter_inc(e->m_up);
        log_info("msg=health_up ip=%s check=%s checks=%llu", ip, kind_name(t->cfg->kind),
                 (unsigned long long)checks);
    } else {
        atomic_fetch_add(&e->tr_down, 1);
        metrics_counter_inc(e->m_down);
        log_info("msg=health_down ip=%s check=%s checks=%llu error=%s", ip, kind_name(t->cfg->kind),
                 (unsigned long long)checks, log_quote(errcopy, q, sizeof(q)));
    }
    if (e->on_change)
        e->on_change(e->arg, &t->ip, up, errcopy);
}

static void in_flight_inc(struct hc_engine *e)
{
    e->in_flight++;
    atomic_store(&e->in_flight_pub, e->in_flight);
    if (e->in_flight > atomic_load(&e->max_in_flight))
        atomic_store(&e->max_in_flight, e->in_flight);
}

static void in_flight_dec(struct hc_engine *e)
{
    e->in_flight--;
    atomic_store(&e->in_flight_pub, e->in_flight);
}

/* --- TCP checks --------------------------------------------------------------------------- */

static int is_local_errno(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM ||
           err == EADDRNOTAVAIL || err == EAGAIN;
}

static void tcp_start(struct hc_engine *e, struct target *t)
{
    struct sockaddr_storage ss;
    socklen_t len = make_sockaddr(&t->ip, t->cfg->port, &ss);
    char err[HC_ERROR_MAX], et[128];
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        local_error(e, t, "socket", errno);
        return;
    }
    set_linger0(fd);
    if (connect(fd, (struct sockaddr *)&ss, len) == 0) {
        close(fd);
        record(e, t, 1, "");
        return;
    }
    if (errno != EINPROGRESS) {
        int saved = errno;
        close(fd);
        if (is_local_errno(saved)) {
            local_error(e, t, "connect", saved);
            return;
        }
        errno_text(saved, et, sizeof(et));
        snprintf(err, sizeof(err), "connect: %s", et);
        record(e, t, 0, err);
        return;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t)(uintptr_t)t};
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int saved = errno;
        close(fd);
        local_error(e, t, "epoll_ctl", saved);
        return;
    }
    t->fd = fd;
    t->state = T_TCP;
    t->key = t->started_ns + (int64_t)t->cfg->timeout_ms * MS_NS;
    heap_push(&e->deadline, t);
    in_flight_inc(e);
}

/* Release a TCP check's socket and slot. */
static void tcp_end(struct hc_engine *e, struct target *t)
{
    heap_remove(&e->deadline, t);
    (void)epoll_ctl(e->epfd, EPOLL_CTL_DEL, t->fd, NULL);
    close(t->fd);
    t->fd = -1;
    t->state = T_NEW;
    in_flight_dec(e);
}

static void tcp_event(struct hc_engine *e, struct target *t, uint32_t events)
{
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    char err[HC_ERROR_MAX], et[128];

    if (t->state != T_TCP)
        return;
    if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
        soerr = errno;
    tcp_end(e, t);
    if (!soerr && (events & EPOLLOUT) && !(events & (EPOLLERR | EPOLLHUP))) {
        record(e, t, 1, "");
        return;
    }
    if (soerr) {
        errno_text(soerr, et, sizeof(et));
        snprintf(err, sizeof(err), "connect: %s", et);
    } else {
        snprintf(err, sizeof(err), "connect: connection closed");
    }
    record(e, t, 0, err);
}

static void tcp_expire(struct hc_engine *e, int64_t now)
{
    struct target *t;
    char err[HC_ERROR_MAX];
    while ((t = heap_top(&e->deadline)) && t->key <= now) {
        tcp_end(e, t);
        snprintf(err, sizeof(err), "connect: timed out after %u ms", t->cfg->timeout_ms);
        record(e, t, 0, err);
    }
}

/* --- HTTP(S) checks ----------------------------------------------------------------------- */

static size_t http_body(char *p, size_t size, size_t n, void *ud)
{
    struct http_call *c = ud;
    (void)p;
    c->body += size * n;
    if (c->body > HC_BODY_MAX) {
        c->capped = 1;
        return 0; /* cut off: the status decides */
    }
    return size * n;
}

static int http_sockopt(void *ud, curl_socket_t fd, curlsocktype purpose)
{
    (void)ud;
    if (purpose == CURLSOCKTYPE_IPCXN)
        set_linger0(fd);
    return CURL_SOCKOPT_OK;
}

static void http_call_free(struct http_call *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->easy);
    curl_slist_free_all(c->headers);
    free(c);
}

static void http_start(struct hc_engine *e, struct target *t)
{
    const struct cfg *cfg = t->cfg;
    char host[IP_TEXT_MAX + 2], hdr[IP_TEXT_MAX + 16];
    size_t ulen = strlen(cfg->path) + sizeof(host) + 32;
    char *url = xmalloc(ulen);
    struct http_call *c = xcalloc(1, sizeof(*c));
    CURLMcode mrc;

    c->t = t;
    host_text(&t->ip, host, sizeof(host));
    snprintf(url, ulen, "%s://%s:%u%s", cfg->kind == HC_HTTPS ? "https" : "http", host, cfg->port,
             cfg->path);
    snprintf(hdr, sizeof(hdr), "Host: %s", host);
    c->headers = curl_slist_append(NULL, hdr);
    if (c->headers)
        c->headers = curl_slist_append(c->headers, "Connection: close");
    c->easy = curl_easy_init();
    if (!c->easy || !c->headers) {
        http_call_free(c);
        free(url);
        local_error(e, t, "curl_easy_init", ENOMEM);
        return;
    }
    CURL *h = c->easy;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PRIVATE, c);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)cfg->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->timeout_ms);
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, http_sockopt);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "r53reg-health/" R53REG_VERSION);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, cfg->tls_verify ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, cfg->tls_verify ? 2L : 0L);
    free(url); /* curl copied it */
    mrc = curl_multi_add_handle(e->multi, h);
    if (mrc != CURLM_OK) {
        http_call_free(c);
        local_error(e, t, "curl_multi_add_handle", ENOMEM);
        return;
    }
    t->call = c;
    t->state = T_HTTP;
    in_flight_inc(e);
}

/* Release an HTTP check's handle and slot. */
static void http_end(struct hc_engine *e, struct target *t)
{
    curl_multi_remove_handle(e->multi, t->call->easy);
    http_call_free(t->call);
    t->call = NULL;
    t->state = T_NEW;
    in_flight_dec(e);
}

static void http_done(struct hc_engine *e, CURL *easy, CURLcode res)
{
    struct http_call *c = NULL;
    struct target *t;
    long code = 0, oserr = 0;
    char err[HC_ERROR_MAX], et[128];
    int ok = 0;

    char *priv = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    c = (struct http_call *)(void *)priv;
    t = c->t;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &oserr);
    if (res == CURLE_WRITE_ERROR && c->capped)
        res = CURLE_OK;
    if (res == CURLE_OK) {
        ok = code >= t->cfg->status_min && code <= t->cfg->status_max;
        snprintf(err, sizeof(err), "http: status %ld", code);
    } else if (res == CURLE_OPERATION_TIMEDOUT) {
        snprintf(err, sizeof(err), "http: timed out after %u ms (%.100s)", t->cfg->timeout_ms,
                 c->errbuf[0] ? c->errbuf : curl_easy_strerror(res));
    } else if (res == CURLE_COULDNT_CONNECT && oserr) {
        errno_text((int)oserr, et, sizeof(et));
        snprintf(err, sizeof(err), "http: connect: %s", et);
    } else {
        snprintf(err, sizeof(err), "http: %.150s",
                 c->errbuf[0] ? c->errbuf : curl_easy_strerror(res));
    }
    http_end(e, t);
    record(e, t, ok, ok ? "" : err);
}

static void curl_drain(struct hc_engine *e)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(e->multi, &left))) {
        if (m->msg == CURLMSG_DONE)
            http_done(e, m->easy_handle, m->data.result);
    }
}

static int curl_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct hc_engine *e = userp;
    struct epoll_event ev = {0};
    (void)easy;

    if (what == CURL_POLL_REMOVE) {
        (void)epoll_ctl(e->epfd, EPOLL_CTL_DEL, s, NULL);
        return 0;
    }
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
    ev.data.u64 = ((uint64_t)s << 2) | TAG_CURL;
    if (socketp) {
        if (epoll_ctl(e->epfd, EPOLL_CTL_MOD, s, &ev) == 0 || errno != ENOENT)
            return 0;
    }
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, s, &ev) != 0 && errno == EEXIST)
        (void)epoll_ctl(e->epfd, EPOLL_CTL_MOD, s, &ev);
    curl_multi_assign(e->multi, s, e); /* any non-NULL marks "in the epoll set" */
    return 0;
}

static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct hc_engine *e = userp;
    (void)multi;
    e->curl_due_ns = timeout_ms < 0 ? -1 : mono_ns() + (int64_t)timeout_ms * MS_NS;
    return 0;
}

static void curl_action(struct hc_engine *e, curl_socket_t s, int mask)
{
    int running = 0;
    curl_multi_socket_action(e->multi, s, mask, &running);
    curl_drain(e);
}

/* --- the engine thread -------------------------------------------------------------------- */

static void cancel_check(struct hc_engine *e, struct target *t)
{
    switch (t->state) {
    case T_IDLE: heap_remove(&e->due, t); break;
    case T_TCP: tcp_end(e, t); break;
    case T_HTTP: http_end(e, t); break;
    case T_NEW: break;
    }
    t->state = T_NEW;
}

/* Apply queued adds and removes. */
static void apply_queues(struct hc_engine *e)
{
    struct target *adds, *rms, *t;
    int64_t now = mono_ns();

    pthread_mutex_lock(&e->lock);
    adds = e->add_queue;
    rms = e->rm_queue;
    e->add_queue = e->rm_queue = NULL;
    for (t = adds; t; t = t->add_next) {
        t->queued_add = 0;
        if (t->removed)
            continue;
        if (t->has_pending_cfg) {
            if (t->cfg != &e->defcfg) {
                cfg_release(t->cfg);
                free(t->cfg);
            }
            t->cfg = t->pending_cfg ? t->pending_cfg : &e->defcfg;
            t->pending_cfg = NULL;
            t->has_pending_cfg = 0;
        }
        if (t->state == T_NEW)
            schedule(e, t,
                     now + (int64_t)(rng_next(&e->rng) % ((uint64_t)t->cfg->interval_ms * MS_NS)));
    }
    pthread_mutex_unlock(&e->lock);
    while ((t = rms)) {
        rms = t->rm_next;
        cancel_check(e, t);
        target_free(t, &e->defcfg);
    }
}

static void start_due(struct hc_engine *e, int64_t now)
{
    struct target *t;
    while (e->in_flight < e->max_parallel && (t = heap_top(&e->due)) && t->key <= now) {
        heap_remove(&e->due, t);
        t->state = T_NEW;
        t->started_ns = now;
        if (t->cfg->kind == HC_TCP)
            tcp_start(e, t);
        else
            http_start(e, t);
    }
}

static int wait_ms(struct hc_engine *e, int64_t now)
{
    int64_t next = INT64_MAX;
    struct target *t;
    if ((t = heap_top(&e->deadline)))
        next = t->key;
    if (e->curl_due_ns >= 0 && e->curl_due_ns < next)
        next = e->curl_due_ns;
    if (e->in_flight < e->max_parallel && (t = heap_top(&e->due)) && t->key < next)
        next = t->key;
    if (next == INT64_MAX)
        return -1;
    if (next <= now)
        return 0;
    int64_t ms = (next - now + MS_NS - 1) / MS_NS;
    return ms > 60000 ? 60000 : (int)ms;
}

static void *engine_main(void *arg)
{
    struct hc_engine *e = arg;
    struct epoll_event evs[MAX_EVENTS];

    for (;;) {
        apply_queues(e);
        if (atomic_load(&e->stop))
            break;
        int64_t now = mono_ns();
        tcp_expire(e, now);
        if (e->curl_due_ns >= 0 && e->curl_due_ns <= now) {
            e->curl_due_ns = -1;
            curl_action(e, CURL_SOCKET_TIMEOUT, 0);
        }
        now = mono_ns();
        start_due(e, now);
        int n = epoll_wait(e->epfd, evs, MAX_EVENTS, wait_ms(e, mono_ns()));
        if (n < 0) {
            if (errno != EINTR)
                log_error("msg=\"health epoll_wait failed\" errno=%d", errno);
            continue;
        }
        for (int i = 0; i < n; i++) {
            uint64_t d = evs[i].data.u64;
            uint32_t ev = evs[i].events;
            if (d == TAG_WAKE) {
                uint64_t v;
                (void)!read(e->evfd, &v, sizeof(v));
            } else if (d & TAG_CURL) {
                int mask = ((ev & EPOLLIN) ? CURL_CSELECT_IN : 0) |
                           ((ev & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                           ((ev & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
                curl_action(e, (curl_socket_t)(d >> 2), mask);
            } else {
                tcp_event(e, (struct target *)(uintptr_t)d, ev);
            }
        }
    }

    /* Stopping: cancel whatever is in flight; hc_engine_destroy() frees the rest. */
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < e->table_size; i++)
        for (struct target *t = e->table[i]; t; t = t->hnext)
            cancel_check(e, t);
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

/* --- public API --------------------------------------------------------------------------- */

struct hc_engine *hc_engine_create(const struct hc_options *opt)
{
    static const struct hc_options none;
    struct hc_engine *e = NULL;
    char detail[160];
    const struct hc_check *d;
    struct metrics_registry *reg = metrics_default();
    struct metrics_counter_family *cf;
    struct metrics_gauge_family *gf;
    const struct cfg builtin = {
        .kind = HC_TCP,
        .port = 0,
        .path = (char *)"/",
        .status_min = HC_DEFAULT_STATUS_MIN,
        .status_max = HC_DEFAULT_STATUS_MAX,
        .interval_ms = HC_DEFAULT_INTERVAL_MS,
        .timeout_ms = HC_DEFAULT_TIMEOUT_MS,
        .rise = HC_DEFAULT_RISE,
        .fall = HC_DEFAULT_FALL,
        .tls_verify = 0,
    };

    if (!opt)
        opt = &none;
    d = &opt->defaults;
    if (hc_check_validate(d, detail, sizeof(detail)) != RC_OK) {
        log_error("msg=\"health engine not started\" reason=\"%s\"", detail);
        return NULL;
    }
    if (opt->max_parallel > 100000) {
        log_error("msg=\"health engine not started\" reason=\"max_parallel must be 1..100000\"");
        return NULL;
    }
    e = xcalloc(1, sizeof(*e));
    e->epfd = e->evfd = -1;
    e->curl_due_ns = -1;
    cfg_resolve(&builtin, d, &e->defcfg);
    if (e->defcfg.status_min > e->defcfg.status_max) {
        log_error("msg=\"health engine not started\" reason=\"status_min exceeds status_max\"");
        goto fail;
    }
    e->max_parallel = opt->max_parallel ? opt->max_parallel : HC_DEFAULT_MAX_PARALLEL;
    e->start_down = opt->start_down;
    e->on_change = opt->on_change;
    e->arg = opt->arg;
    e->rng = (uint64_t)mono_ns() ^ (uint64_t)(uintptr_t)e;
    pthread_mutex_init(&e->lock, NULL);
    e->table_size = 64;
    e->table = xcalloc(e->table_size, sizeof(*e->table));

    cf = metrics_counter_create(reg, "r53reg_health_checks_total", "Health checks completed",
                                "result");
    e->m_ok = metrics_counter_with(cf, "ok");
    e->m_fail = metrics_counter_with(cf, "fail");
    cf = metrics_counter_create(reg, "r53reg_health_transitions_total",
                                "Health state changes of checked backends", "to");
    e->m_up = metrics_counter_with(cf, "up");
    e->m_down = metrics_counter_with(cf, "down");
    gf = metrics_gauge_create(reg, "r53reg_health_targets", "Backends health-checked", NULL);
    e->m_targets = metrics_gauge_child(gf);
    gf = metrics_gauge_create(reg, "r53reg_health_down", "Health-checked backends now down", NULL);
    e->m_downg = metrics_gauge_child(gf);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("msg=\"health engine not started\" reason=\"curl_global_init failed\"");
        goto fail;
    }
    e->curl_inited = 1;
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    e->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    e->multi = curl_multi_init();
    if (e->epfd < 0 || e->evfd < 0 || !e->multi) {
        log_error("msg=\"health engine not started\" reason=\"epoll, eventfd or curl multi "
                  "handle unavailable\" errno=%d",
                  errno);
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_WAKE};
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->evfd, &ev) != 0) {
        log_error("msg=\"health engine not started\" reason=\"epoll_ctl failed\" errno=%d", errno);
        goto fail;
    }
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
    if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
        log_error("msg=\"health engine not started\" reason=\"pthread_create failed\"");
        goto fail;
    }
    e->thread_started = 1;
    /* The defaults of targets added without an override (the server's --check*). */
    log_info("msg=health_engine_started default_check=%s default_port=%u interval_ms=%u "
             "timeout_ms=%u rise=%u fall=%u max_parallel=%u",
             kind_name(e->defcfg.kind), e->defcfg.port, e->defcfg.interval_ms, e->defcfg.timeout_ms,
             e->defcfg.rise, e->defcfg.fall, e->max_parallel);
    return e;
fail:
    hc_engine_destroy(e);
    return NULL;
}

void hc_engine_destroy(struct hc_engine *e)
{
    if (!e)
        return;
    if (e->thread_started) {
        atomic_store(&e->stop, 1);
        wake(e);
        pthread_join(e->thread, NULL);
    }
    /* Single-threaded from here. The thread's last turn applied the queues and cancelled
     * every check; what is left is memory. Removed targets are no longer in the table. */
    while (e->rm_queue) {
        struct target *t = e->rm_queue;
        e->rm_queue = t->rm_next;
        target_free(t, &e->defcfg);
    }
    for (size_t i = 0; i < e->table_size; i++) {
        struct target *t = e->table[i];
        while (t) {
            struct target *next = t->hnext;
            target_free(t, &e->defcfg);
            t = next;
        }
    }
    if (e->table) {
        metrics_gauge_add(e->m_targets, -(double)e->count);
        metrics_gauge_add(e->m_downg, -(double)e->down);
        pthread_mutex_destroy(&e->lock);
    }
    free(e->table);
    free(e->due.v);
    free(e->deadline.v);
    if (e->multi)
        curl_multi_cleanup(e->multi);
    if (e->epfd >= 0)
        close(e->epfd);
    if (e->evfd >= 0)
        close(e->evfd);
    if (e->curl_inited)
        curl_global_cleanup();
    cfg_release(&e->defcfg);
    free(e);
}

int hc_parse_status_range(const char *s, int *min, int *max)
{
    int v[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        int digits = 0;
        for (; *s >= '0' && *s <= '9' && digits < 4; s++, digits++)
            v[k] = v[k] * 10 + (*s - '0');
        if (digits != 3 || *s != (k ? '\0' : '-'))
            return -1;
        s++;
    }
    if (v[0] < 100 || v[1] > 599 || v[0] > v[1])
        return -1;
    *min = v[0];
    *max = v[1];
    return 0;
}

enum rc_code hc_engine_add(struct hc_engine *e, const struct ip_addr *ip,
                           const struct hc_check *override)
{
    return hc_engine_add_as(e, ip, override, e->start_down ? 0 : 1);
}

enum rc_code hc_engine_add_as(struct hc_engine *e, const struct ip_addr *ip,
                              const struct hc_check *override, int up)
{
    struct cfg *c = NULL;
    struct target **slot, *t;
    int was_empty;

    if (override) {
        if (hc_check_validate(override, NULL, 0) != RC_OK)
            return RC_BAD_REQUEST;
        c = xmalloc(sizeof(*c));
        cfg_resolve(&e->defcfg, override, c);
        if (!c->port || c->status_min > c->status_max) {
            cfg_release(c);
            free(c);
            return RC_BAD_REQUEST;
        }
    } else if (!e->defcfg.port) {
        return RC_BAD_REQUEST;
    }

    pthread_mutex_lock(&e->lock);
    was_empty = !e->add_queue && !e->rm_queue;
    slot = table_slot(e, ip);
    if ((t = *slot)) {
        cfg_release(t->pending_cfg);
        free(t->pending_cfg);
        t->pending_cfg = c;
        t->has_pending_cfg = 1;
    } else {
        t = xcalloc(1, sizeof(*t));
        t->ip = *ip;
        t->cfg = c ? c : &e->defcfg;
        t->state = T_NEW;
        t->fd = -1;
        t->up = !!up;
        t->added_ms = wall_ms();
        *slot = t;
        e->count++;
        metrics_gauge_inc(e->m_targets);
        if (!t->up) {
            e->down++;
            metrics_gauge_inc(e->m_downg);
        }
        if (e->count > e->table_size)
            table_grow(e);
    }
    if (!t->queued_add) {
        t->queued_add = 1;
        t->add_next = e->add_queue;
        e->add_queue = t;
    }
    pthread_mutex_unlock(&e->lock);
    if (was_empty)
        wake(e);
    return RC_OK;
}

enum rc_code hc_engine_remove(struct hc_engine *e, const struct ip_addr *ip)
{
    struct target **slot, *t;
    int was_empty;

    pthread_mutex_lock(&e->lock);
    slot = table_slot(e, ip);
    if (!(t = *slot)) {
        pthread_mutex_unlock(&e->lock);
        return RC_NOT_FOUND;
    }
    was_empty = !e->add_queue && !e->rm_queue;
    *slot = t->hnext;
    t->hnext = NULL;
    t->removed = 1;
    e->count--;
    metrics_gauge_dec(e->m_targets);
    if (!t->up) {
        e->down--;
        metrics_gauge_dec(e->m_downg);
    }
    t->rm_next = e->rm_queue;
    e->rm_queue = t;
    pthread_mutex_unlock(&e->lock);
    if (was_empty)
        wake(e);
    return RC_OK;
}

enum rc_code hc_engine_status(struct hc_engine *e, const struct ip_addr *ip, struct hc_status *out)
{
    struct target *t;
    enum rc_code rc = RC_NOT_FOUND;

    pthread_mutex_lock(&e->lock);
    if ((t = *table_slot(e, ip))) {
        out->up = t->up;
        out->consecutive_ok = t->cons_ok;
        out->consecutive_fail = t->cons_fail;
        out->checks = t->checks;
        out->failures = t->failures;
        out->last_ok = t->last_ok;
        memcpy(out->last_error, t->last_error, sizeof(out->last_error));
        out->last_check_ms = t->last_check_ms;
        out->last_change_ms = t->last_change_ms;
        out->added_ms = t->added_ms;
        out->run_started_ms = t->run_started_ms;
        rc = RC_OK;
    }
    pthread_mutex_unlock(&e->lock);
    return rc;
}

void hc_engine_stats(struct hc_engine *e, struct hc_stats *out)
{
    clockid_t cid;
    struct timespec ts;

    memset(out, 0, sizeof(*out));
    out->checks = atomic_load(&e->checks);
    out->failures = atomic_load(&e->failures);
    out->transitions_up = atomic_load(&e->tr_up);
    out->transitions_down = atomic_load(&e->tr_down);
    out->local_errors = atomic_load(&e->local_errors);
    out->in_flight = atomic_load(&e->in_flight_pub);
    out->max_in_flight = atomic_load(&e->max_in_flight);
    pthread_mutex_lock(&e->lock);
    out->targets = (unsigned)e->count;
    out->down = e->down;
    pthread_mutex_unlock(&e->lock);
    if (pthread_getcpuclockid(e->thread, &cid) == 0 && clock_gettime(cid, &ts) == 0)
        out->thread_cpu_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
