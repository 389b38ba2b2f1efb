"""Replicas that agree (issue 12): two and three r53reg replicas, same flags, one zone of the
strict Route 53 emulator at 5 calls/s.

Usage: test_replicas.py BIN_DIR   (holds r53reg and r53emu); ONLY=<substring> runs some cases.

The six cases of the issue (stale 404s, two buckets, undeletable copies, stale replica,
self-throttling, leases), the same invariants under faults (10% 5xx, 5% resets) and kill -9 of
one replica during a burst; the cases are in replica_cases.py, the harness in replicas.py.
Behaviour is asserted, timing is only printed (one figure line per case; bench/replicas.py
runs them at full size). Self-throttling and leases need replicas that know each other
(--peers): when `r53reg --help` has no --peers they are skipped with the reason printed.
Prints 'N passed, M failed' last.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'r53emu'))
from emutest import Tally  # noqa: E402
import reg_process  # noqa: E402
import replicas as R  # noqa: E402
import replica_cases as C  # noqa: E402

T = Tally()


def case(fn, **size):
    def run():
        try:
            res = fn(emu, T, BIN, **size)
        except R.Unsupported as e:
            print(f'    SKIP: {e}', flush=True)
            return
        print(f'    {res["figure"]}', flush=True)
    return run


if __name__ == '__main__':
    BIN = sys.argv[1]
    reg_process.BIN = BIN
    PEERS = R.supports_peers(BIN)  # faults and kill -9 as users run them, when available
    emu = R.start_emu(BIN, rate=5)
    try:
        T.run('1. stale 404s', case(C.stale_404s, n=30))
        T.run('2. two buckets (2 replicas)', case(C.two_buckets, n=300, resync=2, replicas=2))
        T.run('2. two buckets (3 replicas)', case(C.two_buckets, n=150, resync=2, replicas=3))
        T.run('3. undeletable copies', case(C.undeletable_copies))
        T.run('4. stale replica', case(C.stale_replica, n=100))
        T.run('5. self-throttling (2 replicas)', case(C.self_throttling, n=200, replicas=2))
        T.run('5. self-throttling (3 replicas)', case(C.self_throttling, n=200, replicas=3))
        T.run('6. leases', case(C.leases, n=20, lease=6, duration=24))
        T.run('faults: 10% 5xx, 5% resets', case(C.under_faults, n=40, resync=2, peers=PEERS))
        T.run('kill -9 of one replica', case(C.kill_one, n=100, peers=PEERS))
    finally:
        emu.stop()
    T.finish()
