/*
 * test_fleet.c: what replicas agree on without talking: which member checks each backend
 * (rendezvous hashing: stable, balanced, minimal movement when a member leaves or joins) and
 * how the Route 53 budget is divided (ratelimit_set_share: rates and bursts by the fleet
 * size, a cut stays a cut, a peer's cut is not counted as a local one).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/ratelimit.h"
#include "aws/ratepolicy.h"
#include "check.h"
#include "registry/registry.h"

#define NIPS 30000

static struct ip_addr ip_v4(unsigned n)
{
    struct ip_addr a;
    memset(&a, 0, sizeof(a));
    a.family = IP_V4;
    a.b[0] = 10;
    a.b[1] = (uint8_t)(n >> 16);
    a.b[2] = (uint8_t)(n >> 8);
    a.b[3] = (uint8_t)n;
    return a;
}

static const char *const ids5[] = {
    "0adab9a741e0a6674b644e2f52cb07d0", "3f1c6e2d9b8a7f6e5d4c3b2a19080706",
    "7c2b1a0f9e8d7c6b5a4f3e2d1c0b0a09", "a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4",
    "faaecb9f0f1d367d2fa7edc67d2bfbfc",
};

/* Every member computes the same owner; the answer does not depend on the list's order. */
static void test_stable(void)
{
    const char *rev[5];
    for (int i = 0; i < 5; i++)
        rev[i] = ids5[4 - i];
    for (unsigned n = 0; n < 2000; n++) {
        struct ip_addr ip = ip_v4(n);
        size_t a = reg_rendezvous_owner(ids5, 5, &ip), b = reg_rendezvous_owner(rev, 5, &ip);
        CHECK_STR(ids5[a], rev[b]);
        CHECK_INT(reg_rendezvous_owner(ids5, 5, &ip), a); /* same input, same answer */
    }
    {
        struct ip_addr ip = ip_v4(7);
        CHECK_INT(reg_rendezvous_owner(ids5, 1, &ip), 0); /* alone: always self */
    }
}

/* Each of n members owns about 1/n of the backends (within 10 %), IPv4 and IPv6 alike. */
static void test_balanced(void)
{
    for (size_t n = 2; n <= 5; n++) {
        unsigned count[5] = {0};
        for (unsigned i = 0; i < NIPS; i++) {
            struct ip_addr ip = ip_v4(i);
            if (i % 2) { /* every other one IPv6 */
                memset(&ip, 0, sizeof(ip));
                ip.family = IP_V6;
                ip.b[0] = 0x20, ip.b[1] = 0x01, ip.b[2] = 0x0d, ip.b[3] = 0xb8;
                ip.b[14] = (uint8_t)(i >> 8), ip.b[15] = (uint8_t)i;
                ip.b[13] = (uint8_t)(i >> 16);
            }
            count[reg_rendezvous_owner(ids5, n, &ip)]++;
        }
        for (size_t k = 0; k < n; k++) {
            double share = (double)count[k] / NIPS, want = 1.0 / (double)n;
            if (share < want * 0.9 || share > want * 1.1) {
                fprintf(stderr, "members=%zu member %zu owns %.3f, want %.3f\n", n, k, share, want);
                CHECK(0);
            }
        }
    }
}

/* When a member leaves only its backends move (to the others, evenly); when it comes back
 * exactly those return. */
static void test_minimal_movement(void)
{
    const char *four[4] = {ids5[0], ids5[1], ids5[3], ids5[4]}; /* ids5[2] left */
    unsigned moved = 0, gone = 0, to[5] = {0};
    for (unsigned i = 0; i < NIPS; i++) {
        struct ip_addr ip = ip_v4(i);
        const char *before = ids5[reg_rendezvous_owner(ids5, 5, &ip)];
        const char *after = four[reg_rendezvous_owner(four, 4, &ip)];
        if (before == ids5[2]) {
            gone++;
            for (int k = 0; k < 5; k++)
                to[k] += after == ids5[k];
        } else if (strcmp(before, after)) {
            moved++;
        }
    }
    CHECK_INT(moved, 0); /* nobody else's backends moved */
    CHECK(gone > NIPS / 5 * 0.9 && gone < NIPS / 5 * 1.1);
    for (int k = 0; k < 5; k++)
        if (k != 2 && (to[k] < gone / 4 * 0.8 || to[k] > gone / 4 * 1.2)) {
            fprintf(stderr, "member %d took %u of %u\n", k, to[k], gone);
            CHECK(0);
        }
}

static int near(double a, double b)
{
    return a > b * 0.999 - 1e-9 && a < b * 1.001 + 1e-9;
}

