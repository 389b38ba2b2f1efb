/*
 * clock.h: the two clocks the registry and the health check engine read, as integers. Header
 * only; every function is thread-safe.
 */
#ifndef R53REG_UTIL_CLOCK_H
#define R53REG_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds: for intervals, deadlines and timeouts. */
static inline int64_t clock_mono_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* Unix time (CLOCK_REALTIME) in milliseconds: for times that are shown or stored. */
static inline int64_t clock_wall_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

#endif
