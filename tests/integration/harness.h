/*
 * harness.h: start r53reg's HTTP server in-process on 127.0.0.1:0 over a memory store, and talk
 * to it over real sockets with libcurl (libmicrohttpd src/testcurl style).
 */
#ifndef R53REG_TESTS_HARNESS_H
#define R53REG_TESTS_HARNESS_H

#include <jansson.h>
#include <stddef.h>

#include "registry/registry.h"
#include "server/auth.h"

struct harness {
    struct reg_registry *reg;
    struct srv_httpd *httpd;
    unsigned port;
};

struct harness_opts {
    struct reg_options reg;
    const char *state_file; /* NULL: memory only */
    char *const *tokens;
    size_t ntokens;
    unsigned threads;
    size_t max_body;
    unsigned client_timeout; /* seconds; 0: 30 */
    /* Security (server/httpd.h srv_httpd_options): all off by default. */
    const struct srv_token *scoped_tokens;
    size_t nscoped_tokens;
    const char *token_file;
    const char *trusted_proxies;
    const char *allow_cidr;
    int allow_special; /* --allow-special: on by default here, the tests' backends are 127.x */
    unsigned client_rps, client_burst;
    unsigned max_connections_per_ip;
    const char *tls_cert, *tls_key;
    unsigned apply_delay_ms; /* the store's apply() sleeps this long first (a slow upstream) */
};

/* Defaults: 4 buckets, 3 per bucket, ttl 60, balanced, proportional, 4 threads, 1 MiB,
 * allow_special. */
void harness_default_opts(struct harness_opts *o);
/* Start; aborts the test on failure. */
void harness_start(struct harness *h, const struct harness_opts *o);
/* Start; on failure returns the error and its detail instead of aborting. */
int harness_try_start(struct harness *h, const struct harness_opts *o, char *detail, size_t n);
void harness_stop(struct harness *h);

struct http_reply {
    long status;
    char *body;           /* NUL-terminated, owned */
    json_t *json;         /* parsed body or NULL */
    char content_type[64];
    char allow[64];
    char location[96];
    char www_authenticate[64];
    char request_id[32];
    char retry_after[16];
    long num_connects;    /* new connections this transfer made (0: a kept-alive one) */
    char error[320];      /* libcurl's message on a transport error */
};

/*
 * One request on a fresh handle (or on *curl when curl is not NULL, so a thread can keep a
 * connection alive). extra_header may be NULL. Returns 0, or -1 on a transport error.
 */
int http_do(void **curl, unsigned port, const char *method, const char *path,
            const char *body, size_t body_len, const char *extra_header, struct http_reply *r);
void http_reply_release(struct http_reply *r);

/* Everything one request may need; zero means default. */
struct http_opts {
    const char *method;
    const char *path;
    const char *body; /* sent with Content-Type: application/json */
    size_t body_len;
    const char *headers[8]; /* extra header lines, NULL-terminated when fewer */
    const char *local_ip;   /* connect from this address (127.x: any loopback address) */
    int https;              /* https://127.0.0.1:port, verified against cainfo */
    const char *cainfo;     /* PEM file of the trusted certificate */
};
/* As http_do(), with the options above. */
int http_do_opts(void **curl, unsigned port, const struct http_opts *o, struct http_reply *r);
void http_handle_free(void *curl);

#endif
