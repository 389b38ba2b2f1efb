/*
 * test_health.c: the health check engine (registry/checker/) against real listeners on
 * loopback.
 *
 * A responder owns N listening sockets, one per address 127.0.1.1..127.0.1.N, all on one port
 * (the engine checks one port per configuration): the first binds port 0, the others take the
 * same number. Each listener has a behaviour the test flips while the engine runs: accept and
 * close (TCP), answer HTTP with a status (optionally late, with a large body, or over TLS),
 * accept and never answer (hang), never accept (its backlog is full, so connects time out), or
 * closed (connects are refused). Every accepted connection is counted per listener, so the
 * tests count HTTP checks from the listener's side too; a TCP check leaves nothing to accept
 * (SYN, SYN-ACK, RST: registry/checker/probe_tcp.c), and test_tcp checks that it does not.
 *
 * Usage: test_health tcp|tcp_timeout|http|https|remove|parallel|destroy|api
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "registry/checker.h"
#include "util/metrics.h"

#define MAXL 32
#define WAIT_MS 15000 /* generous: sanitizer builds are slow */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static struct ip_addr ip_of(int i)
{
    struct ip_addr a;
    char s[32];
    snprintf(s, sizeof(s), "127.0.1.%d", i + 1);
    if (ip_parse(s, strlen(s), &a, NULL, 0) != RC_OK)
        abort();
    return a;
}

/* --- the responder ------------------------------------------------------------------------ */

enum mode {
    M_TCP,      /* accept, close */
    M_HTTP,     /* read the request, answer with status (after delay_ms) */
    M_HANG,     /* accept, read, never answer */
    M_NOACCEPT, /* never accept; the backlog is full */
    M_CLOSED,   /* no listener */
};

struct listener {
    int fd; /* -1 when closed; owned by the acceptor thread once running */
    atomic_int mode;
    atomic_int status;         /* M_HTTP */
    atomic_int delay_ms;       /* M_HTTP */
    atomic_int body_len;       /* M_HTTP */
    atomic_int tls;            /* M_HTTP over TLS */
    atomic_int accepts;        /* connections accepted */
    atomic_int requests;       /* HTTP requests read in full */
    atomic_int active;         /* this listener's share of srv.active */
    int want_close, want_open; /* guarded by srv.lock */
    char last_request[512];    /* guarded by srv.lock: the latest request head */
    int filler[2];             /* M_NOACCEPT: connections filling the backlog */
};

struct srv {
    int n;
    unsigned port;
    struct listener l[MAXL];
    pthread_mutex_t lock;
    pthread_t thread;
    atomic_int stop;
    atomic_int live;   /* worker threads alive */
    atomic_int active; /* connections accepted and not yet answered or closed */
    atomic_int max_active;
    SSL_CTX *tls;
};

static int listen_on(int i, unsigned port, unsigned *got)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t sl = sizeof(sin);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct ip_addr a = ip_of(i);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memcpy(&sin.sin_addr, a.b, 4);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, 64) != 0) {
        close(fd);
        return -1;
    }
    if (got) {
        getsockname(fd, (struct sockaddr *)&sin, &sl);
        *got = ntohs(sin.sin_port);
    }
    return fd;
}

/* Make l's backlog full: listen(0) allows one queued connection, then SYNs are dropped. */
static void fill_backlog(struct srv *s, struct listener *l, int i)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    struct ip_addr a = ip_of(i);
    memcpy(&sin.sin_addr, a.b, 4);
    listen(l->fd, 0);
    for (int k = 0; k < 2; k++) {
        l->filler[k] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        connect(l->filler[k], (struct sockaddr *)&sin, sizeof(sin));
    }
    sleep_ms(50);
}

struct conn {
    struct srv *s;
    struct listener *l;
    int fd;
};

static void active_inc(struct srv *s, struct listener *l)
{
    atomic_fetch_add(&l->active, 1);
    int a = atomic_fetch_add(&s->active, 1) + 1, m = atomic_load(&s->max_active);
    while (a > m && !atomic_compare_exchange_weak(&s->max_active, &m, a))
        ;
}

/* Read the request head (until a blank line); 1 when complete. */
static int read_head(struct srv *s, int fd, SSL *ssl, char *buf, size_t cap)
{
    size_t len = 0;
    while (!atomic_load(&s->stop) && len + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (!ssl || !SSL_pending(ssl)) {
            int r = poll(&p, 1, 50);
            if (r == 0)
                continue;
            if (r < 0)
                return 0;
        }
        ssize_t got = ssl ? SSL_read(ssl, buf + len, (int)(cap - 1 - len))
                          : read(fd, buf + len, cap - 1 - len);
        if (got <= 0)
            return 0;
        len += (size_t)got;
        buf[len] = 0;
        if (strstr(buf, "\r\n\r\n"))
            return 1;
    }
    return 0;
}

