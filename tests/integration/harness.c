/* harness.c: see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "registry/provider.h"
#include "registry/provider_memory.h"
#include "server/httpd.h"
#include "util/xalloc.h"

void harness_default_opts(struct harness_opts *o)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->reg.record_name, sizeof(o->reg.record_name), "app.example.com");
    o->reg.buckets = 4;
    o->reg.max_per_bucket = 3;
    o->reg.ttl = 60;
    o->reg.bucketing = REG_BUCKETING_BALANCED;
    o->reg.weights = REG_WEIGHTS_PROPORTIONAL;
    o->threads = 4;
    o->max_body = 1 << 20;
    o->allow_special = 1;
}

void harness_start(struct harness *h, const struct harness_opts *o)
{
    char detail[512];
    if (harness_try_start(h, o, detail, sizeof(detail))) {
        fprintf(stderr, "harness: %s\n", detail);
        abort();
    }
}

/* The memory store behind an apply() that first sleeps (a slow upstream). */
struct slow_store {
    struct reg_provider base;
    struct reg_provider *inner;
    unsigned delay_ms;
};

static enum rc_code slow_load(struct reg_provider *p, struct reg_record **records, size_t *n,
                              char *detail, size_t detail_len)
{
    struct reg_provider *in = ((struct slow_store *)p)->inner;
    return in->ops->load(in, records, n, detail, detail_len);
}

