#!/usr/bin/python3
"""bench/committer: what the group committer costs, scenario by scenario.

Each scenario runs against a fresh r53emu and r53reg (--buckets 100 --max-per-bucket 400,
--commit group), once with the old limits (emulator --rate 5 --burst 5, r53reg --api-rps 5)
and once with the 2026 ones (emulator --rate 10 --burst 50, r53reg --api-rps 10 --api-burst
50); the change budget (emulator --change-rate/--change-burst, r53reg --api-change-rps) is set
high on both sides so that only the request rate binds. Setup (registering the fleet a
scenario starts from) is untimed; then the emulator's counters are zeroed, the limiters get
time to refill, and the measured requests are fired by bench/burst_client, each from its own
127.x.y.z address, their starts spread evenly (--over) from one common instant.

Scenarios (N = --n, default 10,000):
  spread  N registrations arriving over 0.5, 2, 4 and 20 s (--spreads)
  big     4N registrations over 10 s (fills 100 buckets of 400 exactly at N = 10,000)
  onto    N/5 registrations over 1 s onto a name already holding N/2
  dereg   N deregistrations over 2 s of a fleet of N
  churn   a fleet of N replacing 5% per minute (N/20 old deregistered, N/20 new registered,
          both spread evenly) for --churn-minutes (default 5)

Per scenario it prints: ChangeResourceRecordSets calls (every outcome), other API calls (they
share the request rate: r53reg's ListResourceRecordSets) and Throttling answers (all calls);
elements = ResourceRecord values in the applied changes (r53emu's records_applied, DELETE and
CREATE; a throttled call applies nothing); re-sent = values inside applied DELETEs
(records_deleted) minus the values the scenario had to delete; lost = acknowledged
registrations missing from the zone plus acknowledged deregistrations still in it (must be 0);
fail = requests not answered 2xx. The minimum: every value registered must be CREATEd and
every value deregistered DELETEd, so min elements = registrations + deregistrations, and min
calls = max(ceil(elements / 1000), ceil(characters / 32000)) (ROUTE53.md "Limits"; it ignores
that adding to or removing from a partly kept record set rewrites it, which is what re-sent
shows). floor = max(last arrival, min calls / rate) + 1 / rate, rate = the emulator's refill
rate; times count from the first request sent. Latency = answer - request start; a-a = answer
- arrival (when the request went out).

Usage: bench/committer.py [--bin build/bin] [--scenario NAME ...] [--limits 5|2026|both]
                          [--n 10000] [--spreads 0.5,2,4,20] [--churn-minutes 5] [--quick]
                          [--json FILE]
--quick: --n 2000, --spreads 0.5,2,4, --churn-minutes 0.25 (about 2 minutes for everything).
A full run takes about 13 minutes, churn 10 of them. Loopback only. A benchmark, not a test:
exits 1 only when something is plainly broken (a lost registration or a stale value).
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
sys.path.insert(0, HERE)
import burst  # noqa: E402  (Emu, start_reg, fire, ip_of, zone_set, peak_rss_kb)

LIMITS = {
    '5': {'rate': 5, 'burst': 5, 'api_rps': 5, 'api_burst': 1},
    '2026': {'rate': 10, 'burst': 50, 'api_rps': 10, 'api_burst': 50},
}
# Record-set changes/s and burst on both sides: far above what 10 calls/s can carry (at most
# 200 Change elements a call), so the request rate is what binds.
CHANGE_BUDGET = 20000
PER_CLIENT = 1250  # requests per burst_client process (burst.py: 10,000 over 8)
SCENARIOS = ('spread', 'big', 'onto', 'dereg', 'churn')


def plan(name, n, spreads, churn_minutes):
    """[(label, setup count, [(op, first index, count, over seconds)])] of one scenario."""
    if name == 'spread':
        return [('%d reg over %gs' % (n, s), 0, [('register', 0, n, s)]) for s in spreads]
    if name == 'big':
        return [('%d reg over 10s' % (4 * n), 0, [('register', 0, 4 * n, 10.0)])]
    if name == 'onto':
        return [('%d reg onto %d' % (n // 5, n // 2), n // 2,
                 [('register', n // 2, n // 5, 1.0)])]
    if name == 'dereg':
        return [('%d dereg over 2s' % n, n, [('deregister', 0, n, 2.0)])]
    k = int(round(n * 0.05 * churn_minutes))
    over = 60.0 * churn_minutes
    return [('churn %d -%d +%d %gs' % (n, k, k, over), n,
             [('deregister', 0, k, over), ('register', n, k, over)])]


def run_streams(bindir, port, streams):
    """Fire every stream at once from one start instant; return the merged per-request events
    [(op, ip, start, sent, answered, status)] and the client processes' transport errors."""
    start_at = time.monotonic() + 0.5 + 0.02 * sum(math.ceil(c / PER_CLIENT)
                                                   for _, _, c, _ in streams)
    procs = []
    for op, first, count, over in streams:
        nproc = max(1, math.ceil(count / PER_CLIENT))
        per = math.ceil(count / nproc)
        for j in range(nproc):
            c = min(per, count - j * per)
            if c <= 0:
                break
            ev = tempfile.NamedTemporaryFile(prefix='committer-ev-', delete=False).name
            cmd = [os.path.join(bindir, 'burst_client'), '--url', 'http://127.0.0.1:%d' % port,
                   '--n', str(c), '--offset', str(first + j * per), '--op', op,
                   '--start-at', '%.6f' % start_at, '--events', ev]
            if over > 0:
                cmd += ['--over', '%g' % over]
            procs.append((op, first + j * per, ev, subprocess.Popen(cmd, stdout=subprocess.PIPE)))
    events, errors = [], 0
    for op, first, ev, p in procs:
        got, errs = burst.client_events(first, ev, p)
        events += [(op,) + e for e in got]
        errors += errs
    return events, errors


