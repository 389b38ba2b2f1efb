/*
 * emu_util.c: small helpers shared by the r53emu modules: XML text escaping into a struct buf
 * (util/buf.h), AWS-shaped error values, clocks and a seeded PRNG (splitmix64). Pure or
 * caller-owned state; thread-safe.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emu.h"
#include "util/xalloc.h"

/* --- XML text ------------------------------------------------------------------------------ */

void emu_buf_add_xml(struct buf *b, const char *s)
{
    const char *run = s;

    for (; *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break; /* as Route 53 does; it leaves ' alone */
        default: break;
        }
        if (!rep)
            continue;
        buf_add(b, run, (size_t)(s - run));
        buf_adds(b, rep);
        run = s + 1;
    }
    buf_add(b, run, (size_t)(s - run));
}

/* --- errors -------------------------------------------------------------------------------- */

static char *vformat(const char *fmt, va_list ap)
{
    va_list ap2;
    int n;
    char *s;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        n = 0;
    s = xmalloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

void emu_err_set(struct emu_err *e, int status, const char *code, const char *fmt, ...)
{
    va_list ap;

    emu_err_release(e);
    e->status = status;
    e->code = code;
    e->type = status >= 500 ? "Receiver" : "Sender";
    va_start(ap, fmt);
    e->message = vformat(fmt, ap);
    va_end(ap);
}

void emu_err_icb(struct emu_err *e, const char *fmt, ...)
{
    va_list ap;

    if (e->code && strcmp(e->code, "InvalidChangeBatch") != 0)
        emu_err_release(e);
    e->status = 400;
    e->code = "InvalidChangeBatch";
    e->type = "Sender";
    e->messages = xrealloc(e->messages, (e->nmessages + 1) * sizeof(*e->messages));
    va_start(ap, fmt);
    e->messages[e->nmessages++] = vformat(fmt, ap);
    va_end(ap);
}

char *emu_err_text(const struct emu_err *e)
{
    struct buf b = {0};

    if (e->nmessages) {
        buf_adds(&b, "[");
        for (size_t i = 0; i < e->nmessages; i++) {
            if (i)
                buf_adds(&b, ", ");
            buf_adds(&b, e->messages[i]);
        }
        buf_adds(&b, "]");
    } else if (e->message) {
        buf_adds(&b, e->message);
    }
    return buf_detach(&b);
}

void emu_err_release(struct emu_err *e)
{
    free(e->message);
    for (size_t i = 0; i < e->nmessages; i++)
        free(e->messages[i]);
    free(e->messages);
    memset(e, 0, sizeof(*e));
}

/* --- clocks -------------------------------------------------------------------------------- */

long long emu_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long emu_real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void emu_iso8601(long long unix_ms, char out[32])
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    char day[24];

    gmtime_r(&t, &tm);
    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03dZ", day, (int)(unix_ms % 1000));
}

/* --- PRNG: splitmix64 ---------------------------------------------------------------------- */

void emu_rng_seed(struct emu_rng *r, uint64_t seed)
{
    r->s = seed;
}

uint64_t emu_rng_next(struct emu_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double emu_rng_unit(struct emu_rng *r)
{
    return (double)(emu_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

size_t emu_utf8_len(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            count++;
    }
    return count;
}