/* Wait until the peer closes (or the responder stops). */
static void wait_eof(struct srv *s, int fd)
{
    char b[256];
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, 50);
        if (r < 0 || (r > 0 && read(fd, b, sizeof(b)) <= 0))
            return;
    }
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct srv *s = c->s;
    struct listener *l = c->l;
    char head[2048];
    SSL *ssl = NULL;
    int counted = 1;

    active_inc(s, l);
    if (atomic_load(&l->tls)) {
        ssl = SSL_new(s->tls);
        SSL_set_fd(ssl, c->fd);
        if (SSL_accept(ssl) != 1)
            goto out;
    }
    if (!read_head(s, c->fd, ssl, head, sizeof(head)))
        goto out;
    atomic_fetch_add(&l->requests, 1);
    pthread_mutex_lock(&s->lock);
    snprintf(l->last_request, sizeof(l->last_request), "%.500s", head);
    pthread_mutex_unlock(&s->lock);
    if (atomic_load(&l->mode) == M_HANG) {
        wait_eof(s, c->fd);
        goto out;
    }
    int delay = atomic_load(&l->delay_ms), status = atomic_load(&l->status);
    int body = atomic_load(&l->body_len);
    if (delay)
        sleep_ms(delay);
    /* No longer counted as active before answering: the count never exceeds the checks the
     * engine has in flight. */
    atomic_fetch_sub(&s->active, 1);
    atomic_fetch_sub(&l->active, 1);
    counted = 0;
    char hdr[256];
    int hl =
        snprintf(hdr, sizeof(hdr),
                 "HTTP/1.1 %d X\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", status, body);
    char *msg = malloc((size_t)hl + (size_t)body);
    memcpy(msg, hdr, (size_t)hl);
    memset(msg + hl, 'x', (size_t)body);
    size_t off = 0, total = (size_t)hl + (size_t)body;
    while (off < total) {
        ssize_t w = ssl ? SSL_write(ssl, msg + off, (int)(total - off))
                        : send(c->fd, msg + off, total - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(msg);
    wait_eof(s, c->fd); /* let the client close first, as the engine does */
out:
    if (counted) {
        atomic_fetch_sub(&s->active, 1);
        atomic_fetch_sub(&l->active, 1);
    }
    if (ssl)
        SSL_free(ssl);
    close(c->fd);
    free(c);
    atomic_fetch_sub(&s->live, 1);
    return NULL;
}

static void *acceptor_main(void *arg)
{
    struct srv *s = arg;
    struct pollfd p[MAXL];
    int idx[MAXL];

    while (!atomic_load(&s->stop)) {
        int np = 0;
        pthread_mutex_lock(&s->lock);
        for (int i = 0; i < s->n; i++) {
            struct listener *l = &s->l[i];
            if (l->want_close && l->fd >= 0) {
                close(l->fd);
                l->fd = -1;
            }
            l->want_close = 0;
            if (l->want_open && l->fd < 0)
                l->fd = listen_on(i, s->port, NULL);
            l->want_open = 0;
            if (l->fd >= 0 && atomic_load(&l->mode) != M_NOACCEPT) {
                p[np].fd = l->fd;
                p[np].events = POLLIN;
                idx[np++] = i;
            }
        }
        pthread_mutex_unlock(&s->lock);
        if (poll(p, (nfds_t)np, 10) <= 0)
            continue;
        for (int k = 0; k < np; k++) {
            if (!(p[k].revents & POLLIN))
                continue;
            struct listener *l = &s->l[idx[k]];
            int fd = accept4(p[k].fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0)
                continue;
            atomic_fetch_add(&l->accepts, 1);
            if (atomic_load(&l->mode) == M_TCP) {
                close(fd);
                continue;
            }
            struct conn *c = malloc(sizeof(*c));
            pthread_t th;
            pthread_attr_t at;
            c->s = s;
            c->l = l;
            c->fd = fd;
            atomic_fetch_add(&s->live, 1);
            pthread_attr_init(&at);
            pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
            if (pthread_create(&th, &at, conn_main, c) != 0) {
                atomic_fetch_sub(&s->live, 1);
                close(fd);
                free(c);
            }
            pthread_attr_destroy(&at);
        }
    }
    return NULL;
}

static SSL_CTX *make_tls(void)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    X509_NAME *nm;
    if (!pk || !x || !ctx)
        abort();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pk);
    nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"r53reg-test", -1, -1,
                               0);
    X509_set_issuer_name(x, nm);
    if (!X509_sign(x, pk, EVP_sha256()) || SSL_CTX_use_certificate(ctx, x) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, pk) != 1)
        abort();
    X509_free(x);
    EVP_PKEY_free(pk);
    return ctx;
}

/* Open n listeners (all in mode m) on one port; srv_run() starts accepting. */
static void srv_start(struct srv *s, int n, enum mode m)
{
    memset(s, 0, sizeof(*s));
    s->n = n;
    pthread_mutex_init(&s->lock, NULL);
    for (int attempt = 0;; attempt++) {
        int ok = 1;
        s->l[0].fd = listen_on(0, 0, &s->port);
        for (int i = 1; i < n && ok; i++)
            if ((s->l[i].fd = listen_on(i, s->port, NULL)) < 0)
                ok = 0;
        if (ok && s->l[0].fd >= 0)
            break;
        for (int i = 0; i < n; i++)
            if (s->l[i].fd >= 0)
                close(s->l[i].fd);
        if (attempt == 50) {
            fprintf(stderr, "cannot bind %d listeners on one port\n", n);
            exit(1);
        }
    }
    for (int i = 0; i < n; i++) {
        struct listener *l = &s->l[i];
        l->filler[0] = l->filler[1] = -1;
        atomic_store(&l->mode, m);
        atomic_store(&l->status, 200);
        if (m == M_NOACCEPT)
            fill_backlog(s, l, i);
    }
}

