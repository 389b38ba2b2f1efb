#!/usr/bin/python3
"""bench/fleet: two replicas with the same flags, with and without --peers.

Against the Route 53 emulator throttled like an account (--rate R --burst R), two r53reg
replicas each configured with --api-rps R and --commit immediate (one call per registration)
register N addresses each at once; the emulator counts the Throttling answers. Then M
backends with a lease of L seconds (given through both replicas) send a heartbeat every L/3
seconds, each to one replica or the other at random (a load balancer), for D seconds; the benchmark counts the
backends that left the zone (spurious expiries: every one of them kept heartbeating).

Usage: bench/fleet.py [--bin build/bin] [--n 60] [--rps 5] [--m 40] [--lease 6] [--d 24]
Only loopback is used. Prints numbers; exits 0.
"""
import argparse
import json
import os
import random
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'integration'))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'r53emu'))
import test_fleet  # noqa: E402
from emutest import Emu  # noqa: E402


def burst(reps, ips):
    out = []
    lock = threading.Lock()

    def one(i, ip):
        try:
            st, _ = reps[i % len(reps)].req('POST', f'/backends/{ip}')
        except OSError as e:
            st = type(e).__name__
        with lock:
            out.append(st)

    th = [threading.Thread(target=one, args=(i, ip)) for i, ip in enumerate(ips)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    return out


def heartbeat(rep, ip):
    try:
        rep.req('PUT', f'/backends/{ip}/heartbeat')
    except OSError:
        pass


def run(binp, peers_on, a):
    test_fleet.BIN = binp
    emu = Emu(os.path.join(binp, 'r53emu'), '--rate', str(a.rps), '--burst', str(a.rps))
    pa, pb = test_fleet.free_port(), test_fleet.free_port()
    urls = [f'http://127.0.0.1:{pa}', f'http://127.0.0.1:{pb}']
    extra = ['--commit', 'immediate', '--resync-interval', '1', '--api-rps', str(a.rps),
             '--client-timeout', '600', '--threads', '32']
    if not peers_on:
        urls = []
    reps = []
    try:
        for port in (pa, pb):
            args = list(extra)  # without peers, urls is empty: --peers '' is off
            reps.append(test_fleet.Replica(emu, port, urls, *args))
        if peers_on:
            test_fleet.wait_for(lambda: all(r.metric('r53reg_fleet_replicas') == 2 for r in reps),
                                20)
        emu.control('POST', 'reset-stats')
        ips = [f'10.1.{i // 250}.{i % 250 + 1}' for i in range(2 * a.n)]
        t0 = time.monotonic()
        codes = burst(reps, ips)
        wall = time.monotonic() - t0
        st = emu.control('GET', 'stats')[1]
        ok = sum(1 for c in codes if c in (200, 201))
        hist = {}
        for c in codes:
            hist[c] = hist.get(c, 0) + 1
        print(f"  burst: {len(ips)} registrations through 2 replicas: {ok} ok in {wall:.1f} s "
              f"{hist}, calls {st['calls_total']}, Throttling answers {st['throttled']}",
              flush=True)
        print(f"    calls by action and outcome: {st['calls']}", flush=True)
        for r in reps:
            if r.proc.poll() is not None:
                print(f"  replica {r.port} died: {r.proc.returncode}\n{r.logtext()[-3000:]}")

        # Leases with heartbeats through a round-robin balancer.
        lease_ips = [f'10.2.0.{i + 1}' for i in range(a.m)]
        # Registered first without a lease (paced by the rate limit: takes a while), then,
        # once both replicas hold them, given the short lease through both (no store call)
        # right before the heartbeats start.
        burst([reps[0]], lease_ips)
        test_fleet.wait_for(lambda: all(reps[1].req('GET', f'/backends/{ip}')[0] == 200
                                        for ip in lease_ips), 30, step=1)
        for ip in lease_ips:
            for r in reps:
                r.req('POST', f'/backends/{ip}', json.dumps({'lease_seconds': a.lease}),
                      {'Content-Type': 'application/json'})
        rnd = random.Random(7)
        deadline = time.monotonic() + a.d
        k = 0
        while time.monotonic() < deadline:
            # one round: every backend sends its heartbeat at once, through the replica the
            # balancer picks (either, at random), without waiting for the others' answers
            th = [threading.Thread(target=heartbeat, args=(reps[rnd.randrange(2)], ip))
                  for ip in lease_ips]
            for t in th:
                t.start()
            k += 1
            time.sleep(a.lease / 3)
            for t in th:
                t.join()
        zone = test_fleet.zone_values(emu, test_fleet.NAME)
        gone = [ip for ip in lease_ips if ip not in zone]
        print(f"  leases: {a.m} backends, lease {a.lease} s, heartbeat every "
              f"{a.lease / 3:.1f} s to either replica for {a.d} s: "
              f"{len(gone)} left DNS")
    finally:
        for r in reps:
            r.stop()
        emu.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--bin', default=os.path.join(HERE, '..', 'build', 'bin'))
    ap.add_argument('--n', type=int, default=60)
    ap.add_argument('--rps', type=float, default=5)
    ap.add_argument('--m', type=int, default=40)
    ap.add_argument('--lease', type=int, default=6)
    ap.add_argument('--d', type=int, default=24)
    a = ap.parse_args()
    for on in (False, True):
        print(f"{'with' if on else 'without'} --peers:", flush=True)
        run(os.path.abspath(a.bin), on, a)


if __name__ == '__main__':
    main()
