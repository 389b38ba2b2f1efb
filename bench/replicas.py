#!/usr/bin/python3
"""bench/replicas: issue 12's scenarios at full size, two and three r53reg replicas on one zone.

The strict Route 53 emulator at 5 calls/s (burst 5), replicas with r53reg's default flags
(tests/integration/replicas.py: Fleet, RoundRobin client from 250 source addresses), the
cases of tests/integration/replica_cases.py at the sizes the issue measured:

- stale 404s: 500 IPs registered through A, each DELETE through B;
- two buckets: 500 new IPs, each POSTed to both replicas at once (--resync-interval 10):
  time and calls, IPs in two buckets at the end of the burst and after the repair;
- undeletable copies: an IP in two buckets, listed and deleted through the replicas;
- stale replica: 100 registrations through a replica whose view is stale: time and calls;
- self-throttling: 500 registrations round-robin through 2, then 3 replicas: Throttling;
- leases: 100 backends, lease 30 s, a heartbeat each every 10 s round-robin, for 120 s, and a
  short variant (100 backends, lease 6 s, every 2 s, 30 s): backends that left DNS at least
  once, spurious expiries, heartbeats answered 200 while their backend was out of DNS;
- faults (10% 5xx, 5% resets, 200 IPs) and kill -9 of one replica during a burst of 500.

--peers gives every replica --peers/--peer-token (replicas that know each other); without it
the replicas run as today. Invariants the cases check are reported as FAIL lines, not hidden.

Usage: python3 bench/replicas.py --bin build/bin [--peers] [--short] [--only NAME]
       --short: the lease runs only in their short variant. Loopback only. Exits 1 when an
       invariant was violated (a violation is a finding, the numbers are printed anyway).
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'r53emu'))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'integration'))
from emutest import Tally  # noqa: E402
import reg_process  # noqa: E402
import replicas as R  # noqa: E402
import replica_cases as C  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--bin', default=os.path.join(HERE, '..', 'build', 'bin'))
    ap.add_argument('--peers', action='store_true')
    ap.add_argument('--short', action='store_true')
    ap.add_argument('--only', default='')
    args = ap.parse_args()
    bin_dir = os.path.abspath(args.bin)
    reg_process.BIN = bin_dir
    peers = args.peers
    print(f'# r53reg {bin_dir}, peers {"on" if peers else "off"} (binary has --peers: '
          f'{R.supports_peers(bin_dir)}), emulator 5 calls/s', flush=True)
    T = Tally()
    emu = R.start_emu(bin_dir, rate=5)
    runs = [
        ('stale 404s', C.stale_404s, dict(n=500)),
        ('two buckets', C.two_buckets, dict(n=500, resync=10, replicas=2, peers=peers)),
        ('undeletable copies', C.undeletable_copies, dict()),
        ('stale replica', C.stale_replica, dict(n=100)),
        ('self-throttling 2', C.self_throttling, dict(n=500, replicas=2, peers=peers)),
        ('self-throttling 3', C.self_throttling, dict(n=500, replicas=3, peers=peers)),
        ('leases short', C.leases, dict(n=100, lease=6, duration=30, peers=peers)),
        ('leases', C.leases, dict(n=100, lease=30, duration=120, peers=peers)),
        ('faults', C.under_faults, dict(n=200, resync=10, peers=peers)),
        ('kill -9', C.kill_one, dict(n=500, peers=peers)),
    ]
    try:
        for name, fn, size in runs:
            if args.only and args.only not in name:
                continue
            if args.short and name == 'leases':
                continue
            T.current = name
            t0 = time.monotonic()
            try:
                res = fn(emu, T, bin_dir, **size)
                print(f'{res["figure"]}  [{time.monotonic() - t0:.0f} s]', flush=True)
            except R.Unsupported as e:
                print(f'{name}: SKIP: {e}', flush=True)
            except Exception as e:  # one broken scenario does not hide the others' numbers
                T.check(False, f'{name} raised', repr(e))
    finally:
        emu.stop()
    print(f'# invariants: {T.passed} held, {T.failed} violated', flush=True)
    return 1 if T.failed else 0


if __name__ == '__main__':
    sys.exit(main())