static void srv_run(struct srv *s)
{
    pthread_create(&s->thread, NULL, acceptor_main, s);
}

static void srv_set_mode(struct srv *s, int i, enum mode m)
{
    atomic_store(&s->l[i].mode, m);
}

/* Close listener i (connects are refused from now on) or open it again; returns when done. */
static void srv_listen(struct srv *s, int i, int on)
{
    pthread_mutex_lock(&s->lock);
    if (on)
        s->l[i].want_open = 1;
    else
        s->l[i].want_close = 1;
    pthread_mutex_unlock(&s->lock);
    for (;;) {
        pthread_mutex_lock(&s->lock);
        int done = on ? !s->l[i].want_open : !s->l[i].want_close;
        int fd = s->l[i].fd;
        pthread_mutex_unlock(&s->lock);
        if (done) {
            if (on && fd < 0) {
                fprintf(stderr, "cannot listen on 127.0.1.%d:%u again\n", i + 1, s->port);
                exit(1);
            }
            return;
        }
        sleep_ms(2);
    }
}

static void srv_stop(struct srv *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    while (atomic_load(&s->live) > 0)
        sleep_ms(5);
    for (int i = 0; i < s->n; i++) {
        if (s->l[i].fd >= 0)
            close(s->l[i].fd);
        for (int k = 0; k < 2; k++)
            if (s->l[i].filler[k] >= 0)
                close(s->l[i].filler[k]);
    }
    pthread_mutex_destroy(&s->lock);
    if (s->tls)
        SSL_CTX_free(s->tls);
}

/* --- recording callbacks ------------------------------------------------------------------ */

struct event {
    struct ip_addr ip;
    int up;
    char error[HC_ERROR_MAX];
    struct hc_status st; /* hc_engine_status() called from the callback */
    int st_rc;
    int accepts; /* the listener's accepts when the callback ran */
    int requests;
};

struct recorder {
    pthread_mutex_t lock;
    struct hc_engine *e; /* guarded by lock */
    struct srv *s;
    int n; /* guarded by lock */
    struct event ev[64];
};

static void on_change(void *arg, const struct ip_addr *ip, int up, const char *err)
{
    struct recorder *r = arg;
    struct event ev;
    struct hc_engine *e;

    memset(&ev, 0, sizeof(ev));
    ev.ip = *ip;
    ev.up = up;
    snprintf(ev.error, sizeof(ev.error), "%s", err ? err : "(null)");
    pthread_mutex_lock(&r->lock);
    e = r->e;
    pthread_mutex_unlock(&r->lock);
    ev.st_rc = hc_engine_status(e, ip, &ev.st); /* callbacks may call back into the engine */
    if (r->s && ip->b[2] == 1) {
        int i = ip->b[3] - 1;
        if (i >= 0 && i < r->s->n) {
            ev.accepts = atomic_load(&r->s->l[i].accepts);
            ev.requests = atomic_load(&r->s->l[i].requests);
        }
    }
    pthread_mutex_lock(&r->lock);
    if (r->n < 64)
        r->ev[r->n++] = ev;
    pthread_mutex_unlock(&r->lock);
}

static void rec_init(struct recorder *r, struct srv *s)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    r->s = s;
}

static void rec_set_engine(struct recorder *r, struct hc_engine *e)
{
    pthread_mutex_lock(&r->lock);
    r->e = e;
    pthread_mutex_unlock(&r->lock);
}

static int rec_count(struct recorder *r)
{
    pthread_mutex_lock(&r->lock);
    int n = r->n;
    pthread_mutex_unlock(&r->lock);
    return n;
}

/* Wait until the recorder holds n events; returns 1 if it did in time. */
static int rec_wait(struct recorder *r, int n)
{
    int64_t end = now_ms() + WAIT_MS;
    while (rec_count(r) < n) {
        if (now_ms() > end)
            return 0;
        sleep_ms(5);
    }
    return 1;
}

static struct event rec_get(struct recorder *r, int i)
{
    pthread_mutex_lock(&r->lock);
    struct event ev = r->ev[i];
    pthread_mutex_unlock(&r->lock);
    return ev;
}

static struct hc_options fast_opts(enum hc_kind kind, unsigned port, struct recorder *r)
{
    struct hc_options o;
    memset(&o, 0, sizeof(o));
    o.defaults.kind = kind;
    o.defaults.port = port;
    o.defaults.interval_ms = 50;
    o.defaults.timeout_ms = 200;
    o.defaults.rise = 2;
    o.defaults.fall = 3;
    o.on_change = on_change;
    o.arg = r;
    return o;
}

static struct hc_status status_of(struct hc_engine *e, int i)
{
    struct hc_status st;
    struct ip_addr a = ip_of(i);
    memset(&st, 0, sizeof(st));
    if (hc_engine_status(e, &a, &st) != RC_OK)
        st.checks = UINT64_MAX;
    return st;
}

/* Wait until target i has completed at least n checks. */
static int wait_checks(struct hc_engine *e, int i, uint64_t n)
{
    int64_t end = now_ms() + WAIT_MS;
    for (;;) {
        struct hc_status st = status_of(e, i);
        if (st.checks != UINT64_MAX && st.checks >= n)
            return 1;
        if (now_ms() > end)
            return 0;
        sleep_ms(5);
    }
}

static void add(struct hc_engine *e, int i, const struct hc_check *ov)
{
    struct ip_addr a = ip_of(i);
    CHECK_INT(hc_engine_add(e, &a, ov), RC_OK);
}

