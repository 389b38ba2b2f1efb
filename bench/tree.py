#!/usr/bin/python3
"""bench/tree: a fleet of 200,000 registered through the alias tree (--tree), wave by wave.

Starts r53emu throttled like an account (--rate 5 --burst 5, as bench/burst.py) with
--refuse-dangling-alias, and r53reg --tree --buckets 100 --max-per-bucket 0 (65 A values a
bucket, the answer-size cap) --api-rps 5 (its --api-burst stays at the default 1, as in
bench/burst.py), then registers N backends (default 200,000) in waves of --wave (default
10,000). Each wave is fired by bench/burst_client (--clients processes sharing it through
--offset, every request POST /backends/<ip> from a connection bound to that 127.x.y.z), and
the next wave starts once every answer of this one is in and the emulator's request bucket has
had time to refill (burst / rate + 0.2 s).

Per wave and in total it prints: answers by status (all must be 201), wall time (first request
to last answer), latency p50/p99, Route 53 calls by kind and outcome and Throttling answers (the
emulator's /_emu/stats, diffed), the ResourceRecord values in applied changes ("elements"),
peak (VmHWM) and current (VmRSS) RSS of r53reg, the floor the limits set and the ratio to it,
the values in the zone and the spread of shares. At the end: the spread of every registered
address's exact share of traffic (the emulator's resolver, exact=1, through the aliases), the
children and aliases, and whether the zone holds exactly the registered addresses.

The floor: every registered value must be CREATEd once, so a wave of n registrations needs at
least min calls = max(ceil(n / 1000), ceil(value characters / 32000)) ChangeResourceRecordSets
calls (ROUTE53.md "Limits": 1,000 ResourceRecord elements and 32,000 characters a call); the
emulator admits `burst` calls at once from a rested bucket and `rate` a second after that, so
floor = max(0, min calls - burst) / rate (0 when the burst covers them; the ratio is then
nan). The total floor is the sum of the waves' floors (each wave starts from a rested bucket).
"sent floor" is the same with the elements r53reg actually had applied (a value added to a kept
set rewrites the set: DELETE old + CREATE new), i.e. how close r53reg runs to the rate for the
work it chose. Other API calls (ListResourceRecordSets of
the resyncs, GetChange) share the rate and are not in the floor.

Usage: bench/tree.py [--bin build/bin] [--n 200000] [--wave 10000] [--clients K]
                     [--log FILE] [--emu-log FILE] [--json FILE] [--reg-arg ARG ...]
                     [--emu-arg ARG ...]
--clients: burst_client processes per wave (default ceil(wave / 1250)). --log keeps r53reg's
log (a hard link to it; KEEP_LOG=1 prints it at the end, reg_process.Reg); --emu-log runs r53emu
at --log-level info and keeps its log. --reg-arg / --emu-arg append an argument to r53reg's /
r53emu's (a later flag wins). BENCH_LOG sets r53reg's --log-level (default info). Loopback
only. A benchmark, not a test: exits 1 only when something is plainly broken (an answer that is
not 201, a lost or stray address, a spread above 1.01, r53reg exiting non-zero).
"""
import argparse
import json
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'r53emu'))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'integration'))
from emutest import Emu, ZONE  # noqa: E402
import reg_process  # noqa: E402
sys.path.insert(0, HERE)
import burst  # noqa: E402  (ip_of, client_events)

NAME = 'app.example.com.'
CHILD = re.compile(r'^(\d+)\._r53reg\.app\.example\.com\.$')
RATE, BURST = 5, 5          # the emulator's request bucket (bench/burst.py's account)
CALL_ELEMENTS, CALL_CHARS = 1000, 32000
PER_CLIENT = 1250           # requests per burst_client process (burst.py: 10,000 over 8)


def keep(path, dest):
    """Keep a log the helpers unlink when they stop: a hard link (same file system), else a
    symbolic one that dies with it."""
    if os.path.lexists(dest):
        os.unlink(dest)
    try:
        os.link(path, dest)
    except OSError:
        print('warning: %s is on another file system than %s: not kept' % (dest, path))


