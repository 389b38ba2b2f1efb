/* log.c: see log.h. The level is set once at startup; writing is thread-safe. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum log_level min_level = LOG_INFO;
static const char *const names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
    min_level = level;
}

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

int log_enabled(enum log_level level)
{
    return level >= min_level;
}

void log_line(enum log_level level, const char *fmt, ...)
{
    char msg[2048], ts[40];
    struct timespec now;
    struct tm tm;
    va_list ap;

    if (level < min_level)
        return;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "ts=%s.%03ldZ level=%s %s\n", ts, now.tv_nsec / 1000000, names[level], msg);
}

char *log_quote(const char *s, char *out, size_t n)
{
    size_t o = 0;
    int bare = *s != '\0';

    if (n < 8) {
        if (n)
            out[0] = '\0';
        return out;
    }
    for (const char *p = s; *p && bare; p++) {
        unsigned char c = (unsigned char)*p;
        bare = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               strchr("._:/@+-", c);
    }
    if (bare) {
        snprintf(out, n, "%s", s);
        return out;
    }
    out[o++] = '"';
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (o + 6 >= n)
            break;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            o += (size_t)snprintf(out + o, n - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}
