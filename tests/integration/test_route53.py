"""r53reg against the strict Route 53 emulator: real processes, real sockets, real SigV4.

Usage: test_route53.py BIN_DIR   (holds r53reg and r53emu)

Covers, end to end: registrations end in the zone; a restart keeps everything; a
zone written by the old script is adopted; unrelated records are never touched; a console edit
is adopted, not overwritten; two r53reg processes writing one zone lose nothing; a replica
with a stale view re-reads only the buckets Route 53's refusal names; with injected
Throttling, 5xx and connection resets every acknowledged registration is in the zone and every
failed one got an error; group commit shares calls. Prints 'N passed, M failed' last.
"""
import http.client
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'r53emu'))
from emutest import Emu, Tally, ZONE  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reg_process  # noqa: E402
from reg_process import Reg, burst, metric_values, others, ours, zone_ips  # noqa: E402,F401

BIN = sys.argv[1] if __name__ == '__main__' else None  # set by importers
reg_process.BIN = BIN
T = Tally()
NAME = 'app.example.com.'


def fresh(emu):
    """An empty zone, no faults."""
    emu.reset()


def check_weights(emu, what):
    for sid, (_, weight, ttl, values) in ours(emu).items():
        T.eq((weight, ttl), (len(values), 60), f'{what}: {sid} weight = count, TTL 60')


def test_register_deregister(emu):
    fresh(emu)
    r = Reg(emu)
    try:
        st, doc = r.req('GET', '/readyz')
        T.eq((st, doc and doc.get('provider')), (200, 'route53'), 'ready on route53')
        for ip in ('10.1.0.1', '10.1.0.2', '2001:db8::1'):
            st, doc = r.req('POST', '/backends/' + ip)
            T.eq(st, 201, f'register {ip}')
            T.check(doc and doc.get('change_id'), f'{ip} answer names the Route 53 change')
        T.eq(sorted(zone_ips(emu)), ['10.1.0.1', '10.1.0.2', '2001:db8::1'], 'zone holds them')
        check_weights(emu, 'after registering')
        st, doc = r.req('POST', '/backends/10.1.0.1')
        T.eq(st, 200, 'repeat is idempotent')
        st, doc = r.req('POST', '/backends/10.1.0.3?wait=insync')
        T.eq((st, doc and doc.get('insync')), (201, True), 'wait=insync waits for INSYNC')
        st, _ = r.req('DELETE', '/backends/10.1.0.2')
        T.eq(st, 200, 'deregister')
        st, _ = r.req('DELETE', '/backends/2001:db8::1')
        T.eq(st, 200, 'deregister the only AAAA')
        T.eq(sorted(zone_ips(emu)), ['10.1.0.1', '10.1.0.3'], 'zone follows')
        T.check(not any(v[0] == 'AAAA' for v in ours(emu).values()),
                'the emptied AAAA bucket was deleted, not left empty')
        st, _ = r.req('DELETE', '/backends/10.1.0.2')
        T.eq(st, 404, 'deregistering again is 404')
    finally:
        T.eq(r.stop(), 0, 'SIGTERM exits 0')


def test_restart_keeps_everything(emu):
    fresh(emu)
    r = Reg(emu)
    for i in range(1, 21):
        r.req('POST', f'/backends/10.2.0.{i}')
    before = r.req('GET', '/backends')[1]
    T.eq(r.stop(), 0, 'first process stops cleanly')
    r = Reg(emu)
    try:
        after = r.req('GET', '/backends')[1]
        T.eq(after, before, 'a restart reloads every placement from the zone')
        st, doc = r.req('POST', '/backends/10.2.0.5')
        T.eq(st, 200, 'a reloaded IP is known as registered')
        st, _ = r.req('POST', '/backends/10.2.0.99')
        T.eq(st, 201, 'and new ones still land')
        T.eq(len(zone_ips(emu)), 21, 'zone holds all 21')
    finally:
        r.stop()


OLD_SCRIPT = [{'name': 'app.example.com', 'type': 'A', 'ttl': 300, 'weight': 1,
               'set_identifier': f'app.example.com_{n}',
               'values': [f'10.3.{n}.{i}' for i in range(1, 6)]} for n in range(3)]
# Records r53reg must never touch: another weighted set of the same name, other names.
FOREIGN = [{'name': 'app.example.com', 'type': 'A', 'ttl': 300, 'weight': 0,
            'set_identifier': 'blue-green', 'values': ['10.9.9.9']},
           {'name': 'www.example.com', 'type': 'A', 'ttl': 300, 'values': ['10.8.8.8']},
           {'name': 'app2.example.com', 'type': 'AAAA', 'ttl': 300, 'weight': 3,
            'set_identifier': 'app.example.com_1', 'values': ['2001:db8::8']}]