def pct(sorted_vals, q):
    if not sorted_vals:
        return float('nan')
    return sorted_vals[min(len(sorted_vals) - 1, int(len(sorted_vals) * q))]


def measure(label, lim, setup_n, events, errors, stats, zone, rss_kb):
    regs = [e for e in events if e[0] == 'register']
    deregs = [e for e in events if e[0] == 'deregister']
    acked_reg = {e[1] for e in regs if 200 <= e[5] < 300}
    acked_dereg = {e[1] for e in deregs if 200 <= e[5] < 300}
    unsure = {e[1] for e in events if not 200 <= e[5] < 300}
    expected = ({burst.ip_of(i) for i in range(setup_n)} | acked_reg) - acked_dereg
    zone = set(zone)
    lost = len(expected - zone) + len(zone & acked_dereg)
    stray = len(zone - expected - unsure)
    min_elems = len(regs) + len(deregs)
    min_chars = sum(len(e[1]) for e in events)
    min_calls = max(1, math.ceil(min_elems / 1000), math.ceil(min_chars / 32000))
    crrs = stats['calls'].get('ChangeResourceRecordSets', {})
    calls = sum(crrs.values())
    t0 = min(e[2] for e in events)
    arrivals = [(e[3] if e[5] else e[2]) for e in events]
    last_arrival = max(arrivals) - t0
    last_answer = max(e[4] for e in events) - t0
    rate = lim['rate']
    floor = max(last_arrival, min_calls / rate) + 1 / rate
    lat = sorted((e[4] - e[2]) * 1e3 for e in events)
    a2a = sorted((e[4] - a) * 1e3 for e, a in zip(events, arrivals))
    return {
        'scenario': label, 'limits': lim['name'], 'calls': calls,
        'calls_by_outcome': crrs,
        'other': sum(sum(v.values()) for k, v in stats['calls'].items()
                     if k != 'ChangeResourceRecordSets'),
        'other_calls': {k: v for k, v in stats['calls'].items()
                                                  if k != 'ChangeResourceRecordSets'},
        'throttled': stats['throttled'], 'throttled_changes': stats['throttled_changes'],
        'elements': stats['records_applied'],
        'resent': stats['records_deleted'] - len(acked_dereg),
        'records_deleted': stats['records_deleted'],
        'change_items': stats['change_items_applied'],
        'lost': lost, 'stray': stray,
        'failed': len(events) - len(acked_reg) - len(acked_dereg), 'transport_errors': errors,
        'min_elements': min_elems, 'min_chars': min_chars, 'min_calls': min_calls,
        'calls_ratio': calls / min_calls, 'floor_s': floor, 'last_arrival_s': last_arrival,
        'last_answer_s': last_answer, 'answer_ratio': last_answer / floor,
        'p50_ms': pct(lat, 0.5), 'p99_ms': pct(lat, 0.99),
        'a2a_p50_ms': pct(a2a, 0.5), 'a2a_p99_ms': pct(a2a, 0.99),
        'zone_values': len(zone), 'peak_rss_mb': rss_kb / 1024,
    }


def run_case(args, lim, label, setup_n, streams):
    emu = burst.Emu(os.path.join(args.bin, 'r53emu'), '--rate', str(lim['rate']),
                    '--burst', str(lim['burst']), '--change-rate', str(CHANGE_BUDGET),
                    '--change-burst', str(CHANGE_BUDGET))
    reg = None
    try:
        reg = burst.start_reg(argparse.Namespace(bin=args.bin, rps=lim['api_rps']), emu,
                              '--api-burst', str(lim['api_burst']),
                              '--api-change-rps', str(CHANGE_BUDGET),
                              '--max-connections', '19000', '--commit', 'group')
        if setup_n:
            res = burst.fire(argparse.Namespace(bin=args.bin), reg.port, setup_n, 'register',
                             max(1, math.ceil(setup_n / PER_CLIENT)))
            if res['codes'].get('201', 0) != setup_n:
                raise RuntimeError('setup: %d registrations answered %s' % (setup_n,
                                                                           res['codes']))
        # Idle until both rate limiters are full again: each case starts from a rested account.
        time.sleep(max(lim['burst'] / lim['rate'], lim['api_burst'] / lim['api_rps']) + 0.5)
        emu.control('POST', 'reset-stats')
        events, errors = run_streams(args.bin, reg.port, streams)
        stats = emu.control('GET', 'stats')[1]
        return measure(label, lim, setup_n, events, errors, stats,
                       burst.zone_set(emu), burst.peak_rss_kb(reg.proc.pid))
    finally:
        if reg:
            reg.stop()
        emu.stop()