/* The rendered value of one metric line ("name{labels}"), or -1. */
static double metric(const char *line)
{
    char *text = NULL;
    size_t len = 0;
    double v = -1;
    metrics_render(metrics_default(), &text, &len);
    for (char *p = text; p && *p;) {
        char *nl = strchr(p, '\n');
        size_t ll = strlen(line);
        if (!strncmp(p, line, ll) && p[ll] == ' ')
            v = strtod(p + ll + 1, NULL);
        p = nl ? nl + 1 : NULL;
    }
    free(text);
    return v;
}

/* --- tests -------------------------------------------------------------------------------- */

/* Listening targets stay up; one without a listener goes down after exactly `fall` refused
 * checks, once, with "connection refused"; listening again brings it up after `rise`. */
static void test_tcp(void)
{
    struct srv s;
    struct recorder r;
    struct hc_stats stats;
    double ok0 = metric("r53reg_health_checks_total{result=\"ok\"}");
    double down0 = metric("r53reg_health_transitions_total{to=\"down\"}");
    double targets0 = metric("r53reg_health_targets");
    if (ok0 < 0)
        ok0 = 0;
    if (down0 < 0)
        down0 = 0;
    if (targets0 < 0)
        targets0 = 0;

    srv_start(&s, 4, M_TCP);
    srv_run(&s);
    srv_listen(&s, 3, 0); /* 127.0.1.4: refused */
    rec_init(&r, &s);
    struct hc_options o = fast_opts(HC_TCP, s.port, &r);
    struct hc_engine *e = hc_engine_create(&o);
    CHECK(e != NULL);
    rec_set_engine(&r, e);
    for (int i = 0; i < 4; i++)
        add(e, i, NULL);
    CHECK_INT(metric("r53reg_health_targets"), targets0 + 4);

    CHECK(rec_wait(&r, 1));
    struct event ev = rec_get(&r, 0);
    CHECK_INT(ev.ip.b[3], 4);
    CHECK_INT(ev.up, 0);
    CHECK(strstr(ev.error, "connection refused") != NULL);
    CHECK_INT(ev.st_rc, RC_OK);
    CHECK_INT(ev.st.up, 0);
    CHECK_INT(ev.st.checks, 3); /* exactly `fall` checks */
    CHECK_INT(ev.st.failures, 3);
    CHECK_INT(ev.st.consecutive_fail, 3);
    CHECK(ev.st.last_change_ms > 0 && ev.st.last_change_ms == ev.st.last_check_ms);
    /* The streak began with its first failing check, about fall - 1 intervals earlier. */
    CHECK(ev.st.run_started_ms > 0 && ev.st.run_started_ms < ev.st.last_change_ms);
    CHECK(ev.st.last_change_ms - ev.st.run_started_ms >= (int64_t)o.defaults.interval_ms);
    CHECK_STR(ev.st.last_error, ev.error);

    /* The others stay up while checks go on; the down one is still checked, no new event. */
    for (int i = 0; i < 3; i++)
        CHECK(wait_checks(e, i, 6));
    CHECK(wait_checks(e, 3, 6));
    CHECK_INT(rec_count(&r), 1);
    for (int i = 0; i < 3; i++) {
        struct hc_status st = status_of(e, i);
        CHECK_INT(st.up, 1);
        CHECK_INT(st.failures, 0);
        CHECK_INT(st.last_ok, 1);
        CHECK_STR(st.last_error, "");
        CHECK_INT(st.last_change_ms, 0);
        /* The checks reached the listener (they passed) but left it no connection to accept:
         * the handshake's last ACK is held back and the socket reset. One the kernel's delayed
         * ACK timer (200 ms) beat, on a stalled engine thread, is accepted: allow a few. */
        CHECK(atomic_load(&s.l[i].accepts) * 2 <= (int)st.checks);
    }
    hc_engine_stats(e, &stats);
    CHECK_INT(stats.targets, 4);
    CHECK_INT(stats.down, 1);
    CHECK_INT(stats.transitions_down, 1);
    CHECK_INT(metric("r53reg_health_down"), 1);

    /* Listening again: up after exactly `rise` successes. */
    srv_listen(&s, 3, 1);
    CHECK(rec_wait(&r, 2));
    ev = rec_get(&r, 1);
    CHECK_INT(ev.ip.b[3], 4);
    CHECK_INT(ev.up, 1);
    CHECK_STR(ev.error, "");
    CHECK_INT(ev.st.up, 1);
    CHECK_INT(ev.st.consecutive_ok, 2);
    CHECK_INT(ev.st.consecutive_fail, 0);
    CHECK(strstr(ev.st.last_error, "connection refused") != NULL); /* kept after recovery */
    CHECK(ev.accepts <= 1); /* up after `rise` checks that left nothing to accept */
    sleep_ms(200);
    CHECK_INT(rec_count(&r), 2);

    hc_engine_stats(e, &stats);
    CHECK_INT(stats.down, 0);
    CHECK_INT(stats.transitions_up, 1);
    CHECK_INT(stats.transitions_down, 1);
    CHECK_INT(stats.local_errors, 0);
    CHECK(stats.checks >= 4 * 6);
    CHECK(stats.thread_cpu_ns > 0);
    CHECK(metric("r53reg_health_checks_total{result=\"ok\"}") >= ok0 + 3 * 6);
    CHECK_INT(metric("r53reg_health_transitions_total{to=\"down\"}"), down0 + 1);
    CHECK_INT(metric("r53reg_health_down"), 0);
    hc_engine_destroy(e);
    CHECK_INT(metric("r53reg_health_targets"), targets0);
    srv_stop(&s);
}