def rss_kb(pid):
    out = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(('VmHWM:', 'VmRSS:')):
                out[line.split(':')[0]] = int(line.split()[1])
    return out.get('VmHWM', -1), out.get('VmRSS', -1)


def stats(emu):
    return emu.control('GET', 'stats')[1]


def diff(a, b):
    """b - a for the emulator's counters (calls nested by action and outcome)."""
    calls = {}
    for act, outs in b['calls'].items():
        for o, v in outs.items():
            d = v - a['calls'].get(act, {}).get(o, 0)
            if d:
                calls.setdefault(act, {})[o] = d
    out = {'calls': calls}
    for k in ('throttled', 'throttled_changes', 'changes_applied', 'change_items_applied',
              'records_applied', 'records_deleted', 'calls_total'):
        out[k] = b.get(k, 0) - a.get(k, 0)
    return out


def fire(args, port, first, count):
    """One wave: `count` registrations from address `first` on, over --clients processes.
    Returns [(ip, start, sent, answered, status)] in address order and transport errors."""
    nproc = max(1, min(args.clients, count))
    per = math.ceil(count / nproc)
    procs = []
    for k in range(nproc):
        c = min(per, count - k * per)
        if c <= 0:
            break
        ev = tempfile.NamedTemporaryFile(prefix='tree-ev-', delete=False).name
        cmd = [os.path.join(args.bin, 'burst_client'), '--url', 'http://127.0.0.1:%d' % port,
               '--n', str(c), '--offset', str(first + k * per), '--op', 'register',
               '--ramp', '50', '--events', ev]
        procs.append((first + k * per, ev, subprocess.Popen(cmd, stdout=subprocess.PIPE)))
    events, errors = [], 0
    for off, ev, p in procs:
        got, errs = burst.client_events(off, ev, p)
        events += got
        errors += errs
    return events, errors


def pct(vals, q):
    return vals[min(len(vals) - 1, int(len(vals) * q))] if vals else float('nan')


def floor_of(n_values, n_chars):
    calls = max(1, math.ceil(n_values / CALL_ELEMENTS), math.ceil(n_chars / CALL_CHARS))
    return calls, max(0, calls - BURST) / RATE


def look(emu):
    """The zone as DNS serves the name: served values, shares, children, aliases."""
    rrsets = emu.rrsets()
    served, aliases, buckets, dup_sid = {}, {}, {}, []
    hidden = 0
    for rr in rrsets:
        if rr['type'] != 'A':
            continue
        if rr['name'] == NAME and 'alias_target' in rr:
            aliases[rr['set_identifier']] = (rr['weight'], rr['alias_target']['dns_name'])
        elif 'values' in rr and rr['name'].startswith('_'):
            hidden += len(rr['values'])  # _down. / _draining. siblings: not served
        elif 'values' in rr:
            sid = rr.get('set_identifier')
            if sid in buckets:
                dup_sid.append(sid)
            buckets[sid] = (rr['name'], rr.get('weight'), rr['values'])
    values = [v for _, _, vals in buckets.values() for v in vals]
    q = urllib.parse.urlencode(dict(name=NAME.rstrip('.'), type='A', exact=1))
    st, doc = emu.control('GET', 'resolve?' + q)
    share = {}
    for path, p in (doc or {}).get('records', {}).items():
        leaf = path.split('/')[-1]
        if leaf in buckets:
            vals = buckets[leaf][2]
            for ip in vals:
                share[ip] = share.get(ip, 0.0) + p / len(vals)
    children = {}
    for name, _, vals in buckets.values():
        m = CHILD.match(name)
        key = m.group(1) if m else name
        children[key] = children.get(key, 0) + len(vals)
    return {'values': values, 'share': share, 'no_answer': (doc or {}).get('no_answer'),
            'resolve_status': st, 'aliases': aliases, 'buckets': buckets,
            'children': children, 'dup_sid': dup_sid, 'hidden': hidden,
            'rrsets': len(rrsets)}


