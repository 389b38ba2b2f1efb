#!/usr/bin/python3
"""bench/stale_replica: registrations through a replica whose view of the zone is stale.

Two r53reg processes share one Route 53 emulator throttled like an account (--rate 5 --burst 5,
r53reg --api-rps 5). Both start on an empty zone. Replica A registers N addresses at once
(balanced placement spreads them over the buckets); then replica B, which has not seen any of
that (--resync-interval 0: it learns the zone at start and on conflicts only), registers N
other addresses at once. Every bucket B writes has changed underneath it. The benchmark prints,
for each phase, the wall time to the last answer, the answers, and the API calls by kind and
outcome; then whether the zone holds exactly the 2N addresses.

Usage: bench/stale_replica.py [--bin build/bin] [--n 100] [--buckets 100] [--rps 5]
Only loopback is used. It prints numbers and exits 0 unless a registration was lost.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import burst  # noqa: E402  (start_reg, ip_of, zone_set)
from burst import Emu  # noqa: E402


def phase(emu, reg, ips):
    import test_route53  # its burst() fires one thread per registration
    emu.control('POST', 'reset-stats')
    t0 = time.monotonic()
    out = test_route53.burst(reg, ips)
    wall = time.monotonic() - t0
    st = emu.control('GET', 'stats')[1]
    codes = {}
    for code, _ in out.values():
        codes[code] = codes.get(code, 0) + 1
    return wall, codes, st


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--bin', default=os.path.join(HERE, '..', 'build', 'bin'))
    ap.add_argument('--n', type=int, default=100)
    ap.add_argument('--buckets', type=int, default=100)
    ap.add_argument('--rps', type=float, default=5)
    args = ap.parse_args()

    emu = Emu(os.path.join(args.bin, 'r53emu'), '--rate', '%g' % args.rps, '--burst',
              '%g' % args.rps)
    a = b = None
    ok = True
    try:
        extra = ('--buckets', str(args.buckets), '--resync-interval', '0', '--api-change-rps',
                 '0')
        a = burst.start_reg(args, emu, *extra)
        b = burst.start_reg(args, emu, *extra)
        ips_a = [burst.ip_of(i) for i in range(args.n)]
        ips_b = [burst.ip_of(args.n + i) for i in range(args.n)]
        for label, reg, ips in (('A (fresh view)', a, ips_a), ('B (stale view)', b, ips_b)):
            wall, codes, st = phase(emu, reg, ips)
            calls = sum(sum(v.values()) for v in st['calls'].values())
            print('%s: %d registrations, --buckets %d, %g calls/s: wall %.2f s, %d API calls, '
                  'answers %s' % (label, len(ips), args.buckets, args.rps, wall, calls, codes))
            print('  calls %s; Throttling %d' % (st['calls'], st['throttled']))
            ok = ok and set(codes) <= {200, 201}
        zone = burst.zone_set(emu)
        want = set(ips_a + ips_b)
        print('zone holds %d of the %d addresses (%d values in all)' %
              (len(want & set(zone)), len(want), len(zone)))
        ok = ok and want <= set(zone)
    finally:
        for r in (a, b):
            if r:
                r.stop()
        emu.stop()
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