/* A connect that never completes (the listener's backlog is full) fails by timeout. */
static void test_tcp_timeout(void)
{
    struct srv s;
    struct recorder r;
    srv_start(&s, 2, M_TCP);
    srv_set_mode(&s, 1, M_NOACCEPT);
    fill_backlog(&s, &s.l[1], 1);
    srv_run(&s);
    rec_init(&r, &s);
    struct hc_options o = fast_opts(HC_TCP, s.port, &r);
    struct hc_engine *e = hc_engine_create(&o);
    rec_set_engine(&r, e);
    add(e, 0, NULL);
    add(e, 1, NULL);
    int64_t t0 = now_ms();
    CHECK(rec_wait(&r, 1));
    int64_t took = now_ms() - t0;
    struct event ev = rec_get(&r, 0);
    CHECK_INT(ev.ip.b[3], 2);
    CHECK_INT(ev.up, 0);
    CHECK_STR(ev.error, "connect: timed out after 200 ms");
    CHECK_INT(ev.st.checks, 3);
    CHECK(took >= 3 * 200); /* three full timeouts */
    CHECK_INT(status_of(e, 0).up, 1);
    hc_engine_destroy(e);
    srv_stop(&s);
}

/* 200 up, 500 down after exactly `fall` requests, back after `rise`; a 3xx is in the default
 * range, a large body is cut off and still succeeds, a hanging server fails by timeout, an
 * override narrows the range and changes the path; the request carries Host: <ip>. */
static void test_http(void)
{
    struct srv s;
    struct recorder r;
    srv_start(&s, 6, M_HTTP);
    atomic_store(&s.l[1].status, 500);
    atomic_store(&s.l[2].status, 302);
    atomic_store(&s.l[3].body_len, 1 << 20);
    srv_set_mode(&s, 4, M_HANG);
    atomic_store(&s.l[5].status, 302);
    srv_run(&s);
    rec_init(&r, &s);
    struct hc_options o = fast_opts(HC_HTTP, s.port, &r);
    o.defaults.path = "/healthz";
    struct hc_engine *e = hc_engine_create(&o);
    rec_set_engine(&r, e);
    for (int i = 0; i < 5; i++)
        add(e, i, NULL);
    struct hc_check strict = {.status_min = 200, .status_max = 299, .path = "/strict?x=1"};
    add(e, 5, &strict);

    /* Two downs: 500 (fast) and the hang (three 200 ms timeouts) and the strict 302. */
    CHECK(rec_wait(&r, 3));
    int seen500 = 0, seenhang = 0, seenstrict = 0;
    for (int k = 0; k < 3; k++) {
        struct event ev = rec_get(&r, k);
        CHECK_INT(ev.up, 0);
        CHECK_INT(ev.st.checks, 3);
        if (ev.ip.b[3] == 2) {
            seen500 = 1;
            CHECK_STR(ev.error, "http: status 500");
            CHECK_INT(ev.requests, 3); /* counted at the listener too */
        } else if (ev.ip.b[3] == 5) {
            seenhang = 1;
            CHECK(strstr(ev.error, "http: timed out after 200 ms") == ev.error);
            CHECK_INT(ev.requests, 3);
        } else if (ev.ip.b[3] == 6) {
            seenstrict = 1;
            CHECK_STR(ev.error, "http: status 302");
        } else {
            fprintf(stderr, "unexpected down event for 127.0.1.%d: %s\n", ev.ip.b[3], ev.error);
            check_failures++;
        }
    }
    CHECK(seen500 && seenhang && seenstrict);
    for (int i = 0; i < 4; i++)
        if (i != 1) {
            CHECK(wait_checks(e, i, 4));
            struct hc_status st = status_of(e, i);
            CHECK_INT(st.up, 1);
            CHECK_INT(st.failures, 0);
        }
    CHECK(atomic_load(&s.l[3].requests) >= 4);

    /* The requests themselves: path, Host = the IP (no port), no keep-alive. */
    char req0[512], req5[512], host[64] = "";
    pthread_mutex_lock(&s.lock);
    snprintf(req0, sizeof(req0), "%s", s.l[0].last_request);
    snprintf(req5, sizeof(req5), "%s", s.l[5].last_request);
    pthread_mutex_unlock(&s.lock);
    CHECK(strncmp(req0, "GET /healthz HTTP/1.1\r\n", 23) == 0);
    CHECK(strncmp(req5, "GET /strict?x=1 HTTP/1.1\r\n", 26) == 0);
    const char *h = strstr(req0, "\r\nHost: ");
    if (h)
        sscanf(h + 8, "%63[^\r]", host);
    CHECK_STR(host, "127.0.1.1");
    CHECK(strstr(req0, "\r\nConnection: close\r\n") != NULL);

    /* 500 -> 200: up again after `rise` successes. */
    atomic_store(&s.l[1].status, 200);
    CHECK(rec_wait(&r, 4));
    struct event ev = rec_get(&r, 3);
    CHECK_INT(ev.ip.b[3], 2);
    CHECK_INT(ev.up, 1);
    CHECK_INT(ev.st.consecutive_ok, 2);

    /* Replacing the override keeps the state: the strict one accepts 3xx again. */
    struct hc_check lax = {.status_min = 200, .status_max = 399};
    add(e, 5, &lax);
    CHECK(rec_wait(&r, 5));
    ev = rec_get(&r, 4);
    CHECK_INT(ev.ip.b[3], 6);
    CHECK_INT(ev.up, 1);
    CHECK(ev.st.checks >= 5);

    struct hc_stats stats;
    hc_engine_stats(e, &stats);
    CHECK_INT(stats.targets, 6);
    CHECK_INT(stats.down, 1); /* the hang */
    CHECK_INT(stats.local_errors, 0);
    hc_engine_destroy(e);
    srv_stop(&s);
}

