"""r53reg against the strict Route 53 emulator: real processes, real sockets, real SigV4.

Usage: test_route53.py BIN_DIR   (holds r53reg and r53emu)

Covers issue 3's "done when": registrations end in the zone; a restart keeps everything; a
zone written by the old script is adopted; unrelated records are never touched; a console edit
is adopted, not overwritten; two r53reg processes writing one zone lose nothing; with injected
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

BIN = sys.argv[1] if __name__ == '__main__' else None  # set by importers
T = Tally()
NAME = 'app.example.com.'


class Reg:
    """One r53reg process on 127.0.0.1:0 against the emulator."""

    def __init__(self, emu, *extra, env_extra=None):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith('AWS_') or k.startswith('R53REG_'):
                del env[k]
        env.update({'AWS_ACCESS_KEY_ID': emu.akid, 'AWS_SECRET_ACCESS_KEY': emu.secret,
                    'AWS_EC2_METADATA_DISABLED': 'true', 'HOME': tempfile.gettempdir()})
        env.update(env_extra or {})
        args = [os.path.join(BIN, 'r53reg'), '--provider', 'route53', '--zone-id', ZONE,
                '--aws-endpoint', emu.endpoint, '--listen', '127.0.0.1:0',
                '--record-name', 'app.example.com', '--buckets', '4', '--max-per-bucket', '50',
                '--api-rps', '20',
                # The emulator has no change bucket unless a test gives it one.
                '--api-change-rps', '0',
                # Every request of these tests comes from 127.0.0.1: no per-client limits.
                '--client-rps', '0', '--max-connections-per-ip', '0']
        args += list(extra)
        self.log = tempfile.NamedTemporaryFile(prefix='r53reg-', suffix='.log', delete=False)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=env)
        self.port = None
        deadline = time.monotonic() + 20
        buf = b''
        fd = self.proc.stderr.fileno()
        # os.read, not readline: select() cannot see lines a buffered reader already holds.
        while time.monotonic() < deadline and self.port is None:
            ready, _, _ = select.select([fd], [], [], 1)
            if not ready:
                if self.proc.poll() is not None:
                    break
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            m = re.search(rb'msg=listening listen=127\.0\.0\.1:(\d+)', buf)
            if m:
                self.port = int(m.group(1))
        if self.port is None:
            self.proc.kill()
            raise RuntimeError('r53reg did not start:\n' + buf.decode(errors='replace'))
        self.log.write(buf)
        # Keep draining stderr into the log file so the pipe never fills.
        self.drain = threading.Thread(target=self._drain, daemon=True)
        self.drain.start()

    def _drain(self):
        fd = self.proc.stderr.fileno()
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            self.log.write(chunk)
        self.log.flush()

    def req(self, method, path, body=None, timeout=120):
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=timeout)
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        try:
            doc = json.loads(data)
        except ValueError:
            doc = None
        return resp.status, doc

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.drain.join(5)
        if os.environ.get("KEEP_LOG"):
            print(open(self.log.name).read())
        elif rc != 0:
            # A sanitizer report or a crash: show it, or the failure cannot be diagnosed.
            with open(self.log.name, errors="replace") as f:
                text = f.read()
            at = text.find("WARNING: ThreadSanitizer")
            if at < 0:
                at = text.find("ERROR: AddressSanitizer")
            print(f"r53reg exited {rc}; its log:")
            print(text[at:][:12000] if at >= 0 else text[-6000:])
        os.unlink(self.log.name)
        return rc


def ours(emu):
    """{set_identifier: (type, weight, ttl, sorted values)} of the app.example.com sets."""
    out = {}
    for rs in emu.rrsets():
        if rs['name'] == NAME and rs.get('set_identifier', '').startswith('app.example.com_'):
            out[rs['set_identifier'] + '/' + rs['type']] = (
                rs['type'], rs.get('weight'), rs.get('ttl'), sorted(rs['values']))
    return out


def zone_ips(emu):
    ips = []
    for _, (_, _, _, values) in ours(emu).items():
        ips += values
    return ips


def others(emu):
    """Every record r53reg must not touch."""
    return [rs for rs in emu.rrsets()
            if not (rs['name'] == NAME and
                    rs.get('set_identifier', '').startswith('app.example.com_'))]


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
    Every weighted set of a group shares one TTL (ROUTE53.md), so r53reg adopts the zone with
    --ttl 300."""
    fresh(emu)
    st, _ = emu.control('POST', f'zones/{ZONE}/rrsets', {'upsert': OLD_SCRIPT + FOREIGN})
    T.eq(st, 200, 'zone pre-populated the old way')
    before_others = others(emu)
    r = Reg(emu, '--bucketing', 'modulo', '--buckets', '100', '--ttl', '300')
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


def test_other_ttl_is_refused(emu):
    """A --ttl that differs from the zone's weighted group cannot be written one bucket at a
    time: Route 53 refuses the batch, the client gets an honest 502 naming the rule, and
    nothing changes."""
    fresh(emu)
    emu.control('POST', f'zones/{ZONE}/rrsets', {'upsert': OLD_SCRIPT + FOREIGN})
    before = emu.rrsets()
    r = Reg(emu, '--bucketing', 'modulo', '--buckets', '100')
    try:
        st, doc = r.req('POST', '/backends/10.3.1.201')
        T.check(st == 502 and doc and 'weighted sets must contain the same TTL' in
                doc.get('detail', ''), 'the write is refused with the TTL rule', f'{st} {doc}')
        T.eq(emu.rrsets(), before, 'the zone is unchanged')
        T.eq(r.req('GET', '/backends/10.3.1.201')[0], 404, 'and the registry agrees')
    finally:
        r.stop()


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


def burst(reg, ips, method='POST', path_suffix=''):
    results = {}
    lock = threading.Lock()

    def one(ip):
        try:
            st, doc = reg.req(method, '/backends/' + ip + path_suffix)
        except Exception as e:  # a transport failure is an answer too
            st, doc = -1, {'error': str(e)}
        with lock:
            results[ip] = (st, doc)

    threads = [threading.Thread(target=one, args=(ip,)) for ip in ips]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def metric_values(reg):
    """{sample name with labels: value} of r53reg's /metrics, Route 53 families only."""
    conn = http.client.HTTPConnection('127.0.0.1', reg.port, timeout=30)
    conn.request('GET', '/metrics')
    text = conn.getresponse().read().decode()
    conn.close()
    out = {}
    for line in text.splitlines():
        if line.startswith('r53reg_route53_'):
            name, _, value = line.rpartition(' ')
            out[name] = float(value)
    return out


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
        T.run('shutdown with parked requests', test_shutdown_with_parked_requests, emu)
        T.run('adopt the old script zone', test_adopt_old_script_zone, emu)
        T.run('another TTL is refused', test_other_ttl_is_refused, emu)
        T.run('a listing that does not end', test_listing_that_does_not_end, emu)
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
