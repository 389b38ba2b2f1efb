/*
 * log.h: one line per event, key=value, on stderr.
 *
 * Every line starts with ts=<RFC 3339 UTC, ms> level=<level>. Callers add key=value pairs;
 * values that come from clients go through log_quote() so a request cannot forge log lines.
 * Secrets (tokens, AWS keys, signatures) are never passed here. Thread-safe: each line is one
 * fprintf on a locked stream.
 */
#ifndef R53REG_UTIL_LOG_H
#define R53REG_UTIL_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Lines below level are dropped. Default LOG_INFO. Not thread-safe: call at startup. */
void log_set_level(enum log_level level);
/* Parse "debug|info|warn|error"; returns -1 when unknown. */
int log_level_parse(const char *s);
int log_enabled(enum log_level level);

void log_line(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Write s as a log value into out: bare when it is safe ([A-Za-z0-9._:/@+-]), otherwise in
 * double quotes with \" \\ and \xNN escapes; truncated to fit n bytes. Returns out. */
char *log_quote(const char *s, char *out, size_t n);

#define log_debug(...) log_line(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_line(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_line(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_line(LOG_ERROR, __VA_ARGS__)

#endif