/* HTTPS: certificate verification is off by default (a self-signed certificate for a name
 * passes), on when asked (it fails); TLS against a plain HTTP listener fails. */
static void test_https(void)
{
    struct srv s;
    struct recorder r;
    srv_start(&s, 3, M_HTTP);
    s.tls = make_tls();
    atomic_store(&s.l[0].tls, 1);
    atomic_store(&s.l[1].tls, 1);
    srv_run(&s);
    rec_init(&r, &s);
    struct hc_options o = fast_opts(HC_HTTPS, s.port, &r);
    struct hc_engine *e = hc_engine_create(&o);
    rec_set_engine(&r, e);
    /* TLS handshakes under ThreadSanitizer can take longer than 200 ms. */
    struct hc_check slow = {.timeout_ms = 3000}, verify = {.tls_verify = 1, .timeout_ms = 3000};
    add(e, 0, &slow);
    add(e, 1, &verify);
    add(e, 2, NULL); /* plain HTTP listener */
    CHECK(rec_wait(&r, 2));
    for (int k = 0; k < 2; k++) {
        struct event ev = rec_get(&r, k);
        CHECK_INT(ev.up, 0);
        CHECK(ev.ip.b[3] == 2 || ev.ip.b[3] == 3);
        printf("https down: 127.0.1.%d %s\n", ev.ip.b[3], ev.error);
        if (ev.ip.b[3] == 2)
            CHECK(strstr(ev.error, "certificate") != NULL || strstr(ev.error, "SSL") != NULL);
    }
    CHECK(wait_checks(e, 0, 4));
    struct hc_status st = status_of(e, 0);
    CHECK_INT(st.up, 1);
    CHECK_INT(st.failures, 0);
    CHECK_STR(st.last_error, "");
    CHECK(atomic_load(&s.l[0].requests) >= 3);
    hc_engine_destroy(e);
    srv_stop(&s);
}

/* remove() stops the checks of a target (in flight ones too) and forgets it. Targets 0 and 1
 * are checked over HTTP, whose connections their listeners accept and count (a TCP check
 * leaves nothing to accept). */
static void test_remove(void)
{
    struct srv s;
    struct recorder r;
    struct hc_stats stats;
    struct hc_check http = {.kind = HC_HTTP};
    srv_start(&s, 4, M_TCP);
    srv_set_mode(&s, 0, M_HTTP);
    srv_set_mode(&s, 1, M_HTTP);
    srv_set_mode(&s, 3, M_HANG);
    srv_run(&s);
    srv_listen(&s, 2, 0); /* refused: goes down */
    rec_init(&r, &s);
    struct hc_options o = fast_opts(HC_TCP, s.port, &r);
    struct hc_engine *e = hc_engine_create(&o);
    rec_set_engine(&r, e);
    add(e, 0, &http);
    add(e, 1, &http);
    add(e, 2, NULL);
    struct hc_check slow_http = {.kind = HC_HTTP, .timeout_ms = 60000};
    add(e, 3, &slow_http);
    CHECK(wait_checks(e, 0, 3));
    CHECK(wait_checks(e, 1, 3));
    CHECK(rec_wait(&r, 1));

    struct ip_addr a0 = ip_of(0), a2 = ip_of(2), a3 = ip_of(3);
    struct hc_status st;
    CHECK_INT(hc_engine_remove(e, &a0), RC_OK);
    CHECK_INT(hc_engine_status(e, &a0, &st), RC_NOT_FOUND);
    CHECK_INT(hc_engine_remove(e, &a0), RC_NOT_FOUND);
    sleep_ms(50); /* a check in flight at remove() may still reach accept() */
    int before = atomic_load(&s.l[0].accepts), other = atomic_load(&s.l[1].accepts);
    sleep_ms(400); /* 8 intervals */
    CHECK_INT(atomic_load(&s.l[0].accepts), before);
    CHECK(atomic_load(&s.l[1].accepts) >= other + 4);

    /* Removing a down target lowers the down count. */
    hc_engine_stats(e, &stats);
    CHECK_INT(stats.targets, 3);
    CHECK_INT(stats.down, 1);
    CHECK_INT(hc_engine_remove(e, &a2), RC_OK);
    hc_engine_stats(e, &stats);
    CHECK_INT(stats.targets, 2);
    CHECK_INT(stats.down, 0);

    /* Removing a target with a check in flight (a hanging HTTP server) cancels the check: the
     * server sees its connection closed. Target 1's checks go on meanwhile, so only target 3's
     * listener is counted. */
    int64_t end = now_ms() + WAIT_MS;
    while (atomic_load(&s.l[3].active) < 1 && now_ms() < end)
        sleep_ms(5);
    CHECK_INT(atomic_load(&s.l[3].active), 1);
    hc_engine_stats(e, &stats);
    CHECK(stats.in_flight >= 1);
    CHECK_INT(hc_engine_remove(e, &a3), RC_OK);
    end = now_ms() + WAIT_MS;
    while (atomic_load(&s.l[3].active) > 0 && now_ms() < end)
        sleep_ms(5);
    CHECK_INT(atomic_load(&s.l[3].active), 0);
    CHECK_INT(atomic_load(&s.l[3].accepts), 1);

    /* Added again: checked again, from a fresh state. */
    CHECK_INT(hc_engine_add(e, &a0, &http), RC_OK);
    CHECK_INT(hc_engine_status(e, &a0, &st), RC_OK);
    CHECK_INT(st.checks, 0);
    CHECK(wait_checks(e, 0, 2));
    CHECK(atomic_load(&s.l[0].accepts) > before);
    CHECK_INT(rec_count(&r), 1);
    hc_engine_destroy(e);
    srv_stop(&s);
}

