/*
 * harness.h: start r53reg's HTTP server in-process on 127.0.0.1:0 over a memory store, and talk
 * to it over real sockets with libcurl (libmicrohttpd src/testcurl style).
 */
#ifndef R53REG_TESTS_HARNESS_H
#define R53REG_TESTS_HARNESS_H

#include <jansson.h>
#include <stddef.h>

#include "registry/registry.h"

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
};

/* Defaults: 4 buckets, 3 per bucket, ttl 60, balanced, proportional, 4 threads, 1 MiB. */
void harness_default_opts(struct harness_opts *o);
/* Start; aborts the test on failure. */
void harness_start(struct harness *h, const struct harness_opts *o);
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
};

/*
 * One request on a fresh handle (or on *curl when curl is not NULL, so a thread can keep a
 * connection alive). extra_header may be NULL. Returns 0, or -1 on a transport error.
 */
int http_do(void **curl, unsigned port, const char *method, const char *path,
            const char *body, size_t body_len, const char *extra_header, struct http_reply *r);
void http_reply_release(struct http_reply *r);
void http_handle_free(void *curl);

#endif