/* The budget: configured / fleet size, and back; a cut keeps its depth. */
static void test_budget(void)
{
    struct ratelimit_options o;
    struct ratelimit *rl;
    unsigned long long cuts;
    int64_t last;
    double before;

    memset(&o, 0, sizeof(o));
    o.rate = 5;
    o.burst = 4;
    o.change_rate = 10;
    rl = ratelimit_create(&o);
    CHECK(near(ratelimit_rate(rl), 5));
    ratelimit_set_share(rl, 1.0 / 2);
    CHECK(near(ratelimit_rate(rl), 2.5));
    CHECK(near(ratelimit_change_rate(rl), 5));
    CHECK(near(ratelimit_share(rl), 0.5));
    ratelimit_set_share(rl, 1.0 / 3);
    CHECK(near(ratelimit_rate(rl), 5.0 / 3));
    CHECK(near(ratelimit_change_rate(rl), 10.0 / 3));
    ratelimit_set_share(rl, 0); /* nonsense means the whole budget */
    CHECK(near(ratelimit_rate(rl), 5));

    /* A cut (local) stays a cut when the share changes: same fraction of the new maximum. */
    ratelimit_throttled(rl);
    before = ratelimit_rate(rl);
    CHECK(before < 5 * 0.75);
    ratelimit_set_share(rl, 0.5);
    CHECK(ratelimit_rate(rl) < before / 2 * 1.05 && ratelimit_rate(rl) > before / 2 * 0.95);
    ratelimit_cuts(rl, &cuts, &last);
    CHECK_INT(cuts, 1);
    CHECK(last != 0);
    ratelimit_destroy(rl);

    /* A peer's cut cuts, but is not counted as this replica's (no echo). */
    rl = ratelimit_create(&o);
    CHECK_INT(ratelimit_throttled_by_peer(rl), 1);
    CHECK(ratelimit_rate(rl) < 5 * 0.75);
    CHECK_INT(ratelimit_throttled_by_peer(rl), 0); /* the same event: once */
    ratelimit_cuts(rl, &cuts, &last);
    CHECK_INT(cuts, 0);
    ratelimit_destroy(rl);
}

/* An expiring lease on the peers' answers: kept when heard within it, postponed a few times
 * when a live peer could not answer, expired otherwise; a huge heard_ms_ago cannot overflow
 * into "heard just now". */
static void test_lease_verdict(void)
{
    struct reg_heard h;
    int64_t ago = -7;

    memset(&h, 0, sizeof(h));
    h.ago_ms = 2000;
    CHECK_INT(reg_lease_verdict(&h, 5, 0, &ago), REG_LEASE_KEEP);
    CHECK(ago == 2000 * 1000000LL);
    h.ago_ms = 5000; /* heard exactly one lease ago: expired */
    CHECK_INT(reg_lease_verdict(&h, 5, 0, &ago), REG_LEASE_EXPIRE);
    h.ago_ms = 1000;
    CHECK_INT(reg_lease_verdict(&h, 0, 0, &ago), REG_LEASE_EXPIRE); /* no lease known */

    /* Nobody heard it, a live peer did not answer: postponed, REG_LEASE_UNKNOWN_TRIES times. */
    h.ago_ms = -1;
    CHECK_INT(reg_lease_verdict(&h, 5, 0, &ago), REG_LEASE_EXPIRE);
    h.unknown = 1;
    for (unsigned t = 0; t < REG_LEASE_UNKNOWN_TRIES; t++)
        CHECK_INT(reg_lease_verdict(&h, 5, t, &ago), REG_LEASE_RETRY);
    CHECK_INT(reg_lease_verdict(&h, 5, REG_LEASE_UNKNOWN_TRIES, &ago), REG_LEASE_EXPIRE);
    h.ago_ms = 100; /* another peer heard it: kept, unknown or not */
    CHECK_INT(reg_lease_verdict(&h, 5, REG_LEASE_UNKNOWN_TRIES, &ago), REG_LEASE_KEEP);
    h.ago_ms = 9000; /* heard, but too long ago, and a peer did not answer: postponed */
    CHECK_INT(reg_lease_verdict(&h, 5, 1, &ago), REG_LEASE_RETRY);

    /* Overflow: ago_ms * 1e6 wraps int64 past ~9.2e12 ms; without the clamp, these land
     * negative, i.e. "heard in the future", inside any lease. */
    h.unknown = 0;
    h.ago_ms = 9223372036855LL; /* * 1e6 just past INT64_MAX */
    CHECK_INT(reg_lease_verdict(&h, REG_MAX_LEASE, 0, &ago), REG_LEASE_EXPIRE);
    CHECK(ago == (int64_t)REG_MAX_LEASE * 1000000000LL);
    h.ago_ms = 18446744073709LL; /* wraps to about -0.55 ms */
    CHECK_INT(reg_lease_verdict(&h, REG_MAX_LEASE, 0, &ago), REG_LEASE_EXPIRE);
    h.ago_ms = 9223372036854775807LL;
    CHECK_INT(reg_lease_verdict(&h, 5, 0, &ago), REG_LEASE_EXPIRE);
    h.ago_ms = (long long)REG_MAX_LEASE * 1000 - 1; /* the longest lease, just inside */
    CHECK_INT(reg_lease_verdict(&h, REG_MAX_LEASE, 0, &ago), REG_LEASE_KEEP);
}

/* The pure rescale: the curve keeps its shape. */
static void test_rescale(void)
{
    struct ratepolicy_cubic a, b;
    int64_t t0 = 1000 * RATEPOLICY_NS_PER_S;
    ratepolicy_cubic_init(&a, 6, 0, 0, 0, t0);
    ratepolicy_cubic_throttled(&a, t0);
    b = a;
    ratepolicy_cubic_rescale(&b, 1.0 / 3);
    for (int s = 0; s <= 40; s += 5) {
        int64_t t = t0 + (int64_t)s * RATEPOLICY_NS_PER_S;
        CHECK(near(ratepolicy_cubic_rate(&b, t), ratepolicy_cubic_rate(&a, t) / 3));
    }
}

int main(void)
{
    test_stable();
    test_balanced();
    test_minimal_movement();
    test_budget();
    test_rescale();
    test_lease_verdict();
    return check_done("test_fleet");
}