def spread_of(share, ips):
    got = [share.get(ip, 0.0) for ip in ips]
    if not got:
        return float('nan')
    lo = min(got)
    return float('inf') if lo <= 0 else max(got) / lo


def fmt_calls(calls):
    return ', '.join('%s %s' % (act, ' '.join('%s=%d' % kv for kv in sorted(outs.items())))
                     for act, outs in sorted(calls.items())) or 'none'


COLS = [('wave', '%4d'), ('first', '%7d'), ('n', '%6d'), ('ok201', '%6d'), ('other', '%5d'),
        ('wall_s', '%7.2f'), ('p50_s', '%6.2f'), ('p99_s', '%6.2f'), ('crrs', '%5d'),
        ('list', '%4d'), ('thr', '%4d'), ('elements', '%7d'), ('min_calls', '%4d'),
        ('floor_s', '%6.2f'), ('ratio', '%6.2f'), ('sent_floor_s', '%6.2f'),
        ('hwm_mb', '%7.1f'), ('rss_mb', '%7.1f'), ('zone', '%7d'), ('spread', '%9.6f')]
TITLES = {'ok201': '201', 'crrs': 'CRRS', 'thr': 'thr', 'elements': 'elems',
          'min_calls': 'minc', 'floor_s': 'floor', 'ratio': 'w/fl', 'sent_floor_s': 'sentfl',
          'hwm_mb': 'HWM_MB', 'rss_mb': 'RSS_MB', 'p50_s': 'p50s', 'p99_s': 'p99s'}


def header():
    out = []
    for k, fmt in COLS:
        width = int(re.match(r'%-?(\d+)', fmt).group(1))
        out.append(TITLES.get(k, k).rjust(width))
    return ' '.join(out)


def row(r):
    return ' '.join(fmt % r[k] for k, fmt in COLS)


