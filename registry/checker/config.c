/*
 * config.c: the check settings of the health check engine: validating an override a user gave
 * (hc_check_validate), resolving an override against the engine's defaults into a struct cfg
 * with every field set, parsing a status range "MIN-MAX", and the names of the check kinds.
 *
 * Pure: no engine state and no locks; every function may run on any thread.
 */
#include "registry/checker/internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

const char *hcc_kind_name(enum hc_kind k)
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

void hcc_cfg_release(struct cfg *c)
{
    if (c)
        free(c->path);
}

/* out = base with the non-zero fields of o (o already validated). */
void hcc_cfg_resolve(const struct cfg *base, const struct hc_check *o, struct cfg *out)
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