/* At most max_parallel checks in flight, counted at the listeners; every target gets its turn. */
static void test_parallel(void)
{
    enum { N = 20, CAP = 3 };
    struct srv s;
    struct recorder r;
    struct hc_stats stats;
    srv_start(&s, N, M_HTTP);
    for (int i = 0; i < N; i++)
        atomic_store(&s.l[i].delay_ms, 100);
    srv_run(&s);
    rec_init(&r, &s);
    struct hc_options o = fast_opts(HC_HTTP, s.port, &r);
    o.defaults.timeout_ms = 2000;
    o.max_parallel = CAP;
    struct hc_engine *e = hc_engine_create(&o);
    rec_set_engine(&r, e);
    for (int i = 0; i < N; i++)
        add(e, i, NULL);
    for (int i = 0; i < N; i++)
        CHECK(wait_checks(e, i, 2));
    hc_engine_stats(e, &stats);
    printf("parallel: listener max concurrent %d, engine max in flight %u, checks %llu\n",
           atomic_load(&s.max_active), stats.max_in_flight, (unsigned long long)stats.checks);
    CHECK(atomic_load(&s.max_active) <= CAP);
    CHECK_INT(atomic_load(&s.max_active), CAP); /* saturated: the cap is reached */
    CHECK_INT(stats.max_in_flight, CAP);
    CHECK_INT(stats.failures, 0);
    CHECK_INT(rec_count(&r), 0);
    /* Fair: oldest due first, so check counts differ by little. */
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < N; i++) {
        struct hc_status st = status_of(e, i);
        lo = st.checks < lo ? st.checks : lo;
        hi = st.checks > hi ? st.checks : hi;
    }
    CHECK(hi - lo <= 2);
    hc_engine_destroy(e);
    srv_stop(&s);
}

/* Destroy with checks in flight (HTTP to hanging servers, TCP connects that never complete),
 * with adds still queued, and right after create: nothing leaks (ASan), servers see closes. */
static void test_destroy(void)
{
    struct srv s;
    struct recorder r;
    struct hc_stats stats;
    srv_start(&s, 12, M_HANG);
    for (int i = 6; i < 10; i++) {
        srv_set_mode(&s, i, M_NOACCEPT);
        fill_backlog(&s, &s.l[i], i);
    }
    srv_set_mode(&s, 10, M_TCP);
    srv_set_mode(&s, 11, M_HTTP);
    srv_run(&s);
    rec_init(&r, &s);
    struct hc_options o = fast_opts(HC_HTTP, s.port, &r);
    o.defaults.timeout_ms = 60000;
    struct hc_engine *e = hc_engine_create(&o);
    rec_set_engine(&r, e);
    struct hc_check tcp = {.kind = HC_TCP};
    for (int i = 0; i < 12; i++)
        add(e, i, (i >= 6 && i < 11) ? &tcp : NULL);
    int64_t end = now_ms() + WAIT_MS;
    do {
        sleep_ms(10);
        hc_engine_stats(e, &stats);
    } while ((stats.in_flight < 10 || atomic_load(&s.active) < 6) && now_ms() < end);
    CHECK(stats.in_flight >= 10); /* 6 hanging HTTP + 4 hanging connects (+ quick ones) */
    CHECK(atomic_load(&s.active) >= 6);
    hc_engine_destroy(e);
    end = now_ms() + WAIT_MS;
    while (atomic_load(&s.active) > 0 && now_ms() < end)
        sleep_ms(5);
    CHECK_INT(atomic_load(&s.active), 0);
    CHECK_INT(rec_count(&r), 0);

    /* Queued adds never applied, and an engine that never checked anything. */
    e = hc_engine_create(&o);
    for (int i = 0; i < 1000; i++) {
        struct ip_addr a = ip_of(0);
        a.b[2] = (uint8_t)(2 + i / 250);
        a.b[3] = (uint8_t)(1 + i % 250);
        CHECK_INT(hc_engine_add(e, &a, i % 2 ? &tcp : NULL), RC_OK);
        if (i % 3 == 0)
            CHECK_INT(hc_engine_remove(e, &a), RC_OK);
    }
    hc_engine_destroy(e);
    hc_engine_destroy(hc_engine_create(NULL));
    hc_engine_destroy(NULL);
    srv_stop(&s);
}