def main():
    ap = argparse.ArgumentParser(description='the alias tree at 200,000 backends (docstring)')
    ap.add_argument('--bin', default=os.path.join(HERE, '..', 'build', 'bin'))
    ap.add_argument('--n', type=int, default=200000)
    ap.add_argument('--wave', type=int, default=10000)
    ap.add_argument('--clients', type=int, default=None)
    ap.add_argument('--log', help="keep r53reg's log in this file")
    ap.add_argument('--emu-log', help="run r53emu at --log-level info (one line a call) and keep "
                    "its log in this file")
    ap.add_argument('--json', help='also write the results to this file')
    ap.add_argument('--reg-arg', action='append', default=[],
                    help="one more argument for r53reg (repeat it; --reg-arg=--resync-interval "
                    "--reg-arg=5)")
    ap.add_argument('--emu-arg', action='append', default=[],
                    help="one more argument for r53emu (--emu-arg=--faults "
                    "--emu-arg=latency_ms=100)")
    args = ap.parse_args()
    if args.n <= 0 or args.wave <= 0 or args.n > 254 * 254 * 254:
        ap.error('--n must be 1..%d and --wave positive' % (254 * 254 * 254))
    if args.clients is None:
        args.clients = max(1, math.ceil(min(args.wave, args.n) / PER_CLIENT))
    reg_process.BIN = args.bin

    # Every request holds a connection in r53reg until its wave is committed; r53reg raises its
    # own soft limit, burst_client too; raise ours so that both inherit the hard limit anyway.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    max_conn = min(max(16000, args.wave + 1000), max(1000, hard - 1000))
    if args.wave + 100 > max_conn:
        print('warning: a wave of %d needs more connections than the fd limit (%d) allows'
              % (args.wave, hard))

    emu_flags = ['--rate', str(RATE), '--burst', str(BURST), '--refuse-dangling-alias'] + \
        args.emu_arg
    reg_flags = ['--tree', '--buckets', '100', '--max-per-bucket', '0', '--api-rps', str(RATE),
                 '--log-level', os.environ.get('BENCH_LOG', 'info'),
                 '--max-connections', str(max_conn)] + args.reg_arg
    print('r53emu %s' % ' '.join(emu_flags))
    print('r53reg (reg_process.Reg: --allow-special --client-rps 0 --max-connections-per-ip 0 '
          '--api-change-rps 0) %s' % ' '.join(reg_flags))
    print('%d registrations in waves of %d, %d burst_client processes a wave; open files: soft '
          '%d, hard %d (somaxconn %s)' % (args.n, args.wave, args.clients,
                                          resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard,
                                          open('/proc/sys/net/core/somaxconn').read().strip()))
    print('floor per wave: min calls = max(ceil(values / %d), ceil(value chars / %d)) '
          'ChangeResourceRecordSets (every value CREATEd once); floor = max(0, min calls - '
          'burst %d) / rate %d per s; w/fl = wall / floor; sentfl = the same floor for the '
          'elements r53reg had applied (elems)' % (CALL_ELEMENTS, CALL_CHARS, BURST, RATE))
    print('columns: 201 / other = answers 201 / anything else (transport errors included); '
          'CRRS = ChangeResourceRecordSets calls (every outcome); list = ListResourceRecordSets; '
          'thr = Throttling answers; HWM/RSS = r53reg VmHWM/VmRSS after the wave; zone = A values '
          'served; spread = max/min exact share over the addresses acknowledged so far')
    print(flush=True)

    emu = Emu(os.path.join(args.bin, 'r53emu'), *emu_flags,
              *(['--log-level', 'info'] if args.emu_log else []))
    if args.emu_log:
        keep(emu.errlog.name, args.emu_log)
    reg = None
    rows, bad, acked, unsure = [], [], [], []
    ok = True
    result = {}
    began = time.monotonic()
    try:
        reg = reg_process.Reg(emu, *reg_flags)
        if args.log:
            keep(reg.log.name, args.log)
        startup = stats(emu)
        print('r53reg started (pid %d, port %d); its start-up calls: %s' %
              (reg.proc.pid, reg.port, fmt_calls(startup['calls'])))
        time.sleep(BURST / RATE + 0.2)
        s0 = stats(emu)
        print(header(), flush=True)
        prev_end = s0
        wall_sum = floor_sum = 0.0
        w = 0
        for first in range(0, args.n, args.wave):
            w += 1
            count = min(args.wave, args.n - first)
            s_start = stats(emu)
            events, errors = fire(args, reg.port, first, count)
            s_end = stats(emu)
            hwm, rss = rss_kb(reg.proc.pid)
            d = diff(s_start, s_end)
            codes = {}
            for ip, t0, sent, t1, st in events:
                codes[st] = codes.get(st, 0) + 1
                if st == 201:
                    acked.append(ip)
                else:
                    unsure.append(ip)
                    if len(bad) < 20:
                        bad.append((ip, st))
            t0 = min(e[1] for e in events)
            wall = max(e[3] for e in events) - t0
            last_sent = max((e[2] for e in events if e[4]), default=t0) - t0
            lat = sorted(e[3] - e[1] for e in events)
            chars = sum(len(e[0]) for e in events)
            min_calls, floor = floor_of(count, chars)
            elements = d['records_applied']
            _, sent_floor = floor_of(elements, 0)
            crrs = sum(d['calls'].get('ChangeResourceRecordSets', {}).values())
            lst = sum(d['calls'].get('ListResourceRecordSets', {}).values())
            z = look(emu)
            spread = spread_of(z['share'], acked)
            r = {'wave': w, 'first': first, 'n': count, 'ok201': codes.get(201, 0),
                 'other': count - codes.get(201, 0), 'codes': codes, 'transport_errors': errors,
                 'wall_s': wall, 'last_sent_s': last_sent, 'p50_s': pct(lat, 0.5),
                 'p99_s': pct(lat, 0.99), 'max_s': lat[-1], 'crrs': crrs, 'list': lst,
                 'calls': d['calls'], 'thr': d['throttled'], 'elements': elements,
                 'records_deleted': d['records_deleted'],
                 'change_items': d['change_items_applied'], 'min_calls': min_calls,
                 'min_chars': chars, 'floor_s': floor,
                 'ratio': wall / floor if floor > 0 else float('nan'),
                 'sent_floor_s': sent_floor, 'hwm_mb': hwm / 1024, 'rss_mb': rss / 1024,
                 'zone': len(z['values']), 'spread': spread, 'children': len(z['children']),
                 'aliases': len(z['aliases']), 'buckets': len(z['buckets']),
                 'between': diff(prev_end, s_start)}
            rows.append(r)
            wall_sum += wall
            floor_sum += floor
            print(row(r), flush=True)
            extra = []
            if codes.get(201, 0) != count:
                extra.append('answers %s, transport errors %d' % (
                    {str(k): v for k, v in sorted(codes.items())}, errors))
            btw = r['between']['calls']
            print('      calls %s; between waves %s; change items %d, values deleted %d; '
                  'last request sent %.2f s; max latency %.2f s; %d children, %d aliases, '
                  '%d buckets%s' % (fmt_calls(d['calls']), fmt_calls(btw), r['change_items'],
                                    r['records_deleted'], last_sent, lat[-1], r['children'],
                                    r['aliases'], r['buckets'],
                                    ('; ' + '; '.join(extra)) if extra else ''), flush=True)
            if reg.proc.poll() is not None:
                print('r53reg exited with %s during wave %d' % (reg.proc.returncode, w))
                ok = False
                break
            prev_end = s_end
            if first + count < args.n:
                time.sleep(BURST / RATE + 0.2)  # a rested bucket for the next wave

        elapsed = time.monotonic() - began
        s_final = stats(emu)
        tot = diff(s0, s_final)
        hwm, rss = rss_kb(reg.proc.pid)
        z = look(emu)
        registered = set(acked)
        zone_vals = z['values']
        zone_set = set(zone_vals)
        lost = sorted(registered - zone_set)
        stray = sorted(zone_set - registered - set(unsure))
        unsure_in = sorted(zone_set & set(unsure))
        dupes = len(zone_vals) - len(zone_set)
        spread = spread_of(z['share'], acked)
        shares = [z['share'].get(ip, 0.0) for ip in acked]
        no_traffic = sum(1 for s in shares if s <= 0)
        tot_chars = sum(len(burst.ip_of(i)) for i in range(args.n))
        all_calls, all_floor = floor_of(args.n, tot_chars)
        crrs = sum(tot['calls'].get('ChangeResourceRecordSets', {}).values())
        child_sizes = sorted(z['children'].values())
        alias_w = sorted(wt for wt, _ in z['aliases'].values())
        bucket_sizes = sorted(len(v) for _, _, v in z['buckets'].values())
        answers = {}
        for rr in rows:
            for k, v in rr['codes'].items():
                answers[k] = answers.get(k, 0) + v

        print()
        print('total: %d registrations in %d waves' % (args.n, len(rows)))
        print('  answers %s (transport errors %d)%s' % (
            {str(k): v for k, v in sorted(answers.items())},
            sum(rr['transport_errors'] for rr in rows),
            ('; not 201: %s' % bad) if bad else ''))
        print('  wall: %.2f s summed over the waves (first request to last answer of each); '
              '%.2f s elapsed from the first wave to the end of the last (includes %.1f s of '
              'rests between waves and the checks after each)' %
              (wall_sum, elapsed, (len(rows) - 1) * (BURST / RATE + 0.2)))
        print('  Route 53 calls: %s; %d calls in all; Throttling answers %d' %
              (fmt_calls(tot['calls']), tot['calls_total'], tot['throttled']))
        print('  elements (ResourceRecord values in applied changes) %d = %.2f per registration; '
              'values inside applied DELETEs %d; change items %d' %
              (tot['records_applied'], tot['records_applied'] / args.n, tot['records_deleted'],
               tot['change_items_applied']))
        print('  floor: sum of the waves\' floors %.2f s (%d min calls); summed wall / floor = '
              '%.2f. All %d at once: max(ceil(%d / %d), ceil(%d chars / %d)) = %d calls, '
              '(%d - %d) / %d = %.2f s; summed wall / that = %.2f' %
              (floor_sum, sum(rr['min_calls'] for rr in rows), wall_sum / floor_sum
               if floor_sum else float('nan'), args.n, args.n, CALL_ELEMENTS, tot_chars,
               CALL_CHARS, all_calls, all_calls, BURST, RATE, all_floor,
               wall_sum / all_floor if all_floor else float('nan')))
        sent_sum = sum(rr['sent_floor_s'] for rr in rows)
        print('  calls made / min calls: ChangeResourceRecordSets %d / %d = %.2f; the elements '
              'r53reg had applied need at least %d calls; sum of the waves\' sent floors %.2f s, '
              'summed wall / that = %.2f' %
              (crrs, all_calls, crrs / all_calls, math.ceil(tot['records_applied'] / 1000),
               sent_sum, wall_sum / sent_sum if sent_sum else float('nan')))
        print('  r53reg RSS: peak (VmHWM) %.1f MB, final (VmRSS) %.1f MB; per wave VmRSS %s MB'
              % (hwm / 1024, rss / 1024, ' '.join('%.0f' % rr['rss_mb'] for rr in rows)))
        print('  share spread over the %d registered addresses (max / min exact share through '
              'the resolver): %.6f; addresses with no traffic %d; queries unanswered %s' %
              (len(acked), spread, no_traffic, z['no_answer']))
        if shares:
            print('  shares: min %.4g, max %.4g, 1/N = %.4g' % (min(shares), max(shares),
                                                              1 / len(shares)))
        print('  tree: %d children (values per child %s..%s), %d aliases (weights %s..%s), %d '
              'served buckets (values per bucket %s..%s); %d record sets in the zone; %d values '
              'in _down./_draining. sets' %
              (len(z['children']), child_sizes[0] if child_sizes else '-',
               child_sizes[-1] if child_sizes else '-', len(z['aliases']),
               alias_w[0] if alias_w else '-', alias_w[-1] if alias_w else '-',
               len(z['buckets']), bucket_sizes[0] if bucket_sizes else '-',
               bucket_sizes[-1] if bucket_sizes else '-', z['rrsets'], z['hidden']))
        names = sorted(set(n for n in z['children'] if not n.isdigit()))
        if names:
            print('  served sets outside the children: %s' % names)
        exact = not lost and not stray and not dupes and len(zone_set) == args.n
        print('  zone holds exactly the %d registered addresses: %s (%d values served, lost %d, '
              'stray %d, duplicated %d, not acknowledged but in the zone %d)%s' %
              (args.n, exact, len(zone_vals), len(lost), len(stray), dupes, len(unsure_in),
               (('; lost e.g. %s' % lost[:5]) if lost else '') +
               (('; stray e.g. %s' % stray[:5]) if stray else '')))
        if z['dup_sid']:
            print('  set identifiers served twice: %s' % z['dup_sid'][:5])
        ok &= exact and answers.get(201, 0) == args.n and spread <= 1.01 and not no_traffic
        result = {'waves': rows, 'total': {
            'n': args.n, 'answers': answers, 'wall_sum_s': wall_sum, 'elapsed_s': elapsed,
            'calls': tot['calls'], 'throttled': tot['throttled'],
            'elements': tot['records_applied'], 'records_deleted': tot['records_deleted'],
            'floor_sum_s': floor_sum, 'all_at_once_floor_s': all_floor,
            'min_calls': all_calls, 'peak_rss_mb': hwm / 1024, 'final_rss_mb': rss / 1024,
            'spread': spread, 'children': len(z['children']), 'aliases': len(z['aliases']),
            'buckets': len(z['buckets']), 'lost': len(lost), 'stray': len(stray),
            'duplicates': dupes, 'exact': exact}}
    finally:
        if reg is not None:
            rc = reg.stop()
            print('r53reg exit code %s%s' % (rc, ('; its log: %s' % args.log) if args.log else ''))
            ok &= rc == 0
            result['r53reg_exit'] = rc
        emu.stop()
        if args.emu_log:
            print("r53emu's log: %s" % args.emu_log)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1, default=str)
    if not ok:
        print('bench/tree: something is broken: see above')
        sys.exit(1)


if __name__ == '__main__':
    main()