COLS = [('scenario', '%-28s', 'scenario'), ('limits', '%-4s', 'lim'), ('calls', '%5d', 'calls'),
        ('other', '%5d', 'other'), ('throttled', '%4d', 'thr'), ('elements', '%7d', 'elems'), ('resent', '%6d', 'resent'),
        ('lost', '%4d', 'lost'), ('failed', '%4d', 'fail'), ('min_calls', '%3d', 'min'),
        ('calls_ratio', '%5.1f', 'c/min'), ('floor_s', '%6.2f', 'floor'),
        ('last_answer_s', '%6.2f', 'last'), ('answer_ratio', '%5.2f', 'l/fl'),
        ('p50_ms', '%6.0f', 'p50ms'), ('p99_ms', '%6.0f', 'p99ms'),
        ('a2a_p99_ms', '%6.0f', 'a-a99')]


def row(r):
    return ' '.join(fmt % r[k] for k, fmt, _ in COLS)


def header():
    out = []
    for _, fmt, title in COLS:
        width = int(''.join(ch for ch in fmt.split('.')[0] if ch.isdigit()))
        out.append(title.ljust(width) if '-' in fmt else title.rjust(width))
    return ' '.join(out)


def main():
    ap = argparse.ArgumentParser(description='committer cost per scenario (see the docstring)')
    ap.add_argument('--bin', default=os.path.join(HERE, '..', 'build', 'bin'))
    ap.add_argument('--scenario', action='append', choices=SCENARIOS)
    ap.add_argument('--limits', choices=('5', '2026', 'both'), default='both')
    ap.add_argument('--n', type=int, default=None, help='fleet size (default 10000)')
    ap.add_argument('--spreads', default=None, help='spread scenario, seconds (0.5,2,4,20)')
    ap.add_argument('--churn-minutes', type=float, default=None)
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--json', help='also write every result to this file')
    args = ap.parse_args()
    quick = {'n': 2000, 'spreads': '0.5,2,4', 'churn_minutes': 0.25}
    full = {'n': 10000, 'spreads': '0.5,2,4,20', 'churn_minutes': 5.0}
    for k, v in (quick if args.quick else full).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    spreads = [float(s) for s in args.spreads.split(',') if s]
    limits = ['5', '2026'] if args.limits == 'both' else [args.limits]
    began = time.monotonic()
    print('r53reg --buckets 100 --max-per-bucket 400 --commit group; change budget: emulator '
          '--change-rate %d --change-burst %d, r53reg --api-change-rps %d' %
          (CHANGE_BUDGET, CHANGE_BUDGET, CHANGE_BUDGET))
    for name in limits:
        lim = LIMITS[name]
        print('limits %s: emulator --rate %g --burst %g; r53reg --api-rps %g --api-burst %g' %
              (name, lim['rate'], lim['burst'], lim['api_rps'], lim['api_burst']))
    print(header(), flush=True)
    results = []
    for scen in args.scenario or SCENARIOS:
        for label, setup_n, streams in plan(scen, args.n, spreads, args.churn_minutes):
            for name in limits:
                lim = dict(LIMITS[name], name=name)
                r = run_case(args, lim, label, setup_n, streams)
                results.append(r)
                print(row(r), flush=True)
                print('    calls %s, other %s; change items %d, throttled changes %d; '
                      'min %d elements / %d chars; last arrival %.2f s; a-a p50 %.0f ms; '
                      'stray %d; transport errors %d; zone %d values; r53reg peak RSS %.0f MB'
                      % (r['calls_by_outcome'], r['other_calls'], r['change_items'],
                         r['throttled_changes'], r['min_elements'], r['min_chars'],
                         r['last_arrival_s'], r['a2a_p50_ms'], r['stray'],
                         r['transport_errors'], r['zone_values'], r['peak_rss_mb']), flush=True)
    total = time.monotonic() - began
    print()
    print('summary (calls = ChangeResourceRecordSets, every outcome; other = other API calls; '
          'elems = values in applied changes; resent = values inside DELETEs beyond those '
          'deregistered; times in s from the first request sent)')
    print(header())
    for r in results:
        print(row(r))
    print('total runtime %.0f s' % total)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'results': results, 'total_s': total}, f, indent=1)
    broken = [r for r in results if r['lost'] or r['stray']]
    if broken:
        print('bench/committer: lost registrations or stray values in: %s' %
              ', '.join('%s (%s)' % (r['scenario'], r['limits']) for r in broken))
        sys.exit(1)


if __name__ == '__main__':
    main()