/* Options and overrides: validation, defaults, start_down, re-adding. */
static void test_api(void)
{
    static const struct {
        struct hc_check c;
        enum rc_code want;
        const char *detail;
    } cases[] = {
        {{0}, RC_OK, ""},
        {{.kind = HC_HTTPS, .port = 443, .path = "/a?b=c"}, RC_OK, ""},
        {{.kind = (enum hc_kind)7}, RC_BAD_REQUEST, "check kind must be tcp, http or https"},
        {{.port = 65536}, RC_BAD_REQUEST, "check port must be 1..65535"},
        {{.path = "health"},
         RC_BAD_REQUEST,
         "check path must start with '/' and be at most 1024 bytes"},
        {{.path = "/a b"},
         RC_BAD_REQUEST,
         "check path may hold only printable ASCII without spaces"},
        {{.path = "/a\r\nX: y"},
         RC_BAD_REQUEST,
         "check path may hold only printable ASCII without spaces"},
        {{.status_min = 99}, RC_BAD_REQUEST, "check status range must lie within 100..599"},
        {{.status_min = 300, .status_max = 200},
         RC_BAD_REQUEST,
         "check status_min must not exceed status_max"},
        {{.interval_ms = 5}, RC_BAD_REQUEST, "check interval must be 10 ms..1 day"},
        {{.timeout_ms = 3600001}, RC_BAD_REQUEST, "check timeout must be 1 ms..1 hour"},
        {{.fall = 1001}, RC_BAD_REQUEST, "check rise and fall must be 1..1000"},
        {{.tls_verify = 2}, RC_BAD_REQUEST, "check tls_verify must be -1, 0 or 1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char detail[200] = "";
        CHECK_INT(hc_check_validate(&cases[i].c, detail, sizeof(detail)), cases[i].want);
        CHECK_STR(detail, cases[i].detail);
    }
    CHECK_INT(hc_check_validate(NULL, NULL, 0), RC_OK);

    /* Invalid defaults: no engine. */
    struct hc_options bad = {.defaults = {.status_min = 400}}; /* 400 > default max 399 */
    CHECK(hc_engine_create(&bad) == NULL);
    struct hc_options bad2 = {.defaults = {.path = "x"}};
    CHECK(hc_engine_create(&bad2) == NULL);

    /* No default port: every add must bring one. */
    struct srv s;
    struct recorder r;
    srv_start(&s, 2, M_TCP);
    srv_run(&s);
    rec_init(&r, &s);
    struct hc_options o = fast_opts(HC_TCP, 0, &r);
    o.start_down = 1;
    struct hc_engine *e = hc_engine_create(&o);
    rec_set_engine(&r, e);
    struct ip_addr a0 = ip_of(0), a1 = ip_of(1);
    struct hc_status st;
    CHECK_INT(hc_engine_add(e, &a0, NULL), RC_BAD_REQUEST);
    struct hc_check badov = {.path = "nope", .port = s.port};
    CHECK_INT(hc_engine_add(e, &a0, &badov), RC_BAD_REQUEST);
    struct hc_check narrow = {.status_min = 500}; /* 500..399 once merged */
    CHECK_INT(hc_engine_add(e, &a0, &narrow), RC_BAD_REQUEST);
    CHECK_INT(hc_engine_status(e, &a0, &st), RC_NOT_FOUND);
    struct hc_check port = {.port = s.port};
    CHECK_INT(hc_engine_add(e, &a0, &port), RC_OK);
    CHECK_INT(hc_engine_add(e, &a1, &port), RC_OK);

    /* start_down: down at once (counted), up after `rise`, one callback each. */
    CHECK_INT(hc_engine_status(e, &a0, &st), RC_OK);
    CHECK_INT(st.up, 0);
    CHECK(st.added_ms > 0);
    struct hc_stats stats;
    hc_engine_stats(e, &stats);
    CHECK_INT(stats.down, 2);
    CHECK(rec_wait(&r, 2));
    for (int k = 0; k < 2; k++) {
        struct event ev = rec_get(&r, k);
        CHECK_INT(ev.up, 1);
        CHECK_INT(ev.st.checks, 2);
        CHECK_INT(ev.st.consecutive_ok, 2);
    }
    /* Re-adding keeps state and counts. */
    CHECK(wait_checks(e, 0, 4));
    CHECK_INT(hc_engine_add(e, &a0, &port), RC_OK);
    CHECK_INT(hc_engine_status(e, &a0, &st), RC_OK);
    CHECK_INT(st.up, 1);
    CHECK(st.checks >= 4);
    hc_engine_stats(e, &stats);
    CHECK_INT(stats.targets, 2);
    CHECK_INT(stats.down, 0);
    hc_engine_destroy(e);
    srv_stop(&s);
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    signal(SIGPIPE, SIG_IGN); /* the TLS responder writes to checks that already hung up */
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"tcp", test_tcp},         {"tcp_timeout", test_tcp_timeout},
        {"http", test_http},       {"https", test_https},
        {"remove", test_remove},   {"parallel", test_parallel},
        {"destroy", test_destroy}, {"api", test_api},
    };
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        if (!strcmp(what, tests[i].name)) {
            tests[i].fn();
            return check_done("test_health");
        }
    }
    fprintf(stderr, "usage: test_health tcp|tcp_timeout|http|https|remove|parallel|destroy|api\n");
    return 2;
}
