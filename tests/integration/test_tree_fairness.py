"""The alias tree's weights, measured through Route 53's rules: a two-level tree is written
into the strict emulator (weighted aliases at app.example.com to child names, each a weighted
group of plain records), the top weights from registry/tree_weights.c (`test_tree_weights
weights`), the leaf weights their value counts, children filled evenly as the design's
placement does. The emulator's resolver (exact=1) gives each leaf's share of answers; a client
takes one value of its answer, so an address's share of traffic is its leaf's share over the
leaf's size. Every address must be within 1% of every other, for A and AAAA at 1,000, 10,000
and 100,000 backends, and with ten children holding 100% down to 40% of a full one.

Usage: test_tree_fairness.py BIN_DIR   (holds r53emu and test_tree_weights).
Prints 'N passed, M failed' last.
"""
import json
import os
import subprocess
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'r53emu'))
from emutest import Emu, Tally, ZONE  # noqa: E402

T = Tally()
NAME = 'app.example.com'
CAP = {'A': 65, 'AAAA': 37}  # values in a 1,232-byte answer


def ip(type_, i):
    if type_ == 'A':
        return f'10.{i // 62500}.{(i // 250) % 250}.{1 + i % 250}'
    return f'2001:db8:7::{(i + 1) >> 16:x}:{(i + 1) & 0xffff:x}'


def split(n, parts):
    """n as parts sizes differing by at most one."""
    return [n // parts + (1 if k < n % parts else 0) for k in range(parts)]


def layout(type_, n):
    """Children as lists of leaf sizes: the values spread evenly over as few children as hold
    them, and in each child over as few leaves as hold them."""
    per_child = 100 * CAP[type_]
    totals = split(n, -(-n // per_child))
    return [split(t, -(-t // CAP[type_])) for t in totals]


def weights(bin_dir, totals):
    out = subprocess.run([os.path.join(bin_dir, 'test_tree_weights'), 'weights'],
                         input=' '.join(map(str, totals)), capture_output=True, text=True,
                         check=True).stdout.split('\n')
    return [int(w) for w in out[0].split()]


def build(emu, bin_dir, type_, kids):
    """Write the tree; return {leaf set identifier: its values}."""
    st, _ = emu.control('POST', f'zones/{ZONE}/clear')
    leaves, upserts, i = {}, [], 0
    for k, sizes in enumerate(kids):
        child = f'{k}._r53reg.{NAME}'
        for b, size in enumerate(sizes):
            sid = f'{child}_{b}'
            leaves[sid] = [ip(type_, i + j) for j in range(size)]
            i += size
            upserts.append({'name': child, 'type': type_, 'ttl': 60, 'set_identifier': sid,
                            'weight': size, 'values': leaves[sid]})
    for k, w in enumerate(weights(bin_dir, [sum(s) for s in kids])):
        upserts.append({'name': NAME, 'type': type_, 'set_identifier': f'{NAME}_t{k}',
                        'weight': w, 'alias_target': {
                            'hosted_zone_id': ZONE, 'dns_name': f'{k}._r53reg.{NAME}',
                            'evaluate_target_health': False}})
    st, body = emu.control('POST', f'zones/{ZONE}/rrsets', {'upsert': upserts})
    T.check(st == 200, f'write the tree ({len(upserts)} record sets)', f'{st} {body}')
    return leaves


def spread(emu, type_, leaves):
    q = urllib.parse.urlencode({'name': NAME, 'type': type_, 'exact': 1})
    st, doc = emu.control('GET', 'resolve?' + q)
    T.eq(st, 200, 'resolve')
    share = {}
    for path, p in (doc or {}).get('records', {}).items():
        values = leaves.get(path.split('/')[-1], [])
        for v in values:
            share[v] = share.get(v, 0) + p / len(values)
    served = sum(len(v) for v in leaves.values())
    T.eq(len(share), served, 'every address is answered')
    return max(share.values()) / min(share.values()) if share else float('inf')


def case(emu, bin_dir, type_, n):
    even = layout(type_, n)
    s = spread(emu, type_, build(emu, bin_dir, type_, even))
    T.check(s <= 1.01, f'{n} {type_}: every address within 1% of every other', f'{s:.6f}')
    print(f'    {n:,} {type_}: {len(even)} children of {sum(len(k) for k in even)} leaves, '
          f'spread {s:.6f}', flush=True)


def case_uneven(emu, bin_dir, type_):
    """Children holding 100% down to 40% of a full child (what removals leave): the top
    weights must make up for it."""
    full = 100 * CAP[type_]
    totals = [full - k * (full * 6 // 10) // 9 for k in range(10)]
    kids = [split(t, -(-t // CAP[type_])) for t in totals]
    s = spread(emu, type_, build(emu, bin_dir, type_, kids))
    T.check(s <= 1.01, f'uneven {type_}: every address within 1% of every other', f'{s:.6f}')
    print(f'    {sum(totals):,} {type_} in children at 100%..40% ({totals[0]}..{totals[-1]} '
          f'values): spread {s:.6f}', flush=True)


def main():
    bin_dir = sys.argv[1]
    emu = Emu(os.path.join(bin_dir, 'r53emu'))
    try:
        for type_ in ('A', 'AAAA'):
            for n in (1000, 10000, 100000):
                T.run(f'{n} {type_}', case, emu, bin_dir, type_, n)
            T.run(f'uneven children {type_}', case_uneven, emu, bin_dir, type_)
    finally:
        emu.stop()
    T.finish()


if __name__ == '__main__':
    main()
