#!/usr/bin/python3
"""bench/throttle: r53reg against a Route 53 emulator that throttles below what r53reg is told.

The account (r53emu) allows half of r53reg's --api-rps and --api-change-rps, in Route 53's 2026
model (a request bucket and a separate bucket of record changes), as when other tools share the
account. N registrations arrive at once; the benchmark prints, per commit mode: wall time to the
last answer, the answers, API calls by outcome, Throttling answers (requests and changes), Change
elements per ChangeResourceRecordSets, the allowed rates r53reg ended with, and whether the zone
holds exactly the N addresses. A baseline run with an account as large as r53reg's settings
shows what the throttling costs; the last run makes the change bucket the one that binds.

Usage: bench/throttle.py [--bin build/bin] [--n 400] [--immediate-n 60] [--rps 4]
                         [--change-rps 20] [--buckets 20]
Only loopback is used. It prints numbers and exits 0 unless a registration was lost.
"""
import argparse
import os
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import burst  # noqa: E402  (start_reg, fire, zone_set)
from burst import Emu  # noqa: E402


def metrics(port):
    text = urllib.request.urlopen('http://127.0.0.1:%d/metrics' % port, timeout=10).read()
    out = {}
    for line in text.decode().splitlines():
        if line.startswith('r53reg_route53_') and not line.startswith('#'):
            name, _, value = line.rpartition(' ')
            out[name] = float(value)
    return out


def run(args, label, mode, n, account_share, rps=None, change_rps=None):
    rps = rps or args.rps
    change_rps = change_rps or args.change_rps
    emu = Emu(os.path.join(args.bin, 'r53emu'),
              '--rate', str(rps * account_share), '--burst', str(rps * account_share),
              '--change-rate', str(change_rps * account_share),
              '--change-burst', str(change_rps * account_share))
    reg = burst.start_reg(args, emu, '--commit', mode, '--api-rps', '%g' % rps,
                          '--api-change-rps', '%g' % change_rps, '--buckets', str(args.buckets))
    try:
        emu.control('POST', 'reset-stats')
        res = burst.fire(args, reg.port, n, 'register', args.clients)
        st = emu.control('GET', 'stats')[1]
        m = metrics(reg.port)
        zone = burst.zone_set(emu)
        want = {burst.ip_of(i) for i in range(n)}
        crrs = st['calls'].get('ChangeResourceRecordSets', {})
        changes = m.get('r53reg_route53_change_records_sum', 0)
        count = m.get('r53reg_route53_change_records_count', 0) or 1
        print('%s (%s, account at %g of --api-rps %g / --api-change-rps %g): %d registrations'
              % (label, mode, account_share, rps, change_rps, n))
        print('  wall %.2f s; answers %s; transport errors %d' %
              (res['wall_s'], res['codes'], res['transport_errors']))
        print('  API calls %s' % st['calls'])
        print('  Throttling answers %d (of them for changes %d); ChangeResourceRecordSets %d '
              '(%d ok); Change elements per call %.1f' %
              (st['throttled'], st.get('throttled_changes', 0), sum(crrs.values()),
               crrs.get('ok', 0), changes / count))
        print('  r53reg ended allowing %.2f calls/s and %.2f changes/s; throttles seen %d, '
              'retries %d' % (m.get('r53reg_route53_allowed_rate', 0),
                              m.get('r53reg_route53_allowed_change_rate', 0),
                              m.get('r53reg_route53_throttles_total', 0),
                              m.get('r53reg_route53_retries_total', 0)))
        acked = sum(v for c, v in res['codes'].items() if c in ('200', '201'))
        lost = acked - len(want & set(zone))
        print('  zone holds %d of the %d addresses, %d acknowledged; lost %d' %
              (len(want & set(zone)), n, acked, max(0, lost)))
        return lost <= 0
    finally:
        reg.stop()
        emu.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--bin', default=os.path.join(HERE, '..', 'build', 'bin'))
    ap.add_argument('--n', type=int, default=400)
    ap.add_argument('--immediate-n', type=int, default=60)
    ap.add_argument('--clients', type=int, default=4)
    ap.add_argument('--rps', type=float, default=4)
    ap.add_argument('--change-rps', type=float, default=20)
    ap.add_argument('--buckets', type=int, default=20)
    args = ap.parse_args()
    ok = True
    ok &= run(args, 'baseline', 'group', args.n, 1.0)
    ok &= run(args, 'half', 'group', args.n, 0.5)
    ok &= run(args, 'baseline', 'immediate', args.immediate_n, 1.0)
    ok &= run(args, 'half', 'immediate', args.immediate_n, 0.5)
    ok &= run(args, 'lower', 'immediate', args.immediate_n * 2 // 3, 0.3)
    # The change budget binds: calls are plenty, changed records are not.
    ok &= run(args, 'half, changes bind', 'immediate', args.immediate_n // 2, 0.5,
              rps=args.rps * 5, change_rps=4)
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