def test_adopt_old_script_zone(emu):
    """The old script: weight 1, TTL 300, set identifiers app.example.com_<n>, many values.
    Every weighted set of a group shares one TTL and Route 53 refuses another, so r53reg,
    started with the default --ttl 60 (the migration path), adopts the zone's 300 and writes
    with it."""
    fresh(emu)
    st, _ = emu.control('POST', f'zones/{ZONE}/rrsets', {'upsert': OLD_SCRIPT + FOREIGN})
    T.eq(st, 200, 'zone pre-populated the old way')
    before_others = others(emu)
    r = Reg(emu, '--bucketing', 'modulo', '--buckets', '100')
    try:
        st, doc = r.req('GET', '/backends')
        T.eq(doc and doc.get('count'), 15, 'the 15 old registrations are adopted')
        st, doc = r.req('GET', '/backends/10.3.2.4')
        T.eq((st, doc and doc.get('set_identifier')), (200, 'app.example.com_2'),
             'an adopted IP keeps its bucket')
        # 10.3.1.0/24 lands by modulo; pick an address whose bucket is 1 (the old rule).
        ip = next(f'10.3.1.{i}' for i in range(6, 250)
                  if (10 << 24 | 3 << 16 | 1 << 8 | i) % 100 == 1)
        st, doc = r.req('POST', '/backends/' + ip)
        T.eq((st, doc and doc.get('bucket')), (201, 1), f'modulo places {ip} in bucket 1')
        sets = ours(emu)
        T.eq(sets.get('app.example.com_1/A', (None, None, None, []))[1:3], (6, 300),
             'the written bucket has its weight corrected and keeps the group TTL')
        T.eq(len(sets['app.example.com_1/A'][3]), 6, 'and lost none of its old values')
        T.eq(others(emu), before_others, 'unrelated records are untouched')
        st, _ = r.req('DELETE', '/backends/10.3.0.1')
        T.eq(st, 200, 'an adopted IP can be deregistered')
        T.check('10.3.0.1' not in zone_ips(emu), 'and leaves the zone')
        T.eq(others(emu), before_others, 'unrelated records still untouched')
    finally:
        r.stop()


JSON = {'Content-Type': 'application/json'}


def test_zone_ttl_is_adopted(emu):
    """A --ttl that differs from the zone's weighted group: r53reg serves and writes the
    zone's (every registration works, the log says so once); PUT /ttl moves the whole group
    when r53reg manages every set of it, and refuses with the reason when another set of the
    group (another set identifier) keeps the old TTL."""
    fresh(emu)
    emu.control('POST', f'zones/{ZONE}/rrsets', {'upsert': OLD_SCRIPT + FOREIGN})
    r = Reg(emu, '--bucketing', 'modulo', '--buckets', '100')
    try:
        for ip in ('10.3.1.201', '10.3.1.202', '10.3.1.203'):
            st, doc = r.req('POST', '/backends/' + ip)
            T.eq(st, 201, f'{ip} registered on the zone written with TTL 300')
        T.check(all(ttl == 300 for _, _, ttl, _ in ours(emu).values()),
                'every set keeps the group TTL 300', str(ours(emu)))
        st, doc = r.req('GET', '/buckets')
        T.eq((doc or {}).get('ttl'), 300, 'GET /buckets shows the TTL in force')
        r.log.flush()
        log = open(r.log.name).read()
        T.eq(log.count("the zone's weighted group has another TTL"), 1,
             'the log names the other TTL once')
        before = emu.rrsets()
        st, doc = r.req('PUT', '/ttl', json.dumps({'ttl': 60}), headers=JSON)
        T.check(st == 409 and 'does not manage' in (doc or {}).get('detail', ''),
                'a TTL change is refused while blue-green keeps 300', f'{st} {doc}')
        T.eq(emu.rrsets(), before, 'and nothing changed')
    finally:
        r.stop()

    fresh(emu)
    emu.control('POST', f'zones/{ZONE}/rrsets', {'upsert': OLD_SCRIPT})
    r = Reg(emu, '--bucketing', 'modulo', '--buckets', '100')
    try:
        st, doc = r.req('PUT', '/ttl', json.dumps({'ttl': 60}), headers=JSON)
        T.eq(st, 200, 'PUT /ttl moves the group')
        groups = (doc or {}).get('groups', [])
        served = [g for g in groups if g.get('name') == 'app.example.com' and g['type'] == 'A']
        T.eq([(g['from'], g['to'], g['sets'], g['values']) for g in served], [(300, 60, 3, 15)],
             'the account names the served A group: 3 sets, 15 values')
        T.check(all(ttl == 60 for _, _, ttl, _ in ours(emu).values()),
                'every set now has TTL 60', str(ours(emu)))
        T.eq(r.req('POST', '/backends/10.3.1.204')[0], 201, 'a registration after it works')
        T.check(all(ttl == 60 for _, _, ttl, _ in ours(emu).values()), 'and writes TTL 60')
        T.eq(r.req('PUT', '/ttl', '{"ttl": -1}', headers=JSON)[0], 400, 'a bad TTL: 400')
        T.eq(r.req('PUT', '/ttl', '{"ttl": 60}')[0], 415, 'no JSON content type: 415')
    finally:
        r.stop()


def test_foreign_set_with_other_ttl(emu):
    """The group holds only a set r53reg does not manage (blue-green, TTL 300) and r53reg runs
    with --ttl 60: Route 53 refuses every set r53reg creates; r53reg says why at once (409
    naming the unmanaged set) instead of retrying, and nothing changes."""
    fresh(emu)
    emu.control('POST', f'zones/{ZONE}/rrsets', {'upsert': FOREIGN})
    before = emu.rrsets()
    for commit in ('immediate', 'group'):
        r = Reg(emu, '--commit', commit)
        try:
            emu.control('POST', 'reset-stats')
            st, doc = r.req('POST', '/backends/10.3.9.1')
            T.check(st == 409 and 'does not manage' in (doc or {}).get('detail', ''),
                    f'{commit}: refused with the reason', f'{st} {doc}')
            calls = emu.control('GET', 'stats')[1]['calls']
            T.check(sum(calls.get('ChangeResourceRecordSets', {}).values()) <= 2,
                    f'{commit}: after at most two refused calls', str(calls))
            T.eq(emu.rrsets(), before, f'{commit}: the zone is unchanged')
        finally:
            r.stop()