static enum rc_code slow_apply(struct reg_provider *p, const struct reg_change *changes, size_t n,
                               char *change_id, struct reg_conflicts *conflicts, char *detail,
                               size_t detail_len)
{
    struct slow_store *s = (struct slow_store *)p;
    struct timespec ts = {s->delay_ms / 1000, (long)(s->delay_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return s->inner->ops->apply(s->inner, changes, n, change_id, conflicts, detail, detail_len);
}

static enum rc_code slow_change_status(struct reg_provider *p, const char *change_id,
                                       int *insync, char *detail, size_t detail_len)
{
    struct reg_provider *in = ((struct slow_store *)p)->inner;
    return in->ops->change_status(in, change_id, insync, detail, detail_len);
}

static enum rc_code slow_reload(struct reg_provider *p, enum reg_type type, enum reg_kind kind,
                                unsigned bucket, struct reg_record *out, char *detail,
                                size_t detail_len)
{
    struct reg_provider *in = ((struct slow_store *)p)->inner;
    return in->ops->reload(in, type, kind, bucket, out, detail, detail_len);
}

static int slow_ready(struct reg_provider *p)
{
    struct reg_provider *in = ((struct slow_store *)p)->inner;
    return in->ops->ready ? in->ops->ready(in) : 1;
}

static void slow_destroy(struct reg_provider *p)
{
    struct slow_store *s = (struct slow_store *)p;
    s->inner->ops->destroy(s->inner);
    free(s);
}

static const struct reg_provider_ops slow_ops = {
    .name = "slow-memory",
    .load = slow_load,
    .apply = slow_apply,
    .change_status = slow_change_status,
    .reload = slow_reload,
    .pace = NULL,
    .ready = slow_ready,
    .destroy = slow_destroy,
};

int harness_try_start(struct harness *h, const struct harness_opts *o, char *err, size_t errlen)
{
    struct reg_provider *prov = NULL;
    struct srv_httpd_options ho;
    struct sockaddr_in sa;
    char detail[512];

    memset(h, 0, sizeof(*h));
    if (reg_provider_memory_create(o->state_file, &prov, detail, sizeof(detail))) {
        fprintf(stderr, "harness: store: %s\n", detail);
        abort();
    }
    reg_provider_memory_options(prov, &o->reg);
    if (o->apply_delay_ms) {
        struct slow_store *s = calloc(1, sizeof(*s));
        if (!s)
            abort();
        s->base = *prov;
        s->base.ops = &slow_ops;
        s->inner = prov;
        s->delay_ms = o->apply_delay_ms;
        prov = &s->base;
    }
    h->reg = reg_create(&o->reg, prov);
    if (reg_load(h->reg, detail, sizeof(detail))) {
        fprintf(stderr, "harness: load: %s\n", detail);
        abort();
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    memset(&ho, 0, sizeof(ho));
    ho.addr = (const struct sockaddr *)&sa;
    ho.addr_len = sizeof(sa);
    ho.threads = o->threads;
    ho.max_connections = 512;
    ho.client_timeout = o->client_timeout ? o->client_timeout : 30;
    ho.max_body = o->max_body;
    ho.tokens = o->tokens;
    ho.ntokens = o->ntokens;
    ho.scoped_tokens = o->scoped_tokens;
    ho.nscoped_tokens = o->nscoped_tokens;
    ho.token_file = o->token_file;
    ho.trusted_proxies = o->trusted_proxies;
    ho.allow_cidr = o->allow_cidr;
    ho.allow_special = o->allow_special;
    ho.client_rps = o->client_rps;
    ho.client_burst = o->client_burst;
    ho.max_connections_per_ip = o->max_connections_per_ip;
    ho.tls_cert = o->tls_cert;
    ho.tls_key = o->tls_key;
    {
        int rc = (int)srv_httpd_start(&ho, h->reg, &h->httpd, detail, sizeof(detail));
        if (rc) {
            snprintf(err, errlen, "httpd: %s", detail);
            reg_destroy(h->reg);
            memset(h, 0, sizeof(*h));
            return rc;
        }
    }
    h->port = srv_httpd_port(h->httpd);
    return 0;
}

void harness_stop(struct harness *h)
{
    srv_httpd_stop(h->httpd, 5);
    reg_destroy(h->reg);
    memset(h, 0, sizeof(*h));
}

struct sink {
    char *buf;
    size_t len, cap;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct sink *s = ud;
    size_t len = size * n;
    s->buf = xgrow(s->buf, &s->cap, s->len + len + 1, 1);
    memcpy(s->buf + s->len, p, len);
    s->len += len;
    s->buf[s->len] = '\0';
    return len;
}

static void copy_header(const char *line, size_t len, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    if (len <= nl + 1 || strncasecmp(line, name, nl) || line[nl] != ':')
        return;
    line += nl + 1;
    len -= nl + 1;
    while (len && *line == ' ') {
        line++;
        len--;
    }
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    snprintf(out, n, "%.*s", (int)len, line);
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct http_reply *r = ud;
    size_t len = size * n;
    copy_header(p, len, "Content-Type", r->content_type, sizeof(r->content_type));
    copy_header(p, len, "Allow", r->allow, sizeof(r->allow));
    copy_header(p, len, "Location", r->location, sizeof(r->location));
    copy_header(p, len, "WWW-Authenticate", r->www_authenticate, sizeof(r->www_authenticate));
    copy_header(p, len, "X-Request-Id", r->request_id, sizeof(r->request_id));
    copy_header(p, len, "Retry-After", r->retry_after, sizeof(r->retry_after));
    return len;
}

int http_do(void **curlp, unsigned port, const char *method, const char *path,
            const char *body, size_t body_len, const char *extra_header, struct http_reply *r)
{
    struct http_opts o;
    memset(&o, 0, sizeof(o));
    o.method = method;
    o.path = path;
    o.body = body;
    o.body_len = body_len;
    o.headers[0] = extra_header;
    return http_do_opts(curlp, port, &o, r);
}

int http_do_opts(void **curlp, unsigned port, const struct http_opts *o, struct http_reply *r)
{
    CURL *c = curlp && *curlp ? *curlp : curl_easy_init();
    struct curl_slist *hdrs = NULL;
    struct sink s = {0};
    char url[512], iface[64], errbuf[CURL_ERROR_SIZE] = "";
    const char *method = o->method, *path = o->path, *body = o->body;
    size_t body_len = o->body_len;
    CURLcode cc;

    memset(r, 0, sizeof(*r));
    snprintf(url, sizeof(url), "%s://127.0.0.1:%u%s", o->https ? "https" : "http", port, path);
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    for (size_t i = 0; i < sizeof(o->headers) / sizeof(o->headers[0]) && o->headers[i]; i++)
        hdrs = curl_slist_append(hdrs, o->headers[i]);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    if (o->local_ip) {
        snprintf(iface, sizeof(iface), "host!%s", o->local_ip);
        curl_easy_setopt(c, CURLOPT_INTERFACE, iface);
    }
    if (o->https && o->cainfo)
        curl_easy_setopt(c, CURLOPT_CAINFO, o->cainfo);
    cc = curl_easy_perform(c);
    curl_slist_free_all(hdrs);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &r->num_connects);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    if (cc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    } else {
        snprintf(r->error, sizeof(r->error), "%s: %.200s", curl_easy_strerror(cc), errbuf);
        fprintf(stderr, "http_do %s %s: %s\n", method, path, r->error);
    }
    if (curlp)
        *curlp = c;
    else
        curl_easy_cleanup(c);
    r->body = s.buf ? s.buf : xstrdup("");
    r->json = json_loads(r->body, 0, NULL);
    return cc == CURLE_OK ? 0 : -1;
}

void http_reply_release(struct http_reply *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

void http_handle_free(void *curl)
{
    if (curl)
        curl_easy_cleanup(curl);
}
