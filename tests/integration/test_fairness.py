"""Fairness measured, not assumed: r53reg writes its buckets into the strict emulator, and the
emulator's resolver (GET /_emu/resolve) computes from the zone's weights how often each record
is answered, exactly (exact=1) and by sampling a fixed seed; a client takes one value of its
answer, so an address's share of traffic is its record's share over the record's size. On one
flat name every served address must get the same share within 1% (bucket weight = its value
count), for A and AAAA, at 1,000 backends and at a name nearly full, with some backends
drained (out of DNS: no share).
Prints the spread (largest share over the smallest).

Usage: test_fairness.py BIN_DIR   (holds r53reg and r53emu). Prints 'N passed, M failed' last.
"""
import json
import os
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'r53emu'))
sys.path.insert(0, HERE)
from emutest import Emu, Tally  # noqa: E402
import reg_process  # noqa: E402

T = Tally()


def v4(i):
    return f'10.{20 + i // 62500}.{(i // 250) % 250}.{1 + i % 250}'


def v6(i):
    return f'2001:db8:5::{i + 1:x}'


def register(r, ips):
    for k in range(0, len(ips), 5000):
        st, doc = r.req('POST', '/backends', json.dumps({'backends': ips[k:k + 5000]}),
                        headers={'Content-Type': 'application/json'})
        T.eq(st, 200, 'bulk registration')


def shares(emu, type_, **kw):
    q = urllib.parse.urlencode(dict(name='app.example.com', type=type_, **kw))
    st, doc = emu.control('GET', 'resolve?' + q)
    T.eq(st, 200, f'resolve {type_}')
    return doc or {}


def traffic(emu, type_, doc):
    """Each address's share of traffic from a resolve answer: a client takes one value of the
    answer it got, so an address gets its record's share divided by the record's size."""
    st, z = emu.control('GET', 'zones')
    sizes = {}
    for zone in z['zones']:
        for rr in zone['rrsets']:
            if rr['name'] == 'app.example.com.' and rr['type'] == type_ and 'values' in rr:
                sizes[rr.get('set_identifier')] = rr['values']
    out = {}
    for sid, p in doc.get('records', {}).items():
        for ip in sizes.get(sid, []):
            out[ip] = out.get(ip, 0) + p / len(sizes[sid])
    return out


def check(emu, type_, served, label):
    exact = traffic(emu, type_, shares(emu, type_, exact=1))
    T.eq(set(exact), set(served), f'{label}: exactly the served addresses get traffic')
    if exact:
        spread = max(exact.values()) / min(exact.values())
        T.check(spread <= 1.01, f'{label}: every address within 1% of every other (exact)',
                f'spread {spread:.6f}')
        n = 2_000_000
        sampled = shares(emu, type_, n=n, seed=7)
        total = sum(sampled.get('records', {}).values())
        sampled = traffic(emu, type_, {'records': {k: v / total for k, v in
                                                   sampled.get('records', {}).items()}})
        worst = max(abs(sampled.get(ip, 0) - p) / p for ip, p in exact.items())
        print(f'    {label}: {len(exact)} addresses, exact spread {spread:.6f}; '
              f'{n:,} sampled answers: worst deviation from the exact share {worst:.3%}',
              flush=True)
        T.check(worst < 0.05, f'{label}: sampled shares agree with the exact ones',
                f'{worst:.3%}')


def case(bin_dir, n_a, n_aaaa, drain):
    emu = Emu(os.path.join(bin_dir, 'r53emu'))
    r = reg_process.Reg(emu, '--buckets', '100', '--max-per-bucket', '65')
    try:
        a, aaaa = [v4(i) for i in range(n_a)], [v6(i) for i in range(n_aaaa)]
        register(r, a + aaaa)
        for ip in a[:drain]:
            st, _ = r.req('POST', f'/backends/{ip}/drain')
            T.eq(st, 200, 'drain')
        check(emu, 'A', a[drain:], f'{n_a} A ({drain} drained)')
        check(emu, 'AAAA', aaaa, f'{n_aaaa} AAAA')
    finally:
        T.eq(r.stop(), 0, 'r53reg exits 0')
        emu.stop()


def main():
    reg_process.BIN = sys.argv[1]
    T.run('1,000 A and 1,000 AAAA', case, sys.argv[1], 1000, 1000, 0)
    T.run('a name nearly full, some drained', case, sys.argv[1], 6400, 3600, 37)
    T.finish()


if __name__ == '__main__':
    main()
