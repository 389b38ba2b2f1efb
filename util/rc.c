/* rc.c: tables behind util/rc.h, generated from RC_MAP, and rc_detail(). Pure functions,
 * thread-safe. */
#include "util/rc.h"

#include <stdarg.h>
#include <stdio.h>

static const struct {
    int http;
    const char *slug;
    const char *title;
} rc_table[] = {
#define RC_ROW(name, http, slug, title) {http, slug, title},
    RC_MAP(RC_ROW)
#undef RC_ROW
};

static int valid(enum rc_code rc)
{
    return (unsigned)rc < (unsigned)RC__COUNT;
}

int rc_http_status(enum rc_code rc)
{
    if (!valid(rc) || rc_table[rc].http == 0)
        return 500;
    return rc_table[rc].http;
}

const char *rc_slug(enum rc_code rc)
{
    return valid(rc) ? rc_table[rc].slug : "internal";
}

const char *rc_title(enum rc_code rc)
{
    return valid(rc) ? rc_table[rc].title : "Internal error";
}

void rc_detail(char *detail, size_t n, const char *fmt, ...)
{
    va_list ap;

    if (!detail || n == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(detail, n, fmt, ap);
    va_end(ap);
}
