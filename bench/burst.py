#!/usr/bin/python3
"""bench/burst: an autoscaling burst against r53reg and the Route 53 emulator.

Starts r53emu throttled like an account (--rate 5 --burst 5), starts r53reg against it,
fires N concurrent registrations from N distinct 127.0.0.0/8 addresses (each connection bound
to the address it registers), then deregisters them all, and prints what it measured: wall time
to the last answer, API calls by kind, Throttling answers, calls per registration, latency
percentiles, peak RSS of r53reg, and whether the zone holds exactly the registered set (then
nothing). It prints the floor the limits imply for the same work and the ratio to it, repeats
the registrations with --commit immediate (fewer of them: one call each at 5/s is slow) for a
side-by-side ratio, measures a lone registration on an idle service against the emulator's own
answer time, and runs a burst with faults injected.

Usage: bench/burst.py [--bin build/bin] [--n 10000] [--immediate-n 200] [--clients 8]
                      [--rps 5] [--skip-faults] [--skip-immediate]
Only loopback is used. It is a benchmark, not a test: it prints numbers and exits 0 unless
something it measures is plainly broken (a lost registration).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'r53emu'))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'integration'))
from emutest import Emu, ZONE  # noqa: E402

NAME = 'app.example.com.'


def start_reg(args, emu, *extra):
    import test_route53  # its Reg class starts r53reg and reads the port
    test_route53.BIN = args.bin
    return test_route53.Reg(emu, '--buckets', '100', '--max-per-bucket', '400',
                            '--api-rps', str(args.rps), '--log-level', os.environ.get('BENCH_LOG', 'info'),
                            '--max-connections', '16000', *extra)


def ip_of(i):
    return '127.%d.%d.%d' % (1 + i // (254 * 254), (i // 254) % 254 + 1, i % 254 + 1)


def client_events(first, events_path, proc):
    """Wait for a burst_client started with --offset first --events events_path: its requests
    as (ip, start, sent, answered, status) in start order, and its transport errors. The
    events file is removed."""
    out = proc.communicate()[0]
    if proc.returncode != 0:
        raise RuntimeError('burst_client exited %d' % proc.returncode)
    events = []
    with open(events_path) as f:
        for i, line in enumerate(f):
            t0, sent, t1, st = line.split()
            events.append((ip_of(first + i), float(t0), float(sent), float(t1), int(st)))
    os.unlink(events_path)
    return events, json.loads(out)['transport_errors']


def zone_set(emu):
    vals = []
    for rs in emu.rrsets():
        if rs['name'] == NAME and rs.get('set_identifier', '').startswith('app.example.com_'):
            vals += rs['values']
    return vals


def peak_rss_kb(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1])
    return -1


def fire(args, port, n, op, clients):
    """Run the burst with several client processes; merge their results."""
    per = int(math.ceil(n / clients))
    procs, files = [], []
    for k in range(clients):
        count = min(per, n - k * per)
        if count <= 0:
            break
        lat = tempfile.NamedTemporaryFile(prefix='burst-lat-', delete=False)
        files.append(lat.name)
        procs.append(subprocess.Popen(
            [os.path.join(args.bin, 'burst_client'), '--url', 'http://127.0.0.1:%d' % port,
             '--n', str(count), '--offset', str(k * per), '--op', op, '--ramp', '50',
             '--latencies', lat.name], stdout=subprocess.PIPE))
    outs = [json.loads(p.communicate()[0]) for p in procs]
    lats = []
    for name in files:
        with open(name) as f:
            lats += [float(x) for x in f if x.strip()]
        os.unlink(name)
    lats.sort()
    codes = {}
    for o in outs:
        for c, v in o['codes'].items():
            codes[c] = codes.get(c, 0) + v
    t0 = min(o['start'] for o in outs)
    return {
        'wall_s': max(o['last'] for o in outs) - t0,
        'last_sent_s': max(o['last_sent'] for o in outs) - t0,
        'p50_ms': lats[len(lats) // 2], 'p99_ms': lats[min(len(lats) - 1, len(lats) * 99 // 100)],
        'max_ms': lats[-1], 'codes': codes,
        'transport_errors': sum(o['transport_errors'] for o in outs),
    }


def calls(emu):
    st = emu.control('GET', 'stats')[1]
    return st['calls'], st['throttled']


def floor_calls(n):
    # Every value is written at least once, at most 1,000 ResourceRecord elements per call.
    return max(1, math.ceil(n / 1000))


def report(label, n, res, emu_calls, throttled, rps, rss_kb=None):
    crrs = sum(emu_calls.get('ChangeResourceRecordSets', {}).values())
    fl = floor_calls(n)
    floor_s = fl / rps
    print('%s: %d requests, wall %.2f s (floor %d calls / %g per s = %.2f s, ratio %.2f)' %
          (label, n, res['wall_s'], fl, rps, floor_s, res['wall_s'] / floor_s))
    print('  the last request was sent after %.2f s (the load generator and r53reg share the '
          'machine\'s 2 cores); from there to the last answer %.2f s' %
          (res['last_sent_s'], res['wall_s'] - res['last_sent_s']))
    print('  answers %s, transport errors %d' % (res['codes'], res['transport_errors']))
    print('  latency p50 %.0f ms, p99 %.0f ms, max %.0f ms' %
          (res['p50_ms'], res['p99_ms'], res['max_ms']))
    print('  API calls %s; ChangeResourceRecordSets %d (%.4f per request); Throttling answers %d'
          % (emu_calls, crrs, crrs / n, throttled))
    if rss_kb is not None:
        print('  peak RSS of r53reg %.1f MB' % (rss_kb / 1024))
    return crrs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--bin', default=os.path.join(HERE, '..', 'build', 'bin'))
    ap.add_argument('--n', type=int, default=10000)
    ap.add_argument('--immediate-n', type=int, default=200)
    ap.add_argument('--clients', type=int, default=8)
    ap.add_argument('--rps', type=float, default=5)
    ap.add_argument('--skip-faults', action='store_true')
    ap.add_argument('--skip-immediate', action='store_true')
    args = ap.parse_args()
    summary = {}
    ok = True

    # --- group commit: N registrations, then N deregistrations --------------------------
    emu = Emu(os.path.join(args.bin, 'r53emu'), '--rate', '5', '--burst', '5')
    reg = start_reg(args, emu)
    try:
        emu.control('POST', 'reset-stats')
        res = fire(args, reg.port, args.n, 'register', args.clients)
        c, thr = calls(emu)
        rss = peak_rss_kb(reg.proc.pid)
        crrs = report('group commit, register', args.n, res, c, thr, args.rps, rss)
        zone = zone_set(emu)
        want = sorted(ip_of(i) for i in range(args.n))
        exact = sorted(zone) == want
        print('  zone holds exactly the registered set: %s (%d values)' % (exact, len(zone)))
        ok &= exact and res['codes'].get('201', 0) == args.n
        summary['register'] = dict(res, calls=c, throttled=thr, change_calls=crrs,
                                   peak_rss_mb=rss / 1024, exact=exact)

        emu.control('POST', 'reset-stats')
        res = fire(args, reg.port, args.n, 'deregister', args.clients)
        c, thr = calls(emu)
        crrs = report('group commit, deregister', args.n, res, c, thr, args.rps,
                      peak_rss_kb(reg.proc.pid))
        empty = zone_set(emu) == []
        print('  zone holds nothing afterwards: %s' % empty)
        ok &= empty and res['codes'].get('200', 0) == args.n
        summary['deregister'] = dict(res, calls=c, throttled=thr, change_calls=crrs,
                                     exact=empty)

        # --- a lone registration on an idle service -------------------------------------
        time.sleep(1.5)  # let the rate limiter refill: idle means idle
        # The emulator's own answer time: a signed ChangeResourceRecordSets over a plain
        # socket, timing only the exchange (signing happens before the clock starts).
        import http.client
        direct = []
        for i in range(5):
            body = ('<?xml version="1.0" encoding="UTF-8"?><ChangeResourceRecordSetsRequest '
                    'xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch><Changes>'
                    '<Change><Action>CREATE</Action><ResourceRecordSet><Name>probe%d.example.com'
                    '</Name><Type>A</Type><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>'
                    '192.0.2.%d</Value></ResourceRecord></ResourceRecords></ResourceRecordSet>'
                    '</Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>'
                    % (i, i + 1)).encode()
            path = '/2013-04-01/hostedzone/%s/rrset/' % ZONE
            hdrs = emu.signed_headers('POST', path, body)
            conn = http.client.HTTPConnection('127.0.0.1', emu.port, timeout=30)
            conn.connect()
            t0 = time.monotonic()
            conn.request('POST', path, body=body, headers=hdrs)
            resp = conn.getresponse()
            resp.read()
            direct.append((time.monotonic() - t0) * 1e3)
            conn.close()
            ok &= resp.status == 200
            time.sleep(0.25)
        lone = []
        for i in range(5):
            time.sleep(0.25)
            t0 = time.monotonic()
            st, _ = reg.req('POST', '/backends/127.200.0.%d' % (i + 1))
            lone.append((time.monotonic() - t0) * 1e3)
            ok &= st == 201
        direct.sort()
        lone.sort()
        print('lone registration on an idle service: median %.2f ms through r53reg, '
              'median %.2f ms for one ChangeResourceRecordSets straight to the emulator: '
              'r53reg adds %.2f ms' % (lone[2], direct[2], lone[2] - direct[2]))
        summary['lone'] = {'r53reg_ms': lone, 'direct_ms': direct}
    finally:
        reg.stop()
        emu.stop()

    # --- immediate mode, for the ratio ---------------------------------------------------
    if not args.skip_immediate:
        emu = Emu(os.path.join(args.bin, 'r53emu'), '--rate', '5', '--burst', '5')
        reg = start_reg(args, emu, '--commit', 'immediate')
        try:
            emu.control('POST', 'reset-stats')
            res = fire(args, reg.port, args.immediate_n, 'register', min(args.clients, 4))
            c, thr = calls(emu)
            report('immediate, register', args.immediate_n, res, c, thr, args.rps)
            per_imm = res['wall_s'] / args.immediate_n
            per_grp = summary['register']['wall_s'] / args.n
            print('  time per registration: immediate %.1f ms, group %.3f ms: group commit is '
                  '%.0fx faster; %d registrations in immediate mode would take about %.0f s' %
                  (per_imm * 1e3, per_grp * 1e3, per_imm / per_grp, args.n, per_imm * args.n))
            summary['immediate'] = dict(res, calls=c, throttled=thr)
        finally:
            reg.stop()
            emu.stop()

    # --- faults ---------------------------------------------------------------------------
    if not args.skip_faults:
        emu = Emu(os.path.join(args.bin, 'r53emu'), '--rate', '5', '--burst', '5',
                  '--faults', 'err5xx=0.1,reset=0.05,throttle=0.02', '--seed', '11')
        reg = start_reg(args, emu)
        try:
            n = args.n
            res = fire(args, reg.port, n, 'register', args.clients)
            emu.faults(err5xx=0, reset=0, throttle=0)
            c, thr = calls(emu)
            report('faults (10%% 5xx, 5%% resets, 2%% throttling), register', n, res, c, thr,
                   args.rps)
            zone = set(zone_set(emu))
            acked = res['codes'].get('201', 0)
            # Every acknowledged registration must be in the zone: the registry agrees.
            st, doc = reg.req('GET', '/backends')
            known = set(b['ip'] for b in doc['backends'])
            lost = len(known - zone)
            print('  acknowledged %d, in the zone %d, registry and zone differ on %d IPs, '
                  'lost %d' % (acked, len(zone), len(known ^ zone), lost))
            st = emu.control('GET', 'stats')[1]
            print('  faults injected %s' % st['faults'])
            ok &= lost == 0 and acked <= len(zone)
            summary['faults'] = dict(res, calls=c, lost=lost, in_zone=len(zone))
        finally:
            reg.stop()
            emu.stop()

    print(json.dumps(summary, default=str))
    if not ok:
        print('bench/burst: something was lost or refused: see above')
        sys.exit(1)


if __name__ == '__main__':
    main()
