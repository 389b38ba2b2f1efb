/*
 * ratepolicy.c: token bucket and CUBIC arithmetic of the rate limiter (contract:
 * ratepolicy.h). Pure: no locks, no sleeping, no clock of its own.
 *
 * Invariants: bucket level <= burst; burst >= 1. min_rate <= ratepolicy_cubic_rate() <=
 * max_rate; w_max > 0 once cut.
 */
#include "aws/ratepolicy.h"

#define SLOT_NS (RATEPOLICY_NS_PER_S / 2)
#define SMOOTHING 0.8

/* --- token bucket -------------------------------------------------------------------------- */

void ratepolicy_bucket_init(struct ratepolicy_bucket *b, double burst, int64_t now)
{
    b->burst = burst >= 1 ? burst : 1;
    b->level = b->burst;
    b->last_ns = now;
}

void ratepolicy_bucket_refill(struct ratepolicy_bucket *b, double rate, int64_t now)
{
    if (now <= b->last_ns)
        return;
    if (rate > 0) {
        b->level += (double)(now - b->last_ns) * rate / (double)RATEPOLICY_NS_PER_S;
        if (b->level > b->burst)
            b->level = b->burst;
    }
    b->last_ns = now;
}

int64_t ratepolicy_bucket_wait(const struct ratepolicy_bucket *b, double rate, double n)
{
    double need = n < b->burst ? n : b->burst, w;
    int64_t wait;

    if (b->level >= need)
        return 0;
    if (rate <= 0)
        return INT64_MAX;
    w = (need - b->level) * (double)RATEPOLICY_NS_PER_S / rate;
    if (w >= 9.2e18)
        return INT64_MAX;
    wait = (int64_t)w;
    if ((double)wait < w)
        wait++;
    return wait;
}

int64_t ratepolicy_bucket_take(struct ratepolicy_bucket *b, double rate, double n)
{
    int64_t wait = ratepolicy_bucket_wait(b, rate, n);

    b->level -= n;
    return wait;
}

void ratepolicy_bucket_give(struct ratepolicy_bucket *b, double n)
{
    b->level += n;
    if (b->level > b->burst)
        b->level = b->burst;
}

/* --- adaptive rate ------------------------------------------------------------------------- */

/* Cube root of x >= 0 by Newton's method (libm is not linked into the core). */
static double cube_root(double x)
{
    double y = x > 1 ? x / 3 : 1;

    if (x <= 0)
        return 0;
    for (int i = 0; i < 100; i++) {
        double next = (2 * y + x / (y * y)) / 3;
        if (next == y)
            break;
        y = next;
    }
    return y;
}

void ratepolicy_cubic_init(struct ratepolicy_cubic *c, double max_rate, unsigned recovery_ms,
                           double min_fraction, double beta, int64_t now)
{
    double r = (double)(recovery_ms ? recovery_ms : 30000) / 1000.0;

    c->max_rate = max_rate;
    c->beta = beta > 0 && beta < 1 ? beta : 0.7;
    c->min_rate = max_rate * (min_fraction > 0 && min_fraction <= 1 ? min_fraction : 0.1);
    /* a cut at max_rate is back at max_rate after r seconds: K(max_rate) = r */
    c->scale = max_rate * (1 - c->beta) / (r * r * r);
    c->w_max = max_rate;
    c->k_s = 0;
    c->last_cut_ns = 0;
    c->measured = 0;
    c->slot_count = 0;
    c->slot_start_ns = now - now % SLOT_NS;
}

void ratepolicy_cubic_sent(struct ratepolicy_cubic *c, int64_t now)
{
    int64_t slot = now - now % SLOT_NS;

    c->slot_count += 1;
    if (slot > c->slot_start_ns) {
        double current =
            c->slot_count * (double)RATEPOLICY_NS_PER_S / (double)(slot - c->slot_start_ns);
        c->measured = current * SMOOTHING + c->measured * (1 - SMOOTHING);
        c->slot_count = 0;
        c->slot_start_ns = slot;
    }
}

double ratepolicy_cubic_rate(const struct ratepolicy_cubic *c, int64_t now)
{
    double t, r;

    if (!c->last_cut_ns)
        return c->max_rate;
    t = (double)(now - c->last_cut_ns) / (double)RATEPOLICY_NS_PER_S - c->k_s;
    r = c->scale * t * t * t + c->w_max;
    if (r > c->max_rate)
        r = c->max_rate;
    if (r < c->min_rate)
        r = c->min_rate;
    return r;
}

void ratepolicy_cubic_rescale(struct ratepolicy_cubic *c, double k)
{
    if (!(k > 0))
        return;
    c->max_rate *= k;
    c->min_rate *= k;
    c->scale *= k; /* K = cbrt(w_max (1 - beta) / C) is unchanged: same shape, same times */
    c->w_max *= k;
    c->measured *= k;
    c->slot_count *= k;
}

int ratepolicy_cubic_throttled(struct ratepolicy_cubic *c, int64_t now)
{
    double rate = ratepolicy_cubic_rate(c, now), w;
    int64_t hold = (int64_t)((double)RATEPOLICY_NS_PER_S / rate);

    if (hold < RATEPOLICY_NS_PER_S)
        hold = RATEPOLICY_NS_PER_S;
    if (c->last_cut_ns && now - c->last_cut_ns < hold)
        return 0;
    w = c->measured > 0 && c->measured < rate ? c->measured : rate;
    c->w_max = w;
    c->k_s = cube_root(w * (1 - c->beta) / c->scale);
    c->last_cut_ns = now ? now : 1;
    return 1;
}