def test_ready_during_outage(emu):
    """A Route 53 outage does not make r53reg unready (a load balancer would take every
    replica out and hide Route 53's error): /readyz stays 200 and says the upstream is
    unreachable, a change gets 503 with Route 53's error, and all turns back when it ends."""
    fresh(emu)
    r = Reg(emu, '--commit', 'immediate')
    try:
        emu.faults(err5xx=1.0)
        st, doc = r.req('POST', '/backends/10.3.10.1')
        T.eq(st, 503, 'a change during the outage: 503 with the upstream error')
        st, doc = r.req('GET', '/readyz')
        T.eq((st, (doc or {}).get('upstream')), (200, 'unreachable'),
             '/readyz stays ready and names the outage')
        T.eq(metric_values(r).get('r53reg_upstream_reachable'), 0.0,
             'r53reg_upstream_reachable is 0')
        emu.faults(err5xx=0.0)
        T.eq(r.req('POST', '/backends/10.3.10.1')[0], 201, 'after the outage the change lands')
        st, doc = r.req('GET', '/readyz')
        T.eq((st, (doc or {}).get('upstream')), (200, 'reachable'), 'and /readyz says so')
    finally:
        emu.faults(err5xx=0.0)
        r.stop()


def test_replicas_with_different_ttls(emu):
    """Two replicas started with --ttl 60 and --ttl 300 on an empty zone never fight: the
    second learns the group's TTL from Route 53's refusal and every registration succeeds."""
    fresh(emu)
    r1 = Reg(emu, '--bucketing', 'modulo', '--ttl', '60')
    r2 = Reg(emu, '--bucketing', 'modulo', '--ttl', '300')
    try:
        T.eq(r1.req('POST', '/backends/10.3.7.4')[0], 201, 'replica 1 (TTL 60) registers')
        T.eq(r2.req('POST', '/backends/10.3.7.5')[0], 201,
             'replica 2 (TTL 300) registers into another bucket of the group')
        T.eq(r2.req('POST', '/backends/2001:db8::75')[0], 201, 'and a new AAAA group')
        ttls = {sid: ttl for sid, (t, _, ttl, _) in ours(emu).items() if t == 'A'}
        T.eq(set(ttls.values()), {60}, f'the A group kept one TTL: {ttls}')
        T.eq(r1.req('POST', '/backends/10.3.7.6')[0], 201, 'replica 1 goes on')
    finally:
        r1.stop()
        r2.stop()


def test_console_edit_is_adopted(emu):
    fresh(emu)
    r = Reg(emu, '--buckets', '1')
    try:
        T.eq(r.req('POST', '/backends/10.4.0.1')[0], 201, 'register')
        # A person adds an IP to the bucket in the console, behind r53reg's back.
        st, _ = emu.control('POST', f'zones/{ZONE}/rrsets', {'upsert': [
            {'name': 'app.example.com', 'type': 'A', 'ttl': 60, 'weight': 1,
             'set_identifier': 'app.example.com_0', 'values': ['10.4.0.1', '10.4.0.77']}]})
        T.eq(st, 200, 'console edit')
        st, doc = r.req('POST', '/backends/10.4.0.2')
        T.eq(st, 201, 'the next write succeeds after the compare-and-swap conflict')
        T.eq(sorted(zone_ips(emu)), ['10.4.0.1', '10.4.0.2', '10.4.0.77'],
             'the console IP was kept, not overwritten')
        T.eq(r.req('GET', '/backends/10.4.0.77')[0], 200, 'and adopted into the registry')
        check_weights(emu, 'after the conflict')
    finally:
        r.stop()


