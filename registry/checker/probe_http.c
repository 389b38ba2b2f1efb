/*
 * probe_http.c: HTTP(S) checks. Each check is a libcurl easy handle on the engine's multi
 * handle: a GET of http(s)://<ip>:<port><path> with the IP as Host, no proxy, no redirects, a
 * fresh connection closed with a reset, at most HC_BODY_MAX body bytes read, and curl enforcing
 * timeout_ms. The multi handle's socket callback puts curl's sockets into the engine's epoll
 * set (epoll data (s << 2) | TAG_CURL), its timer callback sets curl_due_ns, and the loop calls
 * hch_action() on their events and when that time passes; finished transfers are judged by
 * the status range and recorded.
 *
 * Threading: the engine thread only (curl calls the callbacks from hch_action() and from
 * curl_multi_add_handle()/curl_multi_remove_handle() on that thread).
 */
#include "registry/checker/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "util/xalloc.h"

/* An HTTP(S) check in flight. */
struct http_call {
    struct target *t;
    CURL *easy;
    struct curl_slist *headers;
    size_t body;
    int capped; /* the body passed HC_BODY_MAX and the transfer was cut off */
    char errbuf[CURL_ERROR_SIZE];
};

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
        hct_set_linger0(fd);
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

void hch_start(struct hc_engine *e, struct target *t)
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
        hcs_local_error(e, t, "curl_easy_init", ENOMEM);
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
        hcs_local_error(e, t, "curl_multi_add_handle", ENOMEM);
        return;
    }
    t->call = c;
    t->state = T_HTTP;
    hcs_in_flight_inc(e);
}

/* Release an HTTP check's handle and slot. */
void hch_end(struct hc_engine *e, struct target *t)
{
    curl_multi_remove_handle(e->multi, t->call->easy);
    http_call_free(t->call);
    t->call = NULL;
    t->state = T_NEW;
    hcs_in_flight_dec(e);
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
        hcs_errno_text((int)oserr, et, sizeof(et));
        snprintf(err, sizeof(err), "http: connect: %s", et);
    } else {
        snprintf(err, sizeof(err), "http: %.150s",
                 c->errbuf[0] ? c->errbuf : curl_easy_strerror(res));
    }
    hch_end(e, t);
    hcs_record(e, t, ok, ok ? "" : err);
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

int hch_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
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

int hch_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct hc_engine *e = userp;
    (void)multi;
    e->curl_due_ns = timeout_ms < 0 ? -1 : clock_mono_ns() + (int64_t)timeout_ms * MS_NS;
    return 0;
}

void hch_action(struct hc_engine *e, curl_socket_t s, int mask)
{
    int running = 0;
    curl_multi_socket_action(e->multi, s, mask, &running);
    curl_drain(e);
}