def run_reg_to_exit(emu, *extra, timeout=60):
    """Run r53reg expecting it to stop by itself: (exit code or None on timeout, stderr)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('AWS_') and not k.startswith('R53REG_')}
    env.update({'AWS_ACCESS_KEY_ID': emu.akid, 'AWS_SECRET_ACCESS_KEY': emu.secret,
                'AWS_EC2_METADATA_DISABLED': 'true', 'HOME': tempfile.gettempdir()})
    args = [os.path.join(BIN, 'r53reg'), '--provider', 'route53', '--zone-id', ZONE,
            '--aws-endpoint', emu.endpoint, '--listen', '127.0.0.1:0',
            '--record-name', 'app.example.com', '--api-rps', '50'] + list(extra)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        return None, err.decode(errors='replace')
    return proc.returncode, err.decode(errors='replace')


def test_listing_that_does_not_end(emu):
    """A listing that cycles (A -> B -> A) or does not advance stops startup with an error
    naming the page, at once, instead of reading (and holding) pages forever: what it reads
    is bounded by the pages it requested."""
    for mode in ('cycle', 'stuck'):
        fresh(emu)
        emu.control('POST', f'zones/{ZONE}/rrsets', {'upsert': [
            {'name': 'app.example.com', 'type': 'A', 'ttl': 60, 'weight': 1,
             'set_identifier': f'app.example.com_{n}', 'values': [f'10.11.0.{n + 1}']}
            for n in range(9)]})
        emu.faults(list_max_items=2, list_paging=mode)
        emu.control('POST', 'reset-stats')
        rc, log = run_reg_to_exit(emu)
        lists = emu.control('GET', 'stats')[1]['calls'].get('ListResourceRecordSets', {})
        T.check(rc not in (None, 0), f'{mode}: r53reg stops by itself with an error',
                f'rc={rc}')
        T.check('does not advance' in log and 'cannot load the buckets' in log,
                f'{mode}: the error names the page that does not advance', log[-2000:])
        T.check(sum(lists.values()) <= 3, f'{mode}: after at most 3 pages', str(lists))
    emu.faults(list_max_items=0, list_paging='normal')


def test_change_throttling(emu):
    """Route 53 throttles changed records (its 2026 model) below --api-change-rps: every
    registration still lands, and r53reg lowers the change rate it allows itself."""
    fresh(emu)
    r = Reg(emu, '--commit', 'immediate', '--api-change-rps', '8')
    try:
        emu.faults(change_rate=2, change_burst=2)
        emu.control('POST', 'reset-stats')
        ips = [f'10.12.0.{i}' for i in range(1, 13)]
        out = burst(r, ips)
        T.eq(sorted(set(st for st, _ in out.values())), [201], 'every registration acknowledged')
        T.eq(sorted(zone_ips(emu)), sorted(ips), 'and in the zone')
        st = emu.control('GET', 'stats')[1]
        T.check(st['throttled_changes'] >= 1, 'the change bucket throttled', str(st))
        m = metric_values(r)
        T.check(m.get('r53reg_route53_throttles_total', 0) >= 1, 'r53reg counted Throttling',
                str(m))
        T.check(0 < m.get('r53reg_route53_allowed_change_rate', 0) < 8,
                'r53reg allows itself fewer changes per second than --api-change-rps', str(m))
        T.check(m.get('r53reg_route53_allowed_rate', 0) < 20,
                'and fewer calls than --api-rps', str(m))
        T.check(m.get('r53reg_route53_change_records_count', 0) >= 12 and
                m.get('r53reg_route53_change_records_sum', 0) >= 12,
                'Change elements per call are counted', str(m))
        print(f'    change throttling: calls {st["calls"]}, throttled {st["throttled"]}',
              flush=True)
    finally:
        r.stop()


def test_half_rate_throttling(emu):
    """The account allows half of --api-rps (Route 53's request bucket, 5/s against 10/s):
    r53reg slows down at the first Throttling answers, so every registration is acknowledged
    and throttling falls to (near) zero after the first few."""
    fresh(emu)
    r = Reg(emu, '--commit', 'immediate', '--api-rps', '10')
    try:
        emu.faults(rate=5, burst=1)
        emu.control('POST', 'reset-stats')
        first = [f'10.13.0.{i}' for i in range(1, 21)]
        second = [f'10.13.1.{i}' for i in range(1, 21)]
        codes = [r.req('POST', '/backends/' + ip)[0] for ip in first]
        early = emu.control('GET', 'stats')[1]['throttled']
        codes += [r.req('POST', '/backends/' + ip)[0] for ip in second]
        st = emu.control('GET', 'stats')[1]
        T.eq(sorted(set(codes)), [201], 'every registration acknowledged')
        T.eq(sorted(zone_ips(emu)), sorted(first + second), 'and in the zone')
        T.check(st['throttled'] <= 6, 'a few Throttling answers at most', str(st))
        T.check(st['throttled'] - early <= 2, 'and (near) none in the second half',
                f'{early} then {st["throttled"]}')
        print(f'    half rate: 40 registrations, {st["calls_total"]} calls, Throttling '
              f'{early} in the first 20, {st["throttled"] - early} in the next 20', flush=True)
    finally:
        emu.faults(rate=0)
        r.stop()


def test_write_during_long_resync(emu):
    """A resync that pages through a long listing shares the rate budget with writes, and
    writes go first: a registration made while the listing runs is answered in well under
    the listing's time (2 s here; the listing takes about 4 s)."""
    fresh(emu)
    sets = [{'name': 'app.example.com', 'type': 'A', 'ttl': 60, 'weight': 1,
             'set_identifier': f'app.example.com_{n}', 'values': [f'10.14.{n}.1']}
            for n in range(80)]
    emu.control('POST', f'zones/{ZONE}/rrsets', {'upsert': sets})
    emu.faults(list_max_items=1)
    r = Reg(emu, '--buckets', '100', '--resync-interval', '1')
    try:
        emu.control('POST', 'reset-stats')
        lists = lambda: sum(emu.control('GET', 'stats')[1]['calls'].get(  # noqa: E731
            'ListResourceRecordSets', {}).values())
        deadline = time.monotonic() + 30
        while lists() < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        T.check(lists() >= 5, 'a resync is paging through the zone')
        t0 = time.monotonic()
        st, _ = r.req('POST', '/backends/10.14.200.1')
        took = time.monotonic() - t0
        T.eq(st, 201, 'a registration during the resync')
        T.check(took < 2.0, 'is answered before the listing ends', f'{took:.2f} s')
        print(f'    registration during a resync of 80 pages: {took * 1000:.0f} ms', flush=True)
    finally:
        emu.faults(list_max_items=0)
        r.stop()


def test_two_replicas(emu):
    fresh(emu)
    a, b = Reg(emu), Reg(emu)
    try:
        ips_a = [f'10.5.0.{i}' for i in range(1, 61)]
        ips_b = [f'10.5.1.{i}' for i in range(1, 61)]
        out = {}
        ta = threading.Thread(target=lambda: out.update(burst(a, ips_a)))
        tb = threading.Thread(target=lambda: out.update(burst(b, ips_b)))
        ta.start()
        tb.start()
        ta.join()
        tb.join()
        codes = sorted(set(st for st, _ in out.values()))
        T.eq(codes, [201], 'every registration through either replica acknowledged')
        T.eq(sorted(zone_ips(emu)), sorted(ips_a + ips_b), 'the zone holds all 120, each once')
        check_weights(emu, 'two replicas')
        st = emu.control('GET', 'stats')[1]
        print(f'    two replicas: {st["calls"]}', flush=True)
    finally:
        a.stop()
        b.stop()


def test_stale_replica(emu, shape):
    """A replica whose view is stale registers into every bucket at once: the other replica
    wrote all 20 buckets since it read the zone (--resync-interval 0: it learns them on a
    conflict only). Route 53 names every set that changed underneath, so r53reg re-reads
    exactly those buckets and sends the rest of the batch again at once. Halving each refused
    batch until every stale bucket is alone would cost at least 2 * 20 - (batches) refused
    calls; here each batch is refused once. Both shapes of the InvalidChangeBatch error.
    Balanced placement spreads each replica's 20 over the 20 buckets."""
    fresh(emu)
    emu.faults(icb_shape=shape)
    a = Reg(emu, '--buckets', '20', '--resync-interval', '0', '--bucketing', 'balanced')
    b = Reg(emu, '--buckets', '20', '--resync-interval', '0', '--bucketing', 'balanced')
    try:
        ips_a = [f'10.15.0.{i}' for i in range(1, 21)]
        ips_b = [f'10.15.1.{i}' for i in range(1, 21)]
        out = burst(a, ips_a)
        T.eq(sorted(set(st for st, _ in out.values())), [201], f'{shape}: replica A registers 20')
        T.eq(sorted(doc['bucket'] for _, doc in out.values()), list(range(20)),
             f'{shape}: one into each bucket')
        emu.control('POST', 'reset-stats')
        t0 = time.monotonic()
        out = burst(b, ips_b)
        wall = time.monotonic() - t0
        T.eq(sorted(set(st for st, _ in out.values())), [201],
             f'{shape}: replica B, whose view is stale, registers 20')
        T.eq(sorted(zone_ips(emu)), sorted(ips_a + ips_b), f'{shape}: the zone holds all 40, once')
        check_weights(emu, f'stale replica ({shape})')
        st = emu.control('GET', 'stats')[1]
        crrs = st['calls'].get('ChangeResourceRecordSets', {})
        lists = sum(st['calls'].get('ListResourceRecordSets', {}).values())
        refused = crrs.get('InvalidChangeBatch', 0)
        T.check(1 <= refused <= 5, f'{shape}: each batch is refused once at most', str(crrs))
        T.check(crrs.get('ok', 0) <= 2 * refused + 1, f'{shape}: and then lands', str(crrs))
        T.check(lists <= 24, f'{shape}: each stale bucket is read once', f'{lists} listings')
        print(f'    stale replica ({shape}): 20 registrations, calls {st["calls"]}, '
              f'{wall:.2f} s', flush=True)
    finally:
        a.stop()
        b.stop()


def test_faults(emu, label, faults, commit):
    fresh(emu)
    r = Reg(emu, '--api-rps', '100', '--commit', commit)
    label = f'{label} ({commit})'
    try:
        emu.control('POST', 'reset-stats')
        emu.faults(seed=7, **faults)
        ips = [f'10.6.{i // 200}.{i % 200 + 1}' for i in range(150)]
        out = burst(r, ips)
        emu.faults(err5xx=0, reset=0, throttle=0, prior=0, reset_after_apply=0)
        acked = [ip for ip, (st, _) in out.items() if st in (200, 201)]
        failed = {ip: v for ip, v in out.items() if v[0] not in (200, 201)}
        zone = set(zone_ips(emu))
        T.check(all(ip in zone for ip in acked), f'{label}: every acknowledged IP is in the zone',
                str([ip for ip in acked if ip not in zone]))
        for ip, (st, doc) in failed.items():
            T.check(st in (502, 503, 504) and doc and doc.get('status') == st and doc.get('detail'),
                    f'{label}: a failure is an honest 5xx problem', f'{ip}: {st} {doc}')
        # The registry agrees with the zone about every IP, acknowledged or not.
        disagree = [ip for ip in ips
                    if (r.req('GET', '/backends/' + ip)[0] == 200) != (ip in zone)]
        T.eq(disagree, [], f'{label}: r53reg and the zone agree on every IP')
        check_weights(emu, label)
        st = emu.control('GET', 'stats')[1]
        print(f'    {label}: {len(acked)} acknowledged, {len(failed)} failed; emulator faults '
              f'{st["faults"]}, calls {st["calls"]}', flush=True)
    finally:
        r.stop()


def test_slow_route53_immediate(emu):
    """Immediate mode against a slow Route 53 (300 ms a call) with a short --client-timeout:
    every request gets an answer; PUT /ttl does not hold an HTTP thread either. The calls are made off the HTTP threads; made on them, one
    thread waiting for Route 53 left the other connections it serves unread until the idle
    timeout closed them without a response (68 of 150 here)."""
    fresh(emu)
    r = Reg(emu, '--commit', 'immediate', '--threads', '4', '--client-timeout', '2',
            '--api-rps', '100')
    try:
        emu.faults(latency_ms=300)
        ips = [f'10.9.0.{i}' for i in range(1, 151)]
        out = burst(r, ips)
        emu.faults(latency_ms=0)
        unanswered = sorted(ip for ip, (st, _) in out.items() if st == -1)
        T.eq(unanswered, [], 'every request to a slow Route 53 is answered')
        T.eq(sorted(ip for ip, (st, _) in out.items() if st != 201), [],
             'every registration is acknowledged')
        T.eq(set(zone_ips(emu)) >= set(ips), True, 'and is in the zone')
        # The HTTP threads stay free while calls are in flight: a read is answered at once.
        emu.faults(latency_ms=3000)
        t = threading.Thread(target=lambda: burst(r, ['10.9.1.1', '10.9.1.2']))
        t.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        st, _ = r.req('GET', '/healthz', timeout=10)
        took = time.monotonic() - t0
        T.check(t.is_alive(), 'the registrations were still waiting for Route 53')
        t.join()
        emu.faults(latency_ms=0)
        T.eq(st, 200, 'GET /healthz while Route 53 calls are in flight')
        print(f'    slow Route 53: 150 registrations answered, /healthz in {took * 1e3:.0f} ms '
              f'while two calls waited', flush=True)
    finally:
        emu.faults(latency_ms=0)
        r.stop()
    # PUT /ttl (several calls) does not hold an HTTP thread either: with one, a read is
    # answered while the TTL change waits for Route 53.
    r = Reg(emu, '--threads', '1', '--api-rps', '100')
    try:
        emu.faults(latency_ms=2000)
        out = {}
        t = threading.Thread(target=lambda: out.update(ttl=r.req(
            'PUT', '/ttl', body=json.dumps({'ttl': 90}),
            headers={'Content-Type': 'application/json'})))
        t.start()
        time.sleep(0.5)
        st, _ = r.req('GET', '/healthz', timeout=10)
        T.check(t.is_alive(), 'PUT /ttl was still waiting for Route 53')
        T.eq(st, 200, 'GET /healthz on the only HTTP thread while PUT /ttl waits')
        t.join()
        T.eq(out['ttl'][0], 200, 'and PUT /ttl then succeeds')
        T.eq(out['ttl'][1].get('ttl') if out['ttl'][1] else None, 90, 'with the TTL asked for')
    finally:
        emu.faults(latency_ms=0)
        r.stop()


def test_shutdown_with_parked_requests(emu):
    """SIGTERM while requests wait for a slow Route 53: every client gets an answer (201, or 503
    saying the change may still land), the process exits 0, and nothing is half-done: after a
    restart the registry and the zone agree."""
    fresh(emu)
    r = Reg(emu, '--shutdown-timeout', '1')
    emu.faults(latency_ms=2500)
    out = {}
    t = threading.Thread(target=lambda: out.update(burst(r, ['10.8.0.1', '10.8.0.2', '10.8.0.3'])))
    t.start()
    time.sleep(0.5)
    r.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    # While the parked requests drain, a new request is answered at once: 503 shutting-down.
    st, doc = r.req('GET', '/buckets')
    T.check(st == 503 and doc and doc.get('type') == 'urn:r53reg:problem:shutting-down',
            'a request during the shutdown gets 503 shutting-down', f'{st} {doc}')
    T.eq(r.stop(), 0, 'SIGTERM with parked requests exits 0')
    t.join()
    emu.faults(latency_ms=0)
    codes = sorted(st for st, _ in out.values())
    T.check(all(c in (201, 503) for c in codes), 'every parked request got an answer', codes)
    for ip, (st, doc) in out.items():
        if st == 503:
            T.check(doc and doc.get('type') == 'urn:r53reg:problem:shutting-down',
                    '503 says the service shut down', str(doc))
    time.sleep(3)  # let the emulator finish the last call the old process started
    r = Reg(emu)
    try:
        zone = set(zone_ips(emu))
        for ip, (st, _) in out.items():
            if st == 201:
                T.check(ip in zone, f'{ip} acknowledged before shutdown is in the zone')
            T.eq(r.req('GET', '/backends/' + ip)[0] == 200, ip in zone,
                 f'{ip}: the restarted registry agrees with the zone')
    finally:
        r.stop()


def test_shutdown_abandons_backlog(emu):
    """SIGTERM while a call is in flight and more registrations queue behind it: once the
    parked requests are answered (--shutdown-timeout), r53reg exits after the call in flight
    without sending the backlog (its clients were told it may not be committed), so a slow
    Route 53 cannot hold the exit for the whole queue."""
    fresh(emu)
    r = Reg(emu, '--shutdown-timeout', '1')
    emu.faults(latency_ms=2000)
    emu.control('POST', 'reset-stats')
    out = {}
    first = threading.Thread(target=lambda: out.update(burst(r, ['10.8.1.1'])))
    first.start()
    time.sleep(0.4)  # the first call is in flight
    rest = threading.Thread(target=lambda: out.update(
        burst(r, [f'10.8.1.{i}' for i in range(2, 8)])))
    rest.start()
    time.sleep(0.4)  # they queue behind it
    r.proc.send_signal(signal.SIGTERM)
    T.eq(r.stop(), 0, 'SIGTERM exits 0')
    first.join()
    rest.join()
    emu.faults(latency_ms=0)
    time.sleep(2.5)  # the call the process started may still be applied by the emulator
    calls = emu.control('GET', 'stats')[1]['calls'].get('ChangeResourceRecordSets', {})
    T.eq(sum(calls.values()), 1, 'only the call in flight was made, the backlog was not sent')
    T.check(all(st in (201, 503) for st, _ in out.values()), 'every client got an answer',
            str({ip: st for ip, (st, _) in out.items()}))
    T.eq(len(out), 7, 'all seven answered')


def getchange_calls(emu):
    calls = emu.control('GET', 'stats')[1]['calls'].get('GetChange', {})
    return sum(calls.values())


def wait_for_getchange(emu, before, what):
    """Wait until the emulator saw a GetChange after `before` calls: a wait is polling."""
    deadline = time.monotonic() + 30
    while getchange_calls(emu) <= before and time.monotonic() < deadline:
        time.sleep(0.02)
    return T.check(getchange_calls(emu) > before, f'{what}: the insync waiter polls GetChange')


def test_insync_waits(emu):
    """?wait=insync against GetChange PENDING-then-INSYNC: waits for distinct changes end
    INSYNC, each with a few polls; each wait has its own deadline, so waits that time out do
    not queue behind each other; a wait past --insync-timeout is 504 naming the accepted
    change, a failing GetChange is 502 insync-unknown (the change was made; only its
    propagation is unknown), and a wait pending at SIGTERM still gets an answer."""
    fresh(emu)
    try:
        # Immediate mode: every registration is its own change, INSYNC after about 1 s.
        emu.faults(insync_after_ms=1000)
        r = Reg(emu, '--commit', 'immediate', '--api-rps', '100')
        try:
            ips = [f'10.9.0.{i}' for i in range(1, 21)]
            before = getchange_calls(emu)
            t0 = time.monotonic()
            out = burst(r, ips, path_suffix='?wait=insync')
            wall = time.monotonic() - t0
            T.eq(sorted(set((st, doc and doc.get('insync')) for st, doc in out.values())),
                 [(201, True)], '20 ?wait=insync registrations end INSYNC')
            ids = set(doc.get('change_id') for _, doc in out.values())
            T.eq(len(ids), 20, 'immediate mode: 20 distinct changes')
            polls = getchange_calls(emu) - before
            T.check(20 <= polls <= 100, 'each change polled a few times, not continuously',
                    f'{polls} GetChange calls')
            print(f'    insync: 20 distinct changes INSYNC in {wall:.2f} s, {polls} GetChange '
                  'calls', flush=True)
        finally:
            r.stop()

        # Never INSYNC, --insync-timeout 2: 10 waits at once each end at their own deadline.
        # Waiting in turn (each until its timeout) would take 10 x 1.5 s at least.
        emu.faults(insync_after_ms=600000)
        r = Reg(emu, '--commit', 'immediate', '--api-rps', '100', '--insync-timeout', '2')
        try:
            ips = [f'10.9.3.{i}' for i in range(1, 11)]
            t0 = time.monotonic()
            out = burst(r, ips, path_suffix='?wait=insync')
            wall = time.monotonic() - t0
            T.eq(sorted(set((st, doc and doc.get('type')) for st, doc in out.values())),
                 [(504, 'urn:r53reg:problem:upstream-timeout')],
                 '10 waits past --insync-timeout are 504')
            T.eq(len(set(doc.get('change_id') for _, doc in out.values())), 10,
                 'each 504 names its own change')
            T.check(wall < 8, 'the 10 deadlines run side by side, not one after another',
                    f'{wall:.1f} s')
            print(f'    insync: 10 waits timed out together in {wall:.2f} s', flush=True)
        finally:
            r.stop()

        # Not INSYNC within --insync-timeout: 504, the change named, the backend registered.
        r = Reg(emu, '--insync-timeout', '1')
        try:
            st, doc = r.req('POST', '/backends/10.9.1.1?wait=insync')
            T.eq((st, doc and doc.get('type')), (504, 'urn:r53reg:problem:upstream-timeout'),
                 'insync timeout is 504 upstream-timeout')
            detail = (doc or {}).get('detail', '')
            T.check(doc and doc.get('change_id') and doc['change_id'] in detail,
                    'the 504 names the accepted change', str(doc))
            T.check('accepted' in detail and 'durable' in detail,
                    'the 504 says the change was accepted and is durable', detail)
            T.eq(r.req('GET', '/backends/10.9.1.1')[0], 200, 'the backend is registered')
            T.check('10.9.1.1' in zone_ips(emu), 'and in the zone')
        finally:
            r.stop()

        # GetChange fails (5xx past the client's retries) while the change is PENDING.
        r = Reg(emu)
        try:
            out = {}
            before = getchange_calls(emu)
            t = threading.Thread(target=lambda: out.update(
                res=r.req('POST', '/backends/10.9.1.2?wait=insync')))
            t.start()
            if wait_for_getchange(emu, before, 'GetChange failure'):
                emu.faults(force={'err5xx': 1000})
            t.join(60)
            emu.faults(force={'err5xx': 0})
            st, doc = out.get('res', (None, None))
            T.eq((st, doc and doc.get('type')), (502, 'urn:r53reg:problem:insync-unknown'),
                 'a failing GetChange is 502 insync-unknown')
            detail = (doc or {}).get('detail', '')
            T.check('accepted' in detail and 'only its propagation is unknown' in detail
                    and 'rejected' not in (doc or {}).get('title', 'rejected'),
                    'the 502 says the change was made and only its propagation is unknown',
                    str(doc))
            T.check(doc and doc.get('change_id'), 'the 502 names the change', str(doc))
            T.eq(r.req('GET', '/backends/10.9.1.2')[0], 200, 'that backend is registered')
        finally:
            r.stop()

        # SIGTERM while a wait polls: the client is answered and the process exits 0.
        r = Reg(emu, '--shutdown-timeout', '1')
        out = {}
        before = getchange_calls(emu)
        t = threading.Thread(target=lambda: out.update(
            res=r.req('POST', '/backends/10.9.2.1?wait=insync')))
        t.start()
        wait_for_getchange(emu, before, 'shutdown')
        T.eq(r.stop(), 0, 'SIGTERM with an insync wait pending exits 0')
        t.join(30)
        st, doc = out.get('res', (None, None))
        T.eq((st, doc and doc.get('type')), (503, 'urn:r53reg:problem:shutting-down'),
             'the pending insync wait is answered 503 shutting-down')
    finally:
        emu.faults(insync_after_ms=50, force={'err5xx': 0})


def test_group_commit_shares_calls(_):
    # A fresh emulator throttled at 5 calls/s from its start, as Route 53 is.
    emu = Emu(os.path.join(BIN, 'r53emu'), '--rate', '5', '--burst', '5')
    r = Reg(emu, '--api-rps', '5', '--buckets', '10')
    try:
        emu.control('POST', 'reset-stats')
        ips = [f'10.7.0.{i}' for i in range(1, 201)]
        t0 = time.monotonic()
        out = burst(r, ips)
        wall = time.monotonic() - t0
        T.eq(sorted(set(st for st, _ in out.values())), [201], 'all 200 acknowledged')
        st = emu.control('GET', 'stats')[1]
        changes = st['calls'].get('ChangeResourceRecordSets', {}).get('ok', 0)
        T.check(changes <= 10, '200 registrations share at most 10 ChangeResourceRecordSets',
                f'{changes} calls')
        T.eq(st['throttled'], 0, 'no Throttling caused at --api-rps 5')
        T.eq(len(zone_ips(emu)), 200, 'zone holds all 200')
        print(f'    group commit: 200 registrations, {changes} calls, {wall:.2f} s', flush=True)
    finally:
        r.stop()
        emu.stop()


def main():
    emu = Emu(os.path.join(BIN, 'r53emu'), '--insync-after-ms', '50')
    try:
        T.run('register and deregister', test_register_deregister, emu)
        T.run('restart keeps everything', test_restart_keeps_everything, emu)
        T.run('console edit adopted', test_console_edit_is_adopted, emu)
        T.run('two replicas', test_two_replicas, emu)
        for shape in ('envelope', 'root'):
            T.run(f'a stale replica re-reads what Route 53 names ({shape})', test_stale_replica,
                  emu, shape)
        T.run('a slow Route 53 in immediate mode', test_slow_route53_immediate, emu)
        T.run('shutdown with parked requests', test_shutdown_with_parked_requests, emu)
        T.run('shutdown does not send the backlog', test_shutdown_abandons_backlog, emu)
        T.run('insync waits', test_insync_waits, emu)
        T.run('adopt the old script zone', test_adopt_old_script_zone, emu)
        T.run("the zone's TTL is adopted; PUT /ttl", test_zone_ttl_is_adopted, emu)
        T.run('replicas with different TTLs', test_replicas_with_different_ttls, emu)
        T.run('ready during a Route 53 outage', test_ready_during_outage, emu)
        T.run('a set r53reg does not manage keeps another TTL', test_foreign_set_with_other_ttl,
              emu)
        T.run('a listing that does not end', test_listing_that_does_not_end, emu)
        T.run('the account at half the rate', test_half_rate_throttling, emu)
        T.run('a write during a long resync', test_write_during_long_resync, emu)
        T.run('change throttling', test_change_throttling, emu)
        for commit in ('immediate', 'group'):
            T.run(f'faults: 5xx, {commit}', test_faults, emu, '5xx', {'err5xx': 0.2}, commit)
            T.run(f'faults: resets, {commit}', test_faults, emu, 'resets',
                  {'reset': 0.1, 'reset_after_apply': 0.1}, commit)
            T.run(f'faults: mix, {commit}', test_faults, emu, 'mix',
                  {'err5xx': 0.1, 'reset': 0.05, 'throttle': 0.05, 'prior': 0.05,
                   'reset_after_apply': 0.05}, commit)
            T.run(f'faults: harsh, {commit}', test_faults, emu, 'harsh',
                  {'err5xx': 0.5, 'reset': 0.2, 'throttle': 0.1}, commit)
        T.run('group commit', test_group_commit_shares_calls, emu)
    finally:
        emu.stop()
    T.finish()


if __name__ == '__main__':
    main()
